"""Entries that load the same module: one text per place a handle names
(`canonical_handle`), the pairs of a catalogue's entries that load one module read the same
way (`same_module_pairs`, `same_files_as`) and their words (`same_module_note`,
`duplicate_reason`, `pins_note`). Looks at the file system only for local paths (a local
SavedModel's saved_model.pb read without TensorFlow: `savedmodel_calls`); no network."""

from __future__ import annotations

import os

from hubensemble.catalogue_urls import url_case
from hubensemble.handles import handle_kind, stored_handle
from hubensemble.kagglehandles import kaggle_framework, kaggle_parts
from hubensemble.savedmodel_calls import signature_reading


def canonical_handle(handle: str) -> str:
    """One text per place a (stored) handle names, so that two spellings of it compare equal:
    a Kaggle Models handle as its https://www.kaggle.com/models/O/M/F/V/N URL (`kaggle_url`:
    ``kaggle:O/M/F/V/N`` and the long …/frameworks/…/variations/…/versions/… URL alike; the
    framework F as `kaggle_framework`, so "TensorFlow2" and "tensorFlow2" are one), a
    local path or file:// URL as the real absolute path (links resolved), an http(s) or gs
    URL with its scheme and host in lower case; any other handle as given. Looks at the file
    system only for local paths (no network). A tfhub.dev URL's trailing "/" is dropped, as
    `stored_handle` drops it."""
    handle = url_case(handle)
    kind = handle_kind(handle)
    if kind == "kaggle" and kaggle_parts(handle) is not None:
        owner, model, framework, variation, version = kaggle_parts(handle)
        return "https://www.kaggle.com/models/" + "/".join(
            (owner, model, kaggle_framework(framework), variation, version))
    if kind == "local":
        return os.path.realpath(stored_handle(handle, os.getcwd()))
    return handle.rstrip("/") if kind == "tfhub" else handle


#: The entry fields besides the handle that change what a module computes: two entries that
#: agree on them and name the same module (`canonical_handle`, or the same sha256) embed the
#: same and would be tuned alike.
#: `trust` too: a module refused as untrusted and the same one trusted are two readings (the
#: fault suite's reader-trusted entry was dropped as a duplicate of the refused one).
SAME_MODULE_FIELDS = ("weights", "layer", "signature", "output_key", "value_range",
                      "input_size", "native_size", "input_dtype", "trust")


#: The SAME_MODULE_FIELDS whose value left out means the module's own default, which
#: `same_module_pairs` resolves (`entry_reading`) where it can without loading the module.
DEFAULTED_FIELDS = ("signature", "output_key")


def entry_reading(spec, fetched=None) -> dict | None:
    """{"signature": …, "output_key": …} a catalogue entry (a ModuleSpec-like record) is
    called through (`signature_reading`) when its handle is a local SavedModel folder, or
    one `fetched` (entry -> local path: rank's resolver, which downloads a remote handle
    into the cache) gives; None for any other (telling needs the module fetched or loaded),
    or when it cannot be told, or `fetched` raises. What `same_module_pairs` compares
    DEFAULTED_FIELDS by."""
    if handle_kind(spec.handle) == "local":
        path = canonical_handle(spec.handle)
    elif fetched is None:
        return None
    else:
        try:
            path = fetched(spec)
        except Exception:  # noqa: BLE001 - a module that cannot be fetched: rank says why
            return None
    found = signature_reading(path, getattr(spec, "signature", None),
                              getattr(spec, "output_key", None))
    return None if found is None else {"signature": found[0], "output_key": found[1]}


def same_module_pairs(specs, *, fetched=None,
                      disowned=None) -> list[tuple[object, object, str]]:
    """(later, earlier, why) for each entry of `specs` (ModuleSpec-like records, in catalogue
    order) that loads the very module an earlier entry loads, read the same way (every
    SAME_MODULE_FIELDS value equal): the same handle in any spelling (`canonical_handle`;
    why "the same handle H", H the canonical form) or the same `sha256` pin (why "the same
    sha256 0123456789ab…"). Each later entry is paired with the first such earlier one.
    `disowned(later, earlier)`, when given, is True for two entries of one pin that are not
    one module (`catalogue_pins.pin_disowned`, which imports this module: callers pass it),
    not paired by that pin: an entry copied from another with its handle changed and the
    other's pin kept was ranked once, as the other ("duplicate"), its own never checked.

    Two entries of one module that differ only in DEFAULTED_FIELDS are compared by what those
    resolve to (`entry_reading`: a local SavedModel's saved_model.pb is read, nothing
    loaded), so one that leaves `signature` out and one that writes out the default
    `catalogue add` found ("serving_default") are the same reading. A remote handle is
    compared so only with `fetched` (entry -> its local path; rank passes its resolver),
    else as written."""
    earlier_by_key, pairs = {}, []
    for spec in specs:
        keys = [("handle", canonical_handle(spec.handle))]
        if getattr(spec, "sha256", None):
            keys.append(("sha256", spec.sha256.lower()))
        found = next(((key, other) for key in keys for other in earlier_by_key.get(key, ())
                      if _same_reading(spec, other, fetched) and not (
                          key[0] == "sha256" and disowned and disowned(spec, other))), None)
        if found is not None:
            (kind, value), other = found
            why = (f"the same handle {value}" if kind == "handle" else
                   f"the same sha256 {value[:12]}…")
            pairs.append((spec, other, why))
        for key in keys:
            earlier_by_key.setdefault(key, []).append(spec)
    return pairs


def _same_reading(a, b, fetched=None) -> bool:
    """Whether entries `a` and `b` (of one module) read it the same way: every
    SAME_MODULE_FIELDS value equal, or equal once DEFAULTED_FIELDS are resolved
    (`entry_reading`)."""
    differ = {f for f in SAME_MODULE_FIELDS if getattr(a, f, None) != getattr(b, f, None)}
    if not differ:
        return True
    if not differ <= set(DEFAULTED_FIELDS):
        return False
    ra, rb = entry_reading(a, fetched), entry_reading(b, fetched)
    return ra is not None and ra == rb


def same_files_as(spec, fingerprint, ranked) -> tuple | None:
    """(earlier, why) for an entry whose module, located, has the files' `fingerprint`
    (`hub.ModuleFiles.fingerprint`: its bytes, layer and signature) when an entry of `ranked`
    ([(spec, fingerprint)] in catalogue order) has the same files read the same way (every
    SAME_MODULE_FIELDS value equal), though not the same handle nor pin: a tfhub.dev URL and
    its Kaggle name (no rule maps one to the other offline; the server redirects), a copy of
    a folder. why is "the same files (fingerprint 0123456789ab…)"; None when none has."""
    for earlier, theirs in ranked:
        if theirs == fingerprint and _same_reading(spec, earlier):
            return earlier, f"the same files (fingerprint {fingerprint[:12]}…)"
    return None


def duplicate_reason(earlier, why, failed_reason=None, later=None, *, listed=None,
                     loaded=True) -> str:
    """rank's reason for an entry (`later`, when given: its sha256 is compared, `pins_note`)
    that loads the same module as the `earlier` entry, read the same way
    (`same_module_pairs`' `why`): it is ranked once, as that one, so neither embedded nor
    tuned twice; with `failed_reason` (the earlier entry failed), that too. The way on is to
    leave one of them out "of the catalogue" when both entries came from catalogue files
    (their `source`, FILE:LINE; `listed`: the later entry's, when `later` is not given; with
    neither, the earlier's tells), else "of the modules you passed": ModuleSpecs made in
    Python have no catalogue to edit. `loaded` False (`catalogue validate` and `add`, before
    any module is loaded: `same_module_note`): the earlier entry's pin is not known to match
    its files, so differing pins are said as such (`pins_note`)."""
    said = (f"ranked once, as {earlier.name!r}, which failed: {failed_reason}" if failed_reason
            else f"ranked once, as {earlier.name!r}")
    if listed is None:  # neither given: as the earlier entry came
        listed = later.source if later is not None else earlier.source
    where = "the catalogue" if earlier.source and listed else "the modules you passed"
    return (f"loads the same module as entry {earlier.name!r} ({earlier.source or 'above'}), "
            f"read the same way ({why}): {said}"
            f"{pins_note(later, earlier, checked=loaded and not failed_reason) if later else ''}"
            f"; leave "
            f"one of them out of {where}")


def same_module_warnings(specs, *, across_files=False, disowned=None) -> list[str]:
    """A warning line per `same_module_pairs` pair (`disowned` as it takes it), naming both
    entries' FILE:LINE: rank embeds such a module once, under the earlier entry, and records
    the later as a duplicate (not ranked, so not tuned). With `across_files`, only pairs
    whose entries come from different files (their `source`s)."""
    notes = []
    for later, earlier, why in same_module_pairs(specs, disowned=disowned):
        if across_files and later.source.rpartition(":")[0] == earlier.source.rpartition(":")[0]:
            continue
        notes.append(f"warning: {later.source or later.name}: "
                     f"{same_module_note(later, earlier, why)}")
    return notes


def same_module_note(later, earlier, why) -> str:
    """The words of a `same_module_pairs` pair (`later`, `earlier`, `why`), the one wording
    of `catalogue validate`'s warning (`same_module_warnings`) and `catalogue add`'s, rank's
    reason for the later entry (`duplicate_reason`, so the three read alike): "entry 'b'
    loads the same module as entry 'a' (FILE:LINE), read the same way (WHY): ranked once, as
    'a'; leave one of them out of the catalogue". Two pins of one local module that differ
    are no duplicate to rank (`pins_differ`: it checks each), and are said so."""
    if not pins_differ(later, earlier):
        return f"entry {later.name!r} " + duplicate_reason(earlier, why, later=later,
                                                           loaded=False)
    return (f"entry {later.name!r} loads the same module as entry {earlier.name!r} "
            f"({earlier.source or 'above'}), read the same way ({why}): rank embeds and ranks "
            f"it once{pins_note(later, earlier)}; leave one of them out")


def pins_differ(a, b) -> bool:
    """Whether entries `a` and `b` of one local module both pin a `sha256`, and differ: rank
    checks each (a remote copy of other bytes than a pin is fetched again: hub.resolvers)."""
    pins = getattr(a, "sha256", None), getattr(b, "sha256", None)
    return all(pins) and pins[0] != pins[1] and handle_kind(a.handle) == "local"


def pins_note(later, earlier, *, checked=False) -> str:
    """"; …" when the `sha256` of `later` (a pair of `same_module_pairs`: one module) is set
    and differs from `earlier`'s, else "": rank checks `earlier`'s pin alone (both, of a local
    module: `pins_differ`). `checked`: `earlier` loaded, so its pin (when set) matched the
    files and `later`'s is the wrong one. Pins are compared as stored (lower case)."""
    mine, theirs = getattr(later, "sha256", None), getattr(earlier, "sha256", None)
    if not mine or mine == theirs:
        return ""
    if not theirs:
        return (f"; its sha256 {mine[:12]}… is never checked: {earlier.name!r}, which rank "
                f"loads, has none")
    if checked:
        return (f"; its sha256 {mine[:12]}… is not the module's: the files matched the pin "
                f"of {earlier.name!r}, {theirs[:12]}…")
    return (f"; their sha256 differ ({mine[:12]}… here, {theirs[:12]}… at "
            f"{earlier.source or 'above'}): at most one is the module's files" + (
                "; rank checks each and ranks the one they match (the other fails, stage "
                "checksum)" if pins_differ(later, earlier) else f", and rank checks "
                f"{earlier.name!r}'s only"))
