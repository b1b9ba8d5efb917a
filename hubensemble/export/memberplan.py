"""The export stage's members: each entry of ensemble.json planned from its candidate record
(`exportplan._plan_member`, TensorFlow-free: its weights, or retraining), rebuilt with its
weights (`_build_member`) and described for the export (`_export_member`). Split out of
`export.stage`."""

from __future__ import annotations

import contextlib
import logging
import random

from hubensemble.errors import ModuleLoadError, RunError, first_line, reraise_stop
from hubensemble.exportplan import _Plan, _plan_member  # noqa: F401 - were here
from hubensemble.export.saved import ExportMember
from hubensemble.export.shared import backbone_key, share_key
from hubensemble.tune.plans import trial_profile
from hubensemble.weightsfile import BACKBONE_DIGEST

# The stage's logger: its warnings read as the export stage's, as before the split.
log = logging.getLogger("hubensemble.export.stage")


@contextlib.contextmanager
def seeded_python_random(seed: int):
    """Python's `random` seeded with `seed` (an int) inside the block, and given back its own
    state after it (a Python caller's random numbers are not changed).

    Keras draws the initial state of a SeedGenerator made without a seed (the member's head
    Dropout: `keras.random.SeedGenerator`, int64 [2], stored in the SavedModel's variables)
    from Python's `random` (keras.src.random.seed_generator.make_default_seed). Drawn from the
    process's own random state, it made two exports of one run write other
    variables.data bytes (3 of 18 variables of a 3-member export) for the same outputs: it
    feeds only dropout, which serving never runs. Drawn from the member's seed (as tune,
    which seeds the process with it), the same member stores the same state."""
    state = random.getstate()
    random.seed(int(seed))
    try:
        yield
    finally:
        random.setstate(state)


def _build_member(plan, task, weights_file, run, meta):
    """(classifier, None, None) or (None, reason the member cannot be built, what to do or
    None for re-running its trial). `run`, `meta`: the Run and its run.json."""
    from hubensemble import tune
    from hubensemble.hub import recorded_by_earlier_rule

    hparams = plan.cand.read_hparams()
    try:
        with seeded_python_random(hparams.seed):
            classifier = tune.build_classifier(plan.spec, task.num_classes,
                                               dropout=hparams.dropout,
                                               name=f"classifier_{plan.index}")
    except ModuleLoadError as e:
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        raise RunError(f"member {plan.index} (trial {plan.record.get('trial')!r}): its module "
                       f"cannot load: {e}") from e
    trained_on = plan.record.get("module_fingerprint")
    now = getattr(classifier.backbone, "fingerprint", None)
    files = getattr(classifier.backbone, "module_files", None)
    if trained_on and now and trained_on != now and not (
            files and recorded_by_earlier_rule(trained_on, files)):
        # Its weights are of the old module's (a key of an older hubensemble's rule for the
        # same files, a trial of a run before c251b02, is not a change).
        from hubensemble.rerun import start_again

        # Re-running the trial would not do: tune refuses the changed module (its ranking).
        return None, (f"member {plan.index} (trial {plan.record.get('trial')!r}, module "
                      f"{plan.entry.get('module')!r}): the module's files changed since the "
                      f"trial was trained (content fingerprint {trained_on[:12]}… then, "
                      f"{now[:12]}… now)"), ("restore the module's files, or "
                                             + start_again(run.path, meta))
    try:
        classifier.load_weights(weights_file)
    except Exception as e:  # noqa: BLE001 - h5py and Keras raise many types for a bad file
        reraise_stop(e)  # a Ctrl-C / SIGTERM that came out as this error
        return None, (f"member {plan.index} (trial {plan.record.get('trial')!r}, module "
                      f"{plan.entry.get('module')!r}): its weights file {weights_file} cannot "
                      f"be loaded ({type(e).__name__}: {first_line(e)})"), None
    return classifier, None, None


def _export_member(plan, classifier, task, meta):
    from hubensemble import tune

    record = plan.record
    size = record.get("eval_size")
    if not size:
        size = tune.eval_size(task, plan.spec, trial_profile(record, meta, plan.meta_path))
    source = {"weights": "tuned weights", "retrain": "retrained on train (weights not kept)",
              "retrain_full": "retrained on train + val"}[plan.how]
    info = {"trial": record.get("trial"), "module": plan.spec.name, "handle": plan.spec.handle,
            "weight": float(plan.entry.get("weight", 1.0)), "hparams": record.get("hparams"),
            "seed": record.get("seed"), "eval_size": int(size),
            "input_size": list(plan.spec.input_size) if plan.spec.input_size else None,
            "value_range": plan.spec.value_range, "source": source}
    # A probe (its module frozen) may run its backbone once with others of its module.
    key = share_key(plan.spec.to_json(), getattr(classifier.backbone, "fingerprint", None),
                    int(size), plan.cand.read_hparams().kind,
                    backbone_key(plan.weights_file if plan.how == "weights" else None,
                                 record.get(BACKBONE_DIGEST)))
    return ExportMember(classifier=classifier, size=int(size), weight=info["weight"], info=info,
                        share_key=key)
