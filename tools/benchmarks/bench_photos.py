"""Peak memory of `rank` and of a quick `fit` on a folder of phone photos, against the bytes
of the decoded pixels the task holds, for several photo counts.

    python tools/benchmarks/bench_photos.py [--sizes 40,80,160] [--stages rank,fit] [--keep DIR]

1. Writes, for the largest N in --sizes, N JPEGs of 4032 x 3024 (a phone's 12 MP) in two
   class folders, noisy enough to weigh what a photo does (about 4 MB each), and takes the
   first N of them for each smaller size; and two tiny modules (one conv layer) at 224 and
   384 px, the two resolutions rank embeds at.
2. For each N and stage, in a fresh process: TensorFlow and the stage's modules imported,
   then the folder loaded (`load_task`; every photo held shrunk to 1365 x 1024, 4.0 MiB) and
   `rank.run_rank` (both modules, the quick profile, no embedding cache) or `pipeline.fit`
   (quick profile, two seeds of the best module; the export and evaluation too). Prints the
   peak resident memory above the process's before the load (VmHWM), the pixel bytes of the
   task (every split as held) and the ratio of the two; then, between the smallest and the
   largest N, the peak's growth per photo against the 4.0 MiB a photo is held at (1.0x:
   nothing but the held pixels grows with the count), and the peak extrapolated to 2,000
   photos.

Expected for rank (docs/data.md, "Memory of a split"): growth per photo about 2x the held
pixels (2.05x from 40 to 160 in one run; 1.5x from 160 to 320 by /usr/bin/time): the
pixels, rank's converted streams (kept up to 512 MB for all resolutions together: 1.4 MB
a photo here) and the rest not yet attributed. Each stream's copy of the training split (0.6x a
stream, rank keeping one per resolution) is gone since `streams.split_stream`: 3.3x from 40
to 160 before. Nothing is asserted; the figures are printed. --keep must be a new or empty
folder.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from benchargs import command_logging, description, integers, keep_argument, names
from benchfiles import tiny_catalogue
from bench_rank import rss_mb  # the one reader of /proc/self/status (a sibling script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STAGES = ("rank", "fit")
#: The resolutions of the two tiny modules (rank embeds at a module's input size).
SIDES = (224, 384)


def line(text=""):
    print(text, flush=True)


def write_photos(root, count):
    """`count` noisy 4032 x 3024 JPEGs, image i in root/class{i % 2}/ (written once)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class{i % 2}")
        os.makedirs(folder, exist_ok=True)
        small = rng.integers(0, 256, (189, 252, 3), dtype=np.uint8)
        big = np.asarray(Image.fromarray(small).resize((4032, 3024), Image.BILINEAR))
        noise = rng.integers(-12, 13, big.shape, dtype=np.int16)
        pixels = np.clip(big.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"IMG_{i:04d}.jpg"), quality=90)


def subset(root, source, count):
    """root/class*/: hard links to the first `count` photos of `source` (same names)."""
    for i in range(count):
        name = os.path.join(f"class{i % 2}", f"IMG_{i:04d}.jpg")
        os.makedirs(os.path.join(root, f"class{i % 2}"), exist_ok=True)
        os.link(os.path.join(source, name), os.path.join(root, name))
    return root


def child(args):
    """One stage on one folder in this process; one JSON line."""
    import tensorflow as tf  # noqa: F401 (its import is not the stage's cost)

    from hubensemble import pipeline, rank
    from hubensemble.catalogue import load_catalogue
    from hubensemble.data import load_task

    before = rss_mb()
    task = load_task("folder:" + args.folder)
    pixels = sum(s.images.nbytes if isinstance(s.images, np.ndarray)
                 else sum(im.nbytes for im in s.images)
                 for s in (task.train, task.val, task.test) if s is not None)
    if args.child == "rank":
        rank.run_rank(args.out, load_catalogue(args.catalogue), task, profile="quick",
                      use_cache=False, progress=False)
    else:
        pipeline.fit(args.catalogue, task, args.out, profile="quick", sweep="seeds", budget=2,
                     use_cache=False, progress=False, export=os.path.join(args.out, "x"))
    after = rss_mb()
    print(json.dumps({"peak": after["VmHWM"] - before["VmRSS"], "pixels": pixels / 2**20,
                      "train": len(task.train)}))


def measure(stage, folder, catalogue, out):
    """The child's figures for `stage` on `folder`."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", stage,
                           "--folder", folder, "--catalogue", catalogue, "--out", out],
                          capture_output=True, text=True, timeout=7200)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--sizes", type=integers(4, what="photo counts"), default=[40, 80, 160],
                        help="numbers of photos, comma-separated, each once (default: 40,80,160)")
    parser.add_argument("--stages", type=names(STAGES, "stages"), default=list(STAGES),
                        help="what to measure: rank, fit or both (default: rank,fit)")
    keep_argument(parser)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    root = args.keep or tempfile.mkdtemp(prefix="bench_photos-")
    os.makedirs(root, exist_ok=True)
    try:
        sizes = sorted(args.sizes)
        line(f"bench_photos: {os.cpu_count()} CPUs; writing {sizes[-1]} photos of 4032 x 3024")
        source = os.path.join(root, f"photos{sizes[-1]}")
        write_photos(source, sizes[-1])
        catalogue = tiny_catalogue(os.path.join(root, "modules"), SIDES)
        for stage in args.stages:
            got = {}
            for n in sizes:
                folder = os.path.join(root, f"photos{n}")  # the source itself for the largest
                if not os.path.isdir(folder):
                    subset(folder, source, n)
                got[n] = measure(stage, folder, catalogue, os.path.join(root, f"{stage}{n}"))
                g = got[n]
                line(f"{stage}, {n} photos ({g['train']} training): peak +{g['peak']:.0f} MB "
                     f"above the process before the load; pixels held {g['pixels']:.0f} MB; "
                     f"ratio {g['peak'] / g['pixels']:.2f}x")
            if len(sizes) > 1:
                lo, hi = sizes[0], sizes[-1]
                slope = (got[hi]["peak"] - got[lo]["peak"]) / (hi - lo)
                per = (got[hi]["pixels"] - got[lo]["pixels"]) / (hi - lo)
                line(f"{stage}: the peak grows {slope:.1f} MB a photo from {lo} to {hi} "
                     f"({slope / per:.2f}x the {per:.1f} MB a photo is held at); 2,000 photos: "
                     f"about {(got[hi]['peak'] + slope * (2000 - hi)) / 1024:.1f} GB above "
                     f"the process")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
