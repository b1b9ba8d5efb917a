"""Many classes of few images (200 classes of 3-5 images, one of 1): the refusal names the
way on, and the stratified split gives every class its examples and says what it cannot."""

import numpy as np
import pytest
from PIL import Image

from hubensemble.data import load_task
from hubensemble.errors import DataError


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    root = tmp_path_factory.mktemp("many") / "imgs"
    rng = np.random.default_rng(0)
    for c in range(200):
        (root / f"c{c:03d}").mkdir(parents=True)
        for i in range(3 + (c % 5 == 0) + (c % 7 == 0)):  # 3 to 5 images
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), np.uint8)).save(
                root / f"c{c:03d}" / f"{i}.png")
    (root / "lonely").mkdir()
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), np.uint8)).save(root / "lonely" / "0.png")
    return root


def test_a_class_of_one_image_among_200_is_refused_with_the_option_that_keeps_it(many):
    """The refusal said "add images, merge or drop the class", not --min-per-class, which
    keeps it (the VTAB runner's way for its one-example classes)."""
    with pytest.raises(DataError) as e:
        load_task(f"folder:{many}", progress=False)
    said = str(e.value)
    assert "'lonely' has 1" in said and "c0" not in said, said
    # fit(…, min_per_class=1) is no keyword of fit: its data_args'.
    assert said.endswith("or keep it with min_per_class=1 (load_task's, or fit's "
                         "data_args=DataArgs(…, min_per_class=1)); a class's one example "
                         "then counts as a kNN miss: it has no other to find"), said
    from hubensemble.lockwords import command_line

    with command_line(), pytest.raises(DataError) as e:  # the command line's words
        load_task(f"folder:{many}", progress=False)
    assert str(e.value).endswith("or keep it with --min-per-class 1; a class's one example "
                                 "then counts as a kNN miss: it has no other to find"), e.value
    task = load_task(f"folder:{many}", progress=False, min_per_class=1)
    assert task.num_classes == 201 and task.class_names[-1] == "lonely"
    files = {c: 3 + (int(c[1:]) % 5 == 0) + (int(c[1:]) % 7 == 0)
             for c in task.class_names if c != "lonely"}
    counts = {s: np.bincount(getattr(task, s).labels, minlength=201)
              for s in ("train", "val", "test")}
    for i, c in enumerate(task.class_names):
        n = files.get(c, 1)
        assert counts["train"][i] + counts["val"][i] + counts["test"][i] == n, c
        assert counts["train"][i] >= min(n, 2), c  # every class keeps training examples
        assert counts["val"][i] == (n >= 3), c  # one val example each but lonely's
    summary = task.summary()
    assert "no validation example of: lonely" in summary
    missing = int((counts["test"] == 0).sum())
    assert f"({missing} in all)" in summary and missing > 20  # a long list is cut, counted
