"""Importing TensorFlow without its C++ start-up chatter on the terminal."""

import contextlib
import logging
import os
import sys

# Set by the command line unless --verbose, so worker processes (the zoo builder's) stay as
# quiet as the command that started them.
QUIET_ENV = "HUBENSEMBLE_QUIET_TF"


def import_quietly(setup=None):
    """Imports TensorFlow and initialises its devices with fd 2 sent to os.devnull;
    `setup(tf)`, if given, runs in between (for settings that must precede device start).

    TensorFlow prints oneDNN/CUDA notices before absl logging starts, so
    TF_CPP_MIN_LOG_LEVEL cannot silence them. Python-level errors still surface: they are
    raised after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import tensorflow as tf
        if setup is not None:
            setup(tf)
        tf.config.list_logical_devices()  # the CUDA probe prints when devices initialise


@contextlib.contextmanager
def native_stderr_silenced(when: bool = True):
    """Sends fd 2 (what C++ code writes, e.g. TFLite's "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU.", which no log level controls) to os.devnull inside the block, when
    `when`; Python exceptions raised inside still surface, after stderr is restored."""
    if not when:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    sink = os.open(os.devnull, os.O_WRONLY)  # cheap enough per decoded image
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def quiet() -> bool:
    """Whether the command line asked for TensorFlow's native notices to be hidden (QUIET_ENV:
    set unless --verbose; worker processes inherit it)."""
    return bool(os.environ.get(QUIET_ENV))


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
    finally:
        tf_logger.removeFilter(notice)
