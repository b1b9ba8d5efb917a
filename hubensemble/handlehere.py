"""A relative handle that names nothing in the current folder ("abc", "bit/m-r50x1"): neither
a URL, a handle of a known scheme nor a path here. HubLayer refuses it in the words of the
accepted handle forms before a resolver reads it (it looked for "/cwd/abc" and ended in "does
not exist; check the path", naming none of the forms a user meant)."""

from __future__ import annotations

import contextlib
import contextvars
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
# a ModuleSpec's handle is the absolute path (`handles.stored_handle`), and the resolver reads
# only that, so a refusal of the path names it as written through this memo (`written_as`),
# before TensorFlow and after alike (rank says a module once by its words). The entry keeps
# the written form too (`ModuleSpec.written`, run.json's record), which its reader puts here
# (`remember_record`): a later process named the absolute path alone.
_WRITTEN: dict[str, str] = {}


# The handles a run's record named, read in this process (`remember_recorded`: run.json's
# entries, `runspecs.module_spec`) and not by a catalogue since: such a path is where the run
# ranked its module, and one gone is told to be put back, never a sibling folder (another
# network: `catalogue_here.as_written`).
_RECORDED: set[str] = set()


def remember_recorded(stored: str) -> None:
    """Records that `stored` (a handle, as run.json keeps it) was read from a run's record,
    until a catalogue read in this process names it (`remember_written`)."""
    _RECORDED.add(stored)


def was_recorded(stored: str) -> bool:
    """Whether the handle `stored` was last read from a run's record (`remember_recorded`),
    not from a catalogue, in this process."""
    return stored in _RECORDED


def remember_written(stored: str, written: str | None) -> None:
    """Records that a catalogue wrote the relative path `written` for the absolute handle
    `stored` (the catalogue parser's call; the last catalogue read wins); None: it wrote
    `stored` itself (or another form), forgotten. Either way `stored` is a catalogue's
    handle now, no run's record (`was_recorded`)."""
    _RECORDED.discard(stored)
    if written is None:
        _WRITTEN.pop(stored, None)
    else:
        _WRITTEN[stored] = written


def remember_record(stored: str, written: str) -> None:
    """Records that a run's record (run.json's catalogue entry, `ModuleSpec.written`) names
    the absolute handle `stored` as its catalogue wrote it, the relative path `written`: a
    later process (tune, export, predict, a restart) names the module so, as the process
    that read the catalogue did. Whether `stored` was read from a run's record
    (`was_recorded`) is its reader's to say (`remember_recorded`)."""
    _WRITTEN[stored] = written


def written_as(stored: str) -> str | None:
    """The relative path a catalogue read in this process, or a run's record read since
    (`remember_record`), wrote for the absolute handle `stored` ("./google/bit/m-r50x1/1"),
    else None (written absolute, a handle given in Python, a record of a run ranked before
    run.json kept the written form)."""
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


#: Whose handle the resolver reads (`typed_by`): "python", one a call passes now (load_module,
#: HubLayer), or "yaml", a catalogue's or a run's record (`hub.locate.locate`'s hint_form).
_TYPED_BY = contextvars.ContextVar("hubensemble_handle_typed_by", default="yaml")


@contextlib.contextmanager
def typed_by(form: str):
    """While the block runs, a local handle with nothing there is refused in the words of
    `form`'s caller (`caller_form`): "python", a path a call passes now ("does not exist;
    check the path", a mistyped sibling offered), or "yaml", a handle a catalogue or a run
    recorded (a run's: "put the module back", never a sibling: a sibling folder is another
    network, `catalogue_here.as_written`)."""
    token = _TYPED_BY.set(form)
    try:
        yield
    finally:
        _TYPED_BY.reset(token)


def caller_form() -> str:
    """"python" or "yaml": whose handle the resolver reads now (`typed_by`)."""
    return _TYPED_BY.get()


def written_as_path(handle: str, cwd: str) -> bool:
    """Whether the relative `handle` (a str) is written as a path, not as a bare name a
    scheme or host may have been meant by: it starts with ``./`` or ``../`` (either
    separator), or the folder it names its last name in is there in `cwd` ("mods/m" with
    mods/ here)."""
    if re.match(r"^\.{1,2}[/\\]", handle):
        return True
    head = os.path.dirname(handle.rstrip("/\\"))
    return bool(head) and os.path.isdir(os.path.join(cwd, head))


def near_written(handle: str, cwd: str) -> str:
    """"; did you mean ./mods/m1?" for the entry of the folder of the relative `handle`
    (read from `cwd`) its last name most likely mistypes (`pathnotes.sibling_note`), said
    as `handle` writes that folder ("./mods/m0", not "/cwd/./mods/m0"); "" when none."""
    path = os.path.normpath(os.path.join(cwd, handle))
    note = sibling_note(path)
    if not note:
        return ""
    close = os.path.basename(note.removeprefix("; did you mean ").removesuffix("?"))
    head = os.path.dirname(handle.rstrip("/\\"))
    return f"; did you mean {head + '/' if head else ''}{close}?"


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
    if written_as_path(handle, cwd):  # './mods/m': a path, said as rank says one (its
        # words said the ~600 characters of handle forms no one writing ./ meant)
        where = os.path.normpath(path)
        near = near_written(handle, cwd)  # "; did you mean ./mods/m1?"
        return HandleFormError(f"{handle!r} (relative to the working folder: {where}) does "
                               "not exist", (near[2:] if near else "check the path",))
    hint = (WRITE, f"one of {HANDLE_FORMS} instead")
    url = tfhub_url(handle)
    if url:  # a Python caller is told handle='https://tfhub.dev/…'
        hint = ("for TF Hub's module ", WRITE, Say("handle", url, yaml=url), "; or ", *hint)
    near = near_written(handle, cwd)  # "; did you mean abd?"
    return HandleFormError(f"{handle!r} is neither a URL nor a handle of a known scheme, and "
                           f"the current folder ({cwd}) holds no file or folder {handle!r}"
                           f"{near}", hint)
