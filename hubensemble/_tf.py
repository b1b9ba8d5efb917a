"""Importing TensorFlow without its C++ start-up chatter on the terminal: one rule for the
command line and the Python API (`import_tensorflow`)."""

import atexit
import contextlib
import logging
import os
import re
import sys
import tempfile
import threading

from hubensemble import kerasenv
from hubensemble.errors import HubensembleError, first_line, held_stops

# Set by the command line: "1" unless --verbose ("0" with it), so worker processes (the zoo
# builder's) stay as quiet as the command that started them. Unset from Python.
QUIET_ENV = "HUBENSEMBLE_QUIET_TF"

#: TensorFlow's C++ log level (0 all, 1 no INFO, 2 no WARNING, 3 no ERROR): hubensemble's
#: default, set only when the user has not set it, before TensorFlow is imported by us.
LOG_LEVEL_ENV, DEFAULT_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL", "2"

#: A TensorFlow log line's head: absl's (TensorFlow 2.21 on), its severity letter (I, W, E,
#: F) then MMDD; or TensorFlow's own before it (2.20: "2026-12-05 19:25:06.629423: E …").
_HEAD = re.compile(r"([IWEF])\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
#: The unheaded lines that continue a TensorFlow notice (cpu_feature_guard's second line).
_CONTINUATIONS = ("To enable the following instructions:",)
#: An absl Status's source location trace, the lines its string ends with when the status
#: carries locations (TensorFlow 2.22.0rc0's cuInit line: "=== Source Location Trace: === ",
#: then "external/xla/xla/stream_executor/cuda/cuda_status.cc:50"): part of the line before.
_TRACE = "=== Source Location Trace: ==="
_LOCATION = re.compile(r"\S+:\d+")
#: absl's banner before its first lines; shown only with a line it precedes.
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to"
#: What TensorFlow says at import on a machine without a CUDA driver, and the cuInit failure
#: its device probe then logs at ERROR (UNKNOWN ERROR (303)): no GPU set-up error there.
NO_DRIVER = "Could not find cuda drivers on your machine"
CUINIT = "failed call to cuInit"
#: How the cuInit failure ends when no CUDA driver library could be loaded: TensorFlow's CUDA
#: stub answers CUDA_ERROR_SHARED_OBJECT_INIT_FAILED (303), which it cannot name without the
#: driver. TensorFlow 2.20 at TF_CPP_MIN_LOG_LEVEL 2 writes this line alone (NO_DRIVER is
#: an INFO line, which it drops itself), so the line says by itself that there is no driver.
NO_DRIVER_CUINIT = "UNKNOWN ERROR (303)"


def log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as an int (0 when unset or not a number)."""
    try:
        return int(os.environ.get(LOG_LEVEL_ENV, "0"))
    except ValueError:
        return 0


def startup_lines(text: str, level: int) -> tuple[list[str], list[str]]:
    """(lines to show on stderr, lines only to log at INFO) of what TensorFlow wrote on fd 2
    while it was imported and its devices probed (`text`), at TF_CPP_MIN_LOG_LEVEL `level`.
    TensorFlow writes its start-up notices before absl logging starts, at every level
    (measured, TF 2.21: "oneDNN custom operations are on …" and "Could not find cuda drivers
    on your machine, GPU will not be used." at level 3 too), so the level is applied here:
    a line of a severity below `level` (its continuation lines with it) is dropped. The
    cuInit failure (ERROR: shown at levels 0..2) is no set-up error on a machine TensorFlow
    found no CUDA driver on (`NO_DRIVER` said in the same start-up, or the failure's own
    `NO_DRIVER_CUINIT`; lines headed as absl's or as TensorFlow 2.20's): from level 1 it is only
    logged; with a driver it is shown at every level but 3, as TensorFlow would: a real GPU
    set-up error is never hidden. A FATAL line is always shown; a line TensorFlow did not
    head is shown, but for the known second lines of its notices (`_CONTINUATIONS`:
    cpu_feature_guard's) and an absl status's source location trace (`_TRACE` and the
    "file:line" lines after it: TensorFlow 2.22.0rc0's cuInit line has one), which go with
    the line before them (shown, logged or dropped as it is): a Python warning or the words
    of a failing import written after a hidden notice were dropped with it. absl's banner is
    shown only before an absl line that is shown (it was shown before matplotlib's warning of
    a home folder it cannot write, a Python logging line, as if it were absl's)."""
    shown, logged, banner = [], [], None
    goes, trace = shown, False  # where the current notice's lines go (None: dropped)
    no_driver = NO_DRIVER in text
    for line in text.splitlines():
        if line.startswith(_BANNER):
            banner = line
            continue
        head = _HEAD.match(line)
        if head:
            severity, trace = _SEVERITY[head.group(1) or head.group(2)], False
            goes = shown if severity >= level or severity == 3 else None
            if goes is shown and CUINIT in line and level >= 1 and (
                    no_driver or NO_DRIVER_CUINIT in line):
                goes = logged
        elif not line.strip():
            continue
        elif line.startswith(_TRACE) or (trace and _LOCATION.fullmatch(line.strip())):
            trace = True  # a status's source locations: with its line, shown or not
        elif not line.startswith(_CONTINUATIONS):
            goes, trace = shown, False  # no notice's own line: a Python warning, an error
        if goes is shown and banner and head:  # absl's, so before absl's lines only
            shown.append(banner)
            banner = None
        if goes is not None:
            goes.append(line)
    return shown, logged


@contextlib.contextmanager
def quiet_env_restored():
    """While the block runs (a command: `cli.main`), QUIET_ENV may be set for the command and
    its workers; after it, the variable is as before. A `-v` command run in a notebook (or a
    test) left it "0" for good, and every later library call there put TensorFlow's native
    notices raw on stderr (`filtering`: a one-thread-at-a-time fact of the process)."""
    was = os.environ.get(QUIET_ENV)
    try:
        yield
    finally:  # whole (errors.held_stops): a second Ctrl-C here left it set
        with held_stops():
            if was is None:
                os.environ.pop(QUIET_ENV, None)
            else:
                os.environ[QUIET_ENV] = was


def filtering() -> bool:
    """Whether TensorFlow's start-up lines go through `startup_lines`: always but with the
    command line's --verbose (QUIET_ENV "0"), which shows them all as TensorFlow writes
    them."""
    return os.environ.get(QUIET_ENV) != "0"


def import_tensorflow(setup=None):
    """Imports TensorFlow, if no one has, and probes its devices (`list_physical_devices`:
    the CUDA probe, which logs the cuInit line; logical devices are not started, so a
    caller may still configure threads and visible devices); returns the module. The one
    place hubensemble imports TensorFlow first, from the command line and from Python
    alike: TF_CPP_MIN_LOG_LEVEL is set to DEFAULT_LOG_LEVEL when the user has not set it,
    and what TensorFlow writes on fd 2 meanwhile is kept to `startup_lines` (shown on
    stderr after it; the rest logged at INFO under `hubensemble.tf`: RUN/log.txt and
    --verbose). Its notices reached a Python caller's stderr in the middle of
    `load_task`'s reading bar. `setup(tf)`, if given, runs before the probe (settings that
    must precede device start). With --verbose (`filtering`) nothing is held back.
    Python errors raised inside surface after stderr is restored; what TensorFlow wrote
    before them is shown first. TensorFlow alone needs no Keras (`predict` works whatever
    Keras' backend); the parts of hubensemble that use Keras import it by `import_keras`."""
    if "tensorflow" in sys.modules:  # the caller's (or ours): left as it is
        return sys.modules["tensorflow"]
    with first_import("tensorflow"):
        return _import_tensorflow(setup)


#: The libraries whose first import, by hubensemble, a Ctrl-C or SIGTERM stopped.
_STOPPED_IMPORTS: set = set()


@contextlib.contextmanager
def first_import(name: str):
    """Around hubensemble's import of the library `name` (a top-level module name) when it
    is not imported yet. If a stop (KeyboardInterrupt: Ctrl-C, a notebook's stop button;
    `errors.Terminated`; SystemExit) comes out of it, `name` is remembered as half-imported;
    if the import fails after such a stop, the failure is raised as a HubensembleError that
    says so and the way on (restart Python), from the library's own error. The modules the
    stopped import had loaded stay, and importing the library again can run into them: for
    TensorFlow (measured, TF 2.21) a stop 1.5 s or 3 s into the import left a retry that
    worked, one 4.5 s in left every later call failing with "KeyError: Registering two
    gradient with name 'ReadVariableOp'!" from deep in TensorFlow."""
    retry = name in _STOPPED_IMPORTS
    try:
        yield
    except Exception as exc:
        if retry:
            raise HubensembleError(
                f"{name} is half-imported in this Python process: its first import was "
                f"stopped (Ctrl-C, a notebook's stop button) before it finished, and importing "
                f"it again fails ({type(exc).__name__}: {first_line(exc)}); "
                f"restart Python (a notebook's kernel) and run the call again") from exc
        raise
    except BaseException:
        if name not in sys.modules:
            _STOPPED_IMPORTS.add(name)
        raise


def import_keras():
    """Keras, imported after TensorFlow (`import_tensorflow`), for the parts of hubensemble
    that use it (``from hubensemble._tf import keras``): first `kerasenv.check_backend`
    refuses a Keras that is, or would be once imported, on another backend than TensorFlow
    (HubensembleError naming KERAS_BACKEND or keras.json, not Keras' ModuleNotFoundError);
    after, inside a stage, `kerasenv.keras_imported` sets the caller's global Keras settings
    aside."""
    kerasenv.check_backend()
    import_tensorflow()
    with first_import("keras"):
        import keras

    kerasenv.keras_imported()
    return keras


def _import_tensorflow(setup):
    """`import_tensorflow`'s first import of TensorFlow (which imports matplotlib: imported
    first by `environment.import_matplotlib`, its folder checked and a MPLBACKEND it does not
    know left out, which stopped TensorFlow's import with a traceback)."""
    from hubensemble.environment import import_matplotlib

    import_matplotlib()
    os.environ.setdefault(LOG_LEVEL_ENV, DEFAULT_LOG_LEVEL)
    if not filtering():
        import tensorflow as tf
        if setup is not None:
            setup(tf)
        return tf
    with tempfile.TemporaryFile() as captured:
        try:
            with native_stderr_to(captured.fileno()):
                import tensorflow as tf
                if setup is not None:
                    setup(tf)
                tf.config.list_physical_devices()
        finally:
            captured.seek(0)
            shown, logged = startup_lines(captured.read().decode("utf-8", "replace"),
                                          log_level())
            for line in logged:
                logging.getLogger("hubensemble.tf").info("%s", line)
            if shown:
                sys.stderr.write("".join(line + "\n" for line in shown))
                sys.stderr.flush()
    return tf


def op_determinism() -> bool:
    """Whether TensorFlow's op determinism is on (TF_DETERMINISTIC_OPS=1, or
    `tf.config.experimental.enable_op_determinism`); imports TensorFlow. Under it tf.data
    runs a map whose function is stateful (a `tf.numpy_function`; TensorArrays, as in
    augment's per-image crops) one call at a time, by rewriting a parallel map's graph as each
    iterator is made, also after fusing a stateful map into the next; the rewrite wrote "E…
    node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which is not in
    the op definition: …" on stderr (an ERROR of TensorFlow's C++ code, shown at every
    TF_CPP_MIN_LOG_LEVEL but 3): 1 line in rank and 1 to 5 in tune of a quick CLI fit of two tiny
    modules, between the progress bars. The streams ask for what the rewrite would make
    (`stateful_map_calls`, `data.streams.fixed_parallelism`: no map fusion): no line, the
    same batches. Read through TensorFlow's internal tensorflow.python.framework.config (no
    public reader): a TensorFlow without it is taken for off, TensorFlow's default."""
    import_tensorflow()
    try:  # is_op_determinism_enabled: not public
        from tensorflow.python.framework import config
    except ImportError:  # a TensorFlow that moved the module: taken for off, its default
        return False
    return bool(getattr(config, "is_op_determinism_enabled", lambda: False)())


def stateful_map_calls():
    """`num_parallel_calls` for the data streams' `Dataset.map`s: tf.data.AUTOTUNE, but None
    (one call at a time, as TensorFlow would run a stateful map) under `op_determinism`."""
    tf = import_tensorflow()
    return None if op_determinism() else tf.data.AUTOTUNE


def __getattr__(name):
    """`from hubensemble._tf import tensorflow as tf`: TensorFlow, imported by
    `import_tensorflow` (the line each module of hubensemble imports it with); `from
    hubensemble._tf import keras`: Keras, by `import_keras`."""
    if name == "tensorflow":
        return import_tensorflow()
    if name == "keras":
        return import_keras()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def native_stderr_to(fd: int):
    """Sends fd 2 (what C++ code writes) to the open file descriptor `fd` inside the block;
    Python exceptions raised inside still surface, after stderr is restored."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left fd 2 on `fd`, stderr lost
        with held_stops(at_once=False):
            os.dup2(saved, 2)
            os.close(saved)


#: The logger of native libraries' lines (`native_notices`): INFO, so RUN/log.txt keeps
#: them and the terminal shows them with --verbose only.
NATIVE_LOGGER = "hubensemble.native"


@contextlib.contextmanager
def native_notices(what: str):
    """Keeps what C/C++ libraries write on fd 2 inside the block (libjpeg's "Unsupported
    marker type 0x20" for a damaged JPEG, libpng's, TFLite's "INFO: Created TensorFlow Lite
    XNNPACK delegate for CPU.", which no log level controls) off stderr, for the command line
    and a Python caller alike: each line is logged at INFO under NATIVE_LOGGER as "`what`:
    LINE" (RUN/log.txt keeps it; the terminal shows it with --verbose), and the caller's own
    words say what it means (an UnreadableImage's reason). A Python caller's stderr got the
    raw line beside hubensemble's error (`decode_bytes(b"\xff\xd8\xff garbage")`), the
    command line's went to os.devnull. With the command line's --verbose (QUIET_ENV "0")
    fd 2 is left alone, as TensorFlow's start-up lines are. Blocks that overlap in threads
    share one redirection (lines written meanwhile are logged as the last one's). Python
    exceptions raised inside still surface, after stderr is restored; Ctrl-C or SIGTERM
    inside (a short block: a decode, a serving batch) is raised as it ends, after fd 2 is
    back (`errors.held_stops`: a Ctrl-C between the redirection and its ``try``, or at the
    start of its ``finally``, left fd 2 on a closed sink, every later line of the process's
    stderr lost)."""
    if not filtering():
        yield
        return
    with held_stops(at_once=False):  # no Ctrl-C between the redirection and its undoing
        with _NATIVE_LOCK:
            if _native["depth"] == 0:  # the first block in: fd 2 goes to the sink
                sink = _native_sink()
                sys.stderr.flush()
                _native["saved"] = os.dup(2)
                os.dup2(sink.fileno(), 2)
            _native["depth"] += 1
        lines = []
        try:
            yield
        finally:
            with _NATIVE_LOCK:
                _native["depth"] -= 1
                if _native["depth"] == 0:  # the last block out restores fd 2
                    os.dup2(_native["saved"], 2)
                    os.close(_native["saved"])
                    lines = _drained(_native["sink"])
            for line in filter(None, (x.strip() for x in lines)):
                logging.getLogger(NATIVE_LOGGER).info("%s: %s", what, line)


def _native_sink():
    """`native_notices`' sink: one temporary file per process, kept open and emptied after
    each block (`_drained`). A new file for each block (tempfile.TemporaryFile: a file made
    and unlinked) was about two thirds of a block's cost, ~80 µs of the ~125 µs it added to
    each decoded image (measured; tools/benchmarks/bench_folder.py --native). A process
    forked from this one (the zoo builder's workers) makes its own: the inherited file and
    its offset are its parent's."""
    if _native.get("pid") != os.getpid():
        inherited = _native.get("sink")
        if inherited is not None:  # the parent's: this process's descriptor of it, closed
            inherited.close()
        else:
            atexit.register(_close_sink)
        _native["sink"], _native["pid"] = tempfile.TemporaryFile(), os.getpid()
    return _native["sink"]


def _close_sink():
    """Closes `_native_sink`'s file at exit: left to the interpreter's shutdown, it was said
    as "ResourceWarning: unclosed file" wherever warnings show (python -X dev, pytest)."""
    sink = _native.get("sink")
    if sink is not None and _native.get("pid") == os.getpid():
        sink.close()


def _drained(sink) -> list[str]:
    """The lines written to `sink` (no longer fd 2) since it was last emptied; empties it."""
    if not os.fstat(sink.fileno()).st_size:  # the common case: nothing was written
        return []
    sink.seek(0)
    text = sink.read()
    sink.seek(0)
    sink.truncate()
    return text.decode("utf-8", "replace").splitlines()


#: `native_notices`' one redirection of fd 2, shared by the blocks that overlap (threads of
#: one process, e.g. two `fit` calls): each saving and restoring fd 2 on its own, the
#: first out put back the original while the second still wrote to its sink, and the second
#: out restored the first's closed sink, so every later line on stderr was lost.
_NATIVE_LOCK = threading.Lock()
_native: dict = {"depth": 0}


def is_retracing_notice(record: logging.LogRecord) -> bool:
    """Whether a log record is TensorFlow's "N out of the last M calls to <function …>
    triggered tf.function retracing" warning."""
    return (record.name.startswith("tensorflow")
            and "triggered tf.function retracing" in record.getMessage())


class _RetracingAtInfo(logging.Filter):
    """Drops the retracing notice from the `tensorflow` logger and logs it at INFO under
    `hubensemble.tf` (RUN/log.txt keeps it; the terminal shows it with --verbose)."""

    def filter(self, record):
        if is_retracing_notice(record):
            logging.getLogger("hubensemble.tf").info("%s", record.getMessage())
            return False
        return True


@contextlib.contextmanager
def retracing_notice_at_info():
    """Inside the block, TensorFlow's retracing notice (`is_retracing_notice`) is logged at
    INFO by hubensemble, not at WARNING by TensorFlow's own handler; other TensorFlow
    records pass. Keras traces a train and a predict function per model, and a sweep (or
    the zoo) builds one model per trial, each traced once: TensorFlow counts those traces
    together and warns of retracing that no one can act on (it split the tune bar on the
    terminal, and reached notebook users of `hubensemble.fit`)."""
    tf_logger = logging.getLogger("tensorflow")
    notice = _RetracingAtInfo()
    tf_logger.addFilter(notice)
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the filter on the logger
        with held_stops():
            tf_logger.removeFilter(notice)


#: The prefix of the names `tf.custom_gradient` registers (custom_gradient.generate_name).
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


@contextlib.contextmanager
def released_custom_gradients():
    """When the last of the blocks running in the process ends, the gradient functions
    `tf.custom_gradient` registered meanwhile are taken out of TensorFlow's process-wide
    gradient registry again. Keras' optimizer sums gradients across replicas through
    ``all_reduce``, a custom gradient, so each training model's trace registered one under a
    new name, never removed, holding that trace's graph (the whole model's train step): a
    notebook's repeated `run_tune` grew by about 24 MiB and 26,000 objects per 8-trial sweep of
    tiny modules, without bound, and so did a long sweep. A registered name is looked up only
    while the graph that made it computes its gradients, inside its own trace (a retrace
    registers a new one); blocks that overlap in threads (two `fit` calls) release together,
    when none is tracing. Used around every training (`tune.train.train_classifier`). A
    TensorFlow whose registry is not the dict `_registry` (or that moved the module
    tensorflow.python.framework.ops) is left alone."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:  # a TensorFlow that moved the module: left alone, as below
        ops = None
    # A dict in framework/registry.py; another TensorFlow without it trains as before.
    registry = getattr(getattr(ops, "gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        yield
        return
    with _GRADIENTS_LOCK:
        if _gradients["depth"] == 0:
            _gradients["before"] = set(registry)
        _gradients["depth"] += 1
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the count up, nothing released
        with held_stops(), _GRADIENTS_LOCK:  # again in the process
            _gradients["depth"] -= 1
            if _gradients["depth"] == 0:
                before = _gradients.pop("before")
                for name in [n for n in registry if n not in before
                             and n.startswith(CUSTOM_GRADIENT_PREFIX)]:
                    registry.pop(name, None)


#: `released_custom_gradients`' count of open blocks and the registry's names before the
#: first.
_GRADIENTS_LOCK = threading.Lock()
_gradients: dict = {"depth": 0}
