"""Content keys of local module files: a folder's tree hash, a SavedModel's fingerprint, and
whether a cached entry can be trusted (owner and mode).

Reads files only (no TensorFlow graph is built); `hub.resolvers` checks downloads with them,
`hub.locate` and the embedding cache key modules by them.
"""

import hashlib
import os
import threading

from hubensemble.fileio import file_sha256


def tree_sha256(path) -> str:
    """A content key (sha256 hex) of every file under the folder ``path``: each file's path
    relative to it (with "/"; its bytes, as the system gives them, whatever the locale) and
    its sha256, in sorted order; links are not followed (an archive never unpacks to one:
    `extract_archive`)."""
    h = hashlib.sha256()
    for folder, subfolders, files in os.walk(path):
        subfolders.sort(key=os.fsencode)  # (UTF-8's byte order is the code points' order)
        for name in sorted(files, key=os.fsencode):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            # fsencode: the name's own bytes, whatever the locale; str.encode() raised on a
            # name that is not UTF-8 (an archive's Latin-1 member: a lone surrogate here),
            # and on every non-ASCII name under a C locale with PYTHONUTF8=0.
            h.update(os.fsencode(rel) + f"={file_sha256(full)}\n".encode())
    return h.hexdigest()


# {folder: (stat identities of its files, tree_sha256)}: a module that tune loads per trial
# is hashed once per process while none of its files changed (`foreign_entry` rules out
# another user rewriting one in place).
_TREES: dict = {}
_TREES_LOCK = threading.Lock()


def _cached_tree_sha256(path) -> str:
    identity = tuple(sorted(
        (os.path.join(folder, n), st.st_ino, st.st_size, st.st_mtime_ns)
        for folder, _, files in os.walk(path)
        for n in files for st in [os.stat(os.path.join(folder, n))]))
    with _TREES_LOCK:
        known = _TREES.get(path)
    if known and known[0] == identity:
        return known[1]
    key = tree_sha256(path)
    with _TREES_LOCK:
        _TREES[path] = (identity, key)
    return key


def foreign_entry(path) -> str | None:
    """What makes ``path`` (a file, or a folder and all under it) untrustworthy for a checked
    cache, or None: an entry another user owns (root's are trusted), or a folder or file that
    others may write to. None on systems without POSIX owners."""
    if not hasattr(os, "getuid"):
        return None
    uid = os.getuid()
    entries = [path]
    if os.path.isdir(path) and not os.path.islink(path):
        entries += [os.path.join(folder, n) for folder, subfolders, files in os.walk(path)
                    for n in subfolders + files]
    for entry in entries:
        try:
            st = os.lstat(entry)
        except OSError:
            continue
        if st.st_uid not in (uid, 0):
            return f"{entry} belongs to another user (uid {st.st_uid})"
        if st.st_mode & 0o022 and not os.path.islink(entry):
            return f"{entry} may be written by others (mode {st.st_mode & 0o777:o})"
    return None


def module_fingerprint(path):
    """A content key (sha256 hex) of the local SavedModel folder ``path`` (remote handles are
    copied into a local cache by `resolve` first): its graph, its variables' index and every
    ``variables.data-*`` shard.

    The same module under another handle or folder has the same key; a module changed in
    place gets a new one, even when a shard keeps its size: keyed by sizes, a module with
    one flipped byte was served from the embedding cache and "ranked" without TensorFlow
    ever reading the damage (its checksum refuses it on load). Hashing reads the module's
    bytes once per file identity (`rank.located` remembers the key), about as much as
    loading it would. Reads files only (no TensorFlow graph is built).
    """
    h = graph_and_index_hash(path)
    variables = os.path.join(path, "variables")
    if os.path.isdir(variables):
        for name in sorted(os.listdir(variables)):
            if name.startswith("variables.data-"):
                h.update(os.fsencode(name)
                         + f"={file_sha256(os.path.join(variables, name))}".encode())
    return h.hexdigest()


def graph_and_index_hash(path):
    """A sha256 (hashlib) fed with the local SavedModel folder ``path``'s saved_model.pb and
    variables index, each named and hashed: where `module_fingerprint` starts, and all that
    its first rule hashed (`hub.locate.earlier_fingerprints`)."""
    h = hashlib.sha256()
    for rel in ("saved_model.pb", "variables/variables.index"):
        p = os.path.join(path, rel)
        if os.path.exists(p):
            h.update(rel.encode())
            h.update(file_sha256(p).encode())
    return h
