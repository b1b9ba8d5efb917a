"""Export: signatures, a hubensemble-free reload, bytes input, weights, EnsembleLayer, predict."""

import contextlib
import functools
import io
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from packaging.version import Version

from conftest import cpu_bounded, png_of_size
from hubensemble import candidate, ensemble, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.lockwords import command_line
from hubensemble.errors import HubensembleError, RunError
from hubensemble.export import (EnsembleLayer, EvalResize, ExportMember, check_reload,
                                export_ensemble, format_predictions, max_abs_difference,
                                predict, read_metadata, save_export)
from hubensemble.export.metadata import variables_digest
from hubensemble.fileio import atomic_write_json, read_json
from hubensemble.hub import HubLayer
from hubensemble.hyperrule import HParams, get_profile
from hubensemble.rundir import DataArgs, Run

QUICK = get_profile("quick")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
# (module, --keep-weights, ensemble weight): one member is exported from a module with a fixed
# input size and [-1, 1] inputs, one was tuned without keeping its weights.
MEMBERS = [("gen", "all", 0.5), ("fixed", "all", 0.3), ("drop", "none", 0.2)]
TOL = 1e-5


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def specs(module_factory):
    return {
        "gen": ModuleSpec(name="gen", handle=module_factory("export_gen", seed=1, l2=1e-3),
                          family="generalist"),
        "fixed": ModuleSpec(name="fixed", handle=module_factory("export_fixed", seed=2, width=6),
                            input_size=(24, 24), value_range="-1,1"),
        "drop": ModuleSpec(name="drop", handle=module_factory("export_drop", seed=3,
                                                              dropout=0.2)),
    }


def member_hparams(i):
    return HParams(**QUICK.scale({"lr": 0.5, "steps": 10000, "dropout": 0.1}), seed=20 + i)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, specs, digits):
    """A run as tune and ensemble leave it: three candidates (one without weights) and an
    ensemble.json whose members are all three, with unequal weights."""
    path = tmp_path_factory.mktemp("export") / "run"
    run = Run(path)
    run.attach_task(digits, DataArgs(spec="sklearn:digits"))
    run.update(modules={n: s.to_json() for n, s in specs.items()})
    for i, (name, keep, _) in enumerate(MEMBERS):
        entry = tune.PlanEntry(i, tune.trial_id("default", i, name), name, member_hparams(i))
        record = tune.run_entry(entry, specs[name], digits, run, profile=QUICK,
                                keep_weights=keep)
        assert record["status"] == "ok", record["reason"]
    ensemble.run_ensemble(path, budget=3)
    # Greedy selection may keep fewer members; the export must handle all three paths.
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    data["members"] = [
        {"trial": t, "module": cands[t].module, "hparams": cands[t].hparams, "weight": w,
         "handle": cands[t].handle, "seed": cands[t].seed}
        for t, w in ((tune.trial_id("default", i, m[0]), m[2]) for i, m in enumerate(MEMBERS))]
    atomic_write_json(run.ensemble_json, data)
    return path


@pytest.fixture(scope="module")
def exported(run_dir, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("served") / "model"
    result = export_ensemble(run_dir, out, task=digits, progress=False)
    return result, str(out)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[1])


def as_float(images):
    return np.asarray(images, np.float32) / 255.0


def weighted_probs(run_dir, split, trials=None):
    """The weighted average of the members' own probabilities, as tune wrote them."""
    members = read_json(os.path.join(run_dir, "ensemble.json"))["members"]
    if trials is not None:
        members = [m for m in members if m["trial"] in trials]
    total = sum(m["weight"] for m in members)
    return sum(m["weight"] / total * np.load(os.path.join(
        run_dir, "candidates", m["trial"], f"{split}_probs.npy")).astype(np.float64)
        for m in members)


def serving(loaded, images):
    return loaded.signatures["serving_default"](images=tf.constant(images, tf.float32))


def picture(digits, i, hw):
    """A digit enlarged to hw, uint8 [h, w, 3] (real content, so classes differ)."""
    img = tf.image.resize(digits.test.images[i].astype(np.float32), hw, method="bilinear")
    return np.clip(np.round(img.numpy()), 0, 255).astype(np.uint8)


def encode(img, fmt):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def pillow_rgb(data):
    """Pillow's pixels of an encoded RGB image (the first frame): an independent decoder
    whose pixels the decode policy reproduces exactly (JPEG included: the same IDCT)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------ the export

SCRIPT = """
import sys
import zlib
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
x = tf.constant(np.load(sys.argv[2]))
np.save(sys.argv[3], model.signatures["serving_default"](images=x)["probabilities"].numpy())
np.save(sys.argv[4], model(x).numpy())
leaked = sorted(m for m in sys.modules if m.split(".")[0] == "hubensemble")
assert not leaked, leaked
print("loaded without hubensemble")
print(sys.argv[5], flush=True)
from tensorflow.python.tools.saved_model_cli import main
sys.argv = ["saved_model_cli", "show", "--all", "--dir", sys.argv[1]]
main()
"""

#: Where SCRIPT's output turns from its own lines to saved_model_cli's.
CLI_FOLLOWS = "--- saved_model_cli show --all ---"


@pytest.fixture(scope="module")
def launched(exported, digits, tmp_path_factory):
    """A Python without hubensemble that loads the export and runs it, then `saved_model_cli
    show --all` on it (the `saved_model_cli` command's own main(), which its console script
    calls, in that process: a second process spent 5 s of CPU importing TensorFlow again),
    run in the background while the in-process tests go on (most of its time is TensorFlow's
    import) -> (result(name) -> (exit code, stdout, stderr) of "plain" (SCRIPT's own lines)
    or "cli" (saved_model_cli's), folder)."""
    folder = tmp_path_factory.mktemp("subprocesses")
    np.save(folder / "x.npy", as_float(digits.val.images[:40]))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = cpu_bounded([sys.executable, "-c", SCRIPT, exported[1], folder / "x.npy",
                       folder / "p.npy", folder / "c.npy", CLI_FOLLOWS], 120)
    with open(folder / "out", "wb") as out, open(folder / "err", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=folder, env=env)

    def result(name):
        code = proc.wait()  # bounded by its CPU time (conftest.cpu_bounded)
        plain, _, cli = (folder / "out").read_text().partition(CLI_FOLLOWS + "\n")
        return code, {"plain": plain, "cli": cli}[name], (folder / "err").read_text()

    yield result, folder
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_export_is_the_weighted_average_of_the_members(exported, loaded, run_dir, digits,
                                                       launched):
    result, _ = exported
    for split in ("val", "test"):
        images = as_float(digits.split(split).images)
        out = serving(loaded, images)
        probs = out["probabilities"].numpy()
        # The members' own probabilities (tune.predict_probs at tuning time), weighted as in
        # ensemble.json; the member tuned without weights was retrained to the same model.
        assert np.abs(probs - weighted_probs(run_dir, split)).max() <= TOL
        np.testing.assert_array_equal(out["class_ids"].numpy(), probs.argmax(1))
        assert out["class_ids"].dtype == tf.int64 and probs.dtype == np.float32
    sources = {m["module"]: m["source"] for m in result.members}
    assert sources == {"gen": "tuned weights", "fixed": "tuned weights",
                       "drop": "retrained on train (weights not kept)"}
    assert [m["weight"] for m in result.members] == pytest.approx([0.5, 0.3, 0.2])
    assert result.skipped == [] and result.max_abs_diff <= TOL


def test_serve_members_gives_each_members_own_probabilities(exported, loaded, run_dir,
                                                            digits):
    _, path = exported
    meta = read_json(os.path.join(path, "assets", "hubensemble.json"))
    images = as_float(digits.split("val").images)
    out = loaded.signatures["serve_members"](images=tf.constant(images))
    members = out["member_probabilities"].numpy()
    assert members.shape == (len(images), len(meta["members"]), 10)
    # Its ensemble probabilities are serving_default's (one call gives evaluate both).
    served = serving(loaded, images)["probabilities"]
    assert np.abs(out["probabilities"].numpy() - served.numpy()).max() <= 1e-6
    for j, m in enumerate(meta["members"]):
        own = np.load(os.path.join(run_dir, "candidates", m["trial"], "val_probs.npy"))
        assert np.abs(members[:, j] - own).max() <= TOL
    ens = read_json(os.path.join(run_dir, "ensemble.json"))
    assert meta["best_single"] == ens["val"]["best_single"]["trial"]


@pytest.mark.parametrize("signature", ["serving_default", "serve_members", "__call__",
                                       "__call__ training"])
def test_pixels_outside_0_1_or_not_finite_fail_the_request(loaded, digits, signature):
    """A new-user check: 0..255 floats (the usual TF Serving client's mistake) gave
    confident classes, and a NaN pixel all-NaN probabilities with class id 0. __call__ with
    training=True (fine-tuning the export as a hub module) returned probabilities; the
    message counted a NaN as 0 in the finite range ("from -0.5 to 0", all-NaN "from 0 to 0")."""
    from hubensemble.export.saved import PIXEL_RANGE_SLACK

    images = as_float(digits.split("val").images[:4])

    def call(x):
        x = tf.constant(x, tf.float32)
        if signature.startswith("__call__"):
            return loaded(x, training=signature.endswith("training"))
        return loaded.signatures[signature](images=x)["probabilities"]

    def one_nan(x):
        return np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x)

    # In range, and within the slack a client's own bicubic resize overshoots by: served.
    edge = images.copy()
    edge[0, 0, 0, 0], edge[1, 0, 0, 0] = -PIXEL_RANGE_SLACK / 2, 1 + PIXEL_RANGE_SLACK / 2
    assert np.isfinite(call(edge).numpy()).all()
    cases = {"0..255": (images * 255.0, r"got values from 0 to 255\b.* and 0 not finite"),
             "[-1, 1]": (images * 2.0 - 1.0, r"got values from -1 to 1\b.* and 0 not finite"),
             "NaN": (one_nan(images), r"and 1 not finite"),
             "0.7 and a NaN": (one_nan(np.full_like(images, 0.7)),
                               r"got values from 0\.7 to 0\.7 \(the finite ones\) and 1 not"),
             "-0.5 and a NaN": (one_nan(np.full_like(images, -0.5)),
                                r"got values from -0\.5 to -0\.5 \(the finite ones\) and 1 "),
             "all NaN": (np.full_like(images, np.nan),
                         rf"got no finite value \({images.size} not finite\)"),
             "inf": (np.full_like(images, np.inf), r"got no finite value \(")}
    for name, (x, said) in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            call(x)
        text = str(err.value)
        assert "hubensemble-input[range]: `images` must be float32 pixels in [0, 1]" in text, name
        assert re.search(said, text, re.S), (name, text[:600])


@pytest.mark.parametrize("signature", ["serving_default", "serve_members"])
def test_images_of_another_channel_count_fail_the_request_naming_the_shape(loaded, digits,
                                                                           signature):
    """A new-user check: greyscale [N, H, W, 1] got TensorFlow's "input depth must be evenly
    divisible by filter depth: 1 vs 3" from inside a member, where out-of-range pixels get
    a clear "hubensemble-input[range]". (The reloaded `__call__` refuses such a shape in
    Python already, listing the TensorSpecs it takes.)"""
    images = as_float(digits.split("val").images[:4])

    def call(x):
        return loaded.signatures[signature](images=tf.constant(x, tf.float32))["probabilities"]

    for x, shape in ((images[..., :1], [4, 8, 8, 1]),
                     (np.concatenate([images, images[..., :1]], -1), [4, 8, 8, 4])):
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            call(x)
        text = str(err.value)
        assert ("hubensemble-input[shape]: `images` must be float32 [N, H, W, 3] (RGB; repeat "
                "a grey channel into 3" in text), text[:600]
        assert f"got shape {shape}".replace(",", "") in text, text[:600]
        assert "filter depth" not in text
    # Grey repeated into 3 channels, as the message says, is served.
    assert np.isfinite(call(np.repeat(images[..., :1], 3, -1)).numpy()).all()


def test_metadata_asset_and_run_record(exported, run_dir, specs, digits):
    result, path = exported
    meta = read_json(os.path.join(path, "assets", "hubensemble.json"))
    assert meta == read_metadata(path)
    assert meta["class_names"] == digits.class_names and meta["num_classes"] == 10
    ens = read_json(os.path.join(run_dir, "ensemble.json"))
    assert meta["metrics"]["val"] == ens["val"] and meta["metrics"]["test"] == ens["test"]
    assert "test_before_retraining" not in meta["metrics"] and result.test is None
    assert [m["trial"] for m in meta["members"]] == [m["trial"] for m in ens["members"]]
    for m, (name, _, w) in zip(meta["members"], MEMBERS):
        assert m["module"] == name and m["handle"] == specs[name].handle
        assert m["weight"] == pytest.approx(w)
        assert HParams.from_json(m["hparams"]) == member_hparams(MEMBERS.index((name, _, w)))
    assert {m["module"]: m["eval_size"] for m in meta["members"]} == {
        "gen": 32, "fixed": 24, "drop": 32}  # quick caps at 32; a fixed input size wins
    # the record is the distribution's PEP 440 version ("2.22.0rc0"), TensorFlow's own
    # __version__ is not on a pre-release ("2.22.0-rc0"): the same release either way
    assert Version(meta["versions"]["tensorflow"]) == Version(tf.__version__)
    assert meta["reload_check"]["max_abs_diff"] <= TOL
    # A digest a user can recompute from the files (docs/export.md, "Reproducible bytes").
    assert meta["digest"] == {"variables_sha256": variables_digest(path)}
    assert re.fullmatch(r"[0-9a-f]{64}", meta["digest"]["variables_sha256"])
    recorded = Run(run_dir).meta()["export"]
    assert recorded["path"] == result.path and recorded["max_abs_diff"] == result.max_abs_diff


def test_serve_bytes_matches_serving_default_on_the_decoded_images(loaded, digits):
    png = encode(picture(digits, 0, (40, 30)), "PNG")
    jpeg = encode(picture(digits, 1, (21, 27)), "JPEG")
    bmp = encode(picture(digits, 2, (16, 16)), "BMP")
    gif = encode(picture(digits, 3, (9, 13)), "GIF")
    out = loaded.signatures["serve_bytes"](image_bytes=tf.constant([png, jpeg, bmp, gif]))
    probs = out["probabilities"].numpy()
    assert probs.shape == (4, 10)
    decoded = [pillow_rgb(b) for b in (png, jpeg, bmp, gif)]
    for row, image in zip(probs, decoded):
        want = serving(loaded, as_float(image)[None])["probabilities"].numpy()[0]
        assert np.abs(row - want).max() <= TOL
    ids = out["class_ids"].numpy()
    np.testing.assert_array_equal(ids, probs.argmax(1))
    assert [n.decode() for n in out["class_names"].numpy()] == [digits.class_names[i]
                                                                for i in ids]
    # Different images, different answers: the bytes really are decoded.
    assert np.abs(probs[0] - probs[1]).max() > 10 * TOL
    empty = loaded.signatures["serve_bytes"](image_bytes=tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 10)
    # An empty batch of pixels: an empty answer from every signature and __call__ (the
    # members share one inner function whose cond skips them on 0 images).
    none = tf.zeros([0, 20, 20, 3], tf.float32)
    assert serving(loaded, none)["probabilities"].shape == (0, 10)
    assert loaded.signatures["serve_members"](images=none)[
        "member_probabilities"].shape == (0, len(MEMBERS), 10)
    assert loaded(none, training=False).shape == (0, 10)


def test_serve_bytes_names_the_image_of_a_batch_it_cannot_decode(loaded, digits):
    """One TIFF or empty element failed a whole serve_bytes request (TF Serving: HTTP 400)
    with "a TIFF file; …" and no word of which of the request's images it was."""
    from hubensemble.data.decode import op_error_reason

    png = encode(picture(digits, 0, (20, 20)), "PNG")
    tiff = encode(picture(digits, 1, (20, 20)), "TIFF")
    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    serve = loaded.signatures["serve_bytes"]
    for batch, words in (
            ([png, tiff, png], "hubensemble-decode[unsupported]: image_bytes[1] (of 3): a TIFF "
                               "file; serve_bytes decodes JPEG, PNG, GIF, BMP and WebP only"),
            ([png, jpeg, b""], "hubensemble-decode[invalid]: image_bytes[2] (of 3): an empty "
                               "file (0 bytes)"),
            ([tiff], "hubensemble-decode[unsupported]: a TIFF file; serve_bytes decodes")):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant(batch))
        assert op_error_reason(caught.value).startswith(words), op_error_reason(caught.value)
    # Alone, an image damaged past its header fails in a request's words, without position.
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        serve(image_bytes=tf.constant([jpeg[:200]]))
    assert op_error_reason(caught.value).startswith(
        "hubensemble-decode[invalid]: a JPEG file that cannot be decoded"), caught.value


def _bad_crc(png):
    """`png` with a byte of its first IDAT chunk's data changed (its CRC then fails)."""
    at = png.index(b"IDAT") + 6
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1:]


def test_serve_bytes_names_an_image_damaged_past_its_header(loaded, digits):
    """A cut JPEG, or a PNG with a bad CRC or a cut IDAT, among a request's images failed
    the request in TensorFlow's words with no position (`jpeg::Uncompress failed. Invalid
    JPEG data or crop window.`): a client with 32 photos had to send them one by one. The
    position is now named, with how many fail; the good images keep their pixels."""
    from hubensemble.data.decode import op_error_reason

    png = encode(picture(digits, 0, (20, 20)), "PNG")
    big = encode(picture(digits, 3, (60, 60)), "PNG")
    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    serve = loaded.signatures["serve_bytes"]
    for batch, first, failed, what in (
            ([png, jpeg[:200], png], 1, 1, "a JPEG file"),
            ([png, jpeg, _bad_crc(big), jpeg[:300]], 2, 2, "a PNG file"),
            ([big[:len(big) // 2], png], 0, 1, "a PNG file")):  # a cut IDAT
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant(batch))
        said = op_error_reason(caught.value)
        assert said.startswith(
            f"hubensemble-decode[invalid]: image_bytes[{first}] (of {len(batch)}): {what} "
            "that cannot be decoded (damaged past its header"), said
        assert f"; {failed} of the {len(batch)} images cannot be decoded. The server's log " \
               "has the decoder's own words" in said, said
    for bad in (_bad_crc(big), big[:len(big) // 2]):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant([bad]))  # alone: the same words, no position
        assert op_error_reason(caught.value).startswith(
            "hubensemble-decode[invalid]: a PNG file that cannot be decoded"), caught.value
    # Every good image gets the pixels it had in training (the eager decode policy and
    # resize, as the folder loader's map runs them), to the last bit, as before.
    good = [png, jpeg, big]
    got = serve(image_bytes=tf.constant(good))["probabilities"].numpy()
    alone = np.concatenate([serve(image_bytes=tf.constant([b]))["probabilities"].numpy()
                            for b in good])
    np.testing.assert_allclose(got, alone, atol=1e-6)


def test_export_from_python_keeps_tensorflows_lines_off_stderr_and_a_bare_root_bare(
        run_copy, tmp_path):
    """Two new-user checks, in one process and one export (a TensorFlow import, a data load
    and an export: the second export this test ran took 7 s of CPU):
    export_ensemble from Python (TensorFlow's SavedModel writer logs through absl, which
    calls logging.basicConfig() on a root without handlers) left a root StreamHandler, so the
    next fit printed every INFO record of ours on stderr ("decoding x.jpg: Unsupported marker
    type 0x20", "rank: done before, reused"). Every stage function now lends a bare root
    Python's last resort while it runs, as a run's log block does.
    A notebook that imported TensorFlow before hubensemble (its log level then set too late)
    saw "W… loop_optimizer.cc:934] Skipping loop optimization for Merge node with control
    input: …" at export, from the reload check's first calls: it goes to the log
    (`_tf.native_notices`), as the other native lines do; here to a handler on the
    "hubensemble" logger (INFO, on stdout), the root left bare. Not marked slow, as the
    bare-root check was not: absl's behaviour is what the lowest-bound runs of the non-slow
    tests check. The ensemble is one member of kept weights: the notice (a Merge node of a
    cond in the served graph) comes with one member as with three, and the members to load
    and retrain cost the process more CPU time, for neither check."""
    data = read_json(run_copy / "ensemble.json")
    data["members"] = [{**data["members"][0], "weight": 1.0}]
    atomic_write_json(run_copy / "ensemble.json", data)
    code = f"""if True:
        import logging, sys
        import tensorflow  # before hubensemble, as a notebook may
        from hubensemble import export_ensemble, load_task
        from hubensemble.rundir import Run
        task = load_task("sklearn:digits", progress=False)
        ours = logging.getLogger("hubensemble")
        ours.setLevel(logging.INFO)
        shown = logging.StreamHandler(sys.stdout)
        ours.addHandler(shown)
        export_ensemble({str(run_copy)!r}, {str(tmp_path / 'bare')!r}, task=task,
                        progress=False)
        ours.removeHandler(shown)
        print("the root after the export:", logging.getLogger().handlers, flush=True)
        with Run({str(run_copy)!r}).log_file(create=False):
            logging.getLogger("hubensemble.x").info("ours, for the run's log")
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(cpu_bounded([sys.executable, "-c", code], 600), capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    logged, bare = out.stdout.split("the root after the export:")
    assert bare.strip() == "[]", out.stdout
    assert "ours, for" not in out.stderr
    assert "ours, for the run's log" in (run_copy / "log.txt").read_text()
    assert "loop_optimizer" not in out.stderr, out.stderr
    assert "export: reload check: " in logged and "loop_optimizer" in logged, logged


def test_serve_bytes_names_a_failed_images_own_reason_among_others(loaded, digits):
    """A truncated BMP or an animated WebP among a request's images was called "a BMP file
    that cannot be decoded (damaged past its header …)", where alone it got its own words
    (the decode policy's checks of its header): those words now name it in a request too."""
    from PIL import Image

    from hubensemble.data.decode import op_error_reason

    png = encode(picture(digits, 0, (20, 20)), "PNG")
    bmp = encode(picture(digits, 1, (20, 20)), "BMP")
    frames = [Image.fromarray(picture(digits, i, (32, 32))) for i in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=50)
    animated = buf.getvalue()
    serve = loaded.signatures["serve_bytes"]
    for bad, own in ((bmp[:60], "hubensemble-decode[invalid]: {at}a truncated BMP file (its "
                                "pixels end at byte 1254, the file has 60)"),
                     (animated, "hubensemble-decode[unsupported]: {at}an animated WebP file; "
                                "serve_bytes decodes still WebP images only")):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant([bad]))
        assert op_error_reason(caught.value).startswith(own.format(at="")), caught.value
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant([png, bad, png[:100]]))
        said = op_error_reason(caught.value)
        assert said.startswith(own.format(at="image_bytes[1] (of 3): ")), said
        assert said.endswith("; 2 of the 3 images cannot be decoded."), said  # no "send it
        # alone for the decoder's words": alone it gets these same words
        assert "damaged past its header" not in said, said


def _with_jpeg_size(data, width, height):
    """`data` (a JPEG) with its frame header saying `width` x `height` (its pixels cut short)."""
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4:]


_png_of_size = png_of_size  # (conftest's)


def _too_large(digits, kind):
    """(the refusal's name of it, bytes) of a `kind` image past the decoders' size: a JPEG of
    64000 x 65000 pixels, a PNG of 60000 x 10000, or test_decode_policy.small_bombs' GIF and
    WebP files (lossy, lossless, VP8X) of 13400 x 13400, each a few KB (its pixels cut short)."""
    if kind == "JPEG":
        jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
        return "a JPEG file of 64000 x 65000", _with_jpeg_size(jpeg, 64000, 65000)
    if kind == "PNG":
        return "a PNG file of 60000 x 10000", _png_of_size(60000, 10000)
    from test_decode_policy import small_bombs

    fmt, big = small_bombs()[TOO_LARGE.index(kind) - 2]
    return f"a {fmt} file of 13400 x 13400", big


TOO_LARGE = ["JPEG", "PNG", "GIF", "WebP-lossy", "WebP-lossless", "WebP-VP8X"]


@pytest.mark.parametrize("kind", TOO_LARGE)
def test_serve_bytes_names_an_image_too_large_to_decode_by_its_size(loaded, digits, kind):
    """A JPEG of 64000 x 65000 pixels or a PNG of 60000 x 10000 is refused by TensorFlow's
    decoder for its size ("Image too large" in its log, "Invalid JPEG data" in its error),
    and serve_bytes called it "damaged past its header"; a GIF or WebP was decoded at any
    size (TensorFlow's decoders of those have no bound: a 7.5 KB WebP of 14000 x 14000 held
    6.7 GB in the server), and these headers cut short were "damaged past its header" too.
    Each is now named by its size, with the way on, alone or in a request (a GIF or WebP is
    refused by its header's size before it is decoded, in the words of the JPEG's refusal)."""
    from hubensemble.data.decode import op_error_reason

    what, big = _too_large(digits, kind)
    png = encode(picture(digits, 0, (20, 20)), "PNG")
    serve = loaded.signatures["serve_bytes"]
    for batch, where in (([png, big], "image_bytes[1] (of 2): "), ([big], "")):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant(batch))
        said = op_error_reason(caught.value)
        assert said.startswith(f"hubensemble-decode[invalid]: {where}{what} pixels, too "
                               "large to decode"), said
        assert "Shrink it first" in said and "damaged" not in said, said
        assert "Send an image alone" not in said, said  # alone it gets the same words


def test_python_decode_names_a_jpeg_or_png_too_large_by_its_size_and_a_cut_one_damaged(
        loaded, digits):
    """The Python paths (the folder loader, predict, evaluate) name a JPEG or PNG too large
    to decode as serve_bytes does: they said "a damaged JPEG file (jpeg::Uncompress failed.
    Invalid JPEG data …)" (a GIF's and WebP's: test_decode_policy). A file cut short keeps
    its name, in both: its header gives no size past the decoder's limit."""
    from hubensemble.data.decode import UnreadableImage, decode_bytes

    for kind in ("JPEG", "PNG"):
        what, big = _too_large(digits, kind)
        with pytest.raises(UnreadableImage) as caught:
            decode_bytes(big)
        assert str(caught.value).startswith(f"{what} pixels, too large to decode"), caught.value
    # A PNG whose first chunk is no IHDR is damaged, whatever its bytes 16..24 say.
    with pytest.raises(UnreadableImage, match="^a damaged PNG file"):
        decode_bytes(b"\x89PNG\r\n\x1a\n this is not a picture at all")
    png = encode(picture(digits, 0, (20, 20)), "PNG")
    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="damaged past its header"):
        loaded.signatures["serve_bytes"](image_bytes=tf.constant([png, jpeg[:200]]))


def serving_protos():
    """The PredictionLog class of tensorflow_serving/apis (not installed), made from its
    .proto files' field numbers in a descriptor pool of its own, with TensorFlow's
    TensorProto: what TF Serving parses its warmup file with (tensorflow-serving-api 2.21.0's
    own PredictionLog, installed apart, parsed the file alike: export/warmup.py says why it is
    not a test extra).

    Made once, with the class of every message of the pool (PredictLog, TensorProto's
    TensorShapeProto, ...) kept alive beside it (`_serving_messages`' cache): protobuf's upb
    module before 4.25.0 does not keep a sub-message's class of a pool of its own alive, so
    reading `record.predict_log` after a garbage collection freed it read freed memory and
    ended Python with a segmentation fault (protobuf 4.22.0 to 4.24.4 here;
    protocolbuffers/protobuf#12047). TensorFlow was not the cause."""
    return _serving_messages()["tensorflow.serving.PredictionLog"]


@functools.lru_cache(maxsize=None)
def _serving_messages():
    """{full name: class} of every message of `serving_protos`' pool (made once, kept)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow.core.framework import tensor_pb2

    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(fd):
        for dep in fd.dependencies:
            add(dep)
        if fd.name not in added:
            proto = descriptor_pb2.FileDescriptorProto()
            fd.CopyToProto(proto)
            pool.Add(proto)
            added.add(fd.name)

    add(tensor_pb2.DESCRIPTOR)
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="serving_test.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[tensor_pb2.DESCRIPTOR.name])

    def message(name, *fields, nested=()):
        m = file.message_type.add(name=name)
        m.nested_type.extend(nested)
        for fname, number, ftype, tname, label in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if tname:
                f.type_name = tname

    one, many = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("ModelSpec", ("name", 1, F.TYPE_STRING, "", one),
            ("signature_name", 3, F.TYPE_STRING, "", one))
    entry = descriptor_pb2.DescriptorProto(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=one)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=one,
                    type_name=".tensorflow.TensorProto")
    message("PredictRequest",
            ("model_spec", 1, F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec", one),
            ("inputs", 2, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry",
             many), nested=[entry])
    message("PredictLog",
            ("request", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest", one))
    message("PredictionLog",
            ("predict_log", 6, F.TYPE_MESSAGE, ".tensorflow.serving.PredictLog", one))
    pool.Add(file)

    def classes(descriptors):
        for d in descriptors:
            yield message_factory.GetMessageClass(d)
            yield from classes(d.nested_types)

    return {c.DESCRIPTOR.full_name: c for name in added | {file.name}
            for c in classes(pool.FindFileByName(name).message_types_by_name.values())}


def test_the_warmup_records_parse_after_a_garbage_collection():
    """serving_protos' classes outlive a garbage collection: on protobuf 4.22.0 (setup.cfg's
    lower bound) reading a record's predict_log after gc ended Python with a segmentation
    fault (`serving_protos` says why), so test_export died on the oldest releases. There,
    with the classes not held, the second read crashed in 4 runs of 4, so 3 rounds (not 50:
    a collection takes about 0.4 s beside TensorFlow's objects) still show it."""
    import gc

    from hubensemble.export.warmup import prediction_log

    data = prediction_log("serving_default", {"images": np.zeros((1, 4, 4, 3), np.float32)})
    PredictionLog = serving_protos()
    for _ in range(3):
        request = PredictionLog.FromString(data).predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert tf.make_ndarray(request.inputs["images"]).shape == (1, 4, 4, 3)
        gc.collect()


def test_the_warmup_file_is_written_where_python_names_a_folder_by_lone_surrogates(tmp_path):
    """Under LC_ALL=C PYTHONUTF8=0 (a container, a cron job) Python names the folder 'run→c'
    'run\\udce2\\udc86\\udc92c', and the warmup file's writer gave that to TensorFlow, which
    stopped with a UnicodeEncodeError (`fit --out 'run→c'` ended in the export).
    In this UTF-8 process that name reaches the same folder through Python's calls."""
    from hubensemble.export.warmup import write_requests

    requests = [("serving_default", {"images": np.zeros((1, 4, 4, 3), np.float32)})]
    (tmp_path / "plain").mkdir()
    write_requests(tmp_path / "plain" / "w", requests)
    os.mkdir(os.path.join(tmp_path, "run\udce2\udc86\udc92c"))
    write_requests(os.path.join(tmp_path, "run\udce2\udc86\udc92c", "w"), requests)
    assert (tmp_path / "run\u2192c" / "w").read_bytes() == (tmp_path / "plain" / "w").read_bytes()


def test_the_export_holds_a_tf_serving_warmup_file_its_model_runs(exported, loaded):
    """TF Serving warms a model up from SAVED_MODEL/assets.extra/tf_serving_warmup_requests
    (a TFRecord of PredictionLog protos): the export wrote none, so a served ensemble's first
    requests paid TensorFlow's lazy start-up (a new-user check)."""
    path = os.path.join(exported[1], "assets.extra", "tf_serving_warmup_requests")
    assert os.path.isfile(path)
    PredictionLog = serving_protos()
    records = [PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert 1 <= len(records) <= 1000  # TF Serving's limit
    signatures = set()
    for record in records:
        request = record.predict_log.request
        name = request.model_spec.signature_name
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        fn = loaded.signatures[name]
        assert set(inputs) == set(fn.structured_input_signature[1]), name
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        assert out["probabilities"].shape[0] == next(iter(inputs.values())).shape[0] >= 1
        signatures.add(name)
    assert signatures == set(loaded.signatures)  # every signature warmed up
    meta = read_metadata(exported[1])["tf_serving_warmup"]
    assert meta["file"] == "assets.extra/tf_serving_warmup_requests"
    assert sorted(meta["requests"]) == sorted(signatures)
    # A request the model refuses would stop TF Serving loading it: the export checks each.
    from hubensemble.export.warmup import run_warmup

    with pytest.raises(RunError, match=r"warmup request for serving_default fails .*"
                                       r"hubensemble-input\[range\]"):
        run_warmup(loaded, [("serving_default", {"images": np.full((1, 4, 4, 3), 5.0,
                                                                   np.float32)})])


def test_add_warmup_gives_an_export_written_before_the_file_one(exported, tmp_path):
    """An export written before TF Serving's warmup file was has none, and a user who
    upgraded got one only by exporting again (retraining with --retrain-full). add_warmup
    adds it in place, runs it first, leaves the metadata (the export's identity) alone, and
    never replaces a file that is there."""
    import shutil

    from hubensemble.errors import HubensembleError
    from hubensemble.export import add_warmup
    from hubensemble.formats import metadata_path

    old = tmp_path / "old"
    shutil.copytree(exported[1], old)
    shutil.rmtree(old / "assets.extra")
    meta = open(metadata_path(old), "rb").read()
    path = add_warmup(old)
    assert path == str(old / "assets.extra" / "tf_serving_warmup_requests")
    assert open(metadata_path(old), "rb").read() == meta
    PredictionLog = serving_protos()
    records = [PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    size = max(m["eval_size"] for m in read_metadata(old)["members"])
    assert [r.predict_log.request.model_spec.signature_name for r in records] == [
        "serving_default", "serve_bytes", "serve_members"]
    assert tf.make_ndarray(records[0].predict_log.request.inputs["images"]).shape == (
        1, size, size, 3)
    assert sorted(os.listdir(old / "assets.extra")) == ["tf_serving_warmup_requests"]
    # There now (or a user's own): kept as it is.
    (old / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"mine")
    assert add_warmup(old) is None
    assert (old / "assets.extra" / "tf_serving_warmup_requests").read_bytes() == b"mine"
    with pytest.raises(HubensembleError, match=r"holds no export hubensemble wrote"):
        add_warmup(tmp_path)


def test_export_add_warmup_adds_the_file_from_the_command_line(exported, tmp_path, in_process):
    """add_warmup had no command line: a user had to write `python -c "from
    hubensemble.export import add_warmup; ..."`. `hubensemble export --add-warmup MODEL` adds
    the file (no --run); its refusals name the flag there and the function from Python."""
    from hubensemble.export import add_warmup
    from hubensemble.export.adopt import warmup_words
    from hubensemble.lockwords import command_line

    old = tmp_path / "old"
    shutil.copytree(exported[1], old)
    shutil.rmtree(old / "assets.extra")
    code, out, err = in_process("export", "--add-warmup", old)
    assert code == 0, err
    assert (old / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert "added TF Serving's warmup file: " in out + err
    code, out, err = in_process("export", "--add-warmup", old)
    assert code == 0 and "has TF Serving's warmup file already" in out + err, err
    code, out, err = in_process("export")
    assert code == 2 and "export needs --run RUN" in err and "--add-warmup MODEL" in err, err
    code, out, err = in_process("export", "--add-warmup", old, "--run", tmp_path,
                                "--format", "tflite")
    assert code == 2 and "leave out --run, --format" in err, err
    code, out, err = in_process("export", "--add-warmup", tmp_path)
    assert code == 2 and "pass the folder of one to --add-warmup" in err, err
    with pytest.raises(HubensembleError, match="pass the folder of one to add_warmup,"):
        add_warmup(tmp_path)
    assert "export.add_warmup('/srv/m')" in warmup_words("/srv/m")
    with command_line():
        assert warmup_words("/srv/m") == "`hubensemble export --add-warmup /srv/m`"


def test_the_export_is_a_reusable_hub_module(exported, loaded, digits):
    import tensorflow_hub as hub

    images = as_float(digits.val.images[:16])
    want = serving(loaded, images)["probabilities"].numpy()
    assert np.abs(loaded(tf.constant(images)).numpy() - want).max() <= TOL
    trained = loaded(tf.constant(images), training=True).numpy()  # dropout on
    assert trained.shape == want.shape and np.allclose(trained.sum(1), 1.0, atol=1e-5)
    assert len(loaded.trainable_variables) > 0
    assert len(loaded.variables) >= len(loaded.trainable_variables)
    # The member built on an L2-regularised module brings its regularisation loss along.
    losses = [float(fn()) for fn in loaded.regularization_losses]
    assert losses and all(v > 0 for v in losses)
    assert np.abs(hub.load(exported[1])(images).numpy() - want).max() <= TOL
    layer = HubLayer(exported[1])
    assert layer.output_dim == 10
    assert np.abs(layer(images).numpy() - want).max() <= TOL


# ------------------------------------------------------------------------------ failures

@pytest.fixture
def run_copy(run_dir, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("export"))
    return dest


def test_export_shows_its_long_steps_on_the_terminal_unless_quiet(run_copy, in_process):
    """A new-user check: `export --format tflite` ran 15.8 s with an empty stderr (minutes with
    real backbones); only a retraining showed a bar. Now a bar over the members rebuilt and a
    line before each long step, in order; -q shows none of it, RUN/log.txt keeps the lines.
    Its first ~5 s (TensorFlow's import, the data) showed nothing: now a first line comes
    before them (here TensorFlow is imported already, so its place is checked).
    The same command with -q is test_a_full_disk_inside_tensorflows_writer_stops_export_with_
    one_line's, run to its end there (an export of its own here took 9 s of CPU)."""
    code, out, err = in_process("export", "--run", run_copy, "--format", "tflite")
    assert code == 0, err[-3000:]
    # Not retrained: no test figures measured on retrained members (test_fit's
    # test_a_hand_retrain_full_export_prints_its_test_and_fit_keeps_it checks them).
    assert "test, measured" not in out, out
    first = "export: loading TensorFlow and the run's data, then the 3 members of its ensemble"
    steps = [first, "export: rebuild members", "export: writing the SavedModel of 3 members (",
             "export: reload check: loading the SavedModel back", "export: timing serving",
             "export: converting the ensemble to TFLite (quantize none)"]
    assert err.startswith(first + "\n"), err[:500]
    at = [err.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), (at, err[-3000:])
    assert "3/3" in err  # the bar over the members ran to its end
    # Counted nouns (text.counted's rule), not "image(s)" / "size(s)".
    assert re.search(r"in-memory ensemble on \d+ images\n", err), err[-3000:]
    assert re.search(r"at batch sizes \d+(, \d+)+\n", err), err[-3000:]
    log_text = (run_copy / "log.txt").read_text()
    assert all(step in log_text for step in steps[:1] + steps[2:]), log_text[-2000:]
    # Its member without weights (trial.json of this version's training rule) is retrained
    # without test_a_member_retrained_by_a_newer_training_rule_is_warned_of's warning.
    assert "training rule" not in err + log_text, err[-3000:]


def test_a_full_disk_inside_tensorflows_writer_stops_export_with_one_line(
        run_copy, in_process, tmp_path):
    """A new user's check: a full disk while TensorFlow wrote saved_model.pb ended
    export with ResourceExhaustedError's traceback and exit 1, where a full disk met by our
    own writes is one line and exit 2 (its temp folder named by fileio.writer_tag,
    PID_START@HOST). Here no file may grow past the run's largest one, so
    TensorFlow's own writer fails (OutOfRangeError "…; File too large", the same path as
    ENOSPC); Python ignores SIGXFSZ, so the process lives on. The command is
    test_export_shows_its_long_steps_on_the_terminal_unless_quiet's with -q: run again to its
    end, it shows none of those steps (nor the retraining's bar)."""
    import resource

    limit = max(p.stat().st_size for p in run_copy.rglob("*") if p.is_file()) + 4096
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        code, out, err = in_process("export", "--run", run_copy, "--out", tmp_path / "x",
                                    "--format", "tflite", "-q")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert re.fullmatch(r"hubensemble: error: \[Errno 27\] File too large \(\w+Error\): "
                        rf"'{re.escape(str(tmp_path))}/\.tmp-x\.\d+_\d+@[^/]+/\S+'; raise the "
                        r"file size limit \(`ulimit -f`\) or write elsewhere, then run the same "
                        r"command again to resume", last), last
    # no half export, nor the export folder's lock file (removed as its holder ended)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    code, out, err = in_process("export", "--run", run_copy, "--out", tmp_path / "x",
                                "--format", "tflite", "-q")
    assert code == 0, err[-3000:]  # space back: the same command writes it
    assert (tmp_path / "x-tflite" / "model.tflite").is_file()
    assert "export:" not in err and "member" not in err, err[-3000:]  # -q: quiet


def test_a_missing_weights_file_names_the_member_or_is_skipped(run_copy, digits, tmp_path,
                                                               capsys, monkeypatch):
    gen = tune.trial_id("default", 0, "gen")
    missing = run_copy / "candidates" / gen / candidate.WEIGHTS_FILE
    os.unlink(missing)
    out = tmp_path / "model"
    # The run named as `export --run run` from its parent names it: the reason, kept in the
    # export's metadata ("skipped"), said "run/candidates/…", a path of that folder only.
    monkeypatch.chdir(run_copy.parent)
    run_copy = type(run_copy)(run_copy.name)
    with pytest.raises(RunError, match=rf"member 0 \(trial '{gen}'.*weights file .* missing"
                                       r".*, or pass skip_missing=True to export"):
        export_ensemble(run_copy, out, task=digits, progress=False)  # export_ensemble's words
    # The command that redoes the trial names its sweep (a plain `tune --run RUN` runs the
    # default sweep, which left a trial of another sweep undone).
    with command_line(), pytest.raises(RunError, match=r"or pass --skip-missing to export") as e:
        export_ensemble(run_copy, out, task=digits, progress=False)  # the command line's
    # No "(delete RUN/candidates/T first)": tune redoes a trial whose weights file is missing
    # as it is (`Candidate.complete`), so the step was not needed.
    assert " --sweep default` again for it, or pass --skip-missing" in str(e.value), e.value
    assert "delete" not in str(e.value), e.value
    assert not out.exists()

    result = export_ensemble(run_copy, out, task=digits, skip_missing=True, progress=True)
    assert "retrain default-0002-drop" in capsys.readouterr().err  # the retraining bar
    assert [s["trial"] for s in result.skipped] == [gen]
    assert [m["module"] for m in result.members] == ["fixed", "drop"]
    assert [m["weight"] for m in result.members] == pytest.approx([0.6, 0.4])
    model = tf.saved_model.load(str(out))
    probs = serving(model, as_float(digits.val.images))["probabilities"].numpy()
    others = {tune.trial_id("default", i, m[0]) for i, m in enumerate(MEMBERS)} - {gen}
    assert np.abs(probs - weighted_probs(run_copy, "val", others)).max() <= TOL
    meta = read_metadata(out)
    assert meta["skipped"][0]["trial"] == gen
    assert f"its weights file {missing} is missing" in meta["skipped"][0]["reason"]
    # The fact, not the command line's flag (a Python caller never typed --skip-missing).
    assert meta["metrics"]["notes"] == [
        "1 member was left out, its weights missing or unreadable when exported "
        "(\"skipped\" lists each with its reason); the metrics describe the ensemble with "
        "them"]


def test_a_member_retrained_by_a_newer_training_rule_is_warned_of(run_copy, digits, tmp_path,
                                                                  caplog):
    """A member whose weights were not kept is retrained from its hyperparameters and seed;
    its trial of an older hubensemble (trial.json without "train_rule", as those wrote it)
    was trained by another rule (sweepstate.TRAIN_RULE), so the retrained member is not the
    one the ensemble chose to the bit, and export said nothing of it."""
    from hubensemble.sweepstate import TRAIN_RULE

    drop = tune.trial_id("default", 2, "drop")
    folder = run_copy / "candidates" / drop
    record = read_json(folder / candidate.TRIAL_FILE)
    # This version's rule: not warned of (an export of such a run, retraining this member,
    # is test_export_shows_its_long_steps_on_the_terminal_unless_quiet's, which checks it).
    assert record["weights"] is None and record["train_rule"] == TRAIN_RULE
    atomic_write_json(folder / candidate.TRIAL_FILE,
                      {k: v for k, v in record.items() if k != "train_rule"})
    with caplog.at_level(logging.WARNING):
        export_ensemble(run_copy, tmp_path / "older", task=digits, progress=False)
    warned = [r.getMessage() for r in caplog.records if "training rule" in r.getMessage()]
    assert warned == [
        f"export: member 2 (trial {drop!r}) was trained by an older hubensemble's training "
        f"rule (trial.json train_rule 1; this version trains by rule {TRAIN_RULE}) and its "
        "weights were not kept: it is retrained by this rule, so its predictions may differ "
        "slightly from those its validation figures and the ensemble's selection were "
        "computed from"]


def test_a_corrupt_weights_file_fails_before_any_retraining(run_copy, digits, tmp_path):
    fixed = tune.trial_id("default", 1, "fixed")
    (run_copy / "candidates" / fixed / candidate.WEIGHTS_FILE).write_bytes(b"not a weights file")
    # Said as changed since tune wrote it (its sha256), before any read of it (8feae9d8).
    with pytest.raises(RunError, match=rf"member 1 \(trial '{fixed}'.*is not the one tune wrote"):
        export_ensemble(run_copy, tmp_path / "model", task=digits, progress=False)
    assert not (tmp_path / "model").exists()


def test_a_weights_file_edited_since_tune_is_refused_before_the_data_loads(
        run_copy, tmp_path, monkeypatch):
    """A member's weights file edited by hand (h5py) after tune: the export served it with a
    warning, weights no validation figure was measured of. It refuses, naming the file and
    the way on (tune redoes such a trial as it is: no delete), before the run's data loads."""
    import h5py

    gen = tune.trial_id("default", 0, "gen")
    weights = run_copy / "candidates" / gen / candidate.WEIGHTS_FILE
    with h5py.File(weights, "r+") as f:
        name = next(n for n in _datasets(f) if f[n].size > 1)
        f[name][...] = f[name][...] + 0.5

    def no_data(self, task=None):
        raise AssertionError("the data loaded before the refusal")

    monkeypatch.setattr(Run, "task", no_data)
    out, run = tmp_path / "model", os.path.abspath(run_copy)
    with command_line(), pytest.raises(RunError) as err:
        export_ensemble(run_copy, out, progress=False)
    said = str(err.value)
    assert said.startswith(f"member 0 (trial '{gen}', module 'gen'): its weights file {weights} "
                           "is not the one tune wrote (sha256 "), said
    assert said.endswith(
        "the ensemble chose it by the figures of the weights tune wrote, not of these: "
        f"restore the file, or run `hubensemble tune --run {run} --sweep default` again (it "
        f"redoes the trial), then `hubensemble ensemble --run {run} --budget 3` and this "
        "export again, or pass --skip-missing to export the ensemble without it"), said
    assert "delete" not in said and not out.exists()


def test_a_damaged_run_json_entry_or_trial_json_is_refused_before_tensorflow(run_copy):
    """`export --run RUN` with run.json's catalogue entry of a member's module edited into a
    string, or a member's trial.json hyperparameters edited ("lr": "0.01"): refused after
    TensorFlow's import and the data's load (15 s, 711 MB), though the files alone say it.
    Now before TensorFlow (1.2-1.6 s, 47 MB), in the stage's own words (the reference:
    export_ensemble). Fails before: TensorFlow loaded."""
    from test_cli import each_in_one_process

    meta = read_json(run_copy / "run.json")
    atomic_write_json(run_copy / "run.json", {**meta, "modules": {**meta["modules"],
                                                                  "gen": "oops"}})
    with command_line(), pytest.raises(RunError) as entry:
        export_ensemble(run_copy, progress=False)
    atomic_write_json(run_copy / "run.json", meta)
    fixed = run_copy / "candidates" / tune.trial_id("default", 1, "fixed") / "trial.json"
    record = read_json(fixed)
    atomic_write_json(fixed, {**record, "hparams": {**record["hparams"], "lr": "0.01"}})
    with command_line(), pytest.raises(RunError) as hparams:
        export_ensemble(run_copy, progress=False)
    atomic_write_json(run_copy / "run.json", {**meta, "modules": {**meta["modules"],
                                                                  "gen": "oops"}})
    first = each_in_one_process(["export", "--run", run_copy])
    atomic_write_json(run_copy / "run.json", meta)
    found = first + each_in_one_process(["export", "--run", run_copy, "--skip-missing"])
    for (code, _, err, tensorflow), refused in zip(found, (entry, hparams)):
        assert (code, tensorflow) == (2, False), err
        assert err.endswith(f"error: {refused.value}\n"), err
    assert "is damaged (a JSON string" in str(entry.value), entry.value
    assert "lr must be a number (got '0.01')" in str(hparams.value), hparams.value


def test_a_members_changed_weights_file_is_refused_before_tensorflow(run_copy):
    """`export --run RUN` of a member whose weights file changed since tune wrote it: the
    command line gave check_members no --retrain-full / --skip-missing, which decide that
    refusal, so it came after TensorFlow's import and the data's load (28.6 s, 705 MB on a
    real run). Now before TensorFlow, in the stage's words (the reference: export_ensemble).
    Fails before: TensorFlow loaded."""
    from test_cli import each_in_one_process

    member = read_json(run_copy / "ensemble.json")["members"][0]["trial"]
    weights = run_copy / "candidates" / member / candidate.WEIGHTS_FILE
    with open(weights, "ab") as f:  # other bytes than tune wrote (its size, its sha256)
        f.write(b"\0" * 8)
    with command_line(), pytest.raises(RunError) as stage:
        export_ensemble(run_copy, progress=False)
    (code, _, err, tensorflow), = each_in_one_process(["export", "--run", run_copy])
    assert (code, tensorflow) == (2, False), err
    assert err.endswith(f"error: {stage.value}\n"), err
    assert "is not the one tune wrote" in str(stage.value), stage.value


def test_a_fits_run_folder_inside_another_run_is_named_not_its_export(tmp_path):
    """`fit --out "run a/export"` where "run a" is a run (its export there): the refusal named
    "run a/export/export is inside the run folder …: choose another --out folder", a folder
    the user never typed, relative. It names the --out folder itself, absolute."""
    from hubensemble.formats import check_export_target

    other = tmp_path / "run a"
    (other / "export").mkdir(parents=True)
    (other / "run.json").write_text("{}")
    out = os.path.relpath(other / "export")
    with command_line(), pytest.raises(RunError) as err:
        check_export_target(os.path.join(out, "export"), "--out", run_dir=out)
    assert str(err.value) == (
        f"{other / 'export'} is inside the run folder {other} of another run (its export, or "
        "files its commands own): choose another --out folder outside it"), err.value


def test_a_mistyped_keyword_of_read_metadata_names_read_metadata(tmp_path):
    """`hubensemble.export.read_metadata(pth=…)` said "read_export_metadata() got an
    unexpected keyword argument 'pth'", a function the caller never called (the name was
    an alias of formats.read_export_metadata)."""
    with pytest.raises(TypeError, match=r"^read_metadata\(\) got an unexpected keyword "
                                        r"argument 'pth'"):
        read_metadata(pth=str(tmp_path))
    assert read_metadata(tmp_path) == {}


def _datasets(f):
    found = []
    f.visititems(lambda n, obj: found.append(n) if hasattr(obj, "shape") else None)
    return found


def test_a_weights_file_cut_short_since_tune_is_said_as_changed_not_unreadable(run_copy):
    """A member's weights file cut short since tune wrote it (a copy stopped part way) was
    refused as "its weights file … is unreadable (Unable to synchronously open file …)", an
    h5py error with no way on, before the changed-file check: it is said as changed (sha256
    recorded in trial.json, now), with the way on (restore it or redo the trial), before
    TensorFlow. exportplan. Fails before: the h5py words."""
    from hubensemble.exportplan import check_members

    trial = json.loads((run_copy / "ensemble.json").read_text())["members"][0]["trial"]
    weights = candidate.inspect(run_copy / "candidates" / trial)[0].weights_path
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(RunError) as err:
        check_members(run_copy, retrain_full=False, skip_missing=False)
    said = str(err.value)
    assert f"its weights file {weights} is not the one tune wrote (sha256 " in said, said
    assert "unreadable" not in said and "restore the file" in said, said


def test_an_incomplete_members_candidate_is_named_absolute_and_escaped(
        run_dir, tmp_path, monkeypatch, caplog):
    """export's "candidate RUN/candidates/T is incomplete (…)" named the folder escaped but as
    given (`export --run runs/r`: relative, useless from another working folder); it names
    it as the project does (`escaped(absolute(…))`). exportplan. Fails before: the relative
    path."""
    from hubensemble.exportplan import plan_members
    from hubensemble.runspecs import catalogue_entries

    monkeypatch.chdir(tmp_path)
    shutil.copytree(run_dir, tmp_path / "r\nx", ignore=shutil.ignore_patterns("export"))
    trial = json.loads((tmp_path / "r\nx" / "ensemble.json").read_text())["members"][0]["trial"]
    os.unlink(tmp_path / "r\nx" / "candidates" / trial / "test_probs.npy")
    run = Run("r\nx")
    entries = json.loads((run.path / "ensemble.json").read_text())["members"]
    with caplog.at_level(logging.WARNING):
        plan_members(run, entries, catalogue_entries(run, run.meta().get("modules")),
                     retrain_full=False, skip_missing=False, root=run.candidates)
    shown = str(tmp_path / "r\nx" / "candidates" / trial).replace("\n", "\\n")
    said = [r.getMessage() for r in caplog.records if "is incomplete" in r.getMessage()]
    assert len(said) == 1 and f"candidate {shown} is incomplete (" in said[0], said


def test_the_export_reads_each_member_through_its_candidate_record(run_copy, digits, tmp_path):
    """The weights file is the one trial.json names; a member whose trial.json is missing or
    not "ok" is named with the reason, before anything is built."""
    fixed = tune.trial_id("default", 1, "fixed")
    folder = run_copy / "candidates" / fixed
    record = read_json(folder / candidate.TRIAL_FILE)
    (folder / "renamed.h5").write_bytes(b"not a weights file")
    atomic_write_json(folder / candidate.TRIAL_FILE, {**record, "weights": "renamed.h5"})
    # (not the file tune wrote, which a changed file is said as first: exportplan)
    with pytest.raises(RunError, match=r"member 1 .*renamed\.h5 is not the one tune wrote"):
        export_ensemble(run_copy, tmp_path / "a", task=digits, progress=False)
    atomic_write_json(folder / candidate.TRIAL_FILE,
                      {**record, "status": "failed", "reason": "OOM"})
    with pytest.raises(RunError, match=r"member 1 .*status 'failed'.*skip_missing=True"):
        export_ensemble(run_copy, tmp_path / "b", task=digits, progress=False)
    os.unlink(folder / candidate.TRIAL_FILE)
    # (candidate.inspect: tune writes a folder whole, so its record was deleted since)
    with pytest.raises(RunError, match=r"member 1 .*its trial record trial\.json is missing"):
        export_ensemble(run_copy, tmp_path / "c", task=digits, progress=False)
    # The folder deleted: said so, and not "delete RUN/candidates/… first" (a new-user check).
    shutil.rmtree(folder)
    with pytest.raises(RunError, match=r"member 1 .*no such candidate folder") as err:
        export_ensemble(run_copy, tmp_path / "d", task=digits, progress=False)
    assert "delete RUN/candidates" not in str(err.value)
    assert not any((tmp_path / name).exists() for name in "abcd")


@pytest.mark.parametrize("retrain_full", [False, True])
def test_a_trial_json_edited_by_hand_is_named_with_its_file_and_tunes_way_on(
        run_copy, digits, tmp_path, retrain_full):
    """A new-user check: "lr": "0.01" in a member's trial.json made export (and --retrain-full)
    say only "invalid hyperparameters: lr must be a number (got '0.01')", naming no file;
    now tune's words (the trial.json, then restore it or delete the folder), before anything
    is built or retrained."""
    fixed = tune.trial_id("default", 1, "fixed")
    folder = run_copy / "candidates" / fixed
    record = read_json(folder / candidate.TRIAL_FILE)
    atomic_write_json(folder / candidate.TRIAL_FILE,
                      {**record, "hparams": {**record["hparams"], "lr": "0.01"}})
    with pytest.raises(RunError) as err:
        export_ensemble(run_copy, tmp_path / "model", task=digits, progress=False,
                        retrain_full=retrain_full)
    said = str(err.value)
    head = (
        f"member 1 (trial '{fixed}', module 'fixed'): {folder / candidate.TRIAL_FILE}: its "
        "hyperparameters cannot be read (invalid hyperparameters: lr must be a number (got "
        f"'0.01')); restore that file from a copy, or delete the folder ({folder}) to run the "
        f"trial again (call run_tune(run_dir={os.path.abspath(run_copy)!r}, sweep='default'), "
        f"then run_ensemble(run_dir={os.path.abspath(run_copy)!r}, budget=3)")  # its own
    # Then the export, when run.json records one: the shared run_dir is exported by whichever
    # test of this worker runs first (run_copy leaves out the folder, not the record).
    assert said.startswith(head) and (said[len(head):] == ")" or said[len(head):].startswith(
        f" and export_ensemble(run_dir={os.path.abspath(run_copy)!r}, ")), said
    assert not (tmp_path / "model").exists()


def test_an_existing_folder_that_is_not_an_export_is_never_replaced(run_dir, digits, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(RunError, match="not an export made by hubensemble"):
        export_ensemble(run_dir, out, task=digits, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_max_abs_difference_and_check_reload_compare_two_callables():
    x = np.random.default_rng(0).random((4, 6, 6, 3), dtype=np.float32)

    def model(images):
        return tf.nn.softmax(tf.reduce_mean(images, axis=[1, 2]) * 5.0)

    def shifted(images):
        return model(images) + tf.constant([[2e-4, 0.0, 0.0]])

    assert max_abs_difference(model, model, x) == 0.0
    assert max_abs_difference(model, shifted, x) == pytest.approx(2e-4, rel=1e-3)
    assert max_abs_difference(model, lambda im: {"probabilities": model(im)}, x) == 0.0
    assert max_abs_difference(model, lambda im: model(im)[:, :2], x) == float("inf")
    assert max_abs_difference(model, lambda im: model(im) * np.nan, x) == float("inf")
    assert check_reload(model, {"serving_default": model, "__call__": model}, x) == 0.0
    with pytest.raises(RunError, match=r"__call__ differs .* max \|dp\| = 0\.0002 "):
        check_reload(model, {"serving_default": model, "__call__": shifted}, x)
    diff = check_reload(model, {"a": shifted}, x, tolerance=1e-3)
    assert diff == pytest.approx(2e-4, rel=1e-3)


def test_a_reloaded_model_that_differs_fails_and_leaves_no_export(run_dir, specs, digits,
                                                                  exported, tmp_path,
                                                                  monkeypatch):
    from hubensemble.export import saved

    trial = tune.trial_id("default", 0, "gen")
    clf = tune.build_classifier(specs["gen"], 10)
    clf.load_weights(os.path.join(run_dir, "candidates", trial, candidate.WEIGHTS_FILE))
    members = [ExportMember(clf, 32, 1.0, {"trial": trial})]
    images = as_float(digits.val.images[:8])
    # An export there already (a copy of the module's: a save of its own here took 3 s; a
    # save that passes its reload check is every export's, e.g. `exported`'s).
    good = tmp_path / "good"
    shutil.copytree(exported[1], good)
    (tmp_path / ".tmp-good.99999999").mkdir()  # left by an export killed mid-save
    before = {p: (good / p).read_bytes() for p in ("saved_model.pb",
                                                   "variables/variables.index")}

    def perturbed_reload(path):
        model = tf.saved_model.load(path)
        for v in model.trainable_variables:  # what a broken save would have written
            v.assign_add(tf.fill(tf.shape(v), tf.cast(0.05, v.dtype)))
        return model

    monkeypatch.setattr(saved, "_reload", perturbed_reload)
    for target in (good, tmp_path / "fresh"):
        with pytest.raises(RunError, match=r"differs from the in-memory ensemble by max "
                                           r"\|dp\| = [0-9.e-]+ \(> 1e-05\)"):
            save_export(members, digits.class_names, target, check_images=images)
    assert not (tmp_path / "fresh").exists()
    assert {p: (good / p).read_bytes() for p in before} == before  # the old export stays
    # no temp folders left behind, nor the one a killed export left (removed first)
    assert sorted(os.listdir(tmp_path)) == ["good"]


@pytest.mark.slow
def test_retrain_full_retrains_every_member_on_train_and_val(
        run_copy, specs, digits, tmp_path, figures_not_drawn):
    run_dir = run_copy
    out = tmp_path / "full"
    result = export_ensemble(run_dir, out, task=digits, retrain_full=True, progress=False)
    assert {m["source"] for m in result.members} == {"retrained on train + val"}
    assert result.retrain_full and read_metadata(out)["retrain_full"]
    # Reference: each member fine-tuned on train + val by tune itself, averaged here.
    want = 0.0
    for i, (name, _, w) in enumerate(MEMBERS):
        model = tune.fit_member(specs[name], digits, member_hparams(i), profile=QUICK,
                                splits=("train", "val"))
        want = want + w * tune.predict_probs(model, digits, "test", spec=specs[name],
                                             profile=QUICK, batch_size=64)
    got = serving(tf.saved_model.load(str(out)), as_float(digits.test.images))
    assert np.abs(got["probabilities"].numpy() - want).max() <= TOL
    assert np.abs(want - weighted_probs(run_dir, "test")).max() > 1e-4  # it changed
    # The test figures are the retrained members' (a new-user check: metadata, summary and
    # report gave the members' before retraining, NLL 0.9910 where the export gave 0.8881).
    y = digits.test.labels
    acc = float(np.mean(want.argmax(1) == y))
    nll = float(-np.mean(np.log(np.maximum(want[np.arange(len(y)), y], 1e-7))))
    before = read_json(os.path.join(run_dir, "ensemble.json"))["test"]
    metrics = read_metadata(out)["metrics"]
    assert metrics["test_before_retraining"] == before
    after = metrics["test"]
    assert after == result.test == Run(run_dir).meta()["export"]["test"]
    assert after["ensemble"]["accuracy"] == pytest.approx(acc, abs=1e-9)
    assert after["ensemble"]["nll"] == pytest.approx(nll, rel=1e-5)
    assert abs(after["ensemble"]["nll"] - before["ensemble"]["nll"]) > 1e-4
    best = before["best_single"]["trial"]
    assert after["best_single"]["trial"] == best and {m["trial"] for m in after["members"]} == {
        tune.trial_id("default", i, m[0]) for i, m in enumerate(MEMBERS)}
    from hubensemble.report import summary_table, write_report

    summary = summary_table(run_dir).splitlines()
    assert summary[0].startswith("test set, retrained on train + val")
    row = next(x for x in summary if x.startswith("ensemble "))
    assert row.split()[1:3] == [f"{acc:.4f}", f"{nll:.4f}"]
    assert (f"before retraining: ensemble accuracy {before['ensemble']['accuracy']:.4f}, NLL "
            f"{before['ensemble']['nll']:.4f}") in "\n".join(summary)
    text = write_report(run_dir)[0].read_text()
    assert (f"| ensemble (3 members), retrained on train + val | {acc:.4f} | {nll:.4f} |"
            in text)
    assert (f"| ensemble (3 members), before retraining | {before['ensemble']['accuracy']:.4f} "
            f"| {before['ensemble']['nll']:.4f} |") in text
    assert f"Test accuracy, the export's members retrained on train + val {acc:.4f}" in text


# ------------------------------------------------------------------------------ EnsembleLayer

def small_member(seed, *, softmax=True, size=12):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = EvalResize(size)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs)


def hub_member(handle, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = HubLayer(handle, trainable=True)(inputs)
    outputs = keras.layers.Dense(5, activation="softmax", bias_initializer="random_normal")(x)
    return keras.Model(inputs, outputs)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ensemble_layer_averages_and_round_trips_through_a_keras_file(tiny_module, tmp_path):
    x = np.random.default_rng(1).random((6, 20, 17, 3), dtype=np.float32)
    members = [small_member(1), small_member(2, size=9), hub_member(tiny_module, 3)]
    own = [m.predict(x, verbose=0).astype(np.float64) for m in members]
    inputs = keras.Input((None, None, 3))
    layer = EnsembleLayer(members, weights=[3, 1, 1])
    model = keras.Model(inputs, layer(inputs))
    assert layer.member_weights == pytest.approx((0.6, 0.2, 0.2))
    want = 0.6 * own[0] + 0.2 * own[1] + 0.2 * own[2]
    got = model.predict(x, verbose=0)
    assert np.abs(got - want).max() <= 1e-6
    path = tmp_path / "ensemble.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert np.abs(again.predict(x, verbose=0) - got).max() <= 1e-6
    reloaded_layer = next(lay for lay in again.layers if isinstance(lay, EnsembleLayer))
    assert reloaded_layer.member_weights == pytest.approx((0.6, 0.2, 0.2))
    assert len(reloaded_layer.members) == 3


def test_ensemble_layer_from_logits_and_bad_weights():
    x = np.random.default_rng(2).random((5, 10, 10, 3), dtype=np.float32)
    members = [small_member(4, softmax=False), small_member(5, softmax=False)]
    logits = [m.predict(x, verbose=0).astype(np.float64) for m in members]
    got = EnsembleLayer(members, from_logits=True)(x).numpy()
    assert np.abs(got - (softmax(logits[0]) + softmax(logits[1])) / 2).max() <= 1e-6
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="weights"):
            EnsembleLayer(members, weights=bad)
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleLayer([])


def head_member(classes, activation="softmax"):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


@pytest.mark.parametrize("heads, words", [
    ([(5, "softmax"), (3, "softmax")], ["different numbers of classes", "(6, 5)", "(6, 3)"]),
    ([(5, "softmax"), (1, "sigmoid")], ["different numbers of classes", "(6, 1)"]),
    ([(1, "sigmoid"), (1, "sigmoid")], ["not a distribution over classes",
                                        "([N, 2] for two classes)"]),
])
def test_ensemble_layer_refuses_members_whose_outputs_differ(heads, words):
    x = np.random.default_rng(4).random((6, 10, 10, 3), dtype=np.float32)
    members = [head_member(*head) for head in heads]
    layer = EnsembleLayer(members)
    with pytest.raises(ValueError) as err:
        layer(x)
    assert all(w in str(err.value) for w in words), str(err.value)
    # A functional model is refused when it is built, naming each member's output shape.
    with pytest.raises(ValueError, match=r"member 0 .*\(None, \d\), member 1 .*\(None, \d\)"):
        inputs = keras.Input((None, None, 3))
        keras.Model(inputs, EnsembleLayer(members)(inputs))
    outputs = [np.zeros((2, 5), np.float32), np.zeros((2, 4, 5), np.float32)]
    with pytest.raises(ValueError, match="class probabilities"):  # serve_bytes' path
        EnsembleLayer([small_member(7), small_member(8)]).combine(outputs)


@pytest.mark.parametrize("weights, error, words", [
    ("12", TypeError, ["a sequence of 2 numbers", "got str '12'"]),
    (3, TypeError, ["a sequence of 2 numbers", "got int 3"]),
    ({"a": 1, "b": 2}, TypeError, ["a sequence of 2 numbers"]),
    ([1, None], TypeError, ["NoneType None is not a number"]),
    ([1, "2"], TypeError, ["str '2' is not a number"]),
])
def test_ensemble_layer_refuses_weights_that_are_not_numbers(weights, error, words):
    with pytest.raises(error) as err:
        EnsembleLayer([small_member(9), small_member(10)], weights=weights)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert EnsembleLayer([small_member(9), small_member(10)],
                         weights=np.array([3, 1])).member_weights == (0.75, 0.25)
    with pytest.raises(TypeError, match=r"write \[member\]"):
        EnsembleLayer(small_member(9))


def docstring_blocks(obj):
    """The code blocks (after '::') of `obj`'s docstring, dedented."""
    import inspect

    blocks = []
    for part in inspect.getdoc(obj).split("::\n")[1:]:
        lines = []
        for line in part.splitlines():
            if line.strip() and not line.startswith("    "):
                break
            lines.append(line[4:])
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


def test_the_ensemble_layer_docstring_example_reloads_in_a_new_process(tmp_path, monkeypatch):
    save, load = docstring_blocks(EnsembleLayer)
    assert 'model.save("ensemble.keras")' in save and "keras.models.load_model" in load
    # The save runs here (a new process for it spent 5 s of CPU importing TensorFlow); the
    # load, the part "in any process" is about, in a new process without the layer imported.
    monkeypatch.chdir(tmp_path)
    exec(compile(save, "EnsembleLayer's docstring", "exec"), {})
    assert (tmp_path / "ensemble.keras").is_file()
    out = subprocess.run(cpu_bounded([sys.executable, "-c", load
                                      + "print(type(model.layers[-1]).__name__)\n"], 120),
                         cwd=tmp_path, capture_output=True, text=True)  # about 5 s of CPU
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == "EnsembleLayer"


# ------------------------------------------------------------------------------ predict

@pytest.fixture
def image_files(digits, tmp_path):
    files = {"seven.png": encode(picture(digits, 4, (40, 30)), "PNG"),
             "photo.jpg": encode(picture(digits, 5, (33, 21)), "JPEG"),
             "tiny.bmp": encode(picture(digits, 6, (8, 8)), "BMP")}
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


def test_predict_prints_the_top_classes_of_png_and_jpeg_files(exported, loaded, digits,
                                                              image_files):
    # top=50 of 10 classes gives all 10, in order (one predict: each loads the export and
    # runs serve_bytes' first call, 3 s; a top below the class count is test_predict_names_
    # an_unreadable_file_or_skips_it's top=2 and the command line's --top 2).
    results = predict(exported[1], image_files, top=50)
    assert [r["path"] for r in results] == image_files
    for r, path in zip(results, image_files):
        image = pillow_rgb(open(path, "rb").read())
        probs = serving(loaded, as_float(image)[None])["probabilities"].numpy()[0]
        order = np.argsort(-probs, kind="stable")
        assert [t["class_id"] for t in r["top"]] == order.tolist()
        assert [t["class_name"] for t in r["top"]] == [digits.class_names[i] for i in order]
        assert [t["probability"] for t in r["top"]] == pytest.approx(probs[order], abs=TOL)
        assert [t["rank"] for t in r["top"]] == list(range(1, 11))
    text = format_predictions(results)
    for r in results:
        assert r["path"] in text
        first = r["top"][0]
        assert f"1. {first['class_name']}" in text and f"{first['probability']:.4f}" in text
    assert json.loads(format_predictions(results, as_json=True)) == results


def test_predict_json_names_a_path_by_its_utf8_bytes_in_any_locale(tmp_path):
    """A new-user check: under a C locale with PYTHONUTF8=0 (a container or cron job started
    so) `predict --json imgs/` of 'café → 1.png' wrote
    "caf\\udcc3\\udca9 \\udce2\\udc86\\udc92 1.png" (Python's lone surrogates for the
    bytes), which jq printed as five U+FFFD: the file's
    name was lost. Its path in the JSON is its bytes read as UTF-8, as in a UTF-8 locale and
    as folder:DATA reads class names; a name that is not UTF-8 keeps its byte as a surrogate
    (docs/export.md). The text output's path line stays the shell word of the path."""
    (tmp_path / "caf\u00e9 \u2192 1.png").write_bytes(b"")
    (tmp_path.joinpath(os.fsdecode(b"caf\xe9.png"))).write_bytes(b"")  # Latin-1: not UTF-8
    code = ("import os, sys\nfrom hubensemble.prediction import format_predictions\n"
            "names = sorted(os.listdir(sys.argv[1]))\n"
            "print(format_predictions([{'path': n, 'error': 'e'} for n in names], as_json=True))")
    out = subprocess.run(cpu_bounded([sys.executable, "-c", code, tmp_path], 30),
                         capture_output=True, env=dict(os.environ, PYTHONUTF8="0", LC_ALL="C"))
    assert out.returncode == 0, out.stderr
    paths = [r["path"] for r in json.loads(out.stdout)]
    assert sorted(paths) == sorted(["caf\u00e9 \u2192 1.png", "caf\udce9.png"]), paths
    assert [p.encode("utf-8", "surrogateescape") for p in sorted(paths)] == sorted(
        [b"caf\xc3\xa9 \xe2\x86\x92 1.png", b"caf\xe9.png"])


def test_predict_refuses_metadata_that_counts_other_classes(exported, image_files, tmp_path,
                                                            run_dir):
    """A new-user check: an export whose metadata listed 9 class names (and num_classes 9)
    for the model's 10 outputs was predicted with class 9 named "9"; 11 names, silently.
    predict refuses it as evaluate does (formats.check_metadata_fits), naming the file and
    the command exporting the run the metadata names (it said `--run RUN --out FOLDER`)."""
    for names, count, said in ((9, 9, "lists 9 class names"), (11, None, "lists 11 class names"),
                               (10, 9, "lists 9 classes \\(num_classes\\)")):
        copy = tmp_path / f"e{names}-{count}"
        shutil.copytree(exported[1], copy)
        meta = read_json(copy / "assets" / "hubensemble.json")
        meta["class_names"] = [f"c{i}" for i in range(names)]
        meta["num_classes"] = count if count is not None else names
        (copy / "assets" / "hubensemble.json").write_text(json.dumps(meta))
        with pytest.raises(HubensembleError, match=re.escape(str(copy)) + ".*" + said
                           + ", but the model outputs 10 probabilities") as e:
            predict(copy, image_files[:1], top=10)
        assert str(e.value).endswith("; export it again with export_ensemble(run_dir="
                                     f"{os.path.abspath(run_dir)!r}, out_dir="
                                     f"{str(copy)!r})"), e.value


def test_predict_lines_up_class_names_in_any_script():
    """A new-user check: class folders named in Chinese put the probabilities out of line
    (len() counts an ideograph as one column; a terminal shows two)."""
    # (name, the terminal columns it takes): ideographs and full-width letters 2 each, a
    # combining accent 0, half-width katakana 1.
    names = [("猫", 2), ("dog", 3), ("e\u0301clair", 6), ("ＡＢ", 4), ("ｶﾞ", 2),
             ("长颈鹿", 6)]
    top = [{"rank": i + 1, "class_id": i, "class_name": n, "probability": 0.5 / (i + 1)}
           for i, (n, _) in enumerate(names)]
    lines = format_predictions([{"path": "a.png", "top": top}]).splitlines()[1:]
    # Each line: "  R. NAME" padded to the widest name (6 columns), two spaces, the number.
    for line, (name, columns) in zip(lines, names):
        head, number = line.rsplit("  ", 1)
        assert head.endswith(name + " " * (6 - columns)), (line, columns)
        assert float(number) > 0


def test_predict_skips_counts_and_names_files_damaged_past_their_header(
        exported, loaded, digits, tmp_path):
    """A folder with a JPEG cut short, a PNG with a bad CRC and one with a cut IDAT among
    good images: serve_bytes refuses their batch (now naming the first), predict runs its
    files one by one, and each damaged one is skipped, named with the folder loader's reason
    and counted; the good ones get the probabilities they get alone."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    png = encode(picture(digits, 3, (60, 60)), "PNG")
    for name, data in (("a.png", png), ("b_cut.jpg", jpeg[:300]), ("c_crc.png", _bad_crc(png)),
                       ("d_idat.png", png[:len(png) // 2]), ("e.jpg", jpeg)):
        (folder / name).write_bytes(data)
    results = predict(exported[1], [str(folder)], top=1, progress=False)
    assert [os.path.basename(r["path"]) for r in results if "error" in r] == [
        "b_cut.jpg", "c_crc.png", "d_idat.png"]
    assert all(r["error"].startswith(("a damaged JPEG file", "a damaged PNG file"))
               for r in results if "error" in r), results
    assert results.skipped == 3 and results.tally().startswith(
        "predicted 2 of 5 files; 3 skipped (unreadable)")
    # An image only too large for the decoder is counted by its own word (a user's find:
    # its warning said "too large", the count "skipped (unreadable)"), alone or among others.
    (folder / "f_huge.png").write_bytes(png_of_size(60000, 10000))
    results = predict(exported[1], [str(folder)], top=1, progress=False)
    assert "too large to decode" in results[-1]["error"], results[-1]
    assert results.tally().startswith("predicted 2 of 6 files; 4 skipped (3 unreadable, "
                                      "1 too large)"), results.tally()
    alone = predict(exported[1], [str(folder / "f_huge.png")], top=1, progress=False,
                    skip_unreadable=True)
    # "of 1 file" (it said "of 1 files": 411's check)
    assert alone.tally() == "predicted 0 of 1 file; 1 skipped (too large)", alone.tally()
    # Each good file alone through serve_bytes (what predict sends it: their bytes as they
    # are), on the export loaded once (a predict call loads it again: 3 s).
    alone = np.concatenate([loaded.signatures["serve_bytes"](image_bytes=tf.constant([data]))[
        "probabilities"].numpy() for data in (png, jpeg)])
    got = [r["top"][0] for r in results if "top" in r]
    assert [t["class_id"] for t in got] == alone.argmax(1).tolist()
    np.testing.assert_allclose([t["probability"] for t in got], alone.max(1), atol=1e-6)


def test_predict_takes_out_the_file_serve_bytes_names_not_each_file(
        exported, digits, tmp_path):
    """serve_bytes names the image that failed a request, but predict ran every file of the
    refused batch alone (a batch of 256 with one cut JPEG: 257 requests). It now sends the
    batch again without the named file; each file gets the probabilities it gets alone, and
    the damaged ones their reasons."""
    from hubensemble import prediction

    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    blobs = [encode(picture(digits, i, (30 + i, 30)), "PNG") for i in range(6)]
    blobs[2] = jpeg[:300]  # cut short
    serve = tf.saved_model.load(exported[1]).signatures["serve_bytes"]
    sizes = []

    def counted(image_bytes):
        sizes.append(int(image_bytes.shape[0]))
        return serve(image_bytes=image_bytes)

    paths = [str(tmp_path / f"{i}.png") for i in range(len(blobs))]
    got = prediction._serve(counted, list(enumerate(blobs)), tf, paths)
    assert sizes == [6, 1, 5]  # the batch, the named file alone (its reason), the others
    assert got[2].startswith("a damaged JPEG file"), got[2]
    for i in (0, 1, 3, 4, 5):
        alone = serve(image_bytes=tf.constant([blobs[i]]))["probabilities"].numpy()[0]
        np.testing.assert_allclose(got[i], alone, atol=1e-6)
    # Two damaged: both taken out, in two more requests.
    blobs[4] = blobs[4][:len(blobs[4]) // 2]
    sizes.clear()
    got = prediction._serve(counted, list(enumerate(blobs)), tf, paths)
    assert sizes == [6, 1, 5, 1, 4]
    assert [isinstance(p, str) for p in got] == [False, False, True, False, True, False]


def test_predict_says_once_that_an_export_names_no_failed_image(exported, digits, tmp_path,
                                                                caplog):
    """An export written before c987f95 refuses a request whole without naming the image
    (its serve_bytes decoded with tf.map_fn); its metadata's version is today's, so predict
    said nothing of why it ran the files one by one. It now says so once, with the way on;
    an export of today is not said to be old."""
    from hubensemble.export.saved import decode_image
    from hubensemble.formats import metadata_path

    meta = read_metadata(exported[1])
    classes = len(meta["class_names"])

    class Old(tf.Module):  # serve_bytes as it was: every image decoded in one tf.map_fn
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve_bytes(self, image_bytes):
            images = tf.map_fn(lambda d: tf.image.resize(decode_image(d), [8, 8]), image_bytes,
                               fn_output_signature=tf.TensorSpec([8, 8, 3], tf.float32))
            return {"probabilities": tf.nn.softmax(
                tf.reduce_mean(images, [1, 2]) @ tf.ones([3, classes]))}

    old = tmp_path / "old"
    module = Old()
    tf.saved_model.save(module, str(old), signatures={"serve_bytes": module.serve_bytes})
    os.makedirs(os.path.dirname(metadata_path(old)), exist_ok=True)
    shutil.copy(metadata_path(exported[1]), metadata_path(old))  # hubensemble's, as it was
    folder = tmp_path / "imgs"
    folder.mkdir()
    jpeg = encode(picture(digits, 2, (40, 40)), "JPEG")
    for name, data in (("a.jpg", jpeg), ("b_cut.jpg", jpeg[:300]), ("c.jpg", jpeg),
                       ("d_cut.jpg", jpeg[:250])):
        (folder / name).write_bytes(data)
    for model, said in ((old, 1), (exported[1], 0)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            results = predict(model, [str(folder)], top=1, progress=False, batch_size=2,
                              skip_unreadable=True)
        assert [("error" in r) for r in results] == [False, True, False, True]
        warned = [r.getMessage() for r in caplog.records
                  if "exported before serve_bytes named the image" in r.getMessage()]
        assert len(warned) == said and all(str(old) in w for w in warned), warned
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        predict(old, [str(folder)], top=1, progress=False, batch_size=2, skip_unreadable=True)
    assert any("Export it again for that: export_ensemble(run_dir=" in r.getMessage()
               for r in caplog.records), caplog.text


def test_predict_names_an_unreadable_file_or_skips_it(exported, image_files, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    missing = str(tmp_path / "nowhere.jpg")
    with pytest.raises(HubensembleError,
                       match=re.escape(str(bad)) + ": too short to be a PNG file \\(30"):
        predict(exported[1], [image_files[0], str(bad)])
    with pytest.raises(HubensembleError, match=re.escape(missing) + ": cannot read"):
        predict(exported[1], [missing])
    results = predict(exported[1], [image_files[0], str(bad), missing, image_files[1]],
                      top=2, skip_unreadable=True)
    assert [("error" in r) for r in results] == [False, True, True, False]
    assert len(results[3]["top"]) == 2
    assert "error: too short to be a PNG file (30 bytes)" in format_predictions(results)
    with pytest.raises(HubensembleError, match="no saved_model.pb.*pass the folder"):
        predict(tmp_path, image_files)
    with pytest.raises(HubensembleError, match="nowhere does not exist"):
        predict(tmp_path / "nowhere", image_files)
    # A run folder (its export inside) is named as such, with the folder to pass.
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(exported[1], run / "export")
    said = f"pass model_dir={str(run / 'export')!r}"  # Python's keyword, one shell word
    with pytest.raises(HubensembleError, match=re.escape(said)):
        predict(run, image_files)
    with pytest.raises(HubensembleError, match="^top must be an integer >= 1, got 0"):
        predict(exported[1], image_files, top=0)  # Python's keyword (5f6fb26), not the flag
    # An export that does not load (its variables/ gone) is one line, as evaluate says it (a
    # new-user check: predict printed TensorFlow's 40-line traceback).
    import shutil

    broken = tmp_path / "no-variables"
    shutil.copytree(exported[1], broken)
    shutil.rmtree(broken / "variables")
    with pytest.raises(HubensembleError, match=re.escape(f"{broken} could not be loaded as a "
                                                         "SavedModel (") + ".*export it again"):
        predict(broken, image_files)
    # With the command exporting the run its metadata names (it named none).
    run = read_json(broken / "assets" / "hubensemble.json")["run"]["path"]
    with pytest.raises(HubensembleError, match=re.escape(
            f"; export it again with export_ensemble(run_dir={run!r}, "
            f"out_dir={str(broken)!r})") + "$"):
        predict(broken, image_files)


def test_predict_prints_a_file_name_that_is_not_utf8(exported, digits, tmp_path, in_process):
    """A file named caf\\xe9.png (Latin-1) is predicted like any other; its name was printed
    as a lone surrogate, which a strict UTF-8 stdout (en_US.UTF-8; capsys here) refuses: the
    text shows the byte escaped (in bash's $'…': a shell word of the exact name), and --json
    keeps the escape that gives the exact path back (json.loads, then os.fsencode), for a
    program that opens the file again."""
    folder = os.fsencode(str(tmp_path / "photos"))
    os.makedirs(folder)
    try:
        with open(os.path.join(folder, b"caf\xe9.png"), "wb") as f:
            f.write(encode(picture(digits, 4, (40, 30)), "PNG"))
    except OSError:
        pytest.skip("this file system refuses a name that is not UTF-8")
    with open(os.path.join(folder, b"r\xe9sum\xe9.tif"), "wb") as f:
        f.write(b"II*\x00" + b"\0" * 20)  # a TIFF its header refuses: skipped, named
    with open(os.path.join(folder, b"r\xe9sum\xe9.txt"), "wb") as f:
        f.write(b"not an image\n")  # no image: ignored, named in the count
    shown = str(tmp_path / "photos")
    code, out, err = in_process("predict", "--model", exported[1], shown, "--skip-unreadable")
    assert code == 1 and "Logging error" not in err and "Traceback" not in err, err
    assert out.startswith(f"$'{shown}/caf\\xe9.png'\n  1. "), out  # bash gives the bytes back
    assert f"{shown}/r\\xe9sum\\xe9.tif: a TIFF file" in err, err
    assert "(r\\xe9sum\\xe9.txt)" in err, err
    code, out, err = in_process("predict", "--model", exported[1], shown, "--skip-unreadable",
                                "--json")
    assert code == 1 and "Traceback" not in err, err
    assert [os.fsencode(r["path"]) for r in json.loads(out)] == [
        os.path.join(folder, name) for name in (b"caf\xe9.png", b"r\xe9sum\xe9.tif")]


def test_predicts_text_output_keeps_each_record_apart_whatever_the_names_hold(
        exported, digits, tmp_path, in_process):
    """A new-user check: a file named "  1. fake 0.9.png" printed a header line that looked
    like a prediction line, and a name with a newline split its record over two lines. A
    header line is the path as one shell word (quoted, or $'…' with escapes), which bash
    gives back as the very name; every other line starts with two spaces."""
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["  1. fake 0.9.png", "new\nline.png", "plain.png", "it's \x1b[31mred.png"]
    for name in names:
        (folder / name).write_bytes(encode(picture(digits, 4, (40, 30)), "PNG"))
    (folder / "notes.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")  # damaged
    code, out, err = in_process("predict", "--model", exported[1], folder, "--top", "2")
    assert code == 1, err
    lines = out.rstrip("\n").split("\n")
    headers = [line for line in lines if not line.startswith("  ")]
    assert len(headers) == len(names) + 1 and len(lines) == len(headers) + 2 * len(names) + 1
    assert all(line.startswith(("  1. ", "  2. ", "  error: ")) for line in lines
               if line not in headers), out  # two classes per image, one error
    assert "\x1b" not in out and headers[0] == f"'{folder}/  1. fake 0.9.png'", out
    # bash reads each header back as the path of its file, in predict's order.
    said = subprocess.run(["bash", "-c", "printf '%s\\0' " + " ".join(headers)],
                          capture_output=True, check=True).stdout.split(b"\0")[:-1]
    assert said == [os.fsencode(folder / n) for n in sorted(names + ["notes.png"])]


def test_predicts_path_line_gives_bash_the_file_on_any_stream(tmp_path):
    """A new-user check: under PYTHONIOENCODING=ascii `predict imgs/` printed the header of
    'café → 0.png' as 'imgs/caf\\xe9 -> 0.png' (the stream's readable stand-ins inside
    single quotes: another file to bash), and under latin-1 the 'é' as its Latin-1 byte; a
    name with a soft hyphen (U+00AD) was $'a\\xadb.png', which bash reads as the byte 0xad,
    not the name's UTF-8. The header line is a shell word of the name's own bytes on any
    stream (`text.shell_word`'s encoding, sys.stdout's by default)."""
    names = ["caf\u00e9 \u2192 0.png", "it's x\u00e9.png", "a\u00adb.png", "new\nl\u00e9.png",
             "plain.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    code = ("import os, sys\nfrom hubensemble.prediction import format_predictions\n"
            "from hubensemble.stdio import readable_streams\n"
            "readable_streams()  # as the hubensemble command does\n"
            "paths = [os.path.join(sys.argv[1], n) for n in sorted(os.listdir(sys.argv[1]))]\n"
            "print(format_predictions([{'path': p, 'error': 'e'} for p in paths]))")
    expected = [os.fsencode(tmp_path / n) for n in sorted(names)]
    for encoding in ("ascii", "latin-1", "utf-8"):
        out = subprocess.run(cpu_bounded([sys.executable, "-c", code, tmp_path], 30),
                             capture_output=True,
                             env=dict(os.environ, PYTHONIOENCODING=encoding))
        assert out.returncode == 0, out.stderr
        headers = [line for line in out.stdout.split(b"\n") if line and line[:2] != b"  "]
        assert all(h.isascii() for h in headers) or encoding != "ascii", headers
        # The bytes a terminal in that encoding would paste: bash reads them as they are.
        said = subprocess.run([b"bash", b"-c", b"printf '%s\\0' " + b" ".join(headers)],
                              capture_output=True, check=True).stdout.split(b"\0")[:-1]
        assert said == expected, (encoding, headers)


def test_predict_says_a_quoted_pattern_is_for_the_shell(exported, image_files, tmp_path):
    """`predict --model M 'imgs/*.png'` said "No such file or directory": the pattern reached
    predict in quotes. It says what the shell does with one; a list file likewise."""
    pattern = str(tmp_path / "*.png")
    with pytest.raises(HubensembleError, match=re.escape(
            f"{pattern}: no such file (a pattern? predict does not expand * ? [ ]: the shell "
            "does, when the pattern is not in quotes; or pass the folder); check the path")):
        predict(exported[1], [pattern], progress=False)
    with pytest.raises(HubensembleError, match=re.escape("@list.txt: no such file (a list of "
                                                         "files? predict reads no @FILE")):
        predict(exported[1], ["@list.txt"], progress=False)
    results = predict(exported[1], [image_files[0], pattern], skip_unreadable=True,
                      progress=False)
    assert results[1]["error"].startswith("no such file (a pattern?")


def test_predict_counts_a_bar_only_for_folders_and_ends_it_before_an_error(
        exported, image_files, tmp_path, in_process):
    """`predict: looking at: 0 files` stood for a single named file, and, cleared with a
    carriage return, shared its line with the error that followed in a file of 2>&1. A
    run folder inside a folder predicted was counted as "1 hidden or OS entry"."""
    missing = tmp_path / "nowhere.png"
    code, out, err = in_process("predict", "--model", exported[1], image_files[0])
    assert code == 0 and "looking at" not in err, err
    code, out, err = in_process("predict", "--model", exported[1], missing)
    assert code == 2 and err == (f"hubensemble: error: {missing}: cannot read it: No such "
                                 "file or directory; check the path (or pass "
                                 "--skip-unreadable)\n"), err
    folder = tmp_path / "imgs"
    folder.mkdir()
    shutil.copy(image_files[0], folder)
    code, out, err = in_process("predict", "--model", exported[1], folder, missing)
    assert code == 2 and "predict: looking at: " in err, err
    assert err.split("\n")[-2].startswith("hubensemble: error: "), repr(err)
    code, _, said = in_process("predict", "--model", exported[1], folder)
    assert code == 0 and "looking at: 1 file " in said and "1 files" not in said, said  # 479
    # The folder loader's words for what it does not read.
    shutil.copytree(exported[1], folder / "old-export")
    (folder / ".DS_Store").write_bytes(b"")
    code, out, err = in_process("predict", "--model", exported[1], folder)
    assert code == 0 and err.rstrip().endswith(
        "predicted 1 file; 1 hidden or system entry and 1 folder hubensemble made (a run or "
        "an export) in the folders not read"), err


# ------------------------------------------------------------------------------ outside hubensemble
# (last: they wait for the processes `launched` started with the first test)

def test_saved_model_cli_lists_every_signature_the_docs_name(launched):
    """docs/export.md said `saved_model_cli show --all` "lists both signatures" where it lists
    three (a new-user check): its sentence names each signature the tool shows."""
    code, stdout, stderr = launched[0]("cli")
    assert code == 0, stderr[-2000:]
    blocks = {}
    for block in stdout.split("signature_def['")[1:]:
        name = block.split("'", 1)[0]
        if name.startswith("__"):  # __saved_model_init_op: TensorFlow's, not a signature
            continue
        blocks[name] = {(kind, key): (dtype, shape) for kind, key, dtype, shape in re.findall(
            r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))",
            block)}
    assert blocks["serving_default"] == {
        ("inputs", "images"): ("DT_FLOAT", "(-1, -1, -1, 3)"),
        ("outputs", "probabilities"): ("DT_FLOAT", "(-1, 10)"),
        ("outputs", "class_ids"): ("DT_INT64", "(-1)")}
    assert blocks["serve_bytes"] == {
        ("inputs", "image_bytes"): ("DT_STRING", "(-1)"),
        ("outputs", "probabilities"): ("DT_FLOAT", "(-1, 10)"),
        ("outputs", "class_ids"): ("DT_INT64", "(-1)"),
        ("outputs", "class_names"): ("DT_STRING", "(-1)")}
    assert blocks["serve_members"] == {
        ("inputs", "images"): ("DT_FLOAT", "(-1, -1, -1, 3)"),
        ("outputs", "member_probabilities"): ("DT_FLOAT", "(-1, 3, 10)"),
        ("outputs", "probabilities"): ("DT_FLOAT", "(-1, 10)")}
    docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "export.md"),
                encoding="utf-8").read()
    said = re.search(r"`saved_model_cli show --all --dir DIR` lists ([^.]*)", docs).group(1)
    assert "both" not in said and f"{len(blocks)} signatures" in said, said
    assert all(f"`{name}`" in said for name in blocks), (said, sorted(blocks))


def test_a_process_without_hubensemble_reproduces_the_probabilities(launched, loaded, digits):
    code, stdout, stderr = launched[0]("plain")
    assert code == 0, stderr[-2000:]
    assert "loaded without hubensemble" in stdout
    folder = launched[1]
    here = serving(loaded, np.load(folder / "x.npy"))["probabilities"].numpy()
    assert np.abs(np.load(folder / "p.npy") - here).max() <= TOL
    assert np.abs(np.load(folder / "c.npy") - here).max() <= TOL


def test_every_top_level_name_resolves_and_predict_comes_without_tensorflow(tmp_path):
    import hubensemble
    from hubensemble import prediction

    for name in hubensemble.__all__:  # the lazy table names a module that defines each
        assert getattr(hubensemble, name) is not None, name
    assert hubensemble.predict is prediction.predict
    # `hubensemble.predict` refuses a missing file before TensorFlow loads, as the command.
    (tmp_path / "model" / "assets").mkdir(parents=True)
    from evaluatefakes import fake_saved_model_pb  # (one that parses: an empty one is damaged)

    (tmp_path / "model" / "saved_model.pb").write_bytes(fake_saved_model_pb())
    (tmp_path / "model" / "assets" / "hubensemble.json").write_text('{"class_names": []}')
    code = ("import sys, hubensemble\n"
            "try:\n    hubensemble.predict(sys.argv[1], [sys.argv[2]])\n"
            "except hubensemble.errors.HubensembleError as e:\n    print(e)\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run(cpu_bounded([sys.executable, "-c", code, tmp_path / "model",
                                      tmp_path / "gone.png"], 30), capture_output=True,
                         text=True)
    assert out.stdout.splitlines() == [
        f"{tmp_path / 'gone.png'}: cannot read it: No such file or directory; check the "
        "path (or pass skip_unreadable=True)", "False"], out.stderr  # the caller's words


def test_an_export_fit_would_replace_is_kept_beside_it_with_its_tflite_model(tmp_path):
    """Fit's export stage replaced an export another command wrote into its folder
    (a warning came just before, too late to keep it). `keep_replaced_export` moves it to
    RUN/export-replaced-<created>, with the TFLite model written with it (not an older one),
    never onto an earlier kept one, and run.json's record follows it. Files only."""
    from hubensemble.export.stage import keep_replaced_export
    from hubensemble.text import shown_time  # the terminal's one form of a time

    run = Run(tmp_path / "run")
    export = run.path / "export"

    def write(created, tflite_created=None):
        os.makedirs(export / "assets")
        (export / "saved_model.pb").write_bytes(b"pb")
        atomic_write_json(export / "assets" / "hubensemble.json", {
            "format": "hubensemble-export", "created": created, "retrain_full": True,
            "members": [{"trial": "t0"}, {"trial": "t1"}]})
        if tflite_created:
            os.makedirs(f"{export}-tflite")
            (tmp_path / "run" / "export-tflite" / "model.tflite").write_bytes(b"tfl")
            atomic_write_json(f"{export}-tflite/hubensemble.json", {
                "format": "hubensemble-export-tflite", "created": tflite_created})

    write("2026-12-04T15:40:01", tflite_created="2026-12-04T15:40:01")
    run.update(data={"args": {"spec": "sklearn:digits"}}, export=run.export_record(export))
    with command_line():  # the command line's fit: commands
        said = keep_replaced_export(run, export)
    kept = run.path / "export-replaced-20261204T154001"
    assert sorted(os.listdir(run.path)) == ["export-replaced-20261204T154001",
                                            "export-replaced-20261204T154001-tflite",
                                            "run.json", "run.json.lock"]
    assert (kept / "saved_model.pb").read_bytes() == b"pb"
    assert (run.path / f"{kept.name}-tflite" / "model.tflite").read_bytes() == b"tfl"
    assert run.exported_to() == str(kept.resolve())
    assert said.startswith(f"{export} held an export that is not the one this fit recorded "
                           "there (2 members, retrained on train + val (--retrain-full), "
                           f"written {shown_time('2026-12-04T15:40:01')}): another command "
                           "wrote it since. "
                           f"Moved it to {kept} (its TFLite model to {kept}-tflite)"), said
    assert f"`hubensemble evaluate --model {kept}`" in said  # in the run: its data
    assert f"`hubensemble predict --model {kept} IMAGE`" in said
    # The same export time again: a new name, the kept one untouched; an older TFLite model
    # beside it is not its own, and stays for the export stage to remove.
    write("2026-12-04T15:40:01", tflite_created="2026-12-01T09:00:00")
    said = keep_replaced_export(run, export)
    assert f"Moved it to {kept}-2, which fit leaves alone" in said, said
    # A Python fit is told the functions (it was told `hubensemble evaluate --model …`).
    assert "hubensemble " not in said and "--" not in said, said
    assert (f"evaluate_model(model_dir={str(kept) + '-2'!r}, task=load_task('sklearn:digits'))"
            f", serve it as any export (predict(model_dir={str(kept) + '-2'!r}, "
            "image_paths=[IMAGE]), or TF Serving)") in said, said
    assert said.endswith(f"export_ensemble(run_dir={str(run.path)!r}, out_dir=DIR, "
                         "retrain_full=True)"), said
    assert (run.path / f"{kept.name}-2" / "saved_model.pb").exists()
    assert (run.path / "export-tflite" / "model.tflite").exists()
    assert (run.path / f"{kept.name}-tflite" / "model.tflite").read_bytes() == b"tfl"


def test_an_export_an_older_fit_recorded_without_digests_is_its_own_not_moved_aside(tmp_path):
    """What hubensemble ee1ba61 (2026-11-30, before bad91fe kept stage digests) wrote: its
    export stage's record holds no digests, run.json's export record the path, members and
    no "created" (its "time" is the end of the export, not the metadata's). fit of this
    version on such a run, once the ensemble runs again (its cost counted again), called the
    run's own export "not the one this fit recorded there: another command wrote it since"
    and moved it to RUN/export-replaced-...; it is fit's own, exported again over it. Files
    only."""
    from hubensemble.export.stage import keep_replaced_export
    from hubensemble.text import shown_time  # the terminal's one form of a time

    run = Run(tmp_path / "run")
    export = run.path / "export"
    members = [{"trial": "default-0000-m1", "weight": 0.5},
               {"trial": "default-0004-m0", "weight": 0.5}]
    os.makedirs(export / "assets")
    (export / "saved_model.pb").write_bytes(b"pb")
    atomic_write_json(export / "assets" / "hubensemble.json", {
        "format": "hubensemble-export", "created": "2026-12-05T14:51:22",
        "retrain_full": False, "members": members})
    run.update(stages={"export": {"key": "k", "done": True, "seconds": 30.59}},
               export={"path": str(export), "members": members, "skipped": [],
                       "retrain_full": False, "time": "2026-12-05T14:51:52"})
    said = keep_replaced_export(run, export)
    assert said == (f"{export.resolve()} holds the export this run's fit wrote (2 members, "
                    f"written {shown_time('2026-12-05T14:51:22')}), recorded by an older "
                    "hubensemble that kept "
                    "no digest of what it read; the ensemble was chosen again, so it is "
                    "exported again over it"), said
    assert sorted(os.listdir(run.path)) == ["export", "run.json", "run.json.lock"]
    # Other members than the record's: not the one this fit recorded, moved aside as before.
    run.modify(lambda m: m["export"].update(members=members[:1]))
    said = keep_replaced_export(run, export)
    assert "another command wrote it since" in said and not export.exists(), said


def test_another_runs_export_moved_aside_is_followed_by_that_runs_record(tmp_path):
    """Fit moved another run's export out of its --export folder X (kept beside
    it), but that run's run.json still named X, which now held this run's export: its summary
    and report said X "now holds another run's export", and its own export was nowhere.
    `keep_replaced_export` now makes that run.json name where it went (under its lock, only
    while it names X), or says which run's record dangles and how to mend it. Files only."""
    from hubensemble.exportfolder import keep_replaced_export, run_record

    other, run, out = Run(tmp_path / "a"), Run(tmp_path / "b"), tmp_path / "X"
    other.update(data={"args": {"spec": "sklearn:digits"}, "task": {"fingerprint": "fa"}},
                 export={**other.export_record(out), "members": [{"trial": "t0"}]})
    other.modify(lambda m: m.update(stages={"export": {"record": m["export"]}}))
    run.update(data={"args": {"spec": "npz:b.npz"}, "task": {"fingerprint": "fb"}})

    def write():
        os.makedirs(out / "assets")
        (out / "saved_model.pb").write_bytes(b"pb")
        atomic_write_json(out / "assets" / "hubensemble.json", {
            "format": "hubensemble-export", "created": "2026-12-04T15:40:01",
            "members": [{"trial": "t0"}], "task": {"fingerprint": "fa"},
            "run": run_record(other.path, other.meta())})

    write()
    said = keep_replaced_export(run, out)
    kept = tmp_path / "X-replaced-20261204T154001"
    assert other.exported_to() == str(kept) and (kept / "saved_model.pb").exists()
    assert other.meta()["stages"]["export"]["record"]["path"] == str(kept)
    assert other.meta()["export"]["members"] == [{"trial": "t0"}]  # the rest as it was
    assert f"{out} held an export of another run ({other.path}, other data)" in said, said
    assert f". Its run's record ({other.meta_path}) now names {kept}. Evaluate" in said, said
    # A run.json that cannot be changed (here its lock): left alone, and said how to mend it.
    other.update(export=other.export_record(out))
    write()
    (tmp_path / "a" / "run.json.lock").unlink()
    (tmp_path / "a" / "run.json.lock").mkdir()
    with command_line():
        said = keep_replaced_export(run, out)
    assert other.exported_to() == str(out)
    assert (f" {other.meta_path} could not be changed to name it (IsADirectoryError: "
            in said), said
    assert (f"that run's record of its export still names {out}, which now holds this run's; "
            f"record it where it is with `hubensemble export --run {other.path} --out "
            f"{kept}-2`.") in said, said
    write()  # from Python: the function and its keywords
    said = keep_replaced_export(run, out)
    assert ("record it where it is with export_ensemble(run_dir="
            f"{str(other.path)!r}, out_dir={str(kept) + '-3'!r}).") in said, said
    # A run.json that names another export, or of another run at that path: left alone.
    (tmp_path / "a" / "run.json.lock").rmdir()
    other.update(export=other.export_record(tmp_path / "elsewhere"))
    write()
    said = keep_replaced_export(run, out)
    assert other.exported_to() == str(tmp_path / "elsewhere") and "Its run's record" not in said


def test_a_copied_runs_export_into_its_originals_folder_is_another_runs(tmp_path):
    """`cp -r a b`, then `export --run b --out X` where X holds a's export: b's run.json is
    a's, byte for byte (the same "created" and data), so `other_run` took a's export for b's
    own and export replaced it without a word, a's run.json still naming X. Where the export
    lies tells them apart: outside b, and its recorded run (a) still holds a run.json of the
    same "created", it is a's, said as a copy's; b's own copied b/export stays b's, and so
    does a moved run's export. Files only."""
    from hubensemble.exportfolder import keep_replaced_export, other_run, run_record

    a, out = Run(tmp_path / "a"), tmp_path / "X"
    a.update(data={"args": {"spec": "sklearn:digits"}, "task": {"fingerprint": "fa"}},
             export={**a.export_record(out), "members": [{"trial": "t0"}]})
    for folder in (out, a.path / "export"):
        os.makedirs(folder / "assets")
        (folder / "saved_model.pb").write_bytes(b"pb")
        atomic_write_json(folder / "assets" / "hubensemble.json", {
            "format": "hubensemble-export", "created": "2026-12-04T15:40:01",
            "members": [{"trial": "t0"}], "task": {"fingerprint": "fa"},
            "run": run_record(a.path, a.meta())})
    shutil.copytree(a.path, tmp_path / "b")
    b = Run(tmp_path / "b")
    theirs = read_metadata(out)
    assert other_run(theirs, a.path, a.meta(), out) is None  # a's own
    assert other_run(theirs, b.path, b.meta(), out) == (
        f"an export of another run ({a.path}, the same data; one of the two runs is a copy "
        'of the other: their run.json record the same "created")')
    assert other_run(read_metadata(b.path / "export"), b.path, b.meta(),
                     b.path / "export") is None  # the copy's own export came with it
    # b's export moves a's aside, and a's run.json follows it.
    said = keep_replaced_export(b, out, "export")
    kept = tmp_path / "X-replaced-20261204T154001"
    assert said.startswith(f"{out} held an export of another run ({a.path}, the same data; "
                           "one of the two runs is a copy"), said
    assert a.exported_to() == str(kept) and (kept / "saved_model.pb").exists()
    # A moved run (nothing at its recorded folder now) keeps its export as its own.
    os.rename(a.path, tmp_path / "c")
    c = Run(tmp_path / "c")
    assert other_run(read_metadata(kept), c.path, c.meta(), kept) is None


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory, specs, digits):
    """A second run on other data (digits 0 and 1 from an npz file): one candidate and its
    ensemble -> (run folder, its data spec, its Task)."""
    folder = tmp_path_factory.mktemp("two")
    arrays = {}
    for name in ("train", "val", "test"):
        split = getattr(digits, name)
        keep = np.isin(split.labels, (0, 1))
        arrays[f"x_{name}"], arrays[f"y_{name}"] = split.images[keep][:40], split.labels[keep][:40]
    np.savez(folder / "two.npz", **arrays, class_names=np.array(["zero", "one"]))
    spec = f"npz:{folder / 'two.npz'}"
    task = load_task(spec)
    path = folder / "run2"
    run = Run(path)
    run.attach_task(task, DataArgs(spec=spec))
    run.update(modules={"gen": specs["gen"].to_json()})
    entry = tune.PlanEntry(0, tune.trial_id("default", 0, "gen"), "gen", member_hparams(0))
    record = tune.run_entry(entry, specs["gen"], task, run, profile=QUICK, keep_weights="all")
    assert record["status"] == "ok", record["reason"]
    ensemble.run_ensemble(path, budget=1)
    return path, spec, task


def _checkpoint_values(export_dir) -> dict:
    """{checkpoint key: (dtype, shape, bytes)} of every variable of the SavedModel at
    `export_dir` (not the object graph, which names them)."""
    reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
    values = {}
    for key in reader.get_variable_to_shape_map():
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            value = reader.get_tensor(key)
            values[key] = (value.dtype.str, value.shape, value.tobytes())
    return values


#: Holds the lock of export folder argv[1] as a fit of the run argv[2] does, until stdin closes.
HOLD_EXPORT_FOLDER = ("import sys\nfrom hubensemble.exportfolder import folder_lock\n"
                      "with folder_lock(sys.argv[1], sys.argv[2], 'fit', '--export', 'export'):\n"
                      "    print('held', flush=True)\n    sys.stdin.read()\n")


def test_an_export_folder_outside_the_run_has_one_writer_and_another_runs_export_is_said_so(
        run_dir, exported, two_class_run, specs, tmp_path, in_process, caplog,
        figures_not_drawn):
    """A new-user check: two fits with other --out and data and one --export X both exited 0
    and printed `export: X`; X held the first's 3-class model, the second's summary and
    report named X as its 2-class export, no log warned, and its report called X "of an
    earlier ensemble" and advised evaluating it on the second run's data. Now the writer of
    an export folder outside its run holds a lock beside it, and a second is refused at once,
    naming the other run; whoever finds another run's export there says so."""
    import hubensemble
    from hubensemble.exportfolder import keep_replaced_export
    from hubensemble.report import summary_table, write_report

    two, spec, task = two_class_run
    out = tmp_path / "X"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_EXPORT_FOLDER, str(out), str(run_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # run_dir's fit writes X now
        said = (f"{out} is being written by another fit of the run {run_dir} (pid {holder.pid}, "
                "since ")
        code, _, err = in_process("export", "--run", two, "--out", out)
        assert code == 2 and f"hubensemble: error: {said}" in err, err
        assert (f"holding {tmp_path / '.X.lock'}): wait for it to end, or pass another --out "
                "folder") in err, err
        cat = tmp_path / "cat.yaml"
        cat.write_text(f"modules:\n  - {{name: gen, handle: {specs['gen'].handle}}}\n")
        with pytest.raises(RunError, match=re.escape(said) + ".*pass another export folder"):
            hubensemble.fit(str(cat), spec, tmp_path / "run3", export=out, profile="quick",
                            top_k=1, progress=False)
        assert not out.exists() and not (tmp_path / "run3").exists()
    finally:
        holder.stdin.close()
        holder.wait(60)

    assert not (tmp_path / ".X.lock").exists()  # its holder removed it as it ended
    export_ensemble(two, out, task=task, progress=False)  # free again
    assert read_metadata(out)["run"]["path"] == str(two)
    first_values = _checkpoint_values(out)
    first_digest = read_metadata(out)["digest"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # Then run_dir's export lands in X (as its fit, run after this one, writes it there).
    shutil.rmtree(out)
    shutil.copytree(exported[1], out)
    theirs = f"an export of another run ({run_dir}, other data)"
    md = open(write_report(two)[0]).read()
    assert f"`{out}` now holds {theirs}, not this run's; write this run's again with " \
           f"`hubensemble export --run {two}`" in md, md
    assert "earlier ensemble" not in md and f"--model {out}" not in md
    assert f"export: none of this run ({out} now holds {theirs}): run `hubensemble export " \
           f"--run {two}`" in summary_table(two)
    # Exporting it again moves it aside, as a fit does, saying whose it is and where it went
    # (it replaced it with a warning, and kept nothing).
    their_meta = read_metadata(out)
    with caplog.at_level("WARNING", logger="hubensemble"):
        export_ensemble(two, out, task=task, progress=False)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("X-replaced-")]
    assert len(kept) == 1 and read_metadata(kept[0]) == their_meta, kept
    assert f"{out} held {theirs} (3 members, written " in caplog.text, caplog.text
    assert (f"not this run's. Moved it to {kept[0]}; this export writes the ensemble of {two} "
            f"to {out}. ") in caplog.text, caplog.text
    shutil.rmtree(kept[0])
    # The same run exported twice (its member from its tuned weights) stores the same value
    # at every variable's path and records the same digest (before, the head Dropout's
    # seed state, a variable, was drawn from the process's random state, so two exports
    # wrote other variables.data bytes: stage.seeded_python_random). The bytes themselves
    # are equal for two `export` commands, not in one process (docs/export.md).
    assert _checkpoint_values(out) == first_values
    assert read_metadata(out)["digest"] == first_digest
    shutil.rmtree(out)
    shutil.copytree(exported[1], out)
    with command_line():
        said = keep_replaced_export(Run(two), out)
    assert said.startswith(f"{out} held {theirs} (3 members, written "), said
    assert "not this run's. Moved it to " in said, said
    # Its evaluation and export advice are of its own run (run_dir), as recorded: it said
    # "--data SPEC (its run's data)" and `export --run TWO --out DIR`, the fit moving it.
    recorded = Run(run_dir).meta()["data"]["args"]["spec"]
    assert f" --data {recorded}`" in said and "SPEC" not in said, said
    assert said.endswith(f"`hubensemble export --run {run_dir} --out DIR`"), said
    # A run no longer there: its metadata's spec, and RUN for the run.
    shutil.copytree(exported[1], out)  # (fit's moved the other aside)
    meta = read_metadata(out)
    meta["run"]["path"] = str(tmp_path / "gone")
    (out / "assets" / "hubensemble.json").write_text(json.dumps(meta))
    with command_line():
        said = keep_replaced_export(Run(two), out)
    assert f" --data {recorded}`" in said, said
    gone = tmp_path / "gone"
    assert said.endswith(f"`hubensemble export --run RUN --out DIR`. In these commands, RUN is "
                         f"the run folder that made it ({gone}, which its metadata names, holds "
                         "it no more)"), said
    # Neither the run nor the metadata names a spec (a Task made in Python): the evaluate
    # command kept "--data SPEC (its run's data)"; the words now say what SPEC must be.
    shutil.copytree(exported[1], out)
    meta["task"].update(source="arrays", spec=None)  # since 5e01c2a a metadata's own spec
    (out / "assets" / "hubensemble.json").write_text(json.dumps(meta))
    with command_line():
        said = keep_replaced_export(Run(two), out)
    assert " --data SPEC`, serve it" in said and "(its run's data)" not in said, said
    assert said.endswith("and SPEC is the data spec of the data that run was made from "
                         "(folder:DIR, npz:FILE, tfds:NAME; neither its run.json nor the "
                         "export's metadata names one: its source is 'arrays'), or evaluate "
                         "it from Python with evaluate_model on that data as a Task"), said


def test_a_copied_run_of_an_older_version_names_its_own_export(tmp_path):
    # run.json's export record before c13ec39 (679fffb's form): the absolute path alone, no
    # "in_run". A copy of such a run named the original's export, and `ensemble` on the copy
    # advised `export --run COPY --out ORIGINAL/export`.
    original, copy = tmp_path / "a" / "run", tmp_path / "b" / "run"
    meta = {"format": "hubensemble-export", "created": "2026-12-04T23:48:38",
            "members": [{"trial": "default-0007-m0", "weight": 1.0}]}
    for run in (original, copy):
        (run / "export" / "assets").mkdir(parents=True)
        atomic_write_json(run / "export" / "assets" / "hubensemble.json", meta)
        Run(run).update(export={"path": str(original / "export"),
                                "members": meta["members"], "skipped": [],
                                "time": "2026-12-04T23:48:38"})
    assert Run(original).exported_to() == str(original / "export")
    assert Run(copy).exported_to() == str(copy / "export")
    shutil.rmtree(original)  # moved, not copied
    assert Run(copy).exported_to() == str(copy / "export")
    # An export elsewhere that holds another export (export --out DIR/export) stays that one.
    (original / "export" / "assets").mkdir(parents=True)
    atomic_write_json(original / "export" / "assets" / "hubensemble.json",
                      dict(meta, created="2026-12-04T23:50:00"))
    assert Run(copy).exported_to() == str(original / "export")
    # A record of this version (with "in_run", null for an export outside) is read as written.
    Run(copy).update(export={"path": str(original / "export"), "in_run": None})
    assert Run(copy).exported_to() == str(original / "export")


# ------------------------------------------------------------------------------ shared backbones

@pytest.fixture(scope="module")
def probe_members(tiny_module):
    """Two probes of the tiny module (its frozen backbone, their own heads) and a fine-tuned
    member of the same module (its backbone's weights moved), as the export rebuilds them."""
    from hubensemble.export.shared import share_key
    from hubensemble.tune.model import set_head

    spec = ModuleSpec(name="tiny", handle=tiny_module)
    rng = np.random.default_rng(7)
    members = []
    for i, kind in enumerate(("probe", "probe", "finetune")):
        model = tune.build_classifier(spec, 3, name=f"classifier_{i}")
        set_head(model, rng.normal(size=(8, 3)), rng.normal(size=3))
        if kind == "finetune":
            for w in model.backbone.weights:
                w.assign(np.asarray(w) + rng.normal(scale=0.1, size=w.shape).astype("float32"))
        key = share_key(spec.to_json(), model.backbone.fingerprint, 12, kind)
        members.append(ExportMember(model, 12, 1.0 + i, info={"trial": f"t{i}", "module": "tiny"},
                                    share_key=key))
    return members


@pytest.fixture(scope="module")
def probe_export(probe_members, tmp_path_factory):
    """(folder, [reloaded], check images): one save_export of `probe_members` into an empty
    folder made for it ("exp dir"), and the SavedModel its reload check loaded (on_reload's
    list). Read only: the export test_probes_of_one_module_… checks, the proof that an empty
    folder is written as before (test_files_put_into_…), the earlier export
    test_an_earlier_export_… copies (each saved its own: 3 s of CPU each)."""
    images = np.random.default_rng(0).uniform(size=(6, 20, 17, 3)).astype(np.float32)
    out = tmp_path_factory.mktemp("probe-export") / "exp dir"
    out.mkdir()
    kept = []
    save_export(probe_members, list("abc"), out, check_images=images, on_reload=kept.append)
    return out, kept, images


def graph_macs(fn, size=12):
    """{op type: multiply-accumulates} of fn on one float32 image [1, size, size, 3]."""
    from hubensemble.cost.graph import count_macs

    concrete = tf.function(fn).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32))
    return count_macs(concrete)[1]


def test_probes_of_one_module_run_its_backbone_once_with_unchanged_probabilities(
        probe_members, probe_export):
    from hubensemble.export import EnsembleModule

    # on_reload hands back the SavedModel the reload check loaded (what the TFLite export
    # checks against): checked here as the export at `out`, where a second load was.
    out, kept, images = probe_export
    unshared = EnsembleModule(probe_members, list("abc"), share_backbones=False)
    shared = EnsembleModule(probe_members, list("abc"))
    assert shared.groups == [(0, 1), (2,)] and unshared.groups == [(0,), (1,), (2,)]
    assert len(kept) == 1 and sorted(kept[0].signatures) == [
        "serve_bytes", "serve_members", "serving_default"]
    loaded = kept[0]
    want = unshared.probabilities(images).numpy()
    want_members = unshared.member_probabilities(unshared.resized(images)).numpy()
    got = serving(loaded, images)["probabilities"].numpy()
    assert np.abs(got - want).max() <= TOL
    assert np.abs(loaded(images, training=False).numpy() - want).max() <= TOL
    both = loaded.signatures["serve_members"](images=tf.constant(images))
    assert np.abs(both["member_probabilities"].numpy() - want_members).max() <= TOL
    assert np.abs(both["probabilities"].numpy() - want).max() <= TOL
    # The two probes' heads differ, so their probabilities do.
    assert np.abs(want_members[:, 0] - want_members[:, 1]).max() > 10 * TOL
    pixels = (images[:2] * 255).round().astype(np.uint8)
    data = tf.constant([encode(p, "PNG") for p in pixels])
    by_bytes = loaded.signatures["serve_bytes"](image_bytes=data)["probabilities"].numpy()
    assert np.abs(by_bytes - unshared.probabilities(as_float(pixels)).numpy()).max() <= TOL
    # The served graph holds two backbone calls where the unshared one held three.
    served = graph_macs(lambda x: loaded.signatures["serving_default"](images=x)[
        "probabilities"])
    alone = graph_macs(lambda x: unshared.member_probabilities(unshared.resized(x)))
    assert served["Conv2D"] * 3 == alone["Conv2D"] * 2 and served["MatMul"] == alone["MatMul"]
    meta = read_metadata(str(out))
    assert meta["shared_backbones"] == [{"members": ["t0", "t1"], "module": "tiny",
                                         "eval_size": 12}]
    # One copy of the shared backbone is stored (the probes' second copy was saved too), and
    # the training path, which runs it under each probe's head, predicts as before.
    backbone = int(sum(np.prod(w.shape) for w in probe_members[0].classifier.backbone.weights))
    assert saved_params(loaded) == 2 * backbone + 3 * (8 * 3 + 3)
    assert np.abs(loaded(images, training=True).numpy() - want).max() <= TOL


def saved_params(loaded) -> int:
    """The weights a reloaded SavedModel stores (its reusable API's `variables`), counted."""
    return int(sum(np.prod(v.shape) for v in loaded.variables))


def test_members_share_a_backbone_only_with_the_same_key_size_and_weights(probe_members):
    from hubensemble.export.shared import backbone_groups

    p0, p1, ft = probe_members
    assert backbone_groups([p0, ft, p1]) == [(0, 2), (1,)]
    other_size = ExportMember(p1.classifier, 16, 1.0, share_key=p1.share_key)
    no_key = ExportMember(p1.classifier, 12, 1.0)
    assert backbone_groups([p0, other_size, no_key]) == [(0,), (1,), (2,)]
    # A probe whose frozen weights are not the module's (the fine-tuned backbone under a
    # probe's key) runs its own.
    odd = ExportMember(ft.classifier, 12, 1.0, share_key=p0.share_key)
    assert backbone_groups([p0, odd]) == [(0,), (1,)]


def test_a_member_of_another_weights_digest_runs_its_own_backbone_as_the_budget_counts(
        probe_members, caplog):
    # The key holds what the backbone's weights are (the budget's rule,
    # cost.sharing.backbone_key): a member loaded from a file whose backbone is not the one
    # tune wrote (its digest) and one rebuilt from the module (its own weights) do not share
    # by key, and that is no weights difference to warn of.
    import json

    from hubensemble.export.shared import backbone_groups

    p0 = probe_members[0]
    keyed = json.dumps(dict(json.loads(p0.share_key), backbone="f" * 64), sort_keys=True)
    filed = ExportMember(p0.classifier, 12, 1.0, share_key=keyed)
    with caplog.at_level(logging.WARNING):
        assert backbone_groups([p0, filed, probe_members[1]]) == [(0, 2), (1,)]
    assert "weights differ" not in caplog.text


def test_the_tflite_ensemble_runs_a_shared_backbone_once(probe_members, tmp_path):
    from hubensemble.export import EnsembleModule
    from hubensemble.export.tflite import TFLiteEnsemble, write_tflite

    unshared = EnsembleModule(probe_members, list("abc"), share_backbones=False)
    module = TFLiteEnsemble(probe_members, (20, 20))
    assert module.groups == [(0, 1), (2,)]
    images = np.random.default_rng(1).uniform(size=(4, 20, 20, 3)).astype(np.float32)
    result = write_tflite(probe_members, list("abc"), tmp_path / "lite", input_hw=(20, 20),
                          check_images=images,
                          reference=lambda x: unshared.probabilities(x).numpy())
    assert result.max_abs_diff <= TOL
    meta = read_json(tmp_path / "lite" / "hubensemble.json")
    assert meta["shared_backbones"][0]["members"] == ["t0", "t1"]
    lite = graph_macs(lambda x: module.__call__(x)["probabilities"], size=20)
    alone = graph_macs(lambda x: unshared.member_probabilities(unshared.resized(x)), size=20)
    assert lite["Conv2D"] * 3 == alone["Conv2D"] * 2


@pytest.fixture(scope="module")
def probe_run(tiny_module, digits, tmp_path_factory):
    """A run ranked on the tiny module alone and tuned by the probe sweep (quick): several
    probes of one module, which the export runs on one backbone. Tuned once for the tests
    that take a copy of it (`_probes_of_one_module`)."""
    spec = ModuleSpec(name="plain", handle=tiny_module, family="generalist",
                      native_size=(16, 16))
    folder = tmp_path_factory.mktemp("probes")
    path = folder / "run"
    run = Run(path)
    run.attach_task(digits, DataArgs(spec="sklearn:digits"))
    run.update(modules={"plain": spec.to_json()})
    atomic_write_json(run.ranking_json, {
        "metric": "knn", "k": 1, "selection": {"method": "top-k"}, "selected": ["plain"],
        "modules": [{"name": "plain", "handle": tiny_module, "status": "ok", "score": 0.9}]})
    tune.run_tune(path, sweep="probe", profile="quick", progress=False, task=digits,
                  cache_dir=str(folder / "cache"))
    return spec, path


def _probes_of_one_module(probe_run, tmp_path):
    """(spec, run path, Run) of a copy of `probe_run`'s run, for a test that changes it."""
    spec, tuned = probe_run
    path = tmp_path / "run"
    shutil.copytree(tuned, path)
    return spec, path, Run(path)


def test_an_export_of_probes_of_one_module_records_and_costs_its_backbone_once(
        probe_run, tiny_module, digits, tmp_path):
    spec, path, run = _probes_of_one_module(probe_run, tmp_path)
    ensemble.run_ensemble(path, budget=3)
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    trials = [tune.trial_id("probe", i, "plain") for i in (0, 1)]
    data["members"] = [{"trial": t, "module": "plain", "hparams": cands[t].hparams,
                        "weight": w, "handle": tiny_module, "seed": cands[t].seed}
                       for t, w in zip(trials, (0.6, 0.4))]
    atomic_write_json(run.ensemble_json, data)
    result = export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    meta = read_metadata(str(tmp_path / "model"))
    assert meta["shared_backbones"] == [{"members": trials, "module": "plain", "eval_size": 16}]
    first, second = result.cost["members"]
    assert "shares_backbone_with" not in first and second["shares_backbone_with"] == trials[0]
    c = digits.num_classes  # on the tiny module's 8-d embedding (conftest.make_tiny_model)
    head = {"macs": 8 * c, "params": 8 * c + c}
    assert second["params"] == first["params"]  # the member alone: module and head
    assert second["counted"]["params"] == head["params"]
    assert result.cost["ensemble"]["params"] == first["params"] + head["params"]
    assert result.cost["ensemble"]["flops"] == round(first["gflops"] * 1e9) + 2 * head["macs"]
    assert result.cost["ensemble"]["latency_ms"] == first["latency_ms"]
    # A probe whose sweep kept no weights is rebuilt from its module (its head retrained):
    # its backbone is the module's own, as the other's file holds, so the two still run one
    # (the key held None for it and the file's digest for the other: they ran two).
    folder = run.candidates / trials[1]
    record = read_json(folder / candidate.TRIAL_FILE)
    atomic_write_json(folder / candidate.TRIAL_FILE, {**record, "weights": None})
    os.unlink(folder / candidate.WEIGHTS_FILE)
    export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    meta = read_metadata(str(tmp_path / "model"))
    assert [m["source"] for m in meta["members"]] == [
        "tuned weights", "retrained on train (weights not kept)"]
    assert meta["shared_backbones"] == [{"members": trials, "module": "plain", "eval_size": 16}]


def test_a_budget_counts_a_shared_backbone_once_as_the_measured_export_runs_it(
        probe_run, digits, tmp_path, caplog, figures_not_drawn):
    # Probes of one module under a budget that fits one backbone and two heads but not two
    # backbones: greedy selection counted each probe's whole backbone and kept one of them,
    # though the export runs the backbone once for both.
    from hubensemble.cost import read_run_costs
    from hubensemble.cost.stage import run_cost

    spec, path, run = _probes_of_one_module(probe_run, tmp_path)
    run_cost(path, cache_dir=tmp_path / "cost-cache", progress=False)
    costs = read_run_costs(path).costs
    assert len(costs) >= 3  # the probe sweep's strengths: more probes than the budget takes
    whole = next(iter(costs.values()))
    c = digits.num_classes  # the tiny module's embedding is 8-d (conftest.make_tiny_model)
    head = 2 * 8 * c / 1e9  # GFLOPs of a head on the shared embedding
    limit = whole.gflops + 1.5 * head  # one backbone with two heads, not a third nor two
    result = ensemble.run_ensemble(path, budget=5, size_rule="budget", max_gflops=limit)
    assert len(result.members) == 2, result.limits
    cost = read_json(run.ensemble_json)["cost"]["ensemble"]
    assert cost["gflops"] == pytest.approx(whole.gflops + head) and cost["gflops"] <= limit
    assert cost["params"] == whole.params + 8 * c + c
    # The report says who shares, and what the second adds: its members table gives each
    # member's own cost, which alone did not add up to the ensemble's row.
    from hubensemble.report.sections import build_sections
    from hubensemble.report.render import render_markdown

    md = render_markdown(*build_sections(path)[:2])
    first, second = (m["trial"] for m in result.members)
    assert (f"{second} runs the plain backbone of {first} and adds its head only "
            f"({head:.2g} GFLOPs, {8 * c + c:,} params" in md), md
    # The figures are what the exported SavedModel runs and stores, measured on it alone.
    export = export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    assert export.cost["ensemble"]["flops"] == cost["flops"]
    assert export.cost["ensemble"]["params"] == cost["params"]
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    served = graph_macs(lambda x: loaded.signatures["serving_default"](images=x)[
        "probabilities"], size=16)
    assert 2 * sum(served.values()) == cost["flops"]
    assert saved_params(loaded) == cost["params"]
    # Which members share is decided once per export (cost, SavedModel, TFLite were each
    # told it apart, so a probe whose frozen weights differ was warned of once per part).
    second = candidate.read_candidate(run.candidates, result.members[1]["trial"])
    model = tune.build_classifier(spec, c)
    model.load_weights(second.weights_path)
    for w in model.backbone.weights:
        w.assign(np.asarray(w) + 0.01)
    model.save_weights(second.weights_path)
    # Its file is not the one tune wrote (trial.json's weights_sha256): the export refuses
    # weights no figure was measured of (it served them with a warning).
    changed = f"its weights file {second.weights_path} is not the one tune wrote"
    with pytest.raises(RunError, match=re.escape(changed) + ".*restore the file"):
        export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    # A trial of a hubensemble before trial.json recorded its files' digests: a probe whose
    # frozen weights differ from its module's, which the export serves.
    atomic_write_json(second.folder / candidate.TRIAL_FILE, {
        k: v for k, v in second.record.items()
        if k not in ("weights_sha256", "backbone_sha256", "written")})
    with caplog.at_level(logging.WARNING):
        export = export_ensemble(path, tmp_path / "model", task=digits, progress=False,
                                 export_format="tflite")
    assert caplog.text.count("its frozen module's weights differ") == 1
    assert "shares_backbone_with" not in export.cost["members"][1]
    # The budget groups by the export's rule (the key holds the weights' digest): the edited
    # probe no longer fits beside another under the limit (it was admitted as sharing).
    again = ensemble.run_ensemble(path, budget=5, size_rule="budget", max_gflops=limit)
    trials = [m["trial"] for m in again.members]
    assert second.trial not in trials or trials == [second.trial]
    assert whole.head_macs == 8 * c  # cost.json records the head's size


def test_an_export_removes_the_retrained_weights_a_killed_export_left(
        run_dir, digits, tmp_path, monkeypatch):
    """An export killed while it retrained members (kill -9, the OOM killer) left their
    weights in the system's temp folder for good: `tempfile.mkdtemp`'s
    .tmp-export-weights-XXXX named no writer, so nothing could tell it was a dead one's (MBs
    a member, GBs with real backbones). The folder is named by its process now
    (`fileio.temp_dir_for`), and the next export removes a dead one's first; its own is gone
    when it ends. Fails before: the dead export's folder stays."""
    import tempfile

    from hubensemble.export.stage import WEIGHTS_WORK

    system = tmp_path / "system-tmp"
    system.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    dead = subprocess.run(
        [sys.executable, "-c", "import sys; from hubensemble import fileio; "
         "print(fileio.temp_dir_for(sys.argv[1]))", str(system / WEIGHTS_WORK)],
        capture_output=True, text=True, check=True).stdout.strip()
    os.makedirs(os.path.join(dead, "tmpabc"))
    with open(os.path.join(dead, "tmpabc", "default-0001-fixed.weights.h5"), "wb") as f:
        f.write(b"retrained weights" * 64)
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    data = read_json(Run(path).ensemble_json)
    data["members"] = [{**data["members"][0], "weight": 1.0}]
    atomic_write_json(Run(path).ensemble_json, data)
    export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    left = [n for n in os.listdir(system) if WEIGHTS_WORK in n]  # (autograph's files: its own)
    assert left == [], left  # the dead one's removed, and this export's own


def test_a_member_whose_trial_was_run_again_since_the_ensemble_is_refused(
        run_dir, digits, tmp_path):
    """A stand-alone `ensemble`, then `tune` running a member's trial again (an interrupted or
    changed trial it redoes): the export served the new trial's weights under the ensemble's
    weights and figures, chosen on the earlier trial's probabilities, without a word.
    ensemble.json records each member's validation table's sha256 now ("val_sha256", as
    trial.json records it), and export refuses a member whose trial records another, before
    the data loads. Fails before: the export is written."""
    import hubensemble.candidatefiles as files

    path = tmp_path / "run"
    shutil.copytree(run_dir, path, ignore=shutil.ignore_patterns("cost.json"))
    run = Run(path)
    result = ensemble.run_ensemble(path, budget=2)
    member = result.members[0]
    cand = candidate.read_candidate(run.candidates, member["trial"])
    assert member["val_sha256"] == files.written_digest(cand.record, candidate.VAL_PROBS_FILE)
    export_ensemble(path, tmp_path / "model", task=digits, progress=False)  # as chosen: fine
    cand.load_probs()
    weights = cand.weights_path.read_bytes() if cand.weights_path else None
    record = {k: v for k, v in cand.record.items() if k not in (files.WRITTEN, "weights_sha256")}
    candidate.write_candidate(  # the trial run again: other probabilities, its own files
        run.candidates, record, val_probs=np.roll(cand.val_probs, 1, axis=0),
        test_probs=cand.test_probs,
        save_weights=(lambda p: open(p, "wb").write(weights)) if weights else None)
    with pytest.raises(RunError) as e:
        export_ensemble(path, tmp_path / "model2", task=digits, progress=False)
    said = str(e.value)
    assert said.startswith(f"member {member['trial']}: its trial was run again since "
                           f"{run.ensemble_json} chose it (its validation probabilities: "
                           "sha256 "), said
    assert "then export" in said and not (tmp_path / "model2").exists(), said


def test_an_ensemble_of_no_members_is_refused_naming_its_file_absolute(tmp_path, monkeypatch):
    """`export --run r` of an ensemble.json listing no members said "r/ensemble.json lists
    no members": relative to the folder it ran in, beside the absolute run of its way on.
    Named absolute and escaped now (`text.escaped` of `text.absolute`). Files only."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("r")
    atomic_write_json(os.path.join("r", "run.json"), {})
    atomic_write_json(os.path.join("r", "ensemble.json"), {"members": []})
    with pytest.raises(RunError) as e:
        export_ensemble("r", progress=False)
    assert str(e.value).startswith(f"{tmp_path}/r/ensemble.json lists no members; "), e.value


def test_an_export_records_the_members_cost_it_counted_in_cost_json(
        run_dir, digits, tmp_path, caplog):
    """`export` of a run whose RUN/cost.json lacks a member (cost not run since its trial)
    counted the member's cost for its metadata and kept it there alone: the report's and
    ensemble's readers of cost.json, and a later `hubensemble cost`, had no cost of the
    member the export's metadata gave. It is recorded in cost.json now, through its owner
    (`cost.records.add_run_costs`), as the cost pass records it; a cost.json of the
    member already is read, not counted again. Fails before: no cost.json after the export."""
    from hubensemble.cost import read_run_costs

    path = tmp_path / "run"
    shutil.copytree(run_dir, path, ignore=shutil.ignore_patterns("cost.json"))
    run = Run(path)
    data = read_json(run.ensemble_json)
    data["members"] = [{**data["members"][0], "weight": 1.0}]  # one member with its weights
    atomic_write_json(run.ensemble_json, data)
    trial = data["members"][0]["trial"]
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        result = export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    row = result.cost["members"][0]
    recorded = read_run_costs(path).costs
    assert list(recorded) == [trial], recorded
    assert {**recorded[trial].summary(), "trial": trial} == row, (recorded, row)
    assert f"export: recorded the cost of 1 member in {run.cost_json}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hubensemble"):
        again = export_ensemble(path, tmp_path / "model", task=digits, progress=False)
    assert again.cost["members"] == result.cost["members"]
    assert "counting the cost of member" not in caplog.text, caplog.text


def test_the_stale_tflite_removal_names_the_export_in_the_callers_words(tmp_path, caplog):
    """Replacing an export removes the TFLite model converted from the one it replaced and
    says how to convert this one: a Python caller (export_ensemble) was told to run
    `hubensemble export --run R --format tflite`, a command it never typed. Files only."""
    from types import SimpleNamespace

    from hubensemble.export.stage import _remove_stale_tflite

    run = Run(tmp_path / "run")
    out = tmp_path / "elsewhere"

    def stale():
        os.makedirs(f"{out}-tflite")
        (tmp_path / "elsewhere-tflite" / "model.tflite").write_bytes(b"tfl")
        atomic_write_json(f"{out}-tflite/hubensemble.json",
                          {"format": "hubensemble-export-tflite"})

    stale()
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        _remove_stale_tflite(out, run, SimpleNamespace(module="s1"))
    assert not os.path.exists(f"{out}-tflite")
    assert (f"call export_ensemble(run_dir={str(run.path)!r}, student='s1', "
            f"out_dir={str(out)!r}, export_format='tflite') for one of this export"
            ) in caplog.text
    assert "--" not in caplog.text, caplog.text
    caplog.clear()
    stale()
    with command_line(), caplog.at_level(logging.WARNING, logger="hubensemble"):
        _remove_stale_tflite(out, run)
    assert (f"run `hubensemble export --run {run.path} --out {out} --format tflite` for one "
            "of this export") in caplog.text, caplog.text
    # A stop part-way through the deletion (a file gone, then Ctrl-C) leaves no half
    # OUT-tflite/ that the next export would refuse as a folder of the user's: it is moved
    # aside in one rename first (tflite.remove_tflite_export), as the TFLite step does.
    stale()
    rmtree = shutil.rmtree

    def stopped(path, *args, **kwargs):
        if os.path.isdir(path):
            os.remove(next(os.scandir(path)).path)
            raise KeyboardInterrupt
        return rmtree(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(shutil, "rmtree", stopped)
        _remove_stale_tflite(out, run)
    assert not os.path.exists(f"{out}-tflite"), os.listdir(tmp_path)


def test_add_warmup_leaves_no_temp_file_and_clears_a_dead_writers(tmp_path):
    """add_warmup wrote `tf_serving_warmup_requests.tmp-PID` in the export's assets.extra and
    moved it into place; one a killed process left stayed there for good (nobody cleaned
    it). Now it writes in a temp folder named by its process (fileio.temp_dir_for) and
    deletes a dead writer's, and an older hubensemble's temp file, first. Files only: the
    step after the requests ran on the model (add_warmup's call takes 10 s here)."""
    import socket

    from hubensemble.export.warmup import _put_requests, warmup_requests

    extra = tmp_path / "export" / "assets.extra"
    dead = 2 ** 22 + 12345  # above Linux's largest pid (pid_max <= 2**22): no process has it
    stale = extra / f".tmp-tf_serving_warmup_requests.{dead}_1@{socket.gethostname()}"
    stale.mkdir(parents=True)
    (stale / "tf_serving_warmup_requests").write_bytes(b"half")
    (extra / f"tf_serving_warmup_requests.tmp-{dead}").write_bytes(b"half")
    path = str(extra / "tf_serving_warmup_requests")
    _put_requests(path, warmup_requests(4, 4))
    assert sorted(os.listdir(extra)) == ["tf_serving_warmup_requests"]
    assert len(list(tf.data.TFRecordDataset(path))) == len(warmup_requests(4, 4))


def test_export_retrain_full_takes_a_training_batch_of_its_own(tmp_path, capsys):
    """export --retrain-full retrained each member at its recorded batch only: a run tuned at
    a large batch elsewhere could not be retrained on a small machine. --train-batch-size N
    (export_ensemble's train_batch_size) retrains in batches of N, each lr x N / the
    member's batch (as distill's student and tune's --train-batch-size), records N in the
    metadata, and is refused without --retrain-full; a fit's options hand it to export only
    with retrain_full."""
    import argparse

    from hubensemble import options
    from hubensemble.cli import build_parser
    from hubensemble.export.metadata import export_metadata
    from hubensemble.export.retrain import at_train_batch

    hp = HParams(**get_profile("cpu").scale({"lr": 0.1, "steps": 2500}), seed=3)
    small = at_train_batch(hp, 8)
    assert (hp.batch_size, small.batch_size, small.lr) == (32, 8, pytest.approx(hp.lr / 4))
    assert small.steps == hp.steps and small.momentum == hp.momentum and small.seed == 3
    assert at_train_batch(hp, None) is hp and at_train_batch(hp, 32) is hp
    # refused without retrain_full, in the caller's words, before the run folder is read
    for words, said in [(contextlib.nullcontext, "train_batch_size applies only to the "
                                                 "retraining of retrain_full=True; add it"),
                        (command_line, "--train-batch-size applies only to the retraining "
                                       "of --retrain-full; add it")]:
        with words(), pytest.raises(options.OptionError, match=re.escape(said)):
            export_ensemble(tmp_path / "none", train_batch_size=8)
    with pytest.raises(options.OptionError, match="must be an integer >= 1"):
        export_ensemble(tmp_path / "none", retrain_full=True, train_batch_size=0)
    # the export command's flag; fit hands it to its export only with --retrain-full (its
    # members were tuned at it), the export command always (to be refused alone)
    args = build_parser().parse_args(["export", "--run", "r", "--retrain-full",
                                      "--train-batch-size", "8"])
    assert options.kwargs_for("export", args)["train_batch_size"] == 8
    alone = build_parser().parse_args(["export", "--run", "r", "--train-batch-size", "8"])
    assert options.kwargs_for("export", alone)["train_batch_size"] == 8
    assert build_parser().parse_args(["export", "--run", "r"]).train_batch_size is None
    fit = argparse.Namespace(train_batch_size=8, retrain_full=False, skip_missing=False)
    assert "train_batch_size" not in options.kwargs_for("export", fit)
    fit.retrain_full = True
    assert options.kwargs_for("export", fit)["train_batch_size"] == 8
    assert options.kwargs_for("tune", argparse.Namespace(train_batch_size=8)) == {
        "train_batch_size": 8}
    # the metadata records it, and its note says so
    from hubensemble.data import Split, Task

    task = Task(name="t", source="s", class_names=["a", "b"], train=Split(
        images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array([0, 1, 0, 1], np.int64)))
    meta = export_metadata({}, [], [], task, retrain_full=True, train_batch_size=8)
    assert meta["train_batch_size"] == 8
    assert "retrained in batches of 8 images" in " ".join(meta["metrics"]["notes"])
    assert export_metadata({}, [], [], task, retrain_full=True)["train_batch_size"] is None
    # recorded only when it changed a member's batch: fit hands on the batch its members were
    # tuned at, and adopts an export retrained at its members' own batches only
    from hubensemble.export.adopt import fit_would_write
    from hubensemble.export.stage import _other_batch
    from hubensemble.formats import EXPORT_FORMAT

    plans = [argparse.Namespace(record={"hparams": {"batch_size": b}}) for b in (8, 8)]
    assert (_other_batch(8, plans), _other_batch(4, plans), _other_batch(None, plans)) == (
        None, 4, None)
    record = {"format": EXPORT_FORMAT, "made_from": {"ensemble": "sha"}, "retrain_full": True,
              "members": [], "task": {"fingerprint": "f"}, "run": {"created": "c"}}
    run_meta = {"data": {"task": {"fingerprint": "f"}}, "created": "c"}
    assert fit_would_write(record, run_meta, "sha", {"members": []}, True)
    assert not fit_would_write({**record, "train_batch_size": 4}, run_meta, "sha",
                               {"members": []}, True)


def test_the_tensorflow_internals_the_export_saves_time_with_are_there():
    # 78a7731 traces __call__ under TensorFlow's save_context (not public API) and 8789fd3
    # keeps serve_bytes' refusals out of line with tf.function's "_noinline" attribute; each
    # falls back, on a TensorFlow that moved it, to a slower export with the same outputs, so
    # no other test would notice: this one names the internal that moved.
    from tensorflow.python.saved_model import save_context

    from hubensemble.export import saved

    assert not save_context.in_save_context()
    with saved._in_save_context():
        assert save_context.in_save_context(), "tensorflow.python.saved_model.save_context"
    refusal = saved.refusal_path(lambda: tf.constant(1))
    attr = refusal.get_concrete_function().function_def.attr["_noinline"]
    assert attr.b, "tf.function(experimental_attributes={'_noinline': True})"


def test_serve_bytes_names_a_ppm_or_pgm_and_says_to_convert_it(loaded, digits):
    """A PPM or PGM was refused as "not a JPEG, PNG, GIF, BMP or WebP file (it starts with
    bytes 50 36 …)"; it is named as a TIFF is, and every image of another format is told
    what to do; a document is not told to convert."""
    from hubensemble.data.decode import op_error_reason

    png = encode(picture(digits, 0, (20, 20)), "PNG")
    ppm = encode(picture(digits, 1, (20, 20)), "PPM")
    pgm = encode(picture(digits, 2, (20, 20))[..., 0], "PPM")  # grey: Pillow writes P5
    tiff = encode(picture(digits, 3, (20, 20)), "TIFF")
    serve = loaded.signatures["serve_bytes"]
    for batch, words in (([png, ppm], "image_bytes[1] (of 2): a PPM file"),
                         ([pgm], "a PGM file"), ([tiff, png], "image_bytes[0] (of 2): a TIFF file"),
                         ([b"P3\n2 1\n255\n" + b"0 0 0 " * 2], "a PPM file")):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            serve(image_bytes=tf.constant(batch))
        assert op_error_reason(caught.value) == (
            f"hubensemble-decode[unsupported]: {words}; serve_bytes decodes JPEG, PNG, GIF, BMP "
            "and WebP only: convert it to PNG first (hubensemble predict does: it reads it with "
            "Pillow)"), op_error_reason(caught.value)
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        serve(image_bytes=tf.constant([b"%PDF-1.4\n"]))
    assert op_error_reason(caught.value).endswith("GIF, BMP and WebP only")


def test_save_export_refuses_a_folder_under_a_file_in_the_callers_words(tmp_path):
    """save_export's first check of its folder told a Python caller "choose another --out
    folder", a flag it never typed (its later make_dirs already said out_dir); the command
    line's words stay --out. Fails before: "--out" from Python."""
    import keras

    from hubensemble.lockwords import command_line

    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    clf = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(3, activation="softmax")])
    member = ExportMember(clf, 4, 1.0)
    check = np.zeros((1, 4, 4, 3), np.float32)
    for caller, said in ((contextlib.nullcontext, "out_dir"), (command_line, "--out")):
        with caller(), pytest.raises(HubensembleError,
                                     match=rf"choose another {said} folder\)?$"):
            save_export([member], ["a", "b", "c"], in_the_way / "x", check_images=check)
    assert not (tmp_path / "x").exists() and in_the_way.read_text() == "not a folder"


@pytest.mark.parametrize("damage", ["entry_a_string", "unknown_field", "modules_a_list"])
def test_a_hand_edited_catalogue_entry_in_run_json_is_refused_in_words(
        run_copy, digits, tmp_path, damage):
    """run.json's catalogue entries edited by hand (an entry that is a string, an unknown
    field, "modules" a list) stopped export with a ValueError or AttributeError traceback, as
    they did tune, distill and fit's plan (cost said it in words): every stage reads them
    through `runspecs`, refused in one line naming run.json absolute, the module and the way
    on, before any member is built. Fails before: ValueError / no catalogue entry."""
    meta_path = run_copy / "run.json"
    meta = json.loads(meta_path.read_text())
    name = sorted(meta["modules"])[0]
    if damage == "entry_a_string":
        meta["modules"][name] = "fixed"
        said = rf"the catalogue entry of module '{name}' is damaged \(a JSON string"
    elif damage == "unknown_field":
        meta["modules"][name]["colour"] = "blue"
        said = rf"the catalogue entry of module '{name}' is damaged \(.*colour"
    else:
        meta["modules"] = list(meta["modules"].values())
        said = r"its \"modules\" record is a JSON array, expected an object"
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "model"
    with pytest.raises(RunError, match=rf"{re.escape(str(meta_path.resolve()))}.*{said}.*"
                                       r"restore run\.json from a copy, or .*rank.* again"):
        export_ensemble(run_copy, out, task=digits, progress=False)
    assert not out.exists()


def test_files_put_into_the_export_folder_while_it_is_written_are_kept(
        probe_members, probe_export, tmp_path):
    """A new-user check: `fit --export "exp dir"`, and a notes.txt written into the (empty)
    folder as the export was being written, was deleted with the old folder at the swap, exit
    0. The swap asks again (formats.replaceable_export, the early check's rule): refused in
    words naming the folder, which is left as it was; an empty one is written as before."""
    from hubensemble.formats import is_export

    images = np.random.default_rng(0).uniform(size=(4, 20, 17, 3)).astype(np.float32)
    out = tmp_path / "exp dir"
    out.mkdir()

    def user_writes_notes(line):
        if line.startswith("export: reload check"):  # mid-export, after the early check
            (out / "notes.txt").write_text("keep me")

    with pytest.raises(HubensembleError, match=re.escape(
            f"{out} came to hold other files while the export was written there")):
        save_export(probe_members, list("abc"), out, check_images=images,
                    say=user_writes_notes)
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["exp dir"]  # no temp folder left
    # An empty folder made for it is written as before: `probe_export`'s save, into a folder
    # as this one is with notes.txt gone (nothing else in it or beside it, as just checked).
    assert is_export(probe_export[0]) and os.path.isdir(probe_export[0] / "variables")


def test_an_earlier_export_holding_a_users_file_is_not_replaced(probe_members, probe_export,
                                                                tmp_path):
    """A new-user check: `hubensemble export --out "exp dir"` over an earlier export into
    which the user had put notes.txt replaced it, exit 0, notes.txt gone (is_export asked
    only for the metadata asset). An earlier export holding entries it did not write is
    refused before the work, naming them, and at the swap if they come meanwhile; an
    earlier export as it was written is replaced as before."""
    from hubensemble.formats import check_export_target, foreign_entries, is_export

    images = np.random.default_rng(0).uniform(size=(4, 20, 17, 3)).astype(np.float32)
    out = tmp_path / "exp dir"
    shutil.copytree(probe_export[0], out)  # an export as save_export wrote it
    assert foreign_entries(out) == []
    save_export(probe_members, list("abc"), out, check_images=images)  # its own: replaced
    (out / "notes.txt").write_text("keep me")
    (out / "variables" / "mine.txt").write_text("mine")
    assert foreign_entries(out) == ["notes.txt", "variables/mine.txt"]
    with pytest.raises(RunError, match=re.escape(
            f"{out} holds an earlier export and 2 entries it did not write (notes.txt, "
            "variables/mine.txt), which replacing it would delete: move them out, choose "
            "another --out folder, or delete it first")):
        check_export_target(out)
    with pytest.raises(RunError, match="2 entries it did not write"):
        save_export(probe_members, list("abc"), out, check_images=images)
    (out / "variables" / "mine.txt").unlink()
    (out / "notes.txt").unlink()

    def user_writes_notes(line):  # after the early check, as the export is written
        if line.startswith("export: reload check"):
            (out / "notes.txt").write_text("keep me")

    with pytest.raises(HubensembleError, match="came to hold other files while the export"):
        save_export(probe_members, list("abc"), out, check_images=images, say=user_writes_notes)
    assert (out / "notes.txt").read_text() == "keep me" and is_export(out)


def test_an_exports_metadata_records_its_run_relative_to_it(exported, run_dir):
    # Fails before: export/stage.py gave run_record no export folder, so no export recorded
    # "relative" and one moved together with its run named the run's old path (484).
    record = read_metadata(exported[1])["run"]
    assert record["path"] == os.path.abspath(run_dir)
    assert os.path.normpath(os.path.join(exported[1], record["relative"])) == \
        os.path.abspath(run_dir)
