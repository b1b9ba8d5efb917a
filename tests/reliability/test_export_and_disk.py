"""A member's weights missing at export; what killed writers leave is never taken as a result."""

import pytest

from . import scenarios as s
from .conftest import survive

# They copy a completed fit (kill-fit-during-export's when it ran first, else their own).
pytestmark = pytest.mark.slow


def test_member_weights_missing_at_export(ws):
    survive(s.member_weights_missing_at_export, ws)


def test_member_weights_missing_skip_missing(ws):
    survive(s.member_weights_missing_skip_missing, ws)


def test_temp_leftovers_never_taken_as_results(ws):
    survive(s.temp_leftovers_never_taken_as_results, ws)
