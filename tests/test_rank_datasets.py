"""Rank's resized splits (`rank.embeddings._Datasets`): kept within one budget for the run,
whatever the number of resolutions, with the same pixels and embeddings as keeping them all."""

import numpy as np

from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.hub import ModuleRuntime, locate_spec
from hubensemble.rank.embeddings import _Datasets, _forward_all

# Interleaved as a catalogue's modules may be: 12 px comes back after it was freed.
SIDES = [(12, 12), (16, 16), (20, 20), (12, 12), (24, 24), (16, 16), (20, 20)]


def test_rank_keeps_its_resized_splits_within_one_budget(tiny_module):
    """Each resolution fitting alone was kept for the whole run (ten of 512 MB: 5 GB); the
    budget is now one, the least recently used resolution freed first, and every embedding
    equals the one computed with every resolution kept."""
    task = load_task("sklearn:digits")
    n = len(task.train)
    nbytes = {hw: n * hw[0] * hw[1] * 3 * 4 for hw in SIDES}
    budget = nbytes[(16, 16)] + nbytes[(20, 20)]  # two of the four, not three
    within = _Datasets(task, 64, budget=budget)
    unbounded = _Datasets(task, 64, budget=1 << 40)
    spec = ModuleSpec(name="tiny", handle=tiny_module)
    runtime = ModuleRuntime.from_spec(spec, files=locate_spec(spec))
    most = 0
    for hw in SIDES:
        got = _forward_all(runtime, within.get("train", hw), hw)
        most = max(most, within.kept_bytes())
        assert within.kept_bytes() <= budget
        want = _forward_all(runtime, unbounded.get("train", hw), hw)
        assert got.shape == (n, 8)
        np.testing.assert_array_equal(got, want)
    assert most == budget  # 16 and 20 px together: the budget is used, not undercut
    assert unbounded.kept_bytes() == sum(nbytes[hw] for hw in set(SIDES)) > budget
    # One that does not fit alone is streamed, not kept, and frees nothing.
    big = (64, 64)
    before = within.kept_bytes()
    x = _forward_all(runtime, within.get("train", big), big)
    assert within.kept_bytes() == before and x.shape == (n, 8)
