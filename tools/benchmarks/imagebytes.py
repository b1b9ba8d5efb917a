"""Image files written byte by byte where Pillow writes none of the kind, shared by the
benchmark scripts and the tests so that each is written one way:

    from imagebytes import bmp_rgba   # a sibling of the scripts; tests load it by its path

* `bmp_rgba(rgba, ...)`: a 32-bit BMP with an alpha mask (Pillow writes no BMP with alpha);
* `png_interlaced(pixels)`: an Adam7-interlaced PNG (Pillow writes none).

numpy and the standard library only: no TensorFlow, no Pillow.
"""

import struct
import zlib

import numpy as np

#: BGRA: the masks (R, G, B, A) of Microsoft's BITMAPV4HEADER example of 32 bits with alpha.
BGRA = (0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)


def bmp_rgba(rgba, *, masks=BGRA, header: int = 108, top_down: bool = False,
             compression: int = 3) -> bytes:
    """A 32-bit BMP of uint8 RGBA [H, W, 4] `rgba` (a numpy array) with bit-field masks
    `masks` (R, G, B, A; each a whole byte of the little-endian pixel), an info header of
    `header` bytes (56: v3, 108: BITMAPV4HEADER, 124: v5; the masks at its bytes 40..56),
    rows bottom-up (a positive height) or `top_down` (a negative one), compression 3
    (BI_BITFIELDS; 6: BI_ALPHABITFIELDS)."""
    h, w, _ = rgba.shape
    shifts = [m.bit_length() - 8 for m in masks]
    words = sum(rgba[..., i].astype(np.uint32) << s for i, s in enumerate(shifts))
    body = (words if top_down else words[::-1]).astype("<u4").tobytes()
    dib = (struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, 32, compression,
                       len(body), 2835, 2835, 0, 0)
           + struct.pack("<IIII", *masks))
    dib += b"\0" * (header - len(dib))
    return b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(body), 0, 0, 14 + len(dib)) + dib + body


#: Adam7's passes (PNG spec 8.2): (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))


def png_interlaced(pixels) -> bytes:
    """An Adam7-interlaced 8-bit PNG of uint8 [H, W, C] `pixels` (a numpy array; C 1: grey,
    2: grey + alpha, 3: RGB, 4: RGBA), each row of each pass filtered None."""
    h, w, c = pixels.shape
    raw = b"".join(b"\0" + row.tobytes()
                   for x, y, dx, dy in ADAM7 for row in pixels[y::dy, x::dx] if row.size)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    head = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))
