"""`evaluate`'s words: a result (`evaluate.evaluate_model`'s dict) as the terminal's table.

Split from evaluate.py, which measures; this module only formats what it measured (reading
the export's metadata alone, for the run named in the way on of an ensemble-only result)."""

from __future__ import annotations

import os

from hubensemble.data.coverage import balanced_line
from hubensemble.data.sniff import named_skips
from hubensemble.data.taskwords import SKIPS_NAMED
from hubensemble.fileio import json_object
from hubensemble.heldout import not_held_out_note, recorded_count, scored_count
from hubensemble.text import counted, escaped, names_listed


#: robustness.json's "best_single_way" when an export written again by this hubensemble
#: (serve_members, its members and best single named in its metadata) and evaluated again
#: gives the best single member's figures: neutral, as the record is read from Python and
#: from the command line, and worded with the commands where it is shown (`_way_on`; the
#: report's robustness section: its run's `export`, then `evaluate`). Here, not in
#: evaluate, which imports this module: one import each way was a cycle.
EXPORT_AGAIN = "export"


def _cell(entry, key):
    """A metric to 4 decimals, or "-" where the entry or the metric is missing or no
    number (a saved result edited by hand: it raised KeyError or TypeError)."""
    value = json_object(entry).get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{value:.4f}" if ok else "-"


def _whose(result: dict) -> str:
    """" of the data of the run R, which the export's metadata names (the export is outside
    it)" when the scored data is that of a run (`not_held_out`'s "run", absolute) other than
    the folder holding the export (`export --run R --out DIR`), else "": the task's source
    said it (`evaluationtask.outside_run_words`), in evaluation.json alone."""
    run = json_object(result.get("not_held_out")).get("run")
    model = result.get("model")
    if not (isinstance(run, str) and isinstance(model, str)) or os.path.dirname(
            os.path.abspath(model)) == os.path.abspath(run):
        return ""
    return (f" of the data of the run {escaped(run)}, which the export's metadata names (the "
            "export is outside it)")


def format_evaluation(result: dict, *, skipped_in: str | None = None) -> str:
    """An `evaluate_model` result as a plain-text table for the terminal: one row per
    condition (clean, each corruption x severity, the mean), ensemble and best single
    accuracy / NLL / ECE to 4 decimals ("-" where a value is missing), after lines naming
    the data's files that were skipped (up to three, with their reasons; `skipped_in` as
    `Task.summary`'s, where the whole list is) and
    the examples of its other splits that were not scored (e.g. the train and val splits of
    a folder with only train/); first, when scored images trained or chose the export
    (`not_held_out`, `data_changed`), a line saying these figures are not a held-out measure;
    last, with unbalanced classes, the balanced accuracies, clean and their mean over the
    corruptions (worded as fit's closing table: `data.coverage.balanced_line`)."""
    single = not result.get("best_single_missing") and result.get("best_single")
    # The seed is the corruptions' noise's (--seed): a clean-only table's "seed 0" named a
    # number nothing in it depends on (a new-user check).
    seed = f"; corruptions' seed {result.get('seed')}" if result.get("corruptions") else ""
    what = "Robustness" if result.get("corruptions") else "Accuracy, NLL and ECE"  # (clean)
    # Read as the notes read them: a saved result edited by hand raised KeyError here.
    n, split = scored_count(result), result.get("split") or "?"
    head = f"{what} on the {split} split ({n} examples{seed})"
    lines = [head]
    # With the table, not only in the warning (-q silences it; the table stood alone).
    # A result saved and edited (robustness.json): a record or a count of another kind is not
    # recorded, as the notes read it (a "task" string raised AttributeError, a "folder" gone
    # KeyError).
    same = result.get("same_data_as_export")
    held = {} if same else json_object(result.get("not_held_out"))
    changed = json_object(result.get("data_changed"))
    counts = {s: recorded_count(changed, s) or 0 for s in ("train", "val")}
    seen = max(recorded_count(held, "images") or 0, counts["train"] + counts["val"])
    # The export's own test split holding copies of its train or val images: the note
    # itself, as fit's table gives it (a test/ folder scored alone has no data summary).
    copies = not_held_out_note(result) if same else None
    if copies:
        lines.append(copies)
    elif seen:
        # Which, and the way on, here too: -q silences the warning this pointed to.
        by = changed if seen > (recorded_count(held, "images") or 0) else held
        kinds = " or ".join(f"{word} ({by[s]})" for s, word in (
            ("train", "training"), ("val", "validation")) if recorded_count(by, s))
        why = (f"by name; the folder it was fit on, changed since: "
               f"{changed.get('folder') or 'not recorded'}"
               if by is changed else f"images of its run, {held.get('run') or 'not recorded'}; "
               "score images it never saw for a held-out figure")
        lines.append(f"not a held-out measure: {seen} of the {n} scored images are "
                     f"{kinds} images of the export ({why})")
    data = json_object(result.get("task"))
    skipped = data.get("skipped") or []
    if skipped:
        files = (f"{len(skipped)} of {counted(data['files'], 'file')}"
                 if data.get("files") is not None else counted(len(skipped), "file"))
        shown = named_skips(skipped[:SKIPS_NAMED])  # a reason said once after its files
        more = (f"; and {len(skipped) - SKIPS_NAMED} more"
                + (f", {skipped_in}" if skipped_in else "") if len(skipped) > SKIPS_NAMED else "")
        was, are = ("was", "is") if len(skipped) == 1 else ("were", "are")
        lines.append(f"{files} of the data {was} skipped and {are} not in these figures "
                     f"({shown}{more})")
    unscored = json_object(data.get("unscored"))
    if unscored:  # e.g. a folder with only train/: its test split was carved off train
        others = ", ".join(f"{s} {k}" for s, k in unscored.items())
        if result.get("same_data_as_export"):
            # Its test/ folder scored alone is the export's data too: the other splits are
            # the export's record of them, not in the folder ("117 of the data's 495" read
            # as if it held 495); on val or train, the note said the *unscored* splits
            # "trained and chose it" (new-user checks).
            why = ("they trained and chose it" if split == "test" else f"the {split} split "
                   f"scored here {'trained' if split == 'train' else 'chose'} it, so these "
                   "figures are not a held-out measure")
            lines.append(f"scored: the {split} split{_whose(result)}, {n} examples; not "
                         f"scored: {others} (the data the export was made on: {why})")
        else:
            # The folder's reason on a folder only: on an npz it spoke of class folders.
            folder = str(data.get("spec") or data.get("source") or "").startswith("folder:")
            why = "evaluate scores one split, --split" + (
                "; a folder of class folders without train/ is one test set of all its "
                "images" if folder else "")
            total = sum(recorded_count(unscored, s) or 0 for s in unscored)
            lines.append(f"scored: the {split} split, {n} of the data's "
                         f"{n + total if isinstance(n, int) else '?'} examples; not scored: "
                         f"{others} ({why})")
    classes = json_object(result.get("classes"))
    if classes.get("majority"):
        lines.append(f"note: {classes['majority']}")
    if classes.get("few"):
        lines.append(f"note: {classes['few']}")
    absent = classes.get("absent")
    if absent:
        verb = "has" if len(absent) == 1 else "have"
        lines.append(f"{len(absent)} of the model's classes {verb} no example here (metrics "
                     f"cover the others): {names_listed(absent, 10)}")
    # Another tool's SavedModel (no asset): "model", not "ensemble"/"ens", in the table.
    only = "model" if "export" in result and result["export"] is None else "ensemble"
    column = "model " if only == "model" else "ens "
    if single:
        b = json_object(result["best_single"])
        lines.append(f"best single member: {b.get('trial', '?')} ({b.get('module') or '?'})")
    else:
        lines.append(f"{only} only: {ensemble_only_note(result)}{_way_on(result)}")
    cols = ["accuracy", "nll", "ece"]
    short = {"accuracy": "acc", "nll": "NLL", "ece": "ECE"}
    header = f"{'condition':<22}{'sev':>4}"
    for c in cols:
        header += f"{column + short[c]:>12}" + (f"{'single ' + short[c]:>12}" if single else "")
    lines.append(header)
    lines.append("-" * len(header))

    def row(label, sev, entry):
        text = f"{label:<22}{sev:>4}"
        for c in cols:
            text += f"{_cell(json_object(entry).get('ensemble'), c):>12}"
            if single:
                text += f"{_cell(json_object(entry).get('best_single'), c):>12}"
        return text

    lines.append(row("clean", "-", result.get("clean")))
    for name, by_sev in json_object(result.get("corruptions")).items():
        for sev, entry in json_object(by_sev).items():
            lines.append(row(name, sev, entry))
    if result.get("mean_corrupted"):
        lines.append("-" * len(header))
        lines.append(row("mean over corruptions", "", result["mean_corrupted"]))
    if balanced := _balanced_text(result, single):
        lines.append(balanced)
    return "\n".join(lines)


#: The way on that evaluate's "best_single_missing" ended in before it was given apart
#: ("best_single_way": `_way_on` words it, the report too): a note stored so by an earlier
#: version (robustness.json) loses it where it is shown, which said it twice in one line.
_LEGACY_WAYS = (" (export it again with this hubensemble to compare with the best single "
                "member)", " (export it again to compare with it)")


def ensemble_only_note(result: dict) -> str | None:
    """evaluate's result's (or robustness.json's) "best_single_missing", without the way on
    a note of an earlier version ended in (`_LEGACY_WAYS`) when "best_single_way" is
    EXPORT_AGAIN, whose words follow it where it is shown (`_way_on`, the report's
    robustness section)."""
    note = result.get("best_single_missing")
    if isinstance(note, str) and result.get("best_single_way") == EXPORT_AGAIN:
        for legacy in _LEGACY_WAYS:
            note = note.removesuffix(legacy)
    return note


def _way_on(result: dict) -> str:
    """". To compare with the best single member, run `hubensemble export --run RUN`,
    then run this evaluate command again" (from Python: "call export_ensemble(run_dir=RUN),
    then call evaluate_model() again"), in the caller's words (`lockwords.command_words`),
    when the result's "best_single_way" is `evaluate.EXPORT_AGAIN`; else "". The run is the
    one the export's metadata names (RUN when it names none, or the export is gone), with --out
    (out_dir) when the export is not in RUN/export, so the command writes the folder
    evaluated. The table printed "ensemble only: NOTE" with no command, where the report
    gives its run's (report/sections.py)."""
    if result.get("best_single_way") != EXPORT_AGAIN:
        return ""
    from hubensemble.formats import export_command, read_export_metadata
    from hubensemble.lockwords import call_verb, on_command_line

    model = result.get("model")
    # The export's own command (formats.export_command): its run, --out unless RUN/export.
    export = export_command(read_export_metadata(model, strict=False) if model else {}, model)
    again = "this evaluate command" if on_command_line() else "evaluate_model()"
    return (f". To compare with the best single member, {call_verb()} {export}, then "
            f"{call_verb()} {again} again")


def _balanced_text(result: dict, single) -> str | None:
    """The table's balanced accuracy line, worded as fit's closing table
    (`data.coverage.balanced_line`), when the entries hold one (unbalanced classes): the
    ensemble's and the best single member's, clean, then their mean over the corruptions."""
    figures = []
    for when, entry in (("", result.get("clean")),
                        (" (mean over corruptions)", result.get("mean_corrupted"))):
        for who, key in (("ensemble", "ensemble"), ("best single", "best_single")):
            value = json_object(json_object(entry).get(key)).get("balanced_accuracy")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    single or key == "ensemble"):
                figures.append((who + when, value))
    return balanced_line(result.get("split", "test"), figures) if figures else None
