"""What `hubensemble predict` costs above the floor any prediction pays: the CPU seconds of
its load, its first batch and the rest per file, as ratios to tf.saved_model.load and the
serve_bytes signature called directly on the same bytes, measured in the same run.

    python tools/benchmarks/bench_predict.py [--images 200] [--repeats 3] [--loop 5]
        [--export DIR]

1. Writes --images image files in a temporary folder: PNG and JPEG by turns, of four sizes
   (32 x 24 to 320 x 240 px). Without --export, makes a small export as the tests do: two
   members (one-conv modules, tune.build_classifier heads, random weights; 10 classes) by
   hubensemble.export.save_export.
2. Runs, back to back, --repeats times each, a fresh Python process (TensorFlow imported
   first, not counted in the parts) of:
   * floor: tf.saved_model.load of the export, then serve_bytes called on the files' bytes
     (read from disk) in batches of hubensemble.prediction.PREDICT_BATCH;
   * predict: hubensemble.predict(EXPORT, FILES, progress=False), its parts cut where it
     calls formats.load_saved_model and serve_bytes (prediction._run_bytes): before the
     load (the files looked at), the load, the first batch, the rest;
   * cli: `python -m hubensemble predict --model EXPORT FILES -q` and, against it, a floor
     process whole (TensorFlow's import included): the user + sys CPU of the processes.
3. Then, in one process, --loop calls of hubensemble.predict on one batch of the files (a
   library caller's loop) against --loop serve_bytes calls on a model loaded once: CPU
   seconds per call after the first of each.

Prints each part as CPU seconds (median of the repeats; process time, every thread) and
wall seconds, and predict / floor. Nothing is asserted.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from benchargs import command_logging, description, existing_folder, integer
from hubensemble.prediction import PREDICT_BATCH

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
#: (width, height) of the files, by turns; PNG and JPEG alternate within each size.
SIZES = ((32, 24), (96, 72), (200, 150), (320, 240))

#: The child process's code: argv[1] mode, argv[2] export, argv[3] JSON list of files,
#: argv[4] --loop. Prints one JSON line of {part: [cpu, wall]}.
CHILD = r"""if True:
    import json, os, sys, time
    mode, export, files, loop = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
    import tensorflow as tf
    from hubensemble import prediction
    from hubensemble.prediction import PREDICT_BATCH

    def now():
        return time.process_time(), time.perf_counter()

    def since(a, b):
        return [b[0] - a[0], b[1] - a[1]]

    def floor_calls(serve, paths):
        for lo in range(0, len(paths), PREDICT_BATCH):
            blobs = []
            for p in paths[lo:lo + PREDICT_BATCH]:
                with open(p, "rb") as f:
                    blobs.append(f.read())
            serve(image_bytes=tf.constant(blobs, tf.string))["probabilities"].numpy()

    out = {}
    if mode == "floor":
        t0 = now()
        serve = tf.saved_model.load(export).signatures["serve_bytes"]
        t1 = now()
        floor_calls(serve, files[:PREDICT_BATCH])
        t2 = now()
        floor_calls(serve, files[PREDICT_BATCH:])
        t3 = now()
        out = dict(load=since(t0, t1), first=since(t1, t2), rest=since(t2, t3),
                   total=since(t0, t3))
    elif mode == "predict":
        marks = {}
        load, run = prediction.load_saved_model, prediction._run_bytes

        def timed_load(*a, **k):
            marks.setdefault("load_start", now())
            try:
                return load(*a, **k)
            finally:
                marks.setdefault("load_end", now())

        def timed_run(*a, **k):
            try:
                return run(*a, **k)
            finally:
                marks.setdefault("first_end", now())

        prediction.load_saved_model, prediction._run_bytes = timed_load, timed_run
        t0 = now()
        got = prediction.predict(export, files, progress=False)
        t3 = now()
        assert len(got) == len(files) and not got.skipped, got.tally()
        out = dict(before=since(t0, marks["load_start"]),
                   load=since(marks["load_start"], marks["load_end"]),
                   first=since(marks["load_end"], marks["first_end"]),
                   rest=since(marks["first_end"], t3), total=since(t0, t3))
    else:  # loop: a library caller's calls, after the first of each
        chunk = files[:PREDICT_BATCH]
        serve = tf.saved_model.load(export).signatures["serve_bytes"]
        floor_calls(serve, chunk)
        t0 = now()
        for _ in range(loop):
            floor_calls(serve, chunk)
        t1 = now()
        prediction.predict(export, chunk, progress=False)
        t2 = now()
        for _ in range(loop):
            prediction.predict(export, chunk, progress=False)
        t3 = now()
        out = dict(floor=[x / loop for x in since(t0, t1)],
                   predict=[x / loop for x in since(t2, t3)])
    print(json.dumps(out))
"""


def write_images(root, n) -> list:
    """`n` files under `root`, PNG and JPEG by turns over SIZES: smooth pictures with noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        w, h = SIZES[(i // 2) % len(SIZES)]
        y, x = np.mgrid[:h, :w]
        base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
        im = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        fmt = ("PNG", "JPEG")[i % 2]
        path = os.path.join(root, f"{i:04d}.{fmt.lower().replace('jpeg', 'jpg')}")
        Image.fromarray(im).save(path, fmt)
        paths.append(path)
    return paths


def make_export(root) -> str:
    """A two-member export of one-conv modules (random heads, CLASSES classes) at ROOT/export,
    as tests/test_export.py's probe export is made; its path."""
    from benchfiles import tiny_catalogue

    from hubensemble.catalogue import load_catalogue
    from hubensemble.export import ExportMember, save_export
    from hubensemble.tune import build_classifier
    from hubensemble.tune.model import set_head

    specs = load_catalogue(tiny_catalogue(os.path.join(root, "modules"), (32, 48)))
    rng = np.random.default_rng(7)
    members = []
    for i, spec in enumerate(specs):
        model = build_classifier(spec, CLASSES, name=f"classifier_{i}")
        set_head(model, rng.normal(size=(8, CLASSES)), rng.normal(size=CLASSES))
        members.append(ExportMember(model, spec.input_size[0], 1.0 + i,
                                    info={"trial": f"t{i}", "module": spec.name}))
    out = os.path.join(root, "export")
    images = rng.uniform(size=(4, 40, 30, 3)).astype(np.float32)
    save_export(members, [f"class {c}" for c in range(CLASSES)], out, check_images=images)
    return out


def child(mode, export, files, loop) -> tuple[dict, float]:
    """({part: [cpu, wall]}, the child's user + sys CPU seconds) of CHILD in `mode`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, export, json.dumps(files),
                           str(loop)], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"the {mode} process failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(proc.stdout.strip().splitlines()[-1]), cpu


def cli_cpu(export, files) -> float:
    """User + sys CPU seconds of `python -m hubensemble predict --model EXPORT FILES -q`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "hubensemble", "predict", "--model", export,
                           "-q", *files], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"hubensemble predict failed:\n{proc.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def export_folder(text):
    """An argparse type: a folder holding a hubensemble export (its metadata asset), else
    what it is not: a folder that is not one failed in the first child process."""
    from hubensemble.formats import metadata_path

    path = existing_folder(text)
    if not os.path.isfile(metadata_path(path)):
        raise argparse.ArgumentTypeError(f"{text} holds no hubensemble export (no "
                                         f"{metadata_path(path)}); give RUN/export")
    return path


def median(rows, part, i) -> float:
    return statistics.median(r[part][i] for r in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--images", type=integer(2), default=200,
                        help="image files to predict (default 200)")
    parser.add_argument("--repeats", type=integer(1), default=3,
                        help="processes of each kind, run back to back (default 3)")
    parser.add_argument("--loop", type=integer(1), default=5,
                        help="predict calls timed in one process after the first (default 5)")
    parser.add_argument("--export", type=export_folder, default=None,
                        help="an export folder to time (default: a small one made here)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        files = write_images(root, args.images)
        export = args.export or make_export(root)
        floor, pred, loops, cli, whole = [], [], [], [], []
        for r in range(args.repeats):
            print(f"repeat {r + 1} of {args.repeats}", file=sys.stderr, flush=True)
            out, cpu = child("floor", export, files, args.loop)
            floor.append(out)
            whole.append(cpu)
            pred.append(child("predict", export, files, args.loop)[0])
            cli.append(cli_cpu(export, files))
            loops.append(child("loop", export, files, args.loop)[0])
    n_rest = max(args.images - PREDICT_BATCH, 1)
    print(f"{args.images} files ({', '.join(f'{w}x{h}' for w, h in SIZES)} px, PNG and JPEG); "
          f"median of {args.repeats} process(es) each; CPU s (wall s)")
    print(f"{'part':<22}{'predict':>18}{'floor':>18}{'ratio':>8}")
    for part, label, per in (("before", "before the load", 1), ("load", "load", 1),
                             ("first", "first batch", 1), ("rest", "rest per file", n_rest),
                             ("total", "total", 1)):
        p = [median(pred, part, i) / per for i in (0, 1)]
        f = [median(floor, part, i) / per for i in (0, 1)] if part in floor[0] else [0, 0]
        ratio = f"{p[0] / f[0]:8.2f}" if f[0] > 0 else f"{'-':>8}"
        print(f"{label:<22}{p[0]:9.4f} ({p[1]:6.4f}){f[0]:9.4f} ({f[1]:6.4f}){ratio}")
    c, w = statistics.median(cli), statistics.median(whole)
    print(f"{'process (CLI / floor)':<22}{c:9.3f}{'':9}{w:9.3f}{'':9}{c / w:8.2f}")
    lp, lf = (median(loops, "predict", 0), median(loops, "floor", 0))
    label = f"loop call ({min(args.images, PREDICT_BATCH)} files)"
    print(f"{label:<22}{lp:9.4f}{'':9}{lf:9.4f}{'':9}{lp / lf:8.2f}")


if __name__ == "__main__":
    with command_logging():  # log records as a command's
        sys.exit(main())
