"""Split policy: per-class split sizes, the seeded stratified split, carving val/test off train."""

from __future__ import annotations

import math

import numpy as np

from hubensemble import options as option_table
from hubensemble.data.loading import LoadOptions
from hubensemble.data.task import Split
from hubensemble.errors import DataError

# Leave-one-out kNN needs a second example of a class to find that class at all (the
# --min-per-class option's default).
MIN_TRAIN_PER_CLASS = option_table.default("min_per_class")


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes for one class of `n` examples.

    Each non-zero fraction takes round-half-up(fraction * n) but at least one example, so
    every class reaches every split; then test, then val, give examples back until train
    keeps MIN_TRAIN_PER_CLASS (leave-one-out kNN needs two), as far as `n` allows.
    The three add up to `n` (>= 0); fractions are expected in [0, 1) (not checked here).
    """
    def want(f):
        return 0 if f <= 0 else max(1, math.floor(f * n + 0.5))

    val, test = want(val_fraction), want(test_fraction)
    while n - val - test < min(MIN_TRAIN_PER_CLASS, n) and (val or test):
        if test >= val:
            test -= 1
        else:
            val -= 1
    return n - val - test, val, test


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test), each int64, sorted and disjoint, drawn per class with
    one RNG (numpy default_rng(seed)); sizes per class from `split_counts`.

    `labels`: [N] integer class per example. Raises DataError when a fraction is outside
    [0, 1) or val_fraction + test_fraction >= 1.
    """
    _check_fractions(val_fraction, test_fraction)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train, n_val, _ = split_counts(len(idx), val_fraction, test_fraction)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:len(idx) - n_train])
        parts[0].append(idx[len(idx) - n_train:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64)
                 for p in parts)


def _check_fractions(val_fraction, test_fraction):
    """DataError unless both fractions are in [0, 1) and leave some training data."""
    for what, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{what} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must leave some training data, got "
                        f"{val_fraction} + {test_fraction}")


def _stack_or_list(images: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """One [N, H, W, 3] array when every image has the same shape, else the list."""
    if images and len({im.shape for im in images}) == 1:
        return np.stack(images)
    return list(images)


def _take(images, idx):
    """images[idx] for an array or a list of images."""
    if isinstance(images, np.ndarray):
        return images[idx]
    return _stack_or_list([images[i] for i in idx])


def _make_split(images, labels) -> Split:
    """A Split of uint8 images (stacked when they share a shape) and int64 labels."""
    if not isinstance(images, np.ndarray):
        images = _stack_or_list(list(images))
    return Split(images=images, labels=np.asarray(labels, dtype=np.int64))


def _carve(train: Split, want_val: bool, want_test: bool, options: LoadOptions):
    """Stratified, seeded val/test split off `train` (only the parts asked for)."""
    vf = options.val_fraction if want_val else 0.0
    tef = options.test_fraction if want_test else 0.0
    _check_fractions(vf, tef)
    if not (vf or tef):
        return train, None, None
    tr, va, te = stratified_split(train.labels, vf, tef, options.seed)

    def pick(idx):  # a split that no class reached is absent, not empty
        return _make_split(_take(train.images, idx), train.labels[idx]) if len(idx) else None

    return pick(tr), pick(va), pick(te)
