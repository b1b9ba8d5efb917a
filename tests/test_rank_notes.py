"""What a module's load says about how its score reads: the grey module said at INFO, and
the load-time warnings (a model fed the wrong value range, a classifier's logits, a module
used frozen) kept with its row of the ranking, shown in the report and said again when a
fit reuses the ranking."""

import json
import logging

import keras
import numpy as np

from hubensemble import rank
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.hub import ModuleRuntime
from hubensemble.rank.rownotes import note_lines, row_notes
from hubensemble.report import write_report
from hubensemble.rundir import DataArgs
# Every embedding this file computes goes to a temp cache (test_rank's autouse fixture).
from test_rank import cache_env  # noqa: F401


def _grey_keras(path):
    """A functional .keras model taking [N, H, W, 1] float images -> [N, 4]."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((None, None, 1))
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
                ).save(path)


def test_a_grey_module_is_said_at_info_as_a_channels_first_one_is(tmp_path, caplog):
    # A 1-channel module was fed the luminance silently; channels-first was said at INFO.
    path = str(tmp_path / "grey.keras")
    _grey_keras(path)
    with caplog.at_level(logging.INFO, logger="hubensemble.hub.runtime"):
        runtime = ModuleRuntime.load(path, name="grey")
    said = [r for r in caplog.records if "grey" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "module grey takes grey images" in said[0].getMessage()
    assert "luminance" in said[0].getMessage()
    # What it says is what it is fed: the luminance by ITU-R 601's weights.
    rgb = np.random.default_rng(0).random((2, 8, 8, 3), np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    model = keras.saving.load_model(path)
    np.testing.assert_allclose(runtime(rgb).numpy(), model(luma[..., None]).numpy(),
                               rtol=1e-4, atol=1e-5)
    caplog.clear()
    rgb_path = str(tmp_path / "rgb.keras")
    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(inp)).save(rgb_path)
    with caplog.at_level(logging.INFO, logger="hubensemble.hub.runtime"):
        ModuleRuntime.load(rgb_path, name="rgb")
    assert "grey images" not in caplog.text


def _pixels_and_plain(tmp_path):
    """Two .keras modules: "pixels" rescales its input by 1/255 (fed [0, 1] as its entry says,
    it sees every image nearly black), "plain" does not."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255.0)(inp)))
    keras.Model(inp, keras.layers.Dense(3)(pooled)).save(tmp_path / "pixels.keras")
    plain = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(5, 3)(inp))
    keras.Model(inp, plain).save(tmp_path / "plain.keras")
    return [ModuleSpec(name="pixels", handle=str(tmp_path / "pixels.keras"),
                       value_range=[0, 1]),
            ModuleSpec(name="plain", handle=str(tmp_path / "plain.keras"))]


def test_what_a_modules_load_warned_of_is_kept_with_its_ranking_row(tmp_path, caplog,
                                                                    monkeypatch):
    # "…sees every image nearly black…" was said once (terminal, log.txt): ranking.json's row
    # had reason null and the report listed the module as plain ok; a fit reusing the
    # ranking never said it, nor did a cache hit's ranking keep it.
    from hubensemble.hub import notices

    specs = _pixels_and_plain(tmp_path)
    task = load_task("sklearn:digits")
    cache = str(tmp_path / "cache")
    monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process
    with caplog.at_level(logging.WARNING):
        first = rank.run_rank(str(tmp_path / "a"), specs, task, profile="quick",
                              data_args=DataArgs(spec="sklearn:digits"), progress=False,
                              cache_dir=cache)
    (said,) = [r.getMessage() for r in caplog.records if "nearly black" in r.getMessage()]
    lead = f"module pixels ({specs[0].handle}): "
    assert said.startswith(lead)
    kept = json.loads((tmp_path / "a" / "ranking.json").read_text())
    rows = {r["name"]: r for r in kept["modules"]}
    assert rows["pixels"]["status"] == "ok" and rows["pixels"]["notes"] == [said[len(lead):]]
    assert rows["plain"]["notes"] == []
    # A cache hit (the module not loaded): the notes its cache entry kept, the same.
    monkeypatch.setattr(notices, "_WARNED", set())
    second = rank.run_rank(str(tmp_path / "b"), specs, task, profile="quick",
                           data_args=DataArgs(spec="sklearn:digits"), progress=False,
                           cache_dir=cache)
    assert second.row("pixels")["cache_hit"] and second.row("pixels")["notes"] == \
        first.row("pixels")["notes"]
    # What fit says again when it reuses the ranking: one line for pixels alone.
    lines = note_lines(rank.load_ranking(str(tmp_path / "b")))
    assert len(lines) == 1 and lines[0].startswith(
        f"rank: module pixels ({first.row('pixels')['score']:.4f}): it sees every image nearly "
        "black (the fix: its notes in ranking.json)")
    # The report's Ranking table shows it beside its status; plain stays "ok".
    report = open(write_report(str(tmp_path / "b")).markdown, encoding="utf-8").read()
    table = report[report.index("## Ranking"):]
    (pixels,) = [line for line in table.splitlines() if "| pixels |" in line]
    (plain,) = [line for line in table.splitlines() if "| plain |" in line]
    assert "| ok: it sees every image nearly black |" in pixels
    assert "| ok |" in plain
    # A ranking written before notes were kept reads as none.
    assert row_notes({"name": "old", "status": "ok"}) == []
    assert row_notes({"notes": None}) == [] and row_notes({"notes": [3]}) == []


def test_rank_merge_keeps_the_shards_notes(tmp_path, monkeypatch):
    from hubensemble.hub import notices

    specs = _pixels_and_plain(tmp_path)
    task = load_task("sklearn:digits")
    monkeypatch.setattr(notices, "_WARNED", set())
    for i in range(2):
        rank.run_rank(str(tmp_path / f"s{i}"), specs, task, profile="quick", shard=(i, 2),
                      data_args=DataArgs(spec="sklearn:digits"), progress=False)
    merged = rank.merge_rankings([str(tmp_path / "s0"), str(tmp_path / "s1")],
                                 str(tmp_path / "m"))
    shard = rank.load_ranking(str(tmp_path / "s0")).row("pixels")["notes"]
    assert shard and "nearly black" in shard[0]
    assert merged.row("pixels")["notes"] == shard and merged.row("plain")["notes"] == []
    assert rank.load_ranking(str(tmp_path / "m")).row("pixels")["notes"] == shard


def test_a_notes_short_form_is_what_the_score_is_of_without_the_fix(tmp_path, monkeypatch):
    # The report's table and fit's reuse line show each note short: the texts run to 400
    # characters with their fix, which ranking.json keeps whole.
    from hubensemble.hub import notices
    from hubensemble.rank.rownotes import module_notes

    monkeypatch.setattr(notices, "_WARNED", set())
    keras.utils.set_random_seed(2)
    inp = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Conv2D(4, 3)(inp))
    keras.Model(inp, keras.layers.Softmax(name="probs")(pooled)).save(tmp_path / "soft.keras")
    with notices.captured() as said:
        ModuleRuntime.load(str(tmp_path / "soft.keras"), name="soft")
    (note,) = module_notes(said, "soft")
    assert note.startswith("its last layer 'probs' is a softmax: ") and "set `layer:" in note
    assert row_notes({"notes": [note]}, short=True) == [
        "it returns class probabilities, not features, and ranks and transfers as such"]
    # A note without a fix after it is kept whole, and so is a long one without ": ".
    assert row_notes({"notes": ["used frozen; fix it so"]}, short=True) == ["used frozen"]
    assert row_notes({"notes": ["x" * 150]}, short=True) == ["x" * 150]


def test_ranks_table_and_csv_show_the_notes(tmp_path, monkeypatch):
    # The notes were kept in ranking.json and the report only: rank's own closing table (the
    # warning scrolled far above it as the module loaded) and ranking.csv showed none.
    from hubensemble.csvcells import read_rows
    from hubensemble.hub import notices

    specs = _pixels_and_plain(tmp_path)
    monkeypatch.setattr(notices, "_WARNED", set())
    ranking = rank.run_rank(str(tmp_path / "a"), specs, load_task("sklearn:digits"),
                            profile="quick", data_args=DataArgs(spec="sklearn:digits"),
                            progress=False, cache_dir=str(tmp_path / "cache"))
    short = row_notes(ranking.row("pixels"), short=True)
    assert short == ["it sees every image nearly black"], short
    (line,) = [t for t in ranking.summary().splitlines() if t.startswith("notes")]
    assert line == 'notes (ranking.json "notes", with their fix): pixels: ' + short[0]
    rows = {r["name"]: r for r in read_rows(tmp_path / "a" / "ranking.csv")}
    assert rows["pixels"]["notes"] == "; ".join(ranking.row("pixels")["notes"])
    assert rows["plain"]["notes"] == ""
