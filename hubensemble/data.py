"""Downstream tasks: data specs (tfds:, folder:, npz:, sklearn:digits) → a validated `Task`."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hubensemble.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val",
                  "test": "test"}

# The VTAB-1k protocol (paper section 4): 800 train + 200 validation from the train split.
VTAB_SPLITS = {"train": "train[:800]", "val": "train[800:1000]", "test": "test"}

# Leave-one-out kNN needs a second example of a class to find that class at all.
MIN_TRAIN_PER_CLASS = 2

# tfds data sets that are rendered rather than photographed (paper A.3: no colour distortion;
# smallnorb is grey-scale studio shots of toys, where hue/saturation jitter only adds colour).
SYNTHETIC_TFDS = frozenset({"dsprites", "clevr", "dmlab", "smallnorb"})
# tfds data sets whose labels a left/right flip can change (digits, positions, azimuths).
NO_FLIP_TFDS = frozenset({"mnist", "emnist", "kmnist", "svhn_cropped", "dsprites", "smallnorb"})

# Never a class folder or an image: OS and archive litter.
_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


# --------------------------------------------------------------------------- records


@dataclass(eq=False)
class Split:
    """Images (uint8 RGB) and their integer labels for one split."""

    images: np.ndarray | list[np.ndarray]  # [N, H, W, 3] when all the same size, else a list
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def same_size(self) -> bool:
        return isinstance(self.images, np.ndarray)

    def shapes(self) -> np.ndarray:
        """[N, 2] array of (height, width) per image."""
        if isinstance(self.images, np.ndarray):
            return np.tile(np.array(self.images.shape[1:3], np.int64), (len(self), 1))
        return np.array([im.shape[:2] for im in self.images], np.int64).reshape(-1, 2)

    def float_images(self) -> np.ndarray:
        """All images as float32 in [0, 1]; only for a split whose images share one size."""
        if not isinstance(self.images, np.ndarray):
            sizes = sorted({tuple(s) for s in self.shapes().tolist()})
            raise DataError(
                f"the images have {len(sizes)} different sizes (e.g. {sizes[:3]}), so they do "
                f"not fit one array; use Task.dataset(split, batch_size=..., "
                f"image_size=(h, w)) to resize them on the fly")
        return self.images.astype(np.float32) / np.float32(255.0)


@dataclass(eq=False)
class Task:
    """A downstream classification task: class names and train / val / test splits."""

    name: str
    source: str  # where the data came from, for people
    class_names: list[str]
    train: Split
    val: Split | None = None
    test: Split | None = None
    synthetic: bool = False  # artificial images: no colour augmentation (paper A.3)
    flip: bool = True  # left/right flips keep the label (BiT-HyperRule flip rule)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """Median (height, width) of the training images (the BiT-HyperRule input)."""
        shapes = self.train.shapes()
        return int(np.median(shapes[:, 0])), int(np.median(shapes[:, 1]))

    def split(self, name: str) -> Split:
        key = _SPLIT_ALIASES.get(name)
        if key is None:
            raise DataError(f"unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}")
        got = getattr(self, key)
        if got is None:
            raise DataError(f"task {self.name!r} has no {key} split ({self.source}); "
                            f"splits present: {', '.join(self.present_splits())}")
        return got

    def present_splits(self) -> list[str]:
        return [s for s in SPLIT_NAMES if getattr(self, s) is not None]

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over class names, then per split its labels and every image's shape and
        pixels. Independent of how images are held (array or list) and of the process."""
        h = hashlib.sha256()
        h.update(json.dumps(list(self.class_names)).encode("utf-8"))
        for name in SPLIT_NAMES:
            split = getattr(self, name)
            if split is None:
                h.update(f"|{name}:none".encode())
                continue
            h.update(f"|{name}:{len(split)}".encode())
            h.update(np.ascontiguousarray(split.labels, dtype="<i8").tobytes())
            for im in split.images:
                h.update(np.asarray(im.shape, dtype="<i8").tobytes())
                h.update(np.ascontiguousarray(im, dtype=np.uint8).tobytes())
        return h.hexdigest()

    def dataset(self, split: str, *, batch_size: int,
                image_size: tuple[int, int] | int | None = None, shuffle: bool = False,
                seed: int = 0, repeat: bool = False, cache: bool = True):
        """A tf.data.Dataset of (float32 [B, h, w, 3] in [0, 1], int64 [B]) batches.

        Same-size images are resized a batch at a time to `image_size` with
        `augment.resize` (antialiased bilinear), images of different sizes one by one;
        without `image_size` they must already share one size.
        With `repeat` the stream is endless and every batch is full; without it the last batch
        may be short. Shuffling is seeded, so the order is the same in every run with the same
        seed. tf.data's autotuner is off for this pipeline and whatever is built on it.
        """
        import tensorflow as tf

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

        from hubensemble.augment import resize

        def to_float(x):
            x = tf.cast(x, tf.float32) / 255.0
            if image_size is not None:
                # The one resize policy (antialiased bilinear), as tune, export and serving.
                x = resize(x, image_size)
            return x

        labels = np.asarray(data.labels, np.int64)
        if data.same_size:
            # Batch first, then one resize per batch: a batched resize costs about 40 % less
            # CPU than one per image, and on a small machine it competes with the module's
            # forward pass. The shuffle sees the same sequence of examples as before (raw
            # instead of converted), so a seed gives the same order.
            ds = tf.data.Dataset.from_tensor_slices((data.images, labels))
            if shuffle:
                ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
            if repeat:
                ds = ds.repeat()
            ds = ds.batch(batch_size, drop_remainder=repeat)
            ds = ds.map(lambda x, y: (to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE)
            if cache and not (shuffle or repeat):
                # Fixed batches in a fixed order: keep them converted. A shuffled stream draws
                # from the in-memory array instead (the conversion is all it would save).
                ds = ds.cache()
            return _fixed_parallelism(ds.prefetch(tf.data.AUTOTUNE))
        # Images of different sizes: one flat buffer plus row lengths (a ragged tensor keeps
        # every image's own size without a Python generator, which neither caches nor
        # distributes well), each image resized on its own.
        flat = np.concatenate([im.reshape(-1) for im in data.images])
        shapes = np.array([im.shape for im in data.images], np.int64)
        ragged = tf.RaggedTensor.from_row_lengths(flat, shapes.prod(axis=1))
        ds = tf.data.Dataset.from_tensor_slices((ragged, shapes, labels))
        ds = ds.map(lambda r, s, y: (to_float(tf.reshape(r, s)), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
        if cache:
            ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=repeat)
        return _fixed_parallelism(ds.prefetch(tf.data.AUTOTUNE))

    def summary(self) -> str:
        """One paragraph for people: where from, counts per split, classes, size, skips."""
        counts = ", ".join(f"{s} {len(getattr(self, s))}" if getattr(self, s) is not None
                           else f"no {s}" for s in SPLIT_NAMES)
        names = ", ".join(self.class_names[:8]) + (", …" if self.num_classes > 8 else "")
        h, w = self.image_size
        size = f"{h}x{w}" if self.train.same_size else f"median {h}x{w} (sizes vary)"
        flags = []
        if self.synthetic:
            flags.append("synthetic (no colour augmentation)")
        if not self.flip:
            flags.append("no left/right flips")
        text = (f"Task {self.name!r} from {self.source}: {counts} examples; "
                f"{self.num_classes} classes ({names}); images {size}")
        if flags:
            text += "; " + ", ".join(flags)
        if self.skipped:
            shown = "; ".join(f"{p}: {r}" for p, r in self.skipped[:3])
            more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            text += f"; {len(self.skipped)} file(s) skipped ({shown}{more})"
        return text + "."

    def to_json(self) -> dict:
        """What a run records about its data (no pixels)."""
        return {
            "name": self.name, "source": self.source, "fingerprint": self.fingerprint,
            "class_names": list(self.class_names), "num_classes": self.num_classes,
            "sizes": {s: (len(getattr(self, s)) if getattr(self, s) is not None else None)
                      for s in SPLIT_NAMES},
            "image_size": list(self.image_size), "same_size": self.train.same_size,
            "synthetic": self.synthetic, "flip": self.flip,
            "skipped": [list(s) for s in self.skipped],
        }


@dataclass(frozen=True)
class LoadOptions:
    """Everything a scheme loader may use besides the text after `scheme:`."""

    data_dir: str | None = None
    seed: int = 0
    splits: dict[str, str | None] | None = None
    label_key: str = "label"
    image_key: str = "image"
    val_fraction: float = 0.2
    test_fraction: float = 0.2


def _fixed_parallelism(ds):
    """`ds` with tf.data's autotuner off (for it and every dataset built on it).

    The data are in memory and the work per batch is small; the autotuner's help is nil, but
    on this 2-core machine it at times took a core from the model: up to a third of rank's
    modules and of tune's timed runs went at half speed (twice the wall time, same CPU time).
    Without it, `AUTOTUNE` parallelism means one thread per core and prefetching still keeps
    the model fed (bench_rank, bench_tune).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


# --------------------------------------------------------------------------- pure policy


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes for one class of `n` examples.

    Each non-zero fraction takes round-half-up(fraction * n) but at least one example, so
    every class reaches every split; then test, then val, give examples back until train
    keeps MIN_TRAIN_PER_CLASS (leave-one-out kNN needs two), as far as `n` allows.
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
    """Index arrays (train, val, test), each sorted, drawn per class with one seeded RNG."""
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
    for what, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{what} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must leave some training data, got "
                        f"{val_fraction} + {test_fraction}")


def to_rgb_uint8(array, *, what: str = "images") -> np.ndarray:
    """Pixels with a trailing channel axis (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) → uint8 RGB.

    uint8 is kept; uint16 keeps its top 8 bits (v >> 8, as tf.image.convert_image_dtype);
    bool → 0/255; other integers must lie in 0..255; floats must lie in [0, 1] and become
    round(v * 255). Alpha is composited onto white, so transparent pixels read as background.
    """
    a = np.asarray(array)
    if a.ndim < 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{what}: expected a trailing channel axis of 1, 2, 3 or 4, got shape "
                        f"{list(a.shape)}")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise DataError(f"{what}: integer pixels must lie in 0..255 (got {a.min()}.."
                            f"{a.max()}); store uint8, uint16 for 16-bit, or floats in [0, 1]")
        a = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if a.size and not np.isfinite(a).all():
            raise DataError(f"{what}: float pixels contain NaN or infinity")
        if a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise DataError(f"{what}: float pixels must lie in [0, 1] (got {a.min():.4g}.."
                            f"{a.max():.4g}); divide by 255 first or store uint8 0..255")
        a = np.floor(a.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise DataError(f"{what}: pixels of dtype {a.dtype} are not supported; use uint8 "
                        f"0..255 or floats in [0, 1]")
    channels = a.shape[-1]
    if channels in (2, 4):
        alpha = a[..., -1:].astype(np.float64) / 255.0
        colour = a[..., :-1].astype(np.float64)
        a = np.floor(colour * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
        channels -= 1
    if channels == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------- decoding


class _Unreadable(Exception):
    """A file that is not a usable image; the message is the reason shown to people."""


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    text = text[-1] if text else type(err).__name__
    # TF prefixes op errors with "{{function_node ...}}" and suffixes "[Op:DecodeImage]".
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]\s*$", "", text)
    return text[:200] or type(err).__name__


def decode_image_bytes(data: bytes) -> np.ndarray:
    """Encoded image bytes → uint8 RGB [H, W, 3]; raises _Unreadable with a reason.

    tf.io first (JPEG, PNG, GIF first frame, BMP, WebP; 16-bit PNG scaled to 8 bits), then
    PIL for what TensorFlow cannot decode (TIFF, unusual JPEG colour spaces, …).
    """
    if not data:
        raise _Unreadable("empty file (0 bytes)")
    import tensorflow as tf

    try:
        img = tf.io.decode_image(data, expand_animations=False, dtype=tf.uint8).numpy()
        return _checked(to_rgb_uint8(img))
    except (tf.errors.OpError, ValueError, DataError) as e:
        tf_reason = _short(e)
    try:
        return _checked(_decode_with_pil(data))
    except _Unreadable:
        raise
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, …)
        raise _Unreadable(f"not a readable image ({tf_reason}; PIL: {_short(e)})") from None


def _checked(img):
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise _Unreadable(f"decoded to an empty image of shape {list(img.shape)}")
    return img


def _decode_with_pil(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        mode = im.mode
        if mode.startswith("I;16") or mode == "I":
            # 16-bit grey (PIL has no 16-bit RGB mode); same scaling as tf: keep the top byte.
            a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
            return to_rgb_uint8(a[..., None], what="image")
        if mode == "F":
            return to_rgb_uint8(np.asarray(im, dtype=np.float64)[..., None], what="image")
        if mode in ("L", "RGB"):
            a = np.asarray(im)
        elif mode in ("LA", "La", "PA", "RGBA", "RGBa", "P") or "transparency" in im.info:
            a = np.asarray(im.convert("RGBA"))
        else:  # 1, CMYK, YCbCr, LAB, HSV, …
            a = np.asarray(im.convert("RGB"))
    if a.ndim == 2:
        a = a[..., None]
    return to_rgb_uint8(a, what="image")


def read_image_file(path: str) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise _Unreadable(f"cannot read: {e.strerror or e}") from None
    return decode_image_bytes(data)


# --------------------------------------------------------------------------- helpers


def _stack_or_list(images: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    if images and len({im.shape for im in images}) == 1:
        return np.stack(images)
    return list(images)


def _take(images, idx):
    if isinstance(images, np.ndarray):
        return images[idx]
    return _stack_or_list([images[i] for i in idx])


def _make_split(images, labels) -> Split:
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


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in _IGNORED_NAMES


def _require_path(path: str, scheme: str, kind: str) -> str:
    if not path:
        raise DataError(f"{scheme}: needs a path, e.g. {_EXAMPLES[scheme]}")
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise DataError(f"{scheme}:{path}: no such {kind}; check the path (relative paths are "
                        f"relative to {os.getcwd()})")
    return path


# --------------------------------------------------------------------------- scheme: folder


def _list_class_folder(folder: str) -> list[str]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        files.extend(os.path.join(root, n) for n in sorted(names) if _visible(n))
    return files


def _read_class_folders(root: str, class_names: list[str] | None, skipped: list):
    """Decode root/<class>/** → (images, labels, class_names)."""
    found = sorted(d for d in os.listdir(root)
                   if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if class_names is None:
        class_names = found
    else:
        extra = [d for d in found if d not in class_names]
        if extra:
            raise DataError(f"{root} has class folder(s) {extra} that the train folder does "
                            f"not have; every class needs training images (add "
                            f"train/{extra[0]}/ or remove the folder)")
    for n in sorted(os.listdir(root)):
        p = os.path.join(root, n)
        if _visible(n) and not os.path.isdir(p):
            skipped.append((p, "file outside the class folders (ignored)"))
    images, labels = [], []
    index = {c: i for i, c in enumerate(class_names)}
    for c in found:
        for path in _list_class_folder(os.path.join(root, c)):
            try:
                images.append(read_image_file(path))
                labels.append(index[c])
            except _Unreadable as e:
                skipped.append((path, str(e)))
    return images, labels, class_names


def _load_folder(rest: str, options: LoadOptions) -> Task:
    """folder:PATH — PATH/<class>/*, or PATH/train|val|test/<class>/*."""
    path = _require_path(rest, "folder", "folder")
    if not os.path.isdir(path):
        raise DataError(f"folder:{path} is a file, not a folder; a folder spec needs one "
                        f"sub-folder per class (for an .npz file use npz:{path})")
    subdirs = {d: os.path.join(path, d) for d in os.listdir(path)
               if _visible(d) and os.path.isdir(os.path.join(path, d))}
    layout = {}
    if "train" in subdirs and any(os.path.isdir(os.path.join(subdirs["train"], d))
                                  for d in os.listdir(subdirs["train"]) if _visible(d)):
        for d in subdirs:
            key = _SPLIT_ALIASES.get(d)
            if key is None:
                raise DataError(
                    f"{path} has a train/ folder and also {d!r}/; use either only "
                    f"train/, val/ and test/ (each with class folders) or one folder per "
                    f"class, not both")
            if key in layout:
                raise DataError(f"{path} has two validation folders ({sorted(subdirs)}); "
                                f"keep one")
            layout[key] = subdirs[d]
    skipped: list[tuple[str, str]] = []
    if layout:
        images, labels, class_names = _read_class_folders(layout["train"], None, skipped)
        train = _make_split(images, labels)
        got = {}
        for key in ("val", "test"):
            if key in layout:
                im, lab, _ = _read_class_folders(layout[key], class_names, skipped)
                if not lab:
                    raise DataError(f"{layout[key]} holds no readable images; add class "
                                    f"folders with images or remove it")
                got[key] = _make_split(im, lab)
        if not len(train):
            raise _empty_error(path, skipped)
        train, val, test = _carve(train, "val" not in got, "test" not in got, options)
        val, test = got.get("val", val), got.get("test", test)
        how = "train/" + "".join(f", {k}/" for k in got)
        carved = [k for k in ("val", "test") if k not in got and
                  (val if k == "val" else test) is not None]
        if carved:
            how += f"; {' and '.join(carved)} split off train (seed {options.seed})"
    else:
        images, labels, class_names = _read_class_folders(path, None, skipped)
        if not class_names:
            raise DataError(f"folder:{path} has no class sub-folders; put each class's images "
                            f"in PATH/<class name>/ (or use PATH/train/<class name>/ …)")
        if not labels:
            raise _empty_error(path, skipped)
        train, val, test = _carve(_make_split(images, labels), True, True, options)
        how = (f"class folders; val {options.val_fraction:g} / test "
               f"{options.test_fraction:g} of each class split off (seed {options.seed})")
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
    return Task(name=name, source=f"folder:{path} ({how})", class_names=class_names,
                train=train, val=val, test=test, skipped=skipped)


def _empty_error(path, skipped):
    detail = ""
    if skipped:
        detail = (f"; all {len(skipped)} file(s) were unreadable, e.g. {skipped[0][0]}: "
                  f"{skipped[0][1]}")
    return DataError(f"no readable images under {path}{detail}; add JPEG/PNG/BMP/GIF files "
                     f"in one sub-folder per class")


# --------------------------------------------------------------------------- scheme: npz


def _npz_images(x, key):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"npz array {key!r} has shape {list(x.shape)}; use [N, H, W] "
                        f"(grey) or [N, H, W, C] with C in 1, 3, 4")
    if x.shape[-1] == 2:
        raise DataError(f"npz array {key!r} has 2 channels; use 1 (grey), 3 (RGB) or 4 (RGBA)")
    if x.shape[0] and (x.shape[1] < 1 or x.shape[2] < 1):
        raise DataError(f"npz array {key!r} holds empty images (shape {list(x.shape)})")
    return to_rgb_uint8(x, what=f"npz array {key!r}")


def _npz_labels(y, key):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"npz array {key!r} has shape {list(y.shape)}; labels must be one "
                        f"integer class index per image (for one-hot labels store "
                        f"y.argmax(1))")
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer)
                                   or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"npz array {key!r} has dtype {y.dtype}; labels must be integers")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"npz array {key!r} holds non-integer labels; labels must be "
                            f"integer class indices")
    return y.astype(np.int64)


def _load_npz(rest: str, options: LoadOptions) -> Task:
    """npz:PATH — x_train, y_train [, x_val, y_val, x_test, y_test, class_names]."""
    path = _require_path(rest, "npz", "file")
    if os.path.isdir(path):
        raise DataError(f"npz:{path} is a folder; for class sub-folders use folder:{path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":  # .npz files are zip archives
        raise DataError(f"npz:{path} is not an .npz archive; write it with "
                        f"numpy.savez(path, x_train=..., y_train=..., ...)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(f"npz:{path} holds Python object arrays (e.g. a list of "
                            f"different-size images); store one numeric array per split, or "
                            f"use folder: for images of different sizes") from None
        raise DataError(f"npz:{path} is not a readable .npz file ({_short(e)}); write it "
                        f"with numpy.savez") from None
    except (OSError, EOFError) as e:
        raise DataError(f"npz:{path} cannot be read ({_short(e)}); write it with "
                        f"numpy.savez") from None
    if not isinstance(arrays, dict) or "x_train" not in arrays or "y_train" not in arrays:
        raise DataError(f"npz:{path} needs arrays x_train and y_train (found: "
                        f"{sorted(arrays) or 'none'}); optional: x_val, y_val, x_test, "
                        f"y_test, class_names")
    splits = {}
    for key in SPLIT_NAMES:
        xk, yk = f"x_{key}", f"y_{key}"
        if (xk in arrays) != (yk in arrays):
            have, missing = (xk, yk) if xk in arrays else (yk, xk)
            raise DataError(f"npz:{path} has {have} but not {missing}; store both or neither")
        if xk not in arrays:
            continue
        x, y = _npz_images(arrays[xk], xk), _npz_labels(arrays[yk], yk)
        if len(x) != len(y):
            raise DataError(f"npz:{path}: {xk} has {len(x)} images but {yk} has {len(y)} "
                            f"labels; they must match one to one")
        if not len(x):
            raise DataError(f"npz:{path}: {xk} is empty; store at least 2 examples per class "
                            f"(or leave {key} out)")
        splits[key] = _make_split(x, y)
    class_names = None
    if "class_names" in arrays:
        names = np.asarray(arrays["class_names"])
        if names.ndim != 1 or names.dtype.kind not in "USO":
            raise DataError(f"npz:{path}: class_names must be a 1-D array of strings, got "
                            f"{names.dtype} {list(names.shape)}")
        class_names = [str(n) for n in names.tolist()]
        if len(set(class_names)) != len(class_names):
            raise DataError(f"npz:{path}: class_names has duplicates; names must be unique")
    else:
        top = max(int(s.labels.max()) for s in splits.values())
        class_names = [str(i) for i in range(top + 1)]
    # Out-of-range labels are reported by validation; check before a split needs bincount.
    _check_label_range(splits, len(class_names))
    train = splits["train"]
    val, test = splits.get("val"), splits.get("test")
    how = "x_train" + (", x_val" if val is not None else "")
    how += ", x_test" if test is not None else ""
    if val is None:
        train, val, _ = _carve(train, True, False, options)
        if val is not None:
            how += f"; val {options.val_fraction:g} of each class split off (seed {options.seed})"
    name = os.path.splitext(os.path.basename(path))[0]
    return Task(name=name, source=f"npz:{path} ({how})", class_names=class_names,
                train=train, val=val, test=test)


# --------------------------------------------------------------------------- scheme: sklearn


def _load_sklearn(rest: str, options: LoadOptions) -> Task:
    """sklearn:digits — scikit-learn's bundled 8x8 digits: 800 / 200 / 797, stratified."""
    if rest != "digits":
        raise DataError(f"sklearn:{rest} is not available; the only bundled data set is "
                        f"sklearn:digits")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    # 0..16 grey levels → 0..255, half up (the values are exact multiples, v * 255 / 16).
    x = np.floor(d.images.astype(np.float64) * 255.0 / 16.0 + 0.5).astype(np.uint8)
    x = to_rgb_uint8(x[..., None])
    y = d.target.astype(np.int64)
    idx = np.arange(len(y))
    tr, rest_idx = train_test_split(idx, train_size=800, stratify=y, random_state=options.seed)
    va, te = train_test_split(rest_idx, train_size=200, stratify=y[rest_idx],
                              random_state=options.seed)
    pick = lambda i: Split(images=x[i], labels=y[i])  # noqa: E731
    return Task(name="digits",
                source=f"sklearn:digits (scikit-learn's 1,797 8x8 handwritten digits; "
                       f"800 / 200 / 797 stratified, seed {options.seed})",
                class_names=[str(i) for i in range(10)], train=pick(tr), val=pick(va),
                test=pick(te), flip=False)


# --------------------------------------------------------------------------- scheme: tfds


_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _parse_tfds_name(rest: str) -> tuple[str, str | None, str | None]:
    """'NAME', 'NAME:CONFIG', 'NAME/CONFIG', 'NAME[/CONFIG]:1.2.3' → (name, config, version)."""
    parts = rest.split(":")
    name, config, version = parts[0], None, None
    if "/" in name:
        name, config = name.split("/", 1)
    for p in parts[1:]:
        if _VERSION.match(p) and version is None:
            version = p
        elif config is None and p:
            config = p
        else:
            raise DataError(f"tfds:{rest}: cannot parse; use tfds:NAME, tfds:NAME:CONFIG or "
                            f"tfds:NAME/CONFIG:VERSION")
    if not re.match(r"^[A-Za-z0-9_]+$", name or ""):
        raise DataError(f"tfds:{rest}: {name!r} is not a tfds data set name (letters, digits, "
                        f"underscores), e.g. {_EXAMPLES['tfds']}")
    return name, config, version


def _resolve_splits(overrides) -> dict[str, str | None]:
    splits = dict(VTAB_SPLITS)
    for key, value in (overrides or {}).items():
        norm = _SPLIT_ALIASES.get(key)
        if norm is None:
            raise DataError(f"unknown split {key!r} in the split overrides; use train, val "
                            f"or test (e.g. val=validation[:200])")
        if value is not None and str(value).strip().lower() in ("", "none"):
            value = None
        splits[norm] = value
    if splits["train"] is None:
        raise DataError("the train split cannot be switched off")
    return splits


def _load_tfds(rest: str, options: LoadOptions) -> Task:
    """tfds:NAME[:CONFIG] — a prepared TensorFlow Datasets data set; never downloads."""
    name, config, version = _parse_tfds_name(rest)
    full = name + (f"/{config}" if config else "") + (f":{version}" if version else "")
    splits = _resolve_splits(options.splits)
    import tensorflow as tf
    import tensorflow_datasets as tfds

    where = options.data_dir or "the default data dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
    prepare = (f"prepare it once on a machine with internet: `tfds build {name}"
               f"{' --config ' + config if config else ''}"
               f"{' --data_dir ' + options.data_dir if options.data_dir else ''}` (or copy a "
               f"prepared folder there), then pass --data-dir to where it lives")
    try:
        builder = tfds.builder(full, data_dir=options.data_dir)
        features = builder.info.features
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"tfds has no data set named {name!r}; check the name against "
                        f"`tfds.list_builders()`, e.g. tfds:cifar10") from None
    except (ValueError, AssertionError, OSError, tf.errors.OpError) as e:
        raise DataError(f"tfds:{rest}: {_short(e)}") from None
    keys = sorted(features.keys()) if hasattr(features, "keys") else []
    for what, key in (("image_key", options.image_key), ("label_key", options.label_key)):
        if key not in keys:
            raise DataError(f"tfds:{rest} has no feature {key!r} (pass {what}); its features "
                            f"are: {', '.join(keys)}")
    label_feature = features[options.label_key]
    class_names = (list(label_feature.names)
                   if isinstance(label_feature, tfds.features.ClassLabel) else None)
    loaded = {}
    for key, split in splits.items():
        if split is None:
            continue
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False)
            ds = ds.map(lambda ex: (ex[options.image_key], ex[options.label_key]))
            images, labels = [], []
            for im, lab in ds.as_numpy_iterator():
                im = np.asarray(im)
                if im.ndim == 2:
                    im = im[..., None]
                images.append(to_rgb_uint8(im, what=f"tfds:{rest} {options.image_key!r}"))
                labels.append(lab)
        except AssertionError:
            raise DataError(f"tfds:{full} is not prepared in {where}; hubensemble never "
                            f"downloads data: {prepare}") from None
        except DataError:
            raise
        except (ValueError, KeyError, TypeError, tf.errors.OpError) as e:
            known = ", ".join(sorted(builder.info.splits.keys())) or "unknown"
            raise DataError(f"tfds:{rest}: cannot read split {split!r} for {key} "
                            f"({_short(e)}); the data set's splits are: {known}; override "
                            f"with splits={{'{key}': '...'}} (CLI --split {key}=...)") from None
        if not labels:
            raise DataError(f"tfds:{rest}: split {split!r} ({key}) is empty; override it, e.g. "
                            f"splits={{'{key}': 'train[:80%]'}} (CLI --split {key}=...)")
        try:
            lab = np.asarray(labels)
            if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
                raise ValueError(lab.dtype)
        except ValueError:
            raise DataError(f"tfds:{rest}: feature {options.label_key!r} is not one integer "
                            f"per example; pick a class-label feature with label_key, or map "
                            f"it with label_fn") from None
        loaded[key] = _make_split(images, lab)
    if class_names is None:
        top = max(int(s.labels.max()) for s in loaded.values())
        class_names = [str(i) for i in range(top + 1)]
    shown = " / ".join(f"{k} {v}" for k, v in splits.items() if v is not None)
    return Task(name=name + (f"_{config}" if config else ""),
                source=f"tfds:{full} ({shown})", class_names=class_names,
                train=loaded["train"], val=loaded.get("val"), test=loaded.get("test"),
                synthetic=name in SYNTHETIC_TFDS, flip=name not in NO_FLIP_TFDS)


# --------------------------------------------------------------------------- registry

SCHEMES: dict[str, Callable[[str, LoadOptions], Task]] = {
    "tfds": _load_tfds,
    "folder": _load_folder,
    "npz": _load_npz,
    "sklearn": _load_sklearn,
}

_EXAMPLES = {
    "tfds": "tfds:cifar10 or tfds:caltech101:3.0.1 (prepared with `tfds build`, --data-dir)",
    "folder": "folder:path/to/images (one sub-folder per class, or train/ val/ test/)",
    "npz": "npz:path/to/data.npz (x_train, y_train, optional x_val/y_val/x_test/y_test)",
    "sklearn": "sklearn:digits (scikit-learn's bundled 8x8 digits, no download)",
}


def _unknown_spec(spec: str, why: str) -> DataError:
    hint = ""
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        hint = f" (did you mean folder:{spec}?)"
    elif os.path.isfile(path) and path.endswith(".npz"):
        hint = f" (did you mean npz:{spec}?)"
    lines = "\n".join(f"  {s}: {_EXAMPLES.get(s, '')}" for s in SCHEMES)
    return DataError(f"{why}{hint}. A data spec is SCHEME:VALUE, one of:\n{lines}")


def parse_spec(spec: str) -> tuple[str, str]:
    """'scheme:rest' → (scheme, rest), with an error listing the schemes when it is unknown."""
    if not isinstance(spec, str) or ":" not in spec:
        raise _unknown_spec(str(spec), f"data spec {spec!r} has no scheme")
    scheme, rest = spec.split(":", 1)
    if scheme.lower() not in SCHEMES:
        raise _unknown_spec(spec, f"unknown data scheme {scheme!r} in {spec!r}")
    return scheme.lower(), rest


# --------------------------------------------------------------------------- validation


def _check_label_range(splits: dict[str, Split], num_classes: int):
    for key, s in splits.items():
        if s is None or not len(s):
            continue
        bad = (s.labels < 0) | (s.labels >= num_classes)
        if bad.any():
            vals = sorted(set(s.labels[bad].tolist()))
            raise DataError(
                f"{key} labels out of range: {int(bad.sum())} label(s) with value(s) "
                f"{vals[:5]} but the classes are 0..{num_classes - 1} ({num_classes} class "
                f"names); fix the labels or supply all class names")


def validate_task(task: Task, *, min_per_class: int = MIN_TRAIN_PER_CLASS) -> Task:
    """Raise DataError for anything the method cannot use; return the task unchanged."""
    splits = {k: getattr(task, k) for k in SPLIT_NAMES}
    if task.train is None or not len(task.train):
        raise DataError(f"task {task.name!r} ({task.source}) has no training examples; "
                        f"check the spec points at the data")
    for key, s in splits.items():
        if s is None:
            continue
        n_img = len(s.images)
        if n_img != len(s.labels):
            raise DataError(f"{key}: {n_img} images but {len(s.labels)} labels; they must "
                            f"match one to one")
        if not len(s):
            raise DataError(f"the {key} split of {task.name!r} is empty; drop it or add data")
        for im in (s.images if not s.same_size else s.images[:1]):
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[-1] != 3:
                raise DataError(f"{key}: images must be uint8 [H, W, 3], got {im.dtype} "
                                f"{list(im.shape)}")
    if task.num_classes < 2:
        raise DataError(f"task {task.name!r} has {task.num_classes} class(es) "
                        f"({task.class_names}); classification needs at least 2")
    _check_label_range(splits, task.num_classes)
    counts = np.bincount(task.train.labels, minlength=task.num_classes)
    low = [i for i in range(task.num_classes) if counts[i] < min_per_class]
    if low:
        shown = ", ".join(f"{task.class_names[i]!r} has {counts[i]}" for i in low[:5])
        more = f" and {len(low) - 5} more" if len(low) > 5 else ""
        skipped = (f" ({len(task.skipped)} file(s) were skipped as unreadable, e.g. "
                   f"{task.skipped[0][0]})" if task.skipped else "")
        raise DataError(
            f"every class needs at least {min_per_class} training examples (leave-one-out "
            f"kNN compares each with the others): {shown}{more}{skipped}; add images, merge "
            f"or drop the class")
    return task


def _apply_label_fn(task: Task, label_fn) -> Task:
    keys = task.present_splits()
    joined = np.concatenate([getattr(task, k).labels for k in keys])
    try:
        out = label_fn(joined.copy())
    except Exception as e:
        raise DataError(f"label_fn failed on the labels: {type(e).__name__}: {e}") from None
    names = None
    if isinstance(out, tuple) and len(out) == 2:
        out, meta = out
        if isinstance(meta, (int, np.integer)):
            names = [str(i) for i in range(int(meta))]
        else:
            names = [str(n) for n in meta]
    out = np.asarray(out)
    if out.shape != joined.shape or not np.issubdtype(out.dtype, np.integer):
        raise DataError(f"label_fn must return one integer per label (shape {joined.shape}), "
                        f"got {out.dtype} {out.shape}")
    if names is None:
        names = [str(i) for i in range(int(out.max()) + 1 if out.size else 0)]
    start = 0
    for k in keys:
        s = getattr(task, k)
        setattr(task, k, Split(images=s.images, labels=out[start:start + len(s)].astype(
            np.int64)))
        start += len(s)
    task.class_names = names
    return task


# --------------------------------------------------------------------------- entry point


def load_task(spec: str, *, data_dir: str | None = None, seed: int = 0,
              splits: dict[str, str | None] | None = None, label_key: str = "label",
              image_key: str = "image", label_fn=None, synthetic: bool | None = None,
              flip: bool | None = None, val_fraction: float = 0.2,
              test_fraction: float = 0.2, min_per_class: int = MIN_TRAIN_PER_CLASS) -> Task:
    """Load and validate a downstream task from a data spec (see docs/data.md).

    `splits` (tfds only) overrides the VTAB-1k split strings; None or "none" drops val/test.
    `label_fn(labels) -> labels | (labels, num_classes | class_names)` remaps the integer
    labels of all splits at once. `synthetic` / `flip` override the scheme's defaults.
    `min_per_class` relaxes the two-training-examples-per-class rule (e.g. for VTAB tasks
    with hundreds of classes, where some have one example in train[:800]).
    """
    scheme, rest = parse_spec(spec)
    if splits and scheme != "tfds":
        raise DataError(f"split overrides only apply to tfds: specs, not {scheme}:; for "
                        f"{scheme}: use val_fraction / test_fraction or put the splits in "
                        f"the data")
    options = LoadOptions(data_dir=data_dir, seed=int(seed), splits=splits,
                          label_key=label_key, image_key=image_key,
                          val_fraction=float(val_fraction), test_fraction=float(test_fraction))
    try:
        task = SCHEMES[scheme](rest, options)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{spec}: the data does not fit in memory; use a smaller split "
                        f"(e.g. splits={{'test': 'test[:2000]'}})") from None
    if label_fn is not None:
        task = _apply_label_fn(task, label_fn)
    if synthetic is not None:
        task.synthetic = bool(synthetic)
    if flip is not None:
        task.flip = bool(flip)
    task = dataclasses.replace(task)  # a fresh object: no cached fingerprint from before
    return validate_task(task, min_per_class=min_per_class)
