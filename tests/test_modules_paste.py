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
