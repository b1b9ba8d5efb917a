"""Real-backbone fine-tuning on a tiny BatchNorm module: the BatchNorm policy, divergence
detection, LP-FT heads, probe candidates (fit, export, reload) and "+" sweeps in one pool."""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import binomtest

from hubensemble import candidate, ensemble, hyperrule, sweeps, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.export import export_ensemble
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.hub import write_hub_module
from hubensemble.hub.layer import batchnorm_evidence, saved_model_variable_names
from hubensemble.hyperrule import HParams, get_profile
from hubensemble.rundir import DataArgs, Run
from hubensemble.tune.probe import fit_probe, probe_probs, probe_resolution
from hubensemble.tune.stage import module_batchnorm
from hubensemble.tune.train import chance_reason

QUICK = get_profile("quick")
# QUICK with the at-chance rule on (the quick profile switches it off for plumbing tests).
CHECKED = hyperrule.Profile(**{**{f: getattr(QUICK, f) for f in
                                  ("step_scale", "batch_size", "min_steps", "max_steps",
                                   "resolution_cap", "momentum", "lr_scale")},
                               "name": "quick-checked", "fail_at_chance": True})
TOL = 1e-5


def make_bn_model(seed=0, width=6):
    """conv3x3 -> BatchNorm -> ReLU -> global average: [N, H, W, 3] in [0, 1] -> [N, width].
    The moving statistics are set far from any batch's, so the two modes differ visibly."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(width, 3, padding="same")(inp)
    bn = keras.layers.BatchNormalization(name="bn")
    x = keras.layers.ReLU()(bn(x))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))
    bn.moving_mean.assign(np.full(width, 0.3, np.float32))
    bn.moving_variance.assign(np.full(width, 2.0, np.float32))
    return model


@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def bn_spec(tmp_path_factory):
    path = write_hub_module(make_bn_model(), str(tmp_path_factory.mktemp("bn") / "bnmod"))
    # native_size: the probe's own resolution for a module that takes any size.
    return ModuleSpec(name="bnmod", handle=path, family="generalist", native_size=(16, 16))


@pytest.fixture(scope="module")
def plain_spec(tiny_module):
    return ModuleSpec(name="plain", handle=tiny_module, family="generalist")


def variables_named(model, text):
    return {v.path: v.numpy().copy() for v in model.backbone.weights if text in v.path}


def make_run(path, specs, task):
    run = Run(path)
    run.attach_task(task, DataArgs(spec="sklearn:digits"))
    run.update(modules={s.name: s.to_json() for s in specs})
    rows = [{"name": s.name, "handle": s.handle, "status": "ok", "score": 0.9 - 0.1 * i}
            for i, s in enumerate(specs)]
    atomic_write_json(run.ranking_json, {"metric": "knn", "k": len(specs), "modules": rows,
                                         "selected": [s.name for s in specs],
                                         "selection": {"method": "top-k"}})
    return run


# ------------------------------------------------------------------------------ policy

def test_batchnorm_is_found_in_the_saved_variables_and_decides_auto(bn_spec, plain_spec):
    names = saved_model_variable_names(bn_spec.handle)
    assert batchnorm_evidence(names) in {n for n in names if n.endswith("moving_mean")
                                         or n.endswith("moving_variance")}
    assert batchnorm_evidence(saved_model_variable_names(plain_spec.handle)) is None
    assert batchnorm_evidence(["a/running_var:0"]) == "a/running_var:0"
    assert batchnorm_evidence(["moving_mean_of_something", "x/kernel"]) is None
    assert module_batchnorm(bn_spec, "auto")[0] == "inference"
    assert module_batchnorm(plain_spec, "auto") == ("train", None)
    assert module_batchnorm(plain_spec, "inference")[0] == "inference"
    # The layer decides the same from its loaded variables.
    auto = tune.build_classifier(bn_spec, 3, batchnorm="auto")
    assert auto.backbone.batchnorm == "inference" and "moving" in auto.backbone.batchnorm_evidence
    assert tune.build_classifier(plain_spec, 3, batchnorm="auto").backbone.batchnorm == "train"
    with pytest.raises(ValueError, match="batchnorm"):
        tune.build_classifier(bn_spec, 3, batchnorm="frozen")


@pytest.mark.parametrize("policy", ["inference", "train"])
def test_the_batchnorm_policy_holds_while_the_weights_train(bn_spec, digits, policy):
    hp = HParams(lr=0.05, steps=6, batch_size=16, momentum=0.9, seed=1, batchnorm=policy)
    keras.utils.set_random_seed(1)
    model = tune.compile_classifier(tune.build_classifier(bn_spec, 10, batchnorm=policy), hp)
    x = tf.constant(digits.val.images[:16].astype(np.float32) / 255.0)
    x = tf.image.resize(x, (16, 16))
    # With "inference" the module runs as at inference also in training mode.
    same = np.allclose(model.backbone(x, training=True).numpy(),
                       model.backbone(x, training=False).numpy(), atol=1e-6)
    assert same == (policy == "inference")
    stats = variables_named(model, "moving")
    kernels = variables_named(model, "kernel")
    assert len(stats) == 2 and kernels
    tune.train_classifier(model, digits, bn_spec, hp, profile=QUICK)
    after_stats = variables_named(model, "moving")
    moved = [not np.array_equal(stats[k], after_stats[k]) for k in stats]
    if policy == "inference":
        assert not any(moved)  # the moving statistics are those the module was saved with
    else:
        assert all(moved)
    # The weights train under either policy (gamma / beta / the conv kernel).
    after_kernels = variables_named(model, "kernel")
    assert any(not np.array_equal(kernels[k], after_kernels[k]) for k in kernels)


# ------------------------------------------------------------------------------ divergence

def test_chance_reason_against_a_binomial_reference():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)  # 200 images, majority rate 0.1
    constant = np.full((200, 10), 1e-6, np.float32)
    constant[:, 3] = 1 - 9e-6  # a collapsed model: always class 3, confidently
    why = chance_reason(constant, labels, 10)
    assert why and "at chance" in why and "0.100" in why
    good = np.full((200, 10), 0.05, np.float32)
    good[np.arange(200), labels] = 0.55
    assert chance_reason(good, labels, 10) is None
    # Accuracy 0.15 (30 of 200): binomial P(X >= 30 | 200, 0.1) = 0.0181 > 0.01, and a
    # uniform-ish CE: at chance. 0.17 (34): P = 0.0016: not at chance.
    for correct, expected in ((30, True), (34, False)):
        probs = np.full((200, 10), 0.1, np.float32)
        pred = (labels + 1) % 10
        pred[:correct] = labels[:correct]
        probs[np.arange(200), pred] += 1e-3
        probs /= probs.sum(1, keepdims=True)
        assert (chance_reason(probs, labels, 10) is not None) == expected
    # Ten validation images can show no significance: a model that learned something (CE
    # below ln C) is not failed for it.
    small = rng.dirichlet(np.ones(2), size=10).astype(np.float32)
    y = np.arange(10) % 2
    small[np.arange(10), y] += 0.3
    small /= small.sum(1, keepdims=True)
    assert chance_reason(small, y, 2) is None
    # Imbalanced classes (140 / 40 / 20 of 200): a model that learned only the class
    # frequencies scores the majority rate and a cross-entropy of H = 0.802, below ln 3 = 1.099.
    # It is at chance: no better than a constant prediction on either count.
    y = np.repeat([0, 1, 2], [140, 40, 20])
    freq = np.array([0.7, 0.2, 0.1])
    entropy = -(freq * np.log(freq)).sum()
    assert abs(entropy - 0.8018) < 1e-4
    prior = np.tile(freq, (200, 1)).astype(np.float32)
    why = chance_reason(prior, y, 3)
    assert why and "0.700" in why and "0.802" in why
    # The cut-off it names is the one it applies, 0.98 x H, and the CE is not below it.
    assert f"cross-entropy {entropy:.3f} is not below {0.98 * entropy:.3f} (0.98 x 0.802" in why
    # (The rule before judged cross-entropy against ln C and let it through.) A model that
    # tells the classes apart is not at chance.
    learned = np.full((200, 3), 0.05, np.float32)
    learned[np.arange(200), y] = 0.9
    assert chance_reason(learned, y, 3) is None
    # Twelve images, 7 right on 4 balanced classes, the 5 wrong ones confidently: p = 0.014
    # is not significant at 0.01 and the cross-entropy is above 0.98 ln 4, so it fails, in
    # words that say why (a new-user check read "accuracy 0.583 is not above ... 0.250"), and
    # a probe's hint is not a learning rate's.
    y = np.repeat(np.arange(4), 3)
    pred = y.copy()
    pred[7:] = (y[7:] + 1) % 4
    confident = np.full((12, 4), 1e-4 / 3, np.float32)
    confident[np.arange(12), pred] = 1 - 1e-4
    why = chance_reason(confident, y, 4, kind="probe")
    p_value = binomtest(7, 12, 0.25, alternative="greater").pvalue  # scipy's, as reference
    assert p_value == pytest.approx(0.01425, abs=1e-5)
    assert (f"is not significantly above the majority class's 0.250 (one-sided binomial p = "
            f"{p_value:.2g} > 0.01 on 12 images)") in why
    assert why.endswith("the validation split is too small to show it")
    assert "learning rate" in chance_reason(confident, y, 4)  # a fine-tune's hint
    # One class in the validation split: nothing to compare against.
    assert chance_reason(np.eye(3, dtype=np.float32)[np.zeros(50, int)], np.zeros(50, int),
                         3) is None


def test_a_forced_divergence_is_failed_with_its_reason(tmp_path, bn_spec, digits):
    run = make_run(tmp_path / "run", [bn_spec], digits)
    hp = HParams(lr=500.0, steps=10, batch_size=16, momentum=0.9, seed=2, batchnorm="train")
    entry = tune.PlanEntry(0, tune.trial_id("default", 0, "bnmod"), "bnmod", hp)
    record = tune.run_entry(entry, bn_spec, digits, run, profile=CHECKED)
    assert record["status"] == "failed"
    assert ("exploded" in record["reason"] or "became" in record["reason"]
            or "at chance" in record["reason"])
    saved = read_json(run.candidates / entry.trial_id / "trial.json")
    assert saved["status"] == "failed" and saved["reason"] == record["reason"]
    assert saved["val"] is None and not (run.candidates / entry.trial_id / "val_probs.npy").exists()

    # A model pinned to one class (a huge bias, lr too small to move it) is at chance.
    hp = HParams(lr=1e-6, steps=5, batch_size=16, momentum=0.0, seed=3)
    entry = tune.PlanEntry(1, tune.trial_id("default", 1, "bnmod"), "bnmod", hp)
    bias = np.zeros(10, np.float32)
    bias[4] = 40.0

    def build():
        model = tune.compile_classifier(tune.build_classifier(bn_spec, 10), hp)
        model.head.bias.assign(bias)
        return model

    record = tune.run_entry(entry, bn_spec, digits, run, profile=CHECKED, build=build)
    assert record["status"] == "failed" and "at chance on validation" in record["reason"]
    # The quick profile leaves such candidates ok (plumbing tests); the pool gets neither.
    pool, skipped = ensemble.load_candidates(run.path)
    assert pool == [] and len(skipped) == 2


def test_the_explosion_guard_stops_a_rising_loss(bn_spec, digits):
    from hubensemble.tune.train import EXPLODE_FACTOR, _DivergenceGuard

    guard = _DivergenceGuard(10, start=1.0)
    assert guard.limit == pytest.approx(EXPLODE_FACTOR * math.log(10))
    model = tune.compile_classifier(tune.build_classifier(bn_spec, 10),
                                    HParams(lr=0.1, steps=5))
    guard.set_model(model)
    guard.on_epoch_end(0, {"loss": 2.0})
    assert guard.reason is None and not model.stop_training
    guard.on_epoch_end(1, {"loss": 7.5})
    assert "exploded to 7.5" in guard.reason and model.stop_training


def test_an_lp_ft_head_starts_at_the_probe_picked_on_validation(tmp_path, bn_spec, digits):
    """head_init "probe": before any step the head is the probe of the PROBE_L2 strength whose
    validation cross-entropy (scikit-learn's log_loss here) is lowest, fitted on the cached
    training embeddings at the trial's evaluation size; a refit on train + val takes the
    strength it is given instead (the trial's recorded one) and fits on both splits."""
    from sklearn.metrics import log_loss

    from hubensemble.rank import embed

    hp = HParams(lr=0.01, steps=5, batch_size=16, momentum=0.9, seed=4, batchnorm="inference",
                 head_init="probe")
    cache = str(tmp_path / "cache")
    model = tune.compile_classifier(tune.build_classifier(bn_spec, 10, batchnorm="inference"),
                                    hp)
    info = tune.train.init_head(model, bn_spec, digits, hp, profile=QUICK, cache_dir=cache)
    assert info["head_init_seconds"] >= 0
    size = tune.eval_size(digits, bn_spec, QUICK)
    probs = tune.predict_probs(model, digits, "val", spec=bn_spec, profile=QUICK, batch_size=64)
    emb = {s: embed(bn_spec, digits, s, profile=QUICK, cache_dir=cache,
                    resolution=(size, size)).embeddings for s in ("train", "val")}
    heads = {l2: fit_probe(emb["train"], digits.train.labels, 10, l2=l2)
             for l2 in sweeps.PROBE_L2}
    losses = {l2: log_loss(digits.val.labels, probe_probs(emb["val"], *head), labels=range(10))
              for l2, head in heads.items()}
    best = min(losses, key=losses.get)
    # The pick must matter for this check to mean anything: the strengths disagree.
    assert max(losses.values()) - losses[best] > 0.01
    assert info["head_l2"] == best
    np.testing.assert_allclose(probs, probe_probs(emb["val"], *heads[best]), atol=TOL)
    # The zero head predicts uniform probabilities (argmax class 0: ~0.1 of the images); the
    # probe on six random BatchNorm features does better.
    assert (probs.argmax(1) == digits.val.labels).mean() > 0.15

    other = max(losses, key=losses.get)
    info = tune.train.init_head(model, bn_spec, digits, hp, profile=QUICK, cache_dir=cache,
                                splits=("train", "val"), head_l2=other)
    assert info["head_l2"] == other
    both = fit_probe(np.concatenate([emb["train"], emb["val"]]),
                     np.concatenate([digits.train.labels, digits.val.labels]), 10, l2=other)
    probs = tune.predict_probs(model, digits, "val", spec=bn_spec, profile=QUICK, batch_size=64)
    np.testing.assert_allclose(probs, probe_probs(emb["val"], *both), atol=TOL)


def test_the_clip_is_what_keeps_an_lp_ft_trial_from_exploding(tmp_path, bn_spec, digits):
    """The same LP-FT trial (head picked on validation: the weakest L2, a large kernel; lr
    3.1e-5, 10 steps) explodes unclipped and trains with gradients clipped to global norm 1
    (HParams.clipnorm -> the SGD optimizer's global_clipnorm), its validation cross-entropy
    staying near the probe's it started from."""
    run = make_run(tmp_path / "run", [bn_spec], digits)
    cache = str(tmp_path / "cache")
    records = {}
    for i, clip in enumerate((0.0, 1.0)):
        hp = HParams(lr=0.1 * QUICK.lr_scale * 0.001, steps=10, batch_size=16, momentum=0.9,
                     seed=0, batchnorm="inference", head_init="probe",
                     augmentation=hyperrule.WHOLE_IMAGE, clipnorm=clip)
        entry = tune.PlanEntry(i, tune.trial_id("default", i, "bnmod"), "bnmod", hp)
        records[clip] = tune.run_entry(entry, bn_spec, digits, run, profile=QUICK,
                                       cache_dir=cache)
        model = tune.compile_classifier(tune.build_classifier(bn_spec, 10), hp)
        assert model.optimizer.global_clipnorm == (clip or None)
    assert records[0.0]["head_l2"] == records[1.0]["head_l2"] == min(sweeps.PROBE_L2)
    assert records[0.0]["status"] == "failed" and "exploded" in records[0.0]["reason"]
    assert records[1.0]["status"] == "ok"
    from hubensemble.rank import embed

    size = tune.eval_size(digits, bn_spec, QUICK)
    emb = {s: embed(bn_spec, digits, s, profile=QUICK, cache_dir=cache,
                    resolution=(size, size)).embeddings for s in ("train", "val")}
    start = probe_probs(emb["val"], *fit_probe(emb["train"], digits.train.labels, 10,
                                               l2=records[1.0]["head_l2"]))
    from hubensemble.metrics import nll

    assert records[1.0]["val"]["ce"] < 1.1 * nll(start, digits.val.labels)


@pytest.fixture(scope="module")
def bn_pool(tmp_path_factory, bn_spec, plain_spec, digits):
    """(run, summary, profile): a default+probe sweep of the BatchNorm module (the plain one
    ranked beside it, not tuned: --modules) with quick's sizes and cpu's BatchNorm rule
    (LP-FT head, lr x 0.001, whole images, clip 1). One sweep for the two tests that read
    it (each ran its own: four fine-tuning trials twice)."""
    import dataclasses

    profile = dataclasses.replace(CHECKED, name="quick-bn", fail_at_chance=False,
                                  bn_head_init="probe", bn_lr_scale=0.001, bn_augment=False,
                                  bn_clipnorm=1.0)
    path = tmp_path_factory.mktemp("pool") / "run"
    run = make_run(path, [bn_spec, plain_spec], digits)
    summary = tune.run_tune(path, sweep="default+probe", modules=["bnmod"], profile=profile,
                            progress=False, task=digits, strategy="cpu",
                            cache_dir=str(path.parent / "cache"))
    return run, summary, profile


def test_batchnorm_inference_modules_fine_tune_as_the_profile_says(bn_spec, plain_spec,
                                                                   digits, bn_pool):
    """Profile.bn_*: a module whose BatchNorm policy is "inference" gets the LP-FT head, the
    extra lr factor and whole images (cpu: as measured by bench_backbones); a module at
    "train" and the paper profile are unchanged."""
    import dataclasses

    from hubensemble.tune.inputs import training_dataset

    ranking = {"modules": [{"name": "bnmod", "status": "ok", "score": 0.9},
                           {"name": "plain", "status": "ok", "score": 0.8}],
               "selected": ["bnmod", "plain"]}
    specs = {"bnmod": bn_spec, "plain": plain_spec}
    flags = {"flip": True, "synthetic": False}
    bn = {"bnmod": "inference", "plain": "train"}
    cpu = get_profile("cpu")
    plan = {(e.module, e.hparams.lr): e.hparams for e in tune.plan_sweep(
        ranking, specs, sweep="default", task=flags, profile=cpu, batchnorm=bn)}
    for lr in sweeps.DEFAULT_SWEEP_LRS:
        frozen, plain = plan["bnmod", lr * cpu.lr_scale * 0.001], plan["plain", lr * cpu.lr_scale]
        assert (frozen.head_init, frozen.augmentation, frozen.clipnorm) == (
            "probe", hyperrule.WHOLE_IMAGE, 1.0)
        assert (plain.head_init, plain.augmentation, plain.clipnorm) == ("zero", None, 0.0)
    explicit = tune.plan_sweep(ranking, specs, sweep="default", task=flags, profile=cpu,
                               batchnorm=bn, head_init="zero")
    assert {e.hparams.head_init for e in explicit} == {"zero"}
    paper = tune.plan_sweep(ranking, specs, sweep="default", task=flags, profile="paper",
                            batchnorm=bn)
    assert {(e.hparams.lr, e.hparams.head_init, e.hparams.augmentation, e.hparams.clipnorm)
            for e in paper} == {(lr, "zero", None, 0.0) for lr in sweeps.DEFAULT_SWEEP_LRS}

    # End to end on the tiny BatchNorm module, with quick's sizes and cpu's BatchNorm rule:
    # the default half of `bn_pool`'s sweep. Validation picks the weakest L2 here (its
    # probe's kernel is large), and without the clip the lr 3.1e-5 x 10-step trial explodes
    # (loss 16 by step 4): the gradient reaching the module grows with the head's weights.
    # test_the_clip_is_what_keeps_it_from_exploding.
    run, summary, profile = bn_pool
    finetuned = [c for c in ensemble.load_candidates(run.path)[0]
                 if c.trial.startswith("default-")]
    assert len(finetuned) == 4 and summary.failed == 0
    for c in finetuned:
        hp = HParams.from_json(c.hparams)
        assert hp.lr in {lr * QUICK.lr_scale * 0.001 for lr in sweeps.DEFAULT_SWEEP_LRS}
        assert (hp.batchnorm, hp.head_init) == ("inference", "probe")
        assert hp.augmentation == hyperrule.WHOLE_IMAGE
        assert c.record["head_init_seconds"] >= 0
        assert c.record["head_l2"] in sweeps.PROBE_L2
        assert hp.clipnorm == 1.0
    # Whole images: every training image is a resized training image (no crop, no flip).
    x, _ = next(iter(training_dataset(digits, bn_spec, hp, profile=profile)))
    size = tune.eval_size(digits, bn_spec, profile)
    assert x.shape[1:3] == (size, size)
    whole = next(iter(tune.inputs.eval_dataset(
        digits, "train", spec=bn_spec, profile=profile, batch_size=len(digits.train))))
    flat = whole.numpy().reshape(len(whole), -1)
    gaps = [np.abs(flat - im.reshape(1, -1)).max(axis=1).min() for im in x.numpy()]
    assert max(gaps) < 1e-5
    cropped = next(iter(training_dataset(digits, bn_spec, dataclasses.replace(
        hp, augmentation=None), profile=profile)))[0].numpy()
    assert max(np.abs(flat - im.reshape(1, -1)).max(axis=1).min() for im in cropped) > 1e-3


# ------------------------------------------------------------------------------ probes

def test_fit_probe_is_scikit_learns_standardised_logistic_regression(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Feature scales within 10x of each other: the scale floor (0.1 x the median std) does
    # not bind, so the probe is exactly StandardScaler + LogisticRegression.
    x = rng.normal(size=(120, 7)) * rng.uniform(3, 30, size=7) + rng.normal(size=7) * 5
    y = (x[:, 0] / 10 + x[:, 1] + rng.normal(size=120)).argsort().argsort() * 3 // 120
    for l2 in (1e-3, 1e-1):
        kernel, bias = fit_probe(x, y, 4, l2=l2)  # class 3 never occurs
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (l2 * 120),
                                                                 max_iter=1000)).fit(x, y)
        ours = probe_probs(x, kernel, bias)
        np.testing.assert_allclose(ours[:, :3], ref.predict_proba(x), atol=1e-5)
        assert ours[:, 3].max() < 1e-12 and kernel.shape == (7, 4)
    # Two classes: scikit-learn's one logit becomes a softmax over two.
    kernel, bias = fit_probe(x, (y > 0).astype(int), 2, l2=1e-2)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (1e-2 * 120),
                                                             max_iter=1000)).fit(x, y > 0)
    np.testing.assert_allclose(probe_probs(x, kernel, bias), ref.predict_proba(x), atol=1e-5)


def test_a_near_dead_feature_is_not_blown_up_to_unit_variance(rng):
    """A ReLU channel that fires on one training image (std ~1e-5) would get a weight of
    ~1e4 after standardisation; with the floor (0.1 x the median std) it is scaled like a
    quiet feature, and a held-out image on which it fires keeps its prediction."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    n = 200
    live = rng.normal(size=(n, 5)) * rng.uniform(0.5, 2, size=5)
    y = (live[:, 0] + live[:, 1] > 0).astype(int) + (live[:, 2] > 0.8).astype(int)
    dead = np.zeros((n, 1))
    dead[np.flatnonzero(y == 2)[0]] = 3e-4  # fires once, on an example of class 2
    x = np.hstack([live, dead])
    kernel, bias = fit_probe(x, y, 3, l2=1e-2)
    # Independent reference: scikit-learn on the features divided by the floored std.
    std = x.std(axis=0)
    scale = np.maximum(std, 0.1 * np.median(std[std > 1e-12]))
    ref = LogisticRegression(C=1 / (1e-2 * n), max_iter=1000).fit((x - x.mean(0)) / scale, y)
    np.testing.assert_allclose(probe_probs(x, kernel, bias),
                               ref.predict_proba((x - x.mean(0)) / scale), atol=1e-5)
    # Without the floor (plain StandardScaler) the channel's raw weight is thousands.
    plain = LogisticRegression(C=1 / (1e-2 * n), max_iter=1000).fit(
        StandardScaler().fit_transform(x), y)
    assert np.abs(plain.coef_[:, 5] / std[5]).max() > 1000
    assert np.abs(kernel[5]).max() < np.abs(kernel[:5]).max()
    # A held-out image on which the channel fires a little keeps its prediction.
    held = np.hstack([live[:20], np.full((20, 1), 1e-2)])
    base = np.hstack([live[:20], np.zeros((20, 1))])
    assert (probe_probs(held, kernel, bias).argmax(1)
            == probe_probs(base, kernel, bias).argmax(1)).all()


def test_probe_resolution_is_the_modules_own(bn_spec, plain_spec, digits):
    assert probe_resolution(bn_spec, digits) == 16  # native_size
    fixed = ModuleSpec(name="f", handle=bn_spec.handle, input_size=(24, 20))
    assert probe_resolution(fixed, digits) == 24  # input_size
    # Neither: the HyperRule's evaluation resolution, uncapped (8 x 8 digits -> 128 px).
    assert probe_resolution(plain_spec, digits) == 128


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory, bn_spec, digits):
    path = tmp_path_factory.mktemp("probe") / "run"
    make_run(path, [bn_spec], digits)
    summary = tune.run_tune(path, sweep="probe", profile="quick", progress=False, task=digits,
                            cache_dir=str(path.parent / "cache"))
    return path, summary


def test_a_probe_sweep_writes_ordinary_candidates(probe_run, digits):
    path, summary = probe_run
    assert summary.sweep == "probe" and summary.ok == 4 and summary.failed == 0
    cands = candidate.scan(Run(path).candidates)[0]
    assert [c.trial for c in cands] == [tune.trial_id("probe", i, "bnmod") for i in range(4)]
    assert sorted(c.hparams["weight_decay"] for c in cands) == sorted(sweeps.PROBE_L2)
    for c in cands:
        assert c.ok and c.hparams["kind"] == "probe" and c.record["eval_size"] == 16
        assert c.record["batchnorm"] == "inference" == c.hparams["batchnorm"]
        assert c.record["seconds"] > 0 and c.record["embed_seconds"] >= 0
        c.load_probs(n_val=len(digits.val), n_test=len(digits.test))
        assert c.val["accuracy"] == pytest.approx(
            float((c.val_probs.argmax(1) == digits.val.labels).mean()))
    meta = Run(path).meta()["tune"]
    assert meta["sweeps"]["probe"]["plan_size"] == 4
    # RUN/log.txt says each trial's start, with its hyperparameters (once: not on resume)
    starts = [f"trial {i + 1}/4 bnmod starts: {c.trial} (kind=\"probe\", "
              f"l2_strength={c.hparams['weight_decay']!r}, "
              f"lbfgs_max_iterations={c.hparams['steps']}; " for i, c in enumerate(cands)]
    assert all(Run(path).log.read_text().count(s) == 1 for s in starts), starts
    # Resumable: a second call finds every candidate done and writes nothing.
    mtimes = {c.trial: os.path.getmtime(c.folder / "trial.json") for c in cands}
    again = tune.run_tune(path, sweep="probe", profile="quick", progress=False, task=digits,
                          cache_dir=str(path.parent / "cache"))
    assert again.ok == 4
    assert mtimes == {c.trial: os.path.getmtime(c.folder / "trial.json")
                      for c in candidate.scan(Run(path).candidates)[0]}
    assert all(Run(path).log.read_text().count(s) == 1 for s in starts)


@pytest.fixture(scope="module")
def probe_export(probe_run, digits, tmp_path_factory):
    """(run folder, ExportResult): a copy of `probe_run` whose ensemble (budget 3) is exported
    to RUN/export: the export the two tests below read (each exported the same ensemble of the
    same candidates, one into a folder of its own, the other to distil it)."""
    import shutil

    path = tmp_path_factory.mktemp("probe_export") / "run"
    shutil.copytree(probe_run[0], path)
    ensemble.run_ensemble(path, budget=3)
    return path, export_ensemble(path, task=digits, progress=False)


def test_a_probe_candidate_reloads_and_exports_with_its_own_probabilities(
        probe_export, bn_spec, digits):
    path, result = probe_export
    run = Run(path)
    cands = candidate.scan(run.candidates)[0]
    for c in cands[:2]:
        model = tune.build_classifier(bn_spec, 10)
        model.load_weights(str(c.weights_path))
        c.load_probs(n_val=len(digits.val))
        probs = tune.predict_probs(model, digits, "val", spec=bn_spec, profile=QUICK,
                                   batch_size=64)
        # predict_probs resizes to the quick profile's size; the probe evaluates at its own.
        assert tune.eval_size(digits, bn_spec, QUICK) != c.record["eval_size"]
        own = model.predict(tf.image.resize(
            digits.val.images.astype(np.float32) / 255.0, (16, 16), antialias=True),
            verbose=0)
        assert np.abs(own - c.val_probs).max() <= TOL
        assert np.abs(probs - c.val_probs).max() > 1e-4  # the resolution matters
    assert {m["eval_size"] for m in result.members} == {16}
    loaded = tf.saved_model.load(str(path / "export"))
    images = digits.val.images.astype(np.float32) / 255.0
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    members = read_json(run.ensemble_json)["members"]
    total = sum(m["weight"] for m in members)
    expected = sum(m["weight"] / total * np.load(run.candidates / m["trial"] / "val_probs.npy")
                   for m in members)
    assert np.abs(served["probabilities"].numpy() - expected).max() <= TOL


def test_retraining_a_probe_refits_it_on_the_given_splits(probe_run, bn_spec, digits):
    path, _ = probe_run
    c = candidate.scan(Run(path).candidates)[0][1]
    hp = HParams.from_json(c.hparams)
    cache = str(path.parent / "cache")
    same = tune.fit_member(bn_spec, digits, hp, profile=QUICK, cache_dir=cache)
    c.load_probs(n_val=len(digits.val))
    images = tf.image.resize(digits.val.images.astype(np.float32) / 255.0, (16, 16),
                             antialias=True)
    assert np.abs(same.predict(images, verbose=0) - c.val_probs).max() <= TOL
    full = tune.fit_member(bn_spec, digits, hp, profile=QUICK, splits=("train", "val"),
                           cache_dir=cache)
    assert not np.allclose(full.head.kernel.numpy(), same.head.kernel.numpy())


def test_distilling_a_probe_ensemble_fine_tunes_a_student(probe_export, bn_spec, digits,
                                                          tmp_path):
    # A probe is fitted on labels, so the student of a probe-only ensemble fine-tunes its
    # module, with the paper's single-model configuration as tune plans it for that
    # (BatchNorm) module. It used to fail: "a probe is fitted on labels, not on a teacher's
    # probabilities".
    import shutil

    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(probe_export[0], path)  # its ensemble (budget 3) exported to RUN/export
    # (The quick profile's lr explodes this tiny module: lr x 0.01.)
    result = run_distill(path, task=digits, progress=False, steps_scale=1.0, lr_scale=0.01)
    student = candidate.read_candidate(Run(path).distill, result.student["trial"])
    hp = HParams.from_json(student.hparams)
    planned = tune.finetune_hparams(tune.SEEDS_HPARAMS, QUICK, batchnorm="inference",
                                    seed=hp.seed)
    assert hp.kind == "finetune" and hp.batchnorm == "inference"
    assert student.record["hparams_from"] == "paper 2.2 single-model configuration"
    assert (hp.steps, hp.head_init) == (planned.steps, planned.head_init)
    assert hp.lr == pytest.approx(planned.lr * 0.01)
    # A probe's weights are no start (another resolution, whole images): the module's is.
    assert student.record["init_from"] is None
    # It reloads and predicts what it recorded.
    model = tune.build_classifier(bn_spec, 10, batchnorm="inference")
    model.load_weights(str(student.weights_path))
    student.load_probs(n_val=len(digits.val))
    probs = tune.predict_probs(model, digits, "val", spec=bn_spec, profile=QUICK,
                               batch_size=64)
    assert np.abs(probs - student.val_probs).max() <= TOL


def test_export_retraining_a_probe_reads_the_given_embedding_cache(
        probe_run, digits, tmp_path, monkeypatch):
    """export_ensemble(retrain_full=True, cache_dir=DIR) (the CLI's `export --retrain-full
    --cache-dir DIR`) refits probes from DIR's embeddings, not from the default cache."""
    path, _ = probe_run
    default = tmp_path / "default-cache"
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(default))
    cache = path.parent / "cache"
    entries = sorted(p.name for p in cache.glob("*.npy"))
    ensemble.run_ensemble(path, budget=2)
    result = export_ensemble(path, tmp_path / "model", task=digits, retrain_full=True,
                             cache_dir=str(cache), progress=False)
    assert result.retrain_full and {m["trial"] for m in result.members} <= set(
        p.name for p in Run(path).candidates.iterdir())
    assert not default.exists() or not any(default.iterdir()), "the default cache was used"
    # train + val were embedded by the probe sweep: the refit read them, wrote nothing new.
    assert sorted(p.name for p in cache.glob("*.npy")) == entries


# ------------------------------------------------------------------------------ one pool

def test_default_plus_probe_puts_both_kinds_in_one_pool(tmp_path, bn_spec, digits, bn_pool):
    import shutil

    shared, summary, profile = bn_pool
    run = Run(shutil.copytree(shared.path, tmp_path / "run"))  # its ensemble.json: this test's
    assert summary.sweep == "default+probe" and summary.plan_size == 8
    assert summary.ok == 8 and summary.failed == 0
    trials = [tune.trial_id("default", i, "bnmod") for i in range(4)] + \
        [tune.trial_id("probe", i, "bnmod") for i in range(4)]
    assert summary.trials == trials
    pool, skipped = ensemble.load_candidates(run.path)
    assert sorted(c.trial for c in pool) == sorted(trials) and skipped == []
    kinds = {c.trial.split("-")[0]: HParams.from_json(c.hparams).kind for c in pool}
    assert kinds == {"default": "finetune", "probe": "probe"}
    # The fine-tuned ones run the BatchNorm module in inference mode, decided from its files.
    for c in pool:
        if c.trial.startswith("default"):
            assert c.hparams["batchnorm"] == "inference"
            assert c.record["batchnorm"] == "inference"
            assert "moving" in c.record["batchnorm_evidence"]
            assert c.record["eval_size"] == tune.eval_size(digits, bn_spec, profile)
    meta = run.meta()["tune"]
    assert set(meta["sweeps"]) == {"default", "probe"}
    decided = meta["sweeps"]["default"]["batchnorm"]
    assert decided["requested"] == "auto"
    assert decided["modules"]["bnmod"]["policy"] == "inference"
    result = ensemble.run_ensemble(run.path, budget=4)
    assert result["n_candidates"] == 8


def test_sweep_values_and_plans(bn_spec, plain_spec):
    from hubensemble import options
    from hubensemble.errors import HubensembleError
    from hubensemble.options import OptionError

    assert tune.plans.sweep_parts("default+probe") == ("default", "probe")
    assert tune.plans.sweep_parts("probe+combined") == ("probe", "combined")
    for bad in ("default+default", "default+probe+seeds", "probes", "default+"):
        with pytest.raises(HubensembleError):
            tune.plans.sweep_parts(bad)
        with pytest.raises(OptionError, match=r"or two joined by \+"):
            options.check("sweep", bad)
    ranking = {"modules": [{"name": "bnmod", "status": "ok", "score": 0.9},
                           {"name": "plain", "status": "ok", "score": 0.8}],
               "selected": ["bnmod", "plain"]}
    specs = {"bnmod": bn_spec, "plain": plain_spec}
    task = {"flip": True, "synthetic": False}
    probe = tune.plan_sweep(ranking, specs, sweep="probe", task=task, profile="cpu")
    assert [e.trial_id for e in probe][:5] == [
        "probe-0000-bnmod", "probe-0001-bnmod", "probe-0002-bnmod", "probe-0003-bnmod",
        "probe-0004-plain"]
    assert {e.hparams.kind for e in probe} == {"probe"} and len(probe) == 8
    assert [e.hparams.weight_decay for e in probe[:4]] == list(sweeps.PROBE_L2)
    assert all(e.hparams.lr == 0 and e.hparams.steps == sweeps.PROBE_MAX_ITER
               for e in probe)
    assert len(tune.plan_sweep(ranking, specs, sweep="probe", task=task, profile="cpu",
                               budget=4)) == 4
    default = tune.plan_sweep(ranking, specs, sweep="default", task=task, profile="cpu",
                              batchnorm={"bnmod": "inference"}, head_init="probe")
    assert {(e.module, e.hparams.batchnorm) for e in default} == {("bnmod", "inference"),
                                                                  ("plain", "train")}
    assert {e.hparams.head_init for e in default} == {"probe"}
    paper = tune.plan_sweep(ranking, specs, sweep="default", task=task, profile="paper")
    assert {e.hparams.head_init for e in paper} == {"zero"}
    assert {e.hparams.lr for e in paper} == set(sweeps.DEFAULT_SWEEP_LRS)
    # The plan's values survive Keras Tuner's hyperparameters (resume and distribution).
    for e in default[:2]:
        assert tune.hparams_from_hp(tune.hp_values(e)) == e.hparams
    clipped = next(e for e in default if e.module == "bnmod")
    assert clipped.hparams.clipnorm == 1.0
    # A sweep state written before clipnorm existed has no value for it: no clipping.
    old = {k: v for k, v in tune.hp_values(clipped).items() if k != "clipnorm"}
    assert tune.hparams_from_hp(old).clipnorm == 0.0
    assert json.loads(json.dumps(probe[0].to_json()))["hparams"]["kind"] == "probe"


def test_a_probe_sweep_says_the_images_a_module_embeds(tmp_path, bn_spec, digits, capsys,
                                                       monkeypatch):
    """A probe sweep's bar moved only when a module's probes were written, after embedding
    its train, val and test images (minutes for a real module): its lines now count them."""
    from hubensemble import terminal

    monkeypatch.setattr(terminal, "LINE_SECONDS", 0.0)  # a line per note (stderr: no tty)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    make_run(tmp_path / "run", [bn_spec], digits)
    tune.run_tune(tmp_path / "run", sweep="probe", profile="quick", progress=True,
                  task=digits, cache_dir=str(tmp_path / "cache"))
    err = capsys.readouterr().err
    for split in ("train", "val", "test"):
        n = f"{len(digits.split(split)):,}"
        said = [line for line in err.splitlines()
                if line.startswith("tune probe:   0% 0/4 [") and f" bnmod {split}: " in line]
        assert said and said[-1].endswith(f"bnmod {split}: {n}/{n} images]"), err
