"""Where a catalogue file comes from and how it is read (a part of `catalogue`, split out for
size; `catalogue` re-exports it): the file's text, label and folder (`read_catalogue_file`),
why it could not be opened, the package's shipped catalogues (`shipped_catalogues`,
`shipped_catalogue`) and the check of a catalogue path argument (`_catalogue_path`)."""

from __future__ import annotations

import importlib.resources
import os
import pathlib

from hubensemble.errors import CatalogueError, checks_keywords
from hubensemble.text import absolute, file_text, shell, typed


def read_catalogue_file(path) -> tuple[str, str, str]:
    """(text, label, folder) of the catalogue file `path`, the arguments of
    `parse_catalogue_text`; CatalogueError naming the file when it cannot be read, or its
    line and the fix when it is not UTF-8 (`text.file_text`: a byte-order mark, CR LF line
    ends and UTF-16 / UTF-32 with its mark are read; Latin-1 / Windows-1252 is refused).
    The label is the file's absolute path (symlinks kept, as the user named it): each entry's
    `source` "FILE:LINE" is recorded in run.json and ranking.json, and advice given later,
    from another working folder, must name this file, not a "cat.yaml" relative to that one."""
    label = absolute(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CatalogueError(f"{label}: cannot read the catalogue: {_unreadable(label, e)}"
                             + (_near_catalogue(os.fspath(path)) if isinstance(
                                 e, FileNotFoundError) else "")
                             + _shipped_instead(label, e)) from None
    try:  # a BOM, CR LF, UTF-16 with its mark: read; Latin-1: refused at its line
        text = file_text(data, label)
    except ValueError as e:
        raise CatalogueError(str(e)) from None
    return text, label, os.path.dirname(label)


#: A catalogue file of the user's, shown in the TypeError of a catalogue argument (here and
#: `stageargs.catalogue_specs`); the package's own is reached by
#: `hubensemble.shipped_catalogue` (catalogue/demo.yaml was a path of the repository, missing
#: wherever the example was pasted outside a checkout).
CATALOGUE_EXAMPLE = "my_modules.yaml"
SHIPPED_EXAMPLE = "hubensemble.shipped_catalogue('demo.yaml') for the package's"


def _unreadable(label: str, error: OSError) -> str:
    """Why catalogue file `label` could not be opened (`error`), and the fix for that cause
    alone: `catalogue validate missing.yaml` was told to check "that the file is UTF-8 text",
    which a file never opened cannot fail (text that is not UTF-8 is refused at its line,
    by `text.file_text`)."""
    if isinstance(error, FileNotFoundError):
        return "no such file; check the path"
    if isinstance(error, IsADirectoryError):
        return "it is a folder; name a catalogue file (.yaml) in it"
    if isinstance(error, PermissionError):
        return (f"you may not read it (permission denied); make it readable "
                f"(`chmod u+r {shell(label)}`) or copy it where you can read it")
    # Another OS error (an I/O error, a name too long): the OS's own words.
    return f"{error.strerror or error}; check the path and the disk"


#: What a catalogue file's name ends with (`parse_catalogue_text` reads YAML).
CATALOGUE_SUFFIXES = (".yaml", ".yml")


def _near_catalogue(path: str) -> str:
    """"; did you mean FOLDER/cat.yaml?" for the catalogue file (.yaml or .yml) beside the
    missing `path` (str, as the user gave it) that its name most likely mistypes
    (`text.closest_name`, the rule handles' `pathnotes.sibling_note` uses), in `path`'s
    form; "" when its folder holds none or cannot be listed. `catalogue validate cat.yml`
    (cat.yaml there) was only told "no such file; check the path"; every command taking
    --catalogue, and Python's `catalogue=`, read the file here."""
    from hubensemble.text import closest_name

    head, name = os.path.split(os.path.normpath(path))
    try:
        files = [e for e in os.listdir(head or ".") if e != name
                 and e.lower().endswith(CATALOGUE_SUFFIXES)
                 and os.path.isfile(os.path.join(head or ".", e))]
    except OSError:
        return ""
    close = closest_name(name, files)
    return f"; did you mean {shell(os.path.join(head, close))}?" if close else ""


def _shipped_instead(label: str, error: Exception) -> str:
    """"; the package ships …" when the missing catalogue `label` is named as one of the
    package's (catalogue/demo.yaml, which README's example named, exists in a checkout only:
    pasted elsewhere it was "No such file"); "" otherwise."""
    if not isinstance(error, FileNotFoundError):
        return ""
    name = os.path.basename(label)
    shipped = [p for p in shipped_catalogues() if p.name == name]
    if not shipped or absolute(shipped[0]) == label:
        return ""
    return (f"; the package ships {name}: --catalogue {shell(shipped[0])}, from Python "
            f"hubensemble.shipped_catalogue({name!r})")


def _catalogue_path(function: str, name: str, value):
    """TypeError naming `function`'s argument `name` unless `value` is a catalogue file's path
    (str or os.PathLike of str): load_catalogue(None) said "expected str, bytes or
    os.PathLike object, not NoneType" (a new-user check); OptionError for one written as
    Windows writes paths on Linux or macOS (`winpaths.refusal_advice`, as
    `stageargs.windows_path` says it)."""
    from hubensemble.options import OptionError
    from hubensemble.text import described
    from hubensemble.winpaths import refusal_advice

    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise TypeError(f"{function}() {name} must be a catalogue YAML path (str or "
                        f"os.PathLike), got {described(value)}; e.g. "
                        f"{name}={CATALOGUE_EXAMPLE!r}, or {SHIPPED_EXAMPLE}")
    advice = refusal_advice(os.fspath(value))  # stageargs.windows_path's words (it imports us)
    if advice:
        raise OptionError(f"{function}() {name}={os.fspath(value)!r} {advice}")


def shipped_catalogues() -> list[pathlib.Path]:
    """The YAML catalogues installed with the package (the repository's catalogue/ folder)."""
    root = importlib.resources.files("hubensemble.catalogues")
    return sorted((pathlib.Path(os.fspath(entry)) for entry in root.iterdir()
                   if entry.name.endswith((".yaml", ".yml")) and entry.is_file()),
                  key=lambda p: p.name)


@checks_keywords
def shipped_catalogue(name: str) -> pathlib.Path:
    """The installed catalogue file `name` (e.g. "demo.yaml") as an absolute pathlib.Path,
    from any working folder (`fit(catalogue=hubensemble.shipped_catalogue("demo.yaml"), …)`;
    the repository's catalogue/ folder, shipped as package data hubensemble.catalogues);
    CatalogueError naming the shipped ones for a name that is none of them ("demo" was told
    to reinstall), and when the package was installed without them (a broken install);
    TypeError when `name` is not a str (`text.typed`: None and 3 were told "no
    catalogue None ships", a pathlib.Path its repr)."""
    typed("shipped_catalogue", "name", name, str, "the file name (a str) of a catalogue "
          "that ships with hubensemble", example=repr("demo.yaml"))
    shipped = shipped_catalogues()
    found = [p for p in shipped if p.name == name]
    if not found:
        if shipped:
            names = [p.name for p in shipped]
            # "demo" for demo.yaml: the file's name, with its extension
            meant = next((n for n in names if n.rpartition(".")[0] == name), None)
            raise CatalogueError(f"no catalogue {name!r} ships with hubensemble"
                                 + (f" (did you mean {meant!r}?)" if meant else "")
                                 + f"; the shipped ones are {', '.join(map(repr, names))}")
        raise CatalogueError(f"catalogue/{name} is not installed with the package; "
                             "reinstall hubensemble")
    return found[0]
