"""Counted nouns in what hubensemble says, for 1 and for more: "1 candidate stays",
"2 candidates stay" (`text.counted`), where "candidate(s)" was written. Each message is
reached through the function that says it, with tiny records; no TensorFlow model."""

import logging
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
