"""tools/vtab.py: the 19 VTAB-1k task definitions, their labels and splits, and the runner."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import cpu_bounded

ROOT = Path(__file__).resolve().parents[1]


def _load_vtab():
    # tools/ is not a package: load the script as a module (registered first, as dataclasses
    # look their module up in sys.modules).
    spec = importlib.util.spec_from_file_location("vtab_tool", ROOT / "tools" / "vtab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vtab = _load_vtab()

# The paper's Table 4 header (appendix C.2), in its order, under its three group headings.
PAPER_TABLE4 = {
    "natural": ["caltech101", "cifar100", "dtd", "flowers", "pets", "sun397", "svhn"],
    "specialised": ["camelyon", "eurosat", "resisc45", "retino"],
    "structured": ["clever.count", "clever.closest", "dmlab", "dsprites.xpos",
                   "dsprites.orient", "kitti", "smallnorb.azmth", "smallnorb.elev"],
}


# --------------------------------------------------------------------------- the table


def test_nineteen_tasks_grouped_and_named_as_in_the_paper():
    assert len(vtab.TASKS) == 19
    assert list(vtab.TASKS) == [n for g in vtab.GROUPS for n in PAPER_TABLE4[g]]
    for group, names in PAPER_TABLE4.items():
        assert [t.name for t in vtab.TASKS.values() if t.group == group] == names
    assert [len(PAPER_TABLE4[g]) for g in vtab.GROUPS] == [7, 4, 8]


def test_class_counts_match_the_tfds_features():
    """Tasks that read a tfds ClassLabel have exactly its classes (tfds metadata, offline)."""
    import tensorflow_datasets as tfds

    direct = {"label", "smallnorb_azimuth", "smallnorb_elevation"}
    checked = 0
    for task in vtab.TASKS.values():
        builder = tfds.builder(f"{task.tfds_spec}:{task.versions[-1]}", data_dir="/nonexistent")
        feature = builder.info.features[task.features[0]]
        if task.label_fn.__name__ in direct:
            assert feature.num_classes == task.num_classes, task.name
            checked += 1
    assert checked == 14
    # dsprites groups its 32 x positions and 40 orientations into 16 classes each.
    features = tfds.builder("dsprites:2.0.0", data_dir="/nonexistent").info.features
    assert features["label_x_position"].num_classes == 32
    assert features["label_orientation"].num_classes == 40


def test_tfds_build_default_versions_are_accepted():
    """`tfds build NAME` (the hint the runner prints) prepares a version the task accepts."""
    import fnmatch

    import tensorflow_datasets as tfds

    for task in vtab.TASKS.values():
        default = str(tfds.builder(task.tfds_spec, data_dir="/nonexistent").version)
        assert any(fnmatch.fnmatch(default, v) for v in task.versions), (task.name, default)


def test_task_adaptation_registry_keys():
    keys = {t.name: t.key for t in vtab.TASKS.values()}
    assert keys["clever.count"] == 'clevr(task="count_all")'
    assert keys["dsprites.xpos"] == \
        'dsprites(predicted_attribute="label_x_position",num_classes=16)'
    assert keys["kitti"] == 'kitti(task="closest_vehicle_distance")'
    assert keys["retino"] == 'diabetic_retinopathy(config="btgraham-300")'
    assert vtab.select_tasks(['clevr(task="count_all")', "clevr.closest"]) == [
        vtab.TASKS["clever.count"], vtab.TASKS["clever.closest"]]


# --------------------------------------------------------------------------- labels


def test_clevr_count_is_objects_minus_three():
    for n in range(3, 11):
        scene = {"objects": {"size": np.zeros(n, np.int64)}}
        assert vtab.clevr_count(scene) == n - 3
    assert vtab.TASKS["clever.count"].num_classes == 8  # 3..10 objects


@pytest.mark.parametrize("depths, expected", [
    ([12.0, 7.5], 0), ([8.0], 0), ([8.25, 30.0], 1), ([8.5], 1), ([8.75], 2), ([9.0], 2),
    ([9.25], 3), ([9.75, 11.0], 4), ([10.0], 4), ([10.5], 5), ([99.0], 5),
])
def test_clevr_closest_object_distance_bins(depths, expected):
    coords = np.array([[0.5, 0.5, d] for d in depths], np.float32)
    assert vtab.clevr_closest_distance({"objects": {"pixel_coords": coords}}) == expected


@pytest.mark.parametrize("types, z, expected", [
    ([0, 3], [12.0, 3.0], 1),          # a car at 12 m; the pedestrian nearer does not count
    ([3], [5.0], 3),                   # no vehicle
    ([2, 1], [25.0, 8.0], 0),          # truck 25 m, van 8 m: <= 8 m
    ([0, 0], [20.0, 40.0], 1),         # 20 m is in (8, 20]
    ([1], [20.5], 2),
    ([4, 5, 6, 7], [1.0, 2.0, 3.0, 4.0], 3),  # person sitting, cyclist, tram, misc
    ([], [], 3),
])
def test_kitti_closest_vehicle_distance_bins(types, z, expected):
    location = np.array([[1.0, 1.5, d] for d in z], np.float32).reshape(-1, 3)
    scene = {"objects": {"type": np.array(types, np.int64), "location": location}}
    assert vtab.kitti_closest_vehicle_distance(scene) == expected


def test_dsprites_positions_and_orientations_in_sixteen_classes():
    xs = [vtab.dsprites_x_position({"label_x_position": np.int64(x)}) for x in range(32)]
    assert xs == [x // 2 for x in range(32)]
    orient = [vtab.dsprites_orientation({"label_orientation": np.int64(o)}) for o in range(40)]
    # floor(o / 2.5) in integers: floor(2o / 5).
    assert orient == [(2 * o) // 5 for o in range(40)]
    assert orient[:6] == [0, 0, 0, 1, 1, 2] and orient[-1] == 15
    assert sorted(set(orient)) == list(range(16))


def test_smallnorb_labels_are_the_features():
    ex = {"label_azimuth": np.int64(17), "label_elevation": np.int64(8)}
    assert vtab.smallnorb_azimuth(ex) == 17 and vtab.smallnorb_elevation(ex) == 8


# --------------------------------------------------------------------------- splits


def test_vtab_1k_splits_follow_task_adaptation():
    splits = {name: vtab.vtab_splits(task) for name, task in vtab.TASKS.items()}
    official = {"train": "train[:800]", "val": "validation[:200]", "test": "test"}
    for name in ("dtd", "flowers", "sun397", "camelyon", "retino", "dmlab", "kitti"):
        assert splits[name] == official, name
    # val200 starts where task_adaptation's own val split starts: percent * N // 100.
    assert splits["caltech101"]["val"] == "train[2754:2954]"      # 90 % of 3,060
    assert splits["cifar100"]["val"] == "train[45000:45200]"      # 90 % of 50,000
    assert splits["pets"]["val"] == "train[2944:3144]"            # 80 % of 3,680
    assert splits["svhn"]["val"] == "train[65931:66131]"          # 90 % of 73,257
    for name in ("caltech101", "cifar100", "pets", "svhn"):
        assert splits[name]["test"] == "test"
    for name in ("clever.count", "clever.closest"):
        assert splits[name] == {"train": "train[:800]", "val": "train[63000:63200]",
                                "test": "validation"}
    assert splits["eurosat"] == {"train": "train[:800]", "val": "train[16200:16400]",
                                 "test": "train[21600:]"}         # 60 / 20 / 20 of 27,000
    assert splits["resisc45"]["val"] == "train[18900:19100]"
    assert splits["resisc45"]["test"] == "train[25200:]"          # of 31,500
    assert splits["dsprites.xpos"] == splits["dsprites.orient"] == {
        "train": "train[:800]", "val": "train[589824:590024]",
        "test": "train[663552:]"}                                 # 80 / 10 / 10 of 737,280
    assert splits["smallnorb.azmth"] == {"train": "train[:800]", "val": "test[:200]",
                                         "test": "test[50%:]"}
    # A prepared train split of another size moves the offsets with it.
    assert vtab.vtab_splits(vtab.TASKS["eurosat"], 30000) == {
        "train": "train[:800]", "val": "train[18000:18200]", "test": "train[24000:]"}


# --------------------------------------------------------------------------- selection, means


def test_select_tasks_by_name_alias_and_group_in_table_order():
    assert [t.name for t in vtab.select_tasks(["svhn", "caltech101"])] == ["caltech101", "svhn"]
    assert [t.name for t in vtab.select_tasks(["specialised"])] == PAPER_TABLE4["specialised"]
    # In any case: the table prints "Natural" (it was "unknown VTAB task(s): Natural").
    assert vtab.select_tasks(["Specialised"]) == vtab.select_tasks(["specialised"])
    assert vtab.select_tasks(["Specialized"]) == vtab.select_tasks(["specialised"])
    listed = vtab.format_list(vtab.select_tasks(["svhn"])).splitlines()  # --list --tasks svhn
    assert len(listed) == 2 and listed[1].startswith("svhn")
    assert [t.name for t in vtab.select_tasks(["SVHN", "CLEVR.count"])] == [
        "svhn", "clever.count"]
    with pytest.raises(Exception, match="unknown VTAB task.*nope.*caltech101.*smallnorb.elev"):
        vtab.select_tasks(["dtd", "nope"])


def test_tasks_given_as_a_comma_list_with_or_without_spaces():
    """`--tasks dtd,svhn` and `--tasks "dtd, svhn"` (the way other commands take lists) were
    "unknown VTAB task(s): dtd, svhn", naming the two known tasks as one unknown; a comma
    inside a task_adaptation registry string still belongs to it."""
    want = [vtab.TASKS["dtd"], vtab.TASKS["svhn"]]
    assert vtab.select_tasks(["dtd,svhn"]) == want
    assert vtab.select_tasks(["svhn, dtd"]) == want
    assert vtab.select_tasks(["dtd,", "svhn"]) == want
    assert vtab.select_tasks(['dsprites(predicted_attribute="label_x_position",num_classes=16)'
                              ',dtd']) == [vtab.TASKS["dtd"], vtab.TASKS["dsprites.xpos"]]
    with pytest.raises(Exception, match=r"unknown VTAB task: dtdd \(did you mean dtd\?\);"):
        vtab.select_tasks(["svhn,dtdd"])
    with pytest.raises(Exception, match=r"--tasks names no task \(got ' , '\)"):
        vtab.select_tasks([" , "])


def test_summary_means_over_finished_tasks():
    results = [
        {"name": "a", "group": "natural", "status": "ok", "ensemble": {"accuracy": 0.8},
         "best_single": {"accuracy": 0.7}},
        {"name": "b", "group": "natural", "status": "ok", "ensemble": {"accuracy": 0.6},
         "best_single": {"accuracy": 0.6}},
        {"name": "c", "group": "structured", "status": "ok", "ensemble": {"accuracy": 0.3},
         "best_single": {"accuracy": 0.1}},
        {"name": "d", "group": "structured", "status": "failed", "error": "x"},
    ]
    s = vtab.summarise(results)
    assert s["means"]["ensemble"] == pytest.approx(
        {"vtab": (0.8 + 0.6 + 0.3) / 3, "natural": 0.7, "specialised": None,
         "structured": 0.3})
    assert s["means"]["best_single"]["vtab"] == pytest.approx((0.7 + 0.6 + 0.1) / 3)
    assert s["counts"] == {"vtab": [3, 4], "natural": [2, 2], "specialised": [0, 0],
                           "structured": [1, 2]}


def test_list_and_unknown_task(capsys):
    assert vtab.main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 20 and out[1].startswith("caltech101") and "clevr:3.*.*" in out[12]
    assert vtab.main(["--catalogue", "c.yaml", "--out", "o", "--tasks", "dtd", "cifar"]) == 2
    err = capsys.readouterr().err
    assert "unknown VTAB task: cifar" in err and "cifar100" in err
    # The name it most likely mistypes first, as hubensemble's commands say it.
    assert vtab.main(["--catalogue", "c.yaml", "--out", "o", "--tasks", "dtdd", "Natral"]) == 2
    assert ("unknown VTAB tasks: dtdd (did you mean dtd?), Natral (did you mean natural?); "
            "choose from caltech101, ") in capsys.readouterr().err


def test_max_k_without_threshold_or_greedy_is_a_usage_error(tmp_path, capsys):
    # As in `hubensemble fit`: with the default top-K rule it was silently ignored.
    with pytest.raises(SystemExit) as stop:
        vtab.main(["--catalogue", "c.yaml", "--out", str(tmp_path / "o"), "--max-k", "4"])
    assert stop.value.code == 2 and ("argument --max-k: only applies with --threshold or "
                                     "--greedy") in capsys.readouterr().err


def test_a_negative_min_per_class_is_a_usage_error(tmp_path, capsys):
    """A new-user check: --min-per-class -1 started the run (fit refuses it as a usage
    error: min_per_class (--min-per-class) must be an integer >= 0)."""
    with pytest.raises(SystemExit) as stop:
        vtab.main(["--catalogue", "c.yaml", "--out", str(tmp_path / "o"), "--min-per-class",
                   "-1", "--tasks", "svhn"])
    assert stop.value.code == 2
    assert "argument --min-per-class: must be an integer >= 0, got '-1'" in \
        capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # As hubensemble's own integers: argparse said "invalid int value: 'abc'", and
    # "--test-limit must be >= 1" without the value typed.
    for flag, value, said in (("--test-limit", "0", ">= 1, got '0'"),
                              ("--test-limit", "abc", ">= 1, got 'abc'"),
                              ("--min-per-class", "2.5", ">= 0, got '2.5'")):
        with pytest.raises(SystemExit) as stop:
            vtab.main(["--catalogue", "c.yaml", "--out", str(tmp_path / "o"), flag, value])
        assert stop.value.code == 2
        assert f"argument {flag}: must be an integer {said}" in capsys.readouterr().err


def test_what_every_task_needs_is_refused_once_before_any_task(tmp_path, capsys):
    """A user check: a missing catalogue file and a --data-dir that does not exist failed
    every task alike, one FAILED row each after loading TensorFlow (the data dir's read "not
    prepared in DIR; prepare it once with `tfds build …`"), exit 1; an --out that is a file
    was a NotADirectoryError traceback. Each is one line now, exit 2, nothing written."""
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: m0, handle: /nowhere/m0}\n")
    data = tmp_path / "tfds"
    data.mkdir()
    afile = tmp_path / "afile"
    afile.write_text("")
    out = tmp_path / "o"
    for argv, said in [
            (["--catalogue", str(tmp_path / "nope.yaml"), "--out", str(out), "--data-dir",
              str(data)], "nope.yaml: cannot read the catalogue"),
            (["--catalogue", str(catalogue), "--out", str(out), "--data-dir",
              str(tmp_path / "missing")],
             f"--data-dir {tmp_path / 'missing'} does not exist: it is the tensorflow_datasets"),
            (["--catalogue", str(catalogue), "--out", str(out), "--data-dir", str(afile)],
             "is a file, not a folder: it is the tensorflow_datasets folder"),
            (["--catalogue", str(catalogue), "--out", str(afile / "o"), "--data-dir",
              str(data)], f"{afile} is a file, not a folder (in {afile / 'o'}); pass another "
                          "--out folder")]:
        assert vtab.main(argv + ["--tasks", "svhn", "dtd", "-q"]) == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.startswith("vtab: error: ") and err.count("\n") == 1, err
        assert not out.exists()
    # Before TensorFlow loads: a mistyped catalogue path cost ~5 s of TensorFlow start-up.
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import vtab; "
              "code = vtab.main(sys.argv[2:]); print(code, 'tensorflow' in sys.modules)")
    done = subprocess.run(cpu_bounded(
        [sys.executable, "-c", script, Path(vtab.__file__).parent, "--catalogue",
         tmp_path / "nope.yaml", "--out", out, "--data-dir", data, "--tasks", "svhn"], 30),
        capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert "nope.yaml: cannot read the catalogue" in done.stderr


# --------------------------------------------------------------------------- loading (mocked tfds)


# tfds' random mock data gives each field of a Sequence feature its own length (e.g. 22
# object types for 23 locations), so the tasks labelled from `objects` are read from
# hand-made scenes below instead.
NESTED = ("clever.count", "clever.closest", "kitti")


@pytest.mark.parametrize("name", [n for n in PAPER_TABLE4["natural"] + PAPER_TABLE4[
    "specialised"] + PAPER_TABLE4["structured"] if n not in NESTED])
def test_every_task_reads_its_mocked_tfds_data(name):
    import tensorflow_datasets as tfds

    task = vtab.TASKS[name]
    with tfds.testing.mock_data(num_examples=6):
        data, info = vtab.load_vtab_task(task, "/nonexistent", test_limit=4, min_per_class=0)
    assert [len(data.train), len(data.val), len(data.test)] == [6, 6, 4]
    assert data.num_classes == task.num_classes == len(set(data.class_names))
    for im in data.train.images:
        assert im.dtype == np.uint8 and im.ndim == 3 and im.shape[-1] == 3
    assert (data.synthetic, data.flip) == (task.synthetic, task.flip)
    assert info["splits"] == vtab.vtab_splits(task)
    assert info["tfds"].startswith(task.tfds_spec + ":")


def _scenes(spec):
    """A tfds as_dataset replacement yielding hand-made examples per data set name."""
    import tensorflow as tf

    def as_dataset(builder, *args, **kwargs):
        examples = spec[builder.name]
        signature = tf.nest.map_structure(
            lambda v: tf.TensorSpec([None] * np.ndim(v), tf.as_dtype(np.asarray(v).dtype)),
            examples[0])
        return tf.data.Dataset.from_generator(lambda: iter(examples),
                                              output_signature=signature)

    return as_dataset


def _image(v=1, shape=(8, 8, 3)):
    return np.full(shape, v, np.uint8)


def test_loader_labels_nested_scenes_like_task_adaptation():
    """clevr and kitti examples (nested `objects` features) through the real tfds reading
    path; tfds' own random mock data cannot be used here (its Sequence features get
    unrelated lengths per field, e.g. 22 object types for 23 locations)."""
    import tensorflow_datasets as tfds

    depths = [7.0, 8.25, 8.75, 9.25, 9.75, 10.5]
    clevr = [{"image": _image(), "objects": {
        "size": np.zeros(n, np.int64),
        "pixel_coords": np.array([[1.0, 1.0, depths[i % 6] + j] for j in range(n)],
                                 np.float32)}} for i, n in enumerate([3, 4, 5, 6, 7, 8, 9, 10] * 2)]
    kitti = [{"image": _image(), "objects": {
        "type": np.array(t, np.int64),
        "location": np.array([[0.0, 1.0, d] for d in z], np.float32).reshape(-1, 3)}}
        for t, z in [([0], [5.0]), ([1, 3], [12.0, 1.0]), ([2], [30.0]), ([3], [4.0])] * 2]
    with tfds.testing.mock_data(as_dataset_fn=_scenes({"clevr": clevr, "kitti": kitti})):
        count, info = vtab.load_vtab_task(vtab.TASKS["clever.count"], "/nonexistent")
        closest, _ = vtab.load_vtab_task(vtab.TASKS["clever.closest"], "/nonexistent",
                                         min_per_class=0)
        kit, kinfo = vtab.load_vtab_task(vtab.TASKS["kitti"], "/nonexistent")
    assert count.train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7] * 2
    assert count.class_names[0] == "3 objects" and count.num_classes == 8
    assert count.synthetic and count.flip
    assert info["splits"]["test"] == "validation" and len(count.test) == 16
    assert closest.train.labels.tolist() == [i % 6 for i in range(16)]
    assert kit.train.labels.tolist() == [0, 1, 2, 3] * 2
    assert not kit.synthetic and kinfo["tfds"] == "kitti:3.1.0"


def test_loader_dsprites_pixels_and_failing_labels():
    import tensorflow_datasets as tfds

    dots = np.zeros((4, 4, 1), np.uint8)
    dots[1, 2] = 1
    dsprites = [{"image": dots, "label_x_position": np.int64(x)} for x in range(32)]
    clevr = [{"image": _image(), "objects": {"size": np.zeros(12, np.int64)}}] * 4
    with tfds.testing.mock_data(as_dataset_fn=_scenes({"dsprites": dsprites,
                                                       "clevr": clevr})):
        task, _ = vtab.load_vtab_task(vtab.TASKS["dsprites.xpos"], "/nonexistent")
        with pytest.raises(Exception, match=r"clever.count: 4 train examples map to no "
                                            r"class of 0..7 \(labels \[9\]\)"):
            vtab.load_vtab_task(vtab.TASKS["clever.count"], "/nonexistent")
    # 0/1 masks become black/white RGB, as task_adaptation's `* 255`.
    assert task.train.images.shape == (32, 4, 4, 3)
    assert sorted(np.unique(task.train.images).tolist()) == [0, 255]
    assert (task.train.images[:, 1, 2] == 255).all()
    assert task.train.labels.tolist() == [x // 2 for x in range(32)]
    assert not task.flip and task.synthetic


def _tiny_task(builder_class, num_classes, sizes, tmp_path, monkeypatch):
    """load_vtab_task's (Task, info) of a tests/tfds_builders builder prepared into
    tmp_path/data, as dtd is defined (train[:N] / validation[:M] / test), with the 800 / 200
    of VTAB-1k cut to `sizes` (N, M); named as the builder's tfds name."""
    import dataclasses

    builder = builder_class(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare()
    task = dataclasses.replace(vtab.TASKS["dtd"], name=builder.name, tfds_name=builder.name,
                               versions=("1.0.0",), num_classes=num_classes, min_per_class=1,
                               class_names=None)
    monkeypatch.setattr(vtab, "TRAIN_EXAMPLES", sizes[0])
    monkeypatch.setattr(vtab, "VAL_EXAMPLES", sizes[1])
    return vtab.load_vtab_task(task, str(tmp_path / "data"))


def test_image_files_in_a_task_s_data_set_are_the_pixels_serve_bytes_sees(
        tmp_path, monkeypatch):
    """A VTAB data set of image files (caltech101, pets, flowers store their JPEGs as they
    are) is read by the decode policy, as the `tfds:` loader reads it (data.tfds): the runner
    decoded with tfds' own decode, so its models were fitted on other pixels of the files
    serve_bytes later decodes (JPEG's fast IDCT, a PNG's alpha dropped) and a GIF stopped the
    task. A tiny builder (tests/tfds_builders) prepared here (no network)."""
    import tfds_builders as module

    from hubensemble.data import decode_image_bytes
    from hubensemble.data.sniff import TFDS_DECODED_WORDS

    data, info = _tiny_task(module.VtabPhotos, 3, (6, 3), tmp_path, monkeypatch)
    # The reference: hubensemble's serving decode of each file (examples are matched by
    # their pixels: tfds orders them by a hash of their keys).
    served = {decode_image_bytes(module.photo_file(i)).tobytes(): i for i in range(12)}
    assert len(served) == 12
    for split, first in (("train", 0), ("val", 6), ("test", 9)):
        got = getattr(data, split)
        seen = {served.get(np.asarray(im).tobytes()): int(label)
                for im, label in zip(got.images, got.labels)}
        assert seen == {i: i % 3 for i in range(first, first + len(got))}, split
    assert data.class_names == ["a", "b", "c"]
    assert f"its 'image' {TFDS_DECODED_WORDS}" in data.source
    assert info["sizes"] == {"train": 6, "val": 3, "test": 3}


def test_images_shrunk_to_1024_px_are_counted_in_the_task_s_record(tmp_path, monkeypatch):
    """An image file above 1024 px on its shorter side is shrunk to it by the decode policy.
    The runner's Task said so in its source only, so run.json's data.task.shrunk and the
    report's row counted 0; Task.shrunk now holds it, named as `tfds:` data names it
    ("train[i]": no file), so the summary, the record and the report count it once."""
    import tfds_builders as module

    data, _ = _tiny_task(module.LargePhotos, 2, (4, 2), tmp_path, monkeypatch)
    # The reference: the pixels' own sizes (the shrunk ones have a shorter side of 1024).
    big = [f"{s}[{i}]" for s in ("train", "val", "test")
           for i, im in enumerate(getattr(data, s).images) if min(im.shape[:2]) == 1024]
    assert [name for name, _ in data.shrunk] == big and len(big) == 2, data.shrunk
    h, w = module.LARGE[1]
    assert data.shrunk[0][1] == (h, w) and big[0].startswith("train[")
    record = data.to_json()["shrunk"]
    assert record["count"] == 2 and record["splits"] == {"train": 1, "val": 0, "test": 1}
    assert (f"; 2 images above 1024 px on their shorter side shrunk to it (train 1, val 0, "
            f"test 1; e.g. {big[0]}: {h}x{w})") in data.summary()
    assert "shrunk" not in data.source


def test_orientation_tags_of_a_task_s_image_files_are_counted(tmp_path, monkeypatch):
    """The runner's Task counted no orientation tag of a data set's JPEGs (decode_stored
    looked for none), where a folder of the same files counts them: they are counted and
    named as `tfds:` data names them ("train[i]"), in the summary and the record. Fails
    before: data.oriented == []."""
    import tfds_builders as module

    from hubensemble.data.decode import decode_bytes

    data, _ = _tiny_task(module.OrientedPhotos, 2, (4, 2), tmp_path, monkeypatch)
    tags = {decode_bytes(module.oriented_file(i)).pixels.tobytes(): module.ORIENTED.get(i)
            for i in range(8)}
    want = sorted((f"{s}[{i}]", tags[im.tobytes()]) for s in ("train", "val", "test")
                  for i, im in enumerate(getattr(data, s).images) if tags[im.tobytes()])
    assert len(want) == 3 and sorted(data.oriented) == want, data.oriented
    assert data.to_json()["oriented"]["count"] == 3
    name, tag = data.oriented[0]
    assert (f"; 3 images with an EXIF or XMP orientation tag (e.g. {name}: {tag}) used as "
            "stored") in data.summary()


# --------------------------------------------------------------------------- the runner


@pytest.fixture(scope="module")
def catalogue(module_factory, tmp_path_factory):
    paths = [module_factory(f"vtab{i}", seed=i, width=6 + 2 * i) for i in range(2)]
    yaml = tmp_path_factory.mktemp("vtabcat") / "cat.yaml"
    yaml.write_text("modules:\n" + "".join(f"  - {{name: m{i}, handle: {p}}}\n"
                                           for i, p in enumerate(paths)))
    return str(yaml)


#: The runner's options of both tests below, but for --tasks.
RUNNER_OPTIONS = ["--profile", "quick", "--top-k", "1", "--min-per-class", "0",
                  # One trial a task (the default sweep's 4 cost 4 fine-tunings and up to
                  # 4 exported members a task; the runner's table, means and reuse, and what
                  # the terminal shows, are the same).
                  "--sweep", "combined", "--budget", "1"]


@pytest.fixture(scope="module")
def camelyon_in_its_own_process(catalogue, tmp_path_factory):
    """(the finished process, its folder: o/ its --out, tfds/ its --data-dir) of the runner
    on camelyon in a process of its own (tfds' mock data, 48 examples a split): what the
    terminal shows is the process's; the runner test reuses its finished task (one fit
    fewer)."""
    tmp = tmp_path_factory.mktemp("vtab_process")
    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(root / 'tools')!r})\n"
        "import tensorflow_datasets as tfds\n"
        "import vtab\n"
        "with tfds.testing.mock_data(num_examples=48):\n"
        "    sys.exit(vtab.main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(root), "HUBENSEMBLE_CACHE_DIR": str(tmp / "e")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    (tmp / "tfds").mkdir()
    done = subprocess.run(cpu_bounded(
        [sys.executable, "-c", script, "--catalogue", catalogue, "--out", tmp / "o",
         "--data-dir", tmp / "tfds", *RUNNER_OPTIONS, "--tasks", "camelyon"], 600),
        capture_output=True, text=True, env=env)
    return done, tmp


@pytest.mark.slow
def test_runner_table_means_failures_and_reuse(catalogue, camelyon_in_its_own_process,
                                               tmp_path, monkeypatch, capsys,
                                               figures_not_drawn):
    # Each task's fit writes its report, whose figures no check here reads: not drawn
    # (`figures_not_drawn`); the process of `camelyon_in_its_own_process` draws its own.
    import dataclasses
    import shutil

    import tensorflow_datasets as tfds

    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "emb"))
    # A task whose data set tfds does not know: it must fail alone.
    broken = dataclasses.replace(vtab.TASKS["dmlab"], name="broken",
                                 tfds_name="no_such_data_set")
    monkeypatch.setitem(vtab.TASKS, "broken", broken)
    # camelyon as the other process finished it: reused (its options, data folder and
    # mocked data are these), the other tasks fitted here.
    done, ran = camelyon_in_its_own_process
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "vtab"
    shutil.copytree(ran / "o", out)
    # tfds' mock labels are random: a class may get a single example (--min-per-class 0).
    argv = ["--catalogue", catalogue, "--out", str(out), "--data-dir", str(ran / "tfds"),
            *RUNNER_OPTIONS, "-q",
            # One task per group (a fit each): the means over several tasks of a group are
            # test_summary_means_over_finished_tasks'.
            "--tasks", "svhn", "camelyon", "broken", "smallnorb.elev"]
    with tfds.testing.mock_data(num_examples=48):
        assert vtab.main(argv) == 1
    printed = capsys.readouterr().out
    report = json.loads((out / "vtab.json").read_text())
    rows = {r["name"]: r for r in report["tasks"]}
    assert list(rows) == ["svhn", "camelyon", "smallnorb.elev", "broken"]
    assert rows["broken"]["status"] == "failed" and "no_such_data_set" in rows["broken"]["error"]
    assert "Traceback" in (out / "broken" / "vtab_error.txt").read_text()
    ok = [r for r in report["tasks"] if r["status"] == "ok"]
    assert len(ok) == 3
    assert [r["reused"] for r in ok] == [False, True, False]  # camelyon's: the other process's
    for r in ok:
        run = Path(r["run_dir"])
        ensemble = json.loads((run / "ensemble.json").read_text())
        assert r["ensemble"] == ensemble["test"]["ensemble"]
        assert r["members"] == len(ensemble["members"]) >= 1
        assert len(np.load(run / "labels" / "test.npy")) == r["sizes"]["test"] == 48
        assert (run / "export" / "saved_model.pb").exists()
    assert rows["smallnorb.elev"]["splits"]["test"] == "test[50%:]"
    assert rows["svhn"]["splits"]["val"] == "train[65931:66131]"

    # Means recomputed here from the per-task accuracies.
    acc = {r["name"]: r["ensemble"]["accuracy"] for r in ok}
    expect = {"vtab": np.mean(list(acc.values())), "natural": acc["svhn"],
              "specialised": acc["camelyon"],
              "structured": acc["smallnorb.elev"]}
    assert report["summary"]["means"]["ensemble"] == pytest.approx(expect)
    assert report["summary"]["counts"]["structured"] == [1, 2]
    line = next(x for x in printed.splitlines() if x.startswith("ensemble "))
    assert line.split()[1:] == [f"{100 * expect[k]:.1f}" for k in
                                ("vtab", "natural", "specialised", "structured")]
    assert "FAILED" in printed and "broken" in printed
    md = (out / "vtab.md").read_text()
    assert f"| ensemble | {100 * expect['vtab']:.1f} |" in md and "## Failures" in md

    # Again: finished tasks are reused without reading data or fitting.
    with tfds.testing.mock_data(num_examples=48):
        assert vtab.main(argv[:-4] + ["svhn", "smallnorb.elev"]) == 0
    again = json.loads((out / "vtab.json").read_text())
    assert [r["reused"] for r in again["tasks"]] == [True, True]
    assert [r["ensemble"] for r in again["tasks"]] == [
        rows["svhn"]["ensemble"], rows["smallnorb.elev"]["ensemble"]]
    assert "(reused)" in capsys.readouterr().out
    assert os.path.exists(out / "svhn" / "log.txt")


def test_sigterm_stops_the_runner_as_ctrl_c_does(tmp_path, monkeypatch, capsys):
    import signal
    import time

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's time limit
        time.sleep(30)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the runner")

    monkeypatch.setattr(vtab, "run_vtab", terminated)
    before = signal.getsignal(signal.SIGTERM)
    catalogue = tmp_path / "c.yaml"  # what the runner checks before TensorFlow loads
    catalogue.write_text("modules:\n  - {name: m0, handle: /nowhere/m0}\n")
    argv = ["--catalogue", str(catalogue), "--out", str(tmp_path), "--tasks", "svhn",
            "--data-dir", str(tmp_path)]
    assert vtab.main(argv) == 143
    assert ("vtab: terminated (SIGTERM); run the same command again to resume"
            in capsys.readouterr().err)
    assert signal.getsignal(signal.SIGTERM) == before

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vtab, "run_vtab", interrupted)
    assert vtab.main(argv) == 130
    assert "vtab: interrupted; run the same command" in capsys.readouterr().err


@pytest.mark.parametrize("signum, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_while_the_runner_parses_its_arguments_ends_it_quietly(signum, code):
    """Ctrl-C (or SIGTERM) in the runner's first half second, while it loads its modules and
    parses its arguments, printed a Python traceback (a KeyboardInterrupt inside an import;
    SIGTERM: killed, -15): it ends quietly with 130 / 143, as `hubensemble` does there. The
    signal is sent from inside the argument parsing (its parse_args), not after a delay."""
    import signal

    script = (
        "import os, runpy, signal, sys\n"
        "from hubensemble.arguments import Parser\n"
        "parse = Parser.parse_args\n"
        "def stopped(self, *args, **kwargs):\n"
        f"    os.kill(os.getpid(), signal.{signum})\n"
        "    return parse(self, *args, **kwargs)\n"
        "Parser.parse_args = stopped\n"
        f"sys.argv = [{str(ROOT / 'tools' / 'vtab.py')!r}, '--list']\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (code, "", ""), done.stderr
    assert getattr(signal, signum) + 128 == code


@pytest.mark.slow
def test_the_terminal_shows_what_fit_shows_not_every_log_record(camelyon_in_its_own_process):
    """A new-user check: in its own process (no pytest handlers on the root logger) the
    runner printed every INFO record of every fit ("INFO:hubensemble.pipeline:rank:
    starting") and trial failures with their tracebacks: the first absl import had called
    logging.basicConfig(). Now stderr holds what `fit`'s holds: the runner's own lines,
    warnings and the progress bars. (TensorFlow's C++ start-up notices, also gone, cannot be
    checked here: this script imports tfds, and TensorFlow with it, before the runner.)"""
    done, tmp_path = camelyon_in_its_own_process
    assert done.returncode == 0, done.stderr[-2000:]
    assert "INFO:" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "vtab: [1/1] camelyon (specialised)" in done.stderr
    assert "rank: done" in (tmp_path / "o" / "camelyon" / "log.txt").read_text()  # logged


def test_the_data_summary_is_said_once(camelyon_in_its_own_process):
    """A new-user check: the task's data summary (a paragraph of counts, classes and
    duplicates) was printed twice in a row, once by the runner ("vtab: camelyon: Task …") and
    once by the fit it runs, which says it (and logs it) as `hubensemble fit` does."""
    done, _ = camelyon_in_its_own_process
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("Task 'camelyon' from VTAB-1k camelyon") == 1, done.stderr[-3000:]


def test_a_stopped_run_s_tables_name_the_tasks_it_did_not_reach(tmp_path, monkeypatch):
    """OUT/vtab.md and vtab.json are written after every task: a run of dtd and camelyon
    stopped (Ctrl-C, a time limit) during camelyon left tables that read "tasks done 1/1",
    a finished run of one task. They now count the tasks asked for and name those not run."""
    def run_task(task, *args, **kwargs):  # dtd finishes; camelyon is stopped
        if task.name == "camelyon":
            raise KeyboardInterrupt
        return {"name": task.name, "group": task.group, "status": "ok",
                "num_classes": task.num_classes, "ensemble": {"accuracy": 0.5},
                "best_single": {"accuracy": 0.25}, "members": 1}

    monkeypatch.setattr(vtab, "run_task", run_task)
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: m0, handle: /nowhere/m0}\n")
    with pytest.raises(KeyboardInterrupt):
        vtab.run_vtab(str(catalogue), tmp_path / "o", tasks=["dtd", "camelyon"],
                      data_dir=str(tmp_path), progress=False)
    report = json.loads((tmp_path / "o" / "vtab.json").read_text())
    assert report["summary"]["counts"] == {"vtab": [1, 2], "natural": [1, 1],
                                           "specialised": [0, 1], "structured": [0, 0]}
    md = (tmp_path / "o" / "vtab.md").read_text()
    assert "| tasks done | 1/2 | 1/1 | 0/1 | 0/0 |" in md
    assert "Not run: camelyon (the run stopped before it; run the same command again" in md
    table = vtab.format_table(report)
    assert "tasks done          1/2          1/1          0/1" in table
    assert "not run: camelyon (the run stopped before it; run the same command again" in table


_TWO_VERSIONS = []


def _two_versions(module):
    """tests/tfds_builders' VtabPhotos at version 1.0.0 that also reads 0.9.0 (as kitti
    reads 3.1.0 to 3.3.0), defined once per process (tfds registers a class by its name)."""
    import tensorflow_datasets as tfds

    if not _TWO_VERSIONS:
        class VtabPhotosTwoVersions(module.VtabPhotos):
            __module__ = module.__name__  # tfds reads its package's resources
            SUPPORTED_VERSIONS = [tfds.core.Version("0.9.0")]

        _TWO_VERSIONS.append(VtabPhotosTwoVersions)
    return _TWO_VERSIONS[0]


def test_an_unprepared_data_set_is_said_once_and_a_half_copied_folder_is_named(
        tmp_path, caplog, monkeypatch):
    """`--tasks kitti` on data that is not prepared printed tfds' (absl's) "Variant folder
    …/kitti/3.1.0 has no dataset_info.json" six times (three versions, two opens) before
    the runner's own "not prepared" error. They are kept off the log; a version folder that
    exists without the file (a copy or a build that did not finish), where tfds' words were
    the clue, is named once: in the error, or, when another version is prepared, in one
    warning."""
    import dataclasses
    import logging
    import re

    import tfds_builders as module

    from hubensemble.errors import DataError

    def variant_lines():
        return [r for r in caplog.records if "Variant folder" in r.getMessage()]

    data = tmp_path / "data"
    data.mkdir()
    caplog.set_level(logging.WARNING)
    with pytest.raises(DataError, match=r"^kitti: tfds kitti \(version 3\.1\.0 or 3\.2\.0 or "
                                        r"3\.3\.0\) is not prepared in .*`$"):
        vtab.load_vtab_task(vtab.TASKS["kitti"], str(data))
    assert variant_lines() == []
    half = data / "kitti" / "3.2.0"
    half.mkdir(parents=True)
    (half / "kitti-train.tfrecord-00000-of-00001").write_bytes(b"half")
    with pytest.raises(DataError, match=rf"`; {re.escape(str(half))} exists but has no "
                                        r"dataset_info\.json: a copy or a build that did not "
                                        r"finish \(copy the whole folder again, or rebuild "
                                        r"it\)$"):
        vtab.load_vtab_task(vtab.TASKS["kitti"], str(data))
    assert variant_lines() == []
    # A half-copied version tried before the prepared one: one warning, the prepared one read.
    builder = _two_versions(module)(data_dir=str(data))
    builder.download_and_prepare()
    name = builder.name
    old = data / name / "0.9.0"
    old.mkdir()
    (old / f"{name}-train.tfrecord-00000-of-00001").write_bytes(b"half")
    task = dataclasses.replace(vtab.TASKS["dtd"], name=name, tfds_name=name,
                               versions=("0.9.0", "1.0.0"), num_classes=3, min_per_class=1,
                               class_names=None)
    monkeypatch.setattr(vtab, "TRAIN_EXAMPLES", 6)
    monkeypatch.setattr(vtab, "VAL_EXAMPLES", 3)
    caplog.clear()
    for _ in range(2):
        got, info = vtab.load_vtab_task(task, str(data))
        assert info["tfds"] == f"{name}:1.0.0" and len(got.train) == 6
    said = [r.getMessage() for r in caplog.records if str(old) in r.getMessage()]
    assert said == [f"{name}: tfds folder {old} has no dataset_info.json (a copy or a "
                    f"build that did not finish?); using {data / name / '1.0.0'}"]
    assert variant_lines() == []


def test_a_task_labelled_by_its_label_feature_records_the_tfds_spec_that_reads_it_again(
        tmp_path, monkeypatch):
    """The report said "data spec `vtab:camelyon`", which `evaluate --data` refused as an
    unknown scheme. A task whose labels are its data set's `label` feature now records the
    `tfds:` spec, split strings and data dir it was read from (reloadable), checked against
    the runner's own read: the `tfds:` loader gives the same task (fingerprint) and
    evaluate's read of the spec (`load_test_set`) the same test images and labels. A task
    labelled from other features keeps `vtab:NAME`, whose refusal says what it is."""
    import dataclasses

    import tfds_builders as module

    from hubensemble.data import load_task, load_test_set
    from hubensemble.errors import DataError

    data = tmp_path / "data"
    module.VtabPhotos(data_dir=str(data)).download_and_prepare()
    task = dataclasses.replace(vtab.TASKS["camelyon"], name="vtab_photos",
                               tfds_name="vtab_photos", versions=("1.0.0",), num_classes=3,
                               min_per_class=1)
    monkeypatch.setattr(vtab, "TRAIN_EXAMPLES", 6)
    monkeypatch.setattr(vtab, "VAL_EXAMPLES", 3)
    for limit in (None, 2):
        read, info = vtab.load_vtab_task(task, str(data), test_limit=limit)
        args = vtab.vtab_data_args(task, info, str(data), test_limit=limit)
        assert (args.spec, args.reloadable, args.label_key) == (
            "tfds:vtab_photos:1.0.0", True, "label")
        assert args.splits == {"train": "train[:6]", "val": "validation[:3]",
                               "test": "test" if limit is None else "test[:2]"}
        again = args.load()
        assert again.fingerprint == read.fingerprint and again.class_names == read.class_names
        assert (again.synthetic, again.flip) == (read.synthetic, read.flip)
    # evaluate's read of a tfds: spec takes VTAB-1k's default splits (its test: "test"),
    # whose train[:800] a builder of 12 examples has not: cut to its size, as the runner's.
    import hubensemble.data.tfds as tfds_loader

    monkeypatch.setattr(tfds_loader, "VTAB_SPLITS", {
        "train": "train[:6]", "val": "validation[:3]", "test": "test"})
    test = load_test_set(args.spec, data_dir=args.data_dir)
    full, _ = vtab.load_vtab_task(task, str(data))
    assert test.class_names == full.class_names
    assert np.array_equal(test.test.labels, full.test.labels)
    assert all(np.array_equal(a, b) for a, b in zip(test.test.images, full.test.images))
    # Labels the tfds: loader cannot make (kitti's from its objects): vtab:NAME, not
    # reloadable, and a refusal that says what it is and what to do.
    kitti = vtab.vtab_data_args(vtab.TASKS["kitti"], {"splits": info["splits"],
                                                      "min_per_class": 2,
                                                      "tfds": "kitti:3.2.0"}, str(data))
    assert (kitti.spec, kitti.reloadable, kitti.label_key) == ("vtab:kitti", False, "objects")
    # smallnorb's labels are a feature as stored (tfds: with it as label_key); dsprites'
    # are grouped values of one (vtab:), as is a --test-limit of a test split that is a slice.
    norb = {"splits": vtab.vtab_splits(vtab.TASKS["smallnorb.elev"]), "min_per_class": 2,
            "tfds": "smallnorb:2.0.0"}
    got = vtab.vtab_data_args(vtab.TASKS["smallnorb.elev"], norb, str(data))
    assert (got.spec, got.reloadable, got.label_key, got.splits["test"]) == (
        "tfds:smallnorb:2.0.0", True, "label_elevation", "test[50%:]")
    assert vtab.vtab_data_args(vtab.TASKS["smallnorb.elev"], norb, test_limit=5).spec == (
        "vtab:smallnorb.elev")
    assert vtab.vtab_data_args(vtab.TASKS["dsprites.xpos"], dict(
        norb, tfds="dsprites:2.0.1")).spec == "vtab:dsprites.xpos"
    with pytest.raises(DataError, match=r"^unknown data scheme 'vtab' in 'vtab:kitti' "
                                        r"\(vtab:kitti is how tools/vtab\.py names a VTAB-1k "
                                        r"task .*`vtab\.load_vtab_task\(vtab\.TASKS\['kitti'\], "
                                        r"DATA_DIR\)\[0\]`"):
        load_task("vtab:kitti")


def test_a_relative_data_dir_and_out_are_the_working_folders_recorded_absolute(
        tmp_path, monkeypatch):
    """`--data-dir tfds --out o` from a folder: vtab.json recorded "data_dir": "tfds" and each
    task's "run_dir" as typed ("o/svhn"), which name nothing read from another folder (and
    `~/x` was recorded unexpanded). Both are the working folder's when the runner starts, and
    the runner passes them on absolute (a task sees its data folder so). Fails before: the
    record said "tfds" and "o/svhn"."""
    seen = []

    def failing(task, catalogue, out, *, data_dir=None, **kwargs):
        seen.append((str(out), data_dir))
        raise RuntimeError("no fit here")  # recorded as a failed task, with its run_dir

    monkeypatch.setattr(vtab, "run_task", failing)
    (tmp_path / "tfds").mkdir()
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: m0, handle: /nowhere/m0}\n")
    monkeypatch.chdir(tmp_path)
    report = vtab.run_vtab(str(catalogue), "o", tasks=["svhn"], data_dir="tfds",
                           progress=False)
    recorded = json.loads((tmp_path / "o" / "vtab.json").read_text())
    assert recorded["data_dir"] == report["data_dir"] == str(tmp_path / "tfds")
    assert recorded["tasks"][0]["run_dir"] == str(tmp_path / "o" / "svhn")
    assert seen == [(str(tmp_path / "o"), str(tmp_path / "tfds"))]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert vtab.run_vtab(str(catalogue), "o", tasks=["svhn"], data_dir="~/tfds",
                         progress=False)["data_dir"] == str(tmp_path / "tfds")


def test_a_missing_relative_data_dir_is_named_absolute_and_escaped(tmp_path, monkeypatch):
    # `--data-dir tfds` (a name with a byte that is not UTF-8) said "--data-dir tfds\udcff
    # does not exist": relative to what, and a lone surrogate on the terminal. Fails before:
    # the path was as typed.
    from hubensemble.errors import DataError

    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: m0, handle: /nowhere/m0}\n")
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"tf\xffds")
    with pytest.raises(DataError) as refused:
        vtab.check_inputs([str(catalogue)], tmp_path / "o", name)
    assert str(refused.value).startswith(
        f"--data-dir {tmp_path}{os.sep}tf\\xffds does not exist: it is the tensorflow_datasets"
        " folder"), refused.value
