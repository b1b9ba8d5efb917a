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
