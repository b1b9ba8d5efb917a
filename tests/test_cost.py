"""Inference cost: FLOPs counted from the traced graph against hand counts, parameters, the
cache, RUN/cost.json and `hubensemble cost`."""

import json
import shutil
import os
import re
import tracemalloc

import keras
import numpy as np
import pytest

from conftest import export_quietly, make_tiny_model
from hubensemble import candidate
from hubensemble.catalogue import ModuleSpec
from hubensemble.cost import Cost, Limits, machine_info, read_run_costs, total_cost
from hubensemble.cost import graph
from hubensemble.cost.stage import format_costs, module_cost, run_cost
from hubensemble.errors import RunError
from hubensemble.hub import write_hub_module
from hubensemble.rundir import DataArgs, Run


def hand_macs_of_conv_net():
    """conv 3x3 'same' 3->8 at 16x16; depthwise 3x3 stride 2 'valid' (-> 7x7, 8 channels);
    conv 1x1 8->4; global average pool; dense 4->5."""
    return 16 * 16 * 8 * (3 * 3 * 3) + 7 * 7 * 8 * (3 * 3) + 7 * 7 * 4 * 8 + 4 * 5


def conv_net():
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)
    x = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(5, activation="softmax")(x))


def test_the_flops_of_a_tiny_conv_net_equal_a_hand_count():
    model = conv_net()
    macs, by_op = graph.count_macs(graph.image_function(model, 16))
    assert macs == hand_macs_of_conv_net() == 60412
    assert by_op == {"Conv2D": 16 * 16 * 8 * 27 + 7 * 7 * 4 * 8,
                     "DepthwiseConv2dNative": 7 * 7 * 8 * 9, "MatMul": 20}
    # parameters: kernels + biases of each layer
    assert graph.count_params(model) == (27 * 8 + 8) + (9 * 8 + 8) + (8 * 4 + 4) + (4 * 5 + 5)
    assert Cost("m", None, 16, 5, macs=macs, params=1).flops == 2 * 60412


def test_batch_matmul_and_einsum_are_counted_by_their_contraction():
    import tensorflow as tf

    a = tf.constant(np.ones((4, 6), np.float32))

    @tf.function(input_signature=[tf.TensorSpec([2, 3, 4], tf.float32)])
    def fn(x):
        y = tf.matmul(x, tf.ones([2, 4, 5]))        # batch 2 x [3, 4] @ [4, 5]: 2*3*5*4
        z = tf.einsum("bij,jk->bik", x, a)            # 2*3*4*6
        return tf.reduce_sum(y) + tf.reduce_sum(z)

    macs, by_op = graph.count_macs(fn.get_concrete_function())
    assert macs == 2 * 3 * 5 * 4 + 2 * 3 * 4 * 6
    assert set(by_op) <= {"BatchMatMulV2", "BatchMatMulV3", "Einsum", "MatMul"}


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    """A reusable SavedModel: conv 3x3 'same' 3->8 + ReLU + global average pool (8-d)."""
    return write_hub_module(make_tiny_model(seed=0, width=8),
                            str(tmp_path_factory.mktemp("cost") / "conv8"))


def test_a_hub_module_with_its_head_is_counted_at_the_serving_resolution(module_dir, tmp_path):
    spec = ModuleSpec(name="conv8", handle=module_dir)
    machine = {**machine_info(), "id": "machine-a"}
    cost, hit = module_cost(spec, 3, 12, cache_dir=tmp_path, machine=machine)
    assert not hit
    assert cost.macs == 12 * 12 * 8 * 27 + 8 * 3      # the module at 12 px + the 8 -> 3 head
    assert cost.params == (27 * 8 + 8) + (8 * 3 + 3)
    assert set(cost.latency_ms) == {"1", "64"} and all(v > 0 for v in cost.latency_ms.values())
    assert cost.machine == "machine-a" and cost.size == 12 and cost.fingerprint
    # A module that takes a fixed input size is resized to it inside: counted at 24 px.
    fixed = ModuleSpec(name="conv8-24", handle=module_dir, input_size=(24, 24))
    cost24, _ = module_cost(fixed, 3, 12, cache_dir=tmp_path, machine=machine, latency=False)
    assert cost24.macs == 24 * 24 * 8 * 27 + 8 * 3 and cost24.latency_ms == {}


def test_a_signature_modules_own_variables_are_counted_once(tmp_path):
    # A tf.Module saved by tf.saved_model.save exposes no `variables`: cost.json counted the
    # head alone (51 where its module held 1,368 more).
    import tensorflow as tf

    module = tf.Module()
    built = [tf.Variable(tf.random.stateless_normal([3, 3, 3, 6], [1, 0]), name="kernel"),
             tf.Variable(tf.zeros([6]), name="bias"),
             tf.Variable(tf.random.stateless_normal([6, 4], [2, 0]), name="project")]
    module.kernel, module.bias, module.project = built
    module.__call__ = tf.function(
        lambda x: tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, module.kernel, 1, "SAME")
                                            + module.bias), [1, 2]) @ module.project,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "plain"))
    own = sum(int(np.prod(v.shape)) for v in built)
    head = 4 * 3 + 3
    cost, _ = module_cost(ModuleSpec(name="plain", handle=str(tmp_path / "plain")), 3, 12,
                          cache_dir=tmp_path / "cache", latency=False)
    assert cost.params == own + head
    # A model.export() exposes its variables and its signature reads them: counted once.
    inp = keras.Input((None, None, 3))
    export_quietly(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(6, 3)(inp))), str(tmp_path / "exported"))
    cost, _ = module_cost(ModuleSpec(name="exported", handle=str(tmp_path / "exported")), 3,
                          12, cache_dir=tmp_path / "cache", latency=False)
    assert cost.params == (27 * 6 + 6) + (6 * 3 + 3)


def test_counts_are_cached_by_module_and_resolution_latency_by_machine(module_dir, tmp_path):
    spec = ModuleSpec(name="conv8", handle=module_dir)
    a = {**machine_info(), "id": "machine-a"}
    first, hit = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a)
    again, hit_again = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a)
    assert (hit, hit_again) == (False, True)
    assert again.to_json() == first.to_json()
    # Another machine reuses the count but measures its own latency; both stay cached.
    b = {**machine_info(), "id": "machine-b"}
    other, hit_b = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=b)
    assert not hit_b and other.macs == first.macs and other.machine == "machine-b"
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
             if f.endswith(".json")]
    assert len(files) == 1
    with open(files[0]) as f:
        assert set(json.load(f)["latency"]) == {"machine-a", "machine-b"}
    # Another resolution or class count is another entry.
    assert module_cost(spec, 4, 10, cache_dir=tmp_path, machine=a)[0].macs == \
        10 * 10 * 8 * 27 + 8 * 4
    # An older counting rule's entry: counted again, but its latency on this machine is a
    # measurement no rule changes, so it is taken, not timed again (re-timed, it changed
    # RUN/cost.json, and fit then redid the ensemble, the export and the evaluation).
    from hubensemble.cost.records import COUNT_VERSION, cache_key
    from hubensemble.hub.locate import default_call, locate_spec

    module_key, output_key = default_call(locate_spec(spec), spec.output_key)
    key = cache_key(module_key, 10, 3, output_key=output_key)
    assert files[0].endswith(key + ".json")
    older = os.path.join(tmp_path, "older", "entry.json")
    os.makedirs(os.path.dirname(older))
    os.replace(files[0], older)
    old_key = cache_key(module_key, 10, 3, output_key=output_key, count=COUNT_VERSION - 1)
    os.makedirs(os.path.join(tmp_path, old_key[:2]), exist_ok=True)
    os.replace(older, os.path.join(tmp_path, old_key[:2], old_key + ".json"))
    recount, hit = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a)
    assert not hit and recount.to_json() == first.to_json()
    assert module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a) == (recount, True)


def test_cost_records_totals_and_limits():
    a = Cost("a", "fa", 32, 10, macs=1_000_000, params=100, latency_ms={"1": 2.0, "64": 20.0})
    b = Cost("b", "fb", 64, 10, macs=3_000_000, params=300, latency_ms={"1": 3.0})
    assert Cost.from_json(json.loads(json.dumps(a.to_json()))) == a
    total = total_cost([a, b])
    assert total == {"members": 2, "flops": 8_000_000, "gflops": 0.008, "params": 400,
                     "latency_ms": {"1": 5.0}}
    with pytest.raises(ValueError):
        total_cost([])
    with pytest.raises(ValueError, match="must be a number > 0"):
        Limits(gflops=0)
    with pytest.raises(ValueError, match="integer >= 1"):
        Limits(members=0)
    limits = Limits(gflops=0.008, members=2)
    assert limits.fits({"gflops": 0.008, "latency_ms": 1e9, "members": 2})
    assert not limits.fits({"gflops": 0.0081, "latency_ms": 0, "members": 1})
    assert limits.flags() == "max_gflops=0.008, max_members=2"  # a Python caller's words
    from hubensemble.lockwords import command_line
    with command_line():
        assert limits.flags() == "--max-gflops 0.008 --max-members 2"
    with pytest.raises(ValueError, match="malformed"):
        Cost.from_json({"size": 1, "num_classes": 2, "macs": -1, "params": 0})


def fake_run(path, modules, trials):
    """A run directory as tune leaves it, without training: run.json with the modules'
    catalogue entries, labels and one candidate per (trial, module, eval size) with uniform
    probabilities (costs depend on the module, the size and the classes only)."""
    run = Run(path)
    run.path.mkdir(parents=True)
    run.update(modules={n: s.to_json() for n, s in modules.items()})
    (run.path / "labels").mkdir()
    np.save(run.path / "labels" / "val.npy", np.arange(6) % 3)
    for trial, module, size in trials:
        candidate.write_candidate(run.candidates, {
            "trial": trial, "module": module, "handle": modules[module].handle, "status": "ok",
            "has_test": False, "eval_size": size, "hparams": {}},
            val_probs=np.full((6, 3), 1 / 3, np.float32))
    return run


def test_the_cost_pass_costs_each_module_once_and_reports_failures(module_dir, tmp_path):
    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir),
               "gone": ModuleSpec(name="gone", handle=str(tmp_path / "no-such-module"))}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 8),
                                               ("t2", "conv8", 16), ("t3", "gone", 8)])
    summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert summary.counted == 2 and summary.cached == 0
    assert set(summary.costs) == {"t0", "t1", "t2"}
    assert summary.costs["t0"].macs == 8 * 8 * 8 * 27 + 24
    assert summary.costs["t2"].macs == 16 * 16 * 8 * 27 + 24
    assert [f["module"] for f in summary.failed] == ["gone"]
    recorded = read_run_costs(run.path)
    assert set(recorded.costs) == {"t0", "t1", "t2"} and set(recorded.failed) == {"t3"}
    assert recorded.machine["id"] == machine_info()["id"]
    text = format_costs(summary)
    assert "conv8" in text and "not costed: gone" in text
    again = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert again.cached == 2 and again.counted == 0
    # A damaged cost.json, which every reader names with this command as the way on, is
    # moved aside (kept) and written again (test_cost_damage.py says more).
    (run.path / "cost.json").write_text('{"format": "hubensemble-cost", "candidates": 3}')
    assert set(run_cost(run.path, cache_dir=tmp_path / "cache", progress=False).costs) == {
        "t0", "t1", "t2"}
    assert [p.name[:len("cost.json.damaged-")] for p in run.path.glob("cost.json.*")] == [
        "cost.json.damaged-"]


def test_the_cost_pass_reads_no_data_unless_a_candidate_lacks_its_size(module_dir, tmp_path):
    """cost reads no image (a candidate's cost depends on its module, trial.json's eval_size
    and its classes), so a run whose data changed on disk is costed: fake_run records no data
    at all. Only a candidate of an older tune, without eval_size, loads the task to compute
    its size, and then the data check of the other stages refuses changed data."""
    from PIL import Image

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8)])
    d = tmp_path / "d"
    for i, c in enumerate("abc"):
        (d / c).mkdir(parents=True)
        for j in range(10):
            Image.new("RGB", (8, 8), (20 * i, 20 * j, 0)).save(d / c / f"{j}.png")
    args = DataArgs(spec=f"folder:{d}")
    run.attach_task(args.load(), args)
    Image.new("RGB", (8, 8), (255, 255, 255)).save(d / "a" / "0.png")  # the data changed
    assert set(run_cost(run.path, cache_dir=tmp_path / "cache", progress=False).costs) == {"t0"}
    record = json.loads((run.candidates / "t0" / "trial.json").read_text())
    record.pop("eval_size")  # as an older tune wrote it
    (run.candidates / "t0" / "trial.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match=r"is not what the run started on \(1 of the"):
        run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)


def test_an_unreadable_cost_file_names_the_command(tmp_path):
    (tmp_path / "cost.json").write_text("{not json")
    with pytest.raises(RunError, match=r"run_cost\(run_dir="):  # a Python caller's words
        read_run_costs(tmp_path)


@pytest.mark.parametrize("text, key", [
    ('{"format": "hubensemble-cost", "candidates": 3}', "'candidates' is a JSON number"),
    ('{"format": "hubensemble-cost", "failed": ["x"]}', "'failed' is a JSON array"),
    ('{"format": "hubensemble-cost", "machine": "cpu"}', "'machine' is a JSON string"),
    ('{"format": "hubensemble-cost", "candidates": {"t": [1]}}', "candidate t: malformed"),
    ('{"format": "hubensemble-cost", "candidates": {"t": {"size": 1, "num_classes": 2, '
     '"macs": 1, "params": 1, "latency_ms": "3"}}}', "candidate t: malformed")])
def test_a_cost_file_of_valid_json_of_the_wrong_kind_names_the_key(tmp_path, text, key):
    # Valid JSON of another shape was an AttributeError traceback in every command reading it.
    (tmp_path / "cost.json").write_text(text)
    with pytest.raises(RunError, match=f"{re.escape(key)}.*run_cost\\(run_dir="):
        read_run_costs(tmp_path)


def test_a_cost_cache_that_cannot_be_written_warns_once_and_costs(module_dir, tmp_path,
                                                                  monkeypatch, in_process):
    """A new-user check: HUBENSEMBLE_COST_CACHE naming a file made `hubensemble cost --run RUN`
    (and fit's cost stage) end in a 20-line NotADirectoryError traceback, exit 1, RUN/log.txt
    ending at "cost: starting"; on a read-only mount the stage stopped with one line. A
    cache only costs speed: one warning naming the variable, and the costs are measured."""
    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir),
               "wide": ModuleSpec(name="wide", handle=module_dir, input_size=(16, 16))}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "wide", 8)])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HUBENSEMBLE_COST_CACHE", str(blocker))
    code, out, err = in_process("cost", "--run", run.path)
    assert code == 0, err
    assert set(read_run_costs(run.path).costs) == {"t0", "t1"}
    said = [line for line in err.splitlines() if "cannot be written" in line]
    assert len(said) == 1, err  # once, not per module
    assert f"cost cache {blocker}" in said[0] and "HUBENSEMBLE_COST_CACHE" in said[0]
    assert "Traceback" not in err
    log = (run.path / "log.txt").read_text()
    assert "cost cache" in log and "HUBENSEMBLE_COST_CACHE" in log


def test_cost_writes_the_runs_report_again(module_dir, tmp_path, in_process):
    """`cost` left RUN/report.md and report.html without the costs it measured:
    a report the run has is written again at its end (refresh.refresh_report), and the
    command says where it is."""
    from hubensemble.ensemble import run_ensemble
    from hubensemble.report import write_report

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8)])
    run_ensemble(run.path)
    md, html = write_report(run.path)

    def cost_section(text):
        return text.split("## Inference cost", 1)[1].split("\n## ", 1)[0]

    assert "cost.json is missing" in cost_section(md.read_text())
    code, out, err = in_process("cost", "--run", run.path)
    assert code == 0, err
    shown = cost_section(md.read_text())
    cost = read_run_costs(run.path).costs["t0"]
    assert f"{cost.gflops:.4g}" in shown or f"{cost.gflops:.3f}" in shown, shown
    assert "cost.json is missing" not in shown
    assert f"report written again, so that it shows the costs: {html}" in err


def test_the_cost_summary_names_cost_json_absolute(module_dir, tmp_path, monkeypatch):
    """A new-user check: `cost --run runs/own5` printed "wrote runs/own5/cost.json", a path
    of the working folder only, where export and report print theirs absolute."""
    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    fake_run(tmp_path / "runs" / "own5", modules, [("t0", "conv8", 8)])
    monkeypatch.chdir(tmp_path)
    summary = run_cost(os.path.join("runs", "own5"), cache_dir=tmp_path / "cache",
                       progress=False)
    assert summary.path == str(tmp_path / "runs" / "own5" / "cost.json")
    assert format_costs(summary).endswith(f"\nwrote {tmp_path / 'runs' / 'own5' / 'cost.json'}")


def test_a_cost_file_of_an_older_counting_rule_is_said_and_counted_again(
        module_dir, tmp_path, caplog):
    """RUN/cost.json of the counting rule before 84f88eb (a signature module's params not
    counted) was read as is by every stage, and `cost` kept its counts of candidates outside
    the pool. It records its rule ("count_version") now; an older one, or none, is said once
    per file, and `cost` counts the pool again and keeps none of the older counts."""
    import logging

    from hubensemble.cost.records import COUNT_VERSION, _SAID_OUTDATED, figures_digest

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8)])
    run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    path = run.path / "cost.json"
    written = json.loads(path.read_text())
    assert written["count_version"] == COUNT_VERSION
    figures = figures_digest(run.path)  # fit keeps what read them while it stays the same
    assert read_run_costs(run.path).outdated() is None
    for rule in (1, None):
        older = json.loads(path.read_text())
        older["count_version"] = rule
        if rule is None:
            older.pop("count_version")
        older["candidates"]["t9"] = dict(older["candidates"]["t0"], params=1)  # not in pool
        path.write_text(json.dumps(older))
        _SAID_OUTDATED.discard(str(path))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hubensemble"):
            assert read_run_costs(run.path).outdated()
            read_run_costs(run.path)  # said once
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and said[0].startswith(f"{path}: its counts are of ")
        assert (f"counting rule {rule}" if rule else "no counting rule") in said[0]
        assert "as from hubensemble 0.2.0" in said[0] and "84f88eb" not in said[0]
        # From Python, the call that counts them again (the command on the command line).
        assert said[0].endswith(f"run_cost(run_dir={str(run.path)!r}) counts them again")
        # The call that counts them again does not tell the user to run itself (it did, in
        # the middle of its recount: a new user's find), and says what it does in the log.
        _SAID_OUTDATED.discard(str(path))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hubensemble"):
            run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
        said = [r.getMessage() for r in caplog.records]
        assert not [line for line in said if "counts them again" in line], said
        assert f"{path}: its counts are of " in "\n".join(said) and any(
            line.endswith("; counting them again") for line in said), said
        again = read_run_costs(run.path)
        assert set(again.costs) == {"t0"} and again.outdated() is None
        assert figures_digest(run.path) == figures  # the same figures, a newer rule's label


def test_a_written_out_default_signature_or_layer_shares_the_count(tmp_path):
    """A SavedModel entry writing out `signature: serving_default` (what `catalogue add`
    writes) got a cost cache entry of its own, counted again; a Keras file's entries of two
    layers shared one (their params differ). The key is the call with written-out defaults
    left out (hub.locate.default_call), as the embedding cache's."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(keras.layers.Conv2D(4, 3)(inp))
    export_quietly(keras.Model(inp, x), str(tmp_path / "exported"))
    x = keras.layers.Dense(3, name="mid")(x)
    keras.Model(inp, keras.layers.Dense(2, name="head")(x)).save(tmp_path / "m.keras")
    cache = tmp_path / "cache"

    def cost(handle, **fields):
        return module_cost(ModuleSpec(name="m", handle=str(handle), **fields), 3, 8,
                           cache_dir=cache, latency=False)

    first, hit = cost(tmp_path / "exported")
    again, hit_again = cost(tmp_path / "exported", signature="serving_default",
                            output_key="output_0")
    assert (hit, hit_again) == (False, True)
    assert (again.macs, again.params) == (first.macs, first.params)
    plain, hit = cost(tmp_path / "m.keras")
    written, hit_written = cost(tmp_path / "m.keras", layer="mid")
    assert (hit, hit_written) == (False, True) and written.params == plain.params
    other, hit_other = cost(tmp_path / "m.keras", layer="gap")  # another cut, another count
    assert not hit_other and other.params != plain.params
    # An entry hubensemble before 5adff17 wrote for the written-out call was keyed with the
    # fields as written (its fingerprint with them, the output key as given): it is read as
    # this call's, not counted again (it was: a miss).
    from hubensemble.cost.records import _cache_file, cache_key
    from hubensemble.hub.locate import locate_spec

    for handle, fields, counted in (
            ("exported", {"signature": "serving_default", "output_key": "output_0"}, first),
            ("m.keras", {"layer": "mid"}, plain)):
        spec = ModuleSpec(name="m", handle=str(tmp_path / handle), **fields)
        as_written = cache_key(locate_spec(spec).fingerprint, 8, 3,
                               output_key=fields.get("output_key"))
        os.makedirs(os.path.dirname(_cache_file(cache, as_written)), exist_ok=True)
        os.replace(_cache_file(cache, cache_key(counted.fingerprint, 8, 3)),
                   _cache_file(cache, as_written))
        old, hit_old = cost(tmp_path / handle, **fields)
        assert hit_old and (old.macs, old.params, old.head_macs) == (
            counted.macs, counted.params, counted.head_macs)


def test_time_batches_times_the_call_on_one_batch_made_before_the_timing():
    """An export's latency was timed on a NumPy batch that the call converted to a new tensor
    every time (64 phone photos: 1.07 GB float32 copied per call, 5 GB resident); a tensor's
    batch is now a tensor made once per batch size, holding the first `batch` images tiled;
    a NumPy batch stays NumPy, exactly `batch` images."""
    import tensorflow as tf

    from hubensemble.cost.graph import time_batches

    images = np.random.default_rng(0).random((3, 5, 4, 3), dtype=np.float32)
    want = {b: np.concatenate([images] * 3)[:b] for b in (1, 2, 7)}
    for given, kind in ((tf.constant(images), tf.Tensor), (images, np.ndarray)):
        seen = {}

        def call(x):
            seen.setdefault(int(x.shape[0]), []).append(x)
            return x

        got = time_batches(call, given, (1, 2, 7), max_seconds=0.0)
        assert set(got) == {"1", "2", "7"} and all(v >= 0 for v in got.values())
        for b, xs in seen.items():
            assert all(x is xs[0] for x in xs)  # the same batch every call, none converted
            assert isinstance(xs[0], kind)
            np.testing.assert_array_equal(np.asarray(xs[0]), want[b])


def _resident_mb() -> float:
    """This process's resident memory (VmRSS, /proc/self/status) in MB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_time_batches_gives_its_batch_back_when_the_timing_ends():
    """The export timed serving_default on a tf.gather of the check images tiled to 64, and
    TensorFlow's CPU allocator (oneDNN's, which caches) kept its bytes resident after it was
    freed: 64 phone photos, 1.07 GB more resident through evaluate after the export. The
    tensor's memory is now a NumPy array's, given back at the end; the call sees the same
    batch (test_time_batches_times_the_call_on_one_batch_made_before_the_timing)."""
    import tensorflow as tf

    from hubensemble.cost.graph import time_batches

    images = tf.constant(np.random.default_rng(0).random((2, 640, 600, 3), dtype=np.float32))
    batch = 64 * 640 * 600 * 3 * 4 / 2**20  # 281 MB
    seen = []
    before = _resident_mb()
    tracemalloc.start()
    try:
        time_batches(lambda x: seen.append(float(x[-1, 0, 0, 0])), images, (64,),
                     max_seconds=0.0)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert _resident_mb() - before < batch / 4
    assert peak < 1.25 * batch  # one batch, no second copy while it is made
    assert seen[0] == float(images[1, 0, 0, 0])


# A TFLite call of the tests' two tiny modules took 0.0149 ms (its interpreter, measured
# apart from hubensemble: 0.014-0.018 ms), which `export --format tflite` printed as 0.01 ms;
# a figure under 0.005 printed as 0.00. Figures spanning 1e-5 .. 1e4 ms (or GFLOPs).
FIGURES = [0.0000123, 0.000470256, 0.00412, 0.0149, 0.0165, 0.351, 0.99, 5.69, 60.8164, 9876.5]


def _numbers(text):
    return [float(v) for v in re.findall(r"\d+\.\d+|\d+", text)]


def _close(shown, recorded):
    assert abs(float(shown) - recorded) <= 0.005 * recorded, (shown, recorded)


@pytest.mark.parametrize("value", FIGURES)
def test_every_printed_cost_figure_reads_back_within_half_a_percent_of_the_recorded(
        value, tmp_path):
    """Latency and GFLOPs as `export --format tflite`, `hubensemble cost`, `ensemble`,
    `distill` and the report print them: each reads back within 0.5 % of the recorded figure
    (3 significant digits; they had a fixed 1, 2 or 4 decimals, so 0.0149 ms read 0.01 and
    0.00412 0.00), and so does the TFLite model's size in MB."""
    from hubensemble.cost import figure
    from hubensemble.cost.stage import CostSummary
    from hubensemble.distill import format_distill
    from hubensemble.ensembletext import _cost_lines
    from hubensemble.export.tflite import format_tflite
    from hubensemble.report.costs import cost_row

    assert figure(None) == "–"
    _close(figure(value), value)
    _close(figure(value, 4), value)
    # `export --format tflite`: batch 1 then 64, TFLite then the SavedModel.
    lat = {"tflite": {"1": value, "64": 2 * value},
           "savedmodel": {"1": 3 * value, "64": 4 * value}}
    size = max(1, round(value * 1e6))  # bytes: a 12,488-byte model was "0.01 MB"
    text = format_tflite({"quantize": "none", "model": "m.tflite", "size_bytes": size,
                          "input_size": [8, 8], "max_abs_diff": 0.0, "tolerance": 1e-4,
                          "agreement": 1.0, "images": 32, "latency_ms": lat,
                          "runtime": "LiteRT"})
    _close(text.split("(", 2)[2].split(" MB")[0], size / 1e6)
    line = text.splitlines()[1]
    shown = _numbers(line.split(":", 1)[1].split("(")[0])
    assert len(shown) == 5 and shown[2] == 64
    for got, want in zip(shown[:2] + shown[3:], [value, 3 * value, 2 * value, 4 * value]):
        _close(got, want)
    # `hubensemble cost`: GFLOPs, params, ms at batch 1 and 64.
    cost = Cost(module="m", fingerprint=None, size=8, num_classes=2,
                macs=round(value * 1e9 / 2), params=7, latency_ms={"1": value, "64": 2 * value})
    summary = CostSummary(path=str(tmp_path / "cost.json"), costs={"t0": cost}, counted=1,
                          cached=0, failed=[], machine={"cpu": "x", "cores": 2}, seconds=1.0)
    row = format_costs(summary).splitlines()[1].split()
    for got, want in zip([row[2], row[4], row[5]], [cost.gflops, value, 2 * value]):
        _close(got, want)
    # The report's cost table: GFLOPs, ms @1, ms @64.
    record = {"gflops": value, "params": 7, "latency_ms": {"1": value, "64": 2 * value}}
    cells = cost_row("ensemble", 2, record, None, None)
    for got, want in zip([cells[2], cells[4], cells[5]], [value, value, 2 * value]):
        _close(got, want)
    # `hubensemble ensemble`'s cost line.
    line = _cost_lines({"cost": {"ensemble": record}})[0]
    _close(line.split(", ")[-1].split(" ms")[0], value)
    # `hubensemble distill`'s table: GFLOPs and ms @1 of each row.
    test = {"accuracy": 0.8, "nll": 0.5, "ece": 0.05}
    table = format_distill({
        "student": {"module": "s", "test": test, "cost": record, "path": "distill/s",
                    "steps": 40, "seconds": 1.0, "init_from": None},
        "best_single": {"trial": "t0", "test": test, "cost": record},
        "ensemble": {"members": ["t0", "t1"], "test": test, "cost": record},
        "teacher": {"export": "/x", "members": ["t0", "t1"]}}).splitlines()
    for row in table[1:4]:
        _close(row.split()[-2], value)
        _close(row.split()[-1], value)


def test_a_gflops_limit_no_module_can_fit_is_refused_before_the_sweep(module_dir, tmp_path):
    # `fit … --max-gflops 1e-7` was refused only after the whole tune (31 s on digits, hours
    # on real data): no candidate of any module can cost less than the module with its head
    # at its serving size, so the refusal can come once those are known (before the sweep).
    # Fails before: no such check (cost.stage.check_budget_before_tune, budget.no_module_fits).
    from hubensemble.cost.budget import no_module_fits, rounded_up
    from hubensemble.cost.stage import check_budget_before_tune
    from hubensemble.data import Split, Task
    from hubensemble.tune import eval_size

    spec = ModuleSpec(name="conv8", handle=module_dir)
    images = np.zeros((6, 12, 12, 3), np.uint8)
    task = Task(name="t", source="test", class_names=["a", "b", "c"],
                train=Split(images=images, labels=np.arange(6, dtype=np.int64) % 3))
    size = int(eval_size(task, spec, "quick"))
    macs = size * size * 8 * 27 + 8 * 3  # the module at its serving size + the 8 -> 3 head
    with pytest.raises(RunError) as refused:
        check_budget_before_tune([spec], task, "quick", 1e-7, cache_dir=tmp_path)
    assert str(refused.value) == (
        "no module fits max_gflops=1e-07: the one module to tune, conv8, needs "
        f"{2 * macs / 1e9:.4g} GFLOPs per image at {size} px with its head, and no candidate "
        f"of it costs less; pass max_gflops={rounded_up(2 * macs / 1e9)} or more (conv8's), "
        "leave the limit out or rank other modules, before the sweep is run")
    fits = check_budget_before_tune([spec], task, "quick", 2 * macs / 1e9, cache_dir=tmp_path)
    assert fits == {"conv8": (pytest.approx(2 * macs / 1e9), size)}
    assert check_budget_before_tune([spec], task, "quick", None, cache_dir=tmp_path) == {}
    # The policy alone: one module within the limit is enough; none costed decides nothing.
    assert no_module_fits({"a": (2.0, 224), "b": (0.5, 160)}, 1.0) is None
    assert "the cheapest of the 2 modules to tune, b, needs 0.5 GFLOPs" in no_module_fits(
        {"a": (2.0, 224), "b": (0.5, 160)}, 0.25)
    assert no_module_fits({}, 0.25) is None and no_module_fits({"a": (2.0, 224)}, None) is None


def test_no_module_fits_names_the_flag_and_a_value_that_passes():
    # It said "raise the limit": which flag, to what? The cheapest module's figure, rounded up
    # so that it passes, with the flag on the command line. Fails before: "raise the limit".
    from hubensemble.cost.budget import no_module_fits
    from hubensemble.lockwords import command_line

    with command_line():
        said = no_module_fits({"a": (2.0, 224), "b": (0.5123456, 160)}, 0.25)
    assert said.endswith("; pass --max-gflops 0.5124 or more (b's), drop the flag or rank "
                         "other modules, before the sweep is run")
    assert no_module_fits({"a": (2.0, 224), "b": (0.5123456, 160)}, 0.5124) is None


@pytest.mark.parametrize("damage", [
    {"macs": "abc"}, {"macs": 1e400}, {"latency": [1]}, {"latency": {"machine-a": 5}},
    {"latency": {"machine-a": {"1": 0.5}}}])
def test_a_damaged_cost_cache_entry_is_counted_and_timed_again(module_dir, tmp_path, damage):
    """A cache entry of valid JSON and another shape (a count that is a string or past a
    float; a latency that is no {batch: ms}) was a traceback (ValueError, OverflowError,
    AttributeError, TypeError) in `cost` and fit's cost stage, one without batch 64 was taken:
    such an entry is unreadable, as a cut one is, and measured again; the entry written
    then is whole. Fails before: each raised (the last gave a cost without its 64)."""
    spec = ModuleSpec(name="conv8", handle=module_dir)
    a = {**machine_info(), "id": "machine-a"}
    first, _ = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a)
    files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
             if f.endswith(".json")]
    with open(files[0]) as f:
        whole = json.load(f)
    with open(files[0], "w") as f:
        f.write(json.dumps({**whole, **damage}).replace("Infinity", "1e400"))
    again, hit = module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a)
    assert not hit and again.macs == first.macs == 10 * 10 * 8 * 27 + 8 * 3
    assert again.params == first.params and set(again.latency_ms) == {"1", "64"}
    assert module_cost(spec, 3, 10, cache_dir=tmp_path, machine=a) == (again, True)


@pytest.mark.parametrize("field, value, said", [
    ("macs", 1e400, "its 'macs' is Infinity"), ("size", 0, "its 'size' is 0"),
    ("num_classes", -1, "its 'num_classes' is -1")])
def test_a_cost_file_count_past_a_float_or_a_size_below_1_names_the_candidate(
        tmp_path, field, value, said):
    # "macs": 1e400 (JSON's number past a float) was an OverflowError traceback in every
    # reader of cost.json; a size of 0 px was taken. Fails before: both.
    record = Cost("m", None, 8, 3, macs=10, params=1).to_json()
    text = json.dumps({"format": "hubensemble-cost", "candidates": {
        "t0": {**record, field: value}}}).replace("Infinity", "1e400")
    (tmp_path / "cost.json").write_text(text)
    with pytest.raises(RunError, match=f"candidate t0: malformed cost record: {said}.*"
                                       r"run_cost\(run_dir="):
        read_run_costs(tmp_path)


def test_the_cost_pass_names_the_candidates_it_cannot_use(module_dir, tmp_path, caplog):
    """A candidate with a damaged trial.json was left out of RUN/cost.json without a word
    (ensemble names it; cost said nothing): the pass goes on and says which, why and where,
    in the log and in its summary (a trial that failed, which tune said, is not said again).
    Fails before: no word of t1."""
    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 8)])
    (run.candidates / "t1" / "trial.json").write_text("{cut")
    candidate.write_candidate(run.candidates, {
        "trial": "t2", "module": "conv8", "handle": module_dir, "status": "failed",
        "reason": "out of memory", "has_test": False, "hparams": {}})
    with caplog.at_level("WARNING", logger="hubensemble.cost.stage"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert set(summary.costs) == {"t0"} and [t for t, _ in summary.skipped] == ["t1"]
    words = (f"1 candidate of {run.candidates} not costed, not usable: t1: trial.json "
             "unreadable (")
    assert any(words in r.getMessage() for r in caplog.records), caplog.text
    assert f"\n  {words}" in format_costs(summary)


@pytest.mark.parametrize("entry, said", [
    ("conv8", "(a JSON string, expected an object)"),
    ({"name": "conv8", "handle": 5}, "(invalid ModuleSpec 'conv8': field 'handle'"),
    ({"name": "conv8", "handle": "h", "bogus": 1}, "(unknown ModuleSpec field 'bogus'")])
def test_a_damaged_catalogue_entry_in_run_json_is_one_line_before_any_cost(
        tmp_path, entry, said):
    # A hand-edited run.json "modules" entry was a ValueError traceback in cost (and fit's
    # cost stage). Fails before: ValueError, not RunError.
    modules = {"conv8": ModuleSpec(name="conv8", handle=str(tmp_path / "m"))}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8)])
    run.update(modules={"conv8": entry})
    with pytest.raises(RunError) as refused:
        run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert str(refused.value).startswith(
        f"{run.path / 'run.json'}: the catalogue entry of module 'conv8' (trial t0) is "
        f"damaged {said}"), refused.value
    assert "restore run.json from a copy, or call run_rank(" in str(refused.value)
    assert not (tmp_path / "cache").exists()


def test_a_gflops_limit_is_refused_before_the_sweep_when_no_module_can_be_costed(tmp_path):
    # `fit --max-gflops 1` with modules none of which can be costed (here: not there) tuned
    # them all, then the ensemble refused: "no candidate has a cost". Fails before: {} was
    # returned and the sweep ran.
    from hubensemble.cost.stage import check_budget_before_tune
    from hubensemble.data import Split, Task

    specs = [ModuleSpec(name=n, handle=str(tmp_path / n)) for n in ("gone", "lost")]
    task = Task(name="t", source="test", class_names=["a", "b", "c"],
                train=Split(images=np.zeros((6, 12, 12, 3), np.uint8),
                            labels=np.arange(6, dtype=np.int64) % 3))
    with pytest.raises(RunError) as refused:
        check_budget_before_tune(specs, task, "quick", 1.0, cache_dir=tmp_path / "cache")
    said = str(refused.value)
    assert said.startswith("max_gflops=1 needs the cost of a candidate, and none of the 2 "
                           "modules to tune can be costed (gone: "), said
    assert "; lost: " in said and said.endswith("fix the modules, or drop the limit, before "
                                                "the sweep is run"), said


def test_a_damaged_catalogue_entry_is_refused_before_tensorflow(module_dir, tmp_path):
    """`cost --run RUN` with run.json's catalogue entry of a candidate's module edited into a
    number: refused after TensorFlow's import (18.3 s, 687 MB), though run.json alone says
    it. Now before (1.9 s, 47 MB), in run_cost's words. Fails before: TensorFlow loaded."""
    from hubensemble.lockwords import command_line
    from test_cli import each_in_one_process

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("seeds-0000-conv8", "conv8", 8)])
    run.update(modules={"conv8": 5})
    with command_line(), pytest.raises(RunError) as refused:
        run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert "catalogue entry of module 'conv8' (trial seeds-0000-conv8) is damaged" in str(
        refused.value), refused.value
    [(code, _, err, tensorflow)] = each_in_one_process(["cost", "--run", run.path])
    assert (code, tensorflow) == (2, False), err
    assert err.endswith(f"error: {refused.value}\n"), err


def _as_tune_wrote(folder, val_probs):
    """`val_probs` as the candidate's validation table, recorded in its trial.json as tune
    records what it wrote (a table changed since is another reason: tune redoes it)."""
    from hubensemble.candidatefiles import record_written

    np.save(folder / "val_probs.npy", val_probs)
    record = json.loads((folder / "trial.json").read_text())
    record_written(record, folder, [n for n in os.listdir(folder) if n != "trial.json"])
    (folder / "trial.json").write_text(json.dumps(record))


def test_the_cost_pass_says_each_unusable_candidates_way_on(module_dir, tmp_path, caplog):
    """cost said the ensemble "says how to redo them", which it did for no reason but a
    damaged table (a new user's check): each reason now carries its way on, as the ensemble's
    skip lines say it: restore or delete a damaged trial.json's folder and run its sweep's
    tune, then cost again; delete the folder of a table of another class count first, as tune
    reuses it. Fails before: no "delete" in the line, and "says how to redo them"."""
    from hubensemble.lockwords import command_line

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    trials = [(f"seeds-000{i}-conv8", "conv8", 8) for i in range(3)]
    run = fake_run(tmp_path / "run", modules, trials)
    (run.candidates / trials[1][0] / "trial.json").write_text('["x"]')
    _as_tune_wrote(run.candidates / trials[2][0], np.full((6, 2), 0.5, np.float32))
    with command_line(), caplog.at_level("WARNING", logger="hubensemble.cost.stage"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    line = format_costs(summary)
    tune = f"run `hubensemble tune --run {run.path} --sweep seeds` (it redoes the trial)"
    bad, other = (run.candidates / t for t, _, _ in trials[1:])
    assert (f"{trials[1][0]}: trial.json is not a JSON object; restore its trial.json from a "
            f"copy, or delete {bad} and {tune}, then this cost again; ") in line, line
    assert (f"{trials[2][0]}: val_probs.npy has 2 classes, the other candidates 3; tune "
            f"reuses a finished trial's folder, so delete {other}, then {tune}, then this "
            "cost again (the ensemble leaves them out too)") in line, line
    assert any("the ensemble leaves them out too)" in r.getMessage() for r in caplog.records)


def test_cost_json_and_run_json_are_named_absolute_from_a_relative_run(
        module_dir, tmp_path, monkeypatch):
    """A new user's check: cost's lines named "rc/cost.json" (a damaged or older cost.json)
    and "the run's task (rc/run.json)" beside the absolute paths of the same lines. Fails
    before: both relative."""
    from hubensemble.cost import cost_path, read_run_costs
    from hubensemble.ensemble import load_candidates

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "rc", modules, [("t0", "conv8", 8), ("t1", "conv8", 8)])
    run.update(data={"task": {"num_classes": 3}})
    _as_tune_wrote(run.candidates / "t1", np.full((6, 2), 0.5, np.float32))
    (run.path / "cost.json").write_text("[1]")
    monkeypatch.chdir(tmp_path)
    assert cost_path("rc") == str(tmp_path / "rc" / "cost.json")
    with pytest.raises(RunError) as refused:
        read_run_costs("rc")
    assert str(refused.value).startswith(str(tmp_path / "rc" / "cost.json")), refused.value
    _, skipped = load_candidates("rc")
    assert f"the run's task ({tmp_path / 'rc' / 'run.json'}) 3" in skipped[0][1], skipped


def test_the_cost_summarys_seconds_are_the_stages_in_run_json_not_the_report_after(
        module_dir, tmp_path):
    """cost's summary said "in 2.0 s" where run.json and the report said 0.9 s for the same
    stage: it counted the report written again after the stage. Both now run from the
    stage's start (`Run.work_started`) and the summary's ends before the report, so it is
    never the later one. Fails before: the summary's seconds exceed run.json's."""
    from hubensemble.fileio import read_json

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8)])
    (run.path / "report.md").write_text("a report, written again after the stage\n")
    summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    recorded = read_json(run.path / "run.json")["stages"]["cost"]["seconds"]
    assert (run.path / "report.html").exists()  # the report was written again
    assert round(summary.seconds, 2) <= recorded, (summary.seconds, recorded)


def test_inside_fit_an_unusable_candidate_is_said_once_by_the_ensembles_line(
        module_dir, tmp_path, caplog):
    """Inside fit, cost's warning and the ensemble's "left out" line both named a damaged
    candidate on the terminal: the ensemble's line (with its way on) says it once; cost on
    its own still warns (`test_the_cost_pass_names_the_candidates_it_cannot_use`), and cost
    keeps its words in the run's log at INFO. Fails before: cost warned of t1 under fit's
    lock too."""
    from hubensemble.ensemble import run_ensemble

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 8)])
    (run.candidates / "t1" / "trial.json").write_text("{cut")
    with caplog.at_level("INFO"), run.lock("fit"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
        run_ensemble(run.path, export_follows=True)
    assert [t for t, _ in summary.skipped] == ["t1"]  # still counted in its summary
    said = [r for r in caplog.records if r.levelname == "WARNING" and "t1: " in r.getMessage()]
    assert [r.name for r in said] == ["hubensemble.ensemble"], [r.getMessage() for r in said]
    assert said[0].getMessage().startswith("the ensemble left out 1 candidate: t1: trial.json")
    assert any(r.name == "hubensemble.cost.stage" and r.levelname == "INFO"
               and "not costed, not usable: t1: " in r.getMessage() for r in caplog.records)


def test_a_cost_pass_that_costs_no_candidate_says_so_and_fit_goes_on(tmp_path, in_process,
                                                                     caplog):
    """`hubensemble cost` over a run whose every module fails printed a cost table with one
    "not costed" line, as if the rest were costed, and fit's cost stage said only each
    module's failure: the summary says no candidate could be costed, each module, its
    candidates and why, that cost.json (written: the ensemble's budget refusal reads it)
    records the reasons, and the way on; fit's stage warns in the same words and goes on (a
    fit without a budget needs no cost). Fails before: no "could be costed" words."""
    modules = {"gone": ModuleSpec(name="gone", handle=str(tmp_path / "no-such-module"))}
    run = fake_run(tmp_path / "run", modules, [("t0", "gone", 8), ("t1", "gone", 8)])
    code, out, err = in_process("cost", "--run", run.path)
    head = (f"no candidate of {run.path} could be costed: the 1 module of its 2 candidates "
            "failed:\n  gone at 8 px (2 candidates: t0, t1): ")
    assert head in out and code == 1, (code, out, err)  # it exited 0
    assert "not costed: gone" not in out and "GFLOPs" not in out  # no table of no rows
    assert f"{run.path / 'cost.json'} records each reason" in out
    assert f"then run `hubensemble cost --run {run.path}` again\n" in out, out
    assert set(read_run_costs(run.path).failed) == {"t0", "t1"}
    # The report said "cost.json is missing" of it.
    from hubensemble.ensemble import run_ensemble
    from hubensemble.report.render import render_markdown
    from hubensemble.report.sections import build_sections

    run_ensemble(run.path)
    md = " ".join(render_markdown(*build_sections(run.path)[:2]).split())
    assert "No inference costs: no candidate could be costed (t0, t1: " in md, md  # once
    assert "cost.json is missing" not in md
    caplog.clear()  # the command's own lines above
    with caplog.at_level("WARNING", logger="hubensemble.cost.stage"), run.lock("fit"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert summary.none_costed and [f["module"] for f in summary.failed] == ["gone"]
    said = [r.getMessage() for r in caplog.records if "could be costed" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        f"no candidate of {run.path} could be costed: the 1 module of its 2 candidates failed "
        "(each said above); ") and said[0].endswith(
        f"call run_cost(run_dir={str(run.path)!r}) again"), said
    # Each module's reason once, in its own warning: not again in the summary's.
    assert sum("no-such-module" in r.getMessage() for r in caplog.records) == 1, caplog.text


def test_a_cost_is_not_taken_for_a_trial_tuned_again_at_another_size(module_dir, tmp_path):
    """RUN/cost.json's cost of a trial was read for it whatever the trial became: tuned
    again at another serving size (another profile, other data) or on other module files,
    the ensemble's budget, the report and distill took the old trial's GFLOPs. A cost whose
    size (or fingerprint) is not the trial's now is left out, with why, and the budget's
    refusal names it and cost; cost again counts the trial as it is. Fails before: t0's
    8 px cost was read for its 16 px trial."""
    from hubensemble.ensemble import run_ensemble

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 8),
                                               ("t2", "conv8", 8)])
    first = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    members = [m["trial"] for m in run_ensemble(run.path)["members"]]
    assert members == ["t0"]  # equal tables: the first
    redone = {"trial": "t0", "module": "conv8", "handle": module_dir, "status": "ok",
              "has_test": False, "eval_size": 16, "hparams": {}}
    candidate.write_candidate(run.candidates, redone,
                              val_probs=np.full((6, 3), 1 / 3, np.float32))
    record = json.loads((run.candidates / "t1" / "trial.json").read_text())
    other = "f" * 64
    assert first.costs["t1"].fingerprint not in (None, other)
    (run.candidates / "t1" / "trial.json").write_text(json.dumps(
        {**record, "module_fingerprint": other}))
    recorded = read_run_costs(run.path)
    assert list(recorded.costs) == ["t2"] and sorted(recorded.stale) == ["t0", "t1"], recorded
    assert recorded.stale["t0"].startswith("its cost is of the trial at 8 px, and the trial "
                                           "now serves at 16 px")
    assert "fingerprint" in recorded.stale["t1"]
    with pytest.raises(RunError) as refused:
        run_ensemble(run.path, max_gflops=1.0)
    assert "2 candidates have no cost in " in str(refused.value)
    assert "(t0: its cost is of the trial at 8 px" in str(refused.value), refused.value
    from hubensemble.report.render import render_markdown
    from hubensemble.report.sections import build_sections

    md = " ".join(render_markdown(*build_sections(run.path)[:2]).split())
    assert ("1 of the 1 members has no measured cost (\"–\") (t0: its cost is of the trial "
            "at 8 px") in md, md
    again = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert again.costs["t0"].size == 16 and again.costs["t0"].macs == 16 * 16 * 8 * 27 + 24
    assert read_run_costs(run.path).costs["t0"].size == 16


def test_candidates_whose_module_fails_now_keep_an_earlier_cost_and_say_so(
        module_dir, tmp_path, in_process):
    """A new-user check: after a fit costed its candidates, every module was damaged and
    `hubensemble cost` said "no candidate … could be costed … cost.json records each reason",
    while cost.json kept every earlier cost (no reason recorded) and the ensemble's budget
    used them. A candidate whose module fails now keeps the cost an earlier pass counted for
    the same trial, and the summary says so (exit 0); with no earlier cost it is "no
    candidate could be costed", exit 1. Fails before: the none-costed words, exit 0."""
    shutil.copytree(module_dir, tmp_path / "m")
    modules = {"conv8": ModuleSpec(name="conv8", handle=str(tmp_path / "m"))}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 8)])
    code, out, err = in_process("cost", "--run", run.path)
    assert code == 0 and set(read_run_costs(run.path).costs) == {"t0", "t1"}, (out, err)
    before = (run.path / "cost.json").read_bytes()
    shutil.rmtree(tmp_path / "m")
    code, out, err = in_process("cost", "--run", run.path)
    assert code == 0 and "could be costed" not in out, (code, out, err)
    assert ("  not costed: conv8 (2 candidates): " in out and "; its 2 candidates keep the "
            "cost an earlier pass counted for the same trial (in cost.json)\n" in out), out
    assert set(read_run_costs(run.path).costs) == {"t0", "t1"}
    assert json.loads((run.path / "cost.json").read_bytes())["candidates"] == json.loads(
        before)["candidates"]


def test_a_budgets_refusal_says_a_reason_shared_by_candidates_once(module_dir, tmp_path):
    """A new-user check: `ensemble --max-gflops` over four candidates of one module whose
    costs are of its old files repeated the same long reason four times. The candidates of
    one reason are named together, the reason once. Fails before: the reason 3 times."""
    from hubensemble.ensemble import run_ensemble

    modules = {"conv8": ModuleSpec(name="conv8", handle=module_dir)}
    trials = [(f"t{i}", "conv8", 8) for i in range(3)]
    run = fake_run(tmp_path / "run", modules, trials)
    run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    for trial, _, _ in trials:  # tuned again on other module files
        path = run.candidates / trial / "trial.json"
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    "module_fingerprint": "f" * 64}))
    with pytest.raises(RunError) as refused:
        run_ensemble(run.path, max_gflops=1.0)
    said = str(refused.value)
    assert "3 candidates have no cost in " in said and "(t0, t1, t2: its cost is of " in said
    assert said.count("its cost is of") == 1, said


def test_least_raise_is_none_when_any_candidate_passes_not_only_the_lowest_in_gflops():
    """`least_raise` is None when a candidate already passes both limits, though another is
    lower in GFLOPs and over the latency limit (nothing to raise): fit's check before
    TensorFlow (`fitbudget`) refuses on it. It looked only at the candidate lowest in GFLOPs
    and named that one's latency. With `whole`, a candidate without a latency also gives None
    (whether it passes is not known); without, it is left out."""
    from types import SimpleNamespace

    from hubensemble.cost.budget import least_raise

    def cost(gflops, ms):
        return Cost("m", None, 32, 10, int(gflops * 1e9 / 2), 1, {"1": ms} if ms else {})

    cands = [SimpleNamespace(trial=t) for t in ("cheap-slow", "dear-fast", "unmeasured")]
    costs = {"cheap-slow": cost(1.0, 10.0), "dear-fast": cost(2.0, 1.0),
             "unmeasured": cost(0.5, None)}
    assert least_raise(cands, costs, Limits(gflops=3.0, latency_ms=5.0)) is None
    over = Limits(gflops=3.0, latency_ms=0.5)
    assert least_raise(cands, costs, over) == ("cheap-slow", {"latency_ms": 10.0})
    assert least_raise(cands, costs, over, whole=True) is None


def test_a_tensorflow_without_its_freezing_counts_params_and_latency_not_macs(
        module_dir, tmp_path, monkeypatch, caplog):
    """cost/graph.frozen_graph imports TensorFlow's internal convert_variables_to_constants_v2
    (setup.cfg's note): on a release that moved it, a CostError names the internal and the
    release. Only the multiply-accumulates need the frozen graph: each module was "not
    costed" all the same (no params, no latency). Now its Cost has macs None with that
    reason, and the params and latency measured; cost.json and the summary say why."""
    import tensorflow as tf
    from moved_internals import moved

    spec = ModuleSpec(name="conv8", handle=module_dir)
    counted, _ = module_cost(spec, 3, 8, cache_dir=tmp_path / "ref", latency=False,
                             use_cache=False)  # the reference, with the internal
    moved(monkeypatch, "tensorflow.python.framework", "convert_to_constants")
    with pytest.raises(graph.CostError) as err:
        graph.count_macs(graph.image_function(conv_net(), 16))
    words = str(err.value)
    assert (f"TensorFlow {tf.__version__} has no convert_variables_to_constants_v2 in "
            "tensorflow.python.framework.convert_to_constants" in words
            and "pip install 'tensorflow>=2.20,<2.22'" in words), words
    modules = {"conv8": spec}
    run = fake_run(tmp_path / "run", modules, [("t0", "conv8", 8), ("t1", "conv8", 16)])
    with caplog.at_level("WARNING"):
        summary = run_cost(run.path, cache_dir=tmp_path / "cache", progress=False)
    assert summary.failed == [] and not summary.none_costed
    assert set(summary.costs) == {"t0", "t1"}
    t0 = summary.costs["t0"]
    assert t0.macs is None and t0.flops is None and t0.gflops is None
    assert "convert_variables_to_constants_v2" in t0.not_counted()
    assert t0.params == counted.params == (27 * 8 + 8) + (8 * 3 + 3)
    assert set(t0.latency_ms) == {"1", "64"} and all(v > 0 for v in t0.latency_ms.values())
    assert any("conv8 (8 px): its multiply-accumulates are not counted (" in r.getMessage()
               for r in caplog.records)
    recorded = read_run_costs(run.path)
    assert recorded.failed == {} and recorded.costs["t1"].macs is None
    assert recorded.costs["t1"].not_counted() == summary.costs["t1"].not_counted()
    data = json.loads((run.path / "cost.json").read_text())["candidates"]["t0"]
    assert data["macs"] is None and data["gflops"] is None
    assert "convert_variables_to_constants_v2" in data["macs_not_counted"]
    text = format_costs(summary)
    # Each reason once. Fails before: "conv8 at 8 px: WHY" and "conv8 at 16 px: WHY".
    assert "GFLOPs not counted: conv8 at 8 px, conv8 at 16 px: TensorFlow " in text, text
    assert text.count("convert_variables_to_constants_v2") == 1, text
    assert re.search(r"conv8 +8 +– +" + f"{t0.params:,}", text), text
    assert not any((tmp_path / "cache").rglob("*.json"))  # not cached: counted next time
