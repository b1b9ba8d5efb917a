"""What the first serve_bytes call of an export spends (the largest stage of
bench_export_stages.py: the warmup's serve_bytes request), part by part: each part's first
call CPU in a process of its own, as a ratio to the whole signature's, measured in the same
run.

    python tools/benchmarks/bench_export_first_call.py [--members 3] [--repeats 3]

The members are bench_export_stages.py's tiny ones. Each part is the in-memory
EnsembleModule's code as serve_bytes calls it, a tf.function traced before it is timed (the
trace is not counted: a reloaded export does not trace), called on the export's warmup
request (`export.warmup.warmup_requests`: a PNG and a JPEG of 32 px): "whole" (the decode,
the resizes and the members, serve_bytes' graph less its class names), "decode + resizes"
(`resized_from_bytes`), "decode" (decode_each mapping `inputs.decode_image` alone, its
images cut to 8 px), "decode, no tf.data" (`inputs.decode_image` of the first image alone),
"tf.data only" (decode_each mapping a function of no decode), "headers" (`check_headers`)
and "members" (the members on resized images). A first call optimises the function's graph
(grappler) and instantiates its kernels, and the decode policy's conds instantiate their
branches (one per format) when first taken: paid once per process, as by TF Serving when it
loads a version. Each part runs in a new process (--repeats of each, alternating), and the
median is printed with its ratio to "whole".
"""

import argparse
import os
import statistics
import subprocess
import sys

from benchargs import command_logging, description, integer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PARTS = ("whole", "decode + resizes", "decode", "decode, no tf.data", "tf.data only",
         "headers", "members")


def first_call(part: str, members: int) -> float:
    """The CPU seconds (time.process_time) of the first call of `part` (one of PARTS), in
    this process."""
    import tempfile
    import time

    import tensorflow as tf
    from bench_export_stages import build_members

    from hubensemble.export import inputs
    from hubensemble.export.saved import EnsembleModule
    from hubensemble.export.warmup import warmup_requests

    module = EnsembleModule(*build_members("tiny", members, tempfile.mkdtemp())[:2])
    data = tf.constant(dict(warmup_requests(32, 32))["serve_bytes"]["image_bytes"])
    sizes = module.distinct_sizes
    small = [tf.TensorSpec([8, 8, 3], tf.float32)]
    arg = data
    if part == "whole":
        fn = lambda d: module.member_probabilities(module.resized_from_bytes(d))  # noqa: E731
    elif part == "decode + resizes":
        fn = module.resized_from_bytes
    elif part == "decode":
        fn = lambda d: inputs.decode_each(  # noqa: E731
            d, lambda x: (inputs.decode_image(x)[:8, :8],), small)
    elif part == "decode, no tf.data":
        fn = lambda d: inputs.decode_image(d[0])  # noqa: E731
    elif part == "tf.data only":
        fn = lambda d: inputs.decode_each(  # noqa: E731
            d, lambda x: (tf.zeros([8, 8, 3]) + tf.cast(tf.strings.length(x), tf.float32),),
            small)
    elif part == "headers":
        fn = inputs.check_headers
    else:
        fn, arg = module.member_probabilities, tuple(tf.zeros([2, s, s, 3]) for s in sizes)
    concrete = tf.function(fn, autograph=False).get_concrete_function(arg)
    t = time.process_time()
    concrete(arg)
    return time.process_time() - t


def main():
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--members", type=integer(1, 6), default=3)
    parser.add_argument("--repeats", type=integer(1), default=3)
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child's
    args = parser.parse_args()
    if args.part:
        print(f"{first_call(args.part, args.members):.4f}")
        return 0
    times = {part: [] for part in PARTS}
    for r in range(args.repeats):
        for part in (PARTS if r % 2 == 0 else PARTS[::-1]):
            out = subprocess.run([sys.executable, __file__, "--part", part, "--members",
                                  str(args.members)], capture_output=True, text=True,
                                 check=True).stdout
            times[part].append(float(out.split()[-1]))
    whole = statistics.median(times["whole"])
    print(f"load {os.getloadavg()[0]:.1f}; {args.members} tiny members; first call CPU "
          f"seconds, median of {args.repeats} processes each, and ratio to the whole:")
    for part in PARTS:
        v = statistics.median(times[part])
        print(f"  {part:<20} {v:6.3f} s  {v / whole:5.2f}")
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
