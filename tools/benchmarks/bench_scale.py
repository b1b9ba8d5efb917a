"""Scale of `hubensemble rank`: seconds per module, peak memory and cache size against the
number of modules, a 2,000-entry catalogue, and shards merged into the same ranking.

    python tools/benchmarks/bench_scale.py [--sizes 250,500,1000,2000] [--budget 1800]
        [--images 100] [--shards 4] [--keep DIR]

1. Writes max(--sizes) tiny, distinct modules and their catalogue. Three templates (one
   3x3 convolution of width 4, 8 or 16, then global average pooling: 4/8/16-d embeddings)
   are written once with `hub.write_hub_module`; every module is a template's SavedModel
   graph with its own random variables written by `tf.raw_ops.SaveV2` (~10 ms a module
   instead of ~1 s): each has its own content fingerprint, its own embeddings and scores.
   Times parsing and validating the whole catalogue (`catalogue.load_catalogue`, and the
   `hubensemble catalogue validate` command as a process).
2. For each N in --sizes, a fresh process ranks the first N entries with `rank.run_rank`
   (a cold, empty embedding cache; TensorFlow warmed up on another module first) and
   reports seconds per module (wall time of run_rank / N; and its CPU time / N, the cost on
   a shared machine, where the wall time follows the other load), the median of the
   modules' own seconds, the mean seconds of the first
   and the last quarter of the modules (the cost of a module must not grow with the modules
   already ranked), the peak RSS (VmHWM) of the process, and the sizes of the cache and of
   the run folder. Sizes that would not finish within --budget seconds (30 minutes by
   default, from the seconds per module measured so far) are extrapolated linearly from
   the largest measured size and marked "extrapolated".
3. The largest measured catalogue is ranked again by `hubensemble rank --shard i/S` in S
   concurrent processes (each with its own fresh cache, as on S machines), merged with
   `hubensemble rank merge`, and compared with the unsharded ranking: names, statuses,
   scores and order of every row, the selection and the saved kNN predictions.

Targets (issue 18): seconds per module at 2,000 <= 1.1x that at 250; peak RSS at 2,000
<= 1.1x that at 250; the catalogue parsed and validated in under a second; the merged
shards give the identical ranking. Nothing is asserted; the figures are printed. --keep must
be a new or empty folder: runs and caches left there would be resumed, not measured cold.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from benchargs import command_logging, description, integer, integers, keep_argument, number
from benchfiles import folder_mb
from bench_rank import rss_mb  # the one reader of /proc/self/status (a sibling script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WIDTHS = (4, 8, 16)
SIDE = 32
CLASSES = 10


def line(text=""):
    print(text, flush=True)


def write_templates(root):
    """One hub module per width in WIDTHS (write_hub_module); returns their folders."""
    import keras

    from hubensemble.hub import write_hub_module

    paths = []
    for width in WIDTHS:
        keras.utils.set_random_seed(width)
        inp = keras.Input((None, None, 3))
        h = keras.layers.Conv2D(width, 3, strides=2, activation="relu")(inp)
        h = keras.layers.GlobalAveragePooling2D()(h)
        paths.append(write_hub_module(keras.Model(inp, h),
                                      os.path.join(root, f"template{width}")))
    return paths


def write_modules(root, count, templates):
    """`count` distinct modules under root/modules/: template graph + fresh variables."""
    import tensorflow as tf

    readers = []
    for path in templates:
        reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
        dtypes = reader.get_variable_to_dtype_map()
        names = sorted(dtypes)
        readers.append((path, names, [reader.get_tensor(n) for n in names],
                        [dtypes[n] == tf.float32 for n in names]))
    paths = []
    for i in range(count):
        template, names, values, floats = readers[i % len(readers)]
        path = os.path.join(root, "modules", f"m{i:05d}")
        os.makedirs(os.path.join(path, "variables"), exist_ok=True)
        shutil.copyfile(os.path.join(template, "saved_model.pb"),
                        os.path.join(path, "saved_model.pb"))
        rng = np.random.default_rng(1000 + i)
        tensors = [tf.constant(rng.normal(0.0, 0.5, v.shape).astype(np.float32) if f else v)
                   for v, f in zip(values, floats)]
        tf.raw_ops.SaveV2(prefix=os.path.join(path, "variables", "variables"),
                          tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=tensors)
        paths.append(path)
    return paths


def write_data(root, images):
    """npz:PATH of a small task: `images` training and 50 validation images, 32x32 px."""
    rng = np.random.default_rng(0)

    def part(n):
        y = np.arange(n) % CLASSES
        x = rng.integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8)
        x[np.arange(n), :, :, y % 3] //= 2  # some class signal
        rows = np.arange(SIDE)[None, :] < 4 + 2 * y[:, None]  # a band as high as the class
        x[rows] = 255
        return x, y

    x, y = part(images)
    xv, yv = part(50)
    path = os.path.join(root, "data.npz")
    np.savez(path, x_train=x, y_train=y, x_val=xv, y_val=yv)
    return "npz:" + path


def write_catalogue_file(root, paths):
    """catalogue.yaml of every module (input_size 32x32); returns its path."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.catalogue_writer import write_catalogue

    specs = [ModuleSpec(name=f"m{i:05d}", handle=p, input_size=(SIDE, SIDE),
                        family="generalist", architecture=f"conv{WIDTHS[i % len(WIDTHS)]}",
                        seed=i, tags=("bench",))
             for i, p in enumerate(paths)]
    path = os.path.join(root, "catalogue.yaml")
    write_catalogue(path, specs, header_comment="bench_scale: tiny distinct modules")
    return path


def bench_catalogue(path, repeats=5):
    """Seconds to parse and validate the catalogue, in-process (median) and as a command."""
    import statistics

    from hubensemble.catalogue import load_catalogue

    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        specs = load_catalogue(path)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "hubensemble", "catalogue", "validate", path],
                         capture_output=True, text=True)
    t_cmd = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import hubensemble.cli"], capture_output=True)
    t_start = time.perf_counter() - t
    line(f"1. catalogue of {len(specs)} entries ({os.path.getsize(path) / 1024:.0f} KB): "
         f"parsed and validated in {statistics.median(times):.3f} s wall, "
         f"{statistics.median(cpu):.3f} s CPU (load_catalogue in this process, TensorFlow "
         f"imported; medians of {repeats}; on a shared CPU the CPU time is the cost) "
         f"[target < 1 s]; `hubensemble catalogue validate` {t_cmd:.2f} s as "
         f"a process (exit {out.returncode}; Python start-up and imports alone "
         f"{t_start:.2f} s)")


# --- 2. ranking N modules in one process ---------------------------------------------------------

def child(args):
    """Ranks the first --child N entries in this process; prints one JSON line."""
    from hubensemble.catalogue import ModuleSpec, load_catalogue
    from hubensemble.rank import embed, run_rank
    from hubensemble.rundir import DataArgs

    data_args = DataArgs(spec=args.data)
    task = data_args.load()
    specs = load_catalogue(args.catalogue)[:args.child]
    # TensorFlow's one-off costs (kernels, first trace) on a module outside the catalogue.
    embed(ModuleSpec(name="warmup", handle=args.warmup, input_size=(SIDE, SIDE)), task,
          profile="cpu", use_cache=False)
    before = rss_mb()
    t, c = time.perf_counter(), time.process_time()
    ranking = run_rank(args.out, specs, task, profile="cpu", cache_dir=args.cache,
                       data_args=data_args, progress=False)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    rows = sorted(ranking.rows, key=lambda r: r["index"])
    quarter = max(1, len(rows) // 4)
    print(json.dumps({
        "n": len(specs), "wall": wall, "cpu": cpu, "before": before, **rss_mb(),
        "median": float(np.median([r["seconds"] for r in rows])),
        "first": float(np.mean([r["seconds"] for r in rows[:quarter]])),
        "last": float(np.mean([r["seconds"] for r in rows[-quarter:]])),
        "ok": len(ranking.ok_rows), "failed": len(ranking.failed_rows)}))


def rank_in_process(root, n, data, catalogue, warmup):
    """Figures of a fresh process ranking the first n modules (cold cache)."""
    out, cache = os.path.join(root, f"run{n}"), os.path.join(root, f"cache{n}")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(n),
                           "--data", data, "--catalogue", catalogue, "--warmup", warmup,
                           "--out", out, "--cache", cache],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"ranking {n} modules failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    got.update(cache_mb=folder_mb(cache), run_mb=folder_mb(out), out=out)
    return got


def bench_sizes(root, sizes, budget, data, catalogue, warmup):
    """Ranks each size in turn while the budget allows; returns (measured, all rows)."""
    start = time.perf_counter()
    measured, rows = [], []
    for n in sizes:
        spent = time.perf_counter() - start
        if measured:
            per = measured[-1]["wall"] / measured[-1]["n"]
            # ~40 s of process start-up, TensorFlow import and warm-up per size.
            if spent + per * n + 40 > budget:
                rows.append({"n": n, "extrapolated": True})
                continue
        got = rank_in_process(root, n, data, catalogue, warmup)
        measured.append(got)
        rows.append(got)
        line(f"   N={n}: {got['wall'] / n:.3f} s/module ({got['wall']:.0f} s; CPU "
             f"{got['cpu'] / n:.3f} s/module), peak RSS "
             f"{got['VmHWM']:.0f} MB, cache {got['cache_mb']:.1f} MB "
             f"({time.perf_counter() - start:.0f} s of the {budget:.0f} s budget spent)")
    return measured, rows


def report_sizes(measured, rows):
    """The table of step 2, with extrapolated sizes marked, and the targets."""
    base = measured[0]
    last = measured[-1]
    line(f"2. ranking N modules, one fresh process each (cold cache, {base['ok']} ok of "
         f"{base['n']} at N={base['n']}):")
    line(f"   {'N':>5} {'s/module':>9} {'CPU s/mod':>9} {'median':>7} {'first 1/4':>10} "
         f"{'last 1/4':>9} {'peak RSS MB':>12} "
         f"{'RSS growth MB':>14} {'cache MB':>9} {'run MB':>7}")
    for r in rows:
        if r.get("extrapolated"):
            # Linear in N from the largest measured size (per-module cost and sizes).
            f = r["n"] / last["n"]
            line(f"   {r['n']:>5} {last['wall'] / last['n']:>9.3f} "
                 f"{last['cpu'] / last['n']:>9.3f} {'':>7} {'':>10} {'':>9} "
                 f"{last['VmHWM']:>12.0f} {'':>14} {last['cache_mb'] * f:>9.1f} "
                 f"{last['run_mb'] * f:>7.1f}   extrapolated (did not fit the budget)")
            continue
        line(f"   {r['n']:>5} {r['wall'] / r['n']:>9.3f} {r['cpu'] / r['n']:>9.3f} "
             f"{r['median']:>7.3f} {r['first']:>10.3f} {r['last']:>9.3f} "
             f"{r['VmHWM']:>12.0f} {r['VmHWM'] - r['before']['VmRSS']:>14.0f} "
             f"{r['cache_mb']:>9.1f} {r['run_mb']:>7.1f}")
    top = rows[-1]
    mark = " (extrapolated)" if top.get("extrapolated") else ""
    ref = top if not mark else last
    line(f"   s/module at N={top['n']} / at N={base['n']}: "
         f"{(ref['wall'] / ref['n']) / (base['wall'] / base['n']):.2f}{mark} wall, "
         f"{(ref['cpu'] / ref['n']) / (base['cpu'] / base['n']):.2f}{mark} CPU [target <= 1.1]; "
         f"peak RSS ratio {ref['VmHWM'] / base['VmHWM']:.2f}{mark} [target <= 1.1]; within "
         f"the largest measured run, last quarter / first quarter of the modules "
         f"{last['last'] / last['first']:.2f} [no growth: ~1]")


# --- 3. shards ---------------------------------------------------------------------------------

def bench_shards(root, shards, n, data, catalogue, whole_dir):
    """Ranks the first n entries in `shards` concurrent processes, merges, compares."""
    from hubensemble.catalogue import load_catalogue
    from hubensemble.catalogue_writer import write_catalogue
    from hubensemble.rank import load_knn_predictions, load_ranking

    specs = load_catalogue(catalogue)[:n]
    part = os.path.join(root, f"catalogue{n}.yaml")
    write_catalogue(part, specs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "hubensemble", "rank", "-q",
                               "--catalogue", part, "--data", data, "--profile", "cpu",
                               "--shard", f"{i}/{shards}", "--out",
                               os.path.join(root, f"shard{i}"), "--cache-dir",
                               os.path.join(root, f"shard-cache{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
             for i in range(shards)]
    for i, p in enumerate(procs):
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"shard {i}/{shards} failed:\n{err[-3000:]}")
    t_shards = time.perf_counter() - t
    merged_dir = os.path.join(root, "merged")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "hubensemble", "rank", "merge", "-q",
                          *[os.path.join(root, f"shard{i}") for i in range(shards)],
                          "--out", merged_dir], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"rank merge failed:\n{out.stderr[-3000:]}")
    t_merge = time.perf_counter() - t
    merged, whole = load_ranking(merged_dir), load_ranking(whole_dir)

    def key(r):
        return [(row["name"], row["status"], row["score"]) for row in r.rows]

    same_rows = key(merged) == key(whole)
    same_sel = merged.selected == whole.selected
    got, want = load_knn_predictions(merged_dir), load_knn_predictions(whole_dir)
    same_pred = (sorted(got) == sorted(want)
                 and all(np.array_equal(got[name], want[name]) for name in want))
    line(f"3. {n} modules in {shards} shards (`rank --shard i/{shards}`, {shards} concurrent "
         f"processes on {os.cpu_count()} CPUs, fresh caches): {t_shards:.0f} s, "
         f"`rank merge` {t_merge:.1f} s; merged ranking identical to the unsharded one: "
         f"rows (name, status, score, order) {same_rows}, selection {same_sel}, kNN "
         f"predictions {same_pred}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    # A size twice would rank the same N twice into the same folders (the second a warm
    # resume, not a measurement); 0 ranks nothing, and the sizes are measured in order.
    parser.add_argument("--sizes", type=integers(1, what="module counts"),
                        default=[250, 500, 1000, 2000],
                        help="numbers of modules to rank, comma-separated, each once (any "
                             "order: measured from the smallest; default: 250,500,1000,2000)")
    parser.add_argument("--budget", type=number(above=0), default=1800.0,
                        help="seconds for step 2; sizes that do not fit are extrapolated "
                             "(default: 1800)")
    parser.add_argument("--images", default=100, help=f"training images, at least {2 * CLASSES}",
                        type=integer(2 * CLASSES, why=f" (ranking needs 2 training images per "
                                     f"class: {CLASSES} classes, image i of class i % {CLASSES})"))
    parser.add_argument("--shards", type=integer(1), default=4)
    keep_argument(parser)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    for name in ("--data", "--catalogue", "--warmup", "--out", "--cache"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.shards > min(args.sizes):
        # Step 3 shards the largest size measured within the budget, which may be the
        # smallest; a shard without a module is refused by `rank --shard` (after step 2).
        parser.error(f"argument --shards: must be at most the smallest of --sizes "
                     f"({min(args.sizes)}): step 3 may shard that many modules and every "
                     f"shard needs one, got {args.shards}")

    sizes = sorted(args.sizes)
    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="bench_scale-")
    os.makedirs(root, exist_ok=True)
    try:
        line(f"bench_scale: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
             f"{args.images} training images of {SIDE}x{SIDE} px, sizes {sizes}")
        t = time.perf_counter()
        templates = write_templates(os.path.join(root, "templates"))
        warmup = templates[0]
        paths = write_modules(root, sizes[-1], templates)
        data = write_data(root, args.images)
        catalogue = write_catalogue_file(root, paths)
        line(f"   wrote {len(paths)} modules, the data and the catalogue in "
             f"{time.perf_counter() - t:.0f} s")
        bench_catalogue(catalogue)
        measured, rows = bench_sizes(root, sizes, args.budget, data, catalogue, warmup)
        report_sizes(measured, rows)
        bench_shards(root, args.shards, measured[-1]["n"], data, catalogue,
                     measured[-1]["out"])
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        main()
