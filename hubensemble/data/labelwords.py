"""What a label array holds that is no class index, in words: one wording for every way
labels arrive (an npz, a `Split` made in Python, a tfds split, a `Task`'s range check). The
non-integer labels' words are `data.names.non_integer_labels`."""

from __future__ import annotations

import numpy as np

from hubensemble.text import counted


def negative_labels(y) -> str | None:
    """Words for the negative labels of `y` (a 1-D integer array): None when there is none,
    else ``"2 labels with value [-1] (the first at index 3); class indices are 0 or
    more: … drop those examples (images and labels: keep = y >= 0)"``: the count, the first
    5 values, the first index in `y`, and the way on (-1 often marks an unlabelled example).
    Pure."""
    y = np.asarray(y)
    neg = y < 0
    if not neg.any():
        return None
    values, many = sorted(set(y[neg].tolist())), int(neg.sum())
    return (f"{counted(many, 'label')} with {'value' if len(values) == 1 else 'values'} "
            f"{values[:5]} ({'the first at' if many > 1 else 'at'} index "
            f"{int(np.argmax(neg))}); class indices are 0 or more: a negative label (-1 often "
            f"marks an unlabelled example) has no class to learn, so drop "
            f"{'those examples' if many > 1 else 'that example'} "
            f"(images and labels: keep = y >= 0)")
