"""The one note beside a test figure whose images are copies of training or validation images.

A test split holding byte copies of train/ or val/ files (a folder's test/ made by copying)
is scored on images the members trained on or the ensemble was chosen on: 30 of 117 such
copies lifted a test accuracy of 0.5862 on the other 87 to 0.6752, and fit's table, the
report and `evaluate` gave the figure alone (a new-user check). `evaluate` counts the copies
by the run's pixel keys (`heldout.not_held_out`), fit by the data's exact duplicates
(`Task.duplicates`, run.json's data.task.duplicates); both are worded here. Pure: no
TensorFlow, no files.
"""

from __future__ import annotations

from hubensemble.lockwords import option_word

#: How a split is named in the note.
_WORDS = {"train": "training", "val": "validation"}


def dedupe_way() -> str:
    """The way on for a test split holding copies of its data's train or val images: fit
    with --dedupe (`load_task(dedupe=True)` from Python; `lockwords.option_word`) keeps the
    first copy of each group, in train, val, test order, so the test copies go. It changes
    the data, so a fitted run refuses it: into another --out folder, or with --restart (the
    bare "fit --dedupe drops them", run as written on the same run, was refused)."""
    return option_word("a fit with --dedupe drops them, into another --out folder or with "
                       "--restart", "load_task(…, dedupe=True) drops them")


def scored_way() -> str:
    """The way on for `evaluate` of a folder whose images are copies of the run's: a fit's
    --dedupe changes the run's own test split, not the folder scored."""
    return "score a folder without them for a held-out figure"


def copies_note(split: str, n: int, train: int, val: int, *, images: int | None = None,
                why: str = "the same pixels", way: str | None = None) -> str | None:
    """"not a held-out measure: 30 of the 117 test images are copies of training (28) or
    validation (2) images (the same pixels; a fit with --dedupe drops them, …)": the note for
    figures on `n` images of `split` of which `train` (>= 0) are copies of training images and
    `val` of validation ones; `images` how many are either (an image in both counted once;
    None: unknown, then "up to" their sum when both are non-zero); `why` how they were told
    (in the brackets), `way` the way on (default `dedupe_way`). None when there are none."""
    if not (train or val):
        return None
    if images is None:
        images = train + val
        up_to = "up to " if train and val else ""
    else:
        up_to = ""
    # "copies of training images" when they are of one split; with both, each one's count
    kinds = (" or ".join(f"{_WORDS[s]} ({k})" for s, k in (("train", train), ("val", val)))
             if train and val else _WORDS["train" if train else "val"])
    one = images == 1 and not up_to
    return (f"not a held-out measure: {up_to}{images} of the {n} {split} images "
            f"{'is a copy' if one else 'are copies'} of {kinds} {'image' if one else 'images'}"
            f" ({why}; {way or dedupe_way()})")


def test_copies_note(duplicates: dict | None, n_test: int | None) -> str | None:
    """The note for test figures on a data set whose exact-duplicate record `duplicates`
    (`Task.duplicates`: run.json's data.task.duplicates) counts test images with a copy in
    its train or val split ("across": "test_in_train", "test_in_val"), for a test split of
    `n_test` examples: `copies_note`, or None without such copies (or without a record).
    Its count is the record's "test_in_either" (beside "across": test images with a
    copy in either, each counted once), when it holds one that fits "across"; a record written
    before it did counts an image with a copy in both in each: exact when the data has no
    copies between train and val ("val_in_train" 0), else said as "up to" (it said "up to 4"
    of 3 such images). Fit's closing table, the report's test table and `ensemble`'s summary
    call it beside their test figures."""
    across = (duplicates or {}).get("across") or {}
    train, val = int(across.get("test_in_train") or 0), int(across.get("test_in_val") or 0)
    if not (train or val) or not n_test:
        return None
    either = (duplicates or {}).get("test_in_either")
    if isinstance(either, int) and not isinstance(either, bool) and (
            max(train, val) <= either <= train + val):
        exact = either
    else:  # A test image in both train and val needs a copy shared by train and val.
        exact = train + val if not (train and val) or not across.get("val_in_train") else None
    return copies_note("test", int(n_test), train, val, images=exact)
