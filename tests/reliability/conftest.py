"""Fixtures of the fault-injection suite: one workspace per session, shared by every scenario.

The helpers (module builders, the local HTTP server, tarballs, run-directory checks) live in
scenarios.py, so tools/benchmarks/faults.py runs exactly what these tests run.
"""

from pathlib import Path

import pytest

from . import scenarios

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def ws(tmp_path_factory):
    """The scenarios' workspace; HUBENSEMBLE_HTTP_TIMEOUT is 2 s for their commands."""
    return scenarios.Workspace(tmp_path_factory.mktemp("faults"), http_timeout=2.0)


def survive(fn, ws):
    """Runs a scenario and fails the test with its detail when it was lost."""
    name, survived, detail = fn(ws)
    assert survived, f"{name}: {detail}"
    return detail


def pytest_collection_modifyitems(config, items):
    # This folder's tests run in scenario order, as faults.py does: inputs that scenarios
    # share (a completed fit, one rank over every broken download) are then made once.
    order = {fn.__name__: i for i, fn in enumerate(scenarios.SCENARIOS)}
    slots = [i for i, item in enumerate(items) if Path(item.path).parent == HERE]
    mine = sorted((items[i] for i in slots),
                  key=lambda item: order.get(item.name.removeprefix("test_"), len(order)))
    for i, item in zip(slots, mine):
        items[i] = item
