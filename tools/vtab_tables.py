"""tools/vtab.py's results: Table 1's means (`summarise`), the terminal table, OUT/vtab.md and
the --list table. Part of tools/vtab.py (its runner imports this module from the same folder);
see docs/vtab.md."""

from __future__ import annotations

import numpy as np
from vtab_tasks import GROUP_TITLES, GROUPS, TASK_LIST, TASKS


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def not_run(report: dict) -> list[str]:
    """The names of the tasks `report` asked for ("asked") that it holds no result of: a run
    stopped (Ctrl-C, a time limit) before it reached them. [] for a finished run."""
    got = {r["name"] for r in report["tasks"]}
    return [n for n in report.get("asked") or () if n not in got]


def summarise(results: list[dict], asked=()) -> dict:
    """Table 1's numbers from per-task results: the mean test accuracy over tasks (VTAB-1k)
    and per group, for the ensemble and the best single model; means cover finished tasks.
    "counts" is [finished, asked] overall and per group: `asked` (task names) adds the tasks
    not run yet to the second number, so a stopped run does not read as a finished one."""
    done = [r for r in results if r.get("status") == "ok"]
    got = {r["name"] for r in results}
    results = list(results) + [{"name": n, "group": TASKS[n].group} for n in asked
                               if n not in got and n in TASKS]
    means = {}
    for which in ("ensemble", "best_single"):
        row = {"vtab": _mean([(r.get(which) or {}).get("accuracy") for r in done])}
        for g in GROUPS:
            row[g] = _mean([(r.get(which) or {}).get("accuracy") for r in done
                            if r["group"] == g])
        means[which] = row
    counts = {"vtab": [len(done), len(results)]}
    for g in GROUPS:
        counts[g] = [sum(r["group"] == g for r in done), sum(r["group"] == g for r in results)]
    return {"means": means, "counts": counts}


#: Why a task asked for has no result, and what to do.
_STOPPED = ("the run stopped before it; run the same command again to run it: finished tasks "
            "are reused")


def _pct(x):
    return "—" if x is None else f"{100.0 * x:.1f}"


def _short_error(text, width=70):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def format_table(report: dict) -> str:
    """The terminal table: per task, then Table 1's row layout (means)."""
    lines = []
    head = f"{'group':<12}{'task':<17}{'ensemble':>9}{'best single':>13}{'members':>9}" \
           f"{'classes':>9}{'test':>8}  status"
    lines += ["VTAB-1k test accuracy (%)", head, "-" * len(head)]
    for r in report["tasks"]:
        ens, best = (r.get("ensemble") or {}), (r.get("best_single") or {})
        status = "ok" + (" (reused)" if r.get("reused") else "") if r["status"] == "ok" \
            else "FAILED: " + _short_error(r.get("error", ""))
        test = r.get("sizes", {}).get("test")
        lines.append(f"{r['group']:<12}{r['name']:<17}{_pct(ens.get('accuracy')):>9}"
                     f"{_pct(best.get('accuracy')):>13}{r.get('members') or '—':>9}"
                     f"{r.get('num_classes') or '—':>9}{test if test else '—':>8}  {status}")
    s = report["summary"]
    lines += ["", f"{'':<14}{'VTAB-1k':>9}" + "".join(f"{GROUP_TITLES[g]:>13}" for g in GROUPS)]
    for which, title in (("ensemble", "ensemble"), ("best_single", "best single")):
        m = s["means"][which]
        lines.append(f"{title:<14}{_pct(m['vtab']):>9}" +
                     "".join(f"{_pct(m[g]):>13}" for g in GROUPS))
    c = s["counts"]
    lines.append(f"{'tasks done':<14}{'%d/%d' % tuple(c['vtab']):>9}" +
                 "".join(f"{'%d/%d' % tuple(c[g]):>13}" for g in GROUPS))
    missing = not_run(report)
    if missing:
        lines.append(f"not run: {', '.join(missing)} ({_STOPPED})")
    if c["vtab"][0] < c["vtab"][1]:
        lines.append("means are over the finished tasks only; rerun the same command to "
                     "retry the others (finished tasks are reused; a task refused for options "
                     "other than its folder's needs --restart or another --out)")
    if report.get("test_limit"):
        lines.append(f"test sets cut to their first {report['test_limit']} examples: not "
                     "comparable with published VTAB-1k numbers")
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    """OUT/vtab.md: the same two tables in Markdown, plus the failures in full."""
    s = report["summary"]
    out = ["# VTAB-1k results", "",
           f"Catalogue: {', '.join(report['catalogue'])}; profile `{report['options']['profile']}`"
           f", sweep `{report['options']['sweep']}`, top-k {report['options']['top_k']}.", "",
           "| | VTAB-1k | Natural | Specialised | Structured |", "|---|---|---|---|---|"]
    for which, title in (("ensemble", "ensemble"), ("best_single", "best single")):
        m = s["means"][which]
        out.append(f"| {title} | {_pct(m['vtab'])} | " +
                   " | ".join(_pct(m[g]) for g in GROUPS) + " |")
    c = s["counts"]
    out.append("| tasks done | " + " | ".join("%d/%d" % tuple(c[k])
                                              for k in ("vtab",) + GROUPS) + " |")
    out += ["", "| group | task | ensemble | best single | members | classes | test examples "
                "| status |", "|---|---|---|---|---|---|---|---|"]
    for r in report["tasks"]:
        ens, best = (r.get("ensemble") or {}), (r.get("best_single") or {})
        status = "ok" if r["status"] == "ok" else "failed"
        out.append(f"| {r['group']} | {r['name']} | {_pct(ens.get('accuracy'))} | "
                   f"{_pct(best.get('accuracy'))} | {r.get('members') or '—'} | "
                   f"{r.get('num_classes') or '—'} | {r.get('sizes', {}).get('test') or '—'} | "
                   f"{status} |")
    if not_run(report):
        out += ["", f"Not run: {', '.join(not_run(report))} ({_STOPPED})."]
    failed = [r for r in report["tasks"] if r["status"] != "ok"]
    if failed:
        out += ["", "## Failures", ""]
        out += [f"- **{r['name']}**: {' '.join(str(r.get('error', '')).split())}"
                for r in failed]
    if report.get("test_limit"):
        out += ["", f"Test sets were cut to their first {report['test_limit']} examples."]
    return "\n".join(out) + "\n"


def format_list(tasks=None) -> str:
    """The table of `tasks` (VtabTask records; default all 19) that --list prints."""
    lines = [f"{'task':<17}{'group':<13}{'classes':>8}  {'tfds':<50}task_adaptation"]
    for t in tasks or TASK_LIST:
        tfds = f"{t.tfds_spec}:{'|'.join(t.versions)}"
        lines.append(f"{t.name:<17}{t.group:<13}{t.num_classes:>8}  {tfds:<50}{t.key}")
    return "\n".join(lines)
