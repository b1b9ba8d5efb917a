"""A fit's inference budget refused before TensorFlow (`check_fit_budget`): when fit would
reuse its last sweep's candidates, RUN/cost.json alone says whether any of them fits the
budget, which the ensemble stage refused only after TensorFlow's import (6-12 s, ~700 MB).
Files only (json, numpy): TensorFlow-free."""

from __future__ import annotations

import os

#: The budget options of fit: (Limits field, option name, flag).
_LIMITED = (("gflops", "max_gflops", "--max-gflops"),
            ("latency_ms", "max_latency_ms", "--max-latency-ms"))


def check_fit_budget(run_dir, options, *, restart: bool) -> None:
    """RunError, in the ensemble stage's words ("no candidate fits the inference budget
    (--max-gflops 1e-09): the cheapest candidate in GFLOPs, T, needs V GFLOPs (limit
    1e-09)", `cost.budget.cheapest`) and with a way on that names each flag and the value
    that passes ("pass --max-gflops 0.0123 or more (T's), or drop the flag"), when a fit with
    FitOptions `options` on run `run_dir` would reuse its last fit's candidates (not
    `restart`; run.json's last fit recorded the same catalogue, data and rank/tune options:
    the same tune key, `stagerecords.stage_keys`; its tune and cost stages done) and no
    candidate RUN/cost.json holds fits `options`' --max-gflops / --max-latency-ms alone. The
    refusal is recorded as the stage records it (`budgetrefusal.record_refusal`). Nothing
    otherwise (no limit, no such record, a candidate without a cost: the stage decides).
    `fit --max-gflops 1e-9` after a finished fit imported TensorFlow first (12 s) and said
    only "raise a limit"."""
    from hubensemble import candidate
    from hubensemble.cost.budget import cheapest
    from hubensemble.cost.records import Limits, read_run_costs
    from hubensemble.errors import HubensembleError, RunError
    from hubensemble.resume import fit_record
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import same_key, stage_keys, stage_records

    values = {field: getattr(options, name, None) for field, name, _ in _LIMITED}
    if restart or run_dir is None or all(v is None for v in values.values()):
        return
    run = Run(os.fspath(run_dir))
    try:
        if not run.meta_path.is_file():
            return
        meta = run.meta()
        previous = fit_record(run, meta)
        prints = previous.get("fingerprints") or {}
        recorded = (previous.get("keys") or {}).get("tune")
        if not (recorded and "catalogue" in prints and "data" in prints) or not same_key(
                recorded, stage_keys(prints["catalogue"], prints["data"], options)["tune"]):
            return  # another sweep: its candidates are not known yet
        stages = stage_records(meta, run)
        if not all((stages.get(s) or {}).get("done") is True for s in ("tune", "cost")):
            return
        costs = read_run_costs(run.path, say_outdated=False).costs
        limits = Limits(**values)
    except (HubensembleError, OSError, ValueError, TypeError, AttributeError):
        return  # the stage says why, in its words
    cands = [c for c in candidate.scan(run.candidates)[0] if c.status == "ok" and not c.problems]
    measures = [(field, flag, values[field]) for field, _, flag in _LIMITED
                if values[field] is not None]
    table = {}
    for c in cands:
        cost = costs.get(c.trial)
        row = {field: None if cost is None else (cost.gflops if field == "gflops"
                                                 else cost.latency(1))
               for field, _, _ in measures}
        if any(v is None for v in row.values()):
            return  # a candidate without a cost: the stage decides
        table[c.trial] = row
    if not table or any(all(row[f] <= limit * (1 + 1e-9) for f, _, limit in measures)
                        for row in table.values()):
        return
    from hubensemble.budgetrefusal import record_refusal
    from hubensemble.lockwords import option_word

    why = cheapest(cands, costs, limits)
    record_refusal(run.path, limits, why)
    # The candidate that needs the least raise of the first limit, and each value it needs.
    field0 = measures[0][0]
    trial = min(table, key=lambda t: (table[t][field0], t))
    need = []
    for field, name, flag in _LIMITED:
        limit, value = values[field], table[trial].get(field)
        if limit is not None and value > limit * (1 + 1e-9):
            shown = _rounded_up(value)
            need.append(option_word(f"{flag} {shown}", f"{name}={shown}"))
    flags = " and ".join(need)
    drop = option_word("drop the flag" if len(measures) == 1 else "drop the flags",
                       "leave the limit out" if len(measures) == 1 else "leave the limits out")
    raise RunError(f"no candidate fits the inference budget ({limits.flags()}): {why}; pass "
                   f"{flags} or more ({trial}'s, the least that admits a candidate), or "
                   f"{drop}")


def _rounded_up(value: float) -> str:
    """`value` (> 0) to 4 significant digits, rounded up, so that the figure said passes the
    limit it names (0.0123456 -> "0.01235"; "0.01235" read back is >= value)."""
    import math

    if not value > 0 or not math.isfinite(value):
        return f"{value:g}"
    step = 10.0 ** (math.floor(math.log10(value)) - 3)
    up = math.ceil(value / step - 1e-9) * step
    text = f"{up:.4g}"
    return text if float(text) >= value else f"{value:.6g}"
