"""The readers of whose run an export is, after the export and its run moved together
(`mv R served elsewhere/`): `ensemble --run elsewhere/served` (exportrun.export_not_run) and
evaluate's data of the run (heldout.named_run_data) take the run where it is now, found by the
path the metadata records relative to the export (484), as formats.exported_run does. Real
folders moved with shutil.move; no TensorFlow."""

import json
import shutil

from hubensemble import formats
from hubensemble.exportfolder import run_record
from hubensemble.exportrun import export_not_run
from hubensemble.heldout import named_run_data


def _moved(tmp_path):
    """tmp/a/R (a run.json with data of fingerprint "fp") and tmp/a/served (an export's
    metadata naming it, relative path too), both moved to tmp/elsewhere -> (old R, new R,
    new served)."""
    created = "2026-12-08T04:00:00+00:00"
    run, served = tmp_path / "a" / "R", tmp_path / "a" / "served"
    run.mkdir(parents=True)
    (run / formats.RUN_FILE).write_text(json.dumps(
        {"created": created, "data": {"args": {"spec": "sklearn:digits"},
                                      "task": {"fingerprint": "fp"}}}))
    (served / "assets").mkdir(parents=True)
    (served / "saved_model.pb").write_bytes(b"\x08\x01")  # is_export: the files' kind only
    meta = {"format": formats.EXPORT_FORMAT, "format_version": 1,
            "run": run_record(str(run), {"created": created}, str(served)),
            "task": {"fingerprint": "fp"}}
    (served / "assets" / formats.METADATA_ASSET).write_text(json.dumps(meta))
    (tmp_path / "elsewhere").mkdir()
    for folder in (run, served):
        shutil.move(str(folder), str(tmp_path / "elsewhere"))
    return run, tmp_path / "elsewhere" / "R", tmp_path / "elsewhere" / "served"


def test_ensemble_given_a_moved_export_names_its_run_where_it_is_now(tmp_path):
    # Fails before: "… is a hubensemble export, not a run; its metadata names /a/R, which
    # holds no run now …" (the recorded path alone).
    old, new, served = _moved(tmp_path)
    said = export_not_run(served)
    assert said is not None and f"'{new}'" in said and str(old) not in said, said


def test_evaluate_finds_the_data_of_a_moved_exports_run(tmp_path):
    # Fails before: (None, None): the recorded path holds no run, so evaluate asked for --data.
    _, new, served = _moved(tmp_path)
    run, recorded = named_run_data(served)
    assert run is not None and str(run.path) == str(new)
    assert recorded["task"]["fingerprint"] == "fp"
