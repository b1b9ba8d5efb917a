"""The export commands said for a student export (export.stage's stale TFLite removal,
tflite.tflite_way_on) name its student by Run.export_words(student=…), the one rule: a student
export in its own folder RUN/export-student is told no --out, where --student put in by hand
beside the run's --out rule named --out RUN/export-student. Files only."""
import logging
import os
import shlex
from types import SimpleNamespace

from hubensemble.fileio import atomic_write_json
from hubensemble.formats import EXPORT_FORMAT, STUDENT_EXPORT_DIR, metadata_path
from hubensemble.lockwords import command_line
from hubensemble.rundir import Run


def _stale_tflite(out):
    os.makedirs(f"{out}-tflite")
    with open(f"{out}-tflite/model.tflite", "wb") as f:
        f.write(b"tfl")
    atomic_write_json(f"{out}-tflite/hubensemble.json", {"format": f"{EXPORT_FORMAT}-tflite"})


def test_the_stale_tflite_removal_of_a_student_export_names_no_own_folder(tmp_path, caplog):
    from hubensemble.export.stage import _remove_stale_tflite

    run = Run(tmp_path / "run")
    quoted = shlex.quote(str(run.path))
    said = {}
    for out in (run.path / STUDENT_EXPORT_DIR, tmp_path / "elsewhere"):
        for cli in (True, False):
            _stale_tflite(out)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="hubensemble"):
                if cli:
                    with command_line():
                        _remove_stale_tflite(out, run, SimpleNamespace(module="s1"))
                else:
                    _remove_stale_tflite(out, run, SimpleNamespace(module="s1"))
            said[out.name, cli] = caplog.text
    assert ("run `hubensemble export --run {} --student s1 --format tflite` for one of this "
            "export".format(quoted)) in said[STUDENT_EXPORT_DIR, True], said
    assert (f"call export_ensemble(run_dir={str(run.path)!r}, student='s1', "
            "export_format='tflite') for one of this export") in said[STUDENT_EXPORT_DIR, False]
    assert (f"run `hubensemble export --run {quoted} --student s1 --out "
            f"{shlex.quote(str(tmp_path / 'elsewhere'))} --format tflite`"
            ) in said["elsewhere", True], said


def test_the_tflite_way_on_of_a_student_export_names_no_own_folder(tmp_path):
    from hubensemble.export.tflite import tflite_way_on

    run = tmp_path / "run"
    quoted = shlex.quote(str(run))
    for out, named in ((run / STUDENT_EXPORT_DIR, ""),
                       (tmp_path / "served", f" --out {shlex.quote(str(tmp_path / 'served'))}")):
        atomic_write_json(metadata_path(out), {"format": EXPORT_FORMAT,
                                               "run": {"path": str(run)},
                                               "student": {"module": "lg"}})
        with command_line():
            said = tflite_way_on(["lg"], "float16", f"{out}-tflite")
        assert said.endswith(
            "or for a TFLite model distill a student of another module than lg "
            f"(`hubensemble distill --run {quoted} --student MODULE`) and export it: "
            f"`hubensemble export --run {quoted} --student MODULE{named} --format tflite "
            "--quantize float16`"), said
        assert said.count("--out") == bool(named), said
        assert tflite_way_on(["lg"], "float16", f"{out}-tflite").endswith(
            f"export_ensemble(run_dir={str(run)!r}, student='MODULE', "
            + (f"out_dir={str(tmp_path / 'served')!r}, " if named else "")
            + "export_format='tflite', quantize='float16')")
