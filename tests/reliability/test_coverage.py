"""The suite runs every scenario faults.py reports, and at least the fourteen the issue asks."""

import importlib
from pathlib import Path

from . import scenarios


def test_every_scenario_has_a_test():
    tests = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        module = importlib.import_module(f".{path.stem}", __package__)
        tests |= {name for name in vars(module) if name.startswith("test_")}
    missing = [fn.__name__ for fn in scenarios.SCENARIOS if f"test_{fn.__name__}" not in tests]
    assert not missing, f"scenarios without a test: {missing}"
    assert len(scenarios.SCENARIOS) >= 14
