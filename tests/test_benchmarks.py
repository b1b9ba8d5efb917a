"""The benchmark scripts' command lines (tools/benchmarks): bad arguments are one-line usage
errors before any work, and --help describes the script in whole sentences."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "tools" / "benchmarks"


#: Seconds a script may run in a test. A usage error ends in seconds; a test run against code
#: that does not refuse its arguments runs the whole benchmark (minutes), which is then stopped.
SCRIPT_TIMEOUT = 120


def _script(name, *args, code=None, env=None, timeout=SCRIPT_TIMEOUT):
    """(exit code, stdout, stderr) of `python tools/benchmarks/NAME ARGS` (or of `code`), with
    `env`'s variables added to the environment.

    The script runs in a process group of its own, which is killed whole when the call ends
    (the processes the script started and left, e.g. bench_scale's `hubensemble rank` shards)
    or when it outlasts `timeout` seconds (the test then fails, saying so), or when the test
    is interrupted: subprocess.run's timeout killed only the script, and its children kept
    running after a failing test (seen checking a fix against HEAD~)."""
    cmd = [sys.executable, *(["-c", code] if code else [str(BENCH / name)]), *args]
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(BENCH.parents[1])] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH")
                                   else []))}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=BENCH, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"{name} {' '.join(args)} did not end in {timeout} s; it and every process "
                    f"it started were killed. Its stderr's end:\n{err[-2000:]}")
    finally:
        _kill_group(proc)
    return proc.returncode, out, err


def _kill_group(proc):
    """SIGKILL to the process group `proc` leads (start_new_session), then wait for `proc`;
    nothing when the group is gone already."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


#: (script, its arguments, the start of its usage error): refused before any work.
BAD_ARGUMENTS = [
    # Tracebacks from scikit-learn, numpy or the loop, or a run with another value.
    ("bench_knn.py", ["--k", "0"], "argument --k: must be an integer >= 1, got '0'"),
    ("bench_labelcheck.py", ["--catalogue", "c.yaml", "--rates", "5,100"],
     "argument --rates: must be percentages below 100, got [5, 100]"),
    ("bench_imbalance.py", ["--ratio", "1"], "argument --ratio: must be an integer >= 2"),
    ("bench_calibration.py", ["--runs", "r", "--splits", "-1"],
     "argument --splits: must be an integer >= 0, got '-1'"),
    ("bench_resume.py", ["--fetches", "0"], "argument --fetches: must be an integer >= 1"),
    ("bench_resume.py", ["--sizes", "0,x"], "argument --sizes: must be comma-separated "
                                            "integers >= 1 (each once), got '0,x'"),
    ("bench_imbalance.py", ["--tasks", "digits,cifar"], "argument --tasks: must be "
     "comma-separated task from digits, pbc_bloodcells8"),
    ("bench_knn.py", ["--n", "1"], "argument --n: must be an integer >= 2, got '1'"),
    ("bench_knn.py", ["--classes", "0"], "argument --classes: must be an integer >= 1"),
    ("bench_knn.py", ["--dim", "-3"], "argument --dim: must be an integer >= 1, got '-3'"),
    ("bench_knn.py", ["--metrics", "manhattan"], "argument --metrics: must be comma-separated "
                                                 "metrics from euclidean, cosine (each once), "
                                                 "got 'manhattan'"),
    ("bench_knn.py", ["--k", "500", "--n", "200"],
     "argument --k: must be at most N - 1 = 199 (--n 200), got 500"),
    ("bench_knn.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    # The other scripts' counts (tracebacks, or a run started with them).
    ("bench_ensemble.py", ["--candidates", "0"], "argument --candidates: must be an integer"),
    ("bench_ensemble.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    ("bench_tune.py", ["--steps", "0"], "argument --steps: must be an integer >= 1, got '0'"),
    ("bench_rank.py", ["--images", "0"], "argument --images: must be an integer >= 20"),
    # 10 classes, image i of class i % 10: --images 16 was a DataError traceback minutes in
    # ("every class needs at least 2 training examples … '6' has 1"), in both scripts.
    ("bench_rank.py", ["--images", "19"], "argument --images: must be an integer >= 20, got "
                                          "'19' (rank needs 2 training images per class"),
    ("bench_scale.py", ["--images", "16"], "argument --images: must be an integer >= 20, got "
                                           "'16' (ranking needs 2 training images per class"),
    ("bench_method.py", ["--seeds", "-1"], "argument --seeds: must be an integer in [0, "),
    ("bench_method.py", ["--top-k", "0"], "argument --top-k: must be an integer >= 1"),
    # A real pool without its modules printed "(skipped)" and exited 0, measuring nothing
    # (--pool real+zoo after building the demo zoo, minutes).
    ("bench_method.py", ["--pool", "real"], "argument --real-dir: required with --pool real; "
                                            "build the real modules with"),
    ("bench_method.py", ["--pool", "real+zoo", "--real-dir", "/nowhere"],
     "argument --real-dir: /nowhere/real_modules.yaml does not exist; build the real modules"),
    ("bench_scale.py", ["--shards", "0"], "argument --shards: must be an integer >= 1"),
    ("bench_photos.py", ["--sizes", "2"], "argument --sizes: must be comma-separated photo "
                                          "counts >= 4 (each once), got '2'"),
    ("bench_photos.py", ["--stages", "tune"], "argument --stages: must be comma-separated "
                                              "stages from rank, fit (each once)"),
    ("bench_folder.py", ["--sizes", "5"], "argument --sizes: must be comma-separated file "
                                          "counts >= 20 (each once), got '5'"),
    ("bench_folder.py", ["--photos", "-1"], "argument --photos: must be an integer >= 0"),
    ("bench_top.py", ["--sizes", "20"], "argument --sizes: must be comma-separated "
     "training-image counts"),
    ("bench_top.py", ["--stages", "fit"], "argument --stages: must be comma-separated "),
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
    ("bench_export_stages.py", ["--repeats", "0"],
     "argument --repeats: must be an integer >= 1, got '0'"),
    ("bench_figures.py", ["--export", "."], "argument --export: . holds no hubensemble export"),
    ("bench_predict.py", ["--images", "1"], "argument --images: must be an integer >= 2, got '1'"),
    ("bench_speed.py", ["--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    ("bench_speed.py", ["--baseline", "no-such-rev"], "argument --baseline: 'no-such-rev' is "
                                                      "no revision of "),
]


#: Runs `python SCRIPT ARGS` for each [SCRIPT, ARGS] of the JSON list argv[1] as Python runs
#: a script (runpy, as __main__), one after another in this one process, each one's stdout
#: and stderr caught; prints [[exit code, stdout, stderr, whether TensorFlow is imported by
#: then], …] as JSON. argv[2] "plain" keeps --help's paragraphs as written (unwrapped). Each
#: case is named on the real stderr first: a case that runs its benchmark instead of
#: refusing it is the last named when the batch is stopped.
SCRIPTS_IN_ONE_PROCESS = """if True:
    import argparse, contextlib, io, json, os, runpy, sys, traceback
    bench = os.getcwd()
    sys.path.insert(0, bench)
    if sys.argv[2] == "plain":
        argparse.HelpFormatter._fill_text = lambda self, text, width, indent: text
    said = []
    for name, args in json.loads(sys.argv[1]):
        print("running", name, *args, file=sys.stderr, flush=True)
        out, err = io.StringIO(), io.StringIO()
        sys.argv = [name, *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(os.path.join(bench, name), run_name="__main__")
                code = 0
            except SystemExit as e:  # as Python's exit: None 0, a text 1 said on stderr
                code = e.code if e.code is None or isinstance(e.code, int) else 1
                if code == 1 and not isinstance(e.code, int):
                    print(e.code, file=sys.stderr)
            except BaseException:
                code = 1
                traceback.print_exc()
        said.append([code or 0, out.getvalue(), err.getvalue(), "tensorflow" in sys.modules])
    print(json.dumps(said))
"""


def _in_one_process(cases, *, plain_help=False):
    """{(script, tuple(args)): (exit code, stdout, stderr, whether TensorFlow is imported by
    then)} of `python tools/benchmarks/SCRIPT ARGS` for each (script, args) of `cases`, run
    one after another in one new process (SCRIPTS_IN_ONE_PROCESS): refusals made as the
    arguments are parsed, in the words a process of their own shows, for one Python start-up
    rather than one a case (the 130 cases below took 36 s of CI run 93's 59 s of this file).
    Not for cases that import TensorFlow: the cases after one would see it imported."""
    import json

    cases = list(dict.fromkeys((name, tuple(args)) for name, args in cases))
    code, out, err = _script("(a batch)", json.dumps(cases), "plain" if plain_help else "-",
                             code=SCRIPTS_IN_ONE_PROCESS,
                             timeout=SCRIPT_TIMEOUT + 2 * len(cases))
    assert code == 0, err[-3000:]
    return dict(zip(cases, map(tuple, json.loads(out.splitlines()[-1]))))


@pytest.fixture(scope="module")
def bad_arguments():
    """BAD_ARGUMENTS' scripts as `_in_one_process` runs them."""
    return _in_one_process([(name, args) for name, args, _ in BAD_ARGUMENTS])


@pytest.mark.parametrize("name, args, message", BAD_ARGUMENTS)
def test_a_bad_argument_is_a_one_line_usage_error(name, args, message, bad_arguments):
    code, out, err, _ = bad_arguments[name, tuple(args)]
    assert (code, out) == (2, ""), err[-2000:]
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"{name}: error: {message}"), err


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Files and folders the refusals below name: {file}, {dir} (an empty folder), {started}
    (a run folder with an empty run.json: started, never tuned), {badcat} (a catalogue whose
    local handle does not exist), {badjson} (not JSON), {rows} (JSON, not rows), {reused} (a
    --out whose run recorded sklearn:digits, seed 0), {broken} (one whose run.json is not
    JSON), {npz} (an .npz of 4 images), {zoos} (a folder holding a finished quick zoo)."""
    root = tmp_path_factory.mktemp("bench-args")
    (root / "file").write_text("x")
    (root / "dir").mkdir()
    (root / "started").mkdir()
    (root / "started" / "run.json").write_text("{}")
    (root / "work" / "run").mkdir(parents=True)
    (root / "work" / "run" / "run.json").write_text("{}")
    (root / "badcat.yaml").write_text("modules:\n  - name: a\n    handle: nowhere/x\n")
    (root / "badjson.json").write_text("nope")
    (root / "rows.json").write_text('{"a": 1}')
    (root / "reused" / "run").mkdir(parents=True)  # a --out whose run recorded digits, seed 0
    (root / "reused" / "run" / "run.json").write_text(
        '{"data": {"args": {"spec": "sklearn:digits", "seed": 0}, "task": {}}}')
    (root / "broken" / "run").mkdir(parents=True)
    (root / "zoos" / "quick").mkdir(parents=True)  # a finished zoo: its marker file
    (root / "zoos" / "quick" / "zoo.json").write_text("{}")
    np.savez(root / "tiny.npz", x_train=np.zeros((4, 8, 8, 3), np.uint8),
             y_train=np.array([0, 1, 0, 1]))
    (root / "broken" / "run" / "run.json").write_text("{")
    return {"file": root / "file", "dir": root / "dir", "started": root / "started",
            "work": root / "work", "badcat": root / "badcat.yaml",
            "badjson": root / "badjson.json", "rows": root / "rows.json",
            "reused": root / "reused", "broken": root / "broken", "npz": root / "tiny.npz",
            "zoos": root / "zoos",
            "demo": BENCH.parents[1] / "catalogue" / "demo.yaml"}


_BACKBONES = ["--catalogue", "{demo}", "--task", "sklearn:digits"]
_FINETUNE_KEYS = "must be KEY=VALUE,... with keys from steps, batch_size, seed, lr,"


#: (script, its arguments ({NAME}: a path of `paths`), the start of its usage error).
BAD_PATHS = [
    # Each was a traceback, most after TensorFlow loaded or minutes of work; some
    # started the work (--sizes 5,5 measured a size twice, --budget nan extrapolated every
    # size, --interpolate 2 extrapolated the weights, --seeds 1 1 counted a row twice).
    ("bench_scale.py", ["--sizes", "0"], "argument --sizes: must be comma-separated module "
                                         "counts >= 1 (each once), got '0'"),
    ("bench_scale.py", ["--sizes", "abc"], "argument --sizes: must be comma-separated"),
    ("bench_scale.py", ["--sizes", "100,,200"], "argument --sizes: must be comma-separated"),
    ("bench_scale.py", ["--sizes", "-5"], "argument --sizes: must be comma-separated"),
    ("bench_scale.py", ["--sizes", "250,250"], "argument --sizes: must be comma-separated"),
    ("bench_scale.py", ["--sizes", "3,2"], "argument --shards: must be at most the smallest "
                                           "of --sizes (2)"),
    ("bench_scale.py", ["--budget", "0"], "argument --budget: must be a number > 0 and finite, "
                                          "got '0'"),
    ("bench_scale.py", ["--budget", "-1"], "argument --budget: must be a number > 0 and finite"),
    ("bench_scale.py", ["--budget", "nan"], "argument --budget: must be a number > 0 and finite"),
    ("bench_scale.py", ["--budget", "inf"], "argument --budget: must be a number > 0 and finite"),
    ("bench_scale.py", ["--budget", "abc"], "argument --budget: must be a number > 0 and finite"),
    ("bench_scale.py", ["--keep", "{file}"], "argument --keep: {file} is a file, not a folder"),
    # A --keep with an earlier run's folders: its "cold cache" figures were a warm resume.
    ("bench_scale.py", ["--keep", "{zoos}"], "argument --keep: {zoos} is not empty"),
    ("bench_cost.py", ["--run", "/nonexistent"], "argument --run: /nonexistent does not "
                                                 "exist; pass a run directory"),
    ("bench_cost.py", ["--run", "{file}"], "argument --run: {file} is not a folder"),
    ("bench_cost.py", ["--run", "{dir}"], "argument --run: {dir} is not a hubensemble run"),
    ("bench_cost.py", ["--run", "{started}"], "argument --run: {started}/ensemble.json is "
                                              "missing; `hubensemble ensemble --run"),
    ("bench_cost.py", ["--run", "{started}", "--work", "{file}"],
     "argument --work: {file} is a file, not a folder"),
    ("bench_cost.py", ["--run", "{work}/run", "--work", "{work}"],
     "argument --run: {work}/run is, holds or lies in WORK/run ({work}/run), which this "
     "script deletes"),
    ("bench_backbones.py", ["--catalogue", "/nonexistent.yaml", "--task", "sklearn:digits"],
     "argument --catalogue: /nonexistent.yaml: cannot read the catalogue"),
    ("bench_backbones.py", ["--catalogue", "{badcat}", "--task", "sklearn:digits"],
     "argument --catalogue: {badcat}:3: handle "),
    ("bench_backbones.py", [*_BACKBONES, "--modules", "bogus"],
     "argument --modules: module 'bogus' is not in the catalogue; its modules: "),
    ("bench_backbones.py", ["--catalogue", "{demo}", "--task", "digits"],
     "argument --task: data spec 'digits' has no scheme"),
    ("bench_backbones.py", ["--catalogue", "{demo}", "--task", "npz:/nonexistent.npz"],
     "argument --task: npz:/nonexistent.npz: no such file"),
    ("bench_backbones.py", [*_BACKBONES, "--top-k", "0"],
     "argument --top-k: must be an integer >= 1, got '0'"),
    ("bench_backbones.py", [*_BACKBONES, "--max-steps", "0"],
     "argument --max-steps: must be an integer >= 1, got '0'"),
    ("bench_backbones.py", [*_BACKBONES, "--max-steps", "-3"], "argument --max-steps: must"),
    ("bench_backbones.py", [*_BACKBONES, "--seed", "-1"],
     "argument --seed: must be an integer in [0, 4294967295], got '-1'"),
    ("bench_backbones.py", [*_BACKBONES, "--seed", str(2**32)],
     "argument --seed: must be an integer in [0, 4294967295], got '4294967296'"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1,steps=10,bogus=1"],
     f"argument --finetune: {_FINETUNE_KEYS}"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1,steps=10,lr=0.2"],
     f"argument --finetune: {_FINETUNE_KEYS}"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr"],
     f"argument --finetune: {_FINETUNE_KEYS}"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1"],
     "argument --finetune: needs steps"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1,steps=x"],
     "argument --finetune: steps must be an integer, got 'x'"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=-1,steps=10"],
     "argument --finetune: invalid hyperparameters: lr must be > 0"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1,steps=10,batchnorm=maybe"],
     "argument --finetune: invalid hyperparameters: batchnorm must be one of"),
    ("bench_backbones.py", [*_BACKBONES, "--finetune", "lr=0.1,steps=10,resize_factor=0.5"],
     "argument --finetune: AugConfig with crop='random' needs resize_factor >= 1"),
    ("bench_backbones.py", [*_BACKBONES, "--interpolate", "a,b"],
     "argument --interpolate: must be comma-separated numbers in [0, 1]"),
    ("bench_backbones.py", [*_BACKBONES, "--interpolate", "0,2"],
     "argument --interpolate: must be comma-separated numbers in [0, 1]"),
    ("bench_backbones.py", [*_BACKBONES, "--interpolate", "0,nan"],
     "argument --interpolate: must be comma-separated numbers in [0, 1]"),
    ("bench_backbones.py", [*_BACKBONES, "--interpolate", "0.5,0.5"],
     "argument --interpolate: must be comma-separated numbers in [0, 1] (each once"),
    ("bench_backbones.py", [*_BACKBONES, "--out", "{file}"],
     "argument --out: {file} is a file, not a folder"),
    ("bench_backbones.py", [*_BACKBONES, "--json", "{dir}"],
     "argument --json: {dir} is a folder, not a file"),
    ("bench_backbones.py", [*_BACKBONES, "--json", "{dir}/no/x.json"],
     "argument --json: the folder of {dir}/no/x.json"),
    # A reused --out: rank was skipped and tune refused the other data after it had loaded.
    ("bench_backbones.py", [*_BACKBONES, "--out", "{reused}", "--seed", "3"],
     "argument --out: {reused}/run holds a run on other data than --task and --seed (seed 0 "
     "-> 3)"),
    ("bench_backbones.py", [*_BACKBONES, "--out", "{reused}", "--task", "npz:{npz}"],
     "argument --out: {reused}/run holds a run on other data than --task and --seed (spec "
     "'sklearn:digits' -> 'npz:{npz}')"),
    ("bench_backbones.py", [*_BACKBONES, "--out", "{broken}"],
     "argument --out: {broken}/run/run.json is unreadable"),
    ("bench_export.py", ["--keep", "{file}"], "argument --keep: {file} is a file, not a "),
    ("bench_rank.py", ["--widths", "0"], "argument --widths: must be comma-separated channel "
                                         "counts >= 1, got '0'"),
    ("bench_rank.py", ["--widths", "32,,64"], "argument --widths: must be comma-separated"),
    ("bench_method.py", ["--sweep", "bogus"], "argument --sweep: must be a sweep"),
    ("bench_method.py", ["--tasks", "digits", "digits"], "argument --tasks: digits given "
                                                         "twice"),
    ("bench_method.py", ["--tasks", "digits", "--seeds", "1", "1"], "argument --seeds: 1 "
                                                                    "given twice"),
    ("bench_method.py", ["--tasks", "gtsrb10", "--data-root", "{dir}"],
     "argument --data-root: npz:{dir}/gtsrb10.npz: no such file"),
    ("bench_method.py", ["--tasks", "digits", "--json", "{badjson}"],
     "argument --json: {badjson} holds no rows of this script to resume"),
    ("bench_method.py", ["--tasks", "digits", "--json", "{rows}"],
     "argument --json: {rows} holds no rows of this script to resume"),
    ("bench_method.py", ["--tasks", "digits", "--out", "{file}"], "argument --out: {file} is "
                                                                  "a file"),
    ("bench_selection.py", ["--runs", "r", "--json", "{dir}"], "argument --json: {dir} is a "
                                                               "folder, not a file"),
    ("bench_selection.py", ["--runs", "r", "--rules", "paper", "paper"],
     "argument --rules: paper given twice"),
    ("bench_zoo.py", ["--out", "{file}"], "argument --out: {file} is a file, not a folder"),
    # It printed the reused zoo's ~0 s as the build time ("target met").
    ("bench_zoo.py", ["--out", "{zoos}", "--presets", "quick"],
     "argument --out: {zoos}/quick holds a zoo, which the build would reuse at once"),
    ("bench_demo.py", ["--venv", "{file}"], "argument --venv: {file} is a file, not a folder"),
    ("faults.py", ["--keep", "{file}"], "argument --keep: {file} is a file, not a folder"),
    # Windows-written paths: a folder named "D:\\zoo" was made in the working folder.
    ("bench_zoo.py", ["--out", "D:\\zoo"],
     "argument --out: 'D:\\zoo' is written as a Windows path"),
    ("bench_selection.py", ["--runs", "r", "--json", "C:\\r.json"],
     "argument --json: 'C:\\r.json' is written as a Windows path"),
    ("faults.py", ["--keep", "\\\\srv\\share\\k"],
     "argument --keep: '\\\\srv\\share\\k' is a Windows network share"),
    ("faults.py", ["--http-timeout", "0"], "argument --http-timeout: must be a number > 0 "
                                           "and finite, got '0'"),
    ("faults.py", ["--http-timeout", "nan"], "argument --http-timeout: must be a number > 0 "
                                             "and finite"),
]


@pytest.fixture(scope="module")
def bad_paths(paths):
    """BAD_PATHS' scripts, their paths filled in, as `_in_one_process` runs them."""
    return _in_one_process([(name, [a.format(**paths) for a in args])
                            for name, args, _ in BAD_PATHS])


@pytest.mark.parametrize("name, args, message", BAD_PATHS)
def test_a_bad_path_list_or_range_is_a_usage_error_before_tensorflow(
        name, args, message, paths, bad_paths):
    code, out, err, tensorflow = bad_paths[name, tuple(a.format(**paths) for a in args)]
    assert (code, out, tensorflow) == (2, "", False), err[-2000:]  # before TensorFlow loads
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{name}: error: ")]
    assert len(lines) == 1 and lines[0].startswith(
        f"{name}: error: {message.format(**paths)}"), err


HELP_SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if "description=" in p.read_text())


@pytest.fixture(scope="module")
def helps():
    """Each of HELP_SCRIPTS' `--help`, its paragraphs unwrapped, as `_in_one_process` runs
    them."""
    return _in_one_process([(name, ["--help"]) for name in HELP_SCRIPTS], plain_help=True)


@pytest.mark.parametrize("name", HELP_SCRIPTS)
def test_help_shows_the_docstrings_first_paragraph(name, helps):
    # bench_knn's ended "…version against", bench_scale's "…cache size against the".
    doc = ast.get_docstring(ast.parse((BENCH / name).read_text()))
    paragraph = " ".join(doc.split("\n\n")[0].split())
    _, out, err, tensorflow = helps[name, ("--help",)]
    assert f"\n{paragraph}\n" in out, out
    assert out.startswith("usage: ")  # nothing before it: no TensorFlow notices
    assert not tensorflow, err  # parsed before TensorFlow loads


def test_bench_selection_offers_the_ensembles_size_rules():
    # The script names them from the options table, without importing hubensemble.ensemble.
    from hubensemble import options
    from hubensemble.ensemble import SIZE_RULES

    assert options.get("size_rule").choices == tuple(SIZE_RULES)


def test_a_script_option_is_refused_in_the_main_parsers_words(monkeypatch, capsys):
    """benchargs.option's type called options.check outside the command line: "argument
    --sweep: sweep must be a sweep …", the option named twice, once as the Python keyword.
    It now says what `hubensemble fit --sweep bogus` says."""
    import argparse

    from hubensemble.cli import build_parser

    monkeypatch.syspath_prepend(str(BENCH))
    import benchargs

    def refusal(parser, args):
        with pytest.raises(SystemExit):
            parser.parse_args(args)
        return capsys.readouterr().err.strip().splitlines()[-1].split("error: ", 1)[1]

    script = argparse.ArgumentParser()
    script.add_argument("--sweep", type=benchargs.option("sweep"))
    said = refusal(script, ["--sweep", "bogus"])
    assert said.startswith("argument --sweep: must be a sweep"), said
    assert said == refusal(build_parser(), ["fit", "--sweep", "bogus"])


def test_bench_rank_times_the_warm_cache_in_run_folders_of_its_own(
        tmp_path, monkeypatch, capsys):
    """Step 3 of bench_rank ranked into root/warm0…warm2, the folders of its own modules
    (root/warm0…warm5): run_rank refused the first ("… holds files or folders (assets,
    fingerprint.pb, saved_model.pb, variables) and no run"), a traceback after steps 1-2, on
    any arguments."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "cache"))
    import bench_rank

    bench_rank.bench_warm(str(tmp_path), 2 * bench_rank.CLASSES, modules=2)
    out = capsys.readouterr().out
    assert "3. run_rank, 2 modules x 20 images" in out and "(best of 3; 2/2 cache hits)" in out
    assert "same scores: True" in out


def test_bench_speed_runs_a_copy_of_the_checkout_taken_at_start(tmp_path, monkeypatch):
    """bench_speed's current runs imported the live checkout as they went, so an edit or a
    `git pull` during a run mixed two versions' modules (once it failed a run's export): the
    current side is now a copy taken at start, which a later edit leaves as it was."""
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_speed

    tree = bench_speed.snapshot(tmp_path)
    package = BENCH.parents[1] / "hubensemble"
    copied = sorted(p.relative_to(tree / "hubensemble") for p in (tree / "hubensemble").rglob("*")
                    if p.is_file())
    assert copied == sorted(p.relative_to(package) for p in package.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts)
    assert (tree / "hubensemble" / "pipeline.py").read_bytes() == \
        (package / "pipeline.py").read_bytes()
    # The demo's child runs from the scratch folder with PYTHONPATH=tree: it imports the copy.
    where = subprocess.run([sys.executable, "-c",
                            "import hubensemble; print(hubensemble.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == tree / "hubensemble" / "__init__.py"


@pytest.fixture(scope="module")
def bench_tune_failing(tmp_path_factory):
    """(TMPDIR, exit code, stdout, stderr) of one `bench_tune.py --steps 5 --repeats 1` (5
    steps: its trial fails at chance) under a TMPDIR of its own (the folder it keeps): the
    two tests below read the same run (one run of its 10 s each)."""
    tmp = tmp_path_factory.mktemp("bench_tune")
    return (tmp, *_script("bench_tune.py", "--steps", "5", "--repeats", "1",
                          env={"TMPDIR": str(tmp)}))


def test_a_benchmark_shows_log_records_as_a_command_does(bench_tune_failing):
    """bench_tune.py's failed trial (5 steps: at chance) printed Python logging's default
    format from absl's basicConfig, INFO included, with the trial's traceback
    ("INFO:hubensemble.tune.train: …", "Traceback …", "WARNING:hubensemble.tune.tuner: …"):
    now one warning line as `hubensemble tune` shows it (benchargs.command_logging)."""
    import re

    _, code, out, err = bench_tune_failing
    assert code == 0, err
    assert "median wall clock" in out
    assert "Traceback" not in err and not re.search(r"^[A-Z]+:", err, re.MULTILINE), err
    failed = [line for line in err.splitlines() if "seeds-0000-convnet failed" in line]
    assert failed and all(line.startswith("WARNING hubensemble.tune.tuner: trial ")
                          for line in failed), err


def test_bench_tune_keeps_the_log_its_failure_line_names(bench_tune_failing):
    """bench_tune.py's failed trial's line said "(details in /tmp/bench_tune-…/run/log.txt)"
    and the script deleted that folder at exit: the log it named was gone. The folder is now
    kept, and said, when a line named a path in it."""
    import re

    tmp_path, code, out, err = bench_tune_failing
    assert code == 0, err
    named = re.findall(r"details in (\S+log\.txt)\)", err)
    assert named and all(os.path.isfile(path) for path in named), err
    folder = os.path.dirname(os.path.dirname(named[0]))  # TMPDIR/bench_tune-…
    assert os.path.dirname(folder) == str(tmp_path) and f"kept {folder} " in err, err


#: A script that starts a child that sleeps, writes its pid to the file argv[2], and sleeps
#: argv[1] seconds.
LEAVES_A_CHILD = """
import pathlib, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
pathlib.Path(sys.argv[2]).write_text(str(child.pid))
time.sleep(float(sys.argv[1]))
"""


def _running(pid):
    """Whether process `pid` runs (a zombie, dead and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _stopped(pid_file, seconds=10.0):
    """Whether the process whose pid is in `pid_file` is gone (within `seconds`); it is
    killed when it is not, so that a failing test leaves nothing behind either."""
    import time

    pid = int(pid_file.read_text())
    end = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, 9)
        return False
    return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_script_leaves_no_process_behind_when_it_ends(tmp_path):
    """A benchmark script's children (bench_scale's `hubensemble rank` shards, bench_rank's
    memory child) outlived a test that ran it: subprocess.run waited for the script only."""
    code, _, err = _script("child", "0", str(tmp_path / "pid"), code=LEAVES_A_CHILD)
    assert code == 0, err
    assert _stopped(tmp_path / "pid"), "the script's child still ran after the test"


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_script_past_its_timeout_fails_the_test_and_its_processes_are_killed(tmp_path):
    """A usage-error test run against code that accepts the bad argument ran the whole
    benchmark: past its timeout the test now fails, saying so, and nothing it started runs
    on (subprocess.run's timeout killed the script and left its children)."""
    with pytest.raises(pytest.fail.Exception, match=r"^child 300 \S+ did not end in 2 s; it "
                                                    r"and every process it started were "
                                                    r"killed"):
        _script("child", "300", str(tmp_path / "pid"), code=LEAVES_A_CHILD, timeout=2)
    assert _stopped(tmp_path / "pid"), "the script's child still ran after the test"
