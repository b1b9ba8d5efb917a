"""The tune stage: `run_tune(run_dir, …)` plans a sweep, runs it resumably, and sums it up."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from types import SimpleNamespace
from typing import Callable, ParamSpec, Sequence, TypeVar

from hubensemble import candidate, options, stagerecords
from hubensemble.errors import RunError, held_stops
from hubensemble.fileio import atomic_write_json, file_lock
from hubensemble.hyperrule import Profile
from hubensemble.lockwords import call_verb, option_word
from hubensemble.rundir import Run
from hubensemble.runspecs import module_specs
from hubensemble.runprofile import OLDER, choose_another, run_profile
from hubensemble.runwriter import bind_call, writes_run
from hubensemble.sweeplock import (chief_serves, held_members, member_of, member_record,
                                   supersede_chief_end, sweep_member, worker_plan_differs)
from hubensemble.formats import check_tuner_folder
from hubensemble.sweepplan import base_words
from hubensemble.pastedway import check_sweep_call
from hubensemble.sweeps import untuned_record
from hubensemble.sweepagain import tune_again
from hubensemble.sweepwords import recorded_sweep, resumed_call, sweep_command
from hubensemble.sweepstate import TRAIN_RULE, sweep_record, sweep_records
# The summary and the lines of reused trials (TensorFlow-free: sweepsummary), re-exported.
from hubensemble.sweepsummary import (TuneSummary, finished_candidate,  # noqa: F401
                                      format_summary, merge_summaries, summarize)
from hubensemble.sweepsummary import older_rule as _older_rule  # noqa: F401
from hubensemble.sweepsummary import say_older_rule as _say_older_rule
from hubensemble.sweepsummary import say_resumed as _say_resumed
from hubensemble.terminal import say, shows_progress
from hubensemble.threads import warnings_block
from hubensemble.text import counted
from hubensemble.tune.plans import (PlanEntry, as_profile, combined_threshold,  # noqa: F401
                                    plan_sweep, sweep_parts, trial_id, untuned_modules)
# The pool checks, re-exported: callers imported them from here before tune/pool.py.
from hubensemble.tune.pool import (callers_words, check_candidates,  # noqa: F401
                                   check_pool, say_unfinished_profile, sweep_changes,
                                   trial_differences, worker_changes)
from hubensemble.tunepending import (check_pool_at_budget, check_restart,  # noqa: F401
                                     check_tune_data, distributed_call, labels_missing,
                                     require_run, warn_at_chance, was_said)
from hubensemble.tune.batchnorm import module_batchnorm  # noqa: F401 (distill's, tests')
from hubensemble.tune.redo import redone_line
from hubensemble.tune.restart import restart_sweep
from hubensemble.tune.inputs import kept_preparations
from hubensemble.tune.search import drop_damaged_tuner_state, probe_search, search
from hubensemble.tune.tuner import PlanMismatch
from hubensemble.tune.distributed import kerastuner_env, wait_for_chief
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")


#: Seconds a worker waits for another worker fitting a probe sweep.
PROBE_LOCK_TIMEOUT = 3600.0


@contextlib.contextmanager
def _sweep_lock(run: Run, sweep: str, timeout: float = 2.0):
    path = run.tuner / f".{sweep}.lock"
    os.makedirs(run.tuner, exist_ok=True)
    lock = file_lock(str(path), timeout=timeout)
    try:
        lock.__enter__()
    except TimeoutError:
        raise RunError(f"another tune process is running the {sweep!r} sweep of {run.path} "
                       f"({path}); wait for it, or share the sweep with "
                       f"{option_word('--tuner-id/--oracle', 'tuner_id/oracle')} "
                       "(see docs/tune.md)") from None
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the sweep's lock held
        with held_stops():
            lock.__exit__(None, None, None)


def _load_inputs(run: Run):
    """(ranking.json, {name: ModuleSpec}, the data's task record): `Run.tune_inputs`."""
    ranking, modules, task_record = run.tune_inputs()
    return ranking, module_specs(run, modules), task_record  # hand edits named (runspecs)


_TUNE = options.defaults_for("tune")


def _check_call(call: dict) -> None:
    """run_tune's refusals of its arguments alone (`call`: its bound arguments), before
    `writes_run` makes the run's lock files and opens RUN/log.txt: a folder or task of
    another type, a value the command line refuses (`options.check_keywords`; a sweep of
    None, the run's, is checked once read), an unknown profile name, a malformed
    `oracle_address` or `tuner_id` or an incomplete pair (`stageargs.check_distributed`, the
    rule `kerastuner_env` applies). run_tune(profile="quik") made the lock files and the log
    before it was refused."""
    from hubensemble import stageargs
    from hubensemble.tunepending import ranked_selection

    stageargs.folder("run_tune", "run_dir", call["run_dir"])
    stageargs.task("run_tune", call["task"], optional=True)
    values = {k: call[k] for k in _TUNE if k != "profile"}
    if values["sweep"] is None:
        del values["sweep"]
    options.check_keywords("tune", values)
    if call["profile"] is not None:
        as_profile(call["profile"])
    stageargs.check_distributed(call["tuner_id"], call["oracle_address"])
    check_restart(call["restart"], call["tuner_id"], call["oracle_address"])
    sweep, budget = call["sweep"], call["budget"]
    if sweep is None:  # the run's own, with its recorded budget: of a run that is there
        require_run(call["run_dir"])
        sweep, budget, _, _ = resumed_call(call["run_dir"], budget, call["modules"])
    again = tune_again(call["run_dir"], {**call, "sweep": sweep, "budget": budget})
    # The modules and the budget in one refusal whose call holds both (a name meant: the
    # whole call with it, as a budget's; plan_sweep's refusal names the keyword); 4×K for the
    # K modules it will tune, as the command line says (it said 4, which the plan then warned
    # left K-1 without a trial).
    check_pool_at_budget(call["run_dir"], {**call, "sweep": sweep, "budget": budget})
    rows, rank_command = _ranked_rows(call["run_dir"]) if call["modules"] else (None, None)
    check_sweep_call(call["modules"], rows, sweep=sweep, budget=budget, again=again,
                     rank_command=rank_command,
                     selected=None if call["modules"] else ranked_selection(call["run_dir"]))
    # Data that moved, in run_tune's words ("; then call run_tune(…) again"), before the
    # lock and TensorFlow: the load's own refusal named no way to call it again.
    check_tune_data(call["run_dir"], call)


def _ranked_rows(run_dir) -> tuple[list | None, str | None]:
    """(the module rows of the run's ranking, the command that ranks it again) for
    `check_sweep_call`'s check of run_tune's `modules`; (None, None) for a ranking that cannot
    be read, left to the stage's own words."""
    from hubensemble.errors import HubensembleError

    run = Run(os.fspath(run_dir))
    try:
        return run.tune_inputs()[0].get("modules") or [], run.rank_command()
    except (HubensembleError, OSError, ValueError, TypeError, AttributeError):
        return None, None


def _refused_first(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: `_check_call` on the call's arguments before `function` (run_tune with its
    lock) runs. The signature stays the function's (`functools.wraps`; ParamSpec, PEP 612)."""
    import functools
    import inspect

    signature = inspect.signature(function)

    @functools.wraps(function)
    def call(*args, **kwargs):
        bound = bind_call(function, signature, args, kwargs)
        bound.apply_defaults()
        _check_call(bound.arguments)
        return function(*args, **kwargs)

    return call


@_refused_first
@shows_progress
@writes_run("tune", member=lambda call: sweep_lock_of(call))  # a sweep's process: its own
@with_stage_settings
def run_tune(run_dir, *, sweep: str | None = _TUNE["sweep"],
             budget: int | None = _TUNE["budget"],
             modules: Sequence[str] | None = _TUNE["modules"],
             strategy: str = _TUNE["strategy"], tpu: str | None = _TUNE["tpu"],
             profile: str | Profile | None = _TUNE["profile"], seed: int = _TUNE["seed"],
             keep_weights: str = _TUNE["keep_weights"],
             max_failures: int = _TUNE["max_failures"],
             tuner_id: str | None = _TUNE["tuner_id"],
             oracle_address: str | None = _TUNE["oracle_address"],
             batchnorm: str = _TUNE["batchnorm"], head_init: str | None = _TUNE["head_init"],
             cache_dir: str | None = _TUNE["cache_dir"], restart: bool = _TUNE["restart"],
             train_batch_size: int | None = _TUNE["train_batch_size"],
             task=None, progress: bool = True, callbacks=(),
             said_redone: Sequence[str] = ()) -> TuneSummary:
    """Fine-tunes a run's modules with a sweep; every trial becomes RUN/candidates/<trial>/.

    `sweep` is one sweep or two joined by "+" (e.g. "default+probe"): each runs in turn,
    with its own plan, trial ids (``<sweep>-<index>-<module>``) and the same `budget`, into
    the one candidate pool the ensemble selects from; None (the default, as `tune --run RUN`
    without --sweep): the run's own, resumed where it was (`sweepwords.resumed_call`:
    run.json's record of its last tune call, with that sweep's recorded `budget` and
    `modules` where none are given, said in one line; the default sweep when it records
    none). A probe sweep fits head-only
    candidates on cached embeddings (hubensemble.tune.probe) without Keras Tuner; in a
    distributed sweep a worker runs them (one at a time, under the sweep's lock).
    `batchnorm` ("auto", "train", "inference"): the BatchNorm policy of fine-tuning trials;
    "auto" decides per module from the variables its SavedModel saves
    (hubensemble.hub.layer.batchnorm_evidence): "inference" with BatchNorm moving statistics,
    else "train"; the decisions go into run.json ("tune" -> "batchnorm") and every trial's
    hparams. `profile`: a name of hyperrule.PROFILES or a Profile; None (the default, as
    the command line's) takes the run's (`run_profile`: its last tune's, else its rank's,
    else cpu), so a call that names neither continues the run's sweep at its profile.
    `train_batch_size` (an integer >= 1; None: the profile's) trains in batches of that many
    images with the profile's lr scaled linearly (`Profile.with_train_batch`, run.json's
    record of the profile holds both); under the paper profile a warning says it is no longer
    the paper's setting. `head_init`
    ("zero", "probe", None = the profile's) is how fine-tuned heads
    start. `cache_dir`: the embedding cache (default `rank.default_cache_dir()`) probes and
    LP-FT heads read.

    Reads RUN/ranking.json and run.json (modules, data) as `rank` left them; plans the sweep
    (`plan_sweep`: sweep, budget, modules, profile, seed) and records it in run.json
    ("tune") and RUN/tuner/<sweep>/plan.json. Resumable: the same call again skips every
    trial whose candidate is complete and re-runs one that was killed or is incomplete.
    Distributed: ``tuner_id="chief"`` and ``oracle_address="HOST:PORT"`` serve the plan;
    ``tuner_id="tuner0"`` (1, …) with the same address run trials (or the KERASTUNER_*
    variables). `strategy` / `tpu`: see `get_strategy`. `keep_weights`: "all" or "none".
    `task`: the run's Task when it was given in Python. `callbacks` are extra Keras callbacks for
    every trial's fit (deep-copied per trial). `said_redone`: ids of finished trials whose files
    changed or were damaged since, which the caller said already (fit's damage line, "…; running
    tune again"): tune runs them again and leaves them out of its line of trials redone
    (`tune.redo.redone_line`), so each is said once. Within `tunepending.nothing_said` (the
    command line's, having said `nothing_to_train`'s line) no "resuming sweep …" nor line of
    trials reused follows that line. `restart`: start
    the sweep (each part of a "+" sweep) over, removing what it wrote first
    (`tune.restart.restart_sweep`: its candidates, Keras Tuner's state, TensorBoard logs and
    run.json record; the pool's other candidates stay and are checked first), said on the
    terminal and in RUN/log.txt; a stand-alone call only (HubensembleError with --tuner-id /
    --oracle).

    Writes RUN/labels/<split>.npy from the run's task when absent (a run folder ranked on
    another machine may hold only run.json and ranking.json; `ensemble` needs the labels),
    and again, with a warning naming it, when unreadable or not the split's int [N] labels.
    Logs to RUN/log.txt while it runs; a failed trial gets one line on the terminal (through
    the progress bar, else a warning) and its traceback in the log, never Keras Tuner's
    traceback on stderr.

    Every refusal comes before the sweep is recorded, so a refused call leaves run.json and
    plan.json as they were: the pool checks (of every part of a "+" sweep before the first
    runs), Keras Tuner's variables (`kerastuner_env`) and the data (`Run.task`, loaded when a
    trial is to run or a label file is missing; not on the chief).

    Returns a `TuneSummary`. Raises RunError when rank has not run, the data changed since,
    the pool holds candidates of another profile, or of this sweep with another seed or
    BatchNorm request (`check_pool`), the plan clashes with existing candidates, another
    process runs the same sweep, no trial left a candidate (each stopped by an error outside
    its training, e.g. a full disk), or more than `max_failures` trials failed;
    HubensembleError for invalid arguments (OptionError for a value the command line refuses,
    `options.check_keywords`); TypeError for a `run_dir` or `task` of another type
    (`stageargs`).
    """
    from hubensemble import stageargs

    run_dir = stageargs.folder("run_tune", "run_dir", run_dir)  # checked: `_check_call`
    nothing_said = was_said()
    resuming = None
    if sweep is None:  # the run's own sweep, resumed where it was (sweepwords.resumed_call)
        sweep, budget, modules, resuming = resumed_call(run_dir, budget, modules, profile)
    # The options table's rules, as the command line's; profile: a Profile or None (the run's)
    options.check_keywords("tune", dict(
        sweep=sweep, budget=budget, modules=modules, strategy=strategy, tpu=tpu, seed=seed,
        keep_weights=keep_weights, max_failures=max_failures, tuner_id=tuner_id,
        oracle_address=oracle_address, batchnorm=batchnorm, head_init=head_init,
        cache_dir=cache_dir, restart=restart, train_batch_size=train_batch_size),
        own=("profile",))
    parts = sweep_parts(sweep)
    run = Run(run_dir)
    run.require_started()  # an empty or mistyped folder: say so, not "run rank"
    sweep_records(run.meta(), run.meta_path)  # a hand edit's: refused before any work
    # The sweep's trials share their traced batch preparations (released at its end).
    with run.log_file(create=False), kept_preparations():
        if resuming and not nothing_said:  # the command line's "nothing to train" said it
            say(SimpleNamespace(quiet=not progress), resuming)
        if profile is None:  # an older definition's said: this call's trials go on at it
            profile, source = run_profile(run)
            older = "; this call's trials train and serve at it too" * (OLDER in source)
            (log.warning if older else log.info)("profile %s (%s%s; %s)", profile.name,
                                                 source, older, choose_another(run))
        profile = _train_batch(as_profile(profile), train_batch_size)
        if not restart:  # a killed tune's other profile, said once
            say_unfinished_profile(run, profile)
        planned = [_plan_part(run, sweep=part, budget=budget, modules=modules,
                              profile=profile, seed=seed, batchnorm=batchnorm,
                              head_init=head_init, tuner_id=tuner_id, cache_dir=cache_dir)
                   for part in parts]
        if restart:  # the pool's other candidates and changed data refuse before anything
            for part in planned:  # is removed
                check_pool(run, sweep=part.sweep, seed=seed, profile=profile,
                           batchnorm=batchnorm, head_init=head_init, restarting=parts,
                           budget=budget, modules=modules, tuner_id=tuner_id,
                           oracle_address=oracle_address, call_sweep=sweep)
            # The data as recorded (loaded once, then handed to each part): data changed
            # since rank was refused by the first trial, after the sweep had been removed.
            task = run.task(task)
            trains = list(dict.fromkeys(e.module for p in planned for e in p.plan))
            for part in parts:  # the modules the call trains, all checked before the first
                say(SimpleNamespace(quiet=not progress), restart_sweep(run, part, trains))
        if len(planned) > 1:  # the second part's refusal came after the first had run
            for part in planned:
                _check_part(run, part, seed=seed, profile=profile, batchnorm=batchnorm,
                            head_init=head_init, budget=budget, modules=modules,
                            tuner_id=tuner_id, oracle_address=oracle_address,
                            call_sweep=sweep)
        summaries = [
            _run_part(run, part, budget=budget, modules=modules, strategy=strategy, tpu=tpu,
                      profile=profile, seed=seed, keep_weights=keep_weights,
                      max_failures=max_failures, tuner_id=tuner_id,
                      oracle_address=oracle_address, batchnorm=batchnorm,
                      head_init=head_init, cache_dir=cache_dir, task=task, progress=progress,
                      callbacks=callbacks, whole=sweep, said_redone=said_redone,
                      nothing_said=nothing_said)
            for part in planned]
    summary = merge_summaries(summaries, sweep)
    if summary.failed > max_failures:
        reasons = "; ".join(f"{t}: {r}" for t, r in list(summary.failures.items())[:3])
        raise RunError(f"{counted(summary.failed, 'trial')} failed, more than "
                       f"{option_word('--max-failures', 'max_failures')} {max_failures}; the "
                       f"sweep stopped ({reasons}). Fix the cause, then delete the failed "
                       f"candidates' folders in {summary.candidates} and "
                       f"{call_verb()} {sweep_command(run.path, sweep)} again")
    if not summary.ok and summary.missing and not distributed_call(tuner_id, oracle_address):
        # Trials that ran but left no candidate hit an error outside training: said, logged.
        raise RunError(f"no trial of the sweep finished: {summary.missing} of "
                       f"{counted(summary.plan_size, 'planned trial')} have no candidate "
                       "(their errors "
                       f"are above and in {Run(run_dir).log}); fix the cause and "
                       f"{call_verb()} {sweep_command(run_dir, sweep)} again")
    if not distributed_call(tuner_id, oracle_address):  # a sweep's process: not its end
        from hubensemble.refresh import refresh_report

        _warn_at_chance(run, summary)
        refresh_report(run.path, "the sweep's candidates")
    elif sweep_member(tuner_id, oracle_address) == "chief":  # the sweep's end: its time
        stagerecords.mark_member_time(run, "chief", "tune")
    return summary


def _train_batch(profile: Profile, batch: int | None) -> Profile:
    """`profile` at --train-batch-size `batch` (`Profile.with_train_batch`), said in the log;
    for the paper profile with a warning: allowed (its batch 512 fits no single accelerator at
    the HyperRule's resolution, and the linear lr rule is the one the other profiles use), but
    its trials then train otherwise than the paper's, as cpu's do (steps stay the paper's, so
    each sees batch/512 of the images)."""
    derived = profile.with_train_batch(batch)
    if derived is profile:
        return profile
    flag = option_word(f"--train-batch-size {batch}", f"train_batch_size={batch}")
    log.info("profile %s at %s: batch %d (was %d), lr_scale %g (was %g)", profile.name, flag,
             derived.batch_size, profile.batch_size, derived.lr_scale, profile.lr_scale)
    if profile.name == "paper":
        log.warning("%s under %s: the trials train in batches of %d with lr x%g, not the "
                    "paper's 512 (steps stay the paper's, so a trial sees %d/512 of the images "
                    "the paper's does); its results are not the paper's", flag,
                    option_word("--profile paper", "profile='paper'"), batch, derived.lr_scale,
                    batch)
    return derived


def _said_untuned(run: Run, ranking, plan, *, sweep, modules):
    """(the head of plan_sweep's "M gets no trial: …" warning, a function that says it from
    the pool) when the plan leaves modules of the selection without a trial, else None. A
    module with trials of `sweep` in the pool (`sweepstate.untried`: an earlier call's larger
    budget) has them: `tune --budget 8` then `--budget 4` warned "exp_b gets no trial" while
    the pool held 4 of them, which the ensemble chooses from. The others are warned of as
    before; these are said (info) with their count in the pool."""
    from hubensemble.sweepstate import untried

    left = untuned_modules(ranking, plan, sweep=sweep, modules=modules)
    if not left:
        return None
    head = f"{', '.join(left)} get{'s' if len(left) == 1 else ''} no trial: "
    none = [m for _, names, _ in untried(run.candidates, [(sweep, left, "")]) for m in names]
    if len(none) == len(left):
        return None
    counts = {}
    for cand in candidate.scan(run.candidates)[0]:
        if cand.trial.startswith(f"{sweep}-"):
            module = cand.trial[len(sweep) + 1:].split("-", 1)[-1]
            counts[module] = counts.get(module, 0) + 1
    held = [m for m in left if m not in none]

    def say(reason):
        if none:
            log.warning("%s get%s no trial: %s", ", ".join(none), "s" if len(none) == 1 else "",
                        reason)
        log.info("%s: this call's plan has no trial of %s (%s), while the pool holds %s of "
                 "the %s sweep from an earlier call, kept for the ensemble",
                 ", ".join(held), "it" if len(held) == 1 else "them", reason.split("; pass")[0],
                 ", ".join(f"{counted(counts.get(m, 0), 'trial')} of {m}" for m in held), sweep)

    return head, say


@dataclasses.dataclass
class _Part:
    """One sweep of a tune call, planned and not yet checked against the pool: its plan (the
    BatchNorm policies decided into it), the inputs it was planned from, and `decided`
    {module: (policy, evidence)}."""

    sweep: str
    plan: list
    ranking: dict
    specs: dict
    task_record: dict
    decided: dict


def _plan_part(run: Run, *, sweep, budget, modules, profile, seed, batchnorm, head_init,
               tuner_id, cache_dir) -> _Part:
    """Plans one sweep of a call (nothing written): RunError as `refuse_changed_modules`."""
    ranking, specs, task_record = _load_inputs(run)
    with warnings_block(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_sweep(ranking, specs, sweep=sweep, task=task_record, profile=profile,
                          budget=budget, modules=modules, seed=seed, head_init=head_init,
                          run_dir=run.path)
    untuned = _said_untuned(run, ranking, plan, sweep=sweep, modules=modules)
    for w in caught:
        if untuned is None or not str(w.message).startswith(untuned[0]):
            log.warning("%s", w.message)
        else:
            untuned[1](str(w.message)[len(untuned[0]):])
    if sweep == "combined":  # which tau chose its modules is said nowhere else
        tau, max_k = combined_threshold(ranking)
        # The plan's modules: a budget below K' reaches only the first (plan_sweep warns).
        log.info("combined sweep: the modules within tau %g of the best score (at most %d) "
                 "that the budget reaches: %s", tau, max_k,
                 ", ".join(dict.fromkeys(e.module for e in plan)))
    decided = {}
    if sweep != "probe":
        # The policy of each planned module, decided from its files, goes into the plan
        # (every trial's hparams), so all processes of a sweep plan the same trials.
        decided = {m: module_batchnorm(specs[m], batchnorm)
                   for m in dict.fromkeys(e.module for e in plan)}
        with warnings_block():  # the same plan again: its warnings were logged
            warnings.simplefilter("ignore")
            plan = plan_sweep(ranking, specs, sweep=sweep, task=task_record, profile=profile,
                              budget=budget, modules=modules, seed=seed, head_init=head_init,
                              batchnorm={m: p for m, (p, _) in decided.items()},
                              run_dir=run.path)
    if (tuner_id or os.environ.get("KERASTUNER_TUNER_ID")) != "chief":  # it loads no module
        from hubensemble.rank import refuse_changed_modules

        refuse_changed_modules(run.path, ranking.get("modules") or [], [
            specs[m] for m in dict.fromkeys(e.module for e in plan)], cache_dir, meta=run.meta())
    return _Part(sweep, plan, ranking, specs, task_record, decided)


def _check_part(run: Run, part: _Part, *, seed, profile, batchnorm, head_init, budget=None,
                modules=None, tuner_id=None, oracle_address=None, call_sweep=None) -> None:
    """The pool checks of one planned sweep (`check_pool`, `check_candidates`; `budget`,
    `modules`, `tuner_id`, `oracle_address` and `call_sweep` (its whole sweep) the call's,
    for check_pool's way on: a process is told its own command): RunError;
    HubensembleError naming RUN/tuner when its name is not UTF-8 and the sweep goes through
    Keras Tuner, which reaches it through TensorFlow only (`formats.check_tuner_folder`)."""
    check_tuner_folder(run.path, part.sweep)  # here, not by the search after it is recorded
    check_pool(run, sweep=part.sweep, seed=seed, profile=profile, batchnorm=batchnorm,
               head_init=head_init, budget=budget, modules=modules, tuner_id=tuner_id,
               oracle_address=oracle_address, call_sweep=call_sweep)
    recorded = sweep_record(run.meta(), part.sweep, run.meta_path)
    check_candidates(run.candidates, part.plan, sweep_changes(
        recorded, seed=seed, profile=profile, batchnorm=batchnorm, head_init=head_init))


def _run_part(run: Run, part: _Part, *, budget, modules, strategy, tpu, profile, seed,
              keep_weights, max_failures, tuner_id, oracle_address, batchnorm, head_init,
              cache_dir, task, progress, callbacks, whole=None, said_redone=(),
              nothing_said=False):
    sweep, plan, specs, task_record = part.sweep, part.plan, part.specs, part.task_record
    standalone = not distributed_call(tuner_id, oracle_address)

    def check(chief):  # the pool checks, then the data's (its RunError names what changed)
        _check_part(run, part, seed=seed, profile=profile, batchnorm=batchnorm,
                    head_init=head_init, budget=budget, modules=modules, tuner_id=tuner_id,
                    oracle_address=oracle_address, call_sweep=whole)
        pending = [e for e in plan if finished_candidate(run.candidates, e.trial_id) is None]
        if not chief and (pending or labels_missing(run, task_record)):
            return pending, run.task(task)  # (the chief only serves the plan: no data there)
        return pending, task

    # Every refusal comes before the sweep is recorded (a refused call leaves run.json as it
    # was): the pool checks, Keras Tuner's variables (a --tuner-id without --oracle), then
    # the data. They come before the sweep's lock file too, which stays after release
    # (fileio.file_lock): a refused call left RUN/tuner/.<sweep>.lock behind. A stand-alone
    # process then takes the lock and checks again before it records anything: a second
    # one, refused, rewrote run.json's sweep record and plan.json first (its profile then
    # planned the next plain `tune`; a new-user check).
    with kerastuner_env(tuner_id, oracle_address) as (distributed, chief):
        worker = distributed and not chief
        pending, task = check(chief)
        with _sweep_lock(run, sweep) if standalone else contextlib.nullcontext():
            if standalone:  # another process may have run meanwhile (the data is loaded)
                pending, task = check(chief)
            reused = len(plan) - len(pending)
            if chief and sweep != "probe":  # its end record lists them (a worker's words)
                chief_serves(run.path, [e.trial_id for e in plan])
            elif standalone:  # the last chief's end record no longer holds
                supersede_chief_end(run.path, sweep)
            need_task = not chief and bool(labels_missing(run, task_record, warn=log.warning)
                                           or pending)
            removed = candidate.clean_stale_temps(run.candidates)
            if removed:
                log.info("removed %s of killed runs",
                         counted(len(removed), "half-written candidate"))
            # A worker of a running chief leaves the chief's record of the sweep: one started
            # with other options (refused once the chief hands it a trial) wrote its own
            # over it, and the resume commands, a plain tune and ensemble then read those.
            if not (worker and sweep != "probe" and _chief_runs(run)):
                _record_tune(run, sweep=sweep, budget=budget, seed=seed, profile=profile,
                             plan=plan, modules=modules, keep_weights=keep_weights, whole=whole,
                             head_init=head_init,
                             untuned=_untuned(part.ranking, plan, sweep=sweep, budget=budget,
                                              modules=modules),
                             batchnorm={"requested": batchnorm,
                                        "modules": {m: {"policy": p, "evidence": ev}
                                                    for m, (p, ev) in part.decided.items()}})
            redone = redone_line(run.candidates, [e.trial_id for e in pending], sweep,
                                 said=said_redone)
            if redone:  # damaged or changed since it finished: said once, counted
                log.warning("%s", redone)
            # A resumed sweep says so (its bar alone starting at 4/8 did not), but not after
            # the command line's "nothing to train: …" (`nothing_said`): again.
            if reused and not (reused == len(plan) and nothing_said):
                _say_resumed(sweep, reused, len(plan), progress)
            _say_older_rule(run, plan, pending, sweep=sweep, reused=reused, worker=worker)
            base = base_words(part.ranking, specs, plan, sweep=sweep, modules=modules)
            if base and pending:  # which one module a seeds/hyper/aug sweep tunes, and why
                say(SimpleNamespace(quiet=not progress), base)
            if need_task:
                run.ensure_labels(task)
            if pending and sweep == "probe":
                if not chief:
                    # No Keras Tuner (nor its chief): the first worker (or the one process) fits
                    # them all under the sweep's lock; another worker waits and finds them done.
                    with (_sweep_lock(run, sweep, timeout=PROBE_LOCK_TIMEOUT) if worker else
                          contextlib.nullcontext()):  # a stand-alone process holds it already
                        probe_search(run, plan, specs, task=task, profile=profile,
                                     keep_weights=keep_weights, cache_dir=cache_dir,
                                     progress=progress)
                pending = []
            if pending and worker:
                wait_for_chief(run_dir=run.path, sweep=sweep,
                               pending=[e.trial_id for e in pending])
            if pending:
                # Workers share the sweep through the chief; a second chief, or a second
                # stand-alone process on the same sweep, would corrupt Keras Tuner's state.
                lock = (contextlib.nullcontext() if worker or standalone
                        else _sweep_lock(run, sweep))
                with lock:
                    if not worker:
                        drop_damaged_tuner_state(run.tuner / sweep)
                    try:
                        search(run, plan, specs, sweep=sweep, seed=seed, profile=profile,
                               keep_weights=keep_weights, max_failures=max_failures,
                               strategy=strategy, tpu=tpu, chief=chief, task=task,
                               progress=progress, callbacks=callbacks, cache_dir=cache_dir)
                    except PlanMismatch as e:  # the options that differ, not a traceback
                        recorded = sweep_record(run.meta(), sweep, run.meta_path)
                        changes = worker_changes(
                            recorded, budget=budget, modules=modules, seed=seed,
                            profile=profile, batchnorm=batchnorm, head_init=head_init)
                        raise worker_plan_differs(
                            run.path, sweep_member(tuner_id, oracle_address), sweep,
                            member_record(sweep, oracle_address)["oracle"],
                            _handed_out(sweep, e), [callers_words(c) for c in changes],
                        ) from None
    summary = dataclasses.replace(summarize(run, plan, sweep=sweep), reused=reused)
    if summary.missing and not standalone and not chief and sweep != "probe":
        _say_not_handed_out(run, summary, sweep=sweep, budget=budget, modules=modules,
                            seed=seed, profile=profile, batchnorm=batchnorm,
                            head_init=head_init, member=sweep_member(tuner_id, oracle_address))
    # Over --max-failures, run_tune's error says what to do (delete the failed folders
    # first); "run tune again" just before it would contradict it.
    if (summary.missing and summary.failed <= max_failures
            and not distributed_call(tuner_id, oracle_address)):
        log.warning("%s no complete candidate (e.g. %s); run tune again",
                    counted(summary.missing, "planned trial") + (
                        " has" if summary.missing == 1 else " have"),
                    next(t for t in summary.trials
                         if finished_candidate(run.candidates, t) is None))
    return summary


def _say_not_handed_out(run: Run, summary: TuneSummary, *, sweep, budget, modules, seed,
                        profile, batchnorm, head_init, member) -> None:
    """A worker whose chief ended its sweep while trials of the worker's own plan have no
    candidate, because its options differ from the chief's in a way that plans a shared
    first part (a larger --budget: the chief's trials are the first of the worker's), warns
    naming the options (`worker_changes`): it ended with exit 0 and "2 not finished" alone."""
    recorded = sweep_record(run.meta(), sweep, run.meta_path)
    changes = worker_changes(recorded, budget=budget, modules=modules, seed=seed,
                             profile=profile, batchnorm=batchnorm, head_init=head_init)
    if not changes:
        return
    left = [t for t in summary.trials if finished_candidate(run.candidates, t) is None]
    log.warning("%s: %d of this worker's %s (e.g. %s) %s not handed out by "
                "its chief, whose plan is another: this worker's options differ from the "
                "chief's (run.json's record of sweep %s): %s (the chief's -> this worker's). "
                "The sweep is the chief's; to run those trials too, start the chief and its "
                "workers again with the same options", option_word(
                    f"tune --tuner-id {member}", f"run_tune(tuner_id={member!r})"), len(left),
                counted(summary.plan_size, "planned trial"), left[0] if left else "?",
                "was" if len(left) == 1 else "were", sweep,
                "; ".join(callers_words(c) for c in changes))


def _chief_runs(run: Run) -> bool:
    """Whether a process of this sweep's chief holds its lock on `run` now."""
    return any(member_of(path) == "chief" for path, _ in held_members(run.path))


def _handed_out(sweep: str, mismatch: PlanMismatch) -> str:
    """The trial a chief handed out that a worker's plan lacks: "seeds-0000-m (Keras
    Tuner's trial 0000)", or Keras Tuner's number alone when its values name no plan entry."""
    values = mismatch.values
    try:
        ours = trial_id(sweep, int(values["plan_index"]), str(values["module"]))
    except (KeyError, TypeError, ValueError):
        return f"{mismatch.trial_id} (Keras Tuner's number)"
    return f"{ours} (Keras Tuner's trial {mismatch.trial_id})"


def sweep_lock_of(call: dict) -> tuple[str | None, dict | None]:
    """(tuner id, record) of a run_tune call (its bound arguments) taking part in a
    chief/worker sweep, whose process holds its own sweep lock (`sweeplock`), or (None,
    None): `runwriter.writes_run`'s `member`."""
    member = sweep_member(call["tuner_id"], call["oracle_address"])
    sweep = call["sweep"]
    if member and sweep is None:  # the run's recorded one (`resumed_call`), as run_tune takes
        sweep = recorded_sweep(call["run_dir"]) or options.default("sweep")
    return (member, member_record(sweep, call["oracle_address"])) if member else (None, None)


def _untuned(ranking, plan, *, sweep, budget, modules):
    """run.json's record of the sweep's modules its budget gives no trial (plan_sweep warned):
    `sweeps.untuned_record`, facts without words, or None when every one has trials. The
    closing summary and the report word it again (`sweeps.untuned_words`)."""
    left = untuned_modules(ranking, plan, sweep=sweep, modules=modules)
    if not left:
        return None
    reached = len({e.module for e in plan})
    # A budget left out is the default's (a combined sweep's plan holds exactly its trials).
    return untuned_record(left, budget=len(plan) if budget is None else budget,
                          reached=reached, given=bool(modules),
                          tau=combined_threshold(ranking)[0] if sweep == "combined" else None)


def _record_tune(run, *, sweep, budget, seed, profile, plan, modules, keep_weights,
                 untuned=None, batchnorm=None, head_init=None, whole=None):
    """Records part `sweep` of the call's sweep `whole` (None: `sweep`) in run.json ("tune":
    this entry, "call_sweep": `whole`, which a tune without --sweep resumes,
    `sweepwords.recorded_sweep`; "sweeps": each sweep's entry) and its plan.json."""
    entry = {"sweep": sweep, "budget": budget, "seed": int(seed),
             "profile": profile.to_json(), "plan_size": len(plan),
             "modules": sorted({e.module for e in plan}), "requested_modules": modules,
             "untuned": untuned, "keep_weights": keep_weights,
             "trials": [e.trial_id for e in plan], "batchnorm": batchnorm,
             "train_rule": TRAIN_RULE}  # of the trials this call trains (trial.json: each's)
    if sweep != "probe":  # --head-init as given (None: the profile's), for `check_pool`
        entry["head_init"] = head_init

    def change(meta):
        # Under run.json's lock: tune workers and other sweeps keep each other's entries.
        sweeps = dict(sweep_records(meta, run.meta_path))
        sweeps[sweep] = entry
        meta["tune"] = {**entry, "call_sweep": whole or sweep, "sweeps": sweeps}

    run.modify(change)
    os.makedirs(run.tuner / sweep, exist_ok=True)
    atomic_write_json(run.tuner / sweep / "plan.json", [e.to_json() for e in plan])


def _warn_at_chance(run: Run, summary: TuneSummary) -> None:
    """The end of a sweep's warning on its candidates at chance (`tunepending.
    warn_at_chance`), for `tune` and `fit` alike."""
    warn_at_chance(run, summary)
