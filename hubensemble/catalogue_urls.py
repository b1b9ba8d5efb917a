"""Handle text as users write it: the one spelling of a URL's scheme and host, and the
environment variables a local path may hold that nothing expands.

RFC 3986 makes a URL's scheme (3.1) and host (3.2.2) case-insensitive, and its normal form
lower case (6.2.2.1), while its path keeps its case: ``HTTPS://TFHub.dev/google/bit/m-r50x1/1``
is ``https://tfhub.dev/google/bit/m-r50x1/1``. `url_case` writes a handle so, for the schemes
hubensemble resolves, before its form is checked, stored or hashed into a cache folder's name
(tensorflow_hub's folder is the sha1 of the handle, so two spellings were two downloads). Pure
string work: no file system, no network. `variables_note` says of a local path that writes
``$HOME``, ``${MODELS}`` or ``%USERPROFILE%`` that no catalogue field expands them (only a
leading ``~`` is), with the path to write where the variable is set, and of one that writes
``~NAME`` for a user this machine does not know that it is no home folder here, and of one
through a symbolic link whose target is gone that it is such a link (these two look at the
file system: the password database, the link), and of one in a word processor's quotes that
they are part of the name.
"""

from __future__ import annotations

import os
import re

#: The schemes a catalogue handle may have (`handles.check_handle_form`), written in lower case
#: whatever case the handle gives them; another scheme is left as written for its check to
#: refuse (or a registered resolver to judge).
KNOWN_SCHEMES = ("http", "https", "gs", "file", "kaggle", "hf", "zoo", "keras")

#: The schemes whose "//AUTHORITY" is a host name (DNS names are case-insensitive, RFC 4343; a
#: Cloud Storage bucket name holds lower-case letters only): written in lower case. The
#: authority of ``kaggle://OWNER/…`` and ``hf://OWNER/…`` presets is an owner's name, kept.
HOST_SCHEMES = ("http", "https", "gs", "file")

_URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//([^/?#]*))?")


def url_case(handle):
    """``handle`` (a str) with a KNOWN_SCHEMES scheme in lower case and, for HOST_SCHEMES,
    its host (with a port, and any user name, which `handles.check_handle_form` refuses) in
    lower case; the path, query and fragment as written; ``file:/PATH`` (RFC 8089's form
    without an authority) as ``file:///PATH``, the one form the resolvers read. Anything else
    (a local path, another scheme, a value that is not a str) is returned unchanged.

    >>> url_case("HTTPS://TFHub.dev/google/bit/m-r50x1/1")
    'https://tfhub.dev/google/bit/m-r50x1/1'
    >>> url_case("Kaggle:google/bit/tensorFlow2/m-r50x1/1")
    'kaggle:google/bit/tensorFlow2/m-r50x1/1'
    >>> url_case("FILE:/home/you/m")
    'file:///home/you/m'
    """
    if not isinstance(handle, str):
        return handle
    found = _URL_RE.match(handle)
    if found is None or found.group(1).lower() not in KNOWN_SCHEMES:
        return handle
    scheme = found.group(1).lower()
    if found.group(2) is None:
        rest = handle[found.end(1) + 1:]
        if scheme == "file" and rest.startswith("/"):  # RFC 8089, 2: file:/PATH is
            return f"file://{rest}"  # file:///PATH (no authority: this machine)
        return f"{scheme}:{rest}"
    host = found.group(3).lower() if scheme in HOST_SCHEMES else found.group(3)
    return f"{scheme}://{host}{handle[found.end():]}"


#: An environment variable as a shell ($NAME, ${NAME}) or Windows (%NAME%) writes it.
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|%([A-Za-z_][A-Za-z0-9_]*)%")


def variables_note(path: str) -> str:
    """" (…)" to follow "PATH does not exist" when the (stored, so absolute) local `path`
    writes an environment variable, which hubensemble does not expand (a catalogue reads a
    path as written, but for a leading ``~``: `handles.stored_handle`), so "$HOME/m" was
    looked for as a folder named "$HOME" beside the catalogue; with the path to write when
    every variable it names is set here, else the variable named. "" for any other path.
    E.g. " (`$HOME` is part of the name here: a catalogue expands no environment variable,
    only a leading ~; write '/root/m')" for "/cats/$HOME/m" where HOME is /root. A path
    without variables is said as `_unknown_user_note` says it, else as `_dangling_link_note`,
    else as `_typographic_quotes_note`.
    """
    found = _VARIABLE.search(path) if isinstance(path, str) else None
    if found is None:
        return (_unknown_user_note(path) or _dangling_link_note(path)
                or _typographic_quotes_note(path)) if isinstance(path, str) else ""

    def value(match):
        return os.environ.get(match.group(1) or match.group(2), match.group(0))

    rest = _VARIABLE.sub(value, path[found.start():])  # "$HOME/m" written: "/root/m"
    expanded = rest if os.path.isabs(rest) else _VARIABLE.sub(value, path)
    way = (f"write '{expanded}'" if not _VARIABLE.search(expanded) else
           f"write the path itself ({found.group(0)} is not set here either)")
    return (f" (`{found.group(0)}` is part of the name here: a catalogue expands no environment "
            f"variable, only a leading ~; {way})")


#: A path's part "~NAME" (after a "/" or at its start), NAME without "/": a home folder in
#: the shell's words (POSIX, 2.6.1 Tilde Expansion).
_TILDE_PART = re.compile(r"(?:^|(?<=[/\\]))~([^/\\]*)(?=[/\\]|$)")


def _unknown_user_note(path: str) -> str:
    """" (…)" to follow "PATH does not exist" when the local `path` holds a part ``~NAME``
    that ``os.path.expanduser`` leaves as it is (no user NAME on this machine, so no home
    folder: ``~nouser/models/m`` was joined to the catalogue's folder, "/cats/~nouser/models/m
    does not exist" with no word why), naming the user and the path in one's own home it
    may have meant (``~/NAME/…``: "~nouser" for "~/nouser"). "" for any other path."""
    found = _TILDE_PART.search(path)
    if found is None or os.path.expanduser(found.group(0)) != found.group(0):
        return ""
    name, rest = found.group(1), path[found.end():].lstrip("/\\")
    target = os.path.join(name, rest) if rest else name
    mine = os.path.join(os.path.expanduser("~"), target) if name else None
    way = (f"for {target} in your own home write '{mine}'"
           + (" (it exists)" if os.path.exists(mine) else "") + ", or " if mine else "")
    user = f"user '{name}'" if name else "home folder (HOME is not set)"
    return (f" (`{found.group(0)}` is part of the name here: this machine has no {user}, so "
            f"{found.group(0)} is no home folder and the path was read from the catalogue's "
            f"folder; {way}write the full path as it is on this machine)")


def _dangling_link_note(path: str) -> str:
    """" (…)" to follow "PATH does not exist" when a part of the absolute `path` is a
    symbolic link whose target does not exist (a module folder moved or deleted after it
    was linked: ``ls`` shows the link, and "does not exist" read as a wrong path), naming
    the link and its target; "" otherwise (a relative `path` is not looked at)."""
    if not os.path.isabs(path):
        return ""
    part = path
    while part and part != os.path.dirname(part):
        if os.path.islink(part) and not os.path.exists(part):
            try:
                target = os.readlink(part)
            except OSError:
                return ""
            return (f" ({part} is a symbolic link to '{target}', which does not exist: link "
                    "the module's folder again where it is now, or write that folder)")
        part = os.path.dirname(part)
    return ""


#: Quotation marks a word processor or a web page writes for ' and " (and guillemets), which
#: YAML does not read as quotes: they stay part of the value.
TYPOGRAPHIC_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"


def _typographic_quotes_note(path: str) -> str:
    """" (…)" to follow "PATH does not exist" when `path` holds TYPOGRAPHIC_QUOTES
    (``handle: “../models/m”`` pasted from a document was looked for as a folder named
    "“.." beside the catalogue), naming them and the path without them (normalised, as a
    catalogue stores a path), said to exist when it does; "" otherwise."""
    quotes = "".join(dict.fromkeys(c for c in path if c in TYPOGRAPHIC_QUOTES))
    if not quotes:
        return ""
    meant = os.path.normpath(path.translate({ord(c): None for c in TYPOGRAPHIC_QUOTES}))
    what = ("is a typographic quote" if len(quotes) == 1 else "are typographic quotes")
    exists = " (it exists)" if os.path.exists(meant) else ""
    return (f" ({' and '.join(quotes)} {what}, part of the name here: YAML quotes with ' or "
            f"\", not with a word processor's quotes; write '{meant}'{exists})")
