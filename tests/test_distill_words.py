"""The words of `hubensemble distill`'s summary table (`distillcompare.format_distill`)."""

from hubensemble.cost import Cost
from hubensemble.distill import format_distill


def test_a_gflops_count_not_made_is_said_below_the_distill_table():
    """A new-user check: the distill table showed "–" in the GFLOPs column of a student whose
    multiply-accumulates were not counted (a TensorFlow that cannot freeze its graph), with
    no line saying why, where `hubensemble cost` says "GFLOPs not counted: …: why". Now the
    row and the reason its cost record holds (`Cost.summary`'s "gflops_not_counted")."""
    why = "not counted: this TensorFlow cannot freeze the graph (install a tested release)"
    uncounted = Cost("small", None, 32, 3, macs=None, params=1000, latency_ms={"1": 2.0},
                     macs_not_counted=why).summary()
    counted = Cost("big", None, 32, 3, macs=10 ** 6, params=9000,
                   latency_ms={"1": 4.0}).summary()
    test = {"accuracy": 0.8, "nll": 0.5, "ece": 0.05}
    table = format_distill({
        "student": {"module": "small", "test": test, "cost": uncounted, "path": "distill/s",
                    "steps": 40, "seconds": 1.0, "init_from": None},
        "best_single": {"trial": "t0", "test": test, "cost": counted},
        "ensemble": {"members": ["t0", "t1"], "test": test, "cost": counted},
        "teacher": {"export": "/x", "members": ["t0", "t1"]}})
    student_row = table.splitlines()[1]
    assert student_row.split()[-2] == "–", table
    assert f"GFLOPs not counted: student (small): {why}" in table.splitlines(), table
    assert table.count("GFLOPs not counted") == 1, table  # the counted rows say nothing
