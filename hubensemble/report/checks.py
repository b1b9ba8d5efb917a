"""What the report checks in a run's JSON files before it reads them, and how it words what
it finds: valid JSON of another shape (a string where an object belongs) is damage, named
with its key and kind, never an AttributeError deep in a section."""

from __future__ import annotations

import json
import math
import re

from hubensemble.fileio import json_kind
from hubensemble.report.render import Code, Inline

# The kinds of the values each reader uses, by path ("*": every item of a list or object).
# A value that is absent or null is not checked: every reader treats it as not recorded.
RUN_KINDS = [
    (("data",), dict), (("data", "task"), dict), (("data", "args"), dict),
    (("data", "task", "sizes"), dict), (("data", "task", "class_names"), list),
    (("data", "task", "image_size"), list), (("data", "task", "skipped"), list),
    (("data", "task", "dropped"), list), (("data", "task", "ignored"), dict),
    (("data", "task", "oriented"), dict), (("data", "task", "turned"), dict),
    (("data", "task", "shrunk"), dict), (("data", "task", "unservable"), dict),
    (("data", "task", "dark"), dict), (("data", "task", "not_images"), dict),
    (("data", "task", "duplicates"), dict), (("stages",), dict), (("versions",), dict),
    (("export",), dict), (("export", "skipped"), list), (("export", "skipped", "*"), dict),
    (("export", "tflite"), dict), (("export", "members"), list), (("modules",), dict),
]
ENSEMBLE_KINDS = [
    (("members",), list), (("members", "*"), dict), (("members", "*", "trial"), str),
    (("members", "*", "hparams"), dict), (("val",), dict), (("val", "best_single"), dict),
    (("val", "best_single_in_budget"), dict), (("test",), dict), (("test", "ensemble"), dict),
    (("test", "best_single"), dict), (("test", "best_single_in_budget"), dict),
    (("val_curve",), list), (("val_curve", "*"), dict), (("test_curve",), list),
    (("test_curve", "*"), dict), (("coverage",), dict), (("cost",), dict),
    (("cost", "ensemble"), dict), (("cost", "path"), list), (("cost", "path", "*"), dict),
    (("limits",), dict), (("size_rule",), dict), (("skipped",), list),
]
ROBUSTNESS_KINDS = [
    (("clean",), dict), (("clean", "ensemble"), dict), (("clean", "best_single"), dict),
    (("corruptions",), dict), (("corruptions", "*"), dict), (("corruptions", "*", "*"), dict),
    (("corruptions", "*", "*", "ensemble"), dict), (("mean_corrupted",), dict),
    (("mean_corrupted", "ensemble"), dict), (("best_single",), dict), (("members",), list),
    (("members", "*"), dict), (("skipped",), list), (("not_held_out",), dict),
    (("data_changed",), dict), (("classes",), dict),
    (("task",), dict), (("task", "skipped"), list), (("task", "ignored"), dict),
    (("task", "oriented"), dict), (("task", "turned"), dict), (("task", "shrunk"), dict),
    (("task", "unservable"), dict), (("task", "dark"), dict), (("task", "not_images"), dict),
    (("export",), dict),
]
DISTILL_KINDS = [
    (("teacher",), dict), (("teacher", "members"), list), (("student",), dict),
    (("student", "cost"), dict), (("student", "test"), dict), (("student", "val"), dict),
    (("gap",), dict),
]
_EXPECTED = {dict: "an object", list: "an array", str: "a string"}

_METRICS = ("accuracy", "nll", "ece", "balanced_accuracy")
_MODELS = ("ensemble", "best_single", "best_single_in_budget")
# The values each writer writes as finite numbers (`ensemble.run_ensemble`: accuracy in
# [0, 1], cross-entropy and ECE; `evaluate.write_evaluation` the same per condition), by
# path as in the *_KINDS lists: a hand-edited "x" or a NaN was shown as "x" or "–" with no
# word of why (`number_problems`).
ENSEMBLE_NUMBERS = ([(split, model, m) for split in ("val", "test") for model in _MODELS
                     for m in _METRICS]
                    + [(curve, "*", m) for curve in ("val_curve", "test_curve")
                       for m in ("ce", "accuracy", "nll")])
ROBUSTNESS_NUMBERS = ([(part, model, m) for part in ("clean", "mean_corrupted")
                       for model in ("ensemble", "best_single") for m in _METRICS]
                      + [("corruptions", "*", "*", model, m) for model in ("ensemble",
                                                                           "best_single")
                         for m in _METRICS])

# distill.json's figures the report shows (`distill.run_distill`: the student's accuracy,
# cross-entropy and ECE as ensemble.json's, its cost, the share of the gain and the paired
# test-image counts): a hand-edited "x" was shown as "x" with no word of why.
DISTILL_NUMBERS = ([("student", split, m) for split in ("val", "test") for m in _METRICS]
                   + [("student", "cost", k) for k in ("gflops", "params")]
                   + [("gap_closed",), ("cost_ratio",)]
                   + [("gap", k) for k in ("n", "images", "z", "student_images", "single_only",
                                           "ensemble_only")])
# distill.json's fields its writer writes null by design (`distillcompare._compare`):
# `gap_closed` when the ensemble is not more accurate than the best single member on the
# test split, there is no test split, or only the ensemble's figures are of a retrained
# export; `cost_ratio` when the ensemble has no recorded cost or the student 0 GFLOPs; the
# student's `gflops` when its multiply-accumulates were not counted (`Cost.summary`, with
# "gflops_not_counted"). Such a null is the writer's "none", not damage (`number_problems`'
# `nullable`).
DISTILL_NULLABLE = (("gap_closed",), ("cost_ratio",), ("student", "cost", "gflops"))

# The test figures of a retrained export's members (its metadata's "metrics" "test",
# `export.retrain`: as ensemble.json's "test").
EXPORT_NUMBERS = [("metrics", "test", model, m) for model in _MODELS for m in _METRICS]


def _found(doc, path, *, null_last=False):
    """[(shown key, value, parent, key)] of the values at `path` in `doc` that are present
    and not null; `null_last`: the last part's values present as null too."""
    items = [("", doc, None, None)]
    for i, part in enumerate(path):
        found = []
        keep_null = null_last and i == len(path) - 1
        for name, value, _, _ in items:
            if part == "*":
                pairs = (value.items() if isinstance(value, dict) else
                         enumerate(value) if isinstance(value, list) else ())
                found += [(f"{name}[{k!r}]" if isinstance(k, str) else f"{name}[{k}]", v,
                           value, k) for k, v in pairs if v is not None or keep_null]
            elif isinstance(value, dict) and part in value and (
                    value[part] is not None or keep_null):
                found.append((f"{name}.{part}" if name else part, value[part], value, part))
        items = found
    return items


def kind_problems(doc, kinds, *, drop=False) -> list[str]:
    """What in `doc` (a JSON object) is of another kind than `kinds` says, as "its "data" is
    a JSON string, expected an object", outer keys first. `drop`: each such value is removed
    from `doc`, so that the readers after this see it as not recorded."""
    problems = []
    for path, want in kinds:
        for name, value, parent, key in _found(doc, path):
            if not isinstance(value, want):
                problems.append(f"its \"{name}\" is {json_kind(value)}, expected "
                                f"{_EXPECTED[want]}")
                if drop:
                    parent[key] = None
    return problems


def number_problems(doc, paths, nullable=()) -> list[tuple[str, str]]:
    """[(field, what it is)] of the values at `paths` in `doc` (a JSON object; "*": every
    item) that are present but not a finite number (a string, a bool, null, NaN or
    ±Infinity, which Python's json reads), as ("test.best_single.accuracy", 'the JSON
    string "x"'), each set to NaN in `doc` so that the report's numbers show it as "–" and
    its plots leave it out. A field absent, or an object above it absent or null: not
    recorded, not checked; the field itself null is (its writers write a number, NaN for
    no examples: `metrics.accuracy`), a hand edit as "x" is. `nullable`: the paths whose
    writer writes null by design (`DISTILL_NULLABLE`): a null there is kept as it is, not
    named; a string, a bool, NaN or ±Infinity there still is."""
    found = []
    for path in paths:
        for name, value, parent, key in _found(doc, path, null_last=path not in nullable):
            if (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value)):
                continue
            shown = (json.dumps(value) if isinstance(value, float) or value is None
                     else f"{json_kind(value)} {json.dumps(value)[:40]}")  # NaN, null
            found.append((name, shown))
            parent[key] = float("nan")
    return found


def numbers_note(file, problems, again) -> Inline | None:
    """'Note: ensemble.json's "test.best_single.accuracy" is the JSON string "x", not a finite
    number as its writer writes (shown as "–"): edited by hand, or written by another
    version; `CMD` writes it again.' for `problems` (`number_problems`) of the file at
    `file`, `again` the command (a str); None when there are none."""
    if not problems:
        return None
    said = "; ".join(f'"{name}" is {what}' for name, what in problems)
    return Inline(f"Note: in {file}, {said}: not a finite number as its writer writes (shown "
                  "as \"–\", left out of the plots): edited by hand, or written by another "
                  "version; ", Code(again), " writes it again.")


# A command of advice in backticks (`text._COMMAND_START`'s: hubensemble's, after any
# environment assignments, or a file command's such as `rm -r FOLDER`).
_COMMAND = re.compile(r"`((?:[A-Za-z_]\w*=\S*\s+)*(?:(?:python3?\s+-m\s+)?hubensemble"
                      r"|cp|mv|rm|ls|mkdir|tar)\b[^`]*)`")


def note(message) -> Inline:
    """A reader's message (RunError text) as report text: its commands in backticks become
    code spans, as the report's own hints (they were shown with the backticks escaped)."""
    parts, at = [], 0
    message = str(message)
    for m in _COMMAND.finditer(message):
        parts += [message[at:m.start()], Code(m.group(1))]
        at = m.end()
    return Inline(*parts, message[at:])
