"""Where evaluate writes its result (--out, `write_evaluation`'s path): a file checked before
the evaluation, never inside an export folder or a folder a run's exports go to (the next
export would remove it), and a run's robustness.json written with its report written again.
`evaluate` re-exports these. TensorFlow-free."""

from __future__ import annotations

import os
import pathlib

from hubensemble.formats import (EXPORT_DIR, ROBUSTNESS_FILE, STUDENT_EXPORT_DIR,
                                 TFLITE_DIR)
from hubensemble.formats import write_evaluation as _write_file
from hubensemble.errors import HubensembleError
from hubensemble.rundir import Run
from hubensemble.text import absolute


def check_evaluation_target(path) -> None:
    """evaluate --out's check, before the evaluation (`formats.check_evaluation_target`:
    a file that can be written, absent, empty or an earlier evaluation), and not inside an
    export folder (a SavedModel export or a TFLite one, `formats.made_by_hubensemble`): the
    next export replaces that folder whole, and the file would vanish with it (`evaluate
    --out RUN/export/x.json` wrote there without a word). HubensembleError naming the export
    and a path beside it (RUN/robustness.json when the export is a run's, the report's
    input), in the caller's words (--out, or write_evaluation's path)."""
    from hubensemble.formats import check_evaluation_target as check_file

    check_file(path)
    _check_outside_export(path)


#: The folders a run's exports go to (`export`, `export --student`, each with its TFLite
#: folder beside it), by name in the run folder: an evaluation written there before the export
#: exists made the folder, and the export then refused it as "not an export made by hubensemble".
_RUN_EXPORT_FOLDERS = {
    EXPORT_DIR: "where `export` writes the run's export",
    TFLITE_DIR: "where `export --format tflite` writes the run's TFLite model",
    STUDENT_EXPORT_DIR: "where `export --student` writes the run's student",
    STUDENT_EXPORT_DIR + "-tflite": "where `export --student --format tflite` writes the "
                                    "student's TFLite model"}


def _check_outside_export(path) -> None:
    """`check_evaluation_target`'s refusal of a `path` inside an export folder, or inside one
    of the folders a run's exports go to (`_RUN_EXPORT_FOLDERS`, formats' EXPORT_DIR,
    TFLITE_DIR, STUDENT_EXPORT_DIR and its TFLite folder) when it does not exist yet."""
    from hubensemble.formats import made_by_hubensemble
    from hubensemble.lockwords import on_command_line

    here = absolute(os.fspath(path))
    for folder in map(str, pathlib.Path(here).parents):
        what = made_by_hubensemble(folder)
        parent = os.path.dirname(folder)
        run_owned = Run(parent).exists() and os.path.basename(folder) in _RUN_EXPORT_FOLDERS
        if what in ("a hubensemble export", "a hubensemble TFLite export") or run_owned:
            if what not in ("a hubensemble export", "a hubensemble TFLite export"):
                what = _RUN_EXPORT_FOLDERS[os.path.basename(folder)]
            beside = (os.path.join(parent, ROBUSTNESS_FILE) if Run(parent).exists() else
                      os.path.join(parent, os.path.basename(here)))
            another = "another --out file" if on_command_line() else "another path"
            raise HubensembleError(
                f"{here} is inside {folder}, {what}: the next export replaces that folder "
                f"whole, and the file would vanish with it; choose {another} outside it, e.g. "
                f"{beside}"
                + (" (the run's evaluation, which its report shows)"
                   if beside.endswith(os.sep + ROBUSTNESS_FILE) else ""))


def write_evaluation(result: dict, path) -> str:
    """Writes an `evaluate_model` result as JSON at `path` (atomically, `formats`' writer);
    returns the path. When `path` is a run's robustness.json (RUN/robustness.json, the
    report's input), the run's report is written again (`refresh.refresh_report`), as every
    other stage does: `evaluate --model RUN/export --out RUN/robustness.json` left the report
    showing the evaluation before it. Not inside a fit (fit writes the report at its end).
    HubensembleError, nothing written, for a `path` inside an export folder
    (`check_evaluation_target`: the next export would remove it)."""
    _check_outside_export(path)
    written = _write_file(result, path)
    folder, name = os.path.split(absolute(os.fspath(path)))
    if name == ROBUSTNESS_FILE and Run(folder).exists():
        from hubensemble.refresh import refresh_report

        refresh_report(folder, "the new evaluation")
    return written
