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
* BMP: decoded from its header (`bmpgraph`): uncompressed 1, 2, 4, 8-bit palette images (the
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
bytes) or `sniff.INVALID` (a damaged BMP; a file that ends inside its format's header,
`too_short`); TensorFlow's own decoders report damaged JPEG, PNG, GIF and WebP files in their
words.

The decoders are written with explicit `tf.switch_case` / `tf.cond` (their only Python loops
run over the constant SIGNATURES table), so their tf.functions skip autograph: converting
this file's functions took about two thirds of the time of tracing `decode_pixels` (4.9 s
against 1.8 s without), paid by every export and every process that decodes a file.
"""

from __future__ import annotations

import functools

from hubensemble._tf import tensorflow as tf

from hubensemble.data.bmpgraph import bmp_header, decode_bmp
from hubensemble.data.graphops import composite_on_white  # noqa: F401 (re-exported)
from hubensemble.data.graphops import (byte_at, byte_string, bytes_of, head_hex, on_one_file,
                                       refusal, replace_bytes, uint_fields,
                                       uint_le)
from hubensemble.data.shrink import shrink_ops, shrink_to_short_side  # noqa: F401 (re-exported)
from hubensemble.data.sniff import (GRAPH_FORMATS, GRAPH_FORMATS_TEXT, HEAD_BYTES,
                                    HEADER_BYTES, INVALID, NOT_IMAGES, SIGNATURES,
                                    TOO_LARGE_WORDS, UNSUPPORTED, WEBP_VP8L_BYTES, article,
                                    convert_words)

_NAMES = [name for name, _ in SIGNATURES] + ["unknown"]
_ARTICLES = [article(name) for name in _NAMES]
# What a refusal of a SIGNATURES row outside GRAPH_FORMATS says to do: convert an image.
_ADVICE = ["" if name in NOT_IMAGES or name == "unknown" else convert_words(name)
           for name in _NAMES]
# Branch of `_decode` per SIGNATURES row: a graph format's decoder, else the refusal (a row
# of another format and no row alike: one branch, where two of the same ops were traced).
_BRANCH = [GRAPH_FORMATS.index(n) if n in GRAPH_FORMATS else len(GRAPH_FORMATS)
           for n, _ in SIGNATURES] + [len(GRAPH_FORMATS)]


@on_one_file
def _jpeg(data):
    # The accurate integer IDCT (libjpeg's ISLOW): TensorFlow's default fast IDCT differs from
    # other decoders (Pillow, browsers) by up to ~10 levels; this one matches Pillow exactly.
    return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")


@on_one_file
def _png(data):
    return composite_on_white(tf.io.decode_png(data, channels=0, dtype=tf.uint8))


@on_one_file
def _webp(data):
    """A still WebP, its alpha composited onto white. An animated one (the VP8X chunk's
    animation flag, bit 1 of byte 20) is refused as unsupported, so the Python paths read its
    first frame with the kept decoder: TensorFlow's WebP decoder corrupts the heap on some
    (a lossy 2-frame 64 px file aborted the process, in serve_bytes too; tensorflow 2.21.0)."""
    with tf.control_dependencies([refusal(_webp_checks(data)),
                                  _size_refusal(_webp_size(data), "a WebP file")]):
        return composite_on_white(tf.io.decode_image(data, channels=0, expand_animations=False))


def _webp_checks(data):
    """[(bad, message)] of a WebP's header: animated (refused as unsupported)."""
    head = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 21)]), 0, 21)
    flags = byte_at(tf.io.decode_raw(head, tf.uint8), 20)
    animated = (tf.equal(tf.strings.substr(head, 12, 4), b"VP8X")
                & (tf.bitwise.bitwise_and(flags, 2) > 0))
    return [(animated, tf.strings.join([UNSUPPORTED, ": an animated WebP file; serve_bytes "
                                        "decodes still WebP images only (send its first "
                                        "frame, e.g. as PNG)"]))]


def _skip_sub_blocks(b, n, p):
    """The position after the GIF sub-blocks from `p` of the bytes `b` (length `n`)."""
    return tf.while_loop(lambda p: (p < n) & tf.not_equal(byte_at(b, p), 0),
                         lambda p: [p + byte_at(b, p) + 1], [p])[0] + 1


@on_one_file
def _gif_first_image(data):
    """(`bytes_of(data, 16)`, length, global table's flag and length, positions of the first
    image descriptor and its Graphic Control Extension (-1: none), whether there is one)."""
    n = tf.cast(tf.strings.length(data, unit="BYTE"), tf.int64)
    b = bytes_of(data, 16)
    flags = byte_at(b, 10)
    has_gct = tf.bitwise.bitwise_and(flags, 0x80) > 0
    gct_len = tf.where(has_gct, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int64),
                                                          tf.bitwise.bitwise_and(flags, 7)),
                       tf.constant(0, tf.int64))

    def body(pos, gce):
        gce = tf.where(tf.equal(byte_at(b, pos + 1), 0xF9), pos, gce)
        return _skip_sub_blocks(b, n, pos + 2), gce

    pos, gce = tf.while_loop(lambda pos, gce: (pos < n) & tf.equal(byte_at(b, pos), 0x21), body,
                             [13 + gct_len, tf.constant(-1, tf.int64)])
    return b, n, has_gct, gct_len, pos, gce, (pos < n) & tf.equal(byte_at(b, pos), 0x2C)


def _size_refusal(size, what: str):
    """Assert op: a GIF or WebP (`what`) whose header's (height, width) `size` is `too_large`
    refused before decoding (their decoders take any size: a 7.5 KB WebP held 6.7 GB)."""
    large, words = _large(size)
    return refusal([(large, tf.strings.join([f"{INVALID}: {what} ", words, TOO_LARGE]))])


def _gif_size(b, pos, has_image):
    """int64 [2]: (height, width) of the GIF bytes `b`'s first image at `pos` ([0, 0]: none)."""
    return tf.where(has_image, tf.stack([uint_le(b, pos + 7, 2), uint_le(b, pos + 5, 2)]),
                    tf.zeros([2], tf.int64))


@on_one_file
def _webp_size(data):
    """int64 [2]: (height, width) by a WebP's header: VP8's 14-bit sides at bytes 26 and 28,
    VP8L's 14 bits each (minus 1) from 21, VP8X's canvas (minus 1) from 24; else [0, 0]."""
    b = tf.cast(bytes_of(tf.strings.substr(data, 0, 30), 30), tf.int64)
    chunk = tf.strings.substr(data, 12, 4)
    vp8l, vp8x_width, vp8x_height, vp8_width, vp8_height = uint_fields(
        b, [(21, 4), (24, 3), (27, 3), (26, 2), (28, 2)])
    # Every reading is a few integer ops: selected by tf.where, where a tf.case traced three
    # conds (six branch functions in each export's library).
    size = tf.zeros([2], tf.int64)
    for name, read in reversed([
            (b"VP8 ", tf.stack([vp8_height % 2 ** 14, vp8_width % 2 ** 14])),
            (b"VP8L", tf.stack([vp8l // 2 ** 14 % 2 ** 14 + 1, vp8l % 2 ** 14 + 1])),
            (b"VP8X", tf.stack([vp8x_height + 1, vp8x_width + 1]))]):
        size = tf.where(tf.equal(chunk, name), read, size)
    return size


@on_one_file
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
    gce_flags = byte_at(b, gce + 3)
    transparent = has_image & (gce >= 0) & tf.equal(tf.bitwise.bitwise_and(gce_flags, 1), 1)
    index = byte_at(b, gce + 6)
    image_flags = byte_at(b, pos + 9)
    local = tf.bitwise.bitwise_and(image_flags, 0x80) > 0
    table = tf.where(local, pos + 10, tf.where(has_gct, tf.constant(13, tf.int64), -1))
    table_len = tf.where(local, 3 * tf.bitwise.left_shift(
        tf.constant(2, tf.int64), tf.bitwise.bitwise_and(image_flags, 7)), gct_len)
    patch = transparent & (table >= 0) & (3 * index + 3 <= table_len) & (table + table_len <= n)

    def patched():
        cleared = replace_bytes(data, gce + 3,
                                byte_string(tf.bitwise.bitwise_and(gce_flags, 0xFE)))
        return replace_bytes(cleared, table + 3 * index, b"\xff\xff\xff")

    end = _skip_sub_blocks(b, n, pos + 11 + tf.where(local, table_len, 0))  # descriptor: 10
    with tf.control_dependencies([too_large_check]):
        data = tf.cond(patch, patched, lambda: data)
        first = tf.strings.join([tf.strings.substr(data, 0, tf.cast(end, tf.int32)), b";"])
        return tf.io.decode_gif(tf.where(has_image & (end <= n), first, data))[0]


@on_one_file
def too_short(data):
    """string scalar: `sniff.too_short`'s words for `data` (a string scalar), "" when it says
    None: a file that begins as a format serve_bytes decodes (every byte it has of the
    signature matches) and ends before that format's header of fixed layout
    (`sniff.header_bytes`). The same rule, the same table, compared for every row at once
    (`_SIGNATURE_BYTES`, as `_signature_matches`): a substr and a comparison per part and
    the words of every row traced 200 ops, six times in each export's serve_bytes."""
    n = tf.strings.length(data, unit="BYTE")
    head = tf.cast(tf.io.decode_raw(data, tf.uint8, fixed_length=HEAD_BYTES), tf.int32)
    inside = tf.range(HEAD_BYTES) < n
    rows = [row for row, (name, _) in enumerate(SIGNATURES) if name in GRAPH_FORMATS]
    wanted = tf.constant([_SIGNATURE_BYTES[row] for row in rows], tf.int32)
    vp8l = tf.equal(tf.strings.substr(tf.strings.join([data, b"\0" * 16]), 12, 4), b"VP8L")
    ends = tf.stack([tf.where(vp8l, WEBP_VP8L_BYTES, HEADER_BYTES[name]) if name == "WebP"
                     else tf.constant(HEADER_BYTES[name])
                     for name in (SIGNATURES[row][0] for row in rows)])
    # Each byte it has matches (a byte past its end matches any: `sniff.too_short`'s slices).
    ok = tf.reduce_all((wanted < 0) | tf.equal(head, wanted) | ~inside, axis=-1)
    hits = tf.concat([ok & (n > 0) & (n < ends), [True]], axis=0)
    names = [SIGNATURES[row][0] for row in rows]
    first = tf.reduce_min(tf.where(hits))
    words = tf.strings.join([
        tf.gather(tf.constant([f"too short to be {article(name)} {name} file ("
                               for name in names] + [""]), first),
        tf.strings.as_string(n), tf.where(tf.equal(n, 1), " byte)", " bytes)")])
    return tf.where(first < len(names), words, "")


@on_one_file
def _format_refusal(data):
    """The message refusing a file outside GRAPH_FORMATS: its format (or first bytes) named,
    and for an image of another format (TIFF, PPM, …) what to do (`sniff.convert_words`);
    for one that ends inside a decodable format's signature, INVALID and "too short to be a
    JPEG file (2 bytes)" (`too_short`: it said "not a JPEG, … file (it starts with bytes ff
    d8)"). Both messages are a few string ops, chosen by tf.where: no cond's two branch
    functions, on a path taken only to refuse."""
    short = too_short(data)
    return tf.where(tf.strings.length(short) > 0, tf.strings.join([INVALID, ": ", short]),
                    _other_format(data, sniff_index(data)))


def _other_format(data, index):
    name = tf.gather(tf.constant(_NAMES), index)
    what = tf.where(tf.equal(name, "unknown"),
                    tf.strings.join(["not a ", GRAPH_FORMATS_TEXT.replace(" and ", " or "),
                                     " file (it starts with bytes ", head_hex(data), ")"]),
                    tf.strings.join([tf.gather(tf.constant(_ARTICLES), index), " ", name,
                                     " file"]))
    return tf.strings.join([UNSUPPORTED, ": ", what, "; serve_bytes decodes ",
                            GRAPH_FORMATS_TEXT, " only", tf.gather(tf.constant(_ADVICE), index)])


@on_one_file
def _refuse_format(data):
    """Refusal of a file outside GRAPH_FORMATS (`_format_refusal`)."""
    message = _format_refusal(data)
    with tf.control_dependencies([tf.debugging.Assert(tf.constant(False), [message])]):
        return tf.zeros([1, 1, 3], tf.uint8)


_EMPTY = f"{INVALID}: an empty file (0 bytes)"


def decodable_headers(data):
    """bool [N]: for each element of the string [N] `data`, whether it is not empty and its
    first bytes are of a format `decode_pixels` decodes (`sniff_index`'s rule, on the whole
    batch at once: no loop over its elements); `header_refusal` says why not."""
    matches = tf.concat([_signature_matches(data), tf.ones_like(data, tf.bool)[:, None]],
                        axis=-1)
    index = tf.argmax(tf.cast(matches, tf.int32), axis=-1, output_type=tf.int32)
    graph_format = tf.gather(tf.constant(_BRANCH, tf.int32), index) < len(GRAPH_FORMATS)
    return graph_format & (tf.strings.length(data, unit="BYTE") > 0)


@on_one_file
def header_refusal(data):
    """string scalar: "" when the first bytes of `data` (a string scalar) are of a format
    `decode_pixels` decodes, else the message it fails with for them: an empty file
    (INVALID) or another format (UNSUPPORTED, naming it). Damage past the header is found
    only by decoding. Lets a batch name the element it refuses before decoding any
    (the export's serve_bytes)."""
    other = tf.gather(tf.constant(_BRANCH, tf.int32), sniff_index(data)) >= len(GRAPH_FORMATS)
    return tf.where(tf.equal(tf.strings.length(data, unit="BYTE"), 0), _EMPTY,
                    tf.where(other, _format_refusal(data), ""))


@on_one_file
def header_check_refusal(data):
    """string scalar: the message `decode_pixels` fails with for `data` (a string scalar) by
    its own checks of a decodable format's header (a file that ends inside it, `too_short`;
    a BMP of another compression or depth, an animated WebP), "" when none fails (the file
    may still fail in TensorFlow's decoder: a cut JPEG). Lets a batch that found a failed
    element (the export's serve_bytes, `decode_each`) name its reason without failing on
    it."""
    index = sniff_index(data)
    branch = tf.gather(tf.constant(_BRANCH, tf.int32), index)
    bmp, webp = GRAPH_FORMATS.index("BMP"), GRAPH_FORMATS.index("WebP")
    checks = tf.switch_case(
        tf.where(tf.equal(branch, bmp), 0, tf.where(tf.equal(branch, webp), 1, 2)),
        [lambda: bmp_refusal(data),
         lambda: _first_message(_webp_checks(data)),
         lambda: tf.constant("")])
    short = too_short(data)
    return tf.where(tf.strings.length(short) > 0, tf.strings.join([INVALID, ": ", short]),
                    checks)


def _first_message(checks):
    """string scalar: the message of the first bad of [(bad, message)] `checks`, "" if none."""
    bads = tf.stack([bad for bad, _ in checks] + [tf.constant(True)])
    messages = tf.stack([msg for _, msg in checks] + [tf.constant("")])
    return tf.gather(messages, tf.reduce_min(tf.where(bads)))


@on_one_file
def bmp_refusal(data):
    """string scalar: what a BMP is refused for, "" for none: too short for its headers
    (`too_short`), then its header's checks (`bmp_header`; too short, b"BM" would be "a BMP
    file with a 0-byte header"). One function that `_bmp` and `header_check_refusal` call:
    each inlined `bmp_header` (169 nodes), `decode_bmp` its words too."""
    short = too_short(data)
    return _first_message([(tf.strings.length(short) > 0,
                            tf.strings.join([INVALID, ": ", short]))] + list(bmp_header(data)[0]))


@on_one_file
def format_named(data):
    """string scalar: the format the first bytes of `data` (a string scalar) name, with its
    article ("a PNG file", "an HTML file"; "a file of no known format"): how a refusal found
    only by decoding names the file (the export's serve_bytes)."""
    index = sniff_index(data)
    name = tf.gather(tf.constant(_NAMES), index)
    return tf.where(tf.equal(name, "unknown"), "a file of no known format",
                    tf.strings.join([tf.gather(tf.constant(_ARTICLES), index), " ", name,
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


@on_one_file
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

def _signature_table():
    """int32 [len(SIGNATURES), HEAD_BYTES]: the byte each row's parts ask for at each position,
    -1 where they ask nothing (256, no byte, where two parts of a row disagree)."""
    table = [[-1] * HEAD_BYTES for _ in SIGNATURES]
    for row, (_, parts) in enumerate(SIGNATURES):
        for off, magic in parts:
            for at, byte in enumerate(magic, off):
                table[row][at] = byte if table[row][at] in (-1, byte) else 256
    return table


_SIGNATURE_BYTES = _signature_table()


def _signature_matches(data):
    """bool [..., len(SIGNATURES)]: whether the first HEAD_BYTES bytes of each element of the
    string tensor `data` match each row of SIGNATURES: one comparison with `_SIGNATURE_BYTES`
    for every row at once (a substr and a comparison for each part of each row traced 450
    ops, for `sniff_index` and `decodable_headers` each at every export;
    bench_decode_graph.py). A byte a row asks for past a short file's end matches nothing, as
    in `sniff.sniff_row`: the zeros that pad the head to HEAD_BYTES made a 3-byte b"II*" a
    TIFF (and 00 00 01 an ICO) in serve_bytes, and no format on the Python paths."""
    head = tf.cast(tf.io.decode_raw(data, tf.uint8, fixed_length=HEAD_BYTES), tf.int32)
    inside = (tf.range(HEAD_BYTES)
              < tf.strings.length(data, unit="BYTE")[..., None])[..., None, :]
    wanted = tf.constant(_SIGNATURE_BYTES, tf.int32)
    return tf.reduce_all((wanted < 0) | (tf.equal(head[..., None, :], wanted) & inside),
                         axis=-1)


@on_one_file
def sniff_index(data):
    """The row of SIGNATURES matching the string scalar `data` (int32), len(SIGNATURES) when
    none does (the graph twin of `sniff.sniff`)."""
    matches = tf.concat([_signature_matches(data), [True]], axis=0)
    return tf.cast(tf.reduce_min(tf.where(matches)), tf.int32)


@on_one_file
def _bmp(data):
    """`decode_bmp`, after refusing what `bmp_refusal` refuses."""
    refused = bmp_refusal(data)
    with tf.control_dependencies([tf.debugging.Assert(
            tf.equal(tf.strings.length(refused), 0), [refused])]):
        return decode_bmp(data)


def _empty_check(data):
    empty = tf.equal(tf.strings.length(data, unit="BYTE"), 0)
    return tf.debugging.Assert(tf.logical_not(empty), [_EMPTY])


def _short_check(data):
    """Refuses a file that ends inside its format's header (`too_short`) before any decoder
    runs: b"GIF89a" or a PNG's signature alone reached TensorFlow's decoder and were "a GIF
    file that cannot be decoded (damaged past its header …)"."""
    short = too_short(data)
    return tf.debugging.Assert(tf.equal(tf.strings.length(short), 0),
                               [tf.strings.join([INVALID, ": ", short])])


def _branches(data):
    """The decoders of `_BRANCH`, in its order: each a call of one tf.function that is not
    inlined (`on_one_file`), so a decode graph holds each once and its first call optimises
    only the decoder a file reaches."""
    return [lambda: _jpeg(data), lambda: _png(data), lambda: _gif(data), lambda: _bmp(data),
            lambda: _webp(data), lambda: _refuse_format(data)]


def _decode(data):
    index = sniff_index(data)
    with tf.control_dependencies([_empty_check(data), _short_check(data)]):
        branch = tf.gather(tf.constant(_BRANCH, tf.int32), index)
        pixels = tf.switch_case(branch, _branches(data))
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
    # No `_short_check`: its caller (`decode.decode_bytes`) refuses such a file in Python
    # first, without TensorFlow; the call cost each decode 0.07 ms (a tenth of a small PNG's).
    with tf.control_dependencies([_empty_check(data)]):
        pixels = _branches(data)[_BRANCH[row]]()
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
