"""The tf.data stages of `Task.dataset` (hubensemble.data.task): seeded passes, the chunks
large images are converted in, and tf.data's autotuner off. Split from task.py at its size
limit, no behaviour change. NumPy at import; TensorFlow when a stage is built."""

import numpy as np

#: Bytes of float32 pixels at their stored size `Task.dataset` converts at once to resize
#: them (a batch of 64 shrunk phone photos was 1.07 GB; docs/data.md).
WORKING_BYTES = 64 << 20


def chunk_size(shape, batch_size, image_size) -> int:
    """How many images of `shape` ([H, W, C]) `Task.dataset` converts to float32 and resizes
    at once: the batch, unless its float32 copy exceeds WORKING_BYTES and it is resized
    (never less than one image). A chunk's resize gives each image's pixels exactly."""
    if image_size is None:
        return batch_size  # the float32 batch is the output itself
    per_image = 4 * int(np.prod(shape))
    return int(min(batch_size, max(1, WORKING_BYTES // per_image)))


def passes(ds, n, seed, *, shuffle, repeat):
    """`ds` (`n` examples) once, or endlessly with `repeat`; with `shuffle`, in passes
    reshuffled from `seed`, the same passes for every new iterator of the returned dataset.

    tf.data's `reshuffle_each_iteration` draws each pass's order from a seed state that all
    iterators of one shuffle dataset share: a throw-away iterator (tune's start loss, Keras'
    symbolic build under a strategy) used up 0, 1 or 2 passes by thread timing, so one trial
    with one seed trained on other orders (a new-user check: 3 of 7 idle runs differed, val
    CE 0.15 vs 0.36). Here the shuffle is made inside a `flat_map`, anew for each iterator,
    with its own seed state. (A tensor seed per pass fails when a global seed is set.)
    """
    from hubensemble._tf import tensorflow as tf

    if not shuffle:
        return ds.repeat() if repeat else ds

    def stream(_):
        out = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
        return out.repeat() if repeat else out

    return tf.data.Dataset.range(1).flat_map(stream)


def fixed_parallelism(ds):
    """`ds` with tf.data's autotuner off (for it and every dataset built on it).

    The data are in memory and the work per batch is small; the autotuner's help is nil, but
    on this 2-core machine it at times took a core from the model: up to a third of rank's
    modules and of tune's timed runs went at half speed (twice the wall time, same CPU time).
    Without it, `AUTOTUNE` parallelism means one thread per core and prefetching still keeps
    the model fed (bench_rank, bench_tune).
    """
    from hubensemble._tf import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
