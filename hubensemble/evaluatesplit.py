"""Whether the split evaluate scores is in its data, from files alone: an npz archive's member
listing (`check_scored_split`) and the sizes run.json records for a run's own data
(`check_recorded_split`). The command line says it before TensorFlow's import (6-10 s,
~660 MB), which the load's refusal (`Task.split`, `evaluationtask.scored_part`) came after.
TensorFlow-free; no image is read."""

from __future__ import annotations

import os

from hubensemble.errors import DataError
from hubensemble.lockwords import option_word


def _split_flag(split: str) -> str:
    """"--split val" on the command line, "split='val'" from Python (`option_word`)."""
    return option_word(f"--split {split}", f"split={split!r}")


def check_scored_split(spec, split) -> None:
    """DataError when the npz: archive `spec` (evaluate's data) has no split `split` (train,
    val, test or an alias; NAME=TFDS_SPLIT is read as its NAME) to score, by its member
    listing alone (`npz._Archive` headers: no array is read):

    - x_test and y_test stored without x_train and y_train (one test set, `load_test_set`:
      every example is a test example) and `split` train or val: `Task.split`'s words after
      the load ("npz:/abs/t.npz (x_test only: every example is a test example) is one test
      set, so it has no train split; evaluate it on the test split (--split test, the
      default)");
    - x_train and y_train stored without x_test and y_test and `split` test (evaluate's
      default): npz never splits a test split off train, so it names the archive, the
      split and the way on, a split it has (its stored val split, else train) or storing
      x_test and y_test (the load said "task 't' has no test split (…)" with the whole
      source, after TensorFlow).

    Nothing for other data, another split, or an archive the loader refuses for another
    reason (a member stored without its pair, unreadable: it says why, in its words)."""
    from hubensemble.data import npz
    from hubensemble.data.specs import parse_spec
    from hubensemble.data.task import split_key
    from hubensemble.text import absolute

    try:
        scheme, rest = parse_spec(str(spec))
        if scheme != "npz" or split is None:
            return
        key = split_key(str(split).partition("=")[0])
        path = npz.locate_npz(rest)
        with npz._Archive(path) as archive:
            _, stored, _ = npz._members(archive.headers, path)
    except (DataError, OSError, ValueError, TypeError):
        return  # the loader says what is wrong
    has = {s for s in ("train", "val", "test") if {f"x_{s}", f"y_{s}"} <= set(stored)}
    if any((f"x_{s}" in stored) != (f"y_{s}" in stored) for s in ("train", "val", "test")):
        return  # "has x_test but not y_test": the loader's words
    source = f"npz:{absolute(path)}"
    if has == {"test"} and key != "test":  # a held-out test archive: one test set
        raise DataError(f"{source} (x_test only: every example is a test example) is one "
                        f"test set, so it has no {key} split; evaluate it on the test split "
                        f"({_split_flag('test')}, the default)")
    if key == "test" and "train" in has and "test" not in has:
        other = ("val", stored["x_val"]) if "val" in has else ("train", stored["x_train"])
        raise DataError(f"{source} stores no test split (x_test, y_test), and an npz's test "
                        f"split is never split off x_train, so evaluate has no test split to "
                        f"score: score one it has ({_split_flag(other[0])}: its {other[1]}), "
                        f"or store x_test and y_test in {os.path.basename(path)}")


def check_recorded_split(run, recorded: dict, split) -> None:
    """DataError when the data run.json records for run `run` (`recorded`: its "data" section,
    "task" -> "sizes": {train, val, test: examples or None}) has no split `split` (train,
    val, test or an alias), in the words `evaluationtask.scored_part` says once the run's data
    is loaded ("task 'd' has no test split (SOURCE); splits present: train, val; score one it
    has: --split val"): evaluate of an export whose run's data has no test split (an npz
    without x_test) loaded TensorFlow and the data to say it. Nothing when the record holds
    no sizes, or that split (`Run.task` says what else is wrong)."""
    from hubensemble.data.task import SPLIT_NAMES, split_key

    task = recorded.get("task") if isinstance(recorded, dict) else None
    sizes = task.get("sizes") if isinstance(task, dict) else None
    if split is None or not isinstance(sizes, dict) or not all(s in sizes for s in SPLIT_NAMES):
        return
    try:
        key = split_key(str(split).partition("=")[0])
    except DataError:
        return
    if sizes[key]:
        return
    present = [s for s in SPLIT_NAMES if sizes.get(s)]
    has = [s for s in ("val", "train", "test") if s != key and sizes.get(s)]
    if not has:
        return
    raise DataError(f"task {task.get('name')!r} has no {key} split ({task.get('source')}); "
                    f"splits present: {', '.join(present)}; score one it has: "
                    f"{_split_flag(has[0])}")
