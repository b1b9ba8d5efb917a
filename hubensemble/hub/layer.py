"""HubLayer: a module as a fine-tunable Keras 3 layer, calling it through the module runtime."""

import logging
import os
import re

import keras

from hubensemble.hub.runtime import VALUE_RANGES, ModuleRuntime

log = logging.getLogger(__name__)

#: Modules (path, reason) already said to be used frozen in this process: a sweep builds a
#: module once per trial and export once per member, and one warning says it.
_WARNED_FROZEN: set = set()

#: How a trainable HubLayer runs the module while it trains (`HubLayer`'s ``batchnorm``):
#: "train" passes Keras' `training` through (BatchNorm normalises with batch statistics and
#: updates its moving averages); "inference" calls the module with training=False while its
#: weights still train (BatchNorm keeps its moving statistics; Keras' transfer-learning guide,
#: https://keras.io/guides/transfer_learning/); "auto" is "inference" for a module with
#: BatchNorm (`batchnorm_evidence`), else "train".
BATCHNORM_POLICIES = ("auto", "train", "inference")
#: Last components of a variable name that hold BatchNorm's moving statistics: Keras and
#: TF-Slim (moving_mean / moving_variance), PyTorch conversions (running_mean / running_var).
BATCHNORM_VARIABLE_NAMES = ("moving_mean", "moving_variance", "running_mean", "running_var")


def batchnorm_evidence(variable_names) -> str | None:
    """The first variable name among `variable_names` (strings such as
    "conv1_bn/moving_mean:0") whose last path component is one of BATCHNORM_VARIABLE_NAMES,
    or None when no name shows BatchNorm moving statistics."""
    for name in variable_names:
        last = str(name).split(":")[0].rstrip("/").rsplit("/", 1)[-1]
        if last in BATCHNORM_VARIABLE_NAMES:
            return str(name)
    return None


def saved_model_variable_names(path) -> list[str]:
    """The names of the variables a SavedModel folder saves (its object graph), read from
    saved_model.pb without loading the module (milliseconds). Raises OSError when the file
    cannot be read, ValueError when it is not a SavedModel protocol buffer."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as f:
        data = f.read()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError has no stable import path
        raise ValueError(f"{path}/saved_model.pb is not a SavedModel ({e})") from None
    return [node.variable.name for graph in proto.meta_graphs
            for node in graph.object_graph_def.nodes if node.WhichOneof("kind") == "variable"]


def resolve_batchnorm(policy, variable_names) -> tuple[str, str | None]:
    """(policy, evidence): "auto" becomes "inference" when `batchnorm_evidence` finds a
    BatchNorm moving statistic among `variable_names` (evidence = that name), else "train"
    (evidence None); "train" / "inference" stay. ValueError for another policy."""
    if policy not in BATCHNORM_POLICIES:
        raise ValueError(f"unknown batchnorm policy {policy!r}; use one of "
                         f"{', '.join(BATCHNORM_POLICIES)}")
    evidence = batchnorm_evidence(variable_names)
    if policy == "auto":
        return ("inference" if evidence else "train"), evidence
    return policy, evidence


@keras.saving.register_keras_serializable(package="hubensemble")
class HubLayer(keras.layers.Layer):
    """A module (a TF Hub / Kaggle / local / zoo SavedModel, a SavedModel signature, a
    ``keras:`` architecture, a .keras/.h5 file or a keras-hub preset) as a fine-tunable Keras 3
    layer.

    Input: float32 images ``[B, H, W, 3]`` in [0, 1], any size; output: float32 embeddings
    ``[B, output_dim]``. The call is `ModuleRuntime`'s, the same as rank's and the export's:
    resized to ``input_size`` when set (``augment.resize``, antialiased), mapped to
    ``value_range``, fed as ``input_dtype`` (float32 or uint8; None: what the module's
    signature takes; kept as ``module_input_dtype``, since Keras owns ``input_dtype``), with
    the `training` argument adapted to the module's ``__call__``.
    A frozen layer (``trainable=False``) runs the module in inference mode, as
    ``hub.KerasLayer`` does; a trainable one passes Keras' ``training`` through with
    ``batchnorm="train"``, and calls the module in inference mode while its weights train
    with ``batchnorm="inference"`` (BatchNorm keeps its moving statistics; see
    BATCHNORM_POLICIES; "auto" decides from the module's variable names and is kept as the
    decided policy in ``batchnorm``, the evidence in ``batchnorm_evidence``).

    The layer owns the module's own variables (no copies), so fine-tuning updates the module
    (a Keras-model module is tracked as the sub-model ``module_model``; a SavedModel's
    tf.Variables are wrapped); a module without trainable variables stays frozen (a probe),
    with a warning;
    its regularisation losses are added while training (``_reg_losses``; the export reads
    them too). Serialises by handle: ``from_config`` loads the module again and Keras restores
    the fine-tuned weights on top. Load inside ``strategy.scope()`` to distribute it.

    Raises ModuleLoadError (with its stage) when the module cannot be located, loaded or
    called this way — at construction when the signature shows it, else at the first call —
    and ValueError for an unknown ``value_range`` or ``input_dtype``.

    Example::

        layer = HubLayer("https://tfhub.dev/google/bit/m-r50x1/1", trainable=True)
        model = keras.Sequential([keras.Input((None, None, 3)), layer,
                                  keras.layers.Dense(10)])
    """

    def __init__(self, handle, *, trainable=False, input_size=None, value_range="0,1",
                 sha256=None, trust=False, output_key=None, module_name=None,
                 input_dtype=None, weights=None, layer=None, signature=None,
                 batchnorm="train", **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        if batchnorm not in BATCHNORM_POLICIES:
            raise ValueError(f"unknown batchnorm policy {batchnorm!r}; use one of "
                             f"{', '.join(BATCHNORM_POLICIES)}")
        if value_range not in VALUE_RANGES:
            raise ValueError(f"unknown value_range {value_range!r}; use one of {VALUE_RANGES}")
        self.handle = handle
        self.value_range = value_range
        self.sha256 = sha256
        self.trust = bool(trust)
        self.output_key = output_key
        self.module_name = module_name
        self.weights_source, self.module_layer, self.module_signature = weights, layer, signature
        runtime = ModuleRuntime.load(handle, name=module_name, sha256=sha256, trust=trust,
                                     input_size=input_size, value_range=value_range,
                                     input_dtype=input_dtype, output_key=output_key,
                                     weights=weights, layer=layer, signature=signature)
        self._runtime = runtime
        self.input_size = runtime.input_size
        # Not `input_dtype`: that is Keras' own (the layer's input is float32 in any case).
        self.module_input_dtype = input_dtype
        self.module_path = runtime.path
        self.fingerprint = runtime.fingerprint
        self.output_dim = runtime.output_dim
        self._module = runtime.obj
        if trainable and runtime.frozen_reason:
            seen = (runtime.path, runtime.frozen_reason)
            log.log(logging.DEBUG if seen in _WARNED_FROZEN else logging.WARNING,
                    "module %s: %s", module_name or handle, runtime.frozen_reason)
            _WARNED_FROZEN.add(seen)
        if runtime.keras_model is not None:
            # A Keras model's variables are Keras' already: track the model itself.
            self.module_model = runtime.keras_model
            self.module_model.trainable = bool(trainable)
        trainable_ids = {id(v) for v in runtime.trainable_variables}
        self._module_variables = []
        for i, v in enumerate(runtime.variables if runtime.keras_model is None else []):
            # Wrapping a tf.Variable keeps the very same variable (Keras' TF backend stores it
            # as-is), so the module's functions see every update the optimizer makes.
            kv = keras.Variable(initializer=v, trainable=id(v) in trainable_ids, dtype=v.dtype,
                                shape=v.shape, name=f"module_{i}_" + _clean(v.name))
            self._track_variable(kv)
            self._module_variables.append(kv)
        self._reg_losses = runtime.regularization_losses
        self.batchnorm, self.batchnorm_evidence = resolve_batchnorm(
            batchnorm, [v.name for v in runtime.variables])
        self.built = True

    @property
    def runtime(self) -> ModuleRuntime:
        """The ModuleRuntime this layer calls."""
        return self._runtime

    def call(self, images, training=None):
        """float32 images [B, H, W, 3] in [0, 1] -> float32 [B, output_dim]; the module's
        regularisation losses are added while a trainable layer trains (also when
        ``batchnorm="inference"`` runs the module itself in inference mode)."""
        train = bool(training) and self.trainable
        out = self._runtime(images, training=train and self.batchnorm == "train")
        if train:
            for fn in self._reg_losses:
                self.add_loss(fn())
        return out

    def compute_output_shape(self, input_shape):
        """(batch, output_dim); output_dim is None when the signature does not say it."""
        return (input_shape[0], self.output_dim)

    def get_config(self):
        """Keras config: the layer's own plus the constructor arguments (by handle)."""
        config = super().get_config()
        config.update(handle=self.handle, input_size=self.input_size,
                      value_range=self.value_range, sha256=self.sha256, trust=self.trust,
                      output_key=self.output_key, module_name=self.module_name,
                      input_dtype=self.module_input_dtype, weights=self.weights_source,
                      layer=self.module_layer, signature=self.module_signature,
                      batchnorm=self.batchnorm)
        return config


def _clean(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0])[-60:]


def hub_layer_from_spec(spec, *, trainable=False, name=None, batchnorm="train"):
    """The HubLayer of a catalogue ModuleSpec (handle, sha256, trust, input_size, value_range,
    input_dtype, output_key, weights, layer, signature; named after the entry in errors) with
    the BatchNorm policy `batchnorm` (BATCHNORM_POLICIES). Raises as HubLayer does."""
    return HubLayer(spec.handle, trainable=trainable, input_size=spec.input_size,
                    value_range=spec.value_range, sha256=spec.sha256, trust=spec.trust,
                    output_key=spec.output_key, module_name=spec.name,
                    input_dtype=getattr(spec, "input_dtype", None),
                    weights=getattr(spec, "weights", None), layer=getattr(spec, "layer", None),
                    signature=getattr(spec, "signature", None), name=name,
                    batchnorm=batchnorm)
