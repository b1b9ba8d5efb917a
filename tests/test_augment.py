"""Tests for the augmentation tensor ops: crops, flips, colour distortions, MixUp, seeding."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from hubensemble import augment
from hubensemble.errors import HubensembleError
from hubensemble.hyperrule import AugConfig

RNG = np.random.default_rng(0)
# Random images (asymmetric, so a mirror is visible) and mid-range images (so no brightness or
# contrast change reaches the clip at 0 or 1).
IMAGES = RNG.random((16, 37, 41, 3)).astype(np.float32)
MID = (0.4 + 0.2 * RNG.random((64, 24, 24, 3))).astype(np.float32)
SEED = augment.step_seed(1, 0)


def _ramp(size=64, batch=64):
    """Images whose channel 0 is the row position and channel 1 the column position in [0, 1]."""
    y, x = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    img = np.stack([y, x, np.full_like(y, 0.5)], axis=-1).astype(np.float32)
    return np.repeat(img[None], batch, axis=0)


def _only(**kw):
    """An AugConfig that keeps the image geometry: a 'random crop' of the whole image."""
    return AugConfig(crop="random", resize_factor=1.0, **kw)


ALL = AugConfig(crop="inception", flip=True, brightness=0.2, hue=0.2, saturation=(0.5, 1.5),
                contrast=(0.5, 2.0), mixup_alpha=0.1)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("aug", [
    None, ALL, AugConfig(crop="random", resize_factor=1.3, brightness=0.2, contrast=(0.7, 2.8))])
def test_shapes_dtypes_and_range(aug):
    out = augment.train_preprocess(IMAGES, resize=40, crop=32, flip=True, aug=aug,
                                   seed_tensor=SEED)
    assert out.shape == (16, 32, 32, 3) and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
    single = augment.train_preprocess(IMAGES[0], resize=40, crop=32, flip=True, aug=aug,
                                      seed_tensor=SEED)
    assert single.shape == (32, 32, 3)


def test_uint8_input_is_scaled_to_unit_range():
    images = (RNG.random((4, 16, 16, 3)) * 255).astype(np.uint8)
    out = augment.eval_preprocess(images, size=16)  # same size: the resize is the identity
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), images / 255.0, atol=1e-6)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(HubensembleError, match="resize"):
        augment.train_preprocess(IMAGES, resize=30, crop=32, flip=False, aug=None,
                                 seed_tensor=SEED)
    with pytest.raises(HubensembleError, match="batch, height, width"):
        augment.eval_preprocess(IMAGES[0, :, :, 0], size=8)
    with pytest.raises(HubensembleError, match="crop"):
        augment.train_preprocess(IMAGES, resize=40, crop=0, flip=False, aug=None,
                                 seed_tensor=SEED)


# ----------------------------------------------------------------------------- crops and flips

def test_default_crop_is_an_exact_window_of_the_resized_image():
    out = augment.train_preprocess(IMAGES, resize=40, crop=32, flip=False, aug=None,
                                   seed_tensor=SEED).numpy()
    resized = tf.image.resize(IMAGES, [40, 40], antialias=True).numpy()
    offsets = []
    for img, crop in zip(resized, out):
        found = [(y, x) for y in range(9) for x in range(9)
                 if np.array_equal(np.clip(img[y:y + 32, x:x + 32], 0, 1), crop)]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 8  # each image gets its own window


def _mirrored(out, reference):
    """Per image: False if out == reference, True if out == its mirror (else fail)."""
    flags = []
    for o, r in zip(out, reference):
        if np.allclose(o, r, atol=1e-6):
            flags.append(False)
        else:
            np.testing.assert_allclose(o, r[:, ::-1], atol=1e-6)
            flags.append(True)
    return np.array(flags)


def test_flip_really_mirrors_about_half_the_images():
    images = RNG.random((64, 16, 16, 3)).astype(np.float32)
    out = augment.train_preprocess(images, resize=16, crop=16, flip=True, aug=None,
                                   seed_tensor=SEED).numpy()
    flags = _mirrored(out, images)
    assert 16 <= flags.sum() <= 48
    out = augment.train_preprocess(images, resize=16, crop=16, flip=False, aug=None,
                                   seed_tensor=SEED).numpy()
    assert not _mirrored(out, images).any()


def test_augconfig_flip_needs_both_the_task_and_the_config():
    images = RNG.random((64, 16, 16, 3)).astype(np.float32)
    run = lambda flip, aug: augment.train_preprocess(  # noqa: E731
        images, resize=16, crop=16, flip=flip, aug=aug, seed_tensor=SEED).numpy()
    assert 16 <= _mirrored(run(True, _only(flip=True)), images).sum() <= 48
    assert not _mirrored(run(False, _only(flip=True)), images).any()
    assert not _mirrored(run(True, _only(flip=False)), images).any()


def test_random_crop_family_covers_one_over_the_resize_factor():
    ramp = _ramp(size=64, batch=32)
    out = augment.train_preprocess(ramp, resize=0, crop=32, flip=False,
                                   aug=AugConfig(crop="random", resize_factor=1.25),
                                   seed_tensor=SEED).numpy()
    # The image is resized to 40 px, then cut to 32: each crop spans 31/39 of the ramp.
    spans_y = out[..., 0].max(axis=(1, 2)) - out[..., 0].min(axis=(1, 2))
    spans_x = out[..., 1].max(axis=(1, 2)) - out[..., 1].min(axis=(1, 2))
    np.testing.assert_allclose(spans_y, 31 / 39, atol=0.03)
    np.testing.assert_allclose(spans_x, 31 / 39, atol=0.03)
    assert len(np.unique(out[:, 0, 0, 0].round(4))) > 3


def test_inception_crop_areas_and_aspect_ratios():
    size, crop = 96, 24
    out = augment.train_preprocess(_ramp(size=size, batch=64), resize=0, crop=crop, flip=False,
                                   aug=AugConfig(crop="inception"), seed_tensor=SEED).numpy()
    # A linear ramp resized from a box of h pixels to `crop` samples spans about
    # (h - h / crop) / (size - 1) of [0, 1]: recover the box from the spans.
    span = lambda c: out[..., c].max(axis=(1, 2)) - out[..., c].min(axis=(1, 2))  # noqa: E731
    height = span(0) * (size - 1) / (1 - 1 / crop)
    width = span(1) * (size - 1) / (1 - 1 / crop)
    area = height * width / size ** 2
    aspect = width / height
    assert area.min() >= 0.05 * 0.85 and area.max() <= 1.05
    assert aspect.min() >= 0.75 * 0.9 and aspect.max() <= 4 / 3 * 1.1
    assert (area < 0.5).mean() > 0.2 and area.std() > 0.1  # really random crops


# ----------------------------------------------------------------------------- colour

def _run(aug, images=MID, seed=SEED):
    size = images.shape[1]
    return augment.train_preprocess(images, resize=size, crop=size, flip=False, aug=aug,
                                    seed_tensor=seed).numpy()


def test_geometry_only_config_is_the_identity():
    np.testing.assert_allclose(_run(_only()), MID, atol=1e-6)


def test_brightness_adds_one_delta_per_image():
    diff = _run(_only(brightness=0.1)) - MID
    deltas = diff.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(diff, np.broadcast_to(deltas[:, None, None, None], diff.shape),
                               atol=1e-6)
    assert np.abs(deltas).max() <= 0.1 + 1e-6
    assert stats.kstest(deltas, stats.uniform(-0.1, 0.2).cdf).pvalue > 1e-3


def test_contrast_scales_each_channel_std_by_one_factor_per_image():
    out = _run(_only(contrast=(0.5, 2.0)))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), MID.mean(axis=(1, 2)), atol=1e-5)
    ratio = out.std(axis=(1, 2)) / MID.std(axis=(1, 2))  # [batch, channel]
    np.testing.assert_allclose(ratio, np.repeat(ratio[:, :1], 3, axis=1), rtol=1e-4)
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 2.0 + 1e-4
    assert ratio[:, 0].std() > 0.2  # one factor per image, not one per batch


def _colourful(batch=32, size=12):
    # Saturated colours: hue is well defined everywhere.
    hsv = np.stack([RNG.random((batch, size, size)),
                    0.3 + 0.4 * RNG.random((batch, size, size)),
                    0.4 + 0.5 * RNG.random((batch, size, size))], axis=-1).astype(np.float32)
    return tf.image.hsv_to_rgb(hsv).numpy()


def test_hue_shift_matches_tf_adjust_hue_per_image():
    images = _colourful()
    out = _run(_only(hue=0.2), images=images)
    h_in = tf.image.rgb_to_hsv(images).numpy()[..., 0]
    h_out = tf.image.rgb_to_hsv(out).numpy()[..., 0]
    deltas = []
    for i in range(len(images)):
        d = (h_out[i] - h_in[i] + 0.5) % 1.0 - 0.5
        delta = float(np.median(d))
        assert abs(delta) <= 0.2 + 1e-3
        np.testing.assert_allclose(out[i], tf.image.adjust_hue(images[i], delta).numpy(),
                                   atol=2e-3)
        deltas.append(delta)
    assert np.std(deltas) > 0.05


def test_saturation_matches_tf_adjust_saturation_per_image():
    images = _colourful()
    out = _run(_only(saturation=(0.5, 1.5)), images=images)
    s_in = tf.image.rgb_to_hsv(images).numpy()[..., 1]
    s_out = tf.image.rgb_to_hsv(out).numpy()[..., 1]
    factors = []
    for i in range(len(images)):
        keep = s_out[i] < 0.99  # not clipped
        factor = float(np.median(s_out[i][keep] / s_in[i][keep]))
        assert 0.5 - 1e-3 <= factor <= 1.5 + 1e-3
        np.testing.assert_allclose(out[i], tf.image.adjust_saturation(images[i], factor).numpy(),
                                   atol=2e-3)
        factors.append(factor)
    assert np.std(factors) > 0.1


# ----------------------------------------------------------------------------- seeding, graphs

def test_same_seed_same_batch_other_seed_other_batch():
    run = lambda seed: augment.train_preprocess(  # noqa: E731
        IMAGES, resize=40, crop=32, flip=True, aug=ALL, seed_tensor=seed).numpy()
    a, b = run(augment.step_seed(5, 3)), run(augment.step_seed(5, 3))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, run(augment.step_seed(5, 4)))
    assert not np.allclose(a, run(augment.step_seed(6, 3)))
    default = lambda seed: augment.train_preprocess(  # noqa: E731
        IMAGES, resize=40, crop=32, flip=True, aug=None, seed_tensor=seed).numpy()
    np.testing.assert_array_equal(default(augment.step_seed(5, 3)),
                                  default(augment.step_seed(5, 3)))
    assert not np.allclose(default(augment.step_seed(5, 3)), default(augment.step_seed(5, 4)))


def test_tf_function_and_tf_data_give_the_eager_result():
    eager = [augment.train_preprocess(IMAGES[i:i + 4], resize=40, crop=32, flip=True, aug=ALL,
                                      seed_tensor=augment.step_seed(9, i // 4)).numpy()
             for i in range(0, 16, 4)]

    @tf.function
    def graph(images, step):
        return augment.train_preprocess(images, resize=40, crop=32, flip=True, aug=ALL,
                                        seed_tensor=augment.step_seed(9, step))

    np.testing.assert_allclose(graph(IMAGES[4:8], tf.constant(1)).numpy(), eager[1], atol=1e-6)

    ds = tf.data.Dataset.from_tensor_slices(IMAGES).batch(4).enumerate().map(
        lambda step, batch: augment.train_preprocess(
            batch, resize=40, crop=32, flip=True, aug=ALL,
            seed_tensor=augment.step_seed(9, step)))
    batches = [b.numpy() for b in ds]
    assert len(batches) == 4
    for got, want in zip(batches, eager):
        np.testing.assert_allclose(got, want, atol=1e-6)

    # A dynamic batch dimension (the last, smaller batch of a data set) works too.
    ds = tf.data.Dataset.from_tensor_slices(IMAGES[:7]).batch(4).map(
        lambda batch: augment.train_preprocess(batch, resize=40, crop=32, flip=True,
                                               aug=None, seed_tensor=SEED))
    assert [b.shape[0] for b in ds] == [4, 3]


# ----------------------------------------------------------------------------- eval and MixUp

def test_eval_preprocess_resizes_the_whole_image_deterministically():
    out = augment.eval_preprocess(IMAGES, size=20)
    assert out.shape == (16, 20, 20, 3) and out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), augment.eval_preprocess(IMAGES, size=20).numpy())
    # No crop: a ramp keeps its full extent from 0 to 1 (up to the border samples).
    ramp = augment.eval_preprocess(_ramp(size=64, batch=1), size=16).numpy()[0]
    assert ramp[..., 0].min() < 0.05 and ramp[..., 0].max() > 0.95
    assert augment.eval_preprocess(IMAGES[0], size=8).shape == (8, 8, 3)


def test_mixup_labels_and_images_use_the_same_convex_combination():
    batch = 12
    images = np.broadcast_to(np.arange(batch, dtype=np.float32)[:, None, None, None] / batch,
                             (batch, 4, 4, 3)) + RNG.random((batch, 4, 4, 3)).astype(np.float32)
    labels = np.eye(batch, dtype=np.float32)  # image i has class i
    lambdas = []
    for seed in range(5):
        mixed, soft = augment.mixup(images, labels, 0.4, augment.step_seed(seed, 0))
        mixed, soft = mixed.numpy(), soft.numpy()
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        assert (soft >= 0).all()
        lam = soft[np.arange(batch), np.arange(batch)]
        fixed = np.isclose(lam, 1.0, atol=1e-6)
        # Read lambda and the partner of each image off the labels...
        partner = np.where(fixed, np.arange(batch), np.argsort(soft, axis=1)[:, -1])
        partner = np.where(~fixed & (np.sort(soft, axis=1)[:, -1] == lam),
                           np.argsort(soft, axis=1)[:, -2], partner)
        weights = soft[np.arange(batch), partner]
        shared = lam[~fixed]
        if shared.size:
            # ...one lambda for the whole batch, and the images mix with the same weights.
            np.testing.assert_allclose(shared, shared[0], atol=1e-6)
            np.testing.assert_allclose(weights[~fixed], 1 - shared[0], atol=1e-6)
            lambdas.append(shared[0])
        want = lam[:, None, None, None] * images + (1 - lam)[:, None, None, None] * images[partner]
        np.testing.assert_allclose(mixed, want, atol=1e-5)
        assert sorted(partner) == list(range(batch))  # partners form a permutation
    assert any(0.1 < lam < 0.9 for lam in lambdas)  # the check above saw real mixing


def test_mixup_alpha_zero_is_the_identity():
    labels = np.eye(4, dtype=np.float32)
    mixed, soft = augment.mixup(IMAGES[:4], labels, 0.0, SEED)
    np.testing.assert_array_equal(mixed.numpy(), IMAGES[:4])
    np.testing.assert_array_equal(soft.numpy(), labels)


@pytest.mark.parametrize("alpha", [0.2, 0.02])
def test_beta_samples_follow_scipy_beta(alpha):
    n = 4000
    samples = augment.sample_beta(alpha, SEED, [n]).numpy().astype(np.float64)
    assert np.isfinite(samples).all() and samples.min() >= 0 and samples.max() <= 1
    # The CDF at points from 1e-20 to 1 - 1e-5, each within 4 binomial standard errors.
    # (No KS test: for alpha 0.02 half the mass lies within 1e-16 of 1, which float32 rounds
    # to exactly 1, while the same distance from 0 stays representable.)
    reference = stats.beta(alpha, alpha)
    for t in (1e-20, 1e-10, 1e-5, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1 - 1e-5):
        p = reference.cdf(t)
        assert np.mean(samples <= t) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n) + 2 / n)
