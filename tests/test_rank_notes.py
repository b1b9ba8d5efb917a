"""What a module's load says about how its score reads: the grey module said at INFO, and
the load-time warnings (a model fed the wrong value range, a classifier's logits, a module
used frozen) kept with its row of the ranking, shown in the report and said again when a
fit reuses the ranking."""

import logging

import keras
import numpy as np

from hubensemble.hub import ModuleRuntime


def _grey_keras(path):
    """A functional .keras model taking [N, H, W, 1] float images -> [N, 4]."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 1))
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
                ).save(path)


def test_a_grey_module_is_said_at_info_as_a_channels_first_one_is(tmp_path, caplog):
    # A 1-channel module was fed the luminance silently; channels-first was said at INFO.
    path = str(tmp_path / "grey.keras")
    _grey_keras(path)
    with caplog.at_level(logging.INFO, logger="hubensemble.hub.runtime"):
        runtime = ModuleRuntime.load(path, name="grey")
    said = [r for r in caplog.records if "grey" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "module grey takes grey images" in said[0].getMessage()
    assert "luminance" in said[0].getMessage()
    # What it says is what it is fed: the luminance by ITU-R 601's weights.
    rgb = np.random.default_rng(0).random((2, 8, 8, 3), np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    model = keras.saving.load_model(path)
    np.testing.assert_allclose(runtime(rgb).numpy(), model(luma[..., None]).numpy(),
                               rtol=1e-4, atol=1e-5)
    caplog.clear()
    rgb_path = str(tmp_path / "rgb.keras")
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp)).save(rgb_path)
    with caplog.at_level(logging.INFO, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(rgb_path, name="rgb")
    assert "grey images" not in caplog.text
