"""Run it twice: the same seed gives the same run, file by file; another seed another.

A run of rank + tune (`hyper+aug`: dropout, weight decay, augmentation and MixUp draws) +
ensemble on tiny modules in a fresh process, and the same again inside this test process after
a run of another seed (the notebook case), whose string-hash seed differs (so any iteration
over a set of strings shows). Nothing here hard-codes a result: runs are compared. docs/tune.md
("Run it twice") says what repeats to the bit and what does not.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

RUN = """
import sys
import hubensemble
from hubensemble.catalogue import load_catalogue
from hubensemble.data import load_task
from hubensemble.dataargs import DataArgs

out, catalogue, cache, seed, data_seed = sys.argv[1:6]
task = load_task("sklearn:digits", seed=int(data_seed))
hubensemble.run_rank(out, load_catalogue(catalogue), task, top_k=2, profile="quick",
                     cache_dir=cache, data_args=DataArgs("sklearn:digits", seed=int(data_seed)),
                     progress=False)
hubensemble.run_tune(out, sweep="hyper+aug", budget=4, profile="quick", seed=int(seed),
                     task=task, progress=False)
hubensemble.run_ensemble(out, seed=int(seed))
"""


@pytest.fixture(scope="module")
def catalogue(module_factory, tmp_path_factory):
    lines = ["modules:"]
    for i, family in enumerate(("generalist", "expert", "expert")):
        path = module_factory(f"twice{i}", seed=10 + i, width=4 + 2 * i, dropout=0.1)
        lines.append(f"  - {{name: m{i}, handle: {path}, family: {family}}}")
    yaml = tmp_path_factory.mktemp("twice") / "cat.yaml"
    yaml.write_text("\n".join(lines) + "\n")
    return str(yaml)


def run(root: Path, catalogue, *, seed=2, data_seed=0, hash_seed="0", in_process=False):
    """A run folder ROOT/run made by RUN with its own embedding cache (rank embeds afresh).
    Seed 2's augmentation family has MixUp (seed 0's has none)."""
    out, cache = root / "run", root / "cache"
    argv = [str(out), catalogue, str(cache), str(seed), str(data_seed)]
    if in_process:
        saved = sys.argv
        sys.argv = ["run", *argv]
        try:
            exec(compile(RUN, "RUN", "exec"), {"__name__": "run"})
        finally:
            sys.argv = saved
    else:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(
            p for p in (str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")) if p)}
        done = subprocess.run([sys.executable, "-c", RUN, *argv], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return out


def h5_arrays(path):
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def trials(out):
    return sorted(p.name for p in (out / "candidates").iterdir())


def results(out):
    """What a user compares between two runs: the split, rank's kNN scores and order, each
    trial's hyperparameters, weights and probabilities, the tuner's record and the members."""
    ranking = json.loads((out / "ranking.json").read_text())
    ensemble = json.loads((out / "ensemble.json").read_text())
    got = {
        "split": {s: np.load(out / "labels" / f"{s}.npy") for s in ("train", "val", "test")},
        "knn": dict(np.load(out / "knn.npz")),
        "ranking": [(m["name"], m["score"]) for m in ranking["modules"]],
        "selected": ranking["selected"],
        "members": [(m["trial"], m["weight"], m["picks"]) for m in ensemble["members"]],
        "val_curve": ensemble["val_curve"],
    }
    for name in trials(out):
        folder = out / "candidates" / name
        record = json.loads((folder / "trial.json").read_text())
        got[name] = {"hparams": record["hparams"], "val": record["val"],
                     "val_probs": np.load(folder / "val_probs.npy"),
                     "test_probs": np.load(folder / "test_probs.npy"),
                     "weights": h5_arrays(folder / "weights.weights.h5")}
    for sweep in ("hyper", "aug"):
        state = json.loads((out / "tuner" / sweep / "oracle.json").read_text())
        got[f"oracle {sweep}"] = {k: state[k] for k in ("tried_so_far", "id_to_hash",
                                                        "end_order", "plan")}
        got[f"plan {sweep}"] = (out / "tuner" / sweep / "plan.json").read_text()
    return got


def assert_same(a, b, where="run"):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b), f"{where}: max |difference| {np.abs(a - b).max()}"
    else:
        assert a == b, where


#: The fresh process's string-hash seed: another than this process's (random unless set).
HASH_SEED = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"


@pytest.fixture(scope="module")
def first(catalogue, tmp_path_factory):
    return run(tmp_path_factory.mktemp("first"), catalogue, hash_seed=HASH_SEED)


@pytest.fixture(scope="module")
def here(first, catalogue, tmp_path_factory):
    """Inside this process, which has imported TensorFlow (the notebook case): a run of
    another seed, then one of first's seed, shared by the tests below (a sweep each saved:
    a third run, in another fresh process, compared first's to it; this process is one)."""
    root = tmp_path_factory.mktemp("here")
    other = results(run(root / "other", catalogue, seed=1, in_process=True))
    return other, results(run(root / "again", catalogue, in_process=True))


@pytest.mark.slow
def test_the_same_seed_in_another_process_gives_the_same_run_to_the_bit(first, here):
    # Another string-hash seed: a record built by iterating over a set of strings differs
    # (Keras Tuner's oracle.json listed its set of tried values in hash order).
    probe = "print(hash('hubensemble run'))"
    there = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": HASH_SEED}, check=True).stdout
    assert int(there) != hash("hubensemble run"), "this process hashes strings as first's did"
    a, b = results(first), here[1]
    assert len(trials(first)) == 8 and a["members"]
    drawn = [a[t]["hparams"] for t in trials(first)]  # what the runs drew at random
    assert any(h["dropout"] > 0 for h in drawn)
    assert any((h["augmentation"] or {}).get("mixup_alpha", 0) > 0 for h in drawn)
    assert_same(a, b)


@pytest.mark.slow
def test_another_seed_then_the_same_seed_again_in_one_process(first, here):
    # The notebook case: this process has imported TensorFlow and trained another run first.
    other, again = here
    same = results(first)
    assert_same(same["split"], other["split"])
    assert_same(same["knn"], other["knn"])
    assert all(same[t]["hparams"] != other[t]["hparams"] for t in trials(first))
    assert not any(np.array_equal(same[t]["val_probs"], other[t]["val_probs"])
                   for t in trials(first))
    assert_same(same, again)


def test_the_same_data_seed_draws_the_same_split_and_another_seed_another():
    from hubensemble.data import load_task

    a, b, c = (load_task("sklearn:digits", seed=s) for s in (0, 0, 1))
    for s in ("train", "val", "test"):  # as many images, other ones (in another order)
        assert_same({"x": a.split(s).images, "y": a.split(s).labels},
                    {"x": b.split(s).images, "y": b.split(s).labels})
        assert len(a.split(s)) == len(c.split(s))
        assert not np.array_equal(a.split(s).images, c.split(s).images)
