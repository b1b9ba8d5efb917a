"""What a run folder keeps of its data's labels (RUN/labels/): each split's labels and the
training images' files, written once by the stage that loads the data and read by the later
ones. `rundir.Run` takes these methods from `RunLabels`; they need only Run's `labels`."""

import logging

import numpy as np

from hubensemble import formats
from hubensemble.fileio import atomic_save_npy, atomic_write_json, read_json

# The logger Run wrote these lines to before they moved here: a filter on it still sees them.
log = logging.getLogger("hubensemble.rundir")

#: The splits whose labels a run keeps (RUN/labels/<split>.npy), in this order.
LABEL_SPLITS = formats.SPLITS


class RunLabels:
    """The label-file methods of `rundir.Run` (a mixin: it needs Run's `labels`)."""

    def write_labels(self, task, splits=LABEL_SPLITS):
        """Writes RUN/labels/<split>.npy (int64 [N], the task's labels) for each of `splits`
        the task has, and with train RUN/labels/train_paths.json (`train_paths`; removed for
        data without files); returns the splits written."""
        written = []
        for split in splits:
            part = getattr(task, split)
            if part is not None:
                atomic_save_npy(self.labels / f"{split}.npy", np.asarray(part.labels, np.int64))
                written.append(split)
        if "train" in written:  # once, beside the labels it names: no per-stage copy
            path = self.labels / formats.TRAIN_PATHS_FILE
            if task.train.paths is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write_json(path, [str(p) for p in task.train.paths])
        return written

    def train_paths(self, n=None) -> list[str] | None:
        """The training images' files (str, index i: train[i], as the data loaded them), from
        RUN/labels/train_paths.json; None when it is missing (data without files, or a run
        written before 2026-12-06), unreadable, not a list of str, or not of `n` (int) paths:
        the report then names an image train[i]."""
        try:
            paths = read_json(self.labels / formats.TRAIN_PATHS_FILE)
        except (OSError, ValueError):
            return None
        if (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)
                or (n is not None and len(paths) != n)):
            return None
        return paths

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
