"""A run ranked before catalogue entries recorded the written form of a relative handle
(`ModuleSpec.written`) holds no "written": the same catalogue read now is no change of the
entry, so fit's resume and a new ranking over tuned candidates go on (they compare entries
with `rank.pool.entry_changes`)."""

from hubensemble.catalogue import load_catalogue
from hubensemble.rank.pool import entry_changes


def test_a_relative_handles_written_form_is_no_change_of_the_entry(tmp_path):
    # Fails before: ['written'], so fit on a run ranked before the field was refused as
    # "the entry of m0 changed (written)" with nothing changed.
    (tmp_path / "mods" / "m0").mkdir(parents=True)
    (tmp_path / "c.yaml").write_text("modules:\n  - {name: m0, handle: ./mods/m0}\n")
    [spec] = load_catalogue(str(tmp_path / "c.yaml"))
    now = spec.to_json()
    assert now["written"] == "./mods/m0"
    before = {k: v for k, v in now.items() if k != "written"}  # a record of an older run
    assert entry_changes(before, now) == []
    assert entry_changes(now, {**now, "handle": str(tmp_path / "mods" / "m1")}) == ["handle"]
