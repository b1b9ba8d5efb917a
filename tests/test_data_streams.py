"""Task.dataset's stream reads a split's images a batch at a time: no copy of the split, and
the same pixels, batches and order (and so the same embeddings) as the stream that copied it."""

import io

import numpy as np
import pytest

from hubensemble.data import Split, Task, load_task

from PIL import Image  # noqa: E402

PROFILE = "quick"


def copied_stream(data, *, batch_size, image_size, shuffle, seed, repeat, cache):
    """The stream as `Task.dataset` built it up to 97592bc: the split's images copied into a
    tensor by `from_tensor_slices` (a ragged one for images of several sizes). The reference
    the stream that reads the split must equal, pixel for pixel and batch for batch."""
    import tensorflow as tf

    from hubensemble.augment import resize
    from hubensemble.data.streams import chunk_size, fixed_parallelism, passes

    def to_float(x):
        x = tf.cast(x, tf.float32) / 255.0
        return x if image_size is None else resize(x, image_size)

    labels = np.asarray(data.labels, np.int64)
    if data.same_size:
        ds = tf.data.Dataset.from_tensor_slices((data.images, labels))
        ds = passes(ds, len(data), seed, shuffle=shuffle, repeat=repeat)
        chunk = chunk_size(data.images.shape[1:], batch_size, image_size)
        ds = ds.batch(chunk, drop_remainder=repeat and chunk == batch_size)
        ds = ds.map(lambda x, y: (to_float(x), y))
        if chunk < batch_size:
            ds = ds.unbatch().batch(batch_size, drop_remainder=repeat)
        if cache and not (shuffle or repeat):
            ds = ds.cache()
        return fixed_parallelism(ds)
    flat = np.concatenate([im.reshape(-1) for im in data.images])
    shapes = np.array([im.shape for im in data.images], np.int64)
    ragged = tf.RaggedTensor.from_row_lengths(flat, shapes.prod(axis=1))
    ds = tf.data.Dataset.from_tensor_slices((ragged, shapes, labels))
    ds = ds.map(lambda r, s, y: (to_float(tf.reshape(r, s)), y))
    if cache:
        ds = ds.cache()
    ds = passes(ds, len(data), seed, shuffle=shuffle, repeat=repeat)
    return fixed_parallelism(ds.batch(batch_size, drop_remainder=repeat))


def _odd_files(root, size=None):
    """Two class folders of files of awkward kinds: an EXIF-rotated JPEG (used as stored), a
    16-bit PNG, a grey PNG, a CMYK JPEG, an RGBA PNG, a progressive JPEG, a TIFF, each at an
    odd size (all `size` when given, so that the split is one array)."""
    rng = np.random.default_rng(7)
    sizes = [(13, 7), (9, 31), (1, 1), (17, 5), (6, 11), (23, 19), (8, 8)]
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for k in range(7):
            h, w = size or sizes[(k + (c == "dog") * 3) % len(sizes)]
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            path = str(root / c / f"{k}")
            if k == 0:
                exif = Image.Exif()
                exif[0x0112] = 6
                Image.fromarray(rgb).save(path + ".jpg", quality=90, exif=exif)
            elif k == 1:
                Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)).save(
                    path + ".png")
            elif k == 2:
                Image.fromarray(rgb[..., 0]).save(path + ".png")
            elif k == 3:
                Image.fromarray(rgb).convert("CMYK").save(path + ".jpg", quality=90)
            elif k == 4:
                rgba = np.concatenate([rgb, rng.integers(0, 256, (h, w, 1), np.uint8)], -1)
                Image.fromarray(rgba).save(path + ".png")
            elif k == 5:
                Image.fromarray(rgb).save(path + ".jpg", quality=80, progressive=True)
            else:
                Image.fromarray(rgb).save(path + ".tif")
    return str(root)


@pytest.fixture(scope="module")
def odd_tasks(tmp_path_factory):
    """{"mixed": a task of the odd files at several sizes, "same": at one size}."""
    root = tmp_path_factory.mktemp("odd")
    return {kind: load_task("folder:" + _odd_files(root / kind, size), val_fraction=0.3,
                            test_fraction=0.0)
            for kind, size in (("mixed", None), ("same", (11, 14)))}


def _batches(ds, count=7):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(count)]


@pytest.mark.parametrize("kind", ["same", "mixed"])
@pytest.mark.parametrize("image_size", [None, (5, 7), (17, 12)], ids=["own", "small", "large"])
@pytest.mark.parametrize("how", [{}, {"shuffle": True, "seed": 3},
                                 {"shuffle": True, "seed": 1, "repeat": True},
                                 {"repeat": True}, {"cache": False}],
                         ids=["plain", "shuffled", "shuffled-repeated", "repeated", "uncached"])
def test_the_stream_gives_the_copied_streams_pixels_batches_and_order(
        odd_tasks, kind, image_size, how):
    task = odd_tasks[kind]
    assert task.train.same_size == (kind == "same") and task.oriented
    if kind == "mixed" and image_size is None:
        image_size = (9, 6)  # images of several sizes need one
    for split in ("train", "val"):
        args = {"batch_size": 3, "image_size": image_size, "shuffle": False, "seed": 0,
                "repeat": False, "cache": True, **how}
        got = _batches(task.dataset(split, **args))
        data = task.split(split)
        if data.same_size and args["image_size"] == tuple(data.images.shape[1:3]):
            args["image_size"] = None
        want = _batches(copied_stream(data, **args))
        assert len(got) == len(want) > 1
        for (gx, gy), (wx, wy) in zip(got, want):
            assert gx.dtype == wx.dtype == np.float32 and gy.dtype == wy.dtype == np.int64
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "mixed-sizes"])
def test_the_stream_holds_no_copy_of_the_split(rng, same_size):
    """Rank on 80 phone photos held three copies of the 48 training images at its peak
    (2.12 GB resident): each stream copied the split into a tensor (`from_tensor_slices`,
    TensorFlow copies every NumPy array) and rank keeps a stream per resolution. Now a stream
    reads each batch from the split's own array as it goes: what is in it when read."""
    sizes = [(5, 6)] * 6 if same_size else [(5, 6), (6, 5), (4, 4)] * 2
    images = [rng.integers(0, 200, s + (3,), dtype=np.uint8) for s in sizes]
    task = Task(name="t", source="test", class_names=["a", "b"],
                train=Split(images=np.stack(images) if same_size else images,
                            labels=np.arange(6) % 2))
    ds = task.dataset("train", batch_size=4, image_size=(5, 6), cache=False)
    for im in task.train.images:  # the split's own arrays, changed after the stream was made
        im[...] = 255
    xs = np.concatenate([x.numpy() for x, _ in ds])
    assert xs.shape == (6, 5, 6, 3) and np.allclose(xs, 1.0, atol=1e-5)  # 255 throughout


def test_rank_embeddings_are_those_of_the_copied_stream(odd_tasks, tiny_module):
    """The kNN's input: every image of the odd folders embedded through the stream equals,
    to the last bit, its embedding through the copied stream, at the module's resolution."""
    from hubensemble.catalogue import ModuleSpec
    from hubensemble.hub import ModuleRuntime, locate_spec
    from hubensemble.rank import embed
    from hubensemble.rank.embeddings import _forward_all

    for kind in ("same", "mixed"):
        task = odd_tasks[kind]
        spec = ModuleSpec(name="tiny", handle=tiny_module, input_size=[10, 13])
        got = embed(spec, task, profile=PROFILE, batch_size=4, use_cache=False)
        hw = got.resolution
        runtime = ModuleRuntime.from_spec(spec, files=locate_spec(spec))
        want = _forward_all(runtime, copied_stream(
            task.train, batch_size=4, image_size=hw, shuffle=False, seed=0, repeat=False,
            cache=True), hw)
        assert got.embeddings.shape == (len(task.train), 8)
        np.testing.assert_array_equal(got.embeddings, want)


def test_a_jpeg_the_loader_shrinks_streams_as_before(tmp_path):
    """A file above 1024 px on its shorter side is held shrunk (the serving decode's shrink);
    the stream resizes that held image, as before."""
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for k in range(2):
            small = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(small).resize((1400, 1030), Image.BILINEAR).save(buf, "JPEG")
            (tmp_path / c / f"{k}.jpg").write_bytes(buf.getvalue())
    task = load_task(f"folder:{tmp_path}", val_fraction=0.0, test_fraction=0.0)
    assert task.train.images.shape == (4, 1024, 1392, 3) and len(task.shrunk) == 4
    args = {"batch_size": 3, "image_size": (33, 40), "shuffle": True, "seed": 5,
            "repeat": True, "cache": True}
    got, want = _batches(task.dataset("train", **args), 3), _batches(
        copied_stream(task.train, **args), 3)
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)


def test_tunes_train_and_val_together_are_a_view_of_a_folders_images(odd_tasks, rng):
    """Retraining on train + val concatenated a folder's two splits (a copy: 0.8x its pixels
    more); they are runs of one array, so they are now one view of it, the same pixels.
    Splits that are not (made in Python) are still concatenated."""
    from hubensemble.tune.inputs import _merged

    task = odd_tasks["same"]
    merged = _merged(task, ("train", "val"))
    assert np.shares_memory(merged.train.images, task.train.images)
    assert np.shares_memory(merged.train.images, task.val.images)
    np.testing.assert_array_equal(merged.train.images,
                                  np.concatenate([task.train.images, task.val.images]))
    np.testing.assert_array_equal(merged.train.labels,
                                  np.concatenate([task.train.labels, task.val.labels]))
    apart = Task(name="t", source="test", class_names=["a", "b"],
                 train=Split(rng.integers(0, 256, (4, 3, 5, 3), dtype=np.uint8), [0, 1, 0, 1]),
                 val=Split(rng.integers(0, 256, (2, 3, 5, 3), dtype=np.uint8), [1, 0]))
    joined = _merged(apart, ("train", "val")).train.images
    assert not np.shares_memory(joined, apart.train.images)
    np.testing.assert_array_equal(joined, np.concatenate([apart.train.images,
                                                          apart.val.images]))


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "mixed-sizes"])
def test_the_stream_s_functions_are_traced_as_written(rng, same_size):
    """tf.data converts a map (and flat_map) function with autograph by default: CPU for a
    graph with the same ops (every Python ``if`` of the stream's functions tests a Python
    value), three streams per tune trial. Autograph's own log (verbosity 1) names each
    function it converts: none of the stream's."""
    import logging

    from hubensemble._tf import tensorflow as tf

    said = []

    class Said(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    sizes = [(5, 6)] * 6 if same_size else [(5, 6), (6, 5), (4, 4)] * 2
    images = [rng.integers(0, 200, s + (3,), dtype=np.uint8) for s in sizes]
    task = Task(name="t", source="test", class_names=["a", "b"],
                train=Split(images=np.stack(images) if same_size else images,
                            labels=np.arange(6) % 2))
    logger, handler = logging.getLogger("tensorflow"), Said()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    tf.autograph.set_verbosity(1)
    try:
        task.dataset("train", batch_size=4, image_size=(5, 6), shuffle=True, seed=1,
                     repeat=True, cache=False)
    finally:
        tf.autograph.set_verbosity(0)
        logger.setLevel(level)
        logger.removeHandler(handler)
    assert not [m for m in said if "Converted call" in m]
