"""An export outside its run (`export --run R --out served`) moved together with the run
(`mv R served elsewhere/`) still finds it: the metadata records the run's path relative to
the export (`exportfolder.run_record`), read when the absolute one holds no run, and the words
say so. Real folders, moved with shutil.move; no TensorFlow."""

import json
import shutil

import pytest

from hubensemble import formats
from hubensemble.errors import RunError
from hubensemble.exportfolder import run_record


def _run_and_export(root, created="2026-12-08T04:00:00+00:00", relative=True):
    """root/R (a run.json) and root/served (an export's metadata naming R) -> (R, served)."""
    run, served = root / "R", root / "served"
    run.mkdir(parents=True)
    (run / formats.RUN_FILE).write_text(json.dumps({"created": created}))
    (served / "assets").mkdir(parents=True)
    record = run_record(str(run), {"created": created}, str(served) if relative else None)
    meta = {"format": formats.EXPORT_FORMAT, "format_version": 1, "run": record}
    (served / "assets" / formats.METADATA_ASSET).write_text(json.dumps(meta))
    return run, served


def test_an_export_moved_with_its_run_names_the_run_where_it_is_now(tmp_path):
    # Fails before: run_record took no export folder and the metadata recorded no relative
    # path: `export --run /old/R --out …` named the run that moved away.
    old_run, old_served = _run_and_export(tmp_path / "a")
    (tmp_path / "elsewhere").mkdir()
    for folder in (old_run, old_served):
        shutil.move(str(folder), str(tmp_path / "elsewhere"))
    run, served = tmp_path / "elsewhere" / "R", tmp_path / "elsewhere" / "served"
    meta = formats.read_export_metadata(served)
    assert meta["run"]["relative"] == "../R"
    assert formats.exported_run(meta, served) == str(run)
    assert formats.exported_run(meta) == str(old_run)  # no folder: the record as it is
    with pytest.raises(RunError) as err:  # evaluate/predict --model served: no saved_model.pb
        formats.check_saved_model_folder(served)
    said = str(err.value)
    assert f"run_dir='{run}'" in said and f"'{old_run}'" not in said, said  # (from Python)
    assert said.endswith(f"(its metadata names {old_run}, which holds no run now: the run "
                         "moved with the export, found at ../R from it)"), said


def test_an_export_whose_run_stayed_or_that_records_no_relative_path_is_read_as_before(
        tmp_path):
    run, served = _run_and_export(tmp_path / "a")
    meta = formats.read_export_metadata(served)
    assert formats.exported_run(meta, served) == str(run)
    assert formats.moved_run_words(meta, served) == ""  # the recorded path: nothing to say
    old_run, old_served = _run_and_export(tmp_path / "b", relative=False)  # written before
    shutil.move(str(old_served), str(tmp_path / "c"))
    meta = formats.read_export_metadata(tmp_path / "c")
    assert "relative" not in meta["run"]
    assert formats.exported_run(meta, tmp_path / "c") == str(old_run)


def test_another_run_at_the_relative_place_is_not_taken_for_the_exports(tmp_path):
    old_run, old_served = _run_and_export(tmp_path / "a")
    (tmp_path / "d").mkdir()
    shutil.move(str(old_served), str(tmp_path / "d" / "served"))
    shutil.rmtree(old_run)
    other = tmp_path / "d" / "R"  # another run where ../R now points: not this export's
    other.mkdir()
    (other / formats.RUN_FILE).write_text(json.dumps({"created": "2026-01-01T00:00:00"}))
    meta = formats.read_export_metadata(tmp_path / "d" / "served")
    assert formats.exported_run(meta, tmp_path / "d" / "served") == str(old_run)
    assert formats.moved_run_words(meta, tmp_path / "d" / "served") == ""
