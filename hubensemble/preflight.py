"""What a command needs from its run folder, checked before TensorFlow loads.

Importing TensorFlow takes 6-11 s on a 2-core machine. A command whose run folder cannot serve
it (a mistyped folder, a damaged run.json, an export without ensemble.json, costs without
candidates) would otherwise wait that long for a one-line refusal. Every check here reads
files only (json, numpy) and raises the very error the stage itself raises on the same
folder, so a Python caller and the command line see the same words.
"""

from __future__ import annotations

import logging
import os

from hubensemble import candidate, environment, options
from hubensemble.errors import HubensembleError
from hubensemble.fileio import read_only_mount
from hubensemble.formats import check_export_target, check_tuner_folder
from hubensemble.lockwords import option_word, unwritable_advice
from hubensemble.rundir import Run
# The run's data spec: a leaf (rank.merge asks it too; test_rundir asks it here).
from hubensemble.recordedspec import recorded_spec  # noqa: F401 (re-exported)
# --modules against the ranking or catalogue: sweeps' (sweepplan plans with it), re-exported.
from hubensemble.recordeddata import check_recorded_data, recorded_data_error  # noqa: F401
from hubensemble.sweeps import MODULES_LISTED, check_modules  # noqa: F401
from hubensemble.text import absolute, counted
# What a stage needs against what the process has: said before the work (check_inputs).
from hubensemble.memory import (_MEMORY_SAID, MemoryRefused, memory_key,  # noqa: F401
                                memory_note, refusal, stage_memory_note)

#: What `check_inputs` has to say per run folder (its real path: too little memory,
#: `memory_note`), for `check_run` to say once the run's log is open.
_NOTES: dict[str, list[str]] = {}

#: The run-folder stages whose folder is checked (cli: `--run RUN`).
RUN_STAGES = ("tune", "ensemble", "export", "cost", "distill")


def check_run(run_dir, command: str, *, restart: bool = False, modules=None,
              member: str | None = None, student=None, retrain_full=None,
              skip_missing=None, again=None) -> None:
    """Raises the RunError `command`'s stage would raise on `run_dir` after TensorFlow loads.

    For a stage of RUN_STAGES: a folder that holds no run (`Run.require_started`, unless it
    holds results, which a stage may complete), a damaged run.json (`Run.meta`); for `tune`,
    `restart` in a chief/worker sweep (`member` given: `tunepending.check_restart`, before any
    word of cmd_tune's), run.json's sweep records of another kind (`sweepstate.sweep_records`),
    a missing or unreadable ranking.json and a run.json without data (`Run.tune_inputs`), and
    `modules` (--modules) the ranking lacks or could not embed (`check_modules`, naming with
    `again`, `command_again`'s, the whole command with the modules meant); for
    `distill` and `export` (not of a student), a missing or unreadable ensemble.json
    (`ensemble.read_ensemble`, naming `tune` first when no candidate is usable; export then
    says its first line of progress, `terminal.progress_line`, naming with `student`
    (export's --student) the student it exports, `studentexport.student_for_export`), and
    before it, for distill and export of the ensemble, the data run.json records, as far as
    files say (`check_recorded_data`); for
    `cost`, no usable candidate (`candidate.require_pool`). For `fit` and `demo` (the folder
    may not exist yet) a damaged run.json, unless `restart` (which discards the folder
    unread). For `report`, a run folder
    it cannot write in (`check_report_folder`). For every command, another process's command
    holding `run_dir`'s lock, or a chief/worker sweep's process its own (unless `member`,
    the tuner id of such a process, is given: then only one with its id;
    `Run.check_unlocked`); for a worker of such a sweep (`member`, holding its lock), a last
    chief of its sweep that could not listen at the worker's address, or that ended normally
    with trials of the worker's plan left that were all its own (`sweepend.worker_stop`: the
    worker would wait for a chief, and stop so once TensorFlow had loaded); a chief stopped
    or failed is only warned of (the worker waits for it to be started again). Otherwise, or
    when `run_dir` is None: nothing.
    """
    if command == "report" and run_dir is not None:  # before the lock, which it would write
        check_report_folder(run_dir)
    if run_dir is not None:  # for fit with --restart too: it would clear the folder
        Run(os.fspath(run_dir)).check_unlocked(command, member=member)
        for note in _NOTES.pop(os.path.realpath(run_dir), ()):  # check_inputs' notes
            logging.getLogger(__name__).warning("%s", note)  # the run's log is open now
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
        from hubensemble.sweepstate import sweep_records
        from hubensemble.tunepending import check_restart

        # Its arguments alone: before cmd_tune says a word ("resuming sweep …" came first).
        check_restart(restart, member, None)  # member: any chief/worker call's id

        sweep_records(run.meta(), run.meta_path)  # a hand edit: before TensorFlow, not after
        ranking, _, _ = run.tune_inputs()
        check_modules(modules, ranking.get("modules") or [], again=again,
                      rank_command=run.rank_command())
        if member is not None:  # a worker with no chief to come: at once, before TensorFlow
            from hubensemble.sweepend import worker_stop

            stop = worker_stop(run.path, member)
            if stop is not None:
                raise stop
    elif command in ("export", "distill"):
        from hubensemble.ensemble import read_ensemble

        # export --student exports RUN/distill/'s student, checked against its teacher
        # export: ensemble.json is none of its business, gone or damaged.
        members = (read_ensemble(run.path).get("members")
                   if command == "distill" or student is None else None)
        if command == "distill" or student is None:  # they load the run's data first thing
            # The way on: the fit that records the data's new place, then this command,
            # which that fit does not run again (check_run runs for the command line only).
            check_recorded_data(run, then="the same command")
        if command == "export":
            from hubensemble.exportplan import check_members
            from hubensemble.terminal import progress_line

            # Before TensorFlow: the refusals no flag passes, and, given export's
            # --retrain-full / --skip-missing (bools), a weights file missing, unreadable or
            # changed since tune wrote it, which those decide (after TensorFlow: 28.6 s, 705 MB).
            check_members(run.path, student, retrain_full=retrain_full,
                          skip_missing=skip_missing)

            # The first line of export's progress, before TensorFlow's import and the run's
            # data: 5-7 s on 2 cores in which the terminal showed nothing (its later lines:
            # export.stage); -q silences it as it silences them.
            if student is not None:  # export --student: not the ensemble's members
                from hubensemble.studentexport import student_for_export

                cand = student_for_export(run.path, student)
                what = f"the distilled student {cand.trial} (module {cand.module})"
            else:
                many = len(members) if isinstance(members, list) else "?"
                what = f"the {counted(many, 'member')} of its ensemble"
            progress_line(f"export: loading TensorFlow and the run's data, then {what}")
    elif command == "cost":
        from hubensemble.ensemble import load_candidates

        # The records alone say whether a candidate may be usable; the stage loads the
        # probability tables. Only when none may be, load_pool (which then loads no table)
        # gives the stage's words.
        found, _ = candidate.scan(run.candidates)
        if not any(c.status == "ok" and not c.problems for c in found):
            candidate.require_pool(run.candidates, run.path, *load_candidates(run.path))
        # Not the name check_modules: imported here, it would be this function's local
        # name throughout, and tune's --modules check above read it unbound.
        from hubensemble.cost.entries import check_modules as check_entries

        check_entries(run.path)  # run.json's entries of their modules: before TensorFlow


def check_run_folder(args) -> None:
    """RunError (`Run.require_started`'s words) when the --run of a RUN_STAGES command
    (`args`: cli.main's namespace) holds no run nor a stage's results (`Run.holds_results`):
    the first fault a command line names, before its flags' combinations (`check_inputs`,
    the command's own check), as argparse names a flag it lacks first. `export --run MISSING
    --quantize float16` was told to add --format tflite, then that the folder does not
    exist. Not for export's --add-warmup, which refuses any --run."""
    run_dir = getattr(args, "run", None)
    if args.command not in RUN_STAGES or not run_dir or getattr(args, "add_warmup", None):
        return
    run = Run(os.fspath(run_dir))
    if not run.holds_results():
        run.require_started()


def check_export_flags(out_dir, *, export_format: str, quantize: str,
                       tflite_size: int | None, run_dir=None) -> None:
    """`export`'s flags, before its run folder: OptionError when --quantize or --tflite-size
    (`quantize` other than "none", `tflite_size` given) come without `export_format` "tflite"
    (they would do nothing); RunError when `out_dir` (None: RUN/export, checked by the stage)
    is in the way or inside a run folder other than `run_dir` (`formats.check_export_target`);
    DataError when `out_dir` is inside the image folder `run_dir` records as its data (it
    would be read as a class of it: `data.specs.check_outside_data`).
    `export_ensemble` runs it too; there, a value outside its option's range is an
    OptionError too (e.g. tflite_size 5000: the check batch alone ran out of memory)."""
    for name, value in (("export_format", export_format), ("quantize", quantize),
                        ("tflite_size", tflite_size)):
        options.check(name, value)
    if export_format != "tflite" and (quantize != "none" or tflite_size is not None):
        # In the caller's words: export_ensemble's keywords from Python.
        given = [option_word(f, k) for f, k, v in (
            ("--quantize", "quantize", quantize != "none"),
            ("--tflite-size", "tflite_size", tflite_size is not None)) if v]
        raise options.OptionError(
            f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} only to the TFLite "
            f"model; add {option_word('--format tflite', 'export_format=' + repr('tflite'))} "
            "(the SavedModel is always written)")
    if out_dir is not None:
        check_export_target(out_dir, run_dir=run_dir, tflite=export_format == "tflite")
    if out_dir is not None and run_dir is not None:  # an export is never a class of the data
        from hubensemble.data.specs import check_outside_data

        spec = recorded_spec(run_dir)  # export takes no --data: name whose data it is
        check_outside_data(spec, {option_word("--out", "out_dir"): out_dir},
                           whose=f"the data of the run {run_dir}, {spec}")


def check_outputs_outside_data(args) -> None:
    """DataError (`data.specs.check_outside_data`) when what a command writes would land in
    the image folder it reads or its run records (`args`: cli.main's namespace), before
    anything is made: fit's --out and --export and rank's --out inside --data; evaluate's
    --out FILE inside --data, or without --data inside the data of the run the export sits in
    (a file there is read with the data, and every later load skips it). export's --out is
    checked with its flags (`check_export_flags`), `rank merge --out` by `merge_rankings`'
    own check (`rank.merge.check_shards`, before the shards are read). Predict writes no
    file; tune, ensemble, cost, distill and report write inside their run folder, which
    these keep out of the data."""
    from hubensemble.data.specs import check_outside_data

    command = args.command
    if command in ("fit", "rank") and getattr(args, "data", None):
        check_outside_data(args.data, {"--out": args.out, "--export": vars(args).get("export")})
    elif command == "evaluate" and args.out:
        spec, whose = args.data, None
        if not spec:  # the data of the export's run (load_evaluation_task's)
            run_dir = os.path.dirname(absolute(args.model))
            if not (spec := recorded_spec(run_dir)):  # outside it: the run its metadata names
                from hubensemble.evaluationtask import named_run_data

                named, _ = named_run_data(args.model)
                run_dir, spec = (named.path, recorded_spec(named.path)) if named else (None, None)
            whose = f"the data of the run {run_dir}, {spec}"
        check_outside_data(spec, {"--out": args.out}, file=True, whose=whose)


def _check_scored_split(args) -> None:
    """evaluate's --split train or val of a folder of class folders without train/ val/
    test/ (one test set), refused before TensorFlow and its images, unless the export
    (--model) may have been fit on that folder: `evaluationtask.check_flat_folder_split`
    (the load's own check) on the export's "task" (`exportfolder.task_record`)."""
    from hubensemble.evaluationtask import check_flat_folder_split
    from hubensemble.exportfolder import task_record
    from hubensemble.formats import read_export_metadata

    try:
        made_on = task_record(read_export_metadata(args.model))
    except (HubensembleError, OSError):
        return  # the export's own refusal says it
    check_flat_folder_split(made_on, args.data, getattr(args, "eval_split", None))


def _call_sweep(args) -> tuple[str | None, object]:
    """(sweep, budget) of the command line `args` (tune, fit, demo): as typed, or for tune
    without --sweep the run's sweep and budget (`sweepwords.resumed_call`) of a --run that
    holds a run (`tunepending.holds_run`), else (None, None): a missing folder read as no
    sweep, and the default's budget was refused with a command naming that folder; the run
    folder's own refusal says it."""
    sweep, budget = getattr(args, "sweep", None), getattr(args, "budget", None)
    if sweep is None and args.command == "tune" and getattr(args, "run", None):
        from hubensemble.sweepwords import resumed_call
        from hubensemble.tunepending import holds_run

        sweep, budget, _, _ = resumed_call(  # the run's
            args.run, budget, getattr(args, "modules", None)
        ) if holds_run(args.run) else (None, None, None, None)
    return sweep, budget


def _planned_modules(args) -> list[str] | None:
    """The modules the command line `args`' sweep will tune, as far as known before
    TensorFlow (`sweeps.check_budget`'s `modules`, for a budget of 4 per module that holds
    them all): --modules, else for tune the run's ranking's selection; None for fit and demo
    without --modules (not ranked yet) and a run whose ranking cannot be read (its own
    refusal, `check_run`, says why)."""
    if getattr(args, "modules", None):
        return list(args.modules)
    if args.command != "tune" or not getattr(args, "run", None):
        return None
    from hubensemble.tunepending import ranked_selection

    return ranked_selection(args.run)


def command_again(args):
    """`check_run`'s `again` for the command line `args`: a function of modules=[names] (or
    a budget) to the whole command the user typed with them (tune: `sweepagain.tune_again`,
    its sweep and budget `_call_sweep`'s), or None for a command that has none. `tune --run
    R --modules m00` was told "pass --modules m0" alone, its other flags left to type again
    (fit's refusal gives the whole command)."""
    if args.command != "tune" or not getattr(args, "run", None):
        return None
    return _budget_again(args, *_call_sweep(args))


def _check_sweep_call(args, sweep, budget, fitted=None) -> None:
    """--modules and --budget of the command line `args` (tune, fit, demo) checked together
    (`pastedway.check_sweep_call`): one refusal naming the faults of both, whose command holds
    both. `tune --run R --modules a,b --budget 1` was told the budget, its command keeping
    `--modules a,b`, then the comma (a new user, stop 69). tune's modules against the run's
    ranking (none when it cannot be read: `check_run` says why), fit's and demo's against
    their catalogue's entries (`args.specs`); for tune only with the budget refused (its
    --modules alone: `check_run`'s, said in RUN/log.txt)."""
    from hubensemble.pastedway import budget_fault, check_sweep_call

    modules, rows, source, rank_command = getattr(args, "modules", None), None, "catalogue", None
    if args.command == "tune" and getattr(args, "run", None):
        from hubensemble.errors import HubensembleError
        from hubensemble.tunepending import holds_run

        source = "ranking"
        from hubensemble.tunepending import check_pool_at_budget
        # The budget's way on, pasted, passes the pool: its refusal first, at that budget
        check_pool_at_budget(args.run, {**options.kwargs_for("tune", args), "sweep": sweep,
                                        "budget": budget})
        if modules and holds_run(args.run) and budget_fault(sweep, budget, modules):
            run = Run(os.fspath(args.run))
            try:
                rows = run.tune_inputs()[0].get("modules") or []
                rank_command = run.rank_command()
            except HubensembleError:
                rows = None  # check_run says why, after these checks
    elif getattr(args, "specs", None) and modules:  # fit, demo
        rows = [{"name": s.name} for s in args.specs]
        if args.command == "demo" and not getattr(args, "catalogue", None):
            source = "demo"
    check_sweep_call(modules, rows, sweep=sweep, budget=budget, source=source,
                     again=_budget_again(args, sweep, budget, fitted),
                     rank_command=rank_command,
                     selected=None if modules else _planned_modules(args))


def _budget_again(args, sweep, budget, fitted=None):
    """`sweeps.check_budget`'s `again` for the command line `args` (tune, fit, demo): the
    whole command with another budget (`sweepagain.tune_again`, `sweepagain.fit_again`);
    for fit and demo without --restart, `fitted(args, again, restarted)` of it
    (`check_inputs`')."""
    from hubensemble.sweepagain import fit_again, tune_again

    if args.command == "tune" and getattr(args, "run", None):
        return tune_again(args.run, {**options.kwargs_for("tune", args), "sweep": sweep,
                                     "budget": budget})
    if args.command in ("fit", "demo") and getattr(args, "out", None):
        from hubensemble.cliargs import data_args_from

        data = None if args.command == "demo" else data_args_from(args).to_json()
        call = {o.name: getattr(args, o.name, o.default)
                for o in options.options_for(record="fit")}
        if args.command == "demo" and call.get("top_k") == options.DEMO_TOP_K:
            # demo's own default, not typed: "--top-k 4 --budget 4 (K modules need 4×K)"
            # read as a contradiction (new user, stop 66).
            del call["top_k"]
        inputs = {k: getattr(args, k, None) for k in (  # typed, not options
            "export", "cache_dir", "use_cache", "restart")}
        again = fit_again(args.out, call, catalogue=getattr(args, "catalogue", None),
                          data=data, demo=args.command == "demo", inputs=inputs)
        if fitted is None or getattr(args, "restart", False):
            return again
        return fitted(args, again, fit_again(
            args.out, call, catalogue=getattr(args, "catalogue", None), data=data,
            demo=args.command == "demo", inputs={**inputs, "restart": True}))
    return None


#: Why --strategy multiworker is refused (docs/tune.md, "Strategies").
MULTIWORKER_REFUSED = (
    "strategy multiworker is refused: Keras 3's Model.fit does not train under "
    "tf.distribute.MultiWorkerMirroredStrategy (keras-team/keras#20585; with keras 3.15.1 and "
    "two workers it fails reducing each step's distributed batch and scalar logs); spread "
    "the sweep's trials over the machines instead (tune --tuner-id/--oracle, docs/tune.md "
    "\"Distributed sweeps\"), with --strategy mirrored for each machine's GPUs")


def check_strategy(strategy: str, tpu: str | None, environ=os.environ) -> None:
    """What `tune.get_strategy` needs before it touches TensorFlow, from the flags and the
    environment (`environ`): OptionError (a usage error on the command line, in the stage's
    `get_strategy` too) for a `tpu` with a strategy that ignores it
    (cpu, mirrored, multiworker), strategy "tpu" with neither `tpu` nor $TPU_NAME, and for
    "multiworker" (MULTIWORKER_REFUSED: Keras 3 cannot fit under it). `get_strategy` runs
    it too; `fit` and the command line run it before ranking, so a run does not rank for
    minutes to stop at tune. Whether a named TPU answers is only known by connecting
    (get_strategy)."""
    if tpu and strategy not in ("tpu", "auto"):  # it would be ignored without a word
        # In the caller's words: fit's / run_tune's keywords from Python.
        raise options.OptionError(
            f"{option_word(f'--tpu {tpu}', f'tpu={tpu!r}')} is only used with "
            f"{option_word('--strategy tpu', 'strategy=' + repr('tpu'))} (or auto); drop it, "
            f"or pass {option_word('--strategy tpu', 'strategy=' + repr('tpu'))} instead of "
            f"{strategy}")
    if strategy == "tpu" and not (tpu or environ.get("TPU_NAME")):
        raise options.OptionError(
            "strategy tpu needs a TPU: pass "
            + option_word("--tpu NAME|grpc://HOST:8470|local",
                          "tpu='NAME'|'grpc://HOST:8470'|'local'")
            + " or set TPU_NAME")
    if strategy == "multiworker":
        raise options.OptionError(MULTIWORKER_REFUSED)


def check_report_folder(run_dir) -> None:
    """HubensembleError when `report` cannot write in the existing folder `run_dir` (a
    read-only mount, or no permission): it writes report.md, report.html and report_files/
    there and has no other place (it said "[Errno 30] Read-only file system: '…/.fit.lock';
    free disk space or fix the permissions")."""
    path = os.fspath(run_dir)
    if not os.path.isdir(path) or os.access(path, os.W_OK | os.X_OK):
        return
    why = "is on a read-only file system" if read_only_mount(path) else "is not writable by you"
    raise HubensembleError(  # the way on as every command's (lockwords.unwritable_advice)
        f"the run folder {path} {why}, and report writes its files into it (report.md, "
        "report.html, report_files/); make it writable, or "
        f"{unwritable_advice('report', path)}")


def _export_folder_lock(args) -> None:
    """Before TensorFlow: fit's --export and export's --out outside the run folder whose lock
    another process holds, or whose lock file cannot be made (`exportfolder.
    check_folder_lock`); the command line's only: a fit from Python holds that lock while its
    export stage checks the folder."""
    from hubensemble.exportfolder import check_folder_lock

    if args.command == "fit" and args.export:
        check_folder_lock(args.export, args.out, "--export", "export")
    elif args.command == "export" and getattr(args, "out", None) and getattr(args, "run", None):
        # the folder's own faults first, in their words (export's flag check says them too)
        check_export_target(args.out, run_dir=args.run, tflite=args.export_format == "tflite")
        check_folder_lock(args.out, args.run, "--out", "out_dir")


def check_inputs(args, *, fitted=None) -> None:
    """What a command's flags (`args`, the argparse namespace of cli.main) can be refused for
    before TensorFlow and the run folder's files: HUBENSEMBLE_*_TIMEOUT, a --run that holds
    no run (`check_run_folder`: first), --data (check_spec: a typo,
    one class; evaluate: a test set; a tfds-only flag typed for other data; DataError), an
    output inside the image folder read (`check_outputs_outside_data`; DataError),
    --catalogue files (CatalogueError naming file:line), a --budget too small for the
    --sweep (tune's without one: the run's, `sweepwords.resumed_call`; none for a --run
    that holds no run, `tunepending.holds_run`, which `check_run` says), a run folder Keras
    Tuner cannot reach (`formats.check_tuner_folder`), fit's export folder, fit's and
    export's export folder locked or unlockable (`_export_folder_lock`), --strategy's
    needs, --modules the catalogue lacks (HubensembleError).
    Sets `args.specs` to the loaded catalogue entries when --catalogue is given (the demo's:
    its shipped catalogue). Warns (once the run's log is open: `check_run`) when the
    command's stage may need more memory than the process may use
    (`memory.stage_memory_note`: fit, demo, rank, tune, export, evaluate), and marks it said
    so the stage function it calls does not say it again (`memory.say_memory`); refuses
    (memory.MemoryRefused: said as the machine's refusals, with no usage line) when that
    need is more than `memory.REFUSE_FACTOR` x the room of a limit that ends the process (a
    cgroup's, `ulimit -v`'s: `memory.refusal`). --modules and --budget are one refusal whose
    command passes both (`_check_sweep_call`); `fitted` (cli.main's:
    `fittedagain.command_line_again`; resume, which it asks, imports this module) gives fit's
    and demo's command on a fitted --out the --restart its changed options need."""
    from hubensemble.catalogue import load_catalogues, shipped_catalogue
    from hubensemble.data.specs import TFDS_ONLY, check_spec

    environment.check_environment()  # seconds for downloads, TPUs, the chief (SECONDS_ENV)
    check_run_folder(args)  # the first fault to name: before any flag's combination
    run_dir = getattr(args, "run", None) or getattr(args, "out", None)
    notes = []  # (a killed command's words: `Run.lock`, memory.say_killed, as it is taken)
    if args.command == "evaluate" and hasattr(args, "eval_split"):  # its flags before --data
        from hubensemble.evaluate import check_evaluate_options
        check_evaluate_options(args.eval_split, args.corruptions, args.severities)
    if getattr(args, "data", None):
        try:
            check_spec(args.data, **{k: v for k, v in vars(args).items() if k in (
                "splits", "val_fraction", "test_fraction", "min_classes", "min_per_class",
                "need_val", "data_dir", "label_key", "image_key")},
                typed=getattr(args, "given_options", set()) & set(TFDS_ONLY))  # even at default
        except HubensembleError:
            if args.command == "evaluate" and getattr(args, "model", None):
                # A class the export does not know says more than check_spec's "every class
                # needs training images (add train/x/ …)" of a test/ class train/ lacks:
                # adding train/x/ only led to this refusal (a new user, stop 66).
                from hubensemble.evaluationtask import check_listed_classes
                check_listed_classes(args.model, args.data)
            raise
    if args.command == "evaluate" and getattr(args, "data", None):
        _check_scored_split(args)  # a folder of class folders is one test set
    check_outputs_outside_data(args)  # never a file or folder written inside the data
    if getattr(args, "catalogue", None):
        args.specs = load_catalogues(args.catalogue)
    elif args.command == "demo":  # its entries, for --modules: before the zoo's minutes
        args.specs = load_catalogues([shipped_catalogue("demo.yaml")])
    sweep, budget = _call_sweep(args)
    if sweep:
        _check_sweep_call(args, sweep, budget, fitted)  # --budget and --modules: one refusal
        run_dir = getattr(args, "run", None) or getattr(args, "out", None)  # tune's, fit's
        if run_dir:  # a name Keras Tuner cannot reach: not after fit's rank
            check_tuner_folder(run_dir, sweep, None if getattr(args, "run", None) else "--out")
    if args.command in ("fit", "demo") and getattr(args, "out", None):
        from hubensemble.fitargs import check_out_of_other_runs
        check_out_of_other_runs(args.out)  # fit's words, as from Python; --export or not
    if getattr(args, "export", None) or args.command in ("fit", "demo"):  # not after the sweep
        check_export_target(args.export or os.path.join(args.out, "export"),
                            "--export" if args.export else "--out", run_dir=args.out)
    _export_folder_lock(args)
    if getattr(args, "strategy", None):
        check_strategy(args.strategy, args.tpu)
    folder = getattr(args, "model", None) if args.command == "evaluate" else run_dir
    _MEMORY_SAID.clear()  # (one command line per process; tests run many)
    if folder and args.command in ("fit", "demo", "rank", "tune", "export", "distill",
                                   "evaluate"):
        values = {k: getattr(args, k, None) for k in (
            "specs", "batch_size", "modules", "profile", "retrain_full",
            "train_batch_size", "student", "max_gflops")}
        values["sweep"] = sweep  # tune's (a probe part embeds at each module's own size)
        if args.command == "evaluate":  # its --batch-size (the table's eval_batch_size)
            values["batch_size"] = getattr(args, "eval_batch_size", None)
        elif getattr(args, "data", None) and args.command in ("fit", "rank"):
            # the training images at most (a listing, no decoding): no batch of rank's holds
            # more, so --batch-size 65536 on 20 images is no 720 GiB need
            from hubensemble.dataargs import listed_total

            values["train_images"] = listed_total(args.data)
        note = stage_memory_note(args.command, folder, values)
        if refusal(note):  # well above a limit that ends the process: it would be killed
            # no usage line: the command line is fine; its lines kept (the room's way on,
            # then each stage's need: `memory._note`)
            raise MemoryRefused.of_lines(refusal(note).split("\n"))
        notes.append(note)
        _MEMORY_SAID.add(memory_key(args.command, folder))  # its stage function: not again
    if run_dir:  # said by check_run, once the run's log is open: in RUN/log.txt too
        _NOTES[os.path.realpath(run_dir)] = [n for n in notes if n]
    for note in filter(None, notes if not run_dir else ()):
        logging.getLogger(__name__).warning("%s", note)
