"""tune.trained's kept training loaded into a fresh model: a resumed trial or member only
predicts, so the optimizer's state in the file (its slots, once it stepped) is not wanted; a
new user (479) saw Keras' raw "UserWarning: Skipping variable loading for optimizer 'sgd',
because it has 1 variables whereas the saved optimizer has 84 variables" on every resume."""

import warnings

import keras
import numpy as np

from hubensemble.tune.trained import keep_weights, take_weights


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def test_kept_weights_load_into_a_fresh_model_without_a_warning(tmp_path):
    # Fails before: the resumed load warned of the optimizer's variables (1 against 3).
    trained = _model()
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 3), "float32")
    trained.fit(x, y, epochs=1, verbose=0)  # the optimizer stepped: its slots exist
    key = {"trial": "t0"}
    assert keep_weights(str(tmp_path), "t0", key, trained, what="trial t0") is not None
    fresh = _model()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert take_weights(str(tmp_path), "t0", key, fresh, what="trial t0") == {}
    assert [str(w.message) for w in said] == []
    assert np.array_equal(fresh.predict(x, verbose=0), trained.predict(x, verbose=0))
