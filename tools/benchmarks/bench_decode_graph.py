"""What the serving decode graph costs an export and a server, its helpers as separate
tf.functions against the same helpers inlined (the baseline, measured in the same run).

    python tools/benchmarks/bench_decode_graph.py [--repeats 3]

Each measurement is a fresh process that builds a tf.Module of serve_bytes' decode path alone
(`export.saved.check_headers`, `decode_each` of `decode_image` resized to 32 px: no members,
so the figures are the decode graph's own) and times, in seconds of wall clock:

* trace: `get_concrete_function` of the module's function, in the context the save traces in
  (`export.saved._in_save_context`, as the export traces its `__call__`: traced in the
  default context, the save traced it and `decode_pixels` again, 0.08 s that no export
  pays); save: `tf.saved_model.save` of it - together what each export pays;
* traces: how many times the decode policy (`graph._decode`, the body of `decode_pixels`)
  was traced by the first module's trace and save (1: an export traces it once), traces2 by
  the second's (0: a process traces it once);
* cpu: trace and save together in seconds of this process's CPU time (the machine is
  shared: wall clock counts the waits for a core too) - the first export's cost;
* trace2 + save2: the same for a second module in the same process (a test suite, a notebook,
  a sweep of exports: the decode graph's tf.functions are traced once per process), cpu2 its
  CPU time;
* load: `tf.saved_model.load`; first: its first call on 4 small PNGs (TensorFlow optimises
  and instantiates the functions that call reaches); refused: the first request it refuses
  (a PNG and a JPEG cut short: serve_bytes' refusal path);
* saved_model.pb's size, in KB.

The baseline runs the very same ops with the decode policy's helpers inlined (each
tf.function of `hubensemble.data.graph` replaced by its Python function in the child, as
they were before 2026-12-06). Runs alternate between the two, --repeats times each; printed
are the medians and functions / inlined per figure (below 1: the functions are cheaper).
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchargs import command_logging, description, integer

FIGURES = ("trace", "save", "cpu", "traces", "trace2", "save2", "cpu2", "traces2", "load",
           "first", "refused", "pb_kb")


def _child(inline: bool) -> dict:
    """The figures of one fresh process (see the module docstring)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from hubensemble import augment
    from hubensemble.data import graph

    if inline:  # the baseline: every helper's Python function, traced at each call site
        for name, value in list(vars(graph).items()):
            python_function = getattr(value, "python_function", None)
            if python_function is not None and name not in ("decode_pixels",
                                                            "decode_with_format"):
                setattr(graph, name, python_function)
    from hubensemble.export.saved import (_in_save_context, check_headers, decode_each,
                                          decode_image)

    traced = {"count": 0}
    policy = graph._decode

    def counted(data):  # `decode_pixels` looks `_decode` up when it is traced
        traced["count"] += 1
        return policy(data)

    graph._decode = counted
    from hubensemble.fileio import tf_path

    def module():
        class Served(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
            def serve(self, image_bytes):
                def one(data):
                    return (augment.eval_preprocess(decode_image(data), size=32),)
                return decode_each(check_headers(image_bytes), one,
                                   [tf.TensorSpec([32, 32, 3], tf.float32)])[0]
        return Served()

    def encoded(fmt, shape):
        out = io.BytesIO()
        Image.fromarray(np.full(shape, 128, np.uint8)).save(out, fmt)
        return out.getvalue()

    png, jpeg = encoded("PNG", (40, 30, 3)), encoded("JPEG", (40, 40, 3))
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("", "2"):
            served, path = module(), os.path.join(folder, f"model{suffix}")
            traced["count"] = 0
            start, cpu = time.perf_counter(), time.process_time()
            with _in_save_context():
                served.serve.get_concrete_function()
            done = time.perf_counter()
            tf.saved_model.save(served, tf_path(path))
            figures["trace" + suffix] = done - start
            figures["save" + suffix] = time.perf_counter() - done
            figures["cpu" + suffix] = time.process_time() - cpu
            figures["traces" + suffix] = traced["count"]
        start = time.perf_counter()
        loaded = tf.saved_model.load(tf_path(path))
        figures["load"] = time.perf_counter() - start
        start = time.perf_counter()
        loaded.serve(tf.constant([png] * 4))
        figures["first"] = time.perf_counter() - start
        start = time.perf_counter()
        try:
            loaded.serve(tf.constant([png, jpeg[:300]]))
            raise SystemExit("the cut JPEG was not refused: the benchmark measures nothing")
        except tf.errors.InvalidArgumentError:
            figures["refused"] = time.perf_counter() - start
        figures["pb_kb"] = os.path.getsize(os.path.join(path, "saved_model.pb")) / 1024
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--repeats", type=integer(1), default=3,
                        help="fresh processes per variant (default 3)")
    parser.add_argument("--child", choices=("functions", "inline"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child == "inline")))
        return
    runs = {"functions": [], "inline": []}
    for i in range(args.repeats):
        for variant in runs:  # alternating, so load on the machine hits both alike
            out = subprocess.run([sys.executable, __file__, "--child", variant],
                                 capture_output=True, text=True, check=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
            print(f"  run {i + 1} of {args.repeats}, {variant}: done", flush=True)
    print(f"{'figure':>8} {'functions':>10} {'inline':>10} {'ratio':>7}")
    for figure in FIGURES:
        a, b = (statistics.median(r[figure] for r in runs[v]) for v in ("functions", "inline"))
        ratio = f"{a / b:7.2f}" if b else f"{'-':>7}"
        print(f"{figure:>8} {a:10.2f} {b:10.2f} {ratio}")


if __name__ == "__main__":
    with command_logging():
        main()
