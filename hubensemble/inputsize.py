"""The one rule an ``input_size`` argument of the Python API is checked by (`HubLayer`,
`load_module`, `write_hub_module`): None or (height, width), two integers in [1,
MAX_INPUT_SIDE], refused in words naming the function and the value. A leaf of the import
graph (nothing of hubensemble but `refused` and `sizemeant`), so the module writer can use
it and stay one. TensorFlow-free."""

from __future__ import annotations

import numbers

from hubensemble.refused import described
from hubensemble.sizemeant import meant_size, outside_words

#: The largest side an input_size may have: above any image module's (TF Hub's and Keras'
#: classifiers take 600 px at most); a typo there would fill the memory at rank's first batch.
#: A catalogue's input_size is held to it too (`catalogue_fields`).
MAX_INPUT_SIDE = 2048


def checked_input_size(value, *, who: str, none_means: str) -> tuple[int, int] | None:
    """`value` as (height, width) ints, or None for None. `who` names the caller in the
    words ("HubLayer", "load_module()"), `none_means` what None does there ("the module's
    own size", "any size"). TypeError for anything but None or a pair of integers (a str,
    an int n: the example is then (n, n), "32x32" or "32×32": (32, 32), read as the
    catalogue's are: `sizemeant.meant_size`, no example that would itself be refused; an
    array of another shape, a bool), ValueError for a side outside [1, MAX_INPUT_SIDE] pixels."""
    if value is None:
        return None
    pair = None
    if not isinstance(value, (str, bytes)):
        try:
            pair = tuple(value)
        except TypeError:
            pair = None
    if (pair is None or len(pair) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                       for v in pair)):
        meant = meant_size(value, MAX_INPUT_SIDE)  # one reading with the catalogue's
        example = f"input_size={meant}" if meant else "input_size=(224, 224)"
        raise TypeError(f"{who} input_size must be None ({none_means}) or (height, width), "
                        f"two integers; got {described(value)}"
                        f"{outside_words(value, MAX_INPUT_SIDE)}: write {example}")
    h, w = (int(v) for v in pair)
    if min(h, w) < 1 or max(h, w) > MAX_INPUT_SIDE:
        raise ValueError(f"{who} input_size {(h, w)} has a side outside [1, "
                         f"{MAX_INPUT_SIDE}] pixels; write the module's own size, e.g. "
                         "input_size=(224, 224), or None")
    return (h, w)
