"""ImageNet-C style corruptions (Hendrycks & Dietterich, 2019) at the data's scale: pure
functions of (images, severity, seed) on float images in [0, 1], their parameters per severity,
and the names `evaluate` accepts. `hubensemble.evaluate` re-exports them."""

from __future__ import annotations

import functools
import math
import zlib
from typing import Callable

import numpy as np

from hubensemble import options
from hubensemble.errors import HubensembleError

#: The severities evaluated: 1, 2 and 3 are ImageNet-C's 1, 3 and 5 (see PARAMETERS).
SEVERITIES = options.default("severities")

# Severity 1, 2, 3 here are ImageNet-C's severities 1, 3 and 5 (Hendrycks & Dietterich,
# 2019, `imagenet_c/corruptions.py`): the weakest, middle and strongest of its five levels.
# Only the blur radius depends on the image size (see `blur_sigma`); the others act per pixel
# or per image and mean the same at 8 px as at 224 px.
PARAMETERS = {
    "gaussian_noise": (0.08, 0.18, 0.38),  # std of additive N(0, s^2) noise, images in [0, 1]
    "shot_noise": (60.0, 12.0, 3.0),        # photons per unit intensity: Poisson(x * c) / c
    "impulse_noise": (0.03, 0.09, 0.27),    # fraction of values set to 0 or 1 (half each)
    "gaussian_blur": (1.0, 3.0, 6.0),       # sigma in px at 224 px, scaled (blur_sigma)
    "contrast": (0.4, 0.2, 0.05),           # (x - image mean) * c + image mean
    "brightness": (0.1, 0.3, 0.5),          # added to the HSV value channel, clipped at 1
    "jpeg": (25, 15, 7),                    # JPEG quality (tf.io.encode_jpeg)
    "pixelate": (0.6, 0.4, 0.25),           # area-downscale by c, nearest-upscale back
}
#: What `corruptions=True` evaluates: the five corruptions of the issue (noise, blur, contrast,
#: brightness, JPEG); the others are available by name.
DEFAULT_CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg")
#: ImageNet-C's image side: blur sigmas are given for it.
REFERENCE_SIDE = 224
#: The weakest blur applied (pixels): CIFAR-10-C's severity 1.
MIN_BLUR_SIGMA = 0.4


# ---------------------------------------------------------------------------------------------
# Corruptions: pure functions of (images, severity, seed) on float images in [0, 1]
# ---------------------------------------------------------------------------------------------

def _param(name, severity):
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or int(severity) not in SEVERITIES:
        raise HubensembleError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, "
                               f"got {severity!r}")
    return PARAMETERS[name][int(severity) - 1]


def _as_batch(images):
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4 or x.shape[-1] != 3:
        raise HubensembleError(f"expected images [N, H, W, 3] or [H, W, 3], got {x.shape}")
    return x, False


#: The alignment of a corruption's result, in bytes: TensorFlow's (Allocator::
#: kAllocatorAlignment), so `evaluate` can give the array to the served model without a copy.
ALIGNMENT = 64


def aligned_empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array of `shape` whose data start at a multiple of
    ALIGNMENT bytes (NumPy's large arrays start 16 bytes into a page). Its base is the
    uint8 buffer it is cut from."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + ALIGNMENT, np.uint8)
    skip = -buf.ctypes.data % ALIGNMENT
    return buf[skip:skip + nbytes].view(dtype).reshape(shape)


def shared_tensor(images: np.ndarray):
    """float32 `images` as a tf.Tensor: the array's own memory (DLPack, no copy) when it is
    C-contiguous at ALIGNMENT (`aligned_empty`'s arrays are), else tf.constant's copy
    (TensorFlow stops the process at an op on a misaligned buffer, so only an aligned one is
    shared). The caller keeps the array unchanged while the tensor lives.

    A shared tensor's bytes are NumPy's, given back to the system when the last of the array
    and the tensor goes. A tensor TensorFlow makes on the CPU (tf.constant, tf.gather, any
    op's output) comes from oneDNN's caching allocator (TensorFlow 2.21 with oneDNN on, the
    default on x86), which keeps the bytes resident after the tensor is freed, for reuse by
    later tensors only: a tf.gather of 64 phone photos at 1365 x 1024 (1.07 GB) left RSS
    1.07 GB higher after it was dropped, and it stayed so through the stages after it."""
    from hubensemble._tf import tensorflow as tf

    if (isinstance(images, np.ndarray) and images.dtype == np.float32
            and images.flags.c_contiguous and images.ctypes.data % ALIGNMENT == 0):
        return tf.experimental.dlpack.from_dlpack(images.__dlpack__())
    return tf.constant(images, tf.float32)


def _rngs(name, severity, seed, start, n):
    """One generator per image, keyed by (seed, corruption, severity, index in the split), so
    a split corrupted batch by batch gets the same noise whatever the batch size."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HubensembleError(f"seed must be an integer >= 0, got {seed!r}")
    tag = zlib.crc32(name.encode("utf-8"))
    return [np.random.default_rng([int(seed), tag, int(severity), int(start) + i])
            for i in range(n)]


_CALL_DOC = """

    `images`: float [N, H, W, 3] (or one [H, W, 3]) in [0, 1]; `severity`: 1, 2 or 3
    (ImageNet-C's 1, 3 and 5; Hendrycks & Dietterich, 2019); `seed`: an integer >= 0;
    `start`: the index of images[0] in the split (the noise of image i depends only on the
    seed, the corruption, the severity and start + i). Returns float32 of the same shape,
    clipped to [0, 1]. Raises HubensembleError for another severity, a bad seed or shape.
    """


def _corruption(name):
    """Wraps fn(x [N, H, W, 3] float32, param, rngs) as fn(images, severity, seed, *, start)."""

    def register(fn):
        def corrupt(images, severity, seed=0, *, start=0):
            param = _param(name, severity)
            x, single = _as_batch(images)
            rngs = _rngs(name, severity, seed, start, len(x))
            out = fn(x, param, rngs)
            if isinstance(out, np.ndarray) and out.dtype == np.float32 \
                    and not np.may_share_memory(out, x):
                np.clip(out, 0.0, 1.0, out=out)  # its own array: no second copy of the batch
            else:
                out = np.clip(out, 0.0, 1.0).astype(np.float32)
            return out[0] if single else out

        corrupt.__name__ = name
        corrupt.__qualname__ = name
        corrupt.__doc__ = (fn.__doc__ or "").rstrip() + _CALL_DOC.rstrip()
        return corrupt

    return register


@_corruption("gaussian_noise")
def gaussian_noise(x, std, rngs):
    """Additive Gaussian noise of std 0.08 / 0.18 / 0.38, clipped to [0, 1]."""
    # x + std * noise, computed in one array of the batch's size (the same float32 values
    # as the expression; each image's noise drawn into its slice).
    out = aligned_empty(x.shape)
    for o, r in zip(out, rngs):
        r.standard_normal(dtype=np.float32, out=o)
    out *= np.float32(std)
    out += x
    return out


@_corruption("shot_noise")
def shot_noise(x, photons, rngs):
    """Poisson (shot) noise: Poisson(x * c) / c with c = 60 / 12 / 3 photons."""
    out = aligned_empty(x.shape)
    for o, xi, r in zip(out, x, rngs):  # one image's draws at a time, not a list of them all
        o[...] = r.poisson(xi * photons).astype(np.float32) / np.float32(photons)
    return out


@_corruption("impulse_noise")
def impulse_noise(x, amount, rngs):
    """Salt-and-pepper noise: a fraction 0.03 / 0.09 / 0.27 of the values set to 0 or 1."""
    out = aligned_empty(x.shape)
    out[...] = x
    for xi, r in zip(out, rngs):
        u = r.random(xi.shape, dtype=np.float32)
        xi[u < amount / 2] = 0.0
        xi[(u >= amount / 2) & (u < amount)] = 1.0
    return out


def blur_sigma(sigma_224, height, width) -> float:
    """ImageNet-C's blur sigma (pixels at 224 px) for an image of height x width.

    sigma = max(c * sqrt(side / 224), 0.4), side = the shorter one. Linear scaling would
    make the blur vanish on small images (0.04 px at 8 px), while the benchmarks made for
    small images blur more per pixel (CIFAR-10-C 0.4-1 px at 32 px, Tiny-ImageNet-C
    0.5-1.5 px at 64 px); the square root gives 0.4 / 1.1 / 2.3 px at 32 px and
    0.53 / 1.6 / 3.2 px at 64 px. The floor, CIFAR-10-C's weakest blur, keeps severity 1
    visible on tiny images (a sigma of 0.2 px leaves every pixel as it was).
    """
    side = min(int(height), int(width))
    return max(float(sigma_224) * math.sqrt(side / REFERENCE_SIDE), MIN_BLUR_SIGMA)


def gaussian_kernel(sigma) -> np.ndarray:
    """A normalised 1-D Gaussian kernel, float32 [2r + 1] summing to 1, r = max(1, ceil(4
    sigma)) (truncated at 4 sigma, as scipy.ndimage.gaussian_filter); sigma in pixels, > 0."""
    radius = max(1, int(math.ceil(4.0 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


#: The most float32 values (padded images) the blur and the JPEG round trip give TensorFlow in
#: one call: 4 Mi values, 16 MB. Small images go a chunk of the batch at a time (the blur of
#: 64 images of 8 px ran 256 eager ops a batch, 4 ops per image); an image larger than it (a
#: phone photo: 4.2 Mi values held, more padded) alone, as all went before: TensorFlow keeps
#: the bytes of its tensors resident (`shared_tensor`), 1.7 GB after a whole batch of 32
#: photos at 1365 x 1024 had been blurred in one call.
CHUNK_VALUES = 1 << 22
#: A batch goes to TensorFlow in at least this many chunks (of one image at least):
#: tf.constant copies its chunk into memory of NumPy's, so a chunk of a quarter of the batch
#: keeps a corruption's peak at its result and a quarter batch more (test_corruption_memory).
MIN_CHUNKS = 4


def chunks(n: int, values_per_image: int) -> list[slice]:
    """The slices of a batch of `n` images (>= 0) that go to TensorFlow together, in order:
    each of as many images as fit in CHUNK_VALUES at `values_per_image` (>= 1) values each,
    and at most ceil(n / MIN_CHUNKS), but at least one; every index 0..n-1 is in exactly one
    slice ([] for no images)."""
    step = min(CHUNK_VALUES // max(1, int(values_per_image)), -(-n // MIN_CHUNKS))
    step = max(1, step)
    return [slice(a, min(a + step, n)) for a in range(0, n, step)]


@_corruption("gaussian_blur")
def gaussian_blur(x, sigma_224, rngs):
    """Gaussian blur, sigma 1 / 3 / 6 px at 224 px scaled by sqrt(side / 224) (at least
    0.4 px; see blur_sigma); the edge pixels are repeated outwards."""
    from hubensemble._tf import tensorflow as tf

    n, h, w, c = x.shape
    k = gaussian_kernel(blur_sigma(sigma_224, h, w))
    r = len(k) // 2
    kh = tf.constant(np.tile(k[:, None, None, None], (1, 1, c, 1)))
    kw = tf.constant(np.tile(k[None, :, None, None], (1, 1, c, 1)))
    rows, cols = np.clip(np.arange(-r, h + r), 0, h - 1), np.clip(np.arange(-r, w + r), 0, w - 1)
    out = aligned_empty(x.shape)
    # A chunk at a time (`chunks`, by the padded size): TensorFlow's tensors of a whole batch
    # (the padded copies and both passes) kept 1.7 GB resident after a batch of 32 phone
    # photos held at 1365 x 1024. Each image is blurred on its own by the ops, so a chunk
    # gives each image's pixels of a call on it alone, bit for bit (test_corruption_memory).
    for part in chunks(n, (h + 2 * r) * (w + 2 * r) * c):
        t = tf.constant(x[part])
        # Edge padding by index clipping works for any radius, even one larger than the image.
        t = tf.gather(tf.gather(t, rows, axis=1), cols, axis=2)
        t = tf.nn.depthwise_conv2d(t, kh, strides=[1, 1, 1, 1], padding="VALID")
        t = tf.nn.depthwise_conv2d(t, kw, strides=[1, 1, 1, 1], padding="VALID")
        out[part] = np.asarray(t)  # the tensor's own memory: no NumPy copy of the chunk
    return out


@_corruption("contrast")
def contrast(x, factor, rngs):
    """Contrast reduced towards each image's mean: (x - mean) * 0.4 / 0.2 / 0.05 + mean."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    out = np.subtract(x, mean, out=aligned_empty(x.shape))  # (x - mean) * factor + mean,
    # in one array of the batch's size
    out *= np.float32(factor)
    out += mean
    return out


@_corruption("brightness")
def brightness(x, delta, rngs):
    """HSV value + 0.1 / 0.3 / 0.5 (clipped at 1), hue and saturation kept.

    With H and S fixed, RGB is proportional to V, so RGB * V' / V is the exact HSV round trip
    (a black pixel, V = 0, becomes grey V')."""
    out = aligned_empty(x.shape)
    for o, xi in zip(out, x):  # per image: the temporaries are an image's, not the batch's
        v = xi.max(axis=-1, keepdims=True)
        v_new = np.minimum(v + np.float32(delta), 1.0)
        scale = np.divide(v_new, v, out=np.zeros_like(v), where=v > 0)
        o[...] = np.where(v > 0, xi * scale, v_new)
    return out


@functools.cache
def jpeg_round_trip():
    """The tf.function that encodes each of a batch of uint8 images [N, H, W, 3] as JPEG at a
    quality (int32 scalar, 0-100) and decodes it back (tf.io.encode_jpeg, tf.io.decode_jpeg:
    uint8 [N, H, W, 3]), made once per process and traced once for every shape and quality
    (its input signature): one call a chunk, where each image ran two ops of its own."""
    from hubensemble._tf import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8),
                                  tf.TensorSpec([], tf.int32)], autograph=False)
    def round_trip(images, quality):
        # EncodeJpegVariableQuality: tf.io.encode_jpeg with the quality a tensor (its other
        # settings are encode_jpeg's defaults), what tf.image.adjust_jpeg_quality runs.
        return tf.map_fn(lambda image: tf.io.decode_jpeg(
            tf.raw_ops.EncodeJpegVariableQuality(images=image, quality=quality), channels=3),
            images, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))

    return round_trip


@_corruption("jpeg")
def jpeg(x, quality, rngs):
    """JPEG compression at quality 25 / 15 / 7 (tf.io.encode_jpeg, then decode)."""
    n, h, w, c = x.shape
    round_trip = jpeg_round_trip()
    out = aligned_empty(x.shape)
    # A chunk at a time (`chunks`): no uint8 copy of the whole batch; each image is encoded
    # and decoded on its own, so its pixels are those of a round trip of it alone.
    for part in chunks(n, h * w * c):
        u8 = np.empty((len(range(n)[part]), h, w, c), np.uint8)
        for j, xi in enumerate(x[part]):  # per image: no float copy of the chunk
            u8[j] = np.round(np.clip(xi, 0.0, 1.0) * 255.0)
        out[part] = np.asarray(round_trip(u8, np.int32(quality)))  # TensorFlow's memory
    out /= np.float32(255.0)
    return out


@_corruption("pixelate")
def pixelate(x, factor, rngs):
    """Area-downscale to 0.6 / 0.4 / 0.25 of the size, then nearest-neighbour back."""
    from hubensemble._tf import tensorflow as tf

    _, h, w, _ = x.shape
    small = (max(1, int(h * factor)), max(1, int(w * factor)))
    t = tf.image.resize(x, small, method="area")
    return tf.image.resize(t, (h, w), method="nearest").numpy()


#: name -> fn(images, severity, seed=0, *, start=0) -> corrupted float32 images in [0, 1].
#: `images` float [N, H, W, 3] (or one [H, W, 3]) in [0, 1]; `start` = index of images[0] in
#: the whole split (the noise of image i depends only on seed, corruption, severity, start + i).
CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
    "pixelate": pixelate,
}
#: The corruptions whose result depends on the seed.
RANDOM_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")


def get_corruption(name: str) -> Callable:
    """The corruption function called `name` (a key of CORRUPTIONS); HubensembleError listing
    the known names for an unknown one, with the one it most likely mistypes
    (`options.meant`: "(did you mean gaussian_noise?)")."""
    try:
        return CORRUPTIONS[name]
    except (KeyError, TypeError):
        # `--corruptions gausian_noise` was told the names alone (options.meant: git's rule)
        raise HubensembleError(f"unknown corruption {name!r}{options.meant(name, CORRUPTIONS)}"
                               f"; choose from {', '.join(CORRUPTIONS)}") from None


def resolve_corruptions(corruptions) -> list[str]:
    """The corruption names to evaluate: True -> DEFAULT_CORRUPTIONS; False/None -> none;
    "all" (or "*") -> every one; "default" or "" -> DEFAULT_CORRUPTIONS; a list (or a
    comma-separated string) of names -> those, in the given order without repeats.
    HubensembleError for an unknown name (listing the known ones)."""
    if corruptions is True:
        return list(DEFAULT_CORRUPTIONS)
    if corruptions is False or corruptions is None:
        return []
    if isinstance(corruptions, str):
        if corruptions.strip() in ("all", "*"):
            return list(CORRUPTIONS)
        if corruptions.strip() in ("default", ""):
            return list(DEFAULT_CORRUPTIONS)
        corruptions = [c.strip() for c in corruptions.split(",") if c.strip()]
    for name in corruptions:  # before the de-duplication: a dict or list is no name either
        get_corruption(name)
    return list(dict.fromkeys(corruptions))


def _check_severities(severities) -> list[int]:
    # _param refuses anything but 1, 2 and 3 (a HubensembleError naming them).
    out = list(dict.fromkeys(int(s) for s in severities if _param("contrast", s) is not None))
    if not out:
        raise HubensembleError(f"give at least one severity of {SEVERITIES}")
    return out


def describe_corruptions() -> str:
    """A plain-text table of every corruption's parameter per severity (PARAMETERS)."""
    lines = [f"{'corruption':<16}" + "".join(f"{'severity ' + str(s):>14}" for s in SEVERITIES)]
    for name in CORRUPTIONS:
        lines.append(f"{name:<16}" + "".join(f"{PARAMETERS[name][s - 1]:>14}"
                                             for s in SEVERITIES))
    return "\n".join(lines)


def _corrupt(name, x, idx, severity, seed):
    """CORRUPTIONS[name] on images x [B, H, W, 3] that are the split's images `idx`
    (ascending): one call per run of consecutive indices, so image i gets the noise of split
    index i however the split was batched."""
    cuts = [0, *(np.flatnonzero(np.diff(idx) != 1) + 1).tolist(), len(idx)]
    if len(cuts) == 2 and len(idx):  # one run (a batch in split order): no concatenated copy
        return CORRUPTIONS[name](x, severity, seed, start=int(idx[0]))
    return np.concatenate([CORRUPTIONS[name](x[a:b], severity, seed, start=int(idx[a]))
                           for a, b in zip(cuts[:-1], cuts[1:])])
