"""The tf.data stream of `Task.dataset` (hubensemble.data.task): a split's images read a batch
at a time from where the split holds them, seeded passes, the chunks large images are
converted in, and tf.data's autotuner off. Split from task.py at its size limit. NumPy at
import; TensorFlow when a stage is built."""

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

    return tf.data.Dataset.range(1).flat_map(_as_written(stream))


def _as_written(fn):
    """`fn` for a `Dataset.map` / `flat_map` as it is written, not autograph converted
    (tf.data converts by default: Python work for graphs with the same ops; building a
    digits stream took 15 ms of CPU as written, 18-24 ms converted, and a tune trial builds
    three).

    Only for functions whose every Python ``if`` tests a Python value and that loop over no
    tensor: autograph would turn an ``if`` on a tensor into a `tf.cond`; without it such an
    ``if`` raises ("using a tf.Tensor as a Python bool") rather than change the graph. The
    stream functions here qualify (`passes`' `repeat`; `split_stream`'s `uint8` and
    `image_size`; `augment.unit_float` and `resize` test `isinstance`, `tf.is_tensor` and a
    static dtype), so their batches are the same to the bit (test_reproducible)."""
    from hubensemble._tf import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def fixed_parallelism(ds):
    """`ds` with tf.data's autotuner off (for it and every dataset built on it).

    The data are in memory and the work per batch is small; the autotuner's help is nil, but
    on this 2-core machine it at times took a core from the model: up to a third of rank's
    modules and of tune's timed runs went at half speed (twice the wall time, same CPU time).
    Without it, `AUTOTUNE` parallelism means one thread per core and prefetching still keeps
    the model fed (bench_rank, bench_tune).
    """
    from hubensemble import _tf
    from hubensemble._tf import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    if _tf.op_determinism():  # a stateful map fused into the next logged an ERROR (_tf's)
        options.experimental_optimization.map_fusion = False
    return ds.with_options(options)


def split_stream(data, *, batch_size, image_size, shuffle, seed, repeat, cache, uint8=False):
    """`Task.dataset`'s stream of the `Split` `data` (its arguments checked there; an
    `image_size` equal to same-size images' own is None): (float32 [B, h, w, 3] in [0, 1],
    int64 [B]) batches, resized with `augment.resize` when `image_size` is given; with
    `uint8` (same-size images, no `image_size`) the held uint8 pixels, not converted.

    The stream passes example indices (int64) through the seeded passes and batches, and
    takes each batch's images from `data.images` as it goes (`tf.numpy_function`): it holds
    no copy of the split. `from_tensor_slices` of the images copied them into a tensor
    (TensorFlow copies every NumPy array it is given, aligned or not), and rank kept one such
    stream per resolution: rank on 80 phone photos (48 training, 4.2 MB each) held 3 copies
    of the training images at its peak (2.12 GB resident; docs/data.md, "Memory of a
    split"). A shuffle's order depends on its seed and the number of elements alone, so the
    indices come in the order the images did, with the same pixels and batches.
    """
    from hubensemble import _tf
    from hubensemble._tf import tensorflow as tf
    from hubensemble.augment import resize, unit_float

    images, n = data.images, len(data)
    labels = tf.constant(np.asarray(data.labels, np.int64))

    def to_float(x):
        if uint8:
            return x
        x = unit_float(x)
        if image_size is not None:
            # The one resize policy (antialiased bilinear), as tune, export and serving.
            x = resize(x, image_size)
        return x

    def take(index, shape):
        """The uint8 images at `index` (int64 [k] or a scalar), read from `images` now."""
        x = tf.numpy_function(_reader(images), [index], tf.uint8, name="split_images")
        x.set_shape(shape)
        return x

    indices = tf.data.Dataset.range(n)
    if data.same_size:
        # Batch first, then one resize per batch: a batched resize costs about 40 % less CPU
        # than one per image, and on a small machine it competes with the module's forward
        # pass. The seeded passes order the indices (the images are read after batching).
        # Large images are converted in chunks (`chunk_size`): the same pixels.
        ds = passes(indices, n, seed, shuffle=shuffle, repeat=repeat)
        chunk = chunk_size(images.shape[1:], batch_size, image_size)
        ds = ds.batch(chunk, drop_remainder=repeat and chunk == batch_size)
        shape = [chunk if repeat and chunk == batch_size else None, *images.shape[1:]]
        ds = ds.map(_as_written(lambda i: (to_float(take(i, shape)), tf.gather(labels, i))),
                    num_parallel_calls=_tf.stateful_map_calls())
        if chunk < batch_size:
            ds = ds.unbatch().batch(batch_size, drop_remainder=repeat)
        if cache and not (shuffle or repeat):
            # Fixed batches in a fixed order: keep them converted. A shuffled stream reads
            # from the split instead (the conversion is all it would save).
            ds = ds.cache()
        return fixed_parallelism(ds.prefetch(tf.data.AUTOTUNE))
    # Images of different sizes: each read and resized on its own, then batched.
    read = _as_written(lambda i: (to_float(take(i, [None, None, 3])), tf.gather(labels, i)))
    ds = indices.map(read, num_parallel_calls=_tf.stateful_map_calls())
    if cache:
        ds = ds.cache()
    ds = passes(ds, n, seed, shuffle=shuffle, repeat=repeat)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    return fixed_parallelism(ds.prefetch(tf.data.AUTOTUNE))


def _reader(images):
    """The numpy function of `split_stream`: int64 index (a scalar, or [k]) -> the image(s)
    there, uint8, a new array of those alone (`images` is a [N, H, W, 3] array, or a list)."""
    if isinstance(images, np.ndarray):
        return lambda index: np.ascontiguousarray(images[index])
    return lambda index: np.ascontiguousarray(images[int(index)])
