"""What the report says of a run's inference budget that no candidate meets."""

from __future__ import annotations

from hubensemble.errors import RunError


def budget_unmet(files) -> str | None:
    """Why no usable candidate of `files` (a `runfiles.RunFiles`) fits, alone, the
    --max-gflops / --max-latency-ms that the run's ensemble options record (run.json
    "ensemble" or "fit" -> "options", the newer first: `budgetrefusal.newer_first`), by
    RUN/cost.json (`cost.budget.cheapest`'s words, the ensemble's refusal's); None when
    one does, no such limit is recorded, or a cost is missing (another refusal then).
    A fit refused for its budget left a report that said to run the ensemble command
    with that budget, which is refused the same way."""
    from hubensemble.budgetrefusal import newer_first
    from hubensemble.cost import Limits, read_run_costs
    from hubensemble.cost.budget import cheapest

    meta = files.meta if isinstance(files.meta, dict) else {}
    recorded = next((opts for opts in ((meta.get(k) or {}).get("options") if isinstance(
        meta.get(k), dict) else None for k in newer_first(meta)) if isinstance(opts, dict)),
        {})
    try:
        limits = Limits(gflops=recorded.get("max_gflops"),
                        latency_ms=recorded.get("max_latency_ms"))
        costs = read_run_costs(files.path).costs
    except (ValueError, TypeError, RunError, OSError):
        return None
    if (limits.gflops is None and limits.latency_ms is None) or not files.candidates \
            or any(c.trial not in costs for c in files.candidates):
        return None

    def fits(cost) -> bool:
        latency = cost.latency(1)
        return ((limits.gflops is None or cost.gflops <= limits.gflops * (1 + 1e-9))
                and (limits.latency_ms is None or latency is None
                     or latency <= limits.latency_ms * (1 + 1e-9)))

    if any(fits(costs[c.trial]) for c in files.candidates):
        return None
    return cheapest(files.candidates, costs, limits)
