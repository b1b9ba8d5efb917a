"""Trains a zoo's modules: one task per module (`_Task`, `_run_task`), in the builder's own
process or on a pool of worker processes (`_run_parallel`), each with TRAIN_THREADS
TensorFlow threads; the workers' progress files the builder's bar reads."""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import dataclasses
import functools
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from hubensemble.fileio import atomic_write_text
from hubensemble.kerasenv import with_stage_settings
from hubensemble.zoo.arch import ArchSpec, build_backbone
from hubensemble.zoo.config import ModelPlan, TrainSpec
from hubensemble.zoo.train import Trainer

#: TensorFlow threads (intra-op and inter-op) every module trains with, whatever the core
#: count and ``workers``: the intra-op threads decide how the CPU kernels split their sums,
#: so the weights' last bits (1, 2 and 4 gave three `quick` zoos, oneDNN and op determinism
#: on or off alike: docs/zoo.md, "What decides the weights"). One is what the two-core
#: default build, which the README's figures come from, always gave each worker. Recorded
#: in zoo.json as "train_threads"; a zoo without it or with another is not current.
TRAIN_THREADS = 1


@dataclass(frozen=True)
class _Task:
    """Everything a worker needs to train and export one module (all of it picklable)."""

    plan: ModelPlan
    arch: ArchSpec            # the spec itself: a worker does not see ARCHITECTURES changes
    spec: TrainSpec
    n_classes: int
    head_width: int
    data: str                 # .npz with the training images and labels
    start: str | None         # .npz with the start weights (experts); None: init from seed
    train_seed: int
    out: str                  # the module's folder
    keep: str | None          # where to save the trained weights (a parent of experts)
    meta: dict
    progress: str | None = None  # a worker's steps, for the builder's bar (`_progress_file`)


#: Seconds between two reads of the workers' progress files by the builder (`_run_parallel`),
#: and at least between two writes of one (`_progress_file`).
PROGRESS_SECONDS = 1.0


def _progress_file(path):
    """A trainer's ``report(step, steps, logs)`` for a worker: writes "step S/N loss L" to
    `path` (atomically: the builder reads it whole or not at all), at most every
    PROGRESS_SECONDS and at the last step. A file, not a pipe or queue shared with the
    builder: a worker that dies or is ended (Ctrl-C) holds no lock and leaves no half
    message behind; the builder only ever reads what a worker wrote last."""
    last = [float("-inf")]

    def report(step, steps, logs):
        now = time.monotonic()
        if step < steps and now - last[0] < PROGRESS_SECONDS:
            return
        last[0] = now
        atomic_write_text(path, _step_note(step, steps, logs), sync=False)

    return report


def _step_note(step, steps, logs) -> str:
    """A module's training progress on the build's bar: "step 120/500 loss 0.412"."""
    return f"step {step}/{steps} loss {logs.get('loss', 0):.3f}"


def _read_progress(path) -> str | None:
    """What a worker last wrote to its progress file (`_progress_file`), or None (none yet)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


@functools.lru_cache(maxsize=None)
def _trainer(arch: ArchSpec, head_width: int, optimizer: str) -> Trainer:
    # One per process and architecture: a worker compiles it once for all its modules.
    return Trainer(arch, head_width, optimizer)


def _save_weights(path, weights):
    np.savez(path, **{f"w{i:04d}": w for i, w in enumerate(weights)})


def _load_weights(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files)]


@with_stage_settings  # a spawned worker's Keras reads keras.json anew
def _run_task(task: _Task, report=None) -> dict:
    """Trains one module and exports it (in a worker process or in the builder's own)."""
    from hubensemble._tf import keras
    from hubensemble.hub.resolvers import file_sha256

    from hubensemble.hub.writer import write_hub_module

    t0 = time.time()
    p, arch = task.plan, task.arch
    if report is None and task.progress is not None:  # a worker's: the builder reads it
        report = _progress_file(task.progress)
    if task.start is None:
        keras.utils.set_random_seed(p.seed)  # the seed's initial weights
        start = build_backbone(arch).get_weights()
    else:
        start = _load_weights(task.start)
    with np.load(task.data) as z:
        images, labels = z["images"], z["labels"]
    trainer = _trainer(arch, task.head_width, task.spec.optimizer)
    keras.utils.set_random_seed(task.train_seed)
    acc = trainer.run(start, images, labels, task.n_classes, task.spec, seed=task.train_seed,
                      report=report)
    weights = trainer.backbone.get_weights()
    if task.keep:
        _save_weights(task.keep, weights)
    train_seconds = time.time() - t0
    # Export a fresh model holding a copy of the weights, named after the module.
    backbone = build_backbone(arch, name=p.name.replace("-", "_"))
    backbone.set_weights(weights)
    params = int(backbone.count_params())
    meta = {**task.meta, "params": params, "train_accuracy": acc}
    write_hub_module(backbone, task.out, metadata=meta)
    sha = file_sha256(os.path.join(task.out, "saved_model.pb"))
    return {**meta, "sha256": sha, "train_seconds": round(train_seconds, 2),
            "seconds": round(time.time() - t0, 2)}


def _import_tensorflow(setup=None):
    """Imports TensorFlow in this process (a worker, or the builder before it trains in its
    own), without its C++ start-up notices (`_tf.import_tensorflow`: all of them with the
    command line's --verbose, _tf.QUIET_ENV); `setup(tf)` runs before the devices start."""
    from hubensemble import _tf

    _tf.import_tensorflow(setup)


def _intra_op_threads() -> int:
    """The intra-op threads of this process's TensorFlow runtime, as it runs or, not started
    yet, will run: its configured count (`tf.config.threading`) when TensorFlow is imported
    and one is set, else TF_NUM_INTRAOP_THREADS, else TensorFlow's default, one per CPU this
    process may run on (`os.sched_getaffinity`; `os.cpu_count` where there is none)."""
    tf = sys.modules.get("tensorflow")
    config = getattr(getattr(tf, "config", None), "threading", None)
    if config is not None:
        n = config.get_intra_op_parallelism_threads()
        if n > 0:
            return n
    try:
        n = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0"))
    except ValueError:  # TensorFlow ignores what is not a number
        n = 0
    if n > 0:
        return n
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _trains_here(workers: int) -> bool:
    """Whether this process trains the modules itself: only one at a time (``workers`` 1)
    and only on a TensorFlow of TRAIN_THREADS intra-op threads (`_intra_op_threads`), as a
    worker's; a started runtime cannot change its count, and the caller's TensorFlow is not
    ours to set. Elsewhere a single worker process trains them: a few seconds to start when
    this process already has TensorFlow (none when it has not: then it imports none)."""
    return workers == 1 and _intra_op_threads() == TRAIN_THREADS


def unguarded_main_call() -> str | None:
    """"FILE:LINE" of the main script's top-level statement that is running this call when a
    spawned worker would run it again, else None. A worker started by multiprocessing's
    "spawn" (the zoo's pool: no forked TensorFlow state) first runs the main script again as
    ``__mp_main__`` (`multiprocessing.spawn.get_preparation_data`: by path, or by module name
    for ``python -m``; neither for a notebook, ``python -c``, the REPL or a package's
    ``__main__``), so a build_zoo called from its top level outside an ``if __name__ ==
    "__main__":`` block is called again in each worker: there it waited on the build's own
    lock for an hour while the build waited on it. Told from the script's source (`ast`):
    None when it cannot be read or parsed, or the call is not from the main thread's script."""
    import multiprocessing.spawn

    main = sys.modules.get("__main__")
    data = multiprocessing.spawn.get_preparation_data("zoo-worker")
    name, path = data.get("init_main_from_name"), data.get("init_main_from_path")
    if main is None or not (path or name):
        return None
    if name and (name == "__main__" or name.endswith(".__main__")):
        return None  # a package's __main__ (python -m hubensemble): spawn runs none
    if path and os.path.splitext(os.path.basename(path))[0] == "ipython":
        return None  # spawn's own exception: IPython's launcher is not run again
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    file = getattr(main, "__file__", None)
    if frame is None or not file:
        return None
    try:
        with open(file, "rb") as f:
            tree = ast.parse(f.read(), filename=file)
    except (OSError, SyntaxError, ValueError):
        return None
    line = frame.f_lineno
    return None if _guarded(tree.body, line) else f"{file}:{line}"


def _is_main_test(test) -> bool:
    """Whether `test` (an ast expression) is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _guarded(body, line) -> bool:
    """Whether `line` lies, within the statements `body`, in the body of an ``if __name__ ==
    "__main__":`` (at any depth of compound statements)."""
    for node in body:
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, ast.If) and _is_main_test(node.test) and any(
                n.lineno <= line <= (n.end_lineno or n.lineno) for n in node.body):
            return True
        blocks = [getattr(node, key, None) or [] for key in ("body", "orelse", "finalbody")]
        blocks += [h.body for h in getattr(node, "handlers", None) or []]
        return any(_guarded(block, line) for block in blocks if block)
    return False


def _init_worker(threads: int):
    import signal

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Ctrl-C belongs to the builder, which terminates the workers and removes the temp folder.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A builder killed outright (SIGKILL) ends no worker, and an idle one waits on its task
    # queue forever (it holds the queue's write end too), keeping the builder's stdout open.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True,
                         name="zoo-builder-watch").start()

    def setup(tf):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    _import_tensorflow(setup)


def _phase(p: ModelPlan) -> str:
    """What training `p` is, on the build's bar: "pre-training NAME" (a generalist) or
    "fine-tuning NAME" (an expert)."""
    return f"{'pre-training' if p.family == 'generalist' else 'fine-tuning'} {p.name}"


def _run_parallel(plans, task_for, prepare, records, workers, bar, hook, title):
    """Trains the plan on a pool of worker processes, one module per worker at a time: the
    generalists first, each parent's experts as soon as its weights exist. While the workers
    train, this process draws the upstream data of the modules that come next. The records
    are keyed by module name, so the result does not depend on which worker finishes first.

    The bar says what the serial build says: its count the modules done, its description
    the phase ("pre-training g0, fine-tuning e1": a line of its own on a file as it
    changes), its note each running module's steps ("g0: step 120/500 loss 0.412"), which
    each worker writes to a file of its own (`_progress_file`) and this process reads every
    PROGRESS_SECONDS; it said only the names of the modules training. A live bar is drawn as
    the serial build's: as the phase changes, at its first note, else once per its interval.
    """
    from hubensemble.terminal import bar_note

    threads = TRAIN_THREADS  # not cpu_count // workers: the weights would follow the cores
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked TF state
    waiting = list(plans)
    running = {}  # future -> module name
    prepared = set()
    said, noted = None, ""  # the bar's description and note (`_run_parallel`'s docstring)
    # The children alive before the pool are not ours to end (see _stop_workers).
    others = set(multiprocessing.active_children())
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx,
                                                  initializer=_init_worker,
                                                  initargs=(threads,))
    try:
        while waiting or running:
            ready = [p for p in waiting if p.parent is None or p.parent in records]
            for p in ready[:workers - len(running)]:
                waiting.remove(p)
                hook("start", p.name)
                task = task_for(p)
                task = dataclasses.replace(task, progress=os.path.join(  # in .work, with its data
                    os.path.dirname(task.data), f"{p.name}.progress"))
                running[pool.submit(_run_task, task)] = (p, task.progress)
            phases = f"{title}: " + ", ".join(_phase(p) for p, _ in running.values())
            if phases != said:  # set_description draws at once: each poll redrew a live bar
                bar.set_description(said := phases)
            notes = [(p.name, _read_progress(path)) for p, path in running.values()]
            text = ", ".join(f"{name}: {note}" for name, note in notes if note)
            if text or noted:  # no note yet: an empty one spent the interval the first awaited
                bar_note(bar, noted := text)
            upcoming = [p for p in waiting if p.name not in prepared]
            # Wait for a module to be done (reading the steps meanwhile), unless there is
            # upstream data to draw.
            done, _ = concurrent.futures.wait(running,
                                              timeout=0 if upcoming else PROGRESS_SECONDS,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            if not done and upcoming:
                prepare(upcoming[0])
                prepared.add(upcoming[0].name)
            for future in done:
                p, path = running.pop(future)
                records[p.name] = future.result()  # re-raises a worker's exception
                last = _read_progress(path)  # its last step, read late or not at all
                bar_note(bar, noted := f"{p.name}: {last}" if last else "")
                with contextlib.suppress(OSError):
                    os.remove(path)
                hook("exported", p.name)
                bar.update(1)
    except BaseException:
        _stop_workers(pool, others)
        raise
    pool.shutdown(wait=True)


def _stop_workers(pool, others: set):
    """Ends the workers now (an error or Ctrl-C): shutdown() alone would wait for the modules
    they are training, minutes for the demo zoo; the workers ignore SIGINT.

    ``others`` are the child processes that were alive before the pool started. Every other
    live child is one of the pool's workers, whether or not the executor's bookkeeping still
    lists it, so all of them are ended.

    Only the executor's manager thread reaps them (it joins the workers once it finds the
    pool broken or shut down); this thread waits on their sentinels, which do not reap, then
    for that thread (``shutdown(wait=True)``). Two threads reaping one child race: the one
    whose waitpid() loses takes the child for alive until the winner stores its exit code, so
    a stop that joined the workers itself while that thread did could return with a dead
    worker still listed by multiprocessing.active_children() (CI run 143; tests/test_zoo.py
    -k 'failing_worker or ctrl_c_during'). ``Executor.terminate_workers`` (Python 3.14)
    signals the workers but leaves their reaping to that thread too, after a
    ``shutdown(wait=False)`` that drops the thread, so it is not used.
    """
    workers = [p for p in multiprocessing.active_children() if p not in others]
    for proc in workers:
        proc.terminate()  # SIGTERM: the workers do not handle it
    late = _wait_for_ends(workers, timeout=30)
    for proc in late:  # a last resort: SIGKILL cannot be ignored
        proc.kill()
    _wait_for_ends(late, timeout=None)
    pool.shutdown(wait=True, cancel_futures=True)  # its manager thread joins the dead workers
    for proc in multiprocessing.active_children():  # none but `others` expected: no race now
        if proc not in others:
            proc.kill()
            proc.join()


def _wait_for_ends(procs, timeout):
    """Waits up to `timeout` seconds (None: no limit) for the processes `procs` to end,
    without reaping them (their sentinels, not join()); returns those still running."""
    from multiprocessing.connection import wait

    deadline = None if timeout is None else time.monotonic() + timeout
    left = {proc.sentinel: proc for proc in procs}
    while left:
        rest = None if deadline is None else deadline - time.monotonic()
        if rest is not None and rest <= 0:
            break
        for sentinel in wait(list(left), rest):
            del left[sentinel]
    return list(left.values())
