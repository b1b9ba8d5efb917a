"""evaluate's refusals that files alone decide, said before TensorFlow's import: a split the
data lacks (an npz's member listing, run.json's sizes) and a class of a train/ val/ test/
folder the export does not know. Each in the words of the refusal after the load (the
reference, computed here in-process), and the command line's in a child process that has
not imported TensorFlow."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from evaluatefakes import fake_export, refused_before_tensorflow
from hubensemble.errors import DataError


def pngs(folder, n, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")


def test_a_split_or_class_the_data_lacks_is_refused_before_tensorflow(tmp_path):
    """`evaluate --data npz:T --split train` of an archive of x_test alone, `evaluate --data
    npz:D` (the test split) of one without x_test, `evaluate --data folder:F` of a train/
    val/ test/ folder with a class the export does not know, and `evaluate --model
    RUN/export` of a run whose data has no test split were refused only after TensorFlow's
    import (and, but for the first two, every image read). Now before it: the first, the
    folder's and the run's in the words of the refusal after the load (the references);
    the second naming the archive, the split and the way on (the load's named neither the
    flag's split alone nor storing x_test). Fails before: TensorFlow loaded."""
    from hubensemble.classmatch import class_index
    from hubensemble.data import load_task
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import check_evaluation_data, load_evaluation_task
    from hubensemble.lockwords import command_line
    from hubensemble.rundir import DataArgs, Run

    rng = np.random.default_rng(0)
    model = fake_export(tmp_path / "export")
    x = rng.integers(0, 255, (12, 4, 4, 3), dtype=np.uint8)
    alone, no_test = tmp_path / "alone.npz", tmp_path / "no_test.npz"
    np.savez(alone, x_test=x[:6], y_test=np.arange(6) % 3, class_names=np.array(["a", "b", "c"]))
    np.savez(no_test, x_train=x[:9], y_train=np.arange(9) % 3, x_val=x[9:], y_val=np.arange(3),
             class_names=np.array(["a", "b", "c"]))
    folder = tmp_path / "shots"
    for split in ("train", "val", "test"):
        for name in ("a", "b", "x"):
            pngs(folder / split / name, 2, rng)
    with command_line():
        with pytest.raises(DataError) as one_set:
            load_test_set(f"npz:{alone}").split("train")
        with pytest.raises(DataError) as unknown:
            class_index(["a", "b", "c"], load_test_set(f"folder:{folder}"))
    assert "'x'" in str(unknown.value)
    # The run's own data: an npz without x_test, recorded as fit records it.
    run = tmp_path / "run"
    Run(run).attach_task(load_task(f"npz:{no_test}"), DataArgs(spec=f"npz:{no_test}"))
    own = fake_export(run / "export")
    with command_line(), pytest.raises(DataError) as loaded:
        load_evaluation_task(own, None, split="test")
    assert str(loaded.value).endswith("score one it has: --split val"), loaded.value
    with command_line(), pytest.raises(DataError) as listed:
        check_evaluation_data(model, f"npz:{no_test}", split="test")
    said = str(listed.value)
    assert said == (f"npz:{no_test} stores no test split (x_test, y_test), and an npz's test "
                    "split is never split off x_train, so evaluate has no test split to "
                    "score: score one it has (--split val: its x_val), or store x_test and "
                    "y_test in no_test.npz"), said
    # From Python: the same refusal from the listing, in its keywords, before any array.
    with pytest.raises(DataError, match=r"score one it has \(split='val': its x_val\)"):
        load_evaluation_task(model, f"npz:{no_test}", split="test")
    refused_before_tensorflow(
        (["evaluate", "--model", model, "--data", f"npz:{alone}", "--split", "train"],
         one_set.value),
        (["evaluate", "--model", model, "--data", f"npz:{no_test}"], said),
        (["evaluate", "--model", model, "--data", f"folder:{folder}"], unknown.value),
        (["evaluate", "--model", own], loaded.value))
    # What the load takes passes the checks: the test split of each, a folder of the
    # export's classes.
    assert check_evaluation_data(model, f"npz:{alone}", split="test") == (None, None)
    assert check_evaluation_data(model, f"npz:{no_test}", split="val") == (None, None)
    assert check_evaluation_data(own, None, split="val")[0] is not None
    for split in ("train", "val", "test"):
        os.rename(folder / split / "x", folder / split / "c")
    assert check_evaluation_data(model, f"folder:{folder}", split="test") == (None, None)


def test_an_npz_named_by_label_index_for_an_export_of_named_classes_is_refused_before_tf(
        tmp_path):
    """`evaluate --data npz:T` of an archive without class_names (its classes "0", "1", …,
    named by label index) for an export of named classes was refused after TensorFlow's
    import and the archive's images, though its label members say it. Now before, in the
    words of the check after the load (the reference: class_index on the loaded test set,
    which tells to store class_names); an export of index names passes. Fails before:
    TensorFlow loaded."""
    from hubensemble.classmatch import class_index
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    model = fake_export(tmp_path / "export")
    npz = tmp_path / "t.npz"
    x = np.random.default_rng(1).integers(0, 255, (6, 4, 4, 3), dtype=np.uint8)
    np.savez(npz, x_test=x, y_test=np.array([0, 2, 5, 0, 2, 5]))  # used values: 0, 2, 5
    with command_line(), pytest.raises(DataError) as loaded:
        class_index(["a", "b", "c"], load_test_set(f"npz:{npz}"))
    assert "named by label index" in str(loaded.value)
    refused_before_tensorflow((["evaluate", "--model", model, "--data", f"npz:{npz}"],
                               loaded.value))
    indexed = fake_export(tmp_path / "indexed", names=[str(i) for i in range(6)])
    assert check_evaluation_data(indexed, f"npz:{npz}") == (None, None)


def test_an_exports_run_of_data_given_in_python_says_to_give_the_data_before_tf(tmp_path):
    """`evaluate --model RUN/export` of a run whose data was given in Python (run.json data
    args reloadable false) imported TensorFlow, then said `Run.task`'s "run the stage from
    Python with task=…" to a command line. Now before TensorFlow, with the command that
    scores it (--data SPEC), and from Python evaluate_model's call with the task. Fails
    before: TensorFlow loaded, "run the stage from Python"."""
    from hubensemble.errors import RunError
    from hubensemble.evaluationtask import load_evaluation_task

    run = tmp_path / "run"
    model = fake_export(run / "export")
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": "npz:/x.npz", "reloadable": False},
        "task": {"fingerprint": "f", "name": "x", "sizes": {"train": 4, "val": 2, "test": 2}}}}))
    said = (f"the data of the export's run {run} was given in Python (an in-memory task or a "
            "label function that cannot be imported again), so evaluate cannot load it from "
            "its run.json; ")
    refused_before_tensorflow((["evaluate", "--model", model], f"{said}run `hubensemble "
                               f"evaluate --model {model} --data SPEC` with the data to score"))
    with pytest.raises(RunError) as python:
        load_evaluation_task(model)
    assert str(python.value) == (f"{said}call evaluate_model(model_dir={str(model)!r}, "
                                 "task=TASK) with the data to score"), python.value


def test_a_test_class_train_lacks_and_the_export_does_not_know_is_told_as_the_exports(
        tmp_path):
    """evaluate of a train/ val/ test/ folder whose test/ has a class 'x' that train/ lacks
    was told "every class needs training images (add train/x/ or remove the folder)"; adding
    train/x/ only led to a second refusal, that the model does not know 'x' (a new user,
    stop 66). The export's refusal comes first, from the command too, before TensorFlow. A
    test/ class the export knows is still the loader's refusal."""
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    rng = np.random.default_rng(1)
    model = fake_export(tmp_path / "export")
    folder = tmp_path / "shots"
    for split, names in (("train", "ab"), ("val", "ab"), ("test", "abx")):
        for name in names:
            pngs(folder / split / name, 2, rng)
    with command_line(), pytest.raises(DataError) as refused:
        check_evaluation_data(model, f"folder:{folder}", split="test")
    said = str(refused.value)
    assert "'x'" in said and "does not know" in said and "training images" not in said, said
    # The command's data check came first.
    refused_before_tensorflow((["evaluate", "--model", model, "--data", f"folder:{folder}"],
                               said))
    os.rename(folder / "test" / "x", folder / "test" / "c")  # known to the export
    assert check_evaluation_data(model, f"folder:{folder}", split="test") == (None, None)
