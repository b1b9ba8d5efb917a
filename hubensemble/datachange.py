"""What differs between the data a run recorded and other data: the words of the "other data"
refusals (`rank --out`, `rank merge --out`, `fit`, a later stage) and the way out of them,
including the command that starts a run folder again (`rerun.start_again`); and the refusal
of data without a validation split (`require_validation`).

A run's data is one fingerprint (`Task.fingerprint`: a sha256 of class names, labels and
pixels), which says that two data sets differ but not how. This compares what both sides
record instead: the load's options (`DataArgs`), the class names, the counts of files and of
each split, the labels (RUN/labels/<split>.npy) and the train and val pixel keys
(RUN/labels/pixel_keys.npz), and says when the run was recorded by an older hubensemble,
whose decoding may have given the same files other pixels. No TensorFlow; no import of
rundir (which calls this).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from hubensemble.data.sniff import MAX_SHORT_SIDE, TFDS_DECODED_SINCE, TFDS_DECODED_WORDS
from hubensemble.errors import DataError, RunError
from hubensemble.lockwords import PYTHON_CALLS, on_command_line, option_word
from hubensemble.pixelkeys import KEYED_SPLITS, REWRITTEN_BY, keys_expected, read_pixel_key_rows
from hubensemble.rerun import _as_flag, _changed_options, _keyword, shown, start_again
from hubensemble.text import absolute, escaped, names_listed, names_shown

#: The splits compared, in this order.
SPLITS = ("train", "val", "test")
#: The day decoding began to shrink an image whose shorter side is above MAX_SHORT_SIDE
#: (docs/data.md, Decoding): a run recorded before holds such images whole.
SHRINK_SINCE = "2026-12-03"


@dataclasses.dataclass
class DataRecord:
    """One side of a comparison. `args`: run.json's data "args" (`DataArgs.to_json`); `task`:
    its "task" (`Task.to_json`); `labels`: {split: int64 [N]} of the splits it has labels of;
    `keys`: {split: [16-byte pixel key per image]} of train and val, None when not recorded;
    `shapes`: {split: [(H, W) per image]} of train and val, for a task loaded now (else
    None); `keys_fault`: why a run's RUN/labels/pixel_keys.npz gave no keys though the
    hubensemble that recorded the run writes it (missing, unreadable, of other data), in
    words with the way on; None when it gave them or an older hubensemble wrote none."""

    args: dict
    task: dict
    labels: dict
    keys: dict | None
    shapes: dict | None = None
    keys_fault: str | None = None

    @classmethod
    def of_task(cls, task, data_args=None) -> "DataRecord":
        """The record of a Task loaded now with `data_args` (a DataArgs; None: a task given in
        Python, or loaded with the recorded options, whose options are not compared)."""
        parts = {s: getattr(task, s) for s in SPLITS if getattr(task, s) is not None}
        return cls(args=data_args.to_json() if data_args is not None else {},
                   task=task.to_json(),
                   labels={s: np.asarray(p.labels, np.int64) for s, p in parts.items()},
                   keys={s: p.pixel_keys() for s, p in parts.items() if s in KEYED_SPLITS},
                   shapes={s: [tuple(im.shape[:2]) for im in p.images]
                           for s, p in parts.items() if s in KEYED_SPLITS})

    @classmethod
    def of_run(cls, run, data: dict | None = None) -> "DataRecord":
        """The record of a run folder (a `rundir.Run`): `data` (default: its run.json's
        "data"), its labels/ files and pixel keys, each left out when missing or unreadable
        (a run recorded before they were written, or damaged since). Pixel keys missing from
        a run recorded by a hubensemble that writes them (`pixelkeys.keys_expected`: its
        run.json tells), unreadable or of other data are its `keys_fault`, not an older
        record."""
        data = data if data is not None else run.data_section("args", "task")
        labels = {}
        for split in SPLITS:
            try:
                found = run.labels_of(split)
            except (OSError, ValueError):
                found = None
            if found is not None:
                labels[split] = np.asarray(found)
        task = data.get("task") or {}
        stored, fault = None, None
        try:
            stored = read_pixel_key_rows(run.pixel_keys_path)
        except RunError as e:
            fault = str(e)  # "… is unreadable (…); `fit` or `rank` on this run's data …"
        if stored is None and fault is None and keys_expected(task):
            fault = (f"{escaped(absolute(run.pixel_keys_path))} is missing, though the "
                     "hubensemble that wrote "
                     f"its run.json writes it (deleted since); {REWRITTEN_BY}")
        elif stored is not None and stored[0] != task.get("fingerprint"):
            fault = (f"{escaped(absolute(run.pixel_keys_path))} records other data (fingerprint "
                     f"{stored[0][:12]}…) than its run.json; {REWRITTEN_BY}")
        keys = None if fault is not None or stored is None else stored[1]
        return cls(args=data.get("args") or {}, task=task, labels=labels, keys=keys,
                   keys_fault=fault)


@dataclasses.dataclass
class DataChange:
    """What differs from the recorded data (`was`) to the other (`now`), as `compare` found it.

    `changed`: the data options that differ, (flag, recorded, now); `reasons`: what differs
    in the data itself when no option does (classes, counts, labels, pixels), in words;
    `older`: what `was`'s record lacks that `now`'s has, in words (fields of run.json's data
    record, RUN/labels/pixel_keys.npz): it was written by an older hubensemble; `redecoded`: the
    difference is in the pixels alone and an older hubensemble (or the shrink of large
    images) explains it, so restoring the files would not help; `resplit`: the counts or labels
    differ and `was` is an older hubensemble's record, whose loading (which files it read, how
    it split them) may explain it as well as changed files."""

    changed: list
    reasons: list
    older: list
    redecoded: bool = False
    resplit: bool = False

    def items(self) -> list[str]:
        """The differences, e.g. ["--data-seed 0 -> 3"] (from Python, `lockwords.
        on_command_line` false, the load_task / DataArgs keywords: ["seed=0 -> 3"]) or ["1 of
        the 18 train images is new or changed"]; never empty."""
        if self.changed and not on_command_line():
            return [f"{_keyword(flag)}={old!r} -> {new!r}" for flag, old, new in self.changed]
        if self.changed:
            return [f"{flag} {shown(old)} -> {shown(new)}" for flag, old, new in self.changed]
        return self.reasons or ["its fingerprint differs"]

    def text(self) -> str:
        """The differences in one clause, e.g. "its data options differ (--data-seed 0 ->
        3)" or "1 of the 18 train images is new or changed"."""
        if self.changed:
            return f"its data options differ ({'; '.join(self.items())})"
        return "; ".join(self.items())

    @property
    def other_source(self) -> bool:
        """Whether the data spec (--data) itself differs."""
        return any(flag == "--data" for flag, _, _ in self.changed)

    def advice(self, new_folder: str | None = None,
               go_on: str = "pass the data options it recorded", restore: bool = True) -> str:
        """What to do: `new_folder` (the caller's words for starting afresh; default
        `new_folder_words`), and how to go on with the recorded data when that can work:
        `go_on` and its options as flags (those that differ; from Python their keywords,
        "seed=0"), or (`restore`: the data is loaded now) restoring the files."""
        new_folder = new_folder or new_folder_words()
        if self.changed and not on_command_line():
            flags = ", ".join(f"{_keyword(flag)}={old!r}" for flag, old, _ in self.changed)
            return f"{new_folder}, or {go_on}: {flags}"
        if self.changed:
            flags = " ".join(_as_flag(flag, old) for flag, old, _ in self.changed)
            return f"{new_folder}, or {go_on}: {flags}"
        if self.redecoded:  # restoring the files would give the same pixels again
            return (f"{new_folder} (this hubensemble does not decode the files as the one "
                    "that recorded the run did)")
        if self.resplit and restore:  # the files may be as they were
            return (f"{new_folder}, or restore the data the run was recorded on if it changed "
                    "since")
        return f"{new_folder}, or restore the data the run was recorded on" if restore else (
            new_folder)


def new_folder_words(command: str | None = None) -> str:
    """"use a new --out folder" on the command line; from Python the run folder's keyword of
    `command`'s stage function (`lockwords.PYTHON_CALLS`: "use a new out_dir folder" for
    rank; fit's "out" when `command` is None or has no such function)."""
    if on_command_line():
        return "use a new --out folder"
    return f"use a new {PYTHON_CALLS.get(command or 'fit', PYTHON_CALLS['fit'])[1]} folder"


def compare(was: DataRecord, now: DataRecord) -> DataChange:
    """What differs between the recorded data `was` and `now` (see DataChange). The data's
    options first: when one differs, that explains the data and nothing else is compared."""
    older = [k for k in now.task if k not in was.task]
    older += [f"option {k}" for k in now.args if k not in was.args]
    older = [f"its data record has no {', '.join(older)}"] if older else []
    if was.keys is None and now.keys is not None and was.keys_fault is None:
        older.append("no RUN/labels/pixel_keys.npz")
    changed = _changed_options(was.args, now.args)
    if changed:
        return DataChange(changed, [], older)
    # Other counts or labels from an older record: that version may have read or split the
    # same files otherwise (a byte-identical copy and 3 unreadable files: 679fffb's split of
    # a folder said "train: 73 -> 72 examples" to the current one, the files unchanged).
    resplit = ([f"the run was recorded by an older hubensemble ({'; '.join(older)}), which "
                "may have read or split the same files otherwise (docs/data.md, Splits and "
                "Duplicates)"] if older else [])
    reasons = _count_reasons(was.task, now.task)
    if reasons:
        return DataChange([], reasons + resplit, older, resplit=bool(resplit))
    reasons, relabelled, shrunk = _example_reasons(was, now)
    if relabelled:  # labels or order changed: the files did, or the split
        return DataChange([], reasons + resplit, older, resplit=bool(resplit))
    causes = []
    if shrunk:
        causes.append(f"{shrunk} of {'them' if was.keys else 'the images'} now "
                      f"{_are(shrunk, 'has', 'have')} a shorter side of {MAX_SHORT_SIDE} px: "
                      f"since {SHRINK_SINCE} hubensemble shrinks larger images to that "
                      "(docs/data.md, Decoding), and a run recorded before holds them whole")
    if older:
        causes.append(f"the run was recorded by an older hubensemble ({'; '.join(older)}), "
                      "and decoding has changed since (docs/data.md, Decoding)")
    if (TFDS_DECODED_WORDS in str(now.task.get("source", ""))
            and TFDS_DECODED_WORDS not in str(was.task.get("source", ""))):
        # Nothing else in the record tells: the tfds data set is the same files.
        causes.append(f"the run was recorded before {TFDS_DECODED_SINCE}, when tfds decoded "
                      "the data set's image files itself (JPEG with TensorFlow's fast IDCT, "
                      "a PNG's alpha dropped); hubensemble now decodes them as serve_bytes "
                      "does (docs/data.md, tfds:)")
    return DataChange([], reasons + causes, older, redecoded=bool(causes))


def _count_reasons(was: dict, now: dict) -> list[str]:
    found = []
    old, new = list(was.get("class_names") or []), list(now.get("class_names") or [])
    if old != new:
        parts = [f"{word}: {names_listed(names)}" for word, names in (
            ("new", [c for c in new if c not in old]), ("gone", [c for c in old if c not in new]))
            if names]
        found.append(f"the classes differ ({'; '.join(parts)})" if parts else
                     "the classes are in another order")
    if None not in (was.get("files"), now.get("files")) and was["files"] != now["files"]:
        found.append(f"files read: {was['files']} -> {now['files']}")
    sizes_was, sizes_now = was.get("sizes") or {}, now.get("sizes") or {}
    found += [f"{s}: {sizes_was.get(s)} -> {sizes_now.get(s)} examples" for s in SPLITS
              if s in sizes_was and sizes_was.get(s) != sizes_now.get(s)]
    return found


def _example_reasons(was: DataRecord, now: DataRecord) -> tuple[list, bool, int]:
    """(what differs, in split order; whether labels or the order differ, not pixels alone;
    how many of the images whose pixels differ are shrunk ones) of data of the same classes
    and counts. Per split by pixel key and label where both sides have the keys (images whose
    pixels no image of the run's split has: new or changed; known images with other labels;
    the same examples in another order), else by label alone; never an empty list."""
    found, relabelled, shrunk = [], False, 0
    for split in SPLITS:
        if split not in now.labels or split not in was.labels:
            continue
        labels_was, labels_now = was.labels[split], now.labels[split]
        size = len(labels_now)
        if len(labels_was) != size:
            continue
        keys_was = (was.keys or {}).get(split)
        keys_now = (now.keys or {}).get(split)
        if keys_was is None or keys_now is None or len(keys_was) != size:
            if n := int((labels_was != labels_now).sum()):
                found.append(f"the labels of {n} of {size} {split} examples differ")
                relabelled = True
            continue
        known, pairs = set(keys_was), set(zip(keys_was, labels_was.tolist()))
        new = [i for i, key in enumerate(keys_now) if key not in known]
        other = sum(key in known and (key, label) not in pairs
                    for key, label in zip(keys_now, labels_now.tolist()))
        if new:
            found.append(f"{len(new)} of the {size} {split} images {_are(len(new))} new or "
                         "changed")
            shapes = (now.shapes or {}).get(split) or []
            shrunk += sum(min(shapes[i]) == MAX_SHORT_SIDE for i in new if i < len(shapes))
        if other:
            found.append(f"{other} of the {size} {split} images {_are(other, 'has', 'have')} "
                         "other labels")
            relabelled = True
        elif not new and (keys_was != keys_now or (labels_was != labels_now).any()):
            found.append(f"the {split} examples are in another order")
            relabelled = True
    if found:
        return found, relabelled, shrunk
    if was.keys is not None and now.keys is not None:
        return ["the test images differ (a run keeps no pixel keys of its test split)"], False, 0
    # Classes, counts and labels are the same: the fingerprint covers only pixels more.
    why = (f"which cannot be told: {was.keys_fault}" if was.keys_fault else
           "the run recorded no pixel keys to tell which")
    return ([f"the classes, the counts of files and examples and the labels are the same, so "
             f"the images' pixels differ ({why})"], False,
            sum(min(hw) == MAX_SHORT_SIDE for shapes in (now.shapes or {}).values()
                for hw in shapes))


def _are(n: int, one: str = "is", more: str = "are") -> str:
    return one if n == 1 else more


#: Data options (their flags) whose change alone may load the very data the run recorded
#: (another copy of a tfds data folder; a --min-per-class or --dedupe that drops nothing):
#: whether the data differs is known only once it is loaded (`resume.check_inputs`,
#: `Run.attach_task`).
_LOAD_DECIDES = ("--data-dir", "--min-per-class", "--dedupe")


def _gives_other_data(flag: str, old, spec: str) -> bool:
    """Whether data option `flag` recorded as `old` and given otherwise now (data spec `spec`),
    gives other data whatever the files hold. A folder: or npz: path recorded relative (an
    older hubensemble), gone since (the data moved) or the same file or folder by another
    name may hold the recorded data; so may a --data-seed where no split is drawn with it
    (an npz that stores x_val and x_test) or of a tfds: data set: the load decides those."""
    from hubensemble.data.specs import FIXED_SPLITS, _local_path, parse_spec
    from hubensemble.errors import DataError

    if flag in _LOAD_DECIDES:
        return False
    try:
        scheme, rest = parse_spec(spec)
        if flag == "--data":
            was, now = _local_path(str(old)), _local_path(spec)
            if was is None or now is None or was[0] != now[0]:
                return True  # another scheme or data set name (sklearn:, tfds:)
            path = os.path.expanduser(was[1])
            return (os.path.isabs(path) and os.path.exists(path)
                    and not os.path.samefile(path, os.path.expanduser(now[1])))
        if flag == "--data-seed":
            return scheme == "sklearn" or (scheme in ("folder", "npz") and not {
                "val", "test"} <= set(FIXED_SPLITS[scheme](rest)))
    except (DataError, OSError):
        return False  # the load says what is wrong with the data
    return True


def surely_other_data(change: DataChange, spec: str) -> bool:
    """Whether the data options that `change` (`compare` of two records' options alone) finds
    changed surely load other data than the run recorded, whatever the files hold
    (`_gives_other_data`): fit's and rank's refusals before TensorFlow ask it, and leave the
    rest to the load, which compares the data itself. Rank's check refused any change (a
    --min-per-class that drops nothing, the same npz by a symbolic link) that the load takes
    as the same data. `spec`: the data spec given now."""
    return any(_gives_other_data(flag, old, spec) for flag, old, _ in change.changed)


def other_data(where, change: DataChange, than: str | None, *, again: str = "",
               new_folder: str | None = None,
               go_on: str = "pass the data options it recorded", restore: bool = True,
               command: str | None = None) -> str:
    """The refusal of a run folder `where` that holds other data than `than` (e.g.
    "folder:/x as loaded now"; None: `change` names both specs): what differs (`change`) and
    what to do (`DataChange.advice`, then `again`: `start_again`'s words, when it has any).
    `new_folder` defaults to `new_folder_words(command)`."""
    new_folder = new_folder or new_folder_words(command)
    return (f"{where} holds a run on other data{f' than {than}' if than else ''}: "
            f"{change.text()}; {change.advice(new_folder, go_on, restore)}"
            + (f"; or {again}" if again else ""))


def require_validation(task, run=None) -> None:
    """RunError unless `task` (a Task, or its run.json record) has validation examples: tune
    scores every candidate on them and the ensemble is selected on them (paper 2.3), so a
    sweep without them would fail each trial ("has no val split") and then say no candidate
    is usable. `fit` calls it before it loads anything, and `tune` (on `run`, a Run that
    records `task`) before it trains: its data then needs a new run (`start_again`)."""
    sizes = task.get("sizes") if isinstance(task, dict) else {
        "val": len(task.val) if task.val is not None else None}
    if sizes is not None and not sizes.get("val"):  # a record without sizes says nothing
        name = task.get("name") if isinstance(task, dict) else task.name
        source = task.get("source") if isinstance(task, dict) else task.source
        # The way in the data's own terms: a tfds: spec refuses --val-fraction (a new-user
        # check was pointed at it).
        fraction = option_word("--val-fraction", "val_fraction")
        how = {"tfds": "a tfds split for it: " + option_word(
                   "--split val=train[800:1000]", "splits={'val': 'train[800:1000]'}"),
               "npz": f"x_val/y_val in the npz, or {fraction} above 0",
               "folder": f"a val/ folder, or {fraction} above 0"}.get(
            str(source or "").split(":", 1)[0], f"{fraction} above 0")
        then = option_word("run the fit again", "call fit again")
        few = None if isinstance(task, dict) else _too_few_distinct(task)
        if few:
            how = ("more distinct images per class, or a val/ folder of other images"
                   if str(source or "").startswith("folder:") else
                   "more distinct images per class, or a validation split of other images")
        if run is not None:  # the same data in it would be refused as other data
            meta = run.meta()
            args = dict(run.data_part(meta, "args"))
            args.pop("val_fraction", None)  # the options that gave no val split: the user's
            args["splits"] = {k: v for k, v in (args.get("splits") or {}).items()
                              if k != "val"} or None
            then = start_again(run.path, meta, "tune", args=args)
        if few:
            raise RunError(f"task {name!r} has no validation examples ({source}); tune and "
                           f"the ensemble are chosen on them (paper 2.3), and {few}: give it "
                           f"{how}, then {then}")
        raise RunError(
            f"task {name!r} has no validation examples ({source}); tune and the ensemble "
            f"are chosen on them (paper 2.3): give the data a validation split ({how}; "
            f"{option_word('--dedupe', 'dedupe=True')} drops a val split that only copies "
            f"train), then {then}")


def _too_few_distinct(task) -> str | None:
    """Why no validation split could be carved off `task`'s train split (a Task) whatever
    the fraction, when that is why: a val split takes a class's image only from its
    MIN_TRAIN_PER_CLASS + 1-th distinct one (`splits.split_counts`), and exact copies go to
    one split together (`splits.stratified_split`'s groups), so that a class of 20 copies of
    one image is one image to the split. None when a class has enough distinct images (then
    the fraction was 0, or the source has none). "Raise --val-fraction" was the advice when
    every image was a copy of one, at --val-fraction 0.2 (a new-user check)."""
    from hubensemble.data.splits import MIN_TRAIN_PER_CLASS

    groups, labels = task.groups("train"), np.asarray(task.train.labels)
    _, first = np.unique(groups, return_index=True)  # a group is its first copy's class
    per_class = np.bincount(labels[first], minlength=task.num_classes)
    need = MIN_TRAIN_PER_CLASS + 1
    if len(labels) == 0 or per_class.max() >= need:
        return None
    distinct = len(first)
    what = ("every image is a copy of one" if distinct == 1 else
            f"its {len(labels)} examples are {distinct} distinct images" if distinct < len(labels)
            else f"it has {distinct} images")
    shown = ", ".join(f"{n} {int(c)}" for n, c in list(zip(names_shown(task.class_names),
                                                           per_class))[:5])
    shown += ", …" if task.num_classes > 5 else ""
    copies = (" (exact copies go to one split together, so that none is validated on a copy "
              "of a training image)" if distinct < len(labels) else "")
    return (f"{what}{copies}: a class gives the validation split an image only once it has "
            f"{need} distinct ones ({MIN_TRAIN_PER_CLASS} stay for training); distinct images "
            f"per class: {shown}")


def metadata_spec(meta: dict) -> str | None:
    """The data spec an export's metadata (`read_export_metadata`) names for its task: its
    "spec" when recorded (exports written since; a Task made in Python has none), else the
    spec its source begins with ("folder:/abs/imgs (80 train / 20 val, split by
    hubensemble)" -> "folder:/abs/imgs"); None when its source is no spec (a Task made in
    Python: "arrays") or there is none.

    For an older export's source (no "spec"): the loaders write "SPEC (how)", and a path may
    hold "(", ")" and spaces itself (`folder:/a/imgs (2)`) as a "how" may (npz keys, tfds's
    image key): of the places the spec may end (the whole source, or before any " (" whose
    text runs to the last ")"), the first from the right whose folder: or npz: path exists is
    taken; else the cut before the last balanced parenthesis (the loaders' own "(how)"), else
    the whole source."""
    from hubensemble.data.specs import _local_path, parse_spec

    task = (meta or {}).get("task") or {}
    recorded = task.get("spec") if isinstance(task, dict) else None
    if isinstance(recorded, str):  # the spec itself (exports since it was recorded): no guess
        try:
            parse_spec(recorded)
            return recorded
        except DataError:
            pass
    source = task.get("source") if isinstance(task, dict) else None
    if not isinstance(source, str):
        return None
    cuts = [source]
    if source.endswith(")"):
        cuts += [source[:i] for i in range(len(source) - 2, 0, -1)
                 if source.startswith(" (", i)]
        depth, balanced = 0, None  # the loaders' "SPEC (how)": the last balanced parenthesis
        for i in range(len(source) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(source[i], 0)
            if depth == 0:
                balanced = source[:i - 1] if source[i - 1:i] == " " else None
                break
        cuts.sort(key=lambda cut: (cut != balanced, cut == source))
    for cut in cuts:  # a path that is there decides
        local = _local_path(cut)
        if local and os.path.exists(os.path.expanduser(local[1])):
            return cut
    for cut in cuts:
        try:
            parse_spec(cut)
        except DataError:
            continue
        return cut
    return None
