"""Tests for the `tfds:` loader on a real prepared data set: GeneratorBasedBuilders of
tests/tfds_builders, prepared into a data folder the test writes (no mock data, no
network). Checks pixels and labels against the generator, split strings, features, configs,
and the messages for a data folder that is mistyped or given with "~"."""

import os
import re

import numpy as np
import pytest

from hubensemble.data import load_task
from hubensemble.data.sniff import TFDS_DECODED_WORDS
from hubensemble.errors import DataError

tfds = pytest.importorskip("tensorflow_datasets")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(data_dir, module): h74_shapes rgb and grey, h140_captions and h291_photos, prepared
    with tfds' own builders (tests/tfds_builders)."""
    import tfds_builders as module

    data_dir = tmp_path_factory.mktemp("tfds") / "data"
    for config in ("rgb", "grey"):
        module.H74Shapes(config=config, data_dir=str(data_dir)).download_and_prepare()
    module.H140Captions(data_dir=str(data_dir)).download_and_prepare()
    module.H291Photos(data_dir=str(data_dir)).download_and_prepare()
    return data_dir, module


SPLITS = {"train": "train[:40]", "val": "train[40:50]", "test": "test[:50%]"}


def _expected(module, channels):
    """{pixels as bytes: label} of every example the generator writes."""
    return {module.example(i, channels)[0].tobytes(): i % 3 for i in range(72)}


@pytest.mark.parametrize("config, channels", [("rgb", 3), ("grey", 1)])
def test_pixels_labels_and_split_strings_are_the_generator_s(prepared, config, channels):
    data_dir, module = prepared
    task = load_task(f"tfds:h74_shapes/{config}", data_dir=str(data_dir), splits=SPLITS)
    assert task.class_names == ["dark", "mid", "light"]
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, 6)
    expected = _expected(module, channels)
    seen = set()
    for split in (task.train, task.val, task.test):
        for image, label in zip(split.images, split.labels):
            assert image.shape == (6, 6, 3) and image.dtype == np.uint8
            if channels == 1:  # grey is repeated into R, G, B
                assert (image == image[..., :1]).all()
            stored = image[..., :channels].tobytes()
            assert expected[stored] == label
            seen.add(stored)
    assert len(seen) == 56  # no example twice across train[:40], train[40:50], test[:50%]
    # The same slices in file order, as tfds gives them (shuffle_files=False).
    reference = tfds.builder(f"h74_shapes/{config}", data_dir=str(data_dir)).as_dataset(
        split="train[:40]", shuffle_files=False)
    want = np.stack([ex["image"] for ex in tfds.as_numpy(reference)])
    np.testing.assert_array_equal(task.train.images[..., :channels], want)


def test_image_files_stored_in_a_data_set_are_the_pixels_serve_bytes_sees(prepared):
    """A data set of image files (a builder that yields paths or bytes stores them as they
    are: caltech101, pets, flowers) is read by the decode policy, the function serve_bytes
    runs on the same file, not by tfds' own decode: that decoded JPEG with the fast IDCT (up
    to 3 levels off serving's pixels here, on most pixels), a PNG's alpha dropped instead of
    put onto white and a GIF's transparent colour left black, so a model trained on them was
    served other pixels of the very same files."""
    from hubensemble.data import decode_image_bytes

    data_dir, module = prepared
    task = load_task("tfds:h291_photos", data_dir=str(data_dir), min_per_class=1,
                     splits={"train": "train", "val": None, "test": None})
    served = {decode_image_bytes(module.photo_file(i)).tobytes(): i for i in range(12)}
    assert len(served) == 12 and len(task.train) == 12
    # tfds orders examples by a hash of their keys: each image is matched by its pixels.
    got = {served.get(image.tobytes()): label
           for image, label in zip(task.train.images, task.train.labels)}
    assert got == {i: i % 3 for i in range(12)}
    assert f"its 'image' {TFDS_DECODED_WORDS}" in task.source
    # An Image declared with alpha is a PNG tfds wrote (lossless, its alpha kept for the
    # loader's compositing and its refusal of an alpha that is 0 everywhere): read as tfds
    # reads it; so are float images (tfds' own bit layout).
    from hubensemble.data.tfds import stored_encoded

    assert stored_encoded(tfds.features.Image(shape=(None, None, 3)))
    assert stored_encoded(tfds.features.Image(shape=(28, 28, 1)))
    assert not stored_encoded(tfds.features.Image(shape=(None, None, 4)))
    assert not stored_encoded(tfds.features.Image(shape=(8, 8, 1), dtype=np.float32))


def test_a_run_recorded_while_tfds_decoded_its_files_is_told_why_its_pixels_differ():
    """A tfds run recorded before its image files were decoded by the decode policy holds
    other pixels of the same files: a later stage said "2 of the 2 train images are new or
    changed" and to restore the data, which had not changed. The source each records tells
    the two apart (no TensorFlow: the records as run.json holds them)."""
    from hubensemble.datachange import DataRecord, compare
    from hubensemble.data.sniff import TFDS_DECODED_SINCE

    def record(source, keys):
        task = {"source": source, "class_names": ["a", "b"],
                "sizes": {"train": 2, "val": None, "test": None}}
        return DataRecord(args={}, task=task, labels={"train": np.array([0, 1])},
                          keys={"train": keys})

    before = record("tfds:x (train train)", [b"a" * 16, b"b" * 16])
    now = record(f"tfds:x (train train; its 'image' {TFDS_DECODED_WORDS})",
                 [b"c" * 16, b"d" * 16])
    change = compare(before, now)
    assert change.redecoded and f"recorded before {TFDS_DECODED_SINCE}" in change.text()
    assert "restore the data" not in change.advice()
    # Recorded since: other pixels are other files, as for any data.
    change = compare(record(now.task["source"], [b"a" * 16, b"b" * 16]), now)
    assert not change.redecoded and "restore the data" in change.advice()


def test_a_data_dir_with_a_tilde_is_the_folder_it_names(prepared, monkeypatch):
    """A new-user check: load_task(data_dir="~/...") said "h74_shapes has no prepared 'rgb' in
    ~/...; prepared there: grey/1.0.0, rgb/1.0.0": tfds did not expand the "~" that the
    listing did. $TFDS_DATA_DIR with a "~" likewise."""
    data_dir, _ = prepared
    monkeypatch.setenv("HOME", str(data_dir.parent))
    task = load_task("tfds:h74_shapes/rgb", data_dir="~/data", splits=SPLITS)
    assert len(task.train) == 40
    monkeypatch.setenv("TFDS_DATA_DIR", "~/data")
    assert len(load_task("tfds:h74_shapes/grey", splits=SPLITS).train) == 40


def test_a_mistyped_data_dir_is_named_as_missing(prepared, tmp_path):
    with pytest.raises(DataError, match=r"h74_shapes/rgb is not prepared in .*/nowhere \(no "
                                        r"such folder\); hubensemble never downloads") as err:
        load_task("tfds:h74_shapes/rgb", data_dir=str(tmp_path / "nowhere"), splits=SPLITS)
    # The way on in the caller's words: load_task's data_dir (it said --data-dir).
    assert str(err.value).endswith("then pass data_dir to where it lives"), err.value
    from hubensemble.lockwords import command_line

    with pytest.raises(DataError) as err, command_line():
        load_task("tfds:h74_shapes/rgb", data_dir=str(tmp_path / "nowhere"), splits=SPLITS)
    assert str(err.value).endswith("then pass --data-dir to where it lives"), err.value
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"cifar10 is not prepared in .*/file \(a file, not a "
                                        r"folder\); hubensemble never downloads"):
        load_task("tfds:cifar10", data_dir=str(tmp_path / "file"))
    # The same folder from $TFDS_DATA_DIR is named by it: it said "the default data dir".
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFDS_DATA_DIR", str(tmp_path / "file"))
        with pytest.raises(DataError, match=r"not prepared in \$TFDS_DATA_DIR's folder .*/file "
                                            r"\(a file, not a folder\)"):
            load_task("tfds:cifar10")


def test_features_configs_and_split_errors(prepared):
    data_dir = str(prepared[0])
    with pytest.raises(DataError, match=r"has no feature 'picture' \(pass image_key\); its "
                                        r"features are: count, image, label"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, image_key="picture")
    # A mistyped key gets fit's options' "did you mean" (it listed the features only).
    with pytest.raises(DataError, match=r"has no feature 'imgae' \(did you mean 'image'\?\)"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, image_key="imgae")
    with pytest.raises(DataError, match=r"has no feature 'Label' \(did you mean 'label'\?\)"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, label_key="Label")
    with pytest.raises(DataError, match=r"BuilderConfig blue not found .*\(h74_shapes's "
                                        r"configs: rgb, grey\)"):
        load_task("tfds:h74_shapes/blue", data_dir=data_dir)
    with pytest.raises(DataError, match=r"cannot read split 'validation\[:10\]' for val .*"
                                        r"the data set's splits are: test, train; override "
                                        r"with splits=\{'val': '...'\}$"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir,
                  splits={**SPLITS, "val": "validation[:10]"})
    from hubensemble.lockwords import command_line

    with command_line(), pytest.raises(  # it said both forms: "(CLI --split val=...)"
            DataError, match=r"splits are: test, train; override with --split val=...$"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir,
                  splits={**SPLITS, "val": "validation[:10]"})
    # "count" (0, 5, 10) is no ClassLabel: its values as indices leave 0..10 mostly unused.
    with pytest.raises(DataError, match=r"labels are class indices 0\.\.10 \(11 classes\), but "
                                        r"8 of them have no example .*pick a ClassLabel"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, label_key="count")
    task = load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS,
                     label_key="count", label_fn=lambda y: (y // 5, ["a", "b", "c"]))
    assert task.class_names == ["a", "b", "c"]
    named = load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS)
    np.testing.assert_array_equal(task.train.labels, named.train.labels)
    assert os.path.isdir(os.path.join(data_dir, "h74_shapes", "grey", "1.0.0"))


def test_a_feature_that_is_no_image_or_no_class_label_is_refused_before_reading(prepared):
    """image_key='count' (an int) was read to the end and refused as "expected a trailing
    channel axis of 1, 2, 3 or 4, got shape []"; a Text label_key as "not one integer per
    example"; a data set with no class label at all was told only to pass label_key. A
    version that is not there named tfds' builder versions, not the prepared ones."""
    data_dir = str(prepared[0])
    with pytest.raises(DataError) as e:
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, image_key="count")
    assert str(e.value) == (
        "tfds:h74_shapes/rgb: feature 'count' (image_key) is a Tensor of shape [], int64, not "
        "an image per example ([H, W] or [H, W, C] of numbers, an Image feature); pass "
        "image_key one of: image")
    from hubensemble.lockwords import command_line

    with command_line(), pytest.raises(DataError, match=r"; pass --image-key one of: image$"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, image_key="count")
    with pytest.raises(DataError, match=r"feature 'image' \(label_key\) is an Image of shape "
                                        r"\[6, 6, 3\], uint8, not one integer class .* one "
                                        r"of: count, label$"):
        load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits=SPLITS, label_key="image")
    captions = {"train": "train[:8]", "val": "train[8:]", "test": None}
    with pytest.raises(DataError, match=r"has no feature 'label' \(pass label_key\); its "
                                        r"features are: box, caption, image; none of them is "
                                        r"one integer class per example .*, so it is not an "
                                        r"image classification data set as stored$"):
        load_task("tfds:h140_captions", data_dir=data_dir, splits=captions)
    with pytest.raises(DataError, match=r"feature 'caption' \(label_key\) is a Text of shape "
                                        r"\[\], text, not one integer class .*h140_captions "
                                        r"has none: .*map an integer feature to classes "
                                        r"with label_fn$"):
        load_task("tfds:h140_captions", data_dir=data_dir, splits=captions,
                  label_key="caption")
    with command_line(), pytest.raises(  # the command line is told where label_fn is
            DataError, match=r"(?s)has no feature 'label' \(pass --label-key\); .*\n?.*"):
        load_task("tfds:h140_captions", data_dir=data_dir, splits=captions)
    with command_line(), pytest.raises(
            DataError, match=r"map an integer feature to classes with load_task's label_fn "
                             r"\(Python\)$"):
        load_task("tfds:h140_captions", data_dir=data_dir, splits=captions,
                  label_key="caption")
    with pytest.raises(DataError, match=r"h74_shapes/rgb:9\.9\.9: .*9\.9\.9.* \(prepared in "
                                        r".*data: grey/1\.0\.0, rgb/1\.0\.0\)$"):
        load_task("tfds:h74_shapes/rgb:9.9.9", data_dir=data_dir, splits=SPLITS)
    # A percentage split expression is read as tfds reads it.
    task = load_task("tfds:h74_shapes/rgb", data_dir=data_dir,
                     splits={"train": "train[:80%]", "val": "train[80%:]", "test": None})
    assert (len(task.train), len(task.val), task.test) == (48, 12, None)


def test_images_shrunk_to_1024_px_are_counted_in_the_summary_run_json_and_report(tmp_path):
    """A tfds image file above 1024 px on its shorter side is shrunk to it by the decode
    policy, as a folder's file is. Only the source text said so: Task.shrunk matched a
    folder's files by path and a tfds example has none, so run.json's data.task.shrunk and
    the report's "shrunk images" row said 0. They now count it, per split, named as
    Task.example_name names an example without a file ("train[1]"), as the summary does,
    once (the source no longer says it too)."""
    import json

    import tfds_builders as module

    from hubensemble import report
    from hubensemble.dataargs import DataArgs
    from hubensemble.rundir import Run

    module.LargePhotos(data_dir=str(tmp_path)).download_and_prepare()
    splits = {"train": "train", "val": "validation", "test": "test"}
    task = load_task("tfds:large_photos", data_dir=str(tmp_path), min_per_class=1,
                     splits=splits)
    # The reference: the pixels' own sizes. Shrunk ones have a shorter side of 1024.
    big = {f"{s}[{i}]": im.shape[:2] for s in ("train", "val", "test")
           for i, im in enumerate(getattr(task, s).images) if min(im.shape[:2]) == 1024}
    # tfds orders examples by a hash of their keys: which index is large is looked up.
    (test_name,), (train_name,) = ([n for n in big if n.startswith(s)] for s in ("test", "tr"))
    assert sorted(task.shrunk) == sorted(
        (name, module.LARGE[1 if name.startswith("train") else 7]) for name in big)
    for name, (h, w) in task.shrunk:  # aspect kept
        assert big[name] == ((1024, round(w * 1024 / h)) if h < w else
                             (round(h * 1024 / w), 1024))
    assert task.shrunk_counts() == {"train": 1, "val": 0, "test": 1}
    h, w = module.LARGE[1]
    said = (f"; 2 images above 1024 px on their shorter side shrunk to it (train 1, val 0, "
            f"test 1; e.g. {train_name}: {h}x{w})")
    assert said in task.summary() and "shrunk" not in task.source, task.summary()
    run = Run(tmp_path / "run")
    run.attach_task(task, DataArgs(spec="tfds:large_photos", data_dir=str(tmp_path),
                                   splits=splits, min_per_class=1))
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["data"]["task"]
    assert recorded["shrunk"] == {"count": 2, "splits": {"train": 1, "val": 0, "test": 1},
                                  "examples": [[train_name, [h, w]],
                                               [test_name, list(module.LARGE[7])]]}
    md = report.write_report(tmp_path / "run")[0].read_text()
    md_name = train_name.replace("[", "\\[").replace("]", "\\]")  # Markdown's escapes
    assert (f"| shrunk images | 2 with a shorter side above 1024 px, shrunk to it (train 1, "
            f"val 0, test 1; e.g. {md_name}: {h}x{w}) |") in md
    # --dedupe names a dropped copy as the record does: a dropped one is counted in none.
    task.dropped = [(train_name, "a copy of …")]
    assert task.shrunk_counts() == {"train": 0, "val": 0, "test": 1}


def test_an_empty_tfds_slice_is_said_empty_before_any_example_is_read(prepared):
    """A tfds split string that selects no example (`test[:0]`, `test[99%:]` of 12) was
    refused as "cannot read split 'test[:0]' (… (Instruction [] corresponds to no data!))"
    with tfds' words, after the other splits were read: it is said empty, from the builder's
    counts, before any example is read, for fit's load_task and evaluate's load_test_set."""
    from hubensemble.data.specs import load_test_set

    data_dir = str(prepared[0])
    for empty in ("test[:0]", "test[99%:]"):
        with pytest.raises(DataError, match=rf"^tfds:h74_shapes/rgb: split '{re.escape(empty)}'"
                                            r" \(test\) is empty; override it, e\.g\. "
                                            r"splits=\{'test': 'train\[:80%\]'\}$"):
            load_task("tfds:h74_shapes/rgb", data_dir=data_dir, splits={**SPLITS, "test": empty})
        with pytest.raises(DataError, match=rf"split '{re.escape(empty)}' \(test\) is empty; "
                                            r"evaluate read its test split as "):
            load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split="test",
                          splits={"test": empty})


def test_an_empty_tfds_slice_is_said_before_the_other_splits_are_read(prepared):
    """An empty test slice was found only after train and val were read (all of a large
    data set's train[:800] decoded first): every split's count is looked at before any is
    read, so the empty one is said even where another split could not be read at all."""
    with pytest.raises(DataError, match=r"^tfds:h74_shapes/rgb: split 'test\[:0\]' \(test\) "
                                        r"is empty; override it"):
        load_task("tfds:h74_shapes/rgb", data_dir=str(prepared[0]),
                  splits={"train": "train[:800]", "val": None, "test": "test[:0]"})


def test_class_names_an_export_does_not_know_are_refused_before_a_tfds_split_is_read(
        prepared):
    """evaluate of tfds data whose ClassLabel names the export does not name read the whole
    split first (a large test split decoded for nothing), though the names are in the
    builder's record: given the export's class names, load_test_set refuses from them before
    any example is read, so a split it could not even read is not what is said."""
    from hubensemble.data.specs import load_test_set

    data_dir = str(prepared[0])
    with pytest.raises(DataError, match=r"^the data 'h74_shapes_rgb' has class \['light'\] "
                                        r"that the model does not know; the model predicts 3 "
                                        r"classes \(dark, mid, bright\)"):
        load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split="test",
                      splits={"test": "no_such_split"}, model_classes=["dark", "mid", "bright"])
    # The export's own names, in any order: read as before.
    task = load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split="test",
                         model_classes=["light", "dark", "mid"])
    assert task.class_names == ["dark", "mid", "light"] and len(task.test) == 12


def test_evaluates_advice_to_score_another_split_names_a_split_string_that_reads(prepared):
    """evaluate's test split read as 'test[:0]' was told "or score another split (--split
    train)", which read VTAB-1k's train[:800] of a data set of 60 training examples and was
    refused by tfds ("Requested slice [:800] incompatible with 60 examples"): the advice
    names the whole tfds split (train=train), and following it reads all 60."""
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import parse_scored_split

    data_dir = str(prepared[0])
    with pytest.raises(DataError, match=r"score another split \(split='train=train': its 60 "
                                        r"examples, as VTAB-1k's 'train\[:800\]' is more") as e:
        load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split="test",
                      splits={"test": "test[:0]"})
    said = re.search(r"split='(train=train)'", str(e.value)).group(1)
    key, tfds_split = parse_scored_split(said)
    task = load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split=key,
                         splits={key: tfds_split})
    assert len(task.train.images) == 60
    # VTAB-1k's test string reads here: the advice for a train split stays --split test.
    with pytest.raises(DataError, match=r"score another split \(split='test'\)$"):
        load_test_set("tfds:h74_shapes/rgb", data_dir=data_dir, split="train",
                      splits={"train": "train[:0]"})


def test_a_data_dir_that_is_no_folder_is_refused_before_tensorflow(tmp_path):
    """`--data tfds:NAME --data-dir DIR` with DIR missing or a file was refused by the tfds
    loader after TensorFlow's import (7-11 s, ~680 MB for rank; 15-25 s measured before).
    Every command that reads --data (rank, fit, evaluate) refuses it before TensorFlow now,
    in the loader's words (the reference: `_load_tfds` itself, past `check_spec`). Fails
    before: TensorFlow loaded."""
    from hubensemble.data.loading import LoadOptions
    from hubensemble.data.tfds import _load_tfds
    from hubensemble.lockwords import command_line

    (tmp_path / "file").write_text("x")
    (tmp_path / "c.yaml").write_text(f"modules:\n  - {{name: m, handle: {tmp_path}}}\n")
    dirs = [tmp_path / "nowhere", tmp_path / "file"]
    said = []
    for data_dir in dirs:
        with command_line(), pytest.raises(DataError) as refused:
            _load_tfds("mnist", LoadOptions(data_dir=str(data_dir)))
        said.append(str(refused.value))
    assert "(no such folder)" in said[0] and "(a file, not a folder)" in said[1], said
    argvs = [[*command, "--data", "tfds:mnist", "--data-dir", str(data_dir)]
             for command in (["rank", "--catalogue", str(tmp_path / "c.yaml"), "--out",
                              str(tmp_path / "run")],
                             ["fit", "--catalogue", str(tmp_path / "c.yaml"), "--out",
                              str(tmp_path / "run")],
                             ["evaluate", "--model", str(tmp_path)])
             for data_dir in dirs]
    from test_cli import each_in_one_process

    found = each_in_one_process(*argvs)
    for argv, (code, _, err, tensorflow), words in zip(argvs, found, said * 3):
        assert (code, tensorflow) == (2, False), (argv, err)
        assert err.endswith(f"error: {words}\n"), (argv, err)
    assert not (tmp_path / "run").exists()
    # A folder this process may not enter (chmod does not bite for root): said so, at once.
    shut = tmp_path / "shut"
    shut.mkdir(mode=0o000)
    if not os.access(shut, os.R_OK | os.X_OK):
        with pytest.raises(DataError, match=re.escape(f"cannot be read in {shut}: the folder "
                                                      "is not readable by you")):
            load_task("tfds:mnist", data_dir=str(shut))
    shut.chmod(0o700)


def test_a_data_folder_holding_nothing_of_the_data_set_is_refused_before_tensorflow(tmp_path):
    """An existing --data-dir holding no prepared copy of the data set (empty, or other data
    sets only), and $TFDS_DATA_DIR naming a missing folder, were refused by the tfds loader
    after TensorFlow's import (8.6-9.1 s, ~700 MB). rank, fit and evaluate refuse them
    before it now, in the loader's words (the reference: `_load_tfds` itself, past
    `check_spec`): "not prepared" for a registered name, tfds' registry's "did you mean"
    for one it does not know. Folders tfds reads, or whose words are its builder's, are left
    to it. Fails before: TensorFlow loaded, and `check_spec` passed."""
    from hubensemble.data.loading import LoadOptions
    from hubensemble.data.specs import check_spec
    from hubensemble.data.tfds import _load_tfds
    from hubensemble.lockwords import command_line
    from test_cli import each_in_one_process

    empty, other = tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    (other / "h1_else" / "1.0.0").mkdir(parents=True)  # another data set, prepared
    (tmp_path / "c.yaml").write_text(f"modules:\n  - {{name: m, handle: {tmp_path}}}\n")
    cases = [("mnist", empty, None), ("mnist:3.0.1", other, None), ("cifar1O", other, None),
             ("mnist", None, tmp_path / "missing")]
    said = []
    for rest, data_dir, env in cases:
        with pytest.MonkeyPatch.context() as mp, command_line():
            mp.delenv("TFDS_DATA_DIR", raising=False)
            if env:
                mp.setenv("TFDS_DATA_DIR", str(env))
            with pytest.raises(DataError) as refused:
                _load_tfds(rest, LoadOptions(data_dir=data_dir and str(data_dir)))
        said.append(str(refused.value))
    assert "did you mean cifar10?" in said[2] and "(no such folder)" in said[3], said
    # One process, $TFDS_DATA_DIR the missing folder: a --data-dir typed comes before it.
    argvs = [[*command, "--data", f"tfds:{rest}",
              *(["--data-dir", str(data_dir)] if data_dir else [])]
             for rest, data_dir, _ in cases
             for command in (["rank", "--catalogue", tmp_path / "c.yaml", "--out",
                              tmp_path / "run"],
                             ["fit", "--catalogue", tmp_path / "c.yaml", "--out",
                              tmp_path / "run"],
                             ["evaluate", "--model", tmp_path])
             if command[0] == "rank" or rest == "mnist"]  # each command: the brief's two
    found = each_in_one_process(*argvs, env={**os.environ, "TFDS_DATA_DIR": str(cases[-1][2])})
    for argv, (code, _, err, tensorflow), words in zip(
            argvs, found, [w for (rest, _, _), w in zip(cases, said)
                           for _ in range(3 if rest == "mnist" else 1)]):
        assert (code, tensorflow) == (2, False), (argv, err)
        assert err.endswith(f"error: {words}\n"), (argv, err)
    assert not (tmp_path / "run").exists()
    for (rest, data_dir, _), words in zip(cases[:3], said):  # Python's check: the same
        with pytest.raises(DataError) as refused, command_line():
            check_spec(f"tfds:{rest}", data_dir=str(data_dir))
        assert str(refused.value) == words
    # What tfds reads or says itself is not refused here: a version folder there, a remote
    # folder, a config or version the builder does not know (its own words, after).
    (tmp_path / "there" / "mnist" / "3.0.1").mkdir(parents=True)
    for rest, data_dir in (("mnist", tmp_path / "there"), ("mnist", "gs://bucket/tfds"),
                           ("mnist/nosuch", empty), ("mnist:9.9.9", empty)):
        check_spec(f"tfds:{rest}", data_dir=str(data_dir))


def test_a_config_typed_after_a_colon_is_echoed_as_typed(prepared, tmp_path):
    """tfds:NAME:CONFIG is said as the user typed it, in the Task's source (the data summary,
    run.json, the report) and in the refusals, as tfds:NAME/CONFIG is: both were said as
    tfds:h74_shapes/rgb. The same data either way (one fingerprint). Fails before: the source
    and the refusal said tfds:h74_shapes/rgb for tfds:h74_shapes:rgb."""
    data_dir, _ = prepared
    colon = load_task("tfds:h74_shapes:rgb", data_dir=str(data_dir), splits=SPLITS)
    slash = load_task("tfds:h74_shapes/rgb", data_dir=str(data_dir), splits=SPLITS)
    assert colon.source.startswith("tfds:h74_shapes:rgb ("), colon.source
    assert slash.source.startswith("tfds:h74_shapes/rgb ("), slash.source
    assert colon.fingerprint == slash.fingerprint and colon.name == slash.name
    for typed in ("h74_shapes:rgb", "h74_shapes:rgb:1.0.0"):
        with pytest.raises(DataError) as refused:
            load_task(f"tfds:{typed}", data_dir=str(tmp_path / "nowhere"), splits=SPLITS)
        assert str(refused.value).startswith(f"tfds:{typed} is not prepared in "), refused.value


def test_a_split_override_that_switches_off_train_is_refused_before_the_folder(tmp_path):
    """`--split train=` with no tfds folder prepared said the missing folder first, and with
    one prepared was refused only after TensorFlow ("the train split cannot be switched
    off", naming no flag): the flag's error is the more useful first (the folder may be
    right once it is fixed). `check_data_dir` resolves the split overrides first, in the
    loader's words (the reference: `_load_tfds` itself). Fails before: the folder's words."""
    from hubensemble.data.loading import LoadOptions
    from hubensemble.data.tfds import _load_tfds, check_data_dir
    from hubensemble.lockwords import command_line

    empty, there = tmp_path / "empty", tmp_path / "there"
    empty.mkdir()
    (there / "mnist" / "3.0.1").mkdir(parents=True)
    with pytest.raises(DataError) as loaded, command_line():
        _load_tfds("mnist", LoadOptions(data_dir=str(there), splits={"train": None}))
    words = str(loaded.value)
    assert words.startswith("--split train= would switch off the train split"), words
    for folder in (empty, there, tmp_path / "missing"):
        with pytest.raises(DataError) as refused, command_line():
            check_data_dir("mnist", str(folder), {"train": None})
        assert str(refused.value) == words
    with pytest.raises(DataError, match=re.escape("splits={'train': ''} would switch off")):
        check_data_dir("mnist", str(there), {"train": ""})
    check_data_dir("mnist", str(there), {"test": None})  # test may be dropped


def test_the_command_line_says_a_bad_split_before_an_empty_tfds_folder(tmp_path):
    """`fit … --data tfds:mnist --data-dir EMPTY --split train=` and `evaluate … --split tst`
    said the missing tfds folder first (check_spec called `check_data_dir` without the
    command line's overrides, and evaluate's --split was checked after --data): the flag's
    error is the more useful first. The words are the checks' own (the references, called
    here), TensorFlow never imported. Fails before: both said "is not prepared in"."""
    from hubensemble.data.tfds import check_data_dir
    from hubensemble.evaluate import check_evaluate_options
    from hubensemble.lockwords import command_line
    from hubensemble.optionerror import OptionError
    from test_cli import each_in_one_process

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as train, command_line():
        check_data_dir("mnist", str(empty), {"train": None})
    with pytest.raises(OptionError) as split, command_line():
        check_evaluate_options("tst", None, None)
    (tmp_path / "model").mkdir()
    said = each_in_one_process(
        ["fit", "--catalogue", tmp_path / "c.yaml", "--data", "tfds:mnist", "--data-dir",
         empty, "--split", "train=", "--out", tmp_path / "run"],
        ["evaluate", "--model", tmp_path / "model", "--data", "tfds:mnist", "--data-dir",
         empty, "--split", "tst"])
    for (code, _, err, tensorflow), words in zip(said, (train, split)):
        assert (code, tensorflow) == (2, False), err
        assert str(words.value) in err and "is not prepared" not in err, err


def test_orientation_tags_of_stored_files_are_counted_as_a_folder_s(tmp_path):
    """A new-user check: the same JPEG bytes as a folder give "3 images with an EXIF or XMP
    orientation tag … used as stored"; as tfds:… nothing said it and run.json's oriented
    count was 0 (decode_stored looked for no tag). Each is counted and named as
    Task.example_name names an example without a file ("train[3]"), in the summary, run.json
    and the report's rows. Fails before: task.oriented == []."""
    import json

    import tfds_builders as module

    from hubensemble.data.decode import decode_bytes
    from hubensemble.dataargs import DataArgs
    from hubensemble.report.datarows import decoding_rows
    from hubensemble.rundir import Run

    module.OrientedPhotos(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    splits = {"train": "train", "val": "validation", "test": "test"}
    task = load_task("tfds:oriented_photos", data_dir=str(tmp_path / "tfds"), min_per_class=1,
                     splits=splits)
    tags = {decode_bytes(module.oriented_file(i)).pixels.tobytes(): module.ORIENTED.get(i)
            for i in range(8)}
    # tfds orders examples by a hash of their keys: each named example's tag is looked up.
    want = sorted((f"{s}[{i}]", tags[im.tobytes()]) for s in ("train", "val", "test")
                  for i, im in enumerate(getattr(task, s).images) if tags[im.tobytes()])
    assert len(want) == len(module.ORIENTED) and sorted(task.oriented) == want, task.oriented
    assert task.turned == task.unservable == task.dark == task.shrunk == []
    # A folder of the same files: the same count, in the same words.
    for i in range(8):
        (tmp_path / "imgs" / ("even", "odd")[i % 2]).mkdir(parents=True, exist_ok=True)
        (tmp_path / "imgs" / ("even", "odd")[i % 2] / f"{i}.jpg").write_bytes(
            module.oriented_file(i))
    folder = load_task(f"folder:{tmp_path / 'imgs'}", min_per_class=1)
    assert len(folder.oriented) == len(task.oriented) == 3
    name, tag = task.oriented[0]
    assert (f"; 3 images with an EXIF or XMP orientation tag (e.g. {name}: {tag}) used as "
            "stored, not turned upright, as serve_bytes reads them") in task.summary()
    run = Run(tmp_path / "run")
    run.attach_task(task, DataArgs(spec="tfds:oriented_photos", data_dir=str(tmp_path / "tfds"),
                                   splits=splits, min_per_class=1))
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["data"]["task"]
    assert recorded["oriented"] == {"count": 3, "examples": [list(o) for o in task.oriented]}
    assert dict(decoding_rows(recorded))["orientation tag"] == (
        f"3 images with the tag (EXIF or XMP), used as stored, not turned upright (e.g. "
        f"{name}: {tag})")
