"""Inference cost of candidates and ensembles: FLOPs, parameters and latency (paper Figure 2).

The sub-modules, one concern each:

* `records` — TensorFlow-free: the `Cost` record of a candidate, RUN/cost.json (written by
  the cost pass, and by `export` for a member it counted: `add_run_costs`), the cost
  cache (keyed by module fingerprint + resolution + classes), `Limits` (the inference budget
  of greedy selection) and `total_cost` of an ensemble; `hubensemble ensemble` and the
  report read costs through it without importing TensorFlow;
* `recordcheck` — TensorFlow-free: what is wrong with a damaged RUN/cost.json, in words
  (the field, what it holds, what it should), and moving such a file aside for `cost`;
* `sharing` — TensorFlow-free: which candidates and members share a frozen backbone call
  (probes of one module at one size) and what a member costs when it does (its head): the
  one rule of the budget, ensemble.json's totals and the export's cost record;
* `budget` — TensorFlow-free: greedy selection's eligibility under a budget, the cost table
  and ensemble.json's cost record;
* `graph` — counting on TensorFlow: multiply-accumulates from a frozen traced graph,
  parameters, latency (median of repeats at batch 1 and 64);
* `stage` — `run_cost(run_dir)`: the cost of every usable candidate of a run, cached, written
  to RUN/cost.json (the `hubensemble cost` command; `fit` and `export` run it too).

Only the TensorFlow-free names are importable from ``hubensemble.cost``; import
`hubensemble.cost.graph` / `hubensemble.cost.stage` for the others.
"""

from hubensemble.cost.records import (BUDGET_OPTIONS, COST_FORMAT, COST_FORMAT_VERSION,
                                      DEFINITION, LATENCY_BATCHES, Cost, Limits,
                                      add_run_costs, cache_get,
                                      cache_key, cache_put, cost_command, cost_path,
                                      default_cache_dir, figure, machine_info,
                                      read_run_costs, total_cost, write_run_costs)

__all__ = [
    "BUDGET_OPTIONS", "COST_FORMAT", "COST_FORMAT_VERSION", "DEFINITION", "LATENCY_BATCHES",
    "Cost", "Limits", "add_run_costs",
    "cache_get", "cache_key", "cache_put", "cost_command", "cost_path",
    "default_cache_dir", "figure", "machine_info", "read_run_costs", "total_cost",
    "write_run_costs",
]
