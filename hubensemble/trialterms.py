"""A trial's settings in its own kind's terms, wherever they are shown (tune's log, the
report's members table): a probe (kind "probe", `tune.probe`: an L2-penalised logistic
regression fitted by L-BFGS on frozen embeddings) stores its L2 strength lambda in HParams'
``weight_decay`` and its L-BFGS iteration limit in ``steps``, with lr 0, momentum 0 and the
other fine-tuning fields as placeholders; a log line "lr=0.0, steps=1000, momentum=0.0" read
as a fine-tune that never moved. TensorFlow-free (the report reads it)."""

from __future__ import annotations

#: A probe's HParams fields as they are shown: (field, its name in a probe's terms). The
#: rule of `sweeps.probe_sweep` (weight_decay = lambda of PROBE_L2, steps = PROBE_MAX_ITER)
#: and `hyperrule.PROBE_HPARAMS`.
PROBE_TERMS = (("kind", "kind"), ("weight_decay", "l2_strength"),
               ("steps", "lbfgs_max_iterations"))

#: What PROBE_TERMS' names mean, said once beside a table or log that shows them.
PROBE_TERMS_NOTE = ("a probe's l2_strength is λ of its penalty (mean cross-entropy + λ/2·‖W‖²; "
                    "stored as weight_decay) and lbfgs_max_iterations the most L-BFGS "
                    "iterations its solver runs (stored as steps); it has no learning rate, "
                    "momentum or dropout")


def trial_terms(hparams: dict) -> dict:
    """`hparams` (a dict of HParams.to_json's keys) as shown: a probe's (kind "probe") only
    the fields that mean something for it, renamed by PROBE_TERMS ({"kind": "probe",
    "l2_strength": 0.001, "lbfgs_max_iterations": 1000}); any other trial's as they are (a
    new dict either way)."""
    hparams = dict(hparams or {})
    if hparams.get("kind") != "probe":
        return hparams
    return {new: hparams[old] for old, new in PROBE_TERMS if old in hparams}


def _span(low, high) -> str:
    return f"{low:g}…{high:g}"


def scaling_note(profile: dict) -> str:
    """How the paper's hyperparameters become a trial's under `profile` (a
    `hyperrule.Profile.to_json` dict, as run.json's tune.sweeps.*.profile holds it), with the
    A.2 space's ranges (`sweeps.LR_RANGE`, `sweeps.STEPS_CHOICES`) as they come out, e.g.
    "profile cpu: steps × 0.02 clamped to 40…200 (A.2's 500…16000 → 40…200); lr × 0.625
    (A.2's 0.0001…0.1 → 6.25e-05…0.0625); …". The rule is `Profile.scale` and
    `Profile.bn_hparams`: a trial's lr of 1.4e-5 and steps 40 read as outside A.2's space."""
    from hubensemble.sweeps import LR_RANGE, STEPS_CHOICES

    p = dict(profile)
    name, scale = p.get("name", "?"), float(p.get("step_scale", 1.0))
    low, high = int(p.get("min_steps") or 1), p.get("max_steps")

    def steps(n):
        n = max(low, int(n * scale + 0.5))
        return n if high is None else min(int(high), n)

    lr = float(p.get("lr_scale", 1.0))
    clamp = f" clamped to {low}…{high}" if high is not None else (
        f" (at least {low})" if low > 1 else "")
    words = (f"profile {name}: steps × {scale:g}{clamp} (A.2's "
             f"{_span(min(STEPS_CHOICES), max(STEPS_CHOICES))} → "
             f"{_span(steps(min(STEPS_CHOICES)), steps(max(STEPS_CHOICES)))}); lr × {lr:g} "
             f"(batch {p.get('batch_size')}, momentum {p.get('momentum')}; A.2's "
             f"{_span(*LR_RANGE)} → {_span(LR_RANGE[0] * lr, LR_RANGE[1] * lr)})")
    bn = []
    if float(p.get("bn_lr_scale", 1.0)) != 1.0:
        bn_lr = lr * float(p["bn_lr_scale"])
        bn.append(f"lr × {float(p['bn_lr_scale']):g} more (A.2's {_span(*LR_RANGE)} → "
                  f"{_span(LR_RANGE[0] * bn_lr, LR_RANGE[1] * bn_lr)})")
    if p.get("bn_head_init"):
        bn.append(f"head_init {p['bn_head_init']}"
                  + (" (LP-FT)" if p["bn_head_init"] == "probe" else ""))
    if p.get("bn_augment") is False:
        bn.append("whole images, resize_factor 1.0 in place of A.3's pre-crop resize "
                  "U(1.05, 1.30)")
    if p.get("bn_clipnorm"):
        bn.append(f"gradients clipped to global norm {float(p['bn_clipnorm']):g}")
    if bn:
        words += "; modules with BatchNorm in inference mode: " + ", ".join(bn)
    return words
