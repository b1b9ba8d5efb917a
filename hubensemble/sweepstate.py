"""Whether a run's sweeps are finished: every trial that run.json's tune record plans, held
against RUN/candidates, and the command that finishes them. TensorFlow-free: the report,
`ensemble` and `cost` read it.

Three ways a pool holds fewer candidates than a sweep could give, told apart here:
a trial that failed has a complete candidate of status "failed" (done, listed as a failure);
a module the budget gave no trial is in no plan (run.json's "untuned", not a failure);
a planned trial without a complete candidate never ran or was stopped (an interrupted fit
or tune): the sweep is unfinished, and the ensemble would select from part of its pool;
a folder that holds files but no readable record finished and was damaged since (tune writes
a folder whole), which is said by its readers' skip lines, not as an unfinished sweep.

Also the training rule of a trial (`TRAIN_RULE`, `train_rule`) and the words of a sweep
resumed over trials of an older one (`older_rule_warning`).
"""

from __future__ import annotations

import dataclasses
import os

from hubensemble import candidate, options
from hubensemble.formats import CANDIDATES_DIR
from hubensemble.fileio import json_object, read_json
from hubensemble.sweepwords import fit_plans
from hubensemble.text import counted

#: The training rule a trial was trained by, recorded in each trial.json ("train_rule") and
#: in run.json's record of its sweep (tune.sweeps.<sweep>.train_rule). Raised by every change
#: that alters a finished trial's numbers (its probabilities, val/test CE) for the same
#: module, hyperparameters, seed and data, so a sweep resumed by a newer version says how
#: many of the trials it reuses were trained by an older rule (`older_rule_warning`) instead
#: of mixing two rules in one pool without a word. A trial.json without the key is of rule 1
#: (`train_rule`). Rules: 1, every version up to 3d86205 (2026-12-02); 2 since a change
#: before e1b5771 (2026-12-05), not bisected (c95e01a and fe22fbd made each pass's shuffled
#: order a function of the trial's seed alone; afef43a, 99cad06, 07b7d7b touched the same
#: path): the same trial of ee1ba61 and 3d86205 gave a validation CE up to 1.3e-4 away from
#: e1b5771's, which equals 600fd0a's to the bit (docs/reliability.md, Upgrading).
TRAIN_RULE = 2


def train_rule(record) -> int:
    """The training rule of a trial.json `record` (dict): its "train_rule", 1 when it has none
    (written before the rule was recorded) or holds no whole number >= 1."""
    rule = record.get("train_rule") if isinstance(record, dict) else None
    return rule if isinstance(rule, int) and not isinstance(rule, bool) and rule >= 1 else 1


def older_rule_warning(sweep: str, older: list, reused: int, *, run_words: str,
                       restart_words: str) -> str | None:
    """The one line a resumed sweep says when `older` (the trial ids, of the `reused` finished
    trials it keeps) were trained by a rule before TRAIN_RULE; None when there are none.

    They are kept, not re-run: each is a sound candidate (the rules differ in how a trial's
    training runs, not in what it trains: 1.3e-4 of validation CE where measured) and may
    have taken hours; the line says how many, what differs and both ways to train them by
    this rule: `restart_words` (e.g. "`hubensemble tune --run RUN --sweep default
    --restart`", every trial of the sweep) or removing their folders in `run_words`
    (RUN/candidates), which runs only them again."""
    if not older:
        return None
    shown = ", ".join(older[:3]) + (", …" if len(older) > 3 else "")
    return (f"tune {sweep}: {len(older)} of the {counted(reused, 'trial')} reused ({shown}) "
            f"{'was' if len(older) == 1 else 'were'} "
            f"trained by an older hubensemble's training rule (trial.json train_rule "
            f"{'/'.join(str(r) for r in range(1, TRAIN_RULE))} or none; this version trains "
            f"by rule {TRAIN_RULE}; none is any hubensemble before 0.3.0, whose releases from "
            f"2026-12-05 on already trained by rule {TRAIN_RULE}), so their numbers may differ "
            f"slightly from what this version gives for the same settings and seed, and the "
            f"pool may mix two rules; "
            f"kept as they are. To train them by this rule, delete their folders in "
            f"{run_words} and run tune again, or start the sweep over: {restart_words}")


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
    planned trials that have no finished candidate in RUN/candidates (ok with its files, or
    failed: `candidate.Candidate.faults` empty, a file changed since its writer wrote it
    counted as finished) nor a folder damaged since (`damaged_since`),
    in the order recorded; [] when every planned
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
            # A file changed since tune wrote it: finished, then changed (tune redoes it, the
            # stages read it and say a weights file), not a trial that never ran.
            if cand is not None and not cand.faults:
                done_modules.add(_module(trial, sweep))
            elif cand is None and damaged_since(folder, trial):
                continue  # finished, then damaged: its readers' skip lines say so, not this
            else:
                missing.append(trial)
        if missing:
            modules = dict.fromkeys(_module(t, sweep) for t in map(str, trials))
            found.append(UnfinishedSweep(
                sweep=str(sweep), planned=len(trials), done=len(trials) - len(missing),
                missing=tuple(missing),
                modules_without=tuple(m for m in modules if m not in done_modules)))
    return found


def damaged_since(candidates_dir, trial: str) -> bool:
    """Whether the folder of `trial` in `candidates_dir` holds files but no readable trial
    record (`candidate.inspect`: trial.json missing, not JSON, of no known status): tune
    writes a trial's folder whole (`candidate.write_candidate`: a temp folder renamed, its
    trial.json last), so the trial finished and its record was damaged since. Not an
    unfinished sweep: `cost` and `ensemble` said "the sweep is unfinished (3 of 4 planned
    trials done; stopped before its end?)" of a finished sweep whose trial.json was edited
    to ["x"], beside their skip line of it (a new user's check)."""
    path = os.path.join(os.fspath(candidates_dir), str(trial))
    return (os.path.isdir(path) and bool(os.listdir(path))
            and candidate.inspect(path, way_on=False)[0] is None)


def untried(candidates_dir, untuned) -> list[tuple[str, list, str]]:
    """`untuned` ((sweep, modules, why) per sweep: `report.runfiles.untuned_sweeps`) with
    each module that has a trial of that sweep in the pool `candidates_dir` (a trial.json
    record, ok or failed, `candidate.scan`) left out, and a sweep none of whose modules
    remains. run.json's "untuned" is the last call's budget's: a fit with --budget 4 after a
    `tune --run RUN` of 8 recorded the second module as given no trial while the pool held
    its trials and the ensemble's best single was one of them."""
    cands, _ = candidate.scan(candidates_dir)
    found = []
    for sweep, modules, why in untuned:
        tried = {_module(c.trial, sweep) for c in cands
                 if c.trial.startswith(f"{sweep}-")}
        left = [m for m in modules if m not in tried]
        if left:
            found.append((sweep, left, why))
    return found


def without_record(candidates_dir, trial: str) -> bool:
    """Whether RUN/candidates/`trial` (in `candidates_dir`) is a folder of a tune trial id
    (``<sweep>-<index>-<module>``) holding no readable trial record (trial.json missing, not
    JSON, or of no known status: `candidate.inspect`): the skips whose reason has no way on
    of its own. Tune redoes such a trial (measured: `tune --run RUN` ran a trial whose
    trial.json was cut short, and one whose trial.json was deleted); ensemble and the report
    name its folder and its sweep's command."""
    from hubensemble.sweeps import SWEEPS

    folder = os.path.join(os.fspath(candidates_dir), str(trial))
    return (str(trial).split("-", 1)[0] in SWEEPS and os.path.isdir(folder)
            and candidate.inspect(folder)[0] is None)


def finish_command(run_dir, meta: dict, sweep: UnfinishedSweep) -> str:
    """The command line that finishes `sweep` in `run_dir`: for a fit's folder the same fit
    command (`rerun.fit_command` without --restart: a fit resumes, reusing every
    finished trial); for a folder made by stage commands `hubensemble tune --run RUN` with
    the sweep's recorded options (--sweep, --budget, --modules, --seed, --batchnorm,
    --head-init, --keep-weights when not the defaults; the profile is the run's). From
    Python (`lockwords.on_command_line` false) the call that does the same: "fit(…) with
    the arguments the run was fitted with", "run_tune(run_dir='/abs/RUN', budget=4)"."""
    from hubensemble.lockwords import command_words, on_command_line

    # A hand edit ("batchnorm": "x", "fit": []) reads as no record: the words of `ensemble`
    # and the report's "What failed and why" were an AttributeError traceback.
    record = json_object(json_object(json_object(meta.get("tune")).get("sweeps")).get(
        sweep.sweep))
    given = {"sweep": sweep.sweep, "budget": record.get("budget"),
             "modules": record.get("requested_modules"), "seed": record.get("seed"),
             "batchnorm": json_object(record.get("batchnorm")).get("requested"),
             "head_init": record.get("head_init"), "keep_weights": record.get("keep_weights")}
    if "fit" in meta and fit_plans(meta, sweep.sweep, record):
        if not on_command_line():
            return "hubensemble.fit(…) with the arguments the run was fitted with"
        from hubensemble.rerun import fit_command

        return fit_command(run_dir, meta, restart=False)
    from hubensemble.rerun import option_flags, option_keywords

    table = [o for o in options.options_for(command="tune") if o.name in given]
    # The one form of a command in the caller's words (its callers set it as code).
    return command_words("tune", run_dir, flags=option_flags(given, table),
                         keywords=option_keywords(given, table), quoted=False)


def sweep_records(meta, where=None) -> dict:
    """run.json's record of each sweep tuned (`meta`: run.json as read; its "tune" ->
    "sweeps"): {sweep name: its record, a dict}, {} when no tune or no sweep is recorded.
    The one reader of that field for the stages that act on it (tune's pool checks, its
    workers' plans, the profile a trial was tuned with: `runprofile`); the readers that only
    say what they can (the report, `unfinished_sweeps`, `finish_command`) read a damaged
    record as none (`fileio.json_object`).

    Raises RunError naming run.json (`where`: its path, made absolute; "run.json" when not
    given), the field and its kind, and the way on (restore run.json from a copy, or delete
    the field: tune records each sweep it runs again, and the candidates stay) when "tune",
    its "sweeps" or one sweep's record is no JSON object: a hand edit ("sweeps": ["x"])
    stopped `tune` with an AttributeError traceback after TensorFlow had loaded."""
    from hubensemble.errors import RunError
    from hubensemble.fileio import json_kind
    from hubensemble.text import absolute, escaped

    tune = meta.get("tune") if isinstance(meta, dict) else None
    sweeps = tune.get("sweeps") if isinstance(tune, dict) else None
    if tune is None or (isinstance(tune, dict) and sweeps is None):
        return {}
    if not isinstance(tune, dict):
        field, value, drop = '"tune"', tune, '"tune"'
    elif not isinstance(sweeps, dict):
        field, value, drop = 'the "sweeps" of its "tune" record', sweeps, 'that "sweeps"'
    else:
        bad = next((name for name, entry in sweeps.items() if not isinstance(entry, dict)),
                   None)
        if bad is None:
            return sweeps
        field, value = f'sweep {bad!r} of its "tune" -> "sweeps" record', sweeps[bad]
        drop = f'that {bad!r} entry'
    run_json = escaped(absolute(where)) if where is not None else "run.json"
    raise RunError(f"{run_json}: {field} is {json_kind(value)}, expected a JSON object (as "
                   f"tune records it); restore run.json from a copy, or delete {drop} from "
                   "it: tune then records each sweep it runs again, and the candidates beside it "
                   "stay")


def sweep_record(meta, sweep: str, where=None) -> dict | None:
    """run.json's record of `sweep` (`sweep_records`: RunError for a damaged one), None when
    there is none."""
    return sweep_records(meta, where).get(sweep)


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
