"""Train/eval preprocessing as stateless TF ops: HyperRule crops, A.3 augmentations, MixUp."""

from __future__ import annotations

import functools
import math

from hubensemble._tf import tensorflow as tf

from hubensemble.errors import HubensembleError
from hubensemble.hyperrule import AugConfig

# Tags folded into a batch's seed, one per random decision, so that switching one augmentation
# on or off never changes the random numbers another one sees.
_CROP, _FLIP, _BRIGHTNESS, _HUE, _SATURATION, _CONTRAST = 1, 2, 3, 4, 5, 6
_MIX_LAMBDA, _MIX_PERM = 7, 8

INCEPTION_AREA_RANGE = (0.05, 1.0)
INCEPTION_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)


def step_seed(seed, step) -> tf.Tensor:
    """The stateless seed (shape [2], int64) of training step `step` of a trial seeded `seed`.

    Works with Python ints and with scalar tensors (e.g. a `tf.data` enumerate counter), so a
    batch's augmentation is a pure function of (seed, step).
    """
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64))


def _sub(seed, tag: int) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), tag)


def _as_float(images) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.image.convert_image_dtype(images, tf.float32)
    return tf.cast(images, tf.float32)


def unit_float(images) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1] as ``x / 255``: the conversion of `Task.dataset`'s
    stream (`streams.split_stream`), which `train_preprocess` applies to held uint8 images.
    (``tf.image.convert_image_dtype`` multiplies by 1/255 instead: 126 of the 256 values
    differ from these in the last bit.)"""
    return tf.cast(images, tf.float32) / 255.0


def resize(images, size) -> tf.Tensor:
    """The one resize of hubensemble: float images [B, H, W, C] or [H, W, C] in [0, 1] ->
    (height, width) = `size` (an int for a square, or an int32 [2] tensor), float32, still
    in [0, 1].

    Bilinear with antialiasing (``tf.image.resize(..., antialias=True)``): shrinking a large
    image to a CPU profile's 64 px would alias otherwise; when enlarging, antialiasing
    changes nothing (equal to plain bilinear within 1.2e-7). Its kernel weights are
    non-negative and sum to 1, so values stay in [0, 1]; the clip only removes rounding.
    Ranking, fine-tuning, evaluation, the export's layers and its ``serve_bytes`` all resize
    through this function, so a module sees the same pixels in every stage.
    """
    if isinstance(size, int):
        size = (size, size)
    # A [2] int32 tensor is taken as it is (`shrink.shrink_to_short_side`: known when run).
    hw = size if tf.is_tensor(size) else [int(size[0]), int(size[1])]
    out = tf.image.resize(_as_float(images), hw, method="bilinear", antialias=True)
    return tf.clip_by_value(out, 0.0, 1.0)


def resize_uint8(pixels, size, *, strip: int = 256) -> tf.Tensor:
    """uint8 pixels [H, W, C] (values 0..255) -> uint8 [h, w, C], (h, w) = `size` (an int32 [2]
    tensor, or a pair of ints): round(255 * `resize`(`_as_float`(pixels), size)), bit for bit
    (round half to even), without a float copy of the whole image.

    TensorFlow's resize (ScaleAndTranslate) resizes the height first, then the width, each
    column and then each row apart; this runs its height pass on `strip` columns at a time
    (converted to float32 one strip at a time), then its width pass on the result, which is
    [h, W] in float32 (held transposed, [W, h, C], so that the strips join on their first
    axis): the very sums of the one call. A 12000 x 12000 grey PNG (432 MB of uint8 RGB)
    peaked at 3.1 GB RSS in decoding through `resize`, which converts the whole image to
    float32 (docs/data.md, "Decoding")."""
    pixels = tf.convert_to_tensor(pixels, tf.uint8)
    hw = tf.convert_to_tensor(size if tf.is_tensor(size) else [int(size[0]), int(size[1])],
                              tf.int32)
    width, channels = tf.shape(pixels)[1], pixels.shape[-1]
    n = (width + strip - 1) // strip
    parts = tf.TensorArray(tf.float32, size=n, infer_shape=False,
                           element_shape=tf.TensorShape([None, None, channels]))

    def height_pass(i, parts):
        part = pixels[:, i * strip:tf.minimum((i + 1) * strip, width)]
        tall = tf.image.resize(_as_float(part), tf.stack([hw[0], tf.shape(part)[1]]),
                               method="bilinear", antialias=True)
        return i + 1, parts.write(i, tf.transpose(tall, [1, 0, 2]))

    _, parts = tf.while_loop(lambda i, _: i < n, height_pass, [tf.constant(0), parts])
    # [W, h, C] -> [w, h, C]: the width pass, as a height pass of the transposed rows.
    out = tf.image.resize(parts.concat(), tf.stack([hw[1], hw[0]]), method="bilinear",
                          antialias=True)
    out = tf.clip_by_value(tf.transpose(out, [1, 0, 2]), 0.0, 1.0)
    return tf.cast(tf.round(out * 255.0), tf.uint8)


def _resize(images, size: int) -> tf.Tensor:
    if images.dtype == tf.uint8:
        # Held pixels (`train_preprocess`): each image converted with `unit_float` and resized
        # on its own, so the float32 copy is of one image at its held size, never of the batch
        # (16 phone photos: 268 MB). The same pixels as the batch's conversion and resize,
        # bit for bit (the resize treats each image apart; test_augment).
        channels = images.shape[-1]
        return tf.map_fn(lambda image: resize(unit_float(image)[tf.newaxis], size)[0], images,
                         fn_output_signature=tf.TensorSpec([size, size, channels], tf.float32),
                         parallel_iterations=1)
    return resize(images, size)


def _check_size(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HubensembleError(f"{what} must be a positive integer, got {value!r}")
    return value


def _batched(fn, *, held_uint8=False):
    """Let `fn` (written for [B, H, W, C]) also take a single [H, W, C] image. Images are
    converted to float32 first (`_as_float`), but for uint8 ones with `held_uint8`: `fn`
    converts those itself (`_resize`)."""

    def wrapper(images, *args, **kwargs):
        images = tf.convert_to_tensor(images)
        if not (held_uint8 and images.dtype == tf.uint8):
            images = _as_float(images)
        rank = images.shape.rank
        if rank == 3:
            return fn(images[tf.newaxis], *args, **kwargs)[0]
        if rank != 4:
            raise HubensembleError(
                f"images must be [batch, height, width, channels] or [height, width, channels]; "
                f"got shape {images.shape}")
        return fn(images, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def random_crop(images, crop: int, seed) -> tf.Tensor:
    """An independent uniformly placed crop x crop window of each image in [B, H, W, C]."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    tf.debugging.assert_greater_equal(
        tf.minimum(height, width), crop, message="random_crop: image smaller than the crop")
    offsets_y = tf.random.stateless_uniform(
        [batch], _sub(seed, 0), minval=0, maxval=height - crop + 1, dtype=tf.int32)
    offsets_x = tf.random.stateless_uniform(
        [batch], _sub(seed, 1), minval=0, maxval=width - crop + 1, dtype=tf.int32)
    # Exact pixel windows by gathering rows then columns per image (no interpolation).
    rows = offsets_y[:, tf.newaxis] + tf.range(crop)[tf.newaxis, :]
    cols = offsets_x[:, tf.newaxis] + tf.range(crop)[tf.newaxis, :]
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def inception_crop(images, crop: int, seed) -> tf.Tensor:
    """Inception-style crop of each image: random area 5-100 %, aspect 3/4-4/3, resized to crop.

    The box comes from `tf.image.stateless_sample_distorted_bounding_box` with no object
    constraint (as big_vision's `inception_crop`); the whole image is used when no box fits.
    """
    batch = tf.shape(images)[0]
    channels = images.shape[-1]
    seeds = tf.random.stateless_uniform(
        [batch, 2], _sub(seed, 0), minval=None, maxval=None, dtype=tf.int32)

    def one(args):
        image, image_seed = args
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([0, 0, 4], tf.float32), seed=image_seed,
            min_object_covered=0.0, aspect_ratio_range=INCEPTION_ASPECT_RANGE,
            area_range=INCEPTION_AREA_RANGE, max_attempts=100,
            use_image_if_no_bounding_boxes=True)
        patch = tf.slice(image, begin, size)
        return _resize(patch[tf.newaxis], crop)[0]

    return tf.map_fn(one, (images, seeds),
                     fn_output_signature=tf.TensorSpec([crop, crop, channels], tf.float32))


def random_flip(images, seed) -> tf.Tensor:
    """Mirror each image left/right independently with probability 0.5."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed) < 0.5
    return tf.where(flip[:, tf.newaxis, tf.newaxis, tf.newaxis], tf.reverse(images, [2]), images)


def _per_image(images, seed, low, high) -> tf.Tensor:
    return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed,
                                       minval=low, maxval=high)


@functools.partial(_batched, held_uint8=True)
def train_preprocess(images, *, resize: int, crop: int, flip: bool, aug: AugConfig | None,
                     seed_tensor) -> tf.Tensor:
    """Training preprocessing of images in [0, 1] -> float32 [B, crop, crop, C] in [0, 1].

    uint8 images (0..255, as a task holds them: `Task.dataset(..., uint8=True)`) are
    converted with `unit_float`, each image on its own inside the first resize or crop: the
    same pixels as `Task.dataset`'s float32 batch given here, without that batch's float32
    copy at the held size.

    aug None (BiT-HyperRule): resize to (resize, resize), a random crop x crop window per image,
    and a random left/right flip per image if `flip`.

    With an AugConfig (paper A.3), `resize` is unused and, in this order:
      crop: "inception" -> random box of the original image (area 5-100 %, aspect 3/4-4/3)
            resized to crop; "random" -> resize to round(resize_factor * crop), random crop;
      flip: per image with p 0.5, only if both `flip` (the task allows it) and aug.flip;
      brightness: + delta per image, delta ~ U(-delta_max, delta_max), then clip to [0, 1];
      hue: hue + delta (mod 1) per image, delta ~ U(-delta_max, delta_max) (as adjust_hue);
      saturation: saturation * s per image, s ~ U(s_min, s_max), clipped to [0, 1];
      contrast: (x - mean) * s + mean per image, mean per channel, s ~ U(s_min, s_max),
        which multiplies each channel's standard deviation by s;
      finally clip to [0, 1].
    MixUp needs the labels: apply `mixup` to the batch afterwards.

    Every random number comes from stateless ops seeded by `seed_tensor` (shape [2]; see
    `step_seed`), so the same seed gives the same batch, in eager mode, in a tf.function and in
    tf.data.Dataset.map alike.
    """
    crop = _check_size(crop, "crop")
    seed = tf.cast(seed_tensor, tf.int64)
    if aug is None:
        resize = _check_size(resize, "resize")
        if resize < crop:
            raise HubensembleError(f"resize ({resize}) must be >= crop ({crop})")
        out = random_crop(_resize(images, resize), crop, _sub(seed, _CROP))
        if flip:
            out = random_flip(out, _sub(seed, _FLIP))
        return tf.clip_by_value(out, 0.0, 1.0)

    if aug.crop == "inception":
        out = inception_crop(images, crop, _sub(seed, _CROP))
    else:
        pre = max(crop, int(math.floor(aug.resize_factor * crop + 0.5)))
        out = random_crop(_resize(images, pre), crop, _sub(seed, _CROP))
    if flip and aug.flip:
        out = random_flip(out, _sub(seed, _FLIP))
    if aug.brightness is not None:
        d = aug.brightness
        out = out + _per_image(out, _sub(seed, _BRIGHTNESS), -d, d)
    # HSV conversion needs values in [0, 1].
    out = tf.clip_by_value(out, 0.0, 1.0)
    if aug.hue is not None or aug.saturation is not None:
        hsv = tf.image.rgb_to_hsv(out)
        hue, sat, val = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
        if aug.hue is not None:
            d = aug.hue
            hue = tf.math.floormod(hue + _per_image(out, _sub(seed, _HUE), -d, d), 1.0)
        if aug.saturation is not None:
            factor = _per_image(out, _sub(seed, _SATURATION), *aug.saturation)
            sat = tf.clip_by_value(sat * factor, 0.0, 1.0)
        out = tf.image.hsv_to_rgb(tf.concat([hue, sat, val], axis=-1))
    if aug.contrast is not None:
        factor = _per_image(out, _sub(seed, _CONTRAST), *aug.contrast)
        mean = tf.reduce_mean(out, axis=[1, 2], keepdims=True)
        out = (out - mean) * factor + mean
    return tf.clip_by_value(out, 0.0, 1.0)


@_batched
def eval_preprocess(images, *, size: int) -> tf.Tensor:
    """Evaluation/embedding preprocessing: resize to (size, size), no crop -> float32 in [0, 1].

    As BiT's evaluation: the whole image, resized straight to the training crop size. A
    resize-then-centre-crop would drop the border, where small low-resolution images (32 px
    VTAB tasks) keep much of their content; the small aspect change for non-square images
    matters less than that.
    """
    size = _check_size(size, "size")
    return resize(images, size)


def sample_beta(alpha: float, seed, shape=()) -> tf.Tensor:
    """Beta(alpha, alpha) samples (float32) from stateless ops, accurate for small alpha.

    Uses G(a) = G(a + 1) * U^(1/a) in log space: lambda = sigmoid(log G1 - log G2). Drawing
    Gamma(alpha) directly underflows to 0 in float32 for alpha ~ 0.01 (then 0/0).
    """
    alpha = float(alpha)
    if not alpha > 0:
        raise HubensembleError(f"Beta alpha must be > 0, got {alpha!r}")
    shape = [2] + list(shape)
    seed = tf.cast(seed, tf.int64)
    gammas = tf.random.stateless_gamma(shape, _sub(seed, 0), alpha=alpha + 1.0, dtype=tf.float64)
    uniforms = tf.random.stateless_uniform(shape, _sub(seed, 1), dtype=tf.float64)
    uniforms = tf.maximum(uniforms, 1e-300)
    log_g = tf.math.log(gammas) + tf.math.log(uniforms) / alpha
    return tf.cast(tf.sigmoid(log_g[0] - log_g[1]), tf.float32)


def mixup(images, one_hot_labels, alpha: float, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp a batch: x = lam x + (1 - lam) x[perm], y likewise, one lam ~ Beta(a, a) per batch.

    As BiT, a single lambda for the whole batch; `perm` is a random permutation of the batch.
    alpha <= 0 returns the inputs unchanged (labels cast to float32). The mixed labels are soft
    labels that still sum to 1.
    """
    images = _as_float(images)
    labels = tf.cast(one_hot_labels, tf.float32)
    if not alpha > 0:
        return images, labels
    seed = tf.cast(seed, tf.int64)
    lam = sample_beta(alpha, _sub(seed, _MIX_LAMBDA))
    perm = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], _sub(seed, _MIX_PERM)))
    mixed_images = lam * images + (1.0 - lam) * tf.gather(images, perm)
    mixed_labels = lam * labels + (1.0 - lam) * tf.gather(labels, perm)
    return mixed_images, mixed_labels
