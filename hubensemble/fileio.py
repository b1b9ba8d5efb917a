"""Atomic file writes and inter-process locks: no reader ever sees a half-written result."""

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from hubensemble.errors import HubensembleError, first_line, held_stops
# Re-exported: temp names and their writers were fileio's before tempnames held them.
from hubensemble.tempnames import (  # noqa: F401
    NAME_MAX, OLD, SINCE_SLACK, START_SLACK, TEMP_MARKER, clean_folder_once, fitted_name,
    is_temp, name_mark, pid_alive, process_start, remove_entry, remove_stale_temp_dirs,
    remove_stale_temp_files, remove_stale_temp_files_below, temp_dir_for, temp_file_for,
    temp_writer, writer_gone, writer_tag)
from hubensemble.text import absolute, shown_time, time_stamp

#: A file changed less than this many seconds before it was looked at may change again
#: within the same timestamp tick without its identity (size, times, inode) changing
#: ("racily clean" in git): a verdict remembered by that identity must not be kept for it.
RACY_SECONDS = 2.0


def file_sha256(path) -> str:
    """The sha256 (64 lower-case hex digits) of the local file at ``path``, read in 1 MB
    chunks. Raises OSError as open() does."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path, data, *, sync=True):
    """Write `data` to `path` through a temp file in the same folder and a rename.

    Its temp file ``.tmp-NAME.XXXXXXXX.PID_START@HOST`` names its writer (for
    remove_stale_temp_dirs; NAME cut by `fitted_name` past 255 bytes); the first write of
    this process into a folder removes its dead writers' (`clean_folder_once`). With `sync`
    (the default) the file and then its folder are fsynced: the new content survives a
    crash. `sync=False` keeps the atomicity (readers see the old file or the whole new one)
    without the two fsyncs (tens of ms on a busy disk): for files that are only hints and
    are checked or recomputed when unusable (an embedding cache entry's description, a memo).
    """
    path = os.fspath(path)
    # text.absolute: as the system reaches it ("link/.." dropped textually: a rename across
    # devices, "Invalid cross-device link").
    folder = os.path.dirname(absolute(path))
    os.makedirs(folder, exist_ok=True)
    # Named by its writer as a temp folder is (dead writers' are removed here first).
    fd, tmp = temp_file_for(path)
    try:
        # mkstemp makes 0600 files; results are ordinary files that others may read.
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:
            # A write's error names no file ("[Errno 27] File too large"): name the one.
            raise OSError(e.errno, e.strerror, path) from e
        raise
    if sync:
        _fsync_dir(folder)


def atomic_write_text(path, text, *, sync=True):
    """Writes the str `text` to `path` as UTF-8, atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def atomic_write_json(path, obj, *, sync=True):
    """Writes `obj` as indented JSON, atomically; NumPy scalars and arrays become numbers and
    lists, objects with `to_json()` their JSON; TypeError for anything else."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n", sync=sync)


def atomic_save_npy(path, array, *, sync=True):
    """Writes `array` as a .npy file (no pickles), atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue(), sync=sync)


#: OSErrors that are the machine's or a path's, not hubensemble's: a full disk or quota, a file
#: size limit, a read-only or forbidden folder, a file where a folder is needed (or the
#: reverse). They stop a command with one line, as usage errors, and are never a trial's
#: result (`machine_error`).
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                            errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR})
# A path in another library's message: TensorFlow's "… /run/tuner/…/events…; No space left on
# device", h5py's "filename = '/run/…/weights.weights.h5'" (not "_device_/job:localhost").
_NAMED_FILE = re.compile(r"filename = '([^']+)'|(?:^|[\s'\"])(/[^\s;,'\"]+)")


def numpy_load_fault(exc: BaseException) -> str:
    """Why np.load(…, allow_pickle=False) failed on one of hubensemble's own .npy/.npz files,
    in words for a refusal: "not a NumPy .npy or .npz file" for a file of other bytes, which
    numpy takes for pickled data and answers with its advice to "load it unsafely using the
    allow_pickle= keyword" (never right for a file we wrote: a damaged RUN/labels/
    pixel_keys.npz quoted it); else "TYPE: message"."""
    if isinstance(exc, ValueError) and "pickled" in str(exc):
        return "not a NumPy .npy or .npz file"
    return f"{type(exc).__name__}: {exc}"


def machine_error(exc: BaseException) -> OSError | None:
    """The OSError of a write or read the machine refused behind `exc`, or None.

    `exc` itself when it is an OSError whose errno is in MACHINE_ERRNOS; for another error
    whose message says one (TensorFlow's ResourceExhaustedError "…; No space left on device"
    or FailedPreconditionError "Not a directory" from a summary writer, h5py's RuntimeError
    "file write failed: … error message = 'No space left on device'" from save_weights), an
    OSError(errno, "STRERROR (TYPE)", the first file its message names), or "STRERROR (TYPE:
    FIRST LINE)" and no file when it names none.
    Such an error says nothing about a trial or a module: it is the disk's, and the same
    work succeeds once space is freed or the path fixed, so it is never recorded as a
    trial's failure.
    """
    if isinstance(exc, OSError):  # a lock file's: whatever its reason (/proc: ENOENT)
        return exc if exc.errno in MACHINE_ERRNOS or isinstance(exc, LockFileError) else None
    text = str(exc)
    for code in sorted(MACHINE_ERRNOS):
        if os.strerror(code) in text:
            found = _NAMED_FILE.search(text)
            name = next((g for g in found.groups() if g), None) if found else None
            said = type(exc).__name__ if name else f"{type(exc).__name__}: {first_line(exc)[:200]}"
            return OSError(code, f"{os.strerror(code)} ({said})", name)
    return None


def read_json(path):
    """The JSON document at `path` (UTF-8). Raises OSError / ValueError as open and json do."""
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def _json_default(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()  # a NumPy scalar's is its Python number
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def missing_folders(path) -> list[Path]:
    """The folders that making `path` (`make_dirs`) would create: the missing ones, outermost
    first, down to `path` itself ([] when it exists)."""
    missing, path = [], Path(absolute(path))
    while not os.path.lexists(path) and path.parent != path:
        missing.insert(0, path)
        path = path.parent
    return missing


def remove_unused(made: list[Path], allowed) -> None:
    """Removes the folder made[-1], then each folder of `made` (those one command created,
    outermost first) left empty, when made[-1] holds nothing but `allowed` names and temp
    entries; anything else there (or appearing meanwhile) keeps it. Never raises OSError."""
    try:
        names = os.listdir(made[-1])
        if any(n not in allowed and not is_temp(n) for n in names):
            return
        for name in names:
            os.remove(os.path.join(made[-1], name))
        for folder in reversed(made):
            os.rmdir(folder)
    except OSError:
        return


@contextlib.contextmanager
def file_lock(path, timeout=600.0):
    """An exclusive inter-process lock on `path` (``filelock.FileLock``: a kernel ``flock``).

    The kernel drops the lock when its holder exits, however it exits, so a SIGKILLed run
    never blocks the next one and two processes can never both take over a dead owner's
    lock. The (empty) lock file stays on disk after release, as filelock intends: a process
    may remove a lock file only while it holds it (`owned_lock`'s `remove`,
    `sweeplock.remove_free_locks`), and a lock taken on a file that was removed meanwhile
    (it waited on the old file while a third process made a new one) is let go and taken
    again on the file the path names now, so two processes never both hold one path, with
    every filelock version setup.cfg allows (3.13 has no such check of its own).
    Raises TimeoutError after `timeout` seconds, naming the lock file; LockFileError (an
    OSError) "cannot create the lock file X: <reason>" at once when the file cannot be made
    or opened for writing (`_check_lock_file`).
    """
    import filelock

    path = os.fspath(path)
    _check_lock_file(path)
    deadline = time.monotonic() + timeout
    while True:
        lock = filelock.FileLock(path, timeout=max(0.0, deadline - time.monotonic()))
        try:
            lock.acquire()
        except filelock.Timeout:
            raise TimeoutError(f"could not take the lock {path} within {timeout:.0f} s: "
                               "another hubensemble process holds it") from None
        if _locks_its_path(lock, path):
            break
        lock.release()  # a removed file's lock locks nothing: take the one there now
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left the lock held by the process
        with held_stops():
            lock.release()


class LockFileError(OSError):
    """A lock file that cannot be made or opened (`file_lock`, `check_lock_file`): an OSError
    whose `errno` is the reason's own (ENOENT: its folder does not exist and cannot be made,
    or its file system makes no files, as /proc; EROFS: a read-only file system; EACCES or
    EPERM: no permission; ENOTDIR: a file where a folder of the path should be; …), and
    whose text ("cannot create the lock file X: REASON") says it once, without the
    "[Errno N]" an OSError's text starts with. `fileio.machine_error` counts it as the
    machine's whatever its errno, so the command line says it in one line with the way on
    for its errno (`exits.WAY_ON`), and callers that go on without a lock they cannot make
    (an unwritable cache) catch it as any OSError."""

    def __str__(self) -> str:
        return str(self.strerror)


def _check_lock_file(path: str) -> None:
    """Makes the folder of the lock file `path` and the file itself (empty; an existing one
    is opened for writing and left as it is), as filelock would. LockFileError "cannot
    create the lock file X: <reason>" when either cannot be: filelock 4.x reads a file it
    cannot create (ENOENT where the file system makes no files, as under /proc; EROFS,
    EACCES) as a lock another process holds, so `zoo build --out /proc/z` waited its 3,600 s
    and `export --out /proc/e` said another command was writing there. Its errno is the
    reason's (it was EACCES for any reason outside `MACHINE_ERRNOS`, which said ENOENT's
    "No such file or directory" beside "[Errno 13]" and "fix the permissions")."""
    try:
        os.makedirs(os.path.dirname(absolute(path)), exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as e:
        code, why = (e.errno or errno.EACCES), e.strerror or e
        if isinstance(e, FileExistsError):  # a file where a folder of the path should be
            code, why = errno.ENOTDIR, f"{e.filename} is a file, not a folder"
        verb = "open" if os.path.lexists(path) else "create"
        raise _lock_error(code, f"cannot {verb} the lock file {path}: {why}") from e


#: LockFileError's kind per OSError subclass (`_lock_error`).
_LOCK_ERROR_KINDS: dict = {}


def _lock_error(code: int, text: str) -> LockFileError:
    """LockFileError(code, text), of the OSError subclass OSError(code, …) makes too
    (IsADirectoryError, PermissionError, FileNotFoundError: named as before by callers that
    name an error by its type, `except PermissionError` still catching it)."""
    base = type(OSError(code, text))
    if base is OSError:
        return LockFileError(code, text)
    kind = _LOCK_ERROR_KINDS.get(base)
    if kind is None:
        kind = _LOCK_ERROR_KINDS[base] = type(base.__name__, (LockFileError, base), {
            "__module__": __name__, "__doc__": LockFileError.__doc__})
    return kind(code, text)


def check_lock_file(path) -> None:
    """Before the work: OSError as `file_lock` says it ("cannot create the lock file X: …")
    when the lock file `path` could not be made in its existing folder; leaves no file it
    made, and makes no folder (a missing one is made, and said, by `file_lock`)."""
    path = os.fspath(path)
    if os.path.lexists(path) or not os.path.isdir(os.path.dirname(absolute(path))):
        return
    _check_lock_file(path)
    with contextlib.suppress(OSError):
        os.remove(path)


def _locks_its_path(lock, path) -> bool:
    """Whether the file `lock` (a held filelock.FileLock) has locked is the one `path` names
    now (not a file another process removed while this one waited on it)."""
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if fd is None:  # a filelock without the descriptor: nothing to compare
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except OSError:
        return False


def lock_is_held(path) -> bool:
    """Whether some process holds the lock on `path` right now (False when it is free).

    A lock file this process cannot open for writing (a read-only run folder: `report` on
    it failed here with "[Errno 30] Read-only file system: '…/.fit.lock'") is asked read-only:
    a shared flock on it is refused while a holder has it."""
    import fcntl

    import filelock

    if not os.path.lexists(path):  # asking must not leave a lock file (a removed one's)
        return False
    lock = filelock.FileLock(os.fspath(path), timeout=0)
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        return True
    except OSError:
        try:
            fd = os.open(os.fspath(path), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # and with it the shared lock
        return False
    lock.release()
    return False


#: The locks this process holds through `owned_lock` (real path -> what it recorded, with
#: the holding thread's name, "thread", and id, _THREAD), changed under _OWNED_GUARD.
_OWNED: dict[str, dict] = {}
_THREAD = "_thread_id"
_OWNED_GUARD = threading.Lock()


def owner_file(lock) -> str:
    """Where `owned_lock` records who holds the lock file `lock`: LOCK.holder beside it."""
    return absolute(lock) + ".holder"


@contextlib.contextmanager
def owned_lock(path, record: dict, refused, *, remove: bool = False):
    """`file_lock(path, timeout=0)` held while the block runs, with `record` (what holds it, e.g.
    {"command": "rank"}) written beside it as JSON (`owner_file`, with "host", "pid", "pid_start"
    (`process_start`: a reused pid is told apart, `pid_alive`) and "since") and removed as it is
    released: a second process is refused at once, told who holds it (`lock_owner`), not merely that
    someone does. The record is a file of its own because filelock before 4.0 truncates the lock
    file as it tries to take it. A nested use in the thread that holds the lock is a no-op
    (`owned_here`); another thread of this process is refused as another process is (`refused` given
    the holder's record with its "thread"): it went on beside the holder, so `run_rank` called from
    two threads on one run both wrote it. With `remove` the lock file goes too, removed while still
    held (`file_lock`: safe so; a lock of which many accumulate, as a sweep's one per tuner id).
    Raises `refused(owner)` (an exception, given `lock_owner(path)`) when another process holds it;
    OSError as `file_lock` (a folder that cannot be written)."""
    key = _lock_key(path)
    with _OWNED_GUARD:
        held = _OWNED.get(key)
        if held is None:
            lock = file_lock(key, timeout=0)
            try:
                lock.__enter__()
            except TimeoutError:
                raise refused(lock_owner(key)) from None
            _OWNED[key] = held = {**record, "host": socket.gethostname(), "pid": os.getpid(),
                                  "pid_start": process_start(os.getpid()),
                                  "since": time_stamp(),
                                  "thread": threading.current_thread().name,
                                  _THREAD: threading.get_ident()}
        elif held[_THREAD] != threading.get_ident():  # this process, another thread's call
            raise refused({k: v for k, v in held.items() if k != _THREAD})
        else:
            lock = None  # a nested use in the holding thread
    if lock is None:
        yield
        return
    try:
        with contextlib.suppress(OSError):  # the lock is what counts; the record says who
            atomic_write_json(owner_file(key), {k: v for k, v in held.items()
                                                if k not in (_THREAD, "thread")})
        yield
    finally:  # whole (errors.held_stops): a second Ctrl-C here left the lock held and in
        with held_stops():  # _OWNED, so the next call in the process took it as nested
            with contextlib.suppress(OSError):
                os.remove(owner_file(key))
            if remove:
                with contextlib.suppress(OSError):
                    os.remove(key)
            with _OWNED_GUARD:
                del _OWNED[key]
                lock.__exit__(None, None, None)


def _lock_key(path) -> str:
    """Lock file `path` as `_OWNED` knows it: its real path, so one run folder named two ways
    (a symlink and its target, `..`) is one lock. Keyed by os.path.abspath, a nested use
    through a symlink was refused in the process that held the lock, as "another fit is
    running on /…/link (pid <its own>)"."""
    return os.path.realpath(os.fspath(path))


def owned_here(path) -> dict | None:
    """The record of lock file `path` (by its real path: a symlink's name or the target's)
    when this thread holds it through `owned_lock` (None when another thread does)."""
    held = _OWNED.get(_lock_key(path))
    return held if held is not None and held[_THREAD] == threading.get_ident() else None


def lock_owner(path) -> dict | None:
    """The record `owned_lock` wrote for lock file `path` (its holder's "command", "host",
    "pid", "since", …), or None when there is none, it is unreadable, or it names a process
    of this host that has gone (a killed holder's record: its lock was freed with it)."""
    try:
        owner = read_json(owner_file(path))
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict):
        return None
    pid = owner.get("pid")
    if owner.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(
            pid, owner.get("pid_start"), owner.get("since")):  # (a reused pid: another's)
        return None
    held = _OWNED.get(_lock_key(path))
    if held is not None and pid == os.getpid():  # another thread of this process holds it
        owner = {**owner, "thread": held["thread"]}
    return owner


def owner_words(owner: dict | None) -> str:
    """"pid 4242, since 2026-12-05 10:00:01+00:00" (and "on host B" when it is another host)
    for a `lock_owner` record, its time in `text.shown_time`'s form; "" for None."""
    if not owner:
        return ""
    host = owner.get("host")
    return ", ".join(str(part) for part in (
        f"pid {owner.get('pid')}" + (f" on host {host}" if host and host != socket.gethostname()
                                     else "")
        + (f" (this process, thread {owner['thread']})" if owner.get("thread") else ""),
        f"since {shown_time(owner['since'])}" if owner.get("since") else None) if part)


# ---------------------------------------------------------------------------------------------
# Folders that appear whole: build in a temp folder beside the target, then one rename.
# ---------------------------------------------------------------------------------------------

def dead_link_reason(path) -> str:
    """Why the symbolic link `path`, which leads to no file or folder, cannot be read: "a
    broken link (to TARGET)" when its chain of links ends at nothing, "a link loop (to
    TARGET): ..." when the chain comes round to a link it passed (the OS's ELOOP: a link to
    itself, a -> b -> a). A loop was called broken, naming a target that exists: the link
    itself, or the other link of the pair. OSError when `path` is no link."""
    target = os.readlink(path)
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return (f"a link loop (to {target}): following it goes round a circle of links, "
                    "never reaching a file")
    return f"a broken link (to {target})"


def blocking_file(path) -> Path | None:
    """The first of `path` and its parents that exists but is not a folder (a file in the
    way of creating `path` as a folder), or None."""
    path = Path(absolute(path))
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def check_dir_target(path, hint: str) -> None:
    """Raises HubensembleError when a file stands where folder `path` or one of its parents
    would go ("... is a file; " + `hint`), or when this process may not write in the
    nearest of them that exists, naming why: "D is on a read-only file system"
    (`read_only_mount`: a read-only mount, where permissions do not help; as
    `preflight.check_report_folder` tells it) or "no permission to write in D"; checked
    before long work that ends by writing there. `hint` is the way on in the caller's words
    (a run's: `lockwords.unwritable_advice`), after "make it writable, or" when the folder
    cannot be written."""
    blocker = blocking_file(path)
    if blocker is not None:
        where = "" if blocker == Path(absolute(path)) else f" (in {path})"
        raise HubensembleError(f"{blocker} is a file, not a folder{where}; {hint}")
    # The nearest folder that exists must take new entries: a read-only one failed only
    # after the work, naming a temp file (a new-user check with evaluate --out).
    existing = Path(absolute(path))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        why = f"{existing} is on a read-only file system" if read_only_mount(existing) else (
            f"no permission to write in {existing}")
        raise HubensembleError(f"{why}; make it writable, or {hint}")


def read_only_mount(folder) -> bool:
    """Whether folder `folder` (a path `os.access` says cannot be written) is so as its file
    system is mounted read-only, where no chmod helps, rather than for want of permission:
    the rule of `environment.unwritable_error` (os.statvfs' ST_RDONLY; False where there is
    no statvfs, Windows), its one owner; `check_dir_target` and
    `preflight.check_report_folder` each asked os.statvfs themselves. Their words stay
    their own: the owner's ("Read-only file system: D") inside a HubensembleError's text is
    read as the machine's error (`machine_error`), and said as a full disk is."""
    from hubensemble.environment import unwritable_error  # (it brings the options table)

    return unwritable_error(os.fspath(folder)).errno == errno.EROFS


def check_file_target(path, hint: str) -> None:
    """Raises HubensembleError when file `path` cannot be written where it is asked for: it is
    a folder, a file stands where one of its parent folders would go, or the nearest parent
    folder that exists is not writable."""
    if os.path.isdir(os.fspath(path)):
        raise HubensembleError(f"{path} is a folder, not a file; {hint}")
    check_dir_target(os.path.dirname(absolute(path)), hint)


def make_dirs(path, hint: str) -> None:
    """Creates folder `path` and its parents (existing ones are fine). Raises
    HubensembleError naming the file in the way, or the OS's reason (permission, full disk),
    followed by `hint`."""
    check_dir_target(path, hint)
    try:
        os.makedirs(os.fspath(path), exist_ok=True)
    except OSError as e:
        raise HubensembleError(f"cannot create the folder {path}: {e.strerror or e}; "
                               f"{hint}") from e


def replace_dir(tmp, final, *, replaceable: Callable[[str], bool] | None = None,
                what: str = "the new folder") -> None:
    """Puts the finished folder `tmp` at `final`, replacing a folder already there.

    With no folder at `final` this is one rename. Otherwise the old folder is renamed aside
    (``TMP-old``), `tmp` renamed into place and the old one deleted; if the second rename
    fails the old folder is put back, so `final` is never left missing by an error. (Between
    the two renames a reader may find no folder for an instant; it never finds half a one.)
    Raises FileExistsError when a file stands at `final`. Whether a folder there may be
    replaced is the caller's to check, before its work (e.g. `formats.check_export_target`),
    and, with `replaceable` (folder path -> bool), again on the old folder once renamed aside,
    where no file can come into it by its name: a folder that came to hold files of another
    kind during the work (a user's notes put into an export folder as it was written) is put
    back as it was and HubensembleError raised naming `final` and `what` was being written
    (a new-user check: the file was deleted with the old folder, exit 0).
    """
    tmp, final = os.fspath(tmp), os.fspath(final)
    if os.path.lexists(final) and not os.path.isdir(final):
        # Renamed aside, a file (or a dangling link) was left as a hidden temp entry, which
        # the next writer's stale-temp clean-up would delete: never replace one.
        raise FileExistsError(f"{final} is a file, not a folder; refusing to replace it")
    if not os.path.exists(final):
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(absolute(final)))
        return
    old = tmp + OLD  # (room left for it by temp_dir_for)
    # A Ctrl-C or SIGTERM waits until both renames are done and the old folder is gone: one
    # that came right after the first left no folder at `final` (the old one aside, the new
    # one deleted by the caller's clean-up: an export lost, not replaced).
    with held_stops():
        os.replace(final, old)
        if replaceable is not None and not replaceable(old):
            os.replace(old, final)
            raise HubensembleError(
                f"{final} came to hold other files while {what} was written there (it is "
                "no longer one hubensemble may replace); nothing was replaced and it is as it "
                "was: move those files out, or choose another folder, then write it again")
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(os.path.dirname(absolute(final)))


def json_object(value) -> dict:
    """`value` when it is a JSON object (a dict), else {}: a record of run.json as a reader
    that goes on past a hand edit reads it ("batchnorm": "x" and "modules": [] were
    AttributeError tracebacks where `.get(…) or {}` read them). Stages that need the record
    refuse such an edit instead, naming the file and the field (`json_kind`)."""
    return value if isinstance(value, dict) else {}


def json_kind(value) -> str:
    """What kind of JSON value `value` is, for messages naming a damaged file's key: "a JSON
    string", "a JSON number", "null", …"""
    if value is None:
        return "null"
    kinds = ((bool, "a JSON boolean"), (int, "a JSON number"), (float, "a JSON number"),
             (str, "a JSON string"), (list, "a JSON array"), (dict, "a JSON object"))
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def tf_path(path) -> str:
    """`path` (str, bytes or os.PathLike; a local path or a gs:// URL) as TensorFlow must be
    given it to reach the file Python names by it: the name's bytes (os.fsencode) read as
    UTF-8. TensorFlow encodes a str path as UTF-8 whatever the locale, Python decodes a name
    with the file system's: under ``LC_ALL=C PYTHONUTF8=0`` (a container, a cron job) ASCII,
    'run→c' is 'run\\udce2\\udc86\\udc92c', and tf.io.gfile, tf.saved_model.save and .load
    stopped with "UnicodeEncodeError: … surrogates not allowed" (a new-user check). In a UTF-8
    locale, `path` as it is. For TensorFlow only: Python's open() of it fails in that locale.
    Raises HubensembleError naming the path when its name is not UTF-8 (a Latin-1 'caf\\xe9'),
    which TensorFlow can neither write nor read; a byte in a folder above the last part (RUN/
    tuner of a run folder 'caf\\xe9') names that folder to rename (not RUN/tuner, ours)."""
    from hubensemble.text import escaped

    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        end = raw.find(b"/", e.start)  # the end of the part holding the first bad byte
        folder = "" if end < 0 or not raw[end:].strip(b"/") else (
            f" in its folder {escaped(os.fsdecode(raw[:end]))}")
        raise HubensembleError(
            f"{escaped(os.fsdecode(raw))}: the name is not UTF-8 (a byte of another encoding, "
            f"e.g. Latin-1){folder}, which TensorFlow can neither write nor read; rename "
            f"{'that folder' if folder else 'it'} in UTF-8") from None


def native_path(path) -> str:
    """The name Python's own calls (open, os.*) reach a file by, of a path in TensorFlow's
    form (`tf_path`'s result, or one a library such as Keras Tuner joined from it): its
    characters as UTF-8 bytes, decoded with the file system's encoding (os.fsdecode). Under
    ``LC_ALL=C PYTHONUTF8=0`` 'run→c' is 'run\\udce2\\udc86\\udc92c' again; in a UTF-8 locale,
    and for a path already in Python's form (lone surrogates), `path` as it is."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return os.fsdecode(text)
    return os.fsdecode(text.encode("utf-8", "surrogateescape"))
