"""evaluate on an export whose files are broken (a variables file gone) names that first, as
predict does, with the command that repairs it, before the data it would score ("pass --data
SPEC"), before TensorFlow on the command line and from Python alike."""
import json
import os

import pytest

from evaluatefakes import refused_before_tensorflow
from hubensemble.errors import RunError
from hubensemble.text import shell


@pytest.fixture
def broken_export(tmp_path):
    """(run folder, export folder): a real SavedModel with a serving_default signature
    exported outside its run (`export --out served`), its metadata naming the run and its
    data, then `rm variables/variables.index`."""
    from conftest import export_quietly, make_tiny_model

    run, served = tmp_path / "my run", tmp_path / "served"
    export_quietly(make_tiny_model(seed=0), str(served))
    (served / "assets").mkdir(exist_ok=True)
    (served / "assets" / "hubensemble.json").write_text(json.dumps({
        "format": "hubensemble-export", "class_names": [str(i) for i in range(8)],
        "num_classes": 8, "run": {"path": str(run)},
        "task": {"source": "sklearn:digits", "spec": "sklearn:digits"}}))
    (served / "variables" / "variables.index").unlink()
    return run, served


def test_a_broken_export_is_named_first_with_its_repair_before_the_data_demand(broken_export):
    """`rm served/variables/variables.index` then `evaluate --model served` said "served is
    not inside a run directory that records its data; pass --data SPEC"; only with --data
    was the broken export told (after TensorFlow). It is told first now, with predict's
    repair command (`formats.load_saved_model`'s way on), from Python with and without data,
    and on the command line before TensorFlow. Fails before: the DataError "pass --data"."""
    from hubensemble.evaluate import check_evaluation_data, load_evaluation_task
    from hubensemble.formats import load_saved_model
    from hubensemble.lockwords import command_line

    run, served = broken_export
    repair = f"export it again with `hubensemble export --run {shell(run)} --out {served}`"
    with command_line():
        with pytest.raises(RunError) as predicts:  # predict's load: the reference
            load_saved_model(served)
        for data in (None, "sklearn:digits"):
            with pytest.raises(RunError) as refused:
                check_evaluation_data(served, data)
            said = str(refused.value)
            assert said.startswith(f"{served} could not be loaded as a SavedModel (its "
                                   "variables are missing: no variables/variables.index"), said
            assert said.endswith(f"; {repair}") and str(predicts.value).endswith(
                f"; {repair}"), (said, predicts.value)
    with pytest.raises(RunError, match="variables are missing"):
        load_evaluation_task(served)  # from Python, before any data is looked for
    with command_line():
        refused_before_tensorflow((["evaluate", "--model", served], said))


def test_an_export_outside_its_run_takes_the_data_of_the_run_its_metadata_names(tmp_path):
    """`export --run R --out served` then `evaluate --model served` said "pass --data SPEC",
    though the metadata names R, which records the data. It takes R's data now when R
    records the export's own data fingerprint, loaded as for RUN/export (`Run.task`); of
    other data (R fit again since), or a run that is gone, it asks for --data as before.
    Fails before: the DataError "pass --data SPEC"."""
    from evaluatefakes import fake_export
    from hubensemble.dataargs import DataArgs
    from hubensemble.errors import DataError
    from hubensemble.evaluate import check_evaluation_data, load_evaluation_task
    from hubensemble.rundir import Run

    args = DataArgs(spec="sklearn:digits")
    task = args.load()
    (tmp_path / "my run").mkdir()
    run = Run(tmp_path / "my run")
    run.attach_task(task, args)
    served = fake_export(tmp_path / "served", names=[str(i) for i in range(10)])
    meta = json.loads((served / "assets" / "hubensemble.json").read_text())

    def made(fingerprint, path=tmp_path / "my run"):
        (served / "assets" / "hubensemble.json").write_text(json.dumps({
            **meta, "run": {"path": str(path)},
            "task": {"source": "sklearn:digits", "spec": "sklearn:digits",
                     "fingerprint": fingerprint}}))

    made(task.fingerprint)
    found, recorded = check_evaluation_data(served)
    assert os.path.samefile(found.path, tmp_path / "my run"), found.path
    assert recorded["task"]["fingerprint"] == task.fingerprint
    loaded = load_evaluation_task(served, split="test")
    assert loaded.fingerprint == task.fingerprint
    for fingerprint, path in (("other", tmp_path / "my run"),
                              (task.fingerprint, tmp_path / "gone")):
        made(fingerprint, path)
        with pytest.raises(DataError, match="pass data=SPEC: its metadata says it was made "
                                            "from sklearn:digits"):
            check_evaluation_data(served)


def test_evaluate_out_inside_the_data_of_the_run_an_outside_export_names_is_refused(
        tmp_path, capsys):
    """The data of the run an export outside it names is the data evaluate reads, so an
    --out inside its folder is refused as for RUN/export (it would be read with the data).
    Fails before: no refusal of that folder (the --data demand came after the check)."""
    from evaluatefakes import fake_export
    from hubensemble.cli import main

    imgs, run = tmp_path / "imgs", tmp_path / "run"
    (imgs / "a").mkdir(parents=True)
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": f"folder:{imgs}"}, "task": {"fingerprint": "f"}}}))
    served = fake_export(tmp_path / "served")
    meta = json.loads((served / "assets" / "hubensemble.json").read_text())
    (served / "assets" / "hubensemble.json").write_text(json.dumps({
        **meta, "run": {"path": str(run)}, "task": {"fingerprint": "f"}}))
    out = imgs / "e.json"
    assert main(["evaluate", "-q", "--model", str(served), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"error: --out {out} is inside the data folder {imgs} (the data of the run "
            f"{run}, folder:{imgs})") in err, err
    assert not out.exists()


def test_a_damaged_saved_model_pb_is_named_first_with_its_repair(broken_export, tmp_path):
    """A saved_model.pb that does not parse (cut short by a copy that stopped, or other
    bytes) was not named before evaluate's "pass --data SPEC" (`check_serving_signature`
    read it as nothing to say), and predict named it only after TensorFlow's import, in
    TensorFlow's "Wire format was corrupt". Both name it now, first, from its bytes, with
    the command that writes the export again, before TensorFlow on the command line; the
    words are those `formats.load_saved_model` says in Python (the reference). Fails
    before: the DataError "pass --data", and predict imported TensorFlow."""
    from PIL import Image

    from hubensemble.evaluate import check_evaluation_data
    from hubensemble.formats import load_saved_model
    from hubensemble.lockwords import command_line

    run, served = broken_export
    Image.new("RGB", (4, 4)).save(tmp_path / "one.png")
    pb = served / "saved_model.pb"
    whole = pb.read_bytes()
    repair = f"export it again with `hubensemble export --run {shell(run)} --out {served}`"
    for data, what in ((whole[:len(whole) // 2], f"does not parse as a SavedModel "
                        f"({len(whole) // 2:,} bytes: cut short, or damaged)"),
                       (b"", "holds nothing (0 bytes)")):
        pb.write_bytes(data)
        said = f"{served} could not be loaded as a SavedModel ({pb} {what}); {repair}"
        with command_line():
            with pytest.raises(RunError) as loads:
                load_saved_model(served)
            assert str(loads.value) == said
            with pytest.raises(RunError) as refused:
                check_evaluation_data(served, None)
            assert str(refused.value) == said
            refused_before_tensorflow((["evaluate", "--model", served], said),
                                      (["predict", "--model", served, tmp_path / "one.png"],
                                       said))


def test_predict_names_a_missing_variables_file_before_tensorflow(broken_export, tmp_path):
    """`rm served/variables/variables.index` (or a data shard) then `predict --model served
    IMAGE`, or `export --add-warmup served`, imported TensorFlow and tried the load before
    it said so: the files say it (`modulefiles.saved_model_files_missing`, in
    `formats.check_saved_model_files`), in the words of the load from Python (the
    reference), with the repair. Fails before: TensorFlow imported."""
    from PIL import Image

    from hubensemble.formats import load_saved_model
    from hubensemble.lockwords import command_line

    run, served = broken_export
    Image.new("RGB", (4, 4)).save(tmp_path / "one.png")
    with command_line(), pytest.raises(RunError) as loads:
        load_saved_model(served)
    assert "no variables/variables.index" in str(loads.value)
    refused_before_tensorflow((["predict", "--model", served, tmp_path / "one.png"],
                               loads.value), (["export", "--add-warmup", served], loads.value))


def test_an_export_outside_its_run_says_whose_data_and_which_images_trained_it(tmp_path):
    """`export --run R --out served`, then `evaluate --model served` scored R's data (its
    metadata names R) without a word of whose data it was, and `heldout.not_held_out`
    looked for a run in served's parent folder alone: scored images that trained the
    export went uncounted (None, no note). The task's source names R, and the images are
    counted from R's record, as for R/export (the reference). Fails before: None counted,
    no run named."""
    from evaluatefakes import fake_export
    from hubensemble.data.task import Task
    from hubensemble.dataargs import DataArgs
    from hubensemble.evaluate import load_evaluation_task
    from hubensemble.heldout import not_held_out
    from hubensemble.rundir import Run

    args = DataArgs(spec="sklearn:digits")
    task = args.load()
    run = Run(tmp_path / "my run")
    run.path.mkdir()
    run.attach_task(task, args)
    names = [str(i) for i in range(10)]
    inside = fake_export(run.path / "export", names=names)
    served = fake_export(tmp_path / "served", names=names)
    for folder in (inside, served):
        meta = json.loads((folder / "assets" / "hubensemble.json").read_text())
        (folder / "assets" / "hubensemble.json").write_text(json.dumps({
            **meta, "run": {"path": str(run.path)},
            "task": {"source": "sklearn:digits", "spec": "sklearn:digits",
                     "fingerprint": task.fingerprint}}))
    trained = Task(name="t", source="test", class_names=task.class_names,
                   train=task.train, test=task.train)  # scores the export's training images
    own = not_held_out(inside, trained)
    assert own["train"] == own["images"] > 0, own
    assert not_held_out(served, trained) == own  # named from its metadata
    loaded = load_evaluation_task(served, split="test")
    assert loaded.source.endswith(
        f"; the data of the run {run.path}, which the export's metadata names (the export "
        "is outside it)"), loaded.source
    assert "the data of the run" not in load_evaluation_task(inside, split="test").source


def test_an_export_outside_its_run_names_whose_data_on_screen(tmp_path):
    """`evaluate --model served` (an export outside its run R, scored on R's data: its
    metadata names R) printed "scored: the test split, 797 examples; not scored: …": R was
    named only in evaluation.json's task.source. The scored line names R as the source does;
    for R/export (its own run, the reference) the line is as it was. Fails before: no run on
    the line."""
    from evaluatefakes import fake_export
    from hubensemble.dataargs import DataArgs
    from hubensemble.evaluate import format_evaluation, load_evaluation_task
    from hubensemble.heldout import not_held_out
    from hubensemble.rundir import Run

    args = DataArgs(spec="sklearn:digits")
    task = args.load()
    run = Run(tmp_path / "my run")
    run.path.mkdir()
    run.attach_task(task, args)
    lines = {}
    for folder in (run.path / "export", tmp_path / "served"):
        fake_export(folder, names=[str(i) for i in range(10)])
        meta = json.loads((folder / "assets" / "hubensemble.json").read_text())
        (folder / "assets" / "hubensemble.json").write_text(json.dumps({
            **meta, "run": {"path": str(run.path)},
            "task": {"source": "sklearn:digits", "spec": "sklearn:digits",
                     "fingerprint": task.fingerprint}}))
        loaded = load_evaluation_task(folder, split="test")
        # What evaluate_model records of them (the export itself never loads here).
        result = {"model": str(folder), "split": "test", "n": len(loaded.test),
                  "same_data_as_export": True, "not_held_out": not_held_out(folder, loaded),
                  "task": {"source": loaded.source, "unscored": {
                      "train": len(task.train), "val": len(task.val)}}}
        lines[folder.name] = format_evaluation(result).splitlines()[1]
    unscored = (f"not scored: train {len(task.train)}, val {len(task.val)} (the data the "
                "export was made on: they trained and chose it)")
    assert lines["export"] == f"scored: the test split, {len(task.test)} examples; {unscored}"
    assert lines["served"] == (
        f"scored: the test split of the data of the run {run.path}, which the export's "
        f"metadata names (the export is outside it), {len(task.test)} examples; {unscored}")
