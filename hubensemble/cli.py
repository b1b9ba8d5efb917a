"""The `hubensemble` command line: argparse at the edge, one sub-command per stage."""

import argparse
import logging
import os
import sys

from hubensemble import __version__
from hubensemble.errors import HubensembleError


def _quiet_tensorflow(verbose):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose:
        return
    from hubensemble import _tf

    os.environ[_tf.QUIET_ENV] = "1"
    _tf.import_quietly()


# --- catalogue -----------------------------------------------------------------------------------

def _catalogue_files(args):
    # Without files: the catalogues that ship with the package.
    if args.files:
        return args.files
    from hubensemble.catalogue import shipped_catalogues

    return [str(p) for p in shipped_catalogues()]


def cmd_catalogue_validate(args):
    from hubensemble.catalogue import load_catalogue

    args.files = _catalogue_files(args)
    failed = 0
    for path in args.files:
        try:
            specs = load_catalogue(path)
        except HubensembleError as e:
            failed += 1
            print(str(e), file=sys.stderr)
            continue
        print(f"{path}: ok ({len(specs)} modules)")
    if not failed and len(args.files) > 1:
        # Names must also be unique across the files given together.
        from hubensemble.catalogue import load_catalogues
        try:
            load_catalogues(args.files)
        except HubensembleError as e:
            print(str(e), file=sys.stderr)
            return 1
    return 1 if failed else 0


def cmd_catalogue_list(args):
    from hubensemble.catalogue import format_table, load_catalogues

    print(format_table(load_catalogues(_catalogue_files(args))))
    return 0


# --- shared argument groups ---------------------------------------------------------------------

def add_data_args(p, required=True):
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required, metavar="SPEC",
                   help="tfds:NAME[:CONFIG], folder:PATH, npz:PATH or sklearn:digits")
    g.add_argument("--data-dir", help="tensorflow_datasets data folder (tfds: specs)")
    g.add_argument("--data-seed", type=int, default=0,
                   help="seed of the stratified train/val/test split (default 0)")
    g.add_argument("--split", action="append", default=[], metavar="NAME=SPEC",
                   help="tfds split override, e.g. --split test=test[:2000] or "
                        "--split val=none (repeatable; default VTAB-1k: train[:800], "
                        "train[800:1000], test)")
    g.add_argument("--val-fraction", type=float, default=0.2)
    g.add_argument("--test-fraction", type=float, default=0.2)
    g.add_argument("--label-key", default="label")
    g.add_argument("--image-key", default="image")
    g.add_argument("--synthetic", action=argparse.BooleanOptionalAction, default=None,
                   help="artificial images: no colour augmentation (default: per data set)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="left/right flips keep the label (default: per data set)")
    g.add_argument("--min-per-class", type=int, default=2,
                   help="fewest training examples a class may have (default 2, as "
                        "leave-one-out kNN needs)")


def data_args_from(args):
    from hubensemble.errors import DataError
    from hubensemble.rundir import DataArgs

    splits = {}
    for item in args.split:
        name, sep, value = item.partition("=")
        if not sep or name not in ("train", "val", "test"):
            raise DataError(f"--split {item!r}: write NAME=SPEC with NAME train, val or test, "
                            "e.g. --split test=test[:2000]")
        splits[name] = value
    return DataArgs(spec=args.data, data_dir=args.data_dir, seed=args.data_seed,
                    splits=splits or None, label_key=args.label_key, image_key=args.image_key,
                    synthetic=args.synthetic, flip=args.flip, val_fraction=args.val_fraction,
                    test_fraction=args.test_fraction, min_per_class=args.min_per_class)


def load_data(args):
    data_args = data_args_from(args)
    task = data_args.load()
    _say(args, task.summary())
    return data_args, task


def _say(args, text):
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def _progress(args):
    return not getattr(args, "quiet", False)


def _shard(text):
    try:
        i, n = text.split("/")
        return int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: write I/N, e.g. 0/4") from None


def add_selection_args(p):
    g = p.add_argument_group("selection (paper 2.3, 2.3.1, C.6)")
    g.add_argument("--top-k", type=int, default=15, help="keep the K best modules (default 15)")
    g.add_argument("--threshold", type=float, default=None, metavar="TAU",
                   help="keep modules within TAU (relative) of the best score, e.g. 0.02")
    g.add_argument("--max-k", type=int, default=15,
                   help="most modules kept by --threshold or --greedy (default 15)")
    g.add_argument("--greedy", action="store_true",
                   help="greedy kNN-ensemble selection (paper C.6) up to --max-k")


# --- rank ----------------------------------------------------------------------------------------

def cmd_rank(args):
    from hubensemble.catalogue import load_catalogues
    from hubensemble.rank import run_rank

    if not args.catalogue or not args.data or not args.out:
        raise SystemExit("hubensemble rank: --catalogue, --data and --out are required "
                         "(or use `hubensemble rank merge`)")
    specs = load_catalogues(args.catalogue)
    data_args, task = load_data(args)
    ranking = run_rank(specs, task, args.out, metric=args.metric, k=args.k, top_k=args.top_k,
                       threshold=args.threshold, max_k=args.max_k, greedy=args.greedy,
                       shard=args.shard, batch_size=args.batch_size, profile=args.profile,
                       cache_dir=args.cache_dir, use_cache=not args.no_cache,
                       data_args=data_args, progress=_progress(args))
    print(ranking.summary())
    return 0


def cmd_rank_merge(args):
    from hubensemble.rank import merge_rankings

    ranking = merge_rankings(args.shards, args.out, top_k=args.top_k, threshold=args.threshold,
                             max_k=args.max_k, greedy=args.greedy)
    print(ranking.summary())
    return 0


# --- ensemble ------------------------------------------------------------------------------------

def cmd_ensemble(args):
    from hubensemble.ensemble import format_ensemble, run_ensemble

    result = run_ensemble(args.run, objective=args.objective, budget=args.budget,
                          with_replacement=args.with_replacement, bootstrap=args.bootstrap,
                          seed=args.seed)
    print(format_ensemble(result))
    return 0


# --- zoo -----------------------------------------------------------------------------------------

def cmd_zoo_build(args):
    from hubensemble.zoo import build_zoo

    path = build_zoo(args.preset, args.out, seed=args.seed, progress=_progress(args),
                     workers=args.workers)
    print(path)
    return 0


# --- tune ----------------------------------------------------------------------------------------

def add_tune_args(p):
    g = p.add_argument_group("tune (paper 2.2, 2.3, 2.3.1, A.1-A.3)")
    g.add_argument("--sweep", choices=["default", "seeds", "hyper", "aug", "combined"],
                   default="default",
                   help="default: lr x steps grid per selected module; seeds/hyper/aug: the "
                        "downstream-diversity baselines on the best generalist; combined: "
                        "tau-threshold modules x random configurations")
    g.add_argument("--budget", type=int, default=None, metavar="L",
                   help="number of fine-tuning trials (default: 4 per module for default)")
    g.add_argument("--modules", nargs="+", metavar="NAME",
                   help="fine-tune these ranked modules instead of the selected ones")
    g.add_argument("--strategy", choices=["auto", "cpu", "mirrored", "multiworker", "tpu"],
                   default="auto", help="tf.distribute strategy (auto: TPU > GPUs > CPU)")
    g.add_argument("--tpu", metavar="ADDRESS", help="TPU name or grpc:// address")
    g.add_argument("--profile", choices=["paper", "cpu", "quick"], default="cpu",
                   help="paper: the paper's steps and batch 512; cpu: scaled to finish on a "
                        "CPU; quick: for tests (default cpu)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--keep-weights", choices=["all", "none"], default="all",
                   help="none: keep only predictions; export retrains chosen members")
    g.add_argument("--max-failures", type=int, default=1000,
                   help="stop the sweep after this many failed trials")


def cmd_tune(args):
    from hubensemble.tune import format_summary, run_tune

    summary = run_tune(args.run, sweep=args.sweep, budget=args.budget, modules=args.modules,
                       strategy=args.strategy, tpu=args.tpu, profile=args.profile,
                       seed=args.seed, keep_weights=args.keep_weights,
                       max_failures=args.max_failures, tuner_id=args.tuner_id,
                       oracle_address=args.oracle, progress=_progress(args))
    print(format_summary(summary))
    return 0


# --- export / predict / evaluate / report ---------------------------------------------------------

def cmd_export(args):
    from hubensemble.export import export_ensemble

    strategy = None
    if args.strategy != "cpu" or args.tpu:
        from hubensemble.tune import get_strategy
        strategy = get_strategy(args.strategy, args.tpu)
    result = export_ensemble(args.run, args.out, retrain_full=args.retrain_full,
                             skip_missing=args.skip_missing, strategy=strategy,
                             progress=_progress(args))
    print(f"exported {len(result.members)} member(s) to {result.path} "
          f"(reload check max |dp| = {result.max_abs_diff:.2e})")
    return 0


def cmd_predict(args):
    from hubensemble.export import format_predictions, predict

    results = predict(args.model, args.images, top=args.top,
                      skip_unreadable=args.skip_unreadable)
    print(format_predictions(results, as_json=args.json))
    return 1 if any("error" in r for r in results) else 0


def cmd_evaluate(args):
    from hubensemble.evaluate import (evaluate_model, format_evaluation,
                                      load_evaluation_task, write_evaluation)

    task = load_evaluation_task(args.model, args.data, data_dir=args.data_dir)
    corruptions = False if args.corruptions is None else args.corruptions
    severities = [int(s) for s in args.severities.split(",")]
    result = evaluate_model(args.model, task, split=args.split, corruptions=corruptions,
                            severities=severities, seed=args.seed, batch_size=args.batch_size,
                            progress=_progress(args))
    print(format_evaluation(result))
    if args.out:
        write_evaluation(result, args.out)
        _say(args, f"wrote {args.out}")
    return 0


def cmd_report(args):
    from hubensemble.report import write_report

    md, html = write_report(args.run)
    print(md)
    print(html)
    return 0


# --- fit / demo ----------------------------------------------------------------------------------

def _options_from(args):
    from hubensemble.pipeline import FitOptions

    return FitOptions(
        metric=args.metric, k=args.k, top_k=args.top_k, threshold=args.threshold,
        max_k=args.max_k, greedy=args.greedy, batch_size=args.batch_size, sweep=args.sweep,
        budget=args.budget, modules=args.modules, strategy=args.strategy, tpu=args.tpu,
        profile=args.profile, seed=args.seed, keep_weights=args.keep_weights,
        max_failures=args.max_failures, objective=args.objective,
        ensemble_budget=args.ensemble_budget, with_replacement=args.with_replacement,
        bootstrap=args.bootstrap, retrain_full=args.retrain_full,
        skip_missing=args.skip_missing,
        corruptions=False if args.no_corruptions else True)


def cmd_fit(args):
    from hubensemble.pipeline import fit

    data_args = data_args_from(args)
    result = fit(args.catalogue, args.data, args.out, export=args.export, data_args=data_args,
                 restart=args.restart, progress=_progress(args), cache_dir=args.cache_dir,
                 use_cache=not args.no_cache, options=_options_from(args))
    print(result.summary())
    return 0


def cmd_demo(args):
    import time

    from hubensemble.catalogue import shipped_catalogues
    from hubensemble.pipeline import fit
    from hubensemble.rundir import DataArgs
    from hubensemble.zoo import ensure_zoo, is_zoo, zoo_dir

    demo = [p for p in shipped_catalogues() if p.name == "demo.yaml"]
    if not demo:
        raise SystemExit("hubensemble demo: catalogue/demo.yaml is not installed with the "
                         "package; reinstall hubensemble")
    start = time.time()
    cached = is_zoo(zoo_dir("demo"))
    _say(args, f"hubensemble demo: the offline zoo of pre-trained modules "
               f"({'cached in' if cached else 'built now, once, into'} {zoo_dir('demo')}), "
               f"then scikit-learn's handwritten digits; run folder {args.out}")
    ensure_zoo("demo", progress=_progress(args))
    zoo_seconds = time.time() - start
    result = fit([str(demo[0])], "sklearn:digits", args.out,
                 data_args=DataArgs(spec="sklearn:digits"), restart=args.restart,
                 progress=_progress(args), options=_options_from(args))
    print(result.summary())
    zoo = "cached" if cached else f"built in {zoo_seconds:.0f} s"
    print(f"zoo: {zoo}; demo total {time.time() - start:.0f} s")
    return 0


def add_rank_args(p):
    g = p.add_argument_group("rank (paper 2.3, C.4-C.8)")
    g.add_argument("--metric", choices=["knn", "knn-cosine", "logme", "hscore"], default="knn")
    g.add_argument("--k", type=int, default=1, help="neighbours of the kNN proxy (default 1)")
    g.add_argument("--batch-size", type=int, default=64, help="embedding batch size")
    g.add_argument("--cache-dir", help="embedding cache (default $HUBENSEMBLE_CACHE_DIR or "
                                       "~/.cache/hubensemble/embeddings)")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def add_ensemble_args(p, prefix=""):
    g = p.add_argument_group("ensemble (paper 2.3, C.9)")
    g.add_argument("--objective", choices=["ce", "accuracy"], default="ce")
    g.add_argument(f"--{prefix}budget", dest="ensemble_budget" if prefix else "budget",
                   type=int, default=15, help="largest ensemble (default 15)")
    g.add_argument("--with-replacement", action="store_true",
                   help="allow re-picking a member; weights become pick counts")
    g.add_argument("--bootstrap", type=float, default=None, metavar="M",
                   help="decide each step on a bootstrap resample of M x the validation set")


def add_export_args(p):
    g = p.add_argument_group("export")
    g.add_argument("--retrain-full", action="store_true",
                   help="retrain each member on train + validation before exporting")
    g.add_argument("--skip-missing", action="store_true",
                   help="leave out members whose weights file is missing")


def add_fit_args(p):
    add_rank_args(p)
    add_selection_args(p)
    add_tune_args(p)
    add_ensemble_args(p, prefix="ensemble-")
    add_export_args(p)
    p.add_argument("--no-corruptions", action="store_true",
                   help="skip the robustness evaluation on corrupted test images")
    p.add_argument("--restart", action="store_true",
                   help="discard the results in the run folder and start again")


# --- parser --------------------------------------------------------------------------------------

# The demo fine-tunes this many modules (x 4 trials of the default sweep) so it finishes in
# a few minutes on a laptop-class CPU.
DEMO_TOP_K = 4


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hubensemble",
        description="Rank pre-trained image modules by leave-one-out kNN on your data, "
                    "fine-tune the best with a small sweep, and export their greedy ensemble "
                    "as one SavedModel.")
    parser.add_argument("--version", action="version", version=f"hubensemble {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cat = sub.add_parser("catalogue", help="validate or list catalogue YAML files")
    cat_sub = cat.add_subparsers(dest="catalogue_command", metavar="ACTION")
    p = cat_sub.add_parser("validate", help="check catalogue files; exit 1 with file:line "
                                            "errors when one is malformed")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="default: the catalogues shipped with hubensemble")
    p.set_defaults(func=cmd_catalogue_validate)
    p = cat_sub.add_parser("list", help="print the modules of catalogue files as a table")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="default: the catalogues shipped with hubensemble")
    p.set_defaults(func=cmd_catalogue_list)
    cat.set_defaults(func=lambda args: (cat.print_help(), 2)[1])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or summaries on stderr")

    p = sub.add_parser("rank", parents=[common],
                       help="rank modules by leave-one-out kNN accuracy of their embeddings",
                       description="Embed the training images with every catalogued module "
                                   "and rank the modules by a proxy of fine-tuned accuracy; "
                                   "writes RUN/ranking.json and RUN/ranking.csv.")
    p.add_argument("--catalogue", nargs="+", metavar="FILE")
    add_data_args(p, required=False)
    p.add_argument("--out", metavar="RUN", help="the run directory")
    add_rank_args(p)
    add_selection_args(p)
    p.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                   help="rank only modules whose catalogue index %% N == I")
    p.add_argument("--profile", choices=["paper", "cpu", "quick"], default="cpu",
                   help="embedding resolution: paper = BiT-HyperRule; cpu/quick = capped "
                        "(default cpu; use the profile you will tune with)")
    p.set_defaults(func=cmd_rank)
    rank_sub = p.add_subparsers(dest="rank_command", metavar="merge")
    m = rank_sub.add_parser("merge", parents=[common], help="combine `rank --shard` outputs")
    m.add_argument("shards", nargs="+", metavar="RUN_SHARD")
    m.add_argument("--out", required=True, metavar="RUN")
    add_selection_args(m)
    m.set_defaults(func=cmd_rank_merge)

    p = sub.add_parser("ensemble", parents=[common],
                       help="greedy ensemble selection over the tuned candidates",
                       description="Caruana et al. (2004) forward selection on the "
                                   "candidates' validation probabilities; writes "
                                   "RUN/ensemble.json.")
    p.add_argument("--run", required=True, metavar="RUN")
    add_ensemble_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("zoo", help="build a pool of pre-trained modules from upstream data")
    zoo_sub = p.add_subparsers(dest="zoo_command", metavar="build")
    b = zoo_sub.add_parser("build", parents=[common],
                           help="pre-train generalists and experts and write a catalogue")
    b.add_argument("--preset", choices=["demo", "quick"], default="demo")
    b.add_argument("--out", help="where to build it (default: the user cache, where "
                                 "zoo:PRESET/NAME handles find it)")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--workers", type=int, default=None,
                   help="processes training modules side by side (default: one per core)")
    b.set_defaults(func=cmd_zoo_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    p = sub.add_parser("tune", parents=[common],
                       help="fine-tune the ranked modules with a Keras Tuner sweep",
                       description="Fine-tunes the modules selected by `rank` (a HubLayer, "
                                   "dropout and a zero-initialised head) with a resumable "
                                   "Keras Tuner sweep; every trial's validation/test "
                                   "predictions land in RUN/candidates/. Run the same "
                                   "command again to resume.")
    p.add_argument("--run", required=True, metavar="RUN")
    add_tune_args(p)
    g = p.add_argument_group("distributed sweeps (Keras Tuner chief/worker)")
    g.add_argument("--tuner-id", help="chief, or tuner0, tuner1, ... for workers "
                                      "(default: $KERASTUNER_TUNER_ID)")
    g.add_argument("--oracle", metavar="HOST:PORT",
                   help="the chief's address (default: $KERASTUNER_ORACLE_IP/PORT)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("export", parents=[common],
                       help="write the ensemble as one SavedModel for serving")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--out", metavar="DIR", help="default RUN/export")
    add_export_args(p)
    p.add_argument("--strategy", choices=["auto", "cpu", "mirrored", "multiworker", "tpu"],
                   default="cpu", help="strategy for retraining members")
    p.add_argument("--tpu", metavar="ADDRESS")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with an exported ensemble")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="report unreadable files and go on (exit 1) instead of failing")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", parents=[common],
                       help="accuracy, NLL and ECE of an export, clean and corrupted")
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument("--data", metavar="SPEC",
                   help="default: the data of the run the export belongs to")
    p.add_argument("--data-dir")
    p.add_argument("--corruptions", nargs="?", const=True, default=None, metavar="NAMES",
                   help="also evaluate on corrupted copies (default five kinds; 'all' or "
                        "a,b,c)")
    p.add_argument("--severities", default="1,2,3")
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="write RUN/report.md and RUN/report.html")
    p.add_argument("--run", required=True, metavar="RUN")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("fit", parents=[common],
                       help="rank, tune, ensemble, export, evaluate and report in one go",
                       description="From data to a served ensemble: runs every stage over "
                                   "the run folder. Run it again to resume; changed inputs "
                                   "are refused unless --restart.")
    p.add_argument("--catalogue", nargs="+", required=True, metavar="FILE")
    add_data_args(p)
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    p.add_argument("--export", metavar="DIR", help="where to write the SavedModel "
                                                   "(default RUN/export)")
    add_fit_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("demo", parents=[common],
                       help="the whole method offline: a built-in zoo + handwritten digits",
                       description="Builds (first time only) an offline zoo of pre-trained "
                                   "modules, then fits an ensemble on scikit-learn's "
                                   "handwritten digits with the cpu profile, and prints best "
                                   "single model vs ensemble on the test set.")
    p.add_argument("--out", default="hubensemble-demo", metavar="RUN",
                   help="the run folder (default ./hubensemble-demo)")
    add_fit_args(p)
    p.set_defaults(func=cmd_demo, top_k=DEMO_TOP_K)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _quiet_tensorflow(args.verbose)
    # The terminal gets warnings (debug with --verbose); RUN/log.txt gets the full log.
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    try:
        return args.func(args)
    except HubensembleError as e:
        print(f"hubensemble: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hubensemble: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
