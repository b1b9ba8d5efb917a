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


def filtered_png(pixels, filters):
    """A PNG of uint8 or uint16 [H, W, C] `pixels` (C 2: grey + alpha, 4: RGBA), row r
    filtered with PNG filter filters[r % len(filters)] (0 None, 1 Sub, 2 Up, 3 Average, 4
    Paeth; the PNG spec's 9.2), each applied byte by byte as the spec defines it."""
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    bpp = c * depth // 8
    rows = pixels.astype(">u2" if depth == 16 else np.uint8).view(np.uint8).reshape(h, -1)
    rows = rows.astype(np.int64)
    out = b""
    for r in range(h):
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
    head = struct.pack(">IIBBBBB", w, h, depth, 4 if c == 2 else 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(out))
            + chunk(b"IEND", b""))


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
