"""tfds builders the tfds tests prepare (no network, no mock data): one copy for
tests/test_data_tfds.py (the `tfds:` loader) and tests/test_vtab.py (tools/vtab.py's loader),
importable from the tests folder in-process or, with it on PYTHONPATH, in a subprocess.

tfds registers a builder by its class's name when the class is defined, so the builders are
defined once per process, here: a test prepares one with
`BuilderClass(data_dir=...).download_and_prepare()` into a folder of its own."""

import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image


def example(i, channels):
    """Example i: class i % 3 sets the brightness, the rest is seeded noise."""
    rng = np.random.default_rng(i)
    pixels = rng.integers(0, 60, (6, 6, channels)) + (i % 3) * 95
    return pixels.astype(np.uint8), i % 3


class H74Shapes(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="rgb"), tfds.core.BuilderConfig(name="grey")]

    def _info(self):
        ch = 1 if self.builder_config.name == "grey" else 3
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(6, 6, ch)),
            "label": tfds.features.ClassLabel(names=["dark", "mid", "light"]),
            "count": np.int64,
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 60), "test": self._generate_examples(60, 72)}

    def _generate_examples(self, start, stop):
        ch = 1 if self.builder_config.name == "grey" else 3
        for i in range(start, stop):
            image, label = example(i, ch)
            yield i, {"image": image, "label": label, "count": label * 5}


def photo_file(i):
    """Example i's image file as a camera or a web scrape gives it, the bytes a builder
    stores as they are (a path yielded is read so): a JPEG, a CMYK JPEG (Adobe marker), a
    PNG with partial alpha, a GIF with a transparent colour, by i % 4."""

    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:20, 0:28]
    pixels = np.stack([(np.sin(x / (3 + c) + rng.random() * 6) + 1) * 127.5 for c in range(3)],
                      -1).astype(np.uint8)
    image, options = Image.fromarray(pixels), {}
    kind = ("JPEG", "CMYK", "PNG", "GIF")[i % 4]
    if kind == "CMYK":
        image, kind = image.convert("CMYK"), "JPEG"
    elif kind == "PNG":
        alpha = np.linspace(0, 255, 28).astype(np.uint8)[None].repeat(20, 0)
        image = Image.fromarray(np.dstack([pixels, alpha]))
    elif kind == "GIF":
        image, options = image.quantize(16), {"transparency": 3}
    out = io.BytesIO()
    image.save(out, format=kind, quality=90, **options)
    return out.getvalue()


class H291Photos(tfds.core.GeneratorBasedBuilder):
    """Image files of several kinds stored as they are, in an RGB Image feature."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b", "c"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 12)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": photo_file(i), "label": i % 3}


class H140Captions(tfds.core.GeneratorBasedBuilder):
    """Images with a caption and a box: no class label at all."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(6, 6, 3)), "caption": tfds.features.Text(),
            "box": tfds.features.Tensor(shape=(4,), dtype=np.float32)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(12):
            yield i, {"image": example(i, 3)[0], "caption": f"shape {i}",
                      "box": np.zeros(4, np.float32)}


class VtabPhotos(H291Photos):
    """photo_file's image files in train (6), validation (3) and test (3) splits: a VTAB task
    of image files (caltech101, pets, flowers store their JPEGs as they are), cut small."""

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 6), "validation":
                self._generate_examples(6, 9), "test": self._generate_examples(9, 12)}


#: LargePhotos' examples above 1024 px on their shorter side: {index: (height, width)}.
LARGE = {1: (1030, 1100), 7: (1100, 1030)}


def large_file(i):
    """Example i of LargePhotos: a PNG of a smooth gradient, LARGE[i] in size (else 20 x 28)."""
    h, w = LARGE.get(i, (20, 28))
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([(x * (c + 1) + y + i * 17) % 256 for c in range(3)], -1)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


class LargePhotos(H291Photos):
    """PNG files in train (4), validation (2) and test (2) splits, two of them (LARGE) above
    1024 px on their shorter side, which the decode policy shrinks to it; 2 classes."""

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["even", "odd"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 4), "validation":
                self._generate_examples(4, 6), "test": self._generate_examples(6, 8)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": large_file(i), "label": i % 2}


class H340Toys(tfds.core.GeneratorBasedBuilder):
    """smallnorb's shape of features, cut small: two ClassLabels and no "label" feature,
    label_category (i % 3) and label_elevation ((i // 3) % 3, another class of each image);
    train 60 and test 12 examples of `example`'s pixels."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(6, 6, 3)),
            "label_category": tfds.features.ClassLabel(names=["plane", "car", "truck"]),
            "label_elevation": tfds.features.ClassLabel(names=["a", "b", "c"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 60), "test": self._generate_examples(60, 72)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": example(i, 3)[0], "label_category": i % 3,
                      "label_elevation": (i // 3) % 3}


#: OrientedPhotos' examples whose JPEG carries an EXIF orientation tag: {index: tag}.
ORIENTED = {0: 6, 3: 8, 5: 6}


def oriented_file(i):
    """Example i of OrientedPhotos: a 12 x 16 JPEG, with EXIF orientation ORIENTED[i] if any
    (what a phone writes: the pixels as the sensor read them, the tag to turn them)."""
    rng = np.random.default_rng(i)
    exif = Image.Exif()
    if i in ORIENTED:
        exif[0x0112] = ORIENTED[i]
    out = io.BytesIO()
    Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).save(
        out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


class OrientedPhotos(H291Photos):
    """JPEG files stored as they are, 3 of the 8 with an EXIF orientation tag (ORIENTED);
    train (4), validation (2) and test (2) splits, 2 classes."""

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["even", "odd"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 4), "validation":
                self._generate_examples(4, 6), "test": self._generate_examples(6, 8)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": oriented_file(i), "label": i % 2}
