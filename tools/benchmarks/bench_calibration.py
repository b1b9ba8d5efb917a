"""Temperature scaling of the greedy ensemble on stored runs: test accuracy, NLL and ECE of the
ensemble as selected, and with one temperature fitted on validation NLL, without fitting
anything else again.

For every run folder (RUN/candidates with validation and test probabilities, RUN/labels) it
selects the ensemble as `hubensemble ensemble` does (`ensemble.select_ensemble` with the
default options; nothing is written) and prints the test figures of: the best single
candidate (the lowest validation cross-entropy, as ensemble.json's best_single), alone and
with its own temperature; the ensemble (the weighted average of its members' probabilities)
as it is; with one temperature on the log of the average (`hubensemble.temperature`: pool,
then calibrate; Rahaman & Thiery, 2021): softmax(log p / T), T fitted by SciPy's bounded
search on log T in [0.05, 20] minimising validation NLL (Guo et al., 2017, 4.2); and with a
temperature per member before the average (calibrate, then pool). Accuracy cannot change
under one temperature; it can under one per member. hubensemble itself applies no
temperature: this measures whether it should. On 2026-12-05 (quick-profile fits, demo zoo,
top-k 4, of the four VTAB-shaped tasks of bench_method.py) it lowered test NLL on 4 of 4 but
ECE on 2 of 4 (gtsrb10 0.058 -> 0.107, dsprites_orient10 0.017 -> 0.026: there the T of the
lowest test ECE is above 1, of the lowest NLL below); on the demo (cpu profile) both, NLL
0.0970 -> 0.0932 and ECE 0.0218 -> 0.0154, but its ensemble made 2 errors on the 200
validation images, and the fit's T over bootstrap resamples of them spans 0.05-0.75.

The temperature is fitted on the validation examples greedy selection chose the members on,
which may make it optimistic. ``--splits K`` measures that: K random halvings of validation
into A and B; the ensemble is selected on A alone, its temperature fitted once on A (the
selection's examples, as the stage would) and once on B (examples the selection never saw);
the mean test NLL and ECE of both, and of neither, are printed. Also printed: how far the
fitted T moves over 30 bootstrap resamples of validation, and the T the test set itself
would choose (a bound, not a method).

    python tools/benchmarks/bench_calibration.py --runs RUN... [--splits 10]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from benchargs import command_logging, description, integer

#: The range the temperature is searched in: a validation set without errors drives the NLL
#: optimum to T -> 0, so the search needs a floor.
T_RANGE = (0.05, 20.0)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log max(p, PROB_FLOOR) / T) of probabilities [N, C] (float64 [N, C]; each
    row's argmax kept): the logits divided by T when p is a softmax of logits."""
    from hubensemble.metrics import PROB_FLOOR

    z = np.log(np.maximum(np.asarray(probs, np.float64), PROB_FLOOR)) / float(temperature)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(probs, y) -> float:
    """The T in T_RANGE minimising the NLL (metrics.nll) of apply_temperature(probs [N, C], T)
    against labels y [N]: SciPy's bounded Brent search on log T."""
    from scipy.optimize import minimize_scalar

    from hubensemble.metrics import nll

    found = minimize_scalar(lambda log_t: nll(apply_temperature(probs, np.exp(log_t)), y),
                            bounds=tuple(np.log(T_RANGE)), method="bounded",
                            options={"xatol": 1e-5})
    return float(np.clip(np.exp(found.x), *T_RANGE))


def _figures(probs, y) -> str:
    from hubensemble.metrics import metrics

    m = metrics(probs, y)
    return f"{m['accuracy']:>8.4f} {m['nll']:>8.4f} {m['ece']:>8.4f}"


def measure(run_dir, splits: int) -> list[str]:
    """The lines of one run folder's table."""
    from hubensemble.ensemble import load_candidates, load_labels, select_ensemble
    from hubensemble.greedy import ensemble_probs, greedy_select
    from hubensemble.metrics import metrics
    from hubensemble.text import counted

    y_val, y_test = load_labels(run_dir, "val"), load_labels(run_dir, "test")
    cands, _ = load_candidates(run_dir)
    by_trial = {c.trial: i for i, c in enumerate(cands)}
    val = np.stack([c.val_probs for c in cands]).astype(np.float64)
    test = np.stack([c.test_probs for c in cands]).astype(np.float64)
    result = select_ensemble(run_dir)
    weights = {by_trial[m["trial"]]: m["weight"] for m in result["members"]}
    best = by_trial[result["val"]["best_single"]["trial"]]
    ens_val, ens_test = ensemble_probs(val, weights), ensemble_probs(test, weights)
    t_best, t_ens = fit_temperature(val[best], y_val), fit_temperature(ens_val, y_val)
    t_members = {i: fit_temperature(val[i], y_val) for i in weights}
    per_member = ensemble_probs(
        np.stack([apply_temperature(test[i], t_members[i]) if i in t_members else test[i]
                  for i in range(len(cands))]), weights)
    lines = [f"{run_dir}: {counted(len(cands), 'candidate')}, "
             f"{counted(len(weights), 'member')}, "
             f"{len(y_val)} validation / {len(y_test)} test examples",
             f"  {'':<34} {'acc':>8} {'nll':>8} {'ece':>8}",
             f"  {'best single':<34} {_figures(test[best], y_test)}",
             f"  {f'best single, T {t_best:.3f}':<34} "
             f"{_figures(apply_temperature(test[best], t_best), y_test)}",
             f"  {'ensemble':<34} {_figures(ens_test, y_test)}",
             f"  {f'ensemble, T {t_ens:.3f}':<34} "
             f"{_figures(apply_temperature(ens_test, t_ens), y_test)}",
             f"  {'ensemble, a T per member':<34} {_figures(per_member, y_test)}"]
    # How stable the fit is (a validation set with few errors pins T down poorly), and the T
    # the test set itself would choose: a bound, not a method.
    rng = np.random.default_rng(0)
    boot = [fit_temperature(ens_val[i], y_val[i])
            for i in (rng.integers(0, len(y_val), len(y_val)) for _ in range(30))]
    errors = int((ens_val.argmax(axis=1) != y_val).sum())
    lines.append(f"  the ensemble's validation errors {errors}; its T over 30 bootstrap "
                 f"resamples of validation (10-90 %) {np.percentile(boot, 10):.3f}-"
                 f"{np.percentile(boot, 90):.3f}; the T of the lowest test NLL "
                 f"{fit_temperature(ens_test, y_test):.3f} (a bound)")
    if splits:
        rows = []
        for seed in range(splits):
            order = np.random.default_rng(seed).permutation(len(y_val))
            a, b = order[:len(y_val) // 2], order[len(y_val) // 2:]
            chosen = greedy_select(val[:, a], y_val[a]).weights
            on_val, on_test = ensemble_probs(val, chosen), ensemble_probs(test, chosen)
            t_a, t_b = fit_temperature(on_val[a], y_val[a]), fit_temperature(on_val[b], y_val[b])
            found = [metrics(p, y_test) for p in (on_test, apply_temperature(on_test, t_a),
                                                  apply_temperature(on_test, t_b))]
            rows.append([t_a, t_b] + [f["nll"] for f in found] + [f["ece"] for f in found])
        r = np.mean(rows, axis=0)
        lines.append(f"  selected on half of validation ({splits} halvings, means): T fitted "
                     f"on the selection's half {r[0]:.3f}, on the other half {r[1]:.3f}; test "
                     f"NLL none / same half / other half {r[2]:.4f} / {r[3]:.4f} / {r[4]:.4f}, "
                     f"ECE {r[5]:.4f} / {r[6]:.4f} / {r[7]:.4f}")
    return lines


def main():
    p = argparse.ArgumentParser(description=description(__doc__))
    p.add_argument("--runs", nargs="+", required=True, help="run folders (RUN/candidates)")
    p.add_argument("--splits", type=integer(0), default=10,
                   help="halvings of validation for the optimism check (0: none)")
    args = p.parse_args()
    runs = [r for r in args.runs if os.path.isdir(os.path.join(r, "candidates"))
            and os.path.exists(os.path.join(r, "labels", "test.npy"))]
    for r in sorted(set(args.runs) - set(runs)):
        print(f"{r}: no candidates/ or labels/test.npy (skipped)", file=sys.stderr)
    if not runs:
        print("no run folder with candidates and test labels among --runs", file=sys.stderr)
        return 2
    with command_logging():
        for r in runs:
            print("\n".join(measure(r, args.splits)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
