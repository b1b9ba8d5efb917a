"""Handle text as users write it: the one spelling of a URL's scheme and host, and the
environment variables a local path may hold that nothing expands.

RFC 3986 makes a URL's scheme (3.1) and host (3.2.2) case-insensitive, and its normal form
lower case (6.2.2.1), while its path keeps its case: ``HTTPS://TFHub.dev/google/bit/m-r50x1/1``
is ``https://tfhub.dev/google/bit/m-r50x1/1``. `url_case` writes a handle so, for the schemes
hubensemble resolves, before its form is checked, stored or hashed into a cache folder's name
(tensorflow_hub's folder is the sha1 of the handle, so two spellings were two downloads). Pure
string work: no file system, no network. `variables_note` says of a local path that writes
``$HOME``, ``${MODELS}`` or ``%USERPROFILE%`` that no catalogue field expands them (only a
leading ``~`` is), with the path to write where the variable is set.
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
    lower case; the path, query and fragment as written. Anything else (a local path, another
    scheme, a value that is not a str) is returned unchanged.

    >>> url_case("HTTPS://TFHub.dev/google/bit/m-r50x1/1")
    'https://tfhub.dev/google/bit/m-r50x1/1'
    >>> url_case("Kaggle:google/bit/tensorFlow2/m-r50x1/1")
    'kaggle:google/bit/tensorFlow2/m-r50x1/1'
    """
    if not isinstance(handle, str):
        return handle
    found = _URL_RE.match(handle)
    if found is None or found.group(1).lower() not in KNOWN_SCHEMES:
        return handle
    scheme = found.group(1).lower()
    if found.group(2) is None:
        return f"{scheme}:{handle[found.end(1) + 1:]}"
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
    only a leading ~; write '/root/m')" for "/cats/$HOME/m" where HOME is /root.
    """
    found = _VARIABLE.search(path) if isinstance(path, str) else None
    if found is None:
        return ""

    def value(match):
        return os.environ.get(match.group(1) or match.group(2), match.group(0))

    rest = _VARIABLE.sub(value, path[found.start():])  # "$HOME/m" written: "/root/m"
    expanded = rest if os.path.isabs(rest) else _VARIABLE.sub(value, path)
    way = (f"write '{expanded}'" if not _VARIABLE.search(expanded) else
           f"write the path itself ({found.group(0)} is not set here either)")
    return (f" (`{found.group(0)}` is part of the name here: a catalogue expands no environment "
            f"variable, only a leading ~; {way})")
