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

    print(f"tf {tf.__version__}, {os.cpu_count()} CPU(s); profile: batch "
          f"{profile.batch_size}, crop {tune.train_resolution(task, spec, profile)[1]} px, "
          f"{args.steps} steps per run, {args.repeats} run(s) each")
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
          f"load average {load:.1f} on {os.cpu_count()} CPU(s)")
    if load > (os.cpu_count() or 1):
        print("note: the machine is busier than its CPU count, so each run got whatever share "
              "of the cores other work left it (wall-clock steps/s jump between levels); the "
              "per-CPU-second ratio is the meaningful comparison here")
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
