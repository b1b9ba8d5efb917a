"""Which evaluated images trained or chose an export: its run's record of its train and val images.

`evaluate --data DIR` on a folder that holds the run's photos plus a few new ones scores every
image as a test example, the run's training images too (a new-user check: 96 of 121 trained
or chose the export, accuracy 0.93 and not a word). The run records the pixel keys of its
train and val images when it loads its data (`pixelkeys.write_pixel_keys`, in the run folder:
an export ships to serving, and a list of its training images' digests would tell anyone
whether an image trained it); evaluate compares the scored images with them here.

An export moved away from its run has no such record; its metadata's task.files (digests of
its data's file names, and short digests of each name with its pixels, `files_record`) tells
evaluate how the folder it was fit on has changed since (`changed_files`): its recorded split
holds only on the very files it was drawn from. Those digests tell only someone who has an
image *and* its path in the folder whether that file was in the data (1 false match in 16.7
million), not whether an image trained the export wherever it comes from.
"""

from __future__ import annotations

import hashlib
import logging
import os


from hubensemble.data.duplicates import copies_in
from hubensemble.errors import RunError
from hubensemble.exportfolder import task_record
from hubensemble.fileio import json_object
from hubensemble.formats import read_export_metadata
from hubensemble.heldoutwords import copies_note, scored_way
from hubensemble.pixelkeys import REWRITTEN_BY, keys_expected, read_pixel_keys
from hubensemble.rundir import Run
from hubensemble.text import absolute, counted

log = logging.getLogger(__name__)

#: How a run's split is named in the warning.
_WORDS = {"train": "training", "val": "validation"}


def parent_run(model_dir) -> Run | None:
    """The run whose folder holds the export at `model_dir`: its parent folder when that
    holds run.json (RUN/export, or `export --out RUN/v2`), else None."""
    run = Run(os.path.dirname(absolute(os.fspath(model_dir))))
    return run if run.exists() else None


def named_run_data(model_dir, meta: dict | None = None):
    """(run, its recorded data: run.json's "data") of the run the metadata of the export at
    `model_dir` (`meta`: that metadata, read when None) names (`formats.exported_run`:
    `export --run R --out DIR` writes DIR outside R), when that folder is a run recording
    data of the export's own data fingerprint (its metadata's task.fingerprint, equal to
    run.json's data.task.fingerprint: a run fit again on other data since is not taken);
    else (None, None), and evaluate asks for --data as before. The data is then loaded as
    for an export inside its run (`Run.task`, which refuses data changed since run.json
    recorded it). Files only; a damaged run.json there is (None, None): it is not the
    export's folder."""
    from hubensemble.formats import exported_run

    meta = read_export_metadata(model_dir, strict=False) if meta is None else meta
    made_on, path = task_record(meta).get("fingerprint"), exported_run(meta, model_dir)
    run = Run(path) if made_on and path and os.path.isdir(path) else None
    try:
        recorded = run.data_section("args", "task") if run and run.exists() else {}
    except RunError:
        recorded = {}
    if recorded and (recorded.get("task") or {}).get("fingerprint") == made_on:
        return run, recorded
    return None, None


def export_run(model_dir, meta: dict | None = None) -> Run | None:
    """The run of the export at `model_dir` (`meta`: its metadata, read when needed and
    None): the run whose folder holds it (`parent_run`), else the run its metadata names
    when that run records the export's own data (`named_run_data`: `export --run R --out
    DIR` outside R), else None. It was the parent folder alone: an export written with
    --out elsewhere and scored on R's data (evaluate takes it, `check_evaluation_data`) had
    no held-out note, though R records which images trained it."""
    return parent_run(model_dir) or named_run_data(model_dir, meta)[0]


def not_held_out(model_dir, task, split: str = "test", meta: dict | None = None) -> dict | None:
    """How many of `task`'s `split` images are pixel-identical (`duplicates.pixel_key`) to
    images that trained (its run's train split) or chose (val) the export at `model_dir`
    (`meta`: its metadata, read when None): {"run": the run folder, "images": n, "train": n,
    "val": n}, an image in both splits counted once in "images"; a split the run's data lacks
    is absent. The keys are those the run recorded when it loaded its data, so images added
    to its folder since count as new ones.

    None when that is unknown, said at DEBUG: the export has no run (`export_run`), the run
    was recorded before its keys were, or they are of other data than the export's (its
    task fingerprint); a keys file that cannot be read, or missing from a run whose run.json
    a hubensemble that writes it wrote (`pixelkeys.keys_expected`), is a warning. Never
    raises for them: it only decides whether evaluate warns."""
    run = export_run(model_dir, meta)
    try:
        keys = read_pixel_keys(run.pixel_keys_path) if run else None
    except RunError as e:
        log.warning("cannot tell which evaluated images trained the export: %s", e)
        return None
    made_on = task_record(read_export_metadata(model_dir) if meta is None else meta).get(
        "fingerprint")  # (a "task" edited into no object: none; a string raised AttributeError)
    if keys is None and run is not None and keys_expected(_recorded_task(run)):
        log.warning("cannot tell which evaluated images trained the export: %s is missing, "
                    "though the hubensemble that wrote %s writes it (deleted since); %s",
                    run.pixel_keys_path, run.meta_path, REWRITTEN_BY)
        return None
    if keys is None or keys.fingerprint != made_on:
        why = ("no run folder holds it (run.json beside it), nor does its metadata name a run "
               "that records its data" if run is None else
               f"{run.pixel_keys_path} is missing (a run recorded before it was)" if keys is None
               else f"{run.pixel_keys_path} records other data than the export's")
        log.debug("not counting the images that trained %s: %s", model_dir, why)
        return None
    return {"run": str(run.path), **copies_in(task.split(split).pixel_keys(), keys.splits)}


def _recorded_task(run) -> dict:
    """run.json's data "task" of `run`; {} when it cannot be read (the stage says why)."""
    try:
        return run.data_section("task").get("task") or {}
    except RunError:
        return {}


def not_held_out_note(result: dict) -> str | None:
    """The warning for an `evaluate_model` result whose scored images include images that
    trained or chose the export (its "not_held_out"), naming the count and the splits; None
    when none did or when that is unknown. On the data the export was made on
    ("same_data_as_export"), its test split holding copies of its train or val images (a
    test/ folder of copied files, scored whole or alone) is `heldoutwords.copies_note`, the
    words fit's table gives them; its train and val splits are its training images by name,
    which the table's "scored:" line says (None here)."""
    # A saved result (robustness.json) edited by hand: a field gone or of another kind is
    # not recorded (a missing "run" raised KeyError, a "not_held_out" string AttributeError).
    seen = json_object(result.get("not_held_out"))
    n = recorded_count(seen, "images")
    if not n:
        return None
    run = seen.get("run") or "not recorded"
    if result.get("same_data_as_export"):
        if result.get("split") != "test":
            return None
        return copies_note("test", scored_count(result), recorded_count(seen, "train") or 0,
                           recorded_count(seen, "val") or 0, images=n, why=f"the pixels of "
                           f"images of this export's run, {run}", way=scored_way())
    splits = " or ".join(f"{_WORDS[s]} ({seen[s]})" for s in _WORDS if recorded_count(seen, s))
    are, images = ("is a", "image") if n == 1 else ("are", "images")
    return (f"{n} of {scored_count(result)} {result.get('split') or '?'} images {are} {splits} "
            f"{images} of this "
            f"export's run; their metrics are not a held-out measure (the run: {run}; "
            "score images it never saw for one)")


def scored_count(result: dict) -> int | str:
    """The count of scored images of an evaluation result (`evaluate_model`'s "n"), or "?"
    when it is gone or edited into no count (a saved robustness.json edited by hand: the
    notes and tables said "None examples", or raised KeyError)."""
    n = recorded_count(result, "n")
    return "?" if n is None else n


def recorded_count(record: dict, key: str) -> int | None:
    """`record`'s count `key` (a held-out record's "images", "train", "added", …: an int
    >= 0), or None when it is absent or edited into no count (a string, a bool, a negative
    or fractional number), which the notes read as not recorded."""
    value = record.get(key) if isinstance(record, dict) else None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


# --- an export's record of its data's files (metadata task.files) ---------------------------

#: Hex digits kept of the sha256 of each file name in an export's `task.files`: enough to count
#: the files of a folder that differ (no two names of 10^5 files share 40 bits, in practice),
#: and no list of names in an export that ships to serving.
NAME_DIGITS = 10
#: Hex digits kept of each file's content digest in `task.files` ("content": the sha256 of its
#: name digest and its pixel key, `duplicates.pixel_key`, which the loader has computed
#: already): a file replaced under its name is missed 1 time in 16.7 million.
CONTENT_DIGITS = 6
#: Files an export's `task.files` lists at most (about 24 bytes each in the metadata); of a
#: folder of more, a sample by name (`_sampled`), one in `sample` (a power of 2).
MAX_FILES = 10_000
_RECORDED = ("train", "val", "test", "dropped")


def _name_key(path, root) -> str:
    """The NAME_DIGITS-hex digest of `path` relative to folder `root`, "/"-separated (a folder
    moved elsewhere keeps its names)."""
    name = os.path.relpath(os.fspath(path), os.fspath(root)).replace(os.sep, "/")
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:NAME_DIGITS]


def _name_keys(paths, root) -> set[str]:
    """`_name_key` of each of `paths`."""
    return {_name_key(path, root) for path in paths}


def _content_key(name_key: str, pixel_key: bytes) -> str:
    """CONTENT_DIGITS hex digits of the sha256 of a file's name digest and its pixel key: what
    tells a file from another of the same name."""
    return hashlib.sha256(name_key.encode() + pixel_key).hexdigest()[:CONTENT_DIGITS]


def _sampled(key: str, sample: int) -> bool:
    """Whether the file of name digest `key` is in the sample of one in `sample` (by name, so
    that a folder and an export's record pick the same files)."""
    return int(key, 16) % sample == 0


def may_be_fit_on(made_on, folder) -> bool:
    """Whether the folder of class folders `folder` may be the data an export was fit on, by
    its metadata's "task" `made_on` alone, before any image is read: it records the data's
    fingerprint, and its files record (`files_record`) names no file the folder lacks (one
    missing is another listing, so another split and fingerprint); without such a record,
    only the load's fingerprint can tell (True). For `data.specs.check_one_test_set`."""
    if not isinstance(made_on, dict) or not made_on.get("fingerprint"):
        return False
    files = made_on.get("files")
    if not isinstance(files, dict) or files.get("digits") != NAME_DIGITS:
        return True
    sample = files.get("sample") if isinstance(files.get("sample"), int) else 1
    recorded = set().union(*(set(files.get(s) or ()) for s in _RECORDED))
    here = {key for root, _, names in os.walk(folder) for key in (
        _name_key(os.path.join(root, n), folder) for n in names) if _sampled(key, max(sample, 1))}
    return recorded <= here


def files_record(task, root) -> dict | None:
    """What an export records of the files of its run's data, a folder `root` (its metadata's
    task.files): {"count": files, "digits": NAME_DIGITS, "train", "val", "test", "dropped":
    sorted digests of the names, relative to `root`, of each split's files and of the copies
    --dedupe dropped (a split the task lacks is absent), "content_digits": CONTENT_DIGITS,
    "content": sorted `_content_key`s of the train, val and test files (name and pixels:
    a file replaced under its name is told apart; the dropped copies have none), "sample":
    1}. Of more than MAX_FILES files, only those of a sample by name are listed (`_sampled`),
    one in "sample" (2, 4, …), so that the metadata stays under about 240 KB ("count" is
    still all of them). None for data not read from files.

    The export's recorded split (task.split) holds only on the very files it was drawn from:
    one file more or less reshuffles the classes drawn after it. `evaluate --data` on that
    folder changed since then scores every image (`changed_files` says how many differ and
    how many scored images trained the export)."""
    names, content, count = {}, [], 0
    for split in ("train", "val", "test"):
        data = getattr(task, split)
        if data is None:
            continue
        if data.paths is None:
            return None
        names[split] = [_name_key(p, root) for p in data.paths]
        content += [_content_key(n, k) for n, k in zip(names[split], data.pixel_keys())]
        count += len(data.paths)
    dropped = [name for name, _ in task.dropped]
    if dropped:
        names["dropped"] = [_name_key(p, root) for p in dropped]
        count += len(dropped)
    sample = 1
    while sum(_sampled(k, sample) for keys in names.values() for k in keys) > MAX_FILES:
        sample *= 2
    content_names = [k for s in ("train", "val", "test") for k in names.get(s, ())]
    return {"count": count, "digits": NAME_DIGITS, "sample": sample,
            **{s: sorted(k for k in keys if _sampled(k, sample)) for s, keys in names.items()},
            "content_digits": CONTENT_DIGITS,
            "content": sorted(c for n, c in zip(content_names, content) if _sampled(n, sample))}


def changed_files(meta: dict, task) -> dict | None:
    """How the folder of class folders `task` (`load_test_set`'s test set of all its images)
    differs from the files the export of metadata `meta` was fit on (its task.files,
    `files_record`), when it holds at least half of them by name and the export's split was
    not drawn on it (its fingerprint is another: files added, removed or changed since):
    {"folder": the folder, "recorded": files the export was fit on, "present": of them here
    by name, "added": files here not among them, "removed": of them not here, "replaced": of
    them here by name with other pixels (0 for an export recorded before "content"), "train",
    "val", "test": how many scored images are the export's training, validation or test
    files (by name, the replaced ones not), "sampled": 1, or the record's "sample" n when it
    lists one in n files: the counts are then those of the sample times n, estimates,
    "compared": "pixels" when the record holds each file's pixels, else "names"}.
    None otherwise (other data, an export recorded before task.files, data not from files):
    then nothing is said."""
    recorded = task_record(meta).get("files")  # (edited into no object: none)
    if (not isinstance(recorded, dict) or not task.test_set_only or task.test.paths is None
            or recorded.get("digits") != NAME_DIGITS):
        return None
    folders = [c.get("folder") for c in (task.class_files.get("test") or {}).values()
               if isinstance(c, dict) and c.get("folder")]
    if not folders:
        return None
    sample = recorded.get("sample") if isinstance(recorded.get("sample"), int) else 1
    root = os.path.dirname(os.path.normpath(folders[0]))
    scored = {k: i for i, k in enumerate(_name_key(p, root) for p in task.test.paths)
              if _sampled(k, max(sample, 1))}
    here = set(scored) | {k for k in _name_keys([n for n, _ in task.dropped], root)
                          if _sampled(k, max(sample, 1))}
    then = {s: set(recorded.get(s) or ()) for s in _RECORDED}
    everything = set().union(*then.values())
    present = len(here & everything)
    if not everything or 2 * present < len(everything):
        return None
    replaced = set()
    if recorded.get("content_digits") == CONTENT_DIGITS and "content" in recorded:
        content, keys = set(recorded["content"]), task.test.pixel_keys()
        kept = then["train"] | then["val"] | then["test"]
        replaced = {k for k, i in scored.items()
                    if k in kept and _content_key(k, keys[i]) not in content}
    n = max(sample, 1)
    return {"folder": root,
            "recorded": recorded.get("count") if n > 1 else len(everything),
            "present": present * n, "added": len(here - everything) * n,
            "removed": len(everything - here) * n, "replaced": len(replaced) * n,
            **{s: len((set(scored) & then[s]) - replaced) * n for s in ("train", "val", "test")},
            "sampled": n, "compared": "pixels" if "content" in recorded else "names"}


def changed_files_note(result: dict) -> str | None:
    """The warning for an `evaluate_model` result on the folder its export was fit on, changed
    since ("data_changed", `changed_files`): how many files differ, that every image is
    scored, how many of them trained or chose the export, and the ways on; None without it."""
    seen = json_object(result.get("data_changed"))  # (edited: a count gone is "?" or none)
    if not seen:
        return None
    added, removed, replaced = (recorded_count(seen, k) or 0
                                for k in ("added", "removed", "replaced"))
    if added or removed or replaced:
        total = added + removed + replaced
        # Only the kinds that happened: "0 of them not here" said nothing.
        kinds = ", ".join(kind for kind in (
            f"{added} here that {'was' if added == 1 else 'were'} not among them" if added
            else "", f"{removed} of them not here" if removed else "",
            f"{replaced} of them replaced (their names, other pixels)" if replaced else "")
            if kind)
        how = (f"{counted(total, 'file')} {'differs' if total == 1 else 'differ'} from those "
               f"it was measured on: {kinds}")
        fix = ", ".join(part for part in (
            f"move the {counted(added, 'new file')} out" if added else "",
            f"put the {removed} missing back" if removed else "",
            f"put back the {counted(replaced, 'replaced file')} as "
            f"{'it was' if replaced == 1 else 'they were'}" if replaced else "")
            if part)
    elif seen.get("compared") == "pixels" and (recorded_count(seen, "sampled") or 1) == 1:
        # Nothing differs: the whole folder was loaded as one test set (load_test_set from
        # Python), not split as fit split it; it said "their pixels differ … restore the files".
        how = ("none of them differs (the same names and pixels): the folder was loaded as one "
               "test set, not split as the fit split it")
        fix = ("load it with load_evaluation_task(model_dir, data) (what `hubensemble "
               "evaluate --data` does), which draws that split")
    else:
        how = ("their pixels differ from those it was measured on (files edited since, or "
               "decoded otherwise by this version)")
        fix = "restore the files"
    n = recorded_count(seen, "sampled") or 1
    if n > 1:  # counted on the files of a sample by name (files_record's cap)
        how += (f" (counted on the 1 in {n} of its files the export lists, times {n}: "
                "estimates)")
    scored = (f"all {scored_count(result)} images are scored as test examples"
              if scored_count(result) != 1
              else "its 1 image is scored as a test example")
    count = {k: "?" if recorded_count(seen, k) is None else seen[k]
             for k in ("present", "train", "val", "test")}
    recorded = recorded_count(seen, "recorded")
    return (f"{seen.get('folder') or 'The folder it was fit on'} holds {count['present']} of "
            f"the {'? files' if recorded is None else counted(recorded, 'file')} "
            f"this export was fit on (by name; its metadata's task.files), but {how}. The "
            "held-out split the export records is drawn from all of its data's files, so it "
            f"cannot be drawn here: {scored}, "
            f"{count['train']} of them training and {count['val']} validation images of the "
            f"export (by name), {count['test']} of its test split; these figures are not a "
            f"held-out measure. To score its held-out test split, {fix}; to score new images, "
            "put them in a folder of their own")
