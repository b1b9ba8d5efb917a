"""A --run folder that is not there is refused in the same words by every command that reads
a run, the report too: as typed, with the folder a relative one was looked for in."""
import os

import pytest


def test_reports_missing_run_says_where_a_relative_one_was_looked_for(tmp_path, monkeypatch):
    """`report --run MISSING` named the folder made absolute, without "(relative paths are
    relative to CWD)", where tune, ensemble and export say it (rundir.Run.require_started);
    from Python, load_run the same. Now the same words as tune's. Fails before: report's
    line names tmp_path/nope."""
    from hubensemble.errors import RunError
    from hubensemble.report.runfiles import load_run
    from test_cli import each_in_one_process

    monkeypatch.chdir(tmp_path)
    said = each_in_one_process(["tune", "--run", "nope"], ["report", "--run", "nope"])
    (code, _, tune, _), (code2, _, report, _) = said
    assert (code, code2) == (2, 2), report
    words = tune.strip().splitlines()[-1].partition("error: ")[2]
    assert words.startswith(f"nope does not exist (relative paths are relative to "
                            f"{os.getcwd()})"), tune
    assert report.strip().splitlines()[-1].endswith("error: " + words), report
    from hubensemble.lockwords import command_line

    with command_line(), pytest.raises(RunError) as refused:
        load_run("nope")
    assert str(refused.value) == words
    with pytest.raises(RunError, match=f"^{tmp_path / 'gone'} does not exist; pass"):
        load_run(tmp_path / "gone")  # absolute as given: no hint
