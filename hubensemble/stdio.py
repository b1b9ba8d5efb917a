"""The process's standard streams when the shell closes or cuts them: a descriptor closed at
start (`open_closed_descriptors`), and a reader that goes away while the command writes
(`guard_streams`: ``| head``, a pager quit, a terminal or SSH session that hung up),
and a terminal or pipe whose encoding cannot write every character (`readable_streams`).

Only the `hubensemble` process (`__main__.run`) uses them: a Python caller's streams are its
own (a notebook's, a script's)."""

import codecs
import contextlib
import errno
import os
import signal
import sys

from hubensemble import errors
from hubensemble.errors import HungUp, ReaderGone
from hubensemble.text import commands_as_named, readable

#: A write's errnos that say nobody reads the stream any more: a pipe whose reader closed it
#: (EPIPE; SIGPIPE is ignored in Python), a terminal that hung up (EIO), a terminal device gone
#: (ENXIO).
GONE_ERRNOS = frozenset({errno.EPIPE, errno.EIO, errno.ENXIO})


def open_closed_descriptors() -> None:
    """Opens os.devnull on each of descriptors 0, 1 and 2 that is closed (``>&-``, ``2>&-``,
    ``<&-``, a daemon's or cron's start), as git does at start (`sanitize_stdfds`), and gives
    Python's sys.stdin / stdout / stderr, None then, a text stream on it.

    Else the first file the command opened took the closed number (RUN/log.txt, run.json's
    lock), so that TensorFlow's C++ notices on descriptor 2 or a `print` landed in it, and
    `hubensemble demo >&-` stopped with "AttributeError: 'NoneType' object has no attribute
    'flush'" as a bug after its work (a new-user check)."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:  # (the lowest free number: it is `fd` when all below are open)
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", buffering=-1 if fd == 0 else 1,
                                    closefd=False, errors="backslashreplace"))


#: Encodings that write every character: the streams keep their own error handler.
_ALL_CHARACTERS = frozenset({"utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                             "utf-32-le", "utf-32-be", "utf-8-sig", "gb18030"})


def readable_streams() -> None:
    """Gives sys.stdout and sys.stderr the error handler `text.readable` when their encoding
    cannot write every character (``PYTHONIOENCODING=ascii``, ``latin-1``, a C or Latin-1
    locale with ``PYTHONUTF8=0``): "…", "→", "×", "–" are written "...", "->", "x", "-" and
    any other character its escape ('caf\\xe9'). Python's stdout is strict there: `predict`
    of 'café.png' and `catalogue validate` of a file named so stopped with a
    UnicodeEncodeError traceback after their work, and stderr's backslashreplace showed
    "\\u2026" in every message (a new-user check). A UTF encoding, and an error handler the
    user chose that never fails (``PYTHONIOENCODING=ascii:replace``), are left as they
    are. A command of advice in backticks ("`hubensemble fit … --out '/x/café s'`") gives a
    name's character that the stream writes as other bytes than the name holds as those
    bytes in bash's $'…' ('/x/caf'$'\\xc3\\xa9'' s': `text.readable`, and on a Latin-1 stream,
    which writes 'é' as 0xe9, `text.commands_as_named`): pasted, it names the folder."""
    chosen = "" if sys.flags.ignore_environment else \
        os.environ.get("PYTHONIOENCODING", "").partition(":")[2]
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if chosen not in ("", "strict", "surrogateescape") or not encoding \
                or not hasattr(stream, "reconfigure"):
            continue
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            continue
        if name not in _ALL_CHARACTERS:
            with contextlib.suppress(OSError, ValueError):  # a stream closed under us
                stream.reconfigure(errors=readable())
            if name != "ascii":  # it writes 'é', but as Latin-1's byte: not the name's
                setattr(sys, "stdout" if stream is sys.stdout else "stderr",
                        _AsNamed(stream, name))


class _AsNamed:
    """A text stream whose written text has each character of a command of advice that its
    encoding writes as other bytes than a file's name holds as those bytes
    (`text.commands_as_named`); everything else is the stream's own."""

    def __init__(self, stream, encoding: str):
        self._stream, self._encoding = stream, encoding

    def write(self, text):
        self._stream.write(commands_as_named(text, self._encoding))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Guarded:
    """A text stream whose write or flush that finds its reader gone (`GONE_ERRNOS`) sends
    the stream's descriptor to os.devnull (nothing more to say there, TensorFlow's C++
    notices included) and stops the command (`errors.stop_with`); everything else is the
    stream's own."""

    def __init__(self, stream):
        self._stream = stream
        self.gone = 0  # the errno that found its reader gone

    def write(self, text):
        if not self.gone:
            try:
                return self._stream.write(text)
            except OSError as e:
                self._lost(e)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if not self.gone:
            try:
                self._stream.flush()
            except OSError as e:
                self._lost(e)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def _lost(self, exc: OSError):
        if exc.errno not in GONE_ERRNOS:
            raise exc
        self.gone = exc.errno
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())  # its buffer's bytes: flushed there
            os.close(null)
        if exc.errno == errno.EPIPE:
            errors.stop_with(ReaderGone("SIGPIPE"), exc)
        elif _hangup_handled():  # a terminal that hung up: SIGHUP's meaning
            errors.stop_with(HungUp("SIGHUP"), exc)
        # else (`nohup`, `trap '' HUP`): the command goes on, its output discarded


def _hangup_handled() -> bool:
    hup = getattr(signal, "SIGHUP", None)
    return hup is not None and signal.getsignal(hup) is not signal.SIG_IGN


@contextlib.contextmanager
def guard_streams():
    """While the block runs, sys.stdout and sys.stderr stop the command when their reader
    goes away, as SIGPIPE stops a command line tool (git, coreutils): exit code 141, no word
    on the terminal, one line in RUN/log.txt (`exits.stopped_code`), run files as Ctrl-C
    leaves them (none half-written, the run resumable). A terminal that hung up (EIO) stops
    it as SIGHUP does (129), unless SIGHUP is ignored (`nohup`): then it goes on, its output
    discarded. Before, `hubensemble demo 2>&1 | head -3` (a progress bar writes to stderr)
    stopped rank with a BrokenPipeError and "stopped by an unexpected error (a bug: …)" and
    its 40-line traceback in RUN/log.txt; in a sweep the error could be taken for a trial's
    failure. A write outside a `errors.sigterm_interrupts` block raises its OSError as
    before (`cli.main` ends quietly with 141 on a BrokenPipeError). Yields the guards: their
    `reader_gone` says whether a write found a reader gone (argparse's --help passes over
    the error: `__main__.run` ends with 141 then)."""
    before = sys.stdout, sys.stderr
    guards = _Guards([_Guarded(s) if s is not None else s for s in before])
    sys.stdout, sys.stderr = guards.streams
    try:
        yield guards
    finally:
        sys.stdout, sys.stderr = before


class _Guards:
    """`guard_streams`' two streams (stdout, stderr; None where Python has none)."""

    def __init__(self, streams):
        self.streams = streams

    def reader_gone(self) -> bool:
        """Whether a write found a stream's reader gone (EPIPE: ``| head`` that ended), also
        where nobody was told: argparse's --help and --version pass over the error."""
        return any(s is not None and s.gone == errno.EPIPE for s in self.streams)
