"""Catalogue entries that pin one sha256 under different handles: one module catalogued twice
(a tfhub.dev URL and its Kaggle name, a copy of a folder), or an entry copied from another
with its handle changed and the other's pin left in it (a new user's check: the copy was
taken for a duplicate of the original and never ranked). Which of the two it is, only the
bytes tell: what a pin stands for by handle (`pinned_kind`: an archive and a saved_model.pb
never hash alike), and a local module's files, hashed here (`local_pin_sha256`, as rank
checks its pin); a remote one would have to be downloaded, so a pair of one kind of which
every local side matches stays one module. TensorFlow-free: `catalogue validate` and rank's
pairing of duplicates (`samemodule.same_module_pairs`' `disowned`) use it."""

from __future__ import annotations

import os

from hubensemble import handles, handlewarnings, samemodule
from hubensemble.text import escaped


def local_pin_sha256(entry) -> str | None:
    """The sha256 (64 lower-case hex digits) of the files local entry `entry`'s `sha256`
    pins (`modulefiles.pinned_sha256`, what rank compares the pin with: a SavedModel's
    saved_model.pb, a .keras/.h5 file, a preset's weights), None when its handle is not local,
    holds no module, cannot be read or its files are more than `modulefiles.PIN_READ_LIMIT`
    bytes (about 0.15 s of CPU: rank checks a larger one as it loads it)."""
    from hubensemble.modulefiles import PIN_READ_LIMIT, pinned_files, pinned_sha256

    if handles.handle_kind(entry.handle) != "local":
        return None
    path = samemodule.canonical_handle(entry.handle)
    try:
        files = pinned_files(path)
        if not files or sum(os.path.getsize(f) for f in files) > PIN_READ_LIMIT:
            return None
        return pinned_sha256(path)
    except (OSError, ValueError):  # missing or not a module: said as such elsewhere
        return None


def pinned_kind(handle) -> str | None:
    """What a `sha256` pins for `handle` (docs/security.md, "What is checked, and when", 2),
    in words: "an archive" (as downloaded: tfhub.dev, Kaggle, an http(s) or gs:// tarball),
    "a saved_model.pb" (a local SavedModel folder), "a model file" (a .keras/.h5 file, local
    or remote), "a preset's weights" (keras-hub), "a Keras weights file" (keras:NAME); None
    when it cannot be told from the handle and the local folder's listing (a gs:// folder, a
    local path that holds no module, zoo:)."""
    from hubensemble.handles import handle_kind, local_source, source_kind

    kind = handle_kind(handle)
    if kind == "local":
        return {"saved-model": "a saved_model.pb", "keras-file": "a model file",
                "keras-hub-preset": "a preset's weights"}.get(
                    local_source(samemodule.canonical_handle(handle)))
    if kind == "zoo":
        return None
    if kind in ("keras", "keras-hub"):
        return "a Keras weights file" if kind == "keras" else "a preset's weights"
    if source_kind(handle) == "keras-file":
        return "a model file"
    if kind == "gcs" and not handle.endswith((".tar", ".tar.gz", ".tgz")):
        return None  # a folder, copied whole: its saved_model.pb or a preset's weights
    return "an archive"


def pin_disowned(a, b) -> bool:
    """Whether entries `a` and `b`, which pin the same sha256 (compared lower-case) under
    handles that are not one (`samemodule.canonical_handle`), are shown not to be one module:
    the pin stands for different kinds of bytes for their handles (`pinned_kind`: a local
    SavedModel's saved_model.pb and a tfhub.dev archive never hash alike), or a local one's
    files do not hash to it (`local_pin_sha256`). False when they are not such a pair, when
    every local one's files hash to the pin (one module: a copy of it, the same pairing as
    before) or when neither can be told here (two remote archives: only a download tells,
    and rank takes them for one module, downloading the earlier)."""
    pin = _pin(a)
    if not pin or pin != _pin(b) or _same_handle(a, b):
        return False
    kinds = pinned_kind(a.handle), pinned_kind(b.handle)
    if None not in kinds and kinds[0] != kinds[1]:
        return True
    return any(actual is not None and actual != pin
               for actual in (local_pin_sha256(a), local_pin_sha256(b)))


def copied_pin_warnings(entries, *, across_files: bool = False) -> list[str]:
    """A warning line "warning: FILE:LINE: …" (the line of its `sha256:`) per local entry of
    `entries` (ModuleSpec-like records, catalogue order) whose sha256 another entry pins too
    under another handle while its own files hash to something else: "sha256 0123… is
    entry 'a''s pin (FILE:LINE), not the sha256 of this module's files (saved_model.pb),
    4567…: …; rank will refuse the entry (stage checksum), not rank it as 'a': write sha256:
    '4567…'" (`modulefiles`' words for a wrong pin of one module). Such a pair was
    said to be one module, ranked once ("duplicate"). With `across_files`, only an entry
    whose pin is shared by an entry of another file and by none of its own (whose warning
    its own file's check says)."""
    by_pin: dict[str, list] = {}
    for entry in entries:
        if _pin(entry):
            by_pin.setdefault(_pin(entry), []).append(entry)
    notes = []
    for pin, sharing in by_pin.items():
        if len({samemodule.canonical_handle(e.handle) for e in sharing}) < 2:
            continue
        for entry in sharing:
            others = [o for o in sharing if not _same_handle(o, entry)]
            if across_files:
                if any(_file(o) == _file(entry) for o in others):
                    continue
                others = [o for o in others if _file(o) != _file(entry)]
            actual = local_pin_sha256(entry) if others else None
            if actual is None:
                notes += _borrowed(entry, others, pin)
                continue
            if actual == pin:
                continue
            what = _pinned_what(entry)
            other = others[0]
            notes.append(
                f"warning: {handlewarnings.field_source(entry, 'sha256')}: sha256 {pin[:12]}… is "
                f"entry {other.name!r}'s pin ({handlewarnings.field_source(other, 'sha256')}), not "
                f"the sha256 of this module's files ({escaped(what)}), {actual}: an entry "
                f"copied from {other.name!r} with another handle keeps its pin; rank will "
                f"refuse the entry (stage checksum), not rank it as {other.name!r}: write "
                f"sha256: '{actual}'")
    return notes


def _borrowed(entry, others, pin) -> list[str]:
    """The warning of `entry` (one `copied_pin_warnings` cannot hash: remote) when a local
    entry of `others` has files that hash to `pin` and the pin stands for another kind of
    bytes for `entry`'s handle (`pinned_kind`): the pin is that entry's, not this one's."""
    mine = pinned_kind(entry.handle)
    owner = next((o for o in others if local_pin_sha256(o) == pin
                  and None not in (mine, pinned_kind(o.handle))
                  and pinned_kind(o.handle) != mine), None)
    if owner is None:
        return []
    return [f"warning: {handlewarnings.field_source(entry, 'sha256')}: sha256 {pin[:12]}… is the "
            f"sha256 of entry {owner.name!r}'s files ({escaped(_pinned_what(owner))}, "
            f"{handlewarnings.field_source(owner, 'sha256')}), not of {mine} as this handle "
            f"pins: an entry copied from {owner.name!r} with another handle keeps its pin; "
            f"rank will refuse the entry once downloaded (stage checksum), not rank it as "
            f"{owner.name!r}: write the sha256 of {mine} this handle gives, or leave sha256 out"]


def _pin(entry) -> str | None:
    pin = getattr(entry, "sha256", None)
    return pin.lower() if isinstance(pin, str) and pin else None


def _same_handle(a, b) -> bool:
    return samemodule.canonical_handle(a.handle) == samemodule.canonical_handle(b.handle)


def _file(entry) -> str:
    return (getattr(entry, "source", "") or "").rpartition(":")[0]


def _pinned_what(entry) -> str:
    from hubensemble.modulefiles import pinned_what

    try:
        return pinned_what(samemodule.canonical_handle(entry.handle))
    except (OSError, ValueError):
        return os.path.basename(entry.handle)
