"""Sweep plans: which trials a sweep runs, as pure functions of the ranking, task and seed.

No TensorFlow, no Keras, no files: a plan is computed the same way on every machine of a
distributed sweep, and the tests check it in microseconds. Sources: paper 2.2 (seeds), A.1.1
(the default grid and the augmentation sweep's four settings per family), A.2 (the
HyperEnsembles space), A.3 (augmentation families) and 2.3.1 (combined: tau-threshold
modules x L/K random configurations).

Outside the `tune` package, which loads TensorFlow first, so that a worker of a chief/worker
sweep plans its trials before TensorFlow loads (`sweepend`); `tune.plans` re-exports it.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hubensemble import hyperrule, sweeps
from hubensemble.sweeps import check_modules, untuned_reason  # (the plan warns: re-exported)
from hubensemble.lockwords import option_word
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, RunError
from hubensemble.hyperrule import AugConfig, HParams
from hubensemble.proxies import select_threshold
# Which profile a trial or run used: read below rank and tune (re-exported here).
from hubensemble.runprofile import as_profile, trial_profile  # noqa: F401
from hubensemble.text import counted

SWEEPS = sweeps.SWEEPS
#: Budget (trials) of the seeds/hyper/aug/combined sweeps when none is given. The paper's
#: L = 60; on a CPU the demo keeps to a dozen trials, the tests to four.
DEFAULT_BUDGETS = {"paper": 60, "cpu": 12, "quick": 4}
#: Combined sweep (paper 2.3.1): modules within tau (relative) of the best kNN score, at most K.
TAU = 0.02
MAX_K = 15
#: The seeds baseline (paper 2.2): the generalist with fixed hyperparameters, before scaling.
SEEDS_HPARAMS = {"lr": 0.01, "steps": 2500, "weight_decay": 0.0, "dropout": 0.0}
# Sub-seeds of the random plans, so the sweeps never share draws.
_SEED_TAGS = {"hyper": 1, "aug": 2, "combined": 3}


@dataclass(frozen=True)
class PlanEntry:
    """One planned trial.

    index: its place in the plan (0-based); trial_id: ``<sweep>-<index:04d>-<module>`` (the
    candidate folder's name); module: the catalogue name; hparams: everything the trial
    trains with, its seed included (already scaled by the profile).
    """

    index: int
    trial_id: str
    module: str
    hparams: HParams

    def to_json(self) -> dict:
        """{"index", "trial", "module", "hparams"}: one row of RUN/tuner/<sweep>/plan.json."""
        return {"index": self.index, "trial": self.trial_id, "module": self.module,
                "hparams": self.hparams.to_json()}


def trial_seed(seed: int, index: int) -> int:
    """The training seed of plan entry `index` of a sweep seeded `seed`: an int in [0, 2^31)
    from numpy's SeedSequence([seed mod 2^32, index])."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF


def trial_id(sweep: str, index: int, module: str) -> str:
    """``<sweep>-<index:04d>-<module>``: readable, and the same for the same plan in every run
    (the sweep prefix keeps several sweeps in one run directory apart)."""
    return f"{sweep}-{index:04d}-{module}"


def default_budget(sweep: str, profile, n_selected: int) -> int:
    """Trials of a sweep when no budget is given: 4 per selected module (at least 4) for
    `default` and `probe`; else 60 (profile paper), 12 (cpu), 4 (quick); 60 for a custom
    profile."""
    if sweep in ("default", "probe"):
        return 4 * max(1, int(n_selected))
    return DEFAULT_BUDGETS.get(as_profile(profile).name, DEFAULT_BUDGETS["paper"])


def _task_flags(task) -> tuple[bool, bool]:
    if isinstance(task, Mapping):
        return bool(task.get("flip", True)), bool(task.get("synthetic", False))
    return bool(task.flip), bool(task.synthetic)


def _ranked(ranking: Mapping) -> tuple[list[str], dict]:
    rows = ranking.get("modules") or []
    names = [r["name"] for r in rows if r.get("status", "ok") == "ok"]
    scores = {r["name"]: r.get("score") for r in rows if r.get("status", "ok") == "ok"}
    return names, scores


def _best_generalist(pool: list[str], specs: Mapping[str, ModuleSpec]) -> str:
    for name in pool:
        if specs[name].family == "generalist":
            return name
    warnings.warn(f"no module of family 'generalist' among {', '.join(pool)}; using the "
                  f"best-ranked module {pool[0]!r} for this baseline", stacklevel=3)
    return pool[0]


#: Why a sweep of one module tunes it (`base_words`), with the paper's section.
_ONE_MODULE_WHY = {
    "seeds": "with fixed hyperparameters and a seed per trial (paper 2.2's baseline)",
    "hyper": "with random hyperparameters per trial (paper A.2)",
    "aug": "with 4 trials per augmentation family (paper A.1.1)",
}


def base_words(ranking: Mapping, specs: Mapping[str, ModuleSpec], plan: Sequence[PlanEntry],
               *, sweep: str, modules: Sequence[str] | None = None) -> str | None:
    """The line a seeds, hyper or aug sweep says once as it starts: which one module it
    tunes and why that one (`_best_generalist`'s rule: the best-ranked module of family
    "generalist" in the ranking, or among `modules` (--modules) when given; the best-ranked
    module when none is), with its rank and kNN score from `ranking`: "seeds sweep: 4
    trials of gen_a, the best-ranked generalist (rank 2 of 3, kNN score 0.874), with fixed
    hyperparameters …". They said no word of it (a new-user check). None for other sweeps
    or an empty `plan`. Pure: no file, no TensorFlow."""
    if sweep not in _ONE_MODULE_WHY or not plan:
        return None
    base = plan[0].module
    ranked, scores = _ranked(ranking)
    spec = specs.get(base)
    among = f" of {option_word('--modules', 'modules')}" if modules else ""
    kind = ("generalist" if spec is not None and spec.family == "generalist" else
            "module") + among
    if not kind.startswith("generalist"):
        kind += " (none is of family 'generalist' in the catalogue)"
    where = (f"rank {ranked.index(base) + 1} of {len(ranked)}" if base in ranked else "")
    score = scores.get(base)
    said = ", ".join(filter(None, (where, f"kNN score {score:.3g}"
                                   if isinstance(score, (int, float)) else "")))
    best = f"the best-ranked {kind}"
    return (f"{sweep} sweep: {counted(len(plan), 'trial')} of {base}, {best}"
            + (f" ({said})" if said else "") + f", {_ONE_MODULE_WHY[sweep]}")


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def _pool(ranking, ranked, sweep, modules, again=None) -> list[str]:
    if modules:  # `again`: plan_sweep's whole call, with the modules meant (plan_again)
        return check_modules(modules, ranking.get("modules") or [], again=again)
    if sweep in ("default", "probe"):
        pool = [n for n in ranked if n in set(ranking.get("selected") or [])]
        if not pool:
            raise RunError(f"the ranking selected no module; pass "
                           f"{option_word('--modules NAME…', 'modules=[NAME, …]')} or rank again")
        return pool
    return list(ranked)


def untuned_modules(ranking: Mapping, plan: Sequence[PlanEntry], *, sweep: str,
                    modules: Sequence[str] | None = None, tau: float = TAU,
                    max_k: int = MAX_K) -> list[str]:
    """The modules a sweep is for that its `plan` (from `plan_sweep` with the same arguments)
    gives no trial, in rank order: for default and probe, those of `modules` or the
    ranking's selection beyond the budget's L // 4; for combined, those within tau of the
    best score beyond a budget below their number; [] for seeds, hyper and aug (one
    generalist by design). Raises as `plan_sweep` does for a ranking it refuses."""
    if sweep not in ("default", "probe", "combined"):
        return []
    ranked, scores = _ranked(ranking)
    pool = _pool(ranking, ranked, sweep, modules)
    if sweep == "combined":
        tau, max_k = combined_threshold(ranking, tau, max_k)
        pool = select_threshold({n: scores[n] for n in pool}, tau=tau, max_k=max_k)
    planned = {e.module for e in plan}
    return [m for m in pool if m not in planned]


def _no_trial(names) -> str:
    return f"{', '.join(names)} get{'s' if len(names) == 1 else ''} no trial: "


def combined_threshold(ranking: Mapping, tau: float = TAU,
                       max_k: int = MAX_K) -> tuple[float, int]:
    """The (tau, max_k) of the combined sweep (paper 2.3.1): the ranking's own when rank
    selected by threshold (its "selection" {"rule": "threshold", "threshold", "max_k"}: a
    user's `--threshold` reaches the sweep), else the given ones (default TAU, MAX_K)."""
    selection = ranking.get("selection") or {}
    if selection.get("rule") == "threshold":
        return float(selection["threshold"]), int(selection.get("max_k", max_k))
    return tau, max_k


def rank_again(run_dir=None) -> str:
    """The way on of a ranking the sweep cannot plan from, the whole command in the caller's
    words: "run `hubensemble rank --catalogue /abs/c.yaml --data sklearn:digits --out
    /abs/RUN` again", the command that wrote the ranking of run `run_dir`
    (`RunRanking.rank_command`: its catalogue, data and rank options as run.json records
    them); without a run, "run `hubensemble rank --catalogue FILE --data SPEC --out RUN`
    again (FILE, SPEC and RUN: the run's catalogue, data and folder)" (from Python,
    "call run_rank(specs=load_catalogue(FILE), task=load_task(SPEC), out_dir=RUN) …"). It
    said "run `hubensemble rank` again", with none of the flags rank needs."""
    from hubensemble.lockwords import RANK_INPUTS, call_verb, on_command_line

    if run_dir is not None:
        from hubensemble.rundir import Run

        return f"{call_verb()} {Run(run_dir).rank_command()} again"
    line = (f"`hubensemble rank {RANK_INPUTS['flags']} --out RUN`" if on_command_line() else
            f"run_rank({RANK_INPUTS['keywords']}, out_dir=RUN)")
    return (f"{call_verb()} {line} again (FILE, SPEC and RUN: the run's catalogue, data and "
            "folder)")


def plan_sweep(ranking: Mapping, specs: Mapping[str, ModuleSpec], *, sweep: str, task,
               profile, budget: int | None = None, modules: Sequence[str] | None = None,
               seed: int = 0, tau: float = TAU, max_k: int = MAX_K,
               batchnorm: Mapping[str, str] | str = "train",
               head_init: str | None = None, run_dir=None) -> list[PlanEntry]:
    """The deterministic list of trials of a sweep (a pure function of its arguments).

    ranking: ranking.json ({"modules": [{"name", "status", "score"}, ...] best first,
    "selected": [...]}); specs: name -> ModuleSpec (for the family); task: a Task or its
    JSON record (flip and synthetic are used); profile (a Profile or its name) scales steps,
    lr, batch and momentum; budget: the number of trials L (>= 1; default `default_budget`).

    default: the 2 x 2 grid lr {0.1, 0.01} x steps {2500, 10000} (paper A.1.1) per module of
      ``modules`` or the ranking's selection; a budget L keeps the first L // 4 of them (the
      others are warned about: `untuned_modules`, `untuned_reason`).
    seeds: the best-ranked generalist, lr 0.01 and 2500 steps, L different seeds (2.2).
    hyper: L random configurations of paper A.2 on the best-ranked generalist.
    aug: L // 4 random augmentation families (A.3) x the default 2 x 2 grid on the
      generalist (A.1.1: each augmentation setting is fine-tuned 4 times).
    combined: modules within tau of the best kNN score (at most max_k) = K'; L random A.2
      configurations (paper 2.3.1: L / K' each) dealt round-robin (module 1, module 2, …,
      module 1, …) from one random stream per module: the first L % K' get one more, and
      a budget below K' tunes the first L modules. A ranking selected by threshold (rank
      --threshold: its "selection" rule "threshold") gives its own tau and max_k
      (`combined_threshold`), so the sweep keeps what rank kept.
    probe: head-only candidates, the L2 strengths of `sweeps.probe_sweep` (4) per module
      of ``modules`` or the ranking's selection; a budget L keeps the first L // 4 modules
      (no profile scaling: a probe is a logistic regression, hubensemble.tune.probe).
    A plan never has more than L trials (paper 2: the fine-tuning budget is "the total
    number of models we can fine-tune"). Every trial gets its own seed, `trial_seed(seed,
    index)`. A larger budget extends a random plan: its first entries stay the same.
    Fine-tuning entries get the BatchNorm policy `batchnorm` (one of
    hyperrule.BATCHNORM_MODES, or {module: policy}; a module not in the mapping gets
    "train") and the head start `head_init` (None: the profile's); an "inference" entry then
    gets the profile's `Profile.bn_hparams` (cpu: LP-FT head, lr x0.001, whole images,
    gradients clipped to global norm 1; an explicit `head_init` still wins).

    Raises HubensembleError for an unknown sweep, a budget < 1 (< 4 for default, probe and
    aug, whose trials come in groups of 4) or a module not usable in the ranking; RunError
    when the ranking has no usable module or selection, or a module has no catalogue entry
    in `specs`, naming the rank command that writes it again (`rank_again`: of the run at
    `run_dir` when given, else with its placeholders). Warns (UserWarning) when the budget
    leaves modules of the selection (or of ``modules``, or the combined sweep's) without a
    trial, naming them, does not divide into
    the sweep's groups of 4 or among the combined sweep's modules, or no module is a
    generalist.
    """
    if sweep not in SWEEPS:
        raise HubensembleError(f"unknown sweep {sweep!r}; choose one of: {', '.join(SWEEPS)}")
    profile = as_profile(profile)
    ranked, scores = _ranked(ranking)
    if not ranked:
        raise RunError(f"the ranking has no usable module; {rank_again(run_dir)} and "
                       "check its errors")
    from hubensemble.sweepagain import plan_again  # (it imports the options table)

    pool = _pool(ranking, ranked, sweep, modules, again=plan_again(dict(
        sweep=sweep, profile=profile, budget=budget, modules=modules, seed=seed,
        batchnorm=batchnorm, head_init=head_init, run_dir=run_dir)))
    missing = [n for n in pool if n not in specs]
    if missing:
        raise RunError(f"run.json has no catalogue entry for {', '.join(missing)}; "
                       f"{rank_again(run_dir)}")
    if budget is None:
        budget = default_budget(sweep, profile, len(pool))
    if int(budget) < 1:
        raise HubensembleError(f"budget must be >= 1, got {budget}")
    budget = int(budget)
    flip, synthetic = _task_flags(task)
    grid = sweeps.default_sweep()
    configs: list[tuple[str, dict, AugConfig | None]] = []
    sweeps.check_budget(sweep, budget, again=plan_again(dict(  # the whole call to make
        sweep=sweep, profile=profile, budget=budget, modules=modules, seed=seed,
        batchnorm=batchnorm, head_init=head_init, run_dir=run_dir)), modules=pool)
    if sweep in ("default", "probe"):
        if sweep == "probe":
            grid = sweeps.probe_sweep()
        k = budget // 4
        if k < len(pool):  # said, or the modules beyond were dropped without a word
            warnings.warn(_no_trial(pool[k:]) + untuned_reason(
                sweep, budget, k, len(pool), given=bool(modules)), stacklevel=2)
        elif budget % 4:
            warnings.warn(f"the {sweep} sweep runs 4 trials per module; budget {budget} "
                          f"gives {counted(k, 'module')}", stacklevel=2)
        if k > len(pool):
            if budget != default_budget(sweep, profile, len(pool)):
                warnings.warn(f"budget {budget} asks for {k} modules but only {len(pool)} "
                              f"are selected; running {4 * len(pool)} trials", stacklevel=2)
            k = len(pool)
        configs = [(m, cfg, None) for m in pool[:k] for cfg in grid]
    elif sweep == "seeds":
        base = _best_generalist(pool, specs)
        configs = [(base, dict(SEEDS_HPARAMS), None) for _ in range(budget)]
    elif sweep == "hyper":
        base = _best_generalist(pool, specs)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["hyper"]])
        configs = [(base, sweeps.sample_hparams(rng), None) for _ in range(budget)]
    elif sweep == "aug":
        base = _best_generalist(pool, specs)
        if budget % 4:
            warnings.warn(f"the aug sweep runs 4 trials per augmentation family; budget "
                          f"{budget} gives {counted(budget // 4, 'family', 'families')}",
                          stacklevel=2)
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["aug"]])
        for _ in range(budget // 4):
            aug = hyperrule.sample_augmentation(rng, flip_allowed=flip, synthetic=synthetic)
            configs.extend((base, cfg, aug) for cfg in grid)
    else:  # combined
        tau, max_k = combined_threshold(ranking, tau, max_k)
        kept = select_threshold({n: scores[n] for n in pool}, tau=tau, max_k=max_k)
        if not kept:
            raise RunError("no ranked module has a score; the combined sweep needs kNN "
                           f"scores: {rank_again(run_dir)}")
        # Exactly L trials (2.3.1: a sweep of L / K' for each of the K' modules), dealt
        # round-robin in kNN order, so the first L % K' modules get one more.
        per, extra = divmod(budget, len(kept))
        if not per:
            warnings.warn(_no_trial(kept[budget:]) + untuned_reason(
                sweep, budget, budget, len(kept), tau=tau), stacklevel=2)
        elif extra:
            warnings.warn(f"the combined sweep deals budget {budget} round-robin over its "
                          f"{counted(len(kept), 'module')} within tau {tau:g} of the best "
                          "score: "
                          f"{extra} of them get {per + 1}, the others {per}", stacklevel=2)
        # One random stream per module, dealt round-robin: a larger budget appends trials
        # (the plan's prefix and ids stay), and a sweep cut short has trials of every module.
        rngs = {m: np.random.default_rng([int(seed) & 0xFFFFFFFF, _SEED_TAGS["combined"],
                                          _name_key(m)]) for m in kept}
        configs = [(m, sweeps.sample_hparams(rngs[m]), None)
                   for _ in range(per + bool(extra)) for m in kept][:budget]

    plan = []
    for i, (module, cfg, aug) in enumerate(configs):
        if cfg.get("kind") == "probe":
            hp = HParams(**cfg, batch_size=profile.batch_size, momentum=0.0,
                         seed=trial_seed(seed, i))
        else:
            bn = batchnorm if isinstance(batchnorm, str) else batchnorm.get(module, "train")
            hp = finetune_hparams(cfg, profile, batchnorm=bn, seed=trial_seed(seed, i),
                                  augmentation=aug, head_init=head_init)
        plan.append(PlanEntry(i, trial_id(sweep, i, module), module, hp))
    return plan


def finetune_hparams(config: Mapping, profile, *, batchnorm: str, seed: int,
                     augmentation: AugConfig | None = None,
                     head_init: str | None = None) -> HParams:
    """The HParams of one fine-tuning trial, as every sweep plans it.

    config: the paper's values (keys as in `sweeps.default_sweep`: lr, steps, weight_decay,
    dropout); `profile` (a Profile or its name) scales them (`Profile.scale`); `batchnorm`
    (one of hyperrule.BATCHNORM_MODES) then applies the profile's rule for the module's
    BatchNorm policy (`Profile.bn_hparams`: for "inference" under cpu, an LP-FT head, lr
    x0.001, whole images, clipnorm 1); `head_init` None gives the profile's head start, a
    value wins over it. Raises HubensembleError (from HParams) for a value out of range.
    """
    profile = as_profile(profile)
    given = {"augmentation": augmentation} if head_init is None else {
        "augmentation": augmentation, "head_init": head_init}
    start = profile.head_init if head_init is None else head_init
    return HParams(**{"head_init": start,
                      **profile.bn_hparams({**profile.scale(config), **given}, batchnorm)},
                   seed=seed, batchnorm=batchnorm)


def sweep_parts(sweep: str) -> tuple[str, ...]:
    """The sweeps a --sweep value runs, in order: ("default",) for "default", ("default",
    "probe") for "default+probe" (`sweeps.sweep_parts`; HubensembleError for another
    value)."""
    try:
        return sweeps.sweep_parts(sweep)
    except ValueError as e:
        raise HubensembleError(f"sweep {sweep!r}: {e}") from None
