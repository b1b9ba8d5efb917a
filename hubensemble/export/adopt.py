"""Whether the export where `fit` exports is the one its export stage would write now.

`hubensemble export --run RUN` (the options fit uses), then the same `fit`: fit moved that
export aside to RUN/export-replaced-<time> and wrote the same one again (about 10 s on the
quick zoo, minutes with real backbones, and a needless copy kept; a new-user check). A fit
killed between writing its export and recording it in run.json did the same to its own
export. An export whose metadata says it is exactly what fit would write (`fit_would_write`)
is kept: run.json names it (`adopt_export`) and fit says it is up to date. The evaluation fit
made of its earlier export of the same model then names the kept one (`follow_evaluation`),
so fit reuses it rather than measuring the same model again.
"""

from __future__ import annotations

import os

from hubensemble import fileio
from hubensemble.errors import HubensembleError, RunError
from hubensemble.exportfolder import other_run, task_record
from hubensemble.formats import (EXPORT_FORMAT, WARMUP_FILE, export_identity,
                                 export_members_differ, read_export_metadata, write_evaluation)
from hubensemble.text import absolute, counted, shown_time


def fit_would_write(record: dict, meta: dict, ensemble_sha: str | None, ensemble: dict,
                    retrain_full: bool) -> bool:
    """Whether export metadata `record` describes the export fit's export stage would write
    now: made from the very RUN/ensemble.json (its "made_from" sha256 is `ensemble_sha`, the
    file's now; `ensemble`: its contents), of its members and weights (none left out), with
    fit's export option (`retrain_full`; `skip_missing` changes nothing when none is left
    out; retrained at each member's recorded batch, as fit retrains, not at a standalone
    export's --train-batch-size: its "train_batch_size"), on the run's data (its task
    fingerprint is run.json `meta`'s) and by this run (`exportfolder.other_run`: its run
    record's "created" is this run.json's). An export written before "made_from" was
    recorded, or with any of these unknown, is not (fit then moves it aside and exports
    again, as before)."""
    from hubensemble.rundir import Run

    if not isinstance(record, dict) or record.get("format") != EXPORT_FORMAT:
        return False
    ours = Run.data_part(meta, "task").get("fingerprint")  # (damaged: unknown)
    theirs = task_record(record).get("fingerprint")  # (edited into no object: none)
    run = record.get("run") if isinstance(record.get("run"), dict) else {}
    return bool(
        ensemble_sha and made_from(record).get("ensemble") == ensemble_sha
        and bool(record.get("retrain_full")) == bool(retrain_full)
        # retrained at export's --train-batch-size, not each member's recorded batch
        and not record.get("train_batch_size")
        and not record.get("skipped") and isinstance(record.get("members"), list)
        and ours and theirs == ours
        and run.get("created") and run.get("created") == meta.get("created")
        and [m.get("trial") for m in record["members"] if isinstance(m, dict)]
        == [m.get("trial") for m in ensemble.get("members") or []]
        and export_members_differ(record, ensemble.get("members")) is None)


def made_from(record) -> dict:
    """Export metadata `record`'s "made_from" (what the export was made from: {"ensemble":
    the sha256 of RUN/ensemble.json}); {} when it names none, or a value edited by hand into
    no JSON object (a string raised AttributeError in `follow_evaluation`)."""
    made = record.get("made_from") if isinstance(record, dict) else None
    return made if isinstance(made, dict) else {}


def run_json_record(path, record: dict) -> dict:
    """run.json's "export" record (`ExportResult.to_json` and its "created") rebuilt from the
    metadata `record` of the export at `path`, for an export written and not recorded (a fit
    killed in between): "seconds" is None (unknown); "tflite" the record of PATH-tflite when
    the same export made it (`TFLiteResult.from_folder`: its metadata's "created" is this
    export's), else None (it was null even then). The caller adds the path fields
    (`Run.export_record`)."""
    from hubensemble.export.stage import ExportResult
    from hubensemble.export.tflite import TFLiteResult

    metrics = record.get("metrics") or {}
    result = ExportResult(
        path=absolute(os.fspath(path)), members=record.get("members") or [],
        skipped=record.get("skipped") or [],
        max_abs_diff=(record.get("reload_check") or {}).get("max_abs_diff"),
        class_names=record.get("class_names") or [],
        retrain_full=bool(record.get("retrain_full")), seconds=None, cost=record.get("cost"),
        latency_ms=record.get("latency_ms"),
        test=metrics.get("test") if "test_before_retraining" in metrics else None)
    tflite = TFLiteResult.from_folder(f"{result.path}-tflite", record.get("created"))
    result.tflite = tflite.to_json() if tflite else None
    return {**result.to_json(), "time": record.get("created"), "created": record.get("created")}


def adopt_export(run, out_dir, *, retrain_full: bool) -> str | None:
    """When the export in folder `out_dir` is what fit's export stage would write now
    (`fit_would_write`, against RUN/ensemble.json and run.json), names it in run.json: the
    record `export` wrote is kept when it is this export's (its "created" is the metadata's),
    else one is made from the metadata (`run_json_record`). Returns what fit says (its
    folder, members, when written: "is up to date; kept"), or None when it is another export
    (fit moves it aside: `exportfolder.keep_replaced_export`). `run`: the Run. Reads the
    metadata and ensemble.json, nothing of TensorFlow, but for a kept export written before
    TF Serving's warmup file was: it gets one (`warmup.add_warmup`, which loads the
    SavedModel), else it is exported again (None) when its model fails a warmup request or
    the file cannot be written."""
    from hubensemble.ensemblefile import read_ensemble

    out_dir = absolute(os.fspath(out_dir))
    record = read_export_metadata(out_dir, strict=False) or {}
    meta = run.meta()
    try:  # the one reader: one it refuses is exported (refused there, in its words)
        ensemble = read_ensemble(run.path)
        sha = fileio.file_sha256(run.ensemble_json)
    except (RunError, OSError):
        return None
    if not (isinstance(ensemble, dict) and not other_run(record, run.path, meta, out_dir)
            and fit_would_write(record, meta, sha, ensemble, retrain_full)):
        return None
    try:  # an export written before the warmup file gets one
        warmed = add_missing_warmup(out_dir)
    except (RunError, OSError):
        return None  # its model refuses a warmup request, or no file: exported again
    recorded = meta.get("export") or {}
    mine = (run.exported_to(meta) and absolute(run.exported_to(meta)) == out_dir
            and recorded.get("created") and recorded.get("created") == record.get("created"))
    if not mine:
        run.update(export={**run_json_record(out_dir, record), **run.export_record(out_dir)})
    from hubensemble.lockwords import option_word

    retrain = option_word("--retrain-full", "retrain_full=True")  # the caller's words
    return (f"{out_dir} holds the export this fit would write "
            f"({counted(len(record['members']), 'member')} of {run.ensemble_json.name}, its "
            "weights" + (f", retrained on train + val ({retrain})" if retrain_full else "")
            + (f", written {shown_time(record['created'])}" if record.get("created") else "")
            + ("" if mine else ", not recorded in run.json: now it is")
            + "): it is up to date, so it is kept and not exported again"
            + ("; TF Serving's warmup file, which it lacked (written before it was), is "
               f"added: {warmed}" if warmed else ""))


def add_missing_warmup(out_dir) -> str | None:
    """Adds TF Serving's warmup file to the export in folder `out_dir` when it has none (an
    export written before the file was: `warmup.add_warmup`) and returns the path written,
    else None without loading TensorFlow. Raises RunError when its model fails a warmup
    request, OSError when the file cannot be written (nothing written then)."""
    if os.path.lexists(os.path.join(os.fspath(out_dir), WARMUP_FILE)):
        return None
    from hubensemble.export.warmup import add_warmup

    return add_warmup(out_dir)


def warmup_words(model_dir) -> str:
    """How to add TF Serving's warmup file to the export in `model_dir`, in the caller's
    words (`lockwords.option_word`): the command on the command line, the call from Python."""
    from hubensemble.lockwords import command_words, on_command_line
    from hubensemble.text import shell

    if on_command_line():
        return command_words("export", flags="--add-warmup " + shell(os.fspath(model_dir)))
    return f"`hubensemble.export.add_warmup({os.fspath(model_dir)!r})`"


def warmup_added(out_dir) -> str | None:
    """What fit says when it added TF Serving's warmup file to its own export, reused, that
    was written before the file was (`add_missing_warmup`), else None; a failure is logged
    (the export stays as it is)."""
    import logging

    from hubensemble.text import escaped

    try:
        path = add_missing_warmup(out_dir)
    except (HubensembleError, OSError) as e:
        logging.getLogger(__name__).warning(
            "export: TF Serving's warmup file could not be added to %s (%s); once that is "
            "fixed, add it with %s", escaped(os.fspath(out_dir)), e,
            warmup_words(out_dir))
        return None
    return path and (f"TF Serving's warmup file, which {escaped(os.fspath(out_dir))} lacked "
                     f"(written before it was), is added: {escaped(path)}")


def follow_evaluation(run, out_dir, before: dict, evaluation_path) -> bool:
    """After `adopt_export` kept the export in folder `out_dir` in place of fit's earlier one
    (`before`: run.json's stages "export" record from before, with its "digests" and
    "record"), makes fit's evaluation of that earlier export (`evaluation_path`: RUN/
    robustness.json, its stages "evaluate" record) name the kept one when both serve the same
    model: written from the very ensemble.json there now (`before`'s "ensemble" digest, the
    kept metadata's "made_from"), of the same members and weights, none left out, neither
    retrained (`--retrain-full` retrains anew: other weights). Its "export" becomes the kept
    export's `formats.export_identity`, with "measured_on": the one it measured; the evaluate
    stage's digests follow, so fit reuses it. `hubensemble export --run RUN` then `fit` ran
    evaluate again (5.7 s on the test zoo, minutes with real backbones) for the same
    probabilities, and without it the report would call the evaluation one of an earlier
    export. Returns whether it did; anything unknown or different: False (fit evaluates
    again, as before). Files only."""
    from hubensemble.fileio import read_json
    from hubensemble.stagerecords import file_digest, stage_records

    meta = run.meta()
    stage = stage_records(meta, run).get("evaluate") or {}  # a hand edit: not read, said
    digests = stage.get("digests") if isinstance(stage.get("digests"), dict) else {}
    earlier = (before.get("digests") or {}).get("export") if isinstance(before, dict) else None
    old = (before.get("record") or {}) if isinstance(before, dict) else {}
    try:
        evaluation = read_json(evaluation_path)
        ensemble_sha = fileio.file_sha256(run.ensemble_json)
    except (OSError, ValueError):
        return False
    record = read_export_metadata(out_dir, strict=False) or {}
    measured = evaluation.get("export") if isinstance(evaluation, dict) else None
    kept = export_identity(out_dir, record)
    if not (earlier and kept and isinstance(measured, dict) and isinstance(old, dict)
            and stage.get("done") and digests.get("export") == earlier
            and measured.get("metadata_sha256") == earlier
            and digests.get("evaluate") == file_digest(evaluation_path)
            and (before.get("digests") or {}).get("ensemble") == ensemble_sha
            and made_from(record).get("ensemble") == ensemble_sha
            and not old.get("retrain_full") and not record.get("retrain_full")
            and not old.get("skipped") and not record.get("skipped")
            and isinstance(old.get("members"), list) and old["members"]
            and export_members_differ(record, old["members"]) is None):
        return False
    write_evaluation({**evaluation, "export": {**kept, "measured_on": measured}},
                     evaluation_path)
    now = {"evaluate": file_digest(evaluation_path), "export": kept["metadata_sha256"]}

    def change(meta):
        stages = stage_records(meta, run)
        stages["evaluate"] = {**stages["evaluate"], "digests": {
            **(stages["evaluate"].get("digests") or {}), **now}}
        meta["stages"] = stages

    run.modify(change)
    return True
