"""The (height, width) a value that is not a pair of sides means, for the hint of its refusal:
an int n is (n, n), "32x32" (or "32 X 32", "32,32", "32*32") is (32, 32). One reading for the
catalogue's input_size/native_size (YAML and ModuleSpec alike: `catalogue_fields`) and the
Python API's input_size= (`inputsize.checked_input_size`: HubLayer, load_module,
write_hub_module). A leaf
of the import graph: nothing of hubensemble."""

from __future__ import annotations

import numbers
import re

_WRITTEN = re.compile(r"\s*(\d+)\s*[xX,*×]\s*(\d+)\s*")


def written_size(value) -> tuple[int, int] | None:
    """The (height, width) ints `value` (not a pair) is written as, whatever their range, or
    None: an int n (not a bool) is (n, n), a str "HxW" (or "H,W", "H*W", "H×W") is (H, W)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value), int(value))
    if isinstance(value, str) and (found := _WRITTEN.fullmatch(value)):
        return (int(found.group(1)), int(found.group(2)))
    return None


def meant_size(value, largest: int) -> tuple[int, int] | None:
    """The (height, width) ints `value` (not a pair) most likely means, each side in [1,
    `largest`] pixels, or None: `written_size`'s reading. A hint that would itself be refused
    is none: None then (`outside_words` says why)."""
    size = written_size(value)
    return size if size is not None and 1 <= min(size) and max(size) <= largest else None


def outside_words(value, largest: int) -> str:
    """", which reads as (H, W), a side outside [1, `largest`] pixels" when `value` is
    written as a size (`written_size`) that `meant_size` does not take for the one meant, else
    "": a refusal of "5000x5000" hinted (224, 224) and said only that it was no pair."""
    size = written_size(value)
    if size is None or (1 <= min(size) and max(size) <= largest):
        return ""
    return f", which reads as {size}, a side outside [1, {largest}] pixels"
