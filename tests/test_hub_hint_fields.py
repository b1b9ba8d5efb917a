"""A module's refusal carries its problem and its way on as said parts (`ModuleLoadError.way`),
told each caller in its own words: a catalogue's (rank, a catalogue's HubLayer), a call's
(HubLayer, load_module: "pass output_key=KEY") and `catalogue add`'s (describe_module: "pass
--output-key KEY"). They were a catalogue's words with "(with HubLayer, …)" or "(with
catalogue add, …)" appended, read back from the sentence by a pattern once, which missed a
value it did not know and took a field's name inside a quoted value for the field to set."""

import pytest
import tensorflow as tf

from hubensemble.errors import ModuleLoadError
from hubensemble.hub.introspect import describe_module
from hubensemble.hub.layer import HubLayer
from hubensemble.hub.runtime import ModuleRuntime, load_module


def _saved(path, fn, dtype=tf.float32):
    module = tf.Module()
    module.kernel = tf.Variable(tf.ones([3, 3, 3, 2]))
    module.__call__ = tf.function(
        lambda x: fn(module, x), input_signature=[tf.TensorSpec([None, None, None, 3], dtype)])
    tf.saved_model.save(module, str(path))
    return str(path)


def _refused(call) -> str:
    with pytest.raises(ModuleLoadError) as refused:
        call()
    return refused.value.message


def test_a_dtype_the_module_does_not_take_is_told_as_the_call_passes_it(tmp_path):
    # HubLayer was told "the catalogue entry says input_dtype: uint8 …; write input_dtype:
    # float16 (with HubLayer, input_dtype is an argument: HubLayer(handle,
    # input_dtype='float16'))": of a catalogue entry it has none of.
    path = _saved(tmp_path / "f16", lambda m, x: tf.cast(tf.reduce_mean(x, [1, 2]), tf.float32),
                  tf.float16)
    assert _refused(lambda: HubLayer(path, input_dtype="uint8")) == (
        "the call passes input_dtype='uint8', but the module's __call__ takes float16 images; "
        "pass input_dtype='float16'")
    assert _refused(lambda: ModuleRuntime.load(path, input_dtype="uint8")) == (
        "the catalogue entry says input_dtype: uint8, but the module's __call__ takes float16 "
        "images; write input_dtype: float16")


def test_a_dict_output_is_told_its_key_in_each_callers_words(tmp_path):
    # A dict output with a key 'reset layer' (the pattern once read "set layer" in it): a
    # catalogue's words, and those words with a note after for HubLayer and catalogue add.
    path = _saved(tmp_path / "dict", lambda m, x: {
        "pooled": tf.reduce_mean(x, [1, 2]),
        "reset layer": tf.nn.conv2d(x, m.kernel, 1, "SAME")})
    problem = "its signature 'serving_default' returns ['pooled', 'reset layer']; "
    for call in (lambda: HubLayer(path), lambda: load_module(path)):
        assert _refused(call) == problem + "pass output_key=KEY, the embedding's key"
    with pytest.raises(ModuleLoadError) as refused:
        describe_module(path)
    assert refused.value.message == problem + "pass --output-key KEY, the embedding's key"
    assert refused.value.fix.field == "output_key"
    assert _refused(lambda: ModuleRuntime.load(path)) == (
        problem + "set output_key on its catalogue entry to the embedding's key")


def test_a_module_told_to_be_trusted_is_told_it_as_its_caller_trusts_one(tmp_path):
    # "set `trust: true` on its catalogue entry (or pass trust=True)" to every caller, and
    # catalogue add a note after it: "(with catalogue add, pass --trust)".
    target = tmp_path / "secret.txt"
    target.write_text("secret")
    path = _saved(tmp_path / "reads", lambda m, x: tf.reduce_mean(x, [1, 2]) + tf.cast(
        tf.strings.length(tf.io.read_file(str(target))), tf.float32) * 0.0)
    assert _refused(lambda: HubLayer(path)).endswith(
        ". If you trust its publisher, pass trust=True")
    assert _refused(lambda: describe_module(path)).endswith(
        ". If you trust its publisher, pass --trust")
    assert _refused(lambda: ModuleRuntime.load(path)).endswith(
        ". If you trust its publisher, set `trust: true` on its catalogue entry")


def test_a_feature_map_is_told_the_field_its_kind_takes(tmp_path):
    # Every module was told "(a feature-vector module, or output_key naming its pooled
    # output)": a SavedModel of one output refuses output_key (`CallSignature.output_spec`).
    one = _saved(tmp_path / "map", lambda m, x: tf.nn.conv2d(x, m.kernel, 1, "SAME"))
    keyed = _saved(tmp_path / "maps", lambda m, x: {
        "map": tf.nn.conv2d(x, m.kernel, 1, "SAME"), "pooled": tf.reduce_mean(x, [1, 2])})
    said = _refused(lambda: ModuleRuntime.load(one))
    assert said.endswith("not a feature map; catalogue a feature-vector module, or export it "
                         "cut at its pooled output") and "output_key" not in said, said
    assert _refused(lambda: ModuleRuntime.load(keyed, output_key="map")).endswith(
        "; catalogue a feature-vector module, or set `output_key:` on its catalogue entry to "
        "its pooled output")
    assert _refused(lambda: HubLayer(keyed, output_key="map")).endswith(
        "; load a feature-vector module, or pass output_key=KEY, its pooled output")


def test_catalogue_add_is_told_its_weights_flag_relative_to_the_working_folder(tmp_path):
    # describe_module (`catalogue add`, whose paths are relative to the working folder) was
    # told "check `weights:` on the entry (relative paths are relative to the catalogue's
    # folder)", of a catalogue it has not written.
    gone = str(tmp_path / "gone.weights.h5")
    assert _refused(lambda: describe_module("keras:MobileNetV3Small", weights=gone)) == (
        f"the weights file {gone} does not exist; check --weights (relative paths are "
        "relative to the working folder)")


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


def test_an_output_key_a_module_of_one_output_refuses_is_told_as_it_was_given(tmp_path):
    # describe_module (`catalogue add --output-key`) and HubLayer were told "remove output_key,
    # or name the layer whose output you want in `layer:`", a catalogue's words.
    import keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    path = str(tmp_path / "one.keras")
    model.save(path)
    assert _refused(lambda: describe_module(path, output_key="pooled")).endswith(
        "; leave --output-key out, or name the layer whose output you want in --layer")
    said = _refused(lambda: HubLayer(path, output_key="pooled"))
    assert said.startswith("output_key='pooled' is set") and said.endswith(
        "; pass output_key=None, or name the layer whose output you want in layer="), said


def test_a_mistyped_output_key_is_told_it_is_none_of_the_keys(tmp_path):
    # New user 492: output_key='poold' was told the words of no key at all ("returns
    # ['other', 'pooled']; pass output_key=KEY"), for a signature's dict and a __call__'s.
    path = _saved(tmp_path / "dict", lambda m, x: {
        "pooled": tf.reduce_mean(x, [1, 2]), "other": tf.reduce_max(x, [1, 2])})
    said = ("its signature 'serving_default': output_key='poold' is not one of the keys the "
            "module returns, ['other', 'pooled'] (did you mean 'pooled'?); pass "
            "output_key=KEY, the embedding's key")
    assert _refused(lambda: HubLayer(path, output_key="poold")) == said
    assert _refused(lambda: ModuleRuntime.load(path, output_key="poold")) == (
        "its signature 'serving_default': output_key 'poold' is not one of the keys the module "
        "returns, ['other', 'pooled'] (did you mean 'pooled'?); set output_key on its catalogue "
        "entry to the embedding's key")
    with pytest.raises(ModuleLoadError) as refused:
        describe_module(path, output_key="poold")
    assert refused.value.message == said.replace("output_key='poold'", "--output-key poold") \
        .replace("pass output_key=KEY", "pass --output-key KEY")
    from hubensemble.hub.callsig import dict_output_problem

    assert dict_output_problem(None, {"b": 1, "a": 2}) == \
        "the module returns a dict with keys ['a', 'b']"


def test_an_output_key_a_savedmodel_of_one_output_refuses_offers_no_layer(tmp_path):
    # New user 492: `catalogue add mods/m1 --output-key pooled` (a SavedModel of one output)
    # was told "leave --output-key out, or name the layer whose output you want in --layer",
    # and --layer was then refused ("only .keras and .h5 model files take layer"); the note
    # "(a Keras model file is cut at its last Dense layer's input …)" was said of it too.
    module = tf.train.Checkpoint()  # a reusable __call__ (TF Hub's API), no signature
    module.scale = tf.Variable(2.0)
    module.__call__ = tf.function(lambda x: tf.reduce_mean(x, [1, 2]) * module.scale)
    module.__call__.get_concrete_function(tf.TensorSpec([None, None, None, 3], tf.float32))
    module.variables = [module.scale]
    path = str(tmp_path / "m1")
    tf.saved_model.save(module, path)
    shape = "[None, 3]"
    with pytest.raises(ModuleLoadError) as refused:
        describe_module(path, output_key="pooled")
    assert refused.value.message == (
        f"--output-key pooled is set, but the module returns one tensor {shape}, not a dict; "
        "leave --output-key out")
    assert _refused(lambda: HubLayer(path, output_key="pooled")) == (
        f"output_key='pooled' is set, but the module returns one tensor {shape}, not a dict; "
        "pass output_key=None")
    said = _refused(lambda: ModuleRuntime.load(path, output_key="pooled"))
    assert said.startswith("output_key 'pooled' is set, but the module returns one tensor "
                           f"{shape}, not a dict; ") and "layer" not in said, said
    # The refusal's field: what the user is told to change (`catalogue add` reads it).
    assert refused.value.fix is None or refused.value.fix.field != "layer"
