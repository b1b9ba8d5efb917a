"""The run's log file (RUN/log.txt): its handler on the `hubensemble` logger, attached per
thread, and the logger's level while any run's log is attached."""

import logging
import sys
import threading

from hubensemble.errors import held_stops
from hubensemble.text import printable


class _RunLogHandler(logging.FileHandler):
    """RUN/log.txt's handler. A write the machine refuses (a full disk, a file size limit) is
    kept, not printed as logging's "--- Logging error ---" traceback for every record after
    it; `Run.log_file` raises the first one when its block ends well, so the command stops
    with one line saying so, unless the line that stopped the command named it already."""

    error: OSError | None = None
    error_said = False  # the command's stop line named `error` (terminal.stopped)
    failed = False  # an ERROR record came (the command line logs its refusal so)
    run_log = True  # not the caller's handler (`terminal.LastResort`)

    def emit(self, record):
        self.failed = self.failed or record.levelno >= logging.ERROR
        super().emit(record)

    def filter(self, record):
        # A thread inside run logs of its own writes to those only: two fits from two
        # threads each wrote both fits' lines into both log.txt files.
        mine = _THREAD_LOGS.get(record.thread)
        return (not mine or self.baseFilename in mine) and super().filter(record)

    def handleError(self, record):
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
        else:
            self.keep(exc)

    def format(self, record):
        # A file name that is not UTF-8 (lone surrogates) made the UTF-8 write raise, and
        # the record was lost: its bytes are written escaped, as on the terminal.
        return printable(super().format(record))

    def keep(self, exc: OSError):
        """Keeps the first refused write, naming log.txt (a write's error names no file)."""
        if self.error is None:
            self.error = exc if exc.filename else OSError(exc.errno, exc.strerror,
                                                          self.baseFilename)


#: Thread id -> the log.txt files its `Run.log_file` blocks attached (`_RunLogHandler.filter`),
#: and how many blocks hold the hubensemble logger at INFO, with its level before the first:
#: the first of two threads' blocks to end set it back under the other, whose INFO lines
#: were then lost. Changed under _LOG_GUARD.
_THREAD_LOGS: dict[int, list[str]] = {}
_LEVEL = {"blocks": 0, "before": logging.NOTSET}
_LOG_GUARD = threading.Lock()


def attach(target) -> logging.Handler:
    """Adds a handler writing the `hubensemble` logger's records to the file `target` (str or
    Path: a run's log.txt, appended, UTF-8) for this thread, and holds the logger at INFO (or
    below, as set) until the last attached handler is detached; returns the handler for
    `detach`. Raises OSError when the file cannot be opened."""
    logger = logging.getLogger("hubensemble")
    handler = _RunLogHandler(target, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                           "%(message)s"))
    with _LOG_GUARD:
        logger.addHandler(handler)
        _THREAD_LOGS.setdefault(threading.get_ident(), []).append(handler.baseFilename)
        if _LEVEL["blocks"] == 0:
            _LEVEL["before"] = logger.level
        _LEVEL["blocks"] += 1
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return handler


def detach(handler: logging.Handler) -> None:
    """Removes a handler `attach` added (on the thread that attached it), sets the logger's
    level back when it was the last, and closes it; a refused close (flush) is kept as its
    refused writes are (`_RunLogHandler.keep`), not raised."""
    logger = logging.getLogger("hubensemble")
    with held_stops(), _LOG_GUARD:  # whole: a second Ctrl-C here left the handler on the
        logger.removeHandler(handler)  # logger, for a notebook's or script's next calls
        mine = _THREAD_LOGS[threading.get_ident()]
        mine.remove(handler.baseFilename)
        if not mine:
            del _THREAD_LOGS[threading.get_ident()]
        _LEVEL["blocks"] -= 1
        if not _LEVEL["blocks"]:
            logger.setLevel(_LEVEL["before"])
    try:
        handler.close()  # flushes: refused as the records before were
    except OSError as e:
        handler.keep(e)
