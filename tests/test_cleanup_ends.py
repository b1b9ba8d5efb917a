"""A second Ctrl-C as a block's cleanup runs (its `finally`, after a first Ctrl-C stopped the
block) leaves the process's state as the block found it: from Python (a notebook, a script)
the process lives on, and its next call met the half-undone state (a lock still held, an
environment variable or a Keras setting left set, the garbage collector off, fd 2 on a
temporary file, Python's warnings filters of the block). Each cleanup's end is whole
(errors.held_stops), as an earlier change made terminal_log's, root_last_resort's and
sigterm_interrupts' (tests/test_shell_ends.py, CLEANUP_CTRL_C)."""

import subprocess
import sys

import pytest

CLEANUP = """
import contextlib, gc, logging, os, signal, sys, types, warnings

tmp, case = sys.argv[1], sys.argv[2]
stopped, sent = [], []


def second():  # the second Ctrl-C, at the first step of the first one's cleanup
    if stopped and not sent:
        sent.append(1)
        signal.raise_signal(signal.SIGINT)


class Trip:
    # Stands for what a cleanup touches first (a lock, a context variable, a module): its first
    # use after the first Ctrl-C (of the attribute `at`, when given) sends the second.
    def __init__(self, wrapped, at=None):
        object.__setattr__(self, "_wrapped", wrapped)
        object.__setattr__(self, "_at", at)

    def __getattr__(self, name):
        if self._at in (None, name):
            second()
        return getattr(self._wrapped, name)

    def __setattr__(self, name, value):
        if self._at in (None, name):
            second()
        setattr(self._wrapped, name, value)

    def __call__(self, *args, **kwargs):
        second()
        return self._wrapped(*args, **kwargs)

    def __enter__(self):
        second()
        return self._wrapped.__enter__()

    def __exit__(self, *exc):
        second()
        return self._wrapped.__exit__(*exc)

    def __getitem__(self, key):
        return self._wrapped[key]

    def __setitem__(self, key, value):
        self._wrapped[key] = value

    def __delitem__(self, key):
        second()
        del self._wrapped[key]


def tripping(function):  # a function (a method of a class) that trips first
    def call(*args, **kwargs):
        second()
        return function(*args, **kwargs)
    return call


def held(path):
    from hubensemble.fileio import lock_is_held
    return os.path.exists(path) and lock_is_held(path)


def fds():
    return len(os.listdir("/proc/self/fd"))


inside = lambda: None
if case == "fileio.owned_lock":
    from hubensemble import fileio
    path = os.path.join(tmp, ".x.lock")
    fileio.owner_file = Trip(fileio.owner_file)
    block = lambda: fileio.owned_lock(path, {"command": "test"}, RuntimeError)
    state = lambda: (dict(fileio._OWNED), held(path))
elif case == "fileio.file_lock":
    import filelock
    from hubensemble import fileio
    path = os.path.join(tmp, ".x.lock")
    filelock.FileLock.release = tripping(filelock.FileLock.release)
    block = lambda: fileio.file_lock(path)
    state = lambda: held(path)
elif case == "kerasenv.stage_settings":
    from hubensemble import kerasenv
    kerasenv._LOCK = Trip(kerasenv._LOCK)
    block = kerasenv.stage_settings
    state = lambda: dict(kerasenv._state)
elif case == "_tf.quiet_env_restored":
    from hubensemble import _tf
    os.environ.pop(_tf.QUIET_ENV, None)
    _tf.os = Trip(os)
    block = _tf.quiet_env_restored
    inside = lambda: os.environ.__setitem__(_tf.QUIET_ENV, "0")
    state = lambda: os.environ.get(_tf.QUIET_ENV)
elif case == "_tf.native_stderr_to":
    from hubensemble import _tf
    sink = os.open(os.devnull, os.O_WRONLY)
    _tf.os = Trip(os, at="close")  # between fd 2 put back and the saved copy closed
    block = lambda: _tf.native_stderr_to(sink)
    state = lambda: (os.fstat(2).st_ino, fds())  # fd 2 where it was; no descriptor left open
elif case == "_tf.retracing_notice_at_info":
    from hubensemble import _tf
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.removeFilter = Trip(tf_logger.removeFilter)
    block = _tf.retracing_notice_at_info
    state = lambda: list(tf_logger.filters)
elif case == "_tf.released_custom_gradients":
    from hubensemble import _tf
    from tensorflow.python.framework import ops
    registry = ops.gradient_registry._registry
    _tf._GRADIENTS_LOCK = Trip(_tf._GRADIENTS_LOCK)
    block = _tf.released_custom_gradients
    inside = lambda: registry.__setitem__(_tf.CUSTOM_GRADIENT_PREFIX + "test", {})
    state = lambda: (sorted(registry), dict(_tf._gradients))
elif case == "lockwords.command_line":
    from hubensemble import lockwords
    lockwords._COMMAND_LINE = Trip(lockwords._COMMAND_LINE)
    block = lockwords.command_line
    state = lockwords.on_command_line
elif case == "terminal._showing":
    from hubensemble import terminal
    terminal._SHOWING = Trip(terminal._SHOWING)
    block = lambda: terminal.library_progress(False)
    state = terminal.showing
elif case == "hub.notices.captured":
    from hubensemble.hub import notices
    notices._SINKS = Trip(notices._SINKS)
    block = notices.captured
    state = lambda: notices._SINKS.get()
elif case == "data.specs.skips_said":
    from hubensemble.data import specs
    specs._SKIPS_SAID = Trip(specs._SKIPS_SAID)
    block = specs.skips_said
    state = lambda: specs._SKIPS_SAID.get()
elif case == "threads.sweep_block":
    from hubensemble import threads
    threads._SWEEPS_LOCK = Trip(threads._SWEEPS_LOCK)
    block = lambda: threads.sweep_block("chief", RuntimeError)
    state = lambda: dict(threads._SWEEPS)
elif case == "threads.warnings_block":
    from hubensemble import threads

    class Tripping(warnings.catch_warnings):
        def __exit__(self, *exc):
            second()
            return super().__exit__(*exc)
    threads.warnings = types.SimpleNamespace(catch_warnings=Tripping)
    block = lambda: threads.warnings_block(record=True)
    inside = lambda: warnings.simplefilter("always")
    state = lambda: (list(warnings.filters), warnings.showwarning)
elif case == "tune.distributed.kerastuner_env":
    from hubensemble import threads
    from hubensemble.tune import distributed
    distributed.os = Trip(os, at="environ")
    block = lambda: distributed.kerastuner_env("chief", "127.0.0.1:8000")
    state = lambda: ({k: os.environ.get(k) for k in distributed.KT_VARS}, dict(threads._SWEEPS))
elif case == "tune.stage._sweep_lock":
    import pathlib
    from hubensemble import fileio
    from hubensemble.tune import stage
    stage.file_lock = lambda *args, **kwargs: Trip(fileio.file_lock(*args, **kwargs))
    block = lambda: stage._sweep_lock(types.SimpleNamespace(tuner=pathlib.Path(tmp)), "s")
    state = lambda: held(os.path.join(tmp, ".s.lock"))
elif case == "zoo.builder.build_lock":
    from hubensemble.zoo import builder
    builder.contextlib = Trip(contextlib, at="suppress")  # _HELD emptied, the lock still held
    block = lambda: builder.build_lock(os.path.join(tmp, "zoo"))
    state = lambda: (dict(builder._HELD), held(builder.build_lock_path(os.path.join(tmp, "zoo"))))
elif case == "catalogue._collector_paused":
    from hubensemble import catalogue
    catalogue.gc = Trip(gc)
    block = catalogue._collector_paused
    state = gc.isenabled
elif case == "threads.old_objects_frozen":
    from hubensemble import threads
    threads.gc = Trip(gc, at="unfreeze")
    block = threads.old_objects_frozen
    state = gc.get_freeze_count
elif case == "hub.sources._intercept_get_file":
    from keras.src.utils import file_utils
    from hubensemble.hub import sources
    import keras.src.utils
    original = file_utils.get_file
    keras.src.utils.file_utils = Trip(file_utils)  # what the block's `import` finds
    block = lambda: sources._intercept_get_file(print)
    state = lambda: file_utils.get_file is original
elif case == "hub.tfhub.import_tensorflow_hub":
    from hubensemble.hub import tfhub  # imports tensorflow_hub

    class Importing:  # the first Ctrl-C, as tensorflow_hub is imported again
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow_hub":
                stopped.append(1)
                signal.raise_signal(signal.SIGINT)
    del sys.modules["tensorflow_hub"]
    sys.modules["pkg_resources"] = None  # not found: the stand-in's way
    sys.meta_path.insert(0, Importing())
    tfhub.sys = Trip(sys)
    block = contextlib.nullcontext
    inside = tfhub.import_tensorflow_hub
    state = lambda: sys.modules.get("pkg_resources", "missing")
elif case == "hub.remote.redrawn":
    import io, threading, tqdm
    from hubensemble.hub import remote

    def event():  # the block's stop: setting it (the cleanup's first step) trips
        return Trip(threading.Event(), at="set")
    remote.threading = types.SimpleNamespace(Event=event)
    block = lambda: remote.redrawn(tqdm.tqdm(total=10, file=io.StringIO()), interval=0.01)
    state = lambda: [t.name for t in threading.enumerate() if t.name.startswith("hubensemble")]
elif case == "tune.distributed.serve_oracle":
    import socket
    import grpc
    from hubensemble.tune import distributed
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    def server(*args, **kwargs):  # the block's server: its stop trips
        sys.modules["grpc"] = grpc
        return Trip(grpc.server(*args, **kwargs), at="stop")
    sys.modules["grpc"] = types.SimpleNamespace(server=server)  # as serve_oracle imports it

    def serving():  # the first Ctrl-C comes as the chief polls
        def poll():
            stopped.append(1)
            signal.raise_signal(signal.SIGINT)
        distributed.serve_oracle(object(), on_poll=poll, poll=0.01)

    def answers():  # whether something listens on the port
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    # At once: serve_oracle returns once its port has closed (before, server.stop returned at
    state = answers  # once and the port closed behind it: checked at once, 1 run in 4 failed)
    block = contextlib.nullcontext
    inside = serving
elif case == "tune.tuner.quiet_keras_tuner":
    import keras_tuner.src
    from keras_tuner.src import config as kt_config
    from hubensemble.tune import tuner
    keras_tuner.src.config = Trip(kt_config, at="DEBUG")  # what the block's import finds
    block = lambda: tuner.quiet_keras_tuner(capture_prints=True)
    state = lambda: (kt_config.DEBUG, sys.stdout)
elif case == "errors.held_stops":
    from hubensemble import errors

    class Terminating:  # SIGTERM as its handler is back and SIGINT's not yet
        def __getattr__(self, name):
            return getattr(signal, name)

        def signal(self, signum, handler):
            signal.signal(signum, handler)
            if stopped and not sent and signum == signal.SIGTERM:
                sent.append(1)
                signal.raise_signal(signal.SIGTERM)

    def terminated(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, terminated)
    errors.signal = Terminating()
    block = errors.held_stops
    state = lambda: [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]

before = state()
try:
    with block():
        inside()
        stopped.append(1)  # the first Ctrl-C, in the block's work
        signal.raise_signal(signal.SIGINT)
except KeyboardInterrupt as stop:
    kept = stop  # kept, with its frames, as a notebook keeps the last one (sys.last_value)
after = state()
print(after == before, sent, "" if after == before else (before, after))
"""

CLEANUPS = [
    "fileio.owned_lock", "fileio.file_lock", "kerasenv.stage_settings",
    "_tf.quiet_env_restored", "_tf.native_stderr_to", "_tf.retracing_notice_at_info",
    "_tf.released_custom_gradients", "lockwords.command_line", "terminal._showing",
    "hub.notices.captured", "data.specs.skips_said", "threads.sweep_block",
    "threads.warnings_block", "tune.distributed.kerastuner_env", "tune.stage._sweep_lock",
    "zoo.builder.build_lock", "catalogue._collector_paused", "threads.old_objects_frozen",
    "hub.sources._intercept_get_file", "hub.tfhub.import_tensorflow_hub", "hub.remote.redrawn",
    "tune.distributed.serve_oracle", "tune.tuner.quiet_keras_tuner", "errors.held_stops"]


#: One process imports once what the cases import (TensorFlow, Keras, Keras Tuner,
#: tensorflow_hub, gRPC: 5-15 s each time) and forks a child per case: each case still runs
#: alone in its own process, with its real SIGINT and Python's own handler, from the state
#: the imports leave, and its patches die with it. Before, a new interpreter per case: 24
#: processes, 7 of them importing TensorFlow (about 60 s of the suite).
FORKING = """
import os, sys, traceback
from hubensemble import _tf  # as the cases import them: TensorFlow after _tf's settings
import tensorflow, keras, keras_tuner.src, grpc, filelock, tqdm
from tensorflow.python.framework import ops
from keras.src.utils import file_utils
from hubensemble.hub import sources, tfhub

cleanup, tmp, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
for case in cases:
    folder = os.path.join(tmp, case)
    os.mkdir(folder)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT), fd)
            sys.argv = ["-c", folder, case]
            exec(compile(cleanup, "<cleanup>", "exec"), {"__name__": "__main__"})
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    status = os.waitpid(child, 0)[1]
    with open(os.path.join(folder, "status"), "w") as f:
        f.write(str(os.waitstatus_to_exitcode(status)))
"""


@pytest.fixture(scope="module")
def cleanup_ends(tmp_path_factory):
    """{case: (exit code, stdout, stderr)} of every CLEANUPS case, each in its own forked
    process (FORKING)."""
    tmp = tmp_path_factory.mktemp("cleanup-ends")
    run = subprocess.run([sys.executable, "-c", FORKING, CLEANUP, str(tmp), *CLEANUPS],
                         capture_output=True, text=True, timeout=600)
    ends = {}
    for case in CLEANUPS:
        folder = tmp / case
        read = [(folder / name).read_text() if (folder / name).exists() else ""
                for name in ("status", "out", "err")]
        ends[case] = (read[0], read[1], read[2], run)
    return ends


@pytest.mark.parametrize("cleanup", CLEANUPS)
def test_a_second_ctrl_c_in_a_cleanup_leaves_the_process_as_before(cleanup_ends, cleanup):
    """Python, a notebook: a block stopped by Ctrl-C, and Ctrl-C again at its cleanup's first
    step (a tripping wrapper on what the cleanup touches first; a real SIGINT, Python's own
    handler). Before, each left its state behind (`before, after` printed): the lock held
    and in fileio._OWNED (the next call took it as nested), the depth of stage_settings at 1
    (the caller's Keras settings never given back), HUBENSEMBLE's quiet variable "0", the
    retracing filter on TensorFlow's logger, the command line's wording on, a sweep's role and
    KERASTUNER_* set (every later sweep refused, or taken for a distributed one), the garbage
    collector off or every object frozen, the block's warnings filters and recording
    showwarning on the process, the `pkg_resources` stand-in in sys.modules, a download
    bar's redrawing thread running, a chief's oracle server listening on its port, Keras
    Tuner's DEBUG off or sys.stdout going to the run's log. Now each
    end is whole (errors.held_stops) and the second Ctrl-C is raised as it ends: the state
    is the one from before the block."""
    status, out, err, run = cleanup_ends[cleanup]
    assert status == "0" and out.startswith("True [1]"), (status, out, err, run)
