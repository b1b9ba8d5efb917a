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
import datetime
import email.utils
import errno
import hashlib
import http.client
import logging
import os
import posixpath
import shutil
import threading
import time
import urllib.error
import urllib.request
import zlib

from hubensemble.errors import ModuleLoadError, first_line, held_stops
from hubensemble.tempnames import remove_stale_temp_dirs, temp_dir_for, temp_file_for
from hubensemble.text import absolute, counted
from hubensemble.threads import caller_thread

CHUNK = 1 << 20

log = logging.getLogger(__name__)

#: HTTP statuses of a passing condition (a timeout of the request, too many requests, a
#: server or gateway failing for a while): the download is tried again (`with_retries`).
TRANSIENT_STATUSES = (408, 429, 500, 502, 503, 504)
#: Tries of one download in all (the first included), each within its whole deadline.
ATTEMPTS = 3
#: Seconds waited before the second and third try when the server names none (Retry-After).
RETRY_WAITS = (1.0, 4.0)
#: The longest Retry-After (seconds) waited for; a longer one is not waited for.
MAX_RETRY_AFTER = 60.0


class DeadlineExceeded(TimeoutError):
    """A whole download or copy took longer than its deadline (HUBENSEMBLE_DOWNLOAD_DEADLINE),
    as opposed to one read that got no answer in time (HUBENSEMBLE_HTTP_TIMEOUT)."""


def _chain(error: BaseException):
    """`error`, then what it was raised from or while handling (``__cause__``, else
    ``__context__``), each once: keras-hub re-raises kagglehub's and huggingface_hub's HTTP
    errors as FileNotFoundError or ValueError, raised while handling them."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def http_status(error: BaseException) -> int | None:
    """The HTTP status a failed request got, found on `error` or an error in its `_chain`:
    urllib's HTTPError ``code``, or the ``response.status_code`` of requests' (kagglehub)
    and httpx's (huggingface_hub) errors; None for a failure without an answer (a
    connection refused, a timeout) and for anything else."""
    for e in _chain(error):
        if isinstance(e, urllib.error.HTTPError):
            return e.code
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def http_method(error: BaseException) -> str | None:
    """The method ("GET", "HEAD", …) of the request whose answer failed `error` (requests'
    and httpx's ``response.request.method``, found as `http_status`), or None."""
    for e in _chain(error):
        try:
            method = e.response.request.method
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError without one
            continue
        if isinstance(method, str):
            return method
    return None


def _answer_headers(error: BaseException):
    """The headers of the HTTP answer a failure got (urllib's ``headers``, or requests' and
    httpx's ``response.headers``), or None."""
    for e in _chain(error):
        if isinstance(e, urllib.error.HTTPError):
            return e.headers
        headers = getattr(getattr(e, "response", None), "headers", None)
        if headers is not None:
            return headers
    return None


#: Class names (anywhere in an error's class hierarchy) of a connection refused, reset or
#: closed early in the HTTP libraries keras-hub's loaders use: requests' ConnectionError and
#: ChunkedEncodingError (kagglehub), urllib3's ProtocolError, httpx's NetworkError and
#: RemoteProtocolError (huggingface_hub). A name with "Timeout" in it is a timeout.
_CONNECTION_NAMES = frozenset({"ConnectionError", "ChunkedEncodingError", "ProtocolError",
                               "NetworkError", "RemoteProtocolError", "IncompleteRead"})


def transient(error: BaseException) -> bool:
    """Whether `error` of one try of a download may pass if tried again: an HTTP status of
    TRANSIENT_STATUSES (e.g. 503; `http_status`: urllib's, or that of kagglehub's or
    huggingface_hub's error), or a connection refused, reset or closed early (a body cut
    short: ConnectionError, http.client.IncompleteRead, or requests'/httpx's kinds of them).
    Not a timeout (each read already waited HUBENSEMBLE_HTTP_TIMEOUT), a deadline, another
    status (404, 401), or anything else."""
    status = http_status(error)
    if status is not None:
        return status in TRANSIENT_STATUSES
    if isinstance(error, TimeoutError):
        return False
    if isinstance(error, urllib.error.URLError):
        error = error.reason
    names = {c.__name__ for c in type(error).__mro__}
    if any("Timeout" in name for name in names):
        return False
    return bool(names & _CONNECTION_NAMES) or isinstance(
        error, (ConnectionError, http.client.IncompleteRead))


def retry_wait(error: BaseException, tries: int) -> float | None:
    """Seconds to wait before try `tries` + 1 after `error`: the server's Retry-After
    (`retry_after_seconds`: seconds or an HTTP date) when it sends one, else
    RETRY_WAITS[tries - 1]; None when it asks for longer than MAX_RETRY_AFTER."""
    wait = retry_after(error)
    if wait is None:
        return RETRY_WAITS[min(tries, len(RETRY_WAITS)) - 1]
    return max(0.0, wait) if wait <= MAX_RETRY_AFTER else None


def retry_after(error: BaseException) -> float | None:
    """The seconds the answer that failed `error` asks to wait (its Retry-After header, as
    `retry_after_seconds`), or None without one."""
    headers = _answer_headers(error)
    return retry_after_seconds(headers.get("Retry-After") if headers is not None else None)


def retry_after_seconds(value, now: float | None = None) -> float | None:
    """The wait a Retry-After header's `value` asks for, in seconds (may be negative: a date
    past): a number of seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT",
    less `now`, time.time() by default; a date was taken as no header before); None when
    `value` is None or neither."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as RFC 9110 dates are
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - (time.time() if now is None else now)


def with_retries(attempt, *, what: str, deadline: float, may_pass=transient):
    """`attempt()`, tried again (up to ATTEMPTS tries in all) while it fails in a way that
    `may_pass` (default `transient`) and the wait (`retry_wait`) ends before `deadline`
    (time.monotonic()); each try again is logged as a warning naming `what`, the failure and
    the wait. Returns what it returns; raises its last error, with ``tries`` (how many were
    made) set on it for the message."""
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except Exception as e:  # noqa: BLE001 - re-raised unless it may pass
            wait = retry_wait(e, tries) if may_pass(e) and tries < ATTEMPTS else None
            if wait is None or time.monotonic() + wait >= deadline:
                with contextlib.suppress(AttributeError):
                    e.tries = tries
                raise
            log.warning("%s: %s; trying again in %g s (try %d of %d)", what, _said(e), wait,
                        tries + 1, ATTEMPTS)
            time.sleep(wait)


def _said(error) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} {error.reason}"
    return f"{type(error).__name__}: {first_line(error)}"


#: Sent with every HTTP request: the body as it is (a server may gzip it otherwise, as a
#: request without the header accepts any encoding; urllib does not undo it).
IDENTITY = {"Accept-Encoding": "identity"}


def http_open(url, *, timeout: float, context=None):
    """``urllib.request.urlopen`` of ``url`` asking for the body as it is (IDENTITY), its
    every socket read bounded by ``timeout``; a body the server gzip-encoded all the same
    (Content-Encoding: gzip) is read decoded (`Decoded`): the file, not its transfer form; a
    body longer than its Content-Length is a ConnectionError (`Measured`)."""
    request = url if isinstance(url, urllib.request.Request) else urllib.request.Request(url)
    for name, value in IDENTITY.items():
        request.add_header(name, value)
    response = urllib.request.urlopen(request, timeout=timeout, context=context)
    if getattr(response, "length", None) is not None:
        response = Measured(response)
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    return Decoded(response) if encoding in ("gzip", "x-gzip") else response


class Measured:
    """An HTTP response with a Content-Length whose body is seen to end there: http.client
    reads only the announced bytes and drops the rest, so a body longer than its
    Content-Length came cut short without a word (a .tar.gz failed as "the archive's gzip
    data is damaged", and was not tried again). Before the read that takes the last
    announced bytes it looks at what has already come (``peek``: no more socket reads than
    the read makes); when more is there, that read gives the announced bytes and the next
    raises ConnectionError ("the body is longer than its Content-Length of N bytes"), a
    `transient` failure. A surplus still on the way then is not seen. ``read(n)``,
    ``read1(n)``, ``length`` (bytes left), ``headers`` and ``close`` are the response's."""

    def __init__(self, response):
        self._response = response
        self.headers, self.status = response.headers, getattr(response, "status", None)
        self.url = getattr(response, "url", None)
        self._announced = response.length
        self._longer = False

    @property
    def length(self):
        """The bytes of the body not yet read (http.client counts them down)."""
        return self._response.length

    def read1(self, n=-1):
        """At most ``n`` bytes of the body (all that one read brought for n < 0)."""
        return self._read(n, getattr(self._response, "read1", self._response.read))

    def read(self, n=-1):
        """At most ``n`` bytes of the body (the rest of it for n < 0); b"" at its end."""
        return self._read(n, self._response.read)

    def _read(self, n, read):
        if self._longer:
            raise ConnectionError(f"the body is longer than its Content-Length of "
                                  f"{self._announced} bytes (the server or a proxy on the "
                                  "way announced fewer bytes than it sent)")
        left, fp = self._response.length, getattr(self._response, "fp", None)
        if left and hasattr(fp, "peek") and (n is None or n < 0 or n >= left):
            self._longer = len(fp.peek(left + 1)) > left
        data = read(n)
        if self._longer and not data:  # nothing of the announced body was left to give
            return self._read(n, read)
        return data

    def close(self):
        """Closes the response."""
        self._response.close()


class Decoded:
    """A gzip-encoded HTTP response read decoded: ``read(n)`` / ``read1(n)`` give at most n
    bytes of the body as the file it is (what one socket read brought, decoded); ``length``
    is None (its decoded size is not sent). Raises ConnectionError when the encoded body
    ends before its gzip end (the connection closed early), zlib.error when it is no gzip."""

    def __init__(self, response):
        self._response = response
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buffer, self._done = b"", False
        self.length = None
        self.headers = response.headers

    def read1(self, n=-1):
        """At most ``n`` decoded bytes (all that one read brought for n < 0); b"" at the end."""
        while not self._buffer and not self._done:
            raw = getattr(self._response, "read1", self._response.read)(CHUNK)
            if raw:
                self._buffer = self._zlib.decompress(raw)
                continue
            self._buffer, self._done = self._zlib.flush(), True
            if not self._zlib.eof:
                raise ConnectionError("the connection closed before the end of the "
                                      "gzip-encoded body")
        n = len(self._buffer) if n is None or n < 0 else n
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read(self, n=-1):
        """At most ``n`` decoded bytes (the rest of the body for n < 0); b"" at the end."""
        if n is not None and n >= 0:
            return self.read1(n)
        return b"".join(iter(self.read1, b""))

    def close(self):
        """Closes the response."""
        self._response.close()


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


#: Seconds between redraws of a download's bar while no byte arrives (`redrawn`).
STALL_REDRAW = 1.0


@contextlib.contextmanager
def redrawn(bar, interval: float = STALL_REDRAW):
    """While the body runs, a daemon thread redraws the tqdm ``bar`` of a download (a
    `terminal.download_bar`) after every ``interval`` seconds in which no byte came: its
    rate falls (tqdm's moving average takes the idle time with no bytes, as an update would)
    and its elapsed time grows, where a stalled download's bar stood frozen with its last
    speed (tqdm draws only on ``update``, and the read waits up to HUBENSEMBLE_HTTP_TIMEOUT).
    A bar of plain lines keeps its own interval (`terminal.progress_bar`). Nothing for a
    disabled bar (-q), None, or a bar without tqdm's moving averages."""
    if bar is None or getattr(bar, "disable", True) or not hasattr(bar, "_ema_dt"):
        yield bar
        return
    stop = threading.Event()

    def redraw():
        seen = bar.n
        while not stop.wait(interval):
            now = bar._time()
            idle = now - bar.last_print_t
            if now < bar.start_t + (bar.delay or 0):  # not shown yet (`terminal.BAR_DELAY`)
                continue
            if bar.n != seen or idle < interval:  # bytes came: their update drew it
                seen = bar.n
                continue
            bar._ema_dn(0)  # no bytes over the idle time, as tqdm's update counts a rate
            bar._ema_dt(idle)
            bar.last_print_t, bar.last_print_n = now, bar.n
            bar.refresh()

    thread = caller_thread(redraw, name="hubensemble-download-bar")
    thread.start()
    try:
        yield bar
    finally:  # whole (errors.held_stops): a Ctrl-C here left the thread redrawing for good
        with held_stops():
            stop.set()
            thread.join()


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
    os.makedirs(os.path.dirname(absolute(dst)), exist_ok=True)
    fd, tmp = temp_file_for(dst)  # named by its writer: a killed copy's is removed later
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
    os.makedirs(os.path.dirname(absolute(dst)), exist_ok=True)
    # Named by its writer (`temp_dir_for`): a killed copy's folder, which a ".copy-XXXXXXXX"
    # name left in the cache for good, is removed by the next copy to `dst`.
    remove_stale_temp_dirs(dst)
    tmp = temp_dir_for(dst)
    os.mkdir(tmp)
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


def resumable(response, *, url, timeout: float, deadline: float, context=None, what=None):
    """``response`` (`http_open`'s answer for ``url``) read across dropped connections: the
    rest asked for with ``Range:`` where the server allows it (`resume.Resumable`; up to
    ATTEMPTS - 1 times, after RETRY_WAITS, by ``deadline``)."""
    from hubensemble.hub.resume import Resumable

    return Resumable(response, url=url, deadline=deadline, waits=RETRY_WAITS,
                     resumes=ATTEMPTS - 1, what=what,
                     open=lambda request: http_open(request, timeout=timeout, context=context))


def download(url, dst, *, timeout: float, deadline: float, context=None,
             progress=None) -> str:
    """Downloads ``url`` to the local path ``dst`` atomically; every socket read waits at most
    ``timeout`` seconds and the whole download ends by ``deadline`` (time.monotonic()).
    ``progress``, when given, is a bar counting the bytes (``update(n)``, as `copy_file`'s);
    a tqdm bar without a total gets the Content-Length as its total when one is sent.
    A connection dropped mid-body goes on from its last byte where the server allows it
    (`resumable`); a try that fails `transient`ly otherwise (HTTP 503, a drop the server
    cannot resume) is made again (`with_retries`: ATTEMPTS in all, within ``deadline``; the
    bar starts again).
    Returns the sha256 of the file. Raises what urllib raises (URLError, HTTPError,
    socket.timeout), DeadlineExceeded past the deadline, ConnectionError for a short body,
    OSError(ENOSPC) for a Content-Length larger than the disk's free space, ModuleLoadError
    (stage "network", naming ``url``) for one larger than the whole disk (`check_room`)."""
    os.makedirs(os.path.dirname(absolute(dst)), exist_ok=True)
    # Named by its writer (`temp_file_for`, which removes dead writers' first): one a killed
    # download left (a ".download-XXXXXXXX" before, in Keras' cache: MBs of weights for good)
    # is removed by the next download into its folder.
    fd, tmp = temp_file_for(dst)
    os.close(fd)

    def attempt():
        h = hashlib.sha256()
        if progress is not None and getattr(progress, "n", 0):
            progress.reset()  # a try again counts from 0 (its total kept)
        with open(tmp, "wb") as out, contextlib.closing(resumable(
                http_open(url, timeout=timeout, context=context), url=url, timeout=timeout,
                deadline=deadline, context=context)) as response:
            expected = getattr(response, "length", None)
            check_room(expected, os.path.dirname(absolute(dst)), url)
            if expected and getattr(progress, "total", 0) is None:
                progress.total = expected
            size = _receive(response, out, h, url, deadline, progress, timeout)
            if expected is not None and size < expected:
                raise ConnectionError(f"the connection closed after {size} of {expected} "
                                      f"bytes of {url}")
        return h.hexdigest()

    try:
        digest = with_retries(attempt, what=f"downloading {url}", deadline=deadline)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return digest


def check_room(length, folder, handle=None) -> None:
    """Refuses a download whose announced size (`length`, the Content-Length in bytes; None
    when not sent) is larger than the space free on the disk of `folder` (the nearest
    existing folder above it is asked): OSError(ENOSPC) naming `folder`, before a byte is
    read, where it was received until the server closed (or the disk filled) and then tried
    again (`with_retries`) as a connection closed early. An archive unpacks to at least about
    its own size, so its Content-Length is refused by the same rule.

    A size above that of the whole file system (`shutil.disk_usage(...).total`: f_blocks x
    f_frsize of os.statvfs) is no module's, and freeing space cannot help: ModuleLoadError,
    stage "network", naming `handle` (what is downloaded; `resolvers.resolve` names its own)
    and saying to check the URL and the server; a server announcing 10**15 bytes was told to
    "free disk space"."""
    if not length:
        return
    probe = absolute(folder)
    while not os.path.isdir(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        usage = shutil.disk_usage(probe)
    except OSError:  # cannot tell: the writes will say
        return
    free = usage.free
    if length > usage.total:
        raise ModuleLoadError(
            f"the server announces {length:,} bytes (Content-Length), more than the whole "
            f"file system of {probe} ({usage.total:,} bytes) holds: that is no module's size, "
            "and freeing space would not help; check the URL (a link to something else?) and "
            "the server, which may announce a wrong size", handle=handle, stage="network")
    if length > free:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: the server announces "
                      f"{length:,} bytes (Content-Length), more than the {free:,} bytes free "
                      "on that disk", str(folder))


def stalled(done: int, total: int | None, timeout: float) -> TimeoutError:
    """The TimeoutError of a download that got no byte for `timeout` seconds after `done`
    bytes (of `total`, the Content-Length, when known): how far it got, where the socket
    said only "timed out"."""
    got = f"{done} of {counted(total, 'byte')}" if total else counted(done, "byte")
    return TimeoutError(f"no byte came for {timeout:g} s after {got}")


def _receive(response, out, h, url, deadline, bar, timeout):
    """Copies ``response``'s body to ``out`` (hashing it into ``h``, counting it on ``bar``);
    returns its size in bytes. Raises DeadlineExceeded past ``deadline``."""
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"downloading {url} took longer than "
                                   f"HUBENSEMBLE_DOWNLOAD_DEADLINE after "
                                   f"{counted(size, 'byte')}")
        # What arrived (read1): the deadline is checked between socket reads.
        try:
            chunk = getattr(response, "read1", response.read)(CHUNK)
        except TimeoutError as e:  # the socket's: no byte for the read timeout
            left = getattr(response, "length", None)  # http.client counts it down
            raise stalled(size, None if left is None else size + left, timeout) from e
        if not chunk:
            return size
        out.write(chunk)
        h.update(chunk)
        size += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
