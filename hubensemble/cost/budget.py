"""Greedy selection under an inference budget, without TensorFlow: eligibility, the candidates'
cost table, and ensemble.json's cost record.

`hubensemble.ensemble.greedy_select` asks `eligibility` which candidates may be added at each
step; `select_ensemble` builds the cost table from RUN/cost.json with `cost_table` (the one
place that refuses a budget whose costs are missing, naming `hubensemble cost`) and records
the costs with `cost_record`. Candidates are duck-typed: anything with a `.trial` id.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from hubensemble.cost.records import (DEFINITION, Limits, RunCosts, cost_path,
                                      machine_info, total_cost)
from hubensemble.errors import RunError
from hubensemble.lockwords import run_words
from hubensemble.text import escaped

log = logging.getLogger(__name__)


def eligibility(costs, limits: Limits | None, m: int) -> Callable | None:
    """None without active limits, else ``fits(picks) -> bool [m]``: which of the m
    candidates keep the ensemble of `picks` (a list of candidate indices, repeats allowed)
    within `limits` when added. A new member adds its costs["gflops"][i] and
    costs["latency_ms"][i] and one member; a re-pick adds nothing; NaN (unknown cost) never
    fits. Raises ValueError when a limit's cost table is missing or not of length m."""
    if limits is None or not limits.active:
        return None
    tables = {}
    for name in limits.needs_costs:
        table = None if costs is None else costs.get(name)
        if table is None:
            raise ValueError(f"the {name} limit needs costs[{name!r}] per candidate")
        table = np.asarray(table, np.float64)
        if table.shape != (m,):
            raise ValueError(f"costs[{name!r}] must have one value per candidate ({m}), got "
                             f"shape {table.shape}")
        tables[name] = table

    def fits(picks):
        distinct = np.zeros(m, dtype=bool)
        distinct[sorted(set(int(i) for i in picks))] = True
        new = ~distinct
        ok = np.ones(m, dtype=bool)
        for name, table in tables.items():
            spent = float(table[distinct].sum())
            total = spent + np.where(new, table, 0.0)
            with np.errstate(invalid="ignore"):
                ok &= total <= getattr(limits, name) * (1 + 1e-9)  # NaN -> False
        if limits.members is not None:
            ok &= (int(distinct.sum()) + new) <= limits.members
        return ok

    return fits


def cost_table(run_dir, cands: Sequence, recorded: RunCosts, limits: Limits
               ) -> tuple[dict | None, list[str]]:
    """({"gflops": float64 [M], "latency_ms": float64 [M]} for greedy_select, NaN for the
    candidates whose module could not be costed; those trials), or (None, []) when the
    limits need no measured cost (only --max-members).

    Raises RunError naming `hubensemble cost --run RUN` when RUN/cost.json is missing, or
    has never costed some candidate (or has no latency for it when the latency is limited).
    A measured latency from another machine is used with a warning.
    """
    if not limits.needs_costs:
        return None, []
    path, command = cost_path(run_dir), run_words("cost", run_dir)
    costs = recorded.costs
    if not costs and not recorded.failed:
        raise RunError(f"{limits.flags()} needs the inference cost of every candidate, and "
                       f"{path} is missing: {command} first (it counts each module once, "
                       "with TensorFlow; the counts are cached)")
    needs_latency = limits.latency_ms is not None
    not_costed = [c.trial for c in cands if c.trial in recorded.failed and c.trial not in costs]
    missing = [c.trial for c in cands if c.trial not in costs and c.trial not in not_costed]
    no_latency = [c.trial for c in cands
                  if needs_latency and c.trial in costs and costs[c.trial].latency(1) is None]
    if missing or no_latency:
        what = missing or no_latency
        kind = "no cost" if missing else "no latency"
        raise RunError(f"{limits.flags()} needs the inference cost of every candidate; "
                       f"{len(what)} have {kind} in {path} ({', '.join(what[:4])}"
                       f"{', …' if len(what) > 4 else ''}): {command} again")
    for trial in not_costed:
        log.warning("candidate %s is left out of the budgeted selection: its module could not "
                    "be costed (%s)", trial, recorded.failed[trial])
    if needs_latency and recorded.machine.get("id") not in (None, machine_info()["id"]):
        log.warning("the latencies in %s were measured on another machine (%s, %s cores); "
                    "%s here to measure them on this one", escaped(path),
                    recorded.machine.get("cpu"), recorded.machine.get("cores"), command)
    nan = float("nan")
    table = {"gflops": np.array([costs[c.trial].gflops if c.trial in costs else nan
                                 for c in cands], np.float64),
             "latency_ms": np.array([(costs[c.trial].latency(1) if c.trial in costs else nan)
                                     if needs_latency else nan for c in cands], np.float64)}
    return table, not_costed


def fits_alone(m: int, table: dict | None, limits: Limits) -> list[int]:
    """Indices (of m candidates) that fit `limits` as a one-member ensemble."""
    fits = eligibility(table, limits, m)
    return list(range(m)) if fits is None else [int(i) for i in np.flatnonzero(fits([]))]


#: The measured dimensions of a Limits: (name, unit, a Cost's value of it).
_MEASURES = (("gflops", "GFLOPs", lambda cost: cost.gflops),
             ("latency_ms", "ms at batch 1", lambda cost: cost.latency(1)))


def cheapest(cands: Sequence, costs: dict, limits: Limits) -> str:
    """Why no candidate fits `limits` alone, for an error message: per limited measure whose
    lowest value is over its limit, "the cheapest candidate in UNIT, T, needs V UNIT (limit
    L)"; when each measure alone has a candidate within it, the lowest of each, which no one
    candidate reaches together. `costs`: {trial: Cost}."""
    lowest = {}
    for name, unit, value in _MEASURES:
        known = [(value(costs[c.trial]), c.trial) for c in cands if c.trial in costs]
        known = [(v, t) for v, t in known if v is not None]
        if getattr(limits, name) is not None and known:
            lowest[name] = (unit, getattr(limits, name), *min(known))
    if not lowest:
        return "no candidate has a cost"
    over = [f"the cheapest candidate in {unit}, {trial}, needs {v:.4g} {unit} (limit {limit:g})"
            for unit, limit, v, trial in lowest.values() if v > limit * (1 + 1e-9)]
    if over:
        return "; ".join(over)
    return "no one candidate is within every limit: " + "; ".join(
        f"the lowest {unit} is {trial}'s {v:.4g} (limit {limit:g})"
        for unit, limit, v, trial in lowest.values())


def cost_record(cands: Sequence, recorded: RunCosts, members: Sequence[str],
                path: Sequence[str], best_single: str) -> dict:
    """ensemble.json's "cost" record: the definition, the machine, every candidate's cost
    summary, and, when all of theirs are known, the ensemble's `total_cost` (of `members`),
    the best single candidate's, and the cost of every prefix of the greedy `path` (trials
    in pick order): [{"size": j, "members", "flops", "gflops", "params", "latency_ms"}]."""
    costs = recorded.costs
    record = {"definition": DEFINITION, "machine": recorded.machine,
              "candidates": {c.trial: costs[c.trial].summary() for c in cands
                             if c.trial in costs}}
    if members and all(t in costs for t in members):
        record["ensemble"] = total_cost(costs[t] for t in members)
    if best_single in costs:
        record["best_single"] = {"trial": best_single, **costs[best_single].summary()}
    if path and all(t in costs for t in path):
        record["path"] = [{"size": j, **total_cost(costs[t] for t in dict.fromkeys(path[:j]))}
                          for j in range(1, len(path) + 1)]
    return record
