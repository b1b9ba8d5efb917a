"""The export `predict` or `evaluate_model` loaded last, kept for the next call on the same,
unchanged export."""

from __future__ import annotations

import json
import os
import threading
from typing import Callable

#: The files of a SavedModel whose change makes it another model, beside its variables/
#: files (each listed): its graph, its fingerprint and its metadata asset.
_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb",
                os.path.join("assets", "hubensemble.json"))

_LOCK = threading.Lock()
_KEPT: list = []  # [(key, loaded)]: at most one, the export predicted or evaluated last


def export_key(model_dir, meta: dict) -> tuple:
    """What `kept` compares to serve a load again: the export folder's real path; its
    metadata `meta` (the dict `formats.read_export_metadata` read, with the export's
    "digest" of every variable's value) as sorted JSON; and (device, inode, size, mtime_ns,
    ctime_ns) of each of its model files (_MODEL_FILES and every file in variables/; None
    for one that is missing). A re-export to the same folder (`fileio.replace_dir`: new
    files), a file copied over or edited in place (its ctime moves, whatever its mtime) or
    removed, and a link pointed elsewhere each give another key. Raises nothing: a folder
    that cannot be listed gets a key of its own (its load then says why)."""
    real = os.path.realpath(os.fspath(model_dir))
    names = list(_MODEL_FILES)
    try:
        names += sorted(os.path.join("variables", n)
                        for n in os.listdir(os.path.join(real, "variables")))
    except OSError:
        names.append("variables")  # (missing: its stat below is None)
    stats = []
    for name in names:
        try:
            st = os.stat(os.path.join(real, name))
        except OSError:
            stats.append((name, None))
            continue
        stats.append((name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return real, json.dumps(meta, sort_keys=True, default=repr), tuple(stats)


def kept(model_dir, meta: dict, load: Callable):
    """The loaded SavedModel of the export at `model_dir` (metadata `meta`): the one this
    process loaded last when `export_key` is unchanged since, else `load(model_dir)`
    (`formats.load_saved_model`), which is then kept in its place.

    Why: a library caller of `predict` (or `evaluate_model`) in a loop paid
    tf.saved_model.load and the first call's graph set-up at every call (bench_predict.py:
    ~1.6 s of CPU for a call on 32 files of a two-member test export, 45 times the
    serve_bytes calls themselves). Memory:
    one export is held until the process ends, another export is loaded or `forget` is
    called: its variables (about the size of its variables/ folder) and its graphs (a
    few MB for the test exports). A load that raises keeps nothing and forgets nothing.
    Thread-safe: two threads may load the same export at once; the last load is kept."""
    key = export_key(model_dir, meta)
    with _LOCK:
        if _KEPT and _KEPT[0][0] == key:
            return _KEPT[0][1]
    loaded = load(model_dir)
    with _LOCK:
        _KEPT[:] = [(key, loaded)]
    return loaded


def forget() -> None:
    """Drops the export `kept` holds (its memory is TensorFlow's to free); the next
    `predict` or `evaluate_model` loads its export again."""
    with _LOCK:
        _KEPT.clear()
