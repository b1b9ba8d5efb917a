"""The kNN ranking's chance level (`hubensemble.knnchance`): one rule, said by rank's table,
fit's rank line and the report's Ranking section."""

import numpy as np
import pytest

from hubensemble.knnchance import at_knn_chance, chance_words, knn_chance, modules_at_chance
from hubensemble.lockwords import command_line
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


def test_fit_says_when_every_ranked_module_is_at_chance():
    """fit printed only "rank: selected by --top-k 2 (knn): …" where every module's kNN score
    was at or below chance (0.8903-0.9409 vs 0.9494), which rank's table says. Fails before:
    no chance words in fit's line."""
    at = ranking_of([0.9409, 0.9203, 0.8903], 0.9494)
    with command_line():
        words = at.selection_words()
    assert words.startswith("rank: selected by --top-k 2 (knn): m0 0.9409, m1 0.9203")
    assert words.endswith("; all 3 ranked modules are at chance level (score <= 0.9494, always "
                          "the most common class): their embeddings do not separate these "
                          "classes"), words
    some = ranking_of([0.99, 0.9409, 0.8903], 0.9494)
    with command_line():
        words = some.selection_words()
    assert words.endswith("; at chance level (score <= 0.9494, always the most common class): "
                          "m1, m2; their embeddings do not separate these classes"), words
    with command_line():
        assert "chance" not in ranking_of([0.99, 0.98], 0.9494).selection_words()


def test_the_reports_ranking_section_says_every_module_is_at_chance(tmp_path):
    """report.md's Ranking table had no word of chance. Fails before: none."""
    from hubensemble.report.render import render_markdown
    from hubensemble.report.runfiles import load_run
    from hubensemble.report.sections import _ranking_section
    from hubensemble.rundir import Run

    ranking_of([0.9409, 0.9203, 0.8903], 0.9494).write(tmp_path)
    Run(tmp_path).update(data={"args": {"spec": "npz:/data/toy.npz", "seed": 0},
                               "task": {"name": "toy", "class_names": ["a", "b"],
                                        "num_classes": 2}})
    md = render_markdown("t", [_ranking_section(load_run(tmp_path))])
    assert ("All 3 ranked modules are at chance level (score <= 0.9494, always the most "
            "common class): their embeddings do not separate these classes.") in md, md
    ranking_of([0.99, 0.98], 0.9494).write(tmp_path)
    assert "chance" not in render_markdown("t", [_ranking_section(load_run(tmp_path))])
