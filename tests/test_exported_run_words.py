"""The run an export's metadata names and the command that writes that export again, where
they are said: each reader goes through `formats.exported_run` (a "run" edited into a
string, a list or left out is no run, not an AttributeError) and each way on through
`formats.export_command` (--out DIR for an export written elsewhere than RUN/export)."""

import logging

from hubensemble.text import absolute


def test_an_old_exports_warning_names_the_folder_it_writes_again(tmp_path, caplog):
    """predict's warning about an export whose serve_bytes names no failed image gives the
    command that writes that folder again: for an export written with --out DIR, DIR (it
    named the run alone, whose command writes RUN/export and leaves DIR as it was)."""
    from hubensemble.prediction import _OldExport

    run, out = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    for folder, named in ((out, True), (run / "export", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            warn = _OldExport(folder, {"run": {"path": str(run)}})
            warn()
            warn()  # said once
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1, said
        assert f"export_ensemble(run_dir={absolute(run)!r}" in said[0], said
        assert (f"out_dir={absolute(out)!r}" in said[0]) == named, said

