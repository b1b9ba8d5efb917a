"""A candidate's probability tables as read (`read_probs`: usable or why not; `npy_damage`:
a .npy file's damage from its header and size; `_table_damage`: a table's verdict remembered
by its file's identity). Split out of `candidate`, which re-exports these names; no
TensorFlow."""

from __future__ import annotations

import os
import time

import numpy as np

from hubensemble.fileio import RACY_SECONDS

#: Rows of a probability table may sum to 1 within this (float32 softmax outputs).
SUM_TOLERANCE = 1e-3


#: read_probs' verdict on a table by its file's identity: the sweep asks whether every
#: planned trial is done after each trial (Keras Tuner's hooks), which must not read every
#: table each time. Writing a file changes its ctime, so a changed table is read again.
_TABLE_VERDICTS: dict[tuple, str | None] = {}


def _table_damage(path) -> str | None:
    """Why the probability table at `path` is not usable (`read_probs`, any row count), or
    None; None too when it is absent (completeness says that)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if time.time() - st.st_ctime < RACY_SECONDS:  # may change again within the same tick
        return read_probs(path, None)[1]
    key = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    if key not in _TABLE_VERDICTS:
        _TABLE_VERDICTS[key] = read_probs(path, None)[1]
    return _TABLE_VERDICTS[key]


def npy_damage(path) -> str | None:
    """Why the .npy file at `path` is damaged, from its header and size alone, or None: a
    file overwritten with other bytes or cut short (`read_probs` says this for a file
    np.load refuses; numpy's own error advised loading it with pickles on)."""
    name = os.path.basename(os.fspath(path))
    try:
        with open(path, "rb") as f:
            fmt = np.lib.format
            read_header = (fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0)
                           else fmt.read_array_header_2_0)
            shape, _, dtype = read_header(f)
            start = f.tell()
        size = os.path.getsize(path)
    except (OSError, ValueError, SyntaxError) as e:
        return f"{name} is damaged: not a .npy array file ({type(e).__name__})"
    if dtype.hasobject:
        return f"{name} is damaged: it holds Python objects, not a table of numbers"
    want = start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size != want:
        return f"{name} is damaged: {size} bytes, its header describes {want}"
    return None


def read_probs(path, rows: int | None) -> tuple[np.ndarray | None, str | None]:
    """(float32 [rows, C] probability table, None) or (None, why it is not usable).

    Usable: a 2-D float array, `rows` rows when given, finite, non-negative, each row
    summing to 1 within SUM_TOLERANCE.

    A float32 table is returned memory-mapped read-only (np.load's mmap_mode="r"): the
    pool of 80 candidates of 1,000 classes and 5,000 images is 3 GB of tables, and reading
    each whole (then stacking them) peaked at 8 GB in ensemble selection. The checks read it
    in blocks of rows (`_table_fault`) through a mapping of their own, dropped after, so
    a table no reader touches stays on disk; another dtype is read and converted (a copy).
    """
    name = os.path.basename(os.fspath(path))
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        return None, f"{name} missing"
    except (OSError, ValueError) as e:
        return None, npy_damage(path) or f"{name} unreadable ({type(e).__name__})"
    if (not isinstance(arr, np.ndarray) or arr.ndim != 2
            or (rows is not None and arr.shape[0] != rows)):
        want = f"[{rows}, C]" if rows is not None else "[N, C]"
        return None, f"{name} has shape {np.shape(arr)}, expected {want}"
    if not np.issubdtype(arr.dtype, np.floating):
        return None, f"{name} holds non-finite or non-float values"
    why = _table_fault(arr, name)
    del arr  # the checked pages leave with this mapping; readers map the file afresh
    if why:
        return None, why
    table = np.load(path, mmap_mode="r", allow_pickle=False)
    if table.dtype == np.float32 and table.dtype.isnative:
        return np.asarray(table), None  # a view of the mapping (ndarray, not np.memmap)
    return np.array(table, np.float32), None


#: Rows `_table_fault` checks at a time (1,000 classes: 16 MB of float32 per block).
CHECK_ROWS = 4096


def _table_fault(arr, name) -> str | None:
    """Why float table `arr` [N, C] is no probability table (non-finite, negative, a row not
    summing to 1 within SUM_TOLERANCE), or None, checked CHECK_ROWS rows at a time: the
    same per-row sums as on the whole table, without a copy of it."""
    blocks = range(0, len(arr), CHECK_ROWS)
    if not all(np.all(np.isfinite(arr[lo:lo + CHECK_ROWS])) for lo in blocks):
        return f"{name} holds non-finite or non-float values"  # said first, as before
    for lo in blocks:
        block = np.asarray(arr[lo:lo + CHECK_ROWS])
        if block.size and (block.min() < 0
                           or np.abs(block.sum(axis=1) - 1).max() > SUM_TOLERANCE):
            return f"{name} rows are not probabilities (negative or not summing to 1)"
    return None
