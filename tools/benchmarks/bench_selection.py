"""Ensemble-selection variants on stored runs: which size rule / replacement setting meets the
method-evidence targets, without fine-tuning anything again.

For every run folder (RUN/candidates with validation and test probabilities, RUN/labels) and
every variant (size rule x with/without replacement) it recomputes the selection with
`hubensemble.ensemble.select_ensemble` (nothing is written). ``--sorted`` adds Caruana et al.
(2004, 2.1) sorted initialisation, which the library does not offer: the path starts with the
N candidates of lowest validation cross-entropy, N (1..budget) the one whose plain average has
the lowest validation cross-entropy, then greedy forward selection continues; the size rule
(`ensemble.choose_size`) and the weights (pick counts) are the library's. ``--oracle`` adds
a bound, not a method: the lowest test NLL that ANY convex weighting of the candidates'
probabilities reaches (weights fitted on the test set itself by exponentiated gradient); where
it is not below the best single's test NLL, no selection that averages probabilities can meet
the NLL target on that run. It prints, per run, the best single member's test accuracy / NLL
(the candidate with the lowest validation cross-entropy: the same "best single" as
bench_method's table and ensemble.json) and each variant's ensemble size, test accuracy and
NLL. Then one summary line
per variant with the targets of the method-evidence issue (14): rows where the ensemble's
test accuracy is >= the best single's (target >= 90 %), rows where its test NLL is below the
best single's (target: every row), mean accuracy gain (target >= +1.0 point), and the mean
test accuracy / NLL.

    python tools/benchmarks/bench_selection.py --runs /work/bench/runs/*-zoo-s* \
        [--rules one-se paper budget] [--budget 15] [--sorted] [--oracle] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from benchargs import command_logging, description, file_target, integer, once

from hubensemble import options

#: ensemble.SIZE_RULES, from the options table: choices without the ensemble's imports.
SIZE_RULES = options.get("size_rule").choices


def variants(rules, replacement, inits):
    """[(name, select_ensemble keywords)] of every combination."""
    out = []
    for rule in rules:
        for wr in replacement:
            for init in inits:
                name = rule + ("+repl" if wr else "") + ("+sorted" if init else "")
                kw = {"size_rule": rule, "with_replacement": wr, "sorted_init": init}
                out.append((name, kw))
    return out


def measure(run_dir, named, budget) -> dict:
    """{"run", "single_acc", "single_nll", "variants": {name: {"size", "members", "acc",
    "nll"}}} of one run folder."""
    from hubensemble.ensemble import select_ensemble

    row = {"run": Path(run_dir).name, "variants": {}}
    for name, kw in named:
        if kw["sorted_init"]:
            row["variants"][name] = sorted_variant(run_dir, budget, kw["size_rule"],
                                                   kw["with_replacement"])
            continue
        res = select_ensemble(run_dir, budget=budget, size_rule=kw["size_rule"],
                              with_replacement=kw["with_replacement"])
        test = res["test"]
        row["single_acc"] = test["best_single"]["accuracy"]
        row["single_nll"] = test["best_single"]["nll"]
        row["variants"][name] = {"size": res["size"], "members": len(res["members"]),
                                 "acc": test["ensemble"]["accuracy"],
                                 "nll": test["ensemble"]["nll"]}
    return row


def _tables(run_dir):
    """(validation float64 [M, N, C], test float64 [M, T, C], y_val, y_test) of a run."""
    from hubensemble import ensemble

    y_val, y_test = ensemble.load_labels(run_dir, "val"), ensemble.load_labels(run_dir, "test")
    cands, _ = ensemble.load_candidates(run_dir)
    return (np.stack([c.val_probs for c in cands]).astype(np.float64),
            np.stack([c.test_probs for c in cands]).astype(np.float64), y_val, y_test)


def sorted_variant(run_dir, budget, rule, with_replacement) -> dict:
    """Sorted initialisation (Caruana et al., 2004, 2.1) then greedy forward selection on
    validation cross-entropy; size by `choose_size(rule)`. {"size", "members", "acc", "nll"}
    on test."""
    from hubensemble.ensemble import choose_size, ensemble_probs, example_losses, pick_weights
    from hubensemble.metrics import PROB_FLOOR, accuracy, nll

    val, test, y_val, y_test = _tables(run_dir)
    m, n = val.shape[:2]
    order = [int(i) for i in np.argsort([nll(p, y_val) for p in val], kind="stable")]
    tops = [nll(val[order[:k]].mean(axis=0), y_val) for k in range(1, min(m, budget) + 1)]
    picks = order[:int(np.argmin(tops)) + 1]
    losses = [example_losses(val[picks[:k]].mean(axis=0), y_val, "ce")
              for k in range(1, len(picks) + 1)]
    total = val[picks].sum(axis=0)
    available = np.ones(m, dtype=bool)
    if not with_replacement:
        available[picks] = False
    rows = np.arange(n)
    while len(picks) < budget and available.any():
        p_true = (total[rows, y_val][None] + val[:, rows, y_val]) / (len(picks) + 1)
        score = np.log(np.maximum(p_true, PROB_FLOOR)).mean(axis=1)
        score[~available] = -np.inf
        best = int(np.argmax(score))
        picks.append(best)
        total += val[best]
        available[best] = with_replacement
        losses.append(example_losses(total / len(picks), y_val, "ce"))
    size, _ = choose_size(np.stack(losses), rule=rule)
    weights = pick_weights(picks[:size])
    ens = ensemble_probs(test, weights)
    return {"size": size, "members": len(weights), "acc": accuracy(ens, y_test),
            "nll": nll(ens, y_test)}


def oracle_nll(run_dir, steps=3000) -> float:
    """The lowest test NLL of a convex weighting of the candidates' test probabilities, the
    weights fitted on test (exponentiated gradient): a bound on every averaging selection."""
    from hubensemble.metrics import PROB_FLOOR

    _, test, _, y_test = _tables(run_dir)
    p_true = np.maximum(test[:, np.arange(len(y_test)), y_test], PROB_FLOOR)  # [M, T]
    start = int(np.argmin(-np.log(p_true).mean(axis=1)))
    w = np.full(len(test), 1e-3)
    w[start] = 1.0
    w /= w.sum()
    for _ in range(steps):
        w *= np.exp(0.5 * (p_true / (w @ p_true)).mean(axis=1))
        w /= w.sum()
    return float(min(-np.log(w @ p_true).mean(), -np.log(p_true[start]).mean()))


def summary(rows, name) -> dict:
    """The targets of one variant over the rows."""
    acc_ge = sum(r["variants"][name]["acc"] >= r["single_acc"] for r in rows)
    nll_lt = sum(r["variants"][name]["nll"] < r["single_nll"] for r in rows)
    gain = float(np.mean([r["variants"][name]["acc"] - r["single_acc"] for r in rows])) * 100
    return {"variant": name, "rows": len(rows), "acc_ge": acc_ge, "nll_lt": nll_lt,
            "gain_points": gain,
            "mean_acc": float(np.mean([r["variants"][name]["acc"] for r in rows])),
            "mean_nll": float(np.mean([r["variants"][name]["nll"] for r in rows])),
            "mean_size": float(np.mean([r["variants"][name]["size"] for r in rows])),
            "met": (acc_ge >= 0.9 * len(rows) and nll_lt == len(rows) and gain >= 1.0)}


def main():
    p = argparse.ArgumentParser(description=description(__doc__))
    p.add_argument("--runs", nargs="+", required=True, help="run folders (RUN/candidates)")
    p.add_argument("--rules", nargs="+", default=None, choices=SIZE_RULES,
                   help="size rules (default: every one of --size-rule's choices)")
    p.add_argument("--budget", type=integer(1), default=None,
                   help="greedy picks (default: the ensemble's default budget, "
                        f"{options.default('ensemble_budget')})")
    p.add_argument("--sorted", action="store_true",
                   help="add the sorted-initialisation variants (computed here)")
    p.add_argument("--oracle", action="store_true",
                   help="add the test-fitted convex-weighting bound on the test NLL")
    p.add_argument("--json", default=None, type=file_target, metavar="FILE",
                   help="also write the rows and summary here")
    args = p.parse_args()
    once(p, "--rules", args.rules)  # a rule twice: its variants measured and listed twice
    rules = args.rules or list(SIZE_RULES)
    budget = options.default("ensemble_budget") if args.budget is None else args.budget
    inits = [False] + ([True] if args.sorted else [])
    named = variants(rules, [False, True], inits)
    runs = []
    for r in sorted(args.runs):
        if os.path.isdir(os.path.join(r, "candidates")) and os.path.exists(
                os.path.join(r, "labels", "test.npy")):
            runs.append(r)
        else:
            print(f"{r}: no candidates/ or labels/test.npy (skipped)", file=sys.stderr)
    if not runs:
        print("no run folder with candidates and test labels among --runs", file=sys.stderr)
        return 2
    print(f"bench_selection: {len(runs)} runs, budget {budget}, variants "
          f"{', '.join(n for n, _ in named)}")
    print(f"{'run':<28} {'single acc':>10} {'nll':>7}  " + "  ".join(
        f"{n:>24}" for n, _ in named) + ("  oracle NLL" if args.oracle else ""))
    rows = []
    for run in runs:
        row = measure(run, named, budget)
        rows.append(row)
        cells = []
        for n, _ in named:
            v = row["variants"][n]
            mark = ("" if v["acc"] >= row["single_acc"] else "a") + (
                "" if v["nll"] < row["single_nll"] else "n")
            cells.append(f"{v['size']:>2} {v['acc']:.4f} {v['nll']:.4f} {mark:<2}".rjust(24))
        if args.oracle:
            row["oracle_nll"] = oracle_nll(run)
            below = row["oracle_nll"] < row["single_nll"] - 1e-6
            cells.append(f"{row['oracle_nll']:.4f}{'' if below else ' n'}")
        print(f"{row['run']:<28} {row['single_acc']:>10.4f} {row['single_nll']:>7.4f}  "
              + "  ".join(cells), flush=True)
    print("(cells: size, test acc, test NLL; 'a' = acc below the best single, 'n' = NLL not "
          "below it)")
    print(f"{'variant':<22} {'acc>=single':>11} {'NLL<single':>10} {'gain pts':>8} "
          f"{'mean acc':>8} {'mean NLL':>8} {'size':>5}  targets")
    table = [summary(rows, n) for n, _ in named]
    for s in table:
        print(f"{s['variant']:<22} {s['acc_ge']:>5}/{s['rows']:<5} {s['nll_lt']:>4}/{s['rows']:<5} "
              f"{s['gain_points']:>+8.2f} {s['mean_acc']:>8.4f} {s['mean_nll']:>8.4f} "
              f"{s['mean_size']:>5.1f}  {'met' if s['met'] else 'not met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
