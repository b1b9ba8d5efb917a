"""What every scheme loader shares: `LoadOptions`, example specs, path checks, hidden names."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hubensemble import options as option_table
from hubensemble.errors import DataError
from hubensemble.text import relative_hint
from hubensemble.winpaths import windows_form

#: Never a class folder or an image: OS and archive litter (besides every name that starts
#: with "."; .DS_Store, ._AppleDouble files, .git, ...). Such entries are not read, and are
#: counted (Task.ignored); a hidden folder counts once, its contents are not looked at.
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "ehthumbs.db", "desktop.ini",
                           "Desktop.ini", "$RECYCLE.BIN", "System Volume Information"})
_IGNORED_NAMES = IGNORED_NAMES  # the name before it was public

_EXAMPLES = {
    "tfds": "tfds:cifar10 or tfds:caltech101:3.0.1 (prepared with `tfds build`, --data-dir)",
    "folder": "folder:path/to/images (one sub-folder per class, or train/ val/ test/)",
    "npz": "npz:path/to/data.npz (x_train, y_train, optional x_val/y_val/x_test/y_test)",
    "sklearn": "sklearn:digits (scikit-learn's bundled 8x8 digits, no download)",
}


@dataclass(frozen=True)
class LoadOptions:
    """Everything a scheme loader may use besides the text after `scheme:`.

    Defaults are the data options of hubensemble.options (`seed` is `--data-seed`).
    """

    data_dir: str | None = option_table.default("data_dir")
    seed: int = option_table.default("data_seed")
    splits: dict[str, str | None] | None = option_table.default("splits")
    label_key: str = option_table.default("label_key")
    image_key: str = option_table.default("image_key")
    val_fraction: float = option_table.default("val_fraction")
    test_fraction: float = option_table.default("test_fraction")
    dedupe: bool = option_table.default("dedupe")
    #: A label_fn maps the loaded labels afterwards (`load_task`): unnamed labels are raw
    #: values, whose unused indices are its business (`validate.index_names`'s gaps).
    relabelled: bool = False


def _visible(name: str) -> bool:
    """False for hidden files and OS/archive litter (never a class or an image): a name that
    starts with "." or is one of IGNORED_NAMES."""
    return not name.startswith(".") and name not in IGNORED_NAMES


def _require_path(path: str, scheme: str, kind: str) -> str:
    """`path` with ~ expanded; DataError with an example spec when it is empty or missing."""
    if not path:
        raise DataError(f"{scheme}: needs a path, e.g. {_EXAMPLES[scheme]}")
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        hint = windows_path_hint(path)
        where = "" if hint else relative_hint(path)
        raise DataError(f"{scheme}:{path}: no such {kind}; check the path{where}{hint}")
    return path


def windows_path_hint(path: str) -> str:
    """"" for a POSIX path; for one written as Windows writes paths (`C:\\Users\\me\\imgs`,
    `C:/data`, `..\\imgs`, a UNC share `\\\\server\\share\\imgs`) on a system whose separator
    is "/", the words that say it is read as one name (a share: no name here at all) and
    what to write instead (`winpaths.windows_form`), the missing-path refusal's tail. A
    backslash is a character of a file name on Linux and macOS, never a separator, so
    `..\\imgs` named a file "..\\imgs" and the refusal said only "no such folder"."""
    form = windows_form(path)
    return "" if form is None else "; it " + form.advice(escape=False)
