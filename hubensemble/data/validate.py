"""What makes a task usable by the method: `validate_task`, label ranges, `label_fn` remapping."""

from __future__ import annotations

import numpy as np

from hubensemble.data.labelwords import negative_labels
from hubensemble.data.names import SPLIT_NAMES, check_class_names
from hubensemble.data.sniff import named_skips, skipped_count
from hubensemble.data.splits import MIN_TRAIN_PER_CLASS
from hubensemble.data.task import Split, Task, _check_label_range
from hubensemble.errors import DataError
from hubensemble.lockwords import option_word
from hubensemble.text import counted, escaped


def index_names(labels: dict[str, np.ndarray], *, what: str, fix: str, compact: bool = False,
                gaps: bool = False) -> tuple[list[str], np.ndarray | None]:
    """Class names for integer labels that come without names (an npz without class_names, a
    tfds label that is not a ClassLabel, a label_fn returning labels alone): the labels are
    class indices, so the classes are "0".."max label".

    `labels`: {split: int [N]}. Returns (names, None); with `compact` (a test set, whose
    classes `evaluate` matches to the export's by name), labels that leave indices unused
    give (the used values as names, the sorted used values: map each split's labels with
    `np.searchsorted(values, y)`). `gaps` keeps unused indices ("0".."max" all the same):
    the loader's labels are raw values that a label_fn maps afterwards, naming its classes.

    Raises DataError naming the split for a negative label, and (without `compact`) when
    some index in 0..max has no example in any split, e.g. labels {3, 7, 9}: a class of no
    example cannot be trained, and counting classes up to a label of 2**40 allocated names
    until the process was killed (a new-user check). `what` starts the message, `fix` ends it.
    """
    joined = np.concatenate([np.asarray(y).reshape(-1) for y in labels.values()])
    values = np.unique(joined)
    for split, y in labels.items():
        negative = negative_labels(y)
        if negative:
            raise DataError(f"{what}: {split} labels out of range: {negative}, or {fix}")
    top = int(values[-1]) if len(values) else -1
    if len(values) == top + 1 or gaps:
        return [str(i) for i in range(top + 1)], None
    if compact:
        return [str(v) for v in values.tolist()], values
    used = set(values.tolist())
    unused, i = [], 0
    while len(unused) < 5 and i <= top:  # at most len(values) + 5 steps, whatever `top` is
        if i not in used:
            unused.append(i)
        i += 1
    missing = top + 1 - len(values)
    shown = ", ".join(map(str, values[:5].tolist())) + (", …" if len(values) > 5 else "")
    raise DataError(f"{what}: without class names the labels are class indices 0..{top} "
                    f"({top + 1} classes), but {missing} of them "
                    f"{'has' if missing == 1 else 'have'} no example in any split "
                    f"({', '.join(map(str, unused))}{', …' if missing > 5 else ''}; the labels "
                    f"used are {shown}); {fix}")


def text_names(names, *, what: str = "class_names") -> list[str]:
    """Class names as a list of str: str kept; bytes (numpy dtype 'S', as h5py and TensorFlow
    write strings) decoded as UTF-8, so b"cat" is "cat", not "b'cat'"; anything else
    str(n) (e.g. 3 → "3"). `names`: any iterable (list, 1-D array, tuple).

    Raises DataError naming `what` and the index for bytes that are not UTF-8, and for a
    name that is empty, only whitespace, starts or ends with whitespace or holds a control
    character (`names.check_class_names`).
    """
    out = []
    for i, name in enumerate(names):
        if isinstance(name, (bytes, np.bytes_)):
            why = not_utf8(bytes(name))
            if why:
                raise DataError(f"{what}[{i}] is {bytes(name)!r}, bytes that are {why}; "
                                f"store class names as UTF-8 (or as numpy str, dtype 'U')")
            name = bytes(name).decode("utf-8")
        out.append(str(name))
    check_class_names(out, what=what)
    return out


def not_utf8(raw: bytes) -> str | None:
    """Why the class name `raw` cannot be one, "not UTF-8 (invalid continuation byte at byte
    2)" for b"dr\\xe9i", in the words every scheme's refusal uses; None when it is UTF-8. A
    class name is a label the export serves as UTF-8 text (tf.string), so it must be one."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8 ({e.reason} at byte {e.start})"
    return None


def validate_task(task: Task, *, min_per_class: int = MIN_TRAIN_PER_CLASS,
                  min_classes: int = 2) -> Task:
    """The task unchanged when the method can use it, else DataError saying what to fix.

    Checked: a non-empty train split; per split as many labels as images, not empty, images
    uint8 [H, W, 3]; class names that are str (bytes are refused: `text_names` decodes
    them) and not empty, blank, padded or with control characters (`check_class_names`); at
    least `min_classes` classes (2 to train a classifier; a test set may have 1);
    labels in 0..num_classes-1; at least `min_per_class` training examples per
    class (leave-one-out kNN needs 2); no class folder whose unreadable files cost its class
    the examples it was meant to give a split (`lost_to_skips`, from `Task.class_files`).
    """
    splits = {k: getattr(task, k) for k in SPLIT_NAMES}
    if task.train is None or not len(task.train):
        raise DataError(f"task {task.name!r} ({task.source}) has no training examples; "
                        f"check the spec points at the data")
    for key, s in splits.items():
        if s is None:
            continue
        n_img = len(s.images)
        if n_img != len(s.labels):
            raise DataError(f"{key}: {counted(n_img, 'image')} but "
                            f"{counted(len(s.labels), 'label')}; they must match one to one")
        if not len(s):
            raise DataError(f"the {key} split of {task.name!r} is empty; drop it or add data")
        for im in (s.images if not s.same_size else s.images[:1]):
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[-1] != 3:
                raise DataError(f"{key}: images must be uint8 [H, W, 3], got {im.dtype} "
                                f"{list(im.shape)}")
    raw = [i for i, n in enumerate(task.class_names) if isinstance(n, (bytes, np.bytes_))]
    if raw:
        raise DataError(f"class name {raw[0]} of {task.name!r} is bytes "
                        f"({task.class_names[raw[0]]!r}), not text; decode the names first: "
                        f"[n.decode('utf-8') for n in names]")
    # Names set after the Task was made (task.class_names = ...) meet the rule here.
    check_class_names(task.class_names, what=f"task {task.name!r}: class_names")
    if task.num_classes < min_classes:
        raise too_few_classes(task.name, task.class_names, min_classes,
                              more_classes_words(task.source, min_classes))
    _check_label_range(splits, task.num_classes)
    counts = dict(zip(task.class_names,
                      np.bincount(task.train.labels, minlength=task.num_classes).tolist()))
    were = "was" if len(task.skipped) == 1 else "were"
    skipped = (f" ({counted(len(task.skipped), 'file')} {were} skipped, e.g. "  # with why:
               f"{escaped(task.skipped[0][0])}: {task.skipped[0][1]})"  # not all are images
               if task.skipped else "")
    if task.class_files:  # a folder's: the short classes' own skipped files, not any
        skipped = "".join(_short_by_skips(task, c, n) for c, n in counts.items()
                          if n < min_per_class)
    folders = ({c: r["folder"] for c, r in (task.class_files.get("train") or {}).items()
                if isinstance(r, dict) and r.get("folder")} if task.class_files else None)
    error = too_few_per_class(counts, min_per_class, note=skipped,
                              repair=bool(skipped and task.class_files), folders=folders,
                              elsewhere=_held_elsewhere(task, counts)) or lost_to_skips(
        task.class_files, lambda split, name: _has_example(task, split, name))
    if error:
        error.skipped = list(task.skipped)  # load_task logs each (the message names a few)
        raise error
    return task


def _held_elsewhere(task: Task, counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """{class: {split: examples}} of the val and test examples of each class that has no
    training example (`counts`: training examples per class name); a class of none anywhere
    maps to {}. Only classes with none: a class short of training examples but with some is
    told to add images (`too_few_per_class`)."""
    out = {}
    for i, (name, n) in enumerate(counts.items()):
        if n:
            continue
        held = {key: int(np.sum(s.labels == i)) for key in ("val", "test")
                if (s := getattr(task, key)) is not None}
        out[name] = {key: m for key, m in held.items() if m}
    return out


def _has_example(task: Task, split: str, name: str) -> bool:
    """Whether `task`'s `split` holds an example of class `name`."""
    s = getattr(task, split)
    return (s is not None and name in task.class_names
            and bool(np.any(s.labels == task.class_names.index(name))))


#: Where a refusal of files skipped says the rest are: `specs._log_skipped` logs them, one
#: line per reason (`sniff.skip_lines`), since no run.json records a refused load.
LOGGED_SKIPS = ('every skipped file is logged as a warning ("skipped PATH: REASON"; the '
                'files of one reason on one line)')
#: How each split's examples are called in the refusals of `lost_to_skips`.
_WORDS = {"train": "training", "val": "validation", "test": "test"}


def lost_to_skips(class_files: dict[str, dict[str, dict]], has_example) -> DataError | None:
    """The DataError for class folders whose unreadable files cost their class the examples
    the folder was meant to give, None when none did. `class_files`: `Task.class_files`
    ({split: {class: {"folder", "files", "skipped", "carve"?}}}); `has_example(split,
    class)`: whether the loaded split holds an example of it.

    Refused: (1) a class folder of any split (train/, val/, test/, a test set's) with files
    of which none could be read: its class has no example there, where the data meant one;
    (2) a training class folder whose split carving (its "carve": {split: examples its files
    would have given, every one read}) meant val or test examples, that has none there
    because files were skipped (a class keeps MIN_TRAIN_PER_CLASS for training first). Not
    refused: a class with no folder, or an empty one, in val/ or test/ (the data says so:
    `coverage`), a class of too few files to reach a split, and a folder some of whose files
    were read (the skipped ones are listed as always). A training class left below
    min_per_class is `too_few_per_class`'s refusal."""
    clauses = []
    for split, records in class_files.items():
        for name, record in records.items():
            skips = record.get("skipped") or []
            if not skips:
                continue
            word = _WORDS[split]
            if record["files"] == len(skips):
                fix = ("remove the folder to drop the class" if split == "train" else
                       f"remove the folder to go on without {word} examples of {name!r}")
                clauses.append(f"class {name!r} has no {word} example: {_folder_files(record)} "
                               f"(repair or replace the skipped files, or {fix})")
                continue
            meant = {s: n for s, n in (record.get("carve") or {}).items()
                     if n and not has_example(s, name)}
            if not meant:
                continue
            lost = " or ".join(_WORDS[s] for s in meant)
            given = " and ".join(counted(n, f"{_WORDS[s]} example") for s, n in meant.items())
            clauses.append(
                f"class {name!r} has no {lost} example: {_folder_files(record)}, all kept for "
                f"training (a class keeps {MIN_TRAIN_PER_CLASS} for training first; its "
                f"{record['files']} files would have given it {given}) (repair or "
                f"replace the skipped files or add images, or remove the skipped files to go "
                f"on without {lost} examples of {name!r})")
    if not clauses:
        return None
    more = (f"; and {counted(len(clauses) - 5, 'more such class folder')}" if len(clauses) > 5
            else "")
    return DataError(f"unreadable files left classes without the examples their folders hold: "
                     f"{'; '.join(clauses[:5])}{more}; {LOGGED_SKIPS}")


def _folder_files(record: dict) -> str:
    """"its folder F/ has N files, K skipped (unreadable; the first SHORT_SKIPS_SHOWN by
    reason, `sniff.named_skips`; and M more), R read" for a `Task.class_files` record; "too
    large" for images too large to decode, each kind counted when both are
    (`sniff.skipped_count`)."""
    skips = record.get("skipped") or []
    shown = named_skips(skips[:SHORT_SKIPS_SHOWN])  # each reason once, after its files
    more = (f"; and {len(skips) - SHORT_SKIPS_SHOWN} more" if len(skips) > SHORT_SKIPS_SHOWN
            else "")
    # The shared count: "2 skipped (too large; …)", "3 skipped (2 unreadable, 1 too large; …)".
    said = skipped_count((r for _, r in skips), detail=f"{shown}{more}")
    return (f"its folder {escaped(record['folder'])}/ has {counted(record['files'], 'file')}, "
            f"{said}, {record['files'] - len(skips)} read")


#: How many of a short class's skipped files its refusal names (`_short_by_skips`).
SHORT_SKIPS_SHOWN = 3


def _short_by_skips(task: Task, name: str, count: int) -> str:
    """The refusal's clause on class `name` (`count` training examples) when files of its
    training folder were skipped (`Task.class_files`): its folder, files, how many were
    skipped, the first SHORT_SKIPS_SHOWN with their reasons, and what became of the readable
    ones; "" when none was skipped (then skipping did not make it short)."""
    record = (task.class_files.get("train") or {}).get(name) or {}
    if not record.get("skipped"):
        return ""
    readable = record["files"] - len(record["skipped"])
    held = (f", {readable - count} more held out for val/test"
            + (" or dropped as copies" if task.dropped else "") if readable > count else "")
    return (f"; class {name!r} is short because files were skipped: {_folder_files(record)}"
            f"{held}; {LOGGED_SKIPS}")


def too_few_classes(name: str, class_names, min_classes: int, hint: str = "") -> DataError:
    """The DataError for a task of fewer than `min_classes` classes (`validate_task`, and the
    folder check before any image is read). `hint` ("; put …") says what to add."""
    what = "classification" if min_classes > 1 else "a test set"
    return DataError(f"task {name!r} has {counted(len(class_names), 'class', 'classes')} "
                     f"({list(class_names)}); "
                     f"{what} needs at least {min_classes}{hint}")


def more_classes_words(source, min_classes: int) -> str:
    """The way on appended to `too_few_classes`'s sentence for a loaded task of `source`
    (Task.source: "folder:/abs/DIR (…)", "npz:/abs/F.npz (…)", "tfds:NAME…", "arrays", …):
    "; " then which folder or file to fix or what to pass, so that it has at least
    `min_classes` classes. The listing check of a folder says its own (folder.py)."""
    source = str(source or "")
    scheme, _, rest = source.partition(":")
    where = rest.split(" (", 1)[0]
    need = f"at least {min_classes} classes"
    if scheme == "folder" and where:
        return (f"; put each class's images in {where}/<class name>/, {need}, or pass the "
                "folder of a data set that has them")
    if scheme == "npz" and where:
        return (f"; fix {where}: its labels must name {need} (each label a class index, "
                "class_names one name per class), or pass data that has them")
    if scheme == "tfds":
        return (f"; pass a data set (or split, or --label-key) whose labels name {need}")
    return (f"; pass data whose labels name {need}: a Task's training labels (y) must hold "
            f"{min_classes} or more distinct class indices, class_names one name per class")


def too_few_per_class(counts: dict[str, int], min_per_class: int, *, note: str = "",
                      repair: bool = False, elsewhere: dict[str, dict[str, int]] | None = None,
                      folders: dict[str, str] | None = None) -> DataError | None:
    """The DataError for classes with fewer than `min_per_class` training examples
    (`counts`: {class name: examples}), None when none has; `note` follows the counts (what
    was counted, the files skipped); `repair`: skipped files left a class short, so the fix
    starts with them. Leave-one-out kNN needs 2 (paper 2.3). `elsewhere` ({class: {split:
    examples}}, `_held_elsewhere`) says where a class without training examples has its
    examples: only in val or test (an npz's y_test holding a class y_train lacks), or in no
    split at all (a class_names entry no label uses), each with its own way on. `folders`
    ({class: its training folder}, a folder of class folders' data): the ways on are said of
    folders (a class is a folder there: "remove its folder" to drop it, never "drop it from
    the class names (renumbering …)", an npz's way, which a folder of HEIC photos or an empty
    class folder was told)."""
    low = [(c, n) for c, n in counts.items() if n < min_per_class]
    if not low:
        return None
    elsewhere = elsewhere or {}

    def where(c, n):
        if n or c not in elsewhere:
            return ""
        held = elsewhere[c]
        return (" (but " + " and ".join(f"{m} in {s}" for s, m in held.items()) + ")"
                if held else " (nor any example in another split)")

    shown = ", ".join(f"{c!r} has {n}{where(c, n)}" for c, n in low[:5])
    more = f" and {len(low) - 5} more" if len(low) > 5 else ""
    only_held = [c for c, n in low if n == 0 and elsewhere.get(c)]
    unused = [c for c, n in low if n == 0 and c in elsewhere and not elsewhere[c]]
    splits = sorted({s for c in only_held for s in elsewhere[c]}, key=("val", "test").index)
    ways = (f"; the model would never train on {_some(only_held)}: move some of "
            f"{'its' if len(only_held) == 1 else 'their'} {' and '.join(splits)} examples "
            f"into the training split, or remove them from {' and '.join(splits)}"
            if only_held else "")
    them, kept = ("it", "a class") if len(unused) == 1 else ("them", "classes")
    never = (f"keep {them} as {kept} the model never trains on with "
             + option_word("--min-per-class 0", "min_per_class=0 (load_task's, or fit's "
                           "data_args=DataArgs(…, min_per_class=0))"))
    if folders is not None:  # a class is a folder: no class names to drop, no labels
        ways += (f"; no image of {_some(unused)} was read: remove "
                 + " and ".join(f"{escaped(folders.get(c, c))}/" for c in unused[:3])
                 + f" to drop {them}, or {never}" if unused else "")
    else:
        ways += (f"; no label uses {_some(unused)}: drop {them} from the class names "
                 f"(renumbering the labels after {them}), or {never}" if unused else "")
    fewest = min(n for _, n in low)
    alone = ("; a class's one example then counts as a kNN miss: it has no other to find"
             if fewest == 1 else "")
    keep = (f", or keep {'it' if len(low) == 1 else 'them'} with " + option_word(
        f"--min-per-class {fewest}", f"min_per_class={fewest} (load_task's, or fit's "
        f"data_args=DataArgs(…, min_per_class={fewest}))") + alone) if fewest >= 1 else ""
    drop = ("add images to its folder, move them into another class's folder, or remove "
            "the folder to drop the class" if folders is not None
            else "add images, merge or drop the class")
    return DataError(
        f"every class needs at least {min_per_class} training examples (leave-one-out "
        f"kNN compares each with the others): {shown}{more}{note}{ways}; "
        f"{'repair or replace the skipped files, ' if repair else ''}{drop}{keep}")


def _some(names: list[str]) -> str:
    """'a', or 'a' and 'b', or 'a', 'b', 'c' and 2 more: class names in a refusal."""
    shown = [repr(c) for c in names[:3]]
    if len(names) > 3:
        return ", ".join(shown) + f" and {len(names) - 3} more"
    return " and ".join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else shown[0]


def _apply_label_fn(task: Task, label_fn) -> Task:
    keys = task.present_splits()
    joined = np.concatenate([getattr(task, k).labels for k in keys])
    try:
        out = label_fn(joined.copy())
    except Exception as e:
        raise DataError(f"label_fn failed on the labels: {type(e).__name__}: {e}") from None
    names = None
    if isinstance(out, tuple) and len(out) == 2:
        out, meta = out
        if isinstance(meta, (int, np.integer)):
            names = [str(i) for i in range(int(meta))]
        else:
            names = text_names(meta, what="label_fn's class names")
    out = np.asarray(out)
    if out.shape != joined.shape or out.dtype.kind not in "iu":  # not bool nor timedelta64
        raise DataError(f"label_fn must return one integer per label (shape {joined.shape}), "
                        f"got {out.dtype} {out.shape}")
    if names is None:  # indices: every one of 0..max must be used (`index_names`)
        names, _ = index_names({"label_fn's": out}, what="label_fn", fix=(
            "return (labels, num_classes) to keep classes without examples, or (labels, "
            "class_names)"))
    start = 0
    for k in keys:
        s = getattr(task, k)
        relabelled = Split(images=s.images, labels=out[start:start + len(s)].astype(np.int64),
                           paths=s.paths)
        relabelled._keys = s._keys  # the same pixels
        setattr(task, k, relabelled)
        start += len(s)
    task.class_names = names
    task.class_files = {}  # by the old names
    return task
