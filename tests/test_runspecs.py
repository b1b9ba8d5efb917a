"""The stages after rank as a hand edit or a Python caller meets them: run.json's catalogue
entries read as ModuleSpecs (`runspecs`), its tune record's profile (`runprofile.run_profile`)
and stage records, each refused in one line naming run.json, the field (the module, the trial)
and the way on; a stage function's unknown keyword named with the function."""

import json
import re

import pytest

from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import RunError
from hubensemble.rundir import Run
from hubensemble.runspecs import catalogue_entries, module_spec, module_specs

ENTRY = {"name": "m", "handle": "/modules/m", "output_dim": 8}


def run_with(tmp_path, modules):
    (tmp_path / "run.json").write_text(json.dumps({"modules": modules}))
    return Run(tmp_path)


def test_entries_read_as_the_catalogue_reads_them(tmp_path):
    run = run_with(tmp_path, {"m": ENTRY})
    assert module_specs(run) == {"m": ModuleSpec.from_json(ENTRY)}
    assert module_spec(run, "m", "t1") == ModuleSpec.from_json(ENTRY)
    assert catalogue_entries(Run(tmp_path / "none")) == {}


@pytest.mark.parametrize("modules, name, said", [
    ({"m": "m"}, "m", r"the catalogue entry of module 'm' \(trial t1\) is damaged \(a JSON "
                      r"string, expected an object\)"),
    ({"m": {**ENTRY, "colour": 1}}, "m", r"the catalogue entry of module 'm' \(trial t1\) is "
                                         r"damaged \(unknown ModuleSpec field 'colour'"),
    ({"m": {**ENTRY, "output_dim": "eight"}}, "m", r"module 'm' \(trial t1\) is damaged"),
    ([ENTRY], "m", r"its \"modules\" record is a JSON array, expected an object"),
    ({"m": ENTRY}, "n", r"has no catalogue entry for module 'n' \(trial t1\)"),
])
def test_a_hand_edit_is_named_with_the_file_and_the_way_on(tmp_path, modules, name, said):
    """Before, each stage parsed the entries itself: a string entry was a ValueError
    traceback, and "modules" a list an AttributeError (tune) or "no entry" (export)."""
    run = run_with(tmp_path, modules)
    where = re.escape(str((tmp_path / "run.json").resolve()))
    with pytest.raises(RunError, match=rf"^{where}.*{said}.*; (restore run\.json from a copy, "
                                       r"or )?.*rank.* again$"):
        module_spec(run, name, "t1")
    if name == "m":
        with pytest.raises(RunError, match=where):
            module_specs(run)


@pytest.mark.parametrize("tune, said", [
    ({"profile": "quick"}, r'the "profile" of its "tune" record is a JSON string'),
    (["x"], r'"tune" is a JSON array')])
def test_a_hand_edited_tune_record_names_run_json_for_the_runs_profile(tmp_path, tune, said):
    """runprofile.run_profile, which tune, rank and fit ask for the run's profile, raised
    AttributeError on "tune": {"profile": "quick"} or "tune": ["x"]: it names run.json and the
    field now, as it did a profile record it could not read. Fails before: AttributeError."""
    from hubensemble.runprofile import run_profile

    (tmp_path / "run.json").write_text(json.dumps({"tune": tune}))
    with pytest.raises(RunError, match=rf"run\.json: {said}, expected an object; restore "):
        run_profile(Run(tmp_path))


@pytest.mark.parametrize("meta", [{"stages": "x"}, {"stages": {"export": ["x"]}},
                                  {"stages": {"export": {"done": True}}, "export": "y"}])
def test_fits_check_of_an_older_export_reads_a_hand_edited_record_as_none(tmp_path, meta):
    """fit's check whether the export it finds is its own older one read run.json's
    "stages" and "export" without asking their kind: a hand edit stopped it with
    AttributeError. It reads them as the stage records' one reader does (not read, said) and
    finds no export of its own. Fails before: AttributeError."""
    from hubensemble.exportfolder import older_fits_own_export

    (tmp_path / "run.json").write_text(json.dumps(meta))
    assert older_fits_own_export(Run(tmp_path), str(tmp_path / "export"),
                                 {"members": [], "created": "x"}) is None


def test_a_stage_functions_unknown_keyword_names_the_function(tmp_path):
    """merge_rankings(shards, out, k=3) and run_tune(run, bogus=1) said only "got an
    unexpected keyword argument 'k'": the stage decorators bind the call first and bind's
    words name no function, where Python's own call does. Fails before: no name."""
    from hubensemble.rank import merge_rankings
    from hubensemble.tune import run_tune

    with pytest.raises(TypeError, match=r"^merge_rankings\(\) got an unexpected keyword "
                                        r"argument 'k'$"):
        merge_rankings([str(tmp_path / "s")], str(tmp_path / "o"), k=3)
    with pytest.raises(TypeError, match=r"^run_tune\(\) got an unexpected keyword argument "
                                        r"'bogus'$"):
        run_tune(str(tmp_path), bogus=1)
    assert not (tmp_path / "o").exists()
