"""The distilled student as an export (`hubensemble export --student`): which student of
RUN/distill/ it is, checked against the teacher export it learned from, and the one-member
ensemble and metadata record the export stage (`export.stage.export_ensemble`) writes it
from. Files only, no TensorFlow: the command line refuses before any work."""

from __future__ import annotations

import os

from hubensemble import candidate, options
from hubensemble.distillcompare import distilled_with, read_distill
from hubensemble.errors import RunError
from hubensemble.formats import (DISTILL_DIR, export_identity, metadata_path,
                                 read_export_metadata)
from hubensemble.text import absolute, escaped, shell_word, shown_time


def student_for_export(run_dir, student=True, *, retrain_full=False,
                       skip_missing=False) -> candidate.Candidate:
    """The student `export --student` writes: the candidate folder RUN/distill/<trial>/ of
    module `student` (a str), or with `student` True the one RUN/distill.json compares (the
    last `distill`), else the only one there. Files only (no TensorFlow), so the command line
    refuses before any work.

    Raises RunError when the run has no distill.json (naming `hubensemble distill`), holds no
    student of that module (listing the students there and the command that trains one), the
    student's weights file is missing, or its teacher export (trial.json "teacher") is gone
    or changed since it was distilled: other members, or other content (`teacher_content`:
    ensemble weights, member weights, classes; a student distilled before that was recorded, by
    its metadata's sha256 and "created": `formats.export_identity`; before those, by members
    only), as the student would be served as the
    distillation of an ensemble it never learned from. OptionError for a `student` that is
    neither True nor a non-empty module name, with `retrain_full` (export's: it retrains
    members on their labels, not on a teacher) and with `skip_missing` (it leaves members out
    of an ensemble; the student is one model, exported whole or refused).
    """
    from hubensemble.lockwords import command_words, on_command_line, option_word, run_words
    from hubensemble.rundir import Run

    # The words the user typed: a flag on the command line, a keyword from Python (the
    # command line was told "skip_missing (--skip-missing)", a keyword it never typed).
    cli = on_command_line()
    word = {kw: option_word("--" + kw.replace("_", "-"), kw)
            for kw in ("student", "retrain_full", "skip_missing")}
    given = option_word("--student", "student=…")  # the student, as the caller asked for it
    if retrain_full:
        raise options.OptionError(f"{word['retrain_full']} retrains members on their labels; "
                                  f"the student ({given}) is exported as distill "
                                  "trained it: give one of them")
    if skip_missing:
        raise options.OptionError(f"{word['skip_missing']} leaves missing members out of an "
                                  f"ensemble's export; the student ({given}) is one "
                                  f"model, exported whole or refused: leave {word['skip_missing']}"
                                  " out")
    if student is not True and (not isinstance(student, str) or not student):
        alone = "given alone" if cli else "True"
        raise options.OptionError(f"{word['student']} must be a module name of RUN/distill/, "
                                  f"or {alone} for the last distilled student, got {student!r}")
    run = Run(run_dir)
    run.require_started()
    # Its folders as every "delete FOLDER" names one: absolute (a user pastes it from any
    # folder; "runs/r/distill/…" was the working folder's) and on one line (`text.escaped`).
    where, students = escaped(absolute(run.path)), escaped(absolute(run.distill))
    if not run.distill_json.is_file():
        raise RunError(f"{where} has no {run.distill_json.name}: no student was distilled "
                       f"there; {run_words('distill', run.path)} first")
    scanned = [c for c in candidate.scan(run.distill)[0] if c.module]
    kept = [c for c in scanned if c.ok]
    there = ", ".join(f"{c.module} ({run.distill.name}/{c.trial})" for c in kept) or "none"
    last = ((read_distill(run.path) or {}).get("student") or {}).get("module")
    wanted = last if student is True else student
    if not any(c.module == wanted for c in kept):
        # A student whose files were damaged since (its weights cut or gone): said so, with
        # its distill command, not "not in RUN/distill; the students there: none" (a
        # new-user check).
        for c in scanned:
            if c.module == wanted and c.status == "ok" and c.problems:
                folder = escaped(absolute(c.folder))
                raise RunError(f"the student {c.trial}'s folder {folder} cannot be "
                               f"exported: {'; '.join(c.problems)}; "
                               f"{student_words(run.path, c.module, c.record)} again "
                               f"(delete {folder} first)")
    if student is True:
        found = [c for c in kept if c.module == last] or (kept if len(kept) == 1 else [])
        if not found:
            raise RunError(f"{'--student' if cli else 'student=True'} names no module and "
                           f"{run.distill_json.name}'s student {last!r} is not in "
                           f"{students}; the students there: {there}. Name one: "
                           f"{'--student MODULE' if cli else 'student=MODULE'}")
    else:
        found = [c for c in kept if c.module == student]
        if not found:
            raise RunError(f"{students} holds no student of module {student!r}; the students "
                           f"there: {there}. Train one with "
                           f"{command_words('distill', run.path, **student_args(student))}, or "
                           "name one of those")
    cand = found[-1]
    redo = f"{student_words(run.path, cand.module, cand.record)} again"
    if cand.weights_path is None or not cand.weights_path.is_file():
        weights = cand.weights_path or cand.folder / candidate.WEIGHTS_FILE
        raise RunError(f"the student {cand.trial}'s weights file "
                       f"{escaped(absolute(weights))} is "
                       f"missing: {redo}")
    _check_teacher(cand, _teacher_path(cand, run.path), redo)
    return cand


def student_args(module: str) -> dict:
    """distill's flag and keyword for student `module`, as `lockwords.command_words` takes
    them: "--student NAME" (one shell word as typed, text.shell_word), "student='NAME'"."""
    return dict(flags=f"--student {shell_word(module)}", keywords=f"student={module!r}")


def student_words(run_dir, module: str, record=None) -> str:
    """"run `hubensemble distill --run RUN --student NAME`" on the command line, "call
    run_distill(run_dir='RUN', student='NAME')" from Python (`lockwords.run_words`): the way
    to train student `module` of run `run_dir` again, with the options its trial.json
    `record` (when given) says it was distilled with off their defaults
    (`distillcompare.distilled_with`: pasted, the words distil it by the same rule; a missing
    or unreadable weights file's words named none, a new-user check)."""
    from hubensemble.lockwords import run_words

    flags, keywords = distilled_with(record) if record is not None else ("", "")
    args = student_args(module)
    return run_words("distill", run_dir,
                     flags=" ".join(filter(None, (args["flags"], flags))),
                     keywords=", ".join(filter(None, (args["keywords"], keywords))))


def student_as_ensemble(cand) -> dict:
    """ensemble.json's shape for the one-member export of student `cand` (a Candidate of
    RUN/distill/): its one member at weight 1, the objective "distilled", and its trial.json
    "val"/"test" records ({"ce", "accuracy"}) as the ensemble's and the best single's."""
    rec = cand.record
    entry = {"trial": cand.trial, "module": cand.module, "handle": cand.handle,
             "hparams": cand.hparams, "seed": rec.get("seed"), "weight": 1.0}

    def split(name):
        got = rec.get(name)
        return got and {"ensemble": got, "best_single": {"trial": cand.trial, **got}}

    return {"objective": "distilled", "members": [entry], "val": split("val"),
            "test": split("test")}


def student_export_record(cand, run_dir) -> dict:
    """The export metadata's "student" for student `cand` (a Candidate of RUN/distill/ of the
    run at `run_dir`): its module, trial, folder (relative to the run) and the teacher export
    it learned from (trial.json "teacher": export (`_teacher_path`), members, created,
    metadata_sha256 (`formats.export_identity`'s, as the export's own "made_from" digests;
    None for a student distilled before it was recorded), content (`teacher_content`;
    None likewise), retrain_full)."""
    teacher = cand.record.get("teacher") or {}
    kept = ("members", "created", "metadata_sha256", "content", "retrain_full")
    return {"module": cand.module, "trial": cand.trial, "handle": cand.handle,
            "folder": f"{DISTILL_DIR}/{cand.folder.name}",
            "description": f"the distilled student of module {cand.module}",
            "teacher": {**{k: teacher.get(k) for k in kept},
                        "export": _teacher_path(cand, run_dir)}}


def _teacher_path(cand, run_dir) -> str | None:
    """Where student `cand`'s teacher export is: inside the run at `run_dir` when it was the
    run's own (trial.json teacher "in_run"; a moved or copied run names its own), else the
    absolute path recorded."""
    teacher = cand.record.get("teacher") or {}
    if isinstance(teacher.get("in_run"), str):
        return os.path.join(os.path.realpath(run_dir), teacher["in_run"])
    return teacher.get("export") if isinstance(teacher.get("export"), str) else None


#: What a teacher export computes, by its metadata: the part that differs names the change.
CONTENT_PARTS = {"members": "its members' ensemble weights or input sizes and ranges",
                 "variables_sha256": "its members' weights (its variables' digest)",
                 "class_names": "its class names"}


def teacher_content(info: dict) -> dict | None:
    """What the export whose metadata is `info` (`formats.read_export_metadata`) computes:
    {"members": [[trial, weight (rounded to 12 digits), eval_size, input_size, value_range],
    …] in order, "variables_sha256": its "digest" (`export.metadata.variables_digest`, the
    members' weights), "class_names"}; None for an export whose metadata lacks the digest
    (written before it was recorded). Two exports of one ensemble (`export` again, `--format
    tflite`) have the same, though their "created", latencies and metadata bytes differ; other
    members, ensemble weights, member weights (`--retrain-full` retrains them) or classes give
    another. TensorFlow's own fingerprint.pb does not do: it clears the graph's function
    library, where the ensemble weights are constants (measured with TF 2.21: an export at
    weights 0.2 / 0.8 had the fingerprint of the one at 0.5 / 0.5)."""
    digest = (info.get("digest") or {}).get("variables_sha256") if isinstance(
        info.get("digest"), dict) else None
    members = info.get("members")
    if not isinstance(digest, str) or not isinstance(members, list) or not all(
            isinstance(m, dict) for m in members):
        return None

    def weight(m):
        w = m.get("weight")
        return round(float(w), 12) if isinstance(w, (int, float)) else None

    return {"members": [[m.get("trial"), weight(m), m.get("eval_size"), m.get("input_size"),
                         m.get("value_range")] for m in members],
            "variables_sha256": digest, "class_names": info.get("class_names")}


def _check_teacher(cand, path, redo) -> None:
    """RunError unless the teacher export student `cand` learned from (its trial.json
    "teacher"), at `path`, is still there with the same members and computes what it did
    (its "content", `teacher_content`: an export written again of the same ensemble, as
    `export --format tflite` writes it, is the same teacher). A student recorded before its
    teacher's content was, or a teacher without a fingerprint, is checked by the same
    metadata (its sha256: a "created" is to the second, and an export written again within it
    has the same) and "created"."""
    teacher = cand.record.get("teacher") or {}
    info = read_export_metadata(path, strict=False) if path else {}
    then, now = teacher.get("members") or [], [m.get("trial") for m in info.get("members") or []]
    written = shown_time(info["created"]) if info.get("created") else "an unrecorded time"
    content = teacher_content(info) if info and isinstance(teacher.get("content"),
                                                           dict) else None
    if not info:
        why = f"{escaped(absolute(path))} holds no export now" if path else "trial.json names none"
    elif sorted(then) != sorted(now):
        why = f"it held members {then} then, {now} now"
    elif content is not None:
        changed = [words for part, words in CONTENT_PARTS.items()
                   if teacher["content"].get(part) != content[part]]
        if not changed:
            return
        why = (f"it was written again at {written} with the same members and other content: "
               f"{' and '.join(changed)} differ")
    elif teacher.get("created") and teacher["created"] != info.get("created"):
        why = f"it was written at {shown_time(teacher['created'])} then, at {written} now"
    elif (teacher.get("metadata_sha256")
          and teacher["metadata_sha256"] != (export_identity(path, info) or {}).get(
              "metadata_sha256")):
        why = (f"it was written again since, at {written}: its metadata "
               f"{escaped(absolute(metadata_path(path)))} differs")
    else:
        return
    raise RunError(f"the student {cand.trial} learned from the teacher export at "
                   f"{escaped(absolute(path)) if path else None}, "
                   f"which changed since ({why}): the export would not be the distillation of "
                   f"the ensemble it names; {redo} to distil the current export")
