"""A sweep's summary from its candidate files (`TuneSummary`, `summarize`, `format_summary`)
and the lines a call that reuses finished trials says (`say_resumed`, `say_older_rule`):
TensorFlow-free, outside the tune package (which loads TensorFlow first), so that a worker
of a chief/worker sweep with nothing left to run says its summary without TensorFlow's
seconds (`sweepend.finished_worker`). Re-exported by `tune.stage`; they log as
"hubensemble.tune.stage", as they did there."""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import sys
from collections.abc import Mapping
from typing import Sequence

from hubensemble import candidate
from hubensemble.chance import at_chance_candidates
from hubensemble.fileio import owned_here
from hubensemble.formats import SWEEP_LOCK
from hubensemble.lockwords import command_words
from hubensemble.sweepplan import PlanEntry
from hubensemble.sweeps import rerun_failed_words
from hubensemble.sweepstate import TRAIN_RULE, older_rule_warning, train_rule
from hubensemble.text import counted, escaped

log = logging.getLogger("hubensemble.tune.stage")


def finished_candidate(candidates_dir, trial: str) -> candidate.Candidate | None:
    """The trial's candidate when it is `complete` (ok with every file its record names, or
    failed), else None: the trial still has to run (never started, killed, or incomplete).

    The one resume rule of tune: the candidates, not Keras Tuner's state, say what is done.
    """
    found = candidate.read_candidate(candidates_dir, trial)
    return found if found is not None and found.complete else None


@dataclasses.dataclass
class TuneSummary(Mapping):
    """What `run_tune` returns: the state of a sweep's planned trials after the call.

    sweep: the sweep's name; plan_size: planned trials; ok / failed / missing: how many have
    a complete ok candidate, a failed one, none (or an incomplete one) — they add up to
    plan_size; failures: {trial: reason} of the failed ones; trials: the planned trial ids
    in plan order; candidates: the candidates folder; reused: how many of the planned trials
    had a complete candidate before the call (a resumed sweep); at_chance: {trial: why} of
    the ok ones at chance on validation (`chance.at_chance_candidates`: kept by a profile
    that fails none, `quick`), each of them also among `ok`; chief_worker: whether a process
    of a chief/worker sweep made it (its summary names the chief's and each worker's
    commands). Reads like the dict it replaces
    (``summary["ok"]``); `to_json()` gives that dict.
    """

    sweep: str
    plan_size: int
    ok: int
    failed: int
    missing: int
    failures: dict
    trials: list
    candidates: str
    reused: int = 0
    at_chance: dict = dataclasses.field(default_factory=dict)
    chief_worker: bool = False

    def __repr__(self) -> str:  # one line: the dataclass repr printed every trial
        return (f"TuneSummary(sweep={self.sweep!r}, plan_size={self.plan_size}, ok={self.ok}, "
                f"failed={self.failed}, missing={self.missing}, reused={self.reused})")

    def to_json(self) -> dict:
        """The summary as a JSON-ready dict (the dict run_tune returned before)."""
        return dataclasses.asdict(self)

    def __getitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    @classmethod
    def _keys(cls):
        return [f.name for f in dataclasses.fields(cls)]


def merge_summaries(summaries: Sequence[TuneSummary], sweep: str) -> TuneSummary:
    """One TuneSummary for the parts of a "+" sweep (counts added, trials in order)."""
    if len(summaries) == 1:
        return summaries[0]
    failures, at_chance = {}, {}
    for s in summaries:
        failures.update(s.failures)
        at_chance.update(s.at_chance)
    return TuneSummary(sweep=sweep, plan_size=sum(s.plan_size for s in summaries),
                       ok=sum(s.ok for s in summaries), failed=sum(s.failed for s in summaries),
                       missing=sum(s.missing for s in summaries), failures=failures,
                       trials=[t for s in summaries for t in s.trials],
                       candidates=summaries[0].candidates,
                       reused=sum(s.reused for s in summaries), at_chance=at_chance,
                       chief_worker=any(s.chief_worker for s in summaries))


def say_older_rule(run, plan, pending, *, sweep, reused, worker=False):
    """Warns (terminal and log) when the pool mixes training rules (`sweepstate.TRAIN_RULE`):
    finished trials this sweep reuses were trained by an older rule (`older_rule_warning`),
    or, when this call trains trials, another sweep's candidates in the pool were. They are
    kept; the lines say how to train them by this rule. A `worker` of a chief/worker sweep
    logs them at INFO: the pool is the sweep's, so its chief (or the one process) warns, once,
    not every process of it."""
    level = logging.INFO if worker else logging.WARNING
    left, mine = {e.trial_id for e in pending}, {e.trial_id for e in plan}
    older = [e.trial_id for e in plan if e.trial_id not in left
             and (found := finished_candidate(run.candidates, e.trial_id)) is not None
             and older_rule(found.record)]
    line = older_rule_warning(
        sweep, older, reused, run_words=escaped(run.candidates),
        restart_words=command_words("tune", run.path, flags=f"--sweep {sweep} --restart",
                                    keywords=f"sweep={sweep!r}, restart=True"))
    if line:
        log.log(level, "%s", line)
    if not pending:  # this call trains nothing: it mixes nothing into the pool
        return
    others = [c.trial for c in candidate.scan(run.candidates)[0]
              if c.trial not in mine and c.complete and older_rule(c.record)]
    if others:
        theirs = sorted({t.split("-")[0] for t in others})
        log.log(
            level, "tune %s: this sweep's trials are trained by training rule %d, while %s "
            "of %s %s in the same pool (%s) %s trained by an older hubensemble's "
            "rule, so the pool mixes two rules; to train them by this one, start %s over: %s",
            sweep, TRAIN_RULE, counted(len(others), "trial"),
            "sweep" if len(theirs) == 1 else "sweeps", ", ".join(theirs),
            ", ".join(others[:3]) + (", …" if len(others) > 3 else ""),
            "was" if len(others) == 1 else "were",
            "it" if len(theirs) == 1 else "each", " and ".join(
                command_words("tune", run.path, flags=f"--sweep {s} --restart",
                              keywords=f"sweep={s!r}, restart=True") for s in theirs))


def older_rule(record) -> bool:
    """Whether a trial.json `record` was trained by a rule before TRAIN_RULE
    (`sweepstate.train_rule`). A probe's without "train_rule" is not: rule 2 changed the
    fine-tuning's training passes, not the probe fit on frozen embeddings, whose candidates of
    ee1ba61 and 3d86205 (rule 1; probes exist since ca6b0d9, 90 minutes before ee1ba61) equal
    this version's to the bit (val and test probabilities of a probe sweep, 8 trials, measured
    on this machine); a probe records the rule it was fitted under, for a later rule that
    changes it."""
    if record.get("kind") == "probe" and "train_rule" not in record:
        return False
    return train_rule(record) < TRAIN_RULE


def say_resumed(sweep, reused, planned, progress):
    """The line of a resumed sweep: in the log, and on the terminal unless progress is off."""
    line = (f"tune {sweep}: {reused} of {counted(planned, 'planned trial')} finished before, "
            f"reused; {planned - reused} to run" if reused < planned else
            f"tune {sweep}: {'the' if planned == 1 else 'all'} "
            f"{counted(planned, 'planned trial')} finished before, reused")
    log.info("%s", line)
    if progress:
        print(line, file=sys.stderr)


def summarize(run, plan: Sequence[PlanEntry], *, sweep: str,
              chief_worker: bool | None = None) -> TuneSummary:
    """The `TuneSummary` of a plan's candidates in `run` (a `rundir.Run`; read now from
    RUN/candidates, the ok ones' val_probs.npy against RUN/labels/val.npy for `at_chance`).
    `chief_worker` None: whether this thread holds a chief/worker sweep process's lock on the
    run (RUN/.sweep-<ID>.lock, `formats.SWEEP_LOCK`: `run_tune` with a tuner id takes it,
    a stand-alone one the run's lock instead)."""
    ok, failed, missing = [], {}, []
    for e in plan:
        found = finished_candidate(run.candidates, e.trial_id)
        if found is None:
            missing.append(e.trial_id)
        elif found.status == "ok":
            ok.append(found)
        else:
            failed[e.trial_id] = found.reason
    try:
        labels = run.labels_of("val")
    except (OSError, ValueError):  # a damaged labels file: the ensemble stage names it
        labels = None
    return TuneSummary(sweep=sweep, plan_size=len(plan), ok=len(ok), failed=len(failed),
                       missing=len(missing), failures=failed,
                       trials=[e.trial_id for e in plan], candidates=str(run.candidates),
                       at_chance=at_chance_candidates(ok, labels),
                       chief_worker=(holds_sweep_lock(run.path) if chief_worker is None
                                     else chief_worker))


def holds_sweep_lock(run_dir) -> bool:
    """Whether this thread holds the lock of a chief/worker sweep's process on run `run_dir`
    (RUN/.sweep-<ID>.lock, `formats.SWEEP_LOCK`; `fileio.owned_here`)."""
    pattern = os.path.join(glob.escape(os.fspath(run_dir)), SWEEP_LOCK.format("*"))
    return any(owned_here(path) is not None for path in glob.glob(pattern))


def format_summary(summary: Mapping) -> str:
    """The terminal lines for a sweep summary from run_tune (a TuneSummary or its dict):
    counts, then each failed trial and its reason, how to run the failed ones again
    (`rerun_failed_words`), and each candidate at chance."""
    reused = summary.get("reused") or 0
    chance = summary.get("at_chance") or {}
    at = f" ({len(chance)} at chance on validation)" if chance else ""
    lines = [f"sweep {summary['sweep']}: {summary['ok']} ok{at}, {summary['failed']} failed, "
             f"{summary['missing']} not finished, of {summary['plan_size']} planned"
             f"{f' ({reused} finished before this run, reused)' if reused else ''}; "
             f"candidates in {summary['candidates']}"]
    lines += [f"  failed {trial}: {reason}" for trial, reason in summary["failures"].items()]
    if summary["failures"]:
        lines.append("  " + rerun_failed_words(summary["candidates"], summary["failures"],
                                               chief_worker=bool(summary.get("chief_worker"))))
    lines += [f"  at chance {trial}: {why}" for trial, why in chance.items()]
    return "\n".join(lines)
