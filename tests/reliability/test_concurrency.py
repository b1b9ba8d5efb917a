"""Two `hubensemble rank` processes on the same data, catalogue and embedding cache at once."""

from . import scenarios as s
from .conftest import survive


def test_concurrent_rankers_share_the_cache(ws):
    survive(s.concurrent_rankers_share_the_cache, ws)
