"""A module's load-time warnings (a Rescaling model fed [0, 1], a signature ending in a
Softmax, a module used frozen): said once per process, and collected so that the embedding
cache keeps them with the embeddings and repeats them when it serves a module unloaded."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re

from hubensemble.errors import held_stops

#: The texts warned of in this process: a repeat is logged at DEBUG.
_WARNED: set = set()
#: The lists `captured` is filling (nested captures each get every warning).
_SINKS: contextvars.ContextVar = contextvars.ContextVar("module_warning_sinks", default=())


#: What `hub.outputs.probability_rows` counts: the rows seen and their sums.
_COUNTED = re.compile(r"(?:all \d+ rows|the row)( of \d+ values it returned are non-negative "
                      r"and sum to 1) \(sums [^)]*\)")


def _said_as(text: str) -> str:
    """`text` without what it counts of the rows it saw (`_COUNTED`): a warning that counts
    them ("all 1797 rows of 5 values …" of rank's train split, "all 300 rows" of its test
    split, "all 3 rows" of a probe batch) is one warning, said once. Only that: two modules
    whose names differ by a digit (r8x2-generalist-0, -1) are two warnings."""
    return _COUNTED.sub(r"rows\1", text)


def module_warning(logger: logging.Logger, message: str, *args) -> None:
    """Logs ``message % args`` about a module on `logger`: WARNING the first time this
    process says that text (its rows' counts aside: `_said_as`), DEBUG after (a module
    loaded by rank, each trial and the export is warned of once). The text also goes to
    every list a `captured` block is filling."""
    text = message % args if args else message
    for sink in _SINKS.get():
        sink.append(text)
    key = _said_as(text)
    logger.log(logging.DEBUG if key in _WARNED else logging.WARNING, "%s", text)
    _WARNED.add(key)


#: The modules (fingerprints) whose output was looked at for class probabilities in this
#: process (`ModuleRuntime.warn_if_probabilities`): a catalogue HubLayer probes one only when
#: nothing has (`first_look`).
_PROBED: set = set()


def first_look(fingerprint: str) -> bool:
    """True the first time this process looks at the output of the module `fingerprint` (a
    `hub.ModuleFiles.fingerprint`) for class probabilities, and marks it looked at."""
    first = fingerprint not in _PROBED
    _PROBED.add(fingerprint)
    return first


@contextlib.contextmanager
def captured():
    """Within the block, every `module_warning` text (repeats included) is appended to the
    list it yields, in order; it is still logged as usual. For the current thread / context
    only."""
    sink: list = []
    token = _SINKS.set(_SINKS.get() + (sink,))
    try:
        yield sink
    finally:  # whole (errors.held_stops): a Ctrl-C here left the list taking every later text
        with held_stops():
            _SINKS.reset(token)
