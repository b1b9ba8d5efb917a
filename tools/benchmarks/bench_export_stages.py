"""The export's own time (hubensemble.export.save_export) stage by stage, each as CPU seconds
and as a ratio to a floor measured in the same run: a plain tf.saved_model.save and
tf.saved_model.load of the same ensemble module, what any export must pay.

    python tools/benchmarks/bench_export_stages.py [--members 3] [--kind tiny|zoo]
        [--repeats 3] [--latency] [--profile N] [--keep DIR]
    python tools/benchmarks/bench_export_stages.py --run RUN [--repeats 3] ...

The members are made here, as the tests make theirs: --kind tiny (the default) are one-conv
modules (tests/conftest.py's make_tiny_model: Conv2D of 8 channels, ReLU, global average
pooling) whose export's own work dominates a quick fit of sklearn:digits, at evaluation
sizes 32, 24 and 40 px; --kind zoo builds the offline zoo's r6x1 and r8x2 (randomly
initialised; bench_export.py's members). With --run RUN, the members and check images are
those `hubensemble export --run RUN` would export (its stage runs up to save_export, whose
arguments are taken; nothing is written to RUN). Each is wrapped in tune.build_classifier's
head; the check images are 32 synthetic images of 32 px (CHECK_BATCH).

Each repeat runs, back to back, in this order alternating between repeats: the floor (a new
EnsembleModule of the members, its saveable_root, tf.saved_model.save and
tf.saved_model.load; then, apart, the loaded serving_default's first call on the check
images, the least a reload check adds) and save_export, cut into stages at the calls it
makes: prepare (the module, the in-memory probabilities, the root and its `__call__`
traces), save (tf.saved_model.save), files (warmup file, digest, metadata), reload
(tf.saved_model.load), the reload check (check_reload) by entry point it calls, the warmup
(run_warmup) by request, latency (cost.graph.time_batches, with --latency, as `hubensemble
export` times (1, 64)) and the rest (the metadata, the swap into place). CPU is
time.process_time (every thread of this process). A first round, not in the medians, pays
what a `hubensemble export` process pays once (TensorFlow's lazy imports, the first trace of
the decode policy's tf.functions, which the process then keeps); its stages are printed
apart. Printed: each stage's median CPU seconds and its share of the export, the export's
and the floor's total, and export / floor; then the size of the exported serve_bytes
signature's graph (its nodes and those of every function in its library, and how many
functions: what TensorFlow optimises when a reloaded export's serve_bytes is first called)
and of the whole library in saved_model.pb (what tf.saved_model.load turns back into graphs).
--profile N also runs one more export under cProfile and prints its N most expensive
functions by cumulative time.
"""

import argparse
import contextlib
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from benchargs import command_logging, description, existing_folder, folder_target, integer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
#: --kind tiny's members: (seed, conv width, evaluation size).
TINY = [(1, 8, 32), (2, 6, 24), (3, 8, 40), (4, 8, 32), (5, 6, 24), (6, 8, 40)]
#: --kind zoo's members: (zoo architecture, seed, evaluation size), as bench_export.py.
ZOO = [("r6x1", 0, 32), ("r8x2", 0, 48), ("r6x1", 1, 64), ("r8x2", 1, 64),
       ("r6x1", 2, 40), ("r8x2", 2, 56)]


def cpu() -> float:
    return time.process_time()


def tiny_backbone(seed, width):
    """tests/conftest.py's make_tiny_model: [N, H, W, 3] in [0, 1] -> [N, width]."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inp)
    return keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x))


def build_members(kind, n, folder):
    """`n` ExportMembers of `kind` ("tiny" or "zoo"), their modules written under `folder`."""
    import keras

    from hubensemble import zoo
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.export import ExportMember
    from hubensemble.hub import write_hub_module
    from hubensemble.tune import build_classifier

    members = []
    for i in range(n):
        if kind == "tiny":
            seed, width, size = TINY[i]
            model = tiny_backbone(seed, width)
        else:
            arch, seed, size = ZOO[i]
            keras.utils.set_random_seed(seed)
            model = zoo.build_backbone(zoo.ARCHITECTURES[arch])
        spec = ModuleSpec(name=f"m{i}", handle=write_hub_module(
            model, os.path.join(folder, f"module_{i}")))
        clf = build_classifier(spec, CLASSES, name=f"classifier_{i}")
        rng = np.random.default_rng(i)  # a non-zero head: the members' outputs differ
        clf.head.kernel.assign(rng.normal(0, 0.1, clf.head.kernel.shape).astype(np.float32))
        members.append(ExportMember(clf, size, 1.0, {"module": spec.name}))
    names = [str(c) for c in range(CLASSES)]
    check = np.random.default_rng(0).random((32, 32, 32, 3), dtype=np.float32)
    return members, names, check, {}


class _Taken(Exception):
    """Stops `export_ensemble` at save_export, once its arguments are taken."""


def run_members(run_path, folder):
    """(members, class names, check images, save_export's other keywords) of the export
    `hubensemble export --run RUN` makes, taken at its save_export call (a copy of RUN is
    exported, so RUN is left as it was)."""
    from hubensemble.export import stage

    copy = os.path.join(folder, "run")
    shutil.copytree(run_path, copy, ignore=shutil.ignore_patterns("export*", "*.lock"))
    taken = {}

    def take(members, class_names, out_dir, **kwargs):
        taken.update(members=members, names=class_names, kwargs=kwargs)
        raise _Taken()

    real, stage.save_export = stage.save_export, take
    try:
        with contextlib.suppress(_Taken):
            stage.export_ensemble(copy, os.path.join(folder, "unused"))
    finally:
        stage.save_export = real
    if not taken:
        raise SystemExit(f"{run_path}: the export ended before it wrote the SavedModel")
    kwargs = {k: v for k, v in taken["kwargs"].items() if k in ("metadata", "groups")}
    return taken["members"], taken["names"], taken["kwargs"]["check_images"], kwargs


@contextlib.contextmanager
def marked(marks):
    """While in it, save_export's calls append (stage, CPU seconds) to `marks` as each stage
    starts: the functions it calls are wrapped where it looks them up."""
    from hubensemble.cost import graph
    from hubensemble.export import saved

    # (owner, name): (the stage its call starts, the stage its return starts).
    cuts = {(saved.EnsembleModule, "saveable_root"): (None, "save"),
            (saved, "warmup_requests"): ("files", None),
            (saved, "_reload"): ("reload", None),
            (saved, "check_reload"): None,  # a mark per entry point it calls
            (saved, "run_warmup"): None,  # a mark per request
            (graph, "time_batches"): ("latency", "rest")}

    def wrap(real, before, after):
        def wrapper(*args, **kwargs):
            if before:
                marks.append((before, cpu()))
            out = real(*args, **kwargs)
            if after:
                marks.append((after, cpu()))
            return out
        return wrapper

    def each_entry(real):
        """check_reload with a mark before each entry point it calls."""
        def wrapper(reference, candidates, images, **kwargs):
            timed = {name: _marking(fn, marks, f"reload check: {name}")
                     for name, fn in candidates.items()}
            return real(reference, timed, images, **kwargs)
        return wrapper

    def each_request(real):
        """run_warmup one request at a time (as it runs them), a mark before each."""
        def wrapper(loaded, requests, **kwargs):
            for request in requests:
                marks.append((f"warmup: {request[0]}", cpu()))
                real(loaded, [request], **kwargs)
            marks.append(("rest", cpu()))
        return wrapper

    reals = {key: getattr(*key) for key in cuts}
    special = {(saved, "check_reload"): each_entry, (saved, "run_warmup"): each_request}
    try:
        for (owner, name), cut in cuts.items():
            real = reals[owner, name]
            setattr(owner, name, special[owner, name](real) if cut is None else wrap(real, *cut))
        yield
    finally:
        for (owner, name), real in reals.items():
            setattr(owner, name, real)


def _marking(fn, marks, stage):
    """`fn`, marking `stage` when it is called."""
    def wrapper(*args, **kwargs):
        marks.append((stage, cpu()))
        return fn(*args, **kwargs)
    return wrapper


def stages_of(marks, start, end) -> dict:
    """{stage: CPU seconds} from the (stage, CPU) marks between `start` and `end`; a stage
    without a mark is folded into the one before it."""
    points = [("prepare", start)] + list(marks) + [("end", end)]
    out = {}
    for (stage, c), (_, nxt) in zip(points, points[1:]):
        out[stage] = out.get(stage, 0.0) + nxt - c
    return out


def floor(members, names, folder, check, kwargs) -> dict:
    """{"save": CPU seconds, "load": …, "first call": …} of a plain tf.saved_model.save of a
    new EnsembleModule of `members` (with its saveable_root), tf.saved_model.load of it, and
    the loaded serving_default's first call on `check`."""
    import tensorflow as tf

    from hubensemble.export.saved import EnsembleModule
    from hubensemble.fileio import tf_path

    path = os.path.join(folder, "floor")
    shutil.rmtree(path, ignore_errors=True)
    t0 = cpu()
    module = EnsembleModule(members, names, groups=kwargs.get("groups"))
    root, signatures = module.saveable_root()
    tf.saved_model.save(root, tf_path(path), signatures=signatures)
    t1 = cpu()
    loaded = tf.saved_model.load(tf_path(path))
    t2 = cpu()
    loaded.signatures["serving_default"](images=tf.constant(check))["probabilities"].numpy()
    return {"save": t1 - t0, "load": t2 - t1, "first call": cpu() - t2}


def export(members, names, folder, check, kwargs, latency):
    """({stage: CPU seconds}, CPU seconds in Python's garbage collector) of one save_export
    of `members`: a collection lands in whichever stage allocates when it is due."""
    from hubensemble.export import save_export

    marks, collected = [], [0.0, 0.0]

    def collector(phase, info):  # gc.callbacks: the CPU of Python's collections
        if phase == "start":
            collected[1] = cpu()
        else:
            collected[0] += cpu() - collected[1]

    out = os.path.join(folder, "export")
    gc.callbacks.append(collector)
    try:
        with marked(marks):
            t = cpu()
            save_export(members, names, out, check_images=check,
                        latency_batches=(1, 64) if latency else (), **kwargs)
            end = cpu()
    finally:
        gc.callbacks.remove(collector)
    return stages_of(marks, t, end), collected[0]


def serve_bytes_graph(path) -> tuple:
    """(nodes, functions) of the serve_bytes signature of the SavedModel at `path`: the nodes
    of its graph and of every function in its library, and how many functions that holds."""
    import tensorflow as tf

    from hubensemble.fileio import tf_path
    from hubensemble.formats import BYTES_SIGNATURE

    graph = tf.saved_model.load(tf_path(path)).signatures[BYTES_SIGNATURE].graph.as_graph_def()
    functions = graph.library.function
    return len(graph.node) + sum(len(f.node_def) for f in functions), len(functions)


def library_size(path) -> tuple:
    """(nodes, functions) of the function library of the SavedModel at `path`'s
    saved_model.pb: what tf.saved_model.load turns back into graphs, a function at a time."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    functions = saved.meta_graphs[0].graph_def.library.function
    return sum(len(f.node_def) for f in functions), len(functions)


def main():
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--members", type=integer(1, len(TINY)),
                        help=f"members made here (1-{len(TINY)}; default 3)")
    parser.add_argument("--kind", choices=("tiny", "zoo"),
                        help="one-conv modules as the tests make (default) or the zoo's")
    parser.add_argument("--run", metavar="RUN", type=existing_folder,
                        help="export this run's ensemble instead of members made here")
    parser.add_argument("--repeats", type=integer(1), default=3)
    parser.add_argument("--latency", action="store_true",
                        help="time serving_default at batch 1 and 64, as `hubensemble "
                             "export` does")
    parser.add_argument("--profile", metavar="N", type=integer(1),
                        help="also profile one export (cProfile) and print its N most "
                             "expensive functions by cumulative time")
    parser.add_argument("--keep", metavar="DIR", type=folder_target,
                        help="write the SavedModels here and keep them (default: a temp "
                             "folder)")
    args = parser.parse_args()
    if args.run and (args.members or args.kind):
        parser.error("--members and --kind make members here; --run exports the run's")
    args.members, args.kind = args.members or 3, args.kind or "tiny"

    import tensorflow as tf

    from hubensemble.text import counted

    folder = args.keep or tempfile.mkdtemp(prefix="bench_export_stages-")
    os.makedirs(folder, exist_ok=True)
    try:
        if args.run:
            members, names, check, kwargs = run_members(args.run, folder)
        else:
            members, names, check, kwargs = build_members(args.kind, args.members, folder)
        print(f"TensorFlow {tf.__version__}, {counted(os.cpu_count(), 'CPU')}, load "
              f"{os.getloadavg()[0]:.1f}; {counted(len(members), 'member')} "
              f"({args.run or args.kind}), check images {list(check.shape)}", flush=True)
        floors, exports, collections = [], [], []
        for r in range(args.repeats + 1):  # round 0 pays the lazy imports: not counted
            order = ("floor", "export") if r % 2 else ("export", "floor")
            for which in order:
                if which == "floor":
                    parts = floor(members, names, folder, check, kwargs)
                    (floors if r else []).append(parts)
                else:
                    parts, collecting = export(members, names, folder, check, kwargs,
                                               args.latency)
                    if r:
                        exports.append(parts)
                        collections.append(collecting)
                    else:
                        first = parts
            if r:
                print(f"  round {r}: export {sum(exports[-1].values()):.2f} s CPU, floor "
                      f"{floors[-1]['save'] + floors[-1]['load']:.2f} s (save "
                      f"{floors[-1]['save']:.2f}, load {floors[-1]['load']:.2f}; first call "
                      f"{floors[-1]['first call']:.2f})", flush=True)
        total = statistics.median(sum(p.values()) for p in exports)
        low = {k: statistics.median(p[k] for p in floors) for k in floors[0]}
        base = statistics.median(p["save"] + p["load"] for p in floors)
        print(f"stages (median CPU seconds of {counted(args.repeats, 'repeat')}, share of the "
              "export, ratio to the floor's save + load):")
        for stage in dict.fromkeys(k for p in exports for k in p):  # in the order they ran
            values = [p[stage] for p in exports if stage in p]
            if values:
                v = statistics.median(values)
                print(f"  {stage:<32} {v:6.2f} s  {v / total:5.1%}  {v / base:5.2f}")
        print(f"export {total:.2f} s CPU; floor {base:.2f} s (save {low['save']:.2f}, load "
              f"{low['load']:.2f}), the floor's first serving_default call "
              f"{low['first call']:.2f} s; export / floor {total / base:.2f}, export / "
              f"(floor + first call) {total / (base + low['first call']):.2f}; Python's "
              f"garbage collector in the export {statistics.median(collections):.2f} s "
              f"(max {max(collections):.2f})", flush=True)
        nodes, functions = serve_bytes_graph(os.path.join(folder, "export"))
        print(f"serve_bytes' graph: {nodes:,} nodes, {counted(functions, 'function')} in its "
              "library (what its first call on a reloaded export optimises)")
        nodes, functions = library_size(os.path.join(folder, "export"))
        print(f"saved_model.pb's library: {nodes:,} nodes in {counted(functions, 'function')} "
              "(what the reload turns back into graphs)")
        # What a `hubensemble export` process pays once more: the first trace of the
        # decode policy's tf.functions (cached for the process), TensorFlow's lazy imports.
        print(f"the first export in this process (round 0, not in the medians): "
              f"{sum(first.values()):.2f} s CPU (" + ", ".join(
                  f"{stage} {v:.2f}" for stage, v in first.items() if v >= 0.05) + ")")
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile(cpu)  # CPU, not the wall (the machine is shared)
            profile.enable()
            export(members, names, folder, check, kwargs, args.latency)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
