"""A candidate's weights file (`candidate.WEIGHTS_FILE`: Keras' .weights.h5 of a
`tune.Classifier`) read without TensorFlow, with h5py: its layout in one place. The
classifier's backbone variables are under "backbone" (`BACKBONE_GROUP`), its head's kernel,
float [D, C], at "head/vars/0" (`HEAD_KERNEL`). Readers: the budget's and export's backbone
sharing (`cost.sharing.backbone_digest`) and an older cost.json's head sizes
(`cost.records.head_macs_in`). A file that is missing or cannot be read reads as None: each
reader then falls back (shares with none, counts whole), and the stage that loads the file
names it.

trial.json records the file as tune wrote it (`record_digests`: `WEIGHTS_DIGEST`, and a
probe's `BACKBONE_DIGEST`), so a file edited or replaced since is noticed (`changed_since`)
where its recorded figures are used (ensemble, export, report), and a probe's backbone is
known to be its module's own (`cost.sharing.backbone_key`)."""

from __future__ import annotations

import functools
import hashlib
import os

from hubensemble.fileio import file_sha256
from hubensemble.text import absolute, escaped

#: The group holding the backbone's variables (`tune.Classifier.backbone`).
BACKBONE_GROUP = "backbone"
#: The dataset holding the head's kernel, float [D, C].
HEAD_KERNEL = "head/vars/0"
#: trial.json's field: the SHA-256 (hex) of the weights file as tune wrote it.
WEIGHTS_DIGEST = "weights_sha256"
#: trial.json's field of a probe: `group_digest` of its BACKBONE_GROUP as tune wrote it (its
#: module's own weights, frozen).
BACKBONE_DIGEST = "backbone_sha256"


def dataset_shape(path, name: str) -> tuple[int, ...] | None:
    """The shape of dataset `name` in the weights file at `path` (its shape only: nothing
    read), or None when the file is None, missing or unreadable, or `name` is no dataset."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            item = f.get(name)
            return tuple(int(n) for n in item.shape) if isinstance(item, h5py.Dataset) else None
    except Exception:  # noqa: BLE001 - h5py raises OSError and others for a bad file
        return None


def group_digest(path, name: str) -> str | None:
    """The SHA-256 (hex) of every dataset under group `name` of the weights file at `path`,
    by path, dtype, shape and bytes, in sorted order; None when the file is missing or
    unreadable or `name` is no group. Reads the group's values whole."""
    try:
        import h5py
        import numpy as np

        digest = hashlib.sha256()
        with h5py.File(path, "r") as f:
            group = f.get(name)
            if not isinstance(group, h5py.Group):
                return None
            names: list[str] = []
            group.visit(names.append)
            for item_name in sorted(names):
                item = group[item_name]
                if isinstance(item, h5py.Dataset):
                    value = np.ascontiguousarray(item[()])
                    digest.update(f"{item_name}|{value.dtype.str}|{value.shape}|".encode())
                    digest.update(value.tobytes())
    except Exception:  # noqa: BLE001 - h5py raises OSError and others for a bad file
        return None
    return digest.hexdigest()


def _stat_key(path):
    st = os.stat(path)
    return os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns, st.st_ino


def _remembered(read, path) -> str | None:
    """`read(path, size, mtime_ns, inode)` (an lru_cache: once per file and process), None
    when `path` is None or cannot be stat'ed."""
    if path is None:
        return None
    try:
        return read(*_stat_key(path))
    except OSError:
        return None


def file_digest(path) -> str | None:
    """The SHA-256 (hex) of the file at `path`, None when it is None, missing or unreadable.
    Remembered per file (path, size, modification time, inode): read once per process."""
    return _remembered(_file_digest, path)


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int, inode: int) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def backbone_digest(path) -> str | None:
    """`group_digest` of BACKBONE_GROUP in the weights file at `path`, remembered per file
    (path, size, modification time, inode); None when `path` is None, missing or unreadable,
    or holds no such group."""
    return _remembered(_backbone_digest, path)


@functools.lru_cache(maxsize=4096)
def _backbone_digest(path: str, size: int, mtime_ns: int, inode: int) -> str | None:
    return group_digest(path, BACKBONE_GROUP)


def record_digests(record: dict, path) -> None:
    """Sets trial.json `record`'s WEIGHTS_DIGEST of the weights file just written at `path`,
    and for a probe (record["hparams"]["kind"] == "probe") its BACKBONE_DIGEST; a field
    whose file cannot be read is left out."""
    digest = file_digest(path)
    if digest:
        record[WEIGHTS_DIGEST] = digest
    if ((record.get("hparams") or {}).get("kind")) == "probe":
        backbone = backbone_digest(path)
        if backbone:
            record[BACKBONE_DIGEST] = backbone


def changed_since(record: dict, path, writer: str = "tune") -> str | None:
    """Why the weights file at `path` is not the one trial.json `record` recorded `writer`
    ("tune", or "distill" for a student) writing (`WEIGHTS_DIGEST`): "its weights file PATH
    is not the one tune wrote (sha256 A… recorded, B… now)", or "… cannot be read", PATH
    absolute (the words are kept in ensemble.json and an export's metadata, read from other
    folders); None when it is, or when the record has no digest (a trial of an older
    hubensemble) or there is no file (`path` None). A student's said "tune wrote" before."""
    recorded = record.get(WEIGHTS_DIGEST) if isinstance(record, dict) else None
    if not recorded or path is None:
        return None
    now = file_digest(path)
    if now == recorded:
        return None
    # Said in records read from elsewhere (ensemble.json, export): absolute, as the project
    # names a path (`escaped(absolute(…))`: a newline in a folder's name broke the line).
    path = escaped(absolute(os.fspath(path)))
    if now is None:
        return f"its weights file {path} cannot be read"
    return (f"its weights file {path} is not the one {writer} wrote (sha256 {recorded[:12]}… "
            f"recorded in trial.json, {now[:12]}… now: edited or replaced since)")
