"""Near-copy neighbours (rank.nearcopies): the figures against a brute-force reference, and
the note rank logs and the report shows only when near copies are frequent."""

import collections
import json
import logging

import numpy as np
import pytest

from hubensemble import rank, report
from hubensemble.catalogue import ModuleSpec
from hubensemble.data.task import Split, Task
from hubensemble.rank import nearcopies
from hubensemble.rundir import DataArgs, Run
from test_report import make_full_run

CLASSES, OBJECTS, FRAMES = 4, 4, 4  # 64 training images: 16 objects of 4 frames each


def frames(rng, dim=8, jitter=0.02):
    """Embeddings [64, dim] of 16 objects (4 a class) seen 4 times each, a little apart, and
    their labels: every image's nearest neighbour is a frame of its own object."""
    objects = rng.normal(size=(CLASSES * OBJECTS, dim))
    emb = np.repeat(objects, FRAMES, axis=0) + jitter * rng.normal(size=(len(objects) * FRAMES,
                                                                         dim))
    labels = np.repeat(np.arange(CLASSES), OBJECTS * FRAMES)
    return emb, labels


def distinct(rng, dim=8):
    """Embeddings [64, dim] of 64 unrelated images, 16 a class: no near copies."""
    return rng.normal(size=(64, dim)), np.repeat(np.arange(CLASSES), 16)


def reference(emb, labels, metric, k, groups):
    """near_copies' figures one pair at a time: distances as written in docs/rank.md, the
    radius a percentile of each image's nearest other-class distance, votes by Counter."""
    x = np.asarray(emb, np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)

    def dist(i, j):
        if metric == "cosine":
            return 1.0 - float(np.dot(x[i], x[j]))
        return float(np.sum((x[i] - x[j]) ** 2))

    others = {i: [j for j in range(n) if groups[j] != groups[i]] for i in range(n)}
    nearest = [min(dist(i, j) for j in others[i]) for i in range(n)]
    other = [min(dist(i, j) for j in others[i] if labels[j] != labels[i]) for i in range(n)]
    radius = np.percentile(other, nearcopies.QUANTILE)
    right = 0
    for i in range(n):
        kept = sorted((dist(i, j), j) for j in others[i] if dist(i, j) > radius)[:k]
        if kept:
            votes = collections.Counter(int(labels[j]) for _, j in kept)
            top = max(votes.values())
            right += min(c for c, v in votes.items() if v == top) == labels[i]
    return sum(d <= radius for d in nearest) / n, right / n


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("make", [frames, distinct])
def test_near_copy_figures_equal_a_brute_force_reference(metric, k, make):
    rng = np.random.default_rng(k)
    emb, labels = make(rng)
    groups = np.arange(len(labels))
    groups[5] = groups[4]  # an exact-copy group: never a neighbour of its own
    got = nearcopies.near_copies(emb, labels, metric=metric, k=k, groups=groups)
    share, without = reference(emb, labels, metric, k, groups)
    assert got["share"] == pytest.approx(share) and got["score_without"] == pytest.approx(without)
    if make is frames:  # every nearest neighbour a frame of one object
        assert got["share"] >= nearcopies.NOTE_SHARE
    else:
        assert got["share"] < nearcopies.NOTE_SHARE


def test_one_class_has_no_near_copy_figures():
    emb, _ = distinct(np.random.default_rng(0))
    assert nearcopies.near_copies(emb, np.zeros(len(emb), int)) is None


def _row(name, score, near):
    return {"name": name, "status": "ok", "score": score, "near_copies": near}


def test_the_note_names_the_share_and_the_score_without_only_when_frequent():
    rng = np.random.default_rng(3)
    seen = nearcopies.near_copies(*frames(rng), k=1)
    unseen = nearcopies.near_copies(*distinct(rng), k=1)
    rows = [_row("seen", 0.97, seen), _row("unseen", 0.5, unseen),
            {"name": "older", "status": "ok", "score": 0.4},  # a ranking.json before it
            {"name": "broken", "status": "failed", "score": None}]
    accuracy = {"seen": 0.85, "unseen": 0.3, "older": 0.1}
    said = nearcopies.note(rows, "knn", accuracy)
    assert f"seen {seen['share']:.0%} of them, knn score {seen['score_without']:.4f} " \
           "without them (0.9700 with, best validation accuracy 0.8500)" in said
    assert "unseen" not in said and "optimistic" in said and "the order is still" in said
    assert nearcopies.note(rows[1:], "knn", accuracy) is None
    # A share alone is no sign (classes that separate well, the digits demo's 74-85 %): the
    # proxy must lie GAP above validation, which rank alone does not know.
    assert nearcopies.note(rows, "knn") is None
    assert nearcopies.note(rows, "knn", {"seen": 0.97 - nearcopies.GAP / 2}) is None
    assert nearcopies.note(rows, "knn", {"seen": 0.97 - nearcopies.GAP}) is not None


def _task(images, labels):
    return Task(name="t", source="test", class_names=[f"c{i}" for i in range(CLASSES)],
                train=Split(images=images, labels=labels))


def test_rank_records_every_modules_near_copies_and_says_nothing(tiny_module, tmp_path,
                                                                 monkeypatch, caplog):
    """gtsrb10: MobileNet V1 scored 0.9788 by leave-one-out kNN, its probe 0.88. rank records
    the near-copy figures of every module; it says nothing, as a share alone does not tell
    near copies from classes that separate well (the report says it, against validation)."""
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    scenes = rng.integers(0, 256, size=(CLASSES * OBJECTS, 16, 16, 3))
    shots = np.repeat(scenes, FRAMES, axis=0) + rng.integers(-3, 4, size=(64, 16, 16, 3))
    labels = np.repeat(np.arange(CLASSES), OBJECTS * FRAMES)
    spec = [ModuleSpec(name="tiny", handle=tiny_module)]
    for name, images in (("shots", shots), ("scenes", rng.integers(0, 256, (64, 16, 16, 3)))):
        caplog.clear()
        task = _task(np.clip(images, 0, 255).astype(np.uint8), labels)
        with caplog.at_level(logging.WARNING, logger="hubensemble"):
            rank.run_rank(str(tmp_path / name), spec, task, profile="quick", progress=False,
                          data_args=DataArgs(spec="npz:x.npz"))
        row = json.loads(Run(tmp_path / name).ranking_json.read_text())["modules"][0]
        emb = rank.embed(spec[0], task, profile="quick").embeddings
        assert row["near_copies"] == nearcopies.near_copies(emb, labels)
        said = [r.getMessage() for r in caplog.records if "near copies" in r.getMessage()]
        assert not said, said
        if name == "shots":
            assert row["near_copies"]["share"] >= nearcopies.NOTE_SHARE
        else:
            assert row["near_copies"]["share"] < nearcopies.NOTE_SHARE


def test_the_reports_knn_section_warns_and_shows_the_score_without(tmp_path,
                                                                   figures_not_drawn):
    path = tmp_path / "run"
    make_full_run(path)
    plain = report.write_report(path)[0].read_text()
    assert "near cop" not in plain.lower()
    doc = json.loads(Run(path).ranking_json.read_text())
    doc["modules"][0]["near_copies"] = {"share": 0.6, "score_without": 0.7125, "radius": 1.0}
    doc["modules"][1]["near_copies"] = {"share": 0.1, "score_without": 0.75, "radius": 1.0}
    Run(path).ranking_json.write_text(json.dumps(doc))
    text = report.write_report(path)[0].read_text()
    section = text.split("## kNN proxy vs")[1].split("\n## ")[0]
    (row,) = [t for t in section.splitlines() if t.startswith("| alpha |")]
    val = float(row.strip("|").split("|")[-1])  # its candidates' best validation accuracy
    assert doc["modules"][0]["score"] - val >= nearcopies.GAP, (row, doc["modules"][0])
    assert "**Warning:** Near copies: " in section and "alpha 60% of them" in section
    assert f"(0.9000 with, best validation accuracy {val:.4f})" in section
    # The same share, the proxy within GAP of validation (classes that separate well, as
    # the digits demo's): no warning, no column.
    doc["modules"][0]["score"] = val + nearcopies.GAP / 2
    Run(path).ranking_json.write_text(json.dumps(doc))
    text = report.write_report(path)[0].read_text()
    assert "near cop" not in text.split("## kNN proxy vs")[1].split("\n## ")[0].lower()
    assert "| module | knn score | without near copies | best val accuracy |" in section
    assert "| alpha | 0.9000 | 0.7125 |" in section and "| beta_net | 0.8000 | 0.7500 |" in section
    assert "| gamma | 0.7000 | – |" in section


def test_the_knn_figure_draws_each_score_without_near_copies_beside_it():
    from matplotlib.collections import PathCollection

    from hubensemble.report.figures import knn_figure

    points = [("alpha", 0.9, 0.6), ("beta", 0.8, 0.7)]
    plain = knn_figure(points, None, "knn", {"alpha"}).axes[0]
    fig = knn_figure(points, None, "knn", {"alpha"}, without={"alpha": 0.75})
    ax = fig.axes[0]
    hollow = [c for c in ax.collections if isinstance(c, PathCollection)
              and len(c.get_facecolors()) == 0]
    assert len(ax.collections) == len(plain.collections) + 1 and not plain.lines
    assert [tuple(c.get_offsets()[0]) for c in hollow] == [(0.75, 0.6)]
    assert [tuple(map(tuple, line.get_xydata())) for line in ax.lines] == [((0.75, 0.6),
                                                                            (0.9, 0.6))]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["in the ensemble", "not in the ensemble", "without near copies"]
    assert [t.get_text() for t in plain.get_legend().get_texts()] == labels[:2]


def test_more_images_than_measured_have_no_figures_and_no_note(monkeypatch):
    """Two O(N^2) passes per module: past MAX_EXAMPLES rank records none (4-8 s at 5,000)."""
    emb, labels = frames(np.random.default_rng(0))
    monkeypatch.setattr(nearcopies, "MAX_EXAMPLES", len(labels))
    assert nearcopies.near_copies(emb, labels)["share"] >= nearcopies.NOTE_SHARE
    monkeypatch.setattr(nearcopies, "MAX_EXAMPLES", len(labels) - 1)
    assert nearcopies.near_copies(emb, labels) is None
    assert nearcopies.note([_row("big", 0.9, None)]) is None
