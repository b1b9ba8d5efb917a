"""The module runtime: the one way a module is located, loaded and called (rank, tune, export).

A catalogue entry says where a module is and how to feed it; `ModuleRuntime` turns that into
one call convention, so that ranking embeds exactly the pixels fine-tuning and the export see:

    images float32 [B, H, W, 3] in [0, 1]
      -> resize to the entry's input_size, when it has one (`augment.resize`: antialiased
         bilinear, clipped to [0, 1])
      -> their luminance [B, H, W, 1] (ITU-R 601), for a module that takes 1 channel
      -> the entry's value_range ([0, 1], [-1, 1], [0, 255] or ImageNet mean/std), as the
         module's input dtype (float32, or uint8 in [0, 255] rounded)
      -> module(images, training) — or module(images) for a __call__ without `training`
      -> the output_key of a dict output -> float32 [B, D]

What a module's ``__call__`` accepts (input dtype, fixed sizes, the `training` argument, the
output's structure and rank) is read from its traced concrete functions when it is loaded, so
a module that cannot be called this way fails at load — in rank — with the cause named,
never later in a fine-tuning trial. Reference: TF Hub's reusable SavedModel API
(https://www.tensorflow.org/hub/reusable_saved_models) and ``hub.KerasLayer``'s call path.

The module may be a reusable SavedModel (``__call__``), a SavedModel called through one of
its signatures (``model.export``'s serve/serving_default, a TF1 Hub module's default:
`SignatureModule`), or a Keras model hubensemble builds (`hub.sources`: a
``keras.applications`` architecture, a .keras/.h5 file, a keras-hub preset); `locate` tells
them apart and `open_module` loads each, so everything after — the call, the variables,
HubLayer, the export — is the same for all of them.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from hubensemble import augment
from hubensemble.catalogue import INPUT_DTYPES, VALUE_RANGES
from hubensemble.catalogue_fields import output_dim_problem
from hubensemble.classifierhandles import classifier_handle
from hubensemble.errors import ModuleLoadError, first_line
from hubensemble.saidwords import WRITE, Say, Words
# CallSignature: also re-exported (hubensemble.hub's callers).
from hubensemble.hub.callsig import CallSignature, dict_output_problem
from hubensemble.hub.ways import OUTPUT_KEY_WAY, TO_MATCH_WAY, pooled_way
from hubensemble.hub.locate import ModuleFiles, locate, locate_spec  # noqa: F401
# open_module, load_module (and their records and checks): hub.loadmodule, re-exported.
from hubensemble.hub.loadmodule import (LoadedModule, check_source_fields,  # noqa: F401
                                        load_module, open_module)
from hubensemble.hub.notices import first_look, module_warning
from hubensemble.hub.outputs import output_op, own_value_range, probability_rows
# load_saved_model, SignatureModule: also re-exported (hub.introspect, hub's callers).
from hubensemble.hub.savedmodels import SignatureModule, load_saved_model  # noqa: F401
from hubensemble.catalogue_sizes import size_fits, size_fix, size_refusal
from hubensemble.sizewords import missing_input_size

log = logging.getLogger(__name__)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def to_value_range(images, value_range):
    """Maps float images in [0, 1] to the value range a module expects (same shape, float32).

    "0,1": unchanged; "-1,1": 2x - 1; "0,255": 255x; "imagenet": (x - mean) / std per channel
    with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) (torchvision /
    Keras applications convention). Raises ValueError for another range.
    """
    if value_range == "0,1":
        return images
    if value_range == "-1,1":
        return images * 2.0 - 1.0
    if value_range == "0,255":
        return images * 255.0
    if value_range == "imagenet":
        return (images - tf.constant(_IMAGENET_MEAN)) / tf.constant(_IMAGENET_STD)
    raise ValueError(f"unknown value_range {value_range!r}; use one of {VALUE_RANGES}")


#: The float image dtypes a module may take besides float32: fed the float32 images in its
#: value range cast to it (a module saved in mixed precision with a float16 input).
CAST_FLOATS = ("float16", "bfloat16", "float64")


# ---------------------------------------------------------------------------------------------
# The runtime

class ModuleRuntime:
    """A located, loaded module and the one way to call it (rank, HubLayer, export).

    Build it with `ModuleRuntime.load(handle, …)` or `ModuleRuntime.from_spec(spec)` (inside
    ``strategy.scope()`` when the variables must be distributed). Calling it maps float32
    images ``[B, H, W, 3]`` in [0, 1] to float32 embeddings ``[B, D]``; see the module
    docstring for the steps. The constructor checks, from the traced signature, everything
    that can be checked before a call and raises ModuleLoadError naming the cause:

    * stage "input": the catalogue's ``input_dtype`` differs from the module's, or the module
      takes a dtype other than float32/uint8 or a CAST_FLOATS one, or a uint8 module is
      given a value_range other than [0, 1]/[0, 255] (uint8 images hold [0, 255]), or
      ``input_size`` is not a size the module was traced for, or its ``__call__`` was saved
      for ``training=True`` only;
    * stage "output": a dict output without a matching ``output_key``, or an output whose
      traced shape is neither [B, D] nor [B, 1, 1, D] (`embedding_shape`).

    Adaptations (each decided once, at load): a ``__call__`` without a `training` argument
    is called with the images alone; one traced for ``training=False`` only runs in
    inference mode also while fine-tuning (its variables still train), and one traced with
    ``training=None`` runs in its default mode for a value it lacks; a uint8 module gets
    ``round(255 * x)`` as uint8; a channels-first module ([B, C, H, W],
    `callsig.channels_first`) gets its images transposed to it, as keras.layers.Permute((3,
    1, 2)) in front of it would (said at INFO). A Keras model (`keras_model`) is called with
    ``training=`` and its variables are its own; a `SignatureModule` without trainable
    variables is used frozen (`frozen_reason` says so, and a warning once per process, as
    `hub.notices.module_warning`).

    ``call_signature`` (a CallSignature) is given by `open_module` for signatures and Keras
    models; without it the signature is read from ``obj.__call__``'s traces.
    ``value_range`` None means the module's own, read from it (a .keras/.h5 model that
    rescales its input by 1/255 or 1/127.5, or normalises it by a mean of [0, 255] pixels,
    takes "0,255", any other "0,1"; `catalogue add`
    asks so); one given as "0,1" for such a model is warned of (it sees images nearly black).
    """

    def __init__(self, files: ModuleFiles, obj, *, input_size=None, value_range="0,1",
                 input_dtype=None, output_key=None, call_signature=None):
        told = value_range is not None  # None: the module's own (no warning)
        value_range = value_range or own_value_range(files.kind, obj)
        if value_range not in VALUE_RANGES:
            raise ValueError(f"unknown value_range {value_range!r}; use one of {VALUE_RANGES}")
        if input_dtype is not None and input_dtype not in INPUT_DTYPES:
            raise ValueError(f"unknown input_dtype {input_dtype!r}; use one of {INPUT_DTYPES}")
        self.files = files
        self.obj = obj
        self.input_size = tuple(int(s) for s in input_size) if input_size else None
        self.value_range = value_range
        self.output_key = output_key
        names = {"name": self.name, "handle": self.handle}
        self.signature = call_signature or CallSignature.of(obj, **names)
        self.input_dtype = self._decide_dtype(input_dtype)
        self._check_static()
        self.output_dim = self.signature.output_dim(output_key, kind=files.kind, **names)
        self.check_width(self.output_dim)
        if self.signature.training == "python" and True not in self.signature.training_values:
            log.info("module %s was saved without a training=True trace: it runs in inference "
                     "mode also while fine-tuning", self.name or self.handle)
        self.frozen_reason = getattr(obj, "frozen_reason", None)
        if self.frozen_reason:
            # Said where the module first loads (rank, `catalogue add`), kept with its cached
            # embeddings and repeated on a hit (`hub.notices`); HubLayer's load in tune is the
            # same text, so a fit says it once.
            module_warning(log, "module %s: %s", self.name or self.handle, self.frozen_reason)
        # Said once: `warn_if_probabilities` is silent for a module told a classifier here.
        self.said_classifier = bool(self._warn_if_classifier()
                                    or getattr(obj, "said_softmax", False))
        if told and value_range == "0,1" and own_value_range(files.kind, obj) != "0,1":
            # Fed [0, 1], it sees images in [0, 1/255]: it still ranks and trains, badly.
            module_warning(log, "module %s (%s): the model rescales its input itself (a "
                           "Rescaling layer by 1/255 or 1/127.5, or a Normalization whose "
                           "mean is of [0, 255] pixels, after its input), so it takes "
                           "pixels in [0, 255], but its value_range is [0, 1]: it sees every "
                           "image nearly black; write value_range: [0, 255] on its catalogue "
                           "entry (`catalogue add` reads it from the model)",
                           self.name or self.handle, self.handle)

    def _warn_if_classifier(self):
        """Warns (once per process) of a SavedModel that is an image classifier, not a
        feature vector: its handle says so (`classifierhandles.classifier_handle`), its
        ``__call__`` ends in a Softmax, or it returns 1000 or 1001 values (ImageNet's
        classes; 1001 with TF-Slim's background class) from a MatMul/BiasAdd (a dense
        layer's logits). A Keras model is cut before its head (`hub.sources`); one whose head
        that rule does not know (a 1x1 Conv2D, then GlobalAveragePooling2D and a softmax, as
        SqueezeNet) and no `layer:` still ends in a softmax: that is warned of. Returns True
        when it warned."""
        if self.keras_model is not None:
            last = (self.keras_model.layers or [None])[-1]
            if self.files.layer is None and (type(last).__name__ == "Softmax" or getattr(
                    getattr(last, "activation", None), "__name__", None) == "softmax"):
                module_warning(
                    log, "module %s (%s): its last layer %r is a softmax: it returns class "
                    "probabilities, not features, and ranks and transfers as such; set "
                    "`layer:` on its catalogue entry to the layer whose output is its features "
                    "(the input of its classifier head; its softmax takes %r's output)",
                    self.name or self.handle, self.handle, last.name,
                    _layer_before_head(self.keras_model))
                return True
            return False
        advice = classifier_handle(self.handle)
        if isinstance(self.obj, SignatureModule):  # its Softmax is said by SignatureModule
            fn, key, ends = self.obj._fn, self.obj.output_key, ("MatMul", "BiasAdd")
        else:
            traces = list(getattr(self.obj.__call__, "concrete_functions", None) or [])
            fn, key, ends = (traces or [None])[0], self.output_key, (
                "MatMul", "BiasAdd", "Softmax")
        op = output_op(fn, key) if fn is not None else None
        what = None
        if op == "Softmax" and "Softmax" in ends:
            what = "its output is a Softmax's: class probabilities"
        elif self.output_dim in (1000, 1001) and op in ends:
            what = (f"it returns {self.output_dim} values from a dense layer ({op}): "
                    "ImageNet class logits")
        elif advice:
            what = "its handle names a classification module: class logits"
        if what is None:
            return False
        module_warning(
            log, "module %s (%s): %s, not features; it ranks and transfers as such (a new "
            "head trained on class scores). For transfer learning catalogue %s, whose output "
            "is the pooled features a new head is meant for "
            "(https://www.tensorflow.org/hub/common_saved_model_apis/images)",
            self.name or self.handle, self.handle, what,
            advice or "the model's feature-vector variant (or cut it before its head)")
        return True

    def warn_if_probabilities(self, emb) -> bool:
        """Warns (once per process, `hub.notices`) when the module's embeddings `emb` (float
        [N, D], from its first real call: rank's, or `catalogue add`'s probe batch) are
        probability vectors (`hub.outputs.probability_rows`: every row non-negative and
        summing to 1), whatever layers made them: a Keras model ending in pooling then a
        softmax, a SavedModel classifier of any class count. The text names the module, what
        was seen and the fix: a feature-vector variant, or ``layer:`` naming the layer before
        the head (a Keras model's, by name). Not said again for a module already warned of
        as a classifier at load, nor again in this process (its counts aside: `hub.notices`).
        Returns True when it warned."""
        first_look(self.fingerprint)
        seen = None if self.said_classifier else probability_rows(emb)
        if seen is None:
            return False
        model, fix = self.keras_model, "catalogue its feature-vector variant"
        if model is not None and self.files.kind == "keras-file":
            fix = (f"set `layer: {_layer_before_head(model)}` on its entry (the layer before "
                   "its softmax), or catalogue its feature-vector variant")
        elif model is None:
            fix += " (or export it cut before its head)"
        module_warning(
            log, "module %s (%s): its output is class probabilities, not features: %s. It "
            "ranks and transfers as such (a new head trained on class scores); for transfer "
            "learning %s", self.name or self.handle, self.handle, seen, fix)
        return True

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def load(cls, handle, *, name=None, sha256=None, trust=False, input_size=None,
             value_range="0,1", input_dtype=None, output_key=None, weights=None, layer=None,
             signature=None, files: ModuleFiles | None = None,
             hint_form="yaml") -> "ModuleRuntime":
        """Locates (resolve, sha256, safety scan) and loads ``handle`` (`locate` +
        `open_module`); ``files`` skips the locating when the caller has already done it
        (rank does, to key its cache). Raises ModuleLoadError (see `locate`, `open_module`
        and the class docstring; `locate`'s ``hint_form``)."""
        if files is None:
            files = locate(handle, name=name, sha256=sha256, trust=trust, weights=weights,
                           layer=layer, signature=signature, input_size=input_size,
                           hint_form=hint_form)
        obj, call_signature = open_module(files, output_key=output_key)
        if isinstance(obj, SignatureModule):
            output_key = None  # the signature's output is already selected
        return cls(files, obj, input_size=input_size, value_range=value_range,
                   input_dtype=input_dtype, output_key=output_key,
                   call_signature=call_signature)

    @classmethod
    def from_spec(cls, spec, *, files: ModuleFiles | None = None) -> "ModuleRuntime":
        """`load` with the fields of a catalogue ModuleSpec. ModuleLoadError(stage="input")
        also for a module traced at fixed sizes whose entry has no input_size, naming the
        entry's file:line and the `input_size:` to write in `catalogue validate`'s words
        (`sizewords.missing_input_size`, which says why the size is not taken from the module;
        its first embedding refused it, unless the task's resolution happened to be its size)."""
        runtime = cls.load(spec.handle, name=spec.name, sha256=spec.sha256, trust=spec.trust,
                           input_size=spec.input_size, value_range=spec.value_range,
                           input_dtype=getattr(spec, "input_dtype", None),
                           output_key=spec.output_key, weights=getattr(spec, "weights", None),
                           layer=getattr(spec, "layer", None),
                           signature=getattr(spec, "signature", None), files=files)
        sizes = runtime.signature.sizes
        if spec.input_size is None and sizes:
            # validate's words for the same rule (`sizewords`), from the loaded module.
            keras, where = runtime.keras_model is not None, runtime.sizes_where()
            source = getattr(spec, "source", "")
            raise runtime._error(
                f"field 'input_size' of its catalogue entry{' at ' + source if source else ''}"
                f": {missing_input_size(sizes, where, keras=keras)}", "input")
        return runtime

    @property
    def keras_model(self):
        """The Keras model this runtime calls (a ``keras:``, .keras/.h5 or keras-hub module),
        None for a SavedModel."""
        import keras

        return self.obj if isinstance(self.obj, keras.Model) else None

    @property
    def handle(self) -> str:
        """The handle the module was located by."""
        return self.files.handle

    @property
    def name(self) -> str | None:
        """The catalogue name used in error messages (None when not given)."""
        return self.files.name

    @property
    def path(self) -> str:
        """The local file or folder the module was loaded from (`ModuleFiles.path`)."""
        return self.files.path

    @property
    def fingerprint(self) -> str:
        """The module's content key (`module_fingerprint`)."""
        return self.files.fingerprint

    def _error(self, message, stage, way=None):
        return ModuleLoadError(message, module=self.name, handle=self.handle, stage=stage,
                               way=way)

    def _decide_dtype(self, wanted):
        traced = self.signature.dtypes
        if wanted is not None and wanted not in traced:
            raise self._error(
                ("the ", Words("catalogue entry says", "call passes", "entry says"), " ",
                 Say("input_dtype", wanted, quoted=True, yaml=f"input_dtype: {wanted}"),
                 f", but the module's __call__ takes {' or '.join(traced)} images"), "input",
                ("; ", WRITE, Say("input_dtype", traced[0], quoted=True,
                                  yaml=f"input_dtype: {traced[0]}")))
        dtype = wanted or ("float32" if "float32" in traced else traced[0])
        if dtype not in INPUT_DTYPES + CAST_FLOATS:
            raise self._error(
                f"the module takes {dtype} images; hubensemble feeds float32 (in the entry's "
                "value_range, cast to float16, bfloat16 or float64 for a module of that "
                "dtype) or uint8 (in [0, 255])", "input")
        return dtype

    def _check_static(self):
        sig = self.signature
        if sig.training == "python" and set(sig.training_values) == {True}:
            raise self._error("its __call__ was saved for training=True only; ranking and "
                              "evaluation need training=False", "input")
        if self.input_dtype == "uint8" and self.value_range not in ("0,1", "0,255"):
            raise self._error(
                f"the module takes uint8 images, which hold [0, 255]: value_range "
                f"{self.value_range} cannot be fed to it", "input",
                ("; ", WRITE, Say("value_range", (0, 255), yaml="value_range: [0, 255]")))
        if sig.channels_first:
            # A reordering of the same values (`preprocess`), as keras.layers.Permute((3, 1, 2))
            # in front of it: the embeddings are those of the module so wrapped. It was refused,
            # naming that wrapping as the fix.
            log.info("module %s takes channels-first images [batch, channels, height, width] "
                     "(PyTorch's layout, Keras' data_format=\"channels_first\"): its images "
                     "are transposed to it, as keras.layers.Permute((3, 1, 2)) would",
                     self.name or self.handle)
        if sig.channels not in (None, 1, 3):
            raise self._error(
                f"the module takes images with {sig.channels} channels ({sig.describe()}); "
                "hubensemble feeds RGB images (3 channels), or their luminance to a module "
                "that takes 1 (grey)", "input")
        if sig.channels == 1:
            # As channels-first: what it is fed is not the RGB images, said as it loads.
            log.info("module %s takes grey images [batch, height, width, 1]: it is fed their "
                     "luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B), as "
                     "tf.image.rgb_to_grayscale would", self.name or self.handle)
        if self.input_size is not None:
            self.check_input_size(self.input_size)
        spec = sig.output_spec(self.output_key, name=self.name, handle=self.handle,
                               kind=self.files.kind)
        if spec is not None and not embedding_shape(spec.shape):
            raise self._error(_rank_message(spec.shape.rank, spec.shape), "output",
                              self._rank_way())

    def check_input_size(self, hw):
        """Raises ModuleLoadError(stage="input") when the module was traced only for other
        (height, width) sizes than ``hw`` (`catalogue_sizes.size_fits`), in `catalogue
        validate`'s words (`catalogue_sizes.size_refusal`): the sizes it takes, what says
        so, ``hw``, and the way on: the input_size to write in its catalogue entry (`size_fix`)
        or a call to pass ("pass input_size=(96, 96) and every image is resized to it")."""
        sizes = self.signature.sizes
        if not size_fits(hw, sizes):
            # size_refusal's words end "; FIX": the fix is said per caller, as the way on
            problem = size_refusal(hw, sizes, "", where=self.sizes_where(),
                                   keras=self.keras_model is not None)[:-len("; ")]
            size = tuple(int(v) for v in sizes[0])
            yaml = size_fix(sizes, "its catalogue entry")
            raise self._error(problem, "input", ("; ", Words(
                yaml, f"pass input_size={size} and every image is resized to it", yaml),))

    def sizes_where(self) -> str:
        """What says which sizes the module takes, for the words of a refusal: "its Input's
        shape" (a Keras model), "its signature's input" or "its __call__'s traces"."""
        if self.keras_model is not None:
            return "its Input's shape"
        return ("its signature's input" if isinstance(self.obj, SignatureModule)
                else "its __call__'s traces")

    def check_width(self, dim):
        """Raises ModuleLoadError(stage="output") when ``dim`` (an int, the module's output
        width, from its trace or its first output; None: unknown yet) is above the catalogue's
        bound, in its words (`catalogue_fields.output_dim_problem`, the one owner of
        MAX_OUTPUT_DIM): a catalogue's output_dim that wide was refused, a module measuring it
        loaded and filled the memory at rank's first batches."""
        problem = dim is not None and output_dim_problem(int(dim))
        if problem:
            raise self._error(f"its output width: {problem}", "output", (
                "; it is no embedding: ", *self._pooled_way(), ", or leave the module out"))

    def _rank_way(self) -> tuple:
        # "output_key naming its pooled output" was offered to .keras files and one output too
        return ("; ", Words("catalogue", "load", "add"), " a feature-vector module, or ",
                *self._pooled_way())

    def _pooled_way(self) -> tuple:
        # `ways.pooled_way` of this module: a field only where its kind takes one
        return pooled_way(self.files.kind, len(getattr(self.obj, "output_keys", ())) > 1 or any(
            isinstance(o, dict) for o in self.signature.outputs))

    # -- the module's variables (HubLayer owns them) ------------------------------------------

    @property
    def variables(self):
        """The module's own tf.Variables (HubLayer wraps these very variables)."""
        return list(self.obj.variables)

    @property
    def trainable_variables(self):
        """The subset of `variables` the module marks trainable."""
        return list(getattr(self.obj, "trainable_variables", []))

    @property
    def regularization_losses(self):
        """The module's argument-less loss functions (e.g. L2 on its kernels); none for a
        Keras model, whose layers add their own losses when called."""
        if self.keras_model is not None:
            return []
        return list(getattr(self.obj, "regularization_losses", []))

    # -- calling ----------------------------------------------------------------------------

    def preprocess(self, images):
        """What the module itself receives for float32 images [B, H, W, 3] in [0, 1]: resized
        to ``input_size`` (when set and different), their luminance [B, H, W, 1] for a
        module that takes 1 channel, mapped to the value range, in the module's dtype, and
        transposed to [B, C, H, W] for a channels-first module."""
        x = tf.convert_to_tensor(images, tf.float32)
        if x.shape.rank is not None and x.shape.rank != 4:
            raise self._error(f"images must be [batch, height, width, 3], got shape {x.shape}",
                              "input")
        if self.input_size is not None and tuple(x.shape[1:3]) != self.input_size:
            x = augment.resize(x, self.input_size)
        if x.shape[1] is not None and x.shape[2] is not None:
            self.check_input_size((x.shape[1], x.shape[2]))
        if self.signature.channels == 1:
            # A grey module: the luminance (ITU-R 601, as Pillow's convert("L")), [B, H, W, 1].
            x = tf.image.rgb_to_grayscale(x)
        if self.input_dtype == "uint8":
            x = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
        else:
            x = to_value_range(x, self.value_range)  # imagenet's mean and std: the last axis
            if self.input_dtype in CAST_FLOATS:  # a float16 module: refused before 2026-12-06
                x = tf.cast(x, self.input_dtype)
        # A channels-first module: [B, C, H, W], the values reordered only.
        return tf.transpose(x, [0, 3, 1, 2]) if self.signature.channels_first else x

    def __call__(self, images, training=False):
        """float32 images [B, H, W, 3] in [0, 1] -> float32 embeddings [B, D].

        ``training`` (a Python bool) selects the module's training mode (batch statistics,
        dropout) where it has one. Works eagerly and inside tf.function / Keras graphs. An
        output [B, 1, 1, D] (a TF1-era or Keras module pooled with its axes kept) is the
        embedding [B, D], squeezed. Raises ModuleLoadError(stage="output") for a dict output
        without ``output_key`` or an output that is neither [B, D] nor [B, 1, 1, D]
        (a feature map [B, H, W, D] with H * W > 1), and stage "input" for an image size
        the module refuses.
        """
        x = self.preprocess(images)
        try:
            out = self._call(x, bool(training))
        except (TypeError, ValueError) as e:
            # TensorFlow's own message ("Could not find matching concrete function…") does not
            # say which part of the call the module refuses.
            raise self._error(
                f"the module cannot be called on {x.dtype.name} images {x.shape}: "
                f"{first_line(e)}; its __call__ was saved for {self.signature.describe()}",
                "input", TO_MATCH_WAY) from e
        if isinstance(out, dict):
            if self.output_key is None or self.output_key not in out:
                raise self._error(dict_output_problem(self.output_key, out),
                                  "output", OUTPUT_KEY_WAY)
            out = out[self.output_key]
        if not embedding_shape(out.shape):
            raise self._error(_rank_message(out.shape.rank, out.shape), "output",
                              self._rank_way())
        if out.shape.rank == 4:  # [B, 1, 1, D]: pooled with its axes kept (keepdims=True)
            out = tf.squeeze(out, axis=[1, 2])
        if out.shape.rank == 2:  # known here when the trace left it open (a flattened map)
            self.check_width(out.shape[1])
        return tf.cast(out, tf.float32)

    def _call(self, x, training):
        sig = self.signature
        if sig.training == "none":
            return self.obj(x)
        if sig.training == "tensor":
            flag = tf.constant(training)
        else:
            # A value it was not traced for: its default mode (None) when traced for it,
            # else the one value it has (False; True-only is refused at load).
            values = sig.training_values
            flag = training if training in values else (None if None in values else values[0])
        return self.obj(x, training=flag) if sig.training_keyword else self.obj(x, flag)


def embedding_shape(shape) -> bool:
    """Whether a module output of `shape` (a tf.TensorShape) is an embedding: [B, D], or
    [B, 1, 1, D] (a feature map of one position: pooled with its axes kept, as TF1-era
    modules and Keras' GlobalAveragePooling2D(keepdims=True) give it; squeezed by
    `ModuleRuntime.__call__`); an unknown rank too (told when called). A [B, H, W, D] map
    with H * W > 1 is not, nor one whose height or width its trace leaves unknown (it may be
    a map: refused at load, as before)."""
    if shape.rank is None or shape.rank == 2:
        return True
    return shape.rank == 4 and tuple(shape[1:3]) == (1, 1)


def _layer_before_head(model) -> str:
    """The name of the layer whose output a Keras model's last layer (its softmax) takes."""
    last = model.layers[-1]
    try:
        return last.input._keras_history[0].name
    except (AttributeError, IndexError, TypeError, ValueError):
        return model.layers[-2].name if len(model.layers) > 1 else last.name


def _rank_message(rank, shape):
    return (f"wrong output rank: the module returns a rank-{rank} tensor {shape}, hubensemble "
            "needs [batch, features] embeddings, or [batch, 1, 1, features] (pooled with its "
            "axes kept), not a feature map")
