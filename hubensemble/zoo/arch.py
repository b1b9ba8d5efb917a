"""The zoo's architecture: a small ResNet-v2 with GroupNorm and weight standardisation (BiT)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from hubensemble.text import did_you_mean


@dataclass(frozen=True)
class ArchSpec:
    """A ResNet-v2 (pre-activation) with GroupNorm and weight-standardised convolutions.

    Per-image standardisation, a 3x3 stem with stride ``stem_stride``, then ``width``
    channels in the first stage, doubled at every later stage (each starts with a stride-2
    block); ``blocks`` residual blocks (two 3x3 convolutions) per stage; a final GroupNorm +
    ReLU as in BiT, then the embedding: 2x2 grid pooling (``grid2``) or BiT's global average
    (``gap``). No classification head: the head belongs to the downstream task.
    """

    name: str
    width: int
    blocks: tuple[int, ...]
    stem_stride: int = 2
    pool: str = "grid2"  # "gap": global average; "grid2": average over each image quadrant
    groups: int = 8

    @property
    def output_dim(self) -> int:
        """Embedding size: channels of the last stage, x4 for 2x2 grid pooling."""
        cells = 4 if self.pool == "grid2" else 1
        return cells * self.width * 2 ** (len(self.blocks) - 1)

    @property
    def depth(self) -> int:
        """Weighted layers: the stem, two convolutions per block, the head."""
        return 2 + 2 * sum(self.blocks)  # stem + two convs per block + the head


# Named like BiT's models: r<depth>x<width multiplier> (x1 = 16 channels in the first stage).
ARCHITECTURES = {
    a.name: a for a in (
        ArchSpec("r8x1", width=16, blocks=(1, 1, 1)),
        ArchSpec("r8x2", width=32, blocks=(1, 1, 1)),
        ArchSpec("r14x2", width=32, blocks=(2, 2, 2)),
        ArchSpec("r6x1", width=16, blocks=(1, 1)),
    )
}


@functools.lru_cache(maxsize=None)
def _keras_layers():
    # Keras is imported lazily (the glyph generator and the plan need none of TensorFlow),
    # and the classes are made once, so that isinstance checks and registration are stable.
    from hubensemble._tf import keras, tensorflow as tf

    @keras.saving.register_keras_serializable(package="hubensemble")
    class StdConv2D(keras.layers.Conv2D):
        """Conv2D with weight standardisation (Qiao et al. 2019; BiT): each output filter is
        normalised to zero mean and unit variance over its inputs before every use."""

        def __init__(self, *args, eps=1e-10, **kwargs):
            super().__init__(*args, **kwargs)
            self.eps = eps

        def convolution_op(self, inputs, kernel):
            mean, var = tf.nn.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return super().convolution_op(inputs, (kernel - mean) * tf.math.rsqrt(var + self.eps))

        def get_config(self):
            return {**super().get_config(), "eps": self.eps}

    @keras.saving.register_keras_serializable(package="hubensemble")
    class PerImageStandardization(keras.layers.Layer):
        """(x - mean) / max(std, floor) over each image's pixels and channels.

        Makes the network blind to brightness and contrast from its first layer: random
        foreground/background colours otherwise leave low-contrast images as a DC offset
        that GroupNorm cannot remove, and training stalls for hundreds of steps."""

        def __init__(self, floor=1.0 / 32, **kwargs):
            super().__init__(**kwargs)
            self.floor = floor

        def call(self, x):
            mean, var = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
            return (x - mean) / tf.maximum(tf.sqrt(var), self.floor)

        def get_config(self):
            return {**super().get_config(), "floor": self.floor}

    @keras.saving.register_keras_serializable(package="hubensemble")
    class GridPooling2D(keras.layers.Layer):
        """Average over each quadrant of the feature map, concatenated: [N, H, W, C] → [N, 4C].

        The 2x2 level of spatial pyramid pooling (He et al. 2014): the global average is the
        mean of the four cells, so nothing of GAP is lost, and the embedding keeps where in
        the image a feature is. Any H, W >= 1 works (odd sizes share the middle row/column)."""

        def call(self, x):
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            rows = [x[:, :(h + 1) // 2], x[:, h // 2:]]
            cells = [tf.reduce_mean(r[:, :, c], axis=[1, 2]) for r in rows
                     for c in (slice(None, (w + 1) // 2), slice(w // 2, None))]
            return tf.concat(cells, axis=-1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 4 * input_shape[-1])

    return keras, StdConv2D, PerImageStandardization, GridPooling2D


def std_conv2d_class():
    """The StdConv2D Keras layer class (weight-standardised convolution)."""
    return _keras_layers()[1]


def per_image_standardization_class():
    """The PerImageStandardization Keras layer class (the backbone's first layer)."""
    return _keras_layers()[2]


def build_backbone(arch: ArchSpec, *, name: str | None = None):
    """The embedding network of ``arch``: a Keras model from float32 images [B, H, W, 3] in
    [0, 1], any H, W >= 1, to float32 [B, arch.output_dim]. ValueError for an unknown pool."""
    keras, StdConv2D, PerImageStandardization, GridPooling2D = _keras_layers()

    def gn(channels, label):
        return keras.layers.GroupNormalization(groups=min(arch.groups, channels // 4),
                                               epsilon=1e-5, name=label)

    def conv(channels, kernel, stride, label):
        return StdConv2D(channels, kernel, strides=stride, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=label)

    inp = keras.Input((None, None, 3), name="images")
    x = PerImageStandardization(name="standardize")(inp)
    # A strided stem, like BiT's root (7x7/2 conv + 3x3/2 max-pool) scaled down to 32 px
    # inputs: every later layer then runs at a quarter of the pixels.
    x = conv(arch.width, 3, arch.stem_stride, "stem_conv")(x)
    for s, n_blocks in enumerate(arch.blocks):
        channels = arch.width * 2 ** s
        for b in range(n_blocks):
            stride = 2 if (s > 0 and b == 0) else 1
            label = f"stage{s + 1}_block{b + 1}"
            # Pre-activation block (ResNet-v2): the projection shortcut reads the normalised
            # input, exactly like BiT's PreActBottleneck.
            pre = keras.layers.ReLU(name=f"{label}_relu1")(gn(x.shape[-1], f"{label}_gn1")(x))
            shortcut = x
            if stride != 1 or x.shape[-1] != channels:
                shortcut = conv(channels, 1, stride, f"{label}_proj")(pre)
            y = conv(channels, 3, stride, f"{label}_conv1")(pre)
            y = keras.layers.ReLU(name=f"{label}_relu2")(gn(channels, f"{label}_gn2")(y))
            y = conv(channels, 3, 1, f"{label}_conv2")(y)
            x = keras.layers.Add(name=f"{label}_add")([shortcut, y])
    x = keras.layers.ReLU(name="pre_head_relu")(gn(x.shape[-1], "pre_head_gn")(x))
    if arch.pool == "grid2":
        out = GridPooling2D(name="embedding")(x)
    elif arch.pool == "gap":
        out = keras.layers.GlobalAveragePooling2D(name="embedding")(x)
    else:
        raise ValueError(f"unknown pool {arch.pool!r}{did_you_mean(arch.pool, ('grid2', 'gap'))}; "
                         "use 'grid2' or 'gap'")
    return keras.Model(inp, out, name=name or arch.name)


def arch_label(arch: ArchSpec) -> str:
    """The architecture name written into catalogues, e.g. "resnet_v2_8x32_gn_ws"."""
    return f"resnet_v2_{arch.depth}x{arch.width}_gn_ws"


def count_params(arch: ArchSpec) -> int:
    """Parameters of the exported backbone (no head), computed without building it."""
    total, cin = 3 * 3 * 3 * arch.width, arch.width
    for s, n_blocks in enumerate(arch.blocks):
        c = arch.width * 2 ** s
        for b in range(n_blocks):
            total += 2 * cin  # gn1
            if (s > 0 and b == 0) or cin != c:
                total += cin * c  # projection
            total += 9 * cin * c + 2 * c + 9 * c * c  # conv1, gn2, conv2
            cin = c
    return total + 2 * cin  # pre-head GroupNorm
