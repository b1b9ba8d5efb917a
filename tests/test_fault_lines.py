"""One convention of where a broken catalogue entry is cited, by rank and validate alike: the
field's line where a field is at fault (a handle with nothing there: its `handle:` line), the
entry's otherwise; and the same words for a relative handle with nothing there. rank cited
bad1.yaml:2 (the entry) where validate cited bad1.yaml:3 (its handle), and named the handle
"'./m' (relative to the catalogue's folder: /cats/m)" where validate said "'./m' (/cats/m,
relative to the catalogue's folder)"."""

from hubensemble.catalogue import FAULT_FIELDS, load_catalogue
from hubensemble.catalogue_here import WEIGHTS_STAGE, missing_here
from hubensemble.modulefiles import local_handle_warnings


def test_a_missing_handle_is_cited_at_its_line_in_the_same_words(tmp_path):
    # Fails before: no fault_source (the entry's line alone), and rank's other words.
    path = tmp_path / "bad1.yaml"
    path.write_text("modules:\n  - name: m0\n    handle: ./mods/missing\n"
                    "  - name: m1\n    family: other\n    handle: ./mods/gone\n")
    specs = load_catalogue(path)
    [(s0, e0), (s1, e1)] = missing_here(specs)
    assert [s.fault_source(e.stage) for s, e in ((s0, e0), (s1, e1))] == [
        f"{path}:3", f"{path}:6"]  # the `handle:` lines, as validate's
    warnings = local_handle_warnings(specs)
    for spec, error, warning in zip(specs, (e0, e1), warnings):
        assert warning.startswith(f"warning: {spec.fault_source(error.stage)}: "), warning
        said = str(error.message).removesuffix("; check the path")
        assert said in warning, (said, warning)  # one description of the handle


def test_a_fault_of_no_one_field_is_cited_at_the_entry(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("modules:\n  - name: m0\n    handle: ./m\n    sha256: " + "a" * 64 + "\n")
    [spec] = load_catalogue(path)
    assert spec.fault_source("load") == spec.source == f"{path}:2"
    assert spec.fault_source("unsafe") == f"{path}:2"  # trust: not written, the entry's
    assert spec.fault_source("checksum") == f"{path}:4"  # the sha256 pin the files miss
    assert FAULT_FIELDS[WEIGHTS_STAGE] == "weights"  # the stage's name is catalogue_here's


def test_rank_cites_a_missing_handle_at_its_line_as_validate_does(tmp_path, tiny_module,
                                                                  in_process):
    # Fails before: rank's failed row (ranking.json, and its line on the terminal) cited
    # bad1.yaml:2, the entry, where validate cites bad1.yaml:3, the handle.
    import json
    import shutil

    shutil.copytree(tiny_module, tmp_path / "mods" / "m1")
    path = tmp_path / "bad1.yaml"
    path.write_text("modules:\n  - name: m0\n    handle: ./mods/missing\n"
                    "  - name: m1\n    handle: ./mods/m1\n")
    code, out, err = in_process("rank", "--catalogue", path, "--data", "sklearn:digits",
                                "--out", tmp_path / "run", "--k", "1")
    rows = json.loads((tmp_path / "run" / "ranking.json").read_text())
    rows = rows["modules"]
    [failed] = [r for r in rows if r["name"] == "m0"]
    assert failed["source"] == f"{path}:3", failed
    assert f"{path}:3" in out + err and f"{path}:2" not in out + err, out + err
