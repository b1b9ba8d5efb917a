"""A module a run recorded and that moved since is told to be put back, never "did you mean"
a sibling folder (another network: pasting it swaps models); a path a Python call passes now
is told in a call's words (no run, no list of handle schemes for a path written as one)."""

import shutil

import pytest

from hubensemble.catalogue_here import MOVED_HINT
from hubensemble.errors import ModuleLoadError


@pytest.fixture
def two_modules(tmp_path, module_factory, monkeypatch):
    """/tmp/…/mods/m0 and m1, two different networks, and the working folder there."""
    for i in range(2):
        shutil.copytree(module_factory(f"moved{i}", seed=i, width=6 + i),
                        tmp_path / "mods" / f"m{i}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_runs_module_moved_beside_another_is_told_to_be_put_back_not_the_other(
        two_modules, in_process):
    # User 474: rank, `mv mods/m0 moved_m0`, then tune/export: "…/mods/m0 does not exist;
    # did you mean …/mods/m1?", and tune discarded its finished work. Fails before: the
    # "did you mean" of m1 (a run's reader, as tune and export read their modules).
    from hubensemble.hub import ModuleRuntime
    from hubensemble.rundir import Run
    from hubensemble.runspecs import module_spec

    root = two_modules
    (root / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n"
                                 "  - {name: m1, handle: ./mods/m1}\n")
    code, _, err = in_process("rank", "--catalogue", root / "c.yaml", "--data", "sklearn:digits",
                              "--out", root / "run", "--k", "1")
    assert code == 0, err
    (root / "mods" / "m0").rename(root / "moved_m0")
    spec = module_spec(Run(str(root / "run")), "m0")
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.from_spec(spec)
    gone = root / "mods" / "m0"
    assert err.value.stage == "local path" and err.value.message.endswith(
        f"{gone}, relative to the catalogue's folder) does not exist; check the path"
        f"{MOVED_HINT}, or point the catalogue's handle at its new place and call "
        "hubensemble.fit(…) again (the same module is no change)"), err.value  # as written
    assert "m1" not in str(err.value)
    from hubensemble.catalogue_here import missing_here

    [(_, before)] = missing_here([spec])  # a check before TensorFlow says the same
    assert str(before) == str(err.value)
    # A catalogue read since names the path as typed now: rank's words, its sibling offered.
    from hubensemble.catalogue import load_catalogue

    [typed] = [s for s in load_catalogue(root / "c.yaml") if s.name == "m0"]
    [(_, now)] = missing_here([typed])
    assert f"did you mean {root / 'mods' / 'm1'}?" in str(now), str(now)


def test_a_path_a_call_passes_is_told_in_a_calls_words(two_modules):
    # load_module("./mods/m") said "is neither a URL nor a handle of a known scheme …" and ~600
    # characters of schemes; load_module("/abs/gone") "a run loads each module from the path
    # it was ranked from" (no run); a sibling was offered as "/cwd/./mods/m0". Fails before.
    from hubensemble.hub import HubLayer, load_module

    root = two_modules
    for handle in ("./mods/m", "mods/m2"):
        where = root / "mods" / handle.rsplit("/", 1)[1]
        want = (f"{handle!r} (relative to the working folder: {where}) does not exist; "
                f"did you mean {handle.rsplit('/', 1)[0]}/m")  # m0 or m1, as it wrote mods/
        with pytest.raises(ModuleLoadError) as loaded:
            load_module(handle)
        with pytest.raises(ValueError) as layer:
            HubLayer(handle)
        for said in (str(loaded.value), str(layer.value)):
            assert want in said and said.endswith("?"), said
            assert "scheme" not in said and "/./" not in said, said
    with pytest.raises(ModuleLoadError) as loaded:
        load_module(str(root / "mods" / "gone"))
    assert loaded.value.message == f"{root / 'mods' / 'gone'} does not exist; check the path"
    with pytest.raises(ModuleLoadError) as loaded:
        load_module(str(root / "mods" / "." / "m2"))
    assert f"; did you mean {root / 'mods' / 'm'}" in str(loaded.value), loaded.value
    # A bare name, no folder of it here: still the handle forms it may have meant.
    with pytest.raises(ModuleLoadError) as loaded:
        load_module("abc")
    assert "neither a URL nor a handle of a known scheme" in str(loaded.value)
