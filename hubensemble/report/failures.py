"""The report's "What failed and why" section: everything a run tried and did not get, and
the command that retries it."""

from __future__ import annotations

from hubensemble.candidate import read_candidate
from hubensemble.chance import chance_advice
from hubensemble.chance import is_probe
from hubensemble.ensemble import redo_kind, unplanned_folder
from hubensemble.formats import CANDIDATES_DIR
from hubensemble.lockwords import command_line
from hubensemble.rank.record import duplicates_apart
from hubensemble.report.checks import note
from hubensemble.report.datarows import isolated_block
from hubensemble.report.fmt import compact
from hubensemble.report.render import Bullets, Code, Inline, Section, Table
from hubensemble.report.runfiles import untuned_sweeps
from hubensemble.sweeps import SWEEPS, rerun_failed_parts
from hubensemble.sweepstate import untried
from hubensemble.sweepwords import redo_command, redone_by_fit
from hubensemble.text import absolute, counted


def split_unranked(ranking) -> tuple[list[dict], list[dict]]:
    """(duplicates, unranked): the rows of `ranking` (a `rank.record.Ranking`, or None: two
    empty lists) whose status is not "ok", split by stage: an entry refused as a
    "duplicate" of an earlier one (the same files or embeddings: `rank.ranking._duplicate`)
    was ranked, under the earlier entry; the rest could not be ranked. Duplicates were
    counted and said as "modules could not be ranked"."""
    return duplicates_apart(ranking.failed_rows if ranking is not None else [])


def failures_section(files) -> Section:
    """The section from a run's files (`runfiles.RunFiles`): modules that could not be
    ranked, entries ranked as an earlier one (`split_unranked`), planned trials not run yet,
    modules a budget gave no trial, failed trials (probe or fine-tuning), candidates at
    chance on validation (`RunFiles.at_chance`, with what to do), candidates and members left
    out, files missing or damaged; "Nothing failed." when there are none."""
    sec = Section("What failed and why")
    blocks = []
    duplicates, unranked = split_unranked(files.ranking)
    if unranked:
        blocks.append(f"Modules that could not be ranked ({len(unranked)}):")
        blocks.append(Table(["module", "stage", "reason"],
                            [[r["name"], r.get("stage") or "–", r.get("reason") or "–"]
                             for r in unranked]))
    if duplicates:  # ranked, as the earlier entry: no failure, but not a module of its own
        blocks.append(f"Entries ranked as an earlier entry ({len(duplicates)}; the same "
                      "files or embeddings, so scored once, under the earlier name):")
        blocks.append(Table(["entry", "why"], [[r["name"], r.get("reason") or "–"]
                                               for r in duplicates]))
    if files.unfinished:  # neither failed nor skipped: not run yet (an interrupted sweep)
        blocks.append(Inline("Planned trials that have not run: ",
                             files.finish_step(), "."))
        blocks.append(Table(["sweep", "done", "modules without a trial", "trials to run"],
                            [[u.sweep, f"{u.done} of {u.planned}",
                              ", ".join(u.modules_without) or "–", ", ".join(u.missing)]
                             for u in files.unfinished]))
    with command_line():  # the report's commands are the command line's (files.cmd)
        untuned = untried(files.path / CANDIDATES_DIR, untuned_sweeps(files.meta))
    if untuned:  # the budget's doing, not a failure, but a user who asked for them must see it
        blocks.append("Modules the sweep's budget gave no trial:")
        blocks.append(Table(["sweep", "modules", "why"],
                            [[sweep, ", ".join(names), why] for sweep, names, why in untuned]))
    if files.failed:
        # A probe trains no module: "Fine-tuning trials that failed" named a failed probe so.
        kinds = [trial_kind(r) for r in files.failed]
        mixed = len(set(kinds)) > 1
        what = ("Trials" if mixed else "Probe trials" if kinds[0] == "probe" else
                "Fine-tuning trials")
        counts = (f": {kinds.count('fine-tuning')} fine-tuning, {kinds.count('probe')} "
                  f"{'probe' if kinds.count('probe') == 1 else 'probes'}" if mixed else "")
        blocks.append(f"{what} that failed ({len(files.failed)}{counts}):")
        # Each row its way on, as the ensemble's skip lines give it (`candidate.reused_redo`
        # with `failed`): the lines below said "run the same command again", which names no
        # command in a report (its sweep's, `redo_step`).
        blocks.append(Table(["trial", "module"] + (["kind"] if mixed else [])
                            + ["reason", "to redo it, once its cause is fixed"],
                            [[r.get("trial"), r.get("module") or "–"]
                             + ([kind] if mixed else [])
                             + [r.get("reason") or "no reason recorded",
                                redo_step(files, str(r.get("trial")), then_ensemble=True)]
                             for r, kind in zip(files.failed, kinds)]))
        # Why a row deletes the folder first, said once: tune's and fit's closing words
        # (sweeps.rerun_failed_words) went on "then run the same command again", which the
        # rows say with the command. Their removal command (all at once) as code.
        command = rerun_failed_parts(files.path / CANDIDATES_DIR,
                                     [r.get("trial") for r in files.failed])[1]
        one = len(files.failed) == 1
        blocks.append(Inline(
            f"Running the same command again does not retry the "
            f"{counted(len(files.failed), 'failed trial')} (a failed trial counts as "
            f"finished), so {'its' if one else 'each'} row deletes its folder first ("
            + ("" if one else "all at once: "), Code(command), ")."))
    if files.at_chance:  # usable, and in the pool, but they learned next to nothing
        records = {c.trial: c.record for c in files.candidates}
        members = {m.get("trial") for m in (files.ensemble or {}).get("members") or []}
        quick = any(records[t].get("profile") == "quick" for t in files.at_chance)
        with command_line():  # the report's commands are the command line's (files.cmd)
            advice = chance_advice(records[t] for t in files.at_chance)
        blocks.append(f"Candidates at chance on validation ({len(files.at_chance)}"
                      f"{'; kept, as the quick profile fails none' if quick else ''}): "
                      f"{advice}.")
        blocks.append(Table(["trial", "module", "member", "why"],
                            [[t, records[t].get("module") or "–",
                              "yes" if t in members else "no", why]
                             for t, why in files.at_chance.items()]))
    if files.skipped:
        blocks.append(f"Candidates left out of the ensemble ({len(files.skipped)}):")
        # A folder without a readable trial.json, or a finished trial whose table has
        # another class or row count (tune reuses it): its reason named neither the folder
        # nor the command; the rule is the ensemble's skip lines' (`ensemble.redo_kind`),
        # the words the members' rows' (`redo_step`: delete the folder, then its sweep's
        # tune).
        redo = {t: redo_step(files, t, then_ensemble=True) for t, r in files.skipped
                if redo_kind(files.path, t, r)}
        blocks.append(Table(["trial", "reason"] + (["to redo it"] if redo else []),
                            [[t, note(r)] + ([redo.get(t, "–")] if redo else [])
                             for t, r in files.skipped]))
    if files.member_problems:
        # A plain `tune` ran the default sweep, and one of a hubensemble before trial.json
        # recorded its files ("written") is reused while its files are all there (a weights
        # file edited, a test table damaged); tune redoes one whose file changed since it
        # wrote it. The folder goes first, then its sweep; a row naming the fit's command
        # needs no ensemble after it (the fit runs it).
        by_fit = [redone_by_fit(files.path, t) for t in files.member_problems]
        then = (["."] if all(by_fit) else
                [", then ", Code(files.cmd("ensemble")), " selects again"
                 + (" (after a row's tune; the fit's command runs it itself)."
                    if any(by_fit) else ".")])
        blocks.append(Inline(f"Members of ensemble.json the report cannot read "
                             f"({len(files.member_problems)}; its numbers for them are "
                             "ensemble.json's): each is redone as its row says (tune redoes "
                             "a trial whose file is missing or changed since it wrote it; one "
                             "of a hubensemble before trial.json recorded its files, its "
                             "files all there, needs its folder deleted first)",
                             *then))
        blocks.append(Table(["trial", "what is wrong", "to redo it"],
                            [[t, note(r), redo_step(files, t)]
                             for t, r in files.member_problems.items()]))
    if files.problems:
        blocks.append(f"Files missing or damaged ({len(files.problems)}):")
        blocks.append(Bullets(list(files.problems)))
    export_skipped = (files.meta.get("export") or {}).get("skipped") or []
    if export_skipped:
        blocks.append(f"Members left out of the export ({len(export_skipped)}):")
        blocks.append(Bullets([compact(s) for s in export_skipped]))
    if not blocks:
        blocks.append("Nothing failed.")
    return sec.add(*map(isolated_block, blocks))


def redo_step(files, trial: str, *, then_ensemble: bool = False) -> Inline:
    """What redoes trial `trial` of the run of `files` (`runfiles.RunFiles`): "delete
    RUN/candidates/T, then run `hubensemble tune --run RUN --sweep S …`" (its sweep's command
    with the options run.json records under a --budget whose plan holds the trial: the one
    command, `sweepwords.redo_command`, that `sweepwords.redo_words` says; the recorded one
    of a later, smaller tune call reused the done trials and left T undone; the run's tune
    command for
    a trial id of no sweep); "run `…`" alone when the folder is gone. The plain `tune --run
    RUN` it said reuses a trial whose files are all there (a weights file edited since, a
    damaged test table), so it did nothing for such a member, and runs the default sweep.
    "run `…`" alone too for an ok trial tune redoes as it is (`Candidate.complete` false: a
    file changed since tune wrote it), where it said to delete the folder first. With
    `then_ensemble` (a failed or left-out trial's row), ", then `hubensemble ensemble …`"
    after it while the run has no ensemble (the redone trial is in none until it selects;
    the rows of a rank + tune run stopped at tune). "delete RUN/candidates/T (or move it
    aside: …), then run `hubensemble report --run RUN`" for a folder of a sweep the run's
    tune records none of (run.json "tune" -> "sweeps"; a trial id of no sweep too): no tune
    redoes it, and `tune --sweep S` it said started a whole sweep the run never planned."""
    folder = files.path / CANDIDATES_DIR / str(trial)
    sweep = str(trial).split("-", 1)[0]
    if unplanned_folder(files.path, trial, files.meta):
        # No tune of the run plans it (a stray folder, a trial id of no sweep): the way on
        # named `tune --sweep S`, which ran a whole sweep the run never planned.
        return Inline("delete ", Code(str(absolute(folder))), " (or move it aside: no sweep "
                      "the run ran plans it), then run ", Code(files.cmd("report")))
    # The stages after tune, where none selected yet: the redone trial is in no ensemble
    # until one does (the fit's command runs them itself).
    then = ((", then ", Code(files.cmd("ensemble"))) if then_ensemble and files.ensemble
            is None and files.ensemble_note is not None and not redone_by_fit(files.path, trial)
            else ())
    if sweep in SWEEPS:  # a trial id tune writes: its own sweep's command
        with command_line():  # the report's commands are the command line's (files.cmd)
            command = redo_command(absolute(files.path), trial, quoted=False)
    else:
        command = files.cmd("tune")
    cand = read_candidate(folder.parent, str(trial)) if folder.exists() else None
    if not folder.exists() or (cand is not None and cand.status == "ok" and not cand.complete):
        return Inline("run ", Code(command), *then)
    return Inline("delete ", Code(str(absolute(folder))), ", then run ", Code(command), *then)


def trial_kind(record: dict) -> str:
    """"probe" or "fine-tuning" of a trial.json record (`chance.is_probe`: a probe's says
    "kind": "probe", at the top and in its hparams, failed or not)."""
    return "probe" if is_probe(record) else "fine-tuning"
