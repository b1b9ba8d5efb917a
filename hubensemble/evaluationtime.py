"""How long an evaluation (`evaluate.evaluate_model`) should take, from the export's measured
latency, and the warning said before a long one with the ways to a shorter one (moved out of
evaluate.py, near its 700 lines; importable from evaluate as before). TensorFlow-free."""

from __future__ import annotations

from hubensemble.lockwords import option_word


#: An evaluation with corrupted copies that the export's measured latency says will take
#: longer than this (seconds) is announced before it starts, with the ways to a shorter one.
LONG_EVALUATION_S = 600.0


def passes_words(names, sevs) -> str:
    """"clean + 5 corruptions x 3 severities", "clean + 1 corruption x 1 severity": the
    passes over the split (it said "1 corruptions x 1 severities")."""
    return (f"clean + {len(names)} corruption{'' if len(names) == 1 else 's'} x {len(sevs)} "
            f"severit{'y' if len(sevs) == 1 else 'ies'}")


def evaluation_estimate(meta: dict, n_images: int, passes: int) -> float | None:
    """Seconds that `passes` predictions of `n_images` images should take on this machine:
    the export's `latency_ms` (assets/hubensemble.json: median ms of one serving_default call
    at batch 64, else 64 x the batch-1 figure, measured by `export`) per 64 images; None
    when the metadata has no latency. An estimate: the corruptions' own work is not counted,
    and a machine shared with other work runs slower."""
    latency = meta.get("latency_ms") if isinstance(meta, dict) else None
    if not isinstance(latency, dict):
        return None
    per64 = latency.get("64")
    if not isinstance(per64, (int, float)) or isinstance(per64, bool) or per64 <= 0:
        one = latency.get("1")
        if not isinstance(one, (int, float)) or isinstance(one, bool) or one <= 0:
            return None
        per64 = 64 * float(one)
    return float(per64) / 1000.0 * passes * n_images / 64.0


def long_evaluation_note(meta: dict, n_images: int, names, sevs, split: str = "test"
                         ) -> str | None:
    """The warning `evaluate.evaluate_model` logs before an evaluation with corruptions that
    `evaluation_estimate` puts above LONG_EVALUATION_S (a new-user check: `fit --sweep probe`
    on 1,062 test images with a VGG16 member at 224 px spent 1 h 40 min in this stage, the
    rest of the fit 16 min, with nothing said before it began); None otherwise."""
    names, sevs = list(names or []), list(sevs or [])
    if not names or not sevs:
        return None
    passes = 1 + len(names) * len(sevs)
    seconds = evaluation_estimate(meta, n_images, passes)
    if seconds is None or seconds <= LONG_EVALUATION_S:
        return None
    minutes = round(seconds / 60)
    took = (f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min")
    per64 = seconds / (passes * n_images / 64.0)
    return (f"evaluate will take about {took}: {n_images} {split} images x {passes} passes "
            f"({passes_words(names, sevs)}) at the export's "
            f"measured {per64:.1f} s per 64 images. The {passes - 1} corrupted passes only "
            "measure robustness (robustness.json); fewer: "
            + option_word("`hubensemble evaluate --corruptions NAME[,NAME]` or `--severities 2`",
                          "evaluate_model(…, corruptions=[NAME, …]) or severities=[2]")
            + "; none: " + option_word("`fit --no-corruptions`",
                                       "hubensemble.fit(…, corruptions=False)")
            + " (Ctrl-C now keeps every earlier stage's result, the export included)")
