"""Image files whose pixels decode all black or all white are skipped with why (data/filepixels)."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task
from hubensemble.data.decode import (UnreadableImage, check_identifiable, decode_bytes,
                                     serving_blob)


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
