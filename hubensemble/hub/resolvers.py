"""Handles to local modules: a registry of resolvers by prefix, cache, sha256 checks.

A handle resolves to a local path: a SavedModel folder, a Keras model file (.keras, .h5) or
a keras-hub preset folder (`local_source` tells them apart). Remote modules are copied into
tensorflow_hub's cache first, every read bounded in time (`hub.remote`), so TensorFlow and
Keras only ever read local files.
"""

import contextlib
import errno
import gzip
import hashlib
import http.client
import importlib
import importlib.metadata
import logging
import os
import re
import shutil
import socket
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import tensorflow as tf
from tensorflow_hub import compressed_module_resolver, resolver as hub_resolver

from hubensemble.errors import ModuleLoadError, checks_keywords, first_line
from hubensemble.hub.ways import NEW_SHA256
from hubensemble.formatquery import without_format_query
# file_sha256: also re-exported (hubensemble.hub's callers).
from hubensemble.fileio import (atomic_write_json, file_lock, file_sha256,  # noqa: F401
                                machine_error, read_json)
# local_source, extract_archive: also re-exported (hubensemble.hub's callers, the tests).
from hubensemble.handles import (KERAS_FILE_SUFFIXES, handle_kind, keras_file_problem,
                                 local_source)
from hubensemble.localfiles import modules_inside
# LocalResolver: also re-exported (the tests, plug-ins that chain it).
from hubensemble.hub.localresolver import LocalResolver
# What a catalogue's sha256 pins for a local module (`pinned_sha256`, …):
# hubensemble.modulefiles, TensorFlow-free, as `catalogue validate` reads them too.
from hubensemble.modulefiles import (PRESET_WEIGHTS, pinned_file,  # noqa: F401
                                     pinned_files, pinned_sha256, pinned_what)
from hubensemble.hub.archive import extract_archive
# tree_sha256, foreign_entry, module_fingerprint, graph_and_index_hash: also re-exported
# (hubensemble.hub's callers, hub.locate, the tests).
from hubensemble.hub.fingerprint import (_cached_tree_sha256, foreign_entry,  # noqa: F401
                                         graph_and_index_hash, module_fingerprint,
                                         tree_sha256)
from hubensemble.hub import remote
from hubensemble.hub.answers import failure_text
# kaggle_download_url: also re-exported (hubensemble.hub's callers).
from hubensemble.hub.hosts import (kaggle_authorization, kaggle_download_url,  # noqa: F401
                                   status_hint)
from hubensemble.environment import seconds_from_environment
from hubensemble.terminal import download_bar
from hubensemble.text import escaped, names_listed
# Where downloads are kept (cachefolder.py).
from hubensemble.hub.cachefolder import (_drop_cache, _drop_dead_download_lock, _sidecar,
                                         writable_module_dir)

log = logging.getLogger(__name__)

# Seconds without a byte from the server before a download is abandoned, and the longest a
# whole download may take. Both can be raised for slow links through the environment.
HTTP_TIMEOUT = seconds_from_environment("HUBENSEMBLE_HTTP_TIMEOUT")
DOWNLOAD_DEADLINE = seconds_from_environment("HUBENSEMBLE_DOWNLOAD_DEADLINE")

#: The entry-point group through which other packages (and hubensemble's own demo zoo)
#: register resolvers: ``PREFIX = package.module:ResolverClass`` handles ``PREFIX:…``.
ENTRY_POINT_GROUP = "hubensemble.resolvers"

# Resolvers that ship with hubensemble but live outside this package, named by string so that
# hub never imports them. setup.cfg declares the same under ENTRY_POINT_GROUP; this table is
# the fallback for a source checkout or an editable install made before the entry point
# existed (their metadata does not list it).
_BUILTIN_PLUGINS = {"zoo": "hubensemble.zoo.resolver:ZooResolver"}

# A URL scheme or handle prefix; one letter is a Windows drive ("C:\…"), i.e. a path.
_PREFIX_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


class _HashingReader:
    """A file object that hashes what passes through it and enforces an overall deadline.

    A read returns what one socket read brings (``read1``), at most ``n`` bytes: a full
    ``read(n)`` of a server that trickles a byte a second would outlast the deadline by up
    to ``n`` seconds, as the deadline is checked between reads. The tar reader asks again
    for what is missing."""

    def __init__(self, fileobj, deadline):
        self._f = fileobj
        self._deadline = deadline
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, n=-1):
        if time.monotonic() > self._deadline:
            raise remote.DeadlineExceeded(
                f"the download took longer than HUBENSEMBLE_DOWNLOAD_DEADLINE ("
                f"{DOWNLOAD_DEADLINE:g} s) after {self.bytes} bytes")
        read1 = getattr(self._f, "read1", None)
        data = read1(n) if read1 is not None and n is not None and n > 0 else self._f.read(n)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def drain(self):
        while self.read(1 << 20):
            pass


class ArchiveResolver(compressed_module_resolver.HttpCompressedFileResolver):
    """tensorflow_hub's compressed-archive resolver with timeouts and archive checksums.

    Handles tfhub.dev and Kaggle handles, ``http(s)://…tar.gz`` and ``gs://…tar.gz``, into
    tensorflow_hub's cache (``$TFHUB_CACHE_DIR``; shared with ``hub.load`` users). The sha256
    of the archive as downloaded is recorded next to the cached folder, so a later load of a
    cached module can still be checked against the catalogue's ``sha256``. Network errors
    raise what urllib raises (classified by `classify_resolution_error`).
    """

    def is_supported(self, handle):
        """Kaggle handles, gs:// archives, and the http(s) handles tensorflow_hub downloads
        as compressed archives."""
        if kaggle_download_url(handle):
            return True
        if handle.startswith("gs://"):
            return handle.endswith((".tar", ".tar.gz", ".tgz"))
        return super().is_supported(handle)

    def _call_urlopen(self, request):
        # The body as it is: a gzip transfer encoding is undone (`remote.http_open`).
        return remote.http_open(request, timeout=HTTP_TIMEOUT, context=self._context)

    def module_dir(self, handle):
        """The cache folder of ``handle`` (tensorflow_hub's naming: a hash of the handle),
        made: `writable_module_dir`."""
        return writable_module_dir(handle)

    def _fetch(self, handle, tmp_dir, deadline):
        """One try of the download of `handle`'s archive, unpacked into the (emptied) folder
        `tmp_dir`; returns its reader (sha256, bytes). ConnectionError when fewer bytes came
        than the server's Content-Length said, whether or not the archive unpacked."""
        shutil.rmtree(tmp_dir, ignore_errors=True)
        os.makedirs(tmp_dir, exist_ok=True)
        if handle.startswith("gs://"):
            # tf.io.gfile has no timeout of its own: every read is bounded instead.
            source = remote.open_gfile(handle, timeout=HTTP_TIMEOUT, deadline=deadline)
        else:
            url = kaggle_download_url(handle)
            # tensorflow_hub appends ?tf-hub-format=compressed: a handle given with it (a
            # tfhub.dev download link) was asked for it twice (`formatquery`).
            request = urllib.request.Request(url or self._append_compressed_format_query(
                without_format_query(handle)))
            key = kaggle_authorization(url) if url else None
            if key:  # as the Kaggle API is asked; never sent on to where it redirects (storage)
                request.add_unredirected_header("Authorization", key)
            # A connection dropped mid-body goes on from its last byte where the server
            # allows it (never with the key: the rest is asked of where it redirected).
            source = remote.resumable(self._call_urlopen(request), url=request.full_url,
                                      timeout=HTTP_TIMEOUT, deadline=deadline,
                                      context=self._context, what=handle)
        expected = getattr(source, "length", None)  # Content-Length, when sent
        with contextlib.closing(source), download_bar(handle, expected) as bar, \
                remote.redrawn(bar):
            remote.check_room(expected, tmp_dir)  # a size no disk here holds: not read
            reader = remote.Shown(source if isinstance(source, remote.BoundedReader)
                                  else _HashingReader(source, deadline), bar)
            try:
                extract_archive(reader, tmp_dir)
                reader.drain()  # bytes after the tar's end still belong to the file
            except (remote.DeadlineExceeded, TimeoutError) as e:  # said as such
                if isinstance(e, remote.DeadlineExceeded) or isinstance(
                        source, remote.BoundedReader):  # its own words name the limit
                    raise
                raise remote.stalled(reader.bytes, expected, HTTP_TIMEOUT) from e
            except Exception as e:
                if full_disk(e):  # no room for it: the rest would not tell more
                    raise
                # A body cut short shows up as a broken archive, and a broken archive
                # stops the reading early: read the rest (bounded as every read) to tell.
                reader.drain()
                if expected is not None and reader.bytes < expected:
                    raise ConnectionError(f"the connection closed after {reader.bytes} "
                                          f"of {expected} bytes") from e
                raise
        if expected is not None and reader.bytes < expected:
            # What came unpacked, but is not what the server said it sent: not kept.
            raise ConnectionError(f"the connection closed after {reader.bytes} of "
                                  f"{expected} bytes")
        return reader

    def __call__(self, handle):
        module_dir = self.module_dir(handle)

        def download(handle, tmp_dir):
            deadline = time.monotonic() + DOWNLOAD_DEADLINE
            # A try that fails transiently (HTTP 503, a connection dropped mid-body) is made
            # again into an emptied folder (`remote.with_retries`), within the one deadline.
            reader = remote.with_retries(lambda: self._fetch(handle, tmp_dir, deadline),
                                         what=f"downloading {handle}", deadline=deadline)
            # The pin is of the archive, which is not kept: the files it unpacked to are
            # keyed too, so a later load checks the pin against what is on disk now.
            atomic_write_json(_sidecar(module_dir), {
                "handle": handle, "archive_sha256": reader.sha256.hexdigest(),
                "tree_sha256": tree_sha256(tmp_dir), "bytes": reader.bytes,
                "time": time.time()})

        _drop_dead_download_lock(module_dir, handle)
        return hub_resolver.atomic_download(handle, download, module_dir,
                                            self._lock_file_timeout_sec())


class RemoteCopyResolver:
    """Remote modules that are not archives, copied into tensorflow_hub's cache: ``gs://``
    (or another gfile scheme's) SavedModel or keras-hub preset folders, and Keras model files
    (``…/model.keras``, ``….h5``) at ``gs://`` or ``http(s)://`` URLs.

    Every remote call is bounded (`hub.remote`: HUBENSEMBLE_HTTP_TIMEOUT per call without an
    answer, HUBENSEMBLE_DOWNLOAD_DEADLINE in all). The copy is made once (under a lock; it
    appears complete or not at all); delete the cache folder to fetch a changed module again.
    The sha256 of what was copied (the file, or a folder's saved_model.pb) is recorded next to
    it, so a later run checks the catalogue's pin against the bytes first fetched.
    """

    def is_supported(self, handle):
        """gs:// handles that are not archives; http(s) URLs of .keras/.h5 files."""
        if handle.startswith(("http://", "https://")):
            return _url_path(handle).lower().endswith(KERAS_FILE_SUFFIXES)
        return remote.is_remote(handle) and not handle.endswith((".tar", ".tar.gz", ".tgz"))

    def module_dir(self, handle):
        """The cache folder of ``handle`` (tensorflow_hub's naming: a hash of the handle),
        made: `writable_module_dir`."""
        return writable_module_dir(handle)

    def __call__(self, handle):
        module_dir = self.module_dir(handle)
        is_file = _url_path(handle).lower().endswith(KERAS_FILE_SUFFIXES)
        target = (os.path.join(module_dir, os.path.basename(_url_path(handle))) if is_file
                  else module_dir)
        with file_lock(module_dir + ".hubensemble.lock", timeout=DOWNLOAD_DEADLINE):
            if os.path.exists(target) and os.path.exists(_sidecar(module_dir)):
                return target
            shutil.rmtree(module_dir, ignore_errors=True)
            deadline = time.monotonic() + DOWNLOAD_DEADLINE
            limits = dict(timeout=HTTP_TIMEOUT, deadline=deadline)
            with download_bar(handle) as bar, remote.redrawn(bar):
                if is_file and handle.startswith(("http://", "https://")):
                    digest = remote.download(handle, target, progress=bar, **limits)
                elif is_file:
                    digest = remote.copy_file(handle, target, progress=bar, **limits)
                else:
                    remote.copy_tree(handle, module_dir, progress=bar, **limits)
                try:
                    digest = pinned_sha256(module_dir)
                except ValueError:  # a sharded preset's index that is not Keras': the pin's
                    digest = None  # check names it (_verify_checksum)
            problem = is_file and keras_file_problem(target, name=handle)
            if problem:  # e.g. a login page for the URL: never kept, so never trusted later
                shutil.rmtree(module_dir, ignore_errors=True)
                raise ModuleLoadError(f"{problem}; not kept in the cache, so the next run "
                                      "downloads it again", handle=handle, stage="load")
            atomic_write_json(_sidecar(module_dir), {
                "handle": handle, "sha256": digest, "time": time.time()})
        return target


def _url_path(handle):
    return urllib.parse.urlsplit(handle).path if "://" in handle else handle


# ---------------------------------------------------------------------------------------------
# The registry: handle prefix -> resolvers tried in order (tensorflow_hub's resolver chain,
# keyed by prefix so that a plug-in such as the zoo registers itself and hub never imports it).

_ARCHIVE, _COPY, _LOCAL = ArchiveResolver(), RemoteCopyResolver(), LocalResolver()
_REGISTRY = {
    "https": [_COPY, _ARCHIVE, _LOCAL], "http": [_COPY, _ARCHIVE, _LOCAL], "kaggle": [_ARCHIVE],
    "gs": [_ARCHIVE, _COPY], "file": [_LOCAL],
}
# keras:NAME (a keras.applications architecture) and keras-hub presets (kaggle://, hf://)
# are not files to resolve: hub.runtime.locate builds or fetches them.
_REGISTRY_LOCK = threading.Lock()


@checks_keywords
def register_resolver(prefix, resolver):
    """Registers ``resolver`` for handles ``PREFIX:…``, tried before those already registered.

    ``resolver`` has ``is_supported(handle) -> bool`` and ``__call__(handle) -> str`` (the
    local SavedModel folder), as tensorflow_hub's resolvers do. ``prefix`` is the part before
    the first ``:`` (two or more characters; ``"zoo"`` for ``zoo:demo/NAME``). Packages
    register lazily through the entry-point group ``hubensemble.resolvers`` instead (loaded the
    first time a handle with that prefix is resolved). Raises ValueError for a bad prefix.
    """
    if not _PREFIX_RE.fullmatch(f"{prefix}:"):
        raise ValueError(f"a resolver prefix is a URL scheme such as 'zoo' or 'https', got "
                         f"{prefix!r}")
    with _REGISTRY_LOCK:
        _REGISTRY[prefix] = [resolver] + [r for r in _REGISTRY.get(prefix, [])
                                          if r is not resolver]


def handle_prefix(handle):
    """The prefix of ``handle`` (``"zoo"`` for ``zoo:demo/x``, ``"https"`` for a URL), or None
    for a local path (also ``C:\\…`` and ``./a:b``)."""
    m = _PREFIX_RE.match(handle)
    return m.group(1).lower() if m else None


def known_prefixes():
    """Every prefix a handle may have: registered, declared as an entry point or built in."""
    return sorted(set(_REGISTRY) | set(_entry_points()) | set(_BUILTIN_PLUGINS))


def _entry_points():
    try:
        return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception as e:  # noqa: BLE001 - broken metadata of another package
        log.warning("cannot read the %s entry points: %s", ENTRY_POINT_GROUP, e)
        return {}


def _load_plugin(prefix):
    """Registers the entry-point (or built-in) resolver of ``prefix``; False when none."""
    ep = _entry_points().get(prefix)
    target = ep.value if ep is not None else _BUILTIN_PLUGINS.get(prefix)
    if target is None:
        return False
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    register_resolver(prefix, obj() if isinstance(obj, type) else obj)
    return True


def resolver_for(handle):
    """The resolver that will resolve ``handle``: the first registered for its prefix that
    supports it (a local path goes to LocalResolver). Raises ModuleLoadError(stage="handle")
    for a prefix nothing resolves, listing the known prefixes."""
    prefix = handle_prefix(handle)
    if prefix is None:
        return _LOCAL
    if prefix not in _REGISTRY:
        try:
            _load_plugin(prefix)
        except Exception as e:  # noqa: BLE001 - a broken plug-in fails its handles only
            raise ModuleLoadError(f"the resolver of {prefix}: handles cannot be loaded: "
                                  f"{type(e).__name__}: {first_line(e)}", handle=handle,
                                  stage="handle") from e
    for impl in _REGISTRY.get(prefix, []):
        if impl.is_supported(handle):
            return impl
    listed = ", ".join(f"{p}:" for p in known_prefixes())
    raise ModuleLoadError(f"no resolver for {prefix}: handles; known prefixes: {listed} (or a "
                          "local path; write ./PATH for a relative path that contains ':')",
                          handle=handle, stage="handle")


def _cache_folder(impl, handle):
    # The folder a download of `handle` was written into (a file's write names none), or None.
    with contextlib.suppress(Exception):
        return impl.module_dir(handle) if hasattr(impl, "module_dir") else None
    return None


#: The errnos of a write the disk refused for want of room (a full disk or quota, a file size
#: limit): the machine's, whatever the download (`full_disk`).
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def full_disk(exc: BaseException) -> OSError | None:
    """The OSError (errno in NO_ROOM_ERRNOS) of a write that found no room behind `exc`, as
    `fileio.machine_error` finds it (also behind TensorFlow's "…; No space left on device"
    or "File too large" of an unpacked file), or None. Such a failure says nothing of the
    module or the network: the same download succeeds once space is freed."""
    disk = machine_error(exc)
    return disk if disk is not None and disk.errno in NO_ROOM_ERRNOS else None


def classify_resolution_error(exc):
    """Which stage a resolution failure belongs to: "network", "archive" or "savedmodel"
    (or a ModuleLoadError's own stage)."""
    if isinstance(exc, ModuleLoadError):
        return exc.stage
    if isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                        http.client.HTTPException, tf.errors.UnavailableError)):
        return "network"
    if isinstance(exc, (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError)):
        return "archive"
    if isinstance(exc, OSError) and "valid module" in str(exc):
        return "archive"
    if isinstance(exc, (FileNotFoundError, tf.errors.NotFoundError)):
        return "savedmodel"
    return "network" if isinstance(exc, OSError) else "archive"


def ended_early(error: BaseException) -> bool:
    """Whether the archive `error` (or an error it was raised from) says its data ended
    before its end: a compressed stream's EOFError (gzip, bzip2, xz: "Compressed file ended
    before the end-of-stream marker was reached") or tarfile's "unexpected end of data". A
    server that announces no Content-Length and closes the connection early gives exactly
    that, indistinguishable from a file cut short at its source: both are worth a second
    try."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, EOFError) or "unexpected end of data" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def network_hint(error: BaseException, handle=None) -> str:
    """What to do about a network error, by its kind: an HTTP status that says (`status_hint`:
    401/403 the credentials of `handle`'s host, 404, 429), a whole download past its deadline
    (HUBENSEMBLE_DOWNLOAD_DEADLINE), a timeout (HUBENSEMBLE_HTTP_TIMEOUT bounds each call), a
    host name that does not resolve (no network, or a mistyped host: a longer timeout would
    not help), a passing failure tried again in vain (`remote.with_retries`: HTTP 503, a
    connection dropped), a redirect loop, or anything else (the URL, the connection)."""
    said = status_hint(error, handle, shown=failure_text(error))  # its callers show that
    if said:
        return said
    text = str(error).lower()
    chain = [error, error.__cause__, getattr(error, "reason", None)]
    if any(isinstance(e, socket.gaierror) for e in chain) or any(words in text for words in (
            "name or service not known", "temporary failure in name resolution",
            "nodename nor servname", "no address associated")):
        return ("its host name does not resolve: check the URL and that this machine is "
                "online; offline, use a local copy of the module (a folder handle)")
    if any(isinstance(e, remote.DeadlineExceeded) for e in chain):
        return ("the whole download took too long: raise HUBENSEMBLE_DOWNLOAD_DEADLINE (now "
                f"{DOWNLOAD_DEADLINE:g} s) for a large module on a slow link")
    if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in text:
        return ("no answer in time: check your connection, or raise HUBENSEMBLE_HTTP_TIMEOUT "
                f"(now {HTTP_TIMEOUT:g} s) for a slow link")
    tries = getattr(error, "tries", 1)
    if remote.transient(error) and tries > 1:
        return (f"tried {tries} times: the server or the connection is failing for now; "
                "try again later, and check your connection")
    if isinstance(error, urllib.error.HTTPError) and error.code in (301, 302, 303, 307, 308):
        return ("the server redirects in a loop: open the URL in a browser, and put the "
                "address it ends at in the catalogue")
    return "check the URL and your connection"


def resolve(handle, *, name=None, sha256=None):
    """The local path (str) of ``handle``: a SavedModel folder, a Keras model file or a
    keras-hub preset folder (`local_source`), verifying ``sha256`` when given.

    For a downloaded archive the checksum is that of the archive; otherwise that of the
    `pinned_files` (saved_model.pb, the .keras/.h5 file, a preset's model.weights.h5 or its
    model.weights.json and shards: `pinned_sha256`). Raises
    ModuleLoadError naming ``name`` and ``handle`` with its stage: "handle" (no resolver for
    the prefix), "network", "archive", "checksum" (a mismatch; a downloaded module that
    fails is removed from the cache), "local path" (a missing path), "savedmodel" (none of
    the three kinds of module; for a folder that holds some, which ones:
    `localfiles.modules_inside`, `catalogue validate`'s words), or whatever stage a plug-in
    resolver raises; raises OSError (its errno ENOSPC, EDQUOT or EFBIG: `full_disk`) naming
    ``handle`` and the file when the download found no room on the disk, which is neither
    the module's fault nor the network's.
    """
    impl = resolver_for(handle)
    if sha256 and isinstance(impl, (ArchiveResolver, RemoteCopyResolver)):
        _drop_cache_of_other_bytes(impl, handle, sha256.lower())
    try:
        path = impl(handle)
    except ModuleLoadError as e:
        raise ModuleLoadError(_message(e), module=name or e.module, handle=handle,
                              stage=e.stage) from e
    except Exception as e:  # noqa: BLE001 - reclassified with the handle named
        disk = full_disk(e)
        if disk is not None and not isinstance(impl, (ArchiveResolver, RemoteCopyResolver)):
            if disk is e:  # e.g. the zoo's build: its own file, no download's words
                raise
            raise disk from e
        if disk is not None:  # the machine's, not the module's nor the network's
            raise OSError(disk.errno, f"{disk.strerror} while {escaped(handle)} was downloaded "
                          "into the module cache (TFHUB_CACHE_DIR may name a folder on another "
                          "disk)", disk.filename or _cache_folder(impl, handle)) from e
        stage = classify_resolution_error(e)
        hint = {"network": network_hint(e, handle),
                "archive": "the download is not a valid SavedModel tarball"
                + (", or the connection closed early: run the same command again"
                   if ended_early(e) else ""),
                "savedmodel": "check the path"}.get(stage, "")
        raise ModuleLoadError(f"{failure_text(e)} ({hint})", module=name,
                              handle=handle, stage=stage) from e
    if local_source(path) is None:
        why = (f"no saved_model.pb in {path} (nor a .keras/.h5 model file or a keras-hub "
               "preset's config.json and metadata.json)")
        if isinstance(impl, (ArchiveResolver, RemoteCopyResolver)):
            # Not kept: the next run fetches it again (once fixed), not this copy forever.
            why = _downloaded_without_module(path, impl, handle)
        else:  # TF Serving's m/1/saved_model.pb, or a folder of several modules: validate's
            why += modules_inside(path)  # words, the one meant or each found
        raise ModuleLoadError(why, module=name, handle=handle, stage="savedmodel")
    if sha256:
        _verify_checksum(impl, handle, path, sha256.lower(), name)
    return path


def _message(err):
    # The bare message of a ModuleLoadError: its str() already carries the stage and handle,
    # which the re-raised error adds again ("handle 'h': handle 'h': …" before).
    return str(err.message)


@contextlib.contextmanager
def download_dropped_if_unloadable(handle, stages=("savedmodel", "load"), path=None):
    """Runs the body (a parse or load of ``handle``'s located files); when it raises a
    ModuleLoadError of one of ``stages`` and ``handle`` is a download, the download is
    removed from the cache that holds it and the error, re-raised with its stage, module and
    handle, says so: an archive, or a file or folder copied by RemoteCopyResolver, from
    hubensemble's cache; a ``kaggle://``/``hf://`` preset, whose files are the folder
    ``path``, from its loader's (`loaders.drop_preset`: kagglehub's or huggingface_hub's,
    through their own cache code; where that is not safe, the error names the folder to
    delete).

    Why: a download is kept once it came whole, so a module whose files cannot be read (a
    ``saved_model.pb`` that does not parse, variables cut short, a .keras file Keras
    refuses, a preset's config.json that is a web page answered with HTTP 200) was loaded
    from the cache on every later run, failing the same way even after the publisher fixed
    the file or the network came back. As for a download without a module at its top
    (`_downloaded_without_module`), the next run fetches it again. Local handles are never
    touched. Raises the ModuleLoadError the body raised (any other exception unchanged).
    """
    try:
        yield
    except ModuleLoadError as e:
        said = _dropped_words(handle, path) if e.stage in stages else None
        if said is None:
            raise
        raise ModuleLoadError(e.problem, way=tuple(e.way or ()) + (f"; {said}",), form=e.form,
                              module=e.module, handle=e.handle or handle, stage=e.stage) from e


def _dropped_words(handle, path):
    # What became of an unusable download of `handle`, for its error; None: not a download.
    if handle_kind(handle) == "keras-hub":
        if path is None:
            return None
        from hubensemble.hub.loaders import drop_preset

        return drop_preset(handle, path)
    removed = _drop_download(handle)
    if removed is None:
        return None
    return (f"the download was removed from the cache ({removed}), so the next run downloads "
            "it again")


def _drop_download(handle):
    """Removes the cached download of ``handle`` and returns its folder; None when
    ``handle`` is not downloaded into the cache or nothing of it is there."""
    try:
        impl = resolver_for(handle)
    except ModuleLoadError:
        return None
    if not isinstance(impl, (ArchiveResolver, RemoteCopyResolver)):
        return None
    module_dir = impl.module_dir(handle)
    if not os.path.lexists(module_dir):
        return None
    _drop_cache(module_dir)
    return module_dir


def _drop_cache_of_other_bytes(impl, handle, expected):
    # A cached download whose recorded sha256 is not the pin is fetched again rather than
    # refused: the copy may be stale (the module was updated and the pin with it). One
    # cached by plain tensorflow_hub has no record: fetched again rather than trusted.
    # A cached archive's files must be those it unpacked to (`tree_sha256`), written by
    # this user: the record beside them could be rewritten along with them.
    module_dir = impl.module_dir(handle)
    if not os.path.exists(module_dir):
        return
    archive = isinstance(impl, ArchiveResolver)
    try:
        record = read_json(_sidecar(module_dir))
        recorded, tree = record["archive_sha256" if archive else "sha256"], record.get(
            "tree_sha256")
    except (OSError, KeyError, ValueError, TypeError, AttributeError):
        recorded = tree = None
    if archive and recorded == expected:
        foreign = foreign_entry(module_dir) or foreign_entry(_sidecar(module_dir))
        if foreign:
            raise ModuleLoadError(
                f"the cached copy {module_dir} cannot be trusted for the catalogue's sha256: "
                f"{foreign}, so its files could have been replaced after they were checked; "
                f"delete {module_dir} (it is fetched again) or make it yours alone (chmod -R "
                "go-w), and on a shared machine set TFHUB_CACHE_DIR to a folder only you can "
                "write", handle=handle, stage="checksum")  # the cache's fix, not the pin's
        if tree != _cached_tree_sha256(module_dir):
            log.warning("fetching %s again: the files of its cached copy %s %s",
                        escaped(handle), escaped(module_dir),
                        "were not keyed when downloaded (an older hubensemble)"
                        if tree is None else "changed since they were downloaded and checked")
            _drop_cache(module_dir)
            return
    if recorded != expected:
        log.info("fetching %s again: its cached copy %s %s", escaped(handle), escaped(module_dir),
                 "has no recorded sha256" if recorded is None else
                 f"is of other bytes (sha256 {recorded}) than the catalogue's sha256")
        _drop_cache(module_dir)


def _downloaded_without_module(path, impl, handle):
    """Why a download holds no module, with what it holds; the download is removed from the
    cache first (kept, every later run would fail on it without fetching the fixed one)."""
    module_dir = impl.module_dir(handle)
    try:
        entries = sorted(os.listdir(path))
    except OSError:
        entries = []
    inner = [e for e in entries if local_source(os.path.join(path, e)) is not None]
    _drop_cache(module_dir)
    held = names_listed(f"{e}/" if os.path.isdir(os.path.join(path, e)) else e
                        for e in entries[:6]) or "nothing"
    why = (f"the download of {handle} holds no module at its top (no saved_model.pb, .keras/.h5 "
           f"model file or keras-hub preset; it holds: {held}"
           f"{' …' if len(entries) > 6 else ''})")
    if inner and isinstance(impl, ArchiveResolver):
        why += (f"; the module is in its folder {inner[0]}/: archive that folder's contents "
                f"(tar czf module.tar.gz -C {inner[0]} .)")
    return why + "; it was removed from the cache, so the next run downloads it again"


def _verify_checksum(impl, handle, path, expected, name):
    if isinstance(impl, ArchiveResolver):
        try:
            actual = read_json(_sidecar(path))["archive_sha256"]
        except (OSError, KeyError, ValueError):
            actual = None
        what = "archive"
    else:
        try:
            actual, what = pinned_sha256(path), pinned_what(path)
        except ValueError as e:  # a sharded preset's index that is not Keras'
            raise ModuleLoadError(f"{e} ({path})", module=name, handle=handle,
                                  stage="load") from e
    if actual != expected:
        if isinstance(impl, ArchiveResolver):
            # Never leave a module that failed verification where the next load would find it.
            _drop_cache(path)
            what = "archive as downloaded now"
        raise ModuleLoadError(
            f"sha256 of the {what} is {actual}, the catalogue expects {expected}; refusing to "
            "load it", way=(". If the module was legitimately updated, ", NEW_SHA256),
            module=name, handle=handle, stage="checksum")
