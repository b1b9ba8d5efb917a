"""A catalogue's relative handle (`handle: ./mods/m0`) is named as the user wrote it by every
stage that reads the run's record, in any process: the entry keeps the written form
(`ModuleSpec.written`, run.json's "modules"), where only the process that read the catalogue
knew it (a memo in handlehere) and a later tune/export/predict named the absolute path alone.
A later process is the memo emptied here: no subprocess."""

import json
from dataclasses import replace
import shutil

import pytest

from hubensemble import handlehere
from hubensemble.catalogue import ModuleSpec, load_catalogue
from hubensemble.catalogue_here import MOVED_HINT, missing_here, moved_hint
from hubensemble.errors import ModuleLoadError


@pytest.fixture
def ranked(tmp_path, tiny_module, monkeypatch, in_process):
    """A run ranked from c.yaml's `handle: ./mods/m0`, then, as in a later process, the
    memo of this one emptied and mods/m0 moved away (shutil.move: a real folder)."""
    shutil.copytree(tiny_module, tmp_path / "mods" / "m0")
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n")
    code, _, err = in_process("rank", "--catalogue", tmp_path / "c.yaml", "--data",
                              "sklearn:digits", "--out", tmp_path / "run", "--k", "1")
    assert code == 0, err
    monkeypatch.setattr(handlehere, "_WRITTEN", {})  # another process: nothing read yet
    monkeypatch.setattr(handlehere, "_RECORDED", set())
    shutil.move(tmp_path / "mods" / "m0", tmp_path / "moved_m0")
    return tmp_path


def test_a_later_process_names_a_runs_module_as_the_catalogue_wrote_it(ranked):
    # Fails before: "/…/mods/m0 does not exist; check the path, or put the module back …",
    # the absolute path alone (run.json held no written form).
    from hubensemble.hub import ModuleRuntime
    from hubensemble.rundir import Run
    from hubensemble.runspecs import module_spec

    entry = json.loads((ranked / "run" / "run.json").read_text())["modules"]["m0"]
    assert entry["written"] == "./mods/m0" and entry["handle"] == str(ranked / "mods" / "m0")
    spec = module_spec(Run(str(ranked / "run")), "m0")
    assert spec.written == "./mods/m0"
    with pytest.raises(ModuleLoadError) as err:
        ModuleRuntime.from_spec(spec)
    gone = ranked / "mods" / "m0"
    assert err.value.message == (f"'./mods/m0' ({gone}, relative to the catalogue's folder) "
                                 f"does not exist; check the path{moved_hint()}"), err.value
    [(_, before)] = missing_here([spec])  # the check before TensorFlow says the same
    assert str(before) == str(err.value)


def test_a_record_without_the_written_form_still_loads_and_says_the_path(tmp_path):
    # A run ranked before the field: its entry has no "written"; read as before.
    entry = {"name": "m0", "handle": str(tmp_path / "mods" / "m0"), "source": "c.yaml:2"}
    spec = ModuleSpec.from_json(entry)
    assert spec.written is None and "written" not in spec.to_json()
    [(_, said)] = missing_here([spec], recorded=True)
    assert f"{tmp_path / 'mods' / 'm0'} does not exist; check the path{MOVED_HINT}" in str(said)


def test_the_written_form_describes_the_entry_and_is_recorded(tmp_path):
    # Two catalogues reaching one module alike are the same entry (written is not compared);
    # an absolute handle records no written form; a written form that is no relative path
    # is refused naming the field.
    (tmp_path / "sub").mkdir()
    one, two = tmp_path / "one.yaml", tmp_path / "sub" / "two.yaml"
    one.write_text("modules:\n  - name: a\n    handle: ./m\n")
    two.write_text(f"modules:\n  - name: a\n    handle: {tmp_path / 'm'}\n")
    [a], [b] = load_catalogue(one), load_catalogue(two)
    assert replace(a, source="") == replace(b, source="")
    assert a.written == "./m" and b.written is None
    assert ModuleSpec.from_json(a.to_json()).written == "./m"
    assert "written" not in b.to_json()
    with pytest.raises(ValueError, match="field 'written'"):
        ModuleSpec(name="a", handle=str(tmp_path / "m"), written=str(tmp_path / "m"))
