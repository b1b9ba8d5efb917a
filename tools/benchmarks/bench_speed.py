"""Where a quick fit's time goes: per-stage seconds of `hubensemble demo` (zoo cached), per
trial the fit and the rest, and the ratio to a baseline checkout measured in the same run;
then checks that every number the two runs wrote is the same to the bit.

Each run is a fresh `python -m hubensemble demo -q --no-cache` (rank embeds afresh, so both
runs do the same work) with PYTHONPATH set to its checkout. With ``--baseline REV`` the
revision REV of this repository is checked out into the scratch folder (`git worktree`) and
the runs alternate baseline, current, baseline, ... (``--repeats`` each), so a machine shared
with other work slows both alike; the ratios are of the medians. The current side is a copy
of this checkout's `hubensemble` package taken at start, uncommitted edits included
(`snapshot`): the runs import it as they go, so a `git pull` or an edit while the script runs
no longer mixes two versions' modules (once it failed a run's export). CPU seconds (the
child's user + system time) are printed beside wall seconds: on a shared machine they are the
steadier figure.

The bit-for-bit check compares, between the first current run and every other run: each
candidate's val/test probabilities (.npy) and weights (every dataset of the .h5), the
exported SavedModel's variables (every tensor of the checkpoint), and ensemble.json,
robustness.json, cost.json and the export's metadata with the fields that measure time or
name the machine or folder left out (TIME_FIELDS). A difference is printed and the exit
status is 1.

    python tools/benchmarks/bench_speed.py [--baseline REV] [--repeats N] [--keep]

The demo's zoo is built first when it is not cached (minutes, once; not timed here).
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import command_logging, description, integer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _counted(count: int, word: str) -> str:
    """"1 run", "3 runs": hubensemble.text.counted's rule, written here because this script
    imports no module of the package it times (each run imports its own snapshot)."""
    return f"{count} {word if count == 1 else word + 's'}"


STAGES = ("rank", "tune", "cost", "ensemble", "export", "evaluate", "report")
#: JSON fields that measure time, name the machine, a folder or a file digest of those: left
#: out of the bit-for-bit check.
TIME_FIELDS = {"seconds", "created", "latency_ms", "latency_note", "host", "path", "run",
               "export", "model", "files", "cores", "cpu", "machine", "metadata_sha256",
               "interrupted_seconds", "train_seconds", "train_cpu_seconds",
               "head_init_seconds"}
JSON_FILES = ("ensemble.json", "robustness.json", "cost.json",
              "export/assets/hubensemble.json")


def demo(tree: Path, out: Path) -> dict:
    """One `hubensemble demo` of the checkout `tree` into `out`: {"wall", "cpu"} seconds of
    the child process, the stages' seconds (run.json) and the trials' (trial.json)."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hubensemble", "demo", "-q", "--no-cache",
                           "--out", str(out)], env=env, cwd=out.parent, capture_output=True,
                          text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"hubensemble demo of {tree} failed ({done.returncode}):\n"
                 f"{done.stderr[-3000:]}")
    stages = json.loads((out / "run.json").read_text())["stages"]
    trials = [json.loads(p.read_text()) for p in sorted(out.glob("candidates/*/trial.json"))]
    return {"wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            **{s: stages[s]["seconds"] for s in STAGES if s in stages},
            "trials": len(trials),
            "trial": sum(t.get("seconds") or 0.0 for t in trials),
            "fit": sum(t.get("train_seconds") or 0.0 for t in trials),
            "fit cpu": sum(t.get("train_cpu_seconds") or 0.0 for t in trials)}


def snapshot(scratch: Path) -> Path:
    """A copy of this checkout's `hubensemble` package as it is on disk now (uncommitted
    edits included, byte-compiled caches left out) under ``scratch/current``: the tree the
    current runs import from."""
    tree = scratch / "current"
    shutil.copytree(ROOT / "hubensemble", tree / "hubensemble",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def _drop_time(value):
    if isinstance(value, dict):
        return {k: _drop_time(v) for k, v in value.items() if k not in TIME_FIELDS}
    if isinstance(value, list):
        return [_drop_time(v) for v in value]
    return value


def _h5(path) -> dict:
    import h5py

    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def _checkpoint(export: Path) -> dict:
    from hubensemble._tf import tensorflow as tf

    reader = tf.train.load_checkpoint(str(export / "variables" / "variables"))
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map() if "OPTIMIZER" not in name}


def numbers(out: Path) -> dict:
    """Every number a run wrote that must repeat to the bit: {label: array or JSON value}."""
    import numpy as np

    got = {}
    for folder in sorted((out / "candidates").iterdir()):
        for npy in sorted(folder.glob("*.npy")):
            got[f"{folder.name}/{npy.name}"] = np.load(npy)
        weights = folder / "weights.weights.h5"
        if weights.exists():
            for name, array in _h5(weights).items():
                got[f"{folder.name}/weights/{name}"] = np.asarray(array)
    if (out / "export" / "variables").is_dir():
        for name, array in _checkpoint(out / "export").items():
            got[f"export/variables/{name}"] = np.asarray(array)
    for name in JSON_FILES:
        if (out / name).exists():
            got[name] = _drop_time(json.loads((out / name).read_text()))
    return got


def differences(a: dict, b: dict) -> list[str]:
    """What differs between two `numbers` (empty: the same to the bit)."""
    import numpy as np

    out = [f"{k}: only in one run" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.shape != y.shape:
                out.append(f"{k}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
            elif not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                diff = np.abs(x.astype(np.float64) - y.astype(np.float64)).max()
                out.append(f"{k}: max |difference| {diff:.3g}")
        elif json.dumps(x, sort_keys=True) != json.dumps(y, sort_keys=True):
            out.append(f"{k}: the JSON differs")
    return out


def _row(label, runs, base=None):
    keys = ("wall", "cpu", *STAGES, "trial", "fit", "fit cpu")
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
    cells = " ".join(f"{med[k]:8.1f}" for k in keys)
    print(f"{label:<10}{cells}")
    if base:
        print(f"{'ratio':<10}" + " ".join(f"{med[k] / base[k]:8.2f}" if base[k] else f"{'-':>8}"
                                          for k in keys))
    return med


def main():
    p = argparse.ArgumentParser(description=description(__doc__))
    p.add_argument("--baseline", metavar="REV",
                   help="a git revision of this repository to measure against in the same "
                        "run (e.g. HEAD~1, main)")
    p.add_argument("--repeats", type=integer(1), default=1,
                   help="runs of each checkout (default 1); medians are printed")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = p.parse_args()
    if args.baseline:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify",
                              f"{args.baseline}^{{commit}}"], capture_output=True, text=True)
        if rev.returncode != 0:
            p.error(f"argument --baseline: {args.baseline!r} is no revision of {ROOT}: "
                    "give a commit, branch or tag (git log --oneline)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    trees = {}
    try:
        trees["current"] = snapshot(scratch)
        if args.baseline:
            trees = {"baseline": scratch / "baseline", **trees}
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(trees["baseline"]), rev.stdout.strip()], check=True)
        runs = {label: [] for label in trees}
        outs = {label: [] for label in trees}
        for i in range(args.repeats):
            for label, tree in trees.items():
                out = scratch / f"{label}-{i}"
                runs[label].append(demo(tree, out))
                outs[label].append(out)
                print(f"{label} run {i + 1}: {runs[label][-1]['wall']:.1f} s wall, "
                      f"{runs[label][-1]['cpu']:.1f} s CPU", flush=True)
        print(f"\nmedian seconds of {_counted(args.repeats, 'run')} each "
              f"({runs['current'][0]['trials']} trials; trial = their seconds summed, fit = "
              "their model.fit's, fit cpu = its CPU seconds)")
        heads = ("wall", "cpu", *STAGES, "trial", "fit", "fit cpu")
        print(f"{'':<10}" + " ".join(f"{k:>8}" for k in heads))
        base = _row("baseline", runs["baseline"]) if args.baseline else None
        _row("current", runs["current"], base)
        reference = numbers(outs["current"][0])
        failed = False
        for label, folders in outs.items():
            for i, out in enumerate(folders):
                if label == "current" and i == 0:
                    continue
                found = differences(reference, numbers(out))
                failed |= bool(found)
                print(f"\n{label} run {i + 1} vs current run 1: "
                      + ("the same to the bit" if not found
                         else _counted(len(found), "difference")))
                for line in found[:20]:
                    print(f"  {line}")
        if failed:
            sys.exit(1)
    finally:
        if "baseline" in trees and trees["baseline"].exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(trees["baseline"])], capture_output=True)
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():
        main()
