"""Upstream training of zoo modules: one compiled Keras model per architecture, reused."""

from __future__ import annotations

import functools

import numpy as np

from hubensemble import _tf
from hubensemble.errors import DataError
from hubensemble.zoo.arch import ArchSpec, build_backbone
from hubensemble.zoo.config import TrainSpec, unknown_optimizer


class Trainer:
    """Trains every module of one architecture with one compiled Keras model.

    Compiling and tracing a train step costs seconds on a CPU, as long as a short expert
    fine-tune; so each module does not get a model of its own: a module's start weights are
    loaded into the shared backbone, the head and the optimizer state are zeroed and the
    schedule's variables are set. The head is as wide as the largest label set; a fixed
    logit mask (-1e9 on unused logits) makes its softmax exactly that of a k-class head.
    """

    def __init__(self, arch: ArchSpec, n_out: int, optimizer: str):
        from hubensemble._tf import keras

        self.arch, self.n_out = arch, n_out
        self.backbone = build_backbone(arch, name=f"{arch.name}_trainer")
        self.head = _masked_dense_class()(n_out, name="head")
        self.schedule = _warmup_cosine_class()()
        if optimizer == "adam":
            opt = keras.optimizers.Adam(self.schedule)
        elif optimizer == "sgd":
            opt = keras.optimizers.SGD(self.schedule, momentum=0.9, nesterov=True)
        else:
            raise ValueError(unknown_optimizer(optimizer))  # (TrainSpec checks it first)
        inp = keras.Input((None, None, 3))
        self.model = keras.Model(inp, self.head(self.backbone(inp)))
        self.model.compile(optimizer=opt,
                           loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)

    def run(self, start_weights, images, labels, n_classes, spec: TrainSpec, seed,
            report=None) -> float:
        """Trains from ``start_weights`` (backbone) with a zero head; returns train accuracy
        over the last tenth of the steps."""
        from hubensemble._tf import keras, tensorflow as tf

        self.backbone.set_weights(start_weights)
        self.head.reset(n_classes)
        for v in self.model.optimizer.variables:
            v.assign(np.zeros(v.shape, v.dtype))
        self.schedule.set(spec.lr, max(1, spec.steps // 10), spec.steps)
        ds = (tf.data.Dataset.from_tensor_slices((images, labels))
              .shuffle(min(len(labels), 65536), seed=seed).repeat()
              .batch(spec.batch_size, drop_remainder=True)
              # Not autograph converted: no control flow, so conversion built the same map.
              .map(tf.autograph.experimental.do_not_convert(
                  lambda x, y: (tf.cast(x, tf.float32) * (1.0 / 255.0), y)),
                   num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))
        tail = max(1, spec.steps // 10)
        first = spec.steps - tail
        seen = {}

        class _Watch(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                logs = logs or {}
                if batch + 1 == first:
                    seen["first"] = float(logs.get("accuracy", 0.0))
                if report is not None and (batch + 1) % 10 == 0:
                    report(batch + 1, spec.steps, logs)

        with _tf.retracing_notice_at_info():  # a model per zoo module: each traced once
            hist = self.model.fit(ds, steps_per_epoch=spec.steps, epochs=1, verbose=0,
                                  shuffle=False, callbacks=[_Watch()])
        # Keras reports the running mean over the epoch; undo it for the last tenth.
        total = float(hist.history["accuracy"][-1])
        return (total * spec.steps - seen.get("first", 0.0) * first) / tail


@functools.lru_cache(maxsize=None)
def _masked_dense_class():
    from hubensemble._tf import keras, tensorflow as tf

    class MaskedDense(keras.layers.Layer):
        """Dense with a fixed additive logit mask (training only; never exported)."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer="zeros", name="kernel")
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
            self.mask = self.add_weight(shape=(self.units,), initializer="zeros",
                                        trainable=False, name="mask")

        def call(self, x):
            return tf.matmul(x, self.kernel) + self.bias + self.mask

        def reset(self, n_classes):
            """Zero head, logit mask 0 on the first n_classes and -1e9 on the others."""
            if n_classes > self.units:
                raise ValueError(f"{n_classes} classes but the head has {self.units} logits")
            self.kernel.assign(np.zeros(self.kernel.shape, "float32"))
            self.bias.assign(np.zeros(self.bias.shape, "float32"))
            mask = np.where(np.arange(self.units) < n_classes, 0.0, -1e9).astype("float32")
            self.mask.assign(mask)

    return MaskedDense


@functools.lru_cache(maxsize=None)
def _warmup_cosine_class():
    from hubensemble._tf import keras
    from keras import ops

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to ``peak``, then cosine decay to zero at ``total`` steps; the three
        numbers are variables, so one compiled train step serves any schedule."""

        def __init__(self):
            self.peak = keras.Variable(0.0, trainable=False, name="peak_lr")
            self.warmup = keras.Variable(1.0, trainable=False, name="warmup_steps")
            self.total = keras.Variable(1.0, trainable=False, name="total_steps")

        def set(self, peak, warmup, total):
            """Peak learning rate, warm-up steps and total steps of the next run."""
            self.peak.assign(float(peak))
            self.warmup.assign(float(warmup))
            self.total.assign(float(max(total, warmup + 1)))

        def __call__(self, step):
            step = ops.cast(step, "float32")
            warm = self.peak * (step + 1.0) / self.warmup
            progress = ops.clip((step - self.warmup) / (self.total - self.warmup), 0.0, 1.0)
            decay = 0.5 * self.peak * (1.0 + ops.cos(np.pi * progress))
            return ops.where(step < self.warmup, warm, decay)

        def get_config(self):
            return {}

    return WarmupCosine


def subtree_labels(labels, class_names, classes):
    """Global labels → 0..len(classes)-1 in the order of ``classes``."""
    lookup = np.full(len(class_names), -1, np.int64)
    for i, c in enumerate(classes):
        lookup[class_names.index(c)] = i
    out = lookup[labels]
    if (out < 0).any():
        raise DataError("the upstream sampler returned labels outside the requested sub-tree")
    return out
