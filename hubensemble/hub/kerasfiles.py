"""Keras model files (.keras, .h5) as modules, cut at their embedding.

``keras.saving.load_model`` in Keras' safe mode unless trusted, cut where the embedding is (a
named layer, or the input of the classifier's head) and averaged over space to [B, D]
(`load_model_file`, `embedding_model`); the value range such a model's inputs take
(`guess_value_range`). Split from `hub.sources`, which builds the other Keras modules and
still offers these functions.
"""

from __future__ import annotations

import re

import keras

from hubensemble.classifierhandles import HEAD_PASS
from hubensemble.errors import ModuleLoadError, first_line
from hubensemble.handles import keras_file_problem
from hubensemble.kerasconfig import weights_only_problem
from hubensemble.modulefiles import CUSTOM_CODE_WAY
from hubensemble.saidwords import ON_ENTRY, SET, Say, field_words


def _load_error(message, path, module, stage="load", way=None):
    return ModuleLoadError(message, module=module, handle=path, stage=stage, way=way)


#: Keras' refusal of a class or function the file names but no import registered (a
#: subclassed model, a custom layer): "Could not locate class 'Sub'. Make sure …".
_CUSTOM_OBJECT = re.compile(r"Could not locate (class|function) '([^']+)'")


def load_model_file(path, *, layer=None, trust=False, module=None,
                    handle=None) -> keras.Model:
    """The embedding model of a Keras model file: ``keras.saving.load_model(path,
    compile=False, safe_mode=not trust)``, cut at ``layer`` (the model from its inputs to
    that layer's output) or, without ``layer``, at the input of its last Dense layer (the
    features a classifier's head sees); without a Dense layer, at the input of a
    convolutional classifier head (a 1x1 Conv2D giving the logits, as MobileNet's and
    MobileNetV3's include_top heads: `_conv_head_input`), else its own output. A cut at a
    [B, H, W, C] feature map is averaged over space (GlobalAveragePooling2D), so the
    embedding is [B, C].

    Raises ModuleLoadError: stage "unsafe" for a file whose Lambda layers carry Python code
    (Keras' safe mode; ``trust: true`` loads it), "load" when Keras cannot read it (unknown
    custom classes, a broken file, an HDF5 file of weights only:
    `kerasconfig.weights_only_problem`), "output" for an unknown ``layer`` (listing the layers
    with [batch, features] outputs) or a model that cannot be cut (subclassed). Errors name
    ``handle`` (the catalogue's; default ``path``), and a file that is not a zip (.keras) or
    HDF5 file (.h5) is said to be so, with what it holds (`handles.keras_file_problem`).
    """
    problem = keras_file_problem(path)
    if problem:  # Keras would say "File not found" for an existing file of other bytes
        raise _load_error(problem, handle or path, module)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a bad file
        text = first_line(e)
        if "arbitrary code execution" in str(e) or "safe_mode" in str(e):
            raise _load_error(
                "refusing to load: the model file holds Python code (a Lambda layer) that would "
                "run when it is loaded", handle or path, module, "unsafe",
                ("; if you trust its author, ", SET, Say("trust", True, yaml="`trust: true`"),
                 ON_ENTRY, f" ({text})")) from e
        custom = _CUSTOM_OBJECT.search(str(e))
        if custom:
            raise _load_error(
                f"the model uses the {custom.group(1)} {custom.group(2)!r}, Python code of its "
                f"own that is not in the file, and hubensemble cannot import it; {CUSTOM_CODE_WAY}",
                handle or path, module) from e  # its input_size: of the export's entry
        weights_only = weights_only_problem(path)  # "No model config found in the file"
        if weights_only:
            raise _load_error(weights_only, handle or path, module) from e
        raise _load_error(f"keras.saving.load_model failed: {type(e).__name__}: {text}",
                          handle or path, module) from e
    return embedding_model(model, layer=layer, path=path, module=module)


def embedding_model(model, *, layer=None, path=None, module=None) -> keras.Model:
    """``model`` cut at the embedding: see `load_model_file` (same errors)."""
    inputs = getattr(model, "inputs", None)
    layers = list(getattr(model, "layers", []))
    if not inputs:
        if layer is not None:
            raise _load_error((field_words("layer"), " needs a functional or Sequential model; "
                               "this one is subclassed"), path, module, "output")
        return model
    if layer is not None:
        try:
            target = model.get_layer(layer)
        except ValueError:
            pooled = [x.name for x in layers if _rank(x, "output") == 2]
            raise _load_error(
                f"the model has no layer {layer!r}; layers with [batch, features] outputs: "
                f"{', '.join(pooled[-8:]) or 'none'}", path, module, "output") from None
        outputs = target.output
    else:
        dense = [x for x in layers if isinstance(x, keras.layers.Dense)]
        outputs = dense[-1].input if dense else _conv_head_input(model, layers)
        if outputs is None:
            return model
    if isinstance(outputs, (list, tuple)):
        raise _load_error("the embedding layer has several outputs", path, module, "output", (
            "; name a layer with one [batch, features] output in ", field_words("layer")))
    if len(outputs.shape) == 4:
        # A feature map [B, H, W, C]: its average over space, as Keras' transfer-learning guide
        # pools a base model (GlobalAveragePooling2D) and `keras:NAME` does (pooling="avg").
        outputs = keras.layers.GlobalAveragePooling2D(name="hubensemble_pool")(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_embedding")


def _conv_head_input(model, layers):
    """For a model without a Dense layer whose [batch, classes] output comes from a 1x1
    Conv2D (its logits) through `HEAD_PASS` layers only, as keras.applications.MobileNet and
    MobileNetV3 with include_top=True: that Conv2D's input (a [B, H, W, C] feature map);
    else None. `locate.keras_default_layer` reads the same rule from the file's config."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None
    if isinstance(model, keras.Sequential):  # a chain: its layers' tensors are not its own
        chain = list(reversed(layers))
        layer = chain.pop(0) if chain else None
        while chain and type(layer).__name__ in HEAD_PASS:
            layer = chain.pop(0)
    else:
        made = {}
        for layer in layers:
            try:
                made[id(layer.output)] = layer
            except (AttributeError, ValueError):  # a shared layer (several nodes)
                continue
        layer = made.get(id(model.outputs[0]))
        while layer is not None and type(layer).__name__ in HEAD_PASS:
            layer = made.get(id(layer.input))
    if isinstance(layer, keras.layers.Conv2D) and tuple(layer.kernel_size) == (1, 1):
        return layer.input
    return None


def _rank(layer, what):
    try:
        return len(getattr(layer, what).shape)
    except (AttributeError, ValueError, TypeError):
        return None


def guess_value_range(model) -> str:
    """The value range a Keras model's inputs are in, read from a Rescaling or Normalization
    layer right after its input: "0,255" when it scales by 1/255 or 1/127.5, or normalises by
    a mean above 2 (one adapted to, or given as, pixel values in [0, 255] such as ImageNet's
    123.7, 116.3, 103.5), as it maps pixels itself; else "0,1" (what hubensemble feeds by
    default)."""
    for layer in list(getattr(model, "layers", []))[:3]:
        if isinstance(layer, keras.layers.Normalization):
            try:
                mean = [float(v) for v in keras.ops.convert_to_numpy(layer.mean).ravel()]
            except (AttributeError, TypeError, ValueError):  # not built: no mean to read
                continue
            # A mean over [0, 1] pixels is below 1; over [0, 255] pixels, far above it.
            if mean and max(abs(v) for v in mean) > 2.0:
                return "0,255"
        scale = getattr(layer, "scale", None) if isinstance(layer, keras.layers.Rescaling) \
            else None
        if isinstance(scale, (int, float)) and any(abs(scale * top - 1.0) < 1e-3
                                                   for top in (255.0, 127.5)):
            return "0,255"
    return "0,1"
