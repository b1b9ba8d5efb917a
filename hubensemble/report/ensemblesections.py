"""The report's sections on RUN/ensemble.json: the ensemble size curve, the best single member
vs the ensemble on test, the per-class accuracy on test and the members' table."""

from __future__ import annotations

from hubensemble import ensemble as ens
from hubensemble.cost.records import figure
from hubensemble.data.coverage import coverage_note, few_note, majority_note, unbalanced
from hubensemble.ensembletext import (chance_sentences, run_test_copies, size_rule_text,
                                      test_missing_text)
from hubensemble.errors import RunError
from hubensemble.hyperrule import PROBE_HPARAMS
from hubensemble.lockwords import command_line
from hubensemble.metrics import balanced_accuracy
from hubensemble.report.checks import note as reader_note
from hubensemble.report.datarows import names_isolated
from hubensemble.report.budget import refusal_note
from hubensemble.report.failures import redo_step
from hubensemble.report.figures import RELIABILITY_BINS, plot_curve, plot_reliability
from hubensemble.report.fmt import compact as _compact, counted as _n, number as _f
from hubensemble.report.perclass import perclass_section
from hubensemble.report.render import Code, Figure, Inline, Section, Strong, Table
from hubensemble.report.runfiles import candidate_accuracy, candidate_ce, in_folder
from hubensemble.sweepwords import redone_by_fit
from hubensemble.trialterms import PROBE_TERMS_NOTE, scaling_note, trial_terms


def _members(files):
    return list((files.ensemble or {}).get("members") or [])


def _chance_texts(files) -> tuple[str | None, str | None]:
    """(the selection section's sentence on the ensemble at chance, the members section's on
    its members at chance), `ensembletext.chance_sentences` of ensemble.json's "at_chance"
    and the members `files.at_chance` names, in the command line's words (files.cmd): one
    sentence for an ensemble of one member at chance, whose figures are the ensemble's."""
    members = [m.get("trial") for m in _members(files)]
    weak = {t: files.at_chance[t] for t in members if t in files.at_chance}
    with command_line():  # the report's commands are the command line's (files.cmd)
        return chance_sentences((files.ensemble or {}).get("at_chance"), weak,
                                {c.trial: c.record for c in files.candidates}, members)


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


def _curve_section(files, figures) -> Section:
    sec = Section("Ensemble size")
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_note)
    sec.add(refusal_note(files))  # newer options refused for their budget: said first
    sec.add(files.numbers_note("ensemble", ("val", "val_curve")))
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
        sec.add(names_isolated(f"Note: {note[0].upper()}{note[1:]}. The selection cannot tell "
                               "how the ensemble does on those classes.", _class_names(files)))
    sec.add(_few_note(files, "val"))
    text = _chance_texts(files)[0]
    if text:
        sec.add(Inline(Strong("Warning:"), f" {text[0].upper()}{text[1:]}."))
    sec.add(_unfinished_note(files))
    sec.add(_grown_pool_note(files))
    test_curve = e.get("test_curve")
    # --retrain-full: the curves are the candidates' (the exported members are retrained).
    before = "; the candidates, before retraining" if files.retrained[0] else ""
    figures.append(Figure("ensemble_curve", plot_curve(curve, size, best, test_curve),
                          f"Cross-entropy and accuracy vs ensemble size on validation"
                          f"{' and test (test not used for any choice)' if test_curve else ''}"
                          f" (chosen: {size}{before})"))
    sec.add(figures[-1])
    return sec


#: The title of the section on ensemble.json's test figures (`_test_section`).
TEST_SECTION = "Best single member vs ensemble on test"


def _class_names(files) -> list[str]:
    """The run's class names (run.json's data.task), str() of each; [] when it records none."""
    return [str(n) for n in (files.task or {}).get("class_names") or []]


def _few_note(files, split) -> str | Inline | None:
    """"Note: …" naming the classes with 1 to 4 examples in `split` ("val" or "test";
    `coverage.few_note`), whose figures there mean little, its right-to-left names isolated
    (`names_isolated`); None when there are none."""
    y = files.y_val if split == "val" else files.y_test
    note = y is not None and few_note(_class_names(files), y, split)
    return names_isolated(f"Note: {note[0].upper()}{note[1:]}.", _class_names(files)) \
        if note else None


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


def _grown_pool_note(files) -> Inline | None:
    """A warning when the pool holds more usable candidates than the ensemble was selected
    from (ensemble.json's "n_candidates"; the candidates it left out, its "skipped", not
    counted): a tune since (another sweep, a larger --budget) added them, and the report
    said "greedy selection over 4 candidates" beside "Candidates: 5 usable" with no word of
    it. None when none was added (or the record lacks its count)."""
    e = files.ensemble
    known = e.get("n_candidates")
    if type(known) is not int:
        return None
    left_out = {s.get("trial") for s in e.get("skipped") or [] if isinstance(s, dict)}
    now = len([c for c in files.candidates if c.trial not in left_out])
    if now <= known:
        return None
    return Inline(Strong("Warning:"), f" this ensemble was selected from {_n(known, 'candidate')}"
                  f"; the pool holds {now} usable now ({now - known} added since, e.g. by a "
                  "later tune): run ", Code(files.cmd("ensemble")),
                  " to select from them all.")


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
        # The tables as they are (ensemble_probs reads one at a time), not a stack of them.
        weights = {i: float(m.get("weight", 1.0)) for i, m in enumerate(members)}
        panels.append(("ensemble", ens.ensemble_probs(
            [by_trial[m["trial"]].test_probs for m in members], weights), files.y_test))
    best = ((e.get("test") or {}).get("best_single") or {}).get("trial")
    if best in by_trial and by_trial[best].test_probs is not None:
        panels.append((f"best single ({best})", by_trial[best].test_probs, files.y_test))
    elif best and best not in missing:
        c = by_trial.get(best)
        notes.append(in_folder(f"candidates/{best}/", "; ".join(c.notes)) if c and c.notes
                     else f"candidates/{best}/ is missing or not usable")
    return panels, "; ".join(notes)


def _test_section(files, figures) -> Section:
    sec = Section(TEST_SECTION)
    e = files.ensemble
    if e is None:
        return sec.add(files.ensemble_ref or files.ensemble_note)
    test = e.get("test")
    if not test:
        with command_line():  # the report's commands are the command line's (files.cmd)
            why = test_missing_text(e.get("test_missing"))
        if _test_panels(files)[0]:  # the per-class table below is drawn from them all the same
            return sec.add(Inline(
                f"{files.path / 'ensemble.json'} records no test metrics"
                f"{f' ({why})' if why else ''}, but the members' test predictions ("
                f"{files.path / 'candidates'}/*/test_probs.npy) and test labels are there: "
                "\"Per-class accuracy on test\" below is computed from them. ",
                Code(files.cmd("ensemble")),
                " records the ensemble's and the best single member's test metrics."))
        return sec.add(f"No test metrics: {why or 'no test metrics were recorded'}. The numbers "
                       "below the ensemble curve are on validation only.")
    sec.add(files.numbers_note("ensemble", ("test", "test_curve")))
    retrained, after = files.retrained
    sec.add(files.numbers_note("export", ("metrics",)))  # its retrained members' figures
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
    with command_line():  # the report's way on is the command line's (fit --dedupe)
        copies = run_test_copies(files.meta)
    if copies:  # copies of training images lift the figures (heldoutwords)
        sec.add(Inline(Strong("Note:"), f" the test figures are {copies}."))
    single = _one_model(files)
    if single:
        sec.add(f"The ensemble has one member ({single})" + (
            ": both rows are the same model's." if "itself" in single else
            ": its row is that one model's."))
    note = coverage_note(files.coverage, "test")
    if note:
        sec.add(names_isolated(f"Note: {note[0].upper()}{note[1:]}. These numbers say nothing "
                               "about how the models do on those classes.", _class_names(files)))
    sec.add(_few_note(files, "test"))
    note = files.y_test is not None and majority_note(_class_names(files), files.y_test, "test")
    if note:
        sec.add(names_isolated(f"Note: {note}, and per class (\"Per-class accuracy on test\" "
                               "below).", _class_names(files)))
    if balanced:
        sec.add("The test classes are unbalanced: balanced accuracy is the mean of the "
                "per-class accuracies (\"Per-class accuracy on test\" below), each class "
                "counted once; accuracy counts each example once.")
    sec.add(Table(["model", "accuracy", *(["balanced accuracy"] if balanced else []), "NLL",
                   "ECE"], rows))
    if why:
        sec.add(reader_note(f"{'No' if not panels else 'Incomplete'} reliability diagram: {why}."))
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
        return Section("Per-class accuracy on test").add(files.ensemble_ref or
                                                         files.ensemble_note)
    return perclass_section(files, _test_panels(files)[0])


def _members_section(files) -> Section:
    sec = Section("Ensemble members")
    members = _members(files)
    if not members:
        return sec.add(files.ensemble_ref or files.ensemble_note
                       or "The ensemble has no members.")
    by_trial = {c.trial: c for c in files.candidates}
    hparams = [_meaningful_hparams(m, members) for m in members]
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
    text = _chance_texts(files)[1]  # None for one member: the selection section said it
    if text:
        sec.add(Inline(Strong("Warning:"), f" {text}."))
    unreadable = _unreadable_hparams([by_trial[t] for t in dict.fromkeys(
        m.get("trial") for m in members) if t in by_trial])
    if unreadable:  # export and distill refuse such a member (Candidate.read_hparams)
        sec.add(Inline(Strong("Warning:"), *unreadable, " Export and distill refuse such a "
                       "member; the table shows its hyperparameters as ensemble.json has them."))
    changed = [(t, why) for t in dict.fromkeys(m.get("trial") for m in members)
               if t in by_trial and (why := by_trial[t].weights_changed())]
    for t, why in changed:  # edited since tune: its figures are not of the file; export refuses it
        # tune redoes a trial whose file changed since it wrote it, and reuses one of a
        # version before trial.json recorded its files: the folder goes first then
        # (`failures.redo_step` decides); the fit's command (in a fit's folder) runs the
        # ensemble after it itself.
        then = [] if redone_by_fit(files.path, t) else [", then ", Code(files.cmd("ensemble"))]
        sec.add(Inline(Strong("Warning:"), f" {t}: {why}. The figures here are of the weights "
                       "tune wrote; export refuses it (--skip-missing leaves it out): restore "
                       "the file, "
                       "or ", redo_step(files, t), " (it redoes the trial)", *then, "."))
    if shared:
        same = ", ".join(f"{k} = {_compact(hparams[0].get(k))}" for k in shared)
        sec.add(f"Shared by every member: {same}.")
    probes = [m for m in members if (m.get("hparams") or {}).get("kind") == "probe"]
    if probes:  # "steps = 1000" and weight_decay were a probe's L-BFGS limit and λ, unsaid
        sec.add(f"{PROBE_TERMS_NOTE[0].upper()}{PROBE_TERMS_NOTE[1:]}"
                + ("." if len(probes) == len(members) else
                   "; in this table a probe's weight_decay is its l2_strength and its "
                   "steps its lbfgs_max_iterations."))
    if len(probes) < len(members):  # lr 1.4e-5, steps 40 read as outside A.2's space
        for note in _scaling_notes(files.meta):
            sec.add(f"Fine-tuning settings are the paper's scaled by the run's {note}.")
    return sec


def _scaling_notes(meta) -> list[str]:
    """`trialterms.scaling_note` of each distinct profile run.json's tune sweeps record."""
    sweeps = ((meta or {}).get("tune") or {}).get("sweeps") or {}
    profiles = [s.get("profile") for s in sweeps.values() if isinstance(s, dict)]
    return list(dict.fromkeys(scaling_note(p) for p in profiles if isinstance(p, dict)))


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


def _meaningful_hparams(member: dict, members: list) -> dict:
    """The member's hparams, for a probe only those that mean something for it
    (`hyperrule.PROBE_HPARAMS`): its lr 0 and head_init read as settings it was trained with;
    in a probe's own terms (`trialterms.trial_terms`: l2_strength, lbfgs_max_iterations) when
    every one of `members` is a probe (a mixed table keeps one column per stored field)."""
    h = dict(member.get("hparams") or {})
    if h.get("kind") != "probe":
        return h
    if all((m.get("hparams") or {}).get("kind") == "probe" for m in members):
        return trial_terms(h)
    return {k: h[k] for k in PROBE_HPARAMS if k in h}
