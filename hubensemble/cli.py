"""The `hubensemble` command line: argparse at the edge, one sub-command per stage.

Every stage option (flag, type, default, choices, help) comes from `hubensemble.options`;
this module only says which command takes which group of options, and names the inputs and
outputs (--catalogue, --data, --run, --out, ...); the commands themselves, and their checks
before TensorFlow, are `hubensemble.commands`' (`cmd_*`), run here in the run's log and
lock (`main`). TensorFlow is imported only for commands that need it, so `--help`,
`--version`, `catalogue`, `ensemble` and `report` start fast
(`ensemble` reads the costs `hubensemble cost` wrote; it never computes them).
"""

import argparse
import contextlib
import logging
import os
import sys

from hubensemble import (__version__, _tf, arguments, environment, errors, exits, kerasenv,
                         options, terminal)
from hubensemble.cliargs import CATALOGUE_HELP, add_data_args, add_fit_args
from hubensemble.commands import (  # noqa: F401 (_options_from: cli's before the split)
    DEMO_TOP_K, _distill_student, _export_flags, _import_tensorflow, _merge_shards, check_counts,
    check_fit, _model_folder, _options_from, _rank_check, _tune_flags, cmd_catalogue_add,
    cmd_catalogue_list, cmd_catalogue_validate, cmd_cost, cmd_demo, cmd_distill, cmd_docs,
    cmd_ensemble, cmd_evaluate, cmd_export, cmd_fit, cmd_predict, cmd_rank, cmd_rank_merge,
    cmd_report, cmd_tune, cmd_zoo_build)
from hubensemble.errors import HubensembleError, sigterm_interrupts
from hubensemble.lockwords import command_line
from hubensemble.terminal import crashed, terminal_log


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
    # cmd_rank imports TensorFlow, after it said the modules missing here (RUN/log.txt too)
    p.set_defaults(func=cmd_rank, check=lambda args, p=p: _rank_check(p, args),
                   tensorflow=False)
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
    m.set_defaults(func=cmd_rank_merge, check=_merge_shards,  # not the plain rank's flags
                   tensorflow=True)  # (rank's own imports it itself)

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
                                       "interrupted build keeps the modules it finished in "
                                       "OUT.partial; the same build again reuses them.")
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
    # Its finished modules are kept beside the zoo (zoo/parts.py): the same build resumes.
    b.set_defaults(func=cmd_zoo_build, tensorflow=False, interrupted="the modules it finished "
                   "are kept (an older zoo stays); run the same command again to resume")
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
    p.set_defaults(func=cmd_tune, check=_tune_flags, tensorflow=False)  # it imports it

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
    # Each pass over the split it finished (the clean one, a corruption at a severity) is
    # kept in the user cache (evaluationcells), so "no result yet" was not true of it.
    p.set_defaults(interrupted="the passes over the test set it finished are kept; run the "
                   "same command again to go on from them")
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
    # its tune chooses on the val split; cmd_fit imports TensorFlow after run.json's check
    p.set_defaults(func=cmd_fit, need_val=True, tensorflow=False, check=check_fit)

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
    p.set_defaults(func=cmd_demo, top_k=DEMO_TOP_K, export=None,  # the export: RUN/export
                   tensorflow=False)  # imported by cmd_demo after run.json's check

    # The docs errors cite (docs/NAME.md#SECTION) ship in the package: read them offline.
    p = sub.add_parser("docs", parents=[no_log], help="print hubensemble's docs, offline",
                       description="Prints a doc that ships with hubensemble (docs/NAME.md), "
                                   "or one section of it: the one an error or warning cites "
                                   "as docs/NAME.md#SECTION or docs/NAME.md, \"Section\". "
                                   "Without NAME: the docs' folder and each doc's title.")
    p.add_argument("topic", nargs="?", metavar="NAME[#SECTION]",
                   help="a doc (data, docs/data.md) and optionally a section: its anchor "
                        "(data#labels-in-a-table) or title ('reliability#Small machines')")
    p.add_argument("--path", action="store_true",
                   help="print the file's path (without NAME: the docs' folder) instead")
    p.set_defaults(func=cmd_docs, tensorflow=False)
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
        return _command(args, said, parser)
    except KeyboardInterrupt as e:  # out of the outermost blocks' cleanup (terminal_log, …)
        return said[0] if said else errors.stop_code(e)


def _usage_error(parser, args, exc: HubensembleError) -> int:
    """A usage error found after argparse parsed (`exc`: a flag's value or a combination of
    flags refused), in argparse's own shape: the command's usage line, then "hubensemble
    export: error: …" (stderr, even with -q; logged, for RUN/log.txt when it is open); 2.
    `export` without --run said only "hubensemble: error: export needs --run RUN …"."""
    command = arguments.command_parser(parser, args)
    command.print_usage(sys.stderr)
    terminal.stopped(f"{command.prog}: error: {errors.shown(exc)}", exc)
    return 2


def _command(args, said: list, parser=None) -> int:
    """`main`'s command run in its blocks (the terminal's log, the run's log and lock, the
    signals); appends to `said` the exit code of the stop line it says. A usage error after
    argparse (`arguments.is_usage_error`) is said as argparse says its own, with the usage
    line of `parser`'s command (`_usage_error`)."""
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
            environment.check_environment()  # (also check_inputs'): no flag's, no usage line
            try:
                from hubensemble.fittedagain import command_line_again
                check_inputs(args, fitted=command_line_again)  # its way on passes a fitted run
                if getattr(args, "check", None):  # errors, before a run folder or its log
                    args.check(args)
            except HubensembleError as e:
                if parser is None or not arguments.is_usage_error(e, checks=True):
                    raise
                return _usage_error(parser, args, e)
            with sigterm_interrupts(), _run_log(args), kerasenv.stage_settings():
                try:  # inside the log's context: RUN/log.txt says why the command stopped
                    if backend_note:
                        logging.getLogger(__name__).info("%s", backend_note)
                    from hubensemble.preflight import check_run, command_again  # no TF yet
                    from hubensemble.rundir import lock_member
                    check_run(getattr(args, "run", None) or getattr(args, "out", None),
                              args.command, restart=getattr(args, "restart", False),
                              modules=getattr(args, "modules", None),
                              member=lock_member(args)[0],
                              student=getattr(args, "export_student", None),
                              retrain_full=getattr(args, "retrain_full", None),
                              skip_missing=getattr(args, "skip_missing", None),
                              again=command_again(args))  # the whole command, as typed
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
                        if (parser is not None and arguments.is_usage_error(e)
                                and not errors.pending_stop()):  # a stage's: export/stage
                            return _usage_error(parser, args, e)
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
