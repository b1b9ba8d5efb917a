"""A relative handle that does not exist and reads as TF Hub's PUBLISHER/MODEL/VERSION is told
its tfhub.dev URL wherever it is given (handlehere's one rule), each caller in its own words:
`catalogue add` (the whole command on the command line), `catalogue validate` and rank (a
catalogue's FILE:LINE and "write handle: …"), a Python call."""

import shlex

import pytest

from hubensemble.catalogue import load_catalogue
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


def test_validate_and_rank_tell_a_catalogues_tfhub_slug_its_url(tmp_path):
    from hubensemble.catalogue_here import missing_here
    from hubensemble.modulefiles import local_handle_warnings
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  - name: a\n    handle: {SLUG}\n"
                    f"  - name: c\n    handle: {tmp_path.parent}/x/{SLUG}\n"
                    f"  - name: d\n    handle: abc\n")
    specs = load_catalogue(path)
    notes = local_handle_warnings(specs)
    assert notes[0] == (f"warning: {path}:3: handle '{tmp_path / SLUG}' does not exist on this "
                        f"machine (read as a local path: for TF Hub's module write handle: "
                        f"{URL}); rank will skip it here"), notes
    assert len(notes) == 3 and not any("TF Hub's" in n for n in notes[1:]), notes
    reasons = [str(e) for _, e in missing_here(specs)]
    assert reasons[0].endswith(f"{tmp_path / SLUG} does not exist (read as a local path: for "
                               f"TF Hub's module write handle: {URL})"), reasons
    assert len(reasons) == 3 and not any("TF Hub's" in r for r in reasons[1:]), reasons


def test_a_dotted_path_is_no_tfhub_slug():
    # "./google/bit/m-r50x1/1" was told handle='https://tfhub.dev/./google/bit/m-r50x1/1'.
    from hubensemble.handlehere import tfhub_url, unnamed_handle
    assert tfhub_url(SLUG) == URL
    for path in (f"./{SLUG}", f"../{SLUG}", "google/../m/1"):
        assert tfhub_url(path) is None
        assert "TF Hub's module" not in str(unnamed_handle(path, "/nonexistent-cwd"))
