"""Peak memory of `hubensemble rank` per module and batch, against memory.embedding_need.

Run: python tools/benchmarks/bench_memory.py --catalogue OUT/real_modules.yaml
         [--modules NAME ...] [--batches 32,64] [--images 64] [--ulimit-v KB]
         [--arena-max N]

Each run is `hubensemble rank --no-cache` of one catalogue entry (../shared/realmods builds
MobileNet V1, EfficientNet-Lite0 and VGG16 at 224x224) on --images random 32x32 train and
val images each, in a process of its own, its /proc/PID/status polled every 20 ms:
VmHWM (peak resident memory, what a cgroup limit and the OOM killer count) and VmPeak
(peak virtual size, what `ulimit -v` (RLIMIT_AS) counts). Prints, per run, the rule
(`memory.embedding_need`), the peaks in GiB, peak / rule, VmPeak - VmHWM (the address
space TensorFlow reserves beyond what it touches: `memoryroom.address_reserve`'s measurement)
and the address-space rule (the rule plus `address_reserve` of the run's environment: what
`ulimit -v` must leave room for, at least VmPeak).
`--ulimit-v KB` runs each under that address-space limit (RLIMIT_AS, as the shell's
`ulimit -v KB`), printing its exit code and last line of stderr when it fails (an abort under
it: exit 134, or 127 for "cannot allocate memory for thread-local data");
`--unread-limit` hides that limit from hubensemble's own check (`memoryroom.address_limit`),
to measure what aborts rather than what is refused before the work;
`--in-process` embeds the modules one after another in this process instead (rank's order,
as `hubensemble rank` does), each measured by `memoryroom.PeakMeter` (VmHWM reset before it),
printing what rank's row would record of it and `memory.measured_factor`: how the
measurement that later stages' rules take reads after an earlier, heavier module;
`--arena-max N` sets MALLOC_ARENA_MAX=N (glibc's malloc arenas, mallopt(3)), to measure how
much of VmPeak they reserve. Linux only. Nothing is asserted.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from benchargs import integers

from hubensemble import memory, memoryroom
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


def peaks(argv, env, address_kb=None) -> tuple[dict, int, str]:
    """({"VmHWM": bytes, "VmPeak": bytes}: the last seen before the process ended, both
    high-water marks), its exit code, its last line of stderr; under an address-space limit
    of `address_kb` KiB (RLIMIT_AS) when given."""
    def limit():
        import resource

        size = address_kb * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    with tempfile.TemporaryFile("w+") as err:  # (a pipe left unread would block it)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                text=True, preexec_fn=limit if address_kb else None)
        seen = {}
        while proc.poll() is None:
            seen = status(proc.pid) or seen
            time.sleep(0.02)
        err.seek(0)
        lines = [line.strip() for line in err if line.strip()]
    return seen, proc.returncode, lines[-1] if lines else ""


def in_process(specs, data, batches) -> None:
    """Each of `specs` embedded in turn at each of `batches` in this process, as rank embeds
    them, measured by memoryroom.PeakMeter: held and peak resident GiB, the factor."""
    import gc

    from hubensemble.data.specs import load_task
    from hubensemble.rank import embed

    task = load_task(f"npz:{data}")
    print(f"{'module':34} {'batch':>5} {'held':>6} {'peak':>6} {'VmPeak':>7} {'factor':>6} (GiB)")
    for spec in specs:
        for batch in batches:
            with memoryroom.PeakMeter() as meter:
                res = embed(spec, task, "train", profile="cpu", batch_size=batch,
                            use_cache=False)
            record = meter.record(batch, res.resolution)
            del res
            gc.collect()
            if record is None:
                print(f"{spec.name:34} {batch:5d} not measured (no /proc/self/clear_refs)")
                continue
            print(f"{spec.name:34} {batch:5d} {record['held_bytes'] / GIB:6.2f} "
                  f"{record['peak_bytes'] / GIB:6.2f} {(record['address_bytes'] or 0) / GIB:7.2f} "
                  f"{memory.measured_factor(record):6.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--modules", nargs="*", default=None)
    parser.add_argument("--batches", type=integers(1), default=[32, 64])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--ulimit-v", type=int, default=None, metavar="KB")
    parser.add_argument("--arena-max", type=int, default=None, metavar="N")
    parser.add_argument("--unread-limit", action="store_true")
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    specs = [s for s in load_catalogues([args.catalogue])
             if not args.modules or s.name in args.modules]
    if args.modules:  # in --modules' order (--in-process: which comes after which)
        specs.sort(key=lambda s: args.modules.index(s.name))
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        rng = np.random.default_rng(0)
        n = args.images
        data = os.path.join(tmp, "d.npz")
        np.savez(data, x_train=rng.integers(0, 255, (n, 32, 32, 3), np.uint8),
                 y_train=np.arange(n) % 4, x_val=rng.integers(0, 255, (n, 32, 32, 3), np.uint8),
                 y_val=np.arange(n) % 4)
        if args.in_process:
            return in_process(specs, data, args.batches)
        env = dict(os.environ, HOME=os.path.join(tmp, "home"), TF_CPP_MIN_LOG_LEVEL="2")
        if args.arena_max:
            env["MALLOC_ARENA_MAX"] = str(args.arena_max)
        print(f"{'module':34} {'batch':>5} {'rule':>6} {'VmHWM':>6} {'ratio':>6} "
              f"{'VmPeak':>7} {'Peak-HWM':>8} {'AS rule':>7} (GiB)")
        reserve = memoryroom.address_reserve(env)
        for spec in specs:
            for batch in args.batches:
                out = os.path.join(tmp, f"run-{spec.name}-{batch}")
                one = os.path.join(tmp, f"{spec.name}.yaml")  # (rank ranks every entry)
                with open(one, "w", encoding="utf-8") as f:
                    f.write(f"modules:\n  - {{name: {spec.name}, handle: '{spec.handle}', "
                            f"input_size: {list(spec.input_size)}}}\n")
                start = ["-m", "hubensemble"] if not args.unread_limit else [
                    "-c", "import sys; from hubensemble import memoryroom; "
                    "memoryroom.address_limit = lambda: None; sys.argv[0] = 'hubensemble'; "
                    "from hubensemble.__main__ import run; run()"]
                argv = [sys.executable, *start, "rank", "--catalogue", one,
                        "--data", f"npz:{data}",
                        "--batch-size", str(batch), "--no-cache", "--out", out, "-q"]
                seen, code, last = peaks(argv, env, args.ulimit_v)
                rule = memory.embedding_need(batch, [spec.input_size])[0]
                hwm, peak = seen.get("VmHWM", 0), seen.get("VmPeak", 0)
                print(f"{spec.name:34} {batch:5d} {rule / GIB:6.2f} {hwm / GIB:6.2f} "
                      f"{hwm / rule:6.2f} {peak / GIB:7.2f} {(peak - hwm) / GIB:8.2f} "
                      f"{(rule + reserve) / GIB:7.2f}"
                      + (f"  exit {code}: {last[:150]}" if code else ""), flush=True)


if __name__ == "__main__":
    main()
