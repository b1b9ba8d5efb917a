"""hubensemble._tf's reads of TensorFlow internals keep their documented fall-backs when a
TensorFlow release moved the internal module (setup.cfg's notes): no ImportError."""

import pytest

from moved_internals import moved
from hubensemble import _tf


def test_op_determinism_is_taken_for_off_on_a_tensorflow_without_its_config_module(
        monkeypatch):
    _tf.import_tensorflow()
    moved(monkeypatch, "tensorflow.python.framework", "config")
    assert _tf.op_determinism() is False
    assert _tf.stateful_map_calls() is not None  # AUTOTUNE, as with determinism off


def test_released_custom_gradients_runs_its_block_on_a_tensorflow_without_its_ops_module(
        monkeypatch):
    _tf.import_tensorflow()
    moved(monkeypatch, "tensorflow.python.framework", "ops")
    ran = []
    with _tf.released_custom_gradients():
        ran.append(True)
    assert ran == [True]
    with pytest.raises(KeyError):  # the block's own errors still surface
        with _tf.released_custom_gradients():
            raise KeyError("mine")
