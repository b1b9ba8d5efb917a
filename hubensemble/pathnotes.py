"""What a catalogue's local path that cannot be used is said with, told from the file system
alone (no TensorFlow): `sibling_note`, the entry of its folder it most likely mistypes. The
words of `catalogue validate`'s warnings (`handles.local_handle_warnings`) and of rank's and
fit's skip reasons (`catalogue_here`), kept here so that both say a path alike."""

from __future__ import annotations

import os

from hubensemble.localfiles import KERAS_FILE_SUFFIXES
from hubensemble.text import closest_name


def sibling_note(path: str) -> str:
    """"; did you mean PATH2?" for the entry of `path`'s existing parent folder that its last
    name most likely mistypes (`text.closest_name`) and a handle can name (a folder, or a
    KERAS_FILE_SUFFIXES file: ".../saved_model.pbb" was offered saved_model.pb), in `path`'s
    form; "" when the parent is no folder here, cannot be listed, or holds no such entry. One
    rule of rank's, fit's (`catalogue_here`) and `catalogue validate`'s words."""
    head, name = os.path.split(path.rstrip("/\\") or path)
    if not name or not os.path.isdir(head or "."):
        return ""
    try:
        siblings = [e for e in os.listdir(head or ".") if e != name and (os.path.isdir(
            os.path.join(head or ".", e)) or e.lower().endswith(KERAS_FILE_SUFFIXES))]
    except OSError:
        return ""
    close = closest_name(name, siblings)
    return f"; did you mean {os.path.join(head, close)}?" if close else ""
