"""Module sources beyond TF Hub: keras:NAME architectures, .keras/.h5 files, keras-hub presets,
SavedModel signatures (model.export, TF1), bounded remote reads, and `catalogue add`.

Every kind is built at a tiny size in fixtures, checked against an independent reference
computation and fine-tuned through HubLayer; every kind but the two the rest of the suite
runs end to end (TF Hub SavedModels, and .h5 files, which share the .keras loader) is run
rank -> tune -> ensemble -> export in one fit whose export reloads with plain TensorFlow."""

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import hubensemble
from conftest import bounded_by_cpu, export_quietly, make_tiny_model
from reliability.scenarios import Server
from hubensemble import cli
from hubensemble.catalogue import ModuleSpec, load_catalogue
from hubensemble.errors import ModuleLoadError
from hubensemble.fileio import read_json
from hubensemble.hub import HubLayer, ModuleRuntime, remote, resolvers, sources, write_hub_module
from hubensemble.hub.locate import default_call, keras_default_layer
from hubensemble.hub.runtime import to_value_range

X = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32)
APP = "MobileNetV3Small"  # the smallest keras.applications architecture (0.9M parameters)

try:
    import keras_hub
except ImportError:  # the optional extra: hubensemble[keras-hub]
    keras_hub = None


def file_sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- the kinds, each built tiny, with what an independent computation says it embeds ---------

def _classifier(seed, *, rescale=False):
    """Conv -> GlobalAveragePooling ("pool") -> Dense(4): the embedding is the Dense's input."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp) if rescale else inp
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, keras.layers.Dense(4, name="logits")(x))


def _write_tf1(path, *, trainable=True, read_file=False, seed=1):
    """A TF1-style SavedModel (tf.compat.v1 graph, no object graph) with one signature
    "default": images -> {"default": mean(relu(conv(images, kernel)))}; returns the kernel."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="images")
        kernel = tf.compat.v1.get_variable(
            "kernel", [3, 3, 3, 7], trainable=trainable,
            initializer=tf.compat.v1.random_normal_initializer(seed=seed))
        feats = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(images, kernel, 1, "SAME")), axis=[1, 2])
        if read_file:  # reaches outside its inputs: the safety scan must refuse it
            feats += 0.0 * tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")), tf.float32)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            value = sess.run(kernel)
            builder = tf.compat.v1.saved_model.Builder(str(path))
            sig = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
                {"images": images}, {"default": feats})
            builder.add_meta_graph_and_variables(sess, [], signature_def_map={"default": sig})
            builder.save()
    return value


class Kinds:
    """Paths of one module of every kind, and reference embeddings of X for each."""

    def __init__(self, root):
        self.root = root
        self.paths, self.refs = {}, {}
        # A TF Hub style reusable SavedModel.
        tiny = make_tiny_model(seed=0, width=8)
        self.paths["hub"] = write_hub_module(tiny, str(root / "hub"))
        self.refs["hub"] = tiny(X).numpy()
        # .keras and .h5 files: the embedding is the input of the last Dense layer.
        for kind, seed, suffix in (("keras-file", 2, ".keras"), ("h5-file", 3, ".h5")):
            model = _classifier(seed)
            model.save(root / f"{kind}{suffix}")
            self.paths[kind] = str(root / f"{kind}{suffix}")
            self.refs[kind] = keras.Model(model.input, model.get_layer("pool").output)(X).numpy()
        # A model.export() SavedModel: signatures only (serve, serving_default).
        keras.utils.set_random_seed(4)
        inp = keras.Input((None, None, 3))
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(5, 3)(inp))
        exported = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))
        export_quietly(exported, str(root / "exported"))
        self.paths["exported"] = str(root / "exported")
        self.refs["exported"] = exported(X, training=False).numpy()
        # TF1-style signature modules: fine-tunable, and frozen (no trainable variables).
        for kind, trainable in (("tf1", True), ("tf1-frozen", False)):
            kernel = _write_tf1(root / kind, trainable=trainable)
            self.paths[kind] = str(root / kind)
            conv = tf.nn.relu(tf.nn.conv2d(X, kernel, 1, "SAME"))
            self.refs[kind] = tf.reduce_mean(conv, axis=[1, 2]).numpy()
        # keras:MobileNetV3Small with a local weights file (not Keras' random init).
        keras.utils.set_random_seed(5)
        app = getattr(keras.applications, APP)(weights=None, include_top=False, pooling="avg",
                                               input_shape=(32, 32, 3))
        self.weights = str(root / "app.weights.h5")
        app.save_weights(self.weights)
        self.app_kernel = app.get_layer("conv").kernel.numpy()
        self.refs["keras-app"] = app(255.0 * X, training=False).numpy()  # preprocessing inside
        self.paths["keras-app"] = f"keras:{APP}"
        # A keras-hub preset folder (ResNet backbone + image converter), when it installs.
        if keras_hub is not None:
            keras.utils.set_random_seed(6)
            backbone = keras_hub.models.ResNetBackbone(
                input_conv_filters=[64], input_conv_kernel_sizes=[3],
                stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1],
                stackwise_num_strides=[1, 2], block_type="basic_block")
            preset = root / "preset"
            backbone.save_to_preset(str(preset))
            keras_hub.layers.ResNetImageConverter(
                image_size=(32, 32), scale=1 / 255.0, offset=-0.5).save_to_preset(str(preset))
            self.paths["keras-hub"] = str(preset)
            self.refs["keras-hub"] = np.mean(backbone(X - 0.5).numpy(), axis=(1, 2))

    def fields(self, kind):
        """HubLayer / ModuleRuntime keyword arguments of `kind`."""
        extra = {"weights": self.weights, "input_size": (32, 32)} if kind == "keras-app" else {}
        return {"handle": self.paths[kind], **extra}

    def yaml_entry(self, kind):
        extra = ({"weights": self.weights, "input_size": [32, 32]} if kind == "keras-app"
                 else {})
        return {"name": kind, "handle": self.paths[kind], **extra}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    return Kinds(tmp_path_factory.mktemp("kinds"))


KINDS = ["hub", "keras-file", "h5-file", "exported", "tf1", "tf1-frozen", "keras-app",
         pytest.param("keras-hub", marks=pytest.mark.skipif(
             keras_hub is None, reason="keras-hub is not installed (hubensemble[keras-hub])"))]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_embeds_like_an_independent_reference(kinds, kind):
    runtime = ModuleRuntime.load(**kinds.fields(kind))
    out = runtime(X).numpy()
    assert out.dtype == np.float32 and out.shape == kinds.refs[kind].shape
    assert runtime.output_dim == out.shape[1]
    np.testing.assert_allclose(out, kinds.refs[kind], rtol=1e-4, atol=1e-5)
    expected_kind = {"keras-file": "keras-file", "h5-file": "keras-file",
                     "keras-app": "keras-application", "keras-hub": "keras-hub-preset"}
    assert runtime.files.kind == expected_kind.get(kind, "saved-model")
    if kind == "keras-app":  # the weights are the file's, not Keras' random initialisation
        base = runtime.keras_model.layers[-1]
        np.testing.assert_array_equal(base.get_layer("conv").kernel.numpy(), kinds.app_kernel)


@pytest.mark.parametrize("kind", KINDS)
def test_fine_tuning_trains_each_kinds_own_variables(kinds, kind, caplog, monkeypatch):
    from hubensemble.hub import notices

    monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process: said at its load
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        layer = HubLayer(trainable=True, **kinds.fields(kind))
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    if kind == "tf1-frozen":
        # No trainable variables exposed: used frozen (a probe), said once, never an error.
        assert layer.trainable_weights == [] and layer.non_trainable_weights
        assert "used frozen" in caplog.text and "linear probe" in caplog.text
        caplog.clear()  # said once per module and process, not once per trial or member
        with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
            HubLayer(trainable=True, **kinds.fields(kind))
        assert "used frozen" not in caplog.text
        before = [w.numpy().copy() for w in layer.non_trainable_weights]
        model.fit(X, np.ones((4, 2), np.float32), epochs=1, batch_size=4, verbose=0)
        assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, layer.weights))
        return
    assert "used frozen" not in caplog.text
    trainable = layer.trainable_weights
    assert trainable
    before = [w.numpy().copy() for w in trainable]
    model.fit(X, np.ones((4, 2), np.float32), epochs=1, batch_size=4, verbose=0)
    changed = sum(not np.array_equal(a, w.numpy()) for a, w in zip(before, trainable))
    assert changed >= len(trainable) // 2, f"{changed} of {len(trainable)} weights changed"


def test_a_frozen_layer_keeps_a_keras_models_variables_out_of_training(kinds):
    layer = HubLayer(trainable=False, **kinds.fields("keras-file"))
    model = keras.Sequential([keras.Input((32, 32, 3)), layer, keras.layers.Dense(2)])
    assert layer.trainable_weights == [] and len(model.trainable_weights) == 2  # the head


# --- rank -> tune -> ensemble -> export over every kind; the export needs no hubensemble -------

PIPELINE_COVERED_ELSEWHERE = ("hub", "h5-file")

RELOAD = r"""
import json, sys
import numpy as np, tensorflow as tf
images = np.load(sys.argv[2])
out = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](images=tf.constant(images))
np.save(sys.argv[3], out["probabilities"].numpy())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("hubensemble", "keras_hub"))))
"""


@pytest.fixture(scope="module")
def fitted(kinds, tmp_path_factory):
    import yaml

    os.environ["HUBENSEMBLE_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "emb")
    # Every kind with its own loader or export path. Not "hub" (every other fit and export
    # test runs TF Hub SavedModels) nor "h5-file" (loaded, fine-tuned and exported by the
    # same code as "keras-file"; the tests above check it embeds and fine-tunes): each kind
    # costs its trials and exported members, the most expensive fixture of the suite: the
    # combined sweep with rank's --threshold 1 keeps every module and gives each 1 trial
    # (more trials of a kind cost as much again each, in tune and export, and test nothing
    # more here: several members of one module are test_export's).
    names = [k if isinstance(k, str) else k.values[0] for k in KINDS]
    names = [n for n in names if n in kinds.paths and n not in PIPELINE_COVERED_ELSEWHERE]
    catalogue = tmp_path_factory.mktemp("cat") / "mixed.yaml"
    catalogue.write_text(yaml.safe_dump({"modules": [kinds.yaml_entry(n) for n in names]}))
    out = tmp_path_factory.mktemp("fit") / "run"
    # Every module is tuned (1 trial each) and every candidate becomes a member.
    result = hubensemble.fit(str(catalogue), "sklearn:digits", out, progress=False,
                             profile="quick", seed=0, modules=names, threshold=1.0,
                             sweep="combined", budget=len(names), ensemble_budget=len(names),
                             size_rule="budget", corruptions=False)
    return out, result, names


@pytest.mark.slow
def test_every_other_kind_is_ranked_tuned_ensembled_and_exported(fitted):
    out, result, names = fitted
    ranking = read_json(out / "ranking.json")
    assert {r["name"]: r["status"] for r in ranking["modules"]} == {n: "ok" for n in names}
    ensemble = read_json(out / "ensemble.json")
    assert ensemble == result.ensemble
    members = {m["module"] for m in ensemble["members"]}
    assert members == set(names), "every kind is a member of the exported ensemble"
    # size_rule budget without replacement and a budget of every candidate: all are members.
    trials = sorted(p.name for p in (out / "candidates").iterdir() if p.is_dir())
    assert sorted(m["trial"] for m in ensemble["members"]) == trials
    assert len(trials) == len(names)


@pytest.mark.slow
def test_the_mixed_export_reloads_without_hubensemble_and_matches(fitted, tmp_path):
    out, result, names = fitted
    task = hubensemble.load_task("sklearn:digits")
    images = np.asarray(task.test.images, np.float32) / 255.0
    np.save(tmp_path / "images.npy", images)
    run = subprocess.run([sys.executable, "-c", RELOAD, str(out / "export"),
                          str(tmp_path / "images.npy"), str(tmp_path / "probs.npy")],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [], "the export imported them"
    probs = np.load(tmp_path / "probs.npy")
    # In-process: the ensemble.json weights applied to the candidates' own test probabilities.
    members = read_json(out / "ensemble.json")["members"]
    total = sum(m["weight"] for m in members)
    expected = sum(m["weight"] / total * np.load(out / "candidates" / m["trial"] /
                                                 "test_probs.npy") for m in members)
    assert probs.shape == expected.shape
    assert np.abs(probs - expected).max() <= 1e-5


# --- keras:NAME weights: Keras' own file name and cache, our timeouts, offline errors ---------

@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    os.makedirs(tmp_path / "keras_home")
    return tmp_path / "keras_home"


def test_imagenet_weights_are_the_file_keras_get_file_asks_for():
    from keras.src.applications import mobilenet_v3, resnet

    request = sources.imagenet_weights_request(APP, (224, 224))
    assert request.fname == "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    assert request.origin == mobilenet_v3.BASE_WEIGHT_PATH + request.fname
    assert request.cache_subdir == "models" and request.file_hash
    request = sources.imagenet_weights_request("ResNet50V2")
    assert request.origin.startswith(resnet.BASE_WEIGHTS_PATH)
    assert request.fname.endswith("_notop.h5")


def test_imagenet_weights_download_shows_its_bytes(keras_home, monkeypatch, capsys):
    """Keras' weights files are hubensemble's downloads too: their bytes show, as a module
    archive's do (test_hub: test_downloads_show_their_bytes_unless_quiet)."""
    import argparse

    from hubensemble import terminal

    monkeypatch.setattr(terminal, "BAR_DELAY", 0.0)
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    server = Server()
    try:
        monkeypatch.setenv(sources.WEIGHTS_MIRROR_ENV, server.url)
        server.add(f"/{fname}", b"not the weights")
        with terminal.terminal_log(argparse.Namespace(quiet=False, verbose=False)):
            with pytest.raises(ModuleLoadError):  # checked after: not Keras' file
                hubensemble.hub.locate(f"keras:{APP}")
    finally:
        server.close()
    assert f"download {server.url}/{fname}" in capsys.readouterr().err


def test_offline_imagenet_weights_name_the_file_and_where_to_put_it(keras_home, monkeypatch):
    server = Server()
    try:
        monkeypatch.setenv(sources.WEIGHTS_MIRROR_ENV, server.url)  # answers 404
        with pytest.raises(ModuleLoadError) as err:
            ModuleRuntime.load(f"keras:{APP}", name="mnv3")
    finally:
        server.close()
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    message = str(err.value)
    assert err.value.stage == "network" and "mnv3" in message
    assert fname in message and str(keras_home / "models" / fname) in message
    assert "offline" in message and "weights:" in message
    assert "HTTP Error 404: Not Found; nothing is at that address; check its spelling" in message
    assert "\n" not in message, "one line"
    assert not os.path.exists(keras_home / "models" / fname)


def test_imagenet_weights_download_is_bounded_and_hash_checked(keras_home, monkeypatch):
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    server = Server(hang=30)
    try:
        monkeypatch.setenv(sources.WEIGHTS_MIRROR_ENV, server.url)
        server.add(f"/{fname}", b"x", mode="hang")
        monkeypatch.setattr(resolvers, "HTTP_TIMEOUT", 1.0)
        start = time.monotonic()
        with pytest.raises(ModuleLoadError) as err:
            hubensemble.hub.locate(f"keras:{APP}")
        assert err.value.stage == "network" and time.monotonic() - start < 15
        server.add(f"/{fname}", b"not the weights")  # served, but not Keras' file
        with pytest.raises(ModuleLoadError) as err:
            hubensemble.hub.locate(f"keras:{APP}")
        assert err.value.stage == "checksum" and "removed" in str(err.value)
        # the hash Keras checks by (its 32 hex digits: md5), not what get_file was asked
        # ("does not match the auto hash", before)
        assert "does not match the md5 hash Keras expects (" in str(err.value), err.value
        assert not os.path.exists(keras_home / "models" / fname)
    finally:
        server.close()
    # A file someone put in Keras' cache that is not Keras' file is named, not loaded.
    (keras_home / "models").mkdir(exist_ok=True)
    (keras_home / "models" / fname).write_bytes(b"stale")
    with pytest.raises(ModuleLoadError, match="delete it") as err:
        hubensemble.hub.locate(f"keras:{APP}")
    assert err.value.stage == "checksum" and str(keras_home / "models" / fname) in str(err.value)
    assert "does not match the md5 hash Keras expects for" in str(err.value), err.value


def test_the_weights_hash_check_is_keras_own(tmp_path):
    """sources checks a weights file as Keras' get_file does (its validate_file, an internal
    it no longer calls): the same answer for md5 and sha256 hashes, asked by name or "auto"
    (by the hash's length), matching or not."""
    from keras.src.utils import file_utils

    path = tmp_path / "w.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 5000)
    digests = {name: getattr(hashlib, name)(path.read_bytes()).hexdigest()
               for name in ("md5", "sha256")}
    for name, digest in digests.items():
        for asked in (name, "auto"):
            for file_hash in (digest, "0" * len(digest)):
                request = sources.WeightsRequest("w.h5", "https://x/w.h5", file_hash, asked,
                                                 "models", str(tmp_path))
                assert request.algorithm == name
                assert sources._validate(str(path), request) == file_utils.validate_file(
                    str(path), file_hash, algorithm=asked) == (file_hash == digest)
    assert sources._validate(str(path), sources.WeightsRequest(
        "w.h5", "https://x/w.h5", None, "auto", "models", str(tmp_path)))


def test_the_keras_internals_sources_relies_on_are_there():
    """hub.sources keeps two Keras internals (setup.cfg notes each, with its fall-back):
    keras.src.utils.file_utils.get_file, intercepted (test_imagenet_weights_are_the_file_
    keras_get_file_asks_for), and serialization_lib.SafeModeScope, which turns Keras' safe
    mode on and off around a keras-hub load; kerasenv reads Keras' folder from
    keras.src.backend.config.keras_home. Without them nothing fails here but the words or
    the folder: this test names the one a Keras release moved."""
    from keras.src.backend import config

    from hubensemble import kerasenv

    assert kerasenv.imported_keras_home() == config.keras_home(), "keras_home moved"

    def lambda_config():  # anew each time: Keras' from_config changes the dict it reads
        return keras.saving.serialize_keras_object(keras.layers.Lambda(lambda t: t * 2.0))

    scope, scoped = sources._safe_mode_scope(True)
    assert scoped, "keras.src.saving.serialization_lib.SafeModeScope moved"
    with scope, pytest.raises(ValueError, match="arbitrary code execution"):
        keras.saving.deserialize_keras_object(lambda_config())
    scope, _ = sources._safe_mode_scope(False)
    with scope:
        assert isinstance(keras.saving.deserialize_keras_object(lambda_config()),
                          keras.layers.Lambda)
    with pytest.raises(ValueError, match="arbitrary code execution"):  # the scope ended
        keras.saving.deserialize_keras_object(lambda_config())


def test_a_keras_without_the_get_file_internal_is_refused_in_words(monkeypatch):
    """A Keras release that moves keras.src.utils.file_utils.get_file (the internal through
    which hubensemble learns an application's weights file): an AttributeError from inside
    the probe, before; a RuntimeError naming the internal and the way on."""
    from keras.src.utils import file_utils

    monkeypatch.delattr(file_utils, "get_file")
    sources.imagenet_weights_request.cache_clear()
    try:
        with pytest.raises(RuntimeError) as err:
            sources.imagenet_weights_request(APP, (224, 224))
    finally:
        sources.imagenet_weights_request.cache_clear()
    assert str(err.value) == sources.WEIGHTS_PROBE_GONE.format(version=keras.__version__)
    assert "keras.src.utils.file_utils.get_file" in str(err.value)
    assert "`weights:` on the catalogue entry" in str(err.value)


# --- safety and pins -------------------------------------------------------------------------

def test_a_lambda_layer_in_a_keras_file_is_refused_unless_trusted(tmp_path):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    for suffix in (".keras", ".h5"):
        path = str(tmp_path / f"lambda{suffix}")
        model.save(path)
        with pytest.raises(ModuleLoadError, match="trust: true") as err:
            ModuleRuntime.load(path)
        assert err.value.stage == "unsafe"
        assert ModuleRuntime.load(path, trust=True)(np.ones((1, 8, 8, 3))).shape == (1, 3)


def test_a_saved_model_pb_that_cannot_be_parsed_names_its_module_and_handle(tmp_path):
    """A new-user check: the reason was "[savedmodel] cannot parse …/saved_model.pb: …"
    without the module and handle every other module error names (docs/rank.md)."""
    import hubensemble.hub

    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "saved_model.pb").write_bytes(b"\xff\xfe not a protobuf" * 9)
    with pytest.raises(ModuleLoadError, match=r"saved_model.pb") as err:
        hubensemble.hub.locate(str(tmp_path / "garbage"), name="junk")
    assert err.value.stage == "savedmodel" and err.value.module == "junk"
    assert err.value.handle == str(tmp_path / "garbage") and "module 'junk'" in str(err.value)


def test_the_safety_scan_says_what_a_saved_model_pb_that_does_not_parse_holds(
        tmp_path, tiny_module):
    """The safety scan parsed saved_model.pb itself and said "cannot parse …/saved_model.pb:
    Error parsing message" for a saved web page or a copy cut short, where `catalogue
    validate` and the loader say what the bytes are and the way on
    (`savedmodel_calls.saved_model_pb_problem`, the one copy of that check): the same words
    now, on every path."""
    import hubensemble.hub
    from hubensemble.savedmodel_calls import saved_model_pb_problem

    with open(os.path.join(tiny_module, "saved_model.pb"), "rb") as f:
        whole = f.read()
    way = "; copy or download the module whole again (saved_model.pb with its variables/ folder)"
    for name, data, words in (
            ("page", b"<html><body>Not found</body></html>", "holds text (it starts with "
             "'<html><body>Not found</body></html>'), such as a web page or an error message "
             "a server sent, not a SavedModel"),
            ("cut", whole[:40], "does not parse as a SavedModel (40 bytes: cut short, or "
             "damaged)")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(data)
        pb = str(tmp_path / name / "saved_model.pb")
        with pytest.raises(ModuleLoadError) as err:
            hubensemble.hub.locate(str(tmp_path / name), name=name)
        assert err.value.stage == "savedmodel" and err.value.module == name
        assert err.value.message == f"{pb} {words}{way}"
        assert err.value.message == saved_model_pb_problem(str(tmp_path / name))


def test_a_tf1_module_that_reads_files_is_refused(tmp_path):
    _write_tf1(tmp_path / "reader", read_file=True)
    with pytest.raises(ModuleLoadError, match="ReadFile") as err:
        ModuleRuntime.load(str(tmp_path / "reader"))
    assert err.value.stage == "unsafe"


def test_sha256_pins_the_keras_file_and_the_weights_file(kinds):
    path = kinds.paths["keras-file"]
    assert ModuleRuntime.load(path, sha256=file_sha256(path)).output_dim == 6
    with pytest.raises(ModuleLoadError, match="sha256") as err:
        ModuleRuntime.load(path, sha256="0" * 64)
    assert err.value.stage == "checksum"
    with pytest.raises(ModuleLoadError, match="app.weights.h5") as err:
        hubensemble.hub.locate(f"keras:{APP}", weights=kinds.weights, sha256="1" * 64)
    assert err.value.stage == "checksum"
    files = hubensemble.hub.locate(f"keras:{APP}", weights=kinds.weights,
                                   sha256=file_sha256(kinds.weights))
    assert files.path == kinds.weights and files.kind == "keras-application"


# --- choosing the embedding: layer, signature, output_key -------------------------------------

def test_layer_names_the_embedding_and_an_unknown_one_lists_the_choices(kinds):
    path = kinds.paths["keras-file"]
    logits = ModuleRuntime.load(path, layer="logits")
    assert logits.output_dim == 4
    with pytest.raises(ModuleLoadError, match="pool") as err:
        ModuleRuntime.load(path, layer="nope")
    assert err.value.stage == "output" and "no layer 'nope'" in str(err.value)
    # The layer changes the embedding, so it changes the content key rank caches under.
    assert logits.fingerprint != ModuleRuntime.load(path).fingerprint


@pytest.mark.parametrize("sequential", [False, True])
def test_a_keras_classifier_with_a_convolutional_head_is_cut_before_it(tmp_path, sequential):
    # keras.applications.MobileNet / MobileNetV3 with include_top=True end in a 1x1 Conv2D
    # (the logits), Reshape/Flatten and a softmax, with no Dense layer: their .keras file was
    # ranked on its class probabilities as if they were features, without a word.
    keras.utils.set_random_seed(7)
    head = [keras.layers.Conv2D(6, 3, name="conv"), keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Conv2D(4, 1, name="conv_preds"), keras.layers.Flatten(name="flat"),
            keras.layers.Activation("softmax", name="predictions")]
    if sequential:
        model = keras.Sequential([keras.Input((None, None, 3))] + head)
    else:
        inp = keras.Input((None, None, 3))
        x = inp
        for layer in head:
            x = layer(x)
        model = keras.Model(inp, x)
    path = str(tmp_path / "clf.keras")
    model.save(path)
    runtime = ModuleRuntime.load(path)
    features = keras.Model(model.inputs[0], model.get_layer("conv").output)(X)
    np.testing.assert_allclose(runtime(X).numpy(), np.mean(features, axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)
    # The rule read without loading (the cache keys' default) names the same layer, and a
    # `layer:` at a feature map is averaged over space, so writing it out is the same module.
    assert keras_default_layer(path) == "drop"
    written = ModuleRuntime.load(path, layer="drop")
    assert written.output_dim == 6
    np.testing.assert_allclose(written(X).numpy(), runtime(X).numpy(), rtol=1e-6)
    assert default_call(written.files)[0] == default_call(runtime.files)[0]
    # ... keyed apart from the whole model's reading an earlier hubensemble cached.
    assert default_call(written.files)[0] != runtime.files.content
    # A Sequential with neither head is its own embedding (the whole model).
    plain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(5, 3),
                              keras.layers.GlobalAveragePooling2D()])
    plain.save(tmp_path / "plain.keras")
    assert ModuleRuntime.load(str(tmp_path / "plain.keras")).output_dim == 5


def test_signature_and_output_key_choose_what_a_savedmodel_returns(kinds):
    path = kinds.paths["exported"]
    default = ModuleRuntime.load(path)
    assert default.obj.signature_name == "serving_default" and default.obj.output_key == "output_0"
    serve = ModuleRuntime.load(path, signature="serve")
    np.testing.assert_allclose(serve(X).numpy(), default(X).numpy(), rtol=1e-6)
    with pytest.raises(ModuleLoadError, match="serve, serving_default") as err:
        ModuleRuntime.load(path, signature="predict")
    assert err.value.stage == "savedmodel"
    with pytest.raises(ModuleLoadError, match="output_0") as err:
        ModuleRuntime.load(path, output_key="features")
    assert err.value.stage == "output"


def test_a_rescaling_keras_file_is_fed_its_own_range(tmp_path):
    model = _classifier(7, rescale=True)
    model.save(tmp_path / "pixels.keras")
    runtime = ModuleRuntime.load(str(tmp_path / "pixels.keras"), value_range="0,255")
    reference = keras.Model(model.input, model.get_layer("pool").output)(255.0 * X).numpy()
    np.testing.assert_allclose(runtime(X).numpy(), reference, rtol=1e-4, atol=1e-5)


def test_a_rescaling_keras_file_fed_the_default_range_is_warned_of(tmp_path, caplog):
    # Fed [0, 1], Rescaling(1/255) makes every image nearly black: it ranked and trained, badly,
    # without a word (a new user's model; the docs ask for value_range: [0, 255]).
    _classifier(9, rescale=True).save(tmp_path / "pixels.keras")
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(str(tmp_path / "pixels.keras"), name="mine")
    (record,) = [r for r in caplog.records if "Rescaling" in r.getMessage()]
    assert "mine" in record.getMessage() and "value_range: [0, 255]" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(str(tmp_path / "pixels.keras"), value_range="0,255")
        _classifier(9).save(tmp_path / "plain.keras")
        ModuleRuntime.load(str(tmp_path / "plain.keras"))
    assert not [r for r in caplog.records if "Rescaling" in r.getMessage()]


def test_a_normalization_of_pixels_after_the_input_reads_as_0_255(tmp_path, caplog):
    # A Normalization by ImageNet's pixel mean (123.7, …) takes [0, 255] as Rescaling(1/255)
    # does; it was read as [0, 1], fed so without a word (every image far below its mean).
    from hubensemble.hub.sources import guess_value_range

    def normalized(mean, variance):
        inp = keras.Input((None, None, 3))
        x = keras.layers.Normalization(mean=mean, variance=variance)(inp)
        return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))

    pixels = normalized([123.7, 116.3, 103.5], [3409.0, 3262.0, 3291.0])
    pixels.save(tmp_path / "pixels.keras")
    assert guess_value_range(pixels) == "0,255"
    assert guess_value_range(normalized([0.485, 0.456, 0.406], [0.05, 0.05, 0.05])) == "0,1"
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(str(tmp_path / "pixels.keras"), name="normed")
    (record,) = [r for r in caplog.records if "Normalization" in r.getMessage()]
    assert "normed" in record.getMessage() and "value_range: [0, 255]" in record.getMessage()


def test_catalogue_add_of_a_rescaling_keras_file_reads_its_range_without_warning(tmp_path):
    # add warned "its value_range is [0, 1]: it sees every image nearly black", then wrote
    # value_range: [0, 255] itself: the warning is for an entry used with [0, 1].
    from hubensemble.hub import notices

    _classifier(11, rescale=True).save(tmp_path / "rescale.keras")
    target = tmp_path / "c.yaml"
    with notices.captured() as said:
        assert cli.main(["catalogue", "add", str(tmp_path / "rescale.keras"), "--to",
                         str(target)]) == 0
    assert load_catalogue(target)[0].value_range == "0,255"
    assert not [text for text in said if "Rescaling" in text], said
    with notices.captured() as said:  # the entry used with [0, 1] is still warned of
        ModuleRuntime.load(str(tmp_path / "rescale.keras"), name="used")
    assert [text for text in said if "Rescaling" in text and "used" in text], said


class OwnSub(keras.Model):
    """A subclassed model that no `register_keras_serializable` import makes loadable."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3)
        self.pool = keras.layers.GlobalAveragePooling2D()

    def call(self, x):
        return self.pool(self.conv(x))


def test_a_keras_file_of_a_class_of_its_own_says_how_to_catalogue_it(tmp_path):
    model = OwnSub()
    model(X)
    model.save(tmp_path / "sub.keras")
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.load(str(tmp_path / "sub.keras"), name="sub")
    text = str(err.value)
    assert err.value.stage == "load" and "'OwnSub'" in text and "model.export(DIR)" in text
    assert "Full object config" not in text
    # ... and the way on works: the exported SavedModel loads and embeds as the model does.
    export_quietly(model, str(tmp_path / "sub_export"))
    runtime = ModuleRuntime.load(str(tmp_path / "sub_export"), input_size=(32, 32))
    np.testing.assert_allclose(runtime(X).numpy(), model(X).numpy(), rtol=1e-5, atol=1e-6)


def _channels_module(path, channels, *, keras_file=False):
    """A module taking [N, H, W, channels] float images: a functional .keras file, or a
    tf.Module saved by tf.saved_model.save (a signature, no `variables` attribute)."""
    keras.utils.set_random_seed(channels)
    if keras_file:
        inp = keras.Input((None, None, channels))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(5, 3)(inp))
        keras.Model(inp, x).save(path)
        return keras.saving.load_model(path)
    module = tf.Module()
    module.kernel = tf.Variable(tf.random.stateless_normal([3, 3, channels, 5], [channels, 0]))
    module.__call__ = tf.function(
        lambda x: tf.reduce_mean(tf.nn.conv2d(x, module.kernel, 1, "SAME"), [1, 2]),
        input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)])
    tf.saved_model.save(module, str(path))
    return module.__call__


@pytest.mark.parametrize("keras_file", [False, True])
def test_a_grey_module_gets_the_luminance_and_other_channel_counts_are_refused(
        tmp_path, keras_file):
    # A 1-channel module failed in rank with "its __call__ was saved for float32 images
    # [None, None, None, 3]" (the wrong shape) and a fix that could not work (input_size).
    suffix = ".keras" if keras_file else ""
    grey = _channels_module(str(tmp_path / f"grey{suffix}"), 1, keras_file=keras_file)
    runtime = ModuleRuntime.load(str(tmp_path / f"grey{suffix}"), name="grey")
    luminance = tf.image.rgb_to_grayscale(X)
    np.testing.assert_allclose(runtime(X).numpy(), grey(luminance).numpy(), rtol=1e-5,
                               atol=1e-6)
    assert runtime.signature.channels == 1
    # Through HubLayer in a classifier (rank, tune and the export build it so), and exported.
    model = keras.Sequential([keras.Input((None, None, 3)), HubLayer(str(tmp_path / f"grey"
                              f"{suffix}")), keras.layers.Dense(2)])
    export_quietly(model, str(tmp_path / "served"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(tf.constant(X)).numpy(), model(X).numpy(),
                               rtol=1e-5, atol=1e-6)
    _channels_module(str(tmp_path / f"rgba{suffix}"), 4, keras_file=keras_file)
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.load(str(tmp_path / f"rgba{suffix}"), name="rgba")
    assert err.value.stage == "input" and "4 channels" in str(err.value)
    assert "[None, None, None, 4]" in str(err.value)


def test_a_keras_file_with_several_outputs_asks_for_its_layer_and_a_dict_for_its_key(
        tmp_path):
    # Two (list) outputs failed at the first call with "'list' object has no attribute
    # 'shape'", naming neither the module nor the fix; a dict output's width was its first
    # output's, whatever output_key chose.
    inp = keras.Input((None, None, 3))
    wide = keras.layers.GlobalAveragePooling2D(name="wide")(keras.layers.Conv2D(6, 3)(inp))
    thin = keras.layers.GlobalAveragePooling2D(name="thin")(keras.layers.Conv2D(2, 3)(inp))
    keras.Model(inp, [wide, thin]).save(tmp_path / "two.keras")
    keras.Model(inp, {"wide": wide, "thin": thin}).save(tmp_path / "dict.keras")
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.load(str(tmp_path / "two.keras"), name="two")
    assert err.value.stage == "output" and "2 outputs" in str(err.value)
    assert "'wide', 'thin'" in str(err.value) and "set `layer:`" in str(err.value)
    assert ModuleRuntime.load(str(tmp_path / "two.keras"), layer="thin")(X).shape == (4, 2)
    runtime = ModuleRuntime.load(str(tmp_path / "dict.keras"), output_key="thin")
    assert runtime.output_dim == 2 and runtime(X).shape == (4, 2)


@pytest.mark.parametrize("keras_file", [False, True])
def test_a_channels_first_module_is_fed_its_images_transposed(tmp_path, keras_file, caplog):
    # A [B, 3, H, W] module was said to take "images with 32 channels" (its width), or, at any
    # size, failed inside the call with Keras' shape error; then it was refused, naming
    # keras.layers.Permute((3, 1, 2)) in front of it as the fix, which the runtime now is: the
    # same values reordered, so the embeddings are the module's on the transposed images,
    # exactly (imagenet's per-channel normalisation before the transpose).
    images = np.random.default_rng(3).random((4, 32, 32, 3), np.float32)
    for size in (32, None) if keras_file else (None,):  # each SavedModel save costs ~2 s
        path = str(tmp_path / f"nchw{size}{'.keras' if keras_file else ''}")
        if keras_file:
            keras.utils.set_random_seed(4)
            inp = keras.Input((3, size, size))
            x = keras.layers.Conv2D(5, 3, data_format="channels_first")(inp)
            keras.Model(inp, keras.layers.GlobalAveragePooling2D(
                data_format="channels_first")(x)).save(path)
        else:
            module = tf.Module()
            module.__call__ = tf.function(
                lambda x: tf.reduce_mean(x * [[[1.0]], [[2.0]], [[3.0]]], [2, 3]),
                input_signature=[tf.TensorSpec([None, 3, size, size], tf.float32)])
            tf.saved_model.save(module, path)
        with caplog.at_level(logging.INFO, logger="hubensemble.hub.runtime"):
            runtime = ModuleRuntime.load(path, name="nchw", value_range="imagenet")
        assert "channels-first" in caplog.text and "Permute((3, 1, 2))" in caplog.text
        assert runtime.signature.sizes == (((32, 32),) if size else ())
        assert runtime.signature.channels == 3
        nchw = np.transpose(to_value_range(images, "imagenet").numpy(), (0, 3, 1, 2))
        np.testing.assert_array_equal(runtime(images).numpy(), runtime.obj(nchw).numpy())


def test_a_tf_module_saved_without_signature_or_call_names_its_functions_and_the_fix(
        tmp_path):
    # Said "not a reusable SavedModel: it needs __call__ and variables … or a signature", not
    # what it holds nor how to save it with one.
    module = tf.Module()
    module.kernel = tf.Variable(tf.ones([3]))
    module.embed = tf.function(lambda x: tf.reduce_mean(x * module.kernel, [1, 2]))
    module.embed(X[:1])
    tf.saved_model.save(module, str(tmp_path / "plain"))
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.load(str(tmp_path / "plain"), name="plain")
    text = str(err.value)
    assert err.value.stage == "savedmodel" and "module 'plain'" in text
    assert "the functions embed, no __call__ and no signature" in text
    assert "signatures=module.embed.get_concrete_function(" in text


def test_a_signature_module_whose_variables_are_not_exposed_is_said_frozen(tmp_path, caplog):
    # tf.saved_model.save of a tf.Module keeps no `variables` attribute: its signature was used
    # frozen with no warning (the docs promise one) and `catalogue add` recorded no params.
    _channels_module(str(tmp_path / "plain"), 3)
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        runtime = ModuleRuntime.load(str(tmp_path / "plain"), name="plain")
    assert runtime.trainable_variables == [] and "used frozen" in runtime.frozen_reason
    # it has __call__: the way on is the attributes, not "a reusable SavedModel with __call__"
    # (a new-user check: a float16 tf.Module saved with __call__ was told to save __call__)
    assert ("it has __call__ but no `variables` and `trainable_variables` attributes"
            in runtime.frozen_reason and "root.trainable_variables = list("
            in runtime.frozen_reason), runtime.frozen_reason
    assert any(r.getMessage().startswith("module plain: ") and "used frozen" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        HubLayer(str(tmp_path / "plain"), trainable=True)  # another name (its handle): said
    assert any("used frozen" in r.getMessage() for r in caplog.records)
    target = tmp_path / "c.yaml"
    assert cli.main(["catalogue", "add", str(tmp_path / "plain"), "--to", str(target)]) == 0
    assert load_catalogue(target)[0].params == 3 * 3 * 3 * 5


def test_a_model_holding_any_kind_of_savedmodel_exports_and_reloads(tmp_path, tiny_module):
    # A tf.Module saved with only a signature (rank, tune, cost worked: "used frozen") made
    # fit's export crash in TensorFlow: "Tried to export a function which references an
    # 'untracked' resource" (the variables its signature reads, which HubLayer held nowhere).
    # One model holds a HubLayer of each kind (a tf.Module's signature, a model.export
    # SavedModel, a reusable TF Hub one), exported and saved once each: a kind whose layer
    # fails any of the three saves fails the test (each save costs seconds of tracing; one
    # model per kind made it three times as long).
    from hubensemble.export import ExportMember, save_export

    _channels_module(str(tmp_path / "tf.Module"), 3)
    export_quietly(_classifier(3), str(tmp_path / "model.export"))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Concatenate()([
        HubLayer(path, trainable=True)(inputs)
        for path in (str(tmp_path / "tf.Module"), str(tmp_path / "model.export"), tiny_module)])
    clf = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    images = X[:, :16, :16]
    want = clf(images).numpy()
    out = tmp_path / "export"
    assert save_export([ExportMember(clf, 16, 1.0, {"trial": "t0"})], list("abcd"), out,
                       check_images=images) <= 1e-5
    served = tf.saved_model.load(str(out)).signatures["serving_default"]
    assert np.abs(served(images=tf.constant(images))["probabilities"].numpy()
                  - want).max() <= 1e-5
    # The same kind of fault in the other ways a model holding the layer is saved.
    write_hub_module(clf, tmp_path / "rewritten")
    assert np.abs(HubLayer(tmp_path / "rewritten")(images).numpy() - want).max() <= 1e-5
    tf.saved_model.save(clf, str(tmp_path / "plain"))
    assert np.abs(tf.saved_model.load(str(tmp_path / "plain")).signatures["serving_default"](
        tf.constant(images))["output_0"].numpy() - want).max() <= 1e-5


def test_an_entry_writing_out_its_modules_defaults_is_the_same_module(tmp_path, in_process,
                                                                      caplog):
    # `catalogue add` writes `signature: serving_default` and `output_key`: an entry of the
    # same folder without them was not matched (compared as written), and add, validate and
    # rank took the two for two modules.
    from hubensemble.samemodule import same_module_pairs

    _channels_module(str(tmp_path / "tfmodule"), 3)
    target = tmp_path / "c.yaml"
    target.write_text("modules:\n  - name: t1\n    handle: ./tfmodule\n")
    with caplog.at_level(logging.WARNING, logger="hubensemble.catalogue_writer"):
        code, _, err = in_process("catalogue", "add", tmp_path / "tfmodule", "--to", target)
    assert code == 0, err
    specs = load_catalogue(target)
    assert (specs[1].signature, specs[1].output_key) == ("serving_default", "output_0")
    assert "entry 'tfmodule' loads the same module as entry 't1'" in caplog.text
    code, _, err = in_process("catalogue", "validate", target)
    assert code == 0 and "entry 'tfmodule' loads the same module as entry 't1'" in err, err
    # Another signature of one module is another reading (keras.Model.export: serve and
    # serving_default); a default resolved from saved_model.pb, nothing loaded.
    export_quietly(_classifier(5), str(tmp_path / "exported"))
    a, b, c = (ModuleSpec(name, str(tmp_path / "exported"), signature=sig) for name, sig in
               (("a", None), ("b", "serve"), ("c", "serving_default")))
    assert [(x.name, y.name) for x, y, _ in same_module_pairs([a, b, c])] == [("c", "a")]


def test_validate_compares_a_savedmodels_signatures_without_tensorflow(
        tmp_path, kinds, tiny_module):
    # Two entries of one local SavedModel differing only in `signature` made `catalogue
    # validate` import TensorFlow (~10 s) to read saved_model.pb; the wire format is read now.
    from hubensemble.savedmodel_calls import read_calls

    _channels_module(str(tmp_path / "plain"), 3)
    for path in (kinds.paths["exported"], kinds.paths["tf1"], str(tmp_path / "plain"),
                 tiny_module):  # as tf.saved_model.load lists them
        loaded = tf.saved_model.load(path)
        calls = read_calls(path)
        assert sorted(calls.signatures) == sorted(loaded.signatures), path
        assert all(calls.signatures[n] == tuple(sorted(loaded.signatures[n].structured_outputs))
                   for n in calls.signatures)
        assert calls.reusable == (path == tiny_module)
    (tmp_path / "c.yaml").write_text(
        f"modules:\n  - name: a\n    handle: {kinds.paths['exported']}\n"
        f"  - name: b\n    handle: {kinds.paths['exported']}\n    signature: serve\n"
        f"  - name: c\n    handle: {kinds.paths['exported']}\n"
        "    signature: serving_default\n    output_key: output_0\n")
    code = ("import sys; from hubensemble.cli import main; "
            "c = main(['catalogue', 'validate', sys.argv[1]]); "
            "print('tensorflow' in sys.modules); sys.exit(c)")
    run = bounded_by_cpu([sys.executable, "-c", code, str(tmp_path / "c.yaml")],
                         capture_output=True, text=True, cpu=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "False", run.stderr
    assert "entry 'c' loads the same module as entry 'a'" in run.stderr
    assert "entry 'b'" not in run.stderr  # another signature: another reading


def test_a_module_whose_only_signature_is_not_serving_default_is_compared(tmp_path):
    # tf.saved_model.save adds __saved_model_init_op to the signatures saved_model.pb lists
    # (tf.saved_model.load does not): the reading took a module whose one signature is
    # "serve" for one of several, and validate and rank crashed comparing its entries
    # ("TypeError: bad argument type for built-in operation").
    from hubensemble.samemodule import same_module_pairs

    module = tf.Module()
    module.kernel = tf.Variable(tf.ones([3, 3, 3, 2]))
    serve = tf.function(lambda x: {"feat": tf.reduce_mean(tf.nn.conv2d(
        x, module.kernel, 1, "SAME"), [1, 2])}, autograph=False,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "m"), signatures={"serve": serve})
    a, b, c = (ModuleSpec(name, str(tmp_path / "m"), signature=sig, output_key=key)
               for name, sig, key in (("a", None, None), ("b", "serve", None),
                                      ("c", None, "feat")))
    assert [(x.name, y.name) for x, y, _ in same_module_pairs([a, b, c])] == [("b", "a"),
                                                                              ("c", "a")]


def test_catalogue_add_names_its_flag_where_the_module_asks_for_a_field(tmp_path, caplog):
    # A dict output was told to "set output_key on its catalogue entry": `catalogue add`
    # writes the entry, and takes the field as --output-key.
    module = tf.Module()
    module.kernel = tf.Variable(tf.ones([3, 3, 3, 2]))
    module.__call__ = tf.function(
        lambda x: {"pooled": tf.reduce_mean(x, [1, 2]),
                   "map": tf.nn.conv2d(x, module.kernel, 1, "SAME")},
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "dict"))
    target = tmp_path / "c.yaml"
    with caplog.at_level(logging.ERROR, logger="hubensemble.catalogue_writer"):
        assert cli.main(["catalogue", "add", str(tmp_path / "dict"), "--to", str(target)]) == 1
    assert any("; pass --output-key KEY, the embedding's key" in r.getMessage()
               for r in caplog.records)
    assert cli.main(["catalogue", "add", str(tmp_path / "dict"), "--output-key", "pooled",
                     "--to", str(target)]) == 0
    assert load_catalogue(target)[0].output_key == "pooled"


def test_a_signature_returning_a_softmax_is_warned_of(tmp_path, caplog):
    # A classifier's model.export() ranked on its 4 class probabilities as if they were
    # features, without a word; cut before its head, it is a feature module.
    model = _classifier(10)
    head = keras.Model(model.input, keras.layers.Softmax()(model.output))
    export_quietly(head, str(tmp_path / "probs"))
    export_quietly(keras.Model(model.input, model.get_layer("pool").output),
                   str(tmp_path / "features"))
    _write_tf1(tmp_path / "tf1")
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(str(tmp_path / "probs"), name="probs")
        for other in ("features", "tf1"):
            ModuleRuntime.load(str(tmp_path / other), name=other)
    (record,) = [r for r in caplog.records if "Softmax" in r.getMessage()]
    assert "module probs" in record.getMessage() and "export(DIR)" in record.getMessage()


def test_a_savedmodel_returning_imagenet_logits_is_warned_of_as_a_classifier(
        tmp_path, caplog, kinds):
    # A TF Hub classification module (imagenet/mobilenet_v2_100_224/classification/5: 1001
    # logits from a dense layer) ranked and transferred on its logits without a word.
    from hubensemble.hub.outputs import output_op

    clf = make_tiny_model(seed=11, width=4, out_dim=1001)
    write_hub_module(clf, str(tmp_path / "clf"))
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        assert ModuleRuntime.load(str(tmp_path / "clf"), name="clf").output_dim == 1001
        ModuleRuntime.load(kinds.paths["hub"], name="features")  # a feature vector: no word
    (record,) = [r for r in caplog.records if "not features" in r.getMessage()]
    text = record.getMessage()
    assert text.startswith("module clf (") and "1001 values from a dense layer" in text
    assert "feature-vector variant" in text
    # A __call__ ending in a Softmax is told by its op too (as a signature's is).
    spec = tf.TensorSpec([None, 5], tf.float32)
    assert output_op(tf.function(tf.nn.softmax).get_concrete_function(spec), None) == "Softmax"


def test_a_keras_classifier_whose_head_is_not_cut_is_warned_of(tmp_path, caplog):
    # A SqueezeNet-style head (1x1 Conv2D logits, GlobalAveragePooling2D, softmax) is not a
    # head `_conv_head_input` cuts: its .keras file was ranked on its class probabilities
    # without a word, where a SavedModel's Softmax is warned of.
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(6, 3),
                              keras.layers.Conv2D(4, 1, name="logits"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Activation("softmax", name="probs")])
    model.save(tmp_path / "squeeze.keras")
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        assert ModuleRuntime.load(str(tmp_path / "squeeze.keras"), name="sq").output_dim == 4
        cut = ModuleRuntime.load(str(tmp_path / "squeeze.keras"), name="cut",
                                 layer="logits")  # the user chose: no word
    (record,) = [r for r in caplog.records if "not features" in r.getMessage()]
    assert record.getMessage().startswith("module sq (") and "'probs' is a softmax" in (
        record.getMessage()) and "set `layer:`" in record.getMessage()
    assert cut.output_dim == 4


# --- remote reads: every one bounded, gs:// included ---------------------------------------

def test_a_gfile_read_that_never_answers_times_out(tmp_path):
    fifo = str(tmp_path / "stalled")
    os.mkfifo(fifo)  # opening it blocks until a writer comes: a source that never answers
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="longer than 0.5 s"):
            remote.copy_file(fifo, str(tmp_path / "copy"), timeout=0.5,
                             deadline=time.monotonic() + 60)
        assert time.monotonic() - start < 10
        assert not os.path.exists(tmp_path / "copy")
        assert not [p for p in os.listdir(tmp_path) if p.startswith((".tmp-", ".download-"))]
    finally:
        # Release the abandoned reader thread.
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(fifo) else None
        if fd is not None:
            os.close(fd)


def test_gs_handles_are_read_by_tensorflows_own_gcs_file_system():
    # docs/reliability.md leaves a gs:// request's retries to TensorFlow's GCS file system
    # (its RetryingGcsFileSystem, in libtensorflow_framework: by TensorFlow's source, up to
    # 10 more tries of a request answered HTTP 429/5xx or dropped). The pip wheel still
    # registers it for gs:// (2.21.0): without it a gs:// handle fails as an unknown scheme
    # and the docs would describe retries that no longer happen. (No request is made: there
    # is no bucket here, and its credentials lookup asks a metadata server off this host.)
    assert "gs" in tf.io.gfile.get_registered_schemes()


def _has_reader(fifo):
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError:
        return False


def test_call_with_deadline_returns_raises_and_abandons():
    assert remote.call_with_deadline(lambda a: a + 1, 1, timeout=5) == 2
    with pytest.raises(KeyError):
        remote.call_with_deadline({}.__getitem__, "k", timeout=5)
    release = threading.Event()
    with pytest.raises(TimeoutError, match="the wait took longer than 0.2 s"):
        remote.call_with_deadline(release.wait, timeout=0.2, what="the wait")
    release.set()


def test_a_read_stopped_by_the_deadline_names_the_deadline_not_the_read_timeout():
    release = threading.Event()

    class Stalled:  # a remote file whose reads get no answer
        def read(self, n):
            release.wait(30)
            return b""

        def close(self):
            pass

    start = time.monotonic()
    reader = remote.BoundedReader(Stalled, timeout=30, deadline=start + 0.3, what="gs://b/m")
    with pytest.raises(remote.DeadlineExceeded, match="HUBENSEMBLE_DOWNLOAD_DEADLINE") as err:
        reader.read(10)  # what is left of the deadline runs out before the 30 s read timeout
    assert "HUBENSEMBLE_HTTP_TIMEOUT" not in str(err.value) and time.monotonic() - start < 5
    reader = remote.BoundedReader(Stalled, timeout=0.3, deadline=time.monotonic() + 30,
                                  what="gs://b/m")
    with pytest.raises(TimeoutError, match="HUBENSEMBLE_HTTP_TIMEOUT") as err:
        reader.read(10)  # the read timeout runs out first
    assert not isinstance(err.value, remote.DeadlineExceeded)
    release.set()
    assert "DOWNLOAD_DEADLINE" in resolvers.network_hint(
        remote.DeadlineExceeded("reading x took longer than …"))


@pytest.mark.skipif(keras_hub is None, reason="the keras-hub extra is not installed")
def test_a_preset_fetch_past_the_deadline_names_the_deadline(tmp_path):
    # A host that takes the connection and never answers, as huggingface_hub's endpoint; the
    # loaders take no deadline of their own (their timeouts are per request and retried).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        env = {**os.environ, "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
               "HF_HOME": str(tmp_path / "hf"), "HUBENSEMBLE_DOWNLOAD_DEADLINE": "2",
               "HF_ENDPOINT": f"http://127.0.0.1:{listener.getsockname()[1]}"}
        env.pop("HF_HUB_OFFLINE", None)
        run = subprocess.run([sys.executable, "-m", "hubensemble", "catalogue", "add",
                              "hf://someone/a-preset", "--to", str(tmp_path / "c.yaml")],
                             capture_output=True, text=True, env=env, timeout=120)
    finally:
        listener.close()
    # No wall-clock bound beyond subprocess's: the words below say the deadline ended it, not
    # the read timeout or a retry (a 60 s bound failed at load 17 in a child importing TF).
    assert run.returncode != 0
    error = run.stderr.strip().splitlines()[-1]
    assert "[network]" in error and "hf://someone/a-preset" in error, error
    assert "took longer than the 2 s left of HUBENSEMBLE_DOWNLOAD_DEADLINE" in error, error
    assert "HUBENSEMBLE_HTTP_TIMEOUT" not in error, error  # it named the read timeout
    assert not (tmp_path / "c.yaml").exists()


def test_a_remote_folder_and_file_are_copied_into_the_cache_and_pinned(kinds, tmp_path,
                                                                       monkeypatch):
    # ram:// is TensorFlow's in-memory file system: a remote file system read through
    # tf.io.gfile exactly as gs:// is (no bucket needed).
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    resolvers.register_resolver("ram", resolvers.RemoteCopyResolver())
    src = f"ram://{tmp_path.name}/exported"
    for dirpath, _, files in os.walk(kinds.paths["exported"]):
        rel = os.path.relpath(dirpath, kinds.paths["exported"])
        for f in files:
            target = src if rel == "." else f"{src}/{rel}"
            tf.io.gfile.makedirs(target)
            tf.io.gfile.copy(os.path.join(dirpath, f), f"{target}/{f}")
    tf.io.gfile.copy(kinds.paths["keras-file"], f"ram://{tmp_path.name}/m.keras")
    pb = file_sha256(os.path.join(kinds.paths["exported"], "saved_model.pb"))
    runtime = ModuleRuntime.load(src, sha256=pb)
    assert str(tmp_path / "cache") in runtime.path
    np.testing.assert_allclose(runtime(X).numpy(), kinds.refs["exported"], rtol=1e-4, atol=1e-5)
    keras_file = ModuleRuntime.load(f"ram://{tmp_path.name}/m.keras",
                                    sha256=file_sha256(kinds.paths["keras-file"]))
    np.testing.assert_allclose(keras_file(X).numpy(), kinds.refs["keras-file"], rtol=1e-4,
                               atol=1e-5)
    tf.io.gfile.rmtree(src)  # the cache answers now
    assert ModuleRuntime.load(src).path == runtime.path


# --- catalogue add ------------------------------------------------------------------------

def test_catalogue_add_introspects_and_appends_valid_entries(kinds, tmp_path, capsys):
    target = tmp_path / "cat.yaml"
    target.write_text("# my modules\nmodules:\n  - name: first  # kept\n"
                      f"    handle: {kinds.paths['hub']}\n")
    handles = [kinds.paths[k] for k in ("keras-file", "exported", "tf1")]
    assert cli.main(["catalogue", "add", *handles, "--to", str(target)]) == 0
    assert cli.main(["catalogue", "add", f"keras:{APP}", "--weights", kinds.weights,
                     "--name", "mnv3", "--to", str(target)]) == 0
    assert cli.main(["catalogue", "validate", str(target)]) == 0
    text = target.read_text()
    assert text.startswith("# my modules\nmodules:\n  - name: first  # kept\n")
    specs = {s.name: s for s in load_catalogue(target)}
    assert list(specs) == ["first", "keras-file", "exported", "tf1", "mnv3"]
    assert specs["keras-file"].output_dim == 6 and specs["keras-file"].params == 3 * 3 * 3 * 6 + 6
    assert specs["keras-file"].sha256 == file_sha256(kinds.paths["keras-file"])
    assert specs["keras-file"].value_range == "0,1"
    exported = specs["exported"]
    assert (exported.signature, exported.output_key, exported.output_dim) == (
        "serving_default", "output_0", 5)
    assert exported.sha256 == file_sha256(os.path.join(kinds.paths["exported"], "saved_model.pb"))
    assert specs["tf1"].output_dim == 7 and specs["tf1"].params == 3 * 3 * 3 * 7
    app = specs["mnv3"]
    assert (app.handle, app.output_dim, app.input_size, app.params) == (
        f"keras:{APP}", 576, (224, 224), 939120)
    assert app.weights == kinds.weights and app.sha256 == file_sha256(kinds.weights)
    # What was appended loads back as what the runtime sees.
    runtime = ModuleRuntime.from_spec(specs["exported"])
    assert runtime.output_dim == exported.output_dim


@pytest.mark.skipif(keras_hub is None, reason="keras-hub is not installed")
def test_catalogue_add_reads_a_presets_image_size(kinds, tmp_path):
    target = tmp_path / "new.yaml"
    assert cli.main(["catalogue", "add", kinds.paths["keras-hub"], "--to", str(target)]) == 0
    (spec,) = load_catalogue(target)
    assert spec.input_size == (32, 32) and spec.output_dim == 16
    assert spec.sha256 == file_sha256(os.path.join(kinds.paths["keras-hub"], "model.weights.h5"))


def test_catalogue_add_of_a_rescaling_model_records_pixels(tmp_path):
    _classifier(8, rescale=True).save(tmp_path / "pixels.keras")
    target = tmp_path / "c.yaml"
    assert cli.main(["catalogue", "add", str(tmp_path / "pixels.keras"), "--to",
                     str(target)]) == 0
    assert load_catalogue(target)[0].value_range == "0,255"


def test_a_preset_loader_that_is_not_installed_is_named_not_the_connection(monkeypatch):
    # keras-hub 0.20 does not require huggingface_hub: without it an hf:// preset failed as
    # "[network] … (check the handle and your connection)". preset_utils holds None for a
    # loader that did not import, as keras-hub sets it itself.
    pytest.importorskip("keras_hub")
    from keras_hub.src.utils import preset_utils

    from hubensemble.hub.sources import fetch_preset

    monkeypatch.setattr(preset_utils, "huggingface_hub", None)
    with pytest.raises(ModuleLoadError) as caught:
        fetch_preset("hf://someone/a-preset", deadline_seconds=30)
    assert caught.value.stage == "handle", caught.value
    assert "huggingface_hub" in str(caught.value) and "connection" not in str(caught.value)


# --- modules that return class probabilities, whatever their layers ------------------------

def _probabilities(seed, *, keras_softmax):
    """Conv -> GlobalAveragePooling ("pool") -> 5 class probabilities with no Dense and no
    conv head: a Softmax layer, or exp / sum (a SavedModel classifier with no op named
    Softmax, as a graph exported from another framework can be)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(5, 3, name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if keras_softmax:
        return keras.Model(inp, keras.layers.Softmax(name="probs")(x))
    x = keras.layers.Activation("exponential")(x)
    return keras.Model(inp, keras.layers.Lambda(
        lambda t: t / keras.ops.sum(t, axis=-1, keepdims=True))(x))


def test_a_module_returning_probabilities_is_warned_of_whatever_its_layers(
        tmp_path, caplog, kinds):
    # Pooling then a Softmax layer (.keras), or a SavedModel classifier of 5 classes with no
    # Softmax op, were embedded whole with no word: the "embedding" was class probabilities.
    from hubensemble.hub.introspect import describe_module

    _probabilities(21, keras_softmax=True).save(tmp_path / "pooled.keras")
    write_hub_module(_probabilities(22, keras_softmax=False), str(tmp_path / "probs"))
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        assert describe_module(str(tmp_path / "pooled.keras"), name="pooled").output_dim == 5
        assert describe_module(str(tmp_path / "probs"), name="probs").output_dim == 5
        for kind in ("hub", "keras-file", "exported", "tf1"):  # feature vectors: no word
            describe_module(name=f"features-{kind}", **kinds.fields(kind))
    said = [r.getMessage() for r in caplog.records if "class probabilities" in r.getMessage()]
    assert len(said) == 2, said  # once each: the Keras file by its softmax layer, at load
    pooled, probs = sorted(said)
    assert pooled.startswith("module pooled (") and "its softmax takes 'pool'" in pooled
    assert "its last layer 'probs' is a softmax" in pooled, pooled
    assert probs.startswith("module probs (") and "feature-vector variant" in probs
    assert "rows of 5 values it returned are non-negative and sum to 1" in probs, probs
    # The L1 norm, not the L2: non-negative L2-normalised or ReLU features are not said.
    from hubensemble.hub.outputs import probability_rows

    relu = np.maximum(np.random.default_rng(0).normal(size=(8, 16)), 0)
    assert probability_rows(relu) is None
    assert probability_rows(relu / np.linalg.norm(relu, axis=1, keepdims=True)) is None
    assert probability_rows(np.ones((4, 1))) is None  # one value: a one-wide feature
    assert probability_rows(relu / relu.sum(axis=1, keepdims=True)) is not None


def test_an_output_key_on_a_module_returning_one_tensor_is_refused(tmp_path):
    # A Keras file with a dict output and a Dense head is cut at the Dense layer's input, and
    # `output_key: cls` was ignored without a word: the 8-d features, not the 3-d "cls".
    inp = keras.Input((None, None, 3))
    feat = keras.layers.GlobalAveragePooling2D(name="feat")(keras.layers.Conv2D(8, 3)(inp))
    keras.Model(inp, {"feat": feat, "cls": keras.layers.Dense(3, name="cls")(feat)}).save(
        tmp_path / "dict.keras")
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.load(str(tmp_path / "dict.keras"), name="d", output_key="cls")
    assert err.value.stage == "output" and "output_key 'cls' is set" in str(err.value)
    assert "[None, 8]" in str(err.value) and "`layer:`" in str(err.value)
    assert ModuleRuntime.load(str(tmp_path / "dict.keras"), layer="cls").output_dim == 3


def test_a_module_returning_probabilities_is_warned_of_once_by_a_stage_command_alone(
        tmp_path, caplog, monkeypatch):
    """`tune` or `export` run alone on a run folder (stage commands) build the module's
    HubLayer without rank's embeddings, which said it: the warning never came. Now the first
    catalogue layer of it in a process looks (a probe batch), once; and a warning that
    counts rows is said once whatever it counts (rank's train then test split, then tune)."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.hub import hub_layer_from_spec, notices

    write_hub_module(_probabilities(23, keras_softmax=False), str(tmp_path / "probs"))
    spec = ModuleSpec(name="probs", handle=str(tmp_path / "probs"))

    def said():
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "its output is class probabilities" in r.getMessage()]

    for stage in ("tune alone", "fit"):
        monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process
        monkeypatch.setattr(notices, "_PROBED", set(), raising=False)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
            if stage == "fit":  # rank's embeddings, of two splits, looked first
                runtime = ModuleRuntime.from_spec(spec)
                for n in (40, 12):
                    runtime.warn_if_probabilities(runtime(X[:1].repeat(n, 0)).numpy())
            for _ in range(2):  # two trials, then the export's members
                hub_layer_from_spec(spec, trainable=True)
        (text,) = said()
        assert text.startswith("module probs (") and "of 5 values it returned" in text, text
    # Only the counts are evened out: modules whose names differ by a digit are each said.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        for name in ("r8x2-generalist-0", "r8x2-generalist-1"):
            notices.module_warning(logging.getLogger("hubensemble.hub.runtime"),
                                   "module %s (h): its output is class probabilities", name)
    assert len(said()) == 2, said()


def test_a_file_url_with_a_host_is_a_unc_path_on_windows_and_refused_elsewhere(
        tmp_path, tiny_module):
    # RFC 8089: file://server/share/m is the file /share/m on the machine "server" (a UNC
    # path on Windows). It was read as the relative path server/share/m, joined to the
    # catalogue's folder, and failed as "does not exist" there, or loaded another module.
    import textwrap

    from hubensemble import hub
    from hubensemble.errors import CatalogueError
    from hubensemble.handles import file_url_path

    assert file_url_path("file://server/share/m%201", platform="win32") == \
        "\\\\server\\share\\m 1"
    assert file_url_path("file:///C:/models/m", platform="win32") == "C:/models/m"
    assert file_url_path("file:///opt/m", platform="linux") == "/opt/m"
    assert file_url_path("file://LocalHost/opt/m", platform="linux") == "/opt/m"
    # What the relative reading found: a folder server/share/m beside the catalogue.
    os.makedirs(tmp_path / "server" / "share")
    os.symlink(tiny_module, tmp_path / "server" / "share" / "m")
    cat = tmp_path / "cat.yaml"
    cat.write_text(textwrap.dedent("""
        modules:
          - {name: on-server, handle: "file://server/share/m"}
          - {name: here, handle: "file:///opt/models/m"}
        """), encoding="utf-8")
    with pytest.raises(CatalogueError) as err:
        load_catalogue(str(cat))
    said = str(err.value)
    assert (f"{cat}:3: field 'handle': 'file://server/share/m' names the machine 'server' "
            "(RFC 8089") in said, said
    assert "file:///share/m for the path /share/m on this machine" in said, said
    assert "server/share/m for a path relative to the catalogue's folder" in said, said
    with pytest.raises(ModuleLoadError) as err:  # a handle given in Python: the resolver's
        hub.ModuleRuntime.load("file://server/share/m")
    assert err.value.stage == "local path" and "names the machine 'server'" in str(err.value)


@pytest.mark.parametrize("url", [
    "https://www.kaggle.com/models/google/mobilenet-v2/TensorFlow2/100-224-feature-vector/5",
    "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"])
def test_a_hub_handle_with_the_compressed_format_query_says_the_handle_to_write(url):
    # A download link copied with ?tf-hub-format=compressed: tfhub.dev's handle was told the
    # handle without it, Kaggle's was "not a Kaggle Models handle with a version" with an
    # example of another model. Both say the handle to write.
    from hubensemble.handles import HandleFormError, check_handle_form

    with pytest.raises(HandleFormError) as err:
        check_handle_form(url + "?tf-hub-format=compressed")
    assert str(err.value) == (f"'{url}?tf-hub-format=compressed' has a query or fragment; "
                              f"write handle: '{url}' instead")


def test_the_loader_and_catalogue_validate_read_an_image_shape_by_one_rule():
    # hub.callsig had its own copy of the rule savedmodel_calls.image_size holds (which
    # `catalogue validate` checks input_size by): the loader's reading is that rule now.
    from hubensemble.hub.callsig import channels_first, fixed_size
    from hubensemble.savedmodel_calls import image_size, reads_channels_first

    for dims in ((None, 20, 24, 3), (None, 3, 20, 24), (None, 1, 32, 32), (None, 3, 3, 3),
                 (None, None, None, 3), (None, 3, None, 24), (None, 20, 3), None):
        shape = tf.TensorShape(dims)
        assert fixed_size(shape) == image_size(dims), dims
        assert channels_first(shape) == reads_channels_first(dims), dims
    assert fixed_size(tf.TensorShape((None, 3, 20, 24))) == (20, 24)
    assert fixed_size(tf.TensorShape((None, 20, 24, 3))) == (20, 24)
