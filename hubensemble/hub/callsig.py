"""What a loaded module's ``__call__`` accepts and returns, read from its traced functions.

`CallSignature` is read once when `hub.runtime` loads a module, so a module that cannot be
called as hubensemble calls it fails at load with the cause named. Reference: TF Hub's
reusable SavedModel API (https://www.tensorflow.org/hub/reusable_saved_models).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from hubensemble.errors import ModuleLoadError
from hubensemble.hub.ways import LAYER_KINDS, OUTPUT_KEY_WAY
from hubensemble.saidwords import ON_ENTRY, SET, Meta, Say, Words, field_words
from hubensemble.savedmodel_calls import image_size, reads_channels_first


def channels_of(shape):
    """The channel count a traced image shape fixes ([B, H, W, C], or [B, C, H, W] when it
    reads as `channels_first`), else None."""
    if shape.rank == 4:
        c = shape[1] if channels_first(shape) else shape[-1]
        return None if c is None else int(c)
    return None


def channels_first(shape) -> bool:
    """Whether a traced image shape reads as channels-first, [B, C, H, W] (C 1 or 3, its
    last side not): PyTorch's layout, Keras' data_format="channels_first". The rule is
    `savedmodel_calls.reads_channels_first`'s (the one copy, which `catalogue validate`
    reads saved_model.pb by), on the TensorShape's dims."""
    return shape.rank is not None and reads_channels_first(tuple(shape.as_list()))


def fixed_size(shape):
    """(height, width) a traced image shape fixes, in either layout (`channels_first`), else
    None (any size, or not rank 4): `savedmodel_calls.image_size` (the one copy of the rule,
    which `catalogue_sizes` checks an entry's input_size by) of the TensorShape's dims."""
    return None if shape.rank is None else image_size(tuple(shape.as_list()))


_NONE = object()  # "no training argument" (None itself could be a traced value)


@dataclasses.dataclass(frozen=True)
class CallSignature:
    """The call convention of a loaded module, read from its traced ``__call__`` functions.

    ``dtypes``: dtype names of the images argument over the traces (e.g. ("float32",));
    ``sizes``: the fixed (height, width) sizes it was traced for, () when any size goes;
    ``training``: "python" (a bool, or None for the module's default mode, traced per value:
    ``training_values``), "tensor" (a bool
    tensor argument) or "none" (no `training` argument); ``training_keyword``: whether it
    was traced with ``training=`` as a keyword; ``outputs``: per trace, the output structure
    (a TensorSpec, or a dict of them); ``channels``: the images' channel count when every
    trace fixes the same one (3 for RGB, 1 for a grey module), else None;
    ``channels_first``: a trace takes [B, C, H, W] images (`channels_first`).
    """

    dtypes: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    training: str
    training_values: tuple[bool | None, ...]
    training_keyword: bool
    outputs: tuple
    channels: int | None = None
    channels_first: bool = False

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
        channels, first = set(), False
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
            channels.add(channels_of(shape))
            first = first or channels_first(shape)
            if fixed_size(shape) is None:
                any_size = True
            else:
                sizes.add(fixed_size(shape))
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
                   training_keyword=keyword, outputs=tuple(outputs),
                   channels=channels.pop() if len(channels) == 1 else None,
                   channels_first=first)

    @classmethod
    def of_keras(cls, model, *, name=None, handle=None) -> "CallSignature":
        """The signature of a Keras model called as ``model(images, training=flag)``: its
        input dtype and fixed size (if any), both `training` values, its output's spec (none
        for a subclassed model, whose output is learnt at the first call).
        ModuleLoadError(stage="input") for a model with several inputs, stage "output" for
        one with several (list) outputs; a dict output is kept as one, for ``output_key``."""
        inputs = list(getattr(model, "inputs", None) or [])
        if len(inputs) > 1:
            raise ModuleLoadError(f"the Keras model takes {len(inputs)} inputs; hubensemble "
                                  "needs one image input", module=name, handle=handle,
                                  stage="input")
        dtype, sizes, outputs, channels, first = "float32", (), (), None, False
        if inputs:
            shape, dtype = tuple(inputs[0].shape), str(inputs[0].dtype)
            channels = channels_of(tf.TensorShape(shape))
            first = channels_first(tf.TensorShape(shape))
            if fixed_size(tf.TensorShape(shape)) is not None:
                sizes = (fixed_size(tf.TensorShape(shape)),)
            out = list(model.outputs)
            try:
                out = model.output  # the structure: a dict when the model returns one
            except AttributeError:  # a Sequential's own output is its inner model's
                pass
            if isinstance(out, (list, tuple)) and len(out) > 1:
                # Keras returns a list: the runtime would fail on its first call, on
                # "'list' object has no attribute 'shape'", naming neither module nor fix.
                names = ", ".join(repr(n) for n in getattr(model, "output_names", None)
                                  or ()) or "unnamed"
                raise ModuleLoadError(
                    f"the Keras model has {len(out)} outputs (of the layers {names})", way=(
                        "; hubensemble needs one embedding: ", SET,
                        Say("layer", Meta("NAME"), yaml="`layer:`"), ON_ENTRY,
                        Words(" to the layer", ", the layer", ", the layer"),
                        " whose output is the embedding (a dict output is chosen by ",
                        field_words("output_key"), " instead)"),
                    module=name, handle=handle, stage="output")
            if isinstance(out, (list, tuple)):
                (out,) = out

            def spec(t):
                return tf.TensorSpec(tuple(t.shape), str(t.dtype))

            outputs = ({k: spec(v) for k, v in out.items()} if isinstance(out, dict)
                       else spec(out),)
        return cls(dtypes=(dtype,), sizes=sizes, training="python",
                   training_values=(False, True), training_keyword=True, outputs=outputs,
                   channels=channels, channels_first=first)

    def describe(self) -> str:
        """What the traced __call__ accepts, for messages: e.g.
        "float32 images [None, 20, 20, 3], training=False/True"."""
        c = self.channels or "C"
        shapes = (", ".join(f"[None, {h}, {w}, {c}]" for h, w in self.sizes)
                  or f"[None, None, None, {c}]")
        training = {"none": "no training argument", "tensor": "training as a bool tensor"}.get(
            self.training, "training=" + "/".join(str(v) for v in self.training_values))
        return f"{' or '.join(self.dtypes)} images {shapes}, {training}"

    def output_spec(self, output_key, *, name=None, handle=None, kind=None):
        """The TensorSpec of the embedding (the ``output_key`` entry of a dict output), or
        None when no trace says; ModuleLoadError(stage="output"), naming ``name`` and
        ``handle``, for a dict output without a matching key, and for an ``output_key`` given
        to a module that returns one tensor (tensorflow_hub's KerasLayer forbids it too): a
        Keras file's dict output cut at its last Dense layer's input ignored it. ``kind`` is
        the module's (`locate.ModuleFiles.kind`; None: not known): only a kind in
        `ways.LAYER_KINDS` (a .keras/.h5 file) is offered ``layer`` and told how such a file
        is cut — a SavedModel of one output was told to name a layer it refuses."""
        for out in self.outputs:
            if output_key is not None and isinstance(out, tf.TensorSpec):
                keras_file = kind in LAYER_KINDS
                raise ModuleLoadError(
                    (Say("output_key", output_key, quoted=True, yaml=f"output_key {output_key!r}"),
                     " is set, but the module returns one tensor ", f"{out.shape.as_list()}",
                     ", not a dict", *((" (a Keras model file is cut at its last Dense layer's "
                                        "input, or at its ", field_words("layer"), ")")
                                       if keras_file else ())),
                    way=("; ", Words("", "pass ", ""),
                         Say("output_key", None, yaml="remove output_key"),
                         *((", or name the layer whose output you want in ",
                            field_words("layer")) if keras_file else ())),
                    module=name, handle=handle, stage="output")
            if isinstance(out, dict):
                if output_key is None or output_key not in out:
                    raise ModuleLoadError(
                        dict_output_problem(output_key, out),
                        way=OUTPUT_KEY_WAY, module=name, handle=handle, stage="output")
                out = out[output_key]
            if isinstance(out, tf.TensorSpec):
                return out
        return None

    def output_dim(self, output_key, **names):
        """The embedding size D of a traced [batch, D] output, or [batch, 1, 1, D] (pooled
        with its axes kept: `runtime.ModuleRuntime` squeezes it), None when not known;
        `names` (name, handle, kind) and errors as `output_spec`'s."""
        spec = self.output_spec(output_key, **names)
        shape = spec.shape if spec is not None else tf.TensorShape(None)
        one_by_one = shape.rank == 4 and tuple(shape[1:3]) == (1, 1)
        if (shape.rank == 2 or one_by_one) and shape[-1] is not None:
            return int(shape[-1])
        return None


def dict_output_problem(output_key, keys):
    """ModuleLoadError's problem (str, or said-parts) for a module whose output is a dict
    of `keys` (str) and `output_key` names none of them: "the module returns a dict with
    keys [...]" when none was given (None), else the key given, that it is not one of them,
    and the closest (`text.closest_name`): a new user's mistyped output_key='poold' was told
    the words of no key at all (stop 70)."""
    from hubensemble.text import closest_name

    keys = sorted(keys)
    if output_key is None:
        return f"the module returns a dict with keys {keys}"
    near = closest_name(str(output_key), keys)
    return (Say("output_key", output_key, quoted=True, yaml=f"output_key {output_key!r}"),
            f" is not one of the keys the module returns, {keys}"
            + (f" (did you mean {near!r}?)" if near else ""))
