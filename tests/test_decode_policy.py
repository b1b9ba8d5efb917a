"""One decode policy: every kind of image file gives the same pixels in the folder loader,
`predict`, the export's `serve_bytes` and `evaluate`, or is refused the same way with the real
reason. References are Pillow's pixels (or the source arrays) with alpha composited onto white
by the documented formula, written out here independently of hubensemble."""

import io
import os
import re
import struct
import sys
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import bounded_by_cpu
from hubensemble import evaluate as ev
from hubensemble.data import (GRAPH_FORMATS, UnreadableImage, decode_bytes, load_task,
                              load_test_set, read_image, sniff)
from hubensemble.data.graph import composite_on_white, decode_pixels, sniff_index
from hubensemble.data.sniff import SIGNATURES
from hubensemble.errors import HubensembleError
from hubensemble.export import ExportMember, predict, save_export

SIDE = 8  # every test image is SIDE x SIDE, the member's size: no resize anywhere
CLASSES = ["a", "b", "c"]
#: Levels a lossy file's pixels may differ from Pillow's. None: the graph decoder uses
#: libjpeg-turbo's accurate integer IDCT, as Pillow does (TensorFlow's default fast IDCT
#: differed by up to 12 levels on these files), and the same libwebp.
LOSSY_TOLERANCE = 0


# ---------------------------------------------------------------------------------------------
# Independent references and hand-written files
# ---------------------------------------------------------------------------------------------

def over_white(rgba):
    """uint8 RGBA [..., 4] -> RGB over white: round(c * a + 255 * (1 - a)), a = alpha / 255,
    in exact fractions (no tie exists: 255 never divides 2 c a + 2 * 255 (255 - a) - 255)."""
    rgba = np.asarray(rgba, np.int64)
    c, a = rgba[..., :3], rgba[..., 3:]
    num = c * a + 255 * (255 - a)
    return ((2 * num + 255) // 510).astype(np.uint8)


def pillow_pixels(data):
    """Pillow's first frame as RGBA, over white."""
    with Image.open(io.BytesIO(data)) as im:
        im.seek(0)
        return over_white(np.asarray(im.convert("RGBA")))


def encode(image, fmt, **kwargs):
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png16(array):
    """A 16-bit PNG written by hand: grey [H, W, 1] / RGBA [H, W, 4] uint16."""
    h, w, c = array.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\0" + array[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(width, height, bpp, rows, *, palette=(), header=40, compression=0, masks=None,
        top_down=False):
    """A BMP written by hand from its spec: `rows` top row first, each the packed pixel
    bytes of one row (padded here to 4 bytes); `palette` (r, g, b) entries."""
    stride = (width * bpp + 31) // 32 * 4
    body = b"".join(r.ljust(stride, b"\0") for r in (rows if top_down else rows[::-1]))
    if header == 12:
        dib = struct.pack("<IHHHH", 12, width, height, 1, bpp)
        pal = b"".join(bytes((b, g, r)) for r, g, b in palette)
    else:
        dib = struct.pack("<IiiHHIIiiII", header, width, -height if top_down else height, 1,
                          bpp, compression, len(body), 2835, 2835, len(palette), 0)
        extra = b""
        if header >= 52:
            extra = struct.pack("<4I", *(list(masks or (0, 0, 0)) + [0])[:4])
            dib += extra[:header - 40] if header < 56 else extra
            dib = dib.ljust(header, b"\0")
        elif masks is not None:
            dib += struct.pack(f"<{len(masks)}I", *masks)
        pal = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    offset = 14 + len(dib) + len(pal)
    return (b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + dib + pal + body)


def rle8(indices):
    """RLE8 rows (bottom-up) of a palette image: one run per pixel, then end of line/file."""
    out = b""
    for row in indices[::-1]:
        out += b"".join(bytes((1, int(v))) for v in row) + b"\0\0"
    return out + b"\0\1"


def smooth(seed, channels=3):
    """A smooth uint8 picture (JPEG-friendly): a bilinear-upsampled 3x3 colour field."""
    base = np.random.default_rng(seed).random((3, 3, channels)) * 255
    up = tf.image.resize(base, (SIDE, SIDE), method="bilinear").numpy()
    return np.clip(np.round(up), 0, 255).astype(np.uint8)


def noise(seed, shape):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def kinds():
    """{file name: (bytes, reference pixels uint8 [SIDE, SIDE, 3], tolerance, in_graph)}."""
    out = {}
    rgb, rgba = noise(1, (SIDE, SIDE, 3)), noise(2, (SIDE, SIDE, 4))
    rgba[:2, :, 3] = 0  # fully transparent rows...
    rgba[:2, :, :3] = 0  # ...that store black (issue example 2)
    rgba[2, :, 3] = 255
    grey_alpha = noise(3, (SIDE, SIDE, 2))

    def pil(name, image, fmt, tol=0, graph=True, **kw):
        data = encode(image, fmt, **kw)
        out[name] = (data, pillow_pixels(data), tol, graph)

    pil("png_rgb.png", Image.fromarray(rgb), "PNG")
    pil("png_grey.png", Image.fromarray(rgb[..., 0]), "PNG")
    pil("png_grey_alpha.png", Image.fromarray(grey_alpha, "LA"), "PNG")
    pil("png_rgba.png", Image.fromarray(rgba), "PNG")
    palette16 = Image.fromarray(smooth(4)).quantize(16)
    pil("png_palette.png", palette16, "PNG")
    pil("png_palette_trns.png", palette16, "PNG", transparency=3)
    deep = np.random.default_rng(5).integers(0, 65536, (SIDE, SIDE, 1), dtype=np.uint16)
    out["png_16bit_grey.png"] = (png16(deep), np.repeat((deep >> 8).astype(np.uint8), 3, -1),
                                 0, True)
    deep4 = np.random.default_rng(6).integers(0, 65536, (SIDE, SIDE, 4), dtype=np.uint16)
    out["png_16bit_rgba.png"] = (png16(deep4), over_white((deep4 >> 8).astype(np.uint8)), 0,
                                 True)
    out["png_16bit_rgb.png"] = (png16(deep4[..., :3]), (deep4[..., :3] >> 8).astype(np.uint8),
                                0, True)
    top = (deep4[..., 2:] >> 8).astype(np.uint8)  # grey, alpha
    out["png_16bit_grey_alpha.png"] = (png16(deep4[..., 2:]), over_white(
        np.concatenate([np.repeat(top[..., :1], 3, -1), top[..., 1:]], -1)), 0, True)
    # tRNS with an alpha per palette entry (0, 17, ..., 255), not one transparent index.
    pil("png_palette_alpha.png", palette16, "PNG", transparency=bytes(range(0, 256, 17)))
    pil("png_1bit.png", Image.fromarray(rgb[..., 1] > 127), "PNG")
    # A grey or RGB PNG's tRNS colour key is not applied (TensorFlow ignores it): the stored
    # colours, where Pillow (and browsers) make the keyed pixels transparent.
    keyed = rgb.copy()
    keyed[3, :4] = (10, 20, 30)
    out["png_rgb_key.png"] = (encode(Image.fromarray(keyed), "PNG", transparency=(10, 20, 30)),
                              keyed, 0, True)
    out["png_grey_key.png"] = (encode(Image.fromarray(keyed[..., 0]), "PNG", transparency=10),
                               np.repeat(keyed[..., :1], 3, -1), 0, True)
    assert (pillow_pixels(out["png_rgb_key.png"][0])[3, :4] == 255).all()
    photo = smooth(7)
    pil("jpeg_baseline.jpg", Image.fromarray(photo), "JPEG", LOSSY_TOLERANCE, quality=95)
    pil("jpeg_progressive.jpg", Image.fromarray(photo), "JPEG", LOSSY_TOLERANCE, quality=95,
        progressive=True)
    pil("jpeg_grey.jpg", Image.fromarray(photo[..., 1]), "JPEG", LOSSY_TOLERANCE, quality=95)
    pil("jpeg_cmyk.jpg", Image.fromarray(photo).convert("CMYK"), "JPEG", LOSSY_TOLERANCE,
        quality=95)
    pil("gif_plain.gif", palette16, "GIF")
    pil("gif_transparent.gif", palette16, "GIF", transparency=2)
    second = Image.fromarray(smooth(8)).quantize(16)
    pil("gif_animated.gif", palette16, "GIF", save_all=True, append_images=[second],
        duration=50)
    pil("bmp_1bit.bmp", Image.fromarray(rgb[..., 0] > 127), "BMP")
    pil("bmp_8bit_palette.bmp", palette16, "BMP")
    pil("bmp_8bit_grey.bmp", Image.fromarray(rgb[..., 2]), "BMP")
    pil("bmp_24bit.bmp", Image.fromarray(rgb), "BMP")
    pil("bmp_32bit.bmp", Image.fromarray(rgba), "BMP")  # BI_RGB: the 4th byte is unused
    # 4-bit, 16 colours (issue example 3: TensorFlow's decode_bmp returns the indices 0..15).
    colours = [tuple(int(v) for v in noise(10 + i, 3)) for i in range(16)]
    idx = np.random.default_rng(9).integers(0, 16, (SIDE, SIDE))
    rows = [bytes((int(r[i]) << 4) | int(r[i + 1]) for i in range(0, SIDE, 2)) for r in idx]
    data = bmp(SIDE, SIDE, 4, rows, palette=colours)
    want = np.array(colours, np.uint8)[idx]
    out["bmp_4bit_palette.bmp"] = (data, want, 0, True)
    # 16-bit: 5-5-5 (BI_RGB) and 5-6-5 bit fields; a channel of b bits -> round(v*255/(2^b-1)).
    v = np.random.default_rng(11).integers(0, 1 << 16, (SIDE, SIDE))
    r5, g5, b5 = (v >> 10) & 31, (v >> 5) & 31, v & 31
    rows = [b"".join(struct.pack("<H", int(p) & 0x7FFF) for p in r) for r in v]
    want = np.stack([np.floor(c * 255 / 31 + 0.5) for c in (r5, g5, b5)], -1).astype(np.uint8)
    out["bmp_16bit_555.bmp"] = (bmp(SIDE, SIDE, 16, rows), want, 0, True)
    r5, g6, b5 = (v >> 11) & 31, (v >> 5) & 63, v & 31
    rows = [b"".join(struct.pack("<H", int(p)) for p in r) for r in v]
    want = np.stack([np.floor(r5 * 255 / 31 + 0.5), np.floor(g6 * 255 / 63 + 0.5),
                     np.floor(b5 * 255 / 31 + 0.5)], -1).astype(np.uint8)
    out["bmp_16bit_565.bmp"] = (bmp(SIDE, SIDE, 16, rows, compression=3,
                                    masks=(0xF800, 0x07E0, 0x001F)), want, 0, True)
    # 32-bit with an alpha mask (BITMAPV4HEADER), and a top-down 24-bit one.
    rows = [b"".join(bytes((int(p[2]), int(p[1]), int(p[0]), int(p[3]))) for p in r)
            for r in rgba]
    out["bmp_32bit_alpha.bmp"] = (
        bmp(SIDE, SIDE, 32, rows, header=108, compression=3,
            masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)), over_white(rgba), 0, True)
    # 32-bit bit fields: 10-bit channels (2-10-10-10), and a 24-bit red channel, which is
    # scaled in int64 (v * 510 + top overflows int32), with no blue mask (blue 0).
    v = np.random.default_rng(12).integers(0, 1 << 32, (SIDE, SIDE), dtype=np.uint64)
    rows = [b"".join(struct.pack("<I", int(p)) for p in r) for r in v]
    ten = [(v >> shift) & 1023 for shift in (20, 10, 0)]
    want = np.stack([(c * 510 + 1023) // 2046 for c in ten], -1).astype(np.uint8)
    out["bmp_32bit_10bit.bmp"] = (bmp(SIDE, SIDE, 32, rows, compression=3,
                                      masks=(0x3FF00000, 0xFFC00, 0x3FF)), want, 0, True)
    wide, top = (v >> 8) & 0xFFFFFF, 0xFFFFFF
    want = np.stack([(wide * 510 + top) // (2 * top), v & 0xFF, 0 * v], -1).astype(np.uint8)
    out["bmp_32bit_wide_mask.bmp"] = (bmp(SIDE, SIDE, 32, rows, compression=3,
                                          masks=(0xFFFFFF00, 0xFF, 0)), want, 0, True)
    rows = [b"".join(bytes((int(p[2]), int(p[1]), int(p[0]))) for p in r) for r in rgb]
    out["bmp_24bit_topdown.bmp"] = (bmp(SIDE, SIDE, 24, rows, top_down=True), rgb, 0, True)
    rows = [bytes(int(i) for i in r) for r in idx]
    out["bmp_core_8bit.bmp"] = (bmp(SIDE, SIDE, 8, rows, palette=colours, header=12),
                                np.array(colours, np.uint8)[idx], 0, True)
    # RLE8: not in the graph; the kept decoder (Pillow) on the Python paths.
    rle = bmp(SIDE, SIDE, 8, [], palette=colours, compression=1)
    head = bytearray(rle)
    body = rle8(idx)
    struct.pack_into("<I", head, 2, len(head) + len(body))
    struct.pack_into("<I", head, 34, len(body))
    out["bmp_rle8.bmp"] = (bytes(head) + body, np.array(colours, np.uint8)[idx], 0, False)
    pil("webp_lossless.webp", Image.fromarray(rgb), "WEBP", lossless=True)
    pil("webp_rgba.webp", Image.fromarray(rgba), "WEBP", lossless=True)
    pil("webp_lossy.webp", Image.fromarray(photo), "WEBP", LOSSY_TOLERANCE, quality=90)
    pil("tiff_rgb.tif", Image.fromarray(rgb), "TIFF", graph=False)
    pil("tiff_rgba.tif", Image.fromarray(rgba), "TIFF", graph=False)
    pil("tiff_grey_alpha.tif", Image.fromarray(grey_alpha, "LA"), "TIFF", graph=False)
    return out


#: Files every path refuses, and words their reason must contain (the detected format).
REFUSED = {
    "notes.png": (b"these are not pixels\n", "not a JPEG, PNG, GIF, BMP or WebP file"),
    # Named as an image: a folder's scan.pdf is no image by name or first bytes, and not read
    # (`sniff.not_an_image`; test_notimages).
    "scan_pdf.jpg": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF file"),
    "cut.png": (None, "a damaged PNG file"),
    "cut.bmp": (None, "a truncated BMP file"),
    "empty.jpg": (b"", "an empty file"),
}


@pytest.fixture(scope="module")
def files():
    return kinds()


@pytest.fixture(scope="module")
def refused(files):
    out = {}
    for name, (data, words) in REFUSED.items():
        if name == "cut.bmp":
            data = files["bmp_24bit.bmp"][0][:80]
        elif data is None:
            data = files["png_rgb.png"][0][:60]
        out[name] = (data, words)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory, files, refused):
    """root/<a|b|c>/<kind>: the kinds spread over three classes, plus the refused files."""
    root = tmp_path_factory.mktemp("kinds")
    paths = {}
    for i, name in enumerate(sorted(files)):
        cls = CLASSES[i % 3]
        (root / cls).mkdir(exist_ok=True)
        (root / cls / name).write_bytes(files[name][0])
        paths[name] = root / cls / name
    for name, (data, _) in refused.items():
        (root / "a" / name).write_bytes(data)
        paths[name] = root / "a" / name
    return root, paths


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """A tiny export: one member, SIDE x SIDE pixels -> 3 classes through a dense layer whose
    weights make the probabilities depend on every pixel."""
    keras.utils.set_random_seed(3)
    clf = keras.Sequential([keras.Input((SIDE, SIDE, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(len(CLASSES), activation="softmax")])
    kernel, bias = clf.layers[-1].get_weights()
    clf.layers[-1].set_weights([np.random.default_rng(0).normal(
        size=kernel.shape).astype(np.float32) * 0.3, bias])
    out = tmp_path_factory.mktemp("export") / "model"
    check = np.random.default_rng(1).random((4, SIDE, SIDE, 3)).astype(np.float32)
    save_export([ExportMember(clf, SIDE, 1.0, {"trial": "t0"})], CLASSES, out,
                check_images=check)
    return out


#: The exports this module loaded: {(device, inode, mtime, size) of saved_model.pb: the
#: loaded SavedModel}, filled by `load_once` (`one_load_per_export`).
_LOADED = {}


def load_once(model_dir):
    """`formats.load_saved_model(model_dir)` (tf.saved_model.load), once per export folder
    whose saved_model.pb is unchanged: the same loaded SavedModel after that."""
    from hubensemble import formats

    try:
        st = os.stat(os.path.join(os.fspath(model_dir), "saved_model.pb"))
    except OSError:  # not an export: its refusal is load_saved_model's own
        return formats.load_saved_model(model_dir)
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key not in _LOADED:
        _LOADED[key] = formats.load_saved_model(model_dir)
    return _LOADED[key]


@pytest.fixture(scope="module", autouse=True)
def one_load_per_export():
    """predict and evaluate load the export at each call, and its serve_bytes graph is set
    up at its first call: about 3 s of CPU each, and this module calls them 30 times (CI run
    93: 130 s for the module). What is tested here is which pixels each path sees, the same
    with the export loaded once: predict's and evaluate's calls get `load_once`'s real
    loaded SavedModel (their own loading is test_export's and test_evaluate's)."""
    from hubensemble import evaluate, prediction

    with pytest.MonkeyPatch.context() as patch:
        for module in (prediction, evaluate):
            patch.setattr(module, "load_saved_model", load_once)
        yield
    _LOADED.clear()


def serve_bytes(loaded, blobs):
    return loaded.signatures["serve_bytes"](image_bytes=tf.constant(blobs, tf.string))


def serving_default(loaded, pixels):
    x = tf.constant(np.asarray(pixels, np.float32)[None] / 255.0)
    return loaded.signatures["serving_default"](images=x)["probabilities"].numpy()[0]


def probabilities_of(results):
    """predict results -> [N, C] probabilities (every class listed: top = C)."""
    out = np.zeros((len(results), len(CLASSES)))
    for i, r in enumerate(results):
        for t in r["top"]:
            out[i, t["class_id"]] = t["probability"]
    return out


# ---------------------------------------------------------------------------------------------
# The pixels
# ---------------------------------------------------------------------------------------------

def test_the_loader_gives_the_reference_pixels_of_every_kind(folder, files):
    root, paths = folder
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    got = dict(zip(map(str, task.train.paths), task.train.images))
    for name, (data, want, tol, graph) in files.items():
        pixels = got[str(paths[name])]
        assert pixels.dtype == np.uint8 and pixels.shape == (SIDE, SIDE, 3), name
        diff = np.abs(pixels.astype(int) - want.astype(int)).max()
        assert diff <= tol, f"{name}: differs from the reference by {diff} (> {tol})"
        decoded = decode_bytes(data)
        assert decoded.in_graph == graph, name
        np.testing.assert_array_equal(decoded.pixels, pixels)
    # Nothing vanished: every file is an example or a skipped entry with its reason.
    assert len(task.train) + len(task.skipped) == task.files == len(paths)
    assert {p.rsplit("/", 1)[-1] for p, _ in task.skipped} == set(REFUSED)


def test_palette_bmp_gives_its_colours_not_its_indices(files):
    """Issue example 3: a 16-colour palette BMP was read as its indices 0..15 (nearly
    black). Its pixels are the palette's colours, as Pillow shows them."""
    data, want, _, _ = files["bmp_4bit_palette.bmp"]
    pixels = decode_bytes(data).pixels
    np.testing.assert_array_equal(pixels, want)
    np.testing.assert_array_equal(pixels, pillow_pixels(data))
    assert pixels.max() > 15
    # What TensorFlow's own BMP decoder makes of the 8-bit palette file: indices.
    eight = files["bmp_8bit_palette.bmp"][0]
    assert tf.io.decode_bmp(eight).numpy().max() < 16
    np.testing.assert_array_equal(decode_bytes(eight).pixels, pillow_pixels(eight))


def test_transparent_pixels_are_white_in_every_format(files):
    for name in ("png_rgba.png", "bmp_32bit_alpha.bmp", "webp_rgba.webp", "tiff_rgba.tif"):
        pixels = decode_bytes(files[name][0]).pixels
        assert (pixels[:2] == 255).all(), name  # alpha 0 over stored black -> white
    gif = files["gif_transparent.gif"][0]
    with Image.open(io.BytesIO(gif)) as im:
        transparent = np.asarray(im) == 2
    assert transparent.any()
    assert (decode_bytes(gif).pixels[transparent] == 255).all()


def test_the_graph_compositing_formula_equals_the_documented_one():
    colour, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    grey_alpha = np.stack([colour, alpha], -1).astype(np.uint8)  # every (c, a) pair
    got = composite_on_white(tf.constant(grey_alpha)).numpy()
    exact = colour * alpha / 255 + 255 * (1 - alpha / 255)
    want = np.floor(exact + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(got[..., 0], want)
    np.testing.assert_array_equal(got[..., 0], got[..., 2])
    from hubensemble.data import to_rgb_uint8

    np.testing.assert_array_equal(to_rgb_uint8(grey_alpha), got)


def image_sized_casts(fn, spec):
    """(source, destination) dtype names of the casts in `fn` traced on `spec`, and in the
    functions it calls (tf.cond branches), whose result has rank 3 or more: a whole image
    [H, W, C] (a rank-2 result is one channel, or the indices of a palette)."""
    concrete = tf.function(fn, autograph=False).get_concrete_function(spec)
    graph = concrete.graph.as_graph_def(add_shapes=True)
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    out = []
    for n in nodes:
        if n.op != "Cast":
            continue
        shape = n.attr["_output_shapes"].list.shape
        if not shape or shape[0].unknown_rank or len(shape[0].dim) >= 3:
            out.append((tf.as_dtype(n.attr["SrcT"].type).name,
                        tf.as_dtype(n.attr["DstT"].type).name))
    return out


def test_decoding_widens_no_whole_image_beyond_two_bytes_a_sample():
    """A 1000 x 30000 RGB PNG (90 MB of pixels) took 1.06 GB more at its peak to decode, in
    training and in serve_bytes alike: `composite_on_white` cast every image to int32, alpha
    or not; the BMP decoder widened to int32 and int64 too (a 32-bit BMP of that size: 3.3
    GB). Only an image with alpha is widened now, to uint16, which holds the compositing
    formula exactly (test_the_graph_compositing_formula_equals_the_documented_one; the
    pixels of every kind: test_the_loader_gives_the_reference_pixels_of_every_kind)."""
    from hubensemble.data import graph

    image = tf.TensorSpec([None, None, None], tf.uint8)
    data = tf.TensorSpec([], tf.string)
    casts = {"composite_on_white": image_sized_casts(graph.composite_on_white, image)}
    for name in ("_png", "_webp", "decode_bmp"):
        casts[name] = image_sized_casts(getattr(graph, name), data)
    assert casts["composite_on_white"] == [("uint8", "uint16"), ("uint8", "uint16"),
                                           ("uint16", "uint8")], casts
    for name, found in casts.items():
        wide = [c for c in found if tf.as_dtype(c[1]).size > 2]
        assert not wide, (name, wide)


def test_arrays_and_the_kept_decoder_composite_in_uint16():
    """The Python twin (`to_rgb_uint8`, for arrays and for the kept decoder's RGBA pixels)
    held 44.5 bytes a pixel of an RGBA image at its peak (int32 temporaries), 12 now, with
    the same pixels as the independent formula."""
    import tracemalloc

    from hubensemble.data import to_rgb_uint8

    side = 128
    for channels, most in ((4, 16), (2, 10)):
        x = noise(13 + channels, (side, side, channels))
        x[:4, :, -1] = 0
        x[4:8, :, -1] = 255
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        got = to_rgb_uint8(x)
        peak = tracemalloc.get_traced_memory()[1] - before
        if started:
            tracemalloc.stop()
        rgba = x if channels == 4 else np.concatenate(
            [np.repeat(x[..., :1], 3, -1), x[..., 1:]], -1)
        np.testing.assert_array_equal(got, over_white(rgba))
        assert peak <= most * side * side, (channels, peak / (side * side))


def test_python_and_graph_name_formats_from_one_table():
    for name, parts in SIGNATURES:
        head = bytearray(32)
        for off, magic in parts:
            head[off:off + len(magic)] = magic
        assert sniff(bytes(head)) == name
        found = SIGNATURES[int(sniff_index(tf.constant(bytes(head))))][0]
        assert found == name
    assert sniff(b"hello") is None
    assert int(sniff_index(tf.constant(b"hello"))) == len(SIGNATURES)
    assert GRAPH_FORMATS == ("JPEG", "PNG", "GIF", "BMP", "WebP")


def test_heif_and_avif_files_of_every_major_brand_are_named_so_on_every_path():
    """HEIF's and AVIF's major brands (ISO/IEC 23008-12): an animated AVIF as Pillow writes
    it ("avis"), a phone's HEIF burst ("hevc", "msf1") were "not a JPEG, PNG, GIF, BMP or
    WebP file (it starts with bytes 00 00 00 2c 66 74 79 70)" on every path, and an AVIF
    sequence's orientation was never looked for (`decode._TAGGED_FORMATS`). The files are
    headers only: Pillow 13's AVIF encoder crashed the process on an 8 px 2-frame image."""
    from hubensemble.data.sniff import outside_graph

    for brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
                  b"mif1", b"msf1", b"avif", b"avis"):
        head = b"\0\0\0\x1cftyp" + brand + bytes(20)
        assert sniff(head) == "HEIF/AVIF", brand
        assert SIGNATURES[int(sniff_index(tf.constant(head)))][0] == "HEIF/AVIF", brand
        assert outside_graph(head) == "a HEIF/AVIF file"
        with pytest.raises(UnreadableImage, match="^a HEIF/AVIF file; neither TensorFlow nor "
                                                  "Pillow can decode it"):
            decode_bytes(head)  # a header alone: Pillow finds no image in it


def test_files_outside_the_graph_are_refused_in_the_graphs_words_without_running_it():
    """decode_bytes refuses a file outside GRAPH_FORMATS without TensorFlow (predict says it
    before the model loads); its reason must be the words serve_bytes' graph uses."""
    from hubensemble.data.decode import op_error_reason
    from hubensemble.data.sniff import (GRAPH_FORMATS_TEXT, UNSUPPORTED, convert_words,
                                        image_format, outside_graph)

    heads, named = [b"hello\n", b"\x00\x01", bytes(range(200, 240))], set()
    for name, parts in SIGNATURES:
        # One file per format: the words depend on the name alone (test_python_and_graph_
        # name_formats_from_one_table sniffs every row), and each file runs the graph.
        if name not in GRAPH_FORMATS and name not in named:
            named.add(name)
            head = bytearray(40)
            for off, magic in parts:
                head[off:off + len(magic)] = magic
            heads.append(bytes(head))
    for data in heads:
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            decode_pixels(tf.constant(data))
        # an image: convert it (with predict where Pillow here reads it)
        advice = convert_words(image_format(data)) if image_format(data) else ""
        assert op_error_reason(err.value) == (f"{UNSUPPORTED}: {outside_graph(data)}; "
                                              f"serve_bytes decodes {GRAPH_FORMATS_TEXT} only"
                                              + advice)
        with pytest.raises(UnreadableImage) as err:
            decode_bytes(data)
        assert str(err.value).startswith(f"{outside_graph(data)}; neither TensorFlow nor "
                                         "Pillow can decode it (Pillow: ")
    assert outside_graph(b"hello\n") == ("not a JPEG, PNG, GIF, BMP or WebP file (it starts "
                                         "with bytes 68 65 6c 6c 6f 0a)")


# ---------------------------------------------------------------------------------------------
# Every path: loader, serve_bytes, predict, evaluate
# ---------------------------------------------------------------------------------------------

def test_serve_bytes_and_predict_see_the_pixels_training_saw(folder, files, export_dir):
    root, paths = folder
    loaded = load_once(export_dir)
    names = sorted(files)
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    pixels = dict(zip(map(str, task.train.paths), task.train.images))
    reference = np.stack([serving_default(loaded, pixels[str(paths[n])]) for n in names])

    predicted = predict(export_dir, [paths[n] for n in names], top=len(CLASSES))
    np.testing.assert_allclose(probabilities_of(predicted), reference, atol=1e-6)
    in_graph = [n for n in names if files[n][3]]
    served = serve_bytes(loaded, [files[n][0] for n in in_graph])["probabilities"].numpy()
    np.testing.assert_allclose(served, reference[[names.index(n) for n in in_graph]],
                               atol=1e-6)
    # The pixels inside the graph are the loader's, exactly (not just close probabilities).
    for n in in_graph:
        np.testing.assert_array_equal(decode_pixels(tf.constant(files[n][0])).numpy(),
                                      pixels[str(paths[n])])


def test_large_images_are_shrunk_to_a_short_side_of_1024_as_serve_bytes_shrinks_them(
        export_dir, tmp_path):
    """A new-user check: a folder of 40 phone photos (4032 x 3024 JPEG) peaked at 7.5 GB in
    `rank`, as every image was held whole (36.6 MB each); a few hundred overflowed 24 GB. A
    decoded file is now shrunk, aspect kept, to a shorter side of 1024, by the same ops in
    the loader (graph formats and Pillow's alike) and in serve_bytes."""
    rng = np.random.default_rng(7)

    def photo(h, w):  # smooth, so that JPEG keeps it well
        small = rng.integers(0, 256, (max(h // 50, 2), max(w // 50, 2), 3), np.uint8)
        return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))

    cases = {"wide.png": (1500, 2000), "tall.tif": (3000, 1100), "square.bmp": (1025, 1025),
             "photo.jpg": (1536, 2048), "kept.png": (1024, 1500), "strip.png": (6, 3000)}
    root = tmp_path / "photos"
    stored, paths = {}, []
    for i, (name, (h, w)) in enumerate(cases.items()):
        (root / CLASSES[i % 3]).mkdir(parents=True, exist_ok=True)
        path = root / CLASSES[i % 3] / name
        Image.fromarray(photo(h, w)).save(path, quality=95)
        with Image.open(path) as im:  # Pillow's decode of the whole file: the reference
            stored[name] = np.asarray(im.convert("RGB"))
        paths.append(path)
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    got = dict(zip(map(str, task.train.paths), task.train.images))
    for path in paths:
        h, w = cases[path.name]
        short = min(h, w)
        want = stored[path.name]
        if short > 1024:  # the independent reference: TensorFlow's resize, called directly
            size = [1024 if h == short else round(h * 1024 / short),
                    1024 if w == short else round(w * 1024 / short)]
            x = tf.image.resize(want.astype(np.float32) * np.float32(1 / 255), size,
                                method="bilinear", antialias=True)
            want = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8).numpy()
        assert min(got[str(path)].shape[:2]) == min(short, 1024), path.name
        np.testing.assert_array_equal(got[str(path)], want, err_msg=path.name)
    # serve_bytes decodes and shrinks the graph's formats to the very same pixels; predict
    # (which sends the TIFF as a PNG of its pixels) gives what serving_default gives on them.
    loaded = load_once(export_dir)
    reference = np.stack([serving_default(loaded, got[str(p)]) for p in paths])
    np.testing.assert_allclose(probabilities_of(predict(export_dir, paths, top=len(CLASSES))),
                               reference, atol=1e-6)
    in_graph = [i for i, p in enumerate(paths) if p.suffix != ".tif"]
    served = serve_bytes(loaded, [paths[i].read_bytes() for i in in_graph])
    np.testing.assert_allclose(served["probabilities"].numpy(), reference[in_graph], atol=1e-6)
    for i in in_graph:
        np.testing.assert_array_equal(decode_pixels(tf.constant(paths[i].read_bytes())).numpy(),
                                      got[str(paths[i])])


def test_formats_outside_the_graph_are_refused_by_serve_bytes_with_reason(files, export_dir):
    """Issue example 4: a TIFF (and a 1-bit BMP) were accepted for training but refused by
    predict with an empty reason calling them JPEG/PNG/BMP/GIF. Now the 1-bit BMP is decoded
    in the graph, predict accepts the TIFF, and serve_bytes names it and why."""
    loaded = load_once(export_dir)
    serve_bytes(loaded, [files["bmp_1bit.bmp"][0]])  # decoded in the graph
    for name, fmt in (("tiff_rgb.tif", "TIFF"), ("bmp_rle8.bmp", "RLE8")):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            serve_bytes(loaded, [files[name][0]])
        assert fmt in err.value.message and "serve_bytes decodes" in err.value.message
    meta = ev.read_export_metadata(export_dir)
    assert meta["serve_bytes"]["formats"] == list(GRAPH_FORMATS)
    assert "TIFF" in meta["serve_bytes"]["refused"]


def test_an_animated_webp_is_read_by_pillow_and_refused_by_serve_bytes(export_dir, tmp_path):
    """A new-user check: a lossy 2-frame 64 px animated WebP aborted the process in
    TensorFlow's WebP decoder ("malloc(): corrupted top size"), in fit, predict and the
    export's own serve_bytes. The graph now refuses animated WebPs as unsupported; the Python
    paths read the first frame with Pillow and predict sends it as PNG, as for TIFF."""
    rng = np.random.default_rng(9)
    frames = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)) for _ in range(2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], quality=90,
                  duration=50)
    assert data[12:16] == b"VP8X" and data[20] & 2  # an animation, by its header
    decoded = decode_bytes(data)
    assert not decoded.in_graph and decoded.format == "WebP"  # was "WEBP" (Pillow's name)
    # The Python paths do not run the graph on it: its refusal printed TensorFlow's C++
    # "Local rendezvous is aborting … assertion failed" line, from Python without the CLI's
    # quiet, for a file then read (a new-user check). A fresh process, as a user's script.
    path = tmp_path / "moving.webp"
    path.write_bytes(data)
    script = ("import sys; from hubensemble.data.decode import decode_bytes; "
              "d = decode_bytes(open(sys.argv[1], 'rb').read()); print(d.format, d.in_graph)")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = bounded_by_cpu([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, env=env, cpu=300)
    assert done.returncode == 0 and done.stdout.split() == ["WebP", "False"], done.stderr
    assert "assertion failed" not in done.stderr and "rendezvous" not in done.stderr, done.stderr
    np.testing.assert_array_equal(decoded.pixels, pillow_pixels(data))
    loaded = load_once(export_dir)
    for _ in range(3):  # the heap corruption did not abort every time
        with pytest.raises(tf.errors.InvalidArgumentError, match="an animated WebP file"):
            serve_bytes(loaded, [data])
    np.testing.assert_allclose(probabilities_of(predict(export_dir, [path], top=3))[0],
                               serving_default(loaded, decoded.pixels), atol=1e-6)
    # A still WebP with the VP8X chunk (lossy with alpha) stays in the graph.
    still = encode(Image.fromarray(rng.integers(0, 256, (8, 8, 4), np.uint8)), "WEBP",
                   quality=90)
    assert still[12:16] == b"VP8X" and decode_bytes(still).in_graph


def test_refused_files_get_one_real_reason_on_every_path(folder, refused, export_dir):
    root, paths = folder
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    skipped = {p.rsplit("/", 1)[-1]: r for p, r in task.skipped}
    loaded = load_once(export_dir)
    for name, (data, words) in refused.items():
        with pytest.raises(UnreadableImage) as err:
            decode_bytes(data)
        reason = str(err.value)
        assert words in reason, (name, reason)
        assert skipped[name] == reason  # the loader says the same
        with pytest.raises(HubensembleError) as err:
            predict(export_dir, [paths[name]])
        assert reason in str(err.value) and "Graph execution error" not in str(err.value)
        result = predict(export_dir, [paths[name]], skip_unreadable=True)[0]
        assert result["error"] == reason
        if data:  # serve_bytes: an op error that carries the same words
            with pytest.raises(tf.errors.InvalidArgumentError) as err:
                serve_bytes(loaded, [data])
            if name != "cut.png":  # TensorFlow's PNG decoder words it its own way
                assert words in err.value.message, (name, err.value.message[-300:])


def test_evaluate_reads_files_as_training_did(folder, files, export_dir):
    root, paths = folder
    task = load_test_set(f"folder:{root}")
    assert len(task.test) == len(files)
    result = ev.evaluate_model(export_dir, task, corruptions=False, progress=False)
    loaded = load_once(export_dir)
    order = [str(p).rsplit("/", 1)[-1] for p in task.test.paths]
    predicted = probabilities_of(predict(export_dir, [paths[n] for n in order],
                                         top=len(CLASSES)))
    labels = task.test.labels
    p_true = np.maximum(predicted[np.arange(len(labels)), labels], 1e-7)
    assert result["n"] == len(labels)
    assert result["clean"]["ensemble"]["nll"] == pytest.approx(np.mean(-np.log(p_true)),
                                                               abs=1e-6)
    assert result["clean"]["ensemble"]["accuracy"] == pytest.approx(
        np.mean(predicted.argmax(1) == labels))
    del loaded


# ---------------------------------------------------------------------------------------------
# predict on folders, special files, and its counts
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def nested(tmp_path, files):
    """root/ with images at three levels, and hidden and OS entries the walk must not read.
    Returns (root, the files predict must read in order, the entries it must ignore)."""
    root = tmp_path / "imgs"
    layout = {  # path under root -> kind of file (from `files`)
        "z.png": "png_rgb.png",  # a file before the sub-folders, though its name sorts last
        "b.jpg": "jpeg_baseline.jpg",
        "a_dir/c.gif": "gif_plain.gif",
        "a_dir/deeper/d.tif": "tiff_rgb.tif",  # outside the graph: the kept decoder's PNG
        "nested/e.bmp": "bmp_24bit.bmp",
        "nested/a.webp": "webp_lossless.webp",
    }
    for rel, kind in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(files[kind][0])
    hidden = {".DS_Store": b"\0\0\0\1Bud1", "._z.png": b"\0\5\x16\7",
              "Thumbs.db": b"\xd0\xcf\x11\xe0", "nested/._e.bmp": b"\0\5\x16\7"}
    for rel, data in hidden.items():
        (root / rel).write_bytes(data)
    (root / "__MACOSX").mkdir()  # a folder of litter counts once; its files are not looked at
    (root / "__MACOSX" / "._b.jpg").write_bytes(b"\0\5\x16\7")
    order = ["b.jpg", "z.png", "a_dir/c.gif", "a_dir/deeper/d.tif", "nested/a.webp",
             "nested/e.bmp"]
    ignored = [".DS_Store", "._z.png", "Thumbs.db", "__MACOSX", "nested/._e.bmp"]
    return root, [str(root / r) for r in order], sorted(str(root / r) for r in ignored)


def test_predict_on_a_folder_reads_every_file_under_it_as_one_by_one(nested, files, export_dir):
    """A folder was refused ("pass its image files instead"), so 200,000 files did not fit
    on a command line. Now it stands for every file under it, walked as the folder loader
    walks a class folder, hidden and OS entries not read, paths as the files' own."""
    root, order, ignored = nested
    results = predict(export_dir, [root], top=len(CLASSES), progress=False)
    assert [r["path"] for r in results] == order
    assert sorted(results.ignored) == ignored
    assert all("top" in r for r in results)
    probs = probabilities_of(results)
    # The same numbers as the files named: in one call, and one at a time (a batch of its
    # own each, as one named alone has: one call, not one per file, each of which loaded
    # the export again, about 1.5 s each under CI's load).
    assert probabilities_of(predict(export_dir, order, top=len(CLASSES))).tolist() == \
        probs.tolist()
    alone = predict(export_dir, order, top=len(CLASSES), batch_size=1, progress=False)
    np.testing.assert_allclose(probabilities_of(alone), probs, atol=1e-6)
    # ... and the export's serve_bytes on the same bytes (the graph's formats).
    loaded = load_once(export_dir)
    graph = [i for i, p in enumerate(order) if not p.endswith(".tif")]
    served = serve_bytes(loaded, [open(order[i], "rb").read() for i in graph])
    np.testing.assert_allclose(served["probabilities"].numpy(), probs[graph], atol=1e-6)
    # The walk is the folder loader's: root as a class folder reads the same files.
    (root.parent / "other").mkdir()
    for name in ("x.png", "y.png"):
        (root.parent / "other" / name).write_bytes(files["png_grey.png"][0])
    task = load_task(f"folder:{root.parent}", val_fraction=0.0, test_fraction=0.0,
                     min_per_class=1)
    assert sorted(p for p in map(str, task.train.paths) if p.startswith(f"{root}/")) == \
        sorted(order)
    assert sorted(map(str, task.ignored)) == ignored
    assert results.tally() == ("predicted 6 files; 5 hidden or system entries in the folders "
                               "not read")
    # A folder named is walked, a file named is read, in the order given; one path alone too.
    mixed = predict(export_dir, [order[0], root / "nested"], progress=False)
    assert [r["path"] for r in mixed] == [order[0], *order[-2:]]
    assert [r["path"] for r in predict(export_dir, str(root / "a_dir"), progress=False)] == \
        order[2:4]
    # A folder with nothing to read is named, before TensorFlow's work, as a file would be.
    (root.parent / "empty" / ".git").mkdir(parents=True)
    with pytest.raises(HubensembleError, match=re.escape(
            f"{root.parent / 'empty'}: a folder with no file in it (1 hidden or system entry "
            "not read); leave the folder out or put images in it (or pass "
            "skip_unreadable=True)")):  # from Python, its keyword
        predict(export_dir, [root, root.parent / "empty"])


def test_predict_decodes_each_file_once_and_names_a_damaged_one_in_the_loaders_words(
        nested, files, refused, export_dir, monkeypatch):
    """A 5,000-file folder: predict decoded (and shrank) every JPEG / PNG in Python before
    serve_bytes decoded it again (60 photos of 4032 x 3024: two decodes and two shrinks
    each), and a TIFF twice in Python (looked at, then with its batch). Now serve_bytes alone
    decodes its formats and the kept decoder runs once per other file; a damaged file in a
    batch, and an RLE BMP that the graph leaves to the kept decoder, are still skipped with
    the folder loader's reason, or predicted from the kept decoder's pixels."""
    from hubensemble.data import decode

    root, order, _ = nested
    (root / "cut.jpg").write_bytes(files["jpeg_baseline.jpg"][0][:200])
    (root / "rle.bmp").write_bytes(files["bmp_rle8.bmp"][0])
    runs = {"graph": 0, "pillow": 0}

    def counted(name, key):
        real = getattr(decode, name)

        def run(*args, **kwargs):
            runs[key] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(decode, name, run)

    counted("_graph_decode", "graph")
    counted("_pil_pixels", "pillow")
    results = predict(export_dir, [root], top=len(CLASSES), progress=False)
    by_path = {r["path"]: r for r in results}
    # The TIFF once; the RLE BMP (refused by serve_bytes) and the cut JPEG, once each when
    # their batch is refused: the graph runs in Python for those two only.
    assert runs == {"graph": 2, "pillow": 2}, runs
    monkeypatch.undo()
    with pytest.raises(UnreadableImage) as err:  # the folder loader's decode of a file
        read_image(str(root / "cut.jpg"))
    assert by_path[str(root / "cut.jpg")]["error"] == str(err.value)
    assert str(err.value).startswith("a damaged JPEG file (")
    loaded = load_once(export_dir)
    rle = decode_bytes(files["bmp_rle8.bmp"][0]).pixels
    np.testing.assert_allclose(probabilities_of([by_path[str(root / "rle.bmp")]])[0],
                               serving_default(loaded, rle), atol=1e-6)
    # The others as each one alone gives (a batch of its own each: one call, one load)
    alone = predict(export_dir, order, top=len(CLASSES), batch_size=1, progress=False)
    assert [r["path"] for r in alone] == order
    np.testing.assert_allclose(probabilities_of([by_path[path] for path in order]),
                               probabilities_of(alone), atol=1e-6)


def test_predict_warns_of_the_first_unreadable_files_and_its_output_lists_them_all(
        nested, export_dir, caplog):
    """A folder with 150 text files named .jpg beside its images printed 150 warnings on
    stderr, through the bar, each repeating what the output lists. Now the first
    WARN_FIRST are warned of, the next says the rest go without a warning each (INFO), and
    the results list every one with its reason. (A text file under a folder is ignored now:
    these are TIFFs their header refuses.)"""
    import logging

    from hubensemble.prediction import WARN_FIRST

    root, order, _ = nested
    notes = [str(root / "nested" / f"note{k}.tif") for k in range(WARN_FIRST + 3)]
    for k, path in enumerate(notes):
        with open(path, "wb") as f:
            f.write(b"II*\x00" + bytes([k]) * 20)
    with caplog.at_level(logging.INFO, logger="hubensemble.prediction"):
        results = predict(export_dir, [root], progress=False)
    assert sorted(r["path"] for r in results if "error" in r) == notes
    assert results.skipped == len(notes) and len(results) == len(order) + len(notes)
    said = [r for r in caplog.records if r.name == "hubensemble.prediction"]
    warned = [r.getMessage() for r in said if r.levelno == logging.WARNING]
    assert len(warned) == WARN_FIRST + 1, warned
    assert "further unreadable files are skipped without a warning each" in warned[-1]
    assert len(said) == len(notes)  # every one said once: the rest at INFO
    assert all(any(p in r.getMessage() for r in said) for p in notes)


class Hang(Exception):
    pass


@pytest.fixture
def alarm():
    """Fails a test that blocks (a FIFO opened for reading waits for a writer) after 60 s."""
    import signal

    def hang(*_):
        raise Hang("predict blocked for 60 s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_predict_refuses_a_fifo_with_the_loaders_reason_and_never_blocks(
        nested, export_dir, alarm):
    """`predict … p.png` on a named pipe hung forever; the folder loader skips such an entry
    as "not a regular file (a socket, pipe or device)". predict says the same, unopened."""
    root, order, _ = nested
    fifo = root.parent / "p.png"
    os.mkfifo(fifo)
    os.mkfifo(root / "nested" / "q.jpg")
    reason = "not a regular file (a socket, pipe or device)"
    with pytest.raises(HubensembleError, match=re.escape(f"{fifo}: {reason}; ")):
        predict(export_dir, [order[0], fifo], progress=False)
    results = predict(export_dir, [fifo, root], skip_unreadable=True, progress=False)
    # The folder's files, then the entries under it that cannot be read, with the reason.
    assert [r["path"] for r in results] == [str(fifo), *order, str(root / "nested" / "q.jpg")]
    assert [r.get("error") for r in results] == [reason] + [None] * len(order) + [reason]
    assert results.skipped == 2
    # A FIFO that takes a regular file's place after predict looked is refused once open.
    from hubensemble import prediction

    with pytest.raises(OSError, match="not a regular file"):
        prediction._read(str(fifo))


def test_predicts_bar_counts_every_file_its_closing_count_does(nested, export_dir, capsys,
                                                               monkeypatch):
    """A file refused before TensorFlow loaded (a TIFF refused by its header) was left out
    of the bar's total: the bar ended at 5487 over "predicted 5487 of 5489 files". It counts
    every file read now, the refused ones done from its start."""
    from hubensemble import terminal

    monkeypatch.setattr(terminal, "LINE_SECONDS", 0.0)  # a line per update (stderr: no tty)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    root, _, _ = nested
    (root / "nested" / "broken.tif").write_bytes(b"II*\x00" + b"\0" * 20)
    results = predict(export_dir, [root], progress=True)
    bars = [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("predict: ") and "looking at" not in line]
    n = len(results)
    assert results.skipped == 1 and f"of {n} files" in results.tally()
    assert bars[0].startswith(f"predict:  14% 1/{n} ["), bars  # the refused file, done
    assert bars[-1].startswith(f"predict: 100% {n}/{n} ["), bars


def test_the_command_shows_a_bar_and_counts_predicted_and_skipped_files(
        nested, export_dir, capsys, monkeypatch):
    """3,000 files took 17 s with nothing on stderr, and --skip-unreadable printed one warning
    per file with no total. Now a bar and a closing count go to stderr (not with -q), and
    stdout stays the predictions (one JSON document with --json)."""
    import json

    from hubensemble import _tf
    from hubensemble.cli import main

    monkeypatch.delenv(_tf.QUIET_ENV, raising=False)  # main sets it: undone after the test
    root, order, _ = nested
    (root / "nested" / "notes.jpg").write_text("not a picture\n")
    (root / "nested" / "broken.tif").write_bytes(b"II*\x00" + b"\0" * 20)
    # A damaged image under a folder is skipped and counted without --skip-unreadable (as
    # the folder loader skips it), a file that is no image ignored and counted; one named
    # stops the run.
    with pytest.raises(HubensembleError, match="notes.jpg: not a JPEG"):
        predict(export_dir, [root / "nested" / "notes.jpg"], progress=False)
    # Under a folder, a file named as an image is read (and skipped with its reason): the
    # text file is ignored by its name and its bytes.
    (root / "nested" / "notes.jpg").rename(root / "nested" / "notes.txt")
    argv = ["predict", "--model", str(export_dir), str(root), "--json"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    results = json.loads(out)
    assert [r["path"] for r in results] == order[:4] + [str(root / "nested" / "a.webp"),
                                                        str(root / "nested" / "broken.tif"),
                                                        str(root / "nested" / "e.bmp")]
    assert "error" in results[-2] and "predict: 100%" in err
    assert "predict: looking at: " in err  # a count before TensorFlow loads
    # The warning for the skipped file is on a line of its own, not inside a bar's line.
    assert any(line.startswith("WARNING hubensemble.prediction: ") and "broken.tif" in line
               for line in re.split(r"[\r\n]", err)), err
    assert err.rstrip().endswith("predicted 6 of 7 files; 1 skipped (unreadable); 1 ignored: "
                                 "not images by name or first bytes (notes.txt); 5 hidden or "
                                 "system entries in the folders not read")
    assert "broken.tif: a TIFF file; neither TensorFlow nor Pillow" in err
    (root / "nested" / "broken.tif").unlink()
    assert main(argv[:-1] + ["-q"]) == 0  # a file that is no image is no error
    out, err = capsys.readouterr()
    assert out.count("\n  1. ") == len(order) and err == ""
    (root / "nested" / "notes.txt").unlink()
    assert main(argv[:-1] + ["-q"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n  1. ") == len(order) and err == ""


# ---------------------------------------------------------------------------------------------
# Issue example 2: RGBA queries served as trained
# ---------------------------------------------------------------------------------------------

def shape_picture(background, seed):
    """A grey disc on `background` (0 black, 255 white), uint8 [SIDE, SIDE, 3]."""
    yy, xx = np.mgrid[:SIDE, :SIDE]
    r = 2 + seed % 2
    disc = (yy - SIDE / 2 + 0.5) ** 2 + (xx - SIDE / 2 + 0.5 - seed % 3 + 1) ** 2 <= r * r
    out = np.full((SIDE, SIDE, 3), background, np.uint8)
    out[disc] = 128
    return out, disc


def test_rgba_queries_on_a_transparent_black_background_are_served_as_trained(
        export_dir, tmp_path):
    """Issue example 2: grey shapes on a white background (RGB) were learnt, and queried as
    RGBA PNGs whose transparent background stores RGB 0, 0, 0: the issue's predict and
    serve_bytes said "on_black" for all six, as they saw the shapes on black. evaluate,
    predict and serve_bytes all see them on white, as training does: each gives the shape on
    white's probabilities, which the shape on black's are not. (The module's export, whose
    probabilities depend on every pixel, stands in for the issue's two-class model: the same
    check without a second export's seconds.)"""
    loaded = load_once(export_dir)
    queries = tmp_path / "queries"
    blobs, paths, on_white, on_black = [], [], [], []
    for s in range(6):
        rgb, disc = shape_picture(0, s)
        alpha = np.where(disc, 255, 0).astype(np.uint8)
        data = encode(Image.fromarray(np.dstack([rgb, alpha])), "PNG")
        path = queries / CLASSES[s % 3] / f"q{s}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        blobs.append(data)
        paths.append(path)
        on_white.append(serving_default(loaded, shape_picture(255, s)[0]))
        on_black.append(serving_default(loaded, rgb))
    on_white, on_black = np.array(on_white), np.array(on_black)
    assert (np.abs(on_white - on_black).max(1) > 0.01).all()  # the background shows
    served = serve_bytes(loaded, blobs)["probabilities"].numpy()
    np.testing.assert_allclose(served, on_white, atol=1e-6)
    predicted = probabilities_of(predict(export_dir, paths, top=len(CLASSES)))
    np.testing.assert_allclose(predicted, on_white, atol=1e-6)
    task = load_test_set(f"folder:{queries}")
    result = ev.evaluate_model(export_dir, task, corruptions=False, progress=False)
    index = {str(p): i for i, p in enumerate(paths)}
    p_true = np.maximum([on_white[index[str(p)], y] for p, y in
                         zip(task.test.paths, task.test.labels)], 1e-7)
    assert result["n"] == 6
    assert result["clean"]["ensemble"]["nll"] == pytest.approx(-np.mean(np.log(p_true)),
                                                               abs=1e-6)


def test_files_of_many_formats_decode_without_a_retracing_warning():
    # `predict` on a PNG, a JPEG, a GIF, a BMP and a WebP printed TensorFlow's "5 out of the
    # last 5 calls to decoder_for.<locals>.decode triggered tf.function retracing": the five
    # per-format decoders shared one closure's statistics, though each traces once.
    import logging

    from hubensemble.data.decode import decode_image_bytes

    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Catch()
    tf.get_logger().addHandler(handler)
    try:
        rng = np.random.default_rng(0)
        for i, fmt in enumerate(("PNG", "JPEG", "GIF", "BMP", "WEBP", "PNG", "JPEG")):
            buf = io.BytesIO()
            image = rng.integers(0, 255, (8 + i, 9, 3), dtype=np.uint8)
            Image.fromarray(image).save(buf, fmt)
            out = decode_image_bytes(buf.getvalue())
            assert out.shape == (8 + i, 9, 3) and out.dtype == np.uint8
            if fmt in ("PNG", "BMP"):  # lossless: the very pixels
                np.testing.assert_array_equal(out, image)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [m for m in seen if "retracing" in m], seen


def test_a_warning_pillow_gives_while_decoding_names_the_file_once(tmp_path, monkeypatch,
                                                                   caplog):
    """A new-user check: a TIFF Pillow warned about in predict said only "WARNING
    py.warnings: …/PIL/TiffImagePlugin.py:982: UserWarning: Truncated File Read", twice,
    never which image. Pillow's own decompression-bomb warning (its limit lowered) stands in
    for any warning it gives while decoding."""
    import logging

    from hubensemble.data import read_image
    from hubensemble.data import decode as decode_module

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 144 pixels: a warning, not an error
    monkeypatch.setattr(decode_module, "_WARNED", set())
    path = tmp_path / "big.tiff"
    Image.fromarray(np.full((12, 12, 3), 7, np.uint8)).save(path)
    with caplog.at_level(logging.WARNING, logger="hubensemble.data.decode"):
        for _ in range(2):  # predict decodes a Pillow-only file twice: one warning
            assert read_image(str(path)).pixels.shape == (12, 12, 3)
    said = [r.getMessage() for r in caplog.records if r.name == "hubensemble.data.decode"]
    assert len(said) == 1 and said[0].startswith(f"{path}: Pillow warned while decoding it "
                                                 "(DecompressionBombWarning: ")
    assert said[0].endswith("; decoded all the same")


def test_libjpegs_warning_on_a_damaged_file_is_hidden_unless_verbose(capfd, monkeypatch, caplog):
    """libjpeg printed "Unsupported marker type 0x20" on fd 2 beside the reason the file is
    refused: the command line sent it to os.devnull, but a Python caller's stderr (no
    QUIET_ENV) got the raw C-library line. Both now get hubensemble's error alone, the line
    logged at INFO (RUN/log.txt, --verbose); --verbose (QUIET_ENV "0") keeps fd 2 as is."""
    import logging

    from hubensemble import _tf

    data = b"\xff\xd8\xff garbage"  # a JPEG start marker, then text
    for quiet in ("1", None, "0"):  # the command line, Python, the command line's --verbose
        if quiet is None:
            monkeypatch.delenv(_tf.QUIET_ENV, raising=False)
        else:
            monkeypatch.setenv(_tf.QUIET_ENV, quiet)
        capfd.readouterr()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=_tf.NATIVE_LOGGER), pytest.raises(
                UnreadableImage, match="a damaged JPEG file"):
            decode_bytes(data, name="x.jpg")
        err = capfd.readouterr().err
        assert ("Unsupported marker" in err) is (quiet == "0"), (quiet, err)
        logged = [r.getMessage() for r in caplog.records if r.name == _tf.NATIVE_LOGGER]
        said = "decoding x.jpg: Unsupported marker type 0x20"
        assert (said in logged) is (quiet != "0"), (quiet, logged)


def test_the_native_notices_sink_is_closed_at_exit_in_a_process_and_its_fork():
    """The sink native_notices keeps open for its process was left to the interpreter's
    shutdown: "ResourceWarning: unclosed file" at exit wherever warnings show (python -X dev,
    the end of a pytest run); a forked child's inherited one likewise when it made its own."""
    import subprocess

    code = ("import os, sys\n"
            "from hubensemble import _tf\n"
            "with _tf.native_notices('x'):\n"
            "    os.write(2, b'native line\\n')\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    with _tf.native_notices('child'):\n"
            "        pass\n"
            "    sys.exit(0)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "assert os.waitstatus_to_exitcode(status) == 0\n")
    from hubensemble import _tf

    env = {k: v for k, v in os.environ.items() if k != _tf.QUIET_ENV}  # the sink in use
    done = subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
    assert "native line" not in done.stderr, done.stderr  # it went to the sink


def test_overlapping_native_notice_blocks_in_threads_leave_stderr_as_it_was():
    """Two threads' blocks (two fit calls decoding at once) each saved and restored fd 2 on
    their own: the first out put the original back while the second still wrote to its
    sink, and the second out restored the first's sink, so every later stderr line was lost.
    A fresh process (fd 2 is its own): A enters, B enters, A leaves, B leaves; then a line
    on fd 2 must reach the parent, and the lines written inside are logged, not shown."""
    script = """if True:
        import logging, os, sys, threading
        from hubensemble import _tf
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
        def a():
            with _tf.native_notices("A"):
                os.write(2, b"inside A\\n")
                a_in.set()
                b_in.wait()
            a_out.set()
        def b():
            a_in.wait()
            with _tf.native_notices("B"):
                b_in.set()
                a_out.wait()
                os.write(2, b"inside B\\n")
        threads = [threading.Thread(target=f) for f in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        os.write(2, b"after both\\n")
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    from hubensemble import _tf

    env.pop(_tf.QUIET_ENV, None)  # a Python caller's process
    done = bounded_by_cpu([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cpu=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["after both"], done.stderr
    assert "B: inside A" in done.stdout and "B: inside B" in done.stdout, done.stdout


def test_a_large_pillow_only_image_imports_tensorflow_quietly(tmp_path):
    # A TIFF whose shorter side is above 1024 px is shrunk by the graph's resize after
    # Pillow decodes it: in `predict -q` that was the process's first TensorFlow import, and
    # its start-up notices (oneDNN, CUDA probing) reached the terminal. A fresh process: the
    # import happens once.
    from hubensemble import _tf

    path = tmp_path / "big.tif"
    Image.fromarray(np.zeros((1030, 1100, 3), np.uint8)).save(path)
    code = ("import sys; from hubensemble.data.decode import read_image; "
            "d = read_image(sys.argv[1]); print(d.pixels.shape, d.in_graph)")
    done = bounded_by_cpu([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, cpu=300, env={**os.environ, _tf.QUIET_ENV: "1"})
    assert (done.returncode, done.stdout) == (0, "(1024, 1094, 3) False\n"), done.stderr
    assert "oneDNN" not in done.stderr and "cuInit" not in done.stderr, done.stderr


# ---------------------------------------------------------------------------------------------
# Orientation tags, format by format
# ---------------------------------------------------------------------------------------------

#: What a viewer shows of stored pixels [H, W, C] for each EXIF orientation tag (the EXIF
#: standard's turns and flips, written with numpy; checked against ImageOps.exif_transpose).
VIEWED = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
          4: lambda a: a[::-1], 5: lambda a: a.transpose(1, 0, 2),
          6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
          8: lambda a: np.rot90(a, 1)}


def oriented_kinds():
    """{file name: (Pillow format, save options, turned)}: every format the decoders read
    that carries an orientation tag Pillow reports; `turned` when the pixels apply it."""
    from PIL import features

    out = {"png": ("PNG", {}, False), "jpg": ("JPEG", {"quality": 95}, False),
           "webp": ("WEBP", {"lossless": True}, False),
           "anim.webp": ("WEBP", {"lossless": True, "save_all": True}, False),  # Pillow's
           "tif": ("TIFF", {}, True), "lzw.tif": ("TIFF", {"compression": "tiff_lzw"}, True),
           "big.tif": ("TIFF", {"big_tiff": True}, True)}
    if features.check("avif"):  # Pillow built with libavif: the kept decoder reads AVIF
        out["avif"] = ("AVIF", {"quality": 100}, False)
    return out


def test_an_orientation_tag_is_applied_as_pillow_applies_it_and_counted_so(
        export_dir, tmp_path):
    """Files with orientation tags 1..8 showed that every decode path leaves JPEG, PNG,
    WebP (still and animated) and AVIF as stored, but Pillow turns a TIFF upright as it loads
    it, so TIFFs were counted "used as stored, not turned upright" though they were turned,
    and an AVIF's tag (its irot / imir boxes) was not counted at all. Each is now counted as
    what its pixels are; the loader, serve_bytes and predict give the same pixels."""
    from hubensemble.data import read_image
    from hubensemble.report.datarows import accounting_rows as _accounting_rows
    from PIL import ImageOps

    rng = np.random.default_rng(79)
    root = tmp_path / "tagged"
    expected, paths = {}, []
    for i, (name, (fmt, options, turned)) in enumerate(oriented_kinds().items()):
        for tag in range(1, 9):
            raw = rng.integers(0, 256, (6, 10, 3), np.uint8)  # not square: turns show
            exif = Image.Exif()
            exif[0x0112] = tag
            extra = ({"append_images": [Image.fromarray(255 - raw)]}
                     if options.get("save_all") else {})
            path = root / CLASSES[(i + tag) % 3] / f"{tag}.{name}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(raw).save(path, fmt, exif=exif, **options, **extra)
            with Image.open(path) as im:  # the tag as a viewer reads it, and what it shows
                viewed = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            stored = raw
            if fmt in ("JPEG", "AVIF"):  # lossy: Pillow's decode of the stored pixels
                with Image.open(path) as im:
                    stored = np.asarray(im.convert("RGB"))
                assert stored.shape == raw.shape, name  # Pillow leaves these as stored
            np.testing.assert_array_equal(viewed, VIEWED[tag](stored), err_msg=path.name)
            expected[str(path)] = (VIEWED[tag](stored) if turned else stored, tag, turned)
            paths.append(path)
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    got = dict(zip(map(str, task.train.paths), task.train.images))
    for path in paths:
        want, tag, turned = expected[str(path)]
        np.testing.assert_array_equal(got[str(path)], want, err_msg=path.name)
        decoded = read_image(str(path))
        tagged = tag if tag != 1 else None
        assert (decoded.orientation, decoded.turned) == (
            (None, tagged) if turned else (tagged, None)), path.name
        if decoded.in_graph:  # serve_bytes decodes the very bytes to the loader's pixels
            np.testing.assert_array_equal(decode_pixels(tf.constant(path.read_bytes())).numpy(),
                                          want, err_msg=path.name)
    assert sorted(p for p, _ in task.oriented) == sorted(
        p for p, (_, tag, turned) in expected.items() if tag != 1 and not turned)
    assert sorted(task.turned) == sorted(
        (p, tag) for p, (_, tag, turned) in expected.items() if tag != 1 and turned)
    assert len(task.turned) == 21  # 3 kinds of TIFF x tags 2..8
    assert (f"; {len(task.oriented)} images with an EXIF or XMP orientation tag (e.g. "
            in task.summary())
    assert "; 21 TIFF images turned upright by their orientation tag (e.g. " in task.summary()
    record = task.to_json()
    assert record["turned"]["count"] == 21 and record["oriented"]["count"] == len(task.oriented)
    rows = dict(_accounting_rows(record))
    assert rows["TIFF orientation"].startswith("21 TIFF images turned upright by the tag")
    # predict (a TIFF or AVIF sent as a PNG of the loader's pixels) gives what
    # serving_default gives on the loader's pixels.
    loaded = load_once(export_dir)
    reference = np.stack([serving_default(loaded, got[str(p)]) for p in paths])
    np.testing.assert_allclose(probabilities_of(predict(export_dir, paths, top=len(CLASSES))),
                               reference, atol=1e-6)


def xmp_packet(tag, form):
    """An XMP packet whose only orientation is tiff:Orientation = `tag`, as an attribute
    (form "attr", as Adobe's tools write it) or an element ("elem", as exiftool can)."""
    ns = 'rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
    body = (f'<rdf:Description {ns} tiff:Orientation="{tag}"/>' if form == "attr" else
            f'<rdf:Description {ns}><tiff:Orientation>{tag}</tiff:Orientation>'
            '</rdf:Description>')
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'{body}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def save_with_xmp(image, path, fmt, options, packet):
    """`image` saved at `path` with `packet` where its format keeps XMP: JPEG's APP1, PNG's
    iTXt "XML:com.adobe.xmp", WebP's XMP chunk, TIFF's tag 700, AVIF's XMP item."""
    from PIL import PngImagePlugin, TiffImagePlugin

    kw = dict(options)
    if fmt == "PNG":
        kw["pnginfo"] = PngImagePlugin.PngInfo()
        kw["pnginfo"].add_itxt("XML:com.adobe.xmp", packet.decode())
    elif fmt == "TIFF":
        kw["tiffinfo"] = TiffImagePlugin.ImageFileDirectory_v2()
        kw["tiffinfo"][700] = packet
        kw["tiffinfo"].tagtype[700] = 1  # BYTE, as XMP in TIFF is stored
    else:
        kw["xmp"] = packet
    if kw.get("save_all"):
        kw["append_images"] = [Image.fromarray(255 - np.asarray(image))]
    image.save(path, fmt, **kw)


def test_an_orientation_only_in_xmp_is_used_as_the_exif_tag_is_and_counted_so(
        export_dir, tmp_path):
    """An orientation stored only in XMP (tiff:Orientation, no EXIF tag: attribute and
    element form), which Pillow's getexif and exif_transpose read and viewers apply. Every
    path gave the same pixels already: as stored for JPEG, PNG, WebP (still and animated) and
    AVIF, turned for a TIFF (Pillow's TIFF loader runs exif_transpose, which reads XMP). But
    the count was not truthful: such a JPEG, PNG or WebP was not counted at all (the loader
    asked Pillow only for bytes holding an EXIF block), the same JPEG with an EXIF block
    lacking the tag was counted, and an AVIF's was counted as an "EXIF orientation tag"."""
    from hubensemble.data import exif_orientation, read_image
    from hubensemble.report.datarows import accounting_rows as _accounting_rows
    from PIL import ImageOps

    rng = np.random.default_rng(82)
    root = tmp_path / "xmp"
    expected, paths = {}, []
    kinds = dict(oriented_kinds(), **{"exif.jpg": ("JPEG", {"quality": 95}, False)})
    for i, (name, (fmt, options, turned)) in enumerate(sorted(kinds.items())):
        for form, tag in (("attr", 6), ("elem", 3 if "anim" in name else 8)):
            raw = rng.integers(0, 256, (6, 10, 3), np.uint8)  # not square: turns show
            path = root / CLASSES[i % 2] / f"{form}.{name}"
            path.parent.mkdir(parents=True, exist_ok=True)
            extra = dict(options)
            if name == "exif.jpg":  # an EXIF block without the tag, beside the XMP one
                extra["exif"] = Image.Exif()
                extra["exif"][0x010F] = "camera"
            save_with_xmp(Image.fromarray(raw), path, fmt, extra, xmp_packet(tag, form))
            stored = raw
            if fmt in ("JPEG", "AVIF"):  # lossy: Pillow's decode of the stored pixels
                with Image.open(path) as im:
                    stored = np.asarray(im.convert("RGB"))
                    assert (im.getexif().get(0x0112), stored.shape) == (tag, raw.shape)
            # The reference turn: Pillow's own transpose of the stored pixels, by hand.
            method = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90,
                      3: Image.Transpose.ROTATE_180}[tag]
            upright = np.asarray(Image.fromarray(stored).transpose(method))
            np.testing.assert_array_equal(upright, VIEWED[tag](stored))
            with Image.open(path) as im:  # viewers (exif_transpose) do turn it
                np.testing.assert_array_equal(
                    np.asarray(ImageOps.exif_transpose(im).convert("RGB")), upright,
                    err_msg=path.name)
            expected[str(path)] = (upright if turned else stored, tag, turned)
            paths.append(path)
    upright_jpeg = encode(Image.fromarray(raw), "JPEG", xmp=xmp_packet(1, "attr"))
    assert exif_orientation(upright_jpeg) is None  # 1: as stored, nothing to count
    task = load_task(f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    tested = load_test_set(f"folder:{root}")  # evaluate's loader
    got = dict(zip(map(str, task.train.paths), task.train.images))
    for path in paths:
        want, tag, turned = expected[str(path)]
        np.testing.assert_array_equal(got[str(path)], want, err_msg=path.name)
        decoded = read_image(str(path))
        assert (decoded.orientation, decoded.turned) == (
            (None, tag) if turned else (tag, None)), path.name
        if decoded.in_graph:  # serve_bytes' graph: the same pixels from the same bytes
            np.testing.assert_array_equal(decode_pixels(tf.constant(path.read_bytes())).numpy(),
                                          want, err_msg=path.name)
    for path, pixels in zip(tested.test.paths, tested.test.images):
        np.testing.assert_array_equal(pixels, expected[str(path)][0], err_msg=str(path))
    assert sorted(task.oriented) == sorted(
        (p, tag) for p, (_, tag, turned) in expected.items() if not turned)
    assert sorted(task.turned) == sorted(
        (p, tag) for p, (_, tag, turned) in expected.items() if turned)
    assert len(task.turned) == 6  # 3 kinds of TIFF x 2 forms
    assert (f"; {len(task.oriented)} images with an EXIF or XMP orientation tag (e.g. "
            in task.summary())
    assert "; 6 TIFF images turned upright by their orientation tag (e.g. " in task.summary()
    rows = dict(_accounting_rows(task.to_json()))
    assert rows["orientation tag"].startswith(
        f"{len(task.oriented)} images with the tag (EXIF or XMP), used as stored")
    # predict: the graph's formats as their bytes, the others as a PNG of the loader's pixels.
    loaded = load_once(export_dir)
    reference = np.stack([serving_default(loaded, expected[str(p)][0]) for p in paths])
    np.testing.assert_allclose(probabilities_of(predict(export_dir, paths, top=len(CLASSES))),
                               reference, atol=1e-6)


def test_shrunk_images_are_counted_per_split_in_the_summary_run_json_and_report(tmp_path):
    """Since the shrink to a shorter side of 1024 px (1161320) nothing said how many images
    it changed. The loader counts them from the decode itself (the size before
    the shrink), per split; an npz is never shrunk and counts none."""
    from hubensemble.data import load_test_set, read_image
    from hubensemble.report.datarows import accounting_rows as _accounting_rows

    rng = np.random.default_rng(5)

    def smooth_picture(h, w):
        small = rng.integers(0, 256, (4, 4, 3), np.uint8)
        return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))

    # (file, stored height, width, tag): the TIFF is turned (tag 6) before it is shrunk.
    files = {"a": [("wide.png", 1100, 1300, None), ("tall.jpg", 1400, 1030, None),
                   ("edge.png", 1024, 1500, None), ("small.png", 40, 60, None),
                   ("turned.tif", 1030, 1100, 6)],
             "b": [("big.bmp", 1025, 1025, None), ("small.png", 30, 30, None),
                   ("strip.png", 6, 3000, None), ("big.webp", 1200, 1100, None),
                   ("small.jpg", 50, 70, None)]}
    root = tmp_path / "big"
    decoded_size = {}
    for cls, rows in files.items():
        (root / cls).mkdir(parents=True)
        for name, h, w, tag in rows:
            path = root / cls / name
            options = {"quality": 95} if name.endswith((".jpg", ".webp")) else {}
            if tag:
                exif = Image.Exif()
                exif[0x0112] = tag
                options["exif"] = exif
            Image.fromarray(smooth_picture(h, w)).save(path, **options)
            decoded_size[str(path)] = (w, h) if tag in (5, 6, 7, 8) else (h, w)
    want = {p: hw for p, hw in decoded_size.items() if min(hw) > 1024}
    assert len(want) == 5
    for path, hw in decoded_size.items():
        got = read_image(path)
        assert got.shrunk_from == want.get(path), path
        assert min(got.pixels.shape[:2]) == min(min(hw), 1024), path
    task = load_task(f"folder:{root}", seed=3)  # 3 / 1 / 1 of each class
    per_split = {s: sum(p in want for p in getattr(task, s).paths) for s in
                 ("train", "val", "test")}
    assert sorted(task.shrunk) == sorted(want.items())
    assert task.shrunk_counts() == per_split and sum(per_split.values()) == 5
    counts = ", ".join(f"{s} {n}" for s, n in per_split.items())
    assert (f"; 5 images above 1024 px on their shorter side shrunk to it ({counts}; e.g. "
            in task.summary()), task.summary()
    record = task.to_json()["shrunk"]
    assert record["count"] == 5 and record["splits"] == per_split
    assert sorted((p, tuple(hw)) for p, hw in record["examples"]) == sorted(want.items())
    row = dict(_accounting_rows(task.to_json()))["shrunk images"]
    assert row.startswith(f"5 with a shorter side above 1024 px, shrunk to it ({counts}; "
                          "e.g. "), row
    # evaluate's test set: one split, every image in it.
    test_set = load_test_set(f"folder:{root}")
    assert test_set.shrunk_counts() == {"test": 5}
    assert "; 5 images above 1024 px on their shorter side shrunk to it (test 5; e.g. " in (
        test_set.summary())
    # Arrays are not shrunk, so an npz counts none.
    np.savez(tmp_path / "big.npz", x_train=np.zeros((4, 1030, 1100, 3), np.uint8),
             y_train=np.array([0, 1, 0, 1]))
    arrays = load_task(f"npz:{tmp_path / 'big.npz'}", val_fraction=0.0)
    assert arrays.train.images.shape[1:3] == (1030, 1100) and arrays.shrunk == []
    assert arrays.to_json()["shrunk"]["count"] == 0
    assert "shorter side shrunk" not in arrays.summary()


def test_predict_names_a_skipped_file_on_one_line_on_stderr_too(
        export_dir, tmp_path, capsys, monkeypatch):
    """predict's stdout names a file as one shell word (a newline or an ESC escaped), but its
    warning for a skipped file, and its refusal of one, printed the name as it is on stderr."""
    from hubensemble import _tf
    from hubensemble.cli import main

    monkeypatch.delenv(_tf.QUIET_ENV, raising=False)  # main sets it: undone after the test
    bad = tmp_path / "n\nx\x1b[2J.png"
    bad.write_text("not a picture\n")
    for argv in (["--skip-unreadable"], []):
        code = main(["predict", "--model", str(export_dir), str(bad), *argv])
        err = capsys.readouterr().err
        assert code == (1 if argv else 2) and "\x1b" not in err, err
        said = [line for line in err.splitlines() if f"{tmp_path}/n\\nx\\x1b[2J.png: not a" in line]
        assert len(said) == 1 and said[0].startswith(
            "WARNING hubensemble.prediction: " if argv else "hubensemble: error: "), err
        assert said[0].endswith("; skipped") if argv else "--skip-unreadable" in said[0], err


def test_a_files_decode_calls_the_traced_graph_without_a_signature_match_per_file():
    """Each file went through a tf.function call, which binds and matches its argument to
    the signature before running the graph: a third of a small JPEG's decode CPU (0.28 ms
    -> 0.19 ms a 64 px JPEG; Pillow 0.09). The loaders call each format's concrete function,
    the same graph: the same pixels as decode_pixels (serve_bytes) for every format."""
    from tensorflow.python.eager.polymorphic_function.concrete_function import (
        ConcreteFunction)

    from hubensemble.data.graph import decoder_for
    from hubensemble.data.sniff import sniff_row

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (9, 7, 3), np.uint8)
    for fmt in ("JPEG", "PNG", "BMP", "GIF", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        data = buf.getvalue()
        decoder = decoder_for(sniff_row(data))
        assert isinstance(decoder, ConcreteFunction), fmt
        got, size = decoder(tf.constant(data))
        np.testing.assert_array_equal(got.numpy(), decode_pixels(tf.constant(data)).numpy())
        np.testing.assert_array_equal(decode_bytes(data).pixels, got.numpy())
        assert size.numpy().tolist() == [9, 7]


def test_an_interrupt_at_any_point_of_a_native_notice_block_gives_stderr_back():
    """Ctrl-C is checked for at almost any bytecode: one between `native_notices`' redirection
    of fd 2 and its ``try`` (or at the start of its ``finally``) left fd 2 on the block's
    closed sink, so every later line of the process's stderr was lost. A fresh process
    raises SIGINT at itself (a trace function, no sleeps) at the Nth line hubensemble._tf runs
    while fd 2 is redirected, for every N: each time the KeyboardInterrupt comes out of the
    block, fd 2 and Python's SIGINT handler are what they were, and a line on fd 2 reaches
    the parent."""
    script = """if True:
        import os, signal, sys
        from hubensemble import _tf
        original = os.fstat(2)
        def redirected():
            now = os.fstat(2)
            return (now.st_dev, now.st_ino) != (original.st_dev, original.st_ino)
        n = 0
        while True:
            n += 1
            seen = [0]
            def local(frame, event, arg):
                if event == "line" and redirected():
                    seen[0] += 1
                    if seen[0] == n:
                        signal.raise_signal(signal.SIGINT)
                return local
            def tracer(frame, event, arg):
                return local if frame.f_code.co_filename == _tf.__file__ else None
            interrupted = False
            sys.settrace(tracer)
            try:
                with _tf.native_notices("block"):
                    os.write(2, b"inside\\n")
            except KeyboardInterrupt:
                interrupted = True
            finally:
                sys.settrace(None)
            if seen[0] < n:
                break
            print(n, interrupted, not redirected(),
                  signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
            os.write(2, b"after %d\\n" % n)
            if redirected():
                break
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    from hubensemble import _tf

    env.pop(_tf.QUIET_ENV, None)  # a Python caller's process
    done = bounded_by_cpu([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cpu=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert all(row[1:] == ["True"] * 3 for row in rows), done.stdout
    assert len(rows) >= 3, done.stdout  # the points tried: every line while redirected
    assert done.stderr.splitlines() == [f"after {row[0]}" for row in rows], done.stderr


def test_native_notice_blocks_each_log_only_the_lines_written_inside_them(
        caplog, capfd, monkeypatch):
    """`native_notices` keeps one sink for the process (a new temporary file for each block
    cost ~80 µs a decoded image): each block still logs only what was written on fd 2 inside
    it, under its own name, once; a block inside which nothing was written logs nothing, and
    what is written after the blocks reaches stderr."""
    import logging

    from hubensemble import _tf

    monkeypatch.delenv(_tf.QUIET_ENV, raising=False)  # a Python caller's process
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger=_tf.NATIVE_LOGGER):
        with _tf.native_notices("decoding a.jpg"):
            os.write(2, b"Unsupported marker type 0x20\n")
        with _tf.native_notices("decoding b.jpg"):
            pass
        with _tf.native_notices("decoding c.jpg"):
            os.write(2, b"first\nsecond\n")
    os.write(2, b"after\n")
    logged = [r.getMessage() for r in caplog.records if r.name == _tf.NATIVE_LOGGER]
    assert logged == ["decoding a.jpg: Unsupported marker type 0x20",
                      "decoding c.jpg: first", "decoding c.jpg: second"]
    assert capfd.readouterr().err == "after\n"


def small_bombs(side=13400):
    """(name, bytes) of small valid GIF and WebP files (lossy, lossless, with a VP8X header)
    whose headers say `side` x `side` pixels: 13400 x 13400 RGB is past 2^29 bytes, the size
    TensorFlow's JPEG and PNG decoders refuse. Their pixels are cut short: headers of files
    whose whole pixels are that many (a 7.5 KB lossless WebP of 14000 x 14000 decoded to
    0.8 GB and held 6.7 GB at its peak, a 145 KB GIF 3.6 GB) take seconds to write."""
    def saved(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return bytearray(buf.getvalue())

    img = Image.fromarray(np.full((16, 16, 3), 90, np.uint8))
    gif = saved(img.convert("P"), "GIF")
    at = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)  # after the global table
    assert gif[at] == 0x2C, gif[:40]  # the first image descriptor: left, top, width, height
    gif[6:10] = gif[at + 5:at + 9] = struct.pack("<HH", side, side)
    lossy = saved(img, "WEBP", quality=80)
    assert lossy[12:16] == b"VP8 "
    lossy[26:30] = struct.pack("<HH", side, side)
    lossless = saved(img, "WEBP", lossless=True)
    assert lossless[12:16] == b"VP8L"
    bits = struct.unpack("<I", lossless[21:25])[0] & ~((1 << 28) - 1)
    lossless[21:25] = struct.pack("<I", bits | (side - 1) | (side - 1) << 14)
    vp8x = saved(Image.fromarray(np.full((16, 16, 4), 90, np.uint8)), "WEBP", quality=80,
                 exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    assert vp8x[12:16] == b"VP8X"
    vp8x[24:30] = struct.pack("<I", side - 1)[:3] + struct.pack("<I", side - 1)[:3]
    return [("GIF", bytes(gif)), ("WebP", bytes(lossy)), ("WebP", bytes(lossless)),
            ("WebP", bytes(vp8x))]


def test_a_gif_or_webp_past_the_decoders_size_is_refused_by_its_header_size():
    """GIF and WebP files were decoded at any size (TensorFlow's decoders of those have no
    bound): 196 million pixels from 7.5 KB held 6.7 GB, where a JPEG or PNG of that size is
    refused by its decoder, and these headers cut short were called damaged. Every graph
    format is now refused past the same size, by its header, before it is decoded, in the
    words of a JPEG's refusal."""
    for fmt, data in small_bombs():
        with pytest.raises(UnreadableImage) as caught:
            decode_bytes(data)
        assert str(caught.value).startswith(
            f"a {fmt} file of 13400 x 13400 pixels, too large to decode ("), caught.value
        assert "Shrink it first" in str(caught.value), caught.value


def test_a_gif_is_decoded_to_its_first_frame_only(caplog, monkeypatch):
    """The decode policy keeps a GIF's first frame, but TensorFlow's decoder read every frame
    (a 0.5 MB GIF of 200 frames of 1000 x 1000 held 0.8 GB more for its first), and one cut
    short in a later frame (a download stopped) logged TensorFlow's error "failed to slurp
    gif file" for each decode (TF Serving's log too). The decoder now gets the bytes to the
    first frame's end: that frame, as Pillow reads it, and nothing logged."""
    import logging

    from hubensemble import _tf

    monkeypatch.delenv(_tf.QUIET_ENV, raising=False)  # a Python caller's process
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8)).convert("P")
              for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40)
    whole = buf.getvalue()
    cut = whole[:len(whole) - 60]  # inside the third frame
    with Image.open(io.BytesIO(cut)) as im:
        want = np.asarray(im.convert("RGB"))  # Pillow reads the first frame of the cut file
    for data in (whole, cut):
        with caplog.at_level(logging.INFO, logger=_tf.NATIVE_LOGGER):
            got = decode_bytes(data, name="cut.gif")
        assert got.format == "GIF" and got.in_graph
        np.testing.assert_array_equal(got.pixels, want)
    logged = [r.getMessage() for r in caplog.records if r.name == _tf.NATIVE_LOGGER]
    assert not [line for line in logged if "gif_io" in line], logged  # the GIF decoder


def test_shrinking_a_large_image_converts_it_to_float_a_strip_at_a_time():
    """A 140 KB 12000 x 12000 grey PNG (432 MB of uint8 RGB pixels) peaked at 3.1 GB RSS in
    decoding, in training and in serve_bytes alike: the shrink to a 1024 px shorter side cast
    the whole image to float32 before resizing it. It converts 256 columns at a time now
    (1.4 GB), inside a while loop: no cast of the uint8 image is outside the loop's body."""
    from hubensemble.data.shrink import shrink_ops

    fn = tf.function(shrink_ops, autograph=False).get_concrete_function(
        tf.TensorSpec([None, None, 3], tf.uint8))
    graph = fn.graph.as_graph_def()
    where = [(f.signature.name, n.op) for f in graph.library.function for n in f.node_def
             if n.op == "Cast" and n.attr["SrcT"].type == tf.uint8.as_datatype_enum]
    where += [("outer", n.op) for n in graph.node
              if n.op == "Cast" and n.attr["SrcT"].type == tf.uint8.as_datatype_enum]
    assert where and all("while_body" in name for name, _ in where), where


def test_the_strip_resize_is_the_one_resize_bit_for_bit():
    """`augment.resize_uint8` (strips of columns) against `augment.resize` of the whole image
    in float32, rounded: the same values, for strips narrower than, across and wider than
    the image, shrinking and enlarging."""
    from hubensemble import augment

    for seed, (h, w, size) in enumerate([(40, 61, (13, 20)), (33, 17, (50, 9)),
                                         (64, 64, (64, 31))]):
        x = noise(seed, (h, w, 3))
        want = tf.cast(tf.round(augment.resize(x, size) * 255.0),
                       tf.uint8).numpy()
        for strip in (1, 7, 16, 256):
            got = augment.resize_uint8(x, size, strip=strip).numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{(h, w, size, strip)}")


def test_the_shrink_equals_pillows_antialiased_bilinear_within_one_level():
    """The shrink's pixels against an independent resize: Pillow's BILINEAR (a triangle
    filter widened by the scale, as `augment.resize`'s antialiasing; Pillow rounds to uint8
    between its two passes, so values differ by 1 at most)."""
    from hubensemble.data.shrink import shrink_to_short_side

    for seed, (h, w) in enumerate([(1025, 1100), (1300, 2100), (2050, 1030)]):
        x = noise(seed, (h, w, 3))
        got = shrink_to_short_side(x).numpy()
        short = min(h, w)
        want_hw = [1024 if s == short else round(s * 1024 / short) for s in (h, w)]
        assert list(got.shape) == want_hw + [3]
        ref = np.asarray(Image.fromarray(x).resize((want_hw[1], want_hw[0]), Image.BILINEAR,
                                                   reducing_gap=None))
        assert np.abs(got.astype(int) - ref).max() <= 1, (h, w)


def test_netpbm_files_are_named_and_read_by_the_kept_decoder():
    """PBM, PGM, PPM and PAM files (raw and plain) were "not a JPEG, PNG, GIF, BMP or WebP
    file (it starts with bytes 50 36 …)" to the graph: named now, and told to convert; the
    Python paths read them with Pillow, the pixels Pillow gives (it reads no PAM)."""
    from hubensemble.data.sniff import image_format

    x = noise(5, (6, 7, 3))
    files = {"PPM": encode(Image.fromarray(x), "PPM"),
             "PGM": encode(Image.fromarray(x[..., 0]), "PPM"),
             "PBM": encode(Image.fromarray(x[..., 0] > 127), "PPM"),
             "PAM": b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"
                    + bytes(range(6)),
             "PGM ": b"P2\n2 1\n255\n7 9\n"}
    for name, data in files.items():
        name = name.strip()
        assert image_format(data) == name
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(
                f"a {name} file; serve_bytes decodes JPEG, PNG, GIF, BMP and WebP only: "
                "convert it to PNG first")):
            decode_pixels(tf.constant(data))
        if name == "PAM":  # Pillow reads no PAM: the file is named in its refusal too
            with pytest.raises(UnreadableImage, match="^a PAM file; neither TensorFlow nor "):
                decode_bytes(data)
            continue
        with Image.open(io.BytesIO(data)) as im:
            want = np.asarray(im.convert("RGB"))
        np.testing.assert_array_equal(decode_bytes(data).pixels, want, err_msg=name)


def test_array_refusals_count_their_nouns_in_the_singular_for_one():
    """'1 channel(s) on axis 1', '1 value(s) in 1 image(s)': counted by text.counted now."""
    from hubensemble.data import to_rgb_uint8
    from hubensemble.errors import DataError

    with pytest.raises(DataError, match=re.escape("([N, C, H, W], 1 channel on axis 1)")):
        to_rgb_uint8(np.zeros((2, 1, 8, 8), np.uint8))
    with pytest.raises(DataError, match=re.escape("([C, H, W], 3 channels on axis 0)")):
        to_rgb_uint8(np.zeros((3, 8, 8), np.uint8))
    batch = np.zeros((3, 4, 4, 3), np.float32)
    batch[1, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=re.escape("NaN (1 value in 1 image, the first at index "
                                                  "1); drop those images")):
        to_rgb_uint8(batch)
    batch[2, 0, :2, 0] = np.inf
    with pytest.raises(DataError, match=re.escape("(3 values in 2 images, the first at ")):
        to_rgb_uint8(batch)
    with pytest.raises(DataError, match=re.escape("NaN (1 value); drop the image, or replace")):
        to_rgb_uint8(batch[1])


def test_an_asserts_message_is_said_without_tensorflows_escapes():
    """An Assert prints its message with C escapes, so an oversized GIF's refusal read
    "TensorFlow\\'s JPEG and PNG decoders\\' bound" in predict, the data summary and the
    report (a new user's check). op_error_reason undoes the escapes of quotes and
    backslashes (UTF-8 is printed as it is), and the oversized-image words hold no quote, as
    a TF Serving client reads TensorFlow's text as it is. Fails before: the backslashes."""
    import tensorflow as tf

    from hubensemble.data.decode import op_error_reason
    from hubensemble.data.graph import TOO_LARGE

    said = "a file's \"name\" at C:\\dir × 2 …"

    @tf.function
    def refuse():
        with tf.control_dependencies([tf.debugging.Assert(tf.constant(False), [said])]):
            return tf.constant(1)

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        refuse()
    assert "\\'" in str(caught.value)  # TensorFlow's own text keeps its escapes
    assert op_error_reason(caught.value) == said
    assert "'" not in TOO_LARGE and '"' not in TOO_LARGE
    for fmt, data in small_bombs():
        with pytest.raises(UnreadableImage) as bomb:
            decode_bytes(data)
        assert "\\" not in str(bomb.value), bomb.value


def test_an_image_predict_cannot_read_is_not_sent_to_predict():
    """serve_bytes told a PAM file to "convert it to PNG first (hubensemble predict does: it
    reads it with Pillow)", and predict then refused it: Pillow has no PAM reader (a new
    user's check). A format Pillow reads here (PPM, TIFF) keeps that way on; one it does not
    is told to convert with another tool, in serve_bytes' graph and in predict's decode.
    Fails before: the PAM file was sent to predict."""
    import PIL.Image

    from hubensemble.data.decode import op_error_reason
    from hubensemble.data.sniff import CONVERT_ELSEWHERE, CONVERT_WORDS

    pam = b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(6)
    with pytest.raises(Exception):
        PIL.Image.open(io.BytesIO(pam)).load()  # the premise: Pillow cannot read it here
    ppm = b"P6\n2 1\n255\n" + bytes(6)
    assert PIL.Image.open(io.BytesIO(ppm)).size == (2, 1)
    for data, advice in ((pam, CONVERT_ELSEWHERE), (ppm, CONVERT_WORDS)):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            decode_pixels(tf.constant(data))
        assert op_error_reason(err.value).endswith(advice), err.value
    assert "predict does" not in CONVERT_ELSEWHERE


def test_each_decoder_and_header_reader_is_one_function_of_the_savedmodel(tmp_path):
    """The decoders of every format and the header readers serve_bytes' decode and refusal
    paths share are tf.functions TensorFlow does not inline (`graphops.on_one_file`): the
    SavedModel stores each once, each instantiated only when a request reaches it. Inline,
    every export traced them at each call site (the GIF walk twice, the format sniff five
    times) and a first request instantiated every decoder: a second export in one process took
    2.3 s of trace and save against 0.7, a first request 1.6 s against 1.1
    (tools/benchmarks/bench_decode_graph.py). Fails before: no function of these names."""
    from tensorflow.core.protobuf import saved_model_pb2

    from hubensemble.export.saved import check_headers, decode_each, decode_image

    class Served(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def serve(self, image_bytes):
            def one(data):
                return (tf.image.resize(decode_image(data), [8, 8]),)
            return decode_each(check_headers(image_bytes), one,
                               [tf.TensorSpec([8, 8, 3], tf.float32)])[0]

    served = Served()
    tf.saved_model.save(served, str(tmp_path))
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((tmp_path / "saved_model.pb").read_bytes())
    functions = {}
    for function in saved.meta_graphs[0].graph_def.library.function:
        name = re.sub(r"^__inference_(.*)_\d+$", r"\1", function.signature.name)
        functions.setdefault(name, []).append(function.attr["_noinline"].b)
    for name in ("sniff_index", "_jpeg", "_png", "_gif", "decode_bmp", "_webp", "_gif_first_image",
                 "_webp_size", "header_size", "header_check_refusal", "format_named",
                 "header_refusal"):
        assert functions.get(name) == [True], (name, sorted(functions))
    # Served as before: a PNG's pixels, and a cut JPEG refused by its position.
    png = io.BytesIO()
    Image.fromarray(np.full((6, 4, 3), 200, np.uint8)).save(png, "PNG")
    jpeg = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(jpeg, "JPEG")
    loaded = tf.saved_model.load(str(tmp_path))
    np.testing.assert_allclose(loaded.serve(tf.constant([png.getvalue()])).numpy(), 200 / 255,
                               atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[1\] \(of 2\)"):
        loaded.serve(tf.constant([png.getvalue(), jpeg.getvalue()[:100]]))


def test_the_format_sniff_compares_every_signature_at_once_by_the_python_rule():
    """The graph's format sniff (`sniff_index`, serve_bytes' batch check `decodable_headers`)
    compares a file's first bytes with every SIGNATURES row in one op, and names the row the
    Python rule (`sniff.sniff_row`) names for every signature, each of its magic bytes changed,
    and random bytes. A substr and a comparison per part of each row traced 460 ops for
    `sniff_index` (and as many in each export's graph for `decodable_headers`). Fails before:
    460 ops."""
    from hubensemble.data.graph import _BRANCH, decodable_headers
    from hubensemble.data.sniff import HEAD_BYTES, sniff_row

    rng = np.random.default_rng(5)
    heads = [rng.integers(0, 256, HEAD_BYTES + 4, np.uint8).tobytes() for _ in range(20)]
    for _, parts in SIGNATURES:
        head = bytearray(rng.integers(0, 256, HEAD_BYTES + 4, np.uint8).tobytes())
        for off, magic in parts:
            head[off:off + len(magic)] = magic
        heads.append(bytes(head))
        for off, magic in parts:
            for at in range(off, off + len(magic)):
                changed = bytearray(head)
                changed[at] ^= 0x20
                heads.append(bytes(changed))
    rows = [sniff_row(head) for head in heads]
    assert len(set(rows)) == len(SIGNATURES) + 1  # every row, and none
    assert [int(sniff_index(tf.constant(head))) for head in heads] == rows
    batch = tf.function(decodable_headers, autograph=False)(tf.constant(heads + [b""]))
    wanted = [_BRANCH[row] < len(GRAPH_FORMATS) for row in rows] + [False]
    assert batch.numpy().tolist() == wanted
    ops = len(sniff_index.get_concrete_function().graph.as_graph_def().node)
    assert ops < 40, ops


def test_constant_header_fields_are_read_as_little_endian_integers():
    """`graphops.uint_fields` reads a header's fields at constant offsets by one gather: each
    the little-endian unsigned integer `struct` reads, and past the bytes' end what
    `uint_le` reads (the last byte repeated). The BMP and WebP headers' reads."""
    from hubensemble.data.graphops import uint_fields, uint_le

    data = np.random.default_rng(6).integers(0, 256, 40, np.uint8)
    fields = [(0, 4), (3, 2), (10, 3), (14, 4), (36, 4), (38, 4), (39, 1)]
    got = [int(v) for v in uint_fields(tf.constant(data), fields)]
    for (off, n), value in zip(fields, got):
        if off + n <= len(data):
            assert value == int.from_bytes(data[off:off + n].tobytes(), "little"), (off, n)
        assert value == int(uint_le(tf.constant(data), off, n)), (off, n)


def test_an_exports_save_traces_no_decode_helper_again(tmp_path):
    """`tf.saved_model.save` traces serve_bytes in a context of its own, which a tf.function's
    cache tells from the export's own trace: every decoder and header reader of the decode
    graph was traced twice by a process's first export (half its decode graph's cost: 1.1 s
    of CPU of its save, 0.55 now; bench_decode_graph.py). They are called by their one
    concrete function now (`graphops.on_one_file`). Fails before: traced twice."""
    from hubensemble.data import bmpgraph, graph
    from hubensemble.export.saved import check_headers, decode_each, decode_image

    class Served(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def serve(self, image_bytes):
            def one(data):
                return (tf.image.resize(decode_image(data), [4, 4]),)
            return decode_each(check_headers(image_bytes), one,
                               [tf.TensorSpec([4, 4, 3], tf.float32)])[0]

    served = Served()
    served.serve.get_concrete_function()
    tf.saved_model.save(served, str(tmp_path))
    helpers = {name: getattr(graph, name) for name in (
        "sniff_index", "_jpeg", "_png", "_gif", "_webp", "_gif_first_image", "_webp_size",
        "header_size", "header_check_refusal", "format_named", "header_refusal")}
    helpers["decode_bmp"] = bmpgraph.decode_bmp
    traced = {name: getattr(fn, "function", fn).experimental_get_tracing_count()
              for name, fn in helpers.items()}
    assert traced == dict.fromkeys(helpers, 1)
