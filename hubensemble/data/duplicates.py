"""Exact duplicates: examples with the same decoded pixels, whatever file or format they came from.

Two examples are duplicates when their uint8 RGB pixels (and so their shapes) are equal: a PNG
and a BMP of the same picture are, a re-compressed JPEG is not. Every loader's task is
checked (`Task.duplicates`); the groups keep a copy out of another split when a split is
carved (`splits.stratified_split(groups=...)`), let leave-one-out kNN leave a whole group
out (`Task.groups`), and `drop_duplicates` keeps one copy (`--dedupe`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from hubensemble.formats import SPLITS

#: Groups of copies named in a report (the rest are counted).
REPORTED_GROUPS = 5


def pixel_key(image) -> bytes:
    """A 16-byte digest of one image's shape and uint8 pixels (blake2b): equal pixels, equal
    keys; any other image, another key (collisions aside, 2^-128)."""
    a = np.ascontiguousarray(image, dtype=np.uint8)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(a.shape, dtype="<i8").tobytes())
    h.update(a.tobytes())
    return h.digest()


def pixel_keys(images) -> list[bytes]:
    """`pixel_key` of each image of an array [N, H, W, 3] or a list of [H, W, 3]."""
    return [pixel_key(im) for im in images]


def group_ids(keys) -> np.ndarray:
    """int64 [N]: one id per distinct key, numbered 0, 1, ... in order of first appearance."""
    ids: dict = {}
    return np.array([ids.setdefault(k, len(ids)) for k in keys], np.int64)


def first_copies(keys) -> np.ndarray:
    """bool [N]: True for the first example of each key (the copy `--dedupe` keeps)."""
    seen: set = set()
    keep = np.zeros(len(keys), bool)
    for i, k in enumerate(keys):
        if k not in seen:
            seen.add(k)
            keep[i] = True
    return keep


def duplicate_report(task) -> dict:
    """What `Task.duplicates` says (JSON-able; see its docstring)."""
    present = [s for s in SPLITS if getattr(task, s) is not None]
    keys = {s: getattr(task, s).pixel_keys() for s in present}
    groups: dict[bytes, list] = {}
    for s in present:
        labels = getattr(task, s).labels
        for i, k in enumerate(keys[s]):
            groups.setdefault(k, []).append((s, i, int(labels[i])))
    multi = [g for g in groups.values() if len(g) > 1]
    conflicting = [g for g in multi if len({lab for _, _, lab in g}) > 1]
    sets = {s: set(keys[s]) for s in present}
    within = {s: len(keys[s]) - len(sets[s]) for s in present}

    def copies_in(a, b):  # examples of split a whose pixels are also in split b
        if a not in sets or b not in sets:
            return 0
        return sum(1 for k in keys[a] if k in sets[b])

    return {
        "groups": len(multi),
        "copies": sum(len(g) - 1 for g in multi),
        "within": within,
        "across": {"val_in_train": copies_in("val", "train"),
                   "test_in_train": copies_in("test", "train"),
                   "test_in_val": copies_in("test", "val")},
        "conflicting_labels": len(conflicting),
        "dropped": len(task.dropped),
        "examples": [[task.example_name(s, i) for s, i, _ in g]
                     for g in multi[:REPORTED_GROUPS]],
        # The groups above may all be same-label ones; these name the images in two classes.
        "conflicting_examples": [[f"{task.example_name(s, i)} ({task.class_names[lab]})"
                                  for s, i, lab in g] for g in conflicting[:REPORTED_GROUPS]],
    }


def drop_duplicates(task):
    """The task with only the first copy of each group of duplicates: splits in train, val,
    test order, examples in load order; `task.dropped` lists (dropped example, "a copy of
    KEPT"). A split left empty is dropped (None)."""
    kept: dict[bytes, str] = {}
    dropped = list(task.dropped)
    for s in SPLITS:
        split = getattr(task, s)
        if split is None:
            continue
        keep = np.zeros(len(split), bool)
        for i, k in enumerate(split.pixel_keys()):
            if k in kept:
                dropped.append((task.example_name(s, i), f"a copy of {kept[k]}"))
            else:
                kept[k] = task.example_name(s, i)
                keep[i] = True
        if not keep.all():
            setattr(task, s, split.subset(np.flatnonzero(keep)) if keep.any() else None)
    task.dropped = dropped
    return task
