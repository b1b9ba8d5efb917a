"""Near-copy neighbours: training images whose nearest neighbour is (almost) the same picture.

Leave-one-out kNN scores an image by its nearest other training images. When the training set
holds several frames of one object (GTSRB keeps up to 13 frames of one physical sign), each
frame's nearest neighbour is another frame of it and the proxy reads like accuracy on seen
objects: MobileNet V1 scored 0.9788 on gtsrb10 where its linear probe reached 0.88 on
validation. Exact copies are left out already (`Task.train_groups`); this measures the
near ones, per module, in the embedding the ranking used (docs/rank.md, "Near-copy
neighbours"), and says so; the score and the order stay the proxy's.

Rule: a neighbour is a near copy when it lies closer than `QUANTILE` % of the training
images come to their nearest image of another class (the `radius`): a same-class neighbour
nearer than almost any two different-class pictures come is more like the same picture
than another one. On the dev tasks (docs/rank.md) it flagged 57-61 % of gtsrb10's nearest
neighbours and 4-20 % of the others'; on gtsrb10, whose validation split shares no sign with
train, 10-12 % of validation images lie that close to a training image. A share alone does
not tell near copies from classes that separate well (the demo zoo on sklearn:digits has
74-85 %, its proxy no higher than its validation accuracy): the report says it only where
the proxy also lies GAP or more above the module's best validation accuracy, which rank
alone does not know (rank records the figures and says nothing).
"""

from __future__ import annotations

import numpy as np

from hubensemble.text import counted

#: The percentile (of each training image's distance to its nearest image of another class)
#: below which a neighbour counts as a near copy: 1, measured on the dev tasks (module
#: docstring): 5 flagged 10-30 % of the nearest neighbours on tasks without near copies.
QUANTILE = 1.0
#: The share of training images whose nearest neighbour is a near copy from which rank and
#: the report say so: 0.5. The dev tasks without near copies measured 0.04-0.36 (dsprites
#: under knn-cosine the highest), gtsrb10's repeated frames 0.57-0.69.
NOTE_SHARE = 0.5
#: The most training images measured: past them rank records no figures (the two O(N^2)
#: passes took 4-8 s at 5,000 images of 1,024-d on a loaded 2-core machine, the
#: leave-one-out 2-3 s; 10,000 would take four times that, for every module).
MAX_EXAMPLES = 10_000
#: Distances computed at once: rows of a block times the training images.
_BLOCK_ELEMENTS = 1 << 22


def _blocks(emb, metric):
    """(start, stop, float64 [b, N] distances of rows start..stop to every row): Euclidean
    (squared, clamped at 0: the order of the distances) or cosine (1 - a.b of unit rows),
    from float32 products (half float64's time; a figure, not the score, rests on them)."""
    x = np.asarray(emb, np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    sq = np.einsum("ij,ij->i", x, x)
    x32 = x.astype(np.float32)
    rows = max(1, _BLOCK_ELEMENTS // max(1, len(x)))
    for start in range(0, len(x), rows):
        prod = (x32[start:start + rows] @ x32.T).astype(np.float64)
        if metric == "cosine":
            d = np.clip(1.0 - prod, 0.0, 2.0)
        else:
            d = np.maximum(sq[start:start + rows, None] - 2.0 * prod + sq[None, :], 0.0)
        yield start, start + len(prod), d


def near_copies(emb, labels, *, metric="euclidean", k=1, groups=None) -> dict | None:
    """The near-copy figures of one module's embeddings (float [N, d]) of the N training
    images with labels int [N], in `metric` ("euclidean" or "cosine": the ranking's), as
    ranking.json's row keeps them ("near_copies"): {"share": the fraction in [0, 1] of the
    images whose nearest other image (outside its `groups` id, int [N], exact copies) is a
    near copy, "score_without": the leave-one-out `k`-NN accuracy in [0, 1] when no near copy
    votes (proxies.loo_knn_predict's rules: neighbours by (distance, index), a tied vote to
    the smallest label; an image with fewer than k others left votes with those, none is a
    miss), "radius": the near-copy distance (squared Euclidean, or 1 - cosine)}. None when
    no image has another of another class (one class), or for more than MAX_EXAMPLES
    images. Two passes over [b, N] blocks of distances: about twice a leave-one-out's
    products (0.1-0.5 s for 800 images)."""
    y = np.asarray(labels, np.int64)
    n = len(y)
    if n > MAX_EXAMPLES:
        return None
    own = np.asarray(groups) if groups is not None else np.arange(n)
    nearest = np.full(n, np.inf)
    other = np.full(n, np.inf)
    for start, stop, d in _blocks(emb, metric):
        rows = np.arange(start, stop)
        d[own[rows, None] == own[None, :]] = np.inf  # itself and its exact copies
        nearest[rows] = d.min(axis=1)
        other[rows] = np.where(y[rows, None] == y[None, :], np.inf, d).min(axis=1)
    if not np.isfinite(other).any():
        return None
    radius = float(np.percentile(other[np.isfinite(other)], QUANTILE))
    share = float(np.mean(nearest <= radius))
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    k = min(int(k), n - 1)
    right = 0
    for start, stop, d in _blocks(emb, metric):
        rows = np.arange(start, stop)
        d[own[rows, None] == own[None, :]] = np.inf
        d[d <= radius] = np.inf
        # The k-th smallest distance of each row, then the few at most that far in (distance,
        # index) order: a whole row's sort took 6 times the leave-one-out's time at 5,000.
        kth = np.partition(d, k - 1, axis=1)[:, k - 1]
        for r, row in enumerate(rows):
            near = np.flatnonzero(d[r] <= kth[r])
            near = near[np.isfinite(d[r, near])]
            near = near[np.argsort(d[r, near], kind="stable")][:k]
            if len(near):
                votes = np.bincount(codes[near], minlength=len(classes))
                right += int(classes[votes.argmax()] == y[row])
    return {"share": share, "score_without": right / n, "radius": radius}


#: How far a module's proxy score must lie above the best validation accuracy of its
#: candidates for the note: 0.05. A share alone measures how well the classes separate as
#: much as near copies: the demo zoo on sklearn:digits has 74-85 % (its proxy 0.976-0.984
#: against validation accuracies 0.960-0.985, a gap of -0.002 to 0.016), gtsrb10's frames
#: 57-61 % with a gap of 0.10-0.13 (MobileNet V1 0.9788 against its probe's 0.88,
#: EfficientNet-Lite0 0.9587 against 0.83).
GAP = 0.05


def frequent(rows, accuracy) -> list[dict]:
    """The ok rows of a ranking (ranking.json's "modules") whose "near_copies" share is at
    least NOTE_SHARE and whose proxy score lies GAP or more above `accuracy`[name] (the best
    validation accuracy of the module's candidates, in [0, 1]; a module without one is
    none), in their order; a row without the field (a ranking written before it, another
    metric) is none. Nothing before candidates exist: rank alone cannot tell near copies
    from classes that separate well (GAP)."""
    accuracy = accuracy or {}
    return [r for r in rows if r.get("status") == "ok"
            and (r.get("near_copies") or {}).get("share", 0.0) >= NOTE_SHARE
            and isinstance(accuracy.get(r.get("name")), (int, float))
            and isinstance(r.get("score"), (int, float))
            and r["score"] - accuracy[r["name"]] >= GAP]


#: Modules a note names (the first, best-ranked, of those with frequent near copies).
NAMED = 3


def note(rows, metric="knn", accuracy=None) -> str | None:
    """The sentence the report's kNN section shows when near copies are frequent and the
    proxy lies well above validation (`frequent`, with `accuracy`: {module: best validation
    accuracy of its candidates}), else None: for the first NAMED such modules the share,
    the score without them (beside the score) and the validation accuracy, how many more,
    what it means (the proxy overstates accuracy on new objects, and the figure without
    them is still a bound; the order is still the one the selection uses), and that a
    validation split drawn from the same pool is optimistic too."""
    hit = frequent(rows, accuracy)
    if not hit:
        return None
    each = []
    for n, row in enumerate(hit[:NAMED]):
        near, val = row["near_copies"], accuracy[row["name"]]
        each.append(f"{row['name']} {near['share']:.0%}" + (
            f" of them, {metric} score {near['score_without']:.4f} without them "
            f"({row['score']:.4f} with, best validation accuracy {val:.4f})" if n == 0 else
            f", {near['score_without']:.4f} ({row['score']:.4f}, {val:.4f})"))
    more = f"; {counted(len(hit) - NAMED, 'more module')}" if len(hit) > NAMED else ""
    return ("near copies: the proxy lies well above validation accuracy, and the nearest "
            "neighbour of many training images is a near copy of "
            f"it (nearer than {100 - QUANTILE:g} % of the images come to any image of another "
            "class: frames of one object, or edited copies): "
            f"{'; '.join(each)}{more}. The proxy then partly measures recognising objects "
            "seen in training and overstates accuracy on new ones (without them too: "
            "farther frames of one object still vote); the order is still the one the "
            "selection uses. If the validation split was drawn from the same pool (frames "
            "of one object on both sides), validation accuracy is optimistic too "
            "(docs/rank.md, \"Near-copy neighbours\")")
