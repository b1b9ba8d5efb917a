"""Transferability proxies (leave-one-out kNN, LogME, H-score) and module-selection policies."""

import math

import numpy as np

from .errors import DataError
from .text import counted

# Rows of the distance matrix searched at once: memory stays O(block x N) (16 MB of float32),
# and up to N = 2048 the whole Gram matrix is one symmetric product (BLAS syrk, half the work).
_BLOCK_ELEMENTS = 1 << 22
# Candidate pairs whose float64 distances are computed at once (memory 2 x 256 x d doubles).
_PAIR_CHUNK = 256
# Unit roundoff of float32, and the smallest normal float32 (what a flushed subnormal loses).
_U32 = 2.0 ** -24
_TINY32 = 2.0 ** -126
# scikit-learn's normalize leaves rows of norm below 10 float64 epsilons as they are
# (sklearn.preprocessing._data._handle_zeros_in_scale): "zero" rows, cosine distance ~1 to all.
_NORM_FLOOR = 10.0 * np.finfo(np.float64).eps

METRICS = ("euclidean", "cosine")


# ---------------------------------------------------------------------------------------------
# Leave-one-out k-nearest neighbours
# ---------------------------------------------------------------------------------------------

def _check_x(x, *, float64=True):
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"features must be a 2-D array [N, d], got shape {x.shape}")
    if float64 or x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise DataError("features contain NaN or inf: the module's output is broken; "
                        "check its input range in the catalogue")
    return x


def _check_xy(x, y, *, float64=True):
    x = _check_x(x, float64=float64)
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise DataError(f"labels must be a 1-D array of {x.shape[0]} ints, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integers, got dtype {y.dtype}")
    return x, y


def _gamma(m):
    """Higham's gamma_m = m u / (1 - m u) for float32 (u = 2^-24): a bound on the relative
    error |fl(a.b) - a.b| / (|a|.|b|) of a float32 dot product of length m, whatever the
    summation order or blocking, with or without FMA (Higham, "Accuracy and Stability of
    Numerical Algorithms", 2nd ed., section 3.1)."""
    mu = m * _U32
    return mu / (1.0 - mu)


class _Distances:
    """The distances of the tie rule (float64, as scikit-learn computes them) between chosen
    pairs of rows, and float32 approximations of whole rows of them with an error bound.

    Exact (`pairs`): Euclidean ranks ||a||^2 + (-2 a.b) + ||b||^2 clamped at 0 (the order of
    scikit-learn's ArgKmin); cosine ranks 1 - a.b of unit rows (x / ||x||; a row of norm below
    10 float64 epsilons is left as it is, as scikit-learn's normalize) clipped to [0, 2] (its
    cosine_distances). Every dot product and sum of squares is the same pairwise summation of
    float64 products, so a pair's value depends on the two rows' values only: duplicated rows
    get bit-identical distances to every row, and exactly 0 to each other (ties then go by
    index).

    Approximate (`search`): one float32 matrix product of a block of rows with all rows,
    turned into a value that orders the row's neighbours as the exact distance does, up to
    `err` [N] (float64): |approximate - exact| <= err[i] for every entry of row i, from
    Higham's bound on float32 dot products (squared norms included) plus the roundings of
    the inputs, of the few float32 operations and of the float64 evaluation. Euclidean:
    ||b||^2 - 2 a.b (the row's own ||a||^2 does not change its order); cosine: -a.b of unit
    rows. Rows are scaled by a power of two (exact) when their values would leave float32's
    range.
    """

    def __init__(self, x, metric):
        n, d = x.shape
        self.x, self.metric = x, metric
        gamma = _gamma(d + 4)  # float32 dot products of float32-rounded inputs
        # The float64 evaluation of the exact distances: relative error <= ~(d + 8) 2^-53 of
        # the magnitudes involved.
        float64_slack = (d + 8) * 2.0 ** -50
        top = float(max(x.max(initial=0.0), -x.min(initial=0.0)))
        exponent = math.frexp(top)[1] if top > 0.0 else 0
        scale = math.ldexp(1.0, -exponent) if abs(exponent) > 40 else 1.0
        if x.dtype == np.float32 and scale == 1.0:
            x32 = x
        else:
            x32 = (x.astype(np.float64) * scale).astype(np.float32)
        sq32 = np.einsum("ij,ij->i", x32, x32)  # within gamma of the squared norms
        # Upper bounds of the (scaled) norms, and what flushed subnormals can lose.
        norm = np.sqrt(sq32.astype(np.float64) / (1.0 - gamma))
        n_max = float(norm.max()) if n else 0.0
        underflow = 4.0 * (d + 2.0 * math.sqrt(d) * max(n_max, 1.0) + 1.0) * _TINY32
        if metric == "cosine":
            # Rows scikit-learn does not normalize (norm < _NORM_FLOOR; decided in float64,
            # as `pairs` does, for the rows float32 puts near or below it) search as zero rows.
            unit = sq32 > 0
            near = np.flatnonzero(np.sqrt(sq32.astype(np.float64)) < 2.0 * _NORM_FLOOR * scale)
            if near.size:
                unit[near] = np.sqrt(_sums_of_squares(x[near].astype(np.float64))) >= _NORM_FLOOR
            inv = np.divide(1.0, np.sqrt(sq32), out=np.zeros_like(sq32), where=unit)
            self.x32 = x32 * inv[:, None]
            # Rows of norm 1 within gamma / 2 + 2u: a.b within 2 gamma + 4u of the cosine.
            bound = 1.001 * 2.0 * gamma + 8.0 * _U32 + float64_slack + underflow
            self.err = np.full(n, bound)
            self.floor = np.full(n, -1.0)  # -a.b <= -1: cosine distance clipped to 0
            return
        self.x32, self.sq32 = x32, sq32
        # 2 |G~ - a.b| + |sq32 - ||b||^2| + the float32 roundings of -2 G~ + sq32 + the
        # float64 evaluation of the exact distance + flushed subnormals.
        self.err = (1.001 * 2.0 * gamma * norm * n_max
                    + (1.001 * gamma + 5.0 * _U32 + float64_slack) * n_max * n_max
                    + 2.0 * underflow)
        # Exact values <= -||a||^2 are all clamped to distance 0; -||a||^2 is at most this.
        self.floor = -sq32.astype(np.float64) / (1.0 + gamma)

    def search(self, start, stop):
        """float32 [stop - start, N] approximate ranking values of rows start..stop-1."""
        if start == 0 and stop == self.x32.shape[0]:
            g = self.x32 @ self.x32.T  # numpy uses syrk for A @ A.T: half the work
        else:
            g = self.x32[start:stop] @ self.x32.T
        if self.metric == "cosine":
            np.negative(g, out=g)
        else:
            g *= np.float32(-2.0)
            g += self.sq32[None, :]
        return g

    def thresholds(self, kth, start, stop):
        """float32 [b]: per row, the largest approximate value an exact k nearest (ties at
        the k-th distance included) can have, from the row's k-th smallest approximation.

        Every j of the exact k nearest has exact <= exact k-th <= kth + err, so approximate
        <= kth + 2 err. Values tied by the clamp at 0 (Euclidean) or the clip to [0, 2]
        (cosine) are included too: all j with exact <= floor tie at distance 0, and a k-th
        neighbour at cosine distance 2 makes every row a candidate.
        """
        err = self.err[start:stop]
        kth = kth.astype(np.float64)
        thr = np.maximum(kth + 2.0 * err, self.floor[start:stop] + err)
        big = float(np.finfo(np.float32).max)  # not inf: left-out entries (inf) stay out
        if self.metric == "cosine":
            thr[kth >= 1.0 - err] = big
        out = np.minimum(thr, big).astype(np.float32)
        low = out < thr  # round up, never down
        out[low] = np.nextafter(out[low], np.float32(np.inf))
        return out

    def pairs(self, a, b):
        """float64 [P]: the exact distances between rows a[p] and b[p] (int arrays [P])."""
        out = np.empty(len(a))
        for s in range(0, len(a), _PAIR_CHUNK):
            ra = self.x[a[s:s + _PAIR_CHUNK]].astype(np.float64)
            rb = self.x[b[s:s + _PAIR_CHUNK]].astype(np.float64)
            sq_a, sq_b = _sums_of_squares(ra), _sums_of_squares(rb)
            if self.metric == "cosine":
                # scikit-learn's normalize: a row of norm < _NORM_FLOOR (zero rows too) is
                # left as it is (cosine distance ~1 to all, itself too).
                norm_a, norm_b = np.sqrt(sq_a), np.sqrt(sq_b)
                unit_a = norm_a >= _NORM_FLOOR
                ra /= np.where(unit_a, norm_a, 1.0)[:, None]
                rb /= np.where(norm_b >= _NORM_FLOOR, norm_b, 1.0)[:, None]
                same = np.flatnonzero(np.all(ra == rb, axis=1) & unit_a)
            ra *= rb
            dot = np.add.reduce(ra, axis=1)
            if self.metric == "cosine":
                dist = np.subtract(1.0, dot)
                np.clip(dist, 0.0, 2.0, out=dist)
                dist[same] = 0.0  # equal unit rows (scaled copies too); "zero" rows stay ~1
            else:
                dist = dot * -2.0
                dist += sq_a
                dist += sq_b
                np.maximum(dist, 0.0, out=dist)
            out[s:s + _PAIR_CHUNK] = dist
        return out


def _sums_of_squares(rows):
    """float64 [P]: sum of squares of each float64 row, by the pairwise summation of
    np.add.reduce over a contiguous row: a fixed order that depends on the row's length
    only, so equal rows get bit-equal sums (and a row's dot product with itself equals it)."""
    return np.add.reduce(rows * rows, axis=1)


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
        raise DataError(f"leave-one-group-out {k}-NN needs at least {counted(k, 'example')} "
                        f"outside each example's group; the largest group has {counts.max()} "
                        f"of {counted(n, 'example')}")
    return inverse.reshape(-1).astype(np.int64)


def _loo_neighbor_blocks(x, k, metric, block_rows, groups=None, ordered=True):
    """Yield (start, stop, idx [stop-start, k]) of each row's leave-one-out neighbours
    (with `groups`, int [N], every row of the same group is left out too).

    Float32 search, float64 decision: the float32 product ranks every row's neighbours up to
    a proven error bound; the pairs within twice the bound of the k-th (usually k or a few)
    get their exact float64 distance and are ordered by (distance, index). With `ordered`
    False the k are returned in index order, and a row with exactly k candidates needs no
    float64 distance at all (they are its k nearest).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    n = x.shape[0]
    if not 1 <= k <= n - 1:
        raise DataError(f"leave-one-out {k}-NN needs at least {k + 1} examples, got {n}")
    groups = check_groups(groups, n, k)
    dist = _Distances(x, metric)
    if block_rows is None:
        block_rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n, int(block_rows)):
        stop = min(n, start + int(block_rows))
        b = stop - start
        approx = dist.search(start, stop)
        rows = np.arange(b)
        approx[rows, rows + start] = np.inf  # leave the example itself out
        if groups is not None:
            # ... and every copy of it (its duplicate group): a copy is at distance 0 and
            # would always vote for its own label.
            approx[groups[start:stop, None] == groups[None, :]] = np.inf
        if k == 1:
            kth = approx.min(axis=1)
        else:
            kth = np.partition(approx, k - 1, axis=1)[:, k - 1]
        # flatnonzero + divmod: a tenth of the time of a 2-D np.nonzero.
        r, c = np.divmod(np.flatnonzero(approx <= dist.thresholds(kth, start, stop)[:, None]),
                         n)
        del approx
        yield start, stop, _k_nearest(r, c, b, k, start, dist, ordered)


def _k_nearest(r, c, b, k, start, dist, ordered):
    """idx [b, k] from the candidate pairs (r, c), sorted by row then column."""
    counts = np.bincount(r, minlength=b)
    first = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(counts, out=first[1:])
    idx = np.empty((b, k), dtype=np.int64)
    exact = counts > (0 if ordered else k)
    settled = np.flatnonzero(~exact)
    if settled.size:
        idx[settled] = c[first[settled, None] + np.arange(k)]
    need = np.flatnonzero(exact)
    if need.size:
        pick = np.repeat(exact, counts)
        rr, cc = r[pick], c[pick]
        d = dist.pairs(rr + start, cc)
        order = np.lexsort((cc, d, rr))  # by row, then distance, then index
        sub_first = np.zeros(need.size, dtype=np.int64)
        np.cumsum(counts[need][:-1], out=sub_first[1:])
        idx[need] = cc[order[sub_first[:, None] + np.arange(k)]]
    return idx


def loo_knn_neighbors(x, k=1, metric="euclidean", block_rows=None, groups=None):
    """Indices [N, k] of each example's k nearest other examples, nearest first.

    Ties rule: neighbours sorted by (distance, index), so among equal distances (duplicated
    points included) the lower index comes first and wins the last places. With `groups`
    (int [N]) the examples of an example's own group are never its neighbours.
    """
    x = _check_x(x, float64=False)
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
    rows stay zero), clipped to [0, 2]. They are found fast without changing that answer: a
    float32 matrix product (half the time of float64's) ranks every row's neighbours with a
    proven error bound, and only the pairs that the bound cannot separate from the k-th get
    their float64 distance (docs/rank.md, "Leave-one-out kNN"). Rows are processed in
    blocks, so memory is O(block_rows x N). x: float [N, d] (float32 is not copied), y: int
    [N]. Returns int64 predictions [N].
    """
    x, y = _check_xy(x, y, float64=False)
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    # Votes are counted over the sorted distinct labels, so argmax -> the smallest label.
    classes, codes = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    pred = np.empty(x.shape[0], dtype=np.int64)
    for start, stop, idx in _loo_neighbor_blocks(x, int(k), metric, block_rows, groups,
                                                 ordered=False):
        if idx.shape[1] == 1:
            pred[start:stop] = classes[codes[idx[:, 0]]]
            continue
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


def outvoted_classes(labels, k) -> list[tuple[int, int]]:
    """The classes whose examples can never hold more than half of their own k nearest
    neighbours in leave-one-out kNN: a class of n examples offers each of them n - 1
    same-class neighbours, at most half of k when 2 * (n - 1) <= k, so its examples lose
    whenever the other neighbours agree (a tie goes to the smallest label) and the proxy
    scores class sizes more than the embedding (30 separated clusters of 3 points, one
    embedding, scikit-learn's leave-one-out kNN: k = 1 and 3 score 1.0 and 0.97, k = 4 0.77,
    k = 9 0.0: `tests/test_rank.py`). `labels`: int [N], the training labels; k >= 1.
    Returns [(class, examples)], fewest examples first (ties by class); a class of one
    example is listed at every k (it has no same-class neighbour at all)."""
    classes, counts = np.unique(np.asarray(labels), return_counts=True)
    low = [(int(c), int(n)) for c, n in zip(classes, counts) if 2 * (n - 1) <= int(k)]
    return sorted(low, key=lambda cn: (cn[1], cn[0]))


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
