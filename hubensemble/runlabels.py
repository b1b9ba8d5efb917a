"""What a run folder keeps of its data's labels (RUN/labels/): each split's labels and the
training and validation images' files, written once by the stage that loads the data and
read by the later ones. `rundir.Run` takes these methods from `RunLabels`; they need only
Run's `labels`."""

import logging

import numpy as np

from hubensemble import formats
from hubensemble.fileio import atomic_save_npy, atomic_write_json, read_json

# The logger Run wrote these lines to before they moved here: a filter on it still sees them.
log = logging.getLogger("hubensemble.rundir")

#: The splits whose labels a run keeps (RUN/labels/<split>.npy), in this order.
LABEL_SPLITS = formats.SPLITS
#: The splits whose images' files a run keeps (data read from files), so the report names
#: an image by its file ("Labels to check": training and validation images), and each file.
PATHS_FILES = {"train": formats.TRAIN_PATHS_FILE, "val": formats.VAL_PATHS_FILE}


class RunLabels:
    """The label-file methods of `rundir.Run` (a mixin: it needs Run's `labels`)."""

    def write_labels(self, task, splits=LABEL_SPLITS):
        """Writes RUN/labels/<split>.npy (int64 [N], the task's labels) for each of `splits`
        the task has, and with train and val their images' files, RUN/labels/train_paths.json
        and val_paths.json (PATHS_FILES, `split_paths`; removed for data without files);
        returns the splits written."""
        written = []
        for split in splits:
            part = getattr(task, split)
            if part is not None:
                atomic_save_npy(self.labels / f"{split}.npy", np.asarray(part.labels, np.int64))
                written.append(split)
        for split in written:  # once, beside the labels they name: no per-stage copy
            if split in PATHS_FILES:
                self._write_paths(split, getattr(task, split).paths)
        return written

    def _write_paths(self, split, paths):
        """Writes RUN/labels/<split>_paths.json as a JSON list of str, or removes it when
        `paths` is None (data without files: an earlier data's list must not name these)."""
        path = self.labels / PATHS_FILES[split]
        if paths is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write_json(path, [str(p) for p in paths])

    def split_paths(self, split, n=None) -> list[str] | None:
        """The files of `split`'s images ("train" or "val", PATHS_FILES; str, index i:
        <split>[i], as the data loaded them), from RUN/labels/<split>_paths.json; None when
        it is missing (data without files, or a run written before 2026-12-06: train, or
        before val_paths.json: val), unreadable, not a list of str, or not of `n` (int)
        paths: the report then names an image train[i] or val[i]. KeyError for another
        split."""
        try:
            paths = read_json(self.labels / PATHS_FILES[split])
        except (OSError, ValueError):
            return None
        if (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
                or (n is not None and len(paths) != n)):
            return None
        return paths

    def train_paths(self, n=None) -> list[str] | None:
        """The training images' files: `split_paths("train", n)`."""
        return self.split_paths("train", n)

    def val_paths(self, n=None) -> list[str] | None:
        """The validation images' files: `split_paths("val", n)`."""
        return self.split_paths("val", n)

    def take_paths(self, runs) -> None:
        """Gives this run each PATHS_FILES split's files of the first of `runs` (a list of
        Run: `rank merge`'s shards, which loaded the same data) whose copy is readable and
        lists as many files as this run's labels of the split; removes this run's file when
        none does, so an older list never names other images."""
        for split in PATHS_FILES:
            labels = self.labels_of(split)
            n = None if labels is None else len(labels)
            paths = next((p for r in runs if (p := r.split_paths(split, n)) is not None), None)
            self._write_paths(split, paths)

    def ensure_labels(self, task):
        """Writes the label files of `task` (the run's task, already checked against run.json)
        that are missing, unreadable or differ from it; returns the splits written.

        The hand-off for a run folder ranked elsewhere: `rank` writes RUN/labels/, but a copy
        of run.json and ranking.json alone has none, and `ensemble` and the report read them.
        """
        stale = []
        for split in LABEL_SPLITS:
            part = getattr(task, split)
            if part is None:
                continue
            try:
                current = self.labels_of(split)
            except (OSError, ValueError):
                current = None
            if current is None or not np.array_equal(current, np.asarray(part.labels)):
                stale.append(split)
        if stale:
            self.write_labels(task, stale)
            log.info("wrote %s in %s (absent or not this task's)",
                     ", ".join(f"{s}.npy" for s in stale), self.labels)
        return stale

    def labels_of(self, split):
        """RUN/labels/<split>.npy (int64 [N]) or None when the split has no labels file."""
        path = self.labels / f"{split}.npy"
        return np.load(path) if path.exists() else None
