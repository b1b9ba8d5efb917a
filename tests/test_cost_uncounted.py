"""Costs whose multiply-accumulates were not counted (`Cost.macs` None, TensorFlow without its
freezing): every reader keeps the params and latency and says in words why GFLOPs are missing."""

import dataclasses
import json
from types import SimpleNamespace

import pytest

from conftest import make_tiny_model
from test_cost import fake_run
from hubensemble.catalogue import ModuleSpec
from hubensemble.cost import Cost, Limits, read_run_costs, total_cost
from hubensemble.cost.records import RunCosts
from hubensemble.cost.sharing import head_cost
from hubensemble.cost.stage import run_cost
from hubensemble.errors import RunError
from hubensemble.hub import write_hub_module

WHY = "TensorFlow 9.9 has no convert_variables_to_constants_v2"


def uncounted(module="m", ms=2.0):
    return Cost(module, None, 8, 3, None, 251, {"1": ms, "64": 10 * ms}, "machine-a",
                head_macs=24, macs_not_counted=WHY)


def test_a_cost_without_macs_keeps_its_reason_through_cost_json_and_sums_say_whose():
    cost = uncounted()
    again = Cost.from_json(json.loads(json.dumps(cost.to_json())))
    assert again == cost and again.gflops is None and again.not_counted() == WHY
    assert cost.summary()["gflops"] is None and cost.summary()["gflops_not_counted"] == WHY
    counted = Cost("c", None, 8, 3, 1000, 99, {"1": 1.0, "64": 5.0}, head_macs=24)
    assert "macs_not_counted" not in counted.to_json()  # a counted record is as it was
    # null without a reason (a hand edit): not counted, as this version writes it
    bare = Cost.from_json({**counted.to_json(), "macs": None, "flops": None, "gflops": None})
    assert bare.macs is None and bare.gflops is None and bare.not_counted() == "no reason recorded"
    total = total_cost([counted, cost])
    assert total["flops"] is None and total["gflops"] is None
    assert total["params"] == 99 + 251 and total["latency_ms"] == {"1": 3.0, "64": 25.0}
    assert total["gflops_not_counted"] == (f"the multiply-accumulates of 1 of its 2 members (m) "
                                           f"were not counted: {WHY}")
    assert total_cost([counted])["gflops"] == 2000 / 1e9
    # Fails before: "of 1 of its 1 member", "of 2 of its 2 members".
    assert total_cost([cost])["gflops_not_counted"].startswith(
        "the multiply-accumulates of its one member (m) were not counted: ")
    assert total_cost([cost, uncounted("n")])["gflops_not_counted"].startswith(
        "the multiply-accumulates of all 2 of its members (m, n) were not counted: ")
    figures = {"gflops": total["gflops"], "latency_ms": total["latency_ms"]["1"], "members": 2}
    assert not Limits(gflops=1.0).fits(figures) and Limits(latency_ms=5.0).fits(figures)
    head = head_cost(cost)  # the head's D x C is known from its shape
    assert head.macs == 24 and head.gflops == 48 / 1e9 and head.not_counted() == ""


def test_costs_not_counted_under_another_tensorflow_are_counted_again():
    from hubensemble.formats import versions

    now = versions()["tensorflow"]
    same = RunCosts(costs={"t0": uncounted()}, machine={"tensorflow": now})
    assert same.outdated() is None  # the same TensorFlow fails the same way
    other = RunCosts(costs={"t0": uncounted()}, machine={"tensorflow": "2.0.0"})
    assert other.outdated() == ("the multiply-accumulates of its one candidate (t0) were not "
                                f"counted under TensorFlow 2.0.0, and this is TensorFlow {now}, "
                                "which may count them")
    counted = RunCosts(costs={"t0": Cost("c", None, 8, 3, 10, 9)},
                       machine={"tensorflow": "2.0.0"})
    assert counted.outdated() is None


@pytest.fixture(scope="module")
def uncounted_run(tmp_path_factory):
    """A run whose two candidates were costed by a TensorFlow without its freezing."""
    from _pytest.monkeypatch import MonkeyPatch
    from moved_internals import moved

    tmp = tmp_path_factory.mktemp("uncounted")
    module = write_hub_module(make_tiny_model(seed=0, width=8), str(tmp / "conv8"))
    modules = {"conv8": ModuleSpec(name="conv8", handle=module)}
    run = fake_run(tmp / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 16)])
    patch = MonkeyPatch()
    try:
        moved(patch, "tensorflow.python.framework", "convert_to_constants")
        run_cost(run.path, cache_dir=tmp / "cache", progress=False)
    finally:
        patch.undo()
    return run


def test_a_gflops_budget_leaves_uncounted_candidates_out_in_words(uncounted_run, caplog):
    from hubensemble.ensemble import run_ensemble

    with caplog.at_level("WARNING"), pytest.raises(RunError) as refused:
        run_ensemble(uncounted_run.path, max_gflops=1.0)
    said = [r.getMessage() for r in caplog.records]
    assert any("candidates t0, t1 are left out of the budgeted selection: their GFLOPs were "
               "not counted (TensorFlow " in s for s in said), said
    assert "max_gflops=1" in str(refused.value) or "--max-gflops 1" in str(refused.value)


def test_an_ensemble_of_uncounted_members_says_gflops_not_counted(uncounted_run):
    from hubensemble.ensemble import run_ensemble
    from hubensemble.ensembletext import format_ensemble

    result = run_ensemble(uncounted_run.path, max_latency_ms=1e6)
    record = json.loads((uncounted_run.path / "ensemble.json").read_text())["cost"]
    assert record["ensemble"]["gflops"] is None and record["ensemble"]["params"] > 0
    assert "were not counted: TensorFlow " in record["ensemble"]["gflops_not_counted"]
    assert record["candidates"]["t0"]["gflops"] is None
    text = format_ensemble(result)
    assert "cost:       ensemble GFLOPs not counted, " in text, text
    assert "were not counted: TensorFlow " in text, text
    recorded = read_run_costs(uncounted_run.path)
    assert all(c.macs is None and c.params > 0 for c in recorded.costs.values())


def test_the_report_says_why_gflops_are_missing(uncounted_run):
    from hubensemble.ensemble import run_ensemble
    from hubensemble.report import write_report

    run_ensemble(uncounted_run.path)
    md = write_report(uncounted_run.path).markdown.read_text()
    # Each reason once. Fails before: "conv8 at 8 px: WHY; conv8 at 16 px: WHY".
    assert "GFLOPs not counted (– below) for conv8 at 8 px, conv8 at 16 px: TensorFlow " in md, md
    assert md.count("has no convert_variables_to_constants_v2") == 1, md
    assert "Their parameters and latency are measured." in md


def test_distill_says_no_costlier_words_without_gflops():
    from hubensemble.distill import costlier_words

    assert costlier_words("s", None, 8, 0.1) is None
    assert costlier_words("s", 0.3, 8, None) is None
    assert "needs 0.3 GFLOPs" in costlier_words("s", 0.3, 8, 0.1)


def test_cost_table_rows_without_gflops_are_nan_and_named(uncounted_run):
    import numpy as np

    from hubensemble.cost.budget import cost_table

    recorded = read_run_costs(uncounted_run.path)
    cands = [SimpleNamespace(trial=t) for t in ("t0", "t1")]
    table, left_out = cost_table(uncounted_run.path, cands, recorded,
                                 Limits(gflops=1.0, latency_ms=1e6))
    assert np.isnan(table["gflops"]).all() and np.isfinite(table["latency_ms"]).all()
    assert left_out == ["t0", "t1"]
    table, left_out = cost_table(uncounted_run.path, cands, recorded, Limits(latency_ms=1e6))
    assert left_out == []


def test_distills_default_student_is_the_counted_cheapest_then_the_fewest_params():
    from hubensemble.distillchoice import _choose_student

    ens = {"members": [{"trial": "a", "module": "big"}, {"trial": "b", "module": "small"},
                       {"trial": "c", "module": "counted"}]}
    costs = {"a": uncounted("big"), "b": Cost("small", None, 8, 3, None, 40, {},
                                              macs_not_counted=WHY)}
    assert _choose_student(None, None, ens, [], costs, {}, None, None, None) == "small"
    costs["c"] = Cost("counted", None, 8, 3, 10 ** 9, 10 ** 6)
    assert _choose_student(None, None, ens, [], costs, {}, None, None, None) == "counted"


def test_a_gflops_limit_before_the_sweep_names_modules_whose_gflops_are_not_counted(
        tmp_path, monkeypatch):
    import numpy as np
    from moved_internals import moved

    from hubensemble.cost.stage import check_budget_before_tune
    from hubensemble.data import Split, Task

    module = write_hub_module(make_tiny_model(seed=0, width=8), str(tmp_path / "conv8"))
    task = Task(name="t", source="test", class_names=["a", "b", "c"],
                train=Split(images=np.zeros((6, 12, 12, 3), np.uint8),
                            labels=np.arange(6, dtype=np.int64) % 3))
    moved(monkeypatch, "tensorflow.python.framework", "convert_to_constants")
    with pytest.raises(RunError) as refused:
        check_budget_before_tune([ModuleSpec(name="conv8", handle=module)], task, "quick", 1.0,
                                 cache_dir=tmp_path / "cache")
    said = str(refused.value)
    # Costed (its latency is measured after the sweep), not counted: a latency limit takes
    # it. Fails before: "can be costed", "fix the modules, or drop the limit".
    assert said.startswith(
        "max_gflops=1 needs the GFLOPs of a candidate, and none of the 1 module to tune has "
        "GFLOPs that can be counted (conv8: TensorFlow "), said
    assert "convert_variables_to_constants_v2" in said, said
    assert said.endswith("the ensemble would refuse the limit after the whole sweep; pass "
                         "max_latency_ms in place of it (their latency is measured after the "
                         "sweep), make them countable (their reason says how), or drop the "
                         "limit, before the sweep is run"), said


def test_a_students_uncounted_gflops_in_distill_json_is_no_damage_to_the_report():
    from hubensemble.report.checks import DISTILL_NULLABLE, DISTILL_NUMBERS, number_problems

    doc = {"student": {"cost": {"gflops": None, "params": 251, "gflops_not_counted": WHY}}}
    assert number_problems(doc, DISTILL_NUMBERS, DISTILL_NULLABLE) == []
    doc = {"student": {"cost": {"gflops": "x", "params": 251}}}
    assert number_problems(doc, DISTILL_NUMBERS, DISTILL_NULLABLE) == [
        ("student.cost.gflops", 'a JSON string "x"')]


def test_distills_cost_ratio_is_none_when_either_gflops_is_not_counted():
    # distill compared the student's GFLOPs with 0 and divided by them: a student (or an
    # ensemble member) whose MACs were not counted raised TypeError after training.
    from hubensemble.distillcompare import cost_ratio
    counted = Cost("s", None, 8, 3, 2_000_000, 251, {"1": 1.0}, "machine-a")
    assert cost_ratio({"gflops": 0.012}, counted) == pytest.approx(0.012 / (2 * 2_000_000 / 1e9))
    assert cost_ratio({"gflops": 0.012}, uncounted("s")) is None
    assert cost_ratio({"gflops": None}, counted) is None
    assert cost_ratio(None, counted) is None
    assert cost_ratio({"gflops": 0.012}, dataclasses.replace(counted, macs=0)) is None


def test_a_budget_says_which_it_left_out_for_gflops_not_counted_and_why(uncounted_run, tmp_path):
    """ensemble's text said "left out (no cost): t1" of a candidate left out of a GFLOPs
    budget only because its GFLOPs were not counted (its params and latency measured): now
    that, why and what budget can take it; a module that could not be costed is said apart."""
    import shutil

    from hubensemble.ensemble import run_ensemble
    from hubensemble.ensembletext import format_ensemble

    run = tmp_path / "run"
    shutil.copytree(uncounted_run.path, run)
    data = json.loads((run / "cost.json").read_text())
    t0 = data["candidates"]["t0"]
    t0.pop("macs_not_counted")
    t0.update(macs=1000, flops=2000, gflops=2e-6)  # t0 counted, t1 not
    (run / "cost.json").write_text(json.dumps(data))
    result = run_ensemble(run, max_gflops=1.0)
    assert [m["trial"] for m in result.members] == ["t0"]
    assert result.limits["not_costed"] == ["t1"]
    text = format_ensemble(result)
    assert "no cost" not in text, text
    assert ("  left out (GFLOPs not counted, so max_gflops cannot take them; their params and "
            f"latency are measured: max_latency_ms alone can): t1: "
            f"{data['candidates']['t1']['macs_not_counted']}") in text, text
    assert "install a release hubensemble was tested with" in text  # the way on, its reason's
    record = {**result.to_json(), "limits": {**result.limits, "not_costed": ["t1", "t2"]}}
    assert "  left out (their module could not be costed): t2" in format_ensemble(record)


def _least_latency(run):
    costs = read_run_costs(run).costs
    return min((c.latency(1), t) for t, c in costs.items())


def test_a_gflops_budget_none_of_whose_candidates_is_counted_says_so_and_a_latency_way(
        uncounted_run, tmp_path):
    """`ensemble --max-gflops 1` over candidates costed (latency measured) but none with its
    GFLOPs counted said "no candidate has a cost; run `hubensemble cost` (it names why each
    module has none)": they have costs, and cost counts them the same way again. Now: whose
    GFLOPs were not counted and why, that no GFLOPs limit can admit one, and the way on: the
    latency limit that admits the least (its value rounded up: it selects), or cost once they
    can be counted. Fails before: "no candidate has a cost"."""
    import shutil

    from hubensemble.cost.budget import rounded_up
    from hubensemble.ensemble import run_ensemble
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    shutil.copytree(uncounted_run.path, run)
    ms, trial = _least_latency(run)
    with pytest.raises(RunError) as python:
        run_ensemble(run, max_gflops=1.0)
    said = str(python.value)
    assert "no candidate has a cost" not in said and "has none" not in said, said
    assert said.startswith("no candidate fits the inference budget (max_gflops=1): no "
                           "candidate's GFLOPs were counted (t0, t1: TensorFlow "), said
    assert ("so no GFLOPs limit can admit one; their latency is measured; pass max_latency_ms="
            f"{rounded_up(ms)} or more ({trial}'s, the least that admits a candidate) in place "
            "of max_gflops; or, once their GFLOPs can be counted (their reason says how), call "
            f"run_cost(run_dir={str(run)!r}) again") in said, said
    with command_line(), pytest.raises(RunError) as cli:
        run_ensemble(run, max_gflops=1.0, max_latency_ms=1e6)
    said = str(cli.value)
    assert ("their latency is measured; drop --max-gflops: --max-latency-ms 1e+06 alone "
            f"admits {trial}; or, once their GFLOPs can be counted (their reason says how), "
            f"run `hubensemble cost --run {run}` again") in said, said
    with command_line(), pytest.raises(RunError) as cli:
        run_ensemble(run, max_gflops=1.0, max_latency_ms=1e-6)
    said = str(cli.value)
    assert (f"their latency is measured; the cheapest candidate in ms at batch 1, {trial}, "
            f"needs {ms:.4g} ms at batch 1 (limit 1e-06); pass --max-latency-ms "
            f"{rounded_up(ms)} or more ({trial}'s, the least that admits a candidate) in "
            "place of --max-gflops; or") in said, said
    # The way on selects.
    assert [m["trial"] for m in run_ensemble(
        run, max_latency_ms=float(rounded_up(ms))).members] == [trial]


def test_the_report_of_a_gflops_budget_none_of_whose_candidates_is_counted_names_a_latency_one(
        uncounted_run, tmp_path):
    """The report of a run whose --max-gflops was refused as none of its candidates' GFLOPs
    were counted said "No candidate had a cost: run `hubensemble cost`" (a refusal after an
    ensemble) or "run `hubensemble ensemble --run RUN` for none" (before one); now the
    latency command that selects, with its figure, and cost once they can be counted. Fails
    before: "No candidate had a cost", "for none"."""
    import shutil

    from hubensemble import report
    from hubensemble.cost.budget import rounded_up
    from hubensemble.ensemble import run_ensemble
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    shutil.copytree(uncounted_run.path, run)
    (run / "ensemble.json").unlink(missing_ok=True)  # another test's: none selected yet
    ms, trial = _least_latency(run)
    latency = (f"`hubensemble ensemble --run {run} --max-latency-ms {rounded_up(ms)}` "
               f"({trial}'s latency, the least that admits a candidate; their latency is "
               f"measured), or, once their GFLOPs can be counted (the reason above says how), "
               f"run `hubensemble cost --run {run}`, then `hubensemble ensemble --run {run} "
               "--max-gflops 1`")
    with command_line():
        with pytest.raises(RunError):
            run_ensemble(run, max_gflops=1.0)
        md = " ".join(report.write_report(run).markdown.read_text().split())
    size = md[md.index("## Ensemble size"):md.index("## Best single")]
    assert "no candidate's GFLOPs were counted (t0, t1: TensorFlow " in size, size
    assert ("their latency is measured): run " + latency + ", or run `hubensemble ensemble "
            f"--run {run}` for no budget.") in size, size
    run_ensemble(run)
    with command_line():
        with pytest.raises(RunError):
            run_ensemble(run, max_gflops=1.0)
        md = " ".join(report.write_report(run).markdown.read_text().split())
    size = md[md.index("## Ensemble size"):md.index("## Best single")]
    assert "had a cost" not in size, size
    assert ("No GFLOPs limit can admit a candidate whose GFLOPs were not counted: run "
            + latency + ".") in size, size
