"""Whether a ranking `hubensemble rank` wrote is the one `fit` would write (`ranking_changes`).

The natural flow is rank, look at the ranking, then fit on the same folder: fit goes on from
that ranking when it would rank the same modules the same way, and names what differs
otherwise; and `rank` of a run folder keeps the run's own rank options (`run_defaults`, in
rank.rundefaults).
No TensorFlow at import.
"""

from __future__ import annotations

import json

from hubensemble import options
from hubensemble.lockwords import command_words, on_command_line, option_word
from hubensemble.rank.ranking import Ranking, catalogue_record, rule_text, selection_rule
# What `rank` of a run folder keeps of it: rank.rundefaults (below run_rank), re-exported.
from hubensemble.rank.rundefaults import kept_options, kept_words, run_defaults  # noqa: F401


def _selection_words(selection: dict) -> str:
    """A selection record as the rank flags that give it ("--top-k 3"), or from Python
    (`lockwords.on_command_line` false) the keywords ("top_k=3"): `ranking.rule_text`."""
    return rule_text(selection, empty="selection unrecorded")


def _option_change(name: str, was, now) -> str:
    """"--metric knn -> logme" on the command line, "metric='knn' -> 'logme'" from Python."""
    if not on_command_line():
        return f"{name}={was!r} -> {now!r}"
    return f"{options.get(name).cli_flags[0]} {was} -> {now}"


def ranking_changes(ranking: Ranking, specs, *, metric, k, top_k, threshold, max_k, greedy,
                    profile, batch_size=None, recorded=None) -> list[str]:
    """What differs between `ranking` (ranking.json) and the ranking `run_rank` would write for
    the catalogue `specs` with these rank options (a fit's: options.kwargs_for("rank", ...);
    `batch_size` changes no score): "--flag ranked -> now" texts (from Python, the keywords:
    "top_k=1 -> top_k=2", "profile='quick' -> 'cpu'"), "a shard's ranking (i/n)",
    "the catalogue (...)" (`catalogue_changes`, per module: `recorded`, run.json's
    "modules", gives old values); [] when they are the same. The data is not compared here:
    Run.attach_task refuses other data with its own words."""
    found = []
    if ranking.shard:
        found.append(f"a shard's ranking ({ranking.shard[0]}/{ranking.shard[1]}; "
                     f"{command_words('rank merge')} the shards)")
    for name, was, now in (("metric", ranking.metric, metric), ("k", ranking.k, k)):
        if was != now:
            found.append(_option_change(name, was, now))
    found += _profile_change(ranking, profile)
    now = selection_rule(metric=metric, top_k=top_k, threshold=threshold, max_k=max_k,
                         greedy=greedy)
    if (ranking.selection or {}) != now:
        found.append(f"{_selection_words(ranking.selection or {})} -> {_selection_words(now)}")
    changed = catalogue_changes(ranking.catalogue, specs, recorded,
                                {r["name"]: r["dim"] for r in ranking.ok_rows})
    return found + ([f"the catalogue ({'; '.join(changed)})"] if changed else [])


def _profile_change(ranking: Ranking, profile) -> list[str]:
    """["--profile A -> B"] when `profile` (a name or a hyperrule.Profile) is another than
    the ranking's; ["--profile cpu (resolution_cap 224 -> 160)"] when it is of the same name
    but ranks otherwise than the definition ranking.json recorded (`runprofile.rank_changes`:
    a built-in profile redefined since, or a custom one of that name); [] otherwise. A
    ranking.json written before it recorded the definition is compared by name."""
    from hubensemble.errors import HubensembleError
    from hubensemble.runprofile import as_profile, profile_of_record, rank_changes

    name = getattr(profile, "name", profile)
    if ranking.profile != name:
        return [_option_change("profile", ranking.profile, name)]
    recorded = profile_of_record(ranking.profile_definition)
    try:
        now = as_profile(profile)
    except HubensembleError:  # a custom profile's name: compared by name
        return []
    changed = [] if recorded is None else rank_changes(recorded, now)
    if not changed:
        return []
    said = option_word(f"--profile {name}", f"profile={name!r}")
    return [f"{said} ({', '.join(changed)})"]


def catalogue_changes(was, specs, recorded=None, widths=None) -> list[str]:
    """What changed in the catalogue since a ranking, per module, in the fewest words: "m3
    added", "m2 removed", "m1's handle /a -> /b" (old and new values of the fields that
    change what it computes, every field but `rank.pool.DESCRIPTIVE_FIELDS`, from
    `recorded`: run.json's "modules", {name: ModuleSpec.to_json()}, which holds the modules
    rank selected), "m1's handle changed" (a module rank did not select, the only one
    changed: ranking.json's per-field digests name its fields), else "m1's entry changed";
    "its order" when only the order differs; [] when nothing does. At most 5 modules, then
    "and N more". `was`: ranking.json's "catalogue" record (`rank.ranking.catalogue_record`:
    {"entries": {name: digest}, "fields": {field: digest over the catalogue}}); `specs`:
    the catalogue now (ModuleSpec). A new-user check: fit said "m1 added, dropped or
    changed" of a module whose handle alone had changed.

    Compared as fit compares its own record (`rank.pool.computed_fields`): a ranking.json
    of a hubensemble that knew fewer ModuleSpec fields (each entry's digest without the new
    ones) is no change while the new fields are at their default (`field_changes`), nor is
    a module whose run.json record computes alike; it read as every entry changed.
    `widths` ({name: width}, `rank.pool.ranked_widths`): an `output_dim` change says the
    width rank measured ("m1's output_dim null -> 16 (ranked at 8)"), which it named not."""
    from hubensemble.rank.pool import DESCRIPTIVE_FIELDS, computed_fields, entry_defaults

    was, recorded = (was if isinstance(was, dict) else {}), (recorded or {})
    record = catalogue_record(specs)
    if (was.get("fingerprint") == record["fingerprint"]
            and was.get("entries") == record["entries"]):
        return []
    old = was.get("entries") if isinstance(was.get("entries"), dict) else {}
    new, now = record["entries"], {s.name: s.to_json() for s in specs}
    defaults = entry_defaults()
    # The per-field digests span the catalogue: they name one changed module's fields only
    # when nothing else was added, removed or changed, and tell an older version's digests
    # (fields it did not know, at their default now) from an edit.
    fields = field_changes(was, record) if list(old) == list(new) else None
    changed = [n for n in new if n in old and old[n] != new[n]
               and not _same_but_fields(old[n], now[n], was.get("fields"), defaults) and not (
                   isinstance(recorded.get(n), dict)
                   and computed_fields(recorded[n]) == computed_fields(now[n]))]
    fields = fields if len(changed) == 1 and fields is not None else []

    def words(name):
        if name not in old:
            return f"{name} added"
        if name not in new:
            return f"{name} removed"
        before = recorded.get(name)
        if isinstance(before, dict):
            then, later = computed_fields(before), computed_fields(now[name])
            diff = [f for f in dict.fromkeys([*now[name], *before])
                    if f not in DESCRIPTIVE_FIELDS and f != "name"
                    and then.get(f) != later.get(f)]
            if diff:
                return f"{name}'s " + ", ".join(
                    f"{f} {_shown(f, before.get(f, defaults.get(f)))} -> "
                    f"{_shown(f, now[name].get(f, defaults.get(f)))}" + (
                        f" (ranked at {(widths or {})[name]})"
                        if f == "output_dim" and name in (widths or {}) else "")
                    for f in diff)
        if fields:
            return f"{name}'s {' and '.join(fields)} changed"
        return f"{name}'s entry changed"

    names = [n for n in new if n not in old] + [n for n in old if n not in new] + changed
    if not names:  # the same modules computing alike: in another order, or an older version's
        return ["its order"] if list(old) != list(new) else []
    said = [words(n) for n in names[:5]]
    return said + ([f"and {len(names) - 5} more"] if len(names) > 5 else [])


def _same_but_fields(digest, entry, known, defaults) -> bool:
    """Whether ranking.json's digest `digest` of an entry is that of `entry` (its
    `ModuleSpec.to_json()` now) as a hubensemble that knew only the fields `known` (the
    record's per-field digests' keys) wrote it: the digest of `entry` without the fields
    it did not know, each of which is at its default (`defaults`) now."""
    from hubensemble.rank.pool import DESCRIPTIVE_FIELDS
    from hubensemble.rank.ranking import _digest

    if not isinstance(known, dict):
        return False
    entry = {f: v for f, v in entry.items() if f not in DESCRIPTIVE_FIELDS}
    unknown = [f for f in entry if f != "name" and f not in known]
    return (all(entry[f] == defaults.get(f) for f in unknown)
            and _digest({f: v for f, v in entry.items() if f not in unknown}) == digest)


def field_changes(was, now) -> list[str] | None:
    """The fields (sorted) whose values differ between two of ranking.json's "catalogue"
    records (`rank.ranking.catalogue_record`) of the same modules in the same order, by
    their per-field digests ("fields", over the catalogue): a field one record holds and the
    other does not (a hubensemble that knew other ModuleSpec fields wrote it) differs only
    where its values are not all at ModuleSpec's default, the rule of
    `rank.pool.computed_fields`. None when either record has no per-field digests (a
    ranking.json written before they were recorded) or `now` no size."""
    from hubensemble.catalogue import ModuleSpec

    a, b = (r.get("fields") if isinstance(r, dict) else None for r in (was, now))
    size = now.get("size") if isinstance(now, dict) else None
    if not (isinstance(a, dict) and isinstance(b, dict) and isinstance(size, int)
            and not isinstance(size, bool) and size > 0):
        return None
    # Each field's digest over `size` entries at their default (the records' own rule).
    default = catalogue_record([ModuleSpec(name=f"m{i}", handle="h")
                                for i in range(size)])["fields"]
    default.pop("handle", None)  # no default: a record without it is no catalogue's
    return sorted(f for f in set(a) | set(b) if a.get(f, default.get(f)) != b.get(
        f, default.get(f)))


def _shown(field: str, value) -> str:
    """Catalogue field `field`'s value `value` (as ModuleSpec.to_json holds it) as the
    catalogue's YAML writes it (`catalogue_writer`): value_range's stored shorthand as its
    list (`catalogue_fields.RANGE_YAML`: "0,1" -> [0, 1]); then text as is, else JSON (null,
    [224, 224]). The stored "0,1 -> -1,1" read beside "null -> [32, 32]" (two renderings),
    and as neither the YAML nor the catalogue's own docs write it."""
    from hubensemble.catalogue_fields import RANGE_YAML

    if field == "value_range" and isinstance(value, str):
        value = RANGE_YAML.get(value, value)
    return value if isinstance(value, str) else json.dumps(value)
