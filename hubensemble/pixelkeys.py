"""RUN/labels/pixel_keys.npz: the pixel keys of a run's train and val images, its one reader
and writer. `Run.attach_task` writes it when the run loads its data; `heldout` reads it to tell
which evaluated images trained or chose an export. No TensorFlow, and no import of rundir.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

from hubensemble.errors import RunError
from hubensemble.fileio import atomic_write_bytes, numpy_load_fault
from hubensemble.text import absolute, escaped

#: The splits that train a run's candidates and choose its ensemble (`PixelKeys`).
KEYED_SPLITS = ("train", "val")
#: A field of run.json's data record ("task") that hubensemble began to write after it began
#: to write RUN/labels/pixel_keys.npz (c90a77a, 2026-12-04, after 251b1bf, 2026-12-03): a
#: record that has it was written by a version that writes the file (`keys_expected`).
WRITTEN_SINCE_KEYS = "turned"
#: The way on from a missing or damaged pixel_keys.npz: the run writes it when it loads its
#: data (`Run.attach_task`).
REWRITTEN_BY = "`fit` or `rank` on this run's data writes it again"


@dataclasses.dataclass(frozen=True)
class PixelKeys:
    """The pixel keys (`data.duplicates.pixel_key`, 16 bytes) of a run's train and val images
    when it loaded its data (RUN/labels/pixel_keys.npz): `splits` {split of KEYED_SPLITS the
    data has: frozenset of keys}, `fingerprint` that data's. Never in an export, which ships to
    serving: a list of the training images' digests would tell whether an image trained it."""

    fingerprint: str
    splits: dict


def write_pixel_keys(path, task) -> None:
    """Writes RUN/labels/pixel_keys.npz at `path` (`Run.pixel_keys_path`)
    for `evaluate`: per split of KEYED_SPLITS the task has, uint8 [N, 16] (row i: `pixel_key`
    of example i, as in labels/<split>.npy), and "fingerprint" (the task's, a str array).
    `Run.attach_task` writes it when the run loads its data, so images added to its folder
    later do not change it."""
    keys = {s: np.frombuffer(b"".join(getattr(task, s).pixel_keys()), np.uint8)
            .reshape(-1, 16) for s in KEYED_SPLITS if getattr(task, s) is not None}
    buf = io.BytesIO()
    np.savez(buf, fingerprint=np.array(task.fingerprint), **keys)
    atomic_write_bytes(path, buf.getvalue())


def keys_expected(task_record: dict) -> bool:
    """Whether the run whose run.json data "task" is `task_record` was recorded by a
    hubensemble that writes RUN/labels/pixel_keys.npz (its record has WRITTEN_SINCE_KEYS):
    then a missing file was deleted since, not never written."""
    return WRITTEN_SINCE_KEYS in (task_record or {})


def read_pixel_keys(path) -> PixelKeys | None:
    """RUN/labels/pixel_keys.npz at `path` as a PixelKeys; None when the run has none
    (recorded before the file was). RunError naming it when it is unreadable."""
    rows = read_pixel_key_rows(path)
    return None if rows is None else PixelKeys(rows[0], {s: frozenset(k)
                                                         for s, k in rows[1].items()})


def read_pixel_key_rows(path) -> tuple[str, dict] | None:
    """RUN/labels/pixel_keys.npz at `path` in example order: (the data's fingerprint,
    {split: [16-byte key of example i, as in labels/<split>.npy]}); None when the run has
    none (recorded before the file was). RunError naming it when it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["fingerprint"]), {
                s: [bytes(row) for row in z[s].reshape(-1, 16)]
                for s in KEYED_SPLITS if s in z.files}
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - a damaged zip is BadZipFile, neither OSError
        raise RunError(f"{escaped(absolute(path))} is unreadable ({numpy_load_fault(e)}); "
                       f"{REWRITTEN_BY}"
                       ) from None
