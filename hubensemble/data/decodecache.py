"""The decoded-image cache of `folder:` data: each image file decoded once, not by every command.

Every command on a run (rank, tune, fit on a finished run, export, evaluate) and each Python
call loads its `folder:` data again (`rundir.Run.task` compares the fingerprint), and decoding
the files is nearly all of that: a new user's 1,002 GTSRB files took 10-31 s a command on a
loaded 2-core machine, with TensorFlow imported for the graph decoder. The cache keeps, per
data folder, one file `KEY.npz` (KEY: the folder's absolute path, hashed) of every file's
`decode.Decoded`, looked up by the file's path under the folder and the sha256 of its bytes
(hashing costs little beside decoding: `tools/benchmarks/bench_decode_cache.py`; mtimes and
sizes are not trusted: a file rewritten with other bytes of the same size and mtime is a
miss), in a cache made by this very decode path (`code_version`: the sources of the decode
modules, Pillow's, NumPy's and TensorFlow's versions). Anything that does not match is
decoded again, never served stale; the split rule, seeds and fractions apply after decoding,
so they are no part of the key.

This module owns the file format (`CACHE_FORMAT`): an uncompressed .npz, no pickles, of
`meta` (JSON as uint8 bytes: {"format", "code", "folder", "entries": {relative path: {"sha256",
"offset", "shape", "format", "in_graph", "orientation", "turned", "shrunk_from", "dark"}, or
{"sha256", "refused": the reason decoding refused the bytes}}}) and
`pixels` (every image's uint8 bytes, concatenated). It is written atomically (temp file and
rename: a reader sees the old file or the whole new one; two writers: the last one wins). A
file that cannot be read back (damaged, cut short, another format) is moved aside as
`KEY.npz.damaged`, said in a warning, and everything is decoded again: a cache only costs
speed. Where it lives: $HUBENSEMBLE_DECODE_CACHE, else $XDG_CACHE_HOME/hubensemble/decoded
(~/.cache/…), a relative value taken under the working folder and said
(`environment.path_from_environment`); $HUBENSEMBLE_DECODE_CACHE=off (in any case: OFF, Off)
neither reads nor writes it. A folder that cannot be written (read-only, a file in the way) is
said once per process (`environment.cache_unwritable`) and costs only speed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict
from functools import lru_cache

import numpy as np

from hubensemble.data.decode import Decoded, UnreadableImage, decode_bytes
from hubensemble.environment import cache_unwritable
from hubensemble.errors import reraise_stop
from hubensemble.fileio import atomic_write_bytes
from hubensemble.text import absolute

log = logging.getLogger(__name__)

#: The layout of a cache file; another number is a miss (the file is rewritten).
CACHE_FORMAT = 1
#: The environment variable naming the cache's folder; OFF (in any case) turns the cache off.
VARIABLE = "HUBENSEMBLE_DECODE_CACHE"
OFF = "off"
#: The cache keeps its folder within these: on each write, files unused for MAX_AGE_DAYS
#: (a hit touches its file) go, then the least recently used ones until the rest fit in
#: MAX_BYTES; the file just written always stays. A folder deleted or moved leaves its file
#: behind (nothing tells), so without a bound every temporary data folder would stay cached.
MAX_BYTES = 4 << 30
MAX_AGE_DAYS = 30
#: The modules whose code decides the decoded pixels (`code_version` hashes their sources).
_DECODE_MODULES = ("decode", "graph", "graphops", "bmpgraph", "sniff", "shrink", "filepixels",
                   "arraychecks", "decodecache")


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 (hex) of what decodes a file besides its bytes: the decode modules' sources and
    the versions of Pillow, NumPy and TensorFlow (read from the installed packages' records,
    without importing TensorFlow). A cache made by other code is a miss."""
    from importlib import metadata

    h = hashlib.sha256(f"format {CACHE_FORMAT}\n".encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _DECODE_MODULES:
        with open(os.path.join(here, f"{name}.py"), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    for package in ("pillow", "numpy", "tensorflow", "tensorflow-cpu"):
        try:
            h.update(f"{package} {metadata.version(package)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package} -\n".encode())
    return h.hexdigest()


def cache_path(folder: str) -> str | None:
    """The cache file of data folder `folder` (str): FOLDER_CACHE/KEY.npz, KEY the sha256 of
    the folder's absolute path (32 hex digits); None when $HUBENSEMBLE_DECODE_CACHE is "off"
    in any case ("OFF" too) and spaces around it."""
    from hubensemble.environment import path_from_environment, user_cache_dir

    named = os.environ.get(VARIABLE, "")
    if named.strip().lower() == OFF:
        return None
    root = path_from_environment(VARIABLE) or user_cache_dir("hubensemble", "decoded")
    key = hashlib.sha256(absolute(folder).encode("utf-8", "surrogateescape")).hexdigest()
    return os.path.join(root, key[:32] + ".npz")


class DecodeCache:
    """The decoded files of one data folder: `read(path)` in place of `decode.read_image`,
    then `save()` once the load is done. Counts `decoded` (files decoded, misses) and `hits`.
    """

    def __init__(self, folder: str):
        self.folder = absolute(folder)
        self.path = cache_path(self.folder)
        self.decoded = 0
        self.hits = 0
        self._old: dict[str, dict] = {}
        self._pixels = np.zeros(0, np.uint8)
        # relative path -> (sha256, Decoded, or the reason decode_bytes refused the bytes)
        self._new: dict[str, tuple[str, Decoded | str]] = {}
        if self.path is not None and os.path.exists(self.path):
            self._open()

    def _open(self) -> None:
        """Reads the cache file; a file of other code or format is a miss (rewritten on
        save), one that cannot be read is moved aside with a warning."""
        try:
            with open(self.path, "rb") as f:
                # An .npz is a zip: anything else is said so, not in np.load's words for a
                # non-array file (which offered `allow_pickle=`, an unsafe load).
                if f.read(4) != b"PK\x03\x04":
                    raise ValueError("not a decoded-image cache file (no .npz zip header)")
            with np.load(self.path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                pixels = z["pixels"]
            if (not isinstance(meta, dict) or pixels.dtype != np.uint8 or pixels.ndim != 1
                    or not isinstance(meta.get("entries"), dict)):
                raise ValueError("not a decode cache of this layout")
            for entry in meta["entries"].values():
                if "refused" in entry:
                    continue
                end = entry["offset"] + int(np.prod(entry["shape"]))
                if entry["offset"] < 0 or end > pixels.size or len(entry["shape"]) != 3:
                    raise ValueError("an entry outside the pixels stored")
        except OSError as e:
            log.warning("the decoded-image cache %s cannot be read (%s); the images are "
                        "decoded again", self.path, e.strerror or e)
            return
        except Exception as e:  # noqa: BLE001 - any damage: zip, npy, JSON, missing keys
            aside = self.path + ".damaged"
            try:
                os.replace(self.path, aside)
                moved = f"moved aside to {aside}"
            except OSError as err:
                moved = f"not moved aside: {err.strerror or err}"
            log.warning("the decoded-image cache %s is damaged (%s: %s; %s); the images of "
                        "%s are decoded again", self.path, type(e).__name__, e, moved,
                        self.folder)
            return
        if (meta.get("format") == CACHE_FORMAT and meta.get("code") == code_version()
                and meta.get("folder") == self.folder):
            self._old, self._pixels = meta["entries"], pixels
            with contextlib.suppress(OSError):  # used: the last one `prune` removes
                os.utime(self.path)

    def read(self, path: str) -> Decoded:
        """`decode.read_image(path)`: the cached Decoded when the file's path under the folder
        and the sha256 of its bytes match an entry, else the file decoded. Raises
        UnreadableImage as `read_image` (a refusal of the bytes is cached as its reason; one
        of reading the file, an OSError, is not)."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UnreadableImage(f"cannot read it: {e.strerror or e}") from None
        digest = hashlib.sha256(data).hexdigest()
        name = os.path.relpath(absolute(path), self.folder)
        entry = self._old.get(name)
        if entry is not None and entry.get("sha256") == digest:
            self.hits += 1
            self._new[name] = (digest, entry.get("refused") or _from_entry(entry, self._pixels))
        else:
            self.decoded += 1
            try:
                self._new[name] = (digest, decode_bytes(data, name=str(path)))
            except UnreadableImage as e:
                reraise_stop(e)  # a Ctrl-C that came out as this error: never cached
                self._new[name] = (digest, str(e))
        got = self._new[name][1]
        if isinstance(got, str):  # its bytes' refusal, as decoding them said it
            raise UnreadableImage(got)
        return got

    def save(self) -> None:
        """Writes the entries of this load's files (those gone since are dropped) when any
        was decoded or dropped; an OSError (a read-only or full disk) is a warning: a cache
        only costs speed. Then lets go of every pixel it held (`release`)."""
        try:
            self._write_file()
        finally:
            self.release()

    def release(self) -> None:
        """Drops the file's buffer and this load's entries: a hit's pixels are views of the
        buffer, which a reference cycle elsewhere kept whole until the garbage collector ran
        (evaluate's scored split held 1.3x the data set's pixels, not 0.2x)."""
        self._old, self._new, self._pixels = {}, {}, np.zeros(0, np.uint8)

    def _write_file(self) -> None:
        if self.path is None or (not self.decoded and set(self._new) == set(self._old)):
            return
        entries, parts, offset = {}, [], 0
        for name, (digest, d) in self._new.items():
            if isinstance(d, str):
                entries[name] = {"sha256": digest, "refused": d}
                continue
            pixels = np.ascontiguousarray(d.pixels, dtype=np.uint8)
            record = asdict(d)
            del record["pixels"]
            record.update(sha256=digest, offset=offset, shape=list(pixels.shape))
            if record["shrunk_from"] is not None:
                record["shrunk_from"] = list(record["shrunk_from"])
            entries[name] = record
            parts.append(pixels.reshape(-1))
            offset += pixels.size
        meta = {"format": CACHE_FORMAT, "code": code_version(), "folder": self.folder,
                "entries": entries}
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
                 pixels=np.concatenate(parts) if parts else np.zeros(0, np.uint8))
        root = os.path.dirname(self.path)
        try:
            not_a_folder = _file_in_the_way(root)
            if not_a_folder is not None:
                raise not_a_folder
            atomic_write_bytes(self.path, buf.getvalue(), sync=False)
            prune(root, keep=self.path)
        except OSError as e:
            # A file in the folder's place holds no entries: not "still read".
            cache_unwritable(cache_folder(root), e, "each load decodes the images again",
                             reads_old=not isinstance(e, NotADirectoryError))


def cache_folder(root: str):
    """The `environment.CacheFolder` of the cache's folder `root` (str), for the words of
    `environment.cache_unwritable` (said once per process and folder, not at every load:
    `rank` then `tune` on an unwritable cache warned at each of their loads)."""
    from hubensemble.environment import CacheFolder

    named = os.environ.get(VARIABLE, "").strip()
    return CacheFolder(root, "decoded-image cache", VARIABLE,
                       source="variable" if named else "default",
                       skip=f"or set {VARIABLE}={OFF} to go without it")


def _file_in_the_way(root: str) -> OSError | None:
    """NotADirectoryError naming the first of `root` (str, absolute) and its parents that
    is a file (or anything but a folder), else None: HUBENSEMBLE_DECODE_CACHE naming a file
    was said as "cannot be written (File exists)", os.makedirs' words."""
    path = root
    while True:
        if os.path.lexists(path):
            if os.path.isdir(path):
                return None
            return NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", path)
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def prune(root: str, *, keep: str, max_bytes: int | None = None,
          max_age_days: float | None = None) -> list[str]:
    """Removes cache files (KEY.npz, KEY.npz.damaged) of folder `root` unused (modified or
    touched) for more than `max_age_days` (default MAX_AGE_DAYS), then the least recently
    used until the others total at most `max_bytes` (default MAX_BYTES); never `keep`.
    Returns the paths removed. Files that vanish meanwhile (another process) are passed over."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    age = (MAX_AGE_DAYS if max_age_days is None else max_age_days) * 86400
    found = []
    for entry in os.scandir(root):
        if ".npz" in entry.name and entry.is_file() and entry.path != keep:
            with contextlib.suppress(OSError):
                st = entry.stat()
                found.append((st.st_mtime, st.st_size, entry.path))
    try:
        total = os.path.getsize(keep)
    except OSError:
        total = 0
    total += sum(size for _, size, _ in found)
    now, removed = time.time(), []
    for mtime, size, path in sorted(found):  # oldest first
        if now - mtime <= age and total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(path)
        total -= size
    return removed


def _from_entry(entry: dict, pixels: np.ndarray) -> Decoded:
    """The Decoded an entry of the cache file records. Its pixels are a view of the file's
    buffer (writable; no other reader): a copy each held the data set twice over while the
    loader stacked it, where decoding holds it once."""
    shape = tuple(int(n) for n in entry["shape"])
    start = int(entry["offset"])
    image = pixels[start:start + int(np.prod(shape))].reshape(shape)
    shrunk = entry.get("shrunk_from")
    return Decoded(pixels=image, format=entry["format"], in_graph=bool(entry["in_graph"]),
                   orientation=entry.get("orientation"), turned=entry.get("turned"),
                   shrunk_from=None if shrunk is None else (int(shrunk[0]), int(shrunk[1])),
                   dark=entry.get("dark"))
