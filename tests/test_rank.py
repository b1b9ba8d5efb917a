"""Ranking: embeddings (the module runtime, same as HubLayer), LOO kNN against scikit-learn,
failures, cache, shards, selection."""

import csv
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import export_quietly, make_tiny_model
from hubensemble import augment, fileio, proxies, rank, terminal
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.errors import HubensembleError, RunError
from hubensemble.pixelkeys import read_pixel_keys
from hubensemble.hub import HubLayer, hub_layer_from_spec, write_hub_module
from hubensemble.hyperrule import get_profile
from hubensemble.modulefiles import pinned_sha256
from hubensemble.rundir import DataArgs, Run

# The keys other tools read: spelled out here, not imported, so a rename fails the test.
ROW_KEYS = {"name", "handle", "status", "reason", "score", "dim", "examples", "seconds",
            "cache_hit"}
# Vary from run to run (timings, cache state, memory measured); everything else must be
# identical.
VOLATILE = ("seconds", "cache_hit", "memory")
PROFILE = "quick"  # digits are 8x8: HyperRule 128 px, capped at 32 px by the quick profile
SIDE = 32


@pytest.fixture(scope="module", autouse=True)
def cache_env(tmp_path_factory):
    """Every embedding this file computes goes to a temp cache, never to ~/.cache."""
    folder = tmp_path_factory.mktemp("embedding-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUBENSEMBLE_CACHE_DIR", str(folder))
        yield str(folder)


@pytest.fixture(scope="module")
def task():
    return load_task("sklearn:digits")


DATA = DataArgs(spec="sklearn:digits")


@pytest.fixture(scope="module")
def good(module_factory):
    """Three working modules of different widths (so different scores)."""
    return [ModuleSpec(name=f"good{i}", handle=module_factory(f"rank-good{i}", seed=10 + i,
                                                              width=4 + 3 * i))
            for i in range(3)]


def test_run_rank_refuses_an_empty_cache_dir_as_the_command_line_does(good, task, tmp_path,
                                                                      monkeypatch):
    """`rank --cache-dir ""` is refused (options: 'must be a path, not empty'), but
    run_rank(cache_dir="") ranked into the default cache without a word. It is refused now by
    the same rule (options.check_keywords), before anything is written."""
    from hubensemble import options

    default = tmp_path / "default-cache"
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(default))
    with pytest.raises(options.OptionError, match=re.escape(
            'cache_dir must be a path, not empty (without it: ')):
        ranked(good, task, tmp_path / "run", cache_dir="")
    assert not (tmp_path / "run").exists() and not default.exists()
    # A Profile object and top_k None beside a threshold stay Python's own (checked by use).
    from hubensemble.hyperrule import get_profile

    out = ranked(good[:1], task, tmp_path / "ok", profile=get_profile(PROFILE), top_k=None,
                 threshold=0.5)
    assert out.selected == [good[0].name] and default.exists()


class NaNs(keras.layers.Layer):
    def call(self, x):
        return x * float("nan")


class TouchesFile(keras.layers.Layer):
    def __init__(self, target, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def call(self, x):
        data = tf.io.read_file(self.target)
        return x + tf.cast(tf.strings.length(data), x.dtype) * 0.0


@pytest.fixture(scope="module")
def broken(tmp_path_factory, module_factory):
    """One module per way of failing, each as a catalogue entry."""
    root = tmp_path_factory.mktemp("broken")
    inp = keras.Input((None, None, 3))
    specs = {"ghost": ModuleSpec(name="ghost", handle=str(root / "does-not-exist"))}

    target = root / "secret.txt"
    target.write_text("secret")
    base = make_tiny_model(seed=3)
    path = write_hub_module(keras.Model(inp, TouchesFile(str(target))(base(inp))),
                            str(root / "unsafe"))
    specs["unsafe"] = ModuleSpec(name="unsafe", handle=path)

    path = write_hub_module(keras.Model(inp, keras.layers.Conv2D(4, 3)(inp)),
                            str(root / "conv4d"))
    specs["conv4d"] = ModuleSpec(name="conv4d", handle=path)

    base = make_tiny_model(seed=4)
    path = write_hub_module(keras.Model(inp, NaNs()(base(inp))), str(root / "nan"))
    specs["nan"] = ModuleSpec(name="nan", handle=path)

    path = str(root / "truncated")
    shutil.copytree(module_factory("rank-to-truncate", seed=5, width=12), path)
    data = os.path.join(path, "variables", "variables.data-00000-of-00001")
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    specs["truncated"] = ModuleSpec(name="truncated", handle=path)
    return specs


def ranked(specs, task, out, **kwargs):
    kwargs.setdefault("profile", PROFILE)
    kwargs.setdefault("data_args", DATA)
    kwargs.setdefault("progress", False)
    return rank.run_rank(str(out), specs, task, **kwargs)


def stable(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def reference_embeddings(path, images, side):
    """Embeddings computed without hubensemble: tf.saved_model.load and the same resize
    (antialiased bilinear, clipped; here an enlargement, where antialiasing changes nothing)."""
    module = tf.saved_model.load(path)
    x = tf.image.resize(images.astype(np.float32) / 255.0, (side, side), method="bilinear",
                        antialias=True)
    x = tf.clip_by_value(x, 0.0, 1.0)
    return np.concatenate([module(x[i:i + 100], training=False).numpy()
                           for i in range(0, len(images), 100)])


def sklearn_loo_predictions(x, y, k, metric):
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_limits

    clf = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    # One OpenMP thread: beside TensorFlow's thread pools, scikit-learn's per-call OpenMP
    # start-up makes 800 tiny fits take ~20 s on 2 cores instead of ~1 s.
    with threadpool_limits(1):
        return cross_val_predict(clf, x, y, cv=LeaveOneOut())


# --- resolution ---------------------------------------------------------------------------------

def test_resolution_is_input_size_else_the_capped_hyperrule(task, good):
    fixed = ModuleSpec(name="fixed", handle=good[0].handle, input_size=[24, 40])
    assert rank.embedding_resolution(fixed, task, "paper") == (24, 40)
    # Digits are 8x8 < 96x96: the HyperRule crops 128 px; the cpu/quick profiles cap it.
    assert rank.embedding_resolution(good[0], task, "paper") == (128, 128)
    for name in ("cpu", "quick"):
        cap = get_profile(name).resolution_cap
        assert rank.embedding_resolution(good[0], task, name) == (cap, cap)


# --- the proxy against scikit-learn ------------------------------------------------------------

@pytest.mark.parametrize("metric,k,sk_metric", [("knn", 1, "euclidean"),
                                                ("knn-cosine", 3, "cosine")])
def test_knn_score_equals_scikit_learn_leave_one_out(task, good, tmp_path, metric, k,
                                                     sk_metric):
    spec = good[2]
    ref = reference_embeddings(spec.handle, task.train.images, SIDE)
    got = rank.embed(spec, task, profile=PROFILE, use_cache=False)
    np.testing.assert_allclose(got.embeddings, ref, rtol=1e-5, atol=1e-6)

    y = task.train.labels
    # In float64, as the proxy computes (scikit-learn keeps cosine distances of float32
    # input in float32, which reorders neighbours whose distances differ by ~1e-7).
    expected = sklearn_loo_predictions(ref.astype(np.float64), y, k, sk_metric)
    result = ranked([spec], task, tmp_path, metric=metric, k=k)
    row = result.row(spec.name)
    assert row["score"] == float(np.mean(expected == y))
    assert row["dim"] == ref.shape[1] and row["examples"] == len(y)
    saved = rank.load_knn_predictions(tmp_path)
    assert list(saved) == [spec.name]
    np.testing.assert_array_equal(saved[spec.name], expected)
    with np.load(tmp_path / rank.KNN_FILE) as z:  # the file's layout, as documented
        assert z["names"].tolist() == [spec.name] and z["predictions"].dtype == np.int64
        np.testing.assert_array_equal(z["predictions"], expected[None, :])
        assert z["neighbours"].dtype == np.int32 and z["neighbours"].shape == (1, len(y), 10)
    # labelcheck's neighbours: the 10 smallest distances to other images, nearest first, as
    # scikit-learn computes the distances (compared by distance: equal ones may swap).
    from sklearn.metrics import pairwise_distances

    from hubensemble.rank.knnfile import load_knn_neighbours

    near = load_knn_neighbours(tmp_path)[spec.name]
    d = pairwise_distances(ref.astype(np.float64), metric=sk_metric)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(np.take_along_axis(d, near.astype(np.int64), axis=1),
                               np.sort(d, axis=1)[:, :10], rtol=1e-9, atol=1e-12)


def test_logme_and_hscore_rank_by_the_proxy_on_the_embeddings(task, good, tmp_path):
    for metric, fn in (("logme", proxies.logme), ("hscore", proxies.hscore)):
        result = ranked(good, task, tmp_path / metric, metric=metric)
        for spec in good:
            emb = rank.embed(spec, task, profile=PROFILE).embeddings
            assert result.row(spec.name)["score"] == pytest.approx(
                fn(emb.astype(np.float64), task.train.labels), rel=1e-9)
        assert not (tmp_path / metric / rank.KNN_FILE).exists()
        assert rank.load_knn_predictions(tmp_path / metric) == {}
    with pytest.raises(HubensembleError, match="greedy"):
        ranked(good, task, tmp_path / "g", metric="logme", greedy=True)


# --- rows, failures, files ----------------------------------------------------------------------

def test_ranking_files_rows_sorted_and_failures_recorded(task, good, broken, tmp_path):
    fixed = ModuleSpec(name="fixed-size", input_size=[20, 20],
                       handle=write_hub_module(make_tiny_model(seed=7, width=6),
                                               str(tmp_path / "fixed"), input_size=(20, 20)))
    unsized = ModuleSpec(name="fixed-no-size", handle=fixed.handle)  # catalogue forgot it
    inp = keras.Input((None, None, 3))
    flat = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="ones")(
        keras.layers.GlobalAveragePooling2D()(inp))  # the same embedding for every image
    constant = ModuleSpec(name="constant", handle=write_hub_module(
        keras.Model(inp, flat), str(tmp_path / "constant")))
    specs = [good[0], broken["ghost"], broken["unsafe"], good[1], broken["conv4d"],
             broken["nan"], fixed, broken["truncated"], good[2], unsized, constant]
    result = ranked(specs, task, tmp_path / "run", top_k=2)

    doc = json.loads((tmp_path / "run" / "ranking.json").read_text())
    assert {"metric", "k", "modules", "selected"} <= set(doc)
    assert doc["metric"] == "knn" and doc["k"] == 1
    rows = doc["modules"]
    assert len(rows) == len(specs) and all(ROW_KEYS <= set(r) for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert rows == ok + failed  # failed last
    assert {r["name"] for r in ok} == {"good0", "good1", "good2", "fixed-size", "constant"}
    scores = [r["score"] for r in ok]
    assert scores == sorted(scores, reverse=True)
    assert all(r["dim"] > 0 and r["examples"] == len(task.train) for r in ok)
    assert next(r for r in ok if r["name"] == "fixed-size")["resolution"] == [20, 20]

    reasons = {r["name"]: r["reason"] for r in failed}
    stages = {r["name"]: r["stage"] for r in failed}
    assert stages == {"ghost": "local path", "unsafe": "unsafe", "conv4d": "output",
                      "nan": "output", "truncated": "savedmodel", "fixed-no-size": "input"}
    assert "does not exist" in reasons["ghost"]
    assert "ReadFile" in reasons["unsafe"] and "trust" in reasons["unsafe"]
    assert "rank-4" in reasons["conv4d"]
    assert "NaN" in reasons["nan"]
    assert "its variables (variables/variables.data-00000-of-00001) are cut short" in reasons[
        "truncated"]
    assert "input_size: [20, 20]" in reasons["fixed-no-size"]
    assert all(r["score"] is None for r in failed)

    assert doc["selected"] == [r["name"] for r in ok[:2]] == result.selected
    lines = (tmp_path / "run" / "ranking.csv").read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    assert header[:9] == ["name", "handle", "status", "reason", "score", "dim", "examples",
                          "seconds", "cache_hit"]
    csv_rows = list(csv.DictReader(lines))
    assert [r["name"] for r in csv_rows] == [r["name"] for r in rows]
    assert [r["status"] for r in csv_rows] == [r["status"] for r in rows]

    # One predictions file for the run, its rows in ranking order; none for failed modules.
    with np.load(tmp_path / "run" / rank.KNN_FILE) as z:
        assert z["names"].tolist() == [r["name"] for r in ok]
        assert z["predictions"].shape == (len(ok), len(task.train))
    assert not (tmp_path / "run" / "knn").exists()  # no file per module
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(meta["modules"]) == {s.name for s in specs}
    assert meta["rank"]["metric"] == "knn" and meta["rank"]["selection"]["rule"] == "top_k"
    assert meta["data"]["task"]["fingerprint"] == task.fingerprint
    assert rank.load_ranking(tmp_path / "run").to_json() == doc
    text = result.summary()
    assert all(f"failed {r['name']}" in text for r in failed)
    assert ", ".join(result.selected) in text
    # The count, and the module no better than always answering the most common class (a
    # new-user check: a constant module was ranked and selected without a word).
    chance = np.bincount(task.train.labels).max() / len(task.train)
    assert doc["chance"] == pytest.approx(chance)
    assert "ranked 5 of 11 modules; 6 failed (above)" in text.splitlines()
    assert (f"at chance level (score <= {chance:.4f}, always the most common class): "
            "constant; their embeddings do not separate these classes") in text.splitlines()
    assert "all the same" not in text  # top_k 2 did not take it
    everything = ranked(specs, task, tmp_path / "run_all", top_k=11)
    # The selection rule and the advice in the caller's words: the summary said "selected
    # (top_k=2; …)" to the command line's user and "--modules, … --top-k" from Python.
    from hubensemble.lockwords import command_line
    from hubensemble.rank.ranking import rule_text

    assert "selected (top_k=2; * above): " in text.splitlines()[-1]
    assert ("; the selection rule took constant all the same (leave it out with modules, "
            "or a tighter top_k)") in everything.summary()
    with command_line():
        assert "selected (--top-k 2; * above): " in result.summary().splitlines()[-1]
        assert ("; the selection rule took constant all the same (leave it out with "
                "--modules, or a tighter --top-k)") in everything.summary()
    assert rule_text({"rule": "threshold", "threshold": 0.02, "max_k": 15}) == (
        "threshold=0.02, max_k=15")
    with command_line():
        assert rule_text({"rule": "greedy", "max_k": 3}) == "--greedy --max-k 3"


def test_rank_and_merge_refusals_name_the_callers_words(task, good, tmp_path):
    """run_rank(k=…) too large for the data was told "lower --k", and merge_rankings of
    shards ranked with another k "rank every shard with the same --data, --catalogue,
    --metric, --k and --profile": flags a Python caller never typed."""
    from hubensemble.lockwords import command_line

    n = len(task.train)
    with pytest.raises(HubensembleError) as err:
        ranked(good[:1], task, tmp_path / "big", k=n)
    assert str(err.value) == (f"leave-one-out {n}-NN needs at least {n + 1} training examples; "
                              f"the task has {n}: lower k")
    with pytest.raises(HubensembleError) as err, command_line():
        ranked(good[:1], task, tmp_path / "big", k=n)
    assert str(err.value).endswith(": lower --k")
    shards = [tmp_path / "s0", tmp_path / "s1"]
    ranked(good[:2], task, shards[0], shard=(0, 2), k=1)
    ranked(good[:2], task, shards[1], shard=(1, 2), k=2)
    with pytest.raises(RunError) as err:
        rank.merge_rankings(shards, tmp_path / "merged")
    assert str(err.value).endswith(
        "rank every shard with the same task, specs, metric, k and profile (run_rank's "
        "arguments)"), err.value
    with pytest.raises(RunError) as err, command_line():
        rank.merge_rankings(shards, tmp_path / "merged")
    assert str(err.value).endswith(
        "rank every shard with the same --data, --catalogue, --metric, --k and --profile")


def test_ranking_unfreezes_the_heap_and_keeps_a_callers_freeze(task, good, tmp_path):
    # run_rank freezes the objects older than the ranking (faster collections per module);
    # they must be collectable again afterwards, and a caller's own freeze must survive.
    import gc

    assert gc.get_freeze_count() == 0
    ranked(good[:1], task, tmp_path / "a")
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        ranked(good[:1], task, tmp_path / "b")
        # Still frozen (an unfreeze would leave 0); a few frozen objects may have been freed
        # by reference counting meanwhile.
        assert gc.get_freeze_count() > 0.9 * frozen
    finally:
        gc.unfreeze()


def test_dict_output_needs_output_key(task, tmp_path):
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(5, 3, activation="relu")(inp)
    model = keras.Model(inp, {"pooled": keras.layers.GlobalAveragePooling2D()(conv),
                              "map": conv})
    path = write_hub_module(model, str(tmp_path / "dict"))
    specs = [ModuleSpec(name="with-key", handle=path, output_key="pooled"),
             ModuleSpec(name="without-key", handle=path)]
    result = ranked(specs, task, tmp_path / "run")
    assert result.row("with-key")["status"] == "ok" and result.row("with-key")["dim"] == 5
    bad = result.row("without-key")
    assert bad["status"] == "failed" and "output_key" in bad["reason"]


def test_all_failing_raises_a_summary(task, broken, tmp_path):
    with pytest.raises(HubensembleError) as err:
        ranked([broken["ghost"], broken["unsafe"], broken["nan"]], task, tmp_path)
    text = str(err.value)
    assert "3 failed" in text
    assert all(name in text for name in ("ghost", "unsafe", "nan"))
    # fit stops here too: "run `hubensemble rank` again" misled its users.
    assert text.endswith("and run the same command again (`rank` or `fit`)")


def test_when_no_module_ranks_a_failed_download_is_said_to_be_the_networks(task, tmp_path,
                                                                           no_retry_waits):
    """A new-user check, offline: every keras: module failed to download its weights and the
    error ended "fix these catalogue entries", though the entries were right."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.tar.gz"
    offline = [ModuleSpec(name=f"far{i}", handle=f"{url}?{i}") for i in range(2)]
    with pytest.raises(HubensembleError) as err:
        ranked(offline, task, tmp_path / "a")
    text = str(err.value)
    assert all(f"  far{i}: [network]" in text for i in range(2)), text
    # Not "check the network" alone: a fetch fails for a key (401/403) or a misspelt handle
    # (404) too, and each reason names its way on (a new-user check of this stop).
    assert text.endswith("\nnone could be downloaded: each reason above says what to do (the "
                         "network or HTTPS_PROXY, an account's key, the handle's spelling, or "
                         "the files put in place by hand); then run the same command again "
                         "(`rank` or `fit`)") and "fix" not in text.splitlines()[-1]
    with pytest.raises(HubensembleError) as err:
        ranked(offline[:1] + [ModuleSpec(name="gone", handle=str(tmp_path / "nowhere"))], task,
               tmp_path / "b")
    assert str(err.value).endswith(
        "\n1 could not be downloaded: each reason above says what to do (the network or "
        "HTTPS_PROXY, an account's key, the handle's spelling, or the files put in place by "
        "hand); fix the other catalogue entries (handle, sha256, trust, "
        "output_key, value_range); then run the same command again (`rank` or `fit`)")


def test_failures_name_their_catalogue_entry(task, good, tmp_path, caplog):
    """A new-user check: "fix these catalogue entries" named modules but not where they are;
    with several --catalogue files (or a long one) the user had to search for each name."""
    from hubensemble.catalogue import load_catalogue

    cat = tmp_path / "mine.yaml"
    cat.write_text(textwrap.dedent(f"""\
        modules:
          - name: fine
            handle: {good[0].handle}
          - name: gone
            handle: ./not-here
        """))
    specs = load_catalogue(str(cat))
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        result = ranked(specs, task, tmp_path / "run")
    where = f"{cat}:5"  # its handle's line, as validate cites it (tests/test_fault_lines.py)
    assert result.row("gone")["source"] == where and result.row("fine")["source"] == f"{cat}:2"
    assert f"module gone ({where}) failed: [local path]" in caplog.text
    assert f"  failed gone ({where}): [local path] module 'gone'" in result.summary()
    assert rank.load_ranking(tmp_path / "run").row("gone")["source"] == where  # kept in JSON
    with pytest.raises(HubensembleError, match=re.escape(f"\n  gone ({where}): [local path]")):
        ranked(specs[1:], task, tmp_path / "none")


def test_load_ranking_without_a_ranking_says_what_to_run(tmp_path):
    from hubensemble.rundir import Run

    # The words tune uses for the same file (Run.ranking): one reader of ranking.json.
    command = (f"run_rank(out_dir={str(tmp_path)!r}, specs=load_catalogue(FILE), "
               "task=load_task(SPEC))")  # a Python caller's words
    with pytest.raises(RunError) as e:
        rank.load_ranking(tmp_path)
    assert str(e.value) == f"{tmp_path / 'ranking.json'} is missing; {command} writes it"
    for content, why in (("{garbage", "JSONDecodeError: "), ("[]", "not a ranking)"),
                         ('{"modules": []}', "not a ranking hubensemble wrote: KeyError: ")):
        (tmp_path / "ranking.json").write_text(content)
        with pytest.raises(RunError) as e:
            rank.load_ranking(tmp_path)
        assert str(e.value).startswith(f"{tmp_path / 'ranking.json'} is unreadable ({why}")
        assert str(e.value).endswith(f"; {command} writes it again (its embeddings are cached)")
        if content != '{"modules": []}':  # what tune reads it with
            with pytest.raises(RunError) as same:
                Run(tmp_path).ranking()
            assert str(same.value) == str(e.value)


# --- cache --------------------------------------------------------------------------------------

def cache_files(folder):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                  if f.endswith(".npy"))


def test_second_run_hits_the_cache_with_identical_scores(task, good, tmp_path):
    cache = tmp_path / "cache"
    first = ranked(good, task, tmp_path / "a", cache_dir=str(cache))
    second = ranked(good, task, tmp_path / "b", cache_dir=str(cache))
    assert [r["cache_hit"] for r in first.rows] == [False] * 3
    assert [r["cache_hit"] for r in second.rows] == [True] * 3
    assert stable(first.rows) == stable(second.rows)
    assert len(cache_files(cache)) == 3

    # A corrupt entry is recomputed (and repaired), not fatal.
    victim = cache_files(cache)[0]
    with open(victim, "wb") as f:
        f.write(b"not an npy file")
    third = ranked(good, task, tmp_path / "c", cache_dir=str(cache))
    assert sorted(r["cache_hit"] for r in third.rows) == [False, True, True]
    assert stable(third.rows) == stable(first.rows)
    assert np.load(victim).shape[0] == len(task.train)

    # A half-written file (say, copied from a crashed machine) and a wrong-shaped one too.
    data = open(victim, "rb").read()
    with open(victim, "wb") as f:
        f.write(data[:len(data) // 2])
    half = ranked(good, task, tmp_path / "h", cache_dir=str(cache))
    assert sorted(r["cache_hit"] for r in half.rows) == [False, True, True]
    assert stable(half.rows) == stable(first.rows)

    np.save(victim, np.zeros((3, 4), np.float32))
    fourth = ranked(good, task, tmp_path / "d", cache_dir=str(cache))
    assert sorted(r["cache_hit"] for r in fourth.rows) == [False, True, True]
    assert stable(fourth.rows) == stable(first.rows)


def test_a_ranking_after_an_interrupted_one_says_once_what_it_kept(
        task, good, tmp_path, monkeypatch, caplog):
    """A rank stopped in its third module (Ctrl-C here; kill -9 leaves the same files), then
    run again: the embeddings its first modules wrote to the cache were reused and the rest
    embedded again, and nothing said so (the summary's hit/miss column alone). The next
    ranking says it once, with counts: run.json's "rank_running" record, written as a ranking
    begins and removed with ranking.json, tells it the last one stopped. Fails before: no
    such line."""
    from hubensemble.rank import ranking as ranking_module
    from hubensemble.text import shown_time

    cache, out = tmp_path / "cache", tmp_path / "run"
    embed = ranking_module._embed

    def stopped(spec, *args, **kwargs):  # the user's Ctrl-C as the third module embeds
        if spec.name == good[2].name:
            raise KeyboardInterrupt
        return embed(spec, *args, **kwargs)

    monkeypatch.setattr(ranking_module, "_embed", stopped)
    with pytest.raises(KeyboardInterrupt):
        ranked(good, task, out, cache_dir=str(cache))
    monkeypatch.setattr(ranking_module, "_embed", embed)
    assert not (out / "ranking.json").exists()
    begun = Run(out).meta()["rank_running"]
    assert begun["modules"] == 3
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        again = ranked(good, task, out, cache_dir=str(cache))
    assert [r["cache_hit"] for r in again.rows if r["name"] != good[2].name] == [True, True]
    said = [r.getMessage() for r in caplog.records if "stopped before it ended" in r.getMessage()]
    assert said == [
        f"rank: the last ranking of {out} (3 modules, begun {shown_time(begun['started'])}) "
        "stopped before it "
        "ended; this one reused the embeddings of 2 modules (good0, good1) from the "
        "embedding cache and embedded 1 again (good2); every module is scored again"], said
    assert "rank_running" not in Run(out).meta()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        ranked(good, task, out, cache_dir=str(cache))
    assert "stopped before it ended" not in caplog.text


def test_a_ranking_after_an_interrupted_one_says_a_duplicate_entry_as_a_duplicate(
        task, good, tmp_path, monkeypatch, caplog):
    """A resumed rank of a catalogue with one handle twice said the entry refused as
    [duplicate] "could not be embedded" (a new user's check: 3 duplicates named so). Each row
    without embeddings is said by its kind; a module that failed still could not be."""
    from hubensemble.rank import ranking as ranking_module

    twin = dataclasses.replace(good[0], name="twin0")  # good0's handle again
    broken = ModuleSpec(name="broken", handle=str(tmp_path / "not-a-module.keras"))
    (tmp_path / "not-a-module.keras").write_bytes(b"no zip")
    specs = [good[0], twin, broken, good[1]]
    cache, out = tmp_path / "cache", tmp_path / "run"
    embed = ranking_module._embed

    def stopped(spec, *args, **kwargs):  # the user's Ctrl-C as the last module embeds
        if spec.name == good[1].name:
            raise KeyboardInterrupt
        return embed(spec, *args, **kwargs)

    monkeypatch.setattr(ranking_module, "_embed", stopped)
    with pytest.raises(KeyboardInterrupt):
        ranked(specs, task, out, cache_dir=str(cache))
    monkeypatch.setattr(ranking_module, "_embed", embed)
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        again = ranked(specs, task, out, cache_dir=str(cache))
    assert {r["name"]: r.get("stage") for r in again.rows if r["status"] != "ok"} == {
        "twin0": "duplicate", "broken": again.row("broken")["stage"]}
    said = [r.getMessage() for r in caplog.records if "stopped before it ended" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(
        "this one reused the embeddings of 1 module (good0) from the embedding cache and "
        "embedded 1 again (good1); 1 entry not embedded, a duplicate of an earlier one "
        "(twin0); 1 module could not be embedded (broken); every module is scored again"), said


def test_a_stop_after_a_modules_last_batch_keeps_its_embeddings_in_the_cache(
        task, good, tmp_path):
    """A real SIGINT once the last batch is embedded (rank's own note of it, `on_batch`):
    the embeddings were lost before the cache's write, so the resumed rank (or probe, LP-FT
    head) embedded the module again; now the stop waits for the write and the next call
    reads them."""
    import signal

    from hubensemble.rank.embeddings import embed

    cache, sent = tmp_path / "cache", []

    def stop(done, total):
        if done == total and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGINT)

    interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)  # a command's
    try:
        with pytest.raises(KeyboardInterrupt):
            embed(good[0], task, profile=PROFILE, cache_dir=str(cache), on_batch=stop)
    finally:
        signal.signal(signal.SIGINT, interrupt)
    assert sent == [len(task.train)]
    again = embed(good[0], task, profile=PROFILE, cache_dir=str(cache))
    assert again.cache_hit
    fresh = embed(good[0], task, profile=PROFILE, use_cache=False)
    np.testing.assert_array_equal(again.embeddings, fresh.embeddings)


def test_a_cache_hit_repeats_the_modules_load_time_warnings(task, good, tmp_path, caplog,
                                                            monkeypatch):
    # On a hit rank does not load the module: its warnings (a Rescaling model fed [0, 1], a
    # signature ending in a Softmax) came only later in tune, or never (a fault hunt).
    from hubensemble.hub import notices

    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255.0)(inp)))
    keras.Model(inp, keras.layers.Dense(3)(pooled)).save(tmp_path / "pixels.keras")
    export_quietly(keras.Model(inp, keras.layers.Softmax()(pooled)), str(tmp_path / "probs"))
    specs = [good[0], ModuleSpec(name="pixels", handle=str(tmp_path / "pixels.keras")),
             ModuleSpec(name="probs", handle=str(tmp_path / "probs"))]
    cache = str(tmp_path / "cache")

    def warnings_of(specs, out):
        monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process
        caplog.clear()
        with caplog.at_level("WARNING"):
            result = ranked(specs, task, tmp_path / out, cache_dir=cache)
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        return result, [m for m in said if "Rescaling" in m or "Softmax" in m]

    first, said = warnings_of(specs, "a")
    assert [r["cache_hit"] for r in first.rows] == [False] * 3 and len(said) == 2
    assert any(m.startswith("module pixels ") and "value_range: [0, 255]" in m for m in said)
    assert any(m.startswith("module probs: ") and "Softmax" in m for m in said)
    second, again = warnings_of(specs, "b")
    assert [r["cache_hit"] for r in second.rows] == [True] * 3 and again == said
    # The same files under another name: the warning names the entry that is ranked now.
    renamed, again = warnings_of([good[0], dataclasses.replace(specs[1], name="mine")], "c")
    assert renamed.row("mine")["cache_hit"] and len(again) == 1
    assert again[0] == said[0].replace("module pixels ", "module mine ", 1)
    # An entry written before the warnings were kept (hubensemble before 6acfef7: the same
    # description without "warnings", as fe14e71 wrote it) is still served, and its module is
    # loaded once to find them: they are said, and kept for the next hit.
    descriptions = [p[:-len(".npy")] + ".json" for p in cache_files(cache)]
    for path in descriptions:
        about = json.loads(open(path).read())
        assert about.pop("warnings") is not None
        fileio.atomic_write_json(path, about)
    old, again = warnings_of(specs, "d")
    assert [r["cache_hit"] for r in old.rows] == [True] * 3 and again == said
    kept = {json.loads(open(p).read())["module"]: json.loads(open(p).read())["warnings"]
            for p in descriptions}
    assert kept["pixels"] == [said[0]] and kept["probs"] == [said[1]]
    assert kept[good[0].name] == []
    latest, again = warnings_of(specs, "e")
    assert [r["cache_hit"] for r in latest.rows] == [True] * 3 and again == said


def _mean_conv_module(seed):
    """A tf.Module whose __call__ (a [N, H, W, 3] float32 batch) is a 3x3 convolution to 5
    channels, averaged over space: a reusable SavedModel with one variable, `seed` its
    weights' stateless seed."""
    module = tf.Module()
    module.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 5], [seed, 0]))
    module.__call__ = tf.function(
        lambda x: tf.reduce_mean(tf.nn.conv2d(x, module.kernel, 1, "SAME"), [1, 2]),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    return module


def test_rank_says_a_module_is_used_frozen_and_fit_says_it_once(
        task, tmp_path, caplog, monkeypatch):
    # A signature module exposing no trainable variables is used frozen (a linear probe): that
    # was said only by a trainable HubLayer (tune), never by rank, where the user first sees
    # the module, nor on a cache hit.
    from hubensemble.hub import notices

    module = _mean_conv_module(7)
    tf.saved_model.save(module, str(tmp_path / "plain"))
    spec = ModuleSpec(name="plain", handle=str(tmp_path / "plain"))
    cache = str(tmp_path / "cache")

    def frozen_said(out):
        monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process
        caplog.clear()

        def said():
            return [r.getMessage() for r in caplog.records
                    if r.levelname == "WARNING" and "used frozen" in r.getMessage()]

        with caplog.at_level("WARNING"):
            result = ranked([spec], task, tmp_path / out, cache_dir=cache)
            by_rank = said()
            HubLayer(spec.handle, trainable=True, module_name=spec.name)  # fit's tune next
        assert said() == by_rank, said()  # not again in the same process
        return result, by_rank

    first, said = frozen_said("a")
    assert not first.rows[0]["cache_hit"] and len(said) == 1, said
    assert said[0].startswith("module plain: its signature 'serving_default' exposes no "
                              "trainable variables: it is used frozen")
    second, again = frozen_said("b")
    assert second.rows[0]["cache_hit"] and again == said


def test_writing_out_a_modules_default_signature_or_output_key_keeps_its_cache_key(
        task, tmp_path):
    # `signature: serving_default` (what `catalogue add` writes) changed the embedding-cache
    # key of the very same reading: one re-embedding per module, though nothing changed.
    from hubensemble.rank.embeddings import embed

    keras.utils.set_random_seed(4)
    inp = keras.Input((None, None, 3))
    export_quietly(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(3, 3)(inp))), str(tmp_path / "exported"))
    handle, cache = str(tmp_path / "exported"), str(tmp_path / "cache")

    def embedded(**fields):
        return embed(ModuleSpec(name="m", handle=handle, **fields), task, profile=PROFILE,
                     cache_dir=cache)

    first = embedded()
    assert not first.cache_hit
    for fields in ({"signature": "serving_default"}, {"output_key": "output_0"},
                   {"signature": "serving_default", "output_key": "output_0"}):
        again = embedded(**fields)
        assert again.cache_hit and again.key == first.key, fields
        np.testing.assert_array_equal(again.embeddings, first.embeddings)
    other = embedded(signature="serve")  # another signature: another reading, its own key
    assert not other.cache_hit and other.key != first.key
    assert len(cache_files(cache)) == 2
    # An entry hubensemble before b0774c6 wrote for the written-out call was keyed with the
    # fields as written: it is read as this call's (it was embedded again).
    from hubensemble.hub.locate import locate_spec
    from hubensemble.rank.embeddings import cache_key, cache_path

    spec = ModuleSpec(name="m", handle=handle, signature="serving_default",
                      output_key="output_0")
    fields = {"signature": "serving_default", "output_key": "output_0"}
    written = cache_key(locate_spec(spec).fingerprint, first.resolution, spec.value_range,
                        "output_0", task.fingerprint, "train")
    for end in (".npy", ".json"):
        os.makedirs(os.path.dirname(cache_path(cache, written)), exist_ok=True)
        os.replace(cache_path(cache, first.key)[:-4] + end, cache_path(cache, written)[:-4] + end)
    old = embedded(**fields)
    assert old.cache_hit and old.key == written
    np.testing.assert_array_equal(old.embeddings, first.embeddings)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_writing_out_a_keras_files_default_layer_keeps_its_cache_key(task, tmp_path, suffix):
    # `layer: mid` on a .keras file whose last Dense takes mid's output is the default cut
    # (sources.load_model_file): it had a key of its own, one re-embedding, as a written-out
    # default signature had (above). An .h5 file's default was read from .keras files only
    # (their config.json), so its written-out `layer: mid` kept a key of its own.
    from hubensemble.rank.embeddings import embed

    keras.utils.set_random_seed(5)
    for kind in ("functional", "sequential"):
        if kind == "functional":
            inp = keras.Input((None, None, 3))
            x = keras.layers.GlobalAveragePooling2D(name="gap")(
                keras.layers.Conv2D(4, 3, name="conv")(inp))
            x = keras.layers.Dense(3, name="mid")(x)
            model = keras.Model(inp, keras.layers.Dense(2, name="head")(x))
        else:
            model = keras.Sequential([keras.Input((None, None, 3)),
                                      keras.layers.Conv2D(4, 3, name="conv"),
                                      keras.layers.GlobalAveragePooling2D(name="gap"),
                                      keras.layers.Dense(3, name="mid"),
                                      keras.layers.Dense(2, name="head")])
        handle = str(tmp_path / f"{kind}{suffix}")
        model.save(handle)
        cache = str(tmp_path / f"cache-{kind}")

        def embedded(**fields):
            return embed(ModuleSpec(name="m", handle=handle, **fields), task, profile=PROFILE,
                         cache_dir=cache)

        first = embedded()
        again = embedded(layer="mid")
        assert again.cache_hit and again.key == first.key, kind
        np.testing.assert_array_equal(again.embeddings, first.embeddings)
        other = embedded(layer="gap")  # another layer: another reading, its own key
        assert not other.cache_hit and other.key != first.key
        assert len(cache_files(cache)) == 2
    if suffix == ".h5":  # tf.keras' (Keras 2's) node format: [[name, node, tensor, kwargs]]
        import h5py

        from hubensemble.hub.locate import keras_default_layer

        with h5py.File(tmp_path / "functional.h5", "r+") as f:
            config = json.loads(f.attrs["model_config"])
            for layer in config["config"]["layers"]:
                layer["inbound_nodes"] = [[[n["args"][0]["config"]["keras_history"][0], 0, 0, {}]]
                                          for n in layer["inbound_nodes"]]
            f.attrs["model_config"] = json.dumps(config).encode()
        assert keras_default_layer(str(tmp_path / "functional.h5")) == "mid"


def test_no_cache_neither_reads_nor_writes(task, good, tmp_path):
    empty = tmp_path / "empty"
    result = ranked(good[:2], task, tmp_path / "a", cache_dir=str(empty), use_cache=False)
    assert not empty.exists() or cache_files(empty) == []
    assert [r["cache_hit"] for r in result.rows] == [False, False]

    full = tmp_path / "full"
    warm = ranked(good[:2], task, tmp_path / "b", cache_dir=str(full))
    before = {p: os.stat(p).st_mtime_ns for p in cache_files(full)}
    for p in before:  # a read would return these zeros (or reject them): neither happens
        np.save(p, np.zeros((len(task.train), 3), np.float32))
        before[p] = os.stat(p).st_mtime_ns
    cold = ranked(good[:2], task, tmp_path / "c", cache_dir=str(full), use_cache=False)
    assert [r["cache_hit"] for r in cold.rows] == [False, False]
    assert stable(cold.rows) == stable(warm.rows)
    assert {p: os.stat(p).st_mtime_ns for p in cache_files(full)} == before


TWO_PROCESSES = textwrap.dedent("""
    import json, sys
    from hubensemble import rank
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.data import load_task
    from hubensemble.rundir import DataArgs
    specs = [ModuleSpec(name=n, handle=h) for n, h in json.loads(sys.argv[1])]
    rank.run_rank(sys.argv[2], specs, load_task("sklearn:digits"), profile="quick",
                  cache_dir=sys.argv[3], data_args=DataArgs(spec="sklearn:digits"),
                  progress=False)
""")


def test_two_processes_at_once_compute_each_entry_once(task, good, tmp_path):
    cache = tmp_path / "cache"
    specs = json.dumps([[s.name, s.handle] for s in good])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = [subprocess.Popen([sys.executable, "-c", TWO_PROCESSES, specs,
                               str(tmp_path / f"run{i}"), str(cache)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    rankings = [rank.load_ranking(tmp_path / f"run{i}") for i in range(2)]
    assert stable(rankings[0].rows) == stable(rankings[1].rows)
    assert rankings[0].selected == rankings[1].selected
    assert len(cache_files(cache)) == len(good)
    assert not [f for _, _, fs in os.walk(cache) for f in fs if ".tmp-" in f]
    # filelock leaves the (empty) lock files behind; none may still be held.
    locks = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs if f.endswith(".lock")]
    assert not [p for p in locks if fileio.lock_is_held(p)]
    for spec in good:  # exactly one of the two computed each entry; the other read it
        hits = [r.row(spec.name)["cache_hit"] for r in rankings]
        assert sorted(hits) == [False, True], (spec.name, hits)


# --- shards and merge ---------------------------------------------------------------------------

def test_shards_merged_equal_the_unsharded_ranking(task, good, broken, tmp_path, caplog,
                                                   monkeypatch):
    specs = [good[0], broken["ghost"], good[1], good[2], broken["nan"]]
    for opts in ({"top_k": 2}, {"greedy": True, "max_k": 3}):
        whole = ranked(specs, task, tmp_path / "whole", **opts)
        shards = [tmp_path / f"shard{i}" for i in range(2)]
        parts = [ranked(specs, task, d, shard=(i, 2), **opts) for i, d in enumerate(shards)]
        assert sorted(r["name"] for r in parts[0].rows) == ["good0", "good1", "nan"]
        assert sorted(r["name"] for r in parts[1].rows) == ["ghost", "good2"]
        merged = rank.merge_rankings(shards[::-1], tmp_path / "merged", **opts)
        assert stable(merged.rows) == stable(whole.rows)
        assert merged.selected == whole.selected
        # No rule given: the shards' own (the default top-K 15 was applied, before).
        again = rank.merge_rankings(shards, tmp_path / "again", top_k=None)
        assert again.selection == whole.selection and again.selected == whole.selected
        got = rank.load_knn_predictions(tmp_path / "merged")
        want = rank.load_knn_predictions(tmp_path / "whole")
        assert list(got) == list(want) == [r["name"] for r in whole.ok_rows]
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
        from hubensemble.rank.knnfile import load_knn_neighbours

        got = load_knn_neighbours(tmp_path / "merged")  # labelcheck's: carried over too
        want = load_knn_neighbours(tmp_path / "whole")
        assert list(got) == list(want) == [r["name"] for r in whole.ok_rows]
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
        meta = json.loads((tmp_path / "merged" / "run.json").read_text())
        assert set(meta["modules"]) == {s.name for s in specs}
        # The shards as given on a command line (relative) are recorded absolute.
        monkeypatch.chdir(tmp_path)
        named = rank.merge_rankings(["shard1", "shard0"], "named", **opts)
        meta = json.loads((tmp_path / "named" / "run.json").read_text())
        assert meta["rank"]["merged_from"] == [str(tmp_path / "shard1"), str(tmp_path / "shard0")]
        assert named.merged_from == meta["rank"]["merged_from"]
        assert meta["data"]["task"]["fingerprint"] == task.fingerprint
        assert (tmp_path / "merged" / "labels" / "train.npy").exists()
        # The pixel keys of the train and val images travel too (evaluate's check).
        keys = read_pixel_keys(Run(shards[0]).pixel_keys_path)
        merged = read_pixel_keys(Run(tmp_path / "merged").pixel_keys_path)
        assert keys is not None and merged == keys
    # The first shard given lost its copy: another shard's is the merge's (it took the first
    # shard's alone, and the merge had none).
    Run(shards[1]).pixel_keys_path.unlink()
    # The training images' files (labelcheck's names; data read from files records them)
    # travel as the keys: the first shard's, else another's (merge copied the first's alone).
    paths = [f"/data/{i}.png" for i in range(len(task.train))]
    fileio.atomic_write_json(Run(shards[0]).labels / "train_paths.json", paths)
    fileio.atomic_write_json(Run(shards[1]).labels / "train_paths.json", paths[:3])  # stale: not N
    rank.merge_rankings(shards[::-1], tmp_path / "keyed", **opts)
    assert read_pixel_keys(Run(tmp_path / "keyed").pixel_keys_path) == keys
    assert Run(tmp_path / "keyed").train_paths(len(task.train)) == paths
    Run(shards[0]).labels.joinpath("train_paths.json").unlink()  # none readable: none kept
    rank.merge_rankings(shards[::-1], tmp_path / "keyed", **opts)
    assert not (Run(tmp_path / "keyed").labels / "train_paths.json").exists()
    ranked(specs, task, shards[1], shard=(1, 2), top_k=2)
    with pytest.raises(RunError, match=re.escape(
            f"the shards were ranked with different selections (greedy=True, max_k=3 in "
            f"{shards[0]}; top_k=2 in {shards[1]}); pass top_k, threshold or greedy=True")):
        rank.merge_rankings(shards, tmp_path / "again", top_k=None)  # (it said --top-k, …)
    # Merging into one of the shards names merge_rankings' keyword (it said --out).
    with pytest.raises(RunError, match=re.escape(
            f"out_dir {shards[0]} is one of the shards to merge; merging into it would "
            "replace that shard's ranking: pass a new out_dir folder")):
        rank.merge_rankings(shards, shards[0], top_k=1)
    ranked(specs, task, shards[1], shard=(1, 2), greedy=True, max_k=3)
    with caplog.at_level("WARNING", logger="hubensemble.rank.merge"):
        assert rank.merge_rankings(shards, tmp_path / "again", top_k=1).selected == ["good2"]
    assert ("the shards were ranked with the selection greedy=True, max_k=3; this merge "
            "selects with top_k=1 (give the shards' rule to keep it)" in caplog.text)
    # Not into a folder of the user's (their labels/train.npy was overwritten), nor a file.
    theirs = tmp_path / "theirs"
    (theirs / "labels").mkdir(parents=True)
    np.save(theirs / "labels" / "train.npy", np.array([5, 5, 5]))
    with pytest.raises(RunError, match=r"holds files or folders \(labels\) and no run \(no "
                                       r"run.json, no ranking.json\); pass a new or empty "
                                       "out_dir folder"):
        rank.merge_rankings(shards, theirs)
    assert np.load(theirs / "labels" / "train.npy").tolist() == [5, 5, 5]
    with pytest.raises(HubensembleError, match="is a file, not a folder; pass another out_dir"):
        rank.merge_rankings(shards, theirs / "labels" / "train.npy")


def test_merge_refuses_mismatched_shards(task, good, tmp_path):
    a, b, k3, dup = (tmp_path / n for n in ("a", "b", "k3", "dup"))
    ranked(good, task, a, shard=(0, 2))
    ranked(good, task, b, shard=(1, 2))
    ranked(good, task, k3, shard=(1, 2), k=3)
    ranked(good, task, dup, shard=(0, 2))
    with pytest.raises(RunError, match="shard 1/2 is missing"):
        rank.merge_rankings([a], tmp_path / "m1")
    with pytest.raises(RunError, match="given twice") as err:
        rank.merge_rankings([a, dup, b], tmp_path / "m2")
    assert str(a) in str(err.value) and str(dup) in str(err.value)
    # Into one of its own shards (a new-user check: it replaced shard a, rc 0), also by
    # another spelling of the path: refused, the shard as it was.
    before = (a / "ranking.json").read_bytes()
    for out in (a, tmp_path / "x" / ".." / "a"):
        with pytest.raises(RunError, match=f"out_dir {re.escape(str(out))} is one of the shards "
                                           "to merge; merging into it would replace"):
            rank.merge_rankings([a, b], out)
    assert (a / "ranking.json").read_bytes() == before
    with pytest.raises(RunError, match="different k") as err:
        rank.merge_rankings([a, k3], tmp_path / "m3")
    assert str(a) in str(err.value) and str(k3) in str(err.value)
    other = load_task("sklearn:digits", seed=1)  # another train/val/test split
    ranked(good, other, tmp_path / "other", shard=(1, 2))
    with pytest.raises(RunError, match="data_fingerprint"):
        rank.merge_rankings([a, tmp_path / "other"], tmp_path / "m4")
    # What differs is said (before: "(sklearn:digits, fingerprint …) than the shards
    # (sklearn:digits, fingerprint …)"), and there are no files to restore.
    with pytest.raises(RunError, match=re.escape(f"{tmp_path / 'other'} holds a run on other "
                                                 "data than the shards: ")) as err:
        rank.merge.check_shards([a, b], tmp_path / "other")  # before TensorFlow, on the CLI
    assert re.search(r": \d+ of the 800 train images are new or changed; .*merge into a new "
                     r"--out folder$", str(err.value))
    ranked(good[:2], task, tmp_path / "cat", shard=(1, 2))
    with pytest.raises(RunError, match="catalogue"):
        rank.merge_rankings([a, tmp_path / "cat"], tmp_path / "m5")
    # An entry that loads differently (same name and handle, so the same size and
    # fingerprint): merged, before, into what neither catalogue's ranking gives.
    changed = [good[0], dataclasses.replace(good[1], value_range="-1,1"), good[2]]
    ranked(changed, task, tmp_path / "vr", shard=(1, 2))
    with pytest.raises(RunError, match=re.escape(
            f"different catalogues, {a} and {tmp_path / 'vr'}: the entry of good1 differs "
            "(value_range); the merged ranking would equal neither")):
        rank.merge.check_shards([a, tmp_path / "vr"], tmp_path / "m5")
    described = [good[0], dataclasses.replace(good[1], license="MIT", source="x.yaml:3"),
                 good[2]]  # descriptive fields only: the same ranking
    ranked(described, task, tmp_path / "lic", shard=(1, 2))
    assert rank.merge.check_shards([a, tmp_path / "lic"])
    # Shards ranked at one profile's name as two versions define it (another resolution_cap:
    # other embeddings) merged by the name alone.
    older = tmp_path / "older"
    shutil.copytree(b, older)
    data = json.loads((older / "ranking.json").read_text())
    data["profile_definition"] = dict(data["profile_definition"], resolution_cap=999)
    (older / "ranking.json").write_text(json.dumps(data))
    with pytest.raises(RunError, match=re.escape(
            f"at profile {PROFILE!r} as different versions define it, {a} and {older}: "
            "resolution_cap")):
        rank.merge.check_shards([a, older], tmp_path / "m6")
    # A folder that is not there, and two whole rankings, are named as such ("shard 0/1 given
    # twice", and a hint to rank the missing folder, before).
    with pytest.raises(RunError, match=re.escape(f"{tmp_path / 'gone'} does not exist; pass "
                                                 "the run folders that run_rank(shard=(I, "
                                                 "N), out_dir=FOLDER) wrote")):  # Python's
        rank.merge_rankings([a, tmp_path / "gone"], tmp_path / "m6")
    with pytest.raises(RunError, match=re.escape(f"{a / 'ranking.json'} is not a folder; "
                                                 "pass the run folders")):  # "does not exist"
        rank.merge_rankings([a, b, a / "ranking.json"], tmp_path / "m6")
    for name in ("w1", "w2"):
        ranked(good, task, tmp_path / name)
    for whole in ([tmp_path / "w1", tmp_path / "w2"], [tmp_path / "w1"]):  # one was copied
        said = re.escape(f"{tmp_path / 'w1'}") + ".*: a whole ranking, not a shard"
        with pytest.raises(RunError, match=said):
            rank.merge_rankings(whole, tmp_path / "m7")
    assert not (tmp_path / "m7").exists()


def test_a_shard_whose_modules_all_fail_writes_them_and_the_merge_decides(task, good, tmp_path,
                                                                          caplog):
    ghosts = [ModuleSpec(name=f"ghost{i}", handle=str(tmp_path / f"gone{i}")) for i in range(2)]
    specs = [good[0], ghosts[0], good[1], ghosts[1]]  # shard 1/2: both ghosts
    whole = ranked(specs, task, tmp_path / "whole")
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        failed = ranked(specs, task, tmp_path / "s1", shard=(1, 2))  # raised, wrote nothing
    assert [r["status"] for r in failed.rows] == ["failed", "failed"]
    assert rank.load_ranking(tmp_path / "s1").failed_rows == failed.rows
    assert ("no module of shard 1/2 could be ranked (2 failed); its ranking records why, and "
            "`rank merge` refuses only when no module of any shard could be ranked"
            in caplog.text)
    ranked(specs, task, tmp_path / "s0", shard=(0, 2))
    merged = rank.merge_rankings([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    assert stable(merged.rows) == stable(whole.rows) and merged.selected == whole.selected
    # No ok module in any shard: the rule of a whole ranking, before --out is made.
    for i in range(2):
        ranked(ghosts, task, tmp_path / f"g{i}", shard=(i, 2))
    with pytest.raises(HubensembleError, match=r"no module could be ranked \(2 failed\):\n"
                                               r"  ghost0: .*\n  ghost1: .*\nfix these .* and "
                                               "rank the shards again"):
        rank.merge.check_shards([tmp_path / "g0", tmp_path / "g1"], tmp_path / "gm")
    assert not (tmp_path / "gm").exists()


def test_merge_names_a_shards_damaged_or_missing_files_before_out_is_made(task, good,
                                                                          tmp_path):
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, d in enumerate(shards):
        ranked(good, task, d, shard=(i, 2))
    out = tmp_path / "m"

    def refused(said, folders=shards):
        with pytest.raises(RunError, match=said):
            rank.merge.check_shards(folders, out)
        with pytest.raises(RunError, match=said):
            rank.merge_rankings(folders, out)
        assert not out.exists()

    knn = shards[1] / "knn.npz"
    original = knn.read_bytes()
    knn.write_bytes(original[:100])  # a traceback (zipfile.BadZipFile), before
    refused(re.escape(f"{knn} is unreadable (BadZipFile"))
    knn.unlink()  # accepted, before: the merged knn.npz lacked good1 and --greedy failed
    refused(re.escape(f"{knn} is missing: it holds the kNN predictions of the 1 module "
                      "ranked there (good1); copy the whole folder"))
    shutil.copy(shards[0] / "knn.npz", knn)  # another shard's
    refused(re.escape(f"{knn} holds no predictions of good1 (ranked there)"))
    knn.write_bytes(original)
    meta_path = shards[1] / "run.json"  # a hand-edited "data": a KeyError 'task', before
    original = meta_path.read_text()
    meta = json.loads(original)
    meta["data"].pop("task")
    meta_path.write_text(json.dumps(meta))
    refused(re.escape(f"{meta_path} is damaged: its \"data\" section has no \"task\""))
    meta_path.write_text(original)
    labels = shards[0] / "labels"  # the merge copied the first shard's: it had none
    shutil.move(labels, tmp_path / "labels")
    refused(re.escape(f"{labels / 'train.npy'} is missing (the train labels of the data its "
                      "run.json records)"))
    shutil.move(tmp_path / "labels", labels)
    np.save(labels / "val.npy", np.zeros(3, np.int64))
    refused(re.escape(f"{labels / 'val.npy'} holds labels of shape (3,), not the "))
    ranked(good, task, shards[0], shard=(0, 2))  # rewrites its labels
    merged = rank.merge_rankings(shards, out)
    assert set(rank.load_knn_predictions(out)) == {r["name"] for r in merged.ok_rows}
    for split in ("train", "val", "test"):
        assert (np.load(out / "labels" / f"{split}.npy")
                == np.asarray(getattr(task, split).labels)).all()


def test_a_new_ranking_never_orphans_the_runs_candidates(task, good, tmp_path, caplog):
    from hubensemble.candidate import scan, write_candidate
    from hubensemble.rundir import Run

    out = tmp_path / "run"
    ranked(good, task, out)
    before = {n: (out / n).read_bytes() for n in ("ranking.json", "run.json")}
    # What `tune` leaves for a module (a failed trial counts: tune resumes it).
    write_candidate(Run(out).candidates, {"trial": "default-0000-good0", "module": "good0",
                                          "status": "failed", "reason": "diverged"})
    moved = dataclasses.replace(good[0], handle=good[1].handle)
    for specs, said in ((good[1:], "good0 is not in the catalogue"),
                        ([moved, *good[1:]], "the entry of good0 changed (handle)")):
        # Before, the ranking replaced run.json's modules: export could no longer load the
        # module of good0's candidates, or loaded another one.
        with pytest.raises(RunError, match=re.escape(f"{out} holds 1 candidate tuned "
                                                     f"from its modules, and {said}")):
            ranked(specs, task, out)
    for i in range(2):
        ranked(good[1:], task, tmp_path / f"s{i}", shard=(i, 2))
    with pytest.raises(RunError, match="good0 is not in the catalogue"):
        rank.merge_rankings([tmp_path / "s0", tmp_path / "s1"], out)
    assert {n: (out / n).read_bytes() for n in before} == before
    # The same entries from another file and line, with another license: ranked again, and
    # the candidates kept (what loads the module did not change).
    same = [dataclasses.replace(s, source=f"moved.yaml:{i + 3}", license="MIT")
            for i, s in enumerate(good)]
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        ranked(same, task, out, top_k=1)
    assert f"{out} holds 1 candidate from an earlier tune; it stays in the pool" in caplog.text
    # A rank's folder, not a fit's; from Python, the call (it said `tune --run OUT`).
    assert f"and run_tune(run_dir={str(out)!r}) adds trials" in caplog.text
    assert [c.module for c in scan(Run(out).candidates)[0]] == ["good0"]
    assert rank.load_ranking(out).selected != json.loads(before["ranking.json"])["selected"]
    assert "this ranking does not select" not in caplog.text  # a failed trial: not in the pool
    # Usable candidates of every module, then a tighter selection: the ensemble would still
    # pick the deselected modules' candidates, and before only their count was said.
    n_val = len(np.load(Run(out).labels / "val.npy"))
    for i, s in enumerate(good):
        for j in range(2):
            write_candidate(Run(out).candidates,
                            {"trial": f"default-{j:04d}-{s.name}", "module": s.name,
                             "status": "ok", "has_test": False},
                            val_probs=np.full((n_val, task.num_classes), 1 / task.num_classes,
                                              np.float32))
    caplog.clear()
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        top = ranked(same, task, out, top_k=1)
    left = sorted({s.name for s in good} - set(top.selected))
    assert len(left) == 2
    # The advice says what the pool holds and the only way to a pool of the selection alone:
    # a new --out, tuned again (before: "to ensemble this selection alone, rank into a new
    # --out folder", not that nothing comes along and the modules are tuned again).
    assert (f"this ranking does not select {', '.join(left)}, whose 4 usable candidates from "
            f"an earlier tune stay in {out / 'candidates'} and still enter the pool the "
            "ensemble selects from. For a pool of the selected modules only, rank into a new "
            "--out folder and run `tune --run` on it: no candidate is copied or reused, so the "
            "selected modules are tuned again") in caplog.text
    assert len([r for r in caplog.records if "does not select" in r.getMessage()]) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        ranked(same, task, out, top_k=3)
    assert "this ranking does not select" not in caplog.text  # all three selected
    # A merge says it too (it did not, though docs/rank.md said so).
    for i in range(2):
        ranked(good, task, tmp_path / f"t{i}", shard=(i, 2))
    caplog.clear()
    with caplog.at_level("WARNING"):
        merged = rank.merge_rankings([tmp_path / "t0", tmp_path / "t1"], out, top_k=1)
    assert f"{out} holds 6 candidates from an earlier tune; they stay in the pool" in caplog.text
    left = sorted({s.name for s in good} - set(merged.selected))
    assert (f"this ranking does not select {', '.join(left)}, whose 4 usable candidates from "
            f"an earlier tune stay in {out / 'candidates'} and still enter the pool") in caplog.text
    assert ("For a pool of the selected modules only, rank merge into a new --out folder and "
            "run `tune --run` on it: no candidate is copied or reused") in caplog.text
    held = {c.module for c in scan(Run(out).candidates)[0]}
    assert held == {"good0", "good1", "good2"}


# --- selection ----------------------------------------------------------------------------------

def test_selection_rules_are_the_proxies_on_the_saved_scores(task, good, module_factory,
                                                             tmp_path):
    more = [ModuleSpec(name=f"extra{i}", handle=module_factory(f"rank-extra{i}", seed=20 + i,
                                                               width=3 + i))
            for i in range(3)]
    specs = good + more
    top = ranked(specs, task, tmp_path / "top", top_k=3)
    scores = {r["name"]: r["score"] for r in top.rows}
    assert top.selected == proxies.select_top_k(scores, 3)
    assert len(top.selected) == 3

    best = max(scores.values())
    tau = (best - sorted(scores.values())[2]) / best + 1e-9  # keeps exactly the best 3
    thr = ranked(specs, task, tmp_path / "thr", threshold=tau, max_k=10)
    assert thr.selected == proxies.select_threshold(scores, tau, 10)
    capped = ranked(specs, task, tmp_path / "cap", threshold=1.0, max_k=4)
    assert capped.selected == proxies.select_threshold(scores, 1.0, 4)
    assert len(capped.selected) == 4

    greedy = ranked(specs, task, tmp_path / "greedy", greedy=True, max_k=4)
    preds = rank.load_knn_predictions(tmp_path / "greedy", list(scores))
    assert greedy.selected == proxies.select_greedy_knn(preds, task.train.labels, k_max=4)
    assert greedy.selection == {"rule": "greedy", "max_k": 4}
    assert greedy.selected[0] == proxies.rank_order(scores)[0]

    with pytest.raises(HubensembleError, match="not both"):
        ranked(specs, task, tmp_path / "x", greedy=True, threshold=0.1)


# --- one call convention: rank embeds exactly what HubLayer (tune, export) computes -----------

def layer_embeddings(spec, images, hw):
    """HubLayer(spec, trainable=False) on the images as fine-tuning would feed them: resized by
    augment.resize to hw (or raw, when the entry has input_size: the layer resizes itself)."""
    layer = hub_layer_from_spec(spec, trainable=False)
    x = images.astype(np.float32) / 255.0
    if spec.input_size is None:
        x = augment.resize(x, hw)
    return layer(x, training=False).numpy()


@pytest.mark.parametrize("kind", ["no-training", "uint8", "tensor-training", "false-only"])
def test_modules_of_other_call_shapes_rank_and_embed_as_hub_layer(task, raw_module, kind,
                                                                  tmp_path):
    spec = ModuleSpec(name=kind, handle=raw_module(kind))
    result = ranked([spec], task, tmp_path, use_cache=False)
    row = result.row(kind)
    assert row["status"] == "ok", row["reason"]
    assert row["dim"] == 6
    got = rank.embed(spec, task, profile=PROFILE, use_cache=False).embeddings
    want = layer_embeddings(spec, task.train.images[:50], (SIDE, SIDE))
    np.testing.assert_allclose(got[:50], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("input_size", [None, (24, 24), (6, 6)])
def test_rank_embedding_equals_the_hub_layer_output_for_the_same_image(task, good, input_size):
    # A downscale (6 px < 8 px digits) is where the antialiased resize differs from plain
    # bilinear: both paths must use the same one.
    spec = ModuleSpec(name="same", handle=good[1].handle, input_size=input_size,
                      value_range="-1,1")
    hw = rank.embedding_resolution(spec, task, PROFILE)
    got = rank.embed(spec, task, profile=PROFILE, use_cache=False).embeddings
    images = task.train.images[:40]
    np.testing.assert_allclose(got[:40], layer_embeddings(spec, images, hw), rtol=1e-5,
                               atol=1e-6)
    if input_size == (6, 6):
        plain = tf.image.resize(images.astype(np.float32) / 255.0, hw)
        layer = HubLayer(spec.handle, value_range="-1,1")
        assert np.abs(layer(plain).numpy() - got[:40]).max() > 1e-4


def test_uncallable_modules_fail_in_rank_naming_the_cause(task, raw_module, good, tmp_path):
    specs = [good[0],
             ModuleSpec(name="true-only", handle=raw_module("true-only")),
             ModuleSpec(name="u8-range", handle=raw_module("uint8"), value_range="-1,1"),
             ModuleSpec(name="u8-said-float", handle=raw_module("uint8"), input_dtype="float32"),
             ModuleSpec(name="said-u8", handle=raw_module("no-training"), input_dtype="uint8")]
    result = ranked(specs, task, tmp_path)
    assert result.row("good0")["status"] == "ok"
    expect = {"true-only": "training=True only", "u8-range": "value_range -1,1",
              "u8-said-float": "input_dtype: float32", "said-u8": "input_dtype: uint8"}
    for name, words in expect.items():
        row = result.row(name)
        assert row["status"] == "failed" and row["stage"] == "input", row
        assert words in row["reason"] and name in row["reason"], row["reason"]


def _reshaping_keras_file(path):
    """A .keras module whose Reshape((11, 7)) refuses the maps 16- and 32-px images make (a
    target without -1: on Keras 3.10, Reshape((11, -1)) asked TensorFlow for [-1, 11, -1] in a
    graph, refused with "Only one input size may be -1", which names no reshape)."""
    inp = keras.Input((None, None, 3))
    x = keras.layers.Reshape((-1, 4))(keras.layers.Conv2D(4, 3)(inp))
    x = keras.layers.Flatten()(keras.layers.Reshape((11, 7))(x))
    keras.Model(inp, x).save(path)
    return keras.saving.load_model(path)


def test_a_keras_call_error_keeps_its_cause_on_one_line(task, good, tmp_path):
    # Keras 3's error from a layer says only "Exception encountered when calling
    # Reshape.call()." on its first line; rank's reason was that line, the cause lost.
    # The cause's words are Keras' or TensorFlow's and differ by release (Keras 3.15's
    # Reshape checks the target shape itself; on 3.10 TensorFlow's op refuses, "Input to
    # reshape is a tensor with 1568 values, ..."): the test takes the cause from the error
    # itself (the bold part of Keras' message) and checks it is kept, on one line.
    model = _reshaping_keras_file(str(tmp_path / "reshape.keras"))
    images = np.zeros((2, 16, 16, 3), np.float32)
    raised = []
    for call in (lambda: model(images), lambda: tf.function(model)(images),
                 lambda: model(images[0])):
        with pytest.raises(Exception) as err:
            call()
        raised.append(err.value)
    for e in raised:
        assert str(e).count("\n") > 1  # Keras' own message is several lines
    from hubensemble.errors import first_line

    def cause(e):  # Keras' cause, one line: the bold text of its message, without TF's op
        # decorations ("{{function_node …}}" eager; TF 2.20's graph build says "{{node …}}")
        found = re.search(r"\x1b\[1m(.*?)\x1b\[0m", str(e), re.S)
        assert found, str(e)
        said = re.sub(r"\{\{(function_)?node [^}]*\}\}\s*|\[Op:\w+\]$", "", found.group(1).strip())
        return " ".join(said.split())

    for e in raised[:2]:  # eager, and inside a tf.function (autograph's "in user code:")
        said = first_line(e)
        assert said == f"{cause(e)} (in Reshape.call())", said
    said = first_line(raised[2])  # a wrong rank: the array Keras prints is cut out
    assert "incompatible shape (16, 16, 3)" in said and "[…]" in said, said
    for said in map(first_line, raised):
        assert "\n" not in said and "\x1b" not in said and "Arguments received" not in said
    assert rank.ranking._failure_reason(raised[0])[0] == (
        f"{type(raised[0]).__name__}: {cause(raised[0])} (in Reshape.call())")
    spec = ModuleSpec(name="reshaping", handle=str(tmp_path / "reshape.keras"))
    row = ranked([good[0], spec], task, tmp_path / "run").row("reshaping")
    # Keras 3.15's Reshape refuses when rank traces the module ("input", "... (in
    # Reshape.call())"); 3.10's leaves it to TensorFlow's op when the graph runs ("error",
    # "InvalidArgumentError: Graph execution error: Input to reshape is a tensor with ...").
    assert row["status"] == "failed" and row["stage"] in ("input", "error"), row
    assert "reshape" in row["reason"].lower() and "\n" not in row["reason"], row
    assert "Exception encountered" not in row["reason"], row


def test_a_tensorflow_op_error_in_a_keras_call_is_said_without_tensorflows_decorations():
    # A layer whose call runs a TensorFlow op eagerly (a user's module; Keras 3.10's Reshape)
    # gave the reason "{{function_node __wrapped__Reshape_device_/job:localhost/replica:0/
    # task:0/device:CPU:0}} Input to reshape is a tensor with 1568 values, but the requested
    # shape has 77 [Op:Reshape] (in Reshaping.call())": the kernel's name and the op's tag
    # say nothing to a user.
    from hubensemble.errors import first_line

    class Reshaping(keras.layers.Layer):
        def call(self, x):
            return tf.reshape(x, (11, 7))

    with pytest.raises(Exception) as err:
        Reshaping()(np.zeros((2, 28, 28), np.float32))
    message = str(err.value)
    assert "{{function_node" in message and "[Op:Reshape]" in message, message  # TF's own
    said = first_line(err.value)
    assert said.startswith("Input to reshape is a tensor with 1568 values"), said
    assert said.endswith(" (in Reshaping.call())") and "{{" not in said and "[Op:" not in said


def test_the_same_module_catalogued_twice_is_embedded_and_ranked_once(task, good, tmp_path,
                                                                      caplog):
    # The same folder under two names (here through a link) was embedded and ranked twice,
    # and both copies could be selected and tuned, without a word (a fault hunt).
    os.symlink(good[0].handle, tmp_path / "link")
    # Its own sha256 pin, which rank never checks (it loads the module as 'good0'): said so.
    again = ModuleSpec(name="again", handle=str(tmp_path / "link"), source="c.yaml:9",
                       sha256="ab" * 32)
    first = dataclasses.replace(good[0], source="c.yaml:2")
    other_range = dataclasses.replace(good[0], name="other", value_range="-1,1")  # read otherwise
    # Two pins of one module that differ: each is checked, so the right one is ranked. It was
    # the wrong earlier entry's duplicate, never ranked: 'wrong' failed its checksum, and
    # 'right' failed as "ranked once, as 'wrong', which failed".
    wrong = dataclasses.replace(good[1], name="wrong", sha256="cd" * 32, source="c.yaml:12")
    right = ModuleSpec(name="right", handle=good[1].handle + "/", source="c.yaml:15",
                       sha256=pinned_sha256(good[1].handle))
    # Another module's entry copied from 'right' with its handle changed and the pin kept:
    # it was paired with 'right' by the pin and ranked once, as 'right' (duplicate), its own
    # files never checked; they are now (`catalogue_pins.pin_disowned`), and refused.
    shutil.copytree(good[0].handle, tmp_path / "copy0")
    copied = dataclasses.replace(right, name="copied", handle=str(tmp_path / "copy0"),
                                 source="c.yaml:18")
    catalogue = [first, again, other_range, wrong, right, copied]
    cache = tmp_path / "cache"
    with caplog.at_level("WARNING", logger="hubensemble.rank.ranking"):
        result = ranked(catalogue, task, tmp_path / "run", cache_dir=str(cache))
    row = result.row("again")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    assert "entry 'good0' (c.yaml:2)" in row["reason"] and "ranked once" in row["reason"]
    assert "its sha256 abababababab… is never checked: 'good0'" in row["reason"], row
    assert row["cache_hit"] is None and "again" not in result.selected
    assert result.row("other")["status"] == "ok" and len(cache_files(cache)) == 3
    # Said as the summary under rank's table says it (a duplicate), not as a module that failed.
    assert ("module again (c.yaml:9) is ranked as an earlier entry (a duplicate): [duplicate]"
            in caplog.text), caplog.text
    assert "module again (c.yaml:9) failed" not in caplog.text
    assert result.row("wrong")["stage"] == "checksum", result.row("wrong")
    assert result.row("right")["status"] == "ok", result.row("right")
    assert result.row("copied")["stage"] == "checksum", result.row("copied")
    # A shard decides from the whole catalogue: the copy is the duplicate wherever it lands.
    shard = ranked(catalogue, task, tmp_path / "shard", shard=(1, 2), cache_dir=str(cache))
    assert shard.row("again")["stage"] == "duplicate"


def test_the_same_files_under_another_handle_are_ranked_once(task, good, tmp_path):
    # A tfhub.dev URL and its Kaggle name download the same archive, but no rule maps one
    # name to the other offline; the same stands for a copy of a folder: both were ranked and
    # could both be selected and tuned. rank compares the files once it has located them.
    shutil.copytree(good[0].handle, tmp_path / "copy")
    copy = ModuleSpec(name="copy", handle=str(tmp_path / "copy"))
    other_range = ModuleSpec(name="other", handle=str(tmp_path / "copy"), value_range="-1,1")
    result = ranked([good[0], copy, other_range, good[1]], task, tmp_path / "run")
    row = result.row("copy")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    assert "loads the same module as entry 'good0'" in row["reason"], row
    assert "the same files (fingerprint " in row["reason"] and "copy" not in result.selected
    assert result.row("other")["status"] == "ok"  # read otherwise
    assert result.row(good[1].name)["status"] == "ok"


def test_the_same_files_in_two_shards_are_a_duplicate_in_the_merge(
        task, good, tmp_path, caplog):
    # rank compares the files within its shard only: a copy of good0's folder in the other
    # shard was ranked there, and `rank merge` kept both rows ok, so both could be selected
    # and tuned. The merge compares the fingerprints the shards' rows record, as rank does.
    shutil.copytree(good[0].handle, tmp_path / "copy")
    copy = ModuleSpec(name="copy", handle=str(tmp_path / "copy"))
    specs = [good[0], copy, good[1]]
    whole = ranked(specs, task, tmp_path / "whole", top_k=3)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    parts = [ranked(specs, task, d, shard=(i, 2), top_k=3) for i, d in enumerate(shards)]
    assert [r["name"] for r in parts[1].rows] == ["copy"] and parts[1].rows[0]["status"] == "ok"
    with caplog.at_level("WARNING", logger="hubensemble.rank.merge"):
        merged = rank.merge_rankings(shards, tmp_path / "merged", top_k=3)
    row = merged.row("copy")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    assert row["reason"] == whole.row("copy")["reason"]
    assert "loads the same module as entry 'good0'" in row["reason"]
    assert (f"module copy is ranked as an earlier entry (a duplicate): {row['reason']}"
            in caplog.text)
    assert stable(merged.rows) == stable(whole.rows)
    assert merged.selected == whole.selected and "copy" not in merged.selected
    assert "copy" not in rank.load_knn_predictions(tmp_path / "merged")


def test_a_duplicate_of_an_entry_that_failed_says_why_it_failed(task, good, tmp_path):
    # The copy's row said "ranked once, as 'bad'" when 'bad' had not been ranked at all.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "saved_model.pb").write_bytes(b"not a protocol buffer")
    os.symlink(tmp_path / "bad", tmp_path / "link")
    bad = ModuleSpec(name="bad", handle=str(tmp_path / "bad"), source="c.yaml:2")
    copy = ModuleSpec(name="copy", handle=str(tmp_path / "link"), source="c.yaml:4")
    result = ranked([good[0], bad, copy], task, tmp_path / "run")
    failed, row = result.row("bad"), result.row("copy")
    assert failed["status"] == "failed" and row["stage"] == "duplicate", row
    assert f"ranked once, as 'bad', which failed: {failed['reason']}" in row["reason"], row


def test_a_remote_module_writing_out_its_default_signature_is_ranked_once(task, good, tmp_path,
                                                                          monkeypatch):
    # A remote module listed bare and again with the signature / output key `catalogue add`
    # writes out (its defaults) was embedded and ranked twice: compared as written.
    from reliability.scenarios import Server, tarball

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache"))
    module = _mean_conv_module(1)
    tf.saved_model.save(module, str(tmp_path / "tfmodule"))
    server = Server()
    try:
        url = server.add("/m.tar.gz", tarball(str(tmp_path / "tfmodule")))
        bare = ModuleSpec(name="bare", handle=url)
        added = ModuleSpec(name="added", handle=url, signature="serving_default",
                           output_key="output_0")
        other = ModuleSpec(name="other", handle=url, signature="serving_default",
                           output_key="other")  # not one of its outputs: another reading
        result = ranked([good[0], bare, added, other], task, tmp_path / "run")
    finally:
        server.close()
    assert result.row("bare")["status"] == "ok"
    row = result.row("added")
    assert row["stage"] == "duplicate" and "ranked once, as 'bare'" in row["reason"], row
    assert result.row("other")["stage"] != "duplicate"


def test_exact_copies_do_not_vote_for_each_other(tmp_path, good):
    """Issue 13, example 5: three classes of pure-noise images, every file copied once.
    Plain leave-one-out kNN lets each image's copy vote for it (a perfect score on noise);
    rank leaves the copy's whole group out, so the score stays at noise level."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
            shutil.copy(root / c / f"{i}.png", root / c / f"{i}-copy.png")
    args = DataArgs(spec=f"folder:{root}", val_fraction=0.0, test_fraction=0.0)
    task = args.load()
    assert task.duplicates["copies"] == 36
    ranking = ranked(good[:1], task, tmp_path / "run", data_args=args, use_cache=False)
    score = ranking.rows[0]["score"]
    emb = rank.embed(good[0], task, profile=PROFILE, use_cache=False).embeddings
    y = task.train.labels
    plain = proxies.loo_knn_accuracy(emb, y)
    grouped = proxies.loo_knn_accuracy(emb, y, groups=task.train_groups)
    assert plain == 1.0  # every image's nearest neighbour is its copy
    assert score == grouped < 0.6  # noise: about a third right


# --- scale: the warm path, files per run, shards from a cluster job's environment ----------------

@pytest.fixture
def located(monkeypatch):
    """rank.located, remembering modules written a moment ago too (not only after
    RACY_SECONDS, as the tests' modules are fresh)."""
    from hubensemble.rank import located as module

    monkeypatch.setattr(module, "RACY_SECONDS", 0.0)
    return module


def forbid_locate(monkeypatch):
    """From now on hub.locate fails: a module that is located afresh fails with this reason
    (a spy on hubensemble's own function, not a mock of TensorFlow)."""
    import hubensemble.hub as hub
    from hubensemble.errors import ModuleLoadError

    def refuse(handle, *, name=None, **_):
        raise ModuleLoadError("located afresh", module=name, handle=handle, stage="error")

    monkeypatch.setattr(hub, "locate", refuse)
    # rank locates a catalogue entry through locate_spec (all its fields, issue 16)
    monkeypatch.setattr(hub, "locate_spec", lambda spec: refuse(spec.handle, name=spec.name))


def test_warm_ranking_reads_what_it_remembers_and_relocates_changed_modules(
        task, good, tmp_path, located, monkeypatch):
    mod = tmp_path / "mod"
    shutil.copytree(good[0].handle, mod)
    specs = [ModuleSpec(name="copy", handle=str(mod)), good[1]]
    cache = str(tmp_path / "cache")
    first = ranked(specs, task, tmp_path / "a", cache_dir=cache)
    memo = json.loads(open(located.memo_path(cache, str(mod))).read())
    assert memo["fingerprint"] == first.row("copy")["fingerprint"] and memo["scanned"]
    assert memo["path"] == os.path.realpath(mod)

    with monkeypatch.context() as m:
        forbid_locate(m)  # a warm ranking neither hashes nor scans: hub.locate is not called
        warm = ranked(specs, task, tmp_path / "b", cache_dir=cache)
        assert [r["cache_hit"] for r in warm.rows] == [True, True]
        assert stable(warm.rows) == stable(first.rows)

        # Changed in place (same size, same inode): its identity changed, so it is located
        # again; the other module is still read from what is remembered.
        data = mod / "variables" / "variables.data-00000-of-00001"
        with open(data, "r+b") as f:
            byte = f.read(1)
            f.seek(0)
            f.write(bytes([byte[0] ^ 1]))
        changed = ranked(specs, task, tmp_path / "c", cache_dir=cache)
        assert changed.row("copy")["reason"].endswith("located afresh")
        assert changed.row(good[1].name)["cache_hit"] is True

        # A miss is never computed on the memo's word: the module is located before loading.
        for entry in cache_files(cache):
            os.unlink(entry)
        with pytest.raises(HubensembleError, match="2 failed") as err:
            ranked(specs, task, tmp_path / "d", cache_dir=cache)
        assert str(err.value).count("located afresh") == 2
    # hub.locate back, the damaged byte still there: located, loaded and refused by
    # TensorFlow's checksum (the memo hides nothing); the other module ranks.
    damaged = ranked(specs, task, tmp_path / "e", cache_dir=cache)
    assert damaged.row("copy")["status"] == "failed" and "Checksum" in damaged.row("copy")["reason"]
    assert damaged.row(good[1].name)["status"] == "ok"
    with open(data, "r+b") as f:
        f.write(byte)  # repaired in place: located afresh and ranked
    again = ranked(specs, task, tmp_path / "f", cache_dir=cache)
    assert [r["status"] for r in again.rows] == ["ok", "ok"]
    assert stable(again.rows) == stable(first.rows)


def test_a_module_damaged_in_place_is_never_served_from_the_embedding_cache(
        task, good, tmp_path, located):
    """One byte of a data shard flipped, its size unchanged, the embeddings still cached:
    the module gets a new fingerprint, is loaded, and TensorFlow's checksum refuses it."""
    from hubensemble import hub

    mod = tmp_path / "mod"
    shutil.copytree(good[0].handle, mod)
    specs = [ModuleSpec(name="copy", handle=str(mod)), good[1]]
    cache = str(tmp_path / "cache")
    first = ranked(specs, task, tmp_path / "a", cache_dir=cache)
    assert first.row("copy")["fingerprint"] == hub.module_fingerprint(str(good[0].handle))
    data = mod / "variables" / "variables.data-00000-of-00001"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0x40]))
    assert data.stat().st_size == size
    assert hub.module_fingerprint(str(mod)) != first.row("copy")["fingerprint"]
    damaged = ranked(specs, task, tmp_path / "b", cache_dir=cache)
    assert damaged.row("copy")["status"] == "failed" and not damaged.row("copy")["cache_hit"]
    # TensorFlow says "Checksum does not match" or "The length checksum does not match",
    # by where the flipped byte lands in the shard
    assert "checksum" in damaged.row("copy")["reason"].lower()
    assert damaged.row(good[1].name)["cache_hit"] is True


def test_unsafe_untrusted_and_fresh_modules_are_not_taken_from_memory(
        task, good, broken, tmp_path, located, monkeypatch):
    from hubensemble.hub import resolve

    cache = str(tmp_path / "cache")
    unsafe = broken["unsafe"]
    for out in ("a", "b"):  # refused every time, with its reason; never remembered
        row = ranked([unsafe, good[0]], task, tmp_path / out, cache_dir=cache).row("unsafe")
        assert row["stage"] == "unsafe" and "ReadFile" in row["reason"]
    assert not os.path.exists(located.memo_path(cache, resolve(unsafe.handle)))

    # Remembered while trusted (not scanned) is not enough once the entry is not trusted.
    mod = tmp_path / "mod"
    shutil.copytree(good[0].handle, mod)
    ranked([ModuleSpec(name="m", handle=str(mod), trust=True)], task, tmp_path / "t",
           cache_dir=cache)
    assert json.loads(open(located.memo_path(cache, str(mod))).read())["scanned"] is False
    with monkeypatch.context() as m:
        forbid_locate(m)
        with pytest.raises(HubensembleError, match="located afresh"):
            ranked([ModuleSpec(name="m", handle=str(mod))], task, tmp_path / "u",
                   cache_dir=cache)

    # Files changed less than RACY_SECONDS ago: not remembered until a later run.
    monkeypatch.setattr(located, "RACY_SECONDS", 3600.0)
    fresh = tmp_path / "fresh"
    shutil.copytree(good[1].handle, fresh)
    ranked([ModuleSpec(name="f", handle=str(fresh))], task, tmp_path / "f", cache_dir=cache)
    assert not os.path.exists(located.memo_path(cache, str(fresh)))


def run_files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, fs in os.walk(folder) for f in fs)


def test_run_folder_files_do_not_grow_with_the_modules(task, good, module_factory, tmp_path):
    """Nothing is written per module into the run folder (one kNN predictions file), so a
    2,000-module ranking rewrites no growing set of files."""
    more = good + [ModuleSpec(name=f"more{i}", handle=module_factory(f"rank-more{i}",
                                                                     seed=40 + i, width=5))
                   for i in range(3)]
    small = ranked(good[:1], task, tmp_path / "one")
    large = ranked(more, task, tmp_path / "six", greedy=True, max_k=3)
    assert run_files(tmp_path / "one") == run_files(tmp_path / "six")
    preds = rank.load_knn_predictions(tmp_path / "six")
    assert list(preds) == [r["name"] for r in large.ok_rows] and len(preds) == 6
    assert list(rank.load_knn_predictions(tmp_path / "one")) == [small.rows[0]["name"]]
    assert rank.load_knn_predictions(tmp_path / "six", ["more1"]).keys() == {"more1"}


def test_knn_predictions_of_earlier_runs_still_load(tmp_path):
    legacy = tmp_path / "knn"
    legacy.mkdir()
    np.save(legacy / "a.npy", np.array([1, 0, 2]))
    np.save(legacy / "b.npy", np.array([0, 0, 1]))
    got = rank.load_knn_predictions(tmp_path, ["a", "missing"])
    assert list(got) == ["a"] and got["a"].tolist() == [1, 0, 2]
    assert sorted(rank.load_knn_predictions(tmp_path)) == ["a", "b"]
    (tmp_path / rank.KNN_FILE).write_bytes(b"torn")
    with pytest.raises(RunError, match="rank again"):
        rank.load_knn_predictions(tmp_path)


K8S = {"JOB_COMPLETION_INDEX": "2"}
SLURM = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}


@pytest.mark.parametrize("environ,shards,expected", [
    (K8S, 4, (2, 4)),
    ({"JOB_COMPLETION_INDEX": "0"}, 1, (0, 1)),
    (SLURM, None, (3, 4)),
    (SLURM, 4, (3, 4)),
    # sbatch --array=1-4: ids 1..4, SLURM_ARRAY_TASK_MIN=1
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1"}, None, (3, 4)),
    # sbatch --array=0-30:10: ids 0, 10, 20, 30
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "20", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_ARRAY_TASK_STEP": "10"}, None, (2, 4)),
    ({**K8S, "SLURM_JOB_ID": "77"}, 3, (2, 3)),  # a Slurm job that is not an array
])
def test_shard_from_the_environment_of_an_array_job(environ, shards, expected):
    assert rank.shard_from_environment(shards, environ=environ) == expected


@pytest.mark.parametrize("environ,shards,words,python", [
    ({}, None, "--shard auto reads the shard from a cluster array job, but neither "
     "$JOB_COMPLETION_INDEX (Kubernetes Indexed Job, with --shards N)",
     "shard_from_environment() reads the shard from a cluster array job, but neither "
     "$JOB_COMPLETION_INDEX (Kubernetes Indexed Job, with shards=N)"),
    ({"SLURM_JOB_ID": "77"}, 4, "outside such a job pass --shard I/N",
     "outside such a job pass shard=(I, N)"),
    (K8S, None, "--shard auto in a Kubernetes Indexed Job ($JOB_COMPLETION_INDEX=2) needs "
     "--shards N", "shard_from_environment() in a Kubernetes Indexed Job "
     "($JOB_COMPLETION_INDEX=2) needs shards=N"),
    (K8S, 2, "index 2 is outside 0 … 1 ($JOB_COMPLETION_INDEX=2, --shards 2)",
     "index 2 is outside 0 … 1 ($JOB_COMPLETION_INDEX=2, shards=2)"),
    ({"JOB_COMPLETION_INDEX": "two"}, 4, "--shard auto: $JOB_COMPLETION_INDEX is 'two', not "
     "an integer", "shard_from_environment(): $JOB_COMPLETION_INDEX is 'two', not an integer"),
    ({**K8S, **SLURM}, 4, "both $JOB_COMPLETION_INDEX", "or pass shard=(I, N)"),
    ({"SLURM_ARRAY_TASK_ID": "1"}, None, "$SLURM_ARRAY_TASK_COUNT is not", "is not"),
    ({"SLURM_ARRAY_TASK_COUNT": "4"}, None, "$SLURM_ARRAY_TASK_ID is not", "is not"),
    (SLURM, 3, "--shard auto: --shards 3 but the Slurm array has 4 tasks ($SLURM_ARRAY_TASK_ID"
     "=3, $SLURM_ARRAY_TASK_COUNT=4); drop --shards or make them agree",
     "shard_from_environment(): shards=3 but the Slurm array has 4 tasks ($SLURM_ARRAY_TASK_ID"
     "=3, $SLURM_ARRAY_TASK_COUNT=4); drop shards or make them agree"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "7"}, None, "index 7 is outside 0 … 3", "outside"),
    ({**SLURM, "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_STEP": "2"}, None,
     "not on the array range", "not on the array range"),
    (K8S, 0, "--shards must be an integer >= 1", "shards must be an integer >= 1"),
])
def test_shard_from_the_environment_refuses_what_it_cannot_trust(environ, shards, words,
                                                                 python):
    """Each refusal in its caller's words: the command line's `--shard auto` and `--shards N`,
    shard_from_environment() and its keyword from Python (where every one said "--shard
    auto: … --shards")."""
    from hubensemble.lockwords import command_line

    with pytest.raises(HubensembleError) as err, command_line():
        rank.shard_from_environment(shards, environ=environ)
    assert words in str(err.value), err.value
    with pytest.raises(HubensembleError) as err:
        rank.shard_from_environment(shards, environ=environ)
    # No flag of ours (Slurm's own sbatch --array stays).
    assert python in str(err.value) and not re.search("--(?!array)", str(err.value)), err.value


def test_a_shard_refused_from_python_names_its_keyword(task, good, tmp_path):
    """run_rank(shard='auto') was told "`--shard auto` is resolved by shard_from_environment",
    and shard=(4, 4) "e.g. --shard 0/4 … 3/4": flags no Python caller typed."""
    from hubensemble.lockwords import command_line

    with pytest.raises(HubensembleError) as err:
        ranked(good[:1], task, tmp_path / "a", shard="auto")
    assert str(err.value) == ("shard 'auto': pass (index, count), e.g. shard=(0, 4), or "
                              "shard=shard_from_environment() in a cluster array job (the "
                              "command line's --shard auto)")
    with pytest.raises(HubensembleError) as err:
        ranked(good[:1], task, tmp_path / "b", shard=(4, 4))
    assert str(err.value) == ("shard 4/4: need 0 <= index < count (e.g. shard=(0, 4) … "
                              "(3, 4))")
    with pytest.raises(HubensembleError) as err, command_line():
        rank.check_shard((4, 4))
    assert str(err.value) == "shard 4/4: need 0 <= index < count (e.g. --shard 0/4 … 3/4)"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.fixture
def cli_main():
    """hubensemble.cli.main in this process (it restores the root logger and warnings)."""
    from hubensemble.cli import main

    return main


def test_cli_shard_auto_ranks_the_array_tasks_share(good, tmp_path, monkeypatch,
                                                    cli_main, capsys):
    cat = tmp_path / "pool.yaml"
    cat.write_text("modules:\n" + "".join(f"  - {{name: {s.name}, handle: {s.handle}}}\n"
                                          for s in good))
    common = ["rank", "--catalogue", str(cat), "--data", "sklearn:digits", "--profile",
              PROFILE]
    for var in ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
                "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(var, raising=False)
    # Kubernetes Indexed Job, pod 1 of 2.
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert cli_main([*common, "--shard", "auto", "--shards", "2", "--out",
                     str(tmp_path / "k8s")]) == 0
    got = rank.load_ranking(tmp_path / "k8s")
    assert got.shard == (1, 2) and [r["name"] for r in got.rows] == [good[1].name]
    assert "shard 1/2 (from the job's environment)" in capsys.readouterr().err
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    # Slurm, sbatch --array=1-3: task id 3 is the third shard.
    for var, value in (("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "3"),
                       ("SLURM_ARRAY_TASK_MIN", "1")):
        monkeypatch.setenv(var, value)
    assert cli_main([*common, "-q", "--shard", "auto", "--out", str(tmp_path / "slurm")]) == 0
    got = rank.load_ranking(tmp_path / "slurm")
    assert got.shard == (2, 3) and [r["name"] for r in got.rows] == [good[2].name]
    assert json.loads((tmp_path / "slurm" / "run.json").read_text())["rank"]["shard"] == [2, 3]
    # Inconsistent: the error says so, and nothing is ranked.
    assert cli_main([*common, "--shard", "auto", "--shards", "4", "--out",
                     str(tmp_path / "bad")]) == 2
    assert "--shards 4 but the Slurm array has 3 tasks" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "ranking.json").exists()
    # A usage error (exit 2, "error:", before TensorFlow and --out): it was a bare message.
    with pytest.raises(SystemExit) as err:
        cli_main([*common, "--shard", "0/2", "--shards", "2", "--out", str(tmp_path / "x")])
    assert err.value.code == 2 and not (tmp_path / "x").exists()
    assert "hubensemble rank: error: --shards N goes with --shard auto" in capsys.readouterr().err
    # A shard past the catalogue's end is refused before the data loads and --out is made.
    assert cli_main([*common, "--shard", "3/4", "--out", str(tmp_path / "empty")]) == 2
    assert "shard 3/4 holds no module: the catalogue has 3" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()


def test_rank_warns_of_an_entrys_output_dim_its_module_does_not_measure(
        good, tmp_path, in_process):
    """A new-user check: an entry's wrong `output_dim: 512` (the module gives 4-d features)
    validated, ranked and was measured as 4 without a word on the terminal or in log.txt.
    rank names the `output_dim:` field's file:line (it named the entry's first line, where
    every other field's message names the field's own), or the `defaults:` line the value
    came from, both widths and the one used (the measured), records the entry's in the row,
    and ranks the module all the same; a cache hit warns too."""
    cat = tmp_path / "pool.yaml"
    cat.write_text(f"defaults:\n  output_dim: 9\nmodules:\n"
                   f"  - name: {good[0].name}\n    handle: {good[0].handle}\n"
                   f"    family: other\n    output_dim: 512\n"  # the entry's 4th line
                   f"  - name: {good[1].name}\n    handle: {good[1].handle}\n")
    for out in (tmp_path / "run", tmp_path / "again"):  # a miss, then a cache hit
        code, _, err = in_process("rank", "--catalogue", cat, "--data", "sklearn:digits",
                                  "--profile", PROFILE, "--out", out)
        assert code == 0, err
        said = (f"{cat}:7: field 'output_dim': module good0's entry says 512, its embeddings "
                f"are 4-d; ranked (and used) with the measured 4; write output_dim: 4 in the "
                f"entry or leave it out")
        assert said in err and said in (out / "log.txt").read_text()
        assert (f"{cat}:2: field 'output_dim': module good1's entry says 9, its embeddings "
                f"are 7-d") in err
        assert err.count("field 'output_dim'") == 2
        rows = {r["name"]: r for r in rank.load_ranking(out).rows}
        assert (rows["good0"]["status"], rows["good0"]["dim"]) == ("ok", 4)
        assert rows["good0"]["catalogue_dim"] == 512 and rows["good1"]["catalogue_dim"] == 9
    assert rows["good0"]["cache_hit"]


def test_rank_of_a_run_folder_keeps_its_recorded_proxy_and_selection_unless_typed():
    """`rank` of a fit's folder selected the default 15 modules, not the fit's --top-k 2 (a
    later `tune --run` tuned them all): the recorded rule is kept per group of flags, only
    where it differs from the defaults, and any flag of a group typed gives that group back
    to the user."""
    from hubensemble.rank.reuse import kept_options, kept_words

    ranking = {"metric": "knn-cosine", "k": 1, "selection": {"rule": "top_k", "top_k": 2}}
    assert kept_options(ranking, set()) == {"metric": "knn-cosine", "top_k": 2}
    from hubensemble.lockwords import command_line

    # In the caller's words: run_rank's keywords from Python (it was told the flags).
    assert kept_words(kept_options(ranking, set())) == "metric='knn-cosine', top_k=2"
    with command_line():
        assert kept_words(kept_options(ranking, set())) == "--metric knn-cosine --top-k 2"
    assert kept_options(ranking, {"greedy"}) == {"metric": "knn-cosine"}
    assert kept_options(ranking, {"k"}) == {"top_k": 2}
    threshold = {"metric": "knn", "k": 3,
                 "selection": {"rule": "threshold", "threshold": 0.02, "max_k": 4}}
    assert kept_options(threshold, set()) == {"k": 3, "threshold": 0.02, "max_k": 4}
    greedy = {"metric": "knn", "k": 1, "selection": {"rule": "greedy", "max_k": 15}}
    assert kept_options(greedy, set()) == {"greedy": True}
    assert kept_words({"greedy": True, "max_k": 3}) == "greedy=True, max_k=3"
    with command_line():
        assert kept_words({"greedy": True, "max_k": 3}) == "--greedy --max-k 3"
    assert kept_options({}, set()) == {}


def test_rank_of_a_run_whose_ranking_json_is_damaged_ranks_again_and_says_so(tmp_path):
    """A merge fault (fit's own check of a damaged ranking.json, and `rank --out RUN`): the
    rank options a run folder keeps were read from ranking.json first, so a damaged one
    stopped rank with "ranking.json is unreadable …; `hubensemble rank … --out RUN` writes it
    again", the very command refused, and fit stopped before saying which file it redid.
    Now nothing is kept from it, a line says so, and fit (which gives every option) does not
    read it."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rank.rundefaults import _KEPT_GROUPS, run_defaults

    run = tmp_path / "run"
    run.mkdir()
    atomic_write_json(run / "run.json", {"created": "2026-12-04T00:00:00"})
    (run / "ranking.json").write_text('{"modules": [{"name": "m')
    values, lines = run_defaults(run, {"profile"}, "cpu")
    assert values == {} and len(lines) == 1, lines
    assert lines[0] == (f"rank: {run / 'ranking.json'} is unreadable or damaged, so none of "
                        "its options is kept: ranking again with the options given")
    every = {name for group in _KEPT_GROUPS for name in group} | {"profile"}
    assert run_defaults(run, every, "cpu") == ({}, [])  # fit's call: not read at all


def test_rank_of_a_run_keeps_its_profile_as_recorded_when_the_definition_changed(tmp_path):
    """rank's kept profile compared profiles by name: a run tuned at cpu as an older version
    defined it (before cpu's BatchNorm rule) read as the default cpu, and `rank --out RUN`
    ranked it at today's definition without a word, where tune's pool check and retraining
    read the recorded one. Now the recorded definition is kept, and the line says what
    changed; a run recorded at today's definition keeps nothing."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rank.rundefaults import _KEPT_GROUPS, run_defaults

    cpu = get_profile("cpu")
    older = {k: v for k, v in cpu.to_json().items() if not k.startswith("bn_")}
    run = tmp_path / "run"
    run.mkdir()
    atomic_write_json(run / "run.json", {"created": "2026-12-04T00:00:00",
                                         "tune": {"profile": older}})
    kept = {name for group in _KEPT_GROUPS for name in group}
    from hubensemble.lockwords import command_line

    with command_line():  # as `rank --out RUN` says it
        values, lines = run_defaults(run, kept, "cpu")
    assert set(values) == {"profile"} and values["profile"].name == "cpu"
    assert values["profile"].bn_lr_scale == 1.0 != cpu.bn_lr_scale
    assert len(lines) == 1 and lines[0].startswith(
        f"rank: --profile cpu (the run's last tune, {run / 'run.json'}, as an older "
        "hubensemble defined it (bn_head_init None -> 'probe', bn_lr_scale 1.0 -> 0.001"), lines
    assert "; not the default cpu as this version defines it): " in lines[0]
    # From Python (run_rank), its keyword.
    assert run_defaults(run, kept, "cpu")[1][0].startswith("rank: profile='cpu' (the run's ")
    atomic_write_json(run / "run.json", {"created": "2026-12-04T00:00:00",
                                         "tune": {"profile": cpu.to_json()}})
    assert run_defaults(run, kept, "cpu") == ({}, [])


def test_threads_of_one_process_rank_one_run_one_at_a_time_and_share_a_cache(task, good,
                                                                             tmp_path):
    """The run folder's lock counted as held by every thread of the process holding it: a
    second thread's `run_rank` on a run another thread was ranking went on beside it (both
    wrote ranking.json and run.json). It is refused now, naming the thread; two threads
    ranking two runs on one embedding cache both finish, with each entry computed once."""
    import threading

    out, cache = tmp_path / "run", str(tmp_path / "cache")
    inside, done, said = threading.Event(), threading.Event(), []

    def holder():
        with Run(out).lock("rank"):  # as a run_rank of another thread, mid-way
            inside.set()
            done.wait(60)

    thread = threading.Thread(target=holder, name="ranker-1")
    thread.start()
    try:
        assert inside.wait(60)
        (out / "run.json").write_text("{}")
        with pytest.raises(RunError) as refused:
            ranked(good[:1], task, out, cache_dir=cache)
        said.append(str(refused.value))
    finally:
        done.set()
        thread.join(60)
    assert (f"another rank is running on {out} (pid {os.getpid()} (this process, thread "
            "ranker-1), since ") in said[0], said[0]
    assert not (out / "ranking.json").exists()

    results, errors = {}, []

    def rank_into(name):
        try:
            results[name] = ranked(good[:2], task, tmp_path / name, cache_dir=cache)
        except BaseException as e:  # noqa: BLE001 - the test's assertion says it
            errors.append(e)

    threads = [threading.Thread(target=rank_into, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    # The two overlapping run_rank(progress=False) calls left the process's bars decided
    # off when "a" ended first (a later test's download bar was disabled: CI run 75).
    assert terminal.showing() == terminal.Showing()
    assert stable(results["a"].rows) == stable(results["b"].rows)
    assert len(cache_files(cache)) == 2
    for spec in good[:2]:  # one thread computed each entry; the other read it
        hits = [results[n].row(spec.name)["cache_hit"] for n in ("a", "b")]
        assert sorted(hits) == [False, True], (spec.name, hits)


def test_a_task_given_in_python_records_its_spec_not_its_source_text(good, tmp_path):
    """run_rank(task=load_task(…)) without data_args (and fit(data=task)) recorded the Task's
    source text as run.json's data spec ("sklearn:digits (scikit-learn's …, seed 3)"),
    which the report showed and no command takes, and as data only Python could give
    again: `hubensemble tune --run R` was then refused ("data was given in Python"). A Task
    load_task returned is recorded as loaded (spec and options), and a later stage loads it
    again; one relabelled by a label_fn, or made in Python, still needs passing in."""
    task = load_task("sklearn:digits", seed=3)
    ranked(good, task, tmp_path / "run", data_args=None)
    args = json.loads((tmp_path / "run" / "run.json").read_text())["data"]["args"]
    assert (args["spec"], args["reloadable"], args["seed"], task.spec) == (
        "sklearn:digits", True, 3, "sklearn:digits")
    assert Run(tmp_path / "run").task().fingerprint == task.fingerprint  # loaded again
    relabelled = load_task("sklearn:digits", seed=3, label_fn=lambda y: y % 2)
    assert relabelled.load_args is None
    assert (DataArgs.of_task(relabelled).spec, DataArgs.of_task(relabelled).reloadable) == (
        "sklearn:digits", False)
    # A Task made in Python has no spec: its source names it, as before.
    made = dataclasses.replace(task, spec=None)
    assert DataArgs.of_task(made).spec == made.source and not DataArgs.of_task(made).reloadable


def test_a_refused_selection_rule_names_the_callers_keywords():
    """selection_rule (run_rank, merge_rankings, fit) told a Python caller "choose one
    selection rule: --greedy or --threshold" and "it needs --metric knn or knn-cosine"."""
    from hubensemble.lockwords import command_line
    from hubensemble.rank.ranking import selection_rule

    with pytest.raises(HubensembleError, match=re.escape(
            "choose one selection rule: greedy=True or threshold, not both")):
        selection_rule(metric="knn", greedy=True, threshold=0.5)
    with pytest.raises(HubensembleError, match=re.escape(
            "it needs metric='knn' or 'knn-cosine', not logme")):
        selection_rule(metric="logme", greedy=True)
    with command_line(), pytest.raises(HubensembleError, match=re.escape(
            "it needs --metric knn or knn-cosine, not logme")):
        selection_rule(metric="logme", greedy=True)


def test_the_embedding_caches_way_out_names_the_callers_keywords(tmp_path):
    """An unwritable embedding cache told run_rank(cache_dir=…) to "pass --cache-dir a folder
    you can write; --no-cache (rank, fit) …": flags its caller never typed."""
    from hubensemble.lockwords import command_line
    from hubensemble.rank.embeddings import _folder

    assert _folder(tmp_path).fix() == (
        "pass cache_dir a folder you can write; use_cache=False (run_rank, fit) neither reads "
        "nor writes it")
    with command_line():
        assert _folder(tmp_path).fix() == (
            "pass --cache-dir a folder you can write; --no-cache (rank, fit) neither reads nor "
            "writes it")


def test_a_pool_tuned_at_an_older_definition_of_its_profile_is_refused_as_tune_refuses_it(
        tmp_path):
    """check_pool_profile compared resolution_cap alone: candidates tuned at cpu as an older
    version defined it with another BatchNorm lr factor passed `rank --profile cpu`, which tune
    (`tune.pool.check_pool`, `runprofile.training_changes`) then refused; one rule now."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.lockwords import command_line
    from hubensemble.rank.pool import check_pool_profile

    cpu = get_profile("cpu")
    older = dataclasses.replace(cpu, bn_lr_scale=cpu.bn_lr_scale * 10)
    run = tmp_path / "run"
    folder = run / "candidates" / "seeds-0000-m"
    folder.mkdir(parents=True)
    atomic_write_json(folder / "trial.json", {"trial": "seeds-0000-m", "status": "failed",
                                              "profile": "cpu"})
    atomic_write_json(run / "run.json", {"created": "2026-12-04T00:00:00", "tune": {
        "profile": older.to_json(), "sweeps": {"seeds": {"profile": older.to_json(),
                                                         "trials": ["seeds-0000-m"]}}}})
    with command_line(), pytest.raises(RunError, match=re.escape(
            f"(e.g. seeds-0000-m: bn_lr_scale {older.bn_lr_scale!r} -> {cpu.bn_lr_scale!r}, "
            "recorded -> now)")):
        check_pool_profile(run, "cpu")
    check_pool_profile(run, older)


def test_fit_names_a_ranking_made_at_another_definition_of_its_profile():
    """ranking_changes compared the profile by name: a ranking.json made at cpu as an older
    version defined it (another resolution_cap: other embeddings) was taken by fit as its
    own. It records the definition now; one of another training field only ranks alike."""
    from hubensemble.lockwords import command_line
    from hubensemble.rank.ranking import Ranking
    from hubensemble.rank.reuse import ranking_changes

    cpu = get_profile("cpu")
    older = dataclasses.replace(cpu, resolution_cap=(cpu.resolution_cap or 224) * 2)
    options = dict(metric="knn", k=1, top_k=1, threshold=None, max_k=None, greedy=False)

    def ranked(prof):
        return Ranking.from_json(dict(
            Ranking(metric="knn", k=1, rows=[], selected=[], profile="cpu",
                    selection={"rule": "top_k", "top_k": 1}).to_json(),
            profile_definition=prof.to_json()))

    with command_line():
        changed = ranking_changes(ranked(older), [], profile="cpu", **options)
    assert any(f"--profile cpu (resolution_cap {older.resolution_cap!r} -> "
               f"{cpu.resolution_cap!r})" == c for c in changed), changed
    changed = ranking_changes(ranked(older), [], profile="cpu", **options)
    assert any(c.startswith("profile='cpu' (resolution_cap") for c in changed), changed
    for same in (cpu, dataclasses.replace(cpu, bn_lr_scale=cpu.bn_lr_scale * 10)):
        assert not any("profile" in c for c in ranking_changes(ranked(same), [],
                                                               profile="cpu", **options))


def test_a_pool_tuned_at_an_older_resolution_of_its_profile_refuses_a_typed_one(tmp_path):
    """check_pool_profile compared profile names only: candidates tuned at cpu as an older
    version defined it (another resolution_cap) passed `rank --profile cpu`, which embedded at
    today's resolution, not theirs. It is refused now, in the caller's words; the recorded
    definition (rank without a profile) and today's, when recorded alike, pass."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.lockwords import command_line
    from hubensemble.rank.pool import check_pool_profile

    cpu = get_profile("cpu")
    older = dataclasses.replace(cpu, resolution_cap=(cpu.resolution_cap or 224) * 2)
    run = tmp_path / "run"
    folder = run / "candidates" / "seeds-0000-m"
    folder.mkdir(parents=True)
    atomic_write_json(folder / "trial.json", {"trial": "seeds-0000-m", "status": "failed",
                                              "profile": "cpu"})

    def record(prof):
        atomic_write_json(run / "run.json", {"created": "2026-12-04T00:00:00", "tune": {
            "profile": prof.to_json(), "sweeps": {"seeds": {"profile": prof.to_json(),
                                                            "trials": ["seeds-0000-m"]}}}})

    record(older)
    with command_line(), pytest.raises(RunError, match=re.escape(
            f"holds 1 candidate tuned with --profile cpu as run.json records it (e.g. "
            f"seeds-0000-m: resolution_cap {older.resolution_cap!r} -> "
            f"{cpu.resolution_cap!r}, recorded -> now)")) as err:
        check_pool_profile(run, "cpu")
    assert "Rank without --profile (the run's profile as recorded)" in str(err.value)
    with pytest.raises(RunError, match=re.escape("Call run_rank without profile (the run's")):
        check_pool_profile(run, cpu)  # from Python: its keywords
    check_pool_profile(run, older)  # the run's profile as recorded: its resolution
    record(cpu)
    check_pool_profile(run, "cpu")


def test_a_rankings_repr_is_a_line_not_its_rows():
    """run_rank's result echoed by a notebook cell: the dataclass repr printed every row,
    handle, fingerprint and source included (about 1,000 characters a module)."""
    from hubensemble.rank import Ranking

    rows = [{"name": f"m{i}", "handle": f"/models/m{i}" * 5, "status": "ok", "score": 0.5,
             "dim": 8, "fingerprint": "f" * 64, "source": "cat.yaml:3"} for i in range(50)]
    rows.append({"name": "bad", "handle": "/x", "status": "failed", "reason": "no file"})
    ranking = Ranking(metric="knn", k=1, rows=rows, selected=["m0", "m1"], profile="cpu",
                      examples=800, catalogue={"size": 51, "fingerprint": "c" * 64},
                      profile_definition={"name": "cpu", "rule": "r" * 500})
    assert repr(ranking) == ("Ranking(metric='knn', k=1, 50 ranked, 1 failed, "
                             "selected=['m0', 'm1'], profile='cpu', examples=800)")
    assert repr(dataclasses.replace(ranking, shard=(1, 4))).endswith(", shard=(1, 4))")


# --- k against the smallest class ----------------------------------------------------------------

def test_a_k_that_outnumbers_a_class_is_warned_of(task, good, tmp_path, caplog):
    """`--k 5` on classes of 3 training examples (200+ classes of 3-5 images, a new user's
    VTAB-like task) ranked without a word, though each example then has at most 2 same-class
    neighbours among its 5: the proxy scored class sizes more than the embeddings. Measured
    here with scikit-learn on separated clusters of 3 points: 1-NN and 3-NN near 1, 4-NN
    (ties) lower, 9-NN far below. Now `outvoted_classes` names the classes where
    2 * (n - 1) <= k and run_rank warns."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(30), 3)
    x = (rng.normal(size=(30, 8)) * 4)[y] + rng.normal(size=(90, 8))
    accuracy = {k: float(np.mean(sklearn_loo_predictions(x, y, k, "euclidean") == y))
                for k in (1, 3, 4, 9)}
    assert accuracy[1] > 0.9 and accuracy[3] > 0.9 and accuracy[4] < accuracy[3]
    assert accuracy[9] < 0.5
    assert proxies.outvoted_classes(y, 3) == [] and len(proxies.outvoted_classes(y, 4)) == 30
    mixed = np.r_[np.repeat(0, 5), np.repeat(1, 2), np.repeat(2, 3), [3]]
    sizes = np.bincount(mixed)
    assert proxies.outvoted_classes(mixed, 4) == [(c, int(sizes[c])) for c in (3, 1, 2)]
    assert proxies.outvoted_classes(mixed, 1) == [(3, 1)]

    from hubensemble.data import Split, Task

    keep = np.flatnonzero(np.isin(task.train.labels, [0, 1, 2]))
    few = keep[task.train.labels[keep] == 0][:3]
    idx = np.sort(np.r_[few, keep[task.train.labels[keep] != 0]])
    small = Task(name="few", source="test", class_names=task.class_names[:3],
                 train=Split(images=task.train.images[idx], labels=task.train.labels[idx]))
    caplog.set_level("WARNING", logger="hubensemble.rank")
    ranked(good[:1], small, tmp_path / "k5", k=5, data_args=None)
    said = [r.getMessage() for r in caplog.records if "same-class" in r.getMessage()]
    assert said == [f"k=5: class {task.class_names[0]!r} has 3 training examples, so each of "
                    f"its examples has at most 2 same-class neighbours among its 5, at most "
                    f"half: outvoted whenever the others agree, the kNN proxy scores "
                    f"class sizes more than the embeddings; lower it to 3 or less, or keep the "
                    f"default 1"]
    caplog.clear()
    ranked(good[:1], small, tmp_path / "k3", k=3, data_args=None)
    assert not [r for r in caplog.records if "same-class" in r.getMessage()]


def test_a_module_returning_probabilities_is_warned_of_and_the_warning_kept_with_its_cache(
        task, tmp_path, caplog):
    # A Keras model ending in pooling then a Softmax layer (no Dense, no conv head) was
    # ranked on its class probabilities without a word; its cache hit said nothing either.
    from hubensemble.fileio import atomic_write_json, read_json
    from hubensemble.rank.embeddings import cache_path, embed

    keras.utils.set_random_seed(5)
    inp = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Conv2D(4, 3)(inp))
    keras.Model(inp, keras.layers.Activation("softmax")(pooled)).save(tmp_path / "p.keras")
    cache = str(tmp_path / "cache")
    spec = ModuleSpec(name="p", handle=str(tmp_path / "p.keras"))
    with caplog.at_level(logging.WARNING, logger="hubensemble.hub.runtime"):
        first = embed(spec, task, profile=PROFILE, cache_dir=cache)
    (said,) = [r.getMessage() for r in caplog.records if "class probabilities" in r.getMessage()]
    # Said once, by the load-time rule (its last layer is a softmax, 91105bb), which names the
    # layer the softmax takes; the rows rule (every row sums to 1) stays silent then.
    assert said.startswith("module p (") and "its softmax takes 'pool''s output" in said
    assert "is a softmax: it returns class probabilities, not features" in said, said
    kept = read_json(cache_path(cache, first.key)[:-len(".npy")] + ".json")["warnings"]
    assert kept == [said]  # said again on a hit, naming the entry's module (`hub.notices`)
    assert embed(spec, task, profile=PROFILE, cache_dir=cache).cache_hit
    # An entry written before this warning keeps none: its first hit loads the module once
    # to say it and keeps it.
    about = cache_path(cache, first.key)[:-len(".npy")] + ".json"
    atomic_write_json(about, {**read_json(about), "warnings": []})
    assert embed(spec, task, profile=PROFILE, cache_dir=cache).cache_hit
    assert read_json(about)["warnings"] == [said]


def test_a_module_download_that_finds_no_room_stops_the_ranking(
        task, good, tmp_path, monkeypatch):
    """A fault hunt: a module whose download met a full disk was recorded as that module's
    failure ("[archive] … not a valid SavedModel tarball") and the ranking went on (exit 0),
    meeting the same disk module after module. It stops with the disk's OSError (the CLI's
    "free disk space, then run the same command again"), and no ranking is written."""
    import errno
    import gzip
    import io
    import tarfile

    from reliability.scenarios import Server

    hub_cache = tmp_path / "hub-cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(hub_cache))
    hub_cache.mkdir()
    header = tarfile.TarInfo("saved_model.pb")
    header.size = shutil.disk_usage(hub_cache).free + (1 << 30)  # more than the disk holds
    buf = io.BytesIO(header.tobuf(tarfile.PAX_FORMAT) + b"\0" * 4096)
    server = Server()
    try:
        url = server.add("/big.tar.gz", gzip.compress(buf.getvalue()))
        with pytest.raises(OSError) as err:
            ranked([good[0], ModuleSpec(name="big", handle=url)], task, tmp_path / "run")
    finally:
        server.close()
    assert err.value.errno == errno.ENOSPC and url in str(err.value), err.value
    assert not (tmp_path / "run" / "ranking.json").exists()


def test_the_same_weights_as_a_keras_file_and_a_savedmodel_are_ranked_once(task, good,
                                                                           tmp_path):
    # good0's weights saved as m.keras and as its SavedModel folder share no byte, so no
    # fingerprint matched them: both were ranked with one kNN score, and both could be
    # selected and tuned. Their embeddings of the rank data are the same: rank compares them.
    make_tiny_model(seed=10, width=4).save(tmp_path / "m.keras")
    make_tiny_model(seed=11, width=4).save(tmp_path / "other.keras")  # same width, not equal
    as_file = ModuleSpec(name="as_file", handle=str(tmp_path / "m.keras"), source="c.yaml:5")
    other = ModuleSpec(name="other", handle=str(tmp_path / "other.keras"))
    first = dataclasses.replace(good[0], source="c.yaml:2")
    result = ranked([first, as_file, other, good[1]], task, tmp_path / "run", top_k=4)
    # The reference: both modules' embeddings, computed apart, are equal to float tolerance.
    embeds = [rank.embed(s, task, "train", profile=PROFILE, use_cache=False).embeddings
              for s in (first, as_file)]
    np.testing.assert_allclose(embeds[0], embeds[1], rtol=1e-5, atol=1e-6)
    row = result.row("as_file")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    assert "loads the same module as entry 'good0' (c.yaml:2)" in row["reason"], row
    assert (f"the same embeddings of the {len(task.train)} training images"
            in row["reason"]), row
    assert "as_file" not in result.selected and "good0" in result.selected
    assert [result.row(n)["status"] for n in ("good0", "other", "good1")] == ["ok"] * 3
    # The ranking record says it: ranking.json's row, as the summary prints it.
    saved = rank.load_ranking(tmp_path / "run").row("as_file")
    assert saved["stage"] == "duplicate" and saved["reason"] == row["reason"]
    assert f"duplicate as_file (c.yaml:5): {row['reason']}" in result.summary()


def test_a_module_measuring_wider_than_the_catalogue_bound_fails_at_its_first_batch(
        task, good, tmp_path):
    # A module whose trace leaves its width open ([batch, None]) and whose outputs are wider
    # than the catalogue's bound on output_dim (2**18) was embedded whole: rank held N x D
    # float32 for it. It fails at its first batch, in the catalogue's words.
    from hubensemble.catalogue_fields import output_dim_problem

    class Tiled(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x):
            corner = tf.tile(x[:, :1, :1, :], [1, 1, 1, 87382])  # 262,146 values an image
            return tf.reshape(corner, [tf.shape(x)[0], -1])

    tf.saved_model.save(Tiled(), str(tmp_path / "tiled"))
    result = ranked([good[0], ModuleSpec(name="tiled", handle=str(tmp_path / "tiled"))], task,
                    tmp_path / "run", use_cache=False)
    row = result.row("tiled")
    assert row["status"] == "failed" and row["stage"] == "output", row
    assert output_dim_problem(3 * 87382) in row["reason"], row["reason"]


def test_merge_rankings_without_a_rule_keeps_the_shards_own(task, good, tmp_path, caplog):
    # merge_rankings(shards, out) applied top_k=15 (its Python default) to shards ranked with
    # greedy selection, with a warning, where `rank merge` without a selection flag keeps the
    # shards' rule: the default is now the command's (top_k None). Fails before: top_k=15.
    specs = [good[0], good[1], good[2]]
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, d in enumerate(shards):
        ranked(specs, task, d, shard=(i, 2), greedy=True, max_k=2)
    whole = ranked(specs, task, tmp_path / "whole", greedy=True, max_k=2)
    with caplog.at_level("WARNING", logger="hubensemble.rank.merge"):
        merged = rank.merge_rankings(shards, tmp_path / "merged")
    assert merged.selection == whole.selection == {"rule": "greedy", "max_k": 2}
    assert merged.selected == whole.selected
    assert "this merge selects with" not in caplog.text
    # A rule given still applies.
    assert rank.merge_rankings(shards, tmp_path / "top1", top_k=1).selection == {
        "rule": "top_k", "top_k": 1}


def test_an_equal_embeddings_duplicate_says_nothing_of_two_right_pins(task, good, tmp_path):
    # m.keras and good0's SavedModel are one model in two files: each entry pins its own
    # files' true sha256, and each pin is checked as it loads. The duplicate's reason said
    # "its sha256 … is not the module's: the files matched 'good0''s …": both pins are right,
    # and the entries matched by embeddings, not files.
    from hubensemble.modulefiles import pinned_sha256

    make_tiny_model(seed=10, width=4).save(tmp_path / "m.keras")
    first = dataclasses.replace(good[0], sha256=pinned_sha256(good[0].handle))
    twin = ModuleSpec(name="twin", handle=str(tmp_path / "m.keras"),
                      sha256=pinned_sha256(str(tmp_path / "m.keras")))
    assert first.sha256 and twin.sha256 and first.sha256 != twin.sha256
    row = ranked([first, twin], task, tmp_path / "run").row("twin")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    assert "the same embeddings of" in row["reason"], row
    assert "sha256" not in row["reason"] and "''" not in row["reason"], row["reason"]


def test_a_shard_past_the_catalogue_says_how_many_modules_it_has():
    # "the catalogue has 4; use fewer shards" lacked its noun: 4 what?
    from hubensemble.optionerror import OptionError
    from hubensemble.rank.shards import check_shard_size

    for size, words in ((4, "its 4 modules"), (1, "its 1 module")):
        with pytest.raises(OptionError) as err:
            check_shard_size(size, (6, 9))
        assert str(err.value) == (f"shard 6/9 holds no module: the catalogue has {size}; use "
                                  f"fewer shards (at most {size}, one for each of {words})")
    check_shard_size(7, (6, 9))  # shard 6 of 9 holds module 6: no error


def load_error_of(cause):
    """The ModuleLoadError hub.savedmodels raises from a failed tf.saved_model.load whose
    error was `cause` (its __cause__), for module "big"."""
    from hubensemble.errors import ModuleLoadError

    try:
        try:
            raise cause
        except Exception as e:
            raise ModuleLoadError(f"tf.saved_model.load failed: {e}", module="big",
                                  handle="/models/big", stage="savedmodel") from e
    except ModuleLoadError as err:
        return err


def test_memory_that_runs_out_as_a_module_loads_is_not_a_bad_catalogue_entry():
    # oneDNN's "could not create a primitive" (TensorFlow's AbortedError) as a SavedModel
    # loads on a full machine was reported as the entry's fault: "fix these catalogue entries
    # (handle, sha256, …)". It is memory's (memory.ran_out), with memory's way on.
    from hubensemble.memory import ran_out

    spec = ModuleSpec(name="big", handle="/models/big")
    loaded = load_error_of

    onednn = tf.errors.AbortedError(None, None, "Operation received an exception: status: 1, "
                                    "message: could not create a primitive, in file x.cc:1")
    for cause in (onednn, tf.errors.ResourceExhaustedError(None, None, "OOM when allocating"),
                  MemoryError()):
        err = loaded(cause)
        assert ran_out(err), cause
        reason, stage = rank.ranking._failure_reason(err, spec, 32)
        assert stage == "memory" and reason.startswith("[memory] module 'big'"), reason
        assert "ran out of memory" in reason and f"{type(cause).__name__}" in reason, reason
        assert "16 holds half the images" in reason and "free memory" in reason, reason
    # oneDNN's unsupported shape is no memory's: the entry's reason as before.
    other = loaded(tf.errors.AbortedError(None, None, "could not create a primitive descriptor"))
    assert not ran_out(other)
    assert rank.ranking._failure_reason(other, spec, 32) == (str(other), "savedmodel")
    # No module ranked: memory's way on, not the catalogue's.
    rows = [{"name": "big", "reason": rank.ranking._failure_reason(loaded(onednn), spec, 32)[0],
             "stage": "memory", "status": "failed"}]
    with pytest.raises(HubensembleError) as raised:
        rank.ranking.raise_if_none_ok(rows)
    assert "catalogue entries" not in str(raised.value), raised.value
    assert "every module ran out of memory: a smaller" in str(raised.value), raised.value
    rows.append({"name": "bad", "reason": "[load] …", "stage": "load", "status": "failed"})
    with pytest.raises(HubensembleError) as raised:
        rank.ranking.raise_if_none_ok(rows)
    assert ("1 module ran out of memory: a smaller" in str(raised.value)
            and "; fix the other catalogue entries" in str(raised.value)), raised.value


def test_the_same_embeddings_in_two_shards_are_a_duplicate_in_the_merge(task, good, tmp_path):
    # rank compares embeddings within its shard only: good0's weights as m.keras in the other
    # shard (no byte in common with good0's SavedModel) stayed ok in the merge, so both could
    # be selected and tuned. The rows record a small signature; the merge compares them.
    make_tiny_model(seed=10, width=4).save(tmp_path / "m.keras")
    as_file = ModuleSpec(name="as_file", handle=str(tmp_path / "m.keras"))
    specs = [good[0], as_file, good[1]]
    whole = ranked(specs, task, tmp_path / "whole", top_k=3)
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    parts = [ranked(specs, task, d, shard=(i, 2), top_k=3) for i, d in enumerate(shards)]
    assert parts[1].row("as_file")["status"] == "ok"
    sig = parts[1].row("as_file")["signature"]
    assert len(sig) == 16 and {len(line) for line in sig} == {8}  # small: 16 x 8 numbers
    merged = rank.merge_rankings(shards, tmp_path / "merged", top_k=3)
    row = merged.row("as_file")
    assert row["status"] == "failed" and row["stage"] == "duplicate", row
    # The merge says what it compared: the 16 images a row keeps (it said "the same
    # embeddings of the N training images", rank's words for all N). Fails before: N.
    n = len(task.train)
    said = whole.row("as_file")["reason"]
    assert f"the same embeddings of the {n} training images, to float tolerance" in said
    assert row["reason"] == said.replace(
        f"of the {n} training images,", f"of the first 16 of the {n} training images (those "
        "a shard's ranking.json row keeps),"), (row, said)
    assert "sha256" not in row["reason"]
    assert stable(merged.rows) == [{**r, "reason": row["reason"]} if r["name"] == "as_file"
                                   else r for r in stable(whole.rows)]
    assert merged.selected == whole.selected and "as_file" not in merged.selected
    # Shards ranked before rows recorded it: compared by their files only, as before.
    for d in shards:
        doc = json.loads((d / "ranking.json").read_text())
        for r in doc["modules"]:
            r.pop("signature", None)
        (d / "ranking.json").write_text(json.dumps(doc))
    old = rank.merge_rankings(shards, tmp_path / "old", top_k=3)
    assert old.row("as_file")["status"] == "ok"


def test_k_with_a_metric_without_neighbours_is_refused_from_python_too(good, task, tmp_path):
    # `rank --metric logme --k 3` is a usage error (options.NEEDS_VALUE), but run_rank(
    # metric="logme", k=3) ranked by LogME while k changed rank's key, and FitOptions took
    # it too. Fails before: ranked, and FitOptions built. Refused now before anything is
    # written, in Python's words; k at its default is what leaving it out gives.
    from hubensemble import options
    from hubensemble.pipeline import FitOptions

    for metric in ("logme", "hscore"):
        with pytest.raises(options.OptionError) as e:
            ranked(good[:1], task, tmp_path / "run", metric=metric, k=3)
        assert str(e.value) == (f"k=3 only applies with metric='knn' or 'knn-cosine', not "
                                f"metric={metric!r}; leave k out (its default, 1)")
        with pytest.raises(options.OptionError, match=re.escape(f"not metric={metric!r}")):
            FitOptions(metric=metric, k=2)
    assert not (tmp_path / "run").exists()
    assert FitOptions(metric="logme").k == 1 and FitOptions(metric="knn-cosine", k=3).k == 3
    out = ranked(good[:1], task, tmp_path / "ok", metric="logme", k=1)
    assert out.selected == [good[0].name]


def test_a_k_recorded_beside_a_metric_without_neighbours_is_not_kept():
    """A ranking written with metric logme and k 3 (before such a k was refused; it was
    ignored) kept both for `rank --out RUN`, which then refused its own run's options
    ("k=3 only applies with metric='knn' or 'knn-cosine'"): the metric is kept, the k not.
    Fails before: {'metric': 'logme', 'k': 3}."""
    from hubensemble.rank.reuse import kept_options

    assert kept_options({"metric": "logme", "k": 3}, set()) == {"metric": "logme"}
    assert kept_options({"metric": "knn-cosine", "k": 3}, set()) == {"metric": "knn-cosine",
                                                                     "k": 3}
    assert kept_options({"metric": "hscore", "k": 5, "selection": {"rule": "top_k", "top_k": 2}},
                        set()) == {"metric": "hscore", "top_k": 2}


def test_a_duplicate_made_in_python_says_to_leave_it_out_of_the_modules_passed(
        task, good, tmp_path):
    # ModuleSpecs made in Python come from no catalogue file: "leave one of them out of the
    # catalogue" sent the caller to a file that does not exist. Entries read from a catalogue
    # file (their source FILE:LINE) keep those words.
    again = ModuleSpec(name="again", handle=good[0].handle)
    row = ranked([good[0], again], task, tmp_path / "run").row("again")
    assert row["stage"] == "duplicate", row
    assert row["reason"].endswith("; leave one of them out of the modules you passed"), row
    listed = [dataclasses.replace(good[0], source="c.yaml:2"),
              dataclasses.replace(again, source="c.yaml:3")]
    row = ranked(listed, task, tmp_path / "run2").row("again")
    assert row["reason"].endswith("; leave one of them out of the catalogue"), row


def test_no_module_could_be_ranked_names_the_weights_field_of_a_keras_entry():
    """A new-user check: a catalogue whose keras: entry's weights file was missing was told
    to fix "(handle, sha256, trust, output_key, value_range)", leaving out the `weights:` it
    had to fix. It is named where a keras: entry failed, and only there."""
    from hubensemble.errors import ModuleLoadError
    from hubensemble.rank.ranking import raise_if_none_ok

    row = {"name": "m0", "status": "failed", "stage": "savedmodel", "reason": "gone"}
    for handle, listed in (("keras:MobileNet", "(handle, weights, sha256, "),
                           ("/models/m0", "(handle, sha256, ")):
        with pytest.raises(ModuleLoadError) as refused:
            raise_if_none_ok([{**row, "handle": handle}])
        assert f"fix these catalogue entries {listed}" in str(refused.value), refused.value


def _as_without(shard, specs, field):
    """Rewrites `shard`'s ranking.json catalogue record as a hubensemble without ModuleSpec
    field `field` wrote it for `specs`: each entry's digest and the per-field digests
    without it (sha256 of the sorted JSON, 16 hex digits: the record's rule, written out)."""
    import hashlib

    from hubensemble.rank.pool import DESCRIPTIVE_FIELDS

    def digest(value):
        return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]

    old = [{f: v for f, v in s.to_json().items() if f not in DESCRIPTIVE_FIELDS and f != field}
           for s in specs]
    data = json.loads((shard / "ranking.json").read_text())
    data["catalogue"] = {**data["catalogue"], "entries": {e["name"]: digest(e) for e in old},
                         "fields": {f: digest([e.get(f) for e in old])
                                    for f in sorted({f for e in old for f in e} - {"name"})}}
    (shard / "ranking.json").write_text(json.dumps(data))


def test_rank_merge_and_a_new_ranking_read_a_version_that_knew_fewer_fields_as_fit_does(
        task, good, tmp_path):
    """rank merge compared the shards' per-entry digests, and a new ranking of a tuned run
    compared run.json's entries field by field: a shard, or a run.json, of a version without
    the `signature` field (at its default in every entry now) read as every entry changed
    ("cannot merge shards ranked with different catalogues"; "the entry of good0 changed
    (signature)"), where fit's own check (rank.ranking.computed_fields) finds none. Both
    compare as fit does now; an edit is still refused. Fails before: both refusals."""
    from hubensemble.rank.pool import check_tuned_modules

    a, b, vr = (tmp_path / n for n in ("a", "b", "vr"))
    ranked(good, task, a, shard=(0, 2))
    ranked(good, task, b, shard=(1, 2))
    _as_without(b, good, "signature")
    assert rank.merge.check_shards([a, b])
    changed = [good[0], dataclasses.replace(good[1], value_range="-1,1"), good[2]]
    shutil.copytree(b, vr)
    _as_without(vr, changed, "signature")
    # (every entry differs by its digest; the recorded entries name the one edited)
    with pytest.raises(RunError, match=r"different catalogues, .*: the entry of good1 differs "
                                       r"\(value_range\)"):
        rank.merge.check_shards([a, vr])
    # A tuned run whose run.json entries a version without the field wrote.
    out = tmp_path / "tuned"
    fileio.atomic_write_json(out / "candidates" / "t" / "trial.json",
                             {"trial": "t", "module": "good0", "status": "failed"})
    entry = {f: v for f, v in good[0].to_json().items() if f != "signature"}
    fileio.atomic_write_json(out / "run.json", {"modules": {"good0": entry}})
    assert check_tuned_modules(out, {"good0": good[0].to_json()}) == 1
    with pytest.raises(RunError, match=r"the entry of good0 changed \(value_range\)"):
        check_tuned_modules(out, {"good0": dataclasses.replace(good[0],
                                                               value_range="-1,1").to_json()})


def test_a_new_rankings_refusal_names_the_candidates_to_delete_absolute(tmp_path, monkeypatch):
    """`rank --out runs/r` over a tuned run whose catalogue lost a module said "delete
    runs/r/candidates first": relative to the folder it ran in. It names the run and its
    candidates' folder as every "delete FOLDER" does (`text.escaped` of `text.absolute`).
    Files only."""
    from hubensemble.rank.pool import check_tuned_modules

    monkeypatch.chdir(tmp_path)
    out = os.path.join("runs", "r")
    fileio.atomic_write_json(os.path.join(out, "candidates", "t", "trial.json"),
                             {"trial": "t", "module": "gone", "status": "failed"})
    fileio.atomic_write_json(os.path.join(out, "run.json"), {"modules": {"gone": {}}})
    with pytest.raises(RunError) as e:
        check_tuned_modules(out, {}, warn=False)
    said = str(e.value)
    assert said.startswith(f"{tmp_path}/runs/r holds 1 candidate tuned from its modules, "), said
    assert said.endswith(f"delete {tmp_path}/runs/r/candidates first to discard the "
                         "candidates"), said


def test_load_rankings_refusals_name_ranking_json_absolute(tmp_path, monkeypatch):
    """`load_ranking("runs/r")` (tune's, the report's reader) said "runs/r/ranking.json is
    missing": relative to the folder it ran in, where its rank command beside it was
    absolute. The file is named absolute and escaped (`text.escaped` of `text.absolute`), as
    every message names a run's file. Files only."""
    from hubensemble.rank import load_ranking

    monkeypatch.chdir(tmp_path)
    out = os.path.join("runs", "r")
    fileio.atomic_write_json(os.path.join(out, "run.json"), {})
    with pytest.raises(RunError) as e:
        load_ranking(out)
    assert str(e.value).startswith(f"{tmp_path}/runs/r/ranking.json is missing; "), e.value


def test_a_shards_knn_file_and_labels_are_named_absolute(tmp_path, monkeypatch):
    """`rank merge runs/s0 …` of a shard whose knn.npz or labels were damaged said
    "runs/s0/knn.npz is unreadable", relative to the folder it ran in. Named absolute and
    escaped now (`text.escaped` of `text.absolute`). Files only."""
    from hubensemble.rank.knnfile import check_knn_predictions, load_knn_predictions
    from hubensemble.rank.merge import _check_labels

    monkeypatch.chdir(tmp_path)
    shard = os.path.join("runs", "s0")
    os.makedirs(os.path.join(shard, "labels"))
    with open(os.path.join(shard, "knn.npz"), "wb") as f:
        f.write(b"not a zip")
    shown = f"{tmp_path}/runs/s0"
    for call in (lambda: load_knn_predictions(shard),
                 lambda: check_knn_predictions(shard, ["m"])):
        with pytest.raises(RunError) as e:
            call()
        assert str(e.value).startswith(f"{shown}/knn.npz is unreadable ("), e.value
    with pytest.raises(RunError) as e:
        _check_labels(shard, {"task": {"sizes": {"train": 3}}})
    assert str(e.value).startswith(f"{shown}/labels/train.npy is missing (the train "), e.value


def test_rank_merge_over_a_probe_sweeps_run_names_the_tune_that_adds_its_selections_trials(
        tmp_path, module_factory, in_process):
    """rank merge over a run that holds candidates names the tune that adds trials for its
    new selection as rank does (`sweepwords.selection_command`): the run's sweep and options.
    Fails before: it named a plain `hubensemble tune --run RUN`, which resumes the probe
    sweep's recorded --budget 4 of one module and adds no trial for the module newly
    selected."""
    from test_cli import two_modules_and_data

    cat, data = two_modules_and_data(tmp_path, module_factory, "msel")
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        code, _, err = in_process("rank", "--catalogue", cat, "--data", f"npz:{data}", "--out",
                                  shard, "--profile", "quick", "--shard", f"{i}/2")
        assert code == 0, err
    run = tmp_path / "run"
    merge = ["rank", "merge", *shards, "--out", run]
    assert in_process(*merge, "--top-k", "1")[0] == 0
    code, _, err = in_process("tune", "--run", run, "--sweep", "probe", "--budget", "4")
    assert code == 0 and len(os.listdir(run / "candidates")) == 4, err
    code, _, err = in_process(*merge, "--top-k", "2")
    named = re.search(r"and `hubensemble (tune [^`]*)` adds trials for the modules this "
                      r"ranking selects", err)
    assert code == 0 and named, err
    assert named.group(1) == f"tune --run {run} --sweep probe --profile quick", err


def test_rank_merge_names_the_one_module_edited_between_two_versions_shards(
        task, good, tmp_path):
    """Shards of two versions (one without the `signature` field) and one real edit: every
    entry's digest differs, and rank merge named every module as changed ("the entry of
    good0, good1, good2 differs"); it names the edited one, compared by the entries the
    shards recorded. Fails before: good0, good1, good2 named."""
    a, b = tmp_path / "a", tmp_path / "b"
    ranked(good, task, a, shard=(0, 2))  # good0, good2
    ranked(good, task, b, shard=(1, 2))  # good1
    edited = [good[0], good[1], dataclasses.replace(good[2], value_range="-1,1")]
    _as_without(b, edited, "signature")
    with pytest.raises(RunError, match=re.escape(
            f"different catalogues, {a} and {b}: the entry of good2 differs (value_range); ")):
        rank.merge.check_shards([a, b])


def test_rank_merge_reads_an_output_dim_at_the_measured_width_as_no_change(task, good,
                                                                           tmp_path):
    """An `output_dim:` equal to the width the shard measured (the fixture's widths 4, 7,
    10) is no change, as fit and resume read it; rank merge refused it ("the entry of good1
    differs (output_dim)"). Another output_dim stays refused. Fails before: the declared
    widths refused."""
    a, c, w = (tmp_path / n for n in ("a", "c", "w"))
    ranked(good, task, a, shard=(0, 2))  # good0, good2
    # good1 ranked here with its own width declared; good0 (ranked in a) declared here too.
    declared = [dataclasses.replace(good[0], output_dim=4),
                dataclasses.replace(good[1], output_dim=7), good[2]]
    ranked(declared, task, c, shard=(1, 2))
    merged = rank.merge_rankings([a, c], tmp_path / "m")
    assert sorted(r["name"] for r in merged.ok_rows) == ["good0", "good1", "good2"]
    assert json.loads((tmp_path / "m" / "run.json").read_text())["modules"]["good1"][
        "output_dim"] == 7
    ranked([good[0], dataclasses.replace(good[1], output_dim=8), good[2]], task, w,
           shard=(1, 2))  # warned: ranked at the measured 7
    with pytest.raises(RunError, match=re.escape(
            f"different catalogues, {a} and {w}: the entry of good1 differs (output_dim); ")):
        rank.merge.check_shards([a, w])


def test_run_rank_refuses_two_selection_rules_inside_this_process_fit_too(good, task, tmp_path):
    """run_rank(RUN, top_k=5, threshold=0.1) is refused ("choose one selection rule") while
    this process's fit holds the run's lock, as anywhere else: fit's rank stage passes the
    chosen rule alone (top_k=None beside a threshold or greedy), so the check needs no
    exemption for it. Fails before: inside a fit's folder (`Run.fit_here`) both were taken
    and the threshold alone selected."""
    from hubensemble import options

    out = tmp_path / "run"
    with Run(out).fit_log():
        assert Run(out).fit_here()
        with pytest.raises(options.OptionError, match=r"^choose one selection rule: top_k=5 "
                                                      r"or threshold=0\.1, not both"):
            ranked(good, task, out, top_k=5, threshold=0.1)
    assert not Run(out).ranking_json.exists()
