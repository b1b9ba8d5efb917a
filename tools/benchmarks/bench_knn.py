"""Leave-one-out kNN: hubensemble's blocked matrix version against scikit-learn's LOO loop.

    python tools/benchmarks/bench_knn.py [--n 1000] [--dim 2048] [--classes 100] [--k 1]

scikit-learn's reference is what the method means: for each i, KNeighborsClassifier(
algorithm="brute") fitted on the other N - 1 examples predicts example i. Both see the same
float32 embeddings (what modules produce). Prints times and the speed-up measured in this run.
"""

import argparse
import time

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from hubensemble.proxies import loo_knn_predict


def sklearn_loo(x, y, k, metric):
    n = len(y)
    pred = np.empty(n, dtype=y.dtype)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        keep[i] = False
        clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=metric)
        pred[i] = clf.fit(x[keep], y[keep]).predict(x[i:i + 1])[0]
        keep[i] = True
    return pred


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the fast version")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    y = rng.integers(0, args.classes, args.n)
    # Class structure plus noise, like an embedding that partly separates the classes.
    centres = rng.standard_normal((args.classes, args.dim))
    x = (0.2 * centres[y] + rng.standard_normal((args.n, args.dim))).astype(np.float32)
    print(f"N={args.n} d={args.dim} classes={args.classes} k={args.k} float32")
    for metric in ("euclidean", "cosine"):
        ours, t_ours = best_of(lambda: loo_knn_predict(x, y, k=args.k, metric=metric),
                               args.repeats)
        ref, t_ref = best_of(lambda: sklearn_loo(x, y, args.k, metric), 1)
        print(f"{metric:9s}  loo_knn_predict {t_ours * 1e3:8.1f} ms   "
              f"sklearn LOO {t_ref:7.2f} s   speed-up {t_ref / t_ours:6.0f}x   "
              f"identical: {bool(np.array_equal(ours, ref))}   "
              f"accuracy {np.mean(ours == y):.3f}")


if __name__ == "__main__":
    main()
