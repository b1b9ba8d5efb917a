"""Shared fixtures: tiny real SavedModels built in a second, never mocks of TF or Keras."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow thread per pool in every test process (and the CLI processes they start):
# with an xdist worker per core, two threads each only contend (measured on the 2-core
# machine, test_tune + test_export under -n 2: 174 s against 192 s, CPU time -7%). Under -n0
# as well, so that a file run alone takes the code paths CI takes: with TensorFlow's default
# threads a zoo build of `workers=1` trained in a worker process of its own (a fresh
# interpreter importing TensorFlow, `zoo.builder._trains_here`) where CI trains in process.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
if "HUBENSEMBLE_DECODE_CACHE" not in os.environ:
    # The suite's decoded folders go to a folder of this process (and the CLI processes it
    # starts), removed at its end, not to the user's ~/.cache (data/decodecache.py).
    import atexit
    import shutil
    import tempfile

    os.environ["HUBENSEMBLE_DECODE_CACHE"] = tempfile.mkdtemp(prefix="hubensemble-decoded-")
    atexit.register(shutil.rmtree, os.environ["HUBENSEMBLE_DECODE_CACHE"], True)

import contextlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _still_ignored(signum, frame):
    """A handler that does what SIG_IGN did (`pytest_configure`)."""


def pytest_configure(config):
    """A suite started in the background (`cmd &` in a script: SIGINT ignored) or under
    `nohup` (SIGHUP ignored) passed those ignored signals on to every process its tests
    start, since an ignored signal stays ignored across exec: the tests that send a child
    Ctrl-C or a hang-up then saw it run on (CI run 77: 6 failures, each passing from a
    terminal). Ignored here by a Python handler instead, the suite still ignores them, and a
    handler, unlike SIG_IGN, is reset to the default in every child, as a terminal's job has
    it. In-process tests of `nohup`'s case set SIG_IGN themselves."""
    for name in ("SIGINT", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_IGN:
            signal.signal(number, _still_ignored)


@contextlib.contextmanager
def ctrl_c_raising():
    """Python's own Ctrl-C handler (SIGINT raises KeyboardInterrupt) within, when the suite
    ignores SIGINT (`pytest_configure`), in the main thread; as it was else. `ctrl_c_raises`
    gives it to each test; a fixture of a wider scope that sends itself a SIGINT (test_zoo's
    `stopped_parts`) runs before that one starts, so it uses this itself."""
    if (signal.getsignal(signal.SIGINT) is not _still_ignored
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _still_ignored)


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Each test runs with Python's own Ctrl-C handler (SIGINT raises KeyboardInterrupt), as
    from a terminal, when the suite ignores SIGINT (`pytest_configure`: started in the
    background, -n0; pytest-xdist's workers have Python's handler). Tests that send their
    own process a SIGINT (a stop between two renames) saw it do nothing there: "DID NOT RAISE
    KeyboardInterrupt" (test_fileio, test_zoo; tests/test_background_suite.py), and
    `errors.sigterm_interrupts` took another path than from a terminal. Between tests the
    suite ignores SIGINT as before; a Ctrl-C sent to a background suite's process group
    while a test runs stops the suite, as pytest run from a terminal does (`ctrl_c_raising`)."""
    with ctrl_c_raising():
        yield


#: Most tests keep about one core busy (tiny models), so one worker per core; more than
#: MAX_WORKERS would each hold TensorFlow and the session fixtures in memory for little gain.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """pytest-xdist's `-n auto`: one worker per CPU, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


#: Work units that take longest, first (seconds of the CI run on the 2-core EPYC machine,
#: 2026-12-01): a worker that starts one of them late finishes the suite alone. The fault
#: suite's folder is one unit (see `pytest_xdist_make_scheduler`).
HEAVIEST_FIRST = ("tests/reliability", "tests/test_sources.py", "tests/test_fit.py")


def _unit(nodeid: str) -> str:
    """The work unit of a test: its file, or the fault suite's folder for its files (their
    scenarios share one workspace, so a second worker would build its inputs again)."""
    path = nodeid.split("::", 1)[0]
    return "tests/reliability" if path.startswith("tests/reliability/") else path


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    """Captured output and logs that name a file whose name is not UTF-8 (tests of such
    names: a lone surrogate per undecodable byte) escaped before pytest-xdist sends the
    report to the controller: its channel encodes strict UTF-8, and one such section crashed
    the worker and ended the whole run (INTERNALERROR, 306 of 1,302 tests run)."""
    from hubensemble.text import printable

    report.sections = [(title, printable(text)) for title, text in report.sections]


def pytest_collection_modifyitems(config, items):
    """HEAVIEST_FIRST's units first, then the units with the most `slow` tests (a stable
    sort: the order within a unit, e.g. the fault suite's scenario order, is kept).
    pytest-xdist hands units out in this order as workers free up (addopts has
    --no-loadscope-reorder; by default it orders them by their number of tests, which put
    the few-but-long end-to-end files last and left one worker finishing them alone)."""
    slow = {}
    for item in items:
        unit = _unit(item.nodeid)
        slow[unit] = slow.get(unit, 0) + (item.get_closest_marker("slow") is not None)

    def key(item):
        unit = _unit(item.nodeid)
        first = HEAVIEST_FIRST.index(unit) if unit in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
        return first, -slow[unit]

    items.sort(key=key)


def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile with the fault suite's folder as one unit (`_unit`)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return _unit(nodeid)

    return Scheduling(config, log)


def png_of_size(width, height):
    """A grey PNG whose IHDR says `width` x `height`, holding one row of its pixels: an image
    too large for TensorFlow's decoders (60000 x 10000) in a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b""))


@pytest.fixture
def no_retry_waits(monkeypatch):
    """Downloads in this test are tried again at once (`hub.remote.RETRY_WAITS` 0 s, the one
    place the waits are declared), still ATTEMPTS times: for tests of a failing download that
    do not test the retries, which spent 1 + 4 s waiting per module (test_rank's offline
    ranking: 15.6 s). In this process only: a command started as a new process waits as
    users' do."""
    from hubensemble.hub import remote

    monkeypatch.setattr(remote, "RETRY_WAITS", (0.0, 0.0))


@pytest.fixture
def figures_not_drawn(monkeypatch):
    """The report's figures built but neither laid out nor drawn: `report.figures._png`
    (matplotlib's savefig, 16.4 s of the 28 s five write_report calls took in one test,
    a profile of the suite) gives a real 1 x 1 grey PNG (Pillow) instead, so
    report_files/<name>.png and report.html's data: URIs are still written, and
    matplotlib's Figure.tight_layout, which measures every text of a figure (then half of
    what was left: 9.6 of 17.5 s of wall time in 13 build_sections), does nothing; every
    plot_* function still builds its figure from the run's numbers. write_report has no
    switch for its figures. For tests that read only the report's text (report.md,
    report.html's words, the closing table). A test that checks a figure (its file, its
    size, its embedding in the HTML, what it plots) or whose names reach a figure's text
    (matplotlib's text errors come at the draw) draws the real ones: it does not take this
    fixture."""
    no_figures(monkeypatch)


def no_figures(monkeypatch):
    """`figures_not_drawn` on `monkeypatch` (a pytest.MonkeyPatch), for a module fixture,
    which cannot take the function-scoped fixture (test_fit's `retrained`)."""
    import io

    from PIL import Image

    from hubensemble.environment import matplotlib_folder
    from hubensemble.report import figures

    matplotlib_folder()  # as the report does before matplotlib's first import
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    Image.new("L", (1, 1), 128).save(buf, format="PNG")
    png = buf.getvalue()
    monkeypatch.setattr(figures, "_png", lambda fig: png)
    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)


@pytest.fixture
def in_process(capsys):
    """`hubensemble ARGS` through cli.main in the test's process -> (exit code, stdout,
    stderr): the command's own code, without the seconds a new process spends importing
    TensorFlow. Tests that need a real process (its C++ notices, signals, kills) start one."""
    from hubensemble.cli import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run_lock_holder():
    """hold(run_dir, command, member=None, record=None) -> the Popen of another process
    holding the run folder's lock (`Run.lock(command)`), or with `member` (a tuner id) a
    chief/worker sweep process's lock (`Run.lock(command, member, record)`), once it says
    so; killed when the test ends."""
    import json
    import subprocess
    import sys

    held = []

    def hold(run_dir, command, member=None, record=None):
        holder = subprocess.Popen(
            [sys.executable, "-c", "import json, sys, time\nfrom hubensemble.rundir import Run\n"
             "with Run(sys.argv[1]).lock(sys.argv[2], sys.argv[3] or None, "
             "json.loads(sys.argv[4])):\n    print('held', flush=True)\n    time.sleep(300)",
             str(run_dir), command, member or "", json.dumps(record)],
            stdout=subprocess.PIPE, text=True)
        held.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield hold
    for holder in held:
        holder.kill()
        holder.wait()


def export_quietly(model, path, **kwargs):
    """`model.export(path, **kwargs)` without its printed signature summary. Keras added
    export's `verbose` in 3.4; setup.cfg allows 3.3, which prints nothing to silence."""
    import inspect

    if "verbose" in inspect.signature(model.export).parameters:
        kwargs["verbose"] = False
    model.export(path, **kwargs)


def make_tiny_model(seed=0, width=8, dropout=0.0, out_dim=None, input_size=None, l2=0.0):
    """A one-conv image model: [N, H, W, 3] in [0, 1] -> [N, width] features."""
    import keras

    keras.utils.set_random_seed(seed)
    h, w = input_size or (None, None)
    inp = keras.Input((h, w, 3))
    reg = keras.regularizers.L2(l2) if l2 else None
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                            kernel_regularizer=reg)(inp)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if out_dim:
        x = keras.layers.Dense(out_dim)(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="session")
def tiny_module(tmp_path_factory):
    """A reusable SavedModel folder with an 8-d output."""
    from hubensemble.hub import write_hub_module

    path = tmp_path_factory.mktemp("modules") / "tiny"
    write_hub_module(make_tiny_model(seed=0), str(path))
    return str(path)


@pytest.fixture(scope="session")
def module_factory(tmp_path_factory):
    """Builds tiny modules on demand: module_factory(name, **make_tiny_model kwargs)."""
    from hubensemble.hub import write_hub_module

    root = tmp_path_factory.mktemp("factory")
    made = {}

    def build(name, **kwargs):
        if name not in made:
            made[name] = write_hub_module(make_tiny_model(**kwargs), str(root / name))
        return made[name]

    return build


RAW_KINDS = ("no-training", "uint8", "false-only", "tensor-training", "true-only")


def write_raw_module(path, kind, *, seed=0, width=6):
    """A reusable SavedModel saved with tf.saved_model.save directly (not write_hub_module),
    with a __call__ of another shape than hubensemble writes:

    * "no-training": ``__call__(images)`` — no `training` argument at all;
    * "uint8": ``__call__(images, training)`` with uint8 images in [0, 255];
    * "false-only": traced for ``training=False`` only;
    * "true-only": traced for ``training=True`` only;
    * "tensor-training": `training` is a bool tensor argument.

    Features: ReLU(conv3x3(x) + b) averaged over the image, [N, width]; in training mode
    halved, so the flag visibly reaches the module. x is the float image in [0, 1].
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    root = tf.train.Checkpoint()
    root.kernel = tf.Variable(rng.normal(size=(3, 3, 3, width)).astype("float32"), name="kernel")
    root.bias = tf.Variable(rng.normal(size=(width,)).astype("float32") * 0.1, name="bias")

    def features(x, training):
        y = tf.nn.relu(tf.nn.conv2d(x, root.kernel, 1, "SAME") + root.bias)
        y = tf.reduce_mean(y, axis=[1, 2])
        return y * tf.where(tf.cast(training, tf.bool), 0.5, 1.0)

    images = tf.TensorSpec([None, None, None, 3], tf.uint8 if kind == "uint8" else tf.float32,
                           name="images")
    if kind == "no-training":
        root.__call__ = tf.function(lambda images: features(images, False))
        root.__call__.get_concrete_function(images)
    elif kind == "tensor-training":
        root.__call__ = tf.function(features, input_signature=[
            images, tf.TensorSpec([], tf.bool, name="training")])
    else:
        def call(images, training=False):
            x = tf.cast(images, tf.float32) / 255.0 if kind == "uint8" else images
            return features(x, training)

        root.__call__ = tf.function(call)
        values = {"false-only": (False,), "true-only": (True,)}.get(kind, (True, False))
        for value in values:
            root.__call__.get_concrete_function(images, value)
    root.variables = [root.kernel, root.bias]
    root.trainable_variables = [root.kernel, root.bias]
    root.regularization_losses = []
    tf.saved_model.save(root, str(path))
    return str(path)


@pytest.fixture(scope="session")
def raw_module(tmp_path_factory):
    """raw_module(kind) -> folder of a write_raw_module module (built once per kind)."""
    root = tmp_path_factory.mktemp("raw-modules")
    made = {}

    def build(kind):
        if kind not in made:
            made[kind] = write_raw_module(root / kind, kind, seed=RAW_KINDS.index(kind))
        return made[kind]

    return build


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# A test's child process is bounded by the CPU time the kernel counts for it (RLIMIT_CPU, all
# its threads), not by the wall clock, which the machine's load stretches: on the 2-core
# machine with CI's 2 workers and other jobs (load 17) a child importing TensorFlow used 5 s
# of CPU in 34-46 s of wall time, and `subprocess.run(..., timeout=300)` failed under such
# load. A child that loops past its CPU seconds is ended by the kernel (SIGXCPU: return code
# -24); one that hangs without using the CPU is left to pytest-timeout's wall bound (setup.cfg
# `timeout`), whose error ends the test and, through subprocess.run or the fixture's
# teardown, the child.
_CPU_LIMITED = (
    "import os, resource, sys\n"
    "hard = resource.getrlimit(resource.RLIMIT_CPU)[1]\n"
    "soft = int(sys.argv[1])\n"
    "if hard != resource.RLIM_INFINITY:\n"
    "    soft = min(soft, hard)\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n")


def cpu_bounded(argv, seconds):
    """`argv` (a list of str or paths, as for subprocess) run with at most `seconds` (int) of
    CPU time, user + system: the list to pass to subprocess instead (an exec of this Python
    first, which sets the limit; the limit survives the exec and the environment is kept)."""
    return [sys.executable, "-c", _CPU_LIMITED, str(int(seconds)), *map(os.fsdecode, argv)]


def bounded_by_cpu(argv, *, cpu, **kwargs):
    """`subprocess.run(argv, **kwargs)` with the child bounded by `cpu` seconds (int) of CPU
    time (`cpu_bounded`) instead of a wall-clock `timeout`, which a loaded machine stretches
    past any bound a child that finishes needs: for children that run to their end, not for
    waits on a signal, a lock or another process (those keep their wall bound). The name is
    as long as `subprocess.run`, so that its continuation lines stay aligned. Returns the
    CompletedProcess; a child over its seconds ends with return code -24 (SIGXCPU)."""
    import subprocess

    return subprocess.run(cpu_bounded(argv, cpu), **kwargs)
