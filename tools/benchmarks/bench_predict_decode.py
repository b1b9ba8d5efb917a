"""What predict's look at each file before serve_bytes costs (`decode.serving_blob`): per-file
milliseconds of each kind of file, as a ratio to one plain Pillow decode of the same bytes
measured in the same run.

    python tools/benchmarks/bench_predict_decode.py [--count 200] [--side 512] [--repeat 3]

1. Writes, in a temporary folder, --count image files of --side x 3/4 --side px, as many of
   each kind: JPEG, RGB PNG, grey PNG, RGBA PNG (opaque, transparent in its top rows, a
   cut-out: clear corners, a soft edge; Adam7-interlaced, transparent in its top rows),
   palette PNG with tRNS (and transparent in its top rows), RGB PNG with a tRNS colour
   key, 16-bit grey PNG (Pillow's, true
   16-bit values), 16-bit RGB and RGBA PNG of true 16-bit values; and with alpha, clear in
   their top rows: GIF (a transparent colour), WebP (lossless, lossy), 32-bit BMP (an alpha
   mask).
2. For each file, the best of --repeat runs of `serving_blob(bytes)` (what predict runs on
   a file's bytes before it sends them to serve_bytes, which decodes them itself) and of the
   baseline, `PIL.Image.open(BytesIO(bytes)).load()`.
3. Prints, per kind and for all the files, the milliseconds per file of each and their
   ratio. serving_blob decodes no file of these kinds (serve_bytes does): its ratio should
   be far below 1. A last row: `check_identifiable` (the look before TensorFlow loads that
   predict's `_refusal` runs on a file of another format, with the header-length check
   `sniff.too_short`) over all the files, against the same baseline: 0.47 at 256 px, as
   serving_blob's. Before the look was taken only when needed, every RGBA and tRNS PNG was
   decoded whole by Pillow here (ratio ~1) and every 16-bit PNG inflated whole; an RGBA PNG
   whose first pixel is clear and whose alpha is only 0 or 255 was (ratio 2.1), until its
   alpha was read from its rows alone (`filepixels._lane_top`). A GIF or WebP whose
   header says alpha is decoded by Pillow here (`filepixels.alpha_fault`: ratio ~1).
   Until 2026-12-08 an interlaced RGBA PNG and a palette PNG clear at their first pixel
   were decoded whole too, and a 32-bit BMP with alpha; at 512 px, --repeat 7, in one run
   each (a loaded machine): interlaced 2.49 -> 0.92, palette 1.40 -> 0.53, BMP 1.53 ->
   0.36 (its alpha bytes read as they are, `filepixels._bmp_alpha_top`).

Nothing is asserted; no TensorFlow is imported.
"""

import argparse
import io
import os
import struct
import sys
import tempfile
import time
import zlib

import numpy as np
from benchargs import command_logging, description, integer
from imagebytes import bmp_rgba, png_interlaced


def _png16(image, alpha=False):
    """A 16-bit RGB (RGBA with `alpha`) PNG of uint16 [H, W, C] `image`, rows filtered Sub
    (Pillow writes no 16-bit colour PNG)."""
    h, w, c = image.shape
    raw = image.astype(">u2").view(np.uint8).reshape(h, -1)
    filt = raw.copy()
    filt[:, 2 * c:] = raw[:, 2 * c:] - raw[:, :-2 * c]
    rows = b"".join(b"\x01" + r.tobytes() for r in filt)

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6 if alpha else 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def picture(rng, side):
    """A smooth picture with noise: uint8 [3/4 side, side, 3]."""
    h = side * 3 // 4
    y, x = np.mgrid[:h, :side]
    base = np.stack([x * 255 / side, y * 255 / h, (x + y) * 127 / (side + h)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


KINDS = ("JPEG", "RGB PNG", "grey PNG", "RGBA PNG opaque", "RGBA PNG top rows clear",
         "RGBA PNG soft edge", "RGBA PNG interlaced top rows clear",
         "palette PNG tRNS", "palette PNG tRNS top rows clear", "RGB PNG colour key",
         "16-bit grey PNG", "16-bit RGB PNG",
         "16-bit RGBA PNG", "GIF alpha", "WebP alpha lossless", "WebP alpha lossy",
         "BMP alpha")

#: File name extension of a kind, by its first word (PNG's: the rest).
EXTENSIONS = {"JPEG": "jpg", "GIF": "gif", "WebP": "webp", "BMP": "bmp"}


def encode(kind, rng, side) -> bytes:
    """The bytes of one file of `kind`."""
    from PIL import Image

    im = picture(rng, side)
    buf = io.BytesIO()
    if kind == "JPEG":
        Image.fromarray(im).save(buf, "JPEG", quality=90)
    elif kind == "RGB PNG":
        Image.fromarray(im).save(buf, "PNG")
    elif kind == "grey PNG":
        Image.fromarray(im[..., 0]).save(buf, "PNG")
    elif kind.startswith("RGBA PNG"):
        alpha = np.full(im.shape[:2], 255, np.uint8)
        if "clear" in kind:
            alpha[:8] = 0
        if "soft" in kind:  # a cut-out: clear corners, a soft edge, opaque inside
            y, x = np.mgrid[:alpha.shape[0], :alpha.shape[1]]
            r = np.hypot(y - alpha.shape[0] / 2, x - alpha.shape[1] / 2)
            alpha = np.clip((alpha.shape[0] / 2 - r) * 8, 0, 255).astype(np.uint8)
        if "interlaced" in kind:
            return png_interlaced(np.dstack([im, alpha]))
        Image.fromarray(np.dstack([im, alpha]), "RGBA").save(buf, "PNG")
    elif kind == "palette PNG tRNS":
        p = Image.fromarray(im).convert("P", palette=Image.ADAPTIVE)
        p.save(buf, "PNG", transparency=bytes([0] + [255] * 255))
    elif kind == "palette PNG tRNS top rows clear":  # index 255 clear, the top rows of it
        p = Image.fromarray(im).convert("P", palette=Image.ADAPTIVE, colors=255)
        index = np.asarray(p).copy()
        index[:8] = 255
        clear = Image.fromarray(index, "P")
        clear.putpalette(p.getpalette()[:765] + [0, 0, 0])
        clear.save(buf, "PNG", transparency=bytes([255] * 255 + [0]))
    elif kind == "RGB PNG colour key":
        Image.fromarray(im).save(buf, "PNG", transparency=(1, 2, 3))
    elif kind == "16-bit grey PNG":
        Image.fromarray(im[..., 0].astype(np.uint16) * 257).save(buf, "PNG")
    elif kind.split()[0] in ("GIF", "WebP", "BMP"):
        alpha = np.full(im.shape[:2] + (1,), 255, np.uint8)
        alpha[:8] = 0
        rgba = np.concatenate([im, alpha], -1)
        if kind == "BMP alpha":
            return bmp_rgba(rgba)
        Image.fromarray(rgba, "RGBA").save(buf, kind.split()[0].upper(), **(
            {"lossless": True} if "lossless" in kind else {"quality": 90} if "lossy" in kind
            else {}))
    elif kind == "16-bit RGB PNG":
        return _png16(im.astype(np.uint16) * 257)
    else:
        a = np.full(im.shape[:2] + (1,), 65535, np.uint16)
        return _png16(np.concatenate([im.astype(np.uint16) * 257, a], -1), alpha=True)
    return buf.getvalue()


def best(fn, data, repeat) -> float:
    """The best of `repeat` wall times of fn(data), in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - t)
    return min(times)


def pillow(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--count", type=integer(len(KINDS)), default=200,
                        help="image files in all (default 200)")
    parser.add_argument("--side", type=integer(16), default=512,
                        help="width of each image in px, height 3/4 of it (default 512)")
    parser.add_argument("--repeat", type=integer(1), default=3,
                        help="runs of each file, the best kept (default 3)")
    args = parser.parse_args(argv)
    from hubensemble.data.decode import UnreadableImage, check_identifiable, serving_blob

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        paths = []
        for i in range(args.count):
            kind = KINDS[i % len(KINDS)]
            path = os.path.join(root, f"{i:04d}.{EXTENSIONS.get(kind.split()[0], 'png')}")
            with open(path, "wb") as f:
                f.write(encode(kind, rng, args.side))
            paths.append((kind, path))
        rows = {k: [0.0, 0.0, 0] for k in KINDS}
        looked = 0.0  # check_identifiable's seconds, over the files in `rows`
        for kind, path in paths:
            with open(path, "rb") as f:
                data = f.read()
            try:
                ours = best(lambda d: serving_blob(d, name=path), data, args.repeat)
            except UnreadableImage as e:
                print(f"{path}: refused ({e})", file=sys.stderr)
                continue
            base = best(pillow, data, args.repeat)
            looked += best(lambda d: check_identifiable(d, name=path), data, args.repeat)
            rows[kind][0] += ours
            rows[kind][1] += base
            rows[kind][2] += 1
    width = max(map(len, KINDS))
    print(f"{args.count} files of {args.side} x {args.side * 3 // 4} px, best of "
          f"{args.repeat}; ms per file")
    print(f"{'kind':<{width}}  files  serving_blob  Pillow load  ratio")
    total = [0.0, 0.0, 0]
    for kind, (ours, base, n) in rows.items():
        if n:
            print(f"{kind:<{width}}  {n:5d}  {1e3 * ours / n:12.3f}  {1e3 * base / n:11.3f}  "
                  f"{ours / base:5.3f}")
        total = [total[0] + ours, total[1] + base, total[2] + n]
    print(f"{'all':<{width}}  {total[2]:5d}  {1e3 * total[0] / total[2]:12.3f}  "
          f"{1e3 * total[1] / total[2]:11.3f}  {total[0] / total[1]:5.3f}")
    print(f"{'all: check_identifiable':<{width}}  {total[2]:5d}  {1e3 * looked / total[2]:12.3f}  "
          f"{1e3 * total[1] / total[2]:11.3f}  {looked / total[1]:5.3f}")


if __name__ == "__main__":
    with command_logging():  # log records as a command's
        sys.exit(main())
