"""Whether a run's sweeps are finished: every trial that run.json's tune record plans, held
against RUN/candidates, and the command that finishes them. TensorFlow-free: the report,
`ensemble` and `cost` read it.

Three ways a pool holds fewer candidates than a sweep could give, told apart here:
a trial that failed has a complete candidate of status "failed" (done, listed as a failure);
a module the budget gave no trial is in no plan (run.json's "untuned", not a failure);
a planned trial without a complete candidate never ran or was stopped (an interrupted fit
or tune): the sweep is unfinished, and the ensemble would select from part of its pool.
"""

from __future__ import annotations

import dataclasses
import os

from hubensemble import candidate, options
from hubensemble.formats import CANDIDATES_DIR
from hubensemble.fileio import read_json


@dataclasses.dataclass(frozen=True)
class UnfinishedSweep:
    """A sweep of run.json's "tune" record with planned trials still to run.

    sweep: its name; planned: its planned trials (int); done: how many have a complete
    candidate, ok or failed (int); missing: the trial ids without one (tuple of str, plan
    order); modules_without: the planned modules none of whose trials is done (tuple of str).
    """

    sweep: str
    planned: int
    done: int
    missing: tuple
    modules_without: tuple

    def text(self) -> str:
        """"sweep default: 2 of 8 planned trials done; no trial yet of m1, m2"."""
        return (f"sweep {self.sweep}: {self.done} of {self.planned} planned trials done"
                + (f"; no trial yet of {', '.join(self.modules_without)}"
                   if self.modules_without else ""))


def _module(trial: str, sweep: str) -> str:
    # tune.plans.trial_id: "<sweep>-<index:04d>-<module>"
    return trial[len(sweep) + 1:].split("-", 1)[-1]


def unfinished_sweeps(run_dir, meta: dict | None = None) -> list[UnfinishedSweep]:
    """The sweeps of run.json's "tune" record (`meta`, default read from RUN/run.json) with
    planned trials that have no complete candidate in RUN/candidates (`candidate.Candidate
    .complete`: ok with its files, or failed), in the order recorded; [] when every planned
    trial is done, or run.json records no plan (no tune yet, an unreadable run.json, or a
    tune from before it recorded its trials). Never raises for a damaged record: the report
    and the stages say what they can without it."""
    run_dir = os.fspath(run_dir)
    if meta is None:
        try:
            meta = read_json(os.path.join(run_dir, "run.json"))
        except (OSError, ValueError):
            return []
    tune = meta.get("tune") if isinstance(meta, dict) else None
    sweeps = tune.get("sweeps") if isinstance(tune, dict) else None
    found = []
    folder = os.path.join(run_dir, CANDIDATES_DIR)
    for sweep, record in (sweeps if isinstance(sweeps, dict) else {}).items():
        trials = record.get("trials") if isinstance(record, dict) else None
        if not isinstance(trials, list) or not trials:
            continue
        missing, done_modules = [], set()
        for trial in map(str, trials):
            cand = candidate.read_candidate(folder, trial)
            if cand is not None and cand.complete:
                done_modules.add(_module(trial, sweep))
            else:
                missing.append(trial)
        if missing:
            modules = dict.fromkeys(_module(t, sweep) for t in map(str, trials))
            found.append(UnfinishedSweep(
                sweep=str(sweep), planned=len(trials), done=len(trials) - len(missing),
                missing=tuple(missing),
                modules_without=tuple(m for m in modules if m not in done_modules)))
    return found


def finish_command(run_dir, meta: dict, sweep: UnfinishedSweep) -> str:
    """The command line that finishes `sweep` in `run_dir`: for a fit's folder the same fit
    command (`rerun.fit_command` without --restart: a fit resumes, reusing every
    finished trial); for a folder made by stage commands `hubensemble tune --run RUN` with
    the sweep's recorded options (--sweep, --budget, --modules, --seed, --batchnorm,
    --head-init, --keep-weights when not the defaults; the profile is the run's). From
    Python (`lockwords.on_command_line` false) the call that does the same: "fit(…) with
    the arguments the run was fitted with", "run_tune(run_dir='/abs/RUN', budget=4)"."""
    from hubensemble.lockwords import command_words, on_command_line

    if "fit" in meta:
        if not on_command_line():
            return "fit(…) with the arguments the run was fitted with"
        from hubensemble.rerun import fit_command

        return fit_command(run_dir, meta, restart=False)
    from hubensemble.rerun import option_flags, option_keywords

    record = ((meta.get("tune") or {}).get("sweeps") or {}).get(sweep.sweep) or {}
    given = {"sweep": sweep.sweep, "budget": record.get("budget"),
             "modules": record.get("requested_modules"), "seed": record.get("seed"),
             "batchnorm": (record.get("batchnorm") or {}).get("requested"),
             "head_init": record.get("head_init"), "keep_weights": record.get("keep_weights")}
    table = [o for o in options.options_for(command="tune") if o.name in given]
    # The one form of a command in the caller's words (its callers set it as code).
    return command_words("tune", run_dir, flags=option_flags(given, table),
                         keywords=option_keywords(given, table), quoted=False)


def finish_commands(run_dir, meta: dict, unfinished) -> list[str]:
    """The distinct `finish_command`s of `unfinished` (one for a fit's folder)."""
    return list(dict.fromkeys(finish_command(run_dir, meta, s) for s in unfinished))


def unfinished_warning(run_dir, meta: dict | None = None, *, what: str = "this ensemble",
                       then: str = "run this command again") -> str | None:
    """The terminal warning of a stage that uses the pool of an unfinished sweep (`ensemble`,
    `cost`, `export`): which sweeps, how far, the modules without a trial, that `what` comes
    from part of the pool, the command(s) that finish it, and `then` what to run after them;
    None when every sweep is finished."""
    if meta is None:
        try:
            meta = read_json(os.path.join(os.fspath(run_dir), "run.json"))
        except (OSError, ValueError):
            return None
    unfinished = unfinished_sweeps(run_dir, meta)
    if not unfinished:
        return None
    commands = " or ".join(f"`{c}`" for c in finish_commands(run_dir, meta, unfinished))
    return (f"the sweep is unfinished ({'; '.join(s.text() for s in unfinished)}; stopped "
            f"before its end?): {what} comes from part of the pool. Finish it with "
            f"{commands}, then {then}")
