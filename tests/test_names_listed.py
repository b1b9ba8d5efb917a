"""Lists of names from the user (class names, file and folder paths, a download's entries) in
messages: one form, `text.names_listed`, quoting every name when one holds a comma, so that
"ice, snow" is not read as two names. Ordinary names are listed as they were."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from hubensemble.errors import RunError


def test_datachange_new_and_gone_classes_are_quoted_when_one_holds_a_comma():
    from hubensemble.datachange import _count_reasons

    said = _count_reasons({"class_names": ["ice", "rain"]},
                          {"class_names": ["ice, snow", "hail"]})
    assert said == ["the classes differ (new: 'ice, snow', 'hail'; gone: ice, rain)"], said
    plain = _count_reasons({"class_names": ["a", "b"]}, {"class_names": ["a", "c"]})
    assert plain == ["the classes differ (new: c; gone: b)"], plain


def test_report_examples_per_class_row_quotes_names_as_the_classes_row():
    from hubensemble.report.datarows import class_counts_row

    labels = {"train": np.array([0] * 10 + [1]), "val": None}
    # The names are render.Name parts (isolated in report.html); str() is the row's text.
    assert [str(c) for c in class_counts_row(["ice, snow", "rain"], labels)] == [
        "examples per class (train)", "'ice, snow': 10, 'rain': 1"]
    assert [str(c) for c in class_counts_row(["ice", "rain"], labels)] == [
        "examples per class (train)", "ice: 10, rain: 1"]
    # Numeric and spaced names: "1 7 / 2 / 3, … a b c 8 / 2 / 3" could not be parted; each
    # entry's last ": " parts its name from its counts. Fails before: no colon.
    names = ["1", "2", "a b c", "x: 3"]
    three = {"train": np.array([0] * 7 + [1] * 2 + [2] * 8 + [3] * 9), "val": np.arange(4),
             "test": np.array([0, 1, 2, 3, 3])}
    row = str(class_counts_row(names, three)[1])
    assert row == "1: 7 / 1 / 1, 2: 2 / 1 / 1, a b c: 8 / 1 / 1, x: 3: 9 / 1 / 2", row
    assert [e.rsplit(": ", 1)[0] for e in row.split(", ")] == names


def test_evaluate_classes_with_no_example_are_quoted_when_one_holds_a_comma():
    from hubensemble.evaluate import format_evaluation

    entry = {"ensemble": {"accuracy": 1.0, "nll": 0.1, "ece": 0.0}}
    result = {"split": "test", "n": 4, "clean": entry, "best_single_missing": "one member",
              "classes": {"absent": ["ice, snow", "hail"]}}
    assert ("2 of the model's classes have no example here (metrics cover the others): "
            "'ice, snow', 'hail'\n") in format_evaluation(result)
    result["classes"]["absent"] = [f"c{i}" for i in range(12)]
    assert ("cover the others): c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, …\n"
            in format_evaluation(result))


def test_skipped_paths_are_quoted_when_one_holds_a_comma():
    from hubensemble.data.sniff import named_skips, skip_lines

    skipped = [("a, b.jpg", "not an image"), ("c.jpg", "not an image"),
               ("d\ne.jpg", "too large")]
    assert named_skips(skipped) == "'a, b.jpg', 'c.jpg': not an image; d\\ne.jpg: too large"
    assert skip_lines(skipped) == ["skipped 2 files ('a, b.jpg', 'c.jpg'): not an image",
                                   "skipped d\\ne.jpg: too large"]
    assert skip_lines([("a, b.jpg", "too large")]) == ["skipped 'a, b.jpg': too large"]
    assert skip_lines(skipped[1:2] * 2 + [("f.jpg", "not an image")], "see run.json", 1) == [
        "skipped 3 files (c.jpg and 2 more, see run.json): not an image"]


def test_a_run_folder_s_foreign_files_are_quoted_when_one_holds_a_comma(tmp_path):
    from hubensemble.rundir import Run

    for name in ("notes, v2.txt", "photo.jpg"):
        (tmp_path / name).write_text("mine")
    with pytest.raises(RunError, match=r"holds files or folders \('notes, v2.txt', "
                                       r"'photo.jpg'\) and no run"):
        Run(tmp_path).check_folder_is_ours()


def test_a_download_s_entries_are_quoted_when_one_holds_a_comma(tmp_path, monkeypatch):
    from hubensemble.hub.resolvers import RemoteCopyResolver, _downloaded_without_module

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    download = tmp_path / "download"
    (download / "model, v2").mkdir(parents=True)
    (download / "notes.txt").write_text("")
    why = _downloaded_without_module(str(download), RemoteCopyResolver(), "gs://b/m")
    assert "it holds: 'model, v2/', 'notes.txt')" in why, why
    (download / "model, v2").rename(download / "model")
    why = _downloaded_without_module(str(download), RemoteCopyResolver(), "gs://b/m")
    assert "it holds: model/, notes.txt)" in why, why


def test_a_running_sweep_s_lock_paths_are_quoted_when_one_holds_a_comma(tmp_path):
    from hubensemble import formats
    from hubensemble.sweeplock import sweep_running

    run_dir = tmp_path / "runs, v2"
    members = [(run_dir / formats.SWEEP_LOCK.format(m), {"sweep": "s1"})
               for m in ("chief", "w1")]
    said = str(sweep_running(run_dir, members, None))
    locks = ", ".join(repr(os.path.abspath(p)) for p, _ in members)
    assert f"they hold {locks})" in said, said


def _shard(d, shard):
    return (d, SimpleNamespace(shard=shard))


def test_shard_folders_are_quoted_when_one_holds_a_comma(tmp_path):
    from hubensemble.rank.merge import _check_shard_set

    a, b = str(tmp_path / "a, b"), str(tmp_path / "c")
    with pytest.raises(RunError) as e:
        _check_shard_set([_shard(a, (0, 2)), _shard(b, (0, 3))])
    assert f"cut into different counts: {a + ' (0/2)'!r}, {b + ' (0/3)'!r};" in str(e.value)
    with pytest.raises(RunError) as e:
        _check_shard_set([_shard(a, (0, 3)), _shard(b, (1, 3))])
    assert f"missing: got {a + ' (0/3)'!r}, {b + ' (1/3)'!r};" in str(e.value)
    with pytest.raises(RunError) as e:
        _check_shard_set([_shard(b, (0, 3))])
    assert f"missing: got {b} (0/3);" in str(e.value)


def test_whole_rankings_and_differing_shards_name_their_folders_quoted(tmp_path, monkeypatch):
    from hubensemble.rank import merge

    dirs = [str(tmp_path / "w, 1"), str(tmp_path / "w2")]
    for d in dirs:
        os.mkdir(d)
    shards = {dirs[0]: (None, 0), dirs[1]: (None, 1)}

    def ranking(d):  # what check_shards reads of a ranking.json before the fields differ
        shard, k = shards[d]
        return SimpleNamespace(shard=shard, metric="acc", k=k, data_fingerprint="f",
                               profile="p", split="val", catalogue={})

    monkeypatch.setattr(merge, "load_ranking", ranking)
    listed = f"{dirs[0]!r}, {dirs[1]!r}"
    with pytest.raises(RunError) as e:
        merge.check_shards(dirs)
    assert str(e.value).startswith(f"{listed}: a whole ranking, not a shard"), e.value
    shards.update({dirs[0]: ((0, 2), 0), dirs[1]: ((1, 2), 1)})
    with pytest.raises(RunError) as e:
        merge.check_shards(dirs)
    assert f"a different k: 0 in {dirs[0]!r}; 1 in {dirs[1]};" in str(e.value), e.value


def test_example_paths_are_quoted_when_one_could_read_as_two(tmp_path):
    """The "e.g." paths of the data summary, the report's data rows and a folder's refusal
    (text.paths_shown): "e.g. d/a, b.jpg: not a JPEG" read as two files, and "(e.g. 5, x.png =
    0, x.png)" as four; a path holding the joiner or the ": " before a reason is quoted too.
    Ordinary paths as they were."""
    from hubensemble.data.folder import _empty_error
    from hubensemble.data.task import Split, Task
    from hubensemble.report.datarows import accounting_rows, decoding_rows
    from hubensemble.text import paths_shown

    assert paths_shown(["d/a.jpg", "d/b.jpg"], " = ") == "d/a.jpg = d/b.jpg"
    assert paths_shown(["d/a, b.jpg", "d/c.jpg"], " = ") == "'d/a, b.jpg' = 'd/c.jpg'"
    assert paths_shown(["d/a = b.jpg", "d/c.jpg"], " = ") == "'d/a = b.jpg' = 'd/c.jpg'"
    assert paths_shown(["d/a: b.jpg"], then=": ") == "'d/a: b.jpg'"
    assert paths_shown(["d/a:b.jpg", "d/x\ny"], then=": ") == "d/a:b.jpg, d/x\\ny"
    assert paths_shown(["d/x\ny"], escape=False) == "d/x\ny"
    # A copy's class follows its path outside the quotes: the quoted text is the file.
    assert paths_shown(["d/a.png", "d/b, c.png"], " = ", notes=["cat", "dog"]) == \
        "'d/a.png' (cat) = 'd/b, c.png' (dog)"
    assert paths_shown(["d/a.png", "d/b.png"], " = ", notes=["cat", "dog"]) == \
        "d/a.png (cat) = d/b.png (dog)"
    assert paths_shown(["d/a (1).png"], notes=["cat"]) == "'d/a (1).png' (cat)"
    with pytest.raises(ValueError, match="1 note"):
        paths_shown(["d/a.png", "d/b.png"], notes=["cat"])

    said = str(_empty_error("d", [("d/cat/a, b.jpg", "not an image")]))
    assert "unreadable, e.g. 'd/cat/a, b.jpg': not an image;" in said, said
    plain = str(_empty_error("d", [("d/cat/a.jpg", "not an image")]))
    assert "e.g. d/cat/a.jpg: not an image;" in plain, plain
    images = np.zeros((4, 2, 2, 3), np.uint8)
    task = Task(name="d", source="folder:/d (class folders)", class_names=["cat", "dog"],
                train=Split(images, np.array([0, 1, 0, 1]),
                            paths=["/d/cat/3.png", "/d/dog/0, x.png", "/d/cat/4.png",
                                   "/d/dog/5.png"]), files=4,
                ignored=["/d/.hid, den", "/d/run, 2"], oriented=[("/d/cat/o, 1.jpg", 6)],
                turned=[("/d/cat/t, 1.tif", 8)],
                skipped=[("/d/cat/a, b.jpg", "not an image")])
    task.hubensemble_folders = lambda: ["/d/run, 2"]  # the folder's own test reads run.json
    summary = task.summary()
    for words in ("ignored (e.g. '/d/.hid, den')", "(e.g. '/d/run, 2': move them out)",
                  "(e.g. '/d/cat/o, 1.jpg': 6)", "(e.g. '/d/cat/t, 1.tif': 8)",
                  # the four images are one picture in two classes
                  "different labels (e.g. '/d/cat/3.png' (cat) = '/d/dog/0, x.png' (dog))"):
        assert words in summary, (words, summary)
    record = json.loads(json.dumps(task.to_json()))  # run.json's data.task, via JSON
    conflict = dict(accounting_rows(record))["exact duplicates"]
    assert conflict.endswith("(e.g. 'cat/3.png' (cat) = 'dog/0, x.png' (dog))"), conflict
    # A run.json of an older version holds "name (class)" texts: shown as they are.
    record["duplicates"]["conflicting_examples"] = [["/d/cat/3.png (cat)", "/d/dog/0.png (dog)"]]
    conflict = dict(accounting_rows(record))["exact duplicates"]
    assert conflict.endswith("(e.g. cat/3.png (cat) = dog/0.png (dog))"), conflict
    record["duplicates"] = {"copies": 1, "groups": 1, "examples": [["/d/5, x.png", "/d/0.png"]],
                            "conflicting_labels": 1,
                            "conflicting_examples": [[["/d/5, x.png", "cat"],
                                                      ["/d/0.png", "dog"]]]}
    rows = "\n".join(cell for row in accounting_rows(record) + decoding_rows(record)
                     for cell in row)
    for words in ("e.g. 'cat/a, b.jpg': not an image", "(e.g. '.hid, den')",
                  "(e.g. 'run, 2': move them out)", "(e.g. 'cat/o, 1.jpg': 6)",
                  "(e.g. 'cat/t, 1.tif': 8)", "(e.g. '5, x.png' = '0.png')",
                  "(e.g. '5, x.png' (cat) = '0.png' (dog))"):
        assert words in rows, (words, rows)
