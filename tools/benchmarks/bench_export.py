"""Latency of an exported ensemble against the sum of its members' latencies (target <= 1.1).

    python tools/benchmarks/bench_export.py [--members 4] [--repeats 30] [--image-size 64]
        [--threads 0] [--keep DIR]

Builds modules of the offline zoo's architectures (hubensemble.zoo: ResNet-v2 with GroupNorm
and weight standardisation; r6x1 and r8x2, the demo zoo's two sizes; evaluation sizes 32-64
px), randomly initialised (latency does not depend on what the weights learned), wraps each in
tune.build_classifier's head, and exports (hubensemble.export.save_export) the ensemble of
all of them and, the same way, each member alone. Every SavedModel is loaded with
tf.saved_model.load and called through its serving_default signature on the same float32
images; calls are interleaved round-robin so that load on the machine hits every model alike,
and the median of the repeats after a warm-up is reported. Prints ensemble / sum(members) at
batch 1 and batch 64. --threads 1 shows the graph's own overhead without members overlapping;
--threads 0, the default, leaves the thread pools to TensorFlow (0 is TensorFlow's own word for
that in tf.config.threading: about one thread per core), as every other command runs.
Then times what `hubensemble evaluate` calls per batch: serve_members alone (it returns the
ensemble's probabilities too) against serving_default + serve_members, as a ratio, and the
signatures' input check (`check_pixel_range`: finite, within [0, 1] by its slack) alone
against the ensemble's serving_default call on the same batch.
Last, --probes K (default 2; 0 skips it) probes of one module (K heads on one frozen r8x2
backbone at 48 px, as a probe sweep leaves them) plus member 0 exported with the shared
backbone call (export.shared) and without it (save_export(share_backbones=False)), timed
interleaved: shared / unshared at batch 1 and 64 (about (1 + f) / (K + f), f the other
member's share); and the two SavedModels' size on disk (the folder, and its variables) and
stored weights: the shared export stores the backbone once.

    python tools/benchmarks/bench_export.py --cpu [--run RUN] [--cpu-members 1,2,8]
        [--cpu-repeats 2]

With --cpu, instead: the CPU (user + sys seconds, resource.getrusage of the child processes)
of `hubensemble export --run COPY --out DIR -q` for the first K members of a run's ensemble
(a copy of RUN whose ensemble.json lists those K, weights renormalised; without --run, a small
run made here: 8 trials of the zoo's r6x1 and r8x2 architectures, randomly initialised, tuned
with the quick profile on sklearn:digits), against a same-run baseline, the least TensorFlow
needs for the same members: a process that rebuilds the K members' Keras models
(tune.build_classifier + their weights), saves a tf.Module holding them with one serving
signature (their weighted average at their own sizes) by tf.saved_model.save, then loads it
with tf.saved_model.load and calls it once on 32 images. Export and baseline run back to back,
--cpu-repeats times each; printed per K: both figures, export / baseline, and the export's
parts, which the export does not time itself, cut at its progress lines (the CPU at each
"export: …" line it writes to its log): before the save (TensorFlow's import, the data, the
members rebuilt, their cost), the save (tracing and writing the SavedModel, its digest), the
reload check with the warmup requests, and the timing of serving_default to the process's
end (run.json).
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from benchargs import (command_logging, description, existing_folder, folder_target, integer,
                       integers)
from hubensemble.fileio import tf_path
from hubensemble.text import counted

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
# (zoo architecture, seed, evaluation size): the demo zoo's two sizes (zoo.preset("demo"):
# r8x2 and r6x1) alternating, at 32-64 px; the default --members 4 takes the first four.
MEMBERS = [("r6x1", 0, 32), ("r8x2", 0, 48), ("r6x1", 1, 64), ("r8x2", 1, 64),
           ("r6x1", 2, 40), ("r8x2", 2, 56)]


def _import_tensorflow():
    """TensorFlow and what needs it, once the arguments are parsed: `--help` and a refused
    argument printed TensorFlow's start-up notices first (seconds, and twice)."""
    global keras, tf, zoo, ModuleSpec, ExportMember, save_export, check_pixel_range
    global write_hub_module, build_classifier, share_key
    import keras
    import tensorflow as tf

    from hubensemble import zoo
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.export import ExportMember, save_export
    from hubensemble.export.saved import check_pixel_range
    from hubensemble.export.shared import share_key
    from hubensemble.hub import write_hub_module
    from hubensemble.tune import build_classifier


def backbone(arch_name, seed):
    """The zoo's architecture ``arch_name`` (zoo.ARCHITECTURES), randomly initialised from
    ``seed``. Raises KeyError naming the zoo's architectures when it has no such one: timing
    a stand-in network would quote figures for a model the zoo does not build."""
    if arch_name not in zoo.ARCHITECTURES:
        raise KeyError(f"hubensemble.zoo.ARCHITECTURES has no {arch_name!r} (it has "
                       f"{', '.join(zoo.ARCHITECTURES)}); update MEMBERS in {__file__}")
    keras.utils.set_random_seed(seed)
    return zoo.build_backbone(zoo.ARCHITECTURES[arch_name])


def build_members(n, folder):
    members = []
    for i, (arch_name, seed, size) in enumerate(MEMBERS[:n]):
        model = backbone(arch_name, seed)
        path = write_hub_module(model, os.path.join(folder, f"module_{i}"))
        spec = ModuleSpec(name=f"m{i}", handle=path)
        clf = build_classifier(spec, CLASSES, name=f"classifier_{i}")
        # A non-zero head, so the members' outputs are not all uniform.
        rng = np.random.default_rng(i)
        clf.head.kernel.assign(rng.normal(0, 0.1, clf.head.kernel.shape).astype(np.float32))
        members.append(ExportMember(clf, size, 1.0, {"module": spec.name}))
        print(f"  member {i}: {arch_name} ({zoo.arch_label(zoo.ARCHITECTURES[arch_name])}) "
              f"seed {seed}, eval {size} px, {model.count_params():,} parameters", flush=True)
    return members


def latencies(fns, images, repeats, warmup=3):
    """{name: [seconds per call] * repeats}, calls interleaved round-robin over the models."""
    x = tf.constant(images)
    for fn in fns.values():
        for _ in range(warmup):
            fn(images=x)["probabilities"].numpy()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(images=x)["probabilities"].numpy()
            times[name].append(time.perf_counter() - t)
    return times


def evaluation_calls(ensemble, rng, args):
    """What `hubensemble evaluate` runs per batch of 64, timed interleaved in this run: one
    serve_members call that returns the ensemble's and the members' probabilities, against
    the two calls (serving_default, then serve_members) an export without the first needs.
    Prints one / two (about 0.5 when the members dominate)."""
    members = ensemble.signatures["serve_members"]
    serve = ensemble.signatures["serving_default"]
    x = tf.constant(rng.random((64, args.image_size, args.image_size, 3), dtype=np.float32))
    calls = {"one": lambda: [v.numpy() for v in members(images=x).values()],
             "two": lambda: (serve(images=x)["probabilities"].numpy(),
                             members(images=x)["member_probabilities"].numpy())}
    times = {k: [] for k in calls}
    for r in range(3 + max(5, args.repeats // 2)):  # 3 warm-up rounds
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            if r >= 3:
                times[name].append(time.perf_counter() - t)
    one, two = (statistics.median(times[k]) for k in ("one", "two"))
    print(f"evaluate per batch of 64: serve_members with both outputs {one * 1e3:.2f} ms, "
          f"serving_default + serve_members {two * 1e3:.2f} ms; ratio {one / two:.3f}")


def range_check_share(ensemble, rng, args):
    """The input range check's own time — a tf.function of `check_pixel_range` minus one of
    the identity, both called on the same images (the call's overhead cancels) — as a share
    of the ensemble's serving_default call, which runs it; interleaved, batch 1 and 64."""
    fns = {"identity": tf.function(lambda x: tf.identity(x) * 1.0),
           "check": tf.function(lambda x: check_pixel_range(x) * 1.0),
           "serve": lambda x: ensemble.signatures["serving_default"](images=x)["probabilities"]}
    for batch in (1, 64):
        x = tf.constant(rng.random((batch, args.image_size, args.image_size, 3),
                                   dtype=np.float32))
        times = {k: [] for k in fns}
        for r in range(3 + max(20, args.repeats)):  # 3 warm-up rounds
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(x).numpy()
                if r >= 3:
                    times[name].append(time.perf_counter() - t)
        ident, check, served = (statistics.median(times[k])
                                for k in ("identity", "check", "serve"))
        own = max(0.0, check - ident)
        print(f"input range check at batch {batch}: {own * 1e3:.3f} ms of its own, "
              f"serving_default {served * 1e3:.2f} ms; share {own / served:.4f}")


def folder_bytes(path) -> int:
    """The bytes of every file under `path`."""
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, files in os.walk(path) for name in files)


def shared_backbone_ratio(other, folder, rng, args):
    """Probes of one module (`args.probes` heads on one frozen backbone) plus `other`,
    exported with the shared backbone call and without it; prints their size on disk and
    stored weights, and the latency ratio shared / unshared of serving_default at batch 1
    and 64, timed interleaved."""
    model = backbone("r8x2", 7)
    path = write_hub_module(model, os.path.join(folder, "probe_module"))
    spec = ModuleSpec(name="probed", handle=path)
    probes = []
    for i in range(args.probes):
        clf = build_classifier(spec, CLASSES, trainable=False, name=f"probe_{i}")
        head = np.random.default_rng(100 + i)
        clf.head.kernel.assign(head.normal(0, 0.1, clf.head.kernel.shape).astype(np.float32))
        key = share_key(spec.to_json(), clf.backbone.fingerprint, 48, "probe")
        probes.append(ExportMember(clf, 48, 1.0, {"trial": f"probe_{i}", "module": spec.name},
                                   share_key=key))
    names = [str(c) for c in range(CLASSES)]
    check = rng.random((8, args.image_size, args.image_size, 3), dtype=np.float32)
    fns, sizes = {}, {}
    for label, share in (("shared", True), ("unshared", False)):
        out = os.path.join(folder, f"probes_{label}")
        save_export(probes + [other], names, out, check_images=check, share_backbones=share)
        loaded = tf.saved_model.load(tf_path(out))
        fns[label] = loaded.signatures["serving_default"]
        sizes[label] = (folder_bytes(out), folder_bytes(os.path.join(out, "variables")),
                        int(sum(np.prod(v.shape) for v in loaded.variables)))
    (whole, var, weights), (whole_u, var_u, weights_u) = sizes["shared"], sizes["unshared"]
    print(f"{args.probes} probes of one module + member 0, on disk: shared {whole / 1e6:.2f} MB "
          f"(variables {var / 1e6:.2f} MB, {weights:,} weights), unshared {whole_u / 1e6:.2f} MB "
          f"(variables {var_u / 1e6:.2f} MB, {weights_u:,} weights); ratio "
          f"{whole / whole_u:.3f} (variables {var / var_u:.3f})", flush=True)
    for batch in (1, 64):
        images = rng.random((batch, args.image_size, args.image_size, 3), dtype=np.float32)
        repeats = args.repeats if batch == 1 else max(5, args.repeats // 2)
        lat = {k: statistics.median(v) for k, v in latencies(fns, images, repeats).items()}
        print(f"{args.probes} probes of one module + member 0, batch {batch:>2}: shared "
              f"{lat['shared'] * 1e3:.2f} ms, unshared {lat['unshared'] * 1e3:.2f} ms; ratio "
              f"{lat['shared'] / lat['unshared']:.3f}", flush=True)


# ---------------------------------------------------------------------------------------------
# --cpu: the export's own CPU against the least TensorFlow needs
# ---------------------------------------------------------------------------------------------

#: The child that runs `hubensemble export` in process (as the console script does) and
#: records its CPU at each of the export's progress lines ("export: …", `stage._teller`,
#: logged by `terminal.log_only` to "hubensemble.cli" whatever -q says). argv: the export's
#: arguments as JSON, the file to write [[line, cpu seconds], …] to.
EXPORT_CHILD = """if True:
    import json, logging, resource, sys

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    marks = []

    class Marks(logging.Handler):
        def emit(self, record):
            text = record.getMessage()
            if text.startswith("export: "):
                marks.append([text, cpu()])

    said = logging.getLogger("hubensemble.cli")
    said.addHandler(Marks(logging.INFO))
    said.setLevel(logging.INFO)  # its lines are INFO records; the console shows none (-q)
    from hubensemble.cli import main
    code = main(json.loads(sys.argv[1]))
    marks.append(["end", cpu()])
    with open(sys.argv[2], "w") as f:
        json.dump(marks, f)
    sys.exit(code or 0)
"""

#: The baseline child: the K members' Keras models rebuilt as the export rebuilds them, one
#: tf.Module with one serving signature (the weighted average of the members at their own
#: evaluation sizes, as `EvalResize` resizes), tf.saved_model.save, tf.saved_model.load and one
#: call. argv: [[handle, input size or None, value range or None, classes, dropout, weights
#: file, eval size, weight], …] as JSON, the output folder.
BASELINE_CHILD = """if True:
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from hubensemble import augment, tune
    from hubensemble.catalogue import ModuleSpec

    members = json.loads(sys.argv[1])
    models, sizes, weights = [], [], []
    for i, (handle, input_size, value_range, classes, dropout, path, size, weight) in (
            enumerate(members)):
        spec = ModuleSpec(name=f"m{i}", handle=handle, input_size=input_size,
                          value_range=value_range)
        model = tune.build_classifier(spec, classes, dropout=dropout, name=f"classifier_{i}")
        model.load_weights(path)
        models.append(model)
        sizes.append(size)
        weights.append(weight)
    total = sum(weights)

    class Ensemble(tf.Module):
        def __init__(self):
            super().__init__()
            self.models = models

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            return {"probabilities": tf.add_n([
                w / total * m(augment.eval_preprocess(images, size=s), training=False)
                for m, s, w in zip(self.models, sizes, weights)])}

    module = Ensemble()
    tf.saved_model.save(module, sys.argv[2], signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(sys.argv[2])
    x = tf.constant(np.random.default_rng(0).random((32, 32, 32, 3), dtype=np.float32))
    loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
"""

#: The small run's trials: (zoo architecture, seed) of 8 modules, randomly initialised.
CPU_MODULES = [("r6x1", 0), ("r8x2", 0), ("r6x1", 1), ("r8x2", 1), ("r6x1", 2), ("r8x2", 2),
               ("r6x1", 3), ("r8x2", 3)]


def children_cpu() -> float:
    """User + sys seconds of the waited-for child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def small_run(folder) -> str:
    """A run of 8 candidates (CPU_MODULES, quick profile, sklearn:digits) whose ensemble.json
    lists all 8, equally weighted; its path."""
    from hubensemble import candidate, ensemble, tune
    from hubensemble.data import load_task
    from hubensemble.fileio import atomic_write_json, read_json
    from hubensemble.hyperrule import HParams, get_profile
    from hubensemble.rundir import DataArgs, Run

    quick = get_profile("quick")
    task = load_task("sklearn:digits")
    path = os.path.join(folder, "run")
    run = Run(path)
    run.attach_task(task, DataArgs(spec="sklearn:digits"))
    specs = {}
    for i, (arch_name, seed) in enumerate(CPU_MODULES):
        module = write_hub_module(backbone(arch_name, seed),
                                  os.path.join(folder, "modules", f"{arch_name}_{seed}"))
        specs[f"{arch_name}_{seed}"] = ModuleSpec(name=f"{arch_name}_{seed}", handle=module)
    run.update(modules={n: s.to_json() for n, s in specs.items()})
    trials = []
    for i, name in enumerate(specs):
        hparams = HParams(**quick.scale({"lr": 0.1, "steps": 10000, "dropout": 0.1}), seed=i)
        entry = tune.PlanEntry(i, tune.trial_id("default", i, name), name, hparams)
        record = tune.run_entry(entry, specs[name], task, run, profile=quick)
        if record["status"] != "ok":
            raise SystemExit(f"trial {entry.trial_id} failed: {record.get('reason')}")
        trials.append(entry.trial_id)
        print(f"  trial {i + 1}/{len(specs)}: {name}", flush=True)
    ensemble.run_ensemble(path, budget=len(trials))
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    data["members"] = [{"trial": t, "module": cands[t].module, "hparams": cands[t].hparams,
                        "weight": 1.0, "handle": cands[t].handle, "seed": cands[t].seed}
                       for t in trials]
    atomic_write_json(run.ensemble_json, data)
    return path


def run_of(run_path, k, folder) -> tuple:
    """(a copy of the run whose ensemble.json lists its first `k` members, weights summing to
    1; the baseline child's member list for them)."""
    from hubensemble import candidate
    from hubensemble.fileio import atomic_write_json, read_json
    from hubensemble.rundir import Run

    dest = os.path.join(folder, f"run_{k}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(run_path, dest, ignore=shutil.ignore_patterns("export*", "*.lock"))
    run = Run(dest)
    data = read_json(run.ensemble_json)
    if len(data.get("members") or []) < k:
        raise SystemExit(f"{run_path}'s ensemble has "
                         f"{counted(len(data.get('members') or []), 'member')}, fewer than "
                         f"--cpu-members' {k}")
    members = data["members"][:k]
    total = sum(float(m.get("weight", 1.0)) for m in members)
    for m in members:
        m["weight"] = float(m.get("weight", 1.0)) / total
    data["members"] = members
    atomic_write_json(run.ensemble_json, data)
    meta = run.meta()
    classes = int(meta["data"]["task"]["num_classes"])
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    baseline = []
    for m in members:
        c = cands[m["trial"]]
        spec = meta["modules"][c.module]
        record = read_json(c.folder / candidate.TRIAL_FILE)
        baseline.append([spec["handle"], spec.get("input_size"), spec.get("value_range"),
                         classes, float(record["hparams"].get("dropout", 0.0)),
                         str(c.weights_path), int(record["eval_size"]), m["weight"]])
    return dest, baseline


def parts(marks) -> dict:
    """The export's CPU seconds by part, from its progress lines' CPU marks."""
    def at(prefix):
        return next((cpu for text, cpu in marks if text.startswith(prefix)), None)

    # The timing part runs to the process's end: the run.json record and the exit after it.
    points = [("before the save", 0.0), ("save", at("export: writing the SavedModel")),
              ("reload check + warmup", at("export: reload check")),
              ("timing", at("export: timing serving_default")), ("end", marks[-1][1])]
    points = [(name, cpu) for name, cpu in points if cpu is not None]
    return {name: points[i + 1][1] - cpu for i, (name, cpu) in enumerate(points[:-1])}


def export_cpu(args, folder) -> int:
    """--cpu: the export's CPU against the baseline's, per member count."""
    print(f"TensorFlow {tf.__version__}, {counted(os.cpu_count(), 'CPU')}, load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    run_path = args.run
    if run_path is None:
        print("making a small run (8 trials, quick profile)", flush=True)
        run_path = small_run(folder)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for k in args.cpu_members:
        copy, baseline = run_of(run_path, k, folder)
        cpu = {"export": [], "baseline": []}
        split = []
        for r in range(args.cpu_repeats):
            for which in ("export", "baseline"):
                out = os.path.join(folder, f"out_{k}_{which}_{r}")
                marks = os.path.join(folder, "marks.json")
                if which == "export":
                    argv = [sys.executable, "-c", EXPORT_CHILD,
                            json.dumps(["export", "--run", copy, "--out", out, "-q"]), marks]
                else:
                    argv = [sys.executable, "-c", BASELINE_CHILD, json.dumps(baseline), out]
                before = children_cpu()
                done = subprocess.run(argv, env=env, capture_output=True, text=True)
                cpu[which].append(children_cpu() - before)
                if done.returncode:
                    raise SystemExit(f"the {which} child failed ({done.returncode}):\n"
                                     + done.stderr[-3000:])
                if which == "export":
                    with open(marks) as f:
                        split.append(parts(json.load(f)))
                shutil.rmtree(out, ignore_errors=True)
        ratios = [e / b for e, b in zip(cpu["export"], cpu["baseline"])]
        said = ", ".join(f"{name} {statistics.median(p[name] for p in split):.1f} s"
                         for name in split[0])
        spent = " / ".join(f"{v:.1f}" for v in cpu["export"])
        print(f"{counted(k, 'member')}: export {spent} s CPU, "
              f"baseline {' / '.join(f'{v:.1f}' for v in cpu['baseline'])} s; ratio "
              f"{' / '.join(f'{v:.2f}' for v in ratios)} (export parts, median: {said})",
              flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--members", type=int, default=4, choices=range(2, 7))
    parser.add_argument("--repeats", type=integer(1), default=30)
    parser.add_argument("--image-size", type=integer(1), default=64,
                        help="side of the (square) input images; each member resizes")
    # 0 is kept as "TensorFlow's default" rather than refused: it is tf.config.threading's
    # own meaning of 0, what every hubensemble command runs with, and this flag's default.
    parser.add_argument("--threads", type=integer(0), default=0,
                        help="TensorFlow intra- and inter-op threads; 0 (the default) leaves "
                             "them to TensorFlow, as tf.config.threading's 0 does (about one "
                             "per core); 1 shows the overhead without parallel members")
    parser.add_argument("--probes", type=integer(0), default=2,
                        help="probes of one module for the shared-backbone timing (0 skips "
                             "it)")
    parser.add_argument("--keep", metavar="DIR", type=folder_target,
                        help="write the SavedModels here and keep them (default: a temp "
                             "folder)")
    parser.add_argument("--cpu", action="store_true",
                        help="time the export's CPU against a bare tf.saved_model.save of "
                             "the same members instead of the exported model's latency")
    parser.add_argument("--run", metavar="RUN", type=existing_folder,
                        help="with --cpu: the run whose ensemble's first members are exported "
                             "(default: a small run made here)")
    parser.add_argument("--cpu-members", type=integers(1), default=[1, 2, 8],
                        help="with --cpu: the member counts K (default 1,2,8)")
    parser.add_argument("--cpu-repeats", type=integer(1), default=2,
                        help="with --cpu: export and baseline runs per K, back to back "
                             "(default 2)")
    args = parser.parse_args()
    if not args.cpu and (args.run or args.cpu_members != [1, 2, 8] or args.cpu_repeats != 2):
        parser.error("--run, --cpu-members and --cpu-repeats go with --cpu")
    _import_tensorflow()
    if args.cpu:
        folder = args.keep or tempfile.mkdtemp(prefix="bench_export-")
        os.makedirs(folder, exist_ok=True)
        try:
            return export_cpu(args, folder)
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    unknown = sorted({a for a, _, _ in MEMBERS[:args.members]} - set(zoo.ARCHITECTURES))
    if unknown:  # before anything is built; backbone() would raise at the first of them
        parser.error(f"MEMBERS names architectures the zoo does not have: {', '.join(unknown)} "
                     f"(zoo.ARCHITECTURES: {', '.join(zoo.ARCHITECTURES)})")
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    folder = args.keep or tempfile.mkdtemp(prefix="bench_export-")
    os.makedirs(folder, exist_ok=True)
    try:
        threads = args.threads or "TensorFlow's default (--threads 0)"
        print(f"TensorFlow {tf.__version__}, {counted(os.cpu_count(), 'CPU')}, threads {threads}; "
              f"building {counted(args.members, 'member')}", flush=True)
        members = build_members(args.members, folder)
        names = [str(c) for c in range(CLASSES)]
        rng = np.random.default_rng(0)
        check = rng.random((8, args.image_size, args.image_size, 3), dtype=np.float32)
        t = time.perf_counter()
        save_export(members, names, os.path.join(folder, "ensemble"), check_images=check)
        print(f"exported the ensemble in {time.perf_counter() - t:.1f} s", flush=True)
        for i, m in enumerate(members):
            save_export([m], names, os.path.join(folder, f"member_{i}"), check_images=check)
        loaded = {"ensemble": tf.saved_model.load(tf_path(os.path.join(folder, "ensemble")))}
        for i in range(len(members)):
            loaded[f"member_{i}"] = tf.saved_model.load(
                tf_path(os.path.join(folder, f"member_{i}")))
        fns = {k: v.signatures["serving_default"] for k, v in loaded.items()}

        ratios = {}
        for batch in (1, 64):
            images = rng.random((batch, args.image_size, args.image_size, 3),
                                dtype=np.float32)
            repeats = args.repeats if batch == 1 else max(5, args.repeats // 2)
            times = latencies(fns, images, repeats)
            lat = {k: statistics.median(v) for k, v in times.items()}
            members_sum = sum(v for k, v in lat.items() if k != "ensemble")
            ratios[batch] = lat["ensemble"] / members_sum
            # The same ratio per round (ensemble and members timed back to back), which
            # cancels slow drifts in the machine's load.
            paired = statistics.median(
                e / sum(times[f"member_{i}"][r] for i in range(len(members)))
                for r, e in enumerate(times["ensemble"]))
            parts = ", ".join(f"{lat[f'member_{i}'] * 1e3:.2f}" for i in range(len(members)))
            print(f"batch {batch:>2} ({args.image_size} px, median of {repeats}): members "
                  f"[{parts}] ms, sum {members_sum * 1e3:.2f} ms; ensemble "
                  f"{lat['ensemble'] * 1e3:.2f} ms; ratio {ratios[batch]:.3f} "
                  f"(per-round median {paired:.3f}; target <= 1.1)", flush=True)
        ok = all(r <= 1.1 for r in ratios.values())
        print(f"ratio batch 1: {ratios[1]:.3f}, batch 64: {ratios[64]:.3f} -> "
              f"{'met' if ok else 'NOT met'}")
        evaluation_calls(loaded["ensemble"], rng, args)
        range_check_share(loaded["ensemble"], rng, args)
        if args.probes:
            shared_backbone_ratio(members[0], folder, rng, args)
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
