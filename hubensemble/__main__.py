"""`python -m hubensemble` and the `hubensemble` console script run the command line."""

import os
import signal


def _stopped_loading(signum, frame):
    """A stop before `errors.stop_outside_commands` (while `errors` loads): nothing is
    begun, so the process ends at once and quietly, with 128 + the signal's number as a
    shell says it (130 for Ctrl-C). Before, a Ctrl-C there printed a Python traceback."""
    os._exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
    if _signum is not None and signal.getsignal(_signum) in (signal.default_int_handler,
                                                             signal.SIG_DFL):
        try:  # (not SIG_IGN: `nohup`; nor another handler set from Python)
            signal.signal(_signum, _stopped_loading)
        except ValueError:  # imported from a thread that is not the main one: not a process
            break

import contextlib  # noqa: E402
import sys  # noqa: E402

from hubensemble import errors  # noqa: E402

errors.stop_outside_commands(loading=_stopped_loading)  # a Ctrl-C as the command line loads
# is no traceback


def main():
    """`cli.main` (imported when called: half a second, which a stop may cut: `run`)."""
    from hubensemble.cli import main as command_line

    return command_line()


def run():
    """The program: `cli.main` on sys.argv, its standard streams made safe first (a closed
    descriptor, a reader that goes away, an encoding without "…" or "é": `stdio`), then
    `errors.exit_process` with its exit code. A stop outside the command's blocks
    (`errors.stop_outside_commands`: while the command line's modules load, its arguments are
    parsed, or as `main` returns) ends it quietly with the stop's code (130, 143, 129);
    argparse's --help and --version whose reader went away (`| head -1` that ended first) end
    with 141, as any output cut off."""
    code = None
    try:
        from hubensemble.stdio import guard_streams, open_closed_descriptors, readable_streams

        open_closed_descriptors()
        readable_streams()
        with guard_streams() as guards:
            try:
                code = main()
                errors.command_ended(code)  # a signal from here on: errors._end_late
            except SystemExit as e:  # argparse: --help, --version, a usage error
                if not (e.code is None or isinstance(e.code, int)):
                    raise
                code = e.code or 0
            with contextlib.suppress(OSError):  # what argparse left in the buffer
                sys.stdout.flush()
            if code == 0 and guards.reader_gone():  # (a command said its stop: 141 then)
                code = 141
    except KeyboardInterrupt as e:  # outside the command's blocks: before or after them
        code = errors.stop_code(e) if code in (None, 0, 1) else code  # a stop said: its code
        errors.command_ended(code)
    errors.exit_process(code)


if __name__ == "__main__":
    run()
