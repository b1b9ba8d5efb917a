"""The `tf-hub-format` query of an archive URL: tensorflow_hub's compressed-archive resolver
appends ``?tf-hub-format=compressed`` to every http(s) handle it fetches
(`HttpResolverBase._append_format_query`), so a handle copied with it from a tfhub.dev
download link was fetched as ``…?tf-hub-format=compressed&tf-hub-format=compressed``. Pure
string work: no network."""

from __future__ import annotations

import urllib.parse

#: The query parameter tensorflow_hub's resolvers add ("compressed": a tar archive).
FORMAT_PARAMETER = "tf-hub-format"


def without_format_query(url: str) -> str:
    """`url` (an http(s) URL, str) without its `tf-hub-format` parameters in any case
    (``TF-HUB-FORMAT=compressed`` too), its other query parameters (a signed URL's token) and
    fragment kept in order; `url` itself when it has none, "?" dropped when none is left.
    E.g. ``http://h/m.tar.gz?tf-hub-format=compressed`` -> ``http://h/m.tar.gz``."""
    split = urllib.parse.urlsplit(url)
    if not split.query:
        return url
    pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    # Any case: a key typed in upper case was kept, so the server was asked for the format
    # twice in two spellings, and the handle had a cache folder of its own.
    kept = [(k, v) for k, v in pairs if k.lower() != FORMAT_PARAMETER]
    if len(kept) == len(pairs):
        return url
    return urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(kept)))
