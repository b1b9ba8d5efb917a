"""The corruptions hold one float32 copy of a batch (evaluate corrupts whole batches of the
test split at the images' held size: 16.8 MB a phone photo), aligned so that evaluate gives it
to the model without a copy, and give the pixels of their formulas, bit for bit (the formulas
as they were written before, kept here as references)."""

import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

from hubensemble.corruptions import (ALIGNMENT, CORRUPTIONS, PARAMETERS, _corrupt, _rngs,
                                     aligned_empty, blur_sigma, gaussian_kernel)


def _reference(name, x, param, rngs):
    """Each corruption's batch formula as written before it was made to hold one copy."""
    if name == "gaussian_noise":
        noise = np.stack([r.standard_normal(x.shape[1:], dtype=np.float32) for r in rngs])
        return x + np.float32(param) * noise
    if name == "shot_noise":
        return np.stack([r.poisson(xi * param).astype(np.float32) / np.float32(param)
                         for xi, r in zip(x, rngs)])
    if name == "impulse_noise":  # written otherwise than the library (one draw per image)
        u = np.stack([r.random(xi.shape, dtype=np.float32) for xi, r in zip(x, rngs)])
        return np.where(u < param / 2, np.float32(0),
                        np.where(u < param, np.float32(1), x)).astype(np.float32)
    if name == "gaussian_blur":
        n, h, w, c = x.shape
        k = gaussian_kernel(blur_sigma(param, h, w))
        r = len(k) // 2
        t = tf.constant(x)
        t = tf.gather(t, np.clip(np.arange(-r, h + r), 0, h - 1), axis=1)
        t = tf.gather(t, np.clip(np.arange(-r, w + r), 0, w - 1), axis=2)
        kh = tf.constant(np.tile(k[:, None, None, None], (1, 1, c, 1)))
        kw = tf.constant(np.tile(k[None, :, None, None], (1, 1, c, 1)))
        t = tf.nn.depthwise_conv2d(t, kh, strides=[1, 1, 1, 1], padding="VALID")
        t = tf.nn.depthwise_conv2d(t, kw, strides=[1, 1, 1, 1], padding="VALID")
        return t.numpy()
    if name == "contrast":
        mean = x.mean(axis=(1, 2), keepdims=True)
        return (x - mean) * np.float32(param) + mean
    if name == "brightness":
        v = x.max(axis=-1, keepdims=True)
        v_new = np.minimum(v + np.float32(param), 1.0)
        scale = np.divide(v_new, v, out=np.zeros_like(v), where=v > 0)
        return np.where(v > 0, x * scale, v_new)
    if name == "jpeg":
        u8 = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
        out = [tf.io.decode_jpeg(tf.io.encode_jpeg(im, quality=int(param)), channels=3).numpy()
               for im in u8]
        return np.stack(out).astype(np.float32) / np.float32(255.0)
    assert name == "pixelate"
    _, h, w, _ = x.shape
    small = (max(1, int(h * param)), max(1, int(w * param)))
    t = tf.image.resize(x, small, method="area")
    return tf.image.resize(t, (h, w), method="nearest").numpy()


def _batch(n=6, h=23, w=31, seed=0):
    x = np.random.default_rng(seed).random((n, h, w, 3), dtype=np.float32)
    x[0, :4] = 0.0  # black pixels (brightness's v = 0 branch)
    x[1, :, :3] = 1.0  # saturated ones
    return x


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corruption_gives_the_pixels_of_its_formula(name):
    """Every severity, a batch in split order (one run) and one with gaps, bit for bit."""
    x = _batch()
    for severity in (1, 2, 3):
        for idx in (np.arange(4, 10), np.array([0, 1, 5, 6, 7, 12])):
            runs = np.split(np.arange(len(idx)), np.flatnonzero(np.diff(idx) != 1) + 1)
            want = np.concatenate([np.clip(_reference(
                name, x[r], PARAMETERS[name][severity - 1],
                _rngs(name, severity, 3, idx[r[0]], len(r))), 0.0, 1.0).astype(np.float32)
                for r in runs])
            got = _corrupt(name, x, idx, severity, 3)
            assert got.dtype == np.float32 and got.shape == x.shape
            np.testing.assert_array_equal(got, want)
    single = CORRUPTIONS[name](x[2], 2, 3, start=7)  # one image [H, W, 3]
    np.testing.assert_array_equal(single, _corrupt(name, x[2:3], np.array([7]), 2, 3)[0])


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corruption_holds_one_float_copy_of_the_batch(name):
    """The NumPy memory a corruption of a batch in split order allocates, at its peak, is the
    corrupted batch and an image's temporaries: 2x to 3.2x the batch before (the clip and
    float32 cast of the result, the noise stacked, a concatenation of the one run)."""
    x = _batch(n=16, h=40, w=56)
    idx = np.arange(3, 19)
    _corrupt(name, x, idx, 2, 0)  # TensorFlow's first calls allocate once
    tracemalloc.start()
    try:
        out = _corrupt(name, x, idx, 2, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == x.shape
    assert peak < 1.5 * x.nbytes, f"{name}: {peak / x.nbytes:.2f}x the batch"


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"pixelate"}))
def test_a_corrupted_batch_goes_to_the_model_without_a_copy(name):
    """evaluate converted each corrupted batch with tf.constant, a copy: one batch more at
    its peak (24 photos held at 1365 x 1024, one batch of 403 MB: 1.73 GB above the process
    before it, 0.89 GB now). A corruption's result is aligned as TensorFlow needs it and the
    tensor evaluate gives the model is the array's own memory."""
    from hubensemble.evaluate import _as_tensor

    out = _corrupt(name, _batch(n=4), np.arange(4), 2, 0)
    assert out.ctypes.data % ALIGNMENT == 0 and out.flags.c_contiguous
    t = _as_tensor(out)
    np.testing.assert_array_equal(tf.reduce_sum(t, axis=0).numpy(), out.sum(axis=0))
    out[1, 2, 3, 0] = 7.0  # shows in the tensor: its memory, not a copy
    assert float(t[1, 2, 3, 0]) == 7.0


def test_an_array_tensorflow_cannot_share_is_copied():
    """A misaligned or strided array is given as tf.constant's copy (TensorFlow stops the
    process at an op on a misaligned buffer): the same values, and the array's later
    changes do not show."""
    from hubensemble.evaluate import _as_tensor

    shape = (2, 6, 5, 3)
    buf = aligned_empty((int(np.prod(shape)) + 1,))
    misaligned = buf[1:].reshape(shape)
    misaligned[...] = _batch(n=2, h=6, w=5)
    strided = _batch(n=2, h=12, w=5)[:, ::2]
    for x in (misaligned, strided):
        t = _as_tensor(x)
        np.testing.assert_array_equal(tf.reduce_sum(t[1:], axis=0).numpy(), x[1:].sum(axis=0))
        before = x[1, 2, 3, 0]
        x[1, 2, 3, 0] = 7.0
        assert float(t[1, 2, 3, 0]) == before
