"""A catalogue file that does not exist: the near name beside it is offered (one place:
catalogue_files.read_catalogue_file, for every command taking --catalogue and Python's)."""

import pytest

from hubensemble.catalogue import load_catalogue
from hubensemble.cli import main
from hubensemble.errors import CatalogueError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "cat.yaml").write_text("modules: []\n")
    (tmp_path / "notes.txt").write_text("not a catalogue\n")
    (tmp_path / "cat.yaml.d").mkdir()  # a folder is no catalogue file
    return tmp_path


@pytest.mark.parametrize("typed", ["cat.yml", "ca.yaml", "Cat.yaml"])
def test_a_missing_catalogue_file_offers_the_near_one(folder, typed):
    """A new-user check (490): `catalogue validate cat.yml` (cat.yaml there) said only "no
    such file; check the path", where a mistyped handle is offered its near name."""
    with pytest.raises(CatalogueError) as e:
        load_catalogue(folder / typed)
    assert str(e.value) == (f"{folder / typed}: cannot read the catalogue: no such file; "
                            f"check the path; did you mean {folder / 'cat.yaml'}?")


def test_a_missing_catalogue_file_with_nothing_near_says_only_no_such_file(folder):
    with pytest.raises(CatalogueError) as e:
        load_catalogue(folder / "zoo.yml")
    assert str(e.value).endswith("no such file; check the path"), e.value


@pytest.mark.parametrize("command", [["catalogue", "validate"], ["catalogue", "list"],
                                     ["rank", "--data", "sklearn:digits", "--catalogue"]])
def test_every_command_taking_a_catalogue_offers_the_near_name(
        folder, monkeypatch, capsys, command):
    monkeypatch.chdir(folder)
    if command[0] == "rank":
        command = ["rank", "--out", str(folder / "run"), *command[1:]]
    assert main([*command, "cat.yml"]) != 0
    err = capsys.readouterr().err
    assert f"did you mean {folder / 'cat.yaml'}?" in err, err
    assert not (folder / "run").exists()
