"""evaluate_model in a loop: the export loaded once while it is unchanged, loaded again when
it changes (`hubensemble.predictloaded`, predict's too), with real SavedModels."""

import shutil

import pytest

from hubensemble import evaluate as ev
from test_evaluate import build_export, make_task
from test_predict_loaded import loads_of


loads = loads_of(ev)  # the folders evaluate's load was called on


def test_an_unchanged_export_is_evaluated_on_one_load_and_a_re_export_loaded_again(
        tmp_path, loads):
    """hubensemble.evaluate_model called in a loop loaded the export at each call, as
    predict did. It is loaded once while it is unchanged; written again into the same folder
    (other weights, as a re-export does), it is loaded again and its own figures given."""
    first = build_export(tmp_path / "first", seed=0)
    second = build_export(tmp_path / "second", seed=5)
    task = make_task(first, n=12)
    own = [ev.evaluate_model(e, task, progress=False)["clean"] for e in (first, second)]
    assert own[0] != own[1]  # the test can tell them apart
    model = tmp_path / "model"
    shutil.copytree(first, model)
    del loads[:]
    got = ev.evaluate_model(model, task, progress=False)
    again = ev.evaluate_model(model, task, progress=False)
    assert got["clean"] == again["clean"] == own[0]
    assert loads == [str(model)], loads
    # Written again whole, as export's fileio.replace_dir does: the other model's figures.
    shutil.rmtree(model)
    shutil.copytree(second, model)
    assert ev.evaluate_model(model, task, progress=False)["clean"] == own[1]
    assert loads == [str(model)] * 2, loads
    # Each call still checks its task against the export kept: a class it does not name.
    task.class_names[2] = "zebra"
    with pytest.raises(ev.DataError, match="zebra"):
        ev.evaluate_model(model, task, progress=False)
