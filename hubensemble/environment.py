"""Folders named by environment variables, read in one place (TensorFlow-free).

Every folder an environment variable names (HUBENSEMBLE_CACHE_DIR, HUBENSEMBLE_COST_CACHE,
HUBENSEMBLE_ZOO_DIR, XDG_CACHE_HOME) is read through `path_from_environment`, which expands a
leading `~` as the shell does not in ``VAR="~/c"`` (a folder literally named ``./~/c`` was
made); the path options of the command line are expanded by `arguments.Parser`.
"""

from __future__ import annotations

import os
from typing import Mapping


def path_from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The folder or file (str) environment variable `name` names, a leading `~` expanded, or
    None when it is unset or empty (the caller's default applies)."""
    value = (os.environ if environ is None else environ).get(name, "")
    return os.path.expanduser(value) if value else None


def user_cache_dir(*parts: str) -> str:
    """``$XDG_CACHE_HOME/PARTS…``, else ``~/.cache/PARTS…`` (str, `~` expanded)."""
    root = path_from_environment("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(root, *parts)
