"""The `hubensemble` command line: argparse at the edge, one sub-command per stage.

Every stage option (flag, type, default, choices, help) comes from `hubensemble.options`;
this module only says which command takes which group of options, and names the inputs and
outputs (--catalogue, --data, --run, --out, ...). TensorFlow is imported only for commands
that need it, so `--help`, `--version`, `catalogue`, `ensemble` and `report` start fast
(`ensemble` reads the costs `hubensemble cost` wrote; it never computes them).
"""

import argparse
import contextlib
import logging
import os
import sys

from hubensemble import (__version__, _tf, arguments, errors, exits, formats, kerasenv,
                         options)
from hubensemble.cliargs import CATALOGUE_HELP, add_data_args, add_fit_args, load_data
from hubensemble.errors import HubensembleError, sigterm_interrupts
from hubensemble.lockwords import command_line
from hubensemble.terminal import crashed, print_result, say, summary, terminal_log
from hubensemble.text import absolute


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

    return 0 if validate_catalogues(_catalogue_files(args), lambda ln, ok: (  # ok None: warning
        args.quiet and ok is not False) or print(ln, file=sys.stdout if ok else sys.stderr)) else 1


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
    shares the parser), --out's candidates the catalogue (args.specs) would orphan, and those
    of another profile than a --profile typed (without it: the run's, `run_rank`)."""
    from hubensemble.rank.pool import check_pool_profile, check_tuned_modules
    from hubensemble.rank.shards import check_shard_size

    missing = [f"--{name}" for name in ("catalogue", "data", "out") if not getattr(args, name)]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)} (or use "
                     "`hubensemble rank merge`)")
    if args.shards is not None and args.shard != "auto":  # a usage error, before TensorFlow
        parser.error("--shards N goes with --shard auto (with --shard I/N the count is N)")
    check_shard_size(len(args.specs), args.shard)  # before the data loads and --out is made
    check_tuned_modules(args.out, {s.name: s.to_json() for s in args.specs})
    if "profile" in args.given_options:
        check_pool_profile(args.out, args.profile)


def cmd_rank(args):
    """`rank`: rank.run_rank over the catalogue (_rank_check read it) and data; a summary.
    Only the options typed are passed: the others are the run folder's own, else the
    defaults (`rank.rundefaults.keeps_run_defaults`, as from Python)."""
    from hubensemble.rank import run_rank
    _resolve_shard(args)
    data_args, task = load_data(args)
    typed = {k: v for k, v in options.kwargs_for("rank", args).items()
             if k in args.given_options}
    ranking = run_rank(args.out, args.specs, task, **typed, data_args=data_args,
                       progress=not args.quiet)
    summary(args, ranking.summary())
    return 0


def _resolve_shard(args):
    """`--shard auto` -> (I, N) from the cluster job's environment (`--shards`: _rank_check)."""
    from hubensemble.rank import shard_from_environment

    if args.shard == "auto":
        args.shard = shard_from_environment(args.shards)
        say(args, f"shard {args.shard[0]}/{args.shard[1]} (from the job's environment)")


def _merge_shards(args):
    """rank merge's folders, checked before TensorFlow loads and --out is created."""
    from hubensemble.rank.merge import check_shards
    check_shards(args.shards, args.out)


def cmd_rank_merge(args):
    """`rank merge`: rank.merge_rankings of the shard folders; prints the summary."""
    from hubensemble.rank import merge_rankings

    values = options.kwargs_for("merge", args)
    if not args.given_options & {"top_k", "threshold", "greedy", "max_k"}:
        values["top_k"] = None  # the rule the shards were ranked with (merge_rankings)
    ranking = merge_rankings(args.shards, args.out, **values)
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
    return 0


def _distill_student(args):
    """distill's --student, checked before TensorFlow loads: a typo is refused at once."""
    if args.student is not None:
        from hubensemble.distill import check_student
        check_student(args.run, args.student)


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

def cmd_tune(args):
    """`tune`: tune.run_tune (resumable sweep); prints the sweep summary. A worker of a
    chief/worker sweep with nothing left to run prints it before TensorFlow loads
    (`sweepend.finished_worker`: its import took 6-13 s and ~700 MB for the same words)."""
    from hubensemble.rundir import lock_member
    from hubensemble.sweepend import finished_worker
    from hubensemble.sweepsummary import format_summary

    call = options.kwargs_for("tune", args)
    sweep = finished_worker(args.run, lock_member(args)[0], call, progress=not args.quiet)
    if sweep is None:
        _import_tensorflow(args.verbose)
        from hubensemble.tune import run_tune
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
            else f"{len(result.members)} member(s)")
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
        check_evaluation_data(args.model, args.data)  # no --data: the run's, or which spec


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
                                       split=args.eval_split)
    listed = formats.skipped_list(args.out, "evaluate")
    if args.data:  # what was read of it, as every command that loads data says (not -q)
        say(args, task.summary(skipped_in=listed, scored=args.eval_split), logged=False)
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

    options = _options_from(args)
    # Before the data loads, as fit checks a Python caller's (run.json alone says it).
    refuse_changed_options(Run(args.out), options, restart=args.restart)
    # Loaded here, so fit keeps data_args (later stages can load the data again); fit says
    # its summary (counts, skipped files), as it does for Python.
    data_args, task = load_data(args, said=False)
    result = fit(args.specs, task, args.out, export=args.export, data_args=data_args,
                 restart=args.restart, progress=not args.quiet, cache_dir=args.cache_dir,
                 use_cache=args.use_cache, options=options)
    summary(args, result.summary())
    return 0


def cmd_demo(args):
    """`demo`: builds the offline zoo once, then fits sklearn:digits with the demo catalogue."""
    import time

    from hubensemble.pipeline import fit
    from hubensemble.rundir import DataArgs
    from hubensemble.zoo import ensure_zoo, is_cached, zoo_dir

    start = time.time()
    cached = is_cached("demo")
    say(args, f"hubensemble demo: the offline zoo of pre-trained modules "
        f"({'cached in' if cached else 'built now, once, into'} {zoo_dir('demo')}), "
        f"then scikit-learn's handwritten digits; run folder {args.out}")
    ensure_zoo("demo", progress=not args.quiet)
    zoo_seconds = time.time() - start
    result = fit(args.specs, "sklearn:digits", args.out,  # the demo catalogue (check_inputs)
                 data_args=DataArgs(spec="sklearn:digits", seed=args.data_seed),
                 restart=args.restart, progress=not args.quiet, cache_dir=args.cache_dir,
                 use_cache=args.use_cache, options=_options_from(args))
    zoo = "cached" if cached else f"built in {zoo_seconds:.0f} s"
    summary(args, f"{result.summary()}\nzoo: {zoo}; demo total {time.time() - start:.0f} s")
    return 0


# --- parser --------------------------------------------------------------------------------------

DEMO_TOP_K = 4  # modules the demo fine-tunes (x 4 trials each): minutes on a laptop CPU


def build_parser():
    """The `hubensemble` argparse parser: one sub-command per stage, options from
    hubensemble.options (importing it, and parsing --help, never imports TensorFlow)."""
    parser = arguments.Parser(
        prog="hubensemble", description="Rank pre-trained image modules by leave-one-out "
        "kNN on your data, fine-tune the best with a small sweep, and export their greedy "
        "ensemble as one SavedModel.")
    parser.add_argument("--version", action="version", version=f"hubensemble {__version__}")
    quiet = "only errors on the terminal: no progress bars, summaries, notes or warnings"
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (wins over -q)")
    # Commands import TensorFlow (quietly, before they start) unless they set this to False.
    parser.set_defaults(tensorflow=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -q and -v after the command too (absent there, the top level's stay): of the commands
    # with a run folder (RUN/log.txt keeps what -q silences) and of those without one.
    common, no_log = (argparse.ArgumentParser(add_help=False) for _ in range(2))
    no_log.set_defaults(interrupted="it had written no result yet; run the same command again")
    for parent, kept in ((common, " (RUN/log.txt still gets the full log)"), (no_log, "")):
        parent.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                            help=quiet + kept)
        parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                            help="debug logging, and TensorFlow's start-up notices (wins over -q)")

    cat = sub.add_parser("catalogue", parents=[no_log], help="validate, list or add to catalogues")
    cat_sub = cat.add_subparsers(dest="catalogue_command", metavar="ACTION")
    p = cat_sub.add_parser("validate", parents=[no_log], help="check files (file:line errors)")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="default: the catalogues shipped with hubensemble")
    p.set_defaults(func=cmd_catalogue_validate, tensorflow=False)
    p = cat_sub.add_parser("list", parents=[no_log], help="print the modules as a table")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="default: the catalogues shipped with hubensemble")
    p.set_defaults(func=cmd_catalogue_list, tensorflow=False)
    p = cat_sub.add_parser(
        "add", parents=[no_log], help="load modules, read their entries (output dim, input "
        "size, value range, parameters, sha256) and append them to a catalogue",
        description="Each HANDLE is any catalogue handle (a TF Hub / Kaggle URL, "
                    "keras:NAME, a .keras/.h5 file, a SavedModel or keras-hub preset folder, "
                    "kaggle:// or hf:// presets); it is loaded through the module runtime "
                    "(resolve, sha256, safety scan) and its entry appended to FILE.")
    p.add_argument("handles", nargs="+", metavar="HANDLE")
    p.add_argument("--to", required=True, metavar="FILE",
                   help="the catalogue to append to (created when missing)")
    p.add_argument("--name", help="the entry's name (one HANDLE only; default: from the handle)")
    p.add_argument("--weights", metavar="WEIGHTS",  # a path: arguments.WINDOWS_CHECKED
                   help="keras:NAME only: imagenet (default) or a weights file")
    p.add_argument("--layer", help=".keras/.h5 only: the layer whose output is the embedding")
    p.add_argument("--signature", help="SavedModels: the signature to call")
    p.add_argument("--output-key", help="the output's key when the module returns a dict")
    p.add_argument("--trust", action="store_true",
                   help="load modules the safety scan or Keras' safe mode would refuse")
    p.set_defaults(func=cmd_catalogue_add, tensorflow=False)  # the command imports it
    cat.set_defaults(func=lambda args, cat=cat: _no_command(cat), tensorflow=False)

    p = sub.add_parser("rank", parents=[common],
                       usage="%(prog)s --catalogue FILE... --data SPEC --out RUN [options]\n"
                             "       %(prog)s merge RUN_SHARD... --out RUN [options]",
                       help="rank modules by leave-one-out kNN accuracy of their embeddings",
                       description="Embed the training images with every catalogued module "
                                   "and rank the modules by a proxy of fine-tuned accuracy; "
                                   "writes RUN/ranking.json and RUN/ranking.csv.")
    p.add_argument("--catalogue", nargs="+", metavar="FILE", help=CATALOGUE_HELP)
    add_data_args(p, required=False, command="rank")
    p.add_argument("--out", metavar="RUN", help="the run directory")
    arguments.add_arguments(p, "rank", ("rank", "selection"), skip=("data",))
    p.set_defaults(func=cmd_rank, check=lambda args, p=p: _rank_check(p, args))
    rank_sub = p.add_subparsers(dest="rank_command", metavar="merge", prog=p.prog,
                                help="combine `rank --shard` outputs")  # not merge's: twice
    m = rank_sub.add_parser("merge", parents=[common], description="Combines the run folders "
                            "that `rank --shard I/N` wrote into one ranking (the same as an "
                            "unsharded rank), selects modules, and writes it to --out, which "
                            "`tune` then uses.")
    m.add_argument("shards", nargs="+", metavar="RUN_SHARD",
                   help="the run folders of the shards (all N of them)")
    m.add_argument("--out", required=True, metavar="RUN", help="the merged run folder")
    arguments.add_arguments(m, "merge", ("selection",))
    m.set_defaults(func=cmd_rank_merge, check=_merge_shards)  # not the plain rank's flags

    p = sub.add_parser("ensemble", parents=[common],
                       help="greedy ensemble selection over the tuned candidates",
                       description="Caruana et al. (2004) forward selection on the candidates' "
                                   "validation probabilities; writes RUN/ensemble.json.")
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    arguments.add_arguments(p, "ensemble", ("ensemble", "budget"))
    p.set_defaults(func=cmd_ensemble, tensorflow=False)

    p = sub.add_parser("cost", parents=[common],
                       help="FLOPs, parameters and latency of every candidate",
                       description="Counts the FLOPs per image (from the traced graph at "
                                   "the member's serving resolution) and parameters of every "
                                   "usable candidate and measures its latency at batch 1 and "
                                   "64 on this machine (median of repeats); writes "
                                   "RUN/cost.json, which `ensemble --max-gflops / "
                                   "--max-latency-ms` and the report read. Counts are cached "
                                   "by module content and resolution.")
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("distill", parents=[common],
                       help="train one student on the ensemble's averaged probabilities",
                       description="Knowledge distillation (Hinton et al., 2015): fine-tunes "
                                   "one module on the exported ensemble's averaged probabilities"
                                   " over the augmented training images, writes it like a "
                                   "member (RUN/distill/<trial>/) and compares it with the best "
                                   "single member and the ensemble on test (RUN/distill.json).")
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    arguments.add_arguments(p, "distill", ("distill", "budget"))
    p.set_defaults(func=cmd_distill, check=_distill_student, interrupted="an unfinished student "
                   "is not kept (the run's distill.json is as it was); run it again to start over")

    p = sub.add_parser("zoo", parents=[no_log], help="pre-train a pool of modules on upstream data")
    zoo_sub = p.add_subparsers(dest="zoo_command", metavar="build")
    b = zoo_sub.add_parser("build", parents=[no_log],
                           help="pre-train generalists and experts and write a catalogue",
                           description="Pre-trains a preset zoo's generalists on procedural "
                                       "glyphs, shapes and textures, fine-tunes its experts "
                                       "on sub-trees of their labels, and writes each as a "
                                       "TF Hub style SavedModel with a catalogue. An "
                                       "interrupted build starts over.")
    b.add_argument("--preset", choices=["demo", "quick"], default="demo",
                   help="demo: the offline demo pool (16 modules); quick: 4 tiny modules "
                        "for tests (default: %(default)s)")
    b.add_argument("--out", metavar="DIR", help="where to build it (default: the user "
                                                "cache, where zoo:PRESET/NAME handles find it)")
    b.add_argument("--seed", type=arguments.zoo_seed, default=None,
                   help="seed of the pre-training (default: the preset's; a zoo with another "
                        "seed needs --out, the cache holds the default one)")
    b.add_argument("--workers", type=arguments.integer(1), default=None,
                   help="processes training modules side by side (default: one per core)")
    b.set_defaults(func=cmd_zoo_build, tensorflow=False, interrupted="the partial zoo was "
                   "removed (an older zoo stays), so running the command again starts over")
    # p=p: bound now (`p` names the next parsers below; `hubensemble zoo` printed demo's help)
    p.set_defaults(func=lambda args, p=p: _no_command(p), tensorflow=False)

    p = sub.add_parser("tune", parents=[common],
                       help="fine-tune the ranked modules with a Keras Tuner sweep",
                       description="Fine-tunes the modules selected by `rank` (a HubLayer, "
                                   "dropout and a zero-initialised head) with a resumable "
                                   "Keras Tuner sweep; every trial's validation/test "
                                   "predictions land in RUN/candidates/. Run the same "
                                   "command again to resume.")
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    arguments.add_arguments(p, "tune", ("tune", "distributed"))
    p.set_defaults(func=cmd_tune, tensorflow=False)  # the command imports it

    p = sub.add_parser("export", parents=[common],
                       help="write the ensemble as one SavedModel for serving",
                       description="Writes the members of RUN/ensemble.json as one "
                                   "SavedModel (signatures serving_default, serve_bytes, "
                                   "serve_members) that TF Serving and tf.saved_model.load "
                                   "use without hubensemble; it is reloaded and checked "
                                   "before it replaces an earlier export.")
    p.add_argument("--run", metavar="RUN", help="the run folder (required, but with --add-warmup)")
    p.add_argument("--out", metavar="DIR", help="default RUN/export")
    arguments.add_arguments(p, "export", ("export",))
    arguments.one_of_usage(p, "run", "add_warmup")  # usage: (--run RUN | --add-warmup MODEL)
    p.set_defaults(func=cmd_export, check=_export_flags)

    p = sub.add_parser("predict", parents=[no_log],
                       help="classify image files (or folders) with an exported ensemble",
                       description="Decodes each image as training did and prints its most "
                                   "probable classes. An unreadable file named stops it unless "
                                   "--skip-unreadable; one in a folder is reported, the others "
                                   "classified (exit 1 then). -q: the predictions only.")
    p.add_argument("--model", required=True, metavar="DIR", help="an export folder")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, GIF, "
                   "BMP, WebP, or another format Pillow reads, e.g. TIFF) and folders: every "
                   "file under one, recursively, sorted; hidden and OS files are not read")
    arguments.add_arguments(p, "predict")
    p.set_defaults(func=cmd_predict, check=_model_folder, tensorflow=False)

    p = sub.add_parser("evaluate", parents=[no_log],
                       help="accuracy, NLL and ECE of an export, clean and corrupted",
                       description="Accuracy, NLL and ECE of an export and of its best single "
                                   "member on a test set, clean and under ImageNet-C style "
                                   "corruptions (--corruptions).")
    p.add_argument("--model", required=True, metavar="DIR", help="an export folder")
    p.add_argument("--data", metavar="SPEC",
                   help="the test data (default: the data of the run the export belongs "
                        "to); a folder of class folders is one test set of all its images, "
                        "its classes matched to the model's by name")
    p.add_argument("--out", metavar="FILE", help="also write the results as JSON (replacing "
                   "only an earlier evaluation or an empty file)")
    arguments.add_arguments(p, "evaluate", ("evaluate",))
    p.set_defaults(func=cmd_evaluate, check=_model_folder, min_classes=1, min_per_class=0)

    p = sub.add_parser("report", parents=[no_log], help="write RUN/report.md and RUN/report.html",
                       description="Writes what the run holds (ranking, sweep, ensemble, "
                                   "robustness, costs, what failed and why) as RUN/report.md "
                                   "with figures and a self-contained RUN/report.html, and "
                                   "prints their paths (not with -q).")
    p.add_argument("--run", required=True, metavar="RUN", help="the run folder")
    p.set_defaults(func=cmd_report, tensorflow=False)

    p = sub.add_parser("fit", parents=[common],
                       help="rank, tune, ensemble, export, evaluate and report in one go",
                       description="From data to a served ensemble: runs every stage over "
                                   "the run folder. Run it again to resume; changed inputs "
                                   "are refused unless --restart.")
    p.add_argument("--catalogue", nargs="+", required=True, metavar="FILE", help=CATALOGUE_HELP)
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    p.add_argument("--export", metavar="DIR", help="the SavedModel's folder (default RUN/export)")
    add_fit_args(p)
    p.set_defaults(func=cmd_fit, need_val=True)  # its tune chooses on the val split

    p = sub.add_parser("demo", parents=[common],
                       help="the whole method offline: a built-in zoo + handwritten digits",
                       description="Builds (first time only) an offline zoo of pre-trained "
                                   "modules, then fits an ensemble on scikit-learn's "
                                   f"handwritten digits with the {options.default('profile')} "
                                   "profile, and prints best single model vs ensemble on the "
                                   "test set. The zoo is cached under $HUBENSEMBLE_ZOO_DIR "
                                   "(default $XDG_CACHE_HOME/hubensemble/zoo, else "
                                   "~/.cache/hubensemble/zoo); embeddings under --cache-dir "
                                   "or $HUBENSEMBLE_CACHE_DIR.")
    p.add_argument("--out", default="hubensemble-demo", metavar="RUN",
                   help="the run folder (default ./hubensemble-demo)")
    # The digits' train/val/test split is the only data choice the demo offers.
    arguments.add_argument(p, options.get("data_seed"), "fit")
    add_fit_args(p)
    p.set_defaults(func=cmd_demo, top_k=DEMO_TOP_K, export=None)  # the export: RUN/export
    return parser


def _run_log(args):
    """RUN/log.txt for --out of rank / merge / fit / demo (created) and --run of the others
    (refused first unless it holds results: no TensorFlow import, no log.txt); else nothing."""
    from hubensemble.rundir import Run, lock_command, lock_member

    if args.func in (cmd_rank_merge, cmd_fit, cmd_demo) or (
            args.func is cmd_rank and args.catalogue and args.data and args.out):
        run = Run(args.out)  # the run's lock too: before TensorFlow's seconds
        return run.log_file(lock=lock_command(args))
    if args.func in (cmd_tune, cmd_ensemble, cmd_export, cmd_cost, cmd_distill) and args.run:
        if not Run(args.run).holds_results():  # the stage would refuse it, after TensorFlow
            Run(args.run).require_started()
        member, record = lock_member(args)  # a sweep's process: its own lock (sweeplock)
        return Run(args.run).log_file(create=False, lock=lock_command(args), member=member,
                                      record=record)
    return contextlib.nullcontext()


def _no_command(parser) -> int:
    # A missing command is a usage error: its help goes where argparse's usage errors go,
    # stderr, exit 2. On stdout, `hubensemble | head -0` showed nothing at all.
    parser.print_help(sys.stderr)
    return 2


def main(argv=None):
    """Runs one command; returns the exit code: 0 ok, 1 a command-specific failure (e.g.
    invalid catalogues), 2 usage, HubensembleError or the machine's OSError (a full disk, …,
    also behind TensorFlow's or h5py's own error: fileio.machine_error; one line, no
    traceback), 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP (as Ctrl-C: sigterm_interrupts),
    141 (128 + SIGPIPE, without a word) when stdout's or stderr's reader has gone (`… | head`;
    the `hubensemble` process's streams: stdio.guard_streams). A second Ctrl-C while the
    first one's stop is cleaned up (the run's log and lock, the terminal's log) ends it
    quietly, as git does: the first stop's code, no second line, no traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = args.quiet and not args.verbose  # -v wins: bars and notes too, not only logs
    if not getattr(args, "func", None):
        return _no_command(parser)
    said = []  # the exit code of the stop line said: a stop in the cleanup after it is quiet
    try:
        return _command(args, said)
    except KeyboardInterrupt as e:  # out of the outermost blocks' cleanup (terminal_log, …)
        return said[0] if said else errors.stop_code(e)


def _command(args, said: list) -> int:
    """`main`'s command run in its blocks (the terminal's log, the run's log and lock, the
    signals); appends to `said` the exit code of the stop line it says."""
    def stopped(exc, **kwargs):
        said.append(exits.stopped_code(args, exc, **kwargs))
        return said[-1]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend_note = kerasenv.use_tensorflow_backend()  # before Keras loads; logged below
    stops, code = (HubensembleError, KeyboardInterrupt), None  # code: the work is done
    # stopped_code inside it: outside, logging's last resort printed too; command_line: its
    # refusals name flags, not a Python caller's keywords (lockwords)
    with terminal_log(args), command_line(), _tf.quiet_env_restored():
        try:
            from hubensemble.preflight import check_inputs  # no TensorFlow: at once, as argparse
            check_inputs(args)
            if getattr(args, "check", None):  # errors, before a run folder or its log is made
                args.check(args)
            with sigterm_interrupts(), _run_log(args), kerasenv.stage_settings():
                try:  # inside the log's context: RUN/log.txt says why the command stopped
                    if backend_note:
                        logging.getLogger(__name__).info("%s", backend_note)
                    from hubensemble.preflight import check_run  # before TensorFlow's seconds
                    from hubensemble.rundir import lock_member
                    check_run(getattr(args, "run", None) or getattr(args, "out", None),
                              args.command, restart=getattr(args, "restart", False),
                              modules=getattr(args, "modules", None),
                              member=lock_member(args)[0],
                              student=getattr(args, "export_student", None))
                    if args.tensorflow:  # seconds: a Ctrl-C meanwhile is one line too
                        _import_tensorflow(args.verbose)
                    code = args.func(args)  # then a stop Python ignored: the work is done
                    sys.stdout.flush()  # a reader gone shows here, not as Python exits
                    if errors.pending_stop():
                        return stopped(None, finished=True)
                    return code
                except (KeyboardInterrupt, Exception) as e:  # a stop may come out as any error
                    with errors.held_stops():  # its line whole, in RUN/log.txt too
                        disk = exits.machine_error(e)  # also behind TensorFlow's, h5py's errors
                        if not (isinstance(e, stops) or errors.pending_stop() or disk):
                            crashed(e)
                            raise
                        return stopped(disk or e, finished=code is not None
                                       or getattr(args, "summarized", False))
        except stops as e:  # checking, opening or closing the run folder's log (its work done)
            with errors.held_stops():
                if said and isinstance(e, KeyboardInterrupt):  # a second Ctrl-C after its line
                    return said[0]
                return stopped(e, finished=code is not None)
        except OSError as e:  # e.g. a read-only folder for RUN/log.txt
            with errors.held_stops():
                if isinstance(e, BrokenPipeError):  # `… | head`: the signal docs' SIGPIPE note
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no word
                    return 141
                if not exits.machine_error(e):
                    raise
                return stopped(e)


if __name__ == "__main__":
    sys.exit(main())
