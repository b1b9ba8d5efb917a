"""Zoo targets: build times of the presets and leave-one-out 1-NN of every demo module on digits.

    python tools/benchmarks/bench_zoo.py [--out DIR] [--skip-build] [--presets quick demo]

Targets (issue 3): `demo` builds in <= 5 min and `quick` in <= 45 s on a 2-core machine; on
sklearn:digits (800 training images, 8x8 resized to 32x32 RGB) the best demo module's LOO 1-NN
beats 1-NN on raw pixels, and best - worst >= 5 points. Each build also prints two same-run
ratios (`build_ratios`), which compare across commits on a loaded machine where its seconds
do not: the build's time over its modules' own time per worker, and training's share of the
modules' time. Before the builds (not with --skip-build), the glyph generator's rate (target
5,000 images/s on one idle core), with its time over numpy's to draw as much uniform noise
in the same run (it draws every module's training data). Prints, never asserts. Without
--skip-build, an --out that already holds a preset's folder is refused: build_zoo would reuse
a zoo there at once, and its ~0 s would be printed as the build time.
"""

import argparse
import os
import pathlib
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from benchargs import command_logging, description, folder_target  # noqa: E402

DEMO_MINUTES, QUICK_SECONDS = 5.0, 45.0


def _cpu_seconds():
    """CPU seconds (user + sys) of this process and of its ended children (the build's
    worker processes, counted once the pool has ended them)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def build_ratios(folder):
    """Same-run ratios of a finished zoo's build, from its zoo.json (so the machine's speed
    and load cancel out): `spread` = the build's seconds / (the modules' own seconds summed /
    its workers), 1.0 when the workers were busy with modules from start to end (more: the
    builder's own work, data drawn, idle workers waiting for a parent's weights); `training`
    = the modules' train_seconds / their seconds (the rest: a worker's TensorFlow start-up,
    loading the data, saving and checking the SavedModel). Returns (spread, training)."""
    from hubensemble.fileio import read_json
    from hubensemble.zoo.builder import MARKER

    record = read_json(os.path.join(folder, MARKER))
    modules = record["modules"]
    own = sum(m["seconds"] for m in modules)
    return (record["seconds"] / (own / max(1, record["workers"])),
            sum(m["train_seconds"] for m in modules) / own)


def generator_rate(n=4096):
    """The glyph generator's images per second over `n` images (after one small draw: its
    prototypes are rendered once per process), and its seconds over the seconds numpy takes
    to draw the same number of uniform float32 values in the same run (a same-run baseline:
    the ratio compares across machines and loads where the rate does not). Was a timed
    assertion in tests/test_zoo.py (> 1,000 images/s); timings belong here."""
    from hubensemble.zoo import glyphs

    glyphs.generate(100, seed=0)
    t0 = time.perf_counter()
    images, _ = glyphs.generate(n, seed=1)
    seconds = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    rng.random(images.shape, dtype=np.float32)
    baseline = time.perf_counter() - t0
    return n / seconds, seconds / baseline


def time_build(preset, out):
    from hubensemble import zoo

    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu_seconds()
    folder = zoo.build_zoo(preset, out / preset, progress=True)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return folder, wall, cpu, load


def digits_train():
    """The 800 training images of sklearn:digits as float RGB 32x32, and their labels."""
    try:
        from hubensemble.data import load_task

        task = load_task("sklearn:digits", seed=0)
        images, labels = task.train.images, task.train.labels
    except ImportError:  # data.py not there: the same split straight from scikit-learn
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = np.floor(d.images * 255.0 / 16.0 + 0.5).astype(np.uint8)
        idx, _ = train_test_split(np.arange(len(d.target)), train_size=800,
                                  stratify=d.target, random_state=0)
        images, labels = np.repeat(x[idx][..., None], 3, -1), d.target[idx]
    from hubensemble import augment

    # The one resize policy of hubensemble (antialiased bilinear; an enlargement here).
    x = augment.resize(np.asarray(images, np.float32) / 255.0, (32, 32)).numpy()
    return x, np.asarray(labels, np.int64)


def loo_1nn(features, labels):
    try:
        from hubensemble.proxies import loo_knn_accuracy

        return float(loo_knn_accuracy(features, labels, k=1))
    except ImportError:
        from sklearn.model_selection import LeaveOneOut, cross_val_score
        from sklearn.neighbors import KNeighborsClassifier

        return float(cross_val_score(KNeighborsClassifier(1), features, labels,
                                     cv=LeaveOneOut()).mean())


def digits_table(folder):
    import tensorflow as tf

    from hubensemble.catalogue import load_catalogue
    from hubensemble.hub import hub_layer_from_spec

    x, y = digits_train()
    raw = loo_1nn(x.reshape(len(x), -1), y)
    rows = []
    for spec in load_catalogue(pathlib.Path(folder) / "catalogue.yaml"):
        layer = hub_layer_from_spec(spec)
        emb = np.concatenate([layer(tf.constant(x[i:i + 200])).numpy()
                              for i in range(0, len(x), 200)])
        rows.append((spec, loo_1nn(emb, y)))
    return raw, rows


def main(argv=None):
    from hubensemble.zoo import is_zoo
    from hubensemble.zoo.config import PRESETS

    ap = argparse.ArgumentParser(description=description(__doc__))
    ap.add_argument("--out", type=folder_target, metavar="DIR",
                    help="where to build the zoos (default: a temp folder)")
    ap.add_argument("--presets", nargs="+", default=["quick", "demo"], choices=list(PRESETS))
    ap.add_argument("--skip-build", action="store_true",
                    help="reuse the demo zoo already in --out/demo (only the digits table)")
    args = ap.parse_args(argv)
    if args.skip_build:  # only the demo zoo's digits table is left to do: it must be there
        if "demo" not in args.presets:
            ap.error("--skip-build only prints the digits table of the demo zoo; add demo to "
                     "--presets")
        if not args.out or not is_zoo(pathlib.Path(args.out) / "demo"):
            ap.error(f"--skip-build needs a demo zoo built by this script in --out "
                     f"({'none given' if not args.out else args.out + '/demo is not one'}); "
                     "run without --skip-build first")
    elif args.out:  # the builds are timed: a zoo already there would be reused in ~0 s
        for preset in dict.fromkeys(args.presets):
            folder = pathlib.Path(args.out) / preset
            if is_zoo(folder) or (folder.is_dir() and any(folder.iterdir())):
                what = ("holds a zoo, which the build would reuse at once (a build time of "
                        "~0 s)" if is_zoo(folder) else "is a folder that is not a zoo, which "
                        "the build refuses to replace")
                skip = (", or --skip-build for the digits table"
                        if is_zoo(folder) and preset == "demo" else "")
                ap.error(f"argument --out: {folder} {what}; give a new --out to time the "
                         f"builds{skip}")
    out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="bench-zoo-"))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; zoos in {out}")
    if not args.skip_build:  # a timing, as the builds' (--skip-build asks for the table only)
        rate, ratio = generator_rate()
        print(f"glyph generator: {rate:,.0f} images/s (target 5,000 on one idle core); its time "
              f"over numpy's to draw as much uniform noise: {ratio:.1f}", flush=True)

    folders = {}
    for preset in dict.fromkeys(args.presets):  # a preset given twice is built once
        if args.skip_build:
            folders[preset] = out / preset
            continue
        folder, wall, cpu, load = time_build(preset, out)
        folders[preset] = folder
        target = DEMO_MINUTES * 60 if preset == "demo" else QUICK_SECONDS
        verdict = "OK" if wall <= target else "OVER"
        spread, training = build_ratios(folder)
        print(f"build {preset:5s}: {wall:6.1f} s wall, {cpu:6.1f} s CPU (this process and its "
              f"workers), load average at start {load:.2f}; target <= {target:.0f} s: "
              f"{verdict}; build / (module seconds / workers) {spread:.2f}, training's share "
              f"of module seconds {training:.2f}", flush=True)

    if "demo" not in folders:
        print("\n(no digits table: it covers the demo zoo's modules; add demo to --presets)")
    else:
        raw, rows = digits_table(folders["demo"])
        print("\nsklearn:digits, 800 training images at 32x32: leave-one-out 1-NN accuracy")
        print(f"{'module':28s} {'family':10s} {'subtree':14s} {'dim':>5s} {'1-NN':>7s}")
        for spec, acc in sorted(rows, key=lambda r: -r[1]):
            print(f"{spec.name:28s} {spec.family:10s} {spec.subtree or '-':14s} "
                  f"{spec.output_dim:5d} {100 * acc:6.2f}%")
        print(f"{'raw pixels':28s} {'-':10s} {'-':14s} {32 * 32 * 3:5d} {100 * raw:6.2f}%")
        accs = [a for _, a in rows]
        best, worst = max(accs), min(accs)
        print(f"\nbest {100 * best:.2f}% vs raw {100 * raw:.2f}%: "
              f"{'beats raw' if best > raw else 'does NOT beat raw'}; "
              f"best - worst = {100 * (best - worst):.2f} points "
              f"({'>= 5: diverse' if best - worst >= 0.05 else '< 5: NOT diverse enough'})")
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
