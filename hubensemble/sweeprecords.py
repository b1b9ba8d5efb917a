"""The files a chief/worker sweep's processes leave in their run folder, and their reading:
each process's lock RUN/.sweep-<ID>.lock (formats.SWEEP_LOCK) with its holder's record beside
it, and the last chief's end record RUN/.sweep-chief.lock.ended. The locks themselves are
taken in `sweeplock`; the words said of them are `sweepwords`'. TensorFlow-free."""

from __future__ import annotations

import os
from pathlib import Path

from hubensemble import formats
from hubensemble.fileio import lock_is_held, owner_file, read_json


#: What a chief leaves beside its lock's path as it ends: RUN/.sweep-chief.lock.ended
#: (`chief_end_path`).
ENDED = ".ended"


def member_lock_path(run_dir, member: str) -> Path:
    """RUN/.sweep-<member>.lock: the lock sweep process `member` holds."""
    return Path(run_dir) / formats.SWEEP_LOCK.format(member)


def chief_record(path) -> dict | None:
    """The record a chief's (or any sweep process's) lock file `path` has beside it
    (`fileio.owner_file`), whatever its pid (a killed chief's stays), or None when there is
    none or it is unreadable."""
    try:
        record = read_json(owner_file(path))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def chief_end_path(run_dir) -> Path:
    """RUN/.sweep-chief.lock.ended: what the last chief on run `run_dir` left as it ended
    (`sweeplock.member_lock` writes it; this module and sweeplock read it), {"command",
    "sweep", "oracle", "tuner_id", "host", "pid", "pid_start", "since", "ended" (local
    time), "status": "done"
    (it ended normally), "stopped" (Ctrl-C, SIGTERM) or "error" (a record without one is an
    error's: written before "done" was), "reason" (an error's stop line's words, a stop's
    `exits.STOP_WORDS`), "oracle_taken" (it could not listen at its address), "trials" (the
    trial ids it served, `sweeplock.chief_serves`, when it planned them)}; a chief starting removes
    it, as does a stand-alone sweep of its sweep (`sweeplock.supersede_chief_end`) and `fit
    --restart`."""
    return Path(os.fspath(member_lock_path(run_dir, "chief")) + ENDED)


def end_record(run_dir, sweep: str | None) -> dict | None:
    """The `chief_end_path` record on run `run_dir` when no chief runs there now (its lock
    not held) and it is of sweep `sweep` (when given; an "A+B" chief's is A's and B's), else
    None (none, unreadable, another sweep's)."""
    try:
        record = read_json(chief_end_path(run_dir))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or lock_is_held(member_lock_path(run_dir, "chief")):
        return None
    theirs = record.get("sweep")
    if sweep and isinstance(theirs, str) and sweep not in (theirs, *theirs.split("+")):
        return None
    return record
