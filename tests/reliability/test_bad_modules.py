"""Broken modules in a fit: each is failed with its reason in ranking.json, the fit goes on."""

import pytest

from . import scenarios as s
from .conftest import survive

# One fit (rank 8 modules, tune 8 trials) serves all of them; the first test to run makes it.
pytestmark = pytest.mark.slow


def test_truncated_variables_file(ws):
    survive(s.truncated_variables_file, ws)


def test_missing_saved_model_pb(ws):
    survive(s.missing_saved_model_pb, ws)


def test_module_output_is_4d(ws):
    survive(s.module_output_is_4d, ws)


def test_module_output_is_nan(ws):
    survive(s.module_output_is_nan, ws)


def test_module_truncated_after_it_was_cached(ws):
    survive(s.module_truncated_after_it_was_cached, ws)


def test_diverging_trial(ws):
    survive(s.diverging_trial, ws)
