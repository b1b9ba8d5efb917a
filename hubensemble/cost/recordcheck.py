"""What is wrong with a RUN/cost.json, in words, and setting a damaged one aside.

`records.Cost.from_json` and `records.read_run_costs` own the file's format; this module says
which field of a hand-edited or cut file is not what the format holds ("its 'size' is null,
expected a whole number >= 1"), where `int(None)`'s "TypeError: int() argument must be …"
reached the user, and moves a file `cost` cannot read out of the way (`set_aside`) so that
`cost`, the way on every reader names, writes a new one without losing the old.
"""

from __future__ import annotations

import math
import os
import time
from typing import Mapping

from hubensemble.fileio import json_kind
from hubensemble.text import json_shown

#: A candidate record's fields as `Cost.to_json` writes them: (field, what it must hold,
#: whether null or a missing key is read (as `Cost.from_json`'s default), the least value
#: of a count). "macs" null is a count that was not made (`Cost.macs_not_counted`).
_COUNTS = (("size", False, 1), ("num_classes", False, 1), ("macs", True, 0),
           ("params", False, 0), ("head_macs", True, 0))
_TEXTS = ("module", "fingerprint", "machine", "macs_not_counted")


def _whole(value) -> bool:
    """Whether `value` (from JSON) is a whole number (an int, or a float like 8.0), not a
    bool, nan or inf (JSON's 1e400 reads as inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or (math.isfinite(value) and value == int(value))


def _shown(record: Mapping, field: str) -> str:
    """What `record` holds at `field`, as the file writes it ("missing" when absent)."""
    if field not in record:
        return "missing"
    value = record[field]
    if isinstance(value, float) and math.isinf(value):  # JSON's 1e400 reads as inf
        return f"{json_shown(value)} (a number past a float's range)"
    return json_shown(value) if isinstance(value, (int, float, str)) or value is None \
        else json_kind(value)


def record_fault(record) -> str | None:
    """Why `record` (one candidate of RUN/cost.json's "candidates", read from JSON) is not a
    cost record, in words naming the field, what it holds and what it must ("its 'size' is
    null, expected a whole number >= 1"); None when every field is one `Cost.from_json` reads.
    Counts (size, num_classes >= 1 px/classes; macs, params, head_macs >= 0) are whole
    numbers ("macs" and "head_macs" may be null: not counted, an older file's); "module",
    "fingerprint", "machine", "macs_not_counted" text or null; "latency_ms" an object of
    finite ms >= 0 per batch size, or null."""
    if not isinstance(record, dict):
        return f"it is {json_kind(record)}, expected an object"
    for field, nullable, least in _COUNTS:
        value = record.get(field)
        if value is None and nullable:
            continue
        if not _whole(value) or value < least:
            return (f"its {field!r} is {_shown(record, field)}, expected a whole number "
                    f">= {least}" + (" or null" if nullable else ""))
    for field in _TEXTS:
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"its {field!r} is {_shown(record, field)}, expected text or null"
    latency = record.get("latency_ms")
    if latency is not None and not isinstance(latency, dict):
        return f"its 'latency_ms' is {_shown(record, 'latency_ms')}, expected an object"
    for batch, ms in (latency or {}).items():
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not (
                math.isfinite(ms) and ms >= 0):
            return (f"its 'latency_ms' at batch {batch} is {_shown(latency, batch)}, "
                    "expected a number of ms >= 0")
    return None


def aside_name(path: str, newer_format: int | None = None) -> str:
    """Where `set_aside` moves RUN/cost.json: "cost.json.damaged-20261208T013000Z" beside it,
    "cost.json.format-2-…" for a file of a newer format (a newer hubensemble's, kept for it),
    with "-2", "-3", … when that name is taken. The time is UTC, to the second."""
    kind = "damaged" if newer_format is None else f"format-{int(newer_format)}"
    base = f"{path}.{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    name, n = base, 1
    while os.path.lexists(name):
        n += 1
        name = f"{base}-{n}"
    return name


def set_aside(path: str, newer_format: int | None = None) -> str:
    """Moves RUN/cost.json at `path` to `aside_name` (an atomic rename in its folder: nothing
    the user made is lost) and returns the new path; OSError when it cannot be moved. The
    caller holds the run's lock (`cost`'s stage does)."""
    target = aside_name(path, newer_format)
    os.rename(path, target)
    return target
