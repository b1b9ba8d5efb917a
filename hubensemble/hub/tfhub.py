"""tensorflow_hub, importable without setuptools' ``pkg_resources``.

tensorflow_hub 0.16.1 (the newest release) checks TensorFlow's version at import with
``from pkg_resources import parse_version``. setuptools 82 removed ``pkg_resources``, and
TensorFlow 2.22 no longer requires setuptools at all (2.21 did, unbounded, so it brought the
newest): in a Python 3.12+ venv (which carries no setuptools), or next to any setuptools 82 or
later, ``import tensorflow_hub`` raised ``ModuleNotFoundError: No module named
'pkg_resources'``, and with it every command that touches a module (tensorflow/hub#934; the
fix, tensorflow/hub#935, is not released).

`import_tensorflow_hub` is the one way hubensemble imports it: when ``pkg_resources`` cannot be
found (a feature check, not a version check), a stand-in holding only ``parse_version``
(``packaging.version.parse``, what #935 uses; ``packaging`` is a TensorFlow requirement) is in
``sys.modules`` for the length of that import alone, then taken out again, so that other code
still finds ``pkg_resources`` missing. An installed ``pkg_resources`` is used as it is.
Importing this module imports tensorflow_hub (``hubensemble.hub`` imports it first, so
that its sub-modules' own ``from tensorflow_hub import ...`` find it imported).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

from hubensemble.errors import held_stops

_MISSING = object()
_LOCK = threading.Lock()


def import_tensorflow_hub() -> types.ModuleType:
    """The ``tensorflow_hub`` module, imported once per process (see the module docstring for
    the ``pkg_resources`` stand-in and its source). Errors: tensorflow_hub's own ImportError
    when it or TensorFlow is not installed."""
    module = sys.modules.get("tensorflow_hub")
    if module is not None:
        return module
    with _LOCK:
        if "tensorflow_hub" in sys.modules or _pkg_resources_found():
            return importlib.import_module("tensorflow_hub")
        from packaging.version import parse

        stand_in = types.ModuleType("pkg_resources", "hubensemble's stand-in while "
                                    "tensorflow_hub is imported (hubensemble.hub.tfhub)")
        stand_in.parse_version = parse
        before = sys.modules.get("pkg_resources", _MISSING)
        sys.modules["pkg_resources"] = stand_in
        try:
            return importlib.import_module("tensorflow_hub")
        finally:  # whole (errors.held_stops): a Ctrl-C here left the stand-in as pkg_resources
            with held_stops():
                if before is _MISSING:
                    sys.modules.pop("pkg_resources", None)
                else:
                    sys.modules["pkg_resources"] = before


def _pkg_resources_found() -> bool:
    """Whether ``import pkg_resources`` would find a module (without importing it: its import
    scans every installed distribution)."""
    try:
        return importlib.util.find_spec("pkg_resources") is not None
    except (ImportError, ValueError):  # a None or spec-less entry in sys.modules
        return False


def submodule(name: str) -> types.ModuleType:
    """``tensorflow_hub.<name>`` (e.g. "file_utils"), tensorflow_hub imported first by
    `import_tensorflow_hub`."""
    import_tensorflow_hub()
    return importlib.import_module(f"tensorflow_hub.{name}")


import_tensorflow_hub()
