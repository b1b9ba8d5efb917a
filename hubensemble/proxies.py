"""Transferability proxies (leave-one-out kNN, LogME, H-score) and module-selection policies."""

import math

import numpy as np

from .errors import DataError

# Rows of the distance matrix computed at once: memory stays O(block x N), and up to
# N = 2048 the whole Gram matrix is one symmetric product (BLAS syrk, half the work).
_BLOCK_ELEMENTS = 1 << 22

METRICS = ("euclidean", "cosine")


# ---------------------------------------------------------------------------------------------
# Leave-one-out k-nearest neighbours
# ---------------------------------------------------------------------------------------------

def _check_x(x):
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"features must be a 2-D array [N, d], got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise DataError("features contain NaN or inf: the module's output is broken; "
                        "check its input range in the catalogue")
    return x


def _check_xy(x, y):
    x = _check_x(x)
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise DataError(f"labels must be a 1-D array of {x.shape[0]} ints, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integers, got dtype {y.dtype}")
    return x, y


def _row_norms_sq(x):
    # np.einsum, as scikit-learn's row_norms (used by its normalize()).
    return np.einsum("ij,ij->i", x, x)


def _normalize_rows(x):
    # scikit-learn's normalize(): a zero row stays zero (its cosine distance to all is 1).
    norms = np.sqrt(_row_norms_sq(x))
    norms[norms == 0.0] = 1.0
    return x / norms[:, None]


def _may_have_duplicate_rows(x):
    """False only when no two rows are equal: 64-bit row hashes (equal rows, equal hashes).

    Sorting the rows themselves (np.unique(axis=0)) costs more than the Gram matrix, so it
    is left to the caller when hashes collide. Hashing ~64 spread-out columns first keeps
    the common case (no duplicates) at a fraction of a millisecond.
    """
    n, d = x.shape
    mult = np.random.default_rng(0).integers(1, 2**63, d, dtype=np.uint64) | 1
    for step in dict.fromkeys((max(1, d // 64), 1)):
        bits = (x[:, ::step] + 0.0).view(np.uint64)  # + 0.0: -0.0 and 0.0 get equal bits
        hashes = (bits * mult[None, :bits.shape[1]]).sum(axis=1, dtype=np.uint64)  # mod 2^64
        if len(np.unique(hashes)) == n:
            return False
    return True


def _distance_block(x, sq, rows, metric):
    """Distances from x[rows] to all rows, as scikit-learn's brute kNN computes them.

    Euclidean: the squared distance ||a||^2 + (-2ab) + ||b||^2 in float64, clamped at 0 (the
    order of scikit-learn's ArgKmin, so exact ties stay exact). Cosine: 1 - a.b of unit rows,
    clipped to [0, 2] (scikit-learn's cosine_distances).
    """
    if isinstance(rows, slice) and rows.start == 0 and rows.stop == x.shape[0]:
        dist = x @ x.T  # numpy uses syrk for A @ A.T: half the work
    else:
        dist = x[rows] @ x.T
    if metric == "euclidean":
        dist *= -2.0
        dist += sq[rows, None]
        dist += sq[None, :]
        np.maximum(dist, 0.0, out=dist)
    else:
        np.subtract(1.0, dist, out=dist)
        np.clip(dist, 0.0, 2.0, out=dist)
    return dist


def _k_smallest(dist, k):
    """Column indices [B, k] of each row's k smallest entries, in index order on ties."""
    idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(dist, idx, axis=1).max(axis=1, keepdims=True)
    # argpartition picks arbitrarily among entries equal to the k-th value; only rows with
    # more such entries than places left need the stable rule (rare for real embeddings).
    tied = np.flatnonzero((dist <= kth).sum(axis=1) > k)
    if tied.size:
        sub, t = dist[tied], kth[tied]
        below = sub < t
        equal = sub == t
        need = k - below.sum(axis=1)
        take = below | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))
        idx[tied] = np.nonzero(take)[1].reshape(tied.size, k)
    return idx


def check_groups(groups, n, k):
    """`groups` as int64 [n] (None stays None); DataError for another shape or when some
    example has fewer than k examples outside its group."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
        raise DataError(f"groups must be one integer per example ({n}), got "
                        f"{groups.dtype} {groups.shape}")
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if n - counts.max() < k:
        raise DataError(f"leave-one-group-out {k}-NN needs at least {k} examples outside "
                        f"each example's group; the largest group has {counts.max()} of "
                        f"{n} examples")
    return inverse.reshape(-1).astype(np.int64)


def _loo_neighbor_blocks(x, k, metric, block_rows, groups=None):
    """Yield (start, stop, idx [stop-start, k]) of each row's leave-one-out neighbours
    (with `groups`, int [N], every row of the same group is left out too)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    n = x.shape[0]
    if not 1 <= k <= n - 1:
        raise DataError(f"leave-one-out {k}-NN needs at least {k + 1} examples, got {n}")
    groups = check_groups(groups, n, k)
    if metric == "cosine":
        x = _normalize_rows(x)
    # Identical rows must get bit-identical distances (exactly 0 to each other) or rounding
    # that depends on a row's position in the matrix product would order the duplicates.
    # Distances are therefore computed between distinct rows and gathered back.
    dups = _may_have_duplicate_rows(x)
    if dups:
        x, inv = np.unique(x, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
    sq = _row_norms_sq(x) if metric == "euclidean" else None
    if block_rows is None:
        block_rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n, int(block_rows)):
        stop = min(n, start + int(block_rows))
        rows = np.arange(stop - start)
        if dups:
            ids = np.unique(inv[start:stop])
            dist_u = _distance_block(x, sq, ids, metric)
            same = np.arange(len(ids))
            if metric == "cosine":
                # scikit-learn: a zero row is at cosine distance 1 from everything, itself too.
                same = same[np.any(x[ids] != 0.0, axis=1)]
            dist_u[same, ids[same]] = 0.0
            dist = dist_u[np.searchsorted(ids, inv[start:stop])][:, inv]
        else:
            dist = _distance_block(x, sq, slice(start, stop), metric)
        dist[rows, rows + start] = np.inf  # leave the example itself out
        if groups is not None:
            # ... and every copy of it (its duplicate group): a copy is at distance 0 and
            # would always vote for its own label.
            dist[groups[start:stop, None] == groups[None, :]] = np.inf
        idx = _k_smallest(dist, k)
        # Nearest first; among equal distances the lower index first.
        order = _order_rows(np.take_along_axis(dist, idx, axis=1), idx)
        yield start, stop, np.take_along_axis(idx, order, axis=1)


def _order_rows(d, idx):
    # Sort by index, then stably by distance: rows end up ordered by (distance, index).
    by_index = np.argsort(idx, axis=1, kind="stable")
    d_sorted = np.take_along_axis(d, by_index, axis=1)
    by_dist = np.argsort(d_sorted, axis=1, kind="stable")
    return np.take_along_axis(by_index, by_dist, axis=1)


def loo_knn_neighbors(x, k=1, metric="euclidean", block_rows=None, groups=None):
    """Indices [N, k] of each example's k nearest other examples, nearest first.

    Ties rule: neighbours sorted by (distance, index), so among equal distances (duplicated
    points included) the lower index comes first and wins the last places. With `groups`
    (int [N]) the examples of an example's own group are never its neighbours.
    """
    x = _check_x(x)
    out = np.empty((x.shape[0], int(k)), dtype=np.int64)
    for start, stop, idx in _loo_neighbor_blocks(x, int(k), metric, block_rows, groups):
        out[start:stop] = idx
    return out


def loo_knn_predict(x, y, k=1, metric="euclidean", num_classes=None, block_rows=None,
                    groups=None):
    """Leave-one-out k-nearest-neighbour predictions: example i is predicted from all others.

    `groups` (int [N], e.g. `Task.train_groups`: the exact-duplicate group of each example):
    example i is predicted from the examples outside its group, so a copy of an image never
    votes for it (leave-one-group-out). Without it, or with every id different, the plain
    leave-one-out rule below. DataError when some example has fewer than k examples outside
    its group.

    Deterministic rules (scikit-learn's KNeighborsClassifier(algorithm="brute") on all
    examples but i, asked for i, gives the same answer whenever its k nearest are not
    decided by a tie; on ties it documents that the result "depends on the ordering of the
    training data", so a rule has to be chosen):

    * neighbours: the k smallest distances; equal distances go to the lower index (a stable
      sort), so duplicated points (distance 0) are taken in index order;
    * vote: most frequent label among the k; a tie goes to the smallest label (np.argmax
      of the counts, as scikit-learn's mode).

    Distances as scikit-learn computes them, in float64 whatever the input dtype: Euclidean
    ranks ||a||^2 - 2ab + ||b||^2 (clamped at 0), cosine ranks 1 - a.b of unit rows (zero
    rows stay zero), clipped to [0, 2]. Rows are processed in blocks, so memory is
    O(block_rows x N). Returns int64 predictions [N].
    """
    x, y = _check_xy(x, y)
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    # Votes are counted over the sorted distinct labels, so argmax -> the smallest label.
    classes, codes = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    pred = np.empty(x.shape[0], dtype=np.int64)
    for start, stop, idx in _loo_neighbor_blocks(x, int(k), metric, block_rows, groups):
        b = stop - start
        flat = np.repeat(np.arange(b), idx.shape[1]) * n_classes + codes[idx].ravel()
        counts = np.bincount(flat, minlength=b * n_classes).reshape(b, n_classes)
        pred[start:stop] = classes[counts.argmax(axis=1)]
    return pred


def loo_knn_accuracy(x, y, k=1, metric="euclidean", num_classes=None, block_rows=None,
                     groups=None):
    """Leave-one-out kNN accuracy (the paper's ranking proxy), a float in [0, 1]; with
    `groups`, leave-one-group-out (see `loo_knn_predict`)."""
    pred = loo_knn_predict(x, y, k=k, metric=metric, num_classes=num_classes,
                           block_rows=block_rows, groups=groups)
    return float(np.mean(pred == np.asarray(y)))


# ---------------------------------------------------------------------------------------------
# LogME and H-score
# ---------------------------------------------------------------------------------------------

def _logme_svd(f):
    """Left singular vectors u [N, r] and squared singular values sigma [r] of F [N, D].

    From the eigendecomposition of the smaller Gram matrix: LAPACK's SVD of an 800 x 2048 F
    takes seconds, eigh of F F^T a fraction of one. With N > D, directions with singular
    value <= 1e-10 are dropped as in the reference (thuml/LogME's truncated_svd); any
    near-null direction kept contributes nothing to the evidence (sigma ~ 0 there).
    """
    n, d = f.shape
    if n > d:
        lam, v = np.linalg.eigh(f.T @ f)
        keep = np.sqrt(np.maximum(lam, 0.0)) > 1e-10
        sigma = lam[keep]
        u = (f @ v[:, keep]) / np.sqrt(sigma)[None, :]
    else:
        lam, u = np.linalg.eigh(f @ f.T)
        sigma = np.maximum(lam, 0.0)
    return u, sigma


def logme(features, y, num_classes=None, max_iter=11, tol=1e-3):
    """LogME (You et al., 2021): mean over classes of the maximum log evidence / N.

    Each class c is a Bayesian linear regression of the one-hot target (y == c) on F with
    prior precision alpha and noise precision beta, maximised by the fixed-point updates
    gamma = sum s/(s + a/b), alpha = gamma / |m|^2, beta = (N - gamma) / |y - Fm|^2 (with
    the reference's 1e-5 guard) in the singular basis of F, stopping when alpha/beta moves < 0.1 %
    (at most 11 steps), as in thuml/LogME's `_fit_fixed_point`. One correction to the
    reference (thuml/LogME issue #23): log|A| counts the D - rank(F) eigenvalues equal to
    alpha, so N < D gives the true evidence. Classes are 0..num_classes-1 (default
    max(y) + 1); higher is better.
    """
    f, y = _check_xy(features, y)
    n, d = f.shape
    n_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    u, sigma = _logme_svd(f)  # sigma: eigenvalues of F^T F on the range of F
    rank = sigma.shape[0]

    targets = (y[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)  # [N, C]
    proj = u.T @ targets  # [rank, C]
    x2 = proj ** 2
    # Energy of each target outside the range of F (the zero singular directions).
    res_x2 = (targets ** 2).sum(axis=0) - x2.sum(axis=0)

    alpha = np.ones(n_classes)
    beta = np.ones(n_classes)
    m2 = np.zeros(n_classes)
    res2 = np.zeros(n_classes)
    active = np.ones(n_classes, dtype=bool)
    sig = sigma[:, None]
    for _ in range(max_iter):
        t = alpha / beta
        gamma = (sig / (sig + t)).sum(axis=0)
        m2_t = (sig * x2 / (t + sig) ** 2).sum(axis=0)
        res2_t = (x2 / (1.0 + sig / t) ** 2).sum(axis=0) + res_x2
        new_alpha = gamma / (m2_t + 1e-5)
        new_beta = (n - gamma) / (res2_t + 1e-5)
        # Each class follows its own loop: once converged its values stay frozen.
        alpha = np.where(active, new_alpha, alpha)
        beta = np.where(active, new_beta, beta)
        m2 = np.where(active, m2_t, m2)
        res2 = np.where(active, res2_t, res2)
        active &= ~(np.abs(alpha / beta - t) / t <= tol)
        if not active.any():
            break
    logdet = np.log(alpha[None, :] + beta[None, :] * sig).sum(axis=0) \
        + (d - rank) * np.log(alpha)
    evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * logdet
                - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
    return float(np.mean(evidence / n))


def hscore(features, y, num_classes=None, rcond=1e-10):
    """H-score (Bao et al., 2019): tr(cov(f)^+ cov(E[f | y])); higher is better.

    The pseudo-inverse drops eigenvalues of cov(f) <= rcond x the largest (as
    np.linalg.pinv(cov, rcond=rcond)); both covariances use the 1/(N-1) convention, which
    cancels. Computed in the eigenbasis of the smaller of F^T F and F F^T (centred), so a
    2048-d embedding of 800 examples needs an 800 x 800 problem. `num_classes` only checks
    the label range; classes absent from y contribute nothing.
    """
    f, y = _check_xy(features, y)
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    n, d = f.shape
    fc = f - f.mean(axis=0, keepdims=True)
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    # delta[c] = E[f | y = c] - E[f]; cov(E[f|y]) = sum_c n_c delta_c delta_c^T / (N - 1).
    sums = np.zeros((len(classes), d))
    np.add.at(sums, codes, fc)
    delta = sums / counts[:, None]
    if d <= n:
        lam, vec = np.linalg.eigh(fc.T @ fc)
        z = delta @ vec  # coordinates of delta in the eigenbasis of cov(f)
    else:
        # F F^T = U L U^T; V = F^T U L^{-1/2}, so V^T delta = U^T F delta / sqrt(L).
        lam, vec = np.linalg.eigh(fc @ fc.T)
        z = (delta @ fc.T) @ vec
        with np.errstate(divide="ignore", invalid="ignore"):
            z = z / np.sqrt(np.maximum(lam, 0.0))[None, :]
    keep = lam > rcond * lam.max() if lam.max() > 0 else np.zeros_like(lam, dtype=bool)
    score = (counts[:, None] * z[:, keep] ** 2 / lam[None, keep]).sum()
    return float(score)


# ---------------------------------------------------------------------------------------------
# Selection policies (pure functions of the scores)
# ---------------------------------------------------------------------------------------------

def _score_key(scores):
    def key(name):
        s = scores[name]
        # NaN (a proxy that failed) ranks last; equal scores by name, so order is stable.
        return (math.inf if s is None or math.isnan(s) else -float(s), name)
    return key


def rank_order(scores):
    """Module names sorted best (highest score) first; equal scores by name; NaN last.

    `scores` (here and below): a dict name -> score, or (name, score) pairs.
    """
    scores = dict(scores)
    return sorted(scores, key=_score_key(scores))


def select_top_k(scores, k):
    """The k best modules (paper 2.3: K = 15)."""
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return rank_order(scores)[:int(k)]


def select_threshold(scores, tau=0.02, max_k=15):
    """Modules whose score is within a relative tau of the best, at most max_k (paper 2.3.1).

    Kept: score >= best - tau * |best|, i.e. >= (1 - tau) * best for the (positive) kNN
    accuracy; the |best| form keeps the rule meaningful for negative scores such as LogME.
    The best module is always kept.
    """
    scores = dict(scores)
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if int(max_k) < 1:
        raise ValueError(f"max_k must be >= 1, got {max_k}")
    order = [n for n in rank_order(scores)
             if scores[n] is not None and not math.isnan(scores[n])]
    if not order:
        return []
    best = float(scores[order[0]])
    cut = best - tau * abs(best)
    return [n for n in order if float(scores[n]) >= cut][:int(max_k)]


def majority_vote(predictions):
    """Per-example majority over rows of an int array [M, N]; ties -> the smallest label."""
    predictions = np.asarray(predictions)
    classes, codes = np.unique(predictions, return_inverse=True)
    codes = codes.reshape(predictions.shape)
    m, n = predictions.shape
    counts = np.zeros((n, len(classes)), dtype=np.int64)
    np.add.at(counts, (np.broadcast_to(np.arange(n), (m, n)), codes), 1)
    return classes[counts.argmax(axis=1)]


def select_greedy_knn(predictions, labels, k_max=15):
    """Greedy kNN selection of complementary modules (paper C.6).

    `predictions` maps module name -> its leave-one-out kNN predictions [N]. Start from the
    module with the best kNN accuracy, then repeatedly add the module whose predictions most
    raise the accuracy of the majority vote of the chosen modules (vote ties -> smallest
    label); stop at k_max modules or when no module strictly improves it. Equal accuracies
    go to the first name in sorted order.
    """
    labels = np.asarray(labels)
    names = sorted(predictions)
    if not names:
        return []
    preds = {n: np.asarray(predictions[n]) for n in names}
    for n in names:
        if preds[n].shape != labels.shape:
            raise DataError(f"predictions of {n!r} have shape {preds[n].shape}, "
                            f"labels have {labels.shape}")
    single = {n: float(np.mean(preds[n] == labels)) for n in names}
    chosen = [rank_order(single)[0]]
    best_acc = single[chosen[0]]
    while len(chosen) < int(k_max):
        pick, pick_acc = None, best_acc
        for n in names:
            if n in chosen:
                continue
            acc = float(np.mean(majority_vote([preds[c] for c in chosen + [n]]) == labels))
            if acc > pick_acc:
                pick, pick_acc = n, acc
        if pick is None:
            break
        chosen.append(pick)
        best_acc = pick_acc
    return chosen
