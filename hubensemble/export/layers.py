"""The export's Keras layers: EnsembleLayer (weighted average of members), EvalResize, members."""

from __future__ import annotations

import contextlib
import numbers

import keras
import numpy as np

from hubensemble import augment
from hubensemble.errors import checks_keywords
from hubensemble.refused import described


@keras.saving.register_keras_serializable(package="hubensemble")
@checks_keywords  # handel=…, trainabel=…, nmae=…: the keyword meant (Keras: "Unrecognized")
class EnsembleLayer(keras.layers.Layer):
    """The weighted average of several models' class probabilities, as one Keras layer.

    The ensemble of paper 2.3: members chosen by greedy selection are combined by averaging
    their predicted probabilities, weighted by how often each was picked.

    ``members`` (a list or tuple, at least one) are Keras models or layers that each map the
    same input (e.g. float32 images [N, H, W, 3] in [0, 1] of any size) to class
    probabilities float32 [N, C] with the same C >= 2; each does its own resizing and
    normalisation inside. ``weights`` (a sequence of numbers, one per member, finite, >= 0,
    not all 0; default equal) are normalised to sum to 1. With ``from_logits=True`` each
    member's output is passed through a softmax first. The output is float32 [N, C], each row
    summing to 1. The layer owns its members (their weights are its weights) and serialises
    them, so a model holding it round-trips through ``model.save("x.keras")`` and
    ``keras.models.load_model`` whenever its members are serialisable; in a new process
    ``load_model`` needs hubensemble's layers registered first (``import hubensemble`` loads
    them lazily): pass ``custom_objects=hubensemble.custom_objects()``, as below.

    Raises TypeError when ``members`` is not a list or tuple (e.g. one model: write
    ``[model]``) or ``weights`` is not a sequence of numbers (e.g. a str); ValueError for no
    members, a member that is not callable, bad weight values (count, negative, not finite,
    all 0), and — when the model is built or first called — members whose outputs are not
    all [N, C] with one C >= 2 (the message lists every member's output shape).

    Example::

        import keras
        from hubensemble import EnsembleLayer

        a = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
        b = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(10, activation="softmax")])
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, EnsembleLayer([a, b], weights=[2, 1])(inputs))
        model.save("ensemble.keras")

    and later, in any process::

        import keras
        import hubensemble

        model = keras.models.load_model("ensemble.keras",
                                        custom_objects=hubensemble.custom_objects())
    """

    def __init__(self, members, weights=None, *, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        # The argument and the value refused named (refused.described), with the way on: it
        # said "got str" and "got int", not which member nor what it was.
        example = "; e.g. EnsembleLayer([model_a, model_b])"
        if not isinstance(members, (list, tuple)):
            one = " (one member: write [member])" if callable(members) else example
            raise TypeError(f"EnsembleLayer() members must be a list of Keras models or "
                            f"layers, got {described(members)}{one}")
        members = list(members)
        if not members:
            raise ValueError(f"EnsembleLayer() members is empty: it needs at least one member, "
                             f"a Keras model or layer{example}")
        for i, m in enumerate(members):
            if not callable(m):
                raise ValueError(f"EnsembleLayer() members[{i}] must be a Keras model or layer, "
                                 f"got {described(m)}{example}")
        self.members = members
        self.member_weights = normalise_weights(
            [1.0] * len(members) if weights is None else weights, len(members))
        self.from_logits = bool(from_logits)

    def build(self, input_shape=None):
        """Builds the members that are unbuilt layers for `input_shape`."""
        for m in self.members:
            if isinstance(m, keras.layers.Layer) and not m.built and input_shape is not None:
                m.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        """Every member on `inputs` (with `training` passed through), averaged: float32
        [N, C]."""
        return self.combine([m(inputs, training=training) for m in self.members])

    def combine(self, outputs):
        """The weighted average float32 [N, C] of the members' outputs [N, C], given in member
        order (the export's serve_bytes runs the members itself and averages here).

        Raises ValueError when the number of outputs differs from the number of members, or
        when the outputs are not all [N, C] with one C >= 2 (`_check_output_shapes`).
        """
        outputs = list(outputs)
        if len(outputs) != len(self.members):
            raise ValueError(f"expected {len(self.members)} member outputs, got {len(outputs)}")
        self._check_output_shapes([_static_shape(out) for out in outputs])
        total = None
        for w, out in zip(self.member_weights, outputs):
            p = keras.ops.cast(out, "float32")
            if self.from_logits:
                p = keras.ops.softmax(p, axis=-1)
            p = p * w
            total = p if total is None else total + p
        return total

    def compute_output_shape(self, input_shape):
        """(N, C): the members' common output shape (None where no member's is known).

        Raises ValueError, as `combine`, for members whose known output shapes are not all
        [N, C] with one C >= 2: a functional model is refused when it is built."""
        shapes = []
        for m in self.members:
            shape = None
            if hasattr(m, "compute_output_shape"):
                with contextlib.suppress(Exception):
                    shape = tuple(m.compute_output_shape(input_shape))
            shapes.append(shape)
        classes = self._check_output_shapes(shapes)
        return (input_shape[0], classes)

    def _check_output_shapes(self, shapes):
        """The number of classes C (None when no shape says it) of the members' output shapes
        (tuples, in member order; None where unknown); ValueError, listing each member's shape,
        unless every known shape is [N, C] with one C >= 2 (a str in `shapes` describes an
        output that is not a tensor)."""
        known = [(i, s) for i, s in enumerate(shapes) if s is not None]
        widths = {s[-1] for _, s in known
                  if isinstance(s, tuple) and len(s) == 2 and s[-1] is not None}
        bad_rank = [i for i, s in known if not isinstance(s, tuple) or len(s) != 2]
        if not bad_rank and len(widths) <= 1 and not widths & {0, 1}:
            return next(iter(widths), None)
        listed = ", ".join(
            f"member {i} {getattr(self.members[i], 'name', type(self.members[i]).__name__)!r}: "
            f"{'unknown' if s is None else s}" for i, s in enumerate(shapes))
        if bad_rank:
            why, fix = ("each member must output class probabilities [N, C]",
                        "end each member with a head such as Dense(C, activation='softmax')")
        elif len(widths) > 1:
            why, fix = ("the members output different numbers of classes",
                        "give every member a head over the same C classes")
        else:
            why, fix = ("one output column is not a distribution over classes (a sigmoid "
                        "head?)", "give each member a softmax head with a column per class "
                        "([N, 2] for two classes)")
        raise ValueError(f"EnsembleLayer cannot average its members' outputs: {why} ({listed}); "
                         f"{fix}")

    def get_config(self):
        """The layer's config with its members serialised (Keras serialisation)."""
        config = super().get_config()
        config.update(members=[keras.saving.serialize_keras_object(m) for m in self.members],
                      weights=list(self.member_weights), from_logits=self.from_logits)
        return config

    @classmethod
    def from_config(cls, config):
        """The layer back from `get_config`, its members deserialised."""
        config = dict(config)
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)


@keras.saving.register_keras_serializable(package="hubensemble")
class EvalResize(keras.layers.Layer):
    """Resizes float images [N, H, W, C] in [0, 1] to float32 [N, size, size, C] in [0, 1]
    exactly as evaluation does.

    `augment.eval_preprocess`: the one resize policy (antialiased bilinear resize of the whole
    image, no crop, clipped to [0, 1]) — the resize a member's validation and test
    probabilities were made with, so the exported member sees what it was selected on.
    Raises ValueError for a size below 1.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")

    def call(self, images):
        """float images [N, H, W, C] in [0, 1] -> float32 [N, size, size, C] in [0, 1]."""
        return augment.eval_preprocess(images, size=self.size)

    def compute_output_shape(self, input_shape):
        """(N, size, size, C)."""
        return (input_shape[0], self.size, self.size, input_shape[-1])

    def get_config(self):
        """The layer's config with its `size`."""
        config = super().get_config()
        config.update(size=self.size)
        return config


def _static_shape(output):
    """The static shape of a member's output as a tuple (None for an unknown rank), or a str
    naming what it is when it is not a tensor (a dict of a multi-output model)."""
    shape = getattr(output, "shape", None)
    if shape is None:
        return f"a {type(output).__name__}, not a tensor"
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):  # TensorFlow's shape of unknown rank cannot be iterated
        return None


def normalise_weights(weights, n: int) -> tuple[float, ...]:
    """`weights` (a sequence of n real numbers, e.g. a list, tuple or 1-D array) as n floats
    in [0, 1] summing to 1.

    Raises TypeError for weights that are not a sequence of numbers (a str, a dict, a single
    number, an element that is not a real number); ValueError for a count other than n, a
    negative or non-finite weight, or all 0.
    """
    form = f"a sequence of {n} numbers, one per member, e.g. weights={[1] * n}"
    if isinstance(weights, (str, bytes, dict)) or not hasattr(weights, "__iter__"):
        raise TypeError(f"member weights must be {form}; got {type(weights).__name__} "
                        f"{weights!r}")
    values = list(weights)
    for x in values:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            raise TypeError(f"member weights must be {form}; got {values!r}, whose "
                            f"{type(x).__name__} {x!r} is not a number")
    w = np.asarray([float(x) for x in values], np.float64)
    if w.shape != (n,):
        raise ValueError(f"expected {n} weights (one per member), got {len(w)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"member weights must be finite, >= 0 and not all 0, got {list(w)}")
    return tuple(float(x) for x in w / w.sum())


def member_model(classifier: keras.Model, size: int, *, name: str | None = None,
                 backbone=None) -> keras.Model:
    """A member as the export runs it: float32 images [N, H, W, 3] in [0, 1], any H and W ->
    EvalResize(size) (as evaluation resized) -> `classifier` -> probabilities [N, C].

    With `backbone` (another member's frozen backbone layer, equal to this classifier's own
    weight for weight: `export.shared.backbone_groups`) the member is that backbone followed
    by its own `head_probabilities` (dropout, head, softmax), what `classifier` computes; the
    model then holds the one shared backbone, not the classifier's copy of it."""
    inputs = keras.Input((None, None, 3), name="images")
    resized = EvalResize(size, name="eval_resize")(inputs)
    if backbone is None:
        outputs = classifier(resized)
    else:
        outputs = classifier.head_probabilities(backbone(resized))
    return keras.Model(inputs, outputs, name=name)
