"""predict's look at a PNG's alpha before serve_bytes (`filepixels.png_fault`, what
`serving_blob` and `check_identifiable` run): read from the file's own rows, under every PNG
filter, without Pillow decoding the file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hubensemble.data.decode import UnreadableImage, check_identifiable, serving_blob


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


#: Adam7's passes (PNG spec 8.2): (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))


def _packed(part, depth):
    """The bytes of each row of uint8/uint16 [h, w, c] `part` at `depth` bits a sample
    (under 8: one sample a pixel, packed from the high bits): uint8 [h, row bytes]."""
    h, w, _ = part.shape
    if depth == 16:
        return part.astype(">u2").view(np.uint8).reshape(h, -1)
    if depth == 8:
        return part.astype(np.uint8).reshape(h, -1)
    bits = np.unpackbits(part.astype(np.uint8).reshape(h, w, 1), axis=2)[:, :, 8 - depth:]
    return np.packbits(bits.reshape(h, w * depth), axis=1)


def filtered_png(pixels, filters, *, interlace=False, colour=None, depth=None, more=b""):
    """A PNG of uint8 or uint16 [H, W, C] `pixels` (C 2: grey + alpha, 4: RGBA; or with
    `colour` 3, C 1: palette indices at `depth` bits, its PLTE and tRNS chunks `more`), row
    r of each reduced image (the image itself, or Adam7's seven passes when `interlace`)
    filtered with PNG filter filters[r % len(filters)] (0 None, 1 Sub, 2 Up, 3 Average, 4
    Paeth; the PNG spec's 9.2), each applied byte by byte as the spec defines it."""
    h, w, c = pixels.shape
    depth = depth or (16 if pixels.dtype == np.uint16 else 8)
    bpp = max(1, c * depth // 8)
    parts = ([pixels] if not interlace else
             [pixels[y::dy, x::dx] for x, y, dx, dy in ADAM7])
    out = b""
    for part in parts:
        if not part.size:
            continue
        rows = _packed(part, depth).astype(np.int64)
        for r in range(rows.shape[0]):
            kind = filters[r % len(filters)]
            line = []
            for x in range(rows.shape[1]):
                a = rows[r, x - bpp] if x >= bpp else 0
                b = rows[r - 1, x] if r else 0
                cc = rows[r - 1, x - bpp] if r and x >= bpp else 0
                pred = (0, a, b, (a + b) // 2, _paeth(a, b, cc))[kind]
                line.append((rows[r, x] - pred) % 256)
            out += bytes([kind] + line)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    colour = colour if colour is not None else 4 if c == 2 else 6
    head = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, int(interlace))
    extra = b"".join(chunk(k, body) for k, body in more) if more else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + extra
            + chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b""))


def alphas():
    """{name: uint8 [9, 7] alpha}, each clear (0) at its first pixel (else the first pixel
    tells at once): alpha 0 and 255 only (top rows clear, a checkerboard), 0 and 1 only
    (refused), all 0, and 0/1 with one 2 (filtered, a 2 after a 1 is the byte 1, as 1 after
    0 is: only the alpha itself tells it)."""
    top = np.full((9, 7), 255, np.uint8)
    top[:3] = 0
    board = (np.indices((9, 7)).sum(0) % 2 * 255).astype(np.uint8)
    ones = (np.indices((9, 7)).sum(0) % 3 == 1).astype(np.uint8)
    two = ones.copy()
    two[5, 4] = 2
    two[5, 3] = 1
    return {"top rows clear": top, "checkerboard 0/255": board, "0/1": ones,
            "all 0": np.zeros((9, 7), np.uint8), "0/1 and one 2": two}


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)],
                         ids=["none", "sub", "up", "average", "paeth", "each"])
def test_an_alpha_png_clear_at_its_first_pixel_is_read_without_pillow_decoding_it(
        filters, monkeypatch):
    """An RGBA PNG whose first pixel is clear and whose filtered alpha bytes are all 0, 1 or
    255 (an alpha of 0 and 255 only: a sticker, a cut-out with a hard edge) was decoded whole
    by Pillow before serve_bytes decoded it again: predict's look cost 2.1 Pillow decodes
    (bench_predict_decode). Its alpha is read from the rows it inflated now, under each
    filter, 8 and 16 bits, RGBA and grey + alpha: refused exactly when Pillow's decode has
    an alpha of at most 1 everywhere, and Pillow never opens the file. Fails before:
    Pillow opened every one."""
    rng = np.random.default_rng(5)
    colour = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    real_open = Image.open
    opened = []

    def watched_open(fp, *args, **kwargs):
        if isinstance(fp, io.BytesIO):
            opened.append(fp.getvalue())
        return real_open(fp, *args, **kwargs)

    for name, alpha in alphas().items():
        for layout in ("RGBA", "LA"):
            pixels = np.dstack([colour if layout == "RGBA" else colour[..., :1], alpha])
            for wide in (False, True):
                data = filtered_png(pixels.astype(np.uint16) * 257 if wide else pixels,
                                    filters)
                with real_open(io.BytesIO(data)) as im:  # the independent decode
                    top = int(np.asarray(im.convert("RGBA"))[..., 3].max())
                    assert top == alpha.max(), (name, layout, wide)
                monkeypatch.setattr(Image, "open", watched_open)
                opened.clear()
                try:
                    for look in (serving_blob, check_identifiable):
                        if top <= 1:
                            with pytest.raises(UnreadableImage, match=f"alpha is {top} of "
                                               "255 in every pixel"):
                                look(data)
                        else:
                            look(data)
                finally:
                    monkeypatch.setattr(Image, "open", real_open)
                assert not any(seen == data for seen in opened), (name, layout, wide)


def _looked(data, monkeypatch):
    """([what serving_blob, then check_identifiable, says of `data`: None, or the words of
    its refusal], whether Pillow opened `data` itself on the way)."""
    real_open = Image.open
    opened = []

    def watched_open(fp, *args, **kwargs):
        if isinstance(fp, io.BytesIO):
            opened.append(fp.getvalue() == data)
        return real_open(fp, *args, **kwargs)

    said = []
    monkeypatch.setattr(Image, "open", watched_open)
    try:
        for look in (serving_blob, check_identifiable):
            try:
                look(data)
                said.append(None)
            except UnreadableImage as e:
                said.append(str(e))
    finally:
        monkeypatch.setattr(Image, "open", real_open)
    return said, any(opened)


def _pillow_top(data):
    """The largest alpha of Pillow's whole decode of `data` to RGBA (the independent
    figure), None when Pillow cannot decode it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(np.asarray(im.convert("RGBA"))[..., 3].max())
    except Exception:  # noqa: BLE001 - Pillow's many error types: no figure
        return None


def _said_as_pillow_reads(said, top, name):
    """Refused by both looks exactly when Pillow's alpha is at most 1 everywhere, naming it."""
    if top is not None and top <= 1:
        assert all(f"alpha is {top} of 255 in every pixel" in (s or "") for s in said), (
            name, said)
    else:
        assert said == [None, None], (name, top, said)


def test_an_interlaced_alpha_png_clear_at_its_first_pixel_is_read_without_pillow_decoding_it(
        monkeypatch):
    """An Adam7-interlaced RGBA (or grey + alpha) PNG clear at its first pixel whose filtered
    alpha bytes show no alpha above 1 was decoded whole by Pillow to read its alpha (2.5
    Pillow loads, bench_predict_decode): each of its seven passes' alpha rows is read
    now as a non-interlaced one's are. Refused exactly when Pillow's whole decode has an
    alpha of at most 1 everywhere; Pillow never opens the file. Fails before: it did."""
    rng = np.random.default_rng(6)
    colour = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    for name, alpha in alphas().items():
        for layout in ("RGBA", "LA"):
            pixels = np.dstack([colour if layout == "RGBA" else colour[..., :1], alpha])
            for wide in (False, True):
                data = filtered_png(pixels.astype(np.uint16) * 257 if wide else pixels,
                                    (0, 1, 2, 3, 4), interlace=True)
                top = _pillow_top(data)
                assert top == alpha.max(), (name, layout, wide)
                said, opened = _looked(data, monkeypatch)
                _said_as_pillow_reads(said, top, (name, layout, wide))
                assert not opened, (name, layout, wide)


def _palette_cases(rng):
    """(name, uint8 [H, W] indices, tRNS bytes, bits) of palette PNGs clear at their first
    pixel (index 0, tRNS 0): the first pixel alone tells nothing of them."""
    for bits in (1, 2, 4, 8):
        n = 1 << bits
        top = rng.integers(1, n, (9, 7)).astype(np.uint8)
        top[:3] = 0
        ones = (np.indices((9, 7)).sum(0) % 3 == 1).astype(np.uint8)
        yield f"top rows clear {bits}", top, b"\x00", bits
        yield f"all clear {bits}", np.zeros((9, 7), np.uint8), b"\x00", bits
        yield f"alpha 0 and 1 {bits}", ones, b"\x00\x01", bits
        yield f"every entry clear {bits}", top, bytes(n), bits
        yield f"entries 0 and 1, one shows {bits}", ones, b"\x00\x01" + b"\x00" * (n - 2), bits
    # Past the first look's inflated bytes (filepixels.FIRST_LOOK): one pixel shows there.
    far = np.zeros((260, 260), np.uint8)
    far[-1, -1] = 1
    yield "one pixel shows at the end", far, b"\x00", 8
    near = np.ones((260, 260), np.uint8)
    near[:10] = 0
    yield "big, top rows clear", near, b"\x00", 8


def test_a_palette_png_clear_at_its_first_pixel_is_read_without_pillow_decoding_it(
        monkeypatch):
    """A palette PNG with tRNS clear at its first pixel (a sticker on a clear background)
    was decoded whole by Pillow, to RGBA, to read its alpha: it is the tRNS alpha of the
    indices it holds, which Pillow reads from its rows as a palette image without colours
    (`filepixels._palette_top`), the first rows first; when every index the depth allows has
    one alpha, without inflating. 1, 2, 4 and 8 bits, interlaced or not, each filter:
    refused exactly when Pillow's whole decode has an alpha of at most 1 everywhere;
    Pillow never opens the file. Fails before: it did."""
    rng = np.random.default_rng(7)
    for name, index, trns, bits in _palette_cases(rng):
        plte = bytes(rng.integers(0, 256, 3 << bits).astype(np.uint8))
        for interlace in (False, True):
            data = filtered_png(index[..., None], (0, 1, 2, 3, 4) if index.size < 100 else (1,),
                                interlace=interlace, colour=3, depth=bits,
                                more=[(b"PLTE", plte), (b"tRNS", trns)])
            top = _pillow_top(data)
            assert top is not None, name
            said, opened = _looked(data, monkeypatch)
            _said_as_pillow_reads(said, top, (name, interlace))
            assert not opened, (name, interlace)


#: The 32-bit BMP layouts with alpha Pillow reads (R, G, B, A masks): ABGR, RGBA, BGRA, BGAR.
PILLOW_BMP_ALPHA = ((0xFF000000, 0xFF0000, 0xFF00, 0xFF), (0xFF, 0xFF00, 0xFF0000, 0xFF000000),
                    (0xFF0000, 0xFF00, 0xFF, 0xFF000000), (0xFF000000, 0xFF00, 0xFF, 0xFF0000))


def test_a_32bit_bmps_alpha_is_read_from_its_bytes_as_pillow_decodes_it(monkeypatch):
    """A 32-bit BMP whose header says alpha was decoded whole by Pillow to read it (ratio
    1.5 to a Pillow load, bench_predict_decode): its alpha is one byte of each pixel,
    read as it is now (`filepixels._bmp_alpha_top`) in every layout Pillow reads, v3, v4
    and v5 headers, bottom-up and top-down; refused exactly when Pillow's whole decode has
    an alpha of at most 1 everywhere, and Pillow never opens the file. A layout Pillow does
    not read (BI_ALPHABITFIELDS, other masks) or a file cut inside its pixels is Pillow's
    to read, as before. Fails before: Pillow opened every one."""
    from test_filepixels import bmp_rgba

    rng = np.random.default_rng(8)
    colour = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    one = np.zeros((6, 5), np.uint8)
    one[4, 2] = 255
    cases = {"clear": np.zeros((6, 5), np.uint8), "faint": np.ones((6, 5), np.uint8),
             "one shows": one, "seen": np.full((6, 5), 200, np.uint8)}
    for name, alpha in cases.items():
        rgba = np.dstack([colour, alpha])
        for masks in PILLOW_BMP_ALPHA:
            for header in (56, 108, 124):
                for top_down in (False, True):
                    data = bmp_rgba(rgba, masks=masks, header=header, top_down=top_down)
                    top = _pillow_top(data)
                    assert top == alpha.max(), (name, masks, header, top_down)
                    said, opened = _looked(data, monkeypatch)
                    _said_as_pillow_reads(said, top, (name, masks, header, top_down))
                    assert not opened, (name, masks, header, top_down)
        # Pillow's to read: its answer, whatever it is.
        lacks = (0xFF00, 0xFF0000, 0xFF000000, 0xFF)  # a layout Pillow does not read
        for kind, data in (("alphabitfields", bmp_rgba(rgba, compression=6)),
                           ("masks Pillow lacks", bmp_rgba(rgba, masks=lacks)),
                           ("cut", bmp_rgba(rgba)[:-6])):
            said, _ = _looked(data, monkeypatch)
            _said_as_pillow_reads(said, _pillow_top(data), (name, kind))
