"""A `weights` file that is missing or cannot be fetched is told as its caller gives it: a
catalogue entry's `weights:` in a catalogue, the weights= keyword to load_module and HubLayer
(they were told to "check `weights:` on the entry" of no catalogue)."""

import pytest

from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import ModuleLoadError

APP = "keras:MobileNetV3Small"


def _refusal(call):
    with pytest.raises(ModuleLoadError) as err:
        call()
    return err.value


def test_a_missing_weights_file_is_told_in_each_callers_words(tmp_path):
    # Fails before: load_module and HubLayer were told "check `weights:` on the entry
    # (relative paths are relative to the catalogue's folder)", HubLayer with a note after.
    from hubensemble.hub import HubLayer, ModuleRuntime, load_module

    gone = str(tmp_path / "gone.weights.h5")
    for call in (lambda: load_module(APP, weights=gone),
                 lambda: HubLayer(handle=APP, weights=gone)):
        said = _refusal(call)
        assert said.message == (f"the weights file {gone} does not exist; check weights= "
                                "(relative paths are relative to the working folder)"), said
    spec = ModuleSpec(name="a", handle=APP, weights=gone, source=f"{tmp_path}/c.yaml:2")
    said = _refusal(lambda: ModuleRuntime.from_spec(spec))  # a catalogue entry's: its field
    assert said.message.endswith("; check `weights:` on the entry (relative paths are "
                                 "relative to the catalogue's folder)"), said


def test_imagenet_weights_that_cannot_be_fetched_are_told_in_each_callers_words(
        tmp_path, monkeypatch):
    # Fails before: load_module was told "or set `weights:` on the entry to a local weights
    # file". A mirror at a port nothing listens on: refused at once, no internet.
    import socket

    from keras.src.backend import config

    from hubensemble.environment import WEIGHTS_MIRROR_ENV
    from hubensemble.hub import ModuleRuntime, load_module

    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setenv(WEIGHTS_MIRROR_ENV, f"http://127.0.0.1:{port}")
    said = _refusal(lambda: load_module(APP))
    assert said.stage == "network" and said.message.endswith(
        ", or pass weights= the path of a local weights file"), said
    assert "`weights:`" not in str(said), said
    said = _refusal(lambda: ModuleRuntime.from_spec(ModuleSpec(name="a", handle=APP)))
    assert said.message.endswith(", or set `weights:` on the entry to a local weights file")
    # Pasted: weights= a local weights file of the architecture, which then loads offline.
    import keras

    path = str(tmp_path / "own.weights.h5")
    keras.applications.MobileNetV3Small(input_shape=(224, 224, 3), include_top=False,
                                        weights=None, pooling="avg").save_weights(path)
    assert load_module(APP, weights=path).output_dim == 576
