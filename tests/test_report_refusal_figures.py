"""The report's note on an ensemble refused for its budget gives the figures the refusal gave:
how many candidates, and each one's reason, when none had a cost."""

import pytest

from test_budget import costs_for, machine_info, make_run, run_ensemble, write_run_costs
from hubensemble.errors import RunError


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_refusal_for_no_cost_says_how_many_candidates_and_why(
        tmp_path, rng, n, figures_not_drawn):
    """An ensemble refused for --max-gflops when every candidate's module failed in `cost`:
    the report's note said "No candidate had a cost", no count and no reason, where the
    refusal warned each trial's. Now "Neither of the 2 candidates had a cost (t0, t1: cannot
    load)". Fails before: "No candidate had a cost: run"."""
    from hubensemble import report
    from hubensemble.lockwords import command_line

    gflops = [1.0] * n
    run = make_run(tmp_path / "run", rng, gflops)
    write_run_costs(run.path, costs_for(gflops), machine_info())
    run_ensemble(run.path)  # the earlier ensemble, which stays
    failed = {f"t{i}": "cannot load" if i < 2 else "no such file" for i in range(n)}
    write_run_costs(run.path, {}, machine_info(), failed=failed)
    with command_line():
        with pytest.raises(RunError, match="no candidate has a cost"):
            run_ensemble(run.path, max_gflops=1.0)
        md = " ".join(report.write_report(run.path).markdown.read_text().split())
    size = md[md.index("## Ensemble size"):]
    said = {1: "The run's one candidate had no cost (t0: cannot load)",
            2: "Neither of the 2 candidates had a cost (t0, t1: cannot load)",
            3: "None of the 3 candidates had a cost (t0, t1: cannot load; t2: no such file)"}[n]
    assert f"{said}: run `hubensemble cost --run {run.path}` (it names why each" in size, size
    # The "Inference cost" section names each reason once. Fails before: "t0: cannot load;
    # t1: cannot load; …" (a reason per trial, the third cut).
    costs = {1: "t0: cannot load", 2: "t0, t1: cannot load",
             3: "t0, t1: cannot load; t2: no such file"}[n]
    assert f"No inference costs: no candidate could be costed ({costs}; cost.json " in md, md
