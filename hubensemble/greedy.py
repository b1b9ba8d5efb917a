"""Greedy ensemble selection (Caruana et al., 2004) on arrays: the method itself, a pure
function of validation probabilities [M, N, C] and labels (`greedy_select`), how the ensemble
size is chosen on its path (`choose_size`) and the ensemble's probabilities
(`ensemble_probs`). `hubensemble.ensemble` applies it to a run's candidates (and re-exports
these names); the inference budget's eligibility is `cost.budget`'s. TensorFlow-free.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from hubensemble import options
from hubensemble.cost import budget as inference_budget
from hubensemble.cost.records import Limits
from hubensemble.errors import checks_keywords
from hubensemble.metrics import PROB_FLOOR, PROB_SUM_TOLERANCE, accuracy, nll, probability_fault

log = logging.getLogger(__name__)
OBJECTIVES = options.get("objective").choices
#: How the ensemble size is chosen on the greedy path (see `choose_size`):
#: "one-se"  the largest prefix whose validation objective is within one standard error
#:           (paired, over the validation examples) of the best prefix's;
#: "paper"   the prefix with the best validation objective (paper 2.3; ties -> smaller);
#: "budget"  every pick of the path (the whole inference budget, as auto-sklearn's ensemble
#:           selection uses all its iterations).
SIZE_RULES = options.get("size_rule").choices


@dataclass
class Selection:
    """The outcome of greedy_select.

    `indices` is the whole pick order over the budget (repeats allowed with replacement);
    the ensemble is its first `size` picks, `weights` = pick counts / size over that prefix
    (keys in first-pick order; values in (0, 1] summing to 1). `curve[j]` is {"size": j + 1,
    "ce", "accuracy"} of the ensemble of the first j + 1 picks on the full validation set;
    `objective` is "ce" or "accuracy". `to_json` / `from_json` round-trip through JSON.
    """

    indices: list
    weights: dict
    size: int
    curve: list
    objective: str
    size_rule: dict | None = None  # choose_size's record: rule, best_size, size, se
    #: Why the path ended before `budget` picks under inference limits (None otherwise).
    stopped: str | None = None

    @property
    def members(self):
        """Distinct candidate indices of the chosen ensemble, in first-pick order."""
        return list(self.weights)

    def __repr__(self) -> str:
        # One line, as Ranking's and FitResult's: the dataclass repr printed the whole path's
        # curve and every pick (about 100 characters a pick: 1,500 at the default budget of
        # 15), where a notebook user echoing greedy_select's result wants the ensemble.
        chosen = self.curve[self.size - 1] if 0 < self.size <= len(self.curve) else {}
        score = (f", val {self.objective} {chosen[self.objective]:.4f}"
                 if isinstance(chosen.get(self.objective), (int, float)) else "")
        weights = ", ".join(f"{i}: {w:.3g}" for i, w in self.weights.items())
        stopped = "" if self.stopped is None else f", stopped={self.stopped!r}"
        return (f"Selection(members={self.members!r}, size={self.size} of "
                f"{len(self.indices)} picks, weights={{{weights}}}{score}{stopped})")

    def to_json(self):
        """A JSON-ready dict (weights' keys as strings)."""
        d = asdict(self)
        d["weights"] = {str(k): v for k, v in self.weights.items()}
        return d

    @classmethod
    def from_json(cls, d):
        """The Selection of a `to_json` dict."""
        return cls(indices=[int(i) for i in d["indices"]],
                   weights={int(k): float(v) for k, v in d["weights"].items()},
                   size=int(d["size"]), curve=list(d["curve"]), objective=d["objective"],
                   size_rule=d.get("size_rule"), stopped=d.get("stopped"))


def pick_weights(picks) -> dict[int, float]:
    """{candidate index: weight} of a greedy path's prefix `picks` (ints, repeats allowed):
    each index's share of the picks (Caruana et al. 2004: a candidate picked twice counts
    twice), in first-pick order; the weights sum to 1."""
    counts = Counter(picks)
    return {int(i): counts[i] / len(picks) for i in dict.fromkeys(picks)}


#: greedy_select's keywords that are options of the table: {keyword: option name}.
_OPTIONS = {"budget": "ensemble_budget", "seed": "seed", "bootstrap": "bootstrap",
            "with_replacement": "with_replacement"}


def _check_arguments(val_probs, y, *, costs, limits, **values) -> None:
    """greedy_select's arguments by type, before any work: TypeError (`text.typed`) or
    OptionError (`options.check`, for `_OPTIONS`), each naming the argument."""
    from hubensemble.text import typed

    for name, value, what, kinds in (
            ("val_probs", val_probs, "a float array [M, N, C] of probabilities", "fiub"),
            ("y", y, "an integer array [N] of labels", "iu")):
        if isinstance(value, (str, bytes, dict)) or np.asarray(value).dtype.kind not in kinds:
            typed("greedy_select", name, value, (), what)
    for name, value in values.items():
        options.check(_OPTIONS[name], value, label=name, command="ensemble")
    typed("greedy_select", "costs", costs, (dict, type(None)),
          'a dict {"gflops": [M], "latency_ms": [M], …} or None')
    typed("greedy_select", "limits", limits, (Limits, type(None)),
          "a hubensemble.cost.Limits or None")


def _check_member(i, table) -> None:
    """ValueError naming candidate `i`, its first row at fault, what it holds and what is
    expected, when its validation table [N, C] is not probabilities (`metrics.
    probability_fault`'s rule, the one the evaluation reads a model's output by): the method
    averages the members' probabilities (Caruana et al. 2004; paper 2.3, "Ensemble
    construction"), so logits, scores or NaN rows would be averaged and scored without a
    word (a NaN ranks nowhere, a logit's cross-entropy is floored at PROB_FLOOR)."""
    fault = probability_fault(table)
    if fault is None:
        return
    row, what = fault
    values = np.asarray(table[row], dtype=np.float64)
    more = ", …]" if len(values) > 6 else "]"
    shown = "[" + ", ".join(f"{v:.4g}" for v in values[:6]) + more
    found = (f"its row {row} holds {shown}" if not np.isfinite(values).all() else
             f"its row {row} is {shown}, summing to {values.sum():.4g}")
    raise ValueError(
        f"greedy_select() val_probs[{i}] (candidate {i}'s validation table [N, C]) is not "
        f"probabilities: {found}; {what}. The method averages the candidates' probabilities "
        f"(Caruana et al. 2004; paper 2.3), so each row must be values >= 0 summing to 1, "
        f"each within {PROB_SUM_TOLERANCE:g}: for logits, pass their softmax over the last "
        "axis")


@checks_keywords
def greedy_select(val_probs, y, *, objective="ce", budget=15, with_replacement=False,
                  bootstrap=None, seed=0, size_rule="one-se", costs=None,
                  limits: Limits | None = None) -> Selection:
    """Caruana et al. (2004) forward selection on validation probabilities [M, N, C].

    Each step adds the candidate whose inclusion gives the best objective of the averaged
    probabilities ("ce": lowest mean cross-entropy; "accuracy": highest accuracy); equal
    objectives go to the lowest candidate index (`run_ensemble` indexes a run's candidates
    in natural trial order: trial_2 before trial_10). Either objective counts every
    validation example once (the paper's, not reweighted), so on unbalanced validation
    classes the large ones decide the picks and a rare class's recall may fall; a
    class-balanced validation split weighs the classes equally (docs/rank.md, "Long-tailed
    classes"). Without replacement (default) a candidate
    is picked at most once; with replacement a re-pick raises its weight. Runs `budget`
    steps (fewer if candidates run out); the ensemble is the prefix of that path chosen by
    `size_rule` on the full-validation curve (`choose_size`: "one-se" by default, "paper" =
    the best prefix, ties -> the smaller). `bootstrap` = proportion B (paper C.9): at each
    step the candidates are compared on round(B * N) examples drawn with replacement by
    np.random.default_rng(seed).integers(0, N, round(B * N)), one draw per step.

    Inference budget (`limits`, a `hubensemble.cost.Limits`): a candidate is eligible at a
    step only when the ensemble with it stays within every limit: a new member adds its
    `costs["gflops"][i]` (GFLOPs per image), `costs["latency_ms"][i]` (ms at batch 1) and one
    member; a re-pick adds nothing; a candidate whose frozen backbone a member already runs
    adds only its head (costs["share"], costs["head_gflops"], costs["head_latency_ms"]:
    `cost.budget.eligibility`). When no candidate is eligible the path ends early
    (`stopped` says why), and the size rule chooses among the prefixes of that path, all of
    which are within the budget. `costs`: {"gflops": float [M], "latency_ms": float [M]},
    the dimensions the limits use (NaN = unknown: never eligible).

    val_probs: float32 or float64 [M, N, C] (other dtypes are converted to float64); y: int
    [N] in [0, C). The cross-entropy floors probabilities at metrics.PROB_FLOOR. Returns a
    `Selection`. Raises ValueError for an unknown objective or size rule, a budget < 1, a bootstrap
    proportion <= 0, shapes that do not fit, labels out of range, and a candidate's table
    that is not probabilities (NaN or inf, a value below 0 or a row not summing to 1 within
    metrics.PROB_SUM_TOLERANCE = 1e-3: logits), naming the candidate, its first row at fault,
    the values found there and the rule (`metrics.probability_fault`);
    before any work, TypeError naming the argument for `val_probs` that are not numbers (a
    str, a dict), labels `y` that are not integers, `costs` that are no dict or `limits` no
    Limits (`text.typed`), and OptionError (a ValueError) naming it for a `budget`,
    `seed`, `bootstrap` or `with_replacement` the options table refuses (`options.check`, the
    command line's rule: budget=True or 2.5 was taken as 1 or 2).
    """
    _check_arguments(val_probs, y, budget=budget, seed=seed, bootstrap=bootstrap,
                     with_replacement=with_replacement, costs=costs, limits=limits)
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of "  # as size rules
                         f"{', '.join(OBJECTIVES)}")
    if size_rule not in SIZE_RULES:
        raise ValueError(f"unknown size rule {size_rule!r}; choose one of "
                         f"{', '.join(SIZE_RULES)}")
    probs = np.asarray(val_probs)
    if probs.dtype not in (np.float32, np.float64):
        probs = probs.astype(np.float64)
    # float32 tables stay float32 (half the memory traffic); every sum is taken in float64,
    # and float32 -> float64 is exact, so the result does not depend on the input dtype.
    y = np.asarray(y)
    if probs.ndim != 3 or 0 in probs.shape[:2] or y.shape != (probs.shape[1],):
        # N = 0 failed in numpy ("zero-size array to reduction operation minimum")
        raise ValueError(f"greedy_select() expected val_probs [M, N, C] with M >= 1 "
                         f"candidates and N >= 1 validation examples, and labels y [N], got "
                         f"{list(probs.shape)} and {list(y.shape)}")
    for i, table in enumerate(probs):  # one table at a time: no copy of the whole stack
        _check_member(i, table)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= probs.shape[2]:
        bad = int(np.flatnonzero((y < 0) | (y >= probs.shape[2]))[0]) if np.issubdtype(
            y.dtype, np.integer) else 0
        raise ValueError(f"greedy_select() labels y must be integers in [0, {probs.shape[2]}) "
                         f"(the C = {probs.shape[2]} classes of val_probs [M, N, C]), got "
                         f"y[{bad}] = {y[bad].item()!r}")
    if int(budget) < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    m, n, _ = probs.shape
    rng = None
    if bootstrap is not None:
        if not bootstrap > 0:
            raise ValueError(f"bootstrap proportion must be > 0, got {bootstrap}")
        rng = np.random.default_rng(seed)
        n_boot = max(1, int(round(bootstrap * n)))
    all_rows = np.arange(n)
    total = np.zeros(probs.shape[1:])  # running sum of the picked candidates' probabilities
    picks, curve, losses = [], [], []
    buf = None
    if objective == "accuracy":
        rows_max = n if rng is None else max(n, n_boot)
        group = max(1, min(m, (1 << 18) // max(1, rows_max * probs.shape[2])))
        buf = np.empty((group, rows_max, probs.shape[2]))
    available = np.ones(m, dtype=bool)
    fits = inference_budget.eligibility(costs, limits, m)
    stopped = None
    for _ in range(int(budget)):
        if not available.any():
            break
        eligible = available if fits is None else available & fits(picks)
        if not eligible.any():
            if not picks:
                raise ValueError(f"no candidate fits the inference budget "
                                 f"({limits.flags()})")
            stopped = (f"the greedy path ended after {len(picks)} pick"
                       f"{'' if len(picks) == 1 else 's'}: no other candidate fits")
            break
        rows = all_rows if rng is None else rng.integers(0, n, n_boot)
        yr = y[rows]
        size = len(picks) + 1
        if objective == "ce":
            # Only each example's true-class probability enters the cross-entropy.
            p_true = (total[rows, yr][None, :] + probs[:, rows, yr]) / size  # [M, R]
            score = np.log(np.maximum(p_true, PROB_FLOOR)).mean(axis=1)  # = -CE
        else:
            score = np.empty(m)
            sub_total = total if rng is None else total[rows]
            # Candidates in groups whose [g, R, C] work array stays in cache.
            for lo in range(0, m, group):
                hi = min(m, lo + group)
                sub = probs[lo:hi] if rng is None else probs[lo:hi, rows]
                ens = np.add(sub_total[None], sub, out=buf[:hi - lo, :len(rows)])
                ens /= size
                score[lo:hi] = (ens.argmax(axis=2) == yr[None, :]).mean(axis=1)
        score[~eligible] = -np.inf
        best = int(np.argmax(score))  # first maximum: the lowest index wins ties
        picks.append(best)
        total += probs[best]
        if not with_replacement:
            available[best] = False
        current = total / len(picks)
        curve.append({"size": len(picks), "ce": nll(current, y), "accuracy": accuracy(current, y)})
        losses.append(example_losses(current, y, objective))
    chosen, size_info = choose_size(np.stack(losses), rule=size_rule, objective=objective)
    return Selection(indices=picks, weights=pick_weights(picks[:chosen]), size=chosen, curve=curve,
                     objective=objective, size_rule=size_info, stopped=stopped)


def example_losses(ensemble, y, objective) -> np.ndarray:
    """Per-example loss float64 [N] of ensemble probabilities [N, C]: -log max(p(y),
    PROB_FLOOR) for "ce" (its mean is metrics.nll), 1 - correct for "accuracy"."""
    p_true = ensemble[np.arange(len(y)), y]
    if objective == "ce":
        return -np.log(np.maximum(p_true, PROB_FLOOR))
    return (ensemble.argmax(axis=1) != y).astype(np.float64)


def choose_size(losses, *, rule="one-se", objective="ce") -> tuple[int, dict]:
    """The ensemble size (1-based prefix length of the greedy path) under a size rule.

    losses: float [S, N], row j = the per-example loss of the first j + 1 picks on the N
    validation examples (`example_losses`; lower is better). Let b = the prefix with the
    lowest mean loss (ties -> the smaller).

    - "paper": b (the paper's "ensemble size chosen on validation", 2.3 and C.9).
    - "one-se": the largest j whose mean loss exceeds b's by at most one standard error of
      the paired difference, SE_j = std(loss_j - loss_b, ddof=1) / sqrt(N). On 200
      validation examples the validation curve of cross-entropy is flat within noise after
      a few members; the argmin then lands on an arbitrary point of that plateau (at times
      on one member, i.e. no ensemble), while the test loss keeps falling with size under
      cross-entropy selection (paper C.9). The one-standard-error rule (Breiman et al.,
      1984; Hastie et al., 2009, 7.10) takes the plateau's far end instead: a larger
      ensemble that validation cannot tell from the best, and never one that is worse than
      the best by more than noise (a truly dominant single model keeps size 1). A prefix
      whose losses equal the best's on every example (a re-pick, a copy) is not taken.
    - "budget": S (every pick).

    Returns (size, record) with record {"rule", "best_size", "size", "se"}; "se" is the
    standard error of the chosen prefix's difference to the best (0 for "paper").
    Deterministic: equal means (within 1e-12, float rounding) go to the smaller prefix for b;
    for "one-se" the largest qualifying prefix is taken. Raises ValueError for an unknown
    rule or an empty path.
    """
    if rule not in SIZE_RULES:
        raise ValueError(f"unknown size rule {rule!r}; choose one of {', '.join(SIZE_RULES)}")
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 2 or losses.shape[0] == 0:
        raise ValueError(f"expected losses [S, N] with S >= 1, got {losses.shape}")
    s, n = losses.shape
    means = losses.mean(axis=1)
    # First minimum: ties -> the smaller ensemble; means within float rounding of the lowest
    # (a re-picked model's prefixes, k * p / k) are ties too.
    best = int(np.flatnonzero(means <= means.min() + _SAME_LOSS)[0])
    record = {"rule": rule, "best_size": best + 1, "size": best + 1, "se": 0.0}
    if rule == "paper":
        return best + 1, record
    if rule == "budget":
        diff = losses[-1] - losses[best]
        record.update(size=s, se=_paired_se(diff))
        return s, record
    chosen, chosen_se = best, 0.0
    for j in range(s - 1, best, -1):
        diff = losses[j] - losses[best]
        if np.all(np.abs(diff) <= _SAME_LOSS):
            continue  # the same predictions as the best (a re-pick, a copy): nothing gained
        se = _paired_se(diff)
        if diff.mean() <= se:
            chosen, chosen_se = j, se
            break
    record.update(size=chosen + 1, se=chosen_se)
    return chosen + 1, record


#: Per-example losses closer than this are the same loss (float rounding of equal ensembles).
_SAME_LOSS = 1e-12


def _paired_se(diff) -> float:
    n = len(diff)
    return float(np.std(diff, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def ensemble_probs(probs, weights):
    """Weighted average float64 [N, C] of candidate probabilities `probs` ([M, N, C], or a
    list or {index: table} of [N, C] tables); weights {candidate index: w >= 0} (normalised
    by their sum). Only the weighted tables are read, each widened to float64 on its own: the
    whole stack widened first was twice a pool's float32 size (5 GB for 80 candidates of
    1,000 classes and 5,000 images). ValueError for no weights or a sum that is not > 0."""
    if not weights:
        raise ValueError("an ensemble needs at least one member")
    total = sum(float(w) for w in weights.values())
    if not total > 0:
        raise ValueError(f"ensemble weights must sum to > 0, got {weights}")
    out = None
    for i, w in weights.items():
        part = float(w) * np.asarray(probs[int(i)], np.float64)
        if out is None:
            out = part
        else:
            out += part
    return out / total
