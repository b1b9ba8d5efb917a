"""How often a corruption calls into TensorFlow: evaluate corrupts every batch of the split at
each severity, and the blur and the JPEG round trip ran their ops one image at a time (4 and
2 eager ops an image: 2.6 s of a 7 s evaluate of sklearn:digits' 797 test images). Counted
through Python's profiler (cProfile: the calls of TensorFlow's op and function entry points),
not timed; the pixels are test_corruption_memory's (bit for bit)."""

import cProfile
import pstats

import numpy as np
import pytest

from hubensemble.corruptions import (CHUNK_VALUES, MIN_CHUNKS, _corrupt, chunks,
                                     jpeg_round_trip)

#: TensorFlow's entry points from Python: an eager op (its fast path) and an op or a
#: tf.function's call through execute.
_ENTRIES = ("TFE_Py_FastPathExecute", "TFE_Py_Execute")


def tensorflow_calls(fn, *args) -> int:
    """How many times `fn(*args)` entered TensorFlow's runtime (`_ENTRIES`)."""
    profile = cProfile.Profile()
    profile.runcall(fn, *args)
    return sum(stat[1] for (_, _, name), stat in pstats.Stats(profile).stats.items()
               if any(entry in name for entry in _ENTRIES))


@pytest.mark.parametrize("name", ["gaussian_blur", "jpeg"])
def test_a_batch_of_small_images_is_corrupted_in_a_few_tensorflow_calls(name):
    """A batch of 64 images of 8 px (evaluate's batch of sklearn:digits): 256 calls of the
    blur and 128 of the JPEG round trip, one image at a time, before; now a few per chunk
    (MIN_CHUNKS of them)."""
    x = np.random.default_rng(0).random((64, 8, 8, 3), dtype=np.float32)
    idx = np.arange(64)
    _corrupt(name, x, idx, 3, 0)  # the first call's traces and lazy imports apart
    calls = tensorflow_calls(_corrupt, name, x, idx, 3, 0)
    assert 0 < calls <= 8 * MIN_CHUNKS, f"{name}: {calls} calls into TensorFlow"


def test_the_jpeg_round_trip_is_traced_once_for_every_size_and_quality():
    """One trace serves every batch size, image size and severity of a process."""
    for shape in [(5, 8, 8, 3), (2, 23, 31, 3), (1, 40, 56, 3)]:
        for severity in (1, 2, 3):
            _corrupt("jpeg", np.random.default_rng(1).random(shape, dtype=np.float32),
                     np.arange(shape[0]), severity, 0)
    assert jpeg_round_trip().experimental_get_tracing_count() == 1


def test_chunks_cover_the_batch_within_their_bounds():
    """Every image once, in order; a chunk holds at most CHUNK_VALUES values and a quarter
    of the batch, at least one image (a phone photo alone, as the blur ran every image)."""
    for n, per_image in [(0, 10), (1, 10), (64, 8 * 8 * 3), (7, 10), (33, 1),
                         (32, 1469 * 1128 * 3), (100, CHUNK_VALUES // 10)]:
        parts = chunks(n, per_image)
        assert [i for p in parts for i in range(n)[p]] == list(range(n))
        for p in parts:
            size = len(range(n)[p])
            assert size >= 1
            assert size == 1 or (size * per_image <= CHUNK_VALUES
                                 and size <= -(-n // MIN_CHUNKS))
    assert len(chunks(64, 8 * 8 * 3)) == MIN_CHUNKS
    assert len(chunks(32, 1469 * 1128 * 3)) == 32
