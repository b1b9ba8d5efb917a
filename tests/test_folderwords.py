"""A folder of class folders is told ways on in its own terms: folders, not class names."""

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task
from hubensemble.errors import DataError

#: The first bytes of a HEIC photo (an ISO BMFF ftyp box, major brand heic), then junk.
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(range(200))


def _classes(root, names, n=3):
    rng = np.random.default_rng(1)
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(
                root / name / f"{i}.png")


def test_a_class_folder_all_heic_is_told_to_convert_or_remove_the_folder(tmp_path):
    """A new-user check: a class folder of HEIC photos only was skipped with "neither
    TensorFlow nor Pillow can decode it" and no way on, and the refusal said "no label uses
    'bird': drop it from the class names (renumbering the labels after it)", an npz's way:
    a folder has no class names to drop. Now each file's reason says to convert it, and the
    refusal to remove the folder."""
    _classes(tmp_path, ["cat", "dog"])
    (tmp_path / "bird").mkdir()
    for i in range(3):
        (tmp_path / "bird" / f"IMG_{i}.HEIC").write_bytes(HEIC)
    with pytest.raises(DataError) as e:
        load_task(f"folder:{tmp_path}", progress=False)
    said = str(e.value)
    assert "a HEIF/AVIF file; neither TensorFlow nor Pillow can decode it (Pillow: cannot " \
        "identify image file): convert it to PNG first with another tool (an image editor, " \
        "ImageMagick)" in said, said
    assert f"no image of 'bird' was read: remove {tmp_path / 'bird'}/ to drop it, or keep it " \
        "as a class the model never trains on with min_per_class=0" in said, said
    assert "class names" not in said and "renumbering" not in said, said
    assert said.endswith("repair or replace the skipped files, add images to its folder, move "
                         "them into another class's folder, or remove the folder to drop the "
                         "class"), said


def test_an_empty_class_folder_is_told_to_remove_the_folder(tmp_path):
    """An empty class folder was told only "add images, merge or drop the class"."""
    _classes(tmp_path, ["cat", "dog"])
    (tmp_path / "bird").mkdir()
    with pytest.raises(DataError) as e:
        load_task(f"folder:{tmp_path}", progress=False)
    said = str(e.value)
    assert "'bird' has 0" in said and said.endswith(
        "add images to its folder, move them into another class's folder, or remove the "
        "folder to drop the class"), said


def test_tiff_images_are_counted_as_ones_serve_bytes_refuses(tmp_path, caplog):
    """A new-user check: a folder of 11 % TIFF trained and evaluated, and its export's
    serve_bytes then refused every TIFF, said nowhere. The load says how many, once, as it
    counts the orientation tags: in the data's summary, run.json's data.task ("unservable")
    and the report's data rows; a warning from Python's load_task, whose summary is said only
    when files were skipped. Fails before: the summary, the record and the rows had none of
    them, and a command said the warning beside its summary."""
    import logging

    from hubensemble.data.specs import skips_said
    from hubensemble.report.datarows import decoding_rows

    _classes(tmp_path, ["cat", "dog"], n=4)
    rng = np.random.default_rng(2)
    for name in ("cat", "dog"):
        Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(
            tmp_path / name / "scan.tif")
    note = (f"2 TIFF images (e.g. {tmp_path / 'cat' / 'scan.tif'}): serve_bytes refuses TIFF; "
            "predict converts them (to a lossless PNG; another client must convert them to "
            "PNG or JPEG first)")
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        task = load_task(f"folder:{tmp_path}", progress=False)
    said = [r.getMessage() for r in caplog.records if "serve_bytes refuses" in r.getMessage()]
    assert said == [note], said
    assert task.files == 10 and f"; {note}" in task.summary(), task.summary()
    record = task.to_json()["unservable"]
    assert record == {"count": 2, "examples": [[str(tmp_path / "cat" / "scan.tif"), "TIFF"],
                                               [str(tmp_path / "dog" / "scan.tif"), "TIFF"]]}
    rows = dict(decoding_rows(task.to_json()))
    assert rows["refused by serve_bytes"] == (
        "2 images Pillow read, which serve_bytes refuses; predict converts them (e.g. "
        "cat/scan.tif: TIFF)"), rows
    caplog.clear()
    (tmp_path / "cat" / "notes.jpg").write_text("not a picture")  # its summary says them
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        load_task(f"folder:{tmp_path}", progress=False)
    said = [r.getMessage() for r in caplog.records if "serve_bytes refuses" in r.getMessage()]
    assert len(said) == 1 and said[0].count("serve_bytes refuses") == 1, said
    assert f"; {note}" in said[0] and "1 skipped (unreadable" in said[0], said  # the summary
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble"), skips_said():
        load_task(f"folder:{tmp_path}", progress=False)  # a command's: its summary says them
    assert not [r for r in caplog.records if "serve_bytes refuses" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        for name in ("cat", "dog"):
            (tmp_path / name / "scan.tif").unlink()
        task = load_task(f"folder:{tmp_path}", progress=False)
    assert not [r for r in caplog.records if "serve_bytes refuses" in r.getMessage()]
    assert task.to_json()["unservable"] == {"count": 0, "examples": []}
    assert "refused by serve_bytes" not in dict(decoding_rows(task.to_json()))
