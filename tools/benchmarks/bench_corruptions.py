"""The CPU of evaluate's blur and JPEG corruptions on a split of small images, each as a
ratio to their code before they went a chunk of the batch at a time (its ops one image at a
time, kept here as the baseline), measured in the same run.

    python tools/benchmarks/bench_corruptions.py [--images 797] [--size 8] [--batch-size 64]
        [--corruptions gaussian_blur,jpeg] [--repeats 3]

The images are random float32 [--images, --size, --size, 3] in [0, 1] (the defaults: the
797 test images of sklearn:digits at 8 px, which `hubensemble evaluate` corrupts in batches
of 64); each corruption is run at severities 1, 2 and 3 over the split batch by batch as
evaluate runs it (`corruptions._corrupt`), and the baseline likewise. Printed per
corruption: the median CPU seconds of both (time.process_time), their ratio, the calls into
TensorFlow of one batch (cProfile: its op and function entry points) and whether both gave
the same pixels (they must, bit for bit). A first pass, not timed, pays TensorFlow's lazy
imports and traces.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np
from benchargs import command_logging, description, integer, names

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SEVERITIES = (1, 2, 3)
#: TensorFlow's entry points from Python (an eager op's fast path; an op or tf.function call).
ENTRIES = ("TFE_Py_FastPathExecute", "TFE_Py_Execute")


def batched(name, x, batch_size):
    """`name` on `x` batch by batch (evaluate's way) at every severity: a list of arrays."""
    from hubensemble.corruptions import _corrupt

    return [_corrupt(name, x[a:a + batch_size], np.arange(a, min(a + batch_size, len(x))),
                     s, 0) for s in SEVERITIES for a in range(0, len(x), batch_size)]


def _blur_per_image(x, sigma_224):
    """corruptions.gaussian_blur as it was: its ops on one image at a time."""
    import tensorflow as tf

    from hubensemble.corruptions import aligned_empty, blur_sigma, gaussian_kernel

    n, h, w, c = x.shape
    k = gaussian_kernel(blur_sigma(sigma_224, h, w))
    r = len(k) // 2
    kh = tf.constant(np.tile(k[:, None, None, None], (1, 1, c, 1)))
    kw = tf.constant(np.tile(k[None, :, None, None], (1, 1, c, 1)))
    rows, cols = np.clip(np.arange(-r, h + r), 0, h - 1), np.clip(np.arange(-r, w + r), 0, w - 1)
    out = aligned_empty(x.shape)
    for i in range(n):
        t = tf.constant(x[i:i + 1])
        t = tf.gather(tf.gather(t, rows, axis=1), cols, axis=2)
        t = tf.nn.depthwise_conv2d(t, kh, strides=[1, 1, 1, 1], padding="VALID")
        t = tf.nn.depthwise_conv2d(t, kw, strides=[1, 1, 1, 1], padding="VALID")
        out[i] = t.numpy()[0]
    return np.clip(out, 0.0, 1.0, out=out)


def _jpeg_per_image(x, quality):
    """corruptions.jpeg as it was: two eager ops an image."""
    import tensorflow as tf

    from hubensemble.corruptions import aligned_empty

    out = aligned_empty(x.shape)
    for o, xi in zip(out, x):
        u8 = np.round(np.clip(xi, 0.0, 1.0) * 255.0).astype(np.uint8)
        o[...] = tf.io.decode_jpeg(tf.io.encode_jpeg(u8, quality=int(quality)),
                                   channels=3).numpy()
    out /= np.float32(255.0)
    return np.clip(out, 0.0, 1.0, out=out)


BASELINES = {"gaussian_blur": _blur_per_image, "jpeg": _jpeg_per_image}


def one_by_one(name, x, batch_size):
    """The same with the code before (BASELINES): the baseline."""
    from hubensemble.corruptions import PARAMETERS

    return [BASELINES[name](x[a:a + batch_size], PARAMETERS[name][s - 1])
            for s in SEVERITIES for a in range(0, len(x), batch_size)]


def cpu_of(fn, *args):
    """(CPU seconds, result) of fn(*args)."""
    t = time.process_time()
    out = fn(*args)
    return time.process_time() - t, out


def tensorflow_calls(fn, *args) -> int:
    """How many times fn(*args) entered TensorFlow's runtime (ENTRIES), by cProfile."""
    profile = cProfile.Profile()
    profile.runcall(fn, *args)
    return sum(stat[1] for (_, _, fname), stat in pstats.Stats(profile).stats.items()
               if any(entry in fname for entry in ENTRIES))


def main():
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--images", type=integer(1), default=797)
    parser.add_argument("--size", type=integer(1), default=8, help="image side in pixels")
    parser.add_argument("--batch-size", type=integer(1), default=64)
    parser.add_argument("--corruptions", type=names(BASELINES, "corruption names"),
                        default=list(BASELINES))
    parser.add_argument("--repeats", type=integer(1), default=3)
    args = parser.parse_args()

    import tensorflow as tf

    x = np.random.default_rng(0).random((args.images, args.size, args.size, 3),
                                        dtype=np.float32)
    print(f"TensorFlow {tf.__version__}, load {os.getloadavg()[0]:.1f}; {args.images} images "
          f"of {args.size} px in batches of {args.batch_size}, severities 1-3")
    print(f"  {'corruption':<16} {'batched':>8} {'before':>11} {'ratio':>6} "
          f"{'TF calls/batch':>15}  same pixels")
    totals = [0.0, 0.0]
    for name in args.corruptions:
        batched(name, x[:2], args.batch_size)  # lazy imports, traces: not timed
        one_by_one(name, x[:2], args.batch_size)
        runs = {"batched": [], "one": []}
        for r in range(args.repeats):
            order = (("batched", batched), ("one", one_by_one))
            for key, fn in (order if r % 2 == 0 else order[::-1]):
                seconds, out = cpu_of(fn, name, x, args.batch_size)
                runs[key].append(seconds)
                if key == "batched":
                    mine = out
                else:
                    base = out
        same = all(np.array_equal(a, b) for a, b in zip(mine, base))
        calls = tensorflow_calls(batched, name, x[:args.batch_size], args.batch_size) // len(
            SEVERITIES)
        b, o = statistics.median(runs["batched"]), statistics.median(runs["one"])
        totals[0] += b
        totals[1] += o
        print(f"  {name:<16} {b:7.3f}s {o:10.3f}s {b / o:6.2f} {calls:15d}  "
              f"{'yes' if same else 'NO'}", flush=True)
    print(f"  {'all':<16} {totals[0]:7.3f}s {totals[1]:10.3f}s {totals[0] / totals[1]:6.2f}")
    return 0


if __name__ == "__main__":
    with command_logging():
        sys.exit(main())
