"""Export's retrained members: a member retrained with its recorded hyperparameters
(`retrain_member`: export --retrain-full, or a candidate whose weights were not kept), and the
test figures measured again on the retrained members (`test_after_retraining`), each with its
progress on a bar (a step count; "TRIAL: predicting test, 128/200 images" while predicting).
distill's student counts its steps with the same `StepBar`."""

from __future__ import annotations

import logging
import os

import keras

from hubensemble.errors import ModuleLoadError, RunError
from hubensemble.sweepstate import TRAIN_RULE, train_rule
from hubensemble.terminal import progress_bar
from hubensemble.tune.plans import trial_profile

log = logging.getLogger(__name__)


class StepBar(keras.callbacks.Callback):
    """Moves a progress bar (`terminal.progress_bar`, counting steps) by one per training
    step (`on_train_batch_end`)."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        """One step more on the bar."""
        self.bar.update(1)


def at_train_batch(hparams, batch: int | None):
    """`hparams` (an HParams) trained in batches of `batch` images (--train-batch-size: an
    integer >= 1; None or its own batch: `hparams` itself): batch_size `batch` and lr x batch
    / its batch_size, the linear scaling rule (Goyal et al. 2017) tune's --train-batch-size
    scales a profile by (`hyperrule.Profile.with_train_batch`); steps, schedule and the rest
    stay. Used by export --retrain-full and distill's student."""
    import dataclasses

    if batch is None or int(batch) == int(hparams.batch_size):
        return hparams
    return dataclasses.replace(hparams, batch_size=int(batch),
                               lr=float(hparams.lr) * int(batch) / int(hparams.batch_size))


def retrain_member(plan, task, *, strategy, progress, folder, meta, cache_dir=None,
                   train_batch_size: int | None = None) -> str:
    """Retrains a member (`plan`: export's plan of it, its candidate's record, module spec and
    "retrain" / "retrain_full": train, or train + val) with its recorded hyperparameters, its
    steps on a bar when `progress`; returns its weights file (FOLDER/INDEX.weights.h5).
    `train_batch_size` (export --retrain-full's --train-batch-size; None: the recorded batch)
    trains it in batches of that many images, the learning rate scaled (`at_train_batch`).
    Raises RunError when the training fails or its module cannot be loaded. A member whose
    weights were not kept and whose trial was trained by an older training rule
    (`sweepstate.TRAIN_RULE`) is warned of: it is retrained by this version's rule, so its
    predictions may differ slightly from those of the trial the ensemble chose."""
    from hubensemble import tune
    from hubensemble.sweeps import PROBE_HEAD_L2
    from hubensemble.tune.memberkeep import running

    record = plan.record
    hparams = at_train_batch(plan.cand.read_hparams(), train_batch_size)
    # An LP-FT trial's head started from the probe of its recorded L2 strength; a trial from
    # before that was recorded started from PROBE_HEAD_L2's (a zero head ignores it).
    profile = trial_profile(record, meta, plan.meta_path)
    splits = ("train", "val") if plan.how == "retrain_full" else ("train",)
    trial = record.get("trial")
    what = "train + val" if plan.how == "retrain_full" else "train (weights were not kept)"
    if plan.how != "retrain_full" and train_rule(record) < TRAIN_RULE:
        # The same trial again, but by another rule: not the member the ensemble chose to
        # the bit (retrain_full trains on other data anyway, and says so).
        log.warning("export: member %s (trial %r) was trained by an older hubensemble's "
                    "training rule (trial.json train_rule %d; this version trains by rule "
                    "%d) and its weights were not kept: it is retrained by this rule, so its "
                    "predictions may differ slightly from those its validation figures and "
                    "the ensemble's selection were computed from", plan.index, trial,
                    train_rule(record), TRAIN_RULE)
    callbacks, bar = [], None
    if progress:
        bar = progress_bar(total=hparams.steps, desc=f"retrain {trial} on {what}", unit="step")
        # Its phases (loading, an LP-FT head's embedding, the first tracing) and steps, as a
        # tune trial's: the bar stood at 0% through them (minutes for a real backbone).
        callbacks += [StepBar(bar), tune.train.TrialProgress(bar, str(trial))]
    try:
        with running():  # a stop's line says what it lost of this member
            model = tune.fit_member(plan.spec, task, hparams, profile=profile,
                                    strategy=strategy, splits=splits, callbacks=callbacks,
                                    cache_dir=cache_dir, head_l2=record.get("head_l2",
                                                                            PROBE_HEAD_L2),
                                    keep=kept_retraining(plan, train_batch_size))
            path = os.path.join(folder, f"{plan.index}.weights.h5")
            model.save_weights(path)
    except (tune.TrialFailed, ModuleLoadError) as e:
        raise RunError(f"retraining member {plan.index} (trial {trial!r}) failed: {e}") from e
    finally:
        if bar is not None:
            bar.close()
    return path


def kept_retraining(plan, train_batch_size: int | None = None):
    """Where `retrain_member` keeps `plan`'s member's retraining once its steps all ran
    (`tune.memberkeep`): RUN/tuner/trained/TRIAL.HOW ("seeds-0000-m.retrain_full") of the
    run whose run.json is `plan.meta_path`; its key adds --train-batch-size as given (None:
    the recorded batch) to what `memberkeep.member_key` holds. Kept after the export too:
    another export of the same members, settings and data (another --format, --out) loads
    them instead of retraining (minutes to hours for a real backbone); one of other settings
    is removed when looked up, and `tune --restart` of the member's sweep and `fit
    --restart` remove them all."""
    from hubensemble.rundir import Run
    from hubensemble.tune.memberkeep import KeptMember
    from hubensemble.tune.trained import trained_folder

    if plan.meta_path is None:  # a plan made without its run: nowhere to keep it
        return None
    trial = plan.record.get("trial")
    what = "train + val" if plan.how == "retrain_full" else "train"
    return KeptMember(trained_folder(Run(os.path.dirname(os.fspath(plan.meta_path)))),
                      f"{trial}.{plan.how}", f"export: member {plan.index} (trial {trial}) "
                      f"retrained on {what}", {"train_batch_size": train_batch_size})


def test_after_retraining(plans, members, ensemble, task, meta, *, progress=False,
                          batch_size: int | None = None) -> dict:
    """ensemble.json's "test" record ("ensemble", "best_single", "best_single_in_budget")
    measured on the exported `members` (retrained; `plans` theirs, in order, with the weights
    normalised), plus each member's under "members". A best single that is no member was not
    retrained: None. Predicted as tune predicts a candidate's test_probs.npy, on a bar of the
    members when `progress` that says the images of the one predicting ("TRIAL: predicting
    test, 128/200 images": a member of a real backbone took minutes over a large test split,
    under a retraining bar standing at 100%), in batches of `batch_size` images when given
    (--train-batch-size: what fits this machine), else of each member's recorded batch."""
    from hubensemble import tune
    from hubensemble.ensemble import ensemble_probs
    from hubensemble.metrics import metrics

    y, probs = task.test.labels, {}
    bar = progress_bar(total=len(members), desc="export: test retrained members",
                       unit="member", shown=progress)
    try:
        for plan, m in zip(plans, members):
            note = tune.train.TrialProgress(bar, str(m.info["trial"]))
            batch = batch_size or plan.cand.read_hparams().batch_size
            probs[m.info["trial"]] = tune.train.predict_noted(
                m.classifier, task, "test", spec=plan.spec,
                profile=trial_profile(plan.record, meta, plan.meta_path), batch_size=batch,
                callbacks=[note])
            bar.update()
    finally:
        bar.close()
    together = ensemble_probs(list(probs.values()),
                              {i: m.weight for i, m in enumerate(members)})
    test = {"ensemble": metrics(together, y),
            "members": [{"trial": t, **metrics(p, y)} for t, p in probs.items()]}
    for key in ("best_single", "best_single_in_budget"):
        trial = ((ensemble.get("test") or {}).get(key) or {}).get("trial")
        if trial is not None or key == "best_single":
            test[key] = {"trial": trial, **metrics(probs[trial], y)} if trial in probs else None
    return test
