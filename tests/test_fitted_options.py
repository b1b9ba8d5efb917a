"""A fit's options given as the values its fitted run's defaults resolved to are that run's
options (`fittedoptions.as_fitted`): its finished trials are reused, and no way on says
restart=True for them (a new user, stop 69)."""

from __future__ import annotations

import json
import os
import re

import pytest

from hubensemble.errors import HubensembleError


@pytest.fixture(scope="module")
def fitted_run(module_factory, tmp_path_factory):
    """(catalogue, npz, run folder, fit's keywords): a whole fit of two tiny modules with the
    default budget and modules (None: resolved by its sweep), without an evaluation."""
    from test_cli import two_modules_and_data
    from hubensemble.pipeline import fit

    root = tmp_path_factory.mktemp("fitted")
    cat, data = two_modules_and_data(root, module_factory, "fitted")
    kwargs = dict(profile="quick", top_k=2, corruptions=False)
    fit(cat, f"npz:{data}", root / "run", progress=False, **kwargs)
    return cat, data, root / "run", kwargs


def _trial_files(run):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(run / "candidates") for f in files}


def test_the_resolved_budget_and_modules_are_the_fitted_runs_and_keep_its_trials(fitted_run):
    """fit(…, modules=['m0,m1'], budget=1) on a run fitted with budget=None and modules=None
    was told to call fit(…, budget=8, modules=['m0', 'm1'], restart=True) "as the rank or
    tune options (budget=None -> 8; modules=None -> ['m0', 'm1']) changed": 8 is the budget
    the default resolved to and m0, m1 the modules it tuned, and restart=True deletes the
    finished trials. The call names no restart now and, pasted, reuses every candidate; the
    run keeps its record (budget and modules None). Fails before: restart=True in the call."""
    from hubensemble.fittedoptions import as_fitted
    from hubensemble.pipeline import FitOptions, fit
    from hubensemble.resume import refuse_changed_options
    from hubensemble.rundir import Run
    import hubensemble  # noqa: F401  (the call names it)

    cat, data, out, kwargs = fitted_run
    meta = json.loads((out / "run.json").read_text())
    # The budget its default resolved to: one trial each (a default sweep's 4 per module).
    budget, modules = len(meta["tune"]["trials"]), sorted(meta["tune"]["modules"])
    assert budget == 4 * len(modules) == 8
    assert meta["fit"]["options"]["budget"] is None and meta["fit"]["options"]["modules"] is None
    given = FitOptions(budget=budget, modules=modules[::-1], **kwargs)
    assert as_fitted(given, meta) == FitOptions(**kwargs)
    refuse_changed_options(Run(out), given, restart=False)  # was refused
    # Another selection (top_k=3: m0, m1 and any third) resolves None otherwise: kept.
    wider = FitOptions(budget=budget, **{**kwargs, "top_k": 3})
    assert as_fitted(wider, meta) is wider
    other = FitOptions(budget=budget + 4, modules=modules, **kwargs)  # another plan: refused
    assert as_fitted(other, meta) == FitOptions(budget=budget + 4, **kwargs)
    with pytest.raises(HubensembleError, match=rf"budget=None -> {budget + 4}\) changed"):
        refuse_changed_options(Run(out), other, restart=False)

    before = _trial_files(out)
    assert before
    with pytest.raises(HubensembleError) as refused:
        fit(cat, f"npz:{data}", out, progress=False, modules=[",".join(modules)], budget=1,
            **kwargs)
    said = str(refused.value)
    assert "separate the names" in said and "restart" not in said, said
    call = re.search(r"call (hubensemble\.fit\(.*?\))(?: \(|$)", said).group(1)
    assert f"budget={budget}" in call, call
    eval(call)  # the pasted call: the whole fit again, every stage's result reused
    assert _trial_files(out) == before
    after = json.loads((out / "run.json").read_text())["fit"]["options"]
    assert (after["budget"], after["modules"]) == (None, None)
