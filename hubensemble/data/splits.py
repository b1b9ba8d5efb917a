"""Split policy: per-class split sizes, the seeded stratified split, carving val/test off train."""

from __future__ import annotations

import math

import numpy as np

from hubensemble import options as option_table
from hubensemble.data.loading import LoadOptions
from hubensemble.data.task import Split, _stack_or_list  # noqa: F401 - re-exported
from hubensemble.errors import DataError
from hubensemble.lockwords import option_word

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
                     seed: int, groups: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test), each int64, sorted and disjoint, drawn per class with
    one RNG (numpy default_rng(seed)); sizes per class from `split_counts`.

    `labels`: [N] integer class per example. `groups` (int [N], e.g. `Task.groups`): examples
    with the same id (exact duplicates) always land in the same split. A group counts as one
    unit of the class of its first example, so sizes per class count distinct images; without
    duplicates (every id different) the split is the one drawn without `groups`.
    Raises DataError when a fraction is outside [0, 1) or val_fraction + test_fraction >= 1.
    """
    _check_fractions(val_fraction, test_fraction)
    labels = np.asarray(labels)
    if groups is None:
        groups = np.arange(len(labels))
    groups = np.asarray(groups)
    # The first example of each group stands for the group; the others follow it.
    _, first = np.unique(groups, return_index=True)
    is_first = np.zeros(len(labels), bool)
    is_first[first] = True
    members = {}
    for i, g in enumerate(groups.tolist()):
        members.setdefault(g, []).append(i)
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero((labels == c) & is_first))
        n_train, n_val, _ = split_counts(len(idx), val_fraction, test_fraction)
        for part, units in ((1, idx[:n_val]), (2, idx[n_val:len(idx) - n_train]),
                            (0, idx[len(idx) - n_train:])):
            parts[part].append(np.array([m for u in units.tolist()
                                         for m in members[groups[u]]], np.int64))
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64)
                 for p in parts)


def unreached(train: Split, want_val: bool, want_test: bool, options: LoadOptions,
              own: dict[str, str]) -> list[str]:
    """The clauses, for a task's source, of the splits a carve off `train` is asked for (the
    split wanted and its fraction above 0) that no class reaches (`split_counts` gives every
    class none: each has too few distinct images), e.g. "a test fraction of 0.2 carved no
    test example: a class gives the test split an image from its 4th distinct one (2 stay
    for training, and validation takes 1 first), and the classes here have at most 3: add
    images, or give the data a test/ folder"; [] when every split asked for is reached.

    `own`: {"val", "test"}: the data's own way to bring that split ("a test/ folder").
    Computed before `_carve` (on `train.labels` and its exact-duplicate groups, as
    `stratified_split` counts a class). Such a split was left out of the task without a
    word: a folder of 100 classes of 3 images had no test split, its source said "test 0.2
    of each class split off", and fit's closing advice, a test fraction, could not give one.
    """
    vf = options.val_fraction if want_val else 0.0
    tef = options.test_fraction if want_test else 0.0
    if not (vf or tef) or not len(train):
        return []
    from hubensemble.data.duplicates import group_ids

    labels = np.asarray(train.labels)
    _, first = np.unique(group_ids(train.pixel_keys()), return_index=True)
    sizes = np.bincount(labels[first])
    most = int(sizes.max())
    out = []
    for i, (split, word, f) in enumerate((("val", "validation", vf), ("test", "test", tef)), 1):
        if f <= 0 or any(split_counts(int(n), vf, tef)[i] for n in sizes if n):
            continue
        need = next((n for n in range(1, 1000) if split_counts(n, vf, tef)[i]), None)
        if need is None:  # fractions the check refuses; nothing to explain
            continue
        first_val = split == "test" and vf > 0 and split_counts(need, vf, tef)[1]
        out.append(f"a {split} fraction of {f:g} carved no {word} example: a class gives the "
                   f"{word} split an image from its {_nth(need)} distinct one "
                   f"({MIN_TRAIN_PER_CLASS} stay for training"
                   + (", and validation takes 1 first" if first_val else "")
                   + f"), and the classes here have at most {most}: add images, or give the "
                   f"data {own[split]}")
    return out


def _nth(n: int) -> str:
    """1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st."""
    end = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{end}"


def _check_fractions(val_fraction, test_fraction):
    """DataError unless both fractions are numbers in [0, 1) and leave some training data."""
    # The caller's words (`fraction_word`): the command line was told "val_fraction +
    # test_fraction (--val-fraction, --test-fraction; …)", keywords it never typed.
    val, test = fraction_word("val"), fraction_word("test")
    for what, f in ((val, val_fraction), (test, test_fraction)):
        if isinstance(f, bool) or not isinstance(f, (int, float, np.number)) or not 0.0 <= f < 1.0:
            raise DataError(f"{what} must be a number in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"{val} + {test} (0.2 each by default) must leave some training "
                        f"data, got {val_fraction} + {test_fraction}; lower one, or set the "
                        f"other to 0 (no such split carved)")


def fraction_word(split: str) -> str:
    """The fraction option of `split` ("val", "test") in the caller's words
    (`lockwords.option_word`): "--val-fraction" on the command line, "val_fraction" from
    Python."""
    return option_word(f"--{split}-fraction", f"{split}_fraction")


def _take(images, idx):
    """images[idx] for an array or a list of images."""
    if isinstance(images, np.ndarray):
        return images[idx]
    return _stack_or_list([images[i] for i in idx])


def _make_split(images, labels, paths=None, *, owned: bool = False) -> Split:
    """A Split of uint8 images (stacked when they share a shape), int64 labels and, for
    files, their paths. `owned`: `images` is a list the caller gives up, emptied while its
    images are copied into the stack, so that the list and the stack are never both held
    (a folder of 200 photos: 0.84 GB less at the peak of loading). They are copied from the
    last: each image freed is then the newest on the allocator's heap, which gives it back
    to the system; freed from the first, every one was kept until the end (1,500 JPEGs of
    640 x 480, 1.3 GB of pixels: +2.65 GB peak resident while stacking, +1.34 GB now)."""
    if owned and isinstance(images, list) and images and len({im.shape for im in images}) == 1:
        stacked = np.empty((len(images),) + images[0].shape, images[0].dtype)
        for i in reversed(range(len(images))):
            stacked[i] = images[i]
            images[i] = None  # freed now, not when the caller's list goes
        images.clear()
        images = stacked
    if not isinstance(images, np.ndarray):
        images = _stack_or_list(list(images))
    return Split(images=images, labels=np.asarray(labels, dtype=np.int64),
                 paths=list(paths) if paths is not None else None)


def _carve(train: Split, want_val: bool, want_test: bool, options: LoadOptions, *,
           owned: bool = False):
    """Stratified, seeded val/test split off `train` (only the parts asked for); exact
    duplicates stay together (their pixel digests are the groups). `owned`: the caller gives
    `train` up (the folder loader's): stacked images are reordered in place and the splits
    are views of that one array (`_partition_in_place`), where taking each split copied
    them, so the folder's images were held twice at the peak of loading (60 photos of one
    size: 240 MB of pixels, +741 MB peak resident)."""
    vf = options.val_fraction if want_val else 0.0
    tef = options.test_fraction if want_test else 0.0
    _check_fractions(vf, tef)
    if not (vf or tef):
        return train, None, None
    from hubensemble.data.duplicates import group_ids

    tr, va, te = stratified_split(train.labels, vf, tef, options.seed,
                                  groups=group_ids(train.pixel_keys()))

    if owned and isinstance(train.images, np.ndarray) and \
            len(tr) + len(va) + len(te) == len(train):
        return _partition_in_place(train, [tr, va, te])

    def pick(idx):  # a split that no class reached is absent, not empty
        return train.subset(idx) if len(idx) else None

    return pick(tr), pick(va), pick(te)


def _permute_in_place(images: np.ndarray, order) -> None:
    """images[j] = the old images[order[j]] for every j (`order` a permutation), in place,
    cycle by cycle: one image of extra memory."""
    done = np.zeros(len(order), bool)
    for start in range(len(order)):
        if done[start]:
            continue
        done[start] = True
        if order[start] == start:
            continue
        held, j = images[start].copy(), start
        while order[j] != start:
            images[j] = images[order[j]]
            j = int(order[j])
            done[j] = True
        images[j] = held


def restore_order(split: Split) -> None:
    """Puts back the images of a `split` that `_carve(…, owned=True)` reordered in place (its
    labels and paths never moved), when the caller keeps it after all; nothing for a split
    that was not reordered."""
    order = getattr(split, "_moved", None)
    if order is not None:
        _permute_in_place(split.images, np.argsort(order))
        split._moved = None


def _partition_in_place(split: Split, parts) -> list[Split | None]:
    """`split.subset(idx)` of each index array of `parts` (disjoint, covering the split),
    without copying the stacked images: they are put in the parts' order in place, one image
    at a time (cycle by cycle: one image of extra memory), and each part is a view of its
    run of the array; None for an empty part. `split` is given up: its images are
    reordered."""
    order = np.concatenate([np.asarray(p, np.int64) for p in parts])
    keys = split.pixel_keys()  # computed before the pixels move
    images = split.images
    _permute_in_place(images, order)
    split._moved = order  # what `restore_order` undoes
    out, lo = [], 0
    for idx in parts:
        idx = np.asarray(idx, np.int64)
        if not len(idx):
            out.append(None)
            continue
        part = Split(images=images[lo:lo + len(idx)],
                     labels=np.asarray(split.labels, np.int64)[idx],
                     paths=[split.paths[i] for i in idx] if split.paths is not None else None)
        part._keys = [keys[i] for i in idx]
        out.append(part)
        lo += len(idx)
    return out
