"""The Keras configuration a user already carries (KERAS_BACKEND, keras.json, a notebook's
global settings), made harmless to hubensemble's stages, in one place (TensorFlow-free to
import).

* The backend (`configured_backend`, `check_backend`, `use_tensorflow_backend`): hubensemble
  runs Keras on TensorFlow only (its modules are TensorFlow SavedModels). The command line
  sets ``KERAS_BACKEND=tensorflow`` for its own process (and its workers) and says so once
  in the log; a Python caller whose Keras is, or would be, on another backend gets a
  HubensembleError naming the variable or keras.json and the way on, before Keras is
  imported (``KERAS_BACKEND=jax`` without jax installed was a ModuleNotFoundError from
  inside Keras, and rank called every module of the catalogue broken).
* The global settings (`stage_settings`): Keras' floatx, image data format, global dtype
  policy (mixed precision), its max epochs / steps per epoch caps and TensorFlow's
  ``run_functions_eagerly``, from keras.json, KERAS_MAX_EPOCHS / KERAS_MAX_STEPS_PER_EPOCH
  or a caller's ``keras.config.set_floatx`` / ``keras.mixed_precision.set_global_policy``,
  are set to Keras' defaults while a stage runs and given back after: the stages compute
  the numbers they compute without them (keras.json ``"floatx": "float64"`` failed every
  trial with "Tensor conversion requested dtype float32 for Tensor with dtype float64"),
  and the exported SavedModel does not depend on them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import threading
from typing import Callable, Mapping, ParamSpec, TypeVar

from hubensemble.errors import HubensembleError, check_keywords_known, held_stops
from hubensemble.fileio import read_json
from hubensemble.text import escaped, shell_word

log = logging.getLogger(__name__)

BACKEND_ENV = "KERAS_BACKEND"
#: The one backend hubensemble runs Keras on.
BACKEND = "tensorflow"


def keras_home(environ: Mapping[str, str] | None = None) -> str:
    """Keras' folder (str; keras.json, its downloads' cache) by Keras' own rule, as a Keras
    imported now would take it: ``$KERAS_HOME`` when KERAS_HOME is set, else ``~/.keras``,
    or ``/tmp/.keras`` when the home folder cannot be written (keras/src/backend/config.py,
    3.15). Not expanded (``~`` left as set), as Keras keeps it."""
    environ = os.environ if environ is None else environ
    if "KERAS_HOME" in environ:
        return environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def imported_keras_home() -> str:
    """The Keras folder of the Keras imported in this process (str, not expanded): the one
    it took at its import (a KERAS_HOME set later does not move it), read from the internal
    ``keras.src.backend.config.keras_home`` (no public API gives it; noted in setup.cfg);
    `keras_home` of the environment now when Keras is not imported or has no such
    internal."""
    getter = getattr(sys.modules.get("keras.src.backend.config"), "keras_home", None)
    folder = getter() if "keras" in sys.modules and callable(getter) else None
    return folder if isinstance(folder, str) and folder else keras_home()


def keras_config_path(environ: Mapping[str, str] | None = None) -> str:
    """The keras.json Keras reads at import (str), by Keras' own rule: ``keras.json`` in
    `keras_home` (``$KERAS_HOME``, ``~/.keras`` or ``/tmp/.keras``), expanded."""
    return os.path.expanduser(os.path.join(keras_home(environ), "keras.json"))


def configured_backend(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(backend, what chose it) of a Keras imported now, by Keras' rule: a non-empty
    KERAS_BACKEND ("KERAS_BACKEND=jax"), else keras.json's "backend" ('"backend": "jax" in
    /home/me/.keras/keras.json'), else ("tensorflow", "Keras' default"). A keras.json that
    cannot be read or parsed is Keras' default, as Keras takes it."""
    environ = os.environ if environ is None else environ
    value = environ.get(BACKEND_ENV, "")
    if value:
        return value, f"{BACKEND_ENV}={shell_word(value)}"
    path = keras_config_path(environ)
    try:  # as Keras reads it, open() and json.load: UTF-8 (its locale's), a BOM is not JSON
        config = read_json(path)
    except (OSError, ValueError):
        config = {}
    backend = config.get("backend") if isinstance(config, dict) else None
    if isinstance(backend, str) and backend:
        return backend, f'"backend": "{escaped(backend)}" in {escaped(path)}'
    return BACKEND, "Keras' default"


def imported_backend() -> str | None:
    """The backend of the Keras imported in this process, by its public
    ``keras.config.backend()`` (None: Keras not imported yet, or its import failed: its
    config module may stay behind, e.g. after TensorFlow's own try of ``tf.keras`` on a
    backend not installed, but ``keras`` is not in sys.modules; or is still being
    imported, its ``config`` not there yet)."""
    backend = getattr(getattr(sys.modules.get("keras"), "config", None), "backend", None)
    return backend() if callable(backend) else None


def backend_refusal(imported: str | None, configured: tuple[str, str]) -> str | None:
    """The words refusing a Python caller whose Keras runs on another backend than
    TensorFlow: `imported` (the imported Keras' backend, None when not imported yet) and
    `configured` (`configured_backend`); None when all is TensorFlow. Pure."""
    backend, source = configured
    way = (f"set os.environ[{BACKEND_ENV!r}] = {BACKEND!r} before the first `import keras` "
           f"(or export {BACKEND_ENV}={BACKEND}), or run the `hubensemble` command line, "
           f"which uses TensorFlow for its own process whatever {BACKEND_ENV} or keras.json "
           "say")
    if imported is not None:
        if imported == BACKEND:
            return None
        said = f" ({source})" if backend == imported else ""
        return (f"Keras in this process runs on the {imported!r} backend{said}, and "
                "hubensemble runs Keras on TensorFlow only (its modules are TensorFlow "
                "SavedModels): in a new Python process (restart the notebook's kernel) "
                + way)
    if backend == BACKEND:
        return None
    return (f"{source} would load Keras on the {backend!r} backend, and hubensemble runs "
            "Keras on TensorFlow only (its modules are TensorFlow SavedModels): " + way)


def check_backend() -> None:
    """Raises HubensembleError (`backend_refusal`) when this process's Keras is, or would
    be once imported, on another backend than TensorFlow. Cheap (no import); called by
    `_tf.import_keras`, which every part of hubensemble that uses Keras passes first."""
    words = backend_refusal(imported_backend(), configured_backend())
    if words:
        raise HubensembleError(words)


def use_tensorflow_backend() -> str | None:
    """For the command line, before it imports Keras: sets KERAS_BACKEND=tensorflow in this
    process's environment (its worker processes inherit it) when KERAS_BACKEND or keras.json
    name another backend; returns the words saying so for the log (None: nothing changed)."""
    backend, source = configured_backend()
    if backend == BACKEND or imported_backend() is not None:
        return None
    os.environ[BACKEND_ENV] = BACKEND
    return (f"{source} names Keras' {backend!r} backend: the command line runs Keras on "
            f"TensorFlow ({BACKEND_ENV}={BACKEND} for its own process), as hubensemble "
            "needs")


# ---------------------------------------------------------------------------------------------
# Keras' global settings, set to Keras' defaults while a stage runs
# ---------------------------------------------------------------------------------------------

#: name -> (Keras' default, keras attribute path of the getter, of the setter).
_SETTINGS = {
    "floatx": ("float32", "config.floatx", "config.set_floatx"),
    "image_data_format": ("channels_last", "config.image_data_format",
                          "config.set_image_data_format"),
    "dtype_policy": ("float32", "config.dtype_policy", "config.set_dtype_policy"),
    "max_epochs": (None, "config.max_epochs", "config.set_max_epochs"),
    "max_steps_per_epoch": (None, "config.max_steps_per_epoch",
                            "config.set_max_steps_per_epoch"),
}

_LOCK = threading.RLock()
#: depth: the stages running (threads of one process share one setting aside); saved: the
#: caller's settings once set aside (None: not yet, Keras not imported when the first began).
_state: dict = {"depth": 0, "saved": None}
#: The (setting, value) said once per process.
_SAID: set = set()


def _attr(module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _value(name: str, value):
    """A setting's value as compared and said: a dtype policy by its name."""
    return getattr(value, "name", value) if name == "dtype_policy" else value


def _set_aside() -> None:
    """Saves the caller's settings and sets Keras' defaults (Keras imported: it is, or is
    about to be, on TensorFlow; TensorFlow itself is not imported here)."""
    import keras

    tf = sys.modules.get("tensorflow")
    saved, changed = {}, []
    for name, (default, getter, setter) in _SETTINGS.items():
        get, put = _attr(keras, getter), _attr(keras, setter)
        if get is None or put is None:  # an older Keras without it
            continue
        value = get()
        if _value(name, value) != default:
            saved[name] = value
            put(default)
            changed.append(f"{name} {_value(name, value)}")
    if tf is not None and tf.config.functions_run_eagerly():
        saved["run_functions_eagerly"] = True
        tf.config.run_functions_eagerly(False)
        changed.append("tf.config.run_functions_eagerly(True)")
    _state["saved"] = saved
    news = [c for c in changed if c not in _SAID]
    if news:
        _SAID.update(news)
        log.info("Keras' global settings of this process (keras.json, KERAS_MAX_* or a "
                 "caller's keras.config / keras.mixed_precision call) are set to Keras' "
                 "defaults while hubensemble's stages run, so their numbers and the export "
                 "do not depend on them, and given back after: %s", ", ".join(news))


def _give_back() -> None:
    import keras

    for name, value in _state["saved"].items():
        if name == "run_functions_eagerly":
            sys.modules["tensorflow"].config.run_functions_eagerly(value)
        else:
            _attr(keras, _SETTINGS[name][2])(value)
    _state["saved"] = None


def keras_imported() -> None:
    """Called by `_tf.import_keras` (Keras imported): inside a stage whose start found Keras
    not yet imported, sets the caller's settings aside now (`stage_settings`). Outside a
    stage: nothing."""
    with _LOCK:
        if _state["depth"] and _state["saved"] is None and "keras" in sys.modules:
            _set_aside()


@contextlib.contextmanager
def stage_settings():
    """Inside the block, Keras' global settings (`_SETTINGS`: floatx float32, image data
    format channels_last, dtype policy float32, no max epochs / steps per epoch) and
    TensorFlow's ``run_functions_eagerly`` (off) are Keras' defaults; the caller's are given
    back after the outermost block (blocks nest, and overlap in threads). Keras is not
    imported by the block itself: when it is not yet, the settings are set aside by the
    first `_tf.import_keras` inside it (`keras_imported`), so a refusal before TensorFlow
    stays fast. What is set aside is said once per process at INFO."""
    with _LOCK:
        _state["depth"] += 1
        if _state["depth"] == 1 and "keras" in sys.modules:
            try:
                _set_aside()
            except BaseException:
                _state["depth"] -= 1
                raise
    try:
        yield
    finally:  # whole (errors.held_stops): a second Ctrl-C here left the depth at 1 (the
        with held_stops(), _LOCK:  # caller's settings never given back) or half given back
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["saved"] is not None:
                _give_back()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def with_stage_settings(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: `function` runs inside `stage_settings` (a public stage's entry), after a
    mistyped keyword is refused naming the one meant (`check_keywords_known`:
    evaluate_model(corruption=True) was told no more than "unexpected keyword argument").
    Its signature stays the function's, for `inspect` and for type checkers (ParamSpec)."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        check_keywords_known(function, signature, kwargs, args)
        with stage_settings():
            return function(*args, **kwargs)
    return wrapper
