"""Matching a test set's classes to an export's outputs by name (`class_index`), as evaluate
scores them: Unicode NFC names, a folder test set's spelling of a class name no folder name
may hold (`folder_name`), and errors that show two names that look the same on screen."""

from __future__ import annotations

import unicodedata

import numpy as np

from hubensemble.errors import DataError


def _spelled(name, model_names) -> str:
    """`name`'s repr, with its code points when it differs from one or more of `model_names`
    (each named, "'Cat' or 'cat'") only by case, spaces or invisible characters (two names
    that look the same on screen; invisible by the class names' own rule,
    `text.invisible_at`: a variation selector too, a joiner between two emoji not); each
    repr with those characters escaped (`text.escaped`: repr kept 'cat\ufe0f' raw)."""
    from hubensemble.text import escaped, visible_text

    def bare(n):
        return "".join(ch for ch in visible_text(unicodedata.normalize("NFKC", n)).casefold()
                       if not ch.isspace())

    # Every look-alike: a model of both 'Cat' and 'cat' has two ('CAT' named only one).
    twins = [escaped(repr(m)) for m in model_names if bare(m) == bare(name)]
    if not twins:
        return escaped(repr(name))
    points = " ".join(f"U+{ord(ch):04X}" for ch in name)
    return f"{escaped(repr(name))} ({points}; not the model's {' or '.join(twins)})"


#: Characters a class name may hold (from an npz archive, tfds, Python) but no folder name may:
#: a folder test set writes each as "-" or "_" (`folder_name`, `class_index`).
NOT_IN_FOLDER_NAMES = "/\\\0"


def folder_name(name: str) -> str:
    """The folder name that holds model class `name` in a folder test set: `name` with each
    of NOT_IN_FOLDER_NAMES written as "-" ("beware of ice/snow" -> "beware of ice-snow";
    "_" matches too). The name itself for every other class."""
    return "".join("-" if ch in NOT_IN_FOLDER_NAMES else ch for ch in name)


def _folder_match(folder: str, name: str) -> bool:
    """Whether class folder `folder` spells model class `name`: the same string, or one in
    which each of NOT_IN_FOLDER_NAMES of `name` is "-" or "_"."""
    return len(folder) == len(name) and all(
        f == n or (n in NOT_IN_FOLDER_NAMES and f in "-_") for f, n in zip(folder, name))


def _folder_index(nfc, model_names, task) -> dict:
    """{task class: model index} of a folder test set's classes that spell a model class
    with "/", "\\" or NUL (`_folder_match`). DataError when one folder spells two of the
    model's classes ("a/b" and "a-b", or "a/b" and "a\\b"): which one it holds is unknown."""
    odd = [i for i, m in enumerate(model_names) if any(c in NOT_IN_FOLDER_NAMES for c in m)]
    found = {}
    for c in task.class_names:
        hits = [i for i in odd if _folder_match(nfc[c], model_names[i])]
        plain = model_names.index(nfc[c]) if nfc[c] in model_names else None
        if hits and plain is not None and plain not in hits:  # "a-b" is a class too
            hits.insert(0, plain)
        if len(hits) > 1:
            both = " and ".join(repr(model_names[i]) for i in hits)
            raise DataError(
                f"the class folder {c!r} of {task.name!r} spells the model's classes {both} "
                "(a class folder writes '/', '\\' or NUL of a class name as '-' or '_'), so "
                "which one it holds is unknown; evaluate this class from an npz: archive whose "
                "class_names array spells the model's names")
        if hits:
            found[c] = hits[0]
    return found


#: The most names `_names_to_store` writes out in full.
_NAMES_SHOWN = 20


def _names_to_store(model_names) -> str:
    """The class_names an npz archive should store to be scored against `model_names` (the
    export's, in its order): written out for up to _NAMES_SHOWN, else how to take them from
    the export's metadata."""
    if len(model_names) <= _NAMES_SHOWN:
        return f"class_names=np.array({list(model_names)!r})"
    return ("class_names=np.array(json.load(open('EXPORT/assets/hubensemble.json'))"
            "['class_names']) (its " + f"{len(model_names)} names, " + ", ".join(
                map(repr, model_names[:3])) + ", …)")


def class_index(model_names, task) -> np.ndarray:
    """int64 [task.num_classes]: the model's output index of each of `task`'s classes,
    matched by NAME (`model_names`: the export's class names from its metadata), so a test
    set may list its classes in any order, or hold only some of them. Names are compared in
    Unicode NFC form: a folder named "élan" by macOS (decomposed, NFD) is the model's "élan".
    A folder test set (`folder:`) spells a model class whose name holds a character no folder
    name may hold ("/", "\\", NUL: an npz archive's "beware of ice/snow") with each written
    as "-" or "_" (`folder_name`): "beware of ice-snow".

    An npz archive without class_names (its classes named by label index, "0", "1", …)
    is told the class_names to store: the model's names in its order (`_names_to_store`).

    Without names in the metadata the classes are matched by position, which needs the same
    count. Raises DataError naming the task's classes the model does not know (with their
    code points when one looks like a model class but is another string, and the folder
    name to use for a model class that needs one), a class folder that spells two model
    classes, or the two counts.
    """
    if not model_names:
        return np.arange(task.num_classes, dtype=np.int64)
    nfc = {c: unicodedata.normalize("NFC", str(c)) for c in task.class_names}
    model_names = [unicodedata.normalize("NFC", str(c)) for c in model_names]
    # The fix in the data's own terms: where its class names come from.
    scheme = str(task.source or "").split(":", 1)[0]
    folders = _folder_index(nfc, model_names, task) if scheme == "folder" else {}
    unknown = [c for c in task.class_names if nfc[c] not in model_names and c not in folders]
    if unknown:
        from hubensemble.text import counted, names_listed

        shown = names_listed(model_names, 12)  # quoted when a name holds ", "
        renamed = [m for m in model_names if folder_name(m) != m]
        one = len(unknown) == 1
        rename = f"rename the class {'folder' if one else 'folders'} to the model's names"
        where = {"folder": rename + (
                     " (a name with '/', '\\' or NUL is written with '-' or '_' there: "
                     + ", ".join(f"{m!r} -> folder {folder_name(m)!r}" for m in renamed[:3])
                     + (", …" if len(renamed) > 3 else "") + ")" if renamed else ""),
                 "npz": "store the model's names in the npz file's class_names array"}.get(
            scheme, "give the data the model's class names")
        names = ", ".join(_spelled(nfc[c], model_names) for c in unknown)
        head = (f"the data {task.name!r} has {'class' if one else 'classes'} [{names}] that "
                f"the model does not know; the model predicts "
                f"{counted(len(model_names), 'class', 'classes')} ({shown}). ")
        if scheme == "npz" and getattr(task, "names_made", False):  # (`Task.names_made`)
            raise DataError(head + "Its classes are named by label index, as an archive "
                            "without class_names is; store the model's names in it, in the "
                            "model's order, so that label i is its class i: " + _names_to_store(
                                model_names))
        if scheme == "npz" and all(str(c).isdigit() for c in task.class_names):
            raise DataError(head + "Its class_names array names them so; store the model's "
                            "names there instead, in the model's order, so that label i is "
                            "its class i: " + _names_to_store(model_names))
        raise DataError(head + f"Classes are matched by name: {where}, or leave "
                        f"{'it' if one else 'them'} out")
    return np.array([folders[c] if c in folders else model_names.index(nfc[c])
                     for c in task.class_names], np.int64)
