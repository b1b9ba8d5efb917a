"""Whether a candidate's files are the ones its writer (tune, or distill for a student) wrote:
trial.json's WRITTEN record, {file name: [bytes, modification time in ns, sha256 hex]} of
each file `candidate.write_candidate` wrote (`record_written`), checked cheaply
(`changed_files`): a file of the recorded size and modification time is the one written; any
other is digested (once per file and process: `weightsfile.file_digest`) and said by its
sha256 (`digest_words`), as the weights file's own record is (`weightsfile.changed_since`,
export's and the ensemble's check): a file cut short was said by its size here and by its
sha256 there, one change told two ways. A file edited, cut
short or replaced since was read as the trial's own by every stage: `fit` resumed saying
"tune: done before, reused" over a weights file or a test table damaged since. A record
written before WRITTEN existed is not checked. No TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

from hubensemble import weightsfile

#: trial.json's field of the files its writer wrote (see the module's docstring).
WRITTEN = "written"


def record_written(record: dict, folder, names) -> None:
    """Sets trial.json `record`'s WRITTEN of the files `names` (file names) just written in
    `folder`; a name whose file is not there or cannot be read is left out."""
    written = {}
    for name in names:
        path = Path(os.fspath(folder)) / name
        try:
            st = os.stat(path)
        except OSError:
            continue
        digest = weightsfile.file_digest(path)
        if digest:
            written[name] = [st.st_size, st.st_mtime_ns, digest]
    record[WRITTEN] = written


def changed_files(record, folder, writer: str = "tune", skip=()) -> list[str]:
    """Why each file trial.json `record` lists in WRITTEN is not the one `writer` wrote in
    `folder`, one text per file ("test_probs.npy is not the one tune wrote (sha256 A…
    recorded in trial.json, B… now: edited or replaced since)", `digest_words`; a file of
    the recorded size and modification time is not digested: the one written); [] when
    each is, or the record has no WRITTEN (a
    trial of an older hubensemble). A file that is gone and a name in `skip` (its damage said
    already) are left to the other checks. A WRITTEN edited into no object, or an entry into
    another form, is said too (the files cannot be checked): they read as a trial of an
    older hubensemble, reused as "done before"."""
    from hubensemble.fileio import json_kind

    written = record.get(WRITTEN) if isinstance(record, dict) else None
    if written is None:
        return []
    if not isinstance(written, dict):  # a hand edit: the files cannot be checked
        return [f"trial.json's \"{WRITTEN}\" record is {json_kind(written)}, not the object "
                f"{writer} wrote (edited by hand?): its files cannot be checked"]
    found = []
    for name, entry in written.items():
        if name in skip:
            continue
        if (not isinstance(name, str) or os.path.basename(name) != name
                or name in ("", ".", "..") or not _entry(entry)):
            found.append(f"trial.json's \"{WRITTEN}\" entry {name!r} is not the [bytes, "
                         f"time, sha256] {writer} wrote (edited by hand?): it cannot be "
                         "checked")
            continue
        path = Path(os.fspath(folder)) / name
        size, mtime_ns, digest = entry
        try:
            st = os.stat(path)
        except OSError:
            continue  # gone: `Candidate.problems` says it is missing
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue  # as written: not read (a touched file is digested, and is no change)
        now = weightsfile.file_digest(path)
        if now != digest:
            found.append(digest_words(f"{name} is not the one {writer} wrote", digest, now))
    return found


def digest_words(what: str, recorded: str, now: str | None) -> str:
    """"WHAT (sha256 A… recorded in trial.json, B… now: edited or replaced since)", A and B
    the first 12 hex digits of the sha256 `recorded` and the file's `now` (None: it cannot be
    read, "unreadable…"): the words of a candidate's file that is not the one its writer
    wrote, the size being the cheap test of it, not the words (`changed_files`; the weights
    file's `weightsfile.changed_since` says the same)."""
    return (f"{what} (sha256 {recorded[:12]}… recorded in trial.json, "
            f"{(now or 'unreadable')[:12]}… now: edited or replaced since)")


def written_digest(record, name: str) -> str | None:
    """The sha256 (hex) trial.json `record` records its writer wrote file `name` with (its
    WRITTEN entry), or None when it records none (a trial of an older hubensemble, an entry
    edited into another form). What the ensemble chose a member by (its validation table's)
    and export compares, so a trial run again since is told from the one chosen."""
    written = record.get(WRITTEN) if isinstance(record, dict) else None
    entry = written.get(name) if isinstance(written, dict) else None
    return entry[2] if _entry(entry) else None


def _entry(entry) -> bool:
    return (isinstance(entry, list) and len(entry) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in entry[:2])
            and isinstance(entry[2], str))
