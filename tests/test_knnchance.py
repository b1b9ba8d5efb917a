"""The kNN ranking's chance level (`hubensemble.knnchance`): one rule, said by rank's table,
fit's rank line and the report's Ranking section."""

import numpy as np
import pytest

from hubensemble.knnchance import at_knn_chance, chance_words, knn_chance, modules_at_chance
from hubensemble.rank import Ranking


def ranking_of(scores, chance, selected=("m0", "m1")):
    rows = [{"name": f"m{i}", "status": "ok", "score": s, "dim": 8, "examples": 395,
             "seconds": 0.1, "cache_hit": False, "reason": None, "stage": None,
             "family": "generalist", "handle": f"/zoo/m{i}", "index": i}
            for i, s in enumerate(scores)]
    return Ranking(metric="knn", k=1, rows=rows, selected=list(selected),
                   selection={"rule": "top_k", "top_k": 2}, examples=395, chance=chance)


def test_chance_is_the_most_common_class_share_and_a_score_at_it_says_nothing():
    labels = np.repeat([0, 1], [375, 20])  # a new user's 95/5 binary folder
    assert knn_chance(labels) == pytest.approx(375 / 395)
    assert at_knn_chance(0.9409, knn_chance(labels)) and at_knn_chance(0.9494, 0.9494)
    assert not at_knn_chance(0.96, 0.9494) and not at_knn_chance(0.5, None)
    with pytest.raises(ValueError, match=r"labels of shape \(0,\)"):
        knn_chance([])
    r = ranking_of([0.9409, 0.97, 0.8903], 0.9494)
    assert modules_at_chance(r) == ["m0", "m2"]
    assert modules_at_chance(ranking_of([0.9], None)) == [] and chance_words(
        ranking_of([0.9], None)) is None
