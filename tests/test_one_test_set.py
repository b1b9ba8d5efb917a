"""evaluate's --split train or val of a folder of class folders without train/ val/ test/ (one
test set, `load_test_set`): refused before TensorFlow and its images, in the load's words,
unless the export may have been fit on that very folder (its fingerprint then decides, after
the load: `heldout.may_be_fit_on`)."""
import json

import numpy as np
import pytest

from hubensemble.errors import DataError
from test_evaluate_before_tf import fake_export, pngs


def test_a_flat_folders_train_or_val_split_is_refused_before_tensorflow(tmp_path):
    """`evaluate --data folder:FLAT --split val` read every image after TensorFlow's import
    to say the folder is one test set (new user, stop 66). Now before both, in the same
    words (the reference: the load's own), for val and train; the test split, and a folder
    the export's records say it may have been fit on, go on to the load. Fails before:
    TensorFlow loaded."""
    from hubensemble.cli import build_parser
    from hubensemble.data import load_task
    from hubensemble.data.specs import load_test_set
    from hubensemble.heldout import files_record
    from hubensemble.lockwords import command_line
    from test_cli import each_in_one_process

    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"
    for name in ("a", "b", "c"):
        pngs(flat / name, 4, rng)
    model = fake_export(tmp_path / "export")
    references = []
    for split in ("val", "train"):
        with command_line(), pytest.raises(DataError) as loaded:
            load_test_set(f"folder:{flat}").split(split)
        references.append(str(loaded.value))
    said = each_in_one_process(
        *[["evaluate", "--model", model, "--data", f"folder:{flat}", "--split", split]
          for split in ("val", "train")])
    for (code, _, err, tensorflow), words in zip(said, references):
        assert (code, tensorflow) == (2, False), err
        assert err.endswith(f"error: {words}\n"), err

    from hubensemble.preflight import _check_scored_split

    def check(split):
        args = build_parser().parse_args(["evaluate", "--model", str(model), "--data",
                                          f"folder:{flat}", "--split", split])
        with command_line():
            _check_scored_split(args)

    check("test")  # one test set: its test split is every image
    # An export fit on this folder: fit split it, and the load finds its val split by the
    # fingerprint, so nothing is refused before it.
    task = load_task(f"folder:{flat}", min_per_class=1)
    meta = json.loads((model / "assets" / "hubensemble.json").read_text())
    meta["task"] = {"fingerprint": task.fingerprint, "files": files_record(task, str(flat))}
    (model / "assets" / "hubensemble.json").write_text(json.dumps(meta))
    check("val")
    (flat / "a" / "0.png").unlink()  # another listing: not the data it was fit on
    with pytest.raises(DataError, match="is one test set, so it has no val split"):
        check("val")
