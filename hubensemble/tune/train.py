"""One trial's training: the fit loop and its callbacks, a member's retraining, the candidate."""

from __future__ import annotations

import json
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

from hubensemble import _tf, candidate, memory, metrics, options
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import (HubensembleError, ModuleLoadError, checks_keywords, first_line,
                                reraise_stop)
from hubensemble.fileio import machine_error
from hubensemble.hyperrule import HParams
from hubensemble.rundir import Run
from hubensemble.sweepstate import TRAIN_RULE
from hubensemble.sweepsummary import finished_candidate  # noqa: F401 - moved there, TF-free
from hubensemble.terminal import bar_note, counting_note
from hubensemble.threads import one_training
from hubensemble.trialterms import trial_terms
from hubensemble.tune.inputs import eval_size, predict_probs, training_dataset
from hubensemble.tune.model import build_classifier, compile_classifier
from hubensemble.tune.plans import PlanEntry, as_profile
from hubensemble.stepclock import training_kept
from hubensemble.tune.strategies import check_batch_divides
from hubensemble.tune.trained import TrainedUnreadable, drop_trained, keep_trained, take_trained

log = logging.getLogger(__name__)

#: The sweep's objective (minimised): a trial's validation cross-entropy, trial.json's
#: val.ce. Also the name of the final TensorBoard scalar.
OBJECTIVE = "val_ce"
#: A trial's steps are run as up to this many Keras epochs, so TensorBoard draws curves.
MAX_CHUNKS = 10
KEEP_WEIGHTS = options.get("keep_weights").choices


class TrialFailed(HubensembleError):
    """A fine-tuning run that cannot give a result (non-finite loss or predictions)."""


#: A trial whose mean training loss over a chunk exceeds this many times its start (the loss
#: on the first batch before training, at least ln C: the uniform prediction a zero head
#: starts from) has exploded and is stopped and failed.
EXPLODE_FACTOR = 3.0


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops training when the loss is NaN or infinite, or its mean over a chunk exceeds
    EXPLODE_FACTOR x max(ln(num_classes), `start`) (checked at each chunk's end, which keeps
    Keras' asynchronous batch dispatch; a divergence wastes at most one chunk)."""

    def __init__(self, num_classes: int, start: float = 0.0):
        super().__init__()
        self.base = max(math.log(max(2, int(num_classes))), float(start))
        self.limit = EXPLODE_FACTOR * self.base
        self.reason = None
        self.checked = 0  # chunks whose end was checked: all of them, and the steps all ran

    def on_epoch_end(self, epoch, logs=None):
        reraise_stop()  # a Ctrl-C / SIGTERM whose exception Python ignored (errors.reraise_stop)
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        step = int(self.model.optimizer.iterations.numpy())
        if not math.isfinite(loss):
            self.reason = f"the training loss became {loss} by step {step}"
        elif loss > self.limit:
            self.reason = (f"the training loss exploded to {loss:.3g} by step {step} (more "
                           f"than {EXPLODE_FACTOR:g} x {self.base:.3g}, where it started; "
                           "lower the learning rate)")
        if self.reason:
            self.model.stop_training = True
        else:
            self.checked += 1


#: The phases a trial says before its steps (`TrialProgress.phase`), each of which took
#: minutes for a real backbone on a CPU under one note "starting": loading its module
#: (build), the LP-FT head's probe (an embedding pass over the training and validation
#: images, counted, then the probe's fit) and the first step's tracing.
PHASES = {"load": "loading the module", "probe": "LP-FT head", "fit_probe":
          "LP-FT head, fitting the probe", "trace": "tracing the first step"}


def say_phase(callbacks, phase: str) -> None:
    """`TrialProgress.phase` ``PHASES[phase]`` of each TrialProgress among `callbacks`
    (none: nothing)."""
    for note in callbacks:
        if isinstance(note, TrialProgress):
            note.phase(PHASES[phase])


def _embedding_notes(callbacks):
    """``on_batch(split, done, total)`` for the LP-FT head's embedding pass: each
    TrialProgress among `callbacks` counts it (`TrialProgress.embedding`); None without
    one."""
    notes = [c.embedding(PHASES["probe"]) for c in callbacks if isinstance(c, TrialProgress)]
    if not notes:
        return None

    def on_batch(split, done, total):
        for note in notes:
            note(split, done, total)

    return on_batch


class TrialProgress(keras.callbacks.Callback):
    """Shows a trial's training in its sweep's progress bar (`terminal.bar_note`): "LABEL:
    step 120/500, loss 0.412" (the steps of the whole trial across its chunks, and the
    training loss Keras reports: its mean over the chunk so far), then "LABEL: predicting
    val, 128/200 images" (`predicting`, then its predict's batches), where the bar's count moved
    only when a trial ended (5-10 minutes for a real backbone on a CPU). Reads only what Keras
    hands its callbacks: the trial's training is the same with it as without (its weights to
    the bit). ``async_safe``: Keras runs its batch hook in its thread pool as it does for its
    default callbacks, so the training loop does not wait for it.

    bar: a `terminal.progress_bar` (or None: nothing); label: what the note starts with
    ("trial 3/8 MODULE")."""

    async_safe = True

    def __init__(self, bar, label: str):
        super().__init__()
        self.bar, self.label = bar, label
        self._epoch = self._step = self._predicted = 0
        self._predicting = None

    def on_epoch_begin(self, epoch, logs=None):
        """Keeps the chunk (Keras epoch) that starts: the trial's step is counted across them."""
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        """The note "LABEL: step S/TOTAL, loss L" after the step that ended (`batch`: its index
        in the chunk; `logs["loss"]`: the chunk's mean loss so far)."""
        params = self.params or {}
        per, epochs = params.get("steps") or 0, params.get("epochs") or 1
        step = self._epoch * per + int(batch) + 1
        if step <= self._step:  # Keras' threads may finish batches out of order
            return
        self._step = step
        loss = (logs or {}).get("loss")
        loss = f", loss {float(loss):.3f}" if loss is not None else ""
        bar_note(self.bar, f"{self.label}: step {step}/{per * epochs}{loss}")

    def phase(self, text: str) -> None:
        """Says "LABEL: TEXT", the phase of the trial that starts (`PHASES`), drawn at once
        (`terminal.bar_note`'s ``at_once``): what follows can say nothing for minutes."""
        bar_note(self.bar, f"{self.label}: {text}", at_once=True)

    def embedding(self, what: str):
        """A function ``on_batch(split, done, total)`` that says "LABEL: WHAT, embedding
        SPLIT: DONE/TOTAL images" (`terminal.counting_note`, rank's count): an embedding pass
        of the trial's module, as the LP-FT head's probe (`init_head`)."""
        return lambda split, done, total: counting_note(
            self.bar, f"{self.label}: {what}, embedding {split}", "images")(done, total)

    def predicting(self, split: str, images: int, batch_size: int) -> None:
        """Says that the trial's model now predicts `split` (`images` of them, `batch_size`
        a batch): the predict's batches (`on_predict_batch_end`) count them."""
        self._predicting, self._predicted = (split, int(images), int(batch_size)), 0
        bar_note(self.bar, f"{self.label}: predicting {split}")

    def on_predict_batch_end(self, batch, logs=None):
        """The note "LABEL: predicting SPLIT, DONE/TOTAL images" after a batch (`batch`: its
        index) of the split `predicting` named."""
        if self._predicting is None:
            return
        split, total, size = self._predicting
        done = min(total, (int(batch) + 1) * size)
        if done <= self._predicted:  # Keras' threads may finish batches out of order
            return
        self._predicted = done
        bar_note(self.bar, f"{self.label}: predicting {split}, {done:,}/{total:,} images")


def trial_label(entry: PlanEntry, plan_size: int) -> str:
    """"trial 3/8 MODULE": how the sweep's terminal names a plan entry (its position in a plan
    of `plan_size` entries, 1-based, and its module), its progress bar's note's start."""
    return f"trial {entry.index + 1}/{plan_size} {entry.module}"


def log_trial_start(entry: PlanEntry, plan_size: int) -> None:
    """Logs at INFO (RUN/log.txt while `run_tune` runs) "trial 3/8 MODULE starts: TRIAL
    (lr=0.003, steps=500, ..., augmentation={...})": `trial_label`, the trial id, and every
    field of its HParams.to_json in order, as JSON, but mixup_alpha the one it trains with
    (`HParams.effective_mixup_alpha`: an augmentation family's own replaces the field, which
    trial.json keeps; the log said mixup_alpha=0.0 beside the family's 0.126, a new user's
    check). The ends and failures were logged alone, so the log of a killed sweep did not
    say which trial was running, or with what. A probe's in its own terms
    (`trialterms.trial_terms`: "kind="probe", l2_strength=0.001, lbfgs_max_iterations=1000"),
    where "lr=0.0, steps=1000, momentum=0.0" read as a fine-tune that never moved."""
    fields = {**entry.hparams.to_json(), "mixup_alpha": entry.hparams.effective_mixup_alpha}
    probe = fields.get("kind") == "probe"
    fields = trial_terms(fields)
    words = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in fields.items())
    if probe:
        words += "; a logistic regression on the module's frozen embeddings"
    log.info("%s starts: %s (%s)", trial_label(entry, plan_size), entry.trial_id, words)


#: What a candidate at chance suggests, by its kind: a fine-tune's learning rate; a probe has
#: none (it is fitted to convergence), so its module's embeddings or the validation size.
CHANCE_HINTS = {"finetune": "a learning rate too high for this module?",
                "probe": "this module's embeddings do not separate these classes, or the "
                         "validation split is too small to show it"}


def chance_reason(probs, labels, num_classes: int, kind: str = "finetune") -> str | None:
    """Why a candidate of `kind` ("finetune" or "probe") is at chance on validation
    (`metrics.at_chance`: no better than the best constant prediction on accuracy and on
    cross-entropy), with CHANCE_HINTS[kind], or None when it is not.
    probs: float [N, C] validation probabilities; labels: int [N]."""
    why = metrics.at_chance(probs, labels, num_classes)
    return why and f"at chance on validation: {why}; {CHANCE_HINTS[kind]}"


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
                     targets=None, on_trained=None) -> keras.Model:
    """Runs exactly ``hparams.steps`` optimizer steps of a compiled classifier on
    `training_dataset` (as `chunks(steps)` equal epochs; `targets` as there) and returns the
    model. `on_trained()` (optional) is called once every step ran and every chunk's loss
    was checked, also when a Ctrl-C / SIGTERM then stops the fit before it returns (a
    callback's ``on_train_end``): the weights are the trained ones (`run_entry` keeps them).

    Raises TrialFailed when the loss becomes NaN or infinite or explodes (a chunk's mean
    above EXPLODE_FACTOR x ln C; checked at each epoch's end).
    """
    say_phase(callbacks, "trace")  # the dataset, the start loss, fit's first trace
    ds = training_dataset(task, spec, hparams, profile=profile, splits=splits, targets=targets)
    n = chunks(hparams.steps)
    guard = _DivergenceGuard(task.num_classes, start=_start_loss(model, ds))
    _build_optimizer(model)
    # a model per trial: each traced once, its custom gradients released after
    try:
        with _tf.retracing_notice_at_info(), _tf.released_custom_gradients():
            model.fit(ds, epochs=n, steps_per_epoch=hparams.steps // n, verbose=0,
                      shuffle=False, callbacks=[*callbacks, guard])
    except BaseException:  # a stop, or a stop come out as another error (reraise_stop)
        if on_trained is not None and guard.checked == n:
            on_trained()  # stopped after the last chunk's check: its training is whole
        raise
    if guard.reason:
        raise TrialFailed(guard.reason)
    if on_trained is not None:
        on_trained()
    return model


def _build_optimizer(model: keras.Model) -> None:
    """Creates the optimizer's slot variables (momentum) before `fit`, in the model's
    distribution strategy. Without a strategy Keras 3 leaves them to the first trace of its
    train step, and a tf.function that creates variables is traced twice (once to create,
    once without), the second costing as much as the first, in every trial. The model is
    built by now (`_start_loss` or the head initialisation ran it)."""
    if model.optimizer.built or not model.built:
        return
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)


def _start_loss(model, ds) -> float:
    """The mean cross-entropy of the untrained model on the first training batch (inference
    mode): where the loss starts, the divergence guard's reference (0 when not finite or
    when the model cannot run: training then fails with the reason)."""
    # Its own iterator (about 0.1 s of CPU a trial: tf.data's graph rewrite, the buffers),
    # not fit's: Keras 3's fit takes a Dataset and makes its iterator itself (TFEpochIterator,
    # through the strategy), so batch 0 cannot be handed back to it; from_tensors(batch 0)
    # .concatenate(ds.skip(1)) would put a batch in fit's graph and still make batch 0 again.
    try:
        x, y = next(iter(ds.take(1)))
        probs = model(x, training=False)
        loss = float(keras.ops.mean(keras.losses.categorical_crossentropy(y, probs)))
    except Exception:  # noqa: BLE001 - the fit itself reports what is wrong
        return 0.0
    return loss if math.isfinite(loss) else 0.0


@checks_keywords
@one_training
def fit_member(spec: ModuleSpec, task, hparams: HParams, *, profile, strategy=None,
               splits: Sequence[str] = ("train",), tensorboard_dir: str | None = None,
               callbacks=(), cache_dir=None, targets=None,
               head_l2: float | None = None, keep=None) -> keras.Model:
    """Builds and fine-tunes one member from its recorded hyperparameters and seed.

    The same code path as a tune trial: `export` uses it to retrain a member whose weights
    were not kept, or on train + val (``splits=("train", "val")``) for ``--retrain-full``;
    `distill` trains a student on a teacher's probabilities (`targets`, see
    `training_dataset`). A probe (hparams.kind "probe") is refitted on the embeddings of
    `splits` instead (`probe.fit_probe_member`; it takes no `targets`: HubensembleError).
    An LP-FT head (hparams.head_init "probe") starts from the probe of L2 strength `head_l2`
    (the trial's recorded "head_l2"; None: picked on validation, see `init_head`).
    With `keep` (a `memberkeep.KeptMember`; export's and distill's) a fine-tune's training
    is written there as its steps all ran (`memberkeep.keep_member`), and one kept there of
    the same key (`memberkeep.member_key`) is loaded instead of training (only predicting
    is left: `memberkeep.take_member`); a stop's line names the member's step. A probe's
    refit (seconds, from the embedding cache) is not kept.
    Returns the trained `Classifier` (probabilities [B, C]). Raises TrialFailed on a
    non-finite or exploding loss, ModuleLoadError when the module cannot load,
    HubensembleError for a training batch that does not divide among the strategy's replicas
    (`strategies.check_batch_divides`); before any work, TypeError naming the argument for a
    `spec` that is no ModuleSpec, a `task` no Task or an `hparams` no HParams (`text.typed`:
    each was an AttributeError deep inside, hparams=None at "hparams.kind"), naming the call
    that reads a trial's (`candidate.read_candidate(…).read_hparams()`).
    """
    from hubensemble.data.task import Task
    from hubensemble.text import typed

    typed("fit_member", "spec", spec, ModuleSpec, "a ModuleSpec (a catalogue entry)",
          example="hubensemble.load_catalogue(PATH)[0]")  # as build_classifier says it
    typed("fit_member", "task", task, Task, "a Task", example="hubensemble.load_task(SPEC)")
    # Named as a Python caller reaches them: neither HParams nor Candidate is in
    # `hubensemble.__all__`, their modules are importable.
    typed("fit_member", "hparams", hparams, HParams,
          "a trial's hyperparameters (hubensemble.hyperrule.HParams)",
          example="hubensemble.candidate.read_candidate('RUN/candidates', "
                  "'TRIAL').read_hparams()")
    profile = as_profile(profile)
    strategy = strategy or tf.distribute.get_strategy()
    if hparams.kind != "probe":  # before the module loads (export --retrain-full, distill)
        # Its callers (export's retraining, distill) take a Strategy, not a name.
        check_batch_divides(strategy, hparams.batch_size, by_name=False)
    keras.backend.clear_session()
    keras.utils.set_random_seed(hparams.seed)
    if hparams.kind == "probe":
        from hubensemble.tune.probe import fit_probe_member

        if targets is not None:
            raise HubensembleError("a probe is fitted on labels, not on a teacher's "
                                   "probabilities: distil into a fine-tuning student")

        with strategy.scope():
            return fit_probe_member(spec, task, hparams, splits=splits, cache_dir=cache_dir)
    model = _trial_model(spec, task, hparams, strategy, None, callbacks)
    key, cbs = None, list(callbacks)
    if keep is not None:
        from hubensemble.tune import memberkeep

        key = memberkeep.member_key(keep, spec, task, hparams, profile=profile, splits=splits,
                                    head_l2=head_l2, model=model, strategy=strategy)
        try:
            if memberkeep.take_member(keep, key, model, hparams.steps, callbacks):
                return model
        except TrainedUnreadable as e:  # the model may hold part of them: built again
            log.info("%s: %s; it trains again", keep.what, e)
            model = _trial_model(spec, task, hparams, strategy, None, callbacks)
        cbs.insert(0, memberkeep.MemberClock(keep))  # first: each step counted before any
        # other callback sees it (a stop there is after that step)
    with strategy.scope():
        init_head(model, spec, task, hparams, profile=profile, splits=splits,
                  head_l2=head_l2, cache_dir=cache_dir, callbacks=callbacks)
    if tensorboard_dir:
        cbs.append(TensorBoard(tensorboard_dir))
    kept = None if keep is None else (lambda: memberkeep.keep_member(keep, key, model))
    return train_classifier(model, task, spec, hparams, profile=profile, splits=splits,
                            callbacks=cbs, targets=targets, on_trained=kept)


def init_head(model, spec: ModuleSpec, task, hparams: HParams, *, profile,
              splits: Sequence[str] = ("train",), head_l2: float | None = None,
              cache_dir=None, callbacks=()) -> dict | None:
    """Starts the head as hparams.head_init says: "zero" leaves the zero head (paper A.1);
    "probe" (LP-FT, Kumar et al. 2022) sets it to a logistic-regression probe fitted on the
    frozen module's embeddings of `splits` at the trial's evaluation size (the resolution rank
    embedded at: read from the embedding cache), its L2 strength `head_l2`, or with None the
    one of sweeps.PROBE_L2 with the lowest validation cross-entropy (`probe.head_from_probe`).
    A `TrialProgress` among `callbacks` says the probe's embedding pass, its images
    counted, then its fit ("LABEL: LP-FT head, embedding train: 1,200/3,000 images").
    Returns {"head_init_seconds", "head_l2"} for the record, or None for a zero head."""
    if hparams.head_init != "probe":
        return None
    from hubensemble.tune.model import set_head
    from hubensemble.tune.probe import head_from_probe

    start = time.perf_counter()
    say_phase(callbacks, "probe")
    kernel, bias, l2 = head_from_probe(spec, task, resolution=eval_size(task, spec, profile),
                                       splits=tuple(splits), l2=head_l2, cache_dir=cache_dir,
                                       on_batch=_embedding_notes(callbacks),
                                       on_fit=lambda: say_phase(callbacks, "fit_probe"))
    set_head(model, kernel, bias)
    return {"head_init_seconds": time.perf_counter() - start, "head_l2": l2}


@one_training
def run_entry(entry: PlanEntry, spec: ModuleSpec, task, run: Run, *, profile, strategy=None,
              keep_weights="all", callbacks=(), tensorboard_dir=None, build=None,
              extra=None, cache_dir=None) -> dict:
    """Trains one plan entry and writes its candidate (ok or failed); returns its trial.json.

    A Ctrl-C / SIGTERM once every step ran (predicting, writing the candidate) keeps the
    trained weights (`trained.keep_trained`): the trial run again loads them and only
    predicts (`trained.take_trained`; the candidate is the one an uninterrupted run writes,
    its "train_seconds" the training's); a stop during the steps loses them (docs/tune.md).

    More of the record: `_run_entry`."""
    state = {}
    try:
        record = _run_entry(entry, spec, task, run, profile=profile, strategy=strategy,
                            keep_weights=keep_weights, callbacks=callbacks,
                            tensorboard_dir=tensorboard_dir, build=build, extra=extra,
                            cache_dir=cache_dir, state=state)
    except KeyboardInterrupt:
        if state.get("trained"):  # the stop's line says whether they were kept
            training_kept(keep_trained(run, state["record"], task, state["model"]) is not None)
        raise
    drop_trained(run, entry.trial_id)  # written: its candidate holds what they were for
    return record


def _run_entry(entry, spec, task, run, *, profile, strategy, keep_weights, callbacks,
               tensorboard_dir, build, extra, cache_dir, state) -> dict:
    """`run_entry`'s trial; `state` gets "record" and "model" as they are made, and "trained"
    (True) once every step ran (or the kept weights were loaded).

    The record's "val" / "test" are `candidate.split_record` of the float32 probability
    tables that are saved ({"ce": metrics.nll with the one floor metrics.PROB_FLOOR,
    "accuracy"}), so every reader of the candidate computes the same numbers from the files.
    A trial that fails (non-finite or exploding loss, non-finite predictions, validation
    predictions at chance (`chance_reason`), a module that cannot load, any other error) is
    recorded with status "failed" and its reason, and its traceback is logged at
    INFO (RUN/log.txt while `run_tune` runs); KeyboardInterrupt and keras_tuner's
    FatalError propagate, and so does a write or read the machine refused (a full disk, a
    file in the way: `fileio.machine_error`, raised as that OSError), which would otherwise
    be recorded as the trial's failure and never run again once space is freed. `build`
    (optional) makes the compiled model inside the strategy scope (the tuner passes its
    hypermodel); by default build_classifier + compile_classifier. The head then starts as
    hparams.head_init says (`init_head`; LP-FT reads the training embeddings from the cache
    in `cache_dir`). The record also has "batchnorm" (the HubLayer's policy) and
    "batchnorm_evidence" (the variable that showed BatchNorm, or None).
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
              "host": socket.gethostname(), "train_rule": TRAIN_RULE, **(extra or {})}
    state["record"] = record
    start = time.time()
    model = val_probs = test_probs = None
    try:
        model = state["model"] = _trial_model(spec, task, hparams, strategy, build, callbacks)
        record["module_fingerprint"] = getattr(model.backbone, "fingerprint", None)
        record["batchnorm"] = getattr(model.backbone, "batchnorm", None)
        record["batchnorm_evidence"] = getattr(model.backbone, "batchnorm_evidence", None)
        try:
            kept = take_trained(run, record, task, model)
        except TrainedUnreadable as e:  # the model may hold part of them: built again
            log.info("trial %s: %s; it trains again", entry.trial_id, e)
            kept = None
            model = state["model"] = _trial_model(spec, task, hparams, strategy, build,
                                                  callbacks)
        if kept is not None:  # a stop came after its last step: it only predicts
            record.update(kept)
            state["trained"] = True
            log.info("trial %s: its %d steps ran before a stop; predicting with their "
                     "weights, not training again", entry.trial_id, hparams.steps)
            for note in callbacks:
                if hasattr(note, "steps_done_before"):  # the sweep's clock (tune.search)
                    note.steps_done_before(hparams.steps)
        else:
            with strategy.scope():
                record.update(init_head(model, spec, task, hparams, profile=profile,
                                        cache_dir=cache_dir, callbacks=callbacks) or {})
            t0, c0 = time.perf_counter(), time.process_time()

            def trained():  # every step ran: kept if a stop now cuts the trial
                record["train_seconds"] = time.perf_counter() - t0
                record["train_cpu_seconds"] = time.process_time() - c0
                state["trained"] = True

            train_classifier(model, task, spec, hparams, profile=profile, callbacks=callbacks,
                             on_trained=trained)
        val_probs = predict_noted(model, task, "val", spec=spec, profile=profile,
                                  batch_size=hparams.batch_size, callbacks=callbacks)
        if not np.isfinite(val_probs).all():
            raise TrialFailed("the validation predictions are not finite")
        record["val"] = candidate.split_record(val_probs, task.val.labels)
        why = (chance_reason(val_probs, task.val.labels, task.num_classes)
               if profile.fail_at_chance else None)
        if why:
            raise TrialFailed(why)
        if has_test:
            test_probs = predict_noted(model, task, "test", spec=spec, profile=profile,
                                       batch_size=hparams.batch_size, callbacks=callbacks)
            if not np.isfinite(test_probs).all():
                raise TrialFailed("the test predictions are not finite")
            record["test"] = candidate.split_record(test_probs, task.test.labels)
    except (KeyboardInterrupt, kt.errors.FatalError):
        raise
    except Exception as e:  # noqa: BLE001 - any other error fails this trial, not the sweep
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        disk = machine_error(e)  # a full disk is no result of the trial: it runs again
        if disk is e:
            raise
        if disk is not None:
            raise disk from e
        reason = trial_failure_reason(e, int(hparams.batch_size), spec.input_size, profile)
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
    candidate.write_candidate(run.candidates, record, val_probs=val_probs if ok else None,
                              test_probs=test_probs if ok else None,
                              save_weights=model.save_weights if keep else None)
    return record


def _trial_model(spec, task, hparams, strategy, build, callbacks):
    """A trial's compiled classifier, its module loaded, from the trial's seed: `build()`
    (the tuner's hypermodel) in `strategy`'s scope, or build_classifier + compile_classifier."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(hparams.seed)
    say_phase(callbacks, "load")
    with strategy.scope():
        if build is not None:
            return build()
        model = build_classifier(spec, task.num_classes, dropout=hparams.dropout,
                                 weight_decay=hparams.weight_decay, batchnorm=hparams.batchnorm)
        compile_classifier(model, hparams)
        return model


def predict_noted(model, task, split, *, spec, profile, batch_size, callbacks):
    """`predict_probs` of a trained model (a trial's; a member retrained by export; distill's
    student), its progress said by the `TrialProgress` among `callbacks` ("LABEL: predicting
    SPLIT, 128/200 images" on its bar; only they see the predict: the others are the
    training's): float32 [N, C] in the split's order. Errors as `predict_probs`'."""
    notes = [c for c in callbacks if isinstance(c, TrialProgress)]
    for note in notes:
        note.predicting(split, len(task.split(split)), batch_size)
    return predict_probs(model, task, split, spec=spec, profile=profile, batch_size=batch_size,
                         callbacks=notes)


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


def trial_failure_reason(exc: BaseException, batch: int, input_size, profile) -> str:
    """The reason a failed trial's record gives for `exc` (one line): a TrialFailed's own
    words; memory's (`memory.ran_out`, its cause chain too) with the batch that fits
    (`memory.training_out_of_memory`, as distill's student says it) before a load failure's,
    as a module that runs out of memory while it loads is no broken module (its
    ModuleLoadError said "the module cannot load: …", without the way on); "the module
    cannot load: …"; else the error's class and one-line reason. `batch`: the trial's
    images per step; `input_size`: the module's fixed input size or None."""
    if isinstance(exc, TrialFailed):
        return str(exc)
    if memory.ran_out(exc):
        return (f"out of memory training in batches of {batch} images "
                f"({type(exc).__name__}: {error_reason(exc)}): "
                + memory.training_out_of_memory(batch, input_size, profile))
    if isinstance(exc, ModuleLoadError):
        return f"the module cannot load: {exc}"
    return f"{type(exc).__name__}: {error_reason(exc)}"
