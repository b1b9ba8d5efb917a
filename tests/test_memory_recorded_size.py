"""The memory notes read a recorded "input_size" (an export metadata's member, run.json's
module) through `memory.recorded_size`: one edited by hand into a number or "HxW" is the size
it reads as, anything else no size; `tuple(224)` raised TypeError, taken for a damaged file,
and the note was dropped without a word. Files only."""
import json

import pytest

from hubensemble import memory
from test_memory import GIB, _run_of

#: A recorded size as a hand edit may leave it, and the size the note counts it at.
EDITED = [(224, (224, 224)), ("224x224", (224, 224)), ([224, 224], (224, 224)),
          ("abc", None), ([224, 224, 3], None), ([0, 224], None), (None, None), (True, None)]


@pytest.mark.parametrize("value, size", EDITED)
def test_a_recorded_size_reads_as_the_catalogue_reads_it(value, size):
    assert memory.recorded_size(value) == size


@pytest.mark.parametrize("value", [224, "224x224"])
def test_evaluates_note_counts_a_size_edited_into_a_number(tmp_path, value):
    """evaluate of a 5-member export on a 2 GiB machine: the note of members recorded at
    [224, 224] (test_memory's), said alike when one is recorded as 224 or "224x224"."""
    run = _run_of(tmp_path)
    metadata = run / "export" / "assets" / "hubensemble.json"
    room = memory.Room(2 * GIB, "the cgroup limit in X")
    members = [{"trial": f"t{i}", "module": "mobilenet", "input_size": [224, 224]}
               for i in range(5)]
    metadata.write_text(json.dumps({"members": members}))
    words = memory.stage_memory_note("evaluate", run / "export", {}, room=room)
    assert words and "evaluate runs the export's 5 members" in words
    metadata.write_text(json.dumps({"members": [{**members[0], "input_size": value},
                                                *members[1:]]}))
    assert memory.stage_memory_note("evaluate", run / "export", {}, room=room) == words


def test_exports_and_tunes_notes_count_a_module_size_edited_into_a_number(tmp_path):
    """run.json's module "input_size" edited into 224: export's and tune's notes as for
    [224, 224] (they were dropped: TypeError)."""
    run = _run_of(tmp_path)
    room = memory.Room(int(1.6 * GIB), "the cgroup limit in X")
    said = {c: memory.stage_memory_note(c, run, {}, room=room) for c in ("export", "tune")}
    assert all(said.values()), said
    meta = json.loads((run / "run.json").read_text())
    meta["modules"]["mobilenet"]["input_size"] = 224
    (run / "run.json").write_text(json.dumps(meta))
    assert {c: memory.stage_memory_note(c, run, {}, room=room) for c in said} == said
