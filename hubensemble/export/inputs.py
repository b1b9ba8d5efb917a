"""The export's inputs, checked and decoded in its graph: image bytes to pixels by the decode
policy of training (serve_bytes), the images inputs' shape and range checks, and the refusals'
words (each a tf.function TensorFlow does not inline: `refusal_path`)."""

from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

#: How `decode_each` names an image that fails in TensorFlow's decoder for another reason than
#: its size (`graph.too_large`), after "a JPEG file"; one the decode policy's own header checks
#: refuse (a truncated BMP, an animated WebP) is named in their words
#: (`graph.header_check_refusal`).
DAMAGED = (" that cannot be decoded (damaged past its header, e.g. cut short or a bad "
           "checksum)")
#: What `decode_each` adds after a decoder's refusal (not a size's nor a header check's): the
#: decoder's own words are in the log, where the tf.data map that dropped it writes them.
LOGGED = " The server's log has the decoder's own words"
#: How far outside [0, 1] an `images` input may go before a request is refused: room for a
#: client's own bicubic or Lanczos resize (their overshoot at a sharp edge is under 0.1), none
#: for 0..255 pixels, [-1, 1] or mean/std-normalised ones, whose predictions were garbage.
PIXEL_RANGE_SLACK = 0.1


def refusal_path(fn: Callable) -> Callable:
    """`fn` (a cond branch taken only when a request is refused: no arguments, it fails the
    call with an Assert) as a tf.function that TensorFlow does not inline into its caller
    (the "_noinline" attribute, which tf.function's `experimental_attributes` allows): its
    ops are optimised (grappler) and instantiated when a request first takes it, not with
    the signature's first call. serve_bytes' refusals (`check_headers`, `decode_each`) were
    half of its graph and more than half of its first call's CPU (the export's warmup
    request: 2.0 -> 0.9 s for one small member); a request that is refused gets the same
    error, whose words the call site's Assert gives, as before. The same function, inlined,
    when a TensorFlow no longer takes the attribute (ValueError naming it)."""
    try:
        return tf.function(fn, autograph=False, experimental_attributes={"_noinline": True})
    except ValueError:
        return fn


def check_channels(images: tf.Tensor) -> tf.Tensor:
    """`images` unchanged when it is [N, H, W, 3]; else the call fails with an
    InvalidArgumentError "hubensemble-input[shape]: …" naming the shape sent and the one
    expected. The signatures declare [None, None, None, 3], which a call with greyscale
    [N, H, W, 1] went past, to fail deep in a member with TensorFlow's "input depth must be
    evenly divisible by filter depth: 1 vs 3" (a new-user check)."""
    shape = tf.shape(images)
    ok = tf.logical_and(tf.equal(tf.size(shape), 4), tf.equal(shape[-1], 3))

    def refuse():
        said = tf.strings.join([
            "hubensemble-input[shape]: `images` must be float32 [N, H, W, 3] (RGB; repeat a "
            "grey channel into 3, e.g. tf.image.grayscale_to_rgb, and drop an alpha one); got "
            "shape ", tf.strings.format("{}", shape, summarize=-1)])
        with tf.control_dependencies([tf.debugging.Assert(False, [said])]):
            return tf.identity(images)

    return tf.cond(ok, lambda: tf.identity(images), refuse)


def check_headers(image_bytes: tf.Tensor) -> tf.Tensor:
    """`image_bytes` (string [N]) unchanged when every element starts as a format
    serve_bytes decodes; else the call fails, before any image is decoded, with the
    InvalidArgumentError decoding the first such element alone gives (an empty file, a TIFF,
    HEIF or unknown file: `graph.header_refusal`), naming its position in a batch of more
    than one: "hubensemble-decode[unsupported]: image_bytes[3] (of 5): a TIFF file; …". One
    such file failed a TF Serving request of 32 photos without saying which. Damage past the
    header (a cut JPEG) is found when it is decoded (`decode_each`)."""
    from hubensemble.data.graph import decodable_headers, header_refusal

    ok = decodable_headers(image_bytes)
    n = tf.size(image_bytes)

    def refuse():
        first = tf.where(tf.logical_not(ok))[0, 0]
        reason = header_refusal(image_bytes[first])
        said = tf.where(  # not a cond: its two branch functions for a regex
            n > 1,
            tf.strings.regex_replace(
                reason, r"^([^:]*): ",
                tf.strings.join([r"\1: image_bytes[", tf.strings.as_string(first), "] (of ",
                                 tf.strings.as_string(n), "): "]), replace_global=False),
            reason)
        with tf.control_dependencies([tf.debugging.Assert(False, [said])]):
            return tf.identity(image_bytes)

    return tf.cond(tf.reduce_all(ok), lambda: tf.identity(image_bytes), refusal_path(refuse))


def decode_each(image_bytes: tf.Tensor, fn: Callable, specs: Sequence[tf.TensorSpec]) -> tuple:
    """`fn` (a string scalar -> a tuple of tensors of `specs`' shapes and dtypes) on each
    element of `image_bytes` (string [N]) -> the tuple of their stacks ([N, *shape] each).

    When `fn` fails on some elements (a JPEG cut short, a PNG with a bad CRC or a cut IDAT,
    a truncated BMP, an animated WebP: what `check_headers` cannot see), the call fails with an
    InvalidArgumentError naming the first by its position in a request of more than one:
    "hubensemble-decode[invalid]: image_bytes[1] (of 4): a JPEG file that cannot be decoded
    …; 2 of the 4 images cannot be decoded …" (the decoder's own words go to the log, as
    TF Serving's: LOGGED); a request of one image in the same words without its position
    ("…[invalid]: a JPEG file that cannot be decoded (…). The server's log has …"), where it
    got TensorFlow's op error ("jpeg::Uncompress failed …", fn run again). One the
    decode policy refuses by its own header checks is named in their words, with its
    position ("…[invalid]: image_bytes[1] (of 3): a truncated BMP file (…); 2 of the 3 …":
    `header_check_refusal`, computed on the refusal path only). An image
    whose header gives more pixels than TensorFlow's decoders take (`too_large`) is named by
    its size, in a request of one too: "…: a JPEG file of 64000 x 65000 pixels, too large to
    decode (…)"; it was called damaged (TensorFlow's words: "Invalid JPEG data"). Such a file
    failed a request of 32 photos in TensorFlow's words and no position. The elements run in
    a tf.data map (each on its own, skipping the failed ones: `ignore_errors`), whose pixels
    are those of the training pipeline's own map to the last bit (tf.map_fn's rounded
    differently: up to 2.4e-7), in less time: 265 ms for 512 small images, 397 with map_fn.
    """
    from hubensemble.data.graph import (TOO_LARGE, format_named, header_check_refusal,
                                        too_large)
    from hubensemble.data.sniff import INVALID

    n = tf.size(image_bytes)
    ds = tf.data.Dataset.from_tensor_slices((tf.range(n), image_bytes))
    # Not autograph converted: `fn` is plain TensorFlow ops (as saveable_root's functions).
    ds = ds.map(tf.autograph.experimental.do_not_convert(lambda i, data: (i, tuple(fn(data))))
                ).ignore_errors(log_warning=True)
    none = tf.data.Dataset.from_tensors((tf.zeros([0], tf.int32), tuple(
        tf.zeros([0, *spec.shape], spec.dtype) for spec in specs)))
    # One batch of every decoded element; none (an empty request, or every element failed)
    # gives the empty one.
    done, out = ds.batch(tf.cast(tf.maximum(n, 1), tf.int64)).concatenate(none).take(
        1).get_single_element()

    def failed():
        # The first element that failed (element 0 of a request of one), named in one
        # message built once for both request sizes: strings chosen by tf.where, where a cond
        # per size traced the reason twice (a tenth of serve_bytes' graph each).
        decoded = tf.scatter_nd(done[:, None], tf.ones_like(done), [n])
        first = tf.cast(tf.where(tf.equal(decoded, 0))[0, 0], tf.int32)
        data = image_bytes[first]
        large, size = too_large(data)
        own = header_check_refusal(data)  # "": TensorFlow's decoder refused it
        many = n > 1
        at = tf.where(many, tf.strings.join(["image_bytes[", tf.strings.as_string(first),
                                             "] (of ", tf.strings.as_string(n), "): "]), "")
        reason = tf.where(
            tf.strings.length(own) > 0,
            tf.strings.regex_replace(own, r"^([^:]*): ", tf.strings.join([r"\1: ", at]),
                                     replace_global=False),
            tf.strings.join([INVALID, ": ", at, format_named(data),
                             tf.where(large, tf.strings.join([" ", size, TOO_LARGE]), DAMAGED)]))
        # Only for the decoder's refusal: its own words are in the log (`ignore_errors`).
        advice = tf.where(tf.equal(tf.strings.length(own), 0) & tf.logical_not(large),
                          LOGGED, "")
        # Alone, the same words without the position, where `fn` ran again on the element the
        # map dropped: TensorFlow's own error ("jpeg::Uncompress failed…") and its decoder's
        # warnings on stderr a second and third time.
        counted = tf.where(many, tf.strings.join([
            "; ", tf.strings.as_string(n - tf.size(done)), " of the ", tf.strings.as_string(n),
            " images cannot be decoded."]), tf.where(tf.strings.length(advice) > 0, ".", ""))
        said = tf.strings.join([reason, counted, advice])
        with tf.control_dependencies([tf.debugging.Assert(False, [said])]):
            return tuple(tf.identity(t) for t in out)

    return tf.cond(tf.equal(tf.size(done), n), lambda: tuple(out), refusal_path(failed))


def check_pixel_range(images: tf.Tensor) -> tf.Tensor:
    """`images` (float32 [N, H, W, 3]) unchanged when every value is finite and within
    [-PIXEL_RANGE_SLACK, 1 + PIXEL_RANGE_SLACK]; else the call fails with an
    InvalidArgumentError "hubensemble-input[range]: …" giving the batch's smallest and largest
    value and the count of values that are not finite. The members were trained on uint8
    pixels / 255: a TF Serving client sending 0..255 (or [-1, 1]) floats got confident,
    wrong classes, and a NaN pixel all-NaN probabilities with class id 0."""
    # Three reductions decide (a NaN or inf makes the sum non-finite); the message's work is
    # done only for a refused batch.
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    ok = (tf.math.is_finite(tf.reduce_sum(images)) & (low >= -PIXEL_RANGE_SLACK)
          & (high <= 1.0 + PIXEL_RANGE_SLACK))

    def refuse():
        finite = tf.math.is_finite(images)
        values = tf.boolean_mask(images, finite)  # the finite ones: a NaN is no 0
        not_finite = tf.reduce_sum(tf.cast(~finite, tf.int32))
        got = tf.cond(
            tf.size(values) > 0,
            lambda: tf.strings.format("values from {} to {} (the finite ones) and {} not "
                                      "finite", (tf.reduce_min(values), tf.reduce_max(values),
                                                 not_finite)),
            lambda: tf.strings.format("no finite value ({} not finite)", not_finite))
        said = tf.strings.join([
            "hubensemble-input[range]: `images` must be float32 pixels in [0, 1] (uint8 / "
            "255, as in training); got ", got])
        with tf.control_dependencies([tf.debugging.Assert(False, [said])]):
            return tf.identity(images)

    return tf.cond(ok, lambda: tf.identity(images), refuse)


def decode_image(data) -> tf.Tensor:
    """Encoded image bytes (a string scalar) -> float32 [H, W, 3] in [0, 1].

    The decode policy of training (`hubensemble.data.graph.decode_pixels`: JPEG, PNG, GIF
    first frame, BMP of every uncompressed depth incl. palettes, still WebP; grey to RGB; alpha
    composited onto white; a shorter side above 1024 px shrunk to 1024), then uint8 / 255
    as Task.dataset does, so a file gives the
    pixels training saw. Raises tf.errors.InvalidArgumentError (when run) for other bytes,
    with the reason (e.g. "hubensemble-decode[unsupported]: a TIFF file; serve_bytes
    decodes JPEG, PNG, GIF, BMP and WebP only").
    """
    from hubensemble.data.graph import decode_pixels

    return tf.cast(decode_pixels(data), tf.float32) / 255.0


def serve_bytes_metadata() -> dict:
    """What the metadata asset says about the serve_bytes signature's input: the formats it
    decodes, how, and what it refuses."""
    from hubensemble.data.sniff import GRAPH_FORMATS

    return {
        "formats": list(GRAPH_FORMATS),
        "decode": "hubensemble.data.graph.decode_pixels, the decode policy of training "
                  "(docs/data.md): GIF first frame, BMP palettes as colours, 16-bit PNG "
                  "samples v >> 8, alpha composited onto white round(c*a + 255*(1-a)), "
                  "a shorter side above 1024 px shrunk to 1024, aspect kept "
                  "(data.shrink.shrink_to_short_side)",
        "refused": "other formats (TIFF, HEIF, ...), animated WebP and damaged files: an "
                   "InvalidArgumentError with the reason; `hubensemble predict` decodes "
                   "TIFF and other formats Pillow reads and sends them as PNG",
    }
