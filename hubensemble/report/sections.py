"""The report's sections: what each says about a run, built from the run's files."""

from __future__ import annotations

import logging
import os

import numpy as np

from hubensemble import ensemble as ens
from hubensemble.formats import (FIT_STAGES, describe_export, evaluated_earlier_export,
                                 export_identity, export_members_differ, read_export_metadata)
from hubensemble.heldout import changed_files_note, not_held_out_note
from hubensemble.hyperrule import PROBE_HPARAMS
from hubensemble.report.figures import (RELIABILITY_BINS, plot_curve, plot_knn, plot_reliability,
                                        plot_robustness)
from hubensemble.report.checks import note as reader_note
from hubensemble.report.costs import cost_section
from hubensemble.report.failures import failures_section
from hubensemble.report.fmt import (compact as _compact, counted as _n, duration as _seconds,
                                    number as _f)
from hubensemble.report.datarows import (accounting_rows, class_counts_row, decoding_rows,
                                         short as _short)
from hubensemble.report.labels import labels_section
from hubensemble.report.perclass import perclass_section
from hubensemble.text import absolute, names_shown, shown_time
from hubensemble.report.render import Bullets, Code, Figure, Inline, Section, Strong, Table
from hubensemble.report.runfiles import (candidate_accuracy, candidate_ce, in_folder,
                                         knn_vs_finetuned, load_run, spearman)
from hubensemble.chance import members_chance_text
from hubensemble.cost.records import figure
from hubensemble.lockwords import command_line
from hubensemble.data.coverage import coverage_note, few_note, majority_note, unbalanced
from hubensemble.metrics import balanced_accuracy
from hubensemble.ensembletext import size_rule_text, test_missing_text
from hubensemble.rank.ranking import rule_text
from hubensemble.errors import RunError
from hubensemble.rundir import Run

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------

def _members(files):
    return list((files.ensemble or {}).get("members") or [])


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
    if files.ranking is not None:
        items.append(f"Ranked {len(files.ranking.rows)} modules "
                     f"({len(files.ranking.failed_rows)} failed), selected "
                     f"{len(files.ranking.selected)}")
    if files.candidates or files.failed:
        probes = sum(c.record.get("kind") == "probe" for c in files.candidates)
        kinds = (f" ({len(files.candidates) - probes} fine-tuned, {_n(probes, 'probe')})"
                 if probes else "")
        items.append(f"Candidates: {len(files.candidates)} usable{kinds}, "
                     f"{len(files.failed)} failed, {len(files.skipped)} skipped"
                     + (f"; {len(files.at_chance)} of the usable at chance on validation "
                        "(see \"What failed and why\")" if files.at_chance else "")
                     + ("; the sweep is unfinished: "
                        f"{'; '.join(u.text() for u in files.unfinished)} (see \"What failed "
                        "and why\")" if files.unfinished else ""))
    if files.ensemble:
        members = _members(files)
        single = _one_model(files)
        items.append(f"Ensemble: {_n(len(members), 'member')}{f' ({single})' if single else ''}"
                     f" chosen by greedy selection on "
                     f"validation {files.ensemble.get('objective', 'ce')}"
                     + (f"; {len(files.member_problems)} of them missing or unreadable in "
                        "candidates/ (see \"What failed and why\")"
                        if files.member_problems else ""))
        test, (retrained, after) = files.ensemble.get("test"), files.retrained
        for what, t in ((", the export's members retrained on train + val", after),
                        (" before retraining" if after or retrained else "", test)):
            if t and t.get("best_single"):
                e, b = t["ensemble"], t["best_single"]
                items.append(f"Test accuracy{what} {_f(e['accuracy'])} (ensemble) vs "
                             f"{_f(b['accuracy'])} (best single); NLL {_f(e['nll'])} vs "
                             f"{_f(b['nll'])}")
        for split in ("test", "val"):
            note = coverage_note(files.coverage, split)
            if note:
                items.append(f"Coverage: {note}")
    export = _export_path(files)
    foreign = Run(files.path).foreign_export(files.meta)
    if foreign and not files.export:  # not "of an earlier ensemble": of another run
        items.append(Inline("Export (SavedModel): ", Code(foreign[0]), f" now holds "
                            f"{foreign[1]}, not this run's; write this run's again with ",
                            Code(files.cmd("export")), "."))
    elif export and not os.path.exists(export):  # recorded, deleted or moved since
        items.append(Inline("Export (SavedModel): none: ", Code(str(export)), ", which "
                            "run.json records, is gone; write it again with ",
                            Code(Run(files.path).export_command(export)), "."))
    elif export:
        items.append(Inline("Export (SavedModel): ", Code(str(export))))
        stale = _earlier_ensemble(files, read_export_metadata(export, strict=False),
                                  "The export")
        if stale:
            items.append(Inline(stale, " Run ", Code(files.cmd("export")), " again."))
    sec.add(Bullets(items))
    return sec.add(files.meta_note)


def _one_model(files) -> str | None:
    """For an ensemble of one member, the words that say so: it is that one model, nothing is
    averaged (and, when so, it is the best single member, whose rows then repeat its own);
    None for more members."""
    members = _members(files)
    if len(members) != 1:
        return None
    trial = members[0].get("trial")
    best = (((files.ensemble or {}).get("val") or {}).get("best_single") or {}).get("trial")
    return (f"{trial}, {'the best single member itself' if trial == best else 'one model'}: "
            "nothing is averaged")


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
    return (f"{what} is of an earlier ensemble: its {len(done)} member(s) are not the "
            f"{len(now)} of ensemble.json ({', '.join(sorted(set(done) ^ set(now)))} "
            "differ).")


def _export_path(files):
    # One of this ensemble first (`Run.current_export`), else the one the run recorded.
    return files.export or Run(files.path).exported_to(files.meta)


def _data_section(files) -> Section:
    sec = Section("Data")
    task = Run.data_part(files.meta, "task")
    if not task:
        return sec.add(_meta_missing(files) or Inline(
            "run.json records no data: run ", Code(files.cmd("rank")), " (or ",
            Code(files.cmd("fit")), ")."))
    args = Run.data_part(files.meta, "args")
    sizes = task.get("sizes") or {}
    names = list(task.get("class_names") or [])
    more = f", … ({len(names)} in all)" if len(names) > 20 else ""
    shown = ", ".join(names_shown(names)[:20]) + more
    size = task.get("image_size")
    rows = [["name", task.get("name")], ["source", task.get("source")],
            ["data spec", Code(str(args["spec"])) if args.get("spec") else "–"],
            ["examples", ", ".join(f"{s} {sizes.get(s) if sizes.get(s) is not None else '–'}"
                                   for s in ("train", "val", "test"))],
            ["classes", f"{task.get('num_classes')}: {shown}"],
            class_counts_row([str(n) for n in names], {
                s: Run(files.path).labels_of(s) for s in ("train", "val", "test")}),
            ["image size", (f"{size[0]}x{size[1]}" if size else "–")
             + ("" if task.get("same_size", True) else " (median; sizes vary)")],
            ["synthetic / flips", f"{task.get('synthetic')} / {task.get('flip')}"],
            ["fingerprint", Code(f"{str(task.get('fingerprint', ''))[:16]}…")]]
    rows = [r for r in rows if r is not None] + accounting_rows(task)
    return sec.add(Table(["", "value"], rows))


def _meta_missing(files) -> str | None:
    """A short sentence when run.json is missing or damaged (the overview and the failures
    section say how to remake it), else None."""
    if files.meta_note is None:
        return None
    state = "missing" if not (files.path / "run.json").exists() else "unreadable or damaged"
    return f"Not known: run.json is {state} (see the overview)."


def _ranking_section(files) -> Section:
    sec = Section("Ranking")
    r = files.ranking
    if r is None:
        return sec.add(files.ranking_note)
    with command_line():  # the report's commands are the command line's (files.cmd)
        rule = rule_text(r.selection)  # "--top-k 1": it said "top_k (top_k=1)"
    sec.add(Inline(f"{len(r.rows)} modules scored by ", Code(str(r.metric)),
                   f" (k = {r.k}) on {r.examples} training examples, best first; selection "
                   "rule ", Code(rule), f": {len(r.selected)} selected (✓)."))
    chosen = set(r.selected)
    rows = []
    rank = 0
    for row in r.rows:
        ok = row.get("status") == "ok"
        rank += ok
        status = "ok" if ok else f"failed ({row.get('stage') or 'error'}): " \
                                 f"{_short(row.get('reason'))}"
        rows.append([rank if ok else "–", row["name"], row.get("family") or "–",
                     _f(row.get("score")), row.get("dim") or "–", status,
                     "✓" if row["name"] in chosen else ""])
    return sec.add(Table(["rank", "module", "family", r.metric, "dim", "status", "selected"],
                         rows))


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
        return sec.add(files.ranking_note)
    if not files.candidates:
        return sec.add(files.candidates_note)
    points = knn_vs_finetuned(files)
    if not points:
        return sec.add(f"No ranked module has a usable {what} candidate, so there is "
                       "nothing to compare.")
    rho = spearman([p[1] for p in points], [p[2] for p in points])
    if rho is None:
        why = (f"only {len(points)} module(s) have a candidate; a rank correlation needs at "
               "least 3" if len(points) < 3 else "one of the two scores is the same for "
               "every module")
        corr = f"Spearman ρ is undefined: {why}."
    else:
        corr = (f"Spearman ρ = {rho:.3f} over {len(points)} modules (1: the proxy orders the "
                f"modules exactly as their {what} candidates do; 0: no relation).")
    sec.add(f"Each point is a module: x = its {files.ranking.metric} score from the ranking, "
            f"y = the best validation accuracy among its {what} candidates. {corr}")
    members = {m.get("module") for m in _members(files)}
    png = plot_knn(points, rho, files.ranking.metric, members, what=what)
    figures.append(Figure("knn_vs_finetuned", png,
                          f"kNN proxy vs {what} validation accuracy (Spearman ρ = "
                          f"{'undefined' if rho is None else f'{rho:.3f}'})"))
    sec.add(figures[-1])
    sec.add(Table(["module", f"{files.ranking.metric} score", "best val accuracy"],
                  [[n, _f(x), _f(y)] for n, x, y in points]))
    return sec


def _curve_section(files, figures) -> Section:
    sec = Section("Ensemble size")
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_note)
    curve = list(e.get("val_curve") or [])
    size = int(e.get("size") or len(_members(files)) or 0)
    if not curve:
        return sec.add("ensemble.json has no validation curve.")
    best = (e.get("val") or {}).get("best_single")
    sec.add(f"Greedy forward selection (Caruana et al., 2004) over "
            f"{_n(e.get('n_candidates', '?'), 'candidate')}, objective validation "
            f"{e.get('objective', 'ce')}, budget {_n(e.get('budget', '?'), 'pick')} "
            f"({'with' if e.get('with_replacement') else 'without'} replacement). Each step "
            f"adds the candidate that most improves the averaged probabilities; "
            f"{size_rule_text(e)}: {_n(size, 'pick')}, "
            f"{_n(len(_members(files)), 'distinct member')}.")
    stopped = (e.get("limits") or {}).get("stopped") if isinstance(e.get("limits"), dict) \
        else None
    if stopped:  # e.g. --max-members 1: the size rule had one point to choose from
        sec.add(f"The inference budget cut the greedy path short ({stopped}), so the size "
                "rule chose among those picks only (see \"Inference cost\").")
    note = coverage_note(files.coverage, "val")
    if note:
        sec.add(f"Note: {note[0].upper()}{note[1:]}. The selection cannot tell how the "
                "ensemble does on those classes.")
    sec.add(_few_note(files, "val"))
    if e.get("at_chance"):
        with command_line():  # the report's commands are the command line's (files.cmd)
            text = ens.at_chance_text(e["at_chance"])
        sec.add(Inline(Strong("Warning:"), f" {text[0].upper()}{text[1:]}."))
    sec.add(_unfinished_note(files))
    test_curve = e.get("test_curve")
    # --retrain-full: the curves are the candidates' (the exported members are retrained).
    before = "; the candidates, before retraining" if files.retrained[0] else ""
    figures.append(Figure("ensemble_curve", plot_curve(curve, size, best, test_curve),
                          f"Cross-entropy and accuracy vs ensemble size on validation"
                          f"{' and test (test not used for any choice)' if test_curve else ''}"
                          f" (chosen: {size}{before})"))
    sec.add(figures[-1])
    return sec


def _few_note(files, split) -> str | None:
    """"Note: …" naming the classes with 1 to 4 examples in `split` ("val" or "test";
    `coverage.few_note`), whose figures there mean little; None when there are none."""
    y = files.y_val if split == "val" else files.y_test
    note = y is not None and few_note([str(n) for n in files.task.get("class_names") or []],
                                      y, split)
    return f"Note: {note[0].upper()}{note[1:]}." if note else None


def _unfinished_note(files) -> Inline | None:
    """A warning when the ensemble was selected from an unfinished sweep's pool: the sweep is
    unfinished now (what to run), or was when `ensemble` ran (ensemble.json's "unfinished":
    select again from the whole pool); None otherwise."""
    if files.unfinished:
        return Inline(Strong("Warning:"), " this ensemble is selected from part of the pool: ",
                      files.finish_step(), ".")
    if files.ensemble.get("unfinished"):
        return Inline(Strong("Warning:"), " this ensemble was selected before the sweep "
                      f"finished ({files.ensemble['unfinished']} then): run ",
                      Code(files.cmd("ensemble")), " to select from the whole pool.")
    return None


def _test_panels(files):
    """[(title, test probabilities, labels)] of the ensemble and the best single member, and
    the reason when one cannot be drawn."""
    e = files.ensemble
    if files.y_test is None:
        return [], f"{files.path / 'labels' / 'test.npy'} is missing"
    by_trial = {c.trial: c for c in files.candidates}
    members = _members(files)
    panels, notes = [], []
    missing = [m["trial"] for m in members
               if m["trial"] not in by_trial or by_trial[m["trial"]].test_probs is None]
    # Each member once, with the file and what is wrong with it (`RunFiles.member_problems`).
    notes += [files.member_problems.get(t) or f"candidates/{t}/ records no test predictions"
              for t in missing]
    if not missing:
        probs = np.stack([by_trial[m["trial"]].test_probs for m in members])
        weights = {i: float(m.get("weight", 1.0)) for i, m in enumerate(members)}
        panels.append(("ensemble", ens.ensemble_probs(probs, weights), files.y_test))
    best = ((e.get("test") or {}).get("best_single") or {}).get("trial")
    if best in by_trial and by_trial[best].test_probs is not None:
        panels.append((f"best single ({best})", by_trial[best].test_probs, files.y_test))
    elif best and best not in missing:
        c = by_trial.get(best)
        notes.append(in_folder(f"candidates/{best}/", "; ".join(c.notes)) if c and c.notes
                     else f"candidates/{best}/ is missing or not usable")
    return panels, "; ".join(notes)


def _test_section(files, figures) -> Section:
    sec = Section("Best single member vs ensemble on test")
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_note)
    test = e.get("test")
    if not test:
        with command_line():  # the report's commands are the command line's (files.cmd)
            why = test_missing_text(e.get("test_missing")) or "no test metrics were recorded"
        return sec.add(f"No test metrics: {why}. The numbers below the ensemble curve are on "
                       "validation only.")
    retrained, after = files.retrained
    panels, why = _test_panels(files)
    # Unbalanced test classes: each row's balanced accuracy, from the same test probabilities
    # as the per-class table (the candidates': "–" for a retrained member's row).
    balanced = {} if files.y_test is None or not unbalanced(files.y_test) else {
        title.split(" (")[0]: _f(balanced_accuracy(p, y)) for title, p, y in panels}
    rows = []
    for when, t in ((", retrained on train + val", after),
                    (", before retraining" if after or retrained else "", test)):
        b = (t or {}).get("best_single") or {}
        module = next((c.module for c in files.candidates if c.trial == b.get("trial")), "")
        rows += [[f"{who}{when}", _f(m["accuracy"]),
                  *([balanced.get(key, "–") if t is test else "–"] if balanced else []),
                  _f(m["nll"]), _f(m["ece"])]
                 for key, who, m in (("ensemble",
                                      f"ensemble ({_n(len(_members(files)), 'member')})",
                                      (t or {}).get("ensemble")),
                                     ("best single", f"best single: {b.get('trial')}"
                                      + (f" ({module})" if module else ""), b)) if m]
    n = len(files.y_test) if files.y_test is not None else (
        (files.task.get("sizes") or {}).get("test") or "recorded")
    sec.add(f"On the {n} test examples (never used for any choice). The best single member "
            "is the candidate with the best validation objective. NLL = mean cross-entropy "
            f"(lower is better); ECE = expected calibration error over {RELIABILITY_BINS} "
            "equal-width confidence bins (lower is better)." + (
                " The exported members were retrained on train + val (--retrain-full): "
                "their rows are measured on them; the candidates' (before retraining) are the "
                "ones selection saw, and the reliability diagrams'." if after else
                " The exported members were retrained on train + val: these are the members "
                "before retraining (export again to measure them)." if retrained else ""))
    single = _one_model(files)
    if single:
        sec.add(f"The ensemble has one member ({single})" + (
            ": both rows are the same model's." if "itself" in single else
            ": its row is that one model's."))
    note = coverage_note(files.coverage, "test")
    if note:
        sec.add(f"Note: {note[0].upper()}{note[1:]}. These numbers say nothing about "
                "how the models do on those classes.")
    sec.add(_few_note(files, "test"))
    note = files.y_test is not None and majority_note(
        [str(n) for n in files.task.get("class_names") or []], files.y_test, "test")
    if note:
        sec.add(f"Note: {note}, and per class (\"Per-class accuracy on test\" below).")
    if balanced:
        sec.add("The test classes are unbalanced: balanced accuracy is the mean of the "
                "per-class accuracies (\"Per-class accuracy on test\" below), each class "
                "counted once; accuracy counts each example once.")
    sec.add(Table(["model", "accuracy", *(["balanced accuracy"] if balanced else []), "NLL",
                   "ECE"], rows))
    if why:
        sec.add(f"{'No' if not panels else 'Incomplete'} reliability diagram: {why}.")
    if not panels:
        return sec
    figures.append(Figure("reliability", plot_reliability(panels),
                          f"Reliability diagrams on test ({RELIABILITY_BINS} bins): bars = "
                          "accuracy per confidence bin, red lines = the bin's mean "
                          "confidence, numbers = examples in the bin, dashed = perfect "
                          "calibration (bars reaching the red lines)"))
    return sec.add(figures[-1])


def _perclass_section(files) -> Section:
    if files.ensemble is None:
        return Section("Per-class accuracy on test").add(files.ensemble_note)
    return perclass_section(files, _test_panels(files)[0])


def _members_section(files) -> Section:
    sec = Section("Ensemble members")
    members = _members(files)
    if not members:
        return sec.add(files.ensemble_note or "The ensemble has no members.")
    by_trial = {c.trial: c for c in files.candidates}
    hparams = [_meaningful_hparams(m) for m in members]
    keys = list(dict.fromkeys(k for h in hparams for k in h))
    # A key some member lacks (a probe's lr) is a column with "–" in its rows, not "shared".
    varying = [k for k in keys if len({_compact(h.get(k, _ABSENT)) for h in hparams}) > 1]
    shared = [k for k in keys if k not in varying]
    costs = files.costs.costs if files.costs is not None else {}
    rows = []
    for m, h in zip(members, hparams):
        c = by_trial.get(m.get("trial"))
        cost = costs.get(m.get("trial"))
        rows.append([m.get("trial"), m.get("module"), _f(m.get("weight"), 3),
                     m.get("picks", "–"),
                     (_f(candidate_accuracy(files, c))
                      + (" (at chance)" if m.get("trial") in files.at_chance else "")
                      if c else "–"),
                     _f(candidate_ce(files, c)) if c else "–"]
                    + ([figure(cost and cost.gflops, 4), figure(cost and cost.latency(1))]
                       if costs else [])
                    + [_compact(h[k]) if k in h else "–" for k in varying])
    sec.add("Weight = the member's share of the greedy picks (the export averages the "
            "members' probabilities with these weights).")
    sec.add(Table(["trial", "module", "weight", "picks", "val accuracy", "val CE"]
                  + (["GFLOPs", "ms @1"] if costs else []) + varying, rows))
    weak = [m.get("trial") for m in members if m.get("trial") in files.at_chance]
    if weak:
        records = {c.trial: c.record for c in files.candidates}
        with command_line():  # the report's commands are the command line's (files.cmd)
            text = members_chance_text({t: files.at_chance[t] for t in weak}, records)
        sec.add(Inline(Strong("Warning:"), f" {text}."))
    unreadable = _unreadable_hparams([by_trial[t] for t in dict.fromkeys(
        m.get("trial") for m in members) if t in by_trial])
    if unreadable:  # export and distill refuse such a member (Candidate.read_hparams)
        sec.add(Inline(Strong("Warning:"), *unreadable, " Export and distill refuse such a "
                       "member; the table shows its hyperparameters as ensemble.json has them."))
    changed = [f"{t}: {why}" for t in dict.fromkeys(m.get("trial") for m in members)
               if t in by_trial and (why := by_trial[t].weights_changed())]
    if changed:  # edited since tune: its figures here are not of the file an export serves
        sec.add(Inline(Strong("Warning:"), f" {'; '.join(changed)}. The figures here are of the "
                       "weights tune wrote; an export serves the file as it is now: restore the "
                       "file, or delete its candidate folder and run ", Code(files.cmd("tune")),
                       " again (it redoes the trial), then the ensemble."))
    if shared:
        same = ", ".join(f"{k} = {_compact(hparams[0].get(k))}" for k in shared)
        sec.add(f"Shared by every member: {same}.")
    return sec


_ABSENT = object()  # a hyperparameter a member does not have


def _unreadable_hparams(cands) -> list:
    """Each of `cands` whose hyperparameters export and distill refuse, in their words."""
    found = []
    for c in cands:
        try:
            with command_line():  # the report's commands are the command line's (files.cmd)
                c.read_hparams()
        except RunError as e:
            found += [" ", reader_note(f"{e}.")]
    return found


def _meaningful_hparams(member: dict) -> dict:
    """The member's hparams, for a probe only those that mean something for it
    (`hyperrule.PROBE_HPARAMS`): its lr 0 and head_init read as settings it was trained with."""
    h = dict(member.get("hparams") or {})
    return {k: h[k] for k in PROBE_HPARAMS if k in h} if h.get("kind") == "probe" else h


def _robustness_section(files, figures) -> Section:
    sec = Section("Robustness to corruptions")
    rob = files.robustness
    if rob is None:
        return sec.add(files.robustness_note)
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
    sec.add(f"The {'earlier ' if earlier else ''}export evaluated on the "
            f"{rob.get('split', 'test')} split ({rob.get('n')} examples)"
            + _corrupted_copies(rob) + ".")
    # e.g. `evaluate --data` on the run's photos plus new ones; or its own folder, changed since
    for note in (not_held_out_note(rob), changed_files_note(rob)):
        if note:
            sec.add(Inline(Strong("Warning:"), f" {note}."))
    evaluated = rob.get("task") or {}
    rows = decoding_rows(evaluated)
    # Data other than the run's (`evaluate --data`): the Data section's counts are not its.
    if rows and evaluated.get("fingerprint") != files.task.get("fingerprint"):
        sec.add(f"The evaluated data is not the run's; what became of its files "
                f"({evaluated.get('source')}):")
        sec.add(Table(["", "value"], rows))
    if rob.get("best_single_missing"):
        sec.add(f"Ensemble only: {rob['best_single_missing']}")
    elif single:
        sec.add(f"Best single member: {single.get('trial')} ({single.get('module')}).")
    headers = ["condition", "severity", "ensemble acc", "single acc", "ensemble NLL",
               "single NLL", "ensemble ECE", "single ECE"]

    def row(label, sev, entry):
        e, s = entry["ensemble"], entry.get("best_single")
        return [label, sev, _f(e["accuracy"]), _f(s and s["accuracy"]), _f(e["nll"]),
                _f(s and s["nll"]), _f(e["ece"]), _f(s and s["ece"])]

    rows = [row("clean", "–", rob["clean"])]
    for name, by_sev in (rob.get("corruptions") or {}).items():
        rows += [row(name, sev, entry) for sev, entry in by_sev.items()]
    if rob.get("mean_corrupted"):
        rows.append(row("mean over corruptions", "", rob["mean_corrupted"]))
    sec.add(Table(headers, rows))
    if rob.get("corruptions"):
        figures.append(Figure("robustness", plot_robustness(rob),
                              "Accuracy under each corruption (mean over severities): "
                              "ensemble vs best single member"))
        sec.add(figures[-1])
    return sec


def _corrupted_copies(rob: dict) -> str:
    """", and on corrupted copies of it (...)" naming the corruptions and the severities that
    robustness.json holds (ImageNet-C's 1, 3, 5 for 1, 2, 3); "" for a clean-only evaluation.
    It said "severities 1-3" of an `evaluate --corruptions contrast --severities 1`, and
    "corrupted copies" of one without --corruptions."""
    names = list(rob.get("corruptions") or {})
    if not names:
        return " only, with no corrupted copies (`evaluate --corruptions` adds them)"
    sevs = [str(s) for s in (rob.get("severities") or [])]
    imagenet_c = {"1": "1", "2": "3", "3": "5"}
    said = (f"{'severity' if len(sevs) == 1 else 'severities'} {', '.join(sevs)} (ImageNet-C's "
            f"{', '.join(imagenet_c.get(s, '?') for s in sevs)}; see docs/report.md)"
            if sevs else "severities not recorded")
    return (f", and on corrupted copies of it: {len(names)} "
            f"{'corruption' if len(names) == 1 else 'corruptions'} at {said}, seed "
            f"{rob.get('seed')}")


def fit_order(stages: dict) -> list:
    """run.json's "stages" items in the order fit runs them (FIT_STAGES; a stage
    first recorded by a later fit, e.g. evaluate after one without corruptions, came last)."""
    order = {name: i for i, name in enumerate(FIT_STAGES)}
    return sorted(stages.items(), key=lambda kv: order.get(kv[0], len(order)))


def stage_time_note(info: dict) -> str:
    """What a stage's seconds are, of its run.json record ({"seconds", "reused",
    "interrupted_seconds"}): "earlier run, reused" (a stage this run reused), "earlier runs,
    reused" (reused from runs one of which stopped in it: its seconds are both runs'),
    "5.1 s of it before it stopped" (this run finished it after a stop), else "" (this run
    ran it whole). The one wording of the fit summary's line (`report.write.stage_time_line`)
    and the report's "Time per stage", which showed "reused = True, interrupted_seconds =
    13.3" (helper 292)."""
    before = float(info.get("interrupted_seconds") or 0)
    if info.get("reused", False):
        return f"earlier run{'s' if before else ''}, reused"
    return f"{_seconds(before)} of it before it stopped" if before else ""


#: A stage record's fields `stage_time_note` words, and fit's bookkeeping (the stage's key,
#: the options it reads, result digests, files, export record, done flag: run.json keeps
#: them; a stage in the table ran): "reads = 6e3b…" and "reused = True" were the details.
_STAGE_FIELDS_SAID = ("seconds", "reused", "interrupted_seconds", "key", "reads", "digests",
                      "done", "files", "record")


def _stages_section(files) -> Section:
    sec = Section("Time per stage")
    stages = files.meta.get("stages") or {}
    if not stages:
        return sec.add(_meta_missing(files) or Inline(
            "run.json records no stage timings (", Code("hubensemble fit"), " records them)."))
    rows, total = [], 0.0
    for name, info in fit_order(stages):
        info = info if isinstance(info, dict) else {"seconds": info}
        s = info.get("seconds")
        total += float(s or 0)
        extra = [stage_time_note(info)] + [f"{k} = {_compact(v)}" for k, v in info.items()
                                           if k not in _STAGE_FIELDS_SAID]
        rows.append([name, _seconds(s), ", ".join(e for e in extra if e)])
    rows.append(["total", _seconds(total), ""])
    return sec.add(Table(["stage", "time", "details"], rows))


def _versions_section(files) -> Section:
    sec = Section("Versions")
    versions = files.meta.get("versions") or {}
    if not versions:
        return sec.add(_meta_missing(files) or "run.json records no versions.")
    return sec.add(Table(["package", "version"], [[k, v] for k, v in versions.items()]))


def build_sections(run_dir) -> tuple[str, list, list]:
    """(title, [Section], [Figure]) of a run's report; every part degrades to a note saying
    what is missing and which command makes it. Raises RunError as `load_run` does."""
    files = load_run(run_dir)
    figures = []
    name = files.task.get("name")
    title = f"hubensemble report: {name}" if name else "hubensemble report"
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
