"""How the last command on a run folder ended when it was killed without a word (SIGKILL: Linux's
OOM killer), said as a run's lock is taken (`rundir.Run.lock`); split out of memory.py, whose
rules say how much memory a stage needs."""

from __future__ import annotations

import logging
import os
import re
import socket

#: A stage's first and last lines in RUN/log.txt (pipeline's "rank: starting", "rank: done in
#: 31.3 s" / "rank: reused"): what a killed command's log ends between.
_STAGE_LINE = re.compile(r" INFO hubensemble\.\w+: (\w+): (starting|done|reused|failed)\b")
#: A record of a hubensemble logger in RUN/log.txt (`runlog.attach`'s format "%(asctime)s
#: %(levelname)s %(name)s: %(message)s"): its time and words. TensorFlow's C++ start-up lines
#: ("E0000 00:00:… cuda_platform.cc:52] failed call to cuInit…", on a machine without a GPU)
#: reach the file through stderr too; quoted as a killed command's last line they read as a
#: CUDA failure (a new-user check after a kill -9 of a background tune).
_OWN_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ [A-Z]+ "
                       r"hubensemble(?:\.\w+)*: (.*)")


def killed_before(run_dir, lock=None) -> str | None:
    """Words for the last command that held lock file `lock` (default RUN/.fit.lock, the
    run's, `formats.FIT_LOCK`; a chief/worker sweep process's own, RUN/.sweep-<ID>.lock,
    `sweeplock.member_lock_path`) of run folder `run_dir` when it ended without a word: the
    lock's record (LOCK.holder, `fileio.owned_lock`) is still there, names a process of this
    host that has gone, and nobody holds the lock. Every ending a Python handler sees (its
    work done, an error, Ctrl-C, SIGTERM: `cli.sigterm_interrupts`) removes that record;
    SIGKILL does not, and SIGKILL is what Linux's OOM killer sends when the machine's or the
    cgroup's memory runs out (measured: a fit under a 2 GiB cgroup, docs/reliability.md
    "Small machines"): the shell said "Killed", the re-run nothing. Names the stage RUN/log.txt
    last says began without an end ("rank: starting") since that process's start ("since"),
    its last line since then otherwise (the last record of a hubensemble logger: not
    TensorFlow's C++ lines, which reach the file through stderr); neither for a sweep
    process's lock (a chief's or a worker's: they share RUN/log.txt, whose lines name no
    process, so the last one may be another's). None when no such record
    is there, it is another host's or unreadable, or the lock is held. Reads files only."""
    from hubensemble import formats
    from hubensemble.fileio import lock_is_held, owner_file, owner_words, pid_alive, read_json
    from hubensemble.text import absolute, stamp_time

    lock = os.path.join(os.fspath(run_dir), formats.FIT_LOCK) if lock is None else lock
    try:
        record = read_json(owner_file(lock))
    except (OSError, ValueError):
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    if (not isinstance(pid, int) or record.get("host") != socket.gethostname()
            or pid_alive(pid, record.get("pid_start"), record.get("since"))
            or lock_is_held(lock)):
        return None
    try:  # its own lines only: log.txt stamps local time, "2026-12-06 00:01:18,326"
        since = stamp_time(record.get("since")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        since = ""
    began, last = None, None
    # A chief and its workers write one RUN/log.txt and its lines name no process: a sweep
    # process's last line there may be another's ("waiting for the chief", a worker's, was
    # quoted as a killed chief's: a new-user check). Only the run's lock holder's are its own.
    try:
        if record.get("tuner_id"):
            raise FileNotFoundError  # its lines cannot be told from the others': none quoted
        with open(os.path.join(os.fspath(run_dir), "log.txt"), encoding="utf-8",
                  errors="replace") as f:
            for line in f:
                if line[:19] < since:  # an earlier command's (a fit killed in tune before)
                    continue
                if _OWN_LINE.match(line):  # not TensorFlow's, not a traceback's lines
                    last = line.rstrip("\n")
                found = _STAGE_LINE.search(line)
                if found:
                    began = found.group(1) if found.group(2) == "starting" else None
    except OSError:
        pass
    if began:
        where = f"in its {began} stage (RUN/log.txt: '{began}: starting', no end)"
    elif last:  # "2026-12-06 00:07:32,473 INFO hubensemble.cli: Task …": its time and words
        stamp, said = _OWN_LINE.match(last).groups()
        where = (f"after its last line in RUN/log.txt ({stamp}: "
                 f"'{said[:70] + '…' if len(said) > 70 else said}')")
    else:
        where = ""
    command = record.get("command") or "command"
    if record.get("tuner_id"):  # a sweep's process: the lock of its tuner id
        command += f" --tuner-id {record['tuner_id']}"
    return (f"the last {command} on {absolute(run_dir)} ({owner_words(record)}) ended without a "
            f"word{' ' + where if where else ''}: it was likely killed, e.g. by Linux's OOM "
            "killer when memory ran out (`dmesg | grep -i -e oom -e killed` or `journalctl -k` "
            "says so; see docs/reliability.md \"Small machines\" for less memory); what it "
            "finished is kept")


def say_killed(run_dir, lock) -> None:
    """Logs `killed_before(run_dir, lock)` as a WARNING when there is something to say: for
    `rundir.Run.lock`, the one place every command and stage function that writes a run
    folder takes its lock (the command line's, `fit()`, `run_tune`, `export_ensemble`, …;
    a sweep process its own, `lock`), before that lock's record is rewritten, inside the
    run's log when one is open (the command line's, fit's): RUN/log.txt says it too."""
    words = killed_before(run_dir, lock)
    if words:
        logging.getLogger("hubensemble.memory").warning("%s", words)  # (its name before the split)
