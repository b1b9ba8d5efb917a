"""The locks of a chief/worker sweep's processes (`tune --tuner-id ID --oracle HOST:PORT`) on
their run folder: each holds RUN/.sweep-<ID>.lock (formats.SWEEP_LOCK) for its whole run, so a
command that writes into the folder (holding RUN/.fit.lock, `rundir.Run.lock`) is refused
while a sweep runs, and a sweep process while such a command runs, where neither was: the
sweep's processes took no lock, and `ensemble --run R`, `fit --restart` on R or a second
chief ran beside the sweep. The processes of one sweep do not refuse each other (each has
its own file); a second process with the same --tuner-id (a second chief) is refused.

Both sides take their own lock first and then look at the other's (`check_member_free`,
`check_no_sweep`): of two started together at least one sees the other, so they never both
run. Kernel locks (`fileio.owned_lock`): a killed process's lock drops with it.
TensorFlow-free."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import socket
import sys
import threading
from pathlib import Path

from hubensemble import formats
from hubensemble.errors import RunError
from hubensemble.fileio import (atomic_write_json, file_lock, lock_is_held, lock_owner,
                                owned_here, owned_lock, owner_file, owner_words, pid_alive,
                                read_json)
from hubensemble.lockwords import locked_advice, option_word
from hubensemble.sweeprecords import (ENDED, chief_end_path, chief_record, end_record,
                                      member_lock_path)
# The words said of the sweep's processes are sweepwords' (moved there); importable from
# here as before (tune.tuner, tune.distributed, tests).
from hubensemble.sweepwords import (_SAID, REASON_CHARS, chief_cannot_listen,  # noqa: F401
                                    chief_words, reason_words, say_stale_chief,
                                    stale_chief_note, sweep_options, without_chief,
                                    worker_plan_differs, worker_without_chief)
from hubensemble.text import absolute, names_listed, shown_time, time_stamp


#: A tuner id (Keras Tuner's KERASTUNER_TUNER_ID): chief, tuner0, … (a file name's part).
TUNER_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")
#: The trial ids each chief's lock held in this process serves (`chief_serves`), by its path.
_SERVED: dict[str, list[str]] = {}


def sweep_member(tuner_id: str | None, oracle_address: str | None) -> str | None:
    """The tuner id of a `tune` call that takes part in a chief/worker sweep (`tuner_id`,
    else $KERASTUNER_TUNER_ID when it is distributed: an address or $KERASTUNER_ORACLE_IP),
    "chief" or "tuner0", …; None for a stand-alone call (it takes the run's lock) and for a
    distributed one without an id or with a malformed one (`tune.distributed.kerastuner_env`
    refuses them)."""
    distributed = tuner_id or oracle_address or os.environ.get("KERASTUNER_ORACLE_IP")
    member = tuner_id or (os.environ.get("KERASTUNER_TUNER_ID") if distributed else None)
    return str(member) if member and TUNER_ID_RE.fullmatch(str(member)) else None


def member_record(sweep: str | None, oracle_address: str | None,
                  plan: dict | None = None) -> dict:
    """What a sweep process records beside its lock: {"command": "tune", "sweep", "oracle"}
    (the address, else $KERASTUNER_ORACLE_IP:$KERASTUNER_ORACLE_PORT, else None), and with
    `plan` (the command line's {"budget", "seed", "profile", "modules"}: what its trial ids
    depend on) "plan", so that a worker plans its trials before TensorFlow loads
    (`sweepend.worker_stop`)."""
    ip, port = (os.environ.get(k) for k in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"))
    oracle = oracle_address or (f"{ip}:{port}" if ip and port else ip)
    record = {"command": "tune", "sweep": sweep, "oracle": oracle}
    return {**record, "plan": plan} if plan is not None else record


def member_of(lock) -> str:
    """The tuner id whose lock file is `lock` (`member_lock_path`'s inverse)."""
    prefix, suffix = formats.SWEEP_LOCK.split("{}")
    return Path(lock).name[len(prefix):-len(suffix)]


def _lock_files(run_dir) -> list[Path]:
    pattern = os.path.join(glob.escape(os.fspath(run_dir)), formats.SWEEP_LOCK.format("*"))
    return [Path(name) for name in sorted(glob.glob(pattern))]


def is_member_file(name: str) -> bool:
    """Whether file name `name` is a sweep process's lock (RUN/.sweep-<ID>.lock) or a record
    beside it (`fileio.owner_file`, `chief_end_path`): entries of the run, as RUN/.fit.lock
    is."""
    prefix, suffix = formats.SWEEP_LOCK.split("{}")
    for record in (".holder", ENDED):  # (the chief's end record, `chief_end_path`, too)
        name = name[:-len(record)] if name.endswith(".lock" + record) else name
    return (name.startswith(prefix) and name.endswith(suffix)
            and bool(TUNER_ID_RE.fullmatch(name[len(prefix):-len(suffix)])))


def remove_free_locks(run_dir) -> list[str]:
    """Removes the sweep locks on run `run_dir` that no process holds (each taken first, and
    removed while held: `fileio.file_lock`) and their records (a chief's end record,
    `chief_end_path`, too); one held now stays (a sweep
    process starting: it refuses itself, seeing the caller's lock). For `fit --restart`,
    which holds the run's lock and found no sweep running (`check_no_sweep`). Returns the
    names removed. OSError as `file_lock` (a folder that cannot be written)."""
    removed = []
    for path in _lock_files(run_dir):
        try:
            with file_lock(path, timeout=0):
                for name in (owner_file(path), path):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(name)
                        removed.append(os.path.basename(name))
        except TimeoutError:
            continue
    folder = glob.escape(os.fspath(run_dir))
    records = [name for end in (".holder", ENDED)
               for name in glob.glob(os.path.join(folder, formats.SWEEP_LOCK.format("*") + end))]
    for record in records:  # a record whose lock file has gone (a chief's end record, too)
        if not os.path.exists(record[:-len(ENDED if record.endswith(ENDED) else ".holder")]):
            with contextlib.suppress(FileNotFoundError):
                os.remove(record)
                removed.append(os.path.basename(record))
    return sorted(removed)


def held_members(run_dir) -> list[tuple[Path, dict | None]]:
    """(lock file, its holder's record or None) of every other process of a sweep holding
    its lock on run `run_dir` now, the chief first."""
    found = [(path, lock_owner(path)) for path in _lock_files(run_dir)
             if not owned_here(path) and lock_is_held(path)]
    found.sort(key=lambda item: member_of(item[0]) != "chief")
    return found


def sweep_running(run_dir, members, command: str | None) -> RunError:
    """The refusal of `command` (None: not known) on run `run_dir` while sweep processes
    `members` (`held_members`, not empty) run: the sweep, its chief's pid (or that no chief
    runs), its workers and the way on (`lockwords.locked_advice`)."""
    records = [owner or {} for _, owner in members]
    sweep = next((r["sweep"] for r in records if r.get("sweep")), None)
    oracle = next((r["oracle"] for r in records if r.get("oracle")), None)
    about = ", ".join(filter(None, (f"sweep {sweep}" if sweep else None,
                                    f"oracle {oracle}" if oracle else None)))

    def who(path, owner):
        member = member_of(path)
        said = owner_words(owner)
        return f"{member} ({said})" if said else member

    chief = [owner_words(o) for p, o in members if member_of(p) == "chief"]
    workers = [who(p, o) for p, o in members if member_of(p) != "chief"]
    gone = None if chief else gone_chief(run_dir)
    parts = [(f"its chief: {chief[0]}" if chief[0] else "its chief") if chief else
             gone["words"] if gone else "no chief",
             f"{'worker' if len(workers) == 1 else 'workers'} {', '.join(workers)}"
             if workers else None]
    locks = names_listed(absolute(p) for p, _ in members)
    return RunError(f"a chief/worker tune sweep is running on {absolute(run_dir)} "
                    f"({about + '; ' if about else ''}"
                    f"{'; '.join(filter(None, parts))}; they hold {locks}); "
                    + (without_chief(run_dir, members, sweep, oracle) if gone else "")
                    + locked_advice(command, run_dir))


def gone_chief(run_dir) -> dict | None:
    """{"words": what to say of it} when the chief of a sweep on run `run_dir` has gone
    without ending (killed: its RUN/.sweep-chief.lock is there and free; a chief that ends
    removes it, `member_lock`), with its pid and start when its record says them; None when
    no chief was killed there."""
    path = member_lock_path(run_dir, "chief")
    if not path.exists() or lock_is_held(path):
        return None
    try:
        record = read_json(owner_file(path))
    except (OSError, ValueError):
        record = None
    said = owner_words(record if isinstance(record, dict) else None)
    return {"words": f"its chief has gone without ending ({said + ', ' if said else ''}"
                     f"killed: {absolute(path)} is free)"}


def _listening(address: str, timeout: float = 2.0) -> bool:
    """Whether something accepts a TCP connection at "HOST:PORT" `address` now."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _host_port(address) -> tuple[str, str]:
    """(host without IPv6 brackets, port) of "HOST:PORT" `address`, to compare two."""
    host, _, port = str(address).rpartition(":")
    return host.strip("[]"), port


def chief_ended(run_dir, sweep: str | None = None, pending=None) -> str | None:
    """What to say of the last chief on run `run_dir` when it has ended and no chief runs
    there now (its `chief_end_path` record is there, its lock not held), to a worker of
    sweep `sweep` (when given: another sweep's record is None; an "A+B" chief's is A's and
    B's) whose `pending` trial ids (None: not known) have no complete candidate. Stopped
    with an error: "its chief (pid 4242 on host box1, since …) stopped with an error at …:
    REASON"; stopped (Ctrl-C, SIGTERM): "its chief (…) was stopped at … (interrupted)
    before its sweep was over" (times in `text.shown_time`'s form). Ended normally (its
    sweep over: every trial it handed out ended), when
    `pending` is given, not empty, and every one of them was in the plan it served, so no
    chief will hand them out until one is started again: "its chief (…) ended normally at
    …, its sweep over (every trial it handed out has ended), and 2 of its trials have no
    complete candidate (e.g. T: a trial that ended without one)". None otherwise: a worker
    with trials that chief did not have (a larger --budget, a new sweep started workers
    first) waits for its own chief."""
    record = end_record(run_dir, sweep)
    if record is None:
        return None
    when = f" at {shown_time(record['ended'])}" if record.get("ended") else ""
    if record.get("status") == "stopped":  # Ctrl-C, SIGTERM: a stop, not an error
        return (f"{chief_words(record)} was stopped{when} "
                f"({record.get('reason') or 'interrupted'}) before its sweep was over")
    if record.get("status", "error") != "done":
        return f"{chief_words(record)} stopped with an error{when}: {reason_words(run_dir, record)}"
    served = record.get("trials")
    pending = list(pending or ())
    if not pending or not isinstance(served, list) or not set(pending) <= set(served):
        return None
    return (f"{chief_words(record)} ended normally{when}, its sweep over (every trial it "
            f"handed out has ended), and {len(pending)} of its trials "
            f"{'has' if len(pending) == 1 else 'have'} no complete "
            f"candidate (e.g. {pending[0]}: a trial that ended without one)")


def starting_chief_ended(run_dir, sweep: str | None = None, pending=None,
                         oracle: str | None = None) -> str | None:
    """`chief_ended`'s words that stop a worker as it starts (before it waits for its
    chief): only an error of a chief that could not listen at the worker's `oracle`
    ("HOST:PORT"; None: any), its "oracle_taken": the worker too is started again with a
    free address (`worker_without_chief`). None for any other end: the worker says its
    words at once and waits for a chief (`chief_start_watch`'s `stale`, `say_stale_chief`),
    so the cluster can be started again in any order, after a fix, a stop, or a normal end
    with trials of its plan left. A normal end's words stopped the worker once no chief had
    taken its lock within a 5 s grace, so a cluster started again worker first after a
    normal end worked only with the chief started within those seconds."""
    words = chief_ended(run_dir, sweep, pending)
    record = end_record(run_dir, sweep) if words else None
    if record is not None and record.get("oracle_taken") and (
            oracle is None or _host_port(oracle) == _host_port(record.get("oracle"))):
        return words
    return None


def chief_serves(run_dir, trials) -> None:
    """Notes that the chief of run `run_dir`, holding its lock in this thread (`member_lock`;
    else nothing), serves the trial ids `trials` (a part of a "+" sweep adds its own): its
    end record lists them, so that a worker told the chief ended normally is one whose
    pending trials were all its (`chief_ended`)."""
    path = member_lock_path(run_dir, "chief")
    if owned_here(path) is not None:
        _SERVED.setdefault(os.path.realpath(path), []).extend(str(t) for t in trials)


def supersede_chief_end(run_dir, sweep: str) -> bool:
    """Removes the last chief's end record (`chief_end_path`) on run `run_dir` when it is of
    sweep `sweep` (or of an "A+B" sweep with `sweep` a part) and no chief runs there: a
    stand-alone sweep of it starts (`tune.stage`), after which its words (an error the
    chief stopped with, or its sweep over) are no longer true, and a worker of a later
    chief/worker launch started before its chief stopped with them. Returns whether it was
    removed."""
    if end_record(run_dir, sweep) is None:
        return False
    with contextlib.suppress(OSError):
        os.remove(chief_end_path(run_dir))
        return True
    return False


def chief_gone(run_dir, oracle: str | None) -> str | None:
    """What to say of the chief of the sweep on run `run_dir` when it has gone, for a worker
    waiting for its answer (`tune.chiefwatch`): killed (its RUN/.sweep-chief.lock is there,
    and its pid on this host has gone, or on another host the lock is free: a chief that ends
    removes it), "its chief (pid 4242 on host box1, since …) has gone without ending (killed:
    LOCK is free)"; ended (no lock file, and nothing listens at `oracle`, "HOST:PORT"). None
    while it runs, and when nothing tells (no lock file, no address). One look; a chief
    starting has its lock before its record, so a caller looks twice before it believes it."""
    path = member_lock_path(run_dir, "chief")
    if path.exists():
        record = chief_record(path) or {}
        pid, host = record.get("pid"), record.get("host")
        if host == socket.gethostname() and isinstance(pid, int):
            if pid_alive(pid, record.get("pid_start"), record.get("since")):  # (not a reused
                return None  # pid's process: `fileio.pid_alive`)
        elif lock_is_held(path):
            return None
        return chief_ended(run_dir) or (f"{chief_words(record)} has gone without ending "
                                        f"(killed: {absolute(path)} is free)")
    ended = chief_ended(run_dir)  # its reason, which it left as it stopped (`member_lock`)
    if ended:
        return ended
    if oracle and not _listening(oracle):
        return (f"its chief has ended ({absolute(path)} is gone, and nothing listens at "
                f"{oracle})")
    return None


def chief_start_watch(run_dir, oracle: str, sweep: str | None = None, pending=None):
    """(stale, look) for a worker waiting for its chief to listen at `oracle` ("HOST:PORT";
    `tune.distributed.wait_for_chief`), on run `run_dir`. `stale`: `chief_gone`'s words when,
    as the wait begins, the chief's lock is there and its process gone (a chief killed
    before: perhaps the one this worker was started with, perhaps an earlier one that is
    being started again, which the worker cannot tell apart: it says so and waits), or,
    without a lock file, `chief_ended`'s words of the last chief's end record (an error or a
    stop, said at once: the worker waits for one started again, after a fix), else
    None. `look()`, asked while the worker waits: what to say of a chief this wait has seen
    since that has gone, killed (its lock there and its process gone, with another record
    than the `stale` one: a chief started and killed meanwhile) or ended (another end
    record than the one there as the wait began: a chief started and ended since; a chief seen
    running whose lock file is gone while nothing listens at `oracle`: it stopped before it
    listened, an error its own output names; with the reason it left when it did, or that
    it ended normally with this worker's `pending` trials all its own, `chief_ended`: of
    sweep `sweep`, when given, as one started and ended between two looks is never seen
    running); None while it runs, before one starts, and
    while only the stale lock is there. One look each call; a caller looks twice before it
    believes it (`chief_gone`)."""
    path = member_lock_path(run_dir, "chief")
    ended = end_record(run_dir, sweep)  # the last chief's, said as stale: not a stop
    stale = chief_gone(run_dir, None) if path.exists() else chief_ended(run_dir, sweep, pending)
    stale_record = chief_record(path) if stale else None
    seen = []  # the record of the chief last seen running

    def look() -> str | None:
        if path.exists():
            record = chief_record(path)
            gone = chief_gone(run_dir, None)
            if gone is None:
                seen[:] = [record]
                return None
            return None if stale and record == stale_record else gone
        if end_record(run_dir, sweep) != ended:  # one started and ended since
            words = chief_ended(run_dir, sweep, pending)
            if words:
                return words
        if seen and not _listening(oracle):
            return (f"{chief_words(seen[0])} has ended before it listened at {oracle} "
                    f"({absolute(path)} is gone: its own output says why it stopped)")
        return None

    return stale, look


def check_no_sweep(run_dir, command: str | None) -> None:
    """RunError (`sweep_running`) when a sweep process holds its lock on run `run_dir`;
    nothing in a process of the sweep (it holds a lock of its own there)."""
    if any(owned_here(path) for path in _lock_files(run_dir)):
        return
    members = held_members(run_dir)
    if members:
        raise sweep_running(run_dir, members, command)


def member_taken(run_dir, member: str, owner: dict | None) -> RunError:
    """The refusal of sweep process `member` when another process has that tuner id."""
    lock = absolute(member_lock_path(run_dir, member))
    said = owner_words(owner)
    flag = option_word("--tuner-id", "tuner_id")  # run_tune's keyword from Python
    other = option_word(f"tune --tuner-id {member}", f"run_tune(tuner_id={member!r})")
    return RunError(f"another {other} is running on {absolute(run_dir)} "
                    f"({said + '; ' if said else ''}it holds {lock}); each process of a "
                    f"sweep needs its own {flag} (one chief; tuner0, tuner1, … for the "
                    f"workers): wait for that one to end, or pass another {flag}")


@contextlib.contextmanager
def member_lock(run_dir, member: str, record: dict, check_free):
    """Sweep process `member` ("chief", "tuner0", …) holds RUN/.sweep-<member>.lock while the
    block runs, `record` ({"command": "tune", "sweep", "oracle"}) beside it
    (`fileio.owned_lock`), then calls `check_free()` (the run's lock is free: raises
    RunError naming the command that holds it). RunError (`member_taken`) when another
    process holds the same member's lock. A nested use in the holding process is a no-op.
    The lock file is removed as the block ends, while still held (`fileio.file_lock`): a
    sweep of many workers left a .sweep-<ID>.lock per tuner id in the run folder.

    The chief, holding its lock, removes an earlier chief's end record (`chief_end_path`)
    and writes its own before it lets the lock go: "error" when it stops with an error (an
    exception out of the block, or the command line's stop line logged in it:
    `terminal.stopped`), else "done" with the trials it served (`chief_serves`). A worker
    waiting for it stops at once with the chief's reason, or (its trials all the chief's)
    that it ended (`chief_ended`), and one started after says so and waits for a chief
    started again, where it waited the whole $HUBENSEMBLE_CHIEF_TIMEOUT (3600 s by default)
    in silence."""
    path = member_lock_path(run_dir, member)
    nested = owned_here(path) is not None
    with owned_lock(path, {**record, "tuner_id": member},
                    lambda owner: member_taken(run_dir, member, owner), remove=True):
        if member != "chief" or nested:
            check_free()
            yield
            return
        end = chief_end_path(run_dir)
        with contextlib.suppress(OSError):  # an earlier chief's: this one runs now
            os.remove(end)
        _SERVED[os.path.realpath(path)] = []  # (the command line's name, or run_tune's)
        try:
            with _end_recorded(end, path):
                check_free()
                yield
        finally:
            _SERVED.pop(os.path.realpath(path), None)


class _StopLine(logging.Handler):
    """Keeps the last stop line (`terminal.stopped`'s ERROR record) logged in this thread,
    and the stop (Ctrl-C, SIGTERM) or exception being handled as it was."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.thread, self.line, self.exc = threading.get_ident(), None, None

    def emit(self, record):
        from hubensemble.errors import pending_stop
        from hubensemble.terminal import PRINTED

        if record.thread == self.thread and getattr(record, PRINTED, False):
            self.line = record.getMessage()
            self.exc = pending_stop() or sys.exc_info()[1]


@contextlib.contextmanager
def _end_recorded(end: Path, lock: Path):
    """Writes the chief's end record `end` (`chief_end_path`, with the record of its lock
    `lock`, held here) as the block ends: an error when it stops with one (an exception out
    of it, or a stop line logged in it: the command line says the error inside the run's
    lock and returns its exit code), else done."""
    handler = _StopLine()
    logger = logging.getLogger("hubensemble")
    logger.addHandler(handler)
    try:
        yield
    except BaseException as e:
        _write_end(end, lock, e, None)
        raise
    else:
        _write_end(end, lock, handler.exc, handler.line, done=handler.line is None)
    finally:
        logger.removeHandler(handler)


def _write_end(end: Path, lock: Path, exc: BaseException | None, line: str | None,
               done: bool = False) -> None:
    """Writes `end`: the holder's record of `lock` with "ended", "status" ("done" when
    `done`, "stopped" for a stop, else "error"), "oracle_taken" (the error of a chief that
    could not listen, `tune.distributed`, says so), the trials it served (`chief_serves`)
    and, for an error or a stop, "reason": the words of stop `exc` (Ctrl-C, SIGTERM: the
    command line's first words) or of its stop `line` ("hubensemble: error: …", its prefix
    left out), else the exception's message."""
    from hubensemble.errors import shown
    from hubensemble.exits import STOP_WORDS

    status = "done" if done else "error"
    if done:
        reason = None
    elif isinstance(exc, KeyboardInterrupt):
        status = "stopped"
        reason = next(said for kind, said in STOP_WORDS if isinstance(exc, kind))
    elif line is not None:
        reason = line.removeprefix("hubensemble: ").removeprefix("error: ")
    else:
        reason = shown(exc) if exc is not None and str(exc) else type(exc).__name__
    held = {k: v for k, v in (owned_here(lock) or {}).items() if k in (
        "command", "sweep", "oracle", "tuner_id", "host", "pid", "pid_start", "since")}
    with contextlib.suppress(OSError):  # (a run folder that cannot be written: as before)
        atomic_write_json(end, {**held, "ended": time_stamp(),
                                "status": status,
                                "oracle_taken": bool(getattr(exc, "oracle_taken", False)),
                                "reason": reason,
                                "trials": _SERVED.get(os.path.realpath(lock)) or None})
