"""The benchmark scripts' command lines (tools/benchmarks): bad arguments are one-line usage
errors before any work, and --help describes the script in whole sentences."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "benchmarks"


def _script(name, *args, code=None):
    """(exit code, stdout, stderr) of `python tools/benchmarks/NAME ARGS` (or of `code`)."""
    cmd = [sys.executable, *(["-c", code] if code else [str(BENCH / name)]), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(BENCH.parents[1])] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH")
                                   else []))}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                          cwd=BENCH)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("name, args, message", [
    # Tracebacks from scikit-learn, numpy or the loop, or a run with another value.
    ("bench_knn.py", ["--k", "0"], "argument --k: must be an integer >= 1, got '0'"),
    ("bench_knn.py", ["--n", "1"], "argument --n: must be an integer >= 2, got '1'"),
    ("bench_knn.py", ["--classes", "0"], "argument --classes: must be an integer >= 1"),
    ("bench_knn.py", ["--dim", "-3"], "argument --dim: must be an integer >= 1, got '-3'"),
    ("bench_knn.py", ["--metrics", "manhattan"], "argument --metrics: must be comma-separated "
                                                 "metrics from euclidean, cosine (each once), "
                                                 "got 'manhattan'"),
    ("bench_knn.py", ["--k", "500", "--n", "200"],
     "argument --k: must be at most N - 1 = 199 (--n 200), got 500"),
    ("bench_knn.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    # Helper 73: the other scripts' counts (tracebacks, or a run started with them).
    ("bench_ensemble.py", ["--candidates", "0"], "argument --candidates: must be an integer"),
    ("bench_ensemble.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    ("bench_tune.py", ["--steps", "0"], "argument --steps: must be an integer >= 1, got '0'"),
    ("bench_rank.py", ["--images", "0"], "argument --images: must be an integer >= 2"),
    ("bench_method.py", ["--seeds", "-1"], "argument --seeds: must be an integer in [0, "),
    ("bench_method.py", ["--top-k", "0"], "argument --top-k: must be an integer >= 1"),
    ("bench_scale.py", ["--shards", "0"], "argument --shards: must be an integer >= 1"),
    ("bench_selection.py", ["--runs", "r", "--rules", "bogus"],
     "argument --rules: invalid choice: 'bogus' (choose from 'one-se', 'paper', 'budget')"),
    ("bench_selection.py", ["--runs", "r", "--budget", "-2"], "argument --budget: must be an "
                                                              "integer >= 1, got '-2'"),
    ("bench_selection.py", ["--runs", "r", "--budget", "0"], "argument --budget: must be an "
                                                             "integer >= 1, got '0'"),
    ("bench_zoo.py", ["--presets", "bogus"], "argument --presets: invalid choice: 'bogus'"),
    ("bench_zoo.py", ["--skip-build", "--out", "/nonexistent"],
     "--skip-build needs a demo zoo built by this script in --out (/nonexistent/demo is not "
     "one); run without --skip-build first"),
    # It printed a "machine:" line and exited 0 having done nothing.
    ("bench_zoo.py", ["--presets", "quick", "--skip-build", "--out", "."],
     "--skip-build only prints the digits table of the demo zoo; add demo to --presets"),
    ("bench_export.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
])
def test_a_bad_argument_is_a_one_line_usage_error(name, args, message):
    code, out, err = _script(name, *args)
    assert (code, out) == (2, ""), err[-2000:]
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"{name}: error: {message}"), err


@pytest.mark.parametrize("name", sorted(p.name for p in BENCH.glob("*.py")
                                        if "description=" in p.read_text()))
def test_help_shows_the_docstrings_first_paragraph(name):
    # bench_knn's ended "…version against", bench_scale's "…cache size against the".
    doc = ast.get_docstring(ast.parse((BENCH / name).read_text()))
    paragraph = " ".join(doc.split("\n\n")[0].split())
    code = (f"import sys; sys.argv = [{name!r}, '--help']; sys.path.insert(0, {str(BENCH)!r})\n"
            "import argparse; argparse.HelpFormatter._fill_text = lambda s, t, w, i: t\n"
            f"import runpy\ntry: runpy.run_path({str(BENCH / name)!r}, run_name='__main__')\n"
            "except SystemExit: pass\nprint('tensorflow' in sys.modules)")
    _, out, err = _script(name, code=code)
    assert f"\n{paragraph}\n" in out, out
    assert out.startswith("usage: ")  # nothing before it: no TensorFlow notices
    if name in ("bench_export.py", "bench_knn.py", "bench_selection.py", "bench_zoo.py"):
        assert out.splitlines()[-1] == "False", err  # parsed before TensorFlow loads


def test_bench_selection_offers_the_ensembles_size_rules():
    # The script names them from the options table, without importing hubensemble.ensemble.
    from hubensemble import options
    from hubensemble.ensemble import SIZE_RULES

    assert options.get("size_rule").choices == tuple(SIZE_RULES)
