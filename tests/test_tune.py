"""Tune: plans, schedule, decay to init, sweeps into candidates, resume, failures, distribution."""

import contextlib
import errno
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest

from conftest import bounded_by_cpu
from hubensemble import candidate, ensemble, hyperrule, metrics, sweeps, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.errors import HubensembleError, RunError
from hubensemble.fileio import atomic_write_json
from hubensemble.lockwords import command_line
from hubensemble.hub import write_hub_module
from hubensemble.hyperrule import HParams, Profile, get_profile
from hubensemble.rundir import DataArgs, Run
from hubensemble.terminal import progress_bar

WORKER = str(Path(__file__).with_name("tune_worker.py"))
QUICK = get_profile("quick")
CONTRACT_KEYS = {"trial", "module", "handle", "hparams", "seed", "status", "reason", "val",
                 "test", "has_test", "weights", "seconds", "steps", "profile"}
# A profile whose trials train long enough (60 steps) to be killed in the middle.
SLOW = Profile(name="slowtest", step_scale=0.002, batch_size=16, min_steps=60, max_steps=60,
               resolution_cap=32, momentum=0.9, lr_scale=QUICK.lr_scale, fail_at_chance=False)


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def modules(module_factory, tmp_path_factory):
    """name -> (ModuleSpec, kNN score): two close modules, one far, a NaN one, a missing one."""
    nan_path = tmp_path_factory.mktemp("nanmod") / "nan"
    inp = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
    write_hub_module(keras.Model(inp, x), str(nan_path))
    gone = tmp_path_factory.mktemp("gone") / "module_that_was_deleted"
    # A module whose forward pass raises (an assertion that never holds): a trial error that
    # is neither a divergence nor a load failure.
    raising_path = tmp_path_factory.mktemp("raising") / "raising"
    inp = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Lambda(_refuse)(x)
    write_hub_module(keras.Model(inp, x), str(raising_path))
    return {
        "gen_a": (ModuleSpec(name="gen_a", handle=module_factory("gen_a", seed=1),
                             family="generalist"), 0.90),
        "exp_b": (ModuleSpec(name="exp_b", handle=module_factory("exp_b", seed=2),
                             family="expert"), 0.89),
        "exp_c": (ModuleSpec(name="exp_c", handle=module_factory("exp_c", seed=3),
                             family="expert"), 0.70),
        "nan_mod": (ModuleSpec(name="nan_mod", handle=str(nan_path), family="expert"), 0.70),
        "gone": (ModuleSpec(name="gone", handle=str(gone), family="expert"), 0.70),
        "raising": (ModuleSpec(name="raising", handle=str(raising_path), family="expert"),
                    0.70),
    }


@pytest.fixture(scope="module")
def seeds_run(modules, digits, tmp_path_factory):
    """A run (`make_run`) after `run_tune(sweep="seeds", budget=1, profile="quick",
    strategy="cpu")`: its one candidate seeds-0000-gen_a, trained once for the tests that
    start there. Nothing in the folder names the folder: a copy (`copy_of`) is what the same
    call leaves in another. Never changed: tests change their copy."""
    run = make_run(tmp_path_factory.mktemp("seeds-run") / "run", modules, task=digits)
    tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                  task=digits, progress=False)
    return run.path


def copy_of(folder, path):
    """A copy at `path` of the run folder `folder` (a module fixture's): its Run."""
    shutil.copytree(folder, path)
    return Run(path)


def _refuse(t):
    import tensorflow as tf

    check = tf.debugging.assert_less(tf.reduce_max(t), -1e9, message="this module refuses")
    with tf.control_dependencies([check]):
        return tf.identity(t)


def ranking_of(modules, names, selected):
    rows = sorted(({"name": n, "handle": modules[n][0].handle, "status": "ok",
                    "score": modules[n][1]} for n in names), key=lambda r: -r["score"])
    return {"metric": "knn", "k": len(selected), "modules": rows, "selected": list(selected),
            "selection": {"method": "top-k"}}


def make_run(path, modules, *, names=("gen_a", "exp_b", "exp_c"), selected=("gen_a", "exp_b"),
             synthetic=None, task=None):
    """A run directory as the rank stage leaves it: run.json data + modules, ranking.json."""
    run = Run(path)
    args = DataArgs(spec="sklearn:digits", synthetic=synthetic)
    run.attach_task(task if task is not None else args.load(), args)
    run.update(modules={n: modules[n][0].to_json() for n in names})
    atomic_write_json(run.ranking_json, ranking_of(modules, names, selected))
    return run


def equal_scores_run(path, modules, names, task):
    """A run of `names`, all selected with equal kNN scores: the combined sweep keeps every
    one of them."""
    run = make_run(path, modules, names=names, selected=names, task=task)
    ranking = json.loads(run.ranking_json.read_text())
    for row in ranking["modules"]:
        row["score"] = 0.7
    atomic_write_json(run.ranking_json, ranking)
    return run


def candidates(run):
    out = {}
    for d in sorted(os.listdir(run.candidates)):
        assert not d.startswith(".tmp-"), d
        out[d] = json.loads((run.candidates / d / "trial.json").read_text())
    return out


def trial_log(run, sweep):
    path = run.tuner / sweep / "trials.log"
    return [line.split("\t") for line in path.read_text().splitlines()] if path.exists() else []


def starts(run, sweep):
    counts = {}
    for row in trial_log(run, sweep):
        if row[5] == "start":
            counts[row[4]] = counts.get(row[4], 0) + 1
    return counts


def no_tuner_checkpoints(run):
    bad = [str(p) for p in run.tuner.rglob("*")
           if p.is_file() and ("checkpoint" in p.name or p.suffix in (".h5", ".keras"))]
    assert bad == []


def paper_lr(step, total, base):
    """The paper's schedule from its definition (A.1.1), written independently of hyperrule."""
    warm = math.floor(0.2 * total)
    if step < warm:
        return base * step / warm
    decays = sum(step > math.floor(f * total) for f in (0.4, 0.6, 0.8))
    return base * 0.1 ** decays


# ------------------------------------------------------------------------------ pure policy

def test_schedule_matches_the_paper_at_the_marks():
    for total, base in [(500, 0.1), (2500, 0.01), (10, 0.03125), (7, 0.5)]:
        schedule = tune.PaperSchedule(base, total)
        for frac in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
            step = int(round(frac * total))
            got = float(schedule(step))
            assert got == pytest.approx(paper_lr(step, total, base), rel=1e-6, abs=1e-12)
            assert got == pytest.approx(hyperrule.learning_rate(step, total, base), rel=1e-6)
        # and everywhere in between
        for step in range(0, total + 1, max(1, total // 50)):
            assert float(schedule(step)) == pytest.approx(paper_lr(step, total, base), rel=1e-6)
    assert float(tune.PaperSchedule(0.1, 500)(0)) == 0.0  # warm-up starts at 0
    assert float(tune.PaperSchedule(0.1, 500)(100)) == pytest.approx(0.1)


def test_default_plan_is_the_grid_per_selected_module(modules):
    specs = {n: s for n, (s, _) in modules.items()}
    ranking = ranking_of(modules, ["gen_a", "exp_b", "exp_c"], ["gen_a", "exp_b"])
    plan = tune.plan_sweep(ranking, specs, sweep="default", task={"flip": True},
                           profile="paper")
    assert len(plan) == 8 and [e.module for e in plan] == ["gen_a"] * 4 + ["exp_b"] * 4
    for module in ("gen_a", "exp_b"):
        grid = {(e.hparams.lr, e.hparams.steps) for e in plan if e.module == module}
        assert grid == {(0.1, 2500), (0.1, 10000), (0.01, 2500), (0.01, 10000)}
    assert all(e.hparams.batch_size == 512 and e.hparams.momentum == 0.99 for e in plan)
    assert all(e.hparams.weight_decay == 0 and e.hparams.augmentation is None for e in plan)
    assert len({e.hparams.seed for e in plan}) == 8
    assert [e.trial_id for e in plan] == [f"default-{i:04d}-{e.module}"
                                          for i, e in enumerate(plan)]
    # profile scaling: quick = steps x0.002 clamped to 5..10, lr x lr_scale
    quick = tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="quick")
    assert {(e.hparams.lr, e.hparams.steps) for e in quick} == {
        (0.1 * QUICK.lr_scale, 5), (0.1 * QUICK.lr_scale, 10), (0.01 * QUICK.lr_scale, 5),
        (0.01 * QUICK.lr_scale, 10)}
    assert all(e.hparams.batch_size == 16 for e in quick)
    # --modules overrides the selection; a budget keeps L // 4 modules
    only = tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="paper",
                           modules=["exp_c", "gen_a"])
    assert [e.module for e in only] == ["gen_a"] * 4 + ["exp_c"] * 4  # rank order
    # ... and says which selected modules get no trial, why, and the budget for all (`fit
    # --top-k 2 --budget 4` tuned one module without a word).
    for sweep in ("default", "probe"):
        with pytest.warns(UserWarning) as said:
            cut = tune.plan_sweep(ranking, specs, sweep=sweep, task={}, profile="paper",
                                  budget=4)
        assert [e.module for e in cut] == ["gen_a"] * 4
        # plan_sweep from Python: the keyword (it was told "pass --budget 8 (or no --budget)").
        # No "(or budget=None)": tune on a run without a budget resumes the recorded one.
        assert [str(w.message) for w in said] == [
            f"exp_b gets no trial: budget 4 gives the {sweep} sweep's 4 trials per module to "
            "the first 1 of the 2 selected modules (best-ranked first); pass budget=8 to tune "
            "every one"]
        with command_line(), pytest.warns(UserWarning) as said:
            tune.plan_sweep(ranking, specs, sweep=sweep, task={}, profile="paper", budget=4)
        assert str(said[0].message).endswith("pass --budget 8 to tune every one")
        assert len(tune.plan_sweep(ranking, specs, sweep=sweep, task={}, profile="paper")) == 8
        assert tune.plans.untuned_modules(ranking, cut, sweep=sweep) == ["exp_b"]
        assert tune.plans.untuned_modules(ranking, plan, sweep=sweep) == []
    with pytest.warns(UserWarning, match=r"exp_b, exp_c get no trial: budget 7 gives the default "
                                         r"sweep's 4 trials per module to the first 1 of the 3 "
                                         r"modules given in modules .*budget=12"):
        tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="paper", budget=7,
                        modules=["exp_c", "gen_a", "exp_b"])
    with pytest.raises(HubensembleError, match="gen_a, exp_b, exp_c"):
        tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="paper",
                        modules=["nope"])


def test_random_plans_are_deterministic_and_in_the_paper_spaces(modules):
    specs = {n: s for n, (s, _) in modules.items()}
    ranking = ranking_of(modules, ["exp_b", "gen_a", "exp_c"], ["gen_a"])
    kw = dict(task={"flip": True, "synthetic": False}, profile="paper")
    seeds = tune.plan_sweep(ranking, specs, sweep="seeds", budget=5, **kw)
    assert [e.module for e in seeds] == ["gen_a"] * 5  # the generalist, not the best expert
    assert {(e.hparams.lr, e.hparams.steps) for e in seeds} == {(0.01, 2500)}
    assert len({e.hparams.seed for e in seeds}) == 5

    hyper = tune.plan_sweep(ranking, specs, sweep="hyper", budget=60, seed=3, **kw)
    assert hyper == tune.plan_sweep(ranking, specs, sweep="hyper", budget=60, seed=3, **kw)
    assert hyper != tune.plan_sweep(ranking, specs, sweep="hyper", budget=60, seed=4, **kw)
    h = [e.hparams for e in hyper]
    assert all(1e-6 <= x.weight_decay <= 1e-1 and 0 <= x.dropout <= 0.5 for x in h)
    assert all(1e-4 <= x.lr <= 1e-1 and x.steps in sweeps.STEPS_CHOICES for x in h)
    assert len({x.steps for x in h}) > 3 and min(x.lr for x in h) < 1e-3 < max(x.lr for x in h)
    # a larger budget extends the plan: the first trials stay the same
    assert tune.plan_sweep(ranking, specs, sweep="hyper", budget=10, seed=3, **kw) == hyper[:10]

    aug = tune.plan_sweep(ranking, specs, sweep="aug", budget=40, **kw)
    assert len(aug) == 40
    families = [aug[i].hparams.augmentation for i in range(0, 40, 4)]
    assert len(set(families)) == 10
    for i, e in enumerate(aug):  # each family is fine-tuned with the 4 default settings
        assert e.hparams.augmentation == families[i // 4]
        grid = [(0.1, 2500), (0.1, 10000), (0.01, 2500), (0.01, 10000)]
        assert (e.hparams.lr, e.hparams.steps) == grid[i % 4]
    assert any(f.has_colour for f in families) and any(f.flip for f in families)
    synthetic = tune.plan_sweep(ranking, specs, sweep="aug", budget=40,
                                task={"flip": False, "synthetic": True}, profile="paper")
    assert not any(e.hparams.augmentation.has_colour or e.hparams.augmentation.flip
                   for e in synthetic)
    assert any(e.hparams.effective_mixup_alpha > 0 for e in synthetic)

    # combined: tau = 2 % keeps gen_a (0.90) and exp_b (0.89 >= 0.882), not exp_c (0.70)
    combined = tune.plan_sweep(ranking, specs, sweep="combined", budget=60, **kw)
    assert [e.module for e in combined] == ["gen_a", "exp_b"] * 30  # dealt round-robin
    assert len({(e.hparams.lr, e.hparams.steps) for e in combined}) > 30
    # A budget is never exceeded: 5 trials (it planned round(5 / 2) = 3 each, 6 trials).
    with pytest.warns(UserWarning, match=r"deals budget 5 round-robin over its 2 modules "
                                         r"within tau 0.02 of the best score: 1 of them get 3, "
                                         r"the others 2"):
        odd = tune.plan_sweep(ranking, specs, sweep="combined", budget=5, **kw)
    assert [e.module for e in odd] == ["gen_a", "exp_b", "gen_a", "exp_b", "gen_a"]
    assert odd == combined[:5]  # a larger budget extends the plan
    with pytest.warns(UserWarning, match=r"exp_b gets no trial: budget 1 deals one trial to "
                                         r"each of the first 1 \(by kNN score\) of the combined "
                                         r"sweep's 2 modules within tau 0.02 of the best score; "
                                         r"pass budget=2 or more"):
        one = tune.plan_sweep(ranking, specs, sweep="combined", budget=1, **kw)
    assert one == combined[:1]
    assert tune.plans.untuned_modules(ranking, one, sweep="combined") == ["exp_b"]
    assert tune.plans.untuned_modules(ranking, odd, sweep="combined") == []
    for sweep in ("default", "probe", "aug"):  # 4 trials a group: a budget of 3 holds none
        with pytest.raises(HubensembleError, match=f"the {sweep} sweep runs 4 trials per "
                                                   r".*; budget 3 cannot hold one .*'s 4 "
                                                   r"trials: call plan_sweep\(ranking, specs, "
                                                   f"sweep='{sweep}', task=task, "
                                                   r".*budget=4\) \(or more; K "):
            tune.plan_sweep(ranking, specs, sweep=sweep, budget=3, **kw)
    # A ranking that rank selected by --threshold gives the sweep its tau and max_k: 0.25
    # keeps exp_c (0.70 >= 0.675) too, and max_k 2 then cuts it again.
    wide = dict(ranking, selection={"rule": "threshold", "threshold": 0.25, "max_k": 15})
    assert [e.module for e in tune.plan_sweep(wide, specs, sweep="combined", budget=3,
                                              **kw)] == ["gen_a", "exp_b", "exp_c"]
    wide["selection"]["max_k"] = 2
    assert [e.module for e in tune.plan_sweep(wide, specs, sweep="combined", budget=4,
                                              **kw)] == ["gen_a", "exp_b"] * 2


def test_seeds_falls_back_to_the_best_module_without_a_generalist(modules):
    specs = {n: s for n, (s, _) in modules.items()}
    ranking = ranking_of(modules, ["exp_b", "exp_c"], ["exp_b"])
    with pytest.warns(UserWarning, match="generalist"):
        plan = tune.plan_sweep(ranking, specs, sweep="seeds", budget=2, task={},
                               profile="quick")
    assert {e.module for e in plan} == {"exp_b"}
    assert tune.default_budget("hyper", "paper", 3) == 60
    assert tune.default_budget("default", "cpu", 3) == 12


# ------------------------------------------------------------------------------ the model

def test_zero_initialised_head_gives_uniform_probabilities(modules):
    model = tune.build_classifier(modules["gen_a"][0], 7)
    x = np.random.default_rng(0).random((5, 20, 20, 3)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), np.full((5, 7), 1 / 7), rtol=1e-6)
    assert not np.any(model.head.kernel.numpy()) and not np.any(model.head.bias.numpy())


def test_weight_decay_pulls_towards_the_initial_weights_not_zero(modules):
    """With uniform soft labels the zero head gives zero cross-entropy gradients, so only the
    decay moves the weights: SGD with momentum on wd/2 ||w - w0||^2, computed here in numpy."""
    wd, lr, steps, momentum = 0.5, 0.4, 20, 0.5
    model = tune.build_classifier(modules["gen_a"][0], 4, weight_decay=wd)
    hp = HParams(lr=lr, steps=steps, weight_decay=wd, batch_size=8, momentum=momentum)
    tune.compile_classifier(model, hp)
    w0 = [w.numpy().copy() for w in model.trainable_weights]
    rng = np.random.default_rng(1)
    # Move the backbone by as much as its own size; keep the head at 0.
    deltas = [np.zeros_like(w) for w in w0]
    for i in (0, 1):
        d = rng.normal(size=w0[i].shape)
        deltas[i] = (d * np.linalg.norm(w0[i]) / np.linalg.norm(d)).astype("float32")
    for w, a, d in zip(model.trainable_weights, w0, deltas):
        w.assign(a + d)
    expected_penalty = 0.5 * wd * sum(float(np.sum(d.astype(np.float64) ** 2)) for d in deltas)
    assert float(model.decay_penalty()) == pytest.approx(expected_penalty, rel=1e-5)

    x = rng.random((8 * steps, 12, 12, 3)).astype("float32")
    y = np.full((8 * steps, 4), 0.25, "float32")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    # Keras SGD: v = m v - lr_t g; w += v, with g = wd (w - w0)
    for w, a, d in zip(model.trainable_weights, w0, deltas):
        dist, vel = d.astype(np.float64), np.zeros_like(d, np.float64)
        for t in range(steps):
            vel = momentum * vel - paper_lr(t, steps, lr) * wd * dist
            dist = dist + vel
        np.testing.assert_allclose(w.numpy(), a + dist, rtol=1e-4, atol=1e-5)
    # Decay to zero would have shrunk the kernel to ~10 % of its size instead.
    kernel, kernel0 = model.trainable_weights[0].numpy(), w0[0]
    assert np.linalg.norm(kernel - kernel0) < 0.3 * np.linalg.norm(kernel0)  # back near w0
    assert np.linalg.norm(kernel) > 0.7 * np.linalg.norm(kernel0)  # not near zero
    # the saved weights are the model's own: no copy of w0 in the file
    assert len(model.weights) == len(w0)


def test_training_creates_no_variable_inside_the_traced_step(modules, digits):
    # A tf.function that creates variables on its first call is traced a second time;
    # Keras 3 without a distribution strategy would create the optimizer's momentum slots
    # there, doubling every trial's tracing (seconds on real modules).
    import tensorflow as tf

    hp = HParams(**QUICK.scale({"lr": 0.1, "steps": 2500}), seed=5)
    made = []

    def creator(next_creator, **kwargs):
        made.append((kwargs.get("name"), tf.inside_function()))
        return next_creator(**kwargs)

    spec = modules["gen_a"][0]
    keras.backend.clear_session()
    model = tune.compile_classifier(tune.build_classifier(spec, digits.num_classes), hp)
    with tf.variable_creator_scope(creator):
        tune.train_classifier(model, digits, spec, hp, profile=QUICK)
    assert model.optimizer.built and hp.momentum > 0
    assert any("momentum" in str(name) for name, _ in made), made
    assert [name for name, traced in made if traced] == []


def test_a_sweep_traces_its_batch_preparation_once_and_the_batches_stay_the_same(
        modules, digits):
    """Inside `kept_preparations` (a sweep) trials of the same resolution, augmentation and
    classes share one traced batch preparation, their seeds an argument: the same batches to
    the bit as a trial's own function (outside: one traced per dataset, as before), and
    another seed gives other batches. Released at the block's end."""
    from hubensemble.tune import inputs

    spec = modules["gen_a"][0]
    aug = hyperrule.AugConfig(crop="random", resize_factor=1.2, flip=True, brightness=0.1,
                              mixup_alpha=0.2)  # MixUp's and each augmentation's seeds too
    hps = [HParams(**QUICK.scale({"lr": 0.1, "steps": 2500}), seed=s, augmentation=aug)
           for s in (3, 4)]

    def first_batch(hp):
        return [t.numpy() for t in next(iter(tune.training_dataset(digits, spec, hp,
                                                                   profile=QUICK)))]

    alone = [first_batch(hp) for hp in hps]  # each trial's own function
    with inputs.kept_preparations():
        kept = [first_batch(hp) for hp in hps]
        [fn] = inputs._kept().values()
        assert fn.experimental_get_tracing_count() == 1
    assert inputs._kept() is None
    # the trial that traced it and the one that reused it (its seed an argument), each
    # as its own function gives it (only the first was compared)
    for own, shared in zip(alone, kept):
        assert all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(own, shared))
    # the seed reached the kept trace: other images, other MixUp soft labels
    assert all(not np.array_equal(x, y) for x, y in zip(*kept))


def test_a_trials_start_in_the_log_gives_the_mixup_alpha_it_trains_with(caplog):
    """log.txt's trial start (`train.log_trial_start`) wrote HParams.to_json as it is:
    "mixup_alpha=0.0" beside an augmentation family's 0.126, which the trial trains with
    (a new user's check); the field is now the effective alpha, the family's kept too."""
    from hubensemble.sweepplan import PlanEntry
    from hubensemble.tune.train import log_trial_start

    aug = hyperrule.AugConfig(crop="inception", mixup_alpha=0.126)
    for hp, alpha in ((HParams(lr=0.01, steps=10, seed=1, augmentation=aug), 0.126),
                      (HParams(lr=0.01, steps=10, seed=1, mixup_alpha=0.2), 0.2)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble.tune.train"):
            log_trial_start(PlanEntry(2, "aug-0002-m", "m", hp), 8)
        [line] = [r.getMessage() for r in caplog.records]
        assert line.startswith("trial 3/8 m starts: aug-0002-m (lr=0.01, steps=10, "), line
        assert f"mixup_alpha={alpha}," in line and "mixup_alpha=0.0" not in line, line


def test_fit_member_on_train_and_val_is_deterministic(modules, digits):
    spec = modules["gen_a"][0]
    merged = tune.inputs._merged(digits, ("train", "val"))
    assert len(merged.train) == len(digits.train) + len(digits.val)
    hp = HParams(**QUICK.scale({"lr": 0.1, "steps": 2500}), seed=5)
    probs = []
    for _ in range(2):
        model = tune.fit_member(spec, digits, hp, profile=QUICK, splits=("train", "val"))
        probs.append(tune.predict_probs(model, digits, "val", spec=spec, profile=QUICK,
                                        batch_size=64))
    assert probs[0].shape == (200, 10) and probs[0].dtype == np.float32
    np.testing.assert_allclose(probs[0].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-6)
    assert np.abs(probs[0] - 0.1).max() > 1e-4  # it trained


def test_a_progress_callback_leaves_the_training_as_it_was(modules, digits):
    """TrialProgress (the trial's steps on the sweep's bar) only reads: the same seed trains
    the same weights, to the bit, with it and without it; its notes count every step."""
    spec = modules["gen_a"][0]
    hp = HParams(**QUICK.scale({"lr": 0.1, "steps": 2500}), seed=5)
    out = io.StringIO()
    bar = progress_bar(total=1, desc="tune", file=out, mininterval=0)
    weights = []
    for callbacks in ((), (tune.train.TrialProgress(bar, "trial 1/1 gen_a"),)):
        model = tune.fit_member(spec, digits, hp, profile=QUICK, callbacks=callbacks)
        weights.append([np.asarray(w) for w in model.trainable_weights])
    bar.close()
    for before, after in zip(*weights):
        np.testing.assert_array_equal(before, after)
    steps = re.findall(r"trial 1/1 gen_a: step (\d+)/(\d+), loss \d+\.\d{3}", out.getvalue())
    assert [int(s) for s, _ in steps] == list(range(1, hp.steps + 1)), out.getvalue()
    assert {int(n) for _, n in steps} == {hp.steps}


def test_a_trial_says_each_phase_before_its_steps_and_counts_the_lp_ft_embedding(
        tmp_path, modules, digits):
    """A trial's first note, "starting", stood for loading the module, the LP-FT head's
    probe (an embedding pass over every training and validation image) and the first
    step's tracing: minutes of a real backbone with no count. Each phase is now said in
    turn, the embedding's images counted as rank counts them, before the steps."""
    spec = modules["gen_a"][0]
    run = make_run(tmp_path / "run", modules, task=digits)
    hp = HParams(**QUICK.scale({"lr": 0.01, "steps": 5}), seed=0, head_init="probe")
    out = io.StringIO()
    bar = progress_bar(total=1, desc="tune", file=out, mininterval=0)  # a line per note
    record = tune.run_entry(tune.PlanEntry(0, "default-0000-gen_a", "gen_a", hp), spec,
                            digits, run, profile=QUICK, keep_weights="none",
                            callbacks=[tune.train.TrialProgress(bar, "trial 1/1 gen_a")],
                            cache_dir=str(tmp_path / "emb"))
    bar.close()
    assert record["head_l2"] is not None, record  # it started from the probe
    notes = [line.rsplit(", trial 1/1 gen_a: ", 1)[1][:-1] for line in out.getvalue().splitlines()
             if ", trial 1/1 gen_a: " in line]
    phases = [n for n in notes if not n.startswith(("LP-FT head, embedding ", "step "))]
    n_train, n_val = f"{len(digits.train):,}", f"{len(digits.val):,}"
    assert phases[:4] == ["loading the module", "LP-FT head", "LP-FT head, fitting the probe",
                          "tracing the first step"], notes
    embedded = notes[notes.index("LP-FT head") + 1:notes.index("LP-FT head, fitting the probe")]
    assert embedded[0].startswith("LP-FT head, embedding train: ") and embedded[-1] == (
        f"LP-FT head, embedding val: {n_val}/{n_val} images"), notes
    assert f"LP-FT head, embedding train: {n_train}/{n_train} images" in embedded, notes
    first = notes[notes.index("tracing the first step") + 1]
    assert first.startswith(f"step 1/{hp.steps}, loss "), notes


def test_tune_says_the_steps_of_a_trial_before_it_ends(tmp_path, modules, digits, in_process,
                                                       monkeypatch):
    """`tune … 2>log` said nothing during a trial (a real backbone's took 5-10 minutes on a
    CPU: slow looked like hung): the sweep bar's lines now say the trial's steps and loss
    while its count is still at the trial's start, then its predictions' images (-q says
    nothing: test_a_failed_trial_…). The command in this process (its stderr, not a tty,
    is what `2>log` gives; a new process spent most of this test's time importing
    TensorFlow)."""
    run = make_run(tmp_path / "run", modules, task=digits)
    monkeypatch.setenv("TQDM_MININTERVAL", "0")  # a line per draw (read at each bar)
    code, _, text = in_process("tune", "--run", run.path, "--sweep", "seeds", "--budget", "2",
                               "--profile", "quick", "--strategy", "cpu", "--keep-weights",
                               "none")
    assert code == 0, text
    steps = {trial: re.findall(rf"tune seeds: +{50 * (trial - 1)}% {trial - 1}/2 \[.*, trial "
                               rf"{trial}/2 gen_a: step (\d+)/(\d+), loss [0-9.]+\]$", text,
                               re.MULTILINE) for trial in (1, 2)}
    for trial, said in steps.items():
        assert len(said) >= 3 and said[-1][0] == said[-1][1], (trial, text)
        for phase in ("loading the module", "tracing the first step"):
            assert f"trial {trial}/2 gen_a: {phase}" in text
        for split, n in (("val", 200), ("test", 797)):  # each line says its whole state
            assert re.search(rf"^tune seeds: .* {trial - 1}/2 \[.*, trial {trial}/2 gen_a: "
                             rf"predicting {split}, {n}/{n} images\]$", text, re.MULTILINE)
    # tqdm says a rate under one trial a second as "s/trial", above as "trial/s" (CI run 95:
    # "1.30trial/s", the trials warm in this process).
    assert re.search(r"^tune seeds: 100% 2/2 \[[^,]*, [^,]*(s/trial|trial/s)\]$", text,
                     re.MULTILINE), text


# ------------------------------------------------------------------------------ sweeps

def test_a_task_without_validation_examples_is_refused_before_any_trial(tmp_path, modules,
                                                                        digits):
    """--val-fraction 0 (or --dedupe emptying x_val) failed every trial with "has no val
    split" and then said no candidate was usable, naming `tune` to write them."""
    import dataclasses

    from hubensemble.errors import RunError

    run = make_run(tmp_path / "run", modules, task=dataclasses.replace(digits, val=None))
    # run_tune's caller is told load_task's keyword (it was told --val-fraction).
    with pytest.raises(RunError, match="has no validation examples.*val_fraction above 0"):
        tune.run_tune(run.path, sweep="default", modules=["gen_a"], profile="quick",
                      strategy="cpu", progress=False)
    assert not run.candidates.exists() or not os.listdir(run.candidates)
    code = ("import sys; from hubensemble.cli import main; "
            "code = main(sys.argv[1:]); print('tensorflow' in sys.modules); sys.exit(code)")
    out = bounded_by_cpu([sys.executable, "-c", code, "tune", "--run", str(run.path)],
                         capture_output=True, text=True, cpu=120)
    assert out.returncode == 2 and out.stdout.strip() == "False", out.stderr
    assert "has no validation examples" in out.stderr
    # The way in the data's own terms: a tfds: spec refuses --val-fraction (a new-user check
    # was pointed at it).
    from hubensemble.datachange import require_validation

    for source, way in (("tfds:mnist (val none)", "--split val=train[800:1000]"),
                        ("npz:/d.npz (x_train)", "x_val/y_val in the npz"),
                        ("folder:/p (class folders)", "a val/ folder")):
        with command_line(), pytest.raises(RunError) as err:
            require_validation({"name": "t", "source": source, "sizes": {"val": 0}})
        assert way in str(err.value) and ("--val-fraction" in str(err.value)) == (
            not source.startswith("tfds")), str(err.value)
    with pytest.raises(RunError) as err:  # from Python: load_task's keywords
        require_validation({"name": "t", "source": "tfds:mnist (val none)", "sizes": {"val": 0}})
    assert ("a tfds split for it: splits={'val': 'train[800:1000]'}; dedupe=True drops a val "
            "split that only copies train), then call fit again") in str(err.value), err.value


def test_sweeps_in_one_process_leave_no_oracle_or_train_step_graph_behind(tmp_path, modules,
                                                                          digits):
    """A notebook calling run_tune (or fit) again and again: each sweep left its Oracle, trials
    and all, in Keras Tuner's LOCKS and THREADS, and each trained model its train step's graph
    in TensorFlow's gradient registry (Keras' gradient all-reduce is a tf.custom_gradient,
    registered per trace): about 24 MiB and 26,000 objects per 8-trial sweep of tiny modules,
    without bound."""
    from keras_tuner.src.engine import oracle as kt_oracle
    from tensorflow.python.framework import ops

    def custom_gradients():
        return {n for n in ops.gradient_registry.list() if n.startswith("CustomGradient-")}

    before, oracles = custom_gradients(), set(kt_oracle.LOCKS) | set(kt_oracle.THREADS)
    for i in range(2):  # a trial per sweep: what each left would be there once
        run = make_run(tmp_path / f"run{i}", modules, task=digits)
        summary = tune.run_tune(run.path, sweep="seeds", budget=1, modules=["gen_a"],
                                profile="quick", strategy="cpu", task=digits, progress=False)
        assert summary["ok"] == 1
        assert repr(summary) == ("TuneSummary(sweep='seeds', plan_size=1, ok=1, failed=0, "
                                 "missing=0, reused=0)")  # not every trial: a cell's echo
    assert custom_gradients() == before
    assert set(kt_oracle.LOCKS) | set(kt_oracle.THREADS) == oracles
    assert tune.inputs._kept() is None  # the sweep's traced batch preparations released
    hp = HParams(**QUICK.scale({"lr": 0.1, "steps": 2500}), seed=5)
    tune.fit_member(modules["gen_a"][0], digits, hp, profile=QUICK)  # export's retrain_full
    assert custom_gradients() == before


def test_default_sweep_writes_complete_candidates_and_resumes(tmp_path, modules, digits,
                                                              capsys, caplog):
    run = make_run(tmp_path / "run", modules, task=digits)
    with caplog.at_level(logging.INFO):
        summary = tune.run_tune(run.path, sweep="default", modules=["gen_a"], profile="quick",
                                strategy="cpu", task=digits, progress=False)
    # A model per trial, each traced once: TensorFlow's retracing warning (it reached notebook
    # users of hubensemble.fit) is hubensemble's INFO record instead.
    assert not [r for r in caplog.records if r.name.startswith("tensorflow")
                and "retracing" in r.getMessage()]
    moved = [r for r in caplog.records if r.name == "hubensemble.tf"]
    assert all(r.levelno == logging.INFO and "retracing" in r.getMessage() for r in moved)
    assert (summary["plan_size"], summary["ok"], summary["failed"]) == (4, 4, 0)
    cands = candidates(run)
    assert len(cands) == 4
    grid = set()
    for trial, rec in cands.items():
        assert CONTRACT_KEYS <= set(rec) and rec["status"] == "ok" and rec["reason"] is None
        assert trial == rec["trial"] and rec["module"] == "gen_a" and rec["profile"] == "quick"
        hp = HParams.from_json(rec["hparams"])
        grid.add((hp.lr, hp.steps))
        assert rec["seed"] == hp.seed and rec["steps"] == hp.steps
        val = np.load(run.candidates / trial / "val_probs.npy")
        test = np.load(run.candidates / trial / "test_probs.npy")
        assert val.shape == (200, 10) and test.shape == (797, 10) and val.dtype == np.float32
        labels = np.load(run.labels / "val.npy")
        ce = -np.mean(np.log(np.clip(val[np.arange(200), labels], 1e-7, 1)))
        assert rec["val"]["ce"] == pytest.approx(ce, rel=1e-5)
        assert rec["val"]["accuracy"] == pytest.approx(np.mean(val.argmax(1) == labels))
        assert rec["has_test"] and rec["test"]["accuracy"] == pytest.approx(
            np.mean(test.argmax(1) == np.load(run.labels / "test.npy")))
        assert rec["weights"] == "weights.weights.h5"
    assert grid == {(0.1 * QUICK.lr_scale, 5), (0.1 * QUICK.lr_scale, 10),
                    (0.01 * QUICK.lr_scale, 5), (0.01 * QUICK.lr_scale, 10)}
    no_tuner_checkpoints(run)
    assert sorted(os.listdir(run.tuner / "tensorboard")) == sorted(cands)

    # the saved weights rebuild the member exactly (what export does)
    trial = sorted(cands)[0]
    model = tune.build_classifier(modules["gen_a"][0], 10)
    model.load_weights(str(run.candidates / trial / "weights.weights.h5"))
    again = tune.predict_probs(model, digits, "val", spec=modules["gen_a"][0], profile="quick",
                               batch_size=16)
    np.testing.assert_allclose(again, np.load(run.candidates / trial / "val_probs.npy"),
                               atol=1e-6)

    meta = run.meta()["tune"]
    assert meta["sweep"] == "default" and meta["plan_size"] == 4 and meta["seed"] == 0
    assert meta["profile"]["name"] == "quick" and meta["profile"]["step_scale"] == 0.002

    # the same call again runs nothing
    mtimes = {t: os.path.getmtime(run.candidates / t / "trial.json") for t in cands}
    log_before = trial_log(run, "default")
    from hubensemble import sweeplock

    def chief_failed(sweep):  # a chief/worker sweep's chief stopped with an error here
        with pytest.raises(RunError):
            with Run(run.path).lock("tune", "chief", {"sweep": sweep, "oracle": None}):
                raise RunError("bad module")
        assert sweeplock.chief_ended(run.path, sweep.split("+")[0])

    chief_failed("other")  # another sweep's chief's record stays
    again = tune.run_tune(run.path, sweep="default", modules=["gen_a"], profile="quick",
                          strategy="cpu", task=digits, progress=False)
    assert sweeplock.chief_ended(run.path, "other")
    assert isinstance(again, tune.TuneSummary)
    assert again["ok"] == again.ok == 4 and trial_log(run, "default") == log_before
    assert again.to_json() == dict(again) and json.loads(json.dumps(again.to_json()))["ok"] == 4
    assert mtimes == {t: os.path.getmtime(run.candidates / t / "trial.json") for t in cands}
    # the Candidate rule decides what is done: a candidate missing a file its record names
    # (here the weights) is incomplete, so its trial runs again, and only that one
    broken = sorted(cands)[1]
    os.unlink(run.candidates / broken / "weights.weights.h5")
    assert not candidate.read_candidate(run.candidates, broken).complete
    # A stand-alone sweep of it supersedes the last chief's end record (it stopped workers of
    # a later chief/worker launch started before their chief): it said the chief had failed.
    chief_failed("default+hyper")
    again = tune.run_tune(run.path, sweep="default", modules=["gen_a"], profile="quick",
                          strategy="cpu", task=digits, progress=True)
    assert not sweeplock.chief_end_path(run.path).exists()
    assert (again.ok, again.missing, again.reused) == (4, 0, 3)
    assert starts(run, "default") == {t: 1 + (t == broken) for t in cands}
    # The resumed sweep says so, on the terminal and in its summary (a new-user check: only
    # its progress bar starting at 3/4 showed it), and names what was wrong with the trial
    # it runs again (another: tune re-ran a damaged candidate without a word).
    err = capsys.readouterr().err
    assert "tune default: 3 of 4 planned trials finished before, reused; 1 to run" in err
    assert (f"tune default: 1 trial redone, its files are missing or damaged: "
            f"candidates/{broken}: weights.weights.h5 is missing") in caplog.text
    assert "of 4 planned (3 finished before this run, reused)" in tune.format_summary(again)
    assert (run.candidates / broken / "weights.weights.h5").exists()
    assert {t for t in cands if t != broken} == {
        t for t in cands if os.path.getmtime(run.candidates / t / "trial.json") == mtimes[t]}
    # other settings on the same trial ids are refused, naming what differs (it said
    # "another --seed, --profile or module list?" only)
    with pytest.raises(RunError, match=re.escape(
            f"4 candidates in {run.candidates} (e.g. default-0000-gen_a) were tuned with "
            "other settings than this call's: seed 0 -> 1 (recorded -> now)")):
        tune.run_tune(run.path, sweep="default", modules=["gen_a"], profile="quick", seed=1,
                      strategy="cpu", task=digits, progress=False)


def test_a_sweep_resumed_over_an_older_training_rules_trials_says_so_and_keeps_them(
        tmp_path, modules, digits, caplog):
    """A sweep of ee1ba61 or 3d86205 resumed by a newer hubensemble mixed trials of two
    training rules (changed between 3d86205 and e1b5771: validation CE up to 1.3e-4 apart
    for the same settings and seed) and nothing said so; so did a new sweep beside one. The
    older version's trial.json is this one's without "train_rule"; its finished trials are
    reused as they are, with one warning naming how many and the ways to train them by this
    rule. Seven trials in all (it trained twelve): a seeds sweep of 4 (more than the 3 trials
    the other-sweep line names before its ellipsis), one trial each resume, and the other
    sweep a single hyper trial."""
    from hubensemble.sweepstate import TRAIN_RULE, train_rule

    run = make_run(tmp_path / "run", modules, task=digits)
    tune.run_tune(run.path, sweep="seeds", budget=4, modules=["gen_a"], profile="quick",
                  strategy="cpu", task=digits, progress=False)
    cands = candidates(run)
    assert {rec["train_rule"] for rec in cands.values()} == {TRAIN_RULE}
    assert run.meta()["tune"]["sweeps"]["seeds"]["train_rule"] == TRAIN_RULE
    old, gone = sorted(cands)[:3], sorted(cands)[3:]
    for trial in old:  # the records the older version wrote: no training rule
        record = {k: v for k, v in cands[trial].items() if k != "train_rule"}
        atomic_write_json(run.candidates / trial / "trial.json", record)
        assert train_rule(record) == 1
    for trial in gone:  # the sweep was stopped before these
        shutil.rmtree(run.candidates / trial)
    mtimes = {t: os.path.getmtime(run.candidates / t / "trial.json") for t in old}
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = tune.run_tune(run.path, sweep="seeds", budget=4, modules=["gen_a"],
                              profile="quick", strategy="cpu", task=digits, progress=False)
    assert (again.ok, again.reused) == (4, 3)
    assert mtimes == {t: os.path.getmtime(run.candidates / t / "trial.json") for t in old}
    assert candidates(run)[gone[0]]["train_rule"] == TRAIN_RULE
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and "training rule" in r.getMessage()]
    assert warned == [
        f"tune seeds: 3 of the 3 trials reused ({', '.join(old)}) were trained by an older "
        f"hubensemble's training rule (trial.json train_rule 1 or none; this version trains "
        f"by rule {TRAIN_RULE}; none is any hubensemble before 0.3.0, whose releases from "
        f"2026-12-05 on already trained by rule {TRAIN_RULE}), so their numbers may differ "
        "slightly from what this version gives for the same settings and seed, and the pool "
        f"may mix two rules; kept as they are. To train them by this rule, delete their "
        f"folders in {run.candidates} and run tune again, or start the sweep over: "
        f"run_tune(run_dir={str(run.path)!r}, sweep='seeds', restart=True)"]
    # Once trained by this rule, a resume says nothing of rules: one of them trained again,
    # the others' records as a training by this rule writes them (a resume that trains a
    # trial also looks at the rest of the pool).
    shutil.rmtree(run.candidates / old[0])
    for trial in old[1:]:
        atomic_write_json(run.candidates / trial / "trial.json", cands[trial])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = tune.run_tune(run.path, sweep="seeds", budget=4, modules=["gen_a"],
                              profile="quick", strategy="cpu", task=digits, progress=False)
    assert (again.ok, again.reused) == (len(cands), len(cands) - 1)
    assert "training rule" not in caplog.text
    assert {rec["train_rule"] for rec in candidates(run).values()} == {TRAIN_RULE}
    # Another sweep trained beside a finished sweep of an older version mixes the pool too.
    for trial, rec in candidates(run).items():
        atomic_write_json(run.candidates / trial / "trial.json",
                          {k: v for k, v in rec.items() if k != "train_rule"})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        tune.run_tune(run.path, sweep="hyper", budget=1, modules=["gen_a"], profile="quick",
                      strategy="cpu", task=digits, progress=False)
    seeds = sorted(t for t in candidates(run) if t.startswith("seeds-"))
    assert len(seeds) == 4
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and "training rule" in r.getMessage()]
    assert warned == [
        f"tune hyper: this sweep's trials are trained by training rule {TRAIN_RULE}, while "
        f"{len(seeds)} trials of sweep seeds in the same pool ({', '.join(seeds[:3])}, …) "
        "were trained by an older hubensemble's rule, so the pool mixes two rules; to train "
        f"them by this one, start it over: run_tune(run_dir={str(run.path)!r}, sweep='seeds', "
        "restart=True)"]


def test_a_clash_names_the_options_and_the_fields_that_differ():
    from hubensemble.tune.plans import PlanEntry
    from hubensemble.tune.stage import sweep_changes, trial_differences

    recorded = {"seed": 0, "profile": QUICK.to_json(), "batchnorm": {"requested": "auto"}}
    assert sweep_changes(recorded, seed=0, profile=QUICK, batchnorm="auto") == []
    assert sweep_changes(None, seed=3, profile=QUICK, batchnorm="auto") == []
    assert sweep_changes(recorded, seed=2, profile=get_profile("cpu"), batchnorm="train") == [
        "--seed 0 -> 2", "--profile quick -> cpu", "--batchnorm auto -> train"]
    # --head-init as given (None: the profile's); a record without it (a sweep recorded
    # before it was, or a probe sweep) is not compared: an old run still loads and resumes.
    assert sweep_changes(recorded, seed=0, profile=QUICK, batchnorm="auto",
                         head_init="probe") == []
    assert sweep_changes({**recorded, "head_init": None}, seed=0, profile=QUICK,
                         batchnorm="auto", head_init="probe") == ["--head-init unset -> probe"]
    assert sweep_changes({**recorded, "head_init": "probe"}, seed=0, profile=QUICK,
                         batchnorm="auto", head_init="probe") == []
    entry = PlanEntry(0, "default-0000-a", "a", HParams(lr=0.01, steps=10, seed=4))
    record = {"module": "b", "hparams": HParams(lr=0.1, steps=10, seed=4).to_json()}
    assert trial_differences(record, entry) == ["module: 'b' -> 'a'", "lr: 0.1 -> 0.01"]
    assert trial_differences({"module": "a", "hparams": entry.hparams.to_json()}, entry) == []
    assert trial_differences({"module": "a", "hparams": {"lr": "x"}}, entry) == [
        "hyperparameters: unreadable in its trial.json (HParams: missing field steps)"]


def test_a_trial_json_edited_by_hand_is_named_with_its_file_and_the_way_on(tmp_path):
    """A candidate's trial.json whose hparams hold a number as text ("lr": "0.01") was told
    as another option ("unreadable in its trial.json (recorded -> planned; another --seed,
    --profile, … or module list?)") and HParams raised a bare TypeError ("'>' not supported
    between instances of 'str' and 'int'"). Now the file, the field and the way on."""
    plan = _seeds_plan(2)
    folder = tmp_path / "candidates"
    bad = {**plan[1].hparams.to_json(), "lr": "0.01"}
    with pytest.raises(HubensembleError, match=r"lr must be a number \(got '0\.01'\)"):
        HParams.from_json(bad)
    candidate.write_candidate(folder, {"trial": plan[1].trial_id, "status": "failed",
                                       "reason": "boom", "module": "gen", "hparams": bad})
    with pytest.raises(RunError) as err:
        tune.check_candidates(folder, plan)
    path = folder / plan[1].trial_id
    assert str(err.value) == (
        f"{path / 'trial.json'}: its hyperparameters cannot be read (invalid hyperparameters: "
        f"lr must be a number (got '0.01')), so tune cannot tell whether the candidate is "
        f"this sweep's trial {plan[1].trial_id}; restore that file from a copy, or delete the "
        f"folder ({path}) and call run_tune(run_dir={str(tmp_path)!r}, sweep='seeds') (it "
        "runs the trial again)")


@pytest.mark.parametrize("sweep,budget,expected", [  # the least budget each plan's kind has
    ("seeds", 1, ["gen_a"]),
    ("hyper", 1, ["gen_a"]),
    ("aug", 4, ["gen_a"] * 4),  # one augmentation family: its four trials
    ("combined", 2, ["gen_a", "exp_b"]),  # a trial for each of two modules
])
def test_each_sweep_kind_completes_its_plan(tmp_path, modules, sweep, budget, expected):
    task = load_task("sklearn:digits", synthetic=True)
    run = make_run(tmp_path / "run", modules, synthetic=True, task=task)
    keep = "none" if sweep == "seeds" else "all"
    summary = tune.run_tune(run.path, sweep=sweep, budget=budget, profile="quick",
                            strategy="cpu", task=task, progress=False, keep_weights=keep)
    cands = candidates(run)
    assert summary["ok"] == len(cands) == budget
    plan = tune.plan_sweep(json.loads(run.ranking_json.read_text()),
                           {n: s for n, (s, _) in modules.items()}, sweep=sweep,
                           budget=budget, task=task, profile="quick")
    assert [cands[e.trial_id]["module"] for e in plan] == expected
    for e in plan:
        assert HParams.from_json(cands[e.trial_id]["hparams"]) == e.hparams
        weights = run.candidates / e.trial_id / "weights.weights.h5"
        assert weights.exists() == (keep == "all")
        assert cands[e.trial_id]["weights"] == (None if keep == "none" else weights.name)
    if sweep == "aug":  # synthetic digits: no colour distortion, and digits are never flipped
        aug = HParams.from_json(cands[plan[0].trial_id]["hparams"]).augmentation
        assert aug is not None and not aug.has_colour and not aug.flip
    no_tuner_checkpoints(run)


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path, modules, digits):
    names = ("gen_a", "nan_mod", "gone")
    run = equal_scores_run(tmp_path / "run", modules, names, digits)  # one trial each
    summary = tune.run_tune(run.path, sweep="combined", budget=3, profile="quick",
                            strategy="cpu", task=digits, progress=False)
    assert (summary["ok"], summary["failed"]) == (1, 2)
    assert ("combined sweep: the modules within tau 0.02 of the best score (at most 15) that "
            "the budget reaches: gen_a, gone, nan_mod") in run.log.read_text()
    by_module = {r["module"]: r for r in candidates(run).values()}
    assert by_module["gen_a"]["status"] == "ok"
    nan = by_module["nan_mod"]
    assert nan["status"] == "failed" and "nan" in nan["reason"].lower()
    assert "cannot load" in by_module["gone"]["reason"]
    for rec in (nan, by_module["gone"]):
        assert rec["val"] is None and rec["weights"] is None
        assert os.listdir(run.candidates / rec["trial"]) == ["trial.json"]
    with pytest.raises(RunError, match="more than max_failures 1"):  # the caller's keyword
        tune.run_tune(run.path, sweep="combined", budget=3, profile="quick", strategy="cpu",
                      task=digits, progress=False, max_failures=1)
    # deleting a failed candidate retries that trial, and only that one
    shutil.rmtree(run.candidates / nan["trial"])
    tune.run_tune(run.path, sweep="combined", budget=3, profile="quick", strategy="cpu",
                  task=digits, progress=False)
    assert starts(run, "combined") == {t: 1 + (t == nan["trial"]) for t in candidates(run)}


class _DiskFullInTraining(keras.callbacks.Callback):
    """Raises the OSError of a full disk after the first training step, as a write there
    (a TensorBoard event file, a checkpoint of a callback) meets it."""

    def on_train_batch_end(self, batch, logs=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/full/disk/events")


def test_a_full_disk_or_a_file_in_the_way_stops_the_sweep_and_the_trial_runs_again(
        tmp_path, modules, digits):
    # A trial that met a full disk was recorded as failed when its small trial.json still
    # fitted, and the sweep went on to meet it again; a file in the way of a trial's
    # TensorBoard folder failed the trial for good (fixing the path and running the same
    # command again did not run it), and one in the way of the folder itself dropped the
    # trial without a word: no line, no trials.log entry, fit exited 0.
    # Two trials: the one that met the machine's refusal, and one it must not touch.
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", budget=2, profile="quick", strategy="cpu", task=digits,
              progress=False)
    with pytest.raises(OSError) as full:
        tune.run_tune(run.path, callbacks=[_DiskFullInTraining()], **kw)
    assert full.value.errno == errno.ENOSPC and full.value.filename == "/full/disk/events"
    first = trial_log(run, "seeds")[-1]
    assert first[5] == "error" and "No space left" in first[6]
    assert not run.candidates.exists() or os.listdir(run.candidates) == []  # no record
    tensorboard = run.tuner / "tensorboard"
    for in_the_way in (tensorboard / first[4], tensorboard / first[4] / "train"):
        shutil.rmtree(tensorboard, ignore_errors=True)
        in_the_way.parent.mkdir(parents=True, exist_ok=True)
        in_the_way.write_text("not a folder")
        with pytest.raises(OSError) as blocked:  # TensorFlow's FailedPreconditionError
            tune.run_tune(run.path, **kw)
        assert blocked.value.errno == errno.ENOTDIR, blocked.value
        assert blocked.value.filename == str(tensorboard / first[4])  # TF names no path
        assert trial_log(run, "seeds")[-1][4:6] == [first[4], "error"]
        assert not run.candidates.exists() or os.listdir(run.candidates) == []
        in_the_way.unlink()
    summary = tune.run_tune(run.path, **kw)  # space freed, path fixed: the same call resumes
    assert (summary["ok"], summary["failed"]) == (2, 0)
    assert starts(run, "seeds") == {t: 1 + 3 * (t == first[4]) for t in candidates(run)}


class _StopInTraining(keras.callbacks.Callback):
    """Raises `exc` after the first training step, as Ctrl-C or SIGTERM arriving there."""

    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def on_train_batch_end(self, batch, logs=None):
        raise self.exc()


class _SignalComesOutAsAnotherError(keras.callbacks.Callback):
    """A real `signum` in the first step, whose KeyboardInterrupt a context manager's exit
    replaces with its own error, as TensorFlow's graph stack does when an interrupt leaves it
    nested wrongly (a new-user report: "AssertionError: Nesting violated for default stack of
    <FuncGraph>"; the trial was failed with it and the sweep went on after the SIGTERM)."""

    def __init__(self, signum, sent):
        super().__init__()
        self.signum, self.sent = signum, sent  # Keras Tuner copies callbacks for each trial

    def on_train_batch_end(self, batch, logs=None):
        if self.sent.exists():  # once: a second SIGTERM ends the process (by design)
            return
        self.sent.touch()
        try:
            os.kill(os.getpid(), self.signum)
            time.sleep(30)  # the handler raises in here
        finally:
            raise AssertionError("Nesting violated for default stack of <FuncGraph>")


class _SignalInADestructor(keras.callbacks.Callback):
    """A real SIGTERM that arrives while Python runs a __del__ (a new-user check: a weakref
    callback): Python ignores the handler's exception ("Exception ignored in: …"), and the
    fit went on to finish after it, exit 0."""

    def __init__(self, sent):
        super().__init__()
        self.sent = sent

    def on_train_batch_end(self, batch, logs=None):
        if self.sent.exists():
            return
        self.sent.touch()

        class Dying:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # the handler raises in here, and Python ignores it

        Dying()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # __del__'s
def test_an_interrupted_trial_is_logged_in_trials_log(tmp_path, modules, digits):
    from hubensemble.errors import Terminated, pending_stop, sigterm_interrupts

    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="default", budget=4, profile="quick", strategy="cpu", task=digits,
              progress=False)
    for exc, detail in ((KeyboardInterrupt, "SIGINT (Ctrl-C)"), (Terminated, "SIGTERM")):
        with pytest.raises(exc):
            tune.run_tune(run.path, callbacks=[_StopInTraining(exc)], **kw)
        start, stop = trial_log(run, "default")[-2:]
        assert start[4] == stop[4] and start[5] == "start"
        assert stop[5:] == ["interrupted", detail]
        # Nothing half-written is left as a candidate.
        assert not run.candidates.exists() or os.listdir(run.candidates) == []
    assert starts(run, "default") == {start[4]: 2}  # the same trial again: none finished
    # A real signal whose interrupt came out as another error still stops the sweep. SIGINT
    # as in a command's process: Python's own handler (conftest's ctrl_c_raises, autouse).
    for signum, exc, detail in ((signal.SIGTERM, Terminated, "SIGTERM"),
                                (signal.SIGINT, KeyboardInterrupt, "SIGINT (Ctrl-C)")):
        with pytest.raises(exc) as stopped, sigterm_interrupts():
            tune.run_tune(run.path, callbacks=[_SignalComesOutAsAnotherError(
                signum, tmp_path / f"sent-{signum}")], **kw)
        assert isinstance(stopped.value.__cause__, AssertionError)
        assert pending_stop() is None
        assert trial_log(run, "default")[-1][5:] == ["interrupted", detail]
        assert not run.candidates.exists() or os.listdir(run.candidates) == []
    # A signal whose exception Python ignored stops the trial at its next chunk.
    with pytest.raises(Terminated), sigterm_interrupts():
        tune.run_tune(run.path, callbacks=[_SignalInADestructor(tmp_path / "sent-del")], **kw)
    assert trial_log(run, "default")[-1][5:] == ["interrupted", "SIGTERM"]
    assert not run.candidates.exists() or os.listdir(run.candidates) == []
    assert starts(run, "default") == {start[4]: 5}


class _SignalAfterTheLastStep(keras.callbacks.Callback):
    """A real SIGINT once the first trial's steps all ran (Keras' on_train_end), before it
    predicts and is written: the window of a real backbone's minutes of predicting (a new
    user's trial trained three times after two stops there)."""

    def __init__(self, sent):
        super().__init__()
        self.sent = sent  # Keras Tuner copies callbacks for each trial

    def on_train_end(self, logs=None):
        if self.sent.exists():
            return
        self.sent.touch()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)  # the handler raises in here


class _CountSteps(keras.callbacks.Callback):
    """Appends a byte to `path` at each training step of every trial (copied per trial)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_batch_end(self, batch, logs=None):
        with open(self.path, "a") as f:
            f.write("s")


def test_a_stop_after_a_trials_last_step_keeps_its_training_for_the_resumed_sweep(
        tmp_path, modules, digits):
    from hubensemble.stepclock import running_loss

    kw = dict(sweep="seeds", budget=2, profile="quick", strategy="cpu", task=digits,
              progress=False)
    whole = make_run(tmp_path / "whole", modules, task=digits)
    tune.run_tune(whole.path, **kw)  # uninterrupted: the candidates to match
    run = make_run(tmp_path / "run", modules, task=digits)
    interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)  # a command's
    try:
        tune.run_tune(run.path, callbacks=[_SignalAfterTheLastStep(tmp_path / "sent")], **kw)
    except KeyboardInterrupt:
        said = running_loss()
    else:
        pytest.fail("the SIGINT did not stop the sweep")
    finally:
        signal.signal(signal.SIGINT, interrupt)
    assert not run.candidates.exists() or os.listdir(run.candidates) == []
    kept = sorted(os.listdir(run.tuner / "trained"))
    trial = kept[0][:-len(".json")]
    assert kept == [f"{trial}.json", f"{trial}.weights.h5"]
    steps = candidates(whole)[trial]["steps"]
    assert said == (f"the running trial, its {steps} steps done, keeps its trained weights: "
                    "resumed, it only predicts again")

    counted = tmp_path / "steps"
    summary = tune.run_tune(run.path, callbacks=[_CountSteps(counted)], **kw)
    assert summary["ok"] == 2
    cands, ref = candidates(run), candidates(whole)
    assert starts(run, "seeds")[trial] == 2  # started again, but did not train:
    trained = counted.read_text() if counted.exists() else ""
    assert len(trained) == sum(c["steps"] for t, c in cands.items() if t != trial)
    for t in ref:  # the same candidates as the run that was not stopped
        for name in ("val_probs.npy", "test_probs.npy"):
            assert np.array_equal(np.load(run.candidates / t / name),
                                  np.load(whole.candidates / t / name)), (t, name)
        assert cands[t]["val"] == ref[t]["val"]
    assert cands[trial]["train_seconds"] > 0  # the training's, kept with its weights
    assert os.listdir(run.tuner / "trained") == []  # written: the kept weights are gone


def test_tune_restart_removes_the_trained_weights_a_stop_kept_of_its_sweep_alone(tmp_path):
    from hubensemble.tune.restart import restart_sweep
    from hubensemble.tune.trained import trained_paths

    run = Run(tmp_path / "run")
    kept = {t: trained_paths(run, t) for t in ("seeds-0000-m", "hyper-0000-m")}
    os.makedirs(os.path.dirname(kept["seeds-0000-m"][0]))
    for paths in kept.values():
        for path in paths:
            Path(path).write_text("x")
    line = restart_sweep(run, "seeds", trains=())
    assert line.endswith("sweep seeds starts over: removed the trained weights a stop kept")
    assert [os.path.exists(p) for t in kept for p in kept[t]] == [False, False, True, True]


def test_a_plan_warning_is_logged_once_and_not_raised_as_a_python_warning(
        tmp_path, modules, digits, recwarn, caplog, figures_not_drawn):  # report.md's words
    # The plan is made twice (again with each module's BatchNorm policy): the second's
    # warnings reached stderr as a raw UserWarning with source lines.
    run = make_run(tmp_path / "run", modules, task=digits)
    with caplog.at_level(logging.WARNING, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, budget=5, profile="quick", strategy="cpu", task=digits,
                      progress=False)
    said = [r.getMessage() for r in caplog.records if "budget 5" in r.getMessage()]
    why = ("budget 5 gives the default sweep's 4 trials per module to the first 1 of the 2 "
           "selected modules (best-ranked first); pass budget=8 to tune every one")
    # run_tune's words: no "(or budget=None)", which resumes the recorded budget 5.
    assert said == [f"exp_b gets no trial: {why}"]
    assert [str(w.message) for w in recwarn if "budget" in str(w.message)] == []
    # Said again where a user looks afterwards: run.json, fit's closing lines and the report
    # (before, only the warning about 5 not being a multiple of 4).
    from hubensemble.report import summary_table, write_report

    # run.json stores the facts, not the words of whoever ran tune (it stored "pass
    # budget=8", which the command line's report and closing table then showed); each
    # reader words them: the closing table in its caller's words, the report in flags.
    sweep = run.meta()["tune"]["sweeps"]["default"]
    assert sweep["untuned"] == {"modules": ["exp_b"], "budget": 5, "reached": 1, "of": 2,
                                "given": False, "tau": None}
    table = summary_table(run.path)
    assert f"skipped: exp_b got no trial of the default sweep: {why}" in table
    # A budget skip is no failure: no pointer to "every failure" (a new-user check saw it
    # under this line alone, with no failure anywhere to look up).
    assert "every failure" not in table
    flags = why.replace("budget=8", "--budget 8")
    with command_line():
        assert f"skipped: exp_b got no trial of the default sweep: {flags}" in summary_table(
            run.path)
    md = write_report(run.path).markdown.read_text()
    assert f"| default | exp_b | {flags} |" in md and "budget=" not in md, md
    # A record written before the facts were stored shows its words as they are.
    old = dict(sweep, untuned={"modules": ["exp_b"], "reason": "as it was"})
    run.modify(lambda meta: meta["tune"]["sweeps"].update(default=old))
    assert "got no trial of the default sweep: as it was" in summary_table(run.path)
    # A budget that reaches every module clears the record.
    tune.run_tune(run.path, budget=8, profile="quick", strategy="cpu", task=digits,
                  progress=False)
    assert run.meta()["tune"]["sweeps"]["default"]["untuned"] is None
    assert "no trial" not in summary_table(run.path)


def test_tune_restart_starts_a_sweep_over_and_keeps_everything_else(tmp_path, modules, digits,
                                                                    capfd):
    """There was no `tune --restart`: a sweep interrupted badly, or tuned with settings the
    user changed their mind about, could only be started over by hand (or by fit --restart,
    which discards the whole run). Now --restart removes what the sweep wrote (its
    candidates, Keras Tuner's state, its record), says so, and runs it from its start; the
    other sweeps' candidates, a live process's temp folder and the run's lock rules stay,
    and the pool's other candidates still refuse another profile before anything goes."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(strategy="cpu", task=digits, profile="quick", budget=1)
    tune.run_tune(run.path, sweep="seeds", progress=False, **kw)
    tune.run_tune(run.path, sweep="hyper", progress=False, **kw)
    hyper = (run.candidates / "hyper-0000-gen_a" / "trial.json").read_bytes()
    with pytest.raises(RunError, match=re.escape("seed 0 -> 1")):
        tune.run_tune(run.path, sweep="seeds", seed=1, progress=False, **kw)
    with pytest.raises(RunError, match=re.escape("profile quick -> cpu")):  # hyper's pool
        tune.run_tune(run.path, sweep="seeds", restart=True, progress=False,
                      **{**kw, "profile": "cpu"})
    assert (run.candidates / "seeds-0000-gen_a").is_dir()  # refused: nothing removed
    host = socket.gethostname()
    live = run.candidates / f".tmp-seeds-0001-gen_a-{os.getpid()}@{host}"  # being written
    dead = run.candidates / f".tmp-seeds-0002-gen_a-{_dead_pid()}@{host}"
    for folder in (live, dead):
        folder.mkdir()
    capfd.readouterr()
    summary = tune.run_tune(run.path, sweep="seeds", seed=1, restart=True, progress=True, **kw)
    err = " ".join(capfd.readouterr().err.split())
    # In run_tune's words (it said "tune --restart" to a caller who typed no command).
    assert (f"run_tune(restart=True): sweep seeds starts over: removed 2 candidate folders "
            f"({dead.name}, seeds-0000-gen_a), {run.tuner / 'seeds'} (Keras Tuner's state), "
            f"its trials' TensorBoard logs, its record in {run.meta_path}; kept {live.name}, "
            "being written by another process") in err, err
    assert "run_tune(restart=True): sweep seeds starts over" in run.log.read_text()
    from hubensemble.tune.restart import restart_sweep

    with command_line():  # the command line's own: `tune --restart`
        assert restart_sweep(run, "aug", ()).startswith("tune --restart: sweep aug had written "
                                                        "nothing in ")
    assert summary.ok == 1 and summary.reused == 0 and live.is_dir() and not dead.exists()
    live.rmdir()
    cands = candidates(run)
    assert sorted(cands) == ["hyper-0000-gen_a", "seeds-0000-gen_a"]
    assert (run.candidates / "hyper-0000-gen_a" / "trial.json").read_bytes() == hyper
    sweeps = run.meta()["tune"]["sweeps"]
    assert (sweeps["seeds"]["seed"], sweeps["hyper"]["seed"]) == (1, 0)
    assert [r[4] for r in trial_log(run, "seeds")] == ["seeds-0000-gen_a"] * 2  # start, end
    # Other data than the run's (here another split of digits) refuses before the removal:
    # it was refused by the first trial, after the sweep had gone.
    other = load_task("sklearn:digits", seed=7)
    with pytest.raises(RunError, match="is not what the run started on"):
        tune.run_tune(run.path, sweep="seeds", seed=1, restart=True, progress=False,
                      **{**kw, "task": other})
    assert candidates(run) == cands
    with pytest.raises(HubensembleError, match="starts a stand-alone sweep over.* then call "
                       "run_tune with restart=True and without tuner_id / oracle_address"):
        tune.run_tune(run.path, sweep="seeds", restart=True, tuner_id="chief",
                      oracle_address="127.0.0.1:1", progress=False, **kw)


def test_a_pool_holds_one_profile_and_each_sweep_its_own_seed(tmp_path, modules, digits,
                                                              seeds_run):
    """Settings that would mix in the pool are refused whatever the planned trial ids: a
    new-user check ran `fit --profile quick`, `rank` (which put another module first), then
    `tune --profile cpu`; no planned id was taken, so nothing was refused, and the ensemble
    chose from quick and cpu candidates as one sweep. --modules, or another sweep, did the
    same. Another sweep with its own seed stays allowed (run.json records each sweep's)."""
    run = copy_of(seeds_run, tmp_path / "run")  # after tune --sweep seeds --budget 1
    kw = dict(strategy="cpu", task=digits, progress=False)
    before, record = candidates(run), run.meta()["tune"]
    assert list(before) == ["seeds-0000-gen_a"] and record["sweeps"]["seeds"]["head_init"] is None
    ranking = json.loads(run.ranking_json.read_text())
    # A re-ranking that puts exp_b first: the default sweep plans default-0000-exp_b, ...
    atomic_write_json(run.ranking_json, {**ranking, "modules": ranking["modules"][::-1],
                                         "selected": ["exp_b"]})
    # In run_tune's words (it was told "--profile quick -> cpu" and `hubensemble rank …`).
    for call, change in [(dict(sweep="default", profile="cpu"), "profile quick -> cpu"),
                         (dict(sweep="seeds", modules=["exp_b"], profile="cpu"),
                          "profile quick -> cpu"),
                         (dict(sweep="seeds", modules=["exp_b"], profile="quick", seed=1),
                          "seed 0 -> 1"),
                         (dict(sweep="seeds", modules=["exp_b"], profile="quick",
                               batchnorm="train"), "batchnorm auto -> train"),
                         # exp_b's trial would start from a probe head, gen_a's from zeros
                         (dict(sweep="seeds", modules=["exp_b"], profile="quick",
                               head_init="probe", cache_dir=str(tmp_path / "emb")),
                          "head_init unset -> probe")]:
        # This sweep's own candidates: starting it over (tune --restart) is a way on too.
        over = (", start sweep seeds over with them (restart=True: its candidates are "
                "discarded)" if call["sweep"] == "seeds" else "")
        # The way on named: this call with the recorded value in place of its own
        was, _, _ = change.partition(" -> ")
        key, value = was.split(" ", 1)
        given = {k: call.get(k) for k in ("seed", "batchnorm", "head_init")}
        given.update({key: None if value == "unset" else int(value) if key == "seed"
                      else value} if key != "profile" else {})
        kept = ", ".join(f"{k}={v!r}" for k, v in (
            ("budget", 4 if call["sweep"] == "default" else 1),
            ("modules", call.get("modules")), ("seed", given["seed"]),
            ("batchnorm", given["batchnorm"]), ("head_init", given["head_init"]))
            if v not in (None, 0, "auto"))
        recorded_call = (f" (call run_tune(run_dir={str(run.path)!r}, "
                         f"sweep={call['sweep']!r}, {kept}, profile='quick'))")
        with pytest.raises(RunError, match=re.escape(
                f"1 candidate in {run.candidates} (e.g. seeds-0000-gen_a) was tuned with "
                f"other settings than this call's: {change} (recorded -> now), and the "
                "ensemble selects from every candidate there as one pool. Pass the recorded "
                f"value to add to this pool{recorded_call}{over}, use a new run folder for "
                "the new ones, "
                "or rank into a new folder and go on from there: run_rank(out_dir=NEW, ")):
            tune.run_tune(run.path, budget=4 if call["sweep"] == "default" else 1, **call,
                          **kw)
        assert candidates(run) == before and run.meta()["tune"] == record  # nothing written
    # --train-batch-size trains otherwise: the profile run_tune derives from it is refused,
    # naming the flag and the recorded batch (not "profile quick (batch_size 16 -> 8, …)",
    # nor "tune without --profile", which keeps the batch asked for), in the caller's words.
    for words, said in [(contextlib.nullcontext, "train_batch_size 16 -> 8 (recorded -> now)"),
                        (command_line, "--train-batch-size 16 -> 8 (recorded -> now)")]:
        with words(), pytest.raises(RunError) as err:
            tune.run_tune(run.path, sweep="seeds", budget=1, modules=["exp_b"],
                          profile=None if words is command_line else "quick",
                          train_batch_size=8, **kw)
        assert f"tuned with other settings than this call's: {said}, and the" in str(err.value)
        assert "profile quick (" not in str(err.value) and "without" not in str(err.value)
        # the way on: this call at the recorded batch, quick's own: no batch flag then
        way = str(err.value).split("to add to this pool (")[1].split(")")[0]
        assert way.startswith("run `hubensemble tune" if words is command_line
                              else "call run_tune("), way
        assert "train" not in way and "quick" in way, way
    assert candidates(run) == before and run.meta()["tune"] == record
    # A run recorded before --head-init was (no "head_init" in its sweep record) resumes.
    run.modify(lambda meta: meta["tune"]["sweeps"]["seeds"].pop("head_init"))
    assert tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", **kw).reused == 1
    assert run.meta()["tune"]["sweeps"]["seeds"]["head_init"] is None
    # Another sweep at the pool's profile (the run's, without --profile) with its own seed.
    atomic_write_json(run.ranking_json, ranking)
    tune.run_tune(run.path, sweep="hyper", budget=1, profile=None, seed=5, **kw)
    sweeps = run.meta()["tune"]["sweeps"]
    assert {s: (r["seed"], r["profile"]["name"]) for s, r in sweeps.items()} == {
        "seeds": (0, "quick"), "hyper": (5, "quick")}
    assert sorted(candidates(run)) == ["hyper-0000-gen_a", "seeds-0000-gen_a"]


def test_a_trial_keeps_its_profile_as_recorded_when_the_definition_changed(tmp_path):
    """A built-in profile's definition changes between versions (6b0791a gave cpu its
    BatchNorm rule): a trial tuned before is retrained, and its run resumed, with the profile
    as run.json recorded it for the trial's sweep. Before, `trial_profile` took today's cpu by
    its name, so `export --retrain-full` retrained an old trial with other settings (whole
    images, clipped gradients, lr x0.001) than those it was tuned and chosen with."""
    from hubensemble.runprofile import run_profile, training_changes, trial_profile

    cpu = get_profile("cpu")
    older = {k: v for k, v in cpu.to_json().items() if not k.startswith("bn_")}
    meta = {"tune": {"profile": older, "sweeps": {"default": {
        "trials": ["default-0000-m"], "profile": older}}}}
    was = trial_profile({"trial": "default-0000-m", "profile": "cpu"}, meta)
    assert (was.bn_head_init, was.bn_lr_scale, was.bn_augment, was.bn_clipnorm) == (
        None, 1.0, True, 0.0)  # what cpu did before it had the fields
    assert training_changes(was, cpu) == [
        "bn_head_init None -> 'probe'", "bn_lr_scale 1.0 -> 0.001", "bn_augment True -> False",
        "bn_clipnorm 0.0 -> 1.0"]
    # A trial no sweep record lists (a run tuned before records named trials): today's.
    assert trial_profile({"trial": "other", "profile": "cpu"}, meta) == cpu
    run = Run(tmp_path / "run")
    run.path.mkdir()
    atomic_write_json(run.meta_path, meta)
    profile, source = run_profile(run)
    assert profile == was and source == (
        f"the run's last tune, {run.meta_path}, as an older hubensemble defined it "
        "(bn_head_init None -> 'probe', bn_lr_scale 1.0 -> 0.001, bn_augment True -> False, "
        "bn_clipnorm 0.0 -> 1.0 since); its candidates trained so")
    with pytest.raises(RunError, match=re.escape("run.json records profile 'cpu' unreadably")):
        damaged = {"trials": ["default-0000-m"], "profile": {**older, "bn_head_init": "x"}}
        trial_profile({"trial": "default-0000-m", "profile": "cpu"},
                      {"tune": {"sweeps": {"default": damaged}}})


def test_a_training_batch_of_the_users_derives_the_profile_and_keys_tune(
        tmp_path, caplog, capsys):
    """tune fine-tuned in the profile's batches (cpu 32) and no flag lowered it: a user short
    of memory had no way on but Python. --train-batch-size N (tune, fit, distill) trains in
    batches of N with the lr scaled linearly (Goyal et al. 2017, as the profiles scale the
    paper's 512), is recorded in the profile and fit's options, and keys tune and after."""
    import dataclasses

    from hubensemble import options, pipeline
    from hubensemble.cli import build_parser
    from hubensemble.runprofile import run_profile, training_changes
    from hubensemble.stagerecords import read_keys, stage_keys
    from hubensemble.tune.stage import _train_batch

    cpu = get_profile("cpu")
    small = cpu.with_train_batch(8)
    assert (small.name, small.batch_size, small.lr_scale) == ("cpu", 8, 0.15625)
    assert dataclasses.replace(small, batch_size=32, lr_scale=0.625,
                               description=cpu.description) == cpu  # nothing else changes
    scaled = small.scale({"lr": 0.1, "steps": 2500})
    assert (scaled["batch_size"], scaled["momentum"], scaled["steps"]) == (8, 0.9, 50)
    # the profiles' invariant: lr / (batch * (1 - momentum)) is the paper's
    assert scaled["lr"] / (8 * 0.1) == pytest.approx(0.1 / (512 * 0.01))
    assert small.to_json()["batch_size"] == 8 and "--train-batch-size 8" in small.description
    assert cpu.with_train_batch(None) is cpu and cpu.with_train_batch(32) is cpu
    back = cpu.description + "; --train-batch-size 32: batch 32, lr x0.625"
    assert small.with_train_batch(32) == dataclasses.replace(cpu, description=back)
    with pytest.raises(HubensembleError, match="training batch must be an integer >= 1"):
        cpu.with_train_batch(0)
    # run_tune derives it; under paper with a warning (its trials are no longer the paper's)
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        assert _train_batch(cpu, 8) == small
        paper = _train_batch(get_profile("paper"), 64)
    assert (paper.batch_size, paper.lr_scale, paper.momentum) == (64, 0.125, 0.99)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith(
        "train_batch_size=64 under profile='paper': the trials train in batches of 64")
    # a run tuned at it goes on at it, and is not said to be an older definition
    run = Run(tmp_path / "run")
    run.path.mkdir()
    atomic_write_json(run.meta_path, {"tune": {"profile": small.to_json()}})
    assert run_profile(run) == (small, f"the run's last tune, {run.meta_path}, at "
                                       "--train-batch-size 8")
    assert training_changes(small, cpu) == ["batch_size 8 -> 32", "lr_scale 0.15625 -> 0.625"]
    # refused with the options' words, before the folder is read
    with pytest.raises(options.OptionError, match=re.escape(
            "train_batch_size must be an integer >= 1 (or None), got 0")):
        tune.run_tune(tmp_path / "none", train_batch_size=0)
    from hubensemble.distill import run_distill

    with pytest.raises(options.OptionError, match=re.escape(
            "train_batch_size must be an integer >= 1 (or None), got 0")):
        run_distill(tmp_path / "none", train_batch_size=0)
    # the flag of tune, fit and distill (not rank's: rank trains nothing)
    for argv in (["tune", "--run", "r"], ["distill", "--run", "r"],
                 ["fit", "--catalogue", "c", "--data", "d", "--out", "o"]):
        assert build_parser().parse_args(argv).train_batch_size is None
        assert build_parser().parse_args([*argv, "--train-batch-size", "8"]
                                         ).train_batch_size == 8
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--train-batch-size", "0"])
        assert ("argument --train-batch-size: must be an integer >= 1"
                in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rank", "--catalogue", "c", "--data", "d", "--out", "o",
                                   "--train-batch-size", "8"])
    capsys.readouterr()
    # fit records it and reruns tune and after when it changes (rank stays)
    fields = pipeline.FitOptions.STAGE_FIELDS
    assert "train_batch_size" in fields["tune"] and "train_batch_size" not in fields["rank"]
    before = stage_keys("c", "d", pipeline.FitOptions())
    after = stage_keys("c", "d", pipeline.FitOptions(train_batch_size=8))
    assert [s for s in before if before[s] != after[s]] == [
        "tune", "ensemble", "export", "evaluate", "report"]
    # Unset, it keys nothing: a run fitted before the option existed keeps its keys (and is
    # reused, not refused as "written by an older hubensemble"). The reference: the keys
    # hubensemble 0.3.0 at fbcb606 gave these fingerprints and default options (run.json's
    # fit.keys of every run it fitted so).
    old = stage_keys("c" * 16, "d" * 16, pipeline.FitOptions())
    assert (old["tune"], old["report"]) == (
        "06dc31f8f3e76c29b80a5b2b8797c4f38ea619b239cb635ac3b62ff80aadfeca",
        "3da0f6dbea9e10ea21782d9100e2a17dc4a18fd538afe4a01d0fa7b96cfdf3b5")
    assert read_keys("c" * 16, "d" * 16, pipeline.FitOptions())["tune"] == (
        "0704b3d5e302c3e4c3cb8711571bf7e42b74e044af241dc38ad9cafa82358d60")
    with pytest.raises(options.OptionError, match=re.escape(
            "train_batch_size must be an integer >= 1 (or None), got 0")):
        pipeline.FitOptions(train_batch_size=0)
    # in the words fit says for any changed tune option (its results are not reused)
    from hubensemble.resume import _changed_options

    was = json.loads(json.dumps(dataclasses.asdict(pipeline.FitOptions(train_batch_size=8))))
    with command_line():
        assert _changed_options(was, pipeline.FitOptions()) == ["--train-batch-size 8 -> unset"]
        # a run fitted before the option existed records none: it was unset there
        del was["train_batch_size"]
        assert _changed_options(was, pipeline.FitOptions(train_batch_size=8)) == [
            "--train-batch-size unset -> 8"]


def test_a_run_without_a_tune_takes_its_rankings_profile_as_recorded(tmp_path):
    """run_profile fell back to ranking.json's profile by name: a run ranked at cpu as an
    older version defined it (another resolution_cap: its ranking embedded otherwise) was
    tuned at today's cpu without a word. It takes the recorded definition when that ranks
    otherwise, saying what changed; one of another training field only ranks alike and
    today's is taken (nothing was trained at the old one)."""
    import dataclasses

    from hubensemble.runprofile import run_profile

    cpu = get_profile("cpu")
    older = dataclasses.replace(cpu, resolution_cap=(cpu.resolution_cap or 224) * 2)
    run = Run(tmp_path / "run")
    run.path.mkdir()
    where = f"the run's rank, {run.ranking_json}"
    for definition, want, source in (
            (older, older, f"{where}, as an older hubensemble defined it (resolution_cap "
                           f"{older.resolution_cap!r} -> {cpu.resolution_cap!r} since); its "
                           "ranking embedded so"),
            (dataclasses.replace(cpu, bn_lr_scale=cpu.bn_lr_scale * 10), cpu, where),
            (None, cpu, where)):  # a ranking.json of before the record: by name
        atomic_write_json(run.ranking_json, {"modules": [], "profile": "cpu",
                                             "profile_definition": definition and
                                             definition.to_json()})
        assert run_profile(run) == (want, source)
    custom = dataclasses.replace(cpu, name="mine")
    atomic_write_json(run.ranking_json, {"modules": [], "profile": "mine",
                                         "profile_definition": custom.to_json()})
    assert run_profile(run) == (custom, where)


def test_a_pool_tuned_at_an_older_definition_of_its_profile_resumes_as_recorded(
        tmp_path, modules, digits, seeds_run):
    """The pool check compared profiles by name: candidates tuned at an older definition of
    quick took new trials at today's as one pool. Now today's definition is refused, naming
    what changed, and tune without a profile goes on with the one recorded."""
    from hubensemble.runprofile import trial_profile

    run = copy_of(seeds_run, tmp_path / "run")  # after tune --sweep seeds --budget 1
    kw = dict(strategy="cpu", task=digits, progress=False)

    def older(meta):  # as an older quick would have recorded it (clipping, say)
        for entry in (meta["tune"], meta["tune"]["sweeps"]["seeds"]):
            entry["profile"]["bn_clipnorm"] = 0.5
    run.modify(older)
    before, record = candidates(run), run.meta()["tune"]
    with pytest.raises(RunError, match=re.escape(
            f"1 candidate in {run.candidates} (e.g. seeds-0000-gen_a) was tuned with "
            "other settings than this call's: profile quick (bn_clipnorm 0.5 -> 0.0) "
            "(recorded -> now), and the ensemble selects from every candidate there as one "
            "pool. Pass the recorded value to add to this pool (tune without profile goes "
            "on with the profile as recorded), start sweep seeds over with them "
            "(restart=True: its candidates are discarded), use a new run folder")):
        tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", **kw)
    assert candidates(run) == before and run.meta()["tune"] == record
    assert tune.run_tune(run.path, sweep="seeds", budget=1, profile=None, **kw).reused == 1
    trial = json.loads((run.candidates / "seeds-0000-gen_a" / "trial.json").read_text())
    assert trial_profile(trial, run.meta()).bn_clipnorm == 0.5


def test_a_refused_tune_leaves_run_json_as_it_was(tmp_path, modules, digits, seeds_run):
    """A refusal leaves run.json (and plan.json, and the pool) as they were. Before, tune
    recorded its sweep (run.json "tune": trials, sweeps, profile, ...; RUN/tuner/<sweep>/
    plan.json) and only then loaded the data that refused it (changed on disk since rank);
    the second part of a "+" sweep was refused after the first part was recorded and
    trained; and a --tuner-id without --oracle after the sweep was recorded. Nor does it
    leave a file: the sweep's lock file (RUN/tuner/.<sweep>.lock), taken before the checks,
    stayed; log.txt says why it was refused."""
    from PIL import Image

    def files(run):  # every file and folder in the run but its log and the run's lock file
        # (RUN/.fit.lock: a writer's, from Python as from the command line, which stays on
        # disk once released, as filelock intends: fileio.file_lock)
        return {str(p.relative_to(run.path)) for p in run.path.rglob("*")} - {
            "log.txt", ".fit.lock"}

    def draw(root, seed):
        rng = np.random.default_rng(seed)
        for c in ("a", "b", "c"):
            os.makedirs(root / c, exist_ok=True)
            for i in range(10):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
                    root / c / f"{i}.png")

    d, run = tmp_path / "d", Run(tmp_path / "folder_run")
    draw(d, 0)
    args = DataArgs(spec=f"folder:{d}")
    run.attach_task(args.load(), args)
    run.update(modules={n: modules[n][0].to_json() for n in ("gen_a", "exp_b")})
    atomic_write_json(run.ranking_json, ranking_of(modules, ("gen_a", "exp_b"), ["gen_a"]))
    draw(d, 1)  # every image drawn again: the data changed since rank
    before, listed = run.meta_path.read_bytes(), files(run)
    with pytest.raises(RunError, match="is not what the run started on"):
        tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                      progress=False)
    assert run.meta_path.read_bytes() == before and files(run) == listed
    assert not (run.tuner / "seeds" / "plan.json").exists()

    run = copy_of(seeds_run, tmp_path / "run")  # after tune --sweep seeds --budget 1
    kw = dict(budget=1, profile="quick", strategy="cpu", task=digits, progress=False)
    before, pool = run.meta_path.read_bytes(), candidates(run)
    with pytest.raises(RunError, match=re.escape("seed 0 -> 1 (recorded -> now)")):
        tune.run_tune(run.path, sweep="hyper+seeds", seed=1, **kw)
    with pytest.raises(HubensembleError, match="needs oracle_address='HOST:PORT'"):
        tune.run_tune(run.path, sweep="hyper", tuner_id="tuner0", **kw)
    listed = files(run)
    with pytest.raises(RunError, match=re.escape("profile quick -> cpu (recorded -> now)")):
        tune.run_tune(run.path, sweep="hyper", **{**kw, "profile": "cpu"})
    assert files(run) == listed and not (run.tuner / ".hyper.lock").exists()
    assert run.meta_path.read_bytes() == before and candidates(run) == pool
    assert not (run.tuner / "hyper" / "plan.json").exists()


def test_without_a_profile_tune_continues_the_runs(tmp_path, modules, digits, caplog):
    from hubensemble.tune.stage import run_profile

    # `tune --run R` without --profile after `fit --profile quick`: it ran cpu, which clashed
    # with the quick candidates ("another --profile?") or added cpu trials to a quick run.
    run = make_run(tmp_path / "run", modules, task=digits)
    ranking = json.loads(run.ranking_json.read_text())
    assert run_profile(run)[0].name == "cpu"  # neither rank nor a tune recorded one
    atomic_write_json(run.ranking_json, {**ranking, "profile": "quick"})
    kw = dict(sweep="seeds", budget=1, strategy="cpu", task=digits, progress=False)
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, profile=None, **kw)
    assert json.loads(run.meta_path.read_text())["tune"]["profile"]["name"] == "quick"
    assert f"profile quick (the run's rank, {run.ranking_json}" in caplog.text
    # The last tune's profile comes before rank's: the same sweep again resumes (a paper
    # plan would clash with its quick candidate).
    atomic_write_json(run.ranking_json, {**ranking, "profile": "paper"})
    tune.run_tune(run.path, profile=None, **kw)
    assert list(starts(run, "seeds").values()) == [1]


def test_max_failures_zero_names_the_failure_not_the_trials_left_unrun(
        tmp_path, modules, digits, caplog):
    # The sweep stops at its first failure: the others are not run and none is ok, which is
    # --max-failures's doing, not an error outside training.
    names = ("nan_mod", "gone", "raising")
    run = equal_scores_run(tmp_path / "run", modules, names, digits)
    with caplog.at_level(logging.WARNING, logger="hubensemble.tune.stage"), \
            pytest.raises(RunError, match=r"1 trial failed, more than max_failures 0"):
        tune.run_tune(run.path, sweep="combined", budget=3, profile="quick", strategy="cpu",
                      task=digits, progress=False, max_failures=0)
    # The error says to delete the failed folders first; no "run tune again" before it.
    assert not [r for r in caplog.records if "run tune again" in r.getMessage()]


def test_one_cross_entropy_in_trial_json_and_ensemble_json(tmp_path, modules, digits):
    """A candidate that gives some true class probability exactly 0 (float32 softmax
    underflow) records the CE that ensemble.json shows for it: one function, one floor."""
    run = make_run(tmp_path / "run", modules, task=digits)
    spec = modules["gen_a"][0]
    hp = HParams(lr=1e-6, steps=2, batch_size=16, momentum=0.0, seed=3)
    entry = tune.PlanEntry(0, tune.trial_id("default", 0, "gen_a"), "gen_a", hp)
    # The zero head makes the logits the bias: class 1 gets e^-180 (0 in float32), classes
    # 2..9 e^-60 (~1e-26: above 0, below the floor); lr 1e-6 for 2 steps keeps them so.
    bias = np.zeros(10, np.float32)
    bias[0], bias[1] = 60.0, -120.0

    def build():
        model = tune.compile_classifier(tune.build_classifier(spec, 10), hp)
        model.head.bias.assign(bias)
        return model

    record = tune.run_entry(entry, spec, digits, run, profile=QUICK, build=build,
                            keep_weights="none")
    assert record["status"] == "ok", record["reason"]
    val = np.load(run.candidates / entry.trial_id / "val_probs.npy")
    y_val = np.load(run.labels / "val.npy")
    p_true = val[np.arange(len(y_val)), y_val].astype(np.float64)
    assert (p_true == 0).any() and ((p_true > 0) & (p_true < 1e-12)).any()
    # independent reference: -mean log max(p, 1e-7)
    want = float(np.mean(-np.log(np.maximum(p_true, 1e-7))))
    assert metrics.PROB_FLOOR == 1e-7
    saved = json.loads((run.candidates / entry.trial_id / "trial.json").read_text())
    assert saved["val"]["ce"] == pytest.approx(want, rel=1e-12)

    result = ensemble.run_ensemble(run.path, budget=1)
    written = json.loads(run.ensemble_json.read_text())
    assert written == result.to_json()
    assert written["val"]["best_single"]["trial"] == entry.trial_id
    assert written["val"]["best_single"]["nll"] == saved["val"]["ce"]
    assert written["val_curve"][0]["ce"] == saved["val"]["ce"]
    assert written["test"]["best_single"]["nll"] == saved["test"]["ce"]
    assert written["val"]["best_single"]["accuracy"] == saved["val"]["accuracy"]


def test_tune_writes_the_labels_a_run_ranked_elsewhere_lacks(tmp_path, modules, digits):
    """Issue 13, example 8: a run folder holding only run.json and ranking.json (ranked on
    another machine); tune writes RUN/labels/ from the task it loads, so ensemble runs."""
    ranked = make_run(tmp_path / "ranked", modules, task=digits)
    copied = Run(tmp_path / "copied")
    copied.path.mkdir()
    for name in ("run.json", "ranking.json"):
        shutil.copy(ranked.path / name, copied.path / name)
    with pytest.raises(RunError) as e:
        ensemble.run_ensemble(copied.path)
    assert f"{copied.labels / 'val.npy'} is missing" in str(e.value)
    assert f"run_tune(run_dir={str(copied.path)!r}) writes it" in str(e.value)

    summary = tune.run_tune(copied.path, sweep="seeds", budget=1, modules=["gen_a"],
                            profile="quick", strategy="cpu", progress=False)
    assert summary.ok == 1
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(np.load(copied.labels / f"{split}.npy"),
                                      getattr(digits, split).labels)
        assert np.load(copied.labels / f"{split}.npy").dtype == np.int64
    assert ensemble.run_ensemble(copied.path, budget=1)["n_candidates"] == 1
    # Labels that went missing after the sweep: tune writes them without running a trial,
    # and a damaged one is written again.
    (copied.labels / "test.npy").unlink()
    (copied.labels / "val.npy").write_bytes(b"damaged")
    before = trial_log(copied, "seeds")
    tune.run_tune(copied.path, sweep="seeds", budget=1, modules=["gen_a"], profile="quick",
                  strategy="cpu", progress=False)
    assert trial_log(copied, "seeds") == before
    for split in ("val", "test"):
        np.testing.assert_array_equal(np.load(copied.labels / f"{split}.npy"),
                                      getattr(digits, split).labels)


def test_tune_writes_again_labels_files_that_are_there_but_wrong(tmp_path, modules, digits,
                                                                 caplog):
    """An empty val.npy (ensemble: "holds no labels … `tune --run RUN` writes it again"), a
    float (N, 1) train.npy and a test.npy one label short: tune wrote only absent files, so
    the user went round in a loop. Every one is written again, each named in a warning,
    without running a trial."""
    run = make_run(tmp_path / "run", modules, task=digits)
    tune.run_tune(run.path, sweep="seeds", budget=1, modules=["gen_a"], profile="quick",
                  strategy="cpu", progress=False)
    np.save(run.labels / "val.npy", np.zeros(0, int))
    np.save(run.labels / "train.npy", np.zeros((len(digits.train.labels), 1)))
    np.save(run.labels / "test.npy", digits.test.labels[:-1])
    with pytest.raises(RunError, match="holds no labels"):
        ensemble.run_ensemble(run.path, budget=1)
    before = trial_log(run, "seeds")
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        tune.run_tune(run.path, sweep="seeds", budget=1, modules=["gen_a"], profile="quick",
                      strategy="cpu", progress=False)
    assert trial_log(run, "seeds") == before
    said = [r.getMessage() for r in caplog.records]
    assert f"{run.labels / 'val.npy'} holds 0 labels, the run's data {len(digits.val.labels)}" \
        "; writing it again from the run's data" in said
    assert f"{run.labels / 'train.npy'} holds a float64 ({len(digits.train.labels)}, 1) " \
        "array, not a 1-D integer one; writing it again from the run's data" in said
    assert f"{run.labels / 'test.npy'} holds {len(digits.test.labels) - 1} labels, the run's " \
        f"data {len(digits.test.labels)}; writing it again from the run's data" in said
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(np.load(run.labels / f"{split}.npy"),
                                      getattr(digits, split).labels)
    assert ensemble.run_ensemble(run.path, budget=1)["n_candidates"] == 1


def test_tune_errors_name_the_missing_file_and_the_command_that_writes_it(tmp_path):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    with pytest.raises(RunError) as e:  # an empty folder: no run at all (Run.require_started)
        tune.run_tune(run.path, profile="quick", progress=False)
    assert str(e.value).startswith(f"{run.path} is not a hubensemble run (no run.json, no "
                                   "ranking.json); call hubensemble.fit(out=")  # Python's words
    assert "(or run_rank(), then run_tune())" in str(e.value)
    atomic_write_json(run.meta_path, {})
    with pytest.raises(RunError) as e:
        tune.run_tune(run.path, profile="quick", progress=False)
    assert str(e.value).startswith(f"{run.ranking_json} is missing; run_rank(out_dir=")
    run.meta_path.unlink()
    atomic_write_json(run.ranking_json, {"metric": "knn", "modules": [], "selected": []})
    with pytest.raises(RunError) as e:
        tune.run_tune(run.path, profile="quick", progress=False)
    assert str(e.value).startswith(f"{run.meta_path} is missing")
    assert "copy it along with ranking.json" in str(e.value)
    run.update(modules={})
    with pytest.raises(RunError, match=r'records no data \(its "data" section\)'):
        tune.run_tune(run.path, profile="quick", progress=False)
    with pytest.raises(RunError, match=r'run.json records no data .*run_rank\(out_dir='):
        run.task()


def test_a_sweep_where_no_trial_can_leave_a_candidate_stops_at_the_first(tmp_path, modules,
                                                                         digits, in_process):
    """Every trial stopped by an error outside its training (here: no file may exceed 16 KB,
    so the test split's probabilities, 797 x 10 float32, cannot be written) left tune at
    exit 0 with "0 ok, 0 failed, 4 not run"; then each trial met the same refusal in turn
    and the sweep ended "no trial of the sweep finished". The machine's refusal says nothing
    of a trial (f50bd0c): the sweep stops at the first with the one line, and no trial is
    recorded, so each runs once the limit is raised. The command runs in this process under
    the lowered soft limit, put back after it (a new process spent most of this test's time
    importing TensorFlow)."""
    import resource

    run = make_run(tmp_path / "run", modules, task=digits)
    limit = 16 * 1024
    # Python ignores SIGXFSZ: a larger write raises OSError (EFBIG)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        code, _, err = in_process("tune", "--run", run.path, "--budget", "4", "--profile",
                                  "quick", "--strategy", "cpu", "--keep-weights", "none", "-q")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 2, err[-3000:]
    [line] = err.strip().splitlines()
    assert line.startswith(f"hubensemble: error: [Errno 27] File too large: '{run.path}/"), line
    assert line.endswith("raise the file size limit (`ulimit -f`) or write elsewhere, then run "
                         "the same command again to resume"), line
    ends = [row[5:] for row in trial_log(run, "default") if row[5] != "start"]
    assert len(ends) == 1 and ends[0][0] == "error" and "File too large" in ends[0][1], ends
    assert not candidates(run)  # none recorded as failed: each runs again


def test_a_failed_trial_is_one_line_on_the_terminal_and_its_traceback_goes_to_log_txt(
        tmp_path, modules, digits, capfd):
    """Issue 13, example 8, through the command line: Keras Tuner used to print a whole
    traceback per failed trial. Three kinds of failure: a divergence (NaN loss), a module
    that cannot load, a module whose forward pass raises. `hubensemble tune` runs in this
    process (cli.main; capfd: every write to the terminal's file descriptors, Python's and
    TensorFlow's own): what it prints, not the process, is what is checked (a new process
    spent most of this test's time importing TensorFlow, twice)."""
    from hubensemble.cli import main

    def tune_command(*extra):
        capfd.readouterr()
        code = main(["tune", "--run", str(run.path), "--sweep", "combined", "--budget", "4",
                     "--profile", "quick", "--strategy", "cpu", *extra])
        return subprocess.CompletedProcess(extra, code, *capfd.readouterr())

    names = ("gen_a", "nan_mod", "gone", "raising")
    run = equal_scores_run(tmp_path / "run", modules, names, digits)
    out = tune_command()
    assert out.returncode == 0, out.stderr[-3000:]
    failed = {r["trial"]: r["reason"] for r in candidates(run).values()
              if r["status"] == "failed"}
    by_module = {t.rsplit("-", 1)[1]: t for t in failed}
    assert set(by_module) == {"nan_mod", "gone", "raising"}
    assert "nan" in failed[by_module["nan_mod"]]
    assert "cannot load" in failed[by_module["gone"]]
    assert "this module refuses" in failed[by_module["raising"]]
    # stderr: the progress bar (\r-separated redraws) and one line per failed trial
    err = out.stderr.replace("\r", "\n")
    assert "Traceback" not in err and 'File "' not in err
    lines = [line for line in err.splitlines() if " failed: " in line]
    assert len(lines) == len(failed) == 3
    for trial, reason in failed.items():
        want = f"trial {trial} failed: {' '.join(reason.split())} (details in {run.log})"
        assert [line for line in lines if trial in line] == [want]
    # stdout: the summary (gen_a's 5-10 quick steps leave it at chance: said, not failed)
    assert out.stdout.startswith("sweep combined: 1 ok (1 at chance on validation), 3 failed, "
                                 "0 not finished, of 4 planned")
    # RUN/log.txt: each failed trial's reason and traceback
    log = run.log.read_text()
    assert log.count("Traceback (most recent call last)") >= 3
    for trial in failed:
        assert f"INFO hubensemble.tune.train: trial {trial} failed: " in log
    assert "this module refuses" in log and "raise TrialFailed" in log
    # ... and each trial's start before it, as the terminal names it, with its hyperparameters
    # (a killed sweep's log said which trials had ended, not which one was running)
    for trial, rec in candidates(run).items():
        start = (f"INFO hubensemble.tune.train: trial {rec['plan_index'] + 1}/4 {rec['module']} "
                 f"starts: {trial} (lr={json.dumps(rec['hparams']['lr'])}, steps=")
        assert log.count(start) == 1, (start, log)
        assert f"seed={rec['hparams']['seed']}, augmentation=null, " in log.split(start)[1]
        if trial in failed:
            assert log.index(start) < log.index(f"trial {trial} failed: ")
    # -q: nothing at all on the terminal, though a trial runs again (and fails again)
    shutil.rmtree(run.candidates / by_module["nan_mod"])
    again = tune_command("-q")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    log = run.log.read_text()
    assert log.count(f"trial {by_module['nan_mod']} failed: ") == 4  # train's and tuner's
    # Keras Tuner's "Reloading Tuner from …" (its print on resume) went to the log
    assert "INFO hubensemble.tune.tuner: keras-tuner: Reloading Tuner from" in log


class _OneFailure(kt.Tuner):
    """A tuner without a hypermodel whose only trial fails (as FineTuneTuner reports one)."""

    def run_trial(self, trial, *args, **kwargs):
        raise kt.errors.FailedTrialError("the loss became nan")


class _OneTrial(kt.Oracle):
    def __init__(self):
        hp = kt.HyperParameters()
        hp.Fixed("i", 0)
        super().__init__(objective=kt.Objective("val_ce", "min"), max_trials=1,
                         hyperparameters=hp)
        self.verbose = 0

    def populate_space(self, trial_id):
        if len(self.trials) > 1:
            return {"status": "STOPPED", "values": None}
        return {"status": "RUNNING", "values": {"i": 0}}


def test_a_failed_trials_line_under_the_bar_gives_the_offline_way_to_the_doc_it_cites(
        tmp_path, capsys):
    """A failed trial's line under tune's progress bar was written by the bar itself,
    skipping the terminal's renderer: a reason citing docs/reliability.md "Small machines"
    (an out-of-memory trial's) got no "[read it offline: hubensemble docs …]", which every
    other line that cites a doc gets. Fine-tunes (FineTuneTuner) and probes (probe_search)
    say it through one function now (tune.tuner.say_failed). Fails before: no pointer."""
    import types

    from hubensemble.doccites import cited
    from hubensemble.tune.tuner import FineTuneTuner, say_failed

    reason = ('ResourceExhaustedError: out of memory; use --batch-size 8 '
              '(docs/reliability.md "Small machines")')
    assert cited(reason) == ["reliability#small-machines"]  # an installed doc's section
    bar = progress_bar(total=2, desc="tune", unit="trial")
    try:
        capsys.readouterr()
        FineTuneTuner._say_failed(types.SimpleNamespace(
            progress=bar, run_dir=types.SimpleNamespace(log=tmp_path / "log.txt")), "t0", reason)
        say_failed(bar, "t1", reason, tmp_path / "log.txt")  # a probe's, the same way
    finally:
        bar.close()
    err = capsys.readouterr().err
    for trial in ("t0", "t1"):
        assert (f"trial {trial} failed: {reason} (details in {tmp_path / 'log.txt'}) [read it "
                "offline: hubensemble docs reliability#small-machines]") in err, err


def test_keras_tuners_traceback_per_failed_trial_is_switched_off(tmp_path, capfd, caplog,
                                                                 monkeypatch):
    """Keras Tuner prints each failed trial's traceback (its flag config.DEBUG, True by
    default); `quiet_keras_tuner` switches it off for the block and routes its prints
    (e.g. "Reloading Tuner from …") to the log."""
    import importlib

    for k in tune.distributed.KT_VARS:
        monkeypatch.delenv(k, raising=False)
    for path in tune.tuner.KERAS_TUNER_FLAGS:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), bool), path
    from keras_tuner.src import config as kt_config

    assert kt_config.DEBUG is True
    _OneFailure(_OneTrial(), None, directory=str(tmp_path), project_name="loud").search()
    assert "FailedTrialError: the loss became nan" in capfd.readouterr().err  # KT's own print
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        with tune.tuner.quiet_keras_tuner(capture_prints=True):
            assert kt_config.DEBUG is False
            oracle = _OneTrial()
            _OneFailure(oracle, None, directory=str(tmp_path), project_name="quiet").search()
            _OneFailure(_OneTrial(), None, directory=str(tmp_path),
                        project_name="loud")  # a reload: Keras Tuner prints that
    assert [t.status for t in oracle.trials.values()] == ["FAILED"]
    out = capfd.readouterr()
    assert (out.out, out.err) == ("", "")
    assert kt_config.DEBUG is True  # restored
    assert "keras-tuner: Reloading Tuner from" in caplog.text


# ------------------------------------------------------------------------------ the oracle

def _oracle_tuner(tmp_path, plan, *, max_failures=1000):
    """A PlanOracle and its FineTuneTuner over RUN=tmp_path (no model is built)."""
    run = Run(tmp_path)
    specs = {e.module: ModuleSpec(name=e.module, handle="/nowhere", family="generalist")
             for e in plan}
    oracle = tune.PlanOracle(plan, run.candidates, max_failures=max_failures)
    tuner = tune.FineTuneTuner(oracle, tune.FineTuneHyperModel(specs, 10, plan), run=run,
                               task=None, specs=specs, profile="quick", keep_weights="all",
                               directory=str(run.tuner), project_name="seeds")
    return run, oracle, tuner


def _seeds_plan(budget, seed=0):
    spec = ModuleSpec(name="gen", handle="/nowhere", family="generalist")
    ranking = {"modules": [{"name": "gen", "status": "ok", "score": 0.9}], "selected": ["gen"]}
    return tune.plan_sweep(ranking, {"gen": spec}, sweep="seeds", budget=budget, task={},
                           profile="quick", seed=seed)


def _end(oracle, trial, status="COMPLETED", ce=1.0):
    if status == "COMPLETED":
        oracle.update_trial(trial.trial_id, {"val_ce": ce, "val_accuracy": 0.5})
    trial.status = status
    oracle.end_trial(trial)


def test_a_trial_of_another_plan_stops_a_worker_naming_what_must_match(tmp_path):
    """A worker handed a trial its own plan lacks (another --seed than the chief's) stops
    naming what every process must be given alike: the flags on the command line,
    run_tune's keywords from Python (it named flags to both)."""
    import keras_tuner as kt

    _, oracle, _ = _oracle_tuner(tmp_path / "a", _seeds_plan(2, seed=0))
    _, _, other = _oracle_tuner(tmp_path / "b", _seeds_plan(2, seed=1))
    trial = oracle.create_trial("tuner0")
    with pytest.raises(kt.errors.FatalError) as err:
        other.run_trial(trial)
    assert str(err.value).endswith(
        "does not match this process's plan; start every tuner with the same run directory, "
        "sweep, budget, seed, profile and modules (run_tune's keywords)"), err.value
    with pytest.raises(kt.errors.FatalError) as err, command_line():
        other.run_trial(trial)
    assert str(err.value).endswith(
        "start every tuner with the same run directory, --sweep, --budget, --seed, --profile "
        "and --modules"), err.value


@contextlib.contextmanager
def _served_chief(run, lock_holder, tmp_path, *, budget):
    """A chief of a seeds sweep at seed 0 and `budget` on `run`: its record in run.json (as
    its _record_tune writes it), its lock held by another process, and its PlanOracle served
    from this process (Keras Tuner's servicer, as serve_oracle does); yields (plan, address)."""
    import grpc
    from concurrent import futures
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    from hubensemble.tune import stage

    plan = stage._plan_part(run, sweep="seeds", budget=budget, modules=None, profile=QUICK,
                            seed=0, batchnorm="auto", head_init=None, tuner_id="chief",
                            cache_dir=None).plan
    stage._record_tune(run, sweep="seeds", budget=budget, seed=0, profile=QUICK, plan=plan,
                       modules=None, keep_weights="all",
                       batchnorm={"requested": "auto", "modules": {}})
    oracle = tune.PlanOracle(plan, run.candidates)
    tune.FineTuneTuner(oracle, tune.FineTuneHyperModel({}, 2, plan), run=run, task=None,
                       specs={}, profile="quick", keep_weights="all",
                       directory=str(tmp_path / "chief"), project_name="seeds")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    protos.get_service_grpc().add_OracleServicer_to_server(
        oracle_chief.OracleServicer(oracle), server)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    lock_holder(run.path, "tune", "chief", {"command": "tune", "sweep": "seeds",
                                            "oracle": address})
    server.start()
    try:
        yield plan, address
    finally:
        server.stop(grace=None)


def test_a_worker_with_another_seed_than_its_running_chief_names_it_and_records_nothing(
        tmp_path, modules, digits, run_lock_holder):
    """A worker started with other options than its running chief's (here --seed 1 against
    the chief's 0) stopped with Keras Tuner's FatalError and its traceback, naming no option,
    and had first written its own options over the chief's record of the sweep in run.json
    (the resume commands, a plain tune and ensemble read that). Now it leaves the record
    alone and stops with a RunError naming the option, the trial and the command with the
    chief's options."""
    run = make_run(tmp_path / "run", modules, task=digits)
    with _served_chief(run, run_lock_holder, tmp_path, budget=2) as (chief_plan, address):
        recorded = json.loads((run.path / "run.json").read_text())
        with pytest.raises(RunError) as err:
            tune.run_tune(run.path, sweep="seeds", budget=2, profile="quick", seed=1,
                          strategy="cpu", tuner_id="tuner0", oracle_address=address,
                          task=digits, progress=False)
    words = " ".join(str(err.value).split())
    assert (f"the chief handed out trial {chief_plan[0].trial_id} (Keras Tuner's trial "
            "0000), which this worker's plan does not have: its options differ from the "
            "chief's (run.json's record of sweep seeds): seed 0 -> 1 (the chief's -> this "
            "worker's)") in words, words
    assert "run_tune(tuner_id='tuner0')" in words and "budget=2" in words, words
    assert "the chief keeps that trial for tuner0" in words
    assert json.loads((run.path / "run.json").read_text()) == recorded  # the chief's record
    assert not run.candidates.exists() or not os.listdir(run.candidates)


def test_a_worker_with_a_larger_budget_than_its_chief_says_why_trials_are_left(
        tmp_path, modules, digits, run_lock_holder, caplog):
    """A worker at --budget 2 under a chief at 1 plans the chief's trial first (a larger
    budget extends a plan): it trained it, then ended with exit 0 and "1 not finished" with
    no word of why. Now it warns naming the budget that differs."""
    run = make_run(tmp_path / "run", modules, task=digits)
    with _served_chief(run, run_lock_holder, tmp_path, budget=1) as (chief_plan, address):
        with caplog.at_level(logging.WARNING, logger="hubensemble"):
            summary = tune.run_tune(run.path, sweep="seeds", budget=2, profile="quick",
                                    strategy="cpu", tuner_id="tuner0", oracle_address=address,
                                    task=digits, progress=False)
    assert (summary.ok, summary.missing) == (1, 1)
    assert list(candidates(run)) == [chief_plan[0].trial_id]
    left = tune.trial_id("seeds", 1, chief_plan[0].module)
    assert (f"run_tune(tuner_id='tuner0'): 1 of this worker's 2 planned trials (e.g. {left}) "
            "was not handed out by its chief, whose plan is another: this worker's options "
            "differ from the chief's (run.json's record of sweep seeds): budget 1 -> 2 (the "
            "chief's -> this worker's)") in caplog.text, caplog.text


def test_the_options_a_worker_differs_in_from_its_chiefs_record():
    """pool.worker_changes: each option that plans other trials, as "--flag chief's ->
    worker's"; a profile of the chief's name at another batch is --train-batch-size."""
    from hubensemble.tune.pool import worker_changes

    record = {"seed": 0, "budget": 6, "requested_modules": None, "head_init": None,
              "profile": QUICK.to_json(), "batchnorm": {"requested": "auto"}}
    same = dict(budget=6, modules=None, seed=0, profile=QUICK, batchnorm="auto",
                head_init=None)
    assert worker_changes(record, **same) == []
    assert worker_changes(None, **same) == []
    assert worker_changes(record, **{**same, "budget": 8, "modules": ["m1"]}) == [
        "--budget 6 -> 8", "--modules unset -> m1"]
    assert worker_changes(record, **{**same, "profile": QUICK.with_train_batch(8)}) == [
        "--train-batch-size 16 -> 8"]
    assert worker_changes(record, **{**same, "profile": get_profile("cpu"),
                                     "head_init": "probe"}) == [
        "--profile quick -> cpu", "--head-init unset -> probe"]


def test_the_oracle_hands_out_the_plan_and_skips_complete_candidates(tmp_path):
    plan = _seeds_plan(4)
    run, oracle, tuner = _oracle_tuner(tmp_path, plan)
    # entry 1: a complete (failed) candidate -> skipped; entry 2: an ok record whose
    # val_probs.npy is gone -> incomplete -> runs
    candidate.write_candidate(run.candidates, {"trial": plan[1].trial_id, "status": "failed",
                                               "reason": "boom", "module": "gen",
                                               "hparams": plan[1].hparams.to_json()})
    candidate.write_candidate(run.candidates, {"trial": plan[2].trial_id, "status": "ok",
                                               "has_test": False, "module": "gen",
                                               "hparams": plan[2].hparams.to_json()},
                              val_probs=np.full((3, 10), 0.1))
    os.unlink(run.candidates / plan[2].trial_id / "val_probs.npy")
    a = oracle.create_trial("tuner0")
    assert tune.plan_entry(plan, a.hyperparameters.values) is plan[0]
    assert oracle.create_trial("tuner0") is a  # the same tuner asks again: the same trial
    b = oracle.create_trial("tuner1")  # another tuner: the next entry not done or running
    assert tune.plan_entry(plan, b.hyperparameters.values) is plan[2]
    assert tune.hparams_from_hp(b.hyperparameters) == plan[2].hparams
    _end(oracle, a)
    c = oracle.create_trial("tuner0")
    assert tune.plan_entry(plan, c.hyperparameters.values) is plan[3]
    _end(oracle, b, status="FAILED")  # ended without a candidate: not handed out again
    _end(oracle, c)
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert oracle.create_trial("tuner1").status == "STOPPED"
    assert not oracle.stopped_for_failures and oracle.failures() == 1
    # Keras Tuner's state went through temp file + rename, and holds no checkpoints
    names = sorted(os.listdir(run.tuner / "seeds"))
    assert "oracle.json" in names and not [n for n in names if ".tmp-" in n]
    json.loads((run.tuner / "seeds" / "oracle.json").read_text())
    assert tuner.oracle is oracle and tuner.hypermodel is None


def test_the_oracle_resumes_a_killed_trial_first_and_stops_on_failures(tmp_path):
    plan = _seeds_plan(3)
    run, oracle, tuner = _oracle_tuner(tmp_path, plan)
    first = oracle.create_trial("tuner0")
    _end(oracle, first)
    killed = oracle.create_trial("tuner0")  # running when the process "dies"
    tuner.save()
    # a new process, a larger budget: Keras Tuner's reload queues the killed trial, which
    # comes back before any new entry (the finished one has no candidate, so it is handed
    # out again once, after the retry)
    bigger = _seeds_plan(5)
    run, oracle, tuner = _oracle_tuner(tmp_path, bigger)
    again = oracle.create_trial("tuner0")
    assert again.trial_id == killed.trial_id
    assert tune.plan_entry(bigger, again.hyperparameters.values) is bigger[1]
    _end(oracle, again)
    order = []
    while (t := oracle.create_trial("tuner0")).status == "RUNNING":
        order.append(tune.plan_entry(bigger, t.hyperparameters.values).index)
        _end(oracle, t)
    assert order == [0, 2, 3, 4]
    # a killed trial of another plan (other seed) is not run by this one
    run, oracle, tuner = _oracle_tuner(tmp_path / "other", plan)
    oracle.create_trial("tuner0")
    tuner.save()
    other = _seeds_plan(3, seed=9)
    run, oracle, tuner = _oracle_tuner(tmp_path / "other", other)
    t = oracle.create_trial("tuner0")
    assert tune.plan_entry(other, t.hyperparameters.values) is other[0]
    # more failed candidates than max_failures: nothing more starts
    for e in other[:2]:
        candidate.write_candidate(run.candidates, {"trial": e.trial_id, "status": "failed",
                                                   "reason": "NaN", "module": "gen",
                                                   "hparams": e.hparams.to_json()})
    oracle = tune.PlanOracle(other, run.candidates, max_failures=1)
    assert oracle.create_trial("tuner0").status == "STOPPED" and oracle.stopped_for_failures


def test_each_trial_gets_copies_of_the_callbacks_and_its_own_tensorboard_folder(tmp_path):
    import threading

    import keras_tuner as kt

    plan = _seeds_plan(2)
    hp = tune.declare_space(kt.HyperParameters(), plan)
    hp.values = tune.hp_values(plan[1])
    board = tune.TensorBoard(str(tmp_path / "tb"))
    other = keras.callbacks.History()
    got = tune.tuner.trial_callbacks([board, other], plan[1].trial_id, hp)
    assert got[0] is not board and got[1] is not other and board.log_dir == str(tmp_path / "tb")
    assert got[0].log_dir == str(tmp_path / "tb" / plan[1].trial_id)
    hparams = got[2]  # TensorBoard's hparams callback for the HParams tab
    assert "hparams" in type(hparams).__module__ and len(got) == 3
    values = {h.name: v for h, v in tune.tuner.tensorboard_hparams(hp).items()}
    assert values == tune.hp_values(plan[1])
    assert tune.hparams_from_hp(hp) == plan[1].hparams

    class Unshareable(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.lock = threading.Lock()

    with pytest.raises(kt.errors.FatalError, match="deep-copyable"):
        tune.tuner.trial_callbacks([Unshareable()], plan[0].trial_id, hp)


# ------------------------------------------------------------------------------ strategies

def test_strategies_without_accelerators(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert type(tune.get_strategy("cpu")).__name__ == "_DefaultDistributionStrategy"
    assert type(tune.get_strategy("auto")).__name__ == "_DefaultDistributionStrategy"
    # Refused with or without a TF_CONFIG: Keras 3 cannot fit under it (a new-user check
    # found every trial failing with two workers on 127.0.0.1).
    for config in (None, '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": '
                         '"worker", "index": 0}}'):
        if config:
            monkeypatch.setenv("TF_CONFIG", config)
        with pytest.raises(HubensembleError, match=r"strategy multiworker is refused: Keras "
                                                   r"3's Model.fit does not train under .*"
                                                   r"keras-team/keras#20585.*--tuner-id/--oracle"):
            tune.get_strategy("multiworker")
    with pytest.raises(HubensembleError, match="must be one of auto, cpu"):
        tune.get_strategy("gpu")
    with pytest.raises(HubensembleError, match="needs a TPU"):
        tune.get_strategy("tpu")


@pytest.mark.slow
def test_mirrored_on_one_cpu_says_how_to_split_it_and_the_split_trains_on_two(
        tmp_path, modules, digits, caplog):
    """`tune --strategy mirrored` on a machine without a GPU trains one replica, and said
    "configure logical CPUs with tf.config.set_logical_device_configuration": a Python call
    a command-line user cannot make, and no flag does it. The warning now gives a command
    line that does (strategies.SPLIT_CPU_RECIPE), whose Python part splits the CPU in two:
    run here as given, on a hyper trial, which completes on both replicas (weight decay to
    init and dropout included). One process for both (the trial ran in a process of its own,
    test_mirrored_over_two_logical_cpus_completes_a_trial, beside the recipe's)."""
    import tensorflow as tf

    from hubensemble.tune.strategies import SPLIT_CPU_RECIPE

    if len(tf.config.list_logical_devices("CPU")) > 1 or tf.config.list_logical_devices("GPU"):
        pytest.skip("this process has several devices")
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        assert tune.get_strategy("mirrored").num_replicas_in_sync == 1
    assert "No flag splits the CPU" in caplog.text and SPLIT_CPU_RECIPE in caplog.text
    code = re.fullmatch(r'python -c "(.*)" tune --run RUN --strategy mirrored …',
                        SPLIT_CPU_RECIPE).group(1)
    run = make_run(tmp_path / "run", modules, task=digits)
    # A training batch the replicas cannot share evenly (7 over 2): every trial failed in
    # Keras' fit ("Inputs to operation AddN … must have the same size and shape"), each
    # recorded as a failed candidate that the next run reused as done. Refused before any.
    run7 = make_run(tmp_path / "run7", modules, task=digits)  # a pool has one batch
    # Both commands through the recipe's Python part as given, one after the other in one
    # process (its TensorFlow, split in two, imported once): each command's exit code on
    # stdout, a NUL line after each one's stderr.
    both = ("import json, sys\n"
            "for argv in json.loads(sys.argv.pop(1)):\n"
            "    sys.argv[1:] = argv\n"
            "    try:\n"
            "        exec(CODE)\n"
            "    except SystemExit as e:\n"
            "        print('EXIT', e.code, flush=True)\n"
            "    print('\\0', file=sys.stderr, flush=True)\n").replace("CODE", repr(code))
    argvs = [["tune", "--run", str(run.path), "--strategy", "mirrored", "--sweep", "hyper",
              "--budget", "1", "--profile", "quick", "-q"],
             ["tune", "--run", str(run7.path), "--strategy", "mirrored", "--sweep", "seeds",
              "--budget", "1", "--profile", "quick", "--train-batch-size", "7", "-q"]]
    # A user's shell, without TF_CPP_MIN_LOG_LEVEL: the recipe imported TensorFlow itself,
    # before hubensemble, at TensorFlow's level 0, so its INFO and WARNING lines reached the
    # terminal (a mirrored trial's "W… Local rendezvous is aborting …" among them).
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = bounded_by_cpu([sys.executable, "-c", both, json.dumps(argvs)], capture_output=True,
                         text=True, cpu=400, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    codes = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("EXIT ")]
    errs = out.stderr.split("\0\n")
    assert codes == ["0", "2"] and len(errs) == 3, (out.stdout, out.stderr[-2000:])
    assert not re.search(r"^[IW]\d{4} ", errs[0], re.M), errs[0][-2000:]
    (rec,) = candidates(run).values()
    assert rec["strategy"] == "MirroredStrategy" and rec["replicas"] == 2
    assert rec["hparams"]["weight_decay"] > 0 and rec["hparams"]["dropout"] > 0
    val = np.load(run.candidates / rec["trial"] / "val_probs.npy")
    assert val.shape == (200, 10) and np.isfinite(val).all()
    np.testing.assert_allclose(val.sum(1), 1.0, rtol=1e-5)
    words = " ".join(errs[1].split())
    assert ("the training batch of 7 does not divide among the 2 replicas of MirroredStrategy"
            in words and "pass --train-batch-size 6 or 8 (a multiple of 2)" in words), words
    assert not run7.candidates.exists() or not os.listdir(run7.candidates)  # none, failed or not


def test_an_unreachable_tpu_is_named_in_the_error(monkeypatch, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"grpc://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(HubensembleError, match=f"cannot reach the TPU at '{address}'"):
        tune.get_strategy("tpu", tpu=address)
    assert time.monotonic() - t0 < 15
    # auto falls back (with a warning) when the named TPU cannot be reached
    monkeypatch.setenv("TPU_NAME", address)
    assert type(tune.get_strategy("auto")).__name__ == "_DefaultDistributionStrategy"
    assert "cannot reach the TPU" in caplog.text


def test_a_tpu_that_never_answers_fails_within_the_timeout_with_the_way_on(tmp_path):
    """`--strategy tpu --tpu grpc://HOST:PORT` where something accepts the connection but no
    TPU answers: connecting is given $HUBENSEMBLE_TPU_TIMEOUT seconds, then the command
    stops. It said only "connecting to the TPU at … did not finish within 5 s": neither what
    to check nor how to wait longer. In its own process: the connection left hanging
    changes TensorFlow's context. After a TensorFlow op (as tune and fit have decoded their
    data by then) the connection held Python's lock: no time-out, no Ctrl-C, a 12-minute
    hang until kill -9 (a new-user check); this process's 240 s limit is the hang's
    detector, not a speed target. Only after an op: get_strategy connects in a fresh
    Python (strategies._check_in_a_fresh_process), where no op has run, so that process
    covers the case without one (this test ran a second process without the op)."""
    before = "import tensorflow as tf\ntf.constant([1.0]) * 2\n"
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    address = f"grpc://127.0.0.1:{server.getsockname()[1]}"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", before + "import sys\n"
             "from hubensemble.tune import get_strategy\n"
             "from hubensemble.errors import HubensembleError\ntry:\n"
             "    get_strategy('tpu', sys.argv[1])\nexcept HubensembleError as e:\n"
             "    print('ERROR', e)", address], capture_output=True, text=True, timeout=240,
            env={**os.environ, "HUBENSEMBLE_TPU_TIMEOUT": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    finally:
        server.close()
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("ERROR ")]
    assert f"connecting to the TPU at '{address}'" in line and "within 1 s" in line, line
    assert (f"check that a TPU answers at '{address}'" in line
            and "give it longer with $HUBENSEMBLE_TPU_TIMEOUT" in line), line


def test_tuner_id_and_oracle_must_come_together(tmp_path, modules, digits, monkeypatch):
    for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(k, raising=False)
    run = make_run(tmp_path / "run", modules, task=digits)
    # run_tune's keywords (it was told "--tuner-id tuner0 needs --oracle HOST:PORT").
    with pytest.raises(HubensembleError, match=re.escape(
            "tuner_id='tuner0' needs oracle_address='HOST:PORT' (the chief's address)")):
        tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", tuner_id="tuner0",
                      task=digits, progress=False)
    from hubensemble.lockwords import command_line
    from hubensemble.tune.distributed import kerastuner_env

    with command_line(), pytest.raises(HubensembleError, match=re.escape(
            "--tuner-id tuner0 needs --oracle HOST:PORT (the chief's address)")):
        kerastuner_env("tuner0", None).__enter__()
    with pytest.raises(HubensembleError, match="HOST:PORT"):
        tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", tuner_id="tuner0",
                      oracle_address="nohost", task=digits, progress=False)
    assert "KERASTUNER_TUNER_ID" not in os.environ  # restored


def test_a_second_process_on_the_same_sweep_is_refused(tmp_path, modules, digits):
    from hubensemble.fileio import file_lock

    run = make_run(tmp_path / "run", modules, task=digits)
    with file_lock(str(run.tuner / ".seeds.lock")):  # as a running tune holds it
        with pytest.raises(RunError, match="another tune process"):
            tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                          task=digits, progress=False)
    assert not run.candidates.exists() or not os.listdir(run.candidates)
    # Refused before it records anything (a new-user check: the refused process rewrote
    # run.json's sweep record and plan.json with its own profile, which the next plain
    # `tune` then planned with, refusing the running sweep's candidates).
    assert "tune" not in run.meta()
    assert not (run.tuner / "seeds" / "plan.json").exists()


# ------------------------------------------------------------------------------ processes

def profile_json(profile, **changes):
    d = {k: v for k, v in profile.to_json().items() if k != "rule"}
    return json.dumps({**d, **changes})


def _worker(run, *args, env=None):
    return subprocess.Popen([sys.executable, WORKER, str(run.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


def _finish(proc, timeout=240):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    line = [x for x in out.splitlines() if x.startswith("SUMMARY ")][-1]
    return json.loads(line[len("SUMMARY "):])


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.slow
def test_a_killed_sweep_resumes_and_runs_every_trial_once(tmp_path, modules, digits):
    """Killed in a trial after at least one finished, the sweep's next run reruns that
    trial alone. Three trials: one after the killed one when the kill comes in the second
    (a trial the killed process never started). The kill is a real process's; the resume
    runs in this one (run_tune as tune_worker calls it: a second process spent its time
    importing TensorFlow)."""
    budget = 3
    run = make_run(tmp_path / "run", modules, task=digits)
    args = ["--sweep", "seeds", "--budget", str(budget), "--profile", profile_json(SLOW)]
    proc = _worker(run, *args)
    deadline = time.monotonic() + 180
    done_before = {}
    while time.monotonic() < deadline and proc.poll() is None:
        done = {d for d in os.listdir(run.candidates)} if run.candidates.exists() else set()
        done = {d for d in done if not d.startswith(".tmp-")}
        running = set(starts(run, "seeds")) - done
        if done and running:
            time.sleep(0.3)  # well inside the next trial's 60 steps
            done_before = {d: os.path.getmtime(run.candidates / d / "trial.json")
                           for d in os.listdir(run.candidates) if not d.startswith(".tmp-")}
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the sweep ended before it could be killed"
    assert 1 <= len(done_before) < budget
    last = tune.trial_id("seeds", budget - 1, "gen_a")
    stale = run.candidates / f".tmp-{last}-{_dead_pid()}@{socket.gethostname()}"
    stale.mkdir()
    (stale / "val_probs.npy").write_bytes(b"half")

    summary = tune.run_tune(run.path, sweep="seeds", budget=budget, profile=SLOW,
                            strategy="cpu", task=digits, progress=False)
    assert summary["ok"] == budget and summary["missing"] == 0
    cands = candidates(run)  # also asserts no .tmp- folder is left
    assert len(cands) == budget and last in cands
    for trial, mtime in done_before.items():  # finished trials were not run again
        assert os.path.getmtime(run.candidates / trial / "trial.json") == mtime
    counts = starts(run, "seeds")
    assert set(counts) == set(cands)
    assert all(counts[t] == 1 for t in done_before)  # finished before the kill: ran once
    # the trial killed half-way ran again from its start; every other trial ran once
    assert sorted(counts.values()) == [1] * (budget - 1) + [2]
    for trial in cands:
        assert np.load(run.candidates / trial / "val_probs.npy").shape == (200, 10)
    no_tuner_checkpoints(run)


@pytest.mark.slow
def test_a_chief_and_two_workers_share_one_sweep(tmp_path, modules, digits):
    """Also a new-user check: every process under LC_ALL=C PYTHONUTF8=0 (a container, a cron
    job) in a non-ASCII run folder, which Python names 'run\\udce2\\udc86\\udc92c' there: Keras
    Tuner's tf.io.gfile calls stopped the sweep with "UnicodeEncodeError: … surrogates not
    allowed" until it was given the folder in TensorFlow's form (fileio.tf_path)."""
    run = make_run(tmp_path / "run\u2192c", modules, task=digits)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--sweep", "seeds", "--budget", "6", "--oracle", f"127.0.0.1:{port}",
              "--profile", profile_json(SLOW, min_steps=20, max_steps=20)]
    c_locale = {"LC_ALL": "C", "PYTHONUTF8": "0"}
    chief = _worker(run, *common, "--tuner-id", "chief", env=c_locale)
    workers = [_worker(run, *common, "--tuner-id", f"tuner{i}", env=c_locale)
               for i in range(2)]
    summaries = [_finish(p) for p in workers + [chief]]
    # A worker stops when nothing is left to hand out, maybe while the other still trains;
    # the chief waits until every trial has ended.
    assert summaries[-1]["ok"] == 6
    assert all(s["failed"] == 0 and s["ok"] + s["missing"] == 6 for s in summaries)
    cands = candidates(run)
    assert len(cands) == 6
    rows = [r for r in trial_log(run, "seeds") if r[5] == "start"]
    assert sorted(r[4] for r in rows) == sorted(cands)  # each trial started exactly once
    by_tuner = {r[3] for r in rows}
    assert by_tuner == {"tuner0", "tuner1"}  # both workers trained, the chief only served
    assert {c["tuner_id"] for c in cands.values()} == {"tuner0", "tuner1"}
    no_tuner_checkpoints(run)


def test_a_worker_whose_chief_has_gone_stops_naming_it_and_the_way_on(
        tmp_path, run_lock_holder, monkeypatch):
    """A worker whose chief died waited inside Keras Tuner's call (its gRPC client's
    wait_for_ready, an hour's time-out) up to an hour each time it asked. Now a worker's
    calls look at the chief while they wait (its RUN/.sweep-chief.lock and the pid recorded
    beside it): a real chief process, killed, stops the worker's search within seconds with
    an error naming the chief's pid and host and the commands that resume. A chief that runs
    is waited for; one that ended (no lock) with nothing at its address has gone too."""
    from hubensemble.sweeplock import chief_gone, remove_free_locks
    from hubensemble.text import shell
    from hubensemble.tune import chiefwatch
    from hubensemble.tune.distributed import kerastuner_env

    monkeypatch.setattr(chiefwatch, "CHIEF_POLL", 0.2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there after this
    run_dir = tmp_path / "my run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    chief = run_lock_holder(run_dir, "tune", "chief", {"sweep": "seeds", "oracle": address})
    assert chief_gone(run_dir, address) is None  # it runs: a worker waits for it
    with kerastuner_env("tuner0", address):
        _, _, tuner = _oracle_tuner(run_dir, _seeds_plan(1))
        assert type(tuner.oracle).__name__ == "OracleClient"  # Keras Tuner's own client
        os.kill(chief.pid, signal.SIGKILL)
        chief.wait()
        with pytest.raises(RunError) as stopped, command_line():  # the command line's words
            tuner.search()
    message = " ".join(str(stopped.value).split())
    assert message.startswith(
        f"tune --tuner-id tuner0 on {run_dir}: its chief (pid {chief.pid} on host "
        f"{socket.gethostname()}, since "), message
    assert (f"has gone without ending (killed: {run_dir / '.sweep-chief.lock'} is free); this "
            "worker stops rather than wait for it, up to an hour each time it asks") in message
    assert message.endswith(
        f"To resume, start the chief again (`hubensemble tune --run {shell(run_dir)} "
        f"--tuner-id chief --sweep seeds --oracle {address}` with the options it had), then "
        f"this worker (`hubensemble tune --run {shell(run_dir)} --tuner-id tuner0 --sweep "
        f"seeds --oracle {address}` with its own)"), message
    # From Python, run_tune and its keywords.
    from hubensemble.sweeplock import worker_without_chief
    python = str(worker_without_chief(run_dir, "tuner0", "seeds", address, "gone"))
    assert python.startswith(f"run_tune(tuner_id='tuner0') on {run_dir}: gone"), python
    assert (f"run_tune(run_dir={str(run_dir)!r}, sweep='seeds', tuner_id='chief', "
            f"oracle_address={address!r})") in python and "--" not in python
    # A chief that ended (its lock file removed) with nothing at its address has gone too;
    # one that listens there is waited for.
    assert remove_free_locks(run_dir) == [".sweep-chief.lock", ".sweep-chief.lock.holder"]
    assert chief_gone(run_dir, address) == (
        f"its chief has ended ({run_dir / '.sweep-chief.lock'} is gone, and nothing listens "
        f"at {address})")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert chief_gone(run_dir, f"127.0.0.1:{s.getsockname()[1]}") is None


def test_a_trials_log_line_naming_a_file_that_is_not_utf8_is_written_escaped(tmp_path):
    """A failure reason naming caf\\xe9.jpg (read as 'caf\\udce9.jpg') raised
    UnicodeEncodeError out of the sweep when trials.log was appended (a helper's note)."""
    from types import SimpleNamespace

    from hubensemble.tune.tuner import FineTuneTuner

    fake = SimpleNamespace(project_dir=str(tmp_path), tuner_id="chief")
    FineTuneTuner._log(fake, "default-0001", "failed", "cannot read /d/caf\udce9.jpg\nnext")
    row = (tmp_path / "trials.log").read_text("utf-8").rstrip("\n").split("\t")
    assert row[3:] == ["chief", "default-0001", "failed", "cannot read /d/caf\\xe9.jpg next"]


# ------------------------------------------------------------------------------ at chance

def _noise_labels(task, seed=0):
    """`task` with every split's labels drawn at random: nothing to learn."""
    import dataclasses

    rng = np.random.default_rng(seed)
    return dataclasses.replace(task, **{
        name: dataclasses.replace(
            part, labels=rng.integers(0, task.num_classes, len(part.labels)))
        for name in ("train", "val", "test") if (part := getattr(task, name)) is not None})


@pytest.mark.parametrize("noise", [True, False])
def test_candidates_at_chance_are_flagged_by_tune_ensemble_and_report(
        tmp_path, modules, digits, noise, caplog):
    """Under --profile quick (which fails no trial at chance) all 8 fine-tunes of the real
    modules stayed at chance, and neither tune, nor the ensemble, nor the report said so.
    Random labels (nothing to learn) are flagged everywhere, with what to do; candidates that
    learned the digits are not. Probes: fitted to convergence, they learn what the embeddings
    allow in seconds (a tiny module's fine-tunes stay at chance at every quick setting)."""
    from hubensemble.report import build_sections, render_markdown
    from hubensemble.tune import format_summary

    task = _noise_labels(digits) if noise else digits
    run = make_run(tmp_path / "run", modules, task=task)
    with caplog.at_level(logging.WARNING):
        summary = tune.run_tune(run.path, sweep="probe", modules=["gen_a"], profile="quick",
                                strategy="cpu", task=task, progress=False)
    assert summary["ok"] == 4
    text = format_summary(summary)
    trials = sorted(candidates(run))
    if noise:
        assert set(summary["at_chance"]) == set(trials)
        assert "4 ok (4 at chance on validation)" in text
        for t in trials:
            assert f"  at chance {t}: accuracy " in text, text
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(m.startswith("4 candidates are at chance on validation") and
                   "for a probe: its module's embeddings do not separate" in m
                   for m in warned), warned
    else:
        assert summary["at_chance"] == {} and "at chance" not in text
        assert "at chance" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        ensemble.run_ensemble(run.path)
    members = [m["trial"] for m in ensemble.read_ensemble(run.path)["members"]]
    said = (f"{len(members)} ensemble member{'s are' if len(members) > 1 else ' is'} at chance "
            "on validation")
    assert (said in caplog.text) == noise
    if noise:
        assert all(f"{t} (gen_a)" in caplog.text for t in members) and "accuracy " in caplog.text
    md = render_markdown(*build_sections(run.path)[:2])
    assert ("(at chance)" in md) == noise and ("Candidates at chance on validation" in md) == noise
    assert (said in md) == noise
    from hubensemble.report.write import summary_table
    assert (f"warning: {said}" in summary_table(run.path)) == noise  # fit's closing table
    if noise:
        assert "4 of the usable at chance on validation" in md


def test_the_advice_on_candidates_at_chance_follows_their_kind_and_profile():
    """What to do differs: a quick fine-tune trains too briefly (a longer profile), another
    fine-tune needs another lr or more steps, a probe other modules or more validation."""
    from hubensemble.chance import chance_advice

    from hubensemble.lockwords import command_line

    with command_line():
        quick = chance_advice([{"profile": "quick", "hparams": {"lr": 0.003}}])
    assert "--profile cpu" in quick and "5-10 steps" in quick and "--sweep probe" in quick
    assert "fit --restart" in quick
    # From Python, the keywords: run_tune(profile="quick") was told of "--profile cpu".
    python = chance_advice([{"profile": "quick", "hparams": {"lr": 0.003}}])
    assert "profile='cpu'" in python and "sweep='probe'" in python and "--" not in python
    assert "fit(restart=True)" in python
    # A keyword is never followed by "'s" ("profile='quick''s 5-10 steps").
    assert "the 5-10 steps of profile='quick' leave" in python and "''s" not in python
    assert "the 5-10 steps of --profile quick leave" in quick
    other = chance_advice([{"profile": "cpu", "hparams": {"lr": 0.06}}])
    assert "another learning rate" in other and "5-10" not in other
    probe = chance_advice([{"profile": "quick", "kind": "probe", "hparams": {"kind": "probe"}}])
    assert probe.startswith("for a probe: its module's embeddings") and "--profile" not in probe


def test_a_run_folder_whose_name_is_not_utf8_is_refused_before_the_sweep_is_recorded(
        tmp_path, modules, digits):
    """Keras Tuner reaches RUN/tuner through TensorFlow only, which reads every str path as
    UTF-8: a run folder named in another encoding (a Latin-1 'caf\\xe9') stopped the sweep
    with "UnicodeEncodeError: … surrogates not allowed" after run.json and plan.json recorded
    it. It is refused by its name before (fileio.tf_path); a probe sweep needs no Keras
    Tuner."""
    run = make_run(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"), modules, task=digits)
    before = run.meta_path.read_bytes()
    with pytest.raises(HubensembleError, match=r"caf\\xe9/tuner: the name is not UTF-8"):
        tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                      task=digits, progress=False)
    assert run.meta_path.read_bytes() == before and not (run.tuner / "seeds").exists()


def test_a_killed_trial_comes_back_first_in_a_run_folder_named_with_glob_characters(tmp_path):
    """Keras Tuner's reload globs RUN/tuner/<sweep>/trial_*/trial.json: in a run folder named
    'run[1]' it found no trial, and resuming a killed sweep stopped with "RuntimeError: Error
    reloading `Oracle` from existing project" (PlanOracle.reload lists the folder instead)."""
    plan = _seeds_plan(3)
    run, oracle, tuner = _oracle_tuner(tmp_path / "run[1]", plan)
    _end(oracle, oracle.create_trial("tuner0"))
    killed = oracle.create_trial("tuner0")  # running when the process "dies"
    tuner.save()
    run, oracle, tuner = _oracle_tuner(tmp_path / "run[1]", plan)
    assert sorted(oracle.trials) == ["0000", "0001"]
    assert oracle.create_trial("tuner0").trial_id == killed.trial_id


def test_only_the_chief_of_a_chief_worker_sweep_warns_of_older_training_rules(tmp_path,
                                                                              caplog):
    """Every process of a chief/worker sweep warned that the pool mixes training rules (its
    reused trials', another sweep's): one line per worker on their terminals and in the log.
    The pool is the sweep's: its chief (or the one process) warns; a worker logs it at INFO."""
    from hubensemble.tune import stage

    plan = _seeds_plan(2)
    run = Run(tmp_path / "run")
    for trial in (plan[0].trial_id, "hyper-0000-gen"):  # trial.json without train_rule: rule 1
        candidate.write_candidate(run.candidates, {
            "trial": trial, "status": "failed", "reason": "boom", "module": "gen",
            "hparams": plan[0].hparams.to_json()})
    for worker, level in ((False, logging.WARNING), (True, logging.INFO)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
            stage._say_older_rule(run, plan, [plan[1]], sweep="seeds", reused=1,
                                  worker=worker)
        said = [(r.levelno, r.getMessage()[:37]) for r in caplog.records]
        assert said == [(level, "tune seeds: 1 of the 1 trial reused ("),
                        (level, "tune seeds: this sweep's trials are t")], said


def test_a_probe_trial_of_a_version_before_the_rule_was_recorded_is_not_an_older_rule(
        tmp_path, caplog):
    """A probe trial.json without train_rule (any hubensemble before 0.3.0) was warned of as
    rule 1's, 'their numbers may differ slightly': the probe fit did not change with rule 2
    (a probe sweep of ee1ba61 and of 3d86205 equals this version's to the bit), so a pool of
    such probes beside this version's trials mixes no rules. A fine-tuned one still is."""
    from hubensemble.tune import stage

    plan = _seeds_plan(2)
    run = Run(tmp_path / "run")
    for trial, kind in (("probe-0000-gen", {"kind": "probe"}), ("hyper-0000-gen", {})):
        candidate.write_candidate(run.candidates, {
            "trial": trial, "status": "failed", "reason": "boom", "module": "gen",
            "hparams": plan[0].hparams.to_json(), **kind})
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        stage._say_older_rule(run, plan, plan, sweep="seeds", reused=0)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "1 trial of sweep hyper in the same pool" in said[0], said


def test_a_sweeps_summary_says_its_failed_trials_are_done_and_how_to_run_them_again():
    """A chief/worker sweep with failed trials (a module that raises at its first step), run
    again with the same commands, said "all 8 planned trial(s) finished before, reused" and
    the same failures, and nothing said that a failed trial is never retried (Keras Tuner's
    rule too: Oracle.reload re-queues only running trials) or how to retry one. The summary
    says both, with the command that removes their folders."""
    from hubensemble.tune import format_summary

    summary = tune.TuneSummary(
        sweep="default", plan_size=3, ok=1, failed=2, missing=0, trials=[],
        candidates="/r/my run/candidates", failures={"default-0001-m": "boom",
                                                     "default-0002-m": "boom"})
    text = format_summary(summary)
    assert text.splitlines()[3] == (
        "  running the same command again does not retry the 2 failed trials (a failed trial "
        "counts as finished). To retry them once their cause is fixed, remove their "
        "folders (`(cd '/r/my run/candidates' && rm -r default-0001-m default-0002-m)`), then "
        "run the same command again"), text
    assert "retry" not in format_summary({**summary.to_json(), "failed": 0, "failures": {}})


def test_a_finished_worker_says_what_run_tune_says(tmp_path, capsys, monkeypatch):
    """A worker with nothing left to run prints the sweep's summary before TensorFlow loads
    (`sweepend.finished_worker`, from `cli.cmd_tune`;
    test_cli::test_what_a_run_folder_lacks_is_refused_before_tensorflow_loads: without
    TensorFlow): the same words as `run_tune`'s worker, whose summary took TensorFlow's
    13 s, the resumed line, the failed trial and the one at chance included; and that
    worker's own `run_tune` (TensorFlow loaded here) still says them. A sweep recorded with
    other settings than the worker's (--seed) goes to `run_tune`, which refuses it."""
    from hubensemble.cli import main
    from hubensemble.sweepend import finished_worker
    from sweepfiles import ORACLE, WORKER, finished_sweep

    run = finished_sweep(tmp_path / "my run")
    assert main(WORKER + ["--run", str(run)]) == 0
    fast = capsys.readouterr()
    summary = tune.run_tune(run, sweep="seeds", budget=2, profile="quick", batchnorm="train",
                            tuner_id="tuner0", oracle_address=ORACLE)
    said = capsys.readouterr()
    assert fast.out == tune.format_summary(summary) + "\n", (fast.out, said)
    assert said.err == fast.err == "tune seeds: all 2 planned trials finished before, reused\n"
    call = {"sweep": "seeds", "budget": 2, "profile": "quick", "batchnorm": "train",
            "max_failures": 1}
    assert finished_worker(run, "tuner0", call, progress=False) == summary
    assert finished_worker(run, "tuner0", {**call, "seed": 1}) is None  # refused after TF
    # a --train-batch-size derives the profile the pool is checked against: run_tune's
    assert finished_worker(run, "tuner0", {**call, "train_batch_size": 8}) is None
    assert finished_worker(run, "chief", call) is None
    assert finished_worker(run, None, call) is None  # a plain tune
    assert finished_worker(run, "tuner0", {**call, "max_failures": 0}) is None  # its error
    capsys.readouterr()


@pytest.mark.parametrize("edit, why", [
    ({"lr": "0.01"}, "invalid hyperparameters: lr must be a number (got '0.01')"),
    (None, 'no "hparams" in it'),  # tune said "no 'hparams' in it", export 'no "hparams" …'
])
def test_tune_and_export_read_a_hand_edited_trial_json_in_the_same_words(tmp_path, edit, why):
    """tune's resume read a candidate's hyperparameters with its own reader and words; now
    through candidate.record_hparams, the reader behind Candidate.read_hparams (export,
    distill): one text for the file, why and the way on. Fails before for a trial.json with
    no "hparams": tune quoted the key as 'hparams'."""
    plan = _seeds_plan(2)
    folder = tmp_path / "candidates"
    record = {"trial": plan[1].trial_id, "status": "failed", "reason": "boom", "module": "gen"}
    if edit is not None:
        record["hparams"] = {**plan[1].hparams.to_json(), **edit}
    candidate.write_candidate(folder, record)
    with pytest.raises(RunError) as tuned:
        tune.check_candidates(folder, plan)
    with pytest.raises(RunError) as read:
        candidate.read_candidate(folder, plan[1].trial_id).read_hparams()
    path = folder / plan[1].trial_id
    way = (f"; restore that file from a copy, or delete the folder ({path}) to run the trial "
           "again")
    assert str(tuned.value) == (  # tune's names the command (the others give it after)
        f"{path / 'trial.json'}: its hyperparameters cannot be read ({why}), so tune cannot "
        f"tell whether the candidate is this sweep's trial {plan[1].trial_id}"
        + way.replace(") to run the trial again", f") and call run_tune(run_dir="
                      f"{str(tmp_path)!r}, sweep='seeds') (it runs the trial again)"))
    assert str(read.value).startswith(
        f"{path / 'trial.json'}: its hyperparameters cannot be read ({why}){way} (")


def test_a_tune_given_no_sweep_resumes_the_runs_own_where_it_was(
        tmp_path, modules, digits, capsys):
    """`tune --run RUN` (run_tune(sweep=None)) on a run whose probe sweep was interrupted ran
    the default sweep: 8 other trials, the probe trial left undone. It resumes the recorded
    sweep with its recorded --budget and --modules and says so in one line; a sweep given
    explicitly still wins. Fails before: sweep=None was refused as no sweep name."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(profile="quick", strategy="cpu", task=digits)
    tune.run_tune(run.path, sweep="probe", modules=["gen_a"], budget=4, progress=False, **kw)
    done = sorted(candidates(run))
    assert done == [tune.trial_id("probe", i, "gen_a") for i in range(4)]
    lost = run.candidates / done[2]
    shutil.rmtree(lost)  # the sweep stopped before its third trial
    capsys.readouterr()
    summary = tune.run_tune(run.path, sweep=None, **kw)
    said = capsys.readouterr().err
    assert ("resuming sweep probe with budget=4, modules=['gen_a'] (from run.json; sweep=… "
            "chooses another)") in said.splitlines(), said
    assert (summary.sweep, summary.reused, summary.ok) == ("probe", 3, 4)
    assert sorted(candidates(run)) == done and (lost / "trial.json").exists()
    assert json.loads(run.meta_path.read_text())["tune"]["call_sweep"] == "probe"


def test_the_resume_words_name_a_joined_sweep_whole(tmp_path):
    """run.json's "sweep" is the part a "+" call last ran: a `default+probe` call stopped in
    its default part was resumed (a plain tune, and the words of ensemble, export and the
    report: sweepwords.sweep_command) as `--sweep default`, and probe never ran. The call's
    whole sweep ("call_sweep") is what resumes. Fails before: `--sweep default`."""
    from hubensemble.sweepwords import recorded_sweep, resumed_call, sweep_command

    run = tmp_path / "run"
    quick = get_profile("quick").to_json()
    atomic_write_json(run / "run.json", {"tune": {
        "sweep": "default", "call_sweep": "default+probe",
        "sweeps": {"default": {"budget": 8, "seed": 0, "profile": quick}}}})
    with command_line():
        assert sweep_command(run) == (f"`hubensemble tune --run {run} --sweep default+probe "
                                      "--budget 8 --profile quick`")
        assert resumed_call(run, None, None)[:3] == ("default+probe", 8, None)
        assert resumed_call(run, 12, ["gen_a"])[3] == (
            "resuming sweep default+probe (from run.json; --sweep chooses another); --budget "
            "12 as given, run.json records 8")
    # A record from before "call_sweep": its last part; none at all: the default sweep.
    atomic_write_json(run / "run.json", {"tune": {"sweep": "probe"}})
    assert recorded_sweep(run) == "probe"
    atomic_write_json(run / "run.json", {"tune": {"sweep": "nonsense"}})
    assert recorded_sweep(run) is None
    assert resumed_call(run, None, None) == ("default", None, None, None)


class _OutOfMemoryInTraining(keras.callbacks.Callback):
    """Runs out of memory after the first training step, as a batch too large for the
    machine does: a real allocation refused (1 PiB), NumPy's MemoryError at once
    (TensorFlow's ResourceExhaustedError comes after its allocator's 10 s of retries)."""

    def on_train_batch_end(self, batch, logs=None):
        np.ones(1 << 50, np.uint8)


def test_a_trial_out_of_memory_names_the_train_batch_size_that_fits(
        tmp_path, modules, digits, monkeypatch):
    # A trial that ran out of memory was failed with the error's words only
    # ("ResourceExhaustedError: … OOM when allocating tensor …", "MemoryError: …"), no way on;
    # distill's student names the --train-batch-size that fits. So does a trial now: the
    # largest power of two whose training_need fits the room (memory.fitting_train_batch),
    # else a quarter of its batch when the room cannot be read.
    from hubensemble import memory

    kw = dict(sweep="seeds", budget=1, profile="quick", strategy="cpu", task=digits,
              progress=False, callbacks=[_OutOfMemoryInTraining()])
    side = 32  # quick's crop of a module without input size (hyperrule: resolution_cap)
    per_image = memory.TRAIN_PER_PIXEL * side * side
    tight = memory.Room(int((memory.EMBED_BASE_SMALL + 9.5 * per_image) / 0.9), "X")
    for room, fits in ((tight, 8), (None, None)):
        monkeypatch.setattr(memory, "room", lambda room=room: room)
        run = make_run(tmp_path / f"run{fits}", modules, task=digits)
        tune.run_tune(run.path, **kw)
        (record,) = candidates(run).values()
        batch = record["hparams"]["batch_size"]
        fits = fits or batch // 4  # no room read: a quarter of the batch
        assert record["status"] == "failed", record
        reason = record["reason"]
        assert reason.startswith(f"out of memory training in batches of {batch} images "
                                 "(MemoryError: Unable to allocate"), reason
        assert f"pass --train-batch-size {fits} (about " in reason, reason
    from hubensemble._tf import tensorflow as tf

    assert memory.ran_out(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating"))


def test_a_sweep_stopped_by_its_failures_names_its_own_sweep_to_run_again(
        tmp_path, modules, digits):
    """A combined sweep stopped by --max-failures said "…, then run tune again": a plain tune
    runs the default sweep. It names the sweep and the options it was recorded with. Fails
    before: "call run_tune(run_dir=…) again"."""
    names = ("nan_mod", "gone", "raising")
    run = equal_scores_run(tmp_path / "run", modules, names, digits)
    with pytest.raises(RunError) as e:
        tune.run_tune(run.path, sweep="combined", budget=3, profile="quick", strategy="cpu",
                      task=digits, progress=False, max_failures=0)
    assert str(e.value).endswith(
        f"and call run_tune(run_dir={str(run.path)!r}, sweep='combined', budget=3, "
        "profile='quick') again"), e.value


def test_the_command_lines_tune_without_a_sweep_resumes_the_runs_own(tmp_path, modules, digits,
                                                                     in_process):
    """`hubensemble tune --run RUN` (no --sweep) on a probe run whose sweep stopped ran the
    default sweep: --sweep's default was "default" on the command line, where run_tune(sweep=
    None) resumes the run's own. It resumes the probe sweep with its recorded --budget and
    --modules, says so, and trains no other trial; a chief/worker process's lock record names
    that sweep; fit keeps "default". Fails before: default-* trials, no resuming line."""
    from hubensemble.cli import build_parser
    from hubensemble.rundir import lock_member

    run = make_run(tmp_path / "run", modules, task=digits)
    tune.run_tune(run.path, sweep="probe", modules=["gen_a"], budget=4, profile="quick",
                  strategy="cpu", task=digits, progress=False)
    done = sorted(candidates(run))
    shutil.rmtree(run.candidates / done[1])  # the sweep stopped before its second trial
    code, out, err = in_process("tune", "--run", run.path, "--profile", "quick", "--strategy",
                                "cpu")
    assert code == 0, err
    assert ("resuming sweep probe with --budget 4, --modules gen_a (from run.json; --sweep "
            "chooses another)") in err.splitlines(), err
    assert sorted(candidates(run)) == done
    args = build_parser().parse_args(["tune", "--run", str(run.path), "--tuner-id", "tuner0",
                                      "--oracle", "127.0.0.1:1"])
    member, record = lock_member(args)
    assert (member, record["sweep"], record["plan"]["budget"], record["plan"]["modules"]) == (
        "tuner0", "probe", 4, ["gen_a"])
    fit = build_parser().parse_args(["fit", "--catalogue", "c.yaml", "--data", "sklearn:digits",
                                     "--out", str(tmp_path / "fit")])
    assert fit.sweep == "default"
    code, help_text, _ = in_process("tune", "--help")
    assert "(default: the run's: that of its last tune (run.json), else default)" in " ".join(
        help_text.split()), help_text


def test_an_unreadable_labels_file_names_the_runs_own_sweep_to_write_it_again(tmp_path):
    """Run.coverage's refusal of a damaged RUN/labels/val.npy said "run `hubensemble tune
    --run RUN`": a plain tune ran the default sweep in the versions that read these words. It
    names the run's sweep with its recorded options (sweepwords.sweep_command). Fails before:
    the plain command."""
    run = tmp_path / "run"
    quick = get_profile("quick").to_json()
    atomic_write_json(run / "run.json", {"tune": {
        "call_sweep": "probe", "sweeps": {"probe": {"budget": 4, "seed": 0, "profile": quick}}}})
    (run / "labels").mkdir()
    (run / "labels" / "val.npy").write_bytes(b"not a numpy file")
    with command_line(), pytest.raises(RunError) as e:
        Run(run).coverage()
    assert str(e.value).endswith(f"; run `hubensemble tune --run {run} --sweep probe --budget 4 "
                                 "--profile quick` to write it again"), e.value


def test_the_words_of_one_failed_trial_are_singular():
    """"the 1 failed trial(s) are done: … the same command(s)": a counted noun said once,
    right for one and for many (text.counted, the report's rule moved there). Fails before:
    the "(s)" words."""
    from hubensemble.text import counted
    from hubensemble.tune import format_summary

    summary = tune.TuneSummary(
        sweep="default", plan_size=3, ok=2, failed=1, missing=0, trials=[],
        candidates="/r/c", failures={"default-0001-m": "boom"})
    assert format_summary(summary).splitlines()[2] == (
        "  running the same command again does not retry the 1 failed trial (a failed trial "
        "counts as finished). To retry it once its cause is fixed, remove its folder (`(cd "
        "/r/c && rm -r default-0001-m)`), then run the same command again")
    assert [counted(n, "member") for n in (0, 1, 2, "?")] == [
        "0 members", "1 member", "2 members", "? members"]
    assert counted(1, "family", "families") + counted(3, "family", "families") == (
        "1 family3 families")


def test_distill_out_of_memory_under_ulimit_v_gives_tunes_way_on_not_free_memory():
    """distill's student that ran out of memory said "free memory, use a machine with more"
    under `ulimit -v`, where the machine's memory is not what ran out and tune's words for the
    same fault (`memory.training_out_of_memory`) say to raise the limit; both give the room's
    way on now. In a process started under the limit (TensorFlow not loaded). Fails before:
    "free memory" in distill's words."""
    probe = ("import resource, sys; from types import SimpleNamespace as NS; "
             "from hubensemble import memory; "
             "resource.setrlimit(resource.RLIMIT_AS, (int(memory.AS_RESERVED + memory.GIB), "
             "resource.getrlimit(resource.RLIMIT_AS)[1])); "
             "from hubensemble.distill import _out_of_memory; "
             "print(_out_of_memory(MemoryError('no room'), 's', NS(input_size=(224, 224)), "
             "NS(batch_size=4096), 'cpu')); "
             "print(memory.training_out_of_memory(4096, (224, 224), 'cpu'))")
    # Eight arenas (not the cores' count): fewer would save room, but not the 4096 batch's.
    said = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MALLOC_ARENA_MAX": "8",
                                            "PYTHONPATH": os.pathsep.join(sys.path)})
    distill, tune_words = said.stdout.splitlines()[-2:]
    # Offered only where the room it adds covers the need (as tune's words since 7174620).
    assert "MALLOC_ARENA_MAX" not in distill, distill
    limit = "raise the shell's `ulimit -v` (`ulimit -v unlimited`), which sets this room"
    assert limit in tune_words, said
    assert "ran out of memory training the student s in batches of 4096" in distill, distill
    assert limit in distill and "free memory" not in distill, distill
    assert distill.endswith("or pass student='NAME', a module of a smaller input size"), distill


def test_the_redo_command_of_a_trial_plans_that_trial_after_a_smaller_later_call(
        tmp_path, modules, digits, in_process):
    """ensemble's skip line for a trial whose trial.json was cut short named the sweep's
    *last* recorded call: after `tune --budget 3` then `tune --budget 1` (all reused), the
    redo of seeds-0002 said `--budget 1`, which plans seeds-0000 alone and never redoes it.
    It names a budget whose plan holds the trial (sweepwords.redo_budget); run literally, the
    command redoes it. The grouped sweeps' budgets hold whole groups of 4: checked against
    plan_sweep. Fails before: `--budget 1`, and the trial stays unreadable."""
    import shlex

    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", profile="quick", strategy="cpu", task=digits, progress=False)
    tune.run_tune(run.path, budget=3, **kw)
    tune.run_tune(run.path, budget=1, **kw)  # reuses seeds-0000; run.json records budget 1
    lost = run.candidates / tune.trial_id("seeds", 2, "gen_a") / "trial.json"
    lost.write_text('{"trial": "cut')
    with command_line():
        skipped = {s["trial"]: s["reason"] for s in ensemble.run_ensemble(run.path)["skipped"]}
    reason = skipped[lost.parent.name]
    command = re.search(r"run `hubensemble (tune [^`]*)` \(it redoes the trial\)", reason)
    assert command and "--budget 3" in command.group(1), reason
    shutil.rmtree(lost.parent)  # as the words say, then their command literally
    code, _, err = in_process(*shlex.split(command.group(1)))
    assert code == 0, err
    assert json.loads(lost.read_text())["status"] in ("ok", "at_chance"), lost.read_text()
    # default: 4 trials per module, so trial 6 (exp_b's third) needs budget 8, not 7.
    from hubensemble.sweepwords import redo_budget

    specs = {n: s for n, (s, _) in modules.items()}
    ranking = ranking_of(modules, ["gen_a", "exp_b", "exp_c"], ["gen_a", "exp_b"])
    with pytest.warns(UserWarning):
        four = tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="quick",
                               budget=4)
    meta = json.loads(run.meta_path.read_text())
    meta["tune"]["sweeps"]["default"] = {"budget": 4, "seed": 0, "profile": QUICK.to_json(),
                                         "trials": [e.trial_id for e in four]}
    atomic_write_json(run.meta_path, meta)
    budget = redo_budget(run.path, tune.trial_id("default", 6, "exp_b"))
    plan = tune.plan_sweep(ranking, specs, sweep="default", task={}, profile="quick",
                           budget=budget)
    assert tune.trial_id("default", 6, "exp_b") in [e.trial_id for e in plan], budget
    assert redo_budget(run.path, four[3].trial_id) is None  # in the recorded plan


def test_a_smaller_budget_after_a_larger_does_not_warn_a_pooled_module_gets_no_trial(
        tmp_path, modules, digits, caplog):
    """`tune --budget 8` then `tune --budget 4` warned "exp_b gets no trial: budget 4 …"
    while the pool held 4 of exp_b's trials of that sweep, which the ensemble chooses from.
    Worded from the pool (sweepstate.untried): no such warning, a line that says its trials
    are in the pool. A module without any still gets the warning. Fails before: the
    warning."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="probe", profile="quick", strategy="cpu", task=digits, progress=False)
    tune.run_tune(run.path, budget=8, **kw)
    pooled = sum(t.startswith("probe-") and t.endswith("-exp_b") for t in candidates(run))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, budget=4, **kw)
    said = [r for r in caplog.records if "exp_b" in r.getMessage()]
    assert not any("gets no trial" in r.getMessage() for r in said), said
    (line,) = [r.getMessage() for r in said if "pool holds" in r.getMessage()]
    trials = f"{pooled} trial{'' if pooled == 1 else 's'}"
    assert f"the pool holds {trials} of exp_b of the probe sweep" in line, line
    # Without trials in the pool, the warning as before.
    for trial in [t for t in candidates(run) if t.endswith("-exp_b")]:
        shutil.rmtree(run.candidates / trial)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, budget=4, **kw)
    assert any(r.levelno == logging.WARNING and r.getMessage().startswith(
        "exp_b gets no trial: budget 4") for r in caplog.records), caplog.text


def _damaged_trials(run, trials, *, plan, budget):
    """Run folder `run` whose run.json records `plan` (trial ids) of the default sweep at
    `budget` under the quick profile, and candidate folders of `trials` whose trial.json
    is "ok" while its val_probs.npy is gone (incomplete: tune redoes them)."""
    atomic_write_json(run / "run.json", {"tune": {"sweep": "default", "sweeps": {"default": {
        "budget": budget, "seed": 0, "profile": get_profile("quick").to_json(),
        "trials": list(plan)}}}})
    for trial in trials:
        candidate.write_candidate(run / "candidates", {
            "trial": trial, "module": "m", "status": "ok", "has_test": False},
            val_probs=np.full((4, 2), 0.5, np.float32))
        (run / "candidates" / trial / candidate.VAL_PROBS_FILE).unlink()


def test_the_redo_words_of_every_trial_of_a_sweep_name_one_command(tmp_path):
    """After `tune --budget 8` then `tune --budget 4` (run.json records the plan 0000-0003),
    default-0001 and default-0006 incomplete: the skip words of 0001 named `--budget 4` and
    those of 0006 `--budget 8`, and "no usable candidates" listed both commands, then closed
    with the larger. Each trial's words name the one command whose plan holds every trial of
    the sweep in RUN/candidates (sweepwords.redo_budget); a sweep whose folders are all in
    the recorded plan keeps its recorded budget. Fails before: `--budget 4` for 0001."""
    from hubensemble.sweepwords import redo_budget

    run = tmp_path / "run"
    _damaged_trials(run, ["default-0001-m", "default-0006-m"],
                    plan=[f"default-000{i}-m" for i in range(4)], budget=4)
    pool, skipped = candidate.load_pool(run / "candidates", n_val=4)
    assert not pool and [t for t, _ in skipped] == ["default-0001-m", "default-0006-m"]
    with command_line():
        pool, skipped = candidate.load_pool(run / "candidates", n_val=4)
        with pytest.raises(RunError) as e:
            candidate.require_pool(run / "candidates", run, pool, skipped)
    said = str(e.value)
    commands = set(re.findall(r"`hubensemble tune [^`]*`", said))
    assert commands == {f"`hubensemble tune --run {run} --sweep default --budget 8 "
                        "--profile quick`"}, said
    assert said.endswith("run that tune command to write them"), said
    assert all("--budget 8" in reason for _, reason in skipped), skipped
    # All its folders in the recorded plan: the recorded budget (None), for each of them.
    shutil.rmtree(run / "candidates" / "default-0006-m")
    assert redo_budget(run, "default-0001-m") is None
    assert redo_budget(run, "default-0006-m") == 8  # a trial asked about is planned too


def test_a_candidate_folder_without_its_trial_json_names_the_command_that_redoes_it(tmp_path):
    """candidate.inspect said of a folder whose trial.json was deleted "delete the folder and
    run its sweep's tune again, which redoes the trial": no folder, no command. It names both
    (sweepwords.redo_command: the sweep's options and a budget whose plan holds the trial),
    as the report's "to redo it" column does; a scan leaves the way on to its readers, which
    say their own. Fails before: "its sweep's tune again"."""
    run = tmp_path / "run"
    _damaged_trials(run, ["default-0006-m"], plan=[f"default-000{i}-m" for i in range(4)],
                    budget=4)
    folder = run / "candidates" / "default-0006-m"
    (folder / candidate.TRIAL_FILE).unlink()
    with command_line():
        cand, why = candidate.inspect(folder)
    assert cand is None and why == (
        f"{candidate.MISSING_RECORD}; delete {folder} and run `hubensemble tune --run {run} "
        "--sweep default --budget 8 --profile quick` (it redoes the trial)"), why
    cand, why = candidate.inspect(folder)  # from Python: the call
    assert why.endswith(f"call run_tune(run_dir={str(run)!r}, sweep='default', budget=8, "
                        "profile='quick') (it redoes the trial)"), why
    assert candidate.scan(run / "candidates")[1] == [
        ("default-0006-m", candidate.MISSING_RECORD)]


def test_a_resumed_sweep_names_the_budget_given_and_the_profile_kept(
        tmp_path, modules, digits, capsys):
    """`tune --run RUN --budget N` resumed the run's sweep saying only "resuming sweep seeds
    (from run.json; --sweep chooses another)": neither the budget it was given nor the
    profile it kept (the run's last tune's). The line says both (sweepwords.resumed_call).
    Fails before: neither named."""
    from hubensemble.sweepwords import resumed_call

    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(strategy="cpu", task=digits)
    tune.run_tune(run.path, sweep="seeds", modules=["gen_a"], budget=1, profile="quick",
                  progress=False, **kw)
    capsys.readouterr()
    summary = tune.run_tune(run.path, sweep=None, budget=2, profile=None, **kw)
    said = capsys.readouterr().err
    assert ("resuming sweep seeds with modules=['gen_a'], profile='quick' (from run.json; "
            "sweep=… chooses another); budget=2 as given, run.json records 1"
            ) in said.splitlines(), said
    assert (summary.sweep, summary.plan_size, summary.reused) == ("seeds", 2, 1)
    with command_line():  # all recorded: each named once; a profile given is not "kept"
        assert resumed_call(run.path, None, None, None)[3] == (
            "resuming sweep seeds with --budget 2, --modules gen_a, --profile quick (from "
            "run.json; --sweep chooses another)")
        assert resumed_call(run.path, 2, ["gen_a"], "cpu")[3] == (
            "resuming sweep seeds (from run.json; --sweep chooses another); --budget 2 as "
            "given")


@pytest.mark.parametrize("budget, modules", [("4", "gen_a"), (True, ["gen_a", 3]), (-3, [])])
def test_a_hand_edited_sweep_record_is_not_resumed_as_it_reads(tmp_path, budget, modules):
    """A plain `tune --run RUN` resumes the run's sweep with its recorded budget and modules
    (sweepwords.resumed_call). A record edited by hand was taken as it read: "gen_a" resumed
    as the five modules g, e, n, _, a, a module name 3 raised TypeError, "budget": true was
    budget True. Such values are not taken, and the line says so. Fails before: the letters
    (and the TypeError)."""
    from hubensemble.sweepwords import resumed_call

    atomic_write_json(tmp_path / "run.json", {"tune": {"call_sweep": "seeds", "sweeps": {
        "seeds": {"budget": budget, "requested_modules": modules}}}})
    with command_line():
        sweep, got_budget, got_modules, line = resumed_call(tmp_path, None, None)
    assert (sweep, got_budget, got_modules) == ("seeds", None, None), line
    assert line.startswith("resuming sweep seeds (from run.json; --sweep chooses another); "
                           f"not taken: budget {budget!r}"), line
    assert line.endswith("of its record in run.json (edited by hand?), the call's own or the "
                         "defaults instead"), line
    assert ("requested_modules" in line) == bool(modules), line


def test_run_tune_from_python_continues_the_runs_sweep_and_profile(
        tmp_path, modules, digits):
    # run_tune(run) defaulted to sweep="default", profile="cpu" where `tune --run RUN`
    # resumes the run's own sweep at its profile: on a run tuned with a probe sweep at quick
    # it planned a whole default sweep at cpu into the same pool. Its defaults are now the
    # command's (None: the run's). Fails before: the default sweep at cpu.
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(strategy="cpu", task=digits, progress=False)
    tune.run_tune(run.path, sweep="probe", modules=["gen_a"], budget=4, profile="quick", **kw)
    summary = tune.run_tune(run.path, **kw)
    assert (summary.sweep, summary.plan_size, summary.reused) == ("probe", 4, 4)
    record = json.loads(run.meta_path.read_text())["tune"]
    assert (record["call_sweep"], record["profile"]["name"]) == ("probe", "quick")
    assert sorted(candidates(run)) == [tune.trial_id("probe", i, "gen_a") for i in range(4)]


def test_run_tune_refuses_its_arguments_before_it_writes_anything(tmp_path, modules, digits):
    # run_tune(profile="quik") made the run's lock files and log.txt before it was refused,
    # and a malformed oracle_address or tuner_id was a plain HubensembleError (not the
    # ValueError of every other option value) raised under the run's lock, in words naming
    # no argument. Each is now refused first, an OptionError naming the argument, by the
    # rule the command line's --oracle / --tuner-id check applies
    # (stageargs.check_distributed). Fails before: files written, and a HubensembleError.
    from hubensemble.optionerror import OptionError

    run = make_run(tmp_path / "run", modules, task=digits)

    def listing():
        return sorted(p.relative_to(run.path) for p in run.path.rglob("*"))

    before = listing()
    for keywords, words in [
            ({"profile": "quik"}, "profile"),
            ({"oracle_address": "bad", "tuner_id": "tuner0"},
             "oracle_address: oracle address 'bad' is not HOST:PORT"),
            ({"tuner_id": "a b", "oracle_address": "127.0.0.1:8000"},
             "tuner_id: tuner id 'a b': use 'chief'")]:
        with pytest.raises(OptionError) as refused:
            tune.run_tune(run.path, task=digits, progress=False, **keywords)
        assert isinstance(refused.value, ValueError) and words in str(refused.value), keywords
        assert listing() == before, keywords


def test_tunes_refusal_of_a_trial_json_edited_by_hand_names_the_command_that_redoes_it(
        tmp_path):
    """tune refused a candidate whose trial.json hyperparameters cannot be read with "delete
    the folder (X) to run the trial again", naming no command (a plain `tune --run RUN`
    runs the default sweep, not this one). It names its sweep's command with the options
    run.json records (sweepwords.redo_command). Fails before: "… to run the trial again"."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    plan = _seeds_plan(2)
    run = tmp_path / "run"
    atomic_write_json(run / "run.json", {"tune": {"sweeps": {"seeds": {
        "budget": 2, "seed": 0, "profile": PROFILES["quick"].to_json(),
        "trials": [e.trial_id for e in plan]}}}})
    candidate.write_candidate(run / "candidates", {
        "trial": plan[1].trial_id, "status": "failed", "reason": "boom", "module": "gen",
        "hparams": {**plan[1].hparams.to_json(), "lr": "0.01"}})
    with command_line(), pytest.raises(RunError) as err:
        tune.check_candidates(run / "candidates", plan)
    path = run / "candidates" / plan[1].trial_id
    assert str(err.value).endswith(
        f"; restore that file from a copy, or delete the folder ({path}) and run `hubensemble "
        f"tune --run {run} --sweep seeds --budget 2 --profile quick` (it runs the trial "
        "again)"), err.value


@pytest.mark.parametrize("state, why", [
    ({}, "no 'ongoing_trials' in it"),  # said "trial 'ongoing_trials' has no trial.json"
    ([1, 2], "TypeError: list indices must be integers or slices, not str"),
    ({"ongoing_trials": []}, "AttributeError: 'list' object has no attribute 'items'"),
    (None, "it is gone"),  # deleted beside tuner0.json: a FileNotFoundError traceback
])
def test_an_oracle_json_that_is_not_keras_tuners_state_is_refused_naming_it(
        tmp_path, state, why):
    """RUN/tuner/S/oracle.json that parses but is not Keras Tuner's state (edited by hand),
    or is gone while the sweep's other state stays, stopped tune with Keras Tuner's
    KeyError, TypeError or FileNotFoundError traceback. It is refused naming the file, what
    is wrong and the way on (Keras Tuner afresh; the candidates are the record). Fails
    before: Keras Tuner's errors."""
    plan = _seeds_plan(2)
    run = Run(tmp_path / "run")
    project = run.tuner / "seeds"

    def tuner():
        return tune.FineTuneTuner(tune.PlanOracle(plan, run.candidates),
                                  tune.FineTuneHyperModel({}, 2, plan), run=run, task=None,
                                  specs={}, profile="quick", keep_weights="all",
                                  directory=str(run.tuner), project_name="seeds")

    tuner().save()  # Keras Tuner's state of a sweep begun: oracle.json, tuner0.json
    assert (project / "oracle.json").is_file()
    if state is None:
        (project / "oracle.json").unlink()
    else:
        atomic_write_json(project / "oracle.json", state)
    with pytest.raises(HubensembleError) as e:
        tuner()
    assert str(e.value) == (
        f"{project / 'oracle.json'} is not Keras Tuner's state of this sweep ({why}; edited or "
        f"deleted by hand?): delete Keras Tuner's state in {project} (its .json files but "
        "plan.json, and its trial_* folders), then run this tune again: Keras Tuner starts "
        "afresh, and trials with a candidate are not run again")


def test_a_trial_whose_module_runs_out_of_memory_as_it_loads_is_told_the_batch_that_fits():
    """A module that ran out of memory as it loaded (TensorFlow's ResourceExhaustedError or
    oneDNN's "could not create a primitive", wrapped in the ModuleLoadError of the load)
    failed its trial with "the module cannot load: …", as if the module were broken, and
    without the batch that fits: the load's class was looked at before memory's (found by
    350). Fails before: "the module cannot load"."""
    import tensorflow as tf
    from test_rank import load_error_of as loaded  # as hub.savedmodels wraps a failed load

    from hubensemble.tune.train import TrialFailed, trial_failure_reason

    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    onednn = tf.errors.AbortedError(None, None, "could not create a primitive, in file x.cc:1")
    for cause in (oom, onednn):
        said = trial_failure_reason(loaded(cause), 32, None, "cpu")
        assert said.startswith("out of memory training in batches of 32 images "
                               "(ModuleLoadError: "), said
        assert "--train-batch-size" in said or "train_batch_size" in said, said
    # A load that failed otherwise is the module's; the trial's own words stay its own.
    broken = loaded(ValueError("no saved_model.pb"))
    assert trial_failure_reason(broken, 32, None, "cpu") == f"the module cannot load: {broken}"
    assert trial_failure_reason(TrialFailed("the loss is not finite"), 32, None,
                                "cpu") == "the loss is not finite"
    assert trial_failure_reason(oom, 8, None, "cpu").startswith(
        "out of memory training in batches of 8 images (ResourceExhaustedError: ")


def test_the_profile_line_of_a_tune_names_the_callers_way_to_choose_another(
        tmp_path, modules, digits, caplog, in_process):
    """run_tune(profile=None) logs the profile it keeps and how to choose another: from
    Python it said "--profile chooses another", a flag a Python caller has not got. The
    words are the caller's (lockwords.option_word): profile=… from Python, --profile on the
    command line. Fails before: "--profile" from Python."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", modules=["gen_a"], budget=1, strategy="cpu", progress=False)
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, profile=None, task=digits, **kw)
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("profile ")]
    assert line and line[0].endswith("; profile=… chooses another)"), line
    assert "--profile" not in (run.path / "log.txt").read_text()
    # RUN/tuner/<sweep>/plan.json is for a reader (docs/tune.md): every tune writes it again
    # and nothing reads it, so one cut short changes nothing and is replaced (held here).
    plan = run.tuner / "seeds" / "plan.json"
    written = plan.read_text()
    plan.write_text(written[: len(written) // 2])
    code, _, err = in_process("tune", "--run", run.path, "--sweep", "seeds", "--modules",
                              "gen_a", "--budget", "1", "--strategy", "cpu")
    assert code == 0, err
    # (a candidate is there: another profile is refused, and the line says so)
    assert "; another --profile is refused while " in (run.path / "log.txt").read_text()
    assert plan.read_text() == written and list(starts(run, "seeds").values()) == [1]
    assert [e["trial"] for e in json.loads(written)] == ["seeds-0000-gen_a"]


def test_a_tunes_time_in_run_json_is_its_own_work_and_a_chiefs_sweep_records_one(
        tmp_path, modules, digits):
    """run.json's stage time of a tune run on its own counted from the run's lock, which the
    command line takes before TensorFlow loads (6-13 s of imports): it counts from the stage
    function's own entry (Run.work_started). A chief/worker sweep recorded no tune time: the
    chief's is recorded (stagerecords.mark_member_time). Fails before: the seconds held
    before the call counted, and no time for the chief's sweep."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", modules=["gen_a"], budget=1, profile="quick", strategy="cpu",
              task=digits, progress=False)
    tune.run_tune(run.path, **kw)
    with Run(run.path).lock("tune"):  # as the command line holds it, before its imports
        time.sleep(1.0)
        start = time.monotonic()
        tune.run_tune(run.path, **kw)
        wall = time.monotonic() - start
    record = run.meta()["stages"]["tune"]
    assert 0 <= record["seconds"] <= wall + 0.01 and record["command"] == "tune", (record, wall)
    run.modify(lambda meta: meta.pop("stages"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    tune.run_tune(run.path, tuner_id="chief", oracle_address=address, **kw)
    wall = time.monotonic() - start
    record = run.meta()["stages"]["tune"]
    assert 0 <= record["seconds"] <= wall + 0.01 and record["command"] == "tune", (record, wall)
    # A "stages" edited by hand into no object stopped the tune, its sweep done, as it
    # recorded its time (ValueError), and fit's reuse check with AttributeError: such a
    # value is not read, a warning names it, and the stage records itself anew
    # (stagerecords.stage_records). Fails before: the AttributeError, then the ValueError.
    from hubensemble.stagerecords import fit_plan, stage_done

    for edited in ("oops", {"tune": ["seconds", 3]}):
        run.modify(lambda meta: meta.update(stages=edited))
        assert not stage_done(run, "tune", "k") and fit_plan(run) is None
        tune.run_tune(run.path, **kw)
        assert run.meta()["stages"]["tune"]["command"] == "tune", edited


@pytest.mark.parametrize("recorded", [
    "seeds", {"seed": "x"}, {"seed": [0]}, {"profile": "quick"}, {"batchnorm": "auto"},
    {"head_init": ["zero"]}, {"seed": True, "profile": {"name": 3}}])
def test_a_sweep_record_edited_by_hand_is_not_compared_as_it_reads(recorded):
    """tune compares the options of a call with run.json's record of its sweep
    (tune.pool.sweep_changes, worker_changes) before adding candidates to its pool: a record
    edited by hand ("profile": "quick", "seed": "x", the entry a string) stopped it with
    AttributeError or ValueError. Such a value is not compared (this call's record replaces
    it); a readable one still is. Fails before: the errors."""
    from hubensemble.tune.pool import sweep_changes, worker_changes

    kw = dict(seed=0, profile=QUICK, batchnorm="auto", head_init=None)
    assert sweep_changes(recorded, **kw) == []
    assert worker_changes(recorded, budget=None, modules=None, **kw) == []
    assert sweep_changes({"seed": 1, "head_init": None}, **{**kw, "head_init": "probe"}) == [
        "--seed 1 -> 0", "--head-init unset -> probe"]


def test_fit_s_gflops_check_before_a_probe_sweep_costs_each_module_at_its_own_size(
        tiny_module, tmp_path):
    """A probe sweep serves each module at its own size (`probe.probe_resolution`: its
    native_size here, 48 px), not at the profile's cap (quick: 32 px for these images);
    check_budget_before_tune costed every module at `eval_size`, so a --max-gflops between
    the two costs passed before a sweep whose every candidate is above it. Asked of the
    plan (sweepplan.plan_sweep's entries, `tune.trial_size` of each), the module is costed
    at 48 px and refused; a default+probe plan keeps its cheaper fine-tunes at 32 px.
    Fails before: no `plan` keyword (every module at eval_size)."""
    from hubensemble.cost.stage import check_budget_before_tune, module_cost
    from hubensemble.data import Split, Task
    from hubensemble.sweepplan import plan_sweep

    spec = ModuleSpec(name="tiny", handle=tiny_module, native_size=(48, 48))
    task = Task(name="t", source="test", class_names=["a", "b", "c"],
                train=Split(images=np.zeros((6, 12, 12, 3), np.uint8),
                            labels=np.arange(6, dtype=np.int64) % 3))
    assert tune.eval_size(task, spec, "quick") == 32  # the profile's cap: not the probe's
    at = {px: module_cost(spec, 3, px, cache_dir=tmp_path, latency=False)[0].gflops
          for px in (32, 48)}
    assert at[32] < at[48]
    ranking = {"modules": [{"name": "tiny", "status": "ok", "score": 0.5}],
               "selected": ["tiny"]}

    def plan(sweep):
        return [e for part in sweep.split("+") for e in plan_sweep(
            ranking, {"tiny": spec}, sweep=part, task=task, profile="quick")]

    between = (at[32] + at[48]) / 2
    with pytest.raises(RunError) as refused:
        check_budget_before_tune([spec], task, "quick", between, cache_dir=tmp_path,
                                 plan=plan("probe"))
    assert "needs" in str(refused.value) and " at 48 px " in str(refused.value), refused.value
    assert check_budget_before_tune([spec], task, "quick", at[48] * 1.01, cache_dir=tmp_path,
                                    plan=plan("probe")) == {
        "tiny": (pytest.approx(at[48]), 48)}
    assert check_budget_before_tune([spec], task, "quick", between, cache_dir=tmp_path,
                                    plan=plan("default+probe")) == {
        "tiny": (pytest.approx(at[32]), 32)}
    assert tune.trial_size(task, spec, "quick", "probe") == 48
    assert tune.trial_size(task, spec, "quick") == 32


def test_a_pool_of_an_older_profile_definition_goes_on_at_it_and_says_so(
        tmp_path, modules, digits, caplog):
    """A pool tuned at an older definition of its profile (here quick's resolution_cap 24,
    today 32: run.json's records and the candidate's trial.json as that version wrote them)
    goes on, with no profile given, at the recorded definition: its new trials serve at 24
    px too (the HyperRule's 128 px for 8x8 images, capped at 24), so the pool stays one
    profile's. That was logged at INFO, which the terminal does not show: a user saw nothing
    of it. It is a warning now, saying this call's trials go on at it. When a fit holds the
    run its --profile takes today's definition alone, so its refusal named "tune without
    profile" as if fit had it: it names the tune to run. Fails before: no WARNING; the fit's
    words."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", modules=["gen_a"], strategy="cpu", task=digits, progress=False)
    tune.run_tune(run.path, budget=1, profile="quick", **kw)
    assert get_profile("quick").resolution_cap == 32

    def older(meta):
        for entry in (meta["tune"], meta["tune"]["sweeps"]["seeds"]):
            entry["profile"]["resolution_cap"] = 24
    run.modify(older)
    first = run.candidates / "seeds-0000-gen_a" / "trial.json"
    atomic_write_json(first, {**json.loads(first.read_text()), "eval_size": 24})
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        assert tune.run_tune(run.path, budget=2, profile=None, **kw).ok == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
              and r.getMessage().startswith("profile quick (")]
    assert len(warned) == 1 and (
        "as an older hubensemble defined it (resolution_cap 24 -> 32 since); its candidates "
        "trained so; this call's trials train and serve at it too; another profile is "
        "refused while ") in warned[0], warned
    second = json.loads((run.candidates / "seeds-0001-gen_a" / "trial.json").read_text())
    assert second["eval_size"] == 24 == min(128, 24)
    with run.lock("fit"), pytest.raises(RunError) as refused:  # as fit's tune stage
        tune.run_tune(run.path, budget=3, profile="quick", **kw)
    said = str(refused.value)
    assert ("profile quick (resolution_cap 24 -> 32) (recorded -> now)" in said
            and "(fit trains at today's quick alone: call run_tune(run_dir=" in said
            and "without profile, goes on with the profile as recorded)" in said
            and "(tune without profile" not in said), said
    assert sorted(candidates(run)) == ["seeds-0000-gen_a", "seeds-0001-gen_a"]


def two_class_task(n_train: int):
    """A Task of two classes, `n_train` training and 8 validation 12 px images (random
    pixels, labels alternating): the batch warnings' data."""
    from hubensemble.data import Split, Task

    rng = np.random.default_rng(0)
    return Task(name="t", source="test", class_names=["a", "b"],
                train=Split(rng.integers(0, 256, (n_train, 12, 12, 3), dtype=np.uint8),
                            np.arange(n_train) % 2),
                val=Split(rng.integers(0, 256, (8, 12, 12, 3), dtype=np.uint8),
                          np.arange(8) % 2))


def test_a_training_batch_larger_than_the_training_set_is_said(tmp_path, modules, caplog):
    """tune --train-batch-size 32 on 20 training images trained on without a word: each
    batch repeats every image (1.6 times here) and the learning rate scales with the batch
    (quick's lr_scale 0.3125 x 32 / 16). It is said, with the batch of distinct images to
    pass; a profile's own batch (BiT's rule trains few-shot tasks so) is not. Fails before:
    no warning."""
    task = two_class_task(20)
    run = make_run(tmp_path / "run", modules, task=task)
    with caplog.at_level(logging.WARNING, logger="hubensemble.tune.search"):
        tune.run_tune(run.path, sweep="seeds", modules=["gen_a"], budget=1, profile="quick",
                      train_batch_size=32, strategy="cpu", task=task, progress=False)
    said = [r.getMessage() for r in caplog.records if r.name == "hubensemble.tune.search"]
    assert said == [
        "the trials train in batches of 32 (train_batch_size), more than the 20 training "
        "images: each batch repeats every image about 1.6 times (each augmented on its own), "
        f"and the learning rate scales with the batch (lr_scale {0.3125 * 32 / 16:g}, 2x "
        "profile quick's); pass train_batch_size=20 or less for batches of distinct images "
        "(the profile's own: 16)"]
    from hubensemble.tune.search import batch_over_data

    plan = tune.plan_sweep(ranking_of(modules, ["gen_a"], ["gen_a"]),
                           {"gen_a": modules["gen_a"][0]}, sweep="seeds", task=task,
                           profile="quick", budget=1)
    assert plan[0].hparams.batch_size == 16  # quick's own batch: BiT's rule, not said
    assert batch_over_data(plan, get_profile("quick"), 6) is None


@pytest.mark.parametrize("edit, field, kind", [
    ({"sweeps": ["x"]}, 'the "sweeps" of its "tune" record', "a JSON array"),
    ({"sweeps": "x"}, 'the "sweeps" of its "tune" record', "a JSON string"),
    ({"sweeps": {"seeds": ["x"]}}, "sweep 'seeds' of its \"tune\" -> \"sweeps\" record",
     "a JSON array"),
])
def test_a_hand_edited_sweep_record_is_refused_naming_run_json_before_tensorflow(
        tmp_path, modules, digits, edit, field, kind):
    """run.json's "tune" -> "sweeps" of another kind (a hand edit) stopped `tune --run R` with
    an AttributeError in tune/pool.py's check_pool (runprofile) after TensorFlow loaded. One
    reader (sweepstate.sweep_records) refuses it, in the command line's check before
    TensorFlow (preflight.check_run) and in run_tune's: run.json absolute, the field, the way
    on. Fails before: AttributeError from run_tune, nothing from check_run."""
    from hubensemble import preflight

    run = make_run(tmp_path / "run", modules, task=digits)
    run.update(tune=edit)
    words = (f"{run.meta_path.resolve()}: {field} is {kind}, expected a JSON object (as tune "
             "records it); restore run.json from a copy, or delete ")
    with pytest.raises(RunError) as refused:
        preflight.check_run(run.path, "tune")
    assert str(refused.value).startswith(words), refused.value
    with pytest.raises(RunError) as refused:
        tune.run_tune(run.path, sweep="seeds", budget=2, profile="quick", strategy="cpu",
                      task=digits, progress=False)
    assert str(refused.value).startswith(words), refused.value
    assert not run.candidates.exists() or not any(run.candidates.iterdir())


def test_the_profile_line_says_another_is_refused_while_the_pool_holds_candidates(
        tmp_path, modules, digits, caplog):
    """tune without a profile kept the run's and ended its line "profile=… chooses another"
    (--profile on the command line) even while RUN/candidates held candidates, when every
    other profile is refused (check_pool). It says so then, and the way it names (restart at
    another) trains at it. Fails before: "chooses another" with a candidate in the pool."""
    import dataclasses

    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", modules=["gen_a"], budget=1, strategy="cpu", task=digits,
              progress=False)
    tune.run_tune(run.path, profile="quick", **kw)
    with caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, profile=None, **kw)
    line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("profile ")]
    assert len(line) == 1 and line[0].endswith(
        f"; another profile is refused while {run.candidates} holds candidates (1) of this "
        "one: start each sweep over at it with restart=True (its candidates are discarded), "
        "or use a new run folder)"), line
    other = dataclasses.replace(QUICK, name="quick_other")
    with pytest.raises(RunError, match="--profile quick -> quick_other|profile quick -> "):
        tune.run_tune(run.path, profile=other, **kw)
    tune.run_tune(run.path, profile=other, restart=True, **kw)
    assert json.loads((run.candidates / "seeds-0000-gen_a" / "trial.json").read_text())[
        "profile"] == "quick_other"


def test_a_sweep_killed_before_any_trial_finished_says_it_restarts_at_another_profile(
        tmp_path, modules, digits, caplog):
    """A tune killed (SIGKILL) before its first trial ended leaves run.json's record of its
    profile and no candidate; resumed with another profile it restarted at the new one
    without a word. It is said: run.json, the recorded profile, the new one, that nothing had
    finished so nothing mixes. Fails before: no warning."""
    import shutil as _shutil

    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", modules=["gen_a"], budget=1, strategy="cpu", task=digits,
              progress=False)
    tune.run_tune(run.path, profile="quick", **kw)
    _shutil.rmtree(run.candidates / "seeds-0000-gen_a")  # as a kill before it was written
    other = Profile(**{**QUICK.__dict__, "name": "quick_other"})
    with caplog.at_level(logging.WARNING, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, profile=other, **kw)
    said = [r.getMessage() for r in caplog.records if "records a tune at profile" in
            r.getMessage()]
    assert said == [
        f"{run.meta_path} records a tune at profile quick, and this one runs at quick_other: "
        f"no candidate of quick had finished in {run.candidates} (none of its trials ended), "
        "so the sweep starts at quick_other and nothing of the two profiles mixes in one "
        "pool; profile='quick' goes on at quick instead"], said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.tune.stage"):
        tune.run_tune(run.path, profile=other, **kw)  # its candidate is there: no word
    assert not [r for r in caplog.records if "records a tune at profile" in r.getMessage()]


def test_an_edited_members_export_warning_in_a_fit_folder_stops_at_the_fit_command(
        tmp_path, modules, digits, caplog):
    """export's warning on a member whose weights file changed since tune wrote it named the
    fit's command in a fit's folder (which runs the ensemble and the export after the trial)
    and still went on ", then the ensemble". It stops at the fit's command there; outside a
    fit's plan the step stays. Fails before: ", then the ensemble" after `hubensemble fit …`."""
    from hubensemble.export import export_ensemble

    run = make_run(tmp_path / "run", modules, task=digits)
    tune.run_tune(run.path, sweep="probe", modules=["gen_a"], budget=4, profile="quick",
                  strategy="cpu", task=digits, progress=False)
    ensemble.run_ensemble(run.path, budget=1)
    meta = json.loads(run.meta_path.read_text())
    meta["fit"] = {"options": {"sweep": "probe", "budget": 4, "seed": 0, "profile": "quick",
                               "modules": ["gen_a"], "top_k": 1}}
    atomic_write_json(run.meta_path, meta)
    member = ensemble.read_ensemble(run.path)["members"][0]["trial"]
    cand = candidate.read_candidate(run.candidates, member)
    model = tune.build_classifier(modules["gen_a"][0], 10)
    model.load_weights(cand.weights_path)
    model.head.weights[0].assign(np.asarray(model.head.weights[0]) + 0.01)
    model.save_weights(cand.weights_path)
    # Since 4d10cf5c export refuses such a member (it warned): the refusal's way on stops
    # at the fit's command too, then this export (to another folder than the fit's).
    with command_line(), pytest.raises(RunError) as refused:
        export_ensemble(run.path, tmp_path / "model", task=digits, progress=False)
    said = str(refused.value)
    assert (f"--out {run.path}` again (it redoes the trial), then this export again, or pass "
            "--skip-missing") in said, said
    assert "or run `hubensemble fit " in said and "then the ensemble" not in said, said


def test_a_finished_workers_profile_line_says_another_profile_is_refused(tmp_path, caplog):
    """A finished worker kept at the run's profile (no --profile) said "--profile chooses
    another" before TensorFlow, where its candidates refuse every other profile: run_tune's
    line says so (`runprofile.choose_another`), and the worker's now says the same. Fails
    before: "--profile chooses another" in the worker's line."""
    from hubensemble.runprofile import choose_another
    from hubensemble.sweepend import finished_worker
    from sweepfiles import finished_sweep

    run = finished_sweep(tmp_path / "run")
    call = {"sweep": "seeds", "budget": 2, "batchnorm": "train", "max_failures": 1}
    with command_line(), caplog.at_level(logging.INFO, logger="hubensemble.tune.stage"):
        assert finished_worker(run, "tuner0", call, progress=False) is not None
        refused = choose_another(Run(run))
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("profile "))
    assert refused.startswith("another --profile is refused while") and line.endswith(
        f"; {refused})"), line


def test_a_damaged_record_of_a_trials_custom_profile_is_named_by_run_jsons_path(tmp_path):
    """trial_profile, the reader of the profile a trial was tuned with, named a damaged sweep
    record or a custom profile it cannot find in "run.json", whatever folder the run is in
    (runprofile.recorded_profile took the path, trial_profile did not pass one). Given
    run.json's path (`where`) it names that, absolute. Fails before: no `where`."""
    from hubensemble.runprofile import trial_profile

    where = tmp_path / "r" / "run.json"
    record = {"trial": "seeds-0000-m", "profile": "mine"}
    with pytest.raises(RunError) as damaged:
        trial_profile(record, {"tune": {"sweeps": {"seeds": "x"}}}, where)
    assert str(damaged.value).startswith(str(where)), damaged.value
    with pytest.raises(RunError) as missing:
        trial_profile(record, {"tune": {"sweeps": {}}}, where)
    assert f"neither built in nor recorded in {where};" in str(missing.value)


def test_the_batch_warning_says_the_profiles_own_batch_is_over_the_images_too(modules):
    """--train-batch-size 12 on 10 training images (quick's own batch: 16): the warning said
    "pass train_batch_size=10 or less … (the profile's own: 16)", as if 16 were a way out,
    where it is over the 10 images too. It says so; with images enough for 16 it names it as
    before. Fails before: "(the profile's own: 16)" on 10 images."""
    from hubensemble.tune.search import batch_over_data

    task = two_class_task(10)
    profile = get_profile("quick").with_train_batch(12)
    plan = tune.plan_sweep(ranking_of(modules, ["gen_a"], ["gen_a"]),
                           {"gen_a": modules["gen_a"][0]}, sweep="seeds", task=task,
                           profile=profile, budget=1)
    said = batch_over_data(plan, profile, 10)
    assert said.endswith("pass train_batch_size=10 or less for batches of distinct images "
                         "(the profile's own, 16, is over them too)"), said
    larger = get_profile("quick").with_train_batch(32)
    plan = tune.plan_sweep(ranking_of(modules, ["gen_a"], ["gen_a"]),
                           {"gen_a": modules["gen_a"][0]}, sweep="seeds", task=task,
                           profile=larger, budget=1)
    assert batch_over_data(plan, larger, 20).endswith(  # 16 of 20 images: a way out
        "pass train_batch_size=20 or less for batches of distinct images (the profile's "
        "own: 16)")


def test_fit_costs_a_probe_sweeps_module_at_its_own_size_before_the_sweep(tiny_module,
                                                                          tmp_path):
    """fit's --max-gflops check before its sweep passed the modules alone, not the sweep's
    plan, so check_budget_before_tune costed a probe's module at the profile's eval_size (32
    px) where its probes serve at its own 48: a budget between the two went on to a sweep
    none of whose candidates meets it (found in a review of its callers). fit passes
    the plan (pipeline.planned_specs). Fails before: no refusal before the sweep."""
    import hubensemble
    from hubensemble.cost.stage import module_cost
    from hubensemble.data import Split, Task

    spec = ModuleSpec(name="tiny", handle=tiny_module, native_size=(48, 48))
    rng = np.random.default_rng(0)
    task = Task(name="t", source="test", class_names=["a", "b", "c"],
                train=Split(rng.integers(0, 256, (30, 12, 12, 3), dtype=np.uint8),
                            np.arange(30) % 3),
                val=Split(rng.integers(0, 256, (9, 12, 12, 3), dtype=np.uint8),
                          np.arange(9) % 3))
    at = {px: module_cost(spec, 3, px, cache_dir=tmp_path / "c", latency=False)[0].gflops
          for px in (32, 48)}
    with pytest.raises(RunError, match=" at 48 px "):
        hubensemble.fit([spec], task, tmp_path / "run", profile="quick", sweep="probe",
                        budget=4, top_k=1, max_gflops=(at[32] + at[48]) / 2,
                        corruptions=False, progress=False, cache_dir=tmp_path / "c")
    assert not (tmp_path / "run" / "candidates").exists() or not any(
        (tmp_path / "run" / "candidates").iterdir())  # refused before the sweep


def test_a_hand_edit_that_splits_the_runs_profile_from_its_sweeps_names_a_way_that_works(
        tmp_path, modules, digits):
    """run.json's "tune" -> "profile" edited by hand away from its record of the sweep (what
    the candidates trained at) refused `tune` without --profile, telling it to run "tune
    without --profile", which it had just done and which is refused again. It names the
    contradiction and a way on that works: today's --profile of the name when its definition
    is the candidates' (it is here), else only the restore. Fails before: "(tune without
    profile goes on with the profile as recorded)"."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="seeds", budget=1, strategy="cpu", task=digits, progress=False)
    tune.run_tune(run.path, profile="quick", **kw)
    meta = json.loads(run.meta_path.read_text())
    meta["tune"]["profile"]["min_steps"] += 7
    atomic_write_json(run.meta_path, meta)
    with pytest.raises(RunError) as refused:
        tune.run_tune(run.path, profile=None, **kw)
    said = str(refused.value)
    assert "goes on with the profile as recorded" not in said, said
    assert (f"(not by tune without profile: it trains at the last tune's profile as "
            f"{run.meta_path} records it (\"tune\" -> \"profile\"), quick, which is not the one "
            "its record of the candidates' sweep holds, which they trained at (min_steps 5 -> "
            "12: theirs -> the last tune's; edited by hand?): restore run.json from a copy, or "
            "pass profile='quick', whose definition today is the one they trained at)") in said
    assert tune.run_tune(run.path, profile="quick", **kw).ok == 1  # the way on named works
    # The sweep's record edited instead: today's quick is not theirs, the restore alone.
    meta = json.loads(run.meta_path.read_text())
    meta["tune"]["sweeps"]["seeds"]["profile"]["min_steps"] += 7
    atomic_write_json(run.meta_path, meta)
    with pytest.raises(RunError) as refused:
        tune.run_tune(run.path, profile=None, **kw)
    assert "edited by hand?): restore run.json from a copy), start" in str(refused.value)


def test_a_trial_whose_file_changed_since_tune_wrote_it_is_redone_said_and_counted(
        tmp_path, modules, digits, caplog):
    """tune reused a trial whose files were all there, so a weights file edited since was
    said by fit with "delete FOLDER and run `hubensemble tune …` (it redoes the trial), then
    fit again", and `tune` run again did nothing for it. Tune's resume rule
    (`Candidate.complete`) now counts a file changed since tune wrote it (trial.json's
    "written": size, time, sha256) as a trial left unfinished: only that trial runs again,
    said and counted; a file only touched (the same bytes) is no change, and a trial.json of
    an older hubensemble (no "written") is reused as before. Fails before: nothing is rerun."""
    run = make_run(tmp_path / "run", modules, task=digits)
    kw = dict(sweep="probe", budget=4, profile="quick", strategy="cpu", task=digits,
              progress=False)
    tune.run_tune(run.path, **kw)
    changed, touched, older, kept = sorted(candidates(run))
    for trial in (changed, older):  # the same size, other bytes
        path = run.candidates / trial / candidate.WEIGHTS_FILE
        path.write_bytes(path.read_bytes()[::-1])
    record = json.loads((run.candidates / older / "trial.json").read_text())
    del record["written"]  # as an older hubensemble wrote it
    atomic_write_json(run.candidates / older / "trial.json", record)
    path = run.candidates / touched / candidate.WEIGHTS_FILE
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10 ** 9))
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = tune.run_tune(run.path, **kw)
    assert (again.ok, again.reused) == (4, 3)
    assert [t for t in (changed, touched, older, kept) if f"starts: {t} " in caplog.text] == [
        changed]  # only it ran again
    # Said once, with its count (a line per trial, then the count: twice; three times in a
    # fit, whose damage line said it first).
    said = [r.getMessage() for r in caplog.records if changed in r.getMessage()
            and r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].startswith(
        f"tune probe: 1 trial redone, its weights file changed since tune wrote it: "
        f"candidates/{changed}: {candidate.WEIGHTS_FILE} is not the one tune wrote (sha256 "), said
    assert candidate.read_candidate(run.candidates, changed).problems == []  # written anew
    # A caller that said it (fit's damage line, `said_redone`): tune runs it, says it no more.
    path = run.candidates / changed / candidate.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[::-1])
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = tune.run_tune(run.path, said_redone=[changed], **kw)
    assert (again.ok, again.reused) == (4, 3) and f"starts: {changed} " in caplog.text
    assert "redone" not in caplog.text and "is not the one tune wrote" not in caplog.text


def test_a_profile_field_edited_by_hand_in_run_json_is_named_with_its_file(tmp_path):
    """run.json's "tune" -> "profile" -> "batch_size" edited to "x": the run's profile was
    read with that batch, and tune stopped later with "invalid hyperparameters: batch_size
    must be an integer >= 1 (got 'x')", naming no file (its memory note read the batch as
    None). The recorded definition is checked field by field (`runprofile.field_fault`), and
    the refusal names run.json (absolute) and the field, for the last tune's record and a
    sweep's. An intact record reads as before. Fails before: no RunError."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.runprofile import run_profile, trial_profile

    run = Run(tmp_path / "run")
    record = PROFILES["quick"].to_json()
    run.update(tune={"profile": record, "sweeps": {"seeds": {
        "profile": record, "trials": ["seeds-0000-m"]}}})
    assert run_profile(run)[0] == PROFILES["quick"]
    for where in ("last", "sweep"):
        meta = run.meta()
        damaged = meta["tune"]["profile"] if where == "last" else \
            meta["tune"]["sweeps"]["seeds"]["profile"]
        damaged["batch_size"] = "x"
        with pytest.raises(RunError) as refused:
            if where == "last":
                atomic_write_json(run.meta_path, meta)
                run_profile(run)
            else:
                trial_profile({"trial": "seeds-0000-m", "profile": "quick"}, meta,
                              run.meta_path)
        field = ('"tune" -> "profile"' if where == "last" else
                 'the "profile" of the "tune" -> "sweeps" record listing seeds-0000-m')
        assert str(refused.value).startswith(
            f"{run.meta_path.resolve()} records profile 'quick' unreadably ({field}: its "
            'batch_size is a JSON string ("x"), expected a whole number >= 1); restore '
            "run.json"), str(refused.value)


def test_a_sweep_of_one_module_says_which_it_tunes_and_why_once_at_its_start(
        tmp_path, modules, digits, capsys):
    """The seeds, hyper and aug sweeps tune the best-ranked generalist whatever the
    selection, and said no word of which one or why: a user who ranked exp_b first saw
    trials of gen_a. They say it once, as the sweep starts its trials (on stderr and in the
    log; not when every trial is reused): which module, why that one, its rank and score.
    Fails before: no such line."""
    from hubensemble.sweepplan import base_words

    run = make_run(tmp_path / "run", modules, task=digits)
    ranking = json.loads(run.ranking_json.read_text())
    # exp_b ranked first: the seeds sweep still tunes the generalist, gen_a
    atomic_write_json(run.ranking_json, {**ranking, "modules": ranking["modules"][::-1]})
    tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                  task=digits, progress=True)
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("seeds sweep: ")]
    assert said == ["seeds sweep: 1 trial of gen_a, the best-ranked generalist (rank 3 of 3, "
                    f"kNN score {modules['gen_a'][1]:.3g}), with fixed hyperparameters and a "
                    "seed per trial (paper 2.2's baseline)"], err
    assert "seeds sweep: " in (run.path / "log.txt").read_text()
    tune.run_tune(run.path, sweep="seeds", budget=1, profile="quick", strategy="cpu",
                  task=digits, progress=True)  # every trial reused: nothing starts
    assert "seeds sweep: " not in capsys.readouterr().err
    plan = tune.plan_sweep(json.loads(run.ranking_json.read_text()),
                           {n: modules[n][0] for n in ("gen_a", "exp_b", "exp_c")},
                           sweep="hyper", task=run.tune_inputs()[2], budget=2,
                           modules=["exp_b"], profile="quick")
    assert base_words(json.loads(run.ranking_json.read_text()),
                      {n: modules[n][0] for n in ("gen_a", "exp_b", "exp_c")}, plan,
                      sweep="hyper", modules=["exp_b"]).startswith(
        "hyper sweep: 2 trials of exp_b, the best-ranked module of modules (none is of family "
        "'generalist' in the catalogue) (rank 2 of 3"), plan
    assert base_words({}, {}, plan, sweep="default") is None


def test_a_ranking_the_sweep_cannot_plan_from_names_the_whole_rank_command(tmp_path):
    """plan_sweep's refusals of a ranking (no usable module, a module without a catalogue
    entry, no kNN score for the combined sweep) said "run `hubensemble rank` again", which
    rank refuses (it needs --catalogue, --data and --out). They name the run's recorded rank
    command when the caller gives the run (`run_dir`), else the placeholders, said as such.
    Fails before: "run `hubensemble rank` again"."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep
    from test_tunepending import ranked_run

    run, npz = ranked_run(tmp_path)
    ranking, modules, task = run.tune_inputs()
    specs = module_specs(run, modules)
    plan = dict(task=task, profile=PROFILES["quick"])
    unusable = {**ranking, "modules": [dict(m, status="failed") for m in ranking["modules"]]}
    with command_line():
        recorded = run.rank_command()
        assert f"--data npz:{npz}" in recorded and f"--out {run.path}`" in recorded, recorded
        with pytest.raises(RunError) as err:
            plan_sweep(unusable, specs, sweep="default", run_dir=run.path, **plan)
        assert str(err.value) == (f"the ranking has no usable module; run {recorded} again "
                                  "and check its errors")
        with pytest.raises(RunError) as err:
            plan_sweep(ranking, {"m0": specs["m0"]}, sweep="default", run_dir=run.path, **plan)
        assert str(err.value).endswith(f"; run {recorded} again"), err.value
        unscored = {**ranking, "modules": [dict(m, score=None) for m in ranking["modules"]]}
        with pytest.raises(RunError) as err:
            plan_sweep(unscored, specs, sweep="combined", **plan)  # no run: the placeholders
        assert str(err.value).endswith(
            "the combined sweep needs kNN scores: run `hubensemble rank --catalogue FILE "
            "--data SPEC --out RUN` again (FILE, SPEC and RUN: the run's catalogue, data and "
            "folder)"), err.value
    with pytest.raises(RunError) as err:  # from Python, the function and its keywords
        plan_sweep(unusable, specs, sweep="default", **plan)
    assert ("call run_rank(specs=load_catalogue(FILE), task=load_task(SPEC), out_dir=RUN) "
            "again (FILE, SPEC and RUN:") in str(err.value), err.value


def test_tune_on_a_ranking_it_cannot_plan_from_names_the_runs_own_rank_command(tmp_path):
    """`tune --run RUN --sweep combined` on a ranking without kNN scores is refused naming
    the rank command that writes RUN's ranking again, its data and folder as run.json
    records them (`Run.rank_command`), from the command line and from Python (run_tune):
    the stage, fit and the sweep's end pass their run to plan_sweep. Fails before: "run
    `hubensemble rank --catalogue FILE --data SPEC --out RUN` again (FILE, SPEC and RUN: …)",
    the placeholders, though the run was at hand."""
    from test_tunepending import ranked_run

    run, npz = ranked_run(tmp_path)
    ranking = json.loads(run.ranking_json.read_text())
    atomic_write_json(run.ranking_json, {**ranking, "modules": [
        dict(m, score=None) for m in ranking["modules"]]})
    with command_line():
        recorded = run.rank_command()
        with pytest.raises(RunError) as err:
            tune.run_tune(run.path, sweep="combined")
    assert f"--data npz:{npz}" in recorded and f"--out {run.path}`" in recorded, recorded
    assert str(err.value) == ("no ranked module has a score; the combined sweep needs kNN "
                              f"scores: run {recorded} again"), err.value
    with pytest.raises(RunError) as err:
        tune.run_tune(run.path, sweep="combined")
    assert str(err.value).endswith(f"scores: call {run.rank_command()} again"), err.value
    assert f"out_dir={str(run.path)!r}" in str(err.value), err.value
