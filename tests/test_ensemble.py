"""Greedy ensemble selection against a loop reference; metrics; the run-directory contract."""

import json
import logging
import math
import os

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss

from hubensemble import fileio, metrics
from hubensemble.ensemble import (SIZE_RULES, EnsembleResult, Selection, accuracy,
                                  choose_size, ece, ensemble_probs, format_ensemble,
                                  greedy_select, load_candidates, nll, read_ensemble,
                                  run_ensemble, select_ensemble)
from hubensemble.errors import RunError
from hubensemble.data.coverage import coverage_note, split_coverage
from hubensemble.rundir import Run

FLOOR = 1e-7  # the one probability floor of every cross-entropy (hubensemble.metrics)


def random_probs(rng, m, n, c, y, strength=2.0):
    logits = rng.standard_normal((m, n, c)) * 1.5
    logits[:, np.arange(n), y] += rng.uniform(0, strength, (m, 1))  # candidates differ in skill
    p = np.exp(logits - logits.max(axis=2, keepdims=True))
    return (p / p.sum(axis=2, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Deliberately simple reference: loops over candidates, the mean recomputed from the picks
# ---------------------------------------------------------------------------------------------

def reference_greedy(probs, y, objective, budget, with_replacement, bootstrap, seed):
    probs = np.asarray(probs, dtype=np.float64)
    m, n, _ = probs.shape
    rng = np.random.default_rng(seed)
    picks, curve = [], []
    for _ in range(budget):
        candidates = [j for j in range(m) if with_replacement or j not in picks]
        if not candidates:
            break
        rows = list(range(n)) if bootstrap is None \
            else rng.integers(0, n, int(round(bootstrap * n))).tolist()
        best, best_loss = None, None
        for j in candidates:
            mean = np.mean([probs[i] for i in picks + [j]], axis=0)
            if objective == "ce":
                loss = -sum(math.log(max(mean[r, y[r]], FLOOR)) for r in rows) / len(rows)
            else:
                loss = -sum(int(np.argmax(mean[r]) == y[r]) for r in rows) / len(rows)
            if best is None or loss < best_loss:  # strict: the lowest index keeps ties
                best, best_loss = j, loss
        picks.append(best)
        mean = np.mean([probs[i] for i in picks], axis=0)
        ce = -sum(math.log(max(mean[r, y[r]], FLOOR)) for r in range(n)) / n
        acc = sum(int(np.argmax(mean[r]) == y[r]) for r in range(n)) / n
        curve.append({"size": len(picks), "ce": ce, "accuracy": acc})
    values = [c["ce"] if objective == "ce" else -c["accuracy"] for c in curve]
    size = values.index(min(values)) + 1  # first best: the smaller ensemble
    chosen = picks[:size]
    weights = {j: chosen.count(j) / size for j in dict.fromkeys(chosen)}
    return picks, size, weights, curve


@pytest.mark.parametrize("objective", ["ce", "accuracy"])
@pytest.mark.parametrize("with_replacement", [False, True])
@pytest.mark.parametrize("bootstrap", [None, 0.6, 1.5])
def test_greedy_select_matches_reference(objective, with_replacement, bootstrap):
    rng = np.random.default_rng(0)
    m, n, c = 9, 50, 6
    y = rng.integers(0, c, n)
    probs = random_probs(rng, m, n, c, y)
    budget = 12  # more than the candidates: without replacement they run out
    sel = greedy_select(probs, y, objective=objective, budget=budget,
                        with_replacement=with_replacement, bootstrap=bootstrap, seed=3,
                        size_rule="paper")
    picks, size, weights, curve = reference_greedy(probs, y, objective, budget,
                                                   with_replacement, bootstrap, seed=3)
    assert sel.indices == picks
    assert sel.size == size
    assert list(sel.weights) == list(weights)
    assert sel.weights == pytest.approx(weights)
    assert len(sel.curve) == len(curve) == (budget if with_replacement else m)
    for got, want in zip(sel.curve, curve):
        assert got["size"] == want["size"]
        assert got["ce"] == pytest.approx(want["ce"], rel=1e-9)
        assert got["accuracy"] == want["accuracy"]
    assert sel.objective == objective
    if not with_replacement:
        assert sorted(sel.indices) == list(range(m))
    # float32 tables (as stored) and float64 give the same selection, to the last bit.
    sel64 = greedy_select(probs.astype(np.float64), y, objective=objective, budget=budget,
                          with_replacement=with_replacement, bootstrap=bootstrap, seed=3,
                          size_rule="paper")
    assert sel64 == sel


def test_chosen_size_is_the_best_point_of_the_curve():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, 80)
    probs = random_probs(rng, 20, 80, 5, y, strength=1.0)
    for objective in ("ce", "accuracy"):
        sel = greedy_select(probs, y, objective=objective, budget=15, size_rule="paper")
        ces = [c["ce"] for c in sel.curve]
        accs = [c["accuracy"] for c in sel.curve]
        if objective == "ce":
            assert sel.size == int(np.argmin(ces)) + 1
        else:
            assert sel.size == int(np.argmax(accs)) + 1  # first maximum: smaller ensemble
        assert sum(sel.weights.values()) == pytest.approx(1.0)
        chosen = ensemble_probs(probs, sel.weights)
        assert nll(chosen, y) == pytest.approx(ces[sel.size - 1])


def test_greedy_prefers_a_complementary_candidate_to_a_copy():
    y = np.array([0, 1, 0, 1])
    a = np.array([[0.9, 0.1], [0.1, 0.9], [0.4, 0.6], [0.6, 0.4]])  # CE 0.511, wrong on 2, 3
    c = np.array([[0.3, 0.7], [0.7, 0.3], [0.95, 0.05], [0.05, 0.95]])  # CE 0.628 alone
    # mean(a, a) = a (CE 0.511); mean(a, c) has CE (2 * -log 0.6 + 2 * -log 0.675) / 4 = 0.452.
    probs = np.stack([a, a.copy(), c])
    sel = greedy_select(probs, y, objective="ce", budget=2)
    assert sel.indices == [0, 2]  # the copy (index 1) ties with a and loses on index
    assert sel.curve[1]["ce"] == pytest.approx(-(np.log(0.6) + np.log(0.675)) / 2)
    sel = greedy_select(probs[:2], y, objective="ce", budget=2)
    assert sel.indices == [0, 1]
    assert sel.size == 1  # the copy adds nothing: the smaller ensemble is kept


def test_accuracy_ties_go_to_the_lowest_index():
    y = np.array([0, 1, 0, 1])
    good = np.array([[0.9, 0.1], [0.1, 0.9], [0.4, 0.6], [0.6, 0.4]])
    fixer = np.array([[0.6, 0.4], [0.4, 0.6], [0.95, 0.05], [0.05, 0.95]])  # right everywhere
    sel = greedy_select(np.stack([good, good, fixer]), y, objective="accuracy", budget=2)
    # Step 2: {fixer, good} and {fixer, copy} are both right everywhere -> index 0.
    assert sel.indices == [2, 0]
    assert sel.size == 1  # equal accuracy: the smaller ensemble


def test_with_replacement_weights_count_picks():
    y = np.array([0, 0, 1])
    strong = np.array([[0.8, 0.2], [0.7, 0.3], [0.3, 0.7]])
    weak = np.array([[0.45, 0.55], [0.5, 0.5], [0.5, 0.5]])
    sel = greedy_select(np.stack([weak, strong]), y, objective="ce", budget=3,
                        with_replacement=True)
    assert sel.indices == [1, 1, 1]
    assert sel.weights == {1: 1.0}
    assert sel.size == 1  # re-picking the same model never changes the ensemble


def test_bootstrap_changes_decisions_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 20, 200)
    probs = random_probs(rng, 60, 200, 20, y, strength=0.5)  # many similar candidates
    plain = greedy_select(probs, y, objective="accuracy", budget=15)
    boot = [greedy_select(probs, y, objective="accuracy", budget=15, bootstrap=0.5, seed=s)
            for s in (0, 0, 1)]
    assert boot[0] == boot[1]
    assert boot[0].indices != boot[2].indices
    assert boot[0].indices != plain.indices


def test_selection_json_round_trip():
    sel = Selection(indices=[3, 1, 3], weights={3: 2 / 3, 1: 1 / 3}, size=3,
                    curve=[{"size": 1, "ce": 1.0, "accuracy": 0.5}], objective="ce")
    back = Selection.from_json(json.loads(json.dumps(sel.to_json())))
    assert back == sel
    assert back.members == [3, 1]


def test_greedy_select_rejects_bad_input():
    y = np.array([0, 1])
    p = np.full((2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="objective"):
        greedy_select(p, y, objective="f1")
    with pytest.raises(ValueError, match="budget"):
        greedy_select(p, y, budget=0)
    with pytest.raises(ValueError, match="expected val_probs"):
        greedy_select(p[0], y)
    with pytest.raises(ValueError, match="bootstrap"):
        greedy_select(p, y, bootstrap=0.0)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def test_metrics_against_hand_values_and_sklearn():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.25, 0.5, 0.25]])
    y = np.array([0, 2, 2, 0])
    assert accuracy(probs, y) == 0.5
    assert nll(probs, y) == pytest.approx(-(np.log(0.5) + np.log(0.2) + np.log(0.6)
                                            + np.log(0.25)) / 4)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 300)
    p = random_probs(rng, 1, 300, 7, y)[0].astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    assert accuracy(p, y) == pytest.approx(accuracy_score(y, p.argmax(axis=1)))
    assert nll(p, y) == pytest.approx(log_loss(y, p, labels=np.arange(7)), rel=1e-9)
    # A zero probability for the true class costs -log(1e-7), not inf: the same floor as
    # hubensemble.metrics (trial.json's CE), so one candidate has one CE everywhere.
    assert metrics.PROB_FLOOR == FLOOR and nll is metrics.nll
    assert nll(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-np.log(FLOOR))
    assert nll(np.array([[1.0, 1e-9]]), np.array([1])) == pytest.approx(-np.log(FLOOR))


def test_ece_perfectly_calibrated_toy_is_zero():
    # 10 predictions at confidence 0.7 with 7 right, 10 at 0.9 with 9 right.
    conf = np.array([0.7] * 10 + [0.9] * 10)
    right = np.array([1] * 7 + [0] * 3 + [1] * 9 + [0])
    probs = np.stack([conf, 1 - conf], axis=1)
    y = np.where(right == 1, 0, 1)
    assert ece(probs, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_hand_computed():
    # Bin (0.6, 0.667]: conf 0.65, 2 of 4 right -> gap 0.15; bin (0.933, 1]: conf 0.95, all
    # 4 right -> gap 0.05. ECE = 4/8 * 0.15 + 4/8 * 0.05 = 0.1.
    probs = np.array([[0.65, 0.35]] * 4 + [[0.95, 0.05]] * 4)
    y = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    assert ece(probs, y, bins=15) == pytest.approx(0.1)
    # One bin: |accuracy - mean confidence| = |0.75 - 0.8|.
    assert ece(probs, y, bins=1) == pytest.approx(0.05)


def test_ensemble_probs_weighted_average():
    p = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[0.5, 0.5]]])
    np.testing.assert_allclose(ensemble_probs(p, {0: 0.75, 1: 0.25}), [[0.75, 0.25]])
    np.testing.assert_allclose(ensemble_probs(p, {0: 3, 1: 1}), [[0.75, 0.25]])


# ---------------------------------------------------------------------------------------------
# The run directory
# ---------------------------------------------------------------------------------------------

def write_candidate(run, trial, probs_val, probs_test=None, status="ok", module="m",
                    write_record=True, reason=None, has_test=None, weights=True):
    """A candidate folder written file by file (as a foreign or damaged writer would)."""
    folder = os.path.join(run, "candidates", trial)
    os.makedirs(folder, exist_ok=True)
    fileio.atomic_save_npy(os.path.join(folder, "val_probs.npy"), probs_val)
    if probs_test is not None:
        fileio.atomic_save_npy(os.path.join(folder, "test_probs.npy"), probs_test)
    if weights:
        fileio.atomic_write_bytes(os.path.join(folder, "weights.weights.h5"), b"weights")
    if write_record:
        fileio.atomic_write_json(os.path.join(folder, "trial.json"), {
            "trial": trial, "module": module, "handle": f"/modules/{module}",
            "hparams": {"lr": 0.01, "steps": 100}, "seed": 7, "status": status,
            "reason": reason, "val": {"ce": 1.0, "accuracy": 0.5},
            "has_test": probs_test is not None if has_test is None else has_test,
            "weights": "weights.weights.h5"})
    return folder


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(2)
    n_val, n_test, c = 40, 30, 4
    y_val = rng.integers(0, c, n_val)
    y_test = rng.integers(0, c, n_test)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y_val.astype(np.int64))
    fileio.atomic_save_npy(os.path.join(run, "labels", "test.npy"), y_test.astype(np.int64))
    val = random_probs(rng, 5, n_val, c, y_val)
    test = random_probs(rng, 5, n_test, c, y_test)
    for i in range(5):
        write_candidate(run, f"trial_{i * 5}", val[i], test[i], module=f"mod{i % 2}")
    return run, y_val, y_test, val, test


def test_load_candidates_skips_failed_temp_and_half_written(run_dir):
    run, y_val, _, val, test = run_dir
    write_candidate(run, "trial_3", val[0], test[0], status="failed", reason="NaN loss")
    write_candidate(run, ".tmp-trial_4.abc", val[0], test[0])  # complete but temporary
    write_candidate(run, "trial_6", val[0], test[0], write_record=False)  # still running
    broken = write_candidate(run, "trial_7", val[0], test[0])
    with open(os.path.join(broken, "val_probs.npy"), "r+b") as f:
        f.truncate(60)  # cut short
    write_candidate(run, "trial_8", val[0][:10], test[0])  # wrong number of examples
    write_candidate(run, "trial_9", np.full((len(y_val), 3), 1 / 3), test[0])  # wrong classes
    write_candidate(run, "trial_11", val[0] * 5, test[0])  # not probabilities
    write_candidate(run, "trial_12", val[0], test[0], weights=False)  # its weights are gone
    write_candidate(run, "trial_13", val[0], None, has_test=True)  # its test table is gone
    cands, skipped = load_candidates(run)
    assert [c.trial for c in cands] == ["trial_0", "trial_5", "trial_10", "trial_15",
                                        "trial_20"]
    reasons = dict(skipped)
    assert set(reasons) == {"trial_3", "trial_6", "trial_7", "trial_8", "trial_9", "trial_11",
                            "trial_12", "trial_13"}
    # one completeness rule (hubensemble.candidate): every file the record names must exist
    assert "weights.weights.h5 is missing" in reasons["trial_12"]
    assert "test_probs.npy is missing" in reasons["trial_13"]
    assert "NaN loss" in reasons["trial_3"]
    assert "trial.json" in reasons["trial_6"]
    assert "val_probs.npy is damaged: not a .npy array file" in reasons["trial_7"]
    assert "run tune again to redo this trial" in reasons["trial_7"]  # tune re-runs it
    assert "shape" in reasons["trial_8"]
    assert "classes" in reasons["trial_9"]
    assert "probabilities" in reasons["trial_11"]
    first = cands[0]
    np.testing.assert_array_equal(first.val_probs, val[0])
    np.testing.assert_array_equal(first.test_probs, test[0])
    assert (first.module, first.handle, first.seed) == ("mod0", "/modules/mod0", 7)
    assert first.hparams == {"lr": 0.01, "steps": 100}
    assert first.record["weights"] == "weights.weights.h5"


def test_run_ensemble_writes_the_contract(run_dir):
    run, y_val, y_test, val, test = run_dir
    out = run_ensemble(run, objective="ce", budget=4)
    with open(os.path.join(run, "ensemble.json")) as f:
        written = json.load(f)
    assert isinstance(out, EnsembleResult)
    assert written == json.loads(json.dumps(out.to_json())) == dict(out)
    assert list(written) == ["objective", "members", "val_curve", "budget", "with_replacement",
                             "bootstrap", "seed", "size", "picks", "n_candidates", "val",
                             "skipped", "coverage", "size_rule", "test", "test_curve"]
    assert out["members"] == written["members"] and "test_missing" not in out
    assert {"objective", "members", "val_curve", "test"} <= set(written)
    assert written["objective"] == "ce"
    for member in written["members"]:
        assert {"trial", "module", "hparams", "weight"} <= set(member)
    assert sum(m["weight"] for m in written["members"]) == pytest.approx(1.0)
    # A notebook echoes run_ensemble's result: one line, not every member, curve point and
    # pick (the dataclass repr).
    text = repr(out)
    assert "\n" not in text and len(text) < 200 + 12 * len(out["members"]), text
    assert text.startswith(f"EnsembleResult(objective='ce', size={out['size']}, members=")
    assert str([m["trial"] for m in out["members"]]) in text
    assert f"test_accuracy={out['test']['ensemble']['accuracy']:.4f}" in text
    for point in written["val_curve"]:
        assert set(point) >= {"size", "ce", "accuracy"}
    assert set(written["test"]) == {"ensemble", "best_single"}
    # The fixture's test classes are unbalanced (4, 7, 10 and 9 examples): each entry gives
    # its balanced accuracy too (below), as the report and the closing table do then.
    assert set(written["test"]["ensemble"]) == {"accuracy", "nll", "ece", "balanced_accuracy"}
    assert set(written["test"]["best_single"]) == {"trial", "accuracy", "nll", "ece",
                                                   "balanced_accuracy"}
    assert "balanced_accuracy" not in written["val"]["ensemble"]  # test only
    assert not any(name.startswith(".tmp-") for name in os.listdir(run))

    # The numbers follow from the inputs.
    sel = greedy_select(val, y_val, objective="ce", budget=4)
    trials = [f"trial_{i * 5}" for i in range(5)]
    assert [m["trial"] for m in written["members"]] == [trials[i] for i in sel.weights]
    ens = ensemble_probs(test, sel.weights)
    assert written["test"]["ensemble"]["nll"] == pytest.approx(nll(ens, y_test))
    assert written["test"]["ensemble"]["accuracy"] == pytest.approx(accuracy(ens, y_test))
    best = int(np.argmin([nll(v, y_val) for v in val]))
    assert written["test"]["best_single"]["trial"] == trials[best]
    assert written["test"]["best_single"]["nll"] == pytest.approx(nll(test[best], y_test))
    # Balanced accuracy against scikit-learn's, on the argmax of the same probabilities.
    assert written["test"]["ensemble"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_test, ens.argmax(1)))
    assert written["test"]["best_single"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_test, test[best].argmax(1)))


def test_a_one_member_ensemble_at_chance_is_said_once(tmp_path, caplog, figures_not_drawn):
    """An ensemble of one member at chance has that member's probabilities: the ensemble
    stage warned "the ensemble is at chance on validation: WHY; …" and "1 ensemble member is
    at chance on validation …: trial_0 (m) (trial_0: WHY); …", the same figures twice; so
    did fit's closing table and the report (its selection and members sections). One
    sentence now, with the member's advice (`chance.chance_advice`). Fails before: WHY said
    twice by each."""
    from hubensemble.report import write_report
    from hubensemble.report.write import summary_table

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y)
    probs = 0.25 + rng.uniform(-1e-3, 1e-3, (120, 4))
    write_candidate(run, "trial_0", probs / probs.sum(1, keepdims=True))
    with caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        run_ensemble(run)
    why = fileio.read_json(os.path.join(run, "ensemble.json"))["at_chance"]
    said = [r.getMessage() for r in caplog.records if why in r.getMessage()]
    assert len(said) == 1 and caplog.text.count(why) == 1, caplog.text
    assert said[0].startswith(f"the ensemble is at chance on validation: {why}; its one "
                              "member, trial_0 (m), learned next to nothing: try another "
                              "learning rate or more steps"), said
    assert "ensemble member is at chance" not in caplog.text
    table = summary_table(run)
    assert table.count(why) == 1 and f"warning: {said[0]}" in table, table
    md = write_report(run)[0].read_text()
    # The selection section's warning, and the row of "What failed and why"'s table of the
    # candidates at chance (each candidate's why, a table of its own).
    failed = md.split("## What failed and why")[1].split("\n## ")[0]
    assert md.count(why) == 2 and failed.count(why) == 1, md
    assert "ensemble member is at chance" not in md, md
    assert "The ensemble is at chance on validation: " in md


def test_balanced_test_classes_record_no_balanced_accuracy(tmp_path):
    """ensemble.json's test entries hold balanced_accuracy only when the test classes are
    unbalanced (`data.coverage.unbalanced`), when the report and the closing table give it."""
    rng = np.random.default_rng(4)
    y_val, y_test = rng.integers(0, 3, 30), np.repeat(np.arange(3), 8)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y_val.astype(np.int64))
    fileio.atomic_save_npy(os.path.join(run, "labels", "test.npy"), y_test.astype(np.int64))
    for i in range(3):
        write_candidate(run, f"trial_{i}", random_probs(rng, 1, 30, 3, y_val)[0],
                        random_probs(rng, 1, 24, 3, y_test)[0])
    written = run_ensemble(run)["test"]
    assert set(written["ensemble"]) == {"accuracy", "nll", "ece"}, written


def test_an_ensemble_at_chance_on_validation_is_warned_about(tmp_path, caplog, figures_not_drawn):
    # Candidates of 4 balanced classes that learned nothing (what `--profile quick` can give:
    # it fails no trial at chance): near-uniform probabilities, accuracy at the 0.25 base rate.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y)
    for i in range(3):
        probs = 0.25 + rng.uniform(-1e-3, 1e-3, (120, 4))
        write_candidate(run, f"trial_{i}", probs / probs.sum(1, keepdims=True))
    with caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        run_ensemble(run)
    assert "the ensemble is at chance on validation: accuracy" in caplog.text
    assert "majority class's 0.250" in caplog.text
    # Recorded, so a resumed fit (ensemble reused) and the report say it too.
    why = fileio.read_json(os.path.join(run, "ensemble.json"))["at_chance"]
    assert why.startswith("accuracy ") and why in caplog.text
    from hubensemble.report.write import summary_table
    assert f"warning: the ensemble is at chance on validation: {why}" in summary_table(run)
    # The way on in the caller's words: run_ensemble / fit from Python were told of
    # "--profile cpu"; the command line and the report (its commands are the command line's)
    # keep the flag.
    assert "more steps, e.g. profile='cpu'" in caplog.text and "--profile" not in caplog.text
    assert "--profile" not in summary_table(run)
    from hubensemble.lockwords import command_line
    from hubensemble.report.render import render_markdown
    from hubensemble.report.sections import build_sections

    with command_line():
        assert "more steps, e.g. --profile cpu" in summary_table(run)
    Run(run).update(modules={})  # a run.json, which the report needs
    assert "more steps, e.g. --profile cpu" in render_markdown(*build_sections(run)[:2])
    # Candidates that learned something: no warning.
    caplog.clear()
    val = random_probs(rng, 3, 120, 4, y, strength=4.0)
    for i in range(3):
        write_candidate(run, f"trial_{i}", val[i])
    with caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        run_ensemble(run)
    assert "at chance" not in caplog.text
    assert "at_chance" not in fileio.read_json(os.path.join(run, "ensemble.json"))


def test_a_validation_table_damaged_in_place_makes_its_candidate_incomplete(run_dir):
    # A new-user check: 64 random bytes written into the data of a val_probs.npy (its size
    # unchanged, NaN inside) passed every check: tune reused the trial, and fit's ensemble
    # silently dropped the member. Damaged tables now make the candidate one tune re-runs.
    from hubensemble.candidate import read_candidate
    from hubensemble.tune import finished_candidate

    run, _, _, val, test = run_dir
    folder = write_candidate(run, "trial_7", val[0], test[0])
    path = os.path.join(folder, "val_probs.npy")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size - 64)
        f.write(b"\xff" * 64)  # float32 NaN, same size, header intact
    assert os.path.getsize(path) == size
    cand = read_candidate(os.path.join(run, "candidates"), "trial_7")
    assert cand.problems == ["val_probs.npy holds non-finite or non-float values"]
    assert finished_candidate(os.path.join(run, "candidates"), "trial_7") is None
    _, skipped = load_candidates(run)
    assert "run tune again to redo this trial" in dict(skipped)["trial_7"]


def test_run_ensemble_without_test_probabilities_has_no_test(run_dir):
    run, _, _, val, test = run_dir
    # trial_0 has no test table (its record says so); the others are uniform: trial_0 is
    # the only sensible pick
    write_candidate(run, "trial_0", val[0], None)
    os.remove(os.path.join(run, "candidates", "trial_0", "test_probs.npy"))
    for i in range(1, 5):
        write_candidate(run, f"trial_{i * 5}", np.full_like(val[i], 0.25), test[i])
    out = run_ensemble(run, budget=1)
    assert out["members"][0]["trial"] == "trial_0"
    assert "test" not in out
    assert out["test_missing"] == "no test probabilities for member trial_0 (none written)"
    with open(os.path.join(run, "ensemble.json")) as f:
        assert json.load(f) == out.to_json()
    # a test table that is there but malformed: the candidate stays, without test metrics
    with open(os.path.join(run, "candidates", "trial_0", "test_probs.npy"), "wb") as f:
        f.write(b"not a table")
    fileio.atomic_write_json(os.path.join(run, "candidates", "trial_0", "trial.json"), {
        "trial": "trial_0", "module": "m", "status": "ok", "has_test": True})
    out = run_ensemble(run, budget=1)
    assert out["members"][0]["trial"] == "trial_0" and "test" not in out
    assert out["test_missing"].startswith("no test probabilities for member trial_0 (")
    assert "test_probs.npy" in out["test_missing"]  # what is wrong with it, named
    # One of another class count: named too (it was dropped without a word).
    np.save(os.path.join(run, "candidates", "trial_0", "test_probs.npy"),
            np.full((len(test[0]), 7), 1 / 7, np.float32))
    out = run_ensemble(run, budget=1)
    assert out["test_missing"] == ("no test probabilities for member trial_0 (test_probs.npy "
                                   "has 7 classes, its val_probs.npy 4; no test metrics for it)")


def test_run_ensemble_errors_say_what_to_run(tmp_path, run_dir):
    empty = str(tmp_path / "empty")
    os.makedirs(empty)
    # A folder that holds no run is named as such, not sent to tune (which would fail too).
    with pytest.raises(RunError, match=r"is not a hubensemble run .*call hubensemble\.fit\(out="):
        run_ensemble(empty)
    # A started run (ranked elsewhere): the file that is missing, and the command that
    # writes it.
    fileio.atomic_write_json(os.path.join(empty, "ranking.json"), {"modules": []})
    labels = os.path.join(empty, "labels", "val.npy")
    with pytest.raises(RunError) as e:
        run_ensemble(empty)
    assert f"{labels} is missing" in str(e.value)
    assert f"run_tune(run_dir={empty!r}) writes it" in str(e.value)  # a Python caller's words
    fileio.atomic_save_npy(labels, np.arange(4))
    with pytest.raises(RunError) as e:
        run_ensemble(empty)
    assert str(e.value) == (f"{os.path.join(empty, 'candidates')} is missing; "
                            f"run_tune(run_dir={empty!r}) writes the candidates")
    run, y_val, *_ = run_dir
    with pytest.raises(RunError) as e:
        read_ensemble(run)  # with candidates: ensemble is the one to run
    assert str(e.value) == (f"{os.path.join(run, 'ensemble.json')} is missing; "
                            f"run_ensemble(run_dir={run!r}) writes it")
    for name in os.listdir(os.path.join(run, "candidates")):
        os.remove(os.path.join(run, "candidates", name, "trial.json"))
    with pytest.raises(RunError, match=r"no usable candidates.*run_tune\(run_dir="):
        run_ensemble(run)
    with pytest.raises(RunError, match=r"ensemble.json is missing; run_ensemble\(run_dir="
                                       r".*, from the candidates that run_tune\(run_dir="):
        read_ensemble(run)  # no candidate: the stage to run first is named (it said ensemble)
    # An unreadable labels file: tune writes it again (Run.ensure_labels)
    with open(os.path.join(run, "labels", "val.npy"), "wb") as f:
        f.write(b"garbage")
    with pytest.raises(RunError, match=r"val.npy is unreadable.*run_tune\(run_dir=") as e:
        run_ensemble(run)
    # Not numpy's advice to "load it unsafely using the allow_pickle= keyword".
    assert "(not a NumPy .npy or .npz file)" in str(e.value) and "allow_pickle" not in str(
        e.value), e.value


def coverage_run(tmp_path, names=("cat", "dog", "emu", "fox")):
    """Labels where the validation split has no 'fox' and the test split no 'emu' or 'fox'
    (a 10/10/3/2 folder's split), three candidates, run.json's class names."""
    rng = np.random.default_rng(4)
    y_val = np.array([0, 0, 1, 1, 2, 0, 1, 2])
    y_test = np.array([0, 1, 0, 1])
    run = tmp_path / "coverage"
    fileio.atomic_save_npy(run / "labels" / "val.npy", y_val)
    fileio.atomic_save_npy(run / "labels" / "test.npy", y_test)
    val, test = random_probs(rng, 3, 8, 4, y_val), random_probs(rng, 3, 4, 4, y_test)
    for i in range(3):
        write_candidate(str(run), f"trial_{i}", val[i], test[i])
    if names:
        Run(run).update(data={"task": {"class_names": list(names)}})
    return run


def test_ensemble_json_names_the_classes_without_val_or_test_examples(tmp_path, caplog):
    run = coverage_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        out = run_ensemble(run, budget=2)
    written = json.loads((run / "ensemble.json").read_text())
    assert written["coverage"] == out["coverage"] == {
        "val": {"classes": 4, "covered": 3, "missing": ["fox"]},
        "test": {"classes": 4, "covered": 2, "missing": ["emu", "fox"]}}
    test_note = "test metrics cover 2 of 4 classes; no test example of: emu, fox"
    val_note = ("validation metrics and the ensemble selection cover 3 of 4 classes; no "
                "validation example of: fox")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(test_note in w for w in warnings) and any(val_note in w for w in warnings)
    # ...and in the run's log (run_ensemble writes RUN/log.txt while it runs)
    logged = (run / "log.txt").read_text()
    assert test_note in logged and val_note in logged and "WARNING" in logged
    text = format_ensemble(out)
    assert f"note: {test_note}" in text and f"note: {val_note}" in text
    # The size is the members, and the greedy picks when they differ (with replacement a
    # member is picked again: "ensemble of 6" stood above 2 members, a new-user check).
    n = len(out["members"])
    head = text.splitlines()[0]
    members = f"{n} member" + ("" if n == 1 else "s")
    assert head.startswith(f"ensemble of {members}"), head
    assert ("greedy pick" in head) == (out["size"] != n)
    assert format_ensemble({**out.to_json(), "size": n + 4}).startswith(
        f"ensemble of {members} ({n + 4} greedy picks) (objective ")


def test_each_class_note_is_said_once_per_command(tmp_path, in_process, caplog):
    """A class missing from validation and test, and classes of 2-3 images there: the
    `ensemble` command said each coverage sentence twice (its warning, then
    format_ensemble's `note:`), and a fit three times (its data summary, the ensemble stage's
    warnings, the closing table's notes: issue 13's data). Once now: the command's warning
    says the few-examples notes, its `note:` lines the coverage; inside a fit
    (`export_follows`) that shows its progress (its data summary on stderr) the stage logs
    both at INFO; a fit without (progress=False, -q) and a Python caller are warned of each.
    Fails before: 2 of each coverage sentence from the command, warnings inside a fit."""
    from hubensemble.terminal import library_progress

    run = coverage_run(tmp_path)
    notes = ("test metrics cover 2 of 4 classes; no test example of: emu, fox",
             "validation metrics and the ensemble selection cover 3 of 4 classes; no "
             "validation example of: fox",
             "validation metrics and the ensemble selection rest on fewer than 5 validation "
             "examples of 3 classes", "test metrics rest on fewer than 5 test examples of 2 "
             "classes")
    code, out, err = in_process("ensemble", "--run", run, "--budget", "2")
    assert code == 0, err
    for note in notes:
        assert (out + err).count(note) == 1, (note, out, err)
    assert f"note: {notes[0]}" in out and f"WARNING hubensemble.ensemble: {notes[2]}" in err
    for export_follows, progress, level in ((True, True, logging.INFO),
                                            (True, False, logging.WARNING),
                                            (False, True, logging.WARNING)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble"), library_progress(progress):
            run_ensemble(run, budget=2, export_follows=export_follows)
        for note in notes:
            said = [r.levelno for r in caplog.records if note in r.getMessage()]
            assert said == [level], (note, export_follows, progress, said)


def test_coverage_without_class_names_uses_class_numbers_and_full_coverage_is_silent(
        tmp_path, run_dir, caplog):
    run = coverage_run(tmp_path, names=None)
    assert run_ensemble(run, budget=1)["coverage"]["test"]["missing"] == ["2", "3"]
    path, y_val, y_test, *_ = run_dir
    assert set(y_val) == set(y_test) == {0, 1, 2, 3}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        out = run_ensemble(path, budget=2)
    assert out["coverage"]["test"] == {"classes": 4, "covered": 4, "missing": []}
    assert not [r for r in caplog.records if "metrics cover" in r.getMessage()]
    assert "note:" not in format_ensemble(out)


def test_split_coverage_and_its_sentence():
    names = ["a", "b", "c"]
    assert split_coverage(names, np.array([2, 2, 0])) == {
        "classes": 3, "covered": 2, "missing": ["b"]}
    assert split_coverage(names, np.zeros(0, np.int64))["missing"] == names
    cov = {"test": split_coverage(names, [1]), "val": split_coverage(names, [0, 1, 2])}
    assert coverage_note(cov, "test") == "test metrics cover 1 of 3 classes; no test example " \
                                         "of: a, c"
    assert coverage_note(cov, "val") is None and coverage_note({}, "test") is None


def test_a_class_of_one_to_four_examples_is_named_with_its_count():
    """A long-tailed split (a class at 1-4 validation images) said nothing: the figures of
    such a class move by 25 points or more per image. 5 examples are enough, a class of none
    is coverage_note's, a label beyond the names is named by its number."""
    from hubensemble.data.coverage import FEW_EXAMPLES, few_note

    assert FEW_EXAMPLES == 5
    y = np.repeat([0, 1, 2, 4], [9, 4, 1, 2])  # class 3: none
    assert few_note(["a", "b", "c", "d", "e"], y, "val") == (
        "validation metrics and the ensemble selection rest on fewer than 5 validation "
        "examples of 3 classes: 'c' 1, 'e' 2, 'b' 4; one image moves such a class's accuracy "
        "by 0.25 (25 percentage points) or more, so read its figures as rough (give it more "
        "images)")
    assert few_note(["a", "b"], np.repeat([0, 1], [9, 5]), "test") is None
    # A VTAB-1k-like split of 100 classes, 2 validation images each: counted, not 100 names.
    many = few_note([f"c{i}" for i in range(100)], np.repeat(np.arange(100), 2), "val")
    assert "'c0' 2, 'c1' 2, 'c2' 2, 'c3' 2, 'c4' 2, … (100 of the 100 classes);" in many, many
    assert "'c5'" not in many
    assert few_note(["a", "b"], np.zeros(0, np.int64), "test") is None
    assert few_note([], np.repeat([0, 1], [9, 3]), "test").startswith(
        "test metrics rest on fewer than 5 test examples of 1 class: '1' 3; one image moves "
        "such a class's accuracy by 0.333 (33.3 percentage points)")


def test_a_candidates_cross_entropy_is_one_number_in_trial_json_and_ensemble_json(tmp_path):
    """Written through hubensemble.candidate as tune writes it: a zero probability for a true
    class (and one below the floor) gives the same CE in trial.json, the curve and the
    best-single line; with tune's old 1e-7 and ensemble's old 1e-12 they differed."""
    from hubensemble import candidate

    run = tmp_path / "run"
    y = np.array([0, 1, 2, 0, 1])
    probs = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5 - 1e-20, 1e-20],
                      [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]], np.float32)
    fileio.atomic_save_npy(run / "labels" / "val.npy", y)
    fileio.atomic_save_npy(run / "labels" / "test.npy", y)
    rec = {"trial": "default-0000-m", "module": "m", "status": "ok", "has_test": True,
           "val": candidate.split_record(probs, y), "test": candidate.split_record(probs, y)}
    candidate.write_candidate(run / "candidates", rec, val_probs=probs, test_probs=probs)
    saved = json.loads((run / "candidates" / "default-0000-m" / "trial.json").read_text())
    p_true = probs[np.arange(5), y].astype(np.float64)
    assert p_true[1] == 0 and 0 < p_true[2] < FLOOR
    want = -np.mean(np.log(np.maximum(p_true, FLOOR)))
    assert want == pytest.approx(-(2 * np.log(FLOOR) + np.log(0.8) + np.log(0.7)) / 5, rel=1e-7)
    assert saved["val"]["ce"] == pytest.approx(want, rel=1e-12)
    out = run_ensemble(run, budget=3)
    assert out["val"]["best_single"]["nll"] == saved["val"]["ce"]
    assert out["val_curve"][0]["ce"] == saved["val"]["ce"]
    assert out["test"]["best_single"]["nll"] == saved["test"]["ce"]
    assert out["val"]["ensemble"]["nll"] == saved["val"]["ce"]  # a single member


# ---------------------------------------------------------------------------------------------
# The ensemble-size rule (method-evidence issue; paper C.9)
# ---------------------------------------------------------------------------------------------

def _paired_se_reference(a, b):
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return math.sqrt(sum((x - d.mean()) ** 2 for x in d) / (len(d) - 1)) / math.sqrt(len(d))


def test_one_se_takes_the_plateau_the_argmin_overfits():
    # Two prefixes whose validation losses differ by far less than their standard error:
    # the paper's argmin takes size 1 on that noise, the rule takes the larger ensemble.
    rng = np.random.default_rng(0)
    base = rng.exponential(0.3, 200)
    second = base + rng.normal(0.0004, 0.05, 200)
    second += 0.0004 - (second - base).mean()  # exactly +0.0004 on average
    losses = np.stack([base, second])
    assert losses[1].mean() > losses[0].mean()
    assert 0.0004 < _paired_se_reference(second, base)
    size, record = choose_size(losses, rule="paper")
    assert size == 1 and record == {"rule": "paper", "best_size": 1, "size": 1, "se": 0.0}
    size, record = choose_size(losses, rule="one-se")
    assert size == 2 and record["best_size"] == 1
    assert record["se"] == pytest.approx(_paired_se_reference(second, base), rel=1e-12)
    assert choose_size(losses, rule="budget")[0] == 2


def test_one_se_keeps_one_model_that_truly_dominates():
    rng = np.random.default_rng(1)
    best = rng.exponential(0.2, 200)
    worse = [best + rng.normal(0.3 * j, 0.05, 200) for j in (1, 2, 3)]
    size, record = choose_size(np.stack([best, *worse]), rule="one-se")
    assert size == 1 and record["best_size"] == 1 and record["se"] == 0.0


def test_one_se_never_goes_past_a_prefix_that_is_worse_than_noise():
    # The largest prefix within one SE of the best: a later, clearly worse prefix is not
    # taken even though an earlier one qualifies, and the rule looks from the far end.
    rng = np.random.default_rng(2)
    a = rng.exponential(0.3, 300)
    noise = rng.normal(0.0, 0.02, 300)
    rows = [a + 0.05, a, a + noise - noise.mean(), a + 0.4]
    size, record = choose_size(np.stack(rows), rule="one-se")
    assert record["best_size"] == 2 and size == 3


def test_size_rule_ties_are_deterministic():
    losses = np.tile(np.linspace(0.1, 1.0, 50), (4, 1))  # four equal prefixes
    assert choose_size(losses, rule="paper")[0] == 1   # equal means -> the smaller
    assert choose_size(losses, rule="one-se")[0] == 1  # equal losses: nothing gained
    swapped = losses.copy()
    swapped[2] = swapped[2][::-1]  # the same mean, other examples: within 1 SE -> taken
    assert choose_size(swapped, rule="one-se")[0] == 3
    for rule in SIZE_RULES:
        assert choose_size(losses, rule=rule) == choose_size(losses.copy(), rule=rule)
    with pytest.raises(ValueError, match="unknown size rule 'median'.*one-se"):
        choose_size(losses, rule="median")


def test_greedy_select_records_its_size_rule_and_losses_match_the_curve():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 120)
    probs = random_probs(rng, 12, 120, 5, y, strength=0.8)
    paper = greedy_select(probs, y, budget=10, size_rule="paper")
    rule = greedy_select(probs, y, budget=10, size_rule="one-se")
    assert paper.indices == rule.indices  # the same path; only the cut differs
    assert rule.size >= paper.size == rule.size_rule["best_size"]
    ces = [c["ce"] for c in rule.curve]
    assert paper.size == int(np.argmin(ces)) + 1
    # The chosen prefix is within one paired SE of the best, and no larger prefix is.
    total = np.cumsum(probs[rule.indices].astype(np.float64), axis=0)
    per = [-np.log(np.maximum((total[j] / (j + 1))[np.arange(len(y)), y], metrics.PROB_FLOOR))
           for j in range(len(rule.indices))]
    b = paper.size - 1
    assert per[rule.size - 1].mean() - per[b].mean() <= _paired_se_reference(
        per[rule.size - 1], per[b]) + 1e-15
    for j in range(rule.size, len(per)):
        assert per[j].mean() - per[b].mean() > _paired_se_reference(per[j], per[b])
    assert Selection.from_json(json.loads(json.dumps(rule.to_json()))) == rule


def test_run_ensemble_records_a_test_curve_not_used_for_choices(run_dir):
    run, y_val, y_test, val, test = run_dir
    out = run_ensemble(run, budget=4, size_rule="paper")
    sel = greedy_select(val, y_val, budget=4, size_rule="paper")
    assert out["size_rule"]["rule"] == "paper" and out["size"] == sel.size
    curve = out["test_curve"]
    assert [c["size"] for c in curve] == list(range(1, len(sel.indices) + 1))
    for j, point in enumerate(curve, 1):
        ens = test[sel.indices[:j]].astype(np.float64).mean(axis=0)
        assert point["ce"] == pytest.approx(nll(ens, y_test), rel=1e-12)
        assert point["accuracy"] == accuracy(ens, y_test)
    # The chosen ensemble's test metrics are the curve's point at the chosen size.
    assert out["test"]["ensemble"]["nll"] == pytest.approx(curve[out["size"] - 1]["ce"])


def _two_class_table(p_true):
    """[M, N, 2] probabilities whose true class (label 0 everywhere) has p_true [M, N]."""
    p_true = np.asarray(p_true, np.float64)
    return np.stack([p_true, 1.0 - p_true], axis=2), np.zeros(p_true.shape[1], np.int64)


def test_with_replacement_a_dominant_model_takes_a_small_weight_on_another():
    # Candidate 0 dominates: an equal-weight pair with 1 is worse on validation than 0 alone
    # (so without replacement the paper's argmin keeps 0 alone), but 0 at weight 2/3 and 1 at
    # 1/3 is better (Caruana et al., 2004: a re-pick raises a member's weight). By hand, CE of
    # (1 - w) * p0 + w * p1 with p0 = 0.95 on 90 % and 0.02 on 10 % of the examples, p1 = 0.4:
    # w = 0: 0.4374, w = 1/2: 0.5097, w = 1/3: 0.4310.
    p0 = np.r_[np.full(180, 0.95), np.full(20, 0.02)]
    probs, y = _two_class_table([p0, np.full(200, 0.4), np.full(200, 0.3)])

    def ce(w):
        return float(-np.mean(np.log((1 - w) * p0 + w * 0.4)))

    assert ce(1 / 2) > ce(0) > ce(1 / 3)
    plain = greedy_select(probs, y, budget=3, size_rule="paper")
    assert plain.indices == [0, 1, 2] and plain.weights == {0: 1.0}
    repl = greedy_select(probs, y, budget=3, size_rule="paper", with_replacement=True)
    assert repl.indices == [0, 0, 1]  # the re-pick first, then the small weight
    assert repl.size == 3 and repl.weights == pytest.approx({0: 2 / 3, 1: 1 / 3})
    assert [c["ce"] for c in repl.curve] == pytest.approx([ce(0), ce(0), ce(1 / 3)], rel=1e-9)
    assert repl.curve[repl.size - 1]["ce"] < nll(probs[0], y)  # below the single on val
    # Deterministic: the same table gives the same path, and so does a float32 copy.
    again = greedy_select(probs.astype(np.float32), y, budget=3, size_rule="paper",
                          with_replacement=True)
    assert again.indices == repl.indices and again.size == repl.size


def test_with_replacement_a_model_that_no_mixture_improves_stays_alone():
    # Every mixture of candidate 0 with the others is worse on validation: with replacement
    # the path re-picks 0 every step, each prefix equals the single, and every size rule
    # gives candidate 0 alone at weight 1 (its validation NLL, not less and not more).
    rng = np.random.default_rng(4)
    p0 = rng.uniform(0.8, 0.99, 150)
    probs, y = _two_class_table([p0, rng.uniform(0.05, 0.5, 150), rng.uniform(0.1, 0.6, 150)])
    for rule in SIZE_RULES:
        sel = greedy_select(probs, y, budget=6, size_rule=rule, with_replacement=True)
        assert sel.indices == [0] * 6 and sel.weights == {0: 1.0}
        assert sel.curve[sel.size - 1]["ce"] == pytest.approx(nll(probs[0], y), rel=1e-12)
        # The prefixes' means differ only by float rounding (k * p / k): a tie, so the
        # smaller ensemble, for the argmin as for one-se; "budget" takes every pick.
        assert sel.size == (6 if rule == "budget" else 1)
        assert sel.size_rule["best_size"] == 1


def test_an_interrupted_sweep_is_said_by_ensemble_and_the_report(run_dir, caplog,
                                                                 figures_not_drawn):
    """A sweep stopped before its end (an interrupted fit or tune: planned trials with no
    candidate) looked finished: `ensemble` selected from part of the pool without a word and
    the report said "Nothing failed" and sent the user to `ensemble`. A failed trial is done
    (listed as failed), so only the trial never run makes the sweep unfinished."""
    from hubensemble import report
    from hubensemble.report.runfiles import load_run

    run, y_val, y_test, val, test = run_dir
    plan = ["default-0000-mod0", "default-0001-mod0", "default-0002-mod1", "default-0003-mod2"]
    for i, trial in enumerate(plan[:2]):
        write_candidate(run, trial, val[i], test[i], module="mod0")
    write_candidate(run, plan[2], val[2], test[2], module="mod1", status="failed",
                    reason="NaN loss")
    fileio.atomic_write_json(os.path.join(run, "run.json"), {"tune": {"sweeps": {"default": {
        "sweep": "default", "budget": 4, "seed": 0, "plan_size": 4, "trials": plan,
        "requested_modules": None, "batchnorm": {"requested": "auto"}}}}})
    with caplog.at_level(logging.WARNING):
        result = run_ensemble(run)
    said = "sweep default: 3 of 4 planned trials done; no trial yet of mod2"
    # From Python the call that finishes it (it said `hubensemble tune --run R --budget 4`),
    # on the command line the command.
    assert said in caplog.text and f"`run_tune(run_dir={str(run)!r}, budget=4)`" in caplog.text
    from hubensemble.lockwords import command_line
    from hubensemble.sweepstate import unfinished_warning

    with command_line():
        assert f"`hubensemble tune --run {run} --budget 4`" in unfinished_warning(run)
    assert result["unfinished"] == said and said in format_ensemble(result)
    files = load_run(run)
    assert "ensemble --run" not in str(files.next_step("ensemble")).split(";")[0]
    md = report.write_report(run)[0].read_text()
    assert "the sweep is unfinished" in md and "Nothing failed" not in md
    assert "this ensemble is selected from part of the pool" in md
    assert "default-0003-mod2" in md and "NaN loss" in md
    # `export` serves such an ensemble, saying so: it warned nothing.
    from hubensemble.ensemble import read_ensemble
    from hubensemble.export.stage import _warn_unfinished
    from hubensemble.rundir import Run

    def export_warning():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            _warn_unfinished(Run(run), read_ensemble(run), Run(run).meta())
        return caplog.text

    said_by_export = export_warning()
    assert "the ensemble it exports comes from part of the pool" in said_by_export
    assert f"`run_tune(run_dir={str(run)!r}, budget=4)`" in said_by_export
    # After tune, ensemble before export again (a fit's folder: the fit does both).
    assert (f"then run_ensemble(run_dir={str(run)!r}) and export_ensemble() again"
            in said_by_export)  # from Python, its functions

    write_candidate(run, plan[3], val[3], test[3], module="mod2")  # the sweep finished
    from hubensemble.sweepstate import unfinished_sweeps

    assert unfinished_sweeps(run) == []
    md = report.write_report(run)[0].read_text()
    assert "the sweep is unfinished" not in md
    assert f"selected before the sweep finished ({said} then)" in md
    assert f"call run_ensemble(run_dir={str(run)!r}) to select from the whole pool" in (
        export_warning())
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert "unfinished" not in run_ensemble(run).to_json()
    assert "unfinished" not in caplog.text
    assert export_warning() == ""


def test_a_written_candidate_records_its_weights_files_digest(tmp_path):
    # trial.json records the sha256 of the weights file tune wrote (a record naming its file,
    # or with "weights": None, as a caller may pass), and a file changed since is told apart.
    from hubensemble import candidate

    def save(path):
        with open(path, "wb") as f:
            f.write(b"weights")

    for i, extra in enumerate(({}, {"weights": None})):
        record = {"trial": f"t{i}", "status": "ok", "has_test": False, **extra}
        cand = candidate.write_candidate(tmp_path, record, val_probs=np.eye(2),
                                         save_weights=save)
        written = tmp_path / f"t{i}" / candidate.WEIGHTS_FILE
        assert cand.record["weights_sha256"] == fileio.file_sha256(written)
    cand = candidate.read_candidate(tmp_path, "t0")
    assert cand.weights_changed() is None
    written = tmp_path / "t0" / candidate.WEIGHTS_FILE
    written.write_bytes(b"edited")
    assert cand.weights_changed().startswith(f"its weights file {written} is not the one tune "
                                             "wrote (sha256 ")


@pytest.mark.parametrize("edit, said", [
    (lambda d: d.update(members="trial_0"), 'its "members" is a JSON string, expected an array'),
    (lambda d: d.update(members=["trial_0"]), "its member 0 is a JSON string, expected an object"),
    (lambda d: d["members"][0].update(weight="half"),
     """member 0's "weight" is "half", expected a number >= 0 and finite"""),
    (lambda d: d["members"][0].update(weight=None),
     """member 0's "weight" is null, expected a number >= 0 and finite"""),
    (lambda d: d["members"][0].update(weight=float("nan")),
     """member 0's "weight" is NaN, expected a number >= 0 and finite"""),
    (lambda d: d["members"][1].update(weight=-1),
     """member 1's "weight" is -1, expected a number >= 0 and finite"""),
    (lambda d: d["members"][0].update(weight=True),
     """member 0's "weight" is true, expected a number >= 0 and finite"""),
    (lambda d: d["members"][0].update(weight=10**400),  # an OverflowError traceback
     """member 0's "weight" is 10000000… (401 digits), expected a number >= 0 and finite"""),
    (lambda d: [m.update(weight=0) for m in d["members"]], """every member's "weight" is 0"""),
    (lambda d: d["members"][0].update(trial=None),
     """member 0's "trial" None is not the name of a folder of {run}/candidates"""),
    (lambda d: d["members"][0].update(trial="../../etc"),
     """member 0's "trial" '../../etc' is not the name of a folder of {run}/candidates"""),
    (lambda d: d["members"][1].update(trial=".."),
     """member 1's "trial" '..' is not the name of a folder of {run}/candidates"""),
    (lambda d: d["members"][0].update(module=["m"]),
     """member 0's "module" is a JSON array, expected a module name"""),
    (lambda d: d["members"].append(dict(d["members"][0])),
     """member 2's "trial" 'trial_0' is member 0's too"""),
    (lambda d: d["members"][0].update(module="mod1"),
     """member 0's "module" 'mod1' is not 'mod0', which {run}/candidates/trial_0/trial.json \
records"""),
])
def test_a_hand_edited_ensemble_json_is_refused_naming_the_member(run_dir, edit, said):
    # Export, distill and the report read members through read_ensemble: an edit gave
    # export an AttributeError or float() traceback, or (trial "../x") advice to delete
    # RUN/candidates/../x, or (another module) "the module's files changed since the trial".
    run, *_ = run_dir
    run_ensemble(run, budget=2, size_rule="budget")
    path = os.path.join(run, "ensemble.json")
    data = fileio.read_json(path)
    assert [(m["trial"], m["module"]) for m in data["members"]][0] == ("trial_0", "mod0")
    assert len(data["members"]) == 2 and read_ensemble(run) == data  # as written: read whole
    edit(data)
    with open(path, "w") as f:
        json.dump(data, f)  # as an editor writes it (NaN too)
    with pytest.raises(RunError) as e:
        read_ensemble(run)
    assert str(e.value) == (f"{path} is damaged ({said.format(run=run)}); "
                            f"run_ensemble(run_dir={run!r}, budget=2, size_rule='budget') "
                            "writes it again")  # the settings it was selected with


def test_an_older_ensemble_json_without_weights_or_extra_fields_still_reads(run_dir):
    # Older files held trial, module and weight at most: no path, picks, handle or seed.
    run, *_ = run_dir
    run_ensemble(run, budget=2, size_rule="budget")
    path = os.path.join(run, "ensemble.json")
    data = fileio.read_json(path)
    data["members"] = [{"trial": m["trial"], "module": m["module"]} for m in data["members"]]
    fileio.atomic_write_json(path, data)
    assert read_ensemble(run)["members"] == data["members"]


def test_candidates_of_another_class_count_than_the_runs_task_are_refused(tmp_path):
    # Candidates predicting 4 classes in a run whose task has 6 named classes (or 12 in one
    # of 10, measured): the labels fit, and the ensemble was selected and written, its
    # coverage in class numbers, "10 of 12 classes", naming classes the task does not have.
    run = coverage_run(tmp_path, names=("cat", "dog", "emu", "fox", "gnu", "hen"))
    with pytest.raises(RunError) as e:
        run_ensemble(run, budget=2)
    assert str(e.value) == (
        f"the candidates in {run / 'candidates'} predict another number of classes (e.g. "
        "trial_0: val_probs.npy has 4 classes) than the run's task, 6 "
        f"({run / 'run.json'}); they come from another task: move them out "
        f"and call run_tune(run_dir={str(run)!r}) again")
    assert not (run / "ensemble.json").exists()


def test_an_empty_validation_labels_file_is_refused_naming_it(tmp_path):
    # A val.npy of 0 labels (damaged, or written by hand) gave numpy's "zero-size array to
    # reduction operation minimum which has no identity", naming no file.
    run = coverage_run(tmp_path)
    labels = run / "labels" / "val.npy"
    fileio.atomic_save_npy(labels, np.zeros(0, np.int64))
    with pytest.raises(RunError) as e:
        run_ensemble(run)
    assert str(e.value) == (f"{labels} holds no labels, and the ensemble is chosen on the "
                            f"validation images; run_tune(run_dir={str(run)!r}) writes it "
                            "again from the run's data")


def test_no_usable_candidates_gives_the_runs_own_sweep_after_removing_failed_trials(tmp_path):
    """Every trial of a probe sweep failed (a frozen module at chance): ensemble said "`tune
    --run RUN` writes them", which reused the failed trials and ran the default sweep. Its
    words name the folders to remove first and the probe sweep's own command (run.json)."""
    import shutil

    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = str(tmp_path / "run")
    rng = np.random.default_rng(0)
    y_val = rng.integers(0, 3, 20)
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y_val)
    fileio.atomic_write_json(os.path.join(run, "run.json"), {"tune": {"sweeps": {"probe": {
        "budget": 3, "seed": 0, "profile": PROFILES["quick"].to_json()}}}})
    probs = random_probs(rng, 2, 20, 3, y_val)
    for i in range(2):
        write_candidate(run, f"probe-000{i}-m", probs[i], status="failed", reason="at chance")
    cands = os.path.join(run, "candidates")
    with command_line(), pytest.raises(RunError) as e:
        run_ensemble(run)
    assert str(e.value).endswith(
        "; 2 failed, which running tune again does not retry: to retry them once their cause "
        f"is fixed, remove their folders (`(cd {cands} && rm -r probe-0000-m probe-0001-m)`), "
        "then run "
        f"`hubensemble tune --run {run} --sweep probe --budget 3 --profile quick`"), e.value
    with pytest.raises(RunError) as e:  # a Python caller's words
        run_ensemble(run)
    assert str(e.value).endswith(
        f"then call run_tune(run_dir={run!r}, sweep='probe', budget=3, profile='quick')")
    # An incomplete candidate (no failure): the sweep's command redoes it.
    for i in range(2):
        shutil.rmtree(write_candidate(run, f"probe-000{i}-m", probs[i]))
        write_candidate(run, f"probe-000{i}-m", probs[i], weights=False)
    with command_line(), pytest.raises(RunError) as e:
        run_ensemble(run)
    redo = f"run `hubensemble tune --run {run} --sweep probe --budget 3 --profile quick`"
    assert f"{redo} to redo this trial)" in str(e.value), e.value
    assert str(e.value).endswith("); run that tune command to write them"), e.value
    assert str(e.value).count(redo) == 1, e.value  # the same command, said once


def test_a_member_whose_weights_changed_is_redone_by_its_own_sweeps_command(tmp_path, caplog):
    """ensemble's warning on a member whose weights file changed since tune wrote it said
    "delete … and `tune --run RUN` again (it redoes the trial)": for a seeds trial that runs
    the default sweep and leaves it undone. It gives the seeds sweep's command (run.json)."""
    from hubensemble import candidate
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    rng = np.random.default_rng(1)
    y_val = rng.integers(0, 3, 30)
    fileio.atomic_save_npy(run / "labels" / "val.npy", y_val)
    fileio.atomic_write_json(run / "run.json", {"tune": {"sweeps": {"seeds": {
        "budget": 2, "seed": 0, "profile": PROFILES["quick"].to_json()}}}})
    probs = random_probs(rng, 1, 30, 3, y_val, strength=4.0)[0]
    candidate.write_candidate(run / "candidates", {
        "trial": "seeds-0000-m", "module": "m", "status": "ok", "has_test": False},
        val_probs=probs, save_weights=lambda p: open(p, "wb").write(b"weights"))
    weights = run / "candidates" / "seeds-0000-m" / candidate.WEIGHTS_FILE
    weights.write_bytes(b"edited")
    with command_line(), caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        run_ensemble(run, budget=1)
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("member seeds-0000-m:")]  # (not the no-hparams line)
    # tune redoes it as it is (its file changed since tune wrote it): no delete first (399's
    # check: the report had stopped saying it, the ensemble not).
    tune = (f"run `hubensemble tune --run {run} --sweep seeds --budget 2 --profile quick` "
            "again (it redoes the trial)")
    # Export refuses it (4d10cf5c), which the warning did not say; the ensemble runs again
    # after tune's redo (the redone trial is in no ensemble until then).
    assert len(said) == 1 and said[0].endswith(
        f"not these, and export refuses it: restore the file, or {tune}, then this ensemble "
        "again"), said
    # A trial.json of a version before it recorded its files: tune reuses it, delete first.
    record = json.loads((weights.parent / "trial.json").read_text())
    record.pop("written")
    (weights.parent / "trial.json").write_text(json.dumps(record))
    caplog.clear()
    with command_line(), caplog.at_level(logging.WARNING, logger="hubensemble.ensemble"):
        run_ensemble(run, budget=1)
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("member seeds-0000-m:")]
    assert len(said) == 1 and said[0].endswith(
        f"restore the file, or delete {run / 'candidates' / 'seeds-0000-m'} and {tune}, then "
        "this ensemble again"), said


def test_a_probability_table_edited_since_tune_is_not_selected_on_nor_tested(tmp_path):
    """A candidate's val_probs.npy edited after tune (rows rolled: a valid table of other
    numbers): the ensemble selected on it without a word, and cost read it so. It is left
    out, named with the way on (tune redoes it as it is: no delete); a test table edited
    leaves that candidate without test figures, said."""
    from hubensemble import candidate
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    rng = np.random.default_rng(3)
    y_val, y_test = rng.integers(0, 3, 30), rng.integers(0, 3, 20)
    fileio.atomic_save_npy(run / "labels" / "val.npy", y_val)
    fileio.atomic_save_npy(run / "labels" / "test.npy", y_test)
    fileio.atomic_write_json(run / "run.json", {"tune": {"sweeps": {"seeds": {
        "budget": 3, "seed": 0, "profile": PROFILES["quick"].to_json()}}}})
    vals = random_probs(rng, 3, 30, 3, y_val, strength=4.0)
    tests = random_probs(rng, 3, 20, 3, y_test, strength=4.0)
    for i in range(3):
        candidate.write_candidate(run / "candidates", {
            "trial": f"seeds-000{i}-m", "module": "m", "status": "ok", "has_test": True,
            "hparams": {"lr": 0.01, "steps": 10}}, val_probs=vals[i], test_probs=tests[i])
    edited = run / "candidates" / "seeds-0000-m"
    np.save(edited / "val_probs.npy", np.roll(vals[0], 1, axis=1))
    np.save(run / "candidates" / "seeds-0001-m" / "test_probs.npy", np.roll(tests[1], 1, axis=1))
    with command_line():
        result = run_ensemble(run, budget=3)
    tune = (f"run `hubensemble tune --run {run} --sweep seeds --budget 3 --profile quick` to "
            "redo this trial")
    assert [s["trial"] for s in result.skipped] == ["seeds-0000-m"], result.skipped
    reason = result.skipped[0]["reason"]
    assert reason.startswith("val_probs.npy is not the one tune wrote (sha256 "), reason
    assert reason.endswith(f"now: edited or replaced since) ({tune})"), reason
    assert "seeds-0000-m" not in result.picks and "delete" not in reason
    assert "seeds-0001-m" in result.picks  # its validation table is tune's
    assert result.test_missing.startswith(
        "no test probabilities for member seeds-0001-m (test_probs.npy is not the one tune "
        "wrote (sha256 "), result.test_missing
    assert result.test_missing.endswith(f"; {tune})"), result.test_missing


def test_a_relative_run_is_named_absolute_in_the_missing_files_words(tmp_path, monkeypatch):
    """`ensemble --run "sp a/r un"` (and export, cost) said "sp a/r un/labels/val.npy is
    missing" and "sp a/r un/ensemble.json is missing", relative, beside the absolute run its
    way on names. Each file, and the candidates folder, is named absolute."""
    from hubensemble.candidate import require_pool
    from hubensemble.ensemble import read_ensemble

    run = tmp_path / "sp a" / "r un"
    fileio.atomic_write_json(run / "run.json", {})
    monkeypatch.chdir(tmp_path)
    for call, missing in ((lambda: run_ensemble("sp a/r un"), run / "labels" / "val.npy"),
                          (lambda: read_ensemble("sp a/r un"), run / "ensemble.json"),
                          (lambda: require_pool("sp a/r un/candidates", "sp a/r un", [], []),
                           run / "candidates")):
        with pytest.raises(RunError) as err:
            call()
        assert str(err.value).startswith(f"{missing} is missing; "), err.value


def test_labels_words_give_the_runs_own_sweep_which_writes_them_without_new_trials(tmp_path):
    """An empty, unreadable or missing RUN/labels/val.npy of a probe run: ensemble said
    "`hubensemble tune --run RUN` writes it again", which runs the default sweep (8 new
    trials). It names the run's last sweep with its recorded options, which reuses its
    trials and writes the labels (tune.stage)."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    fileio.atomic_write_json(run / "run.json", {"tune": {"sweep": "probe", "sweeps": {"probe": {
        "budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json()}}}})
    command = f"`hubensemble tune --run {run} --sweep probe --budget 4 --profile quick`"
    labels = run / "labels" / "val.npy"
    for write, said in ((lambda: fileio.atomic_save_npy(labels, np.zeros(0, np.int64)),
                         "holds no labels"),
                        (lambda: labels.write_bytes(b"garbage"), "is unreadable"),
                        (lambda: labels.unlink(), "is missing")):
        write()
        with command_line(), pytest.raises(RunError) as e:
            run_ensemble(run)
        assert f"{labels} {said}" in str(e.value) and f"; {command} writes it" in str(
            e.value), e.value


def _run_with_foreign_candidates(tmp_path, seed):
    """(run, y_val, own probabilities): a run whose task has 3 classes (run.json records
    them) and three candidates, trial_1 of its task and trial_0 and trial_2 of another task
    of 4 classes, which outvote it."""
    rng = np.random.default_rng(seed)
    run = tmp_path / "run"
    y_val = rng.integers(0, 3, 24)
    fileio.atomic_save_npy(run / "labels" / "val.npy", y_val)
    Run(run).update(data={"task": {"num_classes": 3, "class_names": ["a", "b", "c"]}})
    own = random_probs(rng, 1, 24, 3, y_val)[0]
    foreign = random_probs(rng, 2, 24, 4, y_val)
    for trial, probs in (("trial_0", foreign[0]), ("trial_1", own), ("trial_2", foreign[1])):
        write_candidate(str(run), trial, probs)
    return run, y_val, own


def test_the_pools_class_count_is_the_runs_task_not_a_vote_of_its_candidates(tmp_path):
    """load_pool kept the class count most candidates had: two candidates of another task
    (4 classes) outvoted the run's own (3, run.json's "num_classes"), which was skipped as
    the odd one out, and the ensemble refused the run. The run's count decides; the others
    are skipped, each named with its count and the record it disagrees with. Fails before:
    RunError (the vote's 4 classes against run.json's 3 names)."""
    run, y_val, own = _run_with_foreign_candidates(tmp_path, seed=5)
    out = run_ensemble(run, budget=2)
    assert [m["trial"] for m in out["members"]] == ["trial_1"] and out["n_candidates"] == 1
    want = f"val_probs.npy has 4 classes, the run's task ({run / 'run.json'}) 3: another task's"
    way = ("; tune reuses a finished trial's folder, so delete {}, then run tune again (it "
           "redoes the trial), then this ensemble again")
    assert out["skipped"] == [
        {"trial": t, "reason": want + way.format(run / "candidates" / t)}
        for t in ("trial_0", "trial_2")]
    assert math.isclose(out["val"]["ensemble"]["nll"], log_loss(y_val, own, labels=[0, 1, 2]),
                        rel_tol=1e-5)
    # Without a record of the task's classes, the count most candidates share, as before.
    Run(run).update(data={"task": {}})
    cands, skipped = load_candidates(run)
    assert [c.trial for c in cands] == ["trial_0", "trial_2"]
    assert skipped == [("trial_1", "val_probs.npy has 3 classes, the other candidates 4")]


def _exported_run(tmp_path):
    """A run of a probe sweep (run.json records it, quick profile) exported to OUT, three
    candidates, the second's trial.json hyperparameters edited by hand ("lr": "0.01")."""
    from hubensemble.hyperrule import PROFILES

    rng = np.random.default_rng(6)
    run, out = tmp_path / "run", tmp_path / "served"
    y_val = rng.integers(0, 3, 30)
    fileio.atomic_save_npy(run / "labels" / "val.npy", y_val)
    fileio.atomic_write_json(run / "run.json", {
        "tune": {"sweep": "probe", "sweeps": {"probe": {
            "budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json()}}},
        "export": {"path": str(out), "in_run": None}})
    probs = random_probs(rng, 3, 30, 3, y_val, strength=3.0)
    for i in range(3):
        write_candidate(str(run), f"probe-000{i}-m", probs[i])
    trial = run / "candidates" / "probe-0001-m" / "trial.json"
    fileio.atomic_write_json(trial, {**json.loads(trial.read_text()),
                                     "hparams": {"lr": "0.01", "steps": 100}})
    return run, out, y_val, probs


def test_a_candidate_whose_hyperparameters_cannot_be_read_is_skipped_and_named(tmp_path):
    """ensemble selected a candidate whose trial.json hyperparameters are unreadable; export
    (and distill) then refused it. It is skipped, counted and named with the file and the
    whole way on, in ensemble.json's "skipped" and ensemble's output, and the ensemble goes
    on from the others. Fails before: probe-0001-m (the best candidate) is a member."""
    from hubensemble.lockwords import command_line

    run, out, y_val, _ = _exported_run(tmp_path)
    sharp = np.full((len(y_val), 3), 0.05, np.float32)
    sharp[np.arange(len(y_val)), y_val] = 0.9  # the best candidate by far: greedy's first pick
    fileio.atomic_save_npy(run / "candidates" / "probe-0001-m" / "val_probs.npy", sharp)
    with command_line():
        result = run_ensemble(run, budget=3)
    folder = run / "candidates" / "probe-0001-m"
    want = (f"{folder / 'trial.json'}: its hyperparameters cannot be read (invalid "
            "hyperparameters: lr must be a number (got '0.01')); restore that file from a "
            f"copy, or delete the folder ({folder}) to run the trial again (run `hubensemble "
            f"tune --run {run} --sweep probe --budget 4 --profile quick`, then `hubensemble "
            f"ensemble --run {run}` and `hubensemble export --run {run} --out {out}`)")
    assert result["skipped"] == [{"trial": "probe-0001-m", "reason": want}]
    assert json.loads((run / "ensemble.json").read_text())["skipped"] == result["skipped"]
    assert result["n_candidates"] == 2
    assert "probe-0001-m" not in [m["trial"] for m in result["members"]]
    assert f"  skipped probe-0001-m: {want}" in format_ensemble(result).splitlines()


def test_read_hparams_gives_the_whole_way_on_tune_then_ensemble_then_export(tmp_path):
    """Candidate.read_hparams' way on (export's, distill's refusal of a member whose
    trial.json hyperparameters cannot be read) stopped at tune: the ensemble and the export
    then still held the pool of before. It names ensemble, and export when the run was
    exported (run.json "export"). Fails before: the words end at the tune command."""
    from hubensemble import candidate
    from hubensemble.lockwords import command_line

    run, out, _, _ = _exported_run(tmp_path)
    cand = candidate.read_candidate(run / "candidates", "probe-0001-m")
    with command_line(), pytest.raises(RunError) as e:
        cand.read_hparams()
    assert str(e.value).endswith(
        f"(run `hubensemble tune --run {run} --sweep probe --budget 4 --profile quick`, then "
        f"`hubensemble ensemble --run {run}` and `hubensemble export --run {run} --out {out}`)")
    with pytest.raises(RunError) as e:  # from Python, the calls
        cand.read_hparams()
    assert str(e.value).endswith(
        f"(call run_tune(run_dir={str(run)!r}, sweep='probe', budget=4, profile='quick'), "
        f"then run_ensemble(run_dir={str(run)!r}) and export_ensemble(run_dir={str(run)!r}, "
        f"out_dir={str(out)!r}))"), e.value
    meta = json.loads((run / "run.json").read_text())
    fileio.atomic_write_json(run / "run.json", {"tune": meta["tune"]})  # never exported
    with command_line(), pytest.raises(RunError) as e:
        cand.read_hparams()
    assert str(e.value).endswith(
        f"--profile quick`, then `hubensemble ensemble --run {run}`)"), e.value


def test_ensembles_tune_words_name_the_runs_own_sweep(tmp_path):
    """ensemble's refusals of candidates of another task and of a run without candidates
    (candidate.require_pool, also cost's and the command line's check), and read_ensemble's
    of a run without ensemble.json or a usable candidate, said a plain `tune --run RUN`,
    which runs the default sweep (8 other trials for a probe run). They name the run's
    recorded sweep with its options (sweepwords.sweep_command). Fails before: `hubensemble
    tune --run RUN` again."""
    import shutil

    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = coverage_run(tmp_path, names=("cat", "dog", "emu", "fox", "gnu", "hen"))
    Run(run).update(tune={"sweep": "probe", "sweeps": {"probe": {
        "budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json()}}})
    command = f"`hubensemble tune --run {run} --sweep probe --budget 4 --profile quick`"
    with command_line(), pytest.raises(RunError) as e:
        run_ensemble(run, budget=2)
    assert str(e.value).endswith(f"move them out and run {command} again"), e.value
    shutil.rmtree(run / "candidates")
    with command_line(), pytest.raises(RunError) as e:
        run_ensemble(run)
    assert str(e.value) == f"{run / 'candidates'} is missing; {command} writes the candidates"
    with command_line(), pytest.raises(RunError) as e:
        read_ensemble(run)
    assert str(e.value).endswith(f", from the candidates that {command} writes first (the "
                                 "run has no usable one yet)"), e.value


def test_only_hyperparameters_edited_or_damaged_keep_a_candidate_from_selection(run_dir):
    """ensemble.selectable leaves out a candidate whose "hparams" hold every field HParams
    requires with a value it refuses, or are no object; a record without them, or without
    lr or steps (another writer's: tests and tools write {"lr": 0.1}), is left to export's
    refusal. Fails before (895f35b's rule): {"lr": 0.1} was skipped too, and the report's
    runs of such records had no candidate."""
    from hubensemble.ensemble import selectable

    run, *_ = run_dir
    edits = {"trial_0": {"lr": 0.1}, "trial_5": {}, "trial_10": {"lr": "x", "steps": 1},
             "trial_15": "garbage", "trial_20": None}
    for trial, hparams in edits.items():
        path = os.path.join(run, "candidates", trial, "trial.json")
        record = json.loads(open(path).read())
        record.pop("hparams")
        if hparams is not None:
            record["hparams"] = hparams
        fileio.atomic_write_json(path, record)
    cands, skipped = selectable(*load_candidates(run))
    assert [c.trial for c in cands] == ["trial_0", "trial_5", "trial_20"]
    assert [t for t, _ in skipped] == ["trial_10", "trial_15"]
    assert "lr must be a number (got 'x')" in dict(skipped)["trial_10"]


def test_the_reports_candidate_list_is_of_the_runs_class_count_as_ensembles_pool(tmp_path):
    """The report read the pool by the candidates' vote (load_pool without n_classes): two
    candidates of another task (4 classes) were listed as the run's candidates and its own
    (3 classes, run.json's) as skipped, where ensemble selects from the run's own. It reads
    ensemble's pool (ensemble.load_candidates, the run's class count). Fails before: the
    report listed trial_0 and trial_2."""
    from hubensemble.report.runfiles import load_run

    run, _, _ = _run_with_foreign_candidates(tmp_path, seed=7)
    files = load_run(run)
    assert [c.trial for c in files.candidates] == ["trial_1"]
    assert [t for t, _ in files.skipped] == ["trial_0", "trial_2"]
    assert [c.trial for c in files.candidates] == [c.trial for c in load_candidates(run)[0]]


def test_every_way_on_that_selects_again_keeps_the_ensembles_own_settings(tmp_path):
    """A trial tuned again (Candidate.read_hparams), a damaged ensemble.json (read_ensemble)
    and export's "lists no members" said a plain `ensemble --run RUN`, which selects again
    under the defaults: an ensemble of --budget 3 --size-rule paper came back of up to 15
    members by the one-se rule. Each names ensemble with the settings ensemble.json records
    (sweepwords.ensemble_words, as the TFLite and distill refusals already did). Fails before:
    `hubensemble ensemble --run RUN` alone."""
    from hubensemble import candidate
    from hubensemble.ensemble import run_ensemble
    from hubensemble.ensemblefile import read_ensemble
    from hubensemble.lockwords import command_line

    run, _, _, _ = _exported_run(tmp_path)
    run_ensemble(run, budget=3, size_rule="paper")
    again = f"`hubensemble ensemble --run {run} --budget 3 --size-rule paper`"
    cand = candidate.read_candidate(run / "candidates", "probe-0001-m")
    with command_line(), pytest.raises(RunError) as e:
        cand.read_hparams()
    assert f", then {again} and `hubensemble export" in str(e.value), e.value
    record = json.loads((run / "ensemble.json").read_text())
    fileio.atomic_write_json(run / "ensemble.json", {**record, "members": "all"})
    with command_line(), pytest.raises(RunError) as e:
        read_ensemble(run)
    assert str(e.value).endswith(f"{again} writes it again"), e.value
    with pytest.raises(RunError) as e:  # from Python, the call with its keywords
        read_ensemble(run)
    assert str(e.value).endswith(
        f"run_ensemble(run_dir={str(run)!r}, budget=3, size_rule='paper') writes it again"), e.value


def test_the_finish_words_of_a_fit_folder_tuned_again_name_the_tune_that_plans_the_sweep(
        run_dir):
    """A fit with --budget 4, then `tune --run R` (8 planned) with one trial left undone: the
    warning named the fit's command, which plans 4 trials and never runs the missing one (a
    new-user check). The fit's command is named only while it plans the sweep as recorded;
    and "got no trial" is the pool's, not the last call's budget's (the fit summary said so of
    a module whose trial was the best single)."""
    from hubensemble.lockwords import command_line
    from hubensemble.report import summary_table, write_report
    from hubensemble.sweepstate import unfinished_warning

    run, _, _, val, test = run_dir
    plan = [f"default-{i:04d}-{m}" for i, m in enumerate(["a"] * 4 + ["b"] * 4)]
    for i, trial in enumerate(plan[:6] + plan[7:]):
        write_candidate(run, trial, val[i % 5], test[i % 5], module=trial[13:])
    record = {"sweep": "default", "budget": 8, "seed": 0, "plan_size": 8, "trials": plan,
              "requested_modules": None, "batchnorm": {"requested": "auto"},
              "untuned": None}
    fit = {"options": {"sweep": "default", "budget": 4, "seed": 0, "batchnorm": "auto",
                       "profile": "quick", "top_k": 2}}
    meta = {"fit": fit, "tune": {**record, "sweeps": {"default": record}}}
    fileio.atomic_write_json(os.path.join(run, "run.json"), meta)
    with command_line():
        said = unfinished_warning(run)
    assert "sweep default: 7 of 8 planned trials done" in said
    assert f"Finish it with `hubensemble tune --run {run} --budget 8`" in said, said
    assert "hubensemble fit" not in said
    # The fit's own command while it plans the recorded sweep.
    fileio.atomic_write_json(os.path.join(run, "run.json"), dict(
        meta, fit={"options": dict(fit["options"], budget=8)}))
    with command_line():
        assert "Finish it with `hubensemble fit " in unfinished_warning(run)
    # The fit again with --budget 4 records b as given no trial; the pool holds six of b's.
    untuned = {"modules": ["b"], "budget": 4, "reached": 1, "of": 2, "given": False,
               "tau": None}
    four = dict(record, budget=4, plan_size=4, trials=plan[:4], untuned=untuned)
    fileio.atomic_write_json(os.path.join(run, "run.json"), dict(
        meta, tune={**four, "sweeps": {"default": four}}))
    assert "got no trial" not in summary_table(run)
    assert "gave no trial" not in write_report(run)[0].read_text()
    # With no candidate of b in the pool, both say it.
    import shutil

    for trial in plan[4:]:
        shutil.rmtree(os.path.join(run, "candidates", trial), ignore_errors=True)
    assert "skipped: b got no trial of the default sweep" in summary_table(run)
    text = write_report(run)[0].read_text()
    assert "gave no trial" in text
    # The Overview's count says it in the same words, not "0 skipped" (a new user's check).
    assert ("usable, 0 failed, 0 left out; 1 module got no trial of the "
            "sweep's budget") in text, text[:1500]


def test_a_candidate_without_a_readable_record_is_skipped_with_its_folder_and_command(
        run_dir, figures_not_drawn):
    """ensemble's skip line for a trial.json cut short ("trial.json unreadable (Unterminated
    string …)") gave no next step, and the report's row for a deleted one said "delete the
    folder and run its sweep's tune again" with no folder and no command: both name the
    folder and its sweep's tune (a plain tune runs the default sweep), as the rows of an
    edited record do."""
    from hubensemble import report
    from hubensemble.lockwords import command_line

    run, _, _, val, test = run_dir
    for i in range(3):
        write_candidate(run, f"probe-000{i}-m", val[i], test[i])
    cut = os.path.join(run, "candidates", "probe-0001-m", "trial.json")
    with open(cut, "r+b") as f:
        f.truncate(40)
    os.remove(os.path.join(run, "candidates", "probe-0002-m", "trial.json"))
    fileio.atomic_write_json(os.path.join(run, "run.json"), {})
    with command_line():
        skipped = dict((s["trial"], s["reason"]) for s in run_ensemble(run)["skipped"])
    for trial in ("probe-0001-m", "probe-0002-m"):
        folder = os.path.join(run, "candidates", trial)
        assert (f"restore its trial.json from a copy, or delete {folder} and run "
                f"`hubensemble tune --run {run} --sweep probe` (it redoes the trial), then "
                "this ensemble again") in skipped[trial], skipped[trial]
    assert skipped["probe-0001-m"].startswith("trial.json unreadable (")
    md = report.write_report(run)[0].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| probe-0002-m |"))
    assert row.endswith(f"| delete `{os.path.join(run, 'candidates', 'probe-0002-m')}`, then "
                        f"run `hubensemble tune --run {run} --sweep probe` |"), row
    # A row with its own way on (the other candidates') has none in that column.
    assert "| trial | reason | to redo it |" in md


def test_a_stray_folder_of_a_sweep_the_run_never_planned_is_moved_aside_not_tuned(run_dir):
    """candidates/hyper-0009-beta/trial.json = "{bad" in a run whose tune ran the probe sweep
    alone: the skip line said "delete … and run `hubensemble tune --run RUN --sweep hyper`",
    which starts a whole hyper sweep the run never planned; the report's row says to delete
    it or move it aside (`report.failures.redo_step`): one rule for both
    (`ensemble.unplanned_folder`). Fails before: "--sweep hyper"."""
    from hubensemble.lockwords import command_line

    run, _, _, val, test = run_dir
    for i in range(2):
        write_candidate(run, f"probe-000{i}-m", val[i], test[i])
    stray = os.path.join(run, "candidates", "hyper-0009-beta")
    os.makedirs(stray)
    with open(os.path.join(stray, "trial.json"), "w") as f:
        f.write("{bad")
    fileio.atomic_write_json(os.path.join(run, "run.json"),
                             {"tune": {"sweep": "probe", "sweeps": {"probe": {"budget": 2}}}})
    with command_line():
        skipped = dict((s["trial"], s["reason"]) for s in run_ensemble(run)["skipped"])
    said = skipped["hyper-0009-beta"]
    assert "--sweep hyper" not in said and "tune" not in said, said
    assert said.endswith(f"; delete {stray} (or move it aside: no sweep the run ran plans it), "
                         "then this ensemble again"), said
    # A folder of a sweep the run ran keeps tune's way on.
    from hubensemble.ensemble import unplanned_folder

    assert not unplanned_folder(run, "probe-0001-m") and unplanned_folder(run, "hyper-0009-beta")


def test_test_figures_on_copies_of_training_images_are_said_to_be_no_held_out_measure(
        run_dir, tmp_path, figures_not_drawn):
    """A folder whose test/ holds byte copies of train/ and val/ files: the ensemble's
    summary, fit's closing table and the report's test section gave the test figures alone,
    though run.json's data.task.duplicates counted the copies (a new-user check: 30 of 117
    lifted 0.5862 to 0.6752). Each says `heldoutwords.test_copies_note` beside them; a run
    without copies says nothing. Fails before: no "not a held-out measure"."""
    import shutil

    from PIL import Image

    from hubensemble import report
    from hubensemble.data import load_task
    from hubensemble.ensemble import format_ensemble
    from hubensemble.lockwords import command_line
    from hubensemble.report.write import summary_table

    rng = np.random.default_rng(11)
    root = tmp_path / "split"
    for split, k in (("train", 5), ("val", 2), ("test", 3)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(k):
                Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(
                    root / split / name / f"{i:02d}.png")
    shutil.copy(root / "train" / "a" / "00.png", root / "test" / "a" / "copy of 00.png")
    shutil.copy(root / "val" / "b" / "01.png", root / "test" / "b" / "copy of 01.png")
    task = load_task(f"folder:{root}")
    run, _, y_test, _, _ = run_dir
    n = len(y_test)  # the run's test split (its labels), of which the record counts 2 copies
    Run(run).update(data={"task": {"duplicates": task.duplicates, "sizes": {"test": n}}})
    said = (f"not a held-out measure: 2 of the {n} test images are copies of training (1) or "
            "validation (1) images (the same pixels; a fit with --dedupe drops them, into "
            "another --out folder or with --restart)")
    with command_line():
        result = run_ensemble(run)
        text = format_ensemble(result)
        table = summary_table(run)
    assert f"note: test figures are {said}" in text, text
    assert text.index("test:") < text.index(said), text
    assert f"note: test figures are {said}" in table, table
    md = " ".join(report.write_report(run)[0].read_text().split())
    assert f"the test figures are {said}." in md, md
    # From Python, the way on in its words; a run without copies: no note.
    assert "load_task(…, dedupe=True) drops them" in format_ensemble(run_ensemble(run))
    Run(run).update(data={"task": {"duplicates": load_task(f"folder:{root}", dedupe=True)
                                   .duplicates, "sizes": {"test": n}}})
    assert "held-out" not in format_ensemble(run_ensemble(run)) + summary_table(run)


def test_test_copies_in_train_and_val_are_counted_once_in_ensemble_json():
    """ensemble.json's "test_copies" kept the duplicates record's "across" counts alone, so fit's
    closing table and the ensemble's summary said "up to 4 of the 20 test images" of 3 test
    images with a copy in train or val (one in both), where evaluate said 3: the record's exact
    count, "test_in_either", is kept and said. Fails before: "up to 4"."""
    from hubensemble.ensembletext import test_copies_record, test_copies_text
    from hubensemble.heldoutwords import test_copies_note

    duplicates = {"across": {"test_in_train": 2, "test_in_val": 2, "val_in_train": 1},
                  "test_in_either": 3}
    record = test_copies_record(duplicates, 20)
    assert record["test_in_either"] == 3, record
    said = test_copies_text(record)
    assert said.startswith("not a held-out measure: 3 of the 20 test images"), said
    assert said == test_copies_note(duplicates, 20)  # the words evaluate and the report say
    del duplicates["test_in_either"]  # a record written before: "up to", as it was
    assert "up to 4 of the 20" in test_copies_text(test_copies_record(duplicates, 20))


def _cut_trials(run, trials):
    """Candidate folders of `trials` in `run` whose trial.json is cut short (not JSON), as a
    hand edit or a copy stopped halfway leaves it."""
    for trial in trials:
        (run / "candidates" / trial).mkdir(parents=True)
        (run / "candidates" / trial / "trial.json").write_text('{"trial": "cut')


def test_no_usable_candidates_names_one_command_that_plans_every_trial_to_redo(tmp_path):
    """ensemble's "no usable candidates" gave, per sweep, the redo command of the first
    unusable trial: after `tune --budget 8` then `tune --budget 4` (run.json records the last
    call's plan, 0000-0003), default-0001 and default-0006 cut short were told `--budget 4`,
    which plans 0001 and leaves 0006 undone. It names the budget the trial of the largest
    need asks for (sweepwords.redo_budget: 8, a whole group of 4). Fails before: --budget 4."""
    from hubensemble.candidate import require_pool
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    fileio.atomic_write_json(run / "run.json", {"tune": {"sweep": "default", "sweeps": {
        "default": {"budget": 4, "seed": 0, "profile": PROFILES["quick"].to_json(),
                    "trials": [f"default-000{i}-m" for i in range(4)]}}}})
    _cut_trials(run, ("default-0001-m", "default-0006-m"))
    skipped = [(t, "trial.json unreadable") for t in ("default-0001-m", "default-0006-m")]
    with command_line(), pytest.raises(RunError) as e:
        require_pool(run / "candidates", run, [], skipped)
    assert "--sweep default --budget 8 --profile quick" in str(e.value), e.value
    assert "--budget 4" not in str(e.value), e.value


def test_a_damaged_ensemble_json_names_the_settings_the_last_ensemble_was_run_with(run_dir):
    """A standalone `ensemble --budget 3 --size-rule paper` after a fit of other settings,
    then a cut ensemble.json: its reader said the fit's settings (or, with no fit, a plain
    `ensemble --run RUN`), as run.json's stage record held only the time. The ensemble
    records its options in run.json ("ensemble" -> "options"), read before fit's. Fails
    before: "--budget 5" (fit's) in place of "--budget 3 --size-rule paper"."""
    from hubensemble.ensemblefile import read_ensemble
    from hubensemble.lockwords import command_line

    run = run_dir[0]
    Run(run).update(fit={"options": {"ensemble_budget": 5, "seed": 0}})
    run_ensemble(run, budget=3, size_rule="paper")
    with open(os.path.join(run, "ensemble.json"), "w") as f:
        f.write('{"members": [')
    with command_line(), pytest.raises(RunError) as e:
        read_ensemble(run)
    assert str(e.value).endswith(
        f"`hubensemble ensemble --run {run} --budget 3 --size-rule paper` writes it again"), e.value
    with pytest.raises(RunError) as e:  # from Python, the call with its keywords
        read_ensemble(run)
    assert f"run_ensemble(run_dir={run!r}, budget=3, size_rule='paper')" in str(e.value), e.value
    run_ensemble(run)  # a later ensemble at the defaults: its record replaces the last one's
    with open(os.path.join(run, "ensemble.json"), "w") as f:
        f.write('{"members": [')
    with command_line(), pytest.raises(RunError) as e:
        read_ensemble(run)
    assert str(e.value).endswith(f"`hubensemble ensemble --run {run}` writes it again"), e.value


def test_no_usable_candidates_says_each_reason_and_command_once_and_counts_the_rest(tmp_path):
    """With every trial.json of an 8-trial run cut, ensemble's "no usable candidates" said
    the same reason and tune command once per trial for the first five (six times in one
    line) and never named the other three. Each reason is said once with the trials it holds
    for ("and 3 more"), and the command once. Fails before: the command 6 times."""
    from hubensemble.ensemble import select_ensemble
    from hubensemble.hyperrule import PROFILES
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    plan = [f"default-{i:04d}-{m}" for i, m in enumerate("aaaabbbb")]
    fileio.atomic_write_json(run / "run.json", {"tune": {"sweep": "default", "sweeps": {
        "default": {"budget": 8, "seed": 0, "profile": PROFILES["quick"].to_json(),
                    "trials": plan}}}})
    fileio.atomic_save_npy(run / "labels" / "val.npy", np.zeros(64, np.int64))
    _cut_trials(run, plan)
    with command_line(), pytest.raises(RunError) as e:
        select_ensemble(run)
    said = str(e.value)
    tune = f"`hubensemble tune --run {run} --sweep default --budget 8 --profile quick`"
    assert said.count(tune) == 1 and said.count("trial.json unreadable") == 1, said
    assert f"8 trials ({', '.join(plan[:5])} and 3 more): trial.json unreadable" in said, said
    assert "delete its folder and run " + tune in said, said
    assert said.endswith("; run that tune command to write them"), said
    # Four of them failed, each for its own reason: the first three reasons, then a count.
    for i, trial in enumerate(plan[4:]):
        write_candidate(run, trial, np.full((64, 2), 0.5), status="failed", reason=f"r{i}")
    with command_line(), pytest.raises(RunError) as e:
        select_ensemble(run)
    said = str(e.value)
    assert f"4 trials ({', '.join(plan[:4])}): trial.json unreadable" in said, said
    assert f"{plan[4]}: status 'failed': r0; {plan[5]}: status 'failed': r1; and 2 more " \
           "reasons for 2 more trials); 4 failed" in said, said
    assert said.count(tune) == 1 and said.endswith("then run that tune command"), said


def test_no_usable_candidates_of_a_sweep_run_json_does_not_record_names_that_sweep(tmp_path):
    """Probe trials cut short in a run whose run.json records no options for their sweep:
    each trial's words said `tune --run RUN --sweep probe`, the closing words a plain
    `tune --run RUN`, which runs the default sweep and leaves the probe trials undone. Both
    say the sweep, once. Fails before: "`hubensemble tune --run RUN` writes them"."""
    from hubensemble.ensemble import select_ensemble
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    fileio.atomic_save_npy(run / "labels" / "val.npy", np.zeros(64, np.int64))
    _cut_trials(run, ("probe-0000-m", "probe-0001-m"))
    with command_line(), pytest.raises(RunError) as e:
        select_ensemble(run)
    said = str(e.value)
    tune = f"`hubensemble tune --run {run} --sweep probe`"
    assert said.count(tune) == 1 and f"`hubensemble tune --run {run}` " not in said, said
    assert said.endswith("; run that tune command to write them"), said


def test_upstream_data_counts_one_image_and_one_label_in_the_singular():
    """UpstreamData with images and labels of different lengths said "1 images but 2
    labels" (zoo/upstream.py): counted words (text.counted) now, "1 image but 2 labels",
    "2 images but 1 label". Fails before: "1 images"."""
    from hubensemble.errors import DataError
    from hubensemble.zoo.upstream import UpstreamData

    for images, labels, words in ((1, 2, "1 image but 2 labels"),
                                  (2, 1, "2 images but 1 label")):
        with pytest.raises(DataError) as e:
            UpstreamData("u", ["a", "b"], {"a": ["a"], "b": ["b"]},
                         images=np.zeros((images, 4, 4, 3), np.uint8),
                         labels=np.zeros(labels, np.int64))
        assert f"upstream u: {words}; give one integer label per image" in str(e.value), e.value


def test_selection_reads_the_pool_without_copies_and_chooses_as_before(tmp_path):
    """The pool's tables were read whole (val and test), stacked, and the stack converted to
    float64 by ensemble_probs: 80 candidates of 1,000 classes and 5,000 images peaked at
    8 GB. The tables are mapped from their files now and only the validation stack is held;
    the members, weights and figures are those of the whole-table computation (done here with
    np.load, np.stack and ensemble_probs, as before), to the bit. Fails before: the traced
    peak was about five validation pools (40 MB of 8 MB)."""
    import tracemalloc

    from hubensemble.data.coverage import unbalanced
    from hubensemble.ensemble import select_ensemble

    rng = np.random.default_rng(5)
    m, n, c = 16, 640, 200
    y_val, y_test = rng.integers(0, c, n), rng.integers(0, c, n)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y_val)
    fileio.atomic_save_npy(os.path.join(run, "labels", "test.npy"), y_test)
    for i in range(m):
        write_candidate(run, f"trial_{i}", random_probs(rng, 1, n, c, y_val, 4.0)[0],
                        random_probs(rng, 1, n, c, y_test, 4.0)[0], module=f"mod{i % 3}")
    tracemalloc.start()
    try:
        got = select_ensemble(run, budget=6)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    pool = m * n * c * 4  # bytes of float32 validation tables
    assert peak < 2 * pool, (peak, pool)

    def table(i, split):
        return np.load(os.path.join(run, "candidates", f"trial_{i}", f"{split}_probs.npy"))

    val = np.stack([table(i, "val") for i in range(m)])
    sel = greedy_select(val, y_val, budget=6)
    assert [mem["trial"] for mem in got["members"]] == [f"trial_{i}" for i in sel.weights]
    assert [mem["weight"] for mem in got["members"]] == list(sel.weights.values())
    assert got["val_curve"] == sel.curve and got["size"] == sel.size
    assert got["val"]["ensemble"] == metrics.metrics(ensemble_probs(val, sel.weights), y_val)
    test = np.stack([table(i, "test") for i in range(m)])
    assert got["test"]["ensemble"] == metrics.metrics(
        ensemble_probs(test, sel.weights), y_test, balanced=unbalanced(y_test))


def test_a_member_whose_record_lost_its_hparams_is_named_at_selection_with_its_redo(
        run_dir, caplog):
    """A trial.json without "hparams" (edited by hand, or written half) was chosen as a member
    without a word, and export then refused the ensemble ("no "hparams" in it"). The ensemble
    says it as it chooses it: one line naming the member, its trial.json and the tune command
    that runs it again (its sweep's). Fails before: nothing was said."""
    from hubensemble.sweepwords import redo_words

    run, y_val, _, val, test = run_dir
    best = np.zeros_like(val[0])
    best[np.arange(len(y_val)), y_val] = 1.0  # every answer right: the first pick
    folder = write_candidate(run, "default-0007-m", best, test[0])
    record = json.loads(open(os.path.join(folder, "trial.json")).read())
    del record["hparams"]
    fileio.atomic_write_json(os.path.join(folder, "trial.json"), record)
    caplog.set_level(logging.WARNING)
    got = select_ensemble(run, budget=3)
    assert "default-0007-m" in [m["trial"] for m in got["members"]]
    said = [r.getMessage() for r in caplog.records if "export will refuse" in r.getMessage()]
    assert len(said) == 1, caplog.text
    assert ("export will refuse this ensemble: 1 of its members holds no hyperparameters"
            in said[0]), said
    assert (f"default-0007-m: {os.path.join(folder, 'trial.json')}: its hyperparameters "
            'cannot be read (no "hparams" in it)') in said[0], said
    assert redo_words(run, "default-0007-m") in said[0] and "trial_0" not in said[0], said


def test_greedy_selection_checks_the_pool_finite_without_a_copy_of_it():
    """greedy_select checked the pool finite with a boolean array of the whole stack, a
    quarter of the pool again (60 candidates x 2,000 images x 100 classes: a traced peak of
    12.0 MB for a 48 MB pool, 6.1 now); the check is per candidate now, with the same
    refusal of a NaN. Fails before: the peak was above a fifth of the pool."""
    import tracemalloc

    rng = np.random.default_rng(3)
    m, n, c = 80, 200, 50
    y = rng.integers(0, c, n)
    val = random_probs(rng, m, n, c, y, 4.0).astype(np.float32)
    want = greedy_select(val.astype(np.float64), y, budget=3)
    tracemalloc.start()
    try:
        got = greedy_select(val, y, budget=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < val.nbytes / 5, (peak, val.nbytes)
    assert got.indices == want.indices and got.weights == want.weights
    val[7, 3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        greedy_select(val, y, budget=3)


def test_every_unusable_candidate_says_its_way_on_and_fit_says_them(run_dir, caplog):
    """A candidate tune counts as done (failed, or ok with a table of another class or row
    count) is reused by tune, so "run tune" alone never redoes it: its reason says to delete
    its folder first, then its sweep's tune. Only a damaged table's reason said a way on, and
    inside fit (`export_follows`) the ensemble said nothing of them on the terminal.
    Fails before: no "tune reuses" in the reasons, no "left out" line."""
    from hubensemble.lockwords import command_line

    run, _, _, val, test = run_dir
    write_candidate(run, "probe-0000-m", np.full((len(val[0]), 3), 1 / 3), test[0])
    write_candidate(run, "probe-0001-m", val[1][:20], test[1])
    write_candidate(run, "probe-0002-m", val[2], test[2], status="failed", reason="NaN loss")
    fileio.atomic_write_json(os.path.join(run, "run.json"), {})
    with command_line(), caplog.at_level("WARNING", logger="hubensemble.ensemble"):
        skipped = dict((s["trial"], s["reason"])
                       for s in run_ensemble(run, export_follows=True)["skipped"])
    assert sorted(skipped) == ["probe-0000-m", "probe-0001-m", "probe-0002-m"], skipped
    assert skipped["probe-0000-m"].startswith("val_probs.npy has 3 classes, the other "
                                              "candidates 4; "), skipped
    assert skipped["probe-0001-m"].startswith("val_probs.npy has shape (20, 4), expected "
                                              "[40, C]; "), skipped
    for trial in skipped:
        folder = os.path.join(run, "candidates", trial)
        way = (f"delete {folder}, then run `hubensemble tune --run {run} --sweep probe` (it "
               "redoes the trial), then this ensemble again")
        assert skipped[trial].endswith(way) and skipped[trial].count("delete") == 1, trial
    assert ("; running tune again does not retry a failed trial: to retry it once its cause "
            "is fixed, delete ") in \
        skipped["probe-0002-m"]
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert said == ["the ensemble left out 3 candidates: " + "; ".join(
        f"{t}: {r}" for t, r in sorted(skipped.items()))], said


def test_a_damaged_trial_record_is_not_an_unfinished_sweep(run_dir, caplog):
    """A finished sweep whose one trial.json was edited to ["x"]: ensemble (and cost) warned
    "the sweep is unfinished (sweep seeds: 3 of 4 planned trials done; stopped before its
    end?)" beside their skip line of it, and told to finish it. Tune writes a folder whole,
    so the trial finished and was damaged since: its skip line says so and how to redo it.
    A planned trial without a folder is still an unfinished sweep. Fails before: warned."""
    import shutil

    from hubensemble.sweepstate import unfinished_sweeps

    run, _, _, val, test = run_dir
    plan = [f"seeds-000{i}-m" for i in range(3)]
    for i, trial in enumerate(plan):
        write_candidate(run, trial, val[i], test[i])
    fileio.atomic_write_json(os.path.join(run, "run.json"), {"tune": {"sweeps": {
        "seeds": {"budget": 3, "seed": 0, "trials": plan}}}})
    with open(os.path.join(run, "candidates", plan[1], "trial.json"), "w") as f:
        f.write('["x"]')
    with caplog.at_level("WARNING", logger="hubensemble.ensemble"):
        result = run_ensemble(run)
    assert result.unfinished is None and "unfinished" not in caplog.text, caplog.text
    assert [s["trial"] for s in result.skipped if s["trial"] == plan[1]] == [plan[1]]
    shutil.rmtree(os.path.join(run, "candidates", plan[2]))
    assert [u.missing for u in unfinished_sweeps(run)] == [(plan[2],)]


def test_a_way_on_inside_a_fit_folder_names_the_fit_command(run_dir):
    """In a fit's folder the ways on of a trial to redo named `hubensemble tune --run RUN
    --sweep default …`, where the fit's own command (run.json records it) redoes the trial
    and the stages after it: the skip line and the report's "to redo it" column name the fit
    command (`rerun.fit_command` without --restart) while the fit plans the trial, with no
    "then this ensemble again"; a later `tune` of other options keeps tune's words. Fails
    before: "hubensemble tune" in the fit's folder."""
    from hubensemble.lockwords import command_line
    from hubensemble.report import write_report

    run, _, _, val, test = run_dir
    plan = [f"default-{i:04d}-a" for i in range(4)]
    for i, trial in enumerate(plan):
        write_candidate(run, trial, val[i], test[i], module="a")
    os.remove(os.path.join(run, "candidates", plan[1], "trial.json"))
    record = {"sweep": "default", "budget": 4, "seed": 0, "plan_size": 4, "trials": plan,
              "requested_modules": None, "batchnorm": {"requested": "auto"}, "untuned": None}
    fit = {"options": {"sweep": "default", "budget": 4, "seed": 0, "batchnorm": "auto",
                       "profile": "quick", "top_k": 2}}
    meta = {"fit": fit, "tune": {**record, "sweeps": {"default": record}}}
    fileio.atomic_write_json(os.path.join(run, "run.json"), meta)
    with command_line():
        reason = dict((s["trial"], s["reason"]) for s in run_ensemble(run)["skipped"])[plan[1]]
        md = " ".join(write_report(run)[0].read_text().split())
    assert " and run `hubensemble fit " in reason and reason.endswith(
        f"--out {run}` (it redoes the trial)"), reason
    assert "hubensemble tune" not in reason
    row = md[md.index(f"| {plan[1]} |"):].split(" | ")[2]
    assert row.startswith(f"delete `{os.path.join(run, 'candidates', plan[1])}`, then run "
                          "`hubensemble fit ") and f"--out {run}`" in row, row
    # A later tune of 8 trials: the fit's command plans 4 and would not redo them.
    eight = dict(record, budget=8)
    fileio.atomic_write_json(os.path.join(run, "run.json"), dict(
        meta, tune={**eight, "sweeps": {"default": eight}}))
    with command_line():
        reason = dict((s["trial"], s["reason"]) for s in run_ensemble(run)["skipped"])[plan[1]]
    assert f"run `hubensemble tune --run {run} --sweep default`" in reason, reason
    assert reason.endswith("then this ensemble again") and "hubensemble fit" not in reason


def test_an_unreadable_record_inside_a_fit_folder_stops_at_the_fit_command(tmp_path):
    """In a fit's folder the way on of a candidate whose hyperparameters cannot be read named
    the fit's command (which runs the ensemble and the export after the trial), then still
    added ", then `hubensemble ensemble …` and `hubensemble export …`" (candidate._after_redo).
    It stops at the fit's command there; a run of stage commands keeps the steps. Fails
    before: "then `hubensemble ensemble" after the fit command."""
    from hubensemble.lockwords import command_line

    run, out, _, _ = _exported_run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    meta["fit"] = {"options": {"sweep": "probe", "budget": 4, "seed": 0, "profile": "quick",
                               "top_k": 2}}
    fileio.atomic_write_json(run / "run.json", meta)
    with command_line():
        reason = dict((s["trial"], s["reason"]) for s in
                      run_ensemble(run, budget=3)["skipped"])["probe-0001-m"]
    assert "(run `hubensemble fit " in reason and reason.endswith(f"--out {run}`)"), reason
    assert "hubensemble ensemble" not in reason and "hubensemble export" not in reason


def test_the_size_line_says_why_one_se_keeps_a_size_whose_test_nll_is_worse(tmp_path):
    """An ensemble the one-se rule kept at 2 picks, whose test NLL is above its best
    single's, printed "size: … the largest size within one standard error … of the best
    validation CE … (at size 1) was kept (size rule one-se)" beside the test line that
    contradicts it, and not why: the rule's reason (validation cannot tell the sizes apart;
    paper C.9) and that it reads no test figure. Candidate a: 0.7 on the true class of every
    example; b: 0.95 / 0.47 on alternate validation examples (the pair's validation CE within
    one SE of a's), 0.4 on every test example. Reference: -ln 0.7 and -ln 0.55 by hand.
    Fails before: no reason, no test words."""
    from hubensemble.ensemble import format_ensemble
    from hubensemble.ensembletext import size_rule_text

    run = str(tmp_path / "run")
    n, c = 200, 3
    y = np.arange(n) % c

    def table(correct):
        probs = np.repeat(((1 - np.asarray(correct)) / (c - 1))[:, None], c, axis=1)
        probs[np.arange(n), y] = correct
        return probs.astype(np.float32)

    for split in ("val", "test"):
        fileio.atomic_save_npy(os.path.join(run, "labels", f"{split}.npy"), y)
    write_candidate(run, "default-0000-a", table(np.full(n, 0.7)), table(np.full(n, 0.7)),
                    module="a")
    write_candidate(run, "default-0001-b", table(np.where(np.arange(n) % 2, 0.47, 0.95)),
                    table(np.full(n, 0.4)), module="b")
    result = run_ensemble(run, budget=2).to_json()
    assert result["size_rule"]["best_size"] == 1 and result["size"] == 2, result["size_rule"]
    text = format_ensemble(result)
    why = size_rule_text(result)
    assert f"\nsize:       2 greedy picks: {why}\n" in text, text
    assert ("(size rule one-se: validation cannot tell those sizes apart, and under "
            "cross-entropy selection test performance rose with ensemble size, paper C.9; "
            "the rule reads validation only, not test figures); here the ensemble's test NLL "
            f"{-math.log(0.55):.4f} came out above its best single's {-math.log(0.7):.4f}, "
            "which the rule does not see") in why, why
    # The test words only where the test NLL is worse: another record has none.
    better = {**result, "test": {"ensemble": {"nll": 0.3}, "best_single": {"nll": 0.4}}}
    assert "test NLL" not in size_rule_text(better) and "paper C.9" in size_rule_text(better)


def test_no_usable_candidates_of_one_failed_trial_says_it_in_the_singular(tmp_path):
    # "1 failed, which running tune again does not retry: to retry them once their cause is
    # fixed, remove their folders" was said of one trial (397's check).
    from hubensemble.lockwords import command_line

    run = str(tmp_path / "run")
    rng = np.random.default_rng(0)
    y_val = rng.integers(0, 3, 20)
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y_val)
    fileio.atomic_write_json(os.path.join(run, "run.json"), {})
    write_candidate(run, "probe-0000-m", random_probs(rng, 1, 20, 3, y_val)[0],
                    status="failed", reason="at chance")
    with command_line(), pytest.raises(RunError) as e:
        run_ensemble(run)
    cands = os.path.join(run, "candidates")
    assert ("; 1 failed, which running tune again does not retry: to retry it once its cause "
            f"is fixed, remove its folder (`(cd {cands} && rm -r probe-0000-m)`), then "
            "run") in str(e.value), e.value


def test_a_tie_in_a_run_goes_to_the_earlier_trial_id_whatever_the_folders_order(tmp_path):
    """README (ensemble): "an exact tie goes to the earlier trial id". greedy_select gives a
    tie to the lowest index, and a run's candidates are indexed in natural trial order
    (trial_2 before trial_10, where a name sort or the folders' creation order puts trial_10
    first): the pick is the same on every machine and every run of it."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 60)
    run = str(tmp_path / "run")
    fileio.atomic_save_npy(os.path.join(run, "labels", "val.npy"), y.astype(np.int64))
    best, other = random_probs(rng, 2, 60, 3, y, strength=4.0)
    write_candidate(run, "trial_10", best)  # written first, first by name too
    write_candidate(run, "trial_2", best.copy())
    write_candidate(run, "trial_3", other)
    picks = [run_ensemble(run, budget=2)["picks"] for _ in range(2)]
    assert picks[0][0] == "trial_2" and picks[1] == picks[0]
