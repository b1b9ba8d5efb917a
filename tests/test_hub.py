"""HubLayer and the module runtime, write_hub_module, resolution (registry, local HTTP server),
checksums, safety, and no import cycle in hubensemble/."""

import io
import json
import os
import re
import sys
import tarfile
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import bounded_by_cpu, export_quietly, make_tiny_model
from reliability.scenarios import Server, sha256, tarball
from hubensemble import augment, hub
from hubensemble.catalogue import ModuleSpec
from hubensemble.catalogue_sizes import size_problem
from hubensemble.errors import ModuleLoadError
from hubensemble.hub import HubLayer, load_module, scan_saved_model, write_hub_module
from hubensemble.hub import archive, resolvers

X = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
X[np.arange(32), :, :, np.arange(32) % 3] += 0.5  # a learnable signal: the brightest channel
Y = np.arange(32) % 3


def classifier(layer, classes=3):
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Dense(classes)(layer(inp)))
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fine_tuning_updates_the_modules_own_variables_and_lowers_the_loss(tiny_module):
    layer = HubLayer(tiny_module, trainable=True)
    assert layer.output_dim == 8
    module_vars = layer._module.variables
    before = [v.numpy().copy() for v in module_vars]
    model = classifier(layer)
    loss0 = model.evaluate(X, Y, verbose=0)
    model.fit(X, Y, epochs=5, batch_size=32, verbose=0)
    loss1 = model.evaluate(X, Y, verbose=0)
    assert loss1 < loss0
    kernels = [i for i, v in enumerate(module_vars) if "kernel" in v.name]
    assert kernels and all(np.abs(module_vars[i].numpy() - before[i]).max() > 0 for i in kernels)
    # No copies: the layer's weights are the module's variables.
    assert {id(w.value) for w in layer.weights} == {id(v) for v in module_vars}


def test_frozen_layer_leaves_the_module_unchanged(tiny_module):
    layer = HubLayer(tiny_module, trainable=False)
    assert layer.trainable_weights == []
    before = [v.numpy().copy() for v in layer._module.variables]
    classifier(layer).fit(X, Y, epochs=2, verbose=0)
    for v, b in zip(layer._module.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


def test_a_frozen_layers_weights_say_so_as_keras_own_and_thaw_with_the_layer(tiny_module):
    """Keras' frozen Dense reports each weight untrainable and `layer.trainable = True` thaws
    them; a HubLayer's wrapped module variables do the same (they were tracked through
    Keras' private Layer._track_variable, which also marked them; now through the public list
    attribute's tracking, which does not: a variable of a frozen layer said trainable)."""
    layer = HubLayer(tiny_module, trainable=False)
    module_trainable = {id(v) for v in layer.runtime.trainable_variables}
    assert module_trainable and [w.trainable for w in layer.weights] == [False] * len(
        layer.weights)
    layer.trainable = True
    assert {id(w.value) for w in layer.trainable_weights} == module_trainable
    assert all(w.trainable for w in layer.trainable_weights)
    kernel = next(v for v in layer.runtime.trainable_variables if "kernel" in v.name)
    before = kernel.numpy().copy()
    classifier(layer).fit(X, Y, epochs=1, verbose=0)
    assert np.abs(kernel.numpy() - before).max() > 0


def test_training_flag_reaches_the_module(module_factory):
    path = module_factory("dropout", dropout=0.5)
    layer = HubLayer(path, trainable=True)
    a = layer(X, training=True).numpy()
    b = layer(X, training=False).numpy()
    c = layer(X, training=False).numpy()
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(b, c)


def test_regularization_losses_are_added_while_training(module_factory):
    path = module_factory("l2", l2=0.5)
    layer = HubLayer(path, trainable=True)
    assert len(layer.module_regularization_losses) == 1
    kernel = next(v for v in layer._module.variables if "kernel" in v.name)
    expected = 0.5 * float(tf.reduce_sum(tf.square(kernel)))
    with tf.GradientTape():
        layer(X[:2], training=True)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
    layer(X[:2], training=False)
    assert layer.losses == []


def test_value_range_and_input_size_are_applied(module_factory):
    path = module_factory("fixed24", input_size=(24, 24))
    images = tf.constant(X[:4])
    layer = HubLayer(path, input_size=(24, 24), value_range="-1,1")
    raw = load_module(path).obj
    # The one resize policy: antialiased bilinear, clipped to [0, 1] (augment.resize).
    resized = tf.clip_by_value(tf.image.resize(images, (24, 24), antialias=True), 0.0, 1.0)
    expected = raw(resized * 2.0 - 1.0, training=False)
    np.testing.assert_allclose(layer(images).numpy(), expected.numpy(), atol=1e-6)
    imagenet = HubLayer(path, input_size=(24, 24), value_range="imagenet")
    norm = (resized - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(imagenet(images).numpy(), raw(norm, training=False).numpy(),
                               atol=1e-5)


def test_serialises_by_handle_and_reloads_fine_tuned_weights(tiny_module, tmp_path):
    model = classifier(HubLayer(tiny_module, trainable=True))
    model.fit(X, Y, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    config = model.layers[1].get_config()
    assert config["handle"] == tiny_module
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(X, verbose=0), model.predict(X, verbose=0),
                               atol=1e-6)


def test_written_module_is_a_reusable_saved_model(tiny_module):
    obj = tf.saved_model.load(tiny_module)
    assert len(obj.variables) >= 2 and len(obj.trainable_variables) == 2
    assert list(obj.regularization_losses) == []
    out = obj(tf.constant(X[:3]), training=False)
    assert out.shape == (3, 8)
    assert not any(name.startswith(".tmp-") for name in os.listdir(os.path.dirname(tiny_module)))


def test_rank_four_output_is_rejected_with_a_clear_error(tmp_path):
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp))
    path = write_hub_module(model, str(tmp_path / "conv"))
    # Known from the traced signature: refused when the layer is made, not at a later call.
    with pytest.raises(ModuleLoadError, match="rank-4") as err:
        HubLayer(path, module_name="conv")
    assert err.value.stage == "output" and "conv" in str(err.value)


def test_a_one_by_one_output_is_an_embedding_in_rank_fine_tuning_and_export(tmp_path):
    """A [B, 1, 1, D] output (TF1-era modules, Keras' pooling with keepdims=True) was refused
    as rank-4 ("wrong output rank"): it is the embedding [B, D], for a reusable SavedModel
    (ranked, fine-tuned, exported through ModuleRuntime) and a signature-only one alike; a
    [B, H, W, D] map with H * W > 1 stays refused."""
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(5, 3, activation="relu")(inp)
    kept = keras.layers.GlobalAveragePooling2D(keepdims=True)(conv)
    path = write_hub_module(keras.Model(inp, kept), str(tmp_path / "kept"))
    reference = tf.saved_model.load(path)(tf.constant(X01[:4]), training=False).numpy()
    assert reference.shape == (4, 1, 1, 5)  # the module itself, called without hubensemble
    runtime = hub.ModuleRuntime.load(path, name="kept")  # what rank embeds with
    assert runtime.output_dim == 5
    np.testing.assert_allclose(runtime(X01[:4]).numpy(), reference.reshape(4, 5), rtol=1e-6)
    model = classifier(HubLayer(path, trainable=True))
    h = model.fit(X01, Y, epochs=3, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    export_quietly(model, str(tmp_path / "served"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(tf.constant(X01[:5])).numpy(),
                               model.predict(X01[:5], verbose=0), rtol=1e-5, atol=1e-5)
    fixed = keras.Input((16, 16, 3))
    exported = keras.Model(fixed, keras.layers.GlobalAveragePooling2D(keepdims=True)(
        keras.layers.Conv2D(4, 3)(fixed)))
    exported.export(str(tmp_path / "sig"), verbose=False)
    layer = HubLayer(str(tmp_path / "sig"))
    assert layer.output_dim == 4
    np.testing.assert_allclose(layer(X01[:3]).numpy(),
                               exported(X01[:3]).numpy().reshape(3, 4), rtol=1e-5, atol=1e-6)
    mapped = keras.Model(fixed, keras.layers.AveragePooling2D(7)(keras.layers.Conv2D(4, 3)(
        fixed)))  # [B, 2, 2, 4]: a feature map of four positions
    with pytest.raises(ModuleLoadError, match=r"rank-4 tensor .*not a feature "
                       "map") as err:
        HubLayer(write_hub_module(mapped, str(tmp_path / "map")))
    assert err.value.stage == "output"


MIRRORED = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    import keras
    from hubensemble.hub import HubLayer
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        layer = HubLayer(sys.argv[1], trainable=True)
        inp = keras.Input((None, None, 3))
        model = keras.Model(inp, keras.layers.Dense(3)(layer(inp)))
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    kernel = [v for v in layer._module.variables if "kernel" in v.name][0]
    assert "Mirrored" in type(kernel).__name__, type(kernel)
    before = kernel.numpy().copy()
    x = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    x[np.arange(32), :, :, np.arange(32) % 3] += 0.5
    y = np.arange(32) % 3
    h = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0], h.history
    assert np.abs(kernel.numpy() - before).max() > 0
    # A catalogue layer built under the scope (tune --strategy mirrored's trials) of a module
    # whose output is class probabilities (exp / sum, no Softmax op to see at load): its
    # look at the output on a probe batch failed in the cross-replica context, unsaid.
    root = tf.train.Checkpoint()
    root.kernel = tf.Variable(np.random.default_rng(1).random((3, 3, 3, 4)), dtype="float32")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def probabilities(x):
        e = tf.exp(tf.reduce_mean(tf.nn.conv2d(x, root.kernel, 1, "SAME"), axis=[1, 2]))
        return e / tf.reduce_sum(e, axis=-1, keepdims=True)

    root.__call__, root.variables, root.trainable_variables = probabilities, [root.kernel], []
    root.regularization_losses = []
    tf.saved_model.save(root, sys.argv[2])
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.hub import hub_layer_from_spec, notices
    with notices.captured() as said, strategy.scope():
        hub_layer_from_spec(ModuleSpec(name="probs", handle=sys.argv[2]))
    assert [t for t in said if "output is class probabilities" in t], said
    print("OK", strategy.num_replicas_in_sync)
""")


def test_mirrored_strategy_over_two_logical_cpus_trains(tiny_module, tmp_path):
    """A HubLayer trains under a MirroredStrategy over two logical CPUs; and a catalogue
    layer built under its scope looks at its module's output for class probabilities."""
    out = bounded_by_cpu([sys.executable, "-c", MIRRORED, tiny_module, str(tmp_path / "probs")],
                         capture_output=True, text=True, cpu=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK 2" in out.stdout


# --- resolution over HTTP ---------------------------------------------------------------------

@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "tfhub_cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    return cache


def test_http_tarball_resolves_caches_and_loads(tiny_module, server, hub_cache):
    body = tarball(tiny_module)
    url = server.add("/m.tar.gz", body)
    layer = HubLayer(url, sha256=sha256(body))
    assert layer(X[:2]).shape == (2, 8)
    assert len(server.requests) == 1
    assert str(hub_cache) in layer.module_path
    again = HubLayer(url, sha256=sha256(body))
    assert len(server.requests) == 1, "the second load must come from the cache"
    np.testing.assert_allclose(again(X[:2]).numpy(), layer(X[:2]).numpy())


def test_a_hub_cache_that_cannot_be_written_costs_only_speed(tiny_module, server, tmp_path,
                                                             monkeypatch, caplog):
    """TFHUB_CACHE_DIR under a file (a HOME or cache folder that cannot be written): the
    module was refused as "FailedPreconditionError: … is not a directory (the download is
    not a valid SavedModel tarball)" with advice to fix the catalogue entry. The cache is
    said once, naming TFHUB_CACHE_DIR; the module is downloaded into a temporary folder of
    the process and loads, and a second load is served from it."""
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "afile" / "hub"))
    body = tarball(tiny_module)
    url = server.add("/m.tar.gz", body)
    with caplog.at_level("WARNING"):
        layer = HubLayer(url, sha256=sha256(body))
        assert layer(X[:2]).shape == (2, 8)
        again = HubLayer(url, sha256=sha256(body))
    assert len(server.requests) == 1
    assert again.module_path == layer.module_path
    said = [r.getMessage() for r in caplog.records if "TensorFlow Hub" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        f"the TensorFlow Hub module cache {tmp_path}/afile/hub cannot be written"), said
    assert "set TFHUB_CACHE_DIR to a folder you can write" in said[0]


def test_absls_hub_cache_flag_that_cannot_be_written_is_named_and_overridden(
        tmp_path, monkeypatch, caplog):
    """tensorflow_hub's absl flag --tfhub_cache_dir names the cache in a program that parsed
    absl flags (absl.app.run), TFHUB_CACHE_DIR unset: a folder it names that cannot be
    written was said as "the default, TFHUB_CACHE_DIR being unset's". It is said as the
    flag's, and the temporary folder used instead wins over the flag (TFHUB_CACHE_DIR)."""
    from tensorflow_hub import resolver as hub_resolver

    from hubensemble.hub import cachefolder

    (tmp_path / "afile").write_text("")
    monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    monkeypatch.setattr(hub_resolver.FLAGS["tfhub_cache_dir"], "value",
                        str(tmp_path / "afile" / "hub"))
    with caplog.at_level("WARNING"):
        folder = cachefolder.writable_module_dir("http://127.0.0.1:9/absl-flag.tar.gz")
    said = [r.getMessage() for r in caplog.records if "TensorFlow Hub" in r.getMessage()]
    assert len(said) == 1 and "Its folder is absl's --tfhub_cache_dir's" in said[0], said
    assert "pass absl's --tfhub_cache_dir a folder you can write" in said[0]
    assert os.path.dirname(folder) == os.environ["TFHUB_CACHE_DIR"]
    assert hub_resolver.tfhub_cache_dir() == os.environ["TFHUB_CACHE_DIR"]


def test_kaggle_handles_download_the_model_archive(tiny_module, server, hub_cache,
                                                   monkeypatch):
    body = tarball(tiny_module)
    server.add("/api/v1/models/google/bit/tensorFlow2/m-r50x1/1/download", body)
    monkeypatch.setenv("KAGGLE_API_ENDPOINT", server.url)
    for handle in ("kaggle:google/bit/tensorFlow2/m-r50x1/1",
                   "https://www.kaggle.com/models/google/bit/tensorFlow2/m-r50x1/1"):
        module = load_module(handle)
        assert module.output_dim == 8
    assert server.requests == ["/api/v1/models/google/bit/tensorFlow2/m-r50x1/1/download"] * 2


def test_wrong_sha256_is_refused_and_not_left_in_the_cache(tiny_module, server, hub_cache):
    url = server.add("/m.tar.gz", tarball(tiny_module))
    with pytest.raises(ModuleLoadError, match="sha256") as err:
        load_module(url, name="tiny", sha256="0" * 64)
    assert err.value.stage == "checksum" and "tiny" in str(err.value) and url in str(err.value)
    assert not any(p.is_dir() for p in hub_cache.iterdir())


def test_local_folder_sha256_is_that_of_saved_model_pb(tiny_module):
    good = hub.file_sha256(os.path.join(tiny_module, "saved_model.pb"))
    assert load_module(tiny_module, sha256=good).output_dim == 8
    with pytest.raises(ModuleLoadError, match="saved_model.pb"):
        load_module(tiny_module, sha256="f" * 64)


def test_tarball_member_escaping_the_folder_is_refused(tiny_module, server, hub_cache):
    info = tarfile.TarInfo("../escaped.txt")
    info.size = 5
    url = server.add("/evil.tar.gz", tarball(tiny_module, extra=[(info, b"owned")]))
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert err.value.stage == "archive"
    # It said tensorflow_hub's "Relative path '../escaped.txt' is invalid." only.
    assert "the archive's member '../escaped.txt' leads out of the folder it unpacks into" in (
        str(err.value)) and "docs/security.md" in str(err.value)
    assert not (hub_cache.parent / "escaped.txt").exists()
    assert not (hub_cache / "escaped.txt").exists()


def test_tarball_symlink_is_refused(tiny_module, server, hub_cache):
    info = tarfile.TarInfo("variables/link")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    url = server.add("/link.tar.gz", tarball(tiny_module, extra=[(info, None)]))
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert err.value.stage == "archive"


@pytest.mark.parametrize("mode,status,stage", [(None, 500, "network"),
                                               ("truncate", 200, "network"),
                                               (None, 200, "archive")])
def test_broken_downloads_name_the_stage(tiny_module, server, hub_cache, mode, status, stage,
                                         no_retry_waits):  # of the stage, not the retries
    body = tarball(tiny_module) if mode else b"this is not a tarball"
    url = server.add("/broken.tar.gz", body, status=status, mode=mode)
    with pytest.raises(ModuleLoadError) as err:
        load_module(url, name="broken")
    assert err.value.stage == stage, str(err.value)
    assert "broken" in str(err.value)


def test_redirects_are_followed_and_a_loop_is_one_line(tiny_module, server, hub_cache):
    """A new-user check: a redirect loop failed the module with urllib's three-line message
    ("… infinite loop.\nThe last 30x error message was:\nFound"), breaking the one line per
    failure of rank's table and log."""
    target = server.add("/real.tar.gz", tarball(tiny_module))
    url = server.add("/moved.tar.gz", target.encode(), status=302, mode="redirect")
    assert load_module(url).output_dim == 8
    loop = server.url + "/loop.tar.gz"
    server.add("/loop.tar.gz", loop.encode(), status=302, mode="redirect")
    with pytest.raises(ModuleLoadError) as err:
        load_module(loop, name="looping")
    assert err.value.stage == "network" and "infinite loop" in str(err.value)
    assert "\n" not in str(err.value) and loop in str(err.value)
    away = server.add("/away.tar.gz", b"file:///etc/passwd", status=302, mode="redirect")
    with pytest.raises(ModuleLoadError, match="Redirection to url 'file:///etc/passwd' is not "
                                              "allowed") as err:
        load_module(away)
    assert err.value.stage == "network"


def test_a_broken_archive_sent_whole_is_an_archive_error_not_the_network(server, hub_cache):
    # The extractor stops reading at the first bad block: the body was taken for one the
    # connection cut short ("[network] the connection closed after 512 of 50000 bytes").
    import gzip

    rng = np.random.default_rng(0)
    for name, body in (("random.tar.gz", rng.bytes(50_000)),
                       ("gzipped.tar.gz", gzip.compress(rng.bytes(200_000)))):
        url = server.add(f"/{name}", body)
        with pytest.raises(ModuleLoadError) as err:
            load_module(url)
        assert err.value.stage == "archive", str(err.value)
        assert "connection closed" not in str(err.value)


def test_a_gzip_damaged_inside_is_refused_and_not_cached(tiny_module, server, hub_cache):
    """A new-user check: 64 bytes flipped in the middle of the gzip data, or its CRC trailer,
    unpacked into a cached module whose variables were garbage ("[savedmodel] The length
    checksum does not match"), and the fixed file on the server was never fetched again: the
    tar reader stops before gzip's CRC."""
    good = tarball(tiny_module)
    for name, flip in (("middle", range(len(good) // 3, len(good) // 3 + 64)),
                       ("crc", [len(good) - 8])):
        body = bytearray(good)
        for i in flip:
            body[i] ^= 0xFF
        url = server.add(f"/{name}.tar.gz", bytes(body))
        with pytest.raises(ModuleLoadError) as err:
            load_module(url)
        assert err.value.stage == "archive", str(err.value)
        assert name == "middle" or "gzip data is damaged (BadGzipFile: CRC check failed" in str(
            err.value)  # the data inflates to an intact tar: only the CRC tells
        assert not os.path.exists(resolvers.ArchiveResolver().module_dir(url))
        server.add(f"/{name}.tar.gz", good)  # fixed on the server: fetched and loaded
        assert load_module(url).output_dim == 8


def test_every_compressed_stream_damaged_inside_is_named_as_damaged(tiny_module, tmp_path):
    # bzip2 hands out a damaged block's garbage before its CRC fails: the tar reader said
    # "invalid header", as for a file that is no archive at all.
    import bz2
    import gzip
    import lzma

    raw = gzip.decompress(tarball(tiny_module))
    for kind, compress in (("bzip2", bz2.compress), ("xz", lzma.compress),
                           ("gzip", gzip.compress)):
        body = bytearray(compress(raw))
        assert resolvers.extract_archive(io.BytesIO(bytes(body)), tmp_path / kind) is None
        for i in range(len(body) // 2, len(body) // 2 + 16):
            body[i] ^= 0xFF
        with pytest.raises(tarfile.ReadError, match=f"the archive's {kind} data is damaged"):
            resolvers.extract_archive(io.BytesIO(bytes(body)), tmp_path / f"{kind}-damaged")
    with pytest.raises(tarfile.ReadError) as err:  # intact compression around no tar at all
        resolvers.extract_archive(io.BytesIO(bz2.compress(b"x" * 5000)), tmp_path / "none")
    assert "damaged" not in str(err.value)


def file_members_only(folder, extra=()):
    """`folder` as a .tar.gz of its files only, no folder entries (as `tar czf m.tar.gz
    saved_model.pb variables/*` writes it), plus `extra` (name, bytes) file members."""
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                path = os.path.join(root, f)
                tar.add(path, arcname=os.path.relpath(path, folder), recursive=False)
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_an_archive_without_folder_entries_loads_and_keeps_absolute_paths_inside(
        tiny_module, server, hub_cache, tmp_path):
    outside = tmp_path / "abs_member.txt"
    url = server.add("/files.tar.gz", file_members_only(tiny_module,
                                                        [(str(outside), b"inside, not here")]))
    module = load_module(url)
    assert module.output_dim == 8
    assert not outside.exists()  # placed inside the module's folder (docs/security.md)
    inside = os.path.join(module.path, str(outside).lstrip("/"))
    assert open(inside, "rb").read() == b"inside, not here"


def test_a_download_without_a_module_is_not_kept_and_says_where_the_module_is(
        tiny_module, server, hub_cache):
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tiny_module, arcname="inner")  # the folder archived, not its contents
    url = server.add("/nested.tar.gz", buf.getvalue())
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert err.value.stage == "savedmodel"
    assert "its folder inner/" in str(err.value) and "tar czf module.tar.gz -C inner ." in str(
        err.value) and "the next run downloads it again" in str(err.value)
    assert os.listdir(hub_cache) == []  # nothing left: not tensorflow_hub's descriptor either
    server.add("/nested.tar.gz", tarball(tiny_module))  # fixed on the server
    assert load_module(url).output_dim == 8
    assert len(server.requests) == 2  # fetched again, not the broken copy from the cache


def test_a_cached_archive_of_other_bytes_than_a_new_pin_is_fetched_again(
        tiny_module, server, hub_cache):
    first = tarball(tiny_module)
    url = server.add("/m.tar.gz", first)
    load_module(url, sha256=sha256(first))
    second = file_members_only(tiny_module)  # the module updated on the server, pin with it
    assert sha256(second) != sha256(first)
    server.add("/m.tar.gz", second)
    assert load_module(url, sha256=sha256(second)).output_dim == 8  # was "sha256 … expects"
    assert len(server.requests) == 2
    with pytest.raises(ModuleLoadError) as err:  # the old pin: fetched again, then refused
        load_module(url, sha256=sha256(first))
    assert err.value.stage == "checksum" and len(server.requests) == 3
    assert f"sha256 of the archive as downloaded now is {sha256(second)}" in str(err.value)


def test_a_pinned_archive_is_checked_against_the_files_on_disk_not_only_its_record(
        tiny_module, tmp_path, server, hub_cache):
    """A new-user check: the pin of an archive was compared with the sha256 recorded beside
    its cached folder, never with the files: a planted folder with a record claiming the pin,
    or a cached module whose files were swapped, loaded as "verified"."""
    import shutil

    body = tarball(tiny_module)
    url = server.add("/m.tar.gz", body)
    pin = sha256(body)
    module_dir = resolvers.ArchiveResolver().module_dir(url)
    record = module_dir + ".hubensemble.json"
    other = write_hub_module(make_tiny_model(seed=7, width=8), str(tmp_path / "other"))
    reference = HubLayer(url, sha256=pin)(X[:2]).numpy()
    assert json.loads(open(record).read())["tree_sha256"] == resolvers.tree_sha256(tiny_module)
    # The files swapped for another module's, the record left alone: fetched again.
    shutil.rmtree(module_dir)
    shutil.copytree(other, module_dir)
    np.testing.assert_allclose(HubLayer(url, sha256=pin)(X[:2]).numpy(), reference)
    assert len(server.requests) == 2
    # Planted: a record that claims the pin and keys the planted files; a folder others may
    # write to is not trusted for a pin at all.
    shutil.rmtree(module_dir)
    shutil.copytree(other, module_dir)
    with open(record, "w") as f:
        json.dump({"handle": url, "archive_sha256": pin,
                   "tree_sha256": resolvers.tree_sha256(module_dir)}, f)
    os.chmod(module_dir, 0o777)
    with pytest.raises(ModuleLoadError, match=r"cannot be trusted for the catalogue's sha256: "
                                              r".* may be written by others \(mode 777\).*"
                                              r"\(it is fetched again\) or make it yours "
                                              r"alone \(chmod -R go-w\).*TFHUB_CACHE_DIR") as err:
        load_module(url, sha256=pin)
    assert err.value.stage == "checksum" and len(server.requests) == 2
    # Its way on is the cache's, not the pin's: HubLayer was told "sha256 is an argument",
    # a field the problem names read as the one to set.
    with pytest.raises(ModuleLoadError, match="cannot be trusted") as err:
        HubLayer(url, sha256=pin)
    assert "with HubLayer" not in str(err.value) and err.value.fix is None
    os.chmod(module_dir, 0o755)
    if os.getuid() == 0:  # another user's files: only root can make them here
        os.chown(os.path.join(module_dir, "saved_model.pb"), 65534, 65534)
        with pytest.raises(ModuleLoadError, match=r"saved_model.pb belongs to another user "
                                                  r"\(uid 65534\)"):
            load_module(url, sha256=pin)
        os.chown(os.path.join(module_dir, "saved_model.pb"), 0, 0)
    # Unpinned, nothing is checked (as documented); pinned and this user's own: the record's
    # key must match the files, which it does, so this one loads as planted. The record can
    # only be rewritten by the cache's owner, who could as well change the catalogue.
    assert load_module(url).output_dim == 8


def test_an_archive_that_unpacks_far_beyond_its_size_is_refused(
        tiny_module, tmp_path, server, hub_cache, monkeypatch):
    """A new-user check: 390 KB of archive (a module and 300 MB of zeros) unpacked into the
    cache; nothing bounded it but the download deadline."""
    monkeypatch.setattr(archive, "UNPACK_ALLOWANCE", 1 << 20)  # the bound without 256 MiB
    zeros = tarfile.TarInfo("assets/zeros.bin")
    zeros.size = 4 << 20
    body = tarball(tiny_module, extra=[(zeros, bytes(zeros.size))])
    assert len(body) * archive.MAX_UNPACK_RATIO + (1 << 20) < zeros.size
    url = server.add("/bomb.tar.gz", body)
    with pytest.raises(ModuleLoadError, match=r"unpacks to more than .* bytes read so far, "
                                              r"plus 1 MiB\): refused as a decompression bomb; "
                                              r".*unpack it yourself") as err:
        load_module(url)
    assert err.value.stage == "archive"
    assert not any(p.is_dir() for p in hub_cache.iterdir())  # nothing kept
    # The same bytes of real data (incompressible) are a module with a big asset: fine.
    noise = tarfile.TarInfo("assets/noise.bin")
    noise.size = 4 << 20
    url = server.add("/big.tar.gz", tarball(tiny_module, extra=[(
        noise, np.random.default_rng(0).bytes(noise.size))]))
    assert load_module(url).output_dim == 8


@pytest.mark.parametrize("body, said", [
    (b"<!DOCTYPE html><html><body>Sign in</body></html>",
     "text (it starts with '<!DOCTYPE html><html><body>Sign"),
    (b"<!DOCTYPE html>\n<html>\r\n\t<body>Sign in</body></html>",  # as real pages start
     "text (it starts with '<!DOCTYPE html> <html> <body>Sign"),
    (b"PK\x03\x04" + bytes(60), "a zip archive")])
def test_a_download_that_is_no_archive_says_what_it_is(server, hub_cache, body, said):
    """A new-user check: a web page served for a .tar.gz URL said "ReadError: truncated
    header", a zip "invalid header"."""
    url = server.add("/m.tar.gz", body)
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert err.value.stage == "archive" and url in str(err.value)
    assert f"not a tar archive: it holds {said}" in str(err.value), str(err.value)
    # A zip is told the way on (it was not).
    assert ("unzip it and catalogue the folder as a local handle" in str(err.value)) == (
        said == "a zip archive")


def test_a_web_page_for_a_keras_file_url_is_named_and_not_cached(tmp_path, server, hub_cache):
    """A new-user check: an HTML page served for a .keras URL was cached for good, and every
    later run said Keras' "File not found: filepath=<the cache path>"."""
    url = server.add("/model.keras", b"<html><body>Not signed in</body></html>")
    with pytest.raises(ModuleLoadError, match=re.escape(
            f"{url} is not a .keras file (a zip archive): it holds text (it starts with "
            "'<html><body>Not signed in</body></html>')")) as err:
        load_module(url)
    assert err.value.stage == "load" and "not kept in the cache" in str(err.value)
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))).save(
        tmp_path / "good.keras")
    server.add("/model.keras", (tmp_path / "good.keras").read_bytes())  # fixed on the server
    assert load_module(url).output_dim == 3
    assert len(server.requests) == 2
    # A local file of other bytes is said to be so too (Keras said "File not found").
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(ModuleLoadError, match=r"empty.h5 is not an HDF5 file: it holds "
                                              r"nothing \(0 bytes\)"):
        load_module(str(tmp_path / "empty.h5"))


def damaged_tarball(folder, damage):
    """`folder` as a .tar.gz whose file `damage` names (relative path) is replaced by what
    `damage` maps it to: a module that unpacks whole but does not load."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for root, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, folder)
                data = open(path, "rb").read()
                data = damage.get(rel, lambda d: d)(data)
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_downloaded_module_that_does_not_load_is_not_kept(tiny_module, tmp_path, server,
                                                            hub_cache):
    """A new-user check: an archive that unpacked whole but whose saved_model.pb does not
    parse, or whose variables are cut short, or a .keras URL of a zip Keras cannot read, was
    kept in the cache; every later run failed on that copy, also after the publisher fixed
    the file (the server was never asked again)."""
    import zipfile

    shard = next(n for n in os.listdir(os.path.join(tiny_module, "variables"))
                 if n.startswith("variables.data-"))
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("notes.txt", "not a Keras model")
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))).save(
        tmp_path / "good.keras")
    cases = [  # (path, broken body, fixed body, words of the reason, stage)
        ("/pb.tar.gz", damaged_tarball(tiny_module, {"saved_model.pb": lambda d: d[:40]}),
         tarball(tiny_module), "does not parse as a SavedModel (40 bytes: cut short, or "
         "damaged)", "savedmodel"),
        ("/vars.tar.gz", damaged_tarball(tiny_module, {f"variables/{shard}":
                                                       lambda d: d[:len(d) // 3]}),
         tarball(tiny_module), "its variables (variables/variables.data-00000-of-00001) are "
         "cut short", "savedmodel"),
        ("/model.keras", junk.getvalue(), (tmp_path / "good.keras").read_bytes(),
         "keras.saving.load_model failed", "load")]
    for path, broken, fixed, words, stage in cases:
        url = server.add(path, broken)
        module_dir = resolvers.resolver_for(url).module_dir(url)
        with pytest.raises(ModuleLoadError) as err:
            load_module(url, name="damaged")
        assert err.value.stage == stage and words in str(err.value), str(err.value)
        assert "damaged" in str(err.value) and url in str(err.value)
        assert (f"the download was removed from the cache ({module_dir}), so the next run "
                "downloads it again") in str(err.value)
        assert not os.path.exists(module_dir)
        assert not os.path.exists(module_dir + ".hubensemble.json")
        asked = len(server.requests)
        server.add(path, fixed)  # fixed on the server: fetched again and loaded
        assert load_module(url).output_dim in (3, 8)
        assert len(server.requests) == asked + 1
    # A local module that does not load is never removed.
    local = tmp_path / "local"
    import shutil

    shutil.copytree(tiny_module, local)
    (local / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ModuleLoadError) as err:
        load_module(str(local))
    assert err.value.stage == "savedmodel" and "removed" not in str(err.value)
    assert (local / "saved_model.pb").exists()


def test_downloads_show_their_bytes_unless_quiet(tiny_module, tmp_path, server, hub_cache,
                                                 monkeypatch, capsys):
    """A new-user check: a module of gigabytes downloaded for minutes behind rank's bar, which
    showed only the module's name; nothing said that bytes were arriving, or how many."""
    import argparse

    from hubensemble import terminal

    monkeypatch.setattr(terminal, "BAR_DELAY", 0.0)  # every download shows its bar at once
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))).save(
        tmp_path / "m.keras")
    body = tarball(tiny_module)
    for quiet in (False, True):
        urls = [server.add(f"/{quiet}.tar.gz", body),
                server.add(f"/{quiet}/m.keras", (tmp_path / "m.keras").read_bytes())]
        capsys.readouterr()
        with terminal.terminal_log(argparse.Namespace(quiet=quiet, verbose=False)):
            for url in urls:
                load_module(url)
        err = capsys.readouterr().err
        for url in urls:
            assert (f"download {url}" in err) is not quiet, err
        if not quiet:  # the Content-Length as its total
            from tqdm import tqdm

            size = tqdm.format_sizeof(len(body), divisor=1024)
            assert re.search(rf"download {re.escape(urls[0])}: .*/{re.escape(size)} ", err), err
    load_module(server.add("/library.tar.gz", body))  # no command running: no bar
    assert "download" not in capsys.readouterr().err


def test_waiting_for_another_process_download_is_said(tiny_module, server, hub_cache, caplog,
                                                      monkeypatch):
    """A new-user check: a second rank of the same new module waited a minute for the first
    one's download without a word (tensorflow_hub says so at INFO only)."""
    import logging
    import socket

    url = server.add("/shared.tar.gz", tarball(tiny_module))
    module_dir = resolvers.ArchiveResolver().module_dir(url)
    os.makedirs(hub_cache, exist_ok=True)
    lock = module_dir + ".lock"
    with open(lock, "w") as f:  # a live process (this one) downloading it
        f.write(f"{socket.gethostname()}.{os.getpid()}.0123abcd")

    class ReleaseWhenSaid(logging.Handler):
        def emit(self, record):  # the other download "ends" once the wait is announced
            if "being downloaded by another process" in record.getMessage():
                os.unlink(lock)

    # Unsaid, the lock would be taken over after this many seconds without progress (not
    # tensorflow_hub's 10 minutes), and the assertion below fails.
    monkeypatch.setattr(resolvers.ArchiveResolver, "_lock_file_timeout_sec", lambda self: 1)
    handler = ReleaseWhenSaid()
    logging.getLogger(resolvers.__name__).addHandler(handler)
    try:
        with caplog.at_level("WARNING", logger=resolvers.__name__):
            assert load_module(url).output_dim == 8
    finally:
        logging.getLogger(resolvers.__name__).removeHandler(handler)
    assert (f"{url} is being downloaded by another process ({socket.gethostname()}, process "
            f"{os.getpid()}); waiting for it") in caplog.text
    assert len(server.requests) == 1  # then downloaded here: no module was there
    caplog.clear()
    load_module(url)  # cached: no lock, nothing said
    assert "another process" not in caplog.text


def test_the_download_deadline_ends_a_trickling_download_and_is_named(
        tiny_module, server, hub_cache, monkeypatch):
    monkeypatch.setattr(resolvers, "DOWNLOAD_DEADLINE", 1.0)
    monkeypatch.setattr(resolvers, "HTTP_TIMEOUT", 5.0)  # every 256 bytes arrive in time
    pad = tarfile.TarInfo("assets/padding.bin")
    pad.size = 20_000
    body = tarball(tiny_module, extra=[(pad, np.random.default_rng(0).bytes(20_000))])
    assert len(body) > 20_000  # at 1 KB/s: longer than 20 s in all
    url = server.add("/slow.tar.gz", body, mode="trickle")
    start = time.monotonic()
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert time.monotonic() - start < 6, "the deadline, not the whole body, ends it"
    assert err.value.stage == "network"
    assert "raise HUBENSEMBLE_DOWNLOAD_DEADLINE (now 1 s)" in str(err.value)
    assert "HUBENSEMBLE_HTTP_TIMEOUT" not in str(err.value)


def test_the_tensorflow_hub_internals_resolvers_use_behave_as_relied_on(tmp_path):
    """setup.cfg pins tensorflow-hub to the tested releases for these."""
    from tensorflow_hub import compressed_module_resolver, file_utils, resolver, tf_utils

    dst = str(tmp_path)
    assert file_utils.merge_relative_path(dst, "/abs/x") == os.path.join(dst, "abs", "x")
    with pytest.raises(ValueError, match="invalid"):
        file_utils.merge_relative_path(dst, "../x")
    handle = "https://example.com/m.tar.gz"
    import hashlib

    assert os.path.basename(compressed_module_resolver._module_dir(handle)) == hashlib.sha1(
        handle.encode()).hexdigest()  # the cache folder per handle that hub.load shares
    impl = resolvers.ArchiveResolver()
    assert impl._append_compressed_format_query(handle).endswith("tf-hub-format=compressed")
    assert impl._lock_file_timeout_sec() > 0 and callable(resolver.atomic_download)
    assert tf_utils.absolute_path(dst) == dst


def test_a_hanging_server_times_out(tiny_module, server, hub_cache, monkeypatch):
    monkeypatch.setattr(resolvers, "HTTP_TIMEOUT", 1.0)
    url = server.add("/hang.tar.gz", b"", mode="hang")
    start = time.monotonic()
    with pytest.raises(ModuleLoadError) as err:
        load_module(url)
    assert time.monotonic() - start < 15
    assert err.value.stage == "network"
    assert "raise HUBENSEMBLE_HTTP_TIMEOUT (now 1 s)" in str(err.value)


def test_a_host_that_does_not_resolve_is_not_told_to_raise_the_timeout():
    """A new-user check: offline, a tfhub.dev handle failed with "Name or service not known"
    and the advice to raise HUBENSEMBLE_HTTP_TIMEOUT, which cannot help. The errors are
    urllib's own, as urlopen raises them."""
    import socket
    import urllib.error

    dns = urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert resolvers.classify_resolution_error(dns) == "network"
    assert "host name does not resolve" in resolvers.network_hint(dns)
    assert "HTTP_TIMEOUT" not in resolvers.network_hint(dns)
    slow = urllib.error.URLError(TimeoutError("timed out"))
    assert "raise HUBENSEMBLE_HTTP_TIMEOUT" in resolvers.network_hint(slow)
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert resolvers.network_hint(refused) == "check the URL and your connection"


def test_missing_module_names_handle(tmp_path, monkeypatch):
    with pytest.raises(ModuleLoadError) as err:
        load_module(str(tmp_path / "nope"), name="ghost")
    assert "ghost" in str(err.value) and "nope" in str(err.value)
    # A relative name that is nothing here said "abc does not exist; check the path", naming
    # none of the handle forms (HubLayer refuses it before loading: handlehere).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModuleLoadError) as err:
        load_module("abc")
    assert err.value.stage == "local path" and (
        "'abc' is neither a URL nor a handle of a known scheme, and the current folder "
        f"({tmp_path}) holds no file or folder 'abc'" in str(err.value)
        and "hf://OWNER/MODEL" in str(err.value)), str(err.value)


def test_a_handle_one_folder_above_its_module_or_its_archive_names_the_way_on(
        tiny_module, tmp_path):
    """TF Serving's layout (m/1/saved_model.pb, m/2/…) or an archive unpacked into a folder of
    its own, catalogued by the folder above: rank said "no saved_model.pb in …" and validate
    "holds no module", neither where the module is (a download said it; a local folder not).
    Both say the handle to write in one form (text.value_to_write), quoted as the catalogue
    docs quote a value: rank said "write handle: /…/served/10", validate "'/…/served/10'"."""
    import shutil

    from hubensemble.catalogue import load_catalogue
    from hubensemble.modulefiles import local_handle_warnings
    from hubensemble.text import value_to_write

    for inner in ("2", "10"):  # TF Serving serves the highest version
        shutil.copytree(tiny_module, tmp_path / "served" / inner)
    (tmp_path / "served" / "notes").mkdir()  # no module: not named
    shutil.copytree(tiny_module, tmp_path / "unpacked" / "bit_m-r50x1_1")
    (tmp_path / "empty").mkdir()
    for name, inner in (("served", "10"), ("unpacked", "bit_m-r50x1_1")):
        with pytest.raises(ModuleLoadError, match=f"no saved_model.pb in .*; the module is in "
                           f"its folder {inner}/: write handle: '{tmp_path / name / inner}'$"):
            load_module(str(tmp_path / name), name=name)
    with pytest.raises(ModuleLoadError, match=r"no saved_model.pb in .*metadata.json\)$"):
        load_module(str(tmp_path / "empty"))
    (tmp_path / "c.yaml").write_text("modules:\n" + "".join(
        f"  - name: {n}\n    handle: ./{n}\n" for n in ("served", "unpacked", "empty")))
    notes = local_handle_warnings(load_catalogue(tmp_path / "c.yaml"))
    # YAML's single quotes: a quote doubled, so the text pasted reads back as the handle.
    assert value_to_write("handle", "m/it's") == "write handle: 'm/it''s'"
    assert [n.partition("preset)")[2] for n in notes] == [
        f"; the module is in its folder 10/: write handle: '{tmp_path / 'served' / '10'}'; "
        "rank will skip it", "; the module is in its folder bit_m-r50x1_1/: write handle: "
        f"'{tmp_path / 'unpacked' / 'bit_m-r50x1_1'}'; rank will skip it", "; rank will skip it"]
    # The archive as downloaded, catalogued as it is: said "holds no module (no
    # saved_model.pb, …)" by validate, and "a local archive must be unpacked first" by rank,
    # neither saying how.
    (tmp_path / "m.tar.gz").write_bytes(tarball(tiny_module))
    (tmp_path / "m.zip").write_bytes(b"PK\x03\x04" + bytes(60))
    for name, unpack in (("m.tar.gz", "mkdir FOLDER && tar xf 'm.tar.gz' -C FOLDER"),
                         ("m.zip", "unzip 'm.zip' -d FOLDER")):
        said = (f"{tmp_path / name} is a file, not a SavedModel folder or a .keras/.h5 model "
                f"file; it is an archive: unpack it ({unpack}) and write the folder that holds "
                "saved_model.pb as the handle")
        with pytest.raises(ModuleLoadError) as err:
            load_module(str(tmp_path / name))
        assert said in str(err.value) and err.value.stage == "savedmodel"
        (tmp_path / "a.yaml").write_text(f"modules:\n  - name: a\n    handle: ./{name}\n")
        assert local_handle_warnings(load_catalogue(tmp_path / "a.yaml")) == [
            f"warning: {tmp_path / 'a.yaml'}:3: {said}; rank will skip it"]


def test_a_module_copied_in_part_or_cut_short_is_said_so_with_the_way_on(tiny_module, tmp_path):
    """A copy or download that stopped: TensorFlow and Keras said "Read less bytes than
    requested", "Unsuccessful TensorSliceReader constructor: Failed to find any matching
    files for …/variables/variables", "…variables.data-00000-of-00001; No such file or
    directory", "File not found: filepath=… Please ensure the file is an accessible `.keras`
    zip file" (it is there) and "Unable to synchronously open file (truncated file: …)"."""
    import shutil

    from hubensemble.catalogue import load_catalogue
    from hubensemble.modulefiles import local_handle_warnings

    variables = os.path.join("variables", "variables.data-00000-of-00001")
    data = open(os.path.join(tiny_module, variables), "rb").read()
    cases = {"no-variables": (lambda p: shutil.rmtree(p / "variables"),
                              r"its variables are missing: no variables/variables.index in "),
             "no-data": (lambda p: os.remove(p / variables),
                         r"its variables file variables/variables.data-00000-of-00001 is "
                         r"missing"),
             "cut-data": (lambda p: (p / variables).write_bytes(data[:len(data) // 2]),
                          r"its variables \(variables/variables.data-00000-of-00001\) are cut "
                          r"short: TensorFlow read fewer bytes")}
    for name, (damage, words) in cases.items():
        shutil.copytree(tiny_module, tmp_path / name)
        damage(tmp_path / name)
        with pytest.raises(ModuleLoadError, match=words + r".*saved_model.pb with its "
                           r"variables/: copy or download it whole again") as err:
            hub.ModuleRuntime.load(str(tmp_path / name), name=name)
        assert err.value.stage == "savedmodel"
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])
    for suffix, words in ((".keras", r"its 3,000 bytes are a zip archive without its end, the "
                                     r"central directory"),
                          (".h5", r"3,000 of the [\d,]+ bytes its HDF5 header records")):
        model.save(tmp_path / f"whole{suffix}")
        (tmp_path / f"cut{suffix}").write_bytes((tmp_path / f"whole{suffix}").read_bytes()[:3000])
        with pytest.raises(ModuleLoadError, match=f"cut{suffix} is cut short: {words} "
                           r"\(a copy or download that stopped\); copy or download it "
                           r"again") as err:
            hub.ModuleRuntime.load(str(tmp_path / f"cut{suffix}"), name="cut")
        assert err.value.stage == "load"
    shutil.copytree(tiny_module, tmp_path / "no-index")  # its shard kept: said so too
    os.remove(tmp_path / "no-index" / "variables" / "variables.index")
    (tmp_path / "c.yaml").write_text("modules:\n" + "".join(
        f"  - name: {n.replace('.', '-')}\n    handle: ./{n}\n"
        for n in ("whole.keras", "cut.keras", "whole.h5", "cut.h5", *cases, "no-index",
                  "nothing")))
    (tmp_path / "nothing").mkdir()  # a handles.local_handle_warnings one: in line order too
    notes = local_handle_warnings(load_catalogue(tmp_path / "c.yaml"))
    assert [n.split(" is cut short")[0] for n in notes[:2]] == [
        f"warning: {tmp_path / 'c.yaml'}:5: {tmp_path / 'cut.keras'}",
        f"warning: {tmp_path / 'c.yaml'}:9: {tmp_path / 'cut.h5'}"]
    # validate said nothing of a SavedModel copied without its variables (rank's words, from
    # the folder's listing), nor of a shard cut short (now read from the index's table: the
    # whole shard's size is what it records)
    copied = "is a SavedModel copied in part: its variables"
    whole = "(a SavedModel is the whole folder, saved_model.pb with its variables/: copy or " \
            "download it whole again); rank will skip it"
    assert notes[2:] == [
        f"warning: {tmp_path / 'c.yaml'}:11: handle '{tmp_path / 'no-variables'}' {copied} are "
        f"missing: no variables/variables.index in {tmp_path / 'no-variables'} {whole}",
        f"warning: {tmp_path / 'c.yaml'}:13: handle '{tmp_path / 'no-data'}' {copied} file "
        f"variables/variables.data-00000-of-00001 is missing {whole}",
        f"warning: {tmp_path / 'c.yaml'}:15: handle '{tmp_path / 'cut-data'}' {copied} file "
        f"variables/variables.data-00000-of-00001 is cut short: {len(data) // 2:,} of the "
        f"{len(data):,} bytes variables/variables.index records {whole}",
        f"warning: {tmp_path / 'c.yaml'}:17: handle '{tmp_path / 'no-index'}' {copied} are "
        f"missing: no variables/variables.index in {tmp_path / 'no-index'} {whole}",
        f"warning: {tmp_path / 'c.yaml'}:19: handle '{tmp_path / 'nothing'}' holds no module (no "
        "saved_model.pb, .keras/.h5 file or keras-hub preset); rank will skip it"]


def test_an_hdf5_file_of_weights_only_is_named_as_such_with_the_way_on(tmp_path):
    """A weights-only .h5 (tf.keras 2's `model.save_weights("w.h5")`, or Keras 3's
    `.weights.h5` renamed) as a handle: rank said "keras.saving.load_model failed: ValueError:
    No model config found in the file at …" with no way on, and `catalogue validate` said ok."""
    from keras.src.legacy.saving import legacy_h5_format

    import h5py

    from hubensemble.catalogue import load_catalogue
    from hubensemble.modulefiles import local_handle_warnings

    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])
    model.save_weights(tmp_path / "k3.weights.h5")
    os.replace(tmp_path / "k3.weights.h5", tmp_path / "k3.h5")
    with h5py.File(tmp_path / "tfkeras.h5", "w") as f:  # tf.keras' save_weights layout
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    model.save(tmp_path / "whole.h5")  # a model: neither refused nor warned of
    for name in ("k3.h5", "tfkeras.h5"):
        with pytest.raises(ModuleLoadError, match=r"weights only \(what `model.save_weights` "
                           r"writes\).*model.save\('model.keras'\).*keras:NAME as the handle "
                           r"and this file as `weights:`") as err:
            hub.ModuleRuntime.load(str(tmp_path / name), name="w")
        assert err.value.stage == "load" and name in str(err.value)
    assert hub.ModuleRuntime.load(str(tmp_path / "whole.h5")).output_dim == 2
    (tmp_path / "c.yaml").write_text("modules:\n" + "".join(
        f"  - name: {n}\n    handle: ./{n}.h5\n" for n in ("k3", "tfkeras", "whole")))
    notes = local_handle_warnings(load_catalogue(tmp_path / "c.yaml"))
    assert [n.split(": handle")[0] for n in notes] == [
        f"warning: {tmp_path / 'c.yaml'}:3", f"warning: {tmp_path / 'c.yaml'}:5"]
    assert all("is not a Keras model: it holds weights only" in n and
               n.endswith("rank will skip it") for n in notes)


# --- safety -------------------------------------------------------------------------------------

def file_touching_module(path, op):
    """A module whose __call__ reads or writes a file alongside computing features."""
    base = make_tiny_model(seed=3)
    target = os.path.join(os.path.dirname(path), "touched.txt")

    class Touch(keras.layers.Layer):
        def call(self, x):
            if op == "read":
                data = tf.io.read_file(target)
                return x + tf.cast(tf.strings.length(data), x.dtype) * 0.0
            tf.io.write_file(target, tf.strings.as_string(tf.reduce_sum(x)))
            return x

    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, Touch()(base(inp)))
    with open(target, "w") as f:
        f.write("secret")
    return write_hub_module(model, path)


@pytest.mark.parametrize("op,denied", [("read", "ReadFile"), ("write", "WriteFile")])
def test_file_touching_module_is_refused_unless_trusted(tmp_path, op, denied):
    path = file_touching_module(str(tmp_path / op), op)
    found = scan_saved_model(path)
    assert any(d.op == denied for d in found), found
    with pytest.raises(ModuleLoadError, match=denied) as err:
        HubLayer(path, module_name="toucher")
    assert err.value.stage == "unsafe" and "trust" in str(err.value)
    layer = HubLayer(path, trust=True)
    assert layer(X[:2]).shape == (2, 8)


def test_clean_module_scans_clean(tiny_module):
    assert scan_saved_model(tiny_module) == []


def test_scan_follows_nested_functions(tmp_path):
    """A denied op hidden in a tf.function called from __call__ is still found."""
    target = str(tmp_path / "x.txt")

    @tf.function
    def inner(x):
        return x + tf.cast(tf.strings.length(tf.io.read_file(target)), tf.float32)

    root = tf.train.Checkpoint()
    root.v = tf.Variable(1.0)
    root.__call__ = tf.function(lambda images, training=False: inner(images) * root.v)
    root.__call__.get_concrete_function(tf.TensorSpec([None, None, None, 3]), False)
    tf.saved_model.save(root, str(tmp_path / "nested"))
    assert [d.op for d in scan_saved_model(str(tmp_path / "nested"))] == ["ReadFile"]


def test_kaggle_url_mapping(monkeypatch):
    monkeypatch.delenv("KAGGLE_API_ENDPOINT", raising=False)
    assert hub.kaggle_download_url("kaggle:google/bit/tensorFlow2/m-r50x1/1") == (
        "https://www.kaggle.com/api/v1/models/google/bit/tensorFlow2/m-r50x1/1/download")
    assert hub.kaggle_download_url("https://tfhub.dev/google/bit/m-r50x1/1") is None


def test_a_module_of_float16_bfloat16_or_float64_images_is_fed_its_dtype():
    """A module saved in mixed precision with a float16 input (or bfloat16, float64) was
    refused: "the module's __call__ takes float16 images; hubensemble feeds float32 … or uint8"
    with no way on. It gets the float32 images in its value range cast to its dtype; an int32
    one is still refused. Real traced functions (no SavedModel written: `CallSignature.of`
    reads a bare concrete function as the module's one trace)."""
    from hubensemble.hub.locate import ModuleFiles

    class Traced:
        def __init__(self, dtype):
            @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], dtype)])
            def call(images):  # the pixels' sum, in float32: what the module received
                assert images.dtype == dtype
                return tf.cast(tf.reduce_sum(images, [1, 2]), tf.float32)

            self.__dict__["__call__"] = call.get_concrete_function()

        def __call__(self, images):
            return self.__dict__["__call__"](images)

    files = ModuleFiles(handle="h", path="p", fingerprint="f")
    images = np.full((2, 2, 2, 3), 0.5, np.float32)
    for dtype in ("float16", "bfloat16", "float64"):
        runtime = hub.ModuleRuntime(files, Traced(dtype), value_range="0,255")
        assert runtime.input_dtype == dtype
        np.testing.assert_array_equal(runtime(images).numpy(), np.full((2, 3), 4 * 127.5))
    with pytest.raises(ModuleLoadError, match="the module takes int32 images; hubensemble "
                       "feeds float32 .* or uint8") as err:
        hub.ModuleRuntime(files, Traced("int32"))
    assert err.value.stage == "input"


def test_a_tfhub_handle_with_a_trailing_slash_is_the_same_handle(tmp_path):
    """`https://tfhub.dev/google/bit/m-r50x1/1/` was stored as written: another cache folder
    (tensorflow_hub's is the sha1 of the handle), so the module was downloaded twice, and
    `catalogue validate` did not see it as the entry without the "/" (a Kaggle URL's
    trailing "/" was already dropped)."""
    from hubensemble.catalogue import load_catalogue
    from hubensemble.handles import stored_handle
    from hubensemble.samemodule import canonical_handle, same_module_warnings

    plain = "https://tfhub.dev/google/bit/m-r50x1/1"
    assert stored_handle(plain + "/", tmp_path) == plain == canonical_handle(plain + "//")
    (tmp_path / "c.yaml").write_text(f"modules:\n  - name: a\n    handle: {plain}/\n"
                                     f"  - name: b\n    handle: {plain}\n")
    specs = load_catalogue(tmp_path / "c.yaml")
    assert [s.handle for s in specs] == [plain, plain]
    (note,) = same_module_warnings(specs)
    assert "entry 'b' loads the same module as entry 'a'" in note


def test_write_hub_module_metadata(tmp_path):
    path = write_hub_module(make_tiny_model(), str(tmp_path / "meta"), metadata={"a": 1})
    with open(os.path.join(path, "assets", "hubensemble_module.json")) as f:
        assert json.load(f) == {"a": 1}


def test_a_written_module_keeps_every_regularised_weights_loss(tmp_path):
    """write_hub_module's regularization_losses came from each nested layer's
    kernel_regularizer / bias_regularizer only: a DepthwiseConv2D's depthwise_regularizer and
    a BatchNormalization's gamma_regularizer were dropped (any weight Keras regularises
    counts: the variable's own `regularizer`, what Keras' Layer.losses sums)."""
    inp = keras.Input((None, None, 3))
    x = keras.layers.DepthwiseConv2D(3, depthwise_regularizer=keras.regularizers.L2(0.5))(inp)
    x = keras.layers.BatchNormalization(gamma_regularizer=keras.regularizers.L1(0.25))(x)
    x = keras.layers.Conv2D(4, 1, kernel_regularizer=keras.regularizers.L2(0.125))(x)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))
    want = sorted(float(loss) for loss in model.losses)  # Keras' own: one per weight
    assert len(want) == 3
    module = tf.saved_model.load(write_hub_module(model, str(tmp_path / "reg")))
    got = sorted(float(fn()) for fn in module.regularization_losses)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_written_model_keeps_its_hub_layers_module_regularisation_losses(module_factory,
                                                                           tmp_path):
    """A model holding a HubLayer (in a nested model too) written by write_hub_module lost
    the module's own regularisation losses (HubLayer adds them while training; the export
    keeps them): its weights carry no Keras regularizer."""
    layer = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    inner_in = keras.Input((None, None, 3))
    inner = keras.Model(inner_in, layer(inner_in))
    inp = keras.Input((None, None, 3))
    head = keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L2(0.125))
    model = keras.Model(inp, head(inner(inp)))
    kernel = next(v for v in layer.runtime.variables if "kernel" in v.name)
    want = sorted([0.5 * float(tf.reduce_sum(tf.square(kernel))),
                   0.125 * float(tf.reduce_sum(tf.square(head.kernel)))])
    written = tf.saved_model.load(write_hub_module(model, str(tmp_path / "written")))
    got = sorted(float(fn()) for fn in written.regularization_losses)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def signature_only_module(path, seed):
    """A tf.Module saved with only a signature: its variables are captured, not exposed."""
    module = tf.Module()
    module.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 5], [seed, 0]))
    module.__call__ = tf.function(
        lambda x: tf.reduce_mean(tf.nn.conv2d(x, module.kernel, 1, "SAME"), [1, 2]),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    tf.saved_model.save(module, str(path))
    return str(path)


class _Holder(keras.layers.Layer):
    """A layer of a user's own holding other layers in a list (no Model, no `layers`)."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = list(inner)

    def call(self, x):
        return keras.ops.concatenate([layer(x) for layer in self.inner], axis=-1)


def test_a_written_model_keeps_the_variables_of_hub_layers_nested_anywhere(tmp_path):
    """The variables a HubLayer's signature-only module reads (outside Keras' weights) are
    kept by write_hub_module wherever the layer sits: in a nested model, or in a user's own
    layer that holds it in a list; untracked, tf.saved_model.save refuses the function."""
    a = HubLayer(signature_only_module(tmp_path / "a", 1))
    b = HubLayer(signature_only_module(tmp_path / "b", 2))
    inner_in = keras.Input((None, None, 3))
    inner = keras.Model(inner_in, a(inner_in))
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Concatenate()([inner(inp), _Holder([b])(inp)]))
    want = model(X01[:4]).numpy()
    written = tf.saved_model.load(write_hub_module(model, str(tmp_path / "written")))
    np.testing.assert_allclose(written(tf.constant(X01[:4]), training=False).numpy(), want,
                               atol=1e-6)
    held = {id(v) for v in written.variables}
    assert len(held) == 2 and {tuple(v.shape) for v in written.variables} == {(3, 3, 3, 5)}


class _Backbone(keras.layers.Layer):
    """A user's own layer holding a HubLayer as an attribute (no Model, no `layers`)."""

    def __init__(self, hub_layer, **kwargs):
        super().__init__(**kwargs)
        self.backbone = hub_layer

    def call(self, x, training=None):
        return self.backbone(x, training=training)


def test_a_written_model_keeps_the_losses_of_a_hub_layer_in_a_users_own_layer(module_factory,
                                                                              tmp_path):
    """write_hub_module walked models' `layers` only: a HubLayer a user's own layer holds
    (`self.backbone = HubLayer(...)`) lost its module's regularisation loss in the module
    written. Now it equals the model's own while training, and the L2 sum of the kernel."""
    layer = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(_Backbone(layer)(inp)))
    kernel = next(v for v in layer.runtime.variables if "kernel" in v.name)
    want = 0.5 * float(tf.reduce_sum(tf.square(kernel)))  # by hand, from the kernel
    with tf.GradientTape():
        model(X01[:2], training=True)
    np.testing.assert_allclose([float(v) for v in model.losses], [want], rtol=1e-6)
    written = tf.saved_model.load(write_hub_module(model, str(tmp_path / "written")))
    np.testing.assert_allclose([float(fn()) for fn in written.regularization_losses], [want],
                               rtol=1e-6)


# --- the module runtime: one call convention for rank, HubLayer and the export -------------------

X01 = X / X.max()  # the runtime's contract: float images in [0, 1]


def raw_features(path, images_01, training):
    """The module called by hand, without hubensemble: the reference for the runtime."""
    obj = tf.saved_model.load(path)
    fn = obj.__call__.concrete_functions[0]
    args, _ = fn.structured_input_signature
    x = tf.constant(images_01, tf.float32)
    if args[0].dtype == tf.uint8:
        x = tf.cast(tf.round(x * 255.0), tf.uint8)
    if len(args) == 1:
        return obj(x).numpy()
    if isinstance(args[1], tf.TensorSpec):
        return obj(x, tf.constant(training)).numpy()
    return obj(x, training).numpy()


@pytest.mark.parametrize("kind", ["no-training", "uint8", "tensor-training"])
def test_modules_of_other_call_shapes_load_and_match_a_hand_call(raw_module, kind):
    path = raw_module(kind)
    frozen = HubLayer(path)
    assert frozen.output_dim == 6
    np.testing.assert_allclose(frozen(X01[:4], training=False).numpy(),
                               raw_features(path, X01[:4], False), rtol=1e-6, atol=1e-6)
    # A trainable layer passes training=True where the module has the flag (features halved).
    trainable = HubLayer(path, trainable=True)
    got = trainable(X01[:4], training=True).numpy()
    np.testing.assert_allclose(got, raw_features(path, X01[:4], kind != "no-training"),
                               rtol=1e-6, atol=1e-6)
    # ... and fine-tunes: the loss falls and the module's own kernel moves.
    kernel = next(v for v in trainable._module.variables if "kernel" in v.name)
    before = kernel.numpy().copy()
    model = classifier(trainable)
    loss0 = model.evaluate(X, Y, verbose=0)
    model.fit(X, Y, epochs=5, batch_size=32, verbose=0)
    assert model.evaluate(X, Y, verbose=0) < loss0
    assert np.abs(kernel.numpy() - before).max() > 0


def test_uint8_module_is_fed_rounded_pixels_whatever_the_dtype_field(raw_module):
    path = raw_module("uint8")
    auto = HubLayer(path)
    told = HubLayer(path, input_dtype="uint8", value_range="0,255")
    assert auto.runtime.input_dtype == told.runtime.input_dtype == "uint8"
    pixels = np.round(X01[:3] * 255.0)
    x = pixels / 255.0  # exact pixel values: rounding changes nothing
    obj = tf.saved_model.load(path)
    expected = obj(tf.constant(pixels.astype(np.uint8)), False).numpy()
    np.testing.assert_allclose(auto(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(told(x).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_a_module_saved_for_training_false_only_fine_tunes_in_inference_mode(raw_module):
    path = raw_module("false-only")
    layer = HubLayer(path, trainable=True)
    np.testing.assert_allclose(layer(X01[:4], training=True).numpy(),
                               raw_features(path, X01[:4], False), rtol=1e-6, atol=1e-6)
    h = classifier(layer).fit(X, Y, epochs=5, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


@pytest.mark.parametrize("kind", ["no-training", "uint8"])
def test_modules_of_other_call_shapes_export_as_they_predict(raw_module, kind, tmp_path):
    model = classifier(HubLayer(raw_module(kind), trainable=True))
    model.fit(X01, Y, epochs=2, batch_size=16, verbose=0)
    export_quietly(model, str(tmp_path / "served"), format="tf_saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(tf.constant(X01[:5])).numpy(),
                               model.predict(X01[:5], verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind,kwargs,words", [
    ("uint8", {"input_dtype": "float32"}, ["input_dtype: float32", "uint8"]),
    ("no-training", {"input_dtype": "uint8"}, ["input_dtype: uint8", "float32"]),
    ("uint8", {"value_range": "-1,1"}, ["uint8", "value_range -1,1", "[0, 255]"]),
    ("true-only", {}, ["training=True only"]),
])
def test_uncallable_combinations_fail_at_load_naming_the_cause(raw_module, kind, kwargs, words):
    with pytest.raises(ModuleLoadError) as err:
        hub.ModuleRuntime.load(raw_module(kind), name="odd", **kwargs)
    assert err.value.stage == "input" and "'odd'" in str(err.value)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_fixed_size_and_dict_output_are_refused_from_the_signature(tmp_path):
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(5, 3, activation="relu")(inp)
    model = keras.Model(inp, {"pooled": keras.layers.GlobalAveragePooling2D()(conv),
                              "map": conv})
    dict_path = write_hub_module(model, str(tmp_path / "dict"))
    with pytest.raises(ModuleLoadError, match=r"keys \['map', 'pooled'\].*output_key") as err:
        hub.ModuleRuntime.load(dict_path)
    assert err.value.stage == "output"
    assert HubLayer(dict_path, output_key="pooled").output_dim == 5

    fixed = write_hub_module(make_tiny_model(input_size=(20, 20)), str(tmp_path / "fixed"),
                             input_size=(20, 20))
    runtime = hub.ModuleRuntime.load(fixed)
    assert runtime.signature.sizes == ((20, 20),)
    with pytest.raises(ModuleLoadError, match=r"input_size: \[20, 20\]") as err:
        runtime.check_input_size((32, 32))
    assert err.value.stage == "input"
    with pytest.raises(ModuleLoadError, match=r"input_size: \[20, 20\]"):
        hub.ModuleRuntime.load(fixed, input_size=(24, 24))
    # An entry with a size the module cannot take: the loader in validate's words (it said
    # "the module only takes images of size [20, 20], not [24, 24]; set input_size: …").
    with pytest.raises(ModuleLoadError) as err:
        hub.ModuleRuntime.from_spec(ModuleSpec(name="f", handle=fixed, input_size=(24, 24)))
    problem = size_problem(ModuleSpec(name="f", handle=fixed, input_size=(24, 24)))
    assert ("module 'f'" in str(err.value) and "the module takes only [20, 20] images (its "
            "__call__'s traces), not [24, 24]; write `input_size: [20, 20]` in its catalogue "
            "entry" in str(err.value)), str(err.value)
    assert problem == ("the module takes only [20, 20] images (its __call__'s traces in "
                       "saved_model.pb), not [24, 24]; rank refuses it as it loads; write "
                       "`input_size: [20, 20]` in this entry"), problem
    # A catalogue entry without its size is refused when it loads, naming the entry's line,
    # not at its first embedding (which passed only when the task's resolution was 20 px).
    # In `catalogue validate`'s words for the same rule (they said it in others before).
    with pytest.raises(ModuleLoadError) as err:
        hub.ModuleRuntime.from_spec(ModuleSpec(name="f", handle=fixed, source="cat.yaml:3"))
    assert err.value.stage == "input"
    assert ("field 'input_size' of its catalogue entry at cat.yaml:3: missing: the module takes "
            "only [20, 20] images (its __call__'s traces), and an entry without input_size is "
            "embedded at the task's resolution; write `input_size: [20, 20]` in this entry "
            "(`catalogue add` writes it)") in str(err.value), str(err.value)
    problem = size_problem(ModuleSpec(name="f", handle=fixed, source="cat.yaml:3"))
    assert problem.split(" images (")[0] in str(err.value)
    assert problem.split(" saved_model.pb)")[1] in str(err.value)
    # Without it, an image of another size is refused naming the sizes the module takes.
    free = HubLayer(fixed, module_name="fixed")
    with pytest.raises(ModuleLoadError, match=r"takes only \[20, 20\] images \(its __call__'s "
                                              r"traces\), not \[16, 16\]"):
        free(X[:2])
    # With its size in the entry, any input is resized to it (augment.resize).
    layer = HubLayer(fixed, input_size=(20, 20))
    np.testing.assert_allclose(layer(X[:2]).numpy(),
                               layer(augment.resize(X[:2], (20, 20))).numpy(), atol=1e-6)


def test_a_call_the_module_refuses_names_what_it_was_saved_for(tmp_path):
    # A third argument without a default: TensorFlow's own error would not say what is wrong.
    root = tf.train.Checkpoint()
    root.v = tf.Variable(1.0)
    root.__call__ = tf.function(
        lambda images, training, scale: tf.reduce_mean(images, [1, 2]) * scale * root.v)
    for value in (True, False):
        root.__call__.get_concrete_function(tf.TensorSpec([None, None, None, 3]), value, 2.0)
    root.variables = [root.v]
    tf.saved_model.save(root, str(tmp_path / "three"))
    runtime = hub.ModuleRuntime.load(str(tmp_path / "three"), name="three")
    with pytest.raises(ModuleLoadError) as err:
        runtime(X01[:2])
    text = str(err.value)
    assert err.value.stage == "input" and "'three'" in text
    assert "saved for float32 images [None, None, None, 3], training=False/True" in text
    # Through HubLayer, Keras re-raises it with the call's arguments added (same type).
    with pytest.raises(ModuleLoadError, match=r"\[input\] module 'three'.*training=False/True"):
        HubLayer(str(tmp_path / "three"), module_name="three")(X01[:2])


# --- resolvers: a registry by prefix; zoo: handles resolve without hub importing the zoo -------

def test_unknown_prefix_lists_the_known_ones(monkeypatch):
    with pytest.raises(ModuleLoadError) as err:
        hub.resolve("nosuch:thing/1", name="odd")
    text = str(err.value)
    assert err.value.stage == "handle" and "nosuch:" in text
    for prefix in ("https:", "http:", "gs:", "kaggle:", "file:", "zoo:"):
        assert prefix in text, text
    # A plug-in that cannot be imported fails its own handles only, saying so.
    monkeypatch.setitem(resolvers._BUILTIN_PLUGINS, "broken", "hubensemble.no_such:Resolver")
    with pytest.raises(ModuleLoadError, match="broken: handles cannot be loaded: "
                                              "ModuleNotFoundError") as err:
        hub.resolve("broken:x")
    assert err.value.stage == "handle"


def test_a_registered_resolver_serves_its_prefix(tiny_module):
    class Alias:
        def __init__(self):
            self.seen = []

        def is_supported(self, handle):
            return handle.startswith("alias:")

        def __call__(self, handle):
            self.seen.append(handle)
            return tiny_module

    alias = Alias()
    hub.register_resolver("alias", alias)
    try:
        assert "alias" in hub.known_prefixes()
        assert hub.resolve("alias:tiny") == tiny_module
        assert HubLayer("alias:tiny").output_dim == 8
        assert alias.seen == ["alias:tiny", "alias:tiny"]
    finally:
        resolvers._REGISTRY.pop("alias", None)
    with pytest.raises(ValueError, match="prefix"):
        hub.register_resolver("a", alias)  # one letter is a Windows drive, not a prefix


ZOO_BY_REGISTRY = textwrap.dedent("""
    import importlib.metadata, sys
    from hubensemble import hub
    from hubensemble.errors import ModuleLoadError
    assert not [m for m in sys.modules if m.startswith("hubensemble.zoo")], "hub imported zoo"
    points = {e.name: e.value for e in importlib.metadata.entry_points(
        group="hubensemble.resolvers")}
    try:
        hub.resolve("zoo:nope/x")
    except ModuleLoadError as e:
        assert "names no zoo preset; write one of demo, quick" in str(e), e
    else:
        raise AssertionError("an unknown preset resolved")
    resolver = hub.resolver_for("zoo:demo/r6x1-generalist-0")
    print(type(resolver).__module__, type(resolver).__name__, points.get("zoo"))
""")


def test_zoo_handles_resolve_through_the_registry_not_an_import():
    out = bounded_by_cpu([sys.executable, "-c", ZOO_BY_REGISTRY], capture_output=True,
                         text=True, cpu=300)
    assert out.returncode == 0, out.stderr[-3000:]
    module, name, point = out.stdout.split()[-3:]
    assert (module, name) == ("hubensemble.zoo.resolver", "ZooResolver")
    # setup.cfg declares it (an install made before the entry point falls back to hub's table).
    assert point in ("hubensemble.zoo.resolver:ZooResolver", "None")


# --- no import cycle in hubensemble/ ------------------------------------------------------------

def import_graph(root):
    """{module: hubensemble modules it imports} from an AST scan of every file under `root`.

    Counts `import` and `from … import` statements anywhere in a file (module level and
    inside functions), relative ones resolved; importing `a.b.c` also imports the packages
    `a.b` (their __init__ runs), except the importer's own parents.
    """
    import ast
    import pathlib

    root = pathlib.Path(root)
    top = root.name
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    graph = {}
    for name, (path, is_pkg) in files.items():
        package = name if is_pkg else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                found = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                         for a in node.names]
            else:
                continue
            for target in found:
                if target.split(".")[0] != top:
                    continue
                while target and target not in files:
                    target = target.rpartition(".")[0]
                parts = target.split(".")
                for i in range(2, len(parts) + 1):
                    t = ".".join(parts[:i])
                    if t != name and not name.startswith(t + "."):
                        targets.add(t)
        graph[name] = targets
    return graph


def import_cycles(graph):
    """The strongly connected groups of more than one module (each an import cycle)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycle_in_the_package():
    root = os.path.join(os.path.dirname(hub.__file__), os.pardir)
    graph = import_graph(os.path.abspath(root))
    assert {"hubensemble.hub", "hubensemble.hub.writer", "hubensemble.zoo.builder"} <= set(graph)
    assert import_cycles(graph) == []
    # The module writer is a leaf: nothing of hubensemble but errors/fileio, the leaves
    # that check its arguments (and what they import) and text (which imports refused
    # alone), whose path words its refusal of a folder that is no module uses.
    assert graph["hubensemble.hub.writer"] <= {"hubensemble.errors", "hubensemble.fileio",
                                               "hubensemble.inputsize", "hubensemble.refused",
                                               "hubensemble.text", "hubensemble.hub.sublayers"}
    assert not graph["hubensemble.hub.sublayers"]  # the walk of a model's layers: Keras only
    assert graph["hubensemble.text"] <= {"hubensemble.refused"}
    # inputsize reads a meant size as the catalogue does (sizemeant: imports nothing of ours).
    assert graph["hubensemble.inputsize"] <= {"hubensemble.refused", "hubensemble.sizemeant"}
    assert not graph["hubensemble.refused"]
    assert not graph["hubensemble.sizemeant"]
    assert not [t for t in graph["hubensemble.hub"] | graph["hubensemble.hub.resolvers"]
                if t.startswith("hubensemble.zoo")]


def test_the_cycle_scan_finds_a_hub_zoo_cycle(tmp_path):
    pkg = tmp_path / "hubensemble"
    (pkg / "zoo").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hub.py").write_text("def resolve():\n    from hubensemble import zoo\n")
    (pkg / "zoo" / "__init__.py").write_text("from hubensemble.zoo.build import x\n")
    (pkg / "zoo" / "build.py").write_text("from hubensemble.hub import resolve\nx = 1\n")
    (pkg / "leaf.py").write_text("from . import hub\n")
    graph = import_graph(pkg)
    assert graph["hubensemble.leaf"] == {"hubensemble.hub"}
    assert import_cycles(graph) == [["hubensemble.hub", "hubensemble.zoo",
                                     "hubensemble.zoo.build"]]


def test_a_module_folder_whose_path_holds_a_bracket_is_refused_by_name(tmp_path):
    # TensorFlow reads the variables through a file pattern: "g[1]/m" is looked for as
    # "g1/m", and its error ("Failed to find any matching files") named no cause.
    from hubensemble.formats import check_saved_model_folder
    from hubensemble.errors import RunError

    path = write_hub_module(make_tiny_model(), str(tmp_path / "g[1]" / "m"))
    with pytest.raises(Exception) as raw:
        tf.saved_model.load(path)
    assert "matching files" in str(raw.value)  # what it said without the check
    with pytest.raises(ModuleLoadError, match=r"'\[' starts a character class") as err:
        load_module(path)
    assert err.value.stage == "savedmodel" and "move or rename the module's folder" in str(
        err.value)
    with pytest.raises(RunError, match=r"'\[' starts a character class"):
        check_saved_model_folder(path)  # evaluate and predict --model, before TensorFlow
    # "*" and "?" match themselves: such folders load.
    assert load_module(write_hub_module(make_tiny_model(), str(tmp_path / "g*?" / "m")))


def test_a_keras_that_copies_a_modules_variables_is_detected():
    """A fault found by a check: Keras 3.3-3.9 copy a tf.Variable given as a Keras variable's
    initializer, so HubLayer's weights were copies the module never reads and fine-tuning
    trained the head alone, silently. HubLayer now refuses to build on such a Keras
    (hub.layer.wraps_in_place); here the check tells a real wrapper from a real copy."""
    import keras

    from hubensemble.hub.layer import wraps_in_place

    v = tf.Variable(np.arange(4, dtype=np.float32).reshape(2, 2))
    assert wraps_in_place(keras.Variable(initializer=v), v)  # Keras >= 3.10 (setup.cfg)
    copy = keras.Variable(initializer=v.numpy())
    assert not wraps_in_place(copy, v)
    v.assign_add(tf.ones((2, 2)))  # what the optimizer's update looks like to each
    assert float(copy.numpy().sum()) == 6.0 and float(v.numpy().sum()) == 10.0


def test_archive_member_names_are_utf8_in_any_locale(tiny_module, server, hub_cache, tmp_path):
    """Under a C locale with PYTHONUTF8=0 (file names ASCII, others lone surrogates) a module
    archive holding 'assets/café →.txt' failed to load: "UnicodeEncodeError: 'utf-8' codec
    can't encode character '\\udcc3'", as tarfile read the name in the locale's encoding and
    TensorFlow's file writer, and then the key of the unpacked files (`tree_sha256`),
    encoded it as UTF-8. Names are read as UTF-8 and hashed as their bytes: the same files,
    the same key as in a UTF-8 locale. A member whose name is not UTF-8 (a Latin-1 'caf\\xe9'),
    which TensorFlow cannot write at all, is refused naming it, not with a traceback's words."""
    info = tarfile.TarInfo("assets/caf\u00e9 \u2192.txt")
    info.size = 3
    archive_file = tmp_path / "m.tar.gz"
    archive_file.write_bytes(tarball(tiny_module, extra=[(info, b"abc")]))
    code = ("import sys; from hubensemble.hub import archive, fingerprint\n"
            "with open(sys.argv[1], 'rb') as f:\n    archive.extract_archive(f, sys.argv[2])\n"
            "print(fingerprint.tree_sha256(sys.argv[2]), sys.getfilesystemencoding())")
    # The UTF-8 locale's unpacking in this process (its file system encoding is UTF-8, as
    # a new process's here); the C locale's in a process of its own (Python reads the
    # locale as it starts).
    assert sys.getfilesystemencoding() == "utf-8"
    with open(archive_file, "rb") as f:
        archive.extract_archive(f, str(tmp_path / "utf8"))
    out = bounded_by_cpu([sys.executable, "-c", code, str(archive_file),
                          str(tmp_path / "c-locale")], capture_output=True, text=True, cpu=300,
                         env=dict(os.environ, PYTHONUTF8="0", LC_ALL="C"))
    assert out.returncode == 0, out.stderr
    for folder in (tmp_path / "utf8", tmp_path / "c-locale"):
        assert "caf\u00e9 \u2192.txt".encode() in os.listdir(os.fsencode(folder / "assets"))
    assert out.stdout.split() == [resolvers.tree_sha256(str(tmp_path / "utf8")), "ascii"], (
        out.stdout)
    latin1 = tarfile.TarInfo("assets/caf\udce9.txt")  # the bytes b"caf\xe9.txt"
    latin1.size = 3
    body = tarball(tiny_module, extra=[(latin1, b"abc")])
    url = server.add("/latin1.tar.gz", body)
    with pytest.raises(ModuleLoadError, match=re.escape(
            "the archive's member 'assets/caf\\xe9.txt' has a name that is not UTF-8 (made on "
            "a system of another encoding, e.g. Latin-1), which TensorFlow can neither write "
            "nor read; rename it in UTF-8 and pack the module again")) as e:
        HubLayer(url, sha256=sha256(body))
    assert e.value.stage == "archive", e.value


# --- tensorflow_hub without setuptools' pkg_resources -----------------------------------------

WITHOUT_PKG_RESOURCES = textwrap.dedent("""
    import sys
    # pkg_resources as setuptools 82+ (or no setuptools, TensorFlow 2.22) leaves it: missing
    sys.modules["pkg_resources"] = None
    import hubensemble.hub.resolvers
    import tensorflow_hub
    print("imported", tensorflow_hub.__version__)
    try:
        import pkg_resources
    except ModuleNotFoundError:
        print("pkg_resources still missing")
""")


def test_tensorflow_hub_imports_where_setuptools_has_no_pkg_resources():
    # tensorflow_hub 0.16.1's import reads pkg_resources.parse_version (tensorflow/hub#934):
    # ModuleNotFoundError before hub.tfhub; the stand-in must not outlive that import.
    out = bounded_by_cpu([sys.executable, "-c", WITHOUT_PKG_RESOURCES], capture_output=True,
                         text=True, cpu=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "imported 0." in out.stdout and "pkg_resources still missing" in out.stdout, out


def test_a_module_in_a_non_ascii_folder_is_written_and_loaded_under_a_c_locale(tmp_path):
    """A new-user check: under LC_ALL=C PYTHONUTF8=0 (a container, a cron job) Python names
    'mod→c' 'mod\\udce2\\udc86\\udc92c', and tf.saved_model.save / load (and tf.io.gfile)
    stopped with "UnicodeEncodeError: 'utf-8' codec can't encode characters …: surrogates
    not allowed", as `fit --out 'run→c'` and its export did. TensorFlow is given the name's
    bytes read as UTF-8 (`fileio.tf_path`); a name that is not UTF-8 is refused naming it."""
    code = ("import sys, keras\nfrom hubensemble.hub import write_hub_module, load_module\n"
            "from hubensemble.errors import HubensembleError\n"
            "inp = keras.Input((8, 8, 3))\nmodel = keras.Model(inp, keras.layers."
            "GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp)))\n"
            "write_hub_module(model, sys.argv[1])\n"
            "print(type(load_module(sys.argv[1])).__name__, sys.getfilesystemencoding())\n"
            "try:\n    write_hub_module(model, sys.argv[2])\n"
            "except HubensembleError as e:\n    print(ascii(str(e)))\n")
    folder, latin1 = os.fsencode(tmp_path / "mod\u2192c"), os.fsencode(tmp_path) + b"/caf\xe9"
    out = bounded_by_cpu([sys.executable, "-c", code, folder, latin1], capture_output=True,
                         text=True, cpu=300,
                         env=dict(os.environ, PYTHONUTF8="0", LC_ALL="C"))
    assert out.returncode == 0, out.stderr
    said = out.stdout.splitlines()
    assert said[0] == "LoadedModule ascii", out.stdout
    assert os.path.isfile(os.path.join(folder, b"saved_model.pb"))
    assert said[1].endswith("/caf\\\\xe9: the name is not UTF-8 (a byte of another encoding, "
                            "e.g. Latin-1), which TensorFlow can neither write nor read; "
                            "rename it in UTF-8'"), said[1]


def test_a_download_lock_of_a_process_started_after_it_is_a_dead_ones(tmp_path):
    """tensorflow_hub's lock records "HOST.PID.UID", no process start: once a later process
    was given a killed downloader's pid, its lock looked alive and the download waited 10
    minutes for it. The lock is written as the download begins, so a process that started
    after the lock's time is not its writer (`fileio.pid_alive` with the file's time)."""
    import socket
    import subprocess

    from hubensemble.hub import cachefolder

    child = subprocess.Popen(["sleep", "60"])
    try:
        module_dir = str(tmp_path / "hub" / "abc")
        os.makedirs(module_dir + ".0123abcd.tmp")
        lock = module_dir + ".lock"
        for written, kept in ((time.time(), True), (time.time() - 3 * 86400, False)):
            with open(lock, "w") as f:
                f.write(f"{socket.gethostname()}.{child.pid}.0123abcd")
            os.utime(lock, (written, written))
            cachefolder._drop_dead_download_lock(module_dir)
            assert os.path.exists(lock) == kept
        assert not os.path.exists(module_dir + ".0123abcd.tmp")
    finally:
        child.kill()
        child.wait()


def test_a_savedmodel_of_several_signatures_lists_them_so_that_one_name_reads_as_one(tmp_path):
    """A SavedModel without `__call__` and with several signatures, none the default, is
    refused naming them: joined with ", " alone, a signature named "a, b" read as two (the
    project's rule for a list of names, `text.names_listed`)."""
    root = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
                 autograph=False)
    def features(x):
        return {"out": tf.reduce_mean(x, axis=[1, 2])}

    tf.saved_model.save(root, str(tmp_path / "m"), signatures={
        "a, b": features.get_concrete_function(), "c": features.get_concrete_function()})
    with pytest.raises(ModuleLoadError) as e:
        load_module(str(tmp_path / "m"))
    assert e.value.stage == "savedmodel"
    assert ("the SavedModel has no __call__ and several signatures (signatures: 'a, b', 'c'); "
            "pass signature=NAME, one of them") in str(e.value), e.value


def test_a_folder_of_several_modules_or_a_missing_path_says_what_to_write(tiny_module, tmp_path):
    """rank (and `catalogue add`) of a folder holding several modules said only "no
    saved_model.pb in DIR (nor …)", where `catalogue validate` names them
    (`localfiles.modules_inside`); a missing local path was "[savedmodel] …: FileNotFoundError:
    P does not exist (check the path)", its note followed by a second tail. Now the modules
    found, and stage "local path" with one way on."""
    import shutil

    shutil.copytree(tiny_module, tmp_path / "many" / "a")
    (tmp_path / "many" / "b.keras").write_bytes(b"not read")
    with pytest.raises(ModuleLoadError) as e:
        load_module(str(tmp_path / "many"), name="many")
    assert e.value.stage == "savedmodel"
    assert str(e.value).endswith(
        "metadata.json); 2 modules are in it (a/, b.keras), not one: write the one you mean "
        f"as the handle, e.g. handle: '{tmp_path / 'many' / 'a'}'"), e.value
    for written, tail in (("gone", "; check the path"),
                          ("$HUBENSEMBLE_NOT_SET_327/m", " (`$HUBENSEMBLE_NOT_SET_327` is part")):
        with pytest.raises(ModuleLoadError) as e:
            load_module(str(tmp_path / written), name="ghost")
        assert e.value.stage == "local path", e.value
        assert e.value.message.startswith(f"{tmp_path / written} does not exist{tail}"), e.value
        assert "FileNotFoundError" not in str(e.value) and str(e.value).count("check the") <= 1


def test_a_module_wider_than_the_catalogue_bound_is_refused_at_load(tmp_path):
    # A catalogue's output_dim above 2**18 was refused (a typo, whose embeddings would fill
    # the memory), but a module measuring that wide loaded and went on to rank. It is refused
    # where it loads, in the catalogue's words: when its trace gives the width (SavedModel,
    # .keras), and when only its first output does (a flattened image).
    from hubensemble.catalogue_fields import output_dim_problem

    wide = (1 << 18) + 1
    write_hub_module(make_tiny_model(seed=0, width=1, out_dim=wide), str(tmp_path / "wide"))
    # A .keras file is cut before its last Dense layer: a flattened fixed-size map is kept.
    inp = keras.Input((296, 296, 3))
    keras.Model(inp, keras.layers.Flatten()(inp)).save(tmp_path / "wide.keras")
    for handle, dim in ((tmp_path / "wide", wide), (tmp_path / "wide.keras", 296 * 296 * 3)):
        with pytest.raises(ModuleLoadError) as err:
            hub.ModuleRuntime.load(str(handle), name="wide")
        assert err.value.stage == "output", err.value
        assert f"{dim:,} features is wider than any image module's embedding (at most " \
            "262,144 here)" in str(err.value) and output_dim_problem(dim) in str(err.value)

    class Flat(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x):
            return tf.reshape(x, [tf.shape(x)[0], -1])  # H * W * 3 features

    tf.saved_model.save(Flat(), str(tmp_path / "flat"))
    runtime = hub.ModuleRuntime.load(str(tmp_path / "flat"), name="flat")
    assert runtime(tf.zeros([2, 8, 8, 3])).shape == (2, 192)  # narrow: as before
    with pytest.raises(ModuleLoadError) as err:
        runtime(tf.zeros([1, 296, 296, 3]))  # 262,848 features
    assert err.value.stage == "output" and output_dim_problem(296 * 296 * 3) in str(err.value)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_read_only_hub_cache_is_said_as_read_only_not_as_permission_denied(
        tmp_path, monkeypatch, caplog, read_only):
    # os.access said no and the cache was said as "(Permission denied: …)" also on a file
    # system mounted read-only, where no chmod or chown helps. statvfs tells them apart.
    # (Tests run as root, whom os.access lets write anywhere: it and statvfs are stood in for
    # the cache folder alone, as a read-only mount and a folder of another user answer.)
    from test_environment import pretend_unwritable

    from hubensemble import environment
    from hubensemble.hub import cachefolder

    root = str(tmp_path / "hub")
    os.makedirs(root)
    monkeypatch.setenv("TFHUB_CACHE_DIR", root)
    monkeypatch.setattr(environment, "_UNWRITABLE", set())
    pretend_unwritable(monkeypatch, root, read_only)
    with caplog.at_level("WARNING"):
        folder = cachefolder.writable_module_dir("http://127.0.0.1:9/read-only.tar.gz")
    said = [r.getMessage() for r in caplog.records if "TensorFlow Hub" in r.getMessage()]
    reason = (f"(Read-only file system: {root}; it is mounted read-only)" if read_only
              else f"(Permission denied: {root})")
    assert len(said) == 1 and f"cache {root} cannot be written {reason}" in said[0], said
    assert "set TFHUB_CACHE_DIR to a folder you can write" in said[0]
    assert os.path.dirname(folder) == os.environ["TFHUB_CACHE_DIR"] != root


def test_a_stalled_download_counts_its_bytes_in_words():
    # "after 1 bytes": the count and its noun agree (text.counted), with or without the
    # Content-Length.
    from hubensemble.hub.remote import stalled

    assert str(stalled(1, None, 5)) == "no byte came for 5 s after 1 byte"
    assert str(stalled(0, None, 2.5)) == "no byte came for 2.5 s after 0 bytes"
    assert str(stalled(1, 1, 5)) == "no byte came for 5 s after 1 of 1 byte"
    assert str(stalled(7, 300, 5)) == "no byte came for 5 s after 7 of 300 bytes"
