"""Atomic file writes and inter-process locks: no reader ever sees a half-written result."""

import contextlib
import io
import json
import os
import tempfile
import time

import numpy as np

# Temp files carry this marker so a run directory can be checked for leftovers, and so
# nothing that lists results (candidates, cache entries) ever mistakes one for a result.
TEMP_MARKER = ".tmp-"


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path, data):
    """Write `data` to `path` through a temp file in the same folder and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_MARKER + os.path.basename(path) + ".")
    try:
        # mkstemp makes 0600 files; results are ordinary files that others may read.
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_save_npy(path, array):
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def read_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "to_json"):
        return obj.to_json()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def pid_alive(pid):
    """Whether process `pid` on this host still runs (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, we may just not signal it
    return True


def is_temp(name):
    """True for a temp file or folder left behind by an interrupted atomic write."""
    return os.path.basename(name).startswith(TEMP_MARKER)


@contextlib.contextmanager
def file_lock(path, timeout=600.0, poll=0.05):
    """An exclusive lock held by creating `path` with O_EXCL.

    A lock whose owner process has died (same host, pid no longer alive) is taken over,
    so a SIGKILLed run never blocks the next one.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    deadline = time.monotonic() + timeout
    token = f"{os.uname().nodename} {os.getpid()}"
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(token)
            break
        except FileExistsError:
            if _lock_is_stale(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not take the lock {path} within {timeout:.0f} s; "
                                   f"if no other hubensemble process is running, delete it")
            time.sleep(poll)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            with open(path) as f:
                owner = f.read()
            if owner == token:
                os.unlink(path)


def _lock_is_stale(path):
    try:
        with open(path) as f:
            host, pid = f.read().split()
    except ValueError:
        # Empty: being written right now, or its owner died between create and write.
        try:
            return time.time() - os.path.getmtime(path) > 10.0
        except OSError:
            return False
    except OSError:
        return False
    if host != os.uname().nodename or not pid.isdigit():
        return False
    return not pid_alive(int(pid))
