"""data/validate.py's refusals say the way on after what is wrong (the sentence before it is
quoted by other tests as it is)."""

import numpy as np
import pytest

from hubensemble.data import Split, Task, load_task
from hubensemble.data.validate import validate_task
from hubensemble.errors import DataError


def _one_class_task(source):
    rng = np.random.default_rng(0)
    return Task(name="oneclass", source=source, class_names=["0"],
                train=Split(rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8),
                            np.zeros(8, np.int64)))


@pytest.mark.parametrize("source, way_on", [
    ("arrays", "; pass data whose labels name at least 2 classes: a Task's training labels "
     "(y) must hold 2 or more distinct class indices, class_names one name per class"),
    ("npz:/data/one.npz (arrays x, y)", "; fix /data/one.npz: its labels must name at least "
     "2 classes (each label a class index, class_names one name per class), or pass data "
     "that has them"),
    ("tfds:mnist:3.0.1 (train)", "; pass a data set (or split, or --label-key) whose labels "
     "name at least 2 classes")])
def test_a_task_of_one_class_says_what_to_pass_or_fix(source, way_on):
    """"task 'oneclass' has 1 class (['0']); classification needs at least 2" said no way on.
    The sentence stays as it was (tests/test_data*.py quote it) and the way on for the
    data's kind follows. Fails before: the message ended after "at least 2"."""
    with pytest.raises(DataError) as refused:
        validate_task(_one_class_task(source))
    assert str(refused.value) == (
        "task 'oneclass' has 1 class (['0']); classification needs at least 2" + way_on)


def test_a_folder_whose_label_fn_leaves_one_class_names_the_folder(tmp_path):
    """A folder's classes merged into one by label_fn: the loaded task is refused naming
    the folder to put each class's images in. Fails before: no way on."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(
                tmp_path / "d" / name / f"{i}.png")
    with pytest.raises(DataError) as refused:
        load_task(f"folder:{tmp_path / 'd'}", val_fraction=0.0, test_fraction=0.0,
                  label_fn=lambda y: (np.zeros_like(y), ["all"]))
    said = str(refused.value)
    assert said.startswith("task 'd' has 1 class (['all']); classification needs at least 2; "
                           f"put each class's images in {tmp_path / 'd'}/<class name>/"), said
