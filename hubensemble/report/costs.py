"""The report's inference-cost section: costs of the ensemble, the best single member, the
distilled student and the TFLite export, and accuracy vs GFLOPs (the paper's Figure 2)."""

from __future__ import annotations

import math
from pathlib import Path

from hubensemble import ensemble as ens
from hubensemble import metrics
from hubensemble.cost.records import figure
from hubensemble.report.figures import BUDGET_SPAN, budget_drawn, plot_cost
from hubensemble.report.render import Bullets, Code, Figure, Inline, Section, Table
from hubensemble.rundir import Run


def _unknown(value) -> bool:
    """None, or NaN: a figure not recorded, or no finite number in its file
    (`checks.number_problems` sets those to NaN and the section's note names them)."""
    return value is None or value != value


def _f(value, digits=4) -> str:
    return "–" if _unknown(value) else f"{float(value):.{digits}f}"


def _gflops(value) -> str:
    return figure(None if _unknown(value) else value, 4)


def _params(value) -> str:
    return "–" if _unknown(value) else f"{int(value):,}"


def _ms(cost, batch) -> str:
    value = ((cost or {}).get("latency_ms") or {}).get(str(batch))
    return figure(value, 2)


def cost_row(name, members, cost, test_acc, val_acc) -> list:
    """One row of the cost table: name, members, GFLOPs, parameters, ms at batch 1 and 64,
    test and validation accuracy ("–" for what is unknown)."""
    cost = cost or {}
    return [name, members, _gflops(cost.get("gflops")), _params(cost.get("params")), _ms(cost, 1),
            _ms(cost, 64), _f(test_acc), _f(val_acc)]


def _acc(files, probs, split):
    y = files.y_test if split == "test" else files.y_val
    return None if probs is None or y is None else metrics.accuracy(probs, y)


def _members_probs(files, members, split):
    by_trial = {c.trial: c for c in files.candidates}
    tables = [getattr(by_trial.get(m["trial"]), f"{split}_probs", None) for m in members]
    if not members or any(t is None for t in tables):
        return None
    weights = {i: float(m.get("weight", 1.0)) for i, m in enumerate(members)}
    return ens.ensemble_probs(tables, weights)  # one table at a time, no stack


def cost_section(files, figures, members) -> Section:
    """The "Inference cost" section (see the module docstring); a note when the run has no
    ensemble or no costs yet."""
    sec = Section("Inference cost")
    e = files.ensemble
    if e is None:  # said whole in "Ensemble size"
        sec.add(files.ensemble_ref or files.ensemble_note)
        return _student_alone(sec, files)
    if files.costs is None:  # the student's and the TFLite model's own figures still hold
        sec.add(files.costs_note or Inline("No inference costs: run ", Code(files.cmd("cost")),
                                           "."))
        return _distill_and_tflite(sec, files)
    costs = files.costs.costs
    machine = files.costs.machine or {}
    sec.add("FLOPs per image are counted on each member's traced graph at its serving "
            "resolution (2 x the multiply-accumulates of convolutions and matrix products); "
            "latency is the median ms per call at batch 1 and 64 measured on "
            f"{machine.get('cpu', 'this machine')} ({machine.get('cores', '?')} cores) — "
            "machine-dependent. An ensemble's cost is the sum of its distinct members', a "
            "frozen backbone that several share counted once (docs/cost.md).")
    uncounted = {(c.module, c.size): c.not_counted() for c in costs.values() if c.macs is None}
    if uncounted:  # "–" in the GFLOPs columns: why, in words
        by_why: dict = {}  # each reason once: one per module and size repeated it
        for (module, size), why in sorted(uncounted.items()):
            by_why.setdefault(why, []).append(f"{module} at {size} px")
        sec.add("GFLOPs not counted (– below) for " + "; ".join(
            f"{', '.join(where)}: {why}" for why, where in by_why.items())
            + ". Their parameters and latency are measured.")
    from hubensemble.cost import total_cost

    member_costs = [costs.get(m["trial"]) for m in members]
    ens_cost = (e.get("cost") or {}).get("ensemble")
    if ens_cost is None and members and all(member_costs):
        ens_cost = total_cost(member_costs)
    # --retrain-full: the exported members' own test figures first (measured by the export
    # after retraining; no validation figure: validation trained them), then the candidates'
    # that selection saw, each labelled (a new-user check: the table gave the latter alone,
    # unlabelled, beside a summary of the former).
    retrained, after = files.retrained
    before = ", before retraining" if retrained else ""
    fresh = [cost_row("ensemble, retrained on train + val", len(members), ens_cost,
                      after["ensemble"]["accuracy"], None)] if after else []
    rows = [cost_row(f"ensemble{before}", len(members), ens_cost,
                     _acc(files, _members_probs(files, members, "test"), "test"),
                     _acc(files, _members_probs(files, members, "val"), "val"))]
    by_trial = {c.trial: c for c in files.candidates}
    best = ((e.get("val") or {}).get("best_single") or {}).get("trial")
    for key, label in (("best_single", "best single"),
                       ("best_single_in_budget", "best single within the budget")):
        trial = ((e.get("val") or {}).get(key) or {}).get("trial")
        if trial is None or (key != "best_single" and trial == best):
            continue
        c = by_trial.get(trial)
        cost = costs.get(trial)
        measured = (after or {}).get(key) or {}  # None when no member: never retrained
        if measured.get("trial") == trial:
            fresh.append(cost_row(f"{label} ({trial}), retrained on train + val", 1,
                                  cost and cost.summary(), measured.get("accuracy"), None))
        rows.append(cost_row(f"{label} ({trial}){before}", 1, cost and cost.summary(),
                             _acc(files, c and c.test_probs, "test"),
                             _acc(files, c and c.val_probs, "val")))
    rows = fresh + rows
    student = (files.distill or {}).get("student")
    if student:
        rows.append(cost_row(f"distilled student ({student.get('module')})", 1,
                             student.get("cost"), (student.get("test") or {}).get("accuracy"),
                             (student.get("val") or {}).get("accuracy")))
    sec.add(Table(["model", "members", "GFLOPs", "params", "ms @1", "ms @64", "test acc",
                   "val acc"], rows))
    if all(row[6] == "–" for row in rows):  # a column of "–" without a word (no test split)
        from hubensemble.ensembletext import test_missing_text
        from hubensemble.lockwords import command_line

        with command_line():  # the report's commands are the command line's
            why = test_missing_text(e.get("test_missing")) or "no test predictions to score"
        sec.add(f"No test accuracy (\"–\"): {why}.")
    if retrained:
        sec.add("The exported members were retrained on train + val (--retrain-full): "
                + ("the rows \"retrained on train + val\" are measured on them (no validation "
                   "accuracy: validation trained them); " if after else
                   "this export was made before their test figures were measured (export "
                   "again to measure them); ")
                + "the rows \"before retraining\" and the figure are the candidates' that "
                "selection saw (a best single member that is no member of the ensemble was "
                "never retrained).")
    shared = _shared_backbones(files, members, costs)
    if shared:
        sec.add(shared)
    unmeasured = sum(c is None for c in member_costs)
    if unmeasured:  # e.g. a `tune` and `ensemble` by hand after the last cost pass (a check)
        stale = [f"{m['trial']}: {files.costs.stale[m['trial']]}" for m in members
                 if m.get("trial") in files.costs.stale]  # tuned again since cost ran
        sec.add(Inline(f"{unmeasured} of the {len(members)} members "
                       f"{'has' if unmeasured == 1 else 'have'} no measured cost "
                       "(\"–\")" + (f" ({'; '.join(stale)})" if stale else "") + ": run ",
                       Code(files.cmd("cost")), "."))
    limits = e.get("limits")
    if limits:
        shown = ", ".join(f"--{k.replace('_', '-')} "
                          f"{v if k == 'max_members' else format(v, 'g')}"
                          for k, v in limits.items()
                          if k.startswith("max_") and v is not None)
        sec.add(f"Selected under the inference budget {shown}: a candidate that would take "
                "the ensemble over it was not eligible"
                + (f"; {limits['stopped']}" if limits.get("stopped") else "") + ".")
        left_out = _budget_left_out(limits, e.get("cost"))
        if left_out:
            sec.add(Bullets(left_out))
    _distill_and_tflite(sec, files)
    panels = _figure_panels(files, e, costs, members, student, retrained)
    if panels:
        budget = (limits or {}).get("max_gflops")
        caption = ("Accuracy vs inference GFLOPs per image (the paper's Figure 2 for this "
                   "run): every candidate, the greedy path (each prefix; red star: the chosen "
                   "ensemble)" + (", the distilled student" if student else ""))
        if budget is not None and not budget_drawn(panels, budget):
            caption += (f". The budget --max-gflops {budget:g} is not drawn: it is over "
                        f"{BUDGET_SPAN:g} times the largest cost shown")
        figures.append(Figure("accuracy_vs_gflops", plot_cost(panels, budget), caption + (
            ". Test is never used for any choice." if len(panels) > 1 else "")))
        sec.add(figures[-1])
    return sec


def _budget_left_out(limits, cost) -> list[str]:
    """The candidates the inference budget left out without a cost to weigh (ensemble.json's
    limits "not_costed"), in the words the ensemble command prints
    (`ensembletext.left_out_lines`): those whose module could not be costed, and those whose
    GFLOPs were not counted, with why and which budget can take them. [] when none. The
    report said only "a candidate that would take the ensemble over it was not eligible"."""
    from hubensemble.ensembletext import left_out_lines
    from hubensemble.lockwords import command_line

    with command_line():  # the report's options are the command line's (--max-gflops)
        return [line.strip() for line in left_out_lines(limits.get("not_costed") or [],
                                                        cost if isinstance(cost, dict) else {})]


def _shared_backbones(files, members, costs) -> str | Inline | None:
    """The sentence that says which members share a frozen backbone and what each such member
    adds (`cost.sharing`, the rule of ensemble.json's totals and the export's), or None when
    none shares: the members table gives each member's own cost, which alone did not add up
    to the ensemble's row (two probes of one module at 0.0044 GFLOPs each, 0.0044 in all).
    Led by a note (Inline) when a member's catalogue entry in run.json is damaged
    (`_damaged_member_entries`)."""
    from hubensemble.cost.sharing import candidate_key, head_cost, key_groups
    from hubensemble.runspecs import readable_entries

    by_trial = {c.trial: c for c in files.candidates}
    specs = readable_entries(files.meta.get("modules"))  # as read: the damage said, below
    trials = [m["trial"] for m in members]
    keys = [candidate_key(by_trial[t], specs, costs.get(t))
            if t in by_trial else None for t in trials]
    said = []
    for group in key_groups(keys):
        first = trials[group[0]]
        for i in group[1:]:
            cost = costs.get(trials[i])
            head = head_cost(cost) if cost is not None else None
            adds = (f" and adds its head only ({head.gflops:.2g} GFLOPs, "
                    f"{_params(head.params)} params, no ms of its own)" if head else "")
            said.append(f"{trials[i]} runs the {by_trial[first].module} backbone of {first}"
                        f"{adds}")
    damage = _damaged_member_entries(files, members)
    if not said and not damage:
        return None
    text = ("Members that share a frozen backbone (probes of one module at one size) run it "
            "once, in the export as in the ensemble's row: " + "; ".join(said) + ". The "
            "members table gives each member's own cost, the backbone included.") if said else ""
    if damage:  # counted as sharing with no one; export refuses the entry
        from hubensemble.report.checks import note

        return note(f"Whether the members of {', '.join(sorted(damage))} share a frozen "
                    f"backbone is not known, and export refuses them: "
                    f"{next(iter(damage.values()))}." + (f" {text}" if text else ""))
    return text


def _damaged_member_entries(files, members) -> dict[str, str]:
    """{module: `runspecs.module_spec`'s words} of the ensemble's members' modules whose
    catalogue entry in run.json a hand edit damaged (a missing entry is no damage: a pool
    copied without its record). The report said nothing of them: their members counted as
    sharing a backbone with no one."""
    from hubensemble.errors import RunError, first_line
    from hubensemble.runspecs import module_spec

    recorded = files.meta.get("modules")
    if not isinstance(recorded, dict):  # no record, or a damaged one (run.json's note says)
        return {}
    damage = {}
    for name in sorted({m.get("module") for m in members} & set(recorded)):
        try:
            module_spec(Run(files.path), name, modules=recorded)
        except RunError as e:
            damage[name] = first_line(e)
    return damage


def _student_alone(sec, files) -> Section:
    """`sec` with the distilled student's row (distill.json) when the run has a student but
    no ensemble.json (deleted since distill ran): the report showed no word of the student,
    whose files and figures still hold; its teacher's comparison is not said (the ensemble
    it was distilled from is gone; the note before names the command that selects one)."""
    student = (files.distill or {}).get("student")
    if not isinstance(student, dict):
        return sec
    sec.add("The distilled student (distill.json) remains, but not the ensemble it was "
            "distilled from, so no comparison with it is given:")
    return sec.add(Table(["model", "members", "GFLOPs", "params", "ms @1", "ms @64",
                          "test acc", "val acc"],
                         [cost_row(f"distilled student ({student.get('module')})", 1,
                                   student.get("cost"),
                                   (student.get("test") or {}).get("accuracy"),
                                   (student.get("val") or {}).get("accuracy"))]))


def distill_command(run_dir) -> str:
    """The command line that distils run `run_dir`'s student again by the same rule:
    "hubensemble distill --run RUN --student NAME" with the options its trial.json records
    off their defaults (`distillcompare.distilled_with`: --train-batch-size, --distill-init,
    … as given), the student named by RUN/distill.json's "student" ("module", "path"). The
    report cited a bare `hubensemble distill --run RUN`, which left out the student's
    --train-batch-size and the rest and distilled another student. The bare command when
    distill.json or the student's trial.json is missing or unreadable (what it can say)."""
    from hubensemble.distillcompare import distilled_with, read_distill
    from hubensemble.fileio import read_json
    from hubensemble.candidate import TRIAL_FILE
    from hubensemble.text import absolute, shell, shell_word

    words = [f"hubensemble distill --run {shell(absolute(run_dir))}"]
    student = (read_distill(run_dir) or {}).get("student")
    module = student.get("module") if isinstance(student, dict) else None
    if not isinstance(module, str) or not module:
        return words[0]
    words.append(f"--student {shell_word(module)}")
    try:
        record = read_json(Path(run_dir) / str(student.get("path")) / TRIAL_FILE)
    except (OSError, ValueError, TypeError):
        record = None
    if isinstance(record, dict):
        words.append(distilled_with(record)[0])
    return " ".join(filter(None, words))


def _distill_and_tflite(sec, files) -> Section:
    """The distilled student's share of the ensemble's gain (or why there is none) and the
    TFLite model of the last export, added to `sec`."""
    distill = files.distill
    gap = (distill or {}).get("gap") or {}
    # Its share of the gain is not said from a figure that is no finite number: the note
    # names the field instead (`numbers_note`); the student's row shows "–" for it.
    damaged = {f.split(".")[0] for f, _ in files.number_notes.get("distill") or []}
    if distill and damaged & {"gap", "gap_closed", "cost_ratio"}:
        sec.add(files.numbers_note("distill", ("student", "gap", "gap_closed", "cost_ratio")))
        distill = gap = None
    elif distill:
        sec.add(files.numbers_note("distill", ("student",)))
    # A distill.json written before distill ran the retrained export (its rows have no
    # "retrained") compared with ensemble.json's figures: of the members before retraining.
    before = (" (the ensemble's and the best single member's test figures before retraining "
              "on train + val)" if distill and files.retrained[0]
              and not (distill.get("ensemble") or {}).get("retrained") else "")
    no_gain = _no_gain(distill) if distill and distill.get("gap_closed") is None else None
    if no_gain:
        # distill writes gap_closed null by design then (`distillcompare._compare`).
        images = gap.get("student_images") if gap else None
        sec.add(Inline("The distilled student (", Code(files.cmd("distill")), "): the "
                       f"ensemble is not more accurate than the best single member on the "
                       f"test split ({no_gain}), so there is no gain for the student to keep "
                       "and no share of it is given",
                       (f"; the student gets {images:+d} images against the best single "
                        "member" if isinstance(images, int) else ""), f"{before}."))
    elif distill and gap and not gap.get("significant"):
        sec.add(Inline("The distilled student (", Code(files.cmd("distill")), "): the "
                       f"ensemble's gain over the best single member is {gap.get('images')} "
                       f"of {gap.get('n')} test images (McNemar z = {gap.get('z', 0):.2f}, "
                       "not significant), too few to say which share of it the student "
                       f"keeps; the student gets {gap.get('student_images', 0):+d} images "
                       f"against the best single member{before}."))
    elif files.distill_note:
        sec.add(files.distill_note)
    elif distill and distill.get("gap_closed") is not None and not gap:
        why = distill.get("gap_note") or "no paired test-image counts were recorded"
        sec.add(Inline("The distilled student (", Code(files.cmd("distill")), "): no share of "
                       "the ensemble's gain is given, as whether the gain is significant "
                       f"cannot be decided ({why})."))
    elif distill and distill.get("gap_closed") is not None:
        sec.add(Inline("The distilled student (", Code(files.cmd("distill")), ", Hinton et al. "
                       f"2015) keeps {distill['gap_closed']:.0%} of the ensemble's "
                       "test-accuracy gain over the best single member",
                       (f", at 1/{distill['cost_ratio']:.1f} of its GFLOPs"
                        if distill.get("cost_ratio") else ""), f"{before}."))
    tflite = (files.meta.get("export") or {}).get("tflite")
    if tflite:
        lat = tflite.get("latency_ms") or {}
        model = Run(files.path).exported_tflite(files.meta)
        sec.add(Inline(f"TFLite export ({tflite.get('quantize')}): ", Code(str(model)),
                       f", {figure(tflite.get('size_bytes', 0) / 1e6)} MB, input "
                       f"{'x'.join(map(str, tflite.get('input_size') or []))}; max |Δp| vs "
                       f"the SavedModel {tflite.get('max_abs_diff', 0):.2e}; latency at batch "
                       f"1 {_ms({'latency_ms': lat.get('tflite')}, 1)} ms (TFLite) vs "
                       f"{_ms({'latency_ms': lat.get('savedmodel')}, 1)} ms (SavedModel), "
                       f"{tflite.get('runtime')}."))
    return sec


def _no_gain(distill) -> str | None:
    """"test accuracy 0.6000 against 0.6200" (the ensemble's, the best single member's), or
    "a gain of 0 of 50 test images" (its paired counts), when distill.json's ensemble is not more
    accurate than its best single member on the test split; None when it is, or when neither
    is recorded as numbers."""
    def accuracy(row):
        value = ((distill.get(row) or {}).get("test") or {}).get("accuracy")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok and math.isfinite(value) else None

    ens, single = accuracy("ensemble"), accuracy("best_single")
    if ens is not None and single is not None:
        return f"test accuracy {ens:.4f} against {single:.4f}" if ens <= single else None
    gap = distill.get("gap") or {}
    images, n = gap.get("images"), gap.get("n")
    if isinstance(images, int) and not isinstance(images, bool) and images <= 0:
        return f"a gain of {images} of {n} test images"
    return None


def _figure_panels(files, e, costs, members, student, retrained=False) -> list[dict]:
    """The figure's panels (validation, and test when the run has test labels; the
    candidates' figures, titled so when the export's members were `retrained`)."""
    chosen = {m["trial"] for m in members}
    path_cost = (e.get("cost") or {}).get("path") or []
    panels = []
    for split, curve_key in (("val", "val_curve"), ("test", "test_curve")):
        cands = [(costs[c.trial].gflops, _acc(files, getattr(c, f"{split}_probs"), split),
                  c.trial in chosen) for c in files.candidates
                 if c.trial in costs and costs[c.trial].gflops is not None]  # none: no point
        cands = [p for p in cands if p[1] is not None]
        if not cands:
            continue
        curve = e.get(curve_key) or []
        path = [(pc["gflops"], c["accuracy"]) for pc, c in zip(path_cost, curve)]
        if any(g is None for g, _ in path):  # a member's GFLOPs not counted: no curve
            path = []
        extras = []
        if student and (student.get(split) or {}).get("accuracy") is not None \
                and (student.get("cost") or {}).get("gflops") is not None:
            extras.append(("distilled student", student["cost"]["gflops"],
                           student[split]["accuracy"]))
        panels.append({"title": "validation" if split == "val" else
                       "test (not used for any choice)" + (
                           "\nthe candidates, before retraining" if retrained else ""),
                       "candidates": cands, "path": path,
                       "chosen": int(e.get("size") or 0) - 1 if path else None,
                       "extras": extras})
    return panels
