"""Writing the export: the SavedModel's functions and signatures, the reload check, the swap."""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from hubensemble import _tf, augment, fileio
from hubensemble.errors import HubensembleError, RunError
# The inputs' checks and decode live in `inputs`; their names stay importable from here
# (tests and callers of the decode policy named them `saved.check_headers`, …).
from hubensemble.export.inputs import (DAMAGED, LOGGED, PIXEL_RANGE_SLACK,  # noqa: F401
                                       check_channels, check_headers, check_pixel_range,
                                       decode_each, decode_image, refusal_path,
                                       serve_bytes_metadata)
from hubensemble.export.layers import EnsembleLayer, member_model
from hubensemble.export.metadata import digest_record
from hubensemble.export.shared import (backbone_groups, check_groups, first_of, member_outputs,
                                       shared_record)
from hubensemble.export.warmup import run_warmup, warmup_requests, write_warmup
from hubensemble.fileio import atomic_write_json
from hubensemble.hub.sublayers import layers_within, weights_within
from hubensemble.hub.writer import regularization_fns, tf_variable, unique
from hubensemble.formats import (BYTES_SIGNATURE, EXPORT_FORMAT, EXPORT_FORMAT_VERSION,
                                 MEMBERS_SIGNATURE, SERVING_SIGNATURE, WARMUP_FILE,
                                 check_export_target, metadata_path, replaceable_export)
from hubensemble.text import absolute, counted

#: The reloaded SavedModel may differ from the in-memory model by at most this (probabilities).
RELOAD_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------------------------
# The export module: signatures, reusable-SavedModel API, metadata
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ExportMember:
    """A member ready to export.

    `classifier` maps float32 images [N, size, size, 3] in [0, 1] to probabilities float32
    [N, C] (tune.build_classifier with the member's weights loaded); `size` is its
    evaluation size in pixels (the export resizes every input to it, as evaluation did);
    `weight` its share of the ensemble (>= 0; normalised when the ensemble is built); `info`
    what the metadata asset lists for it (trial, module, handle, hparams, …); `share_key`
    (`export.shared.share_key`: a probe's module, call and size; None for a fine-tuned member)
    lets members of one key run their frozen backbone once per request (`backbone_groups`).
    """

    classifier: keras.Model
    size: int
    weight: float
    info: dict = dataclasses.field(default_factory=dict)  # for the metadata asset
    share_key: str | None = None


class EnsembleModule:
    """The in-memory ensemble and the functions the SavedModel is made of.

    `members` (at least one) each run behind an EvalResize to their own size inside one
    EnsembleLayer (paper 2.3: the weighted average of the members' probabilities);
    `class_names` (C of them) name the output columns. Members that share a frozen backbone
    (`groups`: the export's `export.shared.backbone_groups`, computed here when not given;
    each member alone when `share_backbones` is False) hold one copy of it, the group's first
    member's: at inference (the signatures and ``__call__(training=False)``) it runs once per
    request, and the EnsembleLayer (`probabilities`, ``training=True``) runs each member as
    that backbone and its own head (`layers.member_model`), so the SavedModel stores its
    variables once. Raises HubensembleError without members, ValueError for `groups` that do
    not hold each member once.
    """

    def __init__(self, members: Sequence[ExportMember], class_names: Sequence[str], *,
                 share_backbones: bool = True, groups=None):
        if not members:
            raise HubensembleError("an export needs at least one member")
        self.members = list(members)
        self.class_names = [str(c) for c in class_names]
        self.sizes = [int(m.size) for m in self.members]
        # The distinct member sizes, ascending: the order of every `resized` tuple.
        self.distinct_sizes = sorted(set(self.sizes))
        #: Groups of member indices that run one backbone call (`backbone_groups`).
        if not share_backbones:
            groups = [(i,) for i in range(len(self.members))]
        self.groups = check_groups(backbone_groups(self.members) if groups is None else groups,
                                   len(self.members))
        first = first_of(self.groups)
        self.layer = EnsembleLayer(
            [member_model(m.classifier, m.size, name=f"member_{i}",
                          backbone=(None if first[i] == i
                                    else self.members[first[i]].classifier.backbone))
             for i, m in enumerate(self.members)],
            weights=[m.weight for m in self.members], name="ensemble")

    def probabilities(self, images, training=False):
        """float32 images [N, H, W, 3] in [0, 1], any H and W -> probabilities float32 [N, C]
        (the in-memory model; `training` turns the members' dropout on)."""
        return self.layer(tf.convert_to_tensor(images, tf.float32), training=training)

    def resized_from_bytes(self, image_bytes) -> tuple:
        """string [N] of encoded JPEG/PNG/GIF/BMP/WebP images -> one float32 [N, s, s, 3] in
        [0, 1] per distinct member size s (sorted).

        Each image is decoded on its own by the decode policy (`decode_image`: the pixels
        training saw for the same file) and resized straight to each member's size, so images
        of different sizes share a batch and the members see what `probabilities` gives them
        for the decoded image. An element refused by its first bytes fails the call naming
        its position (`check_headers`), and so does one that fails to decode past them
        (`decode_each`).
        """
        sizes = self.distinct_sizes

        def one(data):
            image = decode_image(data)
            return tuple(augment.eval_preprocess(image, size=s) for s in sizes)

        return decode_each(check_headers(image_bytes), one,
                           [tf.TensorSpec([s, s, 3], tf.float32) for s in sizes])

    def checked(self, images) -> tf.Tensor:
        """float32 images [N, H, W, 3] unchanged; images of another shape (`check_channels`),
        or with a value that is not finite or is outside [0, 1] by more than
        PIXEL_RANGE_SLACK (`check_pixel_range`), fail the call."""
        return check_pixel_range(check_channels(tf.convert_to_tensor(images, tf.float32)))

    def resized(self, images, checked: Callable | None = None) -> tuple:
        """float32 images [N, H, W, 3] in [0, 1] -> one [N, s, s, 3] per distinct member size
        s (sorted), each the resize `EvalResize` gives that member. Images `checked` (by
        default the `checked` method; `saveable_root` gives its tf.function of it) refuses
        fail the call."""
        x = (checked or self.checked)(images)
        return tuple(augment.eval_preprocess(x, size=s) for s in self.distinct_sizes)

    def member_probabilities(self, resized) -> tf.Tensor:
        """The members on their own sizes' images (`resized`, as `resized` returns them) ->
        float32 [N, M, C], in member order; a shared backbone runs once (`groups`)."""
        by_size = dict(zip(self.distinct_sizes, resized))
        return tf.stack(member_outputs(self.members, self.groups, by_size.__getitem__), axis=1)

    def variables(self):
        """Every tf.Variable of the members, once each (the reusable SavedModel's API): their
        Keras variables and those a member's modules read that Keras does not hold
        (`HubLayer.captured_module_variables`: a tf.Module saved with only a signature), which
        the SavedModel must track or tf.saved_model.save refuses the signatures."""
        # The layers the members run (a shared backbone once), not every classifier's own.
        captured = [v for layer in self._layers()
                    for v in getattr(layer, "captured_module_variables", ())]
        # Keras' `variables` stop at a tf.Module a user's layer holds; weights_within does not.
        held = [*self.layer.variables, *weights_within(self.layer)]
        return unique([tf_variable(v) for v in held] + captured)

    def trainable_variables(self):
        """The members' trainable tf.Variables, once each (also of layers in a tf.Module a
        user's layer holds: `hub.sublayers.weights_within`)."""
        held = [*self.layer.trainable_variables, *weights_within(self.layer, trainable=True)]
        return unique([tf_variable(v) for v in held])

    def regularization_losses(self):
        """The members' regularisers as argument-free tf.functions (float32 scalars): their
        modules' own (`HubLayer.module_regularization_losses`, as HubLayer adds them while
        fine-tuning) and every weight Keras regularises, each once
        (`hub.writer.regularization_fns`: what the members add while they train)."""
        return regularization_fns(self.layer)

    def _layers(self) -> list:
        """Every layer the members run, each once (a shared backbone once, not the copies
        of the members that run it on another's), a user's own layer's too (`layers_within`)."""
        seen, out = set(), []
        for member in self.layer.members:
            for layer in layers_within(member):
                if id(layer) not in seen:
                    seen.add(id(layer))
                    out.append(layer)
        return out

    def _unless_empty(self, batch, fn):
        # An empty request gets an empty answer without running the members: some ops fail
        # on a batch of 0 (oneDNN's Conv2D returns the wrong channel count, seen on TF 2.21).
        num_classes = len(self.class_names)
        return tf.cond(tf.shape(batch)[0] > 0, fn,
                       lambda: tf.zeros([0, num_classes], tf.float32))

    def saveable_root(self):
        """(root, signatures) for tf.saved_model.save.

        `root` is a tf.train.Checkpoint with the reusable SavedModel API (`__call__(images,
        training)` traced for both values, `variables`, `trainable_variables`,
        `regularization_losses`) and the signature functions; `signatures` maps
        serving_default, serve_bytes and serve_members to tf.functions with input signatures
        (inputs and outputs as docs/export.md tabulates them).

        The members run at inference in one inner tf.function on their resized images that
        every signature and `__call__(training=False)` calls, so each member's graph is traced
        once for them all, not once per signature; so are the image inputs' resizes
        (`resized`), in one that serving_default, serve_members and
        `__call__(training=False)` call, and their checks (`checked`), in one that it and
        `__call__(training=True)` call; the signatures are traced by the save
        itself (a tf.function traced before it is traced again in the save's context), and
        `__call__`'s two traces, which the save must find made, are made in that context
        (`_in_save_context`), so the save does not trace them again.
        None is autograph converted (`autograph=False`): their code (and the decode, checks
        and members they call) branches on tensors only by explicit tf.cond, so conversion
        gave the same graph and cost ~40 % of a small export's CPU time, paid again by every
        new process (a Python `if` on a tensor now fails the trace loudly).
        """
        image_spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        bytes_spec = tf.TensorSpec([None], tf.string, name="image_bytes")
        class_names = list(self.class_names)
        n_members, num_classes = len(self.members), len(self.class_names)

        @tf.function(input_signature=[tuple(
            tf.TensorSpec([None, s, s, 3], tf.float32) for s in self.distinct_sizes)],
            autograph=False)
        def members(resized):
            # An empty request gets an empty answer without running the members: some ops
            # fail on a batch of 0 (oneDNN's Conv2D returns the wrong channel count, seen on
            # TF 2.21). One cond here, not one per signature: a cond over every member's
            # variables costs seconds to build.
            return tf.cond(tf.shape(resized[0])[0] > 0,
                           lambda: self.member_probabilities(resized),
                           lambda: tf.zeros([0, n_members, num_classes], tf.float32))

        # The image inputs' checks, one function that `resized` and `__call__(training=True)`
        # call, and their resizes, one function that `__call__` and both image signatures
        # call, as `members`: traced, saved and loaded once, where each traced its own copy
        # (the checks' refusal branches are 6 functions of the library a copy).
        checked = tf.function(self.checked, input_signature=[image_spec], autograph=False)

        @tf.function(input_signature=[image_spec], autograph=False)
        def resized(images):
            return self.resized(images, checked)

        def combined(p):
            return self.layer.combine(tf.unstack(p, num=n_members, axis=1))

        def call(images, training=False):
            if training:  # dropout on: the in-memory layer, its own trace
                # Checked as the signatures check it: fine-tuning the export as a hub module
                # on 0..255 pixels trained on garbage without a word.
                images = checked(images)
                return self._unless_empty(images, lambda: self.probabilities(images, True))
            return combined(members(resized(images)))

        call_fn = tf.function(call, autograph=False)
        # The save serialises the traces it finds, traced again under its own context (its
        # cache key holds the save's variable policy): traced here under the same context,
        # they are traced once (a trace with training=True runs every member whole).
        with _in_save_context():
            call_fn.get_concrete_function(image_spec, True)
            call_fn.get_concrete_function(image_spec, False)

        @tf.function(input_signature=[image_spec], autograph=False)
        def serving_default(images):
            p = combined(members(resized(images)))
            return {"probabilities": p, "class_ids": tf.argmax(p, axis=-1, output_type=tf.int64)}

        @tf.function(input_signature=[bytes_spec], autograph=False)
        def serve_bytes(image_bytes):
            p = combined(members(self.resized_from_bytes(image_bytes)))
            ids = tf.argmax(p, axis=-1, output_type=tf.int64)
            return {"probabilities": p, "class_ids": ids,
                    "class_names": tf.gather(tf.constant(class_names, tf.string), ids)}

        @tf.function(input_signature=[image_spec], autograph=False)
        def serve_members(images):
            # Each member's own probabilities, in metadata "members" order: what the
            # robustness evaluation compares the ensemble with. The ensemble's, combined from
            # the same member outputs as serving_default, too: one call gives the evaluation
            # both, where two ran every member twice.
            p = members(resized(images))
            return {"member_probabilities": p, "probabilities": combined(p)}

        root = tf.train.Checkpoint()
        root.__call__ = call_fn
        root.serving_default = serving_default
        root.serve_bytes = serve_bytes
        root.serve_members = serve_members
        root.variables = self.variables()
        root.trainable_variables = self.trainable_variables()
        root.regularization_losses = self.regularization_losses()
        signatures = {SERVING_SIGNATURE: serving_default, BYTES_SIGNATURE: serve_bytes,
                      MEMBERS_SIGNATURE: serve_members}
        return root, signatures


def _in_save_context():
    """The context tf.saved_model.save (with its default options, as `save_export` calls
    it) traces the functions it saves in: a tf.function traced under it is not traced
    again by the save. TensorFlow's own `save_context` (not public API); without it (a
    TensorFlow that moved it), no context: the save then traces them once more, as
    before."""
    import contextlib

    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:
        return contextlib.nullcontext()
    if save_context.in_save_context():  # a save calling this: already its context
        return contextlib.nullcontext()
    return save_context.save_context(tf.saved_model.SaveOptions())


# ---------------------------------------------------------------------------------------------
# The reload check
# ---------------------------------------------------------------------------------------------

def max_abs_difference(reference: Callable, candidate: Callable, images) -> float:
    """max |reference(images) - candidate(images)| over every probability, >= 0 (a pure
    function of the two callables' outputs).

    Both callables take the float32 batch `images` [N, H, W, 3] and return [N, C] (a tensor,
    an array, or a dict with a "probabilities" entry). Different shapes or any non-finite
    value count as infinite; an empty output as 0.
    """
    def probs(fn):
        out = fn(images)
        if isinstance(out, dict):
            out = out["probabilities"]
        return np.asarray(out, np.float64)

    a, b = probs(reference), probs(candidate)
    if a.shape != b.shape or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def check_reload(reference: Callable, candidates: dict, images, *,
                 tolerance: float = RELOAD_TOLERANCE) -> float:
    """The largest `max_abs_difference` of any of `candidates` ({name: callable}) from
    `reference` on `images`. Raises RunError above `tolerance`, naming the entry point that
    differs and by how much."""
    worst, worst_name = 0.0, None
    for name, fn in candidates.items():
        diff = max_abs_difference(reference, fn, images)
        if not diff <= worst:
            worst, worst_name = diff, name
    if not worst <= tolerance:
        raise RunError(f"the reloaded SavedModel's {worst_name} differs from the in-memory "
                       f"ensemble by max |dp| = {worst:.3g} (> {tolerance:g}); the export was "
                       "deleted. This points to a TensorFlow save/load problem: try again, "
                       "and report it with `hubensemble --version` if it persists")
    return worst


def _reload(path):
    """tf.saved_model.load of the written folder (a seam of its own, so a test can hand the
    reload check a model that differs)."""
    return tf.saved_model.load(fileio.tf_path(path))


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def save_export(members: Sequence[ExportMember], class_names: Sequence[str], out_dir, *,
                check_images, metadata: dict | None = None,
                tolerance: float = RELOAD_TOLERANCE, latency_batches=(),
                say: Callable[[str], None] | None = None,
                share_backbones: bool = True, groups=None,
                on_reload: Callable[[object], None] | None = None) -> float:
    """Writes the ensemble of `members` as a SavedModel at `out_dir` and checks it; returns
    the reload check's max |dp| (in [0, `tolerance`]).

    The SavedModel (signatures serving_default, serve_bytes, serve_members and the reusable
    `__call__`), its metadata asset (`metadata` plus format, class_names, num_classes,
    tf_serving_warmup, reload_check and digest: `metadata.digest_record`) and TF Serving's
    warmup file (`export.warmup`: one request per signature, synthetic images of the check
    images' size) are written to a temp folder beside `out_dir` (fileio.temp_dir_for),
    reloaded with tf.saved_model.load and compared with the in-memory ensemble (the
    EnsembleLayer, which runs every member whole) on `check_images` (float32 [N, H, W, 3] in
    [0, 1]) through serving_default and ``__call__(training=False)`` (both run the export's
    shared members function: a check of the shared backbone calls too); the warmup requests
    are run on it too (one that failed would stop TF Serving loading the model). `groups`
    are the members that share a frozen backbone (`shared.backbone_groups`, computed when
    not given; the export passes the ones it costed), stored and run once; `share_backbones`
    False runs and stores every member's own (`EnsembleModule`); the metadata's
    "shared_backbones" lists the members that share one (`shared.shared_record`).
    With `latency_batches` (e.g. (1, 64)) the reloaded serving_default is also timed on the
    check images at those batch sizes (`cost.graph.time_batches`) into the metadata's
    latency_ms. Only an export within `tolerance` is put in place (fileio.replace_dir: an
    earlier export there is replaced, never left half-written). `say` (text -> None), when
    given, is told of each long step before it starts: the save, the reload check, the timing
    (seconds to minutes each with real modules). `on_reload`, when given, is handed the
    reloaded SavedModel (the tf.saved_model.load result the checks ran, every signature
    already called once) after the export is in place: a caller that checks something
    against the export (the TFLite export) uses it instead of loading the folder again,
    which cost a load and a first call's graph optimisation per signature (~3 s CPU of 8
    small members, more with more members). Raises RunError when the reloaded model
    differs by more or fails a warmup request (the temp folder is deleted) or when `out_dir`
    is a file or a non-empty folder that is not a hubensemble export; HubensembleError when
    the members' output width is not len(class_names).
    """
    from hubensemble.lockwords import option_word

    out_dir = absolute(os.fspath(out_dir))
    # In the caller's words: a Python caller of export_ensemble or save_export was told "--out".
    out_flag = option_word("--out", "out_dir")
    check_export_target(out_dir, out_flag)
    say = say or (lambda text: None)
    say(f"export: writing the SavedModel of {counted(len(members), 'member')} (tracing its "
        "signatures)")
    module = EnsembleModule(members, class_names, share_backbones=share_backbones,
                            groups=groups)
    check_images = tf.convert_to_tensor(np.asarray(check_images, np.float32))
    expected = module.probabilities(check_images).numpy()
    if expected.ndim != 2 or expected.shape[1] != len(module.class_names):
        raise HubensembleError(f"the members output {expected.shape[1:]} values per image but "
                               f"there are {len(module.class_names)} class names")
    root, signatures = module.saveable_root()
    fileio.tf_path(out_dir)  # a name TensorFlow cannot reach: refused by its own name
    fileio.make_dirs(os.path.dirname(out_dir), f"choose another {out_flag} folder")
    # Temp folders of exports whose process died (killed mid-save) go first.
    fileio.remove_stale_temp_dirs(out_dir)
    tmp = fileio.temp_dir_for(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(root, fileio.tf_path(tmp), signatures=signatures)
        # TF Serving's warmup file, of images of the check images' size (export.warmup).
        warmup = warmup_requests(*check_images.shape[1:3])
        write_warmup(tmp, warmup)
        meta = dict(metadata or {})
        meta.update(format=EXPORT_FORMAT, format_version=EXPORT_FORMAT_VERSION,
                    class_names=module.class_names, num_classes=len(module.class_names),
                    serve_bytes=serve_bytes_metadata(),
                    shared_backbones=shared_record(module.members, module.groups),
                    tf_serving_warmup={
                        "file": WARMUP_FILE, "requests": [name for name, _ in warmup],
                        "image_size": [int(v) for v in check_images.shape[1:3]]},
                    # The same for every export of one run, where the folder's bytes are not
                    # all (fingerprint.pb's uuid, this file's times): docs/export.md.
                    digest=digest_record(tmp))
        atomic_write_json(metadata_path(tmp), meta)
        say(f"export: reload check: loading the SavedModel back and comparing it with the "
            f"in-memory ensemble on {counted(int(check_images.shape[0]), 'image')}")
        loaded = _reload(tmp)
        serve = loaded.signatures[SERVING_SIGNATURE]
        # The first calls of the reloaded functions: what TensorFlow's optimizer writes then
        # (loop_optimizer.cc's "Skipping loop optimization …", on stderr when the caller
        # imported TensorFlow before hubensemble) goes to the log (`_tf.native_notices`).
        with _tf.native_notices("export: reload check"):
            diff = check_reload(
                lambda x: expected,
                {SERVING_SIGNATURE: lambda x: serve(images=x)["probabilities"],
                 "__call__": lambda x: loaded(x, training=False)},
                check_images, tolerance=tolerance)
        with _tf.native_notices("export: warmup"):
            run_warmup(loaded, warmup)  # as TF Serving runs it when it loads the model
        meta["reload_check"] = {"max_abs_diff": diff, "tolerance": tolerance,
                                "images": int(check_images.shape[0])}
        if latency_batches:
            from hubensemble.cost.graph import time_batches

            say("export: timing serving_default at batch "
                + ("size " if len(latency_batches) == 1 else "sizes ")
                + ", ".join(str(b) for b in latency_batches))
            # The whole served model, timed as `hubensemble cost` times a member: on a
            # tensor made once per batch size (a NumPy batch was copied into a new tensor on
            # every call: 64 phone photos, 1.07 GB, took 5 GB resident; time_batches).
            meta["latency_ms"] = time_batches(
                lambda x: serve(images=x)["probabilities"].numpy(), check_images,
                latency_batches)
            meta["latency_note"] = ("median ms per serving_default call at each batch size "
                                    "on the check images, on the machine that exported it")
        atomic_write_json(metadata_path(tmp), meta)
        # Files put into the folder while this export was written are not deleted with it.
        fileio.replace_dir(tmp, out_dir, replaceable=replaceable_export, what="the export")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if on_reload is not None:
        # Loaded from the temp folder, now `out_dir`: its functions and variables are in
        # memory (a loaded SavedModel reads no file after the load), so it is the export's.
        on_reload(loaded)
    return diff
