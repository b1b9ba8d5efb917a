"""HubLayer: a module as a fine-tunable Keras 3 layer, calling it through the module runtime."""

import logging
import os
import re

import keras

from hubensemble.catalogue import SHA256_RE, parse_value_range
from hubensemble.errors import HubensembleError, ModuleLoadError, checks_keywords
from hubensemble.catalogue_urls import url_case
from hubensemble.handlehere import unnamed_handle
from hubensemble.handles import (HandleFormError, check_handle_form,
                                 check_weights, handle_kind, stored_handle,
                                 stored_weights)
from hubensemble.hub.notices import first_look
from hubensemble.hub.resolvers import handle_prefix
from hubensemble.hub.runtime import VALUE_RANGES, ModuleRuntime, check_source_fields
from hubensemble.inputsize import checked_input_size


log = logging.getLogger(__name__)

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


def held_variables(runtime: ModuleRuntime) -> list:
    """Every distinct tf.Variable a loaded module holds, each once (a Keras model's weights as
    the tf.Variables they wrap): its `variables` and those its SavedModel signature reads
    (`SignatureModule.captured_variables`; a tf.Module saved by tf.saved_model.save exposes
    no `variables`, and HubLayer tracks none of them). What `catalogue add` records as
    `params` and the cost pass counts (`cost.graph.count_params`)."""
    found, seen = [], set()
    for v in list(runtime.variables) + list(getattr(runtime.obj, "captured_variables", ())):
        v = v.value if isinstance(v, keras.Variable) else v
        if id(v) not in seen:
            seen.add(id(v))
            found.append(v)
    return found


def wraps_in_place(wrapper, variable) -> bool:
    """Whether the Keras variable `wrapper`, made with ``keras.Variable(initializer=variable)``,
    holds `variable` itself (a tf.Variable: True from Keras 3.10 on its TensorFlow backend), or
    a copy (Keras 3.3–3.9, measured: the module's functions then read variables the optimizer
    never updates). Anything but a plain tf.Variable (a Keras variable, a distributed one) is
    taken as wrapped in place: Keras keeps those as they are."""
    import tensorflow as tf

    if isinstance(variable, keras.Variable) or not isinstance(variable, tf.Variable):
        return True
    held = getattr(wrapper, "value", None)
    return held is variable or type(variable).__name__ != "ResourceVariable"


@keras.saving.register_keras_serializable(package="hubensemble")
@checks_keywords  # handel=…, trainabel=…, nmae=…: the keyword meant (Keras: "Unrecognized")
class HubLayer(keras.layers.Layer):
    """A module (a TF Hub / Kaggle / local / zoo SavedModel, a SavedModel signature, a
    ``keras:`` architecture, a .keras/.h5 file or a keras-hub preset) as a fine-tunable Keras 3
    layer.

    Input: float images ``[B, H, W, 3]`` in [0, 1] (float16/float64 are cast to float32), of
    any size when the module takes any size or ``input_size`` is given; a module saved for
    one fixed size (e.g. ``write_hub_module(..., input_size=(32, 32))``) needs
    ``input_size=(32, 32)``, which resizes every image to it, and the error says so. Output:
    float32 embeddings ``[B, output_dim]``. The call is `ModuleRuntime`'s, the same as rank's
    and the export's:
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

    Arguments: ``handle`` — a str or os.PathLike in one of the catalogue's handle forms
    (``handles.check_handle_form``: a tfhub.dev / Kaggle / http(s) / gs:// URL, ``zoo:``,
    ``keras:NAME``, ``kaggle://`` / ``hf://`` presets, ``file://`` or a local path) or a
    prefix registered with ``hub.register_resolver``; a relative local path is kept absolute
    (``handle``, and so the saved config, hold the absolute path), URLs and prefixed
    handles as given. ``input_size`` — None or (height, width), two integers in [1, 2048].
    ``value_range`` — "0,1", "-1,1", "0,255", "imagenet" or a pair such as (0, 255).
    ``sha256`` — None or 64 hexadecimal characters; ``trust`` — a bool; ``output_key``,
    ``module_name``, ``layer``, ``signature`` — None or a str; ``weights`` — None,
    "imagenet" or a .h5/.keras file (``keras:NAME`` only; a relative path is kept absolute);
    ``layer`` is for .keras/.h5 files only, ``signature`` for SavedModels only.

    The layer owns the module's own variables (no copies), so fine-tuning updates the module
    (a Keras-model module is tracked as the sub-model ``module_model``; a SavedModel's
    tf.Variables are wrapped); a module without trainable variables stays frozen (a probe),
    with a warning; the variables its signature reads that it does not expose (a tf.Module
    saved with only a signature) are kept, not wrapped, in ``captured_module_variables``
    (tf.Variables, outside the layer's weights), so a SavedModel of a model holding the
    layer (the export, ``write_hub_module``, ``tf.saved_model.save``) tracks them;
    its regularisation losses are added while training (``module_regularization_losses``;
    the export and ``write_hub_module`` keep them). Serialises by handle: ``from_config``
    loads the module again and Keras restores the fine-tuned weights on top. Load inside
    ``strategy.scope()`` to distribute it. In a new process, ``keras.models.load_model``
    finds the class once hubensemble's layers are imported: pass
    ``custom_objects=hubensemble.custom_objects()`` (or run ``from hubensemble import
    HubLayer`` first).

    Raises, before the module loads: TypeError for a ``handle`` that is not a str or path, an
    ``input_size`` that is not a pair of integers, a ``trust`` that is not a bool or a name argument
    that is not a str; ValueError (``handles.HandleFormError`` for the handle and ``weights``) for a
    malformed handle (an unknown ``keras:`` name, with the closest one; a relative path that names
    nothing in the current folder, such as "abc": with the accepted forms,
    `handlehere.unnamed_handle`), an ``input_size`` side outside [1, 2048], an unknown
    ``value_range``, ``input_dtype`` or ``batchnorm``, a malformed ``sha256``, or ``weights`` /
    ``layer`` / ``signature`` given for a kind of module that does not take them. Raises
    ModuleLoadError (with its stage) when the module cannot be located, loaded or called this way —
    at construction when the signature shows it, else at the first call; its hint names the HubLayer
    argument to pass (a layer made by `hub_layer_from_spec`: the catalogue field). A call raises
    TypeError for images that are not floats (e.g. uint8: convert them to float32 in [0, 1]) and
    ValueError for a shape other than ``[B, H, W, 3]``. Its dtype policy is float32 unless ``dtype``
    is given, whatever Keras' global policy (``mixed_float16`` in a model of your own: the layers
    after it compute in float16 as usual).

    Example::

        layer = HubLayer("https://tfhub.dev/google/bit/m-r50x1/1", trainable=True)
        model = keras.Sequential([keras.Input((None, None, 3)), layer,
                                  keras.layers.Dense(10)])
    """

    def __init__(self, handle, *, trainable=False, input_size=None, value_range="0,1",
                 sha256=None, trust=False, output_key=None, module_name=None,
                 input_dtype=None, weights=None, layer=None, signature=None,
                 batchnorm="train", _from_catalogue=False, **kwargs):
        # float32 whatever the global policy: a module computes in its own float32 (a user's
        # mixed_float16 or floatx float64 model cast the images for it, and every call failed)
        kwargs["dtype"] = kwargs.get("dtype") or "float32"
        super().__init__(trainable=trainable, **kwargs)
        if batchnorm not in BATCHNORM_POLICIES:
            raise ValueError(f"unknown batchnorm policy {batchnorm!r}; use one of "
                             f"{', '.join(BATCHNORM_POLICIES)}")
        handle = _checked_handle(handle)
        input_size = checked_input_size(input_size, who="HubLayer",
                                        none_means="the module's own size")
        value_range = _checked_value_range(value_range)
        if sha256 is not None and not (isinstance(sha256, str) and SHA256_RE.fullmatch(sha256)):
            raise ValueError(f"HubLayer sha256 must be None or 64 hexadecimal characters (the "
                             f"hash `sha256sum FILE` prints: the 64-character hash alone, "
                             f"not the name after it), got {sha256!r}")
        if not isinstance(trust, bool):
            raise TypeError(f"HubLayer trust must be True or False, got "
                            f"{type(trust).__name__} {trust!r}")
        for name, value in (("output_key", output_key), ("module_name", module_name),
                            ("layer", layer), ("signature", signature)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"HubLayer {name} must be None or a str, got "
                                f"{type(value).__name__} {value!r}")
        weights = _checked_weights(weights)
        _check_source_fields(handle, weights=weights, layer=layer, signature=signature,
                             input_dtype=input_dtype, value_range=value_range,
                             input_size=input_size)
        self.handle = handle
        self.value_range = value_range
        self.sha256 = sha256.lower() if sha256 else None
        self.trust = trust
        self.output_key = output_key
        self.module_name = module_name
        self.weights_source, self.module_layer, self.module_signature = weights, layer, signature
        # Errors name the catalogue's fields for a layer of a catalogue entry, else HubLayer's
        # own arguments (a Python user has no catalogue entry to edit).
        self._from_catalogue = bool(_from_catalogue)
        try:
            runtime = ModuleRuntime.load(handle, name=module_name, sha256=self.sha256,
                                         trust=trust, input_size=input_size,
                                         value_range=value_range, input_dtype=input_dtype,
                                         output_key=output_key, weights=weights, layer=layer,
                                         signature=signature, hint_form="yaml" if (
                                             self._from_catalogue) else "python")
        except ModuleLoadError as e:
            raise self._said(e) from e
        self._runtime = runtime
        self.input_size = runtime.input_size
        # Not `input_dtype`: that is Keras' own (the layer's input is float32 in any case).
        self.module_input_dtype = input_dtype
        self.module_path = runtime.path
        self.fingerprint = runtime.fingerprint
        #: What it was loaded from (hub.ModuleFiles: path, kind, fingerprint, …).
        self.module_files = runtime.files
        self.output_dim = runtime.output_dim
        self._module = runtime.obj
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
            if not wraps_in_place(kv, v):
                raise HubensembleError(
                    f"Keras {keras.__version__} copies a module's variables when it wraps them "
                    "(Keras before 3.10 does), so fine-tuning would train the copies, which the "
                    "module never reads: only the head would learn, silently. Upgrade Keras "
                    "(pip install 'keras>=3.11.3', as hubensemble's requirements say)")
            # Keras' attribute tracking (public behaviour) stores a Variable appended to a
            # list attribute as a weight, trainable or not by its own flag; a frozen layer's
            # are then marked untrainable, as Keras marks add_weight's: a model's
            # trainable_weights read each variable's flag, so without it a frozen layer
            # trained (test_hub's frozen-layer tests).
            self._module_variables.append(kv)
            if not self.trainable:
                kv.trainable = False
        # The variables the module's functions read that no Keras variable wraps (a tf.Module
        # saved with only a signature exposes none): kept in a tracked attribute, so that
        # tf.saved_model.save of a model holding this layer (the export, write_hub_module,
        # keras.Model.export) finds them; outside Keras' weights, so weights files keep
        # their layout.
        wrapped = {id(v.value if isinstance(v, keras.Variable) else v)
                   for v in runtime.variables}
        self.captured_module_variables = [v for v in held_variables(runtime)
                                          if id(v) not in wrapped]
        self._reg_losses = runtime.regularization_losses
        self.batchnorm, self.batchnorm_evidence = resolve_batchnorm(
            batchnorm, [v.name for v in runtime.variables])
        self.built = True
        if self._from_catalogue:
            _look_for_probabilities(runtime)

    @property
    def runtime(self) -> ModuleRuntime:
        """The ModuleRuntime this layer calls."""
        return self._runtime

    @property
    def module_regularization_losses(self) -> list:
        """The module's own regularisation losses: argument-less callables, each returning a
        float32 scalar (e.g. L2 on a kernel), that the layer adds while it trains; [] for a
        Keras-model module, whose weights carry their own regularizers. What a SavedModel of
        a model holding the layer keeps (`write_hub_module`)."""
        return list(self._reg_losses)

    def call(self, images, training=None):
        """float images [B, H, W, 3] in [0, 1] -> float32 [B, output_dim]; the module's
        regularisation losses are added while a trainable layer trains (also when
        ``batchnorm="inference"`` runs the module itself in inference mode). Raises as the
        class docstring says, in our words alone: Keras' __call__ re-makes an error raised
        here as "Exception encountered when calling HubLayer.call(). \x1b[1m…\x1b[0m
        Arguments received by …" (a ModuleLoadError losing its stage), unless the error says
        it was told (`_told`)."""
        try:
            images = _checked_images(images)
            self._check_size(images)
        except (HubensembleError, TypeError, ValueError) as e:  # ours: the images, the size
            raise _told(e)
        train = bool(training) and self.trainable
        try:
            out = self._runtime(images, training=train and self.batchnorm == "train")
        except ModuleLoadError as e:
            raise _told(self._said(e)) from e
        if train:
            for fn in self._reg_losses:
                self.add_loss(fn())
        return out

    def _check_size(self, images):
        # A module saved for fixed sizes, called without input_size: the runtime's refusal
        # names the catalogue field; a HubLayer user needs the argument.
        sizes = self._runtime.signature.sizes
        if not sizes or self.input_size is not None or self._from_catalogue:
            return
        try:  # the runtime's rule and words (catalogue_sizes), said as HubLayer takes them
            self._runtime.check_input_size(tuple(images.shape[1:3]))
        except ModuleLoadError as e:
            raise self._said(e) from None

    def _said(self, error):
        """`error` (a ModuleLoadError) as is for a layer of a catalogue entry (a catalogue's
        words), else said as a call passes its arguments ("pass output_key=KEY, the
        embedding's key": `ModuleLoadError.said_as`). A catalogue's words with "(with HubLayer,
        output_key is an argument: …)" appended were told before, and a refusal the note did
        not reach in a catalogue's words alone."""
        return error if self._from_catalogue else error.said_as("python")

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


def _checked_handle(handle) -> str:
    """`handle` as HubLayer keeps it: a local path absolute (`handles.stored_handle`, as
    catalogues keep it), any other form as given but for its scheme and host, in lower case
    (`catalogue_urls.url_case`). TypeError for a handle that is not a str
    or os.PathLike, HandleFormError (a ValueError) for a malformed one, each telling the
    handle to pass ("pass handle='keras:MobileNetV3Small' instead"), not a catalogue's words."""
    if isinstance(handle, os.PathLike):
        handle = os.fspath(handle)
    try:
        if not isinstance(handle, str):
            check_handle_form(handle)  # raises, with the accepted forms
        if (handle_kind(handle) == "local" and not handle.startswith("file:")
                and handle_prefix(handle) is not None):
            return handle  # a prefix of a registered resolver: it judges its own handles
        check_handle_form(handle)
        unnamed = unnamed_handle(handle, os.getcwd())
        if unnamed is not None:
            raise unnamed
    except HandleFormError as e:  # its way on as a call passes it (`python_hint`)
        if not isinstance(handle, str):
            raise TypeError(f"HubLayer handle {e.problem}; {e.python_hint}") from None
        raise HandleFormError(f"HubLayer handle {e.problem}", e.python_hint) from None
    if handle_kind(handle) == "local" and not handle.startswith("file:"):
        return stored_handle(handle, os.getcwd())
    return url_case(handle)  # HTTPS://TFHub.dev/…: https://tfhub.dev/…, one cache folder


def _checked_value_range(value) -> str:
    """`value` canonical ("0,1", "-1,1", "0,255", "imagenet"; `catalogue.parse_value_range`
    also takes pairs such as (0, 255)); ValueError naming the accepted ones."""
    try:
        return parse_value_range(value)
    except ValueError:
        raise ValueError(f"unknown value_range {value!r}; use one of {VALUE_RANGES} (or a pair "
                         "such as (0, 255))") from None


def _checked_weights(value):
    """A ``weights`` argument checked (`handles.check_weights`) and, when a path, absolute
    (`handles.stored_weights`); HandleFormError (a ValueError) naming the argument, with the
    check's own way on as a call passes it (a file://HOST/… path was told the generic
    "pass weights='imagenet' or the path of a .h5/.keras weights file", not its mount)."""
    try:
        check_weights(value)
    except HandleFormError as e:
        raise HandleFormError(f"HubLayer weights {e.problem}", e.python_hint) from None
    return stored_weights(value, os.getcwd())


def _check_source_fields(handle, **fields):
    """ValueError for an argument the kind of module `handle` names does not take
    (`hub.runtime.check_source_fields`, load_module's too: the catalogue's rule and its way
    on in a call's words; HubLayer's own words had dropped "(or pass value_range=(0, 1))")."""
    check_source_fields("HubLayer", handle, fields)


def _told(error):
    """`error`, marked as Keras marks an error it has added its call's arguments to
    (``_keras_call_info_injected``, keras.src.utils.traceback_utils, Keras 3), so that Keras
    re-raises it as it is: hubensemble's words name the module, the argument and the fix."""
    error._keras_call_info_injected = True
    return error


def _checked_images(images):
    """`images` as a tensor; TypeError unless float (None, text, a dict: naming what was
    given), ValueError unless [B, H, W, 3]."""
    import tensorflow as tf

    from hubensemble.refused import described

    images_given = images
    if not hasattr(images, "dtype") or not hasattr(images, "shape"):
        try:
            images = tf.convert_to_tensor(images)
        except (TypeError, ValueError):  # None, a dict, ragged lists: TensorFlow's words
            images = None
        if images is None or images.dtype == tf.string:
            raise TypeError(f"HubLayer takes float images [batch, height, width, 3] in [0, "
                            f"1] (an array or tensor), got {described(images_given)}")
    dtype = keras.backend.standardize_dtype(images.dtype)
    shape = tuple(images.shape)
    if not keras.backend.is_float_dtype(dtype):
        hint = (" (uint8 pixels: images.astype('float32') / 255)" if dtype == "uint8" else "")
        raise TypeError(f"HubLayer takes float images [batch, height, width, 3] in [0, 1], "
                        f"got {dtype} images of shape {shape}: convert them to float32 in "
                        f"[0, 1] first{hint}")
    if len(shape) != 4 or shape[-1] not in (None, 3):
        if len(shape) == 3 and shape[-1] == 3:
            fix = "give a single image a batch axis: images[None]"
        elif shape and shape[-1] == 1:
            fix = "repeat a grey channel three times: np.repeat(images, 3, axis=-1)"
        elif shape and shape[-1] == 4:
            fix = "drop the alpha channel: images[..., :3]"
        else:
            fix = "give a batch of RGB images"
        raise ValueError(f"HubLayer takes images [batch, height, width, 3] (RGB), got shape "
                         f"{shape}; {fix}")
    return images


def _look_for_probabilities(runtime):
    """Says (`ModuleRuntime.warn_if_probabilities`) whether a catalogue entry's module returns
    class probabilities, from its output on `hub.outputs.probe_images` (at its input size,
    else 64 px), the first time this process builds a layer of it and nothing else looked:
    `tune` and `export` run alone on a run folder (stage commands) never embed through rank,
    where it was said, and never said it. In `fit`, rank's embeddings looked first (said
    once, not again here); a warning already said is not said twice (`hub.notices`).
    Under a strategy's scope (`tune --strategy mirrored` / `tpu`) the probe runs in a
    replica (`_in_a_replica`). Eagerly only; a probe the module refuses or fails on says
    nothing (its real call says why): a SavedModel of any size that needs more than 64 px
    (VALID convolutions) fails in TensorFlow's own error, which must not stop a trial that
    would run at its resolution."""
    import tensorflow as tf

    if not tf.executing_eagerly() or not first_look(runtime.fingerprint) or \
            runtime.said_classifier:
        return
    from hubensemble.hub.outputs import probe_images

    sizes = runtime.signature.sizes
    images = probe_images(runtime.input_size or (sizes[0] if sizes else (64, 64)))
    try:
        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
            out = _in_a_replica(runtime, images)
        else:
            out = runtime(images)
    except (ModuleLoadError, tf.errors.OpError, ValueError, TypeError) as e:
        log.debug("module %s: its output on the probe batch could not be read (%s)",
                  runtime.name or runtime.handle, e)
        return
    runtime.warn_if_probabilities(out.numpy())


def _in_a_replica(runtime, images):
    """`runtime`'s output on `images` (float32 [N, H, W, 3]) called as the strategy whose
    scope is open runs a training step (`strategy.run`, in a tf.function: eagerly, a
    MirroredStrategy warns of its overhead): the first replica's [N, D]. A SavedModel loaded
    under the scope holds functions that assert they run in a replica, so a plain call in
    the scope's cross-replica context fails ("Trying to access a placeholder that is not
    supposed to be executed", TensorFlow's saved_model/load.py `_WrapperFunction`,
    tensorflow/tensorflow#56852) and `tune --strategy mirrored` never looked."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    out = tf.function(lambda x: strategy.run(runtime, args=(x,)))(tf.constant(images))
    return strategy.experimental_local_results(out)[0]


def _clean(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0])[-60:]


def hub_layer_from_spec(spec, *, trainable=False, name=None, batchnorm="train"):
    """The HubLayer of a catalogue ModuleSpec (handle, sha256, trust, input_size, value_range,
    input_dtype, output_key, weights, layer, signature; named after the entry in errors, whose
    hints name the catalogue's fields) with the BatchNorm policy `batchnorm`
    (BATCHNORM_POLICIES). Raises as HubLayer does."""
    return HubLayer(spec.handle, trainable=trainable, input_size=spec.input_size,
                    value_range=spec.value_range, sha256=spec.sha256, trust=spec.trust,
                    output_key=spec.output_key, module_name=spec.name,
                    input_dtype=getattr(spec, "input_dtype", None),
                    weights=getattr(spec, "weights", None), layer=getattr(spec, "layer", None),
                    signature=getattr(spec, "signature", None), name=name,
                    batchnorm=batchnorm, _from_catalogue=True)
