"""A finished chief/worker sweep's run folder, written by files only (no TensorFlow, no fit):
for the tests of a worker with nothing left to run (`sweepend.finished_worker`)."""

import numpy as np

from hubensemble import candidate, sweeplock
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import RunError
from hubensemble.rundir import Run
from hubensemble.sweepplan import as_profile, plan_sweep

ORACLE = "127.0.0.1:9"
#: The worker's command line on the folder (--run added).
WORKER = ["tune", "--tuner-id", "tuner0", "--oracle", ORACLE, "--sweep", "seeds",
          "--budget", "2", "--profile", "quick", "--batchnorm", "train"]


def finished_sweep(path, chief="done"):
    """Writes run `path`: module "m" ranked, a "seeds" sweep of --budget 2 recorded as its
    chief recorded it (--profile quick, --seed 0, --batchnorm train), trial 0
    ok at chance on validation (uniform probabilities on 8 balanced labels), trial 1 failed;
    and its chief's end record: `chief` "done", "error" (a RunError) or None (no record)."""
    path.mkdir()
    spec = ModuleSpec(name="m", handle=str(path / "m"), family="generalist")
    profile = as_profile("quick")
    ranking = {"modules": [{"name": "m", "status": "ok", "score": 1}], "selected": ["m"]}
    task = {"sizes": {"train": 8, "val": 8}}
    plan = plan_sweep(ranking, {"m": spec}, sweep="seeds", task=task, profile=profile,
                      budget=2, seed=0, batchnorm={"m": "train"})
    record = {"sweep": "seeds", "budget": 2, "seed": 0, "profile": profile.to_json(),
              "plan_size": 2, "modules": ["m"], "requested_modules": None, "untuned": None,
              "keep_weights": "all", "trials": [e.trial_id for e in plan],
              "batchnorm": {"requested": "train",
                            "modules": {"m": {"policy": "train", "evidence": None}}},
              "train_rule": 2, "head_init": None}
    Run(path).update(modules={"m": spec.to_json()}, data={"task": task},
                     tune={**record, "sweeps": {"seeds": record}})
    (path / "ranking.json").write_text(
        '{"modules": [{"name": "m", "status": "ok", "score": 1}], "selected": ["m"]}')
    (path / "labels").mkdir()
    labels = np.arange(8) % 2
    for split in ("train", "val"):
        np.save(path / "labels" / f"{split}.npy", labels)
    for entry, status in zip(plan, ("ok", "failed")):
        trial = {"trial": entry.trial_id, "module": "m", "hparams": entry.hparams.to_json(),
                 "status": status, "profile": "quick", "train_rule": 2, "weights": None,
                 "has_test": False,
                 "reason": "diverged" if status == "failed" else None,
                 "val": {"ce": float(np.log(2)), "accuracy": 0.5}}
        candidate.write_candidate(path / "candidates", trial, val_probs=np.full(
            (8, 2), 0.5) if status == "ok" else None)
    if chief is None:
        return path
    try:
        with Run(path).lock("tune", "chief", {"sweep": "seeds", "oracle": ORACLE}):
            sweeplock.chief_serves(path, [e.trial_id for e in plan])
            if chief == "error":
                raise RunError("module 'm' cannot load: bad module")
    except RunError:
        pass
    return path
