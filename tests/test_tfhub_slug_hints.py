"""A relative handle that does not exist and reads as TF Hub's PUBLISHER/MODEL/VERSION is told
its tfhub.dev URL wherever it is given (handlehere's one rule), each caller in its own words:
`catalogue add` (the whole command on the command line), `catalogue validate` and rank (a
catalogue's FILE:LINE and "write handle: …"), a Python call."""

import shlex

import pytest

from hubensemble.errors import CatalogueError

SLUG = "google/bit/m-r50x1/1"
URL = f"https://tfhub.dev/{SLUG}"


def test_catalogue_add_of_a_tfhub_slug_is_told_the_command_with_its_url(
        tmp_path, in_process, monkeypatch):
    # It said only "cannot add 'google/bit/m-r50x1/1': /tmp/w/google/bit/m-r50x1/1 does not
    # exist" (a new user's check).
    from hubensemble.catalogue_writer import check_add, check_new_entries
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process("catalogue", "add", "--to", "new.yaml", SLUG)
    assert code == 2 and f"does not exist; for TF Hub's module run `hubensemble catalogue " \
        f"add --to new.yaml {URL}`" in err, err
    command = shlex.split(err.split("`")[1])
    check_new_entries(command[5:])  # the handle it suggests is taken
    with pytest.raises(CatalogueError, match=f"does not exist; for TF Hub's module pass "
                                             f"'{URL}'$"):
        check_add("new.yaml", [SLUG])
    for path in ("abc", f"./{SLUG}", str(tmp_path / SLUG)):  # a path, no slug: no URL
        with pytest.raises(CatalogueError) as refused:
            check_new_entries([path])
        assert "TF Hub's module" not in str(refused.value), refused.value
    (tmp_path / SLUG).mkdir(parents=True)  # a folder of that name is what it names
    check_new_entries([SLUG])


def test_catalogue_add_of_a_mistyped_handle_is_told_the_whole_command(
        tmp_path, in_process, monkeypatch):
    # `catalogue add --to new.yaml keras:MobileNetV3small` was told "write
    # keras:MobileNetV3Small instead", a catalogue's words.
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process("catalogue", "add", "--to", "new.yaml", "--weights", "imagenet",
                              "keras:MobileNetV3small", "zoo:demo/b")
    assert code == 2 and "not a keras.applications architecture; run `hubensemble catalogue "\
        "add --to new.yaml --weights imagenet keras:MobileNetV3Small zoo:demo/b` instead" in err
    assert "write" not in err, err


def test_a_dotted_path_is_no_tfhub_slug():
    # "./google/bit/m-r50x1/1" was told handle='https://tfhub.dev/./google/bit/m-r50x1/1'.
    from hubensemble.handlehere import tfhub_url, unnamed_handle
    assert tfhub_url(SLUG) == URL
    for path in (f"./{SLUG}", f"../{SLUG}", "google/../m/1"):
        assert tfhub_url(path) is None
        assert "TF Hub's module" not in str(unnamed_handle(path, "/nonexistent-cwd"))
