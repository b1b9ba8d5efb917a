"""Writes a Keras 3 model as a TF Hub reusable SavedModel (a leaf of the import graph: nothing of
hubensemble but `fileio`'s temp folders and swap, the leaves that check its arguments
(`inputsize`, `refused`) and the walk of a model's layers (`hub.sublayers`), so the zoo that
writes modules and hub that reads them never import each other through it;
tests/test_hub.py's no_import_cycle)."""

import json
import os
import shutil

import keras
import tensorflow as tf

from hubensemble.errors import checks_keywords
from hubensemble.hub.sublayers import layers_within, weights_within
from hubensemble.inputsize import checked_input_size
from hubensemble.refused import described, typed

#: Where ``write_hub_module(metadata=…)`` stores its JSON, inside the module folder.
METADATA_FILE = os.path.join("assets", "hubensemble_module.json")


@checks_keywords
def write_hub_module(model, path, *, input_size=None, metadata=None) -> str:
    """Writes a Keras 3 model as a TF Hub reusable SavedModel and returns its folder (str).

    ``model`` (a Keras model or layer) maps float32 images ``[batch, height, width, 3]`` to
    features; the module's ``__call__(images, training)`` is traced for ``training`` True and
    False with the input signature ``float32 [None, h, w, 3]`` named ``images``, where
    ``(h, w)`` is ``input_size`` (default: any size). The module also has ``variables``,
    ``trainable_variables`` and ``regularization_losses`` (one argument-less function per
    regularised weight of the model, and one per loss of each HubLayer's module in it,
    `HubLayer.module_regularization_losses`, wherever it sits: in a model or in a user's own
    layer, `hub.sublayers.layers_within`) — the
    reusable SavedModel API
    (https://www.tensorflow.org/hub/reusable_saved_models). ``metadata`` (a JSON-able dict) is
    stored as ``assets/hubensemble_module.json``; its keys named like catalogue fields
    (``hub.introspect.DECLARED_FIELDS``: input_size, value_range, family, …) are what
    `catalogue add` writes for the module.

    The folder is written next to ``path`` (``.tmp-NAME.PID_START@HOST``,
    `fileio.temp_dir_for`) and renamed into place, so an interrupted write never leaves a half
    module; an existing module folder at ``path`` (empty, or holding saved_model.pb) is
    replaced (`fileio.replace_dir`: a Ctrl-C or SIGTERM while the two are swapped waits until
    the new one is in place); any other folder is refused (`not_replaceable`). On any failure
    the temporary folder is removed and an existing folder at ``path`` is left as it was.
    Raises, before anything is traced or written: TypeError for a ``model`` that is not a
    Keras model or layer, a ``path`` that is no str or os.PathLike, an ``input_size`` that is
    not None or two integers, or ``metadata`` that is not a JSON-able dict; ValueError for an
    ``input_size`` side outside [1, 2048] (`inputsize.checked_input_size`); FileExistsError when
    ``path`` is a file (only a folder is replaced) or its parent is one, or a folder that is
    no module (`not_replaceable`). Then what
    ``tf.saved_model.save`` raises for a model that cannot be traced, and OSError.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"write_hub_module() model must be a Keras model or layer, got "
                        f"{described(model)}; wrap a function in a keras.Model first")
    if metadata is not None:
        try:
            if not isinstance(metadata, dict):
                raise TypeError(f"a {type(metadata).__name__}, not a dict")
            json.dumps(metadata)
        except (TypeError, ValueError) as e:
            raise TypeError(f"write_hub_module() metadata must be a JSON-able dict (str keys; "
                            f"str, number, bool, None, list and dict values): {e}") from None
    typed("write_hub_module", "path", path, (str, os.PathLike),
          "the module folder's path (str or os.PathLike)", example="'modules/mine'")
    input_size = checked_input_size(input_size, who="write_hub_module()",
                                    none_means="any size")
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path)) or "."
    for what, folder in (("path", path), ("parent folder", parent)):
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise FileExistsError(f"write_hub_module: the {what} {folder} is a file, not a "
                                  "folder; pass a path for the module folder (an existing "
                                  "module folder there is replaced, a file never)")
    if (why := not_replaceable(path)) is not None:  # a user's folder of images was deleted
        raise FileExistsError(why)
    h, w = (input_size or (None, None))
    spec = tf.TensorSpec([None, h, w, 3], tf.float32, name="images")

    def call(images, training=False):
        return model(images, training=training)

    fn = tf.function(call)
    traced = [fn.get_concrete_function(spec, True), fn.get_concrete_function(spec, False)]
    # A tf.train.Checkpoint root with attributes: a tf.Module cannot be used, because its
    # `variables` property has no setter.
    root = tf.train.Checkpoint()
    root.__call__ = fn
    # With every variable the traced calls read that Keras does not hold (a HubLayer's module
    # saved with only a signature, wherever the layer sits): untracked, they make
    # tf.saved_model.save refuse the function. The traces' own list (public), not a walk of
    # the layers (Keras' private Layer._flatten_layers; a user's layer has no public list).
    # Keras' variables of every layer reached (`weights_within`): `model.variables` stop at a
    # tf.Module, whose Dense's kernel was then trainable in no list.
    root.variables = unique([tf_variable(v) for v in weights_within(model)]
                            + [v for f in traced for v in f.variables])
    root.trainable_variables = [tf_variable(v) for v in weights_within(model, trainable=True)]
    root.regularization_losses = regularization_fns(model)
    os.makedirs(parent, exist_ok=True)
    # Named as every temp folder (fileio.temp_dir_for: its writer's pid and start), so a
    # killed writer's is told from a live one's by the one rule, and removed here as the
    # export removes its own (it was ".tmp-NAME.PID", which nothing removed).
    from hubensemble.fileio import OLD, remove_stale_temp_dirs, replace_dir, temp_dir_for, tf_path

    remove_stale_temp_dirs(path)
    tmp = temp_dir_for(path)
    for leftover in (tmp, tmp + OLD):  # this process's own, of a write that failed before
        shutil.rmtree(leftover, ignore_errors=True)

    tf_path(path)  # a name TensorFlow cannot reach: refused by its own name, not the temp's
    try:
        tf.saved_model.save(root, tf_path(tmp), signatures={})
        if metadata is not None:
            os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
            with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as f:
                json.dump(metadata, f, indent=2)
        # fileio's swap, the export's: the folder before moved aside, the new one in, and a
        # Ctrl-C or SIGTERM between the two held until both are done (errors.held_stops).
        # This module's own two renames let a stop right after the first delete the new
        # folder below and leave the old one under a temp name: no module at `path`.
        replace_dir(tmp, path, replaceable=lambda old: not_replaceable(old) is None,
                    what="the module")  # files put into it meanwhile: it stays as it was
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def not_replaceable(folder) -> str | None:
    """Why write_hub_module may not replace the folder `folder` (words naming it and what it
    holds, with the way on), or None: absent, empty, or a SavedModel (it holds
    saved_model.pb: a module written before). Any other folder is a user's: replacing it
    deleted what it held (a new-user check: 54 PNGs gone, the call returned the path)."""
    from hubensemble.text import absolute, counted, escaped

    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None  # a file there: the caller's own refusal names it
    if not names or "saved_model.pb" in names:
        return None
    shown = ", ".join(escaped(n) for n in names[:3]) + (", …" if len(names) > 3 else "")
    return (f"write_hub_module: {escaped(absolute(folder))} is a folder that is no module: it "
            f"holds {counted(len(names), 'entry', 'entries')} ({shown}) and no saved_model.pb, "
            "and writing the module there would delete them; pass a new or empty folder, or "
            "the folder of a module written before (which is replaced)")


def tf_variable(v):
    """The tf.Variable of `v`: Keras 3 wraps each one (keras.Variable), and a SavedModel must
    hold the tf.Variable itself; any other value as it is."""
    return v.value if isinstance(v, keras.Variable) else v


def unique(variables) -> list:
    """`variables` in order, each object once (by identity: tf.Variables do not hash by
    value); what a SavedModel's `variables` lists."""
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def regularization_fns(model) -> list:
    """The regularisation losses of a Keras model or layer as argument-free tf.functions, each
    returning a float32 scalar: one per weight Keras regularises (each weight once, a shared
    one too) and one per loss of each HubLayer's module in it, wherever the layer sits
    (`hub.sublayers.layers_within`): what the model adds while it trains, as a reusable
    SavedModel's ``regularization_losses`` lists them (the writer's and the export's)."""
    # Every weight Keras regularises carries its regularizer (add_weight's `regularizer`;
    # Keras' Layer.losses reads the same attribute): not only kernel_regularizer /
    # bias_regularizer, which dropped a DepthwiseConv2D's or a BatchNormalization's.
    # Each layer's own weights, not `model.weights`: Keras' tracking stops at a tf.Module, so
    # a regularised Dense in a tf.Module a user's layer holds was lost (`weights_within`).
    fns = [_regularization_fn(v.regularizer, tf_variable(v)) for v in weights_within(model)
           if getattr(v, "regularizer", None) is not None]
    # And a HubLayer's module's own (its weights carry none): lost before, as the export
    # keeps them. HubLayer is known by its attribute: this module imports no hub.layer.
    # Wherever it sits: in a model or in a user's own layer (`layers_within`).
    for layer in layers_within(model):
        fns += [_loss_fn(fn) for fn in getattr(layer, "module_regularization_losses", ())]
    return fns


def _regularization_fn(reg, var):
    return tf.function(lambda: reg(var), input_signature=[])


def _loss_fn(fn):
    return tf.function(lambda: fn(), input_signature=[])
