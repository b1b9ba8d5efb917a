"""The command line: exit codes, messages without tracebacks, stage commands over files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def hubensemble(*args, env=None, cwd=None, timeout=600):
    out = subprocess.run([sys.executable, "-m", "hubensemble", *args], capture_output=True,
                         text=True, env=env, cwd=cwd, timeout=timeout)
    return out.returncode, out.stdout, out.stderr


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, HUBENSEMBLE_CACHE_DIR=str(tmp_path / "cache"))


def test_help_lists_every_stage():
    code, out, _ = hubensemble("--help")
    assert code == 0
    for command in ("catalogue", "rank", "tune", "ensemble", "export", "predict", "evaluate",
                    "report", "fit", "demo", "zoo"):
        assert command in out


def test_catalogue_validate_shipped_and_broken(tmp_path):
    files = sorted(str(p) for p in (ROOT / "catalogue").glob("*.yaml"))
    code, out, err = hubensemble("catalogue", "validate", *files)
    assert code == 0, err
    assert out.count(": ok (") == len(files)
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules:\n  - name: a\n    handel: ./x\n")
    code, out, err = hubensemble("catalogue", "validate", str(bad))
    assert code == 1
    assert f"{bad}:3: field 'handel'" in err and "'handle'" in err
    assert "Traceback" not in err


def test_unknown_data_spec_is_one_clear_line(tmp_path, tiny_module, env):
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    code, _, err = hubensemble("rank", "--catalogue", str(cat), "--data", "nope:x", "--out",
                               str(tmp_path / "r"), env=env)
    assert code == 2
    assert "hubensemble: error:" in err and "folder:" in err and "Traceback" not in err


def test_rank_shards_merge_and_ensemble_commands(tmp_path, module_factory, env):
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n" + "".join(
        f"  - {{name: m{i}, handle: {module_factory(f'cli{i}', seed=i)}}}\n" for i in range(3)))
    common = ["--catalogue", str(cat), "--data", "sklearn:digits", "--profile", "quick", "-q",
              "--top-k", "2"]
    for i in range(2):
        code, _, err = hubensemble("rank", *common, "--shard", f"{i}/2", "--out",
                                   str(tmp_path / f"s{i}"), env=env)
        assert code == 0, err
    code, out, err = hubensemble("rank", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"),
                                 "--out", str(tmp_path / "run"), "--top-k", "2", env=env)
    assert code == 0, err
    merged = json.loads((tmp_path / "run" / "ranking.json").read_text())
    code, _, err = hubensemble("rank", *common, "--out", str(tmp_path / "whole"), env=env)
    assert code == 0, err
    whole = json.loads((tmp_path / "whole" / "ranking.json").read_text())
    assert [(r["name"], r["score"]) for r in merged["modules"]] == [
        (r["name"], r["score"]) for r in whole["modules"]]
    assert merged["selected"] == whole["selected"] and len(whole["selected"]) == 2
    code, _, err = hubensemble("ensemble", "--run", str(tmp_path / "whole"), env=env)
    assert code == 2 and "hubensemble tune" in err and "Traceback" not in err


@pytest.mark.slow
def test_zoo_build_quick_writes_a_valid_catalogue(tmp_path):
    out = tmp_path / "z"
    code, stdout, err = hubensemble("zoo", "build", "--preset", "quick", "--out", str(out),
                                    "-q")
    assert code == 0, err
    assert Path(stdout.strip()) == out
    code, _, err = hubensemble("catalogue", "validate", str(out / "catalogue.yaml"))
    assert code == 0, err
    assert "Traceback" not in err
