"""A run folder's run.json read by hubensemble.rundir.Run: a damaged "data" section (hand-made
or edited) is refused by name, not with a KeyError traceback. In process, TensorFlow-free."""

import json

import pytest

from hubensemble.errors import RunError
from hubensemble.rundir import Run

TASK = {"fingerprint": "f" * 16, "class_names": ["cat", "dog"], "sizes": {"val": 4}}
ARGS = {"spec": "folder:/nowhere", "reloadable": True}


def _run(tmp_path, data):
    run = Run(tmp_path / "run")
    run.path.mkdir()
    run.meta_path.write_text(json.dumps({"data": data, "modules": {}}))
    return run


@pytest.mark.parametrize("data, fault", [
    ({"task": TASK}, 'its "data" section has no "args"'),  # helper 272's: KeyError 'args'
    ({"args": ARGS}, 'its "data" section has no "task"'),
    ({"args": "folder:/x", "task": TASK}, 'section\'s "args" is a JSON string, expected an object'),
    ({"args": ARGS, "task": ["cat"]}, 'section\'s "task" is a JSON array, expected an object'),
    (["cat", "dog"], 'its "data" section is a JSON array, expected an object'),
])
def test_a_damaged_data_section_of_run_json_is_refused_by_file_and_key(tmp_path, data, fault):
    run = _run(tmp_path, data)
    with pytest.raises(RunError) as err:
        run.task()
    said = str(err.value)
    assert said.startswith(f"{run.meta_path} is damaged: ") and fault in said, said
    assert "restore it from a copy, or start the run again with its data: " in said
    # Every read of the section says the same (a later stage, and tune's inputs check).
    if not (isinstance(data, dict) and isinstance(data.get("task"), dict)):
        with pytest.raises(RunError, match="is damaged: "):
            run.class_names()
        assert run.new_task(object()) is True  # (run.json unreadable: new, as before)


def test_a_run_json_without_data_or_with_an_empty_one_still_says_it_records_none(tmp_path):
    for i, data in enumerate(({}, None)):
        (tmp_path / str(i)).mkdir()
        run = _run(tmp_path / str(i), data)
        with pytest.raises(RunError, match=r'records no data \(its "data" section\)'):
            run.task()
        assert run.class_names() is None
