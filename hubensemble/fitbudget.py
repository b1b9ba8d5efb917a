"""A fit's inference budget refused before TensorFlow (`check_fit_budget`): when fit would
reuse its last sweep's candidates, RUN/cost.json alone says whether any of them fits the
budget, which the ensemble stage refused only after TensorFlow's import (6-12 s, ~700 MB).
Files only (json, numpy): TensorFlow-free."""

from __future__ import annotations

import os


def check_fit_budget(run_dir, options, *, restart: bool) -> None:
    """RunError, in the ensemble stage's words ("no candidate fits the inference budget
    (--max-gflops 1e-09): the cheapest candidate in GFLOPs, T, needs V GFLOPs (limit
    1e-09)", `cost.budget.cheapest`) and with a way on that names each flag and the value
    that passes ("pass --max-gflops 0.0123 or more (T's), or drop the flag": `cost.budget.
    least_raise`/`raise_words`, "drop the flags" when it names two), when a fit with
    FitOptions `options` on run `run_dir` would reuse its last fit's candidates (not
    `restart`; run.json's last fit recorded the same catalogue, data and rank/tune options:
    the same tune key, `stagerecords.stage_keys`; its tune and cost stages done) and no
    candidate RUN/cost.json holds fits `options`' --max-gflops / --max-latency-ms alone. The
    refusal is recorded as the stage records it (`budgetrefusal.record_refusal`). Nothing
    otherwise (no limit, no such record, a candidate without a cost: the stage decides).
    `fit --max-gflops 1e-9` after a finished fit imported TensorFlow first (12 s) and said
    only "raise a limit"."""
    from hubensemble import candidate
    from hubensemble.cost.budget import LIMIT_OPTIONS, cheapest, least_raise, raise_words
    from hubensemble.cost.records import Limits, read_run_costs
    from hubensemble.errors import HubensembleError, RunError
    from hubensemble.fittedoptions import as_fitted
    from hubensemble.resume import fit_record
    from hubensemble.rundir import Run
    from hubensemble.stagerecords import same_key, stage_keys, stage_records

    values = {field: getattr(options, name, None) for field, _, name in LIMIT_OPTIONS}
    if restart or run_dir is None or all(v is None for v in values.values()):
        return
    run = Run(os.fspath(run_dir))
    try:
        if not run.meta_path.is_file():
            return
        meta = run.meta()
        previous = fit_record(run, meta)
        options = as_fitted(options, meta)  # budget=8 where it fitted None resolved to 8
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
    least = least_raise(cands, costs, limits, whole=True)
    if least is None:
        return  # one passes, or one has no cost: the stage decides
    from hubensemble.budgetrefusal import record_refusal

    why = cheapest(cands, costs, limits)
    record_refusal(run.path, limits, why)
    raise RunError(f"no candidate fits the inference budget ({limits.flags()}): {why}; "
                   + raise_words(least[1], f"{least[0]}'s, the least that admits a candidate"))
