"""Counts in what hubensemble.data says take the singular for 1 (`text.counted`): "1 file"."""

import numpy as np
import pytest

from hubensemble.data import Split
from hubensemble.errors import DataError


def test_a_split_of_one_example_says_example_and_file():
    one = Split(np.zeros((1, 4, 5, 3), np.uint8), np.array([0]), paths=["/d/a/x.png"])
    assert repr(one) == "Split(1 example, images uint8 [1, 4, 5, 3], from 1 file)"
    two = Split(np.zeros((2, 4, 5, 3), np.uint8), np.array([0, 1]), paths=["/a", "/b"])
    assert repr(two) == "Split(2 examples, images uint8 [2, 4, 5, 3], from 2 files)"


def test_one_image_against_two_labels_says_image():
    with pytest.raises(DataError, match=r"^Split: 1 image but 2 labels; they must match"):
        Split(np.zeros((1, 4, 4, 3), np.uint8), np.array([0, 1]))
    with pytest.raises(DataError, match=r"^Split: 2 images but 1 label; they must match"):
        Split(np.zeros((2, 4, 4, 3), np.uint8), np.array([0]))


def test_one_path_against_two_labels_says_path():
    with pytest.raises(DataError, match=r"^Split: 1 path but 2 labels; give one path per image"):
        Split(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), paths=["/a"])
