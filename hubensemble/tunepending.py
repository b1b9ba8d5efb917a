"""A tune call's refusals before TensorFlow: its pool's and its run's data's.

`run_tune` loads the data run.json records (`Run.task`) when a trial of its plan has no
complete candidate or a label file is missing or damaged (`labels_missing`), and not on a
chief (it serves the plan). The command line's `tune --run RUN` imports TensorFlow first
(6-9 s, ~700 MB), so data that moved was refused after it; `check_tune_data` plans the call
as the stage does (`sweepplan`, through `sweepend`'s pending trials) and refuses first, in
`Run.task`'s words (`recordeddata.check_recorded_data`). `check_tune_call` first refuses, as the
stage does, a call that would add candidates of other settings to the pool (`sweeppool.
check_pool`: another --profile, --seed, --batchnorm, --head-init or --train-batch-size),
which came after TensorFlow's import too (13-15 s, 705 MB). Files and numpy only:
TensorFlow-free (the `tune` package loads TensorFlow on import, so this lives outside it)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os

import numpy as np

from hubensemble.fileio import numpy_load_fault
from hubensemble.rundir import LABEL_SPLITS
# Whether a call is of a chief/worker sweep: sweeppool's (its pool refusal says it too).
from hubensemble.sweeppool import distributed_call  # noqa: F401 (re-exported)
# A tune call's profile in its command words (sweeps'; stage and run_tune's words use it).
from hubensemble.sweepagain import profile_name


def check_restart(restart: bool, tuner_id, oracle_address) -> None:
    """HubensembleError for `restart` in a call of a chief/worker sweep (`distributed_call`):
    --restart starts a stand-alone sweep over, and that sweep's processes share its files.
    `run_tune`'s refusal of its arguments, and `check_tune_call`'s before TensorFlow (it came
    after its import: 16 s, 705 MB)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import option_word

    if restart and distributed_call(tuner_id, oracle_address):
        raise HubensembleError(
            f"{option_word('--restart', 'restart=True')} starts a stand-alone sweep over, and "
            "the processes of a chief/worker sweep share its files: stop them, then "
            f"{option_word('run tune with --restart', 'call run_tune with restart=True')} and "
            f"without {option_word('--tuner-id / --oracle', 'tuner_id / oracle_address')} (or "
            "$KERASTUNER_*), which runs the sweep from its start in this one process")


def labels_missing(run, task_record: dict, *, warn=None) -> list:
    """The splits the task has (`task_record`: run.json's data "task", its "sizes") whose
    RUN/labels/<split>.npy is absent, unreadable, or not the 1-D integer array of the split's
    size (`labels_fault`): tune writes them again from the run's data (`Run.ensure_labels`),
    `warn` (a logging function, or None) saying each file that was there. ensemble sent an
    empty val.npy to tune, which wrote only absent ones."""
    sizes = task_record.get("sizes") or {}
    missing = []
    for split in LABEL_SPLITS:
        if not sizes.get(split):
            continue
        path = run.labels / f"{split}.npy"
        if not path.exists():
            missing.append(split)
            continue
        fault = labels_fault(path, sizes[split])
        if fault:
            if warn is not None:
                warn("%s %s; writing it again from the run's data", path, fault)
            missing.append(split)
    return missing


def labels_fault(path, size) -> str | None:
    """Why labels file `path` is not the split's `size` labels (int [size]), or None."""
    try:
        y = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        return f"is unreadable ({numpy_load_fault(e)})"
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return f"holds a {y.dtype} {tuple(y.shape)} array, not a 1-D integer one"
    if isinstance(size, int) and len(y) != size:
        return f"holds {len(y)} labels, the run's data {size}"
    return None


def holds_run(run_dir) -> bool:
    """Whether `run_dir` holds a run (run.json or ranking.json, `Run.started`) or a stage's
    results (`Run.holds_results`: a sweep's candidates/ copied alone, which tune completes),
    so that a tune call without a sweep may read the run's (`sweepwords.resumed_call`): a
    missing run read as one with no sweep, and the default sweep's budget was refused first,
    with a command to run on that missing folder (`tune --run MISSING --budget 1`)."""
    from hubensemble.rundir import Run

    return Run(os.fspath(run_dir)).holds_results()


def ranked_selection(run_dir) -> list[str] | None:
    """The module names (str) the ranking of the run in `run_dir` selected (ranking.json's
    "selected"), read before TensorFlow: what a tune call without modules will tune, whose
    count `sweeps.check_budget` needs for its 4×K; None for a folder that holds no run and a
    ranking that cannot be read (the stage's own refusal says why)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.rundir import Run

    try:
        ranking = Run(os.fspath(run_dir)).tune_inputs()[0] if holds_run(run_dir) else {}
    except (HubensembleError, OSError, ValueError):
        return None
    return list(ranking.get("selected") or ()) or None


def require_run(run_dir) -> None:
    """RunError (`Run.require_started`'s words, `run_dir` as given) when `run_dir` does not
    hold a run (`holds_run`)."""
    from hubensemble.rundir import Run

    if not holds_run(run_dir):
        Run(os.fspath(run_dir)).require_started()


def check_tune_data(run_dir, call: dict) -> None:
    """DataError, before TensorFlow, in `Run.task`'s words (naming run.json and the way on
    for data that moved: `recordeddata.check_recorded_data`, then this call again:
    `sweepwords.call_command`; the fit that records the data's new place runs the fit's
    sweep, not this call's), when a tune call `call`
    (`run_tune`'s keywords, `options.kwargs_for("tune", args)`) on run `run_dir` would load
    the run's data and the files alone say it cannot be loaded: the call restarts its sweep,
    or a trial of its plan (`sweepend`'s pending trials: the plan's trial ids depend only on
    the sweep, budget, modules, seed and profile) has no complete candidate, or a label file
    needs writing again (`labels_missing`). Nothing for a chief (--tuner-id chief, or
    $KERASTUNER_TUNER_ID: it loads no data), or when the run's inputs are refused (the
    stage says why, in its own words).

    `call` may be `run_tune`'s bound arguments (its "task", "run_dir", "progress" …
    besides), for the stage's own check before it loads the data: nothing when a `task` is
    given (it is checked against the record, not loaded); a Profile object as its name when
    it is a shipped profile's definition (`hyperrule.PROFILES`), else left out of the words
    (its repr is no keyword to type): run_tune's refusal of data that moved said no way to
    call it again ("; then call run_tune(run_dir=…, profile='quick') again")."""
    from hubensemble.errors import HubensembleError
    from hubensemble.recordeddata import check_recorded_data
    from hubensemble.rundir import Run
    from hubensemble.sweepend import pending_trials
    from hubensemble.sweepwords import call_command, resumed_call

    if run_dir is None or call.get("task") is not None or (
            call.get("tuner_id") or os.environ.get("KERASTUNER_TUNER_ID")) == "chief":
        return
    call = {**call, "profile": profile_name(call.get("profile"))}
    run = Run(os.fspath(run_dir))
    if not call.get("restart"):  # a restart loads the data before it removes anything
        sweep, budget, modules = call.get("sweep"), call.get("budget"), call.get("modules")
        if sweep is None:  # the run's own, as run_tune resumes it
            sweep, budget, modules, _ = resumed_call(run_dir, budget, modules)
        pending = pending_trials(run_dir, sweep, {"budget": budget, "modules": modules,
                                                  "seed": call.get("seed"),
                                                  "profile": call.get("profile")})
        if pending is None:  # refused inputs: the stage's words
            return
        try:
            task_record = run.tune_inputs()[2]
        except (HubensembleError, OSError, ValueError):
            return
        if not any(pending.values()) and not labels_missing(run, task_record):
            return
    check_recorded_data(run, then=call_command(run_dir, call))  # the fit's, then this call


# Whether the command line said `nothing_to_train`'s line of the tune call running now: a
# context, not a keyword of run_tune's public signature (plumbing no Python caller passes).
_NOTHING_SAID = contextvars.ContextVar("hubensemble_tune_nothing_said", default=False)


@contextlib.contextmanager
def nothing_said(said: bool = True):
    """Within it, `run_tune` knows its caller said `nothing_to_train`'s line for this call
    (`said`; the command line's tune, before TensorFlow, when `finished_call` declined to end
    it): no "resuming sweep …" nor line of trials reused follows it, which read as work to
    come, or said it again. `was_said` reads it."""
    token = _NOTHING_SAID.set(bool(said))
    try:
        yield
    finally:
        _NOTHING_SAID.reset(token)


def was_said() -> bool:
    """Whether the tune call running now is within `nothing_said` (False from Python)."""
    return _NOTHING_SAID.get()


def nothing_to_train(run_dir, call: dict) -> str | None:
    """The line a stand-alone tune call `call` (`run_tune`'s keywords, `options.kwargs_for(
    "tune", args)`; its sweep None: the run's, `sweepwords.resumed_call`) on run `run_dir`
    says before TensorFlow loads when it has nothing to train: every trial its plan holds
    (`sweepend.pending_trials`, the stage's plan) has a complete candidate and no label file
    needs writing (`labels_missing`), so it loads no data and trains nothing, and TensorFlow's
    seconds (6-9 s, ~700 MB) come before a summary of the candidates there: "nothing to
    train: the 8 planned trials of sweep default all have a complete candidate; summarizing
    them" (no hint of a larger budget: the plan may hold every module already). None when a trial is
    pending or a label file missing, for --restart, a chief/worker sweep's process
    (`distributed_call`: its worker says its summary before TensorFlow already,
    `sweepend.finished_worker`), or inputs the stage refuses (it says why)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.rundir import Run
    from hubensemble.sweepend import pending_trials
    from hubensemble.sweepwords import resumed_call

    if run_dir is None or call.get("restart") or distributed_call(
            call.get("tuner_id"), call.get("oracle_address")):
        return None
    sweep, budget, modules = call.get("sweep"), call.get("budget"), call.get("modules")
    if sweep is None:  # the run's own, as run_tune resumes it
        sweep, budget, modules, _ = resumed_call(run_dir, budget, modules)
    plan = {"budget": budget, "modules": modules, "seed": call.get("seed"),
            "profile": profile_name(call.get("profile"))}
    pending = pending_trials(run_dir, sweep, plan)
    planned = pending_trials(run_dir, sweep, plan, every=True)
    if pending is None or planned is None or any(pending.values()):
        return None
    run = Run(os.fspath(run_dir))
    try:
        if labels_missing(run, run.tune_inputs()[2]):
            return None  # written again from the run's data: loaded
    except (HubensembleError, OSError, ValueError):
        return None
    total = sum(len(trials) for trials in planned.values())
    every = "the planned trial" if total == 1 else f"the {total} planned trials"
    return (f"nothing to train: {every} of sweep {sweep} "
            f"{'has' if total == 1 else 'all have'} a complete candidate; summarizing "
            f"{'it' if total == 1 else 'them'}")


def warn_at_chance(run, summary) -> None:
    """The end of a sweep's warning on its candidates at chance (`chance.sweep_chance_text`:
    which, and what to do), for `tune` and `fit` alike, of run `run` (a Run) and its
    `sweepsummary.TuneSummary`: `run_tune`'s end, and `finished_call`'s before TensorFlow."""
    from hubensemble.chance import sweep_chance_text
    from hubensemble.sweepsummary import finished_candidate

    if summary.at_chance:
        found = {t: finished_candidate(run.candidates, t) for t in summary.at_chance}
        records = {t: c.record if c is not None else {} for t, c in found.items()}
        logging.getLogger("hubensemble.tune.stage").warning(
            "%s", sweep_chance_text(summary.at_chance, records))


def finished_call(run_dir, call: dict, *, progress: bool = True):
    """The `sweepsummary.TuneSummary` of a stand-alone tune call `call` (`run_tune`'s keywords
    from the command line, `options.kwargs_for`; its sweep None: the run's,
    `sweepwords.resumed_call`) on run `run_dir` that has nothing to train (`nothing_to_train`
    said so), ended as `run_tune` ends it (its profile and plan lines, an older rule's
    warning, the at-chance warning, `refresh.refresh_report`) but before TensorFlow loads,
    for `cli.cmd_tune`: it imported TensorFlow (6-9 s, ~700 MB) after "nothing to train",
    then said "resuming sweep …" and its reused line, to print a summary of files.

    Only when run_tune would write nothing else: every part of the sweep as run.json
    records it (`sweepend.finished_worker`'s gate: the same seed, profile, BatchNorm
    request, head start, plan and complete candidates, the labels there), the run's last
    call that sweep with this call's budget, modules and keep_weights, trained by this
    version's rule (run_tune records the call again otherwise, and a plain tune resumes
    that), no chief's end record of it (a stand-alone call supersedes one). None otherwise,
    and for --restart, a chief/worker sweep's process, --train-batch-size: run_tune runs,
    after TensorFlow. Like a worker's, it does not judge whether the modules' files changed
    since rank (`rank.refuse_changed_modules`, which reaches TensorFlow): it loads none."""
    from hubensemble.errors import HubensembleError
    from hubensemble.refresh import refresh_report
    from hubensemble.rundir import Run
    from hubensemble.sweepend import finished_worker
    from hubensemble.sweepplan import sweep_parts
    from hubensemble.sweeprecords import end_record
    from hubensemble.sweepstate import TRAIN_RULE, sweep_records
    from hubensemble.sweepwords import recorded_sweep, resumed_call

    if run_dir is None or call.get("restart") or distributed_call(
            call.get("tuner_id"), call.get("oracle_address")):
        return None
    call = dict(call)
    if call.get("sweep") is None:  # the run's own, as run_tune resumes it
        call["sweep"], call["budget"], call["modules"], _ = resumed_call(
            run_dir, call.get("budget"), call.get("modules"))
    run = Run(os.fspath(run_dir))
    try:
        if recorded_sweep(run_dir) != call["sweep"] or end_record(run_dir, call["sweep"]):
            return None
        records = sweep_records(run.meta(), run.meta_path)
        for part in sweep_parts(call["sweep"]):
            entry = records.get(part) or {}
            if (entry.get("budget") != call.get("budget")
                    or entry.get("requested_modules") != call.get("modules")
                    or entry.get("keep_weights") != call.get("keep_weights")
                    or entry.get("train_rule") != TRAIN_RULE):
                return None
    except (HubensembleError, OSError, ValueError, TypeError, AttributeError):
        return None  # the stage's words
    summary = finished_worker(run_dir, None, call, progress=progress, standalone=True)
    if summary is not None:
        warn_at_chance(run, summary)
        refresh_report(run.path, "the sweep's candidates")
    return summary


def check_tune_call(run_dir, call: dict) -> None:
    """`run_tune`'s refusals of call `call` (its keywords, `options.kwargs_for("tune", args)`)
    on run `run_dir` that files alone decide, before TensorFlow, in the stage's words and order:
    --restart in a chief/worker sweep (`check_restart`), the pool of each part of its sweep
    (`sweeppool.check_pool`, at the call's profile: --profile, else the run's,
    `runprofile.run_profile`, at --train-batch-size when given; with --restart, the restarted
    parts' candidates not looked at), a planned trial's candidate whose hyperparameters
    cannot be read (`sweeppool.check_damaged`, not with --restart), then its data
    (`check_tune_data`). RunError or DataError;
    nothing when `run_dir` is None, or when the sweep or profile cannot be resolved (the stage
    says why, after TensorFlow, as before)."""
    from hubensemble.rundir import Run

    check_restart(call.get("restart"), call.get("tuner_id"), call.get("oracle_address"))
    if run_dir is None:
        return
    run = Run(os.fspath(run_dir))
    sweep = _check_pools(run, call)
    if sweep is None:
        return  # the stage's words
    if call.get("restart"):  # a module moved since rank: refused before anything is removed
        _check_modules(run, sweep, call)
    if not call.get("restart"):  # (a restart removes them) then check_candidates' first
        _check_damaged(run, sweep, call)
    check_tune_data(run_dir, call)


def _check_pools(run, call: dict) -> str | None:
    """`sweeppool.check_pool` of each part of tune call `call`'s sweep in run `run` (a
    `rundir.Run`), at the call's profile (`check_tune_call`'s first check); returns the
    sweep (the run's own when `call` names none), None when the sweep or profile cannot be
    resolved (the stage says why)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.runprofile import as_profile, run_profile
    from hubensemble.sweeppool import check_pool
    from hubensemble.sweepplan import sweep_parts
    from hubensemble.sweepwords import resumed_call

    sweep = call.get("sweep")
    try:
        if sweep is None:  # the run's own, as run_tune resumes it
            sweep = resumed_call(run.path, call.get("budget"), call.get("modules"))[0]
        parts = sweep_parts(sweep)
        profile = (run_profile(run)[0] if call.get("profile") is None
                   else as_profile(call["profile"]))
        profile = profile.with_train_batch(call.get("train_batch_size"))
    except (HubensembleError, OSError, ValueError, TypeError):
        return None
    for part in parts:
        check_pool(run, sweep=part, seed=call.get("seed") or 0, profile=profile,
                   batchnorm=call.get("batchnorm") or "auto", head_init=call.get("head_init"),
                   restarting=parts if call.get("restart") else (),
                   budget=call.get("budget"), modules=call.get("modules"),
                   tuner_id=call.get("tuner_id"), oracle_address=call.get("oracle_address"),
                   call_sweep=sweep)
    return sweep


def check_pool_at_budget(run_dir, call: dict) -> None:
    """Before the refusal of tune call `call`'s budget or modules (`pastedway.check_sweep_call`;
    its "sweep" and "budget" resolved: `sweepwords.resumed_call`), whose way on is the call
    with the budget its sweep needs and the modules meant: the pool's refusal of that call
    (`_check_pools`), whose way on then carries them and the recorded values. Pasted, the
    budget's way on (`tune --sweep probe --budget 8 --seed 4`) and the modules' (`--modules
    m0 m1 --seed 4`, for m0,m1) were refused by the pool (--seed 0 -> 4), and the pool's kept
    --budget 2 or --modules m0,m1. RunError; nothing when they hold (or have no way on), for
    a folder without a run, or a ranking that cannot be read (the stage says why)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.pastedway import check_sweep_call
    from hubensemble.rundir import Run

    if run_dir is None or not call.get("sweep") or not holds_run(run_dir):
        return
    run = Run(os.fspath(run_dir))
    modules = call.get("modules")
    try:
        rows = (run.tune_inputs()[0].get("modules") or []) if modules else None
    except HubensembleError:
        return
    fixed: dict = {}

    def again(budget=None, **changed):  # the ways on: the call they name, kept
        fixed.update(changed, **({"budget": budget} if budget is not None else {}))
        return ""

    try:
        check_sweep_call(modules, rows, sweep=call["sweep"], budget=call.get("budget"),
                         again=again, selected=None if modules else ranked_selection(run_dir))
    except HubensembleError:
        if fixed:
            _check_pools(run, {**call, **fixed})


def _check_modules(run, sweep, call: dict) -> None:
    """`restartcheck.check_modules_here` of the modules each part of `sweep` trains, as the
    stage plans them (`restartcheck.planned_modules`): --restart removed every finished
    candidate, then each trial of a module moved since rank failed alike. Nothing when the
    plan cannot be made (the stage's words)."""
    from hubensemble.lockwords import option_word
    from hubensemble.restartcheck import check_modules_here, planned_modules
    from hubensemble.sweepwords import resumed_call

    budget, modules = call.get("budget"), call.get("modules")
    if call.get("sweep") is None:  # the run's own, as run_tune resumes it
        _, budget, modules, _ = resumed_call(run.path, budget, modules)
    names = planned_modules(run, sweep, {"budget": budget, "modules": modules,
                                         "seed": call.get("seed"),
                                         "profile": call.get("profile")})
    if names:
        check_modules_here(run, names, option_word("tune --restart", "run_tune(restart=True)"))


def _check_damaged(run, sweep, call: dict) -> None:
    """`sweeppool.check_damaged` on every planned trial of each part of `sweep` (as the stage
    plans them: `sweepend.pending_trials`); nothing when the plan cannot be made (the
    stage's words)."""
    from hubensemble.sweepend import pending_trials
    from hubensemble.sweeppool import check_damaged
    from hubensemble.sweepwords import resumed_call

    budget, modules = call.get("budget"), call.get("modules")
    if call.get("sweep") is None:  # the run's own, as run_tune resumes it
        _, budget, modules, _ = resumed_call(run.path, budget, modules)
    planned = pending_trials(run.path, sweep, {"budget": budget, "modules": modules,
                                               "seed": call.get("seed"),
                                               "profile": call.get("profile")}, every=True)
    for trials in (planned or {}).values():
        check_damaged(run.candidates, trials)
