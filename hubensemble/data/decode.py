"""The decode policy: any pixels -> uint8 RGB [H, W, 3]; image files and bytes -> those pixels.

Kept in one module on purpose: every loader turns files, bytes and arrays into pixels through
these functions, so the rule (which decoder, how 16-bit, alpha and grey become uint8 RGB)
lives in one place and can change in one place.
"""

from __future__ import annotations

import re

import numpy as np

from hubensemble.errors import DataError


def to_rgb_uint8(array, *, what: str = "images") -> np.ndarray:
    """Pixels with a trailing channel axis (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) → uint8 RGB.

    `array`: [..., H, W, C] (one image or a batch), C in 1..4. Returns a C-contiguous uint8
    array of the same leading shape with C = 3, values 0..255.
    uint8 is kept; uint16 keeps its top 8 bits (v >> 8, as tf.image.convert_image_dtype);
    bool → 0/255; other integers must lie in 0..255; floats must lie in [0, 1] and become
    round(v * 255) (half up). Alpha is composited onto white, so transparent pixels read as
    background; grey is repeated into R, G and B.

    Raises DataError (its message starts with `what`) for another channel count, integers
    outside 0..255, floats outside [0, 1] or not finite, and other dtypes.
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


class UnreadableImage(Exception):
    """A file that is not a usable image; the message is the reason shown to people.

    Not a DataError: loaders skip such files and report them (Task.skipped), they do not stop.
    """


_Unreadable = UnreadableImage  # the name before the data package split


def _short(err: Exception) -> str:
    """One line of at most 200 characters from an exception, without TF's op decorations."""
    text = str(err).strip().splitlines()
    text = text[-1] if text else type(err).__name__
    # TF prefixes op errors with "{{function_node ...}}" and suffixes "[Op:DecodeImage]".
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]\s*$", "", text)
    return text[:200] or type(err).__name__


def decode_image_bytes(data: bytes) -> np.ndarray:
    """Encoded image bytes → uint8 RGB [H, W, 3] (values 0..255, H, W >= 1).

    tf.io first (JPEG, PNG, GIF first frame, BMP, WebP; 16-bit PNG scaled to 8 bits), then
    PIL for what TensorFlow cannot decode (TIFF, unusual JPEG colour spaces, …); channels and
    dtypes then go through `to_rgb_uint8` (alpha onto white, grey to RGB). Imports TensorFlow.

    Raises UnreadableImage with the reason (both decoders' errors) for empty or undecodable
    bytes and images that decode to zero pixels.
    """
    if not data:
        raise UnreadableImage("empty file (0 bytes)")
    import tensorflow as tf

    try:
        img = tf.io.decode_image(data, expand_animations=False, dtype=tf.uint8).numpy()
        return _checked(to_rgb_uint8(img))
    except (tf.errors.OpError, ValueError, DataError) as e:
        tf_reason = _short(e)
    try:
        return _checked(_decode_with_pil(data))
    except UnreadableImage:
        raise
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, …)
        raise UnreadableImage(f"not a readable image ({tf_reason}; PIL: {_short(e)})") from None


def _checked(img):
    """`img` unless it has no pixels."""
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise UnreadableImage(f"decoded to an empty image of shape {list(img.shape)}")
    return img


def _decode_with_pil(data: bytes) -> np.ndarray:
    """The PIL fallback of `decode_image_bytes`: 16-bit grey keeps its top byte as tf does."""
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
    """The image in file `path` as uint8 RGB [H, W, 3] (see `decode_image_bytes`).

    Raises UnreadableImage when the file cannot be read (the OS reason) or decoded.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UnreadableImage(f"cannot read: {e.strerror or e}") from None
    return decode_image_bytes(data)
