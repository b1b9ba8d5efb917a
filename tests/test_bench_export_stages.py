"""tools/benchmarks/bench_export_stages.py: its refusals, and the stages it cuts the export's
CPU into (a pure function of the marks the export's calls leave)."""

import sys
from pathlib import Path

import pytest

from test_benchmarks import _script

BENCH = Path(__file__).resolve().parents[1] / "tools" / "benchmarks"


@pytest.mark.parametrize("args, message", [
    (["--members", "7"], "argument --members: must be an integer in [1, 6], got '7'"),
    (["--run", "{tmp}", "--kind", "zoo"], "--members and --kind make members here; --run "
                                          "exports the run's"),
    (["--run", "{tmp}", "--members", "2"], "--members and --kind make members here"),
    (["--repeats", "0"], "argument --repeats: must be an integer >= 1, got '0'"),
    (["--profile", "0"], "argument --profile: must be an integer >= 1, got '0'"),
])
def test_a_bad_argument_is_a_usage_error_before_any_member_is_built(args, message, tmp_path):
    code, out, err = _script("bench_export_stages.py",
                             *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 2 and message in err and not out, (code, out, err)
    assert "Traceback" not in err and "TensorFlow" not in err


def test_stages_of_cuts_the_cpu_at_each_mark_and_folds_a_repeated_stage():
    sys.path.insert(0, str(BENCH))
    try:
        from bench_export_stages import stages_of
    finally:
        sys.path.remove(str(BENCH))
    marks = [("save", 1.0), ("reload", 3.0), ("warmup: serve_bytes", 4.5), ("rest", 5.0),
             ("latency", 5.25), ("rest", 6.0)]
    stages = stages_of(marks, 0.5, 6.5)
    assert stages == {"prepare": 0.5, "save": 2.0, "reload": 1.5, "warmup: serve_bytes": 0.5,
                      "rest": 0.75, "latency": 0.75}
    assert sum(stages.values()) == pytest.approx(6.0)  # every CPU second in one stage
    assert list(stages)[:3] == ["prepare", "save", "reload"]  # in the order they ran
