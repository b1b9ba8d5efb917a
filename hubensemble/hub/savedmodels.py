"""A located SavedModel loaded as it comes, and one of its signatures as a module
(`SignatureModule`): the SavedModel half of `hub.runtime`'s loading, for modules without a
reusable ``__call__`` (``keras.Model.export``'s serve / serving_default, TF1 Hub format's
default) or whose catalogue entry names a ``signature``. Reference: TF Hub's reusable
SavedModel API (https://www.tensorflow.org/hub/reusable_saved_models) and ``hub.load``.
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf

from hubensemble.errors import ModuleLoadError, first_line
from hubensemble.hub.callsig import dict_output_problem
from hubensemble.hub.ways import OUTPUT_KEY_WAY
from hubensemble.saidwords import ON_ENTRY, SET, Meta, Say, Words
from hubensemble.fileio import tf_path
from hubensemble.hub.callsig import CallSignature, channels_first, channels_of, fixed_size
from hubensemble.hub.locate import ModuleFiles
from hubensemble.hub.notices import module_warning
from hubensemble.hub.outputs import output_op
from hubensemble.modulefiles import saved_model_files_problem
from hubensemble.savedmodel_calls import saved_model_pb_problem
from hubensemble.text import names_listed

# The module runtime's logger: its warnings are said as they were before this module split.
log = logging.getLogger("hubensemble.hub.runtime")


def load_saved_model(files: ModuleFiles):
    """``tf.saved_model.load`` of a located SavedModel (a TF1 model with several meta graphs is
    loaded with the tags of its default one: none, else "serve"), as it comes.

    Load inside ``strategy.scope()`` when its variables must be distributed. Raises
    ModuleLoadError(stage="savedmodel") for a broken SavedModel.
    """
    try:
        return tf.saved_model.load(tf_path(files.path), tags=_default_tags(files.path))
    except Exception as e:  # noqa: BLE001 - TF raises many types for a broken SavedModel
        why = (saved_model_files_problem(files.path, str(e))  # a copy cut short, or partial
               or saved_model_pb_problem(files.path))  # an empty or damaged saved_model.pb
        raise ModuleLoadError(why or f"tf.saved_model.load failed: {type(e).__name__}: "
                              f"{first_line(e)}", module=files.name, handle=files.handle,
                              stage="savedmodel") from e


def _meta_graphs(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return list(sm.meta_graphs)


def _default_tags(path):
    graphs = _meta_graphs(path)
    if len(graphs) <= 1:
        return None
    tagsets = [sorted(mg.meta_info_def.tags) for mg in graphs]
    for wanted in ([], ["serve"]):
        if wanted in tagsets:
            return wanted
    return tagsets[0]


def _tf1_trainable_names(path):
    """Names ("kernel:0") of a TF1 SavedModel's TRAINABLE_VARIABLES collection, or None for
    a TF2 SavedModel (one with an object graph)."""
    from tensorflow.core.framework import variable_pb2

    tags = _default_tags(path)
    for mg in _meta_graphs(path):
        if tags is not None and sorted(mg.meta_info_def.tags) != tags:
            continue
        if mg.object_graph_def.nodes:
            return None
        names = set()
        collection = mg.collection_def.get("trainable_variables")
        for raw in (collection.bytes_list.value if collection is not None else []):
            names.add(variable_pb2.VariableDef.FromString(raw).variable_name)
        return names
    return None


class SignatureModule:
    """A SavedModel signature as a module: ``__call__(images)`` -> the embedding [B, D].

    For SavedModels without a reusable ``__call__`` (``keras.Model.export``: serve /
    serving_default; TF1 Hub format through ``hub.load``: default), or when the catalogue
    names a ``signature``. Default signature: serving_default, else default, else the only
    one. The signature must take one image tensor; its output is the ``output_key`` entry of
    its dict (default: the only entry, else "default", TF1 Hub's feature vector).
    ``variables`` are the SavedModel's; ``trainable_variables`` those it exposes as trainable
    (a TF2 ``trainable_variables`` attribute, or a TF1 graph's TRAINABLE_VARIABLES
    collection): none means the module is used frozen (`frozen_reason`). The signature was
    traced for inference, so it has no `training` argument (BatchNorm uses its moving
    statistics also while its variables train); one whose output is a Softmax's is warned
    of (`hub.outputs.output_op`). Raises ModuleLoadError(stage="savedmodel")
    for an unknown signature or one without a single image input, stage "output" for an
    output without a matching key.
    """

    def __init__(self, loaded, files: ModuleFiles, output_key=None):
        def error(message, stage="savedmodel", way=None):
            return ModuleLoadError(message, module=files.name, handle=files.handle,
                                   stage=stage, way=way)

        signatures = dict(getattr(loaded, "signatures", None) or {})
        name = files.signature
        if name is None:
            name = next((n for n in ("serving_default", "default") if n in signatures),
                        next(iter(signatures)) if len(signatures) == 1 else None)
        if name not in signatures:
            listed = names_listed(sorted(signatures)) or "none"
            what = (f"has no signature {name!r}" if name else
                    "has no __call__ and several signatures")
            raise error(f"the SavedModel {what} (signatures: {listed})", way=(
                "; ", SET, Say("signature", Meta("NAME"), yaml="signature:"), ON_ENTRY,
                Words(" to one of them", ", one of them", ", one of them")))
        fn = signatures[name]
        _, kwargs = fn.structured_input_signature
        images = [k for k, spec in kwargs.items() if isinstance(spec, tf.TensorSpec)
                  and spec.shape.rank in (None, 4)]
        if len(kwargs) != 1 or len(images) != 1:
            raise error(f"its signature {name!r} takes {sorted(kwargs)}; hubensemble needs a "
                        "signature with one image input [batch, height, width, 3]")
        outputs = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in fn.structured_outputs.items()}
        key = output_key
        if key is None:
            key = next(iter(outputs)) if len(outputs) == 1 else (
                "default" if "default" in outputs else None)
        if key not in outputs:  # a key given that is none of them: said so, with the nearest
            problem = dict_output_problem(output_key, outputs)
            raise error(f"its signature {name!r} returns {sorted(outputs)}" if output_key is None
                        else (f"its signature {name!r}: ", *problem), "output", OUTPUT_KEY_WAY)
        self.signature_name, self.output_key = name, key
        self.output_keys = tuple(sorted(outputs))  # more than one: output_key chooses
        self._fn, self._input = fn, images[0]
        self.input_spec = kwargs[images[0]]
        self.output_spec = outputs[key]
        self.variables = list(getattr(loaded, "variables", []))
        trainable = getattr(loaded, "trainable_variables", None)
        if trainable is None:
            names = _tf1_trainable_names(files.path) or set()
            trainable = [v for v in self.variables if v.name in names]
        self.trainable_variables = list(trainable)
        self.regularization_losses = []
        # The variables the signature reads: a SavedModel written by tf.saved_model.save of a
        # tf.Module has them, but no `variables` attribute to expose them by.
        self.captured_variables = list(getattr(fn, "variables", None) or ())
        self.frozen_reason = None
        if (self.variables or self.captured_variables) and not self.trainable_variables:
            way = ("it has __call__ but no `variables` and `trainable_variables` attributes "
                   "(a tf.Module's are properties, which tf.saved_model.save does not keep); "
                   "to fine-tune it, save an object that holds them: root = tf.train."
                   "Checkpoint(module=m); root.__call__ = m.__call__; root.variables = "
                   "list(m.variables); root.trainable_variables = list(m.trainable_variables)"
                   "; tf.saved_model.save(root, DIR)") if callable(loaded) else (
                "to fine-tune it, save it with a `trainable_variables` attribute (as "
                "keras.Model.export does) or as a reusable SavedModel with __call__")
            self.frozen_reason = (
                f"its signature {name!r} exposes no trainable variables: it is used frozen "
                f"(fine-tuning trains the new head only, a linear probe on its embeddings); {way}")
        self._loaded = loaded  # keeps the variables and functions alive
        self.said_softmax = output_op(fn, key) == "Softmax"
        if self.said_softmax:
            module_warning(log, "module %s: its signature %r ends in a Softmax: it returns a "
                           "classifier's probabilities, not features, and ranks and transfers "
                           "as such; export the model cut before its head (e.g. keras.Model("
                           "model.input, model.layers[-2].output).export(DIR)), or catalogue "
                           "its .keras file, which is cut at its last Dense layer's input",
                           files.name or files.handle, name)

    def __call__(self, images):
        """images [B, H, W, 3] as the signature takes them -> its ``output_key`` output."""
        return self._fn(**{self._input: images})[self.output_key]

    def call_signature(self) -> "CallSignature":
        """The CallSignature the runtime checks calls against (no `training` argument)."""
        spec = self.input_spec
        sizes = (fixed_size(spec.shape),) if fixed_size(spec.shape) else ()
        return CallSignature(dtypes=(spec.dtype.name,), sizes=sizes, training="none",
                             training_values=(), training_keyword=False,
                             outputs=(self.output_spec,), channels=channels_of(spec.shape),
                             channels_first=channels_first(spec.shape))
