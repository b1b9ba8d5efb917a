"""One trial's training: the fit loop and its callbacks, a member's retraining, the candidate."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from typing import Sequence

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from hubensemble import candidate, options
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, ModuleLoadError, first_line
from hubensemble.hyperrule import HParams
from hubensemble.rundir import Run
from hubensemble.tune.inputs import eval_size, predict_probs, training_dataset
from hubensemble.tune.model import build_classifier, compile_classifier
from hubensemble.tune.plans import PlanEntry, as_profile
from hubensemble.tune.strategies import writes_results

log = logging.getLogger(__name__)

#: The sweep's objective (minimised): a trial's validation cross-entropy, trial.json's
#: val.ce. Also the name of the final TensorBoard scalar.
OBJECTIVE = "val_ce"
#: A trial's steps are run as up to this many Keras epochs, so TensorBoard draws curves.
MAX_CHUNKS = 10
KEEP_WEIGHTS = options.get("keep_weights").choices


class TrialFailed(HubensembleError):
    """A fine-tuning run that cannot give a result (non-finite loss or predictions)."""


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
    trial. `tuner.trial_callbacks` gives it (as any keras.callbacks.TensorBoard) a folder
    per trial, LOG_DIR/<trial>/.
    """

    on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
    on_train_batch_end = keras.callbacks.Callback.on_train_batch_end

    def __init__(self, log_dir, **kwargs):
        kwargs.setdefault("write_graph", False)
        super().__init__(log_dir, update_freq="epoch", profile_batch=0, **kwargs)


def chunks(steps: int, max_chunks: int = MAX_CHUNKS) -> int:
    """How many equal Keras epochs `steps` (>= 1) is split into: its largest divisor
    <= max_chunks (1 for a prime above max_chunks)."""
    for c in range(min(max_chunks, steps), 0, -1):
        if steps % c == 0:
            return c
    return 1


def train_classifier(model: keras.Model, task, spec: ModuleSpec, hparams: HParams, *, profile,
                     splits: Sequence[str] = ("train",), callbacks=(),
                     targets=None) -> keras.Model:
    """Runs exactly ``hparams.steps`` optimizer steps of a compiled classifier on
    `training_dataset` (as `chunks(steps)` equal epochs; `targets` as there) and returns the
    model.

    Raises TrialFailed when the loss becomes NaN or infinite (checked at each epoch's end).
    """
    ds = training_dataset(task, spec, hparams, profile=profile, splits=splits, targets=targets)
    n = chunks(hparams.steps)
    guard = _StopOnNonFinite()
    model.fit(ds, epochs=n, steps_per_epoch=hparams.steps // n, verbose=0, shuffle=False,
              callbacks=[*callbacks, guard])
    if guard.reason:
        raise TrialFailed(guard.reason)
    return model


def fit_member(spec: ModuleSpec, task, hparams: HParams, *, profile, strategy=None,
               splits: Sequence[str] = ("train",), tensorboard_dir: str | None = None,
               callbacks=(), targets=None) -> keras.Model:
    """Builds and fine-tunes one member from its recorded hyperparameters and seed.

    The same code path as a tune trial: `export` uses it to retrain a member whose weights
    were not kept, or on train + val (``splits=("train", "val")``) for ``--retrain-full``;
    `distill` trains a student on a teacher's probabilities (`targets`, see
    `training_dataset`).
    Returns the trained `Classifier` (probabilities [B, C]). Raises TrialFailed on a
    non-finite loss, ModuleLoadError when the module cannot load.
    """
    profile = as_profile(profile)
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
                            callbacks=cbs, targets=targets)


def run_entry(entry: PlanEntry, spec: ModuleSpec, task, run: Run, *, profile, strategy=None,
              keep_weights="all", callbacks=(), tensorboard_dir=None, build=None,
              extra=None) -> dict:
    """Trains one plan entry and writes its candidate (ok or failed); returns its trial.json.

    The record's "val" / "test" are `candidate.split_record` of the float32 probability
    tables that are saved ({"ce": metrics.nll with the one floor metrics.PROB_FLOOR,
    "accuracy"}), so every reader of the candidate computes the same numbers from the files.
    A trial that fails (non-finite loss or predictions, a module that cannot load, any other
    error) is recorded with status "failed" and its reason, and its traceback is logged at
    INFO (RUN/log.txt while `run_tune` runs); KeyboardInterrupt and keras_tuner's
    FatalError propagate. `build` (optional) makes the compiled model inside
    the strategy scope (the tuner passes its hypermodel); by default build_classifier +
    compile_classifier. Only the process that `writes_results` under `strategy` writes.
    """
    if keep_weights not in KEEP_WEIGHTS:
        raise HubensembleError(f"keep_weights must be one of {', '.join(KEEP_WEIGHTS)}, got "
                               f"{keep_weights!r}")
    profile = as_profile(profile)
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
        record["val"] = candidate.split_record(val_probs, task.val.labels)
        if has_test:
            test_probs = predict_probs(model, task, "test", spec=spec, profile=profile,
                                       batch_size=hparams.batch_size)
            if not np.isfinite(test_probs).all():
                raise TrialFailed("the test predictions are not finite")
            record["test"] = candidate.split_record(test_probs, task.test.labels)
    except (KeyboardInterrupt, kt.errors.FatalError):
        raise
    except Exception as e:  # noqa: BLE001 - any other error fails this trial, not the sweep
        if isinstance(e, TrialFailed):
            reason = str(e)
        elif isinstance(e, ModuleLoadError):
            reason = f"the module cannot load: {e}"
        else:
            reason = f"{type(e).__name__}: {error_reason(e)}"
        record.update(status="failed", reason=reason)
        # The traceback goes to the log (RUN/log.txt while tune runs); the terminal gets the
        # tuner's one line per failed trial.
        log.info("trial %s failed: %s", entry.trial_id, reason, exc_info=True)
    record["seconds"] = time.time() - start
    if tensorboard_dir and record["status"] == "ok":
        _write_final_scalars(tensorboard_dir, record, hparams.steps)
    ok = record["status"] == "ok"
    keep = ok and keep_weights == "all"
    if keep:
        record["weights"] = candidate.WEIGHTS_FILE
    if not ok:
        record["val"] = record["test"] = None
    if writes_results(strategy):
        candidate.write_candidate(run.candidates, record,
                                  val_probs=val_probs if ok else None,
                                  test_probs=test_probs if ok else None,
                                  save_weights=model.save_weights if keep else None)
    return record


# Lines of a TensorFlow graph error that locate it but do not say what went wrong.
def error_reason(exc: BaseException) -> str:
    """One line saying why `exc` happened (`errors.first_line`, which also digs the reason
    out of a TensorFlow graph error)."""
    return first_line(exc)


def _write_final_scalars(logdir, record, step):
    # The hparams view pairs each trial's hyperparameters with these metrics.
    writer = tf.summary.create_file_writer(os.path.join(logdir, "validation"))
    with writer.as_default():
        tf.summary.scalar(OBJECTIVE, record["val"]["ce"], step=step)
        tf.summary.scalar("val_accuracy", record["val"]["accuracy"], step=step)
    writer.close()


def finished_candidate(candidates_dir, trial: str) -> candidate.Candidate | None:
    """The trial's candidate when it is `complete` (ok with every file its record names, or
    failed), else None: the trial still has to run (never started, killed, or incomplete).

    The one resume rule of tune: the candidates, not Keras Tuner's state, say what is done.
    """
    found = candidate.read_candidate(candidates_dir, trial)
    return found if found is not None and found.complete else None
