"""Tune's input streams of same-size images convert the held uint8 pixels after the resize's
split into single images (training) or chunks (evaluation), never a float32 batch at the held
size, and give the pixels they gave when they did, bit for bit."""

import numpy as np
import pytest

from hubensemble import augment, hyperrule
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import Split, Task
from hubensemble.hyperrule import AugConfig, HParams
from hubensemble.tune import inputs

PROFILE = "quick"
SPEC = ModuleSpec(name="tiny", handle="unused", input_size=(12, 12))
HELD = (40, 52)  # larger than the crop's resize (15): every resize shrinks


@pytest.fixture
def task(rng):
    def split(n):
        return Split(images=rng.integers(0, 256, (n, *HELD, 3), dtype=np.uint8),
                     labels=np.arange(n) % 3)
    return Task(name="t", source="test", class_names=["a", "b", "c"], train=split(11),
                val=split(7), test=split(5), flip=True)


def old_training_dataset(task, spec, hparams, *, profile, splits=("train",)):
    """`inputs.training_dataset` up to e1b5771: the stream's float32 batches at the held size
    given to train_preprocess (the reference)."""
    import tensorflow as tf

    resize, crop = inputs.train_resolution(task, spec, profile)
    data = inputs._merged(task, splits)
    ds = data.dataset("train", batch_size=hparams.batch_size, shuffle=True,
                      seed=hparams.seed, repeat=True)
    alpha, seed = hparams.effective_mixup_alpha, int(hparams.seed)

    def prepare(step, batch):
        images, labels = batch
        step_seed = augment.step_seed(seed, step)
        x = augment.train_preprocess(images, resize=resize, crop=crop, flip=True,
                                     aug=hparams.augmentation, seed_tensor=step_seed)
        y = tf.one_hot(labels, task.num_classes, dtype=tf.float32)
        if alpha > 0:
            x, y = augment.mixup(x, y, alpha, step_seed)
        return x, y

    return ds.enumerate().map(prepare)


def pipeline_specs(ds):
    """The element specs of `ds` and of every dataset it is built on."""
    out, todo = [], [ds]
    while todo:
        d = todo.pop()
        out.append(d.element_spec)
        todo.extend(d._inputs())
    return out


def float_batches_at_the_held_size(ds):
    import tensorflow as tf

    return [s for spec in pipeline_specs(ds) for s in tf.nest.flatten(spec)
            if s.dtype == tf.float32 and s.shape.rank == 4 and tuple(s.shape[1:3]) == HELD]


AUGS = {
    "hyperrule": None,
    "random": AugConfig(crop="random", resize_factor=1.3, flip=True, brightness=0.2,
                        contrast=(0.5, 1.5)),
    "inception": AugConfig(crop="inception", flip=True, hue=0.1, saturation=(0.5, 1.5)),
    "whole": hyperrule.WHOLE_IMAGE,
    "mixup": AugConfig(crop="random", resize_factor=1.2, mixup_alpha=0.4),
}


@pytest.mark.parametrize("splits", [("train",), ("train", "val")], ids=["train", "train+val"])
@pytest.mark.parametrize("aug", AUGS, ids=list(AUGS))
def test_training_batches_are_those_of_the_float_stream(task, aug, splits):
    """16 phone photos were a float32 batch of 268 MB at the held size (1365 x 1024), a few in
    flight: the quick fit's peak. Now each image is converted as the stream converted it
    inside train_preprocess's first resize or crop; the same pixels and targets."""
    hp = HParams(lr=0.01, steps=5, batch_size=4, seed=3, augmentation=AUGS[aug])
    got = inputs.training_dataset(task, SPEC, hp, profile=PROFILE, splits=splits)
    want = old_training_dataset(task, SPEC, hp, profile=PROFILE, splits=splits)
    for (gx, gy), (wx, wy), _ in zip(got, want, range(4)):
        np.testing.assert_array_equal(gx.numpy(), wx.numpy())
        np.testing.assert_array_equal(gy.numpy(), wy.numpy())
    assert float_batches_at_the_held_size(got) == []


def test_evaluation_images_are_those_of_the_float_stream(task):
    """predict_probs' stream: a float32 batch at the held size (64 phone photos: 1.07 GB),
    and its cache kept the whole split so; now resized in the stream's chunks and cached
    resized. The same pixels."""
    size = inputs.eval_size(task, SPEC, PROFILE)
    for split in ("train", "val", "test"):
        got = inputs.eval_dataset(task, split, spec=SPEC, profile=PROFILE, batch_size=4)
        want = task.dataset(split, batch_size=4).map(
            lambda x, y: augment.eval_preprocess(x, size=size))
        got, want = list(got), list(want)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
        assert float_batches_at_the_held_size(
            inputs.eval_dataset(task, split, spec=SPEC, profile=PROFILE, batch_size=4)) == []


def test_held_uint8_is_converted_each_image_as_the_stream_converts_the_batch(rng):
    """train_preprocess on uint8 images equals it on `Task.dataset`'s x / 255 (not
    convert_image_dtype's x * (1 / 255), which differs in the last bit for 126 values)."""
    images = rng.integers(0, 256, (3, 30, 33, 3), dtype=np.uint8)
    seed = augment.step_seed(1, 2)
    for aug in AUGS.values():
        got = augment.train_preprocess(images, resize=20, crop=16, flip=True, aug=aug,
                                       seed_tensor=seed)
        want = augment.train_preprocess(augment.unit_float(images), resize=20, crop=16,
                                        flip=True, aug=aug, seed_tensor=seed)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_the_uint8_stream_is_for_held_same_size_images(rng):
    from hubensemble.errors import DataError

    task = Task(name="t", source="test", class_names=["a", "b"],
                train=Split(images=[rng.integers(0, 256, (5 + i, 6, 3), dtype=np.uint8)
                                    for i in range(4)], labels=np.arange(4) % 2))
    with pytest.raises(DataError, match="uint8=True"):
        task.dataset("train", batch_size=2, image_size=4, uint8=True)


@pytest.mark.parametrize("held", [HELD, (12, 12), None], ids=["resized", "as-held", "mixed"])
def test_evaluation_streams_read_the_split_on_each_pass_and_cache_nothing(rng, held):
    """predict_probs makes one pass over a new stream; the stream's cache kept the whole
    split in float32 until the pass ended (2,000 test images at 224 px: 1.2 GB at tune's
    peak, tools/benchmarks/bench_top.py). A second pass that shows pixels changed after the
    first is one that read the split, not a cache."""
    if held is None:  # images of different sizes: resized one by one
        images = [rng.integers(0, 256, (12 + i, 14, 3), dtype=np.uint8) for i in range(5)]
    else:
        images = rng.integers(0, 256, (5, *held, 3), dtype=np.uint8)
    split = Split(images=images, labels=np.arange(5) % 3)
    task = Task(name="t", source="test", class_names=["a", "b", "c"], train=split, val=split,
                test=split)
    ds = inputs.eval_dataset(task, "test", spec=SPEC, profile=PROFILE, batch_size=2)
    first = np.concatenate([b.numpy() for b in ds])
    for im in images:
        im[...] = 255 - im
    second = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_allclose(second, 1.0 - first, atol=1e-6)
