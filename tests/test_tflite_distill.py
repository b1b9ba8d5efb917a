"""Deployment under a budget: the TFLite export (resize as matrices, LiteRT's interpreter, the
check against the SavedModel) and `distill` (a student that reloads and predicts), on a run of
two tiny real modules trained on sklearn's digits."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hubensemble import augment, candidate, ensemble, tune
from hubensemble.catalogue import ModuleSpec
from hubensemble.data import load_task
from hubensemble.errors import RunError
from hubensemble.export import export_ensemble
from hubensemble.export.tflite import TOLERANCES, TFLiteRunner, resize_matrix
from hubensemble.fileio import atomic_write_json, file_sha256, read_json
from hubensemble.formats import export_members_differ, metadata_path, read_export_metadata
from hubensemble.hyperrule import HParams, get_profile
from hubensemble.rundir import DataArgs, Run

QUICK = get_profile("quick")
# (module, ensemble weight): "fixed" takes 24 px and [-1, 1] inputs, so the TFLite model
# resizes the 8 px digits to 24 px with its matrices.
MEMBERS = [("small", 0.6), ("fixed", 0.4)]


@pytest.fixture(scope="module")
def digits():
    return load_task("sklearn:digits")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, module_factory, digits):
    """A run with two tuned candidates whose ensemble.json keeps both (weights 0.6 / 0.4),
    exported as a SavedModel and as TFLite (unquantised) to RUN/export(-tflite)."""
    small = module_factory("tfl_small", seed=4, width=4)
    fixed = module_factory("tfl_fixed", seed=5, width=8)
    specs = {"small": ModuleSpec(name="small", handle=small),
             "fixed": ModuleSpec(name="fixed", handle=fixed, input_size=(24, 24),
                                 value_range="-1,1")}
    path = tmp_path_factory.mktemp("tflite") / "run"
    run = Run(path)
    run.attach_task(digits, DataArgs(spec="sklearn:digits"))
    run.update(modules={n: s.to_json() for n, s in specs.items()})
    for i, (name, _) in enumerate(MEMBERS):
        # 200 steps (not the quick profile's 10) so the members learn something to distil.
        hp = HParams(**{**QUICK.scale({"lr": 0.5, "dropout": 0.0}), "steps": 200}, seed=30 + i)
        entry = tune.PlanEntry(i, tune.trial_id("default", i, name), name, hp)
        record = tune.run_entry(entry, specs[name], digits, run, profile=QUICK,
                                keep_weights="all")
        assert record["status"] == "ok", record["reason"]
    ensemble.run_ensemble(path, budget=2)
    data = read_json(run.ensemble_json)
    cands = {c.trial: c for c in candidate.scan(run.candidates)[0]}
    data["members"] = [
        {"trial": t, "module": cands[t].module, "hparams": cands[t].hparams, "weight": w,
         "handle": cands[t].handle, "seed": cands[t].seed}
        for t, w in ((tune.trial_id("default", i, m), w) for i, (m, w) in enumerate(MEMBERS))]
    atomic_write_json(run.ensemble_json, data)
    export_ensemble(path, task=digits, progress=False, export_format="tflite")
    return path


def val_images(digits, n=64):
    images, _ = next(iter(digits.dataset("val", batch_size=n, cache=False)))
    return images.numpy()


def val_probs(run_path, trial):
    cand = candidate.read_candidate(Run(run_path).candidates, trial)
    assert cand.load_probs() is None
    return cand.val_probs


def member_test_probs(run_path, trial):
    cand = candidate.read_candidate(Run(run_path).candidates, trial)
    assert cand.load_probs() is None
    return cand.test_probs


def kl(p, q):
    """Mean KL(p || q) over rows."""
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def test_resize_matrices_equal_the_antialiased_resize():
    rng = np.random.default_rng(0)
    x = rng.random((2, 20, 13, 3)).astype(np.float32)
    for size in (5, 13, 31):
        a_h, a_w = resize_matrix(20, size), resize_matrix(13, size)
        assert a_h.shape == (size, 20) and a_w.shape == (size, 13)
        got = np.clip(np.einsum("sh,nhwc,tw->nstc", a_h, x, a_w), 0, 1)
        want = augment.resize(x, size).numpy()
        assert np.max(np.abs(got - want)) < 1e-5
    with pytest.raises(ValueError):
        resize_matrix(0, 4)


def test_the_tflite_export_loads_in_litert_and_matches_the_savedmodel(run_dir, digits):
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    meta = Run(run_dir).meta()["export"]
    record = meta["tflite"]
    assert record["quantize"] == "none" and record["max_abs_diff"] <= 1e-4
    assert record["runtime"].startswith("LiteRT")
    assert os.path.getsize(record["model"]) == record["size_bytes"] > 0
    assert record["input_size"] == [8, 8]
    assert set(record["latency_ms"]["tflite"]) == {"1", "64"}
    # Independently of hubensemble's runner: LiteRT's interpreter on the file, 64 val images.
    x = val_images(digits)
    interpreter = litert.Interpreter(model_path=record["model"])
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    loaded = tf.saved_model.load(meta["path"])
    want = loaded.signatures["serving_default"](images=tf.constant(x))["probabilities"].numpy()
    assert got.shape == want.shape == (len(x), 10)
    assert np.max(np.abs(got - want)) <= 1e-4
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # The metadata beside the model, and the cost in the SavedModel's metadata.
    side = read_json(os.path.join(os.path.dirname(record["model"]), "hubensemble.json"))
    assert side["class_names"] == [str(c) for c in digits.class_names]
    assert side["input_size"] == record["input_size"]
    assert side["check"]["max_abs_diff"] == record["max_abs_diff"]
    cost = read_export_metadata(meta["path"])["cost"]
    assert cost["ensemble"]["members"] == 2 and cost["ensemble"]["gflops"] > 0


def test_a_tflite_model_loads_where_python_names_its_folder_by_lone_surrogates(
        run_dir, digits, tmp_path):
    """Under LC_ALL=C PYTHONUTF8=0 Python names 'café' 'caf\\udcc3\\udca9', and TFLiteRunner
    gave that to the interpreter, which refused it with a TypeError (the export's reload check
    of the TFLite model it had just written, under `fit --out 'run→c'`). In this UTF-8 process
    that name reaches the same folder through Python's calls."""
    model = Run(run_dir).meta()["export"]["tflite"]["model"]
    folder = os.path.join(tmp_path, "caf\udcc3\udca9")
    os.mkdir(folder)
    shutil.copy(model, folder)
    x = val_images(digits, 8)
    got = TFLiteRunner(path=os.path.join(folder, os.path.basename(model)))(x)
    np.testing.assert_array_equal(got, TFLiteRunner(path=model)(x))


def test_a_quiet_command_hides_the_tflite_runtimes_native_notice(run_dir):
    import subprocess
    import sys

    from hubensemble import _tf

    # TFLite's C++ "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." (once per
    # process, at the first allocation) was the one line `export --format tflite -q` printed.
    model = Run(run_dir).meta()["export"]["tflite"]["model"]
    code = ("import sys, numpy as np; from hubensemble.export.tflite import TFLiteRunner; "
            "r = TFLiteRunner(path=sys.argv[1]); h, w = r.input_hw; "
            "print(r(np.zeros((2, h, w, 3), np.float32)).shape)")
    out = subprocess.run([sys.executable, "-c", code, model], capture_output=True, text=True,
                         env={**os.environ, _tf.QUIET_ENV: "1"}, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "(2, 10)", out.stderr
    assert "XNNPACK" not in out.stderr and "INFO:" not in out.stderr, out.stderr


def test_a_tflite_model_that_does_not_load_back_is_not_kept_nor_the_model_it_replaced(
        run_dir, digits, tmp_path, monkeypatch, caplog):
    # The check ran on the converter's bytes in memory; the file written was never loaded
    # back, so a model file that was not the one checked (here: cut short on the way to the
    # disk) was kept and recorded as checked. The SavedModel gets a reload check; so does this.
    # And `export --format tflite` replaces the SavedModel first; when the TFLite step then
    # failed, OUT-tflite/ kept the model of the replaced SavedModel (often other members),
    # its hubensemble.json still saying it was checked. A SavedModel-only export removes it.
    # One failed export shows both (they were two tests, an export each: neither the cut
    # model nor the replaced one may be left in OUT-tflite, nor a temp folder).
    from hubensemble import fileio

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    out = tmp_path / "served"
    # OUT and OUT-tflite of an earlier `export --out OUT --format tflite`: the fixture's
    # export, copied there and recorded as that export records itself (an export of its own
    # here was a third of this test's time).
    shutil.copytree(path / "export", out)
    shutil.copytree(path / "export-tflite", f"{out}-tflite")
    Run(path).update(export={**Run(path).meta()["export"], **Run(path).export_record(out)})
    assert os.path.isfile(f"{out}-tflite/model.tflite")
    write = fileio.atomic_write_bytes

    def short(target, data, **kwargs):
        cut = data[: len(data) // 2] if str(target).endswith(".tflite") else data
        write(target, cut, **kwargs)

    monkeypatch.setattr(fileio, "atomic_write_bytes", short)
    # run.json kept the previous export's record (its TFLite model too) after the failed
    # step, while OUT held the new SavedModel: it names what is on disk now.
    run = Run(path)
    run.update(export={**run.meta()["export"], "created": "2000-01-01T00:00:00"})
    with pytest.raises(RunError, match="does not load back|loaded back, differs"), \
            caplog.at_level("WARNING"):
        export_ensemble(path, out, task=digits, progress=False, export_format="tflite")
    assert not os.path.exists(f"{out}-tflite")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
    assert f"removed {out}-tflite" in caplog.text
    assert read_export_metadata(out)["members"]  # the SavedModel written stays
    recorded = run.meta()["export"]
    assert recorded["created"] == read_export_metadata(out)["created"]
    assert recorded["path"] == str(out) and recorded["tflite"] is None


def test_an_unrecorded_exports_rebuilt_record_names_its_tflite_model(run_dir, tmp_path):
    # A fit killed between writing its export and recording it: run.json's record rebuilt
    # from the metadata had "tflite": null though RUN/export-tflite was made by that export.
    from hubensemble.export.adopt import run_json_record

    export = Run(run_dir).export
    recorded = Run(run_dir).meta()["export"]["tflite"]
    rebuilt = run_json_record(export, read_export_metadata(export))
    assert rebuilt["tflite"] == {**recorded, "seconds": None}
    # Another export's TFLite model (its "created" differs) is not named.
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    meta_file = path / "export-tflite" / "hubensemble.json"
    atomic_write_json(meta_file, {**read_json(meta_file), "created": "2000-01-01T00:00:00"})
    assert run_json_record(path / "export", read_export_metadata(path / "export"))[
        "tflite"] is None


@pytest.mark.slow
def test_a_quantised_export_stays_within_its_documented_bound(run_dir, digits, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    unquantised = Run(path).meta()["export"]["tflite"]
    result = export_ensemble(path, tmp_path / "q", task=digits, progress=False,
                             export_format="tflite", quantize="dynamic")
    assert result.tflite["quantize"] == "dynamic"
    assert result.tflite["max_abs_diff"] <= TOLERANCES["dynamic"]
    # The converter leaves tensors under 1,024 weights in float32: these tiny modules barely
    # shrink, so only "not larger" is asserted.
    assert result.tflite["size_bytes"] <= unquantised["size_bytes"]
    runner = TFLiteRunner(path=result.tflite["model"])
    p = runner(val_images(digits, 16))
    assert p.shape == (16, 10) and np.all(np.isfinite(p))


@pytest.mark.slow
def test_distill_writes_a_student_that_reloads_and_predicts(run_dir, digits, tmp_path):
    from hubensemble.cost import read_run_costs
    from hubensemble.distill import format_distill, read_distill, run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    # init "module": the zero head's uniform start that the KL check below compares with,
    # and one student ("best" trained two; test_a_student_started_… covers it).
    result = run_distill(path, task=digits, progress=False, steps_scale=1.0, init="module")
    costs = read_run_costs(path).costs
    members = read_json(Run(path).ensemble_json)["members"]
    cheapest = min(members, key=lambda m: costs[m["trial"]].macs)["module"]
    assert result.student["module"] == cheapest == "small"
    assert read_distill(path)["student"]["trial"] == result.student["trial"]
    assert result.student["cost"]["gflops"] == pytest.approx(
        costs[members[0]["trial"]].gflops)
    assert result.ensemble["members"] == [m["trial"] for m in members]
    # The student is a candidate folder outside RUN/candidates: it reloads and predicts.
    student = candidate.read_candidate(Run(path).distill, result.student["trial"])
    assert student is not None and student.ok and student.weights_path.is_file()
    assert student.trial not in {c.trial for c in candidate.scan(Run(path).candidates)[0]}
    spec = ModuleSpec.from_json(Run(path).meta()["modules"]["small"])
    model = tune.build_classifier(spec, digits.num_classes)
    model.load_weights(student.weights_path)
    probs = tune.predict_probs(model, digits, "val", spec=spec, profile=QUICK, batch_size=64)
    student.load_probs()
    np.testing.assert_allclose(probs, student.val_probs, atol=1e-5)
    # It learnt from the teacher: closer (KL on val) to the members' weighted average than
    # its zero head's uniform start is. (These tiny random-feature modules stay near chance
    # on digits, so accuracy says little here; tools/benchmarks/bench_cost.py measures it.)
    teacher = sum(w * val_probs(path, m["trial"]) for m, w in zip(members, (0.6, 0.4)))
    assert kl(teacher, probs) < 0.8 * kl(teacher, np.full_like(teacher, 0.1))
    assert result.ensemble["cost"]["members"] == 2       # counted although ensemble.json ran
    assert result.cost_ratio > 1                         # before cost.json existed
    text = format_distill(result)
    assert "student (small)" in text and "ensemble (2 members)" in text
    # The gap in test images, McNemar's counts on the members' own test tables.
    g, n = result.gap, len(digits.test)
    y = digits.test.labels
    ens_probs = sum(w * member_test_probs(path, m["trial"])
                    for m, w in zip(members, (0.6, 0.4)))
    single_right = member_test_probs(path, result.best_single["trial"]).argmax(1) == y
    ens_right = ens_probs.argmax(1) == y
    assert g["n"] == n and g["images"] == int(ens_right.sum() - single_right.sum())
    assert g["single_only"] == int(np.sum(single_right & ~ens_right))
    assert g["student_images"] == round(
        (result.student["test"]["accuracy"] - result.best_single["test"]["accuracy"]) * n)
    assert f"McNemar z = {g['z']:.2f}" in text


@pytest.mark.slow
def test_a_student_started_from_its_member_starts_at_the_member_and_moves_to_the_teacher(
        run_dir, digits, tmp_path):
    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    members = read_json(Run(path).ensemble_json)["members"]
    member = members[0]["trial"]                  # the "small" member: the student's module
    start = val_probs(path, member)
    teacher = sum(w * val_probs(path, m["trial"]) for m, w in zip(members, (0.6, 0.4)))

    def student_val(result):
        cand = candidate.read_candidate(Run(path).distill, result.student["trial"])
        assert cand.load_probs() is None
        return cand, cand.val_probs

    # A vanishing learning rate: the student is the member it started from (init "member"),
    # and the pre-trained module's zero head, i.e. uniform, otherwise (init "module").
    still = dict(task=digits, progress=False, steps_scale=0.05, lr_scale=1e-9)
    cand, probs = student_val(run_distill(path, init="member", **still))
    assert cand.record["init"] == "member" and cand.record["init_from"] == member
    np.testing.assert_allclose(probs, start, atol=1e-4)
    cand, probs = student_val(run_distill(path, init="module", **still))
    assert cand.record["init"] == "module" and cand.record["init_from"] is None
    np.testing.assert_allclose(probs, 0.1, atol=1e-4)
    assert np.max(np.abs(probs - start)) > 100 * 1e-4    # the member is not uniform
    # Trained: it moves from the member towards the ensemble's probabilities. 50 steps
    # (steps_scale 0.25; the default 2.0 trains 400) take KL from 0.0075 to 0.0022 here,
    # as far as 400 do (0.0017): a student that does not learn stays at the member's 0.0075.
    cand, probs = student_val(run_distill(path, init="member", task=digits, progress=False,
                                          steps_scale=0.25))
    assert kl(teacher, probs) < kl(teacher, start)
    # "best" trains from both starts and keeps the lower validation cross-entropy (of any
    # schedule: two students of 10 steps each, not of 400).
    cand, probs = student_val(run_distill(path, init="best", task=digits, progress=False,
                                          steps_scale=0.05))
    tried = {t["init"]: t for t in cand.record["init_tried"]}
    assert set(tried) == {"member", "module"} and cand.record["init_rule"] == "best"
    kept = cand.record["init"]
    other = ({"member", "module"} - {kept}).pop()
    assert tried[kept]["val"]["nll"] <= tried[other]["val"]["nll"]
    assert tried[kept]["val"]["nll"] == pytest.approx(
        float(np.mean(-np.log(np.maximum(probs[np.arange(len(probs)), digits.val.labels],
                                         1e-7)))), rel=1e-3)
    with pytest.raises(Exception, match="init must be one of"):
        run_distill(path, init="nowhere", task=digits, progress=False)


def _serve_members_on_test(export_dir, digits):
    """(ensemble [N, C], members [N, M, C]) of the export's serve_members on the test images,
    all at once: independent of distill's batching."""
    loaded = tf.saved_model.load(str(export_dir))
    x = tf.constant(np.asarray(digits.test.images, np.float32) / np.float32(255))
    out = loaded.signatures["serve_members"](images=x)
    return out["probabilities"].numpy(), out["member_probabilities"].numpy()


@pytest.fixture(scope="module")
def retrained(run_dir, tmp_path_factory, digits):
    """(RUN, DistillResult, stderr lines): a copy of `run_dir` exported with --retrain-full,
    then distilled (steps_scale 0.05, init "best", the default), both with their progress
    on, a line per note. Shared by the two tests below, read only (each was an export and a
    distill of its own: two retrainings and four students)."""
    import contextlib
    import io

    from hubensemble import terminal
    from hubensemble.distill import run_distill

    path = tmp_path_factory.mktemp("retrained") / "run"
    shutil.copytree(run_dir, path)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(terminal, "LINE_SECONDS", 0.0)  # a line per note (stderr: no tty)
        mp.delenv("TQDM_MININTERVAL", raising=False)
        export_ensemble(path, task=digits, progress=True, retrain_full=True)
        result = run_distill(path, task=digits, progress=True, steps_scale=0.05, init="best")
    return path, result, err.getvalue().splitlines()


@pytest.mark.slow
def test_distill_under_retrain_full_compares_the_student_with_the_retrained_export(
        retrained, digits, tmp_path):
    from hubensemble.distill import format_distill, read_distill, run_distill
    from hubensemble.metrics import metrics

    # After export --retrain-full the teacher's members were retrained on train + val, but
    # distill compared its student (and counted McNemar's images) with ensemble.json's
    # figures, of the members before retraining: other models than the teacher.
    path, result, _ = retrained
    meta = read_export_metadata(path / "export")
    recorded, before = meta["metrics"]["test"], meta["metrics"]["test_before_retraining"]
    assert recorded["ensemble"]["nll"] != pytest.approx(before["ensemble"]["nll"], abs=1e-4)
    single = result.best_single["trial"]
    assert single == recorded["best_single"]["trial"] == before["best_single"]["trial"]
    for key in ("accuracy", "nll", "ece"):  # the export's own test record
        assert result.ensemble["test"][key] == pytest.approx(recorded["ensemble"][key],
                                                             abs=1e-6)
        assert result.best_single["test"][key] == pytest.approx(
            recorded["best_single"][key], abs=1e-6)
    assert result.ensemble["retrained"] and result.best_single["retrained"]
    # McNemar's counts from the export's own predictions, computed here independently.
    ens, members = _serve_members_on_test(path / "export", digits)
    trials = [m["trial"] for m in meta["members"]]
    y = digits.test.labels
    assert metrics(ens, y)["nll"] == pytest.approx(recorded["ensemble"]["nll"], abs=1e-6)
    single_right = members[:, trials.index(single)].argmax(1) == y
    ens_right = ens.argmax(1) == y
    student = candidate.read_candidate(Run(path).distill, result.student["trial"])
    assert student.load_probs() is None
    g = result.gap
    assert g == {**g, "n": len(y), "single_only": int(np.sum(single_right & ~ens_right)),
                 "ensemble_only": int(np.sum(~single_right & ens_right)),
                 "images": int(ens_right.sum() - single_right.sum()),
                 "student_images": int((student.test_probs.argmax(1) == y).sum()
                                       - single_right.sum())}
    lift = recorded["ensemble"]["accuracy"] - recorded["best_single"]["accuracy"]
    if lift > 0:
        assert result.gap_closed == pytest.approx(
            (result.student["test"]["accuracy"] - recorded["best_single"]["accuracy"]) / lift)
    text = format_distill(read_distill(path))
    assert f"best single ({single}), retrained on train + val" in text
    assert "ensemble (2 members), retrained on train + val" in text
    assert "are the export's, run on the test split" in text
    assert "before retraining" not in text
    # An export whose test record this split does not give (data or export changed since)
    # is refused before the student trains.
    path = tmp_path / "run"
    shutil.copytree(retrained[0], path)
    meta["metrics"]["test"]["ensemble"]["nll"] += 0.01
    atomic_write_json(path / "export" / "assets" / "hubensemble.json", meta)
    with pytest.raises(RunError, match=r"run on the run's test split \(\d+ images\), gives "
                                       r"its ensemble accuracy .* changed since"):
        run_distill(path, task=digits, progress=False, steps_scale=0.05)


@pytest.mark.slow
def test_distill_under_retrain_full_keeps_a_best_single_left_out_labelled_and_unpaired(
        run_dir, digits, tmp_path):
    from hubensemble.distill import format_distill, run_distill

    # The best single is no member (e.g. a budget left it out): never retrained, the export
    # cannot run it, so its row stays ensemble.json's, said so, with no paired test.
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    data = read_json(Run(path).ensemble_json)
    best = data["test"]["best_single"]
    data["members"] = [{**m, "weight": 1.0} for m in data["members"]
                       if m["trial"] != best["trial"]]
    atomic_write_json(Run(path).ensemble_json, data)
    export_ensemble(path, task=digits, progress=False, retrain_full=True)
    recorded = read_export_metadata(path / "export")["metrics"]["test"]
    assert recorded["best_single"] is None
    # One start (init "member"), not "best"'s two students: the rows compared do not
    # depend on the student's start.
    result = run_distill(path, task=digits, progress=False, steps_scale=0.05, init="member")
    for key in ("accuracy", "nll", "ece"):
        assert result.ensemble["test"][key] == pytest.approx(recorded["ensemble"][key],
                                                             abs=1e-6)
        assert result.best_single["test"][key] == best[key]
    assert result.ensemble["retrained"] and not result.best_single["retrained"]
    assert result.gap is None and result.gap_closed is None
    assert f"{best['trial']} before retraining" in result.gap_note
    assert "no member of the export" in result.gap_note
    text = format_distill(result)
    assert f"best single ({best['trial']}), before retraining" in text
    assert "ensemble (1 member), retrained on train + val" in text
    assert "no share of the ensemble's test-accuracy gain and no paired test of it" in text


def test_a_student_that_failed_in_rank_is_refused_by_name(run_dir, digits, tmp_path):
    from hubensemble.distill import run_distill
    from hubensemble.errors import RunError

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    run = Run(path)
    # rank recorded a third module of the catalogue that could not load.
    run.update(modules={**run.meta()["modules"], "gone": ModuleSpec(
        name="gone", handle=str(tmp_path / "missing")).to_json()})
    rows = [{"name": n, "handle": "h", "status": "ok", "reason": None, "score": 0.9}
            for n in ("small", "fixed")]
    rows.append({"name": "gone", "handle": "h", "status": "failed", "score": None,
                 "reason": "the module cannot load: no saved_model.pb"})
    atomic_write_json(run.ranking_json, {"metric": "knn", "k": 1, "modules": rows,
                                         "selected": ["small", "fixed"]})
    # The student is checked first, before the teacher (and TensorFlow and the data): with
    # no export the refusal still names the student, not the missing teacher.
    run.update(export={"path": str(tmp_path / "no-export")})
    with pytest.raises(RunError, match=r"'gone' failed in rank \(the module cannot load: no "
                                       r"saved_model.pb\); the modules that loaded are: "
                                       r"fixed, small$"):
        run_distill(path, student="gone", task=digits, progress=False)
    with pytest.raises(RunError, match=r"'nope' is not a module of this run; its modules "
                                       r"that loaded are: fixed, small$"):
        run_distill(path, student="nope", task=digits, progress=False)
    assert not (path / "distill").exists() and not (path / "distill.json").exists()


def test_a_trial_json_edited_by_hand_is_named_by_distill_in_tunes_words(
        run_dir, digits, tmp_path):
    """A new-user check: "lr": "0.01" in the student's member's trial.json made distill say
    only "invalid hyperparameters: lr must be a number (got '0.01')", naming no file."""
    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    for folder in (path / "candidates").iterdir():
        record = read_json(folder / "trial.json")
        atomic_write_json(folder / "trial.json",
                          {**record, "hparams": {**record["hparams"], "lr": "0.01"}})
    with pytest.raises(RunError, match=r"/candidates/[^/]+/trial\.json: its hyperparameters "
                                       r"cannot be read \(invalid hyperparameters: lr must be a "
                                       r"number \(got '0\.01'\)\); restore that file from a "
                                       r"copy, or delete the folder \("):
        run_distill(path, task=digits, progress=False, steps_scale=0.05, init="member")
    assert not (path / "distill.json").exists()


def test_a_teacher_export_that_left_members_out_is_refused_naming_them(
        run_dir, digits, tmp_path):
    from hubensemble.distill import run_distill

    # A new-user check: after `export --skip-missing` (1 of 2 members), distill trained on
    # that member alone, recorded both as the teacher and scored the student against both.
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    gone = tune.trial_id("default", 1, "fixed")
    (Run(path).candidates / gone / candidate.WEIGHTS_FILE).unlink()
    export_ensemble(path, task=digits, progress=False, skip_missing=True)
    assert [m["trial"] for m in read_export_metadata(path / "export")["members"]] == [
        tune.trial_id("default", 0, "small")]
    refusal = (rf"left out 1 of ensemble.json's 2 members \(skip_missing=True\): {gone} "
               r"\(.*weights.*missing\)\. .*call run_tune\(run_dir=.*\) again for them, then "
               r"export_ensemble\(run_dir=.*\) without skip_missing=True")  # Python's words
    with pytest.raises(RunError, match=refusal):
        run_distill(path, task=digits, progress=False)
    assert not (path / "distill").exists() and not (path / "distill.json").exists()


def test_a_replaced_student_is_named_and_every_kept_student_is_recorded(
        run_dir, digits, tmp_path, caplog):
    from hubensemble.distill import format_distill, read_distill, run_distill

    # A new-user check: a second distill replaced a better student without a word, and
    # distill.json forgot the students of other modules still in RUN/distill/.
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    quick = dict(task=digits, progress=False, steps_scale=0.05)
    first = run_distill(path, init="member", **quick)
    other = run_distill(path, student="fixed", init="module", **quick)
    assert [s["trial"] for s in other.students] == ["distill-fixed", "distill-small"]
    assert other.replaced is None
    with caplog.at_level("WARNING", logger="hubensemble.distill"):
        again = run_distill(path, init="module", mixup=0.0, **quick)
    was, now = first.student["test"]["accuracy"], again.student["test"]["accuracy"]
    assert again.replaced["trial"] == "distill-small"
    assert again.replaced["init_rule"] == "member" and again.replaced["mixup"] == 0.2
    assert again.replaced["test"]["accuracy"] == pytest.approx(was, abs=1e-6)
    note = [r.getMessage() for r in caplog.records if "replaced the earlier student" in
            r.getMessage()]
    assert len(note) == 1 and (
        f"replaced the earlier student distill-small (test accuracy {was:.4f}, val "
        f"{first.student['val']['accuracy']:.4f}; init member (kept member), "
        f"steps_scale 0.05, mixup 0.2, lr_scale 1) by this one (test accuracy "
        f"{now:.4f}") in note[0] and "init module (kept module)" in note[0]
    assert "--" not in note[0], note[0]  # run_distill's keywords: it said --distill-init …
    recorded = read_distill(path)
    assert [s["trial"] for s in recorded["students"]] == ["distill-fixed", "distill-small"]
    assert recorded["replaced"]["init_rule"] == "member"
    fixed = next(s for s in recorded["students"] if s["trial"] == "distill-fixed")
    assert fixed["test"]["accuracy"] == pytest.approx(other.student["test"]["accuracy"],
                                                      abs=1e-6)
    assert "also kept: distill/distill-fixed (test accuracy" in format_distill(recorded)


def _distill_record(gap_closed, single_only, ensemble_only, members):
    """A distill.json-shaped record with the fields format_distill reads."""
    from hubensemble.distill import Z_SIGNIFICANT

    b, c = single_only, ensemble_only
    z = (c - b) / np.sqrt(b + c)
    test = {"accuracy": 0.8, "nll": 0.5, "ece": 0.05}
    cost = {"gflops": 0.02, "latency_ms": {"1": 2.0}}
    return {"student": {"module": "small", "test": test, "cost": cost, "path": "distill/s",
                        "steps": 400, "seconds": 12.0, "init_from": None},
            "best_single": {"trial": "t0", "test": test, "cost": cost},
            "ensemble": {"members": [{"trial": f"t{i}"} for i in range(members)], "test": test,
                         "cost": cost},
            "gap_closed": gap_closed, "cost_ratio": float(members),
            "gap": {"n": 1740, "images": c - b, "single_only": b, "ensemble_only": c, "z": z,
                    "significant": bool(z >= Z_SIGNIFICANT), "student_images": -4}}


def test_the_distill_summary_gives_no_share_of_a_gain_that_is_noise():
    from hubensemble.distill import format_distill

    # gtsrb10 seed 0 (bench_cost): only the single right on 93 images, only the ensemble on
    # 96: z = 0.22, so "-133 %" of that 3-image gain says nothing; the gap line says why.
    noise = format_distill(_distill_record(-1.33, 93, 96, members=1))
    assert "keeps" not in noise and "-133%" not in noise
    assert "the gain is 3 of 1740 test images" in noise and "not significant" in noise
    assert "ensemble (1 member)" in noise
    # A real gain (digits seed 0: 5 vs 20, z = 3.00) keeps its share.
    real = format_distill(_distill_record(0.53, 5, 20, members=6))
    assert "the student keeps 53% of the ensemble's test-accuracy gain" in real
    assert "not significant" not in real and "ensemble (6 members)" in real
    # An ensemble far below its best single (129 vs 39 images, z = -6.94) is no noise.
    worse = format_distill(_distill_record(None, 129, 39, members=3))
    assert "McNemar z = -6.94, significantly below the best single at z <= -1.96" in worse
    assert "noise" not in worse and "keeps" not in worse
    # A one-member ensemble is its best single: no image only one of them gets right, and
    # the gap line said "McNemar z = 0.00, not significant …: the share is noise" of no gain.
    same = _distill_record(None, 1, 1, members=1)
    same["gap"].update(images=0, single_only=0, ensemble_only=0, z=0.0)  # mcnemar's for 0, 0
    same = format_distill(same)
    assert ("the gain is 0 of 1740 test images (only the best single right on 0, only the "
            "ensemble on 0: McNemar z = 0.00, the ensemble and the best single member are "
            "right on the same images: no gain to keep)") in same, same
    assert "noise" not in same and "keeps" not in same


def test_a_moved_run_names_its_own_tflite_model_and_a_savedmodel_export_removes_a_stale_one(
        run_dir, digits, tmp_path, caplog, figures_not_drawn):
    from hubensemble.options import OptionError
    from hubensemble.report import write_report

    # New-user checks: a copied run's report named the original's model.tflite; a later
    # SavedModel export (other members) left RUN/export-tflite of the old ensemble, whose
    # metadata said its check passed.
    path = (tmp_path / "moved" / "run").resolve()
    shutil.copytree(run_dir, path)
    report = write_report(path).markdown.read_text()
    assert f"`{path / 'export-tflite' / 'model.tflite'}`" in report
    assert str(run_dir) not in report
    with pytest.raises(OptionError, match=r"tflite_size must be an integer "
                                          r"in \[1, 1024\]"):
        export_ensemble(path, task=digits, progress=False, export_format="tflite",
                        tflite_size=5000)  # the check batch alone ran out of memory
    assert (path / "export-tflite" / "model.tflite").is_file()
    # A new-user check: `export --out OUT --format tflite` replaced an unrelated OUT-tflite
    # folder without a word, and hid a file of that name as a temp entry. Both are refused
    # before any work, and kept.
    mine = tmp_path / "mine-tflite"
    (mine / "sub").mkdir(parents=True)
    (mine / "data.txt").write_text("precious")
    (tmp_path / "f-tflite").write_text("keep")
    for out, says in ((tmp_path / "mine", "is not a TFLite export made by hubensemble"),
                      (tmp_path / "f", r"is not a folder \(a file or a broken link\), where")):
        with pytest.raises(RunError, match=says):
            export_ensemble(path, out_dir=out, task=digits, progress=False,
                            export_format="tflite")
        assert not out.exists()
    assert (mine / "data.txt").read_text() == "precious" and (mine / "sub").is_dir()
    assert (tmp_path / "f-tflite").read_text() == "keep"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
    # A SavedModel export removes only a TFLite export of hubensemble's beside it.
    theirs = tmp_path / "theirs"
    (tmp_path / "theirs-tflite").mkdir()
    for name in ("model.tflite", "hubensemble.json"):
        (tmp_path / "theirs-tflite" / name).write_text("{}")
    export_ensemble(path, out_dir=theirs, task=digits, progress=False)
    kept = sorted(os.listdir(tmp_path / "theirs-tflite"))
    assert kept == ["hubensemble.json", "model.tflite"]
    export_ensemble(path, task=digits, progress=False)
    assert not (path / "export-tflite").exists()
    assert f"removed {path / 'export'}-tflite" in caplog.text
    # export_ensemble's words (it was told `hubensemble export --run … --format tflite`).
    assert (f"call export_ensemble(run_dir={str(path)!r}, export_format='tflite') for one of "
            "this export") in caplog.text
    assert Run(path).meta()["export"]["tflite"] is None
    assert Run(path).exported_tflite() is None
    assert "TFLite export" not in write_report(path).markdown.read_text()


def test_no_share_is_given_when_the_gains_significance_cannot_be_decided(
        run_dir, tmp_path, figures_not_drawn):
    from hubensemble.distill import format_distill
    from hubensemble.report import write_report

    # A member's candidate lacks its test table: paired_gap gives no gap, and "keeps 0 %"
    # (a bare share) was printed where docs/cost.md asks for significance first.
    record = _distill_record(0.0, 5, 20, members=2)
    record["gap"] = None
    record["gap_note"] = "RUN/candidates has none usable for t1"
    text = format_distill(record)
    assert "keeps" not in text and "0%" not in text
    assert ("no share of the ensemble's test-accuracy gain: whether the gain is significant "
            "cannot be decided (RUN/candidates has none usable for t1)") in text
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    record["teacher"] = {"export": str(path / "export"),
                         "members": [m["trial"] for m in
                                     read_json(Run(path).ensemble_json)["members"]]}
    atomic_write_json(Run(path).distill_json, record)
    report = write_report(path).markdown.read_text()
    assert "keeps 0%" not in report
    assert "cannot be decided (RUN/candidates has none usable for t1)" in report


def test_the_report_shows_no_distilled_student_of_an_earlier_ensemble(
        run_dir, tmp_path, figures_not_drawn):
    from hubensemble.report import write_report

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    chosen = [m["trial"] for m in read_json(Run(path).ensemble_json)["members"]]
    record = _distill_record(0.53, 5, 20, members=3)
    record["teacher"] = {"export": str(path / "export"), "members": chosen}
    atomic_write_json(Run(path).distill_json, record)
    current = write_report(path).markdown.read_text()
    assert "keeps 53% of the ensemble's test-accuracy gain" in current  # no cost.json needed
    # `ensemble` chose again (one member): the student and its share were the old ensemble's.
    data = read_json(Run(path).ensemble_json)
    data["members"] = data["members"][:1]
    atomic_write_json(Run(path).ensemble_json, data)
    stale = write_report(path).markdown.read_text()
    assert "keeps 53%" not in stale
    # distill's teacher is the export, of the 2 members still: export first (a new-user
    # check: following "run distill again", distill refused the stale export).
    assert (f"distill.json was distilled from an earlier ensemble (2 members), not "
            f"ensemble.json's (1): run `hubensemble export --run {path}`, then "
            f"`hubensemble distill --run {path} --student small` to distil this one") in stale


def test_ensemble_says_when_the_export_holds_an_earlier_ensemble(run_dir, tmp_path, caplog):
    """A new-user check: `ensemble --max-members 1` after `export` rewrote ensemble.json and
    said nothing of RUN/export, which still served both members (report and distill told,
    later)."""
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    exported = [m["trial"] for m in read_export_metadata(path / "export")["members"]]
    assert len(exported) == 2
    ensemble.run_ensemble(path, max_members=1)
    now = [m["trial"] for m in read_json(Run(path).ensemble_json)["members"]]
    assert (f"{path / 'export'} holds an earlier ensemble (members {', '.join(exported)}; the "
            f"ensemble chosen now has {now[0]}); call export_ensemble(run_dir={str(path)!r}) to "
            "serve this one") in caplog.text  # from Python, the function
    assert "holds an earlier ensemble" in (path / "log.txt").read_text()
    caplog.clear()
    # A caller that exports right after (fit) is not told: the export it writes is current.
    ensemble.run_ensemble(path, max_members=1, export_follows=True)
    assert "earlier ensemble" not in caplog.text
    # The rule is Run.current_export's, as the summary's and the report's: with RUN/export
    # of this ensemble, the recorded export (elsewhere, of the earlier one) is not the run's
    # and nothing is said (it warned of the recorded one); without it, the recorded one is
    # named, with the command that serves this ensemble there.
    served, record = tmp_path / "served", Run(path).meta()["export"]
    shutil.copytree(path / "export", served)
    export_ensemble(path, path / "export", progress=False)
    Run(path).update(export=Run(path).export_record(served))
    ensemble.run_ensemble(path, max_members=1)
    assert Run(path).current_export() == (str(path / "export"), None)
    assert "earlier ensemble" not in caplog.text
    shutil.rmtree(path / "export")
    ensemble.run_ensemble(path, max_members=1)
    assert Run(path).current_export() == (None, str(served))
    assert (f"{served} holds an earlier ensemble (members {', '.join(exported)}; the ensemble "
            f"chosen now has {now[0]}); call export_ensemble(run_dir={str(path)!r}, "
            f"out_dir={str(served)!r}) to serve this one") in caplog.text
    caplog.clear()
    shutil.copytree(served, path / "export")  # as the fixture left them again
    Run(path).update(export=record)
    meta = read_export_metadata(path / "export")  # the export's own members again
    same = [{"trial": m["trial"], "weight": m["weight"]} for m in reversed(meta["members"])]
    assert export_members_differ(meta, same) is None
    # The same members at other weights (a new-user check: --with-replacement chose 0.833 / 0.167
    # where the export served 0.5 / 0.5, and nothing said so), unless the export left one
    # out and so renormalised them.
    other = [{**m, "weight": w} for m, w in zip(same, (0.9, 0.1))]
    assert export_members_differ(meta, other) is not None
    assert export_members_differ({**meta, "skipped": [{"trial": "t9"}]}, other) is None
    # The advice names the folder it is about: an export elsewhere needs --out (a new-user check:
    # it said `export --run RUN`, which writes RUN/export and leaves that folder stale).
    run = Run(path)
    assert run.export_command(path / "export") == f"hubensemble export --run {path}"
    assert (run.export_command(tmp_path / "served", "--format tflite")
            == f"hubensemble export --run {path} --out {tmp_path / 'served'} --format tflite")
    shutil.rmtree(path / "export")  # no export: nothing to say
    ensemble.run_ensemble(path, max_members=1)
    assert "earlier ensemble" not in caplog.text


def test_distill_writes_the_runs_report_again_so_that_it_shows_the_student(
        run_dir, tmp_path, in_process, figures_not_drawn):
    """`distill` left RUN/report.md and report.html as they were before it: the report did
    not show the student until `hubensemble report` ran. It now writes a report the run has
    again (fit writes it after its stages), and says so."""
    from hubensemble.report import write_report

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    md, html = write_report(path)
    assert "distilled student" not in md.read_text()
    code, out, err = in_process("distill", "--run", path, "--distill-steps", "0.05",
                                "--distill-init", "member")
    assert code == 0, err
    assert "distilled student (small)" in md.read_text()
    assert "distilled student (small)" in html.read_text()
    assert (f"report written again, so that it shows the student: {path / 'report.html'} (and "
            "report.md)") in err


@pytest.fixture(scope="module")
def student_run(run_dir, tmp_path_factory, digits):
    """A copy of `run_dir` with a distilled student of module "small" (short schedule)."""
    from hubensemble.distill import run_distill

    path = tmp_path_factory.mktemp("student") / "run"
    shutil.copytree(run_dir, path)
    run_distill(path, task=digits, progress=False, steps_scale=0.05, init="member")
    return path


def test_export_student_serves_the_students_recorded_probabilities(
        student_run, digits, tmp_path, in_process):
    """`distill` left only a candidate folder (RUN/distill/distill-M/): nothing turned the
    student into a SavedModel or TFLite model, and predict could not take it. `export
    --student` writes it as a one-member export (RUN/export-student by default), through the
    ensemble's export path; RUN/export and run.json's export record stay the ensemble's.
    It needs no ensemble.json: the command line's check before TensorFlow read it all the
    same, so an ensemble.json gone, or damaged by hand, refused the student's export
    ("…/ensemble.json is damaged …; hubensemble ensemble … writes it again"), which Python's
    export_ensemble(student=…) wrote (a fault hunt). (That was a test of its own, an export
    of the student of its own: here the export this test checks runs without it.)"""
    path = tmp_path / "run"
    shutil.copytree(student_run, path)
    run = Run(path)
    ensemble_meta = read_export_metadata(run.export)
    recorded = run.meta()["export"]
    run.ensemble_json.write_text('{"members": "all"}')
    code, out, err = in_process("export", "--run", path, "--student", "--format", "tflite")
    assert code == 0, err
    # Its first line names the student, not "the N member(s) of its ensemble".
    assert err.startswith("export: loading TensorFlow and the run's data, then the distilled "
                          "student distill-small (module small)\n"), err[:300]
    out_dir = path / "export-student"
    assert f"exported the student distill-small to {out_dir}" in out + err
    meta = read_export_metadata(out_dir)
    assert [m["trial"] for m in meta["members"]] == ["distill-small"]
    assert meta["members"][0]["weight"] == 1.0
    student = meta["student"]
    assert student["module"] == "small" and student["trial"] == "distill-small"
    assert student["folder"] == "distill/distill-small"
    # The copy's own teacher (RUN/export), not the folder the run was distilled in, and which
    # export it was by its metadata's digest, as the export's own "made_from" records.
    assert student["teacher"]["export"] == os.path.realpath(run.export)
    assert student["teacher"]["metadata_sha256"] == file_sha256(metadata_path(run.export))
    assert student["teacher"]["members"] == [m["trial"] for m in ensemble_meta["members"]]
    assert meta["best_single"] == "distill-small" and meta["objective"] == "distilled"
    # The ensemble's export and its record are untouched.
    assert read_export_metadata(run.export) == ensemble_meta
    assert run.meta()["export"] == recorded
    # serving_default gives the student's recorded test probabilities.
    cand = candidate.read_candidate(run.distill, "distill-small")
    assert cand.load_probs() is None
    images, _ = next(iter(digits.dataset("test", batch_size=len(digits.test), cache=False)))
    loaded = tf.saved_model.load(str(out_dir))
    got = loaded.signatures["serving_default"](images=images)["probabilities"].numpy()
    np.testing.assert_allclose(got, cand.test_probs, atol=1e-5)
    assert set(loaded.signatures) >= {"serving_default", "serve_bytes", "serve_members"}
    assert (path / "export-student-tflite" / "model.tflite").is_file()
    # predict --model takes it.
    image = tmp_path / "x.png"
    tf.io.write_file(str(image), tf.io.encode_png(
        tf.cast(images[0] * 255 + 0.5, tf.uint8)))
    code, out, err = in_process("predict", "--model", out_dir, image)
    assert code == 0, err
    assert str(image) in out
    # The ensemble's own export still needs ensemble.json, and says so.
    code, out, err = in_process("export", "--run", path, "--out", tmp_path / "again")
    assert code != 0 and "ensemble.json is damaged" in err, err


def test_export_students_refusals_name_flags_on_the_command_line_and_keywords_in_python(
        tmp_path, in_process):
    """`hubensemble export --run R --student --skip-missing` said "skip_missing
    (--skip-missing) leaves missing members out…", a keyword the command line never typed;
    Python is told its keywords, the command line its flags (lockwords.command_line)."""
    from hubensemble.options import OptionError
    from hubensemble.studentexport import student_for_export

    run, ranked = tmp_path / "run", tmp_path / "ranked"
    Run(ranked).update(modules={})  # a run: a missing one is said before its flags
    for flags, kw in [(["--skip-missing"], dict(skip_missing=True)),
                      (["--retrain-full"], dict(retrain_full=True))]:
        code, out, err = in_process("export", "--run", ranked, "--student", *flags)
        said = err.strip().splitlines()[-1]
        # A usage error has argparse's shape: the command named, after its usage line.
        assert code == 2 and said.startswith(f"hubensemble export: error: {flags[0]} "), err
        assert err.startswith("usage: hubensemble export "), err
        assert "_" not in said.replace(str(tmp_path), ""), said  # no keyword
        with pytest.raises(OptionError) as e:
            student_for_export(run, True, **kw)
        assert str(e.value).startswith(f"{next(iter(kw))} ") and "--" not in str(e.value)
    with pytest.raises(OptionError, match="^student must be a module name of RUN/distill/, or "
                                          "True for the last distilled student, got 0$"):
        student_for_export(run, 0)
    assert not run.exists()


def test_export_students_advice_names_the_module_as_typed_not_as_a_path(tmp_path):
    """A refusal of `export --student mobilenet` advised `hubensemble distill --run R
    --student /working/folder/mobilenet`: the module name went through text.shell, which
    makes a path absolute; a module name is one shell word as it is (text.shell_word)."""
    from hubensemble.lockwords import command_line
    from hubensemble.studentexport import student_for_export

    run = tmp_path / "run"
    (run / "distill").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "distill.json").write_text("{}")
    with command_line(), pytest.raises(RunError) as e:
        student_for_export(run, "mobilenet v2")
    assert "--student 'mobilenet v2'`, or name one" in str(e.value), e.value


def test_export_students_refusals_name_its_folders_absolute_and_escaped(tmp_path, monkeypatch):
    """`export --run runs/r --student small` of a student whose files were damaged said
    "(delete runs/r/distill/distill-small first)": a path relative to the folder the command
    ran in, and a name's newline broke the line. The refusals of `studentexport` name the
    run's folders as every "delete FOLDER" does (`text.escaped` of `text.absolute`). Files
    only."""
    from hubensemble.studentexport import student_for_export

    monkeypatch.chdir(tmp_path)
    run = os.path.join("runs", "r\nx")
    folder = os.path.join(run, "distill", "distill-small")
    os.makedirs(folder)
    for name in ("run.json", "distill.json"):
        with open(os.path.join(run, name), "w") as f:
            f.write("{}")
    atomic_write_json(os.path.join(folder, "trial.json"), {
        "status": "ok", "trial": "distill-small", "module": "small"})
    shown = f"{tmp_path}/runs/r\\nx"
    with pytest.raises(RunError) as e:
        student_for_export(run, "small")
    said = str(e.value)
    assert said.startswith(f"the student distill-small's folder {shown}/distill/distill-small "
                           "cannot be exported: "), said
    assert said.endswith(f"(delete {shown}/distill/distill-small first)"), said
    with pytest.raises(RunError) as e:
        student_for_export(run, "other")
    assert str(e.value).startswith(f"{shown}/distill holds no student of module 'other'"), e.value
    os.remove(os.path.join(run, "distill.json"))
    with pytest.raises(RunError) as e:
        student_for_export(run, "small")
    assert str(e.value).startswith(f"{shown} has no distill.json"), e.value


def test_export_student_refuses_a_run_without_that_student_or_with_a_changed_teacher(
        run_dir, student_run, tmp_path, in_process):
    from hubensemble.studentexport import student_for_export
    from hubensemble.options import OptionError

    # No distill.json: no student was distilled.
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare)
    code, out, err = in_process("export", "--run", bare, "--student")
    assert code != 0 and "no distill.json" in err and "hubensemble distill --run" in err
    assert not (bare / "export-student").exists()
    # No student of that module: the students there are listed.
    with pytest.raises(RunError, match=r"no student of module 'fixed'.*small \(distill/"
                                       r"distill-small\)"):
        export_ensemble(student_run, student="fixed", progress=False)
    code, out, err = in_process("export", "--run", student_run, "--student", "fixed")
    assert code != 0 and "no student of module 'fixed'" in err
    with pytest.raises(OptionError, match="^student must be"):
        export_ensemble(student_run, student="", progress=False)
    with pytest.raises(OptionError, match="^retrain_full retrains"):
        export_ensemble(student_run, student=True, retrain_full=True, progress=False)
    # --skip-missing leaves members out of an ensemble: meaningless for the one student.
    with pytest.raises(OptionError, match=r"^skip_missing leaves.*student"):
        export_ensemble(student_run, student=True, skip_missing=True, progress=False)
    code, out, err = in_process("export", "--run", student_run, "--student", "--skip-missing")
    # Refused before the work: no "export: …" progress line (the usage error's own line is
    # "hubensemble export: error: …", argparse's shape).
    assert code == 2 and "--skip-missing" in err, err
    assert not [line for line in err.splitlines() if line.startswith("export:")], err
    assert not (student_run / "export-student").exists()
    # The teacher export written again since the student learned from it: within the same
    # second (the same "created" and members, other metadata), then at another time. A
    # student recorded before its teacher's content (trial.json "content") is checked so.
    path = tmp_path / "run"
    shutil.copytree(student_run, path)
    folder = Run(path).distill / "distill-small"
    record = read_json(folder / "trial.json")
    assert record["teacher"]["content"]["variables_sha256"], record["teacher"]
    record["teacher"].pop("content")
    atomic_write_json(folder / "trial.json", record)
    teacher = read_json(metadata_path(Run(path).export))
    atomic_write_json(metadata_path(Run(path).export), {**teacher, "rewritten": True})
    with pytest.raises(RunError, match=r"changed since \(it was written again since"):
        student_for_export(path, "small")
    record["teacher"]["created"] = "2000-01-01T00:00:00"
    atomic_write_json(folder / "trial.json", record)
    with pytest.raises(RunError, match=r"changed since \(it was written at 2000-01-01"):
        student_for_export(path, "small")
    record["teacher"]["members"] = ["someone-else"]
    atomic_write_json(folder / "trial.json", record)
    code, out, err = in_process("export", "--run", path, "--student", "small")
    assert code != 0 and "held members ['someone-else'] then" in err
    assert "hubensemble distill --run" in err and not (path / "export-student").exists()


def test_the_distill_summary_names_its_student_folders_absolute(tmp_path, monkeypatch):
    """A new-user check: `distill --run runs/a` printed "student: distill/s (…)", a folder
    relative to the run, read as one of the working folder. Given the run, every student
    folder it names is absolute."""
    from hubensemble.distill import format_distill

    record = _distill_record(0.5, 5, 20, members=2)
    other = {**record["student"], "trial": "o", "path": "distill/o", "module": "other"}
    record["student"]["trial"] = "s"
    record["students"] = [record["student"], other]
    monkeypatch.chdir(tmp_path)
    text = format_distill(record, os.path.join("runs", "a"))
    assert f"\nstudent: {tmp_path / 'runs' / 'a' / 'distill' / 's'} (400 steps" in text, text
    assert f"\nalso kept: {tmp_path / 'runs' / 'a' / 'distill' / 'o'} (" in text, text


def test_the_earlier_ensemble_warning_says_which_members_differ():
    """A new-user check: "an earlier ensemble (1 member(s), not the 1 chosen now)" when one
    member was swapped for another said nothing of what differs: the members do."""
    from hubensemble.ensembletext import members_change

    assert members_change(["t0-a"], ["t1-b"]) == "members t0-a; the ensemble chosen now has t1-b"
    assert members_change(["a", "b"], ["b", "a", "a"]) == "the same members, other weights"
    assert members_change(list("abcdef"), ["a"]) == (
        "members a, b, c, d, … (6 in all); the ensemble chosen now has a")


def test_bench_cost_works_in_a_folder_of_its_own_by_default(run_dir, tmp_path, monkeypatch,
                                                            capsys):
    """tools/benchmarks/bench_cost.py's --work defaulted to bench-cost in the working folder:
    run as docs/cost.md says, from a checkout, it wrote the copied run and bench_cost.json into
    the repository. Now a new temporary folder, named on the first line."""
    import pathlib
    import sys

    bench = pathlib.Path(__file__).resolve().parents[1] / "tools" / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    monkeypatch.chdir(tmp_path)
    import bench_cost

    assert bench_cost.main(["--run", str(run_dir), "--skip-tflite", "--skip-distill"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("work folder: ") and "1. budget = 3 cheapest candidates" in out
    work = pathlib.Path(out.splitlines()[0].split(": ", 1)[1])
    assert list(tmp_path.iterdir()) == [] and (work / "bench_cost.json").is_file()
    assert (work / "run" / "ensemble.json").is_file() and sys.modules["bench_cost"]
    shutil.rmtree(work)


def test_export_and_distill_say_the_images_predicted_after_training(retrained, digits):
    """export --retrain-full's and distill's bars stood still (at 100%) while the retrained
    members' test and the student's val and test predictions ran (minutes for a real
    backbone): their lines now say "WHO: predicting SPLIT, DONE/TOTAL images". distill's
    teacher check ran before its bar appeared: it is said under the bar. (The export and
    the distill are the `retrained` fixture's, their stderr captured there.)"""
    path, _, lines = retrained
    members = [m["trial"] for m in read_json(Run(path).ensemble_json)["members"]]

    def said(start, who, split):
        counts = [line.rsplit(f"{who}: predicting {split}, ", 1)[1] for line in lines
                  if line.startswith(start) and f"{who}: predicting {split}, " in line]
        n = f"{len(digits.split(split)):,}"
        return counts and counts[-1] == f"{n}/{n} images]"

    for i, trial in enumerate(members):
        assert said(f"export: test retrained members:  {50 * i:2d}% {i}/2 [", trial, "test"), \
            lines
        # Its retraining's phases and steps, as a tune trial's: its bar stood at 0% through
        # the module's load and the first tracing.
        for phase in ("loading the module", "tracing the first step", "step 1/"):
            assert any(line.startswith(f"retrain {trial} on train + val: ")
                       and f"{trial}: {phase}" in line for line in lines), (phase, lines)
    for start in ("candidate " + members[0], "the module"):
        for split in ("val", "test"):
            assert said("distill into small: ", f"small from {start}", split), lines
        # Its phases and steps, as a tune trial's: it said only "…: training".
        for phase in ("loading the module", "tracing the first step", "step 1/"):
            assert any(line.startswith("distill into small: ")
                       and f"small from {start}: {phase}" in line for line in lines), lines
    # The teacher's check (its test split, run before training) was silent work before the
    # bar appeared: it is now under the bar, at 0 steps, its images counted.
    n = f"{len(digits.test):,}"
    check = [line for line in lines if line.startswith("distill into small:   0% 0/")
             and "checking the teacher on test: " in line]
    assert check and check[-1].endswith(f"checking the teacher on test: {n}/{n} images]"), lines
    assert any(line.startswith("distill into small:   0% 0/") and "loading the teacher" in line
               for line in lines), lines


def test_a_students_description_names_the_callers_options():
    """The replaced student's note named run_distill's options by their flags from Python
    ("--distill-init member …"); it names the keywords there, the flags on the command line."""
    from hubensemble.distillcompare import _describe
    from hubensemble.lockwords import command_line

    record = {"test": {"accuracy": 0.5}, "val": {"accuracy": 0.25}, "init_rule": "member",
              "init": "member", "steps_scale": 0.05, "mixup": 0.2, "lr_scale": 1.0}
    assert _describe(record) == ("test accuracy 0.5000, val 0.2500; init member (kept member), "
                                 "steps_scale 0.05, mixup 0.2, lr_scale 1")
    with command_line():
        assert _describe(record).endswith("; --distill-init member (kept member), "
                                          "--distill-steps 0.05, --distill-mixup 0.2, "
                                          "--distill-lr 1")


def test_the_tflite_timing_copies_a_batch_into_the_interpreter_once(rng):
    """write_tflite timed runner(x), which copied the batch into the interpreter on every
    call (64 check images at 224 px: 38.5 MB) and counted that copy; the timed call sets it
    once. Its outputs are the runner's; changing the array after the first call changes
    nothing, as the interpreter holds its copy (a new array is set anew)."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((6, 5, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(5, 3)(inputs))))
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    runner = TFLiteRunner(content=content)
    timed = runner.timed_call()
    x = rng.random((3, 6, 5, 3)).astype(np.float32)
    want = runner(x)
    np.testing.assert_array_equal(timed(x), want)
    x[...] = 0.0
    np.testing.assert_array_equal(timed(x), want)  # the batch set on the first call
    np.testing.assert_array_equal(timed(x.copy()), runner(x))  # another array: set anew


def test_a_changed_teacher_export_is_said_with_the_terminals_times(tmp_path):
    """The refusal of a student whose teacher export changed printed raw stamps ("written at
    2026-12-04T15:40:01 then, at …"): now text.shown_time's one form, with the offset. Files
    only."""
    import types

    from hubensemble.studentexport import _check_teacher
    from hubensemble.text import shown_time

    os.makedirs(tmp_path / "export" / "assets")
    atomic_write_json(metadata_path(tmp_path / "export"), {
        "format": "hubensemble-export", "created": "2026-12-04T15:40:01",
        "members": [{"trial": "t0"}]})
    cand = types.SimpleNamespace(trial="distill-small", record={"teacher": {
        "members": ["t0"], "created": "2026-12-01T09:00:00"}})
    with pytest.raises(RunError) as e:
        _check_teacher(cand, str(tmp_path / "export"), "redo")
    assert (f"(it was written at {shown_time('2026-12-01T09:00:00')} then, at "
            f"{shown_time('2026-12-04T15:40:01')} now)") in str(e.value), e.value
    assert "T09:00:00" not in str(e.value) and "T15:40:01" not in str(e.value)


def test_a_module_the_tflite_converter_refuses_is_named_with_its_reason(module_factory,
                                                                        tmp_path, capfd):
    # A float16 module's Conv2D has no TFLite built-in. The error was the converter's first
    # line ("Could not translate MLIR to FlatBuffer … loc(fused[…])"), naming no member or
    # module (in an ensemble with another module, an op of that other one), and MLIR's
    # diagnostics filled the terminal. It names the module, its member and why.
    import keras

    from hubensemble import tune
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite
    from hubensemble.hub import write_hub_module

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", dtype="float16")(inp)
    x = keras.layers.GlobalAveragePooling2D(dtype="float32")(x)
    half = write_hub_module(keras.Model(inp, x), str(tmp_path / "half"))
    specs = [ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4)),
             ModuleSpec(name="half", handle=half)]
    members = [ExportMember(tune.build_classifier(s, 10), 8, 0.5,
                            {"trial": f"trial-{s.name}", "module": s.name}) for s in specs]
    out = tmp_path / "served-tflite"
    capfd.readouterr()
    with pytest.raises(RunError) as caught:
        write_tflite(members, [str(i) for i in range(10)], out, input_hw=(8, 8),
                     check_images=np.zeros((2, 8, 8, 3), np.float32), reference=None)
    said, named = str(caught.value), str(caught.value).split(". No TFLite")[0]
    assert ("cannot serve module half (member trial-half): the converter refuses it: ops "
            "without a TFLite built-in") in said
    assert "Conv2D" in named and "float16" in named and "plain" not in named, said
    assert "SavedModel written before this step is kept" in said
    assert not out.exists()
    assert "loc(fused" not in capfd.readouterr().err  # the converter's lines: the log's


def one_op_module(path, op, *, width=4, name=None) -> str:
    """A module folder written by `write_hub_module` at `path`: a 3x3 conv of `width` relu
    channels, then `op` (a TensorFlow function of a tensor, in a Keras layer named `name`),
    then global average pooling: the smallest module whose graph holds an op TFLite cannot
    serve (tf.math.lgamma: converted, but not run; tf.math.erfinv: refused)."""
    import keras

    from hubensemble.hub import write_hub_module

    class OneOp(keras.layers.Layer):
        def call(self, x):
            return op(x)

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3))
    x = OneOp(name=name)(keras.layers.Conv2D(width, 3, padding="same", activation="relu")(inp))
    return write_hub_module(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x)),
                            str(path))


def test_a_module_whose_tflite_model_does_not_run_is_named_and_nothing_is_written(
        module_factory, tmp_path):
    # TensorFlow 2.21's converter turns a Lgamma op into a model that allocates at its stored
    # batch of 1 only (and returns [0, C] there): the check's batch of images ended the
    # export in the interpreter's RuntimeError traceback ("Given shapes, [2,8,8,4] and
    # [0,8,8,4], are not broadcastable. Node number 9 (SUB) failed to prepare."), naming no
    # module. It names the member and module that do not run; nothing is written.
    from hubensemble import tune
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite

    lg = one_op_module(tmp_path / "lg", lambda x: tf.math.lgamma(x + 1.0))
    specs = [ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4)),
             ModuleSpec(name="lg", handle=lg)]
    members = [ExportMember(tune.build_classifier(s, 10), 8, 0.5,
                            {"trial": f"trial-{s.name}", "module": s.name}) for s in specs]
    out = tmp_path / "served-tflite"
    with pytest.raises(RunError) as caught:
        write_tflite(members, [str(i) for i in range(10)], out, input_hw=(8, 8),
                     check_images=np.zeros((2, 8, 8, 3), np.float32),
                     reference=lambda x: np.full((len(x), 10), 0.1, np.float32))
    said = str(caught.value)
    assert said.startswith("TFLite cannot serve module lg (member trial-lg): its TFLite "
                           "model does not run on 2 images: "), said
    assert "plain" not in said.split(". No TFLite")[0]
    assert "SavedModel written before this step is kept" in said
    assert not out.exists()


@pytest.mark.slow
def test_a_student_at_chance_on_validation_is_warned_of(run_dir, digits, tmp_path, caplog):
    # One step at a millionth of the learning rate leaves the module start's zero head:
    # uniform probabilities, at chance. Such a student was written and compared (its "share"
    # of the gain a large negative number) without a word; tune fails such a trial.
    from hubensemble.distill import run_distill
    from hubensemble.metrics import at_chance

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    with caplog.at_level("WARNING"):
        result = run_distill(path, task=digits, progress=False, steps_scale=0.001,
                             lr_scale=1e-6, init="module", mixup=0.0)
    student = candidate.read_candidate(Run(path).distill, result.student["trial"])
    student.load_probs()
    why = at_chance(student.val_probs, digits.val.labels, digits.num_classes)
    assert why  # the files' own verdict, independent of distill's
    warned = [r.getMessage() for r in caplog.records if "at chance" in r.getMessage()]
    assert len(warned) == 1 and why in warned[0], caplog.text
    assert f"the student {result.student['trial']} is at chance" in warned[0]
    assert "steps_scale" in warned[0] and "lr_scale" in warned[0]  # Python's words


@pytest.mark.slow
def test_distill_under_max_gflops_judges_a_module_by_its_students_cost_at_its_size(
        run_dir, digits, tmp_path):
    # A probe is evaluated at its module's own resolution (128 px for these 8 px digits),
    # the student trains and serves at tune's (32 px): --max-gflops chose among the modules
    # by their candidates' cost, so a module whose candidate was evaluated at 128 px was
    # refused ("no module … fits") though its student, 16 x cheaper, was within the limit.
    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    small = tune.trial_id("default", 0, "small")
    trial_json = Run(path).candidates / small / "trial.json"
    atomic_write_json(trial_json, {**read_json(trial_json), "eval_size": 128})
    if os.path.exists(path / "cost.json"):
        os.remove(path / "cost.json")  # counted again at the candidates' sizes
    # By hand: "small" (one 3x3 conv, 4 filters, a 10-class head) at 32 px, and at 128 px;
    # "fixed" (8 filters) at its 24 px.
    at_32, at_128 = 2 * (32 * 32 * 4 * 27 + 4 * 10), 2 * (128 * 128 * 4 * 27 + 4 * 10)
    fixed = 2 * (24 * 24 * 8 * 27 + 8 * 10)
    limit = (at_32 + fixed) / 2 / 1e9
    result = run_distill(path, task=digits, progress=False, max_gflops=limit,
                         steps_scale=0.005, init="module", mixup=0.0)
    assert result.student["module"] == "small"
    assert result.student["cost"]["gflops"] * 1e9 == at_32 < limit * 1e9 < fixed < at_128
    costs = read_json(path / "cost.json")["candidates"]
    assert costs[small]["flops"] == at_128  # what the choice read before


def test_a_tflite_model_that_does_not_run_names_the_modules_op_the_converter_expanded(
        tmp_path):
    """`export --format tflite` of a module using tf.math.lgamma gave as its reason only the
    interpreter's text ("Given shapes, [2,8,8,4] and [0,8,8,4], are not broadcastable. Node
    number 5 (SUB) failed to prepare"). It names the module's op the failing node was made
    of (Lgamma, by its name in the module's graph), the batch, then keeps the raw text; an
    error naming no node is said in plain words."""
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import TFLiteEnsemble, write_tflite

    lg = one_op_module(tmp_path / "lg", lambda x: tf.math.lgamma(x + 1.0), width=2,
                       name="lgam")
    members = [ExportMember(tune.build_classifier(ModuleSpec(name="lg", handle=lg), 3), 8, 1.0,
                            {"trial": "trial-lg", "module": "lg"})]
    out = tmp_path / "served-tflite"
    with pytest.raises(RunError) as caught:
        write_tflite(members, ["a", "b", "c"], out, input_hw=(8, 8),
                     check_images=np.zeros((2, 8, 8, 3), np.float32),
                     reference=lambda x: np.full((len(x), 3), 1 / 3, np.float32))
    said = str(caught.value)
    assert said.startswith("TFLite cannot serve module lg (member trial-lg): its TFLite model "
                           "does not run on 2 images: the converter turned the module's "
                           "TensorFlow op Lgamma ("), said
    import re

    # The op's name in the module's graph: the layer's (Keras numbers it: lgam_1).
    assert re.search(r"TensorFlow op Lgamma \(\S*lgam\w*/Lgamma\) into TFLite ops that fail "
                     r"at a batch of 2 \(node \d+, SUB\)", said), said
    assert "; the interpreter said: Given shapes, [2,8,8,2] and [0,8,8,2]" in said, said
    assert not out.exists()
    from hubensemble.export.tflite import failing_ops

    module = TFLiteEnsemble(members, (8, 8))
    assert failing_ops(module, b"", RuntimeError("boom\nmore"), 4) == (
        "the converter made a model that fails at a batch of 4 (the interpreter said: boom)")


# --- the TFLite refusal's whole op names, grouped members and way on as commands ----------


def test_a_refused_modules_ops_are_named_whole_and_its_members_together(module_factory,
                                                                        tmp_path):
    # TensorFlow 2.21 refuses an Erfinv op with "'tf.Erfinv' op is neither a custom op nor a
    # flex op" (no "TF Select ops:" line): the reason was the converter's first line, a
    # loc(fused[…]) of MLIR's, repeated whole for every member of the module. It names the
    # op, and the module's members once; the way on leaves the module out of the ensemble
    # (ensemble has no flag for that: it said "choose an ensemble without erfinv").
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite

    erfinv = one_op_module(tmp_path / "erfinv", lambda x: tf.math.erfinv(tf.tanh(x) * 0.5))
    specs = [ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4)),
             ModuleSpec(name="erfinv", handle=erfinv), ModuleSpec(name="erfinv", handle=erfinv)]
    members = [ExportMember(tune.build_classifier(s, 10), 8, 1 / 3,
                            {"trial": f"t{i}-{s.name}", "module": s.name})
               for i, s in enumerate(specs)]
    with pytest.raises(RunError) as caught:
        write_tflite(members, [str(i) for i in range(10)], tmp_path / "served-tflite",
                     input_hw=(8, 8), check_images=np.zeros((2, 8, 8, 3), np.float32),
                     reference=None)
    assert str(caught.value) == (
        "TFLite cannot serve module erfinv (members t1-erfinv, t2-erfinv): the converter "
        "refuses it: ops without a TFLite built-in: Erfinv. No TFLite model was written; the "
        "SavedModel written before this step is kept: serve it, or for a TFLite model leave "
        "erfinv out of the ensemble: remove their candidate folders in RUN/candidates, then "
        "run_ensemble(run_dir=RUN) and export_ensemble(run_dir=RUN, out_dir="
        f"{str(tmp_path / 'served')!r}, export_format='tflite')"), caught.value


def _served_run(run, trials):
    """(run, served): a run folder `run` holding an ok candidate of each (trial, module) of
    `trials`, and beside it the folder `served`, whose export metadata names that run (files
    only, no model: what the TFLite way on reads)."""
    from hubensemble.formats import EXPORT_FORMAT

    for trial, module in trials:
        candidate.write_candidate(Run(run).candidates, {"trial": trial, "module": module,
                                                        "status": "ok"})
    served = run.parent / "served"
    os.makedirs(served / "assets")
    atomic_write_json(metadata_path(served), {"format": EXPORT_FORMAT,
                                              "run": {"path": str(run)}})
    return run, served


def test_the_tflite_way_on_names_the_candidates_to_remove_and_the_commands(tmp_path):
    """The way on after a TFLite refusal, for the run the export's metadata names: every
    candidate folder of the refused modules (members or not) removed by one command, then
    ensemble and the same export (its --out, --quantize); none when every candidate is of
    them; another module's student for a student export. Files only; the commands were
    followed by hand on a fit of plain, erfinv and lg modules (its TFLite export then
    written)."""
    import shlex

    from hubensemble.export.tflite import tflite_way_on
    from hubensemble.formats import EXPORT_FORMAT
    from hubensemble.lockwords import command_line

    run, served = _served_run(tmp_path / "r un", (
        ("d-0000-lg", "lg"), ("d-0001-plain", "plain"), ("d-0002-erfinv", "erfinv"),
        ("d-0003-lg", "lg")))
    with command_line():
        said = tflite_way_on(["erfinv", "lg"], "float16", f"{served}-tflite")
    quoted, cands = shlex.quote(str(run)), shlex.quote(str(run / "candidates"))
    assert said == (
        f" (`hubensemble predict --model {served} IMAGE…`, or TF Serving), or for a TFLite "
        "model leave erfinv, lg out of the ensemble (ensemble has no flag for that): remove "
        f"their 3 candidate folders (`(cd {cands} && rm -r d-0000-lg "
        f"d-0002-erfinv d-0003-lg)`), then `hubensemble ensemble --run {quoted}` and "
        f"`hubensemble export --run {quoted} --out {served} --format tflite --quantize "
        "float16` (ensemble then calls the sweep unfinished: finishing it, by tune or fit, "
        "trains them again)"), said
    # From Python: the stage functions.
    assert f"run_ensemble(run_dir={str(run)!r}) and export_ensemble(run_dir={str(run)!r}, " \
           f"out_dir={str(served)!r}, export_format='tflite', quantize='float16')" in \
           tflite_way_on(["erfinv", "lg"], "float16", f"{served}-tflite")
    with command_line():
        assert tflite_way_on(["erfinv", "lg", "plain"], "none", f"{served}-tflite").endswith(
            ". Every candidate of the run is of erfinv, lg, plain, so no ensemble of it has "
            "a TFLite model")
        atomic_write_json(metadata_path(served), {"format": EXPORT_FORMAT,
                                                  "run": {"path": str(run)},
                                                  "student": {"module": "lg"}})
        assert tflite_way_on(["lg"], "none", f"{served}-tflite").endswith(
            "or for a TFLite model distill a student of another module than lg "
            f"(`hubensemble distill --run {quoted} --student MODULE`) and export it: "
            f"`hubensemble export --run {quoted} --student MODULE --out {served} --format "
            "tflite`")


def test_float16_weights_of_quantize_float16_are_not_said_to_be_a_float16_module():
    """With --quantize float16 every weight is an f16 constant in the converter's dump: an
    Erfinv on float32 tensors was said to run "on float16 tensors (the module computes in
    float16 …)". Only the refused op's own tensors count (a float16 module's Conv2D still
    is: test_a_module_the_tflite_converter_refuses_is_named_with_its_reason)."""
    from hubensemble.export.tflite import converter_reason

    class Erfinv(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones([4, 4]))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return tf.math.erfinv(tf.tanh(tf.matmul(x, self.w)) * 0.5)

    module = Erfinv()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    with pytest.raises(Exception) as caught:
        converter.convert()
    assert "xf16>" in str(caught.value)  # the quantised weights the dump shows
    assert converter_reason(caught.value) == "ops without a TFLite built-in: Erfinv"


def _write_odd_module(path, kind):
    """A SavedModel module (``__call__(images, training)``, [N, 6] features) that trains
    normally but, for `kind` "oom", asks in training mode for a [N, 2**17, 2**17] float32
    tensor (64 GiB an image: the allocator refuses it, as it refused a --train-batch-size of
    100000 on a real module), and for "nan" gives NaN features at inference only."""
    rng = np.random.default_rng(0)
    root = tf.train.Checkpoint()
    root.kernel = tf.Variable(rng.normal(size=(3, 3, 3, 6)).astype("float32"))
    root.bias = tf.Variable(np.zeros(6, "float32"))

    def call(images, training=False):
        y = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(images, root.kernel, 1, "SAME")
                                      + root.bias), axis=[1, 2])
        if kind == "oom" and training:
            huge = tf.random.uniform(tf.stack([tf.shape(images)[0], 2 ** 17, 2 ** 17]))
            y += 0.0 * tf.reduce_sum(huge)
        if kind == "nan" and not training:
            y *= float("nan")
        return y

    root.__call__ = tf.function(call)
    for training in (True, False):
        root.__call__.get_concrete_function(
            tf.TensorSpec([None, None, None, 3], tf.float32), training)
    root.variables = [root.kernel, root.bias]
    root.trainable_variables = [root.kernel, root.bias]
    root.regularization_losses = []
    tf.saved_model.save(root, str(path))
    return str(path)


def _run_with_odd_student(run_dir, tmp_path, kind):
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    run = Run(path)
    modules = run.meta()["modules"]
    spec = ModuleSpec(name=kind, handle=_write_odd_module(tmp_path / kind, kind))
    run.update(modules={**modules, kind: spec.to_json()})
    return path


@pytest.mark.slow  # TensorFlow's allocator waits 10 s for memory before it refuses
def test_a_student_that_runs_out_of_memory_names_its_batch_and_one_that_fits(
        run_dir, digits, tmp_path):
    """A new-user check: `distill --train-batch-size 100000` under a memory limit warned
    first, then ended in a raw ResourceExhaustedError traceback."""
    import re

    from hubensemble.distill import run_distill

    path = _run_with_odd_student(run_dir, tmp_path, "oom")
    with pytest.raises(RunError, match=r"ran out of memory training the student oom in "
                       r"batches of (\d+) images \(ResourceExhaustedError: .*OOM when allocating") \
            as caught:
        run_distill(path, student="oom", init="module", steps_scale=0.05, task=digits,
                    progress=False)
    batch = int(re.search(r"batches of (\d+)", str(caught.value)).group(1))
    fits = int(re.search(r"pass train_batch_size=(\d+) ", str(caught.value)).group(1))
    assert 1 <= fits < batch
    assert not (path / "distill.json").exists()


def test_a_student_whose_validation_predictions_are_not_finite_is_not_kept(
        run_dir, digits, tmp_path):
    """A student whose predictions are NaN was written and compared: under init "best" the
    NaN cross-entropy wins min() (every comparison with NaN is false). Refused as tune fails
    a trial of them."""
    from hubensemble.distill import run_distill

    path = _run_with_odd_student(run_dir, tmp_path, "nan")
    with pytest.raises(RunError, match=r"training the student nan failed: from the module: "
                       r"the val predictions are not finite \(NaN or infinite\); try another "
                       r"start \(init\)"):
        run_distill(path, student="nan", init="module", steps_scale=0.05, task=digits,
                    progress=False)
    assert not (path / "distill.json").exists() and not (path / "distill").exists()


def test_the_tflite_way_on_selects_the_ensemble_again_with_the_runs_own_settings(tmp_path):
    """The way on after a TFLite refusal had the user run a plain `hubensemble ensemble --run
    R`, which selects under the defaults: a run whose ensemble was chosen with --budget 3
    --size-rule paper --max-members 2 (or fitted with them) got an ensemble of up to 15 by
    the one-se rule. Its command carries ensemble.json's settings (run.json's fit options
    when there is none), read back here by the command line's own parser; from Python, the
    keywords run_ensemble takes."""
    import shlex

    from hubensemble.cli import build_parser
    from hubensemble.export.tflite import tflite_way_on
    from hubensemble.lockwords import command_line

    run, served = _served_run(tmp_path / "run", (("d-0000-lg", "lg"), ("d-0001-plain", "plain")))
    atomic_write_json(run / "ensemble.json", {
        "objective": "accuracy", "members": [], "budget": 3, "with_replacement": True,
        "bootstrap": 2.0, "seed": 7, "size_rule": {"rule": "paper", "size": 1},
        "limits": {"max_gflops": None, "max_latency_ms": None, "max_members": 2}})

    def ensemble_args():
        with command_line():
            said = tflite_way_on(["lg"], "none", f"{served}-tflite")
        line = said.split("then `hubensemble ensemble ", 1)[1].split("`", 1)[0]
        return build_parser().parse_args(["ensemble", *shlex.split(line)])

    args = ensemble_args()
    assert (args.objective, args.ensemble_budget, args.with_replacement, args.bootstrap,
            args.seed, args.size_rule, args.max_members, args.max_gflops) == (
        "accuracy", 3, True, 2.0, 7, "paper", 2, None), args
    assert (f"run_ensemble(run_dir={str(run)!r}, seed=7, objective='accuracy', budget=3, "
            "size_rule='paper', with_replacement=True, bootstrap=2.0, max_members=2)") in \
        tflite_way_on(["lg"], "none", f"{served}-tflite")
    # No ensemble.json: a fit's recorded options.
    os.remove(run / "ensemble.json")
    atomic_write_json(run / "run.json", {"fit": {"options": {
        "ensemble_budget": 4, "size_rule": "budget", "top_k": 2, "max_gflops": 1.5}}})
    args = ensemble_args()
    assert (args.ensemble_budget, args.size_rule, args.max_gflops, args.objective) == (
        4, "budget", 1.5, "ce"), args


@pytest.mark.slow
def test_a_batch_the_replicas_cannot_share_is_refused_with_advice_the_python_caller_can_pass(
        tmp_path):
    """A student (run_distill) or a retrained member (export_ensemble) whose batch of 7 does
    not divide among a two-replica MirroredStrategy was told to pass strategy='cpu': both
    take a tf.distribute.Strategy (or None, the one in scope), and 'cpu' has no scope to
    train in. The refusal of fit_member, which both train through, names strategy=None;
    following it (outside the scope) passes the check, and the module's load is what fails
    next. run_tune's words (it takes a name) stay strategy='cpu'; the command line's are
    --strategy cpu. A process of its own: the CPU is split in two before TensorFlow starts."""
    from conftest import bounded_by_cpu

    code = (
        "import sys, tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(\n"
        "    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(2)])\n"
        "from hubensemble import tune\n"
        "from hubensemble.catalogue import ModuleSpec\n"
        "from hubensemble.data import load_task\n"
        "from hubensemble.errors import HubensembleError\n"
        "from hubensemble.hyperrule import HParams, get_profile\n"
        "from hubensemble.lockwords import command_line\n"
        "from hubensemble.tune.strategies import check_batch_divides\n"
        "quick = get_profile('quick')\n"
        "hp = HParams(**{**quick.scale({'lr': 0.1}), 'batch_size': 7, 'steps': 1}, seed=0)\n"
        "spec, task = ModuleSpec(name='gone', handle=sys.argv[1]), load_task('sklearn:digits')\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "assert strategy.num_replicas_in_sync == 2\n"
        "def said(call):\n"
        "    try:\n"
        "        call()\n"
        "    except HubensembleError as e:\n"
        "        return ' '.join(str(e).split())\n"
        "print('OBJECT', said(lambda: tune.fit_member(spec, task, hp, profile=quick,\n"
        "                                              strategy=strategy)))\n"
        "print('FOLLOWED', said(lambda: tune.fit_member(spec, task, hp, profile=quick,\n"
        "                                                strategy=None)))\n"
        "print('NAME', said(lambda: check_batch_divides(strategy, 7)))\n"
        "with command_line():\n"
        "    print('CLI', said(lambda: tune.fit_member(spec, task, hp, profile=quick,\n"
        "                                           strategy=strategy)))\n")
    out = bounded_by_cpu([sys.executable, "-c", code, str(tmp_path / "gone")],
                         capture_output=True, text=True, cpu=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    refusal = "the training batch of 7 does not divide among the 2 replicas of MirroredStrategy"
    assert refusal in lines["OBJECT"], out.stdout
    assert ("or train on one device (strategy=None, called outside any strategy's scope: the "
            "default strategy)") in lines["OBJECT"] and "'cpu'" not in lines["OBJECT"], lines
    assert refusal not in lines["FOLLOWED"] and "gone" in lines["FOLLOWED"], lines
    assert lines["NAME"].endswith("or train on one device (strategy='cpu')"), lines
    assert lines["CLI"].endswith("or train on one device (--strategy cpu)"), lines
    # Each multiple as the caller passes it (Python was told "pass train_batch_size 6 or 8").
    for said, given in (("OBJECT", "train_batch_size=6 or 8"), ("NAME", "train_batch_size=6 or 8"),
                        ("CLI", "--train-batch-size 6 or 8")):
        assert f"pass {given} (a multiple of 2)" in lines[said], lines


def test_a_student_at_chance_on_test_or_under_a_teacher_at_chance_is_warned_of(digits, caplog):
    """A 10-step student at 0.10 test accuracy on 10 classes was written without a warning
    when validation, which chose its start, called it above chance. Test counts too; a
    student at chance whose teacher ensemble is at chance itself (10-step --profile quick
    members) is told so, not to train the student longer. The verdicts are
    metrics.at_chance's on the same arrays."""
    from hubensemble.distill import _warn_at_chance
    from hubensemble.metrics import at_chance

    def probs(labels, right):
        """Rows of 10 classes: the true label at 0.5 where `right`, else class (label+1)."""
        p = np.full((len(labels), 10), 0.5 / 9)
        guess = np.where(right, labels, (labels + 1) % 10)
        p[np.arange(len(labels)), guess] = 0.5
        return p

    y_val, y_test = digits.val.labels, digits.test.labels
    val = probs(y_val, np.arange(len(y_val)) % 4 == 0)       # 1 in 4 right: above chance
    test = probs(y_test, np.arange(len(y_test)) % 10 == 0)   # 1 in 10 right: chance
    assert at_chance(val, y_val, 10) is None and at_chance(test, y_test, 10)
    with caplog.at_level("WARNING", logger="hubensemble.distill"):
        _warn_at_chance("distill-m", {"val": val, "test": test}, digits, 10, 1.0, 1.0)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and warned[0].startswith(
        f"the student distill-m is at chance on test ({at_chance(test, y_test, 10)}): it "
        "learned next to nothing from the teacher; train it longer (steps_scale, 1 now: 10 "
        "steps)"), warned
    caplog.clear()
    with caplog.at_level("WARNING", logger="hubensemble.distill"):
        _warn_at_chance("distill-m", {"val": test[:len(y_val)] * 0 + 0.1, "test": test},
                        digits, 10, 1.0, 1.0, teacher_at_chance="accuracy 0.110 is not …")
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "on validation (" in warned[0] and "and on test (" in \
        warned[0], warned
    assert ("as its teacher is: the ensemble is at chance on validation itself (accuracy 0.110 "
            "is not …), so no student can learn more from it; train the members longer "
            "first") in warned[0] and "steps_scale" not in warned[0], warned


def test_a_tflite_model_beyond_its_bound_keeps_the_savedmodel_and_names_less_rounding(
        module_factory, tmp_path):
    """A --quantize float16 export of a real MobileNet V1 student differed by max |dp|
    0.0151 > 0.01 and was told "nothing was written. Try --quantize none or float16": the
    SavedModel had been written, and float16 was what it had tried. The refusal says the
    SavedModel is kept and names the quantisations that round less than the one refused,
    in the caller's words; none for an unquantised model. The reference here is the
    SavedModel's stand-in, off by 0.3 from the uniform probabilities of a zero head."""
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite
    from hubensemble.lockwords import command_line

    spec = ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4))
    members = [ExportMember(tune.build_classifier(spec, 3), 8, 1.0,
                            {"trial": "t0-plain", "module": "plain"})]

    def reference(x):
        return np.tile(np.array([[1 / 3 + 0.3, 1 / 3, 1 / 3 - 0.3]], np.float32), (len(x), 1))

    def refusal(quantize):
        with pytest.raises(RunError) as caught:
            write_tflite(members, ["a", "b", "c"], tmp_path / "served-tflite", input_hw=(8, 8),
                         check_images=np.zeros((2, 8, 8, 3), np.float32), reference=reference,
                         quantize=quantize)
        assert not (tmp_path / "served-tflite").exists()
        return str(caught.value)

    kept = "; no TFLite model was written; the SavedModel written before this step is kept"
    with command_line():
        said = refusal("float16")
    assert said.startswith("the TFLite model (float16) differs from the SavedModel on 2 "
                           "validation images beyond its check (mean |dp| = 0.3 > 0.025)"
                           f"{kept}: serve it, or export again with --quantize none (less "
                           "rounding than float16)"), said
    assert refusal("dynamic").endswith(
        "export again with quantize='none' or quantize='float16' (less rounding than dynamic)")
    assert refusal("none").endswith(f"{kept}. Unquantised, it is the converter's fault: "
                                    "report it with RUN/log.txt")


def test_a_quantised_model_as_far_off_as_a_real_backbones_is_kept(module_factory, tmp_path):
    """--quantize float16 moved a real MobileNet V1 ensemble's probabilities by 0.0106 and
    its student's by 0.0151, --quantize dynamic by 0.113, each with the same top class on
    all 32 check images: the bounds (1e-2, 1e-1, set on the demo's tiny modules) refused
    every quantised export of a real backbone. Such models are kept (here the reference, the
    SavedModel's stand-in, is that far from the zero head's uniform probabilities); a model
    off by 0.3 still is not."""
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite

    spec = ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4))
    members = [ExportMember(tune.build_classifier(spec, 3), 8, 1.0,
                            {"trial": "t0-plain", "module": "plain"})]

    def export(quantize, off):
        out = tmp_path / f"{quantize}-{off}-tflite"
        row = np.array([[1 / 3 + off, 1 / 3, 1 / 3 - off]], np.float32)
        return write_tflite(members, ["a", "b", "c"], out, input_hw=(8, 8),
                            check_images=np.zeros((2, 8, 8, 3), np.float32), quantize=quantize,
                            reference=lambda x: np.tile(row, (len(x), 1)))

    for quantize, off in (("float16", 0.0151), ("dynamic", 0.113)):
        result = export(quantize, off)
        assert abs(result.max_abs_diff - off) < 1e-6 and os.path.isfile(result.model)
    with pytest.raises(RunError, match=r"differs from the SavedModel on 2 validation images "
                                       r"beyond its check \(mean \|dp\| = 0\.3 > 0\.15\)"):
        export("dynamic", 0.3)


def test_an_export_of_an_ensemble_of_an_unfinished_sweep_names_ensemble_with_its_settings(
        tmp_path, caplog):
    """export warns that its ensemble was selected before the sweep finished, and sends the
    user to select it again from the whole pool: with a plain `hubensemble ensemble --run R`,
    which selects under the defaults (up to 15 by one-se for an ensemble chosen with
    --budget 3 --size-rule paper). It names ensemble.json's settings, read back by the
    command line's parser."""
    import shlex

    from hubensemble.cli import build_parser
    from hubensemble.export.stage import _warn_unfinished
    from hubensemble.lockwords import command_line

    run = Run(tmp_path / "run")
    os.makedirs(run.path)
    ensemble = {"objective": "ce", "members": [], "budget": 3, "with_replacement": False,
                "bootstrap": None, "seed": 0, "size_rule": {"rule": "paper"},
                "unfinished": "sweep default: 2 of 8 trials"}
    atomic_write_json(run.ensemble_json, ensemble)
    with command_line(), caplog.at_level("WARNING", logger="hubensemble.export.stage"):
        _warn_unfinished(run, ensemble, {})
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "to select from the whole pool" in said, said
    line = said.split("`hubensemble ensemble ", 1)[1].split("`", 1)[0]
    args = build_parser().parse_args(["ensemble", *shlex.split(line)])
    assert (args.ensemble_budget, args.size_rule, args.objective) == (3, "paper", "ce"), said


def test_distills_out_of_memory_words_name_flags_on_the_command_line_and_keywords_in_python():
    """distill's student out of memory told a Python caller to "pass train_batch_size 8" (a
    flag's form with the keyword's name) "or name a --student" (a flag it never typed).
    Fails before: both words in one message, either way."""
    import re
    from types import SimpleNamespace as NS

    from hubensemble.distill import _out_of_memory
    from hubensemble.lockwords import command_line

    def said():
        return str(_out_of_memory(MemoryError("no room"), "s", NS(input_size=(32, 32)),
                                  NS(batch_size=32), "cpu"))

    python = said()
    with command_line():
        cli = said()
    fits = int(re.search(r"pass train_batch_size=(\d+) \(the learning rate", python).group(1))
    assert 1 <= fits < 32, python
    assert f"pass --train-batch-size {fits} (the learning rate" in cli, cli
    assert python.endswith("or pass student='NAME', a module of a smaller input size"), python
    assert cli.endswith("or name a --student of a smaller input size"), cli
    assert "--student" not in python and "--train-batch-size" not in python, python
    assert "train_batch_size" not in cli and "student=" not in cli, cli


@pytest.mark.slow  # one export of the ensemble
def test_a_student_stays_exportable_after_its_ensemble_is_exported_again_and_not_once_it_changed(
        student_run, digits, tmp_path):
    """`export --format tflite` after distill wrote the same ensemble's SavedModel again, and
    `export --student` then refused the student ("teacher export … changed since": its
    metadata's "created" and sha256 differ). What is compared now is what the export
    computes (`studentexport.teacher_content`: members, ensemble weights, the variables'
    digest, classes): the same after the re-export, other once the ensemble's weights or the
    members' weights change. Fails before: the re-export is refused. (`--format tflite`
    writes this SavedModel, then converts it: the conversion is left out for time.)"""
    from hubensemble.studentexport import student_for_export

    path = tmp_path / "run"
    shutil.copytree(student_run, path)
    run = Run(path)
    before = file_sha256(metadata_path(run.export))
    export_ensemble(path, task=digits, progress=False)  # what `--format tflite` writes first
    assert file_sha256(metadata_path(run.export)) != before  # written again
    assert student_for_export(path, "small").module == "small"
    # The members' weights changed (their variables' digest, as --retrain-full changes it).
    teacher = read_json(metadata_path(run.export))
    atomic_write_json(metadata_path(run.export), {**teacher, "digest": {
        "variables_sha256": "0" * 64}})
    with pytest.raises(RunError, match=r"changed since \(it was written again at .* with the "
                       r"same members and other content: its members' weights \(its "
                       r"variables' digest\) differ\)"):
        student_for_export(path, "small")
    # Other ensemble weights (0.6 / 0.4 -> 0.2 / 0.8), the same members: another teacher
    # (as export writes them from an ensemble.json of those weights).
    members = [{**m, "weight": w} for m, w in zip(teacher["members"], (0.2, 0.8))]
    atomic_write_json(metadata_path(run.export), {**teacher, "members": members})
    with pytest.raises(RunError, match=r"changed since \(it was written again at .* with the "
                       r"same members and other content: its members' ensemble weights or "
                       r"input sizes and ranges differ\)"):
        student_for_export(path, "small")


def test_a_student_that_would_end_at_a_probe_of_a_probe_ensemble_is_warned_of_before_training():
    """distill on a probe sweep's ensemble under the cpu profile, with a module whose
    BatchNorm runs in inference mode, fine-tuned the student from a probe head fitted on the
    labels at lr 6.25e-6 (0.01 x 0.625 x 0.001) for 100 steps and ended equal to the probe,
    with no word. The plan is the one distill makes (tune.finetune_hparams, as
    _student_hparams plans a module without a fine-tuned candidate; steps x2, distill's
    default). Fails before: no such words."""
    import dataclasses

    from hubensemble.distill import probe_start_words
    from hubensemble.lockwords import command_line

    cpu = get_profile("cpu")
    plan = tune.finetune_hparams(tune.SEEDS_HPARAMS, cpu, batchnorm="inference", seed=0)
    plan = dataclasses.replace(plan, steps=plan.steps * 2)
    assert plan.head_init == "probe" and plan.lr == pytest.approx(0.01 * 0.625 * 0.001)
    probes = [{"trial": f"probe-000{i}-m", "module": "m", "hparams": {"kind": "probe"}}
              for i in range(2)]
    said = probe_start_words(plan, probes, "m", cpu, "/r")
    assert said.startswith("the teacher is an ensemble of probes"), said
    assert f"at lr 6.25e-06 for {plan.steps} steps" in said and "end about equal" in said
    # The way on names the sweep: a plain tune of a probe run resumes its probe sweep
    # (a new user's check: pasted, it reused the 4 probes and fine-tuned nothing).
    assert "share one backbone" in said and "run_tune(run_dir='/r', sweep='default')" in said
    assert "lr_scale=10" in said and "--distill-lr" not in said, said
    with command_line():
        cli = probe_start_words(plan, probes, "m", cpu, "/r")
    assert "`hubensemble tune --run /r --sweep default`" in cli and "--distill-lr 10" in cli
    # Probes of another module: no backbone shared with the student; still the same start.
    assert "share one backbone" not in probe_start_words(plan, probes, "other", cpu, "/r")
    # No warning: a fine-tuned member, a zero head (quick), a learning rate the caller chose.
    tuned = probes[:1] + [{"trial": "default-0000-m", "module": "m",
                           "hparams": {"kind": "finetune"}}]
    quick = tune.finetune_hparams(tune.SEEDS_HPARAMS, QUICK, batchnorm="inference", seed=0)
    assert quick.head_init == "zero"
    assert probe_start_words(plan, tuned, "m", cpu, "/r") is None
    assert probe_start_words(quick, probes, "m", QUICK, "/r") is None
    assert probe_start_words(plan, probes, "m", cpu, "/r", lr_scale=10.0) is None


def test_the_tflite_check_keeps_one_uncertain_image_and_refuses_a_moved_or_flipped_model(
        module_factory, tmp_path):
    """The TFLite check took max |dp| over the check images: one image near a decision
    boundary, moved by 0.2 under float16 rounding, refused the model (bound 5e-2) although
    every other image agreed. It is kept now (mean |dp| and the top class of the images the
    SavedModel is sure of pass; 0.5 guards the max); a model that moves every image by 0.03
    (mean), or flips an image whose top-two margin is 0.315 under dynamic, is refused. A real
    tiny model with a zero head (uniform probabilities, top class 0) against the SavedModel's
    stand-in; figures from numpy on the same rows. Fails before: the uncertain image is
    refused."""
    from hubensemble.export.saved import ExportMember
    from hubensemble.export.tflite import write_tflite

    spec = ModuleSpec(name="plain", handle=module_factory("tfl_small", seed=4, width=4))
    members = [ExportMember(tune.build_classifier(spec, 3), 8, 1.0,
                            {"trial": "t0-plain", "module": "plain"})]
    uniform = np.full((16, 3), 1 / 3)

    def export(quantize, rows):
        out = tmp_path / f"{quantize}-{len(list(tmp_path.iterdir()))}-tflite"
        return write_tflite(members, ["a", "b", "c"], out, input_hw=(8, 8),
                            check_images=np.zeros((16, 8, 8, 3), np.float32),
                            quantize=quantize, reference=lambda x: rows.astype(np.float32))

    uncertain = uniform.copy()
    uncertain[5] = [1 / 3 + 0.2, 1 / 3 - 0.2, 1 / 3]  # top class 0, as the model's: agreed
    result = export("float16", uncertain)
    per_image = np.abs(uncertain - uniform).max(axis=1)
    assert result.max_abs_diff == pytest.approx(per_image.max(), abs=1e-6)
    assert result.mean_abs_diff == pytest.approx(per_image.mean(), abs=1e-6)
    assert os.path.isfile(result.model) and result.agreement == 1.0
    check = read_json(os.path.join(result.path, "hubensemble.json"))["check"]
    assert check["bounds"] == {"mean": 0.025, "max": 0.5, "margin": 0.05}, check
    assert check["confident"] == 1 and check["mean_abs_diff"] == result.mean_abs_diff, check
    # Every image moved by 0.03: the typical image is off.
    moved = uniform + np.array([0.03, -0.03, 0.0])
    with pytest.raises(RunError, match=r"beyond its check \(mean \|dp\| = 0\.03 > 0\.025\)"):
        export("float16", moved)
    # One image the SavedModel is sure of (class 1 by 0.315) is class 0 in the TFLite model.
    flipped = uniform.copy()
    flipped[3] = [1 / 3 - 0.105, 1 / 3 + 0.21, 1 / 3 - 0.105]
    with pytest.raises(RunError, match=r"beyond its check \(another top class on 1 of the 1 "
                                       r"images whose SavedModel top-two margin is >= 0\.3\)"):
        export("dynamic", flipped)


def test_the_tflite_way_on_counts_one_candidate_folder_in_the_singular(tmp_path):
    """"remove their 1 candidate folder(s)" was said for one refused module's one candidate
    (text.counted is the rule of a counted noun). Files only. Fails before: "(s)"."""
    from hubensemble.export.tflite import tflite_way_on
    from hubensemble.lockwords import command_line

    run, served = _served_run(tmp_path / "run", (("d-0000-lg", "lg"), ("d-0001-plain", "plain")))
    with command_line():
        said = tflite_way_on(["lg"], "none", f"{served}-tflite")
    assert "leave lg out of the ensemble (ensemble has no flag for that): remove its 1 " \
        "candidate folder (`(cd " in said and "(s)" not in said, said


def test_a_student_costlier_than_its_teacher_is_warned_of_before_training(module_factory):
    """`distill --student big` on a one-member ensemble of a 4-channel module trained and
    compared a student of 16x its GFLOPs without a word: distillation is for a cheaper model.
    The costs are cost.stage.module_cost's of the two real modules (the ratio is checked
    against their own figures). Fails before: no such words."""
    from hubensemble.cost.stage import module_cost
    from hubensemble.distill import costlier_words
    from hubensemble.lockwords import command_line

    small = ModuleSpec(name="small", handle=module_factory("tfl_small", seed=4, width=4))
    big = ModuleSpec(name="big", handle=module_factory("tfl_big", seed=1, width=64))
    (c_small, _), (c_big, _) = module_cost(small, 10, 32), module_cost(big, 10, 32)
    assert c_big.gflops > c_small.gflops
    said = costlier_words("big", c_big.gflops, 32, c_small.gflops)
    assert said.startswith(f"the student big needs {c_big.gflops:.4g} GFLOPs per image at 32 "
                           f"px, {c_big.gflops / c_small.gflops:.3g}x the ensemble it learns "
                           f"from ({c_small.gflops:.4g}): it would serve nothing cheaper; "
                           "name a smaller module's student, or serve"), said
    with command_line():
        cli = costlier_words("big", c_big.gflops, 32, c_small.gflops)
    assert "smaller module's --student," in cli, cli
    # A cheaper student, the same cost, or an ensemble of unknown cost: no word.
    assert costlier_words("small", c_small.gflops, 32, c_big.gflops) is None
    assert costlier_words("small", c_small.gflops, 32, c_small.gflops) is None
    assert costlier_words("big", c_big.gflops, 32, None) is None


def test_a_teacher_whose_test_record_differs_is_refused_in_the_callers_words(tmp_path):
    """distill's check of a --retrain-full teacher against its recorded test figures told a
    Python caller "measured by export --retrain-full … export the run again", a flag it never
    typed. Python now reads the keyword, the command line the flag. The figures in the words
    are metrics.metrics' of the probabilities (checked against NumPy's own). Fails before:
    the same words either way, without retrain_full=True."""
    from hubensemble.distillcompare import _check_record
    from hubensemble.lockwords import command_line

    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]], np.float32)
    nll = float(-np.mean(np.log(probs[np.arange(4), y])))
    teacher = {"labels": y, "ensemble": probs, "members": None, "trials": [],
               "recorded": {"ensemble": {"accuracy": 0.5, "nll": nll + 0.1}}}
    with pytest.raises(RunError) as python:
        _check_record(teacher, tmp_path / "export", tmp_path)
    with command_line(), pytest.raises(RunError) as cli:
        _check_record(teacher, tmp_path / "export", tmp_path)
    for e in (python, cli):
        assert f"ensemble accuracy 0.750000, NLL {nll:.6f}, where its metadata records " \
            f"0.500000, {nll + 0.1:.6f}" in str(e.value), e.value
    said = str(python.value)
    assert "(metrics.test, measured when it was exported with retrain_full=True): " in said, said
    assert "`" not in said and "..." not in said, said  # no command it cannot paste
    assert said.endswith(f"export the run again with export_ensemble(run_dir={str(tmp_path)!r}, "
                         "retrain_full=True)") and "--retrain-full" not in said, said
    said = str(cli.value)
    assert "(metrics.test, measured when it was exported with --retrain-full): " in said, said
    assert said.count("`") == 2, said  # the way on alone: `hubensemble export --retrain-full`
    assert said.endswith(f"export the run again with `hubensemble export --run {tmp_path} "
                         "--retrain-full`"), said
    assert "retrain_full" not in said, said


def test_a_tflite_size_below_the_tasks_images_is_warned_of_naming_the_sizes_and_the_way_on(
        run_dir, digits, tmp_path, caplog):
    """`export --format tflite --tflite-size S` with S below the task's image size wrote an S x
    S input model without a word, its check passing since it runs on the check images shrunk
    to S too: the model loses detail the SavedModel's members see. The warning names S, the
    task's size, the members' input sizes (the export's own record) and what to pass. Fails
    before: no warning."""
    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    with caplog.at_level("WARNING"):
        result = export_ensemble(path, task=digits, progress=False, export_format="tflite",
                                 tflite_size=4)
    assert result.tflite["input_size"] == [4, 4]  # written and checked, as before
    sizes = sorted({m["eval_size"] for m in result.members})
    assert digits.image_size == (8, 8) and max(sizes) > 8, sizes
    said = [r.getMessage() for r in caplog.records if "tflite_size=4" in r.getMessage()]
    assert said == [
        "tflite_size=4 makes the TFLite model take 4x4 px images, below the task's 8x8 px (its "
        "training images' median) and the members' inputs "
        f"({', '.join(map(str, sizes))} px): every image is shrunk to 4 px first, so the model "
        "loses detail the SavedModel's members see, and its check, run on the check images "
        "shrunk alike, does not show it; leave tflite_size out (None) for the task's size, or "
        f"pass tflite_size=8 or more (for images of other sizes tflite_size={max(sizes)}, the "
        "largest member's)"], caplog.text
    from hubensemble.export.stage import tflite_size_words
    from hubensemble.lockwords import command_line

    with command_line():
        cli = tflite_size_words(4, (8, 8), sizes)
    assert cli.startswith("--tflite-size 4 makes") and "leave --tflite-size out for" in cli
    assert "pass --tflite-size 8 or more" in cli and "tflite_size" not in cli, cli
    # At the task's size, the default, above it, or members no larger than S: no word.
    for size, task_hw, members in ((8, (8, 8), sizes), (None, (8, 8), sizes),
                                   (30, (8, 8), sizes), (16, (64, 64), [16, 12])):
        assert tflite_size_words(size, task_hw, members) is None
    # A non-square task: the longer side's detail is what a square S must keep.
    assert tflite_size_words(10, (8, 12), [24]).startswith("tflite_size=10 makes")


def test_the_retrained_exports_figures_name_retrain_full_as_the_caller_sets_it(tmp_path):
    """ExportResult.format_test and format_distill's note on a retrained teacher said
    "(--retrain-full)" to a Python caller too, who set retrain_full=True. Fails before: the
    flag in Python's words."""
    from hubensemble.distill import format_distill
    from hubensemble.export.stage import ExportResult
    from hubensemble.lockwords import command_line

    folder = tmp_path / "export"
    atomic_write_json(metadata_path(folder), {"metrics": {}})
    figures = {"accuracy": 0.9, "nll": 0.3}
    result = ExportResult(path=str(folder), members=[], skipped=[], max_abs_diff=0.0,
                          class_names=["a", "b"], retrain_full=True, seconds=1.0,
                          test={"ensemble": figures, "best_single": None})
    record = _distill_record(0.53, 5, 20, members=2)
    record["teacher"] = {"retrain_full": True}
    record["ensemble"]["retrained"] = True
    python = result.format_test() + "\n" + format_distill(record)
    with command_line():
        cli = result.format_test() + "\n" + format_distill(record)
    assert python.count("retrained on train + val (retrain_full=True)") == 2, python
    assert "--retrain-full" not in python, python
    assert cli.count("retrained on train + val (--retrain-full)") == 2, cli
    assert "retrain_full" not in cli, cli


def test_distills_out_of_memory_batch_counts_the_students_measured_bytes(tmp_path, monkeypatch):
    """distill's out-of-memory way on named the training batch that fits by the rule alone,
    where tune's and export's count the bytes per pixel rank measured of the module (VGG16's
    2.3x the rule's): the batch it named could run out again. Fails before: the same batch
    with and without the record (found by a memory check of real modules)."""
    import json
    import re
    from types import SimpleNamespace as NS

    from hubensemble import memory
    from hubensemble.distill import _out_of_memory

    monkeypatch.setattr(memory, "room", lambda: memory.Room(4 << 30, "the cgroup limit in X"))
    gib = 1 << 30
    heavy = {"batch_size": 32, "pixels": 224 * 224, "held_bytes": gib // 2,
             "peak_bytes": int(1.73 * gib)}
    (tmp_path / "ranking.json").write_text(json.dumps({"profile": "cpu", "modules": [
        {"name": "vgg", "memory": heavy}, {"name": "small", "memory": None}]}))

    def fits(name, run_dir):
        said = str(_out_of_memory(MemoryError("no room"), name, NS(input_size=(224, 224)),
                                  NS(batch_size=256), "cpu", run_dir=run_dir))
        return int(re.search(r"pass train_batch_size=(\d+) ", said).group(1))

    factor = memory.measured_factor(heavy)
    alone = memory.fitting_train_batch(4 << 30, [(224, 224)], "cpu", extra=memory.EXPORT_EXTRA)
    counted = memory.fitting_train_batch(4 << 30, [(224, 224)], "cpu", extra=memory.EXPORT_EXTRA,
                                         factor=factor)
    assert counted < alone  # the record changes the rule's answer here
    assert fits("small", None) == fits("small", tmp_path) == 1 << (alone.bit_length() - 1)
    assert fits("vgg", tmp_path) == 1 << (counted.bit_length() - 1) < fits("vgg", None)


def test_a_students_changed_weights_are_told_to_distil_again_not_to_run_tune(
        student_run, tmp_path):
    """A student exported from RUN/distill/ whose weights file changed since distill wrote it
    was told "restore the file, or delete … and run tune again": tune never writes a student.
    The way on is the distill command of its module (the caller's words), then the export,
    which refuses it (it exported it with a warning)."""
    import h5py

    from hubensemble.export import export_ensemble

    path = tmp_path / "run"
    shutil.copytree(student_run, path)
    weights = candidate.read_candidate(Run(path).distill, "distill-small").weights_path
    with h5py.File(weights, "r+") as f:  # its head's kernel edited by hand: it still loads
        f["head/vars/0"][...] = f["head/vars/0"][...] + 0.5
    # Refused (it was exported with a warning): weights no figure was measured of.
    with pytest.raises(RunError) as err:
        export_ensemble(path, student=True, progress=False)
    said = str(err.value)
    assert said.startswith(f"member 0 (trial 'distill-small', module 'small'): its weights file "
                           f"{weights} is not the one distill wrote"), said
    assert said.endswith(
        "its recorded figures are of the weights distill wrote, not of these: restore the "
        f"file, or call run_distill(run_dir={str(path)!r}, student='small', init='member', "
        "steps_scale=0.05) again, then this export_ensemble call again"), said
    assert "run tune" not in said
    # The options it was distilled with, named as typed: pasted, they distil it by that rule.
    from hubensemble.distillcompare import distilled_with
    from hubensemble.lockwords import command_line

    record = candidate.read_candidate(Run(path).distill, "distill-small").record
    assert distilled_with(record) == ("--distill-init member --distill-steps 0.05",
                                      "init='member', steps_scale=0.05")
    edited = {**record, "init_rule": "best", "steps_scale": float("nan"), "mixup": 0.5,
              "lr_scale": None}  # a default, a value no option takes, a change, a null
    assert distilled_with(edited) == ("--distill-mixup 0.5", "mixup=0.5")
    with command_line(), pytest.raises(RunError) as err:
        export_ensemble(path, student=True, progress=False)
    assert str(err.value).endswith(
        f"restore the file, or run `hubensemble distill --run {path} --student small "
        "--distill-init member --distill-steps 0.05` again, then this export again"), err.value
    # The command line refuses it before TensorFlow loads (export --student takes neither
    # --retrain-full nor --skip-missing, so the files alone decide).
    from test_cli import each_in_one_process

    [(code, _, said, tensorflow)] = each_in_one_process(["export", "--run", path, "--student"])
    assert (code, tensorflow) == (2, False) and said.endswith(f"error: {err.value}\n"), said


def test_distill_over_max_gflops_is_refused_from_the_cost_records_before_the_data_loads(
        run_dir, digits, tmp_path):
    """`distill --max-gflops 1e-7` was refused only after TensorFlow loaded and the data was
    read. When RUN/cost.json holds each module's student cost (a fine-tuned base candidate
    costed at its eval_size, the size the student trains at) it is refused from the records
    first, in the same words, with the figures counted by hand; a figure the records lack
    (a candidate costed at another size) leaves the refusal to the check after the load."""
    import re

    from hubensemble.cost.budget import rounded_up
    from hubensemble.cost.stage import run_cost
    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    run_cost(path, task=digits, progress=False)  # every candidate costed at its eval_size
    # By hand: "small" (one 3x3 conv, 4 filters, a 10-class head) at 32 px; "fixed"
    # (8 filters) at its 24 px.
    at_32, fixed = 2 * (32 * 32 * 4 * 27 + 4 * 10), 2 * (24 * 24 * 8 * 27 + 8 * 10)

    def up(flops):  # the GFLOPs rounded up, as a refusal names the value that passes (it
        return rounded_up(flops / 1e9)  # said "raise the limit": which flag, to what?)

    with pytest.raises(RunError, match=rf"^no module of {re.escape(str(path))} fits max_gflops "
                                       rf"1e-07 as a student at its training size \(the "
                                       rf"cheapest needs {at_32 / 1e9:.4g}, RUN/cost\.json's "
                                       rf"figures\); pass max_gflops={up(at_32)} or more "
                                       r"\(small's student's\), or leave the limit out, or "
                                       r"name a student$"):
        run_distill(path, max_gflops=1e-7, progress=False)  # no task: none is loaded
    from hubensemble.distillchoice import check_distill_budget  # a command line's check

    check_distill_budget(path, None, float(up(at_32)))  # the value named passes

    with pytest.raises(RunError, match=r"cheapest needs .*, RUN/cost\.json's figures"):
        check_distill_budget(path, None, 1e-7)
    check_distill_budget(path, None, 1.0)  # within it: nothing to say
    # The command line refuses it before TensorFlow's import too (it refused it after: the
    # command imported TensorFlow before distill's stage ran).
    code = ("import sys\nfrom hubensemble.cli import main\n"
            f"code = main(['distill', '--run', {str(path)!r}, '--max-gflops', '1e-7'])\n"
            "print('CODE', code, sorted(m for m in ('tensorflow', 'keras') if m in "
            "sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert "CODE 2 []" in out.stdout, (out.stdout, out.stderr[-2000:])  # as every pre-check
    assert out.stderr.startswith("hubensemble: error: no module of "), out.stderr
    assert out.stderr.endswith(f"RUN/cost.json's figures); pass --max-gflops {up(at_32)} or "
                               "more (small's student's), or drop the flag, or name a "
                               "--student\n"), out.stderr
    with pytest.raises(RunError, match=rf"^the student fixed needs {fixed / 1e9:.4g} GFLOPs "
                                       r"per image \(RUN/cost\.json's figure at its training "
                                       rf"size\), over max_gflops 1e-07; pass max_gflops="
                                       rf"{up(fixed)} or more \(the student's\), or leave the "
                                       r"limit out, or choose another student$"):
        run_distill(path, student="fixed", max_gflops=1e-7, progress=False)
    check_distill_budget(path, "fixed", float(up(fixed)))
    # small's candidate costed at 128 px, not its student's 32: not known from the records,
    # so the refusal comes after the data load, by the student's cost counted then.
    small = tune.trial_id("default", 0, "small")
    trial_json = Run(path).candidates / small / "trial.json"
    atomic_write_json(trial_json, {**read_json(trial_json), "eval_size": 128})
    with pytest.raises(RunError, match=rf"^the student small needs {at_32 / 1e9:.4g} GFLOPs "
                                       r"per image at 32 px, over max_gflops 1e-07; pass "
                                       rf"max_gflops={up(at_32)} or more \(the student's\)"):
        run_distill(path, student="small", task=digits, max_gflops=1e-7, progress=False)


def test_a_mistyped_distill_init_is_refused_by_the_option_table_naming_the_keyword(tmp_path):
    """run_distill(init='membr') was refused by a check of its own, a RunError "distill init
    must be one of best, member, module", naming neither the keyword nor the flag and not
    the choice it mistypes; the options table's rule refuses it as every other option."""
    from hubensemble.distill import run_distill
    from hubensemble.lockwords import command_line
    from hubensemble.options import OptionError

    words = "must be one of best, member, module, got 'membr' (did you mean member?)"
    with pytest.raises(OptionError) as refused:
        run_distill(tmp_path / "run", init="membr")
    assert str(refused.value) == f"init {words}"
    with command_line(), pytest.raises(OptionError) as refused:
        run_distill(tmp_path / "run", init="membr")
    assert str(refused.value) == f"--distill-init {words}"
    assert not (tmp_path / "run").exists()


def test_a_students_missing_or_unreadable_weights_name_its_distill_options(
        student_run, tmp_path):
    """A new-user check: a student's weights file cut (or gone) gave `export --student` "run
    `hubensemble distill --run RUN --student m0` again …, or pass --skip-missing to export the
    ensemble without it": the options it was distilled with left out (pasted, it distilled at
    the defaults), and --skip-missing offered for a one-member export it would empty. The
    words are studentexport.student_words' with the record's options; no --skip-missing.
    Fails before: no --distill-init in the words; --skip-missing offered."""
    from hubensemble.export import export_ensemble
    from hubensemble.lockwords import command_line

    path = tmp_path / "run"
    shutil.copytree(student_run, path)
    weights = candidate.read_candidate(Run(path).distill, "distill-small").weights_path
    for damage in ("cut", "gone"):
        if damage == "cut":
            weights.write_bytes(b"junk")
        else:
            weights.unlink()
        with command_line(), pytest.raises(RunError) as refused:
            export_ensemble(path, student=True, progress=False)
        said = str(refused.value)
        assert (f"run `hubensemble distill --run {path} --student small --distill-init member "
                "--distill-steps 0.05` again") in said, (damage, said)
        assert "skip-missing" not in said, (damage, said)


def test_distill_refuses_a_members_damaged_entry_where_the_ensemble_cost_is_counted_again(
        run_dir, digits, tmp_path):
    """An ensemble.json without a "cost" record (written before RUN/cost.json existed) has
    its cost counted again from its members' (`distillcompare.ensemble_cost`), each probe
    sharing a backbone by its catalogue entry in run.json: a member's entry edited by hand
    (an unknown field) counted as sharing none, and distill trained on. It is refused
    before training, in runspecs' words (run.json, the module, the way on), as when the
    candidates' costs are counted. Fails before: no RunError (the student is trained)."""
    from hubensemble.cost.stage import run_cost
    from hubensemble.distill import run_distill

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    run_cost(path, task=digits, progress=False)  # every candidate's cost, before the edit
    ens = read_json(path / "ensemble.json")
    ens.pop("cost", None)
    atomic_write_json(path / "ensemble.json", ens)
    meta = read_json(path / "run.json")
    meta["modules"]["fixed"]["colour"] = 1
    atomic_write_json(path / "run.json", meta)
    with pytest.raises(RunError) as refused:
        run_distill(path, task=digits, progress=False, student="small", steps_scale=0.005,
                    init="module", mixup=0.0)
    said = str(refused.value)
    assert said.startswith(f"{(path / 'run.json').resolve()}: the catalogue entry of module "
                           "'fixed' is damaged (unknown ModuleSpec field 'colour'"), said
    assert not (path / "distill").exists()


def test_a_student_records_its_train_batch_size_as_given(run_dir, digits, tmp_path):
    """distill did not record --train-batch-size: `distilled_with` inferred it from the
    student's batch against its profile's, so a student of candidates tuned at batch 8
    distilled at exactly quick's 16 read as distilled at the default, and its again-command
    (export --student's way on) left the batch out: run, it trains at the candidates' 8. It
    is recorded as given ("train_batch_size", null when not given) and said. Fails before:
    no "--train-batch-size 16" in the words."""
    from hubensemble.distill import run_distill
    from hubensemble.distillcompare import distilled_with

    path = tmp_path / "run"
    shutil.copytree(run_dir, path)
    for c in candidate.scan(Run(path).candidates)[0]:  # as tuned at --train-batch-size 8
        atomic_write_json(c.folder / "trial.json", {
            **c.record, "hparams": {**c.record["hparams"], "batch_size": 8}})
    run_distill(path, task=digits, progress=False, student="small", steps_scale=0.005,
                init="module", mixup=0.0, train_batch_size=QUICK.batch_size)
    record = candidate.read_candidate(Run(path).distill, "distill-small").record
    assert record["train_batch_size"] == QUICK.batch_size == record["hparams"]["batch_size"]
    flags, keywords = distilled_with(record)
    assert "--train-batch-size 16" in flags and "train_batch_size=16" in keywords, flags
    # A record written before the field: read as before (its batch against its profile's).
    del record["train_batch_size"]
    assert "--train-batch-size" not in distilled_with(record)[0]
    assert "--train-batch-size 8" in distilled_with(
        {**record, "hparams": {**record["hparams"], "batch_size": 8}})[0]
