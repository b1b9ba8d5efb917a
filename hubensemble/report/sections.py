"""The report's sections: what each says about a run, built from the run's files."""

from __future__ import annotations

import logging
import math
import os

from hubensemble import formats
from hubensemble.fileio import json_object
from hubensemble.formats import (describe_export, evaluated_earlier_export, export_identity,
                                 export_members_differ, read_export_metadata)
from hubensemble.heldout import changed_files_note, not_held_out_note, scored_count
from hubensemble.knnchance import chance_words
from hubensemble.report.budget import refusal_pointer
from hubensemble.report.figures import plot_knn, plot_robustness
from hubensemble.report.costs import cost_section
from hubensemble.report.ensemblesections import (TEST_SECTION, _class_names, _curve_section,
                                                 _members, _members_section, _one_model,
                                                 _perclass_section, _test_section)
from hubensemble.report.failures import failures_section, split_unranked
from hubensemble.report.fmt import counted as _n, number as _f
from hubensemble.report.datarows import (decoding_rows, isolated_block,
                                         names_isolated, short as _short)
from hubensemble.report.labels import labels_section
from hubensemble.report.runsections import _data_section, _stages_section, _versions_section
from hubensemble.text import absolute, shown_time
from hubensemble.report.render import (Bullets, Code, Figure, Inline, Name, Section, Strong,
                                       Table)
from hubensemble.report.runfiles import ENSEMBLE_FIRST, knn_vs_finetuned, load_run, spearman
from hubensemble.lockwords import command_line
from hubensemble.data.coverage import coverage_note
from hubensemble.rank import nearcopies
from hubensemble.rank.ranking import rule_text
from hubensemble.rank.record import failed_counted
from hubensemble.rank.rownotes import row_notes
from hubensemble.rundir import Run
from hubensemble.report.runfiles import untuned_sweeps
from hubensemble.sweepstate import untried

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------

def _overview(files) -> Section:
    task = files.task
    sec = Section("Overview")
    # Absolute, as the report's commands name it: `fit --out runs/gtsrb` wrote "runs/gtsrb",
    # which says nothing to a reader of report.html in another folder (a new-user check).
    items = [Inline("Run directory: ", Code(absolute(files.path)))]
    if files.meta.get("created"):
        items.append(f"Started: {shown_time(files.meta['created'])}; report written "
                     f"{shown_time()}")
    if task:
        items.append(f"Task: {task.get('name')} ({task.get('num_classes')} classes)")
    if files.ranking is not None:  # duplicates were ranked, under an earlier entry
        duplicates, unranked = split_unranked(files.ranking)
        apart = _apart(duplicates, unranked)
        items.append(f"Ranked {_n(len(files.ranking.ok_rows), 'module')}"
                     + (f" (of {_n(len(files.ranking.rows), 'entry', 'entries')}{apart})"
                        if apart else "") + f", selected {len(files.ranking.selected)}")
    if files.candidates or files.failed:
        probes = sum(c.record.get("kind") == "probe" for c in files.candidates)
        kinds = (f" ({len(files.candidates) - probes} fine-tuned, {_n(probes, 'probe')})"
                 if probes else "")
        # One word for one thing: "skipped" is fit's closing line's word for modules the
        # budget gave no trial, which "0 skipped" here (folders left out) seemed to deny.
        with command_line():  # the report's commands are the command line's (files.cmd)
            untuned = untried(files.path / formats.CANDIDATES_DIR, untuned_sweeps(files.meta))
        untuned = sorted({n for _, names, _ in untuned for n in names})
        items.append(f"Candidates: {len(files.candidates)} usable{kinds}, "
                     f"{len(files.failed)} failed, {len(files.skipped)} left out"
                     + (f"; {_n(len(untuned), 'module')} got no trial of the sweep's budget "
                        "(see \"What failed and why\")" if untuned else "")
                     + (f"; {len(files.at_chance)} of the usable at chance on validation "
                        "(see \"What failed and why\")" if files.at_chance else "")
                     + ("; the sweep is unfinished: "
                        f"{'; '.join(u.text() for u in files.unfinished)} (see \"What failed "
                        "and why\")" if files.unfinished else ""))
    if files.ensemble:
        members = _members(files)
        single = _one_model(files)
        items.append(Inline(
            f"Ensemble: {_n(len(members), 'member')}{f' ({single})' if single else ''}"
            f" chosen by greedy selection on validation {files.ensemble.get('objective', 'ce')}"
            + _members_unread(files), refusal_pointer(files, ENSEMBLE_FIRST)))
        test, (retrained, after) = files.ensemble.get("test"), files.retrained
        for what, t in ((", the export's members retrained on train + val", after),
                        (" before retraining" if after or retrained else "", test)):
            if t and t.get("best_single"):
                e, b = t["ensemble"], t["best_single"]
                items.append(f"Test accuracy{what} {_f(e['accuracy'])} (ensemble) vs "
                             f"{_f(b['accuracy'])} (best single); NLL {_f(e['nll'])} vs "
                             f"{_f(b['nll'])}"
                             + _not_numbers(files, "ensemble" if t is test else "export")
                             + (_below_single(files.ensemble, e, b) if t is test else ""))
        for split in ("test", "val"):
            note = coverage_note(files.coverage, split)
            if note:
                items.append(names_isolated(f"Coverage: {note}", _class_names(files)))
    export = _export_path(files)
    foreign = Run(files.path).foreign_export(files.meta)
    if foreign and not files.export:  # not "of an earlier ensemble": of another run
        items.append(Inline("Export (SavedModel): ", Code(foreign[0]), f" now holds "
                            f"{foreign[1]}, not this run's; write this run's again with ",
                            Code(files.cmd("export")), "."))
    elif export and not os.path.exists(export):  # recorded, deleted or moved since
        # Without an ensemble, export is refused: the stages before it first (next_step).
        again = (Inline("write it again with ", Code(Run(files.path).export_command(export)))
                 if files.ensemble is not None else files.next_step("export"))
        items.append(Inline("Export (SavedModel): none: ", Code(str(export)), ", which "
                            "run.json records, is gone; ", again, "."))
    elif export:
        items.append(Inline("Export (SavedModel): ", Code(str(export))))
        # Its files, as predict and evaluate read them before TensorFlow: a damaged
        # saved_model.pb or a variables file gone was named only when a command loaded it.
        if broken := formats.saved_model_problem(export):
            items.append(Inline(f"The export cannot be loaded ({broken}); write it again with ",
                                Code(Run(files.path).export_command(export)), "."))
        stale = _earlier_ensemble(files, read_export_metadata(export, strict=False),
                                  "The export")
        if stale:
            items.append(Inline(stale, " Run ", Code(files.cmd("export")), " again."))
    sec.add(Bullets(items))
    return sec.add(files.meta_note)


#: The overview's test figures (ensemble.json's "test": model, metric).
_OVERVIEW_TEST = [(model, m) for m in ("accuracy", "nll")
                  for model in ("ensemble", "best_single")]


def _apart(duplicates, unranked) -> str:
    """"; 1 ranked as an earlier entry (a duplicate); 2 could not be ranked" of the ranking
    rows `failures.split_unranked` gives, "" for none (`rank.record.failed_counted`'s
    words for a duplicate)."""
    return "".join(f"; {w}" for w in failed_counted(duplicates)) + (
        f"; {len(unranked)} could not be ranked" if unranked else "")


def _below_single(ensemble, e, b) -> str:
    """"; below its best single on test: the one-se rule kept N picks …" when the ensemble's
    test accuracy or NLL (`e`, ensemble.json "test" → "ensemble") is worse than its best
    single member's (`b`) and the one-se rule kept more picks than the best validation
    objective's size: the Overview showed 0.8663 (ensemble) vs 0.8672 (best single) without
    a word (a new user's check); the rule's reason is the "Ensemble size" section's
    (`ensembletext.size_rule_text`)."""
    record = ensemble.get("size_rule") or {}
    if record.get("rule") != "one-se" or record.get("size") == record.get("best_size"):
        return ""

    def _finite(v):
        return isinstance(v, (int, float)) and math.isfinite(v)

    worse = [what for what, bad in (
        ("accuracy", _finite(e.get("accuracy")) and _finite(b.get("accuracy"))
         and e["accuracy"] < b["accuracy"]),
        ("NLL", _finite(e.get("nll")) and _finite(b.get("nll")) and e["nll"] > b["nll"])) if bad]
    if not worse:
        return ""
    return (f"; its test {' and '.join(worse)} came out worse than its best single's: the "
            f"one-se rule kept {record.get('size')} picks where validation was best at "
            f"{record.get('best_size')}, on validation alone (see \"Ensemble size\")")


def _not_numbers(files, which: str) -> str:
    """Where the overview's test line (`which`: "ensemble", ensemble.json's "test"; "export",
    the export metadata's "metrics" "test" of its retrained members) shows "–" for a value
    that is no finite number (`checks.number_problems`: a hand edit, null, NaN, a bool), the
    fields and a pointer to the note of "Best single member vs ensemble on test" that says
    why (`RunFiles.numbers_note`); "" when there is none."""
    bad = {field for field, _ in files.number_notes.get(which) or []}
    top, file = (("test", formats.ENSEMBLE_FILE) if which == "ensemble"
                 else ("metrics.test", f"the export's {formats.METADATA_ASSET}"))
    fields = [f"{top}.{model}.{m}" for model, m in _OVERVIEW_TEST
              if f"{top}.{model}.{m}" in bad]
    if not fields:
        return ""
    named = ", ".join(f'"{f}"' for f in fields)
    return (f" (\"–\": {file}'s {named} {'is' if len(fields) == 1 else 'are'} "
            f"not a finite number; see the note in \"{TEST_SECTION}\")")


def _earlier_ensemble(files, record: dict, what: str) -> str | None:
    """A sentence when `record` (export metadata or robustness.json) holds other members than
    ensemble.json less the ones the export left out: a stand-alone `ensemble` (or `tune` then
    `ensemble`) after the export, whose figures are then not this ensemble's. None if the
    same, or either names none."""
    differs = export_members_differ(record, _members(files),
                                    (files.meta.get("export") or {}).get("skipped"))
    if differs is None:
        return None
    done, now = differs
    if sorted(done) == sorted(now):
        return f"{what} is of an earlier ensemble: its members' weights are not ensemble.json's."
    return (f"{what} is of an earlier ensemble: its {_n(len(done), 'member')} "
            f"{'is' if len(done) == 1 else 'are'} not the {len(now)} of ensemble.json "
            f"({', '.join(sorted(set(done) ^ set(now)))} differ).")


def _export_path(files):
    # One of this ensemble first (`Run.current_export`), else the one the run recorded.
    return files.export or Run(files.path).exported_to(files.meta)


def _ranking_section(files) -> Section:
    sec = Section("Ranking")
    r = files.ranking
    if r is None:
        return sec.add(files.ranking_note)
    with command_line():  # the report's commands are the command line's (files.cmd)
        rule = rule_text(r.selection)  # "--top-k 1": it said "top_k (top_k=1)"
    duplicates, unranked = split_unranked(r)  # neither was scored: said as what they are
    apart = _apart(duplicates, unranked)
    sec.add(Inline(f"{_n(len(r.ok_rows), 'module')} scored by ", Code(str(r.metric)),
                   f" (k = {r.k}) on {r.examples} training examples, best first"
                   + (f" (of {len(r.rows)} entries{apart})" if apart else "")
                   + "; selection rule ", Code(rule), f": {len(r.selected)} selected (✓)."))
    chosen = set(r.selected)
    rows = []
    rank = 0
    for row in r.rows:
        ok = row.get("status") == "ok"
        rank += ok
        # What its load warned of (a model fed the wrong value range, class logits, used
        # frozen) reads with its score: ranking.json's notes (none in an older ranking).
        notes = row_notes(row, short=True)
        status = (f"ok: {_short('; '.join(notes))}" if notes else "ok") if ok else \
            f"failed ({row.get('stage') or 'error'}): {_short(row.get('reason'))}"
        rows.append([rank if ok else "–", row["name"], row.get("family") or "–",
                     _f(row.get("score")), row.get("dim") or "–", status,
                     "✓" if row["name"] in chosen else ""])
    sec.add(Table(["rank", "module", "family", r.metric, "dim", "status", "selected"], rows))
    # Rank's table says which modules are at chance; a score like 0.94 reads as good where
    # the most common class alone holds 95 % of the images (one rule: `knnchance`).
    at_chance = chance_words(r, named=10)
    return sec.add(f"{at_chance[0].upper()}{at_chance[1:]}.") if at_chance else sec


def _tuned(files) -> str:
    """What the candidates are, for the kNN section's words: "fine-tuned" (the paper's
    comparison), "probe" (a `--sweep probe` run) or "fine-tuned or probe"."""
    kinds = {c.record.get("kind") == "probe" for c in files.candidates}
    return {frozenset({True}): "probe", frozenset({True, False}): "fine-tuned or probe"}.get(
        frozenset(kinds), "fine-tuned")


def _knn_section(files, figures) -> Section:
    what = _tuned(files)
    sec = Section(f"kNN proxy vs {what} accuracy")
    if files.ranking is None:
        return sec.add(files.ranking_ref or files.ranking_note)
    if not files.candidates:
        return sec.add(files.candidates_note)
    points = knn_vs_finetuned(files)
    # Frequent near-copy neighbours where the proxy lies well above validation: the proxy
    # overstates accuracy on new images (rank.nearcopies; a share alone is no sign of it).
    near = nearcopies.note(files.ranking.rows, files.ranking.metric,
                           {n: y for n, _, y in points})
    if near:
        sec.add(Inline(Strong("Warning:"), f" {near[0].upper()}{near[1:]}."))
    if not points:
        return sec.add(f"No ranked module has a usable {what} candidate, so there is "
                       "nothing to compare.")
    rho = spearman([p[1] for p in points], [p[2] for p in points])
    if rho is None:
        why = (f"only {_n(len(points), 'module')} {'has' if len(points) == 1 else 'have'} a "
               "candidate; a rank correlation needs at "
               "least 3" if len(points) < 3 else "one of the two scores is the same for "
               "every module")
        corr = f"Spearman ρ is undefined: {why}."
    else:
        corr = (f"Spearman ρ = {rho:.3f} over {len(points)} modules (1: the proxy orders the "
                f"modules exactly as their {what} candidates do; 0: no relation).")
    sec.add(f"Each point is a module: x = its {files.ranking.metric} score from the ranking, "
            f"y = the best validation accuracy among its {what} candidates. {corr}")
    members = {m.get("module") for m in _members(files)}
    without = {r["name"]: r["near_copies"]["score_without"] for r in files.ranking.ok_rows
               if r.get("near_copies")}  # a ranking before it, another metric: none
    png = plot_knn(points, rho, files.ranking.metric, members, what=what,
                   without=without if near else None)
    figures.append(Figure("knn_vs_finetuned", png,
                          f"kNN proxy vs {what} validation accuracy (Spearman ρ = "
                          f"{'undefined' if rho is None else f'{rho:.3f}'})"))
    sec.add(figures[-1])
    sec.add(Table(["module", f"{files.ranking.metric} score"]
                  + ["without near copies"] * bool(near) + ["best val accuracy"],
                  [[n, _f(x)] + [_f(without.get(n))] * bool(near) + [_f(y)]
                   for n, x, y in points]))
    return sec


def _robustness_section(files, figures) -> Section:
    sec = Section("Robustness to corruptions")
    rob = files.robustness
    if rob is None:
        return sec.add(files.robustness_note)
    sec.add(files.numbers_note("robustness", ("clean", "mean_corrupted", "corruptions")))
    single = rob.get("best_single")
    export = _export_path(files)  # the members it left out are not in the evaluation either
    exported = read_export_metadata(export, strict=False) if export else {}
    stale = _earlier_ensemble(files, {**rob, "skipped": exported.get("skipped")},
                              "This evaluation")
    if stale:  # the export first, unless it is this ensemble's already
        first = (Inline(Code(files.cmd("export")), ", then ") if _earlier_ensemble(
            files, exported, "") or not exported else None)
        sec.add(Inline(stale, " Run ", first, Code(files.cmd("evaluate")), "."))
    # The same members, but the export written again since (e.g. export --retrain-full).
    earlier = not stale and evaluated_earlier_export(rob, export)
    if earlier:
        now = describe_export(export_identity(export) or {})
        sec.add(Inline(f"This evaluation is of an earlier export "
                       f"({describe_export(earlier) or 'its time not recorded'}), not of ",
                       Code(str(export)), f"{f' ({now})' if now else ''}, written again since "
                       "with the same members: its figures are not the current export's. Run ",
                       Code(files.cmd("evaluate")), "."))
    if export and not os.path.exists(export):  # the Overview names the command
        sec.add(Inline("The export these figures were measured on, ", Code(str(export)),
                       ", is gone since (see the Overview)."))
    sec.add(Inline(f"The {'earlier ' if earlier else ''}export evaluated on the "
                   f"{rob.get('split', 'test')} split ({scored_count(rob)} examples)",
                   _corrupted_copies(rob), "."))
    # e.g. `evaluate --data` on the run's photos plus new ones; or its own folder, changed since
    for note in (not_held_out_note(rob), changed_files_note(rob)):
        if note:
            sec.add(Inline(Strong("Warning:"), f" {note}."))
    evaluated = json_object(rob.get("task"))  # (load_run refuses a string; from Python too)
    rows = decoding_rows(evaluated)
    # Data other than the run's (`evaluate --data`): the Data section's counts are not its.
    if rows and evaluated.get("fingerprint") != files.task.get("fingerprint"):
        sec.add(f"The evaluated data is not the run's; what became of its files "
                f"({evaluated.get('source')}):")
        sec.add(Table(["", "value"], rows))
    if rob.get("best_single_missing"):
        # its owners, without evaluate
        from hubensemble.evaluationtext import EXPORT_AGAIN, ensemble_only_note

        # Its way on, stored neutral (evaluationtext.EXPORT_AGAIN): the commands of this run, as
        # the report gives every command (it said "export it again", naming none). The note as
        # evaluate shows it: a robustness.json of an earlier version ended in its own way on,
        # which the line then said twice.
        again = (Inline(". To compare with the best single member, run ",
                        Code(files.cmd("export")), ", then ", Code(files.cmd("evaluate")), ".")
                 if rob.get("best_single_way") == EXPORT_AGAIN else None)
        sec.add(Inline(f"Ensemble only: {ensemble_only_note(rob)}", again))
    elif single:
        sec.add(f"Best single member: {single.get('trial')} ({single.get('module')}).")
    headers = ["condition", "severity", "ensemble acc", "single acc", "ensemble NLL",
               "single NLL", "ensemble ECE", "single ECE"]

    def row(label, sev, entry):
        # An entry or its "ensemble" gone (edited by hand): "–", as a value not recorded
        # (a KeyError dropped the whole section).
        e, s = (json_object(json_object(entry).get(k)) for k in ("ensemble", "best_single"))
        return [label, sev, *(_f(m.get(k)) for k in ("accuracy", "nll", "ece") for m in (e, s))]

    rows = [row("clean", "–", rob.get("clean"))]
    for name, by_sev in (rob.get("corruptions") or {}).items():
        rows += [row(name, sev, entry) for sev, entry in json_object(by_sev).items()]
    if rob.get("mean_corrupted"):
        rows.append(row("mean over corruptions", "", rob["mean_corrupted"]))
    sec.add(Table(headers, rows))
    if rob.get("corruptions"):
        figures.append(Figure("robustness", plot_robustness(rob),
                              "Accuracy under each corruption (mean over severities): "
                              "ensemble vs best single member"))
        sec.add(figures[-1])
    return sec


def _corrupted_copies(rob: dict) -> str | Inline:
    """", and on corrupted copies of it (...)" naming the corruptions and the severities that
    robustness.json holds (ImageNet-C's 1, 3, 5 for 1, 2, 3); "" for a clean-only evaluation.
    It said "severities 1-3" of an `evaluate --corruptions contrast --severities 1`, and
    "corrupted copies" of one without --corruptions."""
    names = list(rob.get("corruptions") or {})
    if not names:
        # The command as a code span: in backticks in plain text, the renderers escaped them.
        return Inline(" only, with no corrupted copies (",
                      Code("hubensemble evaluate --corruptions"), " adds them)")
    sevs = [str(s) for s in (rob.get("severities") or [])]
    imagenet_c = {"1": "1", "2": "3", "3": "5"}
    said = (f"{'severity' if len(sevs) == 1 else 'severities'} {', '.join(sevs)} (ImageNet-C's "
            f"{', '.join(imagenet_c.get(s, '?') for s in sevs)}; see docs/report.md)"
            if sevs else "severities not recorded")
    return (f", and on corrupted copies of it: {len(names)} "
            f"{'corruption' if len(names) == 1 else 'corruptions'} at {said}, seed "
            f"{rob.get('seed')}")


def build_sections(run_dir) -> tuple[str, list, list]:
    """(title, [Section], [Figure]) of a run's report; every part degrades to a note saying
    what is missing and which command makes it. Raises RunError as `load_run` does."""
    files = load_run(run_dir)
    figures = []
    name = files.task.get("name")
    # The task's name whole as a Name (<bdi> in <h1>, FSI/PDI in <title>): a right-to-left
    # name in the tab's title read ": hubensemble report" into its direction, and
    # `isolated` left "(2)" of "שלום (2)" outside it.
    title = Inline("hubensemble report: ", Name(str(name))) if name else "hubensemble report"
    # (title, builder, the files it reads, what rewrites them) for `_guarded`.
    run_json = (("run.json",), "restore")
    builders = [
        ("Overview", _overview, ("run.json", "ranking.json", "ensemble.json"), None),
        ("Data", _data_section, *run_json),
        ("Ranking", _ranking_section, ("ranking.json",), "rank"),
        ("kNN proxy vs fine-tuned accuracy", lambda f: _knn_section(f, figures),
         ("ranking.json", "candidates/"), "rank"),
        ("Labels to check", labels_section, ("ranking.json", "knn.npz", "labels/train.npy",
                                             "labels/val.npy", "candidates/"), "rank"),
        ("Ensemble size", lambda f: _curve_section(f, figures), ("ensemble.json",), "ensemble"),
        ("Best single member vs ensemble on test", lambda f: _test_section(f, figures),
         ("ensemble.json",), "ensemble"),
        ("Per-class accuracy on test", _perclass_section,
         ("ensemble.json", "candidates/"), "ensemble"),
        ("Inference cost", lambda f: cost_section(f, figures, _members(f)),
         ("cost.json", "ensemble.json", "distill.json"), "cost"),
        ("Ensemble members", _members_section, ("ensemble.json",), "ensemble"),
        ("Robustness to corruptions", lambda f: _robustness_section(f, figures),
         ("robustness.json",), "evaluate"),
        ("What failed and why", failures_section, ("ranking.json", "candidates/"), None),
        ("Time per stage", _stages_section, *run_json),
        ("Versions", _versions_section, *run_json)]
    sections = [_guarded(files, figures, *b) for b in builders]
    for sec in sections:  # every path, module and class name read in order in report.html
        sec.blocks = [isolated_block(b) for b in sec.blocks]
    return title, sections, figures


def _guarded(files, figures, title, build, sources, fix) -> Section:
    """`build(files)`, or, when a value of a kind no check foresaw breaks it, the section
    with a sentence naming the files it reads, the error and (`fix`: a command of
    `RunFiles.cmd`, or a sentence) what writes them again: the rest of the report is still
    written (the promise: never a traceback)."""
    drawn = len(figures)
    try:
        return build(files)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as e:
        del figures[drawn:]  # a figure of the broken section would be shown elsewhere
        where = " or ".join(str(files.path / s) for s in sources)
        again = (Inline("; ", Code(files.cmd(fix)), " writes it again") if fix in files.CMDS
                 else Inline("; restore it from a copy, or run ", Code(files.cmd("rank")),
                             " again, which writes it") if fix == "restore" else "")
        # The error may be the report's own (a bug, or the environment: an unknown
        # MPLBACKEND once came out here as the run's fault), so the files are a suspect, not
        # the culprit, and the way to tell is said.
        text = Inline(f"This section could not be drawn ({type(e).__name__}: {e}): {where} "
                      "may hold a value of an unexpected kind (edited by hand, or written by "
                      "another version)", again, ". If it still cannot be drawn after that, "
                      "the fault is hubensemble's: ", Code(files.cmd("report") + " -v"),
                      " logs where it broke.")
        log.warning("the report cannot show %r: %s", title, text)
        log.debug("where %r broke", title, exc_info=True)  # -v: a bug here, not bad data
        return Section(title).add(text)


def _members_unread(files) -> str:
    """"; 1 of them failed, 1 missing (see …)" of the members the report cannot read
    (`RunFiles.member_problems`), by why: failed (its trial.json records a failed trial, run
    again since the ensemble chose it), missing (its folder gone from candidates/) or
    unreadable; "" when there are none. A failed member was counted "missing or unreadable"."""
    failed = {r.get("trial") for r in files.failed}
    kinds = ["failed" if t in failed else "unreadable"
             if (files.path / formats.CANDIDATES_DIR / t).is_dir() else "missing"
             for t in files.member_problems]
    said = [f"{kinds.count(k)}{' of them' if not i else ''} {k}" for i, k in enumerate(
        k for k in ("failed", "missing", "unreadable") if k in kinds)]
    return f"; {', '.join(said)} (see \"What failed and why\")" if said else ""
