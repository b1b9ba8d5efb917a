"""A probe candidate's cost of other module files is not taken; distill's command words name
every recorded option that changes the student."""

import json
import shutil

from conftest import make_tiny_model
from hubensemble import tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.cost.records import read_run_costs
from hubensemble.cost.stage import run_cost
from hubensemble.fileio import atomic_write_json
from hubensemble.hub import locate_spec, write_hub_module
from hubensemble.rundir import DataArgs, Run


def _spec(module):
    # native_size 8: the probes embed the 8 x 8 digits as they are (128 px otherwise).
    return ModuleSpec(name="m0", handle=module, native_size=(8, 8))


def _probe_run(path, module):
    """A run as rank leaves it: the digits, one module "m0" at `module`, selected."""
    run = Run(path)
    args = DataArgs(spec="sklearn:digits")
    run.attach_task(args.load(), args)
    run.update(modules={"m0": _spec(module).to_json()})
    atomic_write_json(run.ranking_json, {
        "metric": "knn", "k": 1, "modules": [{"name": "m0", "handle": module, "status": "ok",
                                              "score": 0.9}],
        "selected": ["m0"], "selection": {"method": "top-k"}})
    return run


def _trials(run):
    return {d.name: json.loads((d / "trial.json").read_text())
            for d in sorted(run.candidates.iterdir()) if (d / "trial.json").exists()}


def test_a_probe_trial_records_its_module_files_and_a_cost_of_others_is_stale(
        module_factory, tmp_path):
    """Probe trials wrote no "module_fingerprint" into trial.json (fine-tuning trials do), so
    after m0's files were replaced by a wider net and its probes tuned again, cost.json's
    count of the old files was taken for them without a word (the ensemble's budget, the
    report). Now a probe records its module files' key, the one cost counts them by
    (`hub.locate_spec`), and the old cost is stale, with why. Fails before: no
    "module_fingerprint" in a probe's trial.json, and read_run_costs took every old cost."""
    module = str(tmp_path / "m0")
    shutil.copytree(module_factory("narrow", width=4), module)
    run = _probe_run(tmp_path / "run", module)
    cache = str(tmp_path / "cache")
    tune.run_tune(run.path, sweep="probe", budget=4, profile="quick", strategy="cpu",
                  cache_dir=cache, progress=False)
    first = _trials(run)
    assert first and all(r["status"] == "ok" for r in first.values()), first
    narrow = locate_spec(_spec(module)).fingerprint
    assert {r.get("module_fingerprint") for r in first.values()} == {narrow}, first
    costs = run_cost(run.path, cache_dir=cache, latency=False, progress=False).costs
    assert {c.fingerprint for c in costs.values()} == {narrow}
    shutil.rmtree(module)
    write_hub_module(make_tiny_model(seed=1, width=16), module)
    wide = locate_spec(_spec(module)).fingerprint
    assert wide != narrow
    tune.run_tune(run.path, sweep="probe", budget=4, profile="quick", strategy="cpu",
                  cache_dir=cache, progress=False, restart=True)
    again = _trials(run)
    assert set(again) == set(first)
    assert {r.get("module_fingerprint") for r in again.values()} == {wide}, again
    recorded = read_run_costs(run.path)
    assert recorded.costs == {} and sorted(recorded.stale) == sorted(first), recorded
    for why in recorded.stale.values():
        assert why.startswith(f"its cost is of other files of module m0 (fingerprint "
                              f"{narrow[:12]}, the trial's {wide[:12]}"), why
