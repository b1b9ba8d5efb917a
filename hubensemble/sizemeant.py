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


def meant_size(value, largest: int) -> tuple[int, int] | None:
    """The (height, width) ints `value` (not a pair) most likely means, each side in [1,
    `largest`] pixels, or None: an int n (not a bool) is (n, n), a str "HxW" (or "H,W",
    "H*W", "H×W") is (H, W). A hint that would itself be refused is none: None then."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        size = (int(value), int(value))
    elif isinstance(value, str) and (found := _WRITTEN.fullmatch(value)):
        size = (int(found.group(1)), int(found.group(2)))
    else:
        return None
    return size if 1 <= min(size) and max(size) <= largest else None
