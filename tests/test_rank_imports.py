"""preflight may import resume (the fit checks before TensorFlow) with no import cycle: no
module resume reaches (rank, through rank.reuse) imports preflight back."""

import os

from test_hub import import_cycles, import_graph

import hubensemble


def test_preflight_can_import_resume_without_an_import_cycle():
    # rank/merge.py imported preflight.recorded_spec: preflight -> resume -> rank.reuse ->
    # rank -> rank.merge -> preflight. Fails before: that cycle.
    graph = import_graph(os.path.dirname(hubensemble.__file__))
    graph["hubensemble.preflight"] = graph["hubensemble.preflight"] | {"hubensemble.resume"}
    assert import_cycles(graph) == []
    assert "hubensemble.preflight" not in graph["hubensemble.rank.merge"]
    # The leaf it reads from: nothing of the stages' checks.
    assert graph["hubensemble.recordedspec"] <= {"hubensemble.errors", "hubensemble.rundir"}
