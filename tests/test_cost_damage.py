"""A damaged RUN/cost.json (a hand edit, a cut file, a newer hubensemble's): every reader names
the field, what it holds and what it should, in words (no Python error's), and the way on it
names, `hubensemble cost --run RUN`, works pasted: it moves the file aside, kept, and writes it
again (it refused in the same words: the way on looped, 2026-12-08)."""

import json
import re

import pytest

from hubensemble.catalogue import ModuleSpec
from hubensemble.cost.records import COST_FORMAT_VERSION, Cost, read_run_costs
from hubensemble.cost.stage import run_cost
from hubensemble.errors import RunError
from hubensemble.formats import versions
from hubensemble.hub import write_hub_module

from conftest import make_tiny_model
from test_cost import fake_run

RECORD = Cost("m", "f" * 64, 8, 3, 13848, 251, {"1": 0.2, "64": 0.4}, "a", head_macs=24).to_json()
FILE = {"format": "hubensemble-cost", "format_version": 1, "count_version": 2,
        "written_by": "0.2.0", "machine": {"id": "a"}, "candidates": {"t0": RECORD},
        "failed": {}}
#: Words of a Python error that reached the user in a refusal.
PYTHON = re.compile(r"TypeError|ValueError|KeyError|AttributeError|OverflowError|argument must"
                    r"|NoneType|invalid literal|could not convert")


def _with(field, value):
    return {**FILE, "candidates": {"t0": {**RECORD, field: value}}}


#: (the file's text, words the refusal says of it).
FAULTS = [
    ("{\"format\": \"hubensemble-cost\", \"cand", "is unreadable ("),
    ("[1, 2]", "is not a cost file written by hubensemble"),
    (json.dumps({k: v for k, v in FILE.items() if k != "candidates"}),
     "is damaged: its 'candidates' is missing, expected an object"),
    (json.dumps({**FILE, "candidates": None}), "its 'candidates' is null, expected an object"),
    (json.dumps({**FILE, "candidates": [RECORD]}),
     "its 'candidates' is a JSON array, expected an object"),
    (json.dumps({**FILE, "failed": ["t1"]}), "its 'failed' is a JSON array, expected an object"),
    (json.dumps({**FILE, "machine": "a"}), "its 'machine' is a JSON string, expected an object"),
    (json.dumps({**FILE, "candidates": {"t0": 5}}),
     "candidate t0: malformed cost record: it is a JSON number, expected an object"),
    (json.dumps({**FILE, "format_version": 99, "written_by": versions()["hubensemble"]}),
     "is damaged: its 'format_version' is 99, and hubensemble"),
    (json.dumps({**FILE, "format_version": "1"}), "its 'format_version' is '1', expected a whole"),
] + [(json.dumps(_with(field, value)),
      f"candidate t0: malformed cost record: its {field!r} is {shown}, expected {expected}")
     for field, value, shown, expected in [
         ("size", None, "null", "a whole number >= 1"),
         ("size", "8", '"8"', "a whole number >= 1"),
         ("num_classes", None, "null", "a whole number >= 1"),
         ("num_classes", 2.5, "2.5", "a whole number >= 1"),
         ("params", None, "null", "a whole number >= 0"),
         ("params", -1, "-1", "a whole number >= 0"),
         ("params", True, "true", "a whole number >= 0"),
         ("macs", "13848", '"13848"', "a whole number >= 0 or null"),
         ("head_macs", [24], "a JSON array", "a whole number >= 0 or null"),
         ("latency_ms", "3", '"3"', "an object"),
         ("module", 3, "3", "text or null"),
         ("fingerprint", {}, "a JSON object", "text or null"),
         ("machine", 1, "1", "text or null"),
         ("macs_not_counted", False, "false", "text or null")]] + [
    (json.dumps(_with("latency_ms", {"1": None})),
     "its 'latency_ms' at batch 1 is null, expected a number of ms >= 0"),
    (json.dumps(_with("macs", float("inf"))).replace("Infinity", "1e400"),
     "its 'macs' is Infinity (a number past a float's range), expected a whole number"),
]


@pytest.mark.parametrize("text, said", FAULTS)
def test_each_fault_of_a_cost_file_is_named_in_words_with_a_way_on(tmp_path, text, said):
    # Fails before: a null count was "malformed cost record (TypeError: int() argument must
    # be … not 'NoneType')", "candidates" missing read as none costed, and every way on was
    # "… writes it again (delete it first)", where `cost` refused in the same words.
    (tmp_path / "cost.json").write_text(text)
    with pytest.raises(RunError) as refused:
        read_run_costs(tmp_path)  # what ensemble, report, export and distill read it with
    message = str(refused.value)
    assert said in message and not PYTHON.search(message), message
    assert message.endswith(f"run_cost(run_dir={str(tmp_path)!r}) writes it again (it moves "
                            "this one aside to cost.json.damaged-<time>)"), message
    assert "delete it" not in message


def test_a_null_count_of_this_versions_shape_is_read_as_not_counted(tmp_path):
    # "macs": null (flops and gflops null) without "macs_not_counted", as 474 edited it:
    # "malformed cost record (TypeError: …)" before; now a count not made, as this version
    # writes one, which a GFLOPs budget leaves out in words.
    edited = {**RECORD, "macs": None, "flops": None, "gflops": None}
    (tmp_path / "cost.json").write_text(json.dumps({**FILE, "candidates": {"t0": edited}}))
    cost = read_run_costs(tmp_path, say_outdated=False).costs["t0"]
    assert cost.macs is None and cost.gflops is None and cost.params == 251
    assert cost.not_counted() == "no reason recorded"
    assert cost.to_json()["macs_not_counted"] == "no reason recorded"


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return write_hub_module(make_tiny_model(seed=0, width=8),
                            str(tmp_path_factory.mktemp("damage") / "conv8"))


@pytest.mark.parametrize("kind", ["damaged", "newer"])
def test_cost_moves_a_file_it_cannot_read_aside_and_writes_it_again(
        module_dir, tmp_path, kind, caplog):
    # Fails before: `cost` refused a damaged or newer cost.json with the readers' words, its
    # own command the way on (a loop unless the user deleted the file).
    run = fake_run(tmp_path / "run", {"conv8": ModuleSpec(name="conv8", handle=module_dir)},
                   [("t0", "conv8", 8), ("t1", "conv8", 8)])
    text = (json.dumps({**FILE, "format_version": COST_FORMAT_VERSION + 1,
                        "written_by": "9.1.0"}) if kind == "newer"
            else json.dumps(_with("size", None)))
    (run.path / "cost.json").write_text(text)
    with pytest.raises(RunError):
        read_run_costs(run.path)
    with caplog.at_level("WARNING"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert set(summary.costs) == {"t0", "t1"}
    assert set(read_run_costs(run.path).costs) == {"t0", "t1"}  # read by every reader now
    aside = [p for p in run.path.iterdir() if p.name.startswith("cost.json.")]
    prefix = "cost.json.damaged-" if kind == "damaged" else (
        f"cost.json.format-{COST_FORMAT_VERSION + 1}-")
    assert len(aside) == 1 and aside[0].name.startswith(prefix), aside
    assert aside[0].read_text() == text  # nothing the user made is lost
    said = [r.getMessage() for r in caplog.records if "moved it to" in r.getMessage()]
    assert len(said) == 1 and str(aside[0]) in said[0], said
    what = ("is of cost file format 2, written by hubensemble 9.1.0" if kind == "newer"
            else "candidate t0: malformed cost record: its 'size' is null")
    assert what in said[0] and not PYTHON.search(said[0]), said
