"""Folders and URLs named by environment variables, read in one place, and the user caches
they name: a cache that cannot be written is said once and costs only speed (TensorFlow-free).

Every folder an environment variable names (HUBENSEMBLE_CACHE_DIR, HUBENSEMBLE_COST_CACHE,
HUBENSEMBLE_DECODE_CACHE, HUBENSEMBLE_ZOO_DIR, XDG_CACHE_HOME, TFDS_DATA_DIR) is read
through `path_from_environment`, which expands a leading `~` as the shell does not in
``VAR="~/c"`` (a folder literally named ``./~/c`` was made) and refuses a Windows-written
path on Linux and macOS (PATH_ENV, with the libraries' TFHUB_CACHE_DIR and KERAS_HOME,
checked by `check_environment`); the path options of the command line are expanded by
`arguments.Parser`. The URL of HUBENSEMBLE_KERAS_WEIGHTS_MIRROR is checked with the
timeouts before any work (`check_environment`), as are the seconds of SECONDS_ENV.
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import urllib.parse
from typing import Mapping

from hubensemble.errors import HubensembleError
from hubensemble.optionrecord import POSITIVE_FINITE
from hubensemble.options import OptionError
from hubensemble.text import absolute, escaped, shell_word
from hubensemble.winpaths import refusal_advice

log = logging.getLogger(__name__)

#: A mirror serving Keras' ImageNet weight files by name (hub.sources): URL/FNAME.
WEIGHTS_MIRROR_ENV = "HUBENSEMBLE_KERAS_WEIGHTS_MIRROR"
#: The URL schemes the weights mirror may use (urllib.request.urlopen reads them).
MIRROR_SCHEMES = ("http", "https", "file")


#: Environment variables that name folders, of hubensemble's and of the libraries it runs
#: (TensorFlow Hub's module cache, Keras' home, tensorflow_datasets' data): each checked
#: before any work (`check_environment`); hubensemble reads its own through
#: `path_from_environment`.
PATH_ENV = ("HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_COST_CACHE",
            "HUBENSEMBLE_DECODE_CACHE", "HUBENSEMBLE_ZOO_DIR", "XDG_CACHE_HOME", "TFHUB_CACHE_DIR",
            "KERAS_HOME", "TFDS_DATA_DIR")


#: (variable, value, absolute path) of the relative values already said: said once each.
_SAID_RELATIVE: set[tuple[str, str, str]] = set()


def path_from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The folder or file (str, absolute) environment variable `name` names, a leading `~`
    expanded, or None when it is unset or empty (the caller's default applies). A relative
    value is taken under the working folder, as the libraries that read these variables
    take it, and said once per process (a WARNING naming the folder it resolved to): a new
    user's HUBENSEMBLE_DECODE_CACHE=cache silently made a cache in each folder a command ran
    from. OptionError naming the variable when, on Linux or macOS, it is written as Windows
    writes paths and names nothing here (`winpaths.windows_refusal`:
    HUBENSEMBLE_ZOO_DIR='C:\\zoo' built the zoo in a folder of that name in the working
    folder), with what to set instead."""
    value = (os.environ if environ is None else environ).get(name, "")
    advice = refusal_advice(value)
    if advice:
        raise OptionError(f"{name}={shell_word(value)} {advice}; set it so, or unset it for "
                          "the default")
    if not value:
        return None
    path = os.path.expanduser(value)
    if os.path.isabs(path):
        return path
    resolved = absolute(path)
    if (name, value, resolved) not in _SAID_RELATIVE:
        _SAID_RELATIVE.add((name, value, resolved))
        log.warning("%s=%s is a relative path: taken as %s, under the working folder (a "
                    "command run from another folder uses another one); set it to an "
                    "absolute path to keep one folder", name, shell_word(value),
                    escaped(resolved))
    return resolved


def user_cache_dir(*parts: str) -> str:
    """``$XDG_CACHE_HOME/PARTS…``, else ``~/.cache/PARTS…`` (str, `~` expanded); with no home
    folder (`home_folder` None) a private temporary folder, said once (`homeless_cache`)."""
    root = path_from_environment("XDG_CACHE_HOME")
    if not root:
        home = home_folder()
        root = os.path.join(home, ".cache") if home else homeless_cache()
    return os.path.join(root, *parts)


def home_folder() -> str | None:
    """The user's home folder (str, absolute): `~` expanded by Python's rule ($HOME, else the
    password database's entry of the user ID). None when there is none: HOME unset and a
    user ID the database does not list (a container run as an arbitrary user ID), where
    `os.path.expanduser` gives back "~" itself and the caches were made in a folder
    literally named "~" in the working folder (a new-user check)."""
    home = os.path.expanduser("~")
    return home if home != "~" and os.path.isabs(home) else None


def folder_removed_at_exit(prefix: str) -> str:
    """A new private temporary folder (str; mode 0700, `tempfile.mkdtemp` with `prefix`),
    removed when the process exits: where a cache that cannot be kept goes (no home folder,
    an unwritable TensorFlow Hub cache or matplotlib folder)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


_HOMELESS_LOCK = threading.Lock()
_HOMELESS: list[str] = []


def homeless_cache() -> str:
    """The user caches' root when there is no home folder (`home_folder`): one private
    temporary folder per process (mode 0700, `tempfile.mkdtemp`; a fixed name in a shared
    /tmp could be another user's), removed at exit. Its first use warns once, naming what
    to set so the zoo, the embeddings and the costs are kept from run to run."""
    with _HOMELESS_LOCK:
        if not _HOMELESS:
            folder = folder_removed_at_exit("hubensemble-cache-")
            _HOMELESS.append(folder)
            uid = getattr(os, "getuid", lambda: None)()
            who = f"user ID {uid} has no entry in the password database" if uid is not None \
                else "no user profile folder is known"
            log.warning("there is no home folder (HOME is unset and %s): hubensemble's caches "
                        "(the preset zoos, embeddings, costs) go to %s, removed at exit, so "
                        "each run builds and computes them again; set XDG_CACHE_HOME (or HOME) "
                        "to a folder that is kept", who, escaped(folder))
        return _HOMELESS[0]


def weights_mirror(environ: Mapping[str, str] | None = None) -> str | None:
    """The URL $HUBENSEMBLE_KERAS_WEIGHTS_MIRROR names (None when unset or empty).

    Raises HubensembleError naming the variable when it is not an http(s):// URL with a host
    or a file:// URL: checked before any work (`check_environment`), as it failed
    only at the first download, as "unknown url type" with advice about the network.
    """
    value = (os.environ if environ is None else environ).get(WEIGHTS_MIRROR_ENV, "").strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    has_place = parts.netloc or (parts.scheme == "file" and parts.path)
    if parts.scheme not in MIRROR_SCHEMES or not has_place:
        raise HubensembleError(
            f"{WEIGHTS_MIRROR_ENV}={value!r} is not a URL of a mirror of Keras' weight files "
            "(http://HOST/PATH, https://HOST/PATH or file:///FOLDER, serving each file by its "
            f"name); set it to one, or unset it to download from Keras' own origins")
    return value


# ---------------------------------------------------------------------------------------------
# User caches (outside runs): which folder, chosen by what, and a cache that cannot be written
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CacheFolder:
    """A user cache's folder (`path`, str) and what chose it, for the messages about it.

    `what`: its name in messages ("embedding cache"); `variable`: the environment variable
    that names it; `flag`: the command-line flag that overrides the variable (None: none);
    `source`: "flag" (given to the function: the flag, or a Python caller's argument),
    "variable" or "default"; `skip`: how to run without the cache ("" when there is no way).
    """

    path: str
    what: str
    variable: str
    flag: str | None = None
    source: str = "default"
    skip: str = ""

    def named_by(self) -> str:
        """Whose folder it is, to follow "Its folder is": "--cache-dir's",
        "HUBENSEMBLE_CACHE_DIR's" or "the default (HUBENSEMBLE_CACHE_DIR unset)" (it said
        "the default, HUBENSEMBLE_CACHE_DIR being unset's")."""
        named = {"flag": self.flag or "the caller", "variable": self.variable}.get(self.source)
        return f"{named}'s" if named else f"the default ({self.variable} unset)"

    def fix(self) -> str:
        """How to give the cache a folder that can be written, by what named this one."""
        other = f" (or pass {self.flag} DIR)" if self.flag and self.source != "flag" else ""
        if self.source == "flag":
            fix = f"pass {self.flag or 'cache_dir'} a folder you can write"
        elif self.source == "variable":
            fix = f"set {self.variable} to a folder you can write{other}, or unset it"
        else:
            fix = f"set {self.variable} to a folder you can write{other}"
        return fix + (f"; {self.skip}" if self.skip else "")


def cache_folder(given, *, what: str, variable: str, default: tuple[str, ...],
                 flag: str | None = None, skip: str = "") -> CacheFolder:
    """The CacheFolder of a user cache: `given` (a path: the flag or a caller's argument)
    when not None or empty, else $`variable`, else `user_cache_dir(*default)`; `~` expanded."""
    if given:
        return CacheFolder(os.path.expanduser(os.fspath(given)), what, variable, flag, "flag",
                           skip)
    named = path_from_environment(variable)
    if named:
        return CacheFolder(named, what, variable, flag, "variable", skip)
    return CacheFolder(user_cache_dir(*default), what, variable, flag, "default", skip)


#: (what, folder) of the caches said to be unwritable in this process: said once each.
_UNWRITABLE: set[tuple[str, str]] = set()


def cache_unwritable(folder: CacheFolder, error: OSError, going_on: str, *,
                     reads_old: bool = True) -> None:
    """Says (a WARNING, once per process and cache folder) that `folder` cannot be written
    (`error`: any OSError creating, locking or writing in it — read-only, a file in the way,
    no permission, a full disk or quota), that the work goes on without it (`going_on`,
    e.g. "ranking goes on"), naming what named the folder and how to fix it; that entries
    already there are still read unless `reads_old` is False (a cache replaced by a
    temporary folder: TensorFlow Hub's, matplotlib's). A cache only costs speed: its callers
    go on after this, never raise for it."""
    key = (folder.what, absolute(folder.path))
    if key in _UNWRITABLE:
        return
    _UNWRITABLE.add(key)
    reason = f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    old = " (entries already there are still read)" if reads_old else ""
    log.warning("the %s %s cannot be written (%s); %s without it, only slower%s. Its folder "
                "is %s: %s", folder.what, escaped(folder.path), reason, going_on, old,
                folder.named_by(), folder.fix())


def unwritable_error(folder) -> OSError:
    """The OSError of a folder (a str path) that `os.access` says cannot be written: EROFS
    ("Read-only file system: FOLDER; it is mounted read-only") when its file system is mounted
    read-only (`os.statvfs`' ST_RDONLY), where no chmod or chown helps, else EACCES
    ("Permission denied"); os.access answers alike for both. Windows (no statvfs): EACCES.
    Here, not in `hub.cachefolder` (TensorFlow Hub's cache, which imports it from here):
    matplotlib's folder is checked before TensorFlow is imported."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only:
        return OSError(errno.EROFS, f"{os.strerror(errno.EROFS)}: {folder}; it is mounted "
                       "read-only")
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES), folder)


#: Environment variables that hold seconds: name -> (default, what they bound). Read through
#: `seconds_from_environment`; the command line checks them all before TensorFlow loads.
SECONDS_ENV = {
    "HUBENSEMBLE_HTTP_TIMEOUT": (60.0, "each network read without an answer"),
    "HUBENSEMBLE_DOWNLOAD_DEADLINE": (3600.0, "a whole download"),
    "HUBENSEMBLE_CHIEF_TIMEOUT": (3600.0, "a worker's wait for the sweep's chief"),
    "HUBENSEMBLE_TPU_TIMEOUT": (300.0, "connecting to a TPU"),
}


def seconds_from_environment(name: str, environ: Mapping[str, str] | None = None) -> float:
    """The seconds of the environment variable `name` (a key of SECONDS_ENV; its default when
    unset or empty). OptionError naming the variable for a value that is not a finite number
    above 0, in the option table's words ("must be a number > 0 and finite"; a float()
    ValueError deep in a download named nothing)."""
    default, bounds = SECONDS_ENV[name]
    raw = (os.environ if environ is None else environ).get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OptionError(f"{name}={raw!r} must be {POSITIVE_FINITE}, in seconds (it bounds "
                          f"{bounds}); set e.g. {name}={default:g} (the default) or unset it")
    return value


#: hubensemble's variables that are neither PATH_ENV's nor SECONDS_ENV's ($HUBENSEMBLE_QUIET_TF:
#: `_tf.QUIET_ENV`, which a command sets for its own child processes).
OTHER_ENV = (WEIGHTS_MIRROR_ENV, "HUBENSEMBLE_QUIET_TF")
#: Variables an earlier release read, with what became of them.
RETIRED_ENV = {"HUBENSEMBLE_CHIEF_GRACE": "a worker started after its chief ended waits for a "
                                          "chief started again ($HUBENSEMBLE_CHIEF_TIMEOUT "
                                          "bounds the wait) since 2026-12-06"}
_SAID_SETTINGS: set[str] = set()


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning per HUBENSEMBLE_* variable set in `environ` (default os.environ) that
    hubensemble does not read, in name order: one an earlier release read (RETIRED_ENV:
    what became of it), else a misspelt one, with the known name it is closest to
    (difflib.get_close_matches) when there is one. A typo such as HUBENSEMBLE_CACHE_DIRR was
    ignored without a word, the default cache used."""
    import difflib

    known = ({n for n in PATH_ENV if n.startswith("HUBENSEMBLE_")} | set(SECONDS_ENV)
             | set(OTHER_ENV))
    said = []
    for name in sorted((os.environ if environ is None else environ)):
        if not name.startswith("HUBENSEMBLE_") or name in known:
            continue
        if name in RETIRED_ENV:
            said.append(f"${name} is set but no longer read: {RETIRED_ENV[name]}; unset it")
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        said.append(f"${name} is set but is not a hubensemble setting (ignored)" + (
            f"; did you mean ${close[0]}?" if close else ""))
    return said


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """`seconds_from_environment` for every variable of SECONDS_ENV (OptionError), the
    URL of $HUBENSEMBLE_KERAS_WEIGHTS_MIRROR (`environment.weights_mirror`, HubensembleError)
    and the folders of PATH_ENV (`path_from_environment`, OptionError): a bad value is named
    before any work, not at the first download or as a folder made in the working folder.
    Each of `unknown_settings` is logged as a WARNING, once per process."""
    for name in SECONDS_ENV:
        seconds_from_environment(name, environ)
    for name in PATH_ENV:
        path_from_environment(name, environ)
    weights_mirror(environ)
    for words in unknown_settings(environ):
        if words not in _SAID_SETTINGS:
            _SAID_SETTINGS.add(words)
            log.warning("%s", words)


# matplotlib's folder (TensorFlow imports matplotlib, so it is checked before TensorFlow)
# ---------------------------------------------------------------------------------------------

MATPLOTLIB_ENV = "MPLCONFIGDIR"


def matplotlib_folders(environ: Mapping[str, str] | None = None) -> list[str]:
    """The folders matplotlib would keep its configuration and font cache in (str), by its
    own rule (matplotlib 3.x `_get_config_or_cache_dir`), without importing it: $MPLCONFIGDIR
    when set; on Linux and FreeBSD $XDG_CONFIG_HOME (or ~/.config) and $XDG_CACHE_HOME (or
    ~/.cache), each + "/matplotlib"; on Windows %LOCALAPPDATA%\\matplotlib unless
    ~/.matplotlib is a folder; elsewhere ~/.matplotlib. [] when there is no home to name."""
    environ = os.environ if environ is None else environ
    if environ.get(MATPLOTLIB_ENV):
        return [environ[MATPLOTLIB_ENV]]
    home = environ.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        return []
    if sys.platform.startswith(("linux", "freebsd")):
        return [os.path.join(environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
                             "matplotlib"),
                os.path.join(environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"),
                             "matplotlib")]
    old = os.path.join(home, ".matplotlib")
    if sys.platform == "win32" and environ.get("LOCALAPPDATA") and not os.path.isdir(old):
        return [os.path.join(environ["LOCALAPPDATA"], "matplotlib")]
    return [old]


def matplotlib_folder() -> None:
    """Before matplotlib is first imported (by TensorFlow's import, or the report's figures):
    if its folders (`matplotlib_folders`) cannot be made or written (a HOME that is a file,
    read-only or missing) and MPLCONFIGDIR is not set, that is said once
    (`cache_unwritable`, naming MPLCONFIGDIR and the fix) and MPLCONFIGDIR is set to a
    private temporary folder removed at exit. matplotlib wrote two WARNING lines of its own
    on the terminal for it ("mkdir -p failed for path …", "Matplotlib created a temporary
    cache directory at …"), in the middle of a command's output and of a Python caller's.
    Nothing is done once matplotlib is imported, or when MPLCONFIGDIR names a folder: a
    folder the user chose is matplotlib's to judge."""
    if "matplotlib" in sys.modules or os.environ.get(MATPLOTLIB_ENV):
        return
    for folder in matplotlib_folders():
        try:
            os.makedirs(folder, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise unwritable_error(folder)
        except OSError as e:
            cache_unwritable(CacheFolder(folder, "matplotlib configuration and font cache",
                                         MATPLOTLIB_ENV), e,
                             "matplotlib (the report's figures) uses a temporary folder "
                             "removed at exit: it goes on", reads_old=False)
            os.environ[MATPLOTLIB_ENV] = folder_removed_at_exit("hubensemble-matplotlib-")
            return


#: The variable matplotlib takes its backend from at its first import.
MATPLOTLIB_BACKEND_ENV = "MPLBACKEND"


def import_matplotlib() -> None:
    """matplotlib's first import in this process, its folder checked first
    (`matplotlib_folder`): TensorFlow's import imports it (and pyplot), the report's figures
    and the zoo's glyphs use it. A MPLBACKEND naming no backend matplotlib knows (a typo,
    another machine's) made that import raise ValueError ("Key backend: 'x' is not a valid
    value for backend"): `fit` stopped with a traceback from TensorFlow's import, and the
    report lost every section with a figure, blamed on the run's files. hubensemble needs no
    backend (its figures are drawn on matplotlib's Agg canvas, no pyplot), so the variable is
    left out of that import and put back after it, with a warning naming it. Nothing is done
    once matplotlib is imported. Raises what the import raises otherwise."""
    if "matplotlib" in sys.modules:
        return
    matplotlib_folder()
    try:
        import matplotlib  # noqa: F401
    except ValueError as e:
        backend = os.environ.get(MATPLOTLIB_BACKEND_ENV)
        if not backend:
            raise
        log.warning("%s=%r names no backend matplotlib knows (%s); hubensemble's figures need "
                    "none (drawn on matplotlib's Agg canvas), so it is left out for them: "
                    "unset it, or set one of matplotlib's (e.g. agg), for your own plots",
                    MATPLOTLIB_BACKEND_ENV, backend, str(e).split(";")[0])
        # The failed import's half-made submodules go too: importing again over them fails
        # ("module 'matplotlib' has no attribute '_docstring'").
        for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
            del sys.modules[name]
        del os.environ[MATPLOTLIB_BACKEND_ENV]
        try:
            import matplotlib  # noqa: F401,F811
        finally:
            os.environ[MATPLOTLIB_BACKEND_ENV] = backend
