"""Every stage of a `fit` at the top of the promised data range (a few thousand images),
against the same at a smaller size: wall and CPU seconds, peak memory and disk per stage,
and how each grows with the number of images.

    python tools/benchmarks/bench_top.py [--sizes 1000,4000] [--side 224] [--classes 10]
        [--profile quick] [--budget 2] [--keep DIR]

1. For each N in --sizes, writes an npz of N training, N/4 validation and N/2 test images
   of --side px (uint8 RGB; 4,000 / 1,000 / 2,000 at 224 px is 1.05 GB of pixels), --classes
   classes, each class a colour tint plus noise (a kNN and a few steps of training learn
   something, so no stage runs on a degenerate all-chance case); and a catalogue of two
   tiny modules (one 3x3 convolution, 8 channels, global pooling) with input size --side,
   so the cost measured is hubensemble's, not a backbone's.
2. Runs the stages of `fit` one by one as the commands a user would (`rank`, `tune`,
   `cost`, `ensemble`, `export`, `evaluate --corruptions` of the test split, `report`), each
   in a fresh process under /usr/bin/time -v: wall seconds, CPU seconds (user + system: the
   cost on a shared machine, where the wall time follows the other load), peak RSS
   (maximum resident set size), the run folder's growth on disk, and the longest time the
   stage's terminal output stayed silent (progress bars count as output).
3. Prints, for each stage, the ratio of the largest size's figures to the smallest's beside
   the ratio of the image counts (4.0 from 1,000 to 4,000): a ratio well above the counts'
   is a stage that grows faster than linearly.

Measured 2026-12-05 (defaults; one run on the 2-core machine shared with 7 other jobs, so
wall seconds follow the load; CPU seconds and peak RSS are the figures to compare), ratios
4,000 / 1,000: rank CPU 2.3x, RSS 1.6x (2,130 MB); tune CPU 1.7x, RSS 2.1x (3,192 MB: the
evaluation streams' cache of the whole test split in float32, gone since 5c084bf: 2,011 MB);
cost, ensemble and report flat (0.8-1.0x CPU; ensemble 107 MB, report 151 MB); export CPU
1.1x, RSS 1.5x (2,329 MB); evaluate CPU 3.6x (2,000 test images x 16 conditions: 103 s),
RSS 1.55x (2,114 MB: it loads the run's whole data set, and held it all; since
evaluate.scored_only it keeps the scored split's pixels alone once checked: 1,652 MB, the
load's peak). Longest silence 61 s (evaluate's
start: TensorFlow's import and the 1 GB npz, about 13 s of CPU; its progress line comes every
30 s when the output is not a terminal); nothing grew faster than the image counts.

Nothing is asserted; the figures are printed. --keep must be a new or empty folder.
"""

import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from benchargs import command_logging, description, integer, integers, keep_argument, names
from benchfiles import folder_mb, tiny_catalogue

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STAGES = ("rank", "tune", "cost", "ensemble", "export", "evaluate", "report")


def line(text=""):
    print(text, flush=True)


def write_npz(path, n, side, classes, seed=0):
    """npz of n train, n // 4 val, n // 2 test images (tinted noise, class = tint)."""
    rng = np.random.default_rng(seed)
    tints = rng.integers(40, 216, (classes, 3))
    arrays = {}
    for split, count in (("train", n), ("val", n // 4), ("test", n // 2)):
        y = np.arange(count) % classes
        x = np.empty((count, side, side, 3), np.uint8)
        for i in range(0, count, 256):  # in chunks: no int16 copy of the whole split
            j = min(count, i + 256)
            noise = rng.integers(-40, 41, (j - i, side, side, 3), dtype=np.int16)
            x[i:j] = np.clip(tints[y[i:j]][:, None, None, :] + noise, 0, 255)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    np.savez(path, **arrays)
    return path


def timed(argv, log):
    """Runs argv under /usr/bin/time -v; (wall s, cpu s, peak RSS MB, longest silence s)."""
    cmd = ["/usr/bin/time", "-v", "-o", log + ".time", *argv]
    start = last = time.monotonic()
    silent = 0.0
    tail = []
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        fd = proc.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 1.0)
            now = time.monotonic()
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out.write(chunk)
                tail = (tail + [chunk])[-64:]
                silent, last = max(silent, now - last), now
        proc.wait()
    wall = time.monotonic() - start
    if proc.returncode:
        text = b"".join(tail).decode(errors="replace")
        raise RuntimeError(f"{' '.join(argv[:4])} failed (exit {proc.returncode}); "
                           f"see {log}:\n{text[-3000:]}")
    with open(log + ".time") as f:
        text = f.read()
    num = {k: float(re.search(rf"{k}[^:]*: ([0-9.]+)", text).group(1))
           for k in ("User time", "System time", "Maximum resident set size")}
    return {"wall": wall, "cpu": num["User time"] + num["System time"],
            "rss": num["Maximum resident set size"] / 1024, "silent": silent}


def stage_commands(run, data, catalogue, profile, budget):
    hub = [sys.executable, "-m", "hubensemble"]
    return {
        "rank": hub + ["rank", "--catalogue", catalogue, "--data", "npz:" + data, "--out", run,
                       "--profile", profile, "--top-k", "2"],
        "tune": hub + ["tune", "--run", run, "--profile", profile, "--sweep", "seeds",
                       "--budget", str(budget)],
        "cost": hub + ["cost", "--run", run],
        "ensemble": hub + ["ensemble", "--run", run],
        "export": hub + ["export", "--run", run],
        "evaluate": hub + ["evaluate", "--model", os.path.join(run, "export"), "--corruptions",
                           "--out", os.path.join(run, "robustness.json")],
        "report": hub + ["report", "--run", run],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--sizes", type=integers(40, what="training-image counts"),
                        default=[1000, 4000],
                        help="training images, comma-separated (val N/4, test N/2; "
                             "default: 1000,4000)")
    parser.add_argument("--side", type=integer(8), default=224, help="image side (default 224)")
    parser.add_argument("--classes", type=integer(2), default=10,
                        help="classes (default 10)")
    parser.add_argument("--profile", choices=["quick", "cpu"], default="quick",
                        help="the tune profile (default quick)")
    parser.add_argument("--budget", type=integer(1), default=2,
                        help="trials of the seeds sweep (default 2)")
    parser.add_argument("--stages", type=names(STAGES, "stages"), default=list(STAGES),
                        help="the stages to run, in order, comma-separated (default: all; each "
                             "needs the ones before it in the same run folder)")
    keep_argument(parser)
    args = parser.parse_args(argv)
    stages = args.stages
    root = args.keep or tempfile.mkdtemp(prefix="bench_top-")
    os.makedirs(root, exist_ok=True)
    env_cache = os.path.join(root, "cache")
    os.environ["HUBENSEMBLE_CACHE_DIR"] = env_cache  # a cold, private embedding cache
    try:
        line(f"bench_top: {os.cpu_count()} CPUs; sizes {args.sizes} at {args.side} px, "
             f"{args.classes} classes, profile {args.profile}, budget {args.budget}")
        catalogue = tiny_catalogue(os.path.join(root, "modules"), [args.side] * 2)
        got = {}
        for n in sorted(args.sizes):
            data = write_npz(os.path.join(root, f"data{n}.npz"), n, args.side, args.classes)
            run = os.path.join(root, f"run{n}")
            line(f"\n{n} train / {n // 4} val / {n // 2} test: npz {folder_mb(data):.0f} MB")
            cmds = stage_commands(run, data, catalogue, args.profile, args.budget)
            got[n] = {}
            for stage in stages:
                before = folder_mb(run) if os.path.isdir(run) else 0.0
                g = timed(cmds[stage], os.path.join(root, f"{stage}{n}.log"))
                g["disk"] = folder_mb(run) - before
                got[n][stage] = g
                line(f"  {stage:9s} wall {g['wall']:7.1f} s  cpu {g['cpu']:7.1f} s  "
                     f"peak RSS {g['rss']:6.0f} MB  disk +{g['disk']:7.1f} MB  "
                     f"longest silence {g['silent']:5.1f} s")
        if len(got) > 1:
            lo, hi = min(got), max(got)
            line(f"\nratios {hi} / {lo} (the image counts': {hi / lo:.1f}):")
            for stage in stages:
                a, b = got[lo][stage], got[hi][stage]
                line(f"  {stage:9s} " + "  ".join(
                    f"{k} {b[k] / a[k]:5.2f}x" if a[k] > 0.05 else f"{k}   n/a"
                    for k in ("wall", "cpu", "rss", "disk")))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
