"""`hubensemble demo` from an installed package: empty cache, then a cached zoo.

Creates a fresh virtual environment, installs this checkout into it (`pip install .`, not
editable), and runs `hubensemble demo` twice with an isolated cache folder:

1. with an empty cache (the zoo is built, every embedding computed) - target <= 10 minutes;
2. with the zoo cached but the embedding cache emptied and a new run folder - target
   <= 4 minutes.

Prints each wall-clock time as a fraction of its target, and the demo's own comparison of
the ensemble with the best single member on the test set (target: lower cross-entropy and
at least the same accuracy).

    python tools/benchmarks/bench_demo.py [--venv DIR] [--keep]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"empty cache": 600.0, "zoo cached": 240.0}


def run(cmd, **kwargs):
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout, time.monotonic() - start


def parse(stdout):
    rows = {}
    for name in ("best single", "ensemble"):
        m = re.search(rf"^{name}\b.*?\s([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", stdout, re.M)
        rows[name] = tuple(float(v) for v in m.groups()) if m else None
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", metavar="DIR",
                   help="reuse this virtual environment, or make one there (default: a new one "
                        "in the scratch folder)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = p.parse_args()
    # Checked here, not with benchargs (which imports hubensemble): this script measures the
    # installed package and needs none on its own path. A file there failed as `python -m
    # venv FILE` after the scratch folder was made.
    blocker = next((q for q in (Path(args.venv or ".").absolute(),
                                *Path(args.venv or ".").absolute().parents)
                    if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        p.error(f"argument --venv: {blocker} is a file, not a folder; give a virtual "
                "environment's folder, or a path where one can be made")
    scratch = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        venv = Path(args.venv) if args.venv else scratch / "venv"
        if not (venv / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(venv)])
        _, seconds = run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)])
        print(f"pip install . into {venv}: {seconds:.0f} s")
        env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "cache"))
        for var in ("HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_ZOO_DIR"):
            env.pop(var, None)
        results = {}
        for i, label in enumerate(TARGETS):
            if label == "zoo cached":
                shutil.rmtree(scratch / "cache" / "hubensemble" / "embeddings",
                              ignore_errors=True)
            stdout, seconds = run([str(venv / "bin" / "hubensemble"), "demo", "-q", "--out",
                                   str(scratch / f"run{i}")], env=env, cwd=scratch)
            results[label] = (seconds, parse(stdout))
            print(f"\n--- hubensemble demo, {label} ---\n{stdout.strip()}")
        print("\nsummary")
        for label, (seconds, _) in results.items():
            target = TARGETS[label]
            print(f"  demo, {label:12s} {seconds:6.0f} s = {seconds / target:.2f} x the "
                  f"{target / 60:.0f}-minute target ({'met' if seconds <= target else 'MISSED'})")
        _, rows = results["zoo cached"]
        single, ens = rows["best single"], rows["ensemble"]
        if single and ens:
            print(f"  test accuracy: ensemble {ens[0]:.4f} vs best single {single[0]:.4f} "
                  f"({'>=' if ens[0] >= single[0] else '<'})")
            lower = "lower" if ens[1] < single[1] else "NOT lower"
            print(f"  test NLL:      ensemble {ens[1]:.4f} vs best single {single[1]:.4f} "
                  f"(ratio {ens[1] / single[1]:.2f}; {lower})")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
