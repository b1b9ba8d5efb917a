"""A module folder moved since a run ranked it, and the catalogue's handle pointed at its new
place: the same module (its files' content fingerprint, the one ranking.json records and
tune keeps weights by), so no change of the catalogue. User 479 renamed a module folder
after a fit; fit again refused the catalogue pointed at the new place as changed ("…
handle A -> B"), and the only ways on were to move the folder back or discard hours of
tuning. A different module at the new place stays a change.

The run keeps the handle its stages were keyed by (run.json's "moved": {name: that
handle}), so the stage keys stay those of the first fit, and records the new handle in its
catalogue entries ("modules"), which every later stage loads its modules from.
"""

from __future__ import annotations

import dataclasses
import logging

from hubensemble.errors import HubensembleError, ModuleLoadError, RunError
from hubensemble.text import escaped

log = logging.getLogger(__name__)

#: run.json's section of the modules that moved: {name: the handle the stages were keyed by}.
MOVED = "moved"


@dataclasses.dataclass(frozen=True)
class Move:
    """Module `name` recorded at handle `was` (run.json), now at `now` (the catalogue), with
    the same files: `fingerprint` (sha256 hex, `hub.ModuleFiles.fingerprint`)."""

    name: str
    was: str
    now: str
    fingerprint: str

    def words(self) -> str:
        """"mobilenet-v1 moved: A -> B, the same module (fingerprint 0123456789ab…); the run
        now loads it from B"."""
        return (f"{self.name} moved: {escaped(self.was)} -> {escaped(self.now)}, the same "
                f"module (fingerprint {self.fingerprint[:12]}…); the run now loads it from "
                f"{escaped(self.now)}")


def keyed_specs(specs, meta: dict) -> list:
    """`specs` (ModuleSpec, a catalogue read now) with the handle of each module that moved
    since the run (`meta`: its run.json) keyed its stages put back (its "moved" record), while
    the entry points where run.json's "modules" says the run loads it from now: the catalogue
    as the run's fingerprints and stage keys know it. Others as given."""
    moved = meta.get(MOVED) if isinstance(meta.get(MOVED), dict) else {}
    entries = meta.get("modules") if isinstance(meta.get("modules"), dict) else {}
    out = []
    for spec in specs:
        entry = entries.get(spec.name)
        keyed = moved.get(spec.name)
        if isinstance(keyed, str) and isinstance(entry, dict) \
                and entry.get("handle") == spec.handle:
            spec = dataclasses.replace(spec, handle=keyed, written=None)
        out.append(spec)
    return out


def _same_but_handle(entry: dict, spec) -> bool:
    """Whether run.json's `entry` and catalogue entry `spec` differ in nothing their module
    computes but the handle (`rank.pool.computed_fields`, the rule's one home)."""
    from hubensemble.rank.pool import computed_fields

    def fields(record):
        return {k: v for k, v in computed_fields(record).items() if k != "handle"}
    return fields(entry) == fields(spec.to_json())


def may_have_moved(spec, entry) -> bool:
    """Whether catalogue entry `spec` (ModuleSpec) may be run.json's `entry` (its record of
    the module, a dict) moved, from the files' paths alone (no TensorFlow, no hashing): both
    local paths, the handle another, something there now (`catalogue_here.
    local_path_problem`), every other field that changes what it computes the same.
    `find_moves` then compares the files' content."""
    from hubensemble.catalogue_here import local_path_problem
    from hubensemble.handles import handle_kind

    return (isinstance(entry, dict) and entry.get("handle") != spec.handle
            and handle_kind(spec.handle) == "local"
            and handle_kind(str(entry.get("handle"))) == "local"
            and local_path_problem(spec.handle) is None and _same_but_handle(entry, spec))


def as_if_moved(specs, meta: dict) -> list:
    """`keyed_specs` of `specs`, each that `may_have_moved` from run.json's entry (`meta`'s
    "modules") keyed by the handle the run keyed it by: the catalogue as the run knew it when
    every possible move is one. Before TensorFlow (`resume.refuse_changed_options`): a
    catalogue that differs even so changed; one that does not is judged after, by content."""
    entries = meta.get("modules") if isinstance(meta.get("modules"), dict) else {}
    moved = meta.get(MOVED) if isinstance(meta.get(MOVED), dict) else {}
    out = []
    for spec in keyed_specs(specs, meta):
        entry = entries.get(spec.name)
        if may_have_moved(spec, entry):
            spec = dataclasses.replace(spec, handle=moved.get(spec.name, entry["handle"]),
                                       written=None)
        out.append(spec)
    return out


def find_moves(run, specs, meta: dict) -> list[Move]:
    """The `Move`s of `specs` (ModuleSpec, a catalogue read now) against run `run` (a
    `rundir.Run`; `meta`, its run.json): a local-path entry whose handle is not the one
    run.json's "modules" records, otherwise the same entry, whose files at the new handle have
    the content fingerprint ranking.json's "ok" row records (`hub.locate_spec`, a hash of the
    files: a content test, never the name). Locating imports TensorFlow (the hub package);
    hashing reads the module's files. [] when nothing moved, the ranking is unreadable, or a
    module cannot be located (the stage that loads it says why)."""
    return [Move(spec.name, was, spec.handle, before)
            for spec, was, before, now, same in _compared(run, specs, meta) if same]


def other_modules(run, specs, meta: dict) -> dict[str, str]:
    """{name: words} of the entries of `specs` that `may_have_moved` but whose files at the new
    handle are another module (`find_moves`' content test failed): "the files at B are another
    module (fingerprint 0123456789ab…, where m0 was ranked with 4567…), not m0 moved". New
    user 492 was told only "m0's handle A -> B" and could not tell a move refused from another
    module. {} when none (or nothing can be read: the refusal's words stand alone)."""
    return {spec.name: (f"the files at {escaped(spec.handle)} are another module (fingerprint "
                        f"{now[:12]}…, where {spec.name} was ranked with {before[:12]}…), not "
                        f"{spec.name} moved")
            for spec, _, before, now, same in _compared(run, specs, meta) if not same}


def _compared(run, specs, meta: dict) -> list[tuple]:
    """[(spec, the recorded handle, the ranked fingerprint, the fingerprint of its files now,
    whether the same module)] of the entries of `specs` that `may_have_moved` and could be
    located (`find_moves`' rule)."""
    entries = meta.get("modules") if isinstance(meta.get("modules"), dict) else {}
    maybe = [s for s in specs if may_have_moved(s, entries.get(s.name))]
    if not maybe or not run.ranking_json.exists():
        return []
    from hubensemble.rank import load_ranking

    try:
        prints = {r["name"]: r.get("fingerprint") for r in load_ranking(run.path).ok_rows}
    except (RunError, OSError, ValueError):
        return []
    from hubensemble.hub import locate_spec, recorded_by_earlier_rule

    found = []
    for spec in maybe:
        before = prints.get(spec.name)
        if not before:
            continue
        try:
            files = locate_spec(spec)
        except (ModuleLoadError, HubensembleError, OSError):
            continue
        same = files.fingerprint == before or recorded_by_earlier_rule(before, files)
        found.append((spec, entries[spec.name]["handle"], before, files.fingerprint, same))
    return found


def record_moves(run, moves, specs) -> None:
    """Records `moves` in run `run`'s run.json: each module's new catalogue entry (of
    `specs`: handle and written form) in "modules", and under "moved" the handle its stages
    were keyed by (the first one, when it moved twice); logs each move in one line."""
    by_name = {s.name: s for s in specs}

    def change(meta):
        moved = meta.get(MOVED) if isinstance(meta.get(MOVED), dict) else {}
        for move in moves:
            moved.setdefault(move.name, move.was)
            meta["modules"][move.name] = by_name[move.name].to_json()
        meta[MOVED] = moved
    run.modify(change)
    for move in moves:
        log.warning("%s", move.words())
