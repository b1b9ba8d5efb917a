"""Catalogue handle forms: which resolver a handle needs, Kaggle URL spellings, validation.

Pure string checks (no file system, no network, no TensorFlow): `check_handle_form` says
whether a handle has an accepted form and what to write instead; `stored_handle` gives the
form a ModuleSpec keeps (absolute local paths, one spelling per Kaggle model).
"""

from __future__ import annotations

import os
import re
import urllib.parse

NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_KAGGLE_HOSTS = ("kaggle.com", "www.kaggle.com")
_KAGGLE_EXAMPLE = "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"
_HANDLE_FORMS = ("https://tfhub.dev/PUBLISHER/MODEL/VERSION, "
                 "https://www.kaggle.com/models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION, "
                 "kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION, an http(s):// or gs:// URL "
                 "of a .tar.gz, zoo:PRESET/NAME, file:///PATH or a local path")


class HandleFormError(ValueError):
    """A handle has no accepted form: `problem` says what, `hint` what to write instead."""

    def __init__(self, problem, hint):
        super().__init__(f"{problem}; {hint}")
        self.problem = problem
        self.hint = hint


_Bad = HandleFormError  # the short name keeps the many messages below readable


def handle_kind(handle: str) -> str:
    """Which resolver a (checked) handle needs: tfhub, kaggle, http, gcs, zoo or local."""
    if handle.startswith("kaggle:"):
        return "kaggle"
    if handle.startswith("zoo:"):
        return "zoo"
    if handle.startswith("gs://"):
        return "gcs"
    if handle.startswith(("http://", "https://")):
        host = urllib.parse.urlsplit(handle).netloc.lower()
        if host in ("tfhub.dev", "www.tfhub.dev"):
            return "tfhub"
        if host in _KAGGLE_HOSTS:
            return "kaggle"
        return "http"
    return "local"


def kaggle_url(handle: str) -> str:
    """The https://www.kaggle.com/models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION form of any
    Kaggle handle (kaggle:…, the short URL or the long …/frameworks/…/variations/…/versions/…
    URL): the form tensorflow_hub downloads like a tfhub.dev handle."""
    parts = _kaggle_parts(handle)
    if parts is None:
        raise ValueError(f"{handle!r} is not a Kaggle Models handle; write e.g. {_KAGGLE_EXAMPLE}")
    return "https://www.kaggle.com/models/" + "/".join(parts)


def _kaggle_parts(handle):
    """(owner, model, framework, variation, version) of a Kaggle handle, or None."""
    if handle.startswith("kaggle:"):
        parts = handle[len("kaggle:"):].strip("/").split("/")
    else:
        split = urllib.parse.urlsplit(handle)
        if split.netloc.lower() not in _KAGGLE_HOSTS or split.query or split.fragment:
            return None
        parts = split.path.strip("/").split("/")
        if not parts or parts[0] != "models":
            return None
        parts = parts[1:]
        if len(parts) == 8 and (parts[2], parts[4], parts[6]) == (
                "frameworks", "variations", "versions"):
            parts = [parts[0], parts[1], parts[3], parts[5], parts[7]]
    if len(parts) != 5 or not all(parts) or not parts[4].isdigit():
        return None
    return tuple(parts)


def check_handle_form(handle) -> None:
    """Raises HandleFormError (what is wrong, what to write instead) unless `handle` has one
    of the accepted forms. Looks at the string only: no file system, no network."""
    if not isinstance(handle, str) or not handle.strip():
        raise _Bad(f"must be a non-empty string, got {type(handle).__name__} {handle!r}",
                   f"write one of {_HANDLE_FORMS} instead")
    if handle != handle.strip():
        raise _Bad(f"{handle!r} has leading or trailing spaces",
                   f"write handle: {handle.strip()} instead")
    kind = handle_kind(handle)
    if kind == "kaggle":
        if _kaggle_parts(handle) is None:
            raise _Bad(f"{handle!r} is not a Kaggle Models handle with a version",
                       f"write {_KAGGLE_EXAMPLE} or kaggle:google/bit/tensorFlow2/m-r50x1/1 "
                       f"(OWNER/MODEL/FRAMEWORK/VARIATION/VERSION) instead")
    elif kind == "tfhub":
        split = urllib.parse.urlsplit(handle)
        parts = split.path.strip("/").split("/")
        if split.query or split.fragment:
            raise _Bad(f"{handle!r} has a query or fragment",
                       f"write handle: {handle.split('?')[0].split('#')[0]} instead")
        if len(parts) < 3 or not all(parts) or not parts[-1].isdigit():
            # An unversioned tfhub.dev URL means "latest", which breaks caching and reruns.
            raise _Bad(f"{handle!r} is not https://tfhub.dev/PUBLISHER/MODEL/VERSION",
                       "write the versioned URL, e.g. https://tfhub.dev/google/bit/m-r50x1/1, "
                       "instead")
    elif kind in ("http", "gcs"):
        split = urllib.parse.urlsplit(handle)
        if not split.netloc or not split.path.strip("/"):
            raise _Bad(f"{handle!r} has no host or no path",
                       "write the full URL of the module, e.g. https://host/path/module.tar.gz "
                       "or gs://bucket/path/module.tar.gz, instead")
    elif kind == "zoo":
        parts = handle[len("zoo:"):].split("/")
        if len(parts) != 2 or not all(NAME_RE.fullmatch(p) for p in parts):
            raise _Bad(f"{handle!r} is not zoo:PRESET/NAME",
                       "write e.g. zoo:demo/generalist-0 instead")
    elif not handle.startswith("file:"):
        scheme = _SCHEME_RE.match(handle)
        if scheme and len(scheme.group(1)) > 1:
            note = "" if "://" in handle else (
                f" (a local path that contains ':' can be written as ./{handle})")
            raise _Bad(f"scheme '{scheme.group(1)}:' is not supported",
                       f"write one of {_HANDLE_FORMS} instead{note}")
    elif not handle.startswith("file://") or handle == "file://":
        raise _Bad(f"{handle!r} is not a file:// URL", "write file:///absolute/path instead")


def stored_handle(handle, base_dir) -> str:
    """Checks a handle (HandleFormError as `check_handle_form`) and returns the form stored in
    a ModuleSpec.

    A local path becomes absolute (relative paths are relative to the catalogue's folder, so a
    catalogue and its modules can move together); a Kaggle Models URL becomes the short
    https://www.kaggle.com/models/O/M/F/V/N form (one URL per model for resolvers and caches).
    """
    check_handle_form(handle)
    kind = handle_kind(handle)
    if kind == "kaggle" and not handle.startswith("kaggle:"):
        return kaggle_url(handle)
    if kind != "local":
        return handle
    path = handle
    if path.startswith("file://"):
        path = urllib.parse.unquote(path[len("file://"):])
        if path.startswith("localhost/"):
            path = path[len("localhost"):]
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return os.path.normpath(os.path.abspath(path))
