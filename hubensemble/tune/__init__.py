"""Fine-tuning sweeps (paper 2.2, 2.3, 2.3.1, A.1-A.3): every name of the tune stage, re-exported.

The package, one concern per module:

    plans.py       which trials a sweep runs (pure: ranking, task flags, profile, seed -> plan)
    model.py       the classifier (module + zero head, decay to init) and the paper's schedule
    inputs.py      training batches, evaluation images, predicted probabilities
    strategies.py  tf.distribute strategies: CPU, GPUs, multi-worker, TPU
    train.py       one trial: the fit loop, a member's retraining, writing its candidate
    tuner.py       Keras Tuner glue: search space, plan oracle, tuner, distributed mode
    chiefwatch.py  a worker stops when its chief has gone (Keras Tuner's client waited an hour)
    pool.py        the pool checks: a call must not add candidates of other settings
    restart.py     tune --restart: what a sweep wrote, removed so it starts over
    stage.py       `run_tune(run_dir, …) -> TuneSummary`, resume and summary

Candidates (RUN/candidates/<trial>/) are written and read only through
`hubensemble.candidate`; `read_candidate`, `write_candidate`, `clean_stale_temps` and
`WEIGHTS_FILE` are re-exported here for older callers.
"""

# TensorFlow first, by _tf's rule (without its C++ start-up notices)
from hubensemble._tf import keras, tensorflow  # noqa: F401 - Keras' backend checked
from hubensemble.candidate import (WEIGHTS_FILE, clean_stale_temps, read_candidate,
                                   write_candidate)
from hubensemble.tune.distributed import CHIEF_TIMEOUT
from hubensemble.tune.inputs import (eval_dataset, eval_size, predict_probs, train_resolution,
                                     training_dataset, trial_size)
from hubensemble.tune.model import (Classifier, PaperSchedule, build_classifier,
                                    compile_classifier)
from hubensemble.tune.plans import (DEFAULT_BUDGETS, MAX_K, SEEDS_HPARAMS, SWEEPS, TAU,
                                    PlanEntry, as_profile, default_budget,
                                    finetune_hparams, plan_sweep, trial_id, trial_seed)
from hubensemble.tune.pool import check_candidates
from hubensemble.tune.stage import (TuneSummary, distributed_call, format_summary, run_tune,
                                    summarize)
from hubensemble.tune.strategies import STRATEGIES, TPU_TIMEOUT, get_strategy
from hubensemble.tune.train import (KEEP_WEIGHTS, MAX_CHUNKS, OBJECTIVE, TensorBoard,
                                    TrialFailed, chunks, finished_candidate, fit_member,
                                    run_entry, train_classifier)
from hubensemble.tune.tuner import (FineTuneHyperModel, FineTuneTuner, PlanOracle,
                                    declare_space, hp_values, hparams_from_hp, plan_entry)

__all__ = [
    "CHIEF_TIMEOUT", "Classifier", "DEFAULT_BUDGETS", "FineTuneHyperModel", "FineTuneTuner",
    "KEEP_WEIGHTS", "MAX_CHUNKS", "MAX_K", "OBJECTIVE", "PaperSchedule", "PlanEntry",
    "PlanOracle", "SEEDS_HPARAMS", "STRATEGIES", "SWEEPS", "TAU", "TPU_TIMEOUT", "TensorBoard",
    "TrialFailed", "TuneSummary", "WEIGHTS_FILE", "as_profile", "build_classifier",
    "check_candidates", "chunks", "clean_stale_temps", "compile_classifier", "declare_space",
    "default_budget", "distributed_call", "eval_dataset", "eval_size", "finetune_hparams",
    "finished_candidate", "fit_member", "format_summary", "get_strategy", "hp_values",
    "hparams_from_hp", "plan_entry", "plan_sweep", "predict_probs", "read_candidate",
    "run_entry", "run_tune", "summarize", "train_classifier", "train_resolution",
    "training_dataset", "trial_id", "trial_seed", "trial_size", "write_candidate",
]
