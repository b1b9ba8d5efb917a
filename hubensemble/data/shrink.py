"""Shrinking a decoded image whose shorter side is above `sniff.MAX_SHORT_SIDE` (1024 px), in
TensorFlow ops: the last step of the decode policy (`graph.decode_pixels`, which calls
`shrink_ops`) and of the kept decoder's files (`decode.decode_bytes`, through
`shrink_to_short_side`), so a file is the same pixels in training and in serve_bytes. It
imports TensorFlow.
"""

from __future__ import annotations

from hubensemble._tf import tensorflow as tf

from hubensemble import augment
from hubensemble.data.graphops import on_pixels
from hubensemble.data.sniff import MAX_SHORT_SIDE


def shrink_ops(pixels):
    """uint8 [H, W, 3] -> uint8 [h, w, 3], min(h, w) <= MAX_SHORT_SIDE: the ops of
    `shrink_to_short_side` (see it), for the decoders of `graph`: a call of one tf.function
    that is not inlined (`graphops.on_pixels`). Its cond and resize loop (4 functions, 122
    nodes) were inlined into every decode, serve_bytes' map function too. Runs inside a
    graph; raises nothing of its own."""
    out = _shrink(pixels)
    out.set_shape([None, None, 3])
    return out


@on_pixels
def _shrink(pixels):
    pixels.set_shape([None, None, 3])
    hw = tf.shape(pixels)[:2]
    short = tf.reduce_min(hw)

    def shrink():
        scale = tf.constant(MAX_SHORT_SIDE, tf.float64) / tf.cast(short, tf.float64)
        size = tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float64) * scale), tf.int32), 1)
        # The shorter side exactly MAX_SHORT_SIDE, whatever the rounding of the longer one.
        size = tf.where(tf.equal(hw, short), tf.minimum(hw, MAX_SHORT_SIDE), size)
        # The one resize (antialiased bilinear), its float32 copy made a strip at a time.
        return augment.resize_uint8(pixels, size)

    out = tf.cond(short > MAX_SHORT_SIDE, shrink, lambda: tf.identity(pixels))
    out.set_shape([None, None, 3])
    return out


@tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)], autograph=False)
def shrink_to_short_side(pixels):
    """uint8 [H, W, 3] -> uint8 [h, w, 3]: the image itself when min(H, W) <= MAX_SHORT_SIDE
    (1024), else shrunk, aspect kept, to a shorter side of exactly 1024 and a longer one of
    round(L * 1024 / S) (round half to even), by the one resize (`augment.resize`:
    antialiased bilinear, run a strip of columns at a time: `augment.resize_uint8`) and
    rounded to the nearest integer. Every decoded file goes through it: the graph's formats
    inside `decode_pixels`, the kept decoder's (Pillow) after it (`decode.decode_bytes`), so
    a file is the same pixels in training and in serve_bytes."""
    return shrink_ops(pixels)
