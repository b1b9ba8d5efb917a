"""The export's variables of layers a user's layer holds in a tf.Module (`EnsembleModule`
with `hub.sublayers.weights_within`): Keras' own `variables` stop at a tf.Module."""

import keras

from test_sublayers import X01, Box, BoxHolder, classifier_on

from hubensemble.export.saved import EnsembleModule, ExportMember
from hubensemble.hub import HubLayer
from hubensemble.hub.writer import tf_variable


def test_the_exports_variables_keep_a_hub_layers_weights_inside_a_tf_module(module_factory):
    """EnsembleModule.variables() and trainable_variables() read Keras' `variables`: a
    trainable HubLayer's weights and a Dense's kernel in a tf.Module a user's layer holds were
    in neither; a frozen holder's are variables, not trainable ones."""
    hub = HubLayer(module_factory("l2", l2=0.5), trainable=True)
    dense = keras.layers.Dense(3)
    holder = BoxHolder(Box(hub, more=[Box(keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), dense]))]))
    model = classifier_on(holder)
    model(X01[:1])
    module = EnsembleModule([ExportMember(model, size=16, weight=1.0)], ["a", "b"])
    inside = {id(tf_variable(v)) for v in [*hub.trainable_weights, *dense.weights]}
    assert hub.trainable_weights and dense.weights
    assert inside <= {id(v) for v in module.variables()}
    assert inside <= {id(v) for v in module.trainable_variables()}
    holder.trainable = False
    assert inside <= {id(v) for v in module.variables()}
    assert not inside & {id(v) for v in module.trainable_variables()}
