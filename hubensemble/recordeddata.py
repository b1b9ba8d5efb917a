"""The refusal of a run's recorded data by what files alone say, before TensorFlow, in
`Run.task`'s words (`check_recorded_data`, `recorded_data_error`): out of preflight.py, which
the stages' own checks (evaluate's, tune's) import it from without an import cycle through
the command line's checks."""

from __future__ import annotations

import os


def check_recorded_data(run, *, then: str | None = None) -> None:
    """DataError, before TensorFlow, as `Run.task` raises it (naming run.json, with the way on
    for data that moved: `rerun.moved_data_way`) when the data `run` (a Run) records cannot be
    loaded by what files alone say: the refusals `load_task` makes before reading any image,
    with the recorded options (`data.specs.check_spec`: a folder or file gone, a tfds data
    folder holding nothing of the data set, ...). `export` (of the ensemble) and `distill`
    load it first thing, after TensorFlow's import (7-9 s, 700 MB); tune only when it has
    trials to run, so it is not checked here. Nothing when run.json records no data, or
    data given in Python (the stage says so). `then`: the command that goes on once the
    data is back, said after the way on (`recorded_data_error`)."""
    from hubensemble.data.specs import check_spec
    from hubensemble.errors import DataError
    from hubensemble.rundir import DataArgs

    meta = run.meta()
    recorded = run.data_section("args", "task", meta=meta) or None
    if recorded is None:
        return
    args = DataArgs.from_json(recorded["args"])
    if not args.reloadable:
        return
    try:  # load_task's own check, with what DataArgs.load passes it
        check_spec(args.spec, splits=args.splits, val_fraction=args.val_fraction,
                   test_fraction=args.test_fraction, data_dir=args.data_dir,
                   label_key=args.label_key, image_key=args.image_key,
                   **({"min_classes": 0, "min_per_class": 0} if args.label_fn else
                      {"min_per_class": args.min_per_class}))
    except DataError as e:
        raise recorded_data_error(run, meta, str(recorded["args"].get("spec")), e,
                                  then=then) from None


def recorded_data_error(run, meta: dict, spec: str, error, *,
                        then: str | None = None) -> Exception:
    """The DataError `Run.task` makes of `error`, a load's refusal of the data spec `spec`
    run.json (`meta`) of `run` records: "ERROR (the data recorded in RUN/run.json)", with
    the folder a relative spec was read from, and the way on for data that moved; with
    `then` (a command's words, e.g. `sweepwords.call_command`'s), "; then run it again"
    after that way on, or its Python call's "call … again": the fit that records the data's
    new place runs the fit's stages, not the refused command (a tune of another sweep)."""
    from hubensemble.data.specs import is_relative_spec
    from hubensemble.errors import DataError
    from hubensemble.rerun import moved_data_way
    from hubensemble.text import absolute, escaped

    relative = is_relative_spec(spec)
    where = (f"; run.json records {spec}, a path relative to the folder the run started "
             f"in, and this process reads it from {os.getcwd()}" if relative else "")
    way = "" if relative else moved_data_way(run.path, meta, spec)
    if way and then:
        from hubensemble.lockwords import call_verb

        way = f"{way}; then {call_verb()} {then} again"
    # Absolute, as `Run.task` names it (the reference) and as the commands that follow do:
    # "run/run.json" stood beside "--run /abs/run" in one message.
    return DataError(f"{error} (the data recorded in {escaped(absolute(run.meta_path))}{where})"
                     + (f"; {way}" if way else ""))
