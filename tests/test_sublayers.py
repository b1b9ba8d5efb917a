"""The walk of a model's layers (`hub.sublayers.layers_within`): a HubLayer a user's own layer
holds is found by the export's regularisation losses and variables and by the cost's params."""

import keras
import numpy as np
import tensorflow as tf

from test_hub import signature_only_module

from hubensemble.cost import graph
from hubensemble.export.saved import EnsembleModule, ExportMember
from hubensemble.hub import HubLayer, write_hub_module
from hubensemble.hub.sublayers import layers_within

X01 = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)


class Holder(keras.layers.Layer):
    """A user's own layer (no Model, no `layers`) holding layers as an attribute, in a list
    and in a dict."""

    def __init__(self, backbone, extra=(), named=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.extra = list(extra)
        self.named = dict(named or {})

    def call(self, x, training=None):
        outs = [self.backbone(x, training=training)]
        outs += [layer(x) for layer in self.extra + list(self.named.values())]
        return keras.ops.concatenate(outs, axis=-1)


def classifier_on(holder, classes=2):
    inp = keras.Input((None, None, 3))
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(holder(inp)))


def test_every_layer_a_users_layer_holds_is_found_once():
    pool = keras.layers.GlobalAveragePooling2D()
    a, b = keras.layers.GlobalMaxPooling2D(), keras.layers.GlobalAveragePooling2D()
    holder = Holder(pool, extra=[a, a], named={"b": b})
    model = classifier_on(holder)
    found = layers_within(model)
    assert found[0] is model
    assert [id(x) for x in found].count(id(a)) == 1
    assert {id(x) for x in (holder, pool, a, b)} <= {id(x) for x in found}
    assert layers_within("no layer") == []


def test_the_export_keeps_a_users_layers_hub_layer_losses_and_variables(module_factory,
                                                                        tmp_path):
    """EnsembleModule walked models' `layers` only: the module regularisation loss and the
    captured variables of a HubLayer a user's own layer holds were left out of the export.
    Its losses equal the model's while training and the L2 sum of the kernel by hand."""
    l2 = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    captured = HubLayer(signature_only_module(tmp_path / "sig", 1))
    model = classifier_on(Holder(keras.Sequential([l2]), extra=[captured]))
    kernel = next(v for v in l2.runtime.variables if "kernel" in v.name)
    want = 0.5 * float(tf.reduce_sum(tf.square(kernel)))
    with tf.GradientTape():
        model(X01, training=True)
    np.testing.assert_allclose([float(v) for v in model.losses], [want], rtol=1e-6)
    module = EnsembleModule([ExportMember(model, size=16, weight=1.0)], ["a", "b"])
    np.testing.assert_allclose([float(fn()) for fn in module.regularization_losses()], [want],
                               rtol=1e-6)
    kept = {id(v) for v in module.variables()}
    assert {id(v) for v in captured.captured_module_variables} <= kept
    assert len(captured.captured_module_variables) == 1


def test_the_params_count_a_users_layers_hub_layers_captured_variables(tmp_path):
    """count_params found HubLayers through models' `layers` only: a signature-only module's
    variables held by a user's own layer were not counted."""
    captured = HubLayer(signature_only_module(tmp_path / "sig", 2))
    model = classifier_on(Holder(captured))
    model(X01[:1])
    head = model.layers[-1]
    assert graph.count_params(model) == 3 * 3 * 3 * 5 + (5 * 2 + 2) == (
        sum(int(np.prod(v.shape)) for v in captured.captured_module_variables)
        + sum(int(np.prod(v.shape)) for v in head.weights))


def test_the_exports_regularisation_losses_are_the_models_own_keras_ones_too(module_factory):
    """EnsembleModule.regularization_losses kept only the HubLayers' module losses: a weight
    Keras regularises in a member (a Keras-model module's kernel, a user's layer's Dense) was
    lost, though the model adds it while training. Now the export's losses are the model's."""
    l2 = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    dense = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.25))
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Softmax()(dense(Holder(l2)(inp))))
    kernel = next(v for v in l2.runtime.variables if "kernel" in v.name)
    with tf.GradientTape():
        model(X01, training=True)
    want = sorted([0.5 * float(tf.reduce_sum(tf.square(kernel))),
                   0.25 * float(tf.reduce_sum(tf.square(dense.kernel)))])
    np.testing.assert_allclose(sorted(float(v) for v in model.losses), want, rtol=1e-6)
    module = EnsembleModule([ExportMember(model, size=16, weight=1.0)], ["a", "b", "c"])
    got = sorted(float(fn()) for fn in module.regularization_losses())
    np.testing.assert_allclose(got, want, rtol=1e-6)


class Box(tf.Module):
    """A tf.Module (no Keras layer) holding a layer, and more Boxes in a list: TensorFlow's
    tracking reaches them (tf.saved_model.save keeps their variables), Keras' does not."""

    def __init__(self, layer, more=()):
        super().__init__()
        self.layer = layer
        self.more = list(more)


class BoxHolder(keras.layers.Layer):
    """A user's own layer that holds its layers in a tf.Module, inside a dict."""

    def __init__(self, box, **kwargs):
        super().__init__(**kwargs)
        self.boxes = {"main": box}

    def call(self, x, training=None):
        box = self.boxes["main"]
        outs = [box.layer(x, training=training)] + [more.layer(x) for more in box.more]
        return keras.ops.concatenate(outs, axis=-1)


def test_hub_layers_inside_a_tf_module_a_users_layer_holds_are_found(module_factory, tmp_path):
    """layers_within stopped at a tf.Module: a HubLayer in one (in a user's layer) lost its
    module's L2 loss and captured variables in the export and its weights in the cost's
    params. Now its losses are the L2 sum of its kernel by hand, in the export and in a
    module write_hub_module writes of the model, its variables kept."""
    l2 = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    captured = HubLayer(signature_only_module(tmp_path / "sig", 1))
    inner = Box(captured)
    model = classifier_on(BoxHolder(Box(l2, more=[inner, inner])))
    model(X01[:1])
    found = layers_within(model)
    assert [id(x) for x in found].count(id(l2)) == 1 and id(captured) in {id(x) for x in found}
    kernel = next(v for v in l2.runtime.variables if "kernel" in v.name)
    want = 0.5 * float(tf.reduce_sum(tf.square(kernel)))
    module = EnsembleModule([ExportMember(model, size=16, weight=1.0)], ["a", "b"])
    np.testing.assert_allclose([float(fn()) for fn in module.regularization_losses()], [want],
                               rtol=1e-6)
    kept = {id(v) for v in module.variables()}
    assert {id(v) for v in captured.captured_module_variables} <= kept
    written = tf.saved_model.load(write_hub_module(model, str(tmp_path / "written")))
    np.testing.assert_allclose([float(fn()) for fn in written.regularization_losses], [want],
                               rtol=1e-6)
    assert {tuple(v.shape) for v in captured.captured_module_variables} <= {
        tuple(v.shape) for v in written.variables}
    by_hand = sum(int(np.prod(v.shape)) for v in
                  [*l2.weights, *captured.captured_module_variables, *model.layers[-1].weights])
    assert graph.count_params(model) == by_hand
    # Keras layers in a tf.Module: Keras' own `weights` leave them out.
    boxed = classifier_on(BoxHolder(Box(keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]))))
    boxed(X01[:1])
    assert graph.count_params(boxed) == (3 * 4 + 4) + (4 * 2 + 2)


def test_a_layer_only_a_closure_holds_is_not_reached():
    """No tracking reaches a layer a function's closure holds (nor saves its variables)."""
    pool = keras.layers.GlobalAveragePooling2D()
    holder = keras.layers.Lambda(lambda x: pool(x))
    assert layers_within(holder) == [holder]


def test_keras_regularised_weights_inside_a_tf_module_are_found(module_factory, tmp_path):
    """regularization_fns read Keras' `model.weights`, which stop at a tf.Module: a Dense with
    an L2 regulariser in a tf.Module a user's layer holds gave [] (468's finding). Now its loss
    is the L2 sum of its kernel by hand, in the export and in a written module, whose
    variables and trainable variables keep the kernel; a frozen holder's are not trainable."""
    from hubensemble.hub.sublayers import weights_within
    from hubensemble.hub.writer import regularization_fns

    dense = keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(0.25))
    holder = BoxHolder(Box(keras.Sequential([keras.layers.GlobalAveragePooling2D(), dense])))
    model = classifier_on(holder)
    model(X01[:1])
    want = 0.25 * float(np.sum(np.square(dense.kernel.numpy())))
    assert want > 0
    np.testing.assert_allclose([float(fn()) for fn in regularization_fns(model)], [want],
                               rtol=1e-6)
    module = EnsembleModule([ExportMember(model, size=16, weight=1.0)], ["a", "b"])
    np.testing.assert_allclose([float(fn()) for fn in module.regularization_losses()], [want],
                               rtol=1e-6)
    written = tf.saved_model.load(write_hub_module(model, str(tmp_path / "written")))
    np.testing.assert_allclose([float(fn()) for fn in written.regularization_losses], [want],
                               rtol=1e-6)
    kernel = dense.kernel.numpy()
    for listed in (written.variables, written.trainable_variables):
        assert any(np.array_equal(v.numpy(), kernel) for v in listed)
    holder.trainable = False
    assert not {id(v) for v in dense.weights} & {
        id(v) for v in weights_within(model, trainable=True)}
    assert {id(v) for v in dense.weights} <= {id(v) for v in weights_within(model)}
