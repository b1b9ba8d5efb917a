"""Which evaluated images trained or chose an export: its run's record of its train and val images.

`evaluate --data DIR` on a folder that holds the run's photos plus a few new ones scores every
image as a test example, the run's training images too (a new-user check: 96 of 121 trained
or chose the export, accuracy 0.93 and not a word). The run records the pixel keys of its
train and val images when it loads its data (`pixelkeys.write_pixel_keys`, in the run folder:
an export ships to serving, and a list of its training images' digests would tell anyone
whether an image trained it); evaluate compares the scored images with them here.
"""

from __future__ import annotations

import logging
import os


from hubensemble.data.duplicates import copies_in
from hubensemble.errors import RunError
from hubensemble.formats import read_export_metadata
from hubensemble.pixelkeys import read_pixel_keys
from hubensemble.rundir import Run

log = logging.getLogger(__name__)

#: How a run's split is named in the warning.
_WORDS = {"train": "training", "val": "validation"}


def export_run(model_dir) -> Run | None:
    """The run that holds the export at `model_dir`: its parent folder when that holds
    run.json (RUN/export, or `export --out RUN/v2`), else None. An export written elsewhere
    does not name its run: its metadata records no run folder."""
    run = Run(os.path.dirname(os.path.abspath(os.fspath(model_dir))))
    return run if run.exists() else None


def not_held_out(model_dir, task, split: str = "test", meta: dict | None = None) -> dict | None:
    """How many of `task`'s `split` images are pixel-identical (`duplicates.pixel_key`) to
    images that trained (its run's train split) or chose (val) the export at `model_dir`
    (`meta`: its metadata, read when None): {"run": the run folder, "images": n, "train": n,
    "val": n}, an image in both splits counted once in "images"; a split the run's data lacks
    is absent. The keys are those the run recorded when it loaded its data, so images added
    to its folder since count as new ones.

    None when that is unknown, said at DEBUG: no run holds the export (`export_run`), the run
    was recorded before its keys were, or they are of other data than the export's (its
    task fingerprint); a keys file that cannot be read is a warning. Never raises for them:
    it only decides whether evaluate warns."""
    run = export_run(model_dir)
    try:
        keys = read_pixel_keys(run.pixel_keys_path) if run else None
    except RunError as e:
        log.warning("cannot tell which evaluated images trained the export: %s", e)
        return None
    made_on = ((read_export_metadata(model_dir) if meta is None else meta).get("task")
               or {}).get("fingerprint")
    if keys is None or keys.fingerprint != made_on:
        why = ("no run folder holds it (run.json beside it)" if run is None else
               f"{run.pixel_keys_path} is missing (a run recorded before it was)" if keys is None
               else f"{run.pixel_keys_path} records other data than the export's")
        log.debug("not counting the images that trained %s: %s", model_dir, why)
        return None
    return {"run": str(run.path), **copies_in(task.split(split).pixel_keys(), keys.splits)}


def not_held_out_note(result: dict) -> str | None:
    """The warning for an `evaluate_model` result whose scored images include images that
    trained or chose the export (its "not_held_out"), naming the count and the splits; None
    when none did, when that is unknown, or when the data is the export's own
    ("same_data_as_export"): its test split is held out already (exact duplicates aside,
    which the data's summary names) and its train and val splits are its training images
    by name."""
    seen = result.get("not_held_out") or {}
    n = seen.get("images")
    if not n or result.get("same_data_as_export"):
        return None
    splits = " or ".join(f"{_WORDS[s]} ({seen[s]})" for s in _WORDS if seen.get(s))
    are, images = ("is a", "image") if n == 1 else ("are", "images")
    return (f"{n} of {result['n']} {result['split']} images {are} {splits} {images} of this "
            f"export's run; their metrics are not a held-out measure (the run: {seen['run']}; "
            "score images it never saw for one)")
