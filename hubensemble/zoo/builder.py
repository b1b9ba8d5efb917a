"""Builds a zoo: plans it, has every module trained (`zoo.workers`) and writes the folder,
under its build lock."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import threading
import time
from types import SimpleNamespace
from typing import Callable

import numpy as np

from hubensemble.errors import HubensembleError, held_stops
from hubensemble.fileio import (atomic_write_json, atomic_write_text, check_dir_target,
                                file_lock, fitted_name, make_dirs, remove_stale_temp_dirs,
                                replace_dir, read_json, temp_dir_for)
from hubensemble.formats import versions
from hubensemble.lockwords import option_word
from hubensemble.optionerror import OptionError
from hubensemble.text import typed
from hubensemble.zoo.arch import ARCHITECTURES, arch_label
from hubensemble.zoo.config import (PRESETS, RECIPE_VERSION, ModelPlan, TrainSpec, ZooConfig,
                                    _spec, plan, preset, recipe_difference, recorded_label,
                                    seed_problem, subtree_index, train_seed, zoo_dir,
                                    zoo_folder_hint)
from hubensemble.zoo.train import subtree_labels
from hubensemble.text import counted, escaped, time_stamp
from hubensemble.zoo.parts import (kept_count, open_parts, partial_dir, record_path,
                                   take_back, weights_path)
from hubensemble.zoo.upstream import UpstreamData
from hubensemble.kerasenv import with_stage_settings
# The training of the modules (re-exported: the tests and docs name them zoo.builder.*).
from hubensemble.zoo.workers import (TRAIN_THREADS, _import_tensorflow,  # noqa: F401
                                     _intra_op_threads, _phase, _run_parallel, _run_task,
                                     _step_note, _Task, _trains_here,
                                     unguarded_main_call)

log = logging.getLogger(__name__)

MARKER = "zoo.json"  # written last inside a finished zoo: its presence means "complete"


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
    leaves a half zoo; each module is written whole into OUT.partial beside it first
    (`zoo.parts`), which a stopped build leaves and the next build of the same recipe reuses
    (saying "N of M modules built before, reused"; one of another recipe removes it, with a
    warning that says what differs). It runs under the folder's build lock (`build_lock`:
    OUT.lock beside it, removed as the build ends; a second build of the same folder waits,
    then finds it current). A build ends with a line saying what it built where
    (`built_words`; on stderr with ``progress``).
    ``hook(event, module_name)`` is called in this process at "start" and "exported" of
    every module (for tests; `zoo build` tells by it whether anything was built).
    ``purpose`` (e.g. the handle whose resolution started the build) is shown on the
    progress bar: "building zoo 'demo' for zoo:demo/NAME".

    Called from a script's top level outside an ``if __name__ == "__main__":`` block, where
    each spawned worker would run the script again, it trains in this process instead (a
    warning says why) or, when this process's TensorFlow cannot, refuses before any worker
    starts (`_workers_for_caller`; docs/zoo.md).

    Raises HubensembleError for an unknown preset or architecture, a bad plan, a seed that
    derives one outside numpy's range (`seed_problem`), ``workers`` < 1, an unguarded
    caller that this process cannot train for (above), or an
    ``out_dir`` that is a file or a non-empty folder that is not a zoo; OptionError for one
    written as Windows writes paths, on Linux or macOS (`stageargs.windows_path`); DataError
    for bad upstream data; OSError when the zoo.json of a zoo at ``out_dir`` cannot be read;
    TimeoutError when another build holds the lock longer than BUILD_LOCK_TIMEOUT;
    whatever a worker raises (the build stops and leaves no zoo; the modules it finished stay
    in OUT.partial); TypeError, before anything, for a ``config`` that is neither a str nor
    a ZooConfig or an ``out_dir`` that is neither a path (str, os.PathLike) nor None
    (`text.typed`: build_zoo(3) was told to give an output folder). Paper
    section 2.3 / appendix A.1 (generalists and experts), scaled down: docs/zoo.md.
    """
    typed("build_zoo", "config", config, (str, ZooConfig), "a preset name (a str: "
          + ", ".join(map(repr, PRESETS)) + ") or a hubensemble.zoo.ZooConfig",
          example=repr("demo"))
    typed("build_zoo", "out_dir", out_dir, (str, os.PathLike, type(None)),
          "a folder path (str or os.PathLike) or None", example=repr("my-zoo"))
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
        raise OptionError(problem)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):  # 0 and -1 trained one at a time
        raise OptionError(f"workers must be an integer >= 1, got {workers!r}")  # a ValueError
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
    parts = partial_dir(out_dir)
    started = time.time()
    try:
        built = _build_into(config, tmp, parts, progress=progress, hook=hook, workers=workers,
                            purpose=purpose)
        # Files put into the folder while the zoo was built are not deleted with it.
        replace_dir(tmp, out_dir, what="the zoo",
                    replaceable=lambda old: not any(os.scandir(old)) or is_zoo(old))
    except BaseException:
        with held_stops():  # whole: a second Ctrl-C here left the temp folder behind
            take_back(tmp, parts)  # stopped as the modules were moved in: not lost
            shutil.rmtree(tmp, ignore_errors=True)
            _said_kept(parts)
        raise
    shutil.rmtree(parts, ignore_errors=True)  # its modules are in the zoo now
    # The build's last line says what it made where; the bar's last state ("fine-tuning
    # r6x1-expert-digits: 100% 4/4") was the end of it.
    from hubensemble.terminal import say

    say(SimpleNamespace(quiet=not progress), built_words(
        config.name, built, out_dir, time.time() - started))
    return out_dir


def _said_kept(parts: pathlib.Path):
    """After a build stopped: the partial folder `parts` is removed when it holds no finished
    module, else a warning says they are kept and the same build reuses them."""
    kept = kept_count(parts)
    if not kept:
        shutil.rmtree(parts, ignore_errors=True)
        return
    one = kept == 1
    log.warning("the build stopped; its %s %s kept in %s: the same build again reuses %s "
                "and trains only the rest (another recipe or seed removes %s)",
                counted(kept, "finished module"), "is" if one else "are", escaped(parts),
                "it" if one else "them", "it" if one else "them")


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


def _default_workers(plans, config) -> int:
    # Starting a worker (a fresh interpreter importing TensorFlow) costs seconds: worth it
    # only when there is more training than that to share.
    images = sum(spec.steps * spec.batch_size for spec in (_spec_of(config, p) for p in plans))
    if images < 50_000:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _workers_for_caller(workers: int) -> int:
    """`workers`, or 1 (this process trains) when the main script calls build_zoo outside an
    ``if __name__ == "__main__":`` block (`unguarded_main_call`): each spawned worker would
    run it again from the top and build again. HubensembleError with the guard to add when
    this process cannot train either (its TensorFlow runs other threads: `_trains_here`)."""
    where = unguarded_main_call()
    if where is None:
        return workers
    said = (f"build_zoo is called at {where}, outside an `if __name__ == \"__main__\":` "
            f"block, and a worker process starts by running that script again from the top "
            "(multiprocessing's spawn), which would build the zoo again in each")
    if _trains_here(1):
        log.warning("training the zoo's modules in this process, not on %s: %s; put the "
                    "call under `if __name__ == \"__main__\":` to train on workers",
                    counted(workers, "worker process", "worker processes"), said)
        return 1
    raise HubensembleError(f"{said}; put the call (and what it needs) under `if __name__ == "
                           "\"__main__\":` (to train in this process instead, its TensorFlow "
                           f"would need the workers' {TRAIN_THREADS} intra-op thread; it runs, "
                           f"or will run, {_intra_op_threads()})")


def _build_into(config: ZooConfig, folder: pathlib.Path, parts: pathlib.Path, *, progress, hook,
                workers, purpose) -> int:
    """Builds `config`'s zoo into the (temp) folder `folder`; returns the modules built.

    Each module is trained into the partial folder `parts` (`zoo.parts`: written whole, its
    record last) and moved into `folder` at the end; the modules an earlier, stopped build of
    the same recipe finished there are reused, not trained again."""
    from hubensemble.catalogue_writer import write_catalogue
    from hubensemble.terminal import bar_note, progress_bar

    started = time.time()
    up = config.upstream_data()
    plans = plan(config, up.hierarchy)
    caller_hook = hook or (lambda event, name: None)
    parents = {q.parent for q in plans if q.parent}
    records = open_parts(parts, config, plans, parents)  # {name: record} built before
    todo = [p for p in plans if p.name not in records]
    if records:
        from hubensemble.terminal import say

        say(SimpleNamespace(quiet=not progress), (
            f"zoo {config.name}: {len(records)} of {len(plans)} modules built before, reused "
            f"(kept in {escaped(parts)} by a build that stopped); training the other "
            f"{len(todo)}"))

    def hook(event, name):
        if event == "exported":  # its record last: the module and its weights are whole
            atomic_write_json(record_path(parts, name), records[name])
        caller_hook(event, name)

    workers = _default_workers(todo or plans, config) if workers is None else workers
    workers = max(1, min(workers, len(todo)))
    if todo and not _trains_here(workers):
        workers = _workers_for_caller(workers)
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
                     start=str(weights_path(parts, p.parent)) if p.parent else None,
                     train_seed=seed, out=str(parts / p.name),
                     keep=str(weights_path(parts, p.name)) if p.name in parents else None,
                     meta=meta)

    # A build started by resolving a handle says so: it can take minutes the user did not ask
    # for by name.
    title = f"building zoo {config.name!r} for {purpose}" if purpose else f"zoo {config.name}"
    bar = progress_bar(total=len(plans), desc=title, unit="module", shown=progress)
    if records:
        bar.update(len(records))
    try:
        if not todo:
            pass
        elif _trains_here(workers):
            # Only now: `zoo build` onto a current zoo returns without importing TensorFlow.
            _import_tensorflow()
            for p in todo:
                bar.set_description(f"{title}: {_phase(p)}")
                hook("start", p.name)

                def report(step, steps, logs):
                    # bar_note: tqdm's set_postfix_str redrew a live bar at every step
                    bar_note(bar, _step_note(step, steps, logs))

                records[p.name] = _run_task(task_for(p), report=report)
                hook("exported", p.name)
                bar.update(1)
        else:
            _run_parallel(todo, task_for, data_for, records, workers, bar, hook, title)
    finally:
        bar.close()
    shutil.rmtree(work)
    if input_size is None:  # every module reused: the size they were trained at
        input_size = tuple(records[plans[0].name]["input_size"])
    for p in plans:  # whole folders, renamed: the zoo is complete only with its zoo.json
        os.rename(parts / p.name, folder / p.name)
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


def _spec_of(config: ZooConfig, p: ModelPlan) -> TrainSpec:
    table = config.generalist_train if p.family == "generalist" else config.expert_train
    return table[p.arch]


def _hierarchy_yaml(up: UpstreamData) -> str:
    import yaml

    return (f"# Label hierarchy of the upstream data {up.name}: sub-tree -> leaf classes.\n"
            + yaml.safe_dump(up.hierarchy, sort_keys=False, allow_unicode=True, width=100))
