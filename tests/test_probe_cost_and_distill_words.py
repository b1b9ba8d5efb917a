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


def _student_record(profile, **given):
    """A student's trial.json fields as distill writes them for run_distill(**given) from a
    candidate tuned under `profile` (its batch): the hyperparameters at the batch trained."""
    from hubensemble.export.retrain import at_train_batch
    from hubensemble.hyperrule import HParams, get_profile

    tuned = HParams(lr=0.01, steps=40, batch_size=get_profile(profile).batch_size, seed=0)
    hparams = at_train_batch(tuned, given.get("train_batch_size"))
    return {"trial": "distill-small", "module": "small", "kind": "distilled",
            "profile": profile, "hparams": hparams.to_json(), "hparams_from": "t0",
            "steps_scale": float(given.get("steps_scale", 2.0)),
            "mixup": float(given.get("mixup", 0.2)),
            "lr_scale": float(given.get("lr_scale", 1.0)), "init": "member",
            "init_from": "t0", "init_rule": given.get("init", "best")}


def test_distill_s_command_words_name_the_student_s_training_batch():
    """The "ready to paste" distill command of a student (export's "distil it again" words)
    left out --train-batch-size: a student distilled in batches of 8 was distilled again at
    its candidate's 16, the learning rate halved back. Every option of run_distill the
    record holds and that is not at its default is named; pasted, the command line parses
    (the real parser) to those values, and the keywords are run_distill's. Fails before:
    the words had no --train-batch-size / train_batch_size."""
    import inspect
    import shlex

    from hubensemble import options
    from hubensemble.cli import build_parser
    from hubensemble.distill import run_distill
    from hubensemble.distillcompare import distilled_with

    given = {"train_batch_size": 8, "init": "member", "steps_scale": 0.05, "lr_scale": 0.5}
    flags, keywords = distilled_with(_student_record("quick", **given))
    assert flags == ("--distill-init member --distill-lr 0.5 --distill-steps 0.05 "
                     "--train-batch-size 8"), flags
    args = build_parser().parse_args(
        ["distill", "--run", "R", "--student", "small", *shlex.split(flags)])
    parsed = options.kwargs_for("distill", args)
    defaults = options.defaults_for("distill")
    assert {k: v for k, v in parsed.items() if v != defaults[k] and k != "student"} == given
    called = eval(f"dict({keywords})")  # the Python words, as a caller pastes them
    assert called == given and set(called) <= set(inspect.signature(run_distill).parameters)
    # At its defaults nothing is named; a batch equal to the profile's is its default.
    assert distilled_with(_student_record("quick")) == ("", "")
    assert distilled_with(_student_record("cpu", train_batch_size=32)) == ("", "")
    # A record that holds the batch as given takes it: none given, none named.
    record = {**_student_record("quick", train_batch_size=8), "train_batch_size": None}
    assert distilled_with(record) == ("", "")
    # A hand-edited batch no option takes is left out, as the other fields are.
    broken = _student_record("quick", train_batch_size=8)
    broken["hparams"]["batch_size"] = -3
    assert distilled_with(broken) == ("", "")
