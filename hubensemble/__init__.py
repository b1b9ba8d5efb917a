"""hubensemble: rank pre-trained image modules by kNN, fine-tune the best, ship their ensemble.

The Python API mirrors the command line::

    import hubensemble

    result = hubensemble.fit(catalogue=hubensemble.shipped_catalogue("demo.yaml"),
                             data="sklearn:digits", out="runs/digits", profile="cpu", top_k=4)
    print(result.summary())

and each stage is a function of its own (``run_rank``, ``run_tune``, ``run_ensemble``,
``export_ensemble``, ``evaluate_model``, ``write_report``) working on the same run folder.
Every option of the stages (type, default, allowed values, CLI flag) is declared once, in
``hubensemble.options``. Attributes are imported on first use, so ``import hubensemble`` does
not load TensorFlow — nor register hubensemble's Keras classes (``HubLayer``,
``EnsembleLayer``, ...): a new process reloads a saved model with::

    keras.models.load_model("model.keras", custom_objects=hubensemble.custom_objects())
"""

import importlib
from typing import TYPE_CHECKING

#: The one place the version is declared (setup.cfg reads it: `attr: hubensemble.__version__`).
#: Bumped by the rule in docs/reliability.md ("Versions"): the minor number whenever a record
#: a later version must read otherwise changes (its format, key or counting rule), so records
#: name the version that wrote them; tests/test_packaging.py holds each version's rules.
__version__ = "0.3.0"

_API = {
    "fit": "hubensemble.pipeline", "FitOptions": "hubensemble.pipeline",
    "FitResult": "hubensemble.pipeline",
    "load_catalogue": "hubensemble.catalogue", "load_catalogues": "hubensemble.catalogue",
    "ModuleSpec": "hubensemble.catalogue", "shipped_catalogue": "hubensemble.catalogue",
    "load_task": "hubensemble.data", "Task": "hubensemble.data",
    "DataArgs": "hubensemble.dataargs",
    "HubLayer": "hubensemble.hub", "write_hub_module": "hubensemble.hub",
    "load_module": "hubensemble.hub",
    "run_rank": "hubensemble.rank", "merge_rankings": "hubensemble.rank",
    "load_ranking": "hubensemble.rank",
    "run_tune": "hubensemble.tune", "build_classifier": "hubensemble.tune",
    "fit_member": "hubensemble.tune", "get_strategy": "hubensemble.tune",
    "run_ensemble": "hubensemble.ensemble", "greedy_select": "hubensemble.ensemble",
    "export_ensemble": "hubensemble.export", "EnsembleLayer": "hubensemble.export",
    "predict": "hubensemble.prediction",  # reads the files before TensorFlow loads
    "evaluate_model": "hubensemble.evaluate",
    "write_report": "hubensemble.report",
    "build_zoo": "hubensemble.zoo",
}

if TYPE_CHECKING:
    # What `_API` loads on first use, for type checkers and editors (mypy, pyright): they
    # do not run `__getattr__`, so `hubensemble.fit` was `Any` to them and its keywords went
    # unchecked. Never run: `import hubensemble` still loads no TensorFlow. The package's
    # py.typed marker (PEP 561) tells them to read these annotations; test_packaging holds
    # this block equal to `_API`. Names for `__all__`, so no use here (F401).
    from hubensemble.catalogue import (ModuleSpec, load_catalogue, load_catalogues,  # noqa: F401
                                       shipped_catalogue)
    from hubensemble.data import Task, load_task  # noqa: F401
    from hubensemble.dataargs import DataArgs  # noqa: F401
    from hubensemble.ensemble import greedy_select, run_ensemble  # noqa: F401
    from hubensemble.evaluate import evaluate_model  # noqa: F401
    from hubensemble.export import EnsembleLayer, export_ensemble  # noqa: F401
    from hubensemble.hub import HubLayer, load_module, write_hub_module  # noqa: F401
    from hubensemble.pipeline import FitOptions, FitResult, fit  # noqa: F401
    from hubensemble.prediction import predict  # noqa: F401
    from hubensemble.rank import load_ranking, merge_rankings, run_rank  # noqa: F401
    from hubensemble.report import write_report  # noqa: F401
    from hubensemble.tune import build_classifier, fit_member, get_strategy, run_tune  # noqa: F401
    from hubensemble.zoo import build_zoo  # noqa: F401

__all__ = sorted([*_API, "custom_objects"]) + ["__version__"]

#: The modules whose import registers a Keras class of hubensemble's (package "hubensemble").
_KERAS_CLASS_MODULES = ("hubensemble.hub.layer", "hubensemble.hub.sources",
                        "hubensemble.export.layers", "hubensemble.tune.model",
                        "hubensemble.zoo.arch")


def custom_objects() -> dict:
    """Every Keras class hubensemble registers, as ``{registered name: class}`` (e.g.
    ``"hubensemble>HubLayer"``, ``"hubensemble>EnsembleLayer"``, ``"hubensemble>EvalResize"``,
    the ``keras:`` and zoo modules' layers, the tuner's learning-rate schedule), for
    ``keras.models.load_model(path, custom_objects=hubensemble.custom_objects())``.

    ``import hubensemble`` loads its classes lazily (the command line refuses bad input in
    under a second without TensorFlow), so in a new process Keras cannot find them until
    they are imported: this imports them (and TensorFlow) and registers them with Keras,
    after which a plain ``load_model`` finds them too. Raises ImportError when TensorFlow or
    Keras is not installed.
    """
    from hubensemble._tf import keras  # TensorFlow first, without its start-up notices

    for module in _KERAS_CLASS_MODULES:
        importlib.import_module(module)
    # The zoo's layers are made on first use (its plan needs no Keras): make them now.
    importlib.import_module("hubensemble.zoo.arch").std_conv2d_class()
    return {name: cls for name, cls in keras.saving.get_custom_objects().items()
            if name.startswith("hubensemble>")}


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'hubensemble' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
