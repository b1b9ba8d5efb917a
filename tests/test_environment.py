"""Environment variables that name folders, caches and URLs: `~` expanded, checked up front,
named in messages; a user cache that cannot be written never stops a run."""

import os

import numpy as np
import pytest

from hubensemble import cost, rank
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.zoo import zoo_root


@pytest.fixture(scope="module")
def task():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def spec(module_factory):
    return ModuleSpec(name="env-tiny", handle=module_factory("env-tiny", seed=7, width=5))


def entries(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder)
                  for f in fs if f.endswith(".npy"))


def test_a_tilde_in_a_cache_or_zoo_variable_is_the_home_folder(tmp_path, monkeypatch, task,
                                                               spec):
    """A new-user check: HUBENSEMBLE_CACHE_DIR="~/c" (quoted: the shell leaves it) made a
    folder literally named ./~/c; HUBENSEMBLE_ZOO_DIR expanded it, the caches did not."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", "~/c")
    monkeypatch.setenv("HUBENSEMBLE_COST_CACHE", "~/cost")
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", "~/zoo")
    assert rank.default_cache_dir() == str(home / "c")
    assert cost.default_cache_dir() == str(home / "cost")
    assert zoo_root() == home / "zoo"
    result = rank.embed(spec, task, profile="quick")
    assert not result.cache_hit and len(entries(home / "c")) == 1
    assert os.listdir(work) == []  # no ./~ folder
    assert rank.embed(spec, task, profile="quick").cache_hit

    # Unset, the caches are under $XDG_CACHE_HOME, itself expanded.
    for name in ("HUBENSEMBLE_CACHE_DIR", "HUBENSEMBLE_COST_CACHE", "HUBENSEMBLE_ZOO_DIR"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", "~/xdg")
    assert rank.default_cache_dir() == str(home / "xdg" / "hubensemble" / "embeddings")
    assert cost.default_cache_dir() == str(home / "xdg" / "hubensemble" / "cost")
    assert zoo_root() == home / "xdg" / "hubensemble" / "zoo"
    assert np.array_equal(rank.embed(spec, task, profile="quick").embeddings,
                          result.embeddings)
    assert os.listdir(work) == []
