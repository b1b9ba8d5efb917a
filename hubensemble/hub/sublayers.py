"""Every Keras layer a layer holds, a model's and a user's own layer's alike: the one walk the
export, the module writer and the cost stage find HubLayers with (a leaf: imports only Keras)."""

from collections.abc import Mapping

import keras


def layers_within(root) -> list:
    """`root` (a Keras layer or model) and every Keras layer it holds, each once (by identity),
    breadth first, `root` first; [] for anything that is no Keras layer.

    A layer's sub-layers are a model's public ``layers`` and, for a layer without that list (a
    user's ``keras.layers.Layer`` subclass with ``self.backbone = HubLayer(...)``), the layers
    in its attributes, alone or in a list, tuple, dict or set: the ones Keras 3 tracks when
    they are assigned, and whose losses its ``Layer.losses`` collects. Keras 3 has no public
    list of them (``Layer._flatten_layers`` is private; a model's ``layers`` only), so walking
    models alone lost a user layer's HubLayer: its module's regularisation losses and
    captured variables were missing from the export. A layer held only inside another kind
    of object (a tf.Module, a function's closure) is not reached.
    """
    if not isinstance(root, keras.layers.Layer):
        return []
    out, seen, queue = [], set(), [root]
    while queue:
        layer = queue.pop(0)
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
            queue.extend(_held(layer))
    return out


def _held(layer) -> list:
    listed = getattr(layer, "layers", None)
    if isinstance(listed, (list, tuple)):  # a model's own list (public)
        return [sub for sub in listed if isinstance(sub, keras.layers.Layer)]
    found, opened, stack = [], set(), list(vars(layer).values())
    while stack:  # depth first into containers, keeping the attributes' order
        value = stack.pop(0)
        if isinstance(value, keras.layers.Layer):
            found.append(value)
        elif isinstance(value, (Mapping, list, tuple, set, frozenset)) and id(value) not in opened:
            opened.add(id(value))  # a list that holds itself is opened once
            stack[:0] = list(value.values() if isinstance(value, Mapping) else value)
    return found
