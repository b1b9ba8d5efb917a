"""SIGKILL of a real `hubensemble` process at an observed moment, then the same command again."""

import pytest

from . import scenarios as s
from .conftest import survive


@pytest.mark.slow
def test_kill_fit_during_rank(ws):
    survive(s.kill_fit_during_rank, ws)


@pytest.mark.slow
def test_kill_fit_during_tune(ws):
    survive(s.kill_fit_during_tune, ws)


@pytest.mark.slow
def test_kill_while_keras_tuner_writes_state(ws):
    survive(s.kill_while_keras_tuner_writes_state, ws)


@pytest.mark.slow
def test_kill_inside_keras_tuner_json_write(ws):
    survive(s.kill_inside_keras_tuner_json_write, ws)


@pytest.mark.slow
def test_kill_fit_during_export(ws):
    survive(s.kill_fit_during_export, ws)


def test_kill_rank_during_download(ws):
    survive(s.kill_rank_during_download, ws)
