"""One process, many threads: the library's blocks that set and restore state (whether bars
show, the root logger's guard, level and handlers, Python's warnings captured) overlap in two
threads and leave each thread, and the process after, as they found them
(`terminal.showing`, `terminal.terminal_log`, `terminal.root_last_resort`,
`threads.follows_caller`). The overlap is forced with events: A enters, B enters, A leaves,
B leaves (no sleeps)."""

import argparse
import concurrent.futures
import io
import logging
import threading

from hubensemble import terminal
from hubensemble.threads import caller_thread, follows_caller


def _shown() -> bool:
    """Whether a bar of work deep in a call (`command_bar`) would be drawn here."""
    bar = terminal.command_bar(total=1, desc="work", file=io.StringIO())
    shown = not bar.disable
    bar.close()
    return shown


def _overlap(block_a, block_b, inside_a=lambda: None, inside_b=lambda: None):
    """Runs `block_a()` in thread A and `block_b()` in thread B (context managers), in the
    order A enters, B enters, A leaves, B leaves; `inside_a`/`inside_b` run in each block
    just before it is left. Returns {"a": …, "b": …}: what each inside function returned."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    said, errors = {}, []

    def a():
        try:
            with block_a():
                a_in.set()
                assert b_in.wait(30)
                said["a"] = inside_a()
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)
        finally:
            a_in.set()
            a_out.set()

    def b():
        try:
            assert a_in.wait(30)
            with block_b():
                b_in.set()
                assert a_out.wait(30)
                said["b"] = inside_b()
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)
        finally:
            b_in.set()

    threads = [threading.Thread(target=f, name=f"overlap-{f.__name__}") for f in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads), errors
    return said


def test_two_threads_overlapping_library_calls_leave_the_bars_each_caller_asked_for():
    """CI run 75: `_SHOWING` was one dict of the process, saved and restored by every
    library call (`library_progress`); A entering fit(progress=False), B entering one, A
    leaving, B leaving restored it out of order to "decided, no bars", and every later
    fit(progress=True) in the process drew none. Each call tree has its own now: after the
    overlap a progress=True call shows its bars, and inside it each thread had its own
    (B's progress=True beside A's progress=False)."""
    said = _overlap(lambda: terminal.library_progress(False),
                    lambda: terminal.library_progress(True), _shown, _shown)
    assert said == {"a": False, "b": True}
    said = _overlap(lambda: terminal.library_progress(False),
                    lambda: terminal.library_progress(False), _shown, _shown)
    assert said == {"a": False, "b": False}
    with terminal.library_progress(True):
        assert _shown()
    assert not _shown()  # nothing decided outside a call: a bare internal call shows none


def test_a_worker_threads_bar_follows_the_caller_that_started_it():
    """Work the library hands to a thread (a deadline thread, `caller_thread`; a pool's
    task, `follows_caller`) draws its bars as its caller asked: a ThreadPoolExecutor's
    function starts in an empty context, where nothing decided; `follows_caller` runs it in
    a copy of its caller's. A caller's own plain thread starts with nothing decided."""
    from hubensemble.hub.remote import call_with_deadline

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for progress in (True, False):
            with terminal.library_progress(progress):
                assert pool.submit(follows_caller(_shown)).result(30) is progress
                assert list(pool.map(follows_caller(lambda _: _shown()), range(4))) == [
                    progress] * 4  # one copy of the context per call: run at once
                assert call_with_deadline(_shown, timeout=30) is progress
                shown = []
                thread = caller_thread(lambda: shown.append(_shown()), name="worker")
                thread.start()
                thread.join(30)
                assert shown == [progress]
                plain = []
                thread = threading.Thread(target=lambda: plain.append(_shown()))
                thread.start()
                thread.join(30)
                assert plain == [False]
        with terminal.terminal_log(argparse.Namespace(quiet=False, verbose=False)):
            assert pool.submit(follows_caller(_shown)).result(30)
            assert pool.submit(follows_caller(lambda: terminal.showing().command)).result(30)


def _process_state():
    root = logging.getLogger()
    return (list(root.handlers), root.level,
            getattr(logging, "_warnings_showwarning", None) is not None)


def test_two_threads_overlapping_commands_leave_the_process_as_it_was(capsys):
    """`terminal_log` (a command: `cli.main`, tools/vtab.py) set the root level (-v: DEBUG)
    and Python's warnings captured, and restored what it saved: with A (-v) entering, B
    entering, A leaving, B leaving, B put back A's DEBUG level for good. The last to end
    restores the process now, and each command's console prints its own records only: B's
    warning was printed by A's console too (twice), and B's -q did not hide A's."""
    args = {"verbose": argparse.Namespace(quiet=False, verbose=True),
            "quiet": argparse.Namespace(quiet=True, verbose=False),
            "plain": argparse.Namespace(quiet=False, verbose=False)}
    log = logging.getLogger("hubensemble.test_threads")
    before = _process_state()

    def warns(who):
        def inside():
            log.warning("a warning of %s", who)
            return logging.getLogger().level
        return inside

    said = _overlap(lambda: terminal.terminal_log(args["verbose"]),
                    lambda: terminal.terminal_log(args["plain"]), warns("A"), warns("B"))
    assert said == {"a": logging.DEBUG, "b": before[1]}  # A's -v, set back when A ended
    assert _process_state() == before
    err = capsys.readouterr().err
    assert err.count("a warning of A") == 1 and err.count("a warning of B") == 1, err
    _overlap(lambda: terminal.terminal_log(args["quiet"]),
             lambda: terminal.terminal_log(args["plain"]), warns("A"), warns("B"))
    err = capsys.readouterr().err
    assert "a warning of A" not in err and err.count("a warning of B") == 1, err
    assert _process_state() == before


def test_warnings_a_caller_captured_stay_captured_after_a_command():
    """A command (`terminal_log`) turned logging's capture of Python's warnings off at its
    end, also when the caller (a notebook, a web service) had turned it on before."""
    logging.captureWarnings(True)
    try:
        with terminal.terminal_log(argparse.Namespace(quiet=True, verbose=False)):
            pass
        assert getattr(logging, "_warnings_showwarning", None) is not None
    finally:
        logging.captureWarnings(False)


def test_two_threads_overlapping_stage_calls_keep_the_root_guard_while_either_runs():
    """`root_last_resort` (every stage function) added its guard to a bare root and removed
    it itself: A adds it, B finds a handler and adds none, A removes it, and B ran on a bare
    root (absl's basicConfig then left a handler printing every INFO record after). The
    guard stays while any thread's block runs, and goes with the last."""
    root = logging.getLogger()
    saved = list(root.handlers)
    for handler in saved:
        root.removeHandler(handler)
    try:
        said = _overlap(terminal.root_last_resort, terminal.root_last_resort,
                        lambda: list(root.handlers), lambda: list(root.handlers))
        assert [type(h) for h in said["a"]] == [terminal.LastResort], said
        assert said["b"] == said["a"], said
        assert root.handlers == []
    finally:
        for handler in saved:
            root.addHandler(handler)


def test_two_threads_decoding_through_pillow_leave_the_warnings_filters_as_they_were():
    """Pillow's decodes (a TIFF: outside TensorFlow's graph decode, `decode_bytes`) record
    its warnings in a catch_warnings block with an "always" filter; Python keeps one filter
    list per process, and two threads' overlapping blocks put it back out of order (measured:
    two threads of 3,000 decodes left the "always" filter, and a later warning of the process
    was not shown). The library's blocks are held apart now (`threads.warnings_block`). Thread
    switches are made frequent so that the blocks do overlap."""
    import sys
    import warnings

    import numpy as np
    from PIL import Image

    from hubensemble.data.decode import decode_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, "TIFF")
    data, errors = buffer.getvalue(), []
    before = (list(warnings.filters), warnings.showwarning)

    def decodes():
        try:
            for _ in range(2000):
                decode_bytes(data, name="x.tif")
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=decodes) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert not errors and not any(t.is_alive() for t in threads), errors
    assert (list(warnings.filters), warnings.showwarning) == before


def test_the_library_changes_pythons_warnings_filters_only_in_a_warnings_block():
    """Every block of the library that changes Python's warnings filters is a
    `threads.warnings_block` (held apart from the others), none a bare catch_warnings."""
    import pathlib

    import hubensemble

    root = pathlib.Path(hubensemble.__file__).parent
    bare = [str(p.relative_to(root)) for p in root.rglob("*.py")
            if p.name != "threads.py" and "catch_warnings(" in p.read_text(encoding="utf-8")]
    assert bare == [], bare


def test_two_threads_training_members_get_the_weights_each_gets_alone(module_factory):
    """keras.utils.set_random_seed seeds the process's random states and
    keras.backend.clear_session resets every thread's Keras state: two `fit`s in two
    threads (seeds 0 and 1) each got other numbers than alone, one trial's model and data
    drawn from the other's seed. Here thread A's member (seed 5) waits, between its seed and
    its model, for thread B's (seed 6) to be seeded too, as far as B can get: B waits for
    A's training to end now (`threads.training_block`), and both equal their training alone.
    (A waits at most a few seconds: B never gets there with the fix.)"""
    import numpy as np

    from hubensemble import tune
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import load_task
    from hubensemble.hyperrule import HParams, get_profile

    quick, digits = get_profile("quick"), load_task("sklearn:digits")
    spec = ModuleSpec(name="m", handle=module_factory("threads_m", seed=1), family="expert")

    def weights(seed, callbacks=()):
        hp = HParams(**quick.scale({"lr": 0.1, "steps": 2500}), seed=seed)
        model = tune.fit_member(spec, digits, hp, profile=quick, callbacks=callbacks)
        return [np.asarray(w) for w in model.trainable_weights]

    alone = {5: weights(5), 6: weights(6)}
    a_seeded, b_seeded, got, errors = threading.Event(), threading.Event(), {}, []

    class Phase(tune.train.TrialProgress):
        def __init__(self, seeded, then=None):
            super().__init__(None, "member")
            self.seeded, self.then = seeded, then

        def phase(self, text):
            if not self.seeded.is_set():
                self.seeded.set()
                if self.then is not None:
                    self.then.wait(5)

    def train(seed, callbacks, after=None):
        try:
            if after is not None:
                assert after.wait(60)
            got[seed] = weights(seed, callbacks)
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)

    threads = [threading.Thread(target=train, args=(5, (Phase(a_seeded, b_seeded),))),
               threading.Thread(target=train, args=(6, (Phase(b_seeded),), a_seeded))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not errors and not any(t.is_alive() for t in threads), errors
    for seed in (5, 6):
        for before, after in zip(alone[seed], got[seed]):
            np.testing.assert_array_equal(before, after)


def _held_in_a_thread(block):
    """Enters `block()` in a thread of its own and holds it; returns (release, thread)."""
    entered, release, errors = threading.Event(), threading.Event(), []

    def hold():
        try:
            with block():
                entered.set()
                assert release.wait(60)
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)
        finally:
            entered.set()

    thread = threading.Thread(target=hold, name="sweep-a")
    thread.start()
    assert entered.wait(60) and not errors, errors
    return release, thread


def test_a_distributed_sweep_and_another_sweep_never_share_a_process_at_once(monkeypatch):
    """Keras Tuner reads its role from os.environ: thread B's plain sweep beside thread A's
    distributed one printed (True, True), a second chief. Each is refused while the other
    runs, the variables are restored once the block ends, and plain sweeps run side by side."""
    import os

    import pytest

    from hubensemble.errors import HubensembleError
    from hubensemble.tune.distributed import KT_VARS, kerastuner_env

    for k in KT_VARS:
        monkeypatch.delenv(k, raising=False)
    release, a = _held_in_a_thread(lambda: kerastuner_env("chief", "127.0.0.1:8000"))
    try:
        with pytest.raises(HubensembleError, match=(
                r"a distributed sweep \(tuner id 'chief', thread 'sweep-a'\) runs in this "
                r"process.*Run it in another process, or after that sweep ends")):
            with kerastuner_env(None, None) as (distributed, chief):
                pytest.fail(f"a plain sweep ran as distributed={distributed}, chief={chief}")
        with pytest.raises(HubensembleError, match="tuner id 'chief'"):
            kerastuner_env("tuner0", "127.0.0.1:8000").__enter__()
        assert os.environ["KERASTUNER_TUNER_ID"] == "chief"  # A's, as it set them
    finally:
        release.set()
        a.join(60)
    assert not any(k in os.environ for k in KT_VARS)
    release, a = _held_in_a_thread(lambda: kerastuner_env(None, None))
    try:
        with kerastuner_env(None, None) as (distributed, chief):  # two plain sweeps: fine
            assert (distributed, chief) == (False, False)
        with pytest.raises(HubensembleError, match=(
                r"1 other sweep runs in it now \(threads\).*Run the distributed sweep "
                r"\(tuner_id\) in a process of its own")):
            kerastuner_env("chief", "127.0.0.1:8000").__enter__()
        assert not any(k in os.environ for k in KT_VARS)
    finally:
        release.set()
        a.join(60)
    with kerastuner_env("chief", "127.0.0.1:8000") as (distributed, chief):
        assert (distributed, chief) == (True, True)
    assert not any(k in os.environ for k in KT_VARS)


def test_a_stage_collects_only_what_it_made_and_frees_the_rest_after(tmp_path):
    """Every stage function (`runwriter.writes_run`: tune, export, …; and fit's stages) runs
    with the objects older than it frozen (`threads.old_objects_frozen`): Keras'
    clear_session before every trial and Python's own collections then skip the ~400,000
    objects of TensorFlow's import (0.15-0.25 s a full collection). A cycle made inside is
    still freed by a collection inside; an old one that became garbage inside is freed after;
    a caller's own freeze stays; a stage in another thread only runs unfrozen sooner."""
    import gc
    import weakref

    from hubensemble.runwriter import writes_run

    class Cycle:
        def __init__(self):
            self.me = self

    old = Cycle()
    gone_old = weakref.ref(old)
    seen = []

    @writes_run("tune")
    def stage(run_dir):
        nonlocal old
        frozen = gc.get_freeze_count()
        new = Cycle()
        gone_new = weakref.ref(new)
        old = new = None
        gc.collect()
        seen.append((frozen, gone_new() is None, gone_old() is None))

    assert gc.get_freeze_count() == 0
    stage(tmp_path / "no-run")  # no run's files there: no lock, the freeze all the same
    (frozen, new_freed, old_freed), = seen
    assert frozen > 0 and new_freed and not old_freed, seen
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone_old() is None
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        stage(tmp_path / "no-run")
        # The caller's freeze stays, inside and after (unfrozen, the count reads 0). Not
        # ">= mine": a frozen object is still freed when its last reference goes (CI run 102:
        # 2 of 679,246 went during the stage, after the tests that ran before it there).
        assert seen[-1][0] > 0.9 * mine and gc.get_freeze_count() > 0.9 * mine, (seen, mine)
    finally:
        gc.unfreeze()


def test_a_stop_is_raised_while_a_batch_is_still_being_embedded(tmp_path):
    """rank's SIGTERM waited for the TensorFlow batch it came in (26.8 s of VGG16 at
    --batch-size 64 on 2 loaded cores): a signal's handler runs in the main thread between
    bytecodes, never inside TensorFlow's call. The batch now runs in a thread of its own
    (`rank.embeddings._stoppable`), and the stop is raised while the batch is still blocked
    (a py_function that waits for an event, set only once the stop was seen or after
    10 s), and the batch ends afterwards."""
    import os
    import signal

    import numpy as np

    from hubensemble import errors
    from hubensemble._tf import tensorflow as tf
    from hubensemble.rank import embeddings

    started, release, returned = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def block(images):
        started.set()
        release.wait(10)
        returned.set()
        return np.zeros((images.shape[0], 4), np.float32)

    def runtime(images, training=False):
        out = tf.py_function(block, [images], tf.float32)
        out.set_shape([None, 4])
        return out

    def stop():
        if started.wait(60):
            os.kill(os.getpid(), signal.SIGTERM)

    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3), np.float32),
                                               np.zeros(2))).batch(2)
    sender = threading.Thread(target=stop)
    sender.start()
    try:
        with errors.sigterm_interrupts():
            try:
                embeddings._forward_all(runtime, data, (8, 8), total=2)
            except errors.Terminated:
                seen.append(returned.is_set())  # False: raised while the batch still ran
    finally:
        release.set()
        sender.join()
    assert seen == [False], seen
