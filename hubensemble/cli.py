"""The `hubensemble` command line: argparse at the edge, one sub-command per stage."""

import argparse
import logging
import os
import sys

from hubensemble import __version__
from hubensemble.errors import HubensembleError


def _quiet_tensorflow(verbose):
    """Imports TensorFlow with its C++ start-up chatter (oneDNN, CUDA probes) kept off the
    terminal: it is printed before absl logging starts, so TF_CPP_MIN_LOG_LEVEL cannot
    silence it. With --verbose it is shown."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose or "tensorflow" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_logical_devices()  # the CUDA probe prints when devices initialise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# --- catalogue -----------------------------------------------------------------------------------

def cmd_catalogue_validate(args):
    from hubensemble.catalogue import load_catalogue

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

    print(format_table(load_catalogues(args.files)))
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


# --- parser --------------------------------------------------------------------------------------

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
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_catalogue_validate)
    p = cat_sub.add_parser("list", help="print the modules of catalogue files as a table")
    p.add_argument("files", nargs="+", metavar="FILE")
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
    p.add_argument("--metric", choices=["knn", "knn-cosine", "logme", "hscore"], default="knn")
    p.add_argument("--k", type=int, default=1, help="neighbours of the kNN proxy (default 1)")
    add_selection_args(p)
    p.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                   help="rank only modules whose catalogue index %% N == I")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--profile", choices=["paper", "cpu", "quick"], default="paper",
                   help="embedding resolution: paper = BiT-HyperRule, cpu/quick = capped")
    p.add_argument("--cache-dir", help="embedding cache (default $HUBENSEMBLE_CACHE_DIR or "
                                       "~/.cache/hubensemble/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
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
    p.add_argument("--objective", choices=["ce", "accuracy"], default="ce")
    p.add_argument("--budget", type=int, default=15, help="largest ensemble (default 15)")
    p.add_argument("--with-replacement", action="store_true",
                   help="allow re-picking a member; weights become pick counts")
    p.add_argument("--bootstrap", type=float, default=None, metavar="M",
                   help="decide each step on a bootstrap resample of M x the validation set")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_ensemble)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _quiet_tensorflow(args.verbose)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
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
