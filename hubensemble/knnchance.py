"""The kNN ranking's chance level: the one rule for whether a module's leave-one-out kNN score
says anything about a data set's classes, for every place that shows or uses it (rank's
table, fit's rank line, the report's Ranking section, the training labels' check). NumPy only.

A leave-one-out kNN accuracy no higher than the share of the most common training class
(ranking.json's "chance": the accuracy of always answering that class) is at chance: the
module's embedding tells these classes apart no better than its absence would. On an
unbalanced set that level is high (a 95/5 binary folder: 0.9494), and a score of 0.94 that
looks good is at chance there."""

from __future__ import annotations

import numpy as np


def knn_chance(labels) -> float:
    """The chance level of a kNN ranking: the share of the most common label in `labels`
    (int [N], N >= 1, values >= 0), a float in (0, 1] (ranking.json's "chance").
    ValueError when `labels` is empty or not one-dimensional."""
    y = np.asarray(labels, np.int64)
    if y.ndim != 1 or not len(y):
        raise ValueError(f"labels of shape {y.shape}: expected [N >= 1]")
    return float(np.bincount(y).max() / len(y))


def at_knn_chance(score, chance) -> bool:
    """Whether a kNN `score` (float in [0, 1], higher is better) is at chance: no higher than
    `chance` (`knn_chance`; None: not known, so False, as is a None score)."""
    return score is not None and chance is not None and float(score) <= float(chance)


def modules_at_chance(ranking) -> list[str]:
    """The names of the ranking's (`rank.Ranking`) ok modules whose score is at chance
    (`at_knn_chance` of its "chance"), best first; [] when it records no chance level."""
    return [r["name"] for r in ranking.ok_rows if at_knn_chance(r.get("score"), ranking.chance)]


def chance_words(ranking, named=10) -> str | None:
    """The ranking's modules at chance in words (None when none is): "all 2 ranked modules are
    at chance level (score <= 0.9494, always the most common class): their embeddings do not
    separate these classes" ("the one ranked module is …: its
    embedding …" when it is alone), or, when some are not, "at chance level (…): a, b; their
    embeddings …" naming the first `named` (int >= 1)."""
    useless = modules_at_chance(ranking)
    if not useless:
        return None
    level = f"at chance level (score <= {ranking.chance:.4f}, always the most common class)"
    if len(useless) == len(ranking.ok_rows):
        who = ("the one ranked module is" if len(useless) == 1
               else f"all {len(useless)} ranked modules are")
        its = "its embedding does" if len(useless) == 1 else "their embeddings do"
        return f"{who} {level}: {its} not separate these classes"
    more = f", … {len(useless) - named} more" if len(useless) > named else ""
    return (f"{level}: {', '.join(useless[:named])}{more}; their embeddings do not separate "
            "these classes")
