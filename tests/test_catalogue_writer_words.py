"""The words of `catalogue add`'s refusals before any module is loaded
(`catalogue_writer.check_new_entries`) and of a local path's near name
(`pathnotes.sibling_note`), as `catalogue validate` says them."""

import pytest

from hubensemble.catalogue import ModuleSpec
from hubensemble.catalogue_writer import check_new_entries
from hubensemble.errors import CatalogueError
from hubensemble.handlewarnings import local_handle_warnings
from hubensemble.lockwords import command_line
from hubensemble.pathnotes import sibling_note


@pytest.mark.parametrize("written", ["./mods/m", "mods/m"])
def test_a_missing_handle_to_add_is_offered_its_near_name(tmp_path, written):
    # `catalogue add ./mods/m --to new.yaml` beside mods/m0 said only "…/mods/m does not
    # exist"; `catalogue validate` of the same handle offers mods/m0.
    (tmp_path / "mods" / "m0").mkdir(parents=True)
    with command_line(), pytest.raises(CatalogueError) as refused:
        check_new_entries([written], base_dir=str(tmp_path), to="new.yaml")
    said = str(refused.value)
    assert f"{tmp_path / 'mods' / 'm'} does not exist" in said
    assert f"did you mean {tmp_path / 'mods' / 'm0'}?" in said, said


def test_a_missing_handle_with_no_near_name_is_said_as_before(tmp_path):
    with pytest.raises(CatalogueError) as refused:
        check_new_entries(["./nothing"], base_dir=str(tmp_path))
    assert str(refused.value).endswith(f"{tmp_path / 'nothing'} does not exist")


def test_the_near_name_of_a_path_is_said_normalised(tmp_path):
    # "/w/./mods/m" was offered "/w/./mods/m0": the path as joined, not as anyone writes it.
    (tmp_path / "mods" / "m0").mkdir(parents=True)
    (tmp_path / "mods" / "w0.weights.h5").write_bytes(b"")
    assert sibling_note(f"{tmp_path}/./mods/m") == f"; did you mean {tmp_path}/mods/m0?"
    assert sibling_note(f"{tmp_path}/x/../mods/m/") == f"; did you mean {tmp_path}/mods/m0?"
    spec = ModuleSpec(name="a", handle=f"{tmp_path}/./mods/m")
    notes = local_handle_warnings([spec])
    assert f"did you mean {tmp_path}/mods/m0?" in notes[0], notes
    assert "/./" not in notes[0].split("did you mean")[1]
    weights = ModuleSpec(name="b", handle="keras:MobileNetV3Small",
                         weights=f"{tmp_path}/./mods/w.weights.h5")
    notes = local_handle_warnings([weights])
    assert f"did you mean {tmp_path}/mods/w0.weights.h5?" in notes[0], notes


def test_a_relative_near_name_keeps_its_written_start(tmp_path, monkeypatch):
    (tmp_path / "mods" / "m0").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert sibling_note("./mods/./m") == "; did you mean ./mods/m0?"
    assert sibling_note("mods/m") == "; did you mean mods/m0?"


@pytest.mark.parametrize("fields,line,python", [
    # a field's name inside the value refused was read as the field to pass: `--name
    # 'weights: x'` was told "argument --name: '--weights 'x'"'"'' may only contain …"
    ({"name": "weights: x"},
     "argument --name: 'weights: x' may only contain letters",
     "keyword name: 'weights: x' may only contain letters"),
    ({"name": "trust: true"},
     "argument --name: 'trust: true' may only contain letters",
     "keyword name: 'trust: true' may only contain letters"),
])
def test_a_refused_value_is_said_as_given_not_read_for_a_field(fields, line, python):
    with command_line(), pytest.raises(CatalogueError) as refused:
        check_new_entries(["keras:VGG16"], **fields)
    assert line in str(refused.value), str(refused.value)
    with pytest.raises(CatalogueError) as refused:
        check_new_entries(["keras:VGG16"], **fields)
    assert python in str(refused.value), str(refused.value)


def test_a_refused_handle_is_said_as_given_not_read_for_a_field(tmp_path):
    # `catalogue add 'handle: x '` was told "''x '"'"' has leading or trailing spaces; run
    # `… '"'"'handle: x'"'"'`' instead": the handle's "handle: " read as the field.
    with command_line(), pytest.raises(CatalogueError) as refused:
        check_new_entries(["handle: x "], base_dir=str(tmp_path), to="n.yaml")
    assert str(refused.value) == ("'handle: x ' has leading or trailing spaces; run "
                                  "`hubensemble catalogue add --to n.yaml 'handle: x'` instead")
