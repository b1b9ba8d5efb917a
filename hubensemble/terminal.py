"""What a command shows on the terminal, and what only its log gets.

-q / --quiet: nothing on the terminal but errors: no progress bars, summaries, notes or
warnings; RUN/log.txt and the run's files hold everything. A result meant for programs stays:
`zoo build` prints the zoo folder, `predict` its predictions (it has no -q). `args` below is
the command's parsed arguments (only its `quiet` and `verbose` are read). Everything here is
written `printable`: a file name that is not UTF-8 shows its bytes escaped (caf\\xe9.jpg) where
a stream that only writes UTF-8 would raise. Progress bars (`progress_bar`) are live on a
terminal and in a notebook, plain lines on a file, a pipe or a terminal of TERM=dumb
(`live_bars`).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import logging
import os
import sys
import threading
from typing import Callable, ParamSpec, TypeVar

from hubensemble.errors import held_stops
from hubensemble.text import printable
from hubensemble.threads import warnings_block

log = logging.getLogger("hubensemble.cli")


def _to_stderr(text):
    """`text` and a newline on stderr, on a line of its own: `tqdm.write` lifts any progress bar
    off the terminal first and draws it again below, where a plain print would land inside the
    bar's line (a warning in the middle of `predict 40%|████`). A line that cites a doc
    (docs/data.md#…) ends with the command that prints it offline (`doccites`)."""
    from tqdm import tqdm

    from hubensemble.doccites import with_way_to_read

    tqdm.write(printable(with_way_to_read(text)), file=sys.stderr)


#: A record attribute: the message was already printed on the terminal (or silenced by -q).
PRINTED = "hubensemble_printed"


@dataclasses.dataclass(frozen=True)
class Showing:
    """Whether the bars of work deep in a call (`command_bar`, `download_bar`) are shown
    (`progress`): set by a running command (`terminal_log`: unless -q; `command` True) and by
    a library call's `progress` argument (`library_progress`); `decided` once either has (an
    inner call can only turn them off). All False when nothing decided."""

    progress: bool = False
    command: bool = False
    decided: bool = False


#: The `Showing` of the running call tree: a context variable, so each thread (and each
#: asyncio task) has its own, and a block's end restores its caller's own value. It was one
#: dict of the process that each block saved and restored: two threads' overlapping library
#: calls (A enters fit(progress=False), B enters one, A leaves, B leaves) restored it out of
#: order, leaving "decided, no bars" for good, and a later fit(progress=True) drew none. A
#: thread the library starts runs in a copy of its caller's context (`threads`), so its bars
#: follow that caller; a thread of the caller's own starts with nothing decided.
_SHOWING = contextvars.ContextVar("hubensemble_showing", default=Showing())


def showing() -> Showing:
    """The running call tree's `Showing` (`_SHOWING`)."""
    return _SHOWING.get()


@contextlib.contextmanager
def _showing(**changes):
    """While the block runs, this call tree's `Showing` has `changes` (its fields); its
    caller's after, whatever other threads did meanwhile."""
    token = _SHOWING.set(dataclasses.replace(_SHOWING.get(), **changes))
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the call tree's bars decided
        with held_stops():
            _SHOWING.reset(token)


#: Seconds a download runs before its bar appears: a small module shows none.
BAR_DELAY = 2.0


#: tqdm's ``smoothing`` of every bar of units of work (`progress_bar`: trials, modules,
#: files): 0, the mean rate since the bar began, recomputed at each redraw, so the time left
#: is never frozen at the last update's.
ETA_SMOOTHING = 0
#: tqdm's ``smoothing`` of a bar of bytes (`download_bar`: downloads and remote copies): its
#: own default, a moving average of the recent rate (the last speed), which a transfer's
#: speed and time left follow; the mean since the bar began hid a stalled or slowed
#: transfer behind its fast start (10 MiB at one per 40 s, then 10 at one per 400 s: 37 min
#: left for the last 10 MiB, where the last speed needs 67).
BYTE_SMOOTHING = 0.3

#: Seconds between two lines of a bar where stderr cannot redraw one (`live_bars` false: a
#: file, a pipe): the first line, then at most one every LINE_SECONDS, and the last. tqdm's
#: own setting TQDM_MININTERVAL (seconds, in the environment) changes it (`_line_seconds`).
LINE_SECONDS = 30.0


def _line_seconds() -> float:
    """The seconds between a line bar's lines: TQDM_MININTERVAL's when it is set to a number,
    read at each bar (tqdm reads it once, as it is imported, so a notebook or a test setting
    it later was not heard: the bar took tqdm's 0.1 s), else LINE_SECONDS."""
    try:
        return float(os.environ.get("TQDM_MININTERVAL", ""))
    except ValueError:
        return LINE_SECONDS


#: The values of ``TERM`` (any case) of a terminal that cannot redraw a line: a bar there is
#: lines, as on a file (`live_bars`).
DUMB_TERMS = ("dumb", "unknown")


def _kernel_stream(stream) -> bool:
    """Whether ``stream`` is a Jupyter kernel's (ipykernel's ``OutStream``, or a subclass: by
    its module, ipykernel is no dependency)."""
    return any(c.__module__.split(".")[0] == "ipykernel" for c in type(stream).__mro__)


def live_bars(stream) -> bool:
    """Whether a progress bar on ``stream`` is drawn live, redrawn in place with carriage
    returns (`progress_bar`): on a terminal (``isatty()``), and in a Jupyter kernel, whose
    stream (ipykernel's ``OutStream``, or a subclass) says it is no terminal but whose front
    end renders the redraws (a notebook, JupyterLab, VS Code, Colab). False for a file, a pipe
    and the like (``2>log``, ``| tee``, ``nohup``, a CI log, a systemd journal, a Slurm .err
    file), where each redraw stayed in the file (5 bar states on one line of rank's log), for
    a closed stream and for None, for a terminal of 0 columns or 0 rows (a pseudo-terminal
    whose size was never set, or only its columns), where tqdm's live bar drew nothing at
    all, and for a terminal whose ``TERM`` says it cannot redraw (`DUMB_TERMS`: Emacs'
    shell-mode, some CI runners), which showed each carriage return as ``^M`` or a new line
    (rich's rule: a "dumb" or "unknown" terminal is not interactive; tqdm does not look).
    ``stream``: a text stream (sys.stderr), or None."""
    if stream is None:
        return False
    if _kernel_stream(stream):
        return True
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError, OSError):  # no isatty; closed (ValueError)
        return False
    if os.environ.get("TERM", "").strip().lower() in DUMB_TERMS:
        return False
    try:  # a terminal of no size (a pty nobody sized, or given columns only: `stty cols
        # 120` on a new pty): tqdm drew nothing there at all (0 rows: its nrows -1 hides all)
        size = os.get_terminal_size(stream.fileno())
        return size.columns > 0 and size.lines > 0
    except (AttributeError, ValueError, OSError):  # a terminal stream without a descriptor
        return True


def progress_bar(iterable=None, *, shown=True, **kwargs):
    """The progress bar of every stage, command and library call alike: a tqdm bar
    (``iterable`` and tqdm's keyword arguments: ``total``, ``desc``, ``unit``, ``leave``,
    ``delay``, ``initial``, ``file``: sys.stderr unless given) whose kind follows the stream
    (`live_bars`):

    - on a terminal or in a notebook, the bar, redrawn in place (tqdm.auto's, as wide as the
      window);
    - anywhere else (a file, a pipe), plain lines without carriage returns or cursor moves,
      each the bar's facts without its meter (``rank:  50% 2/4 [00:31<00:31, 15.5s/module,
      NAME: miss]``: what, percent, k/n, elapsed<remaining, rate, postfix): the first, then at
      most one every `LINE_SECONDS` (its `mininterval`) however often the bar is updated or
      its postfix set, but at once when its description changes (a new phase), and, at
      close, the last state when it moved since the last line
      (whatever ``leave`` says: a file keeps it). A bar with ``delay`` writes nothing when
      closed within it, as on the terminal;
    - with ``shown`` false (-q, ``progress=False``), nothing (tqdm's ``disable``).

    RUN/log.txt never gets a bar's states (they are not log records). Call ``update(n)``,
    ``set_postfix_str``, ``write`` and ``close()`` (or iterate) as on any tqdm bar.

    Its time left is the units left x the mean time per unit done in this call, elapsed
    counted up to each redraw (tqdm's ``smoothing=0``; `ETA_SMOOTHING`), "?" until a unit is
    done: tqdm's default, a moving average of the rate between updates, stood still between
    them, so tune's bar said 01:19 left for the 7 minutes a VGG probe spent embedding (its
    notes redrew the bar; no trial ended). Now the time left grows while a long unit runs.
    A bar of bytes (`download_bar`) gives ``smoothing`` (`BYTE_SMOOTHING`): the recent speed.
    A bar given ``clock`` (a `stepclock.StepClock`: tune's bar of trials) takes its time left
    from the clock (the steps left x the seconds per step measured), "?" until it has one.

    A live bar in a Jupyter kernel is tqdm's widget when ipywidgets is installed (and the
    front end is one tqdm draws widgets in: `_kernel_bar_class`), else the text bar the
    terminal gets, which the front end redraws: tqdm.auto, used before, warned "IProgress
    not found. Please update jupyter and ipywidgets" in a kernel without ipywidgets."""
    from tqdm import tqdm

    stream = kwargs.pop("file", None) or sys.stderr
    clock = kwargs.pop("clock", None)
    kwargs.setdefault("smoothing", ETA_SMOOTHING)
    if not shown:
        return tqdm(iterable, disable=True, file=stream, **kwargs)
    if live_bars(stream):
        kwargs.setdefault("dynamic_ncols", True)
        bar_class = _kernel_bar_class() if _kernel_stream(stream) else tqdm
    else:
        bar_class = _line_bar_class()
    if clock is not None:
        return _clocked_class(bar_class)(iterable, file=stream, clock=clock, **kwargs)
    return bar_class(iterable, file=stream, **kwargs)


@functools.cache
def _clocked_class(base):
    """`base` (a tqdm class) whose time left is its `StepClock`'s: tqdm's documented way, a
    ``format_dict`` with its own ``rate`` (units left / seconds left, 1 s at least while a
    unit is left; 0, shown "?", while the clock knows none), from which tqdm draws the
    remaining time."""

    class Clocked(base):
        def __init__(self, *args, clock=None, **kwargs):
            self.clock = clock  # before tqdm's first draw, in its __init__
            super().__init__(*args, **kwargs)

        @property
        def format_dict(self):
            found = super().format_dict
            clock = self.clock
            units = (found.get("total") or 0) - found["n"]
            if clock is not None and units > 0:
                seconds = clock.seconds_left(units)
                # at least a second left while a trial runs (its steps done, it predicts)
                found["rate"] = 0 if seconds is None else units / max(seconds, 1.0)
            return found

    Clocked.__name__ = f"Clocked{base.__name__}"
    return Clocked


@functools.cache
def _kernel_bar_class():
    """The live bar of a Jupyter kernel's stream (`progress_bar`): tqdm.autonotebook's choice
    (its widget bar in a notebook, JupyterLab, VS Code or Colab with ipywidgets; its text bar
    in qtconsole, Spyder, and wherever ipywidgets is missing) without the warnings it gives
    as it chooses: "IProgress not found" (a kernel without ipywidgets, which gets the text
    bar, as intended here) and its experimental notice (tqdm.auto silences that one too).

    Made once per process, on purpose, as tqdm.auto's is: ipywidgets installed into a running
    kernel gets the widget bar only after a restart of the kernel. Checking again per bar
    would not be cheap (tqdm.notebook binds ipywidgets' FloatProgress as it is imported; it
    would have to be re-imported) nor right: the kernel cannot see whether the front end can
    draw the widget, and a front end that loaded its page before the widget extension was
    installed (or a server without it) shows a widget as the text ``HBox(children=(HTML(…),
    FloatProgress(…)))`` or "Error displaying widget", where the text bar it has now works.
    After installing ipywidgets: restart the kernel and reload the page (README)."""
    import warnings

    from tqdm import TqdmExperimentalWarning, TqdmWarning

    with warnings_block():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        warnings.simplefilter("ignore", category=TqdmExperimentalWarning)
        from tqdm.autonotebook import tqdm
    return tqdm


@functools.cache
def _line_bar_class():
    """`progress_bar`'s tqdm bar of plain lines (made once, when first needed: tqdm is
    imported only then)."""
    from tqdm import tqdm

    class LineBar(tqdm):
        """A tqdm bar written as lines (`progress_bar`)."""

        def __init__(self, *args, **kwargs):
            self._line = None  # (time, n, desc) of the last line written
            kwargs.update(ncols=0, dynamic_ncols=False)  # the facts, without the meter
            kwargs.setdefault("mininterval", _line_seconds())
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):
            """The bar's state as a line, unless one was written less than `mininterval`
            ago with the same description (a new one names a new phase, "pre-training M":
            a zoo build's file lost its phases); nothing for a message (tqdm's clearing
            ``msg=''``). Whether it wrote."""
            if msg is not None or (self._line is not None and self._line[2] == self.desc
                                   and self._time() - self._line[0] < self.mininterval):
                return False
            self._write_line()
            return True

        def _write_line(self):
            self._line = (self._time(), self.n, self.desc)
            self.fp.write(self.__str__() + "\n")
            getattr(self.fp, "flush", lambda: None)()

        def clear(self, nolock=False):
            """Nothing: a line written stays (tqdm clears a bar before a message)."""

        def moveto(self, n):
            """Nothing: no cursor moves (tqdm's nested bars)."""

        def close(self):
            """The last state, when it moved since the last line, then tqdm's close."""
            if not self.disable and self._line is not None and self._line[1] != self.n:
                with self._lock:
                    self._write_line()
            self.leave = False  # tqdm would redraw it, then end the line
            super().close()

    return LineBar


def bar_note(bar, text, *, at_once=False):
    """Says ``text`` in the postfix of ``bar`` (a `progress_bar`, or None): the progress
    inside one long unit of its work (a fine-tune trial's steps in tune's bar, a module's
    images in rank's), which the bar's count only moves past when the unit ends: a trial of
    a real backbone took minutes, and meanwhile a terminal bar stood still (its elapsed time
    too) and a file got no line, slow looking like hung. Call it as often as the work goes
    (every batch): a terminal redraws at most every bar's ``mininterval`` (0.1 s; tqdm's own
    ``set_postfix_str`` redraws at every call), a file gets a line at most every
    `LINE_SECONDS`. Nothing for None or a disabled bar (-q). Safe from another thread
    (Keras' batch callbacks run in its thread pool): tqdm draws under its lock. Keep
    the bar's count current (``update``) rather than iterating it: an iterated bar's count
    lags behind the work until it draws. ``at_once``: a live bar draws the note now, within
    its interval (a phase whose work says nothing for minutes, as a module loading: its
    note, skipped, left the previous one standing); a file's lines keep their interval."""
    if bar is None or bar.disable:
        return
    bar.set_postfix_str(printable(text), refresh=False)
    now = bar._time()
    if (at_once or isinstance(bar, _line_bar_class())  # a line bar keeps its own interval
            or now - getattr(bar, "_noted", float("-inf")) >= bar.mininterval):
        bar._noted = now
        bar.refresh()


def counting_note(bar, what, unit):
    """A function ``note(done, total)`` that says "WHAT: DONE/TOTAL UNIT" (thousands
    separated: "m1: 1,200/3,000 images") in ``bar``'s postfix (`bar_note`): for a loop over
    the batches of one long unit of the bar's work, as rank's embedding of a module."""
    return lambda done, total: bar_note(bar, f"{what}: {done:,}/{total:,} {unit}")


def download_bar(what, total=None):
    """A progress bar (`progress_bar`) of the bytes of a download (or remote copy) of
    ``what`` (a URL or handle): a module of gigabytes took minutes behind rank's bar, which
    said only the module's name.

    ``total`` is the size in bytes when known (Content-Length), else None (a count without a
    percentage). Shown only while a command runs without -q, or a library call with `progress`
    (`library_progress`), after BAR_DELAY seconds, and
    cleared when closed on a terminal (leave=False). Its speed and time left are of the
    recent rate (`BYTE_SMOOTHING`, tqdm's moving average), not the mean since it began as a
    bar of trials' (`ETA_SMOOTHING`): a transfer that slows or stalls shows its last speed.
    Call ``update(n)`` per chunk and ``close()``."""
    return progress_bar(total=total or None, desc=f"download {what}", unit="B",
                        unit_scale=True, unit_divisor=1024, leave=False, delay=BAR_DELAY,
                        shown=showing().progress, smoothing=BYTE_SMOOTHING)


def command_bar(*, total=None, **kwargs):
    """A progress bar (`progress_bar`, tqdm's keyword arguments) shown only while a command
    runs without -q (`terminal_log`), or a library call with `progress` (`library_progress`:
    `load_task`, `fit`, ...), as rank's and tune's: for work deep in a call that has no
    `progress` argument of its own (the folder loader's decoding, which `fit`, `rank`,
    `evaluate` and `export` reach through `load_task`). Disabled (nothing drawn) with -q,
    with progress=False, and where nothing decided (a bare internal call). `total`: a
    number, or a function that counts it, called only when the bar is shown. Call
    ``update(n)`` and ``close()``."""
    shown = showing().progress
    if callable(total):
        total = total() if shown else None
    return progress_bar(total=total, shown=shown, **kwargs)


@contextlib.contextmanager
def library_progress(progress):
    """While the block runs, the bars of work deep in it (`command_bar`: a folder load's
    "reading folder:PATH"; `download_bar`) show when `progress` is true, as a command's show
    unless -q: Python's `load_task` and `fit` showed no bar where the command line did. In a
    command (`terminal_log`) or an outer library call that decided already, `progress` can
    only turn them off: load_task(progress=True) inside fit(progress=False), or inside
    `fit -q`, stays silent. The state is the call tree's (`_SHOWING`): another thread's call
    neither sees nor changes it."""
    was = showing()
    with _showing(progress=bool(progress) and (was.progress or not was.decided),
                  decided=True):
        yield


_P = ParamSpec("_P")
_R = TypeVar("_R")


def shows_progress(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorates a library function that takes a keyword-only `progress` argument: the bars
    deep in its call follow that argument (`library_progress`), and absl finds a handler on
    a bare root (`root_last_resort`). The signature stays the function's, for `inspect`
    (`functools.wraps`) and for type checkers (ParamSpec, PEP 612)."""
    import inspect

    parameter = inspect.signature(function).parameters["progress"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, function

    @functools.wraps(function)
    def call(*args, **kwargs):
        with library_progress(kwargs.get("progress", parameter.default)), root_last_resort():
            return function(*args, **kwargs)

    return call


def quiet(args) -> bool:
    """Whether -q silences the terminal (--verbose overrides it)."""
    return bool(getattr(args, "quiet", False)) and not getattr(args, "verbose", False)


def log_only(text):
    """`text` at INFO for the run's log file; the terminal handler skips it (it is printed)."""
    log.info("%s", text, extra={PRINTED: True})


def say(args, text, *, logged=True):
    """A note for people on stderr, unless -q; in RUN/log.txt when the command has one (-q
    silences the terminal, not the log), unless `logged` is False (something else logs it)."""
    if logged:
        log_only(text)
    if not getattr(args, "quiet", False):
        _to_stderr(text)


def progress_line(text):
    """A line of progress said where a command's arguments are not at hand (its checks
    before TensorFlow loads, `preflight.check_run`): on stderr while a command runs without
    -q (`terminal_log`), never for a library call; in RUN/log.txt when the command has one."""
    log_only(text)
    if showing().command and showing().progress:
        _to_stderr(text)


def summary(args, text):
    """A command's closing summary on stdout, unless -q; always in RUN/log.txt. Its work is
    done then: `args.summarized` is set, so that a stop while it is printed (its reader gone,
    `… | true`) says so (`exits.stopped_code`'s `finished`)."""
    args.summarized = True
    log_only(text)
    if not getattr(args, "quiet", False):
        print(printable(text))


def print_result(text):
    """A command's result on stdout, with -q too, and not logged: `predict`'s predictions,
    `evaluate`'s table, `zoo build`'s folder (predict --json's JSON is ASCII: a file name
    keeps its exact bytes there, as a lone surrogate escape)."""
    print(printable(text))


def stopped(text, exc: BaseException | None = None):
    """Why a command stopped (`exc`, when an exception says it): on stderr even with -q, and
    at ERROR for RUN/log.txt. When RUN/log.txt could not be written, the one line says so:
    nothing more when `exc` is the machine's same refusal (a full disk: the way on is the
    same), else " (RUN/log.txt could not be written either: REASON)" at its end. A second
    "hubensemble: error: … log.txt" line followed it (a new-user check on a full disk;
    `Run.log_file` raises the log's error only when no stop line took it)."""
    log.error("%s", text, extra={PRINTED: True})
    _to_stderr(text + _log_not_written(exc))


def _log_not_written(exc) -> str:
    """What `stopped` adds when a run's log handler (its `run_log`, `error`:
    runlog._RunLogHandler) kept a refused write, marking it said (`error_said`)."""
    from hubensemble.text import escaped

    for handler in logging.getLogger("hubensemble").handlers:
        error = getattr(handler, "error", None) if getattr(handler, "run_log", False) else None
        if error is not None:
            handler.error_said = True
            if isinstance(exc, OSError) and exc.errno == error.errno:
                return ""  # one cause, one way on
            return (f" ({escaped(error.filename or handler.baseFilename)} could not be written "
                    f"either: {error.strerror or error})")
    return ""


def crashed(exc: BaseException):
    """An unexpected error (a bug, not the user's input) that stops a command: its traceback
    at ERROR for RUN/log.txt only, as Python prints it on the terminal as the error rises.
    RUN/log.txt ended at the stage's start line, without it (a new-user check)."""
    log.error("stopped by an unexpected error (a bug: please report it with this log)",
              exc_info=(type(exc), exc, exc.__traceback__), extra={PRINTED: True})


def _not_printed(record) -> bool:
    return not getattr(record, PRINTED, False)


def _not_retracing(record) -> bool:
    """False for TensorFlow's retracing notice from outside the blocks that already log it
    at INFO (`_tf.retracing_notice_at_info`: tune, distill and the zoo's model per trial)."""
    from hubensemble._tf import is_retracing_notice

    return not is_retracing_notice(record)


class _ConsoleHandler(logging.StreamHandler):
    """stderr, through `_to_stderr`, so a record logged while a bar runs gets its own line.
    (tqdm's own `logging_redirect_tqdm` drops the handler's level, which -q and -v set.)"""

    def emit(self, record):
        try:
            _to_stderr(self.format(record))
        except RecursionError:
            raise
        except Exception:  # logging's rule: a failing handler reports, never raises
            self.handleError(record)


class LastResort(logging.Handler):
    """Python's last resort for the records of a run's log block (`rundir.Run.log_file`), on
    a root logger that has no handler: a record of WARNING and up that no other handler would
    take (none on its way up to the root but a run's log, `run_log`, and this) is shown as
    `logging.lastResort` shows it (its level and format: the message alone, on stderr), as
    it would be without the run's log, whose handler on the `hubensemble` logger stopped
    Python from using its last resort (fit from Python said nothing of its warnings, e.g.
    an ensemble at chance). Being a handler, it also keeps absl (TensorFlow's
    SavedModel writer logs through it) from calling logging.basicConfig() on a root without
    one, which printed every INFO record after. TensorFlow's retracing notice is left to
    the run's log, as the command line leaves it without --verbose."""

    def __init__(self):
        super().__init__(logging.WARNING)

    def emit(self, record):
        """Shows `record` on stderr as `logging.lastResort` would, unless it is below its
        level, the retracing notice, or a handler of the caller's takes it."""
        from hubensemble._tf import is_retracing_notice

        last = logging.lastResort
        if (last is None or record.levelno < last.level or is_retracing_notice(record)
                or self._handled(record)):
            return
        try:  # its format, on a line of its own below a progress bar (`_to_stderr`)
            _to_stderr(last.format(record))
        except RecursionError:
            raise
        except Exception:  # logging's rule: a failing handler reports, never raises
            self.handleError(record)

    def _handled(self, record) -> bool:
        """Whether a handler of the caller's (not this, not a run's log) is on the record's
        way up to the root."""
        logger = (logging.getLogger() if record.name == "root"
                  else logging.getLogger(record.name))
        while logger is not None:
            if any(h is not self and not getattr(h, "run_log", False)
                   for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


#: The process's own parts of the blocks below, one per process whichever thread runs them:
#: the root logger's `LastResort` (`root_last_resort`), its level and Python's warnings
#: captured into logging (`terminal_log`). The first block to start sets each, the last to
#: end sets it back, under `_PROCESS_LOCK`: each block saved and restored them itself, so two
#: threads' overlapping blocks restored them out of order (A adds the guard, B finds it and
#: adds none, A removes it: B ran on a bare root, absl's basicConfig left a handler printing
#: every INFO record after; A's -v DEBUG root level came back after both ended).
_PROCESS_LOCK = threading.Lock()
_PROCESS = {"resorts": 0, "guard": None, "commands": 0, "captured": False,
            "verbose": 0, "level": logging.NOTSET}
#: The console handler of the command whose call tree runs (`terminal_log`), None outside one.
_CONSOLE = contextvars.ContextVar("hubensemble_console", default=None)


@contextlib.contextmanager
def root_last_resort():
    """While the block runs, a root logger without handlers has `LastResort` (removed
    after; a root with one is left alone): absl, through which TensorFlow's SavedModel
    writer logs, calls logging.basicConfig() on a bare root, so `export_ensemble` from
    Python left a root StreamHandler that printed every INFO record after it (the next
    fit's "decoding x.jpg: Unsupported marker type 0x20", "rank: done before, reused").
    Used by every stage function (`shows_progress`, `runwriter.writes_run`) and a run's log
    block (`rundir.Run.log_file`). One guard for the process while any thread's block runs
    (`_PROCESS`): added by the first to start, removed by the last to end."""
    root = logging.getLogger()
    with _PROCESS_LOCK:
        if _PROCESS["resorts"] == 0 and not root.handlers:
            _PROCESS["guard"] = LastResort()
            root.addHandler(_PROCESS["guard"])
        _PROCESS["resorts"] += 1
    try:
        yield
    finally:
        with held_stops(), _PROCESS_LOCK:  # whole: a Ctrl-C left the guard on the root
            _PROCESS["resorts"] -= 1
            if _PROCESS["resorts"] == 0 and _PROCESS["guard"] is not None:
                root.removeHandler(_PROCESS["guard"])
                _PROCESS["guard"] = None


@contextlib.contextmanager
def terminal_log(args):
    """While a command runs, log records reach stderr: warnings and up (DEBUG with
    --verbose, which also lowers the root level; ERROR only with -q), but TensorFlow's
    retracing notice only with --verbose. Python's warnings (Keras', NumPy's, …) go through
    logging as "WARNING py.warnings: …": -q's level hides them, and, like every line here,
    they never land inside a progress bar's line (`_to_stderr`).
    Records already printed (`PRINTED`) are skipped; download bars (`download_bar`) show
    unless -q. Everything is undone after, so calling
    `cli.main` again in one process (a notebook, a test) does not print each line twice.

    Commands in several threads at once (`cli.main` from a thread pool): each prints the
    records of its own call tree (its -q, -v), and the process's parts (`_PROCESS`: the root
    level, warnings captured) are set back by the last to end to what they were before the
    first began (warnings captured by the caller before stay captured)."""
    root = logging.getLogger()
    verbose = bool(getattr(args, "verbose", False))
    console = _ConsoleHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else
                     logging.ERROR if quiet(args) else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(_not_printed)
    console.addFilter(lambda record: _CONSOLE.get() in (None, console))
    if not verbose:
        console.addFilter(_not_retracing)
    with _PROCESS_LOCK:
        if _PROCESS["commands"] == 0:
            _PROCESS["captured"] = getattr(logging, "_warnings_showwarning", None) is not None
            logging.captureWarnings(True)
        _PROCESS["commands"] += 1
        if verbose:
            if _PROCESS["verbose"] == 0:
                _PROCESS["level"] = root.level
                root.setLevel(logging.DEBUG)
            _PROCESS["verbose"] += 1
        root.addHandler(console)
    token = _CONSOLE.set(console)
    try:
        with _showing(progress=not quiet(args), command=True, decided=True):
            yield
    finally:  # whole: a second Ctrl-C here left the handler on the root, a notebook's
        with held_stops():  # next command printing each line twice
            _CONSOLE.reset(token)
            _restore_process(root, console, verbose)


def _restore_process(root, console, verbose) -> None:
    """`terminal_log`'s end: its console handler off the root, and the process's parts
    (`_PROCESS`) back when it is the last command to end."""
    with _PROCESS_LOCK:
        root.removeHandler(console)
        if verbose:
            _PROCESS["verbose"] -= 1
            if _PROCESS["verbose"] == 0:
                root.setLevel(_PROCESS["level"])
        _PROCESS["commands"] -= 1
        if _PROCESS["commands"] == 0 and not _PROCESS["captured"]:
            logging.captureWarnings(False)
