"""Class names that are the same number ('01' and '1'): warned of as names that differ only
by case are, and never a rename to leading zeros that would merge them
(`hubensemble.data.classnotes`)."""

import numpy as np
from PIL import Image

from hubensemble.data import load_task
from hubensemble.data.classnotes import (numbered_classes_note, same_number_note,
                                         same_number_pairs)


def test_the_same_number_is_warned_of_and_no_rename_merges_classes():
    """numbered_classes_note(['01', '1', '10', '2']) advised "rename the folders with leading
    zeros (02/ for 2/)", which turns 1/ into 01/, another class. Fails before: no
    same_number_note, and the rename advised."""
    names = ["01", "1", "10", "2"]
    note = numbered_classes_note(names)
    assert "class id 2 is folder 10/, not 2/" in note, note
    assert "rename the folders with leading zeros" not in note
    assert "leading zeros would merge folders of the same number" in note
    assert same_number_pairs(["7", "a", "007", "07", "8"]) == [("7", "007"), ("7", "07")]
    assert same_number_note(["01", "1", "10", "2"]) == (
        "class names '01' and '1' are the same number: they are two classes here, but "
        "anything that reads the class names as numbers (a spreadsheet, int() in a script, "
        "folders renamed with leading zeros) makes 01 and 1 one; if they are one class merge "
        "their images, if two rename one so that the names are different numbers or not "
        "numbers")
    assert same_number_note(["007", "7", "08", "8"]).startswith(
        "class names '007' and '7' are the same number (and 1 other pair of classes)")
    assert same_number_note(["1", "2", "10", "a1", "A1"]) is None
    # Without such a pair the rename is still advised, and merges nothing.
    assert "rename the folders with leading zeros (02/ for 2/)" in numbered_classes_note(
        ["1", "10", "2"])


def test_a_folder_of_one_number_twice_warns_at_load(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for name in ("01", "1", "2"):
        (tmp_path / "d" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                tmp_path / "d" / name / f"{i}.png")
    caplog.set_level("WARNING", logger="hubensemble.data")
    assert load_task(f"folder:{tmp_path / 'd'}").class_names == ["01", "1", "2"]
    said = [r.getMessage() for r in caplog.records]
    assert any("class names '01' and '1' are the same number" in s for s in said), said
    assert not any("rename the folders with leading zeros" in s for s in said), said
