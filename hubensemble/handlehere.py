"""A relative handle that names nothing in the current folder ("abc", "bit/m-r50x1"): neither
a URL, a handle of a known scheme nor a path here. HubLayer refuses it in the words of the
accepted handle forms before a resolver reads it (it looked for "/cwd/abc" and ended in "does
not exist; check the path", naming none of the forms a user meant)."""

from __future__ import annotations

import os
import re

from hubensemble.handles import HANDLE_FORMS, HandleFormError, handle_kind
from hubensemble.pathnotes import sibling_note
from hubensemble.saidwords import WRITE, Say
from hubensemble.winpaths import windows_form

#: PUBLISHER/MODEL/VERSION as tfhub.dev writes a module after its host ("google/bit/m-r50x1/1").
_TFHUB_PATH = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/\d+$")


def tfhub_url(handle: str) -> str | None:
    """The tfhub.dev URL ("https://tfhub.dev/google/bit/m-r50x1/1", a str) a relative handle
    written as PUBLISHER/MODEL/VERSION (`_TFHUB_PATH`: names, then a number) may mean, else
    None. The one rule for a Python call (`unnamed_handle`), `catalogue add` and `catalogue
    validate` (`stored_tfhub_url`); the caller checks that nothing of that name is there."""
    if not _TFHUB_PATH.match(handle) or {".", ".."} & set(handle.split("/")):
        return None  # "./google/m/1" is written as a path: it was told tfhub.dev/./google/m/1
    return f"https://tfhub.dev/{handle}"


# {absolute path: the handle a catalogue read in this process wrote for it, a relative path}:
# a ModuleSpec keeps the absolute path alone (`handles.stored_handle`, run.json too), and the
# resolver reads only that, so a refusal of the path names it as written through this memo
# (`written_as`), before TensorFlow and after alike (rank says a module once by its words).
_WRITTEN: dict[str, str] = {}


def remember_written(stored: str, written: str | None) -> None:
    """Records that a catalogue wrote the relative path `written` for the absolute handle
    `stored` (the catalogue parser's call; the last catalogue read wins); None: it wrote
    `stored` itself (or another form), forgotten."""
    if written is None:
        _WRITTEN.pop(stored, None)
    else:
        _WRITTEN[stored] = written


def written_as(stored: str) -> str | None:
    """The relative path a catalogue read in this process wrote for the absolute handle
    `stored` ("./google/bit/m-r50x1/1"), else None (written absolute, a handle given in
    Python, a run's record read back in another process)."""
    return _WRITTEN.get(stored)


def relative_path(handle) -> bool:
    """Whether `handle` (a str) is a relative local path as written: no scheme (nor
    ``file:``), not ``~…``, not absolute, not a Windows form (``C:\\m``)."""
    return (isinstance(handle, str) and handle_kind(handle) == "local"
            and not handle.startswith(("file:", "~")) and not os.path.isabs(handle)
            and windows_form(handle) is None)


def stored_tfhub_url(stored: str, source: str, written: str | None = None) -> str | None:
    """`tfhub_url` of a catalogue entry's local handle `stored` (absolute, as the catalogue
    stores a relative one: joined to its folder) written relative to the catalogue named in
    `source` ("FILE:LINE"), else None (a path outside the file's folder: written absolute or
    with ../, never a slug). `written`: the handle as the file wrote it (`written_as`),
    when known, is read instead: "./google/bit/m-r50x1/1" is written as a path (its absolute
    form alone was told the tfhub.dev URL). `catalogue validate` said of
    `google/bit/m-r50x1/1` only "'/cats/google/bit/m-r50x1/1' does not exist"."""
    if written is not None:
        return tfhub_url(written)
    folder = os.path.dirname(source.rsplit(":", 1)[0]) if ":" in source else ""
    if not folder or not os.path.isabs(stored):
        return None
    written = os.path.relpath(stored, folder).replace(os.sep, "/")
    return None if written.startswith("..") else tfhub_url(written)


def unnamed_handle(handle: str, cwd: str) -> HandleFormError | None:
    """The refusal of `handle` (a str that `handles.check_handle_form` accepted) when it is a
    relative local path (no scheme, not ``~``, not Windows' ``C:\\…``) with nothing of that
    name in `cwd` (the folder it is read from): "'abc' is neither a URL nor a handle of a
    known scheme, and the current folder (CWD) holds no file or folder 'abc'", with the
    accepted forms (`handles.HANDLE_FORMS`), a mistyped sibling (`pathnotes.sibling_note`)
    and, for PUBLISHER/MODEL/VERSION, the tfhub.dev URL it may mean. None for any other
    handle, and for a relative path that exists."""
    if not relative_path(handle):
        return None
    path = os.path.join(cwd, handle)
    if os.path.lexists(path):
        return None
    hint = (WRITE, f"one of {HANDLE_FORMS} instead")
    url = tfhub_url(handle)
    if url:  # a Python caller is told handle='https://tfhub.dev/…'
        hint = ("for TF Hub's module ", WRITE, Say("handle", url, yaml=url), "; or ", *hint)
    near = sibling_note(path)  # "; did you mean /cwd/abd?"
    return HandleFormError(f"{handle!r} is neither a URL nor a handle of a known scheme, and "
                           f"the current folder ({cwd}) holds no file or folder {handle!r}"
                           f"{near}", hint)
