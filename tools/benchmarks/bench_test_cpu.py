"""Where a pytest selection's time goes: each test's CPU seconds (its process and the
processes it started and waited for), the top tests by CPU and the total, figures that hold on
a loaded machine where wall seconds do not.

    python tools/benchmarks/bench_test_cpu.py [--top 15] [--json FILE] [--] PYTEST_ARGS...
    e.g. python tools/benchmarks/bench_test_cpu.py --top 10 -- tests/test_zoo.py -n0

The selection runs in a pytest of its own (the current folder's configuration: the project's
addopts, -n auto, unless PYTEST_ARGS say otherwise), with this module as a plugin (`-p
bench_test_cpu`) in each process that runs tests, pytest-xdist's workers too. A test's
figure is the CPU (user + system) its setup, call and teardown took: the first test of a file
carries the file's module fixtures, the first of the session the session's. Wall seconds are
shown beside it, and each test's share of the tests' CPU; the whole run's CPU (collection,
imports, workers' start-up included) is the pytest process tree's, measured as it ends. On
2 cores shared by other work a test's CPU varies by a few percent from run to run, its wall
seconds by tens (`--durations`' figures); compare two revisions by their CPU, each run twice.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

#: The environment variable naming the folder each test process writes its rows to.
ROWS_DIR = "BENCH_TEST_CPU_ROWS"

_rows = {}


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Plugin hook: one test's setup, call and teardown, timed."""
    cpu, wall = _cpu(), time.perf_counter()
    yield
    _rows[item.nodeid] = (_cpu() - cpu, time.perf_counter() - wall)


def pytest_sessionfinish(session):
    """Plugin hook: this process's rows to ROWS_DIR (a controller that ran none writes none)."""
    folder = os.environ.get(ROWS_DIR)
    if folder and _rows:
        with open(os.path.join(folder, f"rows-{os.getpid()}.json"), "w") as f:
            json.dump(_rows, f)


def run_selection(pytest_args):
    """Runs pytest on `pytest_args` with this plugin; returns (its exit code, {nodeid: (CPU s,
    wall s)}, the whole run's CPU s, its wall s)."""
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="bench-test-cpu-") as folder:
        env = dict(os.environ, **{ROWS_DIR: folder, "PYTHONPATH": os.pathsep.join(
            [here] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))})
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "pytest", "-p", "bench_test_cpu",
                                *pytest_args], env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = {}
        for path in sorted(Path(folder).glob("rows-*.json")):
            rows.update({k: tuple(v) for k, v in json.loads(path.read_text()).items()})
    run_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return code, rows, run_cpu, wall


def table(rows, top, run_cpu, run_wall) -> str:
    """The report: the `top` tests by CPU ({nodeid: (CPU s, wall s)}) and the totals."""
    total = sum(cpu for cpu, _ in rows.values())
    ranked = sorted(rows.items(), key=lambda kv: -kv[1][0])[:top]
    lines = [f"CPU seconds per test (its process and waited-for children), top {len(ranked)} "
             f"of {len(rows)}:", f"{'cpu s':>8} {'wall s':>8} {'share':>6}  test"]
    lines += [f"{cpu:8.2f} {wall:8.2f} {cpu / total if total else 0:6.1%}  {name}"
              for name, (cpu, wall) in ranked]
    lines.append(f"tests: {total:.1f} s CPU, {sum(w for _, w in rows.values()):.1f} s wall "
                 f"over {len(rows)} tests; the whole run: {run_cpu:.1f} s CPU, {run_wall:.1f} s "
                 f"wall (collection, imports and workers' start-up included)")
    return "\n".join(lines)


def main(argv=None):
    # Here, not at the top: as the selection's plugin this module imports nothing of
    # hubensemble's before its tests do.
    from benchargs import description, file_target, integer

    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--top", type=integer(1), default=15,
                        help="how many of the most costly tests to list (default 15)")
    parser.add_argument("--json", type=file_target, metavar="FILE",
                        help="also write every test's {nodeid: [cpu s, wall s]} to FILE")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                        help="the selection and pytest's options, after this script's own "
                             "and a --")
    argv = sys.argv[1:] if argv is None else list(argv)
    own, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if (
        "--" in argv) else (argv, None)
    args, unknown = parser.parse_known_args(own)
    if unknown:  # pytest's options before the selection: argparse takes them for this script's
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (pytest's options go "
                     "after --)")
    pytest_args = args.pytest_args if pytest_args is None else args.pytest_args + pytest_args
    code, rows, run_cpu, run_wall = run_selection(pytest_args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if not rows:
        sys.exit(f"no test ran (pytest exit code {code}): nothing to measure")
    print(table(rows, args.top, run_cpu, run_wall))
    if code:
        print(f"(pytest exit code {code}: some tests failed; their figures are above too)")
    sys.exit(code)


if __name__ == "__main__":
    from benchargs import command_logging

    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
