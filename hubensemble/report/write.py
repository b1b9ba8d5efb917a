"""Writing the report files (report.md, report_files/, report.html) and the demo's closing table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from hubensemble import ensemble as ens, formats
from hubensemble.ensembletext import (chance_sentences, run_test_copies, size_rule_text,
                                      test_missing_text)
from hubensemble.errors import checks_keywords
from hubensemble.lockwords import command_words
from hubensemble.fileio import atomic_write_bytes, atomic_write_text, read_json
from hubensemble.report.labels import checks_kept, summary_line, write_list
from hubensemble.report.render import FIGURES_DIR, render_html, render_markdown
from hubensemble.report.runfiles import retrained_test, untuned_sweeps
from hubensemble.report.checks import ENSEMBLE_NUMBERS, EXPORT_NUMBERS, number_problems
from hubensemble.report.fmt import (all_failed_words, counted as _n, duration as _seconds,
                                    number as _f)
from hubensemble.report.runsections import fit_order, stage_time_note
from hubensemble.report.sections import build_sections
from hubensemble.text import absolute, escaped, printable, shell
from hubensemble.data.coverage import (balanced_line, coverage_note, few_note, majority_note,
                                       unbalanced)
from hubensemble.metrics import balanced_accuracy

#: The figures a report may have (RUN/report_files/<name>.png).
FIGURE_NAMES = ("knn_vs_finetuned", "ensemble_curve", "reliability", "accuracy_vs_gflops",
                "robustness")


class ReportPaths(NamedTuple):
    """What `write_report` wrote: the Markdown report and the self-contained HTML one (a
    tuple, so ``md, html = write_report(run)`` unpacks it)."""

    markdown: Path
    html: Path


@checks_keywords
def write_report(run_dir) -> ReportPaths:
    """Writes RUN/report.md (figures in RUN/report_files/) and the self-contained
    RUN/report.html; returns their paths, absolute (as `export`'s and the advice's: the
    command printed them relative, as typed), as a ReportPaths record. Every file is written
    atomically; a figure of an earlier report that no longer applies is deleted. Raises
    RunError when `run_dir` is not a folder or holds neither run.json nor ranking.json, or
    when another process holds the run's lock (`Run.lock`: a command writing into it), which
    the writing takes, so that a command started meanwhile is refused; TypeError for a
    `run_dir` that is no folder path (`stageargs.folder`).

    Example::

        from hubensemble.report import write_report

        md, html = write_report("runs/digits")
    """
    from hubensemble import stageargs
    from hubensemble.rundir import Run

    run = Run(stageargs.folder("write_report", "run_dir", run_dir))
    run.check_unlocked("report")  # before the figures' seconds
    with checks_kept():  # the section's label checks are the list's (write_list)
        title, sections, figures = build_sections(run_dir)
        write_files(run, title, sections, figures)
    return ReportPaths(Path(absolute(run.report_md)), Path(absolute(run.report_html)))


def fit_report(run_dir) -> tuple[ReportPaths, str | None]:
    """fit's report (`write_report`) and the line its closing table gives on the labels
    (`labels.summary_line`, None when none look wrong), both from one run of each label
    check (`labels.checks_kept`): the table ran both checks a third time after the report
    had run them. Raises as `write_report`."""
    with checks_kept():
        return write_report(run_dir), summary_line(run_dir)


def write_files(run, title, sections, figures) -> None:
    """Writes the report's files into `run` (`rundir.Run`) under its lock: the `figures`,
    an earlier figure that no longer applies deleted, RUN/labels/to_check.csv
    (`labels.write_list`) and report.md and report.html of `title` and `sections`."""
    folder = run.path / FIGURES_DIR
    with run.lock("report"):  # fit's own report: it holds it already
        for fig in figures:
            atomic_write_bytes(folder / f"{fig.name}.png", fig.png)
        made = {f.name for f in figures}
        for name in FIGURE_NAMES:  # a figure of an earlier report that no longer applies
            stale = folder / f"{name}.png"
            if name not in made and stale.exists():
                stale.unlink()
        write_list(run.path)  # RUN/labels/to_check.csv: the Labels section's whole list
        # run.json keeps a file name that is not UTF-8 as lone surrogates, which UTF-8
        # cannot hold
        atomic_write_text(run.report_md, printable(render_markdown(title, sections)))
        atomic_write_text(run.report_html, printable(render_html(title, sections)))


# ---------------------------------------------------------------------------------------------
# The demo's closing table
# ---------------------------------------------------------------------------------------------

def _chance_lines(run, ensemble, members) -> tuple[str | None, str | None]:
    """The ensemble stage's warnings on the ensemble (ensemble.json's "at_chance") and on the
    `members` (ensemble.json's) at chance on validation, from their val_probs.npy and
    RUN/labels/val.npy (`ensembletext.chance_sentences`: one sentence for an ensemble of one
    member at chance), each None when there is nothing to say (or the files to tell a member
    are gone: the report says that)."""
    from hubensemble import candidate
    from hubensemble.chance import at_chance_candidates

    try:
        labels = run.labels_of("val")
    except (OSError, ValueError):
        labels = None
    found = [c for c in (candidate.read_candidate(run.candidates, str(m.get("trial")))
                         for m in members) if c is not None and c.ok]
    weak = at_chance_candidates(found, labels)
    return chance_sentences(ensemble.get("at_chance"), weak,
                            {c.trial: c.record for c in found},
                            [str(m.get("trial")) for m in members])


def _balanced_line(run, ensemble, y) -> str | None:
    """The closing table's balanced accuracy line when the test classes are unbalanced
    (`data.coverage.unbalanced`): the ensemble's and the best single member's
    (`metrics.balanced_accuracy`), as ensemble.json's test records them (`ensemble._test_metrics`);
    from an ensemble.json written before it did, from their test_probs.npy and its weights, as
    the report's test section gives them; None otherwise, or when a table cannot be read."""
    from hubensemble import candidate

    if y is None or not unbalanced(y):
        return None
    test = ensemble.get("test") or {}
    recorded = [(who, (test.get(key) or {}).get("balanced_accuracy"))
                for who, key in (("ensemble", "ensemble"), ("best single", "best_single"))]
    # NaN: a value that is no finite number (`checks.number_problems`, its note said): from
    # the test probabilities then, as an ensemble.json written before it was recorded.
    if recorded[0][1] is not None and not any(v != v for _, v in recorded):
        return balanced_line("test", [(who, v) for who, v in recorded if v is not None])

    def probs(trial):
        c = candidate.read_candidate(run.candidates, str(trial))
        return None if c is None or c.load_probs(n_test=len(y)) else c.test_probs

    members = ensemble.get("members") or []
    tables = [probs(m.get("trial")) for m in members]
    if not tables or any(t is None for t in tables):
        return None
    mixed = ens.ensemble_probs(tables, {i: float(m.get("weight", 1.0))
                                        for i, m in enumerate(members)})
    parts = [("ensemble", balanced_accuracy(mixed, y))]
    best = (test.get("best_single") or {}).get("trial")
    single = probs(best) if best else None
    if single is not None:
        parts.append(("best single", balanced_accuracy(single, y)))
    return balanced_line("test", parts)


#: The closing table's export line without an ensemble: `export` refuses then, and the
#: table's first line says what comes first (it named `hubensemble export --run RUN`).
_ENSEMBLE_FIRST = "an ensemble first (the first line says how)"


def summary_table(run_dir, *, labels_line: tuple | None = None) -> str:
    """The demo's closing table: best single member vs ensemble on test (accuracy, NLL, ECE
    from ensemble.json), a note naming the classes that have no test (or validation)
    example, ensemble size (with a warning when the ensemble or a member is at chance, unless
    the fit ran the ensemble stage, which said it: `ensemble_warned`), time per stage, and
    where the export and the report are — a few lines for the terminal.
    `labels_line`: (its line on the labels,) as `fit_report` gave it; None: the label checks
    run now (`labels.summary_line`). Raises RunError when ensemble.json is unreadable."""
    from hubensemble.rundir import Run

    run = Run(run_dir)
    path = Path(run_dir)
    meta = run.meta() if run.exists() else {}
    lines = []
    ensemble = None
    bad = []  # (file, command, field, what): a test figure that is no finite number
    if run.ensemble_json.exists():
        ensemble = ens.read_ensemble(path)
        bad += [(formats.ENSEMBLE_FILE, "ensemble", *p) for p in number_problems(
            ensemble, [f for f in ENSEMBLE_NUMBERS if f[0] == "test"])]
    before = (ensemble or {}).get("test")
    # --retrain-full: the exported members' own figures, measured after retraining.
    retrained, after = retrained_test(run, meta) if before else (False, None)
    after = after if isinstance(after, dict) else None
    if after:
        bad += [(f"the export's {formats.METADATA_ASSET}", "export", *p)
                for p in number_problems({"metrics": {"test": after}}, EXPORT_NUMBERS)]
    test = after or before
    if test:
        # Under an inference budget, also the best single that fits it: the fair baseline.
        rows = [(f"best single{suffix} ({b['trial']})" if b else "best single", b)
                for suffix, b in (("", test.get("best_single")),
                                  (" within the budget", test.get("best_single_in_budget")))
                if b or not suffix]
        if len(rows) == 2 and rows[1][1] and rows[1][1]["trial"] == (rows[0][1] or {}).get(
                "trial"):
            rows.pop()
        head = "test set, retrained on train + val" if after else "test set"
        width = max(*(len(label) for label, _ in rows), len("ensemble"), len(head)) + 2
        lines.append(f"{head:<{width}}{'accuracy':>10}{'NLL':>10}{'ECE':>10}")
        for label, b in rows:
            if b:
                lines.append(f"{label:<{width}}" + _figures(b))
        e = test["ensemble"]
        lines.append(f"{'ensemble':<{width}}" + _figures(e))
        if after:
            lines += _not_retrained(before, after)
        b = before["ensemble"]
        if after:
            lines.append("note: the exported members were retrained on train + val; the "
                         f"figures above are theirs (before retraining: ensemble accuracy "
                         f"{_f(b.get('accuracy'))}, NLL {_f(b.get('nll'))}; validation figures are "
                         "of the members before retraining)")
        elif retrained:
            lines.append("note: the exported members were retrained on train + val; these "
                         "test figures are of the members before retraining (an export "
                         "from before the retrained ones were measured: export again)")
        copies = run_test_copies(meta)
        if copies:  # copies of training images lift the figures above (heldoutwords)
            lines.append(f"note: test figures are {copies}")
    elif ensemble is not None:
        why = test_missing_text(ensemble.get("test_missing"))  # in the caller's words
        lines.append(f"no test metrics: {why or 'no test split'}")
    else:
        lines.append(f"no ensemble yet: {_no_ensemble_step(run, meta)}")
    for file, cmd, field, what in bad:  # shown as "–" above
        lines.append(f"note: {file}'s \"{field}\" is {what}, not a finite number (shown as "
                     "\"–\"): edited by hand, or written by another version; "
                     + (f"`{run.export_command()}`" if cmd == "export"
                        else command_words("ensemble", path)) + " writes it again")
    if ensemble is not None:
        coverage = ensemble.get("coverage")
        if coverage is None:  # an ensemble.json written before coverage was recorded
            coverage = {k: v for k, v in run.coverage().items() if k in ("val", "test")}
        for split in ("test", "val") if test else ("val",):
            note = coverage_note(coverage, split)
            if note:
                lines.append(f"note: {note}")
        y = run.labels_of("test") if test else None
        note = majority_note(run.class_names() or [], y, "test") if y is not None else None
        if note:
            lines.append(f"note: {note}, and per class (the report's per-class table)")
        balanced = None if after else _balanced_line(run, ensemble, y)
        if balanced:
            lines.append(balanced)
        for split in ("test", "val") if test else ("val",):
            labels = run.labels_of(split)
            note = labels is not None and few_note(run.class_names() or [], labels, split)
            if note:
                lines.append(f"note: {note}")
    if ensemble is not None:
        members = ensemble.get("members") or []
        rule = ensemble.get("size_rule") or {}
        # Why not the best validation size: the one-se rule kept a larger ensemble.
        why = (f": {size_rule_text(ensemble)}" if rule.get("rule") == "one-se"
               and rule.get("size") != rule.get("best_size") else "")
        lines.append(f"ensemble size: {_n(len(members), 'member')} ("
                     f"{_n(ensemble.get('size', '?'), 'greedy pick')}) of "
                     f"{_n(ensemble.get('n_candidates', '?'), 'candidate')}{why}")
        # The ensemble stage this fit ran warned of these (stderr, RUN/log.txt): the table
        # said them again, word for word, in the same command's output. A fit that reused
        # the stage said nothing of them: its table does.
        if not ensemble_warned(meta):
            lines += ["warning: " + text for text in _chance_lines(run, ensemble, members)
                      if text]
    lines += _failure_lines(run, meta)
    wrong = summary_line(path) if labels_line is None else labels_line[0]
    if wrong:
        lines.append(wrong)
    if meta.get("stages"):
        lines.append(stage_time_line(meta["stages"]))
    current, stale = run.current_export(meta)
    export = current or run.exported_to(meta) or (str(run.export) if run.export.exists()
                                                  else None)
    foreign = None if current else run.foreign_export(meta)
    if foreign:  # never another run's export as this one's
        lines.append(f"export: none of this run ({escaped(foreign[0])} now holds "
                     f"{escaped(foreign[1])}): run `{run.export_command()}`")
    elif stale and not current:  # never an earlier ensemble's export as this one's
        lines.append(f"export: none of this ensemble ({escaped(stale)} is of an earlier one): "
                     f"run `{run.export_command(stale)}`")
    elif export and not os.path.exists(export):  # recorded, deleted or moved since
        lines.append(f"export: none ({_where(export)}, which run.json records, is gone): "
                     + (f"run `{run.export_command(export)}`" if ensemble is not None else
                        _ENSEMBLE_FIRST))
    else:
        lines.append(f"export: {_where(export)}" if export else
                     "export: not written yet ("
                     + (f"`{run.export_command()}`" if ensemble is not None else _ENSEMBLE_FIRST)
                     + ")")
    if run.report_html.exists():
        lines.append(f"report: {_where(run.report_html)} (and {run.report_md.name})")
    else:
        lines.append(f"report: not written yet (`hubensemble report --run {shell(path)}`)")
    return "\n".join(lines)


def ensemble_warned(meta: dict) -> bool:
    """Whether the fit whose closing table `summary_table` gives ran the ensemble stage
    itself, which warned then of an ensemble and of members at chance on validation
    (`ensemble.run_ensemble`): run.json's `meta` records the stage "reused": false (fit's
    `stagerecords.mark`). False for a stage the fit reused, one run on its own (its record
    holds no "reused": `stagerecords.mark_time`), or no record: the table says them then."""
    record = (meta.get("stages") or {}).get("ensemble") if isinstance(meta, dict) else None
    return isinstance(record, dict) and record.get("reused") is False


def _figures(record: dict) -> str:
    """A closing-table row's accuracy, NLL and ECE of `record`, 10 characters each, "–" for
    one that is no finite number (`fmt.number`)."""
    return "".join(f"{_f(record.get(m)):>10}" for m in ("accuracy", "nll", "ece"))


def _no_ensemble_step(run, meta) -> str:
    """The closing table's way to an ensemble: `ensemble`, or, when every trial of a
    finished sweep failed, their folders removed and `tune` first (`ensemble` refuses a pool
    with no usable candidate, and `tune` alone reuses failed trials; the report's
    `RunFiles.next_step` says the same). The command that removes them is in the lines below
    (`_failure_lines`)."""
    from hubensemble import candidate
    from hubensemble.lockwords import command_line
    from hubensemble.sweepstate import unfinished_sweeps
    from hubensemble.sweepwords import ensemble_options, sweep_command

    # With the run's settings (fit's --ensemble-budget, --size-rule …), not the defaults'.
    ensemble = "`" + " ".join(filter(None, (f"hubensemble ensemble --run {shell(run.path)}",
                                            ensemble_options(run.path)[0]))) + "`"
    cands, _ = candidate.scan(run.candidates)
    failed = [c for c in cands if c.status == "failed"]
    if not failed or any(c.ok for c in cands) or unfinished_sweeps(run.path, meta):
        return f"run {ensemble}"
    with command_line():  # the run's own sweep: a plain tune runs the default one
        tune = sweep_command(run.path)
    return (f"{all_failed_words(len(failed))} (the command is below), then run {tune}, then "
            f"{ensemble}")


def stage_time_line(stages: dict) -> str:
    """The summary's "time per stage: …; total …" line of run.json's "stages" ({name: record
    with "seconds", "reused", "interrupted_seconds", "command"; or a bare number of seconds}),
    in fit's order, its total (seconds, `fmt.duration`) split by whose time it is when not all
    of it is this command's (`total_words`).

    A stage this run ran after a stop: "tune 12.0 s (5.1 s of it in earlier runs that stopped
    in it)" (any stop, an error too: "an interruption" read as a Ctrl-C). A stage reused from
    an earlier run: "rank 12.5 s (earlier run, reused)"; from runs one of which stopped,
    "export 48.4 s (earlier runs, reused)": it said "export 48.4 s (13.3 s of it before it stopped)
    (earlier run, reused)", a stop of this run's to read, where this run spent nothing on it
    and the seconds were two earlier runs'."""
    parts = []
    # In the pipeline's order: a stage first recorded later (evaluate after a fit without
    # corruptions) came after report.
    for name, info in fit_order(stages):
        info = info if isinstance(info, dict) else {"seconds": info}
        note = stage_time_note(info)  # the report's "Time per stage" says the same
        parts.append(f"{name} {_seconds(info.get('seconds'))}" + (f" ({note})" if note else ""))
    return "time per stage: " + ", ".join(parts) + "; " + total_words(stages)


def total_words(stages: dict) -> str:
    """The "total …" of `stage_time_line` (fit's closing table) for run.json's "stages":
    "total 1 min 13.7 s" when this command ran every stage whole, else the total split by
    whose seconds they are, e.g. "total 1 min 13.7 s: 7.6 s this command's, 5.1 s earlier
    runs' that stopped in tune (their unfinished work included), 1 min 0.9 s reused from
    earlier runs", each part said only when not 0 (seconds, `fmt.duration`; a stage's record
    with "command" ran on its own: "other commands'"). Then, when the report stage ran in
    this command, why report.md's total differs: "report.md's table was written during the
    report stage, before its 0.8 s were known" (it has no report row, or an earlier fit's). A
    fit's summary said "total 13 min 43.7 s (the last run:
    13 min 26.6 s)" beside report.md's "total 13 min 41.1 s": "the last run" meant this
    command, and the stopped runs' and reused seconds were not told apart."""
    total = this = stopped = reused = other = 0.0
    where, report = [], 0.0
    for name, info in fit_order(stages):
        info = info if isinstance(info, dict) else {"seconds": info}
        s = float(info.get("seconds") or 0)
        before = float(info.get("interrupted_seconds") or 0)
        total += s
        if info.get("reused", False):
            reused += s
        elif info.get("command") and not before:
            other += s
        else:
            this += s - before
            stopped += before
            where += [name] if before else []
            report = s if name == "report" else report
    text = f"total {_seconds(total)}"
    if this != total:
        said = [(this, "this command's"),
                (stopped, f"earlier runs' that stopped in {' and '.join(where)} (their "
                          "unfinished work included)"),
                (reused, "reused from earlier runs"), (other, "other commands'")]
        text += ": " + ", ".join(f"{_seconds(x)} {w}" for x, w in said if x)
    if report:
        text += (f"; report.md's table was written during the report stage, before its "
                 f"{_seconds(report)} were known")
    return text


def _where(path) -> str:
    """A path of the closing table: absolute as typed, links kept (text.absolute, as
    `write_report` returns it and `report` and `export` print it; Path.resolve named the
    report through a link's target), on one line (text.escaped)."""
    return escaped(absolute(path))


def _not_retrained(before: dict, after: dict) -> list[str]:
    """A note per best single model (overall, within the budget) that is no member of the
    ensemble, under --retrain-full: the export retrained only members, so it measured none
    for it (`after[key]` None) and the table above has no row for it; its figures before
    retraining, labelled so. The table left it out without a word (under a budget the best
    single often fits none)."""
    notes, named = [], set()
    for key, what in (("best_single", "the best single model"),
                      ("best_single_in_budget", "the best single model within the budget")):
        was = before.get(key)
        if key not in after or after[key] is not None or not was or was["trial"] in named:
            continue
        named.add(was["trial"])
        notes.append(f"note: {what} ({was['trial']}) is no member of the ensemble, so it was "
                     "not retrained and has no row above; before retraining: test accuracy "
                     f"{_f(was.get('accuracy'))}, NLL {_f(was.get('nll'))}")
    return notes


#: Failures named one by one in the closing table; the rest are counted (the report lists all).
_NAMED_FAILURES = 5


#: (one, more) of each kind of failure the closing table counts: "1 trial of the sweep failed".
_FAILED_TRIALS = ("trial of the sweep failed", "trials of the sweep failed")


#: (one, more) of the entries rank scored once, as an earlier entry: no failure of their own.
_DUPLICATES = ("entry was ranked as an earlier entry (a duplicate)",
               "entries were ranked as earlier entries (duplicates)")


def _failure_lines(run, meta) -> list[str]:
    """What the run skipped and went on without, a line per stage: the modules a sweep's
    budget gave no trial, the modules that could not be ranked (entries ranked as an earlier
    one, duplicates, apart: `failures.split_unranked`), the trials that failed (then
    that they are done and how to run them again: `sweeps.rerun_failed_words`, ending in the
    command that redoes them, `sweepwords.redo_words`: fit's where it plans them)
    and the members left out of the export, each named
    with its reason (at most _NAMED_FAILURES, then a count). A user who reads only the
    terminal must not miss that part of the catalogue or of the sweep was lost."""
    from hubensemble import candidate
    from hubensemble.rank.ranking import Ranking
    from hubensemble.report.failures import split_unranked
    from hubensemble.sweeps import rerun_failed_words
    from hubensemble.sweepstate import untried
    from hubensemble.sweepwords import redo_words

    found = []
    if run.ranking_json.exists():
        try:
            ranking = Ranking.from_json(read_json(run.ranking_json))
        except (OSError, ValueError, KeyError, TypeError):
            ranking = None
        if ranking is not None:
            duplicates, unranked = split_unranked(ranking)
            found.append((("module could not be ranked", "modules could not be ranked"),
                          [(r["name"], r.get("reason")) for r in unranked]))
            found.append((_DUPLICATES, [(r["name"], r.get("reason")) for r in duplicates]))
    cands, _ = candidate.scan(run.candidates)
    found.append((_FAILED_TRIALS,
                  [(c.trial, c.record.get("reason")) for c in cands if c.status == "failed"]))
    found.append((("member left out of the export", "members left out of the export"),
                  [(s.get("trial"), s.get("reason"))
                   for s in (meta.get("export") or {}).get("skipped") or []]))
    lines = [f"skipped: {', '.join(names)} got no trial of the {sweep} sweep: {why}"
             for sweep, names, why in untried(run.candidates, untuned_sweeps(meta))]
    failures = False
    for what, items in found:
        if not items:
            continue
        named = "; ".join(f"{name} ({_short(reason)})" for name, reason in
                          items[:_NAMED_FAILURES])
        more = (f"; and {len(items) - _NAMED_FAILURES} more"
                if len(items) > _NAMED_FAILURES else "")
        lines.append(f"skipped: {len(items)} {what[len(items) != 1]}: {named}{more}")
        if what == _FAILED_TRIALS:  # done, as tune's summary says: how to run them again,
            # in fit's words (its command, where it plans the trial; a later tune's else):
            # tune's "the same command again (a chief/worker sweep …)" is no fit's.
            failed = [t for t, _ in items]
            then = " and ".join(dict.fromkeys(redo_words(run.path, t) for t in failed))
            lines.append("  " + rerun_failed_words(run.candidates, failed, then=then))
        failures = failures or what != _DUPLICATES
    # A module the budget gave no trial is no failure, and its line above is whole: the
    # pointer only when a failure's reason may be cut or left out here (a new-user check saw
    # it under a budget skip alone).
    if failures:
        lines.append(f"  (every failure with its whole reason: {run.report_html.name}, "
                     "\"What failed and why\")")
    return lines


def _short(reason, width: int = 200) -> str:
    text = " ".join(str(reason or "no reason recorded").split())
    return text if len(text) <= width else text[:width - 1] + "…"


def result_repr(result) -> str:
    """A FitResult's repr, a few fields in one line: its run folder, the selected modules,
    the ensemble's size, test accuracy of ensemble and best single, the export and report
    paths, and how many data files were skipped and why (`result.summary()` has the table, the
    fields the records). The dataclass repr printed every ranking row, member, curve point and
    corruption (about 20,000 characters for a 3-module quick run): a notebook cell's echo of
    ``result`` was a screen of JSON."""
    ensemble = result.ensemble or {}
    selected = getattr(result.ranking, "selected", None)
    parts = [f"run_dir={result.run_dir!r}"]
    if selected is not None:
        parts.append(f"selected={list(selected)!r}")
    if ensemble.get("members") is not None:
        parts.append(f"ensemble={_n(len(ensemble['members']), 'member')} of "
                     f"{_n(ensemble.get('n_candidates', '?'), 'candidate')}")
    test = result.metrics or {}
    for key, label in (("ensemble", "test_accuracy"), ("best_single", "best_single_accuracy")):
        value = (test.get(key) or {}).get("accuracy")
        if value is not None:
            parts.append(f"{label}={value:.4f}")
    parts += [f"export_path={result.export_path!r}", f"report_paths={result.report_paths!r}"]
    if result.skipped:  # by why, as summary() and the data summary count them (sniff)
        from hubensemble.data.sniff import skipped_words

        words = skipped_words(reason for _, reason in result.skipped)
        parts.append(f"skipped={_n(len(result.skipped), 'file')} ({words})")
    return f"FitResult({', '.join(parts)})"
