"""A command that goes on past what it could not use exits 1, its closing words saying why
(README, "Exit statuses"; predict's unreadable files): `rank` and `fit` skipped a mistyped
local module path and exited 0, and `catalogue validate` said "ok (3 modules, 1 warning)",
exit 0, so a script went on to train other modules than meant (a new user, stop 70)."""

import json

import numpy as np


def catalogue_and_data(tmp_path, tiny_module):
    cat = tmp_path / "c.yaml"
    cat.write_text(f"modules:\n  - {{name: here, handle: {tiny_module}}}\n"
                   f"  - {{name: typo, handle: {tmp_path / 'mdoules' / 'm'}}}\n")
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.integers(0, 256, (64, 8, 8, 3), np.uint8),
             y_train=np.arange(64) % 4, x_val=rng.integers(0, 256, (32, 8, 8, 3), np.uint8),
             y_val=np.arange(32) % 4)
    return cat, data


def test_validate_exits_1_for_a_local_module_rank_would_skip(tmp_path, tiny_module, in_process):
    cat, _ = catalogue_and_data(tmp_path, tiny_module)
    code, out, err = in_process("catalogue", "validate", str(cat))
    assert code == 1, (out, err)
    assert "does not exist on this machine" in err, err
    assert err.rstrip().endswith(
        "hubensemble catalogue validate: exit status 1: rank would skip 1 module or weights "
        "file on this machine (warned above, with the fix)"), err
    cat.write_text(f"modules:\n  - {{name: here, handle: {tiny_module}}}\n")
    assert in_process("catalogue", "validate", str(cat))[0] == 0


def test_rank_exits_1_when_a_module_was_skipped_and_keeps_the_others(tmp_path, tiny_module,
                                                                     in_process):
    cat, data = catalogue_and_data(tmp_path, tiny_module)
    out = tmp_path / "run"
    code, stdout, err = in_process("rank", "--catalogue", str(cat), "--data", f"npz:{data}",
                                   "--out", str(out), "--top-k", "1")
    assert code == 1, (stdout, err)
    assert err.rstrip().endswith(
        "hubensemble rank: exit status 1: 1 module of the catalogue failed and was left out "
        "(typo: the reason and fix above); the other module ranked, its results kept"), err
    ranking = json.loads((out / "ranking.json").read_text())  # nothing lost: the run goes on
    assert [r["status"] for r in ranking["modules"]] == ["ok", "failed"], ranking["modules"]


def test_fit_exits_1_when_a_module_was_skipped_and_finishes_with_the_others(
        tmp_path, tiny_module, in_process):
    cat, data = catalogue_and_data(tmp_path, tiny_module)
    out = tmp_path / "run"
    code, stdout, err = in_process("fit", "--catalogue", str(cat), "--data", f"npz:{data}",
                                   "--out", str(out), "--top-k", "1", "--sweep", "probe",
                                   "--profile", "quick", "--no-corruptions")
    assert code == 1, (stdout, err)
    assert err.rstrip().endswith(
        "hubensemble fit: exit status 1: 1 module of the catalogue failed and was left out "
        "(typo: the reason and fix above); the other module ranked, its results kept"), err
    assert (out / "export").is_dir()  # the run went on: nothing lost
