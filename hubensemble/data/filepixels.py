"""Image files whose pixels decode all black or all white by the decode policy: skipped, with why.

The npz rules (`arraychecks.check_16bit`, `check_array_values`) refuse an array of 8-bit
values in uint16 (the 16-bit rule, v >> 8, makes it black) and an alpha of at most 1 of 255
everywhere (composited onto white, it reads white). Files of the same pixels were used
without a word (a new-user check): a 16-bit PNG of 8-bit values (what
`cv2.imwrite(path, x.astype(np.uint16))` writes) decoded to zeros, an RGBA PNG of alpha 0
to white. One file is not a data set: such a file is skipped, counted and named with its
reason and a way on (`decode.UnreadableImage`), while the run goes on, as a damaged file is.
A true 16-bit file (values above 255: 12-bit microscope data, 0..4095, reads dark, 0..15)
keeps its top 8 bits, as the npz rule keeps a 16-bit array's.

PNG is read here from its chunks (zlib, numpy: no TensorFlow, no Pillow for the 16-bit
look), so `predict` can look before serve_bytes decodes the bytes; a GIF, WebP or BMP from
its header, whose alpha (when it says one) Pillow then reads (`alpha_fault`; a 32-bit BMP's
from its bytes); other formats
are looked at as Pillow decodes them (`decode._pil_pixels`).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_PNG = b"\x89PNG\r\n\x1a\n"
#: Samples per pixel of each PNG colour type, and how many of them are colour (not alpha).
_CHANNELS = {0: (1, 1), 2: (3, 3), 3: (1, 1), 4: (2, 1), 6: (4, 3)}


#: A 16-bit file whose values all lie below this (12-bit data, 0..4095) decodes dark: its top
#: 8 bits are 0..15. Kept, as the npz rule keeps true 16-bit data, and counted (`dark_note`).
DARK_BELOW = 4096


def dark_note(dark: list[tuple[str, int]]) -> str | None:
    """The data summary's note (`taskwords`, said once with the rest) for the 16-bit files
    (`dark`: (path, largest value) of each, `decode.Decoded.dark`: a PNG's colour samples,
    a grey TIFF's) whose values all lie below DARK_BELOW: "2 16-bit images hold values up
    to 3728 of 65535 (e.g. PATH: 12-bit data?), which decode dark (the top 8 bits, 0..14 of
    255), as predict sends them: scale them to 16 bits (v * 16 for 12-bit data) or save
    them as 8-bit"; None without any. A folder of 12-bit microscope TIFFs trained on images
    of 1..14 of 255 without a word (a new-user check)."""
    if not dark:
        return None
    from hubensemble.text import counted, paths_shown

    top = max(v for _, v in dark)
    hold, decode = ("holds", "decodes") if len(dark) == 1 else ("hold", "decode")
    return (f"{counted(len(dark), '16-bit image')} {hold} values up to {top} of 65535 (e.g. "
            f"{paths_shown([dark[0][0]])}: 12-bit data?), which {decode} dark (the top 8 "
            f"bits, 0..{top >> 8} of 255), as predict sends them: scale them to 16 bits "
            f"(v * 16 for 12-bit data) or save them as 8-bit")


def eight_bit_in_16(kind: str, top: int) -> str:
    """The reason a 16-bit `kind` file ("PNG", "TIFF") whose values all lie in 0..`top`
    (<= 255, not all 0; a PNG's is said as 255: `_sixteen_bit_top`) is skipped."""
    return (f"a 16-bit {kind} whose values all lie in 0..{top} of 65535: 8-bit data in a "
            "16-bit file, which the 16-bit rule (its top 8 bits, as serve_bytes reads it) "
            "decodes black; save it as 8-bit (e.g. cv2.imwrite(path, x.astype(np.uint8)))")


def transparent(kind: str, top: int) -> str:
    """The reason a `kind` file whose alpha is at most `top` (0 or 1) of 255 everywhere is
    skipped."""
    return (f"a {kind} whose alpha is {top} of 255 in every pixel: composited onto white, as "
            "serve_bytes reads it, it decodes all white; save it without alpha (e.g. "
            "Image.open(path).convert('RGB').save(path), if its colours are the picture)")


def _chunks(data: bytes):
    """(type, body) of each chunk of PNG `data` up to IEND (a cut file: the chunks whole)."""
    at = len(_PNG)
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        yield kind, data[at + 8:at + 8 + size]
        if kind == b"IEND":
            return
        at += 12 + size


#: Adam7's passes (PNG spec, 8.2): (first column, first row, column step, row step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))

#: Inflated bytes looked at first for the 16-bit look: true 16-bit data shows a high byte
#: above 0 in its first rows, so the rest of the file is not inflated for it.
FIRST_LOOK = 1 << 16


def _passes(width: int, height: int, interlace: int) -> list[tuple[int, int]]:
    """(width, height) of each reduced image the filtered rows hold in order: the image
    itself, or Adam7's seven passes (an empty pass holds no rows, not even filter bytes)."""
    if not interlace:
        return [(width, height)]
    return [(max(0, -(-(width - x) // dx)), max(0, -(-(height - y) // dy)))
            for x, y, dx, dy in _ADAM7]


def _header(data: bytes) -> tuple[int, int, int, int, int]:
    """(width, height, bit depth, colour type, interlace) of PNG `data`'s IHDR."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour, interlace


def png_fault(data: bytes, pixels: np.ndarray | None = None) -> str | None:
    """Why PNG `data` decodes all black or all white (the reasons above), else None (and for
    anything that is not a whole PNG). `pixels`: its decoded uint8 [H, W, 3] when the caller
    has them (the graph decoder's); the look (the 16-bit samples, the alpha) is then taken
    only for black or white ones (the 16-bit samples of a file with alpha always). Without
    them (predict, before serve_bytes decodes the bytes) nothing is decoded whole that need
    not be: a 16-bit file's rows are inflated until a high byte above 0 shows
    (`FIRST_LOOK`), and the alpha is read only when the first pixel's is at most 1
    (`_first_alpha`) and no filtered alpha byte shows one above 1 (`_alpha_shows`): an
    alpha channel's from the inflated rows alone (`_lane_top`, pass by pass for an
    interlaced file), a palette's tRNS from the indices its rows hold (`_palette_top`),
    Pillow decoding the file only when those cannot tell: every RGBA and tRNS PNG was
    decoded whole here, then again by serve_bytes. Interlaced files are looked at as the
    others. Never raises: a damaged file is the decoder's."""
    if not data.startswith(_PNG) or len(data) < 33:
        return None
    try:
        width, height, depth, colour, interlace = _header(data)
        channels, colours = _CHANNELS[colour]
        chunks = list(_chunks(data))
        # With an alpha channel the pixels are composited onto white: black colour need not
        # read black, so the samples are looked at whatever the pixels (a half alpha of
        # 8-bit-in-16 colour was used by the loaders and refused by predict).
        if depth == 16 and (pixels is None or not pixels.any() or colours < channels):
            top = _sixteen_bit_top(chunks, _passes(width, height, interlace), channels,
                                   colours)
            if top is not None and 0 < top <= 255:
                return eight_bit_in_16("PNG", top)
        # A palette's tRNS is alpha; a grey or RGB file's tRNS colour key is not, as the
        # graph decoder reads it (docs/data.md): such a file was refused here, all keyed,
        # though serve_bytes and the loaders read its stored colours.
        alpha = colours < channels or (colour == 3 and any(k == b"tRNS" for k, _ in chunks))
        # Composited onto white, an alpha of 1 reads 254 or 255: such a file was used by
        # the loaders (they looked only at 255 everywhere) and refused by predict.
        if alpha and (pixels is None or pixels.min() >= 254):
            first = _first_alpha(chunks, depth, colour, channels) if pixels is None else None
            if first is not None and first > 1:
                return None  # one pixel shows through: not white everywhere
            top = None
            if pixels is None and colours < channels:
                passes = _passes(width, height, interlace)
                shows, raw = _alpha_shows(chunks, passes, channels, depth)
                if shows:
                    return None
                top = _lane_top(raw, passes, channels, depth)
            elif pixels is None:  # a palette's tRNS: the alpha of the indices used
                top = _palette_top(chunks, _passes(width, height, interlace), depth)
            if top is None:
                top = _alpha_top(data)
            if top is not None and top <= 1:
                return transparent("PNG", top)
    except (KeyError, ValueError, struct.error, zlib.error):
        return None
    return None


def _colour_bytes(raw: bytes, passes, channels: int, colours: int):
    """(high bytes, low bytes, whole): the filtered high and low bytes of the colour
    samples in the whole rows of 16-bit PNG rows `raw` (arrays, one per reduced image
    reached), and whether `raw` holds every row."""
    highs, lows, at = [], [], 0
    for width, height in passes:
        if not width or not height:
            continue
        stride = 1 + width * channels * 2
        rows = min(height, (len(raw) - at) // stride)
        if rows > 0:
            block = np.frombuffer(raw, np.uint8, rows * stride, at).reshape(rows, stride)
            samples = block[:, 1:].reshape(rows, width, channels, 2)[:, :, :colours]
            highs.append(samples[..., 0])
            lows.append(samples[..., 1])
        if rows < height:
            return highs, lows, False
        at += stride * height
    return highs, lows, True


def _sixteen_bit_top(chunks, passes, channels, colours) -> int | None:
    """255 when the colour samples of a 16-bit PNG all lie in 0..255, not all 0 (their high
    bytes all 0), 0 when every one is 0, None when one is above 255 or it cannot be told (a
    cut file). `passes`: `_passes`' reduced images. From the filtered rows, not unfiltered:
    PNG's filters predict each byte from the same byte of the pixel before and of the row
    above in the same reduced image (an interlaced file's pass), so a byte position (a
    colour's high byte, its low byte) is 0 in every pixel exactly when its filtered bytes
    are (by induction over the rows and pixels); a filtered high byte above 0 in the first
    rows tells true 16-bit data without inflating the rest."""
    inflate = zlib.decompressobj()
    raw = inflate.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"),
                             FIRST_LOOK)
    highs, _, _ = _colour_bytes(raw, passes, channels, colours)
    if any(h.any() for h in highs):
        return None  # a sample above 255: true 16-bit data
    raw += inflate.decompress(inflate.unconsumed_tail) + inflate.flush()
    highs, lows, whole = _colour_bytes(raw, passes, channels, colours)
    if not whole or any(h.any() for h in highs):
        return None
    return 255 if any(low.any() for low in lows) else 0


def _alpha_shows(chunks, passes, channels: int, depth: int) -> bool:
    """Whether a PNG's alpha channel is above 1 somewhere, as its filtered alpha bytes (a
    16-bit alpha's high bytes) tell without unfiltering: were every alpha 0 or 1, each
    filter's prediction (the pixel before, the one above, above-left, or the floor of the
    mean of two) would be 0 or 1 too, so every filtered byte 0, 1 or 255; one byte else (a
    soft edge's 128) shows an alpha above 1. The first FIRST_LOOK inflated bytes are looked
    at first, then the rest. False when it cannot be told so (an alpha of only 0 and 255:
    `_lane_top` reads the alpha). Returns (that, the inflated rows looked at)."""
    size = channels * depth // 8
    inflate = zlib.decompressobj()
    raw = inflate.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"),
                             FIRST_LOOK)
    if _lane_shows(raw, passes, size, size - depth // 8):
        return True, raw
    if not inflate.unconsumed_tail:
        return False, raw
    raw += inflate.decompress(inflate.unconsumed_tail) + inflate.flush()
    return _lane_shows(raw, passes, size, size - depth // 8), raw


def _lane_shows(raw: bytes, passes, size: int, lane: int) -> bool:
    """Whether a filtered byte at `lane` of the `size`-byte pixels of PNG rows `raw` (the
    whole rows it holds, reduced image after reduced image) lies in 2..254."""
    at = 0
    for width, height in passes:
        if not width or not height:
            continue
        stride = 1 + width * size
        rows = min(height, (len(raw) - at) // stride)
        if rows > 0:
            block = np.frombuffer(raw, np.uint8, rows * stride, at).reshape(rows, stride)
            alpha = block[:, 1:].reshape(rows, width, size)[:, :, lane]
            if ((alpha - 2) < 253).any():  # 2..254, in uint8 arithmetic
                return True
        if rows < height:
            return False
        at += stride * height
    return False


def _lane_top(raw: bytes, passes, channels: int, depth: int) -> int | None:
    """The largest alpha (0..255, as `_alpha_top`) of a PNG with an alpha channel from its
    inflated rows `raw`, None when they do not hold every row (`_alpha_top` then reads it).
    PNG's filters predict each byte from the same byte of the pixel before and of the row
    above in the same reduced image: the alpha bytes of each row, after its filter-type
    byte, are the filtered rows of a grey image of the alpha alone, which Pillow unfilters
    (`_rows_look`) without inflating the file again or decoding its colours; an interlaced
    file's seven passes (`passes`) are seven such images. Pillow decoded the whole file
    here (an RGBA PNG clear at its first pixel, of alpha 0 and 255 only: predict's look
    cost 2.1 Pillow decodes, an interlaced one's 2.5 until 2026-12-08: bench_predict_decode)."""
    size, lane = channels * depth // 8, depth // 8
    top = 0
    for width, height, block in _pass_rows(raw, passes, size):
        if block.shape[0] < height:
            return None
        alpha = block[:, 1:].reshape(height, width, size)[:, :, size - lane:]
        rows = np.concatenate([block[:, :1], alpha.reshape(height, width * lane)], axis=1)
        seen = _rows_look(width, height, depth, 0, rows.tobytes())
        if seen is None:
            return None
        top = max(top, seen)
    return top >> 8 if depth == 16 else top


def _pass_rows(raw: bytes, passes, size: int):
    """(width, height, rows) of each non-empty reduced image (`_passes`) of PNG rows `raw`,
    in order: `rows`, a uint8 [R, 1 + row bytes] view of its whole rows in `raw` (R < height
    when `raw` ends inside it: the last one yielded). `size`: the bytes of a pixel, or for
    pixels of under 8 bits, minus their bits (a row then holds ceil(width * bits / 8))."""
    at = 0
    for width, height in passes:
        if not width or not height:
            continue
        stride = 1 + (width * size if size > 0 else -(-width * -size // 8))
        rows = min(height, max(0, len(raw) - at) // stride)
        yield width, height, np.frombuffer(raw, np.uint8, rows * stride, at).reshape(
            rows, stride)
        if rows < height:
            return
        at += stride * height


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC (PNG spec 5.3)."""
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _rows_look(width: int, height: int, depth: int, colour: int, rows: bytes,
               used: bool = False):
    """Pillow's reading of filtered PNG rows `rows` of a `width` x `height` image, not
    interlaced, of bit `depth` and colour type `colour` (0: grey, 3: a palette's indices),
    from a PNG of those rows stored uncompressed: Pillow's C code unfilters them, and the
    file they came from is not inflated again. Returns the largest sample (int), or with
    `used` which indices the rows hold (bool [256]); None when Pillow cannot read them."""
    import io

    from PIL import Image

    head = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    palette = _png_chunk(b"PLTE", bytes(3 << depth)) if colour == 3 else b""
    png = (_PNG + _png_chunk(b"IHDR", head) + palette
           + _png_chunk(b"IDAT", zlib.compress(rows, 0)) + _png_chunk(b"IEND", b""))
    try:
        with Image.open(io.BytesIO(png)) as im:
            if used:
                return np.asarray(im.histogram()[:256]) > 0  # a P image's: indices
            return int(im.getextrema()[1])
    except Exception:  # noqa: BLE001 - Pillow's limits: `_alpha_top` says what it says
        return None


def _palette_top(chunks, passes, depth: int) -> int | None:
    """The largest alpha (0..255, as `_alpha_top`: a palette entry's tRNS value, 255 past
    its tRNS entries) of the pixels of a palette PNG with a tRNS chunk, None when it cannot
    be told so (`_alpha_top` then reads it). The alpha is the entries' of the indices used:
    when every index the depth allows has the same alpha, that alpha, without inflating;
    else that of the indices in the whole rows of the first FIRST_LOOK inflated bytes
    (Pillow unfilters them, `_indices_used`) when one of them is above 1 (a value above 1,
    enough to tell the file is not clear everywhere), else of every row's. Pillow decoded
    the whole file to RGBA here when its first pixel was clear (a sticker on a clear
    background: bench_predict_decode)."""
    trns = next(body for kind, body in chunks if kind == b"tRNS")
    alphas = np.full(256, 255, np.int64)
    alphas[:min(256, len(trns))] = np.frombuffer(trns[:256], np.uint8)
    if len(set(alphas[:1 << depth].tolist())) == 1:
        return int(alphas[0])
    inflate = zlib.decompressobj()
    raw = inflate.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"),
                             FIRST_LOOK)
    whole = len(raw) < FIRST_LOOK  # else the first look: more may follow
    used = _indices_used(raw, passes, depth, whole)
    if not whole and used is not None and not (alphas[used] > 1).any():
        raw += inflate.decompress(inflate.unconsumed_tail) + inflate.flush()
        used = _indices_used(raw, passes, depth, True)
    return None if used is None or not used.any() else int(alphas[used].max())


def _indices_used(raw: bytes, passes, depth: int, whole: bool) -> np.ndarray | None:
    """bool [256]: which palette indices the whole rows of PNG rows `raw` (of `depth` bits
    per pixel, reduced image after reduced image, `passes`) hold, by Pillow (`_rows_look`);
    None when Pillow cannot read them, or `raw` was meant `whole` and ends inside a row (a
    cut file: the decoder's to refuse)."""
    used = np.zeros(256, bool)
    for width, height, block in _pass_rows(raw, passes, 1 if depth == 8 else -depth):
        if block.shape[0]:
            seen = _rows_look(width, block.shape[0], depth, 3, block.tobytes(), used=True)
            if seen is None:
                return None
            used |= seen
        if block.shape[0] < height and whole:
            return None
    return used


def _first_alpha(chunks, depth: int, colour: int, channels: int) -> int | None:
    """The alpha (0..255, as Pillow's RGBA reads it: a 16-bit alpha's top 8 bits, a
    palette's tRNS entry) of a PNG's first pixel, None without one. The first pixel's bytes
    are stored as they are under every filter (each predicts from the pixel before and the
    row above, both 0 there; an interlaced file's first pass starts with it), so one
    inflated row start tells it."""
    size = max(1, depth * channels // 8)
    raw = zlib.decompressobj().decompress(
        b"".join(body for kind, body in chunks if kind == b"IDAT"), 1 + size)
    if len(raw) < 1 + size:
        return None
    pixel = raw[1:]
    trns = next((body for kind, body in chunks if kind == b"tRNS"), None)
    if colour in (4, 6):
        return pixel[-2 if depth == 16 else -1]
    if colour == 3 and trns is not None:
        index = pixel[0] >> (8 - depth)
        return trns[index] if index < len(trns) else 255
    return None


def _alpha_top(data: bytes) -> int | None:
    """The largest alpha of an image file as 8 bits (Pillow's RGBA: a 16-bit alpha's top 8
    bits, a palette's transparency), None when Pillow cannot read it."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            # An alpha channel is read as it is (a copy of the image to RGBA doubled the cost).
            if im.mode in ("RGBA", "LA"):
                return int(im.getchannel("A").getextrema()[1])
            return int(im.convert("RGBA").getchannel("A").getextrema()[1])
    except Exception:  # noqa: BLE001 - a damaged file is the decoder's to refuse
        return None


def alpha_in_header(data: bytes) -> str | None:
    """The format ("GIF", "WebP", "BMP") of `data` when its header says the image has alpha,
    as the graph decoder reads it (docs/data.md, "Decoding"), else None: a GIF whose
    Graphic Control Extension before its first image marks a transparent colour; a still
    WebP whose VP8X chunk sets the alpha flag (0x10 of byte 20) or a lossless one (VP8L)
    whose alpha_is_used bit is set (bit 28 of its header word, RFC 9649 3.2); a 16 or
    32-bit BMP of bit fields (BI_BITFIELDS, BI_ALPHABITFIELDS) with an alpha mask (the v4+
    headers', or BI_ALPHABITFIELDS' fourth; `bmpgraph`). Reads the header bytes only."""
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) > 13:
        flags = data[10]
        pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
        while pos + 1 < len(data) and data[pos] == 0x21:  # extensions up to the image
            if data[pos + 1] == 0xF9 and pos + 3 < len(data) and data[pos + 3] & 1:
                return "GIF"
            pos += 2
            while pos < len(data) and data[pos]:  # its sub-blocks, to the 0 terminator
                pos += data[pos] + 1
            pos += 1
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) > 24:
        if (data[12:16] == b"VP8X" and data[20] & 0x10) or (
                data[12:16] == b"VP8L" and data[24] & 0x10):
            return "WebP"
        return None
    if data[:2] == b"BM" and len(data) >= 70:
        dib, = struct.unpack("<I", data[14:18])
        bits, compression = struct.unpack("<HI", data[28:34])
        if bits in (16, 32) and compression in (3, 6) and (dib >= 56 or compression == 6) \
                and struct.unpack("<I", data[66:70])[0]:
            return "BMP"
    return None


def alpha_fault(data: bytes, pixels: np.ndarray | None = None) -> str | None:
    """Why a GIF, WebP or BMP `data` with alpha (`alpha_in_header`) decodes all white: an
    alpha of at most 1 of 255 everywhere, composited onto white as serve_bytes reads it
    (`transparent`), the rule of a PNG (`png_fault`) and of the kept decoder's formats
    (`decode._pil_pixels`); else None. `pixels`: its decoded uint8 [H, W, 3] when the caller
    has them (the graph decoder's): the alpha is then looked at only when every pixel is 254
    or 255. Without them (predict, serving_blob) only a file whose header says alpha is
    decoded (by Pillow, `_alpha_top`; a 32-bit BMP's alpha bytes are read as they are,
    `_bmp_alpha_top`); the others are not read past the header. A WebP or
    GIF transparent everywhere was used as white by the loaders and predict, while a PNG
    or TIFF so was refused. Never raises: a damaged file is the decoder's."""
    kind = alpha_in_header(data)  # first: a JPEG's pixels are not looked at again
    if kind is None or (pixels is not None and pixels.size and pixels.min() < 254):
        return None
    top = _bmp_alpha_top(data) if kind == "BMP" else None
    if top is None:
        top = _alpha_top(data)
    return transparent(kind, top) if top is not None and top <= 1 else None


#: The R, G, B, A masks of the 32-bit BMP layouts with alpha Pillow reads (its
#: BmpImagePlugin's MASK_MODES: ABGR, RGBA, BGRA, BGAR), each alpha a whole byte.
_BMP_ALPHA_MASKS = ((0xFF000000, 0xFF0000, 0xFF00, 0xFF), (0xFF, 0xFF00, 0xFF0000, 0xFF000000),
                    (0xFF0000, 0xFF00, 0xFF, 0xFF000000), (0xFF000000, 0xFF00, 0xFF, 0xFF0000))


def _bmp_alpha_top(data: bytes) -> int | None:
    """The largest alpha (0..255) of a 32-bit BMP of bit fields (BI_BITFIELDS, a v3, OS/2 v2,
    v4 or v5 header) whose masks are a layout of `_BMP_ALPHA_MASKS`, read from its pixel
    bytes as they are (uncompressed, 4 bytes a pixel, no row padding: the alpha is one byte
    of each), as Pillow's decode reads it (`_alpha_top`); None for any other BMP, one that
    ends inside its pixels or that Pillow refuses for its size (`_alpha_top` then says what
    Pillow says). Pillow decoded the whole file to look at the alpha."""
    if len(data) < 70:
        return None
    offset, dib = struct.unpack("<II", data[10:18])
    width, height, _, bits, compression = struct.unpack("<IIHHI", data[18:34])
    masks = struct.unpack("<4I", data[54:70])
    if height >> 24 == 0xFF:  # top-down: a negative height, as Pillow tells it
        height = 2 ** 32 - height
    if (bits != 32 or compression != 3 or dib not in (56, 64, 108, 124) or not offset
            or masks not in _BMP_ALPHA_MASKS or not 0 < width < 2 ** 31 or not height):
        return None
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > 2 * limit:  # Pillow's DecompressionBombError
        return None
    size = 4 * width * height
    if len(data) < offset + size:
        return None
    lane = masks[3].bit_length() // 8 - 1  # the alpha's byte in each little-endian pixel
    return int(np.frombuffer(data, np.uint8, size, offset)[lane::4].max())
