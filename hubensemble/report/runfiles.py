"""What the report reads from a run directory (every part optional), and numbers derived from it."""

from __future__ import annotations

import dataclasses
import logging
import re
import os
import warnings
from pathlib import Path

import numpy as np

from hubensemble import candidate, formats, metrics
from hubensemble import ensemble as ens
from hubensemble.chance import at_chance_candidates
from hubensemble.errors import RunError
from hubensemble.fileio import json_kind, json_object, read_json
from hubensemble.report.checks import (DISTILL_KINDS, DISTILL_NULLABLE, DISTILL_NUMBERS,
                                       ENSEMBLE_KINDS, ENSEMBLE_NUMBERS, EXPORT_NUMBERS,
                                       ROBUSTNESS_KINDS, ROBUSTNESS_NUMBERS, RUN_KINDS,
                                       kind_problems, note, number_problems, numbers_note)
from hubensemble.report.budget import LIMIT_FLAGS, budget_unmet, not_counted_way, raised_way
from hubensemble.report.fmt import all_failed_words
from hubensemble.report.render import Code, Inline
from hubensemble.sweeps import untuned_words
from hubensemble.sweepstate import unfinished_sweeps
from hubensemble.text import absolute, shell
from hubensemble.threads import warnings_block

log = logging.getLogger(__name__)


#: The first section that reads ensemble.json: it says why the file cannot be read, the
#: others point to it (`RunFiles.ensemble_ref`).
ENSEMBLE_FIRST = "Ensemble size"
#: The first section that reads ranking.json (`RunFiles.ranking_ref`, as ENSEMBLE_FIRST).
RANKING_FIRST = "Ranking"


@dataclasses.dataclass
class RunFiles:
    """A run directory as the report sees it. Each part is None (or empty) when the run has
    not made it yet, and its `*_note` (str or `render.Inline`, shown literally) then says
    what is missing and which command makes it.

    `candidates`: the usable candidates (`candidate.load_pool`, probabilities loaded);
    `skipped`: (trial, reason) of candidates left out that did not fail; `failed`: the
    trial.json records of failed trials; `y_val` / `y_test`: int64 [N] labels or None;
    `coverage`: {split: {"classes", "covered", "missing"}} of val / test (ensemble.json's
    record, else computed from the labels and run.json's class names); `meta_note`: why
    run.json is missing or unreadable; `ensemble_note`: why there is no ensemble to show, and,
    when ensemble.json is damaged, `ensemble_ref`: the short pointer to it of the sections
    after `ENSEMBLE_FIRST`; `ranking_ref`: that of ranking.json's (`RANKING_FIRST`) when it
    is missing or damaged; `problems`: every file missing or damaged, each
    with how to remake it (the failures section lists them); `member_problems`: {trial:
    why the report cannot read that member of ensemble.json (which file, what is wrong)};
    `number_notes`: {"ensemble" / "robustness": [(field, what it is)]} of the values
    there that are not finite numbers (`checks.number_problems`, shown as "–", each
    section's note by `numbers_note`); `unfinished`: the sweeps with planned trials still to
    run (`sweepstate.unfinished_sweeps`: an interrupted fit or tune), whose pool is only
    part of what they plan; `at_chance`:
    {trial: why} of the usable candidates at chance on validation (`chance.at_chance_candidates`
    of their val_probs against RUN/labels/val.npy), in trial order.
    """

    path: Path
    meta: dict
    ranking: object = None          # rank.Ranking
    ranking_note: str | Inline | None = None
    ranking_ref: str | None = None  # the later sections' pointer to ranking_note
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None
    candidates: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)   # (trial, reason), not failures
    failed: list = dataclasses.field(default_factory=list)    # trial.json records, failed
    candidates_note: str | Inline | None = None
    ensemble: dict | None = None
    ensemble_note: str | Inline | None = None
    ensemble_ref: str | None = None  # the later sections' pointer to ensemble_note, when damaged
    robustness: dict | None = None
    robustness_note: str | Inline | None = None
    coverage: dict = dataclasses.field(default_factory=dict)
    costs: object = None            # cost.records.RunCosts of RUN/cost.json
    costs_note: str | Inline | None = None
    distill: dict | None = None     # RUN/distill.json, when of the current ensemble
    distill_note: str | Inline | None = None
    meta_note: Inline | None = None
    problems: list = dataclasses.field(default_factory=list)
    member_problems: dict = dataclasses.field(default_factory=dict)
    unfinished: list = dataclasses.field(default_factory=list)
    at_chance: dict = dataclasses.field(default_factory=dict)
    number_notes: dict = dataclasses.field(default_factory=dict)  # see numbers_note

    #: What `cmd` knows.
    CMDS = ("rank", "tune", "ensemble", "export", "evaluate", "fit", "cost", "distill", "report")

    def _inputs(self, p) -> str:
        """The --catalogue and --data words of a rank or fit of run folder `p` (absolute), as
        run.json and the ranking record them (`rerun.rank_inputs`)."""
        from hubensemble.rerun import rank_inputs, ranked_sources

        return rank_inputs(self.meta, ranked_sources(p))["flags"]

    def cmd(self, what) -> str:
        """The command line that makes `what` (one of CMDS) for this run. Paths are absolute
        (the report is read, and its commands pasted, from anywhere: a relative --out wrote
        robustness.json under the folder they were pasted in) and shell-quoted; `export`
        writes where the run's export is (`export`: --out when not RUN/export), the folder
        the `evaluate` command then measures (a new-user check: export wrote RUN/export and
        evaluate measured the stale --out folder)."""
        from hubensemble.report.costs import distill_command
        from hubensemble.rerun import fit_command
        from hubensemble.rundir import Run
        from hubensemble.sweepwords import ensemble_options

        p = absolute(self.path)
        # Only `what` is made: tune's, export's and evaluate's read run.json and the export's
        # metadata, and a report asks for commands dozens of times.
        return {
            # The run's catalogue and data as it records them (`rerun.rank_inputs`; FILE and
            # SPEC only where it does not): the placeholders were said where it named both.
            "rank": lambda: f"hubensemble rank {self._inputs(p)} --out {shell(p)}",
            # The run's own sweep and options, named (sweepwords.sweep_command): the same
            # command whatever the run's last tune was, and as the report of an earlier
            # version, whose plain `tune --run RUN` ran the default sweep, said it.
            "tune": lambda: _tune_command(p),
            # The ensemble's own settings (sweepwords.ensemble_options): a plain
            # `ensemble --run RUN` selects under the defaults, not the run's --budget.
            "ensemble": lambda: " ".join(filter(None, (
                f"hubensemble ensemble --run {shell(p)}", ensemble_options(p)[0]))),
            "export": lambda: Run(p).export_command(self.export, *self._export_flags()),
            "evaluate": self._evaluate_command,
            "fit": lambda: (fit_command(p, self.meta, restart=False)
                            if isinstance(self.meta, dict) and "fit" in self.meta else
                            f"hubensemble fit {self._inputs(p)} --out {shell(p)}"),
            "cost": lambda: f"hubensemble cost --run {shell(p)}",
            # The student's module and options (`costs.distill_command`): the same distill.
            "distill": lambda: distill_command(p),
            "report": lambda: f"hubensemble report --run {shell(p)}",
        }[what]()

    def _export_flags(self) -> list[str]:
        """["--retrain-full"] when the run's export was written with it (its metadata): the
        advice to write it again keeps what the user chose for that folder."""
        info = formats.read_export_metadata(self.export, strict=False) if self.export else {}
        return ["--retrain-full"] if (info or {}).get("retrain_full") else []

    def _evaluate_command(self) -> str:
        """`evaluate` of the run's export (`export`, else where `export --run` writes it) with
        the run's own data (`rerun.evaluate_data_flags`: none to pass when the export
        sits in the run), into RUN/robustness.json."""
        from hubensemble.rerun import evaluate_data_flags
        from hubensemble.rundir import Run

        model = self.export or str(Run(self.path).export)
        in_run = os.path.dirname(absolute(model)) == absolute(self.path)
        data = evaluate_data_flags(Run.data_part(self.meta, "args"), in_run=in_run)
        out = absolute(self.path / formats.ROBUSTNESS_FILE)
        return (f"hubensemble evaluate --model {shell(absolute(model))}{data} "
                f"--corruptions --out {shell(out)}")

    @property
    def task(self) -> dict:
        """run.json's record of the task ({} when there is none, or it is damaged: the
        report says so, `_load_meta`)."""
        from hubensemble.rundir import Run

        return Run.data_part(self.meta, "task")

    @property
    def export(self) -> str | None:
        """The export folder (`Run.current_export`: one of this ensemble, else one of an
        earlier ensemble; else the recorded folder when it exists and holds no other run's
        export, `Run.foreign_export`), or None."""
        from hubensemble.rundir import Run

        run = Run(self.path)
        current, stale = run.current_export(self.meta)
        recorded = run.exported_to(self.meta)
        return current or stale or (recorded if recorded and os.path.exists(recorded)
                                    and not run.foreign_export(self.meta) else None)

    @property
    def retrained(self) -> tuple[bool, dict | None]:
        """`retrained_test` of this run: whether the export's members were retrained on train
        + val, and their test record measured after it (None when not measured)."""
        from hubensemble.rundir import Run

        retrained, after = retrained_test(Run(self.path), self.meta)
        after = after if isinstance(after, dict) else None
        # A value that is no finite number: "–", its note by `numbers_note("export", …)`.
        self.number_notes["export"] = number_problems({"metrics": {"test": after}},
                                                      EXPORT_NUMBERS) if after else []
        return retrained, after

    def finish_step(self) -> Inline:
        """"the sweep is unfinished (…): finish it with `CMD`" (`sweepstate.finish_command`:
        the same fit for a fit's folder, which goes on to its later stages itself; else tune,
        then ensemble), and that `ensemble` now would select from part of the pool only."""
        from hubensemble.sweepstate import finish_commands

        commands = finish_commands(self.path, self.meta, self.unfinished)
        parts = [f"the sweep is unfinished ({'; '.join(s.text() for s in self.unfinished)}):"
                 " finish it with "]
        for i, command in enumerate(commands):
            parts += [" or " if i else None, Code(command)]
        if "fit" not in self.meta:
            parts += [", then ", Code(self.cmd("ensemble"))]
        else:
            parts.append(" (the fit goes on from the trials it finished, to its ensemble)")
        parts.append("; ")
        parts.append(Code(self.cmd("ensemble")))
        parts.append(" before that would select from part of the pool only")
        return Inline(*[p for p in parts if p is not None])

    def numbers_note(self, which: str, fields: tuple) -> Inline | None:
        """The note on `which`'s ("ensemble", "robustness", "distill" or "export": the export's
        metadata, `retrained`, which must have been read first) values under `fields` (top
        keys, e.g. ("test", "test_curve")) that are not finite numbers (`number_notes`),
        naming the file, each field and the command that writes it again; None if none."""
        problems = [(f, w) for f, w in self.number_notes.get(which) or []
                    if f.split(".")[0].split("[")[0] in fields]
        if which == "export":  # the export `retrained` read
            from hubensemble.rundir import Run

            export = Run(self.path).current_export(self.meta)[0] or ""
            path, cmd = formats.metadata_path(export), "export"
        else:
            path, cmd = {"ensemble": (self.path / formats.ENSEMBLE_FILE, "ensemble"),
                         "distill": (self.path / formats.DISTILL_FILE, "distill")}.get(
                             which, (self.path / formats.ROBUSTNESS_FILE, "evaluate"))
        return numbers_note(absolute(path), problems, self.cmd(cmd))

    def next_step(self, what) -> Inline:
        """"run `CMD`" for the command that makes `what` ("tune", "ensemble", "export",
        "evaluate"), or for the first stage before it that has not run yet, then what follows
        (a ranked run is sent to `tune`, not to an `ensemble` that would refuse)."""
        done = {"rank": self.ranking is not None or bool(self.candidates),
                "tune": bool(self.candidates), "ensemble": self.ensemble is not None,
                "export": self.export is not None}
        chain = ["rank", "tune", "ensemble", "export", "evaluate"]
        before = chain[:chain.index(what)]
        first = next((step for step in before if not done[step]), what)
        if self.unfinished and first in ("tune", "ensemble") and done["tune"]:
            return self.finish_step()  # not `ensemble` of part of the pool (a new-user check)
        rest = chain[chain.index(first) + 1:chain.index(what) + 1]
        then = f" (then {', '.join(rest)})" if rest else None
        if first == "tune" and self.failed and not self.unfinished:
            # Every trial of a finished sweep failed: tune alone reuses them and does nothing
            # (a failed trial is done: sweeps.rerun_failed_words). The command that removes
            # their folders is under "What failed and why" (once, however many sections).
            return Inline(f"{all_failed_words(len(self.failed))} (the command is under "
                          "\"What failed and why\"), then run ", Code(self.cmd("tune")), then)
        unfit = budget_unmet(self) if first == "ensemble" else None
        if unfit and what != "ensemble":  # said whole in ENSEMBLE_FIRST's section
            return Inline("select an ensemble first: no candidate fits the inference budget "
                          f"the run records (see \"{ENSEMBLE_FIRST}\")", then)
        if unfit:  # the ensemble command as recorded is refused again, with these words
            from hubensemble.cost.budget import NOT_COUNTED

            command = re.sub(LIMIT_FLAGS, "", self.cmd("ensemble"))
            way = (not_counted_way(self, unfit[1], self.cmd("ensemble"))
                   if unfit[0].startswith(NOT_COUNTED) else
                   raised_way(self, unfit[1], self.cmd("ensemble")))
            return Inline(f"no candidate fits the inference budget the run records "
                          f"({unfit[0]}): ", *([way, ", or run "] if way else ["run "]),
                          Code(command), " for no budget", then)
        return Inline("run ", Code(self.cmd(first)), then)


def _tune_command(run_dir) -> str:
    """The command line of run `run_dir`'s last sweep with its recorded options (unquoted),
    whoever writes the report (`fit` from Python included)."""
    from hubensemble.lockwords import command_line
    from hubensemble.sweepwords import sweep_command

    with command_line():
        return sweep_command(run_dir, quoted=False)


def load_run(run_dir) -> RunFiles:
    """Reads everything the report shows from `run_dir`: run.json, ranking.json, the labels,
    the candidates (through `hubensemble.candidate`), ensemble.json and robustness.json.

    Raises RunError when `run_dir` is not a folder or holds neither run.json nor
    ranking.json; a part that is missing or unreadable only leaves a note (and a warning on
    the terminal when the file is there but unreadable: the report alone would hide it).
    """
    from hubensemble.rundir import Run

    # A folder that is not there is refused as typed, with where a relative one was looked
    # for, as every other command's --run is: made absolute first, the hint was lost.
    if not Path(run_dir).is_dir():
        Run(run_dir).require_started()
    # Absolute, as the report's commands name it: every path the report shows (a labels
    # file, the Python call that gives an image's pixels) is read from anywhere, and the
    # same run's report is the same however its folder was typed.
    path = Path(absolute(run_dir))
    run = Run(path)
    run.require_started()
    # The report is a document of command lines (its own advice names commands): the notes
    # it keeps of a file's refusal use the command line's words too, called from Python.
    from hubensemble.lockwords import command_line

    with command_line():
        return _read_run(path, run)


def _read_run(path, run) -> RunFiles:
    """`load_run`'s reading of the started run `run` at `path`."""
    from hubensemble.rank import load_ranking

    meta, meta_note = _load_meta(path, run)
    files = RunFiles(path=path, meta=meta, meta_note=meta_note,
                     unfinished=unfinished_sweeps(path, meta))
    if files.meta_note is not None:
        files.problems.append(files.meta_note)
        log.warning("the report cannot show all of run.json: %s", files.meta_note)

    if run.ranking_json.exists():
        try:
            files.ranking = load_ranking(path)  # rows checked (Run.ranking)
        except RunError as e:
            files.ranking_note = note(e)
            files.ranking_ref = (f"Not shown: {formats.RANKING_JSON} is unreadable or damaged "
                                 f"(see \"{RANKING_FIRST}\").")
            files.problems.append(files.ranking_note)
            log.warning("the report cannot show the ranking: %s", e)  # not only in report.md
    else:
        files.ranking_note = Inline("There is no ranking yet (ranking.json is missing): run ",
                                    Code(files.cmd("rank")), ".")
        # Said whole once, in the Ranking section; the two after it said it again.
        files.ranking_ref = (f"Not shown: there is no {formats.RANKING_JSON} (see "
                             f"\"{RANKING_FIRST}\").")
    _load_candidates(files, run.candidates)

    if run.ensemble_json.exists():
        try:
            again = f"`{files.cmd('ensemble')}` writes it again"
            ensemble = _checked(ens.read_ensemble(path), ENSEMBLE_KINDS, run.ensemble_json, again)
            if not ensemble.get("members"):  # export's words; the sections failed to np.stack
                raise RunError(f"{run.ensemble_json} lists no members; {again}")
            files.ensemble = ensemble
            # A value of the right kind but no number (a hand-edited "x", a NaN): named.
            files.number_notes["ensemble"] = number_problems(ensemble, ENSEMBLE_NUMBERS)
        except RunError as e:
            files.ensemble_note = note(e)
            # Said whole once, in the first section that needs it (`ENSEMBLE_FIRST`); the
            # four after it said the same sentence again.
            files.ensemble_ref = (f"Not shown: {formats.ENSEMBLE_FILE} is unreadable or "
                                  f"damaged (see \"{ENSEMBLE_FIRST}\").")
            files.problems.append(files.ensemble_note)
            log.warning("the report cannot show the ensemble: %s", e)
    else:
        # "yet" is untrue of a run whose student was distilled from an ensemble since gone.
        files.ensemble_note = Inline(
            "There is no ensemble " + ("(ensemble.json is missing, though a student was "
                                       f"distilled from it: {formats.DISTILL_FILE}): "
                                       if run.distill_json.is_file() else
                                       "yet (ensemble.json is missing): "),
            files.next_step("ensemble"), ".")
        # Said whole once, in the first section that reads it; the others point to it (the
        # same sentence was said five times, a new-user check).
        files.ensemble_ref = (f"Not shown: there is no {formats.ENSEMBLE_FILE} (see "
                              f"\"{ENSEMBLE_FIRST}\").")
    _member_problems(files)
    _label_problems(files)

    files.coverage = _coverage(files)
    _load_costs(files, run)

    rob = run.robustness_json
    name = formats.ROBUSTNESS_FILE
    if rob.exists():
        try:
            files.robustness = read_json(rob)
            if not isinstance(files.robustness, dict) or "clean" not in files.robustness:
                raise ValueError("not an evaluation written by hubensemble")
            damage = kind_problems(files.robustness, ROBUSTNESS_KINDS)
            if damage:
                raise ValueError(f"damaged: {'; '.join(damage)}")
            files.number_notes["robustness"] = number_problems(files.robustness,
                                                               ROBUSTNESS_NUMBERS)
        except (OSError, ValueError) as e:
            files.robustness = None
            files.robustness_note = Inline(f"{name} is unreadable ({e}); run ",
                                           Code(files.cmd("evaluate")), " again.")
            files.problems.append(files.robustness_note)
            log.warning("the report cannot show the robustness evaluation: %s",
                        files.robustness_note)
    else:
        fit = (files.meta.get("fit") or {}) if isinstance(files.meta, dict) else {}
        options = fit.get("options") if isinstance(fit, dict) else None
        why = ("the run has no test split, so there is nothing to corrupt"
               if files.y_test is None and (files.task.get("sizes") or {}).get("test") is None
               else files.next_step("evaluate"))
        if isinstance(options, dict) and options.get("corruptions") is False and \
                not isinstance(why, str):  # said only "missing: run evaluate" of its choice
            # "to measure them, " leads only a "run …": it spliced the statements next_step
            # gives before it ("to measure them, the 1 trial of the sweep failed: …").
            run = str(why).startswith("run ")
            why = Inline("fit ran with ", Code("--no-corruptions"), ", which evaluates none; "
                         + ("to measure them, " if run else
                            "and there is no ensemble to measure yet: "), why)
        files.robustness_note = Inline(f"No robustness evaluation ({name} is missing): ", why,
                                       ".")
    return files


def retrained_test(run, meta) -> tuple[bool, dict | None]:
    """(whether the members of the run's export of this ensemble (`Run.current_export`) were
    retrained on train + val, `export --retrain-full`; their test record, as ensemble.json's
    "test", measured on them, else None: no test split, or an export from before they were
    measured, whose metadata holds ensemble.json's record of the members before retraining)."""
    path = run.current_export(meta)[0]
    info = formats.read_export_metadata(path, strict=False) if path else {}
    measured = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    if not info.get("retrain_full"):
        return False, None
    return True, measured.get("test") if "test_before_retraining" in measured else None


def untuned_sweeps(meta: dict) -> list[tuple[str, list, str]]:
    """(sweep, modules, reason) for each sweep of run.json's "tune" section whose budget gave
    modules of its selection no trial (`tune.sweeps.<sweep>.untuned`, written by tune), in
    the order recorded, the reason worded for the reader now (`sweeps.untuned_words`: flags
    inside `lockwords.command_line`, as the report; keywords from Python); [] for none, or
    for a run tuned before it was recorded."""
    found = []
    for sweep, record in json_object(json_object(meta.get("tune")).get("sweeps")).items():
        untuned = record.get("untuned") if isinstance(record, dict) else None
        if isinstance(untuned, dict) and untuned.get("modules"):
            found.append((sweep, [str(m) for m in untuned["modules"]],
                          untuned_words(sweep, untuned)))
    return found


def _load_meta(path: Path, run) -> tuple[dict, Inline | None]:
    """(run.json as a dict, None), or with the note saying it is missing or unreadable (the
    dict is then {}) or damaged (a value of the wrong kind: dropped from the dict)."""
    restore = ("restore it from a copy, or run `hubensemble rank --catalogue FILE --data SPEC "
               f"--out {shell(path)}` again, which writes it (its embeddings are cached)")
    if not run.meta_path.exists():
        return {}, note(f"{run.meta_path} is missing, so the data, the stage times and the "
                        f"versions are not known; {restore}")
    try:
        meta = run.meta()
    except (OSError, RunError) as e:  # damaged: every section that needs it says so
        return {}, note(e)
    damage = kind_problems(meta, RUN_KINDS, drop=True)
    return meta, (note(f"{run.meta_path} is damaged ({'; '.join(damage)}); {restore}")
                  if damage else None)


def _checked(record: dict, kinds, path, again: str) -> dict:
    """`record` when its values are of the kinds `kinds` says; else RunError naming each
    key, its kind and `again` (the command that rewrites the file)."""
    damage = kind_problems(record, kinds)
    if damage:
        raise RunError(f"{path} is damaged ({'; '.join(damage)}); {again}")
    return record


def _member_problems(files: RunFiles) -> None:
    """Which members of ensemble.json the report cannot read, and why: the folder is gone,
    a file is missing or damaged (the candidate is then not usable), or its test table is
    (it has no test metrics)."""
    usable = {c.trial: c for c in files.candidates}
    skipped = dict(files.skipped)
    failed = {r.get("trial"): r.get("reason") or "no reason recorded" for r in files.failed}
    for m in (files.ensemble or {}).get("members") or []:
        trial = m.get("trial")
        folder = f"candidates/{trial}/"
        if trial in usable:
            c = usable[trial]
            if c.test_probs is None and c.has_test and files.y_test is not None:
                why = "; ".join(c.notes) or f"{candidate.TEST_PROBS_FILE} was not read"
                files.member_problems[trial] = in_folder(folder, why)
        elif trial in skipped:
            files.member_problems[trial] = in_folder(folder, skipped.pop(trial))
        elif not (files.path / folder).is_dir():
            files.member_problems[trial] = f"{folder} is missing (deleted?)"
        elif trial in failed:  # run again since it was chosen, and failed: neither missing
            # nor unreadable (the Overview counted it so); the failed trials' table lists it
            files.member_problems[trial] = (f"{folder}{candidate.TRIAL_FILE} records the "
                                            f"trial as failed ({failed[trial]})")
        else:
            files.member_problems[trial] = f"{folder} holds no usable candidate"
    # A member is not "left out of the ensemble": the failures section names it as a member.
    files.skipped = [(t, r) for t, r in files.skipped if t not in files.member_problems]


def in_folder(folder: str, why: str) -> str:
    """`why` (a candidate's reason, `candidate.inspect` / `load_pool`) said of `folder`
    ("candidates/T/"): right after it when it starts with one of its files
    ("candidates/T/test_probs.npy is missing"), else after a colon ("candidates/T: no
    trial.json yet …"; it read "candidates/T/no trial.json yet", a file of that name)."""
    first = str(why).split(" ", 1)[0]
    return (f"{folder}{why}" if "." in first.rstrip(".,;:") and "/" not in first
            else f"{folder.rstrip('/')}: {why}")


def _label_problems(files: RunFiles) -> None:
    """A labels file the task records (or ensemble.json's test metrics need) that is gone."""
    sizes = files.task.get("sizes") or {}
    for split, y in (("val", files.y_val), ("test", files.y_test)):
        needed = sizes.get(split) or (split == "test" and (files.ensemble or {}).get("test"))
        if y is None and needed and files.candidates_note is None:
            files.problems.append(Inline(
                f"{files.path / formats.LABELS_DIR / (split + '.npy')} is missing: run ",
                Code(files.cmd("tune")), " (it writes the labels again from the run's data)."))


def _no_costs_note(recorded, command: str) -> Inline:
    """Why RUN/cost.json (`recorded`, a RunCosts without costs) gives no cost, and `command`
    (cost's): the file is missing; or no candidate could be costed (its first reasons, which
    the file records); or each cost is of a trial tuned again since (`RunCosts.stale`). It
    said "cost.json is missing" of a file that recorded every module's failure."""
    from hubensemble.cost.budget import named_by_reason

    def first(reasons: dict) -> str:  # each reason once: one per trial said it many times
        return named_by_reason(list(reasons), reasons, most=2)

    if recorded.failed:
        return Inline(f"No inference costs: no candidate could be costed ({first(recorded.failed)}"
                      f"; {formats.COST_FILE} records each reason): fix what they name, then "
                      "run ", Code(command), " again.")
    if recorded.stale:
        return Inline(f"No inference costs: each cost in {formats.COST_FILE} is of a trial tuned "
                      f"again since ({first(recorded.stale)}): run ", Code(command), " again.")
    return Inline(f"No inference costs yet ({formats.COST_FILE} is missing): run ",
                  Code(command), ".")


def _load_costs(files: RunFiles, run) -> None:
    """RUN/cost.json (`hubensemble.cost.read_run_costs`) and RUN/distill.json, each optional."""
    from hubensemble.cost import read_run_costs

    try:
        files.costs = read_run_costs(files.path)
    except RunError as e:
        files.costs_note = note(e)
        files.problems.append(files.costs_note)
        log.warning("the report cannot show the inference costs: %s", e)
    if files.costs is not None and not files.costs.costs and files.costs_note is None:
        files.costs_note = _no_costs_note(files.costs, files.cmd("cost"))
        files.costs = None
    if not run.distill_json.exists():
        return
    redo = Inline("run ", Code(files.cmd("distill")), " again")
    try:
        distill = read_json(run.distill_json)
        if not isinstance(distill, dict):
            raise ValueError(f"{json_kind(distill)}, not an object")
        damage = kind_problems(distill, DISTILL_KINDS)
        if damage:
            raise ValueError(f"damaged: {'; '.join(damage)}")
        # A value of the right kind but no number (a hand-edited "x", a NaN): named, as
        # ensemble.json's (`numbers_note("distill", …)`).
        files.number_notes["distill"] = number_problems(
            distill, DISTILL_NUMBERS, DISTILL_NULLABLE)
        teacher = [m.get("trial") if isinstance(m, dict) else m
                   for m in (distill.get("teacher") or {}).get("members") or []]
    except (OSError, ValueError) as e:
        files.distill_note = Inline(f"{run.distill_json} is unreadable ({e}); ", redo, ".")
        files.problems.append(files.distill_note)
        log.warning("the report cannot show the distilled student: %s", files.distill_note)
        return
    chosen = [m.get("trial") for m in (files.ensemble or {}).get("members") or []]
    if files.ensemble is not None and set(teacher) != set(chosen):
        # `ensemble` chose again after `distill`: its student, gap and cost ratio describe
        # an ensemble that is gone (a new-user check: "keeps -140 %" beside the new one).
        exported = (files.meta.get("export") or {}).get("members") or []
        if {m.get("trial") for m in exported} != set(chosen):  # distill's teacher: the export
            redo = Inline("run ", Code(files.cmd("export")), ", then ",
                          Code(files.cmd("distill")))
        files.distill_note = Inline(f"{run.distill_json} was distilled from an earlier "
                                    f"ensemble ({len(teacher)} members), not ensemble.json's "
                                    f"({len(chosen)}): ", redo, " to distil this one.")
        return
    files.distill = distill


def _load_candidates(files: RunFiles, folder: Path) -> None:
    """The labels and the candidates, read through `hubensemble.candidate`: the usable pool
    (what the ensemble selects from), the failed trials, and the others left out."""
    found, _ = candidate.scan(folder)
    files.failed = [{**c.record, "trial": c.trial} for c in found if c.status == "failed"]
    try:
        files.y_val = ens.load_labels(files.path, "val")
        files.y_test = ens.load_labels(files.path, "test")
    except RunError as e:
        files.candidates_note = note(e)
        files.problems.append(files.candidates_note)
    else:
        # ensemble's pool, of the class count run.json records (`ensemble.run_classes`),
        # not a vote of the candidates: another task's majority listed in place of the run's.
        files.candidates, skipped = ens.load_candidates(
            files.path, n_val=None if files.y_val is None else len(files.y_val),
            n_test=None if files.y_test is None else len(files.y_test))
        failed_ids = {r["trial"] for r in files.failed}
        files.skipped = [(t, r) for t, r in skipped if t not in failed_ids]
        files.at_chance = at_chance_candidates(files.candidates, files.y_val)
    if not files.candidates and files.candidates_note is None:
        files.candidates_note = Inline(
            "There is no usable candidate: " if files.failed and not files.unfinished else
            "There are no fine-tuned candidates yet (candidates/ is empty or missing): ",
            files.next_step("tune"), ".")


def _coverage(files: RunFiles) -> dict:
    """Which classes val / test have no example of: ensemble.json's record when it has one,
    else `data.coverage.split_coverage` of the labels with run.json's class names."""
    from hubensemble.data.coverage import split_coverage

    recorded = (files.ensemble or {}).get("coverage")
    if isinstance(recorded, dict) and recorded:
        return recorded
    names = [str(n) for n in files.task.get("class_names") or []]
    if not names:
        return {}
    return {split: split_coverage(names, y)
            for split, y in (("val", files.y_val), ("test", files.y_test)) if y is not None}


def candidate_accuracy(files: RunFiles, cand) -> float | None:
    """A candidate's validation accuracy in [0, 1]: metrics.accuracy of its val_probs against
    RUN/labels/val.npy, or trial.json's record when the labels are missing."""
    if files.y_val is not None:
        return metrics.accuracy(cand.val_probs, files.y_val)
    return (cand.val or {}).get("accuracy")


def candidate_ce(files: RunFiles, cand) -> float | None:
    """A candidate's validation cross-entropy (nats): metrics.nll of its float32 val_probs
    against RUN/labels/val.npy — the number trial.json and ensemble.json record for it — or
    trial.json's record when the labels are missing."""
    if files.y_val is not None:
        return metrics.nll(cand.val_probs, files.y_val)
    return cand.val_ce


def knn_vs_finetuned(files: RunFiles) -> list[tuple[str, float, float]]:
    """(module, kNN score, best validation accuracy of its candidates) for every module that
    was ranked ok and has at least one usable candidate, in ranking order."""
    if files.ranking is None:
        return []
    best = {}
    for c in files.candidates:
        acc = candidate_accuracy(files, c)
        if acc is not None and (c.module not in best or acc > best[c.module]):
            best[c.module] = float(acc)
    return [(r["name"], float(r["score"]), best[r["name"]])
            for r in files.ranking.ok_rows if r["name"] in best]


def spearman(x, y) -> float | None:
    """Spearman's rank correlation in [-1, 1] of two equally long sequences of numbers (ties
    get their average rank): `scipy.stats.spearmanr`. None below 3 pairs or when one side
    is constant (the correlation is then undefined). ValueError for different lengths."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} and {len(y)})")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    from scipy.stats import spearmanr

    with warnings_block():
        warnings.simplefilter("ignore")  # scipy warns on constant input; handled above
        rho = float(spearmanr(x, y).statistic)
    return rho if np.isfinite(rho) else None
