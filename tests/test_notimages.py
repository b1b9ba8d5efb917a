"""One rule for a file that is no image (`sniff.not_an_image`): the folder loader and predict."""

import logging

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task
from hubensemble.data.sniff import image_suffixes, not_an_image

#: Files a photo folder holds beside its images: notes, sidecars, OS litter.
NOT_IMAGES = {"README.md": b"# dogs\n", "notes.txt": b"taken in May\n",
              "IMG_0001.jpg.xmp": b"<?xpacket begin='' id='W5M0MpCehiHzreSzNTczkc9d'?>\n",
              "IMG_0001.json": b'{"title": "IMG_0001.jpg"}\n', "scan.pdf": b"%PDF-1.4\n%\xe2\n"}
HIDDEN = {".DS_Store": b"\0\0\0\1Bud1", "._IMG_0001.jpg": b"\0\5\26\7", "Thumbs.db": b"\xd0\xcf",
          "desktop.ini": b"[.ShellClassInfo]\n"}


def test_a_class_folders_notes_and_sidecars_are_ignored_once_not_skipped_as_unreadable(
        tmp_path, caplog):
    """A README.md, notes.txt, an .xmp and a .json sidecar and a PDF in a class folder were
    each "skipped (unreadable)" by the folder loader, with a warning each, while predict
    ignored the same files by name or first bytes. One rule now: the loader does not read
    them and says them once, with the count and examples predict's closing count gives;
    a file named as an image (text in a .jpg) is still unreadable, and hidden and OS
    entries stay ignored by name. predict finds the very same files not images."""
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                tmp_path / c / f"{i}.png")
    for name, data in {**NOT_IMAGES, **HIDDEN}.items():
        (tmp_path / "dog" / name).write_bytes(data)
    (tmp_path / "dog" / "fake.jpg").write_bytes(b"not a picture\n")
    # An image with a name Pillow does not know is an image by its first bytes.
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "dog" / "odd.data", "PNG")
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        task = load_task(f"folder:{tmp_path}", val_fraction=0.0, test_fraction=0.0)
    assert [p.split("/")[-1] for p, _ in task.skipped] == ["fake.jpg"], task.skipped
    assert len(task.train) == 9 and str(tmp_path / "dog" / "odd.data") in task.train.paths
    said = [r.getMessage() for r in caplog.records if "not images by name" in r.getMessage()]
    note = ("5 ignored: not images by name or first bytes (IMG_0001.jpg.xmp, IMG_0001.json, "
            "README.md, …) in the class folders, not read")
    # Said once, in the summary (a file was skipped: load_task warns its summary).
    assert len(said) == 1 and f"; {note}" in said[0], said
    assert not any(n in r.getMessage() for r in caplog.records for n in NOT_IMAGES
                   if r.levelno >= logging.WARNING and r.getMessage() not in said)
    assert sorted(p.split("/")[-1] for p in task.ignored) == sorted(HIDDEN)
    found = sorted(p.name for p in (tmp_path / "dog").iterdir()
                   if p.name not in HIDDEN and not_an_image(p))
    assert found == sorted(NOT_IMAGES), found
    assert ".pdf" not in image_suffixes() and {".jpg", ".png", ".tif"} <= image_suffixes()
    # predict's walk of the same folder: the same files not images, the same ignored.
    from hubensemble.prediction import _entries

    ignored, not_images = [], []
    read = [p for p, _, _ in _entries([str(tmp_path / "dog")], ignored, not_images)]
    assert sorted(p.split("/")[-1] for p in not_images) == sorted(NOT_IMAGES)
    assert sorted(p.split("/")[-1] for p in ignored) == sorted(HIDDEN)
    assert sorted(p.split("/")[-1] for p in read) == sorted(
        [f"{i}.png" for i in range(4)] + ["fake.jpg", "odd.data"])


def test_the_files_that_are_not_images_reach_the_record_the_summary_and_the_report(
        tmp_path, caplog):
    """The files of class folders that are no image reached only the loader's warning:
    run.json's data.task, the data summary (fit's) and the report's data rows had none of
    them, as they have the images serve_bytes refuses. Now `Task.not_images` holds them, and
    they are said once: in the summary when one is said, else in the loader's warning."""
    from hubensemble.data.specs import skips_said
    from hubensemble.report.datarows import decoding_rows

    rng = np.random.default_rng(1)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                tmp_path / c / f"{i}.png")
    (tmp_path / "cat" / "README.md").write_bytes(NOT_IMAGES["README.md"])
    (tmp_path / "dog" / "notes.txt").write_bytes(NOT_IMAGES["notes.txt"])
    note = ("2 ignored: not images by name or first bytes (README.md, notes.txt) in the "
            "class folders, not read")
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        task = load_task(f"folder:{tmp_path}", val_fraction=0.0, test_fraction=0.0)
    said = [r.getMessage() for r in caplog.records if "not images" in r.getMessage()]
    assert said == [note], said
    assert task.not_images == [str(tmp_path / "cat" / "README.md"),
                               str(tmp_path / "dog" / "notes.txt")]
    assert f"; {note}" in task.summary() and task.files == 6 and task.ignored == []
    assert task.hubensemble_folders() == []
    assert task.to_json()["not_images"] == {"count": 2, "examples": task.not_images}
    assert dict(decoding_rows(task.to_json()))["not images"] == (
        "2 files in the class folders not read: not images by name or first bytes (e.g. "
        "cat/README.md)")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble"), skips_said():
        load_task(f"folder:{tmp_path}", val_fraction=0.0, test_fraction=0.0)
    assert not [r for r in caplog.records if "not images" in r.getMessage()]  # fit's summary
    older = {k: v for k, v in task.to_json().items() if k != "not_images"}
    assert "not images" not in dict(decoding_rows(older))  # a run.json before the record


def test_predict_asks_pillow_for_its_suffixes_once_not_per_file(tmp_path, monkeypatch):
    """predict's rule asked `PIL.Image.registered_extensions()` (which builds Pillow's table
    anew) for every file under a folder: once now, whatever the folder holds."""
    from PIL import Image as PILImage

    from hubensemble.prediction import _entries

    for i in range(20):
        (tmp_path / f"n{i}.txt").write_text("not an image\n")
    calls = []
    real = PILImage.registered_extensions
    monkeypatch.setattr(PILImage, "registered_extensions",
                        lambda: calls.append(1) or real())
    not_images = []
    assert list(_entries([str(tmp_path)], [], not_images))[0][1].startswith(
        "a folder with no image in it")
    assert len(not_images) == 20 and len(calls) <= 1, calls


def _warning_files(tmp_path):
    """{name: bytes} of files Pillow warns about when it opens or reads them: a TIFF whose
    last tag points past the file, a JPEG whose EXIF block has such a tag."""
    import io

    b = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(b, "TIFF")
    tif = bytearray(b.getvalue())
    at = int.from_bytes(tif[4:8], "little")
    entry = at + 2 + 12 * (int.from_bytes(tif[at:at + 2], "little") - 1)
    tif[entry + 4:entry + 12] = (1000).to_bytes(4, "little") + (10 ** 6).to_bytes(4, "little")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Maker" * 10
    raw = bytearray(exif.tobytes())
    at = raw.find(b"\x01\x0f\x00\x02")  # Make, ASCII, big-endian: its count past the file
    raw[at + 4:at + 8] = (5000).to_bytes(4, "big")
    b = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(b, "JPEG", exif=bytes(raw))
    jpg = b.getvalue()
    return {"tags.tif": bytes(tif), "exif.jpg": jpg}


def test_pillows_warnings_name_the_file_wherever_it_opens_one(tmp_path, caplog, monkeypatch):
    """Pillow's warnings where it opens a file outside the kept decoder's wrapper reached
    Python's warnings unnamed ("py.warnings: …/PIL/TiffImagePlugin.py: UserWarning: …", five
    of them in one predict test): predict's look at a TIFF's header
    (`check_identifiable`), the loaders' look at the EXIF orientation (`read_image`), and
    the look at a PNG's alpha (`serving_blob`, `decode_bytes`: the same wrapper). Each is
    logged naming the file, once, and none reaches Python's warnings."""
    import warnings

    from hubensemble.data import decode

    monkeypatch.setattr(decode, "_WARNED", set())
    for name, data in _warning_files(tmp_path).items():
        (tmp_path / name).write_bytes(data)
    path = str(tmp_path / "{}")
    with warnings.catch_warnings(record=True) as caught, \
            caplog.at_level(logging.WARNING, logger="hubensemble.data.decode"):
        warnings.simplefilter("always")
        for _ in range(2):  # predict looks at its header, then decodes it: one warning
            decode.check_identifiable((tmp_path / "tags.tif").read_bytes(),
                                      name=path.format("tags.tif"))
            decode.serving_blob((tmp_path / "tags.tif").read_bytes(),
                                name=path.format("tags.tif"))
        assert decode.read_image(path.format("exif.jpg")).orientation == 6
    assert [str(w.message) for w in caught] == []
    said = sorted(r.getMessage() for r in caplog.records)
    assert [s.split(": Pillow warned while decoding it (UserWarning: ")[0] for s in said] == [
        path.format(n) for n in ("exif.jpg", "tags.tif")], said
    assert all(s.endswith("; decoded all the same") for s in said), said
    # A file Pillow warns about and then cannot read: the refusal names it, once.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.data.decode"):
        cut = (tmp_path / "tags.tif").read_bytes()[:200]
        with pytest.raises(decode.UnreadableImage):
            decode.serving_blob(cut, name=path.format("cut.tif"))
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_the_check_before_decoding_counts_a_class_folders_images_as_the_loader_does(tmp_path):
    """`check_class_files` (before TensorFlow and any decode) counted a README.md and a
    notes.txt as files of a class: a class of one image passed --min-per-class 2 there and
    was refused only once every image was decoded. They are not counted now, as the loader
    does not read them; a file named as an image still counts (it may decode)."""
    import pytest

    from hubensemble.data.folder import check_class_files
    from hubensemble.errors import DataError

    for c, n in (("cat", 3), ("dog", 1)):
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "dog" / "README.md").write_text("# dogs\n")
    (tmp_path / "dog" / "notes.txt").write_text("one dog\n")
    with pytest.raises(DataError, match="dog"):
        check_class_files(str(tmp_path), min_classes=2, min_per_class=2)
    (tmp_path / "dog" / "maybe.jpg").write_text("named as an image\n")
    check_class_files(str(tmp_path), min_classes=2, min_per_class=2)


def test_class_folders_of_only_files_that_are_not_images_are_said_so_not_empty(tmp_path):
    """Class folders holding a README and notes and no image were refused as "no files
    under …'s class folders", before decoding (`check_class_files`) and by the loader's own
    refusal (a folder emptied of images after the check): they hold files, none of them an
    image by the rule. The refusal now says so, with the count, the examples and the rule;
    folders with no file at all are still "no files"."""
    from hubensemble.data.folder import _read_folder, check_class_files
    from hubensemble.data.loading import LoadOptions
    from hubensemble.errors import DataError

    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
    with pytest.raises(DataError, match=r"^no files under "):
        check_class_files(str(tmp_path), min_classes=2, min_per_class=1)
    (tmp_path / "cat" / "README.md").write_bytes(NOT_IMAGES["README.md"])
    (tmp_path / "dog" / "IMG_0001.json").write_bytes(NOT_IMAGES["IMG_0001.json"])
    said = ("they hold only 2 files that are not images by name or first bytes (README.md, "
            "IMG_0001.json); a file is read when its name ends in an image suffix (.jpg, .png, "
            ".tif, …) or its first bytes name an image format; add ")
    with pytest.raises(DataError) as refused:
        check_class_files(str(tmp_path), min_classes=2, min_per_class=1)
    assert str(refused.value).startswith(
        f"no image files under {tmp_path}'s class folders (cat/, dog/): {said}"), refused.value
    with pytest.raises(DataError) as refused:  # past the check: the loader's refusal
        _read_folder(str(tmp_path), {}, LoadOptions(), None)
    assert str(refused.value).startswith(
        f"no image files under {tmp_path}'s class folders: {said}"), refused.value
    # A val/ of class folders holding only such files: said so too, not "no readable images".
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / "split" / split / c).mkdir(parents=True)
            if split == "train":
                for i in range(3):
                    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
                        tmp_path / "split" / split / c / f"{i}.png")
    (tmp_path / "split" / "val" / "dog" / "README.md").write_bytes(NOT_IMAGES["README.md"])
    with pytest.raises(DataError) as refused:
        load_task(f"folder:{tmp_path / 'split'}", progress=False)
    assert str(refused.value) == (
        f"{tmp_path / 'split' / 'val'} holds no readable images: its class folders hold only 1 "
        "file that "
        "is not an image by name or first bytes (README.md); a file is read when its name "
        "ends in an image suffix (.jpg, .png, .tif, …) or its first bytes name an image "
        "format; add class folders with images or remove it"), refused.value
