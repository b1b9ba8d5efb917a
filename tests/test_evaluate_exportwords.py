"""The command a refusal of an export gives to write that export again (formats.export_command,
its one owner): its run, --out its folder unless it is the run's own, --student for a student
export; and the ways on that name the export command of a run (resume, TFLite, distill), each
naming the run and its folder. Files only but the distill case (a tiny SavedModel)."""
import json

import numpy as np
import pytest

from evaluatefakes import fake_export, refused_before_tensorflow
from hubensemble.errors import DataError, RunError
from hubensemble.text import shell


def _metadata(model, **fields):
    meta = json.loads((model / "assets" / "hubensemble.json").read_text())
    (model / "assets" / "hubensemble.json").write_text(json.dumps({**meta, **fields}))
    return model


def test_the_export_command_names_the_folder_unless_it_is_the_runs_own(tmp_path):
    """An export written with `export --out DIR` that cannot be used was told `hubensemble
    export --run R`, which writes R/export and leaves DIR as it was. The command names DIR
    (--out, out_dir=) unless it is R/export (R/export-student for a student export, with its
    --student MODULE); with no run named, RUN and the folder. Fails before: no --out."""
    from hubensemble.formats import check_saved_model_folder, export_command
    from hubensemble.lockwords import command_line

    run = tmp_path / "my run"
    ensemble = {"run": {"path": str(run)}}
    student = {**ensemble, "student": {"module": "small"}}
    served = tmp_path / "served"
    with command_line():
        assert export_command(ensemble, run / "export") == (
            f"`hubensemble export --run {shell(run)}`")
        assert export_command(ensemble, served) == (
            f"`hubensemble export --run {shell(run)} --out {served}`")
        assert export_command(student, run / "export-student") == (
            f"`hubensemble export --run {shell(run)} --student small`")
        assert export_command(student, served, flags="--format tflite") == (
            f"`hubensemble export --run {shell(run)} --student small --out {served} "
            "--format tflite`")
        for unnamed in ({}, {"run": {"path": ["x"]}}, {"run": str(run)}):
            assert export_command(unnamed, served) == (
                f"`hubensemble export --run RUN --out {served}`")
    assert export_command(ensemble, served) == (
        f"export_ensemble(run_dir={str(run)!r}, out_dir={str(served)!r})")
    assert export_command(student, run / "export-student") == (
        f"export_ensemble(run_dir={str(run)!r}, student='small')")
    # A refusal on the way: an export outside its run, its saved_model.pb gone.
    model = _metadata(fake_export(served), run={"path": str(run)})
    (model / "saved_model.pb").unlink()
    with command_line(), pytest.raises(RunError) as refused:
        check_saved_model_folder(model)
    assert str(refused.value) == (
        f"{model} is not a SavedModel folder (no saved_model.pb); export it again with "
        f"`hubensemble export --run {shell(run)} --out {served}`"), refused.value


def test_the_tflite_way_on_reads_the_run_as_the_export_command_does(tmp_path):
    """tflite_way_on read the run out of the export metadata by hand: a run path edited into
    a list raised TypeError from os.path.isdir, and without a run it said "and export
    again", naming no command. It reads it by `formats.exported_run` and gives the export
    command with RUN and the folder. Fails before: TypeError."""
    from hubensemble.export.tflite import tflite_way_on

    served = _metadata(fake_export(tmp_path / "served"), run={"path": ["x"]})
    said = tflite_way_on(["erfinv"], "none", tmp_path / "served-tflite")
    assert said.endswith(
        "remove their candidate folders in RUN/candidates, then run_ensemble(run_dir=RUN) "
        f"and export_ensemble(run_dir=RUN, out_dir={str(served)!r}, "
        "export_format='tflite')"), said


def test_fits_way_on_from_stage_commands_results_names_the_run_in_each_command(tmp_path):
    """fit on a folder holding stage commands' results told `hubensemble ensemble` and
    `hubensemble export` without the run (resume._go_on_from_rank), beside a tune command
    naming it. Each names it now (ensemble with the run's ensemble settings). Fails before:
    run_ensemble() and export_ensemble()."""
    from hubensemble.lockwords import command_line
    from hubensemble.resume import _go_on_from_rank
    from hubensemble.rundir import Run

    folder = tmp_path / "my run"
    folder.mkdir()
    (folder / "ensemble.json").write_text(json.dumps({"members": []}))
    run = Run(folder)
    for caller, ensemble, export in (
            (command_line, f"`hubensemble ensemble --run {shell(folder)}`",
             f"`hubensemble export --run {shell(folder)}`"),
            (None, f"run_ensemble(run_dir={str(folder)!r})",
             f"export_ensemble(run_dir={str(folder)!r})")):
        with (caller() if caller else _nothing()), pytest.raises(RunError) as refused:
            _go_on_from_rank(run, {}, {}, None, specs=None, cache_dir=None, progress=False)
        assert f", then {ensemble} and {export}), " in str(refused.value), refused.value


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_flat_folders_val_split_is_refused_from_python_before_its_images(tmp_path,
                                                                           monkeypatch):
    """load_evaluation_task(MODEL, "folder:FLAT", split="val") read every image to say the
    folder is one test set (the command line said it first since 138add5d). It says it
    before the load, in the same words; an export that may have been fit on the folder goes
    on to the load. Fails before: the load ran."""
    from hubensemble.data import specs
    from hubensemble.evaluationtask import load_evaluation_task
    from test_evaluate_before_tf import pngs

    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"
    for name in ("a", "b", "c"):
        pngs(flat / name, 3, rng)
    model = fake_export(tmp_path / "export")
    with pytest.raises(DataError) as loaded:
        specs.load_test_set(f"folder:{flat}").split("val")

    def no_load(*args, **kwargs):
        raise AssertionError("the images were loaded")

    monkeypatch.setattr(specs, "load_test_set", no_load)
    for split in ("val", "validation", "train"):
        with pytest.raises(DataError) as refused:
            load_evaluation_task(model, f"folder:{flat}", split=split, progress=False)
        assert str(refused.value) == str(loaded.value).replace(
            "val split", f"{'train' if split == 'train' else 'val'} split"), refused.value
    with pytest.raises(AssertionError, match="the images were loaded"):
        load_evaluation_task(model, f"folder:{flat}", split="test", progress=False)


def test_a_retrained_teacher_without_serve_members_gives_the_command_in_distill_json(tmp_path):
    """distill of a retrained teacher export without serve_members stored "… cannot be run
    one by one (export it again with this hubensemble)" in distill.json's members_missing
    and gap_note, naming no command. It names the command that exports the run again as
    the teacher was (--retrain-full; --out its folder, not RUN/export). Fails before: no
    command."""
    import tensorflow as tf

    from hubensemble.data import Split, Task
    from hubensemble.distillcompare import retrained_test
    from hubensemble.lockwords import command_line

    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    @tf.function(input_signature=[spec])
    def serving_default(images):  # [N, 3] of the images' mean colour
        return {"probabilities": tf.nn.softmax(tf.reduce_mean(images, axis=[1, 2]))}

    root = tf.train.Checkpoint()
    root.serving_default = serving_default
    export = tmp_path / "teacher"
    tf.saved_model.save(root, str(export), signatures={
        "serving_default": serving_default.get_concrete_function()})
    run = tmp_path / "RUN"
    (export / "assets").mkdir(exist_ok=True)
    (export / "assets" / "hubensemble.json").write_text(json.dumps({
        "format": "hubensemble-export", "class_names": ["a", "b", "c"], "num_classes": 3,
        "retrain_full": True, "run": {"path": str(run)},
        "members": [{"trial": "t0", "module": "m", "weight": 1.0}]}))
    images = (np.random.default_rng(0).random((6, 4, 4, 3)) * 255).astype(np.uint8)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images, labels=np.arange(6) % 3),
                test=Split(images=images, labels=np.arange(6) % 3))
    with command_line():
        result = retrained_test(tf.saved_model.load(str(export)), export, task, run_dir=run)
    assert result["members"] is None
    assert result["members_missing"] == (
        "the export has no serve_members signature, so its members cannot be run one by one "
        f"(export the run again with `hubensemble export --run {shell(run)} --out "
        f"{shell(export)} --retrain-full`)"), result["members_missing"]


def test_an_export_in_a_copied_runs_folder_is_exported_again_by_that_run(tmp_path):
    """`cp -r run1 run3`, run3/export/saved_model.pb cut short, then `evaluate --model
    run3/export` (predict alike) said `hubensemble export --run run1 --out run3/export`: the
    run its metadata records, not run3 whose own export it is. An export in a run's own folder
    (RUN/export, RUN/export-student beside run.json) is that run's; elsewhere the recorded run
    is named as before. Fails before: --run run1 --out run3/export."""
    from hubensemble.formats import check_saved_model_folder, export_command, exported_run
    from hubensemble.lockwords import command_line

    first, copy = tmp_path / "run1", tmp_path / "run 3"
    for run in (first, copy):
        run.mkdir()
        (run / "run.json").write_text("{}")
    ensemble = {"run": {"path": str(first)}}
    student = {**ensemble, "student": {"module": "small"}}
    with command_line():
        assert export_command(ensemble, copy / "export") == (
            f"`hubensemble export --run {shell(copy)}`")
        assert export_command(student, copy / "export-student", flags="--format tflite") == (
            f"`hubensemble export --run {shell(copy)} --student small --format tflite`")
        # Not its own folder (another name, or no run.json beside it): the recorded run.
        assert export_command(student, copy / "export") == (
            f"`hubensemble export --run {shell(first)} --student small --out "
            f"{shell(copy / 'export')}`")
        assert export_command(ensemble, tmp_path / "export") == (
            f"`hubensemble export --run {shell(first)} --out {tmp_path / 'export'}`")
    assert export_command(ensemble, copy / "export") == (
        f"export_ensemble(run_dir={str(copy)!r})")
    # The one reader of an export's run (tflite's way on asks it too), given the folder.
    assert exported_run(student, copy / "export-student") == str(copy)
    assert exported_run(student, copy / "export") == exported_run(student) == str(first)
    model = _metadata(fake_export(copy / "export"), **ensemble)
    (model / "saved_model.pb").unlink()
    with pytest.raises(RunError) as refused:
        check_saved_model_folder(model)
    assert str(refused.value).endswith(
        f"; export it again with export_ensemble(run_dir={str(copy)!r})"), refused.value
    (model / "saved_model.pb").write_bytes(b"\x12\xff" + bytes(98))  # cut short: 100 bytes
    with command_line():
        with pytest.raises(RunError) as cut:
            check_saved_model_folder(model)
    said = str(cut.value)
    assert said.endswith(f"; export it again with `hubensemble export --run {shell(copy)}`"), said
    refused_before_tensorflow((["evaluate", "--model", model], said),
                              (["predict", "--model", model, tmp_path / "a.png"], said))
