"""The decode policy in TensorFlow ops: image bytes -> uint8 RGB, in training and in serve_bytes.

`decode_pixels` is the one function from a file's bytes to pixels: the exported SavedModel's
`serve_bytes` signature calls it inside its graph, and the Python paths (the folder loader,
`evaluate`, `predict`) run the very branch of it that the file's first bytes select
(`decoder_for`), so a file gives the same pixels in both by construction. It imports
TensorFlow; `hubensemble.data.decode` loads it only when a file is decoded.

Per format (the first bytes decide, `hubensemble.data.sniff.SIGNATURES`):

* JPEG: `tf.io.decode_jpeg(channels=3, dct_method="INTEGER_ACCURATE")` (libjpeg-turbo's
  accurate integer IDCT and fancy upsampling, the same pixels as Pillow): baseline and
  progressive; grey is repeated into R, G, B; CMYK/YCCK with the Adobe APP14 marker is read
  as Adobe's inverted CMYK (Photoshop's convention, as Pillow), without it as plain CMYK.
* PNG: `tf.io.decode_png` at 8 bits: grey, grey + alpha, RGB, RGBA, palette (its tRNS becomes
  alpha; a grey or RGB PNG's tRNS colour key is ignored, as TensorFlow reads it); 16-bit
  samples keep their top byte (v >> 8, libpng's strip).
* GIF: the first frame (`tf.io.decode_gif`); the transparent colour of the first frame is
  turned white by rewriting its palette entry (TensorFlow would leave those pixels black).
* BMP: decoded here from its header: uncompressed 1, 2, 4, 8-bit palette images (the
  palette's colours, not the indices `tf.io.decode_bmp` returns), 16-bit (5-5-5 or bit
  fields), 24-bit, 32-bit (BGRX, or bit fields with an optional alpha mask); bottom-up and
  top-down; a channel of b bits becomes round(v * 255 / (2^b - 1)). RLE/JPEG/PNG-compressed
  BMPs are refused as unsupported (the Python paths read them with Pillow).
* WebP: still images, `tf.io.decode_image`, with alpha. An animated WebP is refused as
  unsupported (TensorFlow's decoder corrupts the heap on some: `_webp`); the Python paths
  read its first frame with Pillow, as every format outside the graph.

An image whose shorter side is above `sniff.MAX_SHORT_SIDE` (1024 px) is then shrunk, aspect
kept, until it is 1024 (`shrink_to_short_side`): a phone photo is held at 4.2 MB, not 36.6.

Alpha (PNG, 32-bit BMP, WebP) is composited onto white: out = round(c * a + 255 * (1 - a)),
a = alpha / 255, in exact integer arithmetic ((c * alpha + 255 * (255 - alpha) + 127) // 255),
in uint16; no decoder widens an opaque image past uint8 (`composite_on_white`).
Anything else is refused with an InvalidArgumentError whose message starts with
`sniff.UNSUPPORTED` (another format: TIFF, HEIF, ... or an unknown one, naming it and its first
bytes) or `sniff.INVALID` (a damaged BMP); TensorFlow's own decoders report damaged JPEG, PNG,
GIF and WebP files in their words.

The decoders are written with explicit `tf.switch_case` / `tf.cond` (their only Python loops
run over the constant SIGNATURES table), so their tf.functions skip autograph: converting
this file's functions took about two thirds of the time of tracing `decode_pixels` (4.9 s
against 1.8 s without), paid by every export and every process that decodes a file.
"""

from __future__ import annotations

import functools

from hubensemble._tf import tensorflow as tf

from hubensemble.data.sniff import (GRAPH_FORMATS, GRAPH_FORMATS_TEXT,
                                    HEAD_BYTES, INVALID, NOT_IMAGES, SIGNATURES,
                                    TOO_LARGE_WORDS, UNSUPPORTED, article,
                                    convert_words)
from hubensemble.data.shrink import shrink_ops, shrink_to_short_side  # noqa: F401 (re-exported)

_NAMES = [name for name, _ in SIGNATURES] + ["unknown"]
_ARTICLES = [article(name) for name in _NAMES]
# What a refusal of a SIGNATURES row outside GRAPH_FORMATS says to do: convert an image.
_ADVICE = ["" if name in NOT_IMAGES or name == "unknown" else convert_words(name)
           for name in _NAMES]
# Branch of `_decode` per SIGNATURES row: a graph format's decoder, else a refusal.
_BRANCH = [GRAPH_FORMATS.index(n) if n in GRAPH_FORMATS else len(GRAPH_FORMATS)
           for n, _ in SIGNATURES] + [len(GRAPH_FORMATS) + 1]
_BMP_COMPRESSION = {1: "RLE8", 2: "RLE4", 4: "JPEG", 5: "PNG"}
_BMP_HEADERS = (12, 40, 52, 56, 108, 124)  # core, info, v2, v3, v4, v5
_BMP_DEPTHS = (1, 2, 4, 8, 16, 24, 32)

# Each format's decoder and the header readers of every decode and refusal path are
# tf.functions of one string scalar that TensorFlow does not inline ("_noinline", as
# `export.saved.refusal_path`): traced once per process, stored once per SavedModel, optimised
# when a request first reaches them. Inline, each export traced them at every call site (a
# second export in a process: 2.3 s of trace and save, 0.7 now), and a serve_bytes call every
# decoder (first call 1.6 s, 1.1 now; first refusal 1.6 s, 0.9): bench_decode_graph.py.
_on_one_file = functools.partial(
    tf.function, input_signature=[tf.TensorSpec([], tf.string)], autograph=False,
    experimental_attributes={"_noinline": True})


# ---------------------------------------------------------------------------------------------
# Small helpers on a string scalar and its bytes
# ---------------------------------------------------------------------------------------------

def _bytes_of(data, pad):
    """uint8 [len + pad]: the bytes of `data` then `pad` zeros (header reads never run off)."""
    return tf.io.decode_raw(tf.strings.join([data, tf.constant(b"\0" * pad)]), tf.uint8)


def _at(b, i):
    """Byte i of `b` as int64 (i clipped into range: the callers check lengths first)."""
    i = tf.clip_by_value(tf.cast(i, tf.int64), 0, tf.size(b, out_type=tf.int64) - 1)
    return tf.cast(tf.gather(b, i), tf.int64)


def _uint(b, offset, n):
    """The little-endian unsigned integer of `n` bytes at `offset`, int64."""
    idx = tf.cast(offset, tf.int64) + tf.range(n, dtype=tf.int64)
    idx = tf.clip_by_value(idx, 0, tf.size(b, out_type=tf.int64) - 1)
    vals = tf.cast(tf.gather(b, idx), tf.int64)
    return tf.reduce_sum(tf.bitwise.left_shift(vals, 8 * tf.range(n, dtype=tf.int64)))


def _signed32(v):
    return tf.where(v >= 2**31, v - 2**32, v)


def _text(v):
    return tf.strings.as_string(v)


def _byte_string(v):
    """A one-byte string of the int value `v` (0..255)."""
    table = tf.constant([bytes([i]) for i in range(256)])
    return tf.gather(table, tf.cast(v, tf.int32))


def _replace(data, pos, new: bytes):
    """`data` with len(new) bytes at `pos` replaced by `new` (same length)."""
    n = tf.strings.length(data, unit="BYTE")
    pos = tf.cast(pos, tf.int32)
    k = len(new) if isinstance(new, bytes) else 1
    return tf.strings.join([tf.strings.substr(data, 0, pos), new,
                            tf.strings.substr(data, pos + k, n - pos - k)])


def _refusal(checks):
    """An Assert op that fails with the message of the first (bad, message) in `checks`."""
    bads = tf.stack([bad for bad, _ in checks])
    messages = tf.stack([msg for _, msg in checks] + [tf.constant("")])
    first = tf.reduce_min(tf.where(tf.concat([bads, [True]], axis=0)))
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(bads)),
                               [tf.gather(messages, first)])


def _head_hex(data):
    """The first 8 bytes as spaced hex (how a refusal shows an unknown file)."""
    b = _bytes_of(data, 0)[:8]
    table = tf.constant([f"{i:02x}" for i in range(256)])
    return tf.strings.reduce_join(tf.gather(table, tf.cast(b, tf.int32)), separator=" ")


# ---------------------------------------------------------------------------------------------
# Alpha onto white, format by format
# ---------------------------------------------------------------------------------------------

def composite_on_white(image):
    """Pixels [H, W, C] (uint8, or integers 0..255 of another type; C = 1 grey, 2 grey + alpha,
    3 RGB, 4 RGBA, known only when run) -> uint8 [H, W, 3]: grey repeated into R, G, B; alpha
    composited onto white, round(c * a + 255 * (1 - a)) with a = alpha / 255, exactly
    ((c * alpha + 255 * (255 - alpha) + 127) // 255: integer arithmetic, half up; no value is
    ever half-way).

    Only an image with alpha is widened, and to uint16, which holds every step of that formula
    (c * alpha + 255 * (255 - alpha) <= 255 * 255, + 127 <= 65152): an opaque image (C 1 or 3)
    stays uint8. Everything was cast to int32 before (a 1000 x 30000 RGB PNG held 1.06 GB
    more at its peak for 90 MB of pixels; docs/data.md, "Decoding")."""
    x = tf.convert_to_tensor(image)
    if x.dtype != tf.uint8:
        x = tf.cast(x, tf.uint8)
    c = tf.shape(x)[-1]

    def grey(v):  # [H, W, 1] -> [H, W, 3], any dtype
        return tf.tile(v, [1, 1, 3])

    def over_white():
        colour = tf.cast(x[..., :-1], tf.uint16)
        alpha = tf.cast(x[..., -1:], tf.uint16)
        out = tf.cast((colour * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)
        return tf.cond(tf.equal(c, 2), lambda: grey(out), lambda: tf.identity(out))

    def opaque():
        return tf.cond(tf.equal(c, 1), lambda: grey(x), lambda: tf.identity(x))

    out = tf.cond(tf.equal(c % 2, 0), over_white, opaque)
    out.set_shape([None, None, 3])
    return out


@_on_one_file
def _jpeg(data):
    # The accurate integer IDCT (libjpeg's ISLOW): TensorFlow's default fast IDCT differs from
    # other decoders (Pillow, browsers) by up to ~10 levels; this one matches Pillow exactly.
    return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")


@_on_one_file
def _png(data):
    return composite_on_white(tf.io.decode_png(data, channels=0, dtype=tf.uint8))


@_on_one_file
def _webp(data):
    """A still WebP, its alpha composited onto white. An animated one (the VP8X chunk's
    animation flag, bit 1 of byte 20) is refused as unsupported, so the Python paths read its
    first frame with the kept decoder: TensorFlow's WebP decoder corrupts the heap on some
    (a lossy 2-frame 64 px file aborted the process, in serve_bytes too; tensorflow 2.21.0)."""
    with tf.control_dependencies([_refusal(_webp_checks(data)),
                                  _size_refusal(_webp_size(data), "a WebP file")]):
        return composite_on_white(tf.io.decode_image(data, channels=0, expand_animations=False))


def _webp_checks(data):
    """[(bad, message)] of a WebP's header: animated (refused as unsupported)."""
    head = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 21)]), 0, 21)
    flags = _at(tf.io.decode_raw(head, tf.uint8), 20)
    animated = (tf.equal(tf.strings.substr(head, 12, 4), b"VP8X")
                & (tf.bitwise.bitwise_and(flags, 2) > 0))
    return [(animated, tf.strings.join([UNSUPPORTED, ": an animated WebP file; serve_bytes "
                                        "decodes still WebP images only (send its first "
                                        "frame, e.g. as PNG)"]))]


def _skip_sub_blocks(b, n, p):
    """The position after the GIF sub-blocks from `p` of the bytes `b` (length `n`)."""
    return tf.while_loop(lambda p: (p < n) & tf.not_equal(_at(b, p), 0),
                         lambda p: [p + _at(b, p) + 1], [p])[0] + 1


@_on_one_file
def _gif_first_image(data):
    """(`_bytes_of(data, 16)`, length, global table's flag and length, positions of the first
    image descriptor and its Graphic Control Extension (-1: none), whether there is one)."""
    n = tf.cast(tf.strings.length(data, unit="BYTE"), tf.int64)
    b = _bytes_of(data, 16)
    flags = _at(b, 10)
    has_gct = tf.bitwise.bitwise_and(flags, 0x80) > 0
    gct_len = tf.where(has_gct, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64),
                                                          tf.bitwise.bitwise_and(flags, 7)),
                       tf.constant(0, tf.int64))

    def body(pos, gce):
        gce = tf.where(tf.equal(_at(b, pos + 1), 0xF9), pos, gce)
        return _skip_sub_blocks(b, n, pos + 2), gce

    pos, gce = tf.while_loop(lambda pos, gce: (pos < n) & tf.equal(_at(b, pos), 0x21), body,
                             [13 + gct_len, tf.constant(-1, tf.int64)])
    return b, n, has_gct, gct_len, pos, gce, (pos < n) & tf.equal(_at(b, pos), 0x2C)


def _size_refusal(size, what: str):
    """Assert op: a GIF or WebP (`what`) whose header's (height, width) `size` is `too_large`
    refused before decoding (their decoders take any size: a 7.5 KB WebP held 6.7 GB)."""
    large, words = _large(size)
    return _refusal([(large, tf.strings.join([f"{INVALID}: {what} ", words, TOO_LARGE]))])


def _gif_size(b, pos, has_image):
    """int64 [2]: (height, width) of the GIF bytes `b`'s first image at `pos` ([0, 0]: none)."""
    return tf.where(has_image, tf.stack([_uint(b, pos + 7, 2), _uint(b, pos + 5, 2)]),
                    tf.zeros([2], tf.int64))


@_on_one_file
def _webp_size(data):
    """int64 [2]: (height, width) by a WebP's header: VP8's 14-bit sides at bytes 26 and 28,
    VP8L's 14 bits each (minus 1) from 21, VP8X's canvas (minus 1) from 24; else [0, 0]."""
    b = tf.cast(_bytes_of(tf.strings.substr(data, 0, 30), 30), tf.int64)
    chunk, vp8l = tf.strings.substr(data, 12, 4), _uint(b, 21, 4)
    return tf.case([
        (tf.equal(chunk, b"VP8 "), lambda: tf.stack([b[28] + b[29] % 64 * 256,
                                                     b[26] + b[27] % 64 * 256])),
        (tf.equal(chunk, b"VP8L"), lambda: tf.stack([vp8l // 2 ** 14 % 2 ** 14 + 1,
                                                     vp8l % 2 ** 14 + 1])),
        (tf.equal(chunk, b"VP8X"), lambda: tf.stack([_uint(b, 27, 3) + 1, _uint(b, 24, 3) + 1]))],
        default=lambda: tf.zeros([2], tf.int64))


@_on_one_file
def _gif(data):
    """The first frame of a GIF, its transparent colour made white.

    The blocks before the first image descriptor are walked to find its Graphic Control
    Extension; when that marks a transparent index, the flag is cleared and the index's
    entry in the colour table the image uses (local, else global) becomes white, so the
    decoder paints those pixels white (alpha 0 composited onto white). A first frame of more
    pixels than TensorFlow's JPEG and PNG decoders take is refused first (`_size_refusal`).
    The decoder gets the bytes to the first frame's end and the trailer: it decodes every
    frame (a 0.5 MB GIF of 200 at 1000 px: 0.8 GB), and failed on a later one cut short.
    """
    b, n, has_gct, gct_len, pos, gce, has_image = _gif_first_image(data)
    too_large_check = _size_refusal(_gif_size(b, pos, has_image), "a GIF file")
    gce_flags = _at(b, gce + 3)
    transparent = has_image & (gce >= 0) & tf.equal(tf.bitwise.bitwise_and(gce_flags, 1), 1)
    index = _at(b, gce + 6)
    image_flags = _at(b, pos + 9)
    local = tf.bitwise.bitwise_and(image_flags, 0x80) > 0
    table = tf.where(local, pos + 10, tf.where(has_gct, tf.constant(13, tf.int64), -1))
    table_len = tf.where(local, 3 * tf.bitwise.left_shift(
        tf.constant(2, tf.int64), tf.bitwise.bitwise_and(image_flags, 7)), gct_len)
    patch = transparent & (table >= 0) & (3 * index + 3 <= table_len) & (table + table_len <= n)

    def patched():
        cleared = _replace(data, gce + 3, _byte_string(tf.bitwise.bitwise_and(gce_flags, 0xFE)))
        return _replace(cleared, table + 3 * index, b"\xff\xff\xff")

    end = _skip_sub_blocks(b, n, pos + 11 + tf.where(local, table_len, 0))  # descriptor: 10
    with tf.control_dependencies([too_large_check]):
        data = tf.cond(patch, patched, lambda: data)
        first = tf.strings.join([tf.strings.substr(data, 0, tf.cast(end, tf.int32)), b";"])
        return tf.io.decode_gif(tf.where(has_image & (end <= n), first, data))[0]


@_on_one_file
def _bmp(data):
    """A BMP from its header (see the module docstring for what is read)."""
    checks, (b, offset, row_bytes, h, w, height, bpp, dib, compression, entry,
             n_colours) = _bmp_header(data)
    with tf.control_dependencies([_refusal(checks)]):
        rows = tf.reshape(tf.slice(b, [offset], [row_bytes * h]), tf.stack([h, row_bytes]))
        rows = tf.cond(height < 0, lambda: rows, lambda: tf.reverse(rows, [0]))
        kind = tf.cast(tf.where(bpp <= 8, 0, tf.where(tf.equal(bpp, 24), 1, 2)), tf.int32)
        rgba = tf.switch_case(kind, [
            lambda: _bmp_palette(b, rows, w, bpp, 14 + dib, entry, n_colours),
            lambda: _bmp_bgr(rows, w),
            lambda: _bmp_masks(b, rows, w, bpp, dib, compression),
        ])
        return composite_on_white(rgba)


def _bmp_header(data):
    """([(bad, message)] of a BMP's header, the fields `_bmp` reads its pixels by)."""
    n = tf.cast(tf.strings.length(data, unit="BYTE"), tf.int64)
    b = _bytes_of(data, 128)
    dib = _uint(b, 14, 4)
    core = tf.equal(dib, 12)
    width = tf.where(core, _uint(b, 18, 2), _signed32(_uint(b, 18, 4)))
    height = tf.where(core, _uint(b, 20, 2), _signed32(_uint(b, 22, 4)))
    bpp = tf.where(core, _uint(b, 24, 2), _uint(b, 28, 2))
    compression = tf.where(core, tf.constant(0, tf.int64), _uint(b, 30, 4))
    clr_used = tf.where(core, tf.constant(0, tf.int64), _uint(b, 46, 4))
    offset = _uint(b, 10, 4)
    h, w = tf.abs(height), width
    row_bytes = (w * bpp + 31) // 32 * 4
    palette_max = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.minimum(bpp, 8))
    n_colours = tf.where((clr_used > 0) & (clr_used <= palette_max), clr_used, palette_max)
    entry = tf.where(core, tf.constant(3, tf.int64), 4)
    # A palette never reaches into the pixels: writers that leave the colour count 0 (the
    # core header has none) but store fewer than 2^bpp entries are read as they are.
    room = (offset - 14 - dib) // entry
    n_colours = tf.where(room > 0, tf.minimum(n_colours, room), n_colours)
    palette_end = 14 + dib + n_colours * entry
    fields = tf.equal(compression, 3) | tf.equal(compression, 6)
    compression_name = tf.gather(
        tf.constant([_BMP_COMPRESSION.get(i, f"type {i}") for i in range(8)] + ["unknown"]),
        tf.minimum(compression, 8))
    advice = ("; serve_bytes decodes uncompressed 1, 2, 4, 8, 16, 24 and 32-bit BMPs only "
              "(re-save it, e.g. as PNG)")
    checks = [
        (tf.reduce_all(tf.not_equal(dib, _BMP_HEADERS)),
         tf.strings.join([UNSUPPORTED, ": a BMP file with a ", _text(dib),
                          "-byte header (not Windows BMP 2-5)", advice])),
        (tf.logical_not(tf.equal(compression, 0) | fields),
         tf.strings.join([UNSUPPORTED, ": a BMP file with ", compression_name, " compression",
                          advice])),
        (tf.reduce_all(tf.not_equal(bpp, _BMP_DEPTHS)),
         tf.strings.join([UNSUPPORTED, ": a ", _text(bpp), "-bit BMP file", advice])),
        (fields & tf.not_equal(bpp, 16) & tf.not_equal(bpp, 32),
         tf.strings.join([INVALID, ": a ", _text(bpp), "-bit BMP file with bit-field masks "
                          "(only 16 and 32-bit BMPs have them)"])),
        ((w < 1) | (h < 1),
         tf.strings.join([INVALID, ": a BMP file of ", _text(w), " x ", _text(height),
                          " pixels"])),
        (offset + row_bytes * h > n,
         tf.strings.join([INVALID, ": a truncated BMP file (its pixels end at byte ",
                          _text(offset + row_bytes * h), ", the file has ", _text(n), ")"])),
        ((bpp <= 8) & (palette_end > n),
         tf.strings.join([INVALID, ": a BMP file whose ", _text(n_colours),
                          "-colour palette is cut off"])),
    ]
    return checks, (b, offset, row_bytes, h, w, height, bpp, dib, compression, entry,
                    n_colours)


def _bmp_palette(b, rows, w, bpp, start, entry, n_colours):
    """uint8 [h, w, 3] of a 1, 2, 4 or 8-bit BMP: each index's palette colour (BGR(X)
    entries); an index past the palette takes its last colour. The indices are picked out
    in uint8 and gathered by int32 (int64 before: 8 bytes a pixel, 16 for a 1-bit BMP)."""
    per_byte = 8 // bpp
    shifts = tf.cast(8 - bpp * (tf.range(per_byte, dtype=tf.int64) + 1), tf.uint8)
    low_bits = tf.cast(tf.bitwise.left_shift(tf.constant(1, tf.int64), bpp) - 1, tf.uint8)
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(rows[:, :, None], shifts[None, None, :]),
                                  low_bits)
    index = tf.reshape(bits, tf.stack([tf.shape(rows, out_type=tf.int64)[0], -1]))[:, :w]
    where = start + entry * tf.range(n_colours)[:, None] + tf.constant([2, 1, 0], tf.int64)
    palette = tf.gather(b, where)  # uint8 [n_colours, 3] RGB
    last = tf.cast(n_colours - 1, tf.uint8)  # n_colours <= 256
    return tf.gather(palette, tf.cast(tf.minimum(index, last), tf.int32))


def _bmp_bgr(rows, w):
    """uint8 [h, w, 3] of a 24-bit BMP (BGR triples)."""
    px = tf.reshape(rows[:, :3 * w], tf.stack([tf.shape(rows, out_type=tf.int64)[0], w, 3]))
    return tf.reverse(px, [2])


def _bmp_masks(b, rows, w, bpp, dib, compression):
    """uint8 [h, w, 3], or [h, w, 4] with an alpha mask, of a 16 or 32-bit BMP: the bit-field
    masks (BI_BITFIELDS, or BI_ALPHABITFIELDS and the v3+ headers' alpha mask) or the
    defaults, 5-5-5 and BGRX. A pixel's value is read as uint32 and each channel scaled in
    int32 (int64 only for a channel wider than 22 bits), a channel at a time: the whole image
    in int64 took 3.3 GB more for a 1000 x 30000 32-bit BMP."""
    size = bpp // 8
    px = tf.reshape(rows[:, :size * w], tf.stack([tf.shape(rows, out_type=tf.int64)[0], w, size]))
    sixteen = tf.equal(bpp, 16)

    def byte(i):  # byte i of each pixel's little-endian value, in place
        return tf.bitwise.left_shift(tf.cast(px[..., i], tf.uint32), tf.constant(8 * i, tf.uint32))

    value = tf.cond(sixteen, lambda: tf.bitwise.bitwise_or(byte(0), byte(1)),
                    lambda: tf.bitwise.bitwise_or(tf.bitwise.bitwise_or(byte(0), byte(1)),
                                                  tf.bitwise.bitwise_or(byte(2), byte(3))))
    fields = tf.equal(compression, 3) | tf.equal(compression, 6)
    defaults = [tf.where(sixteen, tf.constant(0x7C00, tf.int64), 0xFF0000),
                tf.where(sixteen, tf.constant(0x03E0, tf.int64), 0xFF00),
                tf.where(sixteen, tf.constant(0x001F, tf.int64), 0xFF)]
    masks = [tf.where(fields, _uint(b, 54 + 4 * i, 4), defaults[i]) for i in range(3)]
    alpha_mask = tf.where(fields & (tf.equal(compression, 6) | (dib >= 56)), _uint(b, 66, 4),
                          tf.constant(0, tf.int64))

    def channel(mask, absent):
        low = tf.bitwise.bitwise_and(mask, -mask)
        shift = tf.cast(tf.round(tf.math.log(tf.cast(tf.maximum(low, 1), tf.float64))
                                 / tf.math.log(tf.constant(2.0, tf.float64))), tf.int64)
        top = tf.maximum(tf.bitwise.right_shift(mask, shift), 1)
        v = tf.bitwise.right_shift(tf.bitwise.bitwise_and(value, tf.cast(mask, tf.uint32)),
                                   tf.cast(shift, tf.uint32))  # <= top

        def scaled(dtype):  # round(v * 255 / top), v * 510 + top within `dtype`
            t = tf.cast(top, dtype)
            return tf.cast(tf.minimum((tf.cast(v, dtype) * 510 + t) // (2 * t), 255), tf.uint8)

        return tf.where(mask > 0, tf.cond(top < 2**22, lambda: scaled(tf.int32),
                                          lambda: scaled(tf.int64)),
                        tf.constant(absent, tf.uint8))

    rgb = [channel(m, 0) for m in masks]
    return tf.cond(alpha_mask > 0, lambda: tf.stack(rgb + [channel(alpha_mask, 255)], axis=-1),
                   lambda: tf.stack(rgb, axis=-1))


def _format_refusal(data, index):
    """The message refusing a file outside GRAPH_FORMATS: its format (or first bytes) named,
    and for an image of another format (TIFF, PPM, …) what to do (`sniff.convert_words`)."""
    name = tf.gather(tf.constant(_NAMES), index)
    what = tf.cond(tf.equal(name, "unknown"),
                   lambda: tf.strings.join(["not a ", GRAPH_FORMATS_TEXT.replace(" and ", " or "),
                                            " file (it starts with bytes ", _head_hex(data),
                                            ")"]),
                   lambda: tf.strings.join([tf.gather(tf.constant(_ARTICLES), index), " ",
                                            name, " file"]))
    return tf.strings.join([UNSUPPORTED, ": ", what, "; serve_bytes decodes ",
                            GRAPH_FORMATS_TEXT, " only", tf.gather(tf.constant(_ADVICE), index)])


def _refuse_format(data, index):
    """Refusal of a file outside GRAPH_FORMATS (`_format_refusal`)."""
    message = _format_refusal(data, index)
    with tf.control_dependencies([tf.debugging.Assert(tf.constant(False), [message])]):
        return tf.zeros([1, 1, 3], tf.uint8)


_EMPTY = f"{INVALID}: an empty file (0 bytes)"


def decodable_headers(data):
    """bool [N]: for each element of the string [N] `data`, whether it is not empty and its
    first bytes are of a format `decode_pixels` decodes (`sniff_index`'s rule, on the whole
    batch at once: no loop over its elements); `header_refusal` says why not."""
    head = tf.strings.substr(tf.strings.join([data, tf.fill(tf.shape(data), b"\0" * HEAD_BYTES)]),
                             0, HEAD_BYTES)
    matches = []
    for _, parts in SIGNATURES:
        ok = tf.ones_like(data, tf.bool)
        for off, magic in parts:
            ok = ok & tf.equal(tf.strings.substr(head, off, len(magic)), magic)
        matches.append(ok)
    matches.append(tf.ones_like(data, tf.bool))
    index = tf.argmax(tf.cast(tf.stack(matches, axis=-1), tf.int32), axis=-1, output_type=tf.int32)
    graph_format = tf.gather(tf.constant(_BRANCH, tf.int32), index) < len(GRAPH_FORMATS)
    return graph_format & (tf.strings.length(data, unit="BYTE") > 0)


@_on_one_file
def header_refusal(data):
    """string scalar: "" when the first bytes of `data` (a string scalar) are of a format
    `decode_pixels` decodes, else the message it fails with for them: an empty file
    (INVALID) or another format (UNSUPPORTED, naming it). Damage past the header is found
    only by decoding. Lets a batch name the element it refuses before decoding any
    (the export's serve_bytes)."""
    index = sniff_index(data)
    other = tf.gather(tf.constant(_BRANCH, tf.int32), index) >= len(GRAPH_FORMATS)
    return tf.cond(tf.equal(tf.strings.length(data, unit="BYTE"), 0),
                   lambda: tf.constant(_EMPTY),
                   lambda: tf.cond(other, lambda: _format_refusal(data, index),
                                   lambda: tf.constant("")))


@_on_one_file
def header_check_refusal(data):
    """string scalar: the message `decode_pixels` fails with for `data` (a string scalar) by
    its own checks of a decodable format's header (a truncated BMP, a BMP of another
    compression or depth, an animated WebP), "" when none fails (the file may still fail in
    TensorFlow's decoder: a cut JPEG). Lets a batch that found a failed element (the
    export's serve_bytes, `decode_each`) name its reason without failing on it."""
    index = sniff_index(data)
    branch = tf.gather(tf.constant(_BRANCH, tf.int32), index)

    def first(checks):
        bads = tf.stack([bad for bad, _ in checks] + [tf.constant(True)])
        messages = tf.stack([msg for _, msg in checks] + [tf.constant("")])
        return tf.gather(messages, tf.reduce_min(tf.where(bads)))

    bmp, webp = GRAPH_FORMATS.index("BMP"), GRAPH_FORMATS.index("WebP")
    return tf.switch_case(
        tf.where(tf.equal(branch, bmp), 0, tf.where(tf.equal(branch, webp), 1, 2)),
        [lambda: first(_bmp_header(data)[0]), lambda: first(_webp_checks(data)),
         lambda: tf.constant("")])


@_on_one_file
def format_named(data):
    """string scalar: the format the first bytes of `data` (a string scalar) name, with its
    article ("a PNG file", "an HTML file"; "a file of no known format"): how a refusal found
    only by decoding names the file (the export's serve_bytes)."""
    index = sniff_index(data)
    name = tf.gather(tf.constant(_NAMES), index)
    return tf.cond(tf.equal(name, "unknown"), lambda: tf.constant("a file of no known format"),
                   lambda: tf.strings.join([tf.gather(tf.constant(_ARTICLES), index), " ", name,
                                            " file"]))


#: Bytes of decoded pixels from which TensorFlow's JPEG decoder refuses an image ("Image too
#: large" in its log, "Invalid JPEG data" in its error: jpeg_mem.cc, tensorflow 2.21): 2^29,
#: 178,956,971 RGB pixels. Its PNG decoder refuses larger ones ("PNG size too large for int:
#: 60000 by 10000") and libpng a side past MAX_DECODED_SIDE ("Failed to initialize decoder").
DECODER_PIXEL_BYTES = 2 ** 29
MAX_DECODED_SIDE = 1_000_000
#: How an image its decoder refused for its size is named (after "a JPEG file of W x H
#: pixels"): serve_bytes (`export.saved.decode_each`) and the Python paths (`decode`).
#: No apostrophe: an Assert's message reaches a TF Serving client with TensorFlow's C escapes
#: (a backslash before each quote), which `decode.op_error_reason` undoes for Python alone.
TOO_LARGE = (TOO_LARGE_WORDS + "images from 2^29 bytes of pixels are refused, the bound of "
             "the JPEG and PNG decoders of TensorFlow: about 179 million RGB pixels, e.g. "
             "13,400 x 13,400; "
             f"libpng a side past {MAX_DECODED_SIDE:,} px). Shrink it first (hubensemble "
             "shrinks a shorter side above 1024 px itself, but once decoded)")


@_on_one_file
def header_size(data):
    """int64 [2]: the (height, width) in pixels the header of the JPEG, PNG, GIF or WebP
    `data` (a string scalar) gives (a JPEG's frame, by tf.image.extract_jpeg_shape; a PNG's
    IHDR, when its first chunk is one and its sides are within the PNG's 2^31 - 1; a GIF's
    first image descriptor; a WebP's VP8, VP8L or VP8X canvas size), without decoding it;
    [0, 0] for another format or a header that cannot be read. A GIF's logical screen is
    not asked: TensorFlow decodes a 4 x 4 frame on a 65535 x 65535 screen. Runs inside a
    graph and never fails."""
    name = tf.gather(tf.constant(_NAMES), sniff_index(data))
    head = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 24)]), 0, 24)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)
    none = tf.zeros([2], tf.int64)

    def jpeg():  # its frame header may be anywhere: TensorFlow's own reader, failures skipped
        shape = tf.data.Dataset.from_tensors(data).map(
            lambda d: tf.cast(tf.image.extract_jpeg_shape(d)[:2], tf.int64)).ignore_errors()
        return shape.concatenate(tf.data.Dataset.from_tensors(none)).take(
            1).get_single_element()

    def png():  # IHDR: width then height, 4 bytes big-endian each, from byte 16
        hw = tf.stack([b[20] * 2 ** 24 + b[21] * 2 ** 16 + b[22] * 256 + b[23],
                       b[16] * 2 ** 24 + b[17] * 2 ** 16 + b[18] * 256 + b[19]])
        ihdr = (tf.equal(tf.strings.substr(head, 12, 4), b"IHDR")
                & tf.reduce_all(hw < 2 ** 31))
        return tf.where(ihdr, hw, none)

    gif = lambda: _gif_size(*(_gif_first_image(data)[i] for i in (0, 4, 6)))  # noqa: E731
    return tf.case([(tf.equal(name, "JPEG"), jpeg), (tf.equal(name, "PNG"), png),
                    (tf.equal(name, "GIF"), gif), (tf.equal(name, "WebP"),
                                                   functools.partial(_webp_size, data))],
                   default=lambda: none)


def too_large(data) -> tuple:
    """(bool scalar, string scalar "of W x H pixels", width first): whether the header of
    `data` (a string scalar) gives more pixels than TensorFlow's decoders take
    (DECODER_PIXEL_BYTES of RGB, or a side past MAX_DECODED_SIDE), and its size in words
    (`header_size`). How a
    failed decode is told from a damaged file: a valid 65000 x 65000 JPEG was refused as
    "damaged past its header"."""
    return _large(header_size(data))


def _large(size):
    """`too_large`'s answer for a (height, width) `size` (int64 [2])."""
    large = ((size[0] * size[1] * 3 >= DECODER_PIXEL_BYTES)
             | (tf.reduce_max(size) > MAX_DECODED_SIDE))
    return large, tf.strings.join(["of ", tf.strings.as_string(size[1]), " x ",
                                   tf.strings.as_string(size[0]), " pixels"])


def too_large_words(data: bytes) -> str | None:
    """"a JPEG file of W x H pixels, too large to decode (…)" when the header of the encoded
    image `data` gives more pixels than TensorFlow's decoders take (`too_large`), else None:
    how the Python paths (`decode`) name a file its decoder refused, which they called "a
    damaged JPEG file (… Invalid JPEG data …)"."""
    large, size = too_large(tf.constant(data))
    if not bool(large):
        return None
    return (format_named(tf.constant(data)).numpy().decode() + " "
            + size.numpy().decode() + TOO_LARGE)


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------

@_on_one_file
def sniff_index(data):
    """The row of SIGNATURES matching the string scalar `data` (int32), len(SIGNATURES) when
    none does (the graph twin of `sniff.sniff`)."""
    head = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * HEAD_BYTES)]), 0,
                             HEAD_BYTES)
    matches = []
    for _, parts in SIGNATURES:
        ok = tf.constant(True)
        for off, magic in parts:
            ok = ok & tf.equal(tf.strings.substr(head, off, len(magic)), magic)
        matches.append(ok)
    matches.append(tf.constant(True))
    return tf.cast(tf.reduce_min(tf.where(tf.stack(matches))), tf.int32)


def _empty_check(data):
    empty = tf.equal(tf.strings.length(data, unit="BYTE"), 0)
    return tf.debugging.Assert(tf.logical_not(empty), [_EMPTY])


def _branches(data, index):
    """The decoders of `_BRANCH`, in its order (a refusal names SIGNATURES[index])."""
    return [lambda: _jpeg(data), lambda: _png(data), lambda: _gif(data), lambda: _bmp(data),
            lambda: _webp(data), lambda: _refuse_format(data, index),
            lambda: _refuse_format(data, index)]


def _decode(data):
    index = sniff_index(data)
    with tf.control_dependencies([_empty_check(data)]):
        branch = tf.gather(tf.constant(_BRANCH, tf.int32), index)
        pixels = tf.switch_case(branch, _branches(data, index))
    pixels.set_shape([None, None, 3])
    return shrink_ops(pixels), tf.gather(tf.constant(_NAMES), index)


@functools.lru_cache(maxsize=None)
def decoder_for(row: int):
    """The branch of `decode_pixels` for files whose first bytes match SIGNATURES[row]
    (len(SIGNATURES): none), alone, as the concrete function of a tf.function on a string
    scalar -> (uint8 [H, W, 3], int32 [2]: the decoded height and width before `shrink_ops`,
    so a caller learns that the image was shrunk without decoding it again). Traced once, when
    a row is first asked for.

    Concrete: a tf.function call binds and matches its arguments to a signature first, a
    third of the CPU a small JPEG's decode cost (0.28 -> 0.19 ms a 64 px JPEG, Pillow 0.09)
    for the very same graph.

    The Python paths pick it by `sniff.sniff_row` (the same table and rule as the graph's
    `sniff_index`) and so run exactly the ops `decode_pixels` runs for that file, but trace
    only the decoders of the formats they meet (a PNG folder never traces the BMP decoder:
    a tenth of the time of tracing them all).
    """
    # A partial (no __code__) gives each format's function its own tracing statistics: made
    # from one closure they would share them, and TensorFlow would warn of "excessive
    # retracing" once a predict call met five formats, though each is traced once.
    return tf.function(functools.partial(_decode_row, row),
                       input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")],
                       autograph=False).get_concrete_function()


def _decode_row(row, data):
    with tf.control_dependencies([_empty_check(data)]):
        pixels = _branches(data, tf.constant(row, tf.int32))[_BRANCH[row]]()
    pixels.set_shape([None, None, 3])
    return shrink_ops(pixels), tf.shape(pixels)[:2]


@tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
def decode_with_format(data):
    """(uint8 [H, W, 3], format name) of the encoded image `data` (a string scalar); see the
    module docstring. Raises tf.errors.InvalidArgumentError (when run) for what it refuses."""
    return _decode(data)


@tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")],
             autograph=False)
def decode_pixels(data):
    """The decode policy: encoded image bytes (a string scalar) -> uint8 [H, W, 3], values
    0..255 (see the module docstring for every format and the refusals). Raises
    tf.errors.InvalidArgumentError (when run) for what it refuses."""
    return _decode(data)[0]
