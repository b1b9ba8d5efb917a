"""The task records: `Split` (uint8 RGB images, int64 labels), `Task` (classes, splits, tf.data)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hubensemble.data.labelwords import negative_labels
from hubensemble.data.loading import _visible
# The names of splits and classes and their rules, importable from here as before they moved.
from hubensemble.data.names import (  # noqa: F401 - re-exported
    _SPLIT_ALIASES, SPLIT_NAMES, SPLIT_WORDS, check_class_names, class_name_fault, split_key)
from hubensemble.data.sniff import natural_skips
from hubensemble.data.splitinputs import (  # noqa: F401 (task's names too, as before)
    _held, _split_inputs, _split_labels)
# How many skipped files the summary names, importable from here as before its words moved.
from hubensemble.data.taskwords import SKIPS_NAMED  # noqa: F401 - re-exported
from hubensemble.errors import DataError, checks_keywords
from hubensemble.lockwords import option_word
from hubensemble.recordargs import requires
from hubensemble.refused import described
from hubensemble.text import counted

ScoredSplit = Literal["train", "val", "validation", "valid", "test"]  # `Task.summary`'s


def _stack_or_list(images: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """One [N, H, W, 3] array when every image has the same shape, else the list."""
    if images and len({im.shape for im in images}) == 1:
        return np.stack(images)
    return list(images)


@dataclass(eq=False)
class Split:
    """Images (uint8 RGB, values 0..255) and their int64 labels for one split.

    `images` is one uint8 array [N, H, W, 3] when every image has the same size, else a list
    of N uint8 arrays [H_i, W_i, 3]; `labels` is int64 [N] in 0..num_classes-1; `paths`, when
    the examples came from files, the file of each (reports name duplicates by it).

    Made from Python, it takes what npz: takes (docs/data.md, "Conversions of arrays"):
    images [N, H, W] (grey) or [N, H, W, C], C in 1..4, or a list of [H, W] / [H, W, C]
    images, of any dtype `decode.to_rgb_uint8` converts (floats in [0, 1] -> round(v * 255),
    uint16 as 16-bit, grey repeated, alpha composited onto white), so the same pixels give
    the same `Task.fingerprint` whichever way they come; labels [N] or [N, 1] of integer
    class indices. Raises DataError (`_split_inputs`) for what npz: refuses: floats outside
    [0, 1] (e.g. 0..255), 8-bit values in uint16, integers all within 0..1 (a 0/1 mask: pass
    it as bool, 0 / 255) or an alpha that is 0 everywhere (`decode.check_array_values`),
    other dtypes and shapes, non-integer labels, and images, labels and paths of different
    counts; TypeError naming `images` or `labels` for None, a str or a dict.
    """

    images: np.ndarray | list[np.ndarray]  # [N, H, W, 3] when all the same size, else a list
    labels: np.ndarray  # int64 [N]
    paths: list[str] | None = None
    _keys: list | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.images, self.labels = _split_inputs(self.images, self.labels, self.paths)

    def __len__(self) -> int:
        return int(len(self.labels))

    def __repr__(self) -> str:
        # A summary: the dataclass repr printed every image array (a notebook cell of pixels).
        images = self.images
        form = (f"uint8 {list(images.shape)}" if isinstance(images, np.ndarray)
                else f"{len(images)} uint8 arrays of several sizes")
        files = "" if self.paths is None else f", from {counted(len(self.paths), 'file')}"
        return f"Split({counted(len(self), 'example')}, images {form}{files})"

    @property
    def same_size(self) -> bool:
        """True when the images are one [N, H, W, 3] array (all the same size)."""
        return isinstance(self.images, np.ndarray)

    def shapes(self) -> np.ndarray:
        """[N, 2] array of (height, width) per image."""
        if isinstance(self.images, np.ndarray):
            return np.tile(np.array(self.images.shape[1:3], np.int64), (len(self), 1))
        return np.array([im.shape[:2] for im in self.images], np.int64).reshape(-1, 2)

    def pixel_keys(self) -> list[bytes]:
        """One 16-byte digest of each image's pixels (`duplicates.pixel_key`), computed once."""
        if self._keys is None:
            from hubensemble.data.duplicates import pixel_keys

            self._keys = pixel_keys(self.images)
        return self._keys

    def subset(self, idx) -> "Split":
        """The examples at the int indices `idx`, in that order (images stacked when they
        share a shape); paths and pixel digests follow."""
        idx = np.asarray(idx, np.int64)
        if isinstance(self.images, np.ndarray):
            images = self.images[idx]
        else:
            images = _stack_or_list([self.images[i] for i in idx])
        out = Split(images=images, labels=np.asarray(self.labels, np.int64)[idx],
                    paths=[self.paths[i] for i in idx] if self.paths is not None else None)
        if self._keys is not None:
            out._keys = [self._keys[i] for i in idx]
        return out

    def float_images(self) -> np.ndarray:
        """All images as float32 [N, H, W, 3] in [0, 1] (v / 255).

        Raises DataError for a split whose images have different sizes (use Task.dataset
        with image_size to resize them).
        """
        if not isinstance(self.images, np.ndarray):
            sizes = sorted({tuple(s) for s in self.shapes().tolist()})
            raise DataError(
                f"the images have {len(sizes)} different sizes (e.g. {sizes[:3]}), so they do "
                f"not fit one array; use Task.dataset(split, batch_size=..., "
                f"image_size=(h, w)) to resize them on the fly")
        return self.images.astype(np.float32) / np.float32(255.0)


@checks_keywords
@requires("Task(name='mine', source='arrays', class_names=['cat', 'dog'], "
          "train=Split(x_train, y_train))",
          name="a str naming the task", source="a str: where the data came from, for people",
          class_names="a list of str, one per class, label i naming class_names[i]",
          train="a hubensemble.data.Split(images, labels)")
@dataclass(eq=False)
class Task:
    """A downstream classification task: class names and train / val / test splits.

    `train` is always present; `val` and `test` may be None. Labels index `class_names`.
    `synthetic` and `flip` steer augmentation (paper A.3, BiT-HyperRule). What the loader
    did not turn into examples is listed, so nothing vanishes: `skipped` (path, reason) of
    files it could not use, `ignored` the hidden and OS entries it did not read (docs/data.md),
    `dropped` (example, "a copy of ...") of duplicates `--dedupe` removed, and
    `dropped_conflicts` the groups among them whose copies carried different labels (each as
    (name, class) of its copies; `duplicates.conflict_names`); `files` is how many files a
    folder loader looked at (None for array data): files = examples + skipped + dropped.
    `oriented` (path, 2..8) lists the files whose orientation tag (EXIF, or XMP's
    tiff:Orientation: `decode.exif_orientation`) asks viewers to turn or flip them and whose
    pixels are used as stored; `turned` the TIFFs whose tag the decoder applied
    (`decode.TURNED_FORMATS`); `unservable` (path, format) the images the kept decoder
    (Pillow) read, which serve_bytes refuses (`sniff.unservable_note`: TIFF, …); `dark`
    (path, largest value) the 16-bit files whose values all lie below 4096, which decode dark
    (`filepixels.dark_note`); `not_images` the paths of the files in class folders that are
    no image by name or first bytes (`sniff.not_an_image`: a README, a .json sidecar), not
    read (apart from `ignored`, whose visible entries are folders hubensemble made). `shrunk`
    (name, (height, width) as decoded) the images whose shorter side was above 1024 px
    (`sniff.MAX_SHORT_SIDE`) and were shrunk to it, each named by its file, or, for an
    example without one (a tfds data set's), as `example_name` names it at load ("train[3]":
    index 3 of the train split as loaded, as --dedupe's `dropped` names it);
    `shrunk_counts` splits them by split.
    `spec` is the data spec the loaders read it from (`load_task`, `load_test_set`; a
    folder: or npz: path made absolute, `specs.absolute_spec`), None for a Task made in
    Python; run.json and the export's metadata record it ("task" -> "spec").
    Raises DataError for a class name that is empty, only whitespace, starts or ends with
    whitespace or holds a control character (`check_class_names`).

    Made from Python, `name` and `source` must be str, `class_names` a list of str, `train`,
    `val` and `test` `Split`s (val, test or None) and every label must index `class_names`:
    DataError (TypeError for another type, naming the field) at once, with load_task's
    message (`_check_task_splits`), not inside rank's modules later; TypeError naming each
    required field left out and what it takes (`recordargs.requires`).
    """

    name: str
    source: str  # where the data came from, for people
    class_names: list[str]
    train: Split
    val: Split | None = None
    test: Split | None = None
    synthetic: bool = False  # artificial images: no colour augmentation (paper A.3)
    flip: bool = True  # left/right flips keep the label (BiT-HyperRule flip rule)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # hidden / OS entries, not read
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (example, "a copy of ...")
    files: int | None = None  # files looked at by a folder loader
    # groups of copies with different labels that --dedupe reduced to one copy
    dropped_conflicts: list[list[tuple[str, str]]] = field(default_factory=list)
    # (path, orientation 2..8, EXIF or XMP) of files whose tag asks viewers to turn them: used
    # as stored (decode.exif_orientation)
    oriented: list[tuple[str, int]] = field(default_factory=list)
    # (path, orientation 2..8) of TIFFs turned upright by their tag as Pillow loaded them
    turned: list[tuple[str, int]] = field(default_factory=list)
    # (path, format) of images Pillow read, which serve_bytes refuses (TIFF, PPM, …)
    unservable: list[tuple[str, str]] = field(default_factory=list)
    # (path, largest value) of 16-bit files of 12-bit values, which decode dark (0..15)
    dark: list[tuple[str, int]] = field(default_factory=list)
    # paths of files in class folders that are no image by name or first bytes: not read
    not_images: list[str] = field(default_factory=list)
    # (path, or "split[i]" for an example without a file, (h, w) as decoded) of images
    # shrunk to a shorter side of 1024 px
    shrunk: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    # folder loader: {split: {class: {"folder", "files" looked at, "skipped" [(path, reason)],
    # and for train when val/test are carved off it "carve" {split: examples its files would
    # give, every one read}}}} of the class folders read (train/'s, or PATH's; val/'s and
    # test/'s; a test set's as "test"), so a class that skipped files cost examples is named
    class_files: dict[str, dict[str, dict]] = field(default_factory=dict)
    # the splits ("val", "test") the loader carved off train (an npz's val without x_val, a
    # folder's val/test without their folder); None when not known (a Task made in Python, a
    # tfds or sklearn data set): a coverage note's way on then names both ways (`coverage_fix`)
    carved: tuple[str, ...] | None = None
    # the data spec load_task / load_test_set read it from, its path absolute
    # ("folder:/abs/imgs (2)"); None for a Task made in Python. `source` adds "(how)" to it,
    # which cannot be cut off again when a path holds " (" and is gone from the machine
    spec: str | None = None
    # load_task's keywords but spec and label_fn (DataArgs' fields: data_dir, seed, splits,
    # ...) when the Task is what load_task(spec, **load_args) gives again, so a run given it
    # in Python records data a later stage (the command line too) can load; None for a Task
    # made, or relabelled by a label_fn, in Python (`DataArgs.of_task`).
    load_args: dict | None = None
    # True when the loader made the class names from the label indices ("0", "1", …: an npz
    # without class_names, a tfds label that is no ClassLabel); False when they were given,
    # digits too (an npz's class_names=['0', '1', '2']), so a refusal says which
    # (`classmatch.class_index`: "named by label index" was said of names given).
    names_made: bool = False

    def __post_init__(self):
        # A name or source of another type was kept (Task(None, None, …)), class_names=None
        # failed on "'NoneType' object is not iterable" in the name check.
        for key, what, example in (("name", "a str naming the task", "'mine'"),
                                   ("source", "a str: where the data came from, for people",
                                    "'arrays'")):
            if not isinstance(getattr(self, key), str):
                raise TypeError(f"Task {key} must be {what}, got "
                                f"{described(getattr(self, key))}; e.g. {key}={example}")
        names = self.class_names  # a list, tuple, array or pandas Index; not unordered
        if not hasattr(names, "__iter__") or isinstance(names, (dict, set, frozenset)):
            raise TypeError(f"Task class_names must be a list of str, one per class, got "
                            f"{described(self.class_names)}; e.g. class_names=['cat', 'dog']")
        if iter(names) is names:  # an iterator or generator: one pass, taken as a list once
            self.class_names = list(names)  # (the check used it up; len() failed after)
        # Every source of names meets this (a Task made in Python too); the loaders refuse
        # first in their own words (the npz member, the folder).
        check_class_names(self.class_names, what=f"task {self.name!r}: class_names")
        _check_task_splits(self)
        # The summary names the first skipped files, the log the others after them
        # (dataargs.log_skips): in natural order, as a folder shows them (junk_2 before
        # junk_10), not string order's "junk_1, junk_10, junk_11".
        self.skipped = natural_skips(self.skipped)

    def __repr__(self) -> str:
        # A summary, as Split's: the dataclass repr printed every split's pixels and every list.
        splits = ", ".join(f"{n} {len(s)}" for n, s in
                           (("train", self.train), ("val", self.val), ("test", self.test))
                           if s is not None)
        lists = "".join(f", {len(v)} {k}" for k, v in (("skipped", self.skipped),
                        ("ignored", self.ignored), ("dropped", self.dropped)) if v)
        return (f"Task({self.name!r}, {self.num_classes} classes, {splits}{lists}; "
                f"source {self.source!r})")

    @property
    def num_classes(self) -> int:
        """len(class_names)."""
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """Median (height, width) of the training images (the BiT-HyperRule input)."""
        shapes = self.train.shapes()
        return int(np.median(shapes[:, 0])), int(np.median(shapes[:, 1]))

    def shrunk_counts(self) -> dict[str, int]:
        """{split: how many of its examples are images shrunk to a shorter side of 1024 px}
        for the present splits (`shrunk`, matched by path, or for a split without paths by
        its "split[i]" names: a copy --dedupe dropped is in none)."""
        return {s: len(names) for s, names in self._shrunk_names().items()}

    def _shrunk_names(self) -> dict[str, set[str]]:
        """{present split: the names of `shrunk` that are its examples}: a file's by
        `Split.paths`; an example without a file (tfds data) by its load-time name
        "split[i]" (`example_name`), unless --dedupe dropped it (`dropped` names it so)."""
        dropped = {d for d, _ in self.dropped}
        names = [p for p, _ in self.shrunk]
        out = {}
        for s in self.present_splits():
            paths = getattr(self, s).paths
            if paths is not None:
                held = set(paths)
                out[s] = {p for p in names if p in held}
            else:
                out[s] = {p for p in names if p.startswith(f"{s}[") and p.endswith("]")
                          and p[len(s) + 1:-1].isdigit() and p not in dropped}
        return out

    def split(self, name: str) -> Split:
        """The split called `name` (train, val/validation/valid, test).

        Raises DataError for an unknown name or a split this task does not have.
        """
        key = split_key(name)
        got = getattr(self, key)
        if self.test_set_only and key != "test":
            raise DataError(f"{self.source} is one test set, so it has no {key} split; "
                            "evaluate it on the test split "
                            f"({option_word('--split test', 'split=' + repr('test'))}, "
                            "the default)")
        only = self.one_split
        if only not in (None, key):
            raise DataError(f"{self.source} holds its {only} split alone (read so for "
                            f"evaluate), so it has no {key} split here; evaluate its {only} "
                            f"split ({option_word(f'--split {only}', f'split={only!r}')}), "
                            "or read the data whole with load_task(SPEC)")
        if got is None:
            raise DataError(f"task {self.name!r} has no {key} split ({self.source}); "
                            f"splits present: {', '.join(self.present_splits())}")
        return got

    def present_splits(self) -> list[str]:
        """Names of the splits that are not None, in train, val, test order (the `one_split`
        alone for a task that holds one: "test" for a `test_set_only` task)."""
        if self.one_split:
            return [self.one_split]
        return [s for s in SPLIT_NAMES if getattr(self, s) is not None]

    @property
    def test_set_only(self) -> bool:
        """Whether this is a test set standing in as train (`load_test_set` of a folder of
        class folders, or of an npz of x_test / y_test alone): every example is a test
        example, and `split` refuses train and val."""
        return self.train is self.test

    @property
    def one_split(self) -> str | None:
        """"test" or "val" when the task holds that split alone, standing in as train (the
        same `Split`): a `test_set_only` task, or a tfds: data set's val split read alone for
        evaluate (`load_test_set(..., split="val")`: its train split neither read nor held);
        `split` refuses the other names. None for every other task (train alone included)."""
        if self.train is self.test:
            return "test"
        return "val" if self.train is self.val else None

    def example_name(self, split: str, i: int) -> str:
        """How reports name example `i` of `split`: its file when known, else "split[i]"."""
        data = self.split(split)
        if data.paths is not None:
            return data.paths[i]
        return f"{split}[{i}]"

    @functools.cached_property
    def _group_ids(self) -> dict[str, np.ndarray]:
        from hubensemble.data.duplicates import group_ids

        present = self.present_splits()
        ids = group_ids([k for s in present for k in getattr(self, s).pixel_keys()])
        out, start = {}, 0
        for s in present:
            n = len(getattr(self, s))
            out[s] = ids[start:start + n]
            start += n
        return out

    def groups(self, split: str) -> np.ndarray:
        """int64 [N]: the duplicate group of each example of `split`. Examples with equal
        pixels share an id, in any split (ids are numbered over train, val, test in order);
        every other example has an id of its own. Leave-one-out kNN passes the training
        groups as `proxies.loo_knn_predict(..., groups=)`, so a copy never votes for itself."""
        key = _SPLIT_ALIASES.get(split, split)
        self.split(key)  # a DataError for an unknown or missing split
        return self._group_ids[key]

    @property
    def train_groups(self) -> np.ndarray:
        """`groups("train")`: int64 [len(train)], what rank passes to leave-one-out kNN."""
        return self.groups("train")

    @functools.cached_property
    def duplicates(self) -> dict:
        """Exact duplicates (same decoded pixels) in this task, JSON-able:
        "groups" (sets of 2 or more equal images), "copies" (examples beyond the first of
        their group), "within" {split: copies inside that split}, "across" {"val_in_train",
        "test_in_train", "test_in_val": examples of the first split with a copy in the
        second}, "conflicting_labels" (groups whose copies have different labels, those
        --dedupe reduced to one copy included), "conflicting_dropped" (how many of those
        --dedupe reduced), "dropped" (copies --dedupe removed at load), "examples" (up to 5
        groups, each as its examples' names) and "conflicting_examples" (up to 5 groups with
        different labels, each as [name, class] of its copies, the first two labelled
        differently; the summary and the report show "'d/5, x.png' (cat)", the path quoted
        alone)."""
        from hubensemble.data.duplicates import duplicate_report

        return duplicate_report(self)

    def coverage(self) -> dict[str, dict]:
        """{split: {"classes", "covered", "missing": [class names]}} for val and test
        (absent splits are left out): which classes validation and test metrics do not cover
        (`data.coverage.split_coverage`, the one rule ensemble.json and the report use too)."""
        from hubensemble.data.coverage import split_coverage

        return {s: split_coverage(self.class_names, getattr(self, s).labels)
                for s in ("val", "test") if getattr(self, s) is not None}

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over class names, then per split its labels and every image's shape and
        pixels. Independent of how images are held (array or list) and of the process."""
        h = hashlib.sha256(json.dumps(list(self.class_names)).encode("utf-8"))
        for name in SPLIT_NAMES:
            split = getattr(self, name)
            if split is None:
                h.update(f"|{name}:none".encode())
                continue
            for part in _split_bytes(name, split):
                h.update(part)
        return h.hexdigest()

    def split_fingerprints(self, names=None) -> dict[str, dict]:
        """{split: {"examples": n, "fingerprint": sha256 hex}} of each present split (of
        those of `names` when given): the `fingerprint` rule over the class names and that
        split alone, so a split read alone (evaluate's tfds split, `one_split`) is known as
        the same split of the data an export was made on, whose whole fingerprint it cannot
        match (the export's metadata records them: task.splits). Each hashed once, when first
        asked for (not with `fingerprint`: a second hash of every pixel at every load doubled
        its time, 0.29 -> 0.65 s for 150 MB); `evaluate.scored_only` asks for the scored
        split's before it drops the others' pixels."""
        known = self.__dict__.setdefault("_split_digests", {})
        wanted = [s for s in self.present_splits() if names is None or s in names]
        head = json.dumps(list(self.class_names)).encode("utf-8")
        for s in wanted:
            if s not in known:
                h = hashlib.sha256(head)
                for part in _split_bytes(s, getattr(self, s)):
                    h.update(part)
                known[s] = {"examples": len(getattr(self, s)), "fingerprint": h.hexdigest()}
        return {s: dict(known[s]) for s in wanted}

    def dataset(self, split: str, *, batch_size: int,
                image_size: tuple[int, int] | int | None = None, shuffle: bool = False,
                seed: int = 0, repeat: bool = False, cache: bool = True, uint8: bool = False):
        """A tf.data.Dataset of (float32 [B, h, w, 3] in [0, 1], int64 [B]) batches.

        Same-size images are resized a batch at a time to `image_size` with
        `augment.resize` (antialiased bilinear), images of different sizes one by one;
        without `image_size` they must already share one size.
        With `repeat` the stream is endless and every batch is full; without it the last batch
        may be short. Shuffling is seeded, so the order is the same in every run with the same
        seed, and every new iterator of the dataset starts from the same first pass
        (`streams.passes`). tf.data's autotuner is off for this pipeline and whatever is built
        on it. The stream reads the split's images as it goes, a batch at a time: it holds no
        copy of them (`streams.split_stream`). With `uint8` (same-size images, no
        `image_size`) the batches are the held uint8 pixels [B, H, W, 3], a quarter of the
        float32 bytes: `augment.train_preprocess` converts them an image at a time.
        Imports TensorFlow.

        Raises DataError for an unknown or missing split, batch_size < 1, a non-positive
        image_size, images of different sizes without image_size, or `uint8` with images of
        different sizes or an image_size to resize to.
        """
        data = self.split(split)
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if image_size is not None:
            image_size = (int(image_size[0]), int(image_size[1]))
            if min(image_size) < 1:
                raise DataError(f"image_size must be positive, got {image_size}")
        if not data.same_size and image_size is None:
            raise DataError(
                f"the {split} images of task {self.name!r} have different sizes; pass "
                f"image_size=(h, w) (e.g. the median training size {self.image_size})")
        if data.same_size and image_size == tuple(data.images.shape[1:3]):
            image_size = None  # already that size: skip a no-op resize
        if uint8 and not (data.same_size and image_size is None):
            raise DataError("uint8=True streams the held pixels of same-size images as they "
                            "are: pass no image_size (or the images' own size)")

        from hubensemble.data.streams import split_stream

        return split_stream(data, batch_size=batch_size, image_size=image_size,
                            shuffle=shuffle, seed=seed, repeat=repeat, cache=cache,
                            uint8=bool(uint8))

    def summary(self, *, skipped_in: str | None = None,
                scored: ScoredSplit | None = None) -> str:
        """One paragraph for people: where from, counts per split, classes, size, skips.

        It names 3 skipped files; `skipped_in` says where the caller keeps the whole list, as
        the clause after "and N more, " (`formats.skipped_list`: "all listed in RUN/run.json
        (data.task.skipped)"), so that a long list is not lost.

        `scored`, the caller's purpose: None (fit, rank): the class notes speak of each split's
        stage (kNN ranking and fine-tuning, ensemble selection, test metrics); a split (train,
        val/validation/valid, test) the caller scores alone (evaluate): the notes speak of it
        only, what is measured on how many examples and how rough (`coverage.scored_note`),
        and of its copies in other splits, with no --dedupe (evaluate has none); its classes'
        coverage the caller says against the model's (evaluate's "absent", "few"). DataError
        for a `scored` naming no split it has."""
        from hubensemble.data.taskwords import summary

        return summary(self, skipped_in=skipped_in, scored=scored)

    def hubensemble_folders(self) -> list[str]:
        """The folders hubensemble made (a run or an export left inside the data) among
        `ignored`: the folder loader ignores an entry with a visible name only for being one
        (`formats.made_by_hubensemble`), a hidden one for its name; so told apart here, on
        the whole list, the summary's and run.json's counts are exact."""
        return [p for p in self.ignored if _visible(os.path.basename(p))]

    def _shrunk_record(self) -> dict:
        """run.json's "shrunk": how many examples are shrunk images, per split, and up to 10
        of them as [path (or "split[i]" for an example without a file), [height, width] as
        decoded]."""
        held = self._shrunk_names()
        counts = {s: len(names) for s, names in held.items()}
        kept = set().union(*held.values())
        return {"count": sum(counts.values()), "splits": counts,
                "examples": [[p, list(hw)] for p, hw in self.shrunk if p in kept][:10]}

    def files_record(self) -> dict:
        """What became of the files read, as the summary counts them
        (`data.taskwords.accounting`): "skipped" [path, reason], "files", "dropped"
        [example, "a copy of …"] (duplicates --dedupe removed), and "ignored", "oriented",
        "turned", "unservable", "dark", "not_images" and "shrunk", each a count with up to 10
        examples;
        "ignored" also counts its folders hubensemble made apart ("hubensemble_folders": its
        10 examples cannot tell the rest apart). The one shape of run.json's data.task and of
        an evaluation's "task" (`evaluate --out`), so that both read back alike (an
        evaluation recorded "dropped" as a count before this owned it)."""
        return {
            "skipped": [list(s) for s in self.skipped],
            "files": self.files,
            "dropped": [list(d) for d in self.dropped],
            "ignored": {"count": len(self.ignored), "examples": list(self.ignored[:10]),
                        "hubensemble_folders": len(self.hubensemble_folders())},
            "oriented": {"count": len(self.oriented),
                         "examples": [list(o) for o in self.oriented[:10]]},
            "turned": {"count": len(self.turned),
                       "examples": [list(o) for o in self.turned[:10]]},
            "unservable": {"count": len(self.unservable),
                           "examples": [list(o) for o in self.unservable[:10]]},
            "dark": {"count": len(self.dark), "examples": [list(o) for o in self.dark[:10]]},
            "not_images": {"count": len(self.not_images),
                           "examples": list(self.not_images[:10])},
            "shrunk": self._shrunk_record(),
        }

    def to_json(self) -> dict:
        """What a run records about its data (no pixels)."""
        return {
            "name": self.name, "source": self.source, "spec": self.spec,
            "fingerprint": self.fingerprint,
            "class_names": list(self.class_names), "num_classes": self.num_classes,
            "sizes": {s: (len(getattr(self, s)) if getattr(self, s) is not None else None)
                      for s in SPLIT_NAMES},
            "image_size": list(self.image_size), "same_size": self.train.same_size,
            "synthetic": self.synthetic, "flip": self.flip,
            **self.files_record(),
            "duplicates": self.duplicates,
            "coverage": self.coverage(),
        }


def _split_bytes(name: str, split: Split):
    """The bytes `Task.fingerprint` hashes of split `name`: its name and length, its labels
    (int64 little-endian), then each image's shape and uint8 pixels."""
    yield f"|{name}:{len(split)}".encode()
    yield np.ascontiguousarray(split.labels, dtype="<i8").tobytes()
    for im in split.images:
        yield np.asarray(im.shape, dtype="<i8").tobytes()
        yield np.ascontiguousarray(im, dtype=np.uint8).tobytes()


def _check_task_splits(task: "Task") -> None:
    """A `Task`'s splits as made: TypeError for a train that is not a `Split` (val and test:
    a Split or None), then load_task's DataError for a label outside 0..num_classes-1
    (`_check_label_range`). The rest of `validate_task` (per-class counts, ...) is
    fit's, at its entry, with the run's rules."""
    for name in SPLIT_NAMES:
        got = getattr(task, name)
        if not isinstance(got, Split) and (name == "train" or got is not None):
            raise TypeError(f"Task {name} must be a hubensemble.data.Split (images, labels)"
                            f"{'' if name == 'train' else ' or None'}, got "
                            f"{type(got).__name__}; e.g. {name}=Split(x_{name}, y_{name})")
    _check_label_range({s: getattr(task, s) for s in SPLIT_NAMES}, len(task.class_names))


def _check_label_range(splits: dict[str, Split], num_classes: int, what: str = ""):
    """DataError naming the split, the values and the first one's index (after `what`, the
    source) when a label is outside 0..num_classes-1; a negative one with the way on
    (`labelwords.negative_labels`)."""
    for key, s in splits.items():
        if s is None or not len(s):
            continue
        if negative_labels(s.labels):
            raise DataError(f"{what}{': ' if what else ''}{key} labels out of range: "
                            f"{negative_labels(s.labels)}")
        bad = (s.labels < 0) | (s.labels >= num_classes)
        if bad.any():
            vals = sorted(set(s.labels[bad].tolist()))
            # The source and the first index, as a negative label's (an npz with 3
            # class_names and a label 3 was refused without its file).
            raise DataError(
                f"{what}{': ' if what else ''}{key} labels out of range: "
                f"{counted(int(bad.sum()), 'label')} with value{'s' if len(vals) > 1 else ''} "
                f"{vals[:5]} but the classes are 0..{num_classes - 1} "
                f"({num_classes} class names; the first such label at index "
                f"{int(np.flatnonzero(bad)[0])}); fix the labels or supply all class names")
