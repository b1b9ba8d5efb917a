"""The report's sections on the run's record (RUN/run.json): the data, the time per stage and
the package versions, and the short "Not known" sentence when run.json is missing or damaged."""

from __future__ import annotations

from hubensemble.formats import FIT_STAGES
from hubensemble.report.datarows import accounting_rows, class_counts_row, names_cell
from hubensemble.report.fmt import compact as _compact, duration as _seconds
from hubensemble.report.render import Code, Inline, Section, Table
from hubensemble.report.runfiles import ENSEMBLE_FIRST
from hubensemble.rundir import Run
from hubensemble.text import names_shown


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
    cell = names_cell(names_shown(names)[:20])  # a plain str unless a name is right-to-left
    shown = (f"{task.get('num_classes')}: {cell}{more}" if isinstance(cell, str)
             else Inline(f"{task.get('num_classes')}: ", cell, more))
    size = task.get("image_size")
    rows = [["name", task.get("name")], ["source", task.get("source")],
            ["data spec", data_words(args)],
            ["examples", ", ".join(f"{s} {sizes.get(s) if sizes.get(s) is not None else '–'}"
                                   for s in ("train", "val", "test"))],
            ["classes", shown],
            class_counts_row([str(n) for n in names], {
                s: Run(files.path).labels_of(s) for s in ("train", "val", "test")}),
            ["image size", (f"{size[0]}x{size[1]}" if size else "–")
             + ("" if task.get("same_size", True) else " (median; sizes vary)")],
            ["synthetic / flips", f"{task.get('synthetic')} / {task.get('flip')}"],
            ["fingerprint", Code(f"{str(task.get('fingerprint', ''))[:16]}…")]]
    rows = [r for r in rows if r is not None] + accounting_rows(task)
    return sec.add(Table(["", "value"], rows))


def data_words(args: dict):
    """The Data section's "data spec" cell for run.json's data "args" (`DataArgs.to_json`):
    what a user passes to read the same data again, as one line of command-line words
    (`rerun`'s rule for every way-on command): --data SPEC and each recorded data option not
    at its default (--data-dir, --split train=…, --label-key, --data-seed, …), paths
    absolute, e.g. `--data tfds:smallnorb:2.0.0 --data-dir /d --split 'train=train[:800]'
    --label-key label_azimuth`. The spec alone showed neither the split strings nor the
    label feature nor the folder the run read. Data no command line can read (from Python:
    a Task made there, a label function) shows its recorded spec or source as before; "–"
    when none is recorded."""
    from hubensemble.rerun import _data_flags, _from_python

    if not args.get("spec"):
        return "–"
    return Code(str(args["spec"]) if _from_python(args) else _data_flags(args))


def _meta_missing(files) -> str | None:
    """A short sentence when run.json is missing or damaged (the overview and the failures
    section say how to remake it), else None."""
    if files.meta_note is None:
        return None
    state = "missing" if not (files.path / "run.json").exists() else "unreadable or damaged"
    return f"Not known: run.json is {state} (see the overview)."


def fit_order(stages: dict) -> list:
    """run.json's "stages" items in the order fit runs them (FIT_STAGES; a stage
    first recorded by a later fit, e.g. evaluate after one without corruptions, came last)."""
    order = {name: i for i, name in enumerate(FIT_STAGES)}
    return sorted(stages.items(), key=lambda kv: order.get(kv[0], len(order)))


def stage_time_note(info: dict) -> str:
    """What a stage's seconds are, of its run.json record ({"seconds", "reused",
    "interrupted_seconds", "command"}): "earlier run, reused" (a stage this run reused),
    "earlier runs, reused" (reused from runs one of which stopped in it: its seconds are both
    runs'), "5.1 s of it in earlier runs that stopped in it" (this run finished it after a
    stop; "before it stopped" read as one stop of this run, where the seconds are every
    earlier run's), "ran on its own (ensemble)" (its last run was that command's or its
    function's, not a fit's: `stagerecords.mark_time`), else "" (this run ran it whole).
    The one wording of the fit summary's line (`report.write.stage_time_line`) and the
    report's "Time per stage", which showed "reused = True, interrupted_seconds = 13.3"."""
    before = float(info.get("interrupted_seconds") or 0)
    if info.get("reused", False):
        return f"earlier run{'s' if before else ''}, reused"
    if info.get("command") and not before:
        return f"ran on its own ({info['command']})"
    return f"{_seconds(before)} of it in earlier runs that stopped in it" if before else ""


#: A stage record's fields `stage_time_note` words (the command that ran it on its own too),
#: and fit's bookkeeping (the stage's key, the options it reads, result digests, files,
#: export record, done flag: run.json keeps them; a stage in the table ran): "reads = 6e3b…"
#: and "reused = True" were the details.
_STAGE_FIELDS_SAID = ("seconds", "reused", "interrupted_seconds", "command", "key", "reads",
                      "digests", "done", "files", "record", "fit_key", "refused")


def _tune_refused(info: dict) -> str:
    """The tune row's words of a fit refused before its sweep for its inference budget
    (`budgetrefusal.refusal`, stage "tune": no module fits its --max-gflops), which wrote no
    other record, so the report did not say why the run stopped: "the last fit was refused
    before its sweep for its inference budget (max_gflops=1e-07): WHY"; "" without one."""
    from hubensemble.budgetrefusal import refusal
    from hubensemble.cost.records import Limits

    found = refusal({"stages": {"tune": info}}, stage="tune")
    if found is None:
        return ""
    try:
        limits = Limits(**{k: found["limits"].get(o) for k, o in (
            ("gflops", "max_gflops"), ("latency_ms", "max_latency_ms"),
            ("members", "max_members"))}).flags()
    except (TypeError, ValueError):
        limits = "its limits"
    return (f"the last fit was refused before its sweep for its inference budget ({limits}): "
            f"{found.get('why') or 'no reason recorded'}")


def _stages_section(files) -> Section:
    sec = Section("Time per stage")
    stages = files.meta.get("stages") or {}
    if not stages:
        return sec.add(_meta_missing(files) or Inline(
            "run.json records no stage timings (each stage records its own as it ends; a "
            "run of a hubensemble before 2026-12-06: only ", Code("hubensemble fit"), ")."))
    rows, total = [], 0.0
    for name, info in fit_order(stages):
        info = info if isinstance(info, dict) else {"seconds": info}
        s = info.get("seconds")
        total += float(s or 0)
        # A later call refused for its budget (`budgetrefusal`): said, not as JSON.
        refused = (f"a later call was refused for its inference budget (see "
                   f"\"{ENSEMBLE_FIRST}\")" if name == "ensemble" and "refused" in info else
                   _tune_refused(info) if name == "tune" else "")
        extra = [stage_time_note(info), refused] + [
            trials_cell(v) if k == "trials" else f"{k} = {_compact(v)}"
            for k, v in info.items() if k not in _STAGE_FIELDS_SAID]
        rows.append([name, _seconds(s), ", ".join(e for e in extra if e)])
    rows.append(["total", _seconds(total), ""])
    return sec.add(Table(["stage", "time", "details"], rows))


#: `trials_cell` names at most this many trial ids per sweep, then "…".
TRIALS_NAMED = 3


def trials_cell(trials) -> str:
    """The "Time per stage" details of the tune stage's planned trials (run.json's
    stages.tune.trials, {sweep: [trial id, …]}: `stagerecords.fit_plan`) in words, per sweep
    its count and first TRIALS_NAMED ids, e.g. "planned trials: hyper: 2 trials
    (hyper-0000-3f2a, hyper-0001-9c1d); probe: 5 trials (probe-0000-…, …, …, …)"; it showed
    the raw JSON, `trials = {"hyper":["hyper-0000-…"]}` (in report.md with its brackets
    escaped). A value of another shape (a hand edit, another version) as before:
    "trials = VALUE" (`fmt.compact`)."""
    from hubensemble.text import counted, names_listed

    if not isinstance(trials, dict) or not all(isinstance(v, list) for v in trials.values()):
        return f"trials = {_compact(trials)}"
    return "planned trials: " + ("; ".join(
        f"{sweep}: {counted(len(ids), 'trial')}"
        + (f" ({names_listed(ids, TRIALS_NAMED)})" if ids else "")
        for sweep, ids in trials.items()) or "none")


def _versions_section(files) -> Section:
    sec = Section("Versions")
    versions = files.meta.get("versions") or {}
    if not versions:
        return sec.add(_meta_missing(files) or "run.json records no versions.")
    return sec.add(Table(["package", "version"], [[k, v] for k, v in versions.items()]))
