"""Counted nouns in what hubensemble says, for 1 and for more: "1 candidate stays",
"2 candidates stay" (`text.counted`), where "candidate(s)" was written. Each message is
reached through the function that says it, with tiny records; no TensorFlow model."""

import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest

from hubensemble.errors import RunError


def _shard(d, shard):
    return (d, SimpleNamespace(shard=shard))


@pytest.mark.parametrize("given, said", [
    ((0, 2), "shard 1/3 is missing: got"),
    ((0,), "shards 1/3, 2/3 are missing: got")])
def test_a_merge_names_its_missing_shard_or_shards(tmp_path, given, said):
    from hubensemble.rank.merge import _check_shard_set

    parts = [_shard(str(tmp_path / f"s{i}"), (i, 3)) for i in given]
    with pytest.raises(RunError) as e:
        _check_shard_set(parts)
    assert said in str(e.value), str(e.value)


@pytest.mark.parametrize("names, said", [
    (["a"], "the kNN predictions of the 1 module ranked there (a);"),
    (["a", "b"], "the kNN predictions of the 2 modules ranked there (a, b);")])
def test_a_missing_knn_file_counts_its_modules(tmp_path, names, said):
    from hubensemble.rank.knnfile import check_knn_predictions

    with pytest.raises(RunError) as e:
        check_knn_predictions(tmp_path, names)
    assert said in str(e.value), str(e.value)


@pytest.mark.parametrize("trials, said", [
    (1, "whose 1 usable candidate from an earlier tune stays in {} and still enters the pool"),
    (2, "whose 2 usable candidates from an earlier tune stay in {} and still enter the pool")])
def test_an_unselected_pool_counts_its_candidates(tmp_path, caplog, trials, said):
    from hubensemble.candidate import write_candidate
    from hubensemble.rank.pool import warn_unselected_pool
    from hubensemble.rundir import Run

    for i in range(trials):
        write_candidate(Run(tmp_path).candidates,
                        {"trial": f"default-{i:04d}-m", "module": "m", "status": "ok",
                         "has_test": False}, val_probs=np.full((4, 2), 0.5, np.float32))
    with caplog.at_level(logging.WARNING, logger="hubensemble.rank.pool"):
        assert warn_unselected_pool(tmp_path, ["other"]) == {"m": trials}
    assert said.format(Run(tmp_path).candidates) in caplog.text, caplog.text


@pytest.mark.parametrize("members, said", [(1, "then the 1 member of its ensemble"),
                                           (2, "then the 2 members of its ensemble")])
def test_exports_first_line_counts_the_ensembles_members(tmp_path, caplog, members, said):
    """`export`'s first line of progress, said before TensorFlow loads (docs/export.md)."""
    from hubensemble import fileio, preflight

    fileio.atomic_write_json(tmp_path / "run.json", {"created": "2026-12-06T00:00:00+00:00"})
    fileio.atomic_write_json(tmp_path / "ensemble.json",
                             {"members": [{"trial": f"t{i}"} for i in range(members)]})
    with caplog.at_level(logging.INFO):
        preflight.check_run(tmp_path, "export")
    assert (f"export: loading TensorFlow and the run's data, {said}"
            in [r.getMessage() for r in caplog.records]), caplog.text


def _changed(added, removed, replaced, n):
    return {"n": n, "data_changed": {
        "folder": "/d", "present": 5, "recorded": 5, "added": added, "removed": removed,
        "replaced": replaced, "train": 1, "val": 1, "test": 1, "sampled": 1,
        "compared": "pixels"}}


@pytest.mark.parametrize("result, said", [
    (_changed(1, 0, 0, 1), ["but 1 file differs from those it was measured on: 1 here that was "
                            "not among them.", "its 1 image is scored as a "
                            "test example, 1 of them", "move the 1 new file out;"]),
    (_changed(0, 0, 1, 5), ["but 1 file differs from those it was measured on: 1 of them "
                            "replaced (their names, other pixels).",
                            "all 5 images are scored as test examples",
                            "put back the 1 replaced file as it was;"]),
    (_changed(2, 1, 2, 9), ["but 5 files differ from those it was measured on: 2 here that were "
                            "not among them, 1 of them not here, 2 of them replaced",
                            "move the 2 new files out, put the 1 missing back, put back the 2 "
                            "replaced files as they were;"])])
def test_a_changed_folders_note_counts_its_files_in_words(result, said):
    """evaluate's warning on the folder an export was fit on, changed since."""
    from hubensemble.heldout import changed_files_note

    note = changed_files_note(result)
    assert all(s in note for s in said), note


@pytest.mark.parametrize("record, said", [
    ({"lr": 0.1, "steps": 10, "stepz": 1}, "HParams: unknown field stepz (did you mean steps?)"),
    ({"lr": 0.1, "steps": 10, "stepz": 1, "lrr": 2}, "HParams: unknown fields lrr (did you "
     "mean lr?), stepz (did you mean steps?)"),
    ({"steps": 10}, "HParams: missing field lr"),
    ({}, "HParams: missing fields lr, steps")])
def test_hparams_records_count_their_fields_in_words(record, said):
    """A trial.json's hyperparameters read back (hyperrule.HParams.from_json)."""
    from hubensemble.errors import HubensembleError
    from hubensemble.hyperrule import HParams

    with pytest.raises(HubensembleError) as e:
        HParams.from_json(record)
    assert str(e.value).startswith(said), str(e.value)


@pytest.mark.parametrize("typed, said", [
    ({"topk": 2}, "fit() got unknown option topk (did you mean top_k?); the options are "),
    ({"topk": 2, "seeed": 1}, "fit() got unknown options seeed (did you mean seed?), topk (did "
     "you mean top_k?); the options are ")])
def test_fits_unknown_options_are_counted_in_words(tmp_path, typed, said):
    import hubensemble

    with pytest.raises(TypeError) as e:
        hubensemble.fit("c.yaml", "sklearn:digits", tmp_path / "out", progress=False, **typed)
    assert str(e.value).startswith(said), str(e.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("names, said", [
    (["a", "z"], "has class ['z'] that the model does not know; the model predicts 3 classes "
     "(a, b, c). Classes are matched by name: rename the class folder to the model's names, "
     "or leave it out"),
    (["y", "z"], "has classes ['y', 'z'] that the model does not know; the model predicts 3 "
     "classes (a, b, c). Classes are matched by name: rename the class folders to the model's "
     "names, or leave them out")])
def test_classes_an_export_does_not_know_are_counted_in_words(names, said):
    from hubensemble.classmatch import class_index
    from hubensemble.data import Split, Task
    from hubensemble.errors import DataError

    train = Split(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]))
    task = Task(name="t", source="folder:x", class_names=names, train=train)
    with pytest.raises(DataError) as e:
        class_index(["a", "b", "c"], task)
    assert said in str(e.value), str(e.value)


@pytest.mark.parametrize("notes, said", [
    (["n"], "paths_shown: 1 note for 2 paths"),
    (["n", "m"], "paths_shown: 2 notes for 1 path")])
def test_paths_shown_counts_its_notes_and_paths_in_words(notes, said):
    from hubensemble.text import paths_shown

    paths = ["a.png", "b.png"][:3 - len(notes)]
    with pytest.raises(ValueError, match=re.escape(said)):
        paths_shown(paths, notes=notes)


@pytest.mark.parametrize("names, said", [
    (["nope"], "error: unknown scenario nope; --list shows them"),
    (["nope", "nix"], "error: unknown scenarios nope, nix; --list shows them")])
def test_the_fault_suites_unknown_scenarios_are_counted_in_words(names, said, capsys,
                                                                 monkeypatch):
    """tools/benchmarks/faults.py's usage error, before any scenario runs."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "benchmarks" / "faults.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its benchargs, as when it is run
    spec = importlib.util.spec_from_file_location("faults_under_test", path)
    faults = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(faults)
    with pytest.raises(SystemExit) as stop:
        faults.main(names)
    assert stop.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("names, said", [
    (["a"], "predictions of shape (2, 3) for 1 name); rank again"),
    (["a", "b", "c"], "predictions of shape (2, 3) for 3 names); rank again")])
def test_a_damaged_knn_file_counts_its_names_in_words(tmp_path, names, said):
    from hubensemble.rank.knnfile import knn_predictions_file, load_knn_predictions

    np.savez(knn_predictions_file(tmp_path), names=np.array(names),
             predictions=np.zeros((2, 3), np.int64))
    with pytest.raises(RunError) as e:
        load_knn_predictions(tmp_path)
    assert said in str(e.value), str(e.value)


@pytest.mark.parametrize("k, said", [
    (1, "leave-one-group-out 1-NN needs at least 1 example outside each example's group; the "
        "largest group has 4 of 4 examples"),
    (2, "leave-one-group-out 2-NN needs at least 2 examples outside each example's group; the "
        "largest group has 3 of 4 examples")])
def test_groups_too_large_for_k_are_counted_in_words(k, said):
    from hubensemble.errors import DataError
    from hubensemble.proxies import check_groups

    groups = [0, 0, 0, 0] if k == 1 else [0, 0, 0, 1]
    with pytest.raises(DataError) as e:
        check_groups(groups, 4, k)
    assert str(e.value) == said


@pytest.mark.parametrize("budget, families", [(5, "1 family"), (9, "2 families")])
def test_the_aug_sweeps_uneven_budget_counts_its_families(budget, families):
    # It said "budget 5 gives 1 famil(ies)". Fails before: the parenthesised plural.
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.sweepplan import plan_sweep

    ranking = {"modules": [{"name": "m", "status": "ok", "score": 0.9}], "selected": ["m"]}
    specs = {"m": ModuleSpec(name="m", handle="/m", family="generalist")}
    with pytest.warns(UserWarning) as said:
        plan_sweep(ranking, specs, sweep="aug", task={"num_classes": 3, "image_size": [8, 8]},
                   profile="quick", budget=budget)
    words = [str(w.message) for w in said if "augmentation family" in str(w.message)]
    assert words == [f"the aug sweep runs 4 trials per augmentation family; budget {budget} "
                     f"gives {families}"], words


@pytest.mark.parametrize("n, step", [(100, "0.01 (1 percentage point)"),
                                     (200, "0.005 (0.5 percentage points)"),
                                     (8, "0.125 (12.5 percentage points)")])
def test_the_scored_splits_note_counts_its_points(n, step):
    # evaluate of 100 images said "one image moves the accuracy by 1 points" (a new user's
    # check). Fails before: "1 points".
    from hubensemble.data.coverage import scored_note

    said = scored_note(np.zeros(n, np.int64), "test")
    assert f"one image moves the accuracy by {step}" in said, said
    assert "1 points" not in said, said
