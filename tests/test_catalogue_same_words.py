"""`catalogue validate`'s and `catalogue add`'s duplicate warning and rank's duplicate reason
are one rule (`samemodule.same_module_pairs`) in one wording (`samemodule.duplicate_reason`):
a new user (470) read validate's "rank embeds and ranks it once" and rank's "ranked once, as
…; leave one of them out of the catalogue" as two findings. No TensorFlow."""

import types

from hubensemble.samemodule import duplicate_reason, same_module_note
from hubensemble.zoo.config import validate_catalogues


def test_validate_says_a_module_listed_twice_in_ranks_words_for_each_spelling(tmp_path):
    """The same folder by its absolute path, with a trailing '/', by a relative path (relative
    to the file's folder) and through a link, and a tfhub.dev URL with and without its '/':
    each later entry is said once, naming both FILE:LINEs, in rank's words."""
    (tmp_path / "m").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "m")
    path = tmp_path / "cat.yaml"
    path.write_text("modules:\n"
                    f"  - {{name: a, handle: {tmp_path / 'm'}}}\n"
                    f"  - {{name: b, handle: {tmp_path / 'm'}/}}\n"
                    "  - {name: c, handle: ./m}\n"
                    "  - {name: d, handle: ./link}\n"
                    "  - {name: e, handle: 'https://tfhub.dev/google/bit/m-r50x1/1'}\n"
                    "  - {name: f, handle: 'https://tfhub.dev/google/bit/m-r50x1/1/'}\n")
    said = []
    validate_catalogues([str(path)], lambda line, ok: said.append(line))
    dupes = [line for line in said if "loads the same module" in line]
    local = str((tmp_path / "m").resolve())
    hub = "https://tfhub.dev/google/bit/m-r50x1/1"
    want = [(n, line, "a", 2, local) for n, line in (("b", 3), ("c", 4), ("d", 5))]
    want.append(("f", 7, "e", 6, hub))
    assert dupes == [
        f"warning: {path}:{line}: entry '{n}' loads the same module as entry '{first}' "
        f"({path}:{at}), read the same way (the same handle {h}): ranked once, as "
        f"'{first}'; leave one of them out of the catalogue"
        for n, line, first, at, h in want], said


def test_the_warning_is_ranks_duplicate_reason_after_the_entrys_name():
    """One wording: validate's and add's note is rank's reason (`duplicate_reason`), pins
    too, except that before loading a pin that differs is not yet known to be the wrong one."""
    a = types.SimpleNamespace(name="a", source="c.yaml:2", handle="keras:ResNet50", sha256=None)
    b = types.SimpleNamespace(name="b", source="c.yaml:5", handle="keras:ResNet50", sha256=None)
    why = "the same handle keras:ResNet50"
    assert same_module_note(b, a, why) == f"entry 'b' {duplicate_reason(a, why, later=b)}"
    b.sha256, a.sha256 = "ab" * 32, "cd" * 32
    note = same_module_note(b, a, why)
    assert "their sha256 differ (abababababab… here, cdcdcdcdcdcd… at c.yaml:2)" in note, note
    assert "is not the module's" in duplicate_reason(a, why, later=b)
