"""What evaluate's model time would save with plain bilinear in place of the antialiased resize
(`hubensemble.augment.resize`) on small images, as a ratio measured in the same run: a
figure change (up to ~1e-7 in the pixels when enlarging), so for the lead to decide, not
made here.

    python tools/benchmarks/bench_eval_resize.py [--images 797] [--size 8] [--batch-size 64]
        [--members 3] [--repeats 5]

The members are bench_export_stages.py's tiny ones (tests/conftest.py's one-conv modules, at
evaluation sizes 32, 24 and 40 px, in tune.build_classifier's head). Two SavedModels of them
are written as the export writes its (EnsembleModule.saveable_root, tf.saved_model.save):
one as hubensemble resizes (bilinear, antialias=True), one traced with `augment.resize`
swapped for the same call with antialias=False (this script's own, for the measure only).
Each is loaded and its serve_members signature (evaluate's call: every member and the
ensemble) run over random float32 [--images, --size, --size, 3] in [0, 1] (the defaults:
sklearn:digits' 797 test images at 8 px, evaluate's batches of 64), alternating between the
two, after a first untimed pass (each signature's first call optimises its graph). Printed:
the median CPU seconds (time.process_time) of a pass of each and their ratio, the same for
the resizes alone (both members' sizes, a tf.function each way), and the largest
difference of the probabilities (what the change would move) and of the resized pixels.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from benchargs import command_logging, description, integer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu() -> float:
    return time.process_time()


def plain_resize(images, size):
    """`augment.resize` with antialias=False: the change measured, nothing else."""
    import tensorflow as tf

    from hubensemble import augment

    if isinstance(size, int):
        size = (size, size)
    hw = size if tf.is_tensor(size) else [int(size[0]), int(size[1])]
    out = tf.image.resize(augment._as_float(images), hw, method="bilinear", antialias=False)
    return tf.clip_by_value(out, 0.0, 1.0)


def saved(members, names, path, plain: bool):
    """The loaded SavedModel of `members` (written at `path`), its functions traced with the
    antialiased resize or, `plain`, with `plain_resize`."""
    import tensorflow as tf

    from hubensemble import augment
    from hubensemble.export.saved import EnsembleModule
    from hubensemble.fileio import tf_path

    real = augment.resize
    if plain:
        augment.resize = plain_resize
    try:
        root, signatures = EnsembleModule(members, names).saveable_root()
        tf.saved_model.save(root, tf_path(path), signatures=signatures)
    finally:
        augment.resize = real
    return tf.saved_model.load(tf_path(path))


def one_pass(fn, x, batch_size):
    """(CPU seconds, outputs) of `fn` over `x` in batches of `batch_size`."""
    import tensorflow as tf

    t, outs = cpu(), []
    for a in range(0, len(x), batch_size):
        outs.append(fn(tf.constant(x[a:a + batch_size])))
    return cpu() - t, outs


def main():
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--images", type=integer(1), default=797)
    parser.add_argument("--size", type=integer(1), default=8, help="their side in pixels")
    parser.add_argument("--batch-size", type=integer(1), default=64)
    parser.add_argument("--members", type=integer(1, 6), default=3)
    parser.add_argument("--repeats", type=integer(1), default=5)
    args = parser.parse_args()

    import tensorflow as tf
    from bench_export_stages import build_members

    from hubensemble import augment

    folder = tempfile.mkdtemp(prefix="bench_eval_resize-")
    try:
        members, names, _, _ = build_members("tiny", args.members, folder)
        sizes = sorted({m.size for m in members})
        x = np.random.default_rng(0).random((args.images, args.size, args.size, 3),
                                            dtype=np.float32)
        print(f"TensorFlow {tf.__version__}, load {os.getloadavg()[0]:.1f}; {args.members} "
              f"members at {sizes} px; {args.images} images of {args.size} px in batches of "
              f"{args.batch_size}", flush=True)
        loaded = {way: saved(members, names, os.path.join(folder, way), way == "plain")
                  for way in ("antialiased", "plain")}
        calls = {f"serve_members {way}": (lambda b, s=m.signatures["serve_members"]:
                                          s(images=b)["member_probabilities"])
                 for way, m in loaded.items()}
        for way, fn in (("antialiased", augment.resize), ("plain", plain_resize)):
            calls[f"resize {way}"] = tf.function(
                lambda b, fn=fn: tuple(fn(b, s) for s in sizes), autograph=False)
        outputs = {name: one_pass(fn, x, args.batch_size)[1] for name, fn in calls.items()}
        times = {name: [] for name in calls}
        for r in range(args.repeats):
            for name in (list(calls) if r % 2 else list(calls)[::-1]):
                times[name].append(one_pass(calls[name], x, args.batch_size)[0])
        med = {name: statistics.median(v) for name, v in times.items()}
        for what in ("serve_members", "resize"):
            a, p = med[f"{what} antialiased"], med[f"{what} plain"]
            print(f"{what:<14} antialiased {a:.3f} s CPU, plain {p:.3f} s; plain / "
                  f"antialiased {p / a:.2f} (median of {args.repeats} passes)")
        share = (med["resize antialiased"] - med["resize plain"]) / med[
            "serve_members antialiased"]
        print(f"the resize's saving as a share of serve_members' pass: {share:.1%}")

        def most(name_a, name_b):
            a = np.concatenate([np.asarray(t).ravel() for out in outputs[name_a]
                                for t in (out if isinstance(out, tuple) else (out,))])
            b = np.concatenate([np.asarray(t).ravel() for out in outputs[name_b]
                                for t in (out if isinstance(out, tuple) else (out,))])
            return float(np.max(np.abs(a - b)))

        probabilities = most("serve_members antialiased", "serve_members plain")
        pixels = most("resize antialiased", "resize plain")
        print(f"max |difference|: probabilities {probabilities:.3g}, resized pixels "
              f"{pixels:.3g} (a figure change: not made)")
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
