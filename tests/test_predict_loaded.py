"""predict in a loop: the export loaded once while it is unchanged, loaded again when it
changes (`hubensemble.predictloaded`), with real exports of the tiny module."""

import os
import shutil

import numpy as np
import pytest

from hubensemble import formats, prediction, predictloaded
from hubensemble.prediction import predict

CLASSES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def two_exports(tiny_module, tmp_path_factory):
    """Two exports of the tiny module, one member each at 12 px, of the same classes and
    graph, heads of other random values: their variables files have the same sizes."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.export import ExportMember, save_export
    from hubensemble.tune import build_classifier
    from hubensemble.tune.model import set_head

    spec = ModuleSpec(name="tiny", handle=tiny_module)
    root = tmp_path_factory.mktemp("loaded")
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        model = build_classifier(spec, len(CLASSES), name="classifier_0")
        set_head(model, rng.normal(scale=3, size=(8, 3)), rng.normal(size=3))
        folder = root / f"export{seed}"
        save_export([ExportMember(model, 12, 1.0, {"trial": "t0", "module": "tiny"})],
                    CLASSES, folder, check_images=images)
        out.append(folder)
    return out


@pytest.fixture
def image_files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    for i in range(5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def loads_of(module):
    """A `loads` fixture: the folders `module`'s load (its `load_saved_model`, i.e.
    `formats.load_saved_model`, run for real) was called on, with nothing kept from an
    earlier test (`predictloaded.forget`). For predict here and evaluate's test alike."""
    @pytest.fixture
    def loads(monkeypatch):
        called = []

        def load(model_dir):
            called.append(os.fspath(model_dir))
            return formats.load_saved_model(model_dir)

        predictloaded.forget()
        monkeypatch.setattr(module, "load_saved_model", load)
        yield called
        predictloaded.forget()

    return loads


loads = loads_of(prediction)


def probabilities(results):
    return [[t["probability"] for t in sorted(r["top"], key=lambda t: t["class_id"])]
            for r in results]


def test_an_unchanged_export_is_loaded_once_and_a_changed_one_again(
        two_exports, image_files, tmp_path, loads):
    """hubensemble.predict called in a loop loaded the export at each call (~1.6 s of CPU
    for 32 files of a two-member export, 45 times the serve_bytes calls: bench_predict.py).
    It is loaded once while it is unchanged; replaced whole (as a re-export does) or with
    its variables copied over in place (same sizes, mtime kept), it is loaded again and its
    new predictions given, never the old model's."""
    first, second = two_exports
    model = tmp_path / "model"
    shutil.copytree(first, model)
    own = [predict(e, image_files, top=3, progress=False) for e in (first, second)]
    assert probabilities(own[0]) != probabilities(own[1])  # the test can tell them apart
    del loads[:]
    got = predict(model, image_files, top=3, progress=False)
    again = predict(model, image_files, top=3, progress=False)
    assert probabilities(got) == probabilities(again) == probabilities(own[0])
    assert again == got and loads == [str(model)], loads
    # Replaced whole, as export's fileio.replace_dir does: the other model's predictions.
    shutil.rmtree(model)
    shutil.copytree(second, model)
    assert probabilities(predict(model, image_files, top=3, progress=False)) == \
        probabilities(own[1])
    assert loads == [str(model)] * 2, loads
    # The first export's variables copied over in place (its metadata left as it was).
    for name in os.listdir(first / "variables"):
        shutil.copy2(first / "variables" / name, model / "variables" / name)
    assert probabilities(predict(model, image_files, top=3, progress=False)) == \
        probabilities(own[0])
    assert loads == [str(model)] * 3, loads
    # Another export in between, then the same again: loaded again (one export is kept).
    predict(second, image_files[:1], progress=False)
    predict(model, image_files[:1], progress=False)
    assert loads == [str(model)] * 3 + [str(second), str(model)], loads
