"""Catalogue handle forms: which resolver a handle needs, validation, the form a ModuleSpec keeps.

Pure string checks (no file system, no network, no TensorFlow): `check_handle_form` says
whether a handle has an accepted form and what to write instead; `stored_handle` gives the
form a ModuleSpec keeps (absolute local paths, one spelling per Kaggle model: `kagglehandles`);
`source_kind` says which loader a handle needs (a SavedModel, a ``keras.applications``
architecture, a Keras model file or a keras-hub preset), `source_problems` which fields do not
fit it; `check_weights` / `stored_weights` the same for a ``weights:`` value.
`KERAS_APPLICATIONS` (kept in `kerasapps`) describes the ``keras:NAME`` architectures. A
catalogue's warnings about local paths are `handlewarnings`', entries that load one module
`samemodule`'s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import urllib.parse

# the table lives in its own module (a data table, 70 lines); imported here, where callers
# have always found it
from hubensemble.catalogue_urls import url_case
from hubensemble.formatquery import without_format_query
from hubensemble.kagglehandles import KAGGLE_HOSTS, kaggle_parts, kaggle_url, kaggle_way_on
from hubensemble.kerasapps import KERAS_APPLICATIONS, KerasApplication
# what a local path holds (its listing, its first bytes) lives in its own module; imported
# here, where hub's loaders and resolvers have always found it
from hubensemble.localfiles import (HDF5_SIGNATURE, KERAS_FILE_SUFFIXES,  # noqa: F401
                                    file_not_module, inner_module, inner_modules,
                                    keras_file_problem, local_source, modules_inside,
                                    what_bytes_are)
from hubensemble.saidwords import WRITE, SaidHint, Say, Words, flag_of
from hubensemble.text import absolute, closest_name, described, value_to_write
from hubensemble.winpaths import windows_refusal

# A name starts with a letter, digit or "_": one starting with "-" reads as an option in
# `--modules -x` (argparse refuses it), one starting with "." as a hidden file.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_HANDLE_FORMS = ("https://tfhub.dev/PUBLISHER/MODEL/VERSION, "
                 "https://www.kaggle.com/models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION, "
                 "kaggle:OWNER/MODEL/FRAMEWORK/VARIATION/VERSION, an http(s):// or gs:// URL "
                 "of a .tar.gz, zoo:PRESET/NAME, keras:APPLICATION (e.g. "
                 "keras:MobileNetV3Small), kaggle://OWNER/MODEL/keras/VARIATION[/VERSION] "
                 "or hf://OWNER/MODEL (keras-hub presets), file:///PATH or a local path (a "
                 "SavedModel folder, a .keras or .h5 model file, or a keras-hub preset "
                 "folder)")
HANDLE_FORMS = _HANDLE_FORMS  # the accepted forms, for the words of other refusals
#: Handle prefixes keras-hub loads presets from (its own loader: kagglehub, huggingface_hub).
KERAS_HUB_PREFIXES = ("kaggle://", "hf://")


class HandleFormError(SaidHint, ValueError):
    """A handle (or a ``weights:`` value) has no accepted form: `problem` (a str) says what,
    `parts` what to write instead, as `saidwords.said` parts (a str, or a tuple of str, Say
    and Words), so that each caller is told it in its own words: `hint` as a catalogue file
    and the command line write it ("write keras:MobileNetV3Small instead"), `python_hint` as
    a Python call passes it ("pass handle='keras:MobileNetV3Small' instead"). The message
    (str) is the problem and `hint`."""

    def __init__(self, problem, hint):
        self.problem = problem
        self.parts = hint
        super().__init__(f"{problem}; {self.hint}")


_Bad = HandleFormError  # the short name keeps the many messages below readable


class HandleTypeError(HandleFormError, TypeError):
    """A handle that is not a str (None, a number): a TypeError for a Python caller, and,
    being a HandleFormError too, a catalogue's `field 'handle'` problem line."""

    def __init__(self, problem, hint):
        super().__init__(problem, hint)
        # the argument named and the way on passed, for a Python caller
        self.args = (f"handle {problem}; {self.python_hint}",)


def _write_handle(value: str) -> tuple:
    """The parts of "write handle: 'VALUE' instead" (`text.value_to_write`, quoted as YAML
    quotes it), "pass handle='VALUE' instead" from Python."""
    return (WRITE, Say("handle", value, yaml=value_to_write("handle", value)[len("write "):]),
            " instead")


def handle_kind(handle: str) -> str:
    """Which resolver a (checked) handle needs: tfhub, kaggle, http, gcs, zoo, keras
    (``keras:NAME``), keras-hub (``kaggle://…`` / ``hf://…`` presets) or local. A scheme and
    host in any case (``HTTPS://TFHub.dev/…``) are read as in lower case (`url_case`)."""
    handle = url_case(handle)
    if handle.startswith(KERAS_HUB_PREFIXES):
        return "keras-hub"
    if handle.startswith("keras:"):
        return "keras"
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
        if host in KAGGLE_HOSTS:
            return "kaggle"
        return "http"
    return "local"


def source_kind(handle: str) -> str:
    """Which loader a (checked) handle needs, from its text alone.

    "keras-application" (``keras:NAME``), "keras-file" (a path or URL ending in .keras, .h5
    or .hdf5), "keras-hub" (a ``kaggle://`` or ``hf://`` preset, loaded by keras-hub) or
    "module" (a SavedModel; a local folder may also hold a keras-hub preset, which is told
    apart when the folder is read).
    """
    kind = handle_kind(handle)
    if kind == "keras":
        return "keras-application"
    if kind == "keras-hub":
        return "keras-hub"
    if _path_part(handle).lower().endswith(KERAS_FILE_SUFFIXES):
        return "keras-file"
    return "module"


def _path_part(handle):
    handle = url_case(handle)
    if handle.startswith(("http://", "https://", "gs://", "file://")):
        return urllib.parse.urlsplit(handle).path
    return handle


def keras_application(handle: str) -> KerasApplication:
    """The KerasApplication of a ``keras:NAME`` handle; HandleFormError (with the closest
    known name) for another handle or an unknown NAME."""
    name = handle[len("keras:"):] if handle.startswith("keras:") else None
    if name in KERAS_APPLICATIONS:
        return KERAS_APPLICATIONS[name]
    close = closest_name(name or handle, KERAS_APPLICATIONS)  # git's rule, case aside
    hint = ((WRITE, Say("handle", f"keras:{close}", yaml=f"keras:{close}"), " instead")
            if close else (WRITE, Words("keras:NAME", "handle='keras:NAME'"),
                           " with NAME one of " + ", ".join(sorted(KERAS_APPLICATIONS))))
    raise HandleFormError(f"{handle!r} is not a keras.applications architecture", hint)


def check_handle_form(handle) -> None:
    """Raises HandleFormError (a ValueError: what is wrong, what to write instead) unless
    `handle` has one of the accepted forms; HandleTypeError (a TypeError too, "handle must be
    a non-empty string, got NoneType None; …") when it is not a str. A scheme and host in
    any case are accepted (RFC 3986, 3.1 and 3.2.2: `url_case`). Looks at the string only:
    no file system, no network."""
    if not isinstance(handle, str):
        raise HandleTypeError(f"must be a non-empty string, got {described(handle)}",
                              (WRITE, f"one of {_HANDLE_FORMS} instead"))
    if not handle.strip():
        raise _Bad(f"must be a non-empty string, got {handle!r}",
                   (WRITE, f"one of {_HANDLE_FORMS} instead"))
    if handle != handle.strip():
        raise _Bad(f"{handle!r} has leading or trailing spaces", _write_handle(handle.strip()))
    handle = url_case(handle)  # HTTPS://TFHub.dev/… was "scheme 'HTTPS:' is not supported"
    split = urllib.parse.urlsplit(handle) if "://" in handle else None
    if split is not None and "@" in split.netloc:
        # urllib took "USER:PASSWORD@host" for the host name ("does not resolve"), and the
        # handle is written as given into ranking.json, logs, reports and the export.
        shown = f"{split.scheme}://…@{split.netloc.rpartition('@')[2]}{split.path}"
        raise _Bad(f"{shown!r} carries a user name or password before its host, which "
                   "hubensemble does not send and would write into every run folder, log "
                   "and report", ("serve the module without them (or with a signed URL's "
                                  "token in its query), or download it yourself and ",
                                  WRITE, "its local folder instead"))
    kind = handle_kind(handle)
    if kind == "keras":
        keras_application(handle)
    elif kind == "keras-hub":
        scheme, _, rest = handle.partition("://")
        parts = rest.strip("/").split("/")
        if scheme == "kaggle" and (len(parts) not in (4, 5) or not all(parts)):
            raise _Bad(f"{handle!r} is not a keras-hub Kaggle preset",
                       (WRITE, "kaggle://OWNER/MODEL/keras/VARIATION[/VERSION], e.g. "
                        "kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2, instead"))
        if scheme == "hf" and (len(parts) != 2 or not all(parts)):
            raise _Bad(f"{handle!r} is not a Hugging Face preset",
                       (WRITE, "hf://OWNER/REPOSITORY instead"))
    elif _path_part(handle).lower().endswith(".weights.h5"):
        raise _Bad(f"{handle!r} is a weights file, not a model",
                   (Words(WRITE.yaml, WRITE.python, "pass "),
                    Words("the architecture as the handle (e.g. ",
                          "the architecture as the handle (e.g. ",
                          "the architecture as the HANDLE (e.g. "),
                    Say("handle", "keras:ResNet50V2", yaml="handle: keras:ResNet50V2"),
                    ") and this file as ", Words("`weights:`", "weights=", "--weights"),
                    ", or give the .keras model file instead"))
    elif kind == "kaggle":
        split = urllib.parse.urlsplit(handle) if "://" in handle else None
        if split is not None and (split.query or split.fragment):
            # ?tf-hub-format=compressed, copied from tfhub.dev's download links: the query
            # was read as part of the version ("not a Kaggle Models handle with a version").
            bare = handle.split("?")[0].split("#")[0]
            if kaggle_parts(bare) is not None:
                raise _Bad(f"{handle!r} has a query or fragment", _write_handle(bare))
        if kaggle_parts(handle) is None:
            raise _Bad(f"{handle!r} is not a Kaggle Models handle with a version",
                       kaggle_way_on(handle))
    elif kind == "tfhub":
        split = urllib.parse.urlsplit(handle)
        parts = split.path.strip("/").split("/")
        if split.query or split.fragment:
            bare = handle.split('?')[0].split('#')[0]
            raise _Bad(f"{handle!r} has a query or fragment", _write_handle(bare))
        if len(parts) < 3 or not all(parts) or not parts[-1].isdigit():
            # An unversioned tfhub.dev URL means "latest", which breaks caching and reruns.
            raise _Bad(f"{handle!r} is not https://tfhub.dev/PUBLISHER/MODEL/VERSION",
                       (WRITE, "the versioned URL, e.g. https://tfhub.dev/google/bit/m-r50x1/1, "
                        "instead"))
    elif kind in ("http", "gcs"):
        split = urllib.parse.urlsplit(handle)
        if not split.netloc or not split.path.strip("/"):
            raise _Bad(f"{handle!r} has no host or no path",
                       (WRITE, "the full URL of the module, e.g. https://host/path/module.tar.gz "
                        "or gs://bucket/path/module.tar.gz, instead"))
    elif kind == "zoo":
        parts = handle[len("zoo:"):].split("/")
        if len(parts) != 2 or not all(NAME_RE.fullmatch(p) for p in parts):
            raise _Bad(f"{handle!r} is not zoo:PRESET/NAME",
                       (WRITE, "e.g. zoo:demo/r8x2-generalist-0 instead"))
    elif not handle.startswith("file:"):
        scheme = _SCHEME_RE.match(handle)
        if scheme and len(scheme.group(1)) > 1:
            note = "" if "://" in handle else (
                f" (a local path that contains ':' can be written as ./{handle})")
            raise _Bad(f"scheme '{scheme.group(1)}:' is not supported",
                       (WRITE, f"one of {_HANDLE_FORMS} instead{note}"))
    elif not handle.startswith("file://") or handle == "file://":
        rest = handle[len("file:"):].lstrip("/")
        alone = f", or the path alone: {rest}" if (
            rest and not handle.startswith("file://")) else ""
        raise _Bad(f"{handle!r} is not a file:// URL",
                   (WRITE, f"file:///absolute/path instead{alone}"))
    else:
        file_url_path(handle)  # file://HOST/…: another machine's file, refused off Windows


def file_url_path(url, *, platform=sys.platform) -> str:
    """The path a ``file://`` URL (a str) names, as RFC 8089 reads it: ``file:///PATH`` and
    ``file://localhost/PATH`` are PATH on this machine, percent-decoded (on Windows
    ``file:///C:/m`` is ``C:/m``); ``file://HOST/SHARE/PATH`` is a file on the machine HOST:
    on Windows its UNC path ``\\\\HOST\\SHARE\\PATH``, elsewhere HandleFormError (Linux and
    macOS reach another machine's share only where it is mounted). It was read as the
    relative path HOST/SHARE/PATH, joined to the catalogue's folder."""
    host, slash, path = url[len("file://"):].partition("/")
    path = urllib.parse.unquote(slash + path)
    if host.lower() in ("", "localhost"):
        return path[1:] if platform == "win32" and re.match(r"/[A-Za-z]:", path) else path
    if platform == "win32":
        return "\\\\" + host + path.replace("/", "\\")
    raise _Bad(f"{url!r} names the machine {host!r} (RFC 8089: file://HOST/PATH is a file on "
               "HOST, a UNC path on Windows), which this system reads only where its share "
               "is mounted", (WRITE, f"the mounted folder's path (file:///MOUNT/PATH), or "
                              f"file://{path} for the path {path} on this machine, or "
                              f"{host}{path} for a path relative to the ",
                              Words("catalogue's folder", "working folder")))


def stored_handle(handle, base_dir) -> str:
    """Checks a handle (HandleFormError as `check_handle_form`); returns a ModuleSpec's form.

    A local path becomes absolute (relative paths are relative to the catalogue's folder, so a
    catalogue and its modules can move together); a Kaggle Models URL becomes the short
    https://www.kaggle.com/models/O/M/F/V/N form (one URL per model for resolvers and caches),
    and a tfhub.dev URL loses a trailing "/" (``…/m-r50x1/1/`` is ``…/m-r50x1/1``); a
    scheme and host are stored in lower case (`url_case`: ``HTTPS://TFHub.dev/…`` is
    ``https://tfhub.dev/…``, one cache folder, one download), an http(s) archive URL without
    ?tf-hub-format=… (`formatquery.without_format_query`)."""
    check_handle_form(handle)
    handle = url_case(handle)
    kind = handle_kind(handle)
    if kind == "kaggle" and not handle.startswith("kaggle:"):
        return kaggle_url(handle)
    if kind == "tfhub":  # ".../1/" is ".../1": one cache folder, one download (as Kaggle's)
        return handle.rstrip("/")
    if kind != "local":  # tensorflow_hub adds ?tf-hub-format=compressed itself: not twice
        return without_format_query(handle) if kind == "http" else handle
    if _other_machines(handle, base_dir):
        return handle
    path = file_url_path(handle) if handle.startswith("file://") else handle
    path = os.path.expanduser(path)
    if not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return os.path.normpath(absolute(path))


def _other_machines(path: str, base_dir) -> bool:
    """Whether a catalogue's local path is written as Windows writes paths on a system whose
    paths use "/" (`winpaths.windows_refusal`, a name that exists beside the catalogue taken
    as typed): such a path is kept as written, not joined to the catalogue's folder, so that
    `local_handle_warnings` and rank's skip reason can show it and its form here
    ("handle 'C:\\models\\m'" had become "/home/me/cats/C:\\models\\m does not exist")."""
    return windows_refusal(path, exists=lambda p: os.path.lexists(
        os.path.join(os.fspath(base_dir), p))) is not None


#: What a ``weights:`` file of a ``keras:NAME`` entry may be (Keras' load_weights formats).
WEIGHTS_SUFFIXES = (".h5", ".hdf5", ".keras")


def check_weights(value):
    """``value`` when it is a ``weights:`` value (None, "imagenet", or a path ending in .h5,
    .weights.h5, .hdf5 or .keras), else HandleFormError saying what to write."""
    if value is None or value == "imagenet":
        return value
    if not isinstance(value, str) or not value.strip():
        raise HandleFormError(f"{value!r} is not imagenet or a file",
                              (WRITE, Say("weights", "imagenet"), " or ",
                               Say("weights", "path/to/file.weights.h5")))
    if value.startswith("file://"):
        file_url_path(value)  # another machine's file: refused off Windows
    if not value.lower().endswith(WEIGHTS_SUFFIXES):
        raise HandleFormError(f"{value!r} is not a Keras weights file (.h5, .weights.h5 or "
                              ".keras)", (WRITE, Say("weights", "imagenet"), " or the path of the "
                                          ".h5 file the architecture's weights were saved to"))
    return value


def stored_weights(value, base_dir):
    """The form a ModuleSpec keeps of a ``weights:`` value: None and "imagenet" as they are,
    a path absolute (relative paths are relative to the catalogue's folder; one written as
    Windows writes paths kept as written: `_other_machines`; an empty or blank one as it is,
    for its check to refuse as empty, not as the folder it would join to). Unchecked: see
    `check_weights`."""
    if value in (None, "imagenet") or not isinstance(value, str) or not value.strip() or (
            _other_machines(value, base_dir)):
        return value
    path = os.path.expanduser(file_url_path(value) if value.startswith("file://") else value)
    return os.path.normpath(os.path.join(base_dir, path))


@dataclasses.dataclass(frozen=True)
class SourceProblem(SaidHint):
    """A field that does not fit its entry's kind of source (`source_problems`): `field` (a
    FIELD_NAMES name), `problem` (a str, the same in either form) and the way on as `parts`
    (`saidwords.said` parts, both forms written once): `hint` a catalogue's ("remove weights:
    from this entry"), `python_hint` a call's ("leave weights out")."""

    field: str
    problem: str
    parts: tuple = ()


def _left_out(field) -> tuple:
    # "remove FIELD: from this entry" in a catalogue, "leave FIELD out" from Python, "leave
    # --FIELD out" on the command line
    return (Words(f"remove {field}: from this entry", f"leave {field} out",
                  f"leave {flag_of(field)} out"),)


def source_problems(fields) -> list[SourceProblem]:
    """A SourceProblem for each field that does not fit the entry's kind of source
    (`handles.source_kind` of its handle), given the entry's fields as a mapping; its way
    on in a catalogue's words and a call's (`SaidHint`: they were a catalogue's str,
    rewritten for Python by pattern).

    ``weights`` is for ``keras:NAME`` only, ``layer`` for .keras/.h5 files, ``signature``
    for SavedModels. Modules hubensemble builds from Keras (applications, presets) take
    images in [0, 1] as float32, with their own preprocessing inside, so their value_range is
    [0, 1] and input_dtype float32; an application's input_size is at least its smallest
    side and its output_dim its pooled width (`handles.KERAS_APPLICATIONS`).
    """
    handle = fields.get("handle")
    try:
        kind = source_kind(handle)
    except (TypeError, AttributeError):
        return []
    out = []

    def only(field, kinds, what):
        if fields.get(field) is not None and kind not in kinds:
            out.append(SourceProblem(field, f"only {what} take {field}", _left_out(field)))

    only("weights", ("keras-application",), "keras:NAME entries")
    only("layer", ("keras-file",), ".keras and .h5 model files")
    only("signature", ("module",), "SavedModels")
    if kind in ("keras-application", "keras-hub", "keras-file"):
        if fields.get("input_dtype") not in (None, "float32"):
            out.append(SourceProblem("input_dtype", "Keras models take float32 images",
                                     _left_out("input_dtype")))
    if kind in ("keras-application", "keras-hub"):
        if fields.get("value_range", "0,1") != "0,1":
            out.append(SourceProblem(
                "value_range", "hubensemble feeds this model images in [0, 1] and applies its "
                "own preprocessing inside it", (*_left_out("value_range"), " (or ", WRITE,
                                                Say("value_range", (0, 1), yaml="[0, 1]"), ")")))
    if kind == "keras-application":
        app = KERAS_APPLICATIONS.get(handle[len("keras:"):])
        size = fields.get("input_size")
        if app is not None and size is not None and min(size) < app.min_size:
            least = (app.min_size, app.min_size)
            out.append(SourceProblem(
                "input_size", f"{handle} needs at least {app.min_size} x {app.min_size} pixels",
                (WRITE, Say("input_size", (app.input_size, app.input_size)),
                 " (its ImageNet resolution) or at least ", Say(None, least))))
        dim = fields.get("output_dim")
        if app is not None and dim is not None and dim != app.output_dim:
            out.append(SourceProblem(
                "output_dim", f"{handle} gives {app.output_dim}-d features, not {dim}",
                (WRITE, Say("output_dim", app.output_dim), " or leave it out")))
    return out
