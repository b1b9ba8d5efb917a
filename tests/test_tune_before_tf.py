"""tune's words that files alone decide, where the command and the stage say them: a budget
too small for the sweep with the whole command to run next, before TensorFlow; a stand-alone
tune with nothing to train saying so before TensorFlow's import (run_tune's refusal of data
that moved, ending with calling it again: test_tunepending)."""
import json
import re
import subprocess
import sys

import pytest

from test_tunepending import ranked_run


def test_tune_budget_refusal_gives_the_whole_command_before_tensorflow(tmp_path):
    """`tune --run R --sweep probe --budget 2 --seed 3` was told "pass --budget 4 or more"
    and left to type --seed 3 again; now the whole command, before TensorFlow. Fails before:
    "pass --budget 4"."""
    from test_cli import each_in_one_process

    run, _ = ranked_run(tmp_path)
    (code, _, err, tensorflow), = each_in_one_process(
        ["tune", "--run", run.path, "--sweep", "probe", "--budget", "2", "--seed", "3"])
    assert (code, tensorflow) == (2, False), err
    assert ("budget 2 cannot hold one module's 4 trials: run `hubensemble tune --run "
            f"{run.path} --sweep probe --budget 8 --seed 3` (or more; 4 trials for each of its 2 "
            "modules)"
            ) in err, err


def test_tune_with_nothing_to_train_says_so_before_tensorflows_import(tmp_path):
    """`tune --run R` whose every planned trial has a candidate said nothing until TensorFlow
    had loaded (6-9 s). Its line now comes before the import (the import stands in here
    for a marker and an exit: the order is what is checked). Fails before: no line before
    the marker."""
    import numpy as np

    from hubensemble import candidate
    from hubensemble.hyperrule import PROFILES
    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep

    run, _ = ranked_run(tmp_path)
    ranking, modules, task = run.tune_inputs()
    for e in plan_sweep(ranking, module_specs(run, modules), sweep="probe", task=task,
                        profile=PROFILES["quick"]):
        candidate.write_candidate(run.candidates, {
            "trial": e.trial_id, "module": e.module, "status": "ok", "profile": "quick",
            "hparams": e.to_json()["hparams"]},
            val_probs=np.full((task["sizes"]["val"], 4), 0.25),
            test_probs=np.full((task["sizes"]["test"], 4), 0.25))
    code = ("import json, sys\nfrom hubensemble import commands\n"
            "def marker(*a, **k):\n    print('IMPORT', file=sys.stderr); sys.exit(7)\n"
            "commands._import_tensorflow = marker\nfrom hubensemble.cli import main\n"
            "code = main(json.loads(sys.argv[1]))\n")
    argv = ["tune", "--run", str(run.path), "--sweep", "probe", "--profile", "quick"]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True,
                          text=True)
    lines = done.stderr.splitlines()
    said = ("nothing to train: the 8 planned trials of sweep probe all have a complete "
            "candidate; summarizing them")
    assert said in lines and "IMPORT" in lines, done.stderr
    assert lines.index(said) < lines.index("IMPORT"), done.stderr


def test_run_tunes_budget_refusal_names_its_call_with_one_that_holds_a_group(tmp_path):
    """run_tune(R, sweep='probe', budget=2, seed=3) was told "pass budget=4 or more"; now the
    call to make, with its other keywords, and the budget that holds the 2 modules its
    ranking selected, as the command line is told (it said budget=4, which the plan then
    warned left one module without a trial; stop 68). Fails before: "pass budget=4", then
    "budget=4"."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tune import run_tune

    run, _ = ranked_run(tmp_path)
    with pytest.raises(HubensembleError) as refused:
        run_tune(run.path, sweep="probe", budget=2, seed=3, profile="quick", progress=False)
    assert (f"cannot hold one module's 4 trials: call run_tune(run_dir={str(run.path)!r}, "
            "sweep='probe', budget=8, profile='quick', seed=3) (or more; 4 trials for each of "
            "its 2 modules)") in str(refused.value), refused.value


def test_a_missing_run_is_said_before_the_budget_of_its_sweep(tmp_path):
    """`tune --run MISSING --budget 1` (no --sweep: the run's) was told the default sweep's
    budget, "run `hubensemble tune --run /abs/MISSING --sweep default --budget 4`", a command
    on a folder that holds no run, whose sweep could not be known; run_tune(MISSING,
    budget=1) the same call. The folder is said first, before TensorFlow, also before a
    --budget its typed --sweep cannot hold (test_cli -k missing_run_folder_is_said_before).
    Fails before: the budget's refusal."""
    from hubensemble.errors import RunError
    from hubensemble.tune import run_tune
    from test_cli import each_in_one_process

    missing, empty = tmp_path / "nope", tmp_path / "empty"
    empty.mkdir()
    said = each_in_one_process(["tune", "--run", missing, "--budget", "1"],
                               ["tune", "--run", empty, "--budget", "1", "--seed", "2"])
    for folder, (code, _, err, tensorflow) in zip((missing, empty), said):
        assert (code, tensorflow) == (2, False), err
        assert err.startswith(f"hubensemble: error: {folder} " + (
            "does not exist" if folder == missing else "is not a hubensemble run")), err
    for folder in (missing, empty):
        with pytest.raises(RunError, match="does not exist|is not a hubensemble run"):
            run_tune(folder, budget=1, progress=False)
    assert not missing.exists() and not any(empty.iterdir())  # nothing made


def test_a_modules_refusal_names_the_modules_to_pass_or_what_to_rank_first():
    """sweeps.check_modules said which modules there are and no way on. Now the --modules to
    pass (the one name meant, "A B" for "A,B", a module that failed left out), which the
    parser reads back into modules check_modules takes, or what to rank first; from Python
    the keyword. Fails before: no "pass --modules" in the refusals."""
    import shlex

    from hubensemble.cli import build_parser
    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import command_line
    from hubensemble.sweeps import check_modules

    rows = [{"name": "gen_a"}, {"name": "bad", "status": "failed"}, {"name": "exp_b"}]
    for given, passed in ((["exp_b", "exp_bb"], ["exp_b"]), (["gen_a,exp_b"], ["gen_a", "exp_b"]),
                          (["gen_a", "bad"], ["gen_a"])):
        with command_line(), pytest.raises(HubensembleError) as refused:
            check_modules(given, rows)
        said = str(refused.value)
        way = said.rpartition("; pass ")[2].partition(",")[0]
        assert way.startswith("--modules "), said
        args = build_parser().parse_args(["tune", "--run", "R", *shlex.split(way)])
        assert args.modules == passed and check_modules(args.modules, rows), said
        with pytest.raises(HubensembleError, match=re.escape(f"; pass modules={passed!r}")):
            check_modules(given, rows)
    with command_line(), pytest.raises(HubensembleError) as refused:
        check_modules(["new"], rows)
    assert str(refused.value).endswith(
        "ranked modules: gen_a, exp_b; pass --modules NAME … of ranked modules, or add it to "
        "the run's catalogue and run `hubensemble rank` (or fit) again first, so that it is "
        "ranked"), refused.value
    with pytest.raises(HubensembleError, match=re.escape(
            "its modules: gen_a, exp_b; pass modules=[NAME, …] of its modules, or add it to a "
            "catalogue file given to fit")):
        check_modules(["new"], rows, source="catalogue")


def finished_probe_run(tmp_path):
    """A ranked run (`ranked_run`) whose probe sweep, as run.json records it (budget None),
    has every planned trial's candidate complete: a tune of it has nothing to train."""
    import numpy as np

    from hubensemble import candidate, options
    from hubensemble.hyperrule import PROFILES
    from hubensemble.runspecs import module_specs
    from hubensemble.sweepplan import plan_sweep
    from hubensemble.sweepstate import TRAIN_RULE

    run, _ = ranked_run(tmp_path)
    ranking, modules, task = run.tune_inputs()
    plan = plan_sweep(ranking, module_specs(run, modules), sweep="probe", task=task,
                      profile=PROFILES["quick"])
    rng = np.random.default_rng(0)
    for e in plan:
        candidate.write_candidate(run.candidates, {
            "trial": e.trial_id, "module": e.module, "status": "ok", "profile": "quick",
            "hparams": e.to_json()["hparams"], "train_rule": TRAIN_RULE},
            val_probs=rng.dirichlet(np.ones(4), task["sizes"]["val"]),
            test_probs=rng.dirichlet(np.ones(4), task["sizes"]["test"]))
    entry = {"sweep": "probe", "budget": None, "seed": 0,
             "profile": PROFILES["quick"].to_json(), "plan_size": len(plan),
             "modules": sorted({e.module for e in plan}), "requested_modules": None,
             "untuned": None, "keep_weights": options.default("keep_weights"),
             "trials": [e.trial_id for e in plan], "batchnorm": None, "train_rule": TRAIN_RULE}
    run.update(tune={**entry, "call_sweep": "probe", "sweeps": {"probe": entry}})
    return run


def test_tune_with_nothing_to_train_ends_with_its_summary_alone_before_tensorflow(tmp_path):
    """`tune --run R` whose sweep, as run.json records it, has every planned trial's candidate
    said "nothing to train: …; summarizing them", then imported TensorFlow (6-9 s, ~700 MB),
    then said "resuming sweep probe …" and "tune probe: all 8 planned trials finished
    before, reused" before the summary. Now nothing after that line but the end: the
    summary, without TensorFlow (the import stands in for a marker that exits). A call that
    would record another budget still runs the stage (after TensorFlow). Fails before:
    IMPORT and "resuming" after the line."""
    from hubensemble import options

    run = finished_probe_run(tmp_path)
    code = ("import json, sys\nfrom hubensemble import commands\n"
            "def marker(*a, **k):\n    print('IMPORT', file=sys.stderr); sys.exit(7)\n"
            "commands._import_tensorflow = marker\nfrom hubensemble.cli import main\n"
            "sys.exit(main(json.loads(sys.argv[1])))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(
        ["tune", "--run", str(run.path)])], capture_output=True, text=True)
    lines = done.stderr.splitlines()
    said = ("nothing to train: the 8 planned trials of sweep probe all have a complete "
            "candidate; summarizing them")
    assert done.returncode == 0 and lines[0] == said, done.stderr
    assert not any(w in done.stderr for w in ("IMPORT", "resuming", "reused (")), done.stderr
    assert done.stdout.startswith("sweep probe: 8 ok") and (
        "0 failed, 0 not finished, of 8 planned (8 finished before this run, reused)"
        in done.stdout), done.stdout
    from hubensemble.tunepending import finished_call

    call = options.defaults_for("tune")
    assert finished_call(run.path, call, progress=False).ok == 8
    assert finished_call(run.path, {**call, "sweep": "probe", "budget": 4}) is None


def test_nothing_to_train_is_followed_by_no_resuming_line_when_the_stage_runs(tmp_path):
    """`tune --run R --budget 4` (no --sweep: the run's probe, recorded with no budget) whose
    4 planned trials are complete said "nothing to train: …; summarizing them", then, the
    stage run after TensorFlow to record the new budget (`finished_call` declines), "resuming
    sweep probe …; --budget 4 as given", as if work came, and "tune probe: all 4 planned
    trials finished before, reused", the line said again. Now neither after it (cmd_tune
    tells run_tune the line was said: `tunepending.nothing_said`); run_tune from Python,
    which said no such line, still says which sweep it resumes and what it reused.
    Fails before: "resuming sweep probe" (then the reused line) on stderr after the line."""
    run = finished_probe_run(tmp_path)
    code = ("import sys\nfrom hubensemble.cli import main\n"
            "code = main(['tune', '--run', sys.argv[1], '--budget', '4'])\n"
            "print('\\0', file=sys.stderr)\nfrom hubensemble.tune import run_tune\n"
            "run_tune(sys.argv[1], budget=4)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True,
                          text=True)
    typed, _, python = done.stderr.partition("\0")
    assert done.returncode == 0 and typed.splitlines()[0] == (
        "nothing to train: the 4 planned trials of sweep probe all have a complete candidate; "
        "summarizing them"), done.stderr
    assert "resuming" not in typed and "finished before, reused" not in typed, typed
    assert done.stdout.startswith("sweep probe: 4 ok"), done.stdout
    assert "tune probe: all 4 planned trials finished before, reused" in python, python
    assert python.strip().startswith("resuming sweep probe with profile='quick' (from "
                                     "run.json; sweep=… chooses another); budget=4 as given"
                                     ), python


def test_run_tunes_signature_holds_no_command_line_plumbing():
    """run_tune(…, nothing_said=False) was a keyword of the public signature that only the
    command line passed (it had said `nothing_to_train`'s line). Now a context, set for one
    call and reset after it, so a later call from Python says its "resuming …" line.
    Fails before: nothing_said in run_tune's parameters."""
    import inspect

    import hubensemble

    assert "nothing_said" not in inspect.signature(hubensemble.run_tune).parameters
    from hubensemble.tunepending import nothing_said, was_said

    assert not was_said()
    with nothing_said(True):
        assert was_said()
    assert not was_said()


def test_run_tunes_budget_refusal_names_its_cache_dir_absolute(tmp_path, monkeypatch):
    """run_tune(R, sweep='probe', budget=2, cache_dir='cache') from a working folder was told
    "call run_tune(…, cache_dir='cache', budget=4)", the one relative path of the call (its
    run_dir was absolute; the command line's --cache-dir too). Fails before: cache_dir='cache'."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tune import run_tune

    run, _ = ranked_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubensembleError) as refused:
        run_tune(run.path, sweep="probe", budget=2, cache_dir="cache", progress=False)
    assert (f"call run_tune(run_dir={str(run.path)!r}, sweep='probe', cache_dir="
            f"{str(tmp_path / 'cache')!r}, budget=8) (or more;") in str(refused.value), \
        refused.value
    assert not (tmp_path / "cache").exists()


def test_tune_modules_a_ranking_lacks_names_the_runs_own_rank_command(tmp_path):
    """`tune --run R --modules new` (a name the ranking lacks, none close) was told to "run
    `hubensemble rank` (or fit) again first", which, pasted, lacked --catalogue, --data and
    --out (a new user, stop 68); from Python, run_tune the same. Now the run's own rank
    command (`Run.rank_command`: its catalogue, data and folder), before TensorFlow. Fails
    before: "run `hubensemble rank` (or fit) again"."""
    from test_cli import each_in_one_process

    from hubensemble.errors import HubensembleError
    from hubensemble.lockwords import command_line
    from hubensemble.tune import run_tune

    run, _ = ranked_run(tmp_path)
    (code, _, err, tensorflow), = each_in_one_process(
        ["tune", "--run", run.path, "--sweep", "probe", "--modules", "zzzz"])
    assert (code, tensorflow) == (2, False), err
    with command_line():
        rank = run.rank_command()
    assert rank.startswith("`hubensemble rank --catalogue ") and "--data " in rank, rank
    assert (f"or add it to the run's catalogue and run {rank} again first, so that it is "
            "ranked") in err, err
    with pytest.raises(HubensembleError) as refused:
        run_tune(run.path, sweep="probe", modules=["zzzz"], profile="quick", progress=False)
    assert (f"and call {run.rank_command()} again first") in str(refused.value), refused.value
    assert "run_rank(" in str(refused.value), refused.value
