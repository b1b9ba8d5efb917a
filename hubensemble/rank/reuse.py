"""Whether a ranking `hubensemble rank` wrote is the one `fit` would write (`ranking_changes`).

The natural flow is rank, look at the ranking, then fit on the same folder: fit goes on from
that ranking when it would rank the same modules the same way, and names what differs
otherwise; and `rank` of a run folder keeps the run's own rank options (`run_defaults`).
No TensorFlow at import.
"""

from __future__ import annotations

from hubensemble import options
from hubensemble.rank.ranking import Ranking, catalogue_record, selection_rule


def _selection_words(selection: dict) -> str:
    """A selection record as the rank flags that give it ("--top-k 3")."""
    rule = selection.get("rule")
    if rule == "top_k":
        return f"--top-k {selection.get('top_k')}"
    if rule == "threshold":
        return f"--threshold {selection.get('threshold')} --max-k {selection.get('max_k')}"
    if rule == "greedy":
        return f"--greedy --max-k {selection.get('max_k')}"
    return f"selection {selection or 'unrecorded'}"


def ranking_changes(ranking: Ranking, specs, *, metric, k, top_k, threshold, max_k, greedy,
                    profile, batch_size=None) -> list[str]:
    """What differs between `ranking` (ranking.json) and the ranking `run_rank` would write for
    the catalogue `specs` with these rank options (a fit's: options.kwargs_for("rank", ...);
    `batch_size` changes no score): "--flag ranked -> now" texts, "a shard's ranking (i/n)",
    "the catalogue (...)"; [] when they are the same. The data is not compared here:
    Run.attach_task refuses other data with its own words."""
    found = []
    if ranking.shard:
        found.append(f"a shard's ranking ({ranking.shard[0]}/{ranking.shard[1]}; `rank merge` "
                     "the shards)")
    for name, was, now in (("metric", ranking.metric, metric), ("k", ranking.k, k),
                           ("profile", ranking.profile, profile)):
        if was != now:
            found.append(f"{options.get(name).cli_flags[0]} {was} -> {now}")
    now = selection_rule(metric=metric, top_k=top_k, threshold=threshold, max_k=max_k,
                         greedy=greedy)
    if (ranking.selection or {}) != now:
        found.append(f"{_selection_words(ranking.selection or {})} -> {_selection_words(now)}")
    changed = catalogue_changes(ranking, specs)
    return found + ([f"the catalogue ({changed})"] if changed else [])


#: The rank options ranking.json records that `rank` of a run folder keeps when none of its
#: group is typed: the proxy (metric, k) and the selection rule (its four flags).
_KEPT_GROUPS = (("metric", "k"), ("top_k", "threshold", "max_k", "greedy"))


def kept_options(ranking: dict, given) -> dict:
    """{option name: value} of the rank options the run folder's ranking.json (`ranking`, its
    dict; {} for none) records and `rank` of that folder keeps: per group (the proxy: --metric
    and -k; the selection: --top-k, --threshold, --max-k, --greedy), the recorded values when
    the user typed no option of that group (`given`: the names typed, argparse's
    given_options), only those that differ from the options table's defaults. {} when nothing
    is recorded or nothing differs. Without it, `rank` of a folder fitted with --top-k 2 selected
    the default 15 modules, which a later `tune --run` would tune (a new-user check)."""
    selection = ranking.get("selection") or {}
    recorded = {"metric": ranking.get("metric"), "k": ranking.get("k"),
                "greedy": selection.get("rule") == "greedy" if selection else None,
                **{name: selection.get(name) for name in ("top_k", "threshold", "max_k")}}
    kept = {}
    for group in _KEPT_GROUPS:
        if any(name in given for name in group):
            continue
        kept.update({name: recorded[name] for name in group if recorded[name] is not None
                     and recorded[name] != options.default(name)})
    return kept


def run_defaults(out_dir, given, profile) -> tuple[dict, list[str]]:
    """({option name: value}, [lines to say]) for `rank` of the folder `out_dir`: for a run
    folder, the options it keeps (`kept_options`: the recorded proxy and selection rule), and
    without --profile typed (`given`: the names typed) the run's profile, as tune takes it
    (`tune.stage.run_profile`: its last tune's, else its ranking's) when it is not `profile`
    (the default's name); ({}, []) for a new folder. The default (cpu) re-ranked a folder
    fitted at quick at another resolution than its pool's, without a word (a new-user
    check). RunError when run.json or ranking.json is unreadable (`Run.meta`, `Run.ranking`)."""
    from hubensemble.candidate import scan
    from hubensemble.rundir import Run
    from hubensemble.tune.stage import run_profile

    run = Run(out_dir)
    if not run.started():
        return {}, []
    values = kept_options(run.ranking() or {}, given)
    lines = [f"rank: {kept_words(values)} (the run's ranking, {run.ranking_json}; not the "
             "defaults): a run folder is ranked again by its own rule; type the options for "
             "another"] if values else []
    if "profile" in given:
        return values, lines
    (kept, source) = run_profile(run)
    if kept.name != profile:
        values["profile"] = kept  # run_rank takes a Profile: a custom one recorded too
        lines.append(f"rank: --profile {kept.name} ({source}; not the default {profile}): " + (
            "its candidates were tuned at that profile's resolution, and the ranking embeds at "
            "it too; for another profile, rank into a new --out folder" if scan(
                run.candidates)[0] else "the ranking embeds at the resolution tune goes on at; "
            "--profile chooses another"))
    return values, lines


def kept_words(kept: dict) -> str:
    """`kept_options`' result as the flags that give it ("--metric knn-cosine --top-k 2"):
    `datachange.option_flags`, the one rendering of recorded options as flags."""
    from hubensemble.datachange import option_flags

    return option_flags(kept, [options.get(name) for name in kept])


def catalogue_changes(ranking: Ranking, specs) -> str | None:
    """The entries that differ between `ranking`'s catalogue record (ranking.json) and the
    catalogue `specs`, in words ("m1, m3 added, dropped or changed"; "its order" when only the
    order differs), or None when they are the same. What `fit` and the rank → fit check say
    of a changed catalogue (fit said only "the catalogue changed": a new-user check)."""
    was, record = ranking.catalogue or {}, catalogue_record(specs)
    if (was.get("fingerprint") == record["fingerprint"]
            and was.get("entries") == record["entries"]):
        return None
    old, new = was.get("entries") or {}, record["entries"]
    names = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    return (f"{', '.join(names[:5]) or 'its order'}{' …' if len(names) > 5 else ''} added, "
            "dropped or changed")
