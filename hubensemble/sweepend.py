"""A worker of a chief/worker sweep stops before TensorFlow loads when the last chief of its
sweep could not listen at the worker's address, and says there how the last one ended when
it waits for one started again (`worker_stop`, for `preflight.check_run`):
TensorFlow's import takes 6-11 s on 2 cores, after which `tune.distributed.wait_for_chief`
said the same words. One with nothing left to run prints its summary there
(`finished_worker`, for `cli.cmd_tune`). Reads files and plans (`sweepplan`, pure) and
summarizes (`sweepsummary`): TensorFlow-free."""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from pathlib import Path

from hubensemble import candidate, environment, formats
from hubensemble.errors import HubensembleError, RunError
from hubensemble.fileio import atomic_write_json, owned_here, read_json
from hubensemble.runspecs import module_specs
from hubensemble.sweeplock import (chief_ended, member_lock_path, say_stale_chief,
                                   starting_chief_ended, worker_without_chief)
from hubensemble.sweeprecords import end_record
from hubensemble.sweepplan import combined_threshold, plan_sweep, sweep_parts
from hubensemble.threads import warnings_block
from hubensemble.text import counted

log = logging.getLogger("hubensemble.tune.distributed")  # (the wait's, which says it later)


def worker_stop(run_dir, member: str) -> RunError | None:
    """The stop (`sweeplock.worker_without_chief`) of worker `member` (a tuner id other than
    "chief", holding its lock on run `run_dir` in this thread: its record names its sweep,
    oracle and, from the command line, the options it plans with, "plan") when the last
    chief of its sweep (`sweeplock.chief_end_path`) could not listen at the worker's address
    (its port taken: the worker too is started again with another). A chief that stopped
    with an error or was stopped, with a trial of its plan (its end record's "trials", else
    run.json's record of the sweep's non-probe parts) without a complete candidate, or none
    known, and one that ended normally while the worker's own plan (`pending_trials`) leaves
    trials without a complete candidate, all of them that chief's (`sweeplock.chief_ended`), are
    warned of at once (`sweeplock.say_stale_chief`, not again at the wait) and None returned:
    the worker waits for a chief started again (after a fix, a stop, or to run those trials), in
    any order (a normal end's words stopped it once no chief had started within 5 s). None
    otherwise: no such record, a probe sweep (its workers wait for no chief), nothing left to
    run, a trial that chief did not have (a larger --budget: the worker waits for its own
    chief), probe trials the worker fits itself first ("probe+A"), or a worker whose plan is not
    known before TensorFlow loads (no "plan" in its record: from Python; or inputs the stage
    refuses, in its own words)."""
    if member == "chief":
        return None
    held = owned_here(member_lock_path(run_dir, member)) or {}
    sweep, oracle = held.get("sweep"), held.get("oracle")
    parts = [p for p in str(sweep or "").split("+") if p and p != "probe"]
    record = end_record(run_dir, sweep) if parts else None
    if record is None:
        return None
    timeout = environment.seconds_from_environment("HUBENSEMBLE_CHIEF_TIMEOUT")
    if record.get("status", "error") == "done":
        words, stale = None, _done_words(run_dir, sweep, held.get("plan"))
    elif _trials_left(run_dir, sweep, parts, record, held.get("plan")):
        words = starting_chief_ended(run_dir, sweep, oracle=oracle)  # its port taken here
        stale = chief_ended(run_dir, sweep) if words is None else None
    else:
        words = stale = None
    if stale:  # said now, not after TensorFlow's import; the worker waits
        say_stale_chief(log, run_dir, member, sweep, oracle, stale, timeout)
    if words is None:
        return None
    return worker_without_chief(run_dir, member, sweep, oracle, words, listen_wait=timeout)


def _trials_left(run_dir, sweep, parts, record, options) -> bool:
    """Whether a trial of the worker's own plan (`pending_trials`, with its lock's
    `options`), or when that is not known of the plan of a chief that stopped with an error or
    was stopped (its end `record`'s "trials", or run.json's record of the sweep's `parts`), has
    no complete candidate, or none is known (a sweep never planned here). A chief refused before
    it planned records no trials, and run.json's are the last sweep's: a worker with a larger
    --budget has more."""
    pending = pending_trials(run_dir, sweep, options)
    if pending is not None:
        return any(left for part, left in pending.items() if part != "probe")
    trials = record.get("trials")
    if not isinstance(trials, list):
        try:
            recorded = read_json(Path(run_dir) / formats.RUN_FILE)["tune"]["sweeps"]
            trials = [t for p in parts for t in recorded[p]["trials"]]
        except (OSError, ValueError, KeyError, TypeError):
            trials = None  # a sweep never planned here: every trial of it is to run
    return trials is None or not all(_complete(run_dir, t) for t in trials)


def _done_words(run_dir, sweep, options) -> str | None:
    """`chief_ended`'s words, to a worker of `sweep` planning with `options` (its lock
    record's "plan"), of a chief that ended normally: for the first part of the sweep whose
    plan leaves trials without a complete candidate, when it is not a probe part (the worker
    fits those itself) and those trials were all that chief's; else None."""
    pending = pending_trials(run_dir, sweep, options)
    for part, left in (pending or {}).items():
        if left:
            return None if part == "probe" else chief_ended(run_dir, part, left)
    return None


def pending_trials(run_dir, sweep, options, *, every: bool = False) -> dict | None:
    """{part: [trial id without a complete candidate, …]} (with `every`: every planned trial
    id, complete or not) of each part of `sweep`, in order, as
    a worker's stage, or a stand-alone tune (`tunepending.check_tune_data`), plans them
    (`sweepplan.plan_sweep` on run `run_dir`'s ranking.json and run.json, with `options`
    {"budget", "seed", "profile" (a name, or None: the run's, `runprofile.run_profile`),
    "modules"}, which are all a plan's trial ids depend on); None when `options` is not a dict
    or the inputs are refused (the stage says why). Files and the plan's rule only:
    TensorFlow-free; raises nothing."""
    from hubensemble.rundir import Run
    from hubensemble.runprofile import as_profile, run_profile

    if not isinstance(options, dict):
        return None
    run = Run(run_dir)
    try:
        ranking, modules, task = run.tune_inputs()
        specs = module_specs(run, modules)
        profile = options.get("profile")
        profile = run_profile(run)[0] if profile is None else as_profile(profile)
        with warnings_block():  # the stage warns of the plan, once TensorFlow has loaded
            warnings.simplefilter("ignore")
            plans = {part: plan_sweep(ranking, specs, sweep=part, task=task, profile=profile,
                                      budget=options.get("budget"),
                                      modules=options.get("modules"),
                                      seed=options.get("seed") or 0, run_dir=run.path)
                     for part in sweep_parts(sweep)}
    except (HubensembleError, OSError, ValueError, KeyError, TypeError):
        return None
    return {part: [e.trial_id for e in plan if every or not _complete(run_dir, e.trial_id)]
            for part, plan in plans.items()}


def _complete(run_dir, trial: str) -> bool:
    """Whether `trial` has a complete candidate (`sweepsummary.finished_candidate`'s rule)."""
    found = candidate.read_candidate(Path(run_dir) / formats.CANDIDATES_DIR, str(trial))
    return bool(getattr(found, "complete", False))


def finished_worker(run_dir, member: str | None, call: dict, *, progress: bool = True,
                    standalone: bool = False):
    """The `sweepsummary.TuneSummary` of worker `member` (a tuner id other than "chief") of
    a chief/worker sweep on run `run_dir` with nothing left to run, said as `run_tune` says
    it (the profile's and plan's log lines, the resumed line on stderr when `progress`, the
    pool's older-rule line at INFO) but before TensorFlow loads, for `cli.cmd_tune`: its
    import took 6-13 s and ~700 MB to print a summary read from candidate files. `call` is
    `run_tune`'s keywords from the command line (`options.kwargs_for`).

    Only when nothing the stage checks or writes could differ from what it would do: every
    part of the sweep recorded in run.json with this call's --seed, --profile, --batchnorm
    and --head-init (`tune.pool.sweep_changes` finds none), its plan (`sweepplan.plan_sweep`
    with the recorded BatchNorm decisions) the recorded trials, each with a complete
    candidate (`finished_candidate`) of the planned hparams, every candidate of the pool of
    this profile (`check_pool`), the labels there, and no more failed trials than
    --max-failures. None otherwise (no --restart, no --train-batch-size, not a worker, damaged
    or refused inputs):
    `run_tune` runs as before, after TensorFlow. It loads no module, so it does not judge
    whether the modules' files changed since rank (`rank.refuse_changed_modules`, which
    reaches `hub`, TensorFlow first), as the chief, which loads none either, does not; nor
    does it record the sweep in run.json again (it trained nothing: its record would be the
    recorded one, the gate above). With `standalone` (`member` None): a stand-alone call's,
    for `tunepending.finished_call` (its own gate first), which said "nothing to train" in
    place of the resumed line, and warns of an older rule as the stage does."""
    from hubensemble.rundir import LABEL_SPLITS, Run
    from hubensemble.runprofile import OLDER, as_profile, choose_another, run_profile
    from hubensemble.sweepsummary import merge_summaries, say_older_rule, say_resumed, summarize

    if (not standalone and (not member or member == "chief")) or call.get("restart") \
            or not call.get("sweep"):
        return None
    if call.get("train_batch_size") is not None:  # run_tune derives and checks its profile
        return None
    run = Run(run_dir)
    try:
        ranking, modules, task = run.tune_inputs()
        specs = module_specs(run, modules)
        profile, source = ((run_profile(run)) if call.get("profile") is None
                           else (as_profile(call["profile"]), None))
        meta = run.meta()
        plans = {part: _finished_plan(run, part, call, ranking, specs, task, profile, meta)
                 for part in sweep_parts(call["sweep"])}
        if any(p is None for p in plans.values()) or _pool_differs(run, profile, meta):
            return None
        if any((task.get("sizes") or {}).get(s) and not (run.labels / f"{s}.npy").exists()
               for s in LABEL_SPLITS):
            return None
        summaries = [dataclasses.replace(
            summarize(run, plan, sweep=part, chief_worker=not standalone), reused=len(plan))
                     for part, (plan, _) in plans.items()]
    except (HubensembleError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # the stage says why, in its own words
    summary = merge_summaries(summaries, call["sweep"])
    if summary.failed > int(call.get("max_failures") or 0):
        return None  # run_tune's error (delete the failed folders first)
    stage_log = logging.getLogger("hubensemble.tune.stage")
    if source is not None:  # run_tune's line (tune.stage): another is refused over candidates
        older = "; this call's trials train and serve at it too" * (OLDER in source)
        (stage_log.warning if older else stage_log.info)(
            "profile %s (%s%s; %s)", profile.name, source, older, choose_another(run))
    for part, (plan, caught) in plans.items():  # in run_tune's order, part by part
        for line in caught:
            stage_log.warning("%s", line)
        if part == "combined":
            tau, max_k = combined_threshold(ranking)
            stage_log.info("combined sweep: the modules within tau %g of the best score (at "
                           "most %d) that the budget reaches: %s", tau, max_k,
                           ", ".join(dict.fromkeys(e.module for e in plan)))
    for part, (plan, _) in plans.items():
        removed = candidate.clean_stale_temps(run.candidates)
        if removed:
            stage_log.info("removed %s of killed runs",
                           counted(len(removed), "half-written candidate"))
        if not standalone:  # (a stand-alone call said "nothing to train" for it)
            say_resumed(part, len(plan), len(plan), progress)
        else:  # as run_tune's record does: every tune call writes it again (docs/tune.md)
            os.makedirs(run.tuner / part, exist_ok=True)
            atomic_write_json(run.tuner / part / "plan.json", [e.to_json() for e in plan])
        say_older_rule(run, plan, [], sweep=part, reused=len(plan), worker=not standalone)
    return summary


def _finished_plan(run, part, call, ranking, specs, task, profile, meta):
    """(plan, its warnings' texts) of sweep `part` as the stage plans it for `call` when run.json
    records the part with the same settings and the plan's trials are those recorded, each
    with a complete candidate of the planned hparams; else None."""
    from hubensemble.sweepstate import sweep_records
    from hubensemble.sweepsummary import finished_candidate

    recorded = sweep_records(meta, run.meta_path).get(part)  # damaged: the stage's refusal
    if not isinstance(recorded, dict) or recorded.get("seed") is None:
        return None
    head_init = call.get("head_init")
    if (int(recorded["seed"]) != int(call.get("seed") or 0)
            or (recorded.get("profile") or {}).get("name") != profile.name
            or (part != "probe" and (recorded.get("batchnorm") or {}).get("requested")
                != call.get("batchnorm"))
            or ("head_init" in recorded and recorded["head_init"] != head_init)):
        return None  # `sweep_changes`: check_pool's refusal, after TensorFlow
    args = dict(sweep=part, task=task, profile=profile, budget=call.get("budget"),
                modules=call.get("modules"), seed=call.get("seed") or 0, head_init=head_init,
                run_dir=run.path)
    with warnings_block(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_sweep(ranking, specs, **args)
    if part != "probe":
        decided = {m: (d or {}).get("policy") for m, d in
                   ((recorded.get("batchnorm") or {}).get("modules") or {}).items()}
        if any(decided.get(e.module) not in ("train", "inference") for e in plan):
            return None  # decided from the module's files, by the stage
        with warnings_block():
            warnings.simplefilter("ignore")
            plan = plan_sweep(ranking, specs, batchnorm=decided, **args)
    if not plan or [e.trial_id for e in plan] != recorded.get("trials"):
        return None
    for e in plan:
        found = finished_candidate(run.candidates, e.trial_id)
        if found is None or (found.status == "ok"
                             and found.record.get("hparams") != e.to_json()["hparams"]):
            return None  # to run, or `check_candidates`' to judge
    return plan, [str(w.message) for w in caught]


def _pool_differs(run, profile, meta) -> bool:
    """Whether a candidate of the pool was tuned with another profile than `profile`, or as
    run.json records it otherwise (`tune.pool.check_pool`'s refusal)."""
    from hubensemble.runprofile import recorded_profile, training_changes

    for c in candidate.scan(run.candidates)[0]:
        name = c.record.get("profile")
        if name and name != profile.name:
            return True
        was = recorded_profile(c.record, meta, run.meta_path) if name else None
        if was is not None and training_changes(was, profile):
            return True
    return False
