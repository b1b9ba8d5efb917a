"""Sweep plans (`hubensemble.sweepplan`, re-exported): which trials a sweep runs. The code
lives outside this package, which loads TensorFlow first, so that a worker of a chief/worker
sweep can plan its trials before TensorFlow loads (`sweepend.worker_stop`)."""

from hubensemble.sweepplan import (DEFAULT_BUDGETS, MAX_K, SEEDS_HPARAMS, SWEEPS,  # noqa: F401
                                   TAU, PlanEntry, as_profile, combined_threshold,
                                   default_budget, finetune_hparams, plan_sweep,
                                   sweep_parts, trial_id, trial_profile, trial_seed,
                                   untuned_modules, untuned_reason)
