"""Classification metrics of probability tables: accuracy, cross-entropy (NLL), ECE, and the
at-chance test (`at_chance`).

The one definition of each, with one probability floor, for every stage: a trial's
validation cross-entropy in trial.json, the greedy selection in ensemble.json, the
evaluation of an export and the report all compute the same number from the same table.
NumPy (and SciPy for `at_chance`'s binomial test); no TensorFlow.
"""

from __future__ import annotations

import numpy as np

#: Probabilities below this count as this in the cross-entropy, so one 0 cannot make it
#: infinite. Keras' epsilon (``keras.config.epsilon()``), which its cross-entropy loss clips
#: at: a trial's recorded validation CE is the loss Keras would report on those
#: probabilities. A probability table is float32; 1e-7 is far above float32's smallest
#: normal number, so the floor, not rounding, decides what a near-zero probability costs.
PROB_FLOOR = 1e-7
#: Equal-width confidence bins of the expected calibration error (Guo et al., 2017 use 15).
ECE_BINS = 15


def check_probs_labels(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """(probs as float64 [N, C], labels as int64 [N]); ValueError naming the shapes when
    they do not fit or a label is outside [0, C)."""
    probs, labels = _table(probs, labels)
    return probs.astype(np.float64, copy=False), labels


def _table(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """`check_probs_labels` with the probabilities kept in their floating dtype (float16,
    float32 or float64; any other as float64): the metrics reduce a table (argmax, row max,
    the true class's column) before they widen what is left to float64, which gives the
    same numbers (a float16 or float32 value is exact in float64) without a float64 copy of
    the table (16 MB for 2,000 images of 1,000 classes, per candidate and metric)."""
    probs = np.asarray(probs)
    if not np.issubdtype(probs.dtype, np.floating):
        probs = probs.astype(np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ValueError(f"expected probs [N, C] and labels [N], got {probs.shape} and "
                         f"{labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be in [0, {probs.shape[1]}), got "
                         f"[{labels.min()}, {labels.max()}]")
    return probs, labels


#: How far a row's sum may be from 1, and a value below 0, for a table to read as
#: probabilities (`probability_fault`): float32 softmax rows of up to ~10^5 classes sum to 1
#: within ~1e-4; the rule a module's output is read by (hub.outputs.PROBABILITY_TOLERANCE).
PROB_SUM_TOLERANCE = 1e-3


def probability_fault(probs) -> tuple[int, str] | None:
    """(the first row at fault, what is wrong, in words) when `probs` (float [N, C], C >= 1)
    is not a table of probabilities, else None: a value that is not finite (NaN or inf), a
    value below -PROB_SUM_TOLERANCE, or a row whose sum is more than PROB_SUM_TOLERANCE from
    1 (logits, or scores of another kind). Exact zeros, ties and a single class are
    probabilities. The metrics score such a table without a word: a NaN row's argmax is
    class 0, right for that class's examples, and a logit above 1 lands in the ECE's last
    bin, so both are checked before a model's output is scored (`evaluate`)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or not probs.size:
        return None
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        return row, (f"{int(bad.sum())} of {len(probs)} rows hold a value that is not "
                     "finite (NaN or inf)")
    low = probs.min(axis=1) < -PROB_SUM_TOLERANCE
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if low.any() or off.any():
        row = int(np.argmax(low | off))
        return row, (f"{int((low | off).sum())} of {len(probs)} rows are not values >= 0 "
                     f"that sum to 1 (row sums {sums.min():.4g} to {sums.max():.4g}, smallest "
                     f"value {probs.min():.4g})")
    return None


def accuracy(probs, labels) -> float:
    """Top-1 accuracy in [0, 1] of probabilities [N, C] against labels [N] (argmax; equal
    probabilities go to the lower class index); NaN for no labels (N = 0)."""
    probs, labels = _table(probs, labels)
    if not labels.size:
        return float("nan")
    return float(np.mean(probs.argmax(axis=1) == labels))


def balanced_accuracy(probs, labels) -> float:
    """Balanced (macro-averaged) accuracy in [0, 1] of probabilities [N, C] against labels
    [N]: the mean over the classes present in `labels` of the share of each class's examples
    predicted as that class (its recall; argmax, ties as `accuracy`), each class counted once
    whatever its size. scikit-learn's ``balanced_accuracy_score(labels, argmax)``. A class no
    label holds is left out (it has no examples to be right on); NaN for no labels."""
    probs, labels = _table(probs, labels)
    if not labels.size:
        return float("nan")
    right = np.bincount(labels, weights=probs.argmax(axis=1) == labels,
                        minlength=probs.shape[1])
    counts = np.bincount(labels, minlength=probs.shape[1])
    present = counts > 0
    return float(np.mean(right[present] / counts[present]))


def nll(probs, labels) -> float:
    """Mean cross-entropy (negative log-likelihood, nats) -log max(p(true class), PROB_FLOOR)
    over N examples; in [0, -log PROB_FLOOR = 16.12]; NaN for no labels (N = 0)."""
    probs, labels = _table(probs, labels)
    if not labels.size:
        return float("nan")
    p = probs[np.arange(len(labels)), labels].astype(np.float64)
    return float(np.mean(-np.log(np.maximum(p, PROB_FLOOR))))


#: "ce" in trial.json and ensemble.json is this number: the same function, another name.
cross_entropy = nll


def confidence_bins(probs, labels, bins: int = ECE_BINS
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, correct, confidence) per equal-width confidence bin, each float64 [bins]: how
    many of the N examples' top-label confidences (the row's largest probability) fall in
    the bin, how many of those the argmax gets right, and the sum of their confidences.

    Bin b holds confidences in (b/bins, (b+1)/bins] (a confidence of 0 joins the first), as
    Guo et al. (2017, section 2) define the bins of the ECE and the reliability diagram,
    and as scikit-learn's ``calibration_curve(strategy="uniform")`` places a value on an
    edge. The one binning of `ece` and the report's reliability diagrams. Raises ValueError
    for `bins` that is not an integer >= 1, or as `check_probs_labels`."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    probs, labels = _table(probs, labels)
    bins = int(bins)
    conf = probs.max(axis=1).astype(np.float64) if probs.shape[1] else np.zeros(len(labels))
    correct = (probs.argmax(axis=1) == labels).astype(np.float64) if probs.shape[1] \
        else np.zeros(len(labels))
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    return (np.bincount(which, minlength=bins).astype(np.float64),
            np.bincount(which, weights=correct, minlength=bins),
            np.bincount(which, weights=conf, minlength=bins))


def ece(probs, labels, bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error in [0, 1] with `bins` equal-width bins
    (`confidence_bins`): ECE = sum_b n_b / N * |accuracy_b - mean confidence_b| (Guo et al.,
    2017, eq. 3); an empty bin adds nothing. NaN for no labels (N = 0). Raises ValueError as
    `confidence_bins`."""
    count, correct, conf = confidence_bins(probs, labels, bins)
    if not count.sum():
        return float("nan")
    # |sum(correct) - sum(conf)| / N per bin equals n_b / N * |acc_b - conf_b|.
    return float(np.abs(correct - conf).sum() / count.sum())


def metrics(probs, labels, bins: int = ECE_BINS, *, balanced: bool = False
            ) -> dict[str, float]:
    """{"accuracy", "nll", "ece"} of probabilities [N, C] against labels [N], with
    "balanced_accuracy" (`balanced_accuracy`) when `balanced`: the callers ask for it when
    the split's classes are unbalanced (`data.coverage.unbalanced`), so ensemble.json's
    test record and evaluate's entries hold it alike."""
    found = {"accuracy": accuracy(probs, labels), "nll": nll(probs, labels),
             "ece": ece(probs, labels, bins)}
    if balanced:
        found["balanced_accuracy"] = balanced_accuracy(probs, labels)
    return found


def val_record(probs, labels) -> dict[str, float]:
    """{"ce", "accuracy"}: what a candidate's trial.json records for a split."""
    return {"ce": nll(probs, labels), "accuracy": accuracy(probs, labels)}


#: Predictions whose accuracy is not above the majority class's rate at this level (one-sided
#: binomial test) and whose cross-entropy is not below CHANCE_CE_FRACTION x the entropy of
#: the labels' class frequencies are at chance (`at_chance`).
CHANCE_ALPHA = 0.01
CHANCE_CE_FRACTION = 0.98


def at_chance(probs, labels, num_classes: int) -> str | None:
    """Why the predictions `probs` (float [N, C]) of `labels` (int [N] in [0, C)) are at
    chance, in words, or None when they are not.

    At chance means no better than the best constant prediction on both counts: the accuracy
    is not above the majority class's rate p0 at level CHANCE_ALPHA (one-sided binomial test:
    P(X >= correct | N, p0) > alpha), and the cross-entropy is not below CHANCE_CE_FRACTION x
    H, the entropy of the labels' class frequencies (the cross-entropy of predicting those
    frequencies for every image; ln C when the classes are balanced, as for a zero head's
    uniform prediction). A collapsed or diverged model ends above it; so does one that
    learned only the class frequencies, which on imbalanced classes ends below ln C. Both
    must hold, so on a tiny split, where no accuracy is significant, a model is at chance only
    when its cross-entropy is no better than a constant's too; one that learned a little but
    is overconfident can be (7 of 12 right on 4 balanced classes: p = 0.014, with a
    cross-entropy above ln 4). Labels of one class (H = 0) cannot tell: None. Used for a trial
    (hubensemble.tune.train.chance_reason) and for the ensemble (hubensemble.ensemble).
    """
    from scipy.stats import binom

    probs = np.asarray(probs)
    labels = np.asarray(labels).astype(np.int64)
    n = len(labels)
    if n == 0:
        return None
    freq = np.bincount(labels, minlength=num_classes) / n
    entropy = float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum())
    if entropy <= 0.0:
        return None
    correct = int((probs.argmax(axis=1) == labels).sum())
    p0 = float(freq.max())
    p_value = float(binom.sf(correct - 1, n, p0))
    # The table as float32, as a trial records its CE; only the true class's column is cast.
    ce = nll(probs[np.arange(n), labels][:, None].astype(np.float32), np.zeros(n, np.int64))
    if p_value > CHANCE_ALPHA and ce >= CHANCE_CE_FRACTION * entropy:
        return (f"accuracy {correct / n:.3f} is not significantly above the majority class's "
                f"{p0:.3f} (one-sided binomial p = {p_value:.2g} > {CHANCE_ALPHA:g} on {n} "
                f"images) and cross-entropy {ce:.3f} is "
                f"not below {CHANCE_CE_FRACTION * entropy:.3f} ({CHANCE_CE_FRACTION:g} x "
                f"{entropy:.3f}, that of predicting the class frequencies)")
    return None
