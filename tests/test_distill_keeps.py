"""A Ctrl-C after a distill student's last step keeps its training (`tune.memberkeep`): the
resumed distill only predicts, and writes the student an uninterrupted distill writes."""

import os
import shutil

import numpy as np
import pytest

from hubensemble import candidate, ensemble, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.export import export_ensemble
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.hyperrule import HParams, get_profile
from hubensemble.rundir import DataArgs, Run
from hubensemble.tune.trained import trained_folder
from test_retrain_keeps import _export, _Steps  # noqa: F401 - the SIGINT bar

QUICK = get_profile("quick")
MODULES = ("small", "large")


@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, module_factory, digits):
    """A run of two tuned members (weights kept), both in ensemble.json, exported."""
    specs = {name: ModuleSpec(name=name, handle=module_factory(f"dkeep_{name}", seed=i + 7,
                                                               width=4 * (i + 1)))
             for i, name in enumerate(MODULES)}
    path = tmp_path_factory.mktemp("dkeep") / "run"
    run = Run(path)
    run.attach_task(digits, DataArgs(spec="sklearn:digits"))
    run.update(modules={n: s.to_json() for n, s in specs.items()})
    for i, name in enumerate(MODULES):
        hp = HParams(**QUICK.scale({"lr": 0.5, "steps": 10000, "dropout": 0.0}), seed=40 + i)
        entry = tune.PlanEntry(i, tune.trial_id("default", i, name), name, hp)
        assert tune.run_entry(entry, specs[name], digits, run, profile=QUICK)["status"] == "ok"
    ensemble.run_ensemble(path, budget=2)
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    data["members"] = [{"trial": t, "module": cands[t].module, "hparams": cands[t].hparams,
                        "weight": 0.5, "handle": cands[t].handle, "seed": cands[t].seed}
                       for t in sorted(cands)]
    atomic_write_json(run.ensemble_json, data)
    export_ensemble(path, task=digits, progress=False)
    return path


def _distill(run, monkeypatch, stop=None, **kw):
    """distill of `run` (both starts); (the steps it trained, a stop's line or None)."""
    from hubensemble.distill import run_distill

    return _export(run, None, monkeypatch, stop=stop, call=lambda: run_distill(
        run, student="small", steps_scale=1.0, progress=True, **kw))


def test_a_stop_after_a_students_last_step_keeps_its_training_for_the_resumed_distill(
        run_dir, digits, tmp_path, monkeypatch):
    steps = QUICK.scale({"lr": 0.5, "steps": 10000})["steps"]
    whole = tmp_path / "whole"
    shutil.copytree(run_dir, whole)
    assert _distill(whole, monkeypatch, task=digits) == (2 * steps, None)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    kept = trained_folder(Run(run))
    # A stop during the second start's steps: the first start's training is kept.
    trained, said = _distill(run, monkeypatch, stop=(2, 3), task=digits)
    assert trained == steps + 3
    assert said == ("distill: the student small from the module, at step 3/"
                    f"{steps}, restarts from its start")
    assert sorted(os.listdir(kept)) == ["distill-small.member.json",
                                        "distill-small.member.weights.h5"]
    # Resumed, the first start only predicts; a stop after the second one's last step, while
    # it predicts, keeps it too.
    trained, said = _distill(run, monkeypatch, stop=(1, "end"), task=digits)
    assert trained == steps
    assert said == (f"distill: the student small from the module, its {steps} steps done, "
                    "keeps its trained weights: resumed, it only predicts again")
    assert len(os.listdir(kept)) == 4
    # Resumed: no step trains, and the student is the uninterrupted one's to the bit.
    assert _distill(run, monkeypatch, task=digits) == (0, None)
    ours, theirs = (candidate.read_candidate(Run(r).distill, "distill-small")
                    for r in (run, whole))
    for c in (ours, theirs):
        c.load_probs()
    assert np.array_equal(ours.val_probs, theirs.val_probs)
    assert np.array_equal(ours.test_probs, theirs.test_probs)
    assert ours.record["init_tried"] == theirs.record["init_tried"]
    assert os.listdir(kept) == []  # the student written: nothing is left behind
