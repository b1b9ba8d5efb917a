"""Every Keras layer a layer holds, a model's and a user's own layer's alike: the one walk the
export, the module writer and the cost stage find HubLayers with (a leaf: imports only Keras
and TensorFlow)."""

from collections.abc import Mapping

import keras
import tensorflow as tf


def layers_within(root, *, trainable_only=False) -> list:
    """`root` (a Keras layer or model) and every Keras layer it holds, each once (by identity),
    breadth first, `root` first; [] for anything that is no Keras layer. With
    `trainable_only`, a layer whose ``trainable`` is False is left out with all it holds (Keras
    freezes what it tracks of a frozen layer, not a layer inside a tf.Module).

    A layer's sub-layers are a model's public ``layers``, then the layers in its attributes
    (a user's ``keras.layers.Layer`` subclass with ``self.backbone = HubLayer(...)``), alone,
    in a list, tuple, dict or set, or inside a ``tf.Module`` (its attributes, the same way,
    to any depth, as ``tf.Module.submodules`` walks one): what Keras 3 and TensorFlow's
    tracking reach from the layer, so what tf.saved_model.save keeps. Keras 3 has no public
    list of them (``Layer._flatten_layers`` is private and stops at a tf.Module; a model's
    ``layers`` only), so walking models alone lost a user layer's HubLayer, and walking
    attributes alone one inside a tf.Module: its module's regularisation losses and
    captured variables were missing from the export, its weights from the cost's params. A
    layer held only by a function's closure is not reached: no tracking reaches it (its
    variables are not saved either).
    """
    if not isinstance(root, keras.layers.Layer):
        return []
    out, seen, queue = [], set(), [root]
    while queue:
        layer = queue.pop(0)
        if trainable_only and not layer.trainable:
            continue
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
            queue.extend(_held(layer))
    return out


def _held(layer) -> list:
    """The Keras layers `layer` holds: its public ``layers`` (a model's), then those in its
    attributes (`_in_attributes`)."""
    listed = getattr(layer, "layers", None)
    found = [sub for sub in listed if isinstance(sub, keras.layers.Layer)] \
        if isinstance(listed, (list, tuple)) else []
    return found + _in_attributes(layer)


def _in_attributes(holder) -> list:
    """The Keras layers in `holder`'s attributes, depth first in their order: alone, in a
    container (each opened once: a list that holds itself) or in a tf.Module's attributes
    (not a Keras layer's: each layer is walked on its own by `layers_within`)."""
    found, opened, stack = [], {id(holder)}, list(vars(holder).values())
    while stack:
        value = stack.pop(0)
        if isinstance(value, keras.layers.Layer):
            found.append(value)
        elif id(value) in opened:
            continue
        elif isinstance(value, (Mapping, list, tuple, set, frozenset)):
            opened.add(id(value))
            stack[:0] = list(value.values() if isinstance(value, Mapping) else value)
        elif isinstance(value, tf.Module):  # what tf.Module._flatten walks: its attributes
            opened.add(id(value))
            stack[:0] = list(vars(value).values())
    return found


def weights_within(root, *, trainable=False) -> list:
    """The Keras variables (``keras.Variable``) of `root` and of every layer it holds
    (`layers_within`), each once (by identity), in walk order; with `trainable`, only the
    trainable ones of layers that, and whose holders, are trainable. Keras' own
    ``model.weights`` stop at a tf.Module: a Dense in a tf.Module a user's layer holds was
    neither in a written module's variables nor regularised (`hub.writer`)."""
    seen, out = set(), []
    for layer in layers_within(root, trainable_only=trainable):
        for v in (layer.trainable_weights if trainable else layer.weights):
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out
