"""tools/benchmarks/bench_test_cpu.py: a pytest selection's tests ranked by CPU seconds."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INNER = '''
import subprocess, sys, time


def _busy(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_busy():
    _busy(0.5)


def test_sleeps():  # wall seconds, next to no CPU
    time.sleep(0.5)


def test_a_child_is_busy():  # CPU of a process the test waited for
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.5\\n"
                    "while time.process_time() < end: pass"], check=True)
'''


def _bench(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, str(ROOT / "tools" / "benchmarks" / "bench_test_cpu.py"),
                           *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)


def test_the_top_tests_by_cpu_and_the_total(tmp_path):
    """Its own and its waited-for children's CPU per test, in each process that runs tests
    (pytest-xdist's workers: -n 2 here): the sleeping test's wall seconds are not counted."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    out = _bench(tmp_path, "--top", "2", "--json", "rows.json", "--", "-q", "-n", "2", "-p",
                 "no:cacheprovider", "test_inner.py")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    start = lines.index("CPU seconds per test (its process and waited-for children), top 2 of 3:")
    listed = [line.split()[-1] for line in lines[start + 2:start + 4]]
    assert sorted(listed) == ["test_inner.py::test_a_child_is_busy", "test_inner.py::test_busy"]
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert sorted(rows) == sorted(["test_inner.py::test_busy", "test_inner.py::test_sleeps",
                                   "test_inner.py::test_a_child_is_busy"])
    cpu = {name.split("::")[1]: value[0] for name, value in rows.items()}
    assert cpu["test_busy"] >= 0.5 and cpu["test_a_child_is_busy"] >= 0.5, cpu
    assert cpu["test_sleeps"] < 0.25 and rows["test_inner.py::test_sleeps"][1] >= 0.5, rows
    total = lines[start + 4]
    assert total.startswith(f"tests: {sum(cpu.values()):.1f} s CPU, ") and "over 3 tests" in total


def test_pytest_options_go_after_a_double_dash_and_nothing_run_is_said(tmp_path):
    out = _bench(tmp_path, "-q", "-n0", "test_inner.py")
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].endswith(
        "error: unrecognized arguments: -q -n0 (pytest's options go after --)"), out.stderr
    out = _bench(tmp_path, "--", "-p", "no:cacheprovider", "nothere.py")
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "no test ran (pytest exit code 4): nothing to measure"
