"""Where hubensemble's downloads are kept: tensorflow_hub's module cache (TFHUB_CACHE_DIR), or a
private temporary folder when that cannot be written (`writable_module_dir`); the record beside
each download (`_sidecar`); the removal of a download (`_drop_cache`) and of a dead process's
download lock (`_drop_dead_download_lock`)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket

from tensorflow_hub import compressed_module_resolver, resolver as hub_resolver, tf_utils

from hubensemble.environment import (CacheFolder, cache_unwritable, folder_removed_at_exit,
                                     path_from_environment, unwritable_error)
from hubensemble.fileio import pid_alive

log = logging.getLogger("hubensemble.hub.resolvers")  # the logger its messages always had


def _sidecar(module_dir):
    return module_dir + ".hubensemble.json"


HUB_CACHE_ENV = "TFHUB_CACHE_DIR"


def writable_module_dir(handle) -> str:
    """The folder (str, made) `handle` is downloaded into: its folder in tensorflow_hub's
    cache (`compressed_module_resolver._module_dir`), unless that cache cannot be written
    (not a folder, read-only, no permission) and does not hold the module already: then
    the cache is said unwritable once (`environment.cache_unwritable`, naming
    TFHUB_CACHE_DIR) and this process downloads into a private temporary folder, removed
    at its exit (TFHUB_CACHE_DIR set to it, so every later lookup agrees). The module was
    refused as "FailedPreconditionError: … is not a directory (the download is not a valid
    SavedModel tarball)", with advice to fix the catalogue entry.

    A TFHUB_CACHE_DIR written with a leading ``~`` (``TFHUB_CACHE_DIR="~/hub"``: quoted, or
    in a .env file or a service's Environment=, where no shell expands it) is expanded first
    (`environment.path_from_environment`, which hubensemble's own variables are read
    through) and set so: tensorflow_hub takes it as written, and made a folder literally
    named "~" in the working folder, a new cache for every folder a command ran in."""
    named = path_from_environment(HUB_CACHE_ENV)
    if named and named != os.environ.get(HUB_CACHE_ENV):
        os.environ[HUB_CACHE_ENV] = named
    root = hub_resolver.tfhub_cache_dir(use_temp=True)  # module_dir makes it: not yet
    if os.path.isdir(os.path.join(root, hashlib.sha1(handle.encode("utf8")).hexdigest())):
        return compressed_module_resolver._module_dir(handle)  # there: read, as said above
    try:
        os.makedirs(root, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise unwritable_error(root)
    except OSError as e:
        # absl's --tfhub_cache_dir names it when a program parsed absl flags (absl.app.run)
        # and the variable is unset: the variable set below wins over it, as it always does.
        flag = not os.environ.get(HUB_CACHE_ENV) and hub_resolver.FLAGS["tfhub_cache_dir"].value
        named = "variable" if os.environ.get(HUB_CACHE_ENV) else "flag" if flag else "default"
        cache_unwritable(CacheFolder(root, "TensorFlow Hub module cache", HUB_CACHE_ENV,
                                     "absl's --tfhub_cache_dir" if flag else None, named), e,
                         "each module is downloaded into a temporary folder removed at exit, "
                         "and the work goes on", reads_old=False)
        os.environ[HUB_CACHE_ENV] = folder_removed_at_exit("hubensemble-tfhub-")
    return compressed_module_resolver._module_dir(handle)


def _drop_dead_download_lock(module_dir, handle=None):
    # tensorflow_hub's lock holds "HOST.PID.UID"; a lock whose download makes no progress is
    # only taken over after 10 minutes. A lock of a process on this host that no longer runs
    # (killed mid-download; its pid given to a process started after the lock was written
    # too) is stale now: remove it and that download's temp folder. A live
    # one's download of `handle` is waited for, and the wait is said.
    module_dir = tf_utils.absolute_path(module_dir)
    lock = module_dir + ".lock"
    try:
        with open(lock, encoding="utf-8") as f:  # tf.io.gfile wrote it: UTF-8
            host, pid, uid = f.read().strip().rsplit(".", 2)
    except (OSError, ValueError):
        return  # no lock, or not one of tensorflow_hub's: its own rules apply
    try:  # written once, when the download began: its process had started by then
        written = os.stat(lock).st_mtime
    except OSError:
        return
    # (not a process that was given the pid later: `fileio.pid_alive`)
    if host != socket.gethostname() or not pid.isdigit() or pid_alive(int(pid), since=written):
        if handle is not None and not os.path.exists(module_dir):
            # tensorflow_hub says so only at INFO: a user saw nothing for the minutes of
            # another process's download.
            log.warning("%s is being downloaded by another process (%s, process %s); waiting "
                        "for it rather than downloading it twice (a download that makes no "
                        "progress for 10 minutes is taken over)", handle, host, pid)
        return
    log.info("removing the download lock %s of a process that died", lock)
    shutil.rmtree(f"{module_dir}.{uid}.tmp", ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(lock)


def _drop_cache(module_dir):
    """Removes a cached download, its record and tensorflow_hub's descriptor file beside it
    (the next resolve fetches it again)."""
    shutil.rmtree(module_dir, ignore_errors=True)
    for beside in (_sidecar(module_dir), module_dir + ".descriptor.txt"):
        with contextlib.suppress(OSError):
            os.unlink(beside)
