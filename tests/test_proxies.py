"""Leave-one-out kNN against scikit-learn, LogME / H-score against slow references, selection."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from hubensemble.errors import DataError
from hubensemble.proxies import (hscore, logme, loo_knn_accuracy, loo_knn_neighbors,
                                 loo_knn_predict, majority_vote, rank_order,
                                 select_greedy_knn, select_threshold, select_top_k)

METRICS = ("euclidean", "cosine")

# scikit-learn warns when most classes are singletons: intended here (many classes).
pytestmark = pytest.mark.filterwarnings("ignore:The number of unique classes")


# ---------------------------------------------------------------------------------------------
# scikit-learn leave-one-out reference: fit on all examples but i, ask for example i
# ---------------------------------------------------------------------------------------------

def sklearn_loo(x, y, k, metric, with_neighbours=False):
    n = len(y)
    pred = np.empty(n, dtype=y.dtype)
    neigh = []
    for i in range(n):
        others = np.flatnonzero(np.arange(n) != i)
        clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=metric)
        clf.fit(x[others], y[others])
        pred[i] = clf.predict(x[i:i + 1])[0]
        if with_neighbours:
            neigh.append(others[clf.kneighbors(x[i:i + 1], return_distance=False)[0]])
    return (pred, neigh) if with_neighbours else pred


def exact_distance(a, b, metric):
    """A pure function of the two vectors (correctly rounded sums): equal rows, equal values."""
    if metric == "euclidean":
        return math.fsum((p - q) ** 2 for p, q in zip(a, b))
    na, nb = math.sqrt(math.fsum(p * p for p in a)), math.sqrt(math.fsum(q * q for q in b))
    if na == 0 or nb == 0:
        return 1.0  # scikit-learn's convention for a zero vector
    return min(2.0, max(0.0, 1.0 - math.fsum(p * q for p, q in zip(a, b)) / (na * nb)))


def vote(labels):
    """Most frequent label; ties -> the smallest label."""
    counts = Counter(int(v) for v in labels)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def dyadic_points(rng, n):
    """Vectors whose unit vectors have components in {0, +-1, +-1/2}: exact cosine ties."""
    axes = [s * np.eye(4)[i] for i in range(4) for s in (1.0, -1.0)]
    corners = [np.array(c, dtype=float) for c in itertools.product((1.0, -1.0), repeat=4)]
    base = np.array(axes + corners)
    base = np.concatenate([base, np.zeros((1, 4))])  # zero rows: cosine distance 1 to all
    scale = 2.0 ** rng.integers(0, 3, n)  # powers of two keep the unit vectors bit-identical
    return base[rng.integers(0, len(base), n)] * scale[:, None]


def tie_datasets():
    rng = np.random.default_rng(1)
    n = 70
    grid = rng.integers(-2, 3, (n, 3)).astype(float)  # many exact distance ties
    dyadic = dyadic_points(rng, n)
    dups = rng.standard_normal((25, 8))[rng.integers(0, 25, n)]  # exact duplicates
    return {
        "grid": (grid, rng.integers(0, 6, n)),
        "dyadic": (dyadic, rng.integers(0, 4, n)),
        "duplicates": (dups, rng.integers(0, 3, n)),
        "int_duplicates": (rng.integers(-5, 6, (20, 8)).astype(float)[rng.integers(0, 20, n)],
                           rng.integers(0, 4, n)),
    }


TIES = tie_datasets()


# ---------------------------------------------------------------------------------------------
# Leave-one-out kNN
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_loo_knn_equals_sklearn_on_random_data(metric, k):
    rng = np.random.default_rng(10 + k)
    x = rng.standard_normal((80, 12)) + rng.standard_normal((25, 12))[rng.integers(0, 25, 80)]
    y = rng.integers(0, 25, 80)  # many classes, some seen once
    if k == 3:
        x = x.astype(np.float32)  # what modules produce
    np.testing.assert_array_equal(loo_knn_predict(x, y, k=k, metric=metric),
                                  sklearn_loo(x, y, k, metric))


@pytest.mark.parametrize("metric", METRICS)
def test_loo_knn_equals_sklearn_with_100_classes_high_dim(metric):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 100, 120)
    x = rng.standard_normal((100, 64))[y] * 0.7 + rng.standard_normal((120, 64))
    for k in (1, 3):
        expected = sklearn_loo(x, y, k, metric)
        np.testing.assert_array_equal(loo_knn_predict(x, y, k=k, metric=metric), expected)
    assert loo_knn_accuracy(x, y, k=3, metric=metric) == np.mean(expected == y)


@pytest.mark.parametrize("name", ["grid", "int_duplicates"])
def test_loo_1nn_ties_equal_sklearn_exactly(name):
    # With k = 1 scikit-learn's Euclidean brute search keeps the first of equal distances, as
    # we do. Integer coordinates keep every distance exact whatever the BLAS.
    x, y = TIES[name]
    np.testing.assert_array_equal(loo_knn_predict(x, y, k=1), sklearn_loo(x, y, 1, "euclidean"))


# Integer grids have exact Euclidean ties; under cosine their unit vectors are rounded, so
# cosine ties are exercised on the dyadic set (exact) and on exact duplicates.
TIE_CASES = [("grid", "euclidean"), ("dyadic", "euclidean"), ("dyadic", "cosine"),
             ("duplicates", "euclidean"), ("duplicates", "cosine")]


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("name,metric", TIE_CASES)
def test_loo_knn_agrees_with_sklearn_under_ties(name, metric, k):
    """Where the k nearest are decided by distances, predictions equal scikit-learn's. Where
    the k-th place is a tie (scikit-learn: "depends on the ordering of the training data";
    its heap / argpartition do not keep index order), both take a valid set of k nearest
    and we take the lowest indices."""
    x, y = TIES[name]
    n = len(y)
    pred = loo_knn_predict(x, y, k=k, metric=metric)
    neigh = loo_knn_neighbors(x, k=k, metric=metric)
    sk_pred, sk_neigh = sklearn_loo(x, y, k, metric, with_neighbours=True)
    rows = x.tolist()
    undecided = 0
    for i in range(n):
        dist = np.array([np.inf if j == i else exact_distance(rows[i], rows[j], metric)
                         for j in range(n)])
        assert sk_pred[i] == vote(y[sk_neigh[i]])  # scikit-learn votes as we do
        assert pred[i] == vote(y[neigh[i]])
        # Ours: sorted by (distance, index), nearest first ...
        np.testing.assert_array_equal(neigh[i], np.lexsort((np.arange(n), dist))[:k])
        # ... and scikit-learn's set is k nearest too (same distances).
        np.testing.assert_array_equal(np.sort(dist[neigh[i]]), np.sort(dist[sk_neigh[i]]))
        kth, next_ = np.sort(dist)[k - 1:k + 1]
        if kth < next_:
            assert set(neigh[i]) == set(sk_neigh[i])
            assert pred[i] == sk_pred[i]
        else:
            undecided += 1
    assert undecided > 0  # the data really has ties at the k-th place


def slow_loo_knn(x, y, k, metric):
    """The documented rule with Python loops: sort others by (distance, index), vote."""
    out = []
    for i in range(len(y)):
        d = sorted((exact_distance(x[i], x[j], metric), j) for j in range(len(y)) if j != i)
        out.append(vote([y[j] for _, j in d[:k]]))
    return np.array(out)


@pytest.mark.parametrize("metric", METRICS)
def test_loo_knn_tie_rule_on_exact_data(metric):
    # Distances here are exact in floating point, so the loop reference is unambiguous.
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (60, 2)).astype(float) if metric == "euclidean" \
        else dyadic_points(rng, 60)
    y = rng.integers(0, 4, 60)
    for k in (1, 2, 3, 4, 5):
        np.testing.assert_array_equal(loo_knn_predict(x, y, k=k, metric=metric),
                                      slow_loo_knn(x.tolist(), y.tolist(), k, metric))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("case", ["below_float32", "huge", "tiny"])
def test_loo_knn_equals_sklearn_where_float32_cannot_decide(metric, case):
    """The float32 search only proposes candidates; float64 decides. Points 1e-5 apart around
    a common centre (float32's rounding is larger than their distances: a float32 product alone
orders them wrongly, its error bound makes them all candidates),
    and values whose squares overflow (1e25) or underflow (1e-25) float32: the predictions
    are still scikit-learn's leave-one-out, computed in float64."""
    rng = np.random.default_rng(21)
    n, d = 60, 16
    if case == "below_float32":
        x = rng.standard_normal(d) + 1e-5 * rng.standard_normal((n, d))
    else:
        x = rng.standard_normal((n, d)) * (1e25 if case == "huge" else 1e-25)
    y = rng.integers(0, 5, n)
    if case == "below_float32":
        # A float32 product alone orders these neighbours wrongly for some rows.
        x32 = x.astype(np.float32)
        approx = (x32 * x32).sum(axis=1)[None, :] - 2.0 * x32 @ x32.T
        np.fill_diagonal(approx, np.inf)
        exact = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
        np.fill_diagonal(exact, np.inf)
        assert (approx.argmin(axis=1) != exact.argmin(axis=1)).any()
    for k in (1, 3):
        np.testing.assert_array_equal(loo_knn_predict(x, y, k=k, metric=metric),
                                      sklearn_loo(x, y, k, metric))


def test_duplicates_are_each_others_neighbours_in_index_order():
    x = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    neigh = loo_knn_neighbors(x, k=2)
    np.testing.assert_array_equal(neigh[0], [2, 3])
    np.testing.assert_array_equal(neigh[3], [0, 2])
    np.testing.assert_array_equal(neigh[1, :1], [4])
    # Vote tie between labels 7 and 3 among two duplicates -> the smaller label.
    y = np.array([1, 9, 7, 3, 9])
    assert loo_knn_predict(x, y, k=2)[0] == 3


@pytest.mark.parametrize("metric", METRICS)
def test_loo_knn_blocks_give_the_same_answer(metric):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (97, 3)).astype(float)
    y = rng.integers(0, 5, 97)
    whole = loo_knn_neighbors(x, k=4, metric=metric)
    np.testing.assert_array_equal(loo_knn_neighbors(x, k=4, metric=metric, block_rows=7), whole)
    np.testing.assert_array_equal(loo_knn_predict(x, y, k=4, metric=metric, block_rows=10),
                                  loo_knn_predict(x, y, k=4, metric=metric))


def brute_force_group_loo(x, y, groups, k, metric):
    """Leave-one-group-out by brute force: for each i, scikit-learn's brute kNN fitted on the
    examples OUTSIDE i's group, asked for example i."""
    pred = np.empty(len(y), dtype=y.dtype)
    for i in range(len(y)):
        others = np.flatnonzero(groups != groups[i])
        clf = KNeighborsClassifier(n_neighbors=k, algorithm="brute", metric=metric)
        clf.fit(x[others], y[others])
        pred[i] = clf.predict(x[i:i + 1])[0]
    return pred


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [1, 3])
def test_loo_knn_leaves_the_whole_group_out(metric, k):
    """Exact copies (a group) never vote for each other: the answer equals a brute-force
    reference fitted without the example's group, and differs from plain leave-one-out."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal((40, 6))
    y_base = rng.integers(0, 4, 40)
    copies = rng.choice(40, 25, replace=False)  # 25 of them appear twice, 5 three times
    triples = copies[:5]
    x = np.concatenate([base, base[copies], base[triples]])
    y = np.concatenate([y_base, y_base[copies], y_base[triples]])
    groups = np.concatenate([np.arange(40), copies, triples]) * 7 + 3  # any integer ids
    order = rng.permutation(len(y))  # copies scattered through the array
    x, y, groups = x[order], y[order], groups[order]
    got = loo_knn_predict(x, y, k=k, metric=metric, groups=groups)
    np.testing.assert_array_equal(got, brute_force_group_loo(x, y, groups, k, metric))
    np.testing.assert_array_equal(
        loo_knn_predict(x, y, k=k, metric=metric, groups=groups, block_rows=9), got)
    neigh = loo_knn_neighbors(x, k=k, metric=metric, groups=groups)
    assert not (groups[neigh] == groups[:, None]).any()
    # Plain leave-one-out lets a copy find itself: every copied example is "right".
    plain = loo_knn_accuracy(x, y, k=1, metric=metric)
    assert plain > loo_knn_accuracy(x, y, k=1, metric=metric, groups=groups)
    # Every id different = no groups.
    np.testing.assert_array_equal(
        loo_knn_predict(x, y, k=k, metric=metric, groups=np.arange(len(y))),
        loo_knn_predict(x, y, k=k, metric=metric))


def test_loo_knn_groups_errors():
    x = np.arange(12, dtype=float).reshape(6, 2)
    y = np.array([0, 0, 1, 1, 0, 1])
    with pytest.raises(DataError, match="one integer per example"):
        loo_knn_predict(x, y, groups=[0, 1])
    with pytest.raises(DataError, match="outside each example's group"):
        loo_knn_predict(x, y, k=2, groups=[0, 0, 0, 0, 0, 1])


def test_loo_knn_arbitrary_labels_and_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4))
    y = rng.integers(0, 3, 30)
    shifted = loo_knn_predict(x, y * 10 - 5, k=3)
    np.testing.assert_array_equal(shifted, loo_knn_predict(x, y, k=3) * 10 - 5)
    with pytest.raises(DataError, match="at least 31"):
        loo_knn_predict(x, y, k=30)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        loo_knn_predict(bad, y)
    with pytest.raises(ValueError, match="unknown metric"):
        loo_knn_predict(x, y, metric="manhattan")
    with pytest.raises(DataError, match="labels must lie"):
        loo_knn_predict(x, y, num_classes=2)


# ---------------------------------------------------------------------------------------------
# LogME: slow reference with the D x D matrices of the evidence
# ---------------------------------------------------------------------------------------------

def slow_logme(f, y, num_classes):
    """Evidence of Bayesian linear regression per class, with A = alpha I + beta F^T F
    inverted and its determinant taken directly; same fixed-point updates and stopping rule."""
    f = np.asarray(f, dtype=np.float64)
    n, d = f.shape
    ftf = f.T @ f
    out = []
    for c in range(num_classes):
        t_ = (y == c).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            a_inv = np.linalg.inv(alpha * np.eye(d) + beta * ftf)
            m = beta * a_inv @ f.T @ t_
            gamma = d - alpha * np.trace(a_inv)
            m2 = float(m @ m)
            res2 = float(np.sum((t_ - f @ m) ** 2))
            old = alpha / beta
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - old) / old <= 1e-3:
                break
        sign, logdet = np.linalg.slogdet(alpha * np.eye(d) + beta * ftf)
        assert sign > 0
        ev = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * logdet
              - beta / 2 * res2 - alpha / 2 * m2 - n / 2 * np.log(2 * np.pi))
        out.append(ev / n)
    return float(np.mean(out))


def blobs(rng, n, d, c, spread):
    y = rng.integers(0, c, n)
    return rng.standard_normal((c, d))[y] * spread + rng.standard_normal((n, d)), y


@pytest.mark.parametrize("n,d,c", [(200, 16, 4), (120, 30, 7), (40, 64, 3), (25, 25, 5)])
def test_logme_matches_slow_reference(n, d, c):
    rng = np.random.default_rng(n + d)
    f, y = blobs(rng, n, d, c, spread=1.5)
    assert logme(f, y, c) == pytest.approx(slow_logme(f, y, c), rel=1e-6)


def test_logme_rank_deficient_features():
    rng = np.random.default_rng(2)
    f, y = blobs(rng, 150, 10, 3, spread=1.0)
    f = np.concatenate([f, f[:, :4] * 2.0, np.zeros((150, 3))], axis=1)  # rank 10 of 17
    assert logme(f, y, 3) == pytest.approx(slow_logme(f, y, 3), rel=1e-6)


def test_logme_and_hscore_prefer_separable_features():
    rng = np.random.default_rng(4)
    f, y = blobs(rng, 300, 20, 5, spread=3.0)
    noise = rng.standard_normal((300, 20))
    assert logme(f, y, 5) > logme(noise, y, 5) + 0.3
    assert hscore(f, y, 5) > hscore(noise, y, 5) + 1.0


# ---------------------------------------------------------------------------------------------
# H-score: loop reference with an explicit pseudo-inverse
# ---------------------------------------------------------------------------------------------

def slow_hscore(f, y, rcond=1e-10):
    f = np.asarray(f, dtype=np.float64)
    n, d = f.shape
    mean = f.mean(axis=0)
    cov_f = np.zeros((d, d))
    for row in f:
        cov_f += np.outer(row - mean, row - mean)
    cov_f /= n - 1
    g = np.zeros_like(f)
    for c in set(y.tolist()):
        g[y == c] = f[y == c].mean(axis=0)  # each example replaced by its class mean
    cov_g = np.zeros((d, d))
    for row in g:
        cov_g += np.outer(row - mean, row - mean)
    cov_g /= n - 1
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond) @ cov_g))


@pytest.mark.parametrize("n,d,c", [(200, 12, 4), (90, 30, 9), (30, 50, 3)])
def test_hscore_matches_slow_reference(n, d, c):
    rng = np.random.default_rng(n)
    f, y = blobs(rng, n, d, c, spread=1.0)
    assert hscore(f, y, c) == pytest.approx(slow_hscore(f, y), rel=1e-6)


def test_hscore_with_a_constant_and_a_copied_feature():
    rng = np.random.default_rng(8)
    f, y = blobs(rng, 100, 6, 3, spread=1.0)
    f = np.concatenate([f, np.ones((100, 1)), f[:, :1]], axis=1)  # singular covariance
    assert hscore(f, y) == pytest.approx(slow_hscore(f, y), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Selection policies
# ---------------------------------------------------------------------------------------------

def test_rank_order_and_top_k_break_ties_by_name():
    scores = {"b": 0.5, "a": 0.5, "c": 0.7, "d": float("nan"), "e": 0.1}
    assert rank_order(scores) == ["c", "a", "b", "e", "d"]
    assert select_top_k(scores, 2) == ["c", "a"]
    assert select_top_k(scores, 10) == ["c", "a", "b", "e", "d"]
    assert rank_order(list(scores.items())) == rank_order(scores)  # (name, score) pairs too
    with pytest.raises(ValueError):
        select_top_k(scores, 0)


def test_threshold_is_relative_not_absolute():
    # tau = 2 % of 0.5 is 0.01: 0.485 is within 0.02 (absolute) of the best but not kept.
    scores = {"a": 0.50, "b": 0.495, "c": 0.485, "d": 0.48}
    assert select_threshold(scores, tau=0.02) == ["a", "b"]
    # At 0.9 the relative band (0.018) is narrower than 0.02: 0.9 * 0.98 = 0.882 keeps 0.885
    # and drops 0.88, which an absolute 0.02 would keep.
    high = {"a": 0.9, "b": 0.885, "c": 0.88}
    assert select_threshold(high, tau=0.02) == ["a", "b"]
    # Negative scores (LogME): best - tau * |best|.
    neg = {"a": -1.0, "b": -1.01, "c": -1.03}
    assert select_threshold(neg, tau=0.02) == ["a", "b"]


def test_threshold_respects_max_k_and_name_order():
    scores = {f"m{i:02d}": 0.8 for i in range(20)}
    scores["best"] = 0.81
    kept = select_threshold(scores, tau=0.02, max_k=15)
    assert kept == ["best"] + [f"m{i:02d}" for i in range(14)]
    assert select_threshold(scores, tau=0.0) == ["best"]


def test_majority_vote_ties_go_to_the_smallest_label():
    votes = np.array([[0, 1, 2, 5], [1, 1, 0, 5], [2, 0, 0, 3]])
    np.testing.assert_array_equal(majority_vote(votes), [0, 1, 0, 5])
    np.testing.assert_array_equal(majority_vote(votes[:2]), [0, 1, 0, 5])


def test_greedy_knn_prefers_a_complementary_module():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    # A: wrong on examples 0, 1 (says 1)                         -> 0.8, the best alone
    # R: A's errors plus example 2: redundant with A              -> 0.7
    # B: right on 0, 1 but says 2 on examples 4-7                 -> 0.6
    # Vote of {A, R}: 0, 1 wrong (both 1); 2: A=0, R=1 tie -> 0 right  -> 0.8, no gain.
    # Vote of {A, B}: 0, 1: 1 vs 0 tie -> 0 right; 4-7: 1 vs 2 tie -> 1 right -> 1.0.
    # Then {A, B, R}: 0, 1 outvoted 2:1 -> wrong -> 0.8 < 1.0: stop.
    a = np.array([1, 1, 0, 0, 1, 1, 1, 1, 1, 1])
    r = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 1])
    b = np.array([0, 0, 0, 0, 2, 2, 2, 2, 1, 1])
    preds = {"a_best": a, "r_redundant": r, "b_complement": b}
    acc = {n: float(np.mean(p == y)) for n, p in preds.items()}
    assert select_top_k(acc, 2) == ["a_best", "r_redundant"]
    assert select_greedy_knn(preds, y, k_max=15) == ["a_best", "b_complement"]
    assert select_greedy_knn(preds, y, k_max=1) == ["a_best"]


def test_greedy_knn_ties_by_name_and_stops_without_gain():
    y = np.array([0, 1, 2, 0])
    same = np.array([0, 1, 2, 1])
    preds = {"z": same, "m": same.copy(), "k": same.copy()}
    # All equal: the first name starts; copies never improve the vote.
    assert select_greedy_knn(preds, y) == ["k"]
