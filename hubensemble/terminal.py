"""What a command shows on the terminal, and what only its log gets.

-q / --quiet: nothing on the terminal but errors: no progress bars, summaries, notes or
warnings; RUN/log.txt and the run's files hold everything. A result meant for programs stays:
`zoo build` prints the zoo folder, `predict` its predictions (it has no -q). `args` below is
the command's parsed arguments (only its `quiet` and `verbose` are read).
"""

from __future__ import annotations

import contextlib
import logging
import sys

log = logging.getLogger("hubensemble.cli")

#: A record attribute: the message was already printed on the terminal (or silenced by -q).
PRINTED = "hubensemble_printed"


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
        print(text, file=sys.stderr)


def summary(args, text):
    """A command's closing summary on stdout, unless -q; always in RUN/log.txt."""
    log_only(text)
    if not getattr(args, "quiet", False):
        print(text)


def stopped(text):
    """Why a command stopped: on stderr even with -q, and at ERROR for RUN/log.txt."""
    log.error("%s", text, extra={PRINTED: True})
    print(text, file=sys.stderr)


def _not_printed(record) -> bool:
    return not getattr(record, PRINTED, False)


def _not_retracing(record) -> bool:
    """False for TensorFlow's retracing notice from outside the blocks that already log it
    at INFO (`_tf.retracing_notice_at_info`: tune, distill and the zoo's model per trial)."""
    from hubensemble._tf import is_retracing_notice

    return not is_retracing_notice(record)


@contextlib.contextmanager
def terminal_log(args):
    """While a command runs, log records reach stderr: warnings and up (DEBUG with
    --verbose, which also lowers the root level; ERROR only with -q, which also routes
    Python's warnings (Keras', NumPy's, …) through logging, where that level hides them),
    but TensorFlow's retracing notice only with --verbose.
    Records already printed (`PRINTED`) are skipped. Everything is undone after, so calling
    `cli.main` again in one process (a notebook, a test) does not print each line twice."""
    root = logging.getLogger()
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if getattr(args, "verbose", False) else
                     logging.ERROR if quiet(args) else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(_not_printed)
    if not getattr(args, "verbose", False):
        console.addFilter(_not_retracing)
    level = root.level
    root.addHandler(console)
    logging.captureWarnings(quiet(args))
    if getattr(args, "verbose", False):
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(console)
        root.setLevel(level)
        logging.captureWarnings(False)
