"""tune's refusal of its run's recorded data before TensorFlow (`tunepending.check_tune_data`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hubensemble import candidate, options
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import DataError
from hubensemble.fileio import atomic_write_json
from hubensemble.lockwords import command_line
from hubensemble.rundir import DataArgs, Run
from hubensemble.sweepend import pending_trials
from hubensemble.tunepending import check_tune_data, labels_missing

CALL = dict(options.defaults_for("tune"), sweep=None, profile=None)


def ranked_run(tmp_path):
    """(run, its npz): a run ranked on two modules (files never read: the check loads none)
    of 64 training, 32 validation and 32 test 8x8 images of 4 classes in an npz of its own."""
    rng = np.random.default_rng(0)
    npz = tmp_path / "data" / "d.npz"
    npz.parent.mkdir()
    np.savez(npz, x_train=rng.integers(0, 255, (64, 8, 8, 3), dtype=np.uint8),
             y_train=np.arange(64) % 4, x_val=rng.integers(0, 255, (32, 8, 8, 3), np.uint8),
             y_val=np.arange(32) % 4, x_test=rng.integers(0, 255, (32, 8, 8, 3), np.uint8),
             y_test=np.arange(32) % 4)
    args = DataArgs(spec=f"npz:{npz}")
    run = Run(tmp_path / "run")
    run.attach_task(args.load(), args)
    specs = [ModuleSpec(name=f"m{i}", handle=str(tmp_path / f"m{i}")) for i in range(2)]
    for spec in specs:  # there, as a ranked run's modules are (a restart checks: restartcheck)
        os.makedirs(spec.handle, exist_ok=True)
    run.update(modules={s.name: s.to_json() for s in specs})
    atomic_write_json(run.ranking_json, {
        "metric": "knn", "k": 2, "selected": ["m0", "m1"], "selection": {"method": "top-k"},
        "modules": [{"name": s.name, "handle": s.handle, "status": "ok", "score": 0.9 - i / 10}
                    for i, s in enumerate(specs)]})
    return run, npz


def readable_hparams(run) -> dict:
    """trial.json "hparams" that read as HParams (a planned trial's): tune refuses a pool
    candidate whose hyperparameters cannot be read (`sweeppool.check_damaged`)."""
    from hubensemble.hyperrule import PROFILES
    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep

    ranking, modules, task = run.tune_inputs()
    return plan_sweep(ranking, module_specs(run, modules), sweep="default", task=task,
                      profile=PROFILES["quick"])[0].to_json()["hparams"]


def test_tune_with_trials_to_run_refuses_moved_data_before_tensorflow(tmp_path):
    """`tune --run RUN` with trials pending and the data run.json records moved was refused
    after TensorFlow's import (9.4 s, 705 MB here), in `Run.task`'s words; knowing that
    trials are pending needs the sweep planned, which the plan's rule does without
    TensorFlow. The same words (the reference: Run.task itself) before it; nothing when no
    trial is pending and the labels are there (tune then loads no data), nor for a chief."""
    run, npz = ranked_run(tmp_path)
    npz.rename(tmp_path / "moved.npz")
    with command_line(), pytest.raises(DataError) as said:
        run.task()
    with command_line(), pytest.raises(DataError) as refused:
        check_tune_data(run.path, CALL)
    # (then this call again: test_tune_refused_for_moved_data_says_to_run_this_tune_again…)
    assert str(refused.value).startswith(str(said.value)), refused.value
    assert "(the data recorded in " in str(said.value)
    code = ("import json, sys\nfrom hubensemble.lockwords import command_line\n"
            "from hubensemble.tunepending import check_tune_data\n"
            f"try:\n    check_tune_data({str(run.path)!r}, json.loads(sys.argv[1]))\n"
            "except Exception as e:\n    print(type(e).__name__)\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(CALL)], capture_output=True,
                         text=True, check=True).stdout
    assert out == "DataError\nFalse\n", out
    assert check_tune_data(run.path, dict(CALL, tuner_id="chief")) is None  # it loads none
    # Every planned trial complete, the labels there: no data to load, no refusal.
    pending = pending_trials(run.path, "default", {"budget": None, "modules": None,
                                                   "seed": 0, "profile": None})
    assert pending and pending["default"]
    sizes = run.tune_inputs()[2]["sizes"]
    for trial in pending["default"]:
        candidate.write_candidate(run.candidates, {
            "trial": trial, "module": trial.split("-")[-1], "status": "ok",
            "hparams": {"lr": 0.1}}, val_probs=np.full((sizes["val"], 4), 0.25),
            test_probs=np.full((sizes["test"], 4), 0.25))
    assert not any(pending_trials(run.path, "default", {"seed": 0}).values())
    check_tune_data(run.path, CALL)
    (run.labels / "val.npy").write_bytes(b"not npy")  # tune writes it again: the data's
    assert labels_missing(run, run.tune_inputs()[2]) == ["val"]
    with pytest.raises(DataError):
        check_tune_data(run.path, CALL)
    (run.labels / "val.npy").unlink()
    np.save(run.labels / "val.npy", np.arange(32) % 4)
    with pytest.raises(DataError):  # a restart loads the data before removing anything
        check_tune_data(run.path, dict(CALL, restart=True))


def test_tune_refuses_a_pool_of_other_settings_before_tensorflow(tmp_path):
    """`tune --run RUN --profile cpu` (or another --seed, --batchnorm) on a pool of quick
    candidates was refused after TensorFlow's import (13-15 s, 705 MB: `check_pool`, from
    the stage); the pool's files alone decide it. `check_tune_call` refuses it before, in
    the stage's words (the reference: `check_pool` at the call's profile), and lets a call
    of the pool's own settings through. Fails before: no check_tune_call."""
    from hubensemble.errors import RunError
    from hubensemble.hyperrule import PROFILES
    from hubensemble.sweeppool import check_pool
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    sizes = run.tune_inputs()[2]["sizes"]
    for trial in ("default-0000-m0", "default-0001-m0"):
        candidate.write_candidate(run.candidates, {
            "trial": trial, "module": "m0", "status": "ok", "profile": "quick",
            "hparams": readable_hparams(run)}, val_probs=np.full((sizes["val"], 4), 0.25),
            test_probs=np.full((sizes["test"], 4), 0.25))
    with command_line(), pytest.raises(RunError) as stage:
        check_pool(run, sweep="default", seed=0, profile=PROFILES["cpu"], batchnorm="auto")
    for call in (dict(CALL, profile="cpu"), dict(CALL, sweep="probe", profile="cpu"),
                 dict(CALL, profile=None)):  # the run's: rank's (none recorded), cpu
        with command_line(), pytest.raises(RunError) as refused:
            check_tune_call(run.path, call)
        assert str(refused.value).startswith(str(stage.value).split(", and the ")[0])
    assert "--profile quick -> cpu (recorded -> now)" in str(stage.value)
    code = ("import json, sys\nfrom hubensemble.tunepending import check_tune_call\n"
            f"try:\n    check_tune_call({str(run.path)!r}, json.loads(sys.argv[1]))\n"
            "except Exception as e:\n    print(type(e).__name__)\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(dict(CALL, profile="cpu"))],
                         capture_output=True, text=True, check=True).stdout
    assert out == "RunError\nFalse\n", out
    check_tune_call(run.path, dict(CALL, profile="quick"))  # the pool's own: pending, data there
    check_tune_call(run.path, dict(CALL, profile="cpu", restart=True, sweep="default"))


def test_tune_restart_in_a_chief_worker_sweep_is_refused_before_tensorflow(
        tmp_path, monkeypatch):
    """`tune --run RUN --restart --tuner-id tuner0 --oracle HOST:PORT` was refused by
    run_tune's argument check after TensorFlow's import (16 s, 705 MB): its arguments alone
    decide it. `check_tune_call` says it first, in run_tune's words (`check_restart`, the
    one rule both call), $KERASTUNER_ORACLE_IP too. Fails before: no refusal."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    call = dict(CALL, restart=True, tuner_id="tuner0", oracle_address="127.0.0.1:1")
    with command_line(), pytest.raises(HubensembleError, match=(
            r"^--restart starts a stand-alone sweep over, .* run tune with --restart and "
            r"without --tuner-id / --oracle \(or \$KERASTUNER_\*\)")):
        check_tune_call(run.path, call)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(HubensembleError, match=r"^restart=True starts a stand-alone sweep"):
        check_tune_call(run.path, dict(CALL, restart=True))
    monkeypatch.delenv("KERASTUNER_ORACLE_IP")
    check_tune_call(run.path, dict(CALL, restart=True))  # stand-alone: the data is there


def test_the_tune_command_refuses_before_tensorflow(tmp_path):
    """`hubensemble tune --run RUN` calls `check_tune_call` before it imports TensorFlow:
    the moved data, a pool of other settings and --restart with --tuner-id are refused in the
    words the check (the reference, called here) says, with TensorFlow never imported.
    Fails before: cmd_tune imported TensorFlow first (9-16 s, 705 MB) and the stage said it."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tunepending import check_tune_call
    from test_cli import each_in_one_process

    run, npz = ranked_run(tmp_path)
    npz.rename(tmp_path / "moved.npz")
    with command_line(), pytest.raises(DataError) as moved:
        check_tune_call(run.path, CALL)
    with command_line(), pytest.raises(HubensembleError) as restart:
        check_tune_call(run.path, dict(CALL, restart=True, tuner_id="tuner0"))
    refusals = each_in_one_process(
        ["tune", "--run", run.path],
        ["tune", "--run", run.path, "--restart", "--tuner-id", "tuner0",
         "--oracle", "127.0.0.1:1"])
    for (code, _, err, tensorflow), said in zip(refusals, (moved, restart)):
        assert (code, tensorflow) == (2, False), err
        assert str(said.value) in err, err


def test_tune_restart_with_a_tuner_id_is_refused_before_any_progress_words(tmp_path):
    """`tune --run RUN --restart --tuner-id tuner0 --oracle A` on a run whose run.json records a
    sweep said "resuming sweep default (from run.json; …)" on stderr, then refused --restart in
    a chief/worker sweep: a refusal comes first, with no progress words before it. The refusal's
    words are `check_restart`'s (the reference, called here). Fails before: the resuming line
    came first."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tunepending import check_restart
    from test_cli import each_in_one_process

    run, _ = ranked_run(tmp_path)
    run.update(tune={"sweep": "default", "sweeps": {"default": {"budget": 8}}})
    with command_line(), pytest.raises(HubensembleError) as said:
        check_restart(True, "tuner0", None)
    (code, out, err, tensorflow), = each_in_one_process(
        ["tune", "--run", run.path, "--restart", "--tuner-id", "tuner0", "--oracle",
         "127.0.0.1:1"])
    assert (code, tensorflow) == (2, False), err
    assert str(said.value) in err, err
    assert "resuming" not in err and not out, err
    assert err.index(str(said.value)) < 200, err  # the first words said (after the usage)


def test_tune_refused_for_moved_data_says_to_run_this_tune_again_after_the_fit(tmp_path):
    """`tune --run RUN --sweep seeds --budget 3` on a fitted run whose data moved was told the
    fit that records the data's new place, and no more: the fit runs the fit's own sweep,
    not this tune. Every refusal's way on is complete commands, in order: the fit, then this
    tune call again, in the caller's words (its flags on the command line, run_tune's
    keywords from Python), before TensorFlow and from the stage alike. Fails before: no
    "then run … again"."""
    from hubensemble.recordeddata import check_recorded_data
    from hubensemble.tunepending import check_tune_call

    run, npz = ranked_run(tmp_path)
    run.update(fit={"options": {"budget": 8, "top_k": 2}})
    npz.rename(tmp_path / "moved.npz")
    call = dict(CALL, sweep="seeds", budget=3)
    with command_line(), pytest.raises(DataError) as fit_way:
        check_recorded_data(run)  # the reference: the fit's way, as Run.task says it
    with command_line(), pytest.raises(DataError) as refused:
        check_tune_call(run.path, call)
    said = str(refused.value)
    assert said.startswith(str(fit_way.value)), said
    assert said.endswith(f"; then run `hubensemble tune --run {run.path} --sweep seeds "
                         "--budget 3` again"), said
    assert said.index("`hubensemble fit ") < said.index("`hubensemble tune "), said
    with pytest.raises(DataError) as python:
        check_tune_call(run.path, call)
    assert str(python.value).endswith(
        f"; then call run_tune(run_dir={str(run.path)!r}, sweep='seeds', budget=3) again")
    # export and distill of the ensemble: the fit's way, then the same command again.
    from hubensemble.preflight import check_run

    sizes = run.tune_inputs()[2]["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": "default-0000-m0", "module": "m0", "status": "ok", "hparams": {"lr": 0.1}},
        val_probs=np.full((sizes["val"], 4), 0.25), test_probs=np.full((sizes["test"], 4), 0.25))
    atomic_write_json(run.ensemble_json, {"members": [
        {"trial": "default-0000-m0", "module": "m0", "weight": 1.0,
         "path": "candidates/default-0000-m0"}]})
    for command in ("distill", "export"):
        with command_line(), pytest.raises(DataError) as stage:
            check_run(run.path, command)
        assert str(stage.value) == f"{fit_way.value}; then run the same command again"


def test_a_pool_of_other_settings_names_the_tune_command_of_the_recorded_values(tmp_path):
    """`tune --run RUN --sweep seeds --budget 1 --profile cpu --seed 3` on a pool of quick
    candidates was told "Pass the recorded value to add to this pool", naming no command:
    the way on is the tune call with the recorded value in place of the refused one and the
    call's other options kept, in the caller's words. Fails before: no command named."""
    from hubensemble.errors import RunError
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    sizes = run.tune_inputs()[2]["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": "default-0000-m0", "module": "m0", "status": "ok", "profile": "quick",
        "hparams": {"lr": 0.1}}, val_probs=np.full((sizes["val"], 4), 0.25),
        test_probs=np.full((sizes["test"], 4), 0.25))
    call = dict(CALL, sweep="seeds", budget=1, profile="cpu", seed=3)
    with command_line(), pytest.raises(RunError) as refused:
        check_tune_call(run.path, call)
    assert ("Pass the recorded value to add to this pool (run `hubensemble tune --run "
            f"{run.path} --sweep seeds --budget 1 --seed 3 --profile quick`), "
            ) in str(refused.value), refused.value
    with pytest.raises(RunError) as python:
        check_tune_call(run.path, call)
    assert ("Pass the recorded value to add to this pool (call run_tune(run_dir="
            f"{str(run.path)!r}, sweep='seeds', budget=1, seed=3, profile='quick')), "
            ) in str(python.value), python.value


def test_a_workers_pool_refusal_names_its_own_command_not_the_chiefs(tmp_path):
    """A worker of a chief/worker sweep (`tune --run RUN --sweep seeds --budget 1 --profile
    cpu --tuner-id tuner0 --oracle 127.0.0.1:8000`) on a pool of quick candidates was told
    the plain tune with --profile quick, without its --tuner-id and --oracle (run so, it
    would tune the sweep alone, beside the chief's), and to start the sweep over with
    --restart, which a worker is refused (`check_restart`). It is told its own command with
    the recorded value; that command passes the pool check. Fails before: no --tuner-id."""
    from hubensemble.errors import RunError
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    sizes = run.tune_inputs()[2]["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": "seeds-0000-m0", "module": "m0", "status": "ok", "profile": "quick",
        "hparams": readable_hparams(run)}, val_probs=np.full((sizes["val"], 4), 0.25),
        test_probs=np.full((sizes["test"], 4), 0.25))
    call = dict(CALL, sweep="seeds", budget=1, profile="cpu", tuner_id="tuner0",
                oracle_address="127.0.0.1:8000")
    with command_line(), pytest.raises(RunError) as refused:
        check_tune_call(run.path, call)
    said = str(refused.value)
    assert (f"(run `hubensemble tune --run {run.path} --sweep seeds --budget 1 --tuner-id "
            "tuner0 --oracle 127.0.0.1:8000 --profile quick`)") in said, said
    assert "--restart" not in said, said
    with pytest.raises(RunError) as python:
        check_tune_call(run.path, call)
    assert ("tuner_id='tuner0', oracle_address='127.0.0.1:8000', profile='quick'))"
            in str(python.value)), python.value
    # The chief's (or a lone tune's) words keep --restart.
    with command_line(), pytest.raises(RunError, match="--restart"):
        check_tune_call(run.path, dict(call, tuner_id=None, oracle_address=None))
    check_tune_call(run.path, dict(call, profile="quick"))  # the command named passes


@pytest.mark.parametrize("sweep", ["seeds", "seeds+probe"])
def test_a_workers_pool_refusal_by_the_stage_names_its_own_command(tmp_path, sweep):
    """The same worker run from Python (`run_tune`, which makes no check before TensorFlow):
    the stage's own pool checks (one sweep: `_run_part`'s; two: `run_tune`'s, before the
    first part) named the plain tune call, without its tuner_id and oracle_address, and
    restart=True, which a worker is refused. They say its own call, as `check_tune_call`
    does, and both its whole sweep (a "seeds+probe" call was told sweep='seeds'). Fails
    before: no tuner_id in the way on."""
    from hubensemble.errors import RunError
    from hubensemble.tune import run_tune

    run, _ = ranked_run(tmp_path)
    sizes = run.tune_inputs()[2]["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": "seeds-0000-m0", "module": "m0", "status": "ok", "profile": "quick",
        "hparams": readable_hparams(run)}, val_probs=np.full((sizes["val"], 4), 0.25),
        test_probs=np.full((sizes["test"], 4), 0.25))
    with pytest.raises(RunError) as refused:
        run_tune(run.path, sweep=sweep, budget=4, profile="cpu", tuner_id="tuner0",
                 oracle_address="127.0.0.1:8000", progress=False)
    said = str(refused.value)
    assert (f"sweep={sweep!r}, budget=4, tuner_id='tuner0', oracle_address='127.0.0.1:8000', "
            "profile='quick'))") in said, said
    assert "restart" not in said, said
    # check_tune_call's (before TensorFlow): the whole sweep too, not its part "seeds".
    from hubensemble.tunepending import check_tune_call

    with pytest.raises(RunError) as before:
        check_tune_call(run.path, dict(CALL, sweep=sweep, budget=4, profile="cpu",
                                       tuner_id="tuner0", oracle_address="127.0.0.1:8000"))
    assert str(before.value) == said


def test_a_planned_trials_damaged_hyperparameters_are_refused_before_tensorflow(tmp_path):
    """`tune --run RUN` whose planned trial holds a complete candidate with hyperparameters
    that cannot be read (trial.json edited by hand) was refused by the stage's
    `check_candidates` after TensorFlow's import: the trial ids alone decide it.
    `check_tune_call` says it before, in the stage's words (the reference: check_candidates
    on the plan). Fails before: no refusal before TensorFlow."""
    from hubensemble.errors import RunError
    from hubensemble.hyperrule import PROFILES
    from hubensemble.sweepplan import plan_sweep
    from hubensemble.sweeppool import check_candidates
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    ranking, modules, task = run.tune_inputs()
    from hubensemble.runspecs import module_specs

    plan = plan_sweep(ranking, module_specs(run, modules), sweep="default", task=task,
                      profile=PROFILES["cpu"])
    sizes = task["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": plan[1].trial_id, "module": plan[1].module, "status": "ok",
        "hparams": {"lr": "0.01"}}, val_probs=np.full((sizes["val"], 4), 0.25),
        test_probs=np.full((sizes["test"], 4), 0.25))
    with command_line(), pytest.raises(RunError) as stage:
        check_candidates(run.candidates, plan)
    code = ("import json, sys\nfrom hubensemble.lockwords import command_line\n"
            "from hubensemble.tunepending import check_tune_call\n"
            f"try:\n    with command_line():\n        check_tune_call({str(run.path)!r}, "
            "json.loads(sys.argv[1]))\nexcept Exception as e:\n    print(e)\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(CALL)], capture_output=True,
                         text=True, check=True).stdout
    assert out == f"{stage.value}\nFalse\n", out
    check_tune_call(run.path, dict(CALL, restart=True, sweep="default"))  # removed: no word


def test_a_workers_pool_refusal_comes_before_its_resuming_line(tmp_path):
    """A worker of a chief/worker sweep given no --sweep (`tune --run RUN --tuner-id tuner0
    --oracle A --profile cpu` on a pool of quick candidates) said "resuming sweep default …"
    on stderr, then was refused for the pool's other profile: refusals first, no progress
    words before them. The refusal's words are `check_tune_call`'s (the reference). Fails
    before: the resuming line came first."""
    from hubensemble.errors import RunError
    from hubensemble.tunepending import check_tune_call
    from test_cli import each_in_one_process

    run, _ = ranked_run(tmp_path)
    run.update(tune={"sweep": "default", "sweeps": {"default": {"budget": 8}}})
    sizes = run.tune_inputs()[2]["sizes"]
    candidate.write_candidate(run.candidates, {
        "trial": "default-0000-m0", "module": "m0", "status": "ok", "profile": "quick",
        "hparams": readable_hparams(run)}, val_probs=np.full((sizes["val"], 4), 0.25),
        test_probs=np.full((sizes["test"], 4), 0.25))
    with command_line(), pytest.raises(RunError) as said:
        check_tune_call(run.path, dict(CALL, profile="cpu", sweep="default", budget=8))
    (code, out, err, tensorflow), = each_in_one_process(
        ["tune", "--run", run.path, "--tuner-id", "tuner0", "--oracle", "127.0.0.1:1",
         "--profile", "cpu"])
    assert tensorflow is False and code != 0, err
    assert str(said.value).split(" (run `")[0] in err, err
    assert "resuming" not in err, err


def test_run_tunes_own_check_of_moved_data_ends_with_calling_it_again(tmp_path):
    """run_tune's refusal of data that moved ended at the way to bring the data back ("if the
    data moved, put it back at …"), where the command line's says "; then run `hubensemble
    tune --run RUN …` again": `check_tune_data` takes run_tune's bound arguments (a Profile
    object, a task, its other keywords) and says the call in Python's words: a shipped
    Profile as its name (its repr was pasted whole), nothing for a task given (checked
    against the record, not loaded). Fails before: the Profile's repr; a refusal with a
    task given."""
    import inspect

    from hubensemble.hyperrule import PROFILES, Profile
    from hubensemble.tune import run_tune

    run, npz = ranked_run(tmp_path)
    npz.rename(tmp_path / "moved.npz")
    bound = inspect.signature(run_tune).bind(run.path, profile=PROFILES["quick"])
    bound.apply_defaults()
    call = dict(bound.arguments)
    with pytest.raises(DataError) as python:
        check_tune_data(run.path, call)
    assert str(python.value).endswith(
        f"; then call run_tune(run_dir={str(run.path)!r}, profile='quick') again"), python.value
    with command_line(), pytest.raises(DataError) as typed:
        check_tune_data(run.path, dict(CALL, profile="quick"))
    assert str(typed.value).endswith(
        f"; then run `hubensemble tune --run {run.path} --profile quick` again"), typed.value
    own = Profile(**{**PROFILES["quick"].__dict__, "batch_size": 8})  # made in Python
    with pytest.raises(DataError) as custom:
        check_tune_data(run.path, dict(call, profile=own))
    assert str(custom.value).endswith(f"; then call run_tune(run_dir={str(run.path)!r}) again")
    assert check_tune_data(run.path, dict(call, task=object())) is None  # given, not loaded


def test_run_tune_refuses_moved_data_in_its_own_words_before_its_lock(tmp_path):
    """run_tune(RUN) on a run whose data moved was refused by the load, after the run's lock
    and log were made, in words that named no way to call it again: `_check_call` runs
    `check_tune_data` on its bound arguments first. Fails before: the load's words (no
    "then call run_tune(…) again")."""
    from hubensemble.tune import run_tune

    run, npz = ranked_run(tmp_path)
    npz.rename(tmp_path / "moved.npz")
    before = sorted(p.name for p in run.path.iterdir())
    with pytest.raises(DataError) as refused:
        run_tune(run.path, profile="quick", progress=False)
    assert str(refused.value).endswith(
        f"put it back at {npz}; then call run_tune(run_dir={str(run.path)!r}, "
        "profile='quick') again"), refused.value
    assert sorted(p.name for p in run.path.iterdir()) == before  # no lock, no log


def test_a_tune_with_nothing_to_train_says_so_before_tensorflow(tmp_path):
    """`tune --run RUN` whose every planned trial has a complete candidate imported
    TensorFlow (6-9 s, ~700 MB) before any word, to summarize candidate files.
    `nothing_to_train` says it from the plan and the files alone, in a process without
    TensorFlow; None while a trial is pending, for --restart and for a chief/worker
    sweep's process. Fails before: no nothing_to_train."""
    from hubensemble.tunepending import nothing_to_train

    run, _ = ranked_run(tmp_path)
    assert nothing_to_train(run.path, CALL) is None  # 8 trials to train
    plan = {"budget": None, "modules": None, "seed": 0, "profile": None}
    pending = pending_trials(run.path, "default", plan)["default"]
    sizes = run.tune_inputs()[2]["sizes"]
    for trial in pending[:-1]:
        candidate.write_candidate(run.candidates, {
            "trial": trial, "module": trial.split("-")[-1], "status": "ok",
            "hparams": {"lr": 0.1}}, val_probs=np.full((sizes["val"], 4), 0.25),
            test_probs=np.full((sizes["test"], 4), 0.25))
    assert nothing_to_train(run.path, CALL) is None  # one left
    candidate.write_candidate(run.candidates, {
        "trial": pending[-1], "module": "m1", "status": "failed", "error": "x"})
    code = ("import json, sys\nfrom hubensemble.lockwords import command_line\n"
            "from hubensemble.tunepending import nothing_to_train\n"
            "with command_line():\n"
            f"    print(nothing_to_train({str(run.path)!r}, json.loads(sys.argv[1])))\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(CALL)], capture_output=True,
                         text=True, check=True).stdout
    assert out == (f"nothing to train: the {len(pending)} planned trials of sweep default all "
                   "have a complete candidate; summarizing them\nFalse\n"), out
    assert nothing_to_train(run.path, dict(CALL, restart=True)) is None
    assert nothing_to_train(run.path, dict(CALL, tuner_id="w0", oracle_address="h:1")) is None
    (run.labels / "val.npy").unlink()  # written again from the data: work to do
    assert nothing_to_train(run.path, CALL) is None


def test_run_tune_of_moved_data_names_the_whole_fit_call_and_one_form_of_path(
        tmp_path, monkeypatch):
    """run_tune('run', …) from Python on a fit's run whose data moved was told "(the data
    recorded in run/run.json); if the data moved, pass its new place as fit's data, with the
    run's catalogue and options and out='run', …; then call run_tune(run_dir='/abs/run', …)
    again": no fit call to make (the command line's named the whole command), and a relative
    and an absolute path in one message. Now the whole fit call and absolute paths
    throughout, before TensorFlow. Fails before: "pass its new place as fit's data"."""
    from hubensemble.tune import run_tune

    run, npz = ranked_run(tmp_path)
    catalogue = tmp_path / "c.yaml"
    catalogue.write_text("modules:\n  - {name: m0, handle: /x/m0}\n  - {name: m1, handle: /x/m1}\n")
    run.update(fit={"options": {"top_k": 2, "profile": "quick"},
                    "catalogue": [f"{catalogue}:2"]})
    npz.rename(tmp_path / "moved.npz")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as refused:
        run_tune("run", sweep="probe", budget=8, profile="quick", progress=False)
    said = str(refused.value)
    assert (f"(the data recorded in {tmp_path / 'run' / 'run.json'}); if the data moved, give "
            "fit its new place (NEW_PATH), which it records, going on from the run's finished "
            f"stages: call hubensemble.fit(out='{tmp_path / 'run'}', catalogue='{catalogue}', "
            "data='npz:NEW_PATH', top_k=2, profile='quick'); then call run_tune(run_dir="
            f"'{tmp_path / 'run'}', sweep='probe', budget=8, profile='quick') again") in said, said
    assert "'run'" not in said and " run/" not in said, said


def test_a_pool_refusal_names_calls_whose_parts_each_keep_their_recorded_seed(tmp_path):
    """`tune --sweep default+probe --profile cpu --seed 3` on a pool of quick candidates of
    both parts, default recorded at --seed 3 and probe at 0, was told the call with --profile
    quick and --seed 3; pasted, the probe part refused it ("--seed 0 -> 3"), whose call with
    --seed 0 the default part refused ("--seed 3 -> 0"), and so on. The way on names a call
    per part, each with its own record's --seed and --head-init, each passing the pool check;
    parts that agree share one call. Fails before: one call of default+probe with --seed 3."""
    import shlex

    from hubensemble.cli import build_parser
    from hubensemble.errors import RunError
    from hubensemble.hyperrule import get_profile
    from hubensemble.tunepending import check_tune_call

    run, _ = ranked_run(tmp_path)
    sizes = run.tune_inputs()[2]["sizes"]
    for trial in ("default-0000-m0", "probe-0000-m0"):
        candidate.write_candidate(run.candidates, {
            "trial": trial, "module": "m0", "status": "ok", "profile": "quick",
            "hparams": readable_hparams(run)}, val_probs=np.full((sizes["val"], 4), 0.25),
            test_probs=np.full((sizes["test"], 4), 0.25))
    quick = get_profile("quick").to_json()
    records = {"default": {"budget": 4, "seed": 3, "profile": quick, "head_init": "zero"},
               "probe": {"budget": 4, "seed": 0, "profile": quick}}
    for probe_seed, calls in ((0, 2), (3, 1)):
        records["probe"]["seed"] = probe_seed
        run.update(tune={"call_sweep": "default+probe", "sweeps": records})
        call = dict(CALL, sweep="default+probe", budget=4, profile="cpu", seed=3,
                    head_init="zero")
        with command_line(), pytest.raises(RunError) as refused:
            check_tune_call(run.path, call)
        way = str(refused.value).split("Pass the recorded value to add to this pool (", 1)[1]
        named = way.split("`")[1:2 * calls:2]
        assert len(named) == calls and (calls == 1 or "`, then `" in way), refused.value
        sweeps = []
        for words in named:
            args = build_parser().parse_args(shlex.split(words)[1:])
            sweeps.append(args.sweep)
            check_tune_call(run.path, dict(options.kwargs_for("tune", args), sweep=args.sweep))
        assert sweeps == (["default", "probe"] if calls == 2 else ["default+probe"]), named


def test_a_refused_budgets_way_on_pasted_is_taken_by_the_pool(tmp_path, in_process):
    # `tune --sweep probe --budget 2 --seed 4` on a pool of seed 0 was told `… --budget 8
    # --seed 4` (the budget's way on; --modules m0,m1's: `--modules m0 m1 --seed 4`); pasted,
    # the pool refused it (--seed 0 -> 4), and the pool's way on kept --budget 2. Now the
    # pool's refusal of the call as those ways on fix it comes first.
    # Fails before: the pasted command exits 2 ("--seed 0 -> 4").
    import re
    import shlex

    from test_tune_before_tf import finished_probe_run

    run = finished_probe_run(tmp_path)
    for typed in (["--budget", "2", "--seed", "4"], ["--budget", "2", "--profile", "cpu"],
                  ["--budget", "2", "--train-batch-size", "8"],
                  ["--modules", "m0,m1", "--seed", "4"]):
        code, _, err = in_process("tune", "--run", run.path, "--sweep", "probe", *typed)
        pasted = re.findall(r"`hubensemble (tune [^`]*)`", err)
        assert code == 2 and pasted, err
        for command in pasted:  # the user's paste, run: every trial there, reused
            code, printed, again = in_process(*shlex.split(command))
            assert code == 0 and printed.startswith("sweep probe: 8 ok"), (command, again)
    # From Python: the call named, called.
    import hubensemble
    from hubensemble.errors import HubensembleError

    for typed in ({"budget": 2, "seed": 4}, {"modules": ["m0,m1"], "seed": 4}):
        with pytest.raises(HubensembleError) as refused:
            hubensemble.run_tune(str(run.path), sweep="probe", **typed)
        named = re.findall(r"run_tune\(([^()]*)\)", str(refused.value))
        assert named, refused.value
        for keywords in named:
            assert hubensemble.run_tune(**eval(f"dict({keywords})")).ok == 8
