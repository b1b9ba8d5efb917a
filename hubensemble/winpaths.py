"""Paths written as Windows writes them, typed on a system whose paths use "/" (Linux, macOS):
whether a path text is one, and what to write instead. One policy for every path a user
types: the command line's path flags and arguments (`arguments.Parser`, options.PATH_METAVARS
and catalogue add's HANDLEs), the stage functions' path keywords (`options.check`,
`stageargs.folder`, `stageargs.catalogue_specs`, `predict`'s image paths), the environment
variables that name folders (`environment.PATH_ENV`) and the data specs' folder: and npz:
paths (`data.loading.windows_path_hint`). Pure: no file is read or written (whether a
path exists is asked of `exists`). TensorFlow-free.

On Linux and macOS a backslash is a character of a file name, not a separator, and there
are no drive letters: `--out 'runs\\w'` made one folder named "runs\\w", `--catalogue
'C:\\cat.yaml'` looked for a file of that name in the working folder, and a UNC share
(`\\\\server\\share\\imgs`) is no path there at all (nor is `//server/share/imgs`, which Linux
reads as /server/share/imgs). On Windows itself (`sep` "\\") these are ordinary paths and
nothing here says a word.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Callable

#: A drive letter and its root: "C:\\" or "C:/" (a path from the root of drive C).
_DRIVE = re.compile(r"([A-Za-z]):[\\/]")
#: Windows' extended-length and device prefixes (\\?\C:\…, \\?\UNC\server\share, \\.\C:\…).
_LONG = re.compile(r"[\\/]{2}[?.][\\/]")

#: How to pass a path of this system that only looks like a Windows one.
AS_TYPED = ("a file or folder of that name that exists here is taken as typed (to name a new "
            "one so, make it first, e.g. with mkdir)")


@dataclass(frozen=True)
class WindowsPath:
    """A path text in one of Windows' forms. `kind`: "drive" (C:\\… or C:/…), "unc" (a
    network share, \\\\server\\share\\…) or "backslash" (a relative or rooted path with "\\"
    separators, ..\\imgs). `posix`: the same path with "/" separators, on a drive's WSL
    mount (/mnt/c/…) or a share's usual mount point (/mnt/SHARE/…, macOS /Volumes/SHARE/…).
    `server`, `share`: a UNC path's, `drive`: a drive's letter ("" otherwise). `prefix`: the
    leading part whose existence here would make the text a path of this system after all
    (up to its last part that holds a backslash, or a drive's "C:" folder)."""

    text: str
    kind: str
    posix: str
    prefix: str
    server: str = ""
    share: str = ""
    drive: str = ""

    def advice(self, *, escape: bool = True) -> str:
        """What the text is and what to write instead, as the tail of a refusal that has
        named the value: "is written as a Windows path, but …: write it as a path here,
        e.g. runs/w". `escape`: also say how to pass such a name anyway (`AS_TYPED`)."""
        if self.kind == "unc":
            share = self.share or "SHARE"
            if self.posix.startswith("/Volumes/"):
                how = (f"in Finder, Go > Connect to Server: smb://{self.server}/{share}, which "
                       "mounts it under /Volumes")
            else:
                how = (f"sudo mount -t cifs //{self.server}/{share} /mnt/{share} -o "
                       "username=NAME, or see where it already is: findmnt -t cifs,smb3")
            return (f"is a Windows network share (UNC path \\\\{self.server}\\{share}), which "
                    "this system does not open by that name: write the same folder under "
                    f"the share's mount point here, e.g. {self.posix} once it is mounted "
                    f"there ({how})")
        why = ["a backslash is part of a name here, not a separator"] if "\\" in self.text \
            else []
        if self.kind == "drive":
            why.append("there are no drive letters")
        said = (f"is written as a Windows path, but this system's paths use \"/\" "
                f"({', and '.join(why)}): write it as a path here, e.g. {self.posix}")
        if self.kind == "drive":
            said += (f" (where WSL mounts drive {self.drive}:; elsewhere, where that drive is "
                     "mounted)")
        return said + (f"; {AS_TYPED}" if escape else "")


def windows_form(text, *, sep: str = os.sep,
                 platform: str = sys.platform) -> WindowsPath | None:
    """The WindowsPath of `text` (str) when it is written in one of Windows' forms on a
    system whose separator `sep` is "/" (a drive's root "C:\\" or "C:/", a UNC share
    "\\\\server\\share", or any backslash), else None: always None on Windows (`sep` "\\"),
    for a non-str, and for a POSIX path ("//server/share" is one: Linux reads it as
    /server/share). Text only: whether such a name exists is `windows_refusal`'s question.
    `platform` (sys.platform) chooses the mount point a share is shown under."""
    if sep == "\\" or not isinstance(text, str) or not text:
        return None
    body = text
    long = _LONG.match(text)
    if long:  # \\?\C:\x is C:\x; \\?\UNC\server\share\x is \\server\share\x
        body = text[long.end():]
        if body[:4].upper() in ("UNC\\", "UNC/"):
            body = "\\\\" + body[4:]
    drive = _DRIVE.match(body)
    unc = not drive and re.match(r"[\\]{2}[^\\/]", body) is not None
    if not (drive or unc or "\\" in text):
        return None
    last = max([i for i, p in enumerate(text.split("/")) if "\\" in p] + [0])
    prefix = "/".join(text.split("/")[:last + 1])
    if unc:
        names = [p for p in body[2:].replace("\\", "/").split("/") if p]
        server, share = (names + ["", ""])[:2]
        root = "/Volumes" if platform == "darwin" else "/mnt"
        posix = "/".join([root, share or "SHARE", *names[2:]])
        return WindowsPath(text, "unc", posix, prefix, server, share)
    if drive:
        rest = body[3:].replace("\\", "/")
        posix = f"/mnt/{drive.group(1).lower()}/{rest}".rstrip("/") if rest else (
            f"/mnt/{drive.group(1).lower()}")
        return WindowsPath(text, "drive", posix, prefix, drive=drive.group(1).upper())
    return WindowsPath(text, "backslash", text.replace("\\", "/"), prefix)


def windows_refusal(text, *, sep: str = os.sep, platform: str = sys.platform,
                    exists: Callable[[str], bool] = os.path.lexists) -> WindowsPath | None:
    """`windows_form(text)`, unless its `prefix` exists here (`exists`, of the `~`-expanded
    text; default os.path.lexists): a backslash is a legal character of a POSIX name, so
    a file or folder named "a\\b" that is there, or a folder "C:", makes the text a path
    of this system, taken as typed. None: nothing to refuse."""
    form = windows_form(text, sep=sep, platform=platform)
    if form is None or exists(os.path.expanduser(form.prefix)):
        return None
    return form


def refusal_advice(text, **kwargs) -> str:
    """"" when `text` may be taken as a path here (`windows_refusal`: not a Windows form,
    on Windows, or an existing name); else `WindowsPath.advice()`, to follow the value in a
    refusal that names the flag, keyword or variable."""
    form = windows_refusal(text, **kwargs)
    return "" if form is None else form.advice()
