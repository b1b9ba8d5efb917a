"""What a `folder:` load says of its folder: the refusals of class folders without an image,
and the words and records of the val / test examples carved off train (split from folder.py,
which owns the walk and the decode)."""

from __future__ import annotations

import os

from hubensemble.data.loading import LoadOptions
from hubensemble.data.sniff import skipped_words
from hubensemble.data.splits import split_counts
from hubensemble.errors import DataError
from hubensemble.text import counted, names_listed, paths_shown


def _no_class_folders(path: str) -> DataError:
    return DataError(f"folder:{path} has no class sub-folders; put each class's images in "
                     f"PATH/<class name>/ (or use PATH/train/<class name>/ …)")


def carved_words(options: LoadOptions) -> str:
    """What a folder of class folders' fractions carve, for its task's source: "val 0.2 /
    test 0.2 of each class split off (seed 0)"; a fraction of 0 is said as no such split
    ("val 0.2 of each class split off (seed 0); no test split (test fraction 0)", "no val or
    test split carved (fractions 0)"), where it read "test 0 of each class split off"."""
    val, test = options.val_fraction, options.test_fraction
    seed = f"of each class split off (seed {options.seed})"
    if val and test:
        return f"val {val:g} / test {test:g} {seed}"
    if val or test:
        (kept, f), other = ((("val", val), "test") if val else (("test", test), "val"))
        return f"{kept} {f:g} {seed}; no {other} split ({other} fraction 0)"
    return "no val or test split carved (fractions 0)"


#: How a folder brings a split of its own (`splits.unreached`'s way on).
_OWN_SPLIT = {"val": "a val/ folder", "test": "a test/ folder"}


def _note_carve(records: dict[str, dict], want_val: bool, want_test: bool,
                options: LoadOptions) -> None:
    """Adds "carve" {split: examples} to each training class folder's record (`records`:
    {class: record}): the val / test examples `_carve` gives a class of its file count, as if
    every file were read, for the splits carved off train, so that `validate.lost_to_skips`
    can tell a class that unreadable files cost its val or test examples."""
    fractions = {"val": options.val_fraction if want_val else 0.0,
                 "test": options.test_fraction if want_test else 0.0}
    if not any(fractions.values()):
        return
    for record in records.values():
        _, val, test = split_counts(record["files"], fractions["val"], fractions["test"])
        record["carve"] = {k: n for k, n in (("val", val), ("test", test)) if fractions[k]}


def _only_not_images(paths, who: str = "they") -> str:
    """The clause of a refusal of class folders without an image file on the files they
    hold that are no image (`paths`; `sniff.not_an_image`), with the rule, or "" without
    any (`who`: the folders' words): they held a README and notes and were said to hold "no
    files"."""
    if not paths:
        return ""
    one = len(paths) == 1
    names = names_listed([os.path.basename(p) for p in paths], 3)
    return (f": {who} hold only {counted(len(paths), 'file')} that "
            f"{'is not an image' if one else 'are not images'} by name or first bytes "
            f"({names}); a file is read when its name ends in an image suffix (.jpg, .png, "
            ".tif, …) or its first bytes name an image format")


def _empty_error(path, skipped, not_images=()):
    """The DataError for a folder without one readable image (with the first skip reason,
    and the files not read as no image: `_only_not_images`)."""
    if not skipped and not_images:
        return DataError(f"no image files under {path}'s class folders"
                         f"{_only_not_images(not_images)}; {_EMPTY_HINT}")
    detail = ""
    if skipped:
        why = skipped_words(r for _, r in skipped)  # "too large" too, by its own word
        were = "the 1 file was" if len(skipped) == 1 else f"all {len(skipped)} files were"
        detail = (f"; {were} "
                  f"{f'skipped ({why})' if ',' in why else why}, e.g. "
                  f"{paths_shown([skipped[0][0]], then=': ')}: {skipped[0][1]}")
    return DataError(f"no readable images under {path}{detail}; {_EMPTY_HINT}")


_EMPTY_HINT = "add JPEG/PNG/BMP/GIF/WebP/TIFF files in one sub-folder per class"
