"""The one spelling of a handle's scheme and host: URL case rules for catalogue handles.

RFC 3986 makes a URL's scheme (3.1) and host (3.2.2) case-insensitive, and its normal form
lower case (6.2.2.1), while its path keeps its case: ``HTTPS://TFHub.dev/google/bit/m-r50x1/1``
is ``https://tfhub.dev/google/bit/m-r50x1/1``. `url_case` writes a handle so, for the schemes
hubensemble resolves, before its form is checked, stored or hashed into a cache folder's name
(tensorflow_hub's folder is the sha1 of the handle, so two spellings were two downloads). Pure
string work: no file system, no network.
"""

from __future__ import annotations

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
