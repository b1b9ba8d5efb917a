"""What `hub.locate` found about a local module folder, remembered by the files' identity.

A warm ranking (every embedding cached) must not hash and parse every module of a 2,000-entry
catalogue again: the content fingerprint (sha256 of ``saved_model.pb``,
``variables/variables.index`` and the ``variables.data-*`` shards) and the safety scan
(parsing ``saved_model.pb``) are pure functions of the files' bytes. They are remembered,
next to the embedding cache, under the identity of those files — for ``saved_model.pb``,
``variables/variables.index`` and every ``variables/variables.data-*``: size, modification
and status-change times (ns), inode and device, as git's index decides a file is unchanged.
Writing a file changes its status-change time (which no user can set back), so a module
changed in place is located afresh.

Only a cache **hit** is decided from the memo: the module is then not loaded at all. Before a
module is loaded (a miss), `hub.locate` runs in full — resolve, sha256, the safety scan,
the fingerprint — so a module never runs unscanned, whatever the cache folder holds.
Entries are small JSON files, ``CACHE_DIR/located/KEY[:2]/KEY.json`` (KEY: sha256 of the
folder's real path), one per module: nothing grows with the number of modules ranked.
"""

from __future__ import annotations

import hashlib
import os
import time

# A module changed less than RACY_SECONDS ago is not remembered until a later run.
from hubensemble.fileio import RACY_SECONDS, read_json

#: Bump when what an entry records changes (2: `hub.module_fingerprint` hashes the data
#: shards' bytes, not their sizes, so keys remembered before are computed afresh).
MEMO_FORMAT = 2


def memo_path(cache_dir, module_dir) -> str:
    """``CACHE_DIR/located/KEY[:2]/KEY.json`` of the module folder `module_dir`."""
    key = hashlib.sha256(os.path.realpath(module_dir).encode("utf-8")).hexdigest()
    return os.path.join(cache_dir, "located", key[:2], key + ".json")


def file_identity(module_dir):
    """[[relative path, size, mtime_ns, ctime_ns, inode, device] or [relative path, None]]
    of the files `hub.module_fingerprint` and the safety scan read, or None when the folder
    is not a local directory (e.g. gs://)."""
    if not os.path.isdir(module_dir):
        return None
    try:
        data = sorted(n for n in os.listdir(os.path.join(module_dir, "variables"))
                      if n.startswith("variables.data-"))
    except OSError:
        data = []
    out = []
    for rel in ["saved_model.pb", "variables/variables.index"] + [f"variables/{n}" for n in data]:
        try:
            st = os.stat(os.path.join(module_dir, rel))
        except FileNotFoundError:
            out.append([rel, None])
            continue
        out.append([rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev])
    return out


def recall(cache_dir, module_dir, *, trust):
    """The remembered content fingerprint (str) of `module_dir`, or None.

    None when nothing is remembered, the files changed since, or the module was remembered
    as scanned-safe only under ``trust`` while `trust` is now False.
    """
    identity = file_identity(module_dir)
    if identity is None:
        return None
    try:
        memo = read_json(memo_path(cache_dir, module_dir))
    except (OSError, ValueError):
        return None
    if (not isinstance(memo, dict) or memo.get("format") != MEMO_FORMAT
            or memo.get("identity") != identity or not isinstance(memo.get("fingerprint"), str)
            or not (memo.get("scanned") or trust)):
        return None
    return memo["fingerprint"]


def remember(cache_dir, files, *, trust):
    """Records what `hub.locate` returned (`files`, a hub.ModuleFiles) for its folder.

    Nothing is recorded for a folder that is not local or whose files changed within the
    last RACY_SECONDS. Raises OSError when the entry cannot be written (a read-only cache, a
    file in the way, a full disk): the caller says so once (`environment.cache_unwritable`)
    and goes on; a lost entry only costs speed (the module is located again).
    """
    from hubensemble.fileio import atomic_write_json

    identity = file_identity(files.path)
    if identity is None:
        return
    now = time.time_ns()
    if any(entry[1] is not None and now - max(entry[2], entry[3]) < RACY_SECONDS * 1e9
           for entry in identity):
        return
    memo = {"format": MEMO_FORMAT, "path": os.path.realpath(files.path),
            "identity": identity, "fingerprint": files.fingerprint,
            # The safety scan ran (and passed) unless the entry is trusted.
            "scanned": not trust}
    # A hint: a lost or torn entry is found unusable and located again, so no fsync.
    atomic_write_json(memo_path(cache_dir, files.path), memo, sync=False)
