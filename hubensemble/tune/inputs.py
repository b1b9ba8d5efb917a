"""Input pipelines of fine-tuning: training batches, evaluation images, predicted probabilities."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from hubensemble import _tf, augment, hyperrule
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError
from hubensemble.hyperrule import HParams
from hubensemble.tune.plans import as_profile


def _input_size(spec: ModuleSpec) -> int | None:
    # The module resizes to its (h, w) itself; the square crop only needs to be that big.
    return None if spec.input_size is None else max(spec.input_size)


def train_resolution(task, spec: ModuleSpec, profile) -> tuple[int, int]:
    """(resize, crop) in pixels of the BiT-HyperRule for this task and module under `profile`
    (`hyperrule.preprocessing_for`: (160, 128) for images under 96 x 96, else (512, 480);
    the crop capped by the profile, a module with a fixed input size gets that crop)."""
    return hyperrule.preprocessing_for(task.image_size, _input_size(spec), as_profile(profile))


def eval_size(task, spec: ModuleSpec, profile) -> int:
    """The square size in pixels evaluation images are resized to (the training crop)."""
    return hyperrule.eval_resolution(task.image_size, _input_size(spec), as_profile(profile))


def trial_size(task, spec: ModuleSpec, profile, kind: str = "finetune") -> int:
    """The square side in pixels a trial of `kind` (`HParams.kind`: "finetune" or "probe")
    of `spec` serves at, as it is trained and costed: a probe's is the module's own
    (`probe.probe_resolution`, whatever `profile` caps), a fine-tune's `eval_size` under
    `profile` (a Profile or its name). Raises ValueError for an unknown profile name."""
    if kind == "probe":
        from hubensemble.tune.probe import probe_resolution

        return int(probe_resolution(spec, task))
    return int(eval_size(task, spec, profile))


def _merged(task, splits: Sequence[str]):
    """`task` with its train split replaced by the named splits together (e.g. train + val)."""
    from hubensemble.data import Split

    splits = tuple(splits)
    if splits == ("train",):
        return task
    parts = [task.split(s) for s in splits]
    labels = np.concatenate([p.labels for p in parts])
    if all(p.same_size for p in parts) and len({p.images.shape[1:] for p in parts}) == 1:
        images = _joined([p.images for p in parts])
    else:
        images = [im for p in parts for im in p.images]
    return dataclasses.replace(task, train=Split(images=images, labels=labels),
                               val=None, test=None)


def _image_size_arg(split, size):
    # Same-size images are resized batched (antialiased) by augment; others must be resized
    # one by one to batch at all.
    return None if split.same_size else (size, size)


def _joined(arrays):
    """`arrays` ([N_i, H, W, 3] each) as one: a read-only view when they are runs of one
    buffer one after another (a folder's train, val and test are: `splits._partition_in_place`),
    else np.concatenate's copy. Retraining on train + val copied both (0.8x a folder's pixels
    more, 6.7 GB for 2,000 phone photos, docs/data.md "Memory of a split")."""
    try:
        from numpy.lib.array_utils import byte_bounds  # NumPy 2.0 moved it here
    except ImportError:  # NumPy 1.26 (setup.cfg's lower bound) has it at the top only
        from numpy import byte_bounds

    first = arrays[0]
    if all(a.base is not None and a.base is first.base and a.flags.c_contiguous
           for a in arrays) and all(byte_bounds(a)[1] == byte_bounds(b)[0]
                                    for a, b in zip(arrays, arrays[1:])):
        n = sum(len(a) for a in arrays)
        return np.lib.stride_tricks.as_strided(first, (n,) + first.shape[1:], first.strides,
                                               writeable=False)
    return np.concatenate(arrays)


def _no_autograph(fn):
    """`fn` for `Dataset.map` as it is written, not autograph converted (tf.data converts a map
    function by default: in a cProfile of a seeded 8-trial hyper+aug sweep of tiny modules,
    the training map took 4.9 s converted and 2.4 s not, before its trace was kept).

    Safe for the map functions here and what they call (`augment.train_preprocess`,
    `eval_preprocess`, `mixup`, `step_seed`; distill's `targets`, a SavedModel signature's
    call): every Python ``if`` in them tests a Python value (the AugConfig's fields, `flip`,
    `alpha`, a static dtype or rank), random choices per image are `tf.where` and
    `tf.map_fn`, and no loop runs over a tensor; so conversion changes no op of the graph
    (the batches are the same to the bit: test_reproducible)."""
    return tf.autograph.experimental.do_not_convert(fn)


def training_dataset(task, spec: ModuleSpec, hparams: HParams, *, profile,
                     splits: Sequence[str] = ("train",), targets=None) -> tf.data.Dataset:
    """Endless batches (images float32 [B, crop, crop, 3] in [0, 1], labels float32 [B, C]:
    one-hot, or MixUp's soft labels), B = hparams.batch_size.

    BiT-HyperRule resize and random crop (flip if the task allows it), or the trial's
    AugConfig (paper A.3), then MixUp when the trial has an alpha. Batch i is augmented with
    the stateless seed (hparams.seed, i): the stream is a pure function of the trial.
    `splits` names the task splits trained on together (``("train", "val")`` to retrain on
    both). `targets` (optional: float32 images [B, crop, crop, 3] -> float32 [B, C]
    probabilities, a traceable TensorFlow function) replaces the labels by its output on
    each final (augmented, mixed) batch: distillation's soft targets (Hinton et al., 2015).
    """
    resize, crop = train_resolution(task, spec, profile)
    data = _merged(task, splits)
    # Same-size images come as held, uint8: train_preprocess converts and resizes them an
    # image at a time (the same pixels), not a float32 batch at the held size (16 phone
    # photos: 268 MB, a few in flight; docs/data.md "Memory of a split").
    same = data.train.same_size
    ds = data.dataset("train", batch_size=hparams.batch_size,
                      image_size=_image_size_arg(data.train, resize), shuffle=True,
                      seed=hparams.seed, repeat=True, uint8=same)
    prepare = _batch_preparation(resize=resize, crop=crop, flip=bool(task.flip),
                                 aug=hparams.augmentation,
                                 alpha=hparams.effective_mixup_alpha,
                                 num_classes=task.num_classes)
    seed = int(hparams.seed)

    def batch_of_step(step, batch):
        x, y = prepare(tf.constant(seed, tf.int64), step, *batch)
        if targets is not None:
            y = tf.cast(targets(x), tf.float32)
        return x, y

    return ds.enumerate().map(_no_autograph(batch_of_step),
                              num_parallel_calls=_tf.stateful_map_calls()).prefetch(
        tf.data.AUTOTUNE)


#: Per thread, `_batch_preparation`'s traced functions while a sweep keeps them
#: (`kept_preparations`): ``.kept``, the most recently used last (unset: none kept, one
#: traced per training_dataset). Per thread: sweeps in two threads never share a dict.
_LOCAL = threading.local()
#: How many different preparations a sweep keeps: a seeds or hyper sweep needs one per
#: module resolution (and batch size), an aug sweep one per augmentation family (its 4 trials).
KEPT_PREPARATIONS = 4


def _kept() -> dict | None:
    """This thread's kept preparations (`kept_preparations`), or None outside one."""
    return getattr(_LOCAL, "kept", None)


@contextlib.contextmanager
def kept_preparations():
    """While open, `training_dataset` in this thread reuses the traced batch preparation of
    an earlier trial with the same resolution, augmentation, MixUp alpha and classes (the
    trial seed is an argument of the trace, not a constant in it): the same batches to the
    bit, without tracing the preparation again per trial (CPU per trial:
    tools/benchmarks/bench_tune.py's "input pipeline tracing" line). At most
    KEPT_PREPARATIONS are kept, functions only (no dataset, model or images: the stream is
    the map's input), all released when the outermost block ends (`run_tune`'s sweep);
    nested blocks share them."""
    outer = _kept() is None
    if outer:
        _LOCAL.kept = {}
    try:
        yield
    finally:
        if outer:
            _LOCAL.kept = None


def _batch_preparation(*, resize, crop, flip, aug, alpha, num_classes):
    """A tf.function (seed int64 [], step int64 [], images [B, H, W, 3] uint8 or float32,
    labels int [B]) -> (images float32 [B, crop, crop, 3] in [0, 1], labels float32
    [B, num_classes]): `augment.train_preprocess` (or the AugConfig `aug`) with the stateless
    seed ``step_seed(seed, step)``, one-hot labels, then MixUp when `alpha` > 0. Traced
    without autograph (`_no_autograph`'s reasons). Inside `kept_preparations` the same
    function for the same arguments (its traces kept: the seed is a tensor argument)."""
    key = (resize, crop, flip, aug, alpha, num_classes)
    kept = _kept()
    if kept is not None and key in kept:
        kept[key] = kept.pop(key)  # the most recently used last
        return kept[key]

    def prepare(seed, step, images, labels):
        step_seed = augment.step_seed(seed, step)
        x = augment.train_preprocess(images, resize=resize, crop=crop, flip=flip, aug=aug,
                                     seed_tensor=step_seed)
        y = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if alpha > 0:
            x, y = augment.mixup(x, y, alpha, step_seed)
        return x, y

    fn = tf.function(prepare, autograph=False)
    if kept is not None:
        kept[key] = fn
        while len(kept) > KEPT_PREPARATIONS:
            kept.pop(next(iter(kept)))
    return fn


def eval_dataset(task, split: str, *, spec: ModuleSpec, profile,
                 batch_size: int) -> tf.data.Dataset:
    """Images of `split` in order, float32 [<=batch_size, S, S, 3] in [0, 1] with S =
    `eval_size` (the whole image resized, no crop; no labels). Read from the split on every
    pass, never cached: each caller (a trial's, a retrained member's, distill's prediction)
    makes one pass over a new stream, and the stream's cache kept the whole split in float32
    until that pass ended (the test split of 2,000 images at 224 px: 1.2 GB, 4x its uint8
    pixels, at tune's peak; tools/benchmarks/bench_top.py)."""
    size = eval_size(task, spec, profile)
    data = task.split(split)
    if data.same_size and tuple(data.images.shape[1:3]) != (size, size):
        # The stream resizes same-size images in chunks of WORKING_BYTES (the same pixels as
        # eval_preprocess on its float32 batch): a float32 batch at the held size was
        # 1.07 GB for 64 phone photos (docs/data.md "Memory of a split").
        ds = task.dataset(split, batch_size=batch_size, image_size=size, shuffle=False,
                          repeat=False, cache=False)
        return ds.map(_no_autograph(lambda x, y: x)).prefetch(tf.data.AUTOTUNE)
    ds = task.dataset(split, batch_size=batch_size, image_size=_image_size_arg(data, size),
                      shuffle=False, repeat=False, cache=False)
    return ds.map(_no_autograph(lambda x, y: augment.eval_preprocess(x, size=size)),
                  num_parallel_calls=_tf.stateful_map_calls()).prefetch(tf.data.AUTOTUNE)


def predict_probs(model: keras.Model, task, split: str, *, spec: ModuleSpec, profile,
                  batch_size: int, callbacks=()) -> np.ndarray:
    """The model's class probabilities on a split: float32 [N, C] in the split's order.

    This is what a candidate's val_probs.npy / test_probs.npy hold. `callbacks`: Keras
    callbacks of the predict (a trial's `train.TrialProgress`). Raises HubensembleError
    when the model's output has another shape than [len(split), task.num_classes].
    """
    ds = eval_dataset(task, split, spec=spec, profile=profile, batch_size=batch_size)
    with _tf.retracing_notice_at_info():  # a model per trial: each traced once
        probs = np.asarray(model.predict(ds, verbose=0, callbacks=list(callbacks)), np.float32)
    n = len(task.split(split))
    if probs.shape != (n, task.num_classes):
        raise HubensembleError(f"predictions on {split} have shape {probs.shape}, expected "
                               f"({n}, {task.num_classes})")
    return probs
