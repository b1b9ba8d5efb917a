"""The record of an evaluation's finished cells (clean, each corruption x severity): an interrupted
`evaluate --corruptions` resumes where it stopped.

A grid of 5 corruptions x 3 severities is 16 passes over the test split; Ctrl-C or a kill in the
14th started all 16 again. Each cell's scores are written as it finishes, atomically
(`fileio.atomic_write_json`: the record is the one before or the one after, never half of one),
to ``$XDG_CACHE_HOME/hubensemble/evaluations/KEY.json`` (~/.cache/…): a user cache, as the
embedding cache is, so that any evaluation resumes, whether it writes --out, RUN/robustness.json
(fit's evaluate stage) or nothing. KEY is the sha256 of all a cell's scores depend on but the
cell itself (`cells_key`): the export's files, the data's fingerprint, the split, the seed, the
batch size, the corruptions' parameters and hubensemble's version; a cell of another export,
other data or other flags is never read. The record is removed when the evaluation completes;
a record of one never run again stays (a few KB). Cells are kept as their scores (metrics
dicts), which JSON holds exactly: a resumed result is the one an uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

from hubensemble.text import counted

log = logging.getLogger(__name__)

#: The record's format; a record of another is not read (its cells are computed again).
CELLS_FORMAT = 1
#: How the clean cell is named in the record (a corruption's name is never this).
CLEAN = "clean"


def cells_folder() -> str:
    """``$XDG_CACHE_HOME/hubensemble/evaluations`` (else ~/.cache/…; `environment.user_cache_dir`):
    where the records live."""
    from hubensemble.environment import user_cache_dir

    return user_cache_dir("hubensemble", "evaluations")


def _export_files(model_dir) -> list:
    """[relative path, size, mtime_ns] of every file under the export folder `model_dir`,
    sorted: `export` writes a new folder (new files, new times) every time, so an export
    written again since, even with the same members, has another listing."""
    root = os.fspath(model_dir)
    files = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:  # gone while listed: it is not part of the key
                continue
            files.append([os.path.relpath(path, root).replace(os.sep, "/"), st.st_size,
                          st.st_mtime_ns])
    return sorted(files)


def cells_key(model_dir, task, split: str, *, seed: int, batch_size: int,
              parameters: dict) -> str:
    """sha256 (64 hex digits) of what an evaluation cell's scores depend on, but the cell:
    the export's files (`_export_files`: names, sizes, modification times), the task's
    fingerprint (`Task.fingerprint`: classes, labels, pixels of every split) and the scored
    `split`, the corruptions' `seed` and the `batch_size` (int >= 1: a batch's floats may
    round otherwise), `parameters` (`corruptions.PARAMETERS`: what each severity means) and
    hubensemble's version (how a corruption is made)."""
    from hubensemble import __version__

    what = {"format": CELLS_FORMAT, "export": _export_files(model_dir),
            "data": task.fingerprint, "split": split, "seed": int(seed),
            "batch_size": int(batch_size), "parameters": parameters, "version": __version__}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


class CellRecord:
    """The finished cells of one evaluation (`key`: `cells_key`), kept in `path`
    (`cells_folder()/KEY.json` unless given).

    `cells`: {(name, severity): scores}, name CLEAN (severity None) or a corruption's, the
    scores `evaluate_model`'s per condition ({"ensemble": metrics, "best_single": metrics or
    None}). `add` writes the record at once; `remove` deletes it when the evaluation is
    complete. A folder that cannot be written is warned of once (`environment.cache_unwritable`)
    and the evaluation goes on, not resumable; never raises for the record."""

    def __init__(self, key: str, path=None):
        self.key = key
        self.path = os.fspath(path) if path else os.path.join(cells_folder(), key + ".json")
        self.cells: dict[tuple[str, int | None], dict] = {}
        self._writable = True

    def read(self) -> dict:
        """The cells the record holds (also kept in `cells`): {} without a record, or for one
        of another format or key, or that cannot be read (said at DEBUG: they are computed
        again)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                record = json.load(f)
            if record.get("format") != CELLS_FORMAT or record.get("key") != self.key:
                raise ValueError("of another format or key")
            self.cells = {(c["corruption"], c["severity"]): c["scores"] for c in record["cells"]}
        except FileNotFoundError:
            self.cells = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            log.debug("not reading the evaluation cells in %s: %s", self.path, e)
            self.cells = {}
        return self.cells

    def add(self, cell: tuple[str, int | None], scores: dict) -> None:
        """Records `scores` of `cell` ((name, severity)) and writes the record atomically."""
        self.cells[cell] = scores
        if not self._writable:
            return
        from hubensemble.fileio import atomic_write_json

        record = {"format": CELLS_FORMAT, "key": self.key,
                  "cells": [{"corruption": name, "severity": sev, "scores": s}
                            for (name, sev), s in self.cells.items()]}
        try:
            atomic_write_json(self.path, record)
        except OSError as e:
            from hubensemble.environment import (CacheFolder, cache_unwritable,
                                                 path_from_environment)

            self._writable = False
            named = "variable" if path_from_environment("XDG_CACHE_HOME") else "default"
            cache_unwritable(CacheFolder(os.path.dirname(self.path), "evaluation record",
                                         "XDG_CACHE_HOME", source=named), e,
                             "evaluate goes on (stopped, it would start over)")

    def remove(self) -> None:
        """Deletes the record (the evaluation is complete); nothing when there is none."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.debug("could not remove %s: %s", self.path, e)


def kept_words(kept: int, total: int, clean: bool, path) -> str:
    """What a resumed evaluation says it kept: "evaluate: kept the clean scores and 6 of 15
    corruption cells from the interrupted run (PATH); 9 passes over the split left"
    (`kept` >= 0 of `total` >= 1 corruption cells, `clean` whether the clean scores were
    kept; at least one of them kept)."""
    parts = (["the clean scores"] if clean else []) + (
        [f"{kept} of {counted(total, 'corruption cell')}"] if kept else [])
    left = total - kept + (0 if clean else 1)
    return (f"evaluate: kept {' and '.join(parts)} from the interrupted run ({path}); "
            f"{counted(left, 'pass', 'passes')} over the split left")
