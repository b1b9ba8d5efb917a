"""Training labels to check: images whose given label every ranked module's leave-one-out kNN
prediction disagrees with (RUN/knn.npz, which rank keeps anyway), for the report and fit's
closing table. No TensorFlow.

Small hand-labelled sets hold mislabelled images (Northcutt et al., 2021, "Pervasive label
errors in test sets": about 3.4 % over 10 benchmarks). An image whose neighbours in every
module's embedding carry another label is either mislabelled or hard; the list says which
label the modules suggest, so a person can look. Measured with the demo zoo's 16 modules,
5 % / 10 % of the training labels flipped to a random other class
(`tools/benchmarks/bench_labelcheck.py`; share of the images every module contradicts that
were flips, share of the flips among them): signdigits10 0.62 / 0.69 and 0.78 / 0.80, gtsrb10
0.51 / 0.61 and 0.80 / 0.88. Where the modules are weak they are mostly the modules' own
errors: dsprites_orient10 0.24 / 0.35 (148 and 170 images, 19-21 % of the set; 106 on the
clean labels, which are exact), pbc_bloodcells8 0.12 / 0.24 (best leave-one-out kNN accuracy
0.30): so nothing is listed below MIN_PROXY_SCORE or above MAX_SHARE, which leaves the 5 %
lists of signdigits10 and gtsrb10 and the clean ones (19 and 22 images)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: Fewest ranked modules whose votes make a list: one or two modules' kNN errors are too
#: often the same image's hard case, not its label.
MIN_MODULES = 3
#: Lowest best leave-one-out kNN accuracy (the ranking's best score) at which images are
#: listed: below it the modules' own errors outnumber label errors (pbc_bloodcells8 at 0.30
#: to 0.32: 12-24 % of the listed images were flips; signdigits10 at 0.63 to 0.78: 62-69 %).
MIN_PROXY_SCORE = 0.6
#: Largest share of the training images listed: beyond it the modules contradict more labels
#: than the label errors of a hand-labelled set explain (about 3 %, Northcutt et al.), so
#: most would be their own errors. Contradicted on the clean labels: signdigits10 2.4 %,
#: gtsrb10 2.8 %, dsprites_orient10 13 % (exact labels), pbc_bloodcells8 18 %; with 5 %
#: flipped 6 %, 8 %, 19 %, 19 %; with 10 % flipped 12 %, 14 %, 21 %, 20 % (precision 0.69,
#: 0.61, 0.35, 0.24: a 10 % noisy set gets no list, a false alarm on exact labels none either).
MAX_SHARE = 0.10
#: Images the report lists (the worst first); the count says how many more there are.
SHOWN = 20


@dataclasses.dataclass(frozen=True)
class Suspect:
    """One training image whose label to check: `index` into the training split (int),
    `given` and `suggested` labels (int class indexes), `votes` of the `modules` ranked
    modules that predicted `suggested` (every module predicted another label than `given`)."""

    index: int
    given: int
    suggested: int
    votes: int
    modules: int

    @property
    def score(self) -> float:
        """The share of the modules that agree on the suggested label, in (0, 1]."""
        return self.votes / self.modules


def suspect_labels(predictions, labels) -> list[Suspect]:
    """The training images every module's leave-one-out prediction disagrees with.

    `predictions`: int [M, N], row m the leave-one-out kNN predictions of module m for the N
    training images (RUN/knn.npz's "predictions"); `labels`: int [N], the given labels, in
    [0, C). Returns a Suspect per image i with predictions[m, i] != labels[i] for every m,
    its `suggested` label the one most modules predicted (a tie goes to the smaller label,
    as the kNN vote's), sorted by `votes` (most first), then index. ValueError when the
    shapes do not match or M < 1."""
    p = np.asarray(predictions, np.int64)
    y = np.asarray(labels, np.int64)
    if p.ndim != 2 or p.shape[0] < 1 or y.ndim != 1 or p.shape[1] != y.shape[0]:
        raise ValueError(f"predictions of shape {p.shape} do not match labels of shape "
                         f"{y.shape}: expected [M >= 1, N] and [N]")
    flagged = np.flatnonzero((p != y[None, :]).all(axis=0))
    if not len(flagged):
        return []
    classes = int(max(p.max(), y.max())) + 1
    counts = np.zeros((len(flagged), classes), np.int64)
    for row in p[:, flagged]:
        counts[np.arange(len(flagged)), row] += 1
    suggested = counts.argmax(axis=1)
    votes = counts[np.arange(len(flagged)), suggested]
    order = np.lexsort((flagged, -votes))
    return [Suspect(int(flagged[j]), int(y[flagged[j]]), int(suggested[j]), int(votes[j]),
                    int(p.shape[0])) for j in order]


@dataclasses.dataclass(frozen=True)
class LabelCheck:
    """What a run's ranking says about its training labels: `suspects` (empty when none, or
    when `skipped` says why none were looked for), the `modules` that voted and the best
    one's leave-one-out kNN accuracy `best_score`."""

    suspects: list
    modules: int = 0
    best_score: float | None = None
    skipped: str | None = None


def check_ranking(ranking, predictions: dict, labels) -> LabelCheck:
    """The LabelCheck of a ranking (`rank.Ranking`: its metric and ok rows, best first),
    its kNN predictions ({module name: int [N]}, `rank.load_knn_predictions`) and the
    training labels int [N]. `skipped` (and no suspects) when the metric is not a kNN one,
    fewer than MIN_MODULES modules have predictions of N images, the best score is below
    MIN_PROXY_SCORE, or more than MAX_SHARE of the images would be listed (the reason in
    words, for the report)."""
    if not str(ranking.metric).startswith("knn"):
        return LabelCheck([], skipped=f"the ranking's metric is {ranking.metric}, and only "
                          "the kNN metrics predict each training image's label")
    y = np.asarray(labels)
    rows = [r for r in ranking.ok_rows
            if r["name"] in predictions and len(predictions[r["name"]]) == len(y)]
    if not rows and ranking.ok_rows:
        return LabelCheck([], skipped="knn.npz holds no leave-one-out predictions of the "
                          f"{len(y)} training images (rank again writes it)")
    if len(rows) < MIN_MODULES:
        return LabelCheck([], modules=len(rows), skipped=(
            f"{len(rows)} ranked module(s) predict the training labels; at least "
            f"{MIN_MODULES} are needed, so that one module's errors are not taken for "
            "wrong labels"))
    best = max(float(r.get("score") or 0.0) for r in rows)
    if best < MIN_PROXY_SCORE:
        return LabelCheck([], modules=len(rows), best_score=best, skipped=(
            f"the best module's leave-one-out kNN accuracy is {best:.4f}, below "
            f"{MIN_PROXY_SCORE}: the modules' own errors would outnumber wrong labels"))
    suspects = suspect_labels(np.stack([predictions[r["name"]] for r in rows]), y)
    if len(suspects) > MAX_SHARE * len(y):
        return LabelCheck([], modules=len(rows), best_score=best, skipped=(
            f"every module's kNN prediction contradicts the label of {len(suspects)} of the "
            f"{len(y)} training images, more than {MAX_SHARE:.0%}: more than the label errors "
            "of a hand-labelled set explain, so most would be the modules' own errors"))
    return LabelCheck(suspects, modules=len(rows), best_score=best)


def run_label_check(run_dir, ranking=None) -> LabelCheck:
    """`check_ranking` of a run folder: its ranking.json (or `ranking`), RUN/knn.npz and
    RUN/labels/train.npy. RunError (naming the file and what rewrites it) when one of them
    is unreadable; `skipped` says so when the labels file is missing."""
    from hubensemble import ensemble as ens
    from hubensemble.rank.knnfile import load_knn_predictions
    from hubensemble.rank.ranking import load_ranking

    ranking = ranking if ranking is not None else load_ranking(run_dir)
    labels = ens.load_labels(run_dir, "train")
    if labels is None:
        return LabelCheck([], skipped=f"{Path(run_dir) / 'labels' / 'train.npy'} is missing "
                          "(rank or tune writes it again from the run's data)")
    names = [r["name"] for r in ranking.ok_rows]
    return check_ranking(ranking, load_knn_predictions(run_dir, names), labels)
