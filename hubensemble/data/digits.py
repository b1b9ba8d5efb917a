"""The `sklearn:digits` loader: scikit-learn's bundled 1,797 8x8 handwritten digits, no download."""

from __future__ import annotations

import numpy as np

from hubensemble.data.decode import to_rgb_uint8
from hubensemble.data.loading import LoadOptions
from hubensemble.data.task import Split, Task
from hubensemble.errors import DataError


def check_sklearn_name(rest: str) -> None:
    """Raises DataError unless sklearn:REST names the one bundled data set, digits."""
    if rest != "digits":
        raise DataError(f"sklearn:{rest} is not available; the only bundled data set is "
                        f"sklearn:digits")


def fixed_splits(rest: str) -> dict[str, str]:
    """{split: why}: sklearn:digits' val and test are fixed (800 / 200 / 797); no fraction
    sizes them."""
    why = "sklearn:digits has fixed splits (800 / 200 / 797, drawn by the data seed)"
    return {"val": why, "test": why}


#: Examples of each digit 0-9 in scikit-learn's copy of the data (load_digits().target, 1,797
#: in all): fixed with the data set, so the split's counts are bounded without loading it.
CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)
#: Training examples of every seed's split (`_splits`).
TRAIN_SIZE = 800


def fewest_train() -> int:
    """The fewest training examples a digit has in the split of any data seed (77): a
    stratified split gives each class the floor of its share of TRAIN_SIZE, or one more
    (scikit-learn's `_approximate_mode`), so `train_labels` (a 1-3 s import) is needed only
    for a --min-per-class above it."""
    return min(TRAIN_SIZE * c // sum(CLASS_COUNTS) for c in CLASS_COUNTS)


def _splits(y, seed):
    """(train, val, test) index arrays of the digits' labels `y`: 800 / 200 / 797, each
    stratified, drawn by the data seed."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, rest_idx = train_test_split(idx, train_size=800, stratify=y, random_state=seed)
    va, te = train_test_split(rest_idx, train_size=200, stratify=y[rest_idx],
                              random_state=seed)
    return tr, va, te


def train_labels(rest: str, seed: int) -> np.ndarray:
    """The int64 [800] labels (0-9) of sklearn:REST's training split with data seed `seed`,
    as `_load_sklearn` draws it, without its images (no TensorFlow: the command line's
    counts, `dataargs.listed_counts`); DataError for a name other than digits."""
    check_sklearn_name(rest)
    from sklearn.datasets import load_digits

    y = load_digits().target.astype(np.int64)
    return y[_splits(y, seed)[0]]


def _load_sklearn(rest: str, options: LoadOptions) -> Task:
    """sklearn:digits — scikit-learn's bundled 8x8 digits: 800 / 200 / 797, stratified."""
    check_sklearn_name(rest)
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 grey levels → 0..255, half up (the values are exact multiples, v * 255 / 16).
    x = np.floor(d.images.astype(np.float64) * 255.0 / 16.0 + 0.5).astype(np.uint8)
    x = to_rgb_uint8(x[..., None])
    y = d.target.astype(np.int64)
    tr, va, te = _splits(y, options.seed)
    pick = lambda i: Split(images=x[i], labels=y[i])  # noqa: E731
    return Task(name="digits",
                source=f"sklearn:digits (scikit-learn's 1,797 8x8 handwritten digits; "
                       f"800 / 200 / 797 stratified, seed {options.seed})",
                class_names=[str(i) for i in range(10)], train=pick(tr), val=pick(va),
                test=pick(te), flip=False)
