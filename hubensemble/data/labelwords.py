"""What a label array holds that is no class index, in words: one wording for every way
labels arrive (an npz, a `Split` made in Python, a tfds split, a `Task`'s range check). The
non-integer labels' words are `data.names.non_integer_labels`."""

from __future__ import annotations

import numpy as np


def negative_labels(y) -> str | None:
    """Words for the negative labels of `y` (a 1-D integer array): None when there is none,
    else ``"2 label(s) with value(s) [-1] (the first at index 3); class indices are 0 or
    more: … drop those examples (images and labels: keep = y >= 0)"``: the count, the first
    5 values, the first index in `y`, and the way on (-1 often marks an unlabelled example).
    Pure."""
    y = np.asarray(y)
    neg = y < 0
    if not neg.any():
        return None
    values = sorted(set(y[neg].tolist()))
    return (f"{int(neg.sum())} label(s) with value(s) {values[:5]} (the first at index "
            f"{int(np.argmax(neg))}); class indices are 0 or more: a negative label (-1 often "
            f"marks an unlabelled example) has no class to learn, so drop those examples "
            f"(images and labels: keep = y >= 0)")
