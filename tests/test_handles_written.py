"""A catalogue's relative handle is named as the file wrote it and as it is read (relative to
the catalogue's folder) wherever it is refused, and a path written as a path ("./…") is never
told TF Hub's URL: the catalogue keeps only the absolute path, whose slug looked like one."""

import pytest

from hubensemble.catalogue import load_catalogue
from hubensemble.catalogue_here import missing_here
from hubensemble.modulefiles import local_handle_warnings

SLUG = "google/bit/m-r50x1/1"


def test_a_dotted_relative_handle_is_a_path_named_as_written_and_as_read(tmp_path):
    # `handle: ./google/bit/m-r50x1/1` was told "for TF Hub's module write handle:
    # https://tfhub.dev/google/bit/m-r50x1/1" by validate and rank, naming only
    # /cats/google/bit/m-r50x1/1. Fails before: the TF Hub hint.
    path = tmp_path / "c.yaml"
    path.write_text(f"modules:\n  - name: a\n    handle: ./{SLUG}\n"
                    f"  - name: b\n    handle: mods/m\n")
    specs = load_catalogue(path)
    read = [tmp_path / SLUG, tmp_path / "mods/m"]
    assert [s.handle for s in specs] == [str(p) for p in read]  # still kept absolute
    notes = local_handle_warnings(specs)
    assert notes == [f"warning: {path}:{line}: handle '{written}' ({where}, relative to the "
                     "catalogue's folder) does not exist on this machine; rank will skip it "
                     "here" for line, written, where in ((3, f"./{SLUG}", read[0]),
                                                         (5, "mods/m", read[1]))], notes
    reasons = [str(e) for _, e in missing_here(specs)]
    for reason, written, where in zip(reasons, (f"./{SLUG}", "mods/m"), read):
        assert reason.endswith(f"'{written}' ({where}, relative to the catalogue's folder) "
                               "does not exist; check the path"), reason
        assert "TF Hub" not in reason, reason


def test_the_written_handle_is_no_part_of_the_entry(tmp_path):
    # Like `lines`, the handle as written is a comment of the entry: two catalogues that
    # reach one module alike are the same entries, and run.json holds the absolute path.
    (tmp_path / "sub").mkdir()
    one, two = tmp_path / "one.yaml", tmp_path / "sub" / "two.yaml"
    one.write_text("modules:\n  - name: a\n    handle: ./m\n")
    two.write_text(f"modules:\n  - name: a\n    handle: {tmp_path / 'm'}\n")
    a, b = load_catalogue(one)[0], load_catalogue(two)[0]
    assert a.handle == b.handle and a.to_json()["handle"] == str(tmp_path / "m")
    assert a.to_json()["written"] == "./m" and "written" not in b.to_json()  # run.json: both


def test_a_runs_module_folder_that_moved_is_told_the_way_on(tmp_path, tiny_module):
    # tune, export and predict load a run's modules from run.json's absolute paths
    # (ModuleSpec.from_json); a folder moved since said only "P does not exist; check the
    # path", where rank, before TensorFlow, names the way on. Both say it now, alike.
    # Fails before: no MOVED_HINT in the loader's words.
    import shutil

    from hubensemble.catalogue import ModuleSpec
    from hubensemble.catalogue_here import moved_hint
    from hubensemble.errors import ModuleLoadError
    from hubensemble.hub import ModuleRuntime

    shutil.copytree(tiny_module, tmp_path / "m")
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: a, handle: ./m}\n")
    recorded = ModuleSpec.from_json(load_catalogue(tmp_path / "c.yaml")[0].to_json())
    ModuleRuntime.from_spec(recorded)  # it loads while the folder is there
    (tmp_path / "m").rename(tmp_path / "elsewhere")
    (tmp_path / "c.yaml").write_text(f"modules:\n  - {{name: a, handle: {tmp_path / 'm'}}}\n")
    load_catalogue(tmp_path / "c.yaml")  # (a catalogue read since that writes it absolute)
    try:
        ModuleRuntime.from_spec(recorded)
    except ModuleLoadError as e:
        said = e
    assert said.stage == "local path" and said.message == (
        f"{tmp_path / 'm'} does not exist; check the path{moved_hint()}"), said
    [(_, before)] = missing_here([recorded])  # rank's words before TensorFlow: the same
    assert str(before) == str(said)
    (tmp_path / "elsewhere").rename(tmp_path / "m")  # the way on taken: put back, it loads
    ModuleRuntime.from_spec(recorded)


@pytest.mark.parametrize("handle", [
    "HTTPS://TFHub.dev/google/bit/m-r50x1/1/", "https://www.kaggle.com/models/google/bit/"
    "tensorFlow2/m-r50x1/1", "kaggle:google/bit/tensorFlow2/m-r50x1/1",
    "https://host/m.tar.gz?tf-hub-format=compressed", "gs://b/m", "keras:MobileNetV3Small",
    "zoo:demo/r8x2-generalist-0", "hf://keras/x", "./mods/m", "~/m", "file:///tmp/m"])
def test_a_handle_as_a_run_records_it_is_accepted_again(handle, tmp_path):
    # Task 5's decision: ModuleRuntime.load and locate add no form check of their own; a
    # run's handles are checked where they are read (ModuleSpec.from_json, as a catalogue's).
    # What the current code records must pass that check unchanged, or a run written today
    # would be refused by its own tune/export/predict.
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.handles import check_handle_form, stored_handle

    stored = stored_handle(handle, tmp_path)
    check_handle_form(stored)
    assert stored_handle(stored, tmp_path / "elsewhere") == stored
    spec = ModuleSpec(name="a", handle=stored)
    assert ModuleSpec.from_json(spec.to_json()).handle == stored
