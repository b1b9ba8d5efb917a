"""An HTTP download that goes on from where a dropped connection left it (``Range:``).

A module's archive of 20-300 MB on a link that drops now and then (hotel or train Wi-Fi)
started again from byte 0 at every drop, so each drop cost everything received before it:
with drops at random once per 150 MB on average, a 300 MB archive came whole within the 3
tries in 40 % of fetches, and in 97 % when each try goes on from its last byte up to twice
(100 MB: 91 % and 100 %, with 130 and 102 MB sent per fetch; 20 MB: 100 % either way;
tools/benchmarks/bench_resume.py, 200 fetches each). `Resumable` asks the server for the
rest (``Range: bytes=N-``, with ``If-Range`` naming the file's ETag or Last-Modified, RFC
9110 §14.2 and §13.1.5) when the first answer allowed it (``Accept-Ranges: bytes``, a
``Content-Length``, a strong ETag or a Last-Modified, no ``Content-Encoding``), and takes
the rest only as a ``206 Partial Content`` whose ``Content-Range`` starts at that byte and
ends at the same length, of the same file; anything else (a 200 of the whole, another length)
raises the drop, and the caller's try again (`remote.with_retries`) starts from byte 0 as
before.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.request

from hubensemble.errors import first_line

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$", re.IGNORECASE)


class Resumable:
    """The body of ``response`` (what `remote.http_open` returned for ``url``), read across
    up to ``resumes`` dropped connections: after a drop (ConnectionError but a body longer
    than its Content-Length, http.client.IncompleteRead, or the body ending before its
    Content-Length) the rest is asked for from ``open(request, timeout=…)`` after the wait
    ``waits[k]`` (seconds), while ``deadline`` (time.monotonic()) allows. ``read(n)``,
    ``read1(n)``, ``length`` (bytes of the whole body not yet read; None when unknown),
    ``headers``, ``resumed`` (how many times it went on) and ``close`` as a response's."""

    def __init__(self, response, *, url, open, deadline, waits, resumes=2, what=None):
        self._response = response
        self.headers = response.headers
        self._url = getattr(response, "url", None) or url  # after redirects
        self._open, self._deadline, self._waits = open, deadline, tuple(waits)
        self._left = resumes
        self._what = what or url
        self._total = getattr(response, "length", None)
        self._done = 0
        self.resumed = 0
        headers = response.headers
        self._validator = headers.get("ETag") or headers.get("Last-Modified")
        # Without a strong validator the rest could be of a file changed meanwhile (RFC 9110
        # §13.1.5: If-Range needs one; a weak ETag, W/"…", is not one).
        self._can = (self._total is not None and bool(self._validator)
                     and (headers.get("Accept-Ranges") or "").strip().lower() == "bytes"
                     and not (headers.get("Content-Encoding") or "").strip()
                     and not self._validator.startswith("W/"))

    @property
    def length(self):
        """The bytes of the body not yet read (None when its size is unknown)."""
        return None if self._total is None else self._total - self._done

    def read1(self, n=-1):
        """At most ``n`` bytes of the body (what one socket read brought)."""
        return self._read(n, "read1")

    def read(self, n=-1):
        """At most ``n`` bytes of the body (the rest for n < 0); b"" at its end."""
        return self._read(n, "read")

    def _read(self, n, how):
        while True:
            read = getattr(self._response, how, None) or self._response.read
            try:
                data = read(n)
            except (ConnectionError, http.client.IncompleteRead) as e:
                if "longer than its Content-Length" in str(e) or not self._resume(e):
                    raise
                continue
            if not data and self._total is not None and self._done < self._total \
                    and self._resume(None):
                continue
            self._done += len(data)
            return data

    def _resume(self, error) -> bool:
        """Whether the rest of the body now comes from a new answer (see the class)."""
        if not self._can or self._left <= 0:
            return False
        wait = self._waits[min(self.resumed, len(self._waits) - 1)] if self._waits else 0.0
        if time.monotonic() + wait >= self._deadline:
            return False
        said = (f"{type(error).__name__}: {first_line(error)}" if error is not None else
                "the connection closed")
        log.warning("downloading %s: %s after %d of %d bytes; asking for the rest in %g s "
                    "(%d of %d)", self._what, said, self._done, self._total, wait,
                    self.resumed + 1, self.resumed + self._left)
        self._left -= 1
        time.sleep(wait)
        request = urllib.request.Request(self._url, headers={
            "Range": f"bytes={self._done}-", **({"If-Range": self._validator}
                                                if self._validator else {})})
        try:
            answer = self._open(request)
        except Exception as e:  # noqa: BLE001 - the drop is what is said; a try starts over
            log.info("downloading %s: the rest could not be asked for (%s: %s)", self._what,
                     type(e).__name__, first_line(e))
            return False
        span = _CONTENT_RANGE.match(answer.headers.get("Content-Range") or "")
        same = (getattr(answer, "status", None) == 206 and span is not None
                and int(span.group(1)) == self._done and int(span.group(3)) == self._total
                and int(span.group(2)) == self._total - 1
                and (answer.headers.get("ETag") or answer.headers.get("Last-Modified")
                     or self._validator) == self._validator)
        if not same:  # the whole file again, or another one: the caller starts over
            answer.close()
            return False
        self._response.close()
        self._response = answer
        self.resumed += 1
        return True

    def close(self):
        """Closes the current answer."""
        self._response.close()
