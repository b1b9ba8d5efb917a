"""The warnings a task's class names call for: numbered class folders out of numeric order,
names that differ only by case, names that are the same number ('01' and '1'). Split from
folder.py (the loader); no TensorFlow."""

from __future__ import annotations

import logging

from hubensemble.data.names import name_difference, same_names
from hubensemble.text import names_listed

log = logging.getLogger(__name__)


def numbered_classes_note(names: list[str]) -> str | None:
    """The warning for class folders named by numbers whose text order (the class ids) is
    not their numeric one, e.g. 1/, 10/, 2/: class id 1 is folder 10/. serving_default returns
    class ids alone, and a reader of them takes id 2 for folder 2/. None when a name is no
    plain number (digits only), or text and numeric order agree (0/ .. 9/, 01/ .. 12/). No
    rename to leading zeros is advised when two names are one number (01/ and 1/: it would
    merge them; `same_number_note` warns of them).
    `names`: the class folders' names in class-id order (sorted, as `_class_folders` gives)."""
    if len(names) < 2 or not all(n.isascii() and n.isdigit() for n in names):
        return None
    numeric = sorted(names, key=lambda n: (int(n), n))
    if numeric == list(names):
        return None
    i = next(i for i, (a, b) in enumerate(zip(names, numeric)) if a != b)
    width = max(len(n) for n in names)
    shown = names_listed(names, 8, "/")
    # Leading zeros would make two folders of one number one folder (1/ into 01/): then
    # no rename is advised, and `same_number_note` says which are alike.
    rename = (f", or rename the folders with leading zeros ({numeric[i].zfill(width)}/ for "
              f"{numeric[i]}/) to make the orders agree" if not same_number_pairs(names) else
              "; leading zeros would merge folders of the same number (see the warning on "
              "them), so rename none that way")
    return (f"the class folders are numbers, ordered as text, not as numbers: {shown} are "
            f"class ids 0 to {len(names) - 1} in that order, so class id {i} is folder "
            f"{names[i]}/, not {numeric[i]}/; serving_default returns class ids alone: map "
            f"them through the export's class names (serve_bytes and predict give the "
            f"names){rename}")


def same_number_pairs(names) -> list[tuple[str, str]]:
    """Pairs (first, other) of `names` (text, in order) that are different plain numbers
    (ASCII digits only) of one value: ('1', '01'), ('7', '007'); each later name paired with
    the first of its value. [] when there are none."""
    first, pairs = {}, []
    for name in (str(n) for n in names):
        if not (name.isascii() and name.isdigit()):
            continue
        value = int(name)
        if value in first and first[value] != name:
            pairs.append((first[value], name))
        first.setdefault(value, name)
    return pairs


def same_number_note(names) -> str | None:
    """The warning for class names that are the same number ('01' and '1', '007' and '7';
    any source), as `case_only_note` warns of 'Cat' and 'cat', or None. They are two classes
    here, but whatever reads the labels as numbers (a spreadsheet opening a labels CSV,
    int() in a script, folders renamed with leading zeros) makes them one. `names`: the
    task's class names (text)."""
    pairs = same_number_pairs(names)
    if not pairs:
        return None
    (a, b), more = pairs[0], len(pairs) - 1
    others = f" (and {more} other pair{'s' if more > 1 else ''} of classes)" if more else ""
    return (f"class names {a!r} and {b!r} are the same number{others}: they are two classes "
            f"here, but anything that reads the class names as numbers (a spreadsheet, int() "
            f"in a script, folders renamed with leading zeros) makes {a} and {b} one; if "
            f"they are one class merge their images, if two rename one so that the names "
            f"are different numbers or not numbers")


def case_only_note(names) -> str | None:
    """The warning for class names that differ only by case ('Cat' and 'cat'; any source:
    folders on Linux, an npz's class_names, a Task made in Python), or None. They are two
    classes here, but on macOS and Windows, whose file systems ignore case, Cat/ and cat/
    are one folder: the data copied there as class folders, or a test set for `evaluate`
    laid out as class folders, merges them. `names`: the task's class names (text)."""
    pairs = [(a, b) for a, b in same_names([str(n) for n in names], case=True)
             if name_difference(a, b) == "differ only by case"]
    if not pairs:
        return None
    (a, b), more = pairs[0], len(pairs) - 1
    others = f" (and {more} other pair{'s' if more > 1 else ''} of classes)" if more else ""
    return (f"class names {a!r} and {b!r} differ only by case{others}: they are two classes "
            f"here, but on macOS and Windows, whose file systems ignore case, {a}/ and {b}/ "
            f"are one folder, so this data copied there as class folders, or a test set for "
            f"evaluate laid out as class folders, would merge them; if they are one class "
            f"merge their images, if two rename one so that the names differ by more than "
            f"case")


def class_notes(task) -> list[str]:
    """The warnings a task's class names call for, said once per run (`load_task`, or fit
    and the commands at a run's first load): class folders named by numbers out of numeric
    order (`numbered_classes_note`, a folder: task), names that differ only by case
    (`case_only_note`, any source) and names that are the same number (`same_number_note`,
    any source). Not for an `evaluate` test set, whose classes meet the
    model's by name. [] when there is nothing to say."""
    names = [str(n) for n in task.class_names]
    notes = [numbered_classes_note(names) if str(task.source).startswith("folder:") else None,
             case_only_note(names), same_number_note(names)]
    return [n for n in notes if n]


def warn_class_notes(task) -> None:
    """Logs each of `class_notes(task)` as a WARNING."""
    for note in class_notes(task):
        log.warning("%s", note)
