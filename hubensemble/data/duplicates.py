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


def copies_in(keys, splits: dict) -> dict:
    """How many of `keys` (pixel keys of the examples scored) are in each of `splits` ({name:
    set of keys}): {"images": in any of them, name: in that one, ...}; a key in two of them
    counts once in "images"."""
    return {"images": sum(1 for k in keys if any(k in seen for seen in splits.values())),
            **{name: sum(1 for k in keys if k in seen) for name, seen in splits.items()}}


def _groups(task) -> tuple[dict, list]:
    """({split: pixel keys}, [groups of 2 or more copies]) of the task's present splits;
    a group is [(split, index, label)] in train, val, test order, then load order."""
    present = task.present_splits()  # evaluate's test set: "test" alone, not train too
    keys = {s: getattr(task, s).pixel_keys() for s in present}
    groups: dict[bytes, list] = {}
    for s in present:
        labels = getattr(task, s).labels
        for i, k in enumerate(keys[s]):
            groups.setdefault(k, []).append((s, i, int(labels[i])))
    return keys, [g for g in groups.values() if len(g) > 1]


def conflict_names(task, group) -> list[tuple[str, str]] | None:
    """(name, class) of each copy of `group` ([(split, index, label)]) when its copies carry
    different labels, else None: the example's name (`Task.example_name`: its file, or
    "split[i]") and its class name, a record that messages format at the edge
    (`text.paths_shown(notes=...)`: "'d/5, x.png' (cat)"; one "name (class)" text quoted
    whole gave no file when pasted). The first copy comes first and the first copy
    labelled otherwise second (then the rest in order), so that the first two, which
    reports show, differ."""
    first = group[0][2]
    other = next((n for n, (_, _, lab) in enumerate(group) if lab != first), None)
    if other is None:
        return None
    ordered = [group[0], group[other]] + [g for n, g in enumerate(group) if n not in (0, other)]
    return [(task.example_name(s, i), task.class_names[lab]) for s, i, lab in ordered]


def duplicate_report(task) -> dict:
    """What `Task.duplicates` says (JSON-able; see its docstring). Groups with different
    labels that `drop_duplicates` reduced to one copy (`Task.dropped_conflicts`) are counted
    and named with those still in the task."""
    keys, multi = _groups(task)
    present = list(keys)
    conflicting = [names for names in (conflict_names(task, g) for g in multi) if names]
    conflicting += [list(map(tuple, names)) for names in task.dropped_conflicts]
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
        # Each test image with a copy in train or val once: the held-out note's count
        # (heldoutwords.test_copies_note; "across" counts one in both in each). Beside
        # "across", whose pairs the data's summary and the report list one by one.
        "test_in_either": sum(1 for k in keys.get("test", ())
                              if k in sets.get("train", ()) or k in sets.get("val", ())),
        "conflicting_labels": len(conflicting),
        "conflicting_dropped": len(task.dropped_conflicts),
        "dropped": len(task.dropped),
        "examples": [[task.example_name(s, i) for s, i, _ in g]
                     for g in multi[:REPORTED_GROUPS]],
        # The groups above may all be same-label ones; these name the images in two classes.
        "conflicting_examples": conflicting[:REPORTED_GROUPS],
    }


def drop_duplicates(task, *, owned: bool = False):
    """The task with only the first copy of each group of duplicates: splits in train, val,
    test order, examples in load order; `task.dropped` lists (dropped example, "a copy of
    KEPT"), with " with another label (L here, K kept)" for a copy whose label differs from
    the kept copy's. The groups whose copies carried different labels are added to
    `task.dropped_conflicts` (as `conflict_names`), so reports still count and name them.
    A split left empty is dropped (None). `owned`: the caller gives `task`'s pixels up (the
    loader's, `load_task`), so a split's kept images are moved to its front in place
    (`_kept_in_place`) instead of copied while the split is held (2x its bytes at the peak)."""
    _, multi = _groups(task)
    conflicts = [names for names in (conflict_names(task, g) for g in multi) if names]
    kept: dict[bytes, tuple[str, int]] = {}
    dropped = list(task.dropped)
    for s in SPLITS:
        split = getattr(task, s)
        if split is None:
            continue
        keep = np.zeros(len(split), bool)
        for i, k in enumerate(split.pixel_keys()):
            label = int(split.labels[i])
            if k in kept:
                name, kept_label = kept[k]
                why = f"a copy of {name}"
                if label != kept_label:
                    why += (f" with another label ({task.class_names[label]} here, "
                            f"{task.class_names[kept_label]} kept)")
                dropped.append((task.example_name(s, i), why))
            else:
                kept[k] = (task.example_name(s, i), label)
                keep[i] = True
        if not keep.all():
            setattr(task, s, None if not keep.any() else
                    _kept_in_place(split, np.flatnonzero(keep)) if owned and _alone(task, s)
                    else split.subset(np.flatnonzero(keep)))
    task.dropped = dropped
    task.dropped_conflicts = list(task.dropped_conflicts) + conflicts
    return task


def _alone(task, name: str) -> bool:
    """Whether split `name`'s images are one writable array that no other split of `task`
    may share (a folder's splits are disjoint runs of one array: they do not; a test set's
    train is its test split: it does)."""
    images = getattr(task, name).images
    return (isinstance(images, np.ndarray) and images.flags.writeable
            and not any(np.may_share_memory(images, getattr(task, s).images) for s in SPLITS
                        if s != name and getattr(task, s) is not None))


def _kept_in_place(split, idx):
    """`split.subset(idx)` for ascending `idx` without a copy of the images: row idx[j] is
    moved to row j (j <= idx[j], so no row is overwritten before it moves) and the result
    is a view of the first len(idx) rows; the dropped copies' rows stay allocated behind it.
    `split` is given up."""
    images, keys = split.images, split.pixel_keys()
    for j, i in enumerate(idx):
        if i != j:
            images[j] = images[i]
    # type(split): data.task imports this module (an import of it here is a cycle).
    out = type(split)(images=images[:len(idx)], labels=np.asarray(split.labels, np.int64)[idx],
                      paths=[split.paths[i] for i in idx] if split.paths is not None else None)
    out._keys = [keys[i] for i in idx]
    return out
