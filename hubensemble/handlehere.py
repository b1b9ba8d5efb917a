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


def unnamed_handle(handle: str, cwd: str) -> HandleFormError | None:
    """The refusal of `handle` (a str that `handles.check_handle_form` accepted) when it is a
    relative local path (no scheme, not ``~``, not Windows' ``C:\\…``) with nothing of that
    name in `cwd` (the folder it is read from): "'abc' is neither a URL nor a handle of a
    known scheme, and the current folder (CWD) holds no file or folder 'abc'", with the
    accepted forms (`handles.HANDLE_FORMS`), a mistyped sibling (`pathnotes.sibling_note`)
    and, for PUBLISHER/MODEL/VERSION, the tfhub.dev URL it may mean. None for any other
    handle, and for a relative path that exists."""
    if (handle_kind(handle) != "local" or handle.startswith(("file:", "~"))
            or os.path.isabs(handle) or windows_form(handle) is not None):
        return None
    path = os.path.join(cwd, handle)
    if os.path.lexists(path):
        return None
    hint = (WRITE, f"one of {HANDLE_FORMS} instead")
    if _TFHUB_PATH.match(handle):  # a Python caller is told handle='https://tfhub.dev/…'
        url = f"https://tfhub.dev/{handle}"
        hint = ("for TF Hub's module ", WRITE, Say("handle", url, yaml=url), "; or ", *hint)
    near = sibling_note(path)  # "; did you mean /cwd/abd?"
    return HandleFormError(f"{handle!r} is neither a URL nor a handle of a known scheme, and "
                           f"the current folder ({cwd}) holds no file or folder {handle!r}"
                           f"{near}", hint)
