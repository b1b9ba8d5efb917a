"""What the report says of a run's inference budget that no candidate meets: the ensemble
that would be refused (`budget_unmet`), and one refused since the ensemble it shows
(`refusal_note`, `refusal_pointer`)."""

from __future__ import annotations

import re

from hubensemble.errors import RunError
from hubensemble.report.render import Code, Inline

#: The limit flags of a command line (`budget_unmet`'s way on drops them).
LIMIT_FLAGS = r" --max-(gflops|latency-ms) \S+"


def raised(command: str, needs) -> str:
    """`command` (a command line, as `RunFiles.cmd` gives it) with each limit flag of `needs`
    ({Limits field: the value that passes}, `cost.budget.least_raise`) set to that value
    rounded up (`cost.budget.rounded_up`): its value replaced, else the flag added last."""
    from hubensemble.cost.budget import LIMIT_OPTIONS, rounded_up

    for name, flag, _ in LIMIT_OPTIONS:
        if name in needs:
            said = f"{flag} {rounded_up(needs[name])}"
            found = re.search(rf" {re.escape(flag)} \S+", command)
            command = (command[:found.start()] + " " + said + command[found.end():] if found
                       else f"{command} {said}")
    return command


def least_raise(files, limits) -> tuple[str, dict] | None:
    """`cost.budget.least_raise` of `files`' (a `runfiles.RunFiles`) usable candidates by
    RUN/cost.json under `limits` (a `cost.Limits`): the candidate that passes alone once its
    limits are raised, and the values; None when not known (no cost.json, an edited one)."""
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.budget import least_raise as least

    try:
        return least(files.candidates or [], read_run_costs(files.path).costs, limits)
    except (ValueError, TypeError, RunError, OSError):
        return None


def raised_way(files, limits, command: str) -> Inline | None:
    """"run `COMMAND --max-gflops 0.5124` (t1's figure, the least that admits a candidate)":
    `command` with `least_raise`'s values (`raised`), or None when they are not known. The
    report said "raise the limit", of two limits and no value."""
    least = least_raise(files, limits)
    if least is None:
        return None
    return Inline("run ", Code(raised(command, least[1])),
                  f" ({least[0]}'s figures, the least that admit a candidate)"
                  if len(least[1]) > 1 else
                  f" ({least[0]}'s figure, the least that admits a candidate)")


def not_counted_way(files, limits, command: str) -> Inline:
    """The way on from a budget refused as no candidate's GFLOPs were counted
    (`cost.budget.NOT_COUNTED`; a GFLOPs limit cannot admit any, whatever its value): "run
    `COMMAND` without --max-gflops, with --max-latency-ms 0.1875` (t1's latency, the least
    that admits a candidate; their latency is measured), or, once their GFLOPs can be counted
    (the reason above says how), run `hubensemble cost --run RUN`, then `COMMAND`": `command`
    (a command line, as `RunFiles.cmd` gives it) without its --max-gflops, and its
    --max-latency-ms set to the least latency of `files`' candidates by RUN/cost.json
    (`cost.budget.least_latency`) when `limits` (a `cost.Limits`) has none or a lower one.
    The report said "run `hubensemble cost`", which counts them the same way again."""
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.budget import least_latency

    try:
        lowest = least_latency(files.candidates or [], read_run_costs(files.path).costs)
    except (ValueError, TypeError, RunError, OSError):
        lowest = None
    command = raised(command, {name: getattr(limits, name) for name in ("gflops", "latency_ms")
                               if getattr(limits, name) is not None})  # as refused
    first = []
    if lowest is not None:
        without = re.sub(r" --max-gflops \S+", "", command)
        fits = limits.latency_ms is not None and lowest[0] <= limits.latency_ms * (1 + 1e-9)
        first = ["run ", Code(without if fits else raised(without, {"latency_ms": lowest[0]})),
                 f" (its latency limit alone admits {lowest[1]}; their latency is measured)"
                 if fits else f" ({lowest[1]}'s latency, the least that admits a candidate; "
                 "their latency is measured)", ", or, "]
    return Inline(*first, "once their GFLOPs can be counted (the reason above says how), run ",
                  Code(files.cmd("cost")), ", then ", Code(command))


def budget_unmet(files) -> tuple[str, object] | None:
    """(why, the limits: a `cost.Limits`) when no usable candidate of `files` (a
    `runfiles.RunFiles`) fits, alone, the --max-gflops / --max-latency-ms that the run's
    ensemble options record (run.json
    "ensemble" or "fit" -> "options", the newer first: `budgetrefusal.newer_first`), by
    RUN/cost.json (why: `cost.budget.cheapest`'s words, the ensemble's refusal's), or those of
    the refusal run.json records (`budgetrefusal.refusal`); None when
    one does, no such limit is recorded, or a cost is missing (another refusal then).
    A fit refused for its budget left a report that said to run the ensemble command
    with that budget, which is refused the same way."""
    from hubensemble.budgetrefusal import newer_first
    from hubensemble.cost import Limits, read_run_costs
    from hubensemble.cost.budget import cheapest

    from hubensemble.budgetrefusal import refusal

    meta = files.meta if isinstance(files.meta, dict) else {}
    refused = refusal(meta)  # a standalone ensemble's limits are in neither options record
    recorded = refused["limits"] if refused is not None else next(
        (opts for opts in ((meta.get(k) or {}).get("options") if isinstance(meta.get(k), dict)
                           else None for k in newer_first(meta)) if isinstance(opts, dict)), {})
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
        return ((limits.gflops is None or (cost.gflops is not None  # not counted: no fit
                                           and cost.gflops <= limits.gflops * (1 + 1e-9)))
                and (limits.latency_ms is None or latency is None
                     or latency <= limits.latency_ms * (1 + 1e-9)))

    if any(fits(costs[c.trial]) for c in files.candidates):
        return None
    return cheapest(files.candidates, costs, limits), limits


def _refused(files) -> tuple[dict, str, Inline] | None:
    """(the refusal run.json records, its limits as flags, who: "a later `hubensemble fit`")
    when one is recorded since the ensemble `files` shows (ensemble.json read); else None."""
    from hubensemble.budgetrefusal import refusal
    from hubensemble.cost import Limits
    from hubensemble.lockwords import command_line

    refused = refusal(files.meta) if files.ensemble is not None else None
    if refused is None:
        return None
    try:
        with command_line():  # the report's words are the command line's
            flags = Limits(gflops=refused["limits"].get("max_gflops"),
                           latency_ms=refused["limits"].get("max_latency_ms"),
                           members=refused["limits"].get("max_members")).flags()
    except (ValueError, TypeError):  # edited by hand: the values as they are
        flags = ", ".join(f"{k} = {v}" for k, v in refused["limits"].items() if v is not None)
    command = refused.get("command")
    who = (Inline("a later ", Code(f"hubensemble {command}")) if command in ("fit", "ensemble")
           else Inline("a later call"))
    return refused, flags, who


def refusal_pointer(files, section: str) -> Inline | None:
    """The Overview's words on an ensemble refused for its budget since the one shown
    ("; not of the run's newest options: a later `hubensemble fit` with --max-latency-ms
    1e-06 was refused for its inference budget (see "Ensemble size")": `section`, the one
    `refusal_note` leads), or None."""
    found = _refused(files)
    if found is None:
        return None
    _, flags, who = found
    return Inline("; not of the run's newest options: ", who, f" with {flags} was refused for "
                  f"its inference budget (see \"{section}\")")


def _none_costed(files) -> str:
    """"None of the 2 candidates had a cost (t0, t1: WHY)": the count of `files`' usable
    candidates and the reasons RUN/cost.json records for them (`RunCosts.failed`, each
    reason once; "Neither of the 2", "The run's one candidate had no cost"), as the refused
    ensemble warned them; "No candidate had a cost" when cost.json cannot say (it said only
    that, with no count)."""
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.budget import named_by_reason
    from hubensemble.text import counted

    trials = [c.trial for c in files.candidates or []]
    try:
        failed = read_run_costs(files.path).failed
    except (ValueError, TypeError, RunError, OSError):
        failed = {}
    if not trials or not any(t in failed for t in trials):
        return "No candidate had a cost"
    named = named_by_reason([t for t in trials if t in failed], failed)
    if len(trials) == 1:
        return f"The run's one candidate had no cost ({named})"
    return (f"{'Neither' if len(trials) == 2 else 'None'} of the "
            f"{counted(len(trials), 'candidate')} had a cost ({named})")


def refusal_note(files) -> Inline | None:
    """The note, first in "Ensemble size", on an ensemble refused for its inference budget
    since the one `files` shows (`budgetrefusal.refusal`: a fit with a new --max-latency-ms
    no candidate meets, after an earlier ensemble selected; the report showed that one as
    the run's without a word): who was refused, when, for which limits, why
    (`cost.budget.cheapest`'s words, as recorded) and the way on: the refused command with
    the values that pass (`raised_way`, by RUN/cost.json; the fit's command, `RunFiles.cmd`,
    records the refused limit; the ensemble's, the shown ensemble's options with the refused
    limits; "pass a higher" limit when the costs cannot say), or, of a fit, its command without
    the limit, which selects; `hubensemble cost` first when no candidate had a cost; when
    none had its GFLOPs counted, the latency limit that selects (`not_counted_way`). None
    when no refusal is recorded since (or ensemble.json was not read)."""
    from hubensemble.cost import Limits
    from hubensemble.cost.budget import NO_COST, NOT_COUNTED
    from hubensemble.text import shown_time

    found = _refused(files)
    if found is None:
        return None
    refused, flags, who = found
    why = str(refused.get("why") or "no reason recorded")
    try:
        when = f" ({shown_time(refused.get('time'))})" if refused.get("time") else ""
    except (TypeError, ValueError):
        when = ""
    head = Inline("Not the run's newest options: ", who, f"{when} asked for {flags} and was "
                  f"refused, as no candidate fits that inference budget: {why}. The ensemble "
                  "below (and what was exported or evaluated of it) is of the options before "
                  "it. ")
    if refused.get("command") == "fit":
        again = files.cmd("fit")
        bare = re.sub(LIMIT_FLAGS, "", again)
    else:
        bare = re.sub(LIMIT_FLAGS, "", files.cmd("ensemble"))
        again = bare + " " + flags
    try:
        limits = Limits(gflops=refused["limits"].get("max_gflops"),
                        latency_ms=refused["limits"].get("max_latency_ms"))
    except (ValueError, TypeError):  # edited by hand: no value to name
        limits = None
    way = None if limits is None else raised_way(files, limits, again)
    parts = (["To select under a budget, ", way] if way is not None else
             ["To select under a budget, pass a higher ", Code(flags), " in ", Code(again),
              " and run it"])
    if refused.get("command") == "fit" and bare != again:
        parts += ["; ", Code(bare), " selects without one"]
    if why == NO_COST:  # raising a limit cannot help: cost names each module's reason
        parts = [_none_costed(files), ": run ", Code(files.cmd("cost")), " (it names why "
                 "each module has none), then the refused command again, or drop the limit"]
    elif why.startswith(NOT_COUNTED) and limits is not None:  # nor can it: not counted
        parts = ["No GFLOPs limit can admit a candidate whose GFLOPs were not counted: ",
                 not_counted_way(files, limits, again)]
    return Inline(head, *parts, ".")
