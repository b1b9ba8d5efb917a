"""fit end to end: every stage's files, resume after a kill, changed inputs refused."""

import hashlib
import dataclasses
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import hubensemble
from conftest import bounded_by_cpu, no_figures
from hubensemble.errors import CatalogueError, DataError, HubensembleError, RunError
from hubensemble import fileio
from hubensemble.fileio import is_temp
from hubensemble.text import counted
from hubensemble.formats import RUN_ENTRIES
from hubensemble.lockwords import command_line

FIT = dict(profile="quick", top_k=2, seed=0)
#: FIT without the robustness evaluation (evaluate's corruptions: 5 to 14 s a fit that
#: evaluates), for tests of stages before it; test_fit_writes_every_stage and the tests of
#: evaluate's own record keep it. Not a key of any stage: such a fit reuses a FIT run.
FIT_CLEAN = dict(FIT, corruptions=False)
#: FIT evaluating one corruption kind (contrast, at fit's three severities: 4 passes over the
#: test split where the default five kinds take 16; 1.9 s of CPU against 7.6 on an 8-member
#: export), for a test whose fit evaluates anyway and checks something else than which
#: corruptions. The corruptions key the evaluate stage: on a FIT run it evaluates again.
FIT_ONE = dict(FIT, corruptions=["contrast"])


@pytest.fixture(scope="module")
def catalogue(module_factory, tmp_path_factory):
    # Copies of the session's modules, this file's own: a test changes one in place and puts
    # it back (test_a_module_changed_in_place_is_refused_by_fit_tune_export_and_distill).
    root = tmp_path_factory.mktemp("catmods")
    paths = {}
    for i in range(3):
        paths[f"m{i}"] = str(root / f"m{i}")
        shutil.copytree(module_factory(f"fit{i}", seed=i, width=6 + 2 * i), paths[f"m{i}"])
    yaml = tmp_path_factory.mktemp("cat") / "cat.yaml"
    lines = ["modules:"]
    for name, path in paths.items():
        family = "generalist" if name == "m0" else "expert"
        lines.append(f"  - {{name: {name}, handle: {path}, family: {family}}}")
    yaml.write_text("\n".join(lines) + "\n")
    return str(yaml)


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "emb"))


@pytest.fixture(autouse=True)
def report_figures_not_drawn(figures_not_drawn):
    """Every test here reads the report's text at most, never a figure: each fit's report
    stage writes its figures as 1 x 1 PNGs (conftest's `figures_not_drawn`; every plot is
    still built from the run's numbers). Drawing them was 1-7 s of a test's time, 0.9-1.4 s
    a fit that writes its report (the file's first 15 tests: 29 s of drawing, a loaded -n0
    run). The module fixture `fitted`, set up before any test's own fixtures, draws the
    real figures: the end-to-end fit of test_fit_writes_every_stage still makes them
    (`retrained`, the other, patches as this does). A test that checks a figure belongs in
    test_report.py."""


@pytest.fixture(scope="module")
def fitted(catalogue, tmp_path_factory):
    os.environ["HUBENSEMBLE_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "emb")
    out = tmp_path_factory.mktemp("fit") / "run"
    return out, hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)


@pytest.fixture(scope="module")
def retrained(fitted, tmp_path_factory):
    """`hubensemble export --run RUN --retrain-full` on a copy of `fitted`'s run, once: (the
    run folder, its exit code, stdout, stderr). A retrained export costs a retraining of
    every member; the two tests of a hand --retrain-full export (into RUN/export, and
    elsewhere) copy this one. Run as the `in_process` fixture runs a command (cli.main, the
    streams captured), which a module fixture cannot take."""
    import contextlib
    import io

    from hubensemble.cli import main

    out = tmp_path_factory.mktemp("retrained") / "run"
    shutil.copytree(fitted[0], out)
    stdout, stderr = io.StringIO(), io.StringIO()
    # The report the export refreshes is read for its text alone, as every test's here
    # (`report_figures_not_drawn`, which a module fixture cannot take: conftest.no_figures).
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        no_figures(patch)
        code = main(["export", "--run", str(out), "--retrain-full"])
    return out, code, stdout.getvalue(), stderr.getvalue()


def trial_starts(run):
    log = run / "tuner" / "default" / "trials.log"
    counts = {}
    for row in (line.split("\t") for line in log.read_text().splitlines()):
        if row[5] == "start":
            counts[row[4]] = counts.get(row[4], 0) + 1
    return counts


@pytest.mark.slow
def test_fit_writes_every_stage(fitted):
    out, result = fitted
    ranking = json.loads((out / "ranking.json").read_text())
    assert [r["name"] for r in ranking["modules"]][:3] and len(ranking["selected"]) == 2
    candidates = sorted(d for d in os.listdir(out / "candidates") if not is_temp(d))
    assert len(candidates) == 8  # 2 modules x the 2 x 2 default sweep
    ensemble = json.loads((out / "ensemble.json").read_text())
    assert {m["trial"] for m in ensemble["members"]} <= set(candidates)
    assert result.metrics == ensemble["test"]
    assert (out / "export" / "saved_model.pb").exists() and result.export_path == out / "export"
    assert (out / "report.md").exists() and (out / "report.html").exists()
    assert (out / "robustness.json").exists() and result.robustness["clean"]["ensemble"]
    assert (out / "log.txt").read_text().count("rank: starting") == 1
    # The data's summary is logged as fit's, not as the command line's, from Python.
    assert "INFO hubensemble.pipeline: Task 'digits' from sklearn:digits" in (
        out / "log.txt").read_text()
    # formats.RUN_ENTRIES, what --restart removes, lists every entry the stages wrote.
    assert {n for n in os.listdir(out) if not is_temp(n)} - RUN_ENTRIES == set()
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert set(stages) >= {"rank", "tune", "ensemble", "export", "evaluate", "report"}
    # The export answers like the ensemble.json weights applied to the candidates' own
    # test predictions.
    task = hubensemble.load_task("sklearn:digits")
    x = tf.constant(np.asarray(task.test.images, np.float32) / 255.0)
    probs = tf.saved_model.load(str(out / "export")).signatures["serving_default"](
        images=x)["probabilities"].numpy()
    expected = sum(m["weight"] * np.load(out / "candidates" / m["trial"] / "test_probs.npy")
                   for m in ensemble["members"])
    assert np.abs(probs - expected).max() <= 1e-5
    assert result.summary().count("ensemble") >= 1


def test_a_fit_results_repr_is_a_line_not_its_records(tmp_path):
    # A notebook echoes the result of its last line: the dataclass repr printed every
    # ranking row, member, curve point and corruption (20,000 characters for a quick run).
    from types import SimpleNamespace
    from hubensemble.pipeline import FitResult

    members = [{"trial": f"t{i}", "module": "m0", "weight": 0.02, "hparams": {"lr": 0.1}}
               for i in range(50)]
    metrics = {"ensemble": {"accuracy": 0.91234, "nll": 0.3, "ece": 0.01},
               "best_single": {"trial": "t3", "accuracy": 0.87654, "nll": 0.4, "ece": 0.02}}
    result = FitResult(
        run_dir=tmp_path, ranking=SimpleNamespace(selected=["m0", "m1"], rows=[{}] * 40),
        ensemble={"members": members, "n_candidates": 64, "val_curve": [{}] * 50},
        metrics=metrics, export_path=tmp_path / "export",
        report_paths=(tmp_path / "report.md", tmp_path / "report.html"),
        robustness={"corruptions": {f"c{i}": metrics for i in range(15)}},
        stage_seconds={"rank": 1.0}, skipped=[("a.png", "unreadable")] * 7)
    text = repr(result)
    assert "\n" not in text and len(text) < 400 + 3 * len(str(tmp_path)), text
    assert text.startswith("FitResult(run_dir=") and repr(tmp_path) in text
    assert "['m0', 'm1']" in text and "50 members of 64 candidates" in text
    assert "test_accuracy=0.9123" in text and "best_single_accuracy=0.8765" in text
    assert repr(tmp_path / "export") in text and "skipped=7 files" in text
    assert str(result) == text
    bare = dataclasses.replace(result, metrics=None, ensemble={}, skipped=[])
    assert "accuracy" not in repr(bare) and "skipped" not in repr(bare)


@pytest.mark.slow
def test_a_notebooks_global_keras_settings_change_no_number_and_are_given_back(
        fitted, catalogue, tmp_path):
    """A caller's `keras.config.set_floatx("float64")` (or keras.json's floatx), channels-first
    data format and `mixed_float16` global policy, set before fit as notebooks do: floatx
    float64 failed every trial ("Tensor conversion requested dtype float32 for Tensor with
    dtype float64 (in HubLayer.call())"). The stages run on Keras' defaults: the same
    candidates' probabilities, ensemble and exported model's answers as without; the
    export does not depend on the caller's settings, which are theirs again after."""
    import keras

    base, _ = fitted
    out = tmp_path / "run"
    keras.config.set_floatx("float64")
    keras.config.set_image_data_format("channels_first")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        # FIT_CLEAN: the robustness evaluation (5 to 14 s) is checked for no number here;
        # fit lends its stages Keras' defaults as a whole (pipeline.fit's with_stage_settings).
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_CLEAN)
        assert (keras.config.floatx(), keras.config.image_data_format(),
                keras.config.dtype_policy().name) == ("float64", "channels_first",
                                                      "mixed_float16")
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_image_data_format("channels_last")
        keras.mixed_precision.set_global_policy("float32")
    for trial in sorted(d for d in os.listdir(base / "candidates") if not is_temp(d)):
        np.testing.assert_array_equal(np.load(out / "candidates" / trial / "val_probs.npy"),
                                      np.load(base / "candidates" / trial / "val_probs.npy"))
    assert (json.loads((out / "ensemble.json").read_text())["members"]
            == json.loads((base / "ensemble.json").read_text())["members"])
    x = tf.constant(np.asarray(hubensemble.load_task("sklearn:digits").test.images[:64],
                               np.float32) / 255.0)
    answers = [tf.saved_model.load(str(run / "export")).signatures["serving_default"](
        images=x)["probabilities"] for run in (base, out)]
    assert answers[1].dtype == tf.float32
    np.testing.assert_array_equal(answers[0].numpy(), answers[1].numpy())


@pytest.mark.slow
def test_fit_again_reuses_every_stage(fitted, catalogue, capsys):
    out, first = fitted
    before = trial_starts(out)
    capsys.readouterr()
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=True, **FIT)
    # A new user's re-run said nothing of reusing the ranking (or any stage) until the
    # closing table's "(earlier run, reused)": the log alone had "rank: done before, reused".
    # Each reused stage says so on the terminal as it is reused, in order.
    err = capsys.readouterr().err
    said = [f"{stage}: done before, reused" for stage in
            ("rank", "tune", "cost", "ensemble", "export", "evaluate")]
    assert all(s in err for s in said), err
    assert [err.index(s) for s in said] == sorted(err.index(s) for s in said)
    assert trial_starts(out) == before
    assert again.ensemble["members"] == first.ensemble["members"]
    assert (out / "log.txt").read_text().count("tune: done before, reused") == 1
    # The summary says which stage times are the earlier run's.
    line = next(x for x in again.summary().splitlines() if x.startswith("time per stage"))
    assert "tune" in line and line.count("(earlier run, reused)") == 6  # all but report
    assert " this command's, " in line and "reused from earlier runs" in line


@pytest.mark.slow
def test_a_run_of_an_older_version_keyed_by_fewer_options_is_refused_as_such(
        fitted, catalogue, tmp_path):
    # hubensemble 679fffb's run.json: the same fit.options less those added since
    # (batchnorm, head_init, size_rule, max_gflops, max_latency_ms, max_members) and keys
    # made from them. The refusal said "the rank or tune options changed", naming none.
    out = tmp_path / "old"
    shutil.copytree(fitted[0], out)
    meta = json.loads((out / "run.json").read_text())
    for name in ("batchnorm", "head_init", "size_rule", "max_gflops", "max_latency_ms",
                 "max_members"):
        del meta["fit"]["options"][name]
    meta["fit"]["keys"] = {stage: "0" * 64 for stage in meta["fit"]["keys"]}
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="restart=True") as err:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    said = str(err.value)
    assert said.startswith(f"{out / 'run.json'} was written by an older hubensemble "
                           f"(hubensemble {meta['versions']['hubensemble']}, "
                           f"{meta['created']}): it records no batchnorm, head_init, "
                           "options added since")
    assert "options changed" not in said
    # Keyed otherwise, every option recorded: said so too.
    meta = json.loads((fitted[0] / "run.json").read_text())
    meta["fit"]["keys"]["tune"] = "0" * 64
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="keyed otherwise.*restart=True"):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)


@pytest.mark.slow
def test_modules_keyed_by_an_older_versions_rule_are_the_same_files(fitted, tmp_path):
    # A run of hubensemble 679fffb keyed each module by the sha256 of its saved_model.pb and
    # variables.index alone (ranking.json's rows, each candidate's trial.json); export said
    # every member's "module's files changed since the trial was trained".
    import hashlib

    from hubensemble.export import export_ensemble
    from hubensemble.tune import run_tune

    def old_key(folder):
        h = hashlib.sha256()
        for rel in ("saved_model.pb", "variables/variables.index"):
            h.update(rel.encode())
            h.update(fileio.file_sha256(os.path.join(folder, rel)).encode())
        return h.hexdigest()

    out = tmp_path / "old"
    shutil.copytree(fitted[0], out)
    ranking = json.loads((out / "ranking.json").read_text())
    handles = {}
    for row in ranking["modules"]:
        if row.get("fingerprint"):
            handles[row["fingerprint"]] = row["handle"]
            row["fingerprint"] = old_key(row["handle"])
    (out / "ranking.json").write_text(json.dumps(ranking))
    for trial in (out / "candidates").glob("*/trial.json"):
        record = json.loads(trial.read_text())
        record["module_fingerprint"] = old_key(handles[record["module_fingerprint"]])
        trial.write_text(json.dumps(record))
    assert run_tune(out, profile="quick", progress=False)
    assert export_ensemble(out, tmp_path / "export", progress=False)
    # A key of other files is still a change.
    next(r for r in ranking["modules"] if r["name"] in ranking["selected"])["fingerprint"] = (
        "0" * 64)
    (out / "ranking.json").write_text(json.dumps(ranking))
    with pytest.raises(RunError, match="changed since"):
        run_tune(out, profile="quick", progress=False)


@pytest.mark.slow
def test_a_cost_file_of_an_older_counting_rule_is_counted_again_by_fit(
        fitted, catalogue, tmp_path):
    # fit's cost stage is keyed by tune's key: a RUN/cost.json of counting rule 1 (before
    # 84f88eb) was "done before, reused", its params read by ensemble, export and report.
    from hubensemble.cost.records import COUNT_VERSION
    from hubensemble.stagerecords import file_digest

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    cost = json.loads((out / "cost.json").read_text())
    assert cost["count_version"] == COUNT_VERSION
    cost["count_version"] = 1
    (out / "cost.json").write_text(json.dumps(cost))
    # As that version wrote it: the stages' records hold this file's digest.
    meta = json.loads((out / "run.json").read_text())
    for record in meta["stages"].values():
        if "cost" in (record.get("digests") or {}):
            record["digests"]["cost"] = file_digest(out / "cost.json")
    (out / "run.json").write_text(json.dumps(meta))
    before = len((out / "log.txt").read_text())
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    log = (out / "log.txt").read_text()[before:]
    assert (f"cost: {out / 'cost.json'} its counts are of counting rule 1, this version's is "
            f"rule {COUNT_VERSION}") in log and "running cost again" in log
    assert json.loads((out / "cost.json").read_text())["count_version"] == COUNT_VERSION
    # The recount gave the same figures (this rule's, from the cost cache): the ensemble,
    # export and evaluation made from them are kept (they were all redone).
    assert "the same figures as" in log
    for stage in ("ensemble", "export", "evaluate"):
        assert f"{stage}: done before, reused" in log, log
    # ... recorded as read from the new file, so the next fit reuses them (no second fit: a
    # stage is reused while its recorded digests are those of the files now, stage_done).
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert stages["ensemble"]["digests"]["cost"] == file_digest(out / "cost.json")
    assert stages["cost"]["digests"]["cost"] == file_digest(out / "cost.json")


@pytest.mark.slow
def test_changed_data_is_refused_unless_restart(fitted, catalogue):
    out, _ = fitted
    from hubensemble.rundir import DataArgs

    with pytest.raises(RunError, match="restart=True") as err:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        data_args=DataArgs(spec="sklearn:digits", seed=1), **FIT)
    # It names what changed (a new-user check: it said only "the data changed").
    assert f"the data (seed=0 -> 1) changed since {out} was fitted" in str(err.value)
    # The refusal names the options that changed, with both values (a new-user check:
    # "budget: None -> 8" named neither the flag nor a value to pass). (--top-k alone goes
    # on: test_a_changed_top_k_selects_the_ranking_again_and_keeps_the_candidates_still_…)
    with pytest.raises(RunError, match="restart=True") as err:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT, top_k=3, budget=8))
    assert "(top_k=2 -> 3; budget=None -> 8)" in str(err.value), err.value
    assert "profile" not in str(err.value)
    # fit's keywords and Python values (the command line's words are its own: --budget unset).
    with pytest.raises(RunError, match="restart=True") as err:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT, profile="cpu", modules=("m0", "m1")))
    assert "profile='quick' -> 'cpu'" in str(err.value)
    assert "modules=None -> ['m0', 'm1']" in str(err.value)


@pytest.mark.slow
def test_a_stage_run_by_hand_makes_the_next_fit_redo_it_and_what_follows(fitted, catalogue,
                                                                         tmp_path):
    """`hubensemble ensemble --max-members 1` then `export` on a fitted run, then fit again:
    fit's ensemble (and so its export and evaluation) come back, none is reused stale. On a
    copy: it changed the module's shared run in place (a 1-member ensemble and export, no
    robustness.json, an RUN/export-replaced-* folder) for every later test that copies it."""
    import shutil

    from hubensemble.ensemble import run_ensemble
    from hubensemble.export import export_ensemble
    from hubensemble.formats import read_export_metadata

    out, first = tmp_path / "run", fitted[1]
    shared = (sorted(os.listdir(fitted[0])), (fitted[0] / "ensemble.json").read_bytes())
    shutil.copytree(fitted[0], out)
    assert len(first.ensemble["members"]) >= 2
    before = trial_starts(out)
    run_ensemble(out, max_members=1)
    export_ensemble(out, out / "export", progress=False)
    assert len(read_export_metadata(out / "export")["members"]) == 1
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    assert trial_starts(out) == before  # the sweep's results are unchanged: reused
    assert again.ensemble["members"] == first.ensemble["members"]
    exported = read_export_metadata(out / "export")["members"]
    assert [m["trial"] for m in exported] == [m["trial"] for m in first.ensemble["members"]]
    log = (out / "log.txt").read_text()
    assert "ensemble: the result of ensemble is not the one fit recorded" in log
    assert "export: the result of" in log
    assert "evaluate: export ran again above; running evaluate again" in log  # by this fit
    stages = json.loads((out / "run.json").read_text())["stages"]
    reused = {s: stages[s]["reused"] for s in ("rank", "tune", "cost", "ensemble", "export",
                                               "evaluate")}
    assert reused == {"rank": True, "tune": True, "cost": True, "ensemble": False,
                      "export": False, "evaluate": False}
    # A third fit finds everything as it left it: all reused.
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert all(stages[s]["reused"] for s in ("rank", "tune", "ensemble", "export", "evaluate"))
    # Without corruptions, evaluate is left out: its result stays while it describes this
    # export (an earlier run's, so said)...
    robustness = (out / "robustness.json").read_bytes()
    kept = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, corruptions=False,
                           **FIT)
    assert (out / "robustness.json").read_bytes() == robustness and kept.robustness
    line = next(x for x in kept.summary().splitlines() if x.startswith("time per stage"))
    assert "evaluate" in line and line.count("(earlier run, reused)") == 6
    # ...and is deleted, with a warning, once the export it described is replaced: the report
    # never shows another export's robustness as this one's.
    said = (out / "log.txt").read_text().count("holds an earlier ensemble")
    small = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                            corruptions=False, max_members=1, **FIT)
    assert len(small.ensemble["members"]) == 1
    # Its ensemble stage no longer warns that RUN/export holds the earlier (8-member)
    # ensemble: fit's export stage replaces it right after (the warning was noise there).
    assert (out / "log.txt").read_text().count("holds an earlier ensemble") == said
    assert len(read_export_metadata(out / "export")["members"]) == 1
    assert not (out / "robustness.json").exists() and small.robustness is None
    assert "evaluate" not in json.loads((out / "run.json").read_text())["stages"]
    assert ("evaluate: robustness.json described the export before this fit's; deleted"
            in (out / "log.txt").read_text())
    report = (out / "report.md").read_text()
    assert "No robustness evaluation (robustness.json is missing)" in report
    assert "evaluate" not in next(x for x in small.summary().splitlines()
                                  if x.startswith("time per stage"))
    assert (sorted(os.listdir(fitted[0])), (fitted[0] / "ensemble.json").read_bytes()) == shared


def test_a_rank_between_fit_and_tune_cannot_mix_two_profiles_in_the_pool(
        fitted, catalogue, tmp_path, in_process):
    """A new-user check: `fit --profile quick`, then `rank` (LogME put m2 first), then `tune
    --profile cpu` planned default-0000-m2 ... (no trial id of the fit's), was not refused, and
    the ensemble chose from quick and cpu candidates as one sweep."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    before = sorted(os.listdir(out / "candidates"))
    code, _, err = in_process("rank", "-q", "--catalogue", catalogue, "--data",
                              "sklearn:digits", "--out", out, "--profile", "quick",
                              "--metric", "logme", "--top-k", "1")
    assert code == 0, err
    assert json.loads((out / "ranking.json").read_text())["selected"] == ["m2"]
    code, _, err = in_process("tune", "--run", out, "--profile", "cpu")
    assert code != 0 and (
        f"hubensemble: error: 8 candidates in {out / 'candidates'} (e.g. default-0000-m1) "
        "were tuned with other settings than this call's: --profile quick -> cpu (recorded "
        "-> now), and the ensemble selects from every candidate there as one pool. Pass the "
        f"recorded value to add to this pool (run `hubensemble tune --run {out} --sweep "
        "default --profile quick`), start sweep default over with them "
        "(--restart: its candidates are discarded), use a new run folder for the new ones, "
        "or fit it again from the start, discarding its results: `hubensemble fit --restart "
        f"--catalogue {catalogue} --data sklearn:digits --") in err
    # The fit's own options (those the fixture's run was last fitted with follow), with the
    # profile typed now, not the recorded one that refused it: the pasted command fits the
    # pool at cpu, which `tune --profile cpu` then adds to.
    assert " --top-k 2 " in err and "--profile quick" not in err.split("`hubensemble fit")[1]
    assert err.rstrip().endswith(f" --out {out}`")
    from hubensemble.cli import build_parser

    advised = build_parser().parse_args(
        shlex.split(err.split("`hubensemble ")[-1].split("`")[0]))  # (the fit: the last)
    assert (advised.restart, advised.profile, advised.top_k) == (True, "cpu", 2)
    assert sorted(os.listdir(out / "candidates")) == before


def test_run_rank_from_python_keeps_the_runs_options_as_rank_does(
        fitted, catalogue, tmp_path, capsys):
    """A notebook user's check: run_rank(RUN, specs, task) on a folder fitted at quick with
    top_k=2 took the table's defaults, where `rank --out RUN` keeps the run's: refused for
    cpu's resolution beside the quick pool, and with profile="quick" it selected 15 modules.
    The same code path decides now (rank.rundefaults.keeps_run_defaults): the options not
    passed are the run's, said on stderr as `rank` says them; one passed is the caller's,
    even at the default's value."""
    import shutil

    from hubensemble.catalogue import load_catalogues
    from hubensemble.rank import run_rank

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    specs, task = load_catalogues([catalogue]), hubensemble.load_task("sklearn:digits")
    capsys.readouterr()
    ranking = run_rank(out, specs, task)
    err = capsys.readouterr().err
    assert (ranking.profile, ranking.selection) == ("quick", {"rule": "top_k", "top_k": 2})
    assert len(ranking.selected) == 2
    # In run_rank's words: it was told "rank: --top-k 2 …; type the options for another".
    assert (f"rank: top_k=2 (the run's ranking, {out / 'ranking.json'}; not the defaults): "
            "a run folder is ranked again by its own rule; pass the keywords for another"
            ) in err, err
    assert f"rank: profile='quick' (the run's last tune, {out / 'run.json'}; not the " in err
    ranking = run_rank(out, specs, task, top_k=3, progress=False)  # passed: the caller's
    assert (ranking.profile, ranking.selection) == ("quick", {"rule": "top_k", "top_k": 3})
    assert capsys.readouterr().err == ""  # progress=False: nothing said
    ranking = run_rank(out, specs, task, top_k=15, progress=False)  # the default's value
    assert ranking.selection == {"rule": "top_k", "top_k": 15}


def test_every_python_writer_takes_the_run_folders_lock_and_readers_do_not(
        fitted, catalogue, tmp_path, run_lock_holder):
    """A notebook user's check: only fit and write_report took the run folder's lock from
    Python; run_rank, merge_rankings, run_tune, run_ensemble, export_ensemble, run_distill and
    run_cost wrote into a folder another process was fitting (run_ensemble rewrote
    ensemble.json under a running fit), where their commands are refused. Each is refused now,
    naming the holder, and writes nothing; a reader (load_ranking) is not."""
    import shutil

    from hubensemble.catalogue import load_catalogues
    from hubensemble.cost.stage import run_cost
    from hubensemble.distill import run_distill
    from hubensemble.rank import load_ranking

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    holder = run_lock_holder(out, "fit")
    before = {p: p.read_bytes() for p in out.glob("*.json")}
    task = hubensemble.load_task("sklearn:digits", progress=False)
    calls = {
        "run_rank": lambda: hubensemble.run_rank(out, load_catalogues([catalogue]), task,
                                                 progress=False),
        "merge_rankings": lambda: hubensemble.merge_rankings([out], out),
        "run_tune": lambda: hubensemble.run_tune(out, progress=False),
        "run_ensemble": lambda: hubensemble.run_ensemble(out),
        "export_ensemble": lambda: hubensemble.export_ensemble(out, progress=False),
        "run_distill": lambda: run_distill(out, progress=False),
        "run_cost": lambda: run_cost(out, progress=False),
    }
    for name, call in calls.items():
        with pytest.raises(RunError, match=re.escape(
                f"another fit is running on {out} (pid {holder.pid}, since ")):
            call()
    assert {p: p.read_bytes() for p in out.glob("*.json")} == before
    assert load_ranking(out).selected  # a reader


def test_rank_without_profile_takes_the_runs_and_a_typed_other_one_is_refused(
        fitted, catalogue, tmp_path, in_process):
    """A new-user check: `rank --out RUN` (default --profile cpu) on a folder fitted at quick
    re-ranked it at cpu's resolution (64 px, not quick's), without a word, under the quick
    pool's candidates. Without --profile it now takes the run's, saying so; a --profile typed
    that differs from the candidates' is refused before anything loads (and from Python, and
    by `rank merge`); fit then goes on from it all."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    before, starts = sorted(os.listdir(out / "candidates")), trial_starts(out)
    fitted_resolution = json.loads((out / "ranking.json").read_text())["resolution"]
    rank = ["rank", "--catalogue", catalogue, "--data", "sklearn:digits", "--out", out]
    code, _, err = in_process(*rank)
    assert code == 0, err
    assert ("rank: --profile quick (the run's last tune, "
            f"{out / 'run.json'}; not the default cpu): its candidates were tuned at that "
            "profile's resolution, and the ranking embeds at it too; for another profile, rank "
            "into a new --out folder") in err, err
    ranking = json.loads((out / "ranking.json").read_text())
    # The fit's resolution (quick's cap), not cpu's.
    assert (ranking["profile"], ranking["resolution"]) == ("quick", fitted_resolution)
    # And the fit's selection (--top-k 2), not the default 15 that a later `tune --run` would
    # have tuned (a new-user check), said so.
    assert ranking["selection"] == {"rule": "top_k", "top_k": 2}
    assert len(ranking["selected"]) == 2
    assert (f"rank: --top-k 2 (the run's ranking, {out / 'ranking.json'}; not the defaults): "
            "a run folder is ranked again by its own rule; type the options for another") in err
    said = (f"{out / 'candidates'} holds 8 candidates tuned with --profile quick (e.g. "
            "default-0000-m", "), and this ranking would embed at --profile cpu's resolution, "
            "not theirs: the ensemble selects from every candidate there as one pool, which "
            "holds one profile. ")
    written = (out / "ranking.json").read_bytes()
    code, _, err = in_process(*rank, "--profile", "cpu")
    assert code == 2 and all(part in err for part in said), err
    assert ("Rank with --profile quick (or without --profile: `rank` then takes the run's), "
            "or rank into a new --out folder for cpu, where its selection is tuned again") in err
    assert (out / "ranking.json").read_bytes() == written
    # From Python, and merging shards ranked at cpu, the same refusal.
    from hubensemble.catalogue import load_catalogues
    from hubensemble.rank import run_rank

    task = hubensemble.load_task("sklearn:digits")
    with pytest.raises(RunError, match=re.escape(  # in run_rank's words
            "tuned with profile='quick' (e.g. default-0000-m")) as err:
        run_rank(out, load_catalogues([catalogue]), task, profile="cpu", progress=False)
    assert ("would embed at the resolution of profile='cpu', not theirs" in str(err.value)
            and "Call run_rank with profile='quick' (or without profile: it then takes the "
            "run's), or rank into a new out_dir folder for cpu" in str(err.value)), err.value
    for i in range(2):
        code, _, err = in_process(*rank[:-1], tmp_path / f"s{i}", "--profile", "cpu",
                                  "--shard", f"{i}/2", "-q")
        assert code == 0, err
    code, _, err = in_process("rank", "merge", tmp_path / "s0", tmp_path / "s1", "--out", out)
    assert code == 2 and said[1] in err, err
    assert "Merge shards ranked with --profile quick, or merge into a new --out folder" in err
    assert (out / "ranking.json").read_bytes() == written
    # fit, then `rank` without flags, then fit again: the same pool, no trial run again, and
    # fit's rank stage no longer warns that "the next `fit`" goes on. The ranking `rank`
    # rewrote differs from fit's only in its rows' seconds and cache hits (provenance,
    # `stagerecords.PROVENANCE`, 53c1039), so fit reuses it rather than ranking again.
    logged = len((out / "log.txt").read_text())
    code, summary, err = in_process("fit", "--catalogue", catalogue, "--data", "sklearn:digits",
                                    "--out", out, "--profile", "quick", "--top-k", "2")
    assert code == 0 and "ensemble size" in summary, err
    assert sorted(os.listdir(out / "candidates")) == before and trial_starts(out) == starts
    assert json.loads((out / "ranking.json").read_text())["profile"] == "quick"
    assert "from an earlier tune" not in err, err
    this_fit = (out / "log.txt").read_text()[logged:]
    assert "rank: done before, reused" in this_fit and "tune: done before, reused" in this_fit


def test_fit_goes_on_from_a_ranking_made_by_rank(catalogue, tmp_path, in_process):
    """rank, look at the ranking, then fit on the same folder: fit refused the folder ("holds
    results of stage commands run outside `fit`", said nowhere). It goes on from a ranking
    it would write the same, names the rank options that differ otherwise, and still refuses
    later stages' results that no fit made, naming the commands that go on from them: tune's
    with the run's own sweep and options (a plain tune ran the default sweep)."""
    out = tmp_path / "run"
    code, _, err = in_process("rank", "-q", "--catalogue", catalogue, "--data",
                              "sklearn:digits", "--out", out, "--profile", "quick",
                              "--top-k", "1")
    assert code == 0, err
    ranking = (out / "ranking.json").read_bytes()
    fit = dict(FIT, top_k=1, corruptions=False, sweep="seeds", budget=1)
    with pytest.raises(RunError, match=re.escape(
            f"{out} holds a ranking by run_rank() that this fit would not write: "
            "top_k=1 -> top_k=2 (ranked -> this fit). Give fit the ranking's options to "
            "go on from it, use a new out folder, or pass restart=True")):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    # The command line is told the flags (Python was told "--top-k 1 -> --top-k 2" too).
    code, _, err = in_process("fit", "--catalogue", catalogue, "--data", "sklearn:digits",
                              "--out", out, "--profile", "quick", "--top-k", "2", "-q")
    assert code == 2 and ("`hubensemble rank` that this fit would not write: --top-k 1 -> "
                          "--top-k 2 (ranked -> this fit)") in err, err
    # A seeds sweep of budget 1 (one trial, a 1-member export), not the default sweep's 4
    # trials: what fit goes on from is the ranking; the sweep is named as the run's own below.
    code, summary, err = in_process("fit", "--catalogue", catalogue, "--data", "sklearn:digits",
                                    "--out", out, "--profile", "quick", "--top-k", "1",
                                    "--no-corruptions", "--sweep", "seeds", "--budget", "1")
    assert code == 0 and "ensemble size" in summary, err
    assert (out / "ranking.json").read_bytes() == ranking
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert stages["rank"]["reused"] and not stages["tune"]["reused"]
    # Said on the terminal as it happens, naming the ranking and how to rank anew: the log
    # alone said it, and the terminal nothing until the summary's "(earlier run, reused)".
    ranked = json.loads(ranking)
    said = (f"fit goes on from the ranking `hubensemble rank` wrote in {out / 'ranking.json'} "
            f"({len(ranked['modules'])} modules ranked by knn at --profile quick; selected: "
            f"{ranked['selected'][0]}): the same catalogue, data and rank options as this fit, "
            "so it is not ranked again; pass --restart to rank again from scratch")
    assert said in err and err.index(said) < err.index("tune seeds"), err
    assert said in (out / "log.txt").read_text()
    # The same folder as the stage commands would leave it after tune, ensemble and export.
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({k: v for k, v in meta.items()
                                              if k not in ("fit", "stages")}))
    with pytest.raises(RunError, match=re.escape(
            f"{out} holds results of stage commands run outside `fit` (candidates, cost.json, "
            "ensemble.json, export): fit goes on from a ranking alone, not from a sweep or "
            "ensemble it did not run. Go on with the stage functions (run_tune(run_dir="
            f"{str(out)!r}, sweep='seeds', budget=1, profile='quick'), then run_ensemble(run_dir="
            f"{str(out)!r}) and export_ensemble(run_dir={str(out)!r}))")):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **fit)


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "hubensemble", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


@pytest.mark.slow
def test_fit_killed_during_tune_resumes_without_redoing_trials(catalogue, tmp_path, in_process):
    out = tmp_path / "run"
    # --no-corruptions: the robustness evaluation (tested in test_fit_writes_every_stage) is
    # not what is resumed here, and it was half of this test's time.
    args = ["fit", "-q", "--catalogue", catalogue, "--data", "sklearn:digits", "--out",
            str(out), "--profile", "quick", "--top-k", "1", "--no-corruptions"]
    proc = cli(*args)
    deadline = time.monotonic() + 240
    finished = {}
    while time.monotonic() < deadline and proc.poll() is None:
        cands = out / "candidates"
        done = {d for d in os.listdir(cands) if not is_temp(d)} if cands.exists() else set()
        log = out / "tuner" / "default" / "trials.log"
        running = set(trial_starts(out)) - done if log.exists() else set()
        if done and running:
            finished = {d: os.path.getmtime(cands / d / "trial.json") for d in done}
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(30)
    killed = proc.stdout.read()
    assert proc.returncode == -signal.SIGKILL, killed[-3000:]
    # -q: the process printed nothing (stdout and stderr) while it ranked and tuned, TensorFlow's
    # C++ notices of a process of its own included.
    assert killed == "", killed[-3000:]
    # The resumed fit in this process (the kill above is of a process): what it resumes is
    # the run folder, and a new process cost 5 s of CPU to import TensorFlow.
    code, out_text, err = in_process(*[a for a in args if a != "-q"])
    output = out_text + err
    assert code == 0, output[-3000:]
    assert "ensemble" in output and "export:" in output
    starts = trial_starts(out)
    assert len(starts) == 4  # one module's default sweep
    for trial, mtime in finished.items():
        assert starts[trial] == 1
        assert os.path.getmtime(out / "candidates" / trial / "trial.json") == mtime
    # Only a trial that was running when the process died may have started twice.
    assert max(starts.values()) <= 2 and sum(starts.values()) <= 5
    assert not [d for d in os.listdir(out / "candidates") if is_temp(d)]
    assert (out / "export" / "saved_model.pb").exists()
    # -q: a finished fit again prints nothing (stdout and stderr), not even its summary. In
    # this process: a second process importing TensorFlow cost 6 s of CPU, and the killed
    # one above shows a process's own notices silenced.
    assert in_process(*args) == (0, "", "")


@pytest.mark.slow
def test_fit_names_the_classes_its_test_metrics_do_not_cover(catalogue, tmp_path, in_process):
    """Issue 13, example 7: classes of 10/10/3/2 images. The 2-image class has no validation
    or test example, the 3-image class no test example: the fit summary, ensemble.json, the
    report and RUN/log.txt say that the test metrics cover 2 of 4 classes."""
    from PIL import Image

    data = tmp_path / "shapes"
    rng = np.random.default_rng(1)
    for name, n in (("circle", 10), ("square", 10), ("star", 3), ("moon", 2)):
        (data / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                data / name / f"{i}.png")
    out = tmp_path / "run"
    # A seeds sweep of budget=1: one trial (not the 2 x 2 sweep) and a 1-member export; the
    # classes each split covers are the data's, whatever the sweep.
    result = hubensemble.fit(catalogue, f"folder:{data}", out, progress=False,
                             corruptions=False, sweep="seeds", budget=1,
                             **dict(FIT, top_k=1))
    note = "test metrics cover 2 of 4 classes; no test example of: moon, star"
    summary = result.summary()
    assert f"note: {note}" in summary
    assert ("note: validation metrics and the ensemble selection cover 3 of 4 classes; no "
            "validation example of: moon") in summary
    assert result.ensemble["coverage"]["test"] == {"classes": 4, "covered": 2,
                                                   "missing": ["moon", "star"]}
    assert f"WARNING hubensemble.ensemble: {note}" in (out / "log.txt").read_text()
    assert note in (out / "report.md").read_text()
    # the command line prints the same summary; -q prints nothing
    args = ["fit", "--catalogue", catalogue, "--data", f"folder:{data}", "--out", str(out),
            "--profile", "quick", "--top-k", "1", "--sweep", "seeds", "--budget", "1",
            "--no-corruptions"]
    before = len((out / "log.txt").read_text())
    code, stdout, stderr = in_process(*args)
    output = stdout + stderr
    assert code == 0 and f"note: {note}" in output, output[-3000:]
    # The data summary: once on the terminal, once in the run's log.
    first = hubensemble.load_task(f"folder:{data}").summary().splitlines()[0]
    assert output.count(first) == 1
    assert (out / "log.txt").read_text()[before:].count(first) == 1
    assert in_process(*args, "-q") == (0, "", "")


def test_stage_marks_and_other_sections_never_lose_each_other(tmp_path):
    # _mark changes run.json while tune workers, other stages (or a second fit process) write
    # too: every read-modify-write must happen under the run's lock, or one side's write is
    # lost (reading outside the lock lost half the marks of two concurrent markers).
    import threading

    from hubensemble.stagerecords import mark as _mark
    from hubensemble.rundir import Run

    path, n = tmp_path / "run", 40

    def marks(tag):
        for i in range(n):
            _mark(Run(path), f"{tag}{i}", f"key{i}", 0.5)

    def sections():
        for i in range(n):
            Run(path).update(**{f"section{i}": i})

    threads = [threading.Thread(target=marks, args=("a",)),
               threading.Thread(target=marks, args=("b",)), threading.Thread(target=sections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = json.loads((path / "run.json").read_text())
    assert sorted(meta["stages"]) == sorted(f"{t}{i}" for t in "ab" for i in range(n))
    assert meta["stages"]["b7"] == {"key": "key7", "done": True, "seconds": 0.5}
    assert all(meta[f"section{i}"] == i for i in range(n))


def test_a_stage_recorded_before_digests_runs_again_when_a_stage_it_reads_ran(tmp_path, caplog):
    # run.json's "stages" as hubensemble ee1ba61 (2026-11-30, before bad91fe kept digests)
    # wrote them, keys shortened. HEAD's fit on such a run counts cost again (the file has no
    # count_version): the ensemble, export and evaluate records were trusted all the same, so
    # ensemble.json, the export's metadata and robustness.json kept the old counts beside the
    # new cost.json, where a run written since (with digests) redoes them.
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import stage_done

    run = Run(tmp_path / "run")
    stages = {name: {"key": f"k-{name}", "done": True, "seconds": 1.0} for name in
              ("rank", "tune", "cost", "ensemble", "export", "evaluate", "report")}
    run.update(stages=stages)
    now = {name: "digest now" for name in stages}
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert stage_done(run, "ensemble", "k-ensemble", now, ran=["cost"]) is False
    assert ("ensemble: cost ran again above (its record, of an older hubensemble, names no "
            "results it read); running ensemble again") in caplog.text
    assert stage_done(run, "export", "k-export", now, ran=["cost", "ensemble"]) is False
    # Nothing it reads ran again: trusted, as before.
    assert stage_done(run, "ensemble", "k-ensemble", now, ran=["rank"]) is True
    assert stage_done(run, "tune", "k-tune", now, ran=[]) is True


@pytest.mark.slow
def test_a_stop_python_ignored_in_the_last_stage_stops_before_the_report(
        fitted, catalogue, tmp_path, monkeypatch):
    """A new-user check: a Ctrl-C that Python ignored during the last stage let fit finish,
    write the report and print its summary before it said "interrupted". The stage is kept
    (done), fit stops before the report, and the same fit again reuses every stage. The run
    is a copy of another: it names its own export."""
    import shutil

    import hubensemble.evaluate
    from hubensemble.errors import Terminated, sigterm_interrupts

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    for name in ("robustness.json", "report.md"):  # (another test may have left no
        (out / name).unlink(missing_ok=True)  # robustness.json: it fits without corruptions)
    evaluate_model = hubensemble.evaluate.evaluate_model

    def evaluate_with_a_signal_in_a_destructor(*args, **kwargs):
        class Dying:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # the handler raises in here, and Python ignores it

        Dying()
        return evaluate_model(*args, **kwargs)

    monkeypatch.setattr(hubensemble.evaluate, "evaluate_model",
                        evaluate_with_a_signal_in_a_destructor)
    # FIT_ONE: the evaluation runs (robustness.json is gone) and is stopped in, whichever
    # corruptions it measures.
    with pytest.raises(Terminated), sigterm_interrupts():
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_ONE)
    assert json.loads((out / "run.json").read_text())["stages"]["evaluate"]["done"]
    assert (out / "robustness.json").exists() and not (out / "report.md").exists()
    monkeypatch.setattr(hubensemble.evaluate, "evaluate_model", evaluate_model)
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_ONE)
    line = next(x for x in again.summary().splitlines() if x.startswith("time per stage"))
    assert line.count("(earlier run, reused)") == 6 and (out / "report.md").exists()
    # The copy names its own export, not the original's (a new-user check: run.json's
    # absolute path sent the summary and the report to the folder it was copied from).
    assert f"export: {out.resolve() / 'export'}" in again.summary().splitlines()
    assert f"{out.resolve() / 'export'}" in (out / "report.md").read_text()
    assert str(fitted[0]) not in (out / "report.md").read_text()


@pytest.mark.slow
def test_fit_names_its_export_of_this_ensemble_not_an_earlier_hand_export(
        fitted, catalogue, tmp_path, retrained):
    """A new-user check: `ensemble --max-members 1`, `export --out served/int1b`, then fit:
    fit chose its ensemble again and reused its own export of it, but run.json, the closing
    summary and the report named served/int1b, the 1-member export, as the run's export."""
    import shutil

    from hubensemble.ensemble import run_ensemble
    from hubensemble.export import export_ensemble
    from hubensemble.formats import read_export_metadata
    from hubensemble.rundir import Run

    out, served = tmp_path / "run", tmp_path / "served" / "int1b"
    shutil.copytree(fitted[0], out)
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)  # as fit left it
    chosen = [m["trial"] for m in json.loads((out / "ensemble.json").read_text())["members"]]
    assert len(chosen) >= 3
    run_ensemble(out, max_members=1)
    export_ensemble(out, served, progress=False)
    assert len(read_export_metadata(served)["members"]) == 1
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    own = str(out.resolve() / "export")
    assert [m["trial"] for m in again.ensemble["members"]] == chosen
    assert [m["trial"] for m in read_export_metadata(own)["members"]] == chosen
    assert again.export_path == out / "export" and Run(out).exported_to() == own
    assert f"export: {own}" in again.summary().splitlines()
    report = (out / "report.md").read_text()
    assert f"Export (SavedModel): `{own}`" in report and str(served) not in report
    assert "record = " not in report  # the stage's copy of the record is bookkeeping
    # The same members retrained on train + val by hand, elsewhere, then fit: its summary
    # gave that export's retrained test figures while its evaluation measured RUN/export (a
    # new-user check). A fit names the export it evaluates. That export is `retrained`'s
    # (of these members, fit's ensemble again above), copied there and recorded in run.json
    # as `export_ensemble(out, full, retrain_full=True)` records it: the retraining is
    # seconds of CPU, and test_a_hand_retrain_full_export_prints_its_test_and_fit_keeps_it
    # runs it.
    full = tmp_path / "served" / "full"
    assert [m["trial"] for m in read_export_metadata(retrained[0] / "export")["members"]] \
        == chosen
    shutil.copytree(retrained[0] / "export", full)
    hand = Run(retrained[0]).meta()["export"]
    assert hand["retrain_full"] is True and hand["test"]
    Run(out).modify(lambda m: m.update(export={**hand, **Run(out).export_record(full)}))
    assert Run(out).exported_to() == str(full)
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    assert Run(out).exported_to() == own and f"export: {own}" in again.summary().splitlines()
    assert "retrained" not in again.summary() and again.metrics == again.ensemble["test"]
    assert str(full) not in (out / "report.md").read_text()
    # A hand `ensemble` of 2 now: no export holds it. The summary says so, with the command.
    run_ensemble(out, max_members=2)
    assert (f"export: none of this ensemble ({own} is of an earlier one): run `hubensemble "
            f"export --run {out}`") in again.summary().splitlines()


@pytest.mark.slow
def test_a_hand_retrain_full_export_prints_its_test_and_fit_keeps_it(
        retrained, catalogue, tmp_path, in_process, caplog):
    """New-user checks: `export --run RUN --retrain-full` printed only "exported 3
    member(s)…", not the test figures it measured on the retrained members; and a later fit
    replaced that export in RUN/export saying so only as an INFO line in log.txt, then with
    a warning just before replacing it (too late to keep it): now fit moves it aside."""
    import logging
    import shutil

    from hubensemble.data import load_task
    from hubensemble.formats import made_by_hubensemble
    from hubensemble.rundir import Run

    # `export --run RUN --retrain-full` on a copy of the fitted run (`retrained`), copied.
    # (An export not retrained prints no such figures: test_export's
    # test_export_shows_its_long_steps_on_the_terminal_unless_quiet checks it on its export.)
    out = tmp_path / "run"
    _, code, stdout, err = retrained
    assert code == 0, err[-3000:]
    shutil.copytree(retrained[0], out)
    test = Run(out).meta()["export"]["test"]
    before = json.loads((out / "ensemble.json").read_text())["test"]
    e, b = test["ensemble"], test["best_single"]
    assert (f"test, measured on the exported members retrained on train + val (--retrain-full)"
            f": ensemble accuracy {e['accuracy']:.4f}, NLL {e['nll']:.4f}") in stdout, stdout
    assert f"  best single ({b['trial']}) accuracy {b['accuracy']:.4f}, NLL {b['nll']:.4f}" \
        in stdout, stdout
    assert (f"before retraining (RUN/ensemble.json): ensemble accuracy "
            f"{before['ensemble']['accuracy']:.4f}") in stdout, stdout

    hand = (out / "export" / "assets" / "hubensemble.json").read_bytes()
    created = json.loads(hand)["created"]
    images = tf.constant(np.asarray(load_task("sklearn:digits").test.images[:16],
                                    np.float32) / 255)

    def serve(folder):
        return tf.saved_model.load(str(folder)).signatures["serving_default"](
            images=images)["probabilities"].numpy()

    served = serve(out / "export")
    caplog.set_level(logging.INFO)
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "not the one this fit recorded" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records][-20:]
    assert said[0].startswith(f"export: {out.resolve() / 'export'} held an export"), said
    # A Python fit's words (it was told `hubensemble export --run … --retrain-full`).
    assert "retrained on train + val (retrain_full=True)" in said[0], said
    assert said[0].endswith(f"export_ensemble(run_dir={str(out)!r}, out_dir=DIR, "
                            "retrain_full=True)"), said
    # Nothing lost: the hand export is kept, whole, beside fit's own (it was replaced).
    # Its clock time as written, without the UTC offset every stamp carries (text.time_stamp).
    kept = out / ("export-replaced-" + created[:19].replace("-", "").replace(":", ""))
    assert f"Moved it to {kept.resolve()}" in said[0], said
    assert (kept / "assets" / "hubensemble.json").read_bytes() == hand
    np.testing.assert_array_equal(serve(kept), served)
    assert json.loads((out / "export" / "assets" / "hubensemble.json").read_text())[
        "retrain_full"] is False  # fit's own export is in RUN/export
    assert Run(out).exported_to() == str((out / "export").resolve())
    # The kept export's evaluation is not taken for fit's own: fit evaluated its export anew
    # (test_an_export_fit_would_write_is_kept_and_said_up_to_date's exports of fit's options
    # are evaluated once).
    assert json.loads((out / "run.json").read_text())["stages"]["evaluate"]["reused"] is False
    evaluated = json.loads((out / "robustness.json").read_text())["export"]
    assert "measured_on" not in evaluated and evaluated["metadata_sha256"] == hashlib.sha256(
        (out / "export" / "assets" / "hubensemble.json").read_bytes()).hexdigest()
    # The command it gives evaluates the kept export on the run's test split.
    model = re.search(r"evaluate_model\(model_dir='([^']+)', task=load_task\('sklearn:digits'\)\)",
                      said[0]).group(1)
    code, stdout, err = in_process("evaluate", "--model", model)
    assert code == 0 and f"{len(load_task('sklearn:digits').test.labels)} examples" in stdout, \
        err[-2000:]
    # The data loader takes it for ours; the report names fit's export, not the kept one.
    assert made_by_hubensemble(kept) == "a hubensemble export"
    report = (out / "report.md").read_text()
    assert "export-replaced" not in report and str(out.resolve() / "export") in report
    caplog.clear()  # its own export now: replaced without a word when it must be
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    assert not [r for r in caplog.records if "not the one this fit" in r.getMessage()]
    # A fit stopped before its export stage recorded no export: a hand export made then was
    # replaced without a word (found by a new user's check). The hand export kept above is that
    # export, put back in RUN/export (its run's, retrained: the retraining not run again).
    meta = json.loads((out / "run.json").read_text())
    meta["stages"].pop("export")
    (out / "run.json").write_text(json.dumps(meta))
    shutil.rmtree(out / "export")
    os.rename(kept, out / "export")
    caplog.clear()
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_CLEAN)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "not the one this fit recorded" in r.getMessage()]
    assert len(said) == 1 and "(retrain_full=True)" in said[0], said


@pytest.mark.slow
def test_an_export_fit_would_write_is_kept_and_said_up_to_date(fitted, catalogue, tmp_path,
                                                               capsys):
    """A new-user check: `export --run RUN` (the options fit uses), then the same fit: fit
    moved that export aside to RUN/export-replaced-<time> and exported again (9.9 s of a
    24.5 s fit on this zoo, and a needless copy kept). A fit killed between writing its
    export and recording it in run.json did the same to its own export. Both are kept now."""
    import shutil

    from hubensemble.export import export_ensemble
    from hubensemble.rundir import Run
    from hubensemble.text import shown_time  # the terminal's one form of a time

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)  # as fit left it
    meta_file = out / "export" / "assets" / "hubensemble.json"
    earlier = set(os.listdir(out))

    def kept():
        return [n for n in set(os.listdir(out)) - earlier if n.startswith("export-replaced")]

    def fit_again():
        capsys.readouterr()
        result = hubensemble.fit(catalogue, "sklearn:digits", out, **FIT)
        return result, capsys.readouterr().err

    # One export by hand serves the three cases below (an export costs 8 s of CPU): the run
    # as the fit left it and as that export left it are kept, and each case starts from them.
    before = (out / "run.json").read_bytes()  # the run.json a killed fit leaves (below)
    export_ensemble(out, progress=False)  # by hand, as fit exports
    hand = meta_file.read_bytes()
    exported = tmp_path / "exported"
    shutil.copytree(out, exported)

    def as_exported():
        shutil.rmtree(out)
        shutil.copytree(exported, out)

    result, err = fit_again()
    own = out.resolve() / "export"
    assert not kept()
    assert meta_file.read_bytes() == hand  # not written again
    n = len(result.ensemble["members"])
    assert (f"export: {own} holds the export this fit would write ({n}"
            f" member{'' if n == 1 else 's'} of ensemble.json, its weights, written "
            f"{shown_time(json.loads(hand)['created'])})"
            ": it is up to date, so it is kept and not exported again") in err, err[-2000:]
    assert "export: writing the SavedModel" not in err
    assert json.loads((out / "run.json").read_text())["stages"]["export"]["reused"] is True
    # The evaluation of fit's earlier export (the same model: the same ensemble.json, members
    # and weights, not retrained) is reused and names the kept export, not evaluated again.

    def evaluation_follows(written):
        stages = json.loads((out / "run.json").read_text())["stages"]
        robustness = json.loads((out / "robustness.json").read_text())
        assert stages["evaluate"]["reused"] is True, err[-2000:]
        assert robustness["export"]["metadata_sha256"] == hashlib.sha256(written).hexdigest()
        assert robustness["export"]["created"] == json.loads(written)["created"]
        assert robustness["export"]["measured_on"]["metadata_sha256"] != robustness["export"][
            "metadata_sha256"]
        assert "earlier export" not in (out / "report.md").read_text()

    evaluation_follows(hand)
    # A hand export written before TF Serving's warmup file was (none in assets.extra) is
    # kept too, and given one; its metadata, which identifies it, is left as it was.
    as_exported()
    assert meta_file.read_bytes() == hand
    shutil.rmtree(out / "export" / "assets.extra")
    result, err = fit_again()
    assert not kept() and meta_file.read_bytes() == hand
    warmup = own / "assets.extra" / "tf_serving_warmup_requests"
    assert ("it is up to date, so it is kept and not exported again; TF Serving's warmup "
            f"file, which it lacked (written before it was), is added: {warmup}") in err, err
    assert warmup.is_file() and "export: writing the SavedModel" not in err
    # A fit killed after its export was written, before run.json recorded it: the export
    # written and run.json as it was before.
    as_exported()
    written = meta_file.read_bytes()
    (out / "run.json").write_bytes(before)
    result, err = fit_again()
    assert not kept()
    assert meta_file.read_bytes() == written
    assert "not recorded in run.json: now it is): it is up to date" in err, err[-2000:]
    record = Run(out).meta()["export"]
    assert record["created"] == json.loads(written)["created"]
    assert Run(out).exported_to() == str(own) and record["members"] == json.loads(
        written)["members"]
    assert f"export: {own}" in result.summary().splitlines()
    evaluation_follows(written)
    # (An export of other options (--retrain-full) is still moved aside, and evaluated anew:
    # test_a_hand_retrain_full_export_prints_its_test_and_fit_keeps_it, which makes one.)
    # A run fitted before TF Serving's warmup file was: its export has none, and its record
    # lists no such file. A fit after the upgrade reused the stage as done and left the
    # export without one; it adds it now, and the next fit reuses that export as it is.
    shutil.rmtree(own / "assets.extra")
    warmup = "assets.extra/tf_serving_warmup_requests"
    Run(out).modify(lambda m: m["stages"]["export"]["files"].pop(warmup))
    written = meta_file.read_bytes()
    result, err = fit_again()
    assert (f"export: TF Serving's warmup file, which {own} lacked (written before it was), "
            f"is added: {own / warmup}") in err, err[-2000:]
    assert (own / warmup).is_file() and meta_file.read_bytes() == written
    assert "export: writing the SavedModel" not in err
    result, err = fit_again()
    assert "warmup" not in err and "export: writing the SavedModel" not in err, err[-2000:]


@pytest.mark.parametrize("inputs, error, words", [
    (dict(catalogue="{tmp}/nope.yaml"), CatalogueError, ["nope.yaml: cannot read"]),
    (dict(catalogue=5), TypeError, ["catalogue must be a catalogue YAML path", "got int 5"]),
    (dict(catalogue=["{cat}", 5]), TypeError, ["got int 5"]),
    (dict(data="npz:{tmp}/nope.npz"), DataError, ["nope.npz: no such file"]),
    (dict(data="sklearn:iris"), DataError, ["sklearn:iris is not available"]),
    (dict(data=5), TypeError, ["data must be a data spec", "got int 5"]),
    (dict(modules=["nope"]), HubensembleError,
     ["module 'nope' is not in the catalogue", "m0, m1, m2"]),
    (dict(sweep="aug", budget=2), HubensembleError,
     ["budget 2 cannot hold one augmentation family's 4 trials"]),
    # TensorFlow reads variables through a file pattern: the export's reload check failed
    # after the whole sweep ("Failed to find any matching files").
    (dict(out="run[1]"), RunError, ["in which '[' starts a character class",
                                    "choose another out folder"]),
    (dict(export="{tmp}/e[2]"), RunError, ["e[2]: it reads the variables through a file",
                                           "choose another export folder"]),
])
def test_fit_refuses_bad_inputs_before_it_creates_the_run_folder(catalogue, tmp_path, inputs,
                                                                 error, words):
    """A new-user check: each of these left RUN/log.txt and RUN/.fit.lock behind (the command
    line, which checks them first, leaves no folder)."""
    def fill(v):
        return v.format(tmp=tmp_path, cat=catalogue) if isinstance(v, str) else v

    args = dict(catalogue=catalogue, data="sklearn:digits", **FIT)
    for key, value in inputs.items():
        args[key] = [fill(v) for v in value] if isinstance(value, list) else fill(value)
    out = tmp_path / args.pop("out", "run")
    with pytest.raises(error) as err:
        hubensemble.fit(out=out, progress=False, **args)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert not out.exists()


def test_python_arguments_of_a_wrong_type_say_what_is_accepted(catalogue, tmp_path):
    """A new-user check: wrong types gave Python's raw errors: predict(model, [array]) "expected
    str, bytes or os.PathLike object, not ndarray", predict(model, [png bytes]) "open:
    embedded null character in path", evaluate_model(export, "sklearn:digits") "'list'
    object has no attribute 'labels'", fit(data=[x, y]) ~460 characters of numbers and no
    way on, fit(topk=2) every option but no "did you mean top_k?" (the command line's)."""
    import io

    from PIL import Image

    from hubensemble.evaluate import evaluate_model

    x, y = np.zeros((40, 32, 32, 3), np.uint8), np.arange(40) % 4
    out = tmp_path / "run"
    with pytest.raises(TypeError) as e:
        hubensemble.fit(catalogue, [x, y], out, progress=False, **FIT)
    text = str(e.value)
    assert "got list of 2 ndarray (uint8 [40, 32, 32, 3], int64 [40])" in text, text
    assert "train=Split(x_train, y_train)" in text and "data='npz:d.npz'" in text
    assert len(text) < 600 and "array(" not in text
    with pytest.raises(TypeError, match=r"unknown option topk \(did you mean top_k\?\)"):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, topk=2)
    assert not out.exists()
    png = io.BytesIO()
    Image.fromarray(x[0]).save(png, format="PNG")
    for given, words in (([x[0]], "got ndarray uint8 [32, 32, 3]; predict reads image files; "
                                  "for pixels in memory call the export's serving_default"),
                         (x[0], "got ndarray uint8 [32, 32, 3]"),
                         (["a.png", png.getvalue()], "got bytes of"),
                         ([png.getvalue()], "signatures['serve_bytes'](image_bytes=")):
        with pytest.raises(TypeError) as e:
            hubensemble.predict(tmp_path / "export", given, progress=False)
        assert str(e.value).startswith("predict() image_paths must be paths of image files")
        assert words in str(e.value), str(e.value)
    with pytest.raises(TypeError) as e:
        evaluate_model(tmp_path / "export", "sklearn:digits", progress=False)
    assert str(e.value) == (
        "evaluate_model() task must be a hubensemble.data.Task, got str 'sklearn:digits'; "
        f"for a data spec pass load_evaluation_task({str(tmp_path / 'export')!r}, "
        "'sklearn:digits') (from hubensemble.evaluate), the data `evaluate --data` reads")


# Every public stage function's arguments that are not options, of another type or empty:
# (function, positional arguments, keywords, error, its words). "{task}" and "{cat}" stand
# for a Task and the catalogue's ModuleSpec records, "{run}" for a run folder's path.
_WRONG_ARGUMENTS = [
    ("run_rank", (None, "{cat}", "{task}"), {}, TypeError,
     "run_rank() out_dir must be a folder path (str or os.PathLike), got NoneType None; "
     "e.g. out_dir='runs/digits'"),
    ("run_rank", ("", "{cat}", "{task}"), {}, "OptionError",
     "run_rank() out_dir must be a path, not empty, got ''"),
    ("run_rank", ("{run}", None, "{task}"), {}, TypeError,
     "run_rank() specs must be a catalogue YAML path, a ModuleSpec, or a list of them"),
    ("run_rank", ("{run}", "{cat}", 123), {}, TypeError,
     "run_rank() task must be a hubensemble.data.Task, got int 123; load one with "
     "hubensemble.load_task(SPEC)"),
    ("run_rank", ("{run}", "{cat}", "sklearn:digits"), {}, TypeError,
     "got str 'sklearn:digits'; load it with hubensemble.load_task('sklearn:digits')"),
    ("run_rank", ("{run}", "{cat}", "{task}"), {"top_k": "3"}, "OptionError",
     "top_k must be an integer >= 1, got '3'"),
    ("run_tune", (None,), {}, TypeError, "run_tune() run_dir must be a folder path"),
    ("run_tune", (123,), {}, TypeError, "run_tune() run_dir must be a folder path (str or "
                                        "os.PathLike), got int 123"),
    ("run_tune", ("{run}",), {"task": "sklearn:digits"}, TypeError,
     "run_tune() task must be a hubensemble.data.Task or None, got str 'sklearn:digits'"),
    ("run_ensemble", (None,), {}, TypeError, "run_ensemble() run_dir must be a folder path"),
    ("export_ensemble", (None,), {}, TypeError, "export_ensemble() run_dir must be a folder"),
    ("export_ensemble", ("{run}", 3), {}, TypeError,
     "export_ensemble() out_dir must be a folder path (str or os.PathLike) or None, got int 3"),
    ("export_ensemble", ("{run}", ""), {}, "OptionError",
     "export_ensemble() out_dir must be a path, not empty, got ''; leave it out (None)"),
    ("evaluate_model", (None, "{task}"), {}, TypeError,
     "evaluate_model() model_dir must be a folder path"),
    ("predict", (None, ["a.png"]), {}, TypeError, "predict() model_dir must be a folder path"),
    ("write_report", (None,), {}, TypeError, "write_report() run_dir must be a folder path"),
    ("merge_rankings", ("{run}", "{run}"), {}, TypeError,
     "merge_rankings() shard_dirs must be a non-empty list of folder paths, got str"),
    ("merge_rankings", (["{run}", 7], "{run}"), {}, TypeError,
     "merge_rankings() shard_dirs[1] must be a folder path"),
    ("merge_rankings", (["{run}"], None), {}, TypeError,
     "merge_rankings() out_dir must be a folder path"),
    ("run_distill", (None,), {}, TypeError, "run_distill() run_dir must be a folder path"),
    ("run_cost", (None,), {}, TypeError, "run_cost() run_dir must be a folder path (str or "
                                         "os.PathLike), got NoneType None"),
    ("run_cost", ("",), {}, "OptionError", "run_cost() run_dir must be a path, not empty"),
    ("run_cost", ("{run}",), {"task": "sklearn:digits"}, TypeError,
     "run_cost() task must be a hubensemble.data.Task or None, got str 'sklearn:digits'"),
    ("run_cost", ("{run}",), {"cache_dir": 5}, TypeError,
     "run_cost() cache_dir must be a folder path (str or os.PathLike) or None, got int 5"),
    ("load_task", (123,), {}, TypeError,
     "load_task() spec must be a data spec (a str such as 'sklearn:digits'"),
]


@pytest.mark.parametrize("name, args, kwargs, error, words", _WRONG_ARGUMENTS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(_WRONG_ARGUMENTS)])
def test_every_stage_function_refuses_an_argument_of_another_type_naming_it(
        catalogue, tmp_path, monkeypatch, name, args, kwargs, error, words):
    """A notebook user's check: run_rank(out, specs, 123) failed with "'int' object has no
    attribute 'train'", run_rank(out, None, task) with "'NoneType' object is not iterable",
    run_tune(None), write_report(None), predict(None, ...) with "expected str, bytes or
    os.PathLike object, not NoneType", merge_rankings("shard", out) read each character as a
    folder, run_rank(top_k="3") said no flag; fit names the argument and the way on. Every
    stage function now checks its arguments as fit does (`stageargs`; the options by the
    table, `options.check_keywords`), before it writes anything."""
    from hubensemble import options
    from hubensemble.catalogue import load_catalogue
    from hubensemble.cost.stage import run_cost
    from hubensemble.data import load_task
    from hubensemble.distill import run_distill

    monkeypatch.chdir(tmp_path)
    values = {"{task}": load_task("sklearn:digits"), "{cat}": load_catalogue(catalogue),
              "{run}": str(tmp_path / "run")}

    def fill(v):
        if isinstance(v, list):
            return [fill(x) for x in v]
        return values.get(v, v) if isinstance(v, str) else v

    function = {"run_distill": run_distill, "run_cost": run_cost}.get(name) or getattr(
        hubensemble, name)
    error = options.OptionError if error == "OptionError" else error
    with pytest.raises(error) as e:
        function(*[fill(a) for a in args], **kwargs)
    assert words in str(e.value), str(e.value)
    assert os.listdir(tmp_path) == []


def test_a_python_caller_is_told_the_keyword_it_typed_not_the_tables_name(tmp_path):
    """A notebook user's check: evaluate_model(batch_size=0) was refused as "eval_batch_size
    (--batch-size) must be …", a name the caller never typed (the options table's, which
    differs from the keyword for ten options). options.check_keywords names the keyword."""
    from hubensemble import options
    from hubensemble.distill import run_distill
    from hubensemble.evaluate import evaluate_model

    for call, words in [
            (lambda: evaluate_model(tmp_path, None, batch_size=0),
             "batch_size must be an integer >= 1, got 0"),
            (lambda: run_distill(tmp_path, steps_scale=0), "steps_scale must be"),
            (lambda: run_distill(tmp_path, mixup=-1), "mixup must be"),
            # evaluate_model's batch size and seed have the table's check alone (its own
            # checks after it, "batch_size must be an integer >= 1", were never reached).
            *[(lambda v=v: evaluate_model(tmp_path, None, batch_size=v),
               f"batch_size must be an integer >= 1, got {v!r}")
              for v in (True, 2.5, "3", None)],
            *[(lambda v=v: evaluate_model(tmp_path, None, seed=v),
               f"seed must be an integer in [0, 4294967295], got {v!r}")
              for v in (True, -1, 2.0)]]:
        with pytest.raises(options.OptionError) as e:
            call()
        assert str(e.value).startswith(words), str(e.value)
    assert os.listdir(tmp_path) == []


def test_a_refusal_names_the_keyword_to_python_and_the_flag_of_its_command_to_the_command_line(
        tmp_path):
    """run_ensemble(run_dir, budget='x') was refused as "budget (--budget) must be …" (and
    before that "(--ensemble-budget)", fit's flag): Python never typed --budget, and the
    command line never typed budget. Each is told its own word (`lockwords.option_word`):
    the keyword from Python; on the command line the flag of the command of that function
    (the `ensemble` command's --budget, fit's --ensemble-budget)."""
    from hubensemble import options
    from hubensemble.ensemble import run_ensemble
    from hubensemble.lockwords import command_line

    with pytest.raises(options.OptionError) as e:
        run_ensemble(tmp_path, budget="x")
    assert str(e.value) == "budget must be an integer >= 1, got 'x'"
    with pytest.raises(options.OptionError, match=r"^ensemble_budget must be an integer >= 1"):
        hubensemble.fit([], "sklearn:digits", tmp_path / "out", ensemble_budget=0)
    with command_line(), pytest.raises(options.OptionError) as e:
        run_ensemble(tmp_path, budget="x")
    assert str(e.value) == "--budget must be an integer >= 1, got 'x'"
    with command_line(), pytest.raises(options.OptionError, match=r"^--ensemble-budget must "):
        hubensemble.fit([], "sklearn:digits", tmp_path / "out", ensemble_budget=0)
    assert os.listdir(tmp_path) == []


def test_fit_refuses_a_bad_seconds_variable_before_the_run_folder(catalogue, tmp_path,
                                                                  monkeypatch):
    from hubensemble.options import OptionError

    monkeypatch.setenv("HUBENSEMBLE_HTTP_TIMEOUT", "abc")
    with pytest.raises(OptionError, match="HUBENSEMBLE_HTTP_TIMEOUT='abc' must be a number > 0"):
        hubensemble.fit(catalogue, "sklearn:digits", tmp_path / "run", progress=False, **FIT)
    assert not (tmp_path / "run").exists()


def test_a_bad_task_made_in_python_is_refused_before_the_run_folder(catalogue, tmp_path):
    """A new-user check: a Task whose labels went out of range failed inside rank, the
    DataError once per module, then "fix these catalogue entries", and left a run folder.
    fit checks a Task as load_task checks its data, before the run folder is made."""
    from hubensemble.data import Split, Task

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    task = Task(name="arrays", source="python", class_names=["a", "b", "c"],
                train=Split(x, y), val=Split(x[:6], y[:6]))
    task.train.labels[0] = 7  # changed after the Task was made (which checks it)
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"^train labels out of range: 1 label with "
                                        r"value \[7\] but the classes are 0\.\.2"):
        hubensemble.fit(catalogue, task, out, progress=False, **FIT)
    assert not out.exists()


def colour_folder(root, n=24, side=12):
    """root/<red|green|blue>/NN.png: n noisy images per class, its colour channel brightest."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 120, (side, side, 3), dtype=np.uint8)
            img[..., c] += 120
            Image.fromarray(img).save(root / name / f"{i:02d}.png")
    return root


def test_a_resumed_fit_records_what_became_of_every_file_now(catalogue, tmp_path):
    """A new-user check: a corrupt file and a hidden one added after a fit left run.json and
    the report at the first load's counts (112 files, 6 skipped) when the resumed fit reused
    every stage (a skipped file does not change the data's fingerprint)."""
    data = colour_folder(tmp_path / "data")
    out = tmp_path / "run"
    # A seeds sweep of budget=1: one trial and a 1-member export; what is recorded of the
    # files is the load's.
    args = dict(FIT, top_k=1, corruptions=False, sweep="seeds", budget=1)
    hubensemble.fit(catalogue, f"folder:{data}", out, progress=False, **args)
    first = json.loads((out / "run.json").read_text())["data"]["task"]
    assert (first["files"], first["skipped"]) == (72, [])
    (data / "red" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (data / "red" / ".hidden").write_bytes(b"x")
    hubensemble.fit(catalogue, f"folder:{data}", out, progress=False, **args)
    now = json.loads((out / "run.json").read_text())["data"]["task"]
    assert now["fingerprint"] == first["fingerprint"]
    assert now["files"] == 73 and [p for p, _ in now["skipped"]] == [
        str(data / "red" / "zz_broken.png")]
    assert now["ignored"]["count"] == first["ignored"]["count"] + 1
    assert "73: 72 examples, 1 skipped" in (out / "report.md").read_text()


def test_a_task_without_validation_examples_is_refused_before_rank(catalogue, tmp_path):
    """A new-user check: --val-fraction 0 (or a --dedupe that emptied the val split) ranked,
    failed every trial with "has no val split", then said no candidate was usable."""
    import shutil

    from hubensemble.rundir import DataArgs

    data = colour_folder(tmp_path / "data", n=8)
    out = tmp_path / "run"
    with pytest.raises(DataError, match="val_fraction 0 .* without validation examples"):
        hubensemble.fit(catalogue, f"folder:{data}", out, progress=False,
                        data_args=DataArgs(spec="", val_fraction=0.0), **FIT)
    assert not out.exists()  # before the run folder, as on the command line
    layout = tmp_path / "layout"
    for split in ("train", "val", "test"):  # val and test copies of train: --dedupe drops
        shutil.copytree(data, layout / split)  # them all (train's copy is the first)
    with pytest.raises(RunError, match="has no validation examples"):
        hubensemble.fit(catalogue, f"folder:{layout}", out, progress=False,
                        data_args=DataArgs(spec="", dedupe=True), **FIT)
    assert not (out / "ranking.json").exists()


def test_a_python_callers_root_logger_is_left_as_it_was_and_shows_warnings(tmp_path):
    """A new-user check: in a notebook, fit's export (TensorFlow's SavedModel writer logs
    through absl, which calls logging.basicConfig() on a root without handlers) left a root
    StreamHandler that printed every INFO record of ours and TensorFlow's from then on. And
    another: fit's warnings never reached the terminal of a caller without logging set up."""
    code = f"""if True:
        import logging, sys, absl.logging
        from hubensemble.rundir import Run
        with Run({str(tmp_path / 'run')!r}).log_file():
            absl.logging.info("as the SavedModel writer logs")
            logging.getLogger("hubensemble.x").info("ours, for the run's log")
            logging.getLogger("hubensemble.x").warning("a warning of ours")
        print(logging.getLogger().handlers)
        # A caller's own handler takes the warnings: none goes to stderr besides.
        logging.getLogger("hubensemble").addHandler(logging.StreamHandler(sys.stdout))
        with Run({str(tmp_path / 'run')!r}).log_file():
            logging.getLogger("hubensemble.x").warning("configured")
        absl.logging.info("outside the block")  # absl does configure a bare root
        print(len(logging.getLogger().handlers))
    """
    out = bounded_by_cpu([sys.executable, "-c", code], capture_output=True, text=True,
                         cpu=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["[]", "configured", "1"], out.stdout
    assert "ours, for" not in out.stderr and "configured" not in out.stderr
    assert "ours, for the run's log" in (tmp_path / "run" / "log.txt").read_text()
    # Python's last resort shows the warnings of a caller who configured no logging (a fit
    # from Python said nothing of its warnings: the root's NullHandler silenced them).
    assert out.stderr.splitlines().count("a warning of ours") == 1, out.stderr


def test_a_call_from_python_that_stops_says_why_in_the_runs_log(tmp_path):
    """A new-user check: fit(..., top_k=2) on a run fitted with other options was refused from
    Python, and RUN/log.txt ended with the data's summary line, no word of the refusal, where
    the command line's run logs its 'hubensemble: error: …' line. The run's log block now
    says why it stopped from Python (once, the first line); the command line keeps its own."""
    from hubensemble.rundir import Run

    run = Run(tmp_path / "run")
    with run.log_file():
        logging.getLogger("hubensemble.x").info("a first call")
    with pytest.raises(RunError), run.log_file():
        with run.log_file():  # a stage's block inside fit's: said once
            raise RunError("the rank or tune options changed since R was fitted\nsecond line")
    with pytest.raises(KeyboardInterrupt), run.log_file():
        raise KeyboardInterrupt
    with pytest.raises(RunError), command_line(), run.log_file():
        raise RunError("said by the command line")
    lines = (tmp_path / "run" / "log.txt").read_text().splitlines()
    said = [line.split(": ", 1)[1] for line in lines if "stopped" in line]
    assert said == ["stopped (RunError): the rank or tune options changed since R was fitted",
                    "stopped (KeyboardInterrupt)"], lines


def test_a_fit_from_python_shows_its_warnings_and_says_which_files_it_skipped(
        catalogue, tmp_path, monkeypatch, capfd):
    """A new-user check: fit from Python, on a folder with unreadable files, wrote only
    progress bars on stderr, where the command line says "3 skipped (unreadable; …)" and warns
    (here: classes without a test example); its summary said nothing of the files. Its
    paths are absolute, as the summary's, and keep a link the caller named."""
    import logging

    from PIL import Image

    data = tmp_path / "shapes"
    rng = np.random.default_rng(1)
    for name, n in (("circle", 10), ("square", 10), ("star", 3)):
        (data / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                data / name / f"{i}.png")
    (data / "circle" / "notes.jpg").write_text("not an image")
    (tmp_path / "disk").mkdir()
    (tmp_path / "runs").symlink_to(tmp_path / "disk")
    out = tmp_path.resolve() / "runs" / "run"
    # A caller who configured no logging (pytest's capture handlers are on the root here).
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.chdir(tmp_path)
    # Too little memory for anything: fit says its own need first, and its export stage the
    # export's once the members are known (a new-user check: a fit of 5 members at 224 px
    # peaked at 3.3 GB, its export's, and no stage of the fit had said so).
    from hubensemble import memory

    monkeypatch.setattr(memory, "room", lambda: memory.Room(1 << 20, "the cgroup limit in X"))
    # A seeds sweep of budget=1: one trial and a 1-member export (the export's need is said
    # of its members, counted below from ensemble.json, whatever their number).
    result = hubensemble.fit(catalogue, f"folder:{data}", "runs/run", progress=False,
                             corruptions=False, sweep="seeds", budget=1,
                             **dict(FIT, top_k=1))
    stderr = capfd.readouterr().err
    assert stderr.count("less than it needs") == 2, stderr
    members = len(json.loads((out / "ensemble.json").read_text())["members"])
    assert f"export rebuilds the {counted(members, 'member')}" in stderr, stderr
    # A relative out: the paths are absolute, as the summary prints them (a new-user check:
    # export_path was runs/digits/export), through the link as typed, as `report` and
    # `export` print them (os.path.abspath; report_paths followed the link to disk/run).
    assert result.export_path == out / "export"
    assert f"export: {result.export_path}" in result.summary()
    assert result.report_paths == (out / "report.md", out / "report.html")
    # run_dir too, in the one-line repr a notebook echoes (it was PosixPath('runs/run')).
    assert result.run_dir == out and f"FitResult(run_dir={out!r}, " in repr(result), repr(result)
    skipped = str(data / "circle" / "notes.jpg")
    assert [p for p, _ in result.skipped] == [skipped]
    # The data summary below said it: the closing summary, printed after it, says it no more.
    assert "skipped (" not in result.summary(), result.summary()
    # The warnings reach stderr, as Python shows them without logging set up; the skipped
    # file among them, in the command line's words (a notebook user's check: logged at INFO,
    # it was never seen).
    assert "test metrics cover 2 of 3 classes; no test example of: star" in stderr, stderr
    assert (f"1 skipped (unreadable; {skipped}: not a JPEG" in stderr
            and "), 0 duplicates dropped" in stderr), stderr


@pytest.mark.slow
def test_a_fit_that_finished_nothing_takes_the_fixed_catalogue_and_counts_a_stages_time_before(
        catalogue, tmp_path, monkeypatch):
    """A new-user check: no module could be ranked, the error said to fix the catalogue and
    run the same command again, and that was refused as "the catalogue changed since … was
    fitted" with nothing to discard. A second fit on a folder a fit is running on is refused
    at once (RUN/.fit.lock), not when it reaches the sweep.

    A second new-user check, on the same run (one fit from scratch serves both; each had its
    own, 12 s): tune interrupted three times, then resumed, showed "tune 13.3 s" (its last
    part) of the 47 s it took."""
    import hubensemble.tune
    from hubensemble.fileio import file_lock
    from hubensemble.report.fmt import duration

    out = tmp_path / "run"
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"modules:\n  - {{name: m0, handle: {tmp_path / 'no-such-module'}}}\n")
    with pytest.raises(HubensembleError, match="no module could be ranked"):
        hubensemble.fit(str(broken), "sklearn:digits", out, progress=False, **FIT)
    assert "fit" in json.loads((out / "run.json").read_text())
    with file_lock(out / ".fit.lock"):  # (as a process that recorded no command holds it)
        with pytest.raises(RunError, match=f"another hubensemble command is running on {out}"):
            hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)

    real, calls = hubensemble.tune.run_tune, []

    def stopped_once(*args, **kwargs):
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.0)  # the work an interrupt threw away
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(hubensemble.tune, "run_tune", stopped_once)
    # A seeds sweep of budget=1: one trial and a 1-member export; the stop and the seconds
    # are tune's, whatever its trials.
    fit = dict(FIT, top_k=1, corruptions=False, sweep="seeds", budget=1)
    with pytest.raises(KeyboardInterrupt):  # the fixed catalogue, stopped in tune
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **fit)
    assert "finished no stage: starting over" in (out / "log.txt").read_text()
    assert hubensemble.rundir.Run(out).meta()["interrupted_seconds"]["tune"] >= 1.0
    # A notebook's stop button: RUN/log.txt said "tune: starting", then the next call's lines.
    assert re.search(r" INFO hubensemble\.pipeline: tune: stopped after \d+\.\d s "
                     r"\(KeyboardInterrupt\)\n", (out / "log.txt").read_text())
    start = time.monotonic()
    fixed = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **fit)
    assert fixed.ensemble["members"]
    meta = hubensemble.rundir.Run(out).meta()
    tune = meta["stages"]["tune"]
    assert 1.0 <= tune["interrupted_seconds"] < 1.0 + (calls[1] - calls[0])
    assert tune["seconds"] >= tune["interrupted_seconds"] + 0.05
    assert tune["seconds"] - tune["interrupted_seconds"] <= time.monotonic() - start
    assert meta["interrupted_seconds"] == {}
    assert fixed.stage_seconds["tune"] == pytest.approx(tune["seconds"], abs=0.01)
    line = next(x for x in fixed.summary().splitlines() if x.startswith("time per stage"))
    # (In the summary's form, report.fmt.duration: "1 min 47.6 s" on a loaded machine.)
    assert (f"tune {duration(tune['seconds'])} ({duration(tune['interrupted_seconds'])} of it "
            "in earlier runs that stopped in it)") in line, line
    # Reused by the next fit, the record keeps both.
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **fit)
    again = hubensemble.rundir.Run(out).meta()["stages"]["tune"]
    assert again["reused"] and again["interrupted_seconds"] == tune["interrupted_seconds"]
    # Once a stage is done, a changed catalogue is refused as before, naming the change to
    # each entry that differs (it said only "the catalogue changed"). (The run's own options:
    # another sweep or budget would be refused for those first.)
    with pytest.raises(RunError, match=r"the catalogue \(m1 removed; m2 removed; m0's handle "
                                       r"\S+ -> \S+no-such-module\) changed since"):
        hubensemble.fit(str(broken), "sklearn:digits", out, progress=False, **fit)


@pytest.mark.slow
def test_fit_says_which_result_file_was_damaged_before_it_redoes_the_stage(
        fitted, catalogue, tmp_path, caplog):
    """A new-user check: a truncated ranking.json or trial.json was redone by fit with only
    "another command rewrote it since" in the log. Now a warning names the damage.

    New-user checks on the same run (they had a fit of their own, 19 s): random bytes over
    RUN/export/saved_model.pb were "export: done before, reused" (evaluate then failed: "Wire
    format was corrupt"); over a member's val_probs.npy, fit reused every stage, the report
    listed the member both in the ensemble and left out, and the reason advised loading the
    file with pickles on."""
    import logging
    import shutil

    from hubensemble import candidate

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)  # its export's files are recorded in run.json
    members = json.loads((out / "ensemble.json").read_text())["members"]
    before = trial_starts(out)
    ranking = (out / "ranking.json").read_bytes()
    (out / "ranking.json").write_bytes(ranking[:40])
    member = members[0]["trial"]
    trial = sorted(d for d in os.listdir(out / "candidates") if not is_temp(d) and d != member)[0]
    (out / "candidates" / trial / "trial.json").write_text('{"trial": ')
    rng = np.random.default_rng(0)
    (out / "export" / "saved_model.pb").write_bytes(rng.bytes(1000))
    (out / "candidates" / member / "val_probs.npy").write_bytes(rng.bytes(2000))
    cand = candidate.read_candidate(out / "candidates", member)
    assert cand.problems == ["val_probs.npy is damaged: not a .npy array file (ValueError)"]
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_CLEAN)
    said = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert f"rank: {out / 'ranking.json'} is damaged (JSONDecodeError" in said
    assert f"candidates/{trial}: trial.json" in said
    assert (json.loads((out / "ranking.json").read_text())["selected"]
            == json.loads(ranking)["selected"])  # ranked again, the same modules
    assert json.loads((out / "candidates" / trial / "trial.json").read_text())["trial"] == trial
    # (One line of tune's names both trials.)
    assert re.search(rf"tune: .*candidates/{member}: val_probs\.npy is damaged: not a \.npy "
                     "array file", said), said
    # Said once: fit's tune leaves the trials fit's line said out of its own line of trials
    # redone (`run_tune(said_redone=…)`; it said them a second time).
    everything = [r.getMessage() for r in caplog.records]
    assert sum(f"candidates/{member}: val_probs.npy is damaged" in m
               for m in everything) == 1, everything
    assert "allow_pickle" not in said
    # The damaged trials ran again (once each), the same sweep and ensemble came back, and
    # the export, which the new sweep's result makes stale anyway, loads.
    after = trial_starts(out)
    assert after[member] == before[member] + 1 and after[trial] == before[trial] + 1
    assert all(after[t] == n for t, n in before.items() if t not in (member, trial))
    assert [m["trial"] for m in again.ensemble["members"]] == [m["trial"] for m in members]
    assert candidate.read_candidate(out / "candidates", member).complete
    tf.saved_model.load(str(out / "export"))
    # The export alone damaged: named, and exported again; the sweep reused (seen at INFO:
    # at WARNING the logger dropped that record, from log.txt too, and the whole log was
    # searched, where this test's first fit, now removed, had written it).
    (out / "export" / "saved_model.pb").write_bytes(rng.bytes(1000))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_CLEAN)
    assert (f"export: {out / 'export'} is not the export fit wrote: saved_model.pb changed; "
            "running export again") in caplog.text
    assert "tune: done before, reused" in caplog.text and trial_starts(out) == after
    tf.saved_model.load(str(out / "export"))
    # A second new-user check: a deleted ranking.json, or one holding `[]`, said nothing on
    # the terminal, and the log said "another command rewrote it since", also of the ranking
    # this fit had just made again.
    for damage, said_of_it in ((lambda p: p.unlink(), "is gone"),
                               (lambda p: p.write_text("[]"), "is damaged (ValueError: it "
                                                              "holds no JSON object)")):
        damage(out / "ranking.json")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
            hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT_CLEAN)
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                  and r.name == "hubensemble.pipeline"]
        assert warned == [f"rank: {out / 'ranking.json'} {said_of_it}; running rank again"]
        # The fit's own rank stage: its pool, which its tune goes on from (no warning that
        # "the next `fit`" would, in the middle of this one).
        assert re.search(r"holds (1 candidate|\d+ candidates) of this fit's earlier tune; its "
                         r"tune stage goes on from (it|them),", caplog.text), caplog.text
        assert "the next `fit`" not in caplog.text
        assert "another command" not in caplog.text
        # The same ranking again (only its rows' seconds and cache hits differ: bookkeeping,
        # stagerecords.BOOKKEEPING): tune, which reads its selection, is kept.
        assert "tune: done before, reused" in caplog.text
        assert "tune: rank ran again above" not in caplog.text
    # An export asked for in another folder is not "gone" from there; the one fit made is.
    # (Of a 1-member ensemble: an export of 8 took 5.5 s of CPU, of 1 3.7 s; which export
    # fit made where is the same rule.)
    caplog.clear()
    elsewhere = dict(FIT_CLEAN, export=tmp_path / "elsewhere", max_members=1)
    with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **elsewhere)
        assert "is gone" not in caplog.text and (tmp_path / "elsewhere" / "saved_model.pb").exists()
        shutil.rmtree(tmp_path / "elsewhere")
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **elsewhere)
    assert f"export: {tmp_path / 'elsewhere' / 'saved_model.pb'} is gone" in caplog.text


@pytest.mark.slow
def test_a_module_changed_in_place_is_refused_by_fit_tune_export_and_distill(
        fitted, catalogue, module_factory, tmp_path):
    """A new-user check: a module's variables replaced between an interrupt and the resume
    gave one sweep of trials of two versions of the module, and on a finished run every
    stage was "done before, reused": the catalogue's entries alone were the key."""
    from hubensemble.distill import run_distill
    from hubensemble.export import export_ensemble
    from hubensemble.tune import run_tune

    # A copy of the fitted run (its own fit from scratch cost 20 s); the member's module of
    # the catalogue, this file's copy, is given the weights of a module of the same
    # architecture (what a user's module updated in place looks like), and put back after.
    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    members = json.loads((out / "ensemble.json").read_text())["members"]
    member = members[0]["module"]
    handle = next(r["handle"] for r in json.loads((out / "ranking.json").read_text())[
        "modules"] if r["name"] == member)
    i = int(member[1:])
    other = module_factory(f"fit{i}-other", seed=20 + i, width=6 + 2 * i)
    variables = os.path.join(handle, "variables")
    shutil.copytree(variables, tmp_path / "variables")
    # The command that starts the run again: the fixture's fit options (FIT).
    again = (f"fit it again from the start, discarding its results: `hubensemble fit "
             f"--restart --catalogue {catalogue} --data sklearn:digits --top-k 2 --profile quick "
             f"--out {out}`")
    try:
        shutil.rmtree(variables)
        shutil.copytree(os.path.join(other, "variables"), variables)
        with pytest.raises(RunError) as err:
            hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
        assert f"the files of module {member} changed since {out} was fitted" in str(err.value)
        assert "restart=True" in str(err.value)
        # The stages take no --restart: they name the whole fit that discards the folder (they
        # said "(fit --restart does both again)" and "(fit --restart)").
        with pytest.raises(RunError, match=f"the files of module {member} changed since {out} "
                                           "ranked it") as err, command_line():
            run_tune(out, profile="quick", progress=False)
        assert str(err.value).endswith("restore them, or " + again), str(err.value)
        with pytest.raises(RunError) as err:  # from Python: the call that starts it again
            run_tune(out, profile="quick", progress=False)
        assert str(err.value).endswith(
            "restore them, or fit it again from the start, discarding its results: "
            f"hubensemble.fit(out={str(out)!r}, catalogue={catalogue!r}, data='sklearn:digits', "
            "restart=True, top_k=2, profile='quick')"), str(err.value)
        # The student would start from its member's weights of the old files: refused before
        # it trains (distill.json is not written).
        with pytest.raises(RunError, match=f"the files of module {member} changed since {out} "
                                           "ranked it") as err, command_line():
            run_distill(out, student=member, progress=False)
        assert str(err.value).endswith("restore them, or " + again)
        assert not (out / "distill.json").exists()
        with pytest.raises(RunError, match=r"the module's files changed since the trial was "
                                           r"trained \(content fingerprint") as err, \
                command_line():
            export_ensemble(out, progress=False)
        # Not "re-run tune for it": tune refuses the changed module (a new-user check).
        assert f"restore the module's files, or {again}, or pass --skip-missing" in str(
            err.value) and "re-run `hubensemble tune" not in str(err.value)
    finally:
        shutil.rmtree(variables, ignore_errors=True)
        shutil.copytree(tmp_path / "variables", variables)
    # The module restored: the run is whole again, every stage reused.
    said = (out / "log.txt").read_text().count("tune: done before, reused")
    result = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    assert result.ensemble["members"] == members
    assert (out / "log.txt").read_text().count("tune: done before, reused") == said + 1


def test_a_refused_data_change_names_the_counts_that_changed(tmp_path):
    """One photo added to the run's folder: the same load arguments, other counts."""
    from PIL import Image

    from hubensemble.data import load_task
    from hubensemble.resume import _data_change
    from hubensemble.rundir import DataArgs

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
                tmp_path / "d" / c / f"{i}.png")
    args = DataArgs(spec=f"folder:{tmp_path / 'd'}")
    record = {"args": args.to_json(), "task": args.load().to_json()}
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(tmp_path / "d" / "a" / "x.png")
    now = args.load()
    sizes = record["task"]["sizes"]
    got = _data_change(record, now, args)
    assert got.startswith("data (files read: 20 -> 21; ")
    assert all(f"{s}: {sizes[s]} -> {len(getattr(now, s))} examples" in got
               for s in ("train", "val", "test") if sizes[s] != len(getattr(now, s)))
    assert _data_change(record, load_task(f"folder:{tmp_path / 'd'}", seed=0), args) == got


def test_fit_refuses_a_folder_argument_of_another_type_or_empty_before_its_run_folder(
        catalogue, tmp_path, monkeypatch):
    """A new-user check: fit(out=None) said "expected str, bytes or os.PathLike
    object, not NoneType"; fit(out="") took the working folder; fit(cache_dir="") was refused
    only after the run folder was made, leaving run.json, log.txt and the locks. Each is
    refused before anything is written, as the command line's flags refuse them."""
    from hubensemble.options import OptionError

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    with pytest.raises(TypeError, match=r"fit\(\) out must be a folder path .*got None"):
        hubensemble.fit(catalogue, "sklearn:digits", None, progress=False, **FIT)
    with pytest.raises(OptionError, match=r"fit\(\) out must be a path, not empty"):
        hubensemble.fit(catalogue, "sklearn:digits", "", progress=False, **FIT)
    for keyword, said in (("cache_dir", r"cache_dir must be a path, not empty"),
                          ("export", r"fit\(\) export must be a path, not empty")):
        with pytest.raises(OptionError, match=said):
            hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                            **{keyword: ""}, **FIT)
    with pytest.raises(TypeError, match=r"fit\(\) export must be a folder path"):
        hubensemble.fit(catalogue, "sklearn:digits", out, export=3, progress=False, **FIT)
    assert os.listdir(tmp_path) == []


def test_a_tpu_nobody_serves_stops_fit_before_rank(catalogue, tmp_path):
    """`fit --strategy tpu --tpu grpc://HOST:PORT` where no TPU answers found out only at
    tune, after rank had run for minutes (`tune.get_strategy`). It is asked before rank
    (`strategies.check_tpu_serves`): the same error, no ranking, and no run folder left."""
    import socket

    from hubensemble.errors import HubensembleError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"grpc://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "run"
    with pytest.raises(HubensembleError, match=re.escape(f"cannot reach the TPU at '{address}'")):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, strategy="tpu",
                        tpu=address, **FIT)
    assert not (out / "ranking.json").exists()
    assert not out.exists(), sorted(os.listdir(out))  # a refused fit leaves no run folder


def test_changed_rank_or_tune_options_are_named_in_the_callers_words():
    """A Python fit on a folder fitted with other rank or tune options was told "--top-k 1 ->
    2", flags it never typed; it is told fit's keywords, the command line still its flags."""
    from hubensemble.pipeline import FitOptions
    from hubensemble.resume import _changed_options

    previous = json.loads(json.dumps(dataclasses.asdict(FitOptions(top_k=1)), default=str))
    now = FitOptions(top_k=2, budget=8)
    assert _changed_options(previous, now) == ["top_k=1 -> 2", "budget=None -> 8"]
    with command_line():
        assert _changed_options(previous, now) == ["--top-k 1 -> 2", "--budget unset -> 8"]


def test_changed_rank_or_tune_options_are_refused_before_the_data_is_read(
        fitted, catalogue, monkeypatch, in_process):
    """fit on a fitted folder with another --profile loaded the whole data set (minutes for a
    large folder) before refusing what run.json alone says: "the rank or tune options
    (--profile quick -> cpu) changed since RUN was fitted". Refused before any data is read,
    from Python and the command line, in the words of each, in RUN/log.txt too; a --top-k
    change alone still goes on to be selected again (its own tests)."""
    from hubensemble.dataargs import DataArgs

    out, _ = fitted
    before = (out / "run.json").read_bytes()

    def load(self, **kwargs):  # every data load of fit, the command line's and Python's
        raise AssertionError(f"{self.spec} was read")

    monkeypatch.setattr(DataArgs, "load", load)
    with pytest.raises(RunError, match=re.escape(
            "the rank or tune options (profile='quick' -> 'cpu') changed since")):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **{**FIT, "profile": "cpu"})
    code, _, err = in_process("fit", "-q", "--catalogue", catalogue, "--data", "sklearn:digits",
                              "--out", out, "--top-k", "2", "--seed", "0", "--profile", "cpu")
    said = (f"the rank or tune options (--profile quick -> cpu) changed since {out} was "
            f"fitted; use a new --out folder, or pass --restart to discard the old results")
    assert code == 2 and said in err, err
    assert said in (out / "log.txt").read_text()
    assert (out / "run.json").read_bytes() == before
    with pytest.raises(AssertionError, match="sklearn:digits was read"):  # the same options
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)


def test_a_changed_top_k_selects_the_ranking_again_and_keeps_the_candidates_still_planned(
        tmp_path, caplog):
    """--top-k 2 -> 3 on a fitted run was refused ("the rank or tune options (top_k=2 -> 3)
    changed …; use a new --out folder, or pass --restart"): rank's minutes and every
    candidate lost for a choice the ranking already holds. The ranking is selected again
    (no module embedded) and its stage recorded under the new key, so fit reuses it and tune
    adds only the new module's trials. A smaller --top-k while candidates of the modules it
    drops are in RUN/candidates is refused, naming them: the ensemble would still pick them.
    Files only (no fit): run.json and ranking.json as fit records them."""
    from hubensemble.candidate import write_candidate
    from hubensemble.pipeline import FitOptions
    from hubensemble.rank.ranking import Ranking
    from hubensemble.resume import check_inputs
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import (candidates_digest, file_digest, mark, read_keys,
                                          stage_done, stage_keys)

    def fitted_run(path, top_k, selected, candidates):
        run, before = Run(path), FitOptions(top_k=top_k)
        keys = stage_keys("cat", "data", before)
        rows = [{"name": f"m{i}", "status": "ok", "score": 0.9 - i / 10} for i in range(4)]
        Ranking(metric="knn", k=1, rows=rows, selected=selected,
                selection={"rule": "top_k", "top_k": top_k}).write(path)
        run.update(fit={"fingerprints": fingerprints, "keys": keys,
                        "options": json.loads(json.dumps(dataclasses.asdict(before),
                                                         default=str))},
                   rank={"selection": {"rule": "top_k", "top_k": top_k}, "selected": selected})
        mark(run, "rank", keys["rank"], 12.5, digests={"rank": file_digest(run.ranking_json)})
        for trial in candidates:
            write_candidate(run.candidates, {"trial": trial, "status": "ok",
                                             "module": trial.split("-")[-1]},
                            val_probs=np.full((4, 2), 0.5, np.float32),
                            test_probs=np.full((4, 2), 0.5, np.float32))
        mark(run, "tune", keys["tune"], 30.0, reads=read_keys("cat", "data", before)["tune"],
             digests={"tune": candidates_digest(run.candidates),
                      "rank": file_digest(run.ranking_json)})
        return run

    fingerprints = {"catalogue": "cat", "data": "data"}
    run = fitted_run(tmp_path / "up", 2, ["m0", "m1"], ["default-0-m0", "default-4-m1"])
    now = FitOptions(top_k=3)
    keys = stage_keys("cat", "data", now)
    check_inputs(run, fingerprints, keys, now, restart=False)  # refused before
    ranking = json.loads(run.ranking_json.read_text())
    assert ranking["selection"] == {"rule": "top_k", "top_k": 3}
    assert ranking["selected"] == ["m0", "m1", "m2"]
    assert "m2" in run.ranking_csv.read_text()
    assert run.meta()["rank"]["selected"] == ["m0", "m1", "m2"]
    assert stage_done(run, "rank", keys["rank"], {"rank": file_digest(run.ranking_json)})
    assert run.meta()["stages"]["rank"]["reselected"]
    assert not stage_done(run, "tune", keys["tune"])  # tune runs: the new module's trials
    # ... and says why as fit (pipeline._run_stages) asks: "rank ran again above" said of a
    # ranking selected again, not ranked.
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert not stage_done(run, "tune", keys["tune"], {
            "tune": candidates_digest(run.candidates), "rank": file_digest(run.ranking_json)},
            ran=["rank"], reselected=["rank"], reads=read_keys("cat", "data", now)["tune"])
    assert "tune: rank's selection changed above; running tune again" in caplog.text
    assert "ran again" not in caplog.text
    assert sorted(os.listdir(run.candidates)) == ["default-0-m0", "default-4-m1"]  # kept
    # Smaller: m1's candidate would stay in the pool the ensemble selects from.
    run = fitted_run(tmp_path / "down", 2, ["m0", "m1"], ["default-0-m0", "default-4-m1"])
    now = FitOptions(top_k=1)
    with pytest.raises(RunError) as err:
        check_inputs(run, fingerprints, stage_keys("cat", "data", now), now, restart=False)
    assert str(err.value).startswith(
        "top_k=2 -> 1 drops m1 from the selection, but 1 candidate of it is in "
        f"{run.candidates} (e.g. {run.candidates / 'default-4-m1'}), and the ensemble "
        "selects from every candidate there"), err.value
    assert "move those candidate folders out of" in str(err.value)
    assert json.loads(run.ranking_json.read_text())["selected"] == ["m0", "m1"]  # untouched
    # Another option changed too: refused as before, naming both.
    now = FitOptions(top_k=3, budget=8)
    with pytest.raises(RunError, match=re.escape("(top_k=2 -> 3; budget=None -> 8)")):
        check_inputs(run, fingerprints, stage_keys("cat", "data", now), now, restart=False)


def test_a_fit_results_repr_counts_skipped_files_by_why():
    """The data summary, the report and result.summary() say "3 skipped (2 misplaced, 1
    unreadable)" (sniff.skipped_count); the result's one-line repr said "skipped=3 file(s)"
    alone. It counts them by why too."""
    from pathlib import Path

    from hubensemble.pipeline import FitResult

    skipped = [("example.jpg", "a file outside the class folders, not an example"),
               ("stray.png", "a file outside the class folders, not an example"),
               ("cat/broken.png", "a damaged PNG file (Invalid PNG.)")]
    result = FitResult(run_dir=Path("r"), ranking=None, ensemble={}, metrics=None,
                       export_path=Path("r/export"), report_paths=(), robustness=None,
                       stage_seconds={}, skipped=skipped)
    assert "skipped=3 files (2 misplaced, 1 unreadable))" in repr(result), repr(result)


def test_a_result_changed_only_in_its_bookkeeping_leaves_the_stages_reading_it_done(tmp_path):
    # fit's export read ensemble.json whole: a run whose ensemble.json had no "cost" (no
    # cost.json: an older run, or its cost step cut) had its export made again once, when
    # fit's cost stage wrote cost.json and the ensemble stage the same ensemble with its
    # costs (the export counts its own from cost.json). And tune read ranking.json whole: a
    # `hubensemble rank` again by hand (cache hits, other seconds) ran fit's tune again.
    # Files only, as fit records and compares them (pipeline._run_stages).
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import file_digest, stage_done, view_digest

    run = Run(tmp_path / "run")
    ensemble = {"objective": "ce", "members": [{"trial": "t0", "weight": 1.0}],
                "val": {"accuracy": 0.9}}
    atomic_write_json(run.ensemble_json, ensemble)
    rows = [{"name": "m0", "score": 0.8, "seconds": 1.25, "cache_hit": False},
            {"name": "m1", "score": 0.7, "seconds": 2.5, "cache_hit": False}]
    atomic_write_json(run.ranking_json, {"metric": "knn", "modules": rows, "selected": ["m0"]})
    first_ranking = file_digest(run.ranking_json)
    run.update(stages={
        "rank": {"key": "k", "done": True, "seconds": 1.0, "digests": {
            "rank": first_ranking, "views": {"rank": view_digest("rank", run.ranking_json)}}},
        # as a fit before views recorded its export: the file's digest alone
        "export": {"key": "k", "done": True, "seconds": 1.0,
                   "digests": {"export": "e", "ensemble": file_digest(run.ensemble_json)}},
        "tune": {"key": "k", "done": True, "seconds": 1.0, "digests": {
            "tune": "t", "rank": file_digest(run.ranking_json),
            "views": {"rank": view_digest("rank", run.ranking_json)}}}})

    def done(stage, read, ran=()):
        path = {"ensemble": run.ensemble_json, "rank": run.ranking_json}[read]
        own = {"export": "e", "tune": "t"}[stage]
        return stage_done(run, stage, "k", {stage: own, read: file_digest(path)}, ran=ran,
                          views={read: view_digest(read, path)})

    atomic_write_json(run.ensemble_json, {**ensemble, "cost": {"ensemble": {"gflops": 0.1}}})
    assert done("export", "ensemble", ran=["cost", "ensemble"])
    atomic_write_json(run.ensemble_json, {**ensemble, "members": [{"trial": "t1", "weight": 1}]})
    assert not done("export", "ensemble", ran=["cost", "ensemble"])
    atomic_write_json(run.ranking_json, {"metric": "knn", "modules": [
        {**r, "seconds": 0.01, "cache_hit": True} for r in rows], "selected": ["m0"]})
    assert done("tune", "rank")
    # ... and ran fit's rank again too: its own result differs from its record in those
    # fields alone (stagerecords.PROVENANCE), so it is reused.
    assert stage_done(run, "rank", "k", {"rank": file_digest(run.ranking_json)},
                      views={"rank": view_digest("rank", run.ranking_json)})
    atomic_write_json(run.ranking_json, {"metric": "knn", "modules": rows, "selected": ["m1"]})
    assert not done("tune", "rank")
    assert not stage_done(run, "rank", "k", {"rank": file_digest(run.ranking_json)},
                          views={"rank": view_digest("rank", run.ranking_json)})


def test_a_cost_file_rewritten_by_another_version_with_the_same_figures_keeps_the_ensemble(
        tmp_path):
    # `hubensemble cost` by hand with a newer hubensemble changed only cost.json's
    # "written_by" (and, of a newer counting rule with the same figures, its "count_version"),
    # and fit then made the ensemble and the export again: BOOKKEEPING covered ranking.json's
    # timings and ensemble.json's costs, not cost.json's labels (fit's own recount kept them
    # by `same_costs` alone). Files only, as fit records and compares them.
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import (BOOKKEEPING, file_digest, stage_done, view_digest,
                                          without_bookkeeping)

    run = Run(tmp_path / "run")
    cost = {"format": "hubensemble-cost", "format_version": 1, "count_version": 2,
            "written_by": "0.4.0", "machine": {"cpu": "x"},
            "candidates": {"t0": {"gflops": 0.5, "params": 10}}, "failed": {}}
    atomic_write_json(run.cost_json, cost)
    run.update(stages={"ensemble": {"key": "k", "done": True, "seconds": 1.0, "digests": {
        "ensemble": "e", "tune": "t", "cost": file_digest(run.cost_json),
        "views": {"cost": view_digest("cost", run.cost_json)}}}})

    def done():
        return stage_done(run, "ensemble", "k", {"ensemble": "e", "tune": "t",
                                                 "cost": file_digest(run.cost_json)},
                          views={"cost": view_digest("cost", run.cost_json)})

    atomic_write_json(run.cost_json, {**cost, "written_by": "0.5.0"})
    assert done()
    atomic_write_json(run.cost_json, {**cost, "written_by": "0.5.0", "count_version": 3})
    assert done()
    atomic_write_json(run.cost_json, {**cost, "candidates": {"t0": {"gflops": 0.6,
                                                                    "params": 10}}})
    assert not done()
    # The cost stage itself: its own cost.json rewritten with only those labels changed ran
    # it again (the stages after it were spared, not it). Its record holds its own view
    # (PROVENANCE fields left out), as fit's (pipeline._run_stages) does.
    atomic_write_json(run.cost_json, cost)
    run.update(stages={**run.meta()["stages"], "cost": {
        "key": "k", "done": True, "seconds": 1.0, "digests": {
            "cost": file_digest(run.cost_json), "tune": "t",
            "views": {"cost": view_digest("cost", run.cost_json, own=True)}}}})

    def own():
        return stage_done(run, "cost", "k", {"cost": file_digest(run.cost_json), "tune": "t"},
                          views={"cost": view_digest("cost", run.cost_json, own=True)})

    atomic_write_json(run.cost_json, {**cost, "written_by": "0.5.0"})
    assert own()
    atomic_write_json(run.cost_json, {**cost, "machine": {"cpu": "y"}})
    assert not own()
    # ensemble.json's "cost" is bookkeeping for the export alone: the report reads it, so
    # the ensemble stage whose own file's costs differ runs again.
    from hubensemble.stagerecords import PROVENANCE

    assert "ensemble" not in PROVENANCE and set(PROVENANCE) < set(BOOKKEEPING)
    atomic_write_json(run.ensemble_json, {"members": [{"trial": "t0"}], "cost": {"a": 1}})
    assert view_digest("ensemble", run.ensemble_json, own=True) == file_digest(
        run.ensemble_json) != view_digest("ensemble", run.ensemble_json)
    # The one table: a ranking row's timings, the fields' order kept for the rest.
    row = {"name": "m0", "seconds": 1.0, "score": 0.5, "cache_hit": True}
    assert without_bookkeeping("rank", {"modules": [row], "k": 5}) == {
        "modules": [{"name": "m0", "score": 0.5}], "k": 5}
    assert set(BOOKKEEPING) == {"rank", "cost", "ensemble"}


def test_a_members_candidate_or_cost_rewritten_under_the_same_ensemble_redoes_the_export(
        tmp_path, caplog):
    """The export rebuilds its members from their candidate folders (trial.json, weights)
    and counts its cost record from cost.json, but fit compared ensemble.json alone: a
    member's weights file replaced by hand, or its candidate written again by a re-run tune
    (a new trial.json, the same ensemble.json), kept the old export (a real fit on tiny
    modules: 2.5 s and 3.5 s, every stage after tune "done before, reused"), as did a
    recount with other figures. Files only, as fit records and compares them
    (pipeline._run_stages): the export's record holds each member's digest ("members")
    and cost.json's view."""
    from hubensemble.candidate import write_candidate
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import (file_digest, mark, members_digest, stage_done,
                                          view_digest)

    run = Run(tmp_path / "run")
    for i, trial in enumerate(("t0", "t1", "t2")):
        write_candidate(run.candidates, {"trial": trial, "status": "ok", "module": "m0"},
                        val_probs=np.full((4, 2), 0.5, np.float32),
                        save_weights=lambda path, i=i: open(path, "wb").write(bytes([i]) * 64))
    atomic_write_json(run.ensemble_json, {"members": [{"trial": "t0"}, {"trial": "t1"}]})
    cost = {"written_by": "0.4.0", "candidates": {"t0": {"gflops": 0.5}}}
    atomic_write_json(run.cost_json, cost)

    def now():
        return {"export": "e", "ensemble": file_digest(run.ensemble_json),
                "cost": file_digest(run.cost_json), "members": members_digest(run)}

    def views():
        return {"ensemble": view_digest("ensemble", run.ensemble_json),
                "cost": view_digest("cost", run.cost_json)}

    mark(run, "export", "k", 1.0, digests={**now(), "views": views()})

    def done():
        return stage_done(run, "export", "k", now(), views=views())

    assert done()
    weights = run.candidates / "t0" / "weights.weights.h5"
    weights.write_bytes(b"x" * 64)  # by hand: trial.json unchanged
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert not done()
    assert (f"export: the candidate files of member t0 in {run.candidates} (trial.json, "
            "weights) are not the ones it read (rewritten since: by a tune run again, or by "
            "hand); running export again") in caplog.text
    # Another command's export too (`hubensemble export` by hand before or after the new
    # weights: its metadata cannot tell): both said, and fit does not keep that export as
    # its own (adopt_export compares ensemble.json alone; it was kept, of the old weights).
    from hubensemble.pipeline import _members_rewritten

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        assert not stage_done(run, "export", "k", {**now(), "export": "e2"}, views=views())
    assert ("export: the result of export is not the one fit recorded (another command "
            f"rewrote it since); the candidate files of member t0 in {run.candidates}"
            in caplog.text)
    recorded = run.meta()["stages"]["export"]["digests"]
    assert _members_rewritten(recorded, now())
    weights.write_bytes(bytes([0]) * 64)
    assert done() and not _members_rewritten(recorded, now())
    trial = run.candidates / "t1" / "trial.json"  # a tune again: a new record, same weights
    atomic_write_json(trial, {**json.loads(trial.read_text()), "seconds": 2.0})
    assert not done()
    atomic_write_json(trial, {k: v for k, v in json.loads(trial.read_text()).items()
                              if k != "seconds"})
    assert done()
    other = run.candidates / "t2" / "weights.weights.h5"  # no member: not read
    other.write_bytes(b"y" * 64)
    assert done()
    # cost.json: its labels are no figure (BOOKKEEPING); its figures are.
    atomic_write_json(run.cost_json, {**cost, "written_by": "0.5.0"})
    assert done()
    atomic_write_json(run.cost_json, {**cost, "candidates": {"t0": {"gflops": 0.6}}})
    assert not done()
    # A record of a hubensemble before these were compared: not compared now, as then.
    weights.write_bytes(b"x" * 64)
    mark(run, "export", "k", 1.0, digests={"export": "e", "ensemble": now()["ensemble"],
                                           "views": {"ensemble": views()["ensemble"]}})
    assert done()
    assert not _members_rewritten(run.meta()["stages"]["export"]["digests"], now())


def test_a_changed_top_k_with_modules_does_not_say_tune_adds_trials(tmp_path, capsys):
    """fit --modules A B C --top-k 2, then --top-k 3: --modules, not the selection, is what
    tune trains, and it tuned the same modules in 0.5 s, but the note said "tune adds the
    trials of r6x1-expert-shapes only" (a quick fit of 3 zoo modules). Files
    only (no fit), as test_a_changed_top_k_selects_the_ranking_again_and_keeps_the_candidates_
    still_planned."""
    from hubensemble.pipeline import FitOptions
    from hubensemble.rank.ranking import Ranking
    from hubensemble.resume import check_inputs
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import file_digest, mark, stage_keys

    fingerprints = {"catalogue": "cat", "data": "data"}
    run, before = Run(tmp_path), FitOptions(top_k=2, modules=["m0", "m1", "m2"])
    keys = stage_keys("cat", "data", before)
    rows = [{"name": f"m{i}", "status": "ok", "score": 0.9 - i / 10} for i in range(4)]
    Ranking(metric="knn", k=1, rows=rows, selected=["m0", "m1"],
            selection={"rule": "top_k", "top_k": 2}).write(tmp_path)
    run.update(fit={"fingerprints": fingerprints, "keys": keys,
                    "options": json.loads(json.dumps(dataclasses.asdict(before), default=str))},
               rank={"selection": {"rule": "top_k", "top_k": 2}, "selected": ["m0", "m1"]})
    mark(run, "rank", keys["rank"], 12.5, digests={"rank": file_digest(run.ranking_json)})
    now = FitOptions(top_k=3, modules=["m0", "m1", "m2"])
    check_inputs(run, fingerprints, stage_keys("cat", "data", now), now, restart=False,
                 progress=True)
    said = capsys.readouterr().err
    assert "--top-k 2 -> 3" in said or "top_k=2 -> 3" in said, said
    assert "tune adds the trials of" not in said, said
    assert "--modules" in said or "modules=" in said, said


def test_a_changed_top_k_leaves_the_stages_whose_inputs_are_unchanged_done(tmp_path):
    """fit --modules A B C --top-k 2, then --top-k 3, then --top-k 2: each fit exported
    again (100 s and 114 s) a byte-identical ensemble.json, because the stage
    keys chain every option into every later stage. A stage after rank is now also done
    under its `read_keys` key (the options of tune and after, not rank's) while the results
    it reads are unchanged; a changed ensemble.json, an ensemble option, or a record of a
    hubensemble before `read_keys` (no "reads": matched by its key alone) still runs it.
    Files only, as fit records and compares them (pipeline._run_stages)."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.pipeline import FitOptions
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import (file_digest, mark, read_keys, stage_done,
                                          stage_keys, view_digest)

    run = Run(tmp_path / "run")
    atomic_write_json(run.ensemble_json, {"objective": "ce", "members": [{"trial": "t0"}]})
    before = FitOptions(top_k=2, modules=["m0", "m1", "m2"])
    keys, reads = stage_keys("cat", "data", before), read_keys("cat", "data", before)

    def digests():
        return {"export": "e", "ensemble": file_digest(run.ensemble_json)}

    def views():
        return {"ensemble": view_digest("ensemble", run.ensemble_json)}

    def done(options, record_reads=True):
        mark(run, "export", keys["export"], 1.0, digests={**digests(), "views": views()},
             **({"reads": reads["export"]} if record_reads else {}))
        return stage_done(run, "export", stage_keys("cat", "data", options)["export"],
                          digests(), views=views(),
                          reads=read_keys("cat", "data", options)["export"])

    now = dataclasses.replace(before, top_k=3)
    assert stage_keys("cat", "data", now)["export"] != keys["export"]  # chained: stale
    assert read_keys("cat", "data", now)["export"] == reads["export"]
    assert read_keys("cat", "data", now)["rank"] != reads["rank"]
    assert done(now)  # ran the export again before
    assert done(before)
    assert not done(now, record_reads=False)  # an older record: by its key, as before
    assert done(before, record_reads=False)  # ... which a fit with the same options reuses
    assert not done(dataclasses.replace(now, max_members=1))  # an option the export follows
    mark(run, "export", keys["export"], 1.0, reads=reads["export"],
         digests={**digests(), "views": views()})
    atomic_write_json(run.ensemble_json, {"objective": "ce", "members": [{"trial": "t1"}]})
    assert not stage_done(run, "export", stage_keys("cat", "data", now)["export"], digests(),
                          views=views(), reads=read_keys("cat", "data", now)["export"])
    # Without the results' digests (fit's check before rank), the key alone decides.
    assert not stage_done(run, "export", stage_keys("cat", "data", now)["export"],
                          reads=read_keys("cat", "data", now)["export"])


@pytest.mark.slow
def test_distill_refuses_a_student_batch_the_replicas_cannot_share(fitted, tmp_path):
    """distill under a two-replica MirroredStrategy with a student batch of 7: a start from a
    member's weights trained into Keras' failing fit ("Inputs to operation AddN … must have
    the same size and shape"), as tune's trials did before it checked. Refused before
    training, with tune's words (`strategies.check_batch_divides`), whichever start. A process
    of its own: the CPU is split in two before TensorFlow starts (tests/test_hub.py's way)."""
    run = tmp_path / "run"
    shutil.copytree(fitted[0], run)
    code = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(\n"
        "    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(2)])\n"
        "from hubensemble.distill import run_distill\n"
        "from hubensemble.errors import HubensembleError\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "assert strategy.num_replicas_in_sync == 2\n"
        "for init in ('member', 'module'):\n"
        "    try:\n"
        "        run_distill(sys.argv[1], init=init, train_batch_size=7, steps_scale=0.05,\n"
        "                    strategy=strategy, progress=False)\n"
        "    except HubensembleError as e:\n"
        "        print(init, 'REFUSED', ' '.join(str(e).split()))\n"
        "    else:\n"
        "        print(init, 'TRAINED')\n")
    out = bounded_by_cpu([sys.executable, "-c", code, str(run)], capture_output=True,
                         text=True, cpu=240)
    assert out.returncode == 0, out.stderr[-2000:]
    said = ("REFUSED the training batch of 7 does not divide among the 2 replicas of "
            "MirroredStrategy: Keras' fit cannot train a batch split unevenly over them")
    lines = out.stdout.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["member", "module"], out.stdout
    for line in lines:
        assert said in line and "pass train_batch_size=6 or 8 (a multiple of 2)" in line, line
    assert not (run / "distill").exists() or not os.listdir(run / "distill")


def test_a_stage_run_on_its_own_records_its_time_for_the_report(catalogue, tmp_path,
                                                                in_process):
    """`hubensemble rank --catalogue C --data D --out R` then `hubensemble report --run R`:
    the report's "Time per stage" said "run.json records no stage timings" (only fit's
    stages recorded seconds). rank's time now is in run.json (`refresh.record_stage_time`),
    between the seconds its modules took (ranking.json's rows, measured inside rank) and the
    command's wall clock, measured here; a rank again records the last run's time."""
    import re as _re

    from hubensemble.report.fmt import duration

    out = tmp_path / "run"
    for attempt in range(2):  # the second: a rank again on the same folder
        start = time.monotonic()
        code, _, err = in_process("rank", "--catalogue", catalogue, "--data", "sklearn:digits",
                                  "--out", out, "--top-k", "2", "--profile", "quick", "-q")
        wall = time.monotonic() - start
        assert code == 0, err
        record = json.loads((out / "run.json").read_text())["stages"]["rank"]
        rows = json.loads((out / "ranking.json").read_text())["modules"]
        inside = sum(r["seconds"] for r in rows if r.get("seconds"))
        assert inside > 0 and inside - 0.01 <= record["seconds"] <= wall + 0.01, (record, wall)
        assert record["command"] == "rank" and "done" not in record and "key" not in record
    code, _, err = in_process("report", "--run", out)
    assert code == 0, err
    md = (out / "report.md").read_text()
    assert "no stage timings" not in md
    times = md.split("Time per stage", 1)[1].split("\n#", 1)[0]
    row = next(x for x in times.splitlines() if x.startswith("| rank "))
    assert duration(record["seconds"]) in row and "ran on its own (rank)" in row, times
    assert _re.search(r"\| total \| " + _re.escape(duration(record["seconds"])), times)


@pytest.mark.slow
def test_an_ensemble_run_on_its_own_after_fit_updates_its_time_and_fit_still_reuses(
        fitted, catalogue, tmp_path):
    """run_ensemble (the function of `hubensemble ensemble`) on a fitted run: ensemble's
    record in run.json takes that run's seconds (within its call's wall clock), keeps fit's
    key, reads, digests and done (fit's reuse check means what it did), and the report says
    it ran on its own. The same ensemble again: the next fit reuses every stage and records
    the stage as reused, with the seconds of the ensemble the run holds."""
    from hubensemble.ensemble import run_ensemble
    from hubensemble.report import write_report

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    fits = json.loads((out / "run.json").read_text())["stages"]["ensemble"]
    start = time.monotonic()
    run_ensemble(out)
    wall = time.monotonic() - start
    record = json.loads((out / "run.json").read_text())["stages"]["ensemble"]
    assert 0 < record["seconds"] <= wall + 0.01 and record["command"] == "ensemble"
    # (and "fit_key", the last fit's key of the stage then, which tells an ensemble on its own
    # after a fit refused for its budget from the fit's options: budgetrefusal.newer_first)
    assert {k: v for k, v in record.items()
            if k not in ("seconds", "command", "reused", "fit_key")} == {
        k: v for k, v in fits.items() if k not in ("seconds", "reused")}
    assert record["fit_key"] == json.loads((out / "run.json").read_text())["fit"]["keys"][
        "ensemble"]
    assert "reused" not in record
    times = write_report(out)[0].read_text().split("Time per stage", 1)[1].split("\n#", 1)[0]
    assert "ran on its own (ensemble)" in next(
        x for x in times.splitlines() if x.startswith("| ensemble ")), times
    again = hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **FIT)
    stages = json.loads((out / "run.json").read_text())["stages"]
    assert all(stages[s]["reused"] for s in ("rank", "tune", "ensemble", "export", "evaluate"))
    assert stages["ensemble"]["seconds"] == record["seconds"] and "command" not in stages[
        "ensemble"]
    assert again.stage_seconds["ensemble"] == record["seconds"]


@pytest.mark.slow
def test_an_evaluation_run_on_its_own_records_the_seconds_it_measured(fitted, tmp_path):
    """evaluate takes no run lock (it reads the export): writing RUN/robustness.json
    (`write_evaluation`, as `evaluate --out RUN/robustness.json` does) records evaluate's time
    in run.json as the seconds the evaluation measured itself (its result's "seconds"),
    within the call's wall clock, fit's reuse fields kept; it recorded nothing."""
    from hubensemble.evaluate import evaluate_model, load_evaluation_task, write_evaluation

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    fits = json.loads((out / "run.json").read_text())["stages"]["evaluate"]
    start = time.monotonic()
    task = load_evaluation_task(out / "export", "sklearn:digits")
    result = evaluate_model(out / "export", task, corruptions=["contrast"],
                            severities=[1], progress=False)
    write_evaluation(result, out / "robustness.json")
    wall = time.monotonic() - start
    record = json.loads((out / "run.json").read_text())["stages"]["evaluate"]
    assert record["seconds"] == round(result["seconds"], 2) <= wall + 0.01
    assert record["command"] == "evaluate" and record["seconds"] != fits["seconds"]
    assert record["key"] == fits["key"] and record["digests"] == fits["digests"]


def test_fit_says_it_does_not_redo_an_unreadable_trial_its_tune_did_not_plan(tmp_path, caplog):
    """fit warned "tune: candidates/default-0006-m: trial.json unreadable (…); running tune
    again" while its tune (--budget 4: 0000-0003) never planned that trial of an earlier
    `tune` of 8, and left it as it was without a word. After its tune, fit says it does not
    redo it and gives the command that does (sweepwords.redo_words: a budget whose plan holds
    it). Fails before: no such warning."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.pipeline import _say_not_redone
    from hubensemble.rundir import Run

    run = Run(tmp_path / "run")
    planned = [f"default-000{i}-m" for i in range(4)]
    fileio.atomic_write_json(run.meta_path, {"tune": {"sweeps": {"default": {
        "budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json(), "trials": planned}}}})
    for trial in planned + ["default-0006-m"]:
        (run.candidates / trial).mkdir(parents=True)
        (run.candidates / trial / "trial.json").write_text(
            '{"trial": "cut' if trial.endswith("6-m") else json.dumps(
                {"trial": trial, "module": "m", "status": "failed", "reason": "x"}))
    with command_line(), caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
        _say_not_redone(run)
    (said,) = [r.getMessage() for r in caplog.records]
    assert said.startswith(
        "tune: candidates/default-0006-m has no readable trial.json, and fit's tune planned 4 "
        "trials without it, so fit does not redo it"), said  # counted (text.counted)
    assert said.endswith(f"run `hubensemble tune --run {run.path} --sweep default --budget 8 "
                         "--profile quick` (it redoes the trial), then fit again"), said


def test_a_fits_plan_and_closing_line_give_one_budget_to_tune_every_module(
        catalogue, tmp_path, caplog):
    """fit --top-k 2 --budget 4 leaves the second module without a trial. Its plan's warning
    said "pass budget=8 (or budget=None)", its closing summary "pass budget=8" (read once
    run.json records budget 4, where `tune --run RUN` without --budget resumes that budget
    4: sweepwords.resumed_call): one fit, two ways on. Both say "pass budget=8", right for
    fit and tune alike. Fails before: the plan's "(or budget=None)"."""
    from hubensemble.report import summary_table

    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, budget=4,
                        **FIT_CLEAN)
    said = [r.getMessage() for r in caplog.records if "gets no trial" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith("pass budget=8 to tune every one"), said
    table = summary_table(out)
    assert "pass budget=8 to tune every one" in table and "budget=None" not in table, table


def test_a_deleted_trial_json_is_not_promised_a_redo_fits_tune_may_not_plan(tmp_path):
    """After `fit --budget 4`, `tune --run R --budget 8` and default-0006's trial.json
    deleted, fit again warned "…; delete the folder and run its sweep's tune again, which
    redoes the trial; running tune again" (stagerecords.damage, the scan's words), then
    that its tune of 4 does not redo 0006 (the test above). The damage words promise
    nothing; the warning after fit's tune names the command. Fails before: "redoes the
    trial" in the damage."""
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import damage

    run = Run(tmp_path / "run")
    (run.candidates / "default-0006-m").mkdir(parents=True)
    (run.candidates / "default-0007-m").mkdir(parents=True)
    (run.candidates / "default-0007-m" / "trial.json").write_text('{"trial": "cut')
    said = damage(run, "tune")
    assert said.startswith("candidates/default-0006-m: its trial record trial.json is "
                           "missing (deleted since tune wrote the folder"), said
    assert "redo" not in said and "candidates/default-0007-m: trial.json unreadable" in said


def _run_tuned_past_fits_plan(tmp_path, *, cut=(), digests=None):
    """A run whose fit planned default-0000..0003 (--budget 4, its tune stage record's
    "trials") and whose later `tune --budget 8` wrote default-0000..0007, each a failed
    trial's folder; `cut`: the folders whose trial.json is cut short; `digests`: the tune
    stage record's."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.rundir import Run

    run = Run(tmp_path / "run")
    planned = [f"default-000{i}-m" for i in range(4)]
    last = planned + [f"default-000{i}-m" for i in range(4, 8)]
    fileio.atomic_write_json(run.meta_path, {
        "tune": {"sweeps": {"default": {"budget": 8, "seed": 0, "trials": last,
                                        "profile": PROFILES["quick"].to_json()}}},
        "stages": {"tune": {"key": "k", "done": True, "trials": {"default": planned},
                            **({"digests": digests} if digests else {})}}})
    for trial in last:
        (run.candidates / trial).mkdir(parents=True)
        (run.candidates / trial / "trial.json").write_text(
            '{"trial": "cut' if trial in cut else json.dumps(
                {"trial": trial, "module": "m", "status": "failed", "reason": "x"}))
    return run


def test_fit_says_before_its_tune_which_unreadable_trials_its_plan_does_not_hold(tmp_path):
    """fit said "tune: candidates/default-0006-m: trial.json unreadable (…); running tune
    again" before a tune whose plan (--budget 4: 0000-0003, its stage record's "trials")
    does not hold that trial of an earlier `tune --budget 8`. Such a folder is said as
    outside fit's plan, with the command that redoes it (sweepwords.redo_words), and named
    in `outside` (the post-tune warning then says it no more); a folder of the plan keeps
    its words; after a rank run again (its plan may differ) nothing is claimed. Fails
    before: no words of fit's plan."""
    from hubensemble.stagerecords import damage

    run = _run_tuned_past_fits_plan(tmp_path, cut=("default-0002-m", "default-0006-m"))
    outside = []
    with command_line():
        said = damage(run, "tune", outside=outside)
    inside, out = said.split("; candidates/default-0006-m: ")
    assert inside.startswith("candidates/default-0002-m: trial.json unreadable") and \
        "fit's plan" not in inside, said
    assert out.startswith("trial.json unreadable"), said
    assert out.endswith(
        "; fit's plan (4 trials of sweep default) does not hold it, so fit's tune leaves it as "
        f"it is: delete {run.candidates / 'default-0006-m'} and run `hubensemble tune --run "
        f"{run.path} --sweep default --budget 8 --profile quick` (it redoes the trial), then "
        "fit again"), said
    assert outside == ["default-0006-m"]
    with command_line():
        again = damage(run, "tune", ran=["rank"], outside=outside)
    assert "fit's plan" not in again and outside == ["default-0006-m"], again


def test_a_gflops_limit_no_module_meets_is_refused_before_fits_sweep(catalogue, tmp_path):
    """`fit … --max-gflops 1e-7` was refused by the ensemble only after the whole tune (31 s
    on digits, hours on real data): every candidate costs at least its module with its head,
    so fit's tune step refuses before the sweep (cost.stage.check_budget_before_tune) and
    no candidate is trained. A limit the cheapest selected module meets goes on to the
    sweep. Fails before: candidates were trained, then 'no candidate fits'."""
    out = tmp_path / "run"
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT_CLEAN, max_gflops=1e-7))
    said = str(refused.value)
    assert said.startswith("no module fits max_gflops=1e-07: the cheapest of the 2 modules "
                           "to tune, "), said
    assert not any((out / "candidates").glob("*/trial.json"))
    ranking = json.loads((out / "ranking.json").read_text())
    assert len(ranking["selected"]) == FIT["top_k"]


def test_a_fit_refused_before_its_sweep_records_why_and_no_stopped_seconds(catalogue, tmp_path):
    """A fit refused before its sweep for a --max-gflops no module meets wrote no record of
    the refusal (an ensemble's budget refusal has one: `budgetrefusal`), so neither the
    report nor `hubensemble report` said why the run stopped; and its tune stage's seconds
    were counted as those of "earlier runs that stopped in it", which a refusal is not. The
    refusal is recorded (run.json "stages" -> "tune" -> "refused": its limits and words),
    the report's "Time per stage" says it, and no seconds are counted as a stopped run's.
    Fails before: no record; "interrupted_seconds" held tune's."""
    from hubensemble import report
    from hubensemble.budgetrefusal import refusal

    out = tmp_path / "run"
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT_CLEAN, max_gflops=1e-7))
    meta = json.loads((out / "run.json").read_text())
    recorded = refusal(meta, stage="tune")
    assert recorded is not None, meta.get("stages")
    assert recorded["limits"]["max_gflops"] == 1e-7 and recorded["command"] == "fit"
    assert recorded["why"] == str(refused.value)
    assert "tune" not in (meta.get("interrupted_seconds") or {}), meta
    md = report.write_report(out)[0].read_text()
    assert "refused before its sweep for its inference budget (max_gflops=1e-07): no module " \
        "fits max_gflops=1e-07" in md, md
    assert "stopped in it" not in md, md


def test_a_budget_no_candidate_of_a_finished_fit_meets_is_refused_before_tensorflow(
        catalogue, fitted, tmp_path):
    """`fit … --max-gflops 1e-9` on a finished fit's folder (the same rank and tune options:
    its candidates are reused) imported TensorFlow (12 s), reused every stage, and the
    ensemble refused it, saying only "raise a limit". RUN/cost.json alone says no candidate
    fits: refused before TensorFlow, in the stage's words, with each flag and the value that
    passes, or dropping the flag; recorded as the stage records it. That value passes.
    Fails before: TensorFlow imported, no value named."""
    from hubensemble.budgetrefusal import refusal
    from hubensemble.cost.records import read_run_costs
    from hubensemble.fitbudget import check_fit_budget
    from hubensemble.pipeline import FitOptions
    from test_cli import each_in_one_process

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    fit = ["fit", "--catalogue", catalogue, "--data", "sklearn:digits", "--out", out,
           "--profile", "quick", "--top-k", "2", "--seed", "0"]
    (code, _, err, tensorflow), = each_in_one_process(fit + ["--max-gflops", "1e-9"])
    assert (code, tensorflow) == (2, False), err
    costs = read_run_costs(out).costs
    trial, cost = min(costs.items(), key=lambda kv: (kv[1].gflops, kv[0]))
    assert (f"no candidate fits the inference budget (--max-gflops 1e-09): the cheapest "
            f"candidate in GFLOPs, {trial}, needs {cost.gflops:.4g} GFLOPs (limit 1e-09); "
            "pass --max-gflops ") in err, err
    assert err.rstrip().endswith(f"or more ({trial}'s, the least that admits a candidate), "
                                 "or drop the flag"), err
    passes = float(err.split("pass --max-gflops ")[1].split(" ")[0])
    assert passes >= cost.gflops
    recorded = refusal(json.loads((out / "run.json").read_text()))
    assert recorded["command"] == "fit" and recorded["limits"]["max_gflops"] == 1e-9
    check_fit_budget(out, FitOptions(**FIT, max_gflops=passes), restart=False)  # it passes
    # Two limits, one over (Python's words): "the limit", the one it names, is left out
    # (cost.budget.raise_words, the ensemble stage's rule); it said "the limits" whenever
    # two limits were set.
    with pytest.raises(RunError) as one_over:
        check_fit_budget(out, FitOptions(**FIT, max_gflops=1e-9, max_latency_ms=1e9),
                         restart=False)
    assert str(one_over.value).endswith(
        f"pass max_gflops={passes:g} or more ({trial}'s, the least that admits a candidate),"
        " or leave the limit out"), one_over.value
    check_fit_budget(out, FitOptions(**FIT, max_gflops=1e-9), restart=True)  # a new sweep


def test_fits_warning_on_folders_outside_its_plan_alone_does_not_end_running_tune_again(
        tmp_path, caplog):
    """fit said "…does not hold it, so fit's tune leaves it as it is: delete … then fit
    again; running tune again" when every damaged folder was outside its plan, words that
    contradict each other (a new user's check): the line ends with what its tune does then.
    A damaged folder of the plan beside it keeps "running tune again". Fails before: the
    old ending."""
    from hubensemble.stagerecords import stage_done

    run = _run_tuned_past_fits_plan(tmp_path, digests={"tune": "then"})
    for cut, ending in ((["default-0006-m"], "; fit's tune goes on with its own plan's trials"),
                        (["default-0002-m", "default-0006-m"], "; running tune again")):
        for trial in cut:
            (run.candidates / trial / "trial.json").write_text('{"trial": "cut')
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hubensemble.pipeline"):
            assert not stage_done(run, "tune", "k", digests={"tune": "now"}, outside=[])
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and said[0].endswith(ending), said
        assert said[0].count("running tune again") == (ending == "; running tune again"), said


def test_a_change_after_a_fit_refused_before_its_sweep_says_what_the_run_holds(
        catalogue, tmp_path):
    """A fit refused before its sweep (a --max-gflops no module meets) leaves a ranking and
    no candidate; a fit with other tune options on that folder was refused "… changed since
    RUN was fitted", of a run no sweep ran in. The refusal says what the run holds
    (resume._fitted). Fails before: "since RUN was fitted"."""
    out = tmp_path / "run"
    with pytest.raises(RunError):
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT_CLEAN, max_gflops=1e-7))
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT_CLEAN, max_gflops=1e-7, budget=4))
    said = str(refused.value)
    assert said.startswith("the rank or tune options (budget=None -> 4) changed since "
                           f"{out}'s last fit, which stopped before its sweep finished (the "
                           "run holds a ranking and no candidates); use a new out folder"), said


def test_the_gflops_check_before_fits_sweep_costs_the_modules_its_plan_tunes(
        catalogue, tmp_path):
    """fit's check of --max-gflops before its sweep costed the ranking's selected modules,
    not those its plan tunes: a seeds sweep tunes the best generalist (m0 here) whatever the
    selection (m1), so a limit only m0 meets was refused ("the cheapest … m1"), and one only
    m1 met went on to a sweep the ensemble then refused (pipeline.planned_specs). Fails
    before: m1 named."""
    out = tmp_path / "run"
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False,
                        **dict(FIT_CLEAN, top_k=1, sweep="seeds", max_gflops=1e-9))
    ranking = json.loads((out / "ranking.json").read_text())
    assert ranking["selected"] == ["m1"]  # the case: the plan's generalist is not selected
    said = str(refused.value)
    assert said.startswith("no module fits max_gflops=1e-09: the one module to tune, m0, "
                           "needs "), said


@pytest.mark.parametrize("edited, field", [("oops", '"fit"'),
                                           ({"options": "quick"}, '"fit" -> "options"'),
                                           ({"keys": ["k"]}, '"fit" -> "keys"')])
def test_a_fit_record_edited_by_hand_is_named_with_the_way_on(catalogue, tmp_path, edited,
                                                              field):
    """run.json's "fit" (or its options, fingerprints or keys) edited by hand into another
    type stopped the next fit with "AttributeError: 'str' object has no attribute 'get'",
    and the words of its fit command with a TypeError. The refusal names run.json, the
    field and the way on (resume.fit_record). Fails before: the AttributeError."""
    from hubensemble.fileio import atomic_write_json
    from hubensemble.rerun import fit_command

    out = tmp_path / "run"
    kw = dict(FIT_CLEAN, max_gflops=1e-7)
    with pytest.raises(RunError):  # a run with a ranking, refused before its sweep
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **kw)
    meta = json.loads((out / "run.json").read_text())
    atomic_write_json(out / "run.json", {**meta, "fit": edited})
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, progress=False, **kw)
    said = str(refused.value)
    assert said.startswith(f"{out / 'run.json'}: its {field} is "), said
    assert said.endswith("not the record fit writes (edited by hand?), so fit cannot tell "
                         "what changed since; restore run.json from a copy, or use a new out "
                         "folder, or pass restart=True to discard the old results"), said
    assert fit_command(out, {**meta, "fit": edited}, restart=True).startswith(
        "hubensemble fit --restart --catalogue ")


def test_an_export_folder_changed_during_the_fit_is_named_in_fits_words(
        catalogue, fitted, tmp_path, monkeypatch, in_process):
    """fit(export=E) whose folder E came to hold a file of the user's after fit's own check
    (before rank) was refused by export's check in export's words: "choose another out_dir
    folder" to Python, "--out" to the command line, neither of which its caller typed.
    export is checked again before its stage in fit's words: export (--export), or out
    (--out) for the default RUN/export. Fails before: "out_dir" and "--out"."""
    from hubensemble import resume

    out, mine = tmp_path / "run", tmp_path / "E"
    shutil.copytree(fitted[0], out)
    checked = resume.check_inputs

    def then_a_file_lands(*args, **kwargs):  # the sweep's hours, in which the user writes there
        checked(*args, **kwargs)
        mine.mkdir(exist_ok=True)
        (mine / "notes.txt").write_text("mine")

    monkeypatch.setattr(resume, "check_inputs", then_a_file_lands)
    said = f"{mine} exists and is not an export made by hubensemble; refusing to replace it: "
    with pytest.raises(RunError) as refused:
        hubensemble.fit(catalogue, "sklearn:digits", out, export=mine, progress=False,
                        **FIT_CLEAN)
    assert str(refused.value) == said + "choose another export folder, or delete it first"
    (mine / "notes.txt").unlink()
    mine.rmdir()
    code, _, err = in_process("fit", "--catalogue", catalogue, "--data", "sklearn:digits",
                              "--out", out, "--export", mine, "--profile", "quick",
                              "--top-k", "2", "--seed", "0", "--no-corruptions", "-q")
    assert code != 0 and f"{said}choose another --export folder, or delete it first" in err, err
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_changed_catalogue_is_named_per_module_added_removed_or_changed(
        catalogue, fitted, tmp_path):
    """fit refused a changed catalogue as "the catalogue (m0, m2, m3 added, dropped or
    changed)", which did not say which change was made to which module: it names each, the
    fields of a changed entry with their old and new values where run.json records the
    entry (the modules rank selected), then the way on. Fails before: the words."""
    from dataclasses import replace

    from hubensemble.catalogue import ModuleSpec, load_catalogue
    from hubensemble.rank import load_ranking

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out)
    specs = {s.name: s for s in load_catalogue(catalogue)}
    recorded = json.loads((out / "run.json").read_text())["modules"]
    kept = next(n for n in specs if n in recorded)  # a selected module: its entry recorded
    other = next(n for n in specs if n != kept)
    dropped = next(n for n in specs if n not in (kept, other))
    moved = specs[other].handle
    edited = tmp_path / "cat.yaml"
    edited.write_text("modules:\n" + "".join(
        f"  - {{name: {n}, handle: {h}}}\n"
        for n, h in ((kept, moved), (other, specs[other].handle), ("m9", moved))))
    with pytest.raises(RunError) as refused:
        hubensemble.fit(str(edited), "sklearn:digits", out, progress=False, **FIT_CLEAN)
    assert str(refused.value) == (
        f"the catalogue (m9 added; {dropped} removed; {kept}'s handle {specs[kept].handle} -> "
        f"{moved}) changed since {out} was fitted; use a new out folder, or pass restart=True "
        "to discard the old results")

    from hubensemble.resume import catalogue_changes

    was = load_ranking(out).catalogue
    now = list(specs.values())
    assert catalogue_changes(was, now, recorded) == []
    assert catalogue_changes(was, now[::-1], recorded) == ["its order"]
    # A module rank did not select, changed alone: its fields named by the record's digests.
    unselected = next((n for n in specs if n not in recorded), None)
    if unselected is not None:
        assert catalogue_changes(was, [replace(s, input_size=(16, 16)) if s.name == unselected
                                       else s for s in now], recorded) == [
            f"{unselected}'s input_size changed"]
    many = now + [ModuleSpec(name=f"x{i}", handle=moved) for i in range(6)]
    assert catalogue_changes(was, many, recorded) == [
        "x0 added", "x1 added", "x2 added", "x3 added", "x4 added", "and 1 more"]


#: `hubensemble ARGV` for each ARGV of a JSON list in one new process: its exit code, stderr
#: and whether TensorFlow is imported by then, one JSON line on stdout each.
_EACH_BEFORE_TF = """if True:
    import contextlib, io, json, sys
    from hubensemble.cli import main
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(argv)
        print(json.dumps([code, err.getvalue(), "tensorflow" in sys.modules]), flush=True)
"""


def _each_before_tf(*argvs):
    """[(exit code, stderr, whether TensorFlow was imported)] of each `hubensemble ARGV`."""
    listed = json.dumps([[str(a) for a in argv] for argv in argvs])
    done = bounded_by_cpu([sys.executable, "-c", _EACH_BEFORE_TF, listed], cpu=120,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(json.loads(line)) for line in done.stdout.splitlines()]


def _recorded_run(path, specs, data_args, *, fitted=True, top_k=2, candidates=(),
                  data_print="old"):
    """A run folder as fit (`fitted`) or rank alone records it, files only: run.json's data
    record of `data_args` (its fingerprint `data_print`), a ranking of m0-m3 selected by
    `top_k`, the rank stage done, and `candidates` (trial names "default-N-MODULE") with a
    done tune."""
    from hubensemble.candidate import write_candidate
    from hubensemble.pipeline import FitOptions
    from hubensemble.rank.ranking import (Ranking, catalogue_entries_fingerprint,
                                          catalogue_fingerprint)
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import file_digest, mark, stage_keys

    run, before = Run(path), FitOptions(top_k=top_k)
    prints = {"catalogue": catalogue_fingerprint(specs), "data": data_print,
              "entries": catalogue_entries_fingerprint(specs)}
    keys = stage_keys(prints["catalogue"], data_print, before)
    rows = [{"name": f"m{i}", "status": "ok", "score": 0.9 - i / 10} for i in range(4)]
    selected = [f"m{i}" for i in range(top_k)]
    Ranking(metric="knn", k=1, rows=rows, selected=selected,
            selection={"rule": "top_k", "top_k": top_k}).write(path)
    run.update(data={"args": data_args.to_json(), "task": {"fingerprint": data_print}},
               rank={"selection": {"rule": "top_k", "top_k": top_k}, "selected": selected})
    if fitted:
        run.update(fit={"fingerprints": prints, "keys": keys, "options": json.loads(
            json.dumps(dataclasses.asdict(before), default=str))})
    mark(run, "rank", keys["rank"], 1.0, digests={"rank": file_digest(run.ranking_json)})
    for trial in candidates:
        write_candidate(run.candidates, {"trial": trial, "status": "ok",
                                         "module": trial.split("-")[-1]},
                        val_probs=np.full((4, 2), 0.5, np.float32),
                        test_probs=np.full((4, 2), 0.5, np.float32))
    if candidates:
        mark(run, "tune", keys["tune"], 3.0)
    return run, prints, before


def _catalogue_of_stand_ins(tmp_path):
    """A catalogue of m0-m3 whose handles are files (no module is loaded before a refusal)
    and its entries."""
    from hubensemble.catalogue import load_catalogue

    cat = tmp_path / "c.yaml"
    lines = ["modules:"]
    for i in range(4):
        (tmp_path / f"m{i}").write_text("not a module\n")
        lines.append(f"  - {{name: m{i}, handle: {tmp_path / f'm{i}'}}}")
    cat.write_text("\n".join(lines) + "\n")
    return cat, load_catalogue(str(cat))


def test_fit_onto_a_run_of_other_data_options_is_refused_before_tensorflow(tmp_path):
    """fit on a run recorded with other data options (another spec, sklearn:digits -> an npz;
    the same spec with another --data-seed) imported TensorFlow and loaded the data (7-24 s,
    ~700 MB) before `resume.check_inputs` (a fitted run) or `Run.attach_task` (a run of
    `rank` alone) refused it. Refused before TensorFlow now, in those very words (the
    reference: each refusal made after the load, from the loaded task). Fails before:
    TensorFlow loaded. Options that may load the same data (--dedupe), an older record
    without data options and the same options are left to the load."""
    from hubensemble.data import load_task
    from hubensemble.dataargs import DataArgs
    from hubensemble.lockwords import command_line
    from hubensemble.pipeline import FitOptions
    from hubensemble.rank.ranking import catalogue_entries_fingerprint, catalogue_fingerprint
    from hubensemble.resume import check_inputs, refuse_changed_options
    from hubensemble.stagerecords import stage_keys

    cat, specs = _catalogue_of_stand_ins(tmp_path)
    npz = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x_train=rng.integers(0, 255, (12, 4, 4, 3), np.uint8), y_train=[0, 1] * 6,
             x_val=rng.integers(0, 255, (4, 4, 4, 3), np.uint8), y_val=[0, 1] * 2)
    digits = DataArgs(spec="sklearn:digits")
    fit_run, _, _ = _recorded_run(tmp_path / "fit", specs, digits)
    rank_run, _, _ = _recorded_run(tmp_path / "rank", specs, digits, fitted=False)
    cases = {  # (run, data flags, the DataArgs they load with)
        "spec": (fit_run, ["--data", f"npz:{npz}"], DataArgs(spec=f"npz:{npz}")),
        "seed": (fit_run, ["--data", "sklearn:digits", "--data-seed", "3"],
                 DataArgs(spec="sklearn:digits", seed=3)),
        "rank": (rank_run, ["--data", f"npz:{npz}"], DataArgs(spec=f"npz:{npz}"))}
    now = FitOptions(top_k=2)
    said = {}
    with command_line():  # the reference: the refusals made once the data is loaded
        for name, (run, _, data_args) in cases.items():
            task = load_task(data_args.spec, seed=data_args.seed)
            prints = {"catalogue": catalogue_fingerprint(specs), "data": task.fingerprint,
                      "entries": catalogue_entries_fingerprint(specs)}
            with pytest.raises(RunError) as refused:
                check_inputs(run, prints, stage_keys(prints["catalogue"], task.fingerprint,
                                                     now),
                             now, restart=False, specs=specs, data=(task, data_args))
                run.attach_task(task, data_args, command="fit")  # a run of rank alone
            said[name] = str(refused.value)
    assert "the data (--data-seed 0 -> 3) changed since" in said["seed"], said
    assert said["rank"].startswith(f"{rank_run.path} holds a run on other data"), said
    before = {name: (run.path / "run.json").read_bytes() for name, (run, _, _) in cases.items()}
    found = _each_before_tf(*[["fit", "-q", "--catalogue", cat, *flags, "--out", run.path,
                               "--top-k", "2"] for run, flags, _ in cases.values()])
    for name, (code, err, tensorflow) in zip(cases, found):
        assert (code, tensorflow) == (2, False), (name, err)
        assert err == f"hubensemble: error: {said[name]}\n", (name, err)
        assert said[name] in (cases[name][0].path / "log.txt").read_text()
    assert before == {n: (r.path / "run.json").read_bytes() for n, (r, _, _) in cases.items()}
    # From Python, in fit's keywords, before the data loads (pipeline.fit's call).
    with pytest.raises(RunError, match=re.escape("the data (seed=0 -> 3) changed since")):
        refuse_changed_options(fit_run, now, restart=False, specs=specs,
                               data_args=DataArgs(spec="sklearn:digits", seed=3))
    # Left to the load: the same options, one that may drop nothing, an older record, and
    # --restart.
    for data_args in (digits, DataArgs(spec="sklearn:digits", dedupe=True)):
        refuse_changed_options(fit_run, now, restart=False, specs=specs, data_args=data_args)
    refuse_changed_options(fit_run, now, restart=True, specs=specs, data_args=cases["spec"][2])
    fit_run.modify(lambda meta: meta["data"].pop("args"))
    refuse_changed_options(fit_run, now, restart=False, specs=specs, data_args=cases["spec"][2])


def test_a_smaller_top_k_that_drops_candidates_is_refused_before_tensorflow(tmp_path):
    """fit --top-k 1 on a run fitted with --top-k 2 whose candidates of the module it drops
    are in RUN/candidates was refused by `reselect.top_k_change` after TensorFlow's import
    and the data's load (28 s), though ranking.json and the candidates' records alone say
    it. Refused before TensorFlow now, in those words (the reference: `check_inputs` after
    the load); a larger --top-k still goes on to select the ranking again. Fails before:
    TensorFlow loaded."""
    from hubensemble.data import load_task
    from hubensemble.dataargs import DataArgs
    from hubensemble.lockwords import command_line
    from hubensemble.pipeline import FitOptions
    from hubensemble.resume import check_inputs, refuse_changed_options
    from hubensemble.stagerecords import stage_keys

    cat, specs = _catalogue_of_stand_ins(tmp_path)
    digits, task = DataArgs(spec="sklearn:digits"), load_task("sklearn:digits")
    run, prints, _ = _recorded_run(tmp_path / "run", specs, digits, data_print=task.fingerprint,
                                   candidates=["default-0-m0", "default-4-m1"])
    smaller = FitOptions(top_k=1)
    with command_line(), pytest.raises(RunError) as refused:  # the reference, after the load
        check_inputs(run, prints, stage_keys(prints["catalogue"], task.fingerprint, smaller),
                     smaller, restart=False, specs=specs, data=(task, digits))
    assert str(refused.value).startswith("--top-k 2 -> 1 drops m1 from the selection"), refused
    before = (run.path / "run.json").read_bytes(), run.ranking_json.read_bytes()
    [(code, err, tensorflow)] = _each_before_tf(
        ["fit", "-q", "--catalogue", cat, "--data", "sklearn:digits", "--out", run.path,
         "--top-k", "1"])
    assert (code, tensorflow) == (2, False), err
    assert err == f"hubensemble: error: {refused.value}\n", err
    assert before == ((run.path / "run.json").read_bytes(), run.ranking_json.read_bytes())
    # A larger one is no refusal (check_inputs selects the ranking again after the load).
    refuse_changed_options(run, FitOptions(top_k=3), restart=False)


def test_fit_says_what_its_rank_stage_selected_and_left_out(fitted):
    """fit's rank stage said "rank: done" alone: no score, no selected module, nothing on what
    --top-k left out (`hubensemble rank` prints Ranking.summary's table). Now a line in
    RUN/log.txt (and on the terminal, by the same `say`): the selected modules by the rule
    with their scores, the ones left out with theirs, read back here from ranking.json.
    Fails before: no such line in the log."""
    import json

    out, _ = fitted
    document = json.loads((out / "ranking.json").read_text())
    scores = {r["name"]: r["score"] for r in document["modules"] if r["status"] == "ok"}
    left = [r["name"] for r in document["modules"]
            if r["status"] == "ok" and r["name"] not in document["selected"]]
    assert len(document["selected"]) == 2 and len(left) == 1  # FIT's top_k=2 of 3 modules
    said = [line.split(": ", 1)[1] for line in (out / "log.txt").read_text().splitlines()
            if ": rank: selected by " in line]
    expected = ("rank: selected by top_k=2 (knn): "
                + ", ".join(f"{n} {scores[n]:.4f}" for n in document["selected"])
                + f"; left out 1: {left[0]} {scores[left[0]]:.4f}")
    assert said[:1] == [expected], said


def test_selection_words_name_a_few_left_out_and_count_the_failed():
    """`Ranking.selection_words` in a command line's words: the flag that selected, the first
    three modules left out by name (best first) and a count of the rest, the failed ones
    counted. Fails before: no such method."""
    from hubensemble.lockwords import command_line
    from hubensemble.rank import Ranking

    rows = [{"name": f"m{i}", "status": "ok", "score": 0.9 - i / 10} for i in range(6)]
    rows.append({"name": "bad", "status": "failed", "score": None, "reason": "no file"})
    ranking = Ranking(metric="knn", k=1, rows=rows, selected=["m0"],
                      selection={"rule": "top_k", "top_k": 1})
    with command_line():
        words = ranking.selection_words()
    assert words == ("rank: selected by --top-k 1 (knn): m0 0.9000; left out 5: m1 0.8000, "
                     "m2 0.7000, m3 0.6000, … 2 more in ranking.csv; 1 failed (warned above)")


def test_a_fit_stopped_before_its_export_names_its_export_folder_in_the_command_to_go_on(
        catalogue, tmp_path):
    """The command that goes on with a fit (`rerun.fit_command`) named its --export folder
    from the export stage's record alone, so a fit refused or stopped before that stage
    gave a command without it, which exported into RUN/export when pasted: fit records its
    --export in run.json's "fit" before any stage runs. Fails before: no --export."""
    from hubensemble.fileio import read_json
    from hubensemble.rerun import fit_command
    from hubensemble.text import shell

    model = tmp_path / "elsewhere" / "model"
    for out, export in ((tmp_path / "run", model), (tmp_path / "own", None)):
        with pytest.raises(RunError, match="no module fits max_gflops"):
            hubensemble.fit(catalogue, "sklearn:digits", out, export=export, progress=False,
                            **dict(FIT_CLEAN, max_gflops=1e-7))
        said = fit_command(out, read_json(out / "run.json"), restart=False)
        if export is None:
            assert "--export" not in said, said
        else:
            assert f" --export {shell(str(model))} --out " in said, said


def test_a_fit_with_another_sweep_names_the_tune_way_that_keeps_the_candidates(
        fitted, tmp_path):
    # `fit --sweep hyper` on a run fitted with another sweep was refused with "use a new
    # --out folder, or pass --restart to discard" alone, both of which lose the candidates;
    # the way that keeps them is `tune --run RUN --sweep hyper`, then ensemble and export
    # (checked by hand on a tiny run: the ensemble then selects from both sweeps'). Fails
    # before: no "tune --run" in the refusal. Run.json alone, no TensorFlow work.
    from hubensemble.pipeline import FitOptions
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out, ignore=shutil.ignore_patterns("export*", "tuner"))
    run = Run(out)
    with command_line(), pytest.raises(RunError) as err:
        refuse_changed_options(run, FitOptions(**dict(FIT, sweep="hyper")), restart=False)
    said = str(err.value)
    assert said.startswith(f"the rank or tune options (--sweep default -> hyper) changed "
                           f"since {out} was fitted; use a new --out folder, or pass --restart "
                           "to discard the old results; or, to keep its ranking and its "
                           "default candidates and add the hyper sweep's beside them, run "
                           f"`hubensemble tune --run {out} --sweep hyper`, then "
                           f"`hubensemble ensemble --run {out}"), said
    assert f"and `hubensemble export --run {out}` (the ensemble selects" in said, said
    assert "keeps the run's other options" not in said
    # Another option changed too: what that way cannot keep is named; tune's own are passed.
    with command_line(), pytest.raises(RunError) as err:
        refuse_changed_options(run, FitOptions(**dict(FIT, sweep="hyper", top_k=3, budget=5)),
                               restart=False)
    said = str(err.value)
    assert f"`hubensemble tune --run {out} --sweep hyper --budget 5`" in said, said
    assert said.endswith("that way keeps the run's other options as they were: not --top-k "
                         "2 -> 3 (tune takes the run's ranking and profile)"), said
    # From Python: the stage functions' calls.
    with pytest.raises(RunError) as err:
        refuse_changed_options(run, FitOptions(**dict(FIT, sweep="hyper")), restart=False)
    assert f"run run_tune(run_dir='{out}', sweep='hyper'), then run_ensemble(" in str(
        err.value), str(err.value)
    # The same sweep: no such way (another option alone).
    with command_line(), pytest.raises(RunError) as err:
        refuse_changed_options(run, FitOptions(**dict(FIT, seed=1)), restart=False)
    assert "tune --run" not in str(err.value), str(err.value)


def test_a_resumed_fits_rank_stage_says_what_it_selected(fitted, catalogue, capsys):
    """fit's rank stage said its selection ("rank: selected by top_k=2 (knn): m0 0.9…; left
    out 1: …") only when it ran: reused ("rank: done before, reused") or selected again for
    a new --top-k, a resumed fit's user never saw what it selected. Now said whenever the
    stage ends, on the terminal and in RUN/log.txt, from Python too (the reference: the
    run's ranking's own `selection_words`). Fails before: no selection line."""
    from hubensemble.rank import load_ranking

    out, _ = fitted
    capsys.readouterr()
    hubensemble.fit(catalogue, "sklearn:digits", out, progress=True, **FIT)
    err = capsys.readouterr().err
    words = load_ranking(out).selection_words()
    assert words.startswith("rank: selected by top_k=") and "(knn)" in words, words
    assert f"rank: done before, reused\n{words}\n" in err, err
    log = (out / "log.txt").read_text()
    assert words in log[log.rindex("rank: done before, reused"):], log[-3000:]


def test_a_python_tunes_stop_is_said_by_its_own_line_alone(module_factory, tmp_path, capsys):
    """A Python `run_tune` stopped in a trial left that trial as the running one in module
    state (`stepclock`), so a command stopped later in the same process, before any trial of
    its own, said "(the running trial, at step 1/…, restarts from its start)" of the stale
    one. The state is the search's now (`StepClock.left_by`): the stop that left the search
    says it while handled (as `cli.main` says it), a later stop does not. A real sweep of
    one tiny module, stopped in its first step. Fails before: the later line named it."""
    import keras

    from types import SimpleNamespace

    from hubensemble import tune
    from hubensemble.data import load_task
    from hubensemble.exits import stopped_code
    from hubensemble.catalogue import ModuleSpec
    from test_tune import make_run

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    digits = load_task("sklearn:digits")
    modules = {"gen_a": (ModuleSpec(name="gen_a", handle=module_factory("gen_a", seed=1),
                                    family="generalist"), 0.9)}
    run = make_run(tmp_path / "run", modules, names=("gen_a",), selected=("gen_a",),
                   task=digits)
    kw = dict(sweep="seeds", budget=1, profile="quick", strategy="cpu", task=digits,
              progress=False)
    lines = []
    for say_it in (True, False):  # said as the command line says its stop; or not (Python)
        try:
            tune.run_tune(run.path, callbacks=[Stop()], **kw)
        except KeyboardInterrupt as e:
            if say_it:
                capsys.readouterr()
                assert stopped_code(SimpleNamespace(), e) == 130
                lines.append(capsys.readouterr().err)
        try:  # another command's stop, in the same process, before any trial
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            capsys.readouterr()
            assert stopped_code(SimpleNamespace(), e) == 130
            lines.append(capsys.readouterr().err)
    assert re.search(r"to resume \(the running trial, at step \d+/\d+, restarts from its "
                     r"start\)\n$", lines[0]), lines[0]
    assert [line.endswith("again to resume\n") for line in lines[1:]] == [True] * 2, lines


def test_the_tune_way_names_the_new_sweep_at_its_default_too(fitted, tmp_path):
    # A run fitted with --sweep probe, then `fit` without --sweep (the default sweep): the
    # way on said `hubensemble tune --run RUN --budget 8`, which resumes the run's own probe
    # sweep ("all 8 planned trials finished before, reused") and adds nothing (a new user's
    # check): the flag was left out at fit's default. Fails before: no "--sweep default".
    from hubensemble.fileio import read_json
    from hubensemble.pipeline import FitOptions
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import stage_keys

    out = tmp_path / "run"
    shutil.copytree(fitted[0], out, ignore=shutil.ignore_patterns("export*", "tuner"))
    meta = read_json(out / "run.json")  # as a fit with --sweep probe records it
    prints = meta["fit"]["fingerprints"]
    meta["fit"]["options"]["sweep"] = "probe"
    meta["fit"]["keys"]["tune"] = stage_keys(prints["catalogue"], prints["data"],
                                             FitOptions(**dict(FIT, sweep="probe")))["tune"]
    (out / "run.json").write_text(json.dumps(meta))
    for cli, want in ((True, f"`hubensemble tune --run {out} --sweep default`"),
                      (False, f"run_tune(run_dir='{out}', sweep='default')")):
        with (command_line() if cli else contextlib.nullcontext()), \
                pytest.raises(RunError) as err:
            refuse_changed_options(Run(out), FitOptions(**FIT), restart=False)
        assert "add the default sweep's beside them, run " + want in str(err.value), err.value


def test_export_and_distill_refuse_the_runs_moved_data_before_tensorflow(fitted, tmp_path):
    """`export --run RUN` and `distill --run RUN` load the data run.json records first
    thing, after TensorFlow's import (7-9 s, ~700 MB): a folder that moved was refused
    then, though the files alone say it. Now before TensorFlow, in `Run.task`'s words (the
    reference: Run.task itself), naming run.json and the fit that goes on from the new place. Fails
    before: TensorFlow loaded."""
    from hubensemble.rundir import Run
    from test_cli import each_in_one_process

    run = tmp_path / "run"
    shutil.copytree(fitted[0], run, ignore=shutil.ignore_patterns("*.lock"))
    meta = json.loads((run / "run.json").read_text())
    meta["data"]["args"]["spec"] = f"folder:{tmp_path / 'moved'}"
    (run / "run.json").write_text(json.dumps(meta))
    from hubensemble.lockwords import command_line

    with pytest.raises(DataError) as refused, command_line():
        Run(run).task()
    assert f"(the data recorded in {run / 'run.json'})" in str(refused.value), refused.value
    found = each_in_one_process(["export", "--run", run], ["distill", "--run", run])
    for code, _, err, tensorflow in found:
        assert (code, tensorflow) == (2, False), err
        # and, since 78ba093a, the command's own turn after that fit.
        assert err.endswith(f"error: {refused.value}; then run the same command again\n"), err


def test_a_fit_that_reuses_the_ranking_says_again_what_a_modules_load_warned_of(
        tmp_path, caplog, monkeypatch):
    """A module fed the wrong value range ("it sees every image nearly black") was warned of
    once, as the fit that ranked loaded it; a fit that reuses the ranking said nothing of it,
    though docs/rank.md said it does. It says each module's notes again, one warning after
    rank's selection line (`rank.rownotes.note_lines`), and not when rank runs (the load said
    them). Each fit stops before its sweep (a --max-gflops no module meets) to stay short.
    Fails before: the second fit said no "rank: module pixels (…)" line."""
    from hubensemble.hub import notices
    from hubensemble.rank import load_ranking
    from test_rank_notes import _pixels_and_plain

    specs = _pixels_and_plain(tmp_path)
    out = tmp_path / "run"
    options = dict(FIT_CLEAN, sweep="seeds", budget=1, max_gflops=1e-9)
    said = []
    for _ in range(2):
        monkeypatch.setattr(notices, "_WARNED", set())  # as in a new process
        caplog.clear()
        with caplog.at_level(logging.INFO), pytest.raises(RunError, match="max"):
            hubensemble.fit(specs, "sklearn:digits", out, progress=False, **options)
        said.append([(r.levelno, r.getMessage()) for r in caplog.records
                     if r.name == "hubensemble.pipeline" or "rank:" in r.getMessage()])
    score = load_ranking(out).row("pixels")["score"]
    line = (f"rank: module pixels ({score:.4f}): it sees every image nearly black (the fix: "
            "its notes in ranking.json)")
    assert line not in [m for _, m in said[0]], said[0]  # rank ran: its load said it
    messages = [m for _, m in said[1]]
    assert messages.count(line) == 1 and (logging.WARNING, line) in said[1], said[1]
    assert not [m for m in messages if m.startswith("rank: module plain")], messages
    reused = messages.index("rank: done before, reused")
    assert reused < messages.index(line), messages
    assert messages[messages.index(line) - 1].startswith("rank: selected"), messages


def test_a_copied_runs_fit_export_over_its_originals_export_is_not_reused(
        fitted, catalogue, tmp_path, caplog):
    """`cp -r a b`, then `fit --out b --export X` where X holds a's export: b's run.json
    records a's export stage (the same digests, the same files at X), so fit said "export:
    done before, reused" and b took a's export for its own, a's run.json still naming X. The
    rule is `export`'s (`exportfolder.other_run` with the folder): X is a's, said as a
    copy's, moved aside (a's run.json follows it) and b exports to X."""
    from hubensemble.formats import read_export_metadata
    from hubensemble.rundir import Run

    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "X"
    shutil.copytree(fitted[0], a)
    # Exports of a 1-member ensemble (an export of 8 took 5.5 s of CPU, of 1 3.7 s): whose
    # export X holds is the same rule.
    fit = dict(FIT_CLEAN, max_members=1)
    hubensemble.fit(catalogue, "sklearn:digits", a, export=out, progress=False, **fit)
    assert read_export_metadata(out)["run"]["path"] == str(a)
    shutil.copytree(a, b)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble.pipeline"):
        hubensemble.fit(catalogue, "sklearn:digits", b, export=out, progress=False, **fit)
    assert "export: done before, reused" not in caplog.text
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and r.getMessage().startswith("export: ")]
    assert len(said) == 1 and said[0].startswith(
        f"export: {out} held an export of another run ({a}, the same data; one of the two "
        "runs is a copy of the other"), said
    assert read_export_metadata(out)["run"]["path"] == str(b)
    kept = Run(a).exported_to()
    assert kept != str(out) and os.path.basename(kept).startswith("X-replaced-")
    assert read_export_metadata(kept)["run"]["path"] == str(a)


def test_an_export_copied_along_with_its_run_is_the_copys_own_for_fit_export_and_summary(
        fitted, catalogue, tmp_path, caplog):
    """`cp -r p q` of a folder holding run a and its export X beside it: q/X is q/a's own
    (run.json's "beside"), as the summary and the report read it, but `other_run` (export's
    and fit's rule) took it for p/a's, a copy's: `fit --out q/a --export q/X` and `export
    --run q/a --out q/X` moved it aside ("held an export of another run (p/a, …)") and
    exported again. One rule now (`exportfolder.other_run`, `_copied_along`). Fails before:
    fit's warning and the kept folder q/X-replaced-*."""
    from hubensemble.export import export_ensemble
    from hubensemble.formats import read_export_metadata
    from hubensemble.rundir import Run

    p, q = tmp_path / "p", tmp_path / "q"
    shutil.copytree(fitted[0], p / "a")
    # Exports of a 1-member ensemble (an export of 8 took 5.5 s of CPU, of 1 3.7 s): whose
    # export q/X is, the same rule.
    fit = dict(FIT_CLEAN, max_members=1)
    hubensemble.fit(catalogue, "sklearn:digits", p / "a", export=p / "X", progress=False, **fit)
    shutil.copytree(p, q)
    copy, out = Run(q / "a"), q / "X"
    assert copy.exported_to() == str(out) and copy.foreign_export() is None
    caplog.clear()
    with caplog.at_level(logging.INFO):
        hubensemble.fit(catalogue, "sklearn:digits", copy.path, export=out, progress=False,
                        **fit)
        export_ensemble(copy.path, out)
    said = [r.getMessage() for r in caplog.records if "another run" in r.getMessage()]
    assert said == [] and sorted(os.listdir(q)) == ["X", "a"], (said, os.listdir(q))
    assert read_export_metadata(out)["run"]["path"] in (str(p / "a"), str(copy.path))
    assert copy.exported_to() == str(out) and copy.foreign_export() is None
    assert copy.current_export() == (str(out), None)
    assert Run(p / "a").exported_to() == str(p / "X")  # the original's record untouched
