"""The suite started in the background (`pytest &` in a script, `nohup … &`: CI's `.ci/run`):
the shell starts it with SIGINT ignored, and its tests must see Ctrl-C as from a terminal
(tests/conftest.py: `pytest_configure`, `ctrl_c_raises`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Run by a pytest started as a script's background job, with this folder's conftest.
INNER = '''
import os, signal, subprocess, sys, time
import pytest


def test_a_sigint_to_its_own_process_raises():
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises in here


def test_a_process_it_starts_has_pythons_handler():
    said = subprocess.run([sys.executable, "-c", "import signal; print(signal.getsignal("
                           "signal.SIGINT) is signal.default_int_handler)"],
                          capture_output=True, text=True, check=True).stdout
    assert said.split() == ["True"]
'''


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_a_suite_run_in_the_background_sees_a_ctrl_c_as_from_a_terminal(tmp_path):
    """Three tests of test_fileio (a stop between two renames, sent as a real SIGINT to the
    test's own process) and test_zoo's stopped build failed with "DID NOT RAISE
    KeyboardInterrupt" when the suite ran -n0 in the background: a background job of a
    non-interactive shell has SIGINT ignored, which conftest kept ignored (a handler that
    does nothing). Each test now has Python's own handler; the processes a test starts have
    it too. A child pytest started by `sh -c 'pytest … & wait'` runs two such tests."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's addopts
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS), str(TESTS.parent)] + [p for p in [env.get("PYTHONPATH")] if p])
    background = 'exec 0</dev/null; "$@" & wait $!'  # a script's `cmd &`: SIGINT ignored
    ignored = subprocess.run(
        ["sh", "-c", background, "sh", sys.executable, "-c",
         "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"],
        capture_output=True, text=True, env=env, timeout=60)
    assert ignored.stdout.split() == ["True"], ignored  # what the shell does: the premise
    out = subprocess.run(
        ["sh", "-c", background, "sh", sys.executable, "-m", "pytest", "-q", "-n0", "-p",
         "no:cacheprovider", "-p", "conftest", "test_inner.py"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 passed" in out.stdout, out.stdout[-3000:]
