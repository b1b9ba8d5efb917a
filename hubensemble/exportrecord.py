"""run.json's record of where a run's last export went ("export": "path", "in_run", "run",
"beside"), written and read here alone, so that a run folder copied or moved elsewhere names
its own export and never the original's. TensorFlow-free; imports no run or candidate
module (`candidate` and `rerun` read it, which `rundir` imports)."""

from __future__ import annotations

import os

from hubensemble.formats import RUN_FILE, is_export
from hubensemble.text import absolute


def export_record(run_path, path) -> dict:
    """The record of an export written to `path` by run `run_path`: "path" (absolute), "in_run"
    (relative to the run folder, None outside it), and for one outside it "run" (the run
    folder then, absolute) and "beside" (the export relative to the run folder, e.g.
    "../model"), which `recorded_export` reads for a run found elsewhere since."""
    path, run = absolute(os.fspath(path)), absolute(os.fspath(run_path))  # "link/.." as read
    inside = os.path.relpath(path, run)
    outside = inside == os.pardir or inside.startswith(os.pardir + os.sep)
    return {"path": path, "in_run": None if outside else inside,
            **({"run": run, "beside": inside} if outside else {})}


def recorded_export(run_path, record) -> str | None:
    """Where the export `record` (run.json's "export", or a stage's copy of it) names for run
    `run_path`: inside the run ("in_run"), there; outside it, its "path", unless the run
    folder is no longer the one that wrote it ("run") and that one still holds a run.json:
    a copy, whose export is the one at "beside" from it when such a folder holds an export
    (the run copied with its export beside it), else none (None): the original's export is
    not the copy's, and commands on the copy wrote over it (`export --run COPY --out
    ORIGINAL/model`, `fit --restart … --export ORIGINAL/model --out COPY`). A run moved (its
    old folder gone) keeps its export where it was. A record without "run" (written before
    it was kept) is read as before: its "path". None when `record` names no export."""
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("in_run"), str) and record["in_run"]:
        return os.path.join(absolute(os.fspath(run_path)), record["in_run"])
    path = record.get("path")
    if not isinstance(path, str) or not path:
        return None
    then, beside = record.get("run"), record.get("beside")
    here = absolute(os.fspath(run_path))
    if not isinstance(then, str) or absolute(then) == here:
        return path
    if isinstance(beside, str) and beside:
        found = os.path.normpath(os.path.join(here, beside))
        if found != absolute(path) and is_export(found):
            return found
    if os.path.exists(os.path.join(then, RUN_FILE)):  # the original is there: a copy
        return None
    return path
