"""The finished modules of an unfinished zoo build, kept beside its folder (``OUT.partial``)
so that the next build of the same recipe reuses them instead of training them again."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil

from hubensemble.fileio import atomic_write_json, file_sha256, fitted_name, read_json
from hubensemble.text import counted, escaped
from hubensemble.zoo.config import ModelPlan, ZooConfig, recipe_difference
from hubensemble.zoo.workers import TRAIN_THREADS

log = logging.getLogger(__name__)

#: Inside the partial folder: the recipe its modules were built for (written first).
RECIPE_FILE = "partial.json"


def partial_dir(out_dir) -> pathlib.Path:
    """Where a build of the zoo folder `out_dir` keeps its finished modules until the zoo is
    complete: OUT.partial beside it (OUT cut past 255 bytes: `fileio.fitted_name`)."""
    out_dir = pathlib.Path(out_dir)
    return out_dir.parent / fitted_name(out_dir.name, ".partial")


def record_path(parts: pathlib.Path, name: str) -> pathlib.Path:
    """The record of module `name` in the partial folder `parts` (NAME.json: its zoo.json
    entry, with the sha256 of its saved_model.pb), written once the module and its weights
    are whole: a module without one is never taken."""
    return parts / f"{name}.json"


def weights_path(parts: pathlib.Path, name: str) -> pathlib.Path:
    """The trained weights (.npz) of module `name`, kept for its experts' fine-tuning."""
    return parts / f"{name}.npz"


def _difference(parts: pathlib.Path, config: ZooConfig) -> str | None:
    """None when the partial folder `parts` was started for `config`'s recipe (the rule of a
    finished zoo: `config.recipe_difference`, and TRAIN_THREADS); else what differs."""
    try:
        recorded = read_json(parts / RECIPE_FILE)
    except (OSError, ValueError):
        return f"its {RECIPE_FILE} cannot be read"
    if not isinstance(recorded, dict):
        return f"its {RECIPE_FILE} records no recipe"
    why = recipe_difference(recorded.get("config"), config)
    if why is None and recorded.get("train_threads") != TRAIN_THREADS:
        why = f"trained with {recorded.get('train_threads')!r} TensorFlow threads"
    return why


def _kept(parts: pathlib.Path, p: ModelPlan, parent: bool) -> dict | None:
    """The record of module `p` finished whole in `parts` (its record, a saved_model.pb of
    the sha256 it records, and its weights when it is a parent), else None."""
    try:
        record = read_json(record_path(parts, p.name))
        pb = parts / p.name / "saved_model.pb"
        if (isinstance(record, dict) and pb.is_file() and file_sha256(pb) == record.get("sha256")
                and (not parent or weights_path(parts, p.name).is_file())):
            return record
    except (OSError, ValueError):
        pass
    return None


def open_parts(parts: pathlib.Path, config: ZooConfig, plans, parents) -> dict:
    """Makes the partial folder `parts` ready for a build of `config` (its modules `plans`;
    `parents` the names of those whose experts start from their weights) and returns
    {name: record} of the modules an earlier, unfinished build of the same recipe finished
    there. A folder started for another recipe (seed, preset, training …) is removed with a
    warning that says what differs: none of its modules is reused. The build holds its
    lock. Raises OSError when the folder cannot be written."""
    kept = {}
    if parts.is_dir():
        why = _difference(parts, config)
        if why is not None:
            left = [f for f in os.listdir(parts) if f.endswith(".json") and f != RECIPE_FILE]
            log.warning("not reusing the %s an unfinished build of another recipe "
                        "left in %s (%s): removed; every module is built",
                        counted(len(left), "module"),
                        escaped(parts), why)
            shutil.rmtree(parts)
        else:
            for p in plans:
                record = _kept(parts, p, p.name in parents)
                if record is not None:
                    kept[p.name] = record
                else:  # half written, or of a module since trained again: never taken
                    record_path(parts, p.name).unlink(missing_ok=True)
    if not parts.is_dir():
        parts.mkdir()
        atomic_write_json(parts / RECIPE_FILE, {"config": config.to_json(),
                                                "train_threads": TRAIN_THREADS})
    return kept


def kept_count(parts: pathlib.Path) -> int:
    """How many finished modules the partial folder `parts` holds (0 when there is none)."""
    try:
        return sum(1 for f in os.listdir(parts) if f.endswith(".json") and f != RECIPE_FILE)
    except OSError:
        return 0


def take_back(folder: pathlib.Path, parts: pathlib.Path) -> int:
    """Moves the finished modules a stopped build had already moved from the partial folder
    `parts` into its temp zoo `folder` (at its very end, before its zoo.json) back into
    `parts`, before `folder` is removed: those whose record is in `parts`. Returns how many."""
    moved = 0
    if not (folder.is_dir() and parts.is_dir()):
        return 0
    for entry in folder.iterdir():
        if record_path(parts, entry.name).is_file() and not (parts / entry.name).exists():
            os.rename(entry, parts / entry.name)
            moved += 1
    return moved
