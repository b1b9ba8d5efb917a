"""Leave-one-out kNN: hubensemble's float32-search / float64-decision version against
scikit-learn's leave-one-out, and against the physical limit (one matrix product + argmin).

    python tools/benchmarks/bench_knn.py [--n 1000] [--dim 2048] [--classes 100] [--k 1]
        [--repeats 21] [--sklearn-repeats 3] [--metrics euclidean,cosine]

scikit-learn's reference is what the method means: for each i, KNeighborsClassifier(
algorithm="brute") fitted on the other N - 1 examples predicts example i. It is timed in its
fastest setting on this machine: one OpenMP/BLAS thread (its per-call thread start-up
dominates 1-row predictions) over all N folds, and its default threads over 100 folds scaled
to N; the faster counts. Both see the same float32 embeddings (what modules produce). The
CPU is shared, so every figure is the median of repeats, all measured in this run and
interleaved (each scikit-learn run is followed by a share of the fast runs); the speed-up is
the ratio of medians. Target (issue 18): >= 200x with identical predictions.
"""

import argparse
import statistics
import time

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from benchargs import command_logging, description, integer, names
from hubensemble.proxies import METRICS, loo_knn_predict


def make_data(n, dim, classes, seed=0):
    """Class structure plus noise, like an embedding that partly separates the classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, dim))
    x = (0.2 * centres[y] + rng.standard_normal((n, dim))).astype(np.float32)
    return x, y


def sklearn_loo(x, y, k, metric, folds=None):
    """scikit-learn's leave-one-out predictions of the first `folds` examples (all: None)."""
    n = len(y)
    pred = np.empty(n if folds is None else folds, dtype=y.dtype)
    keep = np.ones(n, dtype=bool)
    for i in range(len(pred)):
        keep[i] = False
        clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=metric)
        pred[i] = clf.fit(x[keep], y[keep]).predict(x[i:i + 1])[0]
        keep[i] = True
    return pred


def timed(fn, repeats):
    """(last result, list of seconds) of `repeats` calls."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def limit_fn(x, metric):
    """The least any exact method must do: one float32 matrix product of the (unit, for
    cosine) rows with themselves and a row-wise argmin."""
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)

    def once():
        g = x @ x.T
        np.fill_diagonal(g, -np.inf)
        return g.argmax(axis=1)
    return once


def bench(x, y, k, metric, repeats, sklearn_repeats, folds=100):
    """Figures of one metric: a dict of median seconds, speed-up and identity.

    The runs are interleaved (a scikit-learn run, then a share of ours and of the limit, and
    again), so that all three see the same load on a shared machine.
    """
    ours, limit = [], []
    refs = []
    share = max(1, repeats // sklearn_repeats)
    fast = limit_fn(x, metric)
    for _ in range(sklearn_repeats):
        with threadpool_limits(1):
            ref, t_ref = timed(lambda: sklearn_loo(x, y, k, metric), 1)
        refs.extend(t_ref)
        pred, t = timed(lambda: loo_knn_predict(x, y, k=k, metric=metric), share)
        ours.extend(t)
        limit.extend(timed(fast, share)[1])
    folds = min(folds, len(y))
    part, t_part = timed(lambda: sklearn_loo(x, y, k, metric, folds), 1)
    t_one = statistics.median(refs)
    t_default = t_part[0] * len(y) / folds
    t_ref = min(t_one, t_default)
    t_ours = statistics.median(ours)
    return {"ours": t_ours, "sklearn": t_ref, "sklearn_one_thread": t_one,
            "sklearn_default": t_default, "speedup": t_ref / t_ours,
            "identical": bool(np.array_equal(pred, ref) and np.array_equal(pred[:folds], part)),
            "accuracy": float(np.mean(pred == y)), "limit": statistics.median(limit),
            "runs": len(ours)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--n", type=integer(2), default=1000,
                        help="examples (leave-one-out needs 2)")
    parser.add_argument("--dim", type=integer(1), default=2048)
    parser.add_argument("--classes", type=integer(1), default=100)
    parser.add_argument("--k", type=integer(1), default=1, help="neighbours (at most N - 1)")
    parser.add_argument("--repeats", type=integer(1), default=21,
                        help="repeats of the fast versions")
    parser.add_argument("--sklearn-repeats", type=integer(1), default=3,
                        help="repeats of scikit-learn's leave-one-out (seconds each)")
    parser.add_argument("--metrics", type=names(METRICS, "metrics"),
                        default=list(METRICS), help=f"default: {','.join(METRICS)}")
    args = parser.parse_args(argv)
    if args.k >= args.n:  # each example has N - 1 others to be its neighbours
        parser.error(f"argument --k: must be at most N - 1 = {args.n - 1} (--n {args.n}), "
                     f"got {args.k}")

    x, y = make_data(args.n, args.dim, args.classes)
    print(f"N={args.n} d={args.dim} classes={args.classes} k={args.k} float32; medians of "
          f"interleaved runs ({args.sklearn_repeats} of scikit-learn's leave-one-out)",
          flush=True)
    for metric in args.metrics:
        r = bench(x, y, args.k, metric, args.repeats, args.sklearn_repeats)
        print(f"{metric:9s}  loo_knn_predict {r['ours'] * 1e3:7.1f} ms   scikit-learn LOO "
              f"{r['sklearn']:6.2f} s (1 thread {r['sklearn_one_thread']:.2f} s, default "
              f"threads ~{r['sklearn_default']:.2f} s)   speed-up {r['speedup']:5.0f}x "
              f"[target >= 200x]   identical: {r['identical']}   accuracy "
              f"{r['accuracy']:.3f}   ({r['runs']} runs of ours)", flush=True)
        print(f"{'':9s}  limit (one float32 product + argmin) {r['limit'] * 1e3:.1f} ms: "
              f"loo_knn_predict takes {r['ours'] / r['limit']:.2f}x that; scikit-learn / "
              f"limit {r['sklearn'] / r['limit']:.0f}x", flush=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
