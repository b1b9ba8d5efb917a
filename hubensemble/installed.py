"""Which release of a library Python imports here, and from which installed distribution
(`imported_release`), without importing it: what `formats.versions` records."""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import sys

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: At most this many files are hashed to tell which of several distributions that list a
#: package's folder wrote the files there (keras and keras-nightly both install keras/;
#: the one installed last owns the files, and both RECORDs still list them).
MAX_HASHED = 16


def imported_release(module: str) -> tuple[str, str | None]:
    """(version, distribution) of the top-level package `module` ("tensorflow") as this
    Python imports it. version: the module's own ``__version__`` when it is imported and
    says another release than its distribution's metadata, else that distribution's version
    (one spelling for one release: TensorFlow's "2.22.0-rc0" is recorded as its
    distribution's "2.22.0rc0"); "unknown" when neither is known. distribution: the name of
    the installed distribution whose RECORD lists the module's files ("tensorflow-cpu",
    "tf-nightly", "keras-nightly"; `importlib.metadata.packages_distributions`), of several
    the one whose file hashes match the files there; None when none can be told (a source
    checkout on PYTHONPATH). ("not installed", None) when Python finds no such module.
    Nothing is imported; the distributions are read once per process (~0.2 s)."""
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None) if loaded is not None else _spec_path(module)
    if loaded is None and path is None:
        return "not installed", None
    own = getattr(loaded, "__version__", None) if loaded is not None else None
    owner = _owner(module, os.path.realpath(path)) if path else None
    if owner is None:
        return (str(own) if own else "unknown"), None
    name, version = owner
    if own and not _same_release(str(own), version):
        return str(own), name
    return version, name


def same_name(a: str, b: str) -> bool:
    """Whether two distribution names are one (PEP 503: case, "-", "_" and "." alike)."""
    return canonicalize_name(a) == canonicalize_name(b)


def _spec_path(module: str) -> str | None:
    """The file (or folder, for a namespace package) Python would import `module` from;
    a top-level module's spec is found without running it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.has_location:
        return spec.origin
    locations = list(spec.submodule_search_locations or ())
    return locations[0] if locations else None


def _same_release(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


@functools.lru_cache(maxsize=1)
def _packages() -> dict:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=None)
def _owner(module: str, path: str) -> tuple[str, str] | None:
    """(name, version) of the distribution that wrote `path`, the file `module` is imported
    from; None when no distribution lists it or several do with the same files."""
    claims = []
    for name in dict.fromkeys(_packages().get(module, ())):
        for dist in importlib.metadata.distributions(name=name):
            # RECORD's paths are relative to the folder the .dist-info is in.
            root = os.path.realpath(dist.locate_file(""))
            wanted = os.path.relpath(path, root).replace(os.sep, "/")
            files = {str(f): f.hash for f in dist.files or ()
                     if f.parts and f.parts[0] in (module, module + ".py")}
            if wanted in files:
                claims.append((dist, root, files))
    if len(claims) > 1:
        claims = _matching(claims)
    if len(claims) != 1:
        return None
    dist = claims[0][0]
    return dist.metadata["Name"], dist.version


def _matching(claims: list) -> list:
    """Those of `claims` ((dist, root, {RECORD path: hash})) whose hashes of the files they
    disagree on match the files on disk (up to MAX_HASHED files)."""
    shared = set.intersection(*(set(files) for _, _, files in claims))
    differ = sorted(p for p in shared
                    if len({getattr(files[p], "value", None) for _, _, files in claims}) > 1)
    if not differ:
        return claims
    return [(dist, root, files) for dist, root, files in claims
            if all(_hash_matches(os.path.join(root, p), files[p])
                   for p in differ[:MAX_HASHED])]


def _hash_matches(path: str, filehash) -> bool:
    """Whether the file at `path` has RECORD's hash `filehash` (urlsafe base64, no padding)."""
    if filehash is None or filehash.mode not in hashlib.algorithms_available:
        return False
    try:
        with open(path, "rb") as f:
            digest = hashlib.new(filehash.mode, f.read()).digest()
    except OSError:
        return False
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == filehash.value
