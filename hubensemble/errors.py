"""The exception types that hubensemble raises for problems a user can fix, and SIGTERM,
SIGHUP and a closed output as exceptions (`sigterm_interrupts`, `stop_with`, `pending_stop`,
`reraise_stop`)."""

import atexit
import contextlib
import errno
import functools
import inspect
import os
import re
import signal
import sys
import threading
from typing import Callable, ParamSpec, TypeVar


class HubensembleError(Exception):
    """Base class: the CLI prints these as one clear message, without a traceback.

    The message is one line (`shown`), whatever text it quotes (a path with a newline);
    `lines` is for a message that is deliberately several lines, a list of problems:
    `of_lines`."""

    #: The message's lines when it lists several (`of_lines`), each shown on a line of its
    #: own; None: one line.
    lines = None

    @classmethod
    def of_lines(cls, lines, **kwargs):
        """The error whose message is `lines` (str each), one per line: "HEAD:", then one
        problem a line. `shown` keeps these line breaks and escapes any other."""
        err = cls("\n".join(lines), **kwargs)
        err.lines = list(lines)
        return err


def shown(exc: BaseException) -> str:
    """`exc`'s message as the command line prints it (`hubensemble: error: …` and RUN/log.txt):
    control characters of the text it quotes escaped (text.escaped: a run folder named with
    a newline, "a\\nb", split the error line in two), on one line, but for the line breaks of
    a `HubensembleError.of_lines` list (each line escaped)."""
    from hubensemble.text import escaped

    lines = getattr(exc, "lines", None)
    if lines is None or "\n".join(lines) != str(exc):  # (its message changed since)
        return escaped(str(exc))
    return "\n".join(escaped(line) for line in lines)


class CatalogueError(HubensembleError):
    """A catalogue file is malformed; the message names file:line, the field and the fix."""


class DataError(HubensembleError):
    """A data spec cannot be read or the data cannot be used for the method."""


class ModuleLoadError(HubensembleError):
    """A module could not be resolved, verified or loaded.

    `stage` says where it failed: "handle" (no resolver for its form), "local path" (a
    local handle's path does not exist), "network", "archive", "checksum", "savedmodel",
    "keras weights" (a ``keras:NAME`` entry's `weights:` file), "unsafe", "output" (wrong
    rank or non-finite values), "input" (the module does not accept the images it is given),
    "score" (the proxy could not be computed) or "duplicate" (rank: the entry loads the same
    module as an earlier one).

    `message` is the problem, a str or `saidwords.said` parts (a tuple of str, Say and
    Words); `way` (parts, or None) the way on that follows it ("; set output_key on its
    catalogue entry to the embedding's key"), each said in `form` (`saidwords.HINT_FORMS`):
    "yaml" (default), a catalogue file's and rank's words, "python" a call's (HubLayer,
    load_module: "pass output_key=KEY"), "cli" `catalogue add`'s ("pass --output-key KEY");
    `said_as` says it in another (a catalogue's words with a note after them before).
    """

    def __init__(self, message, *, module=None, handle=None, stage=None, way=None,
                 form="yaml"):
        from hubensemble.saidwords import said  # a leaf: nothing of hubensemble

        self.problem, self.way, self.form = message, way, form
        # without the stage and handle: for re-raising with them
        self.message = said(message, form) + (said(way, form) if way else "")
        self.module, self.handle, self.stage = module, handle, stage
        where = []
        if module:
            where.append(f"module {module!r}")
        if handle:
            where.append(f"handle {handle!r}")
        prefix = f"[{stage}] " if stage else ""
        super().__init__(prefix + (", ".join(where) + ": " if where else "") + self.message)

    @property
    def fix(self):
        """The first `saidwords.Say` of `way` that names a field (the field its way on sets,
        and the value meant: a `saidwords.Meta` placeholder when unknown), or None."""
        from hubensemble.saidwords import Say

        return next((p for p in self.way or () if isinstance(p, Say) and p.field), None)

    def said_as(self, form: str, **where) -> "ModuleLoadError":
        """This error with its problem and way on said in `form` (`saidwords.said`'s), and
        `where` (module=, handle=, stage=) replacing its own; ValueError for another form."""
        kept = {"module": self.module, "handle": self.handle, "stage": self.stage, **where}
        return ModuleLoadError(self.problem, way=self.way, form=form, **kept)


class RunError(HubensembleError):
    """A run directory is missing what a stage needs, or holds results from other inputs."""


# Lines of a TensorFlow error that say where, not why.
_LOCATION_LINES = ("Detected at node", "<stack traces unavailable>", "File \"", "[[")

# Keras 3 wraps an error raised in a layer's call as "Exception encountered when calling
# NAME.\n\n<ESC>[1mCAUSE<ESC>[0m\n\nArguments received by NAME: …" (keras/src/utils/
# traceback_utils.py); the cause (the shape or dtype refused) is the reason, the first line
# only says where.
_KERAS_CALL = re.compile(r"Exception encountered when calling (?P<where>[^\n]*?)\.?\s*\n"
                         r"(?P<rest>.*)", re.S)
_KERAS_BOLD = re.compile(r"\x1b\[1m(?P<cause>.*?)\x1b\[0m", re.S)
# An error raised inside a tf.function is re-raised as "in user code: <frames> … TYPE: MSG":
# the last such "TYPE: " line (indented) starts the error itself.
_USER_CODE_ERROR = re.compile(r"^[ \t]+(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit"
                              r"|Interrupt|Warning): ", re.M)
# A printed array (Keras echoes the input it refused): [[[0. 0.] [0. 0.] …]].
_ARRAY_DUMP = re.compile(r"\[[\[\]\s\d.,eE+\-naif]{40,}\]")
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# TensorFlow's decorations of an op error's message, which name its kernel, not the reason:
# "{{function_node __wrapped__Reshape_device_/job:localhost/…}} " before it, the graph
# node's "\n\t [[{{node …}}]]" and the eager op's " [Op:Reshape]" after it.
_OP_DECORATIONS = (re.compile(r"\s*\[\[\{\{node\b.*$", re.S), re.compile(r"\{\{[^}]*\}\}\s*"),
                   re.compile(r"\s*\[Op:[^\]]*\]\s*$"))
# A first line that only says TensorFlow ran a graph (TensorFlow's errors.py, a
# tf.function's or Keras' fit's op error): the reason is its first later line that is no
# location.
_WRAPPER_HEADS = ("Graph execution error:",)
# tf.data's words before a map function's error: "Error in user-defined function passed to
# MapDataset:12 transformation with iterator: Iterator::Root::Prefetch::Map: " (the reason
# follows).
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_DATA_WRAPPER = re.compile(r"^Error in user-defined function passed to \S+ transformation "
                           r"with iterator: \S+: ")
#: The longest cause `first_line` takes from a Keras call error (the middle of a longer one
#: is cut: Keras echoes the arguments it was given).
MAX_REASON = 500


def first_line(exc: BaseException) -> str:
    """One line saying why `exc` happened: the first line of its message, or its type name
    when the message is empty.

    TensorFlow's errors carry multi-line graph dumps, and a graph error's first line is only
    "Graph execution error:": then the first later line that is not a location (node, stack
    frame) is the reason, e.g. "assertion failed: [...]" (another first line ending in ":"
    keeps it before that line); an eager op's "{{function_node …}}" (its kernel's name) and
    tf.data's "Error in user-defined function passed to … transformation with iterator: …: "
    are taken off. Keras 3's error
    from a layer's call starts with "Exception encountered when calling Reshape.call()."
    and puts the cause on later lines: the cause is returned, on one line, with where it
    happened, e.g. "The total size of the tensor must be unchanged, … (in Reshape.call())"
    (an array Keras prints is shown as "[…]"). An error raised inside a tf.function
    ("in user code:" and its stack frames) gives the error at its end. Terminal escape
    sequences are removed; a Keras cause keeps at most MAX_REASON characters (the middle of
    a longer one is cut). A table row, a log line or a refusal wants the reason, never an
    empty one.
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    if text.startswith("in user code:"):
        found = list(_USER_CODE_ERROR.finditer(text))
        if found:
            text = text[found[-1].end():].strip()
    keras_call = _KERAS_CALL.match(text)
    if keras_call:
        rest = keras_call.group("rest")
        bold = _KERAS_BOLD.search(rest)
        cause = bold.group("cause") if bold else rest.split("Arguments received by")[0]
        cause = without_op_decorations(_ARRAY_DUMP.sub("[…]", _ESCAPES.sub("", cause)))
        cause = " ".join(cause.split())
        if cause:
            return _cut(f"{cause} (in {keras_call.group('where')})")
    text = _ESCAPES.sub("", text)
    lines = text.splitlines()
    head = lines[0].strip()
    if head.endswith(":"):
        for line in lines[1:]:
            line = line.strip()
            if line and not line.startswith(_LOCATION_LINES):
                head = line if head in _WRAPPER_HEADS else f"{head} {line}"
                break
    head = _DATA_WRAPPER.sub("", _FUNCTION_NODE.sub("", head))  # (an eager op's closing
    # "[Op:Reshape]" is kept: it names the op, as a graph build's "{{node …}}" inside does)
    return head.strip() or type(exc).__name__


def without_op_decorations(text: str) -> str:
    """`text` (a TensorFlow op error's message, or its first line) without what TensorFlow
    adds around the reason: "{{function_node …}}" (the kernel's name), "[[{{node …}}]]" and
    what follows (the graph node), a closing "[Op:NAME]" (the eager op). A Keras layer's
    call that ran a TensorFlow op eagerly showed them all in its one-line reason:
    "{{function_node __wrapped__Reshape_device_/job:localhost/replica:0/task:0/device:CPU:0}}
    Input to reshape is a tensor with 1568 values, … [Op:Reshape] (in R.call())"."""
    for decoration in _OP_DECORATIONS:
        text = decoration.sub("", text)
    return text.strip()


def _cut(text: str) -> str:
    if len(text) <= MAX_REASON:
        return text
    half = (MAX_REASON - 3) // 2
    return f"{text[:half]} … {text[-half:]}"


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, `docker stop`, a batch scheduler's time limit) raised as a
    KeyboardInterrupt, so that a terminated command cleans up and keeps exactly what Ctrl-C
    does: a sweep's finished trials, no half-written file, no partial zoo."""


class HungUp(Terminated):
    """SIGHUP (the terminal or SSH session that started the command closed; `kill -HUP`)
    raised as a KeyboardInterrupt, as SIGTERM is (`Terminated`): exit code 129. Not when the
    command started with SIGHUP ignored (`nohup`, `trap '' HUP`): it then goes on."""


class ReaderGone(KeyboardInterrupt):
    """The reader of the command's stdout or stderr went away (`| head`, a pager quit, the
    terminal hung up): what SIGPIPE means to a command line tool, raised by the first write
    that found it (`stdio.guard_streams`) as a KeyboardInterrupt, so that the command stops
    as on Ctrl-C (no half-written file, the run resumable) and not as a bug: exit code 141,
    without a word on the terminal, its one line in RUN/log.txt."""


#: The name of the signal behind each kind of stop, for a log line (`stop_name`).
STOP_NAMES = ((ReaderGone, "SIGPIPE (the output's reader went away)"), (HungUp, "SIGHUP"),
              (Terminated, "SIGTERM"), (KeyboardInterrupt, "SIGINT (Ctrl-C)"))


#: Each kind of stop's exit code: 128 + its signal's number, as a shell says it.
STOP_CODES = ((ReaderGone, 141), (HungUp, 129), (Terminated, 143), (KeyboardInterrupt, 130))


def stop_code(stop: KeyboardInterrupt) -> int:
    """The exit code of `stop` (`STOP_CODES`): 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, 141 the
    output's reader gone."""
    return next(code for kind, code in STOP_CODES if isinstance(stop, kind))


def stop_name(stop: KeyboardInterrupt) -> str:
    """"SIGTERM", "SIGHUP", "SIGPIPE (the output's reader went away)" or "SIGINT (Ctrl-C)":
    what stopped the command, for a log line (trials.log's "interrupted")."""
    return next(name for kind, name in STOP_NAMES if isinstance(stop, kind))


#: The Ctrl-C, SIGTERM, SIGHUP or closed output (`stop_with`) that stopped the command inside
#: the current `sigterm_interrupts` block; `_blocks`: how many such blocks are open.
_pending: list = []
_blocks = [0]


def stop_with(stop: KeyboardInterrupt, cause: BaseException) -> None:
    """Stops the command with `stop` (a `ReaderGone` or `HungUp` that no signal raised: a
    write found the output gone) as a signal's handler does: it becomes `pending_stop()` and
    is raised, from `cause`, in the main thread (elsewhere the main thread's next
    `reraise_stop` raises it). Nothing when the command is stopping already (its cleanup's
    lines find the output gone: the first cause stands), and `cause` itself raised outside a
    `sigterm_interrupts` block (a library call's, a notebook's: no command to stop)."""
    if pending_stop() is not None:
        return
    if not _blocks[0]:
        raise cause
    _pending.append(stop)
    if threading.current_thread() is threading.main_thread():
        raise stop from cause


def pending_stop() -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (Ctrl-C) or `Terminated` (SIGTERM) that a signal raised inside
    the current `sigterm_interrupts` block, else None: the command is stopping."""
    return _pending[-1] if _pending else None


def reraise_stop(exc: BaseException | None = None) -> None:
    """Raises the pending Ctrl-C / SIGTERM (`pending_stop`), from `exc`, if there is one.

    Every handler that records a failure and goes on (a trial, a probe, a module in rank, an
    image file, a member) calls it first. A signal's KeyboardInterrupt raised inside
    TensorFlow or Keras code can come out as another exception: a context manager's exit
    that asserts on the state the interrupt left ("Nesting violated for default stack of
    FuncGraph") replaces it. Recorded as the trial's failure, the command went on after a
    SIGTERM, and every later trial failed on the broken graph state (a new-user report).

    A BrokenPipeError or EIO of the process's own stdout or stderr (`output_gone`) is a stop
    too, from Python as well: `ReaderGone` / `HungUp` from it.

    Long work also calls it, without `exc`, at safe points (each training chunk, trial,
    module in rank, fit stage, and when a command returns): a signal that arrives while
    Python runs a weakref callback or a __del__ has its exception ignored ("Exception
    ignored in: …"), and a fit went on to finish after such a SIGTERM (a new-user check).
    """
    stop = pending_stop()
    if stop is not None:
        raise type(stop)(*stop.args) from exc
    if isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EIO) and output_gone():
        # the process's own output is gone: a stop, never a trial's, module's or file's failure
        raise (ReaderGone if exc.errno == errno.EPIPE else HungUp)() from exc


def output_gone() -> bool:
    """Whether the reader of the process's stdout or stderr (descriptors 1, 2) went away: a
    pipe whose reader closed it (`| head`), a terminal that hung up (poll's POLLERR or
    POLLHUP). `reraise_stop` then raises a BrokenPipeError as `ReaderGone` (a terminal's EIO as
    `HungUp`), a stop, from every handler that records a failure and goes on: from Python
    (``python script.py 2>&1 | head`` calling `fit`), the progress bar's BrokenPipeError was
    recorded as the failure of 16 of a sweep's 60 trials ("failed: BrokenPipeError: [Errno
    32] Broken pipe", never run again), the sweep going on; let through as itself, Keras
    Tuner took it as the trial's failure. A socket's broken pipe (a download) is no such
    error. False where poll is missing (Windows)."""
    import select

    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    for fd in (1, 2):
        poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) and not events & select.POLLNVAL
               for _, events in poller.poll(0))


@contextlib.contextmanager
def sigterm_interrupts():
    """Within the block, the first SIGTERM raises `Terminated` in the main thread, and the
    first SIGHUP `HungUp`; that signal's handler from before (usually the default: end the
    process) is then back, so a second one ends the process at once, and each is restored
    when the block ends. A SIGHUP ignored when the block starts (`nohup`) stays ignored.
    Ctrl-C (SIGINT) raises KeyboardInterrupt as Python's own handler does. Any is
    `pending_stop()` from then on, until the block ends (so is a `stop_with`'s).

    A stop raised while Python runs a weakref callback or a __del__ is ignored by Python
    (`reraise_stop` raises it again at the next safe point); within the block
    `sys.unraisablehook` passes over it, so no "Exception ignored in: …" traceback reaches the
    terminal for it, and hands every other unraisable exception to the hook from before.

    Python runs signal handlers only in the main thread: elsewhere this does nothing. Worker
    processes started with "spawn" (the zoo builder's) keep the default handler. A SIGINT
    handler other than Python's default (or the process's, `stop_outside_commands`) is left
    alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = {signal.SIGTERM: Terminated}
    hup = getattr(signal, "SIGHUP", None)  # (none on Windows)
    if hup is not None and signal.getsignal(hup) is not signal.SIG_IGN:  # nohup: ignored
        kinds[hup] = HungUp
    # A handler not set from Python (an embedding host's) is None: the default then.
    before = {signum: signal.getsignal(signum) or signal.SIG_DFL for signum in kinds}
    previous_int = signal.getsignal(signal.SIGINT)

    def on_signal(signum, frame):
        signal.signal(signum, before[signum])
        _pending.append(kinds[signum](signal.Signals(signum).name))
        raise _pending[-1]

    def on_sigint(signum, frame):
        _pending.append(KeyboardInterrupt())
        raise _pending[-1]

    previous_hook = sys.unraisablehook

    def unraisable(info):
        if not any(info.exc_value is stop for stop in _pending):  # not ours: as before
            previous_hook(info)

    depth = len(_pending)
    for signum in kinds:
        signal.signal(signum, on_signal)
    if previous_int in _DEFAULT_INT:
        signal.signal(signal.SIGINT, on_sigint)
    sys.unraisablehook = unraisable
    _blocks[0] += 1
    try:
        yield
    finally:  # whole, whatever signal comes meanwhile: a stop left pending ended the next
        with held_stops() as handlers:  # command at once, in a notebook's process
            _blocks[0] -= 1
            sys.unraisablehook = previous_hook
            for signum in kinds:
                handlers[signum] = before[signum]
            if previous_int in _DEFAULT_INT:
                handlers[signal.SIGINT] = previous_int
            del _pending[depth:]


#: Python's default Ctrl-C handler, and the `hubensemble` process's (`_outside_command`),
#: which a command's block (`sigterm_interrupts`) replaces as it would Python's.
_DEFAULT_INT = [signal.default_int_handler]
#: The `hubensemble` process's command's exit code once `cli.main` returned (`command_ended`).
_ENDED: list = []


def _stop_signals() -> list:
    """SIGINT, SIGTERM and SIGHUP (none on Windows): the signals that stop a command."""
    return [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
            if s is not None]


@contextlib.contextmanager
def held_stops(*, at_once: bool = True):
    """While the block runs, a Ctrl-C, SIGTERM or SIGHUP waits: whatever its handler was (a
    command's, Python's default, SIG_DFL) acts once the block has ended, on the state the
    block left whole. For the short blocks that must not be cut: a stop's line, said into
    RUN/log.txt and on stderr (a second Ctrl-C as the first one's line was said cut it off
    RUN/log.txt: it was said again, by the outer handler, after the log had closed), and
    the `finally` that takes a log handler off its logger; `_tf.native_notices`' redirection
    of fd 2 and its undoing (was `_tf.SignalsDeferred`). With `at_once`, a second signal
    while the block runs acts at once: a write that hangs (a pipe nobody reads) can still
    be stopped; without it (a block that cannot hang: descriptors moved), every signal
    waits and the first acts at the end.

    Python runs signal handlers in the main thread, between bytecodes: the block closes its
    window from its first bytecode on, not from its caller's (a signal in the few bytecodes
    before acts as ever); elsewhere than in the main thread it does nothing. Masking the
    signals (signal.pthread_sigmask) would not hold them: the kernel gives a process's
    signal to any thread that does not block it (TensorFlow's), and Python's handler then
    runs in the main thread all the same. A handler not set from Python, or SIG_IGN, is left
    as it is. Yields the handlers it puts back ({signum: handler}): a block that sets a
    signal's handler (a block's end putting its caller's back) sets it there instead, and
    a held signal meets that one. Its own end puts every handler back even when one already
    back acts meanwhile (a SIGTERM as SIGINT's was not yet: SIGINT's stayed noting for good,
    every later Ctrl-C of the process lost; tests/test_cleanup_ends.py)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before, noted = {}, []

    def restore():
        try:
            _put_back(before)
        finally:  # a handler put back acted (raised) before the others were: they go back too,
            _put_back(before)  # none left noting for good (its signals lost, SIGINT's unset)

    def note(signum, frame):
        noted.append(signum)
        if at_once and len(noted) > 1:  # the second: at once
            restore()
            _act(signum, frame)

    for signum in _stop_signals():
        handler = signal.getsignal(signum)
        if handler is not None and handler is not signal.SIG_IGN:
            before[signum] = handler
            signal.signal(signum, note)
    try:
        yield before
    finally:
        acts = dict(before)
        restore()
        if noted and (len(noted) == 1 or not at_once):
            _act(noted[0], None, acts[noted[0]])


def _put_back(handlers: dict) -> None:
    """Sets each of `handlers` ({signum: handler}) again, the last first, taking each out only
    once it is set (a signal acting between the two finds it set, not lost)."""
    while handlers:
        signum = next(reversed(handlers))
        signal.signal(signum, handlers[signum])
        del handlers[signum]


def _act(signum, frame, handler=None):
    """What `signum`'s handler (the one set now, unless given) does: calls it, or ends the
    process as SIG_DFL does (signal.raise_signal with the default back)."""
    handler = signal.getsignal(signum) if handler is None else handler
    if callable(handler):
        handler(signum, frame)
    elif handler is signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def stop_outside_commands(loading=None) -> None:
    """For the `hubensemble` process (`__main__`), as it starts: a Ctrl-C, SIGTERM or SIGHUP
    outside a command's blocks raises its stop (KeyboardInterrupt, `Terminated`, `HungUp`),
    as a command's own block does (`sigterm_interrupts`, which replaces this handler as it
    does Python's), and once `cli.main` returned (`command_ended`) ends the process as
    `exit_process` does: the command's code, and "… as the command finished: its work is
    complete" when that was 0 or 1. Before, a Ctrl-C in the bytecodes between `cli.main`'s
    return and `exit_process`, or while the arguments were parsed, printed a Python
    traceback, and a SIGTERM there ended the process without a word. A second SIGTERM or
    SIGHUP while a command stops ends it at once, as the default did. A SIGHUP ignored
    (`nohup`) stays ignored; so does a handler not set from Python. `loading` is the handler
    `__main__` set as it began (a stop while this module loaded ends the process quietly):
    replaced here as the default is; with none given, one that is neither stays."""
    if threading.current_thread() is not threading.main_thread():
        return
    _DEFAULT_INT.append(_outside_command)
    for signum in _stop_signals():
        handler = signal.getsignal(signum)
        if handler in (signal.default_int_handler, signal.SIG_DFL) or (
                loading is not None and handler is loading):
            signal.signal(signum, _outside_command)


def command_ended(code) -> None:
    """`cli.main` returned `code`: from now on a stop signal ends the process at once
    (`stop_outside_commands`, `exit_process`)."""
    _ENDED[:] = [code]


def _outside_command(signum, frame):
    if _ENDED:
        _end_late(signum, frame)
    kinds = {signal.SIGINT: KeyboardInterrupt, signal.SIGTERM: Terminated}
    if hasattr(signal, "SIGHUP"):
        kinds[signal.SIGHUP] = HungUp
    if signum != signal.SIGINT and pending_stop() is not None:  # the second: at once
        _act(signum, frame, signal.SIG_DFL)
    raise kinds[signum]() if signum == signal.SIGINT else kinds[signum](
        signal.Signals(signum).name)


#: What a stop signal after the command's work says (`_end_late`).
_LATE_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)"}
if hasattr(signal, "SIGHUP"):
    _LATE_WORDS[signal.SIGHUP] = "hung up (SIGHUP)"


def _end_late(signum, frame):
    """Ends the process at a stop signal after `cli.main` returned its code (`_ENDED`): one
    line "… as the command finished: its work is complete" and 128 + the signal's number
    when the command had done its work (0, or 1: a check that found problems, a file it
    could not read), else quietly with the command's own code (its stop's or error's line
    was said: a second stop adds none)."""
    code = _ENDED[0] if _ENDED else 0
    code = 0 if code is None else code if isinstance(code, int) else 1
    _flush(sys.stdout)
    if code in (0, 1):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a hung up terminal
            sys.stderr.write(f"hubensemble: {_LATE_WORDS[signum]} as the command finished: "
                             "its work is complete\n")
        code = 128 + signum  # 130, 143, 129: as the shell says
    _flush(sys.stderr)
    os._exit(code)


def exit_process(code: int):
    """Ends the `hubensemble` process with `code`, the command's own (console script and
    ``python -m hubensemble``; never `cli.main`, which a notebook may call).

    Python's teardown after a command takes a second or more with TensorFlow loaded; a
    Ctrl-C or SIGTERM then ended the process silently with 130 / 143, the work done and the
    summary printed (two new-user checks). The atexit functions (TensorFlow's, logging's
    flush, multiprocessing's joins, weakref finalizers) run here, a stop meanwhile ending the
    process at once (`_end_late`: with one line saying the work is complete, unless the
    command had stopped or failed: then quietly, with its code); then the streams are
    flushed and the process ends with `os._exit`, skipping the interpreter's own teardown
    (freeing modules and C++ objects: nothing of the run's files, all closed by then),
    during which CPython puts the default handlers back and a signal kills the process
    without a word."""
    if threading.current_thread() is not threading.main_thread():
        sys.exit(code)  # signal handlers are the main thread's: the usual exit
    command_ended(code)
    for signum in _LATE_WORDS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup: ignored
            signal.signal(signum, _end_late)
    atexit._run_exitfuncs()  # (CPython's and PyPy's; it clears them: none runs twice)
    for stream in (sys.stdout, sys.stderr):
        _flush(stream)
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


def _flush(stream) -> None:
    """Flushes `stream`; a closed pipe (``hubensemble predict … | head``) is not an error, nor
    a closed stream (None: Python's sys.stdout when its descriptor was closed)."""
    try:
        stream.flush()
    except (OSError, ValueError, AttributeError):
        pass


_P = ParamSpec("_P")
_R = TypeVar("_R")


def check_keywords_known(function, signature, kwargs, args=(), *, also=()) -> None:
    """TypeError naming `function` as Python's own call does, with the keyword it most likely
    means (`keyword_meant`), for a keyword of `kwargs` that `signature`
    (`inspect.signature(function)`) has no parameter of and no **kwargs to take: "run_tune() got
    an unexpected keyword argument 'budegt' (did you mean budget?)" (Python 3.11 says no more
    than its first half), or, when none is meant, the keywords it takes: "predict() got an
    unexpected keyword argument 'zzz'; it takes model_dir, image_paths, …" (those not named with
    a "_" first). When **kwargs takes it (fit's options, load_module's fields, a Keras layer's
    name and dtype), only a keyword that mistypes a named parameter the call leaves out (neither
    among `args`, the call's positional ones, nor in `kwargs`) or one of `also` (the names
    **kwargs passes on to a base class: a Keras layer's "name"), or that names a required one
    left out in other words (`out_dir` for fit's `out`): fit(catalgue=…) was told "missing 1
    required positional argument: 'catalogue'"; the function itself refuses the others, naming
    what its **kwargs take. The public functions' decorators call it (`checks_keywords`,
    `kerasenv.with_stage_settings`, `runwriter.bind_call`) before any work."""
    params = signature.parameters
    names = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        given = {n for n, p in list(params.items())[:len(args)] if p.kind is not p.VAR_POSITIONAL}
        left = [n for n in names if n not in given and n not in kwargs]
        required = [n for n in left if params[n].default is params[n].empty]
        for key in kwargs:
            if key in params or key in also:
                continue
            meant = keyword_meant(key, [*left, *(a for a in also if a not in kwargs)],
                                  required)
            if meant:
                raise TypeError(f"{function.__name__}() got an unexpected keyword argument "
                                f"{key!r} (did you mean {meant}?)")
        return
    shown = [n for n in names if not n.startswith("_")]  # (a private one is no way on)
    for key in kwargs:
        if key not in names:
            meant = keyword_meant(key, names, shown)
            raise TypeError(f"{function.__name__}() got an unexpected keyword argument "
                            f"{key!r}" + (f" (did you mean {meant}?)" if meant else
                                          f"; it takes {', '.join(shown)}" if shown else ""))


def keyword_meant(key: str, names, worded=()) -> str | None:
    """The one of `names` (a function's keywords) that the keyword `key` most likely means:
    the one it mistypes by git's rule (`text.closest_name`: budegt, catalgue, handel), else
    the one of `worded` that it names in other words, their first word alike once a plural
    "s" or a "dir" is taken off (out_dir and outdir for out, imagess and images for
    image_paths, model for model_dir), when just one does; None otherwise."""
    from hubensemble.text import closest_name  # (text imports nothing of errors at load)

    meant = closest_name(key, names)
    if meant:
        return meant

    def stem(word):
        first = word.lower().replace("-", "_").strip("_").split("_")[0]
        first = first[:-3] if first.endswith("dir") and len(first) > 3 else first
        return first.rstrip("s") or first

    alike = [n for n in worded if stem(n) == stem(key)] or [  # (imgaes for image_paths)
        n for n in worded if closest_name(stem(key), [stem(n)])]
    return alike[0] if len(alike) == 1 else None


def checks_keywords(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator of a public function that is no stage (`load_catalogue`, `predict`,
    `greedy_select`, …): a mistyped keyword is refused naming the one meant
    (`check_keywords_known`), before any work, as the stages' decorators refuse it
    (`kerasenv.with_stage_settings`, `runwriter.writes_run`). Here, where hub's
    module writer may import it (a leaf of the import graph). Its signature stays the function's,
    for `inspect` and for type checkers (ParamSpec, PEP 612). TensorFlow-free.

    Above a dataclass's decorator, a public record's (`ModuleSpec`, `Task`): its __init__,
    refusing as "ModuleSpec() got an unexpected keyword argument 'nmae' (did you mean
    name?)"; the class is returned, changed in place."""
    if isinstance(function, type):
        cls, init = function, function.__init__
        signature = inspect.signature(init)  # without self: the call's own words
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])

        also = [n for base in cls.__mro__[1:] if "__init__" in vars(base)
                for n, p in _init_keywords(base)] if any(
            p.kind is p.VAR_KEYWORD for p in signature.parameters.values()) else []

        @functools.wraps(init)
        def checked_init(self, *args, **kwargs):
            check_keywords_known(cls, signature, kwargs, args, also=also)
            init(self, *args, **kwargs)
        # Keras' Operation.__new__ reads getfullargspec(cls.__init__), which follows no
        # __wrapped__ but a __signature__, beside inspect.signature, which follows both.
        checked_init.__signature__ = inspect.signature(init)  # type: ignore[attr-defined]
        cls.__init__ = checked_init
        return cls
    signature = inspect.signature(function)

    @functools.wraps(function)
    def checked(*args, **kwargs):
        check_keywords_known(function, signature, kwargs, args)
        return function(*args, **kwargs)
    return checked


def _init_keywords(cls) -> list:
    """[(name, parameter)] of the keywords `cls`'s own __init__ names (a Keras layer's base:
    name, dtype, trainable, …); [] when its signature cannot be read (a C type's)."""
    try:
        params = inspect.signature(vars(cls)["__init__"]).parameters
    except (TypeError, ValueError):
        return []
    return [(n, p) for n, p in list(params.items())[1:]
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
