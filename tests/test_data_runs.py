"""Image folders and run folders together: an --out inside the data, a run or export left
there, a refused fit's new folder, a class left short by unreadable files (a new-user check)."""

import json
import logging
import os
import re

import numpy as np
import pytest
from PIL import Image

from conftest import png_of_size
from hubensemble.data import load_task
from hubensemble.errors import DataError


def _images(folder, counts, *, corrupt=()):
    """folder/<class>/<i>.png, 8x8 noise, counts {class: n}; `corrupt` names ("b/1.png")
    whose bytes are cut to 40 (a damaged PNG)."""
    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                folder / name / f"{i}.png")
    for rel in corrupt:
        path = folder / rel
        path.write_bytes(path.read_bytes()[:40])
    return folder


@pytest.fixture
def catalogue(tmp_path):
    # Its module fails in rank, after TensorFlow and the data: a file that holds no module (a
    # missing path is refused before them: `commands._missing_modules`).
    (tmp_path / "m").write_text("not a module\n")
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  - {{name: t, handle: {tmp_path / 'm'}}}\n")
    return path


def test_an_out_or_export_inside_the_image_folder_is_refused_before_anything_is_made(
        tmp_path, in_process, catalogue):
    # It made imgs/run1/ (log.txt, .fit.lock), the load then blamed a class 'run1' with 1
    # file, and the folder broke every later fit on imgs, whatever its --out.
    import hubensemble

    imgs = _images(tmp_path / "imgs", {"cat": 4, "dog": 4})
    data = f"folder:{imgs}"
    for argv, flag, path in (
            (["fit", "--out", imgs / "run1"], "--out", imgs / "run1"),
            (["fit", "--out", tmp_path / "r", "--export", imgs / "cat" / "m"], "--export",
             imgs / "cat" / "m"),
            (["rank", "--out", imgs / "deep" / "run"], "--out", imgs / "deep" / "run"),
            (["rank", "--out", imgs], "--out", imgs)):
        code, _, err = in_process(*argv, "--catalogue", catalogue, "--data", data, "-q")
        assert code == 2, err
        assert f"{flag} {path} is" in err and f"the data folder {imgs}" in err, err
        assert "outside it" in err and "'run1'" not in err, err
        assert sorted(os.listdir(imgs)) == ["cat", "dog"], argv
        assert sorted(os.listdir(imgs / "cat")) == [f"{i}.png" for i in range(4)]
        assert not (tmp_path / "r").exists()
    with pytest.raises(DataError, match=r"out .*run2 is inside the data folder"):
        hubensemble.fit(str(catalogue), data, str(imgs / "run2"))
    assert sorted(os.listdir(imgs)) == ["cat", "dog"]


def test_export_out_inside_the_runs_image_folder_is_refused(tmp_path):
    from hubensemble.lockwords import command_line
    from hubensemble.options import OptionError
    from hubensemble.preflight import check_export_flags

    imgs = _images(tmp_path / "imgs", {"cat": 2, "dog": 2})
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"args": {"spec": f"folder:{imgs}"}}}))
    # From Python, export_ensemble's keyword (it was told --out); the flag on the command line.
    with pytest.raises(DataError, match=r"^out_dir .*imgs/exp is inside the data folder") as e:
        check_export_flags(str(imgs / "exp"), export_format="savedmodel", quantize="none",
                           tflite_size=None, run_dir=str(run))
    with command_line(), pytest.raises(DataError, match=r"--out .*imgs/exp is inside the data"):
        check_export_flags(str(imgs / "exp"), export_format="savedmodel", quantize="none",
                           tflite_size=None, run_dir=str(run))
    with pytest.raises(OptionError, match=re.escape(
            "quantize and tflite_size apply only to the TFLite model; add "
            "export_format='tflite'")):
        check_export_flags(None, export_format="savedmodel", quantize="dynamic", tflite_size=96)
    # export takes no --data: the message names whose data it is.
    assert f"(the data of the run {run}, folder:{imgs})" in str(e.value)
    assert "(--data " not in str(e.value)
    check_export_flags(str(tmp_path / "exp"), export_format="savedmodel", quantize="none",
                       tflite_size=None, run_dir=str(run))  # outside: fine


def test_a_merged_ranking_inside_the_image_folder_is_refused(tmp_path, in_process):
    # rank merge --out made its run folder inside the data its shards record (the merged run
    # records it too), as fit --out did before d98b412. Refused before the shards are read.
    imgs = _images(tmp_path / "imgs", {"cat": 4, "dog": 4})
    shard = tmp_path / "shard"
    shard.mkdir()
    (shard / "run.json").write_text(json.dumps({"data": {"args": {"spec": f"folder:{imgs}"}}}))
    code, _, err = in_process("rank", "merge", shard, shard, "--out", imgs / "merged", "-q")
    assert code == 2 and (f"error: --out {imgs / 'merged'} is inside the data folder {imgs} "
                          f"(the shards' data, folder:{imgs}): what is written there would be "
                          "read as a class of the data; pass a --out folder outside it, e.g. "
                          f"--out {tmp_path / 'merged'}\n") in err, err
    assert sorted(os.listdir(imgs)) == ["cat", "dog"]
    # merge_rankings refuses it itself, from Python too (only the command line did: a
    # merge from Python wrote its run folder as a class of the data), before the shards
    # are read (these two are no set of shards).
    from hubensemble.rank.merge import check_shards, merge_rankings

    said = err.split("error: ", 1)[1].rstrip()
    python = (said.replace("--out", "out_dir").replace("a out_dir", "an out_dir")
              .replace(f"out_dir {tmp_path / 'merged'}", f"out_dir={str(tmp_path / 'merged')!r}"))
    for call, want in ((merge_rankings, python), (check_shards, said)):
        with pytest.raises(DataError) as e:  # the Python keyword and value, where it is one
            call([shard, shard], imgs / "merged")
        assert str(e.value) == want, call
    assert sorted(os.listdir(imgs)) == ["cat", "dog"]


def test_the_reports_data_rows_show_every_example_path_by_one_rule(tmp_path):
    """A new-user check: report.md's orientation row showed "…h100_try/imgs/right-of-way at
    next intersection/s_exif6.jpg" (cut by its length), the TIFF row below it the whole
    path. Every example under the data's folder is shown relative to it (the source row
    names the folder), whatever its length."""
    from hubensemble.report.datarows import accounting_rows

    imgs = _images(tmp_path / "a data folder (copy)" / "imgs",
                   {"right-of-way at next intersection": 3, "general caution": 3})
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(
        imgs / "right-of-way at next intersection" / "s_exif6.jpg", exif=exif)
    Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(
        imgs / "general caution" / "s_orient6.tif", exif=exif)
    (imgs / "general caution" / "notes.jpg").write_text("not a picture\n")
    (imgs / ".DS_Store").write_text("x")
    rows = dict(accounting_rows(load_task(f"folder:{imgs}").to_json()))
    assert rows["orientation tag"].endswith(
        "(e.g. right-of-way at next intersection/s_exif6.jpg: 6)"), rows
    assert rows["TIFF orientation"].endswith("(e.g. general caution/s_orient6.tif: 6)"), rows
    assert "1 skipped (unreadable; general caution/notes.jpg: not a JPEG" in rows[
        "files read"]
    assert rows["hidden / system entries"] == "1 ignored (e.g. .DS_Store)"


def test_a_run_or_export_folder_left_inside_the_data_is_ignored_and_counted(tmp_path):
    # One left by an earlier version (or made by hand) was read as a class of the data.
    imgs = _images(tmp_path / "imgs", {"cat": 4, "dog": 4})
    (imgs / "run1").mkdir()  # what a refused fit left: its log and lock
    (imgs / "run1" / "log.txt").write_text("x")
    (imgs / "run1" / ".fit.lock").write_text("")
    (imgs / "run2" / "labels").mkdir(parents=True)  # a run
    (imgs / "run2" / "run.json").write_text("{}")
    (imgs / "cat" / "export" / "assets").mkdir(parents=True)  # an export inside a class
    (imgs / "cat" / "export" / "assets" / "hubensemble.json").write_text(
        json.dumps({"format": "hubensemble-export"}))
    task = load_task(f"folder:{imgs}")
    assert task.class_names == ["cat", "dog"]
    assert task.files == 8 and not task.skipped
    assert sorted(task.ignored) == sorted(str(imgs / p) for p in ("cat/export", "run1", "run2"))
    assert "3 folders hubensemble made (a run or an export) inside the data ignored" in (
        task.summary())
    # The report names them apart too, as the summary does: it counted them as "hidden /
    # system entries" (3 ignored, e.g. …/cat/export), beside none.
    from hubensemble.report.datarows import accounting_rows

    rows = dict(accounting_rows(task.to_json()))
    assert "hidden / system entries" not in rows
    assert rows["folders hubensemble made"].startswith(
        "3 ignored, not read as classes: a run or an export inside the data (e.g. ")
    (imgs / "dog" / ".DS_Store").write_text("x")
    task = load_task(f"folder:{imgs}")
    assert "1 hidden or system entry ignored" in task.summary()
    rows = dict(accounting_rows(task.to_json()))
    hidden = rows["hidden / system entries"]
    assert hidden.startswith("1 ignored (e.g. ") and hidden.endswith("dog/.DS_Store)"), hidden
    assert rows["folders hubensemble made"].startswith("3 ignored")
    # A record names the first 10 entries only; it counts the folders hubensemble made apart
    # (at load time, from the whole list), so that the rows are exact beyond those 10 too:
    # here the 10 named are hidden files, and the 3 folders come after them.
    for i in range(10):
        (imgs / f".h{i}").write_text("x")
    (imgs / "dog" / ".DS_Store").unlink()
    task = load_task(f"folder:{imgs}")
    record = task.to_json()["ignored"]
    assert (record["count"], record["hubensemble_folders"]) == (13, 3)
    assert not any(p.endswith(("run1", "run2", "export")) for p in record["examples"])
    assert ("10 hidden or system entries ignored" in task.summary()
            and "3 folders hubensemble made" in task.summary())
    rows = dict(accounting_rows(task.to_json()))
    hidden = rows["hidden / system entries"]
    assert hidden == "10 ignored (e.g. .h0)", hidden  # relative to the data folder
    assert rows["folders hubensemble made"] == (
        "3 ignored, not read as classes: a run or an export inside the data (move them out)")
    # A record written before that count: what it cannot tell apart is said to be so.
    more = {"ignored": {"count": 12, "examples": [f"/d/c/.x{i}" for i in range(10)]}}
    assert dict(accounting_rows(more))["hidden / system entries"] == (
        "12 ignored (e.g. /d/c/.x0); the record names only the first 10: a folder hubensemble "
        "made among the rest is counted here")
    # A folder of images that merely holds a log.txt is still a class (of no image: a log.txt
    # is no image file, sniff.not_an_image, since 728c8425).
    (imgs / "bird").mkdir()
    (imgs / "bird" / "log.txt").write_text("x")
    with pytest.raises(DataError, match="'bird' has 0"):
        load_task(f"folder:{imgs}")


def test_a_refused_fit_removes_the_run_folder_it_made_and_only_that(
        tmp_path, in_process, catalogue):
    # npz with wrong keys: refused after the data load, leaving RUN/ (log.txt, .fit.lock).
    import hubensemble

    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.zeros(4))
    new = tmp_path / "new" / "run"
    code, _, err = in_process("fit", "--catalogue", catalogue, "--data", f"npz:{bad}",
                              "--out", new, "-q")
    assert code == 2 and "needs arrays x_train and y_train" in err, err
    assert not (tmp_path / "new").exists()  # and the parent it made
    with pytest.raises(DataError, match="needs arrays x_train"):
        hubensemble.fit(str(catalogue), f"npz:{bad}", str(new))
    assert not (tmp_path / "new").exists()
    # A folder that was there stays, empty or not, as it was: the files the refused command
    # made in it go (they stayed: log.txt and .fit.lock in the user's `mkdir r`), whatever
    # the command (fit, rank) and from Python too; never what was there before.
    for name, content in (("empty", None), ("kept", ".gitkeep")):
        folder = tmp_path / name
        folder.mkdir()
        if content:
            (folder / content).write_text("")
        for command in ("fit", "rank"):
            code, _, err = in_process(command, "--catalogue", catalogue, "--data", f"npz:{bad}",
                                      "--out", folder, "-q")
            assert code == 2 and "needs arrays x_train" in err, err
            assert sorted(os.listdir(folder)) == ([content] if content else []), command
        with pytest.raises(DataError, match="needs arrays x_train"):
            hubensemble.fit(str(catalogue), f"npz:{bad}", str(folder))
        assert sorted(os.listdir(folder)) == ([content] if content else [])
    # A folder holding an earlier command's log keeps it, and its new lines say why.
    (tmp_path / "empty" / "log.txt").write_text("")
    code, _, err = in_process("fit", "--catalogue", catalogue, "--data", f"npz:{bad}", "--out",
                              tmp_path / "empty", "-q")
    assert code == 2 and "needs arrays x_train" in (tmp_path / "empty" / "log.txt").read_text()


def test_files_skipped_as_too_large_are_counted_by_that_word(tmp_path):
    """A user's find in predict, the same kind here: an image only too large to decode was
    counted among the "unreadable" files of a short class and of an empty folder, while its
    reason said "too large"."""
    huge = png_of_size(20000, 10000)  # 600 million bytes of pixels: past the decoders' 2^29
    data = _images(tmp_path / "short", {"a": 6, "b": 3}, corrupt=("b/1.png",))
    (data / "b" / "2.png").write_bytes(huge)
    with pytest.raises(DataError) as e:
        load_task(f"folder:{data}")
    assert (f"{data / 'b'}/ has 3 files, 2 skipped (1 unreadable, 1 too large; ") in \
        str(e.value), e.value
    (data / "b" / "1.png").write_bytes(huge)
    with pytest.raises(DataError) as e:
        load_task(f"folder:{data}")
    assert f"{data / 'b'}/ has 3 files, 2 skipped (too large; " in str(e.value), e.value
    empty = tmp_path / "empty"
    for rel in ("c/0.png", "c/1.png", "d/0.png", "d/1.png"):
        (empty / rel).parent.mkdir(parents=True, exist_ok=True)
        (empty / rel).write_bytes(huge)
    with pytest.raises(DataError) as e:
        load_task(f"folder:{empty}")
    assert f"no readable images under {empty}; all 4 files were too large, e.g. " in \
        str(e.value), e.value


def test_a_class_left_short_by_unreadable_files_names_them(tmp_path, caplog):
    # 'b' has 3 files, 2 damaged: the error named a's damaged file ('a' is fine) and b's
    # were named nowhere, not in the error and not in the log.
    data = _images(tmp_path / "short", {"a": 6, "b": 3}, corrupt=("a/0.png", "b/1.png",
                                                                  "b/2.png"))
    with caplog.at_level(logging.WARNING, "hubensemble"), pytest.raises(DataError) as e:
        load_task(f"folder:{data}")
    text = str(e.value)
    assert "'b' has 1" in text and "class 'b' is short" in text, text
    assert f"{data / 'b'}/ has 3 files, 2 skipped (unreadable; " in text, text
    # Named by reason, the reason said once (`sniff.named_skips`; it was said per file).
    assert f"{data / 'b' / '1.png'}, {data / 'b' / '2.png'}: a damaged PNG file" in text, text
    assert text.count("a damaged PNG file") == 1, text
    assert str(data / "a" / "0.png") not in text  # not b's: not why b is short
    assert "repair or replace the skipped files" in text and "logged as a warning" in text
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Every one, a line for the files of one reason (`sniff.skip_lines`; no run.json).
    paths = ", ".join(str(data / rel) for rel in ("a/0.png", "b/1.png", "b/2.png"))
    assert f"skipped 3 files ({paths}): a damaged PNG" in "\n".join(logged), logged


def test_a_val_or_test_class_left_without_examples_by_unreadable_files_is_refused(
        tmp_path, caplog):
    # val/square/ held only damaged files: accepted, and the user saw only "no validation
    # example of: square"; a train class left short names its files (d98b412), these now too.
    from hubensemble.data import load_test_set

    def refused(spec, load=load_task):
        with caplog.at_level(logging.WARNING, "hubensemble"), pytest.raises(DataError) as e:
            load(spec)
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        caplog.clear()
        return str(e.value), logged

    for split, word in (("val", "validation"), ("test", "test")):
        root = tmp_path / split
        _images(root / "train", {"circle": 4, "square": 4})
        _images(root / split, {"circle": 2, "square": 3},
                corrupt=[f"square/{i}.png" for i in range(3)])
        text, logged = refused(f"folder:{root}")
        folder = root / split / "square"
        assert text.startswith("unreadable files left classes without the examples their "
                               f"folders hold: class 'square' has no {word} example: its "
                               f"folder {folder}/ has 3 files, 3 skipped (unreadable; "), text
        paths = ", ".join(str(folder / f"{i}.png") for i in range(3))
        assert f"(unreadable; {paths}: a damaged PNG file (" in text, text
        assert any(m.startswith(f"skipped 3 files ({paths}): a damaged PNG")
                   for m in logged), logged
        assert text.endswith(f"), 0 read (repair or replace the skipped files, or remove the "
                             f"folder to go on without {word} examples of 'square'); every "
                             "skipped file is logged as a warning (\"skipped PATH: REASON\"; "
                             "the files of one reason on one line)")
    # One folder + fractions: 3 of square's 5 files damaged leave 2, both kept for training.
    flat = _images(tmp_path / "flat", {"circle": 6, "square": 5},
                   corrupt=[f"square/{i}.png" for i in range(3)])
    text, _ = refused(f"folder:{flat}")
    assert (f"class 'square' has no validation or test example: its folder {flat / 'square'}/ "
            "has 5 files, 3 skipped (unreadable; ") in text, text
    assert ("2 read, all kept for training (a class keeps 2 for training first; its 5 files "
            "would have given it 1 validation example and 1 test example) (repair or replace the "
            "skipped files or add images, or remove the skipped files to go on without "
            "validation or test examples of 'square')") in text, text
    assert "circle" not in text
    # evaluate's test set: a class folder of damaged files only.
    tests = _images(tmp_path / "tests", {"circle": 2, "square": 2},
                    corrupt=["square/0.png", "square/1.png"])
    text, _ = refused(f"folder:{tests}", load_test_set)
    assert (f"class 'square' has no test example: its folder {tests / 'square'}/ has 2 "
            "files, 2 skipped (unreadable; ") in text, text
    # A val/ of unreadable files only names them too (it said "holds no readable images").
    _images(tmp_path / "all" / "train", {"circle": 4, "square": 4})
    _images(tmp_path / "all" / "val", {"circle": 1}, corrupt=["circle/0.png"])
    text, _ = refused(f"folder:{tmp_path / 'all'}")
    assert "class 'circle' has no validation example" in text, text
    # Kept as they were: a class with no val/ folder or an empty one, a class of too few
    # files to reach a split, a folder some of whose files were read.
    kept = _images(tmp_path / "kept", {"train/circle": 4, "train/square": 4, "val/circle": 2,
                                       "val/triangle": 2, "train/triangle": 3})
    (kept / "val" / "square").mkdir()
    assert load_task(f"folder:{kept}").coverage()["val"]["missing"] == ["square"]
    _images(kept / "val", {"square": 3}, corrupt=["square/0.png", "square/1.png"])
    task = load_task(f"folder:{kept}")
    assert task.coverage()["val"]["missing"] == [] and len(task.skipped) == 2
    small = _images(tmp_path / "small", {"circle": 6, "square": 2})
    assert load_task(f"folder:{small}").coverage()["val"]["missing"] == ["square"]


def test_the_same_data_given_in_python_keeps_the_spec_that_loads_it_again(tmp_path):
    """A new-user check: after a fit from the command line, run_rank(RUN, specs,
    load_task(SPEC)) from Python recorded the data as given in Python, so `export --run RUN`
    refused: "this run's data was given in Python … run the stage from Python with task=…".
    The same task keeps the recorded arguments; other data is still refused."""
    from hubensemble.errors import RunError
    from hubensemble.rundir import DataArgs, Run

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (36, 8, 8, 3), dtype=np.uint8)
    y = np.arange(36) % 3
    np.savez(tmp_path / "d.npz", x_train=x[:24], y_train=y[:24], x_test=x[24:], y_test=y[24:])
    spec = f"npz:{tmp_path / 'd.npz'}"
    run = Run(tmp_path / "run")
    run.path.mkdir()
    task = load_task(spec)
    run.attach_task(task, DataArgs(spec=spec))
    recorded = run.meta()["data"]["args"]
    run.attach_task(task, DataArgs.of_task(task))  # run_rank's record
    assert run.meta()["data"]["args"] == recorded
    assert run.task().fingerprint == task.fingerprint  # loads again, as export --run does
    other = load_task(spec, seed=1)
    with pytest.raises(RunError, match="other data|differ"):
        run.attach_task(other, DataArgs.of_task(other))


def test_class_names_that_differ_only_by_case_are_warned_of_from_every_source(tmp_path, caplog):
    """Cat/ and cat/ are two classes on Linux, but one folder on macOS and Windows, whose file
    systems ignore case: the data copied there, or an evaluate test set laid out as class
    folders, merges them, and nothing said so. load_task now warns, for a folder and an
    npz's class_names alike; a caller that says the data itself (DataArgs.load, the
    commands and fit: once per run) gets no warning from the load."""
    from hubensemble.data.folder import case_only_note
    from hubensemble.dataargs import DataArgs

    _images(tmp_path / "pets", {"Cat": 6, "cat": 6, "dog": 6})
    caplog.set_level("WARNING", logger="hubensemble.data")
    said = ("class names 'Cat' and 'cat' differ only by case: they are two classes here, but "
            "on macOS and Windows, whose file systems ignore case, Cat/ and cat/ are one "
            "folder")
    assert load_task(f"folder:{tmp_path / 'pets'}").class_names == ["Cat", "cat", "dog"]
    assert [r.getMessage() for r in caplog.records if said in r.getMessage()]
    caplog.clear()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pets.npz", x_train=rng.integers(0, 255, (12, 8, 8, 3), np.uint8),
             y_train=np.arange(12) % 3, class_names=np.array(["dog", "Cat", "cat"]))
    load_task(f"npz:{tmp_path / 'pets.npz'}")
    assert [r for r in caplog.records if "'Cat' and 'cat' differ only by case" in
            r.getMessage()]
    caplog.clear()
    DataArgs(spec=f"folder:{tmp_path / 'pets'}").load()
    assert not [r for r in caplog.records if "differ only by case" in r.getMessage()]
    assert case_only_note(["cat", "dog"]) is None
    assert case_only_note(["A", "a", "B", "b"]).startswith(
        "class names 'A' and 'a' differ only by case (and 1 other pair of classes)")


def test_a_runs_class_notes_are_said_at_its_first_load_only(tmp_path, tiny_module,
                                                            in_process):
    """Folders 1/, 10/, 2/ (class ids in text order) were warned of at every load of the
    data: each command on the run and each resumed fit said it again. Said once per run
    now: at the load that records the data in run.json (or with fit's --restart, which
    starts the run again: `Run.new_task`), not after."""
    from hubensemble.rundir import Run

    data = _images(tmp_path / "num", {"1": 6, "10": 6, "2": 6})
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    out = tmp_path / "run"
    args = ("rank", "--catalogue", catalogue, "--data", f"folder:{data}", "--out", out,
            "--profile", "quick", "--top-k", "1")
    code, _, err = in_process(*args)
    assert code == 0, err
    assert err.count("ordered as text, not as numbers") == 1, err
    assert Run(out).meta()["data"]["task"]["class_names"] == ["1", "10", "2"]
    code, _, err = in_process(*args)  # the run's data again: said already
    assert code == 0 and "ordered as text" not in err, err
    assert Run(out).new_task(load_task(f"folder:{data}"), restart=True)
