"""Build a pool of generalist and expert modules from upstream data with a label hierarchy."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import platform
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hubensemble.errors import DataError, HubensembleError, ModuleLoadError
from hubensemble.fileio import (TEMP_MARKER, atomic_write_json, atomic_write_text, file_lock,
                                pid_alive)

# Bump whenever a preset, the architecture, the training recipe or the upstream data change:
# the cache folder carries it, so a changed recipe builds a new zoo instead of reusing one.
RECIPE_VERSION = 1
MARKER = "zoo.json"  # written last inside a finished zoo: its presence means "complete"
LICENSE = "Apache-2.0"


# --------------------------------------------------------------------------- architecture


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
        cells = 4 if self.pool == "grid2" else 1
        return cells * self.width * 2 ** (len(self.blocks) - 1)

    @property
    def depth(self) -> int:
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
    import keras
    import tensorflow as tf

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
    """The embedding network of ``arch`` (images in [0, 1], any size → [batch, output_dim])."""
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
        raise ValueError(f"unknown pool {arch.pool!r}; use 'grid2' or 'gap'")
    return keras.Model(inp, out, name=name or arch.name)


# --------------------------------------------------------------------------- upstream data


@dataclass
class UpstreamData:
    """Upstream images with a label hierarchy (sub-tree → leaf classes).

    Give either arrays (``images`` uint8 [N, H, W, 3] or float in [0, 1], ``labels`` int [N]
    indexing ``class_names``) or a ``sampler(n, seed, classes)`` that returns ``n`` fresh
    (images, labels) of the given class names (all classes when None) — as the procedural
    glyphs do. Every class must be in exactly one sub-tree.
    """

    name: str
    class_names: list[str]
    hierarchy: dict[str, list[str]]
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    sampler: Callable | None = field(default=None, repr=False)

    def __post_init__(self):
        self.class_names = [str(c) for c in self.class_names]
        self.hierarchy = {str(k): [str(c) for c in v] for k, v in self.hierarchy.items()}
        check_hierarchy(self.hierarchy, self.class_names)
        if (self.images is None) == (self.sampler is None):
            raise DataError("UpstreamData needs either images and labels or a sampler "
                            "(not both, not neither)")
        if self.images is not None:
            if self.labels is None or len(self.labels) != len(self.images):
                raise DataError(f"upstream {self.name}: {len(self.images)} images but "
                                f"{0 if self.labels is None else len(self.labels)} labels; "
                                "give one integer label per image")
            images = np.asarray(self.images)
            if images.ndim != 4 or images.shape[-1] != 3:
                raise DataError(f"upstream {self.name}: images must be [N, H, W, 3] RGB, got "
                                f"shape {images.shape}")
            if images.dtype != np.uint8:
                images = np.clip(np.asarray(images, np.float32) * 255.0 + 0.5, 0, 255)
                images = images.astype(np.uint8)
            labels = np.asarray(self.labels).astype(np.int64)
            if labels.min() < 0 or labels.max() >= len(self.class_names):
                raise DataError(f"upstream {self.name}: labels must be in [0, "
                                f"{len(self.class_names)}) (indices into class_names)")
            self.images, self.labels = images, labels

    def sample(self, n: int, seed: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """n training examples of ``classes`` (all when None): (uint8 images, labels)."""
        if self.sampler is not None:
            images, labels = self.sampler(n, seed, classes)
            return np.asarray(images), np.asarray(labels, np.int64)
        if classes is None:
            pool = np.arange(len(self.labels))
        else:
            wanted = np.array([self.class_names.index(c) for c in classes])
            pool = np.nonzero(np.isin(self.labels, wanted))[0]
        if len(pool) == 0:
            raise DataError(f"upstream {self.name}: no examples of {list(classes)[:5]}")
        # Whole passes over the subset in a seeded order: each example used as evenly as n allows.
        rng = np.random.default_rng(seed)
        reps = -(-n // len(pool))
        idx = np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n]
        return self.images[idx], self.labels[idx]

    @classmethod
    def glyphs(cls) -> "UpstreamData":
        """The procedural glyphs / shapes / textures of hubensemble.glyphs (no download)."""
        from hubensemble import glyphs

        def sampler(n, seed, classes):
            return glyphs.generate(n, seed, classes=classes)

        return cls(name=glyphs.UPSTREAM_NAME, class_names=glyphs.class_names(),
                   hierarchy=glyphs.hierarchy(), sampler=sampler)

    @classmethod
    def from_npz(cls, path, hierarchy, *, name: str | None = None) -> "UpstreamData":
        """Arrays from an .npz (``images``, ``labels``, optional ``class_names``) and a
        hierarchy (a dict or the path of a YAML file: sub-tree → list of class names)."""
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                images, labels = z["images"], z["labels"]
                names = [str(c) for c in z["class_names"]] if "class_names" in z else None
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: cannot read upstream data ({e}); the .npz needs arrays "
                            "'images' [N, H, W, 3], 'labels' [N] and optionally "
                            "'class_names'") from None
        tree = load_hierarchy(hierarchy) if not isinstance(hierarchy, dict) else hierarchy
        if names is None:
            names = [c for classes in tree.values() for c in classes]
        return cls(name=name or os.path.splitext(os.path.basename(path))[0], class_names=names,
                   hierarchy=tree, images=images, labels=labels)


def load_hierarchy(path) -> dict[str, list[str]]:
    """A hierarchy YAML file (sub-tree: [class, ...]) as a dict."""
    import yaml

    try:
        with open(path, "r", encoding="utf-8") as f:
            tree = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"{path}: cannot read the hierarchy ({e})") from None
    if not isinstance(tree, dict) or not all(isinstance(v, list) for v in tree.values()):
        raise DataError(f"{path}: a hierarchy is a mapping sub-tree → list of class names, "
                        "e.g. `animals: [cat, dog]`")
    return {str(k): [str(c) for c in v] for k, v in tree.items()}


def check_hierarchy(tree: dict[str, list[str]], class_names) -> None:
    """Raises DataError unless every class is in exactly one sub-tree and nothing else is."""
    seen = {}
    for sub, classes in tree.items():
        if not classes:
            raise DataError(f"sub-tree {sub!r} has no classes; remove it or give it some")
        for c in classes:
            if c in seen:
                raise DataError(f"class {c!r} is in sub-trees {seen[c]!r} and {sub!r}; each "
                                "class belongs to exactly one sub-tree")
            seen[c] = sub
    names = set(class_names)
    missing = sorted(names - set(seen))
    extra = sorted(set(seen) - names)
    if missing or extra:
        raise DataError(f"the hierarchy does not match the classes: not in any sub-tree "
                        f"{missing[:5]}, unknown classes {extra[:5]}")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TrainSpec:
    """How one kind of model trains: linear warm-up over the first 10 % of the steps, then
    cosine decay to zero, with Adam (default: fastest to useful features in a few hundred
    steps on a CPU) or SGD with Nesterov momentum 0.9 (BiT's upstream optimiser)."""

    examples: int       # upstream examples drawn (generalists of one size share theirs)
    steps: int
    lr: float
    batch_size: int = 128
    optimizer: str = "adam"

    def to_json(self):
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ZooConfig:
    """What to build. ``generalists`` maps an architecture name to its seeds; ``experts`` maps
    an architecture to the sub-trees that get an expert (None: every sub-tree), each fine-tuned
    from that architecture's first generalist."""

    name: str
    generalists: dict[str, tuple[int, ...]]
    experts: dict[str, tuple[str, ...] | None]
    generalist_train: dict[str, TrainSpec]
    expert_train: dict[str, TrainSpec]
    seed: int = 0
    data_seed: int = 1234
    upstream: UpstreamData | None = None  # None: the procedural glyphs
    license: str = LICENSE

    def upstream_data(self) -> UpstreamData:
        return self.upstream if self.upstream is not None else UpstreamData.glyphs()

    def to_json(self):
        up = self.upstream
        return {"name": self.name, "recipe_version": RECIPE_VERSION,
                "generalists": {k: list(v) for k, v in self.generalists.items()},
                "experts": {k: (list(v) if v is not None else None)
                            for k, v in self.experts.items()},
                "generalist_train": {k: v.to_json() for k, v in self.generalist_train.items()},
                "expert_train": {k: v.to_json() for k, v in self.expert_train.items()},
                "seed": self.seed, "data_seed": self.data_seed,
                "upstream": up.name if up is not None else _glyphs_name(),
                "license": self.license}


def _glyphs_name():
    from hubensemble.glyphs import UPSTREAM_NAME

    return UPSTREAM_NAME


def _demo_config(seed=0):
    # About 3.5 minutes on the 2-core build machine (docs/zoo.md, tools/benchmarks/bench_zoo.py).
    return ZooConfig(
        name="demo",
        generalists={"r8x2": (seed, seed + 1, seed + 2), "r6x1": (seed,)},
        experts={"r8x2": None, "r6x1": ("digits", "shapes", "textures")},
        generalist_train={"r8x2": TrainSpec(examples=48_000, steps=500, lr=0.003),
                          "r6x1": TrainSpec(examples=48_000, steps=350, lr=0.003)},
        expert_train={"r8x2": TrainSpec(examples=4_000, steps=30, lr=0.001),
                      "r6x1": TrainSpec(examples=4_000, steps=30, lr=0.001)},
        seed=seed)


def _quick_config(seed=0):
    return ZooConfig(
        name="quick",
        generalists={"r6x1": (seed, seed + 1)},
        experts={"r6x1": ("digits", "shapes")},
        generalist_train={"r6x1": TrainSpec(examples=4_000, steps=30, lr=0.003, batch_size=64)},
        expert_train={"r6x1": TrainSpec(examples=1_000, steps=10, lr=0.001, batch_size=64)},
        seed=seed)


PRESETS: dict[str, Callable[[int], ZooConfig]] = {"demo": _demo_config, "quick": _quick_config}


def preset(name: str, seed: int = 0) -> ZooConfig:
    """The ZooConfig of a named preset (``demo``: the offline demo pool; ``quick``: tests)."""
    if name not in PRESETS:
        raise HubensembleError(f"unknown zoo preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name](seed)


@dataclass(frozen=True)
class ModelPlan:
    """One module of a zoo: what it is and how it is made."""

    name: str
    family: str            # generalist | expert
    arch: str
    seed: int
    subtree: str | None = None
    parent: str | None = None  # the generalist an expert is fine-tuned from


def plan(config: ZooConfig, hierarchy: dict[str, list[str]] | None = None) -> list[ModelPlan]:
    """The modules of a zoo, in build order (each architecture's generalists, then its
    experts). ``hierarchy`` is only needed when some ``experts`` entry is None (all)."""
    out = []
    for arch, seeds in config.generalists.items():
        if arch not in ARCHITECTURES:
            raise HubensembleError(f"unknown architecture {arch!r}; known: "
                                   f"{', '.join(ARCHITECTURES)} (add an ArchSpec to "
                                   "zoo.ARCHITECTURES for another)")
        if not seeds:
            raise HubensembleError(f"architecture {arch} needs at least one generalist seed")
        if arch not in config.generalist_train:
            raise HubensembleError(f"no generalist_train entry for {arch}; add "
                                   f"generalist_train={{'{arch}': TrainSpec(...)}}")
        for s in seeds:
            out.append(ModelPlan(f"{arch}-generalist-{s}", "generalist", arch, s))
    for arch, subtrees in config.experts.items():
        if arch not in config.generalists:
            raise HubensembleError(f"experts of {arch} need a generalist of {arch} to start "
                                   f"from; add {arch} to generalists")
        if arch not in config.expert_train:
            raise HubensembleError(f"no expert_train entry for {arch}; add "
                                   f"expert_train={{'{arch}': TrainSpec(...)}}")
        if subtrees is None:
            if hierarchy is None:
                raise HubensembleError("plan() needs the hierarchy when experts are 'all'")
            subtrees = tuple(hierarchy)
        elif hierarchy is not None:
            unknown = [s for s in subtrees if s not in hierarchy]
            if unknown:
                raise HubensembleError(f"unknown sub-tree(s) {unknown}; the hierarchy has "
                                       f"{', '.join(hierarchy)}")
        parent_seed = config.generalists[arch][0]
        for sub in subtrees:
            out.append(ModelPlan(f"{arch}-expert-{sub}", "expert", arch, parent_seed, sub,
                                 parent=f"{arch}-generalist-{parent_seed}"))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise HubensembleError(f"duplicate module names in the zoo plan: {names}")
    return out


# --------------------------------------------------------------------------- catalogue


def _spec(p: ModelPlan, upstream: str, handle: str, *, input_size, sha256=None, params=None,
          license=LICENSE):
    from hubensemble.catalogue import ModuleSpec

    arch = ARCHITECTURES[p.arch]
    tags = ["zoo", p.family, p.arch] + ([p.subtree] if p.subtree else [])
    # input_size is the size the module was trained at: the graph takes any size, but its
    # features are tuned to that scale, so HubLayer should resize inputs to it.
    return ModuleSpec(name=p.name, handle=handle, sha256=sha256, input_size=input_size,
                      value_range="0,1", output_dim=arch.output_dim, family=p.family,
                      architecture=_arch_label(arch), upstream=upstream,
                      subtree=p.subtree, params=params, license=license, tags=tuple(tags),
                      seed=p.seed)


def _arch_label(arch: ArchSpec) -> str:
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


def demo_catalogue_specs():
    """The entries of catalogue/demo.yaml: every demo module as ``zoo:demo/NAME``.

    No sha256: training is not bit-reproducible across machines, so the modules a user's
    cache holds differ in their last bits from the ones built here.
    """
    config = preset("demo")
    from hubensemble import glyphs

    size = (glyphs.IMAGE_SIZE, glyphs.IMAGE_SIZE)
    return [_spec(p, glyphs.UPSTREAM_NAME, f"zoo:demo/{p.name}", input_size=size,
                  params=count_params(ARCHITECTURES[p.arch]), license=config.license)
            for p in plan(config, glyphs.hierarchy())]


DEMO_HEADER = (
    "The offline demo zoo: small ResNet-v2 (GroupNorm + weight standardisation) modules\n"
    "pre-trained on procedural glyphs, shapes and textures (hubensemble.glyphs, glyphs-v1):\n"
    "generalists (several seeds, two widths) and experts (a generalist fine-tuned on one\n"
    "sub-tree of the label hierarchy). Each handle zoo:demo/NAME is built into the user cache\n"
    "($XDG_CACHE_HOME/hubensemble/zoo/) on first use, in a few minutes on a CPU.\n"
    "Generated by hubensemble.zoo.write_demo_catalogue(); do not edit by hand.")


def write_demo_catalogue(path) -> None:
    """Writes catalogue/demo.yaml from demo_catalogue_specs()."""
    from hubensemble.catalogue import write_catalogue

    write_catalogue(path, demo_catalogue_specs(), header_comment=DEMO_HEADER)


# --------------------------------------------------------------------------- training


class _Trainer:
    """Trains every module of one architecture with one compiled Keras model.

    Compiling and tracing a train step costs seconds on a CPU, as long as a short expert
    fine-tune; so each module does not get a model of its own: a module's start weights are
    loaded into the shared backbone, the head and the optimizer state are zeroed and the
    schedule's variables are set. The head is as wide as the largest label set; a fixed
    logit mask (-1e9 on unused logits) makes its softmax exactly that of a k-class head.
    """

    def __init__(self, arch: ArchSpec, n_out: int, optimizer: str):
        import keras

        self.arch, self.n_out = arch, n_out
        self.backbone = build_backbone(arch, name=f"{arch.name}_trainer")
        self.head = _masked_dense_class()(n_out, name="head")
        self.schedule = _warmup_cosine_class()()
        if optimizer == "adam":
            opt = keras.optimizers.Adam(self.schedule)
        elif optimizer == "sgd":
            opt = keras.optimizers.SGD(self.schedule, momentum=0.9, nesterov=True)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}; use 'adam' or 'sgd'")
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
        import keras
        import tensorflow as tf

        self.backbone.set_weights(start_weights)
        self.head.reset(n_classes)
        for v in self.model.optimizer.variables:
            v.assign(np.zeros(v.shape, v.dtype))
        self.schedule.set(spec.lr, max(1, spec.steps // 10), spec.steps)
        ds = (tf.data.Dataset.from_tensor_slices((images, labels))
              .shuffle(min(len(labels), 65536), seed=seed).repeat()
              .batch(spec.batch_size, drop_remainder=True)
              .map(lambda x, y: (tf.cast(x, tf.float32) * (1.0 / 255.0), y),
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

        hist = self.model.fit(ds, steps_per_epoch=spec.steps, epochs=1, verbose=0,
                              shuffle=False, callbacks=[_Watch()])
        # Keras reports the running mean over the epoch; undo it for the last tenth.
        total = float(hist.history["accuracy"][-1])
        return (total * spec.steps - seen.get("first", 0.0) * first) / tail


@functools.lru_cache(maxsize=None)
def _masked_dense_class():
    import keras
    import tensorflow as tf

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
            if n_classes > self.units:
                raise ValueError(f"{n_classes} classes but the head has {self.units} logits")
            self.kernel.assign(np.zeros(self.kernel.shape, "float32"))
            self.bias.assign(np.zeros(self.bias.shape, "float32"))
            mask = np.where(np.arange(self.units) < n_classes, 0.0, -1e9).astype("float32")
            self.mask.assign(mask)

    return MaskedDense


@functools.lru_cache(maxsize=None)
def _warmup_cosine_class():
    import keras
    from keras import ops

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to ``peak``, then cosine decay to zero at ``total`` steps; the three
        numbers are variables, so one compiled train step serves any schedule."""

        def __init__(self):
            self.peak = keras.Variable(0.0, trainable=False, name="peak_lr")
            self.warmup = keras.Variable(1.0, trainable=False, name="warmup_steps")
            self.total = keras.Variable(1.0, trainable=False, name="total_steps")

        def set(self, peak, warmup, total):
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


def _subtree_labels(labels, class_names, classes):
    """Global labels → 0..len(classes)-1 in the order of ``classes``."""
    lookup = np.full(len(class_names), -1, np.int64)
    for i, c in enumerate(classes):
        lookup[class_names.index(c)] = i
    out = lookup[labels]
    if (out < 0).any():
        raise DataError("the upstream sampler returned labels outside the requested sub-tree")
    return out


# --------------------------------------------------------------------------- building


def _temp_dir_for(out_dir: pathlib.Path) -> pathlib.Path:
    return out_dir.parent / f"{TEMP_MARKER}{out_dir.name}.{os.getpid()}"


def _remove_stale_temps(out_dir: pathlib.Path):
    """Deletes temp folders of interrupted builds of out_dir whose process is gone."""
    prefix = f"{TEMP_MARKER}{out_dir.name}."
    if not out_dir.parent.is_dir():
        return
    for entry in out_dir.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split(".")[0]  # .tmp-NAME.PID or .tmp-NAME.PID.old
        if pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
            shutil.rmtree(entry, ignore_errors=True)


def is_zoo(path) -> bool:
    """True for a finished zoo folder (its marker file is written last)."""
    return os.path.isfile(os.path.join(os.fspath(path), MARKER))


def _check_out_dir(out_dir: pathlib.Path):
    if out_dir.exists() and not out_dir.is_dir():
        raise HubensembleError(f"{out_dir} is a file; choose a folder for the zoo")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_zoo(out_dir):
        raise HubensembleError(f"{out_dir} exists and is not a zoo (no {MARKER}); choose an "
                               "empty or new folder, or delete it first")


def _put_in_place(tmp: pathlib.Path, out_dir: pathlib.Path):
    """Renames the finished build onto out_dir (an older zoo there is replaced)."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f"{TEMP_MARKER}{out_dir.name}.{os.getpid()}.old"
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_zoo(config: str | ZooConfig, out_dir=None, *, seed: int | None = None,
              progress: bool = True, workers: int | None = None,
              hook: Callable[[str, str], None] | None = None) -> pathlib.Path:
    """Builds a zoo: pre-trains the generalists, fine-tunes the experts, exports each as a
    reusable SavedModel and writes ``catalogue.yaml``; returns the zoo folder.

    ``config`` is a preset name (``demo``, ``quick``) or a ZooConfig (own upstream data:
    ``ZooConfig(..., upstream=UpstreamData.from_npz(...))``). ``out_dir`` defaults to the
    preset's cache folder (see ``zoo_dir``), for a preset name with its default seed only.
    ``seed`` overrides the config's seed.

    ``workers`` processes train modules side by side (default: one per CPU core, at most 4,
    or none for a small zoo; TensorFlow keeps barely more than one core busy with these small
    networks, so two single-threaded trainings nearly double the speed on two cores);
    ``workers=1`` trains in this process. The build happens in a temp folder next to
    out_dir that is renamed at the end, so an interrupted build never leaves a half zoo.
    ``hook(event, module_name)`` is called in this process at "start" and "exported" of
    every module (for tests).
    """
    if out_dir is None and not (isinstance(config, str) and not seed):
        # The cache folder of a preset is what zoo:PRESET/NAME handles load: only the
        # preset's own recipe and seed may go there.
        raise HubensembleError("give an output folder (--out DIR) for a zoo that is not a "
                               "preset with its default seed")
    if isinstance(config, str):
        config = preset(config, 0 if seed is None else seed)
    elif seed is not None:
        config = _reseed(config, seed)
    out_dir = pathlib.Path(out_dir) if out_dir is not None else zoo_dir(config.name)
    out_dir = out_dir.expanduser().absolute()
    _check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out_dir)
    tmp = _temp_dir_for(out_dir)
    tmp.mkdir()
    try:
        _build_into(config, tmp, progress=progress, hook=hook, workers=workers)
        _put_in_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _reseed(config: ZooConfig, seed: int) -> ZooConfig:
    shift = seed - config.seed
    return dataclasses.replace(
        config, seed=seed,
        generalists={a: tuple(s + shift for s in seeds) for a, seeds in config.generalists.items()})


@dataclass(frozen=True)
class _Task:
    """Everything a worker needs to train and export one module (all of it picklable)."""

    plan: ModelPlan
    arch: ArchSpec            # the spec itself: a worker does not see ARCHITECTURES changes
    spec: TrainSpec
    n_classes: int
    head_width: int
    data: str                 # .npz with the training images and labels
    start: str | None         # .npz with the start weights (experts); None: init from seed
    train_seed: int
    out: str                  # the module's folder
    keep: str | None          # where to save the trained weights (a parent of experts)
    meta: dict


@functools.lru_cache(maxsize=None)
def _trainer(arch: ArchSpec, head_width: int, optimizer: str) -> "_Trainer":
    # One per process and architecture: a worker compiles it once for all its modules.
    return _Trainer(arch, head_width, optimizer)


def _save_weights(path, weights):
    np.savez(path, **{f"w{i:04d}": w for i, w in enumerate(weights)})


def _load_weights(path):
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files)]


def _run_task(task: _Task, report=None) -> dict:
    """Trains one module and exports it (in a worker process or in the builder's own)."""
    import keras

    from hubensemble.hub import file_sha256, write_hub_module

    t0 = time.time()
    p, arch = task.plan, task.arch
    if task.start is None:
        keras.utils.set_random_seed(p.seed)  # the seed's initial weights
        start = build_backbone(arch).get_weights()
    else:
        start = _load_weights(task.start)
    with np.load(task.data) as z:
        images, labels = z["images"], z["labels"]
    trainer = _trainer(arch, task.head_width, task.spec.optimizer)
    keras.utils.set_random_seed(task.train_seed)
    acc = trainer.run(start, images, labels, task.n_classes, task.spec, seed=task.train_seed,
                      report=report)
    weights = trainer.backbone.get_weights()
    if task.keep:
        _save_weights(task.keep, weights)
    train_seconds = time.time() - t0
    # Export a fresh model holding a copy of the weights, named after the module.
    backbone = build_backbone(arch, name=p.name.replace("-", "_"))
    backbone.set_weights(weights)
    params = int(backbone.count_params())
    meta = {**task.meta, "params": params, "train_accuracy": acc}
    write_hub_module(backbone, task.out, metadata=meta)
    sha = file_sha256(os.path.join(task.out, "saved_model.pb"))
    return {**meta, "sha256": sha, "train_seconds": round(train_seconds, 2),
            "seconds": round(time.time() - t0, 2)}


def _init_worker(threads: int):
    import signal

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Ctrl-C belongs to the builder, which terminates the workers and removes the temp folder.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from hubensemble import _tf

    def setup(tf):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    if os.environ.get(_tf.QUIET_ENV):
        _tf.import_quietly(setup)
    else:
        import tensorflow as tf
        setup(tf)


def _default_workers(plans, config) -> int:
    # Starting a worker (a fresh interpreter importing TensorFlow) costs seconds: worth it
    # only when there is more training than that to share.
    images = sum(spec.steps * spec.batch_size for spec in (_spec_of(config, p) for p in plans))
    if images < 50_000:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _build_into(config: ZooConfig, folder: pathlib.Path, *, progress, hook, workers):
    from tqdm.auto import tqdm

    from hubensemble.catalogue import write_catalogue

    started = time.time()
    up = config.upstream_data()
    plans = plan(config, up.hierarchy)
    hook = hook or (lambda event, name: None)
    workers = _default_workers(plans, config) if workers is None else max(1, int(workers))
    workers = min(workers, len(plans))
    work = folder / ".work"  # data and parent weights handed to the workers; removed at the end
    work.mkdir()
    data_files, input_size = {}, None

    def data_for(p: ModelPlan) -> str:
        # Generalists all see the same upstream examples (only their seed differs, as in the
        # paper); the experts of one sub-tree share theirs.
        nonlocal input_size
        spec = _spec_of(config, p)
        key = f"{p.subtree or 'all'}-{spec.examples}"
        if key not in data_files:
            classes = None if p.subtree is None else up.hierarchy[p.subtree]
            images, labels = up.sample(spec.examples, config.data_seed + _index(
                up.hierarchy, p.subtree), classes)
            if classes is not None:
                labels = _subtree_labels(labels, up.class_names, classes)
            input_size = tuple(int(v) for v in images.shape[1:3])
            path = work / f"{key}.npz"
            np.savez(path, images=images, labels=labels)
            data_files[key] = str(path)
        return data_files[key]

    parents = {q.parent for q in plans if q.parent}

    def task_for(p: ModelPlan) -> _Task:
        classes = up.class_names if p.subtree is None else up.hierarchy[p.subtree]
        spec = _spec_of(config, p)
        train_seed = p.seed * 1000 + _index(up.hierarchy, p.subtree) + 1
        meta = {"name": p.name, "family": p.family,
                "architecture": _arch_label(ARCHITECTURES[p.arch]), "arch": p.arch,
                "subtree": p.subtree, "parent": p.parent, "seed": p.seed, "upstream": up.name,
                "classes": len(classes), "output_dim": ARCHITECTURES[p.arch].output_dim,
                "train": spec.to_json(), "zoo": config.name, "recipe_version": RECIPE_VERSION}
        return _Task(plan=p, arch=ARCHITECTURES[p.arch], spec=spec, n_classes=len(classes),
                     head_width=len(up.class_names), data=data_for(p),
                     start=str(work / f"{p.parent}.npz") if p.parent else None,
                     train_seed=train_seed, out=str(folder / p.name),
                     keep=str(work / f"{p.name}.npz") if p.name in parents else None,
                     meta=meta)

    records = {}
    bar = tqdm(total=len(plans), desc=f"zoo {config.name}", unit="module", disable=not progress,
               dynamic_ncols=True)
    try:
        if workers == 1:
            for p in plans:
                verb = "pre-training" if p.family == "generalist" else "fine-tuning"
                bar.set_description(f"zoo {config.name}: {verb} {p.name}")
                hook("start", p.name)

                def report(step, steps, logs):
                    bar.set_postfix_str(f"step {step}/{steps} loss {logs.get('loss', 0):.3f}")

                records[p.name] = _run_task(task_for(p), report=report)
                hook("exported", p.name)
                bar.update(1)
        else:
            _run_parallel(plans, task_for, data_for, records, workers, bar, hook, config.name)
    finally:
        bar.close()
    shutil.rmtree(work)
    specs = []
    for p in plans:
        r = records[p.name]
        specs.append(_spec(p, up.name, str(folder / p.name), input_size=input_size,
                           sha256=r["sha256"], params=r["params"], license=config.license))
    write_catalogue(folder / "catalogue.yaml", specs, header_comment=(
        f"Zoo {config.name!r} built by hubensemble.zoo.build_zoo (recipe {RECIPE_VERSION}) "
        f"from upstream data {up.name}.\nHandles are relative to this file's folder."))
    atomic_write_text(folder / "hierarchy.yaml", _hierarchy_yaml(up))
    atomic_write_json(folder / MARKER, {
        "config": config.to_json(), "modules": [records[p.name] for p in plans],
        "workers": workers, "seconds": round(time.time() - started, 2),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"), "versions": _versions()})


def _spec_of(config: ZooConfig, p: ModelPlan) -> TrainSpec:
    table = config.generalist_train if p.family == "generalist" else config.expert_train
    return table[p.arch]


def _run_parallel(plans, task_for, prepare, records, workers, bar, hook, zoo_name):
    """Trains the plan on a pool of worker processes, one module per worker at a time: the
    generalists first, each parent's experts as soon as its weights exist. While the workers
    train, this process draws the upstream data of the modules that come next."""
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked TF state
    waiting = list(plans)
    running = {}
    prepared = set()
    shown = None
    # Leaving the with-block terminates the workers, also on an exception or Ctrl-C.
    with ctx.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        while waiting or running:
            ready = [p for p in waiting if p.parent is None or p.parent in records]
            for p in ready[:workers - len(running)]:
                waiting.remove(p)
                hook("start", p.name)
                running[p.name] = pool.apply_async(_run_task, (task_for(p),))
            label = f"zoo {zoo_name}: training {', '.join(running)}"
            if label != shown:  # redraw only on a change: this loop polls 10 times a second
                bar.set_description(label)
                shown = label
            done = [name for name, r in running.items() if r.ready()]
            for name in done:
                records[name] = running.pop(name).get()  # re-raises a worker's exception
                hook("exported", name)
                bar.update(1)
            if not done:
                upcoming = [p for p in waiting if p.name not in prepared]
                if upcoming:
                    prepare(upcoming[0])
                    prepared.add(upcoming[0].name)
                else:
                    time.sleep(0.1)


def _index(tree, subtree):
    return 0 if subtree is None else list(tree).index(subtree) + 1


def _hierarchy_yaml(up: UpstreamData) -> str:
    import yaml

    return (f"# Label hierarchy of the upstream data {up.name}: sub-tree -> leaf classes.\n"
            + yaml.safe_dump(up.hierarchy, sort_keys=False, allow_unicode=True, width=100))


def _versions():
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


# --------------------------------------------------------------------------- the cache


def zoo_root() -> pathlib.Path:
    """Where preset zoos are cached: $HUBENSEMBLE_ZOO_DIR, else
    $XDG_CACHE_HOME/hubensemble/zoo (default ~/.cache/hubensemble/zoo)."""
    if os.environ.get("HUBENSEMBLE_ZOO_DIR"):
        return pathlib.Path(os.environ["HUBENSEMBLE_ZOO_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "hubensemble" / "zoo"


def zoo_dir(preset_name: str) -> pathlib.Path:
    """The cache folder of a preset's zoo; the recipe version is part of its name."""
    return zoo_root() / f"{preset_name}-r{RECIPE_VERSION}"


def ensure_zoo(preset_name: str, *, progress: bool = True) -> pathlib.Path:
    """The cached zoo of a preset, built first if it is not there (once, under a lock)."""
    if preset_name not in PRESETS:
        raise ModuleLoadError(f"unknown zoo preset {preset_name!r}; presets: "
                              f"{', '.join(PRESETS)}", handle=f"zoo:{preset_name}/")
    folder = zoo_dir(preset_name)
    if is_zoo(folder):
        return folder
    lock = folder.parent / f"{folder.name}.lock"
    # Generous timeout: another process may be building this very zoo right now.
    with file_lock(lock, timeout=3600):
        if not is_zoo(folder):
            if folder.exists():
                shutil.rmtree(folder)  # not a finished zoo: nothing in it can be trusted
            build_zoo(preset_name, folder, progress=progress)
    return folder


def module_path(preset_name: str, name: str) -> str:
    """The SavedModel folder of module ``name`` of a preset zoo (``zoo:PRESET/NAME``),
    building the zoo into the user cache on first use."""
    handle = f"zoo:{preset_name}/{name}"
    if preset_name not in PRESETS:
        raise ModuleLoadError(f"unknown zoo preset {preset_name!r}; presets: "
                              f"{', '.join(PRESETS)}", handle=handle)
    from hubensemble import glyphs

    names = [p.name for p in plan(preset(preset_name), glyphs.hierarchy())]
    if name not in names:
        raise ModuleLoadError(f"the {preset_name} zoo has no module {name!r}; it has "
                              f"{', '.join(names)}", handle=handle)
    path = ensure_zoo(preset_name) / name
    if not (path / "saved_model.pb").is_file():
        raise ModuleLoadError(f"{path} is missing from the cached zoo; delete {path.parent} "
                              "to rebuild it", handle=handle, stage="savedmodel")
    return str(path)


def cli_build(preset_name: str, out=None, seed: int | None = None, progress: bool = True,
              workers: int | None = None) -> pathlib.Path:
    """Entry point of ``hubensemble zoo build --preset P [--out DIR] [--seed S]``."""
    return build_zoo(preset_name, out, seed=seed, progress=progress, workers=workers)
