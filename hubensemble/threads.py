"""Threads the library starts run in its caller's context (`follows_caller`,
`caller_thread`): the context variables of the call that started them (whether bars show,
`terminal.showing`; command line or Python words, `lockwords.on_command_line`; the module
warnings' sinks, `hub.notices`) hold there as in the caller. A plain `threading.Thread`
or a `concurrent.futures` pool starts its function in an empty context, where a download
bar in a deadline thread (`hub.remote.call_with_deadline`) was drawn as if nothing had
decided it, whatever the caller's progress=False or -q said. And the library's blocks that
change Python's warnings filters, one per process, run one at a time (`warnings_block`).
TensorFlow-free."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import threading
import warnings
from typing import Callable, ParamSpec, TypeVar

from hubensemble.errors import held_stops

_P = ParamSpec("_P")
_R = TypeVar("_R")


def follows_caller(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """`function`, to be called in another thread (a `threading.Thread`'s target, a
    ThreadPoolExecutor's ``submit``/``map``) in a copy of the context of the caller of
    `follows_caller` (taken now, as `contextvars.copy_context`): each call runs in its own
    copy of it (a context cannot be entered by two threads at once), so what the function
    sets there stays its own and never reaches the caller."""
    context = contextvars.copy_context()

    @functools.wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return context.copy().run(function, *args, **kwargs)

    return call


def caller_thread(target: Callable[[], object], *, name: str,
                  daemon: bool = True) -> threading.Thread:
    """A `threading.Thread` (not started) named `name` that runs `target()` in a copy of
    the caller's context (`follows_caller`)."""
    return threading.Thread(target=follows_caller(target), name=name, daemon=daemon)


#: Held by every block of the library that changes Python's warnings filters
#: (`warnings_block`), whichever thread runs it.
_WARNINGS_LOCK = threading.RLock()


@contextlib.contextmanager
def warnings_block(*, record: bool = False):
    """`warnings.catch_warnings(record=record)` (yields its list of caught warnings when
    `record`, else None), one block of the library at a time in the process. Python (before
    3.14) keeps one filter list and one `showwarning` per process, which catch_warnings
    saves as it starts and puts back as it ends: two threads' overlapping blocks put them
    back out of order (measured: two threads decoding 3,000 images each through Pillow,
    `decode._decode_with_pil`, left its "always" filter in the process, and a later warning
    of the process was not shown). Blocks of the library wait for each other here (each is
    short: a decode, a plan, a classifier fit); a caller's own catch_warnings in another
    thread is not held apart (docs/reliability.md, threads).

    Its end is whole: a Ctrl-C in catch_warnings' end left its filters or its recording
    showwarning on the process, so a stop that cuts it has that end run again (it sets
    the saved filters and showwarning back: run twice, the same) before it goes on. It
    held the stop signals instead (errors.held_stops: nine signal calls), which cost each
    Pillow decode about 20 us: the block 22 us before, 1.6 after, a 32x32 PNG's decode 55 us
    before, 30 after (tools/benchmarks/bench_stops.py, 2 loaded cores)."""
    with _WARNINGS_LOCK:
        block = warnings.catch_warnings(record=record)
        caught = block.__enter__()
        try:
            yield caught
        finally:
            try:
                block.__exit__(None, None, None)
            except BaseException:  # a stop cut it (a second Ctrl-C): whole, then the stop
                block.__exit__(None, None, None)
                raise


#: Held while a model is seeded and trained from Keras' state of the process
#: (`training_block`), whichever thread trains it.
_TRAINING_LOCK = threading.RLock()


@contextlib.contextmanager
def training_block():
    """While the block runs, no other thread of the process seeds, clears or trains from
    Keras' global state (reentrant: a trial that refits a member holds it once more).
    `keras.utils.set_random_seed` seeds the process's Python, NumPy and TensorFlow random
    states, and `keras.backend.clear_session` replaces the Keras state of every thread:
    two `fit`s in two threads (tiny modules, quick profile, seeds 0 and 1) each got other
    numbers than alone (seed 0's ensemble accuracy 0.0979 alone, 0.1004 beside seed 1's;
    two members trained at once: weights off by about 1e-6), their trials overlapping on
    that shared state. Trials of several threads take turns here (each uses every core
    already); rank, ensemble, export and evaluate do not wait."""
    with _TRAINING_LOCK:
        yield


def one_training(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates a function that seeds or clears Keras' state and trains from it: the
    whole call is a `training_block`. The signature stays the function's."""

    @functools.wraps(function)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with training_block():
            return function(*args, **kwargs)

    return call


#: Keras Tuner's distributed role of the process (`sweep_block`): the (role, thread name) of
#: the block that set its variables, and how many sweeps without one run.
_SWEEPS_LOCK = threading.Lock()
_SWEEPS: dict = {"role": None, "plain": 0}


@contextlib.contextmanager
def sweep_block(role: str | None, refusal: Callable[[tuple[str, str] | None, int], Exception]):
    """A sweep in the process while the block runs: `role` (a tuner id: "chief", "tuner0",
    …) for one that sets Keras Tuner's distributed variables (KERASTUNER_*, which Keras
    Tuner reads from `os.environ`, the process's: its Tuner, oracle and client), None for one
    that sets none. A role is refused while any other sweep runs in the process, and a sweep
    without one while a role is set: raises ``refusal(held, plain)`` (`held`: (role, thread
    name) of the running distributed sweep, else None; `plain`: how many sweeps without a
    role run). Before, a plain `run_tune` in a thread beside a distributed sweep read that
    sweep's role as its own (a second "chief"), and two blocks restoring the variables out
    of order could leave them set."""
    with _SWEEPS_LOCK:
        held, plain = _SWEEPS["role"], _SWEEPS["plain"]
        if held is not None or (role is not None and plain):
            raise refusal(held, plain)
        if role is None:
            _SWEEPS["plain"] += 1
        else:
            _SWEEPS["role"] = (role, threading.current_thread().name)
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the role set, and every later
        with held_stops(), _SWEEPS_LOCK:  # sweep of the process refused
            if role is None:
                _SWEEPS["plain"] -= 1
            else:
                _SWEEPS["role"] = None


@contextlib.contextmanager
def old_objects_frozen():
    """Within the block, Python's cyclic garbage collection scans only the objects made
    inside it (`gc.freeze` of the older ones), the collections Keras' `clear_session` runs
    before every trial and Python's own automatic ones alike.

    A full collection also walks the ~400,000 objects TensorFlow's import made (more in a
    process that has run other work, as a test session or a notebook): 0.15-0.25 s of CPU
    each time on this project's 2-core machine. run_rank collects after every module, and
    `keras.backend.clear_session` collects before every trial, export retraining and
    distillation, so that the last model's reference cycles are freed before the next one
    is built (peak memory flat in the number of modules and trials): those objects are made
    inside the block and still collected. Old objects that become garbage inside the block
    are freed after it. A freeze already in place (the caller's own, e.g. before forking
    workers, or an outer block: a stage of `fit`) is left alone; several threads' blocks
    only leave later ones unfrozen sooner (slower collections, same objects freed). No
    collection before the freeze: it would cost the full scan once more.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left every object frozen, never
        with held_stops():  # collected again
            gc.unfreeze()
