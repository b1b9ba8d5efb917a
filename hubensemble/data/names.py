"""The names data come with and their rules: the split names and the words data made elsewhere
spells them with (`SPLIT_WORDS`), and what a class name must be (`class_name_fault`,
`check_class_names`), one rule for every source of class names; and the words for labels that
are no class index (`non_integer_labels`), the npz loader's and a `Split`'s alike."""

from __future__ import annotations

import unicodedata

import numpy as np

from hubensemble import formats
from hubensemble.errors import DataError
from hubensemble.text import (  # noqa: F401 - invisible_at, visible_text re-exported
    closest_name, counted, escaped, invisible_at, visible_text)

SPLIT_NAMES = formats.SPLITS
_SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val",
                  "test": "test"}
#: The words a name (an npz member's, a split folder's) may spell a split with, as data made
#: elsewhere spells them (Train, training, x_tr, dev for the val split): what the loaders
#: suggest for a name they do not read ("did you mean"), never read as the split itself.
SPLIT_WORDS = {**dict.fromkeys(("train", "training", "tr", "trn"), "train"),
               **dict.fromkeys(("val", "valid", "validation", "validate", "dev", "va"), "val"),
               **dict.fromkeys(("test", "testing", "te", "tst"), "test")}


def split_key(name: str) -> str:
    """"train", "val" or "test" for a split name or alias (validation, valid); DataError
    naming the split names otherwise, with the one it most likely mistypes (`Task.split`, and
    evaluate before it loads anything; `text.closest_name`: tset -> test)."""
    key = _SPLIT_ALIASES.get(name)
    if key is None:
        close = closest_name(name, SPLIT_NAMES) if isinstance(name, str) else None
        hint = f" (did you mean {close}?)" if close else ""  # --split tset: the names alone
        raise DataError(f"unknown split {name!r}{hint}; use one of {', '.join(SPLIT_NAMES)}")
    return key


def class_name_fault(name: str) -> str | None:
    """Why the text `name` cannot be a class name, as a predicate ("is empty", "is only
    whitespace", "holds a control character ('\\n', U+000A)", "starts or ends with
    whitespace", "holds an invisible format character (\\u200b, U+200B, ZERO WIDTH SPACE),
    which shows as nothing …", "holds a lone surrogate"), else None. A class name is the label
    the summary, the report, `predict` and the export's serve_bytes show: an empty one
    printed "3 classes (, x, y)" and a blank prediction, a newline broke the summary's line,
    and ' a' beside 'a ' were two classes no one could tell apart (a new-user check), as
    were 'cat' and 'cat\\u200b' (a format character, Unicode Cf: zero-width space and
    joiners, U+FEFF, U+2060, the bidi overrides U+202A..U+202E, U+2066..U+2069, soft hyphen;
    a joiner between two letters or symbols outside ASCII is kept: `_joins`), and 'cat' and
    'cat\\ufe0f' (a variation selector where it selects nothing, and the other
    default-ignorable characters: `invisible_at`). Leading and
    trailing whitespace is refused, not stripped, as a folder's name is never changed: a
    class is called what its data calls it, or refused. One rule for every source (npz
    class_names, tfds ClassLabel names, label_fn's, folder names, a Task made in Python:
    `Task.__post_init__`)."""
    if not name.strip():
        return "is empty" if not name else "is only whitespace"
    for i, c in enumerate(name):  # Cc: C0 / C1 controls (newline, tab, ...); Zl, Zp: line
        kind = unicodedata.category(c)  # separators; Cf: format characters; Cs: surrogates
        if kind in ("Cc", "Zl", "Zp"):
            return f"holds a control character ({c!r}, U+{ord(c):04X})"
        if invisible_at(name, i):
            return (f"holds an invisible {'format ' if kind == 'Cf' else ''}character "
                    f"({ascii(c)[1:-1]}, U+{ord(c):04X}, {unicodedata.name(c, 'unnamed')}), which "
                    f"shows as nothing (or reorders the text beside it): two names could "
                    f"look the same")
        if kind == "Cs":
            return (f"holds a lone surrogate ({escaped(c)}), which is not text UTF-8 can hold "
                    f"(a byte of a name that was not UTF-8, decoded with surrogateescape)")
    if name != name.strip():
        return "starts or ends with whitespace"
    return None


def check_class_names(names, *, what: str = "class_names") -> None:
    """DataError for the first text name of `names` that `class_name_fault` refuses, naming
    `what`, its index and the name, and the fix (bytes names are left to `validate_task`);
    also for `names` given as one string, a name that is no text (an int), and a name given
    twice: a Task made in Python took class_names='abc', [1, 2, 3] and ['a', 'a', 'c'],
    which npz: refuses (a new-user check)."""
    if isinstance(names, (str, bytes)):
        raise DataError(f"{what} is one string {names!r}; give a list of names, one per class "
                        f"(e.g. ['cat', 'dog'])")
    seen = {}
    for i, name in enumerate(names):
        if not isinstance(name, (str, bytes, np.bytes_)):
            raise DataError(f"{what}[{i}] is {type(name).__name__} {name!r}, not text; class "
                            f"names are strings (e.g. [str(n) for n in names])")
        if name in seen:
            raise DataError(f"{what}: {name!r} names classes {seen[name]} and {i}; each class "
                            f"needs a name of its own")
        seen[name] = i
    listed = [str(n) if isinstance(n, str) else None for n in names]
    for a, b in same_names([n for n in listed if n is not None]):
        raise DataError(f"{what}[{listed.index(a)}] {ascii(a)} and {what}[{listed.index(b)}] "
                        f"{ascii(b)} {name_difference(a, b)}, two classes "
                        f"that look the same; give them one spelling (NFC: "
                        f"unicodedata.normalize('NFC', name)) if they are one class")
    for i, name in enumerate(names):
        why = class_name_fault(name) if isinstance(name, str) else None
        if why:
            fix = ("store it stripped (name.strip())" if why.startswith("starts") else
                   "replace it, e.g. by a space" if why.startswith("holds a control") else
                   "remove it" if why.startswith("holds") else "give the class a name")
            raise DataError(f"{what}[{i}] {escaped(repr(name))} {why}; a class name is the "
                            f"label the summary, the report and the model's predictions "
                            f"show: {fix}")


def name_key(name: str, *, case: bool = False) -> str:
    """`name` in Unicode's composed form (NFC), case-folded when `case`: two class names
    with the same key look the same (NFC) or differ only by case."""
    key = unicodedata.normalize("NFC", name)
    return key.casefold() if case else key


def same_names(names, *, case: bool = False) -> list[tuple[str, str]]:
    """Pairs (first, other) of `names` (text, in order) that are different strings with the
    same `name_key`: the same text in two Unicode forms ('caf\\xe9' composed, NFC, and
    'cafe\\u0301' decomposed, NFD, as macOS writes file names), or with `case` the same
    but for case ('Cat', 'cat'). Each later name is paired with the first of its key."""
    first, pairs = {}, []
    for name in names:
        key = name_key(name, case=case)
        if key in first and first[key] != name:
            pairs.append((first[key], name))
        first.setdefault(key, name)
    return pairs


def name_difference(a: str, b: str) -> str:
    """How the names `a` and `b` of one `name_key` differ, as a predicate: "are the same
    text in two Unicode forms (composed, NFC, and decomposed, NFD, as macOS writes
    names)" or "differ only by case"."""
    if unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b):
        return ("are the same text in two Unicode forms (composed, NFC, and decomposed, NFD, "
                "as macOS writes names)")
    return "differ only by case"


def non_integer_labels(y: np.ndarray, drop: str) -> str | None:
    """What is wrong with float labels `y` [N] that are not all integral: "2 non-integer
    labels (nan at index 5); labels must be integer class indices", and for NaN (an
    unlabelled example, as pandas writes a missing label) "; an unlabelled example (NaN) has
    no class to learn: drop those examples " + `drop` (the caller's way, e.g. "from both
    arrays (keep = ~np.isnan(y); …)"); None when every label is a finite integral value. The
    words of the npz loader and of a `Split` made in Python alike."""
    bad = ~np.isfinite(y) | (y != np.round(y))
    if not bad.any():
        return None
    first = int(np.argmax(bad))
    nans = int(np.isnan(y[bad]).sum())
    missing = (f"; an unlabelled example (NaN) has no class to learn: drop "
               f"{'that example' if nans == 1 else 'those examples'} {drop}" if nans else "")
    return (f"{counted(int(bad.sum()), 'non-integer label')} ({float(y[first])!r} at index "
            f"{first}); "
            f"labels must be integer class indices{missing}")
