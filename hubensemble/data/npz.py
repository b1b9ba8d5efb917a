"""The `npz:PATH` loader: a numpy.savez archive of x_train/y_train and optional val/test arrays."""

from __future__ import annotations

import os
import re

import numpy as np

from hubensemble.data.decode import (_short, check_16bit, check_16bit_splits, check_array_values,
                                     to_rgb_uint8)
from hubensemble.data.loading import LoadOptions, _require_path
from hubensemble.data.splits import _carve, _make_split, unreached
from hubensemble.data.names import (_SPLIT_ALIASES, SPLIT_NAMES, SPLIT_WORDS,
                                    non_integer_labels)
from hubensemble.data.task import Task
from hubensemble.data.validate import _check_label_range, index_names, text_names
from hubensemble.errors import DataError
from hubensemble.text import absolute, counted


def _npz_images(x, key, path):
    """Array `key` ([N, H, W] or [N, H, W, C], C in 1..4: grey, grey + alpha, RGB, RGBA) as
    uint8 RGB [N, H, W, 3]; a uint16 array is 16-bit (the archive's x_* arrays were looked at
    as a whole first). Raises DataError for what `check_array_values` and `to_rgb_uint8`
    refuse, naming `key`."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"npz:{path}: array {key!r} has shape {list(x.shape)}; use [N, H, W] "
                        f"(grey) or [N, H, W, C] with C in 1..4")
    if x.shape[0] and (x.shape[1] < 1 or x.shape[2] < 1):
        raise DataError(f"npz:{path}: array {key!r} holds empty images (shape {list(x.shape)})")
    check_array_values(x, what=f"npz:{path}: array {key!r}", name=key)  # 0/1 masks, alpha all 0
    return to_rgb_uint8(x, what=f"npz:{path}: array {key!r}", known_16bit=True)


def _npz_labels(y, key, path):
    """Array `key` ([N] or [N, 1] integer class indices, or integral floats) as int64 [N]."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"npz:{path}: array {key!r} has shape {list(y.shape)}; labels must be one "
                        f"integer class index per image{_label_shape_fix(y)}")
    if y.dtype == np.bool_ or not (y.dtype.kind in "iu"  # not timedelta64, an integer to numpy
                                   or np.issubdtype(y.dtype, np.floating)):
        fix = ("; for names as labels store indices into class_names: names = np.unique("
               "the labels of all splits), then y = np.searchsorted(names, y) for each split "
               "and class_names=names" if y.dtype.kind in "USO" else "")
        raise DataError(f"npz:{path}: array {key!r} has dtype {y.dtype}; labels must be "
                        f"integers{fix}")
    why = np.issubdtype(y.dtype, np.floating) and non_integer_labels(
        y, "from both arrays (keep = ~np.isnan(y); x, y = x[keep], y[keep])")
    if why:
        raise DataError(f"npz:{path}: array {key!r} holds {why}")
    if y.size and y.max() > np.iinfo(np.int64).max:  # int64 would wrap it to a negative
        top = int(y.max()) if y.dtype.kind in "iu" else f"{y.max():.0f}"
        raise DataError(f"npz:{path}: array {key!r} holds label {top}, beyond int64; labels "
                        f"must be class indices 0..C-1")
    return y.astype(np.int64)


def _label_shape_fix(y: np.ndarray) -> str:
    """The way on for labels `y` that are not one per image, by what they hold: rows of one
    1 among 0s (one-hot) or of probabilities summing to 1: " (they look one-hot: store
    y.argmax(1))"; other [N, K] rows (several label columns, multi-label): store the
    column that is the class; "" for other shapes. Every such array was told to store
    y.argmax(1), which for [N, 2] columns of (id, class) gives 0 or 1 per image."""
    if y.ndim != 2 or not y.size or y.dtype.kind not in "iufb":
        return ""
    rows = y.astype(np.float64)
    if (np.isfinite(rows).all() and (rows >= 0).all()
            and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)):
        what = ("one-hot" if np.isin(rows, (0.0, 1.0)).all() else
                "class probabilities (soft labels)")
        return f" (they look {what}: store y.argmax(1))"
    return (f" (its rows hold {y.shape[1]} values each, not one class per image: several "
            f"label columns or multi-label; store the column that is the class, y[:, j], "
            f"numbered 0..C-1)")


def locate_npz(rest: str) -> str:
    """npz:PATH's file, ~ expanded, its first bytes read. Raises DataError when PATH is empty,
    missing, a folder or not a zip archive (the loader's first checks; `specs.check_spec`)."""
    path = _require_path(rest, "npz", "file")
    if os.path.isdir(path):
        raise DataError(f"npz:{path} is a folder; for class sub-folders use folder:{path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":  # .npz files are zip archives
        raise DataError(f"npz:{path} is not an .npz archive; write it with "
                        f"numpy.savez(path, x_train=..., y_train=..., ...)")
    return path


#: The members an archive may hold: each split's images and labels, and the class names.
NPZ_MEMBERS = tuple(f"{a}_{s}" for s in SPLIT_NAMES for a in "xy") + ("class_names",)


def member_name(name: str) -> str | None:
    """The member of NPZ_MEMBERS that the archive's member `name` is: itself, or a split
    spelled as the folder: loader's split folders may be (`task._SPLIT_ALIASES`: x_validation
    and x_valid are x_val); None for any other name."""
    if name in NPZ_MEMBERS:
        return name
    found = re.fullmatch(r"([xy])_(\w+)", name)
    split = found and _SPLIT_ALIASES.get(found.group(2))
    return f"{found.group(1)}_{split}" if split else None


def _members(arrays: dict, path: str) -> tuple[dict, dict[str, str], list[str]]:
    """(arrays by their NPZ_MEMBERS name, {that name: the member's name as stored}, the names
    of the other members) of an archive's `arrays` ({stored name: array}). Raises DataError
    for a split stored under two names (x_val and x_validation)."""
    named, stored, other = {}, {}, []
    for name, array in arrays.items():
        member = member_name(name)
        if member is None:
            other.append(name)
        elif member in stored:
            raise DataError(f"npz:{path} holds {stored[member]!r} and {name!r}, one split under "
                            f"two names; keep one (x_val, or x_validation or x_valid)")
        else:
            named[member], stored[member] = array, name
    return named, stored, other


#: The words an archive's member name may spell its part with, as archives made elsewhere
#: name them (Keras' x_train, sklearn's data / target, images / labels, train_images, X_tr):
#: what it holds (its split: `names.SPLIT_WORDS`; a name without one is train's).
_ROLE_WORDS = {**dict.fromkeys(("x", "images", "image", "imgs", "img", "data", "features",
                                "inputs", "input", "pixels", "samples"), "x"),
               **dict.fromkeys(("y", "labels", "label", "lbl", "targets", "target",
                                "classes"), "y"),
               **dict.fromkeys(("names", "categories", "classnames"), "class_names")}


def meant_member(name: str, array) -> str | None:
    """The member of NPZ_MEMBERS that the archive's unread member `name` (holding `array`)
    most likely is: a mistyping of one, as fit's options tell it (`text.closest_name`:
    X_train, Y_test, x_trian, xtrain), else the member its words name (`_ROLE_WORDS`,
    `names.SPLIT_WORDS`: images / labels, data / target, train_images, x_tr, y_dev, label_names)
    when `array` has that member's form: images [N, H, W(, C)], labels of one number per
    image, class names as 1-D text. None when nothing fits (meta, an array of another form).
    A name that gave none said only "needs arrays x_train and y_train" (a new-user check:
    an archive of X_train / Y_train, or of images / labels)."""
    from hubensemble.text import closest_name

    array = np.asarray(array)
    meant = closest_name(name, NPZ_MEMBERS)
    if meant is None:
        words = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
        words = [w for w in re.split(r"[^a-z0-9]+", words) if w]
        roles = {_ROLE_WORDS[w] for w in words if w in _ROLE_WORDS}
        splits = {SPLIT_WORDS[w] for w in words if w in SPLIT_WORDS}
        if "class_names" in roles or (roles == {"y"} and array.dtype.kind in "US"):
            roles = {"class_names"}  # label_names, classes of text: the names, not labels
        if len(roles) != 1 or len(splits) > 1:
            return None
        role = roles.pop()
        meant = role if role == "class_names" else f"{role}_{splits.pop() if splits else 'train'}"
    text = array.dtype.kind in "US"
    fits = (text and array.ndim == 1 if meant == "class_names" else
            array.ndim in (3, 4) and not text if meant[0] == "x" else
            not text and (array.ndim == 1 or array.ndim == 2 and array.shape[1:] == (1,)))
    return meant if fits else None


def _unread(other: list[str], arrays: dict, stored: dict[str, str]) -> tuple[str, str]:
    """("'images' (did you mean 'x_train'?), 'meta'", the numpy statements that store the
    archive with each of `other` renamed to the member meant (`meant_member`; one not
    stored already and meant by no other) or deleted) for the members `other` of
    `arrays`; `stored`: {member: name as stored} of the members read."""
    meant, said, fix = {}, [], []
    for name in other:
        member = meant_member(name, arrays[name])
        if member in stored or member in meant.values():
            member = None
        meant[name] = member
        said.append(f"{name!r}" + (f" (did you mean {member!r}?)" if member else ""))
        fix.append(f"a[{member!r}] = a.pop({name!r})" if member else f"del a[{name!r}]")
    return ", ".join(said), "; ".join(fix)


def _refuse_unread(other: list[str], path: str, arrays: dict, stored: dict[str, str]) -> None:
    """DataError naming every member (`other`) the loader would not read, with the member
    meant when one is (`meant_member`: label_names is class_names misspelt), and how to
    store the archive with it renamed, or without it: such a member was ignored without a
    word, so x_dev's examples were dropped for a val split carved off train, and label_names
    left the classes "0", "1", "2" (a new-user check). Nothing when `other` is empty.
    `arrays` and `stored` as `_unread` takes them."""
    if other:
        said, fix = _unread(other, arrays, stored)
        raise DataError(f"npz:{path} holds {said}, which hubensemble "
                        f"does not read; an archive holds x_train, y_train and optionally "
                        f"x_val, y_val (or x_validation / x_valid, y_…), x_test, y_test and "
                        f"class_names. Store the archive under the names it reads: a = "
                        f"dict(np.load({path!r})); {fix}; np.savez({path!r}, **a)")


def fixed_splits(rest: str) -> dict[str, str]:
    """{split: why}: the val / test splits of npz:REST that no fraction sizes (its zip
    listing read, no array): a stored x_val, and test, which npz never splits off train."""
    import zipfile

    path = locate_npz(rest)
    try:
        with zipfile.ZipFile(path) as z:
            stored = {member_name(os.path.splitext(n)[0]): os.path.splitext(n)[0]
                      for n in z.namelist()}
    except (OSError, zipfile.BadZipFile):
        stored = {}  # the loader says what is wrong with the file
    out = {"test": f"npz:{path} stores its own test split (x_test)" if "x_test" in stored
           else f"npz:{path} stores no test split (x_test, y_test) and npz never splits one "
                f"off train (store x_test and y_test for test metrics)"}
    if "x_val" in stored:  # x_validation and x_valid too: the loader reads them as x_val
        out["val"] = f"npz:{path} stores its own val split ({stored['x_val']})"
    return out


def _value_range(x: np.ndarray) -> np.ndarray:
    """[min, max] of `x` in its dtype (empty for an empty `x`): what `check_16bit` and
    `check_16bit_splits` read of a uint16 member, so that it is not held beside the next."""
    return np.array([x.min(), x.max()], x.dtype) if x.size else x[:0].reshape(0)


class _Archive:
    """The .npz archive at `path`, open, its members read one at a time (`read`): a float32
    archive held every raw split at once (4x the pixels' uint8 bytes) while converting them.
    `headers` is {name: a stand-in array of the member's shape and dtype that holds no data
    (np.broadcast_to of one value)}, from each .npy member's header (np.lib.format), for the
    checks that need only shapes and dtypes. Never unpickles (allow_pickle=False: an archive
    may come from anyone). Raises DataError (`_refusal`) naming the file, the member and the
    fix for an object array, a member that is not a .npy array, and an archive that cannot be
    read (truncated, damaged: a crash with a zipfile or zlib traceback before, a new-user
    check); a damaged member's data is found when `read` reads it."""

    def __init__(self, path: str):
        self.path, self.npz, key = path, None, None
        try:
            self.npz = np.load(path, allow_pickle=False)  # a zip (`locate_npz`): lazy
            stored = set(self.npz.zip.namelist())
            self.headers = {}
            for key in self.npz.files:
                self.headers[key] = self._header(key, key + ".npy" if key + ".npy" in stored
                                                 else key)
        except BaseException as e:
            self.close()
            raise self._refusal(e, key) from None

    def _header(self, key: str, member: str):
        """A stand-in of member `member` (archive name `key`): its header's shape and dtype."""
        fmt = np.lib.format
        with self.npz.zip.open(member) as fp:
            if fp.read(len(fmt.MAGIC_PREFIX)) != fmt.MAGIC_PREFIX:  # NpzFile gives its bytes
                raise DataError(f"npz:{self.path}: member {key!r} of the archive is not a numpy "
                                f"array (.npy); write the file with numpy.savez(path, "
                                f"x_train=..., y_train=..., ...)")
            fp.seek(0)
            version = fmt.read_magic(fp)
            read = {(1, 0): fmt.read_array_header_1_0,
                    (2, 0): fmt.read_array_header_2_0}.get(version)
            if read is None:  # version 3 (non-latin-1 field names): read it whole
                array = self.read(key)
                return np.broadcast_to(np.zeros((), array.dtype), array.shape)
            shape, _, dtype = read(fp)
        if dtype.hasobject:  # what np.load refuses, in its words (`_refusal` says it)
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        return np.broadcast_to(np.zeros((), dtype), shape)

    def read(self, key: str) -> np.ndarray:
        """The member `key`'s array, read now (DataError as the archive's, `_refusal`)."""
        try:
            return self.npz[key]
        except BaseException as e:
            raise self._refusal(e, key) from None

    def _refusal(self, e: BaseException, key):
        """The DataError for `e`, raised reading member `key`; `e` itself when it is none of
        the archive's faults (a DataError already, KeyboardInterrupt)."""
        import zipfile
        import zlib

        path = self.path
        if isinstance(e, ValueError):
            if "allow_pickle" in str(e) or "Object arrays" in str(e):
                fix = ("store the names as np.array(names) (strings, dtype 'U')"
                       if key == "class_names" else "store one numeric array per split, or use "
                       "folder: for images of different sizes")
                return DataError(f"npz:{path}: {key} is a Python object array (dtype object, "
                                 f"e.g. a list of different-size images or of names), which is "
                                 f"never unpickled; {fix}")
            return DataError(f"npz:{path} is not a readable .npz file ({key}: {_short(e)}); "
                             f"write it with numpy.savez")
        if isinstance(e, (OSError, EOFError, zipfile.BadZipFile, zlib.error)):
            return DataError(f"npz:{path} cannot be read, it is truncated or damaged "
                             f"({type(e).__name__}: {_short(e)}); write it again with "
                             f"numpy.savez")
        return e

    def close(self) -> None:
        if self.npz is not None:
            self.npz.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _load_npz(rest: str, options: LoadOptions, *, test_set: bool = False) -> Task:
    """npz:PATH — x_train, y_train [, x_val, y_val, x_test, y_test, class_names]; val may be
    stored as x_validation / x_valid (and y_…), any other member is refused (`_members`). As a
    `test_set` (evaluate's data), x_test and y_test alone are enough: they are the train
    split too (the same examples, so the Task is complete), with no val split off."""
    path = locate_npz(rest)
    with _Archive(path) as archive:
        return _archive_task(archive, path, options, test_set)


def _archive_task(archive: _Archive, path: str, options: LoadOptions, test_set: bool) -> Task:
    """`_load_npz`'s Task of the open `archive`: its checks made on the members' headers,
    then each split's arrays read and converted one member at a time."""
    # Messages name each array as stored (x_validation, not the x_val it is read as).
    raw = archive.headers  # stand-ins: shapes and dtypes, no data
    arrays, stored, other = _members(raw, path)
    held_out = test_set and not {"x_train", "y_train"} & set(arrays) and {
        "x_test", "y_test"} <= set(arrays)
    # A held-out test archive (a new-user check: it was refused): x_test is the train split
    # too, after the loop, so that every message about it names x_test, the array stored.
    if not held_out and ("x_train" not in arrays or "y_train" not in arrays):
        said, fix = _unread(sorted(other), raw, stored)
        found = ", ".join([*(repr(n) for n in sorted(stored.values())), *([said] if other
                                                                          else [])])
        fix = (f"; store them under the names it reads: a = dict(np.load({path!r})); {fix}; "
               f"np.savez({path!r}, **a)" if other else "")
        alone = " (or, as a test set, x_test and y_test alone)" if test_set else ""
        raise DataError(f"npz:{path} needs arrays x_train and y_train{alone} (found: "
                        f"{found or 'none'}); optional: x_val, y_val, x_test, y_test, "
                        f"class_names{fix}")
    _refuse_unread(other, path, raw, stored)
    # 16-bit or 8-bit is decided for the archive as a whole (x_train, x_val, x_test): uint16
    # values that all lie in 0..255 are 8-bit data in a 16-bit type (check_16bit), and so is
    # a split of such values beside 16-bit ones, which the whole's rule would blacken.
    # Each uint16 member is read alone for its value range, which stands in for it (the rules
    # look at nothing else): no two raw splits are held at once.
    deep = [k for k in (f"x_{s}" for s in SPLIT_NAMES)
            if k in arrays and arrays[k].dtype == np.uint16]
    names = [stored[k] for k in deep]
    ranges = {k: _value_range(archive.read(stored[k])) for k in deep}
    check_16bit_splits({stored[k]: ranges[k] for k in deep}, what=f"npz:{path}")
    check_16bit([ranges[k] for k in deep], what=f"npz:{path}: {', '.join(names)}",
                fix=f"store {' and '.join(f'{k}.astype(np.uint8)' for k in names)}")
    splits = {}
    for key in SPLIT_NAMES:
        xm, ym = f"x_{key}", f"y_{key}"
        xk, yk = stored.get(xm, xm), stored.get(ym, ym)
        if (xm in arrays) != (ym in arrays):
            have, missing = (xk, yk) if xm in arrays else (yk, xk)
            raise DataError(f"npz:{path} has {have} but not {missing}; store both or neither")
        if xm not in arrays:
            continue
        x = _npz_images(archive.read(xk), xk, path)  # its raw array is dropped here
        y = _npz_labels(archive.read(yk), yk, path)
        if len(x) != len(y):
            shape = list(arrays[xm].shape)  # [H, W, 3]: one RGB image read as H grey ones
            one = (f"; {xk} of shape {shape} is read as {shape[0]} grey images of "
                   f"{shape[1]}x{shape[2]}: for one colour image store {xk}[None]"
                   if len(shape) == 3 and shape[-1] in (3, 4) and len(y) == 1 else "")
            raise DataError(f"npz:{path}: {xk} has {counted(len(x), 'image')} but {yk} has "
                            f"{counted(len(y), 'label')}; they must match one to one{one}")
        if not len(x):
            raise DataError(f"npz:{path}: {xk} is empty; store at least 2 examples per class "
                            f"(or leave {key} out)")
        splits[key] = _make_split(x, y)
    if held_out:
        splits = {"train": splits["test"], **splits}
    class_names = None
    if "class_names" in arrays:
        names = np.asarray(archive.read(stored["class_names"]))
        if names.ndim != 1 or names.dtype.kind not in "USO":
            numbers = names.ndim == 1 and names.dtype.kind in "iu"
            raise DataError(f"npz:{path}: class_names must be a 1-D array of strings, got "
                            f"{names.dtype} {list(names.shape)}" + (
                                f" ({', '.join(map(str, names[:5].tolist()))}"
                                f"{', …' if len(names) > 5 else ''}); for numbers as names "
                                f"store them as text: class_names=names.astype(str) (class "
                                f"i is named by class_names[i]: the labels stay indices)"
                                if numbers else ""))
        class_names = text_names(names.tolist(), what=f"npz:{path}: class_names")
        if len(set(class_names)) != len(class_names):
            raise DataError(f"npz:{path}: class_names has duplicates; names must be unique")
    else:  # indices 0..max, all used (`index_names`); a test set's are matched by name
        labels = {key: sp.labels for key, sp in splits.items()}
        class_names, used = index_names(
            labels, what=f"npz:{path}", compact=test_set, gaps=options.relabelled, fix=(
                "store class_names for all the classes, or number them 0..C-1: classes = "
                "np.unique(the labels of all splits), y = np.searchsorted(classes, y) for each "
                "split and class_names=classes.astype(str)"))
        if used is not None:
            splits = {key: _make_split(sp.images, np.searchsorted(used, sp.labels))
                      for key, sp in splits.items()}
    # Out-of-range labels are reported by validation; check before a split needs bincount.
    _check_label_range(splits, len(class_names), what=f"npz:{path}")
    train = splits["train"]
    val, test = splits.get("val"), splits.get("test")
    if held_out:
        test = train  # one test set, standing in as train (Task.summary tells them apart)
    how = ", ".join(stored[k] + (f" (as {k})" if stored[k] != k else "")
                    for k in ("x_train", "x_val", "x_test") if k in stored)
    carved = ()  # x_test is never carved off train; val is without x_val
    if held_out:
        how = "x_test only: every example is a test example"
    elif val is None:
        # Owned: the loader's own array (read from the archive, converted), so val is carved
        # in place, both views of it; taking each copied them, 2x x_train at the peak.
        short = unreached(train, True, False, options, {"val": "x_val and y_val"})
        train, val, _ = _carve(train, True, False, options, owned=True)
        if val is not None:
            how += f"; val {options.val_fraction:g} of each class split off (seed {options.seed})"
            carved = ("val",)
        how += "".join(f"; {note}" for note in short)
    if test is None:  # else "no test metrics" at the end of fit said only which file lacked
        how += ("; no x_test, so no test split and no test metrics (an npz's test split is "
                "x_test and y_test, never carved off train: store them for one)")
    name = os.path.splitext(os.path.basename(path))[0]
    # Named absolute, as Task.spec and the folder loader's source (`folder.py`).
    return Task(name=name, source=f"npz:{absolute(path)} ({how})", class_names=class_names,
                train=train, val=val, test=test, names_made="class_names" not in arrays,
                carved=carved)
