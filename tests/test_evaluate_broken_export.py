"""evaluate on an export whose files are broken (a variables file gone) names that first, as
predict does, with the command that repairs it, before the data it would score ("pass --data
SPEC"), before TensorFlow on the command line and from Python alike."""
import json

import pytest

from evaluatefakes import refused_before_tensorflow
from hubensemble.errors import RunError
from hubensemble.text import shell


@pytest.fixture
def broken_export(tmp_path):
    """(run folder, export folder): a real SavedModel with a serving_default signature
    exported outside its run (`export --out served`), its metadata naming the run and its
    data, then `rm variables/variables.index`."""
    from conftest import export_quietly, make_tiny_model

    run, served = tmp_path / "my run", tmp_path / "served"
    export_quietly(make_tiny_model(seed=0), str(served))
    (served / "assets").mkdir(exist_ok=True)
    (served / "assets" / "hubensemble.json").write_text(json.dumps({
        "format": "hubensemble-export", "class_names": [str(i) for i in range(8)],
        "num_classes": 8, "run": {"path": str(run)},
        "task": {"source": "sklearn:digits", "spec": "sklearn:digits"}}))
    (served / "variables" / "variables.index").unlink()
    return run, served


def test_a_broken_export_is_named_first_with_its_repair_before_the_data_demand(broken_export):
    """`rm served/variables/variables.index` then `evaluate --model served` said "served is
    not inside a run directory that records its data; pass --data SPEC"; only with --data
    was the broken export told (after TensorFlow). It is told first now, with predict's
    repair command (`formats.load_saved_model`'s way on), from Python with and without data,
    and on the command line before TensorFlow. Fails before: the DataError "pass --data"."""
    from hubensemble.evaluate import check_evaluation_data, load_evaluation_task
    from hubensemble.formats import load_saved_model
    from hubensemble.lockwords import command_line

    run, served = broken_export
    repair = f"export it again with `hubensemble export --run {shell(run)} --out {served}`"
    with command_line():
        with pytest.raises(RunError) as predicts:  # predict's load: the reference
            load_saved_model(served)
        for data in (None, "sklearn:digits"):
            with pytest.raises(RunError) as refused:
                check_evaluation_data(served, data)
            said = str(refused.value)
            assert said.startswith(f"{served} could not be loaded as a SavedModel (its "
                                   "variables are missing: no variables/variables.index"), said
            assert said.endswith(f"; {repair}") and str(predicts.value).endswith(
                f"; {repair}"), (said, predicts.value)
    with pytest.raises(RunError, match="variables are missing"):
        load_evaluation_task(served)  # from Python, before any data is looked for
    with command_line():
        refused_before_tensorflow((["evaluate", "--model", served], said))
