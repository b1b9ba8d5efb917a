"""What holding stop signals costs each decode: threads.warnings_block's end, before and after.

Run: python tools/benchmarks/bench_stops.py [--calls 20000]

Every Pillow decode (`decode._decode_with_pil`) runs in a `threads.warnings_block`. Its end
held Ctrl-C, SIGTERM and SIGHUP (`errors.held_stops`: six signal.signal calls and three
getsignal) so that a stop could not cut `catch_warnings.__exit__`; it now runs that exit
again when a stop cut it, then lets the stop go on. Prints, per call: an empty
`held_stops` block, the block as it was (catch_warnings + held_stops, rebuilt here), the
block as it is, and a Pillow decode of a 32x32 PNG and a 224x224 JPEG through it, with the
share of the decode the old end took. Nothing is asserted.
"""

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
from benchargs import integers
from PIL import Image

from hubensemble import errors, threads
from hubensemble.data import decode


@contextlib.contextmanager
def old_block(*, record: bool = False):
    """threads.warnings_block as it was before: its end inside errors.held_stops."""
    with threads._WARNINGS_LOCK:
        block = warnings.catch_warnings(record=record)
        caught = block.__enter__()
        try:
            yield caught
        finally:
            with errors.held_stops():
                block.__exit__(None, None, None)


def per_call(function, calls: int) -> float:
    """Microseconds per call of `function()`, the best of 3 runs of `calls` calls."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def encoded(side: int, fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=integers(100), default=[20000])
    calls = parser.parse_args().calls[0]

    def empty_held():
        with errors.held_stops():
            pass

    def block_of(kind):
        def run():
            with kind(record=True):
                pass
        return run

    print(f"per call, best of 3 x {calls:,}")
    old = per_call(block_of(old_block), calls)
    for name, function in (("errors.held_stops(), empty", empty_held),
                           ("warnings_block, before (held_stops at its end)", None),
                           ("warnings_block, after", block_of(threads.warnings_block))):
        took = old if function is None else per_call(function, calls)
        print(f"  {name:50} {took:8.2f} us")
    for side, fmt in ((32, "PNG"), (224, "JPEG")):
        data = encoded(side, fmt)
        n = max(calls // 20, 100)
        after = per_call(lambda: decode._decode_with_pil(data), n)
        threads.warnings_block, kept = old_block, threads.warnings_block
        try:
            decode.warnings_block = old_block
            before = per_call(lambda: decode._decode_with_pil(data), n)
        finally:
            threads.warnings_block = decode.warnings_block = kept
        print(f"  Pillow decode of a {side}x{side} {fmt}: before {before:8.1f} us, after "
              f"{after:8.1f} us ({(before - after) / before:+.1%} of before's time saved)")


if __name__ == "__main__":
    main()
