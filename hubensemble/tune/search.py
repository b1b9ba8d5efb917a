"""A sweep's trials run: Keras Tuner's search over a plan (`search`), a probe sweep's head fits
on cached embeddings (`probe_search`), and a damaged Keras Tuner state dropped before a resume
(`drop_damaged_tuner_state`). `tune.stage.run_tune` plans, locks and sums up around them."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys

import keras
from keras_tuner.src.engine import oracle as kt_oracle

from hubensemble.errors import pending_stop
from hubensemble.fileio import is_temp, read_json, tf_path
from hubensemble.stepclock import StepClock
from hubensemble.terminal import counting_note, progress_bar
from hubensemble.threads import training_block
from hubensemble.tune.strategies import check_batch_divides, get_strategy, is_default_strategy
from hubensemble.tune.train import (TensorBoard, chance_reason, finished_candidate,
                                    log_trial_start)
from hubensemble.tune.tuner import (FineTuneHyperModel, FineTuneTuner, MachineStop, PlanOracle,
                                    quiet_keras_tuner, say_failed)

log = logging.getLogger(__name__)


def drop_damaged_tuner_state(project) -> bool:
    """Removes Keras Tuner's JSON state of a sweep when any file of it cannot be read (left
    half-written by a process killed mid-write, before these writes were atomic).

    The candidates are the record of what is done, so nothing finished is lost: Keras Tuner
    starts afresh and the oracle skips every trial that has a candidate. plan.json and
    trials.log stay. Relies on Keras Tuner's layout (oracle.json, <tuner_id>.json,
    trial_<id>/trial.json in the project folder; checked by test_kerastuner_internals.py).
    Returns whether anything was removed.
    """
    project = os.fspath(project)
    if not os.path.isdir(project):
        return False
    names = sorted(os.listdir(project))  # the message's order is not the file system's
    state = [os.path.join(project, n) for n in names
             if n.endswith(".json") and n != "plan.json" and not is_temp(n)]
    trials = [os.path.join(project, n) for n in names if n.startswith("trial_")]
    damaged = []
    for path in state + [os.path.join(t, "trial.json") for t in trials]:
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


def batch_over_data(plan, profile, images: int) -> str | None:
    """Words when the fine-tuning trials of `plan` (PlanEntry list) train in batches of the
    user's (--train-batch-size: `profile`'s batch_size other than its named built-in
    profile's) larger than the `images` training images: every batch then repeats each image
    (about batch / images times, each augmented on its own: `training_dataset` repeats the
    split) and the learning rate scales with the batch (`Profile.with_train_batch`), so it
    trained on with no word; the profile's own batch is named as a choice when the images
    hold it, else said to be over them too. None otherwise: a profile's own batch (BiT's 512
    trains few-shot tasks so, as the paper's rule), a probe sweep (no batches), a custom
    profile."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import option_word
    from hubensemble.text import counted

    named = PROFILES.get(profile.name)
    batch = max((e.hparams.batch_size for e in plan if e.hparams.kind != "probe"), default=0)
    if named is None or batch in (0, named.batch_size) or batch <= images:
        return None
    fits = max(images, 1)
    return (f"the trials train in batches of {batch} "
            f"({option_word('--train-batch-size', 'train_batch_size')}), more than the "
            f"{counted(images, 'training image')}: each batch repeats every image about "
            f"{batch / max(images, 1):.1f} times (each augmented on its own), and the "
            f"learning rate scales with the batch (lr_scale {profile.lr_scale:g}, "
            f"{batch / named.batch_size:g}x profile {profile.name}'s); pass "
            f"{option_word(f'--train-batch-size {fits}', f'train_batch_size={fits}')} or "
            f"less for batches of distinct images (the profile's own"
            + (f": {named.batch_size})" if named.batch_size <= images else
               f", {named.batch_size}, is over them too)"))


def probe_search(run, plan, specs, *, task, profile, keep_weights, cache_dir, progress):
    """Fits the pending probe entries of `plan`, module by module (one embedding pass each)."""
    import gc

    import keras

    from hubensemble.tune.probe import run_probe_entries

    pending = [e for e in plan if finished_candidate(run.candidates, e.trial_id) is None]
    bar = None
    if progress:
        bar = progress_bar(total=len(plan), initial=len(plan) - len(pending),
                           desc="tune probe", unit="trial")

    def done(record):
        if record["status"] != "ok":
            say_failed(bar, record["trial"], record["reason"], run.log)
        if bar is not None:
            bar.update(1)

    def check(probs, labels):
        if not profile.fail_at_chance:
            return None
        return chance_reason(probs, labels, task.num_classes, kind="probe")

    try:
        for module in dict.fromkeys(e.module for e in pending):
            with training_block():  # not in the middle of another thread's trial
                keras.backend.clear_session()
            entries = [e for e in pending if e.module == module]
            for entry in entries:  # a module's probes start together (one embedding pass)
                log_trial_start(entry, len(plan))
            run_probe_entries(entries, specs[module], task,
                              run, profile_name=profile.name, keep_weights=keep_weights,
                              cache_dir=cache_dir, check=check, on_done=done,
                              on_batch=functools.partial(_embedding_note, bar, module))
            gc.collect()
    finally:
        if bar is not None:
            bar.close()


def _embedding_note(bar, module, split, done, total):
    """A probe sweep's note while a module embeds: "MODULE train: 1,200/3,000 images"."""
    counting_note(bar, f"{module} {split}", "images")(done, total)


def sweep_bar(run, plan, sweep, *, chief, progress):
    """(bar, clock) of a sweep's process: its `terminal.progress_bar` of `plan`'s trials (None
    without `progress`), those with a finished candidate in `run` counted done, and the
    `stepclock.StepClock` of the steps of the others (a stop's line names the running trial's
    step), which gives the bar its time left, but a chief's: it runs no step (its workers
    do), so its bar keeps the mean time of the trials its workers finish."""
    pending = [e for e in plan if finished_candidate(run.candidates, e.trial_id) is None]
    clock = StepClock(sum(e.hparams.steps for e in pending))
    bar = progress_bar(total=len(plan), initial=len(plan) - len(pending), desc=f"tune {sweep}",
                       unit="trial", clock=None if chief else clock) if progress else None
    return bar, clock


def search(run, plan, specs, *, sweep, seed, profile, keep_weights, max_failures, strategy,
           tpu, chief, task, progress, callbacks, cache_dir=None):
    """Runs the pending trials of `plan` through Keras Tuner (`FineTuneTuner`, `PlanOracle`),
    resumably: finished candidates are skipped. With `chief`, only serves the plan."""
    if chief:
        tf_strategy, task_obj = None, None  # the chief only serves the plan
        num_classes = 2
    else:
        tf_strategy = get_strategy(strategy, tpu)
        for batch in sorted({e.hparams.batch_size for e in plan}):  # before any trial fails
            check_batch_divides(tf_strategy, batch)
        task_obj = run.task(task)
        num_classes = task_obj.num_classes
        over = batch_over_data(plan, profile, len(task_obj.train))
        if over:
            log.warning("%s", over)
    bar, clock = sweep_bar(run, plan, sweep, chief=chief, progress=progress)
    callbacks = [*callbacks, _StepsOnClock(clock)]
    # Keras Tuner reaches its folder through tf.io.gfile only: the name in TensorFlow's form
    # (fileio.tf_path; under LC_ALL=C PYTHONUTF8=0 a non-ASCII run folder stopped the sweep
    # with "UnicodeEncodeError: … surrogates not allowed"). tune.tuner's own writes there
    # take it back (fileio.native_path).
    directory = tf_path(run.tuner)
    oracle = PlanOracle(plan, run.candidates, max_failures=max_failures, seed=seed)
    hypermodel = FineTuneHyperModel(specs, num_classes, plan)
    try:
        with quiet_keras_tuner(capture_prints=True):  # its "Reloading Tuner from …" line
            tuner = FineTuneTuner(
                oracle, hypermodel, run=run, task=task_obj, specs=specs, profile=profile,
                keep_weights=keep_weights,
                strategy=None if is_default_strategy(tf_strategy) else tf_strategy,
                progress=bar, directory=directory, project_name=sweep, overwrite=False,
                cache_dir=cache_dir)
        tensorboard = TensorBoard(str(run.tuner / "tensorboard"))
        with quiet_keras_tuner():
            tuner.search(callbacks=[tensorboard, *callbacks], verbose=0)
    except MachineStop as e:  # the full disk's own OSError: the command's one line
        raise e.error from e.__cause__
    finally:  # Keras Tuner's lock maps keep every Oracle, and its trials, for good
        for held in (getattr(kt_oracle, "LOCKS", None), getattr(kt_oracle, "THREADS", None)):
            if isinstance(held, dict):  # a Keras Tuner without them: nothing kept there
                held.pop(oracle, None)
        if bar is not None:
            bar.close()
        # No trial runs now (one that failed did not end its training); a stop's own line
        # alone names the trial it cut (stepclock.running_loss), not a later command's.
        stopped = sys.exc_info()[1]
        clock.left_by(stopped if isinstance(stopped, KeyboardInterrupt) else pending_stop())


class _StepsOnClock(keras.callbacks.Callback):
    """Times a trial's steps on the sweep's `terminal.StepClock` (tune's bar's time left): its
    planned steps as its training begins (Keras' ``epochs`` x ``steps``), each step as it ends.
    Deep copies (one per trial: `tune.tuner.trial_callbacks`) share the sweep's clock.
    Reads only what Keras hands its callbacks; ``async_safe`` as `TrialProgress`."""

    async_safe = True

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def __deepcopy__(self, memo):
        return _StepsOnClock(self.clock)

    def on_train_begin(self, logs=None):
        """The trial's steps begin: epochs x steps per epoch of them."""
        params = self.params or {}
        self.clock.begin((params.get("steps") or 0) * (params.get("epochs") or 1))

    def on_train_batch_end(self, batch, logs=None):
        """A step ended."""
        self.clock.step()

    def on_train_end(self, logs=None):
        """The trial's training ended."""
        self.clock.end()

    def steps_done_before(self, steps: int) -> None:
        """The trial starts with its `steps` done (`tune.train.run_entry`: weights a stop
        kept): it only predicts."""
        self.clock.done_before(steps)
