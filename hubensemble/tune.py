"""Fine-tuning sweeps: classifier, schedule, strategies, Keras Tuner oracle/tuner, candidates."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from hubensemble import augment, hyperrule
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, ModuleLoadError, RunError
from hubensemble.fileio import (atomic_save_npy, atomic_write_json, file_lock, is_temp, pid_alive,
                                read_json, TEMP_MARKER)
from hubensemble.hub import hub_layer_from_spec
from hubensemble.hyperrule import AugConfig, HParams, Profile, get_profile
from hubensemble.proxies import select_threshold
from hubensemble.rundir import Run

log = logging.getLogger(__name__)

SWEEPS = ("default", "seeds", "hyper", "aug", "combined")
STRATEGIES = ("auto", "cpu", "mirrored", "multiworker", "tpu")
KEEP_WEIGHTS = ("all", "none")
#: Budget (trials) of the seeds/hyper/aug/combined sweeps when none is given. The paper's
#: L = 60; on a CPU the demo keeps to a dozen trials, the tests to four.
DEFAULT_BUDGETS = {"paper": 60, "cpu": 12, "quick": 4}
#: Combined sweep (paper 2.3.1): modules within tau (relative) of the best kNN score, at most K.
TAU = 0.02
MAX_K = 15
#: The seeds baseline (paper 2.2): the generalist with fixed hyperparameters, before scaling.
SEEDS_HPARAMS = {"lr": 0.01, "steps": 2500, "weight_decay": 0.0, "dropout": 0.0}
OBJECTIVE = "val_ce"
#: A trial's steps are run as up to this many Keras epochs, so TensorBoard draws curves.
MAX_CHUNKS = 10
WEIGHTS_FILE = "weights.weights.h5"
TRIAL_JSON = "trial.json"
#: Probabilities below this count as this in the cross-entropy (as Keras' epsilon).
CE_EPSILON = 1e-7
TPU_TIMEOUT = float(os.environ.get("HUBENSEMBLE_TPU_TIMEOUT", "300"))
CHIEF_TIMEOUT = float(os.environ.get("HUBENSEMBLE_CHIEF_TIMEOUT", "3600"))
_KT_VARS = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
_TUNER_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")
# Sub-seeds of the random plans, so the sweeps never share draws.
_SEED_TAGS = {"hyper": 1, "aug": 2, "combined": 3}


class TrialFailed(HubensembleError):
    """A fine-tuning run that cannot give a result (non-finite loss or predictions)."""


# ---------------------------------------------------------------------------------------------
# The classifier: HubLayer -> dropout -> zero-initialised dense head -> softmax
# ---------------------------------------------------------------------------------------------

class _Snapshot:
    """Holds the initial weights out of Keras' (and the weights file's) sight."""

    def __init__(self, variables):
        self.variables = variables


class Classifier(keras.Model):
    """A module with a new head; outputs class probabilities.

    Weight decay pulls towards the *initial* weights (paper A.2, BiT's "decay to init"): the
    training loss gets ``weight_decay / 2 * sum ||w - w0||^2`` over all trainable weights,
    with ``w0`` a copy taken when the model was built (so a pre-trained backbone is pulled
    back to its pre-trained values, the zero-initialised head towards zero). The copy is not
    part of the model's weights: ``save_weights`` stores only the backbone and the head.
    The loss sees the head's logits (Keras takes them from the softmax), so it stays stable.
    """

    def __init__(self, backbone, num_classes, *, dropout=0.0, weight_decay=0.0, name=None):
        super().__init__(name=name)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.dropout = keras.layers.Dropout(float(dropout), name="dropout")
        self.head = keras.layers.Dense(self.num_classes, kernel_initializer="zeros",
                                       bias_initializer="zeros", name="head")
        dim = backbone.output_dim
        if dim is None:
            # A module whose signature does not say its output size: ask it once.
            size = backbone.input_size or (32, 32)
            dim = int(backbone(tf.zeros([1, size[0], size[1], 3])).shape[-1])
        self.head.build((None, dim))
        self.built = True
        self.weight_decay = float(weight_decay)
        self._w0 = None
        if self.weight_decay > 0:
            self.snapshot_initial_weights()

    def snapshot_initial_weights(self):
        """Takes w0 = the current trainable weights (in the current strategy's scope)."""
        self._w0 = _Snapshot([
            tf.Variable(tf.identity(w.value), trainable=False, name=f"w0_{i}")
            for i, w in enumerate(self.trainable_weights)])

    def call(self, images, training=None):
        x = self.backbone(images, training=training)
        x = self.dropout(x, training=training)
        return keras.ops.softmax(self.head(x))

    def decay_penalty(self):
        """weight_decay / 2 * sum ||w - w0||^2 (0 without weight decay)."""
        if self._w0 is None or self.weight_decay <= 0:
            return tf.constant(0.0)
        sq = [tf.reduce_sum(tf.square(tf.cast(w.value, tf.float32) - w0))
              for w, w0 in zip(self.trainable_weights, self._w0.variables)]
        return 0.5 * self.weight_decay * tf.add_n(sq)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)
        if training and self._w0 is not None and self.weight_decay > 0:
            # Each replica's loss is summed over replicas by the optimizer, as Keras does
            # for its own regularisation losses: divide by the replica count.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss + self.decay_penalty() / float(replicas)
        return loss


def build_classifier(spec: ModuleSpec, num_classes: int, *, dropout: float = 0.0,
                     trainable: bool = True, weight_decay: float = 0.0,
                     name: str | None = None) -> Classifier:
    """float images in [0, 1] -> HubLayer -> Dropout -> Dense(num_classes, zeros) -> softmax.

    Call inside ``strategy.scope()`` to distribute it. With ``weight_decay`` > 0 the initial
    weights are copied now (see `Classifier`). The output is probabilities [N, C]; a model
    built by this function loads the ``weights.weights.h5`` of a candidate.
    """
    if int(num_classes) < 2:
        raise HubensembleError(f"a classifier needs at least 2 classes, got {num_classes}")
    backbone = hub_layer_from_spec(spec, trainable=trainable, name="backbone")
    return Classifier(backbone, num_classes, dropout=dropout, weight_decay=weight_decay,
                      name=name or "classifier")


@keras.saving.register_keras_serializable(package="hubensemble")
class PaperSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's schedule (A.1.1) in optimizer steps: `hyperrule.learning_rate` as tensor ops.

    Linear warm-up over the first 20 % (0 at step 0), then base_lr, x0.1 after 40 %, x0.01
    after 60 %, x0.001 after 80 % (a decay applies from the step after its boundary).
    """

    def __init__(self, base_lr: float, total_steps: int):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup, self.boundaries = hyperrule.schedule_boundaries(self.total_steps)
        self.values = hyperrule.schedule_values(self.base_lr)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        b1, b2, b3 = (float(b) for b in self.boundaries)
        v = [tf.constant(x, tf.float32) for x in self.values]
        lr = tf.where(step <= b1, v[0],
                      tf.where(step <= b2, v[1], tf.where(step <= b3, v[2], v[3])))
        if self.warmup > 0:
            lr = tf.where(step < float(self.warmup), self.base_lr * step / self.warmup, lr)
        return lr

    def get_config(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps}


def compile_classifier(model: keras.Model, hparams: HParams) -> keras.Model:
    """SGD with momentum on the paper's schedule, categorical cross-entropy on one-hot labels."""
    if isinstance(model, Classifier) and hparams.weight_decay != model.weight_decay:
        model.weight_decay = float(hparams.weight_decay)
        if model.weight_decay > 0 and model._w0 is None:
            model.snapshot_initial_weights()
    optimizer = keras.optimizers.SGD(
        learning_rate=PaperSchedule(hparams.lr, hparams.steps), momentum=hparams.momentum)
    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model


# ---------------------------------------------------------------------------------------------
# Input pipelines
# ---------------------------------------------------------------------------------------------

def _input_size(spec: ModuleSpec) -> int | None:
    # The module resizes to its (h, w) itself; the square crop only needs to be that big.
    return None if spec.input_size is None else max(spec.input_size)


def train_resolution(task, spec: ModuleSpec, profile) -> tuple[int, int]:
    """(resize, crop) of the BiT-HyperRule for this task and module under `profile`."""
    return hyperrule.preprocessing_for(task.image_size, _input_size(spec), _profile(profile))


def eval_size(task, spec: ModuleSpec, profile) -> int:
    """The square size evaluation images are resized to (the training crop)."""
    return hyperrule.eval_resolution(task.image_size, _input_size(spec), _profile(profile))


def _merged(task, splits: Sequence[str]):
    """`task` with its train split replaced by the named splits together (e.g. train + val)."""
    from hubensemble.data import Split

    splits = tuple(splits)
    if splits == ("train",):
        return task
    parts = [task.split(s) for s in splits]
    labels = np.concatenate([p.labels for p in parts])
    if all(p.same_size for p in parts) and len({p.images.shape[1:] for p in parts}) == 1:
        images = np.concatenate([p.images for p in parts])
    else:
        images = [im for p in parts for im in p.images]
    return dataclasses.replace(task, train=Split(images=images, labels=labels),
                               val=None, test=None)


def _image_size_arg(split, size):
    # Same-size images are resized batched (antialiased) by augment; others must be resized
    # one by one to batch at all.
    return None if split.same_size else (size, size)


def training_dataset(task, spec: ModuleSpec, hparams: HParams, *, profile,
                     splits: Sequence[str] = ("train",)) -> tf.data.Dataset:
    """Endless (images [B, crop, crop, 3], one-hot or MixUp soft labels [B, C]) batches.

    BiT-HyperRule resize and random crop (flip if the task allows it), or the trial's
    AugConfig (paper A.3), then MixUp when the trial has an alpha. Batch i is augmented with
    the stateless seed (hparams.seed, i): the stream is a pure function of the trial.
    """
    resize, crop = train_resolution(task, spec, profile)
    data = _merged(task, splits)
    ds = data.dataset("train", batch_size=hparams.batch_size,
                      image_size=_image_size_arg(data.train, resize), shuffle=True,
                      seed=hparams.seed, repeat=True)
    aug = hparams.augmentation
    alpha = hparams.effective_mixup_alpha
    num_classes = task.num_classes
    flip = bool(task.flip)
    seed = int(hparams.seed)

    def prepare(step, batch):
        images, labels = batch
        step_seed = augment.step_seed(seed, step)
        x = augment.train_preprocess(images, resize=resize, crop=crop, flip=flip, aug=aug,
                                     seed_tensor=step_seed)
        y = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if alpha > 0:
            x, y = augment.mixup(x, y, alpha, step_seed)
        return x, y

    return ds.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def eval_dataset(task, split: str, *, spec: ModuleSpec, profile,
                 batch_size: int) -> tf.data.Dataset:
    """Images of `split` in order, resized whole to the training crop size (no labels)."""
    size = eval_size(task, spec, profile)
    data = task.split(split)
    ds = task.dataset(split, batch_size=batch_size, image_size=_image_size_arg(data, size),
                      shuffle=False, repeat=False)
    return ds.map(lambda x, y: augment.eval_preprocess(x, size=size),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def predict_probs(model: keras.Model, task, split: str, *, spec: ModuleSpec, profile,
                  batch_size: int) -> np.ndarray:
    """The model's class probabilities on a split, float32 [N, C] in the split's order."""
    ds = eval_dataset(task, split, spec=spec, profile=profile, batch_size=batch_size)
    probs = np.asarray(model.predict(ds, verbose=0), np.float32)
    n = len(task.split(split))
    if probs.shape != (n, task.num_classes):
        raise HubensembleError(f"predictions on {split} have shape {probs.shape}, expected "
                               f"({n}, {task.num_classes})")
    return probs


def probs_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """{"ce": mean -log p(true class) (p clipped at 1e-7), "accuracy": argmax accuracy}."""
    labels = np.asarray(labels, np.int64)
    p = np.asarray(probs, np.float64)[np.arange(len(labels)), labels]
    ce = float(np.mean(-np.log(np.clip(p, CE_EPSILON, 1.0))))
    acc = float(np.mean(np.argmax(probs, axis=1) == labels))
    return {"ce": ce, "accuracy": acc}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

class _StopOnNonFinite(keras.callbacks.Callback):
    """Stops training when the loss is NaN or infinite (checked at each chunk's end, which
    keeps Keras' asynchronous batch dispatch; a divergence wastes at most one chunk)."""

    def __init__(self):
        super().__init__()
        self.reason = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            self.reason = f"the training loss became {float(loss)} by step {step}"
            self.model.stop_training = True


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, epoch-level only (the chunks of a trial).

    Its per-batch hooks are Keras' no-op defaults: Keras' own run Python after every step
    (converting the step's logs and a summary call per metric, written nowhere with
    update_freq="epoch"), overhead that tools/benchmarks/bench_tune.py counts against the
    trial. The class keeps the name ``TensorBoard`` because Keras Tuner adds its hparams
    callback by that name.
    """

    on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def __init__(self, log_dir, **kwargs):
        kwargs.setdefault("write_graph", False)
        super().__init__(log_dir, update_freq="epoch", profile_batch=0, **kwargs)


def chunks(steps: int, max_chunks: int = MAX_CHUNKS) -> int:
    """How many equal Keras epochs `steps` is split into: its largest divisor <= max_chunks."""
    for c in range(min(max_chunks, steps), 0, -1):
        if steps % c == 0:
            return c
    return 1


def train_classifier(model: keras.Model, task, spec: ModuleSpec, hparams: HParams, *, profile,
                     splits: Sequence[str] = ("train",), callbacks=()) -> keras.Model:
    """Runs exactly ``hparams.steps`` optimizer steps of a compiled classifier.

    Raises TrialFailed when the loss becomes NaN or infinite.
    """
    ds = training_dataset(task, spec, hparams, profile=profile, splits=splits)
    n = chunks(hparams.steps)
    guard = _StopOnNonFinite()
    model.fit(ds, epochs=n, steps_per_epoch=hparams.steps // n, verbose=0, shuffle=False,
              callbacks=[*callbacks, guard])
    if guard.reason:
        raise TrialFailed(guard.reason)
    return model


def fit_member(spec: ModuleSpec, task, hparams: HParams, *, profile, strategy=None,
               splits: Sequence[str] = ("train",), tensorboard_dir: str | None = None,
               callbacks=()) -> keras.Model:
    """Builds and fine-tunes one member from its recorded hyperparameters and seed.

    The same code path as a tune trial: `export` uses it to retrain a member whose weights
    were not kept, or on train + val (``splits=("train", "val")``) for ``--retrain-full``.
    Raises TrialFailed on a non-finite loss, ModuleLoadError when the module cannot load.
    """
    profile = _profile(profile)
    strategy = strategy or tf.distribute.get_strategy()
    keras.backend.clear_session()
    keras.utils.set_random_seed(hparams.seed)
    with strategy.scope():
        model = build_classifier(spec, task.num_classes, dropout=hparams.dropout,
                                 weight_decay=hparams.weight_decay)
        compile_classifier(model, hparams)
    cbs = list(callbacks)
    if tensorboard_dir:
        cbs.append(TensorBoard(tensorboard_dir))
    return train_classifier(model, task, spec, hparams, profile=profile, splits=splits,
                            callbacks=cbs)


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

def get_strategy(name: str = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """A tf.distribute strategy by name.

    cpu: the default strategy. mirrored: MirroredStrategy over all local GPUs, or over all
    logical CPUs when there is no GPU and several are configured. multiworker:
    MultiWorkerMirroredStrategy from TF_CONFIG. tpu: TPUStrategy on ``tpu`` (or $TPU_NAME).
    auto: a TPU when one is named (``tpu`` or $TPU_NAME) and reachable, else mirrored over
    several GPUs, else the default strategy (which uses a single GPU when there is one).
    """
    if name not in STRATEGIES:
        raise HubensembleError(f"unknown strategy {name!r}; choose one of: "
                               f"{', '.join(STRATEGIES)}")
    if name == "cpu":
        return tf.distribute.get_strategy()
    if name == "tpu":
        return _tpu_strategy(tpu or os.environ.get("TPU_NAME"))
    if name == "multiworker":
        return _multiworker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        cpus = tf.config.list_logical_devices("CPU")
        if len(cpus) < 2:
            log.warning("mirrored: no GPU and one CPU device; running one replica (configure "
                        "logical CPUs with tf.config.set_logical_device_configuration)")
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    # auto
    address = tpu or os.environ.get("TPU_NAME")
    if address:
        try:
            return _tpu_strategy(address)
        except HubensembleError as e:
            log.warning("auto: %s; falling back to %s", e, "GPUs" if gpus else "the CPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def _multiworker_strategy():
    raw = os.environ.get("TF_CONFIG")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not raw:
        raise HubensembleError("strategy multiworker needs the TF_CONFIG environment variable "
                               f"on every worker, e.g. TF_CONFIG='{example}' (index differs "
                               "per worker)")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        members = cluster[task["type"]]
        if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
            raise ValueError("task index out of range")
    except (ValueError, KeyError, TypeError) as e:
        raise HubensembleError(f"TF_CONFIG is not valid ({type(e).__name__}: {e}); it must "
                               f"look like '{example}'") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _run_with_timeout(fn, timeout, what):
    # Connecting to an address where no TPU answers blocks forever inside TF: run it in a
    # thread and give up with a clear error.
    result, error = [], []

    def target():
        try:
            result.append(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise HubensembleError(f"{what} did not finish within {timeout:.0f} s")
    if error:
        raise error[0]
    return result[0] if result else None


def _probe_grpc(master, address, timeout=10.0):
    m = re.match(r"^grpc://(\[[^\]]+\]|[^:/]+):(\d+)$", master or "")
    if not m:
        return
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise HubensembleError(
            f"cannot reach the TPU at {address!r} ({master}): {e}; check the address (a TPU "
            "name, grpc://HOST:8470, or 'local' on a TPU VM) and that this machine may connect "
            "to it") from None


def _tpu_strategy(address, timeout=None):
    timeout = TPU_TIMEOUT if timeout is None else timeout
    if not address:
        raise HubensembleError("strategy tpu needs a TPU: pass --tpu NAME|grpc://HOST:8470|local "
                               "or set TPU_NAME")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        master = resolver.master()
    except Exception as e:  # noqa: BLE001 - the resolver raises many types
        raise HubensembleError(f"cannot resolve the TPU {address!r}: {type(e).__name__}: {e}; "
                               "pass its name, grpc://HOST:8470, or 'local' on a TPU "
                               "VM") from None
    _probe_grpc(master, address)
    what = f"connecting to the TPU at {address!r} ({master or 'local'})"
    try:
        _run_with_timeout(lambda: tf.config.experimental_connect_to_cluster(resolver),
                          timeout, what)
        _run_with_timeout(lambda: tf.tpu.experimental.initialize_tpu_system(resolver),
                          timeout, what)
    except HubensembleError:
        raise
    except Exception as e:  # noqa: BLE001
        raise HubensembleError(f"{what} failed: {type(e).__name__}: {e}") from None
    return tf.distribute.TPUStrategy(resolver)


def _is_default_strategy(strategy):
    return strategy is None or type(strategy).__name__ == "_DefaultDistributionStrategy"


def _writes_results(strategy):
    # Under MultiWorkerMirroredStrategy every worker trains; only the chief records.
    return strategy is None or getattr(strategy.extended, "should_checkpoint", True)


# ---------------------------------------------------------------------------------------------
# Plans: which trials a sweep runs, as a pure function of the ranking, the task and the seed
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanEntry:
    """One planned trial: its place in the plan, its id, module and hyperparameters."""

    index: int
    trial_id: str
    module: str
    hparams: HParams

    def to_json(self) -> dict:
        return {"index": self.index, "trial": self.trial_id, "module": self.module,
                "hparams": self.hparams.to_json()}


def trial_seed(seed: int, index: int) -> int:
    """The training seed of plan entry `index` of a sweep seeded `seed` (31-bit)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF


def trial_id(sweep: str, index: int, module: str) -> str:
    """``<sweep>-<index:04d>-<module>``: readable, and the same for the same plan in every run
    (the sweep prefix keeps several sweeps in one run directory apart)."""
    return f"{sweep}-{index:04d}-{module}"


def default_budget(sweep: str, profile, n_selected: int) -> int:
    """4 trials per selected module for `default`; else 60 (paper), 12 (cpu), 4 (quick)."""
    if sweep == "default":
        return 4 * max(1, int(n_selected))
    return DEFAULT_BUDGETS.get(_profile(profile).name, DEFAULT_BUDGETS["paper"])


def _task_flags(task) -> tuple[bool, bool]:
    if isinstance(task, Mapping):
        return bool(task.get("flip", True)), bool(task.get("synthetic", False))
    return bool(task.flip), bool(task.synthetic)


def _ranked(ranking: Mapping) -> tuple[list[str], dict]:
    rows = ranking.get("modules") or []
    names = [r["name"] for r in rows if r.get("status", "ok") == "ok"]
    scores = {r["name"]: r.get("score") for r in rows if r.get("status", "ok") == "ok"}
    return names, scores


def _check_modules(modules, ranking) -> list[str]:
    ranked, _ = _ranked(ranking)
    everything = {r["name"]: r for r in ranking.get("modules") or []}
    wanted = list(dict.fromkeys(modules))
    for name in wanted:
        if name not in everything:
            raise HubensembleError(f"module {name!r} is not in the ranking; ranked modules: "
                                   f"{', '.join(ranked) or '(none)'}")
        if name not in ranked:
            status = everything[name].get("status")
            raise HubensembleError(f"module {name!r} has status {status!r} in the ranking "
                                   f"(it could not be embedded); usable modules: "
                                   f"{', '.join(ranked)}")
    # Rank order, so the plan does not depend on how the names were typed.
    return [n for n in ranked if n in wanted]


def _best_generalist(pool: list[str], specs: Mapping[str, ModuleSpec]) -> str:
    for name in pool:
        if specs[name].family == "generalist":
            return name
    warnings.warn(f"no module of family 'generalist' among {', '.join(pool)}; using the "
                  f"best-ranked module {pool[0]!r} for this baseline", stacklevel=3)
    return pool[0]


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def plan_sweep(ranking: Mapping, specs: Mapping[str, ModuleSpec], *, sweep: str, task,
               profile, budget: int | None = None, modules: Sequence[str] | None = None,
               seed: int = 0, tau: float = TAU, max_k: int = MAX_K) -> list[PlanEntry]:
    """The deterministic list of trials of a sweep (a pure function of its arguments).

    ranking: ranking.json ({"modules": [{"name", "status", "score"}, ...] best first,
    "selected": [...]}); specs: name -> ModuleSpec (for the family); task: a Task or its
    JSON record (flip and synthetic are used); profile scales steps, lr, batch and momentum.

    default: the 2 x 2 grid lr {0.1, 0.01} x steps {2500, 10000} per module of ``modules``
      or the ranking's selection; a budget L keeps the first L // 4 of them.
    seeds: the best-ranked generalist, lr 0.01 and 2500 steps, L different seeds.
    hyper: L random configurations of paper A.2 on the best-ranked generalist.
    aug: L // 4 random augmentation families (A.3) x the default 2 x 2 grid on the
      generalist (A.1.1: each augmentation setting is fine-tuned 4 times).
    combined: modules within tau of the best kNN score (at most max_k) = K'; each gets
      round(L / K') (at least 1) random A.2 configurations (paper 2.3.1), dealt round-robin
      (module 1, module 2, …, module 1, …) from one random stream per module.
    Every trial gets its own seed from (seed, index).
    """
    if sweep not in SWEEPS:
        raise HubensembleError(f"unknown sweep {sweep!r}; choose one of: {', '.join(SWEEPS)}")
    profile = _profile(profile)
    ranked, scores = _ranked(ranking)
    if not ranked:
        raise RunError("the ranking has no usable module; run `hubensemble rank` again and "
                       "check its errors")
    if modules:
        pool = _check_modules(modules, ranking)
    elif sweep == "default":
        pool = [n for n in ranked if n in set(ranking.get("selected") or [])]
        if not pool:
            raise RunError("the ranking selected no module; pass --modules NAME… or rank "
                           "again")
    else:
        pool = list(ranked)
    missing = [n for n in pool if n not in specs]
    if missing:
        raise RunError(f"run.json has no catalogue entry for {', '.join(missing)}; run "
                       "`hubensemble rank` again")
    if budget is None:
        budget = default_budget(sweep, profile, len(pool))
    if int(budget) < 1:
        raise HubensembleError(f"budget must be >= 1, got {budget}")
    budget = int(budget)
    flip, synthetic = _task_flags(task)
    grid = hyperrule.default_sweep()
    configs: list[tuple[str, dict, AugConfig | None]] = []

    if sweep == "default":
        k = budget // 4
        if budget % 4:
            warnings.warn(f"the default sweep runs 4 trials per module; budget {budget} "
                          f"gives {max(1, k)} module(s)", stacklevel=2)
        k = max(1, k)
        if k > len(pool):
            if budget != default_budget(sweep, profile, len(pool)):
                warnings.warn(f"budget {budget} asks for {k} modules but only {len(pool)} "
                              f"are selected; running {4 * len(pool)} trials", stacklevel=2)
            k = len(pool)
        configs = [(m, cfg, None) for m in pool[:k] for cfg in grid]
    elif sweep == "seeds":
        base = _best_generalist(pool, specs)
        configs = [(base, dict(SEEDS_HPARAMS), None) for _ in range(budget)]
    elif sweep == "hyper":
        base = _best_generalist(pool, specs)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["hyper"]])
        configs = [(base, hyperrule.sample_hparams(rng), None) for _ in range(budget)]
    elif sweep == "aug":
        base = _best_generalist(pool, specs)
        if budget % 4:
            warnings.warn(f"the aug sweep runs 4 trials per augmentation family; budget "
                          f"{budget} gives {max(1, budget // 4)} famil(ies)", stacklevel=2)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["aug"]])
        for _ in range(max(1, budget // 4)):
            aug = hyperrule.sample_augmentation(rng, flip_allowed=flip, synthetic=synthetic)
            configs.extend((base, cfg, aug) for cfg in grid)
    else:  # combined
        kept = select_threshold({n: scores[n] for n in pool}, tau=tau, max_k=max_k)
        if not kept:
            raise RunError("no ranked module has a score; the combined sweep needs kNN "
                           "scores (run `hubensemble rank`)")
        per = max(1, int(math.floor(budget / len(kept) + 0.5)))
        # One random stream per module, dealt round-robin: a larger budget appends trials
        # (the plan's prefix and ids stay), and a sweep cut short has trials of every module.
        rngs = {m: np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["combined"],
                                          _name_key(m)]) for m in kept}
        configs = [(m, hyperrule.sample_hparams(rngs[m]), None)
                   for _ in range(per) for m in kept]

    plan = []
    for i, (module, cfg, aug) in enumerate(configs):
        hp = HParams(**profile.scale(cfg), seed=trial_seed(seed, i), augmentation=aug)
        plan.append(PlanEntry(i, trial_id(sweep, i, module), module, hp))
    return plan


# ---------------------------------------------------------------------------------------------
# Candidates: RUN/candidates/<trial>/{trial.json, val_probs.npy, test_probs.npy, weights}
# ---------------------------------------------------------------------------------------------

def read_candidate(candidates_dir, trial: str) -> dict | None:
    """A candidate's trial.json when the candidate is complete, else None."""
    folder = os.path.join(os.fspath(candidates_dir), trial)
    path = os.path.join(folder, TRIAL_JSON)
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    if record.get("status") == "ok":
        needed = ["val_probs.npy"] + (["test_probs.npy"] if record.get("has_test") else [])
        if record.get("weights"):
            needed.append(record["weights"])
        if not all(os.path.exists(os.path.join(folder, f)) for f in needed):
            return None
    return record


def _temp_name(trial: str) -> str:
    return f"{TEMP_MARKER}{trial}-{os.getpid()}@{socket.gethostname()}"


def clean_stale_temps(candidates_dir) -> list[str]:
    """Removes temp folders of candidates whose writer died (on this host); returns them.

    Temp folders of live processes, and of other hosts (which may be writing right now on
    shared storage), are left alone; those are removed when their host runs tune again.
    """
    removed = []
    folder = os.fspath(candidates_dir)
    if not os.path.isdir(folder):
        return removed
    host = socket.gethostname()
    for name in os.listdir(folder):
        if not is_temp(name):
            continue
        owner = name.rpartition("-")[2]
        pid, _, owner_host = owner.partition("@")
        if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        removed.append(name)
    return removed


def write_candidate(candidates_dir, record: dict, *, val_probs=None, test_probs=None,
                    model=None) -> str:
    """Writes a candidate folder atomically: files into a temp folder, trial.json last, then
    one rename. A reader never sees a half-written candidate."""
    root = os.fspath(candidates_dir)
    os.makedirs(root, exist_ok=True)
    trial = record["trial"]
    tmp = os.path.join(root, _temp_name(trial))
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        if val_probs is not None:
            atomic_save_npy(os.path.join(tmp, "val_probs.npy"), np.asarray(val_probs, np.float32))
        if test_probs is not None:
            atomic_save_npy(os.path.join(tmp, "test_probs.npy"),
                            np.asarray(test_probs, np.float32))
        if model is not None:
            model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        atomic_write_json(os.path.join(tmp, TRIAL_JSON), record)
        final = os.path.join(root, trial)
        if os.path.exists(final):
            old = os.path.join(root, _temp_name(trial) + "-old")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _same_trial(record: Mapping, entry: PlanEntry) -> bool:
    try:
        return (record.get("module") == entry.module
                and HParams.from_json(record["hparams"]) == entry.hparams)
    except (KeyError, HubensembleError, TypeError):
        return False


def check_candidates(candidates_dir, plan: Sequence[PlanEntry]) -> None:
    """Refuses a plan whose trial ids already hold candidates made with other settings."""
    clash = []
    for entry in plan:
        record = read_candidate(candidates_dir, entry.trial_id)
        if record is not None and not _same_trial(record, entry):
            clash.append(entry.trial_id)
    if clash:
        raise RunError(
            f"{len(clash)} candidate(s) in {candidates_dir} (e.g. {clash[0]}) were made with "
            "other hyperparameters than this sweep plans (another --seed, --profile or "
            "module list?); use the same settings to resume, or a new run directory")


# ---------------------------------------------------------------------------------------------
# Keras Tuner: the hypermodel (build), the plan oracle (decide) and the tuner (run, record)
# ---------------------------------------------------------------------------------------------

_HP_KEYS = ("plan_index", "module", "lr", "steps", "weight_decay", "dropout", "seed",
            "batch_size", "momentum", "augmentation", "mixup_alpha")


def _aug_text(aug: AugConfig | None) -> str:
    return "none" if aug is None else json.dumps(aug.to_json(), sort_keys=True)


def hp_values(entry: PlanEntry) -> dict:
    """The Keras Tuner hyperparameter values of a plan entry (what TensorBoard shows)."""
    h = entry.hparams
    return {"plan_index": entry.index, "module": entry.module, "lr": h.lr, "steps": h.steps,
            "weight_decay": h.weight_decay, "dropout": h.dropout, "seed": h.seed,
            "batch_size": h.batch_size, "momentum": h.momentum,
            "augmentation": _aug_text(h.augmentation), "mixup_alpha": h.mixup_alpha}


def hparams_from_hp(hp: kt.HyperParameters) -> HParams:
    """The trial's HParams from its Keras Tuner values (inverse of `hp_values`)."""
    aug = hp.get("augmentation")
    return HParams(lr=float(hp.get("lr")), steps=int(hp.get("steps")),
                   weight_decay=float(hp.get("weight_decay")), dropout=float(hp.get("dropout")),
                   batch_size=int(hp.get("batch_size")), seed=int(hp.get("seed")),
                   augmentation=None if aug == "none" else AugConfig.from_json(aug),
                   mixup_alpha=float(hp.get("mixup_alpha")), momentum=float(hp.get("momentum")))


class FineTuneHyperModel(kt.HyperModel):
    """Builds and compiles the classifier of a trial from its hyperparameters."""

    def __init__(self, specs: Mapping[str, ModuleSpec], num_classes: int,
                 plan: Sequence[PlanEntry]):
        super().__init__(name="finetune", tunable=False)
        self.specs = dict(specs)
        self.num_classes = int(num_classes)
        self.plan = list(plan)

    def declare_hyperparameters(self, hp):
        # The space is exactly the plan's values, so TensorBoard's hparams view has their
        # ranges; the oracle hands out the plan's values, never samples.
        rows = [hp_values(e) for e in self.plan]
        for key in _HP_KEYS:
            values = list(dict.fromkeys(r[key] for r in rows))
            if len(values) == 1:
                hp.Fixed(key, values[0])
            elif key in ("module", "augmentation"):
                hp.Choice(key, values)
            elif key in ("steps", "batch_size"):
                hp.Choice(key, sorted(values))
            elif key in ("plan_index", "seed"):
                hp.Int(key, min(values), max(values))
            else:
                low, high = min(values), max(values)
                hp.Float(key, low, high, sampling="log" if low > 0 else "linear")

    def build(self, hp):
        hparams = hparams_from_hp(hp)
        model = build_classifier(self.specs[hp.get("module")], self.num_classes,
                                 dropout=hparams.dropout, weight_decay=hparams.weight_decay)
        return compile_classifier(model, hparams)


class PlanOracle(kt.Oracle):
    """Hands out a precomputed plan in order; never samples.

    The candidates in RUN/candidates are the record of what is done: an entry with a
    complete candidate (ok or failed) is skipped, even when Keras Tuner's own state is gone;
    an entry without one runs, unless it is running on another tuner right now. A trial that
    was running when its process died comes back first (Keras Tuner's reload queues it for
    retry). Returns STOPPED when the plan is exhausted or more than `max_failures` trials
    have failed.
    """

    def __init__(self, plan: Sequence[PlanEntry], candidates_dir, *, max_failures=1000,
                 seed=0):
        super().__init__(objective=kt.Objective(OBJECTIVE, "min"), max_trials=None,
                         seed=int(seed) + 1, max_consecutive_failed_trials=2 ** 62)
        self.plan = list(plan)
        self.by_id = {e.trial_id: e for e in self.plan}
        self.candidates_dir = os.fspath(candidates_dir)
        self.max_failures = int(max_failures)
        self.stopped_for_failures = False
        self._reissued = set()
        self.verbose = 0  # tune shows its own progress bar

    def populate_space(self, trial_id):
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}

    def failures(self) -> int:
        return sum(1 for e in self.plan
                   if (read_candidate(self.candidates_dir, e.trial_id) or {}).get("status")
                   == "failed")

    def _finish_from_candidate(self, trial, record):
        # The process died after writing the candidate and before telling the oracle.
        if record.get("status") == "ok":
            self.update_trial(trial.trial_id, {OBJECTIVE: record["val"]["ce"],
                                               "val_accuracy": record["val"]["accuracy"]})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
        else:
            trial.status = kt.engine.trial.TrialStatus.FAILED
            trial.message = record.get("reason")
        self.end_trial(trial)

    def _stopped(self, tuner_id):
        self.tuner_ids.discard(tuner_id)
        return kt.engine.trial.Trial(self.get_space(), status=kt.engine.trial.TrialStatus.STOPPED)

    @kt.synchronized
    def create_trial(self, tuner_id):
        status = kt.engine.trial.TrialStatus
        if tuner_id in self.ongoing_trials:
            # The same tuner asks again: it restarted mid-trial (or it is another worker of
            # one multi-worker strategy); it runs that trial.
            return self.ongoing_trials[tuner_id]
        self.tuner_ids.add(tuner_id)
        if self.failures() > self.max_failures:
            self.stopped_for_failures = True
            return self._stopped(tuner_id)
        while self._retry_queue:
            trial = self.trials[self._retry_queue.pop()]
            if trial.trial_id not in self.by_id:
                continue  # from another plan (other budget): not part of this sweep
            record = read_candidate(self.candidates_dir, trial.trial_id)
            if record is not None:
                self.ongoing_trials[tuner_id] = trial
                self._finish_from_candidate(trial, record)
                continue
            trial.status = status.RUNNING
            self.ongoing_trials[tuner_id] = trial
            self.save()
            return trial
        running = {t.trial_id for t in self.ongoing_trials.values()}
        for entry in self.plan:
            if entry.trial_id in running:
                continue
            if read_candidate(self.candidates_dir, entry.trial_id) is not None:
                continue
            known = self.trials.get(entry.trial_id)
            if known is not None:
                # Keras Tuner saw it end, but there is no candidate: it was deleted (to retry
                # it) or could not be written. Hand it out again, once per session, so an
                # error that repeats cannot loop.
                if known.status == status.RUNNING or entry.trial_id in self._reissued:
                    continue
                self._reissued.add(entry.trial_id)
            hps = self.hyperparameters.copy()
            hps.values = hp_values(entry)
            trial = kt.engine.trial.Trial(hyperparameters=hps, trial_id=entry.trial_id,
                                          status=status.RUNNING)
            self._record_values(trial)
            self.ongoing_trials[tuner_id] = trial
            self.trials[trial.trial_id] = trial
            self.start_order.append(trial.trial_id)
            self._save_trial(trial)
            self.save()
            return trial
        return self._stopped(tuner_id)

    def get_state(self):
        state = super().get_state()
        state["plan"] = [e.trial_id for e in self.plan]
        return state

    # Keras Tuner writes its JSON state in place (open "w", then write): a kill in between
    # leaves a file that stops every later resume. Ours go through temp file + rename.
    def save(self):
        atomic_write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        atomic_write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                          trial.get_state())


class FineTuneTuner(kt.Tuner):
    """Runs a plan entry: fine-tune, predict val/test, write the candidate, report val CE.

    Overrides `run_trial` completely, so Keras Tuner keeps no per-epoch checkpoints
    (keras-tuner #172, #288): the candidate folder is the only result of a trial.
    """

    def __init__(self, oracle, hypermodel, *, run: Run, task, specs, profile, keep_weights,
                 strategy=None, progress=None, **kwargs):
        self.run_dir = run
        self.task = task
        self.specs = dict(specs)
        self.profile = _profile(profile)
        self.keep_weights = keep_weights
        self.progress = progress
        self.plan_by_id = {e.trial_id: e for e in hypermodel.plan}
        super().__init__(oracle, hypermodel, distribution_strategy=strategy, **kwargs)

    # Keras Tuner builds the model once per conditional scope at start-up to find the space;
    # ours is declared from the plan, and building would load a hub module for nothing.
    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def save(self):
        # As kt.Tuner.save, atomically (see PlanOracle.save).
        if not self._is_worker():
            self.oracle.save()
        atomic_write_json(self._get_tuner_fname(), self.get_state())

    def reload(self):
        super().reload()
        if not self._is_worker():
            # The saved space is that of the plan at the time; a resumed sweep with a larger
            # budget may bring values outside it (TensorBoard's hparams domains).
            hp = kt.HyperParameters()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.hyperparameters = hp

    def search(self, *fit_args, **fit_kwargs):
        from keras_tuner.src.distribute import utils as dist_utils

        if dist_utils.is_chief_oracle():
            # As keras_tuner's oracle_chief.start_server, but polling every second (it sleeps
            # 20 s) and showing the sweep's progress.
            self.save()
            _serve_oracle(self.oracle, on_poll=self._refresh_progress)
            return
        super().search(*fit_args, **fit_kwargs)

    def _get_tensorboard_dir(self, logdir, trial_id, execution):
        return os.path.join(str(logdir), str(trial_id))

    def _refresh_progress(self):
        if self.progress is not None:
            done = sum(1 for t in self.plan_by_id
                       if read_candidate(self.run_dir.candidates, t) is not None)
            self.progress.n = done
            self.progress.refresh()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self._refresh_progress()

    def _log(self, trial, event, detail=""):
        line = "\t".join([time.strftime("%Y-%m-%dT%H:%M:%S"), socket.gethostname(),
                          str(os.getpid()), str(self.tuner_id), trial, event,
                          detail.replace("\n", " ")[:300]]) + "\n"
        # One append per line: O_APPEND keeps lines whole across processes.
        fd = os.open(os.path.join(self.project_dir, "trials.log"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def run_trial(self, trial, *args, **kwargs):
        entry = self.plan_by_id.get(trial.trial_id)
        if entry is None or hparams_from_hp(trial.hyperparameters) != entry.hparams:
            raise kt.errors.FatalError(
                f"trial {trial.trial_id} from the oracle does not match this process's plan; "
                "start every tuner with the same run directory, --sweep, --budget, --seed, "
                "--profile and --modules")
        record = read_candidate(self.run_dir.candidates, entry.trial_id)
        if record is not None:  # finished by a process that died before reporting it
            return self._report(record)
        callbacks = self._deepcopy_callbacks(kwargs.get("callbacks", []))
        self._configure_tensorboard_dir(callbacks, trial)
        tb_dir = next((c.log_dir for c in callbacks
                       if isinstance(c, keras.callbacks.TensorBoard)), None)
        self._log(entry.trial_id, "start")
        record = run_entry(entry, self.specs[entry.module], self.task, self.run_dir,
                           profile=self.profile, strategy=self.distribution_strategy,
                           keep_weights=self.keep_weights, callbacks=callbacks,
                           tensorboard_dir=tb_dir, build=lambda: self.hypermodel.build(
                               trial.hyperparameters),
                           extra={"tuner_id": self.tuner_id})
        self._log(entry.trial_id, record["status"], record.get("reason") or "")
        return self._report(record)

    @staticmethod
    def _report(record):
        if record["status"] != "ok":
            raise kt.errors.FailedTrialError(record.get("reason") or "failed")
        return {OBJECTIVE: record["val"]["ce"], "val_accuracy": record["val"]["accuracy"]}

    def save_model(self, trial_id, model, step=0):
        pass  # the candidate folder holds the trial's weights

    def load_model(self, trial):
        raise HubensembleError("tune keeps no Keras Tuner checkpoints; rebuild a member with "
                               "build_classifier(...).load_weights(RUN/candidates/<trial>/"
                               f"{WEIGHTS_FILE})")


def _serve_oracle(oracle, *, on_poll=None, poll=1.0):
    import grpc
    from concurrent import futures
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(address) == 0:
        raise HubensembleError(f"the chief cannot listen on {address}; pick a free port or "
                               "an address of this machine")
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll)
            if on_poll is not None:
                on_poll()
    finally:
        server.stop(grace=5)


def run_entry(entry: PlanEntry, spec: ModuleSpec, task, run: Run, *, profile, strategy=None,
              keep_weights="all", callbacks=(), tensorboard_dir=None, build=None,
              extra=None) -> dict:
    """Trains one plan entry and writes its candidate (ok or failed); returns its trial.json.

    `build` (optional) makes the compiled model inside the strategy scope (the tuner passes
    its hypermodel); by default build_classifier + compile_classifier.
    """
    profile = _profile(profile)
    hparams = entry.hparams
    strategy = strategy or tf.distribute.get_strategy()
    has_test = task.test is not None
    record = {"trial": entry.trial_id, "module": entry.module, "handle": spec.handle,
              "hparams": hparams.to_json(), "seed": hparams.seed, "status": "ok",
              "reason": None, "val": None, "test": None, "has_test": has_test,
              "weights": None, "seconds": None, "train_seconds": None,
              "steps": hparams.steps, "profile": profile.name,
              "eval_size": eval_size(task, spec, profile), "plan_index": entry.index,
              "strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
              "host": socket.gethostname(), **(extra or {})}
    start = time.time()
    model = val_probs = test_probs = None
    try:
        keras.backend.clear_session()
        keras.utils.set_random_seed(hparams.seed)
        with strategy.scope():
            if build is not None:
                model = build()
            else:
                model = build_classifier(spec, task.num_classes, dropout=hparams.dropout,
                                         weight_decay=hparams.weight_decay)
                compile_classifier(model, hparams)
        record["module_fingerprint"] = getattr(model.backbone, "fingerprint", None)
        t0, c0 = time.perf_counter(), time.process_time()
        train_classifier(model, task, spec, hparams, profile=profile, callbacks=callbacks)
        record["train_seconds"] = time.perf_counter() - t0
        record["train_cpu_seconds"] = time.process_time() - c0
        val_probs = predict_probs(model, task, "val", spec=spec, profile=profile,
                                  batch_size=hparams.batch_size)
        if not np.isfinite(val_probs).all():
            raise TrialFailed("the validation predictions are not finite")
        record["val"] = probs_metrics(val_probs, task.val.labels)
        if has_test:
            test_probs = predict_probs(model, task, "test", spec=spec, profile=profile,
                                       batch_size=hparams.batch_size)
            if not np.isfinite(test_probs).all():
                raise TrialFailed("the test predictions are not finite")
            record["test"] = probs_metrics(test_probs, task.test.labels)
    except TrialFailed as e:
        record.update(status="failed", reason=str(e))
    except ModuleLoadError as e:
        record.update(status="failed", reason=f"the module cannot load: {e}")
    except (KeyboardInterrupt, kt.errors.FatalError):
        raise
    except Exception as e:  # noqa: BLE001 - any other error fails this trial, not the sweep
        log.exception("trial %s failed", entry.trial_id)
        record.update(status="failed", reason=f"{type(e).__name__}: {_first_line(e)}")
    record["seconds"] = time.time() - start
    if tensorboard_dir and record["status"] == "ok":
        _write_final_scalars(tensorboard_dir, record, hparams.steps)
    ok = record["status"] == "ok"
    if ok and keep_weights == "all":
        record["weights"] = WEIGHTS_FILE
    if not ok:
        record["val"] = record["test"] = None
    if _writes_results(strategy):
        write_candidate(run.candidates, record, val_probs=val_probs if ok else None,
                        test_probs=test_probs if ok else None,
                        model=model if ok and keep_weights == "all" else None)
    return record


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _write_final_scalars(logdir, record, step):
    # The hparams view pairs each trial's hyperparameters with these metrics.
    writer = tf.summary.create_file_writer(os.path.join(logdir, "validation"))
    with writer.as_default():
        tf.summary.scalar(OBJECTIVE, record["val"]["ce"], step=step)
        tf.summary.scalar("val_accuracy", record["val"]["accuracy"], step=step)
    writer.close()


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------

def _profile(profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def _parse_address(address: str) -> tuple[str, str]:
    host, sep, port = str(address).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HubensembleError(f"oracle address {address!r} is not HOST:PORT (e.g. "
                               "10.0.0.2:8000, or 127.0.0.1:8000 on one machine)")
    return host, port


@contextlib.contextmanager
def _kerastuner_env(tuner_id, oracle_address):
    saved = {k: os.environ.get(k) for k in _KT_VARS}
    try:
        if oracle_address:
            host, port = _parse_address(oracle_address)
            os.environ["KERASTUNER_ORACLE_IP"] = host
            os.environ["KERASTUNER_ORACLE_PORT"] = port
        if tuner_id:
            if not _TUNER_ID_RE.fullmatch(str(tuner_id)):
                raise HubensembleError(f"tuner id {tuner_id!r}: use 'chief' for the process "
                                       "that serves the oracle and tuner0, tuner1, … for the "
                                       "workers")
            os.environ["KERASTUNER_TUNER_ID"] = str(tuner_id)
        has_ip = "KERASTUNER_ORACLE_IP" in os.environ
        if has_ip and "KERASTUNER_ORACLE_PORT" not in os.environ:
            raise HubensembleError("KERASTUNER_ORACLE_IP is set but KERASTUNER_ORACLE_PORT is "
                                   "not; pass --oracle HOST:PORT")
        if has_ip and "KERASTUNER_TUNER_ID" not in os.environ:
            raise HubensembleError("a distributed sweep needs --tuner-id (chief on the "
                                   "process serving the oracle, tuner0, tuner1, … elsewhere)")
        if tuner_id and not has_ip:
            raise HubensembleError(f"--tuner-id {tuner_id} needs --oracle HOST:PORT (the "
                                   "chief's address)")
        distributed = has_ip
        chief = distributed and "chief" in os.environ["KERASTUNER_TUNER_ID"]
        yield distributed, chief
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _wait_for_chief(timeout=None, poll=0.25):
    # gRPC backs off exponentially (to minutes) while the chief is not up yet; polling the
    # port ourselves lets a worker start its first trial as soon as the chief listens.
    timeout = CHIEF_TIMEOUT if timeout is None else timeout
    host, port = os.environ["KERASTUNER_ORACLE_IP"], int(os.environ["KERASTUNER_ORACLE_PORT"])
    deadline = time.monotonic() + timeout
    logged = False
    while True:
        try:
            with socket.create_connection((host, port), timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise HubensembleError(
                    f"the chief at {host}:{port} did not answer within {timeout:.0f} s; start "
                    "`hubensemble tune … --tuner-id chief --oracle HOST:PORT` there") from None
            if not logged:
                log.info("waiting for the chief at %s:%s", host, port)
                logged = True
            time.sleep(poll)


@contextlib.contextmanager
def _sweep_lock(run: Run, sweep: str):
    path = run.tuner / f".{sweep}.lock"
    lock = file_lock(str(path), timeout=2.0)
    try:
        lock.__enter__()
    except TimeoutError:
        raise RunError(f"another tune process is running the {sweep!r} sweep of {run.path} "
                       f"({path}); wait for it, or share the sweep with --tuner-id/--oracle "
                       "(see docs/tune.md)") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _load_inputs(run: Run):
    if not run.ranking_json.exists():
        raise RunError(f"{run.ranking_json} is missing; run `hubensemble rank --out "
                       f"{run.path}` first")
    ranking = read_json(run.ranking_json)
    meta = run.meta()
    specs = {name: ModuleSpec.from_json(d) for name, d in (meta.get("modules") or {}).items()}
    data = meta.get("data")
    if not data:
        raise RunError(f"{run.path} has no data recorded; run `hubensemble rank --data SPEC "
                       f"--out {run.path}` first")
    return ranking, specs, data["task"]


def run_tune(run_dir, *, sweep: str = "default", budget: int | None = None,
             modules: Sequence[str] | None = None, strategy: str = "auto",
             tpu: str | None = None, profile: str = "cpu", seed: int = 0,
             keep_weights: str = "all", max_failures: int = 1000,
             tuner_id: str | None = None, oracle_address: str | None = None, task=None,
             progress: bool = True, callbacks=()) -> dict:
    """Fine-tunes a run's modules with a sweep; every trial becomes RUN/candidates/<trial>/.

    Resumable: the same call again skips finished trials and re-runs one that was killed.
    Distributed: ``tuner_id="chief"`` and ``oracle_address="HOST:PORT"`` serve the plan;
    ``tuner_id="tuner0"`` (1, …) with the same address run trials (or the KERASTUNER_*
    variables). `callbacks` are extra Keras callbacks for every trial's fit (deep-copied).
    Returns a summary: sweep, plan size, counts of ok/failed/missing trials, trial ids.
    """
    if keep_weights not in KEEP_WEIGHTS:
        raise HubensembleError(f"keep_weights must be one of {', '.join(KEEP_WEIGHTS)}, got "
                               f"{keep_weights!r}")
    if int(max_failures) < 0:
        raise HubensembleError(f"max_failures must be >= 0, got {max_failures}")
    prof = _profile(profile)
    run = Run(run_dir)
    ranking, specs, task_record = _load_inputs(run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_sweep(ranking, specs, sweep=sweep, task=task_record, profile=prof,
                          budget=budget, modules=modules, seed=seed)
    for w in caught:
        log.warning("%s", w.message)
    check_candidates(run.candidates, plan)
    removed = clean_stale_temps(run.candidates)
    if removed:
        log.info("removed %d half-written candidate(s) of killed runs", len(removed))
    _record_tune(run, sweep=sweep, budget=budget, seed=seed, profile=prof, plan=plan,
                 modules=modules, keep_weights=keep_weights)
    with _kerastuner_env(tuner_id, oracle_address) as (distributed, chief):
        pending = [e for e in plan if read_candidate(run.candidates, e.trial_id) is None]
        if pending and distributed and not chief:
            _wait_for_chief()
        if pending:
            # Workers share the sweep through the chief; a second chief, or a second
            # stand-alone process on the same sweep, would corrupt Keras Tuner's state.
            lock = contextlib.nullcontext() if distributed and not chief else \
                _sweep_lock(run, sweep)
            with lock:
                if not (distributed and not chief):
                    _drop_damaged_tuner_state(run.tuner / sweep)
                _search(run, plan, specs, sweep=sweep, seed=seed, profile=prof,
                        keep_weights=keep_weights, max_failures=max_failures,
                        strategy=strategy, tpu=tpu, chief=chief, task=task,
                        progress=progress, callbacks=callbacks)
    summary = summarize(run, plan, sweep=sweep)
    if summary["missing"] and not distributed_call(tuner_id, oracle_address):
        log.warning("%d planned trial(s) have no candidate (e.g. %s); run tune again",
                    summary["missing"], next(t for t in summary["trials"]
                                             if read_candidate(run.candidates, t) is None))
    if summary["failed"] > max_failures:
        reasons = "; ".join(f"{t}: {r}" for t, r in list(summary["failures"].items())[:3])
        raise RunError(f"{summary['failed']} trials failed, more than --max-failures "
                       f"{max_failures}; the sweep stopped ({reasons}). Fix the cause, then "
                       f"delete the failed candidates' folders in {run.candidates} and run "
                       "tune again")
    return summary


def distributed_call(tuner_id, oracle_address) -> bool:
    """Whether a tune call takes part in a chief/worker sweep (arguments or environment)."""
    return bool(tuner_id or oracle_address or os.environ.get("KERASTUNER_ORACLE_IP"))


def _record_tune(run, *, sweep, budget, seed, profile, plan, modules, keep_weights):
    meta = run.meta()
    tune = dict(meta.get("tune") or {})
    sweeps = dict(tune.get("sweeps") or {})
    entry = {"sweep": sweep, "budget": budget, "seed": int(seed),
             "profile": profile.to_json(), "plan_size": len(plan),
             "modules": sorted({e.module for e in plan}), "requested_modules": modules,
             "keep_weights": keep_weights, "trials": [e.trial_id for e in plan]}
    sweeps[sweep] = entry
    run.update(tune={**entry, "sweeps": sweeps})
    os.makedirs(run.tuner / sweep, exist_ok=True)
    atomic_write_json(run.tuner / sweep / "plan.json", [e.to_json() for e in plan])


def _drop_damaged_tuner_state(project) -> bool:
    """Removes Keras Tuner's JSON state of a sweep when any file of it cannot be read (left
    half-written by a process killed mid-write, before these writes were atomic).

    The candidates are the record of what is done, so nothing finished is lost: Keras Tuner
    starts afresh and the oracle skips every trial that has a candidate. plan.json and
    trials.log stay. Returns whether anything was removed.
    """
    project = os.fspath(project)
    if not os.path.isdir(project):
        return False
    state = [os.path.join(project, n) for n in os.listdir(project)
             if n.endswith(".json") and n != "plan.json" and not is_temp(n)]
    trials = [os.path.join(project, n) for n in os.listdir(project) if n.startswith("trial_")]
    damaged = []
    for path in state + [os.path.join(t, TRIAL_JSON) for t in trials]:
        try:
            read_json(path)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            damaged.append(os.path.relpath(path, project))
    if not damaged:
        return False
    log.warning("Keras Tuner's state in %s is damaged (%s, half-written by a killed process); "
                "starting it afresh: trials with a candidate are not run again", project,
                ", ".join(damaged[:3]))
    for path in state:
        with contextlib.suppress(OSError):
            os.unlink(path)
    for path in trials:
        shutil.rmtree(path, ignore_errors=True)
    return True


def _search(run, plan, specs, *, sweep, seed, profile, keep_weights, max_failures, strategy,
            tpu, chief, task, progress, callbacks):
    if chief:
        tf_strategy, task_obj = None, None  # the chief only serves the plan
        num_classes = 2
    else:
        tf_strategy = get_strategy(strategy, tpu)
        task_obj = run.task(task)
        num_classes = task_obj.num_classes
    bar = None
    if progress:
        from tqdm.auto import tqdm

        done = sum(1 for e in plan if read_candidate(run.candidates, e.trial_id) is not None)
        bar = tqdm(total=len(plan), initial=done, desc=f"tune {sweep}", unit="trial",
                   dynamic_ncols=True)
    directory = run.tuner
    if tf_strategy is not None and not _writes_results(tf_strategy):
        # A non-chief worker of a multi-worker strategy trains in lockstep with its chief but
        # must not write the shared Keras Tuner state.
        task_type = getattr(tf_strategy.cluster_resolver, "task_type", "worker")
        task_id = getattr(tf_strategy.cluster_resolver, "task_id", 0)
        directory = run.tuner / f".tf-{task_type}-{task_id}"
    oracle = PlanOracle(plan, run.candidates, max_failures=max_failures, seed=seed)
    hypermodel = FineTuneHyperModel(specs, num_classes, plan)
    try:
        tuner = FineTuneTuner(
            oracle, hypermodel, run=run, task=task_obj, specs=specs, profile=profile,
            keep_weights=keep_weights,
            strategy=None if _is_default_strategy(tf_strategy) else tf_strategy,
            progress=bar, directory=str(directory), project_name=sweep, overwrite=False)
        tensorboard = TensorBoard(str(run.tuner / "tensorboard"))
        tuner.search(callbacks=[tensorboard, *callbacks], verbose=0)
    finally:
        if bar is not None:
            bar.close()


def summarize(run: Run, plan: Sequence[PlanEntry], *, sweep: str) -> dict:
    """Counts of a plan's candidates: ok, failed, missing; failure reasons; trial ids."""
    ok, failed, missing = [], {}, []
    for e in plan:
        record = read_candidate(run.candidates, e.trial_id)
        if record is None:
            missing.append(e.trial_id)
        elif record["status"] == "ok":
            ok.append(e.trial_id)
        else:
            failed[e.trial_id] = record.get("reason")
    return {"sweep": sweep, "plan_size": len(plan), "ok": len(ok), "failed": len(failed),
            "missing": len(missing), "failures": failed, "trials": [e.trial_id for e in plan],
            "candidates": str(run.candidates)}


def format_summary(summary: dict) -> str:
    """The terminal lines for a sweep summary from run_tune."""
    lines = [f"sweep {summary['sweep']}: {summary['ok']} ok, {summary['failed']} failed, "
             f"{summary['missing']} not run, of {summary['plan_size']} planned; candidates in "
             f"{summary['candidates']}"]
    lines += [f"  failed {trial}: {reason}" for trial, reason in summary["failures"].items()]
    return "\n".join(lines)
