"""An export folder: one writer at a time, whose export it holds, and what becomes of an
export another command wrote where `fit` writes its own.

A run's own export (RUN/export, or any folder inside the run) is covered by the run's lock
(`rundir.Run.lock`). A folder outside it (`fit --export DIR`, `export --out DIR`) may be
named by several runs: two fits with one --export both ended well, both summaries named the
folder as their export, and it held one of them (a new-user check). Its writer now holds a
lock beside it (`folder_lock`), and the export's metadata names its run (`run_record`), so
whoever later finds another run's export there says so (`other_run`), not "an earlier
ensemble". fit moves an export it did not write there aside and keeps it
(`keep_replaced_export`, `kept_export_folder`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shlex

from hubensemble import fileio
from hubensemble.errors import RunError, held_stops
from hubensemble.fileio import owned_lock, owner_words
from hubensemble.formats import (RUN_FILE, TFLITE_METADATA, exported_run, is_tflite_export,
                                 read_export_metadata)
from hubensemble.lockwords import command_words, on_command_line, option_word
from hubensemble.rerun import data_part  # words of advice: a damaged record reads as none
from hubensemble.text import absolute, counted, shell, shell_word, shown_time, stamp_time


def keep_replaced_export(run, out_dir, command: str = "fit") -> str:
    """Moves the export in folder `out_dir` (a hubensemble export that is not the one `fit`
    recorded there: another command wrote it since, e.g. `export --retrain-full` by hand) to
    a sibling folder fit never writes (`kept_export_folder`), with its TFLite model when it
    has one (OUT-tflite/ of the same export, to KEPT-tflite/), so fit's export stage that
    follows loses nothing; a run.json record naming `out_dir` then names the kept folder
    (fit's export replaces it when it succeeds). Returns what fit says, as a warning: the
    folder, what it held (members, retrained or not, when written, from its metadata), where
    it went and the commands that evaluate and serve it. `run`: the Run. fit only warned
    before, then replaced it (a new-user check lost a --retrain-full export of minutes that
    way); the warning came too late to keep it. The two folders and the record move as one
    step for a Ctrl-C or SIGTERM (`errors.held_stops`: it acts once all are moved). Raises
    OSError when the folder or its TFLite model cannot be moved (nothing is moved then).
    `command` "export": `export --out X` over another run's export (`other_run`), which it
    replaced with a warning and kept nothing of (its run's run.json still named X); the
    words are the export's, without fit's advice on keeping an export out of its way."""
    from hubensemble.rerun import evaluate_data_flags

    out_dir = absolute(os.fspath(out_dir))
    meta = read_export_metadata(out_dir, strict=False) or {}
    if command == "fit" and (own := older_fits_own_export(run, out_dir, meta)):
        return own
    members, full = meta.get("members"), bool(meta.get("retrain_full"))
    held = ", ".join(part for part in (
        counted(len(members), "member") if isinstance(members, list) else None,
        f"retrained on train + val ({option_word('--retrain-full', 'retrain_full=True')})"
        if full else None,
        f"written {shown_time(meta['created'])}" if meta.get("created") else None) if part)
    kept = kept_export_folder(out_dir, meta)
    tflite = f"{out_dir}-tflite"
    # Its TFLite model is the one written with it (the same "created"); an older one is of
    # no export now, and the export stage removes it as before (`_remove_stale_tflite`).
    with_tflite = is_tflite_export(tflite) and meta.get("created") and (
        (fileio.read_json(os.path.join(tflite, TFLITE_METADATA)) or {}).get("created")
        == meta["created"])
    # The export, its TFLite model and this run's record of it move as one step for a Ctrl-C
    # or SIGTERM (it waits until all three are done): one between the renames left the
    # TFLite model at OUT-tflite, which the export stage that follows removes as an earlier
    # export's (kept apart from its export, then lost); one before the record, run.json
    # naming an OUT that no longer holds it. A second stop acts at once (a lock that hangs).
    with held_stops():
        os.rename(out_dir, kept)
        if with_tflite:
            try:
                os.rename(tflite, f"{kept}-tflite")
            except BaseException:  # apart from its TFLite model, the export stays where it was
                os.rename(kept, out_dir)
                raise
        recorded = run.exported_to()
        if recorded and absolute(recorded) == out_dir:  # where it is now, until fit's own
            run.modify(lambda m: m["export"].update(run.export_record(kept)))
    in_run = os.path.dirname(kept) == absolute(run.path)
    data = evaluate_data_flags(data_part(run.meta(), "args"), in_run=in_run)
    theirs = other_run(meta, run.path, run.meta(), out_dir)
    owner = run.path  # whose export it was: the run its own export advice is for
    supply = ""  # what a placeholder in the commands stands for, said plainly
    if theirs:  # another run's: its run and data, as recorded (this run's were named before)
        owner, data, supply = owning_run_words(meta, run, data)
    record = repoint_other_run(meta, run, out_dir, kept) if theirs else ""
    what = (f"{theirs} ({held}), not this run's" if theirs else
            "an export that is not the one this fit recorded there "
            f"({held or 'its metadata is unreadable'}): another command wrote it since")
    head = (f"{out_dir} held {what}. Moved it to {kept}"
            + (f" (its TFLite model to {kept}-tflite)" if with_tflite else "")
            + (", which fit leaves alone; this fit writes its own export of the ensemble to "
               if command == "fit" else f"; this export writes the ensemble of {run.path} to ")
            + f"{out_dir}.{record} ")
    if command != "fit":  # the kept export's use, without fit's advice on its own folder
        return head + (
            f"Evaluate the kept export with evaluate_model(model_dir={kept!r}, "
            f"task={_task_words(data, data_part(run.meta(), 'args'))}), serve it as any "
            f"export (predict(model_dir={kept!r}, image_paths=[IMAGE]), or TF Serving)"
            if not on_command_line() else
            f"Evaluate the kept export with `hubensemble evaluate --model {shell(kept)}{data}`, "
            f"serve it as any export (`hubensemble predict --model {shell(kept)} IMAGE`, or "
            "TF Serving)") + f", and delete the folder when you no longer need it{supply}"
    if not on_command_line():  # a Python fit: the functions and their keywords
        args = data_part(run.meta(), "args")
        run_word = "RUN" if owner == "RUN" else repr(absolute(os.fspath(
            run.path if owner == run.path else shlex.split(owner)[0])))
        return (head + f"Evaluate the kept export with evaluate_model(model_dir={kept!r}, "
                f"task={_task_words(data, args)}), serve it as any export (predict(model_dir="
                f"{kept!r}, image_paths=[IMAGE]), or TF Serving), and delete the folder when "
                "you no longer need it. To keep an export of your own out of fit's way, "
                f"write it to another folder: export_ensemble(run_dir={run_word}, out_dir=DIR"
                + (", retrain_full=True" if full else "") + ")" + supply)
    return (head + "Evaluate the kept export with `hubensemble evaluate --model "
            f"{shell(kept)}{data}`, serve it as any export (`hubensemble predict --model "
            f"{shell(kept)} IMAGE`, or TF Serving), and delete the folder when you no longer "
            "need it. To keep an export of your own out of fit's way, write it to another "
            f"folder: `hubensemble export --run {owner} --out DIR"
            # DIR is the user's to choose: a placeholder, not a path (shell made it absolute)
            + (" --retrain-full" if full else "") + "`" + supply)


def _task_words(data: str, args: dict) -> str:
    """evaluate_model's task, as a Python caller writes it, for evaluate's data words `data`
    (`evaluate_data_flags`, `owning_run_words`: "" for the run's own data, whose DataArgs
    JSON `args` are, else " --data SPEC --data-dir DIR"): "load_task('folder:/x',
    seed=3)", "TASK" (a Task of the data, which no spec loads)."""
    from hubensemble.rerun import load_task_words

    if not data.strip():
        return load_task_words(args)
    words, call = shlex.split(data), {}
    for flag, value in zip(words[::2], words[1::2]):
        call[{"--data": "spec", "--data-dir": "data_dir"}.get(flag, flag)] = value
    if call.get("spec") in (None, "SPEC"):
        return "TASK"
    return load_task_words(call)


def owning_run_words(record: dict, run, data: str) -> tuple[str, str, str]:
    """(--run's word, evaluate's data words, what the placeholders stand for) for another
    run's export (its metadata `record`) that `keep_replaced_export` moves out of the way of
    run `run`'s fit: its own run (text.shell, absolute) and the data flags its run.json
    records (`evaluate_data_flags`), else the spec its metadata names
    (`datachange.metadata_spec`), else " --data SPEC"; `data`, this run's, when both were made
    from the same data. A run the metadata names no more (moved, removed, another run there
    now) is "RUN". The third is "" or, for RUN and SPEC, a sentence saying plainly what the
    user must supply instead (a placeholder in a command, "--data SPEC (its run's data)",
    was left to be guessed). It advised `export --run` of the fit that moved it, and "--data
    SPEC" though the run recorded its spec (a new-user check)."""
    from hubensemble.datachange import metadata_spec
    from hubensemble.rerun import evaluate_data_flags

    theirs = record.get("run") if isinstance(record.get("run"), dict) else {}
    path, meta = exported_run(record), None  # (a path edited into a list: none, no TypeError)
    if path and os.path.isfile(os.path.join(path, "run.json")):
        try:
            meta = type(run)(path).meta()
        except (OSError, RunError):
            meta = None
        if meta and theirs.get("created") and meta.get("created") != theirs["created"]:
            meta = None  # another run in its folder now
    needs = [] if meta is not None else [
        "RUN is the run folder that made it (" + (
            f"{shell(path)}, which its metadata names, holds it no more" if path
            else "its metadata names none") + ")"]
    word = shell(path) if meta is not None else "RUN"
    if not of_other_data(record, run.meta()):
        return word, data, _supply(needs)
    args = data_part(meta, "args")
    flags = evaluate_data_flags(args, in_run=False) if args.get("spec") else ""
    if flags and "SPEC" not in flags:
        return word, flags, _supply(needs)
    spec = metadata_spec(record)
    if spec:
        return word, f" --data {shell_word(spec)}", _supply(needs)
    source = task_record(record).get("source")
    needs.append("SPEC is the data spec of the data that run was made from (folder:DIR, "
                 "npz:FILE, tfds:NAME; neither its run.json nor the export's metadata names "
                 "one" + (f": its source is {source!r}" if isinstance(source, str) else "")
                 + "), or evaluate it from Python with evaluate_model on that data as a Task")
    return word, " --data SPEC", _supply(needs)


def _supply(needs: list[str]) -> str:
    """" In these commands, A and B." for `needs` (what each placeholder stands for); "" for
    none."""
    return f". In these commands, {' and '.join(needs)}" if needs else ""


def repoint_other_run(record: dict, run, out_dir, kept) -> str:
    """When the export moved from `out_dir` to `kept` (its metadata `record`) is another run's
    (`other_run`) whose run.json still names `out_dir` as its export, makes that run.json name
    `kept` (its "export" record, and its export stage's copy of it, which a reused stage puts
    back), through `Run.modify`, under that run's run.json lock and only while it is the run
    that wrote it (its "created") and names `out_dir`; returns " Its run's record (RUN2/run.json)
    now names KEPT." A run.json that cannot be read or written is left as it is, and the
    words say which run now has a dangling record and how to mend it; "" when no run.json
    names `out_dir` (the run is gone, another run is there now, or it names another export).
    The other run's summary and report then name its export where it is, not this run's
    (a user's check found it: they said `out_dir` "now holds another run's export"). `run`: the
    Run of the fit that moves it."""
    theirs = record.get("run") if isinstance(record.get("run"), dict) else {}
    path, created = exported_run(record), theirs.get("created")
    if not (path and created) or os.path.realpath(path) == os.path.realpath(run.path):
        return ""  # this run's own record is moved by the caller
    from hubensemble.stagerecords import stage_records

    other, moved = type(run)(path), []  # a Run (rundir imports this module: no import back)

    def names_out(meta):
        return (meta.get("created") == created and meta.get("export")
                and os.path.realpath(other.exported_to(meta) or "") == os.path.realpath(out_dir))

    def change(meta):
        if not names_out(meta):
            return
        new = other.export_record(kept)
        stage = stage_records(meta, other).get("export") or {}  # a hand edit: not read, said
        if stage.get("record") == meta["export"]:
            stage["record"] = {**stage["record"], **new}
        meta["export"] = {**meta["export"], **new}
        moved.append(True)

    try:
        if not other.meta_path.is_file() or not names_out(other.meta()):
            return ""
        other.modify(change)
    except (OSError, RunError) as e:
        return (f" {other.meta_path} could not be changed to name it ({type(e).__name__}: "
                f"{e}): that run's record of its export still names {out_dir}, which now "
                "holds this run's; record it where it is with "
                + command_words("export", path, flags=f"--out {shell(kept)}",
                                keywords=f"out_dir={absolute(os.fspath(kept))!r}") + ".")
    return f" Its run's record ({other.meta_path}) now names {kept}." if moved else ""


#: The name of a kept export: KEPT_EXPORT.format(folder=<the export folder's name>, stamp=...).
KEPT_EXPORT = "{folder}-replaced-{stamp}"


def older_fits_own_export(run, out_dir, meta: dict) -> str | None:
    """What fit says (a warning) when the export in folder `out_dir` (absolute; `meta`: its
    metadata) is the one this run's fit wrote and recorded, by a hubensemble before bad91fe
    (2026-12-01), whose stage records hold no digests of what they read: run.json's export
    stage is done without "digests", its export record names `out_dir` and the same members
    (and the same "created", when it has one). fit's export stage then writes over it, as
    it does its own export of a run recorded since; None for any other export (moved aside
    by `keep_replaced_export`). Before, such an export was called "not the one this fit
    recorded there: another command wrote it since" and moved to a kept folder."""
    from hubensemble.stagerecords import stage_records

    recorded = run.meta()
    stage = stage_records(recorded, run).get("export") or {}  # a hand edit: not read, said
    export = recorded.get("export") if isinstance(recorded.get("export"), dict) else {}
    where = run.exported_to(recorded)
    if (not stage.get("done") or "digests" in stage or not isinstance(meta.get("members"), list)
            or not where or absolute(where) != out_dir
            or export.get("members") != meta["members"]
            or export.get("created", meta.get("created")) != meta.get("created")):
        return None
    written = shown_time(meta["created"]) if meta.get("created") else "at an unrecorded time"
    return (f"{out_dir} holds the export this run's fit wrote "
            f"({counted(len(meta['members']), 'member')}, written {written}), recorded by "
            "an older hubensemble that kept no digest of what it read; the ensemble was chosen "
            "again, so it is exported again over it")


def kept_export_folder(out_dir, meta: dict) -> str:
    """Where `keep_replaced_export` moves the export in `out_dir` (absolute path str): beside
    it, named KEPT_EXPORT with the export's "created" time of its metadata `meta` (else its
    folder's modification time) as YYYYMMDDTHHMMSS (RUN/export-replaced-20261204T154001),
    so the name says what it is and when it was written; "-2", "-3", … when taken, so an
    earlier kept export is never replaced."""
    out_dir = absolute(os.fspath(out_dir))
    try:  # its clock time as written (with its offset since text.time_stamp, or without)
        when = stamp_time(meta.get("created"))
    except (ValueError, OverflowError):
        when = datetime.datetime.fromtimestamp(os.path.getmtime(out_dir))
    folder, stamp = os.path.basename(out_dir), when.strftime("%Y%m%dT%H%M%S")
    path, n = None, 1
    while path is None or os.path.lexists(path) or os.path.lexists(f"{path}-tflite"):
        # (fileio.fitted_name: a folder name near 255 bytes is cut, ENAMETOOLONG)
        path = os.path.join(os.path.dirname(out_dir), fileio.fitted_name(
            folder, KEPT_EXPORT.format(folder="", stamp=stamp) + (f"-{n}" if n > 1 else ""),
            spare=len("-tflite")))
        n += 1
    return path


def lock_path(out_dir) -> str:
    """The lock file of export folder `out_dir`: .NAME.lock beside it (absolute path str);
    not inside it, as the export replaces the whole folder by one rename. NAME is cut
    (`fileio.fitted_name`, room left for its LOCK.holder) past 255 bytes."""
    out_dir = absolute(os.fspath(out_dir)).rstrip(os.sep)
    return os.path.join(os.path.dirname(out_dir), fileio.fitted_name(
        os.path.basename(out_dir), ".lock", prefix=".", spare=len(".holder")))


def outside(out_dir, run_dir) -> bool:
    """Whether export folder `out_dir` lies outside the run folder `run_dir`."""
    inside = os.path.relpath(os.path.realpath(out_dir), os.path.realpath(run_dir))
    return inside == os.pardir or inside.startswith(os.pardir + os.sep)


@contextlib.contextmanager
def folder_lock(out_dir, run_dir, command: str, flag: str, keyword: str):
    """The lock of export folder `out_dir` (`lock_path`), held while the block runs by
    `command` ("fit", "export") of the run `run_dir`, when the folder lies outside that run
    (inside, the run's lock covers it: a no-op). A second writer is refused at once with a
    RunError naming the command and run that write it and telling it to wait or pass another
    `flag` folder (from Python, `keyword`: `lockwords.option_word`); it waited for nothing
    before, and the last to finish won. fit holds it for its whole run (its export stage
    replaces the folder in the end: a second fit's minutes of work would end in a lost
    export), `export` from before its members are rebuilt or retrained. A nested use in the
    process that holds it is a no-op. The lock file is removed as the block ends, while
    still held (`fileio.owned_lock`): it stayed beside the export folder, in a folder of the
    user's. OSError when the folder beside it cannot be written."""
    if not outside(out_dir, run_dir):
        yield
        return
    out_dir = absolute(os.fspath(out_dir))
    lock = lock_path(out_dir)

    def refused(owner):
        return _held_by(out_dir, lock, owner, flag, keyword)

    with owned_lock(lock, {"command": command, "run": absolute(run_dir)}, refused,
                    remove=True):  # a .DIR.lock left beside the user's folder was nobody's
        yield


def _held_by(out_dir, lock, owner, flag, keyword) -> RunError:
    """`folder_lock`'s refusal of export folder `out_dir` whose `lock` another process holds
    (`owner`: its record, `fileio.lock_owner`; None when unknown)."""
    who = (f"another {owner.get('command')} of the run {owner.get('run')} "
           f"({owner_words(owner)}, holding {lock})" if owner else
           f"another hubensemble command (it holds {lock})")
    return RunError(f"{out_dir} is being written by {who}: wait for it to end, or pass "
                    f"another {option_word(flag, keyword)} folder")


def check_folder_lock(out_dir, run_dir, flag: str, keyword: str) -> None:
    """Before TensorFlow (`preflight`'s checks of fit's and export's export folder): what
    `folder_lock` would refuse at once, files alone deciding it: the lock held by another
    process (its RunError, `_held_by`) or a lock file that cannot be made beside the folder
    (OSError, `fileio.check_lock_file`: `export --out /proc/e` said so after TensorFlow's
    import, 24 s and 700 MB). Nothing for a folder inside the run (its lock covers it)."""
    if not outside(out_dir, run_dir):
        return
    out_dir = absolute(os.fspath(out_dir))
    lock = lock_path(out_dir)
    if fileio.lock_is_held(lock):
        raise _held_by(out_dir, lock, fileio.lock_owner(lock), flag, keyword)
    fileio.check_lock_file(lock)


def run_record(run_dir, meta: dict, out_dir=None) -> dict:
    """The export metadata's "run": the absolute path of the run that wrote it and its
    run.json "created" (`meta`), which a moved or copied run keeps (`other_run`), and, given
    the export's folder `out_dir`, "relative": the run's path from it ("../R", '/'
    separated), by which an export moved together with its run (`mv R served elsewhere/`)
    still finds it when the absolute path holds no run (`formats.exported_run`); it named
    R's old path alone."""
    record = {"path": absolute(run_dir), "created": meta.get("created")}
    if out_dir is not None:
        record["relative"] = os.path.relpath(absolute(run_dir), absolute(out_dir)).replace(
            os.sep, "/")
    return record


def other_run(record: dict, run_dir, meta: dict, folder=None) -> str | None:
    """Words for an export (its metadata `record`) that is not of the run `run_dir` (its
    run.json `meta`), e.g. "an export of another run (/abs/run2, other data)", or None when
    it is this run's or nothing says otherwise. Another run's when its data's fingerprint is
    not the run's, or its recorded run was created at another time (run.json "created": a
    run moved or copied keeps it, and its export with it, so a copy's RUN/export is its
    own), or (`folder`: where the export is, when the caller knows it) it lies outside this
    run and its recorded run is another folder that still holds a run.json of the same
    "created" (`_copy_of`): a copy of that run (`cp -r run run2`), or the run it was copied
    from, shares every byte of run.json, so only where it lies tells them apart (a run id
    in run.json would be copied too). An export from `export --run run2 --out X` then
    replaced run's export at X as run2's own, run's run.json naming X. Unless it was copied
    along with this run (`_copied_along`: `cp -r p q` of a folder holding run a and its
    export X beside it; run.json's "beside", `exportrecord.recorded_export`): q/X is q/a's
    own, as the summary and the report read it, where export and fit moved it aside. A
    moved run's export (its recorded folder holds no such run now) stays its own. An export
    from before the "run" record is judged by its data alone. The one rule of whose an
    export is: `export`, fit's export stage, `adopt_export` and `Run.foreign_export` ask it."""
    record = record if isinstance(record, dict) else {}
    theirs = record.get("run") if isinstance(record.get("run"), dict) else {}
    other_data = of_other_data(record, meta)
    path, created = exported_run(record), theirs.get("created")
    copy = (not other_data and folder is not None and created == meta.get("created")
            and outside(folder, run_dir) and _copy_of(path, created, run_dir)
            and not _copied_along(path, run_dir, folder))
    if not (other_data or copy
            or (created and meta.get("created") and created != meta["created"])):
        return None
    what = "other data" if other_data else "the same data"
    if not path:
        return f"an export of {what} (its metadata names no run)"
    if copy:
        return (f"an export of another run ({path}, the same data; one of the two runs is "
                "a copy of the other: their run.json record the same \"created\")")
    if os.path.realpath(path) == os.path.realpath(run_dir):
        return f"an export of an earlier run in this folder ({what}; before a --restart)"
    return f"an export of another run ({path}, {what})"


def _copy_of(path, created, run_dir) -> bool:
    """Whether run folder `path` (an export's recorded run, `run_record`) is not `run_dir` and
    still holds a run.json whose "created" is `created`: the run `run_dir` was copied from,
    or a copy of it (a damaged or unreadable run.json: not known to be, False)."""
    if not (isinstance(path, str) and created) or (
            os.path.realpath(path) == os.path.realpath(run_dir)):
        return False
    try:
        meta = fileio.read_json(os.path.join(path, RUN_FILE))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("created") == created


def _copied_along(path, run_dir, folder) -> bool:
    """Whether the export in `folder` (outside run `run_dir`) was copied along with this run
    from its recorded run `path` (`_copy_of`: a copy or the original): it lies where that
    run's export lay beside it, the same way from this run (run.json's "beside",
    `exportrecord.export_record`), in another folder: `cp -r p q`, p holding run a and its
    export X, makes q/X, which q/a's "beside" (../X) names. False when that place is
    `folder` itself: the export both runs name (`cp -r a b`, X beside both), the other's.
    Read from where the folders lie, not from run.json's record, so it holds after this
    run records the export as its own (`adopt_export`, a fit's stage reused)."""
    here = os.path.realpath(os.fspath(folder))
    beside = os.path.relpath(here, os.path.realpath(os.fspath(run_dir)))
    return os.path.normpath(os.path.join(os.path.realpath(path), beside)) != here


def of_other_data(record: dict, meta: dict) -> bool:
    """Whether export metadata `record` names a data fingerprint other than run.json `meta`'s
    (False when either names none)."""
    data = task_record(record).get("fingerprint")
    ours = data_part(meta, "task").get("fingerprint")
    return bool(data and ours and data != ours)


def task_record(record) -> dict:
    """Export metadata `record`'s "task" (its data: "fingerprint", "source", …); {} when it
    names none, or a value edited by hand into no JSON object (a string raised
    AttributeError from the readers of whose an export is)."""
    task = record.get("task") if isinstance(record, dict) else None
    return task if isinstance(task, dict) else {}


def check_add_warmup(model_dir, run_dir, given, out_dir=None) -> bool:
    """Whether `export`'s command line asks for `add_warmup` alone (`model_dir`, --add-warmup
    MODEL, not None); OptionError when it gives it with --run, --out (`out_dir`) or another
    export option (`given`: the names of the options given, `arguments.given_options`), or
    gives neither it nor --run."""
    from hubensemble.options import OPTIONS, OptionError

    if model_dir is None:
        if run_dir is None:
            raise OptionError("export needs --run RUN (the run folder whose ensemble it "
                              "exports), or --add-warmup MODEL to add TF Serving's warmup "
                              "file to an export written before it was")
        return False
    flags = {o.name: o.cli_flags[0] for o in OPTIONS}
    shown = (["--run"] * (run_dir is not None) + ["--out"] * (out_dir is not None)
             + sorted(flags.get(name, name) for name in set(given) - {"add_warmup"}))
    if shown:
        raise OptionError(f"--add-warmup MODEL works on the export folder MODEL alone: leave "
                          f"out {', '.join(shown)} (to export a run again: --run RUN without "
                          "--add-warmup)")
    check_warmup_folder(model_dir)
    return True


def check_warmup_folder(model_dir) -> None:
    """`add_warmup`'s refusal of a `model_dir` that is no hubensemble export, in its words,
    before TensorFlow loads (export.warmup.add_warmup says it after: 11-16 s, ~690 MB, and a
    file's "[Errno 20] Not a directory"): HubensembleError unless the folder holds TF
    Serving's warmup file already (kept, no error) or hubensemble's metadata asset; RunError
    for an export whose files cannot load (`formats.check_saved_model_files`: a damaged
    saved_model.pb, a variables file gone), with the command that writes it again: it was
    said after TensorFlow's import, in TensorFlow's words."""
    from hubensemble.errors import HubensembleError
    from hubensemble.formats import WARMUP_FILE, check_saved_model_files, is_export

    model_dir = absolute(os.fspath(model_dir))
    if os.path.lexists(os.path.join(model_dir, WARMUP_FILE)):
        return
    if is_export(model_dir):
        check_saved_model_files(model_dir)
        return
    what = ("holds no export hubensemble wrote (no assets/hubensemble.json)"
            if os.path.isdir(model_dir) else "is not a folder")
    raise HubensembleError(f"{model_dir} {what}: pass the folder of one to "
                           f"{option_word('--add-warmup', 'add_warmup')}, e.g. RUN/export")
