"""HubLayer as a Python user meets it: argument and image refusals, fixed-size modules, handles
kept absolute, a reload in a new process; write_hub_module leaving nothing behind on failure."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import make_tiny_model
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import ModuleLoadError
from hubensemble.hub import HubLayer, hub_layer_from_spec, write_hub_module

X = np.random.default_rng(3).random((4, 16, 16, 3), dtype=np.float32)


# --- arguments: refused before the module loads, naming the argument and the accepted forms ---

@pytest.mark.parametrize("kwargs, error, words", [
    (dict(handle=None), TypeError, ["HubLayer handle must be a non-empty string",
                                    "keras:APPLICATION"]),
    (dict(handle="keras:NotAModel"), ValueError,
     ["HubLayer handle 'keras:NotAModel' is not a keras.applications architecture",
      "MobileNetV3Small"]),
    (dict(handle="keras:MobileNetV3small"), ValueError,
     ["pass handle='keras:MobileNetV3Small' instead"]),
    (dict(input_size=32), TypeError, ["HubLayer input_size", "write input_size=(32, 32)"]),
    (dict(input_size="32x32"), TypeError, ["got str '32x32'", "write input_size=(32, 32)"]),
    (dict(input_size=(32, 32.5)), TypeError, ["two integers"]),
    # A hint that would itself be refused is none (it said "write input_size=(0, 0)").
    (dict(input_size=0), TypeError, ["got int 0, which reads as (0, 0), a side outside [1, "
                                     "2048] pixels: write input_size=(224, 224)"]),
    (dict(input_size=(0, 32)), ValueError, ["HubLayer input_size (0, 32)", "[1, 2048]"]),
    (dict(value_range="0,2"), ValueError, ["unknown value_range '0,2'", "(0, 255)"]),
    (dict(sha256="abc"), ValueError, ["HubLayer sha256", "64 hexadecimal"]),
    (dict(trust="no"), TypeError, ["HubLayer trust must be True or False"]),
    (dict(output_key=5), TypeError, ["HubLayer output_key must be None or a str"]),
    (dict(layer="avg_pool"), ValueError, ["HubLayer layer='avg_pool'",
                                          "only .keras and .h5 model files", "leave layer out"]),
    (dict(weights="imagenet"), ValueError, ["only keras:NAME", "leave weights out"]),
])
def test_hub_layer_arguments_are_refused_naming_the_accepted_forms(tiny_module, kwargs, error,
                                                                   words):
    kwargs = {"handle": tiny_module, **kwargs}
    with pytest.raises(error) as err:
        HubLayer(kwargs.pop("handle"), **kwargs)
    text = str(err.value)
    assert all(w in text for w in words), text
    assert len(text) < 1200, text


def test_a_handle_that_is_no_url_scheme_or_path_here_is_refused_with_the_forms(
        tmp_path, monkeypatch):
    # HubLayer("abc") looked for the folder /cwd/abc and ended in "[local path] … does not
    # exist; check the path", naming none of the handle forms the user may have meant.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "abd").mkdir()
    for handle, words in (("abc", ["; did you mean ", "abd"]),
                          ("google/bit/m-r50x1/1",
                           ["pass handle='https://tfhub.dev/google/bit/m-r50x1/1'"])):
        with pytest.raises(ValueError) as err:
            HubLayer(handle)
        text = str(err.value)
        assert not isinstance(err.value, ModuleLoadError), text
        assert (f"HubLayer handle {handle!r} is neither a URL nor a handle of a known scheme, and "
                f"the current folder ({tmp_path}) holds no file or folder {handle!r}") in text, text
        assert all(w in text for w in words + ["hf://OWNER/MODEL", "keras:APPLICATION"]), text


def test_hub_layer_takes_the_catalogues_value_range_forms_and_a_path(tiny_module):
    import pathlib

    layer = HubLayer(pathlib.Path(tiny_module), value_range=(0, 255), input_size=np.array([8, 8]))
    assert (layer.handle, layer.value_range, layer.input_size) == (tiny_module, "0,255", (8, 8))
    assert layer.get_config()["value_range"] == "0,255"


@pytest.mark.parametrize("images, error, words", [
    (np.zeros((2, 16, 16, 3), np.uint8), TypeError,
     ["HubLayer takes float images", "got uint8 images", "astype('float32') / 255"]),
    (np.zeros((16, 16, 3), np.float32), ValueError, ["got shape (16, 16, 3)", "images[None]"]),
    (np.zeros((2, 16, 16, 1), np.float32), ValueError, ["repeat a grey channel"]),
    (np.zeros((2, 16, 16, 4), np.float32), ValueError, ["drop the alpha channel"]),
    # None failed in TensorFlow: "Attempt to convert a value (None) with an unsupported type"
    (None, TypeError, ["HubLayer takes float images [batch, height, width, 3] in [0, 1] (an "
                       "array or tensor), got NoneType None"]),
])
def test_images_a_hub_layer_cannot_take_are_refused_in_a_few_words(tiny_module, images, error,
                                                                   words):
    with pytest.raises(error) as err:
        HubLayer(tiny_module)(images)
    text = str(err.value)
    assert all(w in text for w in words), text
    assert len(text) < 800, text  # no dump of the array


def test_a_fixed_size_module_names_the_hub_layer_argument_not_a_catalogue_field(tmp_path):
    fixed = write_hub_module(make_tiny_model(input_size=(20, 20)), str(tmp_path / "fixed"),
                             input_size=(20, 20))
    with pytest.raises(ModuleLoadError, match=r"takes only \[20, 20\] images \(its __call__'s "
                                              r"traces\), not \[16, 16\]; pass "
                                              r"input_size=\(20, 20\) and every image is "
                                              r"resized to it$"):
        HubLayer(fixed)(X)
    with pytest.raises(ModuleLoadError, match=r"not \[24, 24\]; pass input_size=\(20, 20\) "
                                              r"and every image is resized to it$"):
        HubLayer(fixed, input_size=(24, 24))
    # Given the size, any image is resized to it.
    assert HubLayer(fixed, input_size=(20, 20))(X).shape == (4, 8)
    # A catalogue entry's layer names the entry's field, as rank and tune do.
    from_spec = hub_layer_from_spec(ModuleSpec(name="fixed", handle=fixed))
    with pytest.raises(ModuleLoadError) as err:
        from_spec(X)
    assert "write `input_size: [20, 20]` in its catalogue entry" in str(err.value)
    # In our words alone, its stage kept: Keras re-made it as "Exception encountered when
    # calling HubLayer.call(). \x1b[1m[input] …\x1b[0m Arguments received by …" (stage lost).
    assert str(err.value).startswith("[input] module 'fixed'") and err.value.stage == "input"
    assert "Exception encountered" not in str(err.value) and "\x1b" not in str(err.value)
    with pytest.raises(TypeError) as err:
        from_spec(np.zeros((1, 20, 20, 3), np.uint8))
    assert "Arguments received" not in str(err.value), str(err.value)
    assert "HubLayer(handle" not in str(err.value)


def test_a_relative_handle_is_kept_absolute_so_the_model_reloads_anywhere(tiny_module, tmp_path,
                                                                          monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    shutil.copytree(tiny_module, work / "mymod")
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    layer = HubLayer("./mymod", trainable=True)
    assert layer.handle == layer.get_config()["handle"] == str(work / "mymod")
    model = keras.Sequential([keras.Input((None, None, 3)), layer, keras.layers.Dense(2)])
    want = model.predict(X, verbose=0)
    model.save(tmp_path / "m.keras")
    monkeypatch.chdir(elsewhere)
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(X, verbose=0), want, atol=1e-6)
    # URLs and prefixed handles are kept as given.
    url = "file://" + str(work / "mymod")
    assert HubLayer(url).handle == url


RELOAD = """
import sys
import numpy as np
import hubensemble

assert "tensorflow" not in sys.modules, "import hubensemble loaded TensorFlow"
import keras  # noqa: E402
model = keras.models.load_model(sys.argv[1], custom_objects=hubensemble.custom_objects())
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""


def test_a_new_process_reloads_hub_layers_with_custom_objects(tiny_module, tmp_path):
    from hubensemble import EnsembleLayer, custom_objects

    assert {"hubensemble>HubLayer", "hubensemble>EnsembleLayer",
            "hubensemble>EvalResize"} <= set(custom_objects())
    inputs = keras.Input((None, None, 3))
    member = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        HubLayer(tiny_module)(inputs)))
    model = keras.Model(inputs, EnsembleLayer([member])(inputs))
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", X)
    out = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "m.keras"),
                          str(tmp_path / "x.npy"), str(tmp_path / "p.npy")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), model.predict(X, verbose=0),
                               atol=1e-6)


# --- write_hub_module: a refused or failed write leaves no temporary folder ---------------------

def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith((".tmp-", ".old-"))]


def test_write_hub_module_refuses_a_file_path_before_saving_and_leaves_nothing(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        write_hub_module(make_tiny_model(), str(tmp_path / "afile"))
    with pytest.raises(FileExistsError, match="parent folder .* is a file"):
        write_hub_module(make_tiny_model(), str(tmp_path / "afile" / "mod"))
    assert (tmp_path / "afile").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_write_hub_module_refuses_metadata_json_cannot_hold_and_leaves_nothing(tmp_path):
    with pytest.raises(TypeError, match="metadata must be a JSON-able dict"):
        write_hub_module(make_tiny_model(), str(tmp_path / "mod"), metadata={"x": object()})
    with pytest.raises(TypeError, match="not a dict"):
        write_hub_module(make_tiny_model(), str(tmp_path / "mod"), metadata=["a"])
    with pytest.raises(TypeError,
                       match=r"^write_hub_module\(\) model must be a Keras model or layer"):
        write_hub_module(lambda x: x, str(tmp_path / "mod"))
    assert os.listdir(tmp_path) == []


def test_write_hub_module_replaces_a_folder_and_leaves_nothing_beside_it(tmp_path):
    first = write_hub_module(make_tiny_model(width=4), str(tmp_path / "mod"))
    again = write_hub_module(make_tiny_model(width=6), str(tmp_path / "mod"), metadata={"v": 2})
    assert first == again and HubLayer(again).output_dim == 6
    assert sorted(os.listdir(tmp_path)) == ["mod"]


def test_write_hub_module_refuses_a_folder_that_is_no_module_and_keeps_what_it_holds(tmp_path):
    """write_hub_module(model, FOLDER) replaced any folder: a user's folder of 54 PNGs was
    deleted, the call returning its path (a new-user check). Only an empty folder or a module
    written before (saved_model.pb) is replaced; any other is refused, naming it and what it
    holds, before anything is traced or written. Fails before: the images were gone."""
    user = tmp_path / "my images"
    user.mkdir()
    for i in range(5):
        (user / f"{i:02d}.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(FileExistsError) as refused:
        write_hub_module(make_tiny_model(width=4), str(user))
    said = str(refused.value)
    assert said.startswith(f"write_hub_module: {user} is a folder that is no module: it holds "
                           "5 entries (00.png, 01.png, 02.png, …) and no saved_model.pb"), said
    assert "pass a new or empty folder" in said, said
    assert sorted(os.listdir(user)) == [f"{i:02d}.png" for i in range(5)]
    assert sorted(os.listdir(tmp_path)) == ["my images"]  # no temp folder left beside it
    (tmp_path / "empty").mkdir()  # an empty folder is taken, as a module's own is
    assert HubLayer(write_hub_module(make_tiny_model(width=3), str(tmp_path / "empty"))
                    ).output_dim == 3


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float64"])
def test_a_hub_layer_computes_in_float32_under_a_users_global_policy(tiny_module, policy):
    """A HubLayer in a model of the user's own under a global `mixed_float16` policy (or
    floatx float64) failed every call ("Tensor conversion requested dtype float32 for Tensor
    with dtype float16 (in HubLayer.call())"): Keras cast the images to the layer's compute
    dtype. Its policy is float32 (the module's): the same features, the next layers mixed."""
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    expected = HubLayer(tiny_module)(x).numpy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = HubLayer(tiny_module)
        model = keras.Sequential([keras.Input((None, None, 3)), layer, keras.layers.Dense(3)])
        assert model.predict(x, verbose=0).shape == (2, 3)  # it failed here
        got = layer(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert layer.dtype_policy.name == "float32" and got.dtype == "float32"
    np.testing.assert_array_equal(got.numpy(), expected)


def test_a_catalogue_layer_of_a_module_the_probe_batch_is_too_small_for_still_builds(
        tmp_path):
    """A catalogue HubLayer looks at its module's output on 64 px probe images (for class
    probabilities, `hub.layer._look_for_probabilities`); a module of any size that needs
    more (a 70 x 70 VALID convolution) failed there in Keras' error, and no trial of it
    built. The look says nothing then; the layer runs at the module's own resolution."""
    import keras

    from hubensemble.catalogue import ModuleSpec

    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 70)(inp))) \
        .save(tmp_path / "big.keras")
    layer = hub_layer_from_spec(ModuleSpec(name="big", handle=str(tmp_path / "big.keras")))
    assert layer(np.zeros((1, 80, 80, 3), np.float32)).shape == (1, 2)
