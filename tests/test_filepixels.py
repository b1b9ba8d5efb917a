"""Image files whose pixels decode all black or all white are skipped with why (data/filepixels)."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task
from hubensemble.data.decode import (UnreadableImage, check_identifiable, decode_bytes,
                                     serving_blob)
from hubensemble.data.sniff import animated_webp


def _benchmark_helper(name):
    """tools/benchmarks/NAME.py, loaded by its path (the scripts import it as a sibling;
    their folder is no package): one writer of each hand-made file for both."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: A 32-bit BMP with an alpha mask of uint8 RGBA [H, W, 4] (Pillow writes none).
bmp_rgba = _benchmark_helper("imagebytes").bmp_rgba


def png16(image):
    """A 16-bit RGB PNG of uint16 [H, W, 3] `image`, filter None on every row (as the
    new user's writer, and cv2's for 16 bits, do)."""
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def folder(tmp_path):
    """Two classes of 8 good PNGs each, and in class a one file of each bad kind and of each
    good kind that looks like one."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(8):
            Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).save(
                tmp_path / name / f"{i}.png")
    eight = (rng.random((8, 8, 3)) * 200 + 20).astype(np.uint16)
    a = tmp_path / "a"
    bad = {"as16.png": png16(eight),  # what cv2.imwrite(x.astype(np.uint16)) writes
           "alpha0.png": None, "grey16.png": None, "grey16.tif": None, "alpha0.tif": None}
    (a / "as16.png").write_bytes(bad["as16.png"])
    rgba = np.dstack([eight.astype(np.uint8), np.zeros((8, 8), np.uint8)])
    Image.fromarray(rgba, "RGBA").save(a / "alpha0.png")
    Image.fromarray(rgba, "RGBA").save(a / "alpha0.tif")
    # Pillow's 16-bit grey PNG (its own row filters) and TIFF, of 8-bit values.
    Image.fromarray(eight[..., 0]).save(a / "grey16.png")
    Image.fromarray(eight[..., 0]).save(a / "grey16.tif")
    good = {"true16.png": png16(eight * 257), "black16.png": png16(eight * 0)}
    for name, data in good.items():
        (a / name).write_bytes(data)
    Image.fromarray(eight[..., 0] * 16).save(a / "micro12.tif")  # 12-bit: dark, kept
    half = rgba.copy()
    half[..., 3] = 128
    Image.fromarray(half, "RGBA").save(a / "alpha128.png")
    return tmp_path, sorted(bad), ["true16.png", "black16.png", "micro12.tif", "alpha128.png"]


def test_files_that_decode_black_or_white_are_skipped_with_the_way_on(folder, caplog):
    """A new-user check: 16-bit PNGs of 8-bit values decoded to all zeros, 16-bit grey
    TIFFs likewise, RGBA files of alpha 0 to all white, and were trained on without a word,
    where the same pixels in an npz are refused (decode.check_16bit, check_array_values).
    Each is skipped, named with its reason and the way on; true 16-bit data (a 12-bit TIFF
    too, dark as the npz rule keeps it), an all-black 16-bit file and a half alpha are
    used."""
    import logging

    root, bad, good = folder
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        task = load_task(f"folder:{root}", test_fraction=0.0, val_fraction=0.0)
    # The 12-bit TIFF is kept and counted: it decodes dark (its top 8 bits). Said once, in
    # the summary load_task warns of (files were skipped), kept in run.json's data.task
    # ("dark") and shown on a row of the report's (none of them before).
    from hubensemble.report.datarows import decoding_rows

    top = int(np.asarray(Image.open(root / "a" / "micro12.tif")).max())
    note = (f"1 16-bit image holds values up to {top} of 65535 (e.g. "
            f"{root / 'a' / 'micro12.tif'}: 12-bit data?), which decodes dark (the top 8 "
            f"bits, 0..{top >> 8} of 255), as predict sends them: scale them to 16 bits "
            "(v * 16 for 12-bit data) or save them as 8-bit")
    said = [r.getMessage() for r in caplog.records if "decodes dark" in r.getMessage()]
    assert said == [task.summary()] and said[0].count(note) == 1, said
    assert task.to_json()["dark"] == {"count": 1,
                                      "examples": [[str(root / "a" / "micro12.tif"), top]]}
    assert dict(decoding_rows(task.to_json()))["dark 16-bit images"] == (
        f"1 image of values below 4096 of 65535 (12-bit data?), which decodes dark (e.g. "
        f"a/micro12.tif: up to {top})")
    skipped = {p.split("/")[-1]: why for p, why in task.skipped}
    assert sorted(skipped) == bad, skipped
    assert skipped["as16.png"].startswith(
        "a 16-bit PNG whose values all lie in 0..255 of 65535: 8-bit data in a 16-bit file")
    assert "save it as 8-bit (e.g. cv2.imwrite(path, x.astype(np.uint8)))" in skipped["as16.png"]
    assert skipped["grey16.tif"].startswith("a 16-bit TIFF whose values all lie in 0..2")
    assert skipped["alpha0.png"].startswith("a PNG whose alpha is 0 of 255 in every pixel")
    assert skipped["alpha0.tif"].startswith("a TIFF whose alpha is 0 of 255 in every pixel")
    used = [p.split("/")[-1] for p in task.train.paths]
    assert set(good) <= set(used) and len(used) == 16 + len(good), used
    # predict looks before serve_bytes decodes a PNG: the same reason, before TensorFlow.
    # predict: the bytes it sends serve_bytes (serving_blob), the same reason, skipped.
    for name in bad:
        data = (root / "a" / name).read_bytes()
        # check_identifiable reads a PNG's chunks before TensorFlow loads; others it decodes.
        looks = (check_identifiable,) if name.endswith(".png") else ()
        for look in (*looks, serving_blob, decode_bytes):
            with pytest.raises(UnreadableImage) as e:
                look(data)
            assert str(e.value) == skipped[name]
    for name in good:
        serving_blob((root / "a" / name).read_bytes())


def png_rows(image, *, interlace=False, sub=False):
    """A PNG of uint16 [H, W, C] `image` (C 1..4: grey, grey+alpha, RGB, RGBA) at 16 bits,
    written by hand: Adam7-interlaced or not, each row filtered None or Sub (the PNG spec's
    filter 1: each byte less the same byte of the pixel before)."""
    h, w, c = image.shape

    def rows(part):
        b = part.astype(">u2").view(np.uint8).reshape(part.shape[0], -1)
        if sub:
            b = b.copy()
            b[:, 2 * c:] = part.astype(">u2").view(np.uint8).reshape(b.shape)[:, 2 * c:] \
                - part.astype(">u2").view(np.uint8).reshape(b.shape)[:, :-2 * c]
        return b"".join(bytes([int(sub)]) + r.tobytes() for r in b)

    parts = ([image] if not interlace else
             [image[y::dy, x::dx] for x, y, dx, dy in
              ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
               (0, 1, 1, 2))])
    raw = b"".join(rows(p) for p in parts if p.size)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, int(interlace)))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("interlace", [False, True])
def test_16bit_pngs_of_every_layout_are_refused_or_counted_dark_as_a_tiff_is(interlace,
                                                                             tmp_path):
    """A 16-bit PNG of 12-bit values (0..4095) decoded dark, 0..15, without the count a 16-bit
    TIFF of the same values got (`Decoded.dark`), and an interlaced 16-bit PNG of 8-bit values
    was not looked at (it decoded black and was used). Every channel layout, interlaced or
    not, each row filter None or Sub, and Pillow's own 16-bit grey PNG: refused when its
    colour samples all lie in 1..255 (with a half alpha too, which the loaders kept: its
    pixels, composited onto white, were not black, so they did not look), dark with the
    largest sample when they lie below 4096 (opaque), kept otherwise; the answer checked
    against the samples themselves and the decoded pixels against theirs, v >> 8 (numpy);
    Pillow opens each file (interlaced as written)."""
    rng = np.random.default_rng(1)
    files = {}
    for c, alpha in ((1, None), (2, 65535), (2, 32768), (3, None), (4, 65535), (4, 32768)):
        for sub in (False, True):
            for kind, top in (("as8", 255), ("twelve", 4095), ("true", 65535)):
                image = rng.integers(1, top + 1, (13, 11, c)).astype(np.uint16)
                if alpha:  # opaque: the colour is the picture; half: composited
                    image[..., -1] = alpha
                files[f"{kind}_{c}_{alpha}_{int(sub)}.png"] = (
                    png_rows(image, interlace=interlace, sub=sub), image)
    if not interlace:  # Pillow writes no interlaced PNG
        for kind, top in (("as8", 255), ("twelve", 4095), ("true", 65535)):
            image = rng.integers(1, top + 1, (13, 11, 1)).astype(np.uint16)
            Image.fromarray(image[..., 0]).save(tmp_path / "p.png")
            files[f"{kind}_pillow.png"] = ((tmp_path / "p.png").read_bytes(), image)
    for name, (data, image) in files.items():
        colour = image[..., :1 if image.shape[-1] < 3 else 3]
        top = int(colour.max())
        with Image.open(io.BytesIO(data)) as im:  # the file is what it is meant to be
            assert im.info.get("interlace", 0) == int(interlace) or "pillow" in name, name
        if top <= 255:
            for look in (decode_bytes, serving_blob, check_identifiable):
                with pytest.raises(UnreadableImage, match="8-bit data in a 16-bit file"):
                    look(data)
            continue
        got = decode_bytes(data)
        opaque = image.shape[-1] in (1, 3) or image[0, 0, -1] == 65535
        assert got.dark == (top if top < 4096 and opaque else None), name
        expect = (colour >> 8).astype(np.uint8)
        if image.shape[-1] < 3:
            expect = np.repeat(expect, 3, axis=-1)
        if opaque:
            assert np.array_equal(got.pixels, expect), name
        assert serving_blob(data) == data


def alpha_pngs(tmp_path):
    """{name: bytes} of PNGs with alpha or a tRNS chunk, Pillow's and by hand: opaque,
    transparent everywhere (alpha 0 or 1) and transparent only at the first pixel."""
    rng = np.random.default_rng(2)
    colour = (rng.random((9, 7, 3)) * 255).astype(np.uint8)
    files = {}

    def save(name, im, **kw):
        im.save(tmp_path / name, **kw)
        files[name] = (tmp_path / name).read_bytes()

    for a, first in ((255, 255), (0, 0), (1, 1), (255, 0), (0, 200)):
        alpha = np.full((9, 7), a, np.uint8)
        alpha[0, 0] = first
        save(f"rgba_{a}_{first}.png", Image.fromarray(np.dstack([colour, alpha]), "RGBA"))
        save(f"la_{a}_{first}.png", Image.fromarray(np.dstack([colour[..., 0], alpha]), "LA"))
        wide = np.dstack([colour, alpha]).astype(np.uint16) * 257
        files[f"rgba16_{a}_{first}.png"] = png_rows(wide)
        files[f"rgba16i_{a}_{first}.png"] = png_rows(wide, interlace=True)
    # A soft edge: clear at the corner, 255 in the middle, every alpha between on the way.
    y, x = np.mgrid[:9, :7]
    soft = np.clip(255 - 40 * np.hypot(y - 4, x - 3), 0, 255).astype(np.uint8)
    soft[0, 0] = 0
    save("rgba_soft.png", Image.fromarray(np.dstack([colour, soft]), "RGBA"))
    files["rgba16i_soft.png"] = png_rows(np.dstack([colour, soft]).astype(np.uint16) * 257,
                                         interlace=True, sub=True)
    for bits in (2, 4, 8):
        index = rng.integers(0, 4, (9, 7)).astype(np.uint8)
        palette = list(range(12))
        for name, trns, first in (("none", b"\x00\x00\x00\x00", 0), ("all", b"\xff" * 4, 0),
                                  ("first", b"\x00\xff\xff\xff", 0), ("short", b"\x00", 1)):
            index[0, 0] = first
            im = Image.fromarray(index, "P")
            im.putpalette(palette)
            save(f"p{bits}_{name}.png", im, bits=bits, transparency=trns)
    for mode, key in (("RGB", (1, 2, 3)), ("L", 7)):
        flat = np.zeros((9, 7, 3), np.uint8) + np.array([1, 2, 3], np.uint8)
        pixels = flat if mode == "RGB" else flat[..., 0] * 0 + 7
        save(f"key_{mode}_all.png", Image.fromarray(pixels, mode), transparency=key)
        other = pixels.copy()
        other[0, 0] = 9
        save(f"key_{mode}_first.png", Image.fromarray(other, mode), transparency=key)
        other = pixels.copy()
        other[5, 5] = 9
        save(f"key_{mode}_later.png", Image.fromarray(other, mode), transparency=key)
    return files


def test_predict_decodes_an_alpha_png_only_when_its_first_pixel_is_transparent(tmp_path,
                                                                               monkeypatch):
    """predict's look before serve_bytes (`serving_blob`, `check_identifiable`) decoded every
    RGBA or tRNS PNG whole with Pillow to tell an alpha of 0 everywhere, and serve_bytes
    decoded it again: now Pillow decodes one only when its first pixel's alpha is at most 1
    and its filtered alpha bytes show none above 1 (a soft edge's do). The answer is the
    one a whole decode by Pillow gives (refused when the largest alpha of its RGBA is at
    most 1), and the loaders' (decode_bytes), for every kind of file; the
    loaders kept an alpha of 1 everywhere (its pixels read 254, they looked at 255 only),
    and a grey or RGB PNG whose tRNS colour key covers every pixel, which the graph reads
    as its stored colours (docs/data.md), was refused by predict."""
    files = alpha_pngs(tmp_path)
    opened = []
    real_open = Image.open

    def counted_open(*a, **k):
        opened.append(1)
        return real_open(*a, **k)

    for name, data in files.items():
        with real_open(io.BytesIO(data)) as im:
            # A grey or RGB file's colour key is not alpha to the graph (docs/data.md).
            keyed = im.mode in ("L", "RGB")
            alpha = np.asarray(im.convert("RGBA"))[..., 3]
            stored = np.asarray(im.convert("RGB")) if keyed else None
        refused = int(alpha.max()) <= 1 and not keyed
        for look in (serving_blob, check_identifiable, decode_bytes):
            if refused:
                with pytest.raises(UnreadableImage, match="in every pixel"):
                    look(data)
            else:
                look(data)
        if keyed:  # its stored colours, in training and in serve_bytes alike
            assert np.array_equal(decode_bytes(data).pixels, stored), name
        monkeypatch.setattr(Image, "open", counted_open)
        opened.clear()
        try:
            serving_blob(data)
        except UnreadableImage:
            pass
        monkeypatch.setattr(Image, "open", real_open)
        if alpha[0, 0] > 1 or keyed or "soft" in name:  # a soft edge: its filtered bytes
            assert not opened, name  # one pixel shows through: nothing decoded here


def alpha_files(alpha):
    """{name: bytes} of one 8x8 RGBA picture of alpha `alpha` (uint8 [8, 8]) in every format
    with alpha that a loader or predict reads."""
    rng = np.random.default_rng(3)
    rgba = np.concatenate([rng.integers(0, 255, (8, 8, 3), np.uint8), alpha[..., None]], -1)
    im = Image.fromarray(rgba, "RGBA")
    # A second frame of other colours: Pillow writes one frame of two alike.
    other = Image.fromarray(np.concatenate([255 - rgba[..., :3], rgba[..., 3:]], -1), "RGBA")
    files = {"a.bmp": bmp_rgba(rgba)}
    for name, fmt, kw in (("a.png", "PNG", {}), ("a.tif", "TIFF", {}), ("a.gif", "GIF", {}),
                          ("lossless.webp", "WEBP", {"lossless": True}),
                          ("lossy.webp", "WEBP", {"quality": 90}),
                          ("animated.webp", "WEBP", {"lossless": True, "save_all": True,
                                                     "append_images": [other]})):
        out = io.BytesIO()
        im.save(out, fmt, **kw)
        files[name] = out.getvalue()
    assert animated_webp(files["animated.webp"])
    return files


@pytest.mark.parametrize("kind", ["clear", "one", "faint", "seen"])
def test_an_image_transparent_everywhere_is_refused_in_every_format_with_alpha(tmp_path, kind):
    """A WebP or GIF of alpha 0 (or 1) everywhere was used as white by the loaders and
    predict, while a PNG or TIFF so was refused: one rule now for every format with alpha
    (PNG, TIFF, GIF, WebP still, lossless or animated, 32-bit BMP with an alpha mask): a
    file whose alpha is at most 1 of 255 in every pixel, by an independent Pillow decode, is
    refused by the loaders (`decode_bytes`) and by predict (`check_identifiable`,
    `serving_blob`); any other is read, as Pillow's pixels composited onto white. Fails
    before: the GIF, the still WebPs and the BMP were read white."""
    alpha = {"clear": np.zeros((8, 8), np.uint8), "faint": np.ones((8, 8), np.uint8),
             "one": np.zeros((8, 8), np.uint8), "seen": np.full((8, 8), 200, np.uint8)}[kind]
    if kind == "one":
        alpha[3, 5] = 255  # one pixel shows through
    for name, data in alpha_files(alpha).items():
        with Image.open(io.BytesIO(data)) as im:  # the independent decode: Pillow's RGBA
            ref = np.asarray(im.convert("RGBA"), np.int64)
        white = int(ref[..., 3].max()) <= 1
        assert white == (kind in ("clear", "faint")) or name == "a.gif", name
        if white:
            # check_identifiable reads a TIFF's header only: serving_blob decodes it.
            for read in [decode_bytes, serving_blob] + [check_identifiable] * (name != "a.tif"):
                with pytest.raises(UnreadableImage, match=r"alpha is [01] of 255 in every "
                                   r"pixel: composited onto white"):
                    read(data, name=name)
            continue
        a = ref[..., 3:]
        want = (ref[..., :3] * a + 255 * (255 - a) + 127) // 255
        got = decode_bytes(data, name=name).pixels.astype(np.int64)
        # A lossy WebP: TensorFlow's libwebp and Pillow's may round the colours apart.
        assert np.abs(got - want).max() <= (3 if name == "lossy.webp" else 0), name
        check_identifiable(data, name=name)
        assert serving_blob(data, name=name)
