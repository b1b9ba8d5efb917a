"""Data specs: the scheme registry `SCHEMES`, `parse_spec`, and `load_task`, the one entry point."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from typing import Callable

import numpy as np

from hubensemble import options as option_table
from hubensemble.data import digits, folder, npz, tfds
from hubensemble.data.digits import _load_sklearn, check_sklearn_name
from hubensemble.data.duplicates import drop_duplicates
from hubensemble.data.folder import (_load_folder, carved_words, locate_folder, split_layout,
                                     warn_class_notes)
from hubensemble.data.loading import _EXAMPLES, LoadOptions, windows_path_hint
from hubensemble.data.npz import _load_npz, locate_npz
from hubensemble.lockwords import option_word
from hubensemble.data.splits import (MIN_TRAIN_PER_CLASS, _carve, _check_fractions,
                                     fraction_word, restore_order)
from hubensemble.data.task import Task
from hubensemble.data.taskwords import SKIPS_SAID
from hubensemble.data.tfds import _load_tfds, _parse_tfds_name
from hubensemble.data.validate import _apply_label_fn, validate_task
from hubensemble.errors import DataError, checks_keywords, held_stops
from hubensemble.terminal import shows_progress
from hubensemble.text import absolute, closest_name, described, shell

log = logging.getLogger(__name__)

SCHEMES: dict[str, Callable[[str, LoadOptions], Task]] = {
    "tfds": _load_tfds,
    "folder": _load_folder,
    "npz": _load_npz,
    "sklearn": _load_sklearn,
}


#: What a table of labels is called (a CSV beside the images): the refusal says the way on.
_TABLES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".xlsx")
_TABLE_SCHEMES = ("csv", "tsv", "txt", "json", "jsonl", "list", "parquet", "labels")


def _unknown_spec(spec: str, why: str) -> DataError:
    """The error for a spec without a known scheme: every scheme with an example, and a
    guess when the text is an existing folder or .npz file, or the way on for a table of
    labels (a .csv, `csv:…`)."""
    hint = ""
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        hint = f" (did you mean folder:{spec}?)"
    elif os.path.isfile(path) and path.endswith(".npz"):
        hint = f" (did you mean npz:{spec}?)"
    elif spec.lower().endswith(_TABLES) or spec.split(":", 1)[0].lower() in _TABLE_SCHEMES:
        hint = (" (a table of file names and labels is not read: link the images into one "
                "folder per class, CLASS/FILE, as docs/data.md#labels-in-a-table does, and "
                "pass folder:THAT_FOLDER)")
    return DataError.of_lines([f"{why}{hint}. A data spec is SCHEME:VALUE, one of:"]
                              + [f"  {s}: {_EXAMPLES.get(s, '')}" for s in SCHEMES])


def parse_spec(spec: str) -> tuple[str, str]:
    """'scheme:rest' → (scheme lower-cased, rest), e.g. 'npz:a.npz' → ('npz', 'a.npz').

    Raises DataError listing every scheme with an example when the spec has no scheme or an
    unknown one (and suggests folder:/npz: when the text is an existing folder or .npz file,
    and the spec with the scheme it most likely mistypes, by the rule of every "did you mean",
    `text.closest_name`: foldr:DIR -> folder:DIR).
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise _unknown_spec(str(spec), f"data spec {spec!r} has no scheme")
    scheme, rest = spec.split(":", 1)
    if scheme.lower() not in SCHEMES:
        close = closest_name(scheme, SCHEMES)  # `foldr:DIR` was told the schemes alone
        hint = f" (did you mean {close}:{rest}?)" if close else ""
        if scheme.lower() == "vtab":  # a VTAB run's record and report name its data so
            hint = (f" (vtab:{rest} is how tools/vtab.py names a VTAB-1k task in a run's "
                    "record and report: no data spec loads it. A task labelled by one feature "
                    "of its tfds data set as stored is the tfds: spec OUT/vtab.json records as "
                    "its \"tfds\" (e.g. tfds:patch_camelyon:2.0.0, with --data-dir; runs "
                    "made now record it so); one whose labels the runner makes from other "
                    "features (clevr, dsprites, kitti) is passed from Python, "
                    f"`vtab.load_vtab_task(vtab.TASKS['{rest}'], DATA_DIR)[0]` with tools/ "
                    "on sys.path, e.g. to hubensemble.evaluate_model: docs/vtab.md, 3. Run)")
        raise _unknown_spec(spec, f"unknown data scheme {scheme!r} in {spec!r}{hint}")
    return scheme.lower(), rest


def _local_path(spec: str) -> tuple[str, str] | None:
    """(scheme, path) of a folder: or npz: spec with a path; None for any other text."""
    try:
        scheme, rest = parse_spec(spec)
    except DataError:
        return None
    return (scheme, rest) if scheme in ("folder", "npz") and rest else None


def absolute_spec(spec: str) -> str:
    """`spec` with the path of a folder: or npz: spec made absolute (`~` expanded), so that a
    run's record loads the same data from any working directory; other specs, text that is
    no spec, and a Windows-style path that is no file here (`loading.windows_path_hint`:
    refused as typed, with the path to write) as they are."""
    local = _local_path(spec)
    if local is None or windows_path_hint(local[1]) and not os.path.lexists(local[1]):
        return spec  # refused as typed: its advice says the path to write (not CWD/C:\...)
    return f"{local[0]}:{absolute(os.path.expanduser(local[1]))}"


def is_relative_spec(spec: str) -> bool:
    """Whether `spec` is a folder: or npz: spec whose path is relative (read against the
    working directory: a run recorded before paths were made absolute)."""
    local = _local_path(spec)
    return local is not None and not os.path.isabs(os.path.expanduser(local[1]))


_D = option_table.default

#: Per scheme, the refusals its loader makes before it reads any data (the loaders call them
#: too): a missing path, a file for a folder, a name that is not a data set's.
FIRST_CHECKS: dict[str, Callable[[str], object]] = {
    "tfds": _parse_tfds_name,
    "folder": locate_folder,
    "npz": locate_npz,
    "sklearn": check_sklearn_name,
}


#: The data options only tfds: specs read (load_task keywords): another scheme ignored them,
#: silently (a new-user check passed --label-key and --data-dir with a folder: and an npz:).
TFDS_ONLY = ("data_dir", "label_key", "image_key")


def check_tfds_only(scheme: str, given: dict, typed=()) -> None:
    """Raises DataError naming the TFDS_ONLY options in `given` (load_task keyword -> value)
    set to other than None and their default, or named in `typed` (keywords given on the
    command line, whatever their value: `--label-key label` is as much a mistake as
    `--label-key y`), for a `scheme` (e.g. "npz") other than tfds; else returns None. Only
    the command line can tell a value typed at its default from an omitted one (argparse's
    `given_options`); from Python a default counts as not given. Reads nothing."""
    named = [option_table.get(k) for k, v in given.items()
             if k in TFDS_ONLY and (k in typed or v is not None and v != _D(k))]
    if scheme != "tfds" and named:
        flags = " and ".join(o.cli_flags[0] for o in named)
        raise DataError(f"{flags} only appl{'ies' if len(named) == 1 else 'y'} to tfds: "
                        f"specs, not {scheme}:; leave {'it' if len(named) == 1 else 'them'} "
                        "out (docs/data.md lists what each scheme reads)")


#: Per scheme whose classes a listing shows (folder names), the class-count and
#: examples-per-class refusals `validate_task` would make, from that listing.
CLASS_CHECKS: dict[str, Callable[..., None]] = {"folder": folder.check_class_files}

#: Per scheme, {split: why} for the val / test splits that the data brings itself or never
#: has, so that no fraction sizes them (reads listings, no image).
FIXED_SPLITS: dict[str, Callable[[str], dict[str, str]]] = {
    "tfds": tfds.fixed_splits,
    "folder": folder.fixed_splits,
    "npz": npz.fixed_splits,
    "sklearn": digits.fixed_splits,
}


#: Which data each fraction carves its split off train for (`check_spec`'s refusal of one
#: the data would not use says so): an npz's test split is its x_test, never carved, so "when
#: the data has none" was untrue of an npz without x_test (a new-user check).
CARVED = {"val": "for folder: and npz: data that bring none",
          "test": "for folder: data that brings none (npz: never carves one)"}


def check_spec(spec: str, *, splits: dict[str, str | None] | None = None,
               val_fraction: float = _D("val_fraction"),
               test_fraction: float = _D("test_fraction"), min_classes: int = 2,
               min_per_class: int = MIN_TRAIN_PER_CLASS,
               need_val: bool = False, typed=(), **tfds_only) -> tuple[str, str]:
    """The refusals `load_task` and `load_test_set` make before reading any data, in their
    words: `parse_spec`, split overrides and the TFDS_ONLY options (`tfds_only`: data_dir,
    label_key, image_key, by keyword; None or the default counts as not given unless its
    keyword is in `typed`, the options the command line gave) on a scheme
    other than tfds, fractions that are not
    numbers in [0, 1), the scheme's FIRST_CHECKS (a missing or wrong-kind path, an unknown
    name), a fraction other than 0 and its default for a split that the data brings itself or
    never splits off train (FIXED_SPLITS: it would be ignored), and the fractions the data
    uses summing to 1 or more, and what a listing shows against `validate_task`'s rules
    (`min_classes`, `min_per_class`; CLASS_CHECKS: folder:'s class folders, their files
    counted), and with `need_val` (fit: tune and the ensemble choose on it) a val_fraction of
    0 for data that brings no val split; last, a tfds: data folder that holds nothing of the
    data set (`tfds.check_data_dir`). Reads listings, no image, and imports no TensorFlow
    (the command line runs it before TensorFlow loads).

    Returns (scheme, rest) as parse_spec does. Raises DataError.
    """
    scheme, rest = parse_spec(spec)
    if splits and scheme != "tfds":
        raise DataError(f"split overrides ({option_word('--split', 'splits')}) only apply to "
                        f"tfds: specs, not {scheme}:; for {scheme}: use "
                        + option_word("--val-fraction / --test-fraction",
                                      "val_fraction / test_fraction")
                        + " or put the splits in the data")
    check_tfds_only(scheme, tfds_only, typed)
    _check_fractions(val_fraction, 0.0)  # each a number in [0, 1)
    _check_fractions(0.0, test_fraction)
    FIRST_CHECKS[scheme](rest)
    given = _given_fractions(val_fraction, test_fraction)
    # The data is looked at only for a fraction other than 0 and its default: those two
    # are always fine (they sum to 0.4 at most), and the look is a listing or a zip read.
    fixed = FIXED_SPLITS[scheme](rest) if given else {}
    unused = [(split, name, value) for split, name, value in given if split in fixed]
    if unused:
        names = " and ".join(f"{fraction_word(split)} {v:.6g}" for split, _, v in unused)
        whys = "; ".join(dict.fromkeys(fixed[split] for split, _, _ in unused))
        if len(unused) == 1:
            split = unused[0][0]
            what = f"it out (it sizes a {split} split carved off train {CARVED[split]})"
        else:
            what = ("them out (they size val and test splits carved off train: val "
                    f"{CARVED['val']}, test {CARVED['test']})")
        raise DataError(f"{names} would not be used: {whys}; leave {what}")
    # A fraction the data does not use counts as 0: the default test_fraction of 0.2 leaves
    # an npz's val_fraction all of [0, 1).
    _check_fractions(0.0 if "val" in fixed else val_fraction,
                     0.0 if "test" in fixed else test_fraction)
    if need_val and not float(val_fraction) and "val" not in FIXED_SPLITS[scheme](rest):
        raise DataError(f"{fraction_word('val')} 0 leaves {spec} without validation "
                        "examples, and fit chooses every candidate and the ensemble on them "
                        "(paper 2.3): give a fraction above 0 (default 0.2), or put a val "
                        "split in the data")
    if scheme in CLASS_CHECKS:
        CLASS_CHECKS[scheme](rest, min_classes=min_classes, min_per_class=min_per_class)
    if scheme == "tfds":  # a data folder holding nothing of it: before TensorFlow, after flags
        # --split first; the command line's are a list of (NAME, SPEC) pairs (repeatable)
        tfds.check_data_dir(rest, tfds_only.get("data_dir"),
                            dict(splits) if isinstance(splits, (list, tuple)) else splits)
    return scheme, rest


def check_outside_data(spec: str, paths: dict[str, object], *, file: bool = False,
                       whose: str | None = None) -> None:
    """DataError when a folder a command writes (`paths`: {flag: path or None}, e.g.
    {"--out": "imgs/run1", "--export": None}), or with `file` a file (evaluate's --out), is
    the folder of a folder: spec or inside it: a run's or export's folder would be read as a
    class of the data, that load refused, and the folder broke every later load; a file
    would be read as an image of the data, and every later load would skip it. `whose` says
    where `spec` came from when it was not typed ("RUN's data": a run's record; default
    "--data SPEC"). Reads no file (paths only, links resolved); nothing is created before it
    (preflight.check_inputs, pipeline.fit, rank.run_rank, export's flags)."""
    local = _local_path(spec) if isinstance(spec, str) else None
    if local is None or local[0] != "folder":
        return
    data = os.path.realpath(os.path.expanduser(local[1]))
    for flag, path in paths.items():
        if path is None:
            continue
        where = os.path.realpath(os.path.expanduser(os.fspath(path)))
        if os.path.commonpath([data, where]) != data:
            continue
        what = "is the data folder" if where == data else "is inside the data folder"
        name = os.path.basename(where)
        if where == data:  # a name beside the data, not the data's own
            name += "-evaluation.json" if file else "-run"
        beside = os.path.join(os.path.dirname(data), name)
        harm = ("a file written there would be read with the data, and every later load would "
                "skip it as not an image" if file else
                "what is written there would be read as a class of the data")
        given = option_word(f"--data {spec}", f"data={spec!r}")  # the caller's words
        raise DataError(f"{flag} {os.fspath(path)} {what} {data} ({whose or given}"
                        f"): {harm}; pass {'an' if flag[:1] in 'aeiou' else 'a'} {flag} "
                        f"{'file' if file else 'folder'} outside it, "
                        + (f"e.g. {flag} {shell(beside)}" if flag.startswith("--") else
                           f"e.g. {flag}={beside!r}"))


def _given_fractions(val_fraction, test_fraction) -> list[tuple[str, str, float]]:
    """[(split, name, value)] of the fractions other than 0 and their defaults (numbers)."""
    return [(split, name, float(value)) for split, name, value in (
        ("val", "val_fraction", val_fraction), ("test", "test_fraction", test_fraction))
        if float(value) != 0.0  # float32(0.2) is the default too
        and not math.isclose(float(value), float(_D(name)), rel_tol=1e-6)]


def recorded_fractions(spec: str, val_fraction: float, test_fraction: float):
    """(val_fraction, test_fraction) of a run recorded before `check_spec` refused fractions
    the data would not use, those put back to their defaults (the same data: they were
    ignored), so that the run loads again. Looks at the data only for a fraction other than
    0 and its default. Raises DataError as `check_spec` does."""
    given = _given_fractions(val_fraction, test_fraction)
    if not given:
        return val_fraction, test_fraction
    scheme, rest = parse_spec(spec)
    FIRST_CHECKS[scheme](rest)
    fixed = FIXED_SPLITS[scheme](rest)
    out = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    for split, name, _ in given:
        if split in fixed:
            out[name] = _D(name)
    return out["val_fraction"], out["test_fraction"]


def check_options(**values) -> None:
    """The data options' own rules (`hubensemble.options.check`: type, choices, range) for
    `values` given by `load_task` keyword (`seed` is the option data_seed), e.g.
    check_options(seed=-1) refuses "seed must be an integer in [0, 4294967295], got -1"
    (on the command line: "--data-seed must be …", `lockwords.option_word`).
    numpy scalars count as their Python type (np.True_ is a bool, np.int64(3) an integer).
    Reads nothing; `load_task` and `load_test_set` run it before anything else.

    Raises DataError naming the keyword (its flag on the command line) and what is allowed;
    KeyError for a keyword that is not a data option.
    """
    names = {o.kw: o.name for o in option_table.options_for(used_by="data")}
    for keyword, value in values.items():
        name = names[keyword]
        if isinstance(value, np.bool_):
            value = bool(value)
        try:  # the caller's word: seed, not data_seed
            option_table.check(name, value, label=keyword)
        except option_table.OptionError as e:
            raise DataError(str(e)) from None


#: A Task of arrays in memory, in one line: the way on from data given as arrays.
TASK_RECIPE = ("Task(name='mine', source='arrays', class_names=[...], train=Split(x_train, "
               "y_train), val=Split(x_val, y_val)) (from hubensemble.data import Split, Task)")


def data_way(data, *, name: str = "data", loaded: bool = False) -> str:
    """The way on from data of the wrong type: a path's spec (folder: or npz:), else the
    one-line recipe of a Task of arrays (or their npz file). A list of arrays gave a
    TypeError with ~460 characters of numbers and no way on (a new-user check). `loaded`: the
    argument takes a Task only (not a spec), so a spec is to be loaded first (`load_task`);
    else `name` is the argument that takes the spec."""
    spec = None
    if isinstance(data, os.PathLike):
        path = os.fspath(data)
        spec = ("folder:" if os.path.isdir(path) else "npz:") + str(path)
    elif isinstance(data, str) and loaded:
        spec = data
    if spec is not None:
        return (f"load it with hubensemble.load_task({spec!r})" if loaded else
                f"for this path pass {name}={spec!r}")
    return (f"for arrays in memory pass {'' if loaded else name + '='}{TASK_RECIPE}"
            + ("" if loaded else ", or np.savez('d.npz', x_train=..., y_train=..., x_val=..., "
               f"y_val=...) and {name}='npz:d.npz'"))


#: True while a caller that says the skipped files itself loads (`skips_said`; its home:
#: taskwords.SKIPS_SAID, which the loaders' notes read too).
_SKIPS_SAID = SKIPS_SAID


@contextlib.contextmanager
def skips_said():
    """Within the block, `load_task` leaves the files it skipped, and its class names'
    notes (`folder.class_notes`), to its caller to say."""
    token = _SKIPS_SAID.set(True)
    try:
        yield
    finally:  # whole (errors.held_stops): a Ctrl-C here left later loads' skips unsaid
        with held_stops():
            _SKIPS_SAID.reset(token)


@checks_keywords
@shows_progress
def load_task(spec: str, *, data_dir: str | None = _D("data_dir"), seed: int = _D("data_seed"),
              splits: dict[str, str | None] | None = _D("splits"),
              label_key: str = _D("label_key"), image_key: str = _D("image_key"),
              label_fn=None, synthetic: bool | None = _D("synthetic"),
              flip: bool | None = _D("flip"), val_fraction: float = _D("val_fraction"),
              test_fraction: float = _D("test_fraction"),
              min_per_class: int = MIN_TRAIN_PER_CLASS, dedupe: bool = _D("dedupe"),
              progress: bool = True) -> Task:
    """Load and validate a downstream task from a data spec (see docs/data.md).

    Returns a Task whose splits hold uint8 RGB images ([N, H, W, 3], or a list of [H, W, 3]
    when sizes differ) and int64 labels in 0..num_classes-1. Defaults are the data options of
    hubensemble.options (`seed` is `--data-seed`: the seed of any split carved off train).

    `splits` (tfds only) overrides the VTAB-1k split strings; None or "none" drops val/test.
    `label_fn(labels) -> labels | (labels, num_classes | class_names)` remaps the integer
    labels of all splits at once (before `dedupe`; bytes class names are decoded as UTF-8,
    `validate.text_names`). `synthetic` / `flip` override the scheme's defaults.
    `val_fraction` / `test_fraction` (each in [0, 1)) size the val/test splits carved off
    train per class when the data has none. `min_per_class` relaxes the
    two-training-examples-per-class rule (e.g. for VTAB tasks with hundreds of classes, where
    some have one example in train[:800]). `progress`: a folder load's bar on stderr
    ("reading folder:PATH", files read), as the command line shows it unless -q
    (`terminal.library_progress`; within `fit(progress=False)` it stays off).

    Exact duplicates (equal decoded pixels, any file format) are found for every scheme
    (`Task.duplicates`, `Task.groups`); a split carved off train never separates copies.
    `dedupe` keeps only the first copy (train, val, test order, then load order) and lists the
    others in `Task.dropped`; groups whose copies carried different labels stay counted and
    named in `Task.duplicates` ("conflicting_labels", "conflicting_examples").

    Raises DataError, with what to do instead, for an option outside its rules (before
    anything is read: `check_options`, the rules of the command line), an unknown spec, data
    that cannot be read or does not fit in memory, and a task the method cannot use (see
    `validate_task`); TypeError for a `spec` that is not a str, with the spec of a path or the
    recipe of a Task of arrays (`data_way`).

    Files that could not be read are left out (`Task.skipped`: [(path, reason)]) and said in
    one WARNING, the task's summary (`Task.summary`), as `fit` says them; a caller that says
    them itself loads within `skips_said()`.
    """
    if not isinstance(spec, str):
        raise TypeError(f"load_task() spec must be a data spec (a str such as 'sklearn:digits', "
                        f"'folder:PATH' or 'npz:FILE'; see docs/data.md), got "
                        f"{described(spec)}; " + (data_way(spec, name="spec") if isinstance(
                            spec, os.PathLike) else f"for arrays in memory make {TASK_RECIPE}"))
    check_options(data_dir=data_dir, seed=seed, splits=splits, label_key=label_key,
                  image_key=image_key, synthetic=synthetic, flip=flip,
                  val_fraction=val_fraction, test_fraction=test_fraction,
                  min_per_class=min_per_class, dedupe=dedupe)
    scheme, rest = check_spec(spec, splits=splits, val_fraction=val_fraction,
                              test_fraction=test_fraction, data_dir=data_dir,
                              label_key=label_key, image_key=image_key,
                              # label_fn may merge or make classes: the loaded task decides
                              **({"min_classes": 0, "min_per_class": 0} if label_fn else
                                 {"min_per_class": min_per_class}))
    options = LoadOptions(data_dir=data_dir, seed=int(seed), splits=splits,
                          label_key=label_key, image_key=image_key,
                          val_fraction=float(val_fraction), test_fraction=float(test_fraction),
                          dedupe=bool(dedupe), relabelled=label_fn is not None)
    task = _run_loader(spec, scheme, rest, options)
    if label_fn is not None:
        task = _apply_label_fn(task, label_fn)
    if dedupe:  # after label_fn: copies with different labels are counted in the final classes
        task = drop_duplicates(task, owned=True)  # the loader's own pixels
    if synthetic is not None:
        task.synthetic = bool(synthetic)
    if flip is not None:
        task.flip = bool(flip)
    # a fresh object (no cached fingerprint from before) that names its spec, and how it was
    # loaded unless a label_fn (a callable: not recordable) relabelled it
    load_args = None if label_fn is not None else dict(
        data_dir=data_dir, seed=int(seed), splits=splits, label_key=label_key,
        image_key=image_key, synthetic=synthetic, flip=flip, val_fraction=float(val_fraction),
        test_fraction=float(test_fraction), min_per_class=int(min_per_class),
        dedupe=bool(dedupe))
    task = dataclasses.replace(task, spec=absolute_spec(spec), load_args=load_args)
    return _said_notes(_said_skips(_validated(task, min_per_class=min_per_class)))


def _said_notes(task: Task) -> Task:
    """`task`, after a warning of each of its class names' notes (`folder.class_notes`:
    numbered folders out of numeric order, names that differ only by case), unless its
    caller says them (`skips_said`): fit and the commands say them at a run's first load
    only, where every stage's and each resumed fit's load repeated them."""
    if not _SKIPS_SAID.get():
        warn_class_notes(task)
    return task


def _said_skips(task: Task) -> Task:
    """`task`, after a warning of its summary when files were skipped, unless its caller says
    them (`skips_said`): as fit warns of them (its data summary, `pipeline._say_data`),
    Python's load_task said nothing of 2 unreadable files, which only Task.skipped held (a
    new-user check), and load_test_set (evaluate's data from Python) neither."""
    if task.skipped and not _SKIPS_SAID.get():
        log.warning("%s", task.summary())
    return task


def _validated(task: Task, **rules) -> Task:
    """`validate_task(task, **rules)`; on its refusal every file skipped is logged as a
    warning (`_log_skipped`), as the refusal of a class that unreadable files left
    short or without examples names only a few and no run.json records a refused load."""
    try:
        return validate_task(task, **rules)
    except DataError as e:
        _log_skipped(e)
        raise


def _log_skipped(error: DataError) -> None:
    """Logs each file of `error.skipped` (a refusal's: [(path, reason)]) as a warning, a line
    per reason naming every file of it (`sniff.skip_lines`: no run.json lists them)."""
    from hubensemble.data.sniff import skip_lines

    for line in skip_lines(getattr(error, "skipped", ())):
        log.warning("%s", line)  # each on one line


def _run_loader(spec, scheme, rest, options, **kwargs) -> Task:
    try:
        return SCHEMES[scheme](rest, options, **kwargs)
    except DataError as e:  # e.g. a val/ folder of unreadable files: its error names a few
        _log_skipped(e)
        raise
    except MemoryError:
        raise DataError(f"{spec}: the data does not fit in memory; use a smaller split "
                        f"(e.g. splits={{'test': 'test[:2000]'}})") from None


def check_split_strings(spec: str, splits: dict | None) -> None:
    """DataError when `splits` ({train|val|test: tfds split string}: evaluate's --split
    NAME=TFDS_SPLIT) is given for a `spec` other than tfds:, saying what its split looks
    like there: "--split test=test[:50%]: a tfds split string (NAME=TFDS_SPLIT) applies to
    tfds: specs only, not sklearn:; for sklearn: data --split is a split's name alone
    (train, val or test): score its test split as it is (--split test)". Reads nothing, no
    TensorFlow: the command line checks it before TensorFlow loads
    (`evaluationtask.check_evaluation_data`), `load_test_set` as it starts."""
    if not splits:
        return
    scheme = parse_spec(spec)[0]
    if scheme == "tfds":
        return
    key, value = next(iter(splits.items()))
    plain = option_word(f"--split {key}", f"split={key!r}")
    raise DataError(f"{option_word(f'--split {key}={value}', 'splits')}: a tfds split string "
                    f"(NAME=TFDS_SPLIT) applies to tfds: specs only, not {scheme}:; for "
                    f"{scheme}: data {option_word('--split', 'split')} is a split's name alone "
                    f"(train, val or test): score its {key} split as it is ({plain})")


def check_one_test_set(spec: str, split, *, trained_here: bool = False) -> None:
    """DataError, before any image is read, in `Task.split`'s words ("folder:/abs/x (class
    folders; every image is a test example) is one test set, so it has no val split; …"),
    when `spec` is a folder of class folders without train/ val/ test/ (`load_test_set`
    reads it as one test set) and `split` (evaluate's --split: a name or alias; None: not
    checked) is train or val, unless `trained_here`: the folder may be the data the export
    was fit on, which `load_test_set` splits as fit did when its fingerprint says so
    (`trained_on`; the caller judges it by the export's records of its data:
    `heldout.may_be_fit_on`). It was refused after TensorFlow's import and every image read."""
    from hubensemble.data.task import split_key

    try:
        scheme, rest = parse_spec(str(spec))
        key = None if split is None else split_key(str(split).partition("=")[0])
        path = os.path.expanduser(rest)
        if scheme != "folder" or key in (None, "test") or trained_here \
                or not os.path.isdir(path) or split_layout(path):
            return
    except (DataError, OSError):
        return  # the load's words
    raise DataError(f"{absolute_spec(spec)} (class folders; every image is a test example) "
                    f"is one test set, so it has no {key} split; evaluate it on the test "
                    f"split ({option_word('--split test', 'split=' + repr('test'))}, the "
                    "default)")


def load_test_set(spec: str, *, data_dir: str | None = _D("data_dir"),
                  trained_on: str | None = None, trained_split: dict | None = None,
                  split: str | None = None, splits: dict | None = None,
                  label_key: str = _D("label_key"), image_key: str = _D("image_key"),
                  model_classes=None) -> Task:
    """The labelled images `evaluate` scores an export on, from a data spec.

    As `load_task` (default options), except: a folder of class folders (no train/ val/
    test/ layout) is ONE test set of all its images, nothing split off (train is the same
    examples, so the Task is complete); and no class needs training examples, so a test set
    of one class, or of some of the model's classes, is fine. Class names are the data's
    (folder names); `evaluate` matches them to the export's by name. A folder with train/
    val/ test/ is read as `load_task` reads it (evaluate picks the split). An npz archive
    may hold x_test and y_test alone (they are its train split too, with no val).

    `trained_on` (the fingerprint of the export's own data, hex): when a folder of class
    folders split as `fit` split it (`trained_split`, the export's record of the run's
    {"seed", "val_fraction", "test_fraction", "dedupe"}; None, or a key it lacks: the
    default) has that fingerprint, it IS the export's data, and that task is returned
    instead: scoring all its images would score the images that trained and chose the export
    (a new-user check saw accuracy 0.61 there against 0.56 on the held-out test split, with
    nothing said; an export of a fit with --data-seed 1 did so until its split was recorded).

    `split` (train, val or test, or an alias; None: every split): the split `evaluate`
    scores. A tfds: data set then reads that split alone, as `load_task` reads it
    (VTAB_SPLITS' string), and the Task holds it alone (a test split is one test set,
    `Task.test_set_only`): the other splits were read and held for nothing, and one that
    could not be read (train[:800] of a data set of fewer training examples) refused the
    evaluation. Other schemes read their splits as without it (a folder's are carved off
    one listing, an npz's are one file).

    `splits` ({train|val|test: tfds split string}, as `load_task`'s: evaluate's --split
    NAME=TFDS_SPLIT), `label_key` and `image_key` (evaluate's --label-key, --image-key) are
    read by tfds: alone, as `load_task` reads them (smallnorb's label_elevation).

    `model_classes` (the export's class names, its metadata's; None: not checked here): a
    tfds: data set whose ClassLabel names hold one the export does not name is refused from
    the builder's record, before any example is read (`classmatch.class_index`'s DataError),
    not after the whole split.

    Files it skipped are warned of (its summary), as `load_task` warns, unless its caller
    says them (`skips_said`: the evaluate command's own summary).

    Raises DataError for a `data_dir`, `label_key` or `image_key` the options table refuses
    (`check_options`), or any of them or `splits` given for data other than tfds:
    (`check_tfds_only`), an unknown spec or `split` name, data that cannot be read (for
    tfds: of the split read, with what evaluate takes instead), or no examples.
    """
    check_options(data_dir=data_dir, label_key=label_key, image_key=image_key)
    check_split_strings(spec, splits)  # in evaluate's words, not fit's fractions
    scheme, rest = check_spec(spec, min_classes=1, min_per_class=0, splits=splits,
                              data_dir=data_dir, label_key=label_key, image_key=image_key)
    only = {}
    if scheme == "tfds":  # its refusals of a split say what evaluate takes
        from hubensemble.data.task import split_key

        only = {"evaluated": True, "only": None if split is None else split_key(split),
                "model_classes": model_classes}
    fit = LoadOptions(data_dir=data_dir, **{k: v for k, v in (trained_split or {}).items()
                                            if k in ("seed", "val_fraction", "test_fraction",
                                                     "dedupe")})
    options = LoadOptions(data_dir=data_dir, splits=splits or None, label_key=label_key,
                          image_key=image_key)
    flat = False
    if scheme == "folder":
        path = os.path.expanduser(rest)
        flat = os.path.isdir(path) and not split_layout(path)
    if flat:
        options = dataclasses.replace(options, val_fraction=0.0, test_fraction=0.0)
    # An npz of test arrays alone is a test set (`_load_npz`'s test_set).
    task = _run_loader(spec, scheme, rest, options,
                       **({"test_set": True} if scheme == "npz" else only))
    task.spec = absolute_spec(spec)
    if flat and trained_on:
        # Carved in place (the splits views of the one array, `_carve`'s owned), the order
        # put back when it is not the export's data: copies of the splits held the images
        # twice while the fingerprint was compared.
        stacked = isinstance(task.train.images, np.ndarray) and task.train.images.flags.writeable
        train, val, test = _carve(task.train, True, True, fit, owned=stacked)
        try:
            as_fit = dataclasses.replace(task, train=train, val=val, test=test, source=(
                f"{task.spec} (class folders; {carved_words(fit)}, as fit split it: the data "
                "the export was trained on)"))
            if fit.dedupe:  # as load_task: copies dropped after the split
                as_fit = drop_duplicates(as_fit)
            same = as_fit.fingerprint == trained_on
        except BaseException:
            restore_order(task.train)
            raise
        if same:
            return _said_skips(_validated(as_fit, min_per_class=0, min_classes=1))
        del as_fit, train, val, test
        restore_order(task.train)
    if flat:
        task.test = task.train
        # Named by its absolute folder, as load_task's folder loader names it (the typed
        # `folder:~/x` or `folder:../x` named no folder from elsewhere).
        task.source = f"{task.spec} (class folders; every image is a test example)"
        task.class_files = {"test": task.class_files.get("train", {})}  # its folders: test's
    task = dataclasses.replace(task)
    return _said_skips(_validated(task, min_per_class=0, min_classes=1))
