"""Greedy ensemble selection: the vectorised greedy_select against a plain loop reference.

    python tools/benchmarks/bench_ensemble.py [--candidates 60] [--val 200] [--classes 397]

The paper's pool: 60 candidates (15 modules x 4 runs), 200 validation examples, budget 15;
397 classes is SUN397, the largest VTAB-1k label set. Prints seconds per objective and the
ratio against the reference measured in this run (target: well under 1 s).
"""

import argparse
import math
import time

import numpy as np

from hubensemble.ensemble import greedy_select
from hubensemble.metrics import PROB_FLOOR
from benchargs import command_logging, integer


def reference_greedy(probs, y, objective, budget):
    """Caruana forward selection with loops over candidates, the mean recomputed each time."""
    m, n, _ = probs.shape
    picks = []
    for _ in range(min(budget, m)):
        best, best_loss = None, None
        for j in range(m):
            if j in picks:
                continue
            mean = np.mean([probs[i] for i in picks + [j]], axis=0)
            if objective == "ce":
                loss = -sum(math.log(max(mean[r, y[r]], PROB_FLOOR)) for r in range(n)) / n
            else:
                loss = -float(np.mean(mean.argmax(axis=1) == y))
            if best is None or loss < best_loss:
                best, best_loss = j, loss
        picks.append(best)
    return picks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=integer(1), default=60)
    parser.add_argument("--val", type=integer(1), default=200)
    parser.add_argument("--classes", type=integer(1), default=397)
    parser.add_argument("--budget", type=integer(1), default=15)
    parser.add_argument("--repeats", type=integer(1), default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    m, n, c = args.candidates, args.val, args.classes
    y = rng.integers(0, c, n)
    logits = rng.standard_normal((m, n, c)) * 2.0
    logits[:, np.arange(n), y] += rng.uniform(1.0, 5.0, (m, 1))
    probs = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs = (probs / probs.sum(axis=2, keepdims=True)).astype(np.float32)
    print(f"{m} candidates x {n} validation x {c} classes, budget {args.budget}")
    for objective in ("ce", "accuracy"):
        for bootstrap in (None, 0.5):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                sel = greedy_select(probs, y, objective=objective, budget=args.budget,
                                    bootstrap=bootstrap)
                times.append(time.perf_counter() - t)
            line = (f"objective={objective:8s} bootstrap={str(bootstrap):4s}  "
                    f"greedy_select {min(times):.3f} s  (size {sel.size})")
            if bootstrap is None:
                t = time.perf_counter()
                picks = reference_greedy(probs.astype(np.float64), y, objective, args.budget)
                t_ref = time.perf_counter() - t
                line += (f"   reference {t_ref:.2f} s   ratio {t_ref / min(times):.0f}x   "
                         f"same picks: {picks == sel.indices}")
            print(line)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
