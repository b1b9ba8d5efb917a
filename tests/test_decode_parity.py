"""Decode parity between training and serving: a wide set of files as cameras and tools write
them, each decoded by the training path (`decode.decode_bytes`, what the loaders, evaluate and
predict run) and by an exported model's `serve_bytes` (the real serving path: its tf.data map of
`decode_pixels`, batched, resized to the member's size), must give the same pixels, or the same
refusal. The export's one member passes its resized pixels through (a Flatten: its
"probabilities" are the pixels / 255), so serve_bytes' output is compared, value for value,
with serving_default's on the training pixels (the same resize). Both are also checked against
an independent reference: Pillow's decode (alpha composited onto white by the documented
formula), or the source samples of a file written by hand here.

Measured (Pillow 13, libjpeg-turbo, TensorFlow 2.21): the largest difference between training
and serving pixels is 0 levels for every kind, JPEG included (both run the accurate integer
IDCT); training against Pillow is 0 levels too (`TOLERANCE`).
"""

import io
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageCms

from hubensemble.data.decode import (UnreadableImage, decode_bytes, op_error_reason,
                                     servable_bytes)
from hubensemble.data.graph import sniff_index
from hubensemble.data.sniff import INVALID, SIGNATURES, UNSUPPORTED, sniff, sniff_row
from hubensemble.export import ExportMember
from hubensemble.export.saved import EnsembleModule
from test_decode_policy import bmp, over_white, rle8

S = 16  # the member's size: every file's pixels are resized to S x S in both paths
#: Levels (0..255) the training pixels may differ from the reference (Pillow's decode): 0 for
#: every kind, lossy JPEG and WebP included (measured; the module docstring).
TOLERANCE = 0


def encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def picture(h, w, seed=0, channels=3):
    """A uint8 [h, w, channels] picture of gradients and noise (every value used)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                     (xx + yy) * 97 % 256], -1).astype(np.uint8)
    noisy = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return np.concatenate([base, noisy[..., 3:]], -1) if channels == 4 else base


def png(samples, depth, colour_type, *, palette=None, trns=None, interlace=False):
    """A PNG written by hand from its spec: `samples` uint [H, W, C] at `depth` bits (1, 2, 4
    packed, 8 or 16 big-endian), filter 0, optionally Adam7-interlaced."""
    h, w, _ = samples.shape

    def rows(image):
        out = b""
        for row in image:
            flat = row.reshape(-1)
            if depth < 8:
                bits = "".join(format(int(v), f"0{depth}b") for v in flat)
                bits += "0" * (-len(bits) % 8)
                packed = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            else:
                packed = flat.astype(">u2" if depth == 16 else np.uint8).tobytes()
            out += b"\0" + packed
        return out

    if interlace:  # the seven Adam7 passes, each a sub-image of its own rows
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2))
        raw = b"".join(rows(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                       if samples[y0::dy, x0::dx].size)
    else:
        raw = rows(samples)

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    head = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, int(interlace))
    extra = b""
    if palette is not None:
        extra += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        extra += chunk(b"tRNS", trns)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + extra
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pillow(data):
    """Pillow's first frame as RGB over white (the reference for files Pillow writes)."""
    with Image.open(io.BytesIO(data)) as im:
        return over_white(np.asarray(im.convert("RGBA")))


def kinds():
    """{name: (bytes, reference uint8 [H, W, 3] or None: Pillow's, in_graph)}: decoded files."""
    out = {}
    rgb = Image.fromarray(picture(13, 11))
    rgba = Image.fromarray(picture(13, 11, 1, channels=4))
    palette = rgb.quantize(200)

    def pil(name, image, fmt, graph=True, **kw):
        out[name] = (encode(image, fmt, **kw), None, graph)

    for sub in (0, 1, 2):  # 4:4:4, 4:2:2, 4:2:0
        pil(f"jpeg_subsampling_{sub}.jpg", rgb, "JPEG", quality=90, subsampling=sub)
    pil("jpeg_progressive.jpg", rgb, "JPEG", quality=90, progressive=True)
    pil("jpeg_grey.jpg", rgb.convert("L"), "JPEG")
    pil("jpeg_cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pil("jpeg_icc.jpg", rgb, "JPEG", icc_profile=srgb)
    for tag in range(1, 9):  # EXIF orientation: left as stored, in both paths
        exif = Image.Exif()
        exif[0x0112] = tag
        pil(f"jpeg_exif_orientation_{tag}.jpg", rgb, "JPEG", exif=exif.tobytes())
    pil("jpeg_1x1.jpg", Image.fromarray(picture(1, 1)), "JPEG")
    pil("jpeg_7x3.jpg", Image.fromarray(picture(7, 3)), "JPEG")
    pil("png_rgb.png", rgb, "PNG")
    pil("png_rgba.png", rgba, "PNG")
    pil("png_grey_alpha.png", rgba.convert("LA"), "PNG")
    pil("png_icc.png", rgb, "PNG", icc_profile=srgb)
    pil("png_1x1.png", Image.fromarray(picture(1, 1)), "PNG")
    for bits in (1, 2, 4, 8):
        pal = rgb.quantize(2 ** bits)
        pil(f"png_palette_{bits}bit.png", pal, "PNG", bits=bits)
        pil(f"png_palette_{bits}bit_trns.png", pal, "PNG", bits=bits, transparency=1)
    grey = picture(13, 11)[..., :1]
    for depth in (1, 2, 4, 16):  # grey samples: b bits -> round(v * 255 / (2^b - 1)), 16: v >> 8
        v = grey.astype(np.uint16) * 257 if depth == 16 else grey >> (8 - depth)
        want = v >> 8 if depth == 16 else v.astype(np.int64) * 255 // (2 ** depth - 1)
        for interlace in (False, True):
            name = f"png_grey_{depth}bit{'_interlaced' if interlace else ''}.png"
            out[name] = (png(v, depth, 0, interlace=interlace),
                         np.repeat(want, 3, -1).astype(np.uint8), True)
    deep = np.random.default_rng(2).integers(0, 65536, (5, 9, 4), dtype=np.uint16)
    out["png_rgba_16bit_interlaced.png"] = (png(deep, 16, 6, interlace=True),
                                            over_white((deep >> 8).astype(np.uint8)), True)
    out["png_rgb_interlaced.png"] = (png(picture(13, 11), 8, 2, interlace=True),
                                     picture(13, 11), True)
    idx = np.random.default_rng(3).integers(0, 4, (6, 5, 1))
    colours = np.random.default_rng(4).integers(0, 256, (4, 3))
    alphas = bytes([0, 90, 255])  # index 3 has no tRNS entry: opaque
    want = over_white(np.concatenate([colours, [[0], [90], [255], [255]]], -1)[idx[..., 0]])
    out["png_palette_2bit_alpha_interlaced.png"] = (
        png(idx, 2, 3, palette=colours, trns=alphas, interlace=True), want, True)
    pil("gif_one_frame.gif", palette, "GIF")
    pil("gif_transparent.gif", palette, "GIF", transparency=3)
    second = Image.fromarray(picture(13, 11, 5, channels=4)[..., 1:]).quantize(64)
    pil("gif_animated.gif", palette, "GIF", save_all=True, append_images=[second], duration=40)
    pil("gif_animated_transparent.gif", palette, "GIF", save_all=True, append_images=[second],
        duration=40, transparency=2, disposal=2)
    pil("gif_1x1.gif", Image.fromarray(picture(1, 1)).quantize(2), "GIF")
    pil("bmp_1bit.bmp", rgb.convert("1"), "BMP")
    pil("bmp_8bit.bmp", palette, "BMP")
    pil("bmp_8bit_grey.bmp", rgb.convert("L"), "BMP")
    pil("bmp_24bit.bmp", rgb, "BMP")
    pil("bmp_32bit.bmp", rgba, "BMP")  # BI_RGB: the 4th byte is not alpha
    pil("bmp_1x1.bmp", Image.fromarray(picture(1, 1)), "BMP")
    pal16 = [tuple(int(c) for c in colours[i % 4] // (1 + i // 4)) for i in range(16)]
    idx16 = np.random.default_rng(5).integers(0, 16, (5, 7))
    rows4 = [bytes((int(r[i]) << 4) | int(r[i + 1] if i + 1 < 7 else 0) for i in range(0, 7, 2))
             for r in idx16]
    for top_down in (False, True):
        out[f"bmp_4bit{'_top_down' if top_down else ''}.bmp"] = (
            bmp(7, 5, 4, rows4, palette=pal16, top_down=top_down),
            np.array(pal16, np.uint8)[idx16], True)
    rle = bytearray(bmp(7, 5, 8, [], palette=pal16, compression=1))
    body = rle8(idx16)
    struct.pack_into("<I", rle, 2, len(rle) + len(body))
    struct.pack_into("<I", rle, 34, len(body))
    out["bmp_rle8.bmp"] = (bytes(rle) + body, np.array(pal16, np.uint8)[idx16], False)
    pil("webp_lossy.webp", rgb, "WEBP", quality=80)
    pil("webp_lossless.webp", rgb, "WEBP", lossless=True)
    pil("webp_alpha_lossless.webp", rgba, "WEBP", lossless=True)
    pil("webp_alpha_lossy.webp", rgba, "WEBP", quality=80)
    pil("webp_1x1.webp", Image.fromarray(picture(1, 1)), "WEBP", lossless=True)
    moving = Image.fromarray(picture(13, 11, 6, channels=4)[..., 1:])
    pil("webp_animated.webp", rgb, "WEBP", graph=False, save_all=True,
        append_images=[moving], duration=40)
    pil("tiff_rgb.tif", rgb, "TIFF", graph=False)
    pil("tiff_lzw_rgba.tif", rgba, "TIFF", graph=False, compression="tiff_lzw")
    return out


KINDS = kinds()


def damaged():
    """{name: bytes}: files every path refuses: cut short, and every prefix of a signature
    shorter than it (a 3-byte "II*" is no TIFF)."""
    out = {f"cut_{name}": data[:len(data) * 2 // 3] for name, (data, _, graph) in KINDS.items()
           if graph and "1x1" not in name}
    jpeg = KINDS["jpeg_subsampling_2.jpg"][0]
    out["jpeg_without_its_last_bytes.jpg"] = jpeg[:-40]
    for form, parts in SIGNATURES:
        for offset, magic in parts:
            if offset == 0:
                for n in range(1, len(magic)):
                    out[f"prefix_{magic[:n].hex()}"] = magic[:n]
    return out


DAMAGED = damaged()


@pytest.fixture(scope="module")
def served():
    """(serve_bytes, serving_default) of a tiny export whose one member passes its S x S
    pixels through: "probabilities" [N, S * S * 3] are the resized pixels. The signatures'
    own tf.functions, as `export.saved.save_export` saves them (its save, reload and warmup
    are test_export's; the graph is the same)."""
    inputs = keras.Input((S, S, 3))
    member = keras.Model(inputs, keras.layers.Flatten()(inputs))
    module = EnsembleModule([ExportMember(member, S, 1.0, {"trial": "t0"})],
                            [f"v{i}" for i in range(S * S * 3)])
    _, signatures = module.saveable_root()
    return signatures["serve_bytes"], signatures["serving_default"]


def serve(signature, blobs):
    """serve_bytes' pixels of `blobs` (a list of bytes) as float64 [N, S, S, 3] in levels."""
    got = signature(image_bytes=tf.constant(blobs, tf.string))["probabilities"].numpy()
    return got.reshape(-1, S, S, 3).astype(np.float64) * 255


def resized(signature, pixels):
    """serving_default's pixels of training's uint8 [H, W, 3] pixels, in levels [S, S, 3]."""
    x = tf.constant(pixels[None].astype(np.float32) / 255)
    got = signature(images=x)["probabilities"].numpy()
    return got.reshape(S, S, 3).astype(np.float64) * 255


def refusal(signature, data) -> str:
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        signature(image_bytes=tf.constant([data], tf.string))
    return op_error_reason(caught.value)


def test_every_kind_gives_serving_the_pixels_training_decoded(served):
    """All in one request, as a client sends a folder: each row is the training pixels'
    resize to the last bit (serving_default's, the same ops), and the training pixels are the
    reference's (Pillow, or the samples written) within TOLERANCE."""
    serve_bytes, serving_default = served
    names = [n for n, (_, _, graph) in KINDS.items() if graph]
    got = serve(serve_bytes, [KINDS[n][0] for n in names])
    worst = {}
    for name, row in zip(names, got):
        data, reference, _ = KINDS[name]
        decoded = decode_bytes(data)
        assert decoded.in_graph, name
        reference = pillow(data) if reference is None else reference
        assert decoded.pixels.shape == reference.shape, name
        diff = np.abs(decoded.pixels.astype(int) - reference).max()
        assert diff <= TOLERANCE, (name, diff)
        worst[name] = np.abs(row - resized(serving_default, decoded.pixels)).max()
    # float32 rounding of the resize of a batch: at most 7.6e-6 levels; one level of the
    # pixels moves some resized value by far more (a bilinear upscale weight).
    assert max(worst.values()) < 1e-3, {n: d for n, d in worst.items() if d >= 1e-3}


@pytest.mark.parametrize("name", [n for n, (_, _, graph) in KINDS.items() if not graph])
def test_a_kind_outside_the_graph_is_refused_and_served_as_predict_sends_it(served, name):
    """TIFF, RLE BMP and animated WebP: training reads them with Pillow; serve_bytes refuses
    them as unsupported, and predict's PNG of them (`servable_bytes`) serves those pixels."""
    serve_bytes, serving_default = served
    data, reference, _ = KINDS[name]
    decoded = decode_bytes(data)
    assert not decoded.in_graph
    reference = pillow(data) if reference is None else reference
    assert np.abs(decoded.pixels.astype(int) - reference).max() <= TOLERANCE
    assert refusal(serve_bytes, data).startswith(UNSUPPORTED)
    png_bytes, _ = servable_bytes(data)
    np.testing.assert_allclose(serve(serve_bytes, [png_bytes])[0],
                               resized(serving_default, decoded.pixels), rtol=0, atol=1e-3)


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_or_short_file_is_refused_by_both_for_one_reason(served, name):
    """Cut files and signature prefixes: both refuse; serve_bytes' reason is training's, in
    its own words; one its decoder refused is "a PNG file that cannot be decoded (damaged …)"
    alone as in a request (`saved.decode_each`), where training has "a damaged PNG file
    (<TensorFlow's words>)", which the server's log has."""
    from hubensemble.export.saved import DAMAGED as DECODER_REFUSED, LOGGED

    data = DAMAGED[name]
    with pytest.raises(UnreadableImage) as trained:
        decode_bytes(data)
    said = refusal(served[0], data)
    for prefix in (UNSUPPORTED, INVALID):
        said = said[len(prefix):].lstrip(": ") if said.startswith(prefix) else said
    if said.endswith(f"{DECODER_REFUSED}.{LOGGED}"):
        fmt = said[:-len(f"{DECODER_REFUSED}.{LOGGED}")].split(" ", 1)[1]  # "PNG file"
        assert str(trained.value).startswith(f"a damaged {fmt} ("), (said, str(trained.value))
        return
    # A refusal of the format by its first bytes ends with advice that differs by path.
    assert said.split(";")[0] in str(trained.value), (said, str(trained.value))


@pytest.mark.parametrize("name", sorted(n for n in DAMAGED if n.startswith("prefix_")))
def test_python_and_graph_sniff_agree_on_a_file_shorter_than_its_signature(name):
    """The graph read a short file padded with zeros: a 3-byte b"II*" was a TIFF (an ICO for
    00 00 01) in serve_bytes and no format in Python's `sniff`."""
    data = DAMAGED[name]
    assert int(sniff_index(tf.constant(data))) == sniff_row(data), sniff(data)


@pytest.mark.parametrize("name", ["cut_jpeg_subsampling_2.jpg", "jpeg_without_its_last_bytes.jpg"]
                         + sorted(n for n in DAMAGED if n.startswith("cut_") and "png" in n)[:1])
def test_a_file_its_decoder_refuses_alone_gets_a_requests_words(served, name):
    """A corrupt JPEG sent alone to serve_bytes got TensorFlow's op error ("jpeg::Uncompress
    failed …", its decoder run a second time, "Input file read error" on stderr again), where
    one in a request got "image_bytes[1] (of 2): a JPEG file that cannot be decoded (…)".
    Alone it gets those words without the position, and the way to the decoder's own.
    Fails before: TensorFlow's words alone."""
    from hubensemble.export.saved import DAMAGED as DECODER_REFUSED, LOGGED

    data = DAMAGED[name]
    fmt = sniff(data)
    alone = refusal(served[0], data)
    assert alone == f"{INVALID}: a {fmt} file{DECODER_REFUSED}.{LOGGED}", alone
    ok = KINDS["png_rgb.png"][0]
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        served[0](image_bytes=tf.constant([ok, data], tf.string))
    many = op_error_reason(caught.value)
    assert many == (f"{INVALID}: image_bytes[1] (of 2): a {fmt} file{DECODER_REFUSED}; 1 of the "
                    f"2 images cannot be decoded.{LOGGED}"), many


SHORT = {"ff d8": (b"\xff\xd8", "JPEG"), "BM": (b"BM", "BMP"), "89 50": (b"\x89P", "PNG"),
         "GIF8": (b"GIF8", "GIF"), "RIFF": (b"RIFF", "WebP"),
         "BM + 15": (b"BM" + bytes(15), "BMP")}


#: Each format's header of fixed layout, from its spec (the reference): JPEG's SOI and first
#: marker segment's marker and length (T.81 B.1.1.4), PNG's signature and IHDR chunk (PNG
#: 5.6), GIF's header and logical screen descriptor (GIF89a 17, 18), BMP's file header and
#: info header size, WebP's RIFF and chunk headers and VP8's 10-byte (VP8L's 5) frame start.
HEADERS = {"jpeg_subsampling_2.jpg": 2 + 4, "png_rgb.png": 8 + 4 + 4 + 13 + 4,
           "gif_one_frame.gif": 6 + 7, "bmp_24bit.bmp": 14 + 4,
           "webp_lossy.webp": 12 + 8 + 10, "webp_lossless.webp": 12 + 8 + 5}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_a_file_cut_inside_its_formats_header_is_too_short_on_every_path(served, name):
    """b"GIF89a" and a PNG's 8-byte signature alone were "a GIF file that cannot be decoded
    (damaged past its header …)" in serve_bytes and "a damaged GIF file (…)" in predict and
    the loaders; only a file cut inside the magic signature was "too short to be a … file",
    where docs/export.md gives those words to one that ends inside the first bytes of its
    format. Cut at each byte inside its header, every path says "too short to be a GIF file
    (6 bytes)": decode_bytes (the loaders), check_identifiable (predict, before TensorFlow),
    serve_bytes alone and in a batch; cut at the header's end, none does. Reference: the
    header lengths of each format's spec (HEADERS). Fails before: the damaged words."""
    from hubensemble.data.decode import check_identifiable

    whole, end = KINDS[name][0], HEADERS[name]
    fmt = sniff(whole)
    for k in range(1, end + 1):
        data = whole[:k]
        words = f"too short to be a {fmt} file ({k} byte{'s' * (k != 1)})"
        with pytest.raises(UnreadableImage) as trained:
            decode_bytes(data)
        said = (str(trained.value), refusal(served[0], data))
        if k == end:
            assert not any("too short" in w for w in said), (k, said)
            continue
        assert said[0].startswith(words) and said[1] == f"{INVALID}: {words}", (k, said)
        if sniff(data) == fmt:  # cut past its signature (inside it: refused as before)
            with pytest.raises(UnreadableImage) as predicted:
                check_identifiable(data)
            assert str(predicted.value) == words, (k, str(predicted.value))
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        served[0](image_bytes=tf.constant([KINDS["png_rgb.png"][0], whole[:end - 1]],
                                          tf.string))
    assert op_error_reason(caught.value).startswith(
        f"{INVALID}: image_bytes[1] (of 2): too short to be a {fmt} file ({end - 1} bytes);")


@pytest.mark.parametrize("key", sorted(SHORT))
def test_a_file_shorter_than_its_formats_start_is_too_short_on_both_paths(served, key):
    """b"\\xff\\xd8" alone was "not a JPEG, PNG, GIF, BMP or WebP file (it starts with bytes
    ff d8)" and b"BM" "a BMP file with a 0-byte header" on the Python and graph paths: both
    say "too short to be a JPEG file (2 bytes)" (a BMP: under its 14-byte file header and
    4-byte info header size). Reference: the bytes counted here. Fails before: those words."""
    data, fmt = SHORT[key]
    words = f"too short to be a {fmt} file ({len(data)} bytes)"
    with pytest.raises(UnreadableImage) as trained:
        decode_bytes(data)
    assert str(trained.value).startswith(words), str(trained.value)
    assert refusal(served[0], data) == f"{INVALID}: {words}"
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        served[0](image_bytes=tf.constant([KINDS["png_rgb.png"][0], data], tf.string))
    assert op_error_reason(caught.value).startswith(
        f"{INVALID}: image_bytes[1] (of 2): {words}"), op_error_reason(caught.value)
