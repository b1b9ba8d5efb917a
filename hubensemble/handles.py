"""Catalogue handle forms: which resolver a handle needs, Kaggle URL spellings, validation.

Pure string checks (no file system, no network, no TensorFlow): `check_handle_form` says
whether a handle has an accepted form and what to write instead; `stored_handle` gives the
form a ModuleSpec keeps (absolute local paths, one spelling per Kaggle model); `source_kind`
says which loader a handle needs (a SavedModel, a ``keras.applications`` architecture, a
Keras model file or a keras-hub preset); `KERAS_APPLICATIONS` (kept in `kerasapps`)
describes the ``keras:NAME`` architectures. `local_handle_warnings` (a catalogue's local
handles missing on this machine or holding no module: `localfiles.local_source`, re-exported
here with what else a local path holds) looks at the file system, and so does
`canonical_handle` for local paths (one text per module, whatever the spelling), which
`same_module_pairs` uses to find entries that load the same module (and
`same_files_as`, once rank has located them, entries of the same files under names no rule
relates); `signature_reading` (`savedmodel_calls`: a local SavedModel's saved_model.pb read
without TensorFlow, nothing loaded) tells the signature and output key an entry that leaves
them out is called through.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse

# the table lives in its own module (a data table, 70 lines); imported here, where callers
# have always found it
from hubensemble.catalogue_urls import url_case, variables_note
from hubensemble.formatquery import without_format_query
from hubensemble.kerasapps import KERAS_APPLICATIONS, KerasApplication
# what a local path holds (its listing, its first bytes) lives in its own module; imported
# here, where hub's loaders and resolvers have always found it
from hubensemble.localfiles import (HDF5_SIGNATURE, KERAS_FILE_SUFFIXES,  # noqa: F401
                                    file_not_module, inner_module, inner_modules,
                                    keras_file_problem, local_source, modules_inside,
                                    what_bytes_are)
from hubensemble.pathnotes import from_defaults, sibling_note, weights_file_problem
from hubensemble.savedmodel_calls import saved_model_pb_problem, signature_reading
from hubensemble.text import absolute, closest_name, described, escaped, value_to_write
from hubensemble.winpaths import windows_form, windows_refusal

# A name starts with a letter, digit or "_": one starting with "-" reads as an option in
# `--modules -x` (argparse refuses it), one starting with "." as a hidden file.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_KAGGLE_HOSTS = ("kaggle.com", "www.kaggle.com")
_KAGGLE_EXAMPLE = "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"
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


class HandleFormError(ValueError):
    """A handle has no accepted form: `problem` says what, `hint` what to write instead."""

    def __init__(self, problem, hint):
        super().__init__(f"{problem}; {hint}")
        self.problem = problem
        self.hint = hint


_Bad = HandleFormError  # the short name keeps the many messages below readable


class HandleTypeError(HandleFormError, TypeError):
    """A handle that is not a str (None, a number): a TypeError for a Python caller, and,
    being a HandleFormError too, a catalogue's `field 'handle'` problem line."""

    def __init__(self, problem, hint):
        super().__init__(problem, hint)
        self.args = (f"handle {problem}; {hint}",)  # the argument named, for a Python caller


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
        if host in _KAGGLE_HOSTS:
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
    hint = (f"write keras:{close} instead" if close else
            "write keras:NAME with NAME one of " + ", ".join(sorted(KERAS_APPLICATIONS)))
    raise HandleFormError(f"{handle!r} is not a keras.applications architecture", hint)


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
    handle = url_case(handle)
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


def _kaggle_way_on(handle: str) -> str:
    """What to write instead of Kaggle handle `handle` that names no version: the user's own
    model with a VERSION (the short URL, or kaggle:… for a kaggle: handle; a query or fragment
    left out), e.g. "write https://www.kaggle.com/models/O/M/F/V/VERSION (OWNER/MODEL/
    FRAMEWORK/VARIATION/VERSION: its version, e.g. …/V/1; …) instead"; the general form with
    another model's example only when `handle` does not name OWNER/MODEL/FRAMEWORK/VARIATION.
    Every unversioned handle was given google/bit's example, a user's own mobilenet URL with
    ?tf-hub-format=compressed too."""
    bare = url_case(handle).split("?")[0].split("#")[0]
    if bare.startswith("kaggle:"):
        parts, prefix = bare[len("kaggle:"):].strip("/").split("/"), "kaggle:"
    else:
        parts = urllib.parse.urlsplit(bare).path.strip("/").split("/")
        prefix = "https://www.kaggle.com/models/"
        parts = parts[1:] if parts[:1] == ["models"] else []
        if len(parts) in (6, 7) and (parts[2], parts[4], parts[6:7]) in (
                ("frameworks", "variations", []), ("frameworks", "variations", ["versions"])):
            parts = [parts[0], parts[1], parts[3], parts[5]]
    if len(parts) == 4 and all(parts):
        own = prefix + "/".join(parts)
        return (f"write {own}/VERSION (OWNER/MODEL/FRAMEWORK/VARIATION/VERSION: its version, "
                f"e.g. {own}/1; the model's page on kaggle.com lists them) instead")
    return (f"write {_KAGGLE_EXAMPLE} or kaggle:google/bit/tensorFlow2/m-r50x1/1 "
            "(OWNER/MODEL/FRAMEWORK/VARIATION/VERSION) instead")


def check_handle_form(handle) -> None:
    """Raises HandleFormError (a ValueError: what is wrong, what to write instead) unless
    `handle` has one of the accepted forms; HandleTypeError (a TypeError too, "handle must be
    a non-empty string, got NoneType None; …") when it is not a str. A scheme and host in
    any case are accepted (RFC 3986, 3.1 and 3.2.2: `url_case`). Looks at the string only:
    no file system, no network."""
    if not isinstance(handle, str):
        raise HandleTypeError(f"must be a non-empty string, got {described(handle)}",
                              f"write one of {_HANDLE_FORMS} instead")
    if not handle.strip():
        raise _Bad(f"must be a non-empty string, got {handle!r}",
                   f"write one of {_HANDLE_FORMS} instead")
    if handle != handle.strip():
        raise _Bad(f"{handle!r} has leading or trailing spaces",
                   f"{value_to_write('handle', handle.strip())} instead")
    handle = url_case(handle)  # HTTPS://TFHub.dev/… was "scheme 'HTTPS:' is not supported"
    split = urllib.parse.urlsplit(handle) if "://" in handle else None
    if split is not None and "@" in split.netloc:
        # urllib took "USER:PASSWORD@host" for the host name ("does not resolve"), and the
        # handle is written as given into ranking.json, logs, reports and the export.
        shown = f"{split.scheme}://…@{split.netloc.rpartition('@')[2]}{split.path}"
        raise _Bad(f"{shown!r} carries a user name or password before its host, which "
                   "hubensemble does not send and would write into every run folder, log "
                   "and report", "serve the module without them (or with a signed URL's "
                   "token in its query), or download it yourself and write its local folder "
                   "instead")
    kind = handle_kind(handle)
    if kind == "keras":
        keras_application(handle)
    elif kind == "keras-hub":
        scheme, _, rest = handle.partition("://")
        parts = rest.strip("/").split("/")
        if scheme == "kaggle" and (len(parts) not in (4, 5) or not all(parts)):
            raise _Bad(f"{handle!r} is not a keras-hub Kaggle preset",
                       "write kaggle://OWNER/MODEL/keras/VARIATION[/VERSION], e.g. "
                       "kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2, instead")
        if scheme == "hf" and (len(parts) != 2 or not all(parts)):
            raise _Bad(f"{handle!r} is not a Hugging Face preset",
                       "write hf://OWNER/REPOSITORY instead")
    elif _path_part(handle).lower().endswith(".weights.h5"):
        raise _Bad(f"{handle!r} is a weights file, not a model",
                   "write the architecture as the handle (e.g. handle: keras:ResNet50V2) and "
                   "this file as `weights:`, or give the .keras model file instead")
    elif kind == "kaggle":
        split = urllib.parse.urlsplit(handle) if "://" in handle else None
        if split is not None and (split.query or split.fragment):
            # ?tf-hub-format=compressed, copied from tfhub.dev's download links: the query
            # was read as part of the version ("not a Kaggle Models handle with a version").
            bare = handle.split("?")[0].split("#")[0]
            if _kaggle_parts(bare) is not None:
                raise _Bad(f"{handle!r} has a query or fragment",
                           f"{value_to_write('handle', bare)} instead")
        if _kaggle_parts(handle) is None:
            raise _Bad(f"{handle!r} is not a Kaggle Models handle with a version",
                       _kaggle_way_on(handle))
    elif kind == "tfhub":
        split = urllib.parse.urlsplit(handle)
        parts = split.path.strip("/").split("/")
        if split.query or split.fragment:
            bare = handle.split('?')[0].split('#')[0]
            raise _Bad(f"{handle!r} has a query or fragment",
                       f"{value_to_write('handle', bare)} instead")
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
                       "write e.g. zoo:demo/r8x2-generalist-0 instead")
    elif not handle.startswith("file:"):
        scheme = _SCHEME_RE.match(handle)
        if scheme and len(scheme.group(1)) > 1:
            note = "" if "://" in handle else (
                f" (a local path that contains ':' can be written as ./{handle})")
            raise _Bad(f"scheme '{scheme.group(1)}:' is not supported",
                       f"write one of {_HANDLE_FORMS} instead{note}")
    elif not handle.startswith("file://") or handle == "file://":
        rest = handle[len("file:"):].lstrip("/")
        alone = f", or the path alone: {rest}" if (
            rest and not handle.startswith("file://")) else ""
        raise _Bad(f"{handle!r} is not a file:// URL",
                   f"write file:///absolute/path instead{alone}")
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
               "is mounted", f"write the mounted folder's path (file:///MOUNT/PATH), or "
               f"file://{path} for the path {path} on this machine, or {host}{path} for a "
               "path relative to the catalogue's folder")


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
                              "write weights: imagenet or weights: path/to/file.weights.h5")
    if value.startswith("file://"):
        file_url_path(value)  # another machine's file: refused off Windows
    if not value.lower().endswith(WEIGHTS_SUFFIXES):
        raise HandleFormError(f"{value!r} is not a Keras weights file (.h5, .weights.h5 or "
                              ".keras)", "write weights: imagenet or the path of the .h5 file "
                              "the architecture's weights were saved to")
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


def source_problems(fields) -> list[tuple[str, str, str]]:
    """(field, problem, hint) for each field that does not fit the entry's kind of source
    (`handles.source_kind` of its handle), given the entry's fields as a mapping.

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
            out.append((field, f"only {what} take {field}", f"remove {field}: from this entry"))

    only("weights", ("keras-application",), "keras:NAME entries")
    only("layer", ("keras-file",), ".keras and .h5 model files")
    only("signature", ("module",), "SavedModels")
    if kind in ("keras-application", "keras-hub", "keras-file"):
        if fields.get("input_dtype") not in (None, "float32"):
            out.append(("input_dtype", "Keras models take float32 images",
                        "remove input_dtype: from this entry"))
    if kind in ("keras-application", "keras-hub"):
        if fields.get("value_range", "0,1") != "0,1":
            out.append(("value_range", "hubensemble feeds this model images in [0, 1] and "
                        "applies its own preprocessing inside it",
                        "remove value_range: from this entry (or write [0, 1])"))
    if kind == "keras-application":
        app = KERAS_APPLICATIONS.get(handle[len("keras:"):])
        size = fields.get("input_size")
        if app is not None and size is not None and min(size) < app.min_size:
            out.append(("input_size", f"{handle} needs at least {app.min_size} x "
                        f"{app.min_size} pixels", f"write input_size: [{app.input_size}, "
                        f"{app.input_size}] (its ImageNet resolution) or at least "
                        f"[{app.min_size}, {app.min_size}]"))
        dim = fields.get("output_dim")
        if app is not None and dim is not None and dim != app.output_dim:
            out.append(("output_dim", f"{handle} gives {app.output_dim}-d features, not {dim}",
                        f"write output_dim: {app.output_dim} or leave it out"))
    return out


def field_source(spec, field) -> str:
    """"FILE:LINE" of the line where the catalogue wrote `field` of entry `spec`
    (`catalogue.ModuleSpec.field_source`), else the entry's `source` (a record without field
    lines): a warning about one field points at it, as a problem of the field does (the
    warnings named the entry's `- name:` line)."""
    where = getattr(spec, "field_source", None)
    return where(field) if callable(where) else spec.source


def local_handle_warnings(specs) -> list[str]:
    """A warning line per local handle or `weights:` file that does not exist on this machine
    (not an error: the catalogue may be meant for another machine, where rank runs), with the
    URL a mistyped scheme probably meant or, for one written as Windows writes paths, the
    form to write here (`winpaths.WindowsPath.advice`), or that exists but holds no module
    (`local_source`), or a weights file that holds no weights (`pathnotes.weights_file_problem`,
    rank's rule: empty, text, not HDF5, cut short)."""
    def said(value) -> str:  # as the file holds it: repr() doubled each backslash, naming
        return f"'{escaped(value)}'"  # a path no one wrote

    notes = []
    for spec in specs:
        weights, taken = getattr(spec, "weights", None), from_defaults(spec, "weights") or ""
        if weights not in (None, "imagenet") and not os.path.exists(weights):
            form = windows_form(weights)
            notes.append(f"warning: {field_source(spec, 'weights')}: {taken}weights file "
                         f"{said(weights)} "
                         + (form.advice(escape=False) if form else "does not exist on this "
                            "machine" + (variables_note(weights) or sibling_note(weights)))
                         + "; rank will skip it here")
        elif weights not in (None, "imagenet") and os.path.isfile(weights) and (
                problem := weights_file_problem(weights)):  # rank's rule and words
            notes.append(f"warning: {field_source(spec, 'weights')}: {taken}{escaped(problem)}; "
                         "rank will skip it")
        if handle_kind(spec.handle) != "local":
            continue
        at = field_source(spec, "handle")
        if os.path.exists(spec.handle):
            if os.path.isfile(spec.handle) and local_source(spec.handle) is None:
                notes.append(f"warning: {at}: {escaped(file_not_module(spec.handle))}; rank "
                             "will skip it")
            elif local_source(spec.handle) == "saved-model" and (
                    problem := saved_model_pb_problem(spec.handle)):  # empty, text, cut short
                notes.append(f"warning: {at}: {escaped(problem)}; rank will skip it")
            elif local_source(spec.handle) is None:  # rank's test (hub.resolvers.resolve)
                notes.append(f"warning: {at}: handle {said(spec.handle)} holds no module "
                             "(no saved_model.pb, .keras/.h5 file or keras-hub preset)"
                             + modules_inside(spec.handle) + "; rank will skip it")
            continue
        form = windows_form(spec.handle)
        if form is not None:  # C:\models\m: the catalogue was written for Windows
            notes.append(f"warning: {at}: handle {said(spec.handle)} "
                         f"{form.advice(escape=False)}; rank will skip it here")
            continue
        text = (f"warning: {at}: handle {said(spec.handle)} does not exist on this machine"
                + (variables_note(spec.handle) or sibling_note(spec.handle)))
        host = re.search(r"(?:^|/)((?:www\.)?(?:tfhub\.dev|kaggle\.com))/", spec.handle)
        if host:
            text += f" (read as a local path: for a URL write https://{host.group(1)}/...)"
        notes.append(text + "; rank will skip it here")
    return notes


def kaggle_framework(framework: str) -> str:
    """One spelling of a Kaggle Models framework: "TensorFlow2", "tensorFlow2", "tensorflow2"
    and "TENSOR_FLOW_2" all name ModelFramework.MODEL_FRAMEWORK_TENSOR_FLOW_2, by the rule
    of Kaggle's client (kagglehub.enum.to_enum: case and underscores ignored); lower case,
    without underscores ("tensorflow2")."""
    return framework.replace("_", "").lower()


def canonical_handle(handle: str) -> str:
    """One text per place a (stored) handle names, so that two spellings of it compare equal:
    a Kaggle Models handle as its https://www.kaggle.com/models/O/M/F/V/N URL (`kaggle_url`:
    ``kaggle:O/M/F/V/N`` and the long …/frameworks/…/variations/…/versions/… URL alike; the
    framework F as `kaggle_framework`, so "TensorFlow2" and "tensorFlow2" are one), a
    local path or file:// URL as the real absolute path (links resolved), an http(s) or gs
    URL with its scheme and host in lower case; any other handle as given. Looks at the file
    system only for local paths (no network). A tfhub.dev URL's trailing "/" is dropped, as
    `stored_handle` drops it."""
    handle = url_case(handle)
    kind = handle_kind(handle)
    if kind == "kaggle" and _kaggle_parts(handle) is not None:
        owner, model, framework, variation, version = _kaggle_parts(handle)
        return "https://www.kaggle.com/models/" + "/".join(
            (owner, model, kaggle_framework(framework), variation, version))
    if kind == "local":
        return os.path.realpath(stored_handle(handle, os.getcwd()))
    return handle.rstrip("/") if kind == "tfhub" else handle


#: The entry fields besides the handle that change what a module computes: two entries that
#: agree on them and name the same module (`canonical_handle`, or the same sha256) embed the
#: same and would be tuned alike.
#: `trust` too: a module refused as untrusted and the same one trusted are two readings (the
#: fault suite's reader-trusted entry was dropped as a duplicate of the refused one).
SAME_MODULE_FIELDS = ("weights", "layer", "signature", "output_key", "value_range",
                      "input_size", "native_size", "input_dtype", "trust")


#: The SAME_MODULE_FIELDS whose value left out means the module's own default, which
#: `same_module_pairs` resolves (`entry_reading`) where it can without loading the module.
DEFAULTED_FIELDS = ("signature", "output_key")


def entry_reading(spec, fetched=None) -> dict | None:
    """{"signature": …, "output_key": …} a catalogue entry (a ModuleSpec-like record) is
    called through (`signature_reading`) when its handle is a local SavedModel folder, or
    one `fetched` (entry -> local path: rank's resolver, which downloads a remote handle
    into the cache) gives; None for any other (telling needs the module fetched or loaded),
    or when it cannot be told, or `fetched` raises. What `same_module_pairs` compares
    DEFAULTED_FIELDS by."""
    if handle_kind(spec.handle) == "local":
        path = canonical_handle(spec.handle)
    elif fetched is None:
        return None
    else:
        try:
            path = fetched(spec)
        except Exception:  # noqa: BLE001 - a module that cannot be fetched: rank says why
            return None
    found = signature_reading(path, getattr(spec, "signature", None),
                              getattr(spec, "output_key", None))
    return None if found is None else {"signature": found[0], "output_key": found[1]}


def same_module_pairs(specs, *, fetched=None,
                      disowned=None) -> list[tuple[object, object, str]]:
    """(later, earlier, why) for each entry of `specs` (ModuleSpec-like records, in catalogue
    order) that loads the very module an earlier entry loads, read the same way (every
    SAME_MODULE_FIELDS value equal): the same handle in any spelling (`canonical_handle`;
    why "the same handle H", H the canonical form) or the same `sha256` pin (why "the same
    sha256 0123456789ab…"). Each later entry is paired with the first such earlier one.
    `disowned(later, earlier)`, when given, is True for two entries of one pin that are not
    one module (`catalogue_pins.pin_disowned`, which imports this module: callers pass it),
    not paired by that pin: an entry copied from another with its handle changed and the
    other's pin kept was ranked once, as the other ("duplicate"), its own never checked.

    Two entries of one module that differ only in DEFAULTED_FIELDS are compared by what those
    resolve to (`entry_reading`: a local SavedModel's saved_model.pb is read, nothing
    loaded), so one that leaves `signature` out and one that writes out the default
    `catalogue add` found ("serving_default") are the same reading. A remote handle is
    compared so only with `fetched` (entry -> its local path; rank passes its resolver),
    else as written."""
    earlier_by_key, pairs = {}, []
    for spec in specs:
        keys = [("handle", canonical_handle(spec.handle))]
        if getattr(spec, "sha256", None):
            keys.append(("sha256", spec.sha256.lower()))
        found = next(((key, other) for key in keys for other in earlier_by_key.get(key, ())
                      if _same_reading(spec, other, fetched) and not (
                          key[0] == "sha256" and disowned and disowned(spec, other))), None)
        if found is not None:
            (kind, value), other = found
            why = (f"the same handle {value}" if kind == "handle" else
                   f"the same sha256 {value[:12]}…")
            pairs.append((spec, other, why))
        for key in keys:
            earlier_by_key.setdefault(key, []).append(spec)
    return pairs


def _same_reading(a, b, fetched=None) -> bool:
    """Whether entries `a` and `b` (of one module) read it the same way: every
    SAME_MODULE_FIELDS value equal, or equal once DEFAULTED_FIELDS are resolved
    (`entry_reading`)."""
    differ = {f for f in SAME_MODULE_FIELDS if getattr(a, f, None) != getattr(b, f, None)}
    if not differ:
        return True
    if not differ <= set(DEFAULTED_FIELDS):
        return False
    ra, rb = entry_reading(a, fetched), entry_reading(b, fetched)
    return ra is not None and ra == rb


def same_files_as(spec, fingerprint, ranked) -> tuple | None:
    """(earlier, why) for an entry whose module, located, has the files' `fingerprint`
    (`hub.ModuleFiles.fingerprint`: its bytes, layer and signature) when an entry of `ranked`
    ([(spec, fingerprint)] in catalogue order) has the same files read the same way (every
    SAME_MODULE_FIELDS value equal), though not the same handle nor pin: a tfhub.dev URL and
    its Kaggle name (no rule maps one to the other offline; the server redirects), a copy of
    a folder. why is "the same files (fingerprint 0123456789ab…)"; None when none has."""
    for earlier, theirs in ranked:
        if theirs == fingerprint and _same_reading(spec, earlier):
            return earlier, f"the same files (fingerprint {fingerprint[:12]}…)"
    return None


def duplicate_reason(earlier, why, failed_reason=None, later=None, *, listed=None) -> str:
    """rank's reason for an entry (`later`, when given: its sha256 is compared, `pins_note`)
    that loads the same module as the `earlier` entry, read the same way
    (`same_module_pairs`' `why`): it is ranked once, as that one, so neither embedded nor
    tuned twice; with `failed_reason` (the earlier entry failed), that too. The way on is to
    leave one of them out "of the catalogue" when both entries came from catalogue files
    (their `source`, FILE:LINE; `listed`: the later entry's, when `later` is not given; with
    neither, the earlier's tells), else "of the modules you passed": ModuleSpecs made in
    Python have no catalogue to edit."""
    said = (f"ranked once, as {earlier.name!r}, which failed: {failed_reason}" if failed_reason
            else f"ranked once, as {earlier.name!r}")
    if listed is None:  # neither given: as the earlier entry came
        listed = later.source if later is not None else earlier.source
    where = "the catalogue" if earlier.source and listed else "the modules you passed"
    return (f"loads the same module as entry {earlier.name!r} ({earlier.source or 'above'}), "
            f"read the same way ({why}): {said}"
            f"{pins_note(later, earlier, checked=not failed_reason) if later else ''}; leave "
            f"one of them out of {where}")


def same_module_warnings(specs, *, across_files=False, disowned=None) -> list[str]:
    """A warning line per `same_module_pairs` pair (`disowned` as it takes it), naming both
    entries' FILE:LINE: rank embeds such a module once, under the earlier entry, and records
    the later as a duplicate (not ranked, so not tuned). With `across_files`, only pairs
    whose entries come from different files (their `source`s)."""
    notes = []
    for later, earlier, why in same_module_pairs(specs, disowned=disowned):
        if across_files and later.source.rpartition(":")[0] == earlier.source.rpartition(":")[0]:
            continue
        notes.append(f"warning: {later.source or later.name}: "
                     f"{same_module_note(later, earlier, why)}")
    return notes


def same_module_note(later, earlier, why) -> str:
    """The words of a `same_module_pairs` pair (`later`, `earlier`, `why`), the one wording
    of `catalogue validate`'s warning (`same_module_warnings`) and `catalogue add`'s:
    "entry 'b' loads the same module as entry 'a' (FILE:LINE), read the same way (WHY):
    rank embeds and ranks it once, as 'a'; leave one of them out"."""
    as_earlier = "" if pins_differ(later, earlier) else f", as {earlier.name!r}"
    return (f"entry {later.name!r} loads the same module as entry {earlier.name!r} "
            f"({earlier.source or 'above'}), read the same way ({why}): rank embeds and ranks "
            f"it once{as_earlier}{pins_note(later, earlier)}; leave one of them out")


def pins_differ(a, b) -> bool:
    """Whether entries `a` and `b` of one local module both pin a `sha256`, and differ: rank
    checks each (a remote copy of other bytes than a pin is fetched again: hub.resolvers)."""
    pins = getattr(a, "sha256", None), getattr(b, "sha256", None)
    return all(pins) and pins[0] != pins[1] and handle_kind(a.handle) == "local"


def pins_note(later, earlier, *, checked=False) -> str:
    """"; …" when the `sha256` of `later` (a pair of `same_module_pairs`: one module) is set
    and differs from `earlier`'s, else "": rank checks `earlier`'s pin alone (both, of a local
    module: `pins_differ`). `checked`: `earlier` loaded, so its pin (when set) matched the
    files and `later`'s is the wrong one. Pins are compared as stored (lower case)."""
    mine, theirs = getattr(later, "sha256", None), getattr(earlier, "sha256", None)
    if not mine or mine == theirs:
        return ""
    if not theirs:
        return (f"; its sha256 {mine[:12]}… is never checked: {earlier.name!r}, which rank "
                f"loads, has none")
    if checked:
        return (f"; its sha256 {mine[:12]}… is not the module's: the files matched the pin "
                f"of {earlier.name!r}, {theirs[:12]}…")
    return (f"; their sha256 differ ({mine[:12]}… here, {theirs[:12]}… at "
            f"{earlier.source or 'above'}): at most one is the module's files" + (
                "; rank checks each and ranks the one they match (the other fails, stage "
                "checksum)" if pins_differ(later, earlier) else f", and rank checks "
                f"{earlier.name!r}'s only"))
