"""What a catalogue's local path that cannot be used is said with, told from the file system
alone (no TensorFlow): `sibling_note`, the entry of its folder it most likely mistypes, and
`weights_file_problem`, a ``keras:NAME`` entry's `weights:` file that holds no weights; and
`from_defaults`, the entry a value taken from `defaults:` is said with. The
words of `catalogue validate`'s warnings (`handlewarnings.local_handle_warnings`) and of rank's and
fit's skip reasons (`catalogue_here`), kept here so that both say a path alike."""

from __future__ import annotations

import os

from hubensemble.localfiles import KERAS_FILE_SUFFIXES, keras_file_problem
from hubensemble.text import closest_name


def sibling_note(path: str) -> str:
    """"; did you mean PATH2?" for the entry of `path`'s existing parent folder that its last
    name most likely mistypes (`text.closest_name`) and a handle can name (a folder, or a
    KERAS_FILE_SUFFIXES file: ".../saved_model.pbb" was offered saved_model.pb), in `path`'s
    form; "" when the parent is no folder here, cannot be listed, or holds no such entry. One
    rule of rank's, fit's (`catalogue_here`) and `catalogue validate`'s words. The path is
    said normalised (a relative one keeping a written "./"): "/w/./mods/m" was offered
    "/w/./mods/m0", a path as joined, not as anyone writes it."""
    dotted = path.startswith(("./", ".\\"))
    path = os.path.normpath(path.rstrip("/\\") or path)
    if dotted and path != ".":
        path = os.path.join(".", path)
    head, name = os.path.split(path)
    if not name or not os.path.isdir(head or "."):
        return ""
    try:
        siblings = [e for e in os.listdir(head or ".") if e != name and (os.path.isdir(
            os.path.join(head or ".", e)) or e.lower().endswith(KERAS_FILE_SUFFIXES))]
    except OSError:
        return ""
    close = closest_name(name, siblings)
    return f"; did you mean {os.path.join(head, close)}?" if close else ""


def weights_file_problem(path: str) -> str | None:
    """Why the existing file `path` (a ``keras:NAME`` entry's `weights:` file: .h5,
    .weights.h5, .hdf5 or .keras) holds no weights Keras can load, from its first bytes and
    size (`localfiles.keras_file_problem`: empty, text such as a saved web page, not HDF5 /
    not a zip, cut short; or unreadable): "the weights file PATH is not an HDF5 file: it holds
    nothing (0 bytes)"; None when it is a file of the right kind. One rule for rank and fit
    (`catalogue_here.weights_file_words`, which `hub.locate` raises) and `catalogue validate`
    (`handlewarnings.local_handle_warnings`): validate said "ok" of an empty weights file rank then
    skipped."""
    try:
        return keras_file_problem(path, name=f"the weights file {path}")
    except OSError as e:
        return f"the weights file {path} cannot be read ({e.strerror or e})"


#: The key of an entry's `lines` ({field: LINE}) whose value is the frozenset of the fields it
#: took from `defaults:` (`catalogue._parse_entry`): a problem found later of such a field
#: names the entry it applies to (`from_defaults`), not only the `defaults:` line. Not a
#: field name, so no field's line is shadowed.
DEFAULTED = "defaults"


def from_defaults(spec, field) -> str | None:
    """"(the `defaults:` value, taken by entry 'NAME' at FILE:LINE) " when catalogue entry
    `spec` (a ModuleSpec-like record with `lines`, `name`, `source`) took `field` from
    `defaults:` (DEFAULTED), else None: a problem of it is said at the `defaults:` line
    (`handlewarnings.field_source`), which named no entry (`catalogue validate` said "field
    'input_size': [64, 64], but …" at the defaults line once per entry). The words of the
    parser's own refusals of such a value (`catalogue._parse_entry`)."""
    if field not in ((getattr(spec, "lines", None) or {}).get(DEFAULTED) or ()):
        return None
    return f"(the `defaults:` value, taken by entry {spec.name!r} at {spec.source}) "
