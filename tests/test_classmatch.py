"""classmatch: matching a test set's classes to an export's outputs by name (`class_index`)."""

from types import SimpleNamespace

import pytest

from hubensemble.classmatch import class_index
from hubensemble.errors import DataError


def test_the_model_classes_a_refusal_lists_are_quoted_when_one_holds_a_comma():
    """The refusal of a class the model does not know listed the model's classes joined by
    ", " alone: "the model predicts 3 classes (ice, snow, rain, hail)" read as 4 for the
    model's 'ice, snow'. Now every one is quoted when one holds a comma (`text.names_listed`,
    the data summary's rule), and a list of plain names stays as it was."""
    task = SimpleNamespace(class_names=["sleet"], name="weather", source="folder:/w")
    with pytest.raises(DataError) as e:
        class_index(["ice, snow", "rain", "hail"], task)
    assert "the model predicts 3 classes ('ice, snow', 'rain', 'hail')" in str(e.value)
    with pytest.raises(DataError) as e:
        class_index([f"c{i}" for i in range(14)], task)
    assert "predicts 14 classes (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, …)" in str(
        e.value)
    with pytest.raises(DataError) as e:  # one shown with a comma: those shown all quoted
        class_index(["a", "b", " padded"], task)
    assert "(\'a\', \'b\', \' padded\')" in str(e.value)
