"""distill's comparison: the student against the best single member and the ensemble on the
test split (`DistillResult`, RUN/distill.json), McNemar's paired test of the ensemble's gain
(`paired_gap`), and the summary table `hubensemble distill` prints (`format_distill`).

Split from `hubensemble.distill` (which trains the student and re-exports these names) so that
each stays a size one can read.
"""

from __future__ import annotations

import dataclasses
import os

from hubensemble import fileio, metrics
from hubensemble.formats import read_export_metadata
from hubensemble.text import cells, ljust


#: McNemar's z (two-sided 5 %) from which the ensemble's test gain over the best single member
#: is significant (`paired_gap`); below it a share of that gain is not measurable.
Z_SIGNIFICANT = 1.96


@dataclasses.dataclass
class DistillResult:
    """What `run_distill` wrote to RUN/distill.json.

    `student`: {"trial", "module", "path" (relative to the run), "hparams", "steps",
    "seconds", "init" ("member" or "module"), "init_from" (the candidate whose weights it
    started from, or None), "val" and "test" ({accuracy, nll, ece}; test None without a
    test split),
    "cost" (its `Cost` summary: gflops, params, latency_ms, size)}; `best_single` and
    `ensemble`: the same metrics and costs from ensemble.json (test None without test
    labels); `teacher`: {"export", "members"}; `gap_closed`: (student - best single) /
    (ensemble - best single) test accuracy, the share of the ensemble's gain the student
    keeps (None when the ensemble is not better than the best single member or there is no
    test split); `cost_ratio`: the ensemble's GFLOPs / the student's; `gap`: that gap in
    test images with McNemar's z (`paired_gap`; None without test tables). When the gap is
    not significant, `gap_closed` is a share of noise; when `gap` is None with a test split,
    `gap_note` says why its significance cannot be decided, and no share is shown.
    `students`: every student folder in RUN/distill/ (`student_records`: this one and those
    of other modules, kept), and `replaced`: the same record of the earlier student of this
    module that this one replaced (its folder is gone; its options can train it again), or None.
    """

    student: dict
    best_single: dict
    ensemble: dict
    teacher: dict
    gap_closed: float | None
    cost_ratio: float | None
    gap: dict | None = None
    gap_note: str | None = None
    students: list = dataclasses.field(default_factory=list)
    replaced: dict | None = None

    def to_json(self) -> dict:
        """Exactly what RUN/distill.json holds."""
        return dataclasses.asdict(self)


def _describe(s) -> str:
    """One student record as the replacement note and the summary name it."""
    test = (s.get("test") or {}).get("accuracy")
    val = (s.get("val") or {}).get("accuracy")
    return (f"test accuracy {_num(test)}, val {_num(val)}; --distill-init {s.get('init_rule')}"
            f" (kept {s.get('init')}), --distill-steps {_num(s.get('steps_scale'), 'g')}, "
            f"--distill-mixup {_num(s.get('mixup'), 'g')}, "
            f"--distill-lr {_num(s.get('lr_scale'), 'g')}")


def paired_gap(ens, cands, single_trial, student_probs, labels) -> dict | None:
    """The best single member -> ensemble test-accuracy gap counted in images, with McNemar's
    paired test (McNemar, 1947) on the same images.

    `ens`: ensemble.json (members with "trial" and "weight"); `cands`: candidates with
    test_probs float32 [N, C] loaded; `student_probs` float [N, C]; `labels` int [N]. The
    ensemble's probabilities are its members' test tables averaged with their weights.
    Returns {"n", "images" (ensemble - single, correct images), "single_only" and
    "ensemble_only" (images only one of them gets right), "z" = (ensemble_only -
    single_only) / sqrt(their sum) (0 when both are 0), "significant" (z >= Z_SIGNIFICANT),
    "student_images" (student - single)}; None when a table is missing.
    """
    import numpy as np

    by_trial = {c.trial: c for c in cands}
    members = [(by_trial.get(m.get("trial")), float(m.get("weight") or 0.0))
               for m in ens.get("members") or []]
    single = by_trial.get(single_trial)
    tables = [c.test_probs if c is not None else None for c, _ in members]
    if (single is None or single.test_probs is None or not members
            or any(t is None for t in tables) or student_probs is None):
        return None
    total = sum(w for _, w in members) or 1.0
    ensemble = sum(np.asarray(t, np.float64) * w for t, (_, w) in zip(tables, members))
    labels = np.asarray(labels)
    right_single = np.argmax(single.test_probs, 1) == labels
    right_ens = np.argmax(ensemble / total, 1) == labels
    right_student = np.argmax(student_probs, 1) == labels
    b = int(np.sum(right_single & ~right_ens))
    c = int(np.sum(~right_single & right_ens))
    z = float((c - b) / np.sqrt(b + c)) if b + c else 0.0
    return {"n": int(len(labels)), "images": c - b, "single_only": b, "ensemble_only": c,
            "z": z, "significant": z >= Z_SIGNIFICANT,
            "student_images": int(right_student.sum() - right_single.sum())}


def _compare(run, ens, record, written, probs, task, student_cost, costs,
             cands) -> DistillResult:
    """The DistillResult of a trained student against ensemble.json's best single member and
    ensemble (test metrics and costs)."""
    test = ens.get("test") or {}
    ens_cost = (ens.get("cost") or {}).get("ensemble")
    if ens_cost is None:
        # ensemble.json was written before RUN/cost.json existed: total its members' costs.
        from hubensemble.cost import total_cost

        member_costs = [costs.get(m.get("trial")) for m in ens.get("members") or []]
        if member_costs and all(c is not None for c in member_costs):
            ens_cost = total_cost(member_costs)
    single = test.get("best_single") or {}
    single_trial = single.get("trial") or (ens.get("val") or {}).get("best_single", {}).get(
        "trial")
    single_cost = costs.get(single_trial)
    student_test = (metrics.metrics(probs["test"], task.test.labels)
                    if "test" in probs else None)
    gap = None
    if student_test and test.get("ensemble") and single.get("accuracy") is not None:
        lift = test["ensemble"]["accuracy"] - single["accuracy"]
        if lift > 0:
            gap = (student_test["accuracy"] - single["accuracy"]) / lift
    paired = (paired_gap(ens, cands, single_trial, probs["test"], task.test.labels)
              if "test" in probs else None)
    note = None
    if "test" in probs and paired is None:
        have = {c.trial for c in cands if c.test_probs is not None}
        lacking = [t for t in [single_trial] + [m.get("trial") for m in ens.get("members") or []]
                   if t not in have]
        note = ("McNemar's test needs the test table of every member and of the best single, "
                f"and RUN/candidates has none usable for {', '.join(dict.fromkeys(lacking))} "
                "(an incomplete or missing candidate)")
    ratio = None
    if ens_cost and student_cost.gflops > 0:
        ratio = ens_cost["gflops"] / student_cost.gflops
    return DistillResult(
        student={"trial": record["trial"], "module": record["module"],
                 "path": os.path.relpath(written.folder, run.path),
                 "hparams": record["hparams"], "steps": record["steps"],
                 "init": record["init"], "init_from": record["init_from"],
                 "seconds": record["seconds"],
                 "val": metrics.metrics(probs["val"], task.val.labels), "test": student_test,
                 "cost": student_cost.summary()},
        best_single={"trial": single_trial, "test": {k: single[k] for k in
                                                     ("accuracy", "nll", "ece")
                                                     if k in single} or None,
                     "cost": single_cost.summary() if single_cost else None},
        ensemble={"members": [m["trial"] for m in ens.get("members") or []],
                  "test": test.get("ensemble"), "cost": ens_cost},
        teacher=record["teacher"], gap_closed=gap, cost_ratio=ratio, gap=paired, gap_note=note)


def read_distill(run_dir) -> dict | None:
    """RUN/distill.json as a dict, or None when there is none (or it is unreadable)."""
    from hubensemble.formats import DISTILL_FILE

    try:
        data = fileio.read_json(os.path.join(os.fspath(run_dir), DISTILL_FILE))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _significance(gap) -> str:
    """What McNemar's z of `paired_gap` says, for the gap line ("" when the gain is real)."""
    if gap["significant"]:
        return ""
    if gap["z"] <= -Z_SIGNIFICANT:  # the ensemble loses: there is no gain to keep
        return (f", significantly below the best single at z <= -{Z_SIGNIFICANT}: no gain "
                "to keep")
    return f", not significant at |z| < {Z_SIGNIFICANT}: the share is noise"


def format_distill(result) -> str:
    """The `distill` summary: test accuracy, NLL, ECE and cost of the student, the best
    single member and the ensemble, and the share of the ensemble's gain the student kept."""
    r = result.to_json() if isinstance(result, DistillResult) else dict(result)
    # A teacher retrained on train + val (--retrain-full) is compared with ensemble.json's
    # figures, of its members before retraining: said, not passed off as the teacher's.
    teacher = (r.get("teacher") or {}).get("export")
    before = (", before retraining" if teacher and read_export_metadata(
        teacher, strict=False).get("retrain_full") else "")
    rows = [(f"student ({r['student']['module']})", r["student"]["test"],
             r["student"]["cost"]),
            (f"best single ({r['best_single']['trial']}){before}", r["best_single"]["test"],
             r["best_single"]["cost"]),
            (f"ensemble ({_members(len(r['ensemble']['members']))}){before}",
             r["ensemble"]["test"], r["ensemble"]["cost"])]
    width = max(cells(name) for name, _, _ in rows) + 2
    lines = [f"{'test set':<{width}}{'accuracy':>10}{'NLL':>9}{'ECE':>9}{'GFLOPs':>10}"
             f"{'ms@1':>8}"]
    for name, m, c in rows:
        m = m or {}
        c = c or {}
        ms = (c.get("latency_ms") or {}).get("1")
        lines.append(f"{ljust(name, width)}{_num(m.get('accuracy')):>10}{_num(m.get('nll')):>9}"
                     f"{_num(m.get('ece')):>9}{_num(c.get('gflops'), 4):>10}"
                     f"{_num(ms, 2):>8}")
    if before:
        lines.append("note: the teacher's members were retrained on train + val (--retrain-full);"
                     " the best single and ensemble rows, and the gain below, are of the "
                     "members before retraining (ensemble.json's)")
    g = r.get("gap")
    # A share of a gain that McNemar's test cannot tell from noise is noise itself (e.g. -133 %
    # of a 3-image gap): only the gap line below is printed then; nor is a share whose
    # significance cannot be decided (no gap), which says why instead.
    if r.get("gap_closed") is not None and g and g.get("significant"):
        lines.append(f"the student keeps {r['gap_closed']:.0%} of the ensemble's test-accuracy "
                     "gain over the best single member"
                     + (f", at 1/{r['cost_ratio']:.1f} of its GFLOPs"
                        if r.get("cost_ratio") else ""))
    if g:
        lines.append(f"the gain is {g['images']} of {g['n']} test images (only the best single "
                     f"right on {g['single_only']}, only the ensemble on {g['ensemble_only']}: "
                     f"McNemar z = {g['z']:.2f}" + _significance(g)
                     + f"); the student gets {g['student_images']:+d} images vs the best single")
    elif r.get("gap_closed") is not None:
        lines.append("no share of the ensemble's test-accuracy gain: whether the gain is "
                     "significant cannot be decided ("
                     + (r.get("gap_note") or "no paired test-image counts were recorded") + ")")
    start = r["student"].get("init_from")
    lines.append(f"student: {r['student']['path']} ({r['student']['steps']} steps, "
                 f"{r['student']['seconds']:.0f} s, started from "
                 f"{'candidate ' + start if start else 'the pre-trained module'})")
    others = [s for s in r.get("students") or [] if s.get("trial") != r["student"]["trial"]]
    teacher = (r.get("teacher") or {}).get("members")
    for s in others:  # students of other modules stay in RUN/distill/: say which they are
        lines.append(f"also kept: {s['path']} ({_describe(s)}"
                     + ("; of an earlier ensemble" if s.get("teacher_members") != teacher else "")
                     + ")")
    return "\n".join(lines)


def _members(n: int) -> str:
    return f"{n} member" + ("" if n == 1 else "s")


def _num(value, digits=4) -> str:
    """`value` with `digits` decimals (or a format spec such as "g"); "–" for None."""
    spec = digits if isinstance(digits, str) else f".{digits}f"
    return "–" if value is None else f"{float(value):{spec}}"
