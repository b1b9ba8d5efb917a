"""A sweep budget too small for one group of 4 trials (`sweeps.check_budget`) names the whole
command, or Python call, that runs with a budget that holds one (`tune_again`, `fit_again`),
in the caller's words; the command line's parses back to the call with that budget."""
import re
import shlex

import pytest

from hubensemble import options
from hubensemble.cli import build_parser
from hubensemble.lockwords import command_line
from hubensemble.sweepagain import fit_again, tune_again
from hubensemble.sweeps import check_budget


def _refusal(sweep, budget, again, *, typed):
    with pytest.raises(options.OptionError) as refused:
        if typed:
            with command_line():
                check_budget(sweep, budget, again=again)
        else:
            check_budget(sweep, budget, again=again)
    return str(refused.value)


def _command(said: str) -> list[str]:
    """The words of the one `…` command in `said`, without "hubensemble"."""
    words = shlex.split(said.split("`")[1])
    assert words[0] == "hubensemble", said
    return words[1:]


def test_a_budget_that_holds_no_group_names_the_whole_command_with_one_that_does(tmp_path):
    """`tune --run R --sweep probe --budget 2 --profile quick --seed 3` was told "pass
    --budget 4 or more": the flag alone, its other options left for the user to type again
    (a fit's too). Now the whole command with --budget 4, which parses back to the same call
    but for the budget; from Python, the stage function's call. Fails before: check_budget
    took no `again`."""
    run = tmp_path / "a run"
    call = dict(options.defaults_for("tune"), sweep="probe", budget=2, profile="quick", seed=3)
    said = _refusal("probe", 2, tune_again(run, call), typed=True)
    assert said.startswith("the probe sweep runs 4 trials per module; budget 2 cannot hold "
                           "one module's 4 trials: run `hubensemble tune --run "), said
    assert said.endswith("` (or more; K modules need 4×K), or a sweep of single trials "
                         "(seeds, hyper, combined)"), said
    args = build_parser().parse_args(_command(said))
    again = options.kwargs_for("tune", args)
    assert (args.run, again) == (str(run), {**call, "budget": 4}), said
    python = _refusal("probe", 2, tune_again(run, call), typed=False)
    assert (f"cannot hold one module's 4 trials: call run_tune(run_dir={str(run)!r}, "
            "sweep='probe', budget=4, profile='quick', seed=3) (or more;") in python, python
    # A fit: its catalogue, data (with its data options) and options, into its folder.
    cat, data, out = tmp_path / "c.yaml", tmp_path / "d.npz", tmp_path / "run"
    fit = {"sweep": "aug", "budget": 3, "profile": "quick", "top_k": 2}
    again = fit_again(out, fit, catalogue=[str(cat)], data={"spec": f"npz:{data}", "seed": 1})
    said = _refusal("aug", 3, again, typed=True)
    assert "one augmentation family's 4 trials: run `hubensemble fit --catalogue" in said, said
    args = build_parser().parse_args(_command(said))
    assert (args.catalogue, args.data, args.data_seed, args.out) == (
        [str(cat)], f"npz:{data}", 1, str(out)), said
    assert {k: getattr(args, k) for k in fit} == {**fit, "budget": 4}, said
    python = _refusal("aug", 3, again, typed=False)
    assert (f"call hubensemble.fit(out={str(out)!r}, catalogue={str(cat)!r}, data='npz:{data}', "
            "data_args=…, top_k=2, sweep='aug', budget=4, profile='quick') (or more;"
            ) in python, python
    # Without `again` (the caller knows no command): the flag alone, as before.
    plain = _refusal("default", 1, None, typed=False)
    assert "pass budget=4 or more (K modules need 4×K)" in plain, plain
    check_budget("probe", 4, again=tune_again(run, call))  # holds one group: nothing


def test_demos_budget_refusal_names_no_top_k_it_was_not_given(tmp_path):
    """`demo --budget 2` was told "run `hubensemble demo --top-k 4 --budget 4 …` (or more; K
    modules need 4×K)": demo's own --top-k, untyped, read as a contradiction of the rule it
    follows (a new user, stop 66). A --top-k typed other than demo's default stays. Fails
    before: --top-k 4 in the command."""
    from hubensemble.cli import build_parser
    from hubensemble.lockwords import command_line
    from hubensemble.options import DEMO_TOP_K
    from hubensemble.preflight import _budget_again

    out = tmp_path / "demo-run"
    args = build_parser().parse_args(["demo", "--budget", "2", "--out", str(out)])
    assert args.top_k == DEMO_TOP_K
    with command_line():
        said = _budget_again(args, "default", 2)(4)
    assert "--budget 4" in said and "--top-k" not in said, said
    typed = build_parser().parse_args(["demo", "--budget", "2", "--top-k", "1", "--out", str(out)])
    with command_line():
        assert "--top-k 1 --budget 4" in _budget_again(typed, "default", 2)(4)


def test_fit_and_plan_sweep_from_python_name_the_whole_call(tmp_path):
    """fit(…, sweep='probe', budget=2) and plan_sweep(…, budget=2) from Python were told
    "pass budget=4 or more" alone, their other keywords left to type again (the command
    line's said the whole command: `fit_again`). Now the call with budget=4, every path
    absolute; nothing made. Fails before: "pass budget=4"."""
    from hubensemble import ModuleSpec, fit, shipped_catalogue
    from hubensemble.tune import plan_sweep

    cat, out = shipped_catalogue("demo.yaml"), tmp_path / "run"
    with pytest.raises(options.OptionError) as refused:
        fit(cat, "sklearn:digits", out, sweep="probe", budget=2, top_k=2, profile="quick")
    assert (f"cannot hold one module's 4 trials: call hubensemble.fit(out={str(out)!r}, catalogue="
            f"{str(cat)!r}, data='sklearn:digits', top_k=2, sweep='probe', budget=4, "
            "profile='quick') (or more;") in str(refused.value), refused.value
    assert not out.exists()
    ranking = {"modules": [{"name": "a", "status": "ok", "score": 1.0}], "selected": ["a"]}
    with pytest.raises(options.OptionError) as refused:
        plan_sweep(ranking, {"a": ModuleSpec(name="a", handle=str(tmp_path))}, sweep="default",
                   task={}, profile="quick", budget=2, seed=3)
    assert ("cannot hold one module's 4 trials: call plan_sweep(ranking, specs, "
            "sweep='default', task=task, profile='quick', seed=3, budget=4) (or more;"
            ) in str(refused.value), refused.value


def test_fits_module_refusal_names_the_whole_command_with_the_name_meant(tmp_path):
    """`fit … --sweep probe --modules alpah` was told "pass --modules alpha" alone, its other
    flags left to type again, where a budget's refusal gives the whole command (a new user,
    stop 67). With the one close name known, the whole command with it, which parses back to
    the same call but for --modules; from Python, the whole fit call; a name with no close
    one keeps its words. Before TensorFlow, nothing made. Fails before: "pass --modules"."""
    from hubensemble import fit
    from hubensemble.errors import HubensembleError
    from test_cli import each_in_one_process

    cat, out = tmp_path / "c.yaml", tmp_path / "run"
    cat.write_text("modules:\n" + "".join(f"  - {{name: {n}, handle: {tmp_path / n}}}\n"
                                          for n in ("alpha", "beta")))
    typed = ["fit", "--catalogue", cat, "--data", "sklearn:digits", "--sweep", "probe",
             "--top-k", "2", "--out", out]
    said = each_in_one_process([*typed, "--modules", "alpah", "beta"],
                               [*typed, "--modules", "zzz"])
    (code, _, err, tensorflow), (code2, _, err2, _) = said
    assert (code, code2, tensorflow) == (2, 2, False), err
    line = err.strip().splitlines()[-1]
    assert line.startswith("hubensemble fit: error: module 'alpah' is not in the catalogue "
                           "(did you mean 'alpha'?); its modules: alpha, beta; run "
                           "`hubensemble fit --catalogue "), line
    args = build_parser().parse_args(_command(line))
    assert (args.catalogue, args.data, args.sweep, args.top_k, args.modules, args.out) == (
        [str(cat)], "sklearn:digits", "probe", 2, ["alpha", "beta"], str(out)), line
    assert err2.strip().endswith("its modules: alpha, beta; pass --modules NAME … of its "
                                 "modules, or add it to a catalogue file given to fit"), err2
    with pytest.raises(HubensembleError) as refused:
        fit(cat, "sklearn:digits", out, modules=["alpah"], top_k=2)
    assert str(refused.value).endswith(
        f"its modules: alpha, beta; call hubensemble.fit(out={str(out)!r}, "
        f"catalogue={str(cat)!r}, "
        "data='sklearn:digits', top_k=2, modules=['alpha'])"), refused.value
    assert not out.exists()


def test_run_tunes_module_refusal_names_the_whole_call_with_the_name_meant(tmp_path):
    """run_tune(R, sweep='probe', modules=['m00'], profile='quick', seed=2) was told "pass
    modules=['m0']" alone, its other keywords left to type again (fit's gives the whole
    call); now the whole run_tune call with the module meant, before the lock (nothing
    written). A name with no close one keeps its words. Fails before: "pass modules=['m0']"."""
    from hubensemble.errors import HubensembleError
    from hubensemble.tune import run_tune
    from test_tunepending import ranked_run

    run, _ = ranked_run(tmp_path)
    before = sorted(p.name for p in run.path.iterdir())
    with pytest.raises(HubensembleError) as refused:
        run_tune(run.path, sweep="probe", modules=["m00"], profile="quick", seed=2)
    assert str(refused.value) == (
        "module 'm00' is not in the ranking (did you mean 'm0'?); ranked modules: m0, m1; "
        f"call run_tune(run_dir={str(run.path)!r}, sweep='probe', modules=['m0'], "
        "profile='quick', seed=2)"), refused.value
    with pytest.raises(HubensembleError, match=re.escape("pass modules=[NAME, …] of ranked")):
        run_tune(run.path, sweep="probe", modules=["zz"], profile="quick")
    assert sorted(p.name for p in run.path.iterdir()) == before


def test_tunes_and_demos_module_refusals_give_the_whole_command_or_call(tmp_path):
    """`tune --run R --modules m00 --seed 2` was told "pass --modules m0" alone (check_run had
    `modules`, not the command); now the whole command with the module meant, which parses
    back to the call but for --modules. From Python, "A,B" was told of "--modules A B", a
    flag it never typed: now modules=['A', 'B']. `demo --modules zz` was told to add it "to a
    catalogue file given to fit": demo takes no catalogue; it is told of its zoo's modules.
    Before TensorFlow. Fails before: "pass --modules m0", "--modules A B" from Python, "a
    catalogue file given to fit" from demo."""
    from hubensemble.errors import HubensembleError
    from hubensemble.sweeps import check_modules
    from test_cli import each_in_one_process
    from test_tunepending import ranked_run

    run, _ = ranked_run(tmp_path)
    (code, _, err, tensorflow), (code2, _, err2, tensorflow2) = each_in_one_process(
        ["tune", "--run", run.path, "--modules", "m00", "--seed", "2"],
        ["demo", "--modules", "zz", "--out", tmp_path / "demo"])
    assert (code, code2, tensorflow, tensorflow2) == (2, 2, False, False), (err, err2)
    line = err.strip().splitlines()[-1]
    assert line.startswith("hubensemble: error: module 'm00' is not in the ranking (did you "
                           "mean 'm0'?); ranked modules: m0, m1; run `hubensemble tune "), line
    args = build_parser().parse_args(_command(line))
    assert (args.run, args.modules, args.seed) == (str(run.path), ["m0"], 2), line
    assert "is not in the demo's zoo; its modules: " in err2 and err2.strip().endswith(
        "pass --modules NAME … of its modules (demo runs its zoo's modules only; fit "
        "--catalogue FILE takes modules of your own)"), err2
    assert not (tmp_path / "demo").exists()
    with pytest.raises(HubensembleError) as refused:
        check_modules(["m0,m1"], [{"name": "m0"}, {"name": "m1"}])
    assert str(refused.value).startswith(
        "module 'm0,m1' is not in the ranking (separate the names: modules=['A', 'B'], not "
        "['A,B']); ranked modules: m0, m1; pass modules=['m0', 'm1']"), refused.value


def test_fits_python_budget_refusal_names_hubensemble_fit_with_absolute_data(
        tmp_path, monkeypatch):
    """fit(cat, 'npz:task.npz', 'run', sweep='probe', budget=2) from a working folder was
    told "call fit(out='/abs/run', …, data='npz:task.npz', …)": a bare fit( reads as Keras'
    Model.fit, and the data's path alone stayed relative (out's and the catalogue's were
    absolute). Now hubensemble.fit and every path absolute. Fails before: "call fit(" and
    data='npz:task.npz'."""
    from hubensemble import fit, shipped_catalogue

    monkeypatch.chdir(tmp_path)
    with pytest.raises(options.OptionError) as refused:
        fit(shipped_catalogue("demo.yaml"), "npz:task.npz", "run", sweep="probe", budget=2)
    assert (f"call hubensemble.fit(out={str(tmp_path / 'run')!r}, catalogue="
            f"{str(shipped_catalogue('demo.yaml'))!r}, data='npz:{tmp_path / 'task.npz'}', "
            "sweep='probe', budget=4) (or more;") in str(refused.value), refused.value
    assert not (tmp_path / "run").exists()


def test_the_whole_command_keeps_fits_inputs_that_are_no_option(tmp_path, monkeypatch):
    """`fit … --export exp --cache-dir cache --no-cache --restart --budget 2` was told a
    "whole command" without --export, --cache-dir, --no-cache and --restart (they are no
    option of the table): run, it exported into RUN/export and cached elsewhere. Now they
    parse back, paths absolute; from Python, export=, cache_dir=, use_cache=, restart=.
    Fails before: --export not in the command."""
    from hubensemble import fit, shipped_catalogue
    from test_cli import each_in_one_process

    monkeypatch.chdir(tmp_path)
    cat = shipped_catalogue("demo.yaml")
    (code, _, err, tensorflow), = each_in_one_process(
        ["fit", "--catalogue", cat, "--data", "sklearn:digits", "--export", "exp",
         "--cache-dir", "cache", "--no-cache", "--restart", "--sweep", "probe", "--budget", "2",
         "--out", "run"], cwd=tmp_path)
    assert (code, tensorflow) == (2, False), err
    args = build_parser().parse_args(_command(err.strip().splitlines()[-1]))
    assert (args.export, args.cache_dir, args.use_cache, args.restart, args.budget, args.out
            ) == (str(tmp_path / "exp"), str(tmp_path / "cache"), False, True, 4,
                  str(tmp_path / "run")), err
    with pytest.raises(options.OptionError) as refused:
        fit(cat, "sklearn:digits", "run", export="exp", cache_dir="cache", use_cache=False,
            restart=True, sweep="probe", budget=2)
    assert (f"budget=4, export={str(tmp_path / 'exp')!r}, cache_dir="
            f"{str(tmp_path / 'cache')!r}, use_cache=False, restart=True) (or more;"
            ) in str(refused.value), refused.value
    assert not any(tmp_path.iterdir())  # nothing made


def test_plan_sweeps_module_refusal_names_its_whole_call_with_the_name_meant(
        tmp_path, monkeypatch):
    """plan_sweep(…, modules=['aa'], seed=3, run_dir='rr') was told "pass modules=['a']"
    alone, where its budget refusal gives the whole call; now the call with the module
    meant, its run_dir absolute (it named 'rr'). Fails before: "pass modules=['a']"."""
    from hubensemble import ModuleSpec
    from hubensemble.errors import HubensembleError
    from hubensemble.tune import plan_sweep

    monkeypatch.chdir(tmp_path)
    ranking = {"modules": [{"name": n, "status": "ok", "score": 1.0 - i / 2}
                           for i, n in enumerate("ab")], "selected": ["a"]}
    specs = {n: ModuleSpec(name=n, handle=str(tmp_path)) for n in "ab"}
    with pytest.raises(HubensembleError) as refused:
        plan_sweep(ranking, specs, sweep="default", task={}, profile="quick", modules=["aa"],
                   seed=3, run_dir="rr")
    assert str(refused.value).endswith(
        "ranked modules: a, b; call plan_sweep(ranking, specs, sweep='default', task=task, "
        f"profile='quick', modules=['a'], seed=3, run_dir={str(tmp_path / 'rr')!r})"
    ), refused.value
