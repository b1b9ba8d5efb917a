"""What a new ranking of a run folder must keep of the candidates' pool it holds.

`rank` (and `rank merge`) may rank a folder again after `tune` filled RUN/candidates; the
ensemble selects from every candidate there as one pool, and export loads each member's
module from run.json's list, which a ranking replaces. Reads run.json and
RUN/candidates/*/trial.json only (no TensorFlow), so the command line checks before it loads
the data or a module.
"""

from __future__ import annotations

import collections
import functools
import logging
import types

from hubensemble.errors import RunError
from hubensemble.lockwords import option_word
from hubensemble.text import absolute, counted, escaped

log = logging.getLogger(__name__)

#: Catalogue fields that describe a module without changing what loads or how it is fed: a
#: new ranking may change them under a run's candidates.
# "written" is the form a catalogue wrote a relative handle in ('./mods/m0'): words only,
# the handle beside it is what loads (a run ranked before the field has none).
DESCRIPTIVE_FIELDS = frozenset({"source", "license", "tags", "family", "architecture",
                                "upstream", "subtree", "params", "seed", "written"})


@functools.cache
def entry_defaults():
    """ModuleSpec's default of each field, as `ModuleSpec.to_json()` holds it (an entry of a
    name and a handle alone), read-only: the value a record's missing field is read at (a
    later version adds a field at its default). The one such record, read by
    `computed_fields`."""
    from hubensemble.catalogue import ModuleSpec

    return types.MappingProxyType(ModuleSpec(name="n", handle="h").to_json())


def check_tuned_modules(out_dir, modules, *, warn: bool = True) -> int:
    """Refuses (RunError) a new ranking of the run folder `out_dir` whose module list drops a
    module that the run's candidates were tuned from, or changes how its entry loads it (any
    field but DESCRIPTIVE_FIELDS: the handle, checksum, sizes, value range, output key, ...;
    a field at its default as one the record lacks, `computed_fields`: a
    record of a version before that field was added is no change); returns how many
    candidates the folder holds (0 for a new folder).

    A ranking replaces run.json's "modules", and export and distil load each member's module
    from there: a candidate whose module left the list could no longer be exported, and one
    whose handle changed would be exported around another module than it was trained on.
    Failed candidates count too (`tune` resumes them). `modules` maps each module name of the
    new ranking to its entry as run.json records it (`ModuleSpec.to_json()`). Reads run.json
    and RUN/candidates/*/trial.json only (no TensorFlow), so `rank` refuses before it loads
    the data or a module. A record edited by hand into no object is warned about
    (`_recorded_entries`), unless `warn` is False: the command line's check before
    TensorFlow, whose `run_rank` checks again and says it (it was said twice).
    """
    from hubensemble.candidate import scan
    from hubensemble.rundir import Run

    run = Run(out_dir)
    found, _ = scan(run.candidates)
    if not found:
        return 0
    recorded = _recorded_entries(run, {c.module for c in found}, len(found), warn=warn)
    widths = ranked_widths(run)
    now = dict(modules)
    problems = []
    for name in sorted({c.module for c in found}):
        if name not in now:
            problems.append(f"{name} is not in the catalogue")
            continue
        old = recorded.get(name)
        if old is None:
            continue  # a copied pool without run.json's record: nothing to compare against
        # As fit compares its record (computed_fields): a field the record lacks is at its
        # default, as a later version adds it.
        changed = entry_changes(old, now[name], widths.get(name))
        if changed:
            problems.append(f"the entry of {name} changed ({', '.join(changed)})")
    if problems:
        raise RunError(
            f"{escaped(absolute(out_dir))} holds {counted(len(found), 'candidate')} tuned from "
            "its modules, and "
            f"{'; '.join(problems[:5])}{' …' if len(problems) > 5 else ''}: the export "
            "loads each member's module from the run's record, which a new ranking "
            "replaces. Rank into a new --out folder, keep those entries as they were, or "
            f"delete {escaped(absolute(run.candidates))} first to discard the candidates")
    return len(found)


def ranked_widths(run) -> dict[str, int]:
    """{module name: its embedding's width (features, an int > 0)} as the ranking of the
    `rundir.Run` `run` measured it (ranking.json's ok rows' "dim"); {} when there is no readable
    ranking (`rank.load_ranking`'s RunError) or a row has no width (a failed module)."""
    from hubensemble.rank import load_ranking

    try:
        rows = load_ranking(run.path).ok_rows if run.ranking_json.exists() else []
    except (RunError, OSError, ValueError):
        return {}
    return {r["name"]: r["dim"] for r in rows if isinstance(r, dict)
            and isinstance(r.get("name"), str) and type(r.get("dim")) is int and r["dim"] > 0}


def computed_fields(entry: dict, width=None) -> dict:
    """The fields of `entry` (a `ModuleSpec.to_json()` dict, or run.json's record of one)
    that change what its module computes (all but DESCRIPTIVE_FIELDS), less those at their
    ModuleSpec default (`entry_defaults`; name and handle always kept): a record written
    before a field was added compares equal to the entry now while that field is at its
    default. With `width` (an int, the embedding width a ranking measured: ranking.json's
    row "dim"), an `output_dim` equal to it is left out too: it only declares the width,
    and nothing is computed otherwise (another output_dim stays, the stricter reading: rank
    warns of it and ranks with the measured width). The one home of the rule "a field a
    record lacks is at its default", for fit's record (`rank.ranking.computed_fields`),
    `entry_changes`, `rank.reuse` and `rank merge`."""
    defaults = entry_defaults()
    return {f: v for f, v in entry.items() if f not in DESCRIPTIVE_FIELDS
            and (f in ("name", "handle") or f not in defaults or v != defaults[f])
            and not (f == "output_dim" and width is not None and v == width)}


def entry_changes(old: dict, new: dict, width=None) -> list[str]:
    """The fields (sorted) in which the catalogue entry `new` (`ModuleSpec.to_json()`) loads or
    feeds its module otherwise than `old` (run.json's record of it): every field but
    DESCRIPTIVE_FIELDS, one a dict lacks read at its ModuleSpec default, as a later version
    adds it, and an `output_dim` equal to `width`, the width the ranking measured
    (ranking.json's row "dim"), read as none (`computed_fields`: adding `output_dim: 8` to an
    8-wide module forced --restart). The one rule of fit's resume
    (`resume._entries_changed`) and of a new ranking over tuned candidates
    (`check_tuned_modules`)."""
    default = entry_defaults()
    was, now = computed_fields(old, width), computed_fields(new, width)
    return sorted(f for f in set(was) | set(now)
                  if was.get(f, default.get(f)) != now.get(f, default.get(f)))


def as_recorded_widths(specs, recorded, widths) -> list:
    """`specs` (ModuleSpec) with each `output_dim` that `entry_changes` reads as no change
    (it and the one `recorded`, run.json's entry, each null or `widths`' measured width)
    put back to the recorded one: for the checks that compare the catalogue with a
    ranking's digests (`rank.reuse.ranking_changes`: fit going on from a `rank` ranking),
    so they keep that rule. `recorded`: {name: entry}; `widths`: `ranked_widths`."""
    import dataclasses

    out = []
    for spec in specs:
        was = recorded.get(spec.name) if isinstance(recorded, dict) else None
        width = widths.get(spec.name)
        if isinstance(was, dict) and width is not None and spec.output_dim in (None, width) \
                and was.get("output_dim") in (None, width):
            spec = dataclasses.replace(spec, output_dim=was.get("output_dim"))
        out.append(spec)
    return out


def _recorded_entries(run, names, held: int, *, warn: bool = True) -> dict:
    """run.json's catalogue entries (`runspecs.readable_entries`) that a new ranking compares
    with its own for the candidates' modules (`names`; `held` candidates in all). A record or
    an entry of one of them edited by hand into no JSON object, or with a field of another
    kind (`catalogue.ModuleSpec.from_json` refuses it), is warned about, naming run.json,
    and not compared (as a pool copied without its record): the new ranking replaces it.
    `modules or {}` was an AttributeError (a list) or a TypeError (a number)."""
    from hubensemble.fileio import json_kind
    from hubensemble.runspecs import readable_entries
    from hubensemble.text import absolute

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.errors import first_line

    raw = run.meta().get("modules")
    entries = readable_entries(raw)
    if raw is not None and not isinstance(raw, dict):
        damaged = [f'its "modules" record is {json_kind(raw)}, expected an object']
    else:
        damaged = [f"the catalogue entry of module {n!r} is {json_kind(raw[n])}, expected an "
                   "object" for n in sorted(names)
                   if n in (raw or {}) and not isinstance(raw[n], dict)]
    # A field of another kind ("input_size": "abc") is no entry to compare either, as
    # `runspecs.module_spec` reads it: compared, it read as the catalogue's change, and
    # fit's rank (which records the entries anew) and `rank` were refused, a dead end.
    for n in sorted(set(names) & set(entries)):
        try:
            ModuleSpec.from_json(entries[n])
        except (ValueError, TypeError) as e:
            damaged.append(f"the catalogue entry of module {n!r} is damaged ({first_line(e)})")
            del entries[n]
    if damaged and warn:
        log.warning("%s: %s%s, so the new ranking cannot compare it with the entries the %s "
                    "were tuned from; it replaces it", absolute(run.meta_path),
                    "; ".join(damaged[:5]), " …" if len(damaged) > 5 else "",
                    counted(held, "candidate"))
    return entries


def warn_unselected_pool(out_dir, selected, command="rank") -> dict[str, int]:
    """Warns, naming them, about the modules whose usable candidates (`Candidate.ok`)
    RUN/candidates holds but that the ranking just written does not select; returns
    {module: usable candidates}, {} for none. `command`: "rank" or "rank merge", the
    command the advice names (run into a new --out folder).

    `tune` adds trials only for the selected modules, but the ensemble picks from every
    candidate in the folder: after a tighter re-ranking (e.g. --top-k 3, then 1) the
    deselected modules' candidates can still become members, which the user did not ask
    for. A new --out folder starts with no candidate (none is copied or reused), so its
    selection is tuned again. Reads RUN/candidates/*/trial.json only.
    """
    from hubensemble.candidate import scan
    from hubensemble.rundir import Run

    found, _ = scan(Run(out_dir).candidates)
    selected = set(selected)
    outside = collections.Counter(c.module for c in found if c.ok and c.module not in selected)
    if outside:
        n = sum(outside.values())
        log.warning("this ranking does not select %s, whose %s from an earlier tune %s in %s "
                    "and still %s the pool the ensemble selects "
                    "from. For a pool of the selected modules only, %s into a new --out "
                    "folder and run `tune --run` on it: no candidate is copied or reused, so "
                    "the selected modules are tuned again", ", ".join(sorted(outside)),
                    counted(n, "usable candidate"), "stays" if n == 1 else "stay",
                    Run(out_dir).candidates, "enters" if n == 1 else "enter", command)
    return dict(outside)


#: What to do about a ranking at another profile than the pool's, by the command refused.
def _other_profile_advice(command: str, pool: str, now: str) -> str:
    """The ways on of `check_pool_profile`'s refusal, in the caller's words."""
    def prof(name):
        return option_word(f"--profile {name}", f"profile={name!r}")

    new = option_word("--out", "out_dir")
    if command == "rank merge":
        return (f"Merge shards ranked with {prof(pool)}, or merge into a new {new} folder "
                f"for {now}, where its selection is tuned again")
    return (f"{option_word('Rank', 'Call run_rank')} with {prof(pool)} (or without "
            f"{option_word('--profile', 'profile')}: {option_word('`rank`', 'it')} then takes "
            f"the run's), or rank into a new {new} folder for {now}, where its selection is "
            "tuned again")


def check_pool_profile(out_dir, profile, command: str = "rank") -> None:
    """Refuses (RunError) a ranking of the run folder `out_dir` at `profile` (a
    hyperrule.Profile, or a profile's name) when RUN/candidates holds candidates tuned with
    another (trial.json "profile"), or with one of that name whose definition, as run.json
    recorded it for their sweep (`runprofile.recorded_profile`), trains otherwise
    (`runprofile.training_changes`, the rule of tune's pool check and of rank's run defaults:
    a built-in profile redefined since; its name alone passed, and the ranking embedded at
    today's resolution, or tune then refused the typed profile); naming both profiles and the
    ways on in the caller's words (`command`: "rank" or "rank merge", whose advice is given).

    The profile sets the embedding resolution (docs/rank.md, "Resolution rule"), and one pool
    has one profile (`tune.stage.check_pool`): `rank --out RUN` at the default cpu on a folder
    fitted at quick re-ranked at cpu's resolution without a word, and tune then refused to
    plan cpu trials beside the quick ones (a new-user check). Reads trial.json and run.json
    only (no TensorFlow), so the command line refuses before it loads anything."""
    from hubensemble.candidate import scan
    from hubensemble.errors import HubensembleError
    from hubensemble.runprofile import as_profile, recorded_profile, training_changes
    from hubensemble.rundir import Run

    run = Run(out_dir)
    name = getattr(profile, "name", profile)
    try:
        now = as_profile(profile)
    except HubensembleError:  # a custom profile's name (rank merge): compared by name
        now = None
    found, _ = scan(run.candidates)
    other = [c.trial for c in found if c.record.get("profile") not in (None, name)]
    redefined = {}
    if not other and now is not None and found:
        meta = run.meta()
        for c in found:
            if c.record.get("profile") != name:
                continue
            recorded = recorded_profile(c.record, meta, run.meta_path)
            changed = [] if recorded is None else training_changes(recorded, now)
            if changed:
                redefined[c.trial] = changed
    if redefined:
        trial, changed = next(iter(redefined.items()))
        flag = option_word(f"--profile {name}", f"profile={name!r}")
        raise RunError(
            f"{run.candidates} holds {counted(len(redefined), 'candidate')} tuned with {flag} as "
            f"run.json records it (e.g. {trial}: {', '.join(changed)}, recorded -> now), and "
            "this ranking would embed and tune would train by another definition than "
            "theirs: the ensemble selects from every "
            f"candidate there as one pool. {option_word('Rank', 'Call run_rank')} without "
            f"{option_word('--profile', 'profile')} (the run's profile as recorded), or rank "
            f"into a new {option_word('--out', 'out_dir')} folder, where its selection is "
            "tuned again")
    if not other:
        return
    pool = collections.Counter(c.record.get("profile") for c in found
                               if c.trial in other).most_common(1)[0][0]
    at = option_word(f"--profile {name}'s resolution",  # not "profile='cpu''s"
                     f"the resolution of profile={name!r}")
    raise RunError(
        f"{run.candidates} holds {counted(len(other), 'candidate')} tuned with "
        f"{option_word(f'--profile {pool}', f'profile={pool!r}')} (e.g. {other[0]}), and this "
        f"ranking would embed at {at}, not theirs: the ensemble selects from every candidate "
        "there as one pool, "
        f"which holds one profile. {_other_profile_advice(command, pool, name)}")
