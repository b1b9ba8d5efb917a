"""RUN/cost.json's format version: this version reads a file of format 1 written by an older
hubensemble and its own files (with a count not made), and refuses a later format in words
naming the version that wrote it, where it read one without looking at the number."""

import json
import re

import pytest

from hubensemble.cost.records import (COST_FORMAT_VERSION, Cost, read_run_costs,
                                      write_run_costs)
from hubensemble.errors import RunError
from hubensemble.formats import versions

#: A RUN/cost.json as hubensemble 0.2.0 wrote it, by hand: format 1, no head sizes, every
#: count made.
OLDER = {
    "format": "hubensemble-cost", "format_version": 1, "count_version": 2,
    "written_by": "0.2.0", "definition": {},
    "machine": {"id": "0123456789ab", "host": "h", "cpu": "c", "cores": 2,
                "tensorflow": "2.20.0"},
    "candidates": {"t0": {"module": "m", "fingerprint": "f" * 64, "size": 8,
                          "num_classes": 3, "macs": 13848, "flops": 27696,
                          "gflops": 2.7696e-05, "params": 251,
                          "latency_ms": {"1": 0.2, "64": 0.4}, "machine": "0123456789ab"}},
    "failed": {"t1": "cannot load"},
}


def test_a_format_1_file_of_an_older_hubensemble_is_read(tmp_path):
    (tmp_path / "cost.json").write_text(json.dumps(OLDER))
    recorded = read_run_costs(tmp_path, say_outdated=False)
    cost = recorded.costs["t0"]
    assert (cost.macs, cost.params, cost.size, cost.head_macs) == (13848, 251, 8, None)
    assert cost.gflops == 2 * 13848 / 1e9 and cost.latency(64) == 0.4
    assert recorded.failed == {"t1": "cannot load"} and recorded.count_version == 2
    del OLDER["format_version"]  # a hand-written file without one: format 1
    try:
        (tmp_path / "cost.json").write_text(json.dumps(OLDER))
        assert read_run_costs(tmp_path, say_outdated=False).costs == recorded.costs
    finally:
        OLDER["format_version"] = 1


def test_this_versions_file_with_a_count_not_made_is_read_back(tmp_path):
    costs = {"t0": Cost("m", None, 8, 3, 13848, 251, {"1": 0.2, "64": 0.4}, "a", head_macs=24),
             "t1": Cost("n", None, 8, 3, None, 99, {"1": 0.1, "64": 0.3}, "a", head_macs=24,
                        macs_not_counted="TensorFlow 9.9 has no freezing")}
    path = write_run_costs(tmp_path, costs, {"id": "a", "tensorflow": versions()["tensorflow"]})
    data = json.loads(open(path).read())
    assert data["format_version"] == COST_FORMAT_VERSION
    assert data["candidates"]["t1"]["macs"] is None
    assert read_run_costs(tmp_path).costs == costs


@pytest.mark.parametrize("writer", ["9.1.0", None])
def test_a_later_format_is_refused_naming_its_writer(tmp_path, writer):
    (tmp_path / "cost.json").write_text(json.dumps(
        {**OLDER, "format_version": COST_FORMAT_VERSION + 1, "written_by": writer}))
    with pytest.raises(RunError) as refused:
        read_run_costs(tmp_path)
    said = str(refused.value)
    assert (f"cost.json is of cost file format {COST_FORMAT_VERSION + 1}, written by "
            + (f"hubensemble {writer}" if writer else "a newer hubensemble")
            + f"; this hubensemble ({versions()['hubensemble']}) reads format "
            f"{COST_FORMAT_VERSION} and older: upgrade hubensemble to read it, or ") in said
    assert said.endswith(f"writes it again (it moves this one aside to cost.json.format-"
                         f"{COST_FORMAT_VERSION + 1}-<time>, for the newer hubensemble)")


def test_a_later_format_this_version_wrote_is_an_edit(tmp_path):
    ours = versions()["hubensemble"]
    (tmp_path / "cost.json").write_text(json.dumps(
        {**OLDER, "format_version": COST_FORMAT_VERSION + 1, "written_by": ours}))
    with pytest.raises(RunError, match=(
            rf"cost.json is damaged: its 'format_version' is {COST_FORMAT_VERSION + 1}, and "
            rf"hubensemble {re.escape(ours)}, which wrote it, writes format "
            rf"{COST_FORMAT_VERSION}; .*writes it again")):
        read_run_costs(tmp_path)


@pytest.mark.parametrize("version", ["1", 0, True, 1.5, None])
def test_a_format_version_that_is_no_whole_number_is_damage(tmp_path, version):
    (tmp_path / "cost.json").write_text(json.dumps({**OLDER, "format_version": version}))
    with pytest.raises(RunError, match=r"cost.json is damaged: its 'format_version' is .*, "
                       r"expected a whole number >= 1; .*writes it again"):
        read_run_costs(tmp_path)
