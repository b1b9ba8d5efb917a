"""The export's recorded figures against independent measurements, as ratios (target 1.0).

    python tools/benchmarks/bench_figures.py [--export DIR] [--repeats 50] [--keep DIR]

Without --export it exports, with hubensemble's own functions, a small ensemble of two
members: the tests' one-conv module (conv 3x3, 3 -> 8 channels, ReLU, global average pool) at
32 px and the offline zoo's r6x1 (hubensemble.zoo, randomly initialised: cost does not depend
on what the weights learned) at 32 px, each with tune.build_classifier's 10-class head, as
the export stage records them: the members' costs (cost.stage.module_cost, summed by
cost.total_cost), the SavedModel timed at batch 1 and 64 (export.save_export) and the TFLite
model beside it (export.tflite.write_tflite). With --export DIR it reads those records from a
hubensemble export (its assets/hubensemble.json, and DIR-tflite/hubensemble.json when there
is one), e.g. RUN/export of the demo. Then it reloads the SavedModel with
tf.saved_model.load and prints recorded / measured for: latency, its serving_default
timed in a loop of its own (timeit, one call per repeat after 3 untimed calls, the median, on
random images of the size the export was checked on, made once per batch size, in this
process's thread settings: TensorFlow's own unless --threads) beside hubensemble's
time_batches of the same call in the same process (its ratio to the loop is the same-run
baseline: the method, without the hours between an export and this check); FLOPs, counted
again by TensorFlow's profiler (float_ops of Conv2D, DepthwiseConv2dNative, MatMul and the
batched matrix products in the inlined serving graph at batch 1; the profiler's own per-op
statistics, not hubensemble's shape arithmetic) and, for the one-conv member, by hand;
parameters, against the scalars of the reloaded SavedModel's variables; the TFLite model's
size, against the file, and its latency, against a loop of its own (set_tensor once,
invoke and get_tensor per call). Latency ratios far from 1 on a loaded machine are noise:
compare ratios of one run, never figures of two.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import timeit

import numpy as np
from benchargs import command_logging, description, existing_folder, integer, keep_argument
from hubensemble.fileio import tf_path
from hubensemble.text import counted as counted_words

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
SIZE = 32
BATCHES = (1, 64)
#: The op types whose float_ops the recorded FLOPs count (cost.records.DEFINITION["flops"]).
COUNTED_OPS = ("Conv2D", "DepthwiseConv2dNative", "Conv3D", "Conv2DBackpropInput", "MatMul",
               "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")


def _import_tensorflow():
    """TensorFlow, once the arguments are parsed (`--help` answers without it)."""
    global tf
    import tensorflow as tf


def one_conv(seed=0, width=8):
    """The tests' one-conv module (tests/conftest.make_tiny_model): [N, H, W, 3] -> [N, 8]."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inp)
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))


def export_small(folder):
    """Writes the two-member ensemble's SavedModel at FOLDER/export (and its TFLite model at
    FOLDER/export-tflite) with the cost record the export stage writes; returns its path."""
    import keras

    from hubensemble import zoo
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.cost import total_cost
    from hubensemble.cost.stage import module_cost
    from hubensemble.export import ExportMember, save_export
    from hubensemble.export.tflite import write_tflite
    from hubensemble.hub import write_hub_module
    from hubensemble.tune import build_classifier

    keras.utils.set_random_seed(0)
    modules = {"conv8": one_conv(), "r6x1": zoo.build_backbone(zoo.ARCHITECTURES["r6x1"])}
    members, costs = [], []
    for i, (name, model) in enumerate(modules.items()):
        path = os.path.join(folder, "modules", name)
        write_hub_module(model, path)
        spec = ModuleSpec(name=name, handle=path)
        classifier = build_classifier(spec, CLASSES, name=f"classifier_{i}")
        classifier(np.zeros((1, SIZE, SIZE, 3), np.float32))
        cost, _ = module_cost(spec, CLASSES, SIZE, cache_dir=os.path.join(folder, "cache"))
        costs.append(cost)
        members.append(ExportMember(classifier=classifier, size=SIZE, weight=0.5,
                                    info={"trial": f"t{i}", "module": name}))
    images = np.random.default_rng(0).random((32, SIZE, SIZE, 3), dtype=np.float32)
    out = os.path.join(folder, "export")
    record = {"members": [{"trial": f"t{i}", **c.summary()} for i, c in enumerate(costs)],
              "ensemble": total_cost(costs)}
    save_export(members, [str(c) for c in range(CLASSES)], out, check_images=images,
                metadata={"cost": record}, latency_batches=BATCHES)
    serve = tf.saved_model.load(tf_path(out)).signatures["serving_default"]
    write_tflite(members, [str(c) for c in range(CLASSES)], out + "-tflite",
                 input_hw=(SIZE, SIZE), check_images=images,
                 reference=lambda x: serve(images=tf.constant(x))["probabilities"])
    return out


def loop_ms(call, repeats):
    """The median ms of `repeats` calls of `call()` timed one by one by timeit, after 3."""
    for _ in range(3):
        call()
    return 1000.0 * statistics.median(timeit.Timer(call).repeat(repeat=repeats, number=1))


def profiler_flops(serve, hw):
    """{op type: float_ops} of one serving_default call on a batch of 1 image of size `hw`,
    counted by tf.profiler on the inlined, frozen graph."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    fn = tf.function(lambda x: serve(images=x)["probabilities"]).get_concrete_function(
        tf.TensorSpec([1, hw[0], hw[1], 3], tf.float32))
    graph_def = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    opts = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph, options=opts)
    by_type = {}
    for node in profile.children:
        kind = graph.get_operation_by_name(node.name).type
        by_type[kind] = by_type.get(kind, 0) + int(node.total_float_ops)
    return by_type


def ratio(recorded, measured):
    return f"{recorded / measured:.3f}" if recorded is not None and measured else "n/a"


def main(args):
    _import_tensorflow()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    # A folder of its own only for the export it makes: with --export it left an empty one
    # in the temp folder on every run.
    work = None if args.export else (args.keep or tempfile.mkdtemp(prefix="bench-figures-"))
    try:
        measure(args, args.export or export_small(work))
    finally:
        if work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def measure(args, out):
    """Prints the export at `out`'s recorded figures against the measured ones (the module's
    docstring)."""
    from hubensemble.cost.graph import time_batches
    from hubensemble.formats import read_export_metadata

    meta = read_export_metadata(out)
    hw = tuple(meta["tf_serving_warmup"]["image_size"])  # the check images' size
    loaded = tf.saved_model.load(tf_path(out))
    serve = loaded.signatures["serving_default"]
    images = np.random.default_rng(1).random((max(BATCHES),) + hw + (3,), dtype=np.float32)
    members = meta.get("members") or (meta.get("cost") or {}).get("members") or []
    print(f"export {out}: {counted_words(len(members), 'member')}, checked on "
          f"{hw[0]}x{hw[1]} images")

    print("latency (ms)       recorded  time_batches  loop   recorded/loop  time_batches/loop")
    now = time_batches(lambda x: serve(images=x)["probabilities"].numpy(), tf.constant(images),
                       BATCHES)
    for batch in BATCHES:
        x = tf.constant(images[:batch])
        loop = loop_ms(lambda: serve(images=x)["probabilities"].numpy(), args.repeats)
        rec = (meta.get("latency_ms") or {}).get(str(batch))
        print(f"  SavedModel b{batch:<3} {rec or float('nan'):9.3f} {now[str(batch)]:12.3f} "
              f"{loop:7.3f}   {ratio(rec, loop):>12}  {ratio(now[str(batch)], loop):>17}")

    cost = meta.get("cost") or {}
    ensemble = cost.get("ensemble") or {}
    by_type = profiler_flops(serve, hw)
    counted = sum(v for k, v in by_type.items() if k in COUNTED_OPS)
    print(f"FLOPs: recorded {ensemble.get('flops')}, tf.profiler {counted} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(by_type.items()) if k in COUNTED_OPS)}):"
          f" recorded/profiler {ratio(ensemble.get('flops'), counted)}")
    if not args.export:
        hand = 2 * (SIZE * SIZE * 8 * 27 + 8 * CLASSES)  # conv 3x3x3 -> 8 at 32 px + head
        rec = cost["members"][0]["gflops"] * 1e9  # a member's row holds GFLOPs
        print(f"  one-conv member: recorded {rec:.0f}, by hand {hand}: {ratio(rec, hand)}")
    stored = sum(int(np.prod(v.shape)) for v in loaded.variables)
    print(f"parameters: recorded {ensemble.get('params')}, the SavedModel's variables {stored}:"
          f" {ratio(ensemble.get('params'), stored)}")

    lite = out + "-tflite"
    if os.path.isfile(os.path.join(lite, "model.tflite")):
        from hubensemble.export.tflite import TFLiteRunner

        with open(os.path.join(lite, "hubensemble.json"), encoding="utf-8") as f:
            tmeta = json.load(f)
        size = os.path.getsize(os.path.join(lite, "model.tflite"))
        print(f"TFLite size: recorded {tmeta['size_bytes']}, file {size}: "
              f"{ratio(tmeta['size_bytes'], size)}")
        runner = TFLiteRunner(path=os.path.join(lite, "model.tflite"))
        thw = tuple(tmeta["input_size"])
        timg = images if thw == hw else np.random.default_rng(2).random(
            (max(BATCHES),) + thw + (3,), dtype=np.float32)
        lat = tmeta["latency_ms"]
        now = time_batches(runner.timed_call(), timg, BATCHES)
        print("latency (ms)       recorded  time_batches  loop   recorded/loop  "
              "time_batches/loop")
        for batch in BATCHES:
            call = runner.timed_call()
            x = np.ascontiguousarray(timg[:batch])
            loop = loop_ms(lambda: call(x), args.repeats)  # its first call copies x in
            rec = lat["tflite"][str(batch)]
            print(f"  TFLite b{batch:<7} {rec:9.3f} {now[str(batch)]:12.3f} {loop:7.3f}   "
                  f"{ratio(rec, loop):>12}  {ratio(now[str(batch)], loop):>17}")
        # The SavedModel is timed twice by an export with --format tflite: into its own
        # metadata (save_export) and, beside the TFLite model, into the TFLite record.
        own = meta.get("latency_ms") or {}
        print("the SavedModel timed twice in one export, TFLite record's / metadata's: "
              + ", ".join(f"b{b} {ratio(lat['savedmodel'].get(str(b)), own.get(str(b)))}"
                          for b in BATCHES))


def export_folder(text):
    """An argparse type: a folder holding a hubensemble SavedModel export (its metadata
    asset, `formats.metadata_path`), else which of the two it is not."""
    from hubensemble.formats import metadata_path

    path = existing_folder(text)
    if not os.path.isfile(metadata_path(path)):
        raise argparse.ArgumentTypeError(f"{text} holds no hubensemble export (no "
                                         f"{metadata_path(path)}); give RUN/export")
    return path


def parse(argv=None):
    parser = argparse.ArgumentParser(prog="bench_figures.py", description=description(__doc__))
    parser.add_argument("--export", type=export_folder, default=None,
                        help="a hubensemble SavedModel export to check (default: export a "
                             "two-member ensemble first)")
    parser.add_argument("--repeats", type=integer(1), default=50,
                        help="timed calls per loop (default 50)")
    parser.add_argument("--threads", type=integer(0), default=0,
                        help="TensorFlow's intra- and inter-op threads (0: its own choice)")
    keep_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    with command_logging():
        main(parse())
    sys.exit(0)
