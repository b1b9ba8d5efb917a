"""An export metadata's "task" (the data it was fit on) edited by hand into no JSON object: the
readers of evaluate (heldout, evaluationtask, evaluate) read it through its one reader
(`exportfolder.task_record`) as none, where a string or a list raised AttributeError, and
evaluate says the file is damaged, naming it. Fakes and tiny SavedModels only."""
import json
import logging

import numpy as np
import pytest

from evaluatefakes import fake_export
from hubensemble.data import Split, Task

#: A "task" as a hand edit leaves it: no JSON object (None: the key removed).
DAMAGED = ["made on digits", ["digits"], 7, None]


def _with_task(model, task):
    """`model`'s assets/hubensemble.json with "task" `task` (None: without one)."""
    asset = model / "assets" / "hubensemble.json"
    meta = {k: v for k, v in json.loads(asset.read_text()).items() if k != "task"}
    asset.write_text(json.dumps(meta if task is None else {**meta, "task": task}))
    return json.loads(asset.read_text())


def _task(n=6):
    rng = np.random.default_rng(0)
    split = Split(images=rng.integers(0, 255, (n, 6, 6, 3), dtype=np.uint8),
                  labels=np.arange(n, dtype=np.int64) % 3)
    return Task(name="toy", source="test", class_names=["a", "b", "c"], train=split,
                test=split)


@pytest.mark.parametrize("task", DAMAGED)
def test_heldout_reads_a_damaged_task_as_none(tmp_path, task):
    """heldout.changed_files and not_held_out raised AttributeError on a "task" edited into a
    string or a list; they find nothing to say, as for an export that records none."""
    from hubensemble.heldout import changed_files, not_held_out

    model = fake_export(tmp_path / "export")
    meta = _with_task(model, task)
    assert changed_files(meta, _task()) is None
    assert not_held_out(model, _task(), "test", meta) is None
    assert not_held_out(model, _task(), "test") is None  # (its metadata read from the file)


@pytest.mark.parametrize("task", DAMAGED)
def test_load_evaluation_task_reads_a_damaged_task_as_none(tmp_path, task):
    """load_evaluation_task(MODEL, "folder:DIR") raised AttributeError on a "task" edited into a
    string or a list (own_tfds_keys read it); the folder loads as for an export that records
    no task."""
    from hubensemble.evaluationtask import load_evaluation_task
    from test_evaluate_before_tf import pngs

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        pngs(tmp_path / "data" / name, 2, rng)
    model = fake_export(tmp_path / "export")
    _with_task(model, None)
    plain = load_evaluation_task(model, f"folder:{tmp_path / 'data'}", split="test",
                                 progress=False)
    _with_task(model, task)
    loaded = load_evaluation_task(model, f"folder:{tmp_path / 'data'}", split="test",
                                  progress=False)
    assert (loaded.fingerprint, loaded.source, len(loaded.test)) == (
        plain.fingerprint, plain.source, len(plain.test))


@pytest.mark.parametrize("task", DAMAGED[:2])
def test_evaluate_model_says_a_damaged_task_and_scores(tmp_path, task, caplog):
    """evaluate_model raised AttributeError after the scoring on a "task" edited into a string
    or a list. It scores as for an export that records no task and warns that the metadata
    file is damaged, naming it, its "task" and the command that writes it again."""
    from hubensemble import evaluate as ev
    from hubensemble.formats import export_command, metadata_path
    from test_evaluate import build_export, make_task

    model = build_export(tmp_path / "export")
    data = make_task(model, n=6)
    _with_task(model, None)
    plain = ev.evaluate_model(model, data, corruptions=False, progress=False)
    meta = _with_task(model, task)
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        result = ev.evaluate_model(model, data, corruptions=False, progress=False)
    assert result["task"] == plain["task"] and result["n"] == plain["n"]
    said = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert said == [
        f"{metadata_path(model)} is damaged: its \"task\" is a JSON {type(task).__name__}, "
        "not an object, so evaluate cannot tell whether the scored data is the data the "
        f"export was fit on; write the export again ({export_command(meta, model)})"], said
