"""TensorFlow ops on one encoded file's bytes, for the decode policy's graph
(`hubensemble.data.graph`, `hubensemble.data.bmpgraph`): reading header fields from a string
scalar, a refusal Assert from (bad, message) pairs, alpha composited onto white, and
`on_one_file`, the tf.function form every decoder and header reader takes. It imports
TensorFlow.
"""

from __future__ import annotations

import functools
import threading

from hubensemble._tf import tensorflow as tf


class on_one_file:  # noqa: N801 (a decorator, named as the tf.function it was)
    """A decorator: each format's decoder and the header readers of every decode and refusal
    path are tf.functions of one string scalar that TensorFlow does not inline ("_noinline", as
    `export.saved.refusal_path`): traced once per process, stored once per SavedModel, optimised
    when a request first reaches them. Inline, each export traced them at every call site (a
    second export in a process: 2.3 s of trace and save, 0.7 now), and a serve_bytes call every
    decoder (first call 1.6 s, 1.1 now; first refusal 1.6 s, 0.9): bench_decode_graph.py.

    Called (eagerly or in a graph), it calls the one concrete function, traced at the first
    call: `tf.saved_model.save` traces in a context of its own, which a tf.function's cache
    tells from every other (its variable policy; these functions hold no variable), so a
    process's first save traced every one of them again (half their cost of a first export:
    1.1 s of CPU of its save, 0.55 now; bench_decode_graph.py's cpu). Raises what the
    function raises (tf.errors.InvalidArgumentError, when run, for a refused file).
    `python_function` is the undecorated function, `function` its tf.function."""

    spec = tf.TensorSpec([], tf.string)  # the one argument: a file's bytes

    def __init__(self, python_function):
        functools.update_wrapper(self, python_function)
        self.python_function = python_function
        self.function = tf.function(
            python_function, input_signature=[self.spec], autograph=False,
            experimental_attributes={"_noinline": True})
        self._concrete = None
        self._lock = threading.RLock()

    def get_concrete_function(self):
        """The concrete function (a string scalar in; the decorated function's tensors out)."""
        with self._lock:
            if self._concrete is None:
                self._concrete = self.function.get_concrete_function()
            return self._concrete

    def __call__(self, data):
        return self.get_concrete_function()(tf.convert_to_tensor(data, self.spec.dtype))


class on_pixels(on_one_file):  # noqa: N801
    """`on_one_file` of one uint8 image [H, W, C] (C known only when run): a step every
    decoder shares (`composite_on_white`, `shrink.shrink_ops`), held once in a decode graph,
    not inlined into each."""

    spec = tf.TensorSpec([None, None, None], tf.uint8)


# ---------------------------------------------------------------------------------------------
# Small helpers on a string scalar and its bytes
# ---------------------------------------------------------------------------------------------

def bytes_of(data, pad):
    """uint8 [len + pad]: the bytes of `data` then `pad` zeros (header reads never run off)."""
    return tf.io.decode_raw(tf.strings.join([data, tf.constant(b"\0" * pad)]), tf.uint8)


def byte_at(b, i):
    """Byte i of `b` as int64 (i clipped into range: the callers check lengths first)."""
    i = tf.clip_by_value(tf.cast(i, tf.int64), 0, tf.size(b, out_type=tf.int64) - 1)
    return tf.cast(tf.gather(b, i), tf.int64)


def uint_le(b, offset, n):
    """The little-endian unsigned integer of `n` bytes at `offset`, int64."""
    idx = tf.cast(offset, tf.int64) + tf.range(n, dtype=tf.int64)
    idx = tf.clip_by_value(idx, 0, tf.size(b, out_type=tf.int64) - 1)
    vals = tf.cast(tf.gather(b, idx), tf.int64)
    return tf.reduce_sum(tf.bitwise.left_shift(vals, 8 * tf.range(n, dtype=tf.int64)))


def uint_fields(b, fields):
    """[int64 scalar] per (offset, n) of `fields` (Python ints, n <= 7): `uint_le(b, offset,
    n)` of each, the same values (an index past `b` clipped to its last byte), read by one
    gather and one weighted sum for them all (a BMP header's nine fields traced 130 ops)."""
    width = max(n for _, n in fields)
    index = tf.constant([[off + k for k in range(width)] for off, _ in fields], tf.int64)
    weight = tf.constant([[256 ** k if k < n else 0 for k in range(width)] for _, n in fields],
                         tf.int64)
    index = tf.minimum(index, tf.size(b, out_type=tf.int64) - 1)
    return tf.unstack(tf.reduce_sum(tf.cast(tf.gather(b, index), tf.int64) * weight, axis=1))


def signed32(v):
    """The int64 `v` (0 .. 2^32 - 1) read as a signed 32-bit integer."""
    return tf.where(v >= 2**31, v - 2**32, v)


def as_text(v):
    """A number tensor as its decimal string (for a refusal's words)."""
    return tf.strings.as_string(v)


def byte_string(v):
    """A one-byte string of the int value `v` (0..255)."""
    table = tf.constant([bytes([i]) for i in range(256)])
    return tf.gather(table, tf.cast(v, tf.int32))


def replace_bytes(data, pos, new: bytes):
    """`data` with len(new) bytes at `pos` replaced by `new` (same length)."""
    n = tf.strings.length(data, unit="BYTE")
    pos = tf.cast(pos, tf.int32)
    k = len(new) if isinstance(new, bytes) else 1
    return tf.strings.join([tf.strings.substr(data, 0, pos), new,
                            tf.strings.substr(data, pos + k, n - pos - k)])


def refusal(checks):
    """An Assert op that fails with the message of the first (bad, message) in `checks`."""
    bads = tf.stack([bad for bad, _ in checks])
    messages = tf.stack([msg for _, msg in checks] + [tf.constant("")])
    first = tf.reduce_min(tf.where(tf.concat([bads, [True]], axis=0)))
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(bads)),
                               [tf.gather(messages, first)])


def head_hex(data):
    """The first 8 bytes as spaced hex (how a refusal shows an unknown file)."""
    b = bytes_of(data, 0)[:8]
    table = tf.constant([f"{i:02x}" for i in range(256)])
    return tf.strings.reduce_join(tf.gather(table, tf.cast(b, tf.int32)), separator=" ")


# ---------------------------------------------------------------------------------------------
# Alpha onto white, format by format
# ---------------------------------------------------------------------------------------------

def composite_on_white(image):
    """Pixels [H, W, C] (uint8, or integers 0..255 of another type; C = 1 grey, 2 grey + alpha,
    3 RGB, 4 RGBA, known only when run) -> uint8 [H, W, 3]: grey repeated into R, G, B; alpha
    composited onto white, round(c * a + 255 * (1 - a)) with a = alpha / 255, exactly
    ((c * alpha + 255 * (255 - alpha) + 127) // 255: integer arithmetic, half up; no value is
    ever half-way).

    Only an image with alpha is widened, and to uint16, which holds every step of that formula
    (c * alpha + 255 * (255 - alpha) <= 255 * 255, + 127 <= 65152): an opaque image (C 1 or 3)
    stays uint8. Everything was cast to int32 before (a 1000 x 30000 RGB PNG held 1.06 GB
    more at its peak for 90 MB of pixels; docs/data.md, "Decoding")."""
    x = tf.convert_to_tensor(image)
    if x.dtype != tf.uint8:
        x = tf.cast(x, tf.uint8)
    out = _on_white(x)
    out.set_shape([None, None, 3])
    return out


@on_pixels
def _on_white(x):
    """`composite_on_white` of uint8 [H, W, C]: one tf.function, not inlined. Its three conds
    (six branch functions) were copied into `_png`, `_webp` and `decode_bmp`, 18 functions a
    reloaded export's first serve_bytes call optimised (helper 449's measure); tf.where would
    widen an opaque image too (the uint16 copy this keeps to images with alpha)."""
    c = tf.shape(x)[-1]

    def grey(v):  # [H, W, 1] -> [H, W, 3], any dtype
        return tf.tile(v, [1, 1, 3])

    def over_white():
        colour = tf.cast(x[..., :-1], tf.uint16)
        alpha = tf.cast(x[..., -1:], tf.uint16)
        out = tf.cast((colour * alpha + 255 * (255 - alpha) + 127) // 255, tf.uint8)
        return tf.cond(tf.equal(c, 2), lambda: grey(out), lambda: tf.identity(out))

    def opaque():
        return tf.cond(tf.equal(c, 1), lambda: grey(x), lambda: tf.identity(x))

    return tf.cond(tf.equal(c % 2, 0), over_white, opaque)
