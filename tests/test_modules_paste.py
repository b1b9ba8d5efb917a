"""Refusals of --modules / modules= and of a budget whose suggested command or call, pasted,
passes the check that refused it (a new user, stop 68: each way on was refused again)."""

from __future__ import annotations

import re
import shlex
import warnings

import pytest

from hubensemble.catalogue import load_catalogues, shipped_catalogue
from hubensemble.errors import HubensembleError
from hubensemble.sweeps import check_budget, check_modules
from hubensemble.cli import build_parser


def _demo_rows():
    return [{"name": s.name} for s in load_catalogues([shipped_catalogue("demo.yaml")])]


def _paste(said: str, data: str) -> str:
    """The Python call `said` suggests ("call hubensemble.fit(…)"), its data made one that
    does not exist: run, it stops at the data (checked after the modules and the budget)."""
    call = re.search(r"call (hubensemble\.fit\(.*?\))(?: \(|$)", said).group(1)
    return call.replace(repr(data), repr("sklearn:nosuch"))


def test_a_comma_and_an_unknown_name_are_named_in_one_refusal_whose_command_passes(tmp_path):
    """`demo --modules r8x2-generalist-0,zz` was told of the comma alone and to run `…
    --modules r8x2-generalist-0 zz`, then refused: "module 'zz' is not in the demo's zoo".
    Now one refusal names both, and its command (without zz, said) passes the check; from
    Python modules=['zz,r6x1-generalist-0'] the same. Fails before: 'zz' in the command."""
    from test_cli import each_in_one_process

    ((code, _, err, tensorflow),) = each_in_one_process(
        ["demo", "--modules", "r8x2-generalist-0,zz", "--out", tmp_path / "demo"])
    assert (code, tensorflow) == (2, False), err
    line = err.strip().splitlines()[-1]
    assert "'r8x2-generalist-0,zz' is not in the demo's zoo (separate the names" in line, line
    assert "module 'zz' is not in the demo's zoo" in line, line
    words = shlex.split(line.split("`")[1])
    args = build_parser().parse_args(words[1:])
    assert check_modules(args.modules, _demo_rows(), source="demo") == ["r8x2-generalist-0"]
    assert not (tmp_path / "demo").exists()

    from hubensemble.pipeline import fit

    cat, out = shipped_catalogue("demo.yaml"), tmp_path / "run"
    with pytest.raises(HubensembleError) as refused:
        fit(cat, "sklearn:digits", out, modules=["zz,r6x1-generalist-0"])
    said = str(refused.value)
    assert "separate the names: modules=['A', 'B']" in said and (
        "module 'zz' is not in the catalogue" in said), said
    import hubensemble  # noqa: F401  (the call names it)

    with pytest.raises(HubensembleError) as again:
        eval(_paste(said, "sklearn:digits"))
    assert "module" not in str(again.value) and "nosuch" in str(again.value), again.value
    assert not out.exists()


def test_every_fault_of_the_modules_is_named_and_failed_or_tied_names_are_not_meant():
    """Each fault in one refusal: a name a slip away is replaced, a failed one (and a close
    name that failed) is not offered. Fails before: the first fault alone."""
    rows = [{"name": "m0"}, {"name": "m1"}, {"name": "b", "status": "failed"}]
    with pytest.raises(HubensembleError) as refused:
        check_modules(["m00", "b", "b2"], rows)
    said = str(refused.value)
    assert "module 'm00' is not in the ranking (did you mean 'm0'?)" in said, said
    assert "module 'b' has status 'failed'" in said and "module 'b2' is not in" in said, said
    assert "did you mean 'b'" not in said, said
    meant = eval(re.search(r"pass modules=(\[.*?\])", said).group(1))
    assert check_modules(meant, rows) == ["m0"]


def test_a_budget_refusal_suggests_the_budget_that_tunes_every_module_given(tmp_path):
    """fit(…, sweep='default', budget=1, modules=['m1', 'm2']) was told budget=4, which
    the plan then warned left m2 without a trial ("pass budget=8"). Now 4×K: the call
    pasted passes the budget check, and the plan of that budget tunes both. The command
    line the same. Fails before: budget=4."""
    from hubensemble.pipeline import fit
    from hubensemble.sweepplan import plan_sweep
    from hubensemble.catalogue import ModuleSpec
    from test_cli import each_in_one_process
    import hubensemble  # noqa: F401  (the call names it)

    names = ["r8x2-generalist-0", "r6x1-generalist-0"]
    cat, out = shipped_catalogue("demo.yaml"), tmp_path / "run"
    with pytest.raises(HubensembleError) as refused:
        fit(cat, "sklearn:digits", out, sweep="default", budget=1, modules=names)
    said = str(refused.value)
    with pytest.raises(HubensembleError) as again:
        eval(_paste(said, "sklearn:digits"))
    assert "budget" not in str(again.value) and "nosuch" in str(again.value), again.value
    budget = int(re.search(r"budget=(\d+)", said).group(1))
    ranking = {"modules": [{"name": n, "status": "ok", "score": 1 - i / 10}
                           for i, n in enumerate(names)], "selected": names}
    specs = {n: ModuleSpec(name=n, handle=str(tmp_path / n)) for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "… gets no trial" was the next word
        plan = plan_sweep(ranking, specs, sweep="default", task={"flip": False},
                          profile="quick", budget=budget, modules=names)
    assert {e.module for e in plan} == set(names)
    ((code, _, err, tensorflow),) = each_in_one_process(
        ["fit", "--catalogue", cat, "--data", "sklearn:digits", "--sweep", "probe",
         "--budget", "2", "--modules", *names, "--out", out])
    assert (code, tensorflow) == (2, False), err
    args = build_parser().parse_args(shlex.split(err.strip().splitlines()[-1].split("`")[1])[1:])
    check_budget(args.sweep, args.budget, modules=args.modules)  # holds one module
    assert args.budget == 4 * len(names) and not out.exists(), err


def test_a_name_given_where_a_list_is_meant_is_told_the_list():
    """fit(modules="m1") was told "modules must be a non-empty list of strings (or None),
    got 'm1'" and no list to pass (a new user, stop 68). Now the list meant, names joined
    by commas split, passed back without a refusal; a str that holds no name the option
    takes gets the rule alone. Fails before: no "; pass modules=[…] instead"."""
    from hubensemble import options
    from hubensemble.errors import HubensembleError

    for given, meant in (("m1", ["m1"]), ("m1, m2", ["m1", "m2"])):
        with pytest.raises(HubensembleError) as refused:
            options.check_keywords("tune", {"modules": given})
        assert str(refused.value) == (
            f"modules must be a non-empty list of strings (or None), got {given!r}; pass "
            f"modules={meant!r} instead"), refused.value
        assert options.check("modules", meant) == meant
    with pytest.raises(HubensembleError) as refused:
        options.check("modules", " , ")
    assert "instead" not in str(refused.value), refused.value


@pytest.fixture(scope="module")
def stopped_run(module_factory, tmp_path_factory):
    """(catalogue, npz, run folder, fit's keywords): a fit of two tiny modules stopped before
    its sweep (a max_gflops no module meets), whose run.json records its options and whose
    ranking.json holds m0 and m1: a fitted run, for the options' check, in seconds."""
    from test_cli import two_modules_and_data
    from hubensemble.errors import RunError
    from hubensemble.pipeline import fit

    root = tmp_path_factory.mktemp("stopped")
    cat, data = two_modules_and_data(root, module_factory, "paste")
    kwargs = dict(profile="quick", top_k=2, corruptions=False, max_gflops=1e-7)
    with pytest.raises(RunError, match="no module fits max_gflops"):
        fit(cat, f"npz:{data}", root / "run", progress=False, **kwargs)
    return cat, data, root / "run", kwargs


def test_a_modules_refusal_on_a_fitted_run_gives_the_call_its_changed_options_need(
        stopped_run, monkeypatch):
    """fit(…, modules=['m0,m1']) on a fitted run was told the comma, and its call, pasted,
    was refused: "the rank or tune options (modules=None -> ['m0', 'm1']) changed since R
    was fitted" (a new user, stop 69). The call carries restart=True and says why (that
    refusal's words, with the new out folder instead); pasted, it passes to the data's load.
    The command line's the same, with --restart; with --restart given, it says it once; a
    budget's refusal the same. Fails before: no restart in the call."""
    from hubensemble.commands import _options_from
    from hubensemble.dataargs import DataArgs
    from hubensemble.pipeline import fit
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run
    from test_cli import each_in_one_process
    import hubensemble  # noqa: F401  (the call names it)

    cat, data, out, kwargs = stopped_run
    before = (out / "run.json").read_bytes()
    fit_flags = ["fit", "--catalogue", cat, "--data", f"npz:{data}", "--out", out,
                 "--profile", "quick", "--top-k", "2", "--no-corruptions",
                 "--max-gflops", "1e-7", "--modules", "m0,m1"]
    said = each_in_one_process(fit_flags, fit_flags + ["--restart"])
    for (code, _, err, tensorflow), restart in zip(said, (False, True)):
        assert (code, tensorflow) == (2, False), err
        line = err.strip().splitlines()[-1]
        assert "separate the names with spaces" in line, line
        args = build_parser().parse_args(shlex.split(line.split("`")[1])[1:])
        assert args.modules == ["m0", "m1"] and args.restart, line
        assert ("(as the rank or tune options (--modules unset -> m0 m1) changed since" in line
                ) is not restart, line
        assert line.count("--restart") == 1 + (not restart), line
        refuse_changed_options(Run(out), _options_from(args), restart=args.restart)

    with pytest.raises(HubensembleError) as refused:
        fit(cat, f"npz:{data}", out, progress=False, modules=["m0,m1"], **kwargs)
    said = str(refused.value)
    assert "restart=True) (as the rank or tune options (modules=None -> ['m0', 'm1']) " \
           "changed since" in said and "use a new out folder" in said, said
    with pytest.raises(HubensembleError) as budget:  # a budget's call: the same
        fit(cat, f"npz:{data}", out, progress=False, budget=1, **kwargs)
    assert "budget=4, profile='quick', max_gflops=1e-07, corruptions=False, restart=True) " \
           "(as the rank or tune options (budget=None -> 4) changed since" in str(
               budget.value), budget.value
    assert (out / "run.json").read_bytes() == before

    def load(self, **_):  # past every check made before the data loads
        raise AssertionError(f"{self.spec} was read")

    monkeypatch.setattr(DataArgs, "load", load)
    call = re.search(r"call (hubensemble\.fit\(.*?\))(?: \(|$)", said).group(1)
    with pytest.raises(AssertionError, match="was read"):
        eval(call)


def test_a_tune_refused_for_its_modules_and_its_budget_names_both_in_one_refusal(
        stopped_run, tmp_path):
    """`tune --run R --modules m0,m1 --budget 1` was told the budget, its command keeping
    `--modules m0,m1`, which pasted was refused for the comma (a new user, stop 69). One
    refusal now names both, its command holds both (--budget 8 for the two modules, said
    why), and pasted passes the checks of the modules and the budget; run_tune and fit from
    Python the same (their calls kept budget=1). A name meant by nobody: the budget's fault
    is said after the modules'. Fails before: the budget's refusal alone, or budget=1."""
    from hubensemble.pipeline import fit
    from hubensemble.rundir import Run
    from test_cli import each_in_one_process
    import hubensemble  # noqa: F401  (the call names it)

    cat, data, out, kwargs = stopped_run
    rows = Run(out).tune_inputs()[0]["modules"]
    (code, _, err, tensorflow), (_, _, err2, _) = each_in_one_process(
        ["tune", "--run", out, "--modules", "m0,m1", "--budget", "1"],
        ["tune", "--run", out, "--modules", "zz", "--budget", "1"])
    assert (code, tensorflow) == (2, False), err
    line = err.strip().splitlines()[-1]
    assert "separate the names with spaces" in line and (
        "(--budget 8: the default sweep runs 4 trials per module; budget 1 cannot hold one "
        "module's 4 trials)") in line, line
    args = build_parser().parse_args(shlex.split(line.split("`")[1])[1:])
    assert check_modules(args.modules, rows) == ["m0", "m1"]
    check_budget(args.sweep, args.budget, modules=args.modules)
    line2 = err2.strip().splitlines()[-1]
    assert "module 'zz' is not in the ranking" in line2 and line2.endswith(
        "; and the default sweep runs 4 trials per module; budget 1 cannot hold one module's "
        "4 trials: pass --budget 4 or more (K modules need 4×K), or a sweep of single trials "
        "(seeds, hyper, combined)"), line2

    from hubensemble.tune import run_tune  # run_tune's the same: budget=1 was kept

    with pytest.raises(HubensembleError) as refused:
        run_tune(out, sweep="default", budget=1, modules=["m0,m1"], progress=False)
    assert (f"call run_tune(run_dir={str(out)!r}, sweep='default', budget=8, modules=['m0', "
            "'m1']) (budget=8: the default sweep runs 4 trials per module") in str(
                refused.value), refused.value
    with pytest.raises(HubensembleError) as refused:
        fit(cat, f"npz:{data}", tmp_path / "new", sweep="default", budget=1,
            modules=["m0,m1"], **kwargs)
    said = str(refused.value)
    assert "(budget=8: the default sweep runs 4 trials per module" in said, said
    with pytest.raises(HubensembleError) as again:
        eval(_paste(said, f"npz:{data}"))
    assert "nosuch" in str(again.value) and "budget" not in str(again.value), again.value
    assert not (tmp_path / "new").exists()
