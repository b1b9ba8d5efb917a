"""Peak memory of `hubensemble rank` per module and batch, against memory.embedding_need.

Run: python tools/benchmarks/bench_memory.py --catalogue OUT/real_modules.yaml
         [--modules NAME ...] [--batches 32 64] [--images 64]

Each run is `hubensemble rank --no-cache` of one catalogue entry (../shared/realmods builds
MobileNet V1, EfficientNet-Lite0 and VGG16 at 224x224) on --images random 32x32 train and
val images each, in a process of its own, its /proc/PID/status polled every 20 ms:
VmHWM (peak resident memory, what a cgroup limit and the OOM killer count) and VmPeak
(peak virtual size, what `ulimit -v` (RLIMIT_AS) counts). Prints, per run, the rule
(`memory.embedding_need`), the peaks in GiB, peak / rule, and VmPeak - VmHWM (the address
space TensorFlow reserves beyond what it touches: `memory.AS_RESERVED`'s measurement).
Linux only. Nothing is asserted.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from benchargs import integers

from hubensemble import memory
from hubensemble.catalogue import load_catalogues

GIB = 1 << 30


def status(pid: int) -> dict:
    """VmHWM and VmPeak of process `pid` in bytes ({} once it has gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("VmHWM", "VmPeak"):
                    out[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def peaks(argv, env) -> tuple[dict, int]:
    """({"VmHWM": bytes, "VmPeak": bytes}: the last seen before the process ended, both
    high-water marks), its exit code."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen = {}
    while proc.poll() is None:
        seen = status(proc.pid) or seen
        time.sleep(0.02)
    err = proc.stderr.read()
    if proc.returncode:
        print(err[-2000:], file=sys.stderr)
    return seen, proc.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--modules", nargs="*", default=None)
    parser.add_argument("--batches", type=integers(1), default=[32, 64])
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    specs = [s for s in load_catalogues([args.catalogue])
             if not args.modules or s.name in args.modules]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        rng = np.random.default_rng(0)
        n = args.images
        data = os.path.join(tmp, "d.npz")
        np.savez(data, x_train=rng.integers(0, 255, (n, 32, 32, 3), np.uint8),
                 y_train=np.arange(n) % 4, x_val=rng.integers(0, 255, (n, 32, 32, 3), np.uint8),
                 y_val=np.arange(n) % 4)
        env = dict(os.environ, HOME=os.path.join(tmp, "home"), TF_CPP_MIN_LOG_LEVEL="2")
        print(f"{'module':34} {'batch':>5} {'rule':>6} {'VmHWM':>6} {'ratio':>6} "
              f"{'VmPeak':>7} {'Peak-HWM':>8} (GiB)")
        for spec in specs:
            for batch in args.batches:
                out = os.path.join(tmp, f"run-{spec.name}-{batch}")
                one = os.path.join(tmp, f"{spec.name}.yaml")  # (rank ranks every entry)
                with open(one, "w", encoding="utf-8") as f:
                    f.write(f"modules:\n  - {{name: {spec.name}, handle: '{spec.handle}', "
                            f"input_size: {list(spec.input_size)}}}\n")
                argv = [sys.executable, "-m", "hubensemble", "rank", "--catalogue", one,
                        "--data", f"npz:{data}",
                        "--batch-size", str(batch), "--no-cache", "--out", out, "-q"]
                seen, code = peaks(argv, env)
                rule = memory.embedding_need(batch, [spec.input_size])[0]
                hwm, peak = seen.get("VmHWM", 0), seen.get("VmPeak", 0)
                print(f"{spec.name:34} {batch:5d} {rule / GIB:6.2f} {hwm / GIB:6.2f} "
                      f"{hwm / rule:6.2f} {peak / GIB:7.2f} {(peak - hwm) / GIB:8.2f}"
                      + (f"  exit {code}" if code else ""), flush=True)


if __name__ == "__main__":
    main()
