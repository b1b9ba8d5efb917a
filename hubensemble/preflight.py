"""What a command needs from its run folder, checked before TensorFlow loads.

Importing TensorFlow takes 6-11 s on a 2-core machine. A command whose run folder cannot serve
it (a mistyped folder, a damaged run.json, an export without ensemble.json, costs without
candidates) would otherwise wait that long for a one-line refusal. Every check here reads
files only (json, numpy) and raises the very error the stage itself raises on the same
folder, so a Python caller and the command line see the same words.
"""

from __future__ import annotations

import os

from hubensemble import candidate, options
from hubensemble.formats import check_export_target
from hubensemble.rundir import Run

#: The run-folder stages whose folder is checked (cli: `--run RUN`).
RUN_STAGES = ("tune", "ensemble", "export", "cost", "distill")


def check_run(run_dir, command: str, *, restart: bool = False) -> None:
    """Raises the RunError `command`'s stage would raise on `run_dir` after TensorFlow loads.

    For a stage of RUN_STAGES: a folder that holds no run (`Run.require_started`, unless it
    holds results, which a stage may complete), a damaged run.json (`Run.meta`); for `tune`,
    a missing or unreadable ranking.json and a run.json without data (`Run.tune_inputs`); for
    `export` and `distill`, a missing or unreadable ensemble.json (`ensemble.read_ensemble`,
    naming `tune` first when no candidate is usable); for `cost`, no usable candidate
    (`candidate.require_pool`). For `fit` and `demo` (the folder may not exist yet) a damaged
    run.json, unless `restart` (which discards the folder unread). Otherwise, or when
    `run_dir` is None: nothing.
    """
    if run_dir is None or (command in ("fit", "demo") and restart):
        return
    run = Run(os.fspath(run_dir))
    if command in ("fit", "demo"):
        run.meta()
        return
    if command not in RUN_STAGES:
        return
    if not run.holds_results():
        run.require_started()
    run.meta()
    if command == "tune":
        run.tune_inputs()
    elif command in ("export", "distill"):
        from hubensemble.ensemble import read_ensemble

        read_ensemble(run.path)
    elif command == "cost":
        from hubensemble.ensemble import load_candidates

        # The records alone say whether a candidate may be usable; the stage loads the
        # probability tables. Only when none may be, load_pool (which then loads no table)
        # gives the stage's words.
        found, _ = candidate.scan(run.candidates)
        if not any(c.status == "ok" and not c.problems for c in found):
            candidate.require_pool(run.candidates, run.path, *load_candidates(run.path))


def check_export_flags(out_dir, *, export_format: str, quantize: str,
                       tflite_size: int | None) -> None:
    """`export`'s flags, before its run folder: OptionError when --quantize or --tflite-size
    (`quantize` other than "none", `tflite_size` given) come without `export_format` "tflite"
    (they would do nothing); RunError when `out_dir` (None: RUN/export, checked by the stage)
    is in the way (`formats.check_export_target`). `export_ensemble` runs it too."""
    if export_format != "tflite" and (quantize != "none" or tflite_size is not None):
        given = [f for f, v in (("--quantize", quantize != "none"),
                                ("--tflite-size", tflite_size is not None)) if v]
        raise options.OptionError(f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'}"
                                  " only to the TFLite model; add --format tflite (the "
                                  "SavedModel is always written)")
    if out_dir is not None:
        check_export_target(out_dir)
