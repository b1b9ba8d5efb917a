"""What the decoded-image cache saves a command that loads a folder a run has loaded before:
the second load's time as a ratio against the first's, measured in the same run.

    python tools/benchmarks/bench_decode_cache.py [--files 1000] [--repeats 2]

Writes a GTSRB folder (/work/shared/data/gtsrb10.npz's train and val images, 32 px, in 10
class folders, as JPEG and every fifth one as PNG; --files of them) in a temporary folder with
a cache folder of its own ($HUBENSEMBLE_DECODE_CACHE), then, each in a fresh process as each
command is: `load_task("folder:…")` with the cache empty (the first load: every file decoded,
TensorFlow imported for the graph decoder) and again with the cache written (the second:
every file's bytes hashed, nothing decoded). --repeats times each, alternating (the cache
emptied before each first load). Prints the medians of wall and CPU seconds of each, the
ratio second / first, whether TensorFlow was imported, and what hashing the files alone
costs (sha256 of every file, in the second load's process) against that load. Asserts
that both loads give the same fingerprint (bit-for-bit the same arrays).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchargs import command_logging, description, integer

DATA = "/work/shared/data/gtsrb10.npz"


def _write_folder(root: str, files: int) -> None:
    """`files` images of gtsrb10's train and val splits, one folder per class."""
    import numpy as np
    from PIL import Image

    with np.load(DATA) as z:
        x = np.concatenate([z["x_train"], z["x_val"]])[:files]
        y = np.concatenate([z["y_train"], z["y_val"]])[:files]
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(root, f"class{int(label):02d}")
        os.makedirs(folder, exist_ok=True)
        suffix = "png" if i % 5 == 0 else "jpg"
        Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.{suffix}"))


def _child(folder: str) -> dict:
    """One load in this fresh process: seconds (wall, CPU), the fingerprint, TensorFlow's
    import, and the seconds sha256 of every file's bytes takes alone."""
    import hashlib

    wall, cpu = time.perf_counter(), time.process_time()
    from hubensemble.data import load_task

    task = load_task(f"folder:{folder}", progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    hashing = time.perf_counter()
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                hashlib.sha256(f.read()).hexdigest()
    hashing = time.perf_counter() - hashing
    return {"wall": wall, "cpu": cpu, "fingerprint": task.fingerprint, "hash": hashing,
            "tensorflow": "tensorflow" in sys.modules}


def _run(folder: str, cache: str) -> dict:
    env = dict(os.environ, HUBENSEMBLE_DECODE_CACHE=cache, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, __file__, "--child", folder], capture_output=True,
                         text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--files", type=integer(10), default=1000,
                        help="image files in the folder (default 1000, at most 1000)")
    parser.add_argument("--repeats", type=integer(1), default=2,
                        help="first and second loads each (default 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-decode-cache-") as tmp:
        folder, cache = os.path.join(tmp, "gtsrb"), os.path.join(tmp, "cache")
        _write_folder(folder, min(args.files, 1000))
        runs = {"first": [], "second": []}
        for i in range(args.repeats):
            shutil.rmtree(cache, ignore_errors=True)
            for which in runs:
                runs[which].append(_run(folder, cache))
                print(f"  run {i + 1} of {args.repeats}, {which} load: done", flush=True)
        prints = {r["fingerprint"] for rs in runs.values() for r in rs}
        assert len(prints) == 1, f"the loads' fingerprints differ: {prints}"
        print(f"{'figure':>12} {'first':>8} {'second':>8} {'ratio':>7}")
        for figure in ("wall", "cpu"):
            a, b = (statistics.median(r[figure] for r in runs[w]) for w in runs)
            print(f"{figure + ' s':>12} {a:8.2f} {b:8.2f} {b / a:7.3f}")
        second = statistics.median(r["wall"] for r in runs["second"])
        hashing = statistics.median(r["hash"] for r in runs["second"])
        print(f"{'tensorflow':>12} {str(runs['first'][0]['tensorflow']):>8} "
              f"{str(runs['second'][0]['tensorflow']):>8}")
        print(f"sha256 of every file alone: {hashing:.3f} s, {hashing / second:.3f} of the "
              f"second load's wall time")


if __name__ == "__main__":
    with command_logging():
        main()
