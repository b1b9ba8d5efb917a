"""Shared fixtures: tiny real SavedModels built in a second, never mocks of TF or Keras."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def make_tiny_model(seed=0, width=8, dropout=0.0, out_dim=None, input_size=None, l2=0.0):
    """A one-conv image model: [N, H, W, 3] in [0, 1] -> [N, width] features."""
    import keras

    keras.utils.set_random_seed(seed)
    h, w = input_size or (None, None)
    inp = keras.Input((h, w, 3))
    reg = keras.regularizers.L2(l2) if l2 else None
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                            kernel_regularizer=reg)(inp)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if out_dim:
        x = keras.layers.Dense(out_dim)(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="session")
def tiny_module(tmp_path_factory):
    """A reusable SavedModel folder with an 8-d output."""
    from hubensemble.hub import write_hub_module

    path = tmp_path_factory.mktemp("modules") / "tiny"
    write_hub_module(make_tiny_model(seed=0), str(path))
    return str(path)


@pytest.fixture(scope="session")
def module_factory(tmp_path_factory):
    """Builds tiny modules on demand: module_factory(name, **make_tiny_model kwargs)."""
    from hubensemble.hub import write_hub_module

    root = tmp_path_factory.mktemp("factory")
    made = {}

    def build(name, **kwargs):
        if name not in made:
            made[name] = write_hub_module(make_tiny_model(**kwargs), str(root / name))
        return made[name]

    return build


@pytest.fixture
def rng():
    return np.random.default_rng(0)
