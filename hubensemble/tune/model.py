"""The model and its schedule: module + zero head classifier, decay to init, the paper's lr."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from hubensemble import hyperrule
from hubensemble.catalogue import ModuleSpec
from hubensemble.errors import HubensembleError, checks_keywords
from hubensemble.hub import hub_layer_from_spec
from hubensemble.hyperrule import HParams


class _Snapshot:
    """Holds the initial weights out of Keras' (and the weights file's) sight."""

    def __init__(self, variables):
        self.variables = variables


class Classifier(keras.Model):
    """A module with a new head: float32 images [B, H, W, 3] in [0, 1] -> class
    probabilities float32 [B, C] (softmax; each row sums to 1).

    backbone (a HubLayer) -> Dropout(dropout) -> Dense(C) with kernel and bias zero (so every
    example starts at the uniform 1/C) -> softmax. The loss sees the head's logits (Keras
    takes them from the softmax), so it stays numerically stable.

    Weight decay pulls towards the *initial* weights (paper A.2, BiT's "decay to init"): the
    training loss gets ``weight_decay / 2 * sum ||w - w0||^2`` over all trainable weights,
    with ``w0`` a copy taken when the model was built (so a pre-trained backbone is pulled
    back to its pre-trained values, the zero-initialised head towards zero). The copy is not
    part of the model's weights: ``save_weights`` stores only the backbone and the head.
    """

    def __init__(self, backbone, num_classes, *, dropout=0.0, weight_decay=0.0, name=None):
        super().__init__(name=name)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.dropout = keras.layers.Dropout(float(dropout), name="dropout")
        self.head = keras.layers.Dense(self.num_classes, kernel_initializer="zeros",
                                       bias_initializer="zeros", name="head")
        dim = backbone.output_dim
        if dim is None:
            # A module whose signature does not say its output size: ask it once.
            size = backbone.input_size or (32, 32)
            dim = int(backbone(tf.zeros([1, size[0], size[1], 3])).shape[-1])
        self.head.build((None, dim))
        self.built = True
        self.weight_decay = float(weight_decay)
        self._w0 = None
        if self.weight_decay > 0:
            self.snapshot_initial_weights()

    def snapshot_initial_weights(self):
        """Takes w0 = the current trainable weights (in the current strategy's scope)."""
        self._w0 = _Snapshot([
            tf.Variable(tf.identity(w.value), trainable=False, name=f"w0_{i}")
            for i, w in enumerate(self.trainable_weights)])

    def call(self, images, training=None):
        """float32 images [B, H, W, 3] in [0, 1] -> probabilities float32 [B, C]."""
        return self.head_probabilities(self.backbone(images, training=training),
                                       training=training)

    def head_probabilities(self, embeddings, training=None):
        """The backbone's float32 embeddings [B, D] -> probabilities float32 [B, C]: dropout
        (while training), the head, softmax. The export applies several probes' heads to one
        frozen backbone's embedding with it (hubensemble.export.shared)."""
        x = self.dropout(embeddings, training=training)
        return keras.ops.softmax(self.head(x))

    def decay_penalty(self):
        """weight_decay / 2 * sum ||w - w0||^2 as a float32 scalar tensor (0 without decay)."""
        if self._w0 is None or self.weight_decay <= 0:
            return tf.constant(0.0)
        sq = [tf.reduce_sum(tf.square(tf.cast(w.value, tf.float32) - w0))
              for w, w0 in zip(self.trainable_weights, self._w0.variables)]
        return 0.5 * self.weight_decay * tf.add_n(sq)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' loss, plus `decay_penalty` (per replica) while training."""
        loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                    training=training)
        if training and self._w0 is not None and self.weight_decay > 0:
            # Each replica's loss is summed over replicas by the optimizer, as Keras does
            # for its own regularisation losses: divide by the replica count.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            loss = loss + self.decay_penalty() / float(replicas)
        return loss


@checks_keywords
def build_classifier(spec: ModuleSpec, num_classes: int, *, dropout: float = 0.0,
                     trainable: bool = True, weight_decay: float = 0.0,
                     name: str | None = None, batchnorm: str = "train") -> Classifier:
    """float32 images [B, H, W, 3] in [0, 1] -> HubLayer -> Dropout -> Dense(num_classes,
    zeros) -> softmax probabilities float32 [B, num_classes].

    Call inside ``strategy.scope()`` to distribute it. With ``weight_decay`` > 0 the initial
    weights are copied now (see `Classifier`). `batchnorm` is the HubLayer's policy while
    the model trains ("train", "inference" or "auto"; hubensemble.hub.layer); it changes
    nothing at inference. A model built by this function loads the ``weights.weights.h5`` of
    a candidate (`hubensemble.candidate.WEIGHTS_FILE`), fine-tuned or probe alike.
    Raises HubensembleError for fewer than 2 classes, ModuleLoadError when the module cannot
    be loaded; before any work, TypeError naming the argument for a `spec` that is no
    ModuleSpec (a handle string was an AttributeError deep in the HubLayer) or a
    `num_classes` that is no integer (`text.typed`).
    """
    from hubensemble.text import typed

    typed("build_classifier", "spec", spec, ModuleSpec,
          "a ModuleSpec (a catalogue entry)", example="hubensemble.load_catalogue(PATH)[0]")
    typed("build_classifier", "num_classes", num_classes, (int, np.integer), "an integer >= 2")
    if int(num_classes) < 2:
        raise HubensembleError(f"a classifier needs at least 2 classes, got {num_classes}")
    backbone = hub_layer_from_spec(spec, trainable=trainable, name="backbone",
                                   batchnorm=batchnorm)
    return Classifier(backbone, num_classes, dropout=dropout, weight_decay=weight_decay,
                      name=name or "classifier")


def set_head(model: Classifier, kernel, bias) -> Classifier:
    """Sets the head of `model` to `kernel` float [D, C] and `bias` float [C] (e.g. a probe
    from hubensemble.tune.probe) and, when the model decays to its initial weights, takes
    those again so the head decays towards its new start. Returns `model`. Raises
    HubensembleError for shapes other than the head's."""
    kernel = np.asarray(kernel, np.float32)
    bias = np.asarray(bias, np.float32)
    want = tuple(model.head.kernel.shape), tuple(model.head.bias.shape)
    if (kernel.shape, bias.shape) != want:
        raise HubensembleError(f"a head of shapes {kernel.shape} and {bias.shape} does not fit "
                               f"this classifier's {want[0]} and {want[1]}")
    model.head.kernel.assign(kernel)
    model.head.bias.assign(bias)
    if model._w0 is not None:
        model.snapshot_initial_weights()
    return model


@keras.saving.register_keras_serializable(package="hubensemble")
class PaperSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's schedule (A.1.1) in optimizer steps: `hyperrule.learning_rate` as tensor ops.

    Linear warm-up over the first 20 % (0 at step 0), then base_lr, x0.1 after 40 %, x0.01
    after 60 %, x0.001 after 80 % (a decay applies from the step after its boundary; the
    boundaries are `hyperrule.schedule_boundaries`). Called with an integer step tensor, it
    returns a float32 scalar in [0, base_lr].
    """

    def __init__(self, base_lr: float, total_steps: int):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup, self.boundaries = hyperrule.schedule_boundaries(self.total_steps)
        self.values = hyperrule.schedule_values(self.base_lr)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        b1, b2, b3 = (float(b) for b in self.boundaries)
        v = [tf.constant(x, tf.float32) for x in self.values]
        lr = tf.where(step <= b1, v[0],
                      tf.where(step <= b2, v[1], tf.where(step <= b3, v[2], v[3])))
        if self.warmup > 0:
            lr = tf.where(step < float(self.warmup), self.base_lr * step / self.warmup, lr)
        return lr

    def get_config(self):
        return {"base_lr": self.base_lr, "total_steps": self.total_steps}


def compile_classifier(model: keras.Model, hparams: HParams) -> keras.Model:
    """Compiles `model` for fine-tuning and returns it: SGD with hparams.momentum on
    `PaperSchedule(hparams.lr, hparams.steps)` (gradients clipped to the global norm
    hparams.clipnorm when it is > 0), categorical cross-entropy on one-hot (or
    MixUp soft) labels [B, C], and an "accuracy" metric.

    A `Classifier` also takes hparams.weight_decay (snapshotting w0 now when it had none).
    """
    if isinstance(model, Classifier) and hparams.weight_decay != model.weight_decay:
        model.weight_decay = float(hparams.weight_decay)
        if model.weight_decay > 0 and model._w0 is None:
            model.snapshot_initial_weights()
    optimizer = keras.optimizers.SGD(
        learning_rate=PaperSchedule(hparams.lr, hparams.steps), momentum=hparams.momentum,
        global_clipnorm=hparams.clipnorm or None)
    model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model
