"""A run folder's run.json read by hubensemble.rundir.Run: a damaged "data" section (hand-made
or edited) is refused by name, not with a KeyError traceback. In process, TensorFlow-free."""

import json
import re
import shutil

import numpy as np
import pytest

from hubensemble.errors import RunError
from hubensemble.rundir import Run

TASK = {"fingerprint": "f" * 16, "class_names": ["cat", "dog"], "sizes": {"val": 4}}
ARGS = {"spec": "folder:/nowhere", "reloadable": True}


def _run(tmp_path, data):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    run.meta_path.write_text(json.dumps({"data": data, "modules": {}}))
    return run


@pytest.mark.parametrize("data, fault", [
    ({"task": TASK}, 'its "data" section has no "args"'),  # KeyError 'args'
    ({"args": ARGS}, 'its "data" section has no "task"'),
    ({"args": "folder:/x", "task": TASK}, 'section\'s "args" is a JSON string, expected an object'),
    ({"args": ARGS, "task": ["cat"]}, 'section\'s "task" is a JSON array, expected an object'),
    (["cat", "dog"], 'its "data" section is a JSON array, expected an object'),
])
def test_a_damaged_data_section_of_run_json_is_refused_by_file_and_key(tmp_path, data, fault):
    run = _run(tmp_path, data)
    with pytest.raises(RunError) as err:
        run.task()
    said = str(err.value)
    assert said.startswith(f"{run.meta_path} is damaged: ") and fault in said, said
    assert "restore it from a copy, or start the run again with its data: " in said
    # Every read of the section says the same (a later stage, and tune's inputs check).
    if not (isinstance(data, dict) and isinstance(data.get("task"), dict)):
        with pytest.raises(RunError, match="is damaged: "):
            run.class_names()
        assert run.new_task(object()) is True  # (run.json unreadable: new, as before)


def test_a_run_json_without_data_or_with_an_empty_one_still_says_it_records_none(tmp_path):
    for i, data in enumerate(({}, None)):
        (tmp_path / str(i)).mkdir()
        run = _run(tmp_path / str(i), data)
        with pytest.raises(RunError, match=r'records no data \(its "data" section\)'):
            run.task()
        assert run.class_names() is None


def _object(data, key):
    """`data`'s `key` when both are objects (what a lenient reader keeps), else None."""
    part = data.get(key) if isinstance(data, dict) else None
    return part if isinstance(part, dict) else None


@pytest.mark.parametrize("data", [
    {"task": TASK}, {"args": ARGS}, {"args": "folder:/x", "task": TASK},
    {"args": ARGS, "task": ["cat"]}, ["cat", "dog"], {"args": None, "task": 3}])
def test_every_reader_of_the_data_section_refuses_or_skips_a_damaged_one(tmp_path, data):
    """Each reader of run.json's "data" outside rundir.py reads it through Run.data_section
    (refused by file and key) or Run.data_part (lenient: as if the damaged part were not
    there). Before, a section or "args"/"task" that is not an object was an AttributeError
    (`(x or {}).get`) in each lenient reader; the missing-key cases passed there."""
    from hubensemble import ensemble, heldout, preflight, rerun
    from hubensemble.datachange import DataRecord
    from hubensemble.export.adopt import fit_would_write
    from hubensemble.export.metadata import data_files_record, split_record
    from hubensemble.formats import EXPORT_FORMAT
    from hubensemble.report.runfiles import RunFiles

    run = _run(tmp_path, data)
    meta = run.meta()
    args, task = _object(data, "args"), _object(data, "task")
    mended = {"modules": {}, **({"data": {k: v for k, v in (("args", args), ("task", task))
                                          if v is not None}} if isinstance(data, dict) else {})}
    with pytest.raises(RunError) as err:  # a stage's record of the data: refused
        DataRecord.of_run(run)
    assert str(err.value).startswith(f"{run.meta_path} is damaged: its \"data\" section")
    assert run.data_part(meta, "args") == (args or {})
    assert run.data_part(meta, "task") == (task or {})
    assert preflight.recorded_spec(run.path) == (args or {}).get("spec")
    assert heldout._recorded_task(run) == (task or {})
    assert ensemble._no_test_labels(run.path) == f"no {run.labels / 'test.npy'}"
    assert RunFiles(path=run.path, meta=meta).task == (task or {})
    assert split_record(meta) == split_record(mended)
    if args is None:  # (a folder spec needs the Task's files)
        assert data_files_record(meta, None) is None
    assert fit_would_write({"format": EXPORT_FORMAT}, meta, "sha", {}, False) is False
    for words in (rerun.start_again, lambda where, m: rerun.fit_command(where, m, restart=True)):
        assert words(run.path, meta) == words(run.path, mended)
    # The moved-aside export's advice (exportfolder) reads it leniently too.
    from hubensemble.exportfolder import of_other_data
    record = {"task": {"fingerprint": "other"}}
    assert of_other_data(record, meta) is of_other_data(record, mended)


def test_a_run_whose_data_moved_is_told_the_fit_that_records_its_new_place(tmp_path):
    """A later stage of a run whose npz: or folder: data is no longer where run.json says
    (moved with the run, or the run copied to another machine) said "no such file; check the
    path": the stage commands take no --data, and the way on, fit with the new place (the
    same content keeps the run's data fingerprint, so its stages are reused), went unsaid.
    Python's callers are told in fit's words; a run of stage commands (no fit) to put the
    data back; a path that exists fails for another reason, which stays alone."""
    from hubensemble.errors import DataError
    from hubensemble.lockwords import command_line

    catalogue = tmp_path / "my cat.yaml"
    catalogue.write_text("modules:\n  - {name: m, handle: /nowhere}\n")
    gone = tmp_path / "data" / "digits.npz"
    args = {"spec": f"npz:{gone}", "seed": 3, "reloadable": True}
    run = _run(tmp_path, {"args": args, "task": TASK})
    meta = json.loads(run.meta_path.read_text())
    meta["fit"] = {"catalogue": [f"{catalogue}:2"], "options": {"profile": "quick", "top_k": 2}}
    run.meta_path.write_text(json.dumps(meta))
    with command_line(), pytest.raises(DataError) as err:
        run.task()
    said = str(err.value)
    assert said.startswith(f"npz:{gone}: no such file"), said
    assert said.endswith(
        f"(the data recorded in {run.meta_path}); if the data moved, give fit its new place "
        f"(NEW_PATH), which it records, going on from the run's finished stages: "
        f"`hubensemble fit --catalogue '{catalogue}' --data npz:NEW_PATH --data-seed 3 "
        f"--top-k 2 --profile quick --out {run.path}`"), said
    with pytest.raises(DataError, match=re.escape(  # from Python the whole call (439)
            f"going on from the run's finished stages: call hubensemble.fit(out='{run.path}', "
            f"catalogue="
            f"'{catalogue}', data='npz:NEW_PATH', data_args=…, top_k=2, profile='quick')")):
        run.task()
    del meta["fit"]
    run.meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=re.escape(f"; if the data moved, put it back at {gone}")):
        run.task()
    gone.parent.mkdir()
    gone.write_bytes(b"not an npz")  # there, but unreadable: no word of moving
    with pytest.raises(DataError) as err:
        run.task()
    assert "if the data moved" not in str(err.value), err.value


def _exported_run(root):
    """Run folder root/run whose run.json records an export written to root/model (outside
    it, by `Run.export_record`), and that export's metadata: (run, export folder)."""
    from hubensemble import formats
    from hubensemble.fileio import atomic_write_json

    run = Run(root / "run")
    run.path.mkdir(parents=True)
    out = root / "model"
    atomic_write_json(formats.metadata_path(out), {"format": formats.EXPORT_FORMAT})
    record = run.export_record(out)
    run.meta_path.write_text(json.dumps({"export": record,
                                         "stages": {"export": {"record": record}}}))
    return run, out


def test_a_copied_run_does_not_name_the_originals_export_outside_it(tmp_path):
    """A run folder copied elsewhere kept its export's absolute path in run.json (an export
    outside the run: `fit --export DIR`, `export --out DIR`), so commands on the copy wrote
    over the original's export: `fit --restart … --export ORIGINAL/model --out COPY`, and a
    redone trial's `export --run COPY --out ORIGINAL/model`. The record names the run that
    wrote it and the export relative to it (exportrecord): a copy names the export beside it
    when it was copied with it, else none of its own; a moved run keeps its export; a record
    from before reads as before. Fails before: the original's export on the copy."""
    import shutil

    from hubensemble.candidate import _after_redo
    from hubensemble.lockwords import command_line
    from hubensemble.rerun import fit_command

    run, out = _exported_run(tmp_path / "a")
    assert run.exported_to() == str(out)
    copy = Run(shutil.copytree(run.path, tmp_path / "b" / "run"))
    assert copy.exported_to() is None
    meta = copy.meta()
    assert "--export" not in fit_command(copy.path, meta, restart=True)
    assert f"--export {out}" in fit_command(run.path, run.meta(), restart=True)
    with command_line():
        assert str(out) not in _after_redo(copy.candidates, "t0")
        assert f"--out {out}" in _after_redo(run.candidates, "t0")
    # Copied with its export beside it: that one.
    whole = tmp_path / "c"
    shutil.copytree(tmp_path / "a", whole)
    assert Run(whole / "run").exported_to() == str(whole / "model")
    # Moved (the original folder gone): its export is where it was.
    moved = Run(shutil.move(str(run.path), str(tmp_path / "moved")))
    assert moved.exported_to() == str(out)
    # A record from before "run" was kept: its path, as before.
    older = {k: v for k, v in meta["export"].items() if k not in ("run", "beside")}
    copy.meta_path.write_text(json.dumps({"export": older}))
    assert copy.exported_to() == str(out)


@pytest.mark.parametrize("export", ["RUN/export", [1], {"path": 3}, {"path": None, "tflite": 3},
                                    {"tflite": {"model": ["m.tflite"]}}])
def test_an_export_record_edited_by_hand_reads_as_no_export(tmp_path, export):
    """run.json's "export" edited by hand into another type ("export": "RUN/export", a path
    3) stopped `ensemble`, the summary and the report, which ask where the export went, with
    AttributeError or TypeError. Such a record names no export (runexports._export_section).
    Fails before: the errors."""
    from hubensemble.fileio import atomic_write_json

    atomic_write_json(tmp_path / "run.json", {"export": export})
    run = Run(tmp_path)
    assert run.exported_to() is None and run.current_export() == (None, None)
    assert run.stale_export() is None and run.foreign_export() is None
    assert run.exported_tflite() is None


@pytest.mark.parametrize("kind", ["weights", "test", "val", "touched"])
def test_a_candidates_file_changed_since_it_was_written_is_seen_by_a_fit_resuming(
        tmp_path, kind):
    """fit's reuse check digested each trial.json (and a damaged validation table) only: a
    weights file or a test table edited, cut short or replaced since left "tune: done
    before, reused", and the ensemble and export read the damage later. trial.json records
    each file tune wrote (size, time, sha256); a file that differs is the sweep's result
    changed (`stagerecords.candidates_digest`), said by fit with what is wrong and the way
    to redo the trial (`stagerecords.damage`: tune reuses a trial whose files are all there,
    as the report says), and the stages read it as before (the ensemble keeps it, a weights
    file said by its digest). A file only touched (its time, not its bytes) is no change.
    Fails before: the digest is the same."""
    import os

    import numpy as np

    from hubensemble import candidate
    from hubensemble.lockwords import command_line
    from hubensemble.stagerecords import candidates_digest, damage
    from hubensemble.sweepsummary import finished_candidate

    run = Run(tmp_path / "run")
    probs = np.full((4, 2), 0.5, np.float32)

    def save(path):
        with open(path, "wb") as f:
            f.write(b"weights of the trial" * 8)

    candidate.write_candidate(run.candidates, {"trial": "default-0000-m", "module": "m",
                                               "status": "ok"},
                              val_probs=probs, test_probs=probs, save_weights=save)
    before = candidates_digest(run.candidates)
    folder = run.candidates / "default-0000-m"
    name = {"weights": candidate.WEIGHTS_FILE, "test": candidate.TEST_PROBS_FILE,
            "val": candidate.VAL_PROBS_FILE, "touched": candidate.WEIGHTS_FILE}[kind]
    path = folder / name
    data = path.read_bytes()
    if kind == "test":
        path.write_bytes(data[:len(data) // 2])  # cut short
    elif kind == "val":  # other probabilities, a usable table of the same size
        np.save(path, np.tile(np.array([[0.25, 0.75]], np.float32), (4, 1)))
        assert len(path.read_bytes()) == len(data)
    elif kind == "weights":  # the same size, other bytes
        path.write_bytes(data[::-1])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))  # a later time in any case
    cand = candidate.read_candidate(run.candidates, "default-0000-m")
    if kind == "touched":
        assert candidates_digest(run.candidates) == before and cand.problems == []
        return
    assert candidates_digest(run.candidates) != before
    redone = []
    with command_line():  # fit's words on the command line
        said = damage(run, "tune", redone=redone)
    assert said.startswith(f"candidates/default-0000-m: {name} is not the one tune wrote ("
                           ), said
    assert "(sha256 " in said, said  # a file cut short too (candidatefiles.digest_words)
    # Tune redoes it (`Candidate.complete`), so fit's tune does: no folder to delete by hand.
    assert "delete" not in said and redone == ["default-0000-m"], said
    assert finished_candidate(run.candidates, "default-0000-m") is None
    assert cand.ok and cand.changed == cand.problems
    loaded, skipped = candidate.load_pool(run.candidates, n_val=4, n_test=4)
    if kind == "val":  # the selection's input: left out, with tune's redo (0b0a6d52)
        assert loaded == [] and skipped[0][1].startswith(f"{name} is not the one tune wrote")
        return
    assert [c.trial for c in loaded] == ["default-0000-m"] and not skipped
    # A test table changed gives no test figures (said in `notes`); a weights file is read.
    assert (loaded[0].test_probs is None) == (kind == "test"), kind


def made_export(folder, run_path):
    """An export folder as far as a stage's run check reads it: its metadata asset (format
    and the run it records, as export writes them), no SavedModel."""
    from pathlib import Path

    from hubensemble import formats

    path = Path(formats.metadata_path(folder))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": formats.EXPORT_FORMAT, "format_version": 1,
                                "run": {"path": str(run_path), "created": "2026-12-07"}}))
    return folder


def test_a_runs_export_given_as_the_run_names_the_run(tmp_path, in_process):
    """`ensemble --run RUN/export` (and tune, export, cost, distill) said "is not a hubensemble
    run; pass the folder that `hubensemble fit --out RUN` … made": it names the run the export
    was made from, as the command line's --run or Python's run_dir. Fails before: those
    words, which named no run."""
    import hubensemble

    run = tmp_path / "my run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    export = made_export(run / "export", run)
    for command in ("ensemble", "tune", "export", "cost", "distill"):
        code, _, err = in_process(command, "--run", export)
        assert code != 0 and err.strip().endswith(
            f"{export} is a hubensemble export, not a run; pass --run '{run}', the run it "
            "was exported from"), err
    with pytest.raises(RunError, match=re.escape(f"; pass run_dir={str(run)!r}, the run")):
        hubensemble.run_ensemble(export)
    # A copy of the run: its own RUN/export, not the original its metadata records (a new
    # user's check: `cp -r "run a" "run c"`, `ensemble --run "run c/export"` named run a).
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with pytest.raises(RunError, match=re.escape(f"; pass run_dir={str(copy)!r}, the run")):
        hubensemble.run_ensemble(copy / "export")
    # Moved elsewhere, the run it records gone: the record is named as such.
    moved = made_export(tmp_path / "served", tmp_path / "gone")
    with pytest.raises(RunError, match=re.escape(
            f"the run it was exported from, {tmp_path / 'gone'} (its metadata's record), holds "
            "no run now (moved or deleted): pass that run's folder")):
        Run(moved).require_started()


@pytest.mark.parametrize("modules, said", [
    ({"m0": {"name": "m0", "handle": "h"}, "m1": 5},
     "the catalogue entry of module 'm1' is damaged (a JSON number, expected an object)"),
    (["m0"], 'its "modules" record is a JSON array, expected an object of catalogue entries')])
def test_fits_rank_is_not_reused_over_a_damaged_modules_record(
        tmp_path, caplog, modules, said):
    """run.json's "modules" (the catalogue entries rank records) edited by hand: fit said
    "rank: done before, reused" and every stage after it, and the record stayed broken. Its
    rank is not reused: a warning names run.json (absolute) and the field, and rank records
    the entries anew (measured: `fit` over an entry edited into 5 wrote it back). An intact
    record leaves rank done. Fails before: stage_done is True."""
    import logging

    from hubensemble.stagerecords import stage_done

    run = Run(tmp_path / "run")
    run.update(modules={"m0": {"name": "m0", "handle": "h"}},
               stages={"rank": {"key": "k", "done": True}})
    assert stage_done(run, "rank", "k")
    run.update(modules=modules)
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        assert not stage_done(run, "rank", "k")
    assert (f"rank: {run.meta_path.resolve()}: {said}" in caplog.text
            and "running rank again, which records the entries anew" in caplog.text), caplog.text


def test_a_stage_records_digests_edited_into_no_object_run_the_stage_again_in_words(
        tmp_path, caplog):
    """run.json's "stages" -> "ensemble" -> "digests" edited into a list stopped fit with
    "AttributeError: 'list' object has no attribute 'get'". The record is not read: a
    warning names run.json (absolute) and the field, and the stage runs again. Fails before:
    AttributeError."""
    import logging

    from hubensemble.stagerecords import stage_done

    run = Run(tmp_path / "run")
    run.update(stages={"ensemble": {"key": "k", "done": True, "digests": ["x"]}})
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        assert not stage_done(run, "ensemble", "k", {"ensemble": None, "tune": None,
                                                     "cost": None})
    assert (f'{run.meta_path.resolve()}: its "stages" -> "ensemble" -> "digests" is a JSON '
            "array, not a JSON object (edited by hand?): what ensemble read is not known; "
            "running ensemble again") in caplog.text, caplog.text


def test_a_stage_records_done_edited_into_text_is_read_as_not_done(tmp_path, caplog):
    """run.json's "stages" -> "rank" -> "done" edited to "no" read as done (a truthy text):
    fit said "rank: done before, reused". It reads as not done, with a warning naming
    run.json and the field; true and false read as before. Fails before: stage_done is
    True and no warning."""
    import logging

    from hubensemble.stagerecords import stage_done, stage_records

    run = Run(tmp_path / "run")
    run.update(stages={"rank": {"key": "k", "done": True}, "tune": {"key": "t", "done": False}})
    assert stage_done(run, "rank", "k") and not stage_done(run, "tune", "t")
    run.update(stages={"rank": {"key": "k", "done": "no"}})
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        assert not stage_done(run, "rank", "k")
    assert stage_records(run.meta(), run)["rank"] == {"key": "k", "done": False}
    assert (f"{run.meta_path}: its \"stages\" -> \"rank\" -> \"done\" is a JSON string "
            "(\"no\"), not true or false (edited by hand?): read as not done") in caplog.text, \
        caplog.text


def test_a_hand_edited_done_is_said_in_words_that_fit_every_reader(
        tmp_path, caplog, monkeypatch):
    """"… read as not done; the stage runs again" was said by export, ensemble and cost too,
    none of which runs that stage, and named run.json as the run was named ("run/run.json",
    a path of the cwd only). Now "(a fit runs that stage again)", run.json's path absolute.
    Fails before: "the stage runs again"."""
    import logging

    from hubensemble.stagerecords import stage_records

    monkeypatch.chdir(tmp_path)
    Run(tmp_path / "run").update(stages={"rank": {"key": "k", "done": "yes"}})
    run = Run("run")  # named relative, as `hubensemble export --run run`
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        stage_records(run.meta(), run)
    assert (f'{tmp_path / "run" / "run.json"}: its "stages" -> "rank" -> "done" is a JSON '
            'string ("yes"), not true or false (edited by hand?): read as not done (a fit '
            "runs that stage again)") in caplog.text, caplog.text
    assert "the stage runs again" not in caplog.text


def test_a_damaged_trial_the_fits_own_command_redoes_is_told_to_run_the_same_fit_again(
        tmp_path):
    """A damaged trial outside fit's tune plan whose redo is the fit's own command (a fit's
    folder whose fit plans the sweep as run.json records it) was told "delete … and call
    fit(…) with the arguments the run was fitted with (it redoes the trial), then fit
    again": two fits, and a delete tune no longer needs. The words are one place
    (`stagerecords.redo_way`): run the same fit again, on the command line and from Python.
    Fails before: the delete and "then fit again"."""
    from hubensemble.lockwords import command_line
    from hubensemble.stagerecords import damage

    run = Run(tmp_path / "run")
    planned = [f"default-000{i}-m" for i in range(4)]
    run.update(fit={}, tune={"sweeps": {"default": {"budget": 8, "seed": 0,
                                                    "trials": planned + ["default-0006-m"]}}},
               stages={"tune": {"key": "k", "done": True, "trials": {"default": planned}}})
    for trial in planned + ["default-0006-m"]:
        (run.candidates / trial).mkdir(parents=True)
        (run.candidates / trial / "trial.json").write_text(
            '{"trial": "cut' if trial.endswith("6-m") else json.dumps(
                {"trial": trial, "module": "m", "status": "failed", "reason": "x"}))
    said = damage(run, "tune")
    assert said.endswith(
        "so fit's tune leaves it as it is: run the same fit again (hubensemble.fit(…) with the "
        "arguments "
        "the run was fitted with; it redoes the trial)"), said
    with command_line():
        said = damage(run, "tune")
    assert "delete" not in said and "then fit again" not in said, said
    assert said.endswith(f"--out {run.path}`; it redoes the trial)"), said


@pytest.mark.parametrize("edit, said", [
    (lambda w: "x", 'trial.json\'s "written" record is a JSON string, not the object tune '
     "wrote (edited by hand?): its files cannot be checked"),
    (lambda w: {**w, "weights.weights.h5": [1, 2]}, 'trial.json\'s "written" entry '
     "'weights.weights.h5' is not the [bytes, time, sha256] tune wrote (edited by hand?)")])
def test_a_candidates_written_record_edited_by_hand_is_no_trial_done_before(
        tmp_path, edit, said):
    """trial.json's "written" (each file's bytes, time, sha256) edited into no object, or an
    entry into another form, read as a trial of an older hubensemble: tune reused it, "done
    before", unchecked. It is said, and the trial is redone as one whose files changed
    (`Candidate.complete`); the stages read it as before. Fails before: no problem said."""
    import numpy as np

    from hubensemble import candidate
    from hubensemble.fileio import atomic_write_json

    run = Run(tmp_path / "run")
    probs = np.full((4, 2), 0.5, np.float32)
    cand = candidate.write_candidate(
        run.candidates, {"trial": "default-0000-m", "module": "m", "status": "ok"},
        val_probs=probs, test_probs=probs,
        save_weights=lambda path: open(path, "wb").write(b"w" * 64))
    record = dict(cand.record, written=edit(cand.record["written"]))
    atomic_write_json(cand.folder / candidate.TRIAL_FILE, record)
    again = candidate.read_candidate(run.candidates, "default-0000-m")
    assert [p for p in again.problems if p.startswith(said)] and not again.complete, \
        again.problems
    assert again.ok and not again.faults  # read as before by the stages


@pytest.mark.parametrize("done, said", [("no", 'a JSON string ("no")'), (None, "null (null)"),
                                        (1, "a JSON number (1)")])
def test_a_stage_records_damage_is_told_in_json_words(tmp_path, caplog, done, said):
    """A hand-edited "done" (and a stage record of another kind) was told in Python's words
    ("is str 'no'", "NoneType None", "int 1") beside the JSON words of every other damaged
    field (397's check). Fails before: Python's type names."""
    import logging

    from hubensemble.stagerecords import stage_records

    run = Run(tmp_path / "run")
    run.update(stages={"rank": {"key": "k", "done": done}, "tune": [done]})
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        stage_records(run.meta(), run)
    assert (f'its "stages" -> "rank" -> "done" is {said}, not true or false (edited by '
            "hand?): read as not done") in caplog.text, caplog.text
    assert (f'its "stages" -> "tune" is a JSON array ({json.dumps([done])}), not a JSON '
            "object (edited by hand?)") in caplog.text, caplog.text


def test_tunes_redo_line_says_a_damaged_written_record_not_a_file(tmp_path):
    """A trial.json whose "written" record was edited by hand is redone, but tune's count
    said "1 trial redone: its trial.json's changed since tune wrote it" (the record's
    problem read as a file name; 399's check). Fails before: "trial.json's changed"."""
    from hubensemble import candidate
    from hubensemble.tune.redo import redone_line

    folder = tmp_path / "candidates"
    rng = np.random.default_rng(0)
    for trial in ("probe-0000-m", "probe-0001-m"):
        candidate.write_candidate(folder, {"trial": trial, "module": "m", "status": "ok",
                                           "has_test": False},
                                  val_probs=rng.dirichlet(np.ones(3), 8).astype(np.float32))
    path = folder / "probe-0000-m" / "trial.json"
    record = json.loads(path.read_text())
    record["written"]["val_probs.npy"] = "x"
    path.write_text(json.dumps(record))
    line = redone_line(folder, ["probe-0000-m", "probe-0001-m"], "probe")
    assert line.startswith('tune probe: 1 trial redone, its trial.json\'s "written" record is '
                           "damaged (edited by hand?): candidates/probe-0000-m: "), line
    np.save(folder / "probe-0001-m" / "val_probs.npy",  # other valid probabilities
            rng.dirichlet(np.ones(3), 8).astype(np.float32))
    line = redone_line(folder, ["probe-0000-m", "probe-0001-m"], "probe")
    assert line.startswith("tune probe: 2 trials redone, whose files changed since tune wrote "
                           "them or are missing or damaged: candidates/probe-0000-m: "), line
    assert "; candidates/probe-0001-m: val_probs.npy " in line, line
    assert redone_line(folder, ["probe-0000-m", "probe-0001-m"], "probe",
                       said=("probe-0000-m",)).startswith("tune probe: 1 trial redone, its "
                                                          "validation table changed since")


def test_a_copied_runs_export_folder_holding_the_originals_export_is_said_as_such(tmp_path):
    """`cp -r a b`, b's run.json naming X (`fit --out b --export X` reused a's export there),
    X holding a's export: the summary and the report (`Run.foreign_export`, `current_export`)
    called it b's own, b's run.json a byte copy of a's (the same "created", the same data).
    They read it by `exportfolder.other_run` with the folder, as `export` does; an export
    copied along with the run (`cp -r` of the folder holding both: run.json's "beside") stays
    the copy's own. Files only. Fails before: foreign_export was None."""
    from hubensemble.exportfolder import run_record
    from hubensemble.fileio import atomic_write_json

    def exported(run, folder):
        (folder / "assets").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"pb")
        atomic_write_json(folder / "assets" / "hubensemble.json", {
            "format": "hubensemble-export", "created": "2026-12-04T15:40:01",
            "members": [{"trial": "t0"}], "task": {"fingerprint": "fa"},
            "run": run_record(run.path, run.meta())})

    root = tmp_path / "p"
    a, out = Run(root / "a"), root / "X"
    a.update(data={"args": {"spec": "sklearn:digits"}, "task": {"fingerprint": "fa"}},
             export={**a.export_record(out), "members": [{"trial": "t0"}]})
    exported(a, out)
    shutil.copytree(a.path, root / "b")
    b = Run(root / "b")
    b.update(export={**b.export_record(out), "members": [{"trial": "t0"}]})
    assert b.exported_to() == str(out)
    assert b.foreign_export() == (str(out), (
        f"an export of another run ({a.path}, the same data; one of the two runs is a copy "
        'of the other: their run.json record the same "created")'))
    assert b.current_export() == (None, None)
    assert a.foreign_export() is None and a.current_export() == (str(out), None)
    # The folder holding both copied: q/a's export is q/X, its own.
    shutil.copytree(root, tmp_path / "q")
    copy = Run(tmp_path / "q" / "a")
    assert copy.exported_to() == str(tmp_path / "q" / "X")
    assert copy.foreign_export() is None
    assert copy.current_export() == (str(tmp_path / "q" / "X"), None)
    # ... and stays so once the copy records it as its own (`adopt_export`, a reused stage:
    # run.json's "run" is q/a then, the export's metadata still names p/a).
    copy.update(export={**copy.export_record(tmp_path / "q" / "X"), "members": [{"trial": "t0"}],
                        "created": "2026-12-04T15:40:01"})
    assert copy.foreign_export() is None
    assert copy.current_export() == (str(tmp_path / "q" / "X"), None)


def test_files_a_run_refuses_are_named_absolute_and_escaped(tmp_path, monkeypatch):
    """A run named relative (`--run runs/r`) had its refusals name "runs/r/ranking.json is
    unreadable (not a ranking)", "delete runs/r/candidates/t and …", "runs/r/labels/
    pixel_keys.npz is unreadable", useless from another working folder (a cron job, a
    notebook's), and a newline in a folder's name broke the line: each names the file as
    the project does (`escaped(absolute(…))`, as ensemble.py and exportplan do). Files
    only. Fails before: the relative paths."""
    from hubensemble import candidate
    from hubensemble.pixelkeys import read_pixel_key_rows

    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs" / "a\nb"
    run = Run("runs/a\nb")
    run.path.mkdir(parents=True)
    shown = str(root).replace("\n", "\\n")
    (root / "ranking.json").write_text("[]")
    with pytest.raises(RunError) as err:
        run.ranking()
    assert str(err.value).startswith(f"{shown}/ranking.json is unreadable (not a ranking); ")
    with pytest.raises(RunError) as err:
        Run("runs/a\nb").require("runs/a\nb/ensemble.json", "hubensemble ensemble")
    assert str(err.value).startswith(f"{shown}/ensemble.json is missing; "), err.value
    (root / "run.json").write_text("[1]")
    with pytest.raises(RunError) as err:
        run.meta()
    assert str(err.value).startswith(f"{shown}/run.json is unreadable (a JSON list"), err.value
    (root / "labels").mkdir()
    (root / "labels" / "pixel_keys.npz").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(RunError) as err:
        read_pixel_key_rows("runs/a\nb/labels/pixel_keys.npz")
    assert str(err.value).startswith(f"{shown}/labels/pixel_keys.npz is unreadable ("), err.value
    trial = root / "candidates" / "default-0000-m"
    trial.mkdir(parents=True)
    cand, why = candidate.inspect("runs/a\nb/candidates/default-0000-m")
    assert cand is None and f"; delete {shown}/candidates/default-0000-m and " in why, why
    # The run folder itself: one of the user's, and one that holds no run.
    mine = tmp_path / "mine\tx"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError) as err:
        Run("mine\tx").check_folder_is_ours("--out")
    assert str(err.value).startswith(f"{tmp_path}/mine\\tx holds files or folders (notes.txt)")
    with pytest.raises(RunError) as err:
        Run("mine\tx").require_started()
    assert str(err.value).startswith(f"{tmp_path}/mine\\tx is not a hubensemble run ("), err.value


def test_an_export_fit_wrote_changed_since_is_named_absolute_and_escaped(tmp_path, monkeypatch):
    """fit's "EXPORT is not the export fit wrote: saved_model.pb changed" named the export as
    given (`--out runs/r`: relative, useless from another working folder, and a newline in
    a folder's name broke the line); it names it as the project does (`escaped(absolute(…))`).
    Files only. Fails before: the relative path with its raw newline."""
    from hubensemble.fitresults import _export_files
    from hubensemble.stagerecords import mark

    monkeypatch.chdir(tmp_path)
    run = Run("runs/a\nb")
    run.path.mkdir(parents=True)
    export = run.path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"pb now")
    run.update(export=run.export_record(export))
    mark(run, "export", "k", 0.0, files={"saved_model.pb": "0" * 64})
    shown = str(tmp_path / "runs" / "a\nb" / "export").replace("\n", "\\n")
    assert _export_files(run, "runs/a\nb/export") == (
        f"{shown} is not the export fit wrote: saved_model.pb changed")
