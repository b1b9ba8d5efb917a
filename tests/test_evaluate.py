"""Robustness evaluation: corruptions (deterministic, bounded, monotone) and evaluate_model
against metrics computed by hand from a tiny real SavedModel's own outputs."""

import json
import logging
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from evaluatefakes import fake_export, fake_saved_model_pb, refused_before_tensorflow
from hubensemble import evaluate as ev
from hubensemble.data import Split, Task
from hubensemble.errors import DataError, HubensembleError, RunError
from hubensemble.text import shown_time

NUM_CLASSES = 3
WEIGHTS = (0.5, 0.3, 0.2)
TRIALS = ("default-0000-a", "default-0001-b", "default-0002-c")
BEST = "default-0001-b"


def smooth_images(n=6, side=32, seed=0):
    """Natural-ish images: random 8x8 colour fields upsampled, values in [0.1, 0.7]."""
    base = np.random.default_rng(seed).random((n, 8, 8, 3)).astype(np.float32)
    up = tf.image.resize(base, (side, side), method="bicubic").numpy()
    return np.clip(up, 0.0, 1.0) * 0.6 + 0.1


def psnr(a, b):
    return 10.0 * np.log10(1.0 / np.mean((a - b) ** 2))


# ---------------------------------------------------------------------------------------------
# Corruptions
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ev.CORRUPTIONS))
def test_corruption_is_deterministic_bounded_and_stronger_with_severity(name):
    x = smooth_images()
    fn = ev.CORRUPTIONS[name]
    quality = []
    for severity in ev.SEVERITIES:
        a = fn(x, severity, 3)
        assert a.shape == x.shape and a.dtype == np.float32
        assert a.min() >= 0.0 and a.max() <= 1.0
        np.testing.assert_array_equal(a, fn(x, severity, 3))
        quality.append(psnr(a, x))
    assert quality[0] > quality[1] > quality[2], quality
    assert np.isfinite(quality[0])  # severity 1 changes the image


@pytest.mark.parametrize("name", list(ev.CORRUPTIONS))
def test_corruption_seeds_and_batches(name):
    x = smooth_images(n=7)
    fn = ev.CORRUPTIONS[name]
    a, b = fn(x, 2, 0), fn(x, 2, 1)
    if name in ev.RANDOM_CORRUPTIONS:
        assert not np.array_equal(a, b)
        # Different images of one batch get different noise, not one pattern repeated.
        same = np.repeat(x[:1], 2, axis=0)
        twin = fn(same, 2, 0)
        assert not np.array_equal(twin[0], twin[1])
    else:
        np.testing.assert_array_equal(a, b)
    # A split corrupted in batches equals the split corrupted at once.
    np.testing.assert_array_equal(fn(x[4:], 2, 0, start=4), a[4:])
    # One image [H, W, 3] works as a batch of one.
    np.testing.assert_array_equal(fn(x[0], 2, 0), a[0])


def test_brightness_matches_an_hsv_round_trip():
    x = smooth_images(n=3, side=16)
    x[0, :2, :2] = 0.0  # black pixels: hue/saturation undefined, value only
    for severity, delta in zip(ev.SEVERITIES, ev.PARAMETERS["brightness"]):
        hsv = tf.image.rgb_to_hsv(x)
        v = tf.clip_by_value(hsv[..., 2:] + delta, 0.0, 1.0)
        expected = tf.image.hsv_to_rgb(tf.concat([hsv[..., :2], v], axis=-1)).numpy()
        np.testing.assert_allclose(ev.CORRUPTIONS["brightness"](x, severity, 0), expected,
                                   atol=2e-6)


def test_blur_matches_scipy_gaussian_filter():
    from scipy.ndimage import gaussian_filter

    x = smooth_images(n=2, side=32)
    for severity in ev.SEVERITIES:
        sigma = ev.blur_sigma(ev.PARAMETERS["gaussian_blur"][severity - 1], 32, 32)
        expected = gaussian_filter(x.astype(np.float64), sigma=(0, sigma, sigma, 0),
                                   mode="nearest", truncate=4.0)
        np.testing.assert_allclose(ev.CORRUPTIONS["gaussian_blur"](x, severity, 0), expected,
                                   atol=1e-4)  # float32 convolution vs float64


def test_blur_sigma_scaling():
    assert ev.blur_sigma(3.0, 224, 300) == pytest.approx(3.0)
    assert ev.blur_sigma(6.0, 32, 32) == pytest.approx(6.0 * np.sqrt(32 / 224))
    assert ev.blur_sigma(1.0, 8, 8) == ev.MIN_BLUR_SIGMA


def test_unknown_corruption_and_bad_arguments_are_errors_that_list_the_names():
    with pytest.raises(HubensembleError) as e:
        ev.get_corruption("fog")
    for name in ev.CORRUPTIONS:
        assert name in str(e.value)
    assert "did you mean" not in str(e.value)  # fog is no slip of any of them
    with pytest.raises(HubensembleError, match=r"unknown corruption 'gausian_noise' \(did you "
                                               r"mean gaussian_noise\?\); choose from "):
        ev.get_corruption("gausian_noise")
    with pytest.raises(HubensembleError, match="gaussian_noise"):
        ev.resolve_corruptions(["contrast", "snow"])
    with pytest.raises(HubensembleError, match="severity"):
        ev.CORRUPTIONS["contrast"](smooth_images(n=1), 4, 0)
    with pytest.raises(HubensembleError, match="seed"):
        ev.CORRUPTIONS["gaussian_noise"](smooth_images(n=1), 1, -1)
    assert ev.resolve_corruptions(True) == list(ev.DEFAULT_CORRUPTIONS)
    assert ev.resolve_corruptions(False) == []
    assert ev.resolve_corruptions("all") == list(ev.CORRUPTIONS)
    assert ev.resolve_corruptions("jpeg, contrast,jpeg") == ["jpeg", "contrast"]
    # evaluate_model's check names its keywords to Python (the command line's words, test_cli's
    # before-TensorFlow test, are the flags): both were told "corruptions (--corruptions)".
    for args, said in ((("test", "bogus", None), "corruptions: unknown corruption 'bogus'"),
                       (("bogus", True, None), "split: unknown split 'bogus'"),
                       (("test", True, [4]), "severities: severity must be one of 1, 2, 3")):
        with pytest.raises(HubensembleError) as e:
            ev.check_evaluate_options(*args)
        assert str(e.value).startswith(said), str(e.value)


# ---------------------------------------------------------------------------------------------
# evaluate_model on a small real SavedModel with the export's signatures and asset
# ---------------------------------------------------------------------------------------------

def build_export(path, *, members=True, best=BEST, seed=0, class_names=("a", "b", "c")):
    """An export-shaped SavedModel: 3 linear members on 2x2 area-pooled colours; signatures
    serving_default (weighted average) and optionally serve_members (`members` "both": it
    returns the weighted average too, as hubensemble's exports do; True: only the members',
    as exports did before); assets/hubensemble.json."""
    rng = np.random.default_rng(seed)
    kernel = tf.Variable(rng.normal(size=(len(WEIGHTS), 12, NUM_CLASSES)).astype(np.float32) * 4)
    bias = tf.Variable(rng.normal(size=(len(WEIGHTS), NUM_CLASSES)).astype(np.float32))
    w = tf.constant(WEIGHTS, tf.float32)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    def member_probs(images):
        f = tf.reshape(tf.image.resize(images, [2, 2], method="area"), [-1, 12]) - 0.4
        return tf.nn.softmax(tf.einsum("nf,mfc->nmc", f, kernel) + bias, axis=-1)

    @tf.function(input_signature=[spec])
    def serving_default(images):
        p = tf.einsum("nmc,m->nc", member_probs(images), w)
        return {"probabilities": p, "class_ids": tf.argmax(p, axis=-1)}

    @tf.function(input_signature=[spec])
    def serve_members(images):
        p = member_probs(images)
        if members == "both":
            return {"member_probabilities": p, "probabilities": tf.einsum("nmc,m->nc", p, w)}
        return {"member_probabilities": p}

    root = tf.train.Checkpoint()
    root.kernel, root.bias = kernel, bias
    root.serving_default = serving_default
    signatures = {"serving_default": serving_default.get_concrete_function()}
    if members:
        root.serve_members = serve_members
        signatures["serve_members"] = serve_members.get_concrete_function()
    tf.saved_model.save(root, str(path), signatures=signatures)
    asset = {"format": "hubensemble-export", "class_names": list(class_names),
             "num_classes": NUM_CLASSES, "best_single": best,
             "members": [{"trial": t, "module": t[-1], "weight": wt}
                         for t, wt in zip(TRIALS, WEIGHTS)]}
    os.makedirs(path / "assets", exist_ok=True)
    (path / "assets" / "hubensemble.json").write_text(json.dumps(asset))
    return path


def make_task(model_dir, n=29, side=12, mixed=False, seed=1):
    """A 3-class task whose test labels mostly agree with the model (the rest random)."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, side, side, 3)) * 255).astype(np.uint8)
    loaded = tf.saved_model.load(str(model_dir))
    pred = loaded.signatures["serving_default"](
        images=tf.constant(images.astype(np.float32) / 255.0))["class_ids"].numpy()
    labels = np.where(rng.random(n) < 0.7, pred, rng.integers(0, NUM_CLASSES, n)).astype(np.int64)
    if mixed:
        test_images = [im[: side - (i % 3), : side + (i % 2)] for i, im in enumerate(images)]
    else:
        test_images = images
    # As many labels as images (n may be below 9: a Split refuses counts that differ).
    train = Split(images=images[:9], labels=np.arange(min(n, 9), dtype=np.int64) % NUM_CLASSES)
    return Task(name="toy", source="test", class_names=["a", "b", "c"], train=train,
                test=Split(images=test_images, labels=labels))


def reference_metrics(probs, y, balanced=False, bins=15):
    """Deliberately plain: accuracy, mean -log p(y) (p floored at 1e-7, Keras' epsilon: the
    one floor of every stage), and ECE by a loop over 15 equal-width bins (lo, hi] (a
    confidence of 0 in the first); with `balanced`, scikit-learn's balanced accuracy."""
    from sklearn.metrics import balanced_accuracy_score

    probs = np.asarray(probs, np.float64)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        if inside.any():
            total += inside.sum() / len(y) * abs(np.mean(pred[inside] == y[inside])
                                                 - np.mean(conf[inside]))
    p_true = np.maximum(probs[np.arange(len(y)), y], 1e-7)
    return {"accuracy": float(np.mean(pred == y)), "nll": float(np.mean(-np.log(p_true))),
            "ece": total, **({"balanced_accuracy": balanced_accuracy_score(y, pred)}
                             if balanced else {})}


def assert_close(got, want):
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-6), k


@pytest.fixture(scope="module", params=["both", True], ids=["serve-members-both",
                                                            "serve-members-only"])
def export_dir(tmp_path_factory, request):
    return build_export(tmp_path_factory.mktemp("export") / "model", members=request.param)


def test_evaluate_model_matches_metrics_from_the_models_outputs(export_dir, tmp_path):
    task = make_task(export_dir)
    names = ["gaussian_noise", "contrast", "jpeg"]
    result = ev.evaluate_model(export_dir, task, corruptions=names, severities=(1, 3), seed=5,
                               batch_size=7, progress=False)

    loaded = tf.saved_model.load(str(export_dir))
    clean = task.test.float_images()
    y = task.test.labels

    def reference(images):
        x = tf.constant(images)
        ens = loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
        members = loaded.signatures["serve_members"](images=x)["member_probabilities"].numpy()
        return {"ensemble": reference_metrics(ens, y, lopsided),
                "best_single": reference_metrics(members[:, TRIALS.index(BEST)], y,
                                                 lopsided)}

    lopsided = result["classes"]["unbalanced"]  # then balanced accuracy too (sklearn's)

    want = reference(clean)
    for model in ("ensemble", "best_single"):
        assert_close(result["clean"][model], want[model])
    corrupted = []
    for name in names:
        assert set(result["corruptions"][name]) == {"1", "3"}
        for sev in (1, 3):
            # The whole split at once (start=0) must equal evaluate's batches of 7.
            want = reference(ev.CORRUPTIONS[name](clean, sev, 5))
            corrupted.append(want)
            for model in ("ensemble", "best_single"):
                assert_close(result["corruptions"][name][str(sev)][model], want[model])
    for model in ("ensemble", "best_single"):
        for k in ("accuracy", "nll", "ece"):
            mean = np.mean([c[model][k] for c in corrupted])
            assert result["mean_corrupted"][model][k] == pytest.approx(mean, abs=1e-6)
    assert result["best_single"]["trial"] == BEST and "best_single_missing" not in result
    assert result["n"] == len(y) and result["split"] == "test"
    assert result["parameters"]["jpeg"] == {"1": 25, "3": 7}
    # Noise is strong enough to hurt at severity 3.
    assert result["corruptions"]["contrast"]["3"]["ensemble"] != result["clean"]["ensemble"]

    path = ev.write_evaluation(result, tmp_path / "robustness.json")
    assert ev.read_evaluation(path) == json.loads(json.dumps(result))
    # evaluate --out may replace an earlier evaluation, an empty file or nothing; a JSON of
    # another kind is refused before the work (test_cli has a user's text file).
    (tmp_path / "empty.json").write_text(" \n")
    for ok in (path, tmp_path / "empty.json", tmp_path / "new.json"):
        ev.check_evaluation_target(ok)
    (tmp_path / "other.json").write_text('{"accuracy": 0.9}')
    with pytest.raises(HubensembleError, match="other.json exists and is not an evaluation"):
        ev.check_evaluation_target(tmp_path / "other.json")
    table = ev.format_evaluation(result)
    assert BEST in table and "gaussian_noise" in table and "mean over corruptions" in table
    # The note on the splits not scored, on the export's own data: only its test split is
    # held out (it said the unscored splits "trained and chose it" under --split val too).
    for split, says in (("test", "not scored: train 3, val 2 (the data the export was made "
                                 "on: they trained and chose it)"),
                        ("val", "not scored: train 3, test 2 (the data the export was made "
                                "on: the val split scored here chose it, so these figures "
                                "are not a held-out measure)")):
        other = [s for s in ("train", "val", "test") if s != split]
        own = {**result, "split": split, "same_data_as_export": True,
               "task": {"unscored": dict(zip(other, (3, 2)))}}
        assert says in ev.format_evaluation(own)
    assert f"{result['clean']['ensemble']['accuracy']:.4f}" in table
    assert f"{result['clean']['best_single']['nll']:.4f}" in table


def mixed_size_task(model_dir, n=11, seed=2):
    """A 3-class task whose test images have 5 sizes (interleaved, 5..23 px a side); labels
    mostly the model's predictions."""
    rng = np.random.default_rng(seed)
    sides = [(5, 9), (12, 12), (23, 17), (9, 5), (16, 21)]
    images = [(rng.random((*sides[i % len(sides)], 3)) * 255).astype(np.uint8)
              for i in range(n)]
    loaded = tf.saved_model.load(str(model_dir))
    pred = [int(loaded.signatures["serving_default"](
        images=tf.constant(im[None].astype(np.float32) / 255.0))["class_ids"].numpy()[0])
        for im in images]
    labels = np.where(rng.random(n) < 0.7, pred, rng.integers(0, NUM_CLASSES, n)).astype(np.int64)
    train = Split(images=(rng.random((9, 12, 12, 3)) * 255).astype(np.uint8),
                  labels=np.arange(9, dtype=np.int64) % NUM_CLASSES)
    return Task(name="toy", source="test", class_names=["a", "b", "c"], train=train,
                test=Split(images=images, labels=labels))


def test_images_of_mixed_sizes_are_fed_at_their_own_size(export_dir):
    """A new-user check: test images of mixed sizes were resized to the task's median size
    and then by each member to its own (100 -> 64 -> 32, not 100 -> 32), so evaluate's clean
    metrics differed from ensemble.json's and from predict on the same files. Now each image
    is fed, and corrupted, at its own size: the metrics are those of serving_default (and
    serve_members) called on each image alone."""
    task = mixed_size_task(export_dir)
    names, seed = ["gaussian_noise", "gaussian_blur", "jpeg"], 5
    # batch_size 2: the batches of one size hold split indices that are not consecutive.
    result = ev.evaluate_model(export_dir, task, corruptions=names, severities=(1, 3),
                               seed=seed, batch_size=2, progress=False)
    assert result["image_size"] is None and result["n"] == len(task.test)
    loaded = tf.saved_model.load(str(export_dir))
    y = task.test.labels

    def one_by_one(images):
        ens, single = [], []
        for im in images:
            x = tf.constant(im[None])
            ens.append(loaded.signatures["serving_default"](images=x)["probabilities"][0])
            members = loaded.signatures["serve_members"](images=x)["member_probabilities"]
            single.append(members[0, TRIALS.index(BEST)])
        lopsided = result["classes"]["unbalanced"]
        return {"ensemble": reference_metrics(np.stack(ens), y, lopsided),
                "best_single": reference_metrics(np.stack(single), y, lopsided)}

    clean = [im.astype(np.float32) / 255.0 for im in task.test.images]
    want = one_by_one(clean)
    for model in ("ensemble", "best_single"):
        assert_close(result["clean"][model], want[model])
    # Each image corrupted at its own size (the blur's sigma scales with it), its noise
    # that of its index in the split, whatever the batches.
    for name in names:
        for sev in (1, 3):
            want = one_by_one([ev.CORRUPTIONS[name](im, sev, seed, start=i)
                               for i, im in enumerate(clean)])
            for model in ("ensemble", "best_single"):
                assert_close(result["corruptions"][name][str(sev)][model], want[model])


def test_size_batches_hold_one_size_each_and_every_image_once():
    shapes = [(5, 9), (12, 12), (5, 9), (9, 5), (5, 9), (12, 12), (5, 9)]
    batches = ev.size_batches(shapes, 2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(shapes)))
    for b in batches:
        assert 1 <= len(b) <= 2 and len({shapes[i] for i in b}) == 1
        assert list(b) == sorted(b) and b.dtype == np.int64
    assert [b.tolist() for b in ev.size_batches([(8, 8)] * 5, 2)] == [[0, 1], [2, 3], [4]]
    assert ev.size_batches(np.zeros((0, 2), np.int64), 4) == []


def test_export_without_serve_members_is_evaluated_as_an_ensemble_only(export_dir, tmp_path):
    plain = build_export(tmp_path / "plain", members=False)
    task = make_task(export_dir, n=12)
    result = ev.evaluate_model(plain, task, corruptions=["brightness"], severities=(2,),
                               progress=False)
    assert result["best_single"] is None
    assert "serve_members" in result["best_single_missing"]
    assert result["clean"]["best_single"] is None
    assert result["corruptions"]["brightness"]["2"]["best_single"] is None
    assert result["mean_corrupted"]["best_single"] is None
    # Same weights as the full export: the ensemble numbers are the same.
    full = ev.evaluate_model(export_dir, task, corruptions=["brightness"], severities=(2,),
                             progress=False)
    assert_close(result["clean"]["ensemble"], full["clean"]["ensemble"])
    table = ev.format_evaluation(result)
    assert "ensemble only" in table and "serve_members" in table


def test_the_ensemble_only_tables_way_on_is_the_runs_export_in_the_callers_words(
        export_dir, tmp_path):
    """evaluate's table printed "ensemble only: ... (export it again ...)" with no command,
    where the report names its run's (robustness.json "best_single_way"). The table gives
    the export of the run the metadata names (--out when the export is not RUN/export), then
    evaluate again: the command line's words there, the functions' from Python."""
    from hubensemble.lockwords import command_line
    from hubensemble.text import shell

    run = tmp_path / "my run"
    plain = build_export(run / "export", members=False)
    asset = plain / "assets" / "hubensemble.json"
    asset.write_text(json.dumps(dict(json.loads(asset.read_text()), run={"path": str(run)})))
    result = ev.evaluate_model(plain, make_task(export_dir, n=6), progress=False)
    assert result["best_single_way"] == ev.EXPORT_AGAIN
    note = f"ensemble only: {result['best_single_missing']}. To compare with the best single "
    with command_line():
        table = ev.format_evaluation(result)
    assert (f"{note}member, run `hubensemble export --run {shell(str(run))}`, then run this "
            "evaluate command again\n") in table, table
    assert (f"{note}member, call export_ensemble(run_dir={str(run)!r}), then call "
            "evaluate_model() again\n") in ev.format_evaluation(result)
    # An export written elsewhere (--out): the command that writes that folder.
    other = tmp_path / "elsewhere"
    shutil.copytree(plain / "assets", other / "assets")
    with command_line():
        table = ev.format_evaluation(dict(result, model=str(other)))
    assert (f"run `hubensemble export --run {shell(str(run))} --out {shell(str(other))}`"
            in table), table
    # A note with no way on (a best single outside the members) gets no command.
    outside = dict(result, best_single_way=None)
    assert f"{result['best_single_missing']}\n" in ev.format_evaluation(outside)


def test_best_single_outside_the_members_is_said(export_dir, tmp_path):
    other = build_export(tmp_path / "other", best="default-0009-z")
    result = ev.evaluate_model(other, make_task(export_dir, n=6), corruptions=False,
                               progress=False)
    assert result["best_single"] is None and "default-0009-z" in result["best_single_missing"]


def test_metadata_without_members_is_said_as_such_not_as_a_best_single_outside_them(
        export_dir, tmp_path):
    """Metadata without its "members" list (an older or a damaged export) was said to have a
    best single candidate "not a member of the exported ensemble", which it is."""
    bare = tmp_path / "bare"
    shutil.copytree(export_dir, bare)
    asset = bare / "assets" / "hubensemble.json"
    meta = json.loads(asset.read_text())
    del meta["members"]
    asset.write_text(json.dumps(meta))
    result = ev.evaluate_model(bare, make_task(export_dir, n=6), corruptions=False,
                               progress=False)
    assert result["best_single"] is None and result["members"] == []
    assert result["best_single_missing"] == (
        f"the export's assets/hubensemble.json lists no members, so the best single candidate "
        f"{BEST} cannot be found among serve_members' outputs; only the ensemble was "
        "evaluated")


def test_evaluate_model_refuses_wrong_inputs(export_dir, tmp_path):
    task = make_task(export_dir, n=6)
    with pytest.raises(HubensembleError) as e:
        ev.evaluate_model(export_dir, task, corruptions=["fog"], progress=False)
    assert all(name in str(e.value) for name in ev.CORRUPTIONS)
    with pytest.raises(HubensembleError, match="SavedModel"):
        ev.evaluate_model(tmp_path, task, progress=False)
    from hubensemble.errors import RunError

    with pytest.raises(RunError, match="nowhere does not exist"):  # RunError, as documented
        ev.evaluate_model(tmp_path / "nowhere", task, progress=False)
    four = Task(name="four", source="test", class_names=list("abcd"), train=task.train,
                test=task.test)
    with pytest.raises(HubensembleError, match="3 classes"):
        ev.evaluate_model(export_dir, four, corruptions=False, progress=False)
    with pytest.raises(HubensembleError, match="no val split"):
        ev.evaluate_model(export_dir, task, split="val", progress=False)
    # An export without serving_default lists the signatures it has, each quoted when one
    # holds a comma (text.names_listed): "(it has serve, v2, serve_members)" read as three.
    renamed = tmp_path / "renamed"
    shutil.copytree(export_dir, renamed)
    rename_signature(renamed, "serving_default", "serve, v2")
    with pytest.raises(RunError) as e:
        ev.evaluate_model(renamed, task, progress=False)
    assert str(e.value) == (f"{renamed} has no serving_default signature (it has 'serve, v2', "
                            f"'serve_members'); export it again with "
                            f"export_ensemble(run_dir=RUN, out_dir={str(renamed)!r})"), e.value
    # predict's refusal of an export without serve_bytes (this test's exports have none)
    # lists them by the same rule.
    from PIL import Image

    from hubensemble.prediction import predict
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(HubensembleError) as e:
        predict(renamed, [tmp_path / "one.png"])
    assert str(e.value).startswith(f"{renamed} has no serve_bytes signature (it has "), e.value
    assert "(it has 'serve, v2', 'serve_members'" in str(e.value), e.value


def rename_signature(model_dir, old, new):
    """Renames signature `old` of the SavedModel at `model_dir` to `new` in its
    saved_model.pb (its signature_def and the object graph's signatures map, which
    tf.saved_model.load reads), in place: no second trace or save."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = model_dir / "saved_model.pb"
    model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    graph = model.meta_graphs[0]
    graph.signature_def[new].CopyFrom(graph.signature_def[old])
    del graph.signature_def[old]
    nodes = graph.object_graph_def.nodes
    signatures = next(c.node_id for c in nodes[0].children if c.local_name == "signatures")
    (child,) = [c for c in nodes[signatures].children if c.local_name == old]
    child.local_name = new
    pb.write_bytes(model.SerializeToString())


def test_an_empty_split_is_refused_before_the_model_loads(tmp_path):
    # A Task made in Python may hold a split of 0 images (the loaders refuse them); it was
    # noticed after the SavedModel loaded. tmp_path is no SavedModel: the refusal comes first.
    some = Split(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 2, 0]))
    empty = Split(np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, np.int64))
    task = Task(name="hand", source="test", class_names=list("abc"), train=some, val=empty,
                test=empty)
    for split in ("test", "validation"):
        with pytest.raises(DataError, match=(
                rf"^the {split} split of task 'hand' \(test\) has no images, so there is "
                r"nothing to evaluate; pass one that has \(split=…\): train \(4 images\)$")):
            ev.evaluate_model(tmp_path, task, split=split, progress=False)
    bare = Task(name="bare", source="test", class_names=list("abc"), train=empty, test=empty)
    with pytest.raises(DataError, match="has no images, .*; no split of it has any$"):
        ev.evaluate_model(tmp_path, bare, progress=False)


def test_a_runs_damaged_data_section_is_refused_as_evaluate_checks_its_data(tmp_path):
    # The command line checks the run's data before TensorFlow (check_evaluation_data): a
    # "data" without "args" passed it, and the stage stopped on it later.
    (tmp_path / "export").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"data": {"task": {"fingerprint": "f"}}}))
    with pytest.raises(RunError, match=r'run.json is damaged: its "data" section has no "args"'):
        ev.check_evaluation_data(tmp_path / "export")


def test_the_task_of_an_export_inside_a_run_is_the_runs_own(tmp_path):
    from hubensemble.data import load_task
    from hubensemble.errors import DataError
    from hubensemble.rundir import DataArgs, Run

    task = load_task("sklearn:digits", seed=3)
    Run(tmp_path / "run").attach_task(task, DataArgs(spec="sklearn:digits", seed=3))
    again = ev.load_evaluation_task(tmp_path / "run" / "export")
    assert again.fingerprint == task.fingerprint
    assert ev.load_evaluation_task(tmp_path / "x", "sklearn:digits").num_classes == 10
    with pytest.raises(DataError, match="pass data=SPEC"):  # the keyword, from Python
        ev.load_evaluation_task(tmp_path / "elsewhere" / "export")
    # --data-dir for the run's own sklearn: data was dropped without a word.
    with pytest.raises(DataError, match="^--data-dir only applies to tfds: specs, not sklearn:"):
        ev.load_evaluation_task(tmp_path / "run" / "export", data_dir=str(tmp_path))


def test_the_runs_own_task_keeps_only_the_scored_splits_pixels(tmp_path):
    # evaluate on the run's own data held its train and val pixels through the whole
    # evaluation only to check them against the record (1 GB at 4,000 / 1,000 images of
    # 224 px); with `split` the task keeps the scored split's pixels alone, once checked.
    import tracemalloc

    from hubensemble.data import load_task
    from hubensemble.rundir import DataArgs, Run

    rng = np.random.default_rng(0)
    sizes = {"train": 60, "val": 15, "test": 30}
    arrays = {f"x_{s}": rng.integers(0, 256, (n, 48, 48, 3), dtype=np.uint8)
              for s, n in sizes.items()}
    arrays.update({f"y_{s}": np.arange(n) % 3 for s, n in sizes.items()})
    np.savez(tmp_path / "d.npz", **arrays)
    spec = f"npz:{tmp_path / 'd.npz'}"
    task = load_task(spec)
    Run(tmp_path / "run").attach_task(task, DataArgs(spec=spec))
    export = tmp_path / "run" / "export"
    tracemalloc.start()
    try:
        light = ev.load_evaluation_task(export, split="test")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    pixels = sum(a.nbytes for k, a in arrays.items() if k.startswith("x_"))
    assert held < arrays["x_test"].nbytes + pixels / 4, (held, pixels)  # test is 2 / 7
    assert light.fingerprint == task.fingerprint
    assert np.array_equal(light.test.images, arrays["x_test"])
    for s in ("train", "val"):
        assert len(getattr(light, s)) == sizes[s]
        assert getattr(light, s).pixel_keys() == getattr(task, s).pixel_keys()
        assert getattr(light, s).shapes().tolist() == getattr(task, s).shapes().tolist()
    assert task.train.images.any()  # the task given is left whole
    assert light.summary() == task.summary()  # what the command says of --data's task
    assert ev.scored_only(task, "validation").val is task.val
    # Changed data is refused before anything is released, as without `split`.
    arrays["x_val"][0] ^= 1
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(RunError, match="is not what the run started on"):
        ev.load_evaluation_task(export, split="test")


def test_a_split_carved_off_a_folders_train_is_scored_without_the_whole_array(tmp_path):
    # A folder's carved splits are views of its one stacked array (splits._partition_in_place):
    # the scored split kept that array whole, so evaluate --split val (or test) of a folder
    # run held every split's pixels through the evaluation. The scored split is copied now.
    import tracemalloc

    from hubensemble.data import load_task

    rng = np.random.default_rng(0)
    for c in "abc":
        write_pngs(tmp_path / "d" / c, rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8))
    spec = f"folder:{tmp_path / 'd'}"
    task = load_task(spec)
    whole = sum(getattr(task, s).images.nbytes for s in ("train", "val", "test"))
    for split in ("val", "test"):
        tracemalloc.start()
        try:
            light = ev.scored_only(load_task(spec), split)  # as load_evaluation_task's
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        scored = getattr(light, split)
        assert np.array_equal(scored.images, getattr(task, split).images)
        assert scored.pixel_keys() == getattr(task, split).pixel_keys()
        assert light.fingerprint == task.fingerprint
        assert len(light.train) == len(task.train)
        # Measured with val: 1.09x the whole array (442 KB of 36 images) before, 0.24x now
        # (val itself is 0.17x).
        assert held < scored.images.nbytes + whole / 4, (split, held / whole, whole)
        del light, scored


def test_predict_and_evaluate_share_one_reader_of_export_metadata(export_dir, tmp_path):
    from hubensemble import export, formats

    assert ev.read_export_metadata is formats.read_export_metadata
    assert export.read_metadata(export_dir) == formats.read_export_metadata(export_dir)
    assert ev.ROBUSTNESS_FILE == formats.ROBUSTNESS_FILE == "robustness.json"
    meta = ev.read_export_metadata(export_dir)
    assert meta["best_single"] == BEST and [m["trial"] for m in meta["members"]] == list(TRIALS)
    assert export.is_export(export_dir)
    # A SavedModel without the asset has no metadata: {}. A damaged one is named (the
    # report, and the check of an export folder to replace, read it leniently).
    assert ev.read_export_metadata(tmp_path) == {}
    (tmp_path / "assets").mkdir()
    for text, why in (("[1, 2]", "a JSON list, not an object"), ('{"class_na', "JSONDecodeError")):
        (tmp_path / "assets" / "hubensemble.json").write_text(text)
        with pytest.raises(HubensembleError, match=rf"assets/hubensemble.json is damaged "
                                                   rf"\({why}.*write the export again"):
            ev.read_export_metadata(tmp_path)
        assert ev.read_export_metadata(tmp_path, strict=False) == {}
        assert not export.is_export(tmp_path)


def test_damaged_or_foreign_metadata_stops_evaluate_and_predict(export_dir, tmp_path):
    """A new-user check: predict called an export with a damaged metadata asset "not
    written by hubensemble export", evaluate matched its classes by position and exited 0,
    and metadata naming 8 classes for a 10-class model went unnoticed."""
    import shutil

    from hubensemble.prediction import predict

    task = make_task(export_dir)
    bad = tmp_path / "bad"
    shutil.copytree(export_dir, bad)
    (bad / "assets" / "hubensemble.json").write_text('{"class_names": ["a", "b"')
    image = tmp_path / "x.png"
    Image.fromarray(task.test.images[0]).save(image)
    for call in (lambda: ev.evaluate_model(bad, task, progress=False),
                 lambda: predict(bad, [str(image)])):
        with pytest.raises(HubensembleError, match=r"bad/assets/hubensemble.json is damaged"):
            call()
    other = build_export(tmp_path / "two-names", class_names=("a", "b"))  # the model has 3
    with pytest.raises(HubensembleError, match=r"lists 2 class names, but the model outputs 3 "
                                               r"probabilities: the metadata is not this "
                                               r"model's"):
        ev.evaluate_model(other, task, progress=False)


def test_classes_are_matched_by_name_not_position(export_dir, tmp_path, capsys):
    """Issue example 6: renaming one class folder of the test set dropped accuracy from 0.875
    to 0.125 without a word (classes were matched by position). Classes are matched to the
    export's names: an unknown name is an error naming it, a subset is scored correctly."""
    import shutil

    from hubensemble.data import load_test_set
    from hubensemble.errors import DataError

    rng = np.random.default_rng(4)
    blocks = (rng.random((300, 2, 2, 3)) * 255).astype(np.uint8)  # 2x2 colour fields
    images = np.repeat(np.repeat(blocks, 6, axis=1), 6, axis=2)
    loaded = tf.saved_model.load(str(export_dir))
    pred = loaded.signatures["serving_default"](
        images=tf.constant(images.astype(np.float32) / 255.0))["class_ids"].numpy()
    root = tmp_path / "test"
    for c, name in enumerate(["a", "b", "c"]):
        picked = np.flatnonzero(pred == c)[:3]
        assert len(picked) == 3
        (root / name).mkdir(parents=True)
        for i in picked:
            (root / name / f"{i:02d}.png").write_bytes(tf.io.encode_png(images[i]).numpy())
    (root / "a" / "wrong.png").write_bytes(
        tf.io.encode_png(images[np.flatnonzero(pred == 1)[5]]).numpy())  # labelled a, is b

    def accuracy(folder):
        task = load_test_set(f"folder:{folder}")
        return ev.evaluate_model(export_dir, task, corruptions=False, progress=False)

    assert accuracy(root)["clean"]["ensemble"]["accuracy"] == pytest.approx(9 / 10)
    # An unreadable file is scored nowhere and said (a new-user check: evaluate --data dropped
    # it without a word, where fit counts it).
    (root / "b" / "notes.jpg").write_text("not an image")
    result = accuracy(root)
    assert result["n"] == 10 and result["task"]["files"] == 11
    assert [p for p, _ in result["task"]["skipped"]] == [str(root / "b" / "notes.jpg")]
    assert (f"1 of 11 files of the data was skipped and is not in these "
            f"figures ({root / 'b' / 'notes.jpg'}: not a JPEG") in ev.format_evaluation(result)
    # Five: the table names three and says where the rest are (it said "and 2 more)").
    from hubensemble.formats import skipped_list

    for i in range(4):
        (root / "b" / f"notes{i}.jpg").write_text("not an image")
    result = accuracy(root)
    assert len(result["task"]["skipped"]) == 5 and result["n"] == 10
    table = ev.format_evaluation(result, skipped_in=skipped_list(None, "evaluate"))
    assert "; and 2 more, pass --out FILE to list them all)" in table.splitlines()[1]
    assert table.splitlines()[1].count("not a JPEG") == 1  # said once after its three files
    assert f"; and 2 more, all listed in {tmp_path / 'e.json'} (task.skipped))" in (
        ev.format_evaluation(result, skipped_in=skipped_list(tmp_path / "e.json", "evaluate")))
    from hubensemble.cli import main

    capsys.readouterr()
    assert main(["evaluate", "-q", "--model", str(export_dir), "--data", f"folder:{root}",
                 "--out", str(tmp_path / "e.json")]) == 0
    assert f"all listed in {tmp_path / 'e.json'} (task.skipped))" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "e.json").read_text())["task"]["skipped"]) == 5
    for i in range(4):
        (root / "b" / f"notes{i}.jpg").unlink()
    (root / "b" / "notes.jpg").unlink()
    # Only b and c (positions 0 and 1 of the test set, 1 and 2 of the model): all right.
    subset = tmp_path / "subset"
    shutil.copytree(root, subset)
    shutil.rmtree(subset / "a")
    result = accuracy(subset)
    assert result["clean"]["ensemble"]["accuracy"] == 1.0 and result["n"] == 6
    assert result["classes"] == {"matched_by": "name", "model": ["a", "b", "c"],
                                 "absent": ["a"], "majority": None, "unbalanced": False,
                                 "few": "these metrics rest on fewer than 5 test examples of "
                                        "2 classes: 'b' 3, 'c' 3; one image moves such a "
                                        "class's accuracy by 0.333 (33.3 percentage points) "
                                        "or more, so read its "
                                        "figures as rough (give it more images)"}
    assert "1 of the model's classes has no example here" in ev.format_evaluation(result)
    # `evaluate -q` without --out printed nothing, its result lost (a new-user check): the
    # table is its output, on stdout with -q too, as predict's predictions.
    from hubensemble.cli import main

    capsys.readouterr()
    assert main(["evaluate", "-q", "--model", str(export_dir), "--data", f"folder:{subset}"]) == 0
    out, err = capsys.readouterr()
    assert out == ev.format_evaluation(result) + "\n" and err == ""
    # Without -q the data's summary goes to stderr first, as every command that loads data
    # says it (a new-user check: evaluate --data said nothing of what it read).
    assert main(["evaluate", "--model", str(export_dir), "--data", f"folder:{subset}",
                 "--corruptions", "brightness", "--severities", "1"]) == 0
    err = capsys.readouterr().err
    # Of the split it scores alone, not of fit's stages (kNN, fine-tuning, the ensemble's
    # selection: `Task.summary(scored=…)`; a fault hunt).
    assert load_test_set(f"folder:{subset}").summary(scored="test") in err
    assert "(class folders; every image is a test example): test 6 examples;" in err
    assert ("the test split alone is scored: accuracy, NLL and ECE on its 6 examples; one image "
            "moves the accuracy by 0.167 (16.7 percentage points)") in err, err
    # A renamed class folder: an error that names it and the model's classes.
    (root / "a").rename(root / "z")
    with pytest.raises(DataError, match=r"\['z'\].*does not know.*\(a, b, c\).*rename the "
                                        r"class folder to"):
        accuracy(root)
    # The fix in the data's terms: an npz file's names are its class_names array.
    task = load_test_set(f"folder:{root}")
    task.source = "npz:test.npz"
    with pytest.raises(DataError, match=r"\['z'\].*store the model's names in the npz file's "
                                        r"class_names array, or leave it out"):
        ev.class_index(["a", "b", "c"], task)


def test_an_evaluation_records_what_decoding_did_as_the_data_summary_says(
        export_dir, tmp_path, capsys):
    """`evaluate --out` recorded the files read and skipped, but not the images the data's
    summary (stderr) says were oriented, turned or shrunk, nor the hidden entries ignored:
    run.json records them (data.task), the evaluation now does too, under the same names,
    and the report shows them for data other than the run's."""
    from hubensemble import report
    from hubensemble.cli import main
    from hubensemble.rundir import Run

    rng = np.random.default_rng(7)
    root = tmp_path / "test"
    for name in ("a", "b", "c"):
        write_pngs(root / name, (rng.random((2, 12, 12, 3)) * 255).astype(np.uint8))

    def picture(h, w):
        return Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))

    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees": a phone photo held upright
    jpg, tif, big = root / "a" / "phone.jpg", root / "c" / "scan.tif", root / "b" / "big.png"
    picture(12, 20).save(jpg, exif=exif)
    picture(12, 16).save(tif, tiffinfo={0x0112: 8})
    picture(1040, 1100).save(big)  # shorter side above 1024 px
    (root / "c" / "notes.jpg").write_text("not an image")
    (root / "a" / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "run" / "robustness.json"
    out.parent.mkdir()
    capsys.readouterr()
    assert main(["evaluate", "--model", str(export_dir), "--data", f"folder:{root}",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    task = json.loads(out.read_text())["task"]
    assert task["oriented"] == {"count": 1, "examples": [[str(jpg), 6]]}
    assert task["turned"] == {"count": 1, "examples": [[str(tif), 8]]}
    assert task["shrunk"] == {"count": 1, "splits": {"test": 1},
                              "examples": [[str(big), [1040, 1100]]]}
    assert task["ignored"] == {"count": 1, "examples": [str(root / "a" / ".DS_Store")],
                               "hubensemble_folders": 0}
    assert [p for p, _ in task["skipped"]] == [str(root / "c" / "notes.jpg")]
    assert task["files"] == 10
    # The same counts as the summary on the terminal.
    said = err[err.index("Task 'test'"):].splitlines()[0]
    assert (f"; {task['files']} files read: 9 examples, {len(task['skipped'])} skipped "
            f"(unreadable; {root / 'c' / 'notes.jpg'}: not a JPEG") in said
    assert ("), 0 duplicates dropped; 1 hidden or system entry ignored (e.g. "
            f"{task['ignored']['examples'][0]}); 1 image with an EXIF or XMP orientation tag "
            f"(e.g. {jpg}: 6) used as stored, not turned upright, as serve_bytes reads them; 1 "
            f"TIFF image turned upright by their orientation tag (e.g. {tif}: 8), as Pillow "
            f"reads them and predict sends them; 1 TIFF image (e.g. {tif}): serve_bytes "
            "refuses TIFF; predict converts it (to a lossless PNG; another client must convert "
            "them to PNG or JPEG first); 1 image above 1024 px on their shorter side "
            f"shrunk to it (test 1; e.g. {big}: 1040x1100)") in said
    assert said.count("skipped") == 1, said  # the count said once (it was twice)
    # Read back: the report of a run whose robustness.json is this evaluation names them.
    Run(out.parent).update(stages={})
    md = report.write_report(out.parent)[0].read_text()
    section = md[md.index("## Robustness"):]
    assert "The evaluated data is not the run's; what became of its files (folder:" in section
    # (paths relative to the evaluated folder, which the line above the table names)
    rel = {p: os.path.relpath(p, root) for p in (jpg, tif, big)}
    assert (f"| orientation tag | 1 image with the tag (EXIF or XMP), used as stored, not "
            f"turned upright (e.g. {rel[jpg]}: 6) |") in section
    assert (f"| TIFF orientation | 1 TIFF image turned upright by the tag, as Pillow reads "
            f"them (e.g. {rel[tif]}: 8) |") in section
    assert (f"| shrunk images | 1 with a shorter side above 1024 px, shrunk to it (test 1; "
            f"e.g. {rel[big]}: 1040x1100) |") in section


def test_an_evaluation_records_dropped_copies_as_run_json_does(export_dir, tmp_path):
    """`evaluate --out` recorded "dropped" as a count where run.json records the dropped
    copies as [example, "a copy of …"] (Task.files_record owns both shapes now); the report
    still reads an evaluation written with the count."""
    from hubensemble import report
    from hubensemble.data import load_task
    from hubensemble.rundir import Run

    rng = np.random.default_rng(3)
    root = tmp_path / "copies"
    for name in ("a", "b", "c"):
        write_pngs(root / name, (rng.random((3, 12, 12, 3)) * 255).astype(np.uint8))
    (root / "c" / "copy.png").write_bytes((root / "c" / "00.png").read_bytes())
    task = load_task(f"folder:{root}", dedupe=True, test_fraction=0)
    assert len(task.dropped) == 1  # the copy, by pixels
    task.test = task.train
    result = ev.evaluate_model(export_dir, task, corruptions=False, progress=False)
    assert result["task"]["dropped"] == task.to_json()["dropped"] == [
        [str(root / "c" / "copy.png"), f"a copy of {root / 'c' / '00.png'}"]]
    # An evaluation written before (a count) is read by the report as it was.
    out = tmp_path / "run" / "robustness.json"
    out.parent.mkdir()
    ev.write_evaluation({**result, "task": {**result["task"], "dropped": 1}}, out)
    Run(out.parent).update(stages={})
    md = report.write_report(out.parent)[0].read_text()
    section = md[md.index("## Robustness"):]
    assert "damaged" not in section and "dropped" not in md, section
    assert f"| clean | – | {result['clean']['ensemble']['accuracy']:.4f}" in section


def test_evaluate_out_inside_the_data_is_refused_before_the_evaluation(
        export_dir, tmp_path, capsys, monkeypatch):
    """evaluate --out imgs/e.json wrote its JSON inside the data, and every later load of it
    counted the file as skipped (fit and rank refuse an --out there: d98b412); now refused
    before anything is read or written, against --data or the data of the export's run."""
    import shutil

    from hubensemble.cli import main
    from hubensemble.data import load_task

    rng = np.random.default_rng(4)
    imgs = tmp_path / "imgs"
    for name in ("a", "b", "c"):
        write_pngs(imgs / name, (rng.random((3, 12, 12, 3)) * 255).astype(np.uint8))
    run = tmp_path / "run"
    shutil.copytree(export_dir, run / "export")
    (run / "run.json").write_text(json.dumps({"data": {"args": {"spec": f"folder:{imgs}"}}}))
    evaluate = ["evaluate", "-q", "--model", str(run / "export")]
    for argv, out, whose in (
            ([*evaluate, "--data", f"folder:{imgs}"], imgs / "e.json", f"--data folder:{imgs}"),
            ([*evaluate, "--data", f"folder:{imgs}"], imgs / "a" / "e.json",
             f"--data folder:{imgs}"),
            (evaluate, imgs / "e.json", f"the data of the run {run}, folder:{imgs}")):
        capsys.readouterr()
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert (f"error: --out {out} is inside the data folder {imgs} ({whose}): a file "
                "written there would be read with the data, and every later load would skip "
                f"it as not an image; pass a --out file outside it, e.g. --out "
                f"{tmp_path / 'e.json'}\n") in err, err
        assert not out.exists()
    assert not load_task(f"folder:{imgs}").skipped
    assert main([*evaluate, "--data", f"folder:{imgs}", "--out", str(imgs)]) == 2
    err = capsys.readouterr().err
    assert (f"--out {imgs} is the data folder" in err and "a file written there" in err
            and f"e.g. --out {imgs}-evaluation.json" in err), err
    # Beside the data: written.
    assert main([*evaluate, "--data", f"folder:{imgs}", "--out", str(tmp_path / "e.json")]) == 0
    assert ev.read_evaluation(tmp_path / "e.json")["n"] == 9
    # Its task records the spec it was read from (evaluate --data's), as run.json's does.
    assert ev.read_evaluation(tmp_path / "e.json")["task"]["spec"] == f"folder:{imgs}"
    # A relative --out is named absolute ("wrote e2.json" said where only from this folder).
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "export"), "--data", f"folder:{imgs}",
                 "--out", "e2.json"]) == 0
    assert f"wrote {tmp_path / 'e2.json'}\n" in capsys.readouterr().err


def write_pngs(folder, images):
    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        (folder / f"{i:02d}.png").write_bytes(tf.io.encode_png(im).numpy())


def test_evaluate_says_when_one_class_dominates_the_scored_split(tmp_path):
    """A gap left alone earlier: fit's closing table says when one class dominates the test
    split (95 of 100 'ok': 0.950 for never predicting 'defect'); `evaluate` on the same kind
    of data printed 'clean 0.9500' alone. Its result's classes.majority and its table say it
    (counted here from the files written), and nothing for a balanced split."""
    from hubensemble.data import load_test_set

    model = build_export(tmp_path / "model", class_names=("defect", "ok", "c"))  # c: absent
    rng = np.random.default_rng(3)
    root = tmp_path / "test"
    write_pngs(root / "ok", (rng.random((9, 6, 6, 3)) * 255).astype(np.uint8))
    write_pngs(root / "defect", (rng.random((1, 6, 6, 3)) * 255).astype(np.uint8))
    result = ev.evaluate_model(model, load_test_set(f"folder:{root}"), corruptions=False,
                               progress=False)
    said = ("9 of the 10 test examples (90%) are of class 'ok': predicting it for every "
            "image scores accuracy 0.900")
    assert said in result["classes"]["majority"], result["classes"]
    assert f"note: {said}" in ev.format_evaluation(result)
    # ...and that its 1 'defect' image is too few to say much of that class (fit's words).
    few = ("these metrics rest on fewer than 5 test examples of 1 class: 'defect' 1; one "
           "image moves such a class's accuracy by 1 (100 percentage points) or more")
    assert result["classes"]["few"].startswith(few), result["classes"]
    assert f"note: {few}" in ev.format_evaluation(result)
    for i, f in enumerate(sorted((root / "ok").iterdir())[:4]):  # 5 and 5
        f.rename(root / "defect" / f"moved{i}.png")
    result = ev.evaluate_model(model, load_test_set(f"folder:{root}"), corruptions=False,
                               progress=False)
    assert result["n"] == 10 and result["classes"]["majority"] is None
    assert result["classes"]["few"] is None  # 5 and 5: enough
    assert "note:" not in ev.format_evaluation(result)


def test_unbalanced_classes_give_balanced_accuracy_as_fits_closing_table_does(export_dir):
    """A user's find: on unbalanced test data the report and fit's closing table gave
    balanced accuracy, evaluate did not. Each entry (clean, corrupted, their mean) holds it
    now, against scikit-learn's balanced_accuracy_score on the model's own outputs, and the
    table says it in the closing table's words; a balanced split holds and says none."""
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(7)
    images = (rng.random((30, 10, 10, 3)) * 255).astype(np.uint8)
    labels = np.repeat(np.arange(NUM_CLASSES), [20, 7, 3]).astype(np.int64)  # 20 / 3 >= 1.5
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images[:9], labels=np.arange(9, dtype=np.int64) % 3),
                test=Split(images=images, labels=labels))
    result = ev.evaluate_model(export_dir, task, corruptions=["contrast"], severities=(2,),
                               progress=False)
    loaded = tf.saved_model.load(str(export_dir))

    def reference(x):
        x = tf.constant(x)
        ens = loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
        single = loaded.signatures["serve_members"](images=x)["member_probabilities"].numpy()
        return {"ensemble": balanced_accuracy_score(labels, ens.argmax(1)),
                "best_single": balanced_accuracy_score(
                    labels, single[:, TRIALS.index(BEST)].argmax(1))}

    clean = task.test.float_images()
    want = {"clean": reference(clean),
            "contrast": reference(ev.CORRUPTIONS["contrast"](clean, 2, 0))}
    assert result["classes"]["unbalanced"] is True
    for model in ("ensemble", "best_single"):
        assert result["clean"][model]["balanced_accuracy"] == pytest.approx(
            want["clean"][model], abs=1e-9)
        assert result["corruptions"]["contrast"]["2"][model]["balanced_accuracy"] == \
            pytest.approx(want["contrast"][model], abs=1e-9)
        assert result["mean_corrupted"][model]["balanced_accuracy"] == pytest.approx(
            want["contrast"][model], abs=1e-9)
    assert ("balanced accuracy (the test classes are unbalanced; the mean of the per-class "
            "accuracies, each class counted once): ensemble "
            f"{want['clean']['ensemble']:.4f}, best single {want['clean']['best_single']:.4f}, "
            f"ensemble (mean over corruptions) {want['contrast']['ensemble']:.4f}, best single "
            f"(mean over corruptions) {want['contrast']['best_single']:.4f}"
            ) in ev.format_evaluation(result).splitlines()

    even = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images[:9], labels=np.arange(9, dtype=np.int64) % 3),
                test=Split(images=images, labels=np.arange(30, dtype=np.int64) % 3))
    result = ev.evaluate_model(export_dir, even, corruptions=False, progress=False)
    assert result["classes"]["unbalanced"] is False
    assert "balanced_accuracy" not in result["clean"]["ensemble"]
    assert "balanced accuracy" not in ev.format_evaluation(result)


def test_class_names_are_matched_in_their_nfc_form(tmp_path):
    """A new-user check: a test folder named "élan" by macOS (decomposed, NFD) against an
    export trained on "élan" (NFC) was refused as a class "the model does not know", in a
    message listing élan among the model's classes. Names match in NFC form; a name that
    only looks like a model class is refused with its code points."""
    import unicodedata

    from hubensemble.data import load_test_set
    from hubensemble.errors import DataError

    nfc, nfd = "\u00e9lan", "e\u0301lan"
    assert unicodedata.normalize("NFC", nfd) == nfc and nfd != nfc
    model = build_export(tmp_path / "model", class_names=("a", nfc, "c"))
    rng = np.random.default_rng(7)
    root = tmp_path / "test"
    for name in ("a", nfd):
        write_pngs(root / name, (rng.random((2, 6, 6, 3)) * 255).astype(np.uint8))
    task = load_test_set(f"folder:{root}")
    assert nfd in task.class_names  # the folder's own (decomposed) spelling
    result = ev.evaluate_model(model, task, corruptions=False, progress=False)
    assert result["n"] == 4 and result["classes"]["absent"] == ["c"]
    np.testing.assert_array_equal(ev.class_index(["a", nfc, "c"], task),
                                  [0, 1] if task.class_names == ["a", nfd] else [1, 0])
    # Another string that looks the same (a full-width c; a zero-width space is no class
    # name at all now: data.names.class_name_fault): its code points show how it differs
    # from the model's class.
    odd = Task(name="odd", source="folder:x", class_names=["a", "\uff43"], train=task.train)
    with pytest.raises(DataError) as e:
        ev.class_index(["a", nfc, "c"], odd)
    assert "(U+FF43; not the model's 'c')" in str(e.value)
    with pytest.raises(DataError, match=r"class_names\[1\] 'c\\u200b' holds an invisible"):
        Task(name="odd", source="folder:x", class_names=["a", "c\u200b"], train=task.train)
    # A trailing space is no class name at all (data.names.check_class_names), from any source.
    with pytest.raises(DataError, match=r"class_names\[1\] 'c ' starts or ends with whitesp"):
        Task(name="odd", source="folder:x", class_names=["a", "c "], train=task.train)
    odd = Task(name="odd", source="folder:x", class_names=["a", "z"], train=task.train)
    with pytest.raises(DataError, match=r"\['z'\] that the model does not know"):
        ev.class_index(["a", nfc, "c"], odd)


def test_a_folder_with_only_train_says_which_split_it_scored(export_dir, tmp_path):
    """A new-user check: `evaluate --data folder:DIR` with only DIR/train/<class>/ scored
    the 4 test images carved off train (as fit carves them) and said nothing of the other
    15 files. The result counts them per split and the table says so; a folder of class
    folders is still one test set of all its images."""
    from hubensemble.data import load_test_set

    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    for name, k in (("a", 7), ("b", 6), ("c", 6)):
        write_pngs(root / "train" / name, (rng.random((k, 6, 6, 3)) * 255).astype(np.uint8))
    result = ev.evaluate_model(export_dir, load_test_set(f"folder:{root}"), corruptions=False,
                               progress=False)
    unscored = result["task"]["unscored"]
    assert set(unscored) == {"train", "val"} and result["n"] + sum(unscored.values()) == 19
    assert result["same_data_as_export"] is None
    line = (f"scored: the test split, {result['n']} of the data's 19 examples; not scored: "
            f"train {unscored['train']}, val {unscored['val']} (evaluate scores one split, "
            "--split; a folder of class folders without train/ is one test set of all its "
            "images)")
    assert line in ev.format_evaluation(result).splitlines()
    flat = ev.evaluate_model(export_dir, load_test_set(f"folder:{root / 'train'}"),
                             corruptions=False, progress=False)
    assert flat["n"] == 19 and flat["task"]["unscored"] == {}
    assert "scored:" not in ev.format_evaluation(flat)


def test_the_exports_own_folder_is_scored_on_its_held_out_split(export_dir, tmp_path):
    """A new-user check: `evaluate --data folder:DIR` on the very folder the export was
    fitted on scored all 90 images (54 trained it, 18 chose it: accuracy 0.61 against 0.56
    held out) and said `same_data_as_export: false`. That folder is now split as fit split
    it, and its held-out test split is scored."""
    import shutil

    from hubensemble.data import load_task

    rng = np.random.default_rng(4)
    root = tmp_path / "data"
    for name, k in (("a", 7), ("b", 6), ("c", 6)):
        write_pngs(root / name, (rng.random((k, 6, 6, 3)) * 255).astype(np.uint8))
    spec = f"folder:{root}"
    fitted = load_task(spec)  # what fit trained on
    own = tmp_path / "own_export"
    shutil.copytree(export_dir, own)
    meta_path = own / "assets" / "hubensemble.json"
    meta = json.loads(meta_path.read_text())
    meta["task"] = {**(meta.get("task") or {}), "fingerprint": fitted.fingerprint}
    meta_path.write_text(json.dumps(meta))
    task = ev.load_evaluation_task(own, spec)
    assert task.fingerprint == fitted.fingerprint and "as fit split it" in task.source
    result = ev.evaluate_model(own, task, corruptions=False, progress=False)
    assert result["same_data_as_export"] is True and result["n"] == len(fitted.test)
    assert result["task"]["unscored"] == {"train": len(fitted.train), "val": len(fitted.val)}
    assert "the data the export was made on" in ev.format_evaluation(result)
    other = ev.load_evaluation_task(export_dir, spec)  # another export: every image
    assert len(other.test) == 19 and "every image is a test example" in other.source
    # A fit with its own split and --dedupe: the export records them (task.split) and the
    # folder, a copy added, is split and deduplicated as that fit did it.
    shutil.copy(root / "a" / "00.png", root / "a" / "copy.png")
    deduped = load_task(spec, seed=2, val_fraction=0.3, dedupe=True)
    meta["task"] = {**meta["task"], "fingerprint": deduped.fingerprint, "split": {
        "seed": 2, "val_fraction": 0.3, "test_fraction": 0.2, "dedupe": True}}
    meta_path.write_text(json.dumps(meta))
    task = ev.load_evaluation_task(own, spec)
    assert task.fingerprint == deduped.fingerprint and "as fit split it" in task.source
    assert len(task.test) == len(deduped.test)


def test_the_exports_own_folder_changed_since_is_scored_whole_and_said_so(export_dir, tmp_path,
                                                                          caplog):
    """Helper 97: an export moved away from its run, evaluated on its own folder with an image
    added and one removed since, scored all of its images, the ones that trained it too (its
    fingerprint is another, so its recorded split is not drawn: one file more reshuffles the
    classes drawn after it), with no word. The export records its data's files (task.files,
    name digests); evaluate counts the files that differ and the scored images that trained
    or chose it, and warns; it still scores them (new images may be meant)."""
    import shutil

    from hubensemble.data import load_task
    from hubensemble.heldout import changed_files_note, files_record

    rng = np.random.default_rng(8)
    root = tmp_path / "data"
    for name in ("a", "b", "c"):
        write_pngs(root / name, (rng.random((10, 6, 6, 3)) * 255).astype(np.uint8))
    spec = f"folder:{root}"
    fitted = load_task(spec)  # what fit trained on, as the export stage records it
    shutil.copytree(root, tmp_path / "pristine")
    own = tmp_path / "own_export"
    shutil.copytree(export_dir, own)
    meta_path = own / "assets" / "hubensemble.json"
    meta = json.loads(meta_path.read_text())
    meta["task"] = {"fingerprint": fitted.fingerprint, "split": {"seed": 0},
                    "files": files_record(fitted, root)}
    meta_path.write_text(json.dumps(meta))
    assert meta["task"]["files"]["count"] == 30 and "a/00.png" not in meta_path.read_text()
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        same = ev.evaluate_model(own, ev.load_evaluation_task(own, spec), corruptions=False,
                                 progress=False)
    assert same["data_changed"] is None and same["n"] == len(fitted.test) and not caplog.records

    trained = sorted(fitted.train.paths)[0]
    os.unlink(trained)
    (root / "a" / "new.png").write_bytes(tf.io.encode_png(
        (rng.random((6, 6, 3)) * 255).astype(np.uint8)).numpy())
    task = ev.load_evaluation_task(own, spec)
    assert "every image is a test example" in task.source and len(task.test) == 30
    result = ev.evaluate_model(own, task, corruptions=False, progress=False)
    assert result["data_changed"] == {
        "folder": str(root), "recorded": 30, "present": 29, "added": 1, "removed": 1,
        "replaced": 0, "train": len(fitted.train) - 1, "val": len(fitted.val),
        "test": len(fitted.test), "sampled": 1, "compared": "pixels"}
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said == [changed_files_note(result)], said
    assert said[0].startswith(
        f"{root} holds 29 of the 30 files this export was fit on (by name; its metadata's "
        "task.files), but 2 files differ from those it was measured on: 1 here that was "
        "not among them, 1 of them not here."), said
    assert (f"all 30 images are scored as test examples, {len(fitted.train) - 1} of them "
            f"training and {len(fitted.val)} validation images of the export") in said[0], said
    assert "move the 1 new file out, put the 1 missing back" in said[0], said
    # The table says it too: `evaluate -q` silences the warning, and the table stood alone
    # (a new-user check).
    table = ev.format_evaluation(result).splitlines()
    # Which, here too (it said "the warning says which and what to do": -q hides it).
    assert table[1] == (f"not a held-out measure: {len(fitted.train) - 1 + len(fitted.val)} "
                        f"of the 30 scored images are training ({len(fitted.train) - 1}) or "
                        f"validation ({len(fitted.val)}) images of the export (by name; the "
                        f"folder it was fit on, changed since: {root})"), table[:3]
    assert "not a held-out measure" not in ev.format_evaluation(same)
    # Other images with other names: not the export's folder, nothing more said.
    write_pngs(tmp_path / "other" / "a", (rng.random((3, 6, 6, 3)) * 255).astype(np.uint8))
    for i in range(3):
        os.rename(tmp_path / "other" / "a" / f"{i:02d}.png", tmp_path / "other" / "a" / f"x{i}.png")
    caplog.clear()
    other = ev.evaluate_model(own, ev.load_evaluation_task(own, f"folder:{tmp_path / 'other'}"),
                              corruptions=False, progress=False)
    assert other["data_changed"] is None and not caplog.records
    # The unchanged folder loaded whole from Python (load_test_set, not load_evaluation_task):
    # it said "their pixels differ … restore the files", though nothing differed.
    from hubensemble.data.specs import load_test_set

    whole = load_test_set(f"folder:{tmp_path / 'pristine'}")  # a copy made before the edits
    unchanged = ev.evaluate_model(own, whole, corruptions=False, progress=False)
    note = changed_files_note(unchanged)
    assert unchanged["data_changed"]["added"] == unchanged["data_changed"]["removed"] == 0
    assert "none of them differs (the same names and pixels)" in note, note
    assert "restore the files" not in note and "load_evaluation_task(model_dir, data)" in note


def test_a_file_replaced_under_its_name_is_told_apart_and_a_large_folder_is_sampled(
        tmp_path, monkeypatch):
    """Helper 110: the export's task.files held name digests only, so a training image
    replaced by another under its name (and a new file added) was "1 file(s) differ: 1 here
    that were not among them", the replaced one counted as a training image of the export
    and not named in the way on. Each file's name and pixels are recorded now (its pixel key,
    which the loader has), so it is counted as replaced; an export recorded before that says
    what it said. And task.files had no cap: of more than MAX_FILES files a sample by name is
    listed, and the counts are estimates, said so."""
    from hubensemble import heldout
    from hubensemble.data import load_task
    from hubensemble.data.specs import load_test_set

    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    for name in ("a", "b", "c"):
        write_pngs(root / name, (rng.random((10, 6, 6, 3)) * 255).astype(np.uint8))
    spec = f"folder:{root}"
    fitted = load_task(spec)
    meta = {"task": {"fingerprint": fitted.fingerprint,
                     "files": heldout.files_record(fitted, root)}}
    old = {"task": {**meta["task"], "files": {k: v for k, v in meta["task"]["files"].items()
                                              if k not in ("content", "content_digits",
                                                           "sample")}}}
    trained = sorted(fitted.train.paths)[0]
    Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(trained)
    write_pngs(root / "d", (rng.random((1, 6, 6, 3)) * 255).astype(np.uint8))

    def changed(record):
        task = load_test_set(spec, trained_on=fitted.fingerprint)
        result = heldout.changed_files(record, task)
        return result, heldout.changed_files_note({"data_changed": result, "n": len(task.test)})

    result, note = changed(meta)
    assert {k: result[k] for k in ("present", "added", "removed", "replaced", "train", "val",
                                   "sampled")} == {
        "present": 30, "added": 1, "removed": 0, "replaced": 1, "train": len(fitted.train) - 1,
        "val": len(fitted.val), "sampled": 1}
    assert ("but 2 files differ from those it was measured on: 1 here that was not among "
            "them, 1 of them replaced (their names, other pixels).") in note
    assert "move the 1 new file out, put back the 1 replaced file as it was" in note
    result, note = changed(old)  # an export from before: by name, as it said
    assert result["replaced"] == 0 and result["train"] == len(fitted.train)
    assert "but 1 file differs from those it was measured on: 1 here" in note

    # A cap of 8 files: one in 4 (or 8) listed by name, the counts scaled and said estimates.
    monkeypatch.setattr(heldout, "MAX_FILES", 8)
    os.unlink(root / "d" / "00.png")
    Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(trained)
    capped = heldout.files_record(fitted, root)
    n = capped["sample"]
    listed = [k for s in ("train", "val", "test") for k in capped[s]]
    assert n in (4, 8) and 0 < len(listed) <= 8 and len(capped["content"]) == len(listed)
    assert capped["count"] == 30 and len(json.dumps(capped)) < len(
        json.dumps(meta["task"]["files"]))
    sampled = [p for p in fitted.train.paths
               if heldout._sampled(heldout._name_key(p, root), n)]
    assert sampled
    Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).save(sampled[0])
    result, note = changed({"task": {**meta["task"], "files": capped}})
    assert result["sampled"] == n and result["recorded"] == 30 and result["added"] == 0
    assert result["replaced"] == n * len({trained, sampled[0]} & set(sampled)), result
    assert f"(counted on the 1 in {n} of its files the export lists, times {n}: estimates)" \
        in note, note


# ---------------------------------------------------------------------------------------------
# Test images that trained or chose the export (its run's record of its train and val images)
# ---------------------------------------------------------------------------------------------

def run_with_export(tmp_path, export_dir, spec):
    """A run folder that loaded `spec` as fit loads it (Run.attach_task: run.json, labels/),
    with `export_dir` copied in as RUN/export and marked as made on that data; -> (run
    folder, the task the run loaded)."""
    import shutil

    from hubensemble.data import load_task
    from hubensemble.rundir import DataArgs, Run

    fitted = load_task(spec)
    run = tmp_path / "run"
    Run(run).attach_task(fitted, DataArgs(spec=spec))
    shutil.copytree(export_dir, run / "export")
    meta_path = run / "export" / "assets" / "hubensemble.json"
    meta = json.loads(meta_path.read_text())
    meta["task"] = {"name": fitted.name, "fingerprint": fitted.fingerprint}
    meta_path.write_text(json.dumps(meta))
    return run, fitted


def test_test_images_that_trained_or_chose_the_export_are_counted_and_warned(
        export_dir, tmp_path, caplog):
    """A new-user check: `evaluate --data folder:DIR` on the run's own photo folder with one
    photo added since scored all 121 images as test examples (96 of them trained or chose the
    export) and said nothing. The run records its train and val images' pixel keys when it
    loads its data; evaluate counts the scored images among them and warns."""
    import logging
    import shutil

    from hubensemble.heldout import not_held_out_note
    from hubensemble.rundir import Run

    rng = np.random.default_rng(5)
    data = tmp_path / "photos"
    for name, k in (("a", 9), ("b", 8), ("c", 8)):
        write_pngs(data / name, (rng.random((k, 6, 6, 3)) * 255).astype(np.uint8))
    run, fitted = run_with_export(tmp_path, export_dir, f"folder:{data}")
    assert sorted(os.listdir(run / "labels")) == ["pixel_keys.npz", "test.npy", "train.npy",
                                                  "train_paths.json", "val.npy",
                                                  "val_paths.json"]
    assert Run(run).foreign_content("labels") == []  # a stage's file: fit may resume there
    model = run / "export"
    # The run's own folder, split as fit split it: its test split is held out; no warning.
    with caplog.at_level(logging.DEBUG, logger="hubensemble"):
        own = ev.evaluate_model(model, ev.load_evaluation_task(model, f"folder:{data}"),
                                corruptions=False, progress=False)
        assert own["same_data_as_export"] is True and own["n"] == len(fitted.test)
        assert own["not_held_out"] == {"run": str(run), "images": 0, "train": 0, "val": 0}
        # --split val of it: its validation images by name, counted, not warned about.
        val = ev.evaluate_model(model, ev.load_evaluation_task(model, f"folder:{data}"),
                                split="val", corruptions=False, progress=False)
        assert val["not_held_out"]["val"] == len(fitted.val) and not_held_out_note(val) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # Photos added to the same folder since: it is other data now, every image a test one.
    fresh = (rng.random((2, 6, 6, 3)) * 255).astype(np.uint8)
    for i, im in enumerate(fresh):
        (data / "a" / f"new{i}.png").write_bytes(tf.io.encode_png(im).numpy())
    # The count, independently: the files that were train or val files when the run loaded
    # the folder (a copy made since, of a training image, counts as its original).
    seen = {split: {os.path.relpath(p, data) for p in getattr(fitted, split).paths}
            for split in ("train", "val")}
    trained = sorted(seen["train"])[0]
    shutil.copy(data / trained, data / "c" / "copy.png")
    files = [str(p.relative_to(data)) for p in sorted(data.rglob("*.png"))]
    originals = {f: trained if f == "c/copy.png" else f for f in files}
    want = {s: sum(originals[f] in seen[s] for f in files) for s in seen}
    assert want["train"] > len(fitted.train) and want["val"] == len(fitted.val)  # + the copy
    caplog.clear()
    task = ev.load_evaluation_task(model, f"folder:{data}")
    assert "every image is a test example" in task.source and len(task.test) == len(files)
    result = ev.evaluate_model(model, task, corruptions=False, progress=False)
    assert result["same_data_as_export"] is False and result["n"] == 25 + 3
    assert result["not_held_out"] == {"run": str(run), "images": sum(want.values()), **want}
    warning = (f"{sum(want.values())} of {result['n']} test images are training "
               f"({want['train']}) or validation ({want['val']}) images of this export's "
               f"run; their metrics are not a held-out measure (the run: {run}; score images "
               "it never saw for one)")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [warning]
    assert not_held_out_note(result) == warning
    # The table's line says which and the way on itself: -q hides the warning.
    assert ev.format_evaluation(result).splitlines()[1] == (
        f"not a held-out measure: {sum(want.values())} of the {result['n']} scored images are "
        f"training ({want['train']}) or validation ({want['val']}) images of the export "
        f"(images of its run, {run}; score images it never saw for a held-out figure)")
    written = ev.read_evaluation(ev.write_evaluation(result, tmp_path / "e.json"))
    assert written["not_held_out"] == result["not_held_out"]

    # Only the new photos: no image trained the export, nothing said.
    write_pngs(tmp_path / "new" / "a", fresh)
    caplog.clear()
    new = ev.evaluate_model(model, ev.load_evaluation_task(model, f"folder:{tmp_path / 'new'}"),
                            corruptions=False, progress=False)
    assert new["not_held_out"]["images"] == 0 and not caplog.records


def test_an_older_run_says_nothing_more_a_deleted_keys_file_is_said(export_dir, tmp_path, caplog):
    """A run recorded before the pixel keys were, an export with no run beside it, keys of
    other data than the export's: not_held_out is null, no warning (DEBUG says why), no
    error. A damaged keys file, or one deleted from a run whose run.json says it wrote it,
    is a warning, and the evaluation goes on."""
    import logging
    import shutil

    rng = np.random.default_rng(6)
    data = tmp_path / "photos"
    for name in ("a", "b", "c"):
        write_pngs(data / name, (rng.random((6, 6, 6, 3)) * 255).astype(np.uint8))
    run, fitted = run_with_export(tmp_path, export_dir, f"folder:{data}")
    flat = ev.load_evaluation_task(export_dir, f"folder:{data}")  # all 18: a test set

    def evaluate(model):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="hubensemble"):
            result = ev.evaluate_model(model, flat, corruptions=False, progress=False)
        return result, [r for r in caplog.records if r.levelno >= logging.WARNING], \
            [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]

    keys = run / "labels" / "pixel_keys.npz"
    result, warned, _ = evaluate(run / "export")  # the keys are there: 12 trained or chose it
    assert result["not_held_out"]["images"] == len(fitted.train) + len(fitted.val) and warned
    kept = keys.read_bytes()
    keys.unlink()  # deleted: its run.json was written by a version that writes the keys
    result, warned, debug = evaluate(run / "export")
    assert result["not_held_out"] is None and len(warned) == 1
    assert warned[0].getMessage() == (
        f"cannot tell which evaluated images trained the export: {keys} is missing, though the "
        f"hubensemble that wrote {run / 'run.json'} writes it (deleted since); `fit` or `rank` "
        "on this run's data writes it again")
    meta_path = run / "run.json"  # a run recorded before the keys were: DEBUG only
    recorded = meta_path.read_text()
    meta = json.loads(recorded)
    meta["data"]["task"].pop("turned")
    meta_path.write_text(json.dumps(meta))
    result, warned, debug = evaluate(run / "export")
    assert result["not_held_out"] is None and not warned
    assert f"{keys} is missing (a run recorded before it was)" in "\n".join(debug)
    meta_path.write_text(recorded)
    elsewhere = tmp_path / "elsewhere" / "export"  # `export --out` outside the run
    shutil.copytree(run / "export", elsewhere)
    keys.write_bytes(kept)
    result, warned, debug = evaluate(elsewhere)
    assert result["not_held_out"] is None and not warned
    assert "no run folder holds it" in "\n".join(debug)
    meta_path = run / "export" / "assets" / "hubensemble.json"  # an export of other data
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "task": {"fingerprint": "0" * 64}}))
    result, warned, debug = evaluate(run / "export")
    assert result["not_held_out"] is None and not warned
    assert "records other data than the export's" in "\n".join(debug)
    meta_path.write_text(json.dumps(meta))
    keys.write_bytes(kept[:40])  # damaged: said, and the evaluation goes on
    result, warned, _ = evaluate(run / "export")
    assert result["not_held_out"] is None and len(warned) == 1
    assert warned[0].getMessage().startswith(
        f"cannot tell which evaluated images trained the export: {keys} is unreadable")
    assert result["clean"]["ensemble"]["accuracy"] >= 0


@pytest.mark.slow
def test_evaluate_after_a_tiny_fit_warns_of_the_runs_own_photos(tiny_module, tmp_path,
                                                                in_process, monkeypatch,
                                                                figures_not_drawn):
    """End to end: `fit` on a folder of PNGs records the keys, and `evaluate --data` on that
    folder plus new photos warns on stderr and writes not_held_out; the run's own folder
    as it was gets no warning. One trial (sweep "combined", budget=1) and the report's
    figures not drawn: which images trained the export does not depend on how many trials
    the sweep ran, and the test reads no report (4 trials took 17 of the fit's 56 s of wall
    time at load 17, export 33 s, report 4 s)."""
    import shutil

    import hubensemble
    from hubensemble.data import load_task

    monkeypatch.setenv("HUBENSEMBLE_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(8)
    data = tmp_path / "photos"
    for name in ("a", "b", "c"):
        write_pngs(data / name, (rng.random((10, 8, 8, 3)) * 255).astype(np.uint8))
    cat = tmp_path / "cat.yaml"
    cat.write_text(f"modules:\n  - {{name: t, handle: {tiny_module}}}\n")
    run = tmp_path / "run"
    hubensemble.fit(str(cat), f"folder:{data}", run, progress=False, corruptions=False,
                    profile="quick", top_k=1, sweep="combined", budget=1, seed=0)
    fitted = load_task(f"folder:{data}")  # what the fit loaded: its split's file paths
    plus = tmp_path / "photos_plus"
    shutil.copytree(data, plus)
    for i, im in enumerate((rng.random((3, 8, 8, 3)) * 255).astype(np.uint8)):
        (plus / "a" / f"new{i}.png").write_bytes(tf.io.encode_png(im).numpy())
    want = {s: len(getattr(fitted, s)) for s in ("train", "val")}
    assert all((plus / os.path.relpath(p, data)).exists()
               for s in want for p in getattr(fitted, s).paths)
    out = tmp_path / "eval.json"
    code, stdout, stderr = in_process("evaluate", "--model", run / "export", "--data",
                                      f"folder:{plus}", "--out", out)
    assert code == 0, stderr
    n = 30 + 3
    assert (f"WARNING hubensemble.evaluate: {sum(want.values())} of {n} test images are "
            f"training ({want['train']}) or validation ({want['val']}) images of this "
            f"export's run; their metrics are not a held-out measure (the run: {run}; "
            "score images it never saw for one)") in stderr
    assert json.loads(out.read_text())["not_held_out"] == {
        "run": str(run), "images": sum(want.values()), **want}
    code, stdout, stderr = in_process("evaluate", "--model", run / "export", "--data",
                                      f"folder:{data}")
    assert code == 0 and "as fit split it" in stderr and "WARNING" not in stderr, stderr


def test_an_evaluation_of_an_export_written_again_since_is_said_to_be_earlier(
        export_dir, tmp_path):
    """A new-user check: `export --retrain-full` after fit replaced RUN/export with the same
    trial names; the report's Robustness section went on showing robustness.json's clean
    accuracy 0.1402 of the replaced export as the export's (evaluate on the new one: 0.0374).
    An evaluation records which export it measured (the digest of its metadata asset, its
    created time and retrain_full), and the report says it is of an earlier export and
    gives the command that evaluates the current one. An evaluation without that record
    (made before it was kept) says nothing of it."""
    from hubensemble.fileio import atomic_write_json, file_sha256, read_json
    from hubensemble.report import write_report
    from hubensemble.rundir import Run

    rng = np.random.default_rng(8)
    data = tmp_path / "photos"
    for name in ("a", "b", "c"):
        write_pngs(data / name, (rng.random((6, 6, 6, 3)) * 255).astype(np.uint8))
    run, fitted = run_with_export(tmp_path, export_dir, f"folder:{data}")
    Run(run).update(export={**Run(run).export_record(run / "export"), "skipped": []})
    asset = run / "export" / "assets" / "hubensemble.json"
    meta = read_json(asset)
    atomic_write_json(asset, {**meta, "created": "2026-12-04T10:00:00", "retrain_full": False})

    def robustness_section():
        text = write_report(run)[0].read_text()
        section = text[text.index("## Robustness to corruptions"):]
        return section[:section.index("\n## ")] if "\n## " in section else section

    result = ev.evaluate_model(run / "export", fitted, corruptions=False, progress=False)
    assert result["export"] == {"metadata_sha256": file_sha256(asset),
                                "created": "2026-12-04T10:00:00", "retrain_full": False}
    ev.write_evaluation(result, run / "robustness.json")
    assert "earlier export" not in robustness_section()
    # The export written again: other weights, the same members (export --retrain-full).
    build_export(run / "export", seed=3)
    atomic_write_json(asset, {**read_json(asset), "task": meta["task"],
                              "created": "2026-12-04T11:00:00", "retrain_full": True})
    section = robustness_section()
    ten, eleven = shown_time("2026-12-04T10:00:00"), shown_time("2026-12-04T11:00:00")
    assert (f"This evaluation is of an earlier export (written {ten}, members "
            f"trained on train), not of `{run / 'export'}` (written {eleven}, "
            "members retrained on train + val), written again since with the same members: "
            "its figures are not the current export's. Run `hubensemble evaluate --model "
            f"{run / 'export'} --corruptions --out {run / 'robustness.json'}`.") in section
    assert "The earlier export evaluated on the test split" in section
    # An evaluation made before evaluations named their export: nothing claimed.
    atomic_write_json(run / "robustness.json", {k: v for k, v in result.items()
                                                if k != "export"})
    assert "earlier export" not in robustness_section()
    # Evaluated again: the current export's figures, nothing said.
    ev.write_evaluation(ev.evaluate_model(run / "export", fitted, corruptions=False,
                                          progress=False), run / "robustness.json")
    section = robustness_section()
    assert "earlier export" not in section and "The export evaluated" in section


def test_a_class_name_with_a_slash_is_matched_by_its_folder_spelling(tmp_path):
    """A new-user check: gtsrb10's "beware of ice/snow" (an npz class name fit accepts) could
    never be matched by `evaluate --data folder:DIR`, whose error said to rename the folder to
    the model's name, which no folder may hold. A folder test set spells "/", "\\" and NUL
    of a model class as "-" or "_"; a folder that spells two model classes is refused; the
    error for an unknown folder names the folder name to use."""
    from hubensemble.data import load_test_set
    from hubensemble.errors import DataError

    model = build_export(tmp_path / "model", class_names=("a", "beware of ice/snow", "c"))
    rng = np.random.default_rng(9)
    for spelling in ("beware of ice-snow", "beware of ice_snow"):
        root = tmp_path / spelling
        for name in ("a", spelling):
            write_pngs(root / name, (rng.random((2, 6, 6, 3)) * 255).astype(np.uint8))
        task = load_test_set(f"folder:{root}")
        result = ev.evaluate_model(model, task, corruptions=False, progress=False)
        assert result["n"] == 4 and result["classes"]["absent"] == ["c"]
        np.testing.assert_array_equal(ev.class_index(["a", "beware of ice/snow", "c"], task),
                                      [0, 1] if task.class_names[0] == "a" else [1, 0])
    from hubensemble.classmatch import folder_name

    assert folder_name("beware of ice/snow") == "beware of ice-snow"
    assert folder_name("a\\b\0c") == "a-b-c"
    twins = Task(name="twins", source="folder:x", class_names=["a", "x-y"], train=task.train)
    for model_names in (["a", "x/y", "x-y"], ["a", "x/y", "x\\y"]):
        with pytest.raises(DataError, match="the class folder 'x-y' of 'twins' spells the "
                           "model's classes '(x-y|x/y)' and '(x/y|x\\\\\\\\y)'"):
            ev.class_index(model_names, twins)
    # The plain name of a class holding "\" (a Linux folder may hold it) is no clash.
    linux = Task(name="l", source="folder:x", class_names=["a", "x\\y"], train=task.train)
    np.testing.assert_array_equal(ev.class_index(["x/y", "a", "x\\y"], linux), [1, 2])
    # An unknown folder: the error names the folder name of the model's class.
    odd = Task(name="odd", source="folder:x", class_names=["a", "beware of ice snow"],
               train=task.train)
    with pytest.raises(DataError) as e:
        ev.class_index(["a", "beware of ice/snow", "c"], odd)
    assert ("rename the class folder to the model's names (a name with '/', '\\' or NUL "
            "is written with '-' or '_' there: 'beware of ice/snow' -> folder "
            "'beware of ice-snow')") in str(e.value)
    # Other data spell the model's names: an npz archive's "ice-snow" is another class.
    npz = Task(name="n", source="npz:x", class_names=["a", "beware of ice-snow"],
               train=task.train)
    with pytest.raises(DataError, match="store the model's names in the npz file's"):
        ev.class_index(["a", "beware of ice/snow", "c"], npz)


def test_the_note_on_files_edited_since_the_fit_reads_as_one_sentence():
    """The note on the export's own folder whose files have their names but other pixels said
    "…task.files), but its files have the names of those it was measured on, but not their
    pixels": a doubled "but"."""
    from hubensemble.heldout import changed_files_note

    note = changed_files_note({"n": 30, "data_changed": {
        "folder": "/data/photos", "recorded": 30, "present": 30, "added": 0, "removed": 0,
        "train": 19, "val": 5, "test": 6}})
    first = note.split(". ")[0]
    assert first == ("/data/photos holds 30 of the 30 files this export was fit on (by name; "
                     "its metadata's task.files), but their pixels differ from those it was "
                     "measured on (files edited since, or decoded otherwise by this version)")
    assert note.endswith("To score its held-out test split, restore the files; to score new "
                         "images, put them in a folder of their own")


def test_a_long_evaluation_with_corruptions_is_announced_with_the_way_to_a_shorter_one(
        tmp_path, caplog):
    # A new-user check: fit --sweep probe with a VGG16 member at 224 px spent 1 h 40 min
    # scoring 1,062 test images x 16 passes, with nothing said before it began.
    model = build_export(tmp_path / "model", members=True)
    task = make_task(model, n=12)
    asset = model / "assets" / "hubensemble.json"
    meta = json.loads(asset.read_text())
    # 12 images x 3 passes: over 10 minutes at 2,000 s per 64 images, not at 0.05 s.
    for per64, said in ((2_000_000.0, True), (50.0, False)):
        asset.write_text(json.dumps({**meta, "latency_ms": {"1": per64 / 64, "64": per64}}))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hubensemble"):
            ev.evaluate_model(model, task, corruptions=["contrast"], severities=(1, 2),
                              progress=False)
        notes = [r.getMessage() for r in caplog.records if "will take about" in r.getMessage()]
        assert bool(notes) == said
    seconds = ev.evaluation_estimate({"latency_ms": {"64": 17_000.0}}, 1062, 16)
    assert seconds == pytest.approx(17.0 * 16 * 1062 / 64)
    note = ev.long_evaluation_note({"latency_ms": {"64": 17_000.0}}, 1062,
                                   list(ev.DEFAULT_CORRUPTIONS), [1, 2, 3])
    assert "about 1 h 15 min" in note and "1062 test images x 16 passes" in note
    # From Python, the keywords (it was told `fit --no-corruptions`); the command line's flags.
    assert "fit(…, corruptions=False)" in note and "corruptions=[NAME, …]" in note
    assert "--" not in note and "hubensemble " not in note, note
    from hubensemble.lockwords import command_line

    with command_line():
        note = ev.long_evaluation_note({"latency_ms": {"64": 17_000.0}}, 1062,
                                       list(ev.DEFAULT_CORRUPTIONS), [1, 2, 3])
    assert "--no-corruptions" in note and "--corruptions NAME" in note
    assert "(clean + 5 corruptions x 3 severities)" in note
    one = ev.long_evaluation_note({"latency_ms": {"64": 2_000_000.0}}, 100, ["jpeg"], [2])
    assert "100 test images x 2 passes (clean + 1 corruption x 1 severity)" in one
    # Clean only, or an export without a recorded latency: nothing to announce.
    assert ev.long_evaluation_note({"latency_ms": {"64": 17_000.0}}, 1062, [], [1]) is None
    assert ev.long_evaluation_note({}, 1062, ["contrast"], [1]) is None


def test_read_evaluation_refusals_speak_the_callers_words(tmp_path):
    """read_evaluation told a Python caller (fit, the report) to run `hubensemble evaluate …
    --out FILE`, a command it never typed; it names evaluate_model and write_evaluation, and
    the command line keeps its command."""
    from hubensemble.lockwords import command_line

    missing, bad, other = tmp_path / "e.json", tmp_path / "bad.json", tmp_path / "other.json"
    bad.write_text("{")
    other.write_text("[]")
    with pytest.raises(RunError) as err:
        ev.read_evaluation(missing)
    assert str(err.value) == (
        f"{missing} is missing; call evaluate_model(model_dir=RUN/export, task=TASK), then "
        f"write_evaluation(result, {str(missing)!r})")
    for path in (bad, other):
        with pytest.raises(RunError) as err:
            ev.read_evaluation(path)
        assert str(err.value).endswith(
            f"call evaluate_model(model_dir=RUN/export, task=TASK), then "
            f"write_evaluation(result, {str(path)!r}) again"), err.value
        assert "--" not in str(err.value) and "hubensemble " not in str(err.value)
    with command_line(), pytest.raises(RunError) as err:
        ev.read_evaluation(missing)
    assert str(err.value) == (f"{missing} is missing; run `hubensemble evaluate --model "
                              f"RUN/export --corruptions --out {missing}`")


def test_the_tables_head_names_the_corruptions_seed_only_when_corruptions_were_scored():
    """`hubensemble evaluate --model M` (clean only, the default) headed its table
    "(1062 examples, seed 0)": a seed nothing in a clean table depends on, and named as no
    flag the user gave. It is named (as --seed's: the corruptions' noise) only with
    corruption rows."""
    scores = {"ensemble": {"accuracy": 0.5, "nll": 1.0, "ece": 0.1}, "best_single": None}
    clean = {"split": "test", "n": 4, "seed": 3, "clean": scores, "corruptions": {},
             "best_single_missing": "no serve_members"}
    head = ev.format_evaluation(clean).splitlines()[0]
    # and a clean-only table is not "Robustness" (a new user's check: no corruption in it)
    assert head == "Accuracy, NLL and ECE on the test split (4 examples)"
    noisy = dict(clean, corruptions={"gaussian_noise": {"1": scores}},
                 mean_corrupted=scores)
    assert ev.format_evaluation(noisy).splitlines()[0] == (
        "Robustness on the test split (4 examples; corruptions' seed 3)")


def test_a_folder_carved_as_fit_carved_it_is_not_copied_to_be_compared(tmp_path):
    """load_test_set carves a folder of class folders as fit carved it, to tell the export's
    own data (its fingerprint) from a test set: the carve copied every split, so the images
    were held twice while they were compared. Now the splits are views of the one array
    (reordered in place), and its order is put back when the folder is not the export's
    data: every test image is still the one its path names."""
    from hubensemble.data import load_task
    from hubensemble.data.specs import load_test_set

    rng = np.random.default_rng(5)
    root = tmp_path / "data"
    for name in ("a", "b", "c"):
        write_pngs(root / name, (rng.random((8, 6, 6, 3)) * 255).astype(np.uint8))
    spec = f"folder:{root}"
    fitted = load_task(spec)
    own = load_test_set(spec, trained_on=fitted.fingerprint)
    assert own.fingerprint == fitted.fingerprint
    base = own.train.images.base
    assert base is not None and own.val.images.base is base and own.test.images.base is base
    other = load_test_set(spec, trained_on="0" * 64)
    plain = load_test_set(spec)
    assert other.test.paths == plain.test.paths and len(other.test) == 24
    np.testing.assert_array_equal(other.test.images, plain.test.images)
    np.testing.assert_array_equal(other.test.labels, plain.test.labels)
    for path, image in zip(other.test.paths, other.test.images):
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), image)


def build_scores_model(path, kind):
    """A SavedModel of serving_default and serve_members (2 members, 3 classes, on the
    images' mean colour) whose scored output is no probability table by `kind`: "logits"
    (serving_default's), "nan" (NaN on images brighter than 0.5 on average), "member-logits"
    (the best member's slice; the average is a softmax); assets/hubensemble.json names
    the members and the best (the second)."""
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    def member_scores(images):
        logits = (tf.reduce_mean(images, axis=[1, 2]) - 0.5) * 10.0  # [N, 3]
        soft = tf.nn.softmax(logits)
        best = logits if kind == "member-logits" else soft
        return tf.stack([soft, best], axis=1)  # [N, 2, 3]

    @tf.function(input_signature=[spec])
    def serving_default(images):
        mean = tf.reduce_mean(images, axis=[1, 2, 3])[:, None]
        logits = (tf.reduce_mean(images, axis=[1, 2]) - 0.5) * 10.0
        p = {"logits": logits,
             "nan": tf.where(mean > 0.5, tf.fill(tf.shape(logits), np.float32("nan")),
                             tf.nn.softmax(logits))}.get(kind, tf.nn.softmax(logits))
        return {"probabilities": p}

    @tf.function(input_signature=[spec])
    def serve_members(images):
        return {"member_probabilities": member_scores(images)}

    root = tf.train.Checkpoint()
    root.serving_default, root.serve_members = serving_default, serve_members
    tf.saved_model.save(root, str(path), signatures={
        "serving_default": serving_default.get_concrete_function(),
        "serve_members": serve_members.get_concrete_function()})
    os.makedirs(path / "assets", exist_ok=True)
    (path / "assets" / "hubensemble.json").write_text(json.dumps(
        {"format": "hubensemble-export", "class_names": ["a", "b", "c"], "num_classes": 3,
         "best_single": TRIALS[1], "members": [{"trial": t, "module": t[-1], "weight": 0.5}
                                               for t in TRIALS[:2]]}))
    return path


@pytest.mark.parametrize("kind, key, fault", [
    ("logits", "serving_default's 'probabilities'", "rows are not values >= 0 that sum to 1"),
    ("nan", "serving_default's 'probabilities'", "hold a value that is not finite"),
    ("member-logits", "serve_members's 'member_probabilities[:, 1]'",
     "rows are not values >= 0 that sum to 1")])
def test_a_model_whose_output_is_not_probabilities_is_refused_naming_an_image(
        tmp_path, kind, key, fault):
    # Before, evaluate scored logits (an NLL of 9.4 from them) and NaN rows (accuracy counting
    # them as class 0, NaN written into the JSON, which JSON readers refuse) without a word.
    model = build_scores_model(tmp_path / kind, kind)
    rng = np.random.default_rng(0)
    images = (rng.random((12, 4, 4, 3)) * 255).astype(np.uint8)
    images[5] = 250  # bright: NaN for "nan"; the batch's first such image
    images[:5] //= 3
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images[:6], labels=np.arange(6) % 3),
                test=Split(images=images, labels=np.arange(12) % 3))
    with pytest.raises(RunError) as e:
        ev.evaluate_model(model, task, corruptions=False, progress=False)
    said = str(e.value)
    assert said.startswith(f"{model}: {key} output on a batch of 12 test images (clean) is "
                           "not probabilities: "), said
    assert fault in said and "give a model that returns logits a softmax" in said, said
    if kind == "nan":
        assert "the test split's image 5: [nan nan nan]" in said, said


def build_shaped_model(path, kind, meta=True):
    """A SavedModel of serving_default (and serve_members: 2 members of 3 classes on the
    images' mean colour) whose output is of another shape than its metadata says, by `kind`:
    "wide" (serving_default's probabilities [N, 4], their width unknown until it runs, as
    check_metadata_fits cannot see), "rank" ([N]: one value per image), "members"
    (member_probabilities [N, 3, 3] for the 2 members the metadata lists), "members-key"
    (serve_members returns 'member_scores'). With `meta`, assets/hubensemble.json names
    classes a, b, c, the members, the best (the second) and its run, RUN beside the model."""
    spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")

    def probs(images):
        return tf.nn.softmax((tf.reduce_mean(images, axis=[1, 2]) - 0.5) * 10.0)  # [N, 3]

    @tf.function(input_signature=[spec])
    def serving_default(images):
        p = probs(images)
        if kind == "wide":  # [N, 4], of a width known only when it runs
            width = tf.shape(images)[1] * 0 + 4
            p = tf.fill(tf.stack([tf.shape(images)[0], width]), 1.0 / tf.cast(width, tf.float32))
        return {"probabilities": p[:, 0] if kind == "rank" else p}

    @tf.function(input_signature=[spec])
    def serve_members(images):
        p = probs(images)
        stacked = tf.stack([p] * (3 if kind == "members" else 2), axis=1)
        return {"member_scores" if kind == "members-key" else "member_probabilities": stacked}

    root = tf.train.Checkpoint()
    root.serving_default, root.serve_members = serving_default, serve_members
    tf.saved_model.save(root, str(path), signatures={
        "serving_default": serving_default.get_concrete_function(),
        "serve_members": serve_members.get_concrete_function()})
    if meta:
        os.makedirs(path / "assets", exist_ok=True)
        (path / "assets" / "hubensemble.json").write_text(json.dumps(
            {"format": "hubensemble-export", "class_names": ["a", "b", "c"], "num_classes": 3,
             "best_single": TRIALS[1], "run": {"path": str(path.parent / "RUN")},
             "members": [{"trial": t, "module": t[-1], "weight": 0.5} for t in TRIALS[:2]]}))
    return path


@pytest.mark.parametrize("kind, said", [
    ("wide", "serving_default signature returns probabilities of shape (12, 4), but its "
             "metadata (assets/hubensemble.json) names 3 classes: the metadata is not this "
             "model's; "),
    ("rank", "serving_default signature returns probabilities of shape (12,), not [N, C] "
             "(one row of class probabilities per image); "),
    ("members", "serve_members signature returned shape (12, 3, 3); expected [N, 2, C] (one "
                "slice per member of assets/hubensemble.json); "),
    ("members-key", "serve_members signature returns ['member_scores'], not "
                    "'member_probabilities'; ")])
def test_a_model_of_another_output_shape_is_refused_with_the_way_on(tmp_path, kind, said):
    """evaluate of an export whose output is of another shape than its metadata says said
    "the model returns probabilities of shape (12, 4); its metadata names 3 classes" (or
    of serve_members "…; export it again", or "the signature returns […]"), naming no model,
    no command and no run. Each names the model's signature and ends in the way on: the
    command that exports its run again (its metadata names the run) to this folder (--out,
    as it is not RUN/export), in the caller's words; a model without metadata, of another
    class count than the data's, is told to be evaluated on the data it was trained for
    (its classes are matched by position). Fails before: no way on; then no --out."""
    from hubensemble.lockwords import command_line

    model = build_shaped_model(tmp_path / "export", kind)
    run = tmp_path / "RUN"
    images = (np.random.default_rng(0).random((12, 4, 4, 3)) * 255).astype(np.uint8)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"],
                train=Split(images=images[:6], labels=np.arange(6) % 3),
                test=Split(images=images, labels=np.arange(12) % 3))
    with command_line(), pytest.raises(RunError) as typed:
        ev.evaluate_model(model, task, corruptions=False, progress=False)
    # The export is beside RUN, not RUN/export: the command writes it there (`export --run
    # RUN` alone wrote RUN/export and left this one as it was).
    assert str(typed.value) == (f"{model}'s {said}export it again with `hubensemble export "
                                f"--run {run} --out {model}`"), typed.value
    with pytest.raises(RunError) as python:
        ev.evaluate_model(model, task, corruptions=False, progress=False)
    assert str(python.value).endswith(f"; export it again with export_ensemble(run_dir="
                                      f"{str(run)!r}, out_dir={str(model)!r})"), python.value
    if kind != "wide":
        return
    # No metadata: the classes are the data's, by position; the data to give is named.
    os.remove(model / "assets" / "hubensemble.json")
    with command_line(), pytest.raises(DataError) as typed:
        ev.evaluate_model(model, task, corruptions=False, progress=False)
    assert str(typed.value) == (
        f"{model}'s serving_default signature returns probabilities of shape (12, 4), 4 "
        "classes, and the task 'toy' has 3, matched to them by position (no "
        "assets/hubensemble.json names them); evaluate it on the data it was trained for "
        "(--data SPEC of 4 classes, in the order of the model's outputs)"), typed.value
    with pytest.raises(DataError, match=r"trained for \(a task of 4 classes, in the order"):
        ev.evaluate_model(model, task, corruptions=False, progress=False)


def test_probability_fault_passes_probabilities_and_names_the_first_row_that_is_not():
    from hubensemble import metrics

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 1000)).astype(np.float32) * 5
    soft = tf.nn.softmax(logits).numpy()  # float32 rows of 1,000 classes
    exact = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], np.float32)  # zeros, a tie
    for probs in (soft, exact, np.ones((4, 1), np.float32), np.zeros((0, 3))):
        assert metrics.probability_fault(probs) is None
    bad = exact.copy()
    bad[1, 0] = np.inf
    assert metrics.probability_fault(bad) == (
        1, "1 of 3 rows hold a value that is not finite (NaN or inf)")
    assert metrics.probability_fault(logits)[0] == 0
    shifted = np.array([[0.5, 0.5], [0.6, 0.6], [1.2, -0.2]])  # sums 1, 1.2, 1 (a value < 0)
    assert metrics.probability_fault(shifted) == (
        1, "2 of 3 rows are not values >= 0 that sum to 1 (row sums 1 to 1.2, smallest value "
        "-0.2)")


def test_a_savedmodel_not_exported_by_hubensemble_is_named_with_the_way_on(tmp_path, capsys):
    """`evaluate --model M` on a plain Keras model saved with model.export (serving_default
    returns 'output_0') said only "the signature returns ['output_0'], not 'probabilities'",
    and predict on it offered evaluate "for any SavedModel". Both name the folder, say it is
    no hubensemble export, the command that writes one, and what evaluate takes; a model
    saved as that says (docs/export.md, "What evaluate takes") is evaluated: its accuracy,
    NLL and ECE are those of its own softmax outputs (`reference_metrics`)."""
    import keras

    from conftest import export_quietly, make_tiny_model
    from hubensemble.cli import main
    from hubensemble.prediction import predict

    model = make_tiny_model(seed=3, width=4, out_dim=NUM_CLASSES)
    plain = tmp_path / "plain"
    export_quietly(model, str(plain))
    rng = np.random.default_rng(5)
    images = rng.random((12, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, 12).astype(np.int64)
    split = Split(images=(images * 255).round().astype(np.uint8), labels=labels)
    task = Task(name="toy", source="test", class_names=["a", "b", "c"], train=split, test=split)
    with pytest.raises(RunError) as e:
        ev.evaluate_model(plain, task, corruptions=False, progress=False)
    assert str(e.value) == (
        f"{plain}'s serving_default signature returns ['output_0'], not 'probabilities'; "
        f"{plain} is not an export of hubensemble (no assets/hubensemble.json): pass the "
        "folder export_ensemble(run_dir=RUN) writes (RUN/export by default); evaluate takes "
        f"another model only as {ev.EVALUATE_TAKES}: save yours with such a signature "
        "(docs/export.md, \"What evaluate takes\")"), e.value
    assert "serving_default takes one image input" in ev.EVALUATE_TAKES
    # The command line's words: the command that writes an export.
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    capsys.readouterr()
    assert main(["predict", "--model", str(plain), str(tmp_path / "one.png")]) == 2
    err = capsys.readouterr().err
    assert (f"{plain} is a SavedModel that `hubensemble export` did not write (no export "
            "metadata in assets/hubensemble.json); predict needs an export: pass the folder "
            "`hubensemble export --run RUN` writes (RUN/export by default); `hubensemble "
            f"evaluate` takes another model only as {ev.EVALUATE_TAKES}") in err, err
    with pytest.raises(HubensembleError, match="evaluate_model\\(\\) takes another model only "
                                               "as a SavedModel whose serving_default"):
        predict(plain, [tmp_path / "one.png"], progress=False)
    # Saved as docs/export.md says: evaluated, on its own outputs' figures.

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32,
                                                name="images")])
    def serve(images):  # a def: autograph reads a lambda's source with a warning
        return {"probabilities": tf.nn.softmax(model(images))}

    mine = tmp_path / "mine"
    tf.saved_model.save(model, str(mine), signatures={"serving_default": serve})
    result = ev.evaluate_model(mine, task, corruptions=False, progress=False)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(model(split.images / 255.0)))
    got = {k: result["clean"]["ensemble"][k] for k in ("accuracy", "nll", "ece")}
    assert_close(got, reference_metrics(probs, labels))


def test_a_savedmodel_without_hubensemble_metadata_is_measured_without_re_export_advice(
        export_dir, tmp_path):
    """A SavedModel of one's own (no assets/hubensemble.json: docs/export.md's "What evaluate
    takes") was told "export it again with this hubensemble to compare with the best single
    member", which hubensemble never exported. It says no members are known and only the
    model was measured; an older export (metadata, no serve_members) keeps the advice."""
    mine = build_export(tmp_path / "mine", members=False)
    os.remove(mine / "assets" / "hubensemble.json")
    task = make_task(export_dir, n=6)
    result = ev.evaluate_model(mine, task, corruptions=False, progress=False)
    assert result["best_single"] is None and result["export"] is None
    assert result["best_single_missing"] == (
        f"{mine} is not an export of hubensemble (no assets/hubensemble.json), so no members "
        "are known: only the model was measured")
    table = ev.format_evaluation(result)
    assert f"model only: {mine} is not an export" in table and "export it again" not in table
    assert "  model acc   model NLL   model ECE" in table and "ens " not in table
    older = build_export(tmp_path / "older", members=False)
    kept = ev.evaluate_model(older, task, corruptions=False, progress=False)
    assert kept["best_single_missing"] == (
        "the export has no serve_members signature, so its members cannot be run one by one; "
        "only the ensemble was evaluated")
    # The way on is said once, after the note (it was in the note, then in the command:
    # "… (export it again with this hubensemble to compare with the best single member). To
    # compare with the best single member, call …"); a note stored so by an earlier version
    # is shown without its own.
    for note in (kept["best_single_missing"], kept["best_single_missing"] + (
            " (export it again with this hubensemble to compare with the best single member)")):
        line = next(t for t in ev.format_evaluation(dict(kept, best_single_missing=note))
                    .splitlines() if t.startswith("ensemble only: "))
        assert line.count("compare with the best single member") == 1, line
        assert line.startswith(f"ensemble only: {kept['best_single_missing']}. To compare "
                               "with the best single member, call export_ensemble("), line
    assert "    ens acc     ens NLL     ens ECE" in ev.format_evaluation(kept)


def test_evaluate_of_tfds_data_reads_only_the_split_it_scores(tmp_path, in_process):
    """`evaluate --data tfds:NAME` read every VTAB split (train[:800], train[800:1000], test)
    to score one, so a data set of 6 training examples was refused ("cannot read split
    'train[:800]'") with advice evaluate does not take (--split train=...). It reads the
    scored split alone, from the command line and from Python: its pixels and labels are
    those the stage commands read for that split, its metrics a hand computation from the
    export's own signatures; a split it cannot read is refused in evaluate's words."""
    tfds = pytest.importorskip("tensorflow_datasets")
    import tfds_builders

    data = tmp_path / "tfds"
    tfds_builders.VtabPhotos(data_dir=str(data)).download_and_prepare()
    model = build_export(tmp_path / "model", members="both")
    spec = "tfds:vtab_photos"
    out = tmp_path / "evaluation.json"
    code, _, err = in_process("evaluate", "-q", "--model", model, "--data", spec,
                              "--data-dir", data, "--out", out)
    assert code == 0, err
    result = ev.read_evaluation(out)
    assert (result["split"], result["n"], result["task"]["unscored"]) == ("test", 3, {})

    from hubensemble.data import load_task

    staged = load_task(spec, data_dir=str(data),  # train and val as they are, test VTAB's
                       splits={"train": "train", "val": "validation"}).test
    scored = ev.load_evaluation_task(model, spec, data_dir=str(data), split="test",
                                     progress=False).test
    np.testing.assert_array_equal(np.stack(scored.images), np.stack(staged.images))
    np.testing.assert_array_equal(scored.labels, staged.labels)
    # The stored test split's labels in tfds' own order (its files undecoded).
    stored = tfds.builder("vtab_photos", data_dir=str(data)).as_dataset(
        split="test", shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    assert [int(ex["label"]) for ex in tfds.as_numpy(stored)] == list(scored.labels)
    assert sorted(scored.labels) == [0, 1, 2]  # examples 9..11, label i % 3

    loaded = tf.saved_model.load(str(model))
    x = tf.constant(np.stack(staged.images).astype(np.float32) / 255.0)
    y = np.asarray(staged.labels)
    ens = loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
    single = loaded.signatures["serve_members"](images=x)["member_probabilities"].numpy()
    lopsided = result["classes"]["unbalanced"]
    assert_close(result["clean"]["ensemble"], reference_metrics(ens, y, lopsided))
    assert_close(result["clean"]["best_single"],
                 reference_metrics(single[:, TRIALS.index(BEST)], y, lopsided))

    # A split it cannot read: said with what evaluate takes, not a split override.
    code, _, err = in_process("evaluate", "--model", model, "--data", spec,
                              "--data-dir", data, "--split", "val")
    assert code == 2
    assert ("cannot read split 'train[800:1000]' for val" in err
            and "evaluate read its val split as 'train[800:1000]' (VTAB-1k's); name the tfds "
                "split to read (--split val=TFDS_SPLIT, e.g. val=validation) or score another "
                "split (--split test)" in err), err
    with pytest.raises(DataError, match=r"for train .*score another split \(split='test'\)"):
        ev.load_evaluation_task(model, spec, data_dir=str(data), split="train")
    with pytest.raises(DataError, match=r"evaluate scores one split: read it alone, e\.g\. "
                                        r"load_evaluation_task\(MODEL, SPEC, split='test'\)"):
        ev.load_evaluation_task(model, spec, data_dir=str(data))


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """(data_dir, spec): tests/tfds_builders' H340Toys prepared (smallnorb's features: no
    "label", label_category and label_elevation; train 60, test 12)."""
    pytest.importorskip("tensorflow_datasets")
    import tfds_builders

    data = tmp_path_factory.mktemp("toys") / "tfds"
    tfds_builders.H340Toys(data_dir=str(data)).download_and_prepare()
    return data, "tfds:h340_toys"


def test_evaluate_takes_tfds_split_strings_and_a_label_key(tmp_path, toys, in_process):
    """evaluate had no way to name a tfds split string or a label feature (fit and rank take
    --split NAME=SPEC and --label-key): smallnorb, whose classes are label_category or
    label_elevation, could not be evaluated, nor half a test split. `--split test=test[:50%]`
    reads the test split from that tfds split and `--label-key` picks the feature, as
    load_task reads them (its pixels and labels); the metrics are a hand computation from
    the export's own signatures. Without --data, or for other data, they are refused."""
    from hubensemble.data import load_task

    data, spec = toys
    model = build_export(tmp_path / "model", members="both")
    out = tmp_path / "evaluation.json"
    code, _, err = in_process("evaluate", "-q", "--model", model, "--data", spec, "--data-dir",
                              data, "--label-key", "label_elevation", "--split",
                              "test=test[:50%]", "--out", out)
    assert code == 0, err
    result = ev.read_evaluation(out)
    staged = load_task(spec, data_dir=str(data), label_key="label_elevation",
                       splits={"train": "train", "val": None, "test": "test[:50%]"}).test
    assert (result["split"], result["n"]) == ("test", len(staged)) == ("test", 6)
    assert "test test[:50%]" in result["task"]["source"]
    loaded = tf.saved_model.load(str(model))
    x = tf.constant(np.stack(staged.images).astype(np.float32) / 255.0)
    ens = loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
    lopsided = result["classes"]["unbalanced"]
    assert_close(result["clean"]["ensemble"], reference_metrics(ens, staged.labels, lopsided))
    # The elevation labels, not the category's: (i // 3) % 3 of the test examples read.
    by_pixels = {tfds_example(i): (i // 3) % 3 for i in range(60, 72)}
    assert [by_pixels[im.tobytes()] for im in staged.images] == list(staged.labels)

    # Refused, before anything loads: an empty tfds split, the keys without --data or
    # for data other than tfds:.
    # (with its --data-dir: without, the folder's refusal comes first since 738bb1ea)
    code, _, err = in_process("evaluate", "--model", model, "--data", spec, "--data-dir", data,
                              "--split", "test=")
    assert code == 2 and "evaluate: error: --split: 'test=' would leave the test split " \
        "scored unread; write test=TFDS_SPLIT" in err, err
    with pytest.raises(ev.options.OptionError,
                       match=r"^label_key applies to data; the data of the export's run is "
                             r"read with the split strings and features it recorded"):
        ev.load_evaluation_task(model, None, split="test", label_key="label_elevation")
    with pytest.raises(DataError, match=r"^splits: a tfds split string \(NAME=TFDS_SPLIT\) "
                                        r"applies to tfds: specs only, not sklearn:; for "
                                        r"sklearn: data split is a split's name alone"):
        ev.load_evaluation_task(model, "sklearn:digits", split="test=test[:5]")


def tfds_example(i):
    """tests/tfds_builders' example i's RGB pixels as bytes (the H340Toys images)."""
    import tfds_builders

    return tfds_builders.example(i, 3)[0].tobytes()


def test_evaluate_of_a_tfds_val_split_reads_that_split_alone(tmp_path, toys, in_process):
    """A Task could not hold a val split without a train split, so `evaluate --split val` of
    tfds data read train[:800] beside it, and was refused on a data set of 60 training
    examples ("cannot read split 'train[:800]' for train") though val alone was readable.
    The val split is read alone and the Task holds it alone (`Task.one_split`): the pixels
    and labels load_task reads for val, its metrics a hand computation; asked for another
    split, it says it holds val alone."""
    from hubensemble.data import load_task

    data, spec = toys
    model = build_export(tmp_path / "model", members="both")
    task = ev.load_evaluation_task(model, spec, data_dir=str(data), split="val=train[50:60]",
                                   label_key="label_elevation", progress=False)
    assert (task.present_splits(), task.one_split, len(task.val)) == (["val"], "val", 10)
    with pytest.raises(DataError, match=r"holds its val split alone \(read so for evaluate\), "
                                        r"so it has no train split here; evaluate its val "
                                        r"split \(split='val'\)"):
        task.split("train")
    staged = load_task(spec, data_dir=str(data), label_key="label_elevation", splits={
        "train": "train[:50]", "val": "train[50:60]", "test": None}).val
    np.testing.assert_array_equal(np.stack(task.val.images), np.stack(staged.images))
    np.testing.assert_array_equal(task.val.labels, staged.labels)

    out = tmp_path / "evaluation.json"
    code, _, err = in_process("evaluate", "--model", model, "--data", spec, "--data-dir", data,
                              "--label-key", "label_elevation", "--split", "val=train[50:60]",
                              "--out", out)
    assert code == 0, err
    assert "from tfds:h340_toys (val train[50:60]; " in err and "): val 10 examples; " in err
    result = ev.read_evaluation(out)
    assert (result["split"], result["n"], result["task"]["unscored"]) == ("val", 10, {})
    loaded = tf.saved_model.load(str(model))
    x = tf.constant(np.stack(staged.images).astype(np.float32) / 255.0)
    ens = loaded.signatures["serving_default"](images=x)["probabilities"].numpy()
    assert_close(result["clean"]["ensemble"],
                 reference_metrics(ens, staged.labels, result["classes"]["unbalanced"]))


def _export_with_task_of(path, fitted, record):
    """A tiny export whose metadata's task is the one fit would write for `fitted` (a Task)
    and `record` (split_record's); returns (export folder, its metadata path, the metadata)."""
    from hubensemble.export.metadata import export_metadata

    own = build_export(path, members="both")
    meta_path = own / "assets" / "hubensemble.json"
    meta = json.loads(meta_path.read_text())
    meta["task"] = export_metadata({}, [], [], fitted, retrain_full=False,
                                   split=record)["task"]
    meta_path.write_text(json.dumps(meta))
    return own, meta_path, meta


def test_the_exports_own_tfds_split_read_alone_is_its_own_data(tmp_path, toys):
    """evaluate reads one tfds split, so its task's fingerprint was never the export's whole
    task's: on the export's own tfds data `same_data_as_export` was False and the table's
    "not scored: train 40, val 10 (the data the export was made on …)" line was gone. The
    export records each split's fingerprint (export_metadata's task.splits), and a split read
    alone is matched by it, its record of the other splits said as not scored; --split train
    is said to have trained it. An export without the record (older) is compared by the
    whole fingerprint as before; another test split is other data."""
    from hubensemble.data import load_task

    data, spec = toys
    splits = {"train": "train[:40]", "val": "train[40:50]", "test": "test"}
    fitted = load_task(spec, data_dir=str(data), label_key="label_elevation", splits=splits)
    own, meta_path, meta = _export_with_task_of(tmp_path / "own", fitted, None)
    alone = load_task(spec, data_dir=str(data), label_key="label_elevation",
                      splits={**splits, "val": None})  # the same test split, val not read
    assert meta["task"]["splits"]["test"] == alone.split_fingerprints()["test"]
    assert meta["task"]["splits"]["test"]["examples"] == 12

    def evaluated(split, export=own):
        task = ev.load_evaluation_task(export, spec, data_dir=str(data), split=split,
                                       label_key="label_elevation", progress=False)
        return ev.evaluate_model(export, task, split=split, corruptions=False, progress=False)

    result = evaluated("test")
    assert (result["same_data_as_export"], result["n"]) == (True, 12)
    assert result["task"]["unscored"] == {"train": 40, "val": 10}
    assert ("not scored: train 40, val 10 (the data the export was made on: they trained and "
            "chose it)") in ev.format_evaluation(result)
    trained = evaluated("train=train[:40]")
    assert trained["same_data_as_export"] is True
    assert trained["task"]["unscored"] == {"val": 10, "test": 12}
    assert ("the train split scored here trained it, so these figures are not a held-out "
            "measure") in ev.format_evaluation(trained)
    other = evaluated("test=test[:50%]")
    assert other["same_data_as_export"] is False and other["task"]["unscored"] == {}

    older = build_export(tmp_path / "older", members="both")
    meta["task"].pop("splits")
    (older / "assets" / "hubensemble.json").write_text(json.dumps(meta))
    kept = evaluated("test", older)
    assert kept["same_data_as_export"] is False and kept["task"]["unscored"] == {}


def test_classes_the_export_does_not_know_are_refused_before_it_loads(export_dir, tmp_path):
    """A test set holding a class the export does not name, or of another class count
    without names, was refused only after TensorFlow loaded the SavedModel (seconds for a
    large export): the classes come from its metadata alone, so the refusal comes first. An
    export whose SavedModel cannot load shows the order: the class is named, not the load."""
    broken = tmp_path / "broken"
    shutil.copytree(export_dir, broken)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    task = make_task(export_dir, n=8)
    extra = Task(name="extra", source="arrays", class_names=["a", "b", "c", "zz"],
                 train=task.test, test=task.test)
    with pytest.raises(DataError, match=r"^the data 'extra' has class \['zz'\] that "
                                        r"the model does not know"):
        ev.evaluate_model(broken, extra, corruptions=False, progress=False)
    meta_path = broken / "assets" / "hubensemble.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "class_names": []}))
    with pytest.raises(DataError, match=r"^the model predicts 3 classes, the task 'extra' has "
                                        r"4; evaluate it on the data it was trained for"):
        ev.evaluate_model(broken, extra, corruptions=False, progress=False)


def test_a_tfds_split_string_alone_is_refused_with_the_name_to_give_it(tmp_path):
    """`evaluate --split test[:50%]` said "unknown split 'test[:50%]'; use one of train, val,
    test", which hid that a tfds split string is taken as NAME=TFDS_SPLIT: it says so, with
    the NAME its prefix names (validation: val), before anything loads."""
    for given, meant in (("test[:50%]", "test=test[:50%]"),
                         ("validation[:10]", "val=validation[:10]"),
                         ("train[:5]", "train=train[:5]")):
        with pytest.raises(ev.options.OptionError,
                           match=rf"^split: '{re.escape(given)}' is a tfds split string; give "
                                 rf"it after the name of the split it is read as, "
                                 rf"NAME=TFDS_SPLIT: {re.escape(meant)}$"):
            ev.check_evaluate_options(given, False, ())
        assert ev.parse_scored_split(meant) == (meant.split("=")[0], given)


def test_the_fingerprint_hashes_each_pixel_once_and_a_split_s_when_asked(monkeypatch):
    """The per-split fingerprints were hashed beside the whole one at every load, each
    pixel hashed twice (150 MB: 0.29 -> 0.65 s) for a record only export and evaluate read:
    `fingerprint` hashes each byte once, `split_fingerprints` the splits asked for, each
    once, and equal to a task's that holds that split alone (the scored_only copy's too)."""
    import hashlib

    import hubensemble.data.task as task_module

    hashed = []

    class Counting:
        def __init__(self, data=b""):
            self._h = hashlib.sha256(data)
            hashed.append(len(data))

        def update(self, data):
            hashed.append(len(data))
            self._h.update(data)

        def hexdigest(self):
            return self._h.hexdigest()

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    y = np.arange(30) % 3
    task = Task(name="t", source="s", class_names=["a", "b", "c"], train=Split(x[:20], y[:20]),
                val=Split(x[20:25], y[20:25]), test=Split(x[25:], y[25:]))
    monkeypatch.setattr(task_module, "hashlib", type("H", (), {"sha256": Counting}))
    _ = task.fingerprint
    assert x.nbytes < sum(hashed) < x.nbytes + 2_000  # headers, labels, shapes: each pixel once
    hashed.clear()
    test = task.split_fingerprints(["test"])["test"]
    assert x[25:].nbytes < sum(hashed) < x[25:].nbytes + 1_000
    monkeypatch.undo()
    alone = Task(name="u", source="s", class_names=["a", "b", "c"], train=Split(x[25:], y[25:]))
    alone.test = alone.train  # a test set, as load_test_set makes one
    assert test == {"examples": 5, "fingerprint": alone.split_fingerprints()["test"]["fingerprint"]}
    light = ev.scored_only(task, "test")
    assert light.split_fingerprints(["test"])["test"] == test


def test_an_npz_without_class_names_is_told_the_class_names_to_store(export_dir, tmp_path):
    """An npz test set without class_names names its classes "0", "1", "2", which an export
    of named classes does not know: the refusal said "store the model's names in the npz
    file's class_names array, or leave them out" ("them": the classes, all of them). It says
    the classes are named by index and gives the class_names to store, the export's names in
    its order; a long list is taken from the export's metadata."""
    rng = np.random.default_rng(0)
    path = tmp_path / "f.npz"
    np.savez(path, x_test=(rng.random((9, 8, 8, 3)) * 255).astype(np.uint8),
             y_test=np.arange(9) % 3)
    task = ev.load_evaluation_task(export_dir, f"npz:{path}", progress=False)
    with pytest.raises(DataError) as e:
        ev.evaluate_model(export_dir, task, progress=False)
    said = str(e.value)
    assert said.startswith("the data 'f' has classes ['0', '1', '2'] that the model does not "
                           "know; the model predicts 3 classes (a, b, c). Its classes are named "
                           "by label index"), said
    assert said.endswith("so that label i is its class i: class_names=np.array(['a', 'b', "
                         "'c'])"), said
    assert "leave" not in said and "(s)" not in said
    from hubensemble.classmatch import class_index

    many = [f"k{i}" for i in range(30)]
    with pytest.raises(DataError, match=r"class_names=np\.array\(json\.load\(open\('EXPORT/"
                                        r"assets/hubensemble\.json'\)\)\['class_names'\]\) "
                                        r"\(its 30 names, 'k0', 'k1', 'k2', …\)$"):
        class_index(many, task)


def test_evaluate_model_scores_no_corruptions_by_default_as_the_command_does(export_dir):
    """`evaluate_model` from Python defaulted to corruptions=True while `hubensemble evaluate`
    scores the clean split alone without --corruptions (16x the work for the same call): one
    default, the options table's evaluate one, serves both."""
    import inspect

    from hubensemble import options
    from hubensemble.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--model", str(export_dir)])
    assert args.corruptions is False
    default = inspect.signature(ev.evaluate_model).parameters["corruptions"].default
    assert default is args.corruptions is options.defaults_for("evaluate")["corruptions"]
    result = ev.evaluate_model(export_dir, make_task(export_dir, n=8), progress=False)
    assert result["corruptions"] == {} and result["mean_corrupted"] is None
    assert result["severities"] == []


def test_evaluate_of_the_exports_own_tfds_data_reads_its_split_overrides(tmp_path, toys):
    """An export fit with --split test=test[:50%] was evaluated on tfds data's whole `test`
    (VTAB's) by `evaluate --data tfds:NAME`: other data than the export's test split, and
    said to be other data. Its metadata records the tfds split strings (task.split.tfds), and
    evaluate of the same data set without a --split string reads the scored split as fit
    read it, said in the task's source; a --split string, another data set or an export
    written before the record read as before."""
    from hubensemble.data import load_task
    from hubensemble.export.metadata import split_record

    data, spec = toys
    splits = {"train": "train[:40]", "val": "train[40:50]", "test": "test[:50%]"}
    fitted = load_task(spec, data_dir=str(data), label_key="label_elevation", splits=splits)
    run_json = {"data": {"args": {"spec": spec, "splits": splits, "seed": 0}}}
    record = split_record(run_json)
    assert record["tfds"] == splits
    own, meta_path, meta = _export_with_task_of(tmp_path / "own", fitted, record)

    def evaluated(split="test", export=own):
        task = ev.load_evaluation_task(export, spec, data_dir=str(data), split=split,
                                       label_key="label_elevation", progress=False)
        return task, ev.evaluate_model(export, task, split=split, progress=False)

    task, result = evaluated()
    np.testing.assert_array_equal(np.stack(task.test.images), np.stack(fitted.test.images))
    assert (result["n"], result["same_data_as_export"]) == (6, True)
    assert ("its test split read as 'test[:50%]', as the export's fit read it (its metadata's "
            "task.split.tfds; split=… reads another)") in task.source
    assert result["task"]["unscored"] == {"train": 40, "val": 10}
    _, whole = evaluated("test=test")  # a --split string is the user's
    assert (whole["n"], whole["same_data_as_export"]) == (12, False)
    meta["task"]["split"].pop("tfds")  # an export written before the record
    meta_path.write_text(json.dumps(meta))
    _, older = evaluated()
    assert (older["n"], older["same_data_as_export"]) == (12, False)


def test_an_export_folder_that_cannot_be_made_is_told_in_the_python_callers_words(tmp_path):
    """export_ensemble(out_dir=…) and save_export from Python were told "choose another --out
    folder", a flag they never typed: the keyword out_dir, as distill's refusals name theirs;
    the command line's words stay --out. The parent turns into a file while the export
    traces (`say`), so save_export's own make_dirs refuses, after its first check."""
    import keras

    from hubensemble.export import export_ensemble
    from hubensemble.export.saved import ExportMember, save_export
    from hubensemble.lockwords import command_line

    in_the_way = tmp_path / "file"
    in_the_way.write_text("not a folder")
    started = tmp_path / "run"  # a run folder, as far as export's first check goes
    started.mkdir()
    (started / "run.json").write_text("{}")
    with pytest.raises(HubensembleError, match=r"is a file, not a folder \(in .*\); choose "
                                               r"another out_dir folder$"):
        export_ensemble(started, out_dir=in_the_way / "x", progress=False)
    with command_line(), pytest.raises(HubensembleError, match="choose another --out folder$"):
        export_ensemble(started, out_dir=in_the_way / "x", progress=False)
    clf = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(3, activation="softmax")])
    parent = tmp_path / "parent"

    def file_appears(text):  # another process puts a file where the parent would go
        parent.write_text("in the way")

    check = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    with pytest.raises(HubensembleError, match=rf"^{re.escape(str(parent))} is a file, not a "
                                               r"folder.*; choose another out_dir folder$"):
        save_export([ExportMember(clf, 4, 1.0, {"trial": "t0"})], list("abc"),
                    parent / "model", check_images=check, say=file_appears)


def test_an_npz_whose_class_names_are_digits_is_not_told_they_are_made_from_indices(
        export_dir, tmp_path):
    """An npz that stores class_names=['0', '1', '2'] was told its classes are "named by
    label index, as an archive without class_names is": it has one. Names made from the
    label indices are marked on the Task (`Task.names_made`), and names given are told to be
    its class_names array's, with the names to store there; the archive without names is
    told as before."""
    rng = np.random.default_rng(0)
    x = (rng.random((9, 8, 8, 3)) * 255).astype(np.uint8)
    given, made = tmp_path / "given.npz", tmp_path / "made.npz"
    np.savez(given, x_test=x, y_test=np.arange(9) % 3, class_names=np.array(["0", "1", "2"]))
    np.savez(made, x_test=x, y_test=np.arange(9) % 3)
    tasks = {p.stem: ev.load_evaluation_task(export_dir, f"npz:{p}", progress=False)
             for p in (given, made)}
    assert (tasks["given"].names_made, tasks["made"].names_made) == (False, True)
    assert tasks["given"].class_names == tasks["made"].class_names == ["0", "1", "2"]
    with pytest.raises(DataError) as e:
        ev.evaluate_model(export_dir, tasks["given"], progress=False)
    said = str(e.value)
    assert "label index" not in said and "without class_names" not in said, said
    assert said.endswith("(a, b, c). Its class_names array names them so; store the model's "
                         "names there instead, in the model's order, so that label i is its "
                         "class i: class_names=np.array(['a', 'b', 'c'])"), said
    with pytest.raises(DataError, match="Its classes are named by label index, as an archive "
                                        "without class_names is"):
        ev.evaluate_model(export_dir, tasks["made"], progress=False)


def _started_run(tmp_path):
    """A run folder as far as evaluate's target check goes: RUN/run.json."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    return run


def _refused_in_the_callers_words(path, said):
    """evaluate's target check refuses `path` with `said`, its "{}" the caller's words:
    "path" from Python, "--out file" on the command line."""
    from hubensemble.lockwords import command_line

    with pytest.raises(HubensembleError) as e:
        ev.check_evaluation_target(path)
    assert str(e.value) == said.format("path"), e.value
    with command_line(), pytest.raises(HubensembleError) as e:
        ev.check_evaluation_target(path)
    assert str(e.value) == said.format("--out file"), e.value


def test_an_evaluation_written_inside_an_export_folder_is_refused_before_the_work(
        tmp_path, in_process):
    """`evaluate --out RUN/export/x.json` wrote inside the export folder without a word; the
    next export replaces that folder whole and the file vanished with it. It is refused
    before the work (the command line's check, and write_evaluation from Python, nothing
    written), naming the export and a file beside it: RUN/robustness.json for a run's
    export, the report's input."""
    run = _started_run(tmp_path)
    export = build_export(run / "export", members="both")
    inside = export / "x.json"
    said = (f"{inside} is inside {export}, a hubensemble export: the next export replaces "
            "that folder whole, and the file would vanish with it; choose another {} outside "
            f"it, e.g. {run / 'robustness.json'} (the run's evaluation, which its report shows)")
    _refused_in_the_callers_words(inside, said)
    loose = tmp_path / "loose"  # an export of no run, a file deeper inside it
    shutil.copytree(export, loose)
    with pytest.raises(HubensembleError, match=r"is inside .*, a hubensemble export: .* e\.g\. "
                                               + re.escape(str(tmp_path / "x.json")) + "$"):
        ev.check_evaluation_target(loose / "sub" / "x.json")
    with pytest.raises(HubensembleError, match="is inside"):
        ev.write_evaluation({"n": 1}, export / "assets" / "x.json")
    assert not (export / "assets" / "x.json").exists()
    data = tmp_path / "d.npz"
    np.savez(data, x_test=np.zeros((3, 8, 8, 3), np.uint8), y_test=np.arange(3))
    code, out, err = in_process("evaluate", "--model", export, "--data", f"npz:{data}",
                                "--out", inside)
    assert code == 2 and said.format("--out file") in " ".join(err.split()), err
    assert not inside.exists()
    ev.check_evaluation_target(run / "robustness.json")  # beside it: fine


def test_evaluate_of_the_exports_own_tfds_data_reads_the_features_fit_read(tmp_path, toys):
    """An export fit with --label-key label_elevation needed the key again on `evaluate
    --data tfds:NAME` (its data has no "label": refused). The export's metadata records the
    features fit read (task.split.tfds_keys) and evaluate of the same data set reads them
    when given none, said in the task's source; a key given that differs is read and said;
    an export written before the record reads the defaults as before."""
    from hubensemble.data import load_task
    from hubensemble.export.metadata import split_record

    data, spec = toys
    splits = {"train": "train[:40]", "val": "train[40:50]", "test": "test"}
    fitted = load_task(spec, data_dir=str(data), label_key="label_elevation", splits=splits)
    run_json = {"data": {"args": {"spec": spec, "splits": splits, "seed": 0,
                                  "label_key": "label_elevation", "image_key": "image"}}}
    record = split_record(run_json)
    assert record["tfds_keys"] == {"label_key": "label_elevation", "image_key": "image"}
    own, meta_path, meta = _export_with_task_of(tmp_path / "own", fitted, record)
    task = ev.load_evaluation_task(own, spec, data_dir=str(data), split="test", progress=False)
    np.testing.assert_array_equal(task.test.labels, fitted.test.labels)
    assert ("its label feature read as 'label_elevation', as the export's fit read it (its "
            "metadata's task.split.tfds_keys; label_key reads another)") in task.source
    # label_category's classes, for the export to know them (its own are label_elevation's).
    meta_path.write_text(json.dumps({**meta, "class_names": ["plane", "car", "truck"]}))
    other = ev.load_evaluation_task(own, spec, data_dir=str(data), split="test",
                                    label_key="label_category", progress=False)
    assert ("its label feature read as 'label_category' (label_key), not 'label_elevation' "
            "as the export's fit read it") in other.source
    assert "image feature" not in task.source + other.source  # the default, as fit read it
    np.testing.assert_array_equal(other.test.labels, load_task(
        spec, data_dir=str(data), label_key="label_category", splits=splits).test.labels)
    meta["task"]["split"].pop("tfds_keys")  # an export written before the record
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="has no feature 'label'"):
        ev.load_evaluation_task(own, spec, data_dir=str(data), split="test", progress=False)


def test_an_evaluation_inside_where_a_runs_export_will_go_is_refused_before_it_exists(
        tmp_path, in_process):
    """`evaluate --out RUN/export-student/e.json` before any student export made that folder,
    and `export --student` then refused it as "not an export made by hubensemble; … choose
    another --out folder", a flag the user never gave it. evaluate refuses a path inside each
    folder a run's exports go to (export, export --student, each with its TFLite folder), in
    the words of a path inside an existing export; the run's own files stay allowed; the
    refusal reads ("choose another path file outside it" from Python read as no sentence).
    Fails before: DID NOT RAISE, and the words said "another path file"."""
    from hubensemble import formats
    run = _started_run(tmp_path)
    beside = run / "robustness.json"
    for name, what in ((formats.EXPORT_DIR, "where `export` writes the run's export"),
                       (formats.TFLITE_DIR, "where `export --format tflite` writes the run's "
                                            "TFLite model"),
                       (formats.STUDENT_EXPORT_DIR, "where `export --student` writes the "
                                                    "run's student"),
                       (formats.STUDENT_EXPORT_DIR + "-tflite", "where `export --student "
                        "--format tflite` writes the student's TFLite model")):
        inside = run / name / "e.json"
        said = (f"{inside} is inside {run / name}, {what}: the next export replaces that "
                "folder whole, and the file would vanish with it; choose another {} outside "
                f"it, e.g. {beside} (the run's evaluation, which its report shows)")
        _refused_in_the_callers_words(inside, said)
        with pytest.raises(HubensembleError, match="the next export replaces"):
            ev.write_evaluation({"n": 1}, inside)
        assert not (run / name).exists()  # nothing made: the export finds no stranger there
    data = tmp_path / "d.npz"
    np.savez(data, x_test=np.zeros((3, 8, 8, 3), np.uint8), y_test=np.arange(3))
    model = build_export(tmp_path / "model", members="both")
    inside = run / formats.STUDENT_EXPORT_DIR / "e.json"
    code, out, err = in_process("evaluate", "--model", model, "--data", f"npz:{data}",
                                "--out", inside)
    assert code == 2 and "choose another --out file outside it" in " ".join(err.split()), err
    assert not inside.parent.exists()
    ev.check_evaluation_target(beside)  # the run's own evaluation: fine
    ev.check_evaluation_target(run / "distill" / "e.json")  # no export goes there
    plain = tmp_path / "plain"  # a folder named export in no run: nobody's export goes there
    ev.check_evaluation_target(plain / "export" / "e.json")


def test_the_tfds_folder_of_an_exports_run_is_checked_before_tensorflow(tmp_path):
    """`evaluate --model RUN/export` without --data reads the tfds: data its run records:
    with --data-dir DIR (empty here) or the recorded folder (gone here) that holds nothing
    of it, it was refused only after TensorFlow's import (13-14 s, ~670 MB measured). Now
    before it, in the words of the load after it (the references: `_load_tfds` for
    --data-dir, `Run.task` for the recorded folder). Fails before: TensorFlow loaded."""
    from hubensemble.data.loading import LoadOptions
    from hubensemble.data.tfds import _load_tfds
    from hubensemble.lockwords import command_line
    from hubensemble.rundir import Run

    run, empty = tmp_path / "run", tmp_path / "empty"
    fake_export(run / "export", metadata=False)
    empty.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": "tfds:mnist", "data_dir": str(tmp_path / "gone")},
        "task": {"fingerprint": "f"}}}))
    with command_line():
        with pytest.raises(DataError) as typed:
            _load_tfds("mnist", LoadOptions(data_dir=str(empty)))
        with pytest.raises(DataError) as recorded:
            Run(run).task()
    assert str(recorded.value).endswith(f"(the data recorded in {run / 'run.json'})")
    refused_before_tensorflow(
        (["evaluate", "--model", run / "export", "--data-dir", empty], typed.value),
        (["evaluate", "--model", run / "export"], recorded.value))


def test_a_tfds_split_string_for_other_data_is_refused_from_files_alone(tmp_path):
    """`evaluate --data sklearn:digits --split test=test[:50%]` was refused only after
    TensorFlow's import (data/specs.py's load_test_set), and so was the split string given
    for the run's own data (no --data): `check_evaluation_data`, which reads files only and
    which the command line calls before TensorFlow, refuses both now, saying what the split
    looks like. A tfds: spec takes it. Fails before: it took no split."""
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": "sklearn:digits"}, "task": {"fingerprint": "f"}}}))
    model = run / "export"
    with command_line():
        with pytest.raises(DataError) as other:
            check_evaluation_data(model, "sklearn:digits", split="test=test[:50%]")
        with pytest.raises(ev.options.OptionError) as own:
            check_evaluation_data(model, None, split="test=test[:50%]",
                                  keys={"label_key": "y"})
    assert str(other.value) == (
        "--split test=test[:50%]: a tfds split string (NAME=TFDS_SPLIT) applies to tfds: specs "
        "only, not sklearn:; for sklearn: data --split is a split's name alone (train, val or "
        "test): score its test split as it is (--split test)")
    assert str(own.value).startswith(
        "--split test=test[:50%] and --label-key apply to --data tfds:NAME; the data of the "
        "export's run is read with the split strings and features it recorded"), own.value
    # The command line, before TensorFlow: in those words, exit code 2.
    from test_cli import each_in_one_process

    (run / "export" / "saved_model.pb").write_bytes(fake_saved_model_pb())  # never loaded
    found = each_in_one_process(
        ["evaluate", "--model", model, "--data", "sklearn:digits", "--split", "test=test[:50%]"],
        ["evaluate", "--model", model, "--split", "test=test[:50%]"])
    alone = ("--split test=test[:50%] applies to --data tfds:NAME; the data of the export's "
             "run is read with the split strings and features it recorded")
    for (code, _, err, tensorflow), words in zip(found, (str(other.value), alone)):
        assert (code, tensorflow) == (2, False), err
        assert f"error: {words}" in err, err
    # Taken: a tfds: spec's split string, and a split's name alone for any data.
    assert check_evaluation_data(model, "tfds:mnist", split="test=test[:50%]") == (None, None)
    assert check_evaluation_data(model, "sklearn:digits", split="test") == (None, None)
    assert check_evaluation_data(model, None, split="val")[0] is not None


def test_a_split_the_data_lacks_names_the_flag_that_scores_one_it_has():
    """`evaluate --data npz:D` of an npz without x_test said "task 'd' has no test split
    (…); splits present: train, val" and stopped there (a new-user check): the way on, a
    split it has (val before train, which the export trained on), by the caller's flag.
    Fails before: no "score one it has"."""
    from hubensemble.data.task import Split, Task
    from hubensemble.evaluationtask import scored_only, scored_part
    from hubensemble.lockwords import command_line

    x, y = np.zeros((6, 4, 4, 3), np.uint8), np.array([0, 1, 0, 1, 0, 1])
    task = Task(name="d", source="npz:d.npz", class_names=["a", "b"], train=Split(x, y),
                val=Split(x[:2], y[:2]))
    with pytest.raises(DataError) as python:
        scored_part(task, "test")
    assert str(python.value) == ("task 'd' has no test split (npz:d.npz); splits present: "
                                 "train, val; score one it has: split='val'"), python.value
    with command_line(), pytest.raises(DataError, match=r"score one it has: --split val$"):
        scored_only(task, "test")
    assert scored_part(task, "val") is task.val
    task.val = None
    with command_line(), pytest.raises(DataError, match=r"score one it has: --split train$"):
        scored_part(task, "test")


def test_an_npz_of_classes_the_export_does_not_know_is_refused_before_tensorflow(tmp_path):
    """`evaluate --data npz:D` whose class_names hold a class the export does not name was
    refused after TensorFlow's import and the archive's images (10.6 s, 664 MB measured),
    though its class_names member says it. Now before, in the words of the check after the
    load (the reference: `classmatch.class_index` on the loaded test set). An npz of the
    export's names passes on. Fails before: TensorFlow loaded."""
    from hubensemble.classmatch import class_index
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    model = fake_export(tmp_path / "export")
    rng = np.random.default_rng(0)
    npz = tmp_path / "other.npz"
    np.savez(npz, x_test=rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8),
             y_test=np.arange(6) % 2, class_names=np.array(["a", "x"]))
    with command_line(), pytest.raises(DataError) as loaded:
        class_index(["a", "b", "c"], load_test_set(f"npz:{npz}"))
    assert "'x'" in str(loaded.value)
    refused_before_tensorflow((["evaluate", "--model", model, "--data", f"npz:{npz}"],
                               loaded.value))
    np.savez(npz, x_test=rng.integers(0, 255, (6, 4, 4, 3), dtype=np.uint8),
             y_test=np.arange(6) % 2, class_names=np.array(["c", "a"]))
    assert check_evaluation_data(model, f"npz:{npz}") == (None, None)


def test_a_savedmodel_without_serving_default_is_refused_before_data_and_tensorflow(tmp_path):
    """`evaluate --model M --data SPEC` of a SavedModel of no signature and no
    assets/hubensemble.json printed the task's line, loaded TensorFlow (10.8 s), then said
    "M has no serving_default signature (it has none); M is not an export of hubensemble …"
    (a new user's check). saved_model.pb says it (`savedmodel_calls.read_calls`): now
    refused first, in the words `evaluate_model` says once the model is loaded (the
    reference). A SavedModel
    with serving_default passes the check. Fails before: TensorFlow loaded."""
    from hubensemble.lockwords import command_line
    from test_cli import each_in_one_process

    bare = tf.Module()
    bare.v = tf.Variable(1.0)
    model = tmp_path / "bare"
    tf.saved_model.save(bare, str(model))
    rng = np.random.default_rng(0)
    split = Split(images=rng.integers(0, 255, (6, 8, 8, 3), dtype=np.uint8),
                  labels=np.arange(6) % 2)
    task = Task(name="t", source="test", class_names=["a", "b"], train=split, test=split)
    with command_line(), pytest.raises(RunError) as loaded:
        ev.evaluate_model(model, task, corruptions=False, progress=False)
    assert "has no serving_default signature (it has none)" in str(loaded.value)
    npz = tmp_path / "t.npz"
    np.savez(npz, x_test=split.images, y_test=split.labels)
    (code, out, err, tensorflow), = each_in_one_process(
        ["evaluate", "--model", model, "--data", f"npz:{npz}"])
    assert (code, tensorflow) == (2, False), err
    assert f"error: {loaded.value}" in err and "Task" not in err, err  # (+ doc's way to read)
    from hubensemble.evaluationtask import check_serving_signature

    check_serving_signature(export_for_model_check(tmp_path))  # has it: passes


def export_for_model_check(tmp_path):
    """A SavedModel whose serving_default returns 'probabilities' (no metadata)."""
    class Probe(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def serve(self, images):
            return {"probabilities": tf.reduce_mean(images, axis=[1, 2])[:, :2]}

    probe = Probe()
    path = tmp_path / "probe"
    tf.saved_model.save(probe, str(path), signatures={"serving_default": probe.serve})
    return path


def test_sklearn_digits_for_an_export_of_other_classes_is_refused_before_tensorflow(tmp_path):
    """`evaluate --data sklearn:digits` of an export whose classes are not the digits' was
    refused only after TensorFlow's import and the data's load (6 s), though the digits'
    class names are known without them. Now before, in the words of the check after the
    load (the reference: `classmatch.class_index` on the loaded test set); an export of the
    digits' names passes on. Fails before: TensorFlow loaded."""
    from hubensemble.classmatch import class_index
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    model = fake_export(tmp_path / "export", ["0", "1", "x"])
    meta = model / "assets" / "hubensemble.json"
    with command_line(), pytest.raises(DataError) as loaded:
        class_index(["0", "1", "x"], load_test_set("sklearn:digits"))
    refused_before_tensorflow((["evaluate", "--model", model, "--data", "sklearn:digits"],
                               loaded.value))
    digits = load_test_set("sklearn:digits").class_names
    meta.write_text(json.dumps({"format": "hubensemble-export", "class_names": digits[::-1],
                                "num_classes": len(digits)}))
    assert check_evaluation_data(model, "sklearn:digits") == (None, None)


def test_a_class_folder_the_export_does_not_know_is_refused_before_any_image_is_read(
        tmp_path):
    """`evaluate --data folder:DIR` of class folders one of which the export does not know
    was refused after TensorFlow's import and after every image was read, though the folder
    names say it. Now before both, in the words of the check after the load (the reference:
    `classmatch.class_index` on the loaded test set); a folder with train/ val/ test/ is left
    to the load when its val/ or test/ has a class train/ lacks (the load's refusal), else
    checked by train/'s class folders. Fails before: TensorFlow loaded."""
    from hubensemble.classmatch import class_index
    from hubensemble.data.specs import load_test_set
    from hubensemble.evaluationtask import check_evaluation_data
    from hubensemble.lockwords import command_line

    model = fake_export(tmp_path / "export")
    rng = np.random.default_rng(4)
    data = tmp_path / "shots"
    for name in ("a", "x y"):
        write_pngs(data / name, (rng.random((2, 6, 6, 3)) * 255).astype(np.uint8))
    with command_line(), pytest.raises(DataError) as loaded:
        class_index(["a", "b", "c"], load_test_set(f"folder:{data}"))
    assert "'x y'" in str(loaded.value) and "rename the class folder" in str(loaded.value)
    refused_before_tensorflow((["evaluate", "--model", model, "--data", f"folder:{data}/"],
                               loaded.value))
    os.rename(data / "x y", data / "c")
    assert check_evaluation_data(model, f"folder:{data}") == (None, None)
    layout = tmp_path / "split"
    write_pngs(layout / "train" / "z", (rng.random((2, 6, 6, 3)) * 255).astype(np.uint8))
    # train/ val/ test/: train/'s classes are the task's (refused alike since 434's check).
    with command_line(), pytest.raises(DataError) as split_loaded:
        class_index(["a", "b", "c"], load_test_set(f"folder:{layout}"))
    with command_line(), pytest.raises(DataError) as split_listed:
        check_evaluation_data(model, f"folder:{layout}")
    assert str(split_listed.value) == str(split_loaded.value) and "'z'" in str(
        split_loaded.value)


def test_a_test_folder_of_copies_of_training_images_is_no_held_out_measure(
        tmp_path, caplog, in_process):
    """A new-user check: a folder whose test/ holds byte copies of train/ and val/ files
    (30 of 117) gave fit a test accuracy of 0.6752 (0.5862 on the other 87) with no caveat,
    and `evaluate --data folder:DIR/test` warned nothing, though its JSON counted the copies:
    on the export's own data the count was taken as said by the data's summary, which a
    test folder scored alone has not. Both say `heldoutwords.copies_note` beside the
    figures; the table's "scored:" line no longer calls the export's record of its other
    splits "the data's" examples, and an npz's is not told of class folders. `evaluate`
    said the note twice, a warning above its table and the table's line: once now, the
    table's (with -q too)."""
    from hubensemble.data import load_task, load_test_set
    from hubensemble.heldoutwords import test_copies_note
    from hubensemble.rundir import DataArgs, Run

    rng = np.random.default_rng(11)
    root = tmp_path / "split"
    for split, k in (("train", 7), ("val", 2), ("test", 3)):
        for name in ("a", "b", "c"):
            write_pngs(root / split / name, (rng.random((k, 6, 6, 3)) * 255).astype(np.uint8))
    shutil.copy(root / "train" / "a" / "00.png", root / "test" / "a" / "copy of 00.png")
    shutil.copy(root / "val" / "b" / "01.png", root / "test" / "b" / "copy of 01.png")
    fitted = load_task(f"folder:{root}")
    assert len(fitted.test) == 11
    # Fit's table, the report and ensemble's summary: from the run's duplicates record.
    assert test_copies_note(fitted.duplicates, len(fitted.test)) == (
        "not a held-out measure: 2 of the 11 test images are copies of training (1) or "
        "validation (1) images (the same pixels; load_task(…, dedupe=True) drops them)")
    deduped = load_task(f"folder:{root}", dedupe=True)
    assert test_copies_note(deduped.duplicates, len(deduped.test)) is None
    run = tmp_path / "run"
    Run(run).attach_task(fitted, DataArgs(spec=f"folder:{root}"))
    own, _, _ = _export_with_task_of(run / "export", fitted, None)
    with caplog.at_level(logging.WARNING, logger="hubensemble"):
        task = ev.load_evaluation_task(own, f"folder:{root / 'test'}")
        result = ev.evaluate_model(own, task, corruptions=False, progress=False)
    assert result["same_data_as_export"] is True and result["n"] == 11
    assert result["not_held_out"] == {"run": str(run), "images": 2, "train": 1, "val": 1}
    note = ("not a held-out measure: 2 of the 11 test images are copies of training (1) or "
            f"validation (1) images (the pixels of images of this export's run, {run}; "
            "score a folder without them for a held-out figure)")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == []
    table = ev.format_evaluation(result).splitlines()
    assert table[1] == note, table[:3]
    for quiet in ([], ["-q"]):  # said once, by the table, whether warnings are shown or not
        code, out, err = in_process("evaluate", *quiet, "--model", own, "--data",
                                    f"folder:{root / 'test'}")
        assert code == 0 and (out + err).count("not a held-out measure") == 1, out + err
        assert note in out.splitlines(), out
    assert ("scored: the test split, 11 examples; not scored: train 21, val 6 (the data the "
            "export was made on: they trained and chose it)") in table, table
    # The whole folder, split as fit split it: the same note beside the same test split.
    whole = ev.evaluate_model(own, ev.load_evaluation_task(own, f"folder:{root}"),
                              corruptions=False, progress=False)
    assert ev.format_evaluation(whole).splitlines()[1] == note
    # An npz with x_train: the reason names one split scored, not class folders.
    x = (rng.random((12, 6, 6, 3)) * 255).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x[:8], y_train=np.arange(8) % 3, x_test=x[8:],
             y_test=np.arange(4) % 3, class_names=np.array(["a", "b", "c"]))
    other = ev.evaluate_model(own, load_test_set(f"npz:{tmp_path / 'd.npz'}"),
                              corruptions=False, progress=False)
    line = [s for s in ev.format_evaluation(other).splitlines() if s.startswith("scored:")]
    assert line and line[0].endswith("(evaluate scores one split, --split)"), line


def test_the_copies_note_counts_a_test_image_copied_in_train_and_val_once():
    """A test image with a copy in train and one in val was counted in each, so the note
    said "up to 4" of 3 such images when train and val shared copies. A record that counts
    the test images with a copy in either ("test_in_either") gives the exact count;
    one written before it still says "up to". Fails before: "up to 4"."""
    from hubensemble.heldoutwords import test_copies_note

    across = {"test_in_train": 2, "test_in_val": 2, "val_in_train": 1}
    said = ("the same pixels; load_task(…, dedupe=True) drops them)")
    assert test_copies_note({"across": across, "test_in_either": 3}, 20) == (
        "not a held-out measure: 3 of the 20 test images are copies of training (2) or "
        f"validation (2) images ({said}")
    assert test_copies_note({"across": across}, 20).startswith(
        "not a held-out measure: up to 4 of the 20 test images")
    # A count that does not fit the other two (an edited record) is not taken.
    assert "up to 4 of" in test_copies_note({"across": across, "test_in_either": 9}, 20)


def test_the_copies_note_of_a_loaded_task_is_exact_by_an_independent_count(tmp_path):
    """End to end: an npz whose train and val share copies, and whose test images have
    copies in train, in val or in both. The note fit's table and the report give
    (`Task.duplicates` -> `test_copies_note`) counts each such test image once, the count
    made here from the pixels themselves. Fails before: "up to 7" of 5."""
    from hubensemble.data import load_task
    from hubensemble.heldoutwords import test_copies_note

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (30, 4, 4, 3), dtype=np.uint8)
    train, val = x[:12], np.concatenate([x[12:18], x[:2]])  # val holds 2 train images
    test = np.concatenate([x[18:28], x[0:2], x[4:5], x[12:14]])  # in both, in train, in val
    np.savez(tmp_path / "d.npz", x_train=train, y_train=np.arange(12) % 3, x_val=val,
             y_val=np.arange(8) % 3, x_test=test, y_test=np.arange(len(test)) % 3)
    task = load_task(f"npz:{tmp_path / 'd.npz'}")
    seen = {im.tobytes() for im in np.concatenate([train, val])}
    by_split = {s: sum(im.tobytes() in {i.tobytes() for i in part} for im in test)
                for s, part in (("train", train), ("val", val))}
    either = sum(im.tobytes() in seen for im in test)
    assert (either, by_split) == (5, {"train": 3, "val": 4})  # the data is as meant
    assert test_copies_note(task.duplicates, len(task.test)) == (
        f"not a held-out measure: {either} of the {len(test)} test images are copies of "
        f"training ({by_split['train']}) or validation ({by_split['val']}) images (the same "
        "pixels; load_task(…, dedupe=True) drops them)")


def test_the_moved_data_of_an_exports_run_is_refused_before_tensorflow(tmp_path):
    """`evaluate --model RUN/export` without --data reads the data its run records: an npz
    (or folder) that moved since was refused by `Run.task` after TensorFlow's import
    (22-27 s, 664 MB measured), though its files alone say it (tfds: folders were checked
    before it already). Now before, in `Run.task`'s words (the reference: Run.task itself).
    Fails before: TensorFlow loaded."""
    from hubensemble.lockwords import command_line
    from hubensemble.rundir import Run

    run = tmp_path / "run"
    fake_export(run / "export", metadata=False)
    (run / "run.json").write_text(json.dumps({"data": {
        "args": {"spec": f"npz:{tmp_path / 'gone.npz'}", "reloadable": True},
        "task": {"fingerprint": "f"}}}))
    with command_line(), pytest.raises(DataError) as recorded:
        Run(run).task()
    assert "(the data recorded in " in str(recorded.value)
    refused_before_tensorflow((["evaluate", "--model", run / "export"], recorded.value))
