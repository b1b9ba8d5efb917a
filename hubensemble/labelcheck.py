"""Training labels to check: images whose given label none of their nearest training images
carries, in any of the best ranked modules' embeddings (RUN/knn.npz, written by rank), for the
report and fit's closing table. No TensorFlow.

Small hand-labelled sets hold mislabelled images (Northcutt et al., 2021, "Pervasive label
errors in test sets": about 3.4 % over 10 benchmarks). An image whose neighbours in the
modules' embeddings carry another label is either mislabelled or hard; the list says which
label they suggest, so a person can look.

The rule (`neighbour_suspects`): the given label's share among each image's NEIGHBOURS = 10
leave-one-out nearest neighbours, averaged over the TOP_MODULES = 5 best ranked modules (a
kNN estimate of p(given label | image), out of sample as confident learning asks); listed
when it is 0 (none of the 50 carries it), the suggested label the one of the largest share.
Measured with the demo zoo's 16 modules, 5 % / 10 % of the training labels flipped to a
random other class, seed 223 (`tools/benchmarks/bench_labelcheck.py`; images listed,
precision = share of them that were flips, recall = share of the flips listed): digits 31
(1.00, 0.78) / 61 (0.98, 0.75), signdigits10 24 (0.96, 0.57) / 42 (1.00, 0.53), gtsrb10 22
(0.95, 0.53) / 39 (0.97, 0.47); on the clean labels 1, 1 and 1 image. The rule before it
(every module's 1-NN prediction contradicts the label, `suspect_labels`, still used for a
knn.npz written before rank kept neighbours) listed 42 (0.81) / 78 (0.88), 50 (0.62) / 93
(0.69), 63 (0.51) / 114 (0.61), and 6, 19 and 22 clean ones; the new score ranks flips first
better at equal length too (its first 40 of 800: 0.93 / 0.97, 0.75 / 1.00, 0.65 / 0.97).
Confident learning's per-class thresholds (a label is off when another class's share reaches
that class's mean self-confidence, Northcutt et al., 2021, JAIR) on the same shares listed
70-123 images at precision 0.34-0.56 and 28-38 clean ones: kNN shares are coarse and weak
modules' self-confidence low, so a fixed rule is kept. Where the classes look alike the
neighbours of an unflipped image split among them: dsprites_orient10 (best accuracy 0.70
clean, 0.63 / 0.59 flipped; the given label's mean share of the neighbours 0.43, below
MIN_GIVEN_SHARE) listed 22 of its exact labels and 39 (precision 0.38) at 5 %; asking there
for a MAJORITY on one other label lists 0 and 11 (1.00, recall 0.28 against 0.38), and
changes no other set's list. The same majority everywhere would have cost recall where the
classes are apart (signdigits10 0.57 / 0.53 to 0.45 / 0.36, gtsrb10 0.53 / 0.47 to 0.40 /
0.34), and so would a share of 0.3 or 0.4 (which left 10 and 4 of dsprites' 22).
pbc_bloodcells8 (0.30-0.32) is under MIN_PROXY_SCORE.

Validation labels (`check_validation`, since 2026-12-06): the validation split decides every
choice after rank (the ensemble's members and size by validation cross-entropy, the chance
check, an LP-FT head's probe), and one wrong label among 200 moves a confident candidate's
validation cross-entropy by about 0.035 (digits: the best voter's 0.022 clean, 0.376 with 10
flipped). Rank embeds the training images alone (knn.npz holds no validation image), so
neighbours would cost an embedding pass per module; the candidates' own validation
probabilities (candidates/*/val_probs.npy, which tune writes and the ensemble reads) cost
nothing more and are out of sample: their weights saw the training images alone. The rule:
of each module its candidate of the lowest validation cross-entropy, none at chance, and of
those the TOP_MODULES best (`validation_voters`); an image is listed when each gives its
given label below LOW_PROBABILITY and more than half predict one same other label
(`probability_suspects`). Measured with `bench_labelcheck.py --runs` (probe sweeps of the
demo zoo's 8 best ranked modules, profile cpu; validation labels flipped after the sweep,
seed 223; clean, 5 %, 10 %; listed (precision, recall)): digits (voters' accuracy 0.99) 0, 7
(1.00, 0.70), 16 (1.00, 0.80); signdigits10 (0.86-0.90) 3, 8 (0.75, 0.60), 12 (0.83, 0.50);
gtsrb10 (0.76-0.79) 0, 5 (1.00, 0.50), 12 (1.00, 0.60); the demo's fine-tuned pool on digits
(4 modules x 4 trials, 0.96-0.98) 0, 6 (1.00, 0.60), 16 (1.00, 0.80). On the probe sweeps
0.05 listed 73 of the 90 flips against 56, but 24 false images against 7 (gtsrb10's clean
labels 6: its validation images are other physical signs than its training ones); 0.1 / 0.2
more (gtsrb10 at 5 %: precision 0.32 / 0.27). The majority took one false image off gtsrb10's
lists, one flip off the fine-tuned pool's (3 of its 4 voters must agree), and changed no
other. signdigits10's 3 are listed at every rate: one (val[165], given 3) shows two raised
fingers as its 2s do."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hubensemble import formats
from hubensemble.csvcells import csv_text
from hubensemble.errors import checks_keywords
from hubensemble.fileio import atomic_write_text
from hubensemble.knnchance import at_knn_chance, knn_chance
from hubensemble.text import counted

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
#: Those are the 1-NN rule's; the neighbours' rule lists 0.1-7.6 % of these sets (at most
#: digits with 10 % flipped: 61 of 800, 60 of them flips), so the gate only binds where a
#: set is noisier than these.
MAX_SHARE = 0.10
#: Images the report lists (the worst first); the count says how many more there are.
SHOWN = 20
#: The best ranked modules whose neighbours vote (fewer when fewer have neighbours). On
#: signdigits10 and gtsrb10 (bench_labelcheck.py and a /tmp variant, 5 % / 10 % flipped) the
#: first 5 % by their shares were flips at 0.75 / 1.00 and 0.65 / 0.97; with 3 modules 0.70 /
#: 0.88 and 0.68 / 0.95, with all 16 0.78 / 1.00 and 0.72 / 0.93; but no neighbour of all 16
#: agreeing lists fewer flips (20 / 27 and 15 / 31 against 5 modules' 24 / 42 and 22 / 39,
#: at about the same precision): a weak module's neighbours carry a wrong label by chance.
TOP_MODULES = 5
#: Lowest mean share of the given label among the images' neighbours (over every image and
#: the TOP_MODULES modules' NEIGHBOURS each) at which an image is listed on none of its
#: neighbours carrying its label alone; below it the classes' neighbourhoods are mixed, and
#: an image is listed only when one other label holds at least MAJORITY of its neighbours.
#: Measured (bench_labelcheck.py, the demo zoo; clean / 5 % / 10 % flipped): digits 0.937 /
#: 0.837 / 0.748, signdigits10 0.644 / 0.581 / 0.529, gtsrb10 0.609 / 0.555 / 0.491 - their
#: lists unchanged - against
#: dsprites_orient10 0.431 / 0.388 / 0.353, whose exact labels listed 22 images. Its sprites
#: are hearts only (SOURCES.md of the shared data), 8-20 px across (14 median), whose outline
#: is close to a rounded triangle that a turn of 120° leaves nearly alike: 55 % of the wrong
#: labels among its images' neighbours are of a class 3, 6 or 9 steps of 36° from the
#: image's (108°, 216°, 324°), against 27 % by chance; its 22 clean-label images had the
#: votes split among look-alike classes (ambiguity, not noise).
MIN_GIVEN_SHARE = 0.45
#: The share of an image's neighbours one other label must hold where the neighbourhoods are
#: mixed (a majority: the kNN estimate of that label's probability at least that of all the
#: others together). An image between look-alike classes has its neighbours split among them
#: (dsprites_orient10's 22: at most 23 of 50 agree); a flipped one lies inside its true class
#: (with 5 % flipped 11 of the 15 flips listed had a majority, and no clean image did).
MAJORITY = 0.5
#: Fewest training images a class needs for its images' labels to be checked: the one image
#: of a class of one has no other image of its label to be near, so none of its neighbours
#: can carry it and it would always be listed (a new user's --min-per-class 1 folder).
MIN_CLASS_IMAGES = 2
#: Largest share of one class's training images listed; a class whose images would be listed
#: beyond it has none listed (`class_limited`): the modules do not separate that class, which
#: is what a rare class looks like to a kNN vote (a 95/5 binary folder: 3 of its 12
#: rare-class images, 25 %, all correct, were listed). Confident learning sets its thresholds
#: per class for the same reason (a class's own mean self-confidence, Northcutt et al., 2021,
#: JAIR), and cleanlab's `filter.find_label_issues` keeps at least `min_examples_per_class`
#: of each class unflagged so that a rare class is not pruned away (its FAQ: extremely rare
#: classes are to be left out of the check). Twice the set-wide MAX_SHARE, as one class's
#: share varies more than the set's: measured per class (bench_labelcheck.py's data,
#: signdigits10 and gtsrb10, 74-90 images a class, seed 223; clean / 5 % / 10 % flipped) the
#: neighbours' rule's largest share of one class was 0.012 / 0.072 / 0.119 and 0.012 / 0.056
#: / 0.077, the 1-NN rule's 0.075 / 0.104 / (gated) and 0.075 / 0.138 / (gated): 0.1 left out
#: whole classes of those (signdigits10 at 10 %: recall 0.54 to 0.42; gtsrb10's 1-NN at 5 %:
#: 0.75 to 0.33), 0.2 changes none of their lists. A class of fewer than 5 images has none
#: listed so.
MAX_CLASS_SHARE = 2 * MAX_SHARE


@dataclasses.dataclass(frozen=True)
class Suspect:
    """One training image whose label to check: `index` into the training split (int),
    `given` and `suggested` labels (int class indexes), `votes` of the `modules` x
    `neighbours` votes (each module's nearest `neighbours` training images; 1: its 1-NN
    prediction) that carry `suggested` (none carries `given`)."""

    index: int
    given: int
    suggested: int
    votes: int
    modules: int
    neighbours: int = 1

    @property
    def score(self) -> float:
        """The share of the votes that agree on the suggested label, in (0, 1]."""
        return self.votes / (self.modules * self.neighbours)


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


def neighbour_suspects(neighbours, labels) -> list[Suspect]:
    """The training images none of whose nearest neighbours carries its given label.

    `neighbours`: int [M, N, K], row [m, i] the K leave-one-out nearest training images of
    image i in module m's embedding (RUN/knn.npz's "neighbours", best modules first: pass
    the TOP_MODULES best); `labels`: int [N], the given labels, in [0, C). The share of
    image i's M x K neighbours labelled c estimates p(c | image i) (out of sample: i is not
    its own neighbour); image i is a Suspect when the share of labels[i] is 0, `suggested`
    the label of the largest share (a tie goes to the smaller label) and `votes` how many
    carry it. Sorted by votes (most first), then index. ValueError when the shapes do not
    match, M < 1 or K < 1."""
    near = np.asarray(neighbours, np.int64)
    y = np.asarray(labels, np.int64)
    if (near.ndim != 3 or 0 in near.shape[::2] or y.ndim != 1 or near.shape[1] != len(y)
            or (near.size and not 0 <= near.min() <= near.max() < len(y))):
        raise ValueError(f"neighbours of shape {near.shape} do not match labels of shape "
                         f"{y.shape}: expected [M >= 1, N, K >= 1] indexes into [N]")
    votes = y[near]  # [M, N, K]: the neighbours' labels
    flagged = np.flatnonzero((votes != y[None, :, None]).all(axis=(0, 2)))
    if not len(flagged):
        return []
    classes = int(y.max()) + 1
    counts = np.zeros((len(flagged), classes), np.int64)
    rows = np.repeat(np.arange(len(flagged)), near.shape[0] * near.shape[2])
    np.add.at(counts, (rows, votes[:, flagged].transpose(1, 0, 2).ravel()), 1)
    suggested = counts.argmax(axis=1)
    top = counts[np.arange(len(flagged)), suggested]
    order = np.lexsort((flagged, -top))
    return [Suspect(int(flagged[j]), int(y[flagged[j]]), int(suggested[j]), int(top[j]),
                    int(near.shape[0]), int(near.shape[2])) for j in order]


@dataclasses.dataclass(frozen=True)
class LabelCheck:
    """What a run's ranking says about its training labels: `suspects` (empty when none, or
    when `skipped` says why none were looked for), the `modules` that voted and the best
    one's leave-one-out kNN accuracy `best_score`; `neighbours` how many nearest neighbours
    of each image per module voted (0: the 1-NN rule of a knn.npz without neighbours);
    `given_share` the mean share of the given label among the images' neighbours (float in
    [0, 1]; None for the 1-NN rule) and, when it is below MIN_GIVEN_SHARE, `split` how many
    images none of whose neighbours carries the label were left out for want of a MAJORITY
    on one other label; `lone` how many were left out as their class's only image and
    `crowded` ((class, suspects, images), …) the classes left out whole (`class_limited`)."""

    suspects: list
    modules: int = 0
    best_score: float | None = None
    skipped: str | None = None
    neighbours: int = 0
    given_share: float | None = None
    split: int = 0
    labels_of: str = "train"
    voters: tuple = ()
    lone: int = 0
    crowded: tuple = ()

    def left_out(self, class_names=()) -> str | None:
        """What `class_limited` left out of the list, in words (None when nothing): "2 images
        in classes of one image not checkable (no other image carries their label); class b
        not listed: 3 of its 12 images would be, more than 20% of it (the modules do not
        separate it)". `class_names`: str per class index (the index where there is none)."""
        names = [str(n) for n in (class_names or ())]
        parts = []
        if self.lone:
            parts.append(f"{counted(self.lone, 'image')} in classes of one image not "
                         "checkable (no other image carries "
                         f"{'its' if self.lone == 1 else 'their'} label)")
        for c, listed, size in self.crowded:
            name = names[c] if 0 <= c < len(names) else str(c)
            parts.append(f"class {name} not listed: {listed} of its {size} images would be, "
                         f"more than {MAX_CLASS_SHARE:.0%} of it (the modules do not "
                         "separate it)")
        return "; ".join(parts) or None

    @property
    def mixed(self) -> bool:
        """Whether the neighbourhoods are mixed (given_share below MIN_GIVEN_SHARE), so that
        only images with a MAJORITY of their neighbours on one other label are listed."""
        return self.given_share is not None and self.given_share < MIN_GIVEN_SHARE


def class_limited(suspects, labels) -> tuple[list, int, tuple]:
    """The suspects a list may hold by their given classes: leaves out those of a class of
    fewer than MIN_CLASS_IMAGES training images (not checkable) and every one of a class more
    than MAX_CLASS_SHARE of whose images are suspects. `suspects`: Suspect, in their order;
    `labels`: int [N], the given labels. Returns (the kept suspects in their order, how many
    were left out as lone, ((class, suspects of it, its images), …) of the classes left out
    as crowded, by class index)."""
    sizes = np.bincount(np.asarray(labels, np.int64))
    listed = np.bincount([s.given for s in suspects], minlength=len(sizes))
    lone = sum(1 for s in suspects if sizes[s.given] < MIN_CLASS_IMAGES)
    crowded = tuple((c, int(listed[c]), int(sizes[c])) for c in range(len(sizes))
                    if sizes[c] >= MIN_CLASS_IMAGES and listed[c] > MAX_CLASS_SHARE * sizes[c])
    out = {c for c, _, _ in crowded} | {c for c in range(len(sizes))
                                        if sizes[c] < MIN_CLASS_IMAGES}
    return [s for s in suspects if s.given not in out], lone, crowded


def check_ranking(ranking, predictions: dict, labels, neighbours=None) -> LabelCheck:
    """The LabelCheck of a ranking (`rank.Ranking`: its metric and ok rows, best first),
    its kNN predictions ({module name: int [N]}, `rank.load_knn_predictions`), the
    training labels int [N] and the neighbours ({module name: int [N, K]},
    `rank.knnfile.load_knn_neighbours`; None or {}: a knn.npz written before rank kept them).
    The suspects are `neighbour_suspects` of the TOP_MODULES best modules with neighbours
    when at least MIN_MODULES have them (only those with a MAJORITY of the votes when the
    given labels' mean share of the neighbours is below MIN_GIVEN_SHARE), else
    `suspect_labels` of every module's 1-NN predictions. `skipped` (and no suspects) when
    the metric is not a kNN one, fewer than MIN_MODULES modules have predictions of N
    images, the best score is at chance (`knnchance.at_knn_chance` of the ranking's "chance",
    or of the labels' `knn_chance` when it records none) or below MIN_PROXY_SCORE, more than
    MAX_SHARE of the images would be listed, or `class_limited` leaves none of them (the
    reason in words, for the report). `class_limited` leaves out the suspects of classes of
    one image and of classes more than MAX_CLASS_SHARE of which would be listed (`lone`,
    `crowded`; `LabelCheck.left_out` says so)."""
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
            f"{counted(len(rows), 'ranked module')} "
            f"{'predicts' if len(rows) == 1 else 'predict'} the training labels; at least "
            f"{MIN_MODULES} are needed, so that one module's errors are not taken for "
            "wrong labels"))
    best = max(float(r.get("score") or 0.0) for r in rows)
    chance = ranking.chance if getattr(ranking, "chance", None) is not None else knn_chance(y)
    if at_knn_chance(best, chance):  # the modules' neighbours are the common class's
        return LabelCheck([], modules=len(rows), best_score=best, skipped=(
            f"every ranked module's leave-one-out kNN accuracy is at chance (the best "
            f"{best:.4f} <= {chance:.4f}, always the most common class): their neighbours "
            "do not tell the classes apart, so they cannot tell a wrong label"))
    if best < MIN_PROXY_SCORE:
        return LabelCheck([], modules=len(rows), best_score=best, skipped=(
            f"the best module's leave-one-out kNN accuracy is {best:.4f}, below "
            f"{MIN_PROXY_SCORE}: the modules' own errors would outnumber wrong labels"))
    near = [neighbours[r["name"]] for r in rows
            if r["name"] in (neighbours or {})][:TOP_MODULES]
    share, split = None, 0
    if len(near) >= MIN_MODULES and len({a.shape for a in near}) == 1:
        stacked, k = np.stack(near), near[0].shape[1]
        suspects = neighbour_suspects(stacked, y)
        share = float((y[stacked] == y[None, :, None]).mean())
        words = (f"none of the nearest {k} training images of each, in the {len(near)} best "
                 "modules' embeddings, carries the label")
        if share < MIN_GIVEN_SHARE:  # mixed neighbourhoods: split votes are ambiguity
            kept = [s for s in suspects if s.score >= MAJORITY]
            split, suspects = len(suspects) - len(kept), kept
            words += f" and {MAJORITY:.0%} or more carry one other"
    else:
        suspects, k = suspect_labels(np.stack([predictions[r["name"]] for r in rows]), y), 0
        words = "every module's kNN prediction contradicts the label"
    kept, lone, crowded = class_limited(suspects, y)
    if len(suspects) - lone > MAX_SHARE * len(y):  # one class's only images: no evidence
        return LabelCheck([], modules=len(rows), best_score=best, skipped=(
            f"{words} of {len(suspects) - lone} of the {len(y)} training images, more than "
            f"{MAX_SHARE:.0%}: more than the label errors of a hand-labelled set explain, so "
            "most would be the modules' own errors"), neighbours=k, given_share=share)
    check = LabelCheck(kept, modules=len(near) if k else len(rows), best_score=best,
                       neighbours=k, given_share=share, split=split, lone=lone,
                       crowded=crowded)
    if suspects and not kept:  # said as why there is no list, not as labels all carried
        return dataclasses.replace(check, skipped=check.left_out())
    return check


@checks_keywords
def run_label_check(run_dir, ranking=None) -> LabelCheck:
    """`check_ranking` of a run folder: its ranking.json (or `ranking`), RUN/knn.npz and
    RUN/labels/train.npy. RunError (naming the file and what rewrites it) when one of them
    is unreadable; `skipped` says so when the labels file is missing."""
    from hubensemble import ensemble as ens
    from hubensemble.rank.knnfile import load_knn_neighbours, load_knn_predictions
    from hubensemble.rank.ranking import load_ranking

    ranking = ranking if ranking is not None else load_ranking(run_dir)
    labels = ens.load_labels(run_dir, "train")
    if labels is None:
        return LabelCheck([], skipped=f"{Path(run_dir) / 'labels' / 'train.npy'} is missing "
                          "(rank or tune writes it again from the run's data)")
    names = [r["name"] for r in ranking.ok_rows]
    return check_ranking(ranking, load_knn_predictions(run_dir, names), labels,
                         load_knn_neighbours(run_dir, names))


#: The columns of RUN/labels/to_check.csv (`write_labels_to_check`); a file written before
#: 2026-12-06 has all but "split" (its rows are training images: `read_labels_to_check`).
CSV_COLUMNS = ("split", "index", "file", "given", "given_name", "suggested", "suggested_name",
               "votes", "voters")
#: The `split` cell of a row: its image is `train[i]` or `val[i]` (RUN/labels/<split>.npy).
CSV_SPLITS = ("train", "val")


def labels_to_check_file(run_dir) -> Path:
    """RUN/labels/to_check.csv: every image of a run's LabelChecks (`write_labels_to_check`)."""
    return Path(run_dir) / formats.LABELS_DIR / formats.LABELS_TO_CHECK_CSV


def write_labels_to_check(run_dir, check: LabelCheck, class_names=(), paths=None,
                          validation: LabelCheck | None = None,
                          val_paths=None) -> Path | None:
    """Writes every suspect of `check` (the training labels') and of `validation` (the
    validation labels', `check_validation`; None: none) - not only the report's SHOWN - as
    RUN/labels/to_check.csv and returns its path; with no suspects in either (none, or no
    list: `skipped`) removes the file an earlier list left and returns None, so the file
    never outlives its lists. The one place that writes that file (UTF-8 starting with its
    byte-order mark, so Excel on Windows reads a name in any script; the csv module's
    quoting, "\\n" line ends: `csvcells.csv_text`; read back by `read_labels_to_check`, or
    opened with encoding "utf-8-sig"), one row per image, the training images first, each
    list in its order (worst first), the columns CSV_COLUMNS: `split` ("train" or "val", as
    RUN/labels/<split>.npy names the split), `index` (int, train[i] or val[i] of the run's
    data as it loaded: `training_image`, `validation_image`), `file` (the image's path as
    RUN/labels/train_paths.json records it, `paths` [N] str, or for a validation image
    RUN/labels/val_paths.json, `val_paths` [N_val] str; empty without: data without files,
    or a run written before the run kept them), `given` and `suggested` (int
    class indexes) with their `class_names` (str; the index as text where there is no name),
    `votes` (int) of `voters` (int: modules x neighbours, modules for the 1-NN rule, or the
    candidates that voted on a validation image). A file or class name starting with "=",
    "+", "-", "@", a tab or a carriage return (or "'") is written with "'" before it, so a
    spreadsheet program shows it as text and never runs it as a formula
    (`csvcells.csv_text`, OWASP's rule; `csvcells.read_cell` reads it back). OSError (naming
    the file) when it cannot be written or removed."""
    path = labels_to_check_file(run_dir)
    val = validation.suspects if validation is not None else []
    if not check.suspects and not val:
        path.unlink(missing_ok=True)
        return None
    names = [str(n) for n in (class_names or [])]

    def name(c):
        return names[c] if 0 <= c < len(names) else str(c)

    def row(split, s, file):
        return [split, s.index, file, s.given, name(s.given), s.suggested, name(s.suggested),
                s.votes, s.modules * s.neighbours]

    atomic_write_text(path, csv_text(CSV_COLUMNS, [
        *(row("train", s, paths[s.index] if paths else "") for s in check.suspects),
        *(row("val", s, val_paths[s.index] if val_paths else "") for s in val)]))
    return path


@checks_keywords
def read_labels_to_check(path) -> list[dict]:
    """The rows of a RUN/labels/to_check.csv as {column: str} (`csvcells.read_rows`: every
    cell as named, a spreadsheet's text mark dropped), in the file's order. A file written
    before 2026-12-06 has no `split` column: its rows were training images, so `split` is
    "train" in them. OSError when the file cannot be read; ValueError (naming the file)
    when it is not such a list (no `index` column, or a `split` other than CSV_SPLITS)."""
    from hubensemble.csvcells import read_rows

    rows = read_rows(path)
    for n, r in enumerate(rows, start=2):  # line 1 is the header
        r.setdefault("split", "train")
        if "index" not in r or r["split"] not in CSV_SPLITS:
            raise ValueError(f"{path}, line {n}: not a list of labels to check (expected the "
                             f"columns {', '.join(CSV_COLUMNS)}; split one of "
                             f"{', '.join(CSV_SPLITS)}, got {r.get('split')!r})")
    return rows


@checks_keywords
def training_image(run_dir, i: int):
    """The pixels of `train[i]`, the i-th training example of run folder `run_dir`'s own data,
    as the report's "Labels to check" and RUN/labels/to_check.csv's `index` name it: numpy
    uint8 [H, W, 3], values 0..255 (`data.Split.images`), e.g. for
    `PIL.Image.fromarray(training_image(RUN, 140)).show()`. The data is loaded again as
    run.json records it, with its --data-seed, and checked against the recorded fingerprint
    (`rundir.Run.task`): `load_task(SPEC)` at its default seed orders other data's training
    examples otherwise, and data without files (sklearn:, npz:) has no file to open (a
    new-user check on the demo's sklearn:digits). RunError / DataError as Run.task raises
    them (no run.json, data given in Python, changed data); IndexError naming the range for
    an `i` outside 0..N-1, TypeError for a non-integer."""
    return _split_image(run_dir, "train", i)


@checks_keywords
def validation_image(run_dir, i: int):
    """The pixels of `val[i]`, the i-th validation example of run folder `run_dir`'s own data
    (a row of RUN/labels/to_check.csv whose `split` is "val"), as `training_image` gives a
    training one (numpy uint8 [H, W, 3]; the same errors; IndexError for a run without a
    validation split)."""
    return _split_image(run_dir, "val", i)


def _split_image(run_dir, split, i):
    """The pixels of example `i` of `split` ("train" or "val") of the run's own data."""
    import operator

    from hubensemble.rundir import Run

    i = operator.index(i)  # TypeError for 1.5 or "3", as a list index would
    part = getattr(Run(run_dir).task(), split)
    images = part.images if part is not None else []
    if not 0 <= i < len(images):
        what = {"train": "training", "val": "validation"}[split]
        raise IndexError(f"{what}_image(): {run_dir} has {len(images)} {what} images"
                         + (f", {split}[0] to {split}[{len(images) - 1}]" if len(images)
                            else "") + f"; got {i}")
    return images[i]


# ---------------------------------------------------------------------------------------------
# Validation labels: the candidates' own validation probabilities
# ---------------------------------------------------------------------------------------------

#: A validation image is listed when each voting candidate gives its given label a
#: probability below this (and most of them predict one same other label). 0.05 listed 17
#: more of bench_labelcheck.py --runs' 90 flips, and 17 more false images (module docstring).
LOW_PROBABILITY = 0.01
#: The lowest validation accuracy (on the given labels) of the best voting candidate at
#: which validation images are listed: below it the candidates' own errors outnumber wrong
#: labels (the training rule's MIN_PROXY_SCORE; quick-profile runs at 0.28-0.30 on
#: signdigits10 and gtsrb10 listed flips at 0.25-0.60 by the ensemble's probabilities).
MIN_VAL_ACCURACY = 0.6


def probability_suspects(probs, labels, low=LOW_PROBABILITY) -> list[Suspect]:
    """The images whose given label every model gives a low probability, most of them
    predicting one same other label.

    `probs`: float [M, N, C], row m model m's probabilities of the N images (rows summing to
    1; M >= 1, best model first); `labels`: int [N], the given labels, in [0, C); `low`:
    float in (0, 1]. Image i is a Suspect when probs[m, i, labels[i]] < low for every m and
    more than half of the M models' argmax (the first of equal probabilities, as numpy's
    argmax) is one same label c (necessarily another than the given one): `suggested` c,
    `votes` how many models predict it, `modules` M, `neighbours` 1. Sorted by votes (most
    first), then by the models' mean probability of the given label (lowest first), then
    index. ValueError when the shapes do not match or a label is outside [0, C)."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.int64)
    if (p.ndim != 3 or 0 in p.shape[:1] or y.ndim != 1 or p.shape[1] != len(y)
            or (len(y) and not 0 <= y.min() <= y.max() < p.shape[2])):
        raise ValueError(f"probabilities of shape {p.shape} do not match labels of shape "
                         f"{y.shape}: expected [M >= 1, N, C] and [N] in [0, C)")
    m, n, c = p.shape
    given = p[:, np.arange(n), y]  # [M, N]
    top = p.argmax(axis=2)  # [M, N]
    counts = np.zeros((n, c), np.int64)
    np.add.at(counts, (np.tile(np.arange(n), m), top.ravel()), 1)
    suggested = counts.argmax(axis=1)
    votes = counts[np.arange(n), suggested]
    flagged = np.flatnonzero((given < low).all(axis=0) & (2 * votes > m))
    mean_given = given.mean(axis=0)
    order = np.lexsort((flagged, mean_given[flagged], -votes[flagged]))
    return [Suspect(int(flagged[j]), int(y[flagged[j]]), int(suggested[flagged[j]]),
                    int(votes[flagged[j]]), m) for j in order]


def validation_voters(candidates, labels) -> tuple[tuple, np.ndarray | None]:
    """The candidates whose validation probabilities vote on the validation labels: of each
    module the candidate of the lowest validation cross-entropy (`metrics.nll` on `labels`),
    leaving out those at chance (`chance.candidate_at_chance`) and those whose table does
    not fit the labels, then the TOP_MODULES modules of the lowest such cross-entropy, best
    first (equal ones: by trial). `candidates`: `candidate.Candidate`, val_probs float [N, C]
    loaded; `labels`: int [N]. Returns (their trials, their val_probs stacked float [M, N, C];
    None when M is 0). ValueError when the tables kept have different class counts."""
    from hubensemble import metrics
    from hubensemble.chance import candidate_at_chance

    y = np.asarray(labels, np.int64)
    best = {}  # module -> (ce, trial, probs)
    for cand in candidates:
        p = cand.val_probs
        if (p is None or p.ndim != 2 or len(p) != len(y) or not len(y)
                or not 0 <= y.min() <= y.max() < p.shape[1]
                or candidate_at_chance(cand, y)):
            continue
        ce = metrics.nll(p, y)
        if cand.module not in best or (ce, cand.trial) < best[cand.module][:2]:
            best[cand.module] = (ce, cand.trial, p)
    chosen = sorted(best.values(), key=lambda v: v[:2])[:TOP_MODULES]
    if len({p.shape[1] for _, _, p in chosen}) > 1:
        raise ValueError("the candidates' validation tables have different numbers of classes: "
                         + ", ".join(f"{t} {p.shape[1]}" for _, t, p in chosen))
    return (tuple(t for _, t, _ in chosen),
            np.stack([p for _, _, p in chosen]) if chosen else None)


def check_validation(candidates, labels) -> LabelCheck:
    """The LabelCheck of a run's validation labels from its candidates' own validation
    probabilities: `candidates` (`candidate.Candidate`, their val_probs float [N, C] loaded:
    `ensemble.load_candidates`), `labels` int [N] (RUN/labels/val.npy). The candidates of
    `validation_voters` give `probability_suspects`. `skipped` (and no suspects) when
    fewer than MIN_MODULES modules have a candidate above chance, the best voter's validation
    accuracy is below MIN_VAL_ACCURACY, or more than MAX_SHARE of the images would be listed
    (the reason in words, for the report). `labels_of` "val", `modules` how many candidates
    voted (`voters` their trials), `best_score` the best one's validation accuracy (float in
    [0, 1]). ValueError as `validation_voters` raises it."""
    from hubensemble import metrics

    y = np.asarray(labels, np.int64)
    trials, stacked = validation_voters(candidates, y)
    if len(trials) < MIN_MODULES:
        return LabelCheck([], modules=len(trials), labels_of="val", voters=trials, skipped=(
            f"{counted(len(trials), 'module')} {'has' if len(trials) == 1 else 'have'} a "
            "candidate above chance on validation; at least "
            f"{MIN_MODULES} are needed, so that one model's errors are not taken for wrong "
            "labels"))
    score = max(metrics.accuracy(p, y) for p in stacked)
    if score < MIN_VAL_ACCURACY:
        return LabelCheck([], modules=len(trials), best_score=score, labels_of="val",
                          voters=trials, skipped=(
                              f"the best candidate's validation accuracy is {score:.4f}, "
                              f"below {MIN_VAL_ACCURACY}: the candidates' own errors would "
                              "outnumber wrong labels"))
    suspects = probability_suspects(stacked, y)
    if len(suspects) > MAX_SHARE * len(y):
        return LabelCheck([], modules=len(trials), best_score=score, labels_of="val",
                          voters=trials, skipped=(
                              f"the best candidates of {len(trials)} modules all give the "
                              f"given label below {LOW_PROBABILITY} (most predicting one other)"
                              f" for {len(suspects)} of the {len(y)} validation images, more "
                              f"than {MAX_SHARE:.0%}: "
                              "more than the label errors of a hand-labelled set explain, so "
                              "most would be the candidates' own errors"))
    return LabelCheck(suspects, modules=len(trials), best_score=score, labels_of="val",
                      voters=trials)


def run_validation_check(run_dir, candidates=None, labels=None) -> LabelCheck:
    """`check_validation` of a run folder: its usable candidates (`ensemble.load_candidates`;
    or `candidates`, their val_probs loaded) and RUN/labels/val.npy (or `labels`). `skipped`
    says why there is no list when the run has no validation labels or no candidate yet;
    RunError (naming the file and what rewrites it) when the labels file is unreadable."""
    from hubensemble import ensemble as ens

    labels = labels if labels is not None else ens.load_labels(run_dir, "val")
    if labels is None:
        return LabelCheck([], labels_of="val", skipped=(
            f"{Path(run_dir) / 'labels' / 'val.npy'} is missing (tune writes it from the "
            "run's data)"))
    if candidates is None:
        candidates = ens.load_candidates(run_dir, n_val=len(labels))[0]
    if not candidates:
        return LabelCheck([], labels_of="val", skipped=(
            "the run has no candidate with validation probabilities yet (tune makes them)"))
    return check_validation(candidates, labels)
