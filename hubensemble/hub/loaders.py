"""keras-hub's own loaders of ``kaggle://…`` and ``hf://…`` presets (kagglehub and
huggingface_hub): what they keep in their caches, and what they print.

Each keeps the files it fetched in a cache of its own (kagglehub: ``$KAGGLEHUB_CACHE``,
default ~/.cache/kagglehub; huggingface_hub: ``$HF_HUB_CACHE``, default
~/.cache/huggingface/hub) and serves them from there on every later call, without asking
the server. A file that came whole but is not the preset's (a sign-in or Wi-Fi portal page
answered with HTTP 200) therefore failed every later run the same way, with no request made,
until the user found and deleted a folder deep in that cache. `preset_files_problem` names
such a file as soon as it is fetched, and `drop_preset` removes a preset that cannot be used
from its loader's cache, through the loader's own cache code, so that the next run fetches it
again (as `resolvers.download_dropped_if_unloadable` does for hubensemble's own downloads).

`quiet_loaders` makes the loaders' own terminal output (kagglehub's "Downloading to …" and
progress bars, huggingface_hub's progress bars) follow hubensemble's progress setting for
one fetch.

Both use the loaders' internals, so setup.cfg's keras-hub extra allows only the releases the
tests ran on (kagglehub 1.0.2, which keras-hub 0.32.0's kagglesdk pin keeps; huggingface_hub
1.33.0 to 2.5.0). A release outside
that range that lacks what is used here is left as it is (its bars show, its waits are not
capped): the fetch goes on, where it failed halfway with an AttributeError.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import threading

# The preset folder's files (`preset_files_problem`, the shards): hubensemble.modulefiles,
# TensorFlow-free, as `catalogue validate` checks a local preset with them too.
from hubensemble.modulefiles import (PRESET_JSON_FILES, PRESET_SHARDS_INDEX,  # noqa: F401
                                     PRESET_WEIGHTS_FILE, preset_files_problem,
                                     preset_weight_files, shard_names)

log = logging.getLogger(__name__)


def drop_preset(handle, folder) -> str:
    """Removes the fetched preset ``handle`` (``kaggle://…`` or ``hf://…``), whose files are
    the folder ``folder``, from its loader's cache, through that loader's own cache code:
    kagglehub's ``cache.delete_from_cache`` (each file and its completion marker, then the
    version's folder), huggingface_hub's ``scan_cache_dir().delete_revisions(…)`` (the
    snapshot, its refs and the blobs no other revision uses). Returns the words for the
    error: that it was removed and the next run fetches it again, or, where removing is not
    safe (the folder is not where that loader's cache keeps the handle, e.g. Kaggle's
    read-only /kaggle/input, or the removal failed), the exact folder to delete. Raises
    nothing."""
    folder = os.path.abspath(folder)
    try:
        if handle.startswith("kaggle://"):
            where, why = "kagglehub's cache", _drop_kaggle(handle[len("kaggle://"):], folder)
        elif handle.startswith("hf://"):
            where, why = "huggingface_hub's cache", _drop_hf(folder)
        else:
            return f"delete {folder} so that it is fetched again"
    except Exception as e:  # noqa: BLE001 - the loaders raise their own types; the words stay
        where, why = "its loader's cache", f"removing it failed: {type(e).__name__}: {e}"
    if why is None:
        log.info("removed the unusable preset %s from %s (%s)", handle, where, folder)
        return (f"its files were removed from {where} ({folder}), so the next run fetches "
                "them again")
    return (f"its files stay at {folder} ({why}): delete that folder so that the next run "
            "fetches them again")


def _drop_kaggle(kaggle_handle, folder) -> str | None:
    from kagglehub import cache
    from kagglehub.handle import parse_model_handle

    # keras-hub's kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]: kagglehub keeps the
    # files of the version it resolved in CACHE/models/OWNER/…/VARIATION/VERSION.
    parts = kaggle_handle.strip("/").split("/")
    version = os.path.basename(folder)
    if len(parts) not in (4, 5) or not version.isdigit():
        return "not kagglehub's folder of a model version"
    versioned = parse_model_handle("/".join(parts[:4] + [version]))
    if os.path.abspath(cache.get_cached_path(versioned)) != folder:
        return f"not where kagglehub's cache ({cache.get_cache_folder()}) keeps it"
    for root, _, files in os.walk(folder):
        for name in files:  # each file's completion marker too
            cache.delete_from_cache(versioned, os.path.relpath(os.path.join(root, name), folder))
    cache.delete_from_cache(versioned)  # what is left, and the version's own marker
    return None


_HF_SNAPSHOT = re.compile(r"^(models|datasets|spaces)--.+/snapshots/[0-9a-f]{40}$")


def _drop_hf(folder) -> str | None:
    from huggingface_hub import scan_cache_dir

    root, commit = os.path.dirname(os.path.dirname(os.path.dirname(folder))), \
        os.path.basename(folder)
    if not _HF_SNAPSHOT.match(os.path.relpath(folder, root).replace(os.sep, "/")):
        return "not a snapshot folder of huggingface_hub's cache"
    target, scanned = os.path.realpath(folder), scan_cache_dir(root)
    for repo in scanned.repos:
        for revision in repo.revisions:
            if os.path.realpath(revision.snapshot_path) == target:
                scanned.delete_revisions(commit).execute()
                return None
    return f"huggingface_hub's scan of {root} does not list it"


class _Held:
    """A change to another library's process-wide state, held while at least one block asks
    for it, in any thread: the first block makes it (``apply()``, which returns the callable
    that undoes it), the last to end undoes it. Blocks of several threads overlap (a preset
    fetch abandoned at its deadline goes on in its thread while the next starts): each
    putting back what it saw at its start undid the change under the other, or put a quiet
    state back for good."""

    def __init__(self, apply):
        self._apply, self._undo, self._count = apply, None, 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def held(self):
        from hubensemble.errors import held_stops

        with self._lock:
            if not self._count:
                self._undo = self._apply()
            self._count += 1
        try:
            yield
        finally:  # whole (errors.held_stops): a Ctrl-C here left the change for good
            with held_stops(), self._lock:
                self._count -= 1
                if not self._count:
                    undo, self._undo = self._undo, None
                    undo()


@contextlib.contextmanager
def quiet_loaders(quiet: bool):
    """While the block runs, and only then, keras-hub's loaders print no progress when
    ``quiet`` (hubensemble's progress setting is off: -q, progress=False, no command):
    kagglehub's INFO lines ("Downloading to …") and its tqdm bars, and huggingface_hub's
    download bars (its ``disable_progress_bars`` of the "huggingface_hub" group). Their
    warnings still show. A user's explicit choice stays: ``KAGGLEHUB_VERBOSITY`` set, or
    ``HF_HUB_DISABLE_PROGRESS_BARS=0``. The setting is the process's: while any thread is in
    such a block, other threads fetching are quiet too, and everything is put back as it was
    when the last such block ends (`sources.fetch_preset` enters it in the fetch's own thread,
    which an abandoned fetch keeps to its end)."""
    if not quiet:
        yield
        return
    with _QUIET.held():
        yield


def _quiet_both():
    undo_kaggle = _quiet_kagglehub()
    try:
        undo_hf = _quiet_huggingface_hub()
    except BaseException:
        undo_kaggle()
        raise

    def undo():
        try:
            undo_hf()
        finally:
            undo_kaggle()

    return undo


def _nothing():
    pass


def _quiet_kagglehub():
    try:
        from kagglehub import clients
    except ImportError:  # not installed: nothing of it prints
        return _nothing
    # kagglehub reads KAGGLEHUB_VERBOSITY once, at import, into its logger's level; its
    # download bars are tqdm's, made in kagglehub.clients with no switch of their own
    # (tqdm's TQDM_DISABLE too is read once, at import): that module's tqdm is a disabled one
    # while quiet.
    logger = logging.getLogger("kagglehub")
    level = logger.level
    bar = getattr(clients, "tqdm", None)
    if "KAGGLEHUB_VERBOSITY" not in os.environ:
        logger.setLevel(max(level, logging.WARNING))
    if bar is not None:
        clients.tqdm = _disabled(bar)

    def undo():
        logger.setLevel(level)
        if bar is not None:
            clients.tqdm = bar

    return undo


def _disabled(bar_class):
    def bar(*args, **kwargs):
        kwargs["disable"] = True
        return bar_class(*args, **kwargs)

    return bar


def _quiet_huggingface_hub():
    try:
        from huggingface_hub import constants

        # The module (huggingface_hub.utils' own name `tqdm` is its class).
        hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")
    except ImportError:
        return _nothing
    if getattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", None) is False:  # the user asked
        return _nothing  # for its bars
    states = getattr(hf_tqdm, "progress_bar_states", None)
    if not isinstance(states, dict) or not callable(getattr(hf_tqdm, "disable_progress_bars",
                                                            None)):
        # A release outside setup.cfg's tested range without them: its bars show, the fetch
        # goes on.
        log.debug("huggingface_hub %s has no progress_bar_states: its bars are not made quiet",
                  _hf_version())
        return _nothing
    # Its group states exactly as they were after: disable_progress_bars' own exit turns the
    # group on again, clearing any sub-group a user had set.
    states = dict(states)
    hf_tqdm.disable_progress_bars("huggingface_hub")

    def undo():
        hf_tqdm.progress_bar_states.clear()
        hf_tqdm.progress_bar_states.update(states)

    return undo


def _hf_version() -> str:
    import huggingface_hub

    return getattr(huggingface_hub, "__version__", "(of no version)")


_QUIET = _Held(_quiet_both)


class RetryAfterTooLong(Exception):
    """An answer of huggingface_hub's request asked to wait longer than hubensemble waits
    (`remote.MAX_RETRY_AFTER`): raised in place of huggingface_hub's own wait. ``response``
    is the answer (its status and Retry-After read by `remote.http_status` and
    `remote.retry_after`)."""

    def __init__(self, response):
        super().__init__(f"the server answered HTTP {response.status_code} with Retry-After: "
                         f"{response.headers.get('Retry-After')}")
        self.response = response


@contextlib.contextmanager
def capped_loader_waits():
    """While the block runs, huggingface_hub waits no longer than hubensemble does for one
    answer: its own retries (``utils._http._http_backoff_base``, 1.33.0 to 2.5.0) sleep the
    answer's Retry-After + 1 s, up to 5 times (an answer of HTTP 503 with ``Retry-After:
    3600``: 5 h), whatever HUBENSEMBLE_DOWNLOAD_DEADLINE says. A response hook on the clients
    it makes (its ``set_client_factory``, the factory it had wrapped, and put back after)
    raises `RetryAfterTooLong` for an answer of `remote.TRANSIENT_STATUSES` asking to wait
    more than `remote.MAX_RETRY_AFTER` s, the rule of every other download. A release without
    ``set_client_factory`` (before 1.0: requests' sessions, whose retries wait 1 to 8 s and
    read no Retry-After) is left uncapped. Its records are shown once (`_records_once`).
    kagglehub tries nothing again (1.0.2, 1.0.3): its answers go through
    `remote.with_retries`, which holds the same cap. As `quiet_loaders`, the process's: held
    while any thread is in such a block, put back when the last ends."""
    with _CAPPED.held():
        yield


def _cap_waits():
    try:
        from huggingface_hub.utils import _http as hf_http
    except ImportError:
        return _nothing
    from hubensemble.hub import remote

    def hook(response):
        wait = remote.retry_after_seconds(response.headers.get("Retry-After"))
        if (response.status_code in remote.TRANSIENT_STATUSES and wait is not None
                and wait > remote.MAX_RETRY_AFTER):
            raise RetryAfterTooLong(response)

    made = getattr(hf_http, "_GLOBAL_CLIENT_FACTORY", None) or getattr(
        hf_http, "default_client_factory", None)
    undo_records = _records_once()
    if made is None or not callable(getattr(hf_http, "set_client_factory", None)):
        # Before 1.0 (requests' sessions, no client factory) its retries wait 1 to 8 s and
        # read no Retry-After: nothing to cap. A later release without them: uncapped, and
        # the fetch goes on, not an AttributeError mid-fetch.
        log.debug("huggingface_hub %s has no set_client_factory: its waits are not capped",
                  _hf_version())
        return undo_records

    def factory():
        client = made()
        hooks = getattr(client, "event_hooks", None)
        if isinstance(hooks, dict):  # httpx's / httpx2's Client (1.0 on)
            client.event_hooks = {**hooks, "response": [*hooks.get("response", []), hook]}
        return client

    try:
        hf_http.set_client_factory(factory)  # closes the client made before: the next is hooked
    except BaseException:
        undo_records()
        raise

    def undo():
        try:
            undo_records()
        finally:
            hf_http.set_client_factory(made)

    return undo


def _records_once():
    # huggingface_hub's loggers hand each record to a StreamHandler of its own and, as every
    # logger, on to the root logger's handlers: under hubensemble's (the commands', which
    # also write RUN/log.txt) each of its warnings ("Retrying in 1s …") was shown twice, raw
    # and as "WARNING huggingface_hub.utils._http: …". Its own handler is taken off while
    # capped when the root logger has a handler, so they are shown once, hubensemble's way.
    logger = logging.getLogger("huggingface_hub")
    own = list(logger.handlers) if logging.getLogger().handlers and logger.propagate else []
    for handler in own:
        logger.removeHandler(handler)

    def undo():
        for handler in own:
            logger.addHandler(handler)

    return undo


_CAPPED = _Held(_cap_waits)
