"""How the report writes numbers, durations and values in its tables and sentences."""

from __future__ import annotations

import json
import math

from hubensemble.text import counted  # noqa: F401 - re-exported (its code is text's)


def number(value, digits=4) -> str:
    """``value`` with ``digits`` decimals ("0.9787"); "–" for None or a non-finite number;
    a value that is not a number as its text."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


def duration(value) -> str:
    """Seconds as "12.3 s", "4 min 02.0 s" or "1 h 05 min"; "–" for None."""
    if value is None:
        return "–"
    s = float(value)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:04.1f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def compact(value) -> str:
    """A value for a table cell: a float to 4 significant digits, None as "none", a dict or
    list as compact sorted JSON, anything else as its text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def all_failed_words(n: int) -> str:
    """What to do when every one of a finished sweep's `n` trials failed, up to the command
    that removes their folders: "the 1 trial of the sweep failed: once its cause is fixed,
    remove its folder", "all 3 trials of the sweep failed: once their cause is fixed, remove
    their folders" (fit's closing table and the report's next step; "all 1 trials … their
    folders" was said of one)."""
    if n == 1:
        return "the 1 trial of the sweep failed: once its cause is fixed, remove its folder"
    return f"all {n} trials of the sweep failed: once their cause is fixed, remove their folders"
