"""Training throughput inside `tune` vs a plain model.fit of the same model, data and batch.

Usage: python tools/benchmarks/bench_tune.py [--steps 200] [--repeats 6]

Both sides train the same classifier (a small conv module through HubLayer, zero head), on the
same tf.data pipeline (sklearn:digits with the HyperRule crop, batch 32, 64 px), for the same
number of optimizer steps. `tune` is timed by the trial's own ``train_seconds`` (model.fit
only, with its chunked epochs, TensorBoard and NaN-guard callbacks; building the model and
predicting val/test are excluded); the plain fit is one ``model.fit`` call with no callbacks.
Both include their first-step tracing. Runs alternate; the target (>= 0.9) is judged on the
medians of wall-clock steps/s. Steps per CPU-second of this process are printed too: on a
machine shared with other work they compare the two sides independently of the load.

Then the input pipeline's tracing per trial, for an augmentation family with every
distortion and MixUp (max(2, --repeats) trials of other seeds each way): the CPU seconds of
building `tune.training_dataset` (where its batch preparation is traced) as a sweep builds
it (`inputs.kept_preparations`: the first trial traces, the later ones reuse that trace), as
a lone call builds it (`fit_member`: a trace per call, without autograph), and as it was
built up to 2026-12 (a Python map function, converted by autograph and traced per trial);
the trials after the first compared, as ratios to the last, in the same run.
The scratch folder (the module, the run) is deleted at exit, unless a line said a path in it
(a failed trial's "details in …/run/log.txt") or an error stopped the script: then it is kept
and its path printed.
"""

import argparse
import dataclasses
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchargs import command_logging, integer
from hubensemble.text import counted

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def small_module(path):
    import keras

    from hubensemble.hub import write_hub_module

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return write_hub_module(keras.Model(inp, x), path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=integer(1), default=200)
    p.add_argument("--repeats", type=integer(1), default=6)
    args = p.parse_args(argv)

    from hubensemble.hyperrule import PROFILES

    # The cpu profile with every trial exactly --steps long.
    profile = dataclasses.replace(PROFILES["cpu"], name="bench", min_steps=args.steps,
                                  max_steps=args.steps)
    tmp = tempfile.mkdtemp(prefix="bench_tune-")
    named = _Naming(tmp)  # a failed trial's warning names tmp/run/log.txt
    logging.getLogger().addHandler(named)
    kept = True  # an error escaping names files in tmp too (its traceback)
    try:
        code = _bench(args, tmp, profile)
        kept = named.named
        return code
    finally:
        logging.getLogger().removeHandler(named)
        if kept:
            print(f"kept {tmp} (the lines above name files in it); delete it when done",
                  file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


class _Naming(logging.Handler):
    """Whether a log record (a failed trial's warning: "(details in TMP/run/log.txt)") named
    a path in the scratch folder, which is then kept: it was deleted at exit, and the log
    the line sent people to was gone."""

    def __init__(self, folder):
        super().__init__(logging.DEBUG)
        self.folder, self.named = folder, False

    def emit(self, record):
        try:
            self.named = self.named or self.folder in record.getMessage()
        except Exception:  # logging's rule: a failing handler reports, never raises
            self.handleError(record)


def _bench(args, tmp, profile):
    from hubensemble import _tf

    _tf.import_tensorflow()  # as tools/vtab.py: without TensorFlow's oneDNN / CUDA notices
    import tensorflow as tf

    from hubensemble import candidate, tune
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.fileio import atomic_write_json
    from hubensemble.hyperrule import HParams
    from hubensemble.rundir import DataArgs, Run

    spec = ModuleSpec(name="convnet", handle=small_module(os.path.join(tmp, "convnet")),
                      family="generalist")
    run = Run(os.path.join(tmp, "run"))
    data_args = DataArgs(spec="sklearn:digits")
    task = data_args.load()
    run.attach_task(task, data_args)
    run.update(modules={"convnet": spec.to_json()})
    atomic_write_json(run.ranking_json, {
        "metric": "knn", "k": 1, "selected": ["convnet"], "selection": {},
        "modules": [{"name": "convnet", "handle": spec.handle, "status": "ok", "score": 1.0}]})

    print(f"tf {tf.__version__}, {counted(os.cpu_count(), 'CPU')}; profile: batch "
          f"{profile.batch_size}, crop {tune.train_resolution(task, spec, profile)[1]} px, "
          f"{counted(args.steps, 'step')} per run, {counted(args.repeats, 'run')} each")
    tuned, plain, tuned_cpu, plain_cpu = [], [], [], []
    for r in range(args.repeats):
        # inside tune: one more trial of the seeds sweep per repeat
        tune.run_tune(run.path, sweep="seeds", budget=r + 1, profile=profile, strategy="cpu",
                      task=task, progress=False, keep_weights="none")
        rec = candidate.read_candidate(run.candidates, tune.trial_id("seeds", r, "convnet")).record
        tuned.append(rec["steps"] / rec["train_seconds"])
        tuned_cpu.append(rec["steps"] / rec["train_cpu_seconds"])
        hp = HParams.from_json(rec["hparams"])

        # plain: the same model, compile, pipeline and batch, one model.fit
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(hp.seed)
        model = tune.compile_classifier(tune.build_classifier(spec, task.num_classes), hp)
        ds = tune.training_dataset(task, spec, hp, profile=profile)
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(ds, epochs=1, steps_per_epoch=hp.steps, verbose=0, shuffle=False)
        plain.append(hp.steps / (time.perf_counter() - t0))
        plain_cpu.append(hp.steps / (time.process_time() - c0))
        print(f"run {r + 1}: tune {tuned[-1]:.1f} steps/s ({tuned_cpu[-1]:.1f} per CPU-s), "
              f"plain fit {plain[-1]:.1f} steps/s ({plain_cpu[-1]:.1f} per CPU-s)")
    t, f = statistics.median(tuned), statistics.median(plain)
    tc, fc = statistics.median(tuned_cpu), statistics.median(plain_cpu)
    print(f"median wall clock: tune {t:.1f} steps/s, plain model.fit {f:.1f} steps/s, "
          f"ratio {t / f:.3f} (target >= 0.9: {'met' if t / f >= 0.9 else 'NOT met'})")
    # On a shared machine other processes' load swamps wall-clock differences; the CPU time
    # this process spent per step compares the work each side does whatever the load.
    load = os.getloadavg()[0]
    print(f"median per CPU-second: tune {tc:.1f}, plain {fc:.1f}, ratio {tc / fc:.3f}; "
          f"load average {load:.1f} on {counted(os.cpu_count(), 'CPU')}")
    if load > (os.cpu_count() or 1):
        print("note: the machine is busier than its CPU count, so each run got whatever share "
              "of the cores other work left it (wall-clock steps/s jump between levels); the "
              "per-CPU-second ratio is the meaningful comparison here")
    from hubensemble.hyperrule import AugConfig

    # An aug sweep's family with every distortion and MixUp: the HyperRule's resize, crop and
    # flip and the largest graph, one line (the script runs in test_benchmarks too).
    every = AugConfig(crop="random", resize_factor=1.2, flip=True, brightness=0.2, hue=0.1,
                      saturation=(0.5, 1.5), contrast=(0.5, 1.5), mixup_alpha=0.2)
    _tracing(task, spec, profile, dataclasses.replace(hp, augmentation=every),
             max(2, args.repeats))
    return 0


def _tracing(task, spec, profile, hp, trials):
    """Prints the CPU seconds per trial of building the training input pipeline (where its
    batch preparation is traced) three ways, `trials` seeds each (see the module's
    docstring), and their ratios to the converted way's in this run."""
    from hubensemble import tune
    from hubensemble.tune import inputs

    seeds = [dataclasses.replace(hp, seed=hp.seed + 1 + t) for t in range(trials)]

    def cpu(build, trial_hp):
        c0 = time.process_time()
        build(task, spec, trial_hp, profile=profile)
        return time.process_time() - c0

    with inputs.kept_preparations():  # as run_tune: one trace, then reused
        kept = [cpu(tune.training_dataset, s) for s in seeds]
    alone = [cpu(tune.training_dataset, s) for s in seeds]  # as a lone fit_member
    converted = [cpu(_converted_dataset, s) for s in seeds]
    # The later trials' medians are compared: a first call pays once per process what a
    # sweep's later trials do not (kept: its trace; converted: autograph's conversion, cached).
    later = {way: statistics.median(v[1:]) for way, v in
             (("kept", kept), ("alone", alone), ("converted", converted))}
    base = later["converted"]
    print(f"input pipeline tracing (an aug family), CPU s per trial after the first (median of "
          f"{trials - 1}): as a sweep {later['kept']:.3f} (ratio {later['kept'] / base:.3f}), "
          f"alone {later['alone']:.3f} (ratio {later['alone'] / base:.3f}), autograph "
          f"converted {base:.3f}; first trials {kept[0]:.3f}, {alone[0]:.3f}, "
          f"{converted[0]:.3f}")


def _converted_dataset(task, spec, hparams, *, profile):
    """`tune.training_dataset` up to 2026-12: the same stream and preparation, a Python
    function mapped, so tf.data converted it with autograph and traced it anew per trial
    (the seed a constant of its graph)."""
    import tensorflow as tf

    from hubensemble import _tf, augment
    from hubensemble.tune import inputs

    resize, crop = inputs.train_resolution(task, spec, profile)
    data = task
    ds = data.dataset("train", batch_size=hparams.batch_size,
                      image_size=inputs._image_size_arg(data.train, resize), shuffle=True,
                      seed=hparams.seed, repeat=True, uint8=data.train.same_size)
    aug, alpha = hparams.augmentation, hparams.effective_mixup_alpha
    num_classes, flip, seed = task.num_classes, bool(task.flip), int(hparams.seed)

    def prepare(step, batch):
        images, labels = batch
        step_seed = augment.step_seed(seed, step)
        x = augment.train_preprocess(images, resize=resize, crop=crop, flip=flip, aug=aug,
                                     seed_tensor=step_seed)
        y = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if alpha > 0:
            x, y = augment.mixup(x, y, alpha, step_seed)
        return x, y

    return ds.enumerate().map(prepare, num_parallel_calls=_tf.stateful_map_calls()).prefetch(
        tf.data.AUTOTUNE)


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
