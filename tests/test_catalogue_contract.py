"""The contract every shipped catalogue entry keeps: one test, parametrised over all entries."""

import collections
import re

import numpy as np
import pytest

from hubensemble.catalogue import (
    FAMILIES, INPUT_DTYPES, NAME_RE, VALUE_RANGES, handle_kind, kaggle_url, load_catalogue,
    load_catalogues, shipped_catalogues)
from hubensemble.errors import CatalogueError
from hubensemble.handles import KERAS_APPLICATIONS

# Feature size per architecture, from the tfhub.dev model docs ("Features with shape
# [batch_size, D]" / "num_features = D"). A shipped entry whose architecture is not listed here
# fails until its size is added, so every real handle's output_dim is checked by a second source.
ARCH_DIMS = {
    "resnet50x1": 2048, "resnet101x1": 2048,      # BiT R50x1 / R101x1
    "resnet50x3": 6144, "resnet101x3": 6144,      # BiT, 3x wider
    "resnet152x4": 8192,                          # BiT, 4x wider
    "efficientnet_v2_b0": 1280, "efficientnet_v2_s": 1280,
    "mobilenet_v3_large_100": 1280, "mobilenet_v2_100": 1280,
    "resnet_v1_50": 2048, "resnet_v2_50": 2048,
    "inception_v3": 2048, "inception_resnet_v2": 1536,
}

# The 48 BiT-M R50x1 ImageNet-21k experts (DESIGN.md, "Real handles").
EXPERT_SUBTREES = """
    abstraction angiosperm animal arthropod artifact bird carnivore chordate clothing commodity
    consumer_goods container conveyance covering device entity equipment flower food foodstuff
    herb implement instrument instrumentality invertebrate living_thing mammal matter
    natural_object nutrient nutriment object organism part physical_entity placental plant
    relation solid spermatophyte structure substance tree vascular_plant vehicle vertebrate whole
    woody_plant""".split()

TFHUB_RE = re.compile(r"https://tfhub\.dev/[a-z0-9_-]+(/[A-Za-z0-9_.-]+)+/[0-9]+")


def _load_shipped():
    try:
        return load_catalogues(shipped_catalogues()), None
    except CatalogueError as e:
        return [], e


ENTRIES, LOAD_ERROR = _load_shipped()


def test_shipped_catalogues_load_without_problems():
    assert len(shipped_catalogues()) >= 3
    if LOAD_ERROR is not None:
        raise LOAD_ERROR
    assert ENTRIES


@pytest.mark.parametrize("spec", ENTRIES, ids=[s.name for s in ENTRIES])
def test_entry_contract(spec):
    assert NAME_RE.fullmatch(spec.name)
    kind = handle_kind(spec.handle)
    # Real catalogues point at tfhub.dev, Kaggle Models or keras.applications; only the offline
    # demo zoo's catalogue uses zoo: handles (built locally, resolved by hubensemble.zoo).
    assert kind in ("tfhub", "kaggle", "zoo", "keras"), spec.handle
    if kind == "keras":
        # keras:NAME: checked against the table and, below, against Keras itself.
        app = KERAS_APPLICATIONS[spec.handle[len("keras:"):]]
        assert spec.architecture == spec.handle[len("keras:"):]
        assert spec.output_dim == app.output_dim and spec.params == app.params
        assert spec.input_size == (app.input_size, app.input_size)
        assert spec.value_range == "0,1" and spec.weights in (None, "imagenet")
        assert not spec.trust and spec.license
        return
    if kind == "tfhub":
        assert TFHUB_RE.fullmatch(spec.handle), spec.handle
    elif kind == "kaggle":
        assert kaggle_url(spec.handle).startswith("https://www.kaggle.com/models/")
    if kind != "zoo":
        assert not spec.trust, "downloaded modules are never trusted to touch files"
        assert spec.architecture in ARCH_DIMS, (
            f"architecture {spec.architecture!r} is not in ARCH_DIMS; add its feature size")
    if spec.architecture in ARCH_DIMS:
        assert spec.output_dim == ARCH_DIMS[spec.architecture]
    else:
        assert spec.output_dim is None or spec.output_dim > 0
    assert spec.value_range in VALUE_RANGES
    # What the module runtime can feed; uint8 images only in [0, 255] (or the default range).
    assert spec.input_dtype in (None,) + INPUT_DTYPES
    if spec.input_dtype == "uint8":
        assert spec.value_range in ("0,1", "0,255")
    assert spec.family in FAMILIES
    if spec.input_size is not None:
        assert len(spec.input_size) == 2 and min(spec.input_size) > 0
    if spec.family == "expert":
        assert spec.subtree
        if "/experts/" in spec.handle:
            # The subtree is the handle's path segment: .../in21k/<subtree>/<version>
            assert spec.handle.split("/")[-2] == spec.subtree
    assert spec.license
    assert spec.source.split(":")[-1].isdigit()


def test_all_48_experts_are_present_exactly_once():
    path = next(p for p in shipped_catalogues() if p.name == "bit_in21k_experts.yaml")
    experts = load_catalogue(path)
    assert len(EXPERT_SUBTREES) == len(set(EXPERT_SUBTREES)) == 48
    assert collections.Counter(s.subtree for s in experts) == collections.Counter(EXPERT_SUBTREES)
    assert sorted(s.handle for s in experts) == sorted(
        f"https://tfhub.dev/google/experts/bit/r50x1/in21k/{n}/1" for n in EXPERT_SUBTREES)
    assert {(s.family, s.architecture, s.upstream, s.output_dim) for s in experts} == {
        ("expert", "resnet50x1", "imagenet21k", 2048)}


def test_all_ten_bit_generalists_are_present():
    path = next(p for p in shipped_catalogues() if p.name == "bit_generalists.yaml")
    by_handle = {s.handle: s for s in load_catalogue(path)}
    expected = {f"https://tfhub.dev/google/bit/{up}-{arch}/1": (upstream, dim)
                for up, upstream in (("s", "imagenet1k"), ("m", "imagenet21k"))
                for arch, dim in (("r50x1", 2048), ("r101x1", 2048), ("r50x3", 6144),
                                  ("r101x3", 6144), ("r152x4", 8192))}
    assert {h: (s.upstream, s.output_dim) for h, s in by_handle.items()} == expected
    assert {s.family for s in by_handle.values()} == {"generalist"}
    assert {s.input_size for s in by_handle.values()} == {None}  # BiT takes any size


# --- keras.applications: every entry built (weights=None, the smallest input Keras allows) ----

KERAS_ENTRIES = [s for s in ENTRIES if handle_kind(s.handle) == "keras"]

# What each preprocess_input does to pixels p in [0, 255] (Keras' imagenet_utils modes).
_MEAN_BGR = np.array([103.939, 116.779, 123.68])
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
PREPROCESSING = {
    "tf": lambda p: p / 127.5 - 1.0,
    "caffe": lambda p: p[..., ::-1] - _MEAN_BGR,
    "torch": lambda p: (p / 255.0 - _MEAN) / _STD,
    "inside": lambda p: p,
}


def test_the_keras_catalogue_has_at_least_12_applications():
    assert len(KERAS_ENTRIES) >= 12
    assert len({s.architecture for s in KERAS_ENTRIES}) == len(KERAS_ENTRIES)


@pytest.mark.parametrize("spec", KERAS_ENTRIES, ids=[s.name for s in KERAS_ENTRIES])
def test_keras_application_entry_builds_with_its_dims_and_preprocessing(spec):
    from hubensemble.hub.sources import build_application

    name = spec.architecture
    app = KERAS_APPLICATIONS[name]
    size = app.min_size  # the smallest input Keras builds it at: one fast build each
    model = build_application(name, None, (size, size))
    base = model.layers[-1]
    assert model.output.shape[-1] == spec.output_dim
    assert base.count_params() == spec.params
    # The model's first step is the application's own preprocessing of 255 x (checked
    # against the formula of its mode, not against Keras' function itself).
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype(np.float32)
    pre = model.get_layer("preprocess")(x)
    np.testing.assert_allclose(np.asarray(pre), PREPROCESSING[app.preprocessing](
        255.0 * x.astype(np.float64)), rtol=1e-4, atol=1e-3)
