"""Greedy selection under an inference budget (--max-gflops / --max-latency-ms /
--max-members): eligibility, the size rule within the budget, ensemble.json, errors."""

import re
import subprocess
import sys

import numpy as np
import pytest

from hubensemble import candidate
from hubensemble.cost import Cost, Limits, machine_info, write_run_costs
from hubensemble.ensemble import greedy_select, read_ensemble, run_ensemble
from hubensemble.errors import RunError
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.rundir import Run

N, C = 200, 4


def pool(rng, m=6):
    """m candidates of varied quality on N labelled examples: [m, N, C], labels [N]."""
    y = rng.integers(0, C, N)
    probs = []
    for i in range(m):
        logits = rng.normal(size=(N, C))
        logits[np.arange(N), y] += 1.0 + 0.4 * i    # later candidates are better
        p = np.exp(logits)
        probs.append(p / p.sum(1, keepdims=True))
    return np.stack(probs), y


def test_a_budget_that_admits_one_member_gives_that_member(rng):
    probs, y = pool(rng)
    free = greedy_select(probs, y, budget=6, size_rule="budget")
    best = free.indices[0]
    cheap = (best + 2) % len(probs)              # not the best candidate
    gflops = np.full(len(probs), 1.0)
    gflops[cheap] = 0.1
    sel = greedy_select(probs, y, budget=6, costs={"gflops": gflops},
                        limits=Limits(gflops=0.15), size_rule="budget")
    assert sel.indices == [cheap] and sel.weights == {cheap: 1.0} and sel.size == 1
    assert "ended after 1 pick:" in sel.stopped
    # --max-members 1: the best single candidate, alone.
    one = greedy_select(probs, y, budget=6, limits=Limits(members=1), size_rule="budget")
    assert one.members == [best] and one.size == 1


def test_every_prefix_of_a_budgeted_path_is_within_the_budget(rng):
    probs, y = pool(rng, m=8)
    gflops = rng.uniform(0.5, 3.0, len(probs))
    latency = rng.uniform(1.0, 5.0, len(probs))
    limits = Limits(gflops=4.0, latency_ms=7.0, members=3)
    for replacement in (False, True):
        sel = greedy_select(probs, y, budget=10, with_replacement=replacement,
                            costs={"gflops": gflops, "latency_ms": latency}, limits=limits,
                            size_rule="budget")
        for j in range(1, len(sel.indices) + 1):
            members = sorted(set(sel.indices[:j]))
            assert gflops[members].sum() <= 4.0 and latency[members].sum() <= 7.0
            assert len(members) <= 3
    # Without a budget (and without replacement) the path spends more than the budget.
    free = greedy_select(probs, y, budget=10, size_rule="budget")
    assert gflops[sorted(set(free.indices))].sum() > 4.0
    # With replacement a re-pick costs nothing: the path may go on after the members run out.
    sel = greedy_select(probs, y, budget=10, with_replacement=True, limits=Limits(members=2),
                        size_rule="budget")
    assert len(set(sel.indices)) <= 2 and len(sel.indices) == 10


def test_the_size_rule_chooses_within_the_budgeted_path(rng):
    probs, y = pool(rng, m=8)
    gflops = np.ones(len(probs))
    sel = greedy_select(probs, y, budget=8, costs={"gflops": gflops},
                        limits=Limits(gflops=3.0), size_rule="one-se")
    assert len(sel.indices) == 3 and 1 <= sel.size <= 3
    assert sel.size_rule["rule"] == "one-se"


def test_unknown_costs_are_never_eligible_and_missing_tables_are_refused(rng):
    probs, y = pool(rng, m=4)
    gflops = np.array([np.nan, 1.0, np.nan, 1.0])
    sel = greedy_select(probs, y, budget=4, costs={"gflops": gflops},
                        limits=Limits(gflops=10.0), size_rule="budget")
    assert set(sel.indices) <= {1, 3}
    with pytest.raises(ValueError, match="needs costs"):
        greedy_select(probs, y, limits=Limits(gflops=1.0))
    with pytest.raises(ValueError, match="no candidate fits the inference budget"):
        greedy_select(probs, y, costs={"gflops": np.full(4, 2.0)}, limits=Limits(gflops=1.0))


# --------------------------------------------------------------------------- a run directory

def make_run(path, rng, gflops):
    """A run with labels, one candidate per entry of `gflops` (probabilities from `pool`,
    module m<i>) and no cost.json yet."""
    probs, y = pool(rng, m=len(gflops))
    _, y_test = None, y.copy()
    run = Run(path)
    (run.path / "labels").mkdir(parents=True)
    np.save(run.path / "labels" / "val.npy", y)
    np.save(run.path / "labels" / "test.npy", y_test)
    for i in range(len(gflops)):
        candidate.write_candidate(run.candidates, {
            "trial": f"t{i}", "module": f"m{i}", "handle": f"h{i}", "status": "ok",
            "hparams": {"lr": 0.1}, "eval_size": 32},
            val_probs=probs[i], test_probs=probs[i])
    return run


def costs_for(gflops, latency=None):
    return {f"t{i}": Cost(f"m{i}", f"f{i}", 32, C, macs=int(g * 5e8), params=1000 * (i + 1),
                          latency_ms={"1": float(latency[i] if latency is not None else 1.0),
                                      "64": 10.0})
            for i, g in enumerate(gflops)}


def test_a_budget_without_costs_names_the_command_that_computes_them(tmp_path, rng):
    run = make_run(tmp_path / "run", rng, [1.0, 2.0, 3.0])
    with pytest.raises(RunError, match=r"run_cost\(run_dir='.*run'\)"):
        run_ensemble(run.path, max_gflops=2.5)
    # --max-members needs no measured cost; no budget at all needs none either.
    assert len(run_ensemble(run.path, max_members=1).members) == 1
    costs = costs_for([1.0, 2.0, 3.0])
    del costs["t1"]
    write_run_costs(run.path, costs, machine_info())
    with pytest.raises(RunError, match=r"1 candidate has no cost .*\(t1\).*call run_cost\("
                                       r"run_dir="):
        run_ensemble(run.path, max_gflops=2.5)
    del costs["t2"]  # more than one: "have"
    write_run_costs(run.path, costs, machine_info())
    with pytest.raises(RunError, match=r"2 candidates have no cost .*\(t1, t2\)"):
        run_ensemble(run.path, max_gflops=2.5)


def test_ensemble_json_keeps_its_keys_and_adds_costs_and_limits(tmp_path, rng):
    gflops = [1.0, 1.0, 0.25, 1.0, 1.0, 1.0]
    run = make_run(tmp_path / "run", rng, gflops)
    plain = run_ensemble(run.path).to_json()
    write_run_costs(run.path, costs_for(gflops), machine_info())
    with_costs = run_ensemble(run.path).to_json()
    assert set(plain) <= set(with_costs) and set(with_costs) - set(plain) == {"cost"}
    assert with_costs["members"] == plain["members"]
    cost = with_costs["cost"]
    members = [m["trial"] for m in with_costs["members"]]
    assert cost["ensemble"]["gflops"] == pytest.approx(sum(
        gflops[int(t[1:])] for t in members))
    assert [p["size"] for p in cost["path"]] == [c["size"] for c in with_costs["val_curve"]]
    budgeted = run_ensemble(run.path, max_gflops=1.3)
    data = read_ensemble(run.path)
    assert data["limits"] == {"max_gflops": 1.3, "max_latency_ms": None, "max_members": None,
                              "stopped": data["limits"]["stopped"], "not_costed": []}
    assert data["cost"]["ensemble"]["gflops"] <= 1.3
    assert {m["trial"] for m in budgeted.members} <= {"t2", "t0", "t1", "t3", "t4", "t5"}
    inb = data["val"]["best_single_in_budget"]
    assert inb["trial"] in data["cost"]["candidates"]
    assert data["test"]["best_single_in_budget"]["trial"] == inb["trial"]
    with pytest.raises(RunError, match=r"no candidate fits .*in GFLOPs, t2, needs 0.25 GFLOPs "
                       r"\(limit 0.1\)"):
        run_ensemble(run.path, max_gflops=0.1)


def test_a_budget_nobody_meets_names_the_cheapest_candidate_in_the_limited_measure(tmp_path,
                                                                                   rng):
    # A new-user check: the latency limit named the candidate with the fewest GFLOPs and its
    # GFLOPs ("t2 needs 0.25 GFLOPs"), even one within --max-gflops: the wrong limit to raise.
    gflops, latency = [1.0, 1.0, 0.25], [4.0, 3.0, 6.0]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops, latency=latency), machine_info())
    with pytest.raises(RunError) as err:
        run_ensemble(run.path, max_latency_ms=2.0, max_gflops=1.0)
    message = str(err.value)
    assert "the cheapest candidate in ms at batch 1, t1, needs 3 ms at batch 1 (limit 2)" in message
    assert "GFLOPs" not in message.split("):", 1)[1], "--max-gflops 1 is not the binding limit"
    with pytest.raises(RunError) as err:  # each limit alone is met, never both by one candidate
        run_ensemble(run.path, max_latency_ms=3.5, max_gflops=0.5)
    assert ("no one candidate is within every limit: the lowest GFLOPs is t2's 0.25 (limit 0.5); "
            "the lowest ms at batch 1 is t1's 3 (limit 3.5)") in str(err.value)


def test_a_module_that_could_not_be_costed_is_left_out_with_a_warning(tmp_path, rng, caplog):
    run = make_run(tmp_path / "run", rng, [1.0, 1.0, 1.0])
    costs = costs_for([1.0, 1.0, 1.0])
    del costs["t2"]
    write_run_costs(run.path, costs, machine_info(), failed={"t2": "cannot load"})
    result = run_ensemble(run.path, max_gflops=5.0)
    assert "t2" not in [m["trial"] for m in result.members]
    assert result.limits["not_costed"] == ["t2"]
    assert "t2 is left out" in caplog.text


def test_latency_budget_uses_the_batch_1_latency(tmp_path, rng):
    gflops = [1.0] * 4
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops, latency=[5.0, 2.0, 2.0, 2.0]), machine_info())
    result = run_ensemble(run.path, max_latency_ms=4.5)
    assert sum({"t0": 5.0}.get(m["trial"], 2.0) for m in result.members) <= 4.5
    assert read_ensemble(run.path)["cost"]["ensemble"]["latency_ms"]["1"] <= 4.5


def test_the_budgeted_ensemble_command_never_imports_tensorflow(tmp_path, rng):
    gflops = [1.0, 0.5, 2.0]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    code = f"""
import sys
from hubensemble.cli import main
assert main(["ensemble", "--run", {str(run.path)!r}, "--max-gflops", "1.6",
             "--max-members", "2"]) == 0
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
assert not heavy, heavy
print("TF-FREE")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TF-FREE" in out.stdout and "inference budget: gflops <= 1.6" in out.stdout


def test_the_budget_line_writes_a_member_limit_as_an_integer_and_one_pick_in_the_singular(
        tmp_path, rng):
    from hubensemble.ensemble import format_ensemble

    gflops = [1.0, 1.0, 0.25]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    run_ensemble(run.path, max_members=10**20, max_gflops=0.3)  # only t2 fits
    text = format_ensemble(read_ensemble(run.path))
    assert "inference budget: gflops <= 0.3, members <= 100000000000000000000" in text
    assert "the greedy path ended after 1 pick: no other candidate fits" in text


def test_fits_closing_table_shows_the_best_single_within_the_budget(tmp_path, rng):
    # A new-user check: `fit --max-gflops` set the budgeted ensemble beside the best single
    # candidate over the budget only; the fair baseline is the best one within it.
    from hubensemble.report import summary_table

    gflops = [1.0, 1.0, 0.25, 1.0]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    data = run_ensemble(run.path, max_gflops=0.3).to_json()
    best, inb = data["test"]["best_single"], data["test"]["best_single_in_budget"]
    assert inb["trial"] == "t2" and best["trial"] != "t2"
    table = summary_table(run.path)
    assert f"best single ({best['trial']})" in table
    row = next(x for x in table.splitlines() if x.startswith("best single within the budget"))
    assert row.split()[-3:] == [f"{inb[k]:.4f}" for k in ("accuracy", "nll", "ece")]
    assert "(t2)" in row


# ------------------------------------------------------------------ a shared frozen backbone

def test_a_candidate_whose_backbone_a_member_runs_adds_only_its_head(rng):
    # Candidates 1 and 2 are probes of one module (1 GFLOP each alone, 0.01 of it their
    # heads): the export runs its backbone once, so both fit a 1.05 budget together.
    probs, y = pool(rng, m=3)
    costs = {"gflops": np.array([1.0, 1.0, 1.0]), "latency_ms": np.array([2.0, 2.0, 2.0]),
             "share": np.array([-1, 0, 0]), "head_gflops": np.array([0.01, 0.01, 0.01]),
             "head_latency_ms": np.array([0.0, 0.0, 0.0])}
    sel = greedy_select(probs, y, budget=3, costs=costs, limits=Limits(gflops=1.05),
                        size_rule="budget")
    assert sorted(sel.indices) == [1, 2] and "ended after 2 picks" in sel.stopped
    sel = greedy_select(probs, y, budget=3, costs=costs, size_rule="budget",
                        limits=Limits(gflops=5, latency_ms=2.5))
    assert sorted(sel.indices) == [1, 2]  # 2 ms + 0 ms: no third 2 ms
    # Without the groups each counts whole: one of them, as before.
    alone = dict(costs, share=np.array([-1, -1, -1]))
    assert len(greedy_select(probs, y, budget=3, costs=alone, limits=Limits(gflops=1.05),
                             size_rule="budget").indices) == 1
    # A head of unknown size (NaN: an older cost.json) counts the member whole.
    unknown = dict(costs, head_gflops=np.array([0.01, np.nan, np.nan]))
    assert len(greedy_select(probs, y, budget=3, costs=unknown, limits=Limits(gflops=1.05),
                             size_rule="budget").indices) == 1


def write_weights(path, backbone, head):
    """A Keras weights file as tune.Classifier.save_weights lays it out (its backbone's
    variables under "backbone", its head's under "head"), written with h5py."""
    import h5py

    with h5py.File(path, "w") as f:
        for group, arrays in (("backbone", backbone), ("head", head)):
            for i, a in enumerate(arrays):
                f.create_dataset(f"{group}/vars/{i}", data=np.asarray(a, np.float32))


def test_a_probe_whose_frozen_weights_were_changed_in_its_file_does_not_share(tmp_path, rng):
    # t1 and t2 are probes of module m; the budget fits one backbone and two heads. Greedy
    # selection grouped them by module, fingerprint and size alone, so it kept both though t2's
    # weights file holds other backbone weights, which the export runs apart and counts whole.
    run = make_run(tmp_path / "run", rng, [1.0, 1.0, 1.0])
    run.update(modules={"m": {"name": "m", "handle": "h"}})
    kernel = rng.normal(size=(3, 3, 3, 8))
    for i, kind in enumerate(("finetune", "probe", "probe")):
        folder = run.candidates / f"t{i}"
        write_weights(folder / candidate.WEIGHTS_FILE, [kernel, np.zeros(8)],
                      [rng.normal(size=(8, C)), rng.normal(size=C)])  # heads of their own
        atomic_write_json(folder / candidate.TRIAL_FILE, dict(
            read_json(folder / candidate.TRIAL_FILE), module="m", module_fingerprint="fp",
            hparams={"lr": 0.1, "kind": kind}, weights=candidate.WEIGHTS_FILE))
    write_run_costs(run.path, probe_costs(head_macs=1000), machine_info())
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert sorted(m["trial"] for m in result.members) == ["t1", "t2"]
    write_weights(run.candidates / "t2" / candidate.WEIGHTS_FILE, [kernel + 0.01, np.zeros(8)],
                  [rng.normal(size=(8, C)), rng.normal(size=C)])
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert len(result.members) == 1
    assert read_ensemble(run.path)["cost"]["ensemble"]["gflops"] == pytest.approx(1.0)


def test_a_probe_loaded_from_its_file_and_one_rebuilt_share_by_their_weights(
        tmp_path, rng, caplog):
    # t1 is a probe whose weights file tune wrote (write_candidate records its digests); t2 a
    # probe whose sweep kept no weights (the export rebuilds it from its module). Their frozen
    # backbones are the module's own weights, yet the key held the file's digest for t1 and
    # None for t2, so a budget of one backbone and two heads kept one of them.
    run = make_run(tmp_path / "run", rng, [1.0, 1.0, 1.0])
    run.update(modules={"m": {"name": "m", "handle": "h"}})
    kernel = rng.normal(size=(3, 3, 3, 8))
    weights = run.candidates / "t1" / candidate.WEIGHTS_FILE

    def save(path, backbone=kernel):
        write_weights(path, [backbone, np.zeros(8)], [rng.normal(size=(8, C)), np.zeros(C)])

    for i, kind in enumerate(("finetune", "probe", "probe")):
        cand = candidate.read_candidate(run.candidates, f"t{i}")
        cand.load_probs()
        candidate.write_candidate(
            run.candidates, dict(cand.record, module="m", module_fingerprint="fp",
                                 hparams={"lr": 0.1, "kind": kind}),
            val_probs=cand.val_probs, test_probs=cand.test_probs,
            save_weights=save if i == 1 else None)
    recorded = read_json(run.candidates / "t1" / candidate.TRIAL_FILE)
    assert recorded["weights_sha256"] and recorded["backbone_sha256"]
    write_run_costs(run.path, probe_costs(head_macs=1000), machine_info())
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert sorted(m["trial"] for m in result.members) == ["t1", "t2"]
    assert "weights_changed" not in caplog.text
    # Its head edited by hand: it still shares (its backbone is the module's), and the
    # ensemble says its file is not the one its recorded figures are of.
    save(weights)
    with caplog.at_level("WARNING"):
        result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert sorted(m["trial"] for m in result.members) == ["t1", "t2"]
    said = f"member t1: its weights file {weights} is not the one tune wrote"
    assert said in caplog.text and "restore the file" in caplog.text
    entry = {m["trial"]: m for m in read_ensemble(run.path)["members"]}
    assert entry["t1"]["weights_changed"].startswith(said[len("member t1: "):])
    assert "weights_changed" not in entry["t2"]
    from hubensemble.report.render import render_markdown
    from hubensemble.report.sections import build_sections

    md = render_markdown(*build_sections(run.path)[:2])
    assert f"t1: {entry['t1']['weights_changed']}. The figures here are of the" in md, md
    # Its backbone edited too: its weights are no longer the module's, and it runs alone.
    save(weights, kernel + 0.01)
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert len(result.members) == 1


def test_an_edited_weights_file_is_named_by_its_whole_path_with_the_way_on(
        tmp_path, rng, caplog, monkeypatch):
    # `hubensemble ensemble --run r` after a weights file was edited by hand (h5py): the
    # warning, ensemble.json's weights_changed (kept, and read from other folders) and the
    # report named "r/candidates/t0/weights.weights.h5", a path of the folder the command ran
    # in, and the report's warning gave no way on, where the command's says it.
    monkeypatch.chdir(tmp_path)
    run = make_run("r", rng, [1.0, 1.0])
    run.update(modules={f"m{i}": {"name": f"m{i}", "handle": f"h{i}"} for i in range(2)})
    kernel = rng.normal(size=(3, 3, 3, 8))
    for t in ("t0", "t1"):
        cand = candidate.read_candidate(run.candidates, t)
        cand.load_probs()
        candidate.write_candidate(
            run.candidates, cand.record, val_probs=cand.val_probs, test_probs=cand.test_probs,
            save_weights=lambda p: write_weights(p, [kernel], [np.zeros((8, C))]))
        write_weights(run.candidates / t / candidate.WEIGHTS_FILE, [kernel + 1],
                      [np.zeros((8, C))])
    with caplog.at_level("WARNING"):
        result = run_ensemble(run.path)
    for member in result.members:
        whole = tmp_path / "r" / "candidates" / member["trial"] / candidate.WEIGHTS_FILE
        said = f"its weights file {whole} is not the one tune wrote"
        assert said in caplog.text
        # Export refuses such a member (4d10cf5c): the warning said only "restore the file,
        # or run tune again", as if an export served it, and not to run the ensemble again.
        line = next(r.getMessage() for r in caplog.records if said in r.getMessage())
        assert "not these, and export refuses it: restore the file, or " in line, line
        assert line.endswith(" again (it redoes the trial), then this ensemble again"), line
        assert read_ensemble(run.path)["members"][0]["weights_changed"].startswith(
            f"its weights file {tmp_path}")
    from hubensemble.report.render import render_markdown
    from hubensemble.report.sections import build_sections

    md = render_markdown(*build_sections(run.path)[:2])
    # The run's tune command, its own sweep's when run.json records one (38e152c). No
    # folder deleted first: tune redoes a trial whose file changed since it wrote it
    # (f87183cd; its trial.json records its files).
    assert (f"{said} (sha256" in md and "export refuses it (--skip-missing leaves it out): "
            f"restore the file, or run `hubensemble tune --run {tmp_path / 'r'}` (it redoes the "
            "trial), "
            f"then `hubensemble ensemble --run {tmp_path / 'r'}`." in " ".join(md.split())), md


def test_an_older_cost_json_takes_its_head_sizes_from_the_weights_files(tmp_path, rng, caplog):
    # A cost.json written before head sizes were recorded (no "head_macs"): every budgeted
    # ensemble warned "no head sizes" and counted each probe's shared backbone whole, though
    # each probe's weights file holds its head's kernel, [D, C]: D x C without TensorFlow.
    from hubensemble.cost import read_run_costs

    run = make_run(tmp_path / "run", rng, [1.0, 1.0, 1.0])
    run.update(modules={"m": {"name": "m", "handle": "h"}})
    kernel = rng.normal(size=(3, 3, 3, 8))
    for i, kind in enumerate(("finetune", "probe", "probe")):
        folder = run.candidates / f"t{i}"
        write_weights(folder / candidate.WEIGHTS_FILE, [kernel],
                      [rng.normal(size=(250, C)), rng.normal(size=C)])  # 250 x 4 = 1000
        atomic_write_json(folder / candidate.TRIAL_FILE, dict(
            read_json(folder / candidate.TRIAL_FILE), module="m", module_fingerprint="fp",
            hparams={"lr": 0.1, "kind": kind}, weights=candidate.WEIGHTS_FILE))
    write_run_costs(run.path, probe_costs(head_macs=None), machine_info())
    assert {c.head_macs for c in read_run_costs(run.path).costs.values()} == {1000}
    with caplog.at_level("WARNING"):
        result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert sorted(m["trial"] for m in result.members) == ["t1", "t2"]
    assert "no head sizes" not in caplog.text
    cost = read_ensemble(run.path)["cost"]
    assert cost["ensemble"]["gflops"] == pytest.approx(1.0 + 2e-6)
    assert cost["ensemble"]["params"] == 1000 + 1000 + C
    # A candidate without a weights file (its sweep kept none) still has no head size.
    (run.candidates / "t2" / candidate.WEIGHTS_FILE).unlink()
    assert read_run_costs(run.path).costs["t2"].head_macs is None


def probe_costs(head_macs):
    """t0: fine-tuned of module m; t1, t2: probes of m (1 GFLOP with a head of `head_macs`)."""
    return {f"t{i}": Cost("m", "fp", 32, C, macs=int(5e8), params=1000, latency_ms={"1": 1.0},
                          head_macs=head_macs) for i in range(3)}


def test_ensemble_json_counts_the_shared_backbone_of_probes_once(tmp_path, rng, caplog):
    run = make_run(tmp_path / "run", rng, [1.0, 1.0, 1.0])
    run.update(modules={"m": {"name": "m", "handle": "h"}})
    for i, kind in enumerate(("finetune", "probe", "probe")):
        path = run.candidates / f"t{i}" / candidate.TRIAL_FILE
        atomic_write_json(path, dict(read_json(path), module="m", module_fingerprint="fp",
                                     hparams={"lr": 0.1, "kind": kind}))
    write_run_costs(run.path, probe_costs(head_macs=1000), machine_info())
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert sorted(m["trial"] for m in result.members) == ["t1", "t2"]
    cost = read_ensemble(run.path)["cost"]
    assert cost["ensemble"]["gflops"] == pytest.approx(1.0 + 2e-6)
    assert cost["ensemble"]["params"] == 1000 + 1000 + C
    assert cost["path"][-1]["gflops"] == pytest.approx(1.0 + 2e-6)
    # A cost.json without head sizes (an older hubensemble's) counts each whole, and says so.
    write_run_costs(run.path, probe_costs(head_macs=None), machine_info())
    result = run_ensemble(run.path, max_gflops=1.01, size_rule="budget", budget=3)
    assert len(result.members) == 1
    assert "no head sizes for t1, t2" in caplog.text and "run_cost(run_dir=" in caplog.text


def test_distill_totals_an_ensemble_without_a_cost_record_with_a_shared_backbone_once(tmp_path):
    # ensemble.json written before RUN/cost.json existed (`ensemble` before `cost`) has no
    # "cost": distill totalled its members' costs by their plain sum, so two probes of one
    # module at one size, which the export runs on one backbone call, counted it twice in
    # distill.json's ensemble cost and the student's cost ratio.
    from types import SimpleNamespace

    from hubensemble.distillcompare import _compare

    c, n = 10, 40
    specs = {"m": {"name": "m", "handle": "/modules/m"}, "s": {"name": "s", "handle": "/s"}}
    whole = dict(module="m", fingerprint="f" * 64, size=32, num_classes=c, macs=50_000,
                 params=2_000, latency_ms={"1": 2.0, "64": 30.0}, head_macs=16 * c)
    costs = {"probe-0": Cost(**whole), "probe-1": Cost(**whole)}
    rng = np.random.default_rng(0)
    y = rng.integers(0, c, n)

    def cand(trial):
        return SimpleNamespace(trial=trial, module="m", hparams={"kind": "probe"},
                               record={"eval_size": 32, "module_fingerprint": "f" * 64},
                               weights_path=None, test_probs=rng.dirichlet(np.ones(c), n))

    cands = [cand("probe-0"), cand("probe-1")]
    ens = {"members": [{"trial": t, "weight": 0.5} for t in costs],
           "test": {"ensemble": {"accuracy": 0.5}, "best_single": {"trial": "probe-0",
                                                                   "accuracy": 0.4}}}
    student = Cost(module="s", fingerprint=None, size=32, num_classes=c, macs=10_000,
                   params=500, latency_ms={"1": 1.0, "64": 10.0}, head_macs=8 * c)
    probs = rng.dirichlet(np.ones(c), n)
    run = SimpleNamespace(path=str(tmp_path), meta=lambda: {"modules": specs})
    record = {"trial": "distill-s", "module": "s", "hparams": {}, "steps": 1, "init": "module",
              "init_from": None, "seconds": 1.0, "teacher": {}}
    result = _compare(run, ens, record, SimpleNamespace(folder=str(tmp_path / "s")),
                      {"val": probs, "test": probs},
                      SimpleNamespace(val=SimpleNamespace(labels=y),
                                      test=SimpleNamespace(labels=y)),
                      student, costs, cands)
    # By hand: the first probe whole, the second its head alone (16 x C multiply-adds,
    # 16 x C + C weights, no latency of its own), as the export runs them.
    assert result.ensemble["cost"]["flops"] == 2 * (50_000 + 16 * c)
    assert result.ensemble["cost"]["params"] == 2_000 + 16 * c + c
    assert result.ensemble["cost"]["latency_ms"] == {"1": 2.0, "64": 30.0}
    assert result.cost_ratio == pytest.approx((50_000 + 16 * c) / 10_000)


def test_a_budget_no_candidate_can_be_costed_for_names_cost_not_a_limit(tmp_path, rng):
    """When every candidate's module failed in `cost`, `ensemble --max-gflops 1` said "no
    candidate has a cost; raise a limit": no limit raised makes room then. It names cost,
    which says each module's reason, in the caller's words. Fails before: "raise a limit"."""
    from hubensemble.lockwords import command_line

    run = make_run(tmp_path / "run", rng, [1.0, 1.0])
    write_run_costs(run.path, {}, machine_info(),
                    failed={"t0": "cannot load", "t1": "cannot load"})
    with pytest.raises(RunError, match=r"no candidate has a cost; call run_cost\(run_dir='.*run'"
                                       r"\) \(it names why each module has none\), or drop the "
                                       r"limit$"):
        run_ensemble(run.path, max_gflops=1.0)
    with command_line(), pytest.raises(RunError, match=r"run `hubensemble cost --run .*run` "
                                                       r"\(it names why"):
        run_ensemble(run.path, max_gflops=1.0)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10 ** 400, 0, -1.0, "1", True])
def test_a_limit_that_is_no_finite_number_over_0_is_refused_in_the_options_words(value):
    """Limits(gflops=inf) said "must be a number > 0" (which inf looks like) and
    Limits(gflops=10**400) raised float()'s OverflowError; every float option says "a
    number > 0 and finite" of them (optionrecord.Option.fits). Fails before: those words,
    the OverflowError, and "1" and True taken as limits."""
    from hubensemble.text import value_shown

    for name in ("gflops", "latency_ms"):
        with pytest.raises(ValueError, match=re.escape(
                f"the {name} limit must be a number > 0 and finite, got "
                f"{value_shown(value)}")):
            Limits(**{name: value})
    assert Limits(gflops=1e300, latency_ms=np.float32(2.5)).gflops == 1e300
    # 10**400 is not written out whole (a new-user check: 401 digits in the refusal)
    assert value_shown(10 ** 400) == "10000000… (401 digits)" and value_shown(-3) == "-3"
    assert value_shown(True) == "True" and value_shown(10 ** 23) == repr(10 ** 23)


def test_a_budget_nobody_meets_names_each_flag_and_a_value_that_passes(tmp_path, rng):
    """`ensemble --max-gflops 0.1 --max-latency-ms 1` that no candidate meets said "raise a
    limit": which of the two, to what? It names the flags of the candidate lowest in GFLOPs
    with its figures rounded up, and that command selects. Fails before: "raise a limit"."""
    from hubensemble.lockwords import command_line

    gflops = [1.0, 0.5123456]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops, latency=[2.0, 3.00001]), machine_info())
    with command_line(), pytest.raises(RunError) as err:
        run_ensemble(run.path, max_gflops=0.1, max_latency_ms=1.0)
    assert str(err.value).endswith(
        "; pass --max-gflops 0.5124 and --max-latency-ms 3.001 or more (t1's, the least that "
        "admits a candidate), or drop the flags"), str(err.value)
    with pytest.raises(RunError) as err:  # only the limit that is over is named
        run_ensemble(run.path, max_gflops=0.1, max_latency_ms=5.0)
    assert str(err.value).endswith(
        "; pass max_gflops=0.5124 or more (t1's, the least that admits a candidate), or leave "
        "the limit out"), str(err.value)
    assert run_ensemble(run.path, max_gflops=0.5124, max_latency_ms=3.001).members


def test_a_budget_nobody_meets_names_the_candidates_it_could_not_use(tmp_path, rng, caplog):
    """A budget no candidate meets was refused before any line named the pool's unusable
    candidates (fit's "left out" warning and the ensemble command's "skipped" lines follow a
    selection): a failed trial was said by no one. The refusal names each, with its reason
    and way on, once. Fails before: t3 not in the refusal."""
    gflops = [1.0, 1.0, 0.5]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    candidate.write_candidate(run.candidates, {
        "trial": "t3", "module": "m3", "handle": "h3", "status": "failed",
        "reason": "diverged: NaN loss", "hparams": {"lr": 0.1}})
    with caplog.at_level("WARNING"), pytest.raises(RunError) as err:
        run_ensemble(run.path, max_gflops=0.1, export_follows=True)  # as fit calls it
    message = str(err.value)
    assert message.count("t3: ") == 1 and message.startswith("no candidate fits"), message
    assert ("t2, needs 0.5 GFLOPs (limit 0.1); pass max_gflops=0.5 or more (t2's, the least "
            "that admits a candidate), or leave the limit out. Besides, 1 candidate cannot "
            "enter any ensemble: t3: status 'failed': diverged: NaN loss; running tune again "
            "does not retry a failed trial") in message, message
    assert "t3" not in caplog.text
    # A selection names it in its own lines, not twice.
    assert [s["trial"] for s in run_ensemble(run.path).skipped] == ["t3"]


def test_a_report_after_a_budget_refusal_names_a_way_on_that_is_not_refused_again(
        tmp_path, rng, figures_not_drawn):
    """A fit (or ensemble) refused because no candidate fits its --max-gflops left a report
    that said "There is no ensemble yet …: run `hubensemble ensemble --run RUN --max-gflops
    0.1`", the command refused the same way. It names the budget's fault (the refusal's own
    words) and an ensemble command without the limit, which runs; a budget some candidate
    meets keeps the plain advice. Fails before: the refused command named."""
    from hubensemble import report
    from hubensemble.lockwords import command_line

    gflops = [1.0, 0.5]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    run.update(ensemble={"options": {"max_gflops": 0.1, "ensemble_budget": 15}})
    with pytest.raises(RunError, match="no candidate fits"):
        run_ensemble(run.path, max_gflops=0.1)
    with command_line():
        md = report.write_report(run.path)[0].read_text()
    said = re.search(r"There is no ensemble yet \(ensemble.json is missing\): no candidate fits "
                     r"the inference budget the run records \(the cheapest candidate in GFLOPs, "
                     r"t1, needs 0.5 GFLOPs \(limit 0.1\)\): run `hubensemble ([^`]*)` "
                     r"\(t1's figure, the least that admits a candidate\), or run "
                     r"`hubensemble ([^`]*)` for no budget\.", md)
    assert said and "--max-gflops" not in said.group(2), md
    assert said.group(1) == f"ensemble --run {run.path} --max-gflops 0.5"  # not "raise the
    assert said.group(2) == f"ensemble --run {run.path}"  # limit": which, to what?
    assert run_ensemble(run.path, max_gflops=0.5).members  # the commands named run
    assert run_ensemble(run.path).members
    run.path.joinpath("ensemble.json").unlink()
    run.update(ensemble={"options": {"max_gflops": 0.7, "ensemble_budget": 15}})
    with command_line():
        md = report.write_report(run.path)[0].read_text()
    assert (f"There is no ensemble yet (ensemble.json is missing): run `hubensemble ensemble "
            f"--run {run.path} --max-gflops 0.7`.") in md, md


def test_a_refused_budget_after_an_earlier_ensemble_is_recorded_and_said_by_the_report(
        tmp_path, rng, figures_not_drawn):
    """A fit with a new --max-latency-ms no candidate meets, after an earlier ensemble had
    selected: the refusal was recorded nowhere the report reads, and `hubensemble report`
    showed the earlier ensemble as the run's without a word. run.json's stage record now
    says it (which limits, when, which command, why: `cost.budget.cheapest`'s words); the
    report says the ensemble shown is of earlier options, why the newer were refused and the
    way on. An ensemble that selects since drops it, and its options then read as the newer
    (`budgetrefusal.newer_first`: it kept the earlier stage key, and the fit's refused options
    were read first). Fails before: no "refused" record, no words."""
    from hubensemble import report
    from hubensemble.budgetrefusal import newer_first, refusal
    from hubensemble.lockwords import command_line

    gflops = [1.0, 0.5]
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops, latency=[2.0, 3.0]), machine_info())
    earlier = run_ensemble(run.path)  # the earlier ensemble, no limit
    limits = {"max_latency_ms": 1.0, "ensemble_budget": 15}
    run.update(fit={"options": limits, "keys": {"ensemble": "the refused fit's"}})
    with run.lock("fit"), pytest.raises(RunError, match="no candidate fits") as refused:
        run_ensemble(run.path, max_latency_ms=1.0)
    record = refusal(run.meta())
    assert record["limits"]["max_latency_ms"] == 1.0 and record["command"] == "fit", record
    assert record["why"] in str(refused.value) and "t0" in record["why"], record
    assert read_ensemble(run.path)["members"] == earlier.to_json()["members"]  # it stays
    assert newer_first(run.meta()) == ("fit", "ensemble")
    with command_line():
        md = " ".join(report.write_report(run.path)[0].read_text().split())
    overview = md[:md.index("## Data")]
    assert ("not of the run's newest options: a later `hubensemble fit` with --max-latency-ms "
            "1 was refused for its inference budget (see \"Ensemble size\")") in overview, md
    size = md[md.index("## Ensemble size"):]
    assert (f"asked for --max-latency-ms 1 and was refused, as no candidate fits that inference "
            f"budget: {record['why']}. The ensemble below") in size, size
    way = re.search(r"To select under a budget, run `(hubensemble fit [^`]*)` \(t0's figure, the "
                    r"least that admits a candidate\); `(hubensemble fit [^`]*)` selects without "
                    "one", size)
    assert way and " --max-latency-ms 2 " in way.group(1), size  # t0's 2.0 ms
    assert "--max-latency-ms" not in way.group(2), size
    # An ensemble on its own since selects: the refusal is gone, its options the newer.
    run_ensemble(run.path)
    assert refusal(run.meta()) is None and newer_first(run.meta()) == ("ensemble", "fit")
    with command_line():
        assert "newest options" not in report.write_report(run.path)[0].read_text()
    # One refused on its own names the ensemble command with the refused limit.
    with pytest.raises(RunError, match="no candidate fits"):
        run_ensemble(run.path, max_latency_ms=1.0)
    with command_line():
        md = " ".join(report.write_report(run.path)[0].read_text().split())
    assert ("a later `hubensemble ensemble` with --max-latency-ms 1 was refused" in md
            and f"To select under a budget, run `hubensemble ensemble --run {run.path} "
            "--max-latency-ms 2` (t0's figure, the least that admits a candidate)." in md), md
