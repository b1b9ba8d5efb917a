"""A test helper (no tests here): makes an internal module of a dependency unimportable, as on
a release that moved it, to check the fall-back setup.cfg's notes promise."""

import importlib
import sys

import pytest


def moved(monkeypatch, package: str, name: str) -> None:
    """Makes `from package import name` raise ImportError for the rest of the test: the
    package's attribute removed and sys.modules["package.name"] set to None (Python's way of
    refusing an import), both restored by `monkeypatch` after it. The already imported
    module itself stays loaded for the code of the dependency that holds it."""
    parent = importlib.import_module(package)
    monkeypatch.delattr(parent, name, raising=False)
    monkeypatch.setitem(sys.modules, f"{package}.{name}", None)
    with pytest.raises(ImportError):
        exec(f"from {package} import {name}", {})
