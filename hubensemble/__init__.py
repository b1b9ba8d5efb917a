"""hubensemble: rank pre-trained image modules by kNN, fine-tune the best, ship their ensemble.

The Python API mirrors the command line::

    import hubensemble

    result = hubensemble.fit(catalogue="catalogue/demo.yaml", data="sklearn:digits",
                             out="runs/digits", profile="cpu", top_k=4)
    print(result.summary())

and each stage is a function of its own (``run_rank``, ``run_tune``, ``run_ensemble``,
``export_ensemble``, ``evaluate_model``, ``write_report``) working on the same run folder.
Every option of the stages (type, default, allowed values, CLI flag) is declared once, in
``hubensemble.options``. Attributes are imported on first use, so ``import hubensemble`` does
not load TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_API = {
    "fit": "hubensemble.pipeline", "FitOptions": "hubensemble.pipeline",
    "FitResult": "hubensemble.pipeline",
    "load_catalogue": "hubensemble.catalogue", "load_catalogues": "hubensemble.catalogue",
    "ModuleSpec": "hubensemble.catalogue",
    "load_task": "hubensemble.data", "Task": "hubensemble.data",
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

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'hubensemble' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
