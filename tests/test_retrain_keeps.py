"""A Ctrl-C after a member's last step keeps its training: export --retrain-full's members
(`export.retrain`), and the resumed export only predicts (`tune.memberkeep`)."""

import logging
import os
import shutil
import signal
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from hubensemble import candidate, ensemble, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.export import export_ensemble, read_metadata
from hubensemble.export import retrain
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.hyperrule import HParams, get_profile
from hubensemble.rundir import DataArgs, Run
from hubensemble.stepclock import running_loss
from hubensemble.tune.memberkeep import KeptMember
from hubensemble.tune.trained import trained_folder

QUICK = get_profile("quick")
MODULES = ("gen", "other")


@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def specs(module_factory):
    return {name: ModuleSpec(name=name, handle=module_factory(f"keeps_{name}", seed=i + 1))
            for i, name in enumerate(MODULES)}


def member_hparams(i):
    return HParams(**QUICK.scale({"lr": 0.5, "steps": 10000, "dropout": 0.1}), seed=30 + i)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, specs, digits):
    """A run of two tuned members, both in ensemble.json."""
    path = tmp_path_factory.mktemp("keeps") / "run"
    run = Run(path)
    run.attach_task(digits, DataArgs(spec="sklearn:digits"))
    run.update(modules={n: s.to_json() for n, s in specs.items()})
    for i, name in enumerate(MODULES):
        entry = tune.PlanEntry(i, tune.trial_id("default", i, name), name, member_hparams(i))
        assert tune.run_entry(entry, specs[name], digits, run, profile=QUICK)["status"] == "ok"
    ensemble.run_ensemble(path, budget=2)
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    data["members"] = [{"trial": t, "module": cands[t].module, "hparams": cands[t].hparams,
                        "weight": 0.5, "handle": cands[t].handle, "seed": cands[t].seed}
                       for t in sorted(cands)]
    atomic_write_json(run.ensemble_json, data)
    return path


class _Steps(retrain.StepBar):
    """export's retraining bar (progress=True), counting every member's steps in `counted`
    and sending this process a real SIGINT at `stop`: (member, step) during its steps, or
    (member, "end") once its steps all ran (Keras' on_train_end, before it is written)."""

    counted: list = []
    stop = None
    members = 0

    def on_train_begin(self, logs=None):
        type(self).members += 1
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        type(self).counted.append(1)
        self.steps += 1  # (`batch` counts within a chunk, a Keras epoch)
        if type(self).stop == (type(self).members, self.steps):
            _sigint()

    def on_train_end(self, logs=None):
        if type(self).stop == (type(self).members, "end"):
            _sigint()


def _sigint():
    _Steps.stop = None  # once
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)  # the handler raises in here


def _export(run, out, monkeypatch, stop=None, call=None, **kw):
    """export --retrain-full of `run` to `out` (or `call()`); returns (the steps it trained,
    what a stop's line said of the member it cut, or None when it finished)."""
    monkeypatch.setattr(retrain, "StepBar", _Steps)
    _Steps.counted, _Steps.stop, _Steps.members = [], stop, 0
    interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)  # a command's
    try:
        if call is not None:
            call()
        else:
            export_ensemble(run, out, retrain_full=True, progress=True, **kw)
        said = None
    except KeyboardInterrupt:
        said = running_loss()
        assert said is not None
    finally:
        signal.signal(signal.SIGINT, interrupt)
    return len(_Steps.counted), said


def _served(out, digits):
    model = tf.saved_model.load(str(out))
    images = tf.constant(np.asarray(digits.test.images, np.float32) / 255.0)
    return model.signatures["serving_default"](images=images)["probabilities"].numpy()


def test_a_stop_after_a_members_last_step_keeps_its_retraining_for_the_resumed_export(
        run_dir, digits, tmp_path, monkeypatch, caplog):
    steps = member_hparams(0).steps
    whole = tmp_path / "whole"
    shutil.copytree(run_dir, whole)
    assert _export(whole, tmp_path / "whole-out", monkeypatch, task=digits) == (2 * steps, None)

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    trials = sorted(c.trial for c in candidate.scan(Run(run).candidates)[0])
    kept = trained_folder(Run(run))
    # A stop during the second member's steps: the first one's retraining is kept.
    trained, said = _export(run, tmp_path / "out", monkeypatch, stop=(2, 3), task=digits)
    assert trained == steps + 3
    assert said == (f"export: member 1 (trial {trials[1]}) retrained on train + val, at step "
                    f"3/{steps}, restarts from its start")
    assert sorted(os.listdir(kept)) == [f"{trials[0]}.retrain_full.json",
                                        f"{trials[0]}.retrain_full.weights.h5"]
    # A stop after the second member's last step, before it is written: kept too.
    trained, said = _export(run, tmp_path / "out", monkeypatch, stop=(1, "end"), task=digits)
    assert trained == steps  # the first member only predicts: its training was kept
    assert said == (f"export: member 1 (trial {trials[1]}) retrained on train + val, its "
                    f"{steps} steps done, keeps its trained weights: resumed, it only predicts "
                    "again")
    assert len(os.listdir(kept)) == 4
    # Resumed: no step trains, and the export is the uninterrupted one's to the bit.
    with caplog.at_level(logging.INFO):
        assert _export(run, tmp_path / "out", monkeypatch, task=digits) == (0, None)
    log = "\n".join(r.getMessage() for r in caplog.records)
    for i, trial in enumerate(trials):
        assert (f"export: member {i} (trial {trial}) retrained on train + val: its {steps} "
                "steps ran before a stop; predicting with the weights kept then, not training "
                "again") in log
    assert np.array_equal(_served(tmp_path / "out", digits),
                          _served(tmp_path / "whole-out", digits))
    assert (read_metadata(tmp_path / "out")["metrics"]["test"]
            == read_metadata(tmp_path / "whole-out")["metrics"]["test"])
    # Kept after the export (docs/export.md): another export of the same members reuses them.
    assert len(os.listdir(kept)) == 4
    # Other settings (the batch, so the learning rate) are another training: not reused,
    # and the kept ones of the old settings are replaced.
    assert _export(run, tmp_path / "out8", monkeypatch, task=digits,
                   train_batch_size=8) == (2 * steps, None)
    assert len(os.listdir(kept)) == 4
    assert all(read_json(os.path.join(kept, f"{t}.retrain_full.json"))["key"][
        "train_batch_size"] == 8 for t in trials)


def test_a_kept_member_of_other_data_or_hyperparameters_trains_again(
        specs, digits, tmp_path):
    import dataclasses

    keep = KeptMember(str(tmp_path / "trained"), "m.retrain_full", "member m")
    counted = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counted.append(1)

    def fit(task, hparams):
        counted.clear()
        model = tune.fit_member(specs["gen"], task, hparams, profile=QUICK, keep=keep,
                                callbacks=[Count()], splits=("train", "val"))
        return len(counted), tune.predict_probs(model, digits, "test", spec=specs["gen"],
                                                profile=QUICK, batch_size=64)

    hparams = member_hparams(0)
    trained, probs = fit(digits, hparams)
    assert trained == hparams.steps
    assert fit(digits, hparams)[0] == 0  # the same key: reused
    again, same = fit(digits, hparams)
    assert again == 0 and np.array_equal(same, probs)
    # Other data: the validation split's labels changed (train + val trains on them).
    labels = np.array(digits.val.labels)
    labels[:5] = (labels[:5] + 1) % digits.num_classes
    other = dataclasses.replace(digits, val=dataclasses.replace(digits.val, labels=labels))
    assert other.fingerprint != digits.fingerprint
    assert fit(other, hparams)[0] == hparams.steps
    # Other hyperparameters (the seed), then the original again: each trains.
    assert fit(digits, dataclasses.replace(hparams, seed=31))[0] == hparams.steps
    trained, probs_again = fit(digits, hparams)
    assert trained == hparams.steps and np.array_equal(probs_again, probs)


def test_a_run_tuned_with_keep_weights_none_keeps_no_retraining_after_its_export(
        run_dir, digits, tmp_path, monkeypatch):
    # --keep-weights none: the user chose no weights left in the run; a finished export
    # removes the retrained members it kept for a resume (a stop before the end keeps them).
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    Run(run).update(tune={**(Run(run).meta().get("tune") or {}), "keep_weights": "none"})
    kept = trained_folder(Run(run))
    steps = member_hparams(0).steps
    trained, said = _export(run, tmp_path / "out", monkeypatch, stop=(2, 3), task=digits)
    assert trained == steps + 3 and len(os.listdir(kept)) == 2  # a stop keeps member 0's
    assert _export(run, tmp_path / "out", monkeypatch, task=digits) == (steps, None)
    assert os.listdir(kept) == []
