"""The commands of the `hubensemble` command line, one function per sub-command (`cmd_*`),
with the checks each runs before TensorFlow loads: each takes the parsed argparse namespace
and returns the exit code. `cli` builds the parser that names them and runs them."""

import os
import sys

from hubensemble import formats, options
from hubensemble.options import DEMO_TOP_K  # noqa: F401 (cli's demo default)
from hubensemble.cliargs import load_data
from hubensemble.terminal import print_result, say, summary
from hubensemble.text import absolute, counted


def _import_tensorflow(verbose, now=True):
    """Imports TensorFlow without its C++ start-up notices unless --verbose: now, or (``now``
    False) later by the command, which reads _tf.QUIET_ENV (the zoo builder, only to train)."""
    from hubensemble import _tf

    os.environ[_tf.QUIET_ENV] = "0" if verbose else "1"  # the zoo builder's workers inherit it
    if verbose:
        return  # imported later, with all its notices, by the command itself
    if now:
        _tf.import_tensorflow()


# --- catalogue -----------------------------------------------------------------------------------

def _catalogue_files(args):
    """FILE..., or without files the catalogues that ship with the package."""
    from hubensemble.catalogue import shipped_catalogues
    return args.files or [str(p) for p in shipped_catalogues()]


def cmd_catalogue_validate(args):
    """`catalogue validate [FILE...]` (zoo.config.validate_catalogues): 0 when all are valid."""
    from hubensemble.zoo.config import validate_catalogues

    files = _catalogue_files(args)
    if not validate_catalogues(files, lambda ln, ok: (  # ok None: warning
            args.quiet and ok is not False) or print(ln, file=sys.stdout if ok else sys.stderr)):
        return 1
    return skipped_entries_status(files, quiet=args.quiet)


def skipped_entries_status(files, *, quiet: bool = False) -> int:
    """`catalogue validate`'s exit status for the valid catalogue `files`: 1 when an entry's
    local module is missing here or holds none (`modulefiles.local_handle_warnings`, warned
    above at its file:line: rank would skip it), after a line on stderr saying why, else 0.
    A mistyped local path was "ok (3 modules, 1 warning)", exit 0, and a script went on to
    rank the other modules (a new user, stop 70): the exit rule of rank's skipped modules
    (`skipped_modules_status`). Validate a catalogue meant for another machine there. With
    `quiet` (-q, which silences the warnings) the line is said all the same, as errors are,
    pointing at the command without -q."""
    from hubensemble.catalogue import load_catalogues
    from hubensemble.modulefiles import local_handle_warnings

    skipped = local_handle_warnings(load_catalogues(files))
    if not skipped:
        return 0
    print(f"hubensemble catalogue validate: exit status 1: rank would skip "
          f"{counted(len(skipped), 'module or weights file', 'modules or weights files')} on "
          f"this machine ({'without -q, its warnings say' if quiet else 'warned above,'} "
          "with the fix)", file=sys.stderr)
    return 1


def cmd_catalogue_list(args):
    """`catalogue list [FILE...]`: the modules as a table on stdout."""
    from hubensemble.catalogue import load_catalogues
    from hubensemble.catalogue_writer import format_table

    print(format_table(load_catalogues(_catalogue_files(args))))
    return 0


def cmd_catalogue_add(args):
    """`catalogue add HANDLE... --to FILE`: checks the entries before TensorFlow, loads each
    module, appends its introspected entry to FILE; 1 when a module cannot be loaded."""
    from hubensemble.catalogue_writer import add_modules, check_add

    fields = {k: getattr(args, k) for k in ("weights", "layer", "signature", "output_key",
                                            "trust")}
    taken = check_add(args.to, args.handles, name=args.name, **fields)  # before TensorFlow
    _import_tensorflow(args.verbose)
    text, failed = add_modules(args.to, args.handles, taken, name=args.name, **fields)
    summary(args, text)
    return 1 if failed else 0


# --- rank ----------------------------------------------------------------------------------------

def _rank_check(parser, args):
    """Before TensorFlow: the flags a plain `rank` lacks (optional to argparse, as `rank merge`
    shares the parser), `--shard auto` read from the job's environment (outside a cluster
    array job refused here, not after TensorFlow's seconds: _resolve_shard), --out's
    candidates the catalogue (args.specs) would orphan, and those of another profile than a
    --profile typed (without it: the run's, `run_rank`)."""
    from hubensemble.rank.pool import check_pool_profile, check_tuned_modules
    from hubensemble.rank.shards import check_shard_size

    missing = [f"--{name}" for name in ("catalogue", "data", "out") if not getattr(args, name)]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)} (or use "
                     "`hubensemble rank merge`)")
    if args.shards is not None and args.shard != "auto":  # a usage error, before TensorFlow
        parser.error("--shards N goes with --shard auto (with --shard I/N the count is N)")
    _resolve_shard(args)
    check_shard_size(args.specs, args.shard)  # before the data loads and --out is made
    # Its refusal before TensorFlow; a damaged record's warning is run_rank's (said once).
    check_tuned_modules(args.out, {s.name: s.to_json() for s in args.specs}, warn=False)
    if "profile" in args.given_options:
        check_pool_profile(args.out, args.profile)
    _other_data_options(args)
    _missing_modules(args)  # no data read: before the counts (sklearn:'s import, 1-3 s)
    check_counts(args)


def _other_data_options(args):
    """Before TensorFlow (rank's check): --out a run recorded on data loaded with other
    options (--data, --data-seed, …) is refused in the words `Run.attach_task` says after the
    load (`datachange.other_data`: "RUN holds a run on other data: its data options differ
    (--data A -> B); …"; it took 25 s and ~674 MB of TensorFlow and the data first), when
    they surely load other data (`datachange.surely_other_data`, fit's rule): a changed
    --min-per-class, --dedupe or --data-dir, or the same file by another path, may load the
    very data, and the same options other data (files changed): the load compares those."""
    from hubensemble.cliargs import data_args_from
    from hubensemble.datachange import DataRecord, compare, other_data, surely_other_data
    from hubensemble.errors import RunError
    from hubensemble.rerun import start_again
    from hubensemble.rundir import Run

    run = Run(args.out)
    try:
        meta = run.meta()
        recorded = run.data_section("task", meta=meta)
    except (RunError, OSError, ValueError):
        return  # no run, or a damaged one: the stage says so in its own words
    if not recorded or not isinstance(recorded.get("args"), dict):
        return
    data_args = data_args_from(args)
    change = compare(DataRecord.of_run(run, recorded), DataRecord(
        args=data_args.to_json(), task={}, labels={}, keys=None))
    if surely_other_data(change, data_args.spec):  # else the load compares the data itself
        raise RunError(other_data(
            run.path, change, None if change.other_source
            else f"{data_args.spec} as loaded now",
            again=start_again(run.path, meta, "rank", args=data_args.to_json()),
            command="rank"))


def check_fit(args):
    """fit's checks before TensorFlow: the modules missing here (`_missing_modules`), then the
    data's counts (`check_counts`)."""
    _missing_modules(args)
    check_counts(args)


def _missing_modules(args):
    """Before TensorFlow (rank's and fit's check): the catalogue entries (args.specs) that
    rank (its shard) would find missing here, a local path with nothing there
    (`rank.ranking.missing_rows`). When they are all of a catalogue, refused in run_rank's
    words ("no module could be ranked (N failed): …"; it took 6-16 s and ~700 MB of
    TensorFlow first); else kept in args.missing_here for the command to say
    (`_say_missing`) and rank goes on with the others. A shard that ranks none writes its
    failures, as run_rank's shards do; a fit that goes on from its ranking.json (not
    --restart) may not rank again: it is left alone."""
    from hubensemble.rank.ranking import missing_rows, raise_if_none_ok

    args.missing_here = []
    if args.func is cmd_fit and not args.restart:
        from hubensemble.rundir import Run
        if Run(args.out).ranking_json.is_file():
            return
    shard = getattr(args, "shard", None)
    rows = missing_rows(args.specs, shard)
    if rows and shard is None and len(rows) == len(args.specs):
        raise_if_none_ok(rows)
    args.missing_here = rows


def _say_missing(args):
    """Says the modules `_missing_modules` found missing here, in the run's log, before
    TensorFlow's import (`rank.ranking.say_missing`)."""
    from hubensemble.rank.ranking import say_missing
    say_missing(getattr(args, "missing_here", []))


def check_counts(args):
    """Before TensorFlow (rank's and fit's check): --min-per-class and --k against the
    training examples the data's listing counts (`dataargs.listed_counts`: an npz's y_train
    labels, a folder's files), in the words the loaded task is refused in (`data.validate.
    too_few_per_class`, run_rank's "leave-one-out K-NN needs at least …"), with what was
    counted: each count is at least the task's, so the task would be refused too (DataError:
    no usage line, as when the loaded task was refused). Both were refused only after
    TensorFlow's import and the data's load (8-15 s, 660-740 MB); sklearn:digits' too (its
    training split, drawn with --data-seed). tfds: data are refused when loaded, as before."""
    from hubensemble.data.validate import too_few_per_class
    from hubensemble.dataargs import listed_counts
    from hubensemble.errors import DataError

    if _digits_hold(args):  # every seed's split holds these: no scikit-learn import
        return
    listed = (listed_counts(args.data, getattr(args, "data_seed", 0))
              if getattr(args, "data", None) else None)
    if listed is None:
        return
    counts, what = listed
    error = too_few_per_class(counts, args.min_per_class, note=f" ({what})")
    if error:
        raise error
    n, k = sum(counts.values()), args.k
    if args.metric in options.NEEDS_VALUE["k"][1] and k > n - 1:  # the kNN proxies
        raise DataError(f"leave-one-out {k}-NN needs at least {k + 1} training examples; "
                        f"the task has at most {n} ({what}): lower --k")  # the shape as after


def _digits_hold(args) -> bool:
    """Whether --data is sklearn:digits and its training split holds --min-per-class and --k
    for any --data seed (`data.digits.fewest_train`, TRAIN_SIZE): `check_counts` then counts
    nothing, so a refusal of another kind (--out) is not behind scikit-learn's import."""
    from hubensemble.data.digits import TRAIN_SIZE, fewest_train
    from hubensemble.data.specs import parse_spec
    from hubensemble.errors import DataError

    try:
        if parse_spec(getattr(args, "data", None) or "") != ("sklearn", "digits"):
            return False
    except DataError:
        return False
    knn = args.metric in options.NEEDS_VALUE["k"][1]
    return args.min_per_class <= fewest_train() and not (knn and args.k > TRAIN_SIZE - 1)


def cmd_rank(args):
    """`rank`: rank.run_rank over the catalogue (_rank_check read it) and data; a summary.
    Only the options typed are passed: the others are the run folder's own, else the
    defaults (`rank.rundefaults.keeps_run_defaults`, as from Python)."""
    from hubensemble.rank import run_rank
    if getattr(args, "shard_auto", False):  # resolved by _rank_check; said in RUN/log.txt too
        say(args, f"shard {args.shard[0]}/{args.shard[1]} (from the job's environment)")
    _say_missing(args)
    _import_tensorflow(args.verbose)
    data_args, task = load_data(args)
    typed = {k: v for k, v in options.kwargs_for("rank", args).items()
             if k in args.given_options}
    ranking = run_rank(args.out, args.specs, task, **typed, data_args=data_args,
                       progress=not args.quiet)
    summary(args, ranking.summary())
    return skipped_modules_status("rank", ranking)


def skipped_modules_status(command: str, ranking) -> int:
    """The exit status of a command whose ranking is `ranking` (a rank.Ranking): 1 when a
    catalogue module failed and was left out (a duplicate of an earlier entry is ranked
    under it: not counted), after a line on stderr saying why, else 0. The rule of every
    command that goes on past what it could not use (README, "Exit statuses": predict's
    unreadable files): rank and fit skipped a mistyped module path and exited 0, so a
    script went on to train other modules than meant (a new user, stop 70)."""
    from hubensemble.rank.record import duplicates_apart

    failed = duplicates_apart(ranking.failed_rows)[1]
    if not failed:
        return 0
    print(f"hubensemble {command}: exit status 1: {counted(len(failed), 'module')} of the "
          f"catalogue failed and {'was' if len(failed) == 1 else 'were'} left out "
          f"({', '.join(r['name'] for r in failed)}: the reason and fix above); "
          + ("the other module ranked, its results kept" if len(ranking.ok_rows) == 1 else
             f"the other {len(ranking.ok_rows)} modules ranked, their results kept"),
          file=sys.stderr)
    return 1


def _resolve_shard(args):
    """`--shard auto` -> (I, N) from the cluster job's environment (`--shards`: _rank_check),
    before TensorFlow loads (an OptionError, a usage error, outside a job); args.shard_auto
    then tells cmd_rank to say where the shard came from, once RUN/log.txt is open."""
    from hubensemble.rank.shards import shard_from_environment

    if args.shard == "auto":
        args.shard, args.shard_auto = shard_from_environment(args.shards), True


def _merge_shards(args):
    """rank merge's folders, checked before TensorFlow loads and --out is created."""
    from hubensemble.rank.merge import check_shards
    check_shards(args.shards, args.out)


def cmd_rank_merge(args):
    """`rank merge`: rank.merge_rankings of the shard folders; prints the summary."""
    from hubensemble.rank import merge_rankings

    # No rule given: top_k's default None keeps the rule the shards were ranked with.
    ranking = merge_rankings(args.shards, args.out, **options.kwargs_for("merge", args))
    summary(args, ranking.summary())
    return 0


# --- ensemble ------------------------------------------------------------------------------------

def cmd_ensemble(args):
    """`ensemble`: ensemble.run_ensemble over RUN/candidates; prints the selection."""
    from hubensemble.ensemble import format_ensemble, run_ensemble

    result = run_ensemble(args.run, **options.kwargs_for("ensemble", args))
    summary(args, format_ensemble(result))
    return 0


# --- cost / distill ------------------------------------------------------------------------------

def cmd_cost(args):
    """`cost`: cost.stage.run_cost (FLOPs, parameters, latency per candidate, cached)."""
    from hubensemble.cost.stage import format_costs, run_cost

    costs = run_cost(args.run, progress=not args.quiet)
    summary(args, format_costs(costs))
    return 1 if costs.none_costed else 0  # said, and nothing a budget could use


def _distill_student(args):
    """distill's --student, checked before TensorFlow loads: a typo is refused at once; and
    its --max-gflops, from RUN/cost.json when that says every student costs more
    (`distillchoice.check_distill_budget`: the command line refused it after TensorFlow's
    import, 3.5-13 s and ~660 MB)."""
    if args.student is not None:
        from hubensemble.distill import check_student
        check_student(args.run, args.student)
    if getattr(args, "max_gflops", None) is not None:
        from hubensemble.distillchoice import check_distill_budget
        check_distill_budget(args.run, args.student, args.max_gflops)


def cmd_distill(args):
    """`distill`: distill.run_distill; prints the student beside the best member and ensemble."""
    from hubensemble.distill import format_distill, run_distill

    result = run_distill(args.run, **options.kwargs_for("distill", args), progress=not args.quiet)
    summary(args, format_distill(result, args.run))  # (its report: refresh_report)
    return 0


# --- zoo -----------------------------------------------------------------------------------------

def cmd_zoo_build(args):
    """`zoo build`: zoo.build_zoo; prints the zoo folder (stdout); a build ends with what it
    built where, its catalogue named (`zoo.builder.built_words`, stderr); onto the complete
    zoo it would build, a note that says so (`zoo.builder.complete_words`), and exit 0."""
    from hubensemble.zoo import build_zoo

    _import_tensorflow(args.verbose, now=False)  # a zoo already there needs no TensorFlow
    path = build_zoo(args.preset, args.out, seed=args.seed, progress=not args.quiet,
                     workers=args.workers)
    print_result(path)
    return 0


# --- tune ----------------------------------------------------------------------------------------

def _tune_flags(args):
    """tune's --tuner-id and --oracle (with Keras Tuner's variables), checked before
    TensorFlow loads as the stage checks them after (`stageargs.check_distributed`)."""
    from hubensemble.stageargs import check_distributed
    check_distributed(args.tuner_id, args.oracle)


def cmd_tune(args):
    """`tune`: tune.run_tune (resumable sweep); prints the sweep summary. A worker of a
    chief/worker sweep with nothing left to run prints it before TensorFlow loads
    (`sweepend.finished_worker`: its import took 6-13 s and ~700 MB for the same words),
    also without --sweep: the run's own, said here once (`sweepwords.resumed_call`; else
    run_tune resolves and says it), which finished_worker, given none, left to run_tune."""
    from hubensemble.rundir import lock_member
    from hubensemble.sweepend import finished_worker
    from hubensemble.sweepsummary import format_summary
    from hubensemble.sweepwords import resumed_call

    from hubensemble.tunepending import check_tune_call

    call = options.kwargs_for("tune", args)
    member = lock_member(args)[0]
    resuming = None
    if member and call["sweep"] is None:  # the sweep, --budget, --modules run_tune would take
        call["sweep"], call["budget"], call["modules"], resuming = resumed_call(
            args.run, call["budget"], call["modules"])
    # What files alone decide, before TensorFlow's import and before any word of progress
    # (a worker's "resuming sweep …" came before its pool's refusal).
    check_tune_call(args.run, call)
    if resuming:
        say(args, resuming)
    sweep, note = finished_worker(args.run, member, call, progress=not args.quiet), None
    if sweep is None:
        from hubensemble.tunepending import finished_call, nothing_to_train
        if not member and (note := nothing_to_train(args.run, call)):
            say(args, note)  # before TensorFlow's seconds, not after them
            # then its end alone, without TensorFlow (6-9 s) and "resuming sweep …"
            sweep = finished_call(args.run, call, progress=not args.quiet)
    if sweep is None:
        _import_tensorflow(args.verbose)
        from hubensemble.tune import run_tune
        from hubensemble.tunepending import nothing_said
        # The line said: run_tune says no "resuming …" nor reused line after it.
        with nothing_said(bool(note)):
            sweep = run_tune(args.run, **call, progress=not args.quiet)
    summary(args, format_summary(sweep))
    return 0


# --- export / predict / evaluate / report ---------------------------------------------------------

def cmd_export(args):
    """`export`: export.export_ensemble; prints where it went and the reload check."""
    from hubensemble.export import export_ensemble

    if args.add_warmup is not None:  # an export's warmup file alone, not an export
        from hubensemble.export.warmup import add_warmup_words
        return summary(args, add_warmup_words(args.add_warmup)) or 0
    strategy = None
    if args.strategy != "cpu" or args.tpu:
        from hubensemble.tune import get_strategy
        strategy = get_strategy(args.strategy, args.tpu)
    result = export_ensemble(args.run, args.out, **options.kwargs_for("export", args),
                             strategy=strategy, progress=not args.quiet)
    what = (f"the student {result.student['trial']}" if result.student
            else counted(len(result.members), "member"))
    summary(args, f"exported {what} to {result.path} "
                  f"(reload check max |dp| = {result.max_abs_diff:.2e})")
    if result.test:  # --retrain-full: the test figures of what was exported
        summary(args, result.format_test())
    if result.tflite:
        from hubensemble.export.tflite import format_tflite

        summary(args, format_tflite(result.tflite))
    return 0


def _export_flags(args):
    """export's flags (and --out), checked before TensorFlow and the run folder's files."""
    from hubensemble.exportfolder import check_add_warmup
    from hubensemble.preflight import check_export_flags
    if check_add_warmup(args.add_warmup, args.run, args.given_options, args.out):
        return  # --add-warmup MODEL alone
    check_export_flags(args.out, export_format=args.export_format, quantize=args.quantize,
                       tflite_size=args.tflite_size, run_dir=args.run)
    if args.export_student is not None:  # no student, or its teacher changed: before TensorFlow
        from hubensemble.studentexport import student_for_export
        student_for_export(args.run, args.export_student, retrain_full=args.retrain_full,
                           skip_missing=args.skip_missing)


def _model_folder(args):
    """evaluate's --out file and --model folder (predict's too), checked before TensorFlow."""
    from hubensemble.formats import check_saved_model_folder
    if getattr(args, "out", None):  # before the evaluation, not after it
        from hubensemble.evaluate import check_evaluation_target
        check_evaluation_target(args.out)
    check_saved_model_folder(args.model)
    if args.func is cmd_evaluate:
        from hubensemble.evaluate import check_evaluate_options, check_evaluation_data
        check_evaluate_options(args.eval_split, args.corruptions, args.severities)
        run, recorded = check_evaluation_data(  # no --data: the run's; --split's string too
            args.model, args.data, split=args.eval_split, keys={
                k: getattr(args, k) for k in ("label_key", "image_key")
                if k in args.given_options})
        spec = (recorded or {}).get("args", {}).get("spec")  # run.json's "data" section
        if isinstance(spec, str):  # --data-dir for it (not tfds:): not after TensorFlow's
            from hubensemble.data.specs import TFDS_ONLY, check_tfds_only, parse_spec
            check_tfds_only(parse_spec(spec)[0],  # 15 s, 650 MB
                            {k: getattr(args, k) for k in TFDS_ONLY if hasattr(args, k)},
                            typed=args.given_options & set(TFDS_ONLY))
            _recorded_tfds_folder(run, recorded["args"], args.data_dir)


def _recorded_tfds_folder(run, recorded: dict, data_dir) -> None:
    """evaluate without --data, of a run that read tfds: data: its data folder (`data_dir`,
    --data-dir, else the one run.json records: data.args.data_dir) checked before
    TensorFlow (`data.tfds.check_data_dir`), in the words the load says after it: with
    --data-dir, the loader's; else `Run.task`'s, which names run.json."""
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.tfds import check_data_dir
    from hubensemble.errors import DataError

    scheme, rest = parse_spec(recorded["spec"])
    if scheme != "tfds":
        return
    try:
        check_data_dir(rest, data_dir or recorded.get("data_dir"))
    except DataError as e:
        if data_dir:
            raise
        from hubensemble.preflight import recorded_data_error
        raise recorded_data_error(run, run.meta(), recorded["spec"], e) from None


def cmd_predict(args):
    """`predict`: export.predict on image files and folders; exit 1 when one was unreadable."""
    _import_tensorflow(args.verbose, now=False)  # by predict, after it looked at the files
    from hubensemble.prediction import format_predictions, predict
    results = predict(args.model, args.images, progress=not args.quiet,
                      **options.kwargs_for("predict", args))
    print_result(format_predictions(results, as_json=args.json))
    say(args, results.tally())  # on stderr, after a bar: "predicted N of M files…"
    return 1 if results.skipped else 0


def cmd_evaluate(args):
    """`evaluate`: evaluate_model on clean (and corrupted) images; --out writes them as JSON."""
    from hubensemble import evaluate as ev
    from hubensemble.data.specs import skips_said
    with skips_said():  # its summary below says them
        task = ev.load_evaluation_task(args.model, args.data, data_dir=args.data_dir,
                                       split=args.eval_split, **{  # tfds: features, if typed
                                           k: getattr(args, k) for k in ("label_key", "image_key")
                                           if k in args.given_options})
    listed = formats.skipped_list(args.out, "evaluate")
    if args.data:  # what was read of it, as every command that loads data says (not -q)
        say(args, task.summary(skipped_in=listed, scored=ev.parse_scored_split(
            args.eval_split)[0]), logged=False)
    result = ev.evaluate_model(args.model, task, **options.kwargs_for("evaluate", args),
                               progress=not args.quiet)
    print_result(ev.format_evaluation(result, skipped_in=listed))  # with -q too; no log
    if args.out:
        ev.write_evaluation(result, args.out)
        say(args, f"wrote {absolute(args.out)}")
    return 0


def cmd_report(args):
    """`report`: report.write_report; prints the paths of report.md and report.html (absolute,
    each on one line: text.escaped)."""
    from hubensemble.report import write_report
    from hubensemble.text import escaped

    md, html = write_report(args.run)
    summary(args, f"{escaped(md)}\n{escaped(html)}")
    return 0


# --- fit / demo ----------------------------------------------------------------------------------

def _options_from(args):
    """The FitOptions of a parsed fit/demo command line: every option whose record is fit."""
    from hubensemble.pipeline import FitOptions

    return FitOptions(**{o.name: getattr(args, o.name)
                         for o in options.options_for(record="fit")})


def cmd_fit(args):
    """`fit`: pipeline.fit with the FitOptions of the command line; prints the summary."""
    from hubensemble.pipeline import fit
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run

    from hubensemble.cliargs import data_args_from

    options = _options_from(args)
    # Before TensorFlow and the data load, as fit checks a Python caller's (run.json alone
    # says it; after TensorFlow's import it took 15 s and 650 MB): then TensorFlow.
    refuse_changed_options(Run(args.out), options, restart=args.restart,
                           data_args=data_args_from(args), specs=args.specs)
    from hubensemble.fitbudget import check_fit_budget
    check_fit_budget(args.out, options, restart=args.restart)  # no candidate fits: not after
    if args.restart:  # a module moved since rank: refused before anything is removed
        from hubensemble.restartcheck import check_fit_restart
        check_fit_restart(args.out, args.specs, options.modules)
    _say_missing(args)
    _import_tensorflow(args.verbose)
    # Loaded here, so fit keeps data_args (later stages can load the data again); fit says
    # its summary (counts, skipped files), as it does for Python.
    data_args, task = load_data(args, said=False)
    result = fit(args.specs, task, args.out, export=args.export, data_args=data_args,
                 restart=args.restart, progress=not args.quiet, cache_dir=args.cache_dir,
                 use_cache=args.use_cache, options=options)
    summary(args, result.summary())
    return skipped_modules_status("fit", result.ranking)


def cmd_demo(args):
    """`demo`: builds the offline zoo once, then fits sklearn:digits with the demo catalogue."""
    import time

    from hubensemble.pipeline import fit
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import DataArgs, Run
    from hubensemble.zoo import ensure_zoo, is_cached, zoo_dir

    # Changed options or data of an earlier demo in --out: before TensorFlow (as cmd_fit)
    # and the zoo
    data_args = DataArgs(spec="sklearn:digits", seed=args.data_seed)
    refuse_changed_options(Run(args.out), _options_from(args), restart=args.restart,
                           data_args=data_args, specs=args.specs)
    _import_tensorflow(args.verbose)
    start = time.time()
    cached = is_cached("demo")
    say(args, f"hubensemble demo: the offline zoo of pre-trained modules "
        f"({'cached in' if cached else 'built now, once, into'} {zoo_dir('demo')}), "
        f"then scikit-learn's handwritten digits; run folder {args.out}")
    ensure_zoo("demo", progress=not args.quiet)
    zoo_seconds = time.time() - start
    result = fit(args.specs, "sklearn:digits", args.out,  # the demo catalogue (check_inputs)
                 data_args=data_args,
                 restart=args.restart, progress=not args.quiet, cache_dir=args.cache_dir,
                 use_cache=args.use_cache, options=_options_from(args))
    zoo = "cached" if cached else f"built in {zoo_seconds:.0f} s"
    summary(args, f"{result.summary()}\nzoo: {zoo}; demo total {time.time() - start:.0f} s")
    return 0


def cmd_docs(args) -> int:
    """`hubensemble docs [TOPIC] [--path]`: without TOPIC, the docs' folder and each doc's
    name and title; with one, that doc or section (`docfiles.topic`) on stdout, or with
    --path the file's absolute path (to open in an editor or a Markdown viewer). 0;
    HubensembleError (exit 2) for a doc or section there is not. Here, not in docfiles:
    terminal renders every printed citation through doccites -> docfiles, so docfiles
    imports no terminal (an import cycle)."""
    from hubensemble.docfiles import (_not_installed, doc_file, doc_names, docs_folder,
                                      section_text, sections, topic)

    if not args.topic:
        folder = docs_folder()
        if folder is None:
            raise _not_installed()
        if args.path:
            print_result(str(folder))
            return 0
        rows = []
        for name in doc_names():
            first = next((s.title for s in sections((folder / f"{name}.md").read_text(
                encoding="utf-8")) if s.level == 1), "")
            rows.append(f"  {name:<12} {first}")
        print_result(f"hubensemble's docs, in {folder} (`hubensemble docs NAME` prints one, "
                     "`hubensemble docs NAME#SECTION` one section of it, --path its file):\n"
                     + "\n".join(rows))
        return 0
    name, wanted = topic(args.topic)
    if args.path:
        if wanted:  # the section must be there: a path is no promise of what it holds
            section_text(name, wanted)
        print_result(str(doc_file(name)))
        return 0
    print_result(section_text(name, wanted).rstrip("\n"))
    return 0
