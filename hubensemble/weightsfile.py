"""A candidate's weights file (`candidate.WEIGHTS_FILE`: Keras' .weights.h5 of a
`tune.Classifier`) read without TensorFlow, with h5py: its layout in one place. The
classifier's backbone variables are under "backbone" (`BACKBONE_GROUP`), its head's kernel,
float [D, C], at "head/vars/0" (`HEAD_KERNEL`). Readers: the budget's and export's backbone
sharing (`cost.sharing.backbone_digest`) and an older cost.json's head sizes
(`cost.records.head_macs_in`). A file that is missing or cannot be read reads as None: each
reader then falls back (shares with none, counts whole), and the stage that loads the file
names it."""

from __future__ import annotations

import hashlib
import os

#: The group holding the backbone's variables (`tune.Classifier.backbone`).
BACKBONE_GROUP = "backbone"
#: The dataset holding the head's kernel, float [D, C].
HEAD_KERNEL = "head/vars/0"


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
