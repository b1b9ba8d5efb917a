"""The procedural upstream data, the zoo builder and its resolver: real builds of the quick
preset."""

import dataclasses
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from conftest import bounded_by_cpu, ctrl_c_raising
from hubensemble import zoo
from hubensemble.zoo import glyphs
from hubensemble.errors import DataError, HubensembleError, ModuleLoadError

REPO = pathlib.Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- glyphs


def test_generator_is_deterministic_for_a_seed_and_differs_across_seeds():
    a, la = glyphs.generate(300, seed=3)
    b, lb = glyphs.generate(300, seed=3)
    c, lc = glyphs.generate(300, seed=4)
    assert a.dtype == np.uint8 and a.shape == (300, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)
    assert np.mean(a != c) > 0.5


def test_generator_is_balanced_and_restricts_to_classes():
    n_cls = len(glyphs.CLASS_NAMES)
    _, labels = glyphs.generate(2 * n_cls + 5, seed=0)
    counts = np.bincount(labels, minlength=n_cls)
    assert counts.min() >= 2 and counts.max() <= 3
    digits = glyphs.HIERARCHY["digits"]
    _, labels = glyphs.generate(50, seed=0, classes=digits)
    assert {glyphs.CLASS_NAMES[i] for i in labels} == set(digits)
    with pytest.raises(KeyError, match="unknown classes"):
        glyphs.generate(5, seed=0, classes=["digits/ten"])
    with pytest.raises(KeyError) as e:  # each with the one it mistypes (text.did_you_mean)
        glyphs.generate(5, seed=0, classes=["digits/ten", "shapes/circel"])
    assert "'digits/ten', 'shapes/circel' (did you mean shapes/circle?); see " in str(e.value)


def test_hierarchy_puts_every_class_in_exactly_one_subtree():
    tree = glyphs.hierarchy()
    flat = [c for classes in tree.values() for c in classes]
    assert len(flat) == len(set(flat)) == len(glyphs.class_names())
    assert sorted(flat) == sorted(glyphs.class_names())
    assert all(c.startswith(sub + "/") for sub, classes in tree.items() for c in classes)
    assert len(tree) >= 8 and {"digits", "shapes", "textures", "greek_lower"} <= set(tree)
    assert yaml.safe_load(glyphs.hierarchy_yaml()) == tree
    zoo.check_hierarchy(tree, glyphs.class_names())
    broken = dict(tree, shapes=tree["shapes"] + [tree["digits"][0]])
    with pytest.raises(DataError, match="exactly one sub-tree"):
        zoo.check_hierarchy(broken, glyphs.class_names())
    with pytest.raises(DataError, match="not in any sub-tree"):
        zoo.check_hierarchy({k: v for k, v in tree.items() if k != "digits"},
                            glyphs.class_names())


def test_every_class_has_ink_and_the_images_show_it():
    n_cls = len(glyphs.CLASS_NAMES)
    masks, labels = glyphs.generate_masks(8 * n_cls, seed=5)
    images, labels2 = glyphs.generate(8 * n_cls, seed=5)
    np.testing.assert_array_equal(labels, labels2)
    for c in range(n_cls):
        m = masks[labels == c]
        ink = (m > 0.5).mean(axis=(1, 2))
        # Every image of every class draws something and is not all ink.
        assert ink.min() > 0.005 and ink.max() < 0.995, glyphs.CLASS_NAMES[c]
    # The colour images are the masks seen through a foreground and a background colour:
    # luminance follows the mask (up to its sign) in nearly every image.
    lum = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    flat_m = masks.reshape(len(masks), -1) - masks.reshape(len(masks), -1).mean(1, keepdims=True)
    flat_l = lum.reshape(len(lum), -1) - lum.reshape(len(lum), -1).mean(1, keepdims=True)
    corr = (flat_m * flat_l).sum(1) / np.sqrt((flat_m ** 2).sum(1) * (flat_l ** 2).sum(1) + 1e-9)
    assert np.median(np.abs(corr)) > 0.8


def test_no_prototype_is_a_missing_glyph_box():
    from PIL import ImageFont

    protos, owners = glyphs.prototypes()
    assert set(owners) == {i for i, c in enumerate(glyphs.CLASS_NAMES)
                           if not c.startswith("textures/")}
    flat = protos.reshape(len(protos), -1).astype(np.float64)
    for fname in glyphs._UNICODE_FONTS:
        font = ImageFont.truetype(os.path.join(glyphs.font_dir(), fname), 96)
        for missing in ("\ue000", "\U0010fffd"):
            box = glyphs._mask(font, missing)
            if box.size == 0 or box.max() == 0:
                continue  # this font draws nothing for a missing glyph
            tofu = glyphs._soften(glyphs._fit(box)).reshape(-1).astype(np.float64)
            dist = np.abs(flat - tofu).mean(axis=1)
            assert dist.min() > 5.0, (fname, glyphs.CLASS_NAMES[owners[dist.argmin()]])
    # Two classes never share a picture: the closest prototypes of different classes differ.
    small = flat[:, ::7]
    for sub in ("latin_upper", "digits", "greek_upper", "math_symbols"):
        idx = [glyphs.CLASS_NAMES.index(c) for c in glyphs.HIERARCHY[sub]]
        first = np.array([np.nonzero(owners == i)[0][0] for i in idx])
        d = np.abs(small[first][:, None] - small[first][None]).mean(-1)
        np.fill_diagonal(d, np.inf)
        assert d.min() > 3.0, sub


# ----------------------------------------------------------------------------- plan / catalogue


def test_demo_plan_meets_the_pool_requirements():
    p = zoo.plan(zoo.preset("demo"), glyphs.hierarchy())
    gens = [m for m in p if m.family == "generalist"]
    experts = [m for m in p if m.family == "expert"]
    assert len(p) >= 12 and len(experts) >= 8
    assert len({m.seed for m in gens if m.arch == gens[0].arch}) >= 3
    assert len({m.arch for m in p}) >= 2
    assert len({m.arch for m in experts}) >= 2
    assert {m.subtree for m in experts} <= set(glyphs.HIERARCHY)
    assert all(m.parent in {g.name for g in gens} for m in experts)
    assert len(zoo.plan(zoo.preset("quick"), glyphs.hierarchy())) == 4


def test_plan_errors_say_what_to_add():
    from hubensemble.zoo.config import zoo_handle_problem

    config = zoo.preset("quick")
    with pytest.raises(HubensembleError, match="unknown architecture 'r99'"):
        zoo.plan(dataclasses.replace(config, generalists={"r99": (0,)}))
    with pytest.raises(HubensembleError, match="need a generalist of r8x2"):
        zoo.plan(dataclasses.replace(config, experts={"r8x2": ("digits",)}))
    with pytest.raises(HubensembleError, match="no expert_train entry for r6x1"):
        zoo.plan(dataclasses.replace(config, expert_train={}))
    with pytest.raises(HubensembleError, match="unknown sub-tree 'klingon'; the hierarchy has"):
        zoo.plan(dataclasses.replace(config, experts={"r6x1": ("klingon",)}), glyphs.hierarchy())
    # The names listed follow a guess of the one meant (text.did_you_mean, git's rule).
    with pytest.raises(HubensembleError, match=r"unknown architecture 'r6X1' \(did you mean "
                                               r"r6x1\?\); known: "):
        zoo.plan(dataclasses.replace(config, generalists={"r6X1": (0,)}))
    with pytest.raises(HubensembleError, match=r"unknown sub-trees 'digts' \(did you mean "
                                               r"digits\?\), 'klingon'; the hierarchy has "):
        zoo.plan(dataclasses.replace(config, experts={"r6x1": ("digts", "klingon")}),
                 glyphs.hierarchy())
    with pytest.raises(HubensembleError, match=r"unknown zoo preset 'dmeo' \(did you mean "
                                               r"demo\?\); presets: demo, quick"):
        zoo.preset("dmeo")
    assert zoo_handle_problem("zoo:quik/r6x1-generalist-0") == (
        "'zoo:quik/r6x1-generalist-0' names no zoo preset (did you mean "
        "zoo:quick/r6x1-generalist-0?); write one of demo, quick")
    seeded = zoo.preset("demo", seed=7)
    assert seeded.generalists["r8x2"] == (7, 8, 9)


def test_count_params_matches_keras():
    for arch in zoo.ARCHITECTURES.values():
        model = zoo.build_backbone(arch)
        assert model.count_params() == zoo.count_params(arch), arch.name
        assert model.output_shape == (None, arch.output_dim)


def test_std_conv_standardises_each_filter():
    import keras
    import tensorflow as tf

    StdConv2D = zoo.std_conv2d_class()
    layer = StdConv2D(4, 3, use_bias=False, kernel_initializer="glorot_uniform")
    x = np.random.default_rng(0).random((2, 6, 6, 3)).astype("float32")
    y = layer(x)
    k = layer.kernel.numpy()
    k = (k - k.mean(axis=(0, 1, 2))) / np.sqrt(k.var(axis=(0, 1, 2)) + 1e-10)
    ref = tf.nn.conv2d(x, k, 1, "VALID")
    np.testing.assert_allclose(y, ref, atol=1e-4)
    # Scaling a filter changes nothing: what weight standardisation is for.
    layer.kernel.assign(layer.kernel * 7.0)
    np.testing.assert_allclose(layer(x), y, atol=1e-4)
    assert isinstance(layer, keras.layers.Conv2D)


def test_committed_demo_catalogue_is_generated():
    from hubensemble.catalogue import load_catalogue

    path = REPO / "catalogue" / "demo.yaml"
    got = [dataclasses.replace(s, source="") for s in load_catalogue(path)]
    want = [dataclasses.replace(s, source="") for s in zoo.demo_catalogue_specs()]
    assert got == want, "regenerate with python -c 'from hubensemble import zoo; " \
                        "zoo.write_demo_catalogue(\"catalogue/demo.yaml\")'"
    assert all(s.handle == f"zoo:demo/{s.name}" and s.sha256 is None for s in got)


def test_unknown_preset_or_module_lists_what_exists(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(tmp_path))
    with pytest.raises(ModuleLoadError, match="names no zoo preset; write one of demo, quick"):
        zoo.module_path("nope", "x")
    with pytest.raises(ModuleLoadError, match="r6x1-generalist-0"):
        zoo.module_path("quick", "no-such-module")
    # A typo gets rank the closest name, as `catalogue validate` gives it, and builds nothing.
    with pytest.raises(ModuleLoadError, match=r"the demo zoo has no module 'r8x2-generalst-0'; "
                                              r"did you mean zoo:demo/r8x2-generalist-0\?"):
        zoo.module_path("demo", "r8x2-generalst-0")
    # git's rule (text.closest_names): a name in capitals (difflib found none) and one that
    # could be either of two, both said (difflib said r8x2's alone).
    from hubensemble.zoo.config import zoo_handle_problem
    assert zoo_handle_problem("zoo:demo/R8X2-EXPERT-DIGITS").endswith(
        "did you mean zoo:demo/r8x2-expert-digits?")
    assert zoo_handle_problem("zoo:demo/expert-digits").endswith(
        "did you mean zoo:demo/r6x1-expert-digits or zoo:demo/r8x2-expert-digits?")
    assert not any(tmp_path.iterdir())
    # As rank records it: the module and handle named once each ("handle 'h': handle 'h'").
    from hubensemble.hub.resolvers import resolve
    with pytest.raises(ModuleLoadError) as e:
        resolve("zoo:demo/r8x2-generalst-0", name="m")
    assert str(e.value) == ("module 'm', handle 'zoo:demo/r8x2-generalst-0': the demo zoo has "
                            "no module 'r8x2-generalst-0'; did you mean "
                            "zoo:demo/r8x2-generalist-0?")
    with pytest.raises(HubensembleError, match="unknown zoo preset"):
        zoo.build_zoo("nope", tmp_path / "z")
    # Only a preset's own recipe may fill its cache folder, which zoo: handles load.
    with pytest.raises(HubensembleError, match=r"\(out_dir\)"):  # build_zoo's keyword (9613bae)
        zoo.build_zoo("quick", seed=3)
    with pytest.raises(HubensembleError, match=r"\(out_dir\)"):
        zoo.build_zoo(zoo.preset("quick"))
    assert list(tmp_path.iterdir()) == []


def test_zoo_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("HUBENSEMBLE_ZOO_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert zoo.zoo_dir("demo") == tmp_path / "hubensemble" / "zoo" / \
        f"demo-r{zoo.RECIPE_VERSION}"
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(tmp_path / "z"))
    assert zoo.zoo_dir("quick").parent == tmp_path / "z"


def test_a_zoo_is_current_only_for_the_recipe_it_records():
    recorded = json.loads(json.dumps(zoo.preset("quick").to_json()))  # as zoo.json holds it
    assert zoo.recipe_difference(recorded, zoo.preset("quick")) is None
    assert zoo.recipe_difference(recorded, zoo.preset("quick", 3)) == \
        "seed (0 there, 3 now), generalists"
    v = zoo.RECIPE_VERSION
    assert zoo.recipe_difference(dict(recorded, recipe_version=v - 1), zoo.preset("quick")) \
        == f"recipe_version ({v - 1} there, {v} now)"
    assert zoo.recipe_difference(recorded, zoo.preset("demo")).startswith(
        "name ('quick' there, 'demo' now), generalists, experts")
    slower = dataclasses.replace(zoo.preset("quick"), expert_train={
        "r6x1": zoo.TrainSpec(examples=1_000, steps=11, lr=0.001, batch_size=64)})
    assert zoo.recipe_difference(recorded, slower) == "expert_train"
    assert zoo.recipe_difference(None, zoo.preset("quick")) == \
        "zoo.json records no configuration"


def test_a_zoo_is_current_only_when_it_trained_with_the_fixed_thread_count(tmp_path,
                                                                           monkeypatch):
    """The threads of TensorFlow's intra-op pool decide the trained weights' last bits (1, 2
    and 4 gave three different `quick` zoos, oneDNN on or off, op determinism on or off), and
    the builder gave each worker cpu_count // workers and trained `workers=1` on the
    caller's TensorFlow: another core count or --workers built another zoo, with other demo
    figures than the README's, and zoo.json did not say so. Now every module trains with
    TRAIN_THREADS threads (one; what the two-core default build always used), zoo.json
    records it, and a zoo that records none or another count is not current. zoo.json alone
    stands in for the zoo."""
    builder = zoo.builder
    assert builder.TRAIN_THREADS == 1
    folder = tmp_path / "zoo"
    folder.mkdir()
    record = {"config": zoo.preset("quick").to_json()}
    for threads, words in [
            (None, "no TensorFlow thread count (built before hubensemble fixed it)"),
            (2, "2 TensorFlow threads per module")]:
        (folder / zoo.MARKER).write_text(json.dumps(
            record if threads is None else dict(record, train_threads=threads)))
        assert zoo.zoo_difference(folder, zoo.preset("quick")) == \
            f"its zoo.json records {words}, the build trains with 1"
    (folder / zoo.MARKER).write_text(json.dumps(dict(record, train_threads=1)))
    assert zoo.zoo_difference(folder, zoo.preset("quick")) is None
    # workers=1 trains in this process only on a TensorFlow of one intra-op thread; TF's own
    # variable decides it when no count is configured (conftest sets 1, under -n0 and xdist).
    # TensorFlow is not imported for this (seconds, when no test before imported it).
    tf = sys.modules.get("tensorflow")
    if tf is None or tf.config.threading.get_intra_op_parallelism_threads() == 0:
        for env, here in [("1", True), ("2", False), ("4", False)]:
            monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", env)
            assert builder._intra_op_threads() == int(env)
            assert builder._trains_here(1) is here
            assert builder._trains_here(2) is False


def test_ensure_zoo_rebuilds_a_cached_zoo_of_another_recipe(tmp_path, monkeypatch):
    # ensure_zoo and build_zoo share one test of "current" (a cached zoo built there by hand
    # with another seed must not serve zoo:quick/ handles); zoo.json alone stands in for the
    # zoo, and the build is stopped before it trains.
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(tmp_path))
    folder = zoo.zoo_dir("quick")
    folder.mkdir()
    builds = []

    def stop(preset, out, **kwargs):
        builds.append((preset, out))
        raise RuntimeError("stop here")

    monkeypatch.setattr(zoo.cache, "build_zoo", stop)
    threads = zoo.builder.TRAIN_THREADS
    (folder / zoo.MARKER).write_text(json.dumps({"config": zoo.preset("quick").to_json(),
                                                 "train_threads": threads}))
    assert zoo.is_cached("quick")
    assert zoo.ensure_zoo("quick") == folder and builds == []
    (folder / zoo.MARKER).write_text(json.dumps({"config": zoo.preset("quick", 3).to_json(),
                                                 "train_threads": threads}))
    assert not zoo.is_cached("quick")
    assert zoo.zoo_difference(folder, zoo.preset("quick")).startswith("seed (3 there, 0 now)")
    with pytest.raises(RuntimeError, match="stop here"):
        zoo.ensure_zoo("quick")
    assert builds == [("quick", folder)]
    assert (folder / zoo.MARKER).exists()  # a finished zoo is build_zoo's to replace


def test_ensure_zoo_removes_a_current_zoos_free_build_lock_and_leaves_a_held_one(
        tmp_path, monkeypatch):
    """A build killed between its zoo's final rename and the lock's removal left
    $HUBENSEMBLE_ZOO_DIR/NAME.lock; ensure_zoo of the (current) zoo returned it without a
    build, so it stayed for good. It is removed now when free (taken, then removed while
    held); one another process holds stays. zoo.json alone stands in for the zoo."""
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(tmp_path))
    folder = zoo.zoo_dir("quick")
    folder.mkdir()
    (folder / zoo.MARKER).write_text(json.dumps({"config": zoo.preset("quick").to_json(),
                                                 "train_threads": zoo.builder.TRAIN_THREADS}))
    lock = zoo.builder.build_lock_path(folder)
    lock.touch()  # free: its process is gone
    assert zoo.ensure_zoo("quick") == folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom hubensemble.fileio import file_lock\n"
         "with file_lock(sys.argv[1], timeout=10):\n    print('held', flush=True)\n"
         "    time.sleep(300)", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert zoo.ensure_zoo("quick") == folder
        assert lock.exists()  # a build starting holds it: not this call's to remove
    finally:
        holder.kill()
        holder.wait()
    with zoo.builder.build_lock(folder):  # this process's own (ensure_zoo nested in it)
        assert zoo.ensure_zoo("quick") == folder and lock.exists()
    assert not lock.exists()


# ----------------------------------------------------------------------------- real builds


@pytest.fixture(scope="session")
def quick_zoo_build(tmp_path_factory):
    """`hubensemble zoo build --preset quick` in a process of its own, into the cache folder
    that zoo: handles use: (cache root, the finished process). One build serves the command's
    test and the tests of the zoo it wrote (`quick_zoo`)."""
    root = tmp_path_factory.mktemp("zoo-cache")
    proc = bounded_by_cpu([sys.executable, "-m", "hubensemble", "zoo", "build", "--preset",
                           "quick"], capture_output=True, text=True, cpu=900,
                          env={**os.environ, "HUBENSEMBLE_ZOO_DIR": str(root)})
    return root, proc


@pytest.fixture(scope="session")
def quick_zoo(quick_zoo_build):
    """The quick preset built once (`quick_zoo_build`): (cache root, the zoo folder), the
    folder as a zoo:quick/ handle finds it."""
    root, proc = quick_zoo_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    old = os.environ.get("HUBENSEMBLE_ZOO_DIR")
    os.environ["HUBENSEMBLE_ZOO_DIR"] = str(root)
    try:
        first = zoo.module_path("quick", "r6x1-generalist-0")  # found, not built
    finally:
        if old is None:
            os.environ.pop("HUBENSEMBLE_ZOO_DIR")
        else:
            os.environ["HUBENSEMBLE_ZOO_DIR"] = old
    return root, pathlib.Path(first).parent


@pytest.mark.slow
def test_zoo_build_command_prints_the_folder_and_its_catalogue(quick_zoo_build, quick_zoo,
                                                               capsys):
    from hubensemble.cli import main

    _, proc = quick_zoo_build
    _, folder = quick_zoo
    assert pathlib.Path(proc.stdout.strip()) == folder  # the folder alone on stdout
    last = proc.stderr.replace("\r", "\n").strip().splitlines()[-1]  # what, where
    assert re.fullmatch(rf"zoo quick: 4 modules built into {re.escape(str(folder))} in \d+ s; "
                        r"its catalogue \(for --catalogue\): "
                        + re.escape(str(folder / "catalogue.yaml")), last), last
    assert sorted(os.listdir(folder.parent)) == [folder.name]  # no quick-r1.lock left
    # TensorFlow's C++ start-up notices stay out, here and in the worker processes ("zoo"
    # alone imports no TensorFlow, and "zoo build" inherited that).
    assert "cuInit" not in proc.stderr and "absl::InitializeLog" not in proc.stderr, \
        proc.stderr
    assert "Traceback" not in proc.stderr
    assert main(["catalogue", "validate", str(folder / "catalogue.yaml")]) == 0, \
        capsys.readouterr().err


def _tiny_config(**kw):
    spec = zoo.TrainSpec(examples=256, steps=3, lr=0.05, batch_size=32)
    base = dict(name="tiny", generalists={"r6x1": (0,)}, experts={"r6x1": ("digits",)},
                generalist_train={"r6x1": spec}, expert_train={"r6x1": spec})
    base.update(kw)
    return zoo.ZooConfig(**base)


#: The handle the shared tiny build (`tiny_zoo`) is made for.
TINY_PURPOSE = "zoo:tiny/r6x1-expert-digits"


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """`_tiny_config()` built once, with its bar, for a handle (TINY_PURPOSE), over the free
    lock file a killed build left: (the zoo folder, whether its lock was held at each hook
    event, the build's stderr). Each tiny build is seconds of CPU; the tests of what a build
    says and holds read this one, and those that need a built zoo use it (those that change
    one work on a copy or put back what they changed)."""
    import contextlib

    from hubensemble.fileio import lock_is_held

    out = tmp_path_factory.mktemp("tiny") / "zoo"
    lock = zoo.builder.build_lock_path(out)
    lock.touch()  # a killed build's: free
    held = []
    err = tmp_path_factory.mktemp("tiny-stderr") / "stderr.txt"
    # stderr is a file, as under capfd: the bar writes plain lines.
    with open(err, "w") as stream, contextlib.redirect_stderr(stream):
        zoo.build_zoo(_tiny_config(), out, progress=True, workers=1, purpose=TINY_PURPOSE,
                      hook=lambda event, name: held.append(lock_is_held(lock)))
    return out, held, err.read_text()


def test_quick_zoo_writes_loadable_modules_and_a_valid_catalogue(quick_zoo):
    import tensorflow as tf

    from hubensemble.catalogue import load_catalogue
    from hubensemble.hub import HubLayer, file_sha256

    _, folder = quick_zoo
    assert zoo.is_zoo(folder)
    specs = load_catalogue(folder / "catalogue.yaml")
    assert [s.name for s in specs] == [p.name for p in zoo.plan(zoo.preset("quick"),
                                                                glyphs.hierarchy())]
    assert {s.family for s in specs} == {"generalist", "expert"}
    assert yaml.safe_load((folder / "hierarchy.yaml").read_text()) == glyphs.hierarchy()
    x = glyphs.generate(6, seed=9)[0].astype("float32") / 255.0
    for s in specs:
        assert pathlib.Path(s.handle) == folder / s.name
        assert s.sha256 == file_sha256(os.path.join(s.handle, "saved_model.pb"))
        assert s.upstream == "glyphs-v1" and s.value_range == "0,1" and s.license
        assert s.params == zoo.count_params(zoo.ARCHITECTURES[s.tags[2]])
        assert (s.subtree is None) == (s.family == "generalist")
        layer = HubLayer(s.handle, sha256=s.sha256, input_size=s.input_size)
        out = layer(tf.constant(x))
        assert out.shape == (6, s.output_dim) and np.all(np.isfinite(out))
        # Another input size works too (global average pooling).
        assert layer(tf.image.resize(x, (24, 24))).shape == (6, s.output_dim)


def _weights(path):
    import tensorflow as tf

    obj = tf.saved_model.load(str(path))
    return {v.name: v.numpy() for v in obj.variables}


def test_experts_are_fine_tuned_generalists(quick_zoo):
    _, folder = quick_zoo
    g0, g1 = _weights(folder / "r6x1-generalist-0"), _weights(folder / "r6x1-generalist-1")
    for sub in ("digits", "shapes"):
        e = _weights(folder / f"r6x1-expert-{sub}")
        assert set(e) == set(g0)
        changed = [k for k in e if not np.array_equal(e[k], g0[k])]
        assert changed, f"expert {sub} equals its generalist"
        # Fine-tuned from generalist 0: much closer to it than two generalists are apart.
        d_parent = sum(np.abs(e[k] - g0[k]).sum() for k in e)
        d_other = sum(np.abs(g1[k] - g0[k]).sum() for k in e)
        assert d_parent < 0.5 * d_other


def test_module_path_builds_once_then_reuses(quick_zoo, monkeypatch):
    from hubensemble import hub

    root, folder = quick_zoo
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(root))
    stamp = (folder / zoo.MARKER).stat().st_mtime_ns

    def no_build(*args, **kwargs):
        raise AssertionError("the cached zoo was built again")

    monkeypatch.setattr(zoo.cache, "build_zoo", no_build)
    assert zoo.module_path("quick", "r6x1-expert-shapes") == str(folder / "r6x1-expert-shapes")
    assert hub.resolve("zoo:quick/r6x1-expert-digits") == str(folder / "r6x1-expert-digits")
    assert (folder / zoo.MARKER).stat().st_mtime_ns == stamp
    assert not any(p.name.startswith(".tmp-") for p in root.iterdir())


def _no_training(event, name):
    raise AssertionError(f"the zoo was built again ({event} {name})")


def test_building_onto_the_same_zoo_does_nothing_and_says_so(quick_zoo, caplog, capsys):
    """A complete zoo is what was asked for: said in a note (INFO, on stderr with progress),
    not a WARNING, which read as a half success of a command that exits 0."""
    _, folder = quick_zoo
    marker = (folder / zoo.MARKER).read_bytes()
    with caplog.at_level(logging.INFO):
        assert zoo.build_zoo(zoo.preset("quick"), folder, progress=False, workers=1,
                             hook=_no_training) == folder
    assert [r.levelno for r in caplog.records] == [logging.INFO], caplog.records
    assert caplog.messages == [
        f"{folder} already holds the complete 'quick' zoo (seed 0, recipe "
        f"{zoo.RECIPE_VERSION}): nothing to build (delete the folder to build it again); its "
        f"catalogue (for fit's catalogue=): {folder / 'catalogue.yaml'}"]
    assert capsys.readouterr().err == ""  # progress=False: the log only
    assert (folder / zoo.MARKER).read_bytes() == marker


def test_building_another_seed_onto_a_zoo_says_what_it_replaces(quick_zoo, caplog):
    _, folder = quick_zoo
    marker = (folder / zoo.MARKER).read_bytes()

    def interrupt(event, name):
        raise KeyboardInterrupt  # the rebuild started: enough to see what it said before

    with caplog.at_level(logging.WARNING, logger="hubensemble.zoo.builder"), \
            pytest.raises(KeyboardInterrupt):
        zoo.build_zoo("quick", folder, seed=3, progress=False, workers=1, hook=interrupt)
    assert caplog.messages == [
        f"replacing the 'quick' zoo (seed 0, recipe {zoo.RECIPE_VERSION}) in {folder}, another "
        "recipe: seed (0 there, 3 now), generalists (the old zoo stays until the new one is "
        "complete)"]
    assert (folder / zoo.MARKER).read_bytes() == marker


def test_zoo_build_command_onto_a_current_zoo_returns_without_tensorflow(quick_zoo):
    root, folder = quick_zoo
    marker = (folder / zoo.MARKER).read_bytes()
    code = ("import sys\nfrom hubensemble.cli import main\n"
            "rc = main(['zoo', 'build', '--preset', 'quick'])\n"
            "print('tensorflow' in sys.modules)\nsys.exit(rc)")
    proc = bounded_by_cpu([sys.executable, "-c", code], capture_output=True, text=True,
                          cpu=300, env={**os.environ, "HUBENSEMBLE_ZOO_DIR": str(root)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [str(folder), "False"]
    # One note, no WARNING: the zoo asked for is there (it warned "… delete it to rebuild").
    assert proc.stderr.splitlines() == [
        f"{folder} already holds the complete 'quick' zoo (seed 0, recipe "
        f"{zoo.RECIPE_VERSION}): nothing to build (delete the folder to build it again); its "
        f"catalogue (for --catalogue): {folder / 'catalogue.yaml'}"], proc.stderr
    assert (folder / zoo.MARKER).read_bytes() == marker


def test_zoo_build_quiet_onto_a_current_zoo_prints_the_folder_only(
        quick_zoo, in_process, monkeypatch):
    """-q: the folder on stdout, nothing on stderr, exit 0."""
    root, folder = quick_zoo
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(root))
    assert in_process("zoo", "build", "--preset", "quick", "-q") == (0, f"{folder}\n", "")


def test_interrupted_build_leaves_no_zoo(tmp_path, tiny_zoo):
    out = tmp_path / "zoo"
    events = []

    def hook(event, name):
        events.append((event, name))
        if event == "start" and name.endswith("expert-digits"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.build_zoo(_tiny_config(), out, progress=False, workers=1, hook=hook)
    assert ("exported", "r6x1-generalist-0") in events  # one module was already written
    assert not out.exists()
    # What it finished is kept beside, for the same build again (never taken for the zoo).
    assert [p.name for p in tmp_path.iterdir()] == ["zoo.partial"]
    # An older zoo at out_dir survives a failed rebuild (of another seed: the same recipe is
    # not built again) untouched. The older zoo: a copy of one that build_zoo finished.
    shutil.copytree(tiny_zoo[0], out)
    stamp = (out / zoo.MARKER).read_bytes()
    with pytest.raises(KeyboardInterrupt):
        zoo.build_zoo(_tiny_config(), out, seed=1, progress=False, workers=1, hook=hook)
    assert (out / zoo.MARKER).read_bytes() == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo", "zoo.partial"]


def test_a_build_holds_its_lock_removes_it_and_says_what_it_built_where(tiny_zoo):
    """An ended zoo build left $HUBENSEMBLE_ZOO_DIR/NAME.lock behind (`ensure_zoo`'s, and
    `zoo build` took none), and a killed one's stayed for good; the build's last line was its
    bar's ("fine-tuning r6x1-expert-digits: 100% 4/4"). Now the build holds OUT.lock beside
    its folder, removes it as it ends (a free one a killed build left too), and its last line
    says what it built where. A nested use (`ensure_zoo` holds it around `build_zoo`) waits
    on nothing."""
    from hubensemble.fileio import lock_is_held

    out, held, err = tiny_zoo  # built over a free lock file, a killed build's
    lock = zoo.builder.build_lock_path(out)
    assert lock == out.parent / "zoo.lock"
    assert held and all(held)
    assert sorted(p.name for p in out.parent.iterdir()) == ["zoo"]
    err = err.replace("\r", "\n").strip().splitlines()
    assert re.fullmatch(
        rf"zoo tiny: 2 modules built into {re.escape(str(out))} in \d+ s; its catalogue "
        rf"\(for fit's catalogue=\): {re.escape(str(out / 'catalogue.yaml'))}", err[-1]), \
        err[-3:]  # a Python caller's words; the command line's "(for --catalogue)" (slow test)
    with zoo.builder.build_lock(out):  # as ensure_zoo holds it: current, nothing built
        assert zoo.build_zoo(_tiny_config(), out, progress=False, hook=_no_training) == out
        assert lock_is_held(lock)
    assert sorted(p.name for p in out.parent.iterdir()) == ["zoo"]


def test_a_seed_numpy_would_refuse_mid_build_is_refused_before_any_work(tmp_path):
    """A new-user check: --seed -1 or 4294967296 (and 4294967295: the first module trains
    with its seed * 1000 + 1) stopped the build with numpy's "Seed must be between 0 and
    2**32 - 1" after minutes. Every seed a build derives is checked first."""
    from hubensemble.zoo.config import MAX_SEED, build_seeds, max_seed, seed_problem

    hierarchy = zoo.preset("quick").upstream_data().hierarchy
    # Generalists 0 and 1, experts digits (sub-tree 3) and shapes (sub-tree 8) of 0.
    assert build_seeds(zoo.preset("quick"), hierarchy) == [0, 1, 1, 1001, 0, 4, 0, 9]
    # The largest seed of each preset: its largest derived seed is at most numpy's largest.
    for name in zoo.PRESETS:
        top = max_seed(name)
        assert max(build_seeds(zoo.preset(name, top), hierarchy)) <= MAX_SEED
        assert seed_problem(zoo.preset(name, top), hierarchy) is None
        assert "outside numpy's 0 ... 4294967295" in seed_problem(zoo.preset(name, top + 1))
    assert max_seed() == min(max_seed("quick"), max_seed("demo")) == 4294965
    out = tmp_path / "zoo"
    for seed in (-1, max_seed("quick") + 1, 2**32 - 1, 2**32):
        with pytest.raises(HubensembleError, match=r"would train with seed -?\d+, outside "):
            zoo.build_zoo("quick", out, seed=seed, progress=False, workers=1,
                          hook=_no_training)
    # A ZooConfig of the user's own is checked too.
    with pytest.raises(HubensembleError, match="with seed -2 would train with seed -2,"):
        zoo.build_zoo(_tiny_config(seed=-2, generalists={"r6x1": (-2,)}), out,
                      progress=False, workers=1, hook=_no_training)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_below_one_are_refused_before_any_work(tmp_path, workers):
    # 0 and -1 trained one module at a time without a word.
    with pytest.raises(HubensembleError, match=r"^workers must be an integer >= 1, got "):
        zoo.build_zoo(_tiny_config(), tmp_path / "zoo", progress=False, workers=workers,
                      hook=_no_training)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("word", ["Adam", "sgdm", None])
def test_a_train_specs_unknown_optimizer_is_refused_as_the_spec_is_made(word):
    # It was refused only in a build's worker, after the data was drawn and the pool started.
    close = {"Adam": r" \(did you mean adam\?\)", "sgdm": r" \(did you mean sgd\?\)", None: ""}
    with pytest.raises(ValueError, match=rf"^unknown optimizer {word!r}{close[word]}; "
                                         r"use 'adam' or 'sgd'$"):
        zoo.TrainSpec(examples=64, steps=2, lr=0.01, optimizer=word)
    assert zoo.TrainSpec(examples=64, steps=2, lr=0.01, optimizer="sgd").optimizer == "sgd"


@pytest.mark.parametrize("field, value", [("steps", 0), ("examples", -5), ("batch_size", 1.5),
                                          ("steps", True), ("lr", 0.0), ("lr", float("nan")),
                                          ("lr", "0.01")])
def test_a_train_spec_of_no_steps_or_no_learning_rate_is_refused_as_it_is_made(field, value):
    # Nothing checked them: steps=0 went on to a worker's model.fit (steps_per_epoch=0), and an
    # lr of 0 or nan would train a module that learns nothing.
    fields = {"examples": 64, "steps": 2, "lr": 0.01, field: value}
    word = "a number > 0 and finite" if field == "lr" else "an integer >= 1"
    with pytest.raises(ValueError, match=rf"^TrainSpec {field} must be {word}, got "):
        zoo.TrainSpec(**fields)


@pytest.fixture
def slow_reaper(monkeypatch):
    """Widens a race CI once hit (run 143): a thread other than the main one that reaps a
    child (waitpid) is held 0.3 s before it returns, so before multiprocessing stores the
    child's exit code. A stop that reaped the workers in the main thread while the pool's
    manager thread did left a dead worker listed by multiprocessing.active_children()."""
    import threading
    import time

    waitpid = os.waitpid

    def held(pid, options):
        found = waitpid(pid, options)
        if found[0] == pid and threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
        return found

    monkeypatch.setattr(os, "waitpid", held)


def test_a_failing_worker_stops_the_build_and_leaves_nothing(tmp_path, slow_reaper):
    import multiprocessing

    bad = zoo.TrainSpec(examples=64, steps=2, lr=0.01, batch_size=16)
    object.__setattr__(bad, "optimizer", "Adam")  # past TrainSpec's own check: the worker's
    config = _tiny_config(generalist_train={"r6x1": bad})
    # With a guess of the one meant, as every refusal that lists names (text.did_you_mean).
    with pytest.raises(ValueError, match=r"unknown optimizer 'Adam' \(did you mean adam\?\); "
                                         r"use 'adam' or 'sgd'"):
        zoo.build_zoo(config, tmp_path / "zoo", progress=False, workers=2)
    assert list(tmp_path.iterdir()) == []
    assert multiprocessing.active_children() == []  # the pool's workers are gone


def test_ctrl_c_during_a_parallel_build_ends_the_workers_at_once(tmp_path, slow_reaper):
    import multiprocessing
    import time

    # Two generalists train side by side; Ctrl-C as the second starts must not wait for the
    # first to finish training (the workers ignore SIGINT: the builder ends them).
    slow = zoo.TrainSpec(examples=256, steps=100_000, lr=0.01, batch_size=32)
    config = _tiny_config(generalists={"r6x1": (0, 1)}, experts={},
                          generalist_train={"r6x1": slow})

    def hook(event, name):
        if event == "start" and name.endswith("generalist-1"):
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        zoo.build_zoo(config, tmp_path / "zoo", progress=False, workers=2, hook=hook)
    assert time.monotonic() - start < 60
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # two fresh interpreters importing TensorFlow: 30-60 s
def test_a_parallel_build_says_its_phases_and_each_modules_steps(tmp_path, monkeypatch,
                                                                 capfd):
    """The parallel build (a pool of worker processes) said only "zoo tiny: training NAME,
    NAME", never a step, where the serial build says "pre-training NAME" and "step 10/50
    loss …": each worker now writes its steps to a file of its own, which the builder reads
    onto the bar, and the bar's phase names the verb of each module training."""
    from hubensemble import terminal

    monkeypatch.setattr(terminal, "LINE_SECONDS", 0.0)  # a line per state (stderr: a file)
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    spec = zoo.TrainSpec(examples=256, steps=20, lr=0.05, batch_size=32)
    config = _tiny_config(generalists={"r6x1": (0, 1)}, generalist_train={"r6x1": spec},
                          expert_train={"r6x1": spec})
    zoo.build_zoo(config, tmp_path / "zoo", progress=True, workers=2)
    lines = [line for line in capfd.readouterr().err.splitlines()
             if line.startswith("zoo tiny")]
    plans = [m["name"] for m in json.loads((tmp_path / "zoo" / zoo.MARKER).read_text())["modules"]]
    assert len(plans) == 3, plans  # two generalists, an expert of the first
    for name in plans:
        verb = "fine-tuning" if "expert" in name else "pre-training"
        assert any(re.search(rf"^zoo tiny: (.*, )?{verb} {name}(, .*)?: ", line)
                   for line in lines), (name, lines)
        assert any(re.search(rf"[ ,]{name}: step 20/20 loss [0-9.]+[],]", line)
                   for line in lines), (name, lines)
    assert " 3/3 [" in lines[-2], lines  # the bar's end, then what was built where
    assert lines[-1].startswith(f"zoo tiny: 3 modules built into {tmp_path / 'zoo'} in "), lines
    assert not list((tmp_path / "zoo").glob("**/*.progress")), "a progress file was left"


def test_a_build_for_a_handle_says_so_on_its_progress_bar(tmp_path, monkeypatch, tiny_zoo):
    # module_path passes the handle down; build_zoo shows it.
    monkeypatch.setenv("HUBENSEMBLE_ZOO_DIR", str(tmp_path / "cache"))
    seen = {}

    def fake_build(preset, out, **kwargs):
        seen.update(kwargs, preset=preset)
        raise RuntimeError("stop here")

    monkeypatch.setattr(zoo.cache, "build_zoo", fake_build)
    with pytest.raises(RuntimeError, match="stop here"):
        zoo.module_path("quick", "r6x1-expert-digits")
    assert seen["preset"] == "quick" and seen["purpose"] == "zoo:quick/r6x1-expert-digits"
    _, _, err = tiny_zoo  # built with purpose=TINY_PURPOSE
    assert f"building zoo 'tiny' for {TINY_PURPOSE}: pre-training" in err


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: 10-30 s
def test_killed_build_leaves_a_temp_folder_that_is_never_the_zoo(tmp_path, monkeypatch):
    out = tmp_path / "cache" / f"quick-r{zoo.RECIPE_VERSION}"
    script = textwrap.dedent(f"""
        import os, signal
        from hubensemble import zoo
        spec = zoo.TrainSpec(examples=256, steps=3, lr=0.05, batch_size=32)
        config = zoo.ZooConfig(name="quick", generalists={{"r6x1": (0,)}},
                               experts={{"r6x1": ("digits",)}},
                               generalist_train={{"r6x1": spec}}, expert_train={{"r6x1": spec}})
        def hook(event, name):
            if event == "exported":
                os.kill(os.getpid(), signal.SIGKILL)
        zoo.build_zoo(config, {str(out)!r}, progress=False, workers=1, hook=hook)
    """)
    proc = bounded_by_cpu([sys.executable, "-c", script], capture_output=True, cpu=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    left = sorted(out.parent.iterdir(), key=lambda p: (p.name != f"{out.name}.lock",
                                                       p.name == f"{out.name}.partial"))
    assert not out.exists()
    assert [p.name for p in left[:1]] == [f"{out.name}.lock"]  # its build lock, now free
    assert len(left) == 3 and left[1].name.startswith(".tmp-") and not zoo.is_zoo(left[1])
    assert left[2].name == f"{out.name}.partial"  # its finished module, for the same build
    # The next build removes the dead process's temp folder and lock file, and finishes (a
    # zoo of one module: what it leaves is the same, in half the training).
    zoo.build_zoo(_tiny_config(name="quick", experts={}), out, progress=False, workers=1)
    assert zoo.is_zoo(out) and sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_build_is_deterministic_for_a_seed(tmp_path, tiny_zoo):
    # The second build reuses this process's compiled trainer: equal weights also show that
    # its reset (weights, head, logit mask, optimizer state, schedule) is complete. (The
    # first, `tiny_zoo`, had a bar and a hook: neither touches the training.)
    a, _, _ = tiny_zoo
    b = zoo.build_zoo(_tiny_config(), tmp_path / "b", progress=False, workers=1, seed=0)
    for name in ("r6x1-generalist-0", "r6x1-expert-digits"):
        wa, wb = _weights(a / name), _weights(b / name)
        assert all(np.array_equal(wa[k], wb[k]) for k in wa), name


def test_out_dir_that_is_not_a_zoo_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(HubensembleError, match="not a zoo"):
        zoo.build_zoo(_tiny_config(), tmp_path, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_custom_upstream_from_npz_and_hierarchy_yaml(tmp_path):
    from hubensemble.catalogue import load_catalogue

    # Own upstream data: two "sub-trees" of glyph classes, saved as arrays + a YAML file
    # (names the glyphs' own hierarchy has not: an expert per sub-tree of this one).
    tree = {"round": ["shapes/circle", "shapes/ring"], "pointy": ["shapes/star", "shapes/cross",
                                                                  "digits/7"]}
    names = [c for cs in tree.values() for c in cs]
    images, labels = glyphs.generate(210, seed=2, classes=names)
    local = np.array([names.index(glyphs.CLASS_NAMES[i]) for i in labels])
    np.savez(tmp_path / "up.npz", images=images, labels=local, class_names=np.array(names))
    (tmp_path / "tree.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    up = zoo.UpstreamData.from_npz(tmp_path / "up.npz", tmp_path / "tree.yaml")
    assert up.name == "up" and up.class_names == names
    x, y = up.sample(50, seed=0, classes=tree["pointy"])
    assert len(x) == 50 and set(y) == {names.index(c) for c in tree["pointy"]}
    config = _tiny_config(name="mine", experts={"r6x1": None}, upstream=up)
    # One worker (this process, under the suite's one TensorFlow thread): the builder draws
    # the upstream data and hands it to a worker as arrays, the same for a worker process,
    # and an expert waiting for its parent's weights from another worker is
    # test_a_parallel_build_says_its_phases_and_each_modules_steps' build.
    out = zoo.build_zoo(config, tmp_path / "zoo", progress=False, workers=1)
    specs = load_catalogue(out / "catalogue.yaml")
    assert [s.name for s in specs] == ["r6x1-generalist-0", "r6x1-expert-round",
                                       "r6x1-expert-pointy"]
    assert {s.upstream for s in specs} == {"up"}
    assert [s.subtree for s in specs] == [None, "round", "pointy"]
    assert yaml.safe_load((out / "hierarchy.yaml").read_text()) == tree


def test_upstream_data_errors(tmp_path):
    tree = {"a": ["x"], "b": ["y"]}
    imgs = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match="labels"):
        zoo.UpstreamData("u", ["x", "y"], tree, images=imgs, labels=np.array([0, 1]))
    with pytest.raises(DataError, match="indices into class_names"):
        zoo.UpstreamData("u", ["x", "y"], tree, images=imgs, labels=np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match="either images"):
        zoo.UpstreamData("u", ["x", "y"], tree)
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(DataError, match="mapping sub-tree"):
        zoo.load_hierarchy(tmp_path / "bad.yaml")
    # Read as the catalogue is (text.file_text): a Latin-1 'é' said "cannot read the
    # hierarchy ('utf-8' codec can't decode byte 0xe9 …)", no line, no fix; a BOM is read.
    (tmp_path / "latin1.yaml").write_bytes("a: [x]\nb: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.yaml:2: column 8: byte 0xe9 is not UTF-8"
                                        r".*save the file as UTF-8"):
        zoo.load_hierarchy(tmp_path / "latin1.yaml")
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfa: [x]\r\nb: [y]\r\n")
    assert zoo.load_hierarchy(tmp_path / "bom.yaml") == tree
    with pytest.raises(DataError, match="cannot read upstream data"):
        zoo.UpstreamData.from_npz(tmp_path / "missing.npz", tree)


def test_catalogue_add_of_a_zoo_module_writes_the_entry_its_zoo_has(
        tmp_path, tiny_module, raw_module, caplog, tiny_zoo):
    """A new-user check: `catalogue add` of a zoo module left out its `input_size: [32, 32]`
    (and family, upstream, …), so the same module was ranked at 64x64 under --profile cpu
    where the zoo's entry gave 32x32, and add warned that the two load the same module.
    The module declares its fields (hub.introspect.DECLARED_FIELDS) in its metadata; a module
    of a zoo built before that takes them from its zoo's catalogue; a module that declares
    nothing gets none of them."""
    from hubensemble.catalogue import ModuleSpec, load_catalogue
    from hubensemble.catalogue_writer import add_modules
    from hubensemble.hub import write_hub_module
    from hubensemble.hub.introspect import describe_module
    from hubensemble.hub.writer import METADATA_FILE

    out, _, _ = tiny_zoo
    zoo_entries = load_catalogue(out / "catalogue.yaml")
    declared = ("input_size", "native_size", "value_range", "family", "architecture",
                "upstream", "subtree", "seed", "license", "tags")
    compared = ("sha256", "output_dim", "params") + declared

    def same(spec, entry):
        return {f: getattr(spec, f) for f in compared} == {f: getattr(entry, f) for f in compared}

    # The folder in its zoo, and moved out of it (its metadata alone).
    elsewhere = tmp_path / "moved" / "g0"
    shutil.copytree(out / "r6x1-generalist-0", elsewhere)
    for handle, entry in ((out / "r6x1-generalist-0", zoo_entries[0]),
                          (elsewhere, zoo_entries[0]), (out / "r6x1-expert-digits",
                                                        zoo_entries[1])):
        spec = describe_module(str(handle))
        assert same(spec, entry), (spec, entry)
        assert spec.input_size == (32, 32) and spec.family == entry.family
    # A module of an older zoo, whose metadata declares no entry fields: its zoo's catalogue.
    # (In the shared zoo, whose catalogue's handles are its own paths: put back after.)
    meta = out / "r6x1-expert-digits" / METADATA_FILE
    written = meta.read_text()
    try:
        meta.write_text(json.dumps({k: v for k, v in json.loads(written).items()
                                    if k not in ("input_size", "value_range", "license",
                                                 "tags")}))
        assert same(describe_module(str(out / "r6x1-expert-digits")), zoo_entries[1])
    finally:
        meta.write_text(written)

    # `catalogue add` writes that entry: no "loads the same module" warning, and the file
    # reads back the zoo's values.
    mine = tmp_path / "mine.yaml"
    text, failed = add_modules(mine, [str(out / "r6x1-generalist-0")], set())
    assert failed == [] and "input_size: [32, 32]" in text
    assert same(load_catalogue(mine)[0], zoo_entries[0])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        add_modules(mine, [tiny_module, raw_module("no-training")], {"r6x1-generalist-0"})
    assert "loads the same module" not in caplog.text

    # Modules that declare nothing: the fields stay at their defaults, the measured ones set.
    plain = ModuleSpec("x", "https://tfhub.dev/google/bit/m-r50x1/1")
    for spec in load_catalogue(mine)[1:]:
        assert {f: getattr(spec, f) for f in declared} == {
            f: getattr(plain, f) for f in declared}, spec
        assert spec.output_dim in (8, 6)
    # A declared value ModuleSpec refuses is left out with a warning; the others are kept.
    odd = write_hub_module(keras_tiny(), str(tmp_path / "odd"), metadata={
        "input_size": "big", "family": "expert", "value_range": [-1, 1], "output_dim": 99})
    with caplog.at_level(logging.WARNING):
        spec = describe_module(odd)
    assert (spec.input_size, spec.family, spec.value_range) == (None, "expert", "-1,1")
    assert "leaving out its declared input_size" in caplog.text
    # A declared width the module does not give: the measured one, with a warning.
    assert spec.output_dim == 4
    assert "declares output_dim 99, its embeddings are 4-d; writing the measured 4" in caplog.text


def keras_tiny():
    from conftest import make_tiny_model

    return make_tiny_model(seed=1, width=4)


def test_a_live_build_bar_redraws_at_most_once_per_interval(tmp_path, monkeypatch):
    """The build bar's step note (`terminal.bar_note`): tqdm's set_postfix_str redrew a live
    bar (a terminal, a notebook) at every training step; with an interval of an hour it now
    draws a few times in all, not at every note (one each 10 steps). The suite's TensorFlow
    has one intra-op thread (TF_NUM_INTRAOP_THREADS=1, conftest), so the builder trains the
    modules itself. (Where one worker process trains them, on TensorFlow's default threads,
    the builder's every read of its steps, each second, redrew the bar through
    set_description: 71 draws in one loaded -n0 run before conftest set the thread count
    there too; and its first read, with no note yet, spent the interval: no step note was
    drawn.)"""
    import io

    from hubensemble import terminal

    buffer = io.StringIO()
    stream_type = type("OutStream", (), {  # a Jupyter kernel's stderr: a live bar
        "__module__": "ipykernel.iostream", "isatty": lambda self: False,
        "write": lambda self, s: buffer.write(s), "flush": lambda self: None,
        "close": lambda self: None})
    monkeypatch.setattr(sys, "stderr", stream_type())
    bar = terminal.progress_bar  # the build's bar, with an interval of an hour (tqdm reads
    monkeypatch.setattr(terminal, "progress_bar",  # TQDM_MININTERVAL once, at its import)
                        lambda *a, **k: bar(*a, **{**k, "mininterval": 3600}))
    assert terminal.live_bars(sys.stderr)
    spec = zoo.TrainSpec(examples=256, steps=100, lr=0.05, batch_size=32)
    zoo.build_zoo(_tiny_config(generalist_train={"r6x1": spec}, expert_train={"r6x1": spec}),
                  tmp_path / "zoo", progress=True, workers=1)
    text = buffer.getvalue()
    assert "step 10/100 loss" in text  # the note, said
    assert text.count("\r") < 12, text  # HEAD drew 24 times: each note redrew


def test_a_zoo_without_an_output_folder_is_refused_in_the_callers_words():
    """build_zoo('quick', seed=3) from Python was told to give "an output folder (--out
    DIR)", a flag it never typed; `zoo build quick --seed 3` keeps it."""
    from hubensemble.lockwords import command_line

    with pytest.raises(HubensembleError) as err:
        zoo.build_zoo("quick", seed=3, progress=False)
    assert str(err.value) == ("give an output folder (out_dir) for a zoo that is not a preset "
                              "with its default seed")
    with pytest.raises(HubensembleError) as err, command_line():
        zoo.build_zoo("quick", seed=3, progress=False)
    assert str(err.value).startswith("give an output folder (--out DIR) for a zoo")


def _stopped_build(out, **kw):
    """A tiny build stopped by a real SIGINT as its first module is exported (the moment the
    build says it is whole); returns the partial folder it leaves."""
    import signal

    def stop(event, name):
        if event == "exported":
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C handler while it builds, where a suite started in the background
    # (`cmd &`) has SIGINT ignored: conftest's, as each test has it, for `stopped_parts` too
    # (a module's fixture, set up before a test's ctrl_c_raises).
    with ctrl_c_raising(), pytest.raises(KeyboardInterrupt):
        zoo.build_zoo(_tiny_config(), out, progress=False, workers=1, hook=stop, **kw)
    assert not out.exists()
    return zoo.builder.partial_dir(out)


def test_an_interrupted_build_keeps_its_finished_modules_and_the_same_build_reuses_them(
        tmp_path, tiny_zoo, capsys, caplog):
    """`zoo build` started over after a Ctrl-C or kill: the modules it had finished were
    removed with its temp folder, so the demo's minutes were lost on every interruption. Each
    module is now written whole into OUT.partial (its record last) and the same build again
    reuses it, training only the rest: the same weights and predictions as an uninterrupted
    build, the reused module's files as the stopped build wrote them."""
    import tensorflow as tf

    out = tmp_path / "zoo"
    with caplog.at_level(logging.WARNING, logger="hubensemble.zoo.builder"):
        parts = _stopped_build(out)
    assert parts == tmp_path / "zoo.partial"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo.partial"]
    g = "r6x1-generalist-0"
    assert f"its 1 finished module is kept in {parts}: the same build again reuses it " \
        "and trains only the rest (another recipe or seed removes it)" in caplog.text
    written = {f.relative_to(parts / g): f.read_bytes() for f in (parts / g).rglob("*")
               if f.is_file()}
    events = []
    capsys.readouterr()
    zoo.build_zoo(_tiny_config(), out, progress=True, workers=1,
                  hook=lambda event, name: events.append((event, name)))
    assert events == [("start", "r6x1-expert-digits"), ("exported", "r6x1-expert-digits")]
    assert (f"zoo tiny: 1 of 2 modules built before, reused (kept in {parts} by a build that "
            "stopped); training the other 1") in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo"]  # the partial folder gone
    assert {f.relative_to(out / g): f.read_bytes() for f in (out / g).rglob("*")
            if f.is_file()} == written
    whole, _, _ = tiny_zoo  # the same recipe, built without a stop
    images = tf.random.stateless_uniform([4, 32, 32, 3], seed=[3, 27])
    for name in (g, "r6x1-expert-digits"):
        wa, wb = _weights(whole / name), _weights(out / name)
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa), name
        ya = tf.saved_model.load(str(whole / name))(images, False).numpy()
        yb = tf.saved_model.load(str(out / name))(images, False).numpy()
        assert np.array_equal(ya, yb), name
    from hubensemble.fileio import file_sha256
    from hubensemble.zoo.config import validate_catalogue

    assert {s.name: s.sha256 for s in validate_catalogue(out / "catalogue.yaml")} == {
        name: file_sha256(out / name / "saved_model.pb") for name in (g, "r6x1-expert-digits")}


@pytest.fixture(scope="module")
def stopped_parts(tmp_path_factory):
    """The partial folder one `_stopped_build` left (its modules' files and records name no
    folder: a copy of it beside another OUT is what a build stopped there leaves), for tests
    that start from a stopped build's folder and test what comes after. A stopped build is
    a training and an export of its first module: the test below stopped two."""
    return _stopped_build(tmp_path_factory.mktemp("stopped") / "zoo")


def test_a_half_written_or_other_recipes_module_is_never_reused(
        tmp_path, caplog, stopped_parts):
    """A module whose files are not what its record says (cut short at a kill) is trained
    again, and so is every module a stopped build of another seed left: a warning says what
    differs and that they are removed. Each case starts from a copy of one stopped build's
    folder (`stopped_parts`)."""
    out = tmp_path / "zoo"
    parts = zoo.builder.partial_dir(out)
    shutil.copytree(stopped_parts, parts)
    g = "r6x1-generalist-0"
    pb = parts / g / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    events = []
    zoo.build_zoo(_tiny_config(), out, progress=False, workers=1,
                  hook=lambda event, name: events.append((event, name)))
    assert ("start", g) in events and not parts.exists()
    shutil.rmtree(out)
    shutil.copytree(stopped_parts, parts)
    events.clear()
    with caplog.at_level(logging.WARNING, logger="hubensemble.zoo.parts"):
        zoo.build_zoo(_tiny_config(), out, seed=1, progress=False, workers=1,
                      hook=lambda event, name: events.append((event, name)))
    assert ("start", g.replace("-0", "-1")) in events and not parts.exists()
    assert (f"not reusing the 1 module an unfinished build of another recipe left in "
            f"{parts} (seed (0 there, 1 now)") in caplog.text, caplog.text


def test_a_build_stopped_after_moving_its_modules_into_the_zoo_keeps_them(
        tmp_path, monkeypatch):
    """At its end a build moves the finished modules from OUT.partial into its temp zoo and
    then writes the catalogue, hierarchy.yaml and zoo.json: a stop there (here an error as
    hierarchy.yaml is written) removed the temp folder with the modules in it, all of them
    lost. They go back to OUT.partial, and the same build again reuses every one."""
    from hubensemble.zoo import builder

    def full(path, text, **kw):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(builder, "atomic_write_text", full)
    out = tmp_path / "zoo"
    with pytest.raises(OSError, match="No space left"):
        zoo.build_zoo(_tiny_config(), out, progress=False, workers=1)
    monkeypatch.undo()
    parts = zoo.builder.partial_dir(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo.partial"]
    events = []
    zoo.build_zoo(_tiny_config(), out, progress=False, workers=1,
                  hook=lambda event, name: events.append((event, name)))
    assert events == [] and zoo.is_zoo(out) and not parts.exists()


_UNGUARDED = """
import sys
from hubensemble import zoo
print("top-level ran", flush=True)
spec = zoo.TrainSpec(examples=256, steps=3, lr=0.05, batch_size=32)
config = zoo.ZooConfig(name="tiny", generalists={"r6x1": (0, 1)}, experts={},
                       generalist_train={"r6x1": spec}, expert_train={"r6x1": spec})
zoo.build_zoo(config, sys.argv[1], progress=False, workers=2)
print("built", flush=True)
"""


def _run_script(tmp_path, text, threads, *args):
    """`text` as the script tmp_path/build.py run by a fresh interpreter (its TensorFlow of
    `threads` intra-op threads), bounded in wall time: a build it hangs waits on a lock."""
    script = tmp_path / "build.py"
    script.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_NUM_INTRAOP_THREADS": str(threads)}
    try:
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, env=env, timeout=600, cwd=tmp_path)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the script hung: {e.stdout!r} {e.stderr!r}")


def test_a_script_that_builds_a_zoo_without_a_main_guard_is_told_to_add_one(tmp_path):
    """A script calling build_zoo at its top level, outside `if __name__ == "__main__":`, was
    run again by each spawned worker (multiprocessing's spawn), whose build waited an hour
    on the script's build lock while the script waited on its workers. It is refused before
    any worker starts, with the guard to write, when this process cannot train the modules
    itself (a TensorFlow of 2 intra-op threads); nothing is left behind."""
    out = tmp_path / "zoo"
    proc = _run_script(tmp_path, _UNGUARDED, 2, str(out))
    assert proc.returncode == 1 and proc.stdout == "top-level ran\n", proc.stdout
    assert (f'HubensembleError: build_zoo is called at {tmp_path / "build.py"}:8, outside an '
            '`if __name__ == "__main__":` block, and a worker process starts by running that '
            "script again from the top (multiprocessing's spawn), which would build the zoo "
            'again in each; put the call (and what it needs) under `if __name__ == '
            '"__main__":` (to train in this process instead, its TensorFlow would need the '
            "workers' 1 intra-op thread; it runs, or will run, 2)") in proc.stderr, \
        proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.py"]


def test_the_main_guard_is_read_from_the_scripts_source(tmp_path):
    """`unguarded_main_call` names the script's line that calls on only when a spawned worker
    would run it again: not under `if __name__ == "__main__":` (at any depth), nor for code
    given by `python -c` (spawn runs no main then)."""
    body = ("from hubensemble.zoo.workers import unguarded_main_call\n"
            "def build():\n    return unguarded_main_call()\n")
    script = tmp_path / "build.py"
    for tail, want in (("print(build())\n", f"{script}:4"),
                       ('if __name__ == "__main__":\n    print(build())\n', "None"),
                       ('if True:\n    if "__main__" == __name__:\n        print(build())\n',
                        "None"),
                       ('if __name__ != "__main__":\n    pass\nelse:\n    print(build())\n',
                        f"{script}:7")):
        proc = _run_script(tmp_path, body + tail, 2)
        assert proc.stdout == want + "\n", (tail, proc.stdout, proc.stderr[-2000:])
    proc = subprocess.run([sys.executable, "-c", body + "print(build())\n"], text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout == "None\n", proc.stderr[-2000:]


@pytest.mark.slow  # a fresh interpreter importing TensorFlow, two modules: 20-90 s
def test_a_script_without_a_main_guard_builds_its_zoo_in_its_own_process(tmp_path):
    """When this process can train the modules itself (a TensorFlow of the workers' one
    intra-op thread), the build does so instead, saying why: the script ran once."""
    out = tmp_path / "zoo"
    proc = _run_script(tmp_path, _UNGUARDED, 1, str(out))
    assert proc.returncode == 0 and proc.stdout == "top-level ran\nbuilt\n", \
        (proc.stdout, proc.stderr[-2000:])
    assert ("training the zoo's modules in this process, not on 2 worker processes: "
            f"build_zoo is called at {tmp_path / 'build.py'}:8, outside") in proc.stderr
    assert zoo.is_zoo(out)
    assert json.loads((out / "zoo.json").read_text())["workers"] == 1
