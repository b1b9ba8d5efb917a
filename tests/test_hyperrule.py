"""Tests for the pure fine-tuning policy: HyperRule, schedules, search spaces, profiles."""

import dataclasses
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from hubensemble import hyperrule as hr
from hubensemble import sweeps
from hubensemble.errors import HubensembleError


# ----------------------------------------------------------------------------- HyperRule

@pytest.mark.parametrize("hw, expected", [
    ((95, 95), (160, 128)),
    ((96, 96), (512, 480)),
    ((97, 97), (512, 480)),
    ((32, 32), (160, 128)),
    ((31, 297), (160, 128)),   # 9207 px < 96 * 96 = 9216
    ((32, 288), (512, 480)),   # exactly 9216 px: not below the threshold
])
def test_resolution_threshold_is_the_image_area(hw, expected):
    assert hr.resolution(hw) == expected


@pytest.mark.parametrize("bad", [(0, 32), (32,), "32x32", (32.5, 32)])
def test_resolution_rejects_bad_sizes(bad):
    with pytest.raises(HubensembleError):
        hr.resolution(bad)


def test_bit_schedule_and_mixup_thresholds():
    assert hr.schedule(0) == [100, 200, 300, 400, 500]
    assert hr.schedule(19_999) == [100, 200, 300, 400, 500]
    assert hr.schedule(20_000) == [500, 3000, 6000, 9000, 10_000]
    assert hr.schedule(499_999) == [500, 3000, 6000, 9000, 10_000]
    assert hr.schedule(500_000) == [500, 6000, 12_000, 18_000, 20_000]
    assert hr.mixup_alpha(800) == 0.0
    assert hr.mixup_alpha(19_999) == 0.0
    assert hr.mixup_alpha(20_000) == 0.1
    with pytest.raises(HubensembleError):
        hr.schedule(-1)


# ----------------------------------------------------------------------------- schedule

def test_learning_rate_at_the_20_percent_marks_by_hand():
    # T = 2500, base 0.1: warm-up to step 500, plateau to 1000, then x0.1 after 1000, 1500, 2000.
    lr = lambda s: hr.learning_rate(s, 2500, 0.1)  # noqa: E731
    assert lr(0) == 0.0                                   # 0 %
    assert lr(250) == pytest.approx(0.05)                 # half-way through the warm-up
    assert lr(499) == pytest.approx(0.1 * 499 / 500)
    assert lr(500) == pytest.approx(0.1)                  # 20 %
    assert lr(1000) == pytest.approx(0.1)                 # 40 %: decay starts after it
    assert lr(1001) == pytest.approx(0.01)
    assert lr(1500) == pytest.approx(0.01)                # 60 %
    assert lr(1501) == pytest.approx(0.001)
    assert lr(2000) == pytest.approx(0.001)               # 80 %
    assert lr(2001) == pytest.approx(0.0001)
    assert lr(2499) == pytest.approx(0.0001)              # the last update
    assert lr(2500) == pytest.approx(0.0001)              # 100 %


def _bit_get_lr(step, dataset_size, base_lr):
    """big_transfer's bit_hyperrule.get_lr, transcribed as the reference."""
    supports = hr.schedule(dataset_size)
    if step < supports[0]:
        return base_lr * step / supports[0]
    elif step >= supports[-1]:
        return None
    else:
        for s in supports[1:]:
            if s < step:
                base_lr /= 10
        return base_lr


def test_500_steps_is_bits_small_data_schedule():
    for step in range(500):
        assert hr.learning_rate(step, 500, 0.003) == pytest.approx(_bit_get_lr(step, 800, 0.003))
    assert _bit_get_lr(500, 800, 0.003) is None  # BiT stops; ours stays at the last plateau
    assert hr.learning_rate(500, 500, 0.003) == pytest.approx(0.003e-3)


@pytest.mark.parametrize("total", [5, 7, 40, 41, 123, 2500, 10_000])
def test_warmup_increases_then_never_increases(total):
    values = [hr.learning_rate(s, total, 0.5) for s in range(total + 1)]
    warmup = hr.schedule_boundaries(total)[0]
    assert values[0] == 0.0
    assert all(a < b for a, b in zip(values[:warmup], values[1:warmup + 1]))
    assert all(a >= b for a, b in zip(values[warmup:], values[warmup + 1:]))
    assert max(values) == pytest.approx(0.5)
    assert values[-1] == pytest.approx(0.5e-3)


def test_boundaries_are_the_floored_20_percent_marks():
    for total in list(range(1, 300)) + [2500, 10_000, 16_001]:
        warmup, bounds = hr.schedule_boundaries(total)
        marks = [warmup] + bounds
        for k, mark in enumerate(marks, start=1):
            assert mark == math.floor(Fraction(k, 5) * total)
    assert hr.schedule_boundaries(2500) == (500, [1000, 1500, 2000])
    assert hr.schedule_boundaries(500) == (100, [200, 300, 400])


def _from_boundaries(step, total, base_lr):
    """The Keras recipe from schedule_boundaries' docstring, in plain Python."""
    warmup, bounds = hr.schedule_boundaries(total)
    factor = 1.0 if warmup == 0 else min(1.0, step / warmup)
    values = hr.schedule_values(base_lr)
    index = sum(step > b for b in bounds)
    return factor * values[index]


@pytest.mark.parametrize("total", list(range(1, 60)) + [2500, 10_000])
def test_learning_rate_agrees_with_boundaries_at_every_step(total):
    for step in range(total + 2):
        assert hr.learning_rate(step, total, 0.1) == pytest.approx(
            _from_boundaries(step, total, 0.1), rel=1e-12, abs=0.0)


def test_keras_schedule_built_from_boundaries_matches():
    import keras  # only this test needs it

    for total in (3, 7, 41, 2500):
        warmup, bounds = hr.schedule_boundaries(total)
        decay = keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, hr.schedule_values(0.1))
        for step in range(0, total + 1, max(1, total // 97)):
            factor = 1.0 if warmup == 0 else min(1.0, step / warmup)
            keras_lr = factor * float(decay(step))
            assert keras_lr == pytest.approx(hr.learning_rate(step, total, 0.1), rel=1e-6)


def test_learning_rate_rejects_bad_arguments():
    with pytest.raises(HubensembleError):
        hr.learning_rate(-1, 100, 0.1)
    with pytest.raises(HubensembleError):
        hr.learning_rate(0, 0, 0.1)


# ----------------------------------------------------------------------------- search spaces

def test_default_sweep_is_the_2x2_grid():
    sweep = sweeps.default_sweep()
    assert len(sweep) == 4
    assert {(d["lr"], d["steps"]) for d in sweep} == {
        (0.1, 2500), (0.1, 10_000), (0.01, 2500), (0.01, 10_000)}
    assert all(d["weight_decay"] == 0.0 and d["dropout"] == 0.0 for d in sweep)


def test_sample_hparams_matches_the_a2_space():
    rng = np.random.default_rng(1234)
    draws = [sweeps.sample_hparams(rng) for _ in range(2000)]
    lr = np.array([d["lr"] for d in draws])
    wd = np.array([d["weight_decay"] for d in draws])
    dropout = np.array([d["dropout"] for d in draws])
    steps = [d["steps"] for d in draws]

    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    assert wd.min() >= 1e-6 and wd.max() <= 1e-1
    assert dropout.min() >= 0.0 and dropout.max() <= 0.5
    # Log-uniform: log10 is uniform, so its mean is the midpoint (a linear-uniform draw of lr
    # would give a mean log10 near -1.3). Standard errors: 0.019 (lr) and 0.032 (wd).
    assert np.mean(np.log10(lr)) == pytest.approx(-2.5, abs=0.1)
    assert np.mean(np.log10(wd)) == pytest.approx(-3.5, abs=0.15)
    assert stats.kstest(np.log10(lr), stats.uniform(-4, 3).cdf).pvalue > 1e-3
    assert stats.kstest(np.log10(wd), stats.uniform(-6, 5).cdf).pvalue > 1e-3
    assert stats.kstest(dropout, stats.uniform(0, 0.5).cdf).pvalue > 1e-3
    assert set(steps) == {500, 1000, 2000, 5000, 8000, 16_000}
    counts = np.array([steps.count(s) for s in sorted(set(steps))])
    assert np.all(np.abs(counts / 2000 - 1 / 6) < 0.04)
    assert all(type(s) is int for s in steps)
    json.dumps(draws)  # plain Python numbers


def test_sample_hparams_is_reproducible_from_the_seed():
    a = [sweeps.sample_hparams(np.random.default_rng(7)) for _ in range(3)]
    b = [sweeps.sample_hparams(np.random.default_rng(7)) for _ in range(3)]
    c = sweeps.sample_hparams(np.random.default_rng(8))
    assert a[0] == a[1] == b[2]
    assert c != a[0]
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    first = [sweeps.sample_hparams(rng1) for _ in range(5)]
    assert first == [sweeps.sample_hparams(rng2) for _ in range(5)]


def _augs(n, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [hr.sample_augmentation(rng, **kw) for _ in range(n)]


def test_sample_augmentation_frequencies_and_ranges():
    augs = _augs(4000, flip_allowed=True, synthetic=False)
    freq = lambda pred: np.mean([pred(a) for a in augs])  # noqa: E731
    # Each decision is a fair coin: standard error 0.008 with 4000 draws.
    assert freq(lambda a: a.crop == "inception") == pytest.approx(0.5, abs=0.04)
    assert freq(lambda a: a.flip) == pytest.approx(0.5, abs=0.04)
    for name in ("brightness", "hue", "saturation", "contrast"):
        assert freq(lambda a: getattr(a, name) is not None) == pytest.approx(0.5, abs=0.04)
    assert freq(lambda a: a.mixup_alpha > 0) == pytest.approx(0.5, abs=0.04)

    for a in augs:
        if a.crop == "random":
            assert 1.05 <= a.resize_factor <= 1.30
        else:
            assert a.crop == "inception" and a.resize_factor is None
        for name in ("brightness", "hue"):
            value = getattr(a, name)
            assert value is None or 0.01 <= value <= 0.2
        for name in ("saturation", "contrast"):
            value = getattr(a, name)
            if value is not None:
                s_min, s_max = value
                assert 0.25 <= s_min <= 0.75
                assert 2 * s_min <= s_max <= 4 * s_min
        assert a.mixup_alpha == 0.0 or 0.01 <= a.mixup_alpha <= 0.2
    factors = [a.resize_factor for a in augs if a.crop == "random"]
    assert stats.kstest(factors, stats.uniform(1.05, 0.25).cdf).pvalue > 1e-3


def test_synthetic_data_never_gets_colour_and_no_flip_when_not_allowed():
    synthetic = _augs(1000, flip_allowed=True, synthetic=True)
    assert not any(a.has_colour for a in synthetic)
    assert np.mean([a.flip for a in synthetic]) == pytest.approx(0.5, abs=0.06)
    assert np.mean([a.crop == "inception" for a in synthetic]) == pytest.approx(0.5, abs=0.06)
    assert np.mean([a.mixup_alpha > 0 for a in synthetic]) == pytest.approx(0.5, abs=0.06)
    no_flip = _augs(1000, flip_allowed=False, synthetic=False)
    assert not any(a.flip for a in no_flip)
    assert any(a.has_colour for a in no_flip)


def test_sample_augmentation_is_reproducible():
    assert _augs(20, seed=5, flip_allowed=True, synthetic=False) == _augs(
        20, seed=5, flip_allowed=True, synthetic=False)
    assert _augs(20, seed=5, flip_allowed=True, synthetic=False) != _augs(
        20, seed=6, flip_allowed=True, synthetic=False)


# ----------------------------------------------------------------------------- records

def test_hparams_and_augconfig_json_round_trip():
    for aug in _augs(30, seed=11, flip_allowed=True, synthetic=False) + [None]:
        hp = hr.HParams(lr=0.01, steps=2500, weight_decay=1e-4, dropout=0.2, batch_size=64,
                        seed=3, augmentation=aug, mixup_alpha=0.0)
        text = json.dumps(hp.to_json())
        assert hr.HParams.from_json(json.loads(text)) == hp
        assert hr.HParams.from_json(text) == hp
    for aug in _augs(30, seed=12, flip_allowed=True, synthetic=False):
        assert hr.AugConfig.from_json(json.dumps(aug.to_json())) == aug


def test_records_reject_unknown_missing_and_invalid_fields():
    with pytest.raises(HubensembleError, match="unknown field.*learning_rate.*known fields"):
        hr.HParams.from_json({"learning_rate": 0.1, "steps": 10})
    with pytest.raises(HubensembleError, match="missing field.*steps"):
        hr.HParams.from_json({"lr": 0.1})
    with pytest.raises(HubensembleError, match="lr must be > 0"):
        hr.HParams(lr=0.0, steps=10)
    with pytest.raises(HubensembleError, match="dropout"):
        hr.HParams(lr=0.1, steps=10, dropout=1.0)
    with pytest.raises(HubensembleError, match="steps"):
        hr.HParams(lr=0.1, steps=2.5)
    with pytest.raises(HubensembleError, match="crop must be one of"):
        hr.AugConfig(crop="centre")
    with pytest.raises(HubensembleError, match="resize_factor"):
        hr.AugConfig(crop="random")
    with pytest.raises(HubensembleError, match="s_min <= s_max"):
        hr.AugConfig(crop="random", resize_factor=1.1, contrast=(2.0, 1.0))
    # Each refusal that lists the valid names guesses the one meant first (text.did_you_mean,
    # git's rule as everywhere else): they listed the names alone.
    for make, said in (
            (lambda: hr.AugConfig(crop="Random"),
             "crop must be one of inception, random; got 'Random' (did you mean random?)"),
            (lambda: hr.HParams(lr=0.1, steps=10, kind="fintune", batchnorm="infrence",
                                head_init="zreo"),
             "kind must be one of finetune, probe (got 'fintune') (did you mean finetune?); "
             "batchnorm must be one of train, inference (got 'infrence') (did you mean "
             "inference?); head_init must be one of zero, probe (got 'zreo') (did you mean "
             "zero?)"),
            (lambda: dataclasses.replace(hr.get_profile("quick"), head_init="prob"),
             "got 'prob' (did you mean probe?)"),
            (lambda: hr.get_profile("quik"), "unknown profile 'quik' (did you mean quick?); "
                                             "choose one of: paper"),
            (lambda: hr.HParams.from_json({"lr": 0.1, "step": 10}),
             "unknown field step (did you mean steps?); known fields: "),
            (lambda: hr.HParams(lr=0.1, steps=10, kind=3), "probe (got 3)")):
        with pytest.raises(HubensembleError) as e:
            make()
        assert said in str(e.value), str(e.value)


def test_effective_mixup_alpha():
    assert hr.HParams(lr=0.1, steps=10, mixup_alpha=0.1).effective_mixup_alpha == 0.1
    aug = hr.AugConfig(crop="inception", mixup_alpha=0.05)
    assert hr.HParams(lr=0.1, steps=10, mixup_alpha=0.1,
                      augmentation=aug).effective_mixup_alpha == 0.05
    no_mix = hr.AugConfig(crop="inception")
    assert hr.HParams(lr=0.1, steps=10, augmentation=no_mix).effective_mixup_alpha == 0.0


# ----------------------------------------------------------------------------- profiles

def test_get_profile_and_unknown_names():
    assert set(hr.PROFILES) == {"paper", "cpu", "quick"}
    for name in hr.PROFILES:
        assert hr.get_profile(name).name == name
    with pytest.raises(HubensembleError, match="paper, cpu, quick"):
        hr.get_profile("tpu")


def test_paper_profile_changes_nothing():
    paper = hr.get_profile("paper")
    for hp in sweeps.default_sweep() + [sweeps.sample_hparams(np.random.default_rng(0))]:
        scaled = paper.scale(hp)
        assert scaled["steps"] == hp["steps"] and scaled["lr"] == hp["lr"]
        assert scaled["batch_size"] == 512 and scaled["momentum"] == 0.99
        assert scaled["weight_decay"] == hp["weight_decay"]
        assert scaled["dropout"] == hp["dropout"]


# Hand-computed from "clamp(round(steps * step_scale), min_steps, max_steps)".
CPU_STEPS = {500: 40, 1000: 40, 2000: 40, 2500: 50, 5000: 100, 8000: 160, 10_000: 200,
             16_000: 200}
QUICK_STEPS = {500: 5, 1000: 5, 2000: 5, 2500: 5, 5000: 10, 8000: 10, 10_000: 10, 16_000: 10}


@pytest.mark.parametrize("name, table, batch", [("cpu", CPU_STEPS, 32),
                                                ("quick", QUICK_STEPS, 16)])
def test_small_profiles_scale_as_documented(name, table, batch):
    profile = hr.get_profile(name)
    for steps, expected in table.items():
        hp = {"lr": 0.1, "steps": steps, "weight_decay": 1e-3, "dropout": 0.1}
        scaled = profile.scale(hp)
        assert scaled["steps"] == expected
        assert scaled["batch_size"] == batch
        assert scaled["momentum"] == 0.9
        assert scaled["weight_decay"] == 1e-3 and scaled["dropout"] == 0.1
        # The documented invariant: lr / (batch * (1 - momentum)) is the paper's.
        assert scaled["lr"] / (batch * (1 - 0.9)) == pytest.approx(0.1 / (512 * (1 - 0.99)))
        hp_record = hr.HParams(**scaled, seed=1)
        assert hp_record.steps == expected
    assert hp == {"lr": 0.1, "steps": 16_000, "weight_decay": 1e-3, "dropout": 0.1}  # untouched


def test_profile_to_json_describes_the_scaling():
    for profile in hr.PROFILES.values():
        d = json.loads(json.dumps(profile.to_json()))
        for key in ("name", "step_scale", "batch_size", "min_steps", "max_steps",
                    "resolution_cap", "momentum", "lr_scale", "rule", "description"):
            assert key in d
        assert d["name"] == profile.name


# ----------------------------------------------------------------------------- resolution

@pytest.mark.parametrize("profile, hw, input_size, expected", [
    ("paper", (32, 32), None, (160, 128)),
    ("paper", (224, 224), None, (512, 480)),
    ("cpu", (32, 32), None, (80, 64)),        # 64 * 160 / 128
    ("cpu", (224, 224), None, (68, 64)),      # 64 * 512 / 480 = 68.27
    ("quick", (32, 32), None, (40, 32)),
    ("quick", (224, 224), None, (34, 32)),    # 32 * 512 / 480 = 34.13
    ("cpu", (28, 28), 48, (60, 48)),          # a fixed input size wins
    ("cpu", (224, 224), 299, (319, 299)),     # ... even above the cap: 299 * 16 / 15 = 318.9
    ("paper", (32, 32), 224, (280, 224)),
])
def test_preprocessing_for(profile, hw, input_size, expected):
    p = hr.get_profile(profile)
    assert hr.preprocessing_for(hw, input_size, p) == expected
    assert hr.eval_resolution(hw, input_size, p) == expected[1]


def test_capped_resolution_keeps_the_hyperrule_ratio():
    for cap in range(8, 480):
        p = hr.Profile(name="t", step_scale=1.0, batch_size=8, min_steps=1, max_steps=None,
                       resolution_cap=cap, momentum=0.9, lr_scale=1.0)
        for hw in ((32, 32), (300, 300)):
            rule_resize, rule_crop = hr.resolution(hw)
            resize, crop = hr.preprocessing_for(hw, None, p)
            assert crop == min(cap, rule_crop)
            assert abs(resize - crop * rule_resize / rule_crop) <= 0.5
