"""The decode policy on the Python side: image files and bytes -> uint8 RGB [H, W, 3].

Every loader, `evaluate` and `predict` turn files into pixels here, and through the same
function the exported SavedModel runs (`hubensemble.data.graph.decode_pixels`), so a file
gives the same pixels in training and in serving:

* JPEG, PNG, GIF, BMP (uncompressed) and WebP: the graph decoder, run eagerly. Nothing falls
  back to another decoder when it refuses such a file, because `serve_bytes` would then
  refuse what training used.
* Every other format Pillow reads (TIFF, compressed BMP, PPM, AVIF, ...): the kept decoder,
  Pillow, with the conversion of `_decode_with_pil` (a TIFF comes turned upright by its
  Orientation tag, or its XMP tiff:Orientation without one, as Pillow loads it; every other
  format's orientation, EXIF or XMP, is left as stored, as the graph leaves it).
  `serve_bytes` cannot run Pillow, so it
  refuses these; `predict` sends their decoded pixels to it as a lossless PNG instead.
* Anything else is refused (`UnreadableImage`) with the real reason, naming what the file is.
* Either way, an image whose shorter side is above `sniff.MAX_SHORT_SIDE` (1024 px) is then
  shrunk to it, aspect kept, by the graph's own ops (`shrink.shrink_to_short_side`);
  `Decoded.shrunk_from` keeps the size it had, which the loaders count.

Arrays (npz, tfds, in-memory) go through `to_rgb_uint8`, whose alpha and 16-bit rules are the
graph decoder's (an array of 8-bit values in uint16 is refused: `check_16bit`); they are
not shrunk (they are in memory at their size already, and `serving_default` takes them so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import warnings

import numpy as np

from hubensemble import _tf
from hubensemble.data.filepixels import (DARK_BELOW, alpha_fault, eight_bit_in_16, png_fault,
                                         transparent)
from hubensemble.data.sniff import (CONVERT_ELSEWHERE, GRAPH_FORMATS, INVALID, MAX_SHORT_SIDE,
                                    SIGNATURES, UNSUPPORTED, animated_webp, image_format,
                                    outside_graph, sniff, sniff_row, too_short)
from hubensemble.data.arraychecks import (  # noqa: F401 (their home; decode's names too)
    check_16bit, check_16bit_splits, check_array_values, zero_one)
from hubensemble.errors import DataError, checks_keywords, first_line, without_op_decorations
from hubensemble.text import counted, escaped
from hubensemble.threads import warnings_block

log = logging.getLogger(__name__)


def composite_on_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 colour [..., C] over white by uint8 alpha [..., 1]: round(c * a + 255 * (1 - a)),
    a = alpha / 255, exactly ((c * alpha + 255 * (255 - alpha) + 127) // 255, the graph
    decoder's formula); returns uint8 [..., C]. Computed in uint16, which holds every step
    (at most 255 * 255 + 127), in place, a block of leading rows (about FLOAT_BLOCK_VALUES
    values) at a time: the uint16 copies were of the whole array, 3x an RGBA array's bytes
    beside it (a batch of RGBA images from an npz)."""
    out = np.empty(colour.shape, np.uint8)
    if colour.ndim == 0 or not colour.size:
        return out
    step = max(1, FLOAT_BLOCK_VALUES // max(1, colour[0].size))
    for i in range(0, colour.shape[0], step):
        block = colour[i:i + step].astype(np.uint16)
        a = alpha[i:i + step].astype(np.uint16)
        block *= a
        np.subtract(255, a, out=a)
        a *= 255
        block += a
        block += 127
        block //= 255
        out[i:i + step] = block
    return out


def to_rgb_uint8(array, *, what: str = "images", known_16bit: bool = False) -> np.ndarray:
    """Pixels with a trailing channel axis (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) → uint8 RGB.

    `array`: [..., H, W, C] (one image or a batch), C in 1..4. Returns a C-contiguous uint8
    array of the same leading shape with C = 3, values 0..255.
    uint8 is kept; uint16 is 16-bit and keeps its top 8 bits (v >> 8, as
    tf.image.convert_image_dtype and the PNG decoder), unless all its values lie in 0..255
    and not all are 0: that is 8-bit data stored in a 16-bit type, which v >> 8 would turn
    black, and is refused (`check_16bit`; `known_16bit=True` skips that look, for samples
    known to be 16-bit: a 16-bit file, or a data set checked whole); bool → 0/255; other
    integers must lie in 0..255 and are kept; floats must lie in [0, 1] and become
    round(v * 255) (half up). Alpha is composited onto white (`composite_on_white`), so
    transparent pixels read as background; grey is repeated into R, G and B.

    Raises DataError (its message starts with `what`) for another channel count (naming
    channels-first order, [N, C, H, W], when it looks like it), 8-bit values in uint16,
    integers outside 0..255, floats outside [0, 1] or not finite, and other dtypes.
    """
    a = np.asarray(array)
    if a.ndim < 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise DataError(f"{what}: expected a trailing channel axis of 1, 2, 3 or 4, got shape "
                        f"{list(a.shape)}{_channels_first_hint(a.shape)}")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        if not known_16bit:
            check_16bit(a, what=what)
        # Shifted into uint8 as numpy's ufunc buffers go: no uint16 copy of the whole array
        # (an npz's 16-bit split of 4,000 images at 224 px held 1.2 GB more while loading).
        a = np.right_shift(a, 8, out=np.empty(a.shape, np.uint8), casting="unsafe")
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8)
        a *= 255  # in place: no second uint8 array
    elif a.dtype.kind in "iu":  # not timedelta64, which numpy counts as an integer
        if a.size and (a.min() < 0 or a.max() > 255):
            raise DataError(f"{what}: integer pixels must lie in 0..255 (got {a.min()}.."
                            f"{a.max()}); {_int_fix(a.dtype, int(a.min()), int(a.max()))}")
        a = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        # min and max carry NaN and infinities: no whole-array mask for the usual case.
        lo, hi = (a.min(), a.max()) if a.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise DataError(_not_finite(a, what))
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{what}: float pixels must lie in [0, 1] (got {_bound(lo)}.."
                            f"{_bound(hi)}); {_float_fix(float(lo), float(hi))}")
        a = _float_to_uint8(a)
    else:
        raise DataError(f"{what}: pixels of dtype {a.dtype} are not supported; use uint8 "
                        f"0..255, uint16 for 16-bit, floats in [0, 1] or bool (0 / 255)")
    if a.shape[-1] in (2, 4):
        a = composite_on_white(a[..., :-1], a[..., -1:])
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


#: Pixel values converted at once (16 MB of float64; `composite_on_white`'s blocks: 4 MB of
#: uint16): the rounding rule's float64 copies were of the whole array, 4x a float32
#: array's bytes beside it (9.6 GB above the 2.4 GB of 4,000 float32 images at 224 px: more
#: than an 8 GiB laptop holds).
FLOAT_BLOCK_VALUES = 1 << 21


def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    """Float pixels `a` [N, ...] in [0, 1] -> uint8 round(v * 255), half up (floor(v * 255 +
    0.5) in float64: exact for every float32 value), a block of leading rows at a time, so
    the float64 arithmetic holds about FLOAT_BLOCK_VALUES values, not all of them."""
    out = np.empty(a.shape, np.uint8)
    step = max(1, FLOAT_BLOCK_VALUES // max(1, a[0].size)) if a.shape[0] else 1
    for i in range(0, a.shape[0], step):
        block = a[i:i + step].astype(np.float64)
        block *= 255.0
        block += 0.5
        out[i:i + step] = np.floor(block, out=block)
    return out


def _int_fix(dtype, low: int, high: int) -> str:
    """What to store for integer pixels from `low` to `high` that leave 0..255, by the range
    they show: "store uint8" was the advice for every range, which an int8 array of uint8
    pixels read as signed (-128..127) cannot follow by a cast alone."""
    if dtype == np.int8:
        return ("as int8: uint8 pixels read as signed are x.view(np.uint8); "
                "pixels centred on 0 (x - 128) are (x.astype(np.int16) + 128).astype(np.uint8)")
    if low < 0:
        return ("they look centred or standardised (negative values): undo that (x + 128, "
                "or x * std + mean) to store uint8 0..255, or floats in [0, 1]")
    if high <= 65535:
        return "they look like 16-bit values: store x.astype(np.uint16) (16-bit)"
    return "scale them to 0..255 the way they were made and store uint8"


def _channels_first_hint(shape) -> str:
    """"; it looks channels-first ..." when axis -3 of `shape` is a channel count (1, 3, 4)
    and the last is not: [N, C, H, W] (or [C, H, W]) with the transpose to store."""
    if len(shape) < 3 or shape[-3] not in (1, 3, 4) or shape[-1] in (1, 2, 3, 4):
        return ""
    n = len(shape)
    axes = ", ".join(map(str, [*range(n - 3), n - 2, n - 1, n - 3]))
    order = "[N, C, H, W]" if n == 4 else "[C, H, W]" if n == 3 else "channels-first"
    return (f"; it looks channels-first ({order}, {counted(shape[-3], 'channel')} on axis "
            f"{n - 3}): store x.transpose({axes}) for channels-last [..., H, W, C]")


def _float_fix(low: float, high: float) -> str:
    """What to store for float pixels from `low` to `high` that leave [0, 1], by the range
    they show: "divide by 255" was the advice for every range, which leaves [-1, 1] pixels
    and standardised ones (mean 0, negative values) out of range all the same."""
    if low >= -0.05 and high <= 1.05:  # a resize's ringing, rounding: a little outside
        return "they overshoot [0, 1] a little: store np.clip(x, 0, 1)"
    if -1.0 <= low < 0.0 and high <= 1.0:
        return "they look scaled to [-1, 1]: store (x + 1) / 2"
    if low < 0.0:
        return ("they look standardised (negative values: x minus a mean, over a standard "
                "deviation, as for ImageNet): undo the normalisation, x * std + mean with the "
                "std and mean used (per channel), which gives back [0, 1], or 0..255 to divide "
                "by 255, or store uint8 0..255")
    if high <= 255.0:
        return "they look like 0..255 values: store x / 255, or uint8 0..255"
    if high <= 65535.0:
        return "they look like 16-bit values: store x / 65535, or uint16 0..65535"
    return "scale them to [0, 1] the way they were made, or store uint8 0..255"


def _not_finite(a: np.ndarray, what: str) -> str:
    """The refusal of float pixels `a` ([..., H, W, C]) with NaN or infinity: how many
    values and images, the first image's index (a batch's), and the fix."""
    bad = ~np.isfinite(a)
    counts = (("NaN", np.isnan(a).sum()), ("infinity", np.isinf(a).sum()))
    kinds = " and ".join(k for k, n in counts if n)
    fix = "replace the values (np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0))"
    if a.ndim != 4:  # one image
        return (f"{what}: float pixels hold {kinds} ({counted(int(bad.sum()), 'value')}); drop "
                f"the image, or {fix}")
    images = np.flatnonzero(bad.any(axis=(1, 2, 3)))
    return (f"{what}: float pixels hold {kinds} ({counted(int(bad.sum()), 'value')} in "
            f"{counted(len(images), 'image')}, the first at index {int(images[0])}); drop those "
            f"images with their labels (keep = np.isfinite(x).all(axis=(1, 2, 3)); x, y = "
            f"x[keep], y[keep]), or {fix}")


def _bound(value) -> str:
    """A float pixel bound for an error: 4 significant digits, or every digit its dtype
    holds when 4 would hide that it lies outside [0, 1] (1 + 1e-7 is not "1")."""
    short = f"{value:.4g}"
    outside = value > 1.0 or value < 0.0
    return str(value) if outside and 0.0 <= float(short) <= 1.0 else short


class UnreadableImage(Exception):
    """A file that is not a usable image; the message is the reason shown to people.

    Not a DataError: loaders skip such files and report them (Task.skipped), they do not stop.
    """


_Unreadable = UnreadableImage  # the name before the data package split


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A decoded image: `pixels` uint8 [H, W, 3] (H, W >= 1), the file's `format` ("PNG",
    "TIFF", ...), and `in_graph`: True when the graph decoder read it, so serve_bytes gives
    these very pixels for the same bytes. `orientation`: the file's orientation tag (EXIF's,
    else XMP's tiff:Orientation, as Pillow reads them: `exif_orientation`) when it asks for a
    turn or flip (2..8) and the pixels do not apply it (every format but TIFF: as stored);
    `turned`: that tag when the pixels apply it (a TIFF's, which Pillow applies as it loads
    the file: `TURNED_FORMATS`). At most one of the two is set.
    `shrunk_from`: (height, width) as decoded when the shorter side was above
    `sniff.MAX_SHORT_SIDE` and `pixels` are the image shrunk to it, else None."""

    pixels: np.ndarray
    format: str
    in_graph: bool
    orientation: int | None = None
    turned: int | None = None
    shrunk_from: tuple[int, int] | None = None
    #: The largest value of a 16-bit file (a PNG's colour samples: `_png_dark`; the kept
    #: decoder's grey TIFF, …) whose values all lie in 256..`filepixels.DARK_BELOW` - 1
    #: (12-bit data: it decodes dark, 0..15), else None.
    dark: int | None = None


#: Formats whose orientation tag the kept decoder applies: Pillow turns a TIFF upright as it
#: loads it (its Orientation tag, 274, is a baseline TIFF field; since Pillow 6.2, and since
#: 10.1 it drops the tag once applied, so `ImageOps.exif_transpose` does not turn it twice;
#: it is `exif_transpose` itself, so a TIFF without tag 274 is turned by its XMP packet's).
#: No other decoder applies one: TensorFlow's JPEG, PNG and WebP decoders and Pillow's (WebP,
#: AVIF, …) give the pixels as stored.
TURNED_FORMATS = ("TIFF", "BigTIFF")

#: Formats outside the graph whose orientation Pillow reports by their own structures (no
#: EXIF block needed): TIFF's tags, AVIF's irot / imir boxes (HEIF's transformations,
#: reported as the EXIF tag; Pillow's AVIF decoder does not apply them).
_TAGGED_FORMATS = TURNED_FORMATS + ("HEIF/AVIF",)


#: Where an EXIF block can sit: JPEG's APP1 ("Exif\0\0"), PNG's eXIf chunk, WebP's EXIF chunk.
_EXIF_MARKERS = (b"Exif\x00\x00", b"eXIf", b"EXIF")

#: An XMP orientation that asks for a turn or flip, in the pattern `Image.getexif` looks for
#: when the EXIF block has no orientation (`tiff:Orientation="6"` or
#: `<tiff:Orientation>6</tiff:Orientation>`): JPEG's XMP APP1, PNG's iTXt, WebP's XMP chunk
#: hold the packet uncompressed (the XMP standard's rule for PNG), so the bytes show it.
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation(?:="|>)[2-8]')


def exif_orientation(data: bytes) -> int | None:
    """The orientation tag of an image file's bytes as Pillow reads it when it is 2..8 (a
    turn or flip that viewers apply: 6 = turn 90 degrees clockwise to view), else None (no
    tag, 1 = as stored, or a value outside the standard's 1..8). The tag is EXIF's (0x0112),
    else XMP's `tiff:Orientation` (attribute or element form), as `Image.getexif` and
    `ImageOps.exif_transpose` read it. Only the kept decoder's TIFFs are decoded turned by
    it (`TURNED_FORMATS`; docs/data.md, "Decoding"); loaders count both kinds, so the user
    learns that a client which turns photos upright sends the model other pixels
    (docs/export.md). Pillow is asked only for bytes that hold an EXIF block, an XMP
    orientation of 2..8 (`_XMP_ORIENTATION`), a TIFF (whose tags are its own) or an AVIF
    (its irot / imir boxes, which Pillow reports as this tag)."""
    if (sniff(data) not in _TAGGED_FORMATS and not any(m in data for m in _EXIF_MARKERS)
            and not _XMP_ORIENTATION.search(data)):
        return None
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            value = im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - a damaged EXIF block only loses the count
        return None
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def _short(err: Exception) -> str:
    """One line of at most 200 characters from an exception, without TF's op decorations."""
    text = str(err).strip().splitlines()
    text = text[-1] if text else type(err).__name__
    # TF prefixes op errors with "{{function_node ...}}" and suffixes "[Op:DecodeImage]".
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:\w+\]\s*$", "", text)
    return text[:200] or type(err).__name__


def op_error_reason(err: Exception) -> str:
    """The reason inside a TensorFlow op error raised by a decoder, for people: the line
    `errors.first_line` digs out of a graph error, without "Graph execution error:", TF's
    op decorations ("{{function_node …}}", "[Op:…]") and an Assert's "assertion failed: [ ]"
    wrapper (at most 300 characters)."""
    text = re.sub(r"^Graph execution error:\s*", "", first_line(err))
    found = re.match(r"assertion failed: \[(.*)\]", text)
    if found:  # the Assert prints its string with C escapes: \' \" \\ (UTF-8 left as is)
        return re.sub(r"\\(['\"\\])", r"\1", found.group(1).strip())
    return without_op_decorations(text)[:300] or type(err).__name__


def _graph_decode(data: bytes):
    """(pixels, format, (height, width) before the shrink) from the graph decoder, or
    (None, kind, reason) when it refuses: kind "unsupported" (not a graph format), "invalid"
    or "damaged" (a graph format).

    The branch of `graph.decode_pixels` that the file's first bytes select runs on its own
    (`graph.decoder_for`): the same ops as inside serve_bytes, traced per format met."""
    from hubensemble._tf import tensorflow as tf

    from hubensemble.data.graph import decoder_for

    row = sniff_row(data)
    try:
        pixels, size = decoder_for(row)(tf.constant(data))
        return pixels.numpy(), SIGNATURES[row][0], tuple(int(v) for v in size.numpy())
    except (tf.errors.OpError, UnicodeDecodeError) as e:
        # UnicodeDecodeError: TensorFlow fails to decode an error message that quotes bytes.
        reason = (op_error_reason(e) if isinstance(e, tf.errors.OpError)
                  else "TensorFlow's decoder rejected it")
    for prefix, kind in ((UNSUPPORTED, "unsupported"), (INVALID, "invalid")):
        if reason.startswith(prefix):
            return None, kind, reason[len(prefix):].lstrip(": ")
    from hubensemble.data.graph import too_large_words  # a valid file past the decoder's size

    return None, "damaged", (too_large_words(data)
                             or f"a damaged {sniff(data) or 'image'} file ({reason})")


def decode_bytes(data: bytes, *, name: str | None = None, orientation: bool = True
                 ) -> Decoded:
    """Encoded image bytes → `Decoded` (pixels uint8 RGB [H, W, 3], values 0..255).

    JPEG, PNG, GIF, BMP and WebP go through the graph decoder (docs/data.md, "Decoding"),
    other formats Pillow reads through the kept decoder. Imports TensorFlow for the graph's
    formats only: the graph refuses every other file by its first bytes, so the reason for
    those is its words without running it (`sniff.outside_graph`).

    Raises UnreadableImage with the real reason (what the file is and why it cannot be
    read) for empty, damaged and unknown files and images of zero pixels. `name` (the file's
    path) is how a warning Pillow gives while decoding names the file (`_decode_with_pil`).
    `orientation` False leaves `Decoded.orientation` and `Decoded.turned` None without
    looking for the EXIF tag: only the data loaders count it, and predicting or serving a
    phone photo need not search its megabytes for an EXIF block (a TIFF is turned all the
    same: Pillow does it as it loads the file).
    """
    data = bytes(data)
    if orientation:  # Pillow reads the EXIF block: its warnings name the file
        def tag(data):
            with pillow_warnings(name):
                return exif_orientation(data)
    else:
        def tag(_):
            return None
    if not data:
        raise UnreadableImage("an empty file (0 bytes)")
    kind = sniff(data)  # the format by its first bytes, as the graph's `sniff_index`
    if kind in GRAPH_FORMATS and (short := too_short(data)):  # the graph's words, no TF
        raise UnreadableImage(short)
    if kind in GRAPH_FORMATS and not animated_webp(data):
        # libjpeg prints warnings such as "Unsupported marker type 0x20" on fd 2 for a damaged
        # file, beside the reason this raises: logged at INFO, off stderr (`native_notices`).
        with _tf.native_notices(f"decoding {name or 'an image'}"):
            got = _graph_decode(data)
        if got[0] is not None:
            pixels, fmt, size = got
            if fault := _png_fault(data, pixels, name):  # black, or white (alpha)
                raise UnreadableImage(fault)
            return Decoded(_checked(pixels), fmt, True, tag(data), shrunk_from=_shrunk(size),
                           dark=_png_dark(data, pixels) if fmt == "PNG" else None)
        _, kind, reason = got
        if kind != "unsupported":  # e.g. an RLE-compressed BMP is "unsupported" too
            raise UnreadableImage(reason)
        what = reason.split(";")[0]
    else:  # the graph refuses it by its first bytes: its words, without running it
        what = "an animated WebP file" if animated_webp(data) else outside_graph(data)
    try:
        pixels, fmt, dark = _decode_with_pil(data, name)
    except UnreadableImage:
        raise
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, …)
        pil = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", _short(e))
        # An image of a format no reader here knows (a HEIC photo): the way on, which a
        # folder of them lacked (a new-user check); a document or unknown bytes need none.
        way = CONVERT_ELSEWHERE if image_format(data) and "identify" in pil else ""
        raise UnreadableImage(f"{what}; neither TensorFlow nor Pillow can decode it "
                              f"(Pillow: {pil}){way}") from None
    # A graph format read by Pillow (an animated WebP, an RLE BMP) is named as the graph
    # names it: an animated WebP was "WEBP", a still one "WebP".
    fmt = kind if kind in GRAPH_FORMATS else fmt
    shrunk_from = _shrunk(pixels.shape[:2])
    if shrunk_from:  # the graph's shrink, after Pillow's decode
        # The first TensorFlow import of a Pillow-only run happens here: its start-up notices
        # (CUDA, oneDNN) are hidden unless --verbose, as around the graph decoder above.
        with _tf.native_notices(f"shrinking {name or 'an image'}"):
            from hubensemble.data.shrink import shrink_to_short_side

            pixels = shrink_to_short_side(pixels).numpy()
    if kind in TURNED_FORMATS:  # Pillow turned it upright as it loaded it
        return Decoded(_checked(pixels), fmt, False, turned=tag(data), shrunk_from=shrunk_from,
                       dark=dark)
    return Decoded(_checked(pixels), fmt, False, tag(data), shrunk_from=shrunk_from, dark=dark)


def _png_fault(data: bytes, pixels: np.ndarray | None, name: str | None) -> str | None:
    """`filepixels.png_fault`, or for the graph's other formats with alpha (GIF, WebP, BMP)
    `filepixels.alpha_fault`: one rule of "transparent everywhere" for every format with
    alpha; Pillow's warnings on the way (its look at the alpha) said naming the file `name`
    (`pillow_warnings`)."""
    with pillow_warnings(name):
        return png_fault(data, pixels) or alpha_fault(data, pixels)


def _png_dark(data: bytes, pixels: np.ndarray) -> int | None:
    """`Decoded.dark` of a PNG the graph decoded to `pixels`: the largest colour sample of a
    16-bit file whose samples all lie in 256..DARK_BELOW - 1, as the kept decoder's 16-bit
    TIFF is counted; else None. Looked at only when its pixels (the top 8 bits) all lie
    below DARK_BELOW >> 8 and not all are 0; the samples are then decoded at 16 bits by
    TensorFlow's PNG decoder, interlaced files too. A 16-bit PNG of 12-bit data trained on
    pixels of 0..15 without the count a 16-bit TIFF of the same values got."""
    if len(data) < 29 or data[24] != 16 or not pixels.any() or \
            pixels.max() >= DARK_BELOW >> 8:
        return None
    from hubensemble._tf import tensorflow as tf

    try:
        with _tf.native_notices("looking at a 16-bit PNG"):
            samples = tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()
    except tf.errors.OpError:
        return None
    top = int(samples[..., :1 if samples.shape[-1] < 3 else 3].max(initial=0))
    return top if 255 < top < DARK_BELOW else None


def _shrunk(size) -> tuple[int, int] | None:
    """(height, width) of a decoded size that the shrink to MAX_SHORT_SIDE changes, else
    None."""
    h, w = (int(v) for v in size)
    return (h, w) if min(h, w) > MAX_SHORT_SIDE else None


def decode_image_bytes(data: bytes) -> np.ndarray:
    """Encoded image bytes → uint8 RGB [H, W, 3] (`decode_bytes(data).pixels`).

    Raises UnreadableImage with the reason for bytes that are not a readable image.
    """
    return decode_bytes(data, orientation=False).pixels


def _checked(img):
    """`img` unless it has no pixels."""
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise UnreadableImage(f"decoded to an empty image of shape {list(img.shape)}")
    return img


# (file, warning) pairs already logged: one warning per file is enough when a caller decodes
# a file again (predict runs a refused batch's files one by one).
_WARNED: set = set()


def _decode_with_pil(data: bytes, name: str | None = None
                     ) -> tuple[np.ndarray, str, int | None]:
    """The kept decoder: (pixels, Pillow's format name, `Decoded.dark`) of a file the graph
    does not decode,
    with the warnings Pillow gives on the way ("Truncated File Read") logged naming the file
    `name` (they named Pillow's own source line, not the image).

    The conversion (docs/data.md): the first frame (a TIFF turned upright by its Orientation
    tag, which Pillow applies as it loads it; other formats as stored); 16 and 32-bit integer
    grey ("I;16*", "I") clipped to 0..65535 and then v >> 8, as 16-bit PNGs; float grey
    ("F") must lie in [0, 1] (round(v * 255)); 1-bit → 0 / 255; grey and RGB as stored;
    anything with alpha or a transparency key (LA, PA, RGBA, palette with transparency) →
    RGBA, composited onto white as everywhere; a 16-bit file of values all in 1..255 (black
    by v >> 8) and an alpha of at most 1 everywhere (all white) raise UnreadableImage
    (`filepixels`); other modes (CMYK, YCbCr, LAB, palette) →
    Pillow's convert("RGB").
    """
    with pillow_warnings(name):
        return _pil_pixels(data)


@contextlib.contextmanager
def pillow_warnings(name: str | None, *, look: bool = False):
    """Every warning given inside the block (Pillow's, where it opens, decodes or reads the
    EXIF of an image: "Truncated File Read", "Corrupt EXIF data", "Palette images with
    Transparency expressed in bytes…") logged naming the file `name` (None: "an image"),
    each (file, warning) once (`_WARNED`): "PATH: Pillow warned while decoding it
    (UserWarning: …); decoded all the same". At INFO (RUN/log.txt, --verbose) instead, and
    not counted as said, when the block raises (the file is then refused, named with its
    reason: one line for it, not two) or is a `look` at a header that the decode of the
    same bytes reads again (`check_identifiable`: the decode says the warning once, with
    whether it decoded). Python printed
    them named by Pillow's source line, never the image ("py.warnings: …/PIL/
    TiffImagePlugin.py:…: UserWarning: Corrupt EXIF data", five times for one predict). Wraps
    Pillow's work only: its lock (`threads.warnings_block`) would hold the graph decoder's
    threads apart."""
    raised = True
    with warnings_block(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
            raised = False
        finally:
            for w in caught:
                said = f"{w.category.__name__}: {w.message}"
                quiet = raised or look
                key = (name, said, "info") if quiet else (name, said)  # INFO: not yet said
                if key not in _WARNED:
                    _WARNED.add(key)
                    log.log(logging.INFO if quiet else logging.WARNING,
                            "%s: Pillow warned while %s (%s)%s",
                            escaped(name) if name else "an image",
                            "reading it" if quiet else "decoding it", said,
                            "" if quiet else "; decoded all the same")


def _pil_pixels(data: bytes) -> tuple[np.ndarray, str, int | None]:
    """`_decode_with_pil`'s conversion itself."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        fmt = im.format or "unknown"
        im.load()
        mode = im.mode
        if mode.startswith("I;16") or mode == "I":
            a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
            if 0 < (top := int(a.max(initial=0))) <= 255:  # black by v >> 8 (filepixels)
                raise UnreadableImage(eight_bit_in_16(fmt, top))
            # A 16-bit file is 16-bit by its header, whatever its values (as 16-bit PNGs).
            return (to_rgb_uint8(a[..., None], what="image", known_16bit=True), fmt,
                    top if 255 < top < DARK_BELOW else None)
        if mode == "F":
            return (to_rgb_uint8(np.asarray(im, dtype=np.float64)[..., None], what="image"),
                    fmt, None)
        if mode == "1":
            a = np.asarray(im.convert("L"))
        elif mode in ("L", "RGB") and "transparency" not in im.info:
            a = np.asarray(im)
        elif mode in ("LA", "La", "PA", "RGBA", "RGBa", "P") or "transparency" in im.info:
            a = np.asarray(im.convert("RGBA"))
            if (top := int(a[..., 3].max(initial=0))) <= 1:  # white on white (filepixels)
                raise UnreadableImage(transparent(fmt, top))
        else:  # CMYK, YCbCr, LAB, HSV, …
            a = np.asarray(im.convert("RGB"))
    if a.ndim == 2:
        a = a[..., None]
    return to_rgb_uint8(a, what="image"), fmt, None


def read_image(path: str, *, orientation: bool = True) -> Decoded:
    """The image in file `path` as `Decoded` (see `decode_bytes`, and its `orientation`).

    Raises UnreadableImage when the file cannot be read (the OS reason) or decoded.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UnreadableImage(f"cannot read it: {e.strerror or e}") from None
    return decode_bytes(data, name=str(path), orientation=orientation)


@checks_keywords
def read_image_file(path: str) -> np.ndarray:
    """The image in file `path` as uint8 RGB [H, W, 3] (see `decode_bytes`).

    Raises UnreadableImage when the file cannot be read (the OS reason) or decoded.
    """
    return read_image(path, orientation=False).pixels


def servable_bytes(data: bytes, decoded: Decoded | None = None, *,
                   name: str | None = None) -> tuple[bytes, Decoded]:
    """(bytes for serve_bytes, Decoded) of an image file's bytes: the bytes themselves when
    the graph decodes them, else a lossless PNG of the kept decoder's pixels, which
    serve_bytes decodes to exactly those pixels. `decoded`: `decode_bytes(data)` when the
    caller has it already (not decoded twice); `name` as `decode_bytes`'s; the Decoded it
    makes itself has no `orientation` or `turned`. Raises UnreadableImage as `decode_bytes`."""
    decoded = decoded or decode_bytes(data, name=name, orientation=False)
    if decoded.in_graph:
        return bytes(data), decoded
    from hubensemble._tf import tensorflow as tf

    return tf.io.encode_png(decoded.pixels).numpy(), decoded


def serving_blob(data: bytes, *, name: str | None = None) -> bytes:
    """What `predict` sends to serve_bytes for an image file's bytes, decoding nothing that
    serve_bytes decodes itself: the bytes as they are when their first bytes name one of its
    formats (JPEG, PNG, GIF, BMP, a still WebP: `sniff.GRAPH_FORMATS`), else
    `servable_bytes`' lossless PNG of the kept decoder's pixels (TIFF, animated WebP, …).
    `servable_bytes` decodes every file first, so predict decoded (and shrank) each JPEG and
    PNG twice, once here and once in serve_bytes. A file of those formats that the graph
    refuses (a damaged one; an RLE-compressed BMP, which it leaves to the kept decoder) is
    refused by serve_bytes; `servable_bytes` on its bytes then gives the reason, or the PNG.
    `name`: the file's path, as `decode_bytes`'. Raises UnreadableImage as `decode_bytes`
    for the other files, and for a PNG that decodes all black or white, or a GIF, WebP or
    BMP all white (`filepixels.png_fault`, `alpha_fault`), which the loaders skip."""
    data = bytes(data)
    if data and sniff(data) in GRAPH_FORMATS and not animated_webp(data):
        if fault := _png_fault(data, None, name):  # serve_bytes would read it black or white
            raise UnreadableImage(fault)
        return data
    return servable_bytes(data, name=name)[0]


def check_identifiable(data: bytes, *, name: str | None = None) -> None:
    """Refuses, without decoding pixels, bytes that no decoder can read as an image: an
    empty file, one that ends inside the header of its format (`sniff.too_short`: "too
    short to be a PNG file (8 bytes)"), a file whose first bytes name no format TensorFlow
    decodes and whose header Pillow does not recognise (text, a PDF, HEIC without a
    codec, …). Raises
    UnreadableImage with `decode_bytes`' reason (it is run on those bytes, which are refused
    at their first bytes or header). Returns None for anything else, which may still be
    damaged past its header: `decode_bytes` (or serve_bytes) finds that when it decodes it.
    A PNG that decodes all black or all white (`filepixels.png_fault`: 8-bit values in a
    16-bit file, an alpha of 0 everywhere) is refused too, and a GIF, WebP or BMP all white
    (`filepixels.alpha_fault`): serve_bytes would read it so, and the loaders skip it (a PNG
    of 16 bits or with alpha, a GIF, WebP or BMP whose header says alpha, is read for that;
    no other).
    `predict` looks at every file so before TensorFlow loads; it decoded the whole of each
    file of another format (a TIFF) to do so, and again with its batch."""
    import io

    from PIL import Image

    data = bytes(data)
    if data and sniff(data) in GRAPH_FORMATS:
        if short := too_short(data):  # ends inside its header: serve_bytes' words
            raise UnreadableImage(short)
        if fault := _png_fault(data, None, name):  # serve_bytes would read it black or white
            raise UnreadableImage(fault)
        return
    if data:
        try:
            with pillow_warnings(name, look=True), Image.open(io.BytesIO(data)):
                return
        except Exception:  # PIL raises many types (UnidentifiedImageError, OSError, …)
            pass
    decode_bytes(data, name=name, orientation=False)  # raises with the reason


__all__ = ["Decoded", "GRAPH_FORMATS", "TURNED_FORMATS", "UnreadableImage", "check_16bit",
           "check_16bit_splits", "check_identifiable", "composite_on_white", "decode_bytes",
           "decode_image_bytes", "exif_orientation", "op_error_reason", "read_image",
           "read_image_file", "servable_bytes", "serving_blob", "to_rgb_uint8"]
