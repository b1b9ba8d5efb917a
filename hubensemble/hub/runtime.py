"""The module runtime: the one way a module is located, loaded and called (rank, tune, export).

A catalogue entry says where a module is and how to feed it; `ModuleRuntime` turns that into
one call convention, so that ranking embeds exactly the pixels fine-tuning and the export see:

    images float32 [B, H, W, 3] in [0, 1]
      -> resize to the entry's input_size, when it has one (`augment.resize`: antialiased
         bilinear, clipped to [0, 1])
      -> the entry's value_range ([0, 1], [-1, 1], [0, 255] or ImageNet mean/std), as the
         module's input dtype (float32, or uint8 in [0, 255] rounded)
      -> module(images, training) — or module(images) for a __call__ without `training`
      -> the output_key of a dict output -> float32 [B, D]

What a module's ``__call__`` accepts (input dtype, fixed sizes, the `training` argument, the
output's structure and rank) is read from its traced concrete functions when it is loaded, so
a module that cannot be called this way fails at load — in rank — with the cause named,
never later in a fine-tuning trial. Reference: TF Hub's reusable SavedModel API
(https://www.tensorflow.org/hub/reusable_saved_models) and ``hub.KerasLayer``'s call path.
"""

from __future__ import annotations

import dataclasses
import logging

import tensorflow as tf

from hubensemble import augment
from hubensemble.catalogue import INPUT_DTYPES, VALUE_RANGES
from hubensemble.errors import ModuleLoadError, first_line
from hubensemble.hub.resolvers import module_fingerprint, resolve
from hubensemble.hub.safety import check_safe

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


# ---------------------------------------------------------------------------------------------
# Locating and loading

@dataclasses.dataclass(frozen=True)
class ModuleFiles:
    """A module resolved, verified (sha256) and scanned (safety), not yet loaded.

    ``path`` is the local SavedModel folder; ``fingerprint`` its content key
    (`module_fingerprint`). Rank keys its embedding cache on it without loading the module.
    """

    handle: str
    path: str
    fingerprint: str
    name: str | None = None


def locate(handle, *, name=None, sha256=None, trust=False) -> ModuleFiles:
    """Resolves ``handle``, verifies ``sha256`` and runs the safety scan (unless ``trust``).

    Reads files only: nothing of the module runs. Raises ModuleLoadError with the stage of
    `resolve` ("handle", "network", "archive", "checksum", "savedmodel") or "unsafe".
    """
    path = resolve(handle, name=name, sha256=sha256)
    check_safe(path, trust=trust, name=name, handle=handle)
    return ModuleFiles(handle=handle, path=path, fingerprint=module_fingerprint(path), name=name)


def load_saved_model(files: ModuleFiles):
    """``tf.saved_model.load`` of a located module, checked to be a reusable SavedModel.

    Load inside ``strategy.scope()`` when its variables must be distributed. Raises
    ModuleLoadError(stage="savedmodel") for a broken SavedModel or one without ``__call__``
    and ``variables``.
    """
    try:
        obj = tf.saved_model.load(files.path)
    except Exception as e:  # noqa: BLE001 - TF raises many types for a broken SavedModel
        raise ModuleLoadError(f"tf.saved_model.load failed: {type(e).__name__}: "
                              f"{first_line(e)}", module=files.name, handle=files.handle,
                              stage="savedmodel") from e
    if not callable(obj) or not hasattr(obj, "variables"):
        raise ModuleLoadError("not a reusable SavedModel: it needs __call__ and variables "
                              "(https://www.tensorflow.org/hub/reusable_saved_models)",
                              module=files.name, handle=files.handle, stage="savedmodel")
    return obj


@dataclasses.dataclass
class LoadedModule:
    """What `load_module` returns: the loaded object and where it came from."""

    obj: object          # what tf.saved_model.load returned
    path: str
    handle: str
    fingerprint: str
    output_dim: int | None


def load_module(handle, *, name=None, sha256=None, trust=False) -> LoadedModule:
    """Resolves, verifies, scans and loads a reusable SavedModel (`locate` + load).

    ``output_dim`` is the last dimension of its traced rank-2 output, None when unknown. Load
    inside ``strategy.scope()`` when the variables must be distributed. Raises ModuleLoadError
    (see `locate` and `load_saved_model`).
    """
    files = locate(handle, name=name, sha256=sha256, trust=trust)
    obj = load_saved_model(files)
    try:
        dim = CallSignature.of(obj).output_dim(None)
    except ModuleLoadError:
        dim = None
    return LoadedModule(obj, files.path, handle, files.fingerprint, dim)


# ---------------------------------------------------------------------------------------------
# What a loaded module's __call__ accepts and returns

@dataclasses.dataclass(frozen=True)
class CallSignature:
    """The call convention of a loaded module, read from its traced ``__call__`` functions.

    ``dtypes``: dtype names of the images argument over the traces (e.g. ("float32",));
    ``sizes``: the fixed (height, width) sizes it was traced for, () when any size goes;
    ``training``: "python" (a bool, or None for the module's default mode, traced per value:
    ``training_values``), "tensor" (a bool
    tensor argument) or "none" (no `training` argument); ``training_keyword``: whether it
    was traced with ``training=`` as a keyword; ``outputs``: per trace, the output structure
    (a TensorSpec, or a dict of them).
    """

    dtypes: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    training: str
    training_values: tuple[bool | None, ...]
    training_keyword: bool
    outputs: tuple

    @classmethod
    def of(cls, obj, *, name=None, handle=None) -> "CallSignature":
        """The signature of ``obj.__call__``; ModuleLoadError(stage="savedmodel"), naming
        ``name`` and ``handle``, when it has no traced function or its first argument is not
        an image tensor."""
        fn = getattr(obj, "__call__", None)
        if hasattr(fn, "structured_input_signature"):  # a bare concrete function
            traces = [fn]
        else:
            traces = list(getattr(fn, "concrete_functions", None) or [])
        if not traces:
            raise ModuleLoadError("its __call__ has no traced function to run (save it after "
                                  "calling it, or with an input_signature)",
                                  module=name, handle=handle, stage="savedmodel")
        dtypes, sizes, any_size, modes, values, keyword, outputs = [], set(), False, set(), \
            set(), False, []
        for trace in traces:
            args, kwargs = trace.structured_input_signature
            images = args[0] if args else None
            if not isinstance(images, tf.TensorSpec):
                raise ModuleLoadError(f"its __call__ takes {args!r} {kwargs!r}, not an image "
                                      "tensor first", module=name, handle=handle,
                                      stage="savedmodel")
            if images.dtype.name not in dtypes:
                dtypes.append(images.dtype.name)
            shape = images.shape
            if shape.rank != 4 or shape[1] is None or shape[2] is None:
                any_size = True
            else:
                sizes.add((int(shape[1]), int(shape[2])))
            if len(args) >= 2:
                training = args[1]
            elif "training" in kwargs:
                training, keyword = kwargs["training"], True
            else:
                training = _NONE
            if training is _NONE:
                modes.add("none")
            elif training is None or isinstance(training, bool):
                modes.add("python")
                values.add(training)
            elif isinstance(training, tf.TensorSpec) and training.dtype == tf.bool:
                modes.add("tensor")
            else:
                raise ModuleLoadError(f"its __call__'s second argument is {training!r}, not "
                                      "the `training` flag of a reusable SavedModel",
                                      module=name, handle=handle, stage="savedmodel")
            outputs.append(trace.structured_outputs)
        mode = next(m for m in ("python", "tensor", "none") if m in modes)
        return cls(dtypes=tuple(dtypes), sizes=() if any_size else tuple(sorted(sizes)),
                   training=mode, training_values=tuple(sorted(values, key=repr)),
                   training_keyword=keyword, outputs=tuple(outputs))

    def describe(self) -> str:
        """What the traced __call__ accepts, for messages: e.g.
        "float32 images [None, 20, 20, 3], training=False/True"."""
        shapes = (", ".join(f"[None, {h}, {w}, 3]" for h, w in self.sizes)
                  or "[None, None, None, 3]")
        training = {"none": "no training argument", "tensor": "training as a bool tensor"}.get(
            self.training, "training=" + "/".join(str(v) for v in self.training_values))
        return f"{' or '.join(self.dtypes)} images {shapes}, {training}"

    def output_spec(self, output_key, *, name=None, handle=None):
        """The TensorSpec of the embedding (the ``output_key`` entry of a dict output), or
        None when no trace says; ModuleLoadError(stage="output"), naming ``name`` and
        ``handle``, for a dict output without a matching key."""
        for out in self.outputs:
            if isinstance(out, dict):
                if output_key is None or output_key not in out:
                    raise ModuleLoadError(
                        f"the module returns a dict with keys {sorted(out)}; set output_key on "
                        "its catalogue entry to the embedding's key", module=name,
                        handle=handle, stage="output")
                out = out[output_key]
            if isinstance(out, tf.TensorSpec):
                return out
        return None

    def output_dim(self, output_key, **names):
        """The embedding size D of a traced [batch, D] output, None when not known."""
        spec = self.output_spec(output_key, **names)
        if spec is not None and spec.shape.rank == 2 and spec.shape[-1] is not None:
            return int(spec.shape[-1])
        return None


_NONE = object()  # "no training argument" (None itself could be a traced value)


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
      takes a dtype other than float32/uint8, or a uint8 module is given a value_range other
      than [0, 1]/[0, 255] (uint8 images hold [0, 255]), or ``input_size`` is not a size the
      module was traced for, or its ``__call__`` was saved for ``training=True`` only;
    * stage "output": a dict output without a matching ``output_key``, or an output whose
      traced rank is not 2.

    Adaptations (each decided once, at load): a ``__call__`` without a `training` argument
    is called with the images alone; one traced for ``training=False`` only runs in
    inference mode also while fine-tuning (its variables still train), and one traced with
    ``training=None`` runs in its default mode for a value it lacks; a uint8 module gets
    ``round(255 * x)`` as uint8.
    """

    def __init__(self, files: ModuleFiles, obj, *, input_size=None, value_range="0,1",
                 input_dtype=None, output_key=None):
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
        self.signature = CallSignature.of(obj, **names)
        self.input_dtype = self._decide_dtype(input_dtype)
        self._check_static()
        self.output_dim = self.signature.output_dim(output_key, **names)
        if self.signature.training == "python" and True not in self.signature.training_values:
            log.info("module %s was saved without a training=True trace: it runs in inference "
                     "mode also while fine-tuning", self.name or self.handle)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def load(cls, handle, *, name=None, sha256=None, trust=False, input_size=None,
             value_range="0,1", input_dtype=None, output_key=None,
             files: ModuleFiles | None = None) -> "ModuleRuntime":
        """Locates (resolve, sha256, safety scan) and loads ``handle``; ``files`` skips the
        locating when the caller has already done it (rank does, to key its cache).
        Raises ModuleLoadError (see `locate`, `load_saved_model` and the class docstring)."""
        if files is None:
            files = locate(handle, name=name, sha256=sha256, trust=trust)
        return cls(files, load_saved_model(files), input_size=input_size,
                   value_range=value_range, input_dtype=input_dtype, output_key=output_key)

    @classmethod
    def from_spec(cls, spec, *, files: ModuleFiles | None = None) -> "ModuleRuntime":
        """`load` with the fields of a catalogue ModuleSpec."""
        return cls.load(spec.handle, name=spec.name, sha256=spec.sha256, trust=spec.trust,
                        input_size=spec.input_size, value_range=spec.value_range,
                        input_dtype=getattr(spec, "input_dtype", None),
                        output_key=spec.output_key, files=files)

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
        """The local SavedModel folder."""
        return self.files.path

    @property
    def fingerprint(self) -> str:
        """The module's content key (`module_fingerprint`)."""
        return self.files.fingerprint

    def _error(self, message, stage):
        return ModuleLoadError(message, module=self.name, handle=self.handle, stage=stage)

    def _decide_dtype(self, wanted):
        traced = self.signature.dtypes
        if wanted is not None and wanted not in traced:
            raise self._error(
                f"the catalogue entry says input_dtype: {wanted}, but the module's __call__ "
                f"takes {' or '.join(traced)} images; write input_dtype: {traced[0]}", "input")
        dtype = wanted or ("float32" if "float32" in traced else traced[0])
        if dtype not in INPUT_DTYPES:
            raise self._error(
                f"the module's __call__ takes {dtype} images; hubensemble feeds float32 "
                "(in the entry's value_range) or uint8 (in [0, 255])", "input")
        return dtype

    def _check_static(self):
        sig = self.signature
        if sig.training == "python" and set(sig.training_values) == {True}:
            raise self._error("its __call__ was saved for training=True only; ranking and "
                              "evaluation need training=False", "input")
        if self.input_dtype == "uint8" and self.value_range not in ("0,1", "0,255"):
            raise self._error(
                f"the module takes uint8 images, which hold [0, 255]: value_range "
                f"{self.value_range} cannot be fed to it; write value_range: [0, 255]", "input")
        if self.input_size is not None:
            self.check_input_size(self.input_size)
        spec = sig.output_spec(self.output_key, name=self.name, handle=self.handle)
        rank = spec.shape.rank if spec is not None else None
        if rank is not None and rank != 2:
            raise self._error(_rank_message(rank, spec.shape), "output")

    def check_input_size(self, hw):
        """Raises ModuleLoadError(stage="input") when the module was traced only for other
        (height, width) sizes than ``hw``, naming them and the catalogue fix."""
        sizes = self.signature.sizes
        if sizes and tuple(int(v) for v in hw) not in sizes:
            listed = " or ".join(f"[{h}, {w}]" for h, w in sizes)
            raise self._error(
                f"the module only takes images of size {listed}, not {list(hw)}; set "
                f"input_size: {listed.split(' or ')[0]} on its catalogue entry", "input")

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
        """The module's argument-less loss functions (e.g. L2 on its kernels)."""
        return list(getattr(self.obj, "regularization_losses", []))

    # -- calling ----------------------------------------------------------------------------

    def preprocess(self, images):
        """What the module itself receives for float32 images [B, H, W, 3] in [0, 1]: resized
        to ``input_size`` (when set and different), mapped to the value range, in the
        module's dtype."""
        x = tf.convert_to_tensor(images, tf.float32)
        if x.shape.rank is not None and x.shape.rank != 4:
            raise self._error(f"images must be [batch, height, width, 3], got shape {x.shape}",
                              "input")
        if self.input_size is not None and tuple(x.shape[1:3]) != self.input_size:
            x = augment.resize(x, self.input_size)
        if x.shape[1] is not None and x.shape[2] is not None:
            self.check_input_size((x.shape[1], x.shape[2]))
        if self.input_dtype == "uint8":
            return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
        return to_value_range(x, self.value_range)

    def __call__(self, images, training=False):
        """float32 images [B, H, W, 3] in [0, 1] -> float32 embeddings [B, D].

        ``training`` (a Python bool) selects the module's training mode (batch statistics,
        dropout) where it has one. Works eagerly and inside tf.function / Keras graphs.
        Raises ModuleLoadError(stage="output") for a dict output without ``output_key`` or an
        output that is not rank 2, and stage "input" for an image size the module refuses.
        """
        x = self.preprocess(images)
        try:
            out = self._call(x, bool(training))
        except (TypeError, ValueError) as e:
            # TensorFlow's own message ("Could not find matching concrete function…") does not
            # say which part of the call the module refuses.
            raise self._error(
                f"the module cannot be called on {x.dtype.name} images {x.shape}: "
                f"{first_line(e)}; its __call__ was saved for {self.signature.describe()} "
                "(set input_size / input_dtype on its catalogue entry to match)", "input") from e
        if isinstance(out, dict):
            if self.output_key is None or self.output_key not in out:
                raise self._error(f"the module returns a dict with keys {sorted(out)}; set "
                                  "output_key on its catalogue entry to the embedding's key",
                                  "output")
            out = out[self.output_key]
        rank = out.shape.rank
        if rank is not None and rank != 2:
            raise self._error(_rank_message(rank, out.shape), "output")
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


def _rank_message(rank, shape):
    return (f"wrong output rank: the module returns a rank-{rank} tensor {shape}, hubensemble "
            "needs [batch, features] embeddings (a feature-vector module, or output_key "
            "naming its pooled output)")
