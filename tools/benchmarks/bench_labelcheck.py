"""Labels to check: how many of the training images `hubensemble.labelcheck` lists are
mislabelled, on tasks with a known share of their training labels flipped.

    python tools/benchmarks/bench_labelcheck.py --catalogue ZOO/catalogue.yaml
        [--data npz:../shared/data/signdigits10.npz,npz:../shared/data/gtsrb10.npz]
        [--rates 5,10] [--seed 223] [--profile cpu]

For each data set it embeds the training images once per catalogued module (rank's `embed`,
cached as rank caches it), then for the clean labels and for each rate flips that many
percent of the training labels to a random other class (numpy seed `--seed`), computes every
module's leave-one-out 1-NN predictions (`proxies.loo_knn_predict`, what RUN/knn.npz holds)
and prints: the best module's leave-one-out accuracy, the Spearman correlation of the
modules' scores with the clean labels' (does the ranking change), and for the product's rule
(`labelcheck.suspect_labels` and its gates) the images listed, how many were flips
(precision) and the share of the flips listed (recall), and the precision and recall of its
first 1 % and 5 % of the training set (most modules agreeing first). On the clean labels
every listed image counts as a false one, which it may not be: look at them.
"""

import argparse
import gc

import numpy as np

from benchargs import command_logging, description, integers


def flipped_labels(y, classes, rate, seed):
    """(labels int [N] with round(rate N) of them moved to a random other class, the sorted
    indexes moved), numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(y), int(round(rate * len(y))), replace=False))
    out = np.array(y, np.int64)
    out[idx] = (out[idx] + rng.integers(1, classes, len(idx))) % classes
    return out, idx


def measure(embs, y, classes, percent, seed):
    """The figures of one data set with `percent` of its labels flipped (0: the clean ones)."""
    from scipy.stats import spearmanr

    from hubensemble.labelcheck import LabelCheck, check_ranking, suspect_labels
    from hubensemble.proxies import loo_knn_predict
    from hubensemble.rank import Ranking

    given, flips = (flipped_labels(y, classes, percent / 100, seed) if percent
                    else (np.asarray(y), []))
    preds = {n: loo_knn_predict(x, given, k=1) for n, x in embs.items()}
    scores = {n: float(np.mean(p == given)) for n, p in preds.items()}
    clean = {n: float(np.mean(loo_knn_predict(x, y, k=1) == y)) for n, x in embs.items()}
    rho = spearmanr([clean[n] for n in embs], [scores[n] for n in embs]).correlation
    rows = [{"name": n, "status": "ok", "score": s}
            for n, s in sorted(scores.items(), key=lambda ns: -ns[1])]
    check: LabelCheck = check_ranking(Ranking(metric="knn", k=1, rows=rows, selected=[]),
                                      preds, given)
    ordered = [s.index for s in suspect_labels(np.stack(list(preds.values())), given)]
    hits = np.isin([s.index for s in check.suspects], flips).sum()
    line = (f"flipped {percent:>2}%: best kNN {max(scores.values()):.4f}, Spearman vs clean "
            f"{rho:.3f}; listed {len(check.suspects)}"
            + (f" ({check.skipped})" if check.skipped else "")
            + (f", flips among them {hits} (precision {hits / len(check.suspects):.2f}, recall "
               f"{hits / len(flips):.2f})" if len(check.suspects) and len(flips) else ""))
    tops = []
    for share in (0.01, 0.05):
        top = ordered[:max(1, int(round(share * len(y))))]
        hit = np.isin(top, flips).sum()
        tops.append(f"first {share:.0%} ({len(top)}): precision {hit / len(top):.2f}"
                    + (f", recall {hit / len(flips):.2f}" if len(flips) else ""))
    return line + "\n    unanimous rule ungated, " + "; ".join(tops)


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--catalogue", required=True, help="the modules (e.g. the demo zoo's)")
    parser.add_argument("--data", default="npz:../shared/data/signdigits10.npz,"
                        "npz:../shared/data/gtsrb10.npz", help="comma-separated data specs")
    parser.add_argument("--rates", type=integers(1, what="percentages"), default=[5, 10],
                        help="percentages of training labels flipped (comma-separated)")
    parser.add_argument("--seed", type=int, default=223, help="seed of the flips")
    parser.add_argument("--profile", default="cpu", choices=("paper", "cpu", "quick"))
    args = parser.parse_args(argv)
    if any(r >= 100 for r in args.rates):
        parser.error(f"argument --rates: must be percentages below 100, got {args.rates}")
    from hubensemble.catalogue import load_catalogue
    from hubensemble.errors import HubensembleError

    try:  # before TensorFlow loads: a missing or broken catalogue is a usage error
        specs = load_catalogue(args.catalogue)
    except (OSError, HubensembleError) as e:
        parser.error(f"argument --catalogue: {e}")

    from hubensemble.data import load_task
    from hubensemble.hyperrule import get_profile
    from hubensemble.rank.embeddings import embed

    for spec in args.data.split(","):
        task = load_task(spec, progress=False)
        embs = {}
        for s in specs:
            embs[s.name] = embed(s, task, "train", profile=get_profile(args.profile)).embeddings
            gc.collect()
        print(f"{spec}: {len(task.train)} training images, {task.num_classes} classes, "
              f"{len(embs)} modules", flush=True)
        for rate in [0, *args.rates]:
            print("  " + measure(embs, task.train.labels, task.num_classes, rate, args.seed),
                  flush=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
