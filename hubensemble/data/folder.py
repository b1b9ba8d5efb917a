"""The `folder:PATH` loader: one sub-folder per class, or train/ val/ test/ with class folders."""

from __future__ import annotations

import os

from hubensemble.data.decode import UnreadableImage, read_image_file
from hubensemble.data.loading import LoadOptions, _require_path, _visible
from hubensemble.data.splits import _carve, _make_split
from hubensemble.data.task import _SPLIT_ALIASES, Task
from hubensemble.errors import DataError


def _list_class_folder(folder: str) -> list[str]:
    """Every visible file under `folder`, recursively, in sorted order."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if _visible(d))
        files.extend(os.path.join(root, n) for n in sorted(names) if _visible(n))
    return files


def _read_class_folders(root: str, class_names: list[str] | None, skipped: list):
    """Decode root/<class>/** → (images, labels, class_names)."""
    found = sorted(d for d in os.listdir(root)
                   if _visible(d) and os.path.isdir(os.path.join(root, d)))
    if class_names is None:
        class_names = found
    else:
        extra = [d for d in found if d not in class_names]
        if extra:
            raise DataError(f"{root} has class folder(s) {extra} that the train folder does "
                            f"not have; every class needs training images (add "
                            f"train/{extra[0]}/ or remove the folder)")
    for n in sorted(os.listdir(root)):
        p = os.path.join(root, n)
        if _visible(n) and not os.path.isdir(p):
            skipped.append((p, "file outside the class folders (ignored)"))
    images, labels = [], []
    index = {c: i for i, c in enumerate(class_names)}
    for c in found:
        for path in _list_class_folder(os.path.join(root, c)):
            try:
                images.append(read_image_file(path))
                labels.append(index[c])
            except UnreadableImage as e:
                skipped.append((path, str(e)))
    return images, labels, class_names


def _load_folder(rest: str, options: LoadOptions) -> Task:
    """folder:PATH — PATH/<class>/*, or PATH/train|val|test/<class>/*."""
    path = _require_path(rest, "folder", "folder")
    if not os.path.isdir(path):
        raise DataError(f"folder:{path} is a file, not a folder; a folder spec needs one "
                        f"sub-folder per class (for an .npz file use npz:{path})")
    subdirs = {d: os.path.join(path, d) for d in os.listdir(path)
               if _visible(d) and os.path.isdir(os.path.join(path, d))}
    layout = {}
    if "train" in subdirs and any(os.path.isdir(os.path.join(subdirs["train"], d))
                                  for d in os.listdir(subdirs["train"]) if _visible(d)):
        for d in subdirs:
            key = _SPLIT_ALIASES.get(d)
            if key is None:
                raise DataError(
                    f"{path} has a train/ folder and also {d!r}/; use either only "
                    f"train/, val/ and test/ (each with class folders) or one folder per "
                    f"class, not both")
            if key in layout:
                raise DataError(f"{path} has two validation folders ({sorted(subdirs)}); "
                                f"keep one")
            layout[key] = subdirs[d]
    skipped: list[tuple[str, str]] = []
    if layout:
        images, labels, class_names = _read_class_folders(layout["train"], None, skipped)
        train = _make_split(images, labels)
        got = {}
        for key in ("val", "test"):
            if key in layout:
                im, lab, _ = _read_class_folders(layout[key], class_names, skipped)
                if not lab:
                    raise DataError(f"{layout[key]} holds no readable images; add class "
                                    f"folders with images or remove it")
                got[key] = _make_split(im, lab)
        if not len(train):
            raise _empty_error(path, skipped)
        train, val, test = _carve(train, "val" not in got, "test" not in got, options)
        val, test = got.get("val", val), got.get("test", test)
        how = "train/" + "".join(f", {k}/" for k in got)
        carved = [k for k in ("val", "test") if k not in got and
                  (val if k == "val" else test) is not None]
        if carved:
            how += f"; {' and '.join(carved)} split off train (seed {options.seed})"
    else:
        images, labels, class_names = _read_class_folders(path, None, skipped)
        if not class_names:
            raise DataError(f"folder:{path} has no class sub-folders; put each class's images "
                            f"in PATH/<class name>/ (or use PATH/train/<class name>/ …)")
        if not labels:
            raise _empty_error(path, skipped)
        train, val, test = _carve(_make_split(images, labels), True, True, options)
        how = (f"class folders; val {options.val_fraction:g} / test "
               f"{options.test_fraction:g} of each class split off (seed {options.seed})")
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
    return Task(name=name, source=f"folder:{path} ({how})", class_names=class_names,
                train=train, val=val, test=test, skipped=skipped)


def _empty_error(path, skipped):
    """The DataError for a folder without one readable image (with the first skip reason)."""
    detail = ""
    if skipped:
        detail = (f"; all {len(skipped)} file(s) were unreadable, e.g. {skipped[0][0]}: "
                  f"{skipped[0][1]}")
    return DataError(f"no readable images under {path}{detail}; add JPEG/PNG/BMP/GIF files "
                     f"in one sub-folder per class")
