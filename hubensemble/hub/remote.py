"""Remote reads with deadlines: every byte hubensemble fetches from another host is bounded in time.

urllib takes a socket timeout; ``tf.io.gfile`` (gs://, s3://, hdfs://) takes none, so a stalled
bucket read would hang a run forever. Every gfile call on a remote path therefore runs in a
daemon thread that the caller waits for at most ``timeout`` seconds (a hung call is abandoned:
Python cannot stop a thread, so it stays blocked until the process ends, holding nothing the
run needs). Remote files and folders are copied into a local cache through these calls, so
TensorFlow and Keras only ever read local files. A leaf module: imports nothing of hubensemble.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
import time
import urllib.request

from hubensemble.text import absolute
from hubensemble.threads import caller_thread

CHUNK = 1 << 20


class DeadlineExceeded(TimeoutError):
    """A whole download or copy took longer than its deadline (HUBENSEMBLE_DOWNLOAD_DEADLINE),
    as opposed to one read that got no answer in time (HUBENSEMBLE_HTTP_TIMEOUT)."""


def is_remote(path) -> bool:
    """Whether ``path`` is read through a network file system (a URL scheme other than
    file://, e.g. gs://, s3://, hdfs://)."""
    path = os.fspath(path)
    return "://" in path and not path.startswith("file://")


def call_with_deadline(fn, *args, timeout: float, what: str = "the call",
                       whole: bool = False):
    """``fn(*args)``, run in a daemon thread and waited for at most ``timeout`` seconds.

    Returns what ``fn`` returns and re-raises what it raises. When it has not finished in
    time (the thread is left behind) raises TimeoutError("WHAT took longer than N s"),
    naming HUBENSEMBLE_HTTP_TIMEOUT, or, with ``whole`` (``timeout`` is what is left of a
    whole fetch's HUBENSEMBLE_DOWNLOAD_DEADLINE), DeadlineExceeded naming that.
    """
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = e

    thread = caller_thread(run, name="hubensemble-remote-read")  # its bars follow the caller
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        if whole:
            raise DeadlineExceeded(f"{what} took longer than the {timeout:g} s left of "
                                   "HUBENSEMBLE_DOWNLOAD_DEADLINE")
        raise TimeoutError(f"{what} took longer than {timeout:g} s (no answer from the remote "
                           "file system; raise HUBENSEMBLE_HTTP_TIMEOUT for a slow link)")
    if "error" in result:
        raise result["error"]
    return result.get("value")


class BoundedReader:
    """A binary file object over a (remote) file whose every read is bounded in time.

    ``open`` is a callable returning the underlying file object (e.g.
    ``lambda: tf.io.gfile.GFile(path, "rb")``); each ``read`` may take at most ``timeout``
    seconds without an answer, and all of them together end by ``deadline`` (a
    time.monotonic() value). ``sha256`` and ``bytes`` describe what has been read.
    Raises TimeoutError naming ``what``.
    """

    def __init__(self, open, *, timeout: float, deadline: float, what: str):
        self._timeout = float(timeout)
        self._deadline = float(deadline)
        self._what = what
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self._f = call_with_deadline(open, **self._limit(), what=f"opening {what}")

    def _limit(self) -> dict:
        # A call waits for the read timeout or what is left of the deadline, whichever is
        # sooner; the error then names the limit that ran out.
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"reading {self._what} took longer than "
                                   "HUBENSEMBLE_DOWNLOAD_DEADLINE")
        return {"timeout": min(self._timeout, left), "whole": left < self._timeout}

    def read(self, n=-1):
        """Up to ``n`` bytes (all that is left for n < 0), b"" at the end."""
        data = call_with_deadline(self._f.read, n, **self._limit(),
                                  what=f"reading {self._what}")
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self):
        """Reads (and hashes) what is left."""
        while self.read(CHUNK):
            pass

    def close(self):
        """Closes the underlying file (bounded too; a hung close is abandoned)."""
        with contextlib.suppress(Exception):
            call_with_deadline(self._f.close, timeout=self._timeout, what=f"closing {self._what}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Shown:
    """A reader (a BoundedReader, or anything with ``read``, ``sha256`` and ``bytes``) whose
    reads are counted on ``bar`` (anything with ``update(n)``, e.g. a tqdm bar); its
    ``sha256`` and ``bytes`` are the reader's."""

    def __init__(self, reader, bar):
        self._reader, self._bar = reader, bar

    def read(self, n=-1):
        """The reader's ``read(n)`` (bytes), counted on the bar."""
        data = self._reader.read(n)
        self._bar.update(len(data))
        return data

    def drain(self):
        """Reads (and counts) what is left."""
        while self.read(CHUNK):
            pass

    @property
    def sha256(self):
        """The reader's running hashlib.sha256 of what was read."""
        return self._reader.sha256

    @property
    def bytes(self):
        """The number of bytes read so far."""
        return self._reader.bytes


def gfile_call(name, *args, timeout: float):
    """``tf.io.gfile.<name>(*args)`` (exists, isdir, listdir, stat, …) bounded by ``timeout``."""
    import tensorflow as tf

    fn = getattr(tf.io.gfile, name)
    return call_with_deadline(fn, *args, timeout=timeout,
                              what=f"tf.io.gfile.{name}({', '.join(map(str, args))})")


def open_gfile(path, *, timeout: float, deadline: float) -> BoundedReader:
    """A BoundedReader over ``tf.io.gfile.GFile(path, "rb")``."""
    import tensorflow as tf

    return BoundedReader(lambda: tf.io.gfile.GFile(path, "rb"), timeout=timeout,
                         deadline=deadline, what=str(path))


def copy_file(src, dst, *, timeout: float, deadline: float, progress=None) -> str:
    """Copies the (remote) file ``src`` to the local path ``dst`` through a BoundedReader,
    atomically (temp file + rename); returns the sha256 of the bytes copied. ``progress``,
    when given, is a bar (a tqdm bar, or anything with ``update(n)``) counting the bytes."""
    folder = os.path.dirname(absolute(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, open_gfile(src, timeout=timeout,
                                                    deadline=deadline) as reader:
            for chunk in iter(lambda: reader.read(CHUNK), b""):
                out.write(chunk)
                if progress is not None:
                    progress.update(len(chunk))
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return reader.sha256.hexdigest()


def copy_tree(src, dst, *, timeout: float, deadline: float, progress=None) -> int:
    """Copies the (remote) folder ``src`` into the new local folder ``dst`` (which must not
    exist), every listing and read bounded; the folder appears complete or not at all.
    Returns the number of files copied. ``progress`` as `copy_file`'s, over all files.
    Raises FileNotFoundError when ``src`` is not a folder, TimeoutError as `BoundedReader`."""
    if not gfile_call("isdir", src, timeout=timeout):
        raise FileNotFoundError(f"{src} is not a folder")
    parent = os.path.dirname(absolute(dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".copy-")
    count = 0
    try:
        stack = [""]
        while stack:
            rel = stack.pop()
            here = posixpath.join(src, rel) if rel else src
            for entry in gfile_call("listdir", here, timeout=timeout):
                name = entry.rstrip("/")
                child_rel = posixpath.join(rel, name) if rel else name
                child = posixpath.join(here, name)
                if entry.endswith("/") or gfile_call("isdir", child, timeout=timeout):
                    os.makedirs(os.path.join(tmp, child_rel), exist_ok=True)
                    stack.append(child_rel)
                else:
                    copy_file(child, os.path.join(tmp, child_rel), timeout=timeout,
                              deadline=deadline, progress=progress)
                    count += 1
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def download(url, dst, *, timeout: float, deadline: float, context=None,
             progress=None) -> str:
    """Downloads ``url`` to the local path ``dst`` atomically; every socket read waits at most
    ``timeout`` seconds and the whole download ends by ``deadline`` (time.monotonic()).
    ``progress``, when given, is a bar counting the bytes (``update(n)``, as `copy_file`'s);
    a tqdm bar without a total gets the Content-Length as its total when one is sent.
    Returns the sha256 of the file. Raises what urllib raises (URLError, HTTPError,
    socket.timeout), DeadlineExceeded past the deadline, ConnectionError for a short body."""
    folder = os.path.dirname(absolute(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-")
    h, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out, contextlib.closing(
                urllib.request.urlopen(url, timeout=timeout, context=context)) as response:
            expected = getattr(response, "length", None)
            if expected and getattr(progress, "total", 0) is None:
                progress.total = expected
            size = _receive(response, out, h, url, deadline, progress)
            if expected is not None and size < expected:
                raise ConnectionError(f"the connection closed after {size} of {expected} "
                                      f"bytes of {url}")
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return h.hexdigest()


def _receive(response, out, h, url, deadline, bar):
    """Copies ``response``'s body to ``out`` (hashing it into ``h``, counting it on ``bar``);
    returns its size in bytes. Raises DeadlineExceeded past ``deadline``."""
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"downloading {url} took longer than "
                                   f"HUBENSEMBLE_DOWNLOAD_DEADLINE after {size} bytes")
        # What arrived (read1): the deadline is checked between socket reads.
        chunk = getattr(response, "read1", response.read)(CHUNK)
        if not chunk:
            return size
        out.write(chunk)
        h.update(chunk)
        size += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
