"""An interrupted `evaluate --corruptions` resumes: each finished (corruption, severity) cell is
recorded as it finishes (evaluationcells), and only cells of the same export, data and flags
are read back. A real kill: a process of its own, SIGKILLed once the record holds cells."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hubensemble import evaluate as ev
from hubensemble.corruptions import DEFAULT_CORRUPTIONS
from test_evaluate import build_export

FIRST = DEFAULT_CORRUPTIONS[0]
CELLS = 1 + 3 * len(DEFAULT_CORRUPTIONS)  # clean, then each default corruption x 3


def write_npz(path, seed=0, n=96, side=24):
    """A 3-class test set (x_test, y_test, class_names a, b, c) of `n` images."""
    rng = np.random.default_rng(seed)
    np.savez(path, x_test=(rng.random((n, side, side, 3)) * 255).astype(np.uint8),
             y_test=np.arange(n) % 3, class_names=np.array(["a", "b", "c"]))
    return path


def records(xdg):
    """The evaluation records in cache home `xdg`: [(path, its cells)]."""
    folder = xdg / "hubensemble" / "evaluations"
    found = []
    for name in sorted(os.listdir(folder)) if folder.exists() else ():
        if name.endswith(".json") and not name.startswith(".tmp-"):
            with open(folder / name, encoding="utf-8") as f:
                found.append((folder / name, json.load(f)["cells"]))
    return found


def without_seconds(result):
    return {k: v for k, v in result.items() if k != "seconds"}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """(export, npz, cache home, record path, the record as the kill left it): `evaluate
    --corruptions --batch-size 1` in a process of its own, SIGKILLed once its record holds
    3 finished cells."""
    root = tmp_path_factory.mktemp("resume")
    model = build_export(root / "export", members="both")
    data = write_npz(root / "test.npz")
    xdg = root / "xdg"
    env = {**os.environ, "XDG_CACHE_HOME": str(xdg),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "hubensemble", "evaluate", "--model",
                             str(model), "--data", f"npz:{data}", "--corruptions",
                             "--batch-size", "1", "--out", str(root / "killed.json")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            found = records(xdg)
            if found and len(found[0][1]) >= 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    said = proc.stdout.read()
    assert proc.returncode == -signal.SIGKILL, said[-3000:]
    assert not (root / "killed.json").exists()
    [(path, cells)] = records(xdg)  # the record as the kill left it: whole, readable
    assert 3 <= len(cells) < CELLS, cells
    return model, data, xdg, path, path.read_bytes()


def test_a_killed_corruption_grid_resumes_where_it_stopped(killed, tmp_path, in_process,
                                                           monkeypatch):
    """evaluate --corruptions killed part way through its grid started all of it again. The
    same command now keeps the finished cells, says how many, computes the rest, and its
    result is the one an uninterrupted evaluation gives; the record goes when it completes."""
    model, data, xdg, path, left = killed
    path.write_bytes(left)
    kept = len(json.loads(left)["cells"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    args = ["evaluate", "--model", model, "--data", f"npz:{data}", "--corruptions",
            "--batch-size", "1"]
    code, out, err = in_process(*args, "--out", tmp_path / "resumed.json")
    assert code == 0, err
    assert (f"evaluate: kept the clean scores and {kept - 1} of {CELLS - 1} corruption cells "
            f"from the interrupted run ({path}); {CELLS - kept} passes over the split left"
            ) in err, err
    # Information, said once as rank's resume line: not "WARNING hubensemble.evaluate: evaluate:"
    [line] = [n for n in err.splitlines() if "from the interrupted run" in n]
    assert line.startswith("evaluate: kept "), line
    assert records(xdg) == []  # complete: nothing left to resume
    # Uninterrupted, with a cache of its own: the same figures, cell for cell.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    code, _, err = in_process(*args, "--out", tmp_path / "fresh.json")
    assert code == 0 and "kept" not in err, err
    resumed, fresh = (ev.read_evaluation(tmp_path / f"{n}.json") for n in ("resumed", "fresh"))
    assert without_seconds(resumed) == without_seconds(fresh)
    assert records(tmp_path / "fresh") == []


def _marked(path, left) -> float:
    """The killed run's record put back with its (FIRST, 1) cell's ensemble accuracy set to
    a value no evaluation gives: a result holding it read the cell, not computed it."""
    record = json.loads(left)
    [cell] = [c for c in record["cells"] if (c["corruption"], c["severity"]) == (FIRST, 1)]
    cell["scores"]["ensemble"]["accuracy"] = 0.123456
    path.write_text(json.dumps(record))
    return 0.123456


def test_cells_of_another_export_other_data_or_other_flags_are_never_read(
        killed, tmp_path, monkeypatch, caplog):
    """The record is keyed: the same export, data and flags read the kept cell (the marked
    value comes back, not computed again); another export (written again), other data (one
    label changed), another seed or batch size compute their own."""
    import logging

    model, data, xdg, path, left = killed
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    task = ev.load_evaluation_task(model, f"npz:{data}")
    grid = dict(corruptions=[FIRST], severities=[1], progress=False)

    def accuracy(model_dir, task, **flags):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble"):
            result = ev.evaluate_model(model_dir, task, **{**grid, "batch_size": 1, **flags})
        kept = [r.getMessage() for r in caplog.records if "interrupted run" in r.getMessage()]
        return result["corruptions"][FIRST]["1"]["ensemble"]["accuracy"], kept

    marker = _marked(path, left)
    got, said = accuracy(model, task)
    assert got == marker and said == [
        f"evaluate: kept the clean scores and 1 of 1 corruption cell from the interrupted run "
        f"({path}); 0 passes over the split left"]
    assert not path.exists()

    other_export = build_export(tmp_path / "other", members="both", seed=1)
    other_data = write_npz(tmp_path / "other.npz")
    arrays = dict(np.load(other_data))
    arrays["y_test"][0] = (arrays["y_test"][0] + 1) % 3
    np.savez(other_data, **arrays)
    written_again = tmp_path / "again"  # the same files, written anew (new times)
    shutil.copytree(model, written_again, copy_function=shutil.copy)
    for case, (model_dir, on, flags) in {
            "another export": (other_export, task, {}),
            "the export written again": (written_again, task, {}),
            "other data": (model, ev.load_evaluation_task(model, f"npz:{other_data}"), {}),
            "another seed": (model, task, {"seed": 1}),
            "another batch size": (model, task, {"batch_size": 2})}.items():
        _marked(path, left)
        got, said = accuracy(model_dir, on, **flags)
        assert got != marker and said == [], case
        assert path.exists(), case  # not this evaluation's record: left as it was
    path.write_bytes(left)


def test_a_record_folder_that_cannot_be_written_is_said_once_and_the_evaluation_goes_on(
        killed, tmp_path, monkeypatch, caplog):
    """XDG_CACHE_HOME under a file: the record cannot be written; one warning naming the
    folder and the variable, and the evaluation completes as it would with it."""
    import logging

    model, data, _, _, _ = killed
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    task = ev.load_evaluation_task(model, f"npz:{data}")
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        result = ev.evaluate_model(model, task, corruptions=[FIRST], severities=[1, 2],
                                   progress=False)
    said = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith(f"the evaluation record {blocker}/hubensemble/evaluations "
                              "cannot be written"), said
    assert "set XDG_CACHE_HOME to a folder you can write, or unset it" in said[0], said
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    again = ev.evaluate_model(model, task, corruptions=[FIRST], severities=[1, 2],
                              progress=False)
    assert without_seconds(result) == without_seconds(again)
