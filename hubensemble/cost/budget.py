"""Greedy selection under an inference budget, without TensorFlow: eligibility, the candidates'
cost table, and ensemble.json's cost record. Probes of one module that the export runs on one
frozen backbone call count it once (`cost.sharing`), in the budget and the record alike.

`hubensemble.ensemble.greedy_select` asks `eligibility` which candidates may be added at each
step; `select_ensemble` builds the cost table from RUN/cost.json with `cost_table` (the one
place that refuses a budget whose costs are missing, naming `hubensemble cost`) and records
the costs with `cost_record`. Candidates are duck-typed: anything with a `.trial` id.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Sequence

import numpy as np

from hubensemble.cost.records import (DEFINITION, Limits, RunCosts, cost_path,
                                      machine_info, total_cost)
from hubensemble.cost.sharing import counted_costs, head_cost, key_groups
from hubensemble.errors import RunError
from hubensemble.lockwords import option_word, run_words
from hubensemble.text import counted, escaped

log = logging.getLogger(__name__)


def eligibility(costs, limits: Limits | None, m: int) -> Callable | None:
    """None without active limits, else ``fits(picks) -> bool [m]``: which of the m
    candidates keep the ensemble of `picks` (a list of candidate indices, repeats allowed)
    within `limits` when added. A new member adds its costs["gflops"][i] and
    costs["latency_ms"][i] and one member; a re-pick adds nothing; NaN (unknown cost) never
    fits. Raises ValueError when a limit's cost table is missing or not of length m.

    Shared backbones (`cost.sharing`): with costs["share"] (int [m], the group of candidates
    that run one frozen backbone, -1 for none) and costs["head_gflops"] /
    costs["head_latency_ms"] (float [m], what a candidate costs when its backbone is already
    run: its head), a candidate whose group already has a member adds only its head, as the
    export runs it. The ensemble's cost is a function of its set of members: every member's
    head, plus per group the largest backbone (whole cost - head) among its members."""
    if limits is None or not limits.active:
        return None
    tables, heads = {}, {}
    for name in limits.needs_costs:
        table = None if costs is None else costs.get(name)
        if table is None:
            raise ValueError(f"the {name} limit needs costs[{name!r}] per candidate")
        table = np.asarray(table, np.float64)
        if table.shape != (m,):
            raise ValueError(f"costs[{name!r}] must have one value per candidate ({m}), got "
                             f"shape {table.shape}")
        tables[name] = table
        head = costs.get(f"head_{name}")
        head = table if head is None else np.asarray(head, np.float64)
        if head.shape != (m,):
            raise ValueError(f"costs['head_{name}'] must have one value per candidate ({m}), "
                             f"got shape {head.shape}")
        heads[name] = np.where(np.isnan(head), table, head)  # unknown head: the whole cost
    share = np.full(m, -1) if costs is None or costs.get("share") is None else \
        np.asarray(costs["share"], np.int64)
    if share.shape != (m,):
        raise ValueError(f"costs['share'] must have one group per candidate ({m}), got shape "
                         f"{share.shape}")

    def fits(picks):
        distinct = np.zeros(m, dtype=bool)
        distinct[sorted(set(int(i) for i in picks))] = True
        new = ~distinct
        ok = np.ones(m, dtype=bool)
        for name, table in tables.items():
            head = heads[name]
            backbone = table - head
            # The backbone each candidate's group already runs (0: none, or no group).
            running = np.zeros(m)
            alone = 0.0
            for j in np.flatnonzero(distinct):
                if share[j] < 0:
                    alone += backbone[j]
                else:
                    same = share == share[j]
                    running[same] = np.maximum(running[same], backbone[j])
            groups = {int(share[j]): running[j] for j in np.flatnonzero(distinct)
                      if share[j] >= 0}
            spent = float(head[distinct].sum()) + alone + float(sum(groups.values()))
            adds = head + np.maximum(backbone - np.where(share >= 0, running, 0.0), 0.0)
            total = spent + np.where(new, adds, 0.0)
            with np.errstate(invalid="ignore"):
                ok &= total <= getattr(limits, name) * (1 + 1e-9)  # NaN -> False
        if limits.members is not None:
            ok &= (int(distinct.sum()) + new) <= limits.members
        return ok

    return fits


def cost_table(run_dir, cands: Sequence, recorded: RunCosts, limits: Limits,
               keys: Sequence[str | None] | None = None) -> tuple[dict | None, list[str]]:
    """({"gflops": float64 [M], "latency_ms": float64 [M], "share": int [M], "head_gflops",
    "head_latency_ms": float64 [M]} for greedy_select, NaN for the candidates whose module
    could not be costed (or, under a GFLOPs limit, whose GFLOPs were not counted); those
    trials), or (None, []) when the limits need no measured cost
    (only --max-members). `keys` (`sharing.candidate_key` per candidate; None: no sharing)
    make the "share" groups (`sharing.key_groups`; -1 for a candidate alone in its group);
    a candidate's head costs are `sharing.head_cost`'s, NaN when neither cost.json nor its
    weights file gives a head size (`records.read_run_costs`; then it counts whole, with a
    warning naming `hubensemble cost` when it could share).

    Raises RunError naming `hubensemble cost --run RUN` when RUN/cost.json is missing, or
    has never costed some candidate, or costed it before it was tuned again at another size
    (`RunCosts.stale`, its reason named), or has no latency for it when the latency is
    limited.
    A measured latency from another machine is used with a warning.
    """
    if not limits.needs_costs:
        return None, []
    path, command = cost_path(run_dir), run_words("cost", run_dir)
    costs = recorded.costs
    if not costs and not recorded.failed and not recorded.stale:
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
        named = "; ".join(f"{trials}: {why}" if why else trials
                          for why, trials in _by_reason(what, recorded.stale))
        raise RunError(f"{limits.flags()} needs the inference cost of every candidate; "
                       f"{counted(len(what), 'candidate')} "
                       f"{'has' if len(what) == 1 else 'have'} {kind} in {path} "
                       f"({named}): {command} again")
    for why, trials in _by_reason(not_costed, recorded.failed, shown=len(not_costed)):
        log.warning("%s left out of the budgeted selection: %s module could not be costed "
                    "(%s)", f"candidate {trials} is" if "," not in trials else
                    f"candidates {trials} are", "its" if "," not in trials else "their", why)
    # Costed, but without GFLOPs (multiply-accumulates not counted): NaN below, which never
    # fits a GFLOPs limit; said with the reason, as a module that could not be costed is.
    uncounted = {c.trial: costs[c.trial].not_counted() for c in cands
                 if limits.gflops is not None and c.trial in costs
                 and costs[c.trial].gflops is None}
    for why, trials in _by_reason(list(uncounted), uncounted, shown=len(uncounted)):
        log.warning("%s left out of the budgeted selection: %s GFLOPs were not counted (%s)",
                    f"candidate {trials} is" if "," not in trials else
                    f"candidates {trials} are", "its" if "," not in trials else "their", why)
    not_costed += list(uncounted)
    if needs_latency and recorded.machine.get("id") not in (None, machine_info()["id"]):
        log.warning("the latencies in %s were measured on another machine (%s, %s cores); "
                    "%s here to measure them on this one", escaped(path),
                    recorded.machine.get("cpu"), recorded.machine.get("cores"), command)
    nan = float("nan")
    table = {"gflops": np.array([costs[c.trial].gflops if c.trial in costs else nan
                                 for c in cands], np.float64),
             "latency_ms": np.array([(costs[c.trial].latency(1) if c.trial in costs else nan)
                                     if needs_latency else nan for c in cands], np.float64)}
    share = np.full(len(cands), -1, np.int64)
    for g, group in enumerate(key_groups(keys or [None] * len(cands))):
        if len(group) > 1:
            share[list(group)] = g
    heads = [head_cost(costs[c.trial]) if c.trial in costs else None for c in cands]
    table["share"] = share
    table["head_gflops"] = np.array([h.gflops if h else nan for h in heads], np.float64)
    table["head_latency_ms"] = np.array([(h.latency(1) if h else nan) if needs_latency
                                         else nan for h in heads], np.float64)
    unknown = [c.trial for c, h, g in zip(cands, heads, share) if g >= 0 and h is None
               and c.trial in costs]
    if unknown:
        log.warning("%s has no head sizes for %s (written by an older hubensemble; their "
                    "sweep kept no weights file to read them from): the budget counts their "
                    "shared backbone once per member; %s to count it once", escaped(path),
                    ", ".join(unknown[:4]) + (", …" if len(unknown) > 4 else ""), command)
    return table, not_costed


def fits_alone(m: int, table: dict | None, limits: Limits) -> list[int]:
    """Indices (of m candidates) that fit `limits` as a one-member ensemble."""
    fits = eligibility(table, limits, m)
    return list(range(m)) if fits is None else [int(i) for i in np.flatnonzero(fits([]))]


#: The measured dimensions of a Limits: (name, unit, a Cost's value of it).
_MEASURES = (("gflops", "GFLOPs", lambda cost: cost.gflops),
             ("latency_ms", "ms at batch 1", lambda cost: cost.latency(1)))


#: `cheapest`'s words when no candidate has a cost (every module failed in cost): no limit
#: raised makes room then.
NO_COST = "no candidate has a cost"

#: `cheapest`'s first words when candidates have costs but none has its GFLOPs counted (their
#: multiply-accumulates, `Cost.macs_not_counted`): a GFLOPs limit cannot admit any, whatever
#: its value, while their latency is measured (`not_counted_way`). They said NO_COST.
NOT_COUNTED = "no candidate's GFLOPs were counted"


def _uncounted(cands: Sequence, costs: Mapping, limits: Limits) -> dict[str, str]:
    """{trial: why its GFLOPs were not counted} of `cands` when `limits` holds a GFLOPs limit
    and some candidate has a cost but none its GFLOPs; {} otherwise."""
    costed = [c.trial for c in cands if c.trial in costs]
    if limits.gflops is None or not costed or any(costs[t].gflops is not None for t in costed):
        return {}
    return {t: costs[t].not_counted() for t in costed}


def cheapest(cands: Sequence, costs: dict, limits: Limits) -> str:
    """Why no candidate fits `limits` alone, for an error message: per limited measure whose
    lowest value is over its limit, "the cheapest candidate in UNIT, T, needs V UNIT (limit
    L)"; when each measure alone has a candidate within it, the lowest of each, which no one
    candidate reaches together. Under a GFLOPs limit of candidates none of which has its
    GFLOPs counted: "NOT_COUNTED (T0, T1: WHY), so no GFLOPs limit can admit one; their
    latency is measured", then any latency over its limit (`not_counted_way` says the way
    on); NO_COST when no candidate has a cost. `costs`: {trial: Cost}."""
    uncounted = _uncounted(cands, costs, limits)
    lowest = {}
    for name, unit, value in _MEASURES:
        known = [(value(costs[c.trial]), c.trial) for c in cands if c.trial in costs]
        known = [(v, t) for v, t in known if v is not None]
        if getattr(limits, name) is not None and known:
            lowest[name] = (unit, getattr(limits, name), *min(known))
    if not lowest and not uncounted:
        return NO_COST
    over = [f"the cheapest candidate in {unit}, {trial}, needs {v:.4g} {unit} (limit {limit:g})"
            for unit, limit, v, trial in lowest.values() if v > limit * (1 + 1e-9)]
    if uncounted:
        named = "; ".join(f"{trials}: {why}" for why, trials in
                          _by_reason(list(uncounted), uncounted, shown=len(uncounted)))
        return "; ".join([f"{NOT_COUNTED} ({named}), so no GFLOPs limit can admit one; their "
                          "latency is measured"] + over)
    if over:
        return "; ".join(over)
    return "no one candidate is within every limit: " + "; ".join(
        f"the lowest {unit} is {trial}'s {v:.4g} (limit {limit:g})"
        for unit, limit, v, trial in lowest.values())


def least_latency(cands: Sequence, costs: Mapping) -> tuple[float, str] | None:
    """(ms at batch 1, trial) of the candidate of `cands` (each with a `.trial`; `costs`:
    {trial: Cost}) lowest in measured latency, the first trial on a tie; None when none has
    a latency."""
    known = [(costs[c.trial].latency(1), c.trial) for c in cands if c.trial in costs]
    known = [(v, t) for v, t in known if v is not None]
    return min(known) if known else None


def not_counted_way(cands: Sequence, costs: Mapping, limits: Limits, cost_words: str) -> str:
    """The way on from `cheapest`'s NOT_COUNTED refusal, in the caller's words
    (`option_word`): the latency limit their measured latency can take in place of the
    GFLOPs limit, with the value that admits the least (`least_latency`, rounded up by
    `raise_words`) when the latency is not limited or limited below it ("pass
    --max-latency-ms 0.1719 or more (t0's, the least that admits a candidate) in place of
    --max-gflops"), else "drop --max-gflops: --max-latency-ms 5 alone admits t0"; then
    "or, once their GFLOPs can be counted (their reason says how), COST_WORDS again"
    (`cost_words`: `run_words("cost", run)`, which counts them again). Raising the GFLOPs
    limit, or running cost as it is, cannot help: the ensemble said to run cost."""
    flag = option_word("--max-gflops", "max_gflops")
    lowest = least_latency(cands, costs)
    if lowest is None:  # nothing measured either: no budget but the number of members
        instead = option_word("drop --max-gflops", "leave max_gflops out")
    elif limits.latency_ms is not None and lowest[0] <= limits.latency_ms * (1 + 1e-9):
        kept = option_word(f"--max-latency-ms {limits.latency_ms:g}",
                           f"max_latency_ms={limits.latency_ms:g}")
        instead = f"drop {flag}: {kept} alone admits {lowest[1]}"
    else:
        instead = raise_words({"latency_ms": lowest[0]}, f"{lowest[1]}'s, the least that "
                              "admits a candidate", drop=False) + f" in place of {flag}"
    return (f"{instead}; or, once their GFLOPs can be counted (their reason says how), "
            f"{cost_words} again")


#: The measured limits as options: (Limits field, flag, Python keyword), `raise_words`'.
LIMIT_OPTIONS = (("gflops", "--max-gflops", "max_gflops"),
                 ("latency_ms", "--max-latency-ms", "max_latency_ms"))


def rounded_up(value: float) -> str:
    """`value` (> 0) to 4 significant digits, rounded up, so that the figure said passes the
    limit it names (0.0123456 -> "0.01235"; "0.01235" read back is >= value); a value that
    is not finite and > 0 as `:g` shows it."""
    import math

    if not value > 0 or not math.isfinite(value):
        return f"{value:g}"
    step = 10.0 ** (math.floor(math.log10(value)) - 3)
    up = math.ceil(value / step - 1e-9) * step
    text = f"{up:.4g}"
    return text if float(text) >= value else f"{value:.6g}"


def least_raise(cands: Sequence, costs: Mapping, limits: Limits, *,
                whole: bool = False) -> tuple[str, dict] | None:
    """(trial, {Limits field: the value it needs}) of the candidate (of `cands`, each with a
    `.trial`; `costs`: {trial: Cost}) that passes alone once its limits are raised to those
    values: the one lowest in the first limited measure (GFLOPs, else ms at batch 1), the
    fields it is over (limit x (1 + 1e-9), `eligibility`'s tolerance) and their values. None
    when no measure is limited, none of the candidates has every limited figure, or one
    already passes (nothing to raise: any candidate, not only the lowest in the first
    measure); with `whole`, None also when any candidate lacks a limited figure (whether
    it passes is not known: fit's check before TensorFlow leaves it to the stage)."""
    measures = [(name, value) for name, _, value in _MEASURES
                if getattr(limits, name) is not None]
    table = {}
    for c in cands:
        cost = costs.get(c.trial)
        row = {name: None if cost is None else value(cost) for name, value in measures}
        if measures and all(v is not None for v in row.values()):
            table[c.trial] = row
        elif whole:
            return None
    over = {t: {name: v for name, v in row.items()
                if v > getattr(limits, name) * (1 + 1e-9)} for t, row in table.items()}
    if not table or not all(over.values()):
        return None
    first = measures[0][0]
    trial = min(table, key=lambda t: (table[t][first], t))
    return trial, over[trial]


def raise_words(needs: Mapping[str, float], whose: str, *, drop: bool = True) -> str:
    """The way on from a refused inference budget, in the caller's words (`option_word`):
    "pass --max-gflops 0.01235 or more (WHOSE), or drop the flag", each limit of `needs`
    ({Limits field ("gflops", "latency_ms"): the value that passes}) named with its value
    rounded up (`rounded_up`, so it passes), "and" between two ("… or drop the flags");
    `drop` False leaves the "or drop" out. `whose` says whose figure it is ("t3's, the least
    that admits a candidate"). Several refusals said only "raise a limit" / "raise the
    limit", though --max-gflops and --max-latency-ms both apply, without a value."""
    said = [option_word(f"{flag} {rounded_up(needs[name])}",
                        f"{keyword}={rounded_up(needs[name])}")
            for name, flag, keyword in LIMIT_OPTIONS if name in needs]
    if not drop:
        return f"pass {' and '.join(said)} or more ({whose})"
    one = len(said) == 1
    off = option_word("drop the flag" if one else "drop the flags",
                      "leave the limit out" if one else "leave the limits out")
    return f"pass {' and '.join(said)} or more ({whose}), or {off}"


def shared_total(costs: dict, trials: Sequence[str], keys: Mapping | None = None) -> dict:
    """`total_cost` of the ensemble of `trials` (distinct, in order; each in `costs`
    {trial: Cost}), a shared backbone counted once (`sharing.counted_costs` over the groups
    of their `keys` {trial: sharing.candidate_key}; none given: no sharing)."""
    trials = list(dict.fromkeys(trials))
    groups = key_groups([(keys or {}).get(t) for t in trials])
    return total_cost(counted_costs([costs[t] for t in trials], groups))


def cost_record(cands: Sequence, recorded: RunCosts, members: Sequence[str],
                path: Sequence[str], best_single: str, keys: Mapping | None = None) -> dict:
    """ensemble.json's "cost" record: the definition, the machine, every candidate's cost
    summary, and, when all of theirs are known, the ensemble's cost (of `members`), the best
    single candidate's, and the cost of every prefix of the greedy `path` (trials in pick
    order): [{"size": j, "members", "flops", "gflops", "params", "latency_ms"}]. Totals are
    `shared_total`'s: members that share a frozen backbone (`keys`) count it once."""
    costs = recorded.costs
    record = {"definition": DEFINITION, "machine": recorded.machine,
              "candidates": {c.trial: costs[c.trial].summary() for c in cands
                             if c.trial in costs}}
    if members and all(t in costs for t in members):
        record["ensemble"] = shared_total(costs, members, keys)
    if best_single in costs:
        record["best_single"] = {"trial": best_single, **costs[best_single].summary()}
    if path and all(t in costs for t in path):
        record["path"] = [{"size": j, **shared_total(costs, path[:j], keys)}
                          for j in range(1, len(path) + 1)]
    return record


def no_module_fits(gflops: Mapping[str, tuple[float, int]],
                   max_gflops: float | None) -> str | None:
    """Why no candidate of any of the modules a sweep will tune can fit `max_gflops`, or None.

    `gflops`: {module: (GFLOPs per image of the module with its new head at its serving
    resolution, that resolution in pixels)}, `module_cost`'s count: the least any one
    candidate of that module costs alone (a probe sharing its backbone still counts it
    once), so when every module is over the limit the ensemble's greedy selection has no
    eligible candidate, and a sweep run first is work thrown away (`fit --max-gflops 1e-7`
    was refused only after the whole tune). None when a module fits, when there is no limit
    or no module costed (a module that cannot be costed is left to the ensemble's check).
    The comparison has the ensemble's tolerance (limit x (1 + 1e-9), `eligibility`)."""
    if max_gflops is None or not gflops:
        return None
    module, (cheapest, size) = min(gflops.items(), key=lambda item: (item[1][0], item[0]))
    if cheapest <= max_gflops * (1 + 1e-9):
        return None
    flag = option_word(f"--max-gflops {max_gflops:g}", f"max_gflops={max_gflops:g}")
    which = ("the one module to tune" if len(gflops) == 1 else
             f"the cheapest of the {counted(len(gflops), 'module')} to tune")
    way = raise_words({"gflops": cheapest}, f"{module}'s", drop=False)
    return (f"no module fits {flag}: {which}, {module}, needs {cheapest:.4g} GFLOPs per image "
            f"at {size} px with its head, and no candidate of it costs less; {way}, "
            f"{option_word('drop the flag', 'leave the limit out')} or rank other modules, "
            "before the sweep is run")


def _by_reason(trials, reasons, shown: int = 4) -> list[tuple[str | None, str]]:
    """[(reason or None, "t0, t1, …")] of `trials` grouped by their reason in `reasons`
    ({trial: why}), in the order each reason first comes, each group's first `shown` trials
    named and "…" for the rest: a refusal said one long reason once per candidate (4
    times for the 4 candidates of one module, a new-user check)."""
    groups: dict = {}
    for trial in trials:
        groups.setdefault(reasons.get(trial), []).append(trial)
    return [(why, ", ".join(ts[:shown]) + (", …" if len(ts) > shown else ""))
            for why, ts in groups.items()]


def named_by_reason(trials, reasons, *, shown: int = 4, most: int | None = None) -> str:
    """"t0, t1: WHY; t2: OTHER" of `trials` by their reason in `reasons` ({trial: why}),
    each reason once (`_by_reason`: its first `shown` trials named, "…" for the rest); with
    `most`, only the first `most` reasons, then "; …". The report named a reason once per
    trial ("t0: cannot load; t1: cannot load; …")."""
    groups = [f"{ts}: {why}" if why else ts for why, ts in _by_reason(trials, reasons, shown)]
    cut = groups if most is None else groups[:most]
    return "; ".join(cut) + ("; …" if len(cut) < len(groups) else "")
