"""Export: the chosen members as one SavedModel with serving signatures, metadata, reload check."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from hubensemble import augment
from hubensemble.errors import HubensembleError, ModuleLoadError, RunError
from hubensemble.fileio import TEMP_MARKER, atomic_write_json, pid_alive, read_json

log = logging.getLogger(__name__)

EXPORT_FORMAT = "hubensemble-export"
EXPORT_FORMAT_VERSION = 1
#: assets/<this>: class names, members, metrics and versions, readable without hubensemble.
METADATA_ASSET = "hubensemble.json"
SERVING_SIGNATURE = "serving_default"
BYTES_SIGNATURE = "serve_bytes"
MEMBERS_SIGNATURE = "serve_members"
#: The reloaded SavedModel may differ from the in-memory model by at most this (probabilities).
RELOAD_TOLERANCE = 1e-5
#: Validation images the reload check compares on.
CHECK_BATCH = 32
#: Images per serve_bytes call in `predict`.
PREDICT_BATCH = 32


# ---------------------------------------------------------------------------------------------
# Keras layers
# ---------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="hubensemble")
class EnsembleLayer(keras.layers.Layer):
    """The weighted average of several models' class probabilities, as one Keras layer.

    ``members`` are Keras models or layers that each map the same input (e.g. float images
    in [0, 1] of any size) to class probabilities [N, C]; each does its own resizing and
    normalisation inside. ``weights`` (one per member, >= 0, default equal) are normalised
    to sum to 1. With ``from_logits=True`` each member's output is passed through a softmax
    first. The layer owns its members (their weights are its weights) and serialises them,
    so a model holding it round-trips through ``model.save("x.keras")`` and
    ``keras.models.load_model`` whenever its members are serialisable.

    Example::

        import keras
        from hubensemble import EnsembleLayer

        a = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
        b = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, EnsembleLayer([a, b], weights=[2, 1])(inputs))
        model.save("ensemble.keras")  # keras.models.load_model("ensemble.keras") reloads it
    """

    def __init__(self, members, weights=None, *, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        members = list(members)
        if not members:
            raise ValueError("EnsembleLayer needs at least one member")
        for m in members:
            if not callable(m):
                raise ValueError(f"EnsembleLayer members must be Keras models or layers, got "
                                 f"{type(m).__name__}")
        self.members = members
        self.member_weights = normalise_weights(
            [1.0] * len(members) if weights is None else weights, len(members))
        self.from_logits = bool(from_logits)

    def build(self, input_shape=None):
        for m in self.members:
            if isinstance(m, keras.layers.Layer) and not m.built and input_shape is not None:
                m.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.combine([m(inputs, training=training) for m in self.members])

    def combine(self, outputs):
        """The weighted average of the members' outputs [N, C] (given in member order)."""
        outputs = list(outputs)
        if len(outputs) != len(self.members):
            raise ValueError(f"expected {len(self.members)} member outputs, got {len(outputs)}")
        total = None
        for w, out in zip(self.member_weights, outputs):
            p = keras.ops.cast(out, "float32")
            if self.from_logits:
                p = keras.ops.softmax(p, axis=-1)
            p = p * w
            total = p if total is None else total + p
        return total

    def compute_output_shape(self, input_shape):
        first = self.members[0]
        if hasattr(first, "compute_output_shape"):
            with contextlib.suppress(Exception):
                return first.compute_output_shape(input_shape)
        return (input_shape[0], None)

    def get_config(self):
        config = super().get_config()
        config.update(members=[keras.saving.serialize_keras_object(m) for m in self.members],
                      weights=list(self.member_weights), from_logits=self.from_logits)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)


@keras.saving.register_keras_serializable(package="hubensemble")
class EvalResize(keras.layers.Layer):
    """Resizes float images in [0, 1] to size x size exactly as evaluation does.

    `augment.eval_preprocess`: antialiased bilinear resize of the whole image, no crop,
    clipped to [0, 1] — the resize a member's validation and test probabilities were made
    with, so the exported member sees what it was selected on.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")

    def call(self, images):
        return augment.eval_preprocess(images, size=self.size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size)
        return config


def normalise_weights(weights, n: int) -> tuple[float, ...]:
    """`weights` as floats summing to 1; ValueError for a wrong count, negatives or all 0."""
    w = np.asarray([float(x) for x in weights], np.float64)
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights (one per member), got {len(w)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"member weights must be finite, >= 0 and not all 0, got {list(w)}")
    return tuple(float(x) for x in w / w.sum())


def member_model(classifier: keras.Model, size: int, *, name: str | None = None) -> keras.Model:
    """[N, H, W, 3] in [0, 1], any size -> resize to `size` (as evaluation) -> `classifier`."""
    inputs = keras.Input((None, None, 3), name="images")
    outputs = classifier(EvalResize(size, name="eval_resize")(inputs))
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------------------------
# The export module: signatures, reusable-SavedModel API, metadata
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ExportMember:
    """A member ready to export: a classifier of [N, size, size, 3] images -> probabilities."""

    classifier: keras.Model
    size: int
    weight: float
    info: dict = dataclasses.field(default_factory=dict)  # for the metadata asset


class EnsembleModule:
    """The in-memory ensemble and the functions the SavedModel is made of."""

    def __init__(self, members: Sequence[ExportMember], class_names: Sequence[str]):
        if not members:
            raise HubensembleError("an export needs at least one member")
        self.members = list(members)
        self.class_names = [str(c) for c in class_names]
        self.sizes = [int(m.size) for m in self.members]
        self.layer = EnsembleLayer(
            [member_model(m.classifier, m.size, name=f"member_{i}")
             for i, m in enumerate(self.members)],
            weights=[m.weight for m in self.members], name="ensemble")

    def probabilities(self, images, training=False):
        """float32 [N, H, W, 3] in [0, 1] -> probabilities [N, C] (the in-memory model)."""
        return self.layer(tf.convert_to_tensor(images, tf.float32), training=training)

    def probabilities_from_bytes(self, image_bytes):
        """string [N] of encoded images -> probabilities [N, C].

        Each image is decoded on its own and resized straight to each member's size (one
        resize per distinct size), so images of different sizes share a batch and the result
        equals `probabilities` on the decoded image.
        """
        sizes = sorted(set(self.sizes))

        def one(data):
            image = decode_image(data)
            return tuple(augment.eval_preprocess(image, size=s) for s in sizes)

        resized = tf.map_fn(one, image_bytes, fn_output_signature=tuple(
            tf.TensorSpec([s, s, 3], tf.float32) for s in sizes))
        by_size = dict(zip(sizes, resized))
        outputs = [m.classifier(by_size[m.size], training=False) for m in self.members]
        return self.layer.combine(outputs)

    def variables(self):
        return _unique([_tf_var(v) for v in self.layer.variables])

    def trainable_variables(self):
        return _unique([_tf_var(v) for v in self.layer.trainable_variables])

    def regularization_losses(self):
        from hubensemble.hub import HubLayer

        fns = []
        for m in self.members:
            for layer in _all_layers(m.classifier):
                if isinstance(layer, HubLayer):
                    # The module's own losses (e.g. L2 on its kernels), as HubLayer adds them
                    # while fine-tuning.
                    fns.extend(getattr(layer, "_reg_losses", []))
        return [_loss_fn(fn) for fn in fns]

    def _unless_empty(self, batch, fn):
        # An empty request gets an empty answer without running the members: some ops fail
        # on a batch of 0 (oneDNN's Conv2D returns the wrong channel count, seen on TF 2.21).
        num_classes = len(self.class_names)
        return tf.cond(tf.shape(batch)[0] > 0, fn,
                       lambda: tf.zeros([0, num_classes], tf.float32))

    def saveable_root(self):
        """A tf.train.Checkpoint root: signatures plus the reusable SavedModel API."""
        image_spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        bytes_spec = tf.TensorSpec([None], tf.string, name="image_bytes")
        class_names = list(self.class_names)

        def call(images, training=False):
            return self._unless_empty(images, lambda: self.probabilities(images, training))

        call_fn = tf.function(call)
        call_fn.get_concrete_function(image_spec, True)
        call_fn.get_concrete_function(image_spec, False)

        @tf.function(input_signature=[image_spec])
        def serving_default(images):
            p = self._unless_empty(images, lambda: self.probabilities(images))
            return {"probabilities": p, "class_ids": tf.argmax(p, axis=-1, output_type=tf.int64)}

        @tf.function(input_signature=[bytes_spec])
        def serve_bytes(image_bytes):
            p = self._unless_empty(image_bytes,
                                   lambda: self.probabilities_from_bytes(image_bytes))
            ids = tf.argmax(p, axis=-1, output_type=tf.int64)
            return {"probabilities": p, "class_ids": ids,
                    "class_names": tf.gather(tf.constant(class_names, tf.string), ids)}

        n_members, num_classes = len(self.members), len(self.class_names)

        @tf.function(input_signature=[image_spec])
        def serve_members(images):
            # Each member's own probabilities, in metadata "members" order: what the
            # robustness evaluation compares the ensemble with.
            x = tf.convert_to_tensor(images, tf.float32)
            p = tf.cond(tf.shape(x)[0] > 0,
                        lambda: tf.stack([m(x, training=False) for m in self.layer.members],
                                         axis=1),
                        lambda: tf.zeros([0, n_members, num_classes], tf.float32))
            return {"member_probabilities": p}

        root = tf.train.Checkpoint()
        root.__call__ = call_fn
        root.serving_default = serving_default
        root.serve_bytes = serve_bytes
        root.serve_members = serve_members
        root.variables = self.variables()
        root.trainable_variables = self.trainable_variables()
        root.regularization_losses = self.regularization_losses()
        signatures = {SERVING_SIGNATURE: serving_default.get_concrete_function(),
                      BYTES_SIGNATURE: serve_bytes.get_concrete_function(),
                      MEMBERS_SIGNATURE: serve_members.get_concrete_function()}
        return root, signatures


def _loss_fn(fn):
    return tf.function(lambda: fn(), input_signature=[])


def decode_image(data) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP/GIF bytes -> float32 [H, W, 3] in [0, 1] (the first GIF frame)."""
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    # uint8 / 255 as Task.dataset does, so a decoded file gives the pixels training saw.
    return tf.cast(image, tf.float32) / 255.0


def _tf_var(v):
    return v.value if isinstance(v, keras.Variable) else v


def _unique(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _all_layers(model):
    stack, out = list(getattr(model, "layers", [])), []
    while stack:
        layer = stack.pop(0)
        out.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return out


# ---------------------------------------------------------------------------------------------
# The reload check
# ---------------------------------------------------------------------------------------------

def max_abs_difference(reference: Callable, candidate: Callable, images) -> float:
    """max |reference(images) - candidate(images)| over every probability (a pure function).

    Both callables take a float32 batch and return [N, C] (a tensor, an array, or a dict with
    a "probabilities" entry). Different shapes or any non-finite value count as infinite.
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
    """The largest difference of any candidate callable from `reference`; RunError above
    `tolerance`, naming the entry point that differs and by how much."""
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
    """tf.saved_model.load (a seam of its own so tests can hand the check another model)."""
    return tf.saved_model.load(path)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def is_export(path) -> bool:
    """True when `path` holds an export written by hubensemble (its metadata asset)."""
    meta = os.path.join(os.fspath(path), "assets", METADATA_ASSET)
    try:
        return read_json(meta).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_target(out_dir: str) -> None:
    if not os.path.exists(out_dir):
        return
    if not os.path.isdir(out_dir):
        raise RunError(f"{out_dir} exists and is a file; choose another --out folder")
    if os.listdir(out_dir) and not is_export(out_dir):
        raise RunError(f"{out_dir} exists and is not an export made by hubensemble; refusing "
                       "to replace it: choose another --out folder, or delete it first")


def save_export(members: Sequence[ExportMember], class_names: Sequence[str], out_dir, *,
                check_images, metadata: dict | None = None,
                tolerance: float = RELOAD_TOLERANCE) -> float:
    """Writes the ensemble of `members` as a SavedModel at `out_dir` and checks it.

    The SavedModel is written to a temp folder next to `out_dir`, reloaded with
    tf.saved_model.load and compared with the in-memory ensemble on `check_images` (float32
    [N, H, W, 3] in [0, 1]) through serving_default and __call__; only an export within
    `tolerance` is renamed into place (replacing an earlier export there). Otherwise the temp
    folder is deleted and RunError says by how much it differed. Returns max |dp|.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    _check_target(out_dir)
    module = EnsembleModule(members, class_names)
    check_images = tf.convert_to_tensor(np.asarray(check_images, np.float32))
    expected = module.probabilities(check_images).numpy()
    if expected.ndim != 2 or expected.shape[1] != len(module.class_names):
        raise HubensembleError(f"the members output {expected.shape[1:]} values per image but "
                               f"there are {len(module.class_names)} class names")
    root, signatures = module.saveable_root()
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    _remove_stale_temps(parent, os.path.basename(out_dir))
    tmp = os.path.join(parent, f"{TEMP_MARKER}{os.path.basename(out_dir)}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(root, tmp, signatures=signatures)
        meta = dict(metadata or {})
        meta.update(format=EXPORT_FORMAT, format_version=EXPORT_FORMAT_VERSION,
                    class_names=module.class_names, num_classes=len(module.class_names))
        atomic_write_json(os.path.join(tmp, "assets", METADATA_ASSET), meta)
        loaded = _reload(tmp)
        serve = loaded.signatures[SERVING_SIGNATURE]
        diff = check_reload(
            lambda x: expected,
            {SERVING_SIGNATURE: lambda x: serve(images=x)["probabilities"],
             "__call__": lambda x: loaded(x, training=False)},
            check_images, tolerance=tolerance)
        meta["reload_check"] = {"max_abs_diff": diff, "tolerance": tolerance,
                                "images": int(check_images.shape[0])}
        atomic_write_json(os.path.join(tmp, "assets", METADATA_ASSET), meta)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return diff


def _remove_stale_temps(parent, name):
    # Temp folders of exports whose process died (killed mid-save) are named
    # .tmp-NAME.PID[-old]; those of live processes are left alone.
    prefix = f"{TEMP_MARKER}{name}."
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].removesuffix("-old")
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _replace_dir(tmp, out_dir):
    if not os.path.exists(out_dir):
        os.replace(tmp, out_dir)
        return
    old = f"{tmp}-old"
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The stage: ensemble.json + candidates -> export
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class ExportResult:
    """What `export_ensemble` wrote (also recorded in run.json under "export")."""

    path: str
    members: list
    skipped: list
    max_abs_diff: float
    class_names: list
    retrain_full: bool
    seconds: float

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Plan:
    index: int
    entry: dict       # the member's entry of ensemble.json
    record: dict      # its trial.json
    spec: object      # ModuleSpec
    folder: str
    how: str          # "weights" | "retrain" | "retrain_full"
    weights_file: str | None = None


class _StepBar(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)


def export_ensemble(run_dir, out_dir=None, *, retrain_full: bool = False,
                    skip_missing: bool = False, strategy=None, task=None,
                    progress: bool = True) -> ExportResult:
    """Rebuilds the members of RUN/ensemble.json and writes them as one SavedModel.

    Every member is built with tune.build_classifier from its catalogue entry and loads its
    weights from RUN/candidates/<trial>/. A member tuned with ``--keep-weights none`` (its
    trial.json has ``"weights": null``) is retrained from its recorded hyperparameters and
    seed with tune.fit_member. With `retrain_full` every member is first retrained on train +
    validation with its own hyperparameters (paper: before testing). A member whose weights
    file is recorded but missing or unreadable raises RunError naming it, or with
    `skip_missing` is left out (a warning; the other weights renormalised).

    `out_dir` defaults to RUN/export. `strategy` (a tf.distribute.Strategy) is used for
    retraining. `task` is the run's Task when the caller has it (else it is loaded again
    from run.json and checked against the run's fingerprint). Records the export in run.json.
    """
    from hubensemble.ensemble import read_ensemble
    from hubensemble.rundir import Run

    start = time.time()
    run = Run(run_dir)
    out_dir = os.path.abspath(os.fspath(out_dir) if out_dir is not None else str(run.export))
    _check_target(out_dir)
    ensemble = read_ensemble(run.path)
    entries = list(ensemble.get("members") or [])
    if not entries:
        raise RunError(f"{run.ensemble_json} lists no members; run `hubensemble ensemble "
                       f"--run {run.path}` again")
    meta = run.meta()
    task = run.task(task)
    specs = meta.get("modules") or {}

    plans, skipped = [], []
    for i, entry in enumerate(entries):
        plan, reason = _plan_member(run, i, entry, specs, retrain_full=retrain_full)
        if reason is None:
            plans.append(plan)
            continue
        if not skip_missing:
            raise RunError(f"{reason}; re-run `hubensemble tune --run {run.path}` for it "
                           f"(delete RUN/candidates/{entry.get('trial')} first), or pass "
                           "--skip-missing to export the ensemble without it")
        log.warning("%s; leaving it out of the export (--skip-missing)", reason)
        skipped.append({"trial": entry.get("trial"), "module": entry.get("module"),
                        "reason": reason})

    # Retraining first: fit_member resets Keras' session state, which must not happen
    # between building the members that go into one model.
    retrained = {}
    work = tempfile.mkdtemp(prefix=TEMP_MARKER + "export-weights-")
    try:
        for plan in plans:
            if plan.how != "weights":
                retrained[plan.index] = _retrain(plan, task, strategy=strategy,
                                                 progress=progress, folder=work, meta=meta)
        members = []
        for plan in plans:
            weights_file = retrained.get(plan.index, plan.weights_file)
            classifier, reason = _build_member(plan, task, weights_file)
            if classifier is None:
                if not skip_missing:
                    raise RunError(f"{reason}; re-run `hubensemble tune --run {run.path}` for "
                                   f"it (delete RUN/candidates/{plan.entry.get('trial')} "
                                   "first), or pass --skip-missing to export without it")
                log.warning("%s; leaving it out of the export (--skip-missing)", reason)
                skipped.append({"trial": plan.entry.get("trial"),
                                "module": plan.entry.get("module"), "reason": reason})
                continue
            members.append(_export_member(plan, classifier, task, meta))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not members:
        raise RunError("no member of the ensemble could be rebuilt "
                       f"({'; '.join(s['reason'] for s in skipped)})")
    weights = normalise_weights([m.weight for m in members], len(members))
    for m, w in zip(members, weights):
        m.weight = w
        m.info["weight"] = w
    if skipped:
        log.warning("exporting %d of %d members; weights renormalised to sum to 1",
                    len(members), len(entries))

    metadata = _metadata(ensemble, members, skipped, task, retrain_full=retrain_full)
    diff = save_export(members, task.class_names, out_dir,
                       check_images=check_batch(task), metadata=metadata)
    result = ExportResult(path=os.path.abspath(out_dir), members=[m.info for m in members],
                          skipped=skipped, max_abs_diff=diff,
                          class_names=list(task.class_names), retrain_full=bool(retrain_full),
                          seconds=time.time() - start)
    run.update(export={**result.to_json(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return result


def _plan_member(run, index, entry, specs, *, retrain_full):
    """(_Plan, None) or (None, reason the member cannot be used)."""
    from hubensemble.catalogue import ModuleSpec

    trial = entry.get("trial")
    module = entry.get("module")
    who = f"member {index} (trial {trial!r}, module {module!r})"
    folder = os.path.join(str(run.candidates), str(trial))
    trial_json = os.path.join(folder, "trial.json")
    try:
        record = read_json(trial_json)
    except FileNotFoundError:
        return None, f"{who}: {trial_json} is missing"
    except (OSError, ValueError) as e:
        return None, f"{who}: {trial_json} is unreadable ({e})"
    if record.get("status") != "ok":
        return None, f"{who}: its candidate has status {record.get('status')!r}"
    if module not in specs:
        raise RunError(f"{who}: run.json has no catalogue entry for module {module!r}; run "
                       f"`hubensemble rank` on {run.path} again")
    spec = ModuleSpec.from_json(specs[module])
    weights = record.get("weights")
    if retrain_full:
        return _Plan(index, entry, record, spec, folder, "retrain_full"), None
    if not weights:
        return _Plan(index, entry, record, spec, folder, "retrain"), None
    path = os.path.join(folder, weights)
    if not os.path.isfile(path):
        return None, f"{who}: its weights file {path} is missing"
    try:
        # Open it now so a broken file fails the export before any member is retrained.
        import h5py

        with h5py.File(path, "r"):
            pass
    except Exception as e:  # noqa: BLE001 - h5py raises OSError and others for a bad file
        return None, f"{who}: its weights file {path} is unreadable ({_first_line(e)})"
    return _Plan(index, entry, record, spec, folder, "weights", path), None


def _trial_profile(record, meta):
    from hubensemble.hyperrule import Profile, get_profile

    name = record.get("profile") or (meta.get("tune") or {}).get("profile", {}).get("name")
    with contextlib.suppress(HubensembleError):
        return get_profile(name)
    # A custom profile: its full record is in run.json's tune section.
    tune_meta = meta.get("tune") or {}
    sweeps = list((tune_meta.get("sweeps") or {}).values()) + [tune_meta]
    fields = {f.name for f in dataclasses.fields(Profile)}
    for sweep in sweeps:
        prof = (sweep or {}).get("profile")
        if isinstance(prof, dict) and prof.get("name") == name:
            return Profile(**{k: v for k, v in prof.items() if k in fields})
    raise RunError(f"trial {record.get('trial')!r} was tuned with profile {name!r}, which is "
                   "neither built in nor recorded in run.json; it cannot be retrained")


def _retrain(plan, task, *, strategy, progress, folder, meta):
    """Retrains a member with its recorded hyperparameters; returns its weights file."""
    from hubensemble import tune
    from hubensemble.hyperrule import HParams

    record = plan.record
    hparams = HParams.from_json(record["hparams"])
    profile = _trial_profile(record, meta)
    splits = ("train", "val") if plan.how == "retrain_full" else ("train",)
    trial = record.get("trial")
    what = "train + val" if plan.how == "retrain_full" else "train (weights were not kept)"
    callbacks, bar = [], None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=hparams.steps, desc=f"retrain {trial} on {what}", unit="step",
                   dynamic_ncols=True)
        callbacks.append(_StepBar(bar))
    try:
        model = tune.fit_member(plan.spec, task, hparams, profile=profile, strategy=strategy,
                                splits=splits, callbacks=callbacks)
    except (tune.TrialFailed, ModuleLoadError) as e:
        raise RunError(f"retraining member {plan.index} (trial {trial!r}) failed: {e}") from e
    finally:
        if bar is not None:
            bar.close()
    path = os.path.join(folder, f"{plan.index}.weights.h5")
    model.save_weights(path)
    return path


def _build_member(plan, task, weights_file):
    """(classifier, None) or (None, reason the weights cannot be loaded)."""
    from hubensemble import tune
    from hubensemble.hyperrule import HParams

    hparams = HParams.from_json(plan.record["hparams"])
    try:
        classifier = tune.build_classifier(plan.spec, task.num_classes, dropout=hparams.dropout,
                                           name=f"classifier_{plan.index}")
    except ModuleLoadError as e:
        raise RunError(f"member {plan.index} (trial {plan.record.get('trial')!r}): its module "
                       f"cannot load: {e}") from e
    try:
        classifier.load_weights(weights_file)
    except Exception as e:  # noqa: BLE001 - h5py and Keras raise many types for a bad file
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, (f"member {plan.index} (trial {plan.record.get('trial')!r}, module "
                      f"{plan.entry.get('module')!r}): its weights file {weights_file} cannot "
                      f"be loaded ({type(e).__name__}: {text})")
    return classifier, None


def _export_member(plan, classifier, task, meta):
    from hubensemble import tune

    record = plan.record
    size = record.get("eval_size")
    if not size:
        size = tune.eval_size(task, plan.spec, _trial_profile(record, meta))
    source = {"weights": "tuned weights", "retrain": "retrained on train (weights not kept)",
              "retrain_full": "retrained on train + val"}[plan.how]
    info = {"trial": record.get("trial"), "module": plan.spec.name, "handle": plan.spec.handle,
            "weight": float(plan.entry.get("weight", 1.0)), "hparams": record.get("hparams"),
            "seed": record.get("seed"), "eval_size": int(size),
            "input_size": list(plan.spec.input_size) if plan.spec.input_size else None,
            "value_range": plan.spec.value_range, "source": source}
    return ExportMember(classifier=classifier, size=int(size), weight=info["weight"], info=info)


def check_batch(task, n: int = CHECK_BATCH) -> np.ndarray:
    """Up to `n` validation images (training images when there is no validation split), as
    float32 [n, H, W, 3] in [0, 1]; images of mixed sizes are resized to the median size."""
    split = "val" if task.val is not None else "train"
    data = task.split(split)
    size = None if data.same_size else task.image_size
    ds = task.dataset(split, batch_size=n, image_size=size, cache=False)
    images, _ = next(iter(ds))
    return images.numpy()


def _metadata(ensemble, members, skipped, task, *, retrain_full):
    from hubensemble.rundir import versions

    notes = []
    if retrain_full:
        notes.append("the members were retrained on train + val after selection, so the "
                     "validation metrics describe the members before retraining")
    if skipped:
        notes.append(f"{len(skipped)} member(s) were left out (--skip-missing); the metrics "
                     "describe the ensemble with them")
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "task": {"name": task.name, "source": task.source, "fingerprint": task.fingerprint},
        "objective": ensemble.get("objective"),
        "members": [m.info for m in members],
        # The best single candidate on validation (with the ce objective the greedy's first
        # pick, so always a member): robustness evaluation compares the ensemble with it.
        "best_single": ((ensemble.get("val") or {}).get("best_single") or {}).get("trial"),
        "skipped": skipped,
        "retrain_full": bool(retrain_full),
        "metrics": {"val": ensemble.get("val"), "test": ensemble.get("test"),
                    "source": "RUN/ensemble.json", "notes": notes},
        "inputs": {
            SERVING_SIGNATURE: "images: float32 [N, H, W, 3] in [0, 1], any H and W",
            BYTES_SIGNATURE: "image_bytes: string [N], encoded JPEG/PNG/BMP/GIF",
            MEMBERS_SIGNATURE: "images: as serving_default",
        },
        "outputs": {"probabilities": "float32 [N, C]", "class_ids": "int64 [N]",
                    "class_names": f"string [N] ({BYTES_SIGNATURE} only)",
                    "member_probabilities": f"float32 [N, M, C] ({MEMBERS_SIGNATURE} only)"},
        "versions": versions(),
    }


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------

def read_metadata(model_dir) -> dict:
    """The export's assets/hubensemble.json ({} when it has none)."""
    path = os.path.join(os.fspath(model_dir), "assets", METADATA_ASSET)
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}


def predict(model_dir, image_paths: Sequence, *, top: int = 5,
            skip_unreadable: bool = False, batch_size: int = PREDICT_BATCH) -> list[dict]:
    """Top classes of image files through the export's serve_bytes signature.

    Returns one dict per image, in order: {"path", "top": [{"rank", "class_id",
    "class_name", "probability"}, ...]} (at most `top` entries, most probable first). Files
    are read as bytes and decoded inside the model, so any mix of JPEG/PNG/BMP/GIF files of
    any sizes works. A file that cannot be read or decoded raises HubensembleError naming
    it; with `skip_unreadable` it gets {"path", "error"} instead and the others go on.
    """
    top = int(top)
    if top < 1:
        raise HubensembleError(f"--top must be >= 1, got {top}")
    model_dir = os.fspath(model_dir)
    if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        raise HubensembleError(f"{model_dir} is not a SavedModel folder (no saved_model.pb); "
                               "pass the folder `hubensemble export` wrote")
    loaded = tf.saved_model.load(model_dir)
    if BYTES_SIGNATURE not in loaded.signatures:
        raise HubensembleError(f"{model_dir} has no {BYTES_SIGNATURE} signature (it has "
                               f"{', '.join(loaded.signatures) or 'none'}); it was not made "
                               "by `hubensemble export`")
    serve = loaded.signatures[BYTES_SIGNATURE]
    names = read_metadata(model_dir).get("class_names")

    results = [None] * len(image_paths)
    readable = []
    for i, path in enumerate(image_paths):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            results[i] = _unreadable(path, f"cannot read it: {e.strerror or e}",
                                     skip_unreadable)
            continue
        if not data:
            results[i] = _unreadable(path, "the file is empty", skip_unreadable)
            continue
        readable.append((i, data))

    for lo in range(0, len(readable), max(1, int(batch_size))):
        chunk = readable[lo:lo + batch_size]
        try:
            probs = _run_bytes(serve, [d for _, d in chunk])
        except tf.errors.InvalidArgumentError:
            # One bad file fails the whole batch: find it (them) one by one.
            probs = []
            for i, data in chunk:
                try:
                    probs.append(_run_bytes(serve, [data])[0])
                except tf.errors.InvalidArgumentError as e:
                    reason = f"not a decodable JPEG/PNG/BMP/GIF image ({_first_line(e)})"
                    results[i] = _unreadable(image_paths[i], reason, skip_unreadable)
                    probs.append(None)
        for (i, _), p in zip(chunk, probs):
            if p is not None:
                results[i] = _top_classes(image_paths[i], p, top, names)
    return results


def _run_bytes(serve, blobs):
    out = serve(image_bytes=tf.constant(blobs, tf.string))
    return out["probabilities"].numpy()


def _unreadable(path, reason, skip):
    if not skip:
        raise HubensembleError(f"{path}: {reason}; fix or remove the file (or skip unreadable "
                               "files)")
    log.warning("%s: %s; skipped", path, reason)
    return {"path": os.fspath(path), "error": reason}


def _first_line(e):
    text = getattr(e, "message", None) or str(e)
    text = text.strip()
    return text.splitlines()[0] if text else type(e).__name__


def _top_classes(path, probs, top, names):
    order = np.argsort(-np.asarray(probs, np.float64), kind="stable")[:top]
    rows = []
    for rank, c in enumerate(order, 1):
        name = names[c] if names and c < len(names) else str(int(c))
        rows.append({"rank": rank, "class_id": int(c), "class_name": str(name),
                     "probability": float(probs[c])})
    return {"path": os.fspath(path), "top": rows}


def format_predictions(results: Sequence[dict], as_json: bool = False) -> str:
    """The CLI's output: JSON (a list, as `predict` returns) or a small text block per image."""
    if as_json:
        return json.dumps(list(results), indent=2)
    lines = []
    for r in results:
        lines.append(str(r["path"]))
        if "error" in r:
            lines.append(f"  error: {r['error']}")
            continue
        width = max((len(t["class_name"]) for t in r["top"]), default=0)
        for t in r["top"]:
            lines.append(f"  {t['rank']}. {t['class_name']:<{width}}  {t['probability']:.4f}")
    return "\n".join(lines)
