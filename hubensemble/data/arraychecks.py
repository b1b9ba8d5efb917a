"""The npz / tfds / in-memory pixel checks: arrays whose values `to_rgb_uint8` would turn into
images no one meant (8-bit data in uint16, 0/1 masks, an alpha of 0), refused as a whole.

Split from decode.py (the decode policy), which converts; these only look. Image files are
decode.py's."""

from __future__ import annotations

import numpy as np

from hubensemble.errors import DataError


def check_16bit(images, *, what: str = "images",
                fix: str = "store x.astype(np.uint8)") -> None:
    """DataError when uint16 `images` (one array, or a list of arrays that are one data set,
    looked at as a whole) all lie in 0..255 and are not all 0: 8-bit data stored in a 16-bit
    type, which the 16-bit rule (v >> 8, the top 8 bits) would turn black, every image
    alike. Refused, not guessed: `fix` says what to store instead (8-bit data as uint8; a
    true 16-bit data set has values above 255 and keeps its top 8 bits). Nothing is
    returned; arrays of other dtypes are not looked at.
    """
    arrays = [images] if isinstance(images, np.ndarray) else list(images)
    top = max((int(a.max()) for a in arrays if a.dtype == np.uint16 and a.size), default=0)
    if 0 < top <= 255:
        raise DataError(f"{what}: uint16 pixels that all lie in 0..255 (max {top}) look like "
                        f"8-bit data stored in a 16-bit type; the 16-bit rule keeps the top 8 "
                        f"bits (v >> 8), which would make every image black. For 8-bit data "
                        f"{fix}; true 16-bit data (values above 255) keeps its top 8 bits")


def check_16bit_splits(splits: dict, *, what: str = "images", fix: str | None = None) -> None:
    """DataError when the uint16 images of one split (`splits`: {name: an array, or a list
    of arrays, of one split}) all lie in 0..255, not all 0, while another split's reach above
    255: 8-bit data in a 16-bit type beside true 16-bit data. The data set's one 16-bit rule
    (v >> 8, decided for the whole: `check_16bit`) made every image of the 8-bit split black
    (a new-user check: an npz's x_test stored as uint8.astype(uint16) beside 16-bit x_train
    and x_val scored at chance, said only as duplicates; the reverse failed rank). Refused,
    not guessed per split: the split's names, both value ranges, and `fix` (default: the
    numpy fix for arrays named by the split names). Arrays of other dtypes are not looked at.
    """
    ranges = {}
    for name, arrays in splits.items():
        deep = [a for a in ([arrays] if isinstance(arrays, np.ndarray) else arrays)
                if a.dtype == np.uint16 and a.size]
        if deep:
            ranges[name] = (min(int(a.min()) for a in deep), max(int(a.max()) for a in deep))
    low = [n for n, (_, top) in ranges.items() if 0 < top <= 255]
    high = [n for n, (_, top) in ranges.items() if top > 255]
    if not (low and high):
        return

    def said(names):
        return " and ".join(f"{n} ({ranges[n][0]}..{ranges[n][1]})" for n in names)

    if fix is None:
        widen = " and ".join(f"{n}.astype(np.uint16) * 257" for n in low)
        narrow = ", ".join([*(f"{n}.astype(np.uint8)" for n in low),
                            *(f"({n} >> 8).astype(np.uint8)" for n in high)])
        fix = (f"store {' and '.join(low)} as 16-bit like the rest ({widen}), or every split "
               f"as 8-bit uint8 ({narrow})")
    raise DataError(f"{what}: the uint16 pixels of {said(low)} lie in 0..255, those of "
                    f"{said(high)} reach above 255: 8-bit data in a 16-bit type beside 16-bit "
                    f"data. The data set is 16-bit as a whole (v >> 8, the top 8 bits), which "
                    f"would make every image of {' and '.join(low)} black; {fix}")


def _eight_bit(channel: np.ndarray) -> np.ndarray:
    """`channel` (any dtype `to_rgb_uint8` takes) as the uint8 values it converts it to, for
    `check_array_values`' bounds (not range-checked: values outside 0..255, or NaN, are
    `to_rgb_uint8`'s refusal)."""
    if channel.dtype == np.uint16:
        return channel >> 8
    if channel.dtype == np.bool_:
        return channel.astype(np.uint8) * 255
    if channel.dtype.kind == "f":
        return np.floor(channel.astype(np.float64) * 255.0 + 0.5)
    return channel


def _pixel_arrays(images) -> list[np.ndarray]:
    """`images` (one array [..., H, W, C] or a list of [H, W, C]) as a list of the non-empty
    arrays with a channel axis of 1..4 (other shapes are left to `to_rgb_uint8`)."""
    arrays = [images] if isinstance(images, np.ndarray) else list(images)
    return [a for a in arrays if a.ndim >= 3 and a.shape[-1] in (1, 2, 3, 4) and a.size]


def zero_one(images) -> bool:
    """Whether the integer pixels of `images` (one array [..., H, W, C] or a list of [H, W,
    C], C in 1..4: one data set or split; bool and uint16 are not looked at) have colour
    channels (alpha left out) that all lie in 0..1, not all 0: a 0/1 mask or binary images,
    which as 0..255 pixels read near black (`check_array_values` refuses them; the tfds
    loader reads them as 0 / 255)."""
    colour = [a[..., :-1] if a.shape[-1] in (2, 4) else a for a in _pixel_arrays(images)
              if a.dtype.kind in "iu" and a.dtype != np.uint16]
    top = max((int(c.max()) for c in colour), default=0)
    return top == 1 and min(int(c.min()) for c in colour) >= 0


def check_array_values(images, *, what: str = "images", name: str = "x", then: str = "") -> None:
    """DataError for the pixels of arrays that `to_rgb_uint8` would turn into images no one
    meant, looked at as one data set (or split): `images`, one array [..., H, W, C] or a list
    of arrays [H, W, C], C in 1..4 (other shapes are left to `to_rgb_uint8`).

    * Integer pixels (not bool, not uint16: `check_16bit`) whose colour channels all lie in
      0..1, not all 0: a 0/1 mask or labels, which as 0..255 pixels read near black (1 of
      255). A bool array is the mask as 0 / 255 (the float rule: False, True as 0.0, 1.0).
    * An alpha channel (the last of 2 or 4) at most 1 of 255 in every pixel: every image
      composited onto white reads white (a 4th channel of 0 padding, RGBX, or a 0/1 alpha).

    Both were taken without a word (a new-user check). `what` starts the message, `name`
    is the array's name in the fix ("x", "x_train"), `then` ends it (how to store it so)."""
    arrays = _pixel_arrays(images)
    if zero_one(arrays):
        raise DataError(f"{what}: integer pixels that all lie in 0..1 look like a 0/1 mask or "
                        f"labels, which as 0..255 pixels read near black (1 of 255); store "
                        f"{name}.astype(bool) (a mask as 0 / 255) or ({name} * 255)."
                        f"astype(np.uint8), or floats in [0, 1]{then}")
    # The converted alpha's bounds are those of the alpha's own (every rule is monotonic):
    # no float64 copy of a whole float channel.
    alpha = [_eight_bit(np.array([a[..., -1].min(), a[..., -1].max()])) for a in arrays
             if a.shape[-1] in (2, 4) and a.dtype.kind in "iubf"]
    # Values outside 0..255 (or NaN) are `to_rgb_uint8`'s refusal, in its words.
    if alpha and all(np.isfinite(c).all() and c.min() >= 0 and c.max() <= 255 for c in alpha) \
            and max(float(c.max()) for c in alpha) <= 1:
        c = arrays[0].shape[-1]
        raise DataError(f"{what}: the alpha channel (the last of {c}) is at most 1 of 255 in "
                        f"every pixel, so every image, composited onto white, reads white. "
                        f"A last channel that is not alpha (RGBX padding) is left out: store "
                        f"{name}[..., :{c - 1}]; a 0/1 alpha mask is stored as 0 / 255 "
                        f"({name}[..., -1] * 255, or bool){then}")
