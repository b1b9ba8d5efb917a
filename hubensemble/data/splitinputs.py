"""What a `Split` makes of the arrays it is given: uint8 RGB images and int64 labels, or the
refusal of what it cannot use (split from task.py, which owns the records)."""

from __future__ import annotations

import numpy as np

from hubensemble.data.names import non_integer_labels
from hubensemble.errors import DataError
from hubensemble.refused import described
from hubensemble.text import counted


def _split_inputs(images, labels, paths):
    """(images, labels) of a `Split` as the rest of the package holds them: uint8 RGB images
    (one [N, H, W, 3] array, or a list of [H, W, 3] when given as a list), int64 labels [N].
    Loaders pass those already (kept as they are, not copied); what Python passes goes
    through `decode.to_rgb_uint8`, the one conversion of arrays (npz, tfds), which raises
    the DataError of what it refuses. 16-bit is decided for the split's images as a whole
    (`decode.check_16bit`), as npz: decides for its archive; so are the 0/1 mask and alpha
    rules (`decode.check_array_values`), for images not in the held form (`_held`)."""
    from hubensemble.data.decode import check_16bit, check_array_values, to_rgb_uint8

    # None, a str or a dict was read as a 0-d array: "Split images have shape []"
    for name, value, takes in (
            ("images", images, "an array [N, H, W] or [N, H, W, C], or a list of images"),
            ("labels", labels, "an array [N] of integer class indices")):
        if value is None or isinstance(value, (str, bytes, dict)):
            raise TypeError(f"Split {name} must be {takes}, got {described(value)}; e.g. "
                            "Split(x_train, y_train)")
    what = "Split images"
    if isinstance(images, (list, tuple)):
        images = [np.asarray(im) for im in images]
        for i, im in enumerate(images):
            if im.ndim not in (2, 3) or 0 in im.shape[:2]:
                raise DataError(f"{what}: image {i} has shape {list(im.shape)}; each image of "
                                f"a list must be [H, W] (grey) or [H, W, C] with C in 1..4")
        check_16bit(images, what=what, fix="store each image as im.astype(np.uint8)")
        if not all(_held(im) for im in images):
            check_array_values([im[..., None] if im.ndim == 2 else im for im in images],
                               what=what, name="im")
        images = [to_rgb_uint8(im[..., None] if im.ndim == 2 else im, what=f"{what}: image {i}",
                               known_16bit=True) for i, im in enumerate(images)]
    else:
        images = np.asarray(images)
        if images.ndim == 3:  # [N, H, W]: grey, as npz: reads it
            images = images[..., None]
        if images.ndim != 4 or (len(images) and 0 in images.shape[1:3]):
            raise DataError(f"{what} have shape {list(images.shape)}; use [N, H, W] (grey) or "
                            f"[N, H, W, C] with C in 1..4, or a list of [H, W, C] images of "
                            f"different sizes")
        if not _held(images):
            check_array_values(images, what=what)
        images = to_rgb_uint8(images, what=what)
    labels = _split_labels(labels)
    if len(images) != len(labels):
        raise DataError(f"Split: {counted(len(images), 'image')} but "
                        f"{counted(len(labels), 'label')}; they must match one to one")
    if paths is not None and len(paths) != len(labels):
        raise DataError(f"Split: {counted(len(paths), 'path')} but {counted(len(labels), 'label')}"
                        "; give one path per image, or none")
    return images, labels


def _held(images: np.ndarray) -> bool:
    """Whether `images` are in the form a Split holds, uint8 RGB [..., 3]: what every loader
    makes (from files too, which are never refused for their values) and every Split made of
    another's (`subset`, tune's train + val), so `decode.check_array_values`' rules are for
    the other forms Python passes (a grey [N, H, W] 0/1 mask, int64, RGBA, ...)."""
    return images.dtype == np.uint8 and images.ndim >= 3 and images.shape[-1] == 3


def _split_labels(labels) -> np.ndarray:
    """A `Split`'s labels ([N] or [N, 1] integer class indices, or integral floats) as int64
    [N]; DataError, in npz:'s words, for any other shape or dtype."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"Split labels have shape {list(y.shape)}; labels must be one integer "
                        f"class index per image (for one-hot labels pass y.argmax(1))")
    if y.dtype == np.int64:
        return y
    if y.dtype == np.bool_ or not (y.dtype.kind in "iu"  # not timedelta64, an integer to numpy
                                   or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"Split labels have dtype {y.dtype}; labels must be integer class "
                        f"indices into the task's class_names")
    if np.issubdtype(y.dtype, np.floating):
        why = non_integer_labels(y, "(keep = ~np.isnan(labels); Split(images[keep], "
                                 "labels[keep]))")
        if why:
            raise DataError(f"Split labels hold {why}")
    if y.size and y.max() > np.iinfo(np.int64).max:
        raise DataError(f"Split labels hold {y.max()}, beyond int64; labels must be class "
                        f"indices 0..C-1")
    return y.astype(np.int64)
