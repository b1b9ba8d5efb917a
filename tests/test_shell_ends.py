"""The shell ending or cutting a command: a reader that goes away (`| head`, a pager quit), a
terminal that hangs up (SIGHUP; `nohup`), standard descriptors closed at start (`>&-`).
Each runs the command line in a process of its own, with real pipes and signals."""

import os
import signal
import subprocess
import sys

import pytest

from hubensemble import errors


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, HUBENSEMBLE_CACHE_DIR=str(tmp_path / "cache"))


def test_a_reader_that_goes_away_stops_the_command_quietly_and_its_log_says_why(
        tmp_path, tiny_module, env):
    """`hubensemble demo 2>&1 | head -3` (progress bars write to stderr): rank stopped on a
    BrokenPipeError as a bug, "stopped by an unexpected error (a bug: please report it with
    this log)" and a 40-line traceback in RUN/log.txt. Now: 141 as SIGPIPE gives, nothing
    more on the terminal, one line in RUN/log.txt, the run's lock free for the next one."""
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: m, handle: {tiny_module}}}\n")
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "hubensemble", "rank", "--catalogue", str(cat), "--data",
            "sklearn:digits", "--profile", "quick", "--out", str(run)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stderr.readline()  # the reader takes a line and goes (`| head -1`)
        proc.stderr.close()
    finally:
        proc.wait(timeout=600)
    assert proc.returncode == 141
    logged = (run / "log.txt").read_text()
    assert "Traceback" not in logged and "unexpected error" not in logged, logged
    assert logged.strip().splitlines()[-1].endswith(
        "ERROR hubensemble.cli: hubensemble: stopped: its output's reader went away (SIGPIPE: "
        "`| head`, a pager quit); run the same command again to resume"), logged
    from hubensemble.rundir import Run

    Run(run).check_unlocked("rank")  # the same command may run again at once


def test_a_closed_pipe_is_a_stop_inside_a_command_and_the_oserror_outside(tmp_path):
    """The guarded stream of a pipe whose reader closed it: inside a command's
    `sigterm_interrupts` block the write raises ReaderGone (a KeyboardInterrupt: no handler
    records it as a failure) and sends the descriptor to os.devnull; outside, the
    BrokenPipeError as before. A terminal that hung up (EIO) is SIGHUP's stop, unless SIGHUP
    is ignored (nohup): then the command goes on, its output discarded."""
    from hubensemble import stdio

    def guarded_pipe():
        read, write = os.pipe()
        os.close(read)
        return stdio._Guarded(open(write, "w", buffering=1))

    with pytest.raises(BrokenPipeError):
        guarded_pipe().write("a line\n")
    stream = guarded_pipe()
    with pytest.raises(errors.ReaderGone), errors.sigterm_interrupts():
        try:
            stream.write("a line\n")
        finally:
            assert isinstance(errors.pending_stop(), errors.ReaderGone)
    assert errors.pending_stop() is None and stream.write("more\n") == 5
    stream.flush()  # os.devnull now: nothing raised

    def hung_up_terminal():
        master, slave = os.openpty()
        os.close(master)  # writes to the terminal now fail with EIO
        return stdio._Guarded(open(slave, "w", buffering=1))

    with pytest.raises(errors.HungUp), errors.sigterm_interrupts():
        hung_up_terminal().write("a line\n")
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with errors.sigterm_interrupts():
            assert hung_up_terminal().write("a line\n") == 7
            assert errors.pending_stop() is None
    finally:
        signal.signal(signal.SIGHUP, before)


HANGS_UP = """
import os, signal, sys, time
from hubensemble import __main__, cli

def ensemble(args):  # the stage, in its work when the terminal hangs up
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(1 if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else 60)
    print("done")
    return 0

cli.cmd_ensemble = ensemble
sys.argv = ["hubensemble", *sys.argv[1:]]
__main__.run()
"""


@pytest.mark.parametrize("ignored", [False, True], ids=["sighup", "nohup"])
def test_sighup_stops_a_command_as_sigterm_does_unless_nohup_ignores_it(tmp_path, ignored):
    """An SSH session that drops sends SIGHUP: the process ended at once (-1), RUN/log.txt's
    last line "tune: starting", a candidate half-trained. Now as SIGTERM: the stop's line on
    stderr and in RUN/log.txt, exit 129, the run's lock released. Under `nohup` (SIGHUP
    ignored) the command goes on to its end."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")

    def start():
        if ignored:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    out = subprocess.run([sys.executable, "-c", HANGS_UP, "ensemble", "--run", str(run)],
                         capture_output=True, text=True, timeout=120, preexec_fn=start)
    if ignored:
        assert (out.returncode, out.stdout) == (0, "done\n"), out.stderr
        return
    line = "hubensemble: hung up (SIGHUP); run the same command again to resume"
    assert (out.returncode, out.stdout, out.stderr) == (129, "", line + "\n"), out
    assert (run / "log.txt").read_text().strip().splitlines()[-1].endswith(line)


@pytest.mark.parametrize("closed", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
def test_a_closed_standard_descriptor_is_os_devnull(tmp_path, closed):
    """`hubensemble catalogue list C >&-` ended with "AttributeError: 'NoneType' object has
    no attribute 'flush'" (exit 1) after its work, Python's sys.stdout being None; a closed
    descriptor is os.devnull now, as git makes it, and the first file opened no longer takes
    its number (here: each of the three, and the catalogue read)."""
    cat = tmp_path / "c.yaml"
    cat.write_text("modules:\n  - {name: m, handle: /nowhere}\n")
    probe = ("import os, sys\n"
             "from hubensemble import __main__\n"
             "command = __main__.main\n"
             "def main():\n"  # as the command starts: the file it opens first
             "    first = os.open(sys.argv[-1], os.O_RDONLY)\n"
             "    assert first > 2, first\n"
             "    os.close(first)\n"
             "    return command()\n"
             "__main__.main = main\n"
             "sys.argv = ['hubensemble', *sys.argv[1:]]\n"
             "__main__.run()\n")
    out = subprocess.run([sys.executable, "-c", probe, "catalogue", "list", str(cat)],
                         capture_output=True, text=True, timeout=120,
                         preexec_fn=lambda: os.close(closed))
    assert out.returncode == 0, out.stderr
    assert ("m" in out.stdout) == (closed != 1), out


GONE = """
import errno, os, sys
from hubensemble import errors

read, write = os.pipe()
if sys.argv[1] == "gone":
    os.close(read)  # `python script.py 2>&1 | head`, head gone
os.dup2(write, 2)
broken = BrokenPipeError(errno.EPIPE, "Broken pipe")
try:
    errors.reraise_stop(broken)  # a trial's failure handler, from Python: no command's block
except errors.ReaderGone as e:  # a stop: Keras Tuner took a BrokenPipeError as a failure
    assert e.__cause__ is broken
    print("stopped")
else:
    print("a failure")
"""


@pytest.mark.parametrize("reader", ["gone", "reading"])
def test_a_broken_pipe_of_the_process_output_is_no_failure_from_python(reader):
    """`python script.py 2>&1 | head` calling `fit`: the progress bar's BrokenPipeError was
    recorded as the failure of 16 of the sweep's 60 trials (never run again) and the sweep
    went on. Every failure handler calls `reraise_stop` first: it raises ReaderGone, a stop,
    from that error when the process's own output is gone, and not otherwise (a download's
    socket)."""
    out = subprocess.run([sys.executable, "-c", GONE, reader], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout == ("stopped\n" if reader == "gone" else "a failure\n"), out.stderr


SUMMARY_CUT = """
import os, sys
from hubensemble import __main__, ensemble

read, write = os.pipe()
os.close(read)  # `hubensemble ensemble --run R | true`: the reader has gone by the summary
os.dup2(write, 1)
ensemble.run_ensemble = lambda run, **kwargs: "done"  # the stage's work, finished
lines = int(sys.argv[1])
ensemble.format_ensemble = lambda result: "selection: a b c\\n" * lines
sys.argv = ["hubensemble", "ensemble", "--run", sys.argv[2]]
__main__.run()
"""


@pytest.mark.parametrize("lines", [1, 2000], ids=["buffered", "written"])
def test_a_reader_gone_during_the_closing_summary_says_the_work_is_complete(tmp_path, lines):
    """`hubensemble demo --out R | true`: RUN/log.txt's last line said "run the same command
    again to resume" though the run was complete (the summary's flush, after the command
    returned, and a summary longer than the stream's buffer, written inside it). Now: 141,
    and the log says the work is complete."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    out = subprocess.run([sys.executable, "-c", SUMMARY_CUT, str(lines), str(run)],
                         capture_output=True, text=True, timeout=300)
    assert (out.returncode, out.stderr) == (141, ""), out
    assert (run / "log.txt").read_text().strip().splitlines()[-1].endswith(
        "hubensemble: stopped: its output's reader went away (SIGPIPE: `| head`, a pager "
        "quit) as the command finished: its work is complete")


SECOND_CTRL_C = """
import contextlib, signal, sys
from hubensemble import __main__, cli, exits, runlog

hook = sys.argv[1]
sent = []

def second():  # the second Ctrl-C, inside the first one's cleanup
    if not sent:
        sent.append(1)
        signal.raise_signal(signal.SIGINT)

def ensemble(args):  # the first Ctrl-C, in the stage's work
    signal.raise_signal(signal.SIGINT)
    raise AssertionError("not interrupted")

cli.cmd_ensemble = ensemble
if hook == "log":  # Run.log_file's finally
    close = runlog._RunLogHandler.close
    def closing(self):
        second()
        close(self)
    runlog._RunLogHandler.close = closing
elif hook == "line":  # while the first stop's line is said
    said = exits.stopped_code
    def saying(*a, **k):
        second()
        return said(*a, **k)
    exits.stopped_code = saying
elif hook == "catch":  # as the stop is caught, before its line (a first import, numpy's)
    machine_error = exits.machine_error
    def checking(e):
        second()
        return machine_error(e)
    exits.machine_error = checking
elif hook == "terminal":  # cli.main's outermost block, the terminal's log
    log = cli.terminal_log
    @contextlib.contextmanager
    def logging_to_terminal(args):
        with log(args):
            try:
                yield
            finally:
                second()
    cli.terminal_log = logging_to_terminal
sys.argv = ["hubensemble", *sys.argv[2:]]
__main__.run()
"""


@pytest.mark.parametrize("hook", ["log", "line", "catch", "terminal"])
def test_a_second_ctrl_c_in_the_first_ones_cleanup_ends_the_command_quietly(tmp_path, hook):
    """Ctrl-C, then Ctrl-C again while the first one's stop is cleaned up: in Run.log_file's
    `finally` (the log's close) it said the stop's line twice; in cli.main's outermost block
    (the terminal's log) it printed a traceback. Now, as git: exit 130, the one line (said
    once), no traceback. While the first stop's line is said (`line`) or as it is caught
    (`catch`), the second waits for the line (errors.held_stops): it reached stderr but not
    RUN/log.txt, said by the outer handler after the log had closed."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    out = subprocess.run([sys.executable, "-c", SECOND_CTRL_C, hook, "ensemble", "--run",
                          str(run)], capture_output=True, text=True, timeout=300)
    line = "hubensemble: interrupted; run the same command again to resume"
    assert (out.returncode, out.stderr) == (130, line + "\n"), out
    assert (run / "log.txt").read_text().strip().splitlines()[-1].endswith(line)


LATE_CTRL_C = """
import atexit, contextlib, signal, sys

where = sys.argv[1]

def ctrl_c():
    signal.raise_signal(signal.SIGINT)

class Importing:  # a Ctrl-C while the command line's modules load
    def find_spec(self, name, path=None, target=None):
        if name == "hubensemble.cli":
            ctrl_c()

if where == "import":
    sys.meta_path.insert(0, Importing())
from hubensemble import __main__

if where == "main":  # cli.main has returned; run() has not its code yet
    main = __main__.main
    def returning():
        code = main()
        ctrl_c()
        return code
    __main__.main = returning
elif where == "streams":  # as the streams' guards end, after main
    from hubensemble import stdio
    guard = stdio.guard_streams
    @contextlib.contextmanager
    def guarding():
        with guard() as guards:
            yield guards
        ctrl_c()
    stdio.guard_streams = guarding
elif where == "stopped":  # a command stopped by Ctrl-C, then Ctrl-C in the exit's work
    from hubensemble import cli
    def listing(args):
        ctrl_c()
    cli.cmd_catalogue_list = listing
if where in ("exit", "stopped"):  # exit_process's atexit functions
    atexit.register(ctrl_c)
sys.argv = ["hubensemble", "catalogue", "list"]
__main__.run()
"""


@pytest.mark.parametrize("where", ["import", "main", "streams", "exit", "stopped"])
def test_a_ctrl_c_as_the_process_ends_is_no_traceback_nor_a_wrong_line(where):
    """Ctrl-C between cli.main's return and exit_process (`main`, `streams`: a few bytecodes
    there), or while the command line's modules load (`import`: half a second), printed
    Python's KeyboardInterrupt traceback; now the process ends with 130
    (errors.stop_outside_commands): quietly before run() has main's code, else as in
    exit_process's work after a command that finished (`exit`): 130 and "its work is
    complete". After a command that stopped (`stopped`) that
    line was wrong ("interrupted as the command finished: its work is complete" after
    "interrupted; it had written no result yet"): now its code, its one line."""
    out = subprocess.run([sys.executable, "-c", LATE_CTRL_C, where], capture_output=True,
                         text=True, timeout=300)
    complete = "hubensemble: interrupted as the command finished: its work is complete\n"
    stderr = {"import": "", "main": "", "streams": complete, "exit": complete,
              "stopped": "hubensemble: interrupted; it had written no result yet; run the same "
                         "command again\n"}[where]
    assert (out.returncode, out.stderr) == (130, stderr), out
    assert out.stdout.startswith("NAME") or where in ("import", "stopped"), out


HELP_COMMANDS = [[], ["catalogue"], ["catalogue", "validate"], ["catalogue", "list"],
                 ["catalogue", "add"], ["rank"], ["rank", "merge"], ["ensemble"], ["cost"],
                 ["distill"], ["zoo"], ["zoo", "build"], ["tune"], ["export"], ["predict"],
                 ["evaluate"], ["report"], ["fit"], ["demo"]]


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_to_a_closed_pipe_exits_141_quietly_as_git(flag, in_process):
    """`hubensemble CMD --help | head -1` that ended before the help was written: argparse
    passes over the write's error, so it exited 0 as if its reader had all of it; now 141
    (128 + SIGPIPE) without a word, as any output cut off (`git log | head`). To a reader that
    takes it all: 0, the help on stdout, nothing on stderr. Every sub-command's. (The closed
    pipe in a process of its own each: its exit status is the process's. The whole help in a
    process for the first command, whose stream guards and exit are every command's, and
    through cli.main in this one for the others: the same words, without a process each.)"""
    for i, command in enumerate(HELP_COMMANDS if flag == "--help" else [[]]):
        argv = [sys.executable, "-m", "hubensemble", *command, flag]
        read, write = os.pipe()
        os.close(read)
        try:
            out = subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, text=True,
                                 timeout=120)
        finally:
            os.close(write)
        assert (out.returncode, out.stderr) == (141, ""), (command, out)
        if i == 0:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            code, out, err = out.returncode, out.stdout, out.stderr
        else:
            code, out, err = in_process(*command, flag)
        assert (code, err) == (0, ""), (command, code, out, err)
        assert out.startswith("usage: hubensemble" if flag == "--help"
                              else "hubensemble "), (command, out)


CLEANUP_CTRL_C = """
import logging, signal, sys
from hubensemble import cli, errors, runlog, terminal

where, uses, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stopped, sent = [], []

def second():  # the second Ctrl-C, at the `uses`-th step of the first one's cleanup
    if stopped and not sent:
        stopped.append(1)
        if len(stopped) > uses + 1:
            sent.append(1)
            signal.raise_signal(signal.SIGINT)

def ensemble(args):  # the first Ctrl-C, in the stage's work
    stopped.append(1)
    signal.raise_signal(signal.SIGINT)

class Tripping:  # a block's end takes this lock first thing
    def __init__(self, lock):
        self.lock = lock
    def __enter__(self):
        second()
        return self.lock.__enter__()
    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)

class Blocks(list):  # sigterm_interrupts' end counts its block down first thing
    def __setitem__(self, i, value):
        if value < self[i]:
            second()
        super().__setitem__(i, value)

cli.cmd_ensemble = ensemble
if where == "terminal":  # root_last_resort's end (1st), terminal_log's (2nd)
    terminal._PROCESS_LOCK = Tripping(terminal._PROCESS_LOCK)
elif where == "signals":
    errors._blocks = Blocks(errors._blocks)
elif where == "log":  # Run.log_file's end
    runlog._LOG_GUARD = Tripping(runlog._LOG_GUARD)
try:
    code = cli.main(["ensemble", "--run", run])
except KeyboardInterrupt:
    code = "KeyboardInterrupt"
left = [type(h).__name__ for name in ("", "hubensemble")
        for h in logging.getLogger(name).handlers]
print(code, sent, left, errors.pending_stop(),
      signal.getsignal(signal.SIGINT) is signal.default_int_handler,
      terminal._PROCESS["resorts"], terminal._PROCESS["commands"])
"""


@pytest.mark.parametrize("where,uses", [
    ("terminal", 0), ("terminal", 1), ("signals", 0), ("log", 0)])
def test_a_second_ctrl_c_in_a_blocks_end_leaves_no_handler_behind(tmp_path, where, uses):
    """From Python (cli.main in a notebook's process, which lives on): a second Ctrl-C as
    a block ends after the first one cut it off that block's end: the root's LastResort guard
    (root_last_resort) or the command's console handler (terminal_log, so the next command
    printed each line twice) stayed on the root logger; sigterm_interrupts left its stop
    pending (the next command stopped at once) and its SIGINT handler set. Now each end is
    whole (errors.held_stops): 130, nothing left behind, the second Ctrl-C said once the
    block ended (here it ends main quietly, as for the command line)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    out = subprocess.run([sys.executable, "-c", CLEANUP_CTRL_C, where, str(uses), str(run)],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout == "130 [1] [] None True 0 0\n", out


def test_a_missing_command_is_a_usage_error_whose_help_goes_to_stderr(capsys):
    """`hubensemble | head -0` showed nothing and exited 2: the bare command's help went to
    stdout, into the closed pipe. A missing command is a usage error, as an unknown one: its
    help goes to stderr, exit 2, whatever stdout's reader does (a closed pipe turns only a
    success into 141). `hubensemble zoo` printed demo's help (a closure bound late)."""
    from hubensemble.cli import main

    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "hubensemble"], stdout=write,
                             stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert out.returncode == 2 and out.stderr.startswith("usage: hubensemble [-h]"), out
    assert "demo " in out.stderr, out  # the commands are listed
    for command in ("catalogue", "zoo"):
        assert main([command]) == 2
        said = capsys.readouterr()
        assert said.out == "" and said.err.startswith(f"usage: hubensemble {command} "), said


def test_a_tensorflow_error_is_said_by_its_reason_not_its_wrapper_lines():
    """errors.first_line of real TensorFlow errors: a graph's ("Graph execution error:",
    node and stack lines, then the reason: a tf.function's assertion, Keras fit's label out
    of range), an eager op's ("{{function_node …}} reason [Op:Reshape]": the op's tag is
    kept, it names the op) and a tf.data map
    function's ("Error in user-defined function passed to MapDataset:N transformation with
    iterator: Iterator::…: reason"). Before, users read "Graph execution error: assertion
    failed: …", the kernel's name and the iterator's path; now the reason alone, which is
    the message's own line (checked against the raw text)."""
    import keras
    import numpy as np
    import tensorflow as tf

    @tf.function
    def checked(x):
        tf.debugging.assert_non_negative(x, message="weights must be >= 0")
        return x

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices([1.0, -1.0]).map(
        lambda x: tf.debugging.check_numerics(tf.math.log(x), "log of the input"))
    calls = {"graph assertion": lambda: checked(tf.constant([-1.0])),
             "keras fit": lambda: model.fit(np.zeros((4, 4)), np.full((4,), 7), verbose=0),
             "eager op": lambda: tf.reshape(tf.constant([1.0, 2.0]), [3]),
             "tf.data map": lambda: list(data)}
    for name, call in calls.items():
        with pytest.raises(tf.errors.OpError) as err:
            call()
        raw, said = str(err.value), errors.first_line(err.value)
        lines = [line.strip() for line in raw.splitlines()]
        assert "Graph execution error" not in said and "{{" not in said, (name, said)
        assert "user-defined function" not in said, (name, said)
        assert "\n" not in said and said and any(said in line for line in lines), (name, said)
        if name in ("graph assertion", "keras fit"):
            assert lines[0] == "Graph execution error:", (name, raw)  # TensorFlow's wrapper
            assert said in lines, (name, said)  # the reason's whole line
    assert errors.first_line(ValueError("Bad things:\n  the cause")) == "Bad things: the cause"


# Sends a signal to the process itself as a module is first imported (the audit event
# "import": deterministic, where a timed kill lands anywhere), then runs `hubensemble
# --version` as `python -m hubensemble` does.
SIGNAL_AT_IMPORT = """
import runpy, signal, sys
target, signum, sent = sys.argv[1], getattr(signal, sys.argv[2]), []


def hook(event, args):
    if event == "import" and args[0] == target and not sent:
        sent.append(1)
        signal.raise_signal(signum)


sys.addaudithook(hook)
sys.argv = ["hubensemble", "--version"]
runpy.run_module("hubensemble", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module, signame, code", [
    ("hubensemble.errors", "SIGINT", 130), ("threading", "SIGINT", 130),
    ("hubensemble.errors", "SIGTERM", 143), ("hubensemble.text", "SIGINT", 130)])
def test_a_stop_as_the_command_line_loads_ends_it_quietly(module, signame, code):
    """A Ctrl-C in the first ~0.05 s of `hubensemble …`, while __main__ imported
    hubensemble.errors (and its threading) before its handler was set, printed a Python
    traceback ending in KeyboardInterrupt (exit by SIGINT). Now __main__ sets a handler as
    its first statements: quiet, 130 (143 for SIGTERM), as after the handler (the stop in
    hubensemble.text's import, which --version's parse makes, was right before too). What
    runs before __main__'s first line (the interpreter, site, the package's __init__) is
    Python's."""
    run = subprocess.run([sys.executable, "-c", SIGNAL_AT_IMPORT, module, signame],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == code and run.stderr == "", run
    assert run.stdout == "", run  # stopped before --version printed
