"""Importing TensorFlow without its C++ start-up chatter on the terminal."""

import os
import sys
import tempfile

# Set by the command line unless --verbose, so worker processes (the zoo builder's) stay as
# quiet as the command that started them.
QUIET_ENV = "HUBENSEMBLE_QUIET_TF"


def import_quietly(setup=None):
    """Imports TensorFlow and initialises its devices with fd 2 sent to a scratch file;
    `setup(tf)`, if given, runs in between (for settings that must precede device start).

    TensorFlow prints oneDNN/CUDA notices before absl logging starts, so
    TF_CPP_MIN_LOG_LEVEL cannot silence them. Python-level errors still surface: they are
    raised after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf
            if setup is not None:
                setup(tf)
            tf.config.list_logical_devices()  # the CUDA probe prints when devices initialise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
