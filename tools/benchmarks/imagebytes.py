"""Image files written byte by byte where Pillow writes none of the kind, shared by the
benchmark scripts and the tests so that each is written one way:

    from imagebytes import bmp_rgba   # a sibling of the scripts; tests load it by its path

* `bmp_rgba(rgba)`: a 32-bit BMP with an alpha mask (Pillow writes no BMP with alpha).

numpy and the standard library only: no TensorFlow, no Pillow.
"""

import struct


def bmp_rgba(rgba) -> bytes:
    """A 32-bit BMP (BITMAPV4HEADER, BI_BITFIELDS) of uint8 RGBA [H, W, 4] `rgba` (a numpy
    array), bottom-up, with an alpha mask 0xFF000000 (Microsoft's BITMAPV4HEADER: masks
    R 0x00FF0000, G 0x0000FF00, B 0x000000FF, each pixel stored B, G, R, A)."""
    h, w, _ = rgba.shape
    body = rgba[::-1][..., [2, 1, 0, 3]].tobytes()  # bottom-up BGRA
    dib = (struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(body), 2835, 2835, 0, 0)
           + struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
           + b"\0" * 52)
    return b"BM" + struct.pack("<IHHI", 14 + len(dib) + len(body), 0, 0, 14 + len(dib)) + dib + body
