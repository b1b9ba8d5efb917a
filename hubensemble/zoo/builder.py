"""Builds a zoo: trains every module of the plan (in worker processes) and writes the folder."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import pathlib
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np

from hubensemble.errors import HubensembleError, held_stops
from hubensemble.fileio import (atomic_write_json, atomic_write_text, check_dir_target,
                                file_lock, fitted_name, make_dirs, remove_stale_temp_dirs,
                                replace_dir, read_json, temp_dir_for)
from hubensemble.formats import versions
from hubensemble.lockwords import option_word
from hubensemble.zoo.arch import ARCHITECTURES, ArchSpec, arch_label, build_backbone
from hubensemble.zoo.config import (RECIPE_VERSION, ModelPlan, TrainSpec, ZooConfig, _spec, plan,
                                    preset, recipe_difference, recorded_label, seed_problem,
                                    subtree_index, train_seed, zoo_dir, zoo_folder_hint)
from hubensemble.zoo.train import Trainer, subtree_labels
from hubensemble.text import escaped, time_stamp
from hubensemble.zoo.upstream import UpstreamData
from hubensemble.kerasenv import with_stage_settings

log = logging.getLogger(__name__)

MARKER = "zoo.json"  # written last inside a finished zoo: its presence means "complete"

#: TensorFlow threads (intra-op and inter-op) every module trains with, whatever the core
#: count and ``workers``: the intra-op threads decide how the CPU kernels split their sums,
#: so the weights' last bits (1, 2 and 4 gave three `quick` zoos, oneDNN and op determinism
#: on or off alike: docs/zoo.md, "What decides the weights"). One is what the two-core
#: default build, which the README's figures come from, always gave each worker. Recorded
#: in zoo.json as "train_threads"; a zoo without it or with another is not current.
TRAIN_THREADS = 1


def is_zoo(path) -> bool:
    """True for a finished zoo folder (its marker file ``zoo.json`` is written last)."""
    return os.path.isfile(os.path.join(os.fspath(path), MARKER))


def recorded_config(path):
    """The configuration the finished zoo at ``path`` records (its zoo.json's "config"), or
    None when zoo.json is not JSON or has none. Raises OSError when it cannot be read."""
    try:
        return read_json(os.path.join(os.fspath(path), MARKER)).get("config")
    except (ValueError, AttributeError):  # half-edited by hand, or not a JSON object
        return None


def zoo_difference(path, config: ZooConfig) -> str | None:
    """None when ``path`` holds the complete zoo ``config`` builds (`is_zoo`, and its zoo.json
    records the same recipe: `config.recipe_difference`); else why not: "no finished zoo" or
    what differs. Raises OSError when zoo.json exists but cannot be read."""
    if not is_zoo(path):
        return "no finished zoo"
    return recipe_difference(recorded_config(path), config) or threads_difference(path)


def threads_difference(path) -> str | None:
    """None when the finished zoo at ``path`` records in its zoo.json that its modules
    trained with TRAIN_THREADS TensorFlow threads ("train_threads"); else what it records
    instead, in words. Zoos built before the count was fixed trained with
    cpu_count // workers threads (other weights on another core count) and record none.
    Raises OSError when zoo.json cannot be read."""
    try:
        threads = read_json(os.path.join(os.fspath(path), MARKER)).get("train_threads")
    except (ValueError, AttributeError):
        threads = None
    if threads == TRAIN_THREADS:
        return None
    was = ("no TensorFlow thread count (built before hubensemble fixed it)" if threads is None
           else f"{threads!r} TensorFlow threads per module")
    return f"its zoo.json records {was}, the build trains with {TRAIN_THREADS}"


# Seconds a process waits for another one that is building the same zoo right now.
BUILD_LOCK_TIMEOUT = 3600.0

#: The build locks this process holds ({lock's real path: the holding thread's id}), so a
#: nested use in the holding thread (`ensure_zoo` calls `build_zoo`) does not wait on itself.
_HELD: dict[str, int] = {}


def build_lock_path(out_dir) -> pathlib.Path:
    """The lock a build of the zoo folder `out_dir` holds: OUT.lock beside it (for a preset's
    cache folder, $HUBENSEMBLE_ZOO_DIR/NAME.lock); OUT cut past 255 bytes (`fitted_name`,
    room left for its LOCK.holder)."""
    out_dir = pathlib.Path(out_dir)
    return out_dir.parent / fitted_name(out_dir.name, ".lock", spare=len(".holder"))


@contextlib.contextmanager
def build_lock(out_dir, timeout: float = BUILD_LOCK_TIMEOUT):
    """Holds the build lock of the zoo folder `out_dir` (`build_lock_path`, a kernel lock:
    `fileio.file_lock`) while the block runs, waiting up to `timeout` seconds for another
    process building it (a warning says so first). The lock file is removed as the block
    ends, while still held, as a sweep's locks are (`file_lock` re-takes a lock whose file was
    removed while it waited): an ended build left $HUBENSEMBLE_ZOO_DIR/NAME.lock behind, and
    one killed (SIGKILL) leaves it free, for the next build to take and remove. A nested use
    in the holding thread is a no-op. TimeoutError names the lock file."""
    lock = build_lock_path(out_dir)
    key = os.path.realpath(lock)
    if _HELD.get(key) == threading.get_ident():
        yield
        return
    try:
        held = file_lock(lock, timeout=0)
        held.__enter__()
    except TimeoutError:
        log.warning("waiting for another process building %s to end (it holds %s; up to "
                    "%.0f s)", escaped(out_dir), escaped(lock), timeout)
        held = file_lock(lock, timeout=timeout)
        held.__enter__()
    _HELD[key] = threading.get_ident()
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the lock held and in _HELD (the
        with held_stops():  # next build of the thread taken as nested)
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.remove(lock)
            held.__exit__(None, None, None)


def remove_free_build_lock(out_dir) -> bool:
    """Removes the build lock file of the zoo folder `out_dir` (`build_lock_path`) when no
    process holds it: taken first (without waiting) and removed while held, as `build_lock`
    removes its own (`fileio.file_lock`: a process waiting on the removed file takes the lock
    again on the path). A build killed between its zoo's final rename and that removal left
    it, and a current zoo is not built again to remove it. One held (a build starting, this
    process's own) stays, and a folder that cannot be written keeps it. True when removed."""
    lock = build_lock_path(out_dir)
    if not os.path.lexists(lock) or os.path.realpath(lock) in _HELD:
        return False
    try:
        with file_lock(lock, timeout=0):
            os.remove(lock)
    except (TimeoutError, OSError):  # held by another process, or a read-only cache
        return False
    return True


def _check_out_dir(out_dir: pathlib.Path, preset_name: str):
    check_dir_target(out_dir, zoo_folder_hint(out_dir, preset_name))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_zoo(out_dir):
        raise HubensembleError(f"{out_dir} exists and is not a zoo (no {MARKER}); choose an "
                               "empty or new folder, or delete it first")


@with_stage_settings
def build_zoo(config: str | ZooConfig, out_dir=None, *, seed: int | None = None,
              progress: bool = True, workers: int | None = None,
              hook: Callable[[str, str], None] | None = None,
              purpose: str | None = None) -> pathlib.Path:
    """Builds a zoo: pre-trains the generalists, fine-tunes the experts, exports each as a
    reusable SavedModel and writes ``catalogue.yaml``; returns the zoo folder.

    ``config`` is a preset name (``demo``, ``quick``) or a ZooConfig (own upstream data:
    ``ZooConfig(..., upstream=UpstreamData.from_npz(...))``). ``out_dir`` defaults to the
    preset's cache folder (see ``zoo_dir``), for a preset name with its default seed only.
    ``seed`` overrides the config's seed.

    A folder that already holds the complete zoo of the same recipe (`zoo_difference`: its
    zoo.json records the configuration this build would record, seeds and RECIPE_VERSION
    included) is left as it is and returned at once, with a one-line note (`complete_words`,
    on stderr with ``progress``; INFO, not a warning: it is what was asked for): nothing is
    trained and TensorFlow is not imported. A complete zoo of another recipe is rebuilt,
    after a warning that names what differs; it is replaced only when the new one is
    complete. `ensure_zoo` reuses a cached zoo by the same test.

    ``workers`` processes train modules side by side (default: one per CPU core, at most 4,
    or none for a small zoo; TensorFlow keeps barely more than one core busy with these small
    networks, so two single-threaded trainings nearly double the speed on two cores);
    ``workers=1`` trains in this process when its TensorFlow runs (or, not started yet, will
    run) TRAIN_THREADS intra-op threads, else in one worker process. Every module trains with
    TRAIN_THREADS TensorFlow threads, so the same zoo (the same bits, on one kind of CPU
    and TensorFlow) comes out of any core count and any ``workers``. The build happens in a
    temp folder next to out_dir that is renamed at the end, so an interrupted build never
    leaves a half zoo, and under the folder's build lock (`build_lock`: OUT.lock beside it,
    removed as the build ends; a second build of the same folder waits, then finds it
    current). A build ends
    with a line saying what it built where (`built_words`; on stderr with ``progress``).
    ``hook(event, module_name)`` is called in this process at "start" and "exported" of
    every module (for tests; `zoo build` tells by it whether anything was built).
    ``purpose`` (e.g. the handle whose resolution started the build) is shown on the
    progress bar: "building zoo 'demo' for zoo:demo/NAME".

    Raises HubensembleError for an unknown preset or architecture, a bad plan, a seed that
    derives one outside numpy's range (`seed_problem`), ``workers`` < 1 or an
    ``out_dir`` that is a file or a non-empty folder that is not a zoo; OptionError for one
    written as Windows writes paths, on Linux or macOS (`stageargs.windows_path`); DataError
    for bad upstream data; OSError when the zoo.json of a zoo at ``out_dir`` cannot be read;
    TimeoutError when another build holds the lock longer than BUILD_LOCK_TIMEOUT;
    whatever a worker raises (the build stops and leaves nothing). Paper
    section 2.3 / appendix A.1 (generalists and experts), scaled down: docs/zoo.md.
    """
    if out_dir is None and not (isinstance(config, str) and not seed):
        # The cache folder of a preset is what zoo:PRESET/NAME handles load: only the
        # preset's own recipe and seed may go there.
        raise HubensembleError(f"give an output folder ({option_word('--out DIR', 'out_dir')}) "
                               "for a zoo that is not a preset with its default seed")
    if isinstance(config, str):
        config = preset(config, 0 if seed is None else seed)
    elif seed is not None:
        config = _reseed(config, seed)
    if problem := seed_problem(config):  # before any work: numpy refused it mid-build
        raise HubensembleError(problem)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):  # 0 and -1 trained one at a time
        raise HubensembleError(f"workers must be an integer >= 1, got {workers!r}")
    if isinstance(out_dir, (str, os.PathLike)) and isinstance(os.fspath(out_dir), str):
        # D:\zoo on Linux: what to write (OptionError), not a folder of that name here
        from hubensemble.stageargs import windows_path
        windows_path("build_zoo", "out_dir", os.fspath(out_dir))
    out_dir = pathlib.Path(out_dir) if out_dir is not None else zoo_dir(config.name)
    out_dir = out_dir.expanduser().absolute()
    _check_out_dir(out_dir, config.name)
    make_dirs(out_dir.parent, zoo_folder_hint(out_dir, config.name))  # the lock's folder
    with build_lock(out_dir):
        return _build_locked(config, out_dir, progress=progress, workers=workers, hook=hook,
                             purpose=purpose)


def _build_locked(config: ZooConfig, out_dir: pathlib.Path, *, progress, workers, hook,
                  purpose) -> pathlib.Path:
    """`build_zoo` of `config` into `out_dir` (checked), its build lock held."""
    _check_out_dir(out_dir, config.name)  # again: another build may have ended meanwhile
    if is_zoo(out_dir):
        # Rebuilding takes minutes and would train the same recipe again: only its last bits
        # could differ (training is not bit-reproducible across machines).
        recorded = recorded_config(out_dir)
        why = recipe_difference(recorded, config) or threads_difference(out_dir)
        if why is None:
            # Not a warning: the zoo asked for is there, which is what the user wanted (a
            # WARNING line and exit 0 read as a half success). A note, silent with -q.
            from hubensemble.terminal import say

            say(SimpleNamespace(quiet=not progress), complete_words(recorded_label(recorded),
                                                                    out_dir))
            return out_dir
        log.warning("replacing the %s in %s, another recipe: %s (the old zoo stays until the "
                    "new one is complete)", recorded_label(recorded), escaped(out_dir), why)
    remove_stale_temp_dirs(out_dir)
    tmp = pathlib.Path(temp_dir_for(out_dir))
    tmp.mkdir()
    started = time.time()
    try:
        built = _build_into(config, tmp, progress=progress, hook=hook, workers=workers,
                            purpose=purpose)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The build's last line says what it made where; the bar's last state ("fine-tuning
    # r6x1-expert-digits: 100% 4/4") was the end of it.
    from hubensemble.terminal import say

    say(SimpleNamespace(quiet=not progress), built_words(
        config.name, built, out_dir, time.time() - started))
    return out_dir


def complete_words(label: str, out_dir) -> str:
    """The one line of a build onto the complete zoo it would build (`label`:
    `recorded_label`'s "'quick' zoo (seed 0, recipe 1)"): "DIR already holds the complete
    'quick' zoo (seed 0, recipe 1): nothing to build (delete DIR to build it again); its
    catalogue (for --catalogue): DIR/catalogue.yaml" ("for fit's catalogue=" to a Python
    caller, as `built_words`)."""
    use = option_word("--catalogue", "fit's catalogue=")
    return (f"{escaped(out_dir)} already holds the complete {label}: nothing to build (delete "
            f"the folder to build it again); its catalogue (for {use}): "
            f"{escaped(os.path.join(out_dir, 'catalogue.yaml'))}")


def built_words(name: str, modules: int, out_dir, seconds: float) -> str:
    """The line a finished build ends with: "zoo quick: 4 modules built into DIR in 19 s; its
    catalogue (for --catalogue): DIR/catalogue.yaml" on the command line, "(for fit's
    catalogue=)" to a Python caller of `build_zoo`, who never typed a flag."""
    use = option_word("--catalogue", "fit's catalogue=")
    return (f"zoo {name}: {modules} module{'s' * (modules != 1)} built into "
            f"{escaped(out_dir)} in {seconds:.0f} s; its catalogue (for {use}): "
            f"{escaped(os.path.join(out_dir, 'catalogue.yaml'))}")


def _reseed(config: ZooConfig, seed: int) -> ZooConfig:
    shift = seed - config.seed
    return dataclasses.replace(
        config, seed=seed,
        generalists={a: tuple(s + shift for s in seeds) for a, seeds in config.generalists.items()})


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


def _default_workers(plans, config) -> int:
    # Starting a worker (a fresh interpreter importing TensorFlow) costs seconds: worth it
    # only when there is more training than that to share.
    images = sum(spec.steps * spec.batch_size for spec in (_spec_of(config, p) for p in plans))
    if images < 50_000:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _build_into(config: ZooConfig, folder: pathlib.Path, *, progress, hook, workers,
                purpose) -> int:
    """Builds `config`'s zoo into the (temp) folder `folder`; returns the modules built."""
    from hubensemble.catalogue_writer import write_catalogue
    from hubensemble.terminal import bar_note, progress_bar

    started = time.time()
    up = config.upstream_data()
    plans = plan(config, up.hierarchy)
    hook = hook or (lambda event, name: None)
    workers = _default_workers(plans, config) if workers is None else workers
    workers = min(workers, len(plans))
    work = folder / ".work"  # data and parent weights handed to the workers; removed at the end
    work.mkdir()
    data_files, input_size = {}, None

    def data_for(p: ModelPlan) -> str:
        # Generalists all see the same upstream examples (only their seed differs, as in the
        # paper); the experts of one sub-tree share theirs.
        nonlocal input_size
        spec = _spec_of(config, p)
        key = f"{p.subtree or 'all'}-{spec.examples}"
        if key not in data_files:
            classes = None if p.subtree is None else up.hierarchy[p.subtree]
            images, labels = up.sample(spec.examples, config.data_seed + subtree_index(
                up.hierarchy, p.subtree), classes)
            if classes is not None:
                labels = subtree_labels(labels, up.class_names, classes)
            input_size = tuple(int(v) for v in images.shape[1:3])
            path = work / f"{key}.npz"
            np.savez(path, images=images, labels=labels)
            data_files[key] = str(path)
        return data_files[key]

    parents = {q.parent for q in plans if q.parent}

    def task_for(p: ModelPlan) -> _Task:
        classes = up.class_names if p.subtree is None else up.hierarchy[p.subtree]
        spec = _spec_of(config, p)
        seed = train_seed(p, up.hierarchy)
        data = data_for(p)  # sets input_size
        # The module declares its catalogue entry's fields (hub.introspect.DECLARED_FIELDS),
        # so `catalogue add` of its folder writes the entry the zoo's catalogue has.
        entry = _spec(p, up.name, str(folder / p.name), input_size=input_size,
                      license=config.license).to_json()
        meta = {"name": p.name, "family": p.family,
                "architecture": arch_label(ARCHITECTURES[p.arch]), "arch": p.arch,
                "subtree": p.subtree, "parent": p.parent, "seed": p.seed, "upstream": up.name,
                "classes": len(classes), "output_dim": ARCHITECTURES[p.arch].output_dim,
                "input_size": entry["input_size"], "value_range": entry["value_range"],
                "license": entry["license"], "tags": entry["tags"],
                "train": spec.to_json(), "zoo": config.name, "recipe_version": RECIPE_VERSION}
        return _Task(plan=p, arch=ARCHITECTURES[p.arch], spec=spec, n_classes=len(classes),
                     head_width=len(up.class_names), data=data,
                     start=str(work / f"{p.parent}.npz") if p.parent else None,
                     train_seed=seed, out=str(folder / p.name),
                     keep=str(work / f"{p.name}.npz") if p.name in parents else None,
                     meta=meta)

    records = {}
    # A build started by resolving a handle says so: it can take minutes the user did not ask
    # for by name.
    title = f"building zoo {config.name!r} for {purpose}" if purpose else f"zoo {config.name}"
    bar = progress_bar(total=len(plans), desc=title, unit="module", shown=progress)
    try:
        if _trains_here(workers):
            # Only now: `zoo build` onto a current zoo returns without importing TensorFlow.
            _import_tensorflow()
            for p in plans:
                bar.set_description(f"{title}: {_phase(p)}")
                hook("start", p.name)

                def report(step, steps, logs):
                    # bar_note: tqdm's set_postfix_str redrew a live bar at every step
                    bar_note(bar, _step_note(step, steps, logs))

                records[p.name] = _run_task(task_for(p), report=report)
                hook("exported", p.name)
                bar.update(1)
        else:
            _run_parallel(plans, task_for, data_for, records, workers, bar, hook, title)
    finally:
        bar.close()
    shutil.rmtree(work)
    specs = []
    for p in plans:
        r = records[p.name]
        specs.append(_spec(p, up.name, str(folder / p.name), input_size=input_size,
                           sha256=r["sha256"], params=r["params"], license=config.license))
    write_catalogue(folder / "catalogue.yaml", specs, header_comment=(
        f"Zoo {config.name!r} built by hubensemble.zoo.build_zoo (recipe {RECIPE_VERSION}) "
        f"from upstream data {up.name}.\nHandles are relative to this file's folder."))
    atomic_write_text(folder / "hierarchy.yaml", _hierarchy_yaml(up))
    atomic_write_json(folder / MARKER, {
        "config": config.to_json(), "modules": [records[p.name] for p in plans],
        "workers": workers, "train_threads": TRAIN_THREADS,
        "seconds": round(time.time() - started, 2),
        "built": time_stamp(), "versions": versions()})
    return len(plans)


def _phase(p: ModelPlan) -> str:
    """What training `p` is, on the build's bar: "pre-training NAME" (a generalist) or
    "fine-tuning NAME" (an expert)."""
    return f"{'pre-training' if p.family == 'generalist' else 'fine-tuning'} {p.name}"


def _spec_of(config: ZooConfig, p: ModelPlan) -> TrainSpec:
    table = config.generalist_train if p.family == "generalist" else config.expert_train
    return table[p.arch]


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
    lists it when this runs (CI once saw a worker outlive a stop that only ended the listed
    ones), so all of them are ended and reaped.
    """
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
    else:
        pool.shutdown(wait=False, cancel_futures=True)

    def end(signal_first):
        workers = [p for p in multiprocessing.active_children() if p not in others]
        for proc in workers:
            (proc.terminate if signal_first else proc.kill)()
        for proc in workers:
            proc.join(timeout=30)
            if proc.is_alive():  # SIGTERM is not handled by the workers; a last resort
                proc.kill()
                proc.join()

    end(signal_first=True)
    # The executor's manager thread joins the same workers when it finds the pool broken,
    # at the same time as the loop above. A test once found a worker still listed after the
    # stop (not reproduced since): once every worker is dead that thread ends, so wait for
    # it, then end whatever is still listed.
    pool.shutdown(wait=True)
    end(signal_first=False)


def _hierarchy_yaml(up: UpstreamData) -> str:
    import yaml

    return (f"# Label hierarchy of the upstream data {up.name}: sub-tree -> leaf classes.\n"
            + yaml.safe_dump(up.hierarchy, sort_keys=False, allow_unicode=True, width=100))
