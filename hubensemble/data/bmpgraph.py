"""The decode policy's BMP decoder in TensorFlow ops (`hubensemble.data.graph` calls it for
files whose first bytes are "BM"): uncompressed 1, 2, 4, 8-bit palette images, 16-bit (5-5-5 or
bit fields), 24-bit and 32-bit (BGRX, or bit fields with an optional alpha mask), bottom-up and
top-down, read from the header; `bmp_header`'s checks refuse the rest. See graph's module
docstring for the whole policy. It imports TensorFlow.
"""

from __future__ import annotations

from hubensemble._tf import tensorflow as tf

from hubensemble.data.graphops import (as_text, bytes_of, composite_on_white, on_one_file,
                                       signed32, uint_fields)
from hubensemble.data.sniff import INVALID, UNSUPPORTED

_BMP_COMPRESSION = {1: "RLE8", 2: "RLE4", 4: "JPEG", 5: "PNG"}
_BMP_HEADERS = (12, 40, 52, 56, 108, 124)  # core, info, v2, v3, v4, v5
_BMP_DEPTHS = (1, 2, 4, 8, 16, 24, 32)


@on_one_file
def decode_bmp(data):
    """A BMP from its header (see the module docstring for what is read), one whose header
    `bmp_header`'s checks passed: `graph._bmp` refuses the rest first (its refusal, held once
    in a decode graph, is shared with `graph.header_check_refusal`)."""
    b, offset, row_bytes, h, w, height, bpp, dib, compression, entry, n_colours = (
        _bmp_fields(data)[1])
    rows = tf.reshape(tf.slice(b, [offset], [row_bytes * h]), tf.stack([h, row_bytes]))
    rows = tf.cond(height < 0, lambda: rows, lambda: tf.reverse(rows, [0]))
    kind = tf.cast(tf.where(bpp <= 8, 0, tf.where(tf.equal(bpp, 24), 1, 2)), tf.int32)
    rgba = tf.switch_case(kind, [
        lambda: _bmp_palette(b, rows, w, bpp, 14 + dib, entry, n_colours),
        lambda: _bmp_bgr(rows, w),
        lambda: _bmp_masks(b, rows, w, bpp, dib, compression),
    ])
    return composite_on_white(rgba)


def bmp_header(data):
    """([(bad, message)] of a BMP's header, the fields `decode_bmp` reads its pixels by)."""
    (n, palette_end, fields), read = _bmp_fields(data)
    b, offset, row_bytes, h, w, height, bpp, dib, compression, entry, n_colours = read
    compression_name = tf.gather(
        tf.constant([_BMP_COMPRESSION.get(i, f"type {i}") for i in range(8)] + ["unknown"]),
        tf.minimum(compression, 8))
    advice = ("; serve_bytes decodes uncompressed 1, 2, 4, 8, 16, 24 and 32-bit BMPs only "
              "(re-save it, e.g. as PNG)")
    checks = [
        (tf.reduce_all(tf.not_equal(dib, _BMP_HEADERS)),
         tf.strings.join([UNSUPPORTED, ": a BMP file with a ", as_text(dib),
                          "-byte header (not Windows BMP 2-5)", advice])),
        (tf.logical_not(tf.equal(compression, 0) | fields),
         tf.strings.join([UNSUPPORTED, ": a BMP file with ", compression_name, " compression",
                          advice])),
        (tf.reduce_all(tf.not_equal(bpp, _BMP_DEPTHS)),
         tf.strings.join([UNSUPPORTED, ": a ", as_text(bpp), "-bit BMP file", advice])),
        (fields & tf.not_equal(bpp, 16) & tf.not_equal(bpp, 32),
         tf.strings.join([INVALID, ": a ", as_text(bpp), "-bit BMP file with bit-field masks "
                          "(only 16 and 32-bit BMPs have them)"])),
        ((w < 1) | (h < 1),
         tf.strings.join([INVALID, ": a BMP file of ", as_text(w), " x ", as_text(height),
                          " pixels"])),
        (offset + row_bytes * h > n,
         tf.strings.join([INVALID, ": a truncated BMP file (its pixels end at byte ",
                          as_text(offset + row_bytes * h), ", the file has ", as_text(n), ")"])),
        ((bpp <= 8) & (palette_end > n),
         tf.strings.join([INVALID, ": a BMP file whose ", as_text(n_colours),
                          "-colour palette is cut off"])),
    ]
    return checks, read


def _bmp_fields(data):
    """((file length, palette end, bit fields?): what only the checks
    read, (the fields `decode_bmp` reads its pixels by)): no strings are built here, so
    `decode_bmp` traces none of the checks' words."""
    n = tf.cast(tf.strings.length(data, unit="BYTE"), tf.int64)
    b = bytes_of(data, 128)
    (dib, width2, width4, height2, height4, bpp2, bpp4, compression4, clr_used4,
     offset) = uint_fields(b, [(14, 4), (18, 2), (18, 4), (20, 2), (22, 4), (24, 2), (28, 2),
                               (30, 4), (46, 4), (10, 4)])
    core = tf.equal(dib, 12)
    width = tf.where(core, width2, signed32(width4))
    height = tf.where(core, height2, signed32(height4))
    bpp = tf.where(core, bpp2, bpp4)
    compression = tf.where(core, tf.constant(0, tf.int64), compression4)
    clr_used = tf.where(core, tf.constant(0, tf.int64), clr_used4)
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
    return (n, palette_end, fields), (
        b, offset, row_bytes, h, w, height, bpp, dib, compression, entry, n_colours)


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
    *read, alpha_read = uint_fields(b, [(54, 4), (58, 4), (62, 4), (66, 4)])
    masks = [tf.where(fields, read[i], defaults[i]) for i in range(3)]
    alpha_mask = tf.where(fields & (tf.equal(compression, 6) | (dib >= 56)), alpha_read,
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
