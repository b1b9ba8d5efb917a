"""A fit again on its run folder with another --top-k: the ranking is selected again, not
ranked again, and the candidates tuned before that are still in the sweep's plan are kept.

The ranking's scores do not depend on how many modules are kept, and a default or probe
sweep plans each module's trials in rank order (`tune.plans.plan_sweep`: a larger top-k
extends the plan, its first trials unchanged), so `tune` resumes: it skips every trial whose
candidate is complete and checks that each one matches the plan (`tune.pool.check_candidates`
refuses one that does not). A smaller --top-k is refused while candidates of the modules it
drops are in RUN/candidates: the ensemble selects from every candidate there
(`rank.pool.warn_unselected_pool`), so they would still become members.
No TensorFlow at import.
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

from hubensemble.lockwords import on_command_line, option_word
from hubensemble.stagerecords import stage_records
from hubensemble.text import escaped

log = logging.getLogger(__name__)

#: The sweeps whose plan is the ranking's selection (`tune.plans._pool`): the others tune the
#: best generalist or the modules within a threshold, whatever --top-k keeps.
SELECTION_SWEEPS = ("default", "probe")


def top_k_change(run, previous: dict, fingerprints: dict, keys: dict, options, *,
                 progress=False) -> bool | str:
    """For `resume.check_inputs`: when --top-k is the only rank or tune option that changed
    since `run` was fitted (`previous`: run.json's "fit"; the stage keys of `options` with the
    recorded top_k are the recorded ones), selects the run's ranking again with the new
    top_k (ranking.json, ranking.csv and run.json's "rank" rewritten; no module is embedded or
    scored) and records the rank stage done under its new key (`keys`), so fit reuses it and
    `tune` adds only the trials of the modules new to the selection (the stages after tune
    are reused while what they read is unchanged: `stagerecords.read_keys`); says so on
    stderr with `progress` and in the log: True then. False when this is not such a change (another
    option, the catalogue or the data changed too; a ranking that is missing, damaged, a
    shard's or not the recorded top-k selection): the caller refuses as before. The
    refusal's reason (str) when candidates of modules the new selection drops are in
    RUN/candidates (named, with the least work that goes on)."""
    from hubensemble.stagerecords import file_digest, mark, same_keys, stage_keys
    from hubensemble.terminal import say

    was = (previous.get("options") or {}).get("top_k")
    if not isinstance(was, int) or was == options.top_k:
        return False
    before = dataclasses.replace(options, top_k=was)
    if not same_keys(previous.get("keys"),
                     stage_keys(fingerprints["catalogue"], fingerprints["data"], before)):
        return False  # another option (or the catalogue or data) changed too
    found = _reselection(run, was, options)
    if found is None:
        return False
    ranking, rule, selected, change = found
    dropped = _dropped_candidates(run, selected, options)
    if dropped:
        return _refusal(run, change, dropped)
    new = [m for m in selected if m not in ranking.selected]
    ranking.selection, ranking.selected = rule, selected
    ranking.write(run.path)

    def rank_section(meta):
        meta["rank"] = {**(meta.get("rank") or {}), "selection": rule,
                        "selected": list(selected)}

    run.modify(rank_section)
    seconds = (stage_records(run.meta(), run).get("rank") or {}).get("seconds") or 0.0
    mark(run, "rank", keys["rank"], seconds, reused=True, reselected=True,
         digests={"rank": file_digest(run.ranking_json)})
    given = option_word("--modules " + " ".join(options.modules or ()),
                        f"modules={list(options.modules or ())!r}")
    tuned = (f"{given} decides what tune trains, not the selection: tune keeps its candidates"
             if options.modules else f"tune adds the trials of {', '.join(new)} only" if new
             else "no module is new to it: tune keeps its candidates")
    say(SimpleNamespace(quiet=not progress),
        f"{change}: the ranking in {escaped(run.ranking_json)} is reused, not ranked again "
        f"(selected now: {', '.join(selected) or 'none'}); {tuned}; the stages after it run "
        "again only where what they read changed")
    return True


def _reselection(run, was: int, options):
    """(ranking, its new selection rule, the modules it selects, the change in the caller's
    words: "--top-k 2 -> 1") of `run`'s ranking selected again with `options.top_k` in place
    of the recorded `was`; None when the ranking is missing, damaged, a shard's or not the
    top-`was` selection (the usual refusal follows). Reads ranking.json only."""
    from hubensemble.rank import load_ranking
    from hubensemble.rank.ranking import select, selection_rule

    try:
        ranking = load_ranking(run.path)
    except Exception:  # noqa: BLE001 - a missing or damaged ranking: the usual refusal
        return None
    if ranking.shard or ranking.selection != {"rule": "top_k", "top_k": was}:
        return None
    rule = selection_rule(metric=ranking.metric, top_k=options.top_k)
    change = (f"--top-k {was} -> {options.top_k}" if on_command_line() else
              f"top_k={was} -> {options.top_k}")
    return ranking, rule, select(ranking.rows, rule), change


def dropped_refusal(run, previous: dict, options) -> str | None:
    """`top_k_change`'s refusal (str) of a smaller --top-k whose selection drops modules with
    candidates in RUN/candidates, from ranking.json and the candidates' records alone (no
    write, no TensorFlow): `resume.refuse_changed_options` says it before the data loads, where
    it came after TensorFlow's import and the load (28 s). None when it is not refused so
    (`previous`: run.json's "fit"; the caller has checked that --top-k alone changed)."""
    was = (previous.get("options") or {}).get("top_k")
    if not isinstance(was, int) or was == options.top_k:
        return None
    found = _reselection(run, was, options)
    if found is None:
        return None
    dropped = _dropped_candidates(run, found[2], options)
    return _refusal(run, found[3], dropped) if dropped else None


def _dropped_candidates(run, selected, options) -> list:
    """The candidates in RUN/candidates of a sweep that plans from the selection
    (SELECTION_SWEEPS, without --modules) whose module `selected` leaves out: the ensemble
    would still pick them."""
    from hubensemble.candidate import scan
    from hubensemble.sweeps import sweep_parts

    if options.modules:
        return []
    parts = [p for p in sweep_parts(options.sweep) if p in SELECTION_SWEEPS]
    found, _ = scan(run.candidates)
    keep = set(selected)
    return [c for c in found if c.ok and c.module not in keep
            and any(c.trial.startswith(f"{p}-") for p in parts)]


def _refusal(run, change, dropped) -> str:
    """Why a smaller --top-k cannot go on in this run, and the least work that does."""
    modules = list(dict.fromkeys(c.module for c in dropped))
    example = escaped(dropped[0].folder)
    return (f"{change} drops {', '.join(modules)} from the selection, but {len(dropped)} "
            f"{'candidate' if len(dropped) == 1 else 'candidates'} of "
            f"{'it' if len(modules) == 1 else 'them'} {'is' if len(dropped) == 1 else 'are'} in "
            f"{escaped(run.candidates)} (e.g. {example}), and the ensemble selects from every "
            "candidate there, so they would still become members. To keep the ranking and the "
            f"other candidates, move those candidate folders out of {escaped(run.candidates)} "
            "and run the same fit again (tune then trains nothing: the modules kept have their "
            "candidates; the ensemble, export and evaluation run again), or use a new "
            f"{option_word('--out', 'out')} folder, or pass "
            f"{option_word('--restart', 'restart=True')} to discard every result")
