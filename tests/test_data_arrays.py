"""Tests for hubensemble.data on arrays and options: 8-bit values in uint16, bytes class names,
the data options' rules in load_task, channels-first and float-bound messages, and label
conflicts that --dedupe drops (each a kind of fault, checked wherever it can occur)."""

import io
import os
import re

import numpy as np
import pytest

from hubensemble.data import Split, Task, load_task, load_test_set, to_rgb_uint8
from hubensemble.data.decode import decode_image_bytes
from hubensemble.data.validate import text_names, validate_task
from hubensemble.dataargs import DataArgs
from hubensemble.errors import DataError

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

RNG = np.random.default_rng(46)
EIGHT_BIT = RNG.integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)  # 3 classes x 4 images
LABELS = np.repeat([0, 1, 2], 4)


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


# --------------------------------------------------------------------------- 8-bit in uint16


def test_uint16_arrays_of_8bit_values_are_refused_not_blacked_out():
    """8-bit data in a uint16 array became all black (v >> 8 is 0 for every value <= 255)."""
    wide = EIGHT_BIT.astype(np.uint16)
    with pytest.raises(DataError) as e:
        to_rgb_uint8(wide, what="my images")
    text = str(e.value)
    assert text.startswith("my images: uint16 pixels that all lie in 0..255 (max 255) look "
                           "like 8-bit data") and "x.astype(np.uint8)" in text
    # True 16-bit data keeps its top 8 bits, as before; all-zero pixels are black either way.
    deep = EIGHT_BIT.astype(np.uint16) * 257
    assert np.array_equal(to_rgb_uint8(deep), EIGHT_BIT)
    assert not to_rgb_uint8(np.zeros((2, 2, 1), np.uint16)).any()
    # Samples known to be 16-bit (a file, a data set looked at whole) are not looked at.
    dark = np.full((2, 2, 1), 200, np.uint16)
    assert not to_rgb_uint8(dark, known_16bit=True).any()
    # Other integer types have no top-byte rule: 0..255 in int64 is 8-bit, as before.
    assert np.array_equal(to_rgb_uint8(EIGHT_BIT.astype(np.int64)), EIGHT_BIT)


def test_npz_decides_16_bit_for_the_archive_as_a_whole(tmp_path):
    spec = save_npz(tmp_path / "wide.npz", x_train=EIGHT_BIT.astype(np.uint16), y_train=LABELS)
    with pytest.raises(DataError, match=r"x_train: uint16 pixels that all lie in 0\.\.255.*"
                                        r"store x_train\.astype\(np\.uint8\)"):
        load_task(spec, val_fraction=0.0)
    # A 16-bit archive with a dark image in x_val is 16-bit throughout: that one reads black.
    deep = EIGHT_BIT.astype(np.uint16) * 257
    spec = save_npz(tmp_path / "deep.npz", x_train=deep, y_train=LABELS,
                    x_val=np.concatenate([np.full((1, 4, 4, 3), 200, np.uint16), deep[4:6]]),
                    y_val=[0, 1, 1])
    task = load_task(spec)
    assert np.array_equal(task.train.images, EIGHT_BIT) and not task.val.images[0].any()
    assert np.array_equal(task.val.images[1:], EIGHT_BIT[4:6])


@pytest.mark.parametrize("eight", ["x_test", "x_train"])
def test_a_split_of_8bit_values_beside_16bit_ones_is_refused(tmp_path, eight):
    """A new-user check: x_train and x_val true 16-bit (uint8 * 257), x_test uint8 stored as
    uint16: the archive's 16-bit rule made every test image black (accuracy at chance, said
    only as 59 duplicates with different labels); 8-bit x_train beside 16-bit x_val and
    x_test failed rank. Refused, naming the split, both ranges and the fix."""
    arrays = {f"x_{s}": EIGHT_BIT.astype(np.uint16) * 257 for s in ("train", "val", "test")}
    arrays[eight] = EIGHT_BIT.astype(np.uint16)
    spec = save_npz(tmp_path / "mixed.npz", **arrays,
                    **{f"y_{s}": LABELS for s in ("train", "val", "test")})
    low, high = int(EIGHT_BIT.min()), int(EIGHT_BIT.max())
    others = [k for k in arrays if k != eight]
    with pytest.raises(DataError) as e:
        load_task(spec)
    text = str(e.value)
    assert text.startswith(
        f"npz:{tmp_path / 'mixed.npz'}: the uint16 pixels of {eight} ({low}..{high}) lie in "
        f"0..255, those of {others[0]} ({low * 257}..{high * 257}) and {others[1]} "), text
    assert f"every image of {eight} black; store {eight} as 16-bit like the rest " \
           f"({eight}.astype(np.uint16) * 257), or every split as 8-bit" in text
    # Stored as the message says, it loads: the same pixels in every split.
    arrays[eight] = arrays[eight] * 257
    task = load_task(save_npz(tmp_path / "fixed.npz", **arrays,
                              **{f"y_{s}": LABELS for s in ("train", "val", "test")}))
    assert all(np.array_equal(getattr(task, s).images, EIGHT_BIT) for s in ("train", "test"))


def test_files_keep_the_16_bit_rule_whatever_their_values(tmp_path):
    """A 16-bit file is 16-bit by its header: a dark one (values above 255) reads by its top
    8 bits, an all-0 one black; one of 8-bit values (all in 1..255), which the rule reads
    black, is skipped with why (data/filepixels.py; it was read black without a word)."""
    import tensorflow as tf

    from hubensemble.data.decode import UnreadableImage

    for value, kept in ((200, False), (300, True), (0, True)):
        dark = np.full((3, 5), value, np.uint16)
        buf = io.BytesIO()
        Image.fromarray(dark).save(buf, format="TIFF")  # the kept decoder (Pillow)
        png = tf.io.encode_png(dark[..., None]).numpy()  # the graph decoder
        for data in (buf.getvalue(), png):
            if kept:
                assert (decode_image_bytes(data) == value >> 8).all()
            else:
                with pytest.raises(UnreadableImage, match="whose values all lie in 0..2"):
                    decode_image_bytes(data)


def _tfds_images(images_by_split):
    """An `as_dataset` for tfds.testing.mock_data giving these images, labels 0, 1, 0, 1..."""
    import tensorflow as tf

    def as_dataset(self, split, *args, **kwargs):
        images = images_by_split[str(split)]
        return tf.data.Dataset.from_tensor_slices({
            "image": images, "label": np.arange(len(images), dtype=np.int64) % 2})
    return as_dataset


def test_tfds_decides_16_bit_for_the_data_set_as_a_whole():
    tfds = pytest.importorskip("tensorflow_datasets")
    splits = {"train": "train[:8]", "val": None, "test": None}
    eight = {"train[:8]": RNG.integers(0, 256, (8, 4, 4, 1)).astype(np.uint16)}
    with tfds.testing.mock_data(as_dataset_fn=_tfds_images(eight)):
        with pytest.raises(DataError, match=r"tfds:mnist 'image': uint16 pixels that all lie "
                                            r"in 0\.\.255.*uint8 'image' feature"):
            load_task("tfds:mnist", splits=splits)
    # One dark image in a 16-bit data set is 16-bit: it reads black, the others their top byte.
    deep = RNG.integers(256, 65536, (8, 4, 4, 1)).astype(np.uint16)
    deep[0] = 200
    with tfds.testing.mock_data(as_dataset_fn=_tfds_images({"train[:8]": deep})):
        task = load_task("tfds:mnist", splits=splits, min_per_class=0)  # 2 of 10 classes
    assert not task.train.images[0].any()
    assert np.array_equal(task.train.images[1:, ..., 0], (deep[1:, ..., 0] >> 8))
    # A split of 8-bit values beside 16-bit ones would read black: refused, naming it.
    mixed = {"train[:8]": deep, "test[:4]": RNG.integers(1, 256, (4, 4, 4, 1)).astype(np.uint16)}
    with tfds.testing.mock_data(as_dataset_fn=_tfds_images(mixed)):
        with pytest.raises(DataError, match=r"the uint16 pixels of the test split \(test\[:4\]\) "
                                            r"\(\d+\.\.\d+\) lie in 0\.\.255.*every image of "
                                            r"the test split .* black; build every split"):
            load_task("tfds:mnist", splits={**splits, "test": "test[:4]"}, min_per_class=0)


# --------------------------------------------------------------------------- class names


def test_bytes_class_names_are_decoded_as_utf8_everywhere(tmp_path):
    # numpy dtype 'S', as h5py and TensorFlow write strings; UTF-8 bytes for "café".
    names = np.char.encode(np.array(["general caution", "stop", "café"]), "utf-8")
    assert names.dtype.kind == "S"
    task = load_task(save_npz(tmp_path / "b.npz", x_train=EIGHT_BIT, y_train=LABELS,
                              class_names=names), val_fraction=0.0)
    assert task.class_names == ["general caution", "stop", "café"]
    bad = np.array([b"ok", b"\xff\xfe", b"fine"])
    with pytest.raises(DataError, match=r"class_names\[1\] is b'\\xff\\xfe', bytes that are "
                                        r"not UTF-8"):
        load_task(save_npz(tmp_path / "bad.npz", x_train=EIGHT_BIT, y_train=LABELS,
                           class_names=bad), val_fraction=0.0)
    # label_fn's class names (what tfds and the VTAB runner use) are decoded the same way.
    task = load_task(save_npz(tmp_path / "n.npz", x_train=EIGHT_BIT, y_train=LABELS),
                     val_fraction=0.0,
                     label_fn=lambda y: (np.minimum(y, 1), np.array([b"low", b"high"])))
    assert task.class_names == ["low", "high"]
    mixed = [b"a", np.bytes_(b"b"), "c", np.str_("d"), 3]
    assert text_names(mixed) == ["a", "b", "c", "d", "3"]
    # A Task made in Python with bytes names is refused with the fix, not shown as "b'a'".
    made = Task(name="t", source="test", class_names=[b"a", b"b", b"c"],
                train=Split(EIGHT_BIT, LABELS))
    with pytest.raises(DataError, match=r"class name 0 of 't' is bytes \(b'a'\).*decode"):
        validate_task(made)


#: How a format character's refusal goes on.
SHOWS = (r", which shows as nothing \(or reorders the text beside it\): two names could look "
         r"the same")


@pytest.mark.parametrize("name, why", [
    ("", "is empty"), ("   ", "is only whitespace"), (" a", "starts or ends with whitespace"),
    ("a\nb", r"holds a control character \('\\n', U\+000A\)"),
    ("a\tb", r"holds a control character \('\\t', U\+0009\)"),
    # Format characters (Unicode Cf): 'cat\u200b' beside 'cat' looked the same everywhere.
    ("cat\u200b", r"holds an invisible format character \(\\u200b, U\+200B, ZERO WIDTH "
                  r"SPACE\)" + SHOWS),
    ("\u202edog", r"holds an invisible format character \(\\u202e, U\+202E, RIGHT-TO-LEFT "
                  r"OVERRIDE\)" + SHOWS),
    ("cat\ufeff", r"holds an invisible format character \(\\ufeff, U\+FEFF, ZERO WIDTH "
                  r"NO-BREAK SPACE\)" + SHOWS),
    ("c\u2060at", r"holds an invisible format character \(\\u2060, U\+2060, WORD "
                  r"JOINER\)" + SHOWS),
    ("ca\u200dt", r"holds an invisible format character \(\\u200d, U\+200D, ZERO WIDTH "
                  r"JOINER\)" + SHOWS),
    # Default-ignorable characters outside Cf: 'cat\ufe0f' passed beside 'cat'.
    ("cat\ufe0f", r"holds an invisible character \(\\ufe0f, U\+FE0F, VARIATION "
                  r"SELECTOR-16\)" + SHOWS),
    ("a\u034fb", r"holds an invisible character \(\\u034f, U\+034F, COMBINING GRAPHEME "
                 r"JOINER\)" + SHOWS)])
def test_a_class_name_that_shows_nothing_or_breaks_a_line_is_refused_from_every_source(
        tmp_path, name, why):
    """A new-user check: class_names ['', 'x', 'y'] fitted, the summary printed "3 classes
    (, x, y)" and predict a blank label; '   ', ' a' beside 'a ' and 'a\\nb' were accepted
    (the summary printed the newline). One rule for npz, tfds and label_fn names, folder
    names and a Task made in Python, each refusal naming the index (or the folder)."""
    from hubensemble.text import escaped, hidden_at

    def seen(refusal):  # every character the refusal is about shown as an escape: the
        text = str(refusal.value)  # folder 'cat\ufe0f' was named raw, as npz's repr
        assert not any(hidden_at(text, i) for i in range(len(text))), text

    names = np.array([name, "x", "y"])
    spec = save_npz(tmp_path / "n.npz", x_train=EIGHT_BIT, y_train=LABELS, class_names=names)
    for load in (load_task, load_test_set):
        with pytest.raises(DataError, match=rf"n\.npz: class_names\[0\] "
                                            rf"{re.escape(escaped(repr(name)))} "
                                            rf"{why}; a class name is the label") as e:
            load(spec)
        seen(e)
    with pytest.raises(DataError, match=rf"label_fn's class names\[1\] .* {why}"):
        load_task(save_npz(tmp_path / "i.npz", x_train=EIGHT_BIT, y_train=LABELS),
                  val_fraction=0.0, label_fn=lambda y: (y, ["x", name, "y"]))
    with pytest.raises(DataError, match=rf"task 't': class_names\[2\] .* {why}"):
        Task(name="t", source="test", class_names=["x", "y", name],
             train=Split(EIGHT_BIT, LABELS))
    made = Task(name="t", source="test", class_names=["x", "y", "z"],
                train=Split(EIGHT_BIT, LABELS))
    made.class_names = ["x", name, "z"]  # set after the Task was made
    with pytest.raises(DataError, match=rf"class_names\[1\] .* {why}"):
        validate_task(made)
    if name:  # a folder cannot be named ""
        for i, c in enumerate(("x", name)):
            write_png(str(tmp_path / "f" / c / "0.png"), EIGHT_BIT[i])
            write_png(str(tmp_path / "f" / c / "1.png"), EIGHT_BIT[i + 4])
        # The folder named with the character escaped: printed raw, an ESC or a newline
        # reached the terminal as it is, where npz's and a Task's used repr.
        with pytest.raises(DataError, match=rf"class folder .*/f/{re.escape(escaped(name))}/ "
                                            rf"has a name that {why}; .*rename the folder") as e:
            load_task(f"folder:{tmp_path / 'f'}")
        seen(e)


def test_a_joiner_that_shapes_a_name_is_kept_and_a_lone_surrogate_refused(tmp_path):
    """The format-character rule keeps a zero-width non-joiner or joiner between two letters
    or symbols outside ASCII (Persian's ZWNJ, an emoji ZWJ sequence: they change what is
    shown), and refuses a lone surrogate (no UTF-8 text holds it; the export's labels are
    UTF-8)."""
    for name in ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f468\u200d\U0001f469",
                 "\u2764\ufe0f", "#\ufe0f\u20e3"):  # a variation selector that selects
        spec = save_npz(tmp_path / "j.npz", x_train=EIGHT_BIT, y_train=LABELS,
                        class_names=np.array([name, "x", "y"]))
        assert load_task(spec).class_names[0] == name
        for i, c in enumerate(("x", name)):
            write_png(str(tmp_path / "f" / c / "0.png"), EIGHT_BIT[i])
            write_png(str(tmp_path / "f" / c / "1.png"), EIGHT_BIT[i + 4])
        assert name in load_task(f"folder:{tmp_path / 'f'}").class_names
    with pytest.raises(DataError, match=r"class_names\[1\] 'x\\udce9' holds a lone surrogate"):
        Task(name="t", source="test", class_names=["a", "x\udce9", "b"],
             train=Split(EIGHT_BIT, LABELS))


def test_arrays_whose_values_mean_no_image_are_refused_from_npz_and_python(tmp_path):
    """A new-user check: a uint8 (or int64) array of 0/1 masks was read as pixels 0 and 1 of
    255, near black, and an RGBA array whose 4th channel is 0 padding (RGBX) composited to
    all white, both without a word, in an npz and from Python alike; timedelta64 was taken as
    integers; int8 pixels with negatives were told "store uint8", which a cast does not do.
    A bool mask is 0 / 255, as floats 0.0 / 1.0 are, from every source."""
    y = np.concatenate([LABELS] * 2)
    mask = np.concatenate([EIGHT_BIT] * 2) > 127
    rgb = np.concatenate([EIGHT_BIT] * 2)
    zero = np.zeros(rgb.shape[:-1] + (1,), np.uint8)
    refused = {
        "u8mask": (mask[..., 0].astype(np.uint8),
                   r"integer pixels that all lie in 0\.\.1 look like a 0/1 mask.*store "
                   r"{x}\.astype\(bool\)"),
        "i64mask": (mask.astype(np.int64), r"integer pixels that all lie in 0\.\.1"),
        "u8rgbmask": (mask.astype(np.uint8), r"integer pixels that all lie in 0\.\.1"),
        "rgbx": (np.concatenate([rgb, zero], -1),
                 r"the alpha channel \(the last of 4\) is at most 1 of 255 in every pixel, so "
                 r"every image, composited onto white, reads white.*store {x}\[\.\.\., :3\]"),
        "alpha01": (np.concatenate([rgb, zero + 1], -1), r"alpha channel \(the last of 4\)"),
        "greyalpha0": (np.concatenate([rgb[..., :1], zero], -1),
                       r"alpha channel \(the last of 2\).*store {x}\[\.\.\., :1\]"),
        "floatalpha0": (np.concatenate([rgb / 255, zero * 0.0], -1), r"alpha channel"),
        "timedelta": (rgb.astype("timedelta64[s]"), r"pixels of dtype timedelta64\[s\] are not "
                                                    r"supported"),
        "int8": ((rgb.astype(np.int16) - 128).astype(np.int8),
                 r"got -\d+\.\.\d+\); as int8: uint8 pixels read as signed are "
                 r"x\.view\(np\.uint8\); pixels centred on 0"),
        "wide": (rgb.astype(np.int32) * 200, r"they look like 16-bit values: store "
                                             r"x\.astype\(np\.uint16\)")}
    for name, (x, words) in refused.items():
        spec = save_npz(tmp_path / f"{name}.npz", x_train=x, y_train=y)
        with pytest.raises(DataError,
                           match=r"\.npz: array 'x_train': .*" + words.format(x="x_train")):
            load_task(spec)
        if name == "u8rgbmask":  # the form a Split holds, every loader's: taken as pixels
            assert Split(x, y).images.max() == 1
            continue
        with pytest.raises(DataError, match=r"Split images: .*" + words.format(x="x")):
            Split(x, y)
        with pytest.raises(DataError, match=r"Split images: .*" + words.format(x="im")):
            Split(list(x), y)
    # timedelta64 labels (integers to numpy) were taken as class indices too.
    spec = save_npz(tmp_path / "tdlabels.npz", x_train=rgb, y_train=y.astype("m8[s]"))
    with pytest.raises(DataError, match=r"array 'y_train' has dtype timedelta64\[s\]; labels "
                                        r"must be integers"):
        load_task(spec)
    with pytest.raises(DataError, match=r"Split labels have dtype timedelta64\[s\]"):
        Split(rgb, y.astype("m8[s]"))
    # A bool mask is black and white, the pixels of floats 0.0 / 1.0 and of uint8 0 / 255.
    white = mask.astype(np.uint8) * 255
    want = np.repeat(white, 1, axis=-1)
    spec = save_npz(tmp_path / "bool.npz", x_train=mask, y_train=y)
    assert np.array_equal(load_task(spec, val_fraction=0.0).train.images, want)
    for x in (mask, mask.astype(np.float32), white):
        assert np.array_equal(Split(x, y).images, want)
    # Grey + alpha is read as a grey + alpha PNG is, in an npz (it was refused there) as
    # from Python; an alpha that is partly 0 is kept (transparent pixels read white).
    alpha = RNG.integers(0, 256, rgb.shape[:-1] + (1,), dtype=np.uint8)
    alpha[:, 0] = 0
    grey = np.concatenate([rgb[..., :1], alpha], -1)
    spec = save_npz(tmp_path / "la.npz", x_train=grey, y_train=y)
    got = load_task(spec, val_fraction=0.0).train.images
    buf = io.BytesIO()
    Image.fromarray(grey[0], "LA").save(buf, format="PNG")
    assert np.array_equal(got[0], decode_image_bytes(buf.getvalue()))
    assert np.array_equal(got, Split(grey, y).images) and (got[:, 0] == 255).all()


# --------------------------------------------------------------------------- damaged npz


def test_damaged_or_foreign_npz_archives_are_one_clear_error(tmp_path):
    """A new-user check: a truncated archive, a damaged member and a zip of other files were
    tracebacks (zipfile.BadZipFile, AttributeError: 'bytes' object has no attribute 'dtype')
    in load_task and in evaluate's load_test_set alike."""
    import zipfile

    good = tmp_path / "good.npz"
    np.savez_compressed(good, x_train=EIGHT_BIT, y_train=LABELS)
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    damaged = bytearray(data)
    damaged[60:90] = bytes(30)  # inside x_train.npy's compressed bytes: zlib fails
    (tmp_path / "zlib.npz").write_bytes(bytes(damaged))
    np.savez(tmp_path / "plain.npz", x_train=EIGHT_BIT, y_train=LABELS)
    damaged = bytearray((tmp_path / "plain.npz").read_bytes())
    damaged[200:230] = bytes(30)  # inside x_train.npy's stored pixels: its CRC fails
    (tmp_path / "crc.npz").write_bytes(bytes(damaged))
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as z:
        z.writestr("x_train.npy", "a text file")
        z.writestr("y_train.npy", "another")
    np.savez(tmp_path / "obj.npz", x_train=EIGHT_BIT, y_train=LABELS,
             class_names=np.array(["a", "b", "c"], dtype=object))
    cases = {"cut": r"cut\.npz cannot be read, it is truncated or damaged \(BadZipFile",
             "zlib": r"zlib\.npz cannot be read, .*\(error: Error -3 while decompressing",
             "crc": r"crc\.npz cannot be read, .*Bad CRC-32 for file 'x_train\.npy'",
             "zip": r"zip\.npz: member 'x_train' of the archive is not a numpy array",
             "obj": r"obj\.npz: class_names is a Python object array .*never unpickled; "
                    r"store the names as np\.array\(names\)"}
    for name, words in cases.items():
        for load in (load_task, load_test_set):
            with pytest.raises(DataError, match=words):
                load(f"npz:{tmp_path / name}.npz")


def test_one_colour_image_without_its_batch_axis_says_so(tmp_path):
    """A held-out test set of one image stored as [H, W, 3] was read as H grey images,
    and the count mismatch did not say why."""
    spec = save_npz(tmp_path / "one.npz", x_test=EIGHT_BIT[0].repeat(2, 0), y_test=[1])
    with pytest.raises(DataError, match=r"x_test has 8 images but y_test has 1 label; .*x_test "
                                        r"of shape \[8, 4, 3\] is read as 8 grey images of "
                                        r"4x3: for one colour image store x_test\[None\]"):
        load_test_set(spec)


def test_every_npz_member_is_read_or_refused_by_name(tmp_path):
    """A new-user check: members the loader did not know were ignored without a word: an
    x_validation / y_validation pair was dropped for a val split carved off train (90 / 30
    became 72 / 18), label_names left the classes "0", "1", "2", and a member `meta` went
    unsaid. Val is read under the folder loader's aliases (validation, valid); any other
    member is refused, named, with the member meant when one is close."""
    x, y = np.concatenate([EIGHT_BIT] * 2), np.concatenate([LABELS] * 2)
    names = np.array(["cat", "dog", "eel"])
    for alias in ("validation", "valid"):
        spec = save_npz(tmp_path / f"{alias}.npz", x_train=x, y_train=y, class_names=names,
                        **{f"x_{alias}": EIGHT_BIT[:6], f"y_{alias}": LABELS[:6]})
        task = load_task(spec)
        assert (len(task.train), len(task.val)) == (24, 6)  # nothing carved off train
        assert np.array_equal(task.val.images, EIGHT_BIT[:6])
        assert f"x_{alias} (as x_val)" in task.source and "split off" not in task.source
        # It is a val split the data brings: a val fraction would not be used.
        with pytest.raises(DataError, match=rf"own val split \(x_{alias}\)"):
            load_task(spec, val_fraction=0.3)
    spec = save_npz(tmp_path / "label.npz", x_train=x, y_train=y, label_names=names)
    for load in (load_task, load_test_set):
        with pytest.raises(DataError, match=r"label\.npz holds 'label_names' \(did you mean "
                                            r"'class_names'\?\), which hubensemble does not "
                                            r"read.*a\['class_names'\] = "
                                            r"a\.pop\('label_names'\)"):
            load(spec)
    spec = save_npz(tmp_path / "meta.npz", x_train=x, y_train=y, meta=np.arange(3),
                    x_dev=EIGHT_BIT[:3], y_dev=LABELS[:3])
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert ("holds 'meta', 'x_dev' (did you mean 'x_val'?), 'y_dev' (did you mean 'y_val'?)"
            in str(e.value))
    spec = save_npz(tmp_path / "two.npz", x_train=x, y_train=y, x_val=EIGHT_BIT[:3],
                    y_val=LABELS[:3], x_valid=EIGHT_BIT[:3], y_valid=LABELS[:3])
    with pytest.raises(DataError, match=r"holds 'x_val' and 'x_valid', one split under two"):
        load_task(spec)


def test_a_member_name_an_archive_made_elsewhere_uses_gets_the_member_meant(tmp_path):
    """A new-user check: an archive of X_train / Y_train (or images / labels, data / target,
    x_tr / y_tr) said only "needs arrays x_train and y_train (found: [...])", where fit's
    options say "did you mean"; the member meant is said, by its spelling or, for a name
    of its words, by the array's form, with the rename to store."""
    x, y = np.concatenate([EIGHT_BIT] * 2), np.concatenate([LABELS] * 2)
    names = np.array(["cat", "dog", "eel"])
    cases = {"case": ({"X_train": x, "Y_train": y}, ("x_train", "y_train")),
             "words": ({"images": x, "labels": y}, ("x_train", "y_train")),
             "sklearn": ({"data": x, "target": y}, ("x_train", "y_train")),
             "short": ({"x_tr": x, "y_tr": y, "X_te": x, "y_te": y},
                       ("x_train", "y_train", "x_test", "y_test")),
             "keras": ({"train_images": x, "train_labels": y, "classes": names},
                       ("x_train", "y_train", "class_names"))}
    for name, (arrays, meant) in cases.items():
        spec = save_npz(tmp_path / f"{name}.npz", **arrays)
        for load in (load_task, load_test_set):
            with pytest.raises(DataError) as e:
                load(spec)
            text = str(e.value)
            assert "needs arrays x_train and y_train" in text, text
            for stored, member in zip(arrays, meant):
                assert f"{stored!r} (did you mean {member!r}?)" in text, text
                assert f"a[{member!r}] = a.pop({stored!r})" in text, text
        # The rename it gives stores an archive that loads.
        renamed = {m: arrays[s] for s, m in zip(arrays, meant)}
        assert load_task(save_npz(tmp_path / f"{name}-fixed.npz", **renamed)).num_classes == 3
    # Beside x_train and y_train, an unread member gets the same.
    spec = save_npz(tmp_path / "test.npz", x_train=x, y_train=y, X_test=x, Y_test=y)
    with pytest.raises(DataError, match=r"holds 'X_test' \(did you mean 'x_test'\?\), 'Y_test' "
                                        r"\(did you mean 'y_test'\?\).*a\['x_test'\] = "
                                        r"a\.pop\('X_test'\)"):
        load_task(spec)
    # A name of no member's words, an array not of the member's form, or a member the
    # archive has already get none.
    spec = save_npz(tmp_path / "none.npz", x_train=x, y_train=y, meta=np.arange(3),
                    labels=np.zeros((24, 3)), X_train=x)
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert "holds 'meta', 'labels', 'X_train', which" in str(e.value)
    assert "did you mean" not in str(e.value)


def test_a_split_folder_named_otherwise_gets_the_folder_meant(tmp_path):
    """A train/ layout with testing/ or Validation/ beside it was refused as mixed layouts
    without the split folder meant."""
    for other, meant in (("testing", "test"), ("Validation", "val"), ("dev", "val")):
        root = tmp_path / other
        for split in ("train", other):
            for c in ("a", "b"):
                for i in range(2):
                    write_png(str(root / split / c / f"{i}.png"), EIGHT_BIT[i])
        with pytest.raises(DataError, match=rf"also '{other}'/ \(did you mean {meant}/\? the "
                                            r"split folders are train/, val/"):
            load_task(f"folder:{root}")


def test_split_folders_named_otherwise_are_not_read_as_classes(tmp_path):
    """A new-user check: a Kaggle-style folder of Train/<class>/ and Test/<class>/ loaded as
    2 classes, Test and Train, of the images nested in them (train 8, val 4, test 4), without
    a word; it is refused with the renames, for fit and evaluate alike. A folder of classes
    that only sound like splits and hold no folders is read as before."""
    root = tmp_path / "kaggle"
    for split in ("Train", "Test"):
        for c in ("cat", "dog"):
            for i in range(4):
                write_png(str(root / split / c / f"{i}.png"), EIGHT_BIT[i])
    for load in (load_task, load_test_set):
        with pytest.raises(DataError, match=r"has the folders Test/, Train/, named as splits and "
                                            r"holding folders \(Test/…\).*read as the classes "
                                            r"Test, Train.*rename them \(Test/ -> test/, Train/ "
                                            r"-> train/\)"):
            load(f"folder:{root}")
    (root / "Train").rename(root / "train")
    (root / "Test").rename(root / "test")
    assert load_task(f"folder:{root}").class_names == ["cat", "dog"]
    flat = tmp_path / "flat"
    for c in ("training", "testing"):
        for i in range(3):
            write_png(str(flat / c / f"{i}.png"), EIGHT_BIT[i])
    assert load_task(f"folder:{flat}").class_names == ["testing", "training"]


# --------------------------------------------------------------------------- unnamed labels


def test_unnamed_labels_are_indices_that_must_all_be_used(tmp_path):
    """A new-user check: labels {3, 7, 9} without class_names said "'0' has 0, '1' has 0 ...;
    add images" (the classes were "0".."9"), and a label of 2**40 counted names "0".."2**40"
    until the process was killed. Now: one line naming the unused indices and the fix; a test
    set (evaluate matches classes by name) is named by the labels it uses."""
    sparse = np.array([3, 7, 9])[LABELS]
    spec = save_npz(tmp_path / "sparse.npz", x_train=EIGHT_BIT, y_train=sparse)
    with pytest.raises(DataError) as e:
        load_task(spec, val_fraction=0.0)
    assert str(e.value) == (
        f"npz:{tmp_path / 'sparse.npz'}: without class names the labels are class indices 0..9 "
        f"(10 classes), but 7 of them have no example in any split (0, 1, 2, 4, 5, …; the "
        f"labels used are 3, 7, 9); store class_names for all the classes, or number them "
        f"0..C-1: classes = np.unique(the labels of all splits), y = np.searchsorted(classes, "
        f"y) for each split and class_names=classes.astype(str)")
    huge = save_npz(tmp_path / "huge.npz", x_train=EIGHT_BIT, y_train=LABELS + 10**6)
    with pytest.raises(DataError, match=r"0\.\.1000002 \(1000003 classes\), but 1000000 of"):
        load_task(huge, val_fraction=0.0)
    held = save_npz(tmp_path / "held.npz", x_test=EIGHT_BIT, y_test=sparse)
    task = load_test_set(held)
    assert task.class_names == ["3", "7", "9"]
    assert [task.class_names[i] for i in task.test.labels] == [str(v) for v in sparse]
    # A label_fn sees the raw values, gaps and all; its classes are what it returns.
    task = load_task(spec, val_fraction=0.0, label_fn=lambda y: (y > 5).astype(int))
    assert task.class_names == ["0", "1"] and task.train.labels.tolist() == [0] * 4 + [1] * 8
    with pytest.raises(DataError, match=r"^label_fn: without class names .* return \(labels, "
                                        r"num_classes\)"):
        load_task(spec, val_fraction=0.0, label_fn=lambda y: y * 2)
    assert load_task(spec, val_fraction=0.0, min_per_class=0,
                     label_fn=lambda y: (y // 7, 3)).class_names == ["0", "1", "2"]


@pytest.mark.parametrize("labels, shown", [
    (np.array([0, 1, 2, 2**64 - 1] * 3, np.uint64), "18446744073709551615"),  # was "-1"
    (np.array([0, 1, 2, 1e20] * 3), "100000000000000000000"),  # was -9223372036854775808
])
def test_labels_beyond_int64_are_named_as_stored(tmp_path, labels, shown):
    spec = save_npz(tmp_path / "big.npz", x_train=EIGHT_BIT, y_train=labels)
    with pytest.raises(DataError, match=f"'y_train' holds label {shown}, beyond int64"):
        load_task(spec)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("keyword, value, words", [
    ("min_per_class", -1, "min_per_class must be an integer >= 0, got -1"),
    ("min_per_class", 2.5, "min_per_class must be an integer >= 0, got 2.5"),
    ("seed", -1, "seed must be an integer in [0, 4294967295], got -1"),
    ("seed", 1.5, "seed must be an integer in [0, 4294967295], got 1.5"),
    # numpy's range: sklearn:digits' split stopped with sklearn's traceback after the load.
    ("seed", 2**32, "seed must be an integer in [0, 4294967295], got 4294967296"),
    ("dedupe", "no", "dedupe must be true or false, got 'no'"),
    ("flip", "yes", "flip must be true or false (or None), got 'yes'"),
    ("val_fraction", 1.5, "val_fraction must be a number in [0, 1)"),
    ("label_key", 3, "label_key must be a string, got 3"),
    ("data_dir", 5, "data_dir must be a string (or None), got 5"),
])
def test_load_task_refuses_an_option_outside_its_rules_before_reading(
        tmp_path, keyword, value, words):
    """The folder does not exist: the option is refused first, in the command line's rule."""
    with pytest.raises(DataError) as e:
        load_task(f"folder:{tmp_path / 'missing'}", **{keyword: value})
    assert str(e.value).startswith(words), str(e.value)


def test_options_of_numpy_types_and_load_test_set(tmp_path):
    spec = save_npz(tmp_path / "ok.npz", x_train=EIGHT_BIT, y_train=LABELS)
    task = load_task(spec, seed=np.int64(1), dedupe=np.True_, min_per_class=np.int32(2),
                     val_fraction=np.float32(0.25))
    assert len(task.train) + len(task.val) == 12
    with pytest.raises(DataError, match=r"^data_dir must be a string"):
        load_test_set(f"folder:{tmp_path / 'missing'}", data_dir=7)


# --------------------------------------------------------------------------- messages


def test_channels_first_arrays_say_so_with_the_transpose(tmp_path):
    spec = save_npz(tmp_path / "nchw.npz", x_train=EIGHT_BIT.transpose(0, 3, 1, 2).repeat(4, 2)
                    .repeat(4, 3), y_train=LABELS)
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert "got shape [12, 3, 16, 16]; it looks channels-first ([N, C, H, W]" in str(e.value)
    assert "store x.transpose(0, 2, 3, 1)" in str(e.value)
    with pytest.raises(DataError, match=r"\[C, H, W\].*x\.transpose\(1, 2, 0\)"):
        to_rgb_uint8(np.zeros((4, 9, 9), np.uint8))
    with pytest.raises(DataError) as e:  # a last axis of 5 channels with no channel-first look
        to_rgb_uint8(np.zeros((2, 9, 9, 5), np.uint8))
    assert "channels-first" not in str(e.value)


def test_names_as_labels_say_how_to_store_indices(tmp_path):
    """A new-user check: string labels got "labels must be integers" and no way on."""
    names = np.array(["cat", "dog", "owl"])[LABELS % 3]
    spec = save_npz(tmp_path / "names.npz", x_train=EIGHT_BIT, y_train=names)
    with pytest.raises(DataError, match=r"'y_train' has dtype <U3; labels must be integers; "
                                        r"for names as labels store indices into class_names"
                                        r".*np\.searchsorted\(names, y\)"):
        load_task(spec)
    with pytest.raises(DataError) as e:  # floats that are not integral: no such advice
        load_task(save_npz(tmp_path / "f.npz", x_train=EIGHT_BIT, y_train=LABELS + 0.5))
    assert "searchsorted" not in str(e.value)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_floats_just_above_one_show_a_maximum_above_one(dtype):
    x = np.full((1, 2, 2, 3), 0.5, dtype)
    x[0, 0, 0, 0] = np.nextafter(dtype(1), dtype(2))
    with pytest.raises(DataError) as e:
        to_rgb_uint8(x)
    shown = str(e.value).split("(got ")[1].split(")")[0]
    low, high = shown.split("..")
    assert low == "0.5" and float(high) > 1.0 and dtype(high) == x.max(), shown
    x[0, 0, 0, 0] = 1.5
    with pytest.raises(DataError, match=r"got 0\.5\.\.1\.5\)"):  # plain numbers stay short
        to_rgb_uint8(x)


def test_float_pixels_out_of_range_get_the_fix_for_the_range_they_show(tmp_path):
    """A new-user check: every float range outside [0, 1] got "divide by 255 first", which
    leaves [-1, 1] and standardised pixels out of range; NaN said neither where nor what to
    do. Each fix, applied, gives pixels the loader takes."""
    unit = RNG.random((12, 4, 4, 3))
    mean, std = unit.mean(axis=(0, 1, 2)), unit.std(axis=(0, 1, 2))
    cases = [(unit * 2 - 1, r"they look scaled to \[-1, 1\]: store \(x \+ 1\) / 2",
              lambda x: (x + 1) / 2),
             ((unit - mean) / std, r"they look standardised .*undo the normalisation, x \* std \+ "
                                   r"mean", lambda x: x * std + mean),
             (unit * 255, r"they look like 0\.\.255 values: store x / 255", lambda x: x / 255),
             (unit * 65535, r"they look like 16-bit values: store x / 65535", lambda x: x / 65535)]
    for i, (x, words, fix) in enumerate(cases):
        spec = save_npz(tmp_path / f"{i}.npz", x_train=x, y_train=LABELS)
        with pytest.raises(DataError, match=rf"\.npz: array 'x_train': float pixels must lie in "
                                            rf"\[0, 1\] \(got .*\); {words}"):
            load_task(spec, val_fraction=0.0)
        fixed = load_task(save_npz(tmp_path / f"{i}f.npz", x_train=fix(x), y_train=LABELS),
                          val_fraction=0.0)
        assert np.abs(fixed.train.images.astype(int) - np.round(unit * 255)).max() <= 1
    bad = unit.copy()
    bad[7, 1, 2, 0], bad[9, 0, 0, 1] = np.nan, np.inf
    spec = save_npz(tmp_path / "nan.npz", x_train=unit, y_train=LABELS, x_test=bad,
                    y_test=LABELS)
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert str(e.value).startswith(
        f"npz:{tmp_path / 'nan.npz'}: array 'x_test': float pixels hold NaN and infinity (2 "
        "values in 2 images, the first at index 7); drop those images with their labels "
        "(keep = "
        "np.isfinite(x).all(axis=(1, 2, 3)); x, y = x[keep], y[keep])"), str(e.value)


# --------------------------------------------------------------------------- --dedupe


def _conflict_folder(root):
    """a/0.png = a/0copy.png = b/zz.png (one picture in two classes), plus noise images."""
    pictures = RNG.integers(0, 256, (11, 6, 6, 3), dtype=np.uint8)
    for i in range(5):
        write_png(str(root / "a" / f"{i}.png"), pictures[i])
        write_png(str(root / "b" / f"{i}.png"), pictures[5 + i])
    write_png(str(root / "a" / "0copy.png"), pictures[0])
    write_png(str(root / "b" / "zz.png"), pictures[0])
    return f"folder:{root}"


def test_label_conflicts_are_reported_with_and_without_dedupe(tmp_path):
    spec = _conflict_folder(tmp_path / "conf")
    a0, a0copy, zz = (str(tmp_path / "conf" / p)
                      for p in ("a/0.png", "a/0copy.png", "b/zz.png"))
    task = load_task(spec, val_fraction=0.0, test_fraction=0.0)
    # The example shows two copies whose labels differ, not a/0.png (a) = a/0copy.png (a).
    (group,) = task.duplicates["conflicting_examples"]
    assert group == [(a0, "a"), (zz, "b"), (a0copy, "a")]
    assert f"carries different labels (e.g. {a0} (a) = {zz} (b))" in task.summary()
    deduped = load_task(spec, val_fraction=0.0, test_fraction=0.0, dedupe=True)
    dup = deduped.duplicates
    assert (dup["copies"], dup["dropped"]) == (0, 2)
    assert dup["conflicting_labels"] == 1 and dup["conflicting_dropped"] == 1
    assert dup["conflicting_examples"] == [group]
    summary = deduped.summary()
    assert f"1 group of copies carries different labels (e.g. {a0} (a) = {zz} (b))" in summary
    assert "--dedupe kept the first copy of 1 of them, with its label" in summary
    assert dict(deduped.dropped) == {a0copy: f"a copy of {a0}",
                                     zz: f"a copy of {a0} with another label (b here, a kept)"}
    assert deduped.to_json()["duplicates"]["conflicting_labels"] == 1
    from hubensemble.report.datarows import accounting_rows as _accounting_rows

    row = dict(_accounting_rows(deduped.to_json()))["exact duplicates"]  # the report too
    assert row.startswith("none left; 1 group had different labels (e.g. ") and "zz.png" in row


def test_label_conflicts_of_arrays_survive_dedupe_in_the_final_classes(tmp_path):
    x_test = EIGHT_BIT[[0, 5]]  # train[0] (class 0) as class 2; train[5] (class 1) as class 1
    spec = save_npz(tmp_path / "d.npz", x_train=EIGHT_BIT, y_train=LABELS, x_test=x_test,
                    y_test=[2, 1], class_names=np.array(["x", "y", "z"]))
    deduped = load_task(spec, val_fraction=0.0, dedupe=True)
    assert deduped.duplicates["conflicting_labels"] == 1
    assert deduped.duplicates["conflicting_examples"] == [[("train[0]", "x"), ("test[0]", "z")]]
    # label_fn runs before --dedupe: merged into one class, the copies no longer conflict.
    merged = load_task(spec, val_fraction=0.0, dedupe=True,
                       label_fn=lambda y: (np.where(y == 2, 0, y), ["xz", "y"]))
    assert merged.duplicates["conflicting_labels"] == 0 and len(merged.dropped) == 2


# --------------------------------------------------------------------------- Tasks made in Python


def python_task(train_images, train_labels=LABELS, names=("a", "b", "c")):
    return Task(name="arrays", source="python", class_names=list(names),
                train=Split(train_images, train_labels), val=Split(train_images, train_labels))


def test_a_task_made_in_python_converts_its_arrays_as_npz_does(tmp_path):
    """A new-user check: Task(train=Split(x / 255 float32, y)) was kept as floats, so
    float_images() ran 0..0.004 (divided by 255 twice) and the run's figures described no
    export; float32 0..255 was taken without a word. Every in-memory entry goes through
    `to_rgb_uint8`, as npz: does: the same pixels, the same fingerprint."""
    npz = load_task(save_npz(tmp_path / "d.npz", x_train=EIGHT_BIT, y_train=LABELS,
                             x_val=EIGHT_BIT, y_val=LABELS, class_names=np.array(list("abc"))))
    for given in (EIGHT_BIT, EIGHT_BIT.astype(np.float32) / 255,
                  EIGHT_BIT.astype(np.uint16) * 257, list(EIGHT_BIT.astype(np.float64) / 255)):
        task = python_task(given)
        assert task.fingerprint == npz.fingerprint, type(given)
        assert task.train.images[0].dtype == np.uint8
    float_images = python_task(EIGHT_BIT.astype(np.float32) / 255).train.float_images()
    np.testing.assert_allclose(float_images, EIGHT_BIT / np.float32(255), atol=1e-6)
    # What npz: refuses, with its message (the array named as it was given).
    for bad, npz_words in ((EIGHT_BIT.astype(np.float32), "float pixels must lie in [0, 1] "
                            "(got 0..255); they look like 0..255 values: store x / 255, or "
                            "uint8 0..255"),
                           (EIGHT_BIT.astype(np.uint16), "uint16 pixels that all lie in "
                            "0..255 (max 255) look like 8-bit data")):
        with pytest.raises(DataError) as e:
            python_task(bad)
        assert str(e.value).startswith("Split images: " + npz_words), str(e.value)
        with pytest.raises(DataError, match=re.escape(npz_words)):
            load_task(save_npz(tmp_path / "bad.npz", x_train=bad, y_train=LABELS))


def test_a_task_made_in_python_is_checked_as_load_task_checks_it():
    """A new-user check: grey [N, H, W] or RGBA images failed inside rank ("no module could
    be ranked (4 failed): …Binding inputs to tf.function failed…"), a label 7 of 4 classes
    failed per module, then blamed the catalogue. Grey and alpha are converted as npz: does;
    labels out of range, counts that differ and other types are refused where made."""
    grey = python_task(EIGHT_BIT[..., 0])
    np.testing.assert_array_equal(grey.train.images, np.repeat(EIGHT_BIT[..., :1], 3, -1))
    rgba = np.concatenate([EIGHT_BIT, np.full((12, 4, 4, 1), 255, np.uint8)], -1)
    assert python_task(rgba).fingerprint == python_task(EIGHT_BIT).fingerprint
    assert python_task(list(EIGHT_BIT[..., 0])).train.images[0].shape == (4, 4, 3)
    wrong = LABELS.copy()
    wrong[0] = 7
    with pytest.raises(DataError, match=r"^train labels out of range: 1 label with "
                                        r"value \[7\] but the classes are 0\.\.2"):
        python_task(EIGHT_BIT, wrong)
    with pytest.raises(DataError, match=r"^Split: 12 images but 11 labels; they must match"):
        Split(EIGHT_BIT, LABELS[:11])
    with pytest.raises(DataError, match=r"Split images have shape \[12, 48\]"):
        Split(EIGHT_BIT.reshape(12, 48), LABELS)
    with pytest.raises(DataError, match=r"Split labels hold 12 non-integer labels \(0\.5 "):
        Split(EIGHT_BIT, LABELS + 0.5)
    with pytest.raises(DataError, match=r"Split labels have dtype <U1"):
        Split(EIGHT_BIT, np.array(list("abc"))[LABELS])
    with pytest.raises(TypeError, match=r"Task train must be a hubensemble.data.Split .*got "
                                        r"tuple; e.g. train=Split\(x_train, y_train\)"):
        Task(name="t", source="python", class_names=["a", "b", "c"], train=(EIGHT_BIT, LABELS))
    # One-hot-free [N, 1] labels and integral floats are taken, as npz: takes them.
    assert python_task(EIGHT_BIT, LABELS[:, None].astype(float)).train.labels.dtype == np.int64


def test_a_task_with_a_class_of_one_example_is_refused_before_fits_run_folder(tmp_path):
    """fit(data=Task) checked the Task with min_per_class 0 before its run folder, then rank
    refused it with DataArgs' default (2): the refusal left RUN/run.json, log.txt and its
    lock behind. It is refused before, with the option that keeps the class; data_args'
    min_per_class keeps it."""
    from hubensemble.fitargs import check_data

    labels = LABELS.copy()
    labels[1:4] = 1  # class 'a' keeps one example
    task = python_task(EIGHT_BIT, labels)
    with pytest.raises(DataError, match=r"'a' has 1; .*min_per_class=1 \(load_task's"):
        check_data(task, None, out=tmp_path / "run", export=None)
    assert check_data(task, DataArgs(spec="python", reloadable=False, min_per_class=1),
                      out=tmp_path / "run", export=None).min_per_class == 1


def test_a_task_made_in_python_refuses_class_names_npz_refuses():
    """A new-user check: Task(class_names='abc'), [1, 2, 3] and ['a', 'a', 'c']
    were taken (a str of 3 letters as 3 names; ints as names; one name for two classes),
    where npz: refuses each."""
    from hubensemble.data import Split, Task

    x, y = np.zeros((6, 4, 4, 3), np.uint8), np.array([0, 1, 2, 0, 1, 2])
    for names, said in (("abc", "class_names is one string 'abc'; give a list of names"),
                        ([1, 2, 3], "class_names[0] is int 1, not text"),
                        (["a", "a", "c"], "class_names: 'a' names classes 0 and 1; each class "
                                          "needs a name of its own")):
        with pytest.raises(DataError, match=re.escape(said)):
            Task("t", "python", names, Split(x, y), Split(x, y), Split(x, y))
    assert Task("t", "python", ["a", "b", "c"], Split(x, y), Split(x, y)).num_classes == 3


def test_evaluate_matches_names_that_look_the_same_by_the_class_names_rule():
    """evaluate._spelled (now classmatch's) stripped every Cf character when it matched a data
    name with an old export's (a joiner between two emoji too, which shapes them), and no variation
    selector, which the class names' rule now refuses: both use data.names.invisible_at."""
    from hubensemble.classmatch import _spelled

    assert "not the model's 'cat\\ufe0f'" in _spelled("cat", ["cat\ufe0f"])
    assert "U+200B" in _spelled("Cat\u200b", ["cat"])
    # Every model class it could be mistaken for, not the first (a model of 'Cat' and 'cat').
    assert _spelled("CAT", ["Cat", "dog", "cat"]).endswith("not the model's 'Cat' or 'cat')")
    pair = "\U0001f468\U0001f469"  # two emoji; with a joiner between them, one family glyph
    assert _spelled("\U0001f468\u200d\U0001f469", [pair]) == repr("\U0001f468\u200d\U0001f469")


# --------------------------------------------------------------------------- classes outside train


def test_a_class_without_training_examples_is_told_where_its_examples_are(tmp_path):
    """An npz whose y_test (or y_val) holds a class y_train lacks was refused with "'c' has 0;
    add images, merge or drop the class", as if the class had no data: now the refusal counts
    its examples in the other splits and says to move some into training; a class_names entry
    no label uses is told to be dropped. The counts are the arrays' own (np.sum below)."""
    names = np.array(["a", "b", "c"])
    train_y, test_y = np.repeat([0, 1], 6), np.array([0, 1, 2, 2, 2])
    val_y = np.array([0, 1, 2])
    spec = save_npz(tmp_path / "held.npz", x_train=EIGHT_BIT, y_train=train_y,
                    x_val=EIGHT_BIT[:3], y_val=val_y, x_test=EIGHT_BIT[:5], y_test=test_y,
                    class_names=names)
    with pytest.raises(DataError) as e:
        load_task(spec)
    in_val, in_test = int(np.sum(val_y == 2)), int(np.sum(test_y == 2))
    assert (f"'c' has 0 (but {in_val} in val and {in_test} in test); the model would never "
            f"train on 'c': move some of its val and test examples into the training split, "
            f"or remove them from val and test; ") in str(e.value)
    unused = save_npz(tmp_path / "unused.npz", x_train=EIGHT_BIT, y_train=train_y,
                      class_names=names)
    with pytest.raises(DataError) as e:
        load_task(unused, val_fraction=0.0)
    assert ("'c' has 0 (nor any example in another split); no label uses 'c': drop it from "
            "the class names (renumbering the labels after it), or keep it as a class the "
            "model never trains on with min_per_class=0 (load_task's") in str(e.value)
    assert load_task(unused, val_fraction=0.0, min_per_class=0).class_names == names.tolist()
    # A Task made in Python meets the same rule (fit and rank validate it).
    task = Task(name="t", source="python", class_names=["a", "b", "c"],
                train=Split(images=EIGHT_BIT, labels=train_y),
                test=Split(images=EIGHT_BIT[:5], labels=test_y))
    with pytest.raises(DataError, match=rf"'c' has 0 \(but {in_test} in test\); the model "):
        validate_task(task)
    # A class short of training examples, not without them, is told as before.
    short = save_npz(tmp_path / "short.npz", x_train=EIGHT_BIT[:9],
                     y_train=np.r_[train_y[:8], 2], x_test=EIGHT_BIT[:5], y_test=test_y)
    with pytest.raises(DataError) as e:
        load_task(short, val_fraction=0.0)
    assert "'2' has 1; add images" in str(e.value) and "never train" not in str(e.value)


def test_class_folders_named_by_numbers_out_of_numeric_order_are_warned_of(tmp_path, caplog):
    """Folders 1/, 10/, 2/ are classes in text order, so the export's serving_default says
    class id 1 for folder 10/: a new user reading class ids as folder numbers took it for 1/
    (predict shows names; nothing said the ids are not the numbers). The load now warns,
    naming the first id that differs; folders 0/ .. 9/ (or 01/ .. 12/) and an evaluate test
    set, matched to the model's classes by name, say nothing."""
    from hubensemble.data import load_test_set

    for c, shade in (("1", 0), ("10", 1), ("2", 2)):
        for i in range(3):
            write_png(str(tmp_path / "num" / c / f"{i}.png"), EIGHT_BIT[shade * 4 + i])
    caplog.set_level("WARNING", logger="hubensemble.data")
    task = load_task(f"folder:{tmp_path / 'num'}", val_fraction=0.0, test_fraction=0.0)
    by_number = sorted(task.class_names, key=int)
    first = next(i for i, (a, b) in enumerate(zip(task.class_names, by_number)) if a != b)
    assert (first, task.class_names[first], by_number[first]) == (1, "10", "2")
    said = [r.getMessage() for r in caplog.records if "ordered as text" in r.getMessage()]
    assert len(said) == 1 and (f"1/, 10/, 2/ are class ids 0 to 2 in that order, so class id "
                               f"{first} is folder 10/, not 2/; serving_default") in said[0]
    caplog.clear()
    load_test_set(f"folder:{tmp_path / 'num'}")
    assert not [r for r in caplog.records if "ordered as text" in r.getMessage()]
    for c in ("1", "10", "2"):
        (tmp_path / "num" / c).rename(tmp_path / "num" / c.zfill(2))
    assert load_task(f"folder:{tmp_path / 'num'}", val_fraction=0.0,
                     test_fraction=0.0).class_names == ["01", "02", "10"]
    assert not [r for r in caplog.records if "ordered as text" in r.getMessage()]


def test_nan_and_fractional_npz_labels_are_counted_and_located(tmp_path):
    """y_train with a NaN (an unlabelled example, as pandas writes a missing label) was
    refused with "holds non-integer labels" alone: which, how many, and what to do with an
    unlabelled example were left to find. Now the count, the first value and its index (from
    the array itself here), and for NaN the way to drop those examples."""
    y = LABELS.astype(float)
    y[[5, 9]] = np.nan
    spec = save_npz(tmp_path / "nan.npz", x_train=EIGHT_BIT, y_train=y)
    with pytest.raises(DataError) as e:
        load_task(spec)
    bad = np.flatnonzero(np.isnan(y))
    assert (f"array 'y_train' holds {len(bad)} non-integer labels (nan at index {bad[0]}); "
            f"labels must be integer class indices; an unlabelled example (NaN) has no class "
            f"to learn: drop those examples") in str(e.value)
    half = save_npz(tmp_path / "half.npz", x_train=EIGHT_BIT, y_train=LABELS + 0.5)
    with pytest.raises(DataError) as e:
        load_task(half)
    assert str(e.value).endswith(f"holds {len(LABELS)} non-integer labels (0.5 at index 0); "
                                 f"labels must be integer class indices")


def test_nan_labels_of_a_split_made_in_python_are_counted_and_located():
    """A `Split` made in Python with NaN labels said "Split labels hold non-integer values"
    alone, where the npz loader (8461ef8) counts them, names the first and says how to drop
    unlabelled examples: the same words now, with the way in a Split's terms."""
    y = LABELS.astype(float)
    y[[3, 7, 8]] = np.nan
    with pytest.raises(DataError) as e:
        Split(EIGHT_BIT, y)
    bad = np.flatnonzero(np.isnan(y))
    assert str(e.value) == (
        f"Split labels hold {len(bad)} non-integer labels (nan at index {bad[0]}); labels "
        f"must be integer class indices; an unlabelled example (NaN) has no class to learn: "
        f"drop those examples (keep = ~np.isnan(labels); Split(images[keep], labels[keep]))")
    y = LABELS.astype(float)
    y[4] = np.inf
    with pytest.raises(DataError, match=r"^Split labels hold 1 non-integer label \(inf at "
                                        r"index 4\); labels must be integer class indices$"):
        Split(EIGHT_BIT, y)


def test_negative_npz_labels_say_where_and_the_ways_on(tmp_path):
    """y_train of -1 for unlabelled examples (a common convention) was refused with "train
    labels out of range: 2 label(s) with value(s) [-1]; class indices are 0 or more": no
    file, no index, no way on. Now the archive, the first index (the array's own), and the
    ways: drop those examples, or renumber if -1 is a class."""
    y = LABELS.copy()
    y[[4, 7]] = -1
    spec = save_npz(tmp_path / "neg.npz", x_train=EIGHT_BIT, y_train=y)
    with pytest.raises(DataError) as e:
        load_task(spec)
    first = int(np.flatnonzero(y < 0)[0])
    assert str(e.value).startswith(
        f"npz:{tmp_path / 'neg.npz'}: train labels out of range: 2 labels with value [-1] "
        f"(the first at index {first}); class indices are 0 or more: a negative label (-1 "
        f"often marks an unlabelled example) has no class to learn, so drop those examples "
        f"(images and labels: keep = y >= 0), or store class_names for all the classes, or "
        f"number them 0..C-1")


def test_nan_and_fractional_split_labels_are_counted_and_located():
    """A Split made in Python with NaN labels (a missing label from pandas) was refused with
    "Split labels hold non-integer values" alone, where an npz's said how many, where, and
    what to do with an unlabelled example: the same words now."""
    y = LABELS.astype(float)
    y[[5, 9]] = np.nan
    with pytest.raises(DataError) as e:
        Split(EIGHT_BIT, y)
    assert str(e.value).startswith(
        "Split labels hold 2 non-integer labels (nan at index 5); labels must be integer "
        "class indices; an unlabelled example (NaN) has no class to learn: drop those "
        "examples")
    with pytest.raises(DataError) as e:
        Split(EIGHT_BIT, LABELS + 0.5)
    assert str(e.value) == (f"Split labels hold {len(LABELS)} non-integer labels (0.5 at "
                            f"index 0); labels must be integer class indices")


@pytest.mark.parametrize("how", ["npz with class_names", "Task"])
def test_negative_labels_beside_class_names_say_where_and_the_way_on(tmp_path, how):
    """y_train with -1 for unlabelled examples beside class_names (an npz's, a Task's) was
    refused with "train labels out of range: 2 label(s) with value(s) [-1] but the classes
    are 0..2 (3 class names); fix the labels or supply all class names": no file, no index,
    and a way on (more class names) that does not fit an unlabelled example. Now as without
    class_names: the archive, the first index, and to drop those examples."""
    y = LABELS.copy()
    y[[4, 7]] = -1
    names = ["a", "b", "c"]
    with pytest.raises(DataError) as e:
        if how == "Task":
            Task(name="t", source="s", class_names=names, train=Split(EIGHT_BIT, y))
        else:
            load_task(save_npz(tmp_path / "neg.npz", x_train=EIGHT_BIT, y_train=y,
                               class_names=np.array(names)))
    where = "" if how == "Task" else f"npz:{tmp_path / 'neg.npz'}: "
    assert str(e.value) == (
        f"{where}train labels out of range: 2 labels with value [-1] (the first at index "
        f"4); class indices are 0 or more: a negative label (-1 often marks an unlabelled "
        f"example) has no class to learn, so drop those examples (images and labels: keep = "
        f"y >= 0)")


def test_labels_beyond_npz_class_names_name_the_archive_and_the_first_index(tmp_path):
    """An npz storing 3 class_names and a label 3 (in any split) was refused with "train
    labels out of range: … (3 class names); fix the labels …" alone: no archive, no index
    (a negative label's refusal named both)."""
    y = LABELS.copy()
    y[[5, 9]] = 3
    spec = save_npz(tmp_path / "short.npz", x_train=EIGHT_BIT, y_train=y,
                    class_names=np.array(["a", "b", "c"]))
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert str(e.value) == (
        f"npz:{tmp_path / 'short.npz'}: train labels out of range: 2 labels with value "
        f"[3] but the classes are 0..2 (3 class names; the first such label at index 5); fix "
        f"the labels or supply all class names")
    spec = save_npz(tmp_path / "test.npz", x_train=EIGHT_BIT, y_train=LABELS,
                    x_test=EIGHT_BIT[:2], y_test=np.array([0, 4]),
                    class_names=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match=r"^npz:.*test\.npz: test labels out of range: 1 "
                                        r"label with value \[4\] .* at index 1\)"):
        load_task(spec)


@pytest.mark.parametrize("kind", ["one-hot", "soft", "columns", "scalar"])
def test_labels_not_one_per_image_are_told_the_way_on_by_what_they_hold(tmp_path, kind):
    """Every y_train that was not one label per image was told "for one-hot labels store
    y.argmax(1)": [N, 2] columns of (id, class) and a 0-d label too, where argmax gives 0
    or 1 per image. One-hot rows (and probabilities) keep that way on, which then loads
    with the labels meant; other rows are told to store the class's column."""
    onehot = np.eye(3)[LABELS]
    y = {"one-hot": onehot, "soft": onehot * 0.8 + 0.2 / 3,
         "columns": np.stack([np.arange(12), LABELS], 1), "scalar": np.array(3)}[kind]
    spec = save_npz(tmp_path / "y.npz", x_train=EIGHT_BIT, y_train=y)
    with pytest.raises(DataError) as e:
        load_task(spec)
    start = (f"npz:{tmp_path / 'y.npz'}: array 'y_train' has shape {list(y.shape)}; labels "
             f"must be one integer class index per image")
    tail = {"one-hot": " (they look one-hot: store y.argmax(1))",
            "soft": " (they look class probabilities (soft labels): store y.argmax(1))",
            "columns": " (its rows hold 2 values each, not one class per image: several label "
                       "columns or multi-label; store the column that is the class, y[:, j], "
                       "numbered 0..C-1)", "scalar": ""}[kind]
    assert str(e.value) == start + tail
    if kind in ("one-hot", "soft"):
        fixed = save_npz(tmp_path / "f.npz", x_train=EIGHT_BIT, y_train=y.argmax(1))
        task = load_task(fixed)
        assert sorted(task.train.labels.tolist() + task.val.labels.tolist()) == \
            sorted(LABELS.tolist())


def test_numbers_as_npz_class_names_are_told_to_be_stored_as_text(tmp_path):
    """class_names=np.array([10, 2, 1]) (the original label values, kept as numbers) was
    refused with "must be a 1-D array of strings, got int64 [3]" alone; now with the values
    and the fix, which then loads with those names."""
    numbers = np.array([10, 2, 1])
    spec = save_npz(tmp_path / "n.npz", x_train=EIGHT_BIT, y_train=LABELS, class_names=numbers)
    with pytest.raises(DataError) as e:
        load_task(spec)
    assert str(e.value).endswith("got int64 [3] (10, 2, 1); for numbers as names store them as "
                                 "text: class_names=names.astype(str) (class i is named by "
                                 "class_names[i]: the labels stay indices)")
    fixed = save_npz(tmp_path / "t.npz", x_train=EIGHT_BIT, y_train=LABELS,
                     class_names=numbers.astype(str))
    assert load_task(fixed).class_names == ["10", "2", "1"]


def test_float_pixels_convert_without_float64_copies_of_the_whole_array(monkeypatch):
    # The rounding rule's float64 arithmetic held 4x a float32 array's bytes beside it (9.6 GB
    # for 4,000 float32 images at 224 px, an npz of x / 255): now one block at a time. The
    # block is shrunk so that a small array spans many blocks; the values stay exact.
    import tracemalloc

    from hubensemble.data import decode

    monkeypatch.setattr(decode, "FLOAT_BLOCK_VALUES", 1 << 12, raising=False)
    x = np.random.default_rng(0).random((64, 32, 32, 4), dtype=np.float32)
    x[0, 0, 0, :3] = [0.5 / 255, 1.0, 0.0]  # half up, and both ends
    expected = np.floor(x.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    tracemalloc.start()
    try:
        decode.check_array_values(x)
        got = to_rgb_uint8(x[..., :3])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, expected[..., :3])
    assert peak < x.nbytes / 2, (peak, x.nbytes)  # the uint8 result is x.nbytes / 4 x 3 / 4


def test_16bit_and_alpha_pixels_convert_without_whole_array_temporaries(monkeypatch):
    # uint16 -> uint8 made a uint16 copy of the whole array (v >> 8) before its uint8 one,
    # and the composite onto white three uint16 arrays of the whole: 2x a uint16 RGBA
    # array's bytes at the peak. Now shifted straight into uint8 and composited a block of
    # rows at a time (shrunk here so that a small array spans many blocks).
    import tracemalloc

    from hubensemble.data import decode

    monkeypatch.setattr(decode, "FLOAT_BLOCK_VALUES", 1 << 12)
    x = np.random.default_rng(0).integers(0, 65536, (64, 32, 32, 4), dtype=np.uint16)
    x[0, 0, 0] = [65535, 0, 300, 0]  # an 8-bit alpha of 0: white, whatever the colour
    top = (x >> 8).astype(np.int32)
    alpha = top[..., 3:]
    expected = ((top[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    mask = x[..., :3] > 30000  # bool: 0 / 255, in place
    tracemalloc.start()
    try:
        got = to_rgb_uint8(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        masked = to_rgb_uint8(mask)
        mask_peak = tracemalloc.get_traced_memory()[1] - got.nbytes
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, expected) and got[0, 0, 0].tolist() == [255, 255, 255]
    assert np.array_equal(masked, mask.astype(np.uint8) * 255)
    # Measured: 2.0x before, 0.9x now (the uint8 RGBA, the RGB result, the blocks).
    assert peak < x.nbytes, (peak / x.nbytes, x.nbytes)
    # 2x before: a second uint8 array (numpy elides that temporary only above 256 KB).
    assert mask_peak < 1.5 * mask.nbytes, (mask_peak / mask.nbytes)


def test_an_npz_val_split_is_carved_off_x_train_in_place(tmp_path):
    # Without x_val, val was carved off x_train by copying both parts while x_train was held:
    # 2x its bytes at the peak of the load. Now the parts are views of the loader's array,
    # reordered in place (splits._partition_in_place, as a folder's), the same examples.
    import tracemalloc

    from hubensemble.data.loading import LoadOptions
    from hubensemble.data.splits import _carve

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (240, 64, 64, 3), dtype=np.uint8)
    y = np.arange(240) % 4
    spec = save_npz(tmp_path / "t.npz", x_train=x, y_train=y)
    load_task(spec)  # the modules a load imports are not counted
    tracemalloc.start()
    try:
        task = load_task(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    want = _carve(Split(x, y), True, False, LoadOptions())
    for got, part in zip((task.train, task.val), want):
        assert np.array_equal(got.images, part.images)
        assert np.array_equal(got.labels, part.labels)
    # Measured: 2.01x x_train's bytes before, 1.18x now (the archive's read buffers).
    assert peak < 1.5 * x.nbytes, (peak / x.nbytes, x.nbytes)
    assert task.val.images.base is task.train.images.base is not None


def test_dedupe_keeps_the_first_copies_in_place(tmp_path):
    # load_task(dedupe=True) took each split's kept examples by copying them while the split
    # was held: 2x its bytes at the load's peak. The loader's own pixels are moved in place
    # now (duplicates._kept_in_place); the same examples as the copying rule's.
    import tracemalloc

    from hubensemble.data.duplicates import drop_duplicates

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (240, 64, 64, 3), dtype=np.uint8)
    x[1::7] = x[0]  # copies of the first image, with other labels too
    y = np.arange(240) % 4
    xt = np.concatenate([x[:3], rng.integers(0, 256, (37, 64, 64, 3), dtype=np.uint8)])
    xv = np.concatenate([x[10:11], rng.integers(0, 256, (39, 64, 64, 3), dtype=np.uint8)])
    spec = save_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_val=xv, y_val=y[:40],
                    x_test=xt, y_test=np.arange(40) % 4)
    load_task(spec, dedupe=True)  # the modules a load imports are not counted
    tracemalloc.start()
    try:
        task = load_task(spec, dedupe=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    want = drop_duplicates(load_task(spec))  # the copying rule
    assert len(task.train) < len(x) and (len(task.val), len(task.test)) == (39, 37)
    for s in ("train", "val", "test"):
        got, part = getattr(task, s), getattr(want, s)
        assert np.array_equal(got.images, part.images)
        assert np.array_equal(got.labels, part.labels)
        assert got.pixel_keys() == part.pixel_keys()
    assert task.dropped == want.dropped and task.fingerprint == want.fingerprint
    # Measured: 1.66x the three splits' bytes before, 1.14x now (the archive's read buffers).
    pixels = x.nbytes + xv.nbytes + xt.nbytes
    assert peak < 1.3 * pixels, (peak / pixels, pixels)


def test_an_npz_archive_is_read_and_converted_one_member_at_a_time(tmp_path, monkeypatch):
    # Every member was read at once (np.load's dict), so a float32 archive held all its raw
    # splits (4x their uint8 bytes) while they were converted; now each is read, converted
    # and dropped before the next (`npz._Archive`), uint16 ones looked at for their range
    # alone first. Three float32 splits of F bytes each: the peak held 3 F at least.
    import tracemalloc

    from hubensemble.data import decode

    monkeypatch.setattr(decode, "FLOAT_BLOCK_VALUES", 1 << 12)
    rng = np.random.default_rng(0)
    x = {s: rng.random((48, 96, 96, 3), dtype=np.float32) for s in ("train", "val", "test")}
    y = np.arange(48) % 3
    spec = save_npz(tmp_path / "f.npz", **{f"x_{s}": a for s, a in x.items()},
                    **{f"y_{s}": y for s in x})
    deep16 = {f"x_{s}": (a * 65535).astype(np.uint16) for s, a in x.items()}
    deep = save_npz(tmp_path / "d.npz", **deep16, **{f"y_{s}": y for s in x})
    tracemalloc.start()
    try:
        task = load_task(spec)
        float_peak = tracemalloc.get_traced_memory()[1]
        del task
        tracemalloc.reset_peak()
        task = load_task(deep)
        deep_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = np.floor(x["val"].astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    assert np.array_equal(load_task(spec).val.images, expected)
    assert np.array_equal(task.val.images, deep16["x_val"] >> 8)
    # F: one float32 split (a uint16 one is F / 2). Measured: float32 3.84 F before, 1.84 F
    # now (one raw split, the uint8 results, the conversion's blocks); uint16 2.75 F before
    # (1.5 F raw), 1.76-1.95 F with its v >> 8 in uint16, 1.46 F now (one raw split, the
    # uint8 results: `to_rgb_uint8` shifts straight into uint8).
    raw = x["train"].nbytes
    assert float_peak < 2.5 * raw, (float_peak / raw, raw)
    assert deep_peak < 1.7 * raw, (deep_peak / raw, raw)


def test_a_summary_for_one_scored_split_speaks_of_that_split_alone(tmp_path):
    """evaluate scores one split: its data summary spoke of the kNN ranking, fine-tuning and
    the ensemble selection (fit's stages) for an npz whose x_test holds one image. With
    `scored` the notes say what is measured on that split and how rough its size makes it
    (100/N points of accuracy per image); without, fit's words are unchanged."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 3)  # class c10 has no training example
    x = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    path = tmp_path / "one.npz"
    np.savez(path, x_train=x, y_train=y, x_val=x[3:11], y_val=y[3:11], x_test=x[:1],
             y_test=y[:1], class_names=np.array([f"c{i}" for i in range(11)]))
    task = load_test_set(f"npz:{path}")
    fit_words = task.summary()
    assert "the kNN ranking and fine-tuning cover 10 of 11 classes" in fit_words
    assert "validation metrics and the ensemble selection rest on fewer than 5" in fit_words
    assert "8 val images with a copy in train" in fit_words
    assert "training images; dedupe=True keeps one copy" in fit_words
    scored = task.summary(scored="test")
    for other in ("kNN", "fine-tuning", "ensemble selection", "validation", "val image",
                  "dedupe=True"):  # evaluate has no dedupe
        assert other not in scored
    assert ("1 test image with a copy in train — if the model was fit on this data, these "
            "metrics are partly measured on images that trained or chose it;") in scored
    assert scored.endswith("; the test split alone is scored: accuracy, NLL and ECE on its 1 "
                           "example; one image moves the accuracy by 1 (100 percentage "
                           "points), so read them as rough (score more images).")
    assert scored.startswith(fit_words.split(": 8 val image")[0])
    val = task.summary(scored="validation")  # 8 images: 12.5 points each, not "rough"
    assert val.endswith("the validation split alone is scored: accuracy, NLL and ECE on its 8 "
                        "examples; one image moves the accuracy by 0.125 (12.5 percentage "
                        "points).")
    with pytest.raises(DataError):
        task.summary(scored="nonsense")


# ------------------------------------------------------- counted nouns in the data's refusals


@pytest.mark.parametrize("y, said", [
    ([0, -1, 1], "1 label with value [-1] (at index 1); class indices are 0 or more: a negative "
     "label (-1 often marks an unlabelled example) has no class to learn, so drop that "
     "example (images"),
    ([-1, 0, -1, -2], "3 labels with values [-2, -1] (the first at index 0); class indices are 0 "
     "or more: a negative label (-1 often marks an unlabelled example) has no class to learn, "
     "so drop those examples (images")])
def test_negative_labels_are_counted_in_words(y, said):
    """One negative label is "1 label with value [-1]", more "3 labels with values": the
    words said "label(s) with value(s)" for any count."""
    from hubensemble.data.labelwords import negative_labels

    assert negative_labels(np.array(y)).startswith(said)


@pytest.mark.parametrize("y, said", [
    ([0.0, np.nan, 1.0], "1 non-integer label (nan at index 1); labels must be integer class "
     "indices; an unlabelled example (NaN) has no class to learn: drop that example X"),
    ([0.5, np.nan, np.nan], "3 non-integer labels (0.5 at index 0); labels must be integer "
     "class indices; an unlabelled example (NaN) has no class to learn: drop those examples X")])
def test_non_integer_labels_are_counted_in_words(y, said):
    from hubensemble.data.names import non_integer_labels

    assert non_integer_labels(np.array(y), "X") == said


@pytest.mark.parametrize("names, said", [
    (["cat"], "task 't' has 1 class (['cat']); classification needs at least 2"),
    (["cat", "dog"], "task 't' has 2 classes (['cat', 'dog']); classification needs at least 3")])
def test_too_few_classes_are_counted_in_words(names, said):
    from hubensemble.data.validate import too_few_classes

    assert str(too_few_classes("t", names, len(names) + 1)) == said


@pytest.mark.parametrize("unused, said", [
    (["c"], "no label uses 'c': drop it from the class names (renumbering the labels after "
     "it), or keep it as a class the model never trains on"),
    (["c", "d"], "drop them from the class names (renumbering the labels after them), or keep "
     "them as classes the model never trains on")])
def test_class_names_no_label_uses_are_counted_in_words(unused, said):
    from hubensemble.data.validate import too_few_per_class

    counts = {"a": 3, "b": 3, **{c: 0 for c in unused}}
    error = too_few_per_class(counts, 2, elsewhere={c: {} for c in unused})
    assert said in str(error), error


@pytest.mark.parametrize("skipped, said", [
    (1, "(1 file was skipped, e.g. s0.png: unreadable)"),
    (2, "(2 files were skipped, e.g. s0.png: unreadable)")])
def test_a_short_class_counts_the_files_skipped_in_words(skipped, said):
    """A Task whose loader skipped files (no class folders): its short class's refusal."""
    task = Task(name="t", source="python", class_names=["a", "b"],
                train=Split(EIGHT_BIT[:3], np.array([0, 0, 1])),
                skipped=[(f"s{i}.png", "unreadable") for i in range(skipped)])
    with pytest.raises(DataError) as e:
        validate_task(task)
    assert said in str(e.value), e.value


@pytest.mark.parametrize("extra, said", [
    (["z"], "/d/val has a class folder 'z' that the train folder does not have; every class "
     "needs training images (add train/z/ or remove the folder)"),
    (["y", "z"], "/d/val has class folders 'y', 'z' that the train folder does not have; every "
     "class needs training images (add train/y/ and the others, or remove those folders)")])
def test_class_folders_without_training_ones_are_counted_in_words(extra, said):
    from hubensemble.data.folder import _without_training

    assert str(_without_training("/d/val", extra)) == said


@pytest.mark.parametrize("files, said", [
    (1, "no readable images under /d; the 1 file was unreadable, e.g. /d/a/0.png: "),
    (3, "no readable images under /d; all 3 files were unreadable, e.g. /d/a/0.png: ")])
def test_a_folder_of_unreadable_files_counts_them_in_words(files, said):
    from hubensemble.data.folder import _empty_error

    skipped = [(f"/d/a/{i}.png", "unreadable: not an image") for i in range(files)]
    assert str(_empty_error("/d", skipped)).startswith(said)


def test_classes_lost_to_skipped_files_are_counted_in_words():
    """A class folder of 1 file, and the examples a carving would have given, each counted:
    "has 1 file", "1 validation example and 1 test example", "and 1 more such class
    folder" (each said "file(s)", "example(s)", "class folder(s)")."""
    from hubensemble.data.validate import lost_to_skips

    records = {f"c{i}": {"folder": f"/d/c{i}", "files": 1,
                         "skipped": [(f"/d/c{i}/0.png", "unreadable")]} for i in range(6)}
    records["carved"] = {"folder": "/d/carved", "files": 5, "carve": {"val": 1, "test": 1},
                         "skipped": [(f"/d/carved/{i}.png", "unreadable") for i in range(3)]}
    said = str(lost_to_skips({"train": records}, lambda split, name: False))
    assert "class 'c0' has no training example: its folder /d/c0/ has 1 file, 1 skipped" in said
    assert "; and 2 more such class folders;" in said, said
    said = str(lost_to_skips({"train": dict(list(records.items())[1:])},
                             lambda split, name: False))
    assert "; and 1 more such class folder;" in said, said
    only = str(lost_to_skips({"train": {"carved": records["carved"]}}, lambda s, n: False))
    assert ("its 5 files would have given it 1 validation example and 1 test example) (repair"
            in only), only


@pytest.mark.parametrize("images, labels, said", [
    (1, 2, "train: 1 image but 2 labels; they must match one to one"),
    (2, 1, "train: 2 images but 1 label; they must match one to one")])
def test_a_split_whose_counts_differ_is_counted_in_words(images, labels, said):
    """validate_task's check of a Split changed after it was made (its labels replaced)."""
    split = Split(EIGHT_BIT[:2], LABELS[:2])
    split.images, split.labels = EIGHT_BIT[:images], LABELS[:labels]
    with pytest.raises(DataError) as e:
        validate_task(Task(name="t", source="python", class_names=["a", "b", "c"], train=split))
    assert str(e.value) == said


@pytest.mark.parametrize("used, said", [
    ([0, 2], "but 1 of them has no example in any split (1; the labels used are 0, 2)"),
    ([0, 3], "but 2 of them have no example in any split (1, 2; the labels used are 0, 3)")])
def test_unused_class_indices_are_counted_with_their_verb(used, said):
    from hubensemble.data.validate import index_names

    with pytest.raises(DataError) as e:
        index_names({"train": np.array(used)}, what="w", fix="f")
    assert said in str(e.value), e.value


@pytest.mark.parametrize("x, y, said", [
    (2, [1], "x_test has 2 images but y_test has 1 label; they must match one to one"),
    (1, [1, 0], "x_test has 1 image but y_test has 2 labels; they must match one to one")])
def test_an_npz_whose_counts_differ_is_counted_in_words(tmp_path, x, y, said):
    spec = save_npz(tmp_path / "d.npz", x_test=EIGHT_BIT[:x], y_test=y)
    with pytest.raises(DataError) as e:
        load_test_set(spec)
    assert said in str(e.value), e.value


@pytest.mark.parametrize("value, text", [(float("inf"), "inf"), (float("-inf"), "-inf"),
                                         (float("nan"), "nan"), (10**400, "1e400")],
                         ids=["inf", "-inf", "nan", "1e400"])
def test_every_float_option_refuses_inf_nan_and_beyond_a_float_saying_finite(
        value, text, capsys):
    """`--max-gflops 1e400` (float() reads it as inf), inf and nan were refused as "must be a
    number > 0", which they look like; Python's 10**400 stopped with float()'s OverflowError.
    Every float option of every command and stage function refuses them, in words saying
    finite wherever its range leaves a side open (a closed one, [0, 1), says it already)."""
    from hubensemble import options
    from hubensemble.cli import build_parser
    from hubensemble.pipeline import FitOptions

    floats = [o for o in options.OPTIONS if o.type is float]
    assert {"max_gflops", "bootstrap", "distill_lr", "val_fraction"} <= {o.name for o in floats}
    for o in floats:
        closed = o.minimum is not None and o.maximum is not None
        words = (rf"a number in \[{o.minimum:g}, {o.maximum:g}\)" if closed else
                 rf"a number [<>]=? ?{o.minimum:g} and finite")
        for command in o.commands:
            flag = o.settings(command)["flags"][0]
            with pytest.raises(SystemExit):
                build_parser().parse_args([*{"merge": ["rank"]}.get(command, []), command,
                                           f"{flag}={text}"])  # -inf: no flag
            assert re.search(rf"argument {flag}: must be {words}, got '{text}'",
                             capsys.readouterr().err), (command, flag)
        for function in o.used_by:
            with pytest.raises(options.OptionError,
                               match=rf"^{o.kw} must be {words}( \(or None\))?, got "):
                options.check_keywords(function, {o.kw: value})
        if o.record == "fit":
            with pytest.raises(options.OptionError, match=rf"^{o.name} must be {words}"):
                FitOptions(**{o.name: value})


@pytest.mark.parametrize("keywords, words", [
    ({"restart": "no"}, "fit() restart must be True or False, got str 'no'"),
    ({"progress": None}, "fit() progress must be True or False, got NoneType None"),
    ({"use_cache": 1}, "fit() use_cache must be True or False, got int 1"),
    ({"options": {"top_k": 3}}, "fit() options must be a FitOptions or None, got dict "
                                "{'top_k': 3}; pass them as keywords, fit(…, top_k=3), or "
                                "options=FitOptions(top_k=3)"),
    ({"data_args": {"sed": 1}}, "fit() data_args has no field 'sed' (did you mean seed?)"),
    ({"data_args": 3}, "fit() data_args must be a DataArgs, a dict of its fields or None, got "
                       "int 3; pass the data options as keywords, fit(…, flip=False, "),
])
def test_fits_own_arguments_of_another_type_are_refused_naming_them(
        tmp_path, keywords, words):
    """fit(restart='no') (a str, so true) discarded the run's results; a dict of options or
    data_args stopped in dataclasses.replace ("replace() should be called on dataclass
    instances"). Each is refused before the run folder, naming the argument; numpy's bool
    is a bool (the next fit's refusal is its catalogue's, a missing file)."""
    import hubensemble
    from hubensemble.errors import CatalogueError

    out = tmp_path / "run"
    with pytest.raises(TypeError) as refused:
        hubensemble.fit(str(tmp_path / "c.yaml"), "sklearn:digits", out, **keywords)
    assert str(refused.value).startswith(words), str(refused.value)
    assert not out.exists()
    with pytest.raises(CatalogueError):
        hubensemble.fit(str(tmp_path / "c.yaml"), "sklearn:digits", out, restart=np.True_,
                        progress=np.False_)


def test_alternative_selection_rules_typed_together_in_fit_are_refused_at_once(tmp_path):
    """The command line takes one of --top-k, --threshold and --greedy (an argparse group);
    fit(top_k=5, threshold=0.1) selected by the threshold alone, top_k only changing rank's
    key, and fit(threshold=0.1, greedy=True) was refused by rank, after the run folder was
    made and the data loaded. Each is refused as typed, naming them; None and False are
    none typed (a FitOptions built by the command line holds every default: not checked)."""
    import hubensemble
    from hubensemble import options
    from hubensemble.errors import CatalogueError
    from hubensemble.pipeline import FitOptions

    def fit(**keywords):
        hubensemble.fit(str(tmp_path / "c.yaml"), "sklearn:digits", tmp_path / "run",
                        **keywords)

    with pytest.raises(options.OptionError, match=r"^choose one selection rule: top_k=5 or "
                                                  r"threshold=0\.1, not both; leave the other"):
        fit(top_k=5, threshold=0.1)
    with pytest.raises(options.OptionError, match=r"^choose one selection rule: threshold=0\.1"
                                                  r" or greedy=True, not both"):
        fit(threshold=0.1, greedy=True)
    with pytest.raises(options.OptionError, match=r"top_k=3 or threshold=0\.1 or greedy=True"
                                                  r", not more than one; leave the others out"):
        fit(top_k=3, threshold=0.1, greedy=True)
    # Each by its own rule first (a new-user check: top_k=0 was told "choose one rule").
    with pytest.raises(options.OptionError, match=r"^top_k must be an integer >= 1, got 0"):
        fit(top_k=0, greedy=True)
    assert not (tmp_path / "run").exists()
    for alone in (dict(threshold=0.1, greedy=False), dict(top_k=3, greedy=False)):
        with pytest.raises(CatalogueError):  # past the options: the catalogue is missing
            fit(**alone)
    assert FitOptions(top_k=4, threshold=0.1).threshold == 0.1  # `demo --threshold 0.1`


@pytest.mark.parametrize("corruptions, words", [
    ("gausian_noise", "corruptions: unknown corruption 'gausian_noise' (did you mean "
                      "gaussian_noise?); choose from gaussian_noise, "),
    (["contrast", "fog"], "corruptions: unknown corruption 'fog'; choose from "),
    (3, "corruptions: unknown corruption 3; choose from "),
])
def test_fits_corruption_names_are_checked_before_its_run_folder(tmp_path, corruptions, words):
    """fit(corruptions='gausian_noise') ran rank, the sweep, the ensemble and the export
    before its evaluate stage refused the name (and corruptions=3 stopped there with "'int'
    object is not iterable"): they are checked by evaluate's rule before the run folder."""
    import hubensemble
    from hubensemble.options import OptionError

    with pytest.raises(OptionError) as refused:
        hubensemble.fit(str(tmp_path / "c.yaml"), "sklearn:digits", tmp_path / "run",
                        corruptions=corruptions)
    assert str(refused.value).startswith(words), str(refused.value)
    assert not (tmp_path / "run").exists()


def test_fit_options_of_numpy_values_key_the_stages_as_pythons_do():
    """FitOptions(top_k=np.int64(3)) keyed the stages otherwise than top_k=3, so a fit
    resumed with the values typed the other way was refused; modules=np.array([...])
    stopped in the check ("The truth value of an array with more than one element is
    ambiguous"). They are held as Python's."""
    import json
    import dataclasses

    from hubensemble.pipeline import FitOptions
    from hubensemble.stagerecords import stage_keys

    numpy = FitOptions(top_k=np.int64(3), bootstrap=np.float64(2.5),
                       max_gflops=np.float32(0.5), modules=np.array(["m0", "m1"]),
                       seed=np.uint32(7))
    python = FitOptions(top_k=3, bootstrap=2.5, max_gflops=0.5, modules=["m0", "m1"], seed=7)
    assert stage_keys("c", "d", numpy) == stage_keys("c", "d", python)
    assert json.dumps(dataclasses.asdict(numpy)) == json.dumps(dataclasses.asdict(python))
    assert FitOptions(modules=("m0",)).modules == ["m0"]


def test_an_empty_list_of_modules_is_refused_as_the_command_line_refuses_it(tmp_path):
    """`--modules` takes at least one name (argparse's nargs "+"); fit(modules=[]) was taken
    and tuned every module of the ranking, as if modules were left out. Refused, saying the
    list must not be empty (None: every module), from FitOptions, fit and run_tune."""
    import hubensemble
    from hubensemble.options import OptionError
    from hubensemble.pipeline import FitOptions

    words = "modules must be a non-empty list of strings (or None), got "
    for value in ([], (), np.array([], dtype=str)):
        with pytest.raises(OptionError, match=re.escape(words)):
            FitOptions(modules=value)
    with pytest.raises(OptionError, match=re.escape(words + "[]")):
        hubensemble.fit(str(tmp_path / "c.yaml"), "sklearn:digits", tmp_path / "run",
                        modules=[])
    with pytest.raises(OptionError, match=re.escape(words + "[]")):
        hubensemble.run_tune(tmp_path / "run", modules=[])
    assert not (tmp_path / "run").exists()
    assert FitOptions(modules=["m0"]).modules == ["m0"]


def test_an_option_given_a_huge_integer_is_refused_without_every_digit():
    """A new-user check: fit's refusal of top_k=10**400 (and every option's, `options.check`)
    wrote out its 401 digits. Its first ones and its length now (`text.value_shown`)."""
    from hubensemble import options

    with pytest.raises(options.OptionError) as refused:
        options.check("max_gflops", 10 ** 400)
    assert str(refused.value).endswith("got 10000000… (401 digits)"), refused.value
    assert len(str(refused.value)) < 120
