"""Preset zoos in the user cache: built once under a lock, then reused (zoo:PRESET/NAME)."""

from __future__ import annotations

import logging
import pathlib
import shutil

from hubensemble.errors import ModuleLoadError, checks_keywords
from hubensemble.fileio import make_dirs
from hubensemble.zoo.builder import (BUILD_LOCK_TIMEOUT, build_lock, build_zoo, is_zoo,
                                     remove_free_build_lock, zoo_difference)
from hubensemble.zoo.config import (PRESETS, preset, zoo_dir, zoo_folder_hint,
                                    zoo_handle_problem)
from hubensemble.text import did_you_mean, escaped

log = logging.getLogger(__name__)


def is_cached(preset_name: str) -> bool:
    """True when the user cache holds the current zoo of a preset (`zoo_difference` of
    ``zoo_dir(preset_name)`` and the preset with its default seed is None): `ensure_zoo`
    then returns it without building. Raises HubensembleError for an unknown preset."""
    return zoo_difference(zoo_dir(preset_name), preset(preset_name)) is None


def ensure_zoo(preset_name: str, *, progress: bool = True,
               purpose: str | None = None) -> pathlib.Path:
    """The cached zoo folder of a preset (``zoo_dir(preset_name)``), built first if it is not
    there or is not current (`is_cached`: a zoo whose zoo.json records another recipe, e.g.
    one built there by hand with another seed, is rebuilt, as `build_zoo` would) — once,
    under a file lock, so a second process waits and reuses it. A current zoo's free build
    lock file (NAME.lock, left by a build killed after its zoo was in place) is removed
    (`remove_free_build_lock`); one another process holds stays.

    ``purpose`` is shown on the build's progress bar (see `build_zoo`). Raises
    ModuleLoadError for an unknown preset (listing the presets), TimeoutError when another
    process holds the build lock for longer than BUILD_LOCK_TIMEOUT, and what `build_zoo`
    raises.
    """
    if preset_name not in PRESETS:
        raise ModuleLoadError(f"unknown zoo preset {preset_name!r}"
                              f"{did_you_mean(preset_name, PRESETS)}; presets: "
                              f"{', '.join(PRESETS)}", handle=f"zoo:{preset_name}/")
    folder = zoo_dir(preset_name)
    if is_cached(preset_name):
        remove_free_build_lock(folder)  # a build killed after its zoo was in place left it
        return folder
    make_dirs(folder.parent, zoo_folder_hint(folder, preset_name))  # the lock's folder
    # Generous timeout: another process may be building this very zoo right now. build_zoo
    # takes the same lock (a no-op here, nested) and removes its file as it ends.
    with build_lock(folder, timeout=BUILD_LOCK_TIMEOUT):
        if not is_cached(preset_name):
            if folder.exists() and not is_zoo(folder):
                shutil.rmtree(folder)  # not a finished zoo: nothing in it can be trusted
            log.info("building the %s zoo into %s%s", preset_name, escaped(folder),
                     f" for {purpose}" if purpose else "")
            # A finished zoo of another recipe is replaced by build_zoo, which says why.
            build_zoo(preset_name, folder, progress=progress, purpose=purpose)
    return folder


@checks_keywords
def module_path(preset_name: str, name: str) -> str:
    """The SavedModel folder (str) of module ``name`` of a preset zoo (``zoo:PRESET/NAME``),
    building the zoo into the user cache on first use (its progress bar names the handle).

    Raises ModuleLoadError for an unknown preset or module (`zoo_handle_problem`: the presets,
    or the closest name or else every name) and, with stage "savedmodel", for a module
    missing from a cached zoo.
    """
    handle = f"zoo:{preset_name}/{name}"
    problem = zoo_handle_problem(handle)  # the words of `catalogue validate`, "did you mean"
    if problem:
        raise ModuleLoadError(problem, handle=handle)
    path = ensure_zoo(preset_name, purpose=handle) / name
    if not (path / "saved_model.pb").is_file():
        raise ModuleLoadError(f"{path} is missing from the cached zoo; delete {path.parent} "
                              "to rebuild it", handle=handle, stage="savedmodel")
    return str(path)


def cli_build(preset_name: str, out=None, seed: int | None = None, progress: bool = True,
              workers: int | None = None) -> pathlib.Path:
    """Entry point of ``hubensemble zoo build --preset P [--out DIR] [--seed S]``: `build_zoo`
    of the preset; returns the zoo folder."""
    return build_zoo(preset_name, out, seed=seed, progress=progress, workers=workers)
