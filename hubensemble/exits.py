"""How a command ends when it cannot finish: its exit code and the one line it prints.

`cli.main` owns the flow; this module owns the words and codes of a stop (a HubensembleError,
Ctrl-C, SIGTERM, the machine's OSError) so that every command says them alike.
"""

import errno

from hubensemble import errors
from hubensemble.errors import HungUp, ReaderGone, Terminated
from hubensemble.stepclock import running_loss
from hubensemble.terminal import PRINTED, log, stopped

#: A stop's first words (its exit code: `errors.stop_code`).
STOP_WORDS = ((ReaderGone, "stopped: its output's reader went away (SIGPIPE: `| head`, "
               "a pager quit)"), (HungUp, "hung up (SIGHUP)"),
              (Terminated, "terminated (SIGTERM)"), (KeyboardInterrupt, "interrupted"))

#: What a stopped command says to go on (`stopped_code`), unless its parser set its own.
RESUME = "run the same command again to resume"

#: The way on from the machine's OSErrors (fileio.MACHINE_ERRNOS, and a lock file's that cannot
#: be made: fileio.LockFileError, with its own errno); else (EACCES, EPERM) "fix the
#: permissions".
WAY_ON = {errno.ENOSPC: "free disk space", errno.EDQUOT: "free space within your disk quota",
          errno.EROFS: "its file system is mounted read-only: write elsewhere (or mount it "
                       "writable)",
          errno.ENOENT: "its folder does not exist and cannot be made there, or its file system "
                        "makes no files (as /proc): give a folder that can hold files",
          errno.EFBIG: "raise the file size limit (`ulimit -f`) or write elsewhere",
          errno.ENOTDIR: "a file is in the way of a folder there, or the reverse: fix the path",
          errno.EISDIR: "a file is in the way of a folder there, or the reverse: fix the path"}


def machine_error(exc: BaseException) -> OSError | None:
    """`fileio.machine_error` (the one list of the machine's OSErrors, MACHINE_ERRNOS),
    imported only when a command failed: it brings NumPy, which a refusal need not wait for."""
    from hubensemble.fileio import machine_error as found

    return found(exc)


def stopped_code(args, exc: BaseException | None, *, finished: bool = False) -> int:
    """Prints why the command stopped on stderr (even with -q), logs it (ERROR, for
    RUN/log.txt) and returns the exit code: 2 for a HubensembleError, 130 for Ctrl-C, 143 for
    SIGTERM, 129 for SIGHUP, 141 when the output's reader went away (`errors.ReaderGone`:
    RUN/log.txt only, as SIGPIPE ends a tool without a word) (what a stopped command keeps is
    the command's to say: `args.interrupted`, set by the parser's set_defaults, then what a
    running tune trial loses, `stepclock.running_loss`; `finished`:
    the stop came as the command returned), 2 for the machine's OSError (full disk, …). The
    message is one line (`errors.shown`), but for a list of problems
    (`HubensembleError.of_lines`). `exc` None: the pending stop (`errors.pending_stop`)."""
    exc = errors.pending_stop() or exc  # Ctrl-C / SIGTERM, whatever error it came out as
    text, code = f"error: {errors.shown(exc)}", 2  # one line, whatever path it quotes
    # A command given --restart starts over again when run the same way: "without --restart"
    # resumes (it said "run the same command again to resume", which discarded the work).
    again = ("run the same command without --restart to resume"
             if getattr(args, "restart", False) is True else RESUME)
    if isinstance(exc, OSError):  # run files are written atomically: none is half-written
        text += "; " + WAY_ON.get(exc.errno, "fix the permissions") + ", then " + again
    if isinstance(exc, KeyboardInterrupt):
        code, said = errors.stop_code(exc), next(said for kind, said in STOP_WORDS
                                                 if isinstance(exc, kind))
        text = said + (
            " as the command finished: its work is complete" if finished else "; " + getattr(
                args, "interrupted", again))
        lost = None if finished else running_loss()  # a tune trial's steps: lost
        text += f" ({lost})" if lost else ""
    if isinstance(exc, ReaderGone):  # as SIGPIPE ends git or cat: no word on the terminal
        log.error("%s", "hubensemble: " + text, extra={PRINTED: True})
    else:
        stopped("hubensemble: " + text, exc)
    return code
