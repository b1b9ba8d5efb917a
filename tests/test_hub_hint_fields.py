"""The field a module's refusal tells its reader to set is the refusal's own record
(`ModuleLoadError.fix`), said in each caller's words: `catalogue add` its flag
(`hub.introspect.with_flag_hint`), HubLayer its argument. Both read it from the finished
sentence by a pattern once, which missed a value it did not know and took a field's name
inside a quoted value for the field to set."""

import pytest
import tensorflow as tf

from hubensemble.errors import ModuleLoadError
from hubensemble.hub.introspect import describe_module
from hubensemble.hub.layer import HubLayer


def _saved(path, fn, dtype=tf.float32):
    module = tf.Module()
    module.kernel = tf.Variable(tf.ones([3, 3, 3, 2]))
    module.__call__ = tf.function(
        lambda x: fn(module, x), input_signature=[tf.TensorSpec([None, None, None, 3], dtype)])
    tf.saved_model.save(module, str(path))
    return str(path)


def test_the_argument_meant_names_a_dtype_the_pattern_did_not_know(tmp_path):
    # "write input_dtype: float16" was told "HubLayer(handle, input_dtype=...)": the pattern
    # knew float32 and uint8 only.
    path = _saved(tmp_path / "f16", lambda m, x: tf.cast(tf.reduce_mean(x, [1, 2]), tf.float32),
                  tf.float16)
    with pytest.raises(ModuleLoadError) as refused:
        HubLayer(path, input_dtype="uint8")
    assert str(refused.value).endswith(
        "(with HubLayer, input_dtype is an argument: HubLayer(handle, input_dtype='float16'))")


def test_a_field_named_inside_a_quoted_value_is_not_the_one_to_set(tmp_path):
    # A dict output with a key 'reset layer': its refusal ("returns a dict with keys
    # ['pooled', 'reset layer']; set output_key on …") was told "--layer NAME" and
    # "HubLayer(handle, layer=...)": the pattern read "set layer" inside the key.
    path = _saved(tmp_path / "dict", lambda m, x: {
        "pooled": tf.reduce_mean(x, [1, 2]),
        "reset layer": tf.nn.conv2d(x, m.kernel, 1, "SAME")})
    with pytest.raises(ModuleLoadError) as refused:
        HubLayer(path)
    assert "'reset layer'" in str(refused.value)
    assert str(refused.value).endswith(
        "(with HubLayer, output_key is an argument: HubLayer(handle, output_key=...))")
    with pytest.raises(ModuleLoadError) as refused:
        describe_module(path)
    assert str(refused.value).endswith("(with catalogue add, pass --output-key KEY)")
    assert refused.value.fix.field == "output_key"


def test_a_way_on_for_another_module_names_no_argument_of_this_call(tmp_path):
    # A .keras file of a class of its own is told to be exported as a SavedModel ("set
    # input_size on the entry if it was traced at a fixed size": of the export's entry);
    # HubLayer was told "(with HubLayer, input_size is an argument: …)" for the file itself,
    # which no input_size makes loadable.
    import keras

    class OwnSub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, x):
            return self.pool(x)

    model = OwnSub()
    model(tf.zeros([1, 8, 8, 3]))
    model.save(tmp_path / "sub.keras")
    with pytest.raises(ModuleLoadError) as refused:
        HubLayer(str(tmp_path / "sub.keras"))
    assert "model.export(DIR)" in str(refused.value)
    assert "with HubLayer" not in str(refused.value), str(refused.value)
