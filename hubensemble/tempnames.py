"""Names of temp files and folders, and the writers they name: a temp entry says which
process wrote it (`writer_tag`), so a dead writer's leftovers are told from a live one's
(`remove_stale_temp_dirs`); a name made of a user's name and a suffix fits the file system's
255 bytes (`fitted_name`). `hubensemble.fileio` re-exports all of it."""

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile

from hubensemble.text import absolute, stamp_time

# Temp files carry this marker so a run directory can be checked for leftovers, and so
# nothing that lists results (candidates, cache entries) ever mistakes one for a result.
TEMP_MARKER = ".tmp-"
#: The longest name of one file or folder, in bytes: 255 on ext4, xfs, btrfs, tmpfs, APFS
#: (NAME_MAX, limits.h); a longer one fails with ENAMETOOLONG.
NAME_MAX = 255
#: What `fileio.replace_dir` adds to a temp folder's name as it moves the old folder aside.
OLD = "-old"


def fitted_name(name: str, suffix: str = "", *, prefix: str = "", spare: int = 0) -> str:
    """`prefix` + `name` + `suffix`, a file or folder name made from a user's `name`, when its
    bytes (os.fsencode: UTF-8 on Linux) fit NAME_MAX - `spare` (room for what is added later:
    `OLD`, ".holder"); else `name` cut after a whole character to fit, followed by "~" and 8
    hex digits of its sha256 (`name_mark`), so two long names that start alike stay apart
    (two exports' temp folders, two locks) and `remove_stale_temp_dirs` still finds a cut
    one. Before, a name near 255 bytes plus a suffix (".tmp-" and a writer's ~40-byte tag,
    ".lock") failed with OSError ENAMETOOLONG where the name itself fits. Raises ValueError
    when `prefix` and `suffix` alone leave no room."""
    whole = prefix + name + suffix
    limit = NAME_MAX - spare
    if len(os.fsencode(whole)) <= limit:
        return whole
    mark = name_mark(name)
    room = limit - len(os.fsencode(prefix + mark + suffix))
    if room < 1:
        raise ValueError(f"no room for a name in {limit} bytes beside {prefix!r} and {suffix!r}")
    cut = name
    while len(os.fsencode(cut)) > room:  # a character at a time: never half a UTF-8 one
        cut = cut[:-1]
    return prefix + cut + mark + suffix


def name_mark(name: str) -> str:
    """"~" and the first 8 hex digits of the sha256 of `name`'s bytes: what `fitted_name` puts
    after a name it cut."""
    return "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:8]


#: Seconds a process may have started after the "since" (local time, to the second) its
#: record says it held a lock from and still be the one that wrote it: 26 hours, the span of
#: the world's UTC offsets (-12 h .. +14 h), so a writer and a reader of another time zone,
#: or a clock change of daylight saving time between them, never take a live holder for gone
#: (a "since" written without its offset, before `text.time_stamp`, names no zone).
SINCE_SLACK = 26 * 3600
#: A process's start read from /proc is rounded to the clock tick, the boot time to the
#: second: compared with a file's time (`pid_alive`'s numeric `since`), seconds of slack.
START_SLACK = 2.0


def _stat_fields(pid) -> list[bytes]:
    """/proc/PID/stat's fields after the command name (proc(5): field 3, the state, first;
    "pid (comm) S …", and comm may hold ")"). Raises OSError when it cannot be read (no such
    process, no /proc: macOS, Windows)."""
    with open(f"/proc/{int(pid)}/stat", "rb") as f:
        return f.read().rpartition(b")")[2].split()


def process_start(pid) -> int | None:
    """When process `pid` of this host started: /proc/PID/stat field 22 (starttime, clock
    ticks after boot; proc(5)), which a later process given the same pid does not share;
    None when it cannot be read (no such process, no /proc: macOS, Windows)."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, ValueError, IndexError):
        return None


def _started_at(pid) -> float | None:
    """Process `pid`'s start as seconds since the epoch (`process_start` over the kernel's
    clock ticks per second, plus /proc/stat's btime), or None when it cannot be read."""
    ticks = process_start(pid)
    try:
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK") if ticks is not None else None
    except (OSError, ValueError, StopIteration):
        return None


def pid_alive(pid, start=None, since=None):
    """Whether process `pid` on this host still runs (ours always does, unless `start` says
    another). A zombie (ended, killed, and not yet reaped by its parent: Linux's
    /proc/PID/stat state Z or X, proc(5)) does not: a chief/worker sweep's chief started by a
    launcher that waits on its workers first stays one after a kill -9, and its workers
    waited for it (`sweeplock.chief_gone`).

    A pid is given again to a later process once its own has gone: `start` (the recorded
    `process_start` of the process meant) or, for a record without one (hubensemble before
    it recorded them), `since` (its `text.time_stamp`, local time with its offset, or without
    one as written before: `text.stamp_time`; the process ran by
    then) tell that one from the process that has the pid now, which does not count. Before,
    a reused pid kept a killed lock holder "running" (`lock_owner`) and a worker waiting for
    a killed chief (`sweeplock.chief_gone`). `since` is trusted to SINCE_SLACK seconds.
    `since` may also be seconds since the epoch (a file that process wrote, e.g. a lock:
    exact, START_SLACK). Where /proc cannot be read, neither is compared."""
    if pid == os.getpid() and start is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists, we may just not signal it
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:  # it has just gone, or there is no /proc (macOS, Windows)
        return not os.path.isdir("/proc/self")
    except OSError:
        return True
    if fields[:1] in ([b"Z"], [b"X"]):
        return False
    if isinstance(start, int) and len(fields) > 19 and fields[19].isdigit():
        return int(fields[19]) == start
    if isinstance(since, (int, float)) and not isinstance(since, bool) and start is None:
        began = _started_at(pid)  # seconds since the epoch: a file's time, no time zone
        return began is None or began <= since + START_SLACK
    if isinstance(since, str) and start is None:
        try:
            recorded = stamp_time(since).timestamp()  # an offset, or local time (older)
        except (ValueError, OverflowError, OSError):
            return True
        began = _started_at(pid)
        return began is None or began <= recorded + SINCE_SLACK
    return True


def writer_tag() -> str:
    """This process as the name of a temp file or folder it writes records it:
    "PID_START@HOST" (`process_start`; "PID@HOST" where it cannot be read), which
    `writer_gone` reads. A name of the pid alone kept a dead writer's leftovers once a later
    process was given its pid."""
    start = process_start(os.getpid())
    return f"{os.getpid()}{'' if start is None else f'_{start}'}@{socket.gethostname()}"


def writer_gone(tag, *, ours_gone=False) -> bool:
    """Whether the writer a temp name's `tag` (`writer_tag`'s "PID_START@HOST", or an older
    hubensemble's "PID@HOST" or "PID": this host) names has gone: on this host, its pid runs
    no more or runs a process started at another time (`pid_alive`). False for a tag of
    another host (it may be writing on shared storage now) or one that is not a writer's;
    `ours_gone`: a tag of this process counts as gone (its own leftover of a failed write)."""
    head, at, host = tag.rpartition("@")
    if not at:
        head, host = tag, socket.gethostname()
    found = re.fullmatch(r"(\d+)(?:_(\d+))?", head)
    if host != socket.gethostname() or found is None:
        return False
    pid, start = int(found[1]), int(found[2]) if found[2] else None
    if pid == os.getpid() and start in (None, process_start(pid)):
        return ours_gone
    return not pid_alive(pid, start)


def is_temp(name):
    """True for a temp file or folder left behind by an interrupted atomic write."""
    return os.path.basename(name).startswith(TEMP_MARKER)


def temp_dir_for(final) -> str:
    """The temp folder a folder `final` is built in: ``.tmp-NAME.PID_START@HOST`` beside it
    (`writer_tag`; NAME cut by `fitted_name`, leaving room for `replace_dir`'s "-old").

    The tag lets `remove_stale_temp_dirs` tell a dead writer's leftovers from a live one's,
    and from those of a later process given the same pid.
    """
    parent, name = os.path.split(absolute(final))
    return os.path.join(parent, fitted_name(name, f".{writer_tag()}", prefix=TEMP_MARKER,
                                            spare=len(OLD)))


def temp_file_for(path) -> tuple[int, str]:
    """A new temp file beside the file `path` is written to, ``.tmp-NAME.XXXXXXXX.PID_START@HOST``
    (NAME cut by `fitted_name`; the random part keeps two threads' apart), opened: (its
    descriptor, its path), mode 0600 as `tempfile.mkstemp` makes it. The first call of this
    process for a folder removes its dead writers' temp files first (`clean_folder_once`).
    The name says whose it is: one a killed writer left is removed by the next writer there,
    where a ``.download-XXXXXXXX`` (a download's, hub.remote) named no writer and stayed for
    good. The folder must exist; raises OSError as mkstemp does."""
    folder = os.path.dirname(absolute(path))
    clean_folder_once(folder)  # dead writers' temp files here, once per folder and process
    tag = "." + writer_tag()
    name = fitted_name(os.path.basename(path), ".XXXXXXXX" + tag, prefix=TEMP_MARKER)
    return tempfile.mkstemp(dir=folder, prefix=name[:-len("XXXXXXXX" + tag)], suffix=tag)


def temp_writer(rest: str) -> tuple[str, bool]:
    """(writer's tag for `writer_gone`, whether a temp file's) of what follows ``.tmp-NAME.``:
    a temp folder's "TAG[-old]" (older: "PID"), a temp file's "XXXXXXXX.TAG"; TAG "PID_START@
    HOST", the pid read after the last "." before the last "@" (a host may hold dots)."""
    head, at, host = rest.removesuffix("-old").rpartition("@")
    return (f"{head.rpartition('.')[2]}@{host}", "." in head) if at else (rest, False)


def remove_entry(path) -> bool:
    """Deletes the file, link or folder at `path`; True when nothing is there afterwards.
    Never raises OSError (shutil.rmtree(ignore_errors=True) on a file did nothing)."""
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    return not os.path.lexists(path)


def remove_stale_temp_dirs(final) -> list[str]:
    """Deletes the temp entries of `final` whose writer on this host is gone (`writer_gone`: a
    pid that runs another process now too): its temp folders (`temp_dir_for`; older:
    ``.tmp-NAME.PID``) and files (`atomic_write_bytes`; this process's: another thread's, kept),
    NAME cut or not (`fitted_name`).
    Returns the paths removed, never one it could not remove. Live and other hosts' stay."""
    parent, name = os.path.split(absolute(final))
    return _remove_stale(parent, name)


def remove_stale_temp_files(folder) -> list[str]:
    """`remove_stale_temp_dirs`' rule for every temp file in `folder` (a temp folder is its
    writer's to remove): a killed command's RUN/.tmp-run.json.*.TAG, at the next's `Run.lock`."""
    return _remove_stale(absolute(folder), None, files_only=True)


def remove_stale_temp_files_below(folder, deeper=()) -> list[str]:
    """`remove_stale_temp_files` of `folder`, of each folder in it and of each folder in those
    of them named in `deeper`; no further (no walk of a huge tree): `Run.lock`'s clean-up of
    a run's RUN/, RUN/labels/, RUN/report_files/, RUN/tuner/SWEEP/, … (`deeper`: the tuner's).
    Before, only RUN/ itself was cleaned, so a killed rank's RUN/labels/.tmp-val.npy.*.TAG
    stayed for good. A candidate's folder is written whole through a temp folder
    (`candidate.clean_stale_temps`), a trial's tuner folder is cleaned by its next writer
    (`clean_folder_once`). Returns the paths removed."""
    top = absolute(folder)
    removed = remove_stale_temp_files(top)
    for sub in _subfolders(top):
        removed += remove_stale_temp_files(sub)
        if os.path.basename(sub) in deeper:
            for below in _subfolders(sub):
                removed += remove_stale_temp_files(below)
    return removed


def _subfolders(folder: str) -> list[str]:
    """The folders (not links to one, not temp folders) directly in `folder`; [] if none."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        return [e.path for e in entries
                if not e.name.startswith(TEMP_MARKER) and e.is_dir(follow_symlinks=False)]
    return []


#: Folders this process has cleaned of dead writers' temp files (`clean_folder_once`).
_CLEANED: set[str] = set()


def clean_folder_once(folder) -> list[str]:
    """`remove_stale_temp_files(folder)` the first time this process writes a file into
    `folder` (`fileio.atomic_write_bytes`, before its temp file takes space): every folder
    hubensemble writes into atomically (an embedding or cost cache entry's, under the entry's
    lock; a run's; an export's assets.extra; a zoo's) loses its dead writers' temp files at
    its next writer. Before, only a run folder's top level was cleaned (at `Run.lock`), so a
    rank killed mid-write left CACHE/ee/.tmp-KEY.npy.*.TAG (MBs) after the next rank rewrote
    the entry. Once per folder and process: one listdir, not one per write (tune rewrites
    oracle.json at every trial); a writer killed later is the next process's to clean.
    Returns the paths removed."""
    key = absolute(folder)
    if key in _CLEANED:
        return []
    _CLEANED.add(key)
    return remove_stale_temp_files(key)


def _tail(entry: str, name: str | None) -> str | None:
    """What follows ``.tmp-NAME.`` in temp `entry` of `name` (any name: None), NAME whole or
    cut (`fitted_name`: its start, then `name_mark`); None when it is not one of `name`."""
    body = entry[len(TEMP_MARKER):] if entry.startswith(TEMP_MARKER) else None
    if body is None or name is None or body.startswith(name + "."):
        return body if body is None or name is None else body[len(name) + 1:]
    cut, mark, tail = body.partition(name_mark(name) + ".")
    return tail if mark and name.startswith(cut) else None


def _remove_stale(parent, name, files_only=False) -> list[str]:
    removed = []
    for entry in os.listdir(parent) if os.path.isdir(parent) else ():
        path, tail = os.path.join(parent, entry), _tail(entry, name)
        if tail is not None and not (files_only and not os.path.isfile(path)):
            tag, single = temp_writer(tail)
            if writer_gone(tag, ours_gone=not single) and remove_entry(path):
                removed.append(path)
    return removed
