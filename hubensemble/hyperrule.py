"""Fine-tuning policy as pure functions: BiT-HyperRule, the paper's sweeps, schedules, profiles."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from hubensemble.errors import HubensembleError
from hubensemble.text import did_you_mean

# ---------------------------------------------------------------------------------------------
# BiT-HyperRule (big_transfer's bit_hyperrule.py, Kolesnikov et al. 2019)
# ---------------------------------------------------------------------------------------------

#: Images with fewer pixels than this are "small" for the HyperRule (area < 96 x 96).
SMALL_IMAGE_AREA = 96 * 96
#: (resize, crop) for small and for other images.
SMALL_RESOLUTION = (160, 128)
LARGE_RESOLUTION = (512, 480)


def resolution(image_hw: tuple[int, int]) -> tuple[int, int]:
    """The HyperRule's (resize, crop): (160, 128) when h*w < 96*96, else (512, 480)."""
    h, w = _positive_hw(image_hw)
    return SMALL_RESOLUTION if h * w < SMALL_IMAGE_AREA else LARGE_RESOLUTION


def schedule(dataset_size: int) -> list[int]:
    """The HyperRule's step boundaries [warm-up end, decay, decay, decay, end] for a data set size.

    The decay points are the 40/60/80 % marks of the total, as in `learning_rate`; below 20k
    examples `learning_rate(step, 500, lr)` is this schedule exactly.
    """
    if dataset_size < 0:
        raise HubensembleError(f"dataset_size must be >= 0, got {dataset_size}")
    if dataset_size < 20_000:
        return [100, 200, 300, 400, 500]
    if dataset_size < 500_000:
        return [500, 3000, 6000, 9000, 10_000]
    return [500, 6000, 12_000, 18_000, 20_000]


def mixup_alpha(dataset_size: int) -> float:
    """The HyperRule's MixUp alpha: 0 (no MixUp) below 20k examples, else 0.1."""
    if dataset_size < 0:
        raise HubensembleError(f"dataset_size must be >= 0, got {dataset_size}")
    return 0.0 if dataset_size < 20_000 else 0.1


# ---------------------------------------------------------------------------------------------
# The paper's fine-tuning schedule (A.1.1): warm-up for 20 %, then x0.1 at each further 20 %
# ---------------------------------------------------------------------------------------------

#: Factor applied at each decay boundary.
DECAY = 0.1


def schedule_boundaries(total_steps: int) -> tuple[int, list[int]]:
    """(warmup_steps, [b1, b2, b3]) of the paper's schedule for `total_steps` steps.

    warmup_steps = floor(20 % of total), b1/b2/b3 = floor(40/60/80 % of total), in exact integer
    arithmetic. With 500 steps this gives 100, [200, 300, 400]: BiT's small-data schedule.

    A Keras schedule reproduces `learning_rate` exactly as
    ``min(1, step / warmup_steps) * PiecewiseConstantDecay([b1, b2, b3], schedule_values(lr))``
    (factor 1 when warmup_steps is 0); PiecewiseConstantDecay keeps the earlier value *at* a
    boundary, which is the convention used here.
    """
    total = _positive_int(total_steps, "total_steps")
    warmup = total // 5
    return warmup, [2 * total // 5, 3 * total // 5, 4 * total // 5]


def schedule_values(base_lr: float) -> list[float]:
    """The four plateau values after warm-up: base_lr, then x0.1, x0.01, x0.001."""
    return [base_lr, base_lr * DECAY, base_lr * DECAY ** 2, base_lr * DECAY ** 3]


def learning_rate(step: int, total_steps: int, base_lr: float) -> float:
    """The paper's learning rate for the update at `step` (0-based) of a `total_steps` schedule.

    With W, [b1, b2, b3] = schedule_boundaries(total_steps) (20/40/60/80 %, floored):

        step < W          base_lr * step / W      linear warm-up; exactly 0 at step 0, as in BiT
        W <= step <= b1   base_lr
        b1 < step <= b2   base_lr * 0.1
        b2 < step <= b3   base_lr * 0.01
        b3 < step         base_lr * 0.001

    This is big_transfer's `get_lr` generalised to any length: the warm-up is `step / W`, and a
    decay applies only to steps strictly after its boundary (BiT's ``if s < step``). Values at
    the marks (T = total_steps divisible by 5):
    0 % -> 0;  20 % -> base_lr;  40 % -> base_lr (the x0.1 starts at the next step);
    60 % -> 0.1 base_lr;  80 % -> 0.01 base_lr;  100 % -> 0.001 base_lr.
    Training runs steps 0 .. T-1, so the value at step T is never used; it is returned (rather
    than BiT's None) so the function is total. With T < 5 there is no warm-up (W = 0).
    """
    if step < 0:
        raise HubensembleError(f"step must be >= 0, got {step}")
    warmup, (b1, b2, b3) = schedule_boundaries(total_steps)
    if step < warmup:
        return base_lr * step / warmup
    values = schedule_values(base_lr)
    if step <= b1:
        return values[0]
    if step <= b2:
        return values[1]
    if step <= b3:
        return values[2]
    return values[3]


# ---------------------------------------------------------------------------------------------
# Search spaces: the default sweep (A.1.1), HyperEnsembles (A.2), AugEnsembles (A.3)
# ---------------------------------------------------------------------------------------------

PAPER_BATCH_SIZE = 512
PAPER_MOMENTUM = 0.99

#: What a trial trains (`HParams.kind`): the whole model, or only a head on frozen embeddings;
#: the HParams a probe has (weight_decay: its L2 lambda, steps: its L-BFGS iterations; lr 0 and
#: head_init "zero" are placeholders).
KINDS, PROBE_HPARAMS = ("finetune", "probe"), ("kind", "weight_decay", "steps")
#: How the module runs while its weights train (`HParams.batchnorm`; the tune option's
#: "auto" is decided per module from its variables before planning).
BATCHNORM_MODES = ("train", "inference")
#: How the new head starts (`HParams.head_init`): zeros (paper A.1) or a probe (LP-FT).
HEAD_INITS = ("zero", "probe")

CROP_MODES = ("inception", "random")


@dataclass(frozen=True)
class AugConfig:
    """One augmentation family (paper A.3); the magnitudes here are the per-image ranges.

    crop: "inception" (random area 5-100 %, aspect 3/4-4/3, resized to the crop size) or
      "random" (resize to round(resize_factor * crop), then a random crop).
    flip: random left/right flips (only ever True when the task allows flipping).
    brightness / hue: delta_max; each image gets delta ~ U(-delta_max, delta_max). None = off.
    saturation / contrast: (s_min, s_max); each image gets s ~ U(s_min, s_max). None = off.
    mixup_alpha: MixUp with lambda ~ Beta(alpha, alpha) per batch; 0 = off.
    """

    crop: str = "random"
    resize_factor: float | None = None
    flip: bool = False
    brightness: float | None = None
    hue: float | None = None
    saturation: tuple[float, float] | None = None
    contrast: tuple[float, float] | None = None
    mixup_alpha: float = 0.0

    def __post_init__(self):
        if self.crop not in CROP_MODES:
            raise HubensembleError(
                f"AugConfig.crop must be one of {', '.join(CROP_MODES)}; got {self.crop!r}"
                f"{did_you_mean(self.crop, CROP_MODES)}")
        if self.crop == "random":
            if self.resize_factor is None or not self.resize_factor >= 1.0:
                raise HubensembleError(
                    "AugConfig with crop='random' needs resize_factor >= 1 (the pre-crop size "
                    f"as a multiple of the crop; the paper samples 1.05-1.30); got "
                    f"{self.resize_factor!r}")
            object.__setattr__(self, "resize_factor", float(self.resize_factor))
        elif self.resize_factor is not None:
            raise HubensembleError("AugConfig with crop='inception' takes no resize_factor; "
                                   "remove it or use crop='random'")
        for name in ("brightness", "hue"):
            value = getattr(self, name)
            if value is not None:
                if not 0.0 <= value <= 1.0:
                    raise HubensembleError(f"AugConfig.{name} (delta_max) must be in [0, 1]; "
                                           f"got {value!r}")
                object.__setattr__(self, name, float(value))
        for name in ("saturation", "contrast"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != 2 or not 0.0 <= value[0] <= value[1]:
                    raise HubensembleError(f"AugConfig.{name} must be [s_min, s_max] with "
                                           f"0 <= s_min <= s_max; got {value!r}")
                # JSON brings lists back: store tuples so equal configs compare equal.
                object.__setattr__(self, name, (float(value[0]), float(value[1])))
        if not self.mixup_alpha >= 0.0:
            raise HubensembleError(f"AugConfig.mixup_alpha must be >= 0; got {self.mixup_alpha!r}")
        object.__setattr__(self, "mixup_alpha", float(self.mixup_alpha))
        object.__setattr__(self, "flip", bool(self.flip))

    @property
    def has_colour(self) -> bool:
        """Whether any colour distortion (brightness, hue, saturation, contrast) is on."""
        return any(getattr(self, n) is not None
                   for n in ("brightness", "hue", "saturation", "contrast"))

    def to_json(self) -> dict:
        """A JSON-ready dict (ranges as lists); `from_json` reverses it."""
        d = dataclasses.asdict(self)
        for name in ("saturation", "contrast"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_json(cls, obj: Mapping | str) -> AugConfig:
        """The AugConfig of a `to_json` dict or its JSON text; HubensembleError when a field is
        unknown or out of range."""
        return cls(**_checked_fields(cls, _as_mapping(obj)))


#: A.3 ranges.
RESIZE_FACTOR_RANGE = (1.05, 1.30)
DELTA_MAX_RANGE = (0.01, 0.2)
S_MIN_RANGE = (0.25, 0.75)
AUG_MIXUP_ALPHA_RANGE = (0.01, 0.2)


def _sample_scale_range(rng) -> tuple[float, float]:
    s_min = float(rng.uniform(*S_MIN_RANGE))
    return s_min, float(rng.uniform(2.0 * s_min, 4.0 * s_min))


def sample_augmentation(rng, *, flip_allowed: bool, synthetic: bool) -> AugConfig:
    """One draw from the AugEnsembles space (paper A.3).

    Fixed draw order: crop (inception vs random, p 0.5; random -> resize factor
    ~ U(1.05, 1.30)); flip with p 0.5 only if `flip_allowed` (no draw otherwise); unless
    `synthetic`, each of brightness (delta_max ~ U(0.01, 0.2)), hue (same), saturation
    (s_min ~ U(0.25, 0.75), s_max ~ U(2 s_min, 4 s_min)) and contrast (same) with p 0.5 (no
    draws for synthetic data: the paper found colour distortion hurts e.g. dSprites); MixUp
    with p 0.5, alpha ~ U(0.01, 0.2).
    """
    kw: dict[str, Any] = {}
    if rng.random() < 0.5:
        kw["crop"] = "inception"
    else:
        kw["crop"] = "random"
        kw["resize_factor"] = float(rng.uniform(*RESIZE_FACTOR_RANGE))
    kw["flip"] = bool(flip_allowed and rng.random() < 0.5)
    if not synthetic:
        if rng.random() < 0.5:
            kw["brightness"] = float(rng.uniform(*DELTA_MAX_RANGE))
        if rng.random() < 0.5:
            kw["hue"] = float(rng.uniform(*DELTA_MAX_RANGE))
        if rng.random() < 0.5:
            kw["saturation"] = _sample_scale_range(rng)
        if rng.random() < 0.5:
            kw["contrast"] = _sample_scale_range(rng)
    if rng.random() < 0.5:
        kw["mixup_alpha"] = float(rng.uniform(*AUG_MIXUP_ALPHA_RANGE))
    return AugConfig(**kw)


@dataclass(frozen=True)
class HParams:
    """Everything one fine-tuning trial needs besides the module and the data.

    weight_decay is an L2 penalty towards the *initial* (pre-trained) weights; 0 = off.
    augmentation None = the HyperRule's preprocessing (resize, random crop, flip if allowed).
    mixup_alpha is the HyperRule's MixUp (0 below 20k examples; the paper uses none outside
    AugEnsembles); an AugConfig's own mixup_alpha replaces it (see `effective_mixup_alpha`).
    momentum is SGD's (the paper's 0.99; short CPU profiles use less, see Profile).

    kind: "finetune" (the whole model trains with SGD) or "probe" (only the head, a
    logistic regression on the frozen module's embeddings: `weight_decay` is its L2 strength
    lambda in the mean cross-entropy + lambda / 2 * ||W||^2 on standardised embeddings, steps
    its L-BFGS iteration limit, lr 0 (no SGD), batch_size the batch of the frozen forward
    passes; see hubensemble.tune.probe).
    batchnorm: how the module runs while it fine-tunes: "train" (Keras' `training` passed
    through: BatchNorm uses batch statistics and updates its moving averages) or "inference"
    (the module called with training=False while its weights train, as Keras' transfer-learning
    guide does); see hubensemble.hub.layer.BATCHNORM_POLICIES. A probe is always "inference".
    head_init: "zero" (the paper's zero head) or "probe" (LP-FT, Kumar et al. 2022: the head
    starts as a logistic-regression probe fitted on the training embeddings, its L2 strength
    picked on validation: tune.probe.pick_probe).
    clipnorm: >= 0; SGD's gradients are scaled down to this global L2 norm when theirs is
    larger (Keras' `global_clipnorm`; the paper clips nothing); 0 = off.
    Older records without these four fields read as "finetune", "train", "zero", 0.
    """

    lr: float
    steps: int
    weight_decay: float = 0.0
    dropout: float = 0.0
    batch_size: int = PAPER_BATCH_SIZE
    seed: int = 0
    augmentation: AugConfig | None = None
    mixup_alpha: float = 0.0
    momentum: float = PAPER_MOMENTUM
    kind: str = "finetune"
    batchnorm: str = "train"
    head_init: str = "zero"
    clipnorm: float = 0.0

    def __post_init__(self):
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)} (got {self.kind!r})"
                            f"{did_you_mean(self.kind, KINDS)}")
        if self.batchnorm not in BATCHNORM_MODES:
            problems.append(f"batchnorm must be one of {', '.join(BATCHNORM_MODES)} (got "
                            f"{self.batchnorm!r}){did_you_mean(self.batchnorm, BATCHNORM_MODES)}")
        if self.head_init not in HEAD_INITS:
            problems.append(f"head_init must be one of {', '.join(HEAD_INITS)} (got "
                            f"{self.head_init!r}){did_you_mean(self.head_init, HEAD_INITS)}")
        # A number field of another type (a trial.json edited by hand: "lr": "0.01") raised
        # TypeError from the range checks below, naming no field.
        wrong = [f"{name} must be a number (got {getattr(self, name)!r})" for name in _NUMBERS
                 if isinstance(getattr(self, name), bool)
                 or not isinstance(getattr(self, name), numbers.Real)]
        if wrong:
            raise HubensembleError("invalid hyperparameters: " + "; ".join(problems + wrong))
        if self.kind == "probe":
            if self.lr != 0:
                problems.append(f"a probe trains no SGD: lr must be 0 (got {self.lr!r})")
            if self.batchnorm != "inference" or self.head_init != "zero":
                problems.append("a probe runs the module frozen: batchnorm 'inference', "
                                "head_init 'zero'")
        elif not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr!r})")
        if not (_is_int(self.steps) and self.steps >= 1):
            problems.append(f"steps must be an integer >= 1 (got {self.steps!r})")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay must be >= 0 (got {self.weight_decay!r})")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout!r})")
        if not (_is_int(self.batch_size) and self.batch_size >= 1):
            problems.append(f"batch_size must be an integer >= 1 (got {self.batch_size!r})")
        if not _is_int(self.seed):
            problems.append(f"seed must be an integer (got {self.seed!r})")
        if not self.mixup_alpha >= 0:
            problems.append(f"mixup_alpha must be >= 0 (got {self.mixup_alpha!r})")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1) (got {self.momentum!r})")
        if not self.clipnorm >= 0:
            problems.append(f"clipnorm must be >= 0, 0 = off (got {self.clipnorm!r})")
        elif self.kind == "probe" and self.clipnorm:
            problems.append("a probe trains no SGD: clipnorm must be 0")
        if self.augmentation is not None and not isinstance(self.augmentation, AugConfig):
            problems.append("augmentation must be an AugConfig or None")
        if problems:
            raise HubensembleError("invalid hyperparameters: " + "; ".join(problems))
        for name in ("lr", "weight_decay", "dropout", "mixup_alpha", "momentum", "clipnorm"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("steps", "batch_size", "seed"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def effective_mixup_alpha(self) -> float:
        """The MixUp alpha to train with: the AugConfig's when there is one, else mixup_alpha."""
        return self.augmentation.mixup_alpha if self.augmentation is not None else self.mixup_alpha

    def to_json(self) -> dict:
        """A JSON-ready dict (trial.json's "hparams"); `from_json` reverses it."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["augmentation"] = None if self.augmentation is None else self.augmentation.to_json()
        return d

    @classmethod
    def from_json(cls, obj: Mapping | str) -> HParams:
        """The HParams of a `to_json` dict or its JSON text; HubensembleError when a field is
        unknown or out of range."""
        d = _checked_fields(cls, _as_mapping(obj))
        if d.get("augmentation") is not None:
            d["augmentation"] = AugConfig.from_json(d["augmentation"])
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Profiles: how the paper's TPU-sized numbers are scaled to the machine at hand
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """How a run scales the paper's schedules; `to_json` goes into run.json.

    steps  -> clamp(round(steps * step_scale), min_steps, max_steps)   (round half up)
    batch  -> batch_size
    lr     -> lr * lr_scale
    momentum -> momentum
    resolution: the HyperRule crop is capped at resolution_cap, the resize keeping its ratio.
    head_init: how a fine-tuned head starts (HEAD_INITS): "zero" (paper A.1) or "probe" (LP-FT).
    fail_at_chance: whether tune fails a candidate at chance on validation
      (hubensemble.tune.train.chance_reason); off only for `quick`, whose 5-10 steps are
      plumbing for tests and leave tiny modules at the uniform prediction.
    bn_head_init, bn_lr_scale, bn_augment, bn_clipnorm: how fine-tuning trials of a module
      whose BatchNorm policy is "inference" (moving statistics kept, `BATCHNORM_MODES`)
      differ: their head start (None: head_init), an extra factor on their lr, whether they
      train on the HyperRule's random crops and flips (False: the whole image resized to the
      crop, `WHOLE_IMAGE`), and the global gradient norm they are clipped to
      (`HParams.clipnorm`; 0 = off). `bn_hparams` applies them. The defaults change nothing.
    """

    name: str
    step_scale: float
    batch_size: int
    min_steps: int
    max_steps: int | None
    resolution_cap: int | None
    momentum: float
    lr_scale: float
    description: str = ""
    head_init: str = "zero"
    fail_at_chance: bool = True
    bn_head_init: str | None = None
    bn_lr_scale: float = 1.0
    bn_augment: bool = True
    bn_clipnorm: float = 0.0

    def __post_init__(self):
        for name in ("head_init", "bn_head_init"):
            value = getattr(self, name)
            if value not in HEAD_INITS and not (name == "bn_head_init" and value is None):
                raise HubensembleError(f"Profile.{name} must be one of "
                                       f"{', '.join(HEAD_INITS)}; got {value!r}"
                                       f"{did_you_mean(value, HEAD_INITS)}")
        if not self.bn_lr_scale > 0:
            raise HubensembleError(f"Profile.bn_lr_scale must be > 0; got {self.bn_lr_scale!r}")
        if not self.bn_clipnorm >= 0:
            raise HubensembleError(f"Profile.bn_clipnorm must be >= 0 (0 = off); got "
                                   f"{self.bn_clipnorm!r}")

    def bn_hparams(self, hparams: Mapping[str, Any], batchnorm: str) -> dict:
        """`hparams` (already `scale`d; keys of HParams) for a module whose BatchNorm policy is
        `batchnorm`: unchanged for "train"; for "inference" the lr times bn_lr_scale, the
        head start bn_head_init when there is one (and no head_init in `hparams`), with
        bn_augment False and no augmentation given `WHOLE_IMAGE`, and with bn_clipnorm > 0
        (and no clipnorm in `hparams`) that clipnorm."""
        out = dict(hparams)
        if batchnorm != "inference":
            return out
        if "lr" in out:
            out["lr"] = float(out["lr"]) * self.bn_lr_scale
        if self.bn_head_init is not None:
            out.setdefault("head_init", self.bn_head_init)
        if not self.bn_augment and out.get("augmentation") is None:
            out["augmentation"] = WHOLE_IMAGE
        if self.bn_clipnorm:
            out.setdefault("clipnorm", self.bn_clipnorm)
        return out

    def scale_steps(self, steps: int) -> int:
        """The paper's `steps` under this profile: round(steps * step_scale) (half up),
        clamped to [min_steps, max_steps]."""
        scaled = int(math.floor(steps * self.step_scale + 0.5))
        scaled = max(self.min_steps, scaled)
        if self.max_steps is not None:
            scaled = min(self.max_steps, scaled)
        return scaled

    def scale(self, hparams: Mapping[str, Any]) -> dict:
        """`hparams` (keys as in `default_sweep`) with steps, lr, batch size and momentum scaled.

        Other keys pass through unchanged; the result can be given to ``HParams(**...)``.
        """
        out = dict(hparams)
        if "steps" in out:
            out["steps"] = self.scale_steps(int(out["steps"]))
        if "lr" in out:
            out["lr"] = float(out["lr"]) * self.lr_scale
        out["batch_size"] = self.batch_size
        out["momentum"] = self.momentum
        return out

    def with_train_batch(self, batch: int | None) -> Profile:
        """This profile training in batches of `batch` images (--train-batch-size; None or
        the profile's own: unchanged): batch_size `batch` and lr_scale x batch / batch_size,
        the linear scaling rule (Goyal et al. 2017) the built-in profiles already scale the
        paper's batch 512 by (`_momentum_lr_scale`); steps, momentum, resolution and the
        BatchNorm rule stay (cpu's bn_lr_scale and bn_clipnorm were measured at batch 32
        only). The name stays: the run's record (`to_json`) holds batch_size and lr_scale.
        HubensembleError for a batch that is not an integer >= 1."""
        if batch is None or batch == self.batch_size:
            return self
        if not (_is_int(batch) and batch >= 1):
            raise HubensembleError(f"the training batch must be an integer >= 1, got {batch!r}")
        scale = round(self.lr_scale * batch / self.batch_size, 12)
        return dataclasses.replace(
            self, batch_size=int(batch), lr_scale=scale,
            description=f"{self.description.split('; --train-batch-size')[0]}; "
                        f"--train-batch-size {batch}: batch {batch}, lr x{scale:g}")

    def to_json(self) -> dict:
        """The profile as run.json records it, with the scaling rule in words."""
        d = dataclasses.asdict(self)
        d["rule"] = ("steps = clamp(round(paper_steps * step_scale), min_steps, max_steps); "
                     "lr = paper_lr * lr_scale; batch_size and momentum replace the paper's "
                     f"{PAPER_BATCH_SIZE} and {PAPER_MOMENTUM}; HyperRule crop capped at "
                     "resolution_cap (resize keeps the HyperRule's resize/crop ratio); "
                     "modules fine-tuned with BatchNorm in inference mode: lr x bn_lr_scale, "
                     "head bn_head_init (when set), whole images when bn_augment is false, "
                     "gradients clipped to global norm bn_clipnorm (when > 0)")
        return d


def _momentum_lr_scale(batch_size: int, momentum: float) -> float:
    # Linear scaling rule (Goyal et al. 2017) for the smaller batch, times the change in the
    # momentum's gain 1 / (1 - m): keeps lr * (512 / batch) / (1 - m) equal to the paper's.
    # Rounded so run.json shows 0.625, not 1 - 0.99's float residue.
    return round((batch_size / PAPER_BATCH_SIZE) * (1.0 - momentum) / (1.0 - PAPER_MOMENTUM), 12)


#: Training images of a trial that does not augment: the whole image resized to the crop
#: (a "random" crop of a resize to 1.0 x crop), no flip, no colour, no MixUp.
WHOLE_IMAGE = AugConfig(crop="random", resize_factor=1.0)

PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper", step_scale=1.0, batch_size=PAPER_BATCH_SIZE, min_steps=1, max_steps=None,
        resolution_cap=None, momentum=PAPER_MOMENTUM, lr_scale=1.0,
        description="the paper's numbers unchanged: batch 512, SGD momentum 0.99, steps as "
                    "given, HyperRule resolution (needs accelerators)"),
    # cpu: a demo sweep of ~12-16 trials of tiny modules (~300k parameters) on 2 CPU cores in a
    # couple of minutes. Measured here: a 295k-parameter conv net trains at ~0.054 s/step with
    # batch 32 at 64 px, so the default sweep's 2500/10000 steps -> 50/200 steps take ~3/11 s.
    # Floor 40 keeps 8 steps in each 20 % phase of the schedule (500-2000 steps all become 40);
    # the cap 200 only touches the 16k choice (-> 200, 8k -> 160). Batch 32: per-example cost
    # dominates on CPU, so a smaller batch buys more updates. Momentum 0.9: with 0.99 the
    # velocity remembers ~100 steps, longer than these whole runs, so the decays would not take
    # effect (measured: lr 0.00625, m 0.99, 40 steps -> loss 19; m 0.9 trains fine).
    # lr_scale 0.625 = (32/512) * (0.1/0.01) keeps lr / (batch * (1 - m)) at the paper's value.
    # Resolution cap 64 px: cost grows with pixels; the HyperRule's 128 px crop for small images
    # becomes 64 (resize 80).
    # Real BatchNorm modules (BatchNorm policy "inference": moving statistics kept, issue 15)
    # measured by tools/benchmarks/bench_backbones.py on signdigits10 with MobileNet V1 at
    # 224 px (docs/tune.md, "Real backbones"): with the zero head and lr 0.00625 test 0.527,
    # lr 0.0625 exploded; with a probe head (LP-FT) lr 0.00625 and 0.000625 exploded, lr
    # 6.25e-5 on the HyperRule's crops and flips fell to 0.906, and lr 6.25e-5 on whole
    # images gave 0.957 >= the best probe's 0.955 (gtsrb10: 0.885, at lr 6.25e-6 0.889, vs
    # 0.893; pbc_bloodcells8: 0.769, 0.813 vs 0.817; no explosion anywhere). So: head from
    # the probe, lr x0.001 (0.1 / 0.01 -> 6.25e-5 / 6.25e-6), whole images. On
    # dsprites_orient10 lr 6.25e-5 x 200 steps still exploded (loss 9.2 by step 80): the
    # gradient reaching the backbone scales with the head's weights, and a few channels with
    # moving variance ~0 amplify it. Clipped to global norm 1 (as ViT fine-tunes, Dosovitskiy
    # et al. 2021) the same trial trained (largest norm 12.7; validation 0.960); bn_clipnorm.
    "cpu": Profile(
        name="cpu", step_scale=0.02, batch_size=32, min_steps=40, max_steps=200,
        resolution_cap=64, momentum=0.9, lr_scale=_momentum_lr_scale(32, 0.9),
        description="2-core CPU demo: steps x0.02 (40..200), batch 32, momentum 0.9, "
                    "lr x0.625, crop capped at 64 px; modules with BatchNorm in inference "
                    "mode: LP-FT head, lr x0.001 more, whole images, gradients clipped to "
                    "global norm 1",
        bn_head_init="probe", bn_lr_scale=0.001, bn_augment=False, bn_clipnorm=1.0),
    # quick: for tests. 5 steps is the least that keeps one step per schedule phase (warm-up
    # step 0 has lr 0); at most 10; batch 16 and 32 px keep a trial to about a second.
    "quick": Profile(
        name="quick", step_scale=0.002, batch_size=16, min_steps=5, max_steps=10,
        resolution_cap=32, momentum=0.9, lr_scale=_momentum_lr_scale(16, 0.9),
        description="tests: steps x0.002 (5..10), batch 16, momentum 0.9, lr x0.3125, "
                    "crop capped at 32 px; candidates at chance are not failed",
        fail_at_chance=False),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; an unknown name raises OptionError (a HubensembleError and
    a ValueError, as every option value refused from Python) listing the known ones."""
    from hubensemble.optionerror import OptionError

    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise OptionError(
            f"unknown profile {name!r}{did_you_mean(name, PROFILES)}; choose one of: "
            f"{', '.join(PROFILES)}") from None


def _resize_for(crop: int, rule: tuple[int, int]) -> int:
    """round(crop * resize/crop of the HyperRule), half up, in exact integer arithmetic."""
    big, small = rule
    return (2 * crop * big + small) // (2 * small)


def preprocessing_for(task_image_hw: tuple[int, int], input_size: int | None,
                      profile: Profile) -> tuple[int, int]:
    """(resize, crop) for fine-tuning a module on a task's images.

    A module with a fixed `input_size` gets crop = input_size, which wins over the profile's
    cap (the module takes nothing else), and resize = input_size scaled by the HyperRule's
    resize/crop ratio for these images (160/128 or 512/480). Otherwise the HyperRule's
    (resize, crop), with the crop capped at `profile.resolution_cap` and the resize scaled with
    it by the same ratio.
    """
    rule = resolution(task_image_hw)
    if input_size is not None:
        crop = _positive_int(input_size, "input_size")
        return _resize_for(crop, rule), crop
    resize, crop = rule
    cap = profile.resolution_cap
    if cap is not None and crop > cap:
        return _resize_for(cap, rule), cap
    return resize, crop


def eval_resolution(image_hw: tuple[int, int], input_size: int | None, profile: Profile) -> int:
    """The square size images are resized to for embeddings and evaluation: the training crop."""
    return preprocessing_for(image_hw, input_size, profile)[1]


def probe_side(input_size, native_size, image_hw: tuple[int, int]) -> int:
    """The square side in pixels a probe candidate of a module embeds and evaluates at (the
    module's own, whatever a profile caps fine-tuning at): max(input_size) when the entry
    has one ((height, width): the module resizes to it itself), else max(native_size) (the
    size it was pre-trained at), else the uncapped evaluation resolution of images of
    `image_hw` (`eval_resolution` under the paper profile: 128 px under 96 x 96, else 480).
    TensorFlow-free: tune's probes (`tune.probe.probe_resolution`) and the memory rule of a
    probe sweep (`memory.stage_memory_note`) both read it."""
    if input_size is not None:
        return int(max(input_size))
    if native_size is not None:
        return int(max(native_size))
    return int(eval_resolution(tuple(image_hw), None, get_profile("paper")))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(value, what: str) -> int:
    if not _is_int(value) or value < 1:
        raise HubensembleError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _positive_hw(image_hw) -> tuple[int, int]:
    try:
        h, w = image_hw
    except (TypeError, ValueError):
        raise HubensembleError(f"image size must be (height, width), got {image_hw!r}") from None
    return _positive_int(h, "image height"), _positive_int(w, "image width")


def _as_mapping(obj) -> Mapping:
    if isinstance(obj, (str, bytes)):
        obj = json.loads(obj)
    if not isinstance(obj, Mapping):
        raise HubensembleError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


#: The HParams fields that are numbers (steps, batch_size and seed: integers, checked so).
_NUMBERS = ("lr", "weight_decay", "dropout", "mixup_alpha", "momentum", "clipnorm")


def _fields(names) -> str:
    """"field" for one of `names`, "fields" for more."""
    return "field" if len(names) == 1 else "fields"


def _checked_fields(cls, d: Mapping) -> dict:
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise HubensembleError(f"{cls.__name__}: unknown {_fields(unknown)} "
                               f"{', '.join(f + did_you_mean(f, names) for f in unknown)}; "
                               f"known fields: {', '.join(names)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise HubensembleError(f"{cls.__name__}: missing {_fields(missing)} {', '.join(missing)}")
    return dict(d)
