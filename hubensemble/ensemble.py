"""Greedy ensemble selection (Caruana et al., 2004) over the fine-tuned candidates of a run."""

import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from . import fileio
from .errors import RunError

OBJECTIVES = ("ce", "accuracy")
PROB_FLOOR = 1e-12  # probabilities are clipped here before the log: one 0 must not give inf

CANDIDATES_DIR = "candidates"
LABELS_DIR = "labels"
ENSEMBLE_FILE = "ensemble.json"
TRIAL_FILE = "trial.json"
VAL_PROBS_FILE = "val_probs.npy"
TEST_PROBS_FILE = "test_probs.npy"


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def _check_probs_labels(probs, y):
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y)
    if probs.ndim != 2 or y.shape != (probs.shape[0],):
        raise ValueError(f"expected probs [N, C] and labels [N], got {probs.shape} and {y.shape}")
    return probs, y


def accuracy(probs, y):
    """Top-1 accuracy of probabilities [N, C] (argmax: ties -> the lower class)."""
    probs, y = _check_probs_labels(probs, y)
    return float(np.mean(probs.argmax(axis=1) == y))


def nll(probs, y):
    """Mean cross-entropy -log p(y), with p clipped at 1e-12."""
    probs, y = _check_probs_labels(probs, y)
    p = probs[np.arange(len(y)), y]
    return float(np.mean(-np.log(np.maximum(p, PROB_FLOOR))))


def ece(probs, y, bins=15):
    """Top-label expected calibration error with `bins` equal-width confidence bins.

    Bin b holds confidences in (b/bins, (b+1)/bins] (a confidence of 0 joins the first);
    ECE = sum_b n_b / N * |accuracy_b - mean confidence_b|.
    """
    probs, y = _check_probs_labels(probs, y)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, int(bins) - 1)
    n = np.bincount(which, minlength=bins).astype(np.float64)
    gap = np.bincount(which, weights=correct, minlength=bins) \
        - np.bincount(which, weights=conf, minlength=bins)
    # |sum(correct) - sum(conf)| / N per bin equals n_b / N * |acc_b - conf_b|.
    return float(np.abs(gap[n > 0]).sum() / len(y))


def metrics(probs, y, bins=15):
    return {"accuracy": accuracy(probs, y), "nll": nll(probs, y), "ece": ece(probs, y, bins)}


# ---------------------------------------------------------------------------------------------
# Greedy selection
# ---------------------------------------------------------------------------------------------

@dataclass
class Selection:
    """The outcome of greedy_select.

    `indices` is the whole pick order over the budget (repeats allowed with replacement);
    the ensemble is its first `size` picks, `weights` = pick counts / size over that prefix
    (keys in first-pick order). `curve[j]` is the ensemble of the first j + 1 picks on the
    full validation set.
    """

    indices: list
    weights: dict
    size: int
    curve: list
    objective: str

    @property
    def members(self):
        """Distinct candidate indices of the chosen ensemble, in first-pick order."""
        return list(self.weights)

    def to_json(self):
        d = asdict(self)
        d["weights"] = {str(k): v for k, v in self.weights.items()}
        return d

    @classmethod
    def from_json(cls, d):
        return cls(indices=[int(i) for i in d["indices"]],
                   weights={int(k): float(v) for k, v in d["weights"].items()},
                   size=int(d["size"]), curve=list(d["curve"]), objective=d["objective"])


def _weights(picks):
    counts = Counter(picks)
    return {int(i): counts[i] / len(picks) for i in dict.fromkeys(picks)}


def greedy_select(val_probs, y, *, objective="ce", budget=15, with_replacement=False,
                  bootstrap=None, seed=0):
    """Caruana et al. (2004) forward selection on validation probabilities [M, N, C].

    Each step adds the candidate whose inclusion gives the best objective of the averaged
    probabilities ("ce": lowest mean cross-entropy; "accuracy": highest accuracy); equal
    objectives go to the lowest candidate index. Without replacement (default) a candidate
    is picked at most once; with replacement a re-pick raises its weight. Runs `budget`
    steps (fewer if candidates run out); the ensemble is the prefix with the best objective
    on the full-validation curve, ties -> the smaller ensemble (paper: size chosen on
    validation). `bootstrap` = proportion B (paper C.9): at each step the candidates are
    compared on round(B * N) examples drawn with replacement by
    np.random.default_rng(seed).integers(0, N, round(B * N)), one draw per step.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {OBJECTIVES}")
    probs = np.asarray(val_probs)
    if probs.dtype not in (np.float32, np.float64):
        probs = probs.astype(np.float64)
    # float32 tables stay float32 (half the memory traffic); every sum is taken in float64,
    # and float32 -> float64 is exact, so the result does not depend on the input dtype.
    y = np.asarray(y)
    if probs.ndim != 3 or probs.shape[0] == 0 or y.shape != (probs.shape[1],):
        raise ValueError(f"expected val_probs [M, N, C] with M >= 1 and labels [N], "
                         f"got {probs.shape} and {y.shape}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("val_probs contain NaN or inf")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= probs.shape[2]:
        raise ValueError(f"labels must be integers in [0, {probs.shape[2]})")
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
    picks, curve = [], []
    buf = None
    if objective == "accuracy":
        rows_max = n if rng is None else max(n, n_boot)
        group = max(1, min(m, (1 << 18) // max(1, rows_max * probs.shape[2])))
        buf = np.empty((group, rows_max, probs.shape[2]))
    available = np.ones(m, dtype=bool)
    for _ in range(int(budget)):
        if not available.any():
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
        score[~available] = -np.inf
        best = int(np.argmax(score))  # first maximum: the lowest index wins ties
        picks.append(best)
        total += probs[best]
        if not with_replacement:
            available[best] = False
        current = total / len(picks)
        curve.append({"size": len(picks), "ce": nll(current, y), "accuracy": accuracy(current, y)})
    if objective == "ce":
        chosen = int(np.argmin([c["ce"] for c in curve])) + 1
    else:
        chosen = int(np.argmax([c["accuracy"] for c in curve])) + 1
    return Selection(indices=picks, weights=_weights(picks[:chosen]), size=chosen, curve=curve,
                     objective=objective)


def ensemble_probs(probs, weights):
    """Weighted average [N, C] of candidate probabilities [M, N, C]; weights {index: w}."""
    probs = np.asarray(probs, dtype=np.float64)
    if not weights:
        raise ValueError("an ensemble needs at least one member")
    total = sum(float(w) for w in weights.values())
    if not total > 0:
        raise ValueError(f"ensemble weights must sum to > 0, got {weights}")
    out = np.zeros(probs.shape[1:])
    for i, w in weights.items():
        out += float(w) * probs[int(i)]
    return out / total


# ---------------------------------------------------------------------------------------------
# Candidates in a run directory
# ---------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One fine-tuned model of RUN/candidates/<trial>/ (trial.json + probabilities)."""

    trial: str
    module: str
    handle: str
    hparams: dict
    seed: int
    val_probs: np.ndarray = field(repr=False)
    test_probs: np.ndarray = field(default=None, repr=False)
    record: dict = field(default_factory=dict, repr=False)
    path: str = ""


def _natural_key(text):
    # "trial_10" after "trial_9": digit runs compare as numbers.
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text) if t]


def _load_probs(path, rows, what):
    """(array, None) or (None, reason) for a probability table [rows, C]."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None, f"{what} missing"
    except (OSError, ValueError) as e:
        return None, f"{what} unreadable ({e})"
    if arr.ndim != 2 or (rows is not None and arr.shape[0] != rows):
        want = f"[{rows}, C]" if rows is not None else "[N, C]"
        return None, f"{what} has shape {arr.shape}, expected {want}"
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        return None, f"{what} holds non-finite or non-float values"
    if arr.size and (arr.min() < 0 or np.abs(arr.sum(axis=1) - 1).max() > 1e-3):
        return None, f"{what} rows are not probabilities (negative or not summing to 1)"
    return arr, None


def _label_file(run_dir, split):
    return os.path.join(os.fspath(run_dir), LABELS_DIR, f"{split}.npy")


def load_labels(run_dir, split):
    """RUN/labels/<split>.npy as int64, or None when the file does not exist."""
    path = _label_file(run_dir, split)
    if not os.path.exists(path):
        return None
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); re-run `hubensemble tune` to rewrite it")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise RunError(f"{path} must hold a 1-D integer array, got {y.dtype} {y.shape}; "
                       f"re-run `hubensemble tune` to rewrite it")
    return y.astype(np.int64)


def load_candidates(run_dir, *, n_val=None, n_test=None):
    """The usable candidates of RUN/candidates/ sorted by trial id, and the skipped ones.

    Returns (candidates, skipped), skipped = [(trial, reason)]. A candidate counts only when
    trial.json (written last by the producer) says status "ok" and val_probs.npy is a
    probability table [n_val, C] with the C most candidates share. n_val / n_test default
    to the length of RUN/labels/val.npy / test.npy when present. Folders named ".tmp-*"
    (interrupted atomic writes) are ignored silently. A broken or missing test_probs.npy
    leaves test_probs None (the run then has no test metrics) without dropping the candidate.
    """
    root = os.path.join(os.fspath(run_dir), CANDIDATES_DIR)
    if n_val is None:
        y = load_labels(run_dir, "val")
        n_val = None if y is None else len(y)
    if n_test is None:
        y = load_labels(run_dir, "test")
        n_test = None if y is None else len(y)
    if not os.path.isdir(root):
        return [], []
    loaded, skipped = [], []
    for name in sorted(os.listdir(root), key=_natural_key):
        folder = os.path.join(root, name)
        if fileio.is_temp(name) or not os.path.isdir(folder):
            continue
        trial_path = os.path.join(folder, TRIAL_FILE)
        if not os.path.exists(trial_path):
            skipped.append((name, "no trial.json yet (still training, or interrupted)"))
            continue
        try:
            record = fileio.read_json(trial_path)
        except (OSError, ValueError) as e:
            skipped.append((name, f"trial.json unreadable ({e})"))
            continue
        if not isinstance(record, dict):
            skipped.append((name, "trial.json is not a JSON object"))
            continue
        trial = str(record.get("trial", name))
        if record.get("status") != "ok":
            why = record.get("reason") or "no reason recorded"
            skipped.append((trial, f"status {record.get('status')!r}: {why}"))
            continue
        val, why = _load_probs(os.path.join(folder, VAL_PROBS_FILE), n_val, VAL_PROBS_FILE)
        if val is None:
            skipped.append((trial, why))
            continue
        test = None
        if record.get("has_test", True):
            test, _ = _load_probs(os.path.join(folder, TEST_PROBS_FILE), n_test,
                                  TEST_PROBS_FILE)
        try:
            seed = int(record.get("seed") or 0)
        except (TypeError, ValueError):
            seed = 0
        loaded.append(Candidate(trial=trial, module=str(record.get("module", "")),
                                handle=str(record.get("handle", "")),
                                hparams=dict(record.get("hparams") or {}), seed=seed,
                                val_probs=val, test_probs=test, record=record, path=folder))
    # Candidates must share one class count: keep the most common (first seen on ties).
    if loaded:
        n_classes = Counter(c.val_probs.shape[1] for c in loaded).most_common(1)[0][0]
        kept = []
        for c in loaded:
            if c.val_probs.shape[1] != n_classes:
                skipped.append((c.trial, f"{VAL_PROBS_FILE} has {c.val_probs.shape[1]} classes, "
                                         f"the other candidates {n_classes}"))
                continue
            if c.test_probs is not None and c.test_probs.shape[1] != n_classes:
                c.test_probs = None
            kept.append(c)
        loaded = kept
    skipped.sort(key=lambda s: _natural_key(s[0]))
    return loaded, skipped


def _best_single(cands, y, objective):
    nlls = [nll(c.val_probs, y) for c in cands]
    if objective == "ce":
        return int(np.argmin(nlls))
    accs = [accuracy(c.val_probs, y) for c in cands]
    # Accuracy ties are common on 200 examples: break them by cross-entropy, then index.
    return min(range(len(cands)), key=lambda i: (-accs[i], nlls[i], i))


def run_ensemble(run_dir, *, objective="ce", budget=15, with_replacement=False, bootstrap=None,
                 seed=0):
    """Select the ensemble of RUN/candidates on validation and write RUN/ensemble.json.

    Reads RUN/labels/val.npy (and test.npy when present), runs greedy_select and writes
    {"objective", "members": [{"trial", "module", "hparams", "weight", ...}], "val_curve",
    "test": {"ensemble": {accuracy, nll, ece}, "best_single": {trial, accuracy, nll, ece}},
    ...}; "test" only when labels and every member's test probabilities exist. best_single
    is the candidate with the best validation objective. Returns the written dict.
    """
    run_dir = os.fspath(run_dir)
    y_val = load_labels(run_dir, "val")
    if y_val is None:
        raise RunError(f"{_label_file(run_dir, 'val')} is missing: run `hubensemble tune` on "
                       f"{run_dir} first (it writes the validation labels and the candidates)")
    y_test = load_labels(run_dir, "test")
    cands, skipped = load_candidates(run_dir, n_val=len(y_val),
                                     n_test=None if y_test is None else len(y_test))
    if not cands:
        detail = "; ".join(f"{t}: {r}" for t, r in skipped[:5]) or "the folder is empty"
        raise RunError(f"no usable candidates in {os.path.join(run_dir, CANDIDATES_DIR)} "
                       f"({detail}); run `hubensemble tune` on {run_dir} first")
    n_classes = cands[0].val_probs.shape[1]
    if y_val.min() < 0 or y_val.max() >= n_classes:
        raise RunError(f"validation labels span [{y_val.min()}, {y_val.max()}] but the "
                       f"candidates predict {n_classes} classes; the labels and candidates "
                       f"come from different tasks: re-run `hubensemble tune` on {run_dir}")
    val = np.stack([c.val_probs for c in cands])
    sel = greedy_select(val, y_val, objective=objective, budget=budget,
                        with_replacement=with_replacement, bootstrap=bootstrap, seed=seed)
    picks = Counter(sel.indices[:sel.size])
    members = [{"trial": cands[i].trial, "module": cands[i].module,
                "hparams": cands[i].hparams, "weight": w, "handle": cands[i].handle,
                "seed": cands[i].seed, "picks": picks[i],
                "path": os.path.relpath(cands[i].path, run_dir)}
               for i, w in sel.weights.items()]
    best = _best_single(cands, y_val, objective)
    out = {
        "objective": objective,
        "members": members,
        "val_curve": sel.curve,
        "budget": int(budget),
        "with_replacement": bool(with_replacement),
        "bootstrap": bootstrap,
        "seed": int(seed),
        "size": sel.size,
        "picks": [cands[i].trial for i in sel.indices],
        "n_candidates": len(cands),
        "val": {"ensemble": metrics(ensemble_probs(val, sel.weights), y_val),
                "best_single": {"trial": cands[best].trial,
                                **metrics(cands[best].val_probs, y_val)}},
        "skipped": [{"trial": t, "reason": r} for t, r in skipped],
    }
    have_test = y_test is not None and all(cands[i].test_probs is not None for i in sel.weights)
    if have_test:
        ids = list(sel.weights)
        test = np.stack([cands[i].test_probs for i in ids])
        ens = ensemble_probs(test, {j: sel.weights[i] for j, i in enumerate(ids)})
        single = cands[best].test_probs
        out["test"] = {
            "ensemble": metrics(ens, y_test),
            "best_single": None if single is None else {"trial": cands[best].trial,
                                                        **metrics(single, y_test)},
        }
    else:
        out["test_missing"] = ("no RUN/labels/test.npy" if y_test is None
                               else "some members have no test probabilities")
    fileio.atomic_write_json(os.path.join(run_dir, ENSEMBLE_FILE), out)
    return out


def read_ensemble(run_dir):
    """RUN/ensemble.json as a dict; RunError naming the command when it does not exist."""
    path = os.path.join(os.fspath(run_dir), ENSEMBLE_FILE)
    if not os.path.exists(path):
        raise RunError(f"{path} is missing: run `hubensemble ensemble` on {run_dir} first")
    try:
        return fileio.read_json(path)
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is unreadable ({e}); re-run `hubensemble ensemble`")


def format_ensemble(result):
    """A short text summary of an ensemble.json dict, for the terminal."""
    lines = [f"ensemble of {result['size']} (objective {result['objective']}, "
             f"{result['n_candidates']} candidates):"]
    for m in result["members"]:
        lines.append(f"  {m['weight']:.3f}  {m['trial']}")
    v = result["val"]
    lines.append(f"validation: ensemble ce {v['ensemble']['nll']:.4f} acc "
                 f"{v['ensemble']['accuracy']:.4f} | best single ({v['best_single']['trial']}) "
                 f"ce {v['best_single']['nll']:.4f} acc {v['best_single']['accuracy']:.4f}")
    test = result.get("test")
    if test and test.get("best_single"):
        e, b = test["ensemble"], test["best_single"]
        lines.append(f"test:       ensemble acc {e['accuracy']:.4f} nll {e['nll']:.4f} ece "
                     f"{e['ece']:.4f} | best single acc {b['accuracy']:.4f} nll "
                     f"{b['nll']:.4f} ece {b['ece']:.4f}")
    for s in result.get("skipped", []):
        lines.append(f"  skipped {s['trial']}: {s['reason']}")
    return "\n".join(lines)
